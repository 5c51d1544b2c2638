//! Dispatch over HTTP: offers, exactly-once accepts, expiry, sequential
//! re-offers, escalation, pairing first, eligibility, manual dispatch and
//! deactivation. The dispatcher runs by `dispatcher::tick` on the manual
//! clock, as the worker would.

use homefront_domain::credentials::{Credential, CredentialKind};
use homefront_domain::order_state::{EventAction, OrderState};
use homefront_domain::pairing::PairingRole;
use homefront_domain::vetting::VettingState;
use homefront_domain::{GeoPoint, PhoneNumber, Timestamp};
use homefront_server::dispatcher;
use homefront_store::credentials::NewCredential;
use homefront_store::volunteers::{Account, VolunteerProfile};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Session, T0, TestApp};

/// Xuanwu district's representative point in the shipped data is near
/// (118.80, 32.05); volunteers are placed around it.
const HOME: (f64, f64) = (118.797, 32.049);

pub struct World {
    pub app: TestApp,
    pub team: i64,
    pub xuanwu: i64,
    pub requester: Session,
    pub coordinator: Session,
    pub member: i64,
    pub household: i64,
}

pub async fn world() -> World {
    world_with(homefront_server::config::Config::default()).await
}

/// As [`world`], with the app's configuration `config`.
pub async fn world_with(config: homefront_server::config::Config) -> World {
    let w = crate::helpers::World::jiangsu()
        .config(config)
        .county("320102")
        .team("玄武区志愿服务队")
        .requester("13800000001")
        .coordinator("13800000002")
        .member(
            json!({"name": "刘护士", "relation": "self", "adcode": "320102", "street": "龙蟠中路1号",
                   "longitude": HOME.0, "latitude": HOME.1}),
        )
        .build()
        .await;
    let requester = w.session("13800000001");
    let (_, h) = w.app.get(&requester, "/api/v1/household").await;
    World {
        team: w.team,
        xuanwu: w.county,
        coordinator: w.session("13800000002"),
        requester,
        member: w.members[0],
        household: h["id"].as_i64().unwrap(),
        app: w.app,
    }
}

/// How a seeded volunteer differs from a fully eligible one.
#[derive(Clone, Copy, Default)]
pub struct Flaw {
    pub expired_insurance: bool,
    pub off_duty: bool,
    pub far_km: f64,
}

impl World {
    /// An active, credentialed, on-duty volunteer `km_east` km east of the
    /// household, holding `quals`. Returns the account id.
    pub async fn volunteer(
        &self,
        phone: &str,
        km_east: f64,
        quals: &[CredentialKind],
        flaw: Flaw,
    ) -> i64 {
        self.volunteer_on(self.team, phone, km_east, quals, flaw)
            .await
    }

    /// A team under the division with org-unit id `division`.
    pub async fn team_under(&self, division: i64, name: &str) -> i64 {
        self.app.team(division, name).await
    }

    /// As [`World::volunteer`], on `team`.
    pub async fn volunteer_on(
        &self,
        team: i64,
        phone: &str,
        km_east: f64,
        quals: &[CredentialKind],
        flaw: Flaw,
    ) -> i64 {
        let store = &self.app.store;
        let phone = PhoneNumber::parse(phone).unwrap();
        let hash = crate::helpers::password_hash().await;
        // 1 km east at 32° N is about 0.0106° of longitude.
        let lon = HOME.0 + (km_east + flaw.far_km) * 0.0106;
        let id = store
            .register_volunteer(
                Account::New {
                    phone: &phone,
                    display_name: "张志愿",
                    password_hash: &hash,
                },
                &VolunteerProfile {
                    team_id: team,
                    home_division_id: self.xuanwu,
                    home_location: Some(GeoPoint::new(lon, HOME.1).unwrap()),
                    service_radius_km: 10.0,
                    declared_qualifications: vec![],
                    vehicle_seats: None,
                    languages: vec![],
                    max_concurrent: 1,
                    gender: None,
                    emergency_contact: None,
                },
                None,
                T0,
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
            homefront_store::Store::move_vetting_tx(&mut tx, id, target, None, T0, None, None)
                .await
                .unwrap()
                .unwrap();
            tx.commit().await.unwrap();
        }
        let year = Some(T0.plus_days(365));
        let mut kinds = vec![
            CredentialKind::TrainingCertificate,
            CredentialKind::ServiceAgreement,
            CredentialKind::Insurance,
        ];
        kinds.extend_from_slice(quals);
        for kind in kinds {
            let until = if kind == CredentialKind::Insurance && flaw.expired_insurance {
                Some(T0.plus_minutes(1))
            } else {
                year
            };
            let c = Credential::new(kind, T0.plus_days(-30), until).unwrap();
            store
                .add_credential(
                    &NewCredential {
                        volunteer_id: id,
                        credential: &c,
                        insurer: Some("中国人保"),
                        policy_number: Some("PICC-1"),
                        document_ref: None,
                        actor: None,
                    },
                    T0,
                )
                .await
                .unwrap();
        }
        if !flaw.off_duty {
            store.set_duty(id, true, None, T0).await.unwrap();
        }
        id
    }

    /// Places an order of `item_code` for the household; returns its id.
    pub async fn order(&self, item_code: &str, key: &str) -> i64 {
        let item = self
            .app
            .store
            .service_items(false)
            .await
            .unwrap()
            .into_iter()
            .find(|i| i.code == item_code)
            .unwrap();
        let resp = self
            .app
            .client
            .post(format!("{}/api/v1/orders", self.app.base))
            .bearer_auth(&self.requester.token)
            .header("Idempotency-Key", key)
            .json(&json!({"item_id": item.id, "member_id": self.member,
                          "window_start": "2020-02-12T18:00", "window_end": "2020-02-12T22:00"}))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body = resp.json::<Value>().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{item_code}: {body}");
        body["id"].as_i64().unwrap()
    }

    pub async fn mode(&self, mode: &str, k: i64) {
        let (status, body) = self
            .app
            .call(
                Some(&self.coordinator),
                reqwest::Method::PUT,
                &format!("/api/v1/org-units/{}/dispatch-setting", self.xuanwu),
                Some(json!({"mode": mode, "broadcast_k": k})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    pub async fn tick(&self) -> dispatcher::TickReport {
        dispatcher::tick(&self.app.state()).await.unwrap()
    }

    pub async fn open_offers(&self, order: i64) -> Vec<homefront_store::offers::Offer> {
        self.app
            .store
            .offers_of_order(order)
            .await
            .unwrap()
            .into_iter()
            .filter(|o| o.state == "offered")
            .collect()
    }
}

pub async fn accept(app: &TestApp, s: &Session, offer: i64) -> (StatusCode, Value) {
    app.post(s, &format!("/api/v1/offers/{offer}/accept"), json!({}))
        .await
}

#[tokio::test]
async fn fifty_volunteers_race_for_one_broadcast_offer_and_one_wins() {
    // First accept wins: rank-aware holds off (see dispatch_effective for
    // the same race with holds).
    let w = world_with(homefront_server::config::Config {
        broadcast_hold_seconds: 0,
        ..homefront_server::config::Config::default()
    })
    .await;
    w.mode("broadcast", 50).await;
    let mut sessions = Vec::new();
    for i in 0..50 {
        let phone = format!("1370000{i:04}");
        w.volunteer(&phone, 0.1 * f64::from(i), &[], Flaw::default())
            .await;
        sessions.push(w.app.login(&phone).await);
    }
    let order = w.order("groceries", "race").await;
    let report = w.tick().await;
    assert_eq!(report.offers, 50);
    let offers = w.open_offers(order).await;
    assert_eq!(offers.len(), 50);

    let attempts = offers.iter().map(|o| {
        let s = sessions
            .iter()
            .find(|s| s.user_id == o.volunteer_user_id)
            .unwrap();
        accept(&w.app, s, o.id)
    });
    let results = futures::future::join_all(attempts).await;
    let wins: Vec<_> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .collect();
    let refused: Vec<_> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CONFLICT)
        .collect();
    assert_eq!(wins.len(), 1, "{results:?}");
    assert_eq!(refused.len(), 49);
    assert!(
        refused.iter().all(|(_, b)| b["code"] == "offer_taken"),
        "{refused:?}"
    );
    let events = w.app.store.order_events(order).await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.to_state == OrderState::Assigned)
            .count(),
        1
    );
    let all = w.app.store.offers_of_order(order).await.unwrap();
    assert_eq!(all.iter().filter(|o| o.state == "accepted").count(), 1);
    assert_eq!(all.iter().filter(|o| o.state == "withdrawn").count(), 49);
    // Every late accept is recorded against its offer.
    let late = all.iter().find(|o| o.state == "withdrawn").unwrap();
    assert_eq!(
        w.app.store.offer_responses(late.id).await.unwrap(),
        vec![("accept".to_string(), "offer_taken".to_string())]
    );
    // The losers see "taken".
    let loser = sessions
        .iter()
        .find(|s| s.user_id == late.volunteer_user_id)
        .unwrap();
    let (_, mine) = w.app.get(loser, "/api/v1/offers?show=all").await;
    assert_eq!(mine[0]["taken"], true);
    // A second accept by the winner is a clear 409 too.
    let winner = all.iter().find(|o| o.state == "accepted").unwrap();
    let s = sessions
        .iter()
        .find(|s| s.user_id == winner.volunteer_user_id)
        .unwrap();
    let (status, body) = accept(&w.app, s, winner.id).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_accepted"))
    );
}

#[tokio::test]
async fn an_accept_at_the_expiry_instant_loses_to_expiry_either_way() {
    let w = world().await;
    w.mode("sequential", 1).await;
    let v = w.volunteer("13700000001", 1.0, &[], Flaw::default()).await;
    let s = w.app.login("13700000001").await;
    let order = w.order("groceries", "boundary").await;
    w.tick().await;
    let offer = w.open_offers(order).await.pop().unwrap();
    assert_eq!(offer.volunteer_user_id, v);
    // groceries: 300 s offer timeout.
    assert_eq!(offer.expires_at, T0.0 + 300_000);

    // At the boundary instant: the accept is refused as expired...
    w.app.clock.set(Timestamp(offer.expires_at));
    let (status, body) = accept(&w.app, &s, offer.id).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("offer_expired"))
    );
    // ...and the expiry pass expires it; the order stays unassigned.
    w.tick().await;
    let after = w.app.store.offer(offer.id).await.unwrap().unwrap();
    assert_eq!(after.state, "expired");
    let o = w.app.store.order(order).await.unwrap().unwrap();
    assert_eq!(o.state, OrderState::Dispatching);
    assert_eq!(o.assignee_user_id, None);

    // The other order of events: expiry first, then the accept.
    let order2 = w.order("groceries", "boundary-2").await;
    w.tick().await;
    let offer2 = w.open_offers(order2).await.pop().unwrap();
    w.app.clock.set(Timestamp(offer2.expires_at));
    w.tick().await;
    let (status, body) = accept(&w.app, &s, offer2.id).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("offer_expired"))
    );
    // One millisecond earlier it would have won.
    let order3 = w.order("groceries", "boundary-3").await;
    w.tick().await;
    let offer3 = w.open_offers(order3).await.pop().unwrap();
    w.app.clock.set(Timestamp(offer3.expires_at - 1));
    assert_eq!(accept(&w.app, &s, offer3.id).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_decline_moves_the_order_to_the_next_candidate() {
    let w = world().await;
    w.mode("sequential", 1).await;
    let near = w.volunteer("13700000001", 0.5, &[], Flaw::default()).await;
    let next = w.volunteer("13700000002", 2.0, &[], Flaw::default()).await;
    let _far = w.volunteer("13700000003", 5.0, &[], Flaw::default()).await;
    let order = w.order("groceries", "decline").await;
    w.tick().await;
    let first = w.open_offers(order).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].volunteer_user_id, near, "nearest first");
    assert_eq!(first[0].candidate_rank, 1);
    let explanation: Value = serde_json::from_str(&first[0].explanation).unwrap();
    assert!(
        explanation["distance_km"].as_f64().unwrap() < 1.0,
        "{explanation}"
    );
    assert!(explanation["cost"]["total"].is_number());

    let s = w.app.login("13700000001").await;
    let (status, _) = w
        .app
        .post(
            &s,
            &format!("/api/v1/offers/{}/decline", first[0].id),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    w.tick().await;
    let second = w.open_offers(order).await;
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].volunteer_user_id, next);
    assert_eq!(second[0].round, 2);
    // Declining twice is a clear 409.
    let (status, body) = w
        .app
        .post(
            &s,
            &format!("/api/v1/offers/{}/decline", first[0].id),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_declined"))
    );
}

#[tokio::test]
async fn an_unaccepted_order_escalates_to_county_then_city() {
    let w = world().await;
    // Nobody to dispatch to: the order waits. Its window is the next
    // morning, so the lane's deadline (urgent: 30 min) rules, not the lead
    // before the window.
    let order = w
        .order_with(
            "meal_delivery",
            "escalate",
            json!({"window_start": "2020-02-13T10:00", "window_end": "2020-02-13T12:00"}),
        )
        .await;
    w.tick().await;
    let o = w.app.store.order(order).await.unwrap().unwrap();
    assert_eq!((o.state.as_str(), o.escalation_level), ("dispatching", 0));

    w.app.clock.set(T0.plus_minutes(30).plus_ms(-1));
    w.tick().await;
    assert_eq!(
        w.app
            .store
            .order(order)
            .await
            .unwrap()
            .unwrap()
            .escalation_level,
        0
    );
    w.app.clock.set(T0.plus_minutes(30));
    assert_eq!(w.tick().await.escalated, 1);
    assert_eq!(
        w.app
            .store
            .order(order)
            .await
            .unwrap()
            .unwrap()
            .escalation_level,
        1
    );
    w.app.clock.set(T0.plus_minutes(60));
    w.tick().await;
    assert_eq!(
        w.app
            .store
            .order(order)
            .await
            .unwrap()
            .unwrap()
            .escalation_level,
        2
    );
    let events = w.app.store.order_events(order).await.unwrap();
    let escalations: Vec<_> = events
        .iter()
        .filter(|e| e.action == EventAction::Escalate)
        .collect();
    assert_eq!(escalations.len(), 2);
    assert!(escalations[0].reason.as_deref().unwrap().contains("county"));
    assert!(escalations[1].reason.as_deref().unwrap().contains("city"));

    // The county coordinator sees it at the top of the queue.
    let coordinator = w.app.login("13800000002").await;
    let (_, queue) = w.app.get(&coordinator, "/api/v1/dispatch/queue").await;
    assert_eq!(queue[0]["order"]["id"], order);
    assert_eq!(queue[0]["escalation_level"], 2);

    // After the window ends it is given up, with a reason.
    w.app.clock.set(Timestamp(1_581_566_400_000)); // 2020-02-13T12:00+08:00
    assert_eq!(w.tick().await.unfulfilled, 1);
    assert_eq!(
        w.app.store.order(order).await.unwrap().unwrap().state,
        OrderState::Unfulfilled
    );
}

#[tokio::test]
async fn a_paired_household_goes_to_its_primary_then_backup() {
    let w = world().await;
    w.mode("broadcast", 5).await;
    let _near = w.volunteer("13700000001", 0.2, &[], Flaw::default()).await;
    let primary = w.volunteer("13700000002", 6.0, &[], Flaw::default()).await;
    let backup = w.volunteer("13700000003", 7.0, &[], Flaw::default()).await;
    w.app
        .store
        .create_pairing(w.household, primary, PairingRole::Primary, None, T0.0)
        .await
        .unwrap();
    w.app
        .store
        .create_pairing(w.household, backup, PairingRole::Backup, None, T0.0)
        .await
        .unwrap();
    let order = w.order("groceries", "paired").await;
    w.tick().await;
    let first = w.open_offers(order).await;
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0].volunteer_user_id, first[0].via.as_str()),
        (primary, "pairing")
    );
    w.app.clock.set(Timestamp(first[0].expires_at));
    w.tick().await;
    let second = w.open_offers(order).await;
    assert_eq!(second.len(), 1);
    assert_eq!(
        (second[0].volunteer_user_id, second[0].via.as_str()),
        (backup, "pairing")
    );
    w.app.clock.set(Timestamp(second[0].expires_at));
    w.tick().await;
    let third = w.open_offers(order).await;
    assert!(third.iter().all(|o| o.via == "broadcast"
        && o.volunteer_user_id != primary
        && o.volunteer_user_id != backup));
    assert!(!third.is_empty());
}

#[tokio::test]
async fn ineligible_volunteers_are_never_offered() {
    let w = world().await;
    w.mode("broadcast", 50).await;
    let good = w
        .volunteer(
            "13700000001",
            1.0,
            &[CredentialKind::DrivingLicence],
            Flaw::default(),
        )
        .await;
    let _expired = w
        .volunteer(
            "13700000002",
            1.0,
            &[CredentialKind::DrivingLicence],
            Flaw {
                expired_insurance: true,
                ..Flaw::default()
            },
        )
        .await;
    let _off = w
        .volunteer(
            "13700000003",
            1.0,
            &[CredentialKind::DrivingLicence],
            Flaw {
                off_duty: true,
                ..Flaw::default()
            },
        )
        .await;
    let _far = w
        .volunteer(
            "13700000004",
            1.0,
            &[CredentialKind::DrivingLicence],
            Flaw {
                far_km: 25.0,
                ..Flaw::default()
            },
        )
        .await;
    let _unqualified = w.volunteer("13700000005", 1.0, &[], Flaw::default()).await;
    // A ride needs a driving licence.
    let order = w.order("ride", "ride").await;
    w.tick().await;
    let offers = w.app.store.offers_of_order(order).await.unwrap();
    let offered: Vec<i64> = offers.iter().map(|o| o.volunteer_user_id).collect();
    assert_eq!(offered, vec![good]);

    // The coordinator's ranked list shows the same single candidate, and a
    // manual offer to anyone else is refused.
    let (status, list) = w
        .app
        .get(
            &w.coordinator,
            &format!("/api/v1/orders/{order}/candidates"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["volunteer_user_id"], good);
    assert!(list[0]["cost"]["distance"].as_f64().unwrap() > 0.5);
    let (status, err) = w
        .app
        .post(
            &w.coordinator,
            &format!("/api/v1/orders/{order}/offers"),
            json!({"volunteer_user_id": _unqualified}),
        )
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("not_a_candidate"))
    );
}

#[tokio::test]
async fn manual_mode_waits_for_the_coordinator() {
    let w = world().await;
    w.mode("manual", 1).await;
    let v = w.volunteer("13700000001", 1.0, &[], Flaw::default()).await;
    let order = w.order("groceries", "manual").await;
    w.tick().await;
    assert!(w.app.store.offers_of_order(order).await.unwrap().is_empty());
    assert_eq!(
        w.app.store.order(order).await.unwrap().unwrap().state,
        OrderState::Dispatching
    );
    let (status, offer) = w
        .app
        .post(
            &w.coordinator,
            &format!("/api/v1/orders/{order}/offers"),
            json!({"volunteer_user_id": v}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{offer}");
    assert_eq!(offer["via"], "manual");
    let s = w.app.login("13700000001").await;
    // Before accepting: the district and distance, never the street.
    let (_, offers) = w.app.get(&s, "/api/v1/offers").await;
    assert_eq!(offers[0]["order"]["division"]["name"], "玄武区");
    assert!(offers[0]["distance_km"].as_f64().unwrap() > 0.5);
    assert!(!offers.to_string().contains("龙蟠中路"));
    let (status, accepted) = accept(&w.app, &s, offer["id"].as_i64().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(accepted["order"]["street"], "龙蟠中路1号");
}

#[tokio::test]
async fn suspending_a_volunteer_re_dispatches_their_live_assignment() {
    let w = world().await;
    w.mode("sequential", 1).await;
    let first = w.volunteer("13700000001", 0.5, &[], Flaw::default()).await;
    let second = w.volunteer("13700000002", 3.0, &[], Flaw::default()).await;
    w.app
        .store
        .create_pairing(w.household, first, PairingRole::Primary, None, T0.0)
        .await
        .unwrap();
    let order = w.order("groceries", "suspend").await;
    w.tick().await;
    let offer = w.open_offers(order).await.pop().unwrap();
    let s = w.app.login("13700000001").await;
    assert_eq!(accept(&w.app, &s, offer.id).await.0, StatusCode::OK);

    let (status, body) = w
        .app
        .post(
            &w.coordinator,
            &format!("/api/v1/volunteers/{first}/vetting"),
            json!({"target_state": "suspended", "note": "投诉调查"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let o = w.app.store.order(order).await.unwrap().unwrap();
    assert_eq!(
        (o.state.as_str(), o.assignee_user_id),
        ("dispatching", None)
    );
    let events = w.app.store.order_events(order).await.unwrap();
    assert_eq!(events.last().unwrap().action, EventAction::Release);
    // The pairing ended with a re-pairing proposal.
    assert!(
        w.app
            .store
            .live_pairings(w.household)
            .await
            .unwrap()
            .is_empty()
    );
    w.tick().await;
    let again = w.open_offers(order).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].volunteer_user_id, second);
}

#[tokio::test]
async fn cancelling_or_assigning_by_hand_withdraws_open_offers() {
    let w = world().await;
    w.mode("broadcast", 5).await;
    let a = w.volunteer("13700000001", 0.5, &[], Flaw::default()).await;
    let b = w.volunteer("13700000002", 1.0, &[], Flaw::default()).await;
    let cancelled = w.order("groceries", "cancel-me").await;
    let by_hand = w.order("groceries", "assign-me").await;
    w.tick().await;
    assert_eq!(w.open_offers(cancelled).await.len(), 2);
    let offer = w
        .open_offers(cancelled)
        .await
        .into_iter()
        .find(|o| o.volunteer_user_id == a)
        .unwrap();
    let (status, _) = w
        .app
        .post(
            &w.requester,
            &format!("/api/v1/orders/{cancelled}/cancel"),
            json!({"reason": "已自行解决"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(w.open_offers(cancelled).await.is_empty());
    let s = w.app.login("13700000001").await;
    let (status, body) = accept(&w.app, &s, offer.id).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("offer_withdrawn"))
    );

    let (status, _) = w
        .app
        .post(
            &w.coordinator,
            &format!("/api/v1/orders/{by_hand}/assign"),
            json!({"volunteer_user_id": b}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(w.open_offers(by_hand).await.is_empty());
}

/// The one rule of manual dispatch: whoever an order's candidate list holds
/// (a team of the order's county, its city or the province; any team of
/// the city once the order escalated to the city queue) can be offered the
/// order, assigned it by hand and paired with the household, by the
/// county's coordinator; a neighbouring county's team only after the
/// escalation.
#[tokio::test]
async fn a_coordinator_may_offer_assign_and_pair_every_listed_candidate() {
    let w = world().await;
    w.mode("manual", 1).await;
    let province = w.app.division("320000").await;
    let nanjing = w.app.division("320100").await;
    let qinhuai = w.app.division("320104").await;
    let province_team = w.team_under(province, "省青年志愿者应急服务队").await;
    let city_team = w.team_under(nanjing, "南京市志愿服务队").await;
    let neighbour_team = w.team_under(qinhuai, "秦淮区志愿服务队").await;
    let from_province = w
        .volunteer_on(province_team, "13700000001", 0.5, &[], Flaw::default())
        .await;
    let from_city = w
        .volunteer_on(city_team, "13700000002", 0.6, &[], Flaw::default())
        .await;
    let neighbour = w
        .volunteer_on(neighbour_team, "13700000003", 0.7, &[], Flaw::default())
        .await;
    let candidates = |order: i64| {
        let w = &w;
        async move {
            let (status, list) = w
                .app
                .get(
                    &w.coordinator,
                    &format!("/api/v1/orders/{order}/candidates"),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{list}");
            list.as_array()
                .unwrap()
                .iter()
                .map(|c| c["volunteer_user_id"].as_i64().unwrap())
                .collect::<Vec<_>>()
        }
    };
    let listed = candidates(w.order("groceries", "rule-1").await).await;
    assert!(listed.contains(&from_province) && listed.contains(&from_city));
    assert!(
        !listed.contains(&neighbour),
        "another county's team is not listed"
    );

    // Offer and hand assignment of listed candidates, as the county's
    // coordinator: both the province's and the city's volunteer.
    let offered = w.order("groceries", "rule-2").await;
    let (status, body) = w
        .app
        .post(
            &w.coordinator,
            &format!("/api/v1/orders/{offered}/offers"),
            json!({"volunteer_user_id": from_city}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let assigned = w.order("groceries", "rule-3").await;
    let (status, body) = w
        .app
        .post(
            &w.coordinator,
            &format!("/api/v1/orders/{assigned}/assign"),
            json!({"volunteer_user_id": from_province}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["assignee_user_id"], from_province);

    // Pairing the household with a listed candidate.
    let (status, body) = w
        .app
        .post(
            &w.coordinator,
            "/api/v1/pairings",
            json!({"household_id": w.household, "volunteer_user_id": from_city, "role": "primary"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Another county's volunteer: refused alike for all three.
    let order = w.order("groceries", "rule-4").await;
    for (path, body) in [
        (
            format!("/api/v1/orders/{order}/offers"),
            json!({"volunteer_user_id": neighbour}),
        ),
        (
            format!("/api/v1/orders/{order}/assign"),
            json!({"volunteer_user_id": neighbour}),
        ),
        (
            "/api/v1/pairings".to_string(),
            json!({"household_id": w.household, "volunteer_user_id": neighbour, "role": "backup"}),
        ),
    ] {
        let (status, answer) = w.app.post(&w.coordinator, &path, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {answer}");
        assert_eq!(answer["field"], "volunteer_user_id", "{path}");
    }

    // Escalated to the city queue, the order's candidates widen to the
    // city's teams, and the same volunteer may be assigned.
    assert!(
        w.app
            .store
            .escalate_order(order, 0, 2, "city queue", T0.0 + 1)
            .await
            .unwrap()
    );
    assert!(candidates(order).await.contains(&neighbour));
    let (status, body) = w
        .app
        .post(
            &w.coordinator,
            &format!("/api/v1/orders/{order}/assign"),
            json!({"volunteer_user_id": neighbour}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

impl World {
    /// Places an order of `item_code` with extra body fields (e.g. a
    /// `location` in another district); returns its id.
    pub async fn order_with(&self, item_code: &str, key: &str, extra: Value) -> i64 {
        let item = self
            .app
            .store
            .service_items(false)
            .await
            .unwrap()
            .into_iter()
            .find(|i| i.code == item_code)
            .unwrap();
        let mut body = json!({"item_id": item.id, "member_id": self.member,
                              "window_start": "2020-02-12T18:00", "window_end": "2020-02-12T22:00"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let resp = self
            .app
            .client
            .post(format!("{}/api/v1/orders", self.app.base))
            .bearer_auth(&self.requester.token)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body = resp.json::<Value>().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{item_code}: {body}");
        body["id"].as_i64().unwrap()
    }

    /// Offers `order` to `volunteer` directly (as a dispatch round would),
    /// open until `expires_at`; returns the offer's id.
    pub async fn offer_to(&self, order: i64, volunteer: i64, expires_at: i64) -> i64 {
        let offer = homefront_store::offers::NewOffer {
            order_id: order,
            volunteer_user_id: volunteer,
            via: "sequential",
            round: 1,
            candidate_rank: 1,
            distance_km: Some(1.0),
            cost: 1.0,
            explanation: "{}".into(),
            expires_at,
            offered_by: None,
        };
        let now = homefront_domain::Clock::now(&self.app.clock).epoch_ms();
        assert!(
            self.app
                .store
                .write_round(order, &[offer], now)
                .await
                .unwrap()
        );
        self.open_offers(order)
            .await
            .into_iter()
            .find(|o| o.volunteer_user_id == volunteer)
            .unwrap()
            .id
    }

    /// Lets `volunteer` hold up to `n` services at once.
    pub async fn max_load(&self, volunteer: i64, n: i64) {
        let mut tx = self.app.store.begin_write().await.unwrap();
        sqlx::query("update volunteer set max_concurrent = $1 where user_id = $2")
            .bind(n)
            .bind(volunteer)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
}

/// A volunteer holds one on-site service at a time: a second accept whose
/// window overlaps (another district, same evening) is refused, and the
/// dispatcher offers them no such order; a remote item the catalogue lets
/// run alongside is the exception, other remote items are not.
#[tokio::test]
async fn overlapping_on_site_assignments_are_refused_and_not_offered() {
    use homefront_domain::Clock;
    let w = world().await;
    let nanjing = w.app.division("320100").await;
    let city_team = w.team_under(nanjing, "南京市志愿服务队").await;
    let busy = w
        .volunteer_on(city_team, "13700000001", 0.5, &[], Flaw::default())
        .await;
    let free = w.volunteer("13700000002", 0.6, &[], Flaw::default()).await;
    for v in [busy, free] {
        w.max_load(v, 5).await;
    }
    let s = w.app.login("13700000001").await;
    let later = w.app.clock.now().epoch_ms() + 3_600_000;
    // 18:00-22:00 in Xuanwu, and 19:00-21:00 in Qinhuai (another district).
    let xuanwu_order = w.order("groceries", "overlap-1").await;
    let qinhuai_order = w
        .order_with(
            "errands",
            "overlap-2",
            json!({"window_start": "2020-02-12T19:00", "window_end": "2020-02-12T21:00",
                   "location": {"adcode": "320104", "street": "中华路1号"}}),
        )
        .await;
    let first = w.offer_to(xuanwu_order, busy, later).await;
    let second = w.offer_to(qinhuai_order, busy, later).await;
    // Both accepted at once: exactly one wins, the other is refused.
    let (a, b) = tokio::join!(accept(&w.app, &s, first), accept(&w.app, &s, second));
    let mut codes =
        [a, b].map(|(status, body)| (status, body["code"].as_str().map(str::to_string)));
    codes.sort_by_key(|c| c.0);
    assert_eq!(
        codes,
        [
            (StatusCode::OK, None),
            (StatusCode::CONFLICT, Some("overlapping_assignment".into()))
        ]
    );
    let mut states = Vec::new();
    for id in [xuanwu_order, qinhuai_order] {
        let o = w.app.store.order(id).await.unwrap().unwrap();
        states.push((o.state, o.assignee_user_id));
    }
    states.sort();
    assert_eq!(
        states,
        vec![
            (OrderState::Dispatching, None),
            (OrderState::Assigned, Some(busy))
        ]
    );

    // Not offered such an order: the dispatcher passes the busy volunteer
    // over for the free one, and the candidate list leaves them out.
    w.mode("broadcast", 5).await;
    let third = w.order("supplies_delivery", "overlap-3").await;
    w.tick().await;
    let offered: Vec<i64> = w
        .open_offers(third)
        .await
        .iter()
        .map(|o| o.volunteer_user_id)
        .collect();
    assert_eq!(offered, vec![free]);
    let (_, candidates) = w
        .app
        .get(
            &w.coordinator,
            &format!("/api/v1/orders/{third}/candidates"),
        )
        .await;
    assert!(
        candidates
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["volunteer_user_id"] != busy)
    );
    // Nor may a coordinator assign it to them by hand.
    let (status, body) = w
        .app
        .post(
            &w.coordinator,
            &format!("/api/v1/orders/{third}/assign"),
            json!({"volunteer_user_id": busy}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "overlapping_assignment");

    // A remote item that runs alongside (activating call time and data)
    // may be taken in the same hours; a remote call that does not, may not.
    w.mode("manual", 1).await;
    let data = w.order("carrier_data", "overlap-4").await;
    let advice = w.order("repair_advice", "overlap-5").await;
    let data_offer = w.offer_to(data, busy, later).await;
    let advice_offer = w.offer_to(advice, busy, later).await;
    let (status, body) = accept(&w.app, &s, advice_offer).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("overlapping_assignment"))
    );
    let (status, body) = accept(&w.app, &s, data_offer).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// An accept 200 ms after the order's window ended is refused under the
/// same compare-and-set (409 `window_passed`), nothing is assigned, and
/// the order is unfulfilled at once, without waiting for a dispatcher
/// pass; a hand assignment then is refused alike. One just before the end
/// is accepted.
#[tokio::test]
async fn an_accept_after_the_window_ends_is_refused_and_the_order_given_up() {
    let w = world().await;
    let v = w.volunteer("13700000001", 0.5, &[], Flaw::default()).await;
    w.max_load(v, 5).await;
    let s = w.app.login("13700000001").await;
    let late = w.order("groceries", "late").await;
    let (_, view) = w
        .app
        .get(&w.requester, &format!("/api/v1/orders/{late}"))
        .await;
    let window_end = view["window_end"].as_i64().unwrap();
    // An offer that outlives the window (as a long offer timeout would).
    let offer = w.offer_to(late, v, window_end + 3_600_000).await;
    w.app.clock.set(Timestamp(window_end + 200));
    let (status, body) = accept(&w.app, &s, offer).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "window_passed");
    let order = w.app.store.order(late).await.unwrap().unwrap();
    assert_eq!(
        (order.state.as_str(), order.assignee_user_id),
        ("unfulfilled", None)
    );
    let events = w.app.store.order_events(late).await.unwrap();
    assert!(
        events.iter().all(|e| e.action != EventAction::Assign),
        "{events:?}"
    );
    let last = events.last().unwrap();
    assert_eq!(last.to_state, OrderState::Unfulfilled);
    assert_eq!(last.at, window_end + 200);
    assert_eq!(
        w.app.store.offer_responses(offer).await.unwrap(),
        vec![("accept".to_string(), "window_passed".to_string())]
    );

    // Hand assignment after the end: refused, the order given up.
    let by_hand = w
        .order_with(
            "groceries",
            "late-hand",
            json!({"window_start": "2020-02-12T22:00", "window_end": "2020-02-12T23:00"}),
        )
        .await;
    let (_, view) = w
        .app
        .get(&w.requester, &format!("/api/v1/orders/{by_hand}"))
        .await;
    w.app
        .clock
        .set(Timestamp(view["window_end"].as_i64().unwrap() + 1));
    let (status, body) = w
        .app
        .post(
            &w.coordinator,
            &format!("/api/v1/orders/{by_hand}/assign"),
            json!({"volunteer_user_id": v}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("window_passed"))
    );
    let order = w.app.store.order(by_hand).await.unwrap().unwrap();
    assert_eq!(order.state, OrderState::Unfulfilled);

    // Just before its end, an order is still accepted.
    let in_time = w
        .order_with(
            "groceries",
            "in-time",
            json!({"window_start": "2020-02-12T23:00", "window_end": "2020-02-12T23:30"}),
        )
        .await;
    let (_, view) = w
        .app
        .get(&w.requester, &format!("/api/v1/orders/{in_time}"))
        .await;
    let end = view["window_end"].as_i64().unwrap();
    let offer = w.offer_to(in_time, v, end + 3_600_000).await;
    w.app.clock.set(Timestamp(end - 1));
    let (status, body) = accept(&w.app, &s, offer).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_round_is_refused_while_an_offer_of_the_order_is_open() {
    let w = world().await;
    let first = w.volunteer("13900000001", 1.0, &[], Flaw::default()).await;
    let second = w.volunteer("13900000002", 2.0, &[], Flaw::default()).await;
    let order = w.order("groceries", "open-round").await;
    let later = T0.plus_minutes(30).epoch_ms();
    w.offer_to(order, first, later).await;
    // A second dispatcher's round (or a pass that read a stale backlog)
    // while the first offer is open: refused, nothing written.
    let duplicate = homefront_store::offers::NewOffer {
        order_id: order,
        volunteer_user_id: second,
        via: "sequential",
        round: 1,
        candidate_rank: 1,
        distance_km: Some(2.0),
        cost: 2.0,
        explanation: "{}".into(),
        expires_at: later,
        offered_by: None,
    };
    let store = &w.app.store;
    assert!(
        !store
            .write_round(order, std::slice::from_ref(&duplicate), T0.epoch_ms())
            .await
            .unwrap()
    );
    let open = w.open_offers(order).await;
    assert_eq!(
        open.iter().map(|o| o.volunteer_user_id).collect::<Vec<_>>(),
        vec![first]
    );
    // A coordinator may still offer it to one more volunteer.
    assert!(
        store
            .add_manual_offers(order, &[duplicate], T0.epoch_ms())
            .await
            .unwrap()
    );
    assert_eq!(w.open_offers(order).await.len(), 2);
    // Once no offer is open, the next round is written.
    let mut tx = store.begin_write().await.unwrap();
    sqlx::query("update offer set state = 'expired' where order_id = $1")
        .bind(order)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(store.write_round(order, &[], T0.epoch_ms()).await.unwrap());
}

/// Statements of the dispatcher over a backlog of `n` orders nobody can
/// serve (no volunteer): (the first pass, which moves each order to
/// `dispatching`, the second pass, which writes nothing).
async fn backlog_statements(n: usize) -> (u64, u64) {
    let w = world().await;
    let store = &w.app.store;
    for i in 0..n {
        w.order("groceries", &format!("backlog-{i}")).await;
    }
    let before = store.statements();
    let report = w.tick().await;
    let first = store.statements() - before;
    assert_eq!(report.offers, 0);
    assert!(
        w.app
            .store
            .orders_waiting()
            .await
            .unwrap()
            .iter()
            .all(|o| o.state == "dispatching")
    );
    let before = store.statements();
    w.tick().await;
    let second = store.statements() - before;
    (first, second)
}

#[tokio::test]
async fn a_pass_reads_and_writes_the_backlog_by_sets_whatever_its_size() {
    let (first_10, second_10) = backlog_statements(10).await;
    let (first_100, second_100) = backlog_statements(100).await;
    // Reading the backlog costs the same for 10 and 100 waiting orders.
    assert_eq!(
        second_10, second_100,
        "a pass that writes nothing: {second_10} statements for 10 orders, {second_100} for 100"
    );
    // So does writing their rounds: one chunk of multi-row statements
    // (lock, read, state change, event rows, facts, outbox rows).
    assert_eq!(
        first_10, first_100,
        "a pass that writes every round: {first_10} statements for 10 orders, {first_100} for 100"
    );
    assert!(
        first_10 - second_10 <= 6,
        "{} statements to write one chunk of rounds",
        first_10 - second_10
    );
    // A fixed number of set-based reads (expiry, holds, backlog, catalogue,
    // settings, offers, pairings, loads, open offers, bookings, minutes,
    // the province's roster): a per-order read would add 10 or more here.
    assert!(second_10 <= 20, "{second_10} statements for a pass");
}

/// The outbox rows of `order` as (kind, user, data without ids), oldest first.
async fn outbox_of(w: &World, order: i64) -> Vec<(String, Option<i64>, Value)> {
    let rows: Vec<(String, Option<i64>, String)> = sqlx::query_as(
        "select kind, user_id, data from outbox_event where order_id = $1 order by id",
    )
    .bind(order)
    .fetch_all(w.app.store.pool())
    .await
    .unwrap();
    rows.into_iter()
        .map(|(kind, user, data)| {
            let mut data: Value = serde_json::from_str(&data).unwrap();
            let map = data.as_object_mut().unwrap();
            map.remove("order_id");
            map.remove("offer_id");
            (kind, user, data)
        })
        .collect()
}

#[tokio::test]
async fn rounds_written_by_sets_write_what_single_rounds_write() {
    let w = world().await;
    let first = w.volunteer("13900000001", 1.0, &[], Flaw::default()).await;
    let second = w.volunteer("13900000002", 2.0, &[], Flaw::default()).await;
    let store = &w.app.store;
    let later = T0.plus_minutes(30).epoch_ms();
    let offer = |order: i64, volunteer: i64, rank: i64| homefront_store::offers::NewOffer {
        order_id: order,
        volunteer_user_id: volunteer,
        via: "broadcast",
        round: 1,
        candidate_rank: rank,
        distance_km: Some(1.04 * rank as f64),
        cost: 1.0,
        explanation: "{}".into(),
        expires_at: later,
        offered_by: None,
    };
    let single = w.order("groceries", "single").await;
    let by_set = w.order("groceries", "by-set").await;
    let open = w.order("groceries", "open").await;
    w.offer_to(open, first, later).await;
    let before = store.statements();
    assert!(
        store
            .write_round(
                single,
                &[offer(single, first, 1), offer(single, second, 2)],
                T0.epoch_ms()
            )
            .await
            .unwrap()
    );
    let one_round = store.statements() - before;
    let set_offers = [offer(by_set, first, 1), offer(by_set, second, 2)];
    let open_offers = [offer(open, second, 1)];
    let before = store.statements();
    let written = store
        .write_rounds(
            &[
                (by_set, &set_offers[..]),
                // An offer of it is open: refused, as by write_round.
                (open, &open_offers[..]),
                // The same order twice in one call: its first round only.
                (by_set, &set_offers[..]),
                // No such order.
                (i64::MAX, &[]),
            ],
            T0.epoch_ms(),
        )
        .await
        .unwrap();
    assert_eq!(written, vec![true, false, false, false]);
    assert!(store.statements() - before < one_round);
    // The same offers, event rows and outbox rows as the single round.
    let offers = |order: i64| async move {
        let mut o: Vec<(i64, String, i64, Option<f64>)> = store
            .offers_of_order(order)
            .await
            .unwrap()
            .into_iter()
            .map(|o| {
                (
                    o.volunteer_user_id,
                    o.state,
                    o.candidate_rank,
                    o.distance_km,
                )
            })
            .collect();
        o.sort_by_key(|x| x.0);
        o
    };
    assert_eq!(offers(single).await, offers(by_set).await);
    let events = |order: i64| async move {
        store
            .order_events(order)
            .await
            .unwrap()
            .into_iter()
            .map(|e| {
                (
                    e.action,
                    e.from_state,
                    e.to_state,
                    e.actor_user_id,
                    e.reason,
                    e.at,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(events(single).await, events(by_set).await);
    let single_outbox = outbox_of(&w, single).await;
    assert_eq!(single_outbox.len(), 4, "{single_outbox:?}");
    assert_eq!(single_outbox, outbox_of(&w, by_set).await);
    // Each offer-made row names its own offer, sent to its volunteer.
    let rows: Vec<(Option<i64>, String)> =
        sqlx::query_as("select user_id, data from outbox_event where order_id = $1")
            .bind(by_set)
            .fetch_all(store.pool())
            .await
            .unwrap();
    let made = store.offers_of_order(by_set).await.unwrap();
    let mut named = 0;
    for (user, data) in rows {
        let data: Value = serde_json::from_str(&data).unwrap();
        if let Some(id) = data["offer_id"].as_i64() {
            let o = made.iter().find(|o| o.id == id).unwrap();
            assert_eq!(user, Some(o.volunteer_user_id));
            named += 1;
        }
    }
    assert_eq!(named, 2);
    // The order with an open offer kept that offer alone.
    assert_eq!(
        w.open_offers(open)
            .await
            .iter()
            .map(|o| o.volunteer_user_id)
            .collect::<Vec<_>>(),
        vec![first]
    );
}
