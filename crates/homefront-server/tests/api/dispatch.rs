//! Dispatch over HTTP: offers, exactly-once accepts, expiry, sequential
//! re-offers, escalation, pairing first, eligibility, manual dispatch and
//! deactivation. The dispatcher runs by `dispatcher::tick` on the manual
//! clock, as the worker would.

use homefront_domain::credentials::{Credential, CredentialKind};
use homefront_domain::org::OrgKind;
use homefront_domain::vetting::VettingState;
use homefront_domain::{GeoPoint, PhoneNumber, Role, Timestamp};
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
    let app = TestApp::spawn().await;
    app.import_jiangsu().await;
    let xuanwu = app.division("320102").await;
    let parent = app.store.org_unit(xuanwu).await.unwrap().unwrap();
    let team = app
        .store
        .create_org_unit(
            homefront_store::org_units::NewOrgUnit {
                kind: OrgKind::Team,
                name: "玄武区志愿服务队",
                parent: &parent,
                location: None,
            },
            T0.0,
        )
        .await
        .unwrap()
        .id;
    app.user("13800000001", &[(Role::Requester, None)]).await;
    app.user("13800000002", &[(Role::Coordinator, Some(xuanwu))])
        .await;
    let requester = app.login("13800000001").await;
    let coordinator = app.login("13800000002").await;
    let (_, m) = app
        .post(
            &requester,
            "/api/v1/household/members",
            json!({"name": "刘护士", "relation": "self", "adcode": "320102", "street": "龙蟠中路1号",
                   "longitude": HOME.0, "latitude": HOME.1}),
        )
        .await;
    let (_, h) = app.get(&requester, "/api/v1/household").await;
    World {
        app,
        team,
        xuanwu,
        requester,
        coordinator,
        member: m["id"].as_i64().unwrap(),
        household: h["id"].as_i64().unwrap(),
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
                    team_id: self.team,
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
        assert_eq!(resp.status(), StatusCode::CREATED);
        resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
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
    let w = world().await;
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
        events.iter().filter(|e| e.to_state == "assigned").count(),
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
    assert_eq!(o.state, "dispatching");
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
    // Nobody to dispatch to: the order waits.
    let order = w.order("meal_delivery", "escalate").await; // urgent lane: 30 min
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
    let escalations: Vec<_> = events.iter().filter(|e| e.action == "escalate").collect();
    assert_eq!(escalations.len(), 2);
    assert!(escalations[0].reason.as_deref().unwrap().contains("county"));
    assert!(escalations[1].reason.as_deref().unwrap().contains("city"));

    // The county coordinator sees it at the top of the queue.
    let coordinator = w.app.login("13800000002").await;
    let (_, queue) = w.app.get(&coordinator, "/api/v1/dispatch/queue").await;
    assert_eq!(queue[0]["order"]["id"], order);
    assert_eq!(queue[0]["escalation_level"], 2);

    // After the window ends it is given up, with a reason.
    w.app.clock.set(Timestamp(1_581_516_000_000)); // 2020-02-12T22:00+08:00
    assert_eq!(w.tick().await.unfulfilled, 1);
    assert_eq!(
        w.app.store.order(order).await.unwrap().unwrap().state,
        "unfulfilled"
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
        .create_pairing(w.household, primary, "primary", None, T0.0)
        .await
        .unwrap();
    w.app
        .store
        .create_pairing(w.household, backup, "backup", None, T0.0)
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
        "dispatching"
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
        .create_pairing(w.household, first, "primary", None, T0.0)
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
    assert_eq!(events.last().unwrap().action, "release");
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
