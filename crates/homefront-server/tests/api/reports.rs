//! Reports, exports, certificates, metrics and backup over HTTP.
//!
//! `reports_month` generates a month of activity (and some before and after
//! it, and in a neighbouring county) through the store, the way the
//! dispatcher and the API write it, and the tests compare what the API
//! reports with figures computed here from the raw tables.

use homefront_domain::catalogue::{Lane, Relation, Urgency};
use homefront_domain::pairing::PairingRole;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use homefront_domain::hours::HoursKind;
use homefront_domain::order_state::{OrderAction, Reason};
use homefront_domain::vetting::VettingState;
use homefront_domain::{PhoneNumber, Role, Timestamp};
use homefront_store::Store;
use homefront_store::fulfilment::NewHours;
use homefront_store::households::MemberFields;
use homefront_store::offers::NewOffer;
use homefront_store::orders::{Idempotent, NewOrder};
use homefront_store::volunteers::{Account, VolunteerProfile};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Session, T0, TestApp, use_postgres};

/// 2020-02-01T00:00+08:00 and 2020-03-01T00:00+08:00: the report's month.
const FEB_1: i64 = 1_580_486_400_000;
const MAR_1: i64 = 1_582_992_000_000;
const HOUR: i64 = 3_600_000;
const MONTH: &str = "from=2020-02-01&to=2020-02-29";

struct Month {
    app: TestApp,
    xuanwu: i64,
    team: i64,
    team2: i64,
    coordinator: Session,
    volunteers: Vec<i64>,
    /// Orders whose public note is a formula (all in Xuanwu, in February).
    formula_orders: usize,
}

/// A small deterministic generator (64-bit LCG, Knuth's MMIX constants).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

async fn volunteer(
    app: &TestApp,
    phone: &str,
    name: &str,
    team: i64,
    home: i64,
    active_at: i64,
) -> i64 {
    let store = &app.store;
    let phone = PhoneNumber::parse(phone).unwrap();
    let hash = crate::helpers::password_hash().await;
    let id = store
        .register_volunteer(
            Account::New {
                phone: &phone,
                display_name: name,
                password_hash: &hash,
            },
            &VolunteerProfile {
                team_id: team,
                home_division_id: home,
                home_location: None,
                service_radius_km: 10.0,
                declared_qualifications: vec![],
                vehicle_seats: None,
                languages: vec![],
                max_concurrent: 3,
                gender: None,
                emergency_contact: None,
            },
            None,
            Timestamp(active_at - HOUR),
        )
        .await
        .unwrap()
        .unwrap();
    for target in [
        VettingState::Reviewed,
        VettingState::Interviewed,
        VettingState::Trained,
        VettingState::ExamPassed,
        VettingState::AgreementSigned,
        VettingState::Insured,
        VettingState::Active,
    ] {
        let mut tx = store.begin_write().await.unwrap();
        Store::move_vetting_tx(&mut tx, id, target, None, Timestamp(active_at), None, None)
            .await
            .unwrap()
            .unwrap();
        tx.commit().await.unwrap();
    }
    id
}

async fn household(app: &TestApp, phone: &str, division: i64) -> (i64, i64, i64) {
    let requester = app.user(phone, &[(Role::Requester, None)]).await;
    let h = app.store.household_of(requester, T0.0).await.unwrap();
    let m = app
        .store
        .add_member(
            h.id,
            &MemberFields {
                name: "刘护士".into(),
                relation: Relation::SelfMember,
                age_years: None,
                school_grade: None,
                phone: Some("+8613900000000".into()),
                division_id: division,
                street: "龙蟠中路1号".into(),
                location: Some((118.797, 32.049)),
                guardian_consent: false,
            },
            T0.0,
        )
        .await
        .unwrap();
    (requester, h.id, m.id)
}

#[allow(clippy::too_many_arguments)]
async fn place(
    store: &Store,
    requester: i64,
    household: i64,
    member: i64,
    division: i64,
    item: i64,
    lane: Lane,
    note: Option<&str>,
    at: i64,
) -> i64 {
    let new = NewOrder {
        item_id: item,
        household_id: household,
        member_id: member,
        placed_by: requester,
        division_id: division,
        lane,
        urgency: Urgency::Normal,
        window_start: at + HOUR,
        window_end: at + 4 * HOUR,
        street: "龙蟠中路1号".into(),
        contact_phone: Some("+8613900000000".into()),
        location: Some((118.797, 32.049)),
        notes: Some("门口放".into()),
        public_note: note.map(str::to_string),
        labels: None,
    };
    let key = format!("k{at}-{item}-{household}");
    match store
        .create_order_idempotent(requester, &key, "h", &new, at, |_| (201, String::new()))
        .await
        .unwrap()
    {
        Idempotent::Created { order, .. } => order.id,
        other => panic!("{other:?}"),
    }
}

async fn offer(store: &Store, order: i64, volunteer: i64, at: i64) -> i64 {
    let o = NewOffer {
        order_id: order,
        volunteer_user_id: volunteer,
        via: "sequential",
        round: 1,
        candidate_rank: 1,
        distance_km: Some(1.0),
        cost: 1.0,
        explanation: "{}".into(),
        expires_at: at + HOUR,
        offered_by: None,
    };
    assert!(store.write_round(order, &[o], at).await.unwrap());
    store
        .offers_of_order(order)
        .await
        .unwrap()
        .last()
        .unwrap()
        .id
}

/// A month of activity. Xuanwu (the report's unit) and Qinhuai (outside
/// it); orders from 2020-01-25 to 2020-03-05 with every fate.
async fn month() -> Month {
    let app = TestApp::spawn().await;
    app.import_jiangsu().await;
    let xuanwu = app.division("320102").await;
    let qinhuai = app.division("320104").await;
    let team = app.team(xuanwu, "玄武区志愿服务队").await;
    let team2 = app.team(xuanwu, "玄武区青年突击队").await;
    let other_team = app.team(qinhuai, "秦淮区志愿服务队").await;
    app.user("13800000002", &[(Role::Coordinator, Some(xuanwu))])
        .await;
    let coordinator = app.login("13800000002").await;
    let store = &app.store;

    let mut volunteers = Vec::new();
    // Vetted before, during and after February; some on duty.
    for (i, (t, day)) in [
        (team, -10),
        (team, 3),
        (team2, 10),
        (team2, 20),
        (team, 27),
        (team, 35),
        (other_team, 5),
    ]
    .into_iter()
    .enumerate()
    {
        let at = FEB_1 + day * 24 * HOUR;
        let home = if t == other_team { qinhuai } else { xuanwu };
        let v = volunteer(
            &app,
            &format!("1370000{i:04}"),
            &format!("志愿者{i}"),
            t,
            home,
            at,
        )
        .await;
        if i % 2 == 0 {
            store.set_duty(v, true, None, Timestamp(at)).await.unwrap();
        }
        volunteers.push(v);
    }
    let (r1, h1, m1) = household(&app, "13800000011", xuanwu).await;
    let (r2, h2, m2) = household(&app, "13800000012", qinhuai).await;
    let items = store.service_items(false).await.unwrap();

    let mut rng = Lcg(20_200_212);
    let mut formula_orders = 0;
    let start = FEB_1 - 7 * 24 * HOUR;
    for n in 0..48 {
        let at = start + i64::try_from(rng.next(40 * 24)).unwrap() * HOUR + n;
        let in_xuanwu = rng.next(5) != 0;
        let (requester, hh, member, division) = if in_xuanwu {
            (r1, h1, m1, xuanwu)
        } else {
            (r2, h2, m2, qinhuai)
        };
        let item = &items[usize::try_from(rng.next(4)).unwrap()];
        let note = if in_xuanwu && (FEB_1..MAR_1).contains(&at) && n % 7 == 0 {
            formula_orders += 1;
            Some("=HYPERLINK(\"http://x\")")
        } else {
            None
        };
        let order = place(
            store, requester, hh, member, division, item.id, item.lane, note, at,
        )
        .await;
        let v = volunteers[usize::try_from(rng.next(5)).unwrap()];
        let t = |h: i64| at + h * HOUR / 4 + n;
        match rng.next(6) {
            0 => {} // still submitted
            1 => {
                // offered, expired, escalated twice
                offer(store, order, v, t(1)).await;
                store.expire_offers(t(6)).await.unwrap();
                store
                    .escalate_order(order, 0, 1, "county", t(7))
                    .await
                    .unwrap();
                store
                    .escalate_order(order, 1, 2, "city", t(9))
                    .await
                    .unwrap();
            }
            fate => {
                let o = offer(store, order, v, t(1)).await;
                if fate == 2 {
                    store
                        .transition_order(
                            order,
                            &OrderAction::Cancel {
                                reason: Reason::parse("家属已自行解决").unwrap(),
                            },
                            Some(requester),
                            None,
                            t(2),
                        )
                        .await
                        .unwrap();
                    continue;
                }
                if fate == 3 {
                    store
                        .mark_unfulfilled(order, &Reason::parse("无人接单").unwrap(), t(3))
                        .await
                        .unwrap();
                    continue;
                }
                store.accept_offer(o, v, t(2), 0).await.unwrap().unwrap();
                store.check_in(order, v, None, t(3)).await.unwrap();
                store.check_out(order, v, 60, t(6)).await.unwrap();
                if fate == 5 {
                    store
                        .confirm_order(order, Some(requester), None, None, t(8))
                        .await
                        .unwrap();
                }
            }
        }
    }
    // Backfills (one adjusted down), on both sides of the month's edges.
    for (v, team_id, day, minutes) in [
        (volunteers[0], team, 2, 120),
        (volunteers[2], team2, 15, 45),
        (volunteers[3], team2, 40, 60),
        (volunteers[6], other_team, 9, 90),
    ] {
        let e = store
            .add_hours(
                &NewHours {
                    volunteer_user_id: v,
                    order_id: None,
                    item_id: Some(items[0].id),
                    team_id: Some(team_id),
                    kind: HoursKind::Backfilled,
                    minutes,
                    started_at: Some(FEB_1 + day * 24 * HOUR),
                    ended_at: Some(FEB_1 + day * 24 * HOUR + minutes * 60_000),
                    adjusts_entry_id: None,
                    capped: false,
                    reason: Some("补录".into()),
                    actor_user_id: None,
                },
                FEB_1 + day * 24 * HOUR,
            )
            .await
            .unwrap();
        if minutes == 120 {
            store
                .add_hours(
                    &NewHours {
                        minutes: -30,
                        adjusts_entry_id: Some(e.id),
                        reason: Some("核减".into()),
                        ..NewHours {
                            volunteer_user_id: v,
                            order_id: None,
                            item_id: Some(items[0].id),
                            team_id: Some(team_id),
                            kind: HoursKind::Backfilled,
                            minutes: 0,
                            started_at: e.started_at,
                            ended_at: e.ended_at,
                            adjusts_entry_id: None,
                            capped: false,
                            reason: None,
                            actor_user_id: None,
                        }
                    },
                    FEB_1 + 20 * 24 * HOUR,
                )
                .await
                .unwrap();
        }
    }
    // Pairings: one live, one ended in February, one started in March.
    let p = store
        .create_pairing(
            h1,
            volunteers[0],
            PairingRole::Primary,
            None,
            FEB_1 - 24 * HOUR,
        )
        .await
        .unwrap();
    store
        .end_pairing(p.id, "换人", FEB_1 + 5 * 24 * HOUR)
        .await
        .unwrap();
    store
        .create_pairing(
            h1,
            volunteers[1],
            PairingRole::Primary,
            None,
            FEB_1 + 5 * 24 * HOUR,
        )
        .await
        .unwrap();
    store
        .create_pairing(
            h1,
            volunteers[2],
            PairingRole::Backup,
            None,
            MAR_1 + 24 * HOUR,
        )
        .await
        .unwrap();
    Month {
        app,
        xuanwu,
        team,
        team2,
        coordinator,
        volunteers,
        formula_orders,
    }
}

/// Raw rows of one table, as JSON-ish tuples, via plain `select`s.
async fn rows<T>(store: &Store, sql: &'static str) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    sqlx::query_as(sql).fetch_all(store.pool()).await.unwrap()
}

/// (volunteer, team, item, kind, minutes, started_at, created_at)
type LedgerRow = (i64, Option<i64>, Option<i64>, String, i64, Option<i64>, i64);

fn counts(map: &BTreeMap<String, i64>) -> Value {
    Value::Array(
        map.iter()
            .map(|(k, v)| json!({"key": k, "count": v}))
            .collect(),
    )
}

fn nearest_rank(mut v: Vec<i64>, p: usize) -> Option<i64> {
    v.sort_unstable();
    if v.is_empty() {
        return None;
    }
    let rank = ((p * v.len()) as f64 / 100.0).ceil() as usize;
    Some(v[rank.max(1) - 1])
}

#[tokio::test]
async fn report_figures_equal_counts_from_the_raw_tables() {
    let m = month().await;
    let (status, got) = m
        .app
        .get(
            &m.coordinator,
            &format!("/api/v1/reports/summary?org_unit={}&{MONTH}", m.xuanwu),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(
        (got["from"].as_i64(), got["to"].as_i64()),
        (Some(FEB_1), Some(MAR_1))
    );

    let store = &m.app.store;
    let units: HashMap<i64, String> = rows::<(i64, String)>(store, "select id, path from org_unit")
        .await
        .into_iter()
        .collect();
    let root = units[&m.xuanwu].clone();
    let inside = |unit: i64| units[&unit].starts_with(&root);
    let items: HashMap<i64, String> =
        rows::<(i64, String)>(store, "select id, code from service_item")
            .await
            .into_iter()
            .collect();
    let orders: Vec<(i64, i64, String, String, i64, i64)> = rows(
        store,
        "select id, division_id, state, lane, item_id, created_at from service_order",
    )
    .await;
    let events: Vec<(i64, i64, String, String)> = rows(
        store,
        "select order_id, at, action, to_state from order_event",
    )
    .await;
    let offers: Vec<(i64, i64)> = rows(store, "select order_id, offered_at from offer").await;

    let mine: Vec<_> = orders
        .iter()
        .filter(|o| inside(o.1) && (FEB_1..MAR_1).contains(&o.5))
        .collect();
    let ids: HashSet<i64> = mine.iter().map(|o| o.0).collect();
    let created: HashMap<i64, i64> = mine.iter().map(|o| (o.0, o.5)).collect();
    let mut by_state = BTreeMap::new();
    let mut by_item = BTreeMap::new();
    let mut by_lane = BTreeMap::new();
    for o in &mine {
        *by_state.entry(o.2.clone()).or_insert(0) += 1;
        *by_item.entry(items[&o.4].clone()).or_insert(0) += 1;
        *by_lane.entry(o.3.clone()).or_insert(0) += 1;
    }
    let total = i64::try_from(mine.len()).unwrap();
    assert!(
        total >= 15,
        "the generated month has enough orders: {total}"
    );
    let o = &got["orders"];
    assert_eq!(o["total"], total);
    assert_eq!(o["by_state"], counts(&by_state));
    assert_eq!(o["by_item"], counts(&by_item));
    assert_eq!(o["by_lane"], counts(&by_lane));

    let reached = |state: &str| {
        let set: HashSet<i64> = events
            .iter()
            .filter(|e| e.3 == state && ids.contains(&e.0))
            .map(|e| e.0)
            .collect();
        i64::try_from(set.len()).unwrap()
    };
    let completed = reached("completed");
    assert!(completed > 0);
    assert_eq!(o["completed"], completed);
    assert_eq!(o["cancelled"], reached("cancelled"));
    assert_eq!(o["unfulfilled"], reached("unfulfilled"));
    let rate = o["completion_rate"].as_f64().unwrap();
    assert!((rate - completed as f64 / total as f64).abs() < 1e-9);

    let mut first_offer: HashMap<i64, i64> = HashMap::new();
    for (order, at) in &offers {
        if ids.contains(order) {
            let e = first_offer.entry(*order).or_insert(*at);
            *e = (*e).min(*at);
        }
    }
    let waits: Vec<i64> = first_offer
        .iter()
        .map(|(id, at)| at - created[id])
        .collect();
    assert_eq!(o["time_to_first_offer"]["count"], waits.len());
    assert_eq!(
        o["time_to_first_offer"]["p50_ms"].as_i64(),
        nearest_rank(waits.clone(), 50)
    );
    assert_eq!(
        o["time_to_first_offer"]["p90_ms"].as_i64(),
        nearest_rank(waits, 90)
    );
    let mut first_assign: HashMap<i64, i64> = HashMap::new();
    for e in events
        .iter()
        .filter(|e| e.3 == "assigned" && ids.contains(&e.0))
    {
        let v = first_assign.entry(e.0).or_insert(e.1);
        *v = (*v).min(e.1);
    }
    let accepts: Vec<i64> = first_assign
        .iter()
        .map(|(id, at)| at - created[id])
        .collect();
    assert_eq!(o["time_to_accept"]["count"], accepts.len());
    assert_eq!(
        o["time_to_accept"]["p90_ms"].as_i64(),
        nearest_rank(accepts, 90)
    );

    let division_of: HashMap<i64, i64> = orders.iter().map(|o| (o.0, o.1)).collect();
    let esc: Vec<_> = events
        .iter()
        .filter(|e| e.2 == "escalate" && inside(division_of[&e.0]) && (FEB_1..MAR_1).contains(&e.1))
        .collect();
    assert!(!esc.is_empty());
    assert_eq!(got["escalations"]["events"], esc.len());
    assert_eq!(
        got["escalations"]["orders"],
        esc.iter().map(|e| e.0).collect::<HashSet<_>>().len()
    );

    let vols: Vec<(i64, i64, String, i64)> = rows(
        store,
        "select user_id, team_id, vetting_state, on_duty from volunteer",
    )
    .await;
    let vols_in: Vec<_> = vols.iter().filter(|v| inside(v.1)).collect();
    assert_eq!(
        got["volunteers"]["active"],
        vols_in.iter().filter(|v| v.2 == "active").count()
    );
    assert_eq!(
        got["volunteers"]["on_duty"],
        vols_in.iter().filter(|v| v.3 == 1).count()
    );
    let vetting: Vec<(i64, String, i64)> = rows(
        store,
        "select volunteer_id, to_state, at from vetting_event",
    )
    .await;
    let newly = vols_in
        .iter()
        .filter(|v| {
            vetting
                .iter()
                .filter(|e| e.0 == v.0 && e.1 == "active")
                .map(|e| e.2)
                .min()
                .is_some_and(|at| (FEB_1..MAR_1).contains(&at))
        })
        .count();
    assert_eq!(newly, 4, "vetted on days 3, 10, 20 and 27 in Xuanwu");
    assert_eq!(got["volunteers"]["newly_vetted"], newly);

    let hours: Vec<LedgerRow> = rows(
        store,
        "select volunteer_user_id, team_id, item_id, kind, minutes, started_at, created_at from hours_entry",
    )
    .await;
    let in_period: Vec<_> = hours
        .iter()
        .filter(|h| h.1.is_some_and(inside) && (FEB_1..MAR_1).contains(&h.5.unwrap_or(h.6)))
        .collect();
    let sum = |kind: &str, f: &dyn Fn(&&&LedgerRow) -> bool| -> i64 {
        in_period
            .iter()
            .filter(|h| h.3 == kind)
            .filter(f)
            .map(|h| h.4)
            .sum()
    };
    let h = &got["hours"];
    assert_eq!(h["recorded_minutes"], sum("recorded", &|_| true));
    assert_eq!(h["backfilled_minutes"], sum("backfilled", &|_| true));
    assert_eq!(h["backfilled_minutes"], 120 - 30 + 45);
    for line in h["by_team"].as_array().unwrap() {
        let team: i64 = line["key"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            line["recorded_minutes"],
            sum("recorded", &|h| h.1 == Some(team))
        );
        assert_eq!(
            line["backfilled_minutes"],
            sum("backfilled", &|h| h.1 == Some(team))
        );
    }
    let teams: HashSet<i64> = in_period.iter().filter_map(|h| h.1).collect();
    assert_eq!(h["by_team"].as_array().unwrap().len(), teams.len());
    for line in h["by_volunteer"].as_array().unwrap() {
        let v: i64 = line["key"].as_str().unwrap().parse().unwrap();
        assert_eq!(line["recorded_minutes"], sum("recorded", &|h| h.0 == v));
        assert_eq!(line["backfilled_minutes"], sum("backfilled", &|h| h.0 == v));
    }
    let volunteers_with_hours: HashSet<i64> = in_period.iter().map(|h| h.0).collect();
    assert_eq!(
        h["by_volunteer"].as_array().unwrap().len(),
        volunteers_with_hours.len()
    );
    for line in h["by_item"].as_array().unwrap() {
        let code = line["key"].as_str().unwrap();
        assert_eq!(
            line["recorded_minutes"],
            sum("recorded", &|h| h.2.map(|i| items[&i].as_str())
                == Some(code))
        );
    }

    let pairings: Vec<(i64, i64, i64, Option<i64>)> = rows(
        store,
        "select household_id, volunteer_user_id, started_at, ended_at from pairing",
    )
    .await;
    let team_of: HashMap<i64, i64> = vols.iter().map(|v| (v.0, v.1)).collect();
    let p_in: Vec<_> = pairings.iter().filter(|p| inside(team_of[&p.1])).collect();
    let p = &got["pairings"];
    assert_eq!(
        p["started"],
        p_in.iter()
            .filter(|p| (FEB_1..MAR_1).contains(&p.2))
            .count()
    );
    assert_eq!(
        p["ended"],
        p_in.iter()
            .filter(|p| p.3.is_some_and(|e| (FEB_1..MAR_1).contains(&e)))
            .count()
    );
    assert_eq!(
        p["live_at_end"],
        p_in.iter()
            .filter(|p| p.2 < MAR_1 && p.3.is_none_or(|e| e >= MAR_1))
            .count()
    );
    assert_eq!(p["live_at_end"], 1);

    // Scope: the neighbouring county's coordinator cannot read Xuanwu, and
    // a requester cannot read reports at all.
    let qinhuai = m.app.division("320104").await;
    m.app
        .user("13800000003", &[(Role::Coordinator, Some(qinhuai))])
        .await;
    let other = m.app.login("13800000003").await;
    let path = format!("/api/v1/reports/summary?org_unit={}&{MONTH}", m.xuanwu);
    assert_eq!(m.app.get(&other, &path).await.0, StatusCode::NOT_FOUND);
    let requester = m.app.login("13800000011").await;
    assert_eq!(m.app.get(&requester, &path).await.0, StatusCode::FORBIDDEN);
}

async fn download(app: &TestApp, s: &Session, path: &str) -> (StatusCode, Vec<u8>, Option<String>) {
    let resp = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let count = resp
        .headers()
        .get("x-row-count")
        .map(|v| v.to_str().unwrap().to_string());
    (status, resp.bytes().await.unwrap().to_vec(), count)
}

fn csv_rows(bytes: &[u8]) -> Vec<Vec<String>> {
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "UTF-8 BOM for Excel");
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(&bytes[3..]);
    r.records()
        .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
        .collect()
}

#[tokio::test]
async fn exports_have_the_screen_rows_and_no_formulas_or_personal_data() {
    use calamine::{Data, Reader};
    let m = month().await;
    let filter = format!("from={FEB_1}&to={MAR_1}");
    let (status, list) = m
        .app
        .get(&m.coordinator, &format!("/api/v1/orders?{filter}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let on_screen = list.as_array().unwrap().len();
    assert!(on_screen > 5);

    let (status, bytes, count) = download(
        &m.app,
        &m.coordinator,
        &format!("/api/v1/exports/orders?format=csv&{filter}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let table = csv_rows(&bytes);
    assert_eq!(table[0][0], "订单编号");
    assert_eq!(table.len() - 1, on_screen);
    assert_eq!(count, Some(on_screen.to_string()));
    let text = String::from_utf8(bytes).unwrap();
    assert!(
        !text.contains("龙蟠中路") && !text.contains("13900000000") && !text.contains("门口放")
    );
    let formulas: Vec<_> = table
        .iter()
        .flatten()
        .filter(|c| c.contains("HYPERLINK"))
        .collect();
    assert_eq!(formulas.len(), m.formula_orders);
    assert!(formulas.iter().all(|c| c.starts_with("'=")), "{formulas:?}");
    assert!(
        table
            .iter()
            .flatten()
            .all(|c| !c.starts_with(['=', '+', '-', '@']))
    );

    // A narrower filter narrows both alike.
    let narrow = format!("{filter}&state=completed,confirmed");
    let (_, list) = m
        .app
        .get(&m.coordinator, &format!("/api/v1/orders?{narrow}"))
        .await;
    let (_, bytes, _) = download(
        &m.app,
        &m.coordinator,
        &format!("/api/v1/exports/orders?format=xlsx&{narrow}"),
    )
    .await;
    let mut book = calamine::Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
    let sheet = book.worksheet_range("订单").unwrap();
    assert_eq!(sheet.height() - 1, list.as_array().unwrap().len());
    assert_eq!(sheet.get((0, 7)), Some(&Data::String("开始时间".into())));
    assert!(
        matches!(sheet.get((1, 7)), Some(Data::DateTime(_))),
        "window start is a date cell: {:?}",
        sheet.get((1, 7))
    );
    let dt = match sheet.get((1, 9)) {
        // Excel serial days since 1899-12-30 (25569 = 1970-01-01).
        Some(Data::DateTime(d)) => {
            let secs = ((d.as_f64() - 25_569.0) * 86_400.0).round() as i64;
            chrono::DateTime::from_timestamp(secs, 0)
                .unwrap()
                .naive_utc()
        }
        other => panic!("{other:?}"),
    };
    let created = list[0]["created_at"].as_i64().unwrap();
    let local = chrono::DateTime::from_timestamp_millis(created)
        .unwrap()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .naive_local();
    assert_eq!(
        dt.format("%Y-%m-%d %H:%M").to_string(),
        local.format("%Y-%m-%d %H:%M").to_string()
    );

    // Hours per volunteer: the screen and both files agree.
    let q = format!("org_unit={}&{MONTH}", m.xuanwu);
    let (status, screen) = m
        .app
        .get(&m.coordinator, &format!("/api/v1/reports/hours?{q}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{screen}");
    let screen = screen.as_array().unwrap();
    assert!(screen.len() >= 3);
    assert!(
        screen
            .iter()
            .all(|r| r["masked_phone"].as_str().unwrap().contains("****"))
    );
    let (_, bytes, _) = download(
        &m.app,
        &m.coordinator,
        &format!("/api/v1/exports/hours?format=csv&{q}"),
    )
    .await;
    let table = csv_rows(&bytes);
    assert_eq!(table[0][1], "姓名");
    assert_eq!(table.len() - 1, screen.len());
    assert!(!String::from_utf8(bytes).unwrap().contains("1370000"));
    // A masked phone (+86*******0001) is no formula in any spreadsheet's
    // grammar (no operator takes "**"), so Excel and LibreOffice show it as
    // written: the CSV cell is the value itself, without a guard quote.
    for (row, shown) in table[1..].iter().zip(screen) {
        let masked = shown["masked_phone"].as_str().unwrap();
        assert!(masked.starts_with("+86*"), "{masked}");
        assert_eq!(row[2], masked);
    }
    let (_, bytes, _) = download(
        &m.app,
        &m.coordinator,
        &format!("/api/v1/exports/hours?format=xlsx&{q}"),
    )
    .await;
    let mut book = calamine::Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
    let sheet = book.worksheet_range("服务时长").unwrap();
    assert_eq!(sheet.height() - 1, screen.len());
    assert_eq!(
        sheet.get((1, 2)),
        Some(&Data::String(
            screen[0]["masked_phone"].as_str().unwrap().to_string()
        )),
        "a text cell, shown as written"
    );

    // A volunteer's export holds only their own orders, like their list.
    let v = m.app.login("13700000000").await;
    let (_, mine) = m.app.get(&v, "/api/v1/orders?limit=1000").await;
    let (_, bytes, _) = download(&m.app, &v, "/api/v1/exports/orders?format=csv&limit=1000").await;
    assert_eq!(csv_rows(&bytes).len() - 1, mine.as_array().unwrap().len());
    let (status, _, _) =
        download(&m.app, &v, &format!("/api/v1/exports/hours?format=csv&{q}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// Follows `Link: <…>; rel="next"` from `first` until the last page; returns
/// each page's ids.
async fn pages(app: &TestApp, s: &Session, first: &str) -> Vec<Vec<i64>> {
    let mut out = Vec::new();
    let mut next = Some(first.to_string());
    while let Some(path) = next.take() {
        let resp = app
            .client
            .get(format!("{}{path}", app.base))
            .bearer_auth(&s.token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let link = resp
            .headers()
            .get("link")
            .map(|v| v.to_str().unwrap().to_string());
        let cursor = resp
            .headers()
            .get("x-next-cursor")
            .map(|v| v.to_str().unwrap().to_string());
        let body: Value = resp.json().await.unwrap();
        out.push(
            body.as_array()
                .unwrap()
                .iter()
                .map(|o| o["id"].as_i64().unwrap())
                .collect(),
        );
        if let Some(link) = link {
            let url = link
                .strip_prefix('<')
                .and_then(|l| l.split_once(">; rel=\"next\""))
                .map(|(u, _)| u.to_string())
                .unwrap_or_else(|| panic!("Link header {link}"));
            assert!(url.ends_with(&format!("cursor={}", cursor.unwrap())));
            next = Some(url);
        }
    }
    out
}

/// More orders than any page holds: the lists page through all of them
/// with a cursor, and both export formats hold every one, as many as the
/// summary counts.
#[tokio::test]
async fn exports_hold_every_order_and_lists_page_through_them() {
    use calamine::Reader;
    const N: i64 = 1_041;
    let app = TestApp::spawn().await;
    app.import_jiangsu().await;
    let xuanwu = app.division("320102").await;
    let qinhuai = app.division("320104").await;
    app.user("13800000002", &[(Role::Coordinator, Some(xuanwu))])
        .await;
    let coordinator = app.login("13800000002").await;
    let (r1, h1, m1) = household(&app, "13800000011", xuanwu).await;
    let (r2, h2, m2) = household(&app, "13800000012", qinhuai).await;
    let item = app.store.service_items(false).await.unwrap()[0].clone();
    // N orders in Xuanwu in February; some in Qinhuai and in March that
    // the period and scope leave out.
    for n in 0..N {
        let at = FEB_1 + n * 37 * 60_000;
        place(&app.store, r1, h1, m1, xuanwu, item.id, item.lane, None, at).await;
    }
    for n in 0..7 {
        let at = FEB_1 + n * HOUR;
        place(
            &app.store, r2, h2, m2, qinhuai, item.id, item.lane, None, at,
        )
        .await;
        place(
            &app.store,
            r1,
            h1,
            m1,
            xuanwu,
            item.id,
            item.lane,
            None,
            MAR_1 + n,
        )
        .await;
    }
    let (status, summary) = app
        .get(
            &coordinator,
            &format!("/api/v1/reports/summary?org_unit={xuanwu}&{MONTH}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["orders"]["total"], N);
    let (from, to) = (
        summary["from"].as_i64().unwrap(),
        summary["to"].as_i64().unwrap(),
    );
    let query = format!("org_unit={xuanwu}&from={from}&to={to}");

    // The export holds every order of the period, newest first, as many as
    // X-Row-Count says, with no limit given (as the dashboard links it).
    let (status, bytes, count) = download(
        &app,
        &coordinator,
        &format!("/api/v1/exports/orders?format=csv&{query}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let table = csv_rows(&bytes);
    assert_eq!(table.len() - 1, usize::try_from(N).unwrap());
    assert_eq!(count, Some(N.to_string()));
    let exported: Vec<i64> = table[1..].iter().map(|r| r[0].parse().unwrap()).collect();
    let distinct: HashSet<i64> = exported.iter().copied().collect();
    assert_eq!(distinct.len(), exported.len(), "no order twice");
    let (status, bytes, count) = download(
        &app,
        &coordinator,
        &format!("/api/v1/exports/orders?format=xlsx&{query}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(count, Some(N.to_string()));
    let mut book = calamine::Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
    let sheet = book.worksheet_range("订单").unwrap();
    assert_eq!(i64::try_from(sheet.height()).unwrap() - 1, N);

    // The list pages: the largest page, then the rest; the default page
    // size takes six pages. Every page but the last says more exist.
    let big = pages(
        &app,
        &coordinator,
        &format!("/api/v1/orders?{query}&limit=1000"),
    )
    .await;
    assert_eq!(
        big.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![1000, usize::try_from(N - 1000).unwrap()]
    );
    let listed: Vec<i64> = big.concat();
    assert_eq!(
        listed, exported,
        "the list's pages are the export's rows, in order"
    );
    let small = pages(&app, &coordinator, &format!("/api/v1/orders?{query}")).await;
    assert_eq!(small.len(), 6);
    assert_eq!(small.concat(), exported);

    // The board shows each column's most urgent orders and says how many
    // more there are (N in February and 7 in March, all waiting); the
    // dashboard's export links carry no row limit.
    let client = crate::ui::browser();
    crate::ui::sign_in(&app, &client, "13800000002", "/board").await;
    let board = client
        .get(format!("{}/board", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        board.contains(&format!("<span class=\"badge\">{}</span>", N + 7)),
        "the column counts every open order"
    );
    assert!(
        board.contains(&format!("另有 {} 单", N + 7 - 200)),
        "the board says how many it does not show"
    );
    let dashboard = client
        .get(format!(
            "{}/board/dashboard?org_unit={xuanwu}&from=2020-02-01&to=2020-02-29",
            app.base
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let href = dashboard
        .split("href=\"/api/v1/exports/orders?")
        .nth(1)
        .and_then(|h| h.split('"').next())
        .unwrap()
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    assert_eq!(href, format!("{query}&format=xlsx"));
    assert!(!dashboard.contains("limit="));

    // A larger page, an offset or a cursor the server did not hand out is
    // refused, naming the parameter, instead of answering a silent subset.
    for (q, field, code) in [
        ("limit=5000", "limit", "invalid_limit"),
        ("offset=1000", "offset", "offset_unsupported"),
        ("cursor=bm9wZQ", "cursor", "invalid_cursor"),
    ] {
        let (status, body) = app
            .get(&coordinator, &format!("/api/v1/orders?{query}&{q}"))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{q}: {body}");
        assert_eq!(
            (body["field"].as_str(), body["code"].as_str()),
            (Some(field), Some(code))
        );
    }
}

#[tokio::test]
async fn public_figures_suppress_small_cells() {
    let m = month().await;
    let q = format!("org_unit={}&{MONTH}", m.xuanwu);
    let (status, body) = m
        .app
        .call(
            None,
            reqwest::Method::GET,
            &format!("/api/v1/reports/public?{q}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, per_volunteer) = m
        .app
        .get(&m.coordinator, &format!("/api/v1/reports/hours?{q}"))
        .await;
    let served = per_volunteer
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["recorded_minutes"].as_i64().unwrap() + r["backfilled_minutes"].as_i64().unwrap() > 0
        })
        .count();
    let expected = if served < 5 {
        "<5".to_string()
    } else {
        served.to_string()
    };
    assert_eq!(body["volunteers"], expected);
    let completed = body["orders_completed"].as_str().unwrap();
    let hours = body["service_hours"].as_str().unwrap();
    for v in [completed, hours] {
        assert!(v == "<5" || v.parse::<i64>().unwrap() >= 5, "{v}");
    }
    assert!(
        body["text_zh"]
            .as_str()
            .unwrap()
            .contains(&format!("{expected}名志愿者"))
    );
    // A team of two volunteers: every figure is a small cell.
    let (_, team) = m
        .app
        .call(
            None,
            reqwest::Method::GET,
            &format!("/api/v1/reports/public?org_unit={}&{MONTH}", m.team2),
            None,
        )
        .await;
    assert_eq!(team["volunteers"], "<5", "{team}");
    // Totals only: no breakdown, names or ids.
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "from",
            "orders_completed",
            "org_unit",
            "service_hours",
            "text_en",
            "text_zh",
            "to",
            "volunteers"
        ]
    );
    assert!(!body.to_string().contains("志愿者0"));
}

#[tokio::test]
async fn certificates_print_and_verify_without_showing_more() {
    let m = month().await;
    let v = m.volunteers[1];
    let s = m.app.login("13700000001").await;
    let path = format!("/api/v1/volunteers/{v}/certificate?{MONTH}");
    let resp = m
        .app
        .client
        .get(format!("{}{path}", m.app.base))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("志愿服务证明") && page.contains("志愿者1") && page.contains("@media print")
    );
    assert!(page.contains("+86*******0001"), "masked phone");
    assert!(!page.contains("13700000001"));
    let code = page
        .split("/certificates/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    assert!(code.len() >= 43, "256-bit code: {code}");
    // Printing again reuses the code.
    let again = m
        .app
        .client
        .get(format!("{}{path}", m.app.base))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(again.contains(&code));

    // Anyone can verify, and sees the certificate's facts only.
    let (status, body) = m
        .app
        .call(
            None,
            reqwest::Method::GET,
            &format!("/certificates/{code}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let html = body.as_str().unwrap();
    assert!(
        html.contains("真实有效") && html.contains("志愿者1") && html.contains("+86*******0001")
    );
    assert!(html.contains("2020-02-01 至 2020-02-29"));
    for hidden in [
        "13700000001",
        "龙蟠中路",
        "志愿者0",
        "志愿者2",
        "服务内容",
        "/api/",
    ] {
        assert!(!html.contains(hidden), "{hidden} shown");
    }
    let (status, _) = m
        .app
        .call(None, reqwest::Method::GET, "/certificates/not-a-code", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Coordinators in scope may issue; other volunteers may not.
    let resp = m
        .app
        .client
        .get(format!("{}{path}", m.app.base))
        .bearer_auth(&m.coordinator.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let other = m.app.login("13700000002").await;
    assert_eq!(m.app.get(&other, &path).await.0, StatusCode::NOT_FOUND);
    let _ = m.team;
}

#[tokio::test]
async fn metrics_are_served_on_their_own_listener() {
    let app = TestApp::spawn().await;
    let handle = homefront_server::metrics::install();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(homefront_server::metrics::serve(
        listener,
        handle,
        app.store.clone(),
    ));
    let (status, _) = app
        .call(None, reqwest::Method::GET, "/api/v1/service-items", None)
        .await;
    assert!(status.is_client_error() || status.is_success());
    homefront_server::dispatcher::tick(&app.state())
        .await
        .unwrap();
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("homefront_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("route=\"/api/v1/service-items\""), "{text}");
    assert!(
        text.contains("homefront_db_pool_connections{state=\"idle\"}"),
        "{text}"
    );
    assert!(text.contains("homefront_dispatch_offers_total"), "{text}");
    assert!(text.contains("homefront_outbox_lag_seconds"), "{text}");
    // The application port does not serve metrics.
    let (status, _) = app.call(None, reqwest::Method::GET, "/metrics", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_backup_under_write_load_restores_every_acknowledged_order() {
    if use_postgres() {
        // PostgreSQL backups are pg_dump's job (README); nothing to test here.
        return;
    }
    let app = TestApp::spawn().await;
    app.import_jiangsu().await;
    app.user("13800000001", &[(Role::Requester, None)]).await;
    let requester = app.login("13800000001").await;
    let (status, member) = app
        .post(
            &requester,
            "/api/v1/household/members",
            json!({"name": "刘护士", "relation": "self", "adcode": "320102", "street": "龙蟠中路1号"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{member}");
    let item = app.store.service_items(false).await.unwrap()[0].id;
    let acked = Arc::new(Mutex::new(Vec::<i64>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (client, base, token) = (app.client.clone(), app.base.clone(), requester.token.clone());
            let (acked, stop) = (acked.clone(), stop.clone());
            let member = member["id"].as_i64().unwrap();
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    n += 1;
                    let resp = client
                        .post(format!("{base}/api/v1/orders"))
                        .bearer_auth(&token)
                        .header("Idempotency-Key", format!("w{w}-{n}"))
                        .json(&json!({"item_id": item, "member_id": member,
                                      "window_start": "2020-02-12T18:00", "window_end": "2020-02-12T22:00"}))
                        .send()
                        .await
                        .unwrap();
                    if resp.status() == StatusCode::CREATED {
                        let id = resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
                        acked.lock().unwrap().push(id);
                    }
                }
            })
        })
        .collect();
    while acked.lock().unwrap().len() < 20 {
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let dir = std::env::temp_dir().join(format!("hf-backup-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let before: Vec<i64> = acked.lock().unwrap().clone();
    let file = dir.join("backup.db");
    app.store.backup_to(&file).await.unwrap();
    // Keep writing a little after the backup, then stop.
    while acked.lock().unwrap().len() < before.len() + 10 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }

    let target = format!("sqlite://{}", dir.join("restored.db").display());
    let restored_count = Store::restore_sqlite(&file, &target).await.unwrap();
    let restored = Store::connect(&target).await.unwrap();
    restored.migrate().await.unwrap();
    for id in &before {
        assert!(
            restored.order(*id).await.unwrap().is_some(),
            "order {id} lost"
        );
        assert_eq!(restored.order_events(*id).await.unwrap().len(), 1);
    }
    assert!(restored_count >= i64::try_from(before.len()).unwrap());
    assert!(restored_count <= app.store.count_orders().await.unwrap());
    // Not a Homefront database: refused, the target untouched.
    std::fs::write(dir.join("junk.db"), b"not sqlite").unwrap();
    assert!(
        Store::restore_sqlite(&dir.join("junk.db"), &target)
            .await
            .is_err()
    );
    assert!(restored.order(before[0]).await.unwrap().is_some());
    restored.close().await;
    std::fs::remove_dir_all(&dir).ok();
}
