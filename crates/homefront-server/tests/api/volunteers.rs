//! Volunteers over HTTP: profiles and scope, the vetting pipeline, credential
//! validity and eligibility, duty and availability, roster import/export.
//!
//! Fixture (Jiangsu divisions imported): team A under Xuanwu (320102), team
//! B under Qinhuai (320104); coordinators of Xuanwu, Qinhuai and Nanjing
//! city; a requester.

use homefront_domain::Role;
use homefront_domain::Timestamp;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Session, T0, TestApp};

struct Fixture {
    app: TestApp,
    team_a: i64,
    team_b: i64,
    xuanwu: Session,
    qinhuai: Session,
    nanjing: Session,
    requester: Session,
}

async fn fixture() -> Fixture {
    let app = TestApp::spawn().await;
    app.import_jiangsu().await;
    let nanjing = app.division("320100").await;
    let xuanwu = app.division("320102").await;
    let qinhuai = app.division("320104").await;
    let team_a = app.team(xuanwu, "玄武区志愿服务队").await;
    let team_b = app.team(qinhuai, "秦淮区志愿服务队").await;
    app.user("13800000003", &[(Role::Coordinator, Some(xuanwu))])
        .await;
    app.user("13800000004", &[(Role::Coordinator, Some(qinhuai))])
        .await;
    app.user("13800000002", &[(Role::Coordinator, Some(nanjing))])
        .await;
    app.user("13800000008", &[(Role::Requester, None)]).await;
    Fixture {
        xuanwu: app.login("13800000003").await,
        qinhuai: app.login("13800000004").await,
        nanjing: app.login("13800000002").await,
        requester: app.login("13800000008").await,
        app,
        team_a,
        team_b,
    }
}

impl Fixture {
    /// Registers a volunteer with a usable password (so it can sign in).
    async fn register(&self, coordinator: &Session, phone: &str, team: i64) -> i64 {
        let (status, body) = self
            .app
            .post(
                coordinator,
                "/api/v1/volunteers",
                json!({"phone": phone, "display_name": "志愿者 Volunteer", "password": crate::helpers::PASSWORD,
                       "team_id": team, "declared_qualifications": ["driving_licence"], "vehicle_seats": 4,
                       "gender": "female", "languages": ["普通话", "English"],
                       "emergency_contact": {"name": "王芳", "phone": "13912345678"}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_i64().unwrap()
    }

    /// Moves a volunteer through every vetting step to active.
    async fn activate(&self, coordinator: &Session, id: i64) {
        for step in [
            "reviewed",
            "interviewed",
            "trained",
            "exam_passed",
            "agreement_signed",
            "insured",
            "active",
        ] {
            let (status, body) = self
                .app
                .post(
                    coordinator,
                    &format!("/api/v1/volunteers/{id}/vetting"),
                    json!({"target_state": step}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{step}: {body}");
        }
    }

    /// Records the three base credentials, valid from T0 for `days` days.
    async fn base_credentials(&self, coordinator: &Session, id: i64, days: i64) -> Timestamp {
        let until = T0.plus_days(days);
        for kind in ["training_certificate", "service_agreement", "insurance"] {
            let mut body =
                json!({"kind": kind, "valid_from": T0.epoch_ms(), "valid_to": until.epoch_ms()});
            if kind == "insurance" {
                body["insurer"] = json!("中国人保");
                body["policy_number"] = json!("PICC-2020-0001");
            }
            let (status, resp) = self
                .app
                .post(
                    coordinator,
                    &format!("/api/v1/volunteers/{id}/credentials"),
                    body,
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{kind}: {resp}");
        }
        until
    }
}

#[tokio::test]
async fn volunteers_register_read_update_within_scope() {
    let f = fixture().await;
    let id = f.register(&f.xuanwu, "13700000001", f.team_a).await;
    let (status, v) = f
        .app
        .get(&f.xuanwu, &format!("/api/v1/volunteers/{id}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["vetting_state"], "applied");
    assert_eq!(v["phone"], "+8613700000001");
    assert_eq!(v["service_radius_km"], 10.0);
    assert_eq!(v["max_concurrent"], 1);
    assert_eq!(v["home"]["source"], "division");
    assert_eq!(v["home"]["adcode"], "320102000000");
    assert!(v["home"]["longitude"].as_f64().is_some());
    assert_eq!(v["emergency_contact"]["phone"], "+8613912345678");
    assert_eq!(v["on_duty"], false);

    // Scope: the Qinhuai coordinator cannot tell it from a missing one.
    let (s1, b1) = f
        .app
        .get(&f.qinhuai, &format!("/api/v1/volunteers/{id}"))
        .await;
    let (s2, b2) = f.app.get(&f.qinhuai, "/api/v1/volunteers/987654").await;
    assert_eq!((s1, &b1), (StatusCode::NOT_FOUND, &b2));
    assert_eq!(s2, StatusCode::NOT_FOUND);
    let (s, _) = f
        .app
        .get(&f.nanjing, &format!("/api/v1/volunteers/{id}"))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = f
        .app
        .get(&f.requester, &format!("/api/v1/volunteers/{id}"))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Lists: subtree only, no emergency contact.
    let other = f.register(&f.qinhuai, "13700000002", f.team_b).await;
    let ids = |v: &Value| -> Vec<i64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_i64().unwrap())
            .collect()
    };
    let (_, list) = f.app.get(&f.xuanwu, "/api/v1/volunteers").await;
    assert_eq!(ids(&list), vec![id]);
    assert!(list[0].get("emergency_contact").is_none());
    let (_, list) = f
        .app
        .get(&f.nanjing, "/api/v1/volunteers?state=applied")
        .await;
    assert_eq!(ids(&list), vec![id, other]);
    let (_, list) = f
        .app
        .get(
            &f.nanjing,
            &format!("/api/v1/volunteers?team_id={}", f.team_b),
        )
        .await;
    assert_eq!(ids(&list), vec![other]);
    let (s, _) = f.app.get(&f.requester, "/api/v1/volunteers").await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // The volunteer sees and edits itself, but not its team or load cap.
    let me = f.app.login("13700000001").await;
    let (_, list) = f.app.get(&me, "/api/v1/volunteers").await;
    assert_eq!(ids(&list), vec![id]);
    let (s, v) = f.app.get(&me, "/api/v1/volunteers/me").await;
    assert_eq!((s, v["id"].as_i64()), (StatusCode::OK, Some(id)));
    let (s, v) = f
        .app
        .call(
            Some(&me),
            Method::PATCH,
            "/api/v1/volunteers/me",
            Some(json!({"service_radius_km": 5.5, "home_location": {"longitude": 118.8, "latitude": 32.05}, "gender": null})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["service_radius_km"], 5.5);
    assert_eq!(v["home"]["source"], "own");
    assert_eq!(v["gender"], Value::Null);
    let (s, _) = f
        .app
        .call(
            Some(&me),
            Method::PATCH,
            "/api/v1/volunteers/me",
            Some(json!({"team_id": f.team_b})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, e) = f
        .app
        .call(
            Some(&me),
            Method::PATCH,
            "/api/v1/volunteers/me",
            Some(json!({"service_radius_km": 0})),
        )
        .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("service_radius_km"))
    );

    // Seats need a driver: dropping the declared licence while keeping seats is refused.
    let (s, e) = f
        .app
        .call(
            Some(&me),
            Method::PATCH,
            "/api/v1/volunteers/me",
            Some(json!({"declared_qualifications": []})),
        )
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("vehicle_needs_driving_licence")
        )
    );

    // Errors name the field and the fix.
    let (s, e) = f
        .app
        .post(
            &f.xuanwu,
            "/api/v1/volunteers",
            json!({"phone": "12345", "display_name": "x", "team_id": f.team_a}),
        )
        .await;
    assert_eq!(
        (s, e["field"].as_str(), e["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("phone"),
            Some("invalid_phone")
        )
    );
    let (s, e) = f
        .app
        .post(
            &f.xuanwu,
            "/api/v1/volunteers",
            json!({"phone": "13700000009", "display_name": "x", "team_id": f.team_b}),
        )
        .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("team_id"))
    );
    let (s, e) = f
        .app
        .post(&f.xuanwu, "/api/v1/volunteers", json!({"phone": "13700000009", "display_name": "x", "team_id": f.team_a, "vehicle_seats": 4}))
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("vehicle_needs_driving_licence")
        )
    );
    // An existing account becomes a volunteer once only.
    let (s, e) = f
        .app
        .post(
            &f.xuanwu,
            "/api/v1/volunteers",
            json!({"user_id": id, "team_id": f.team_a}),
        )
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_volunteer"))
    );
    // A requester bound to no employer in the county is out of the county
    // coordinator's reach (joining the team would hand it the account): an
    // admin attaches it.
    let requester_id = f.requester.user_id;
    let body = json!({"user_id": requester_id, "team_id": f.team_a, "home_adcode": "320104"});
    let (s, e) = f
        .app
        .post(&f.xuanwu, "/api/v1/volunteers", body.clone())
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_user"))
    );
    f.app.user("13800000001", &[(Role::Admin, None)]).await;
    let admin = f.app.login("13800000001").await;
    let (s, v) = f.app.post(&admin, "/api/v1/volunteers", body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["home"]["adcode"], "320104000000");
    let (s, _) = f
        .app
        .post(
            &f.requester,
            "/api/v1/volunteers",
            json!({"user_id": 1, "team_id": f.team_a}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn volunteers_vetting_pipeline_is_enforced_and_logged() {
    let f = fixture().await;
    let id = f.register(&f.xuanwu, "13700000001", f.team_a).await;
    let path = format!("/api/v1/volunteers/{id}/vetting");
    for step in ["reviewed", "interviewed", "trained", "exam_passed"] {
        let (s, e) = f
            .app
            .post(
                &f.xuanwu,
                &path,
                json!({"target_state": step, "note": "ok"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{e}");
    }
    // Insurance before the agreement is a skipped step.
    let (s, e) = f
        .app
        .post(&f.xuanwu, &path, json!({"target_state": "insured"}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(e["code"], "step_skipped");
    assert!(
        e["message"].as_str().unwrap().contains("agreement_signed"),
        "{e}"
    );
    let (s, e) = f
        .app
        .post(&f.xuanwu, &path, json!({"target_state": "applied"}))
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::CONFLICT, Some("illegal_transition"))
    );
    let (s, e) = f
        .app
        .post(&f.xuanwu, &path, json!({"target_state": "promoted"}))
        .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("target_state"))
    );
    // Outside scope: 404; the volunteer itself may not advance: 403.
    let (s, _) = f
        .app
        .post(
            &f.qinhuai,
            &path,
            json!({"target_state": "agreement_signed"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let me = f.app.login("13700000001").await;
    let (s, _) = f
        .app
        .post(
            &me,
            "/api/v1/volunteers/me/vetting",
            json!({"target_state": "agreement_signed"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, e) = f
        .app
        .post(
            &f.xuanwu,
            &path,
            json!({"target_state": "agreement_signed", "document_ref": "协议-2020-017"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            e["from_state"].as_str(),
            e["to_state"].as_str(),
            e["action"].as_str()
        ),
        (
            Some("exam_passed"),
            Some("agreement_signed"),
            Some("advance")
        )
    );
    assert_eq!(e["actor_id"].as_i64(), Some(f.xuanwu.user_id));
    assert_eq!(e["document_ref"], "协议-2020-017");
    for step in ["insured", "active"] {
        let (s, _) = f
            .app
            .post(&f.xuanwu, &path, json!({"target_state": step}))
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    let (_, log) = f.app.get(&me, &path).await;
    let to: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to_state"].as_str().unwrap())
        .collect();
    assert_eq!(
        to,
        [
            "applied",
            "reviewed",
            "interviewed",
            "trained",
            "exam_passed",
            "agreement_signed",
            "insured",
            "active"
        ]
    );
    assert_eq!(log[0]["action"], "apply");

    // Suspension sets the volunteer off duty, in the same transaction.
    let (s, d) = f
        .app
        .post(&me, "/api/v1/volunteers/me/duty", json!({"on_duty": true}))
        .await;
    assert_eq!(
        (s, d["on_duty"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{d}"
    );
    f.app.clock.advance_ms(60_000);
    let (s, _) = f
        .app
        .post(
            &f.xuanwu,
            &path,
            json!({"target_state": "suspended", "note": "complaint"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, v) = f
        .app
        .get(&f.xuanwu, &format!("/api/v1/volunteers/{id}"))
        .await;
    assert_eq!(
        (
            v["vetting_state"].as_str(),
            v["on_duty"].as_bool(),
            &v["on_duty_since"]
        ),
        (Some("suspended"), Some(false), &Value::Null)
    );
    let (s, e) = f
        .app
        .post(&me, "/api/v1/volunteers/me/duty", json!({"on_duty": true}))
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_active"))
    );
    let deactivated: i64 = sqlx::query_scalar::<_, i64>(
        "select cast(count(*) as bigint) from duty_event where volunteer_id = $1 and reason = 'deactivated' and on_duty = 0",
    )
    .bind(id)
    .fetch_one(f.app.store.pool())
    .await
    .unwrap();
    assert_eq!(deactivated, 1);
    // Reinstate, then the volunteer withdraws on its own.
    let (s, e) = f
        .app
        .post(&f.xuanwu, &path, json!({"target_state": "active"}))
        .await;
    assert_eq!(
        (s, e["action"].as_str()),
        (StatusCode::OK, Some("reinstate"))
    );
    let (s, e) = f
        .app
        .post(
            &me,
            "/api/v1/volunteers/me/vetting",
            json!({"target_state": "withdrawn"}),
        )
        .await;
    assert_eq!(
        (s, e["actor_id"].as_i64()),
        (StatusCode::OK, Some(me.user_id))
    );
}

#[tokio::test]
async fn volunteers_bulk_vetting_reports_each_id() {
    let f = fixture().await;
    let a1 = f.register(&f.xuanwu, "13700000001", f.team_a).await;
    let a2 = f.register(&f.xuanwu, "13700000002", f.team_a).await;
    let b = f.register(&f.qinhuai, "13700000003", f.team_b).await;
    f.app
        .post(
            &f.xuanwu,
            &format!("/api/v1/volunteers/{a2}/vetting"),
            json!({"target_state": "reviewed"}),
        )
        .await;
    let (s, r) = f
        .app
        .post(&f.xuanwu, "/api/v1/volunteers/vetting", json!({"volunteer_ids": [a1, a2, b, a1, 999999], "target_state": "reviewed", "note": "批量初审"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let outcomes: Vec<(&str, Option<&str>)> = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["outcome"].as_str().unwrap(), x["code"].as_str()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("moved", None),
            ("refused", Some("illegal_transition")),
            ("not_found", Some("not_found")),
            ("duplicate", Some("duplicate")),
            ("not_found", Some("not_found")),
        ]
    );
    assert_eq!(
        (r["moved"].as_i64(), r["not_moved"].as_i64()),
        (Some(1), Some(4))
    );
    let (_, v) = f
        .app
        .get(&f.xuanwu, &format!("/api/v1/volunteers/{a1}"))
        .await;
    assert_eq!(v["vetting_state"], "reviewed");
    let (_, v) = f
        .app
        .get(&f.qinhuai, &format!("/api/v1/volunteers/{b}"))
        .await;
    assert_eq!(v["vetting_state"], "applied");
    let me = f.app.login("13700000001").await;
    let (s, _) = f
        .app
        .post(
            &me,
            "/api/v1/volunteers/vetting",
            json!({"volunteer_ids": [a1], "target_state": "withdrawn"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn volunteers_eligibility_flips_exactly_at_credential_expiry() {
    let f = fixture().await;
    let id = f.register(&f.xuanwu, "13700000001", f.team_a).await;
    f.activate(&f.xuanwu, id).await;
    let expiry = f.base_credentials(&f.xuanwu, id, 30).await;
    let (s, c) = f
        .app
        .post(
            &f.xuanwu,
            &format!("/api/v1/volunteers/{id}/credentials"),
            json!({"kind": "teacher", "valid_from": T0.epoch_ms()}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    // Sessions last 12 h of the injected clock: sign in again after moving it.
    let eligibility = |s: Session, query: String| {
        let app = &f.app;
        async move {
            let (status, body) = app
                .get(&s, &format!("/api/v1/volunteers/{id}/eligibility{query}"))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body
        }
    };
    // Injected clock: one millisecond before expiry, then at it.
    f.app.clock.set(expiry.plus_ms(-1));
    let coord = f.app.login("13800000003").await;
    let e = eligibility(coord.clone(), "?qualifications=teacher".into()).await;
    assert_eq!(e["eligible"], true, "{e}");
    assert_eq!(e["at"].as_i64(), Some(expiry.epoch_ms() - 1));
    f.app.clock.set(expiry);
    let coord = f.app.login("13800000003").await;
    for query in ["", "?qualifications=teacher"] {
        let e = eligibility(coord.clone(), query.into()).await;
        assert_eq!(e["eligible"], false);
        let codes: Vec<&str> = e["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["code"].as_str().unwrap())
            .collect();
        // Every base credential was dated alike; an expired insurance alone would block too.
        assert!(codes.contains(&"insurance_expired"), "{e}");
        assert!(!codes.contains(&"qualification_missing"), "{e}");
    }
    // An explicit instant, and a missing qualification.
    let e = eligibility(
        coord.clone(),
        format!(
            "?qualifications=teacher,driving_licence&at={}",
            T0.plus_days(1).epoch_ms()
        ),
    )
    .await;
    assert_eq!(e["eligible"], false);
    assert_eq!(e["reasons"][0]["code"], "qualification_missing");
    assert_eq!(e["reasons"][0]["kind"], "driving_licence");
    let (s, b) = f
        .app
        .get(
            &coord,
            &format!("/api/v1/volunteers/{id}/eligibility?qualifications=pilot"),
        )
        .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("qualifications"))
    );

    // Renew only the insurance: the expired one alone blocks everything, the renewal unblocks it.
    f.app.clock.set(T0.plus_days(40));
    let coord = f.app.login("13800000003").await;
    for kind in ["training_certificate", "service_agreement"] {
        f.app
            .post(
                &coord,
                &format!("/api/v1/volunteers/{id}/credentials"),
                json!({"kind": kind, "valid_from": expiry.epoch_ms()}),
            )
            .await;
    }
    let e = eligibility(coord.clone(), String::new()).await;
    let codes: Vec<&str> = e["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["insurance_expired"]);
    let (s, b) = f
        .app
        .post(
            &coord,
            &format!("/api/v1/volunteers/{id}/credentials"),
            json!({"kind": "insurance", "valid_from": expiry.epoch_ms()}),
        )
        .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("insurer"))
    );
    let (s, ins) = f
        .app
        .post(&coord, &format!("/api/v1/volunteers/{id}/credentials"),
              json!({"kind": "insurance", "valid_from": expiry.epoch_ms(), "valid_to": T0.plus_days(400).epoch_ms(), "insurer": "中国人保", "policy_number": "P-2"}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        eligibility(coord.clone(), String::new()).await["eligible"],
        true
    );
    // Revocation ends validity now.
    let cid = ins["id"].as_i64().unwrap();
    let (s, r) = f
        .app
        .post(
            &coord,
            &format!("/api/v1/volunteers/{id}/credentials/{cid}/revoke"),
            json!({"reason": "policy cancelled"}),
        )
        .await;
    assert_eq!((s, r["status"].as_str()), (StatusCode::OK, Some("revoked")));
    assert_eq!(
        eligibility(coord.clone(), String::new()).await["eligible"],
        false
    );
    // Credentials are readable by the volunteer, writable by coordinators only.
    let me = f.app.login("13700000001").await;
    let (s, list) = f.app.get(&me, "/api/v1/volunteers/me/credentials").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 7);
    let (s, _) = f
        .app
        .post(
            &me,
            "/api/v1/volunteers/me/credentials",
            json!({"kind": "teacher", "valid_from": 0}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b) = f
        .app
        .post(
            &coord,
            &format!("/api/v1/volunteers/{id}/credentials"),
            json!({"kind": "teacher", "valid_from": 10, "valid_to": 5}),
        )
        .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_validity"))
    );
}

#[tokio::test]
async fn volunteers_expiring_credentials_for_the_subtree() {
    let f = fixture().await;
    let a = f.register(&f.xuanwu, "13700000001", f.team_a).await;
    let b = f.register(&f.qinhuai, "13700000002", f.team_b).await;
    f.base_credentials(&f.xuanwu, a, 10).await;
    f.base_credentials(&f.qinhuai, b, 20).await;
    let kinds = |v: &Value| -> Vec<(i64, String)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    x["volunteer_id"].as_i64().unwrap(),
                    x["credential"]["kind"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let (s, list) = f
        .app
        .get(&f.xuanwu, "/api/v1/volunteers/expiring-credentials")
        .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(kinds(&list).len(), 3);
    assert!(kinds(&list).iter().all(|(v, _)| *v == a));
    let (_, list) = f
        .app
        .get(
            &f.nanjing,
            "/api/v1/volunteers/expiring-credentials?within_days=14",
        )
        .await;
    assert_eq!(kinds(&list).len(), 3, "b expires in 20 days: {list}");
    let (_, list) = f
        .app
        .get(
            &f.nanjing,
            "/api/v1/volunteers/expiring-credentials?within_days=30",
        )
        .await;
    assert_eq!(kinds(&list).len(), 6);
    // A renewal on file takes the credential off the list.
    f.app
        .post(&f.xuanwu, &format!("/api/v1/volunteers/{a}/credentials"),
              json!({"kind": "insurance", "valid_from": T0.plus_days(10).epoch_ms(), "insurer": "人保", "policy_number": "P-3"}))
        .await;
    let (_, list) = f
        .app
        .get(&f.xuanwu, "/api/v1/volunteers/expiring-credentials")
        .await;
    assert!(!kinds(&list).contains(&(a, "insurance".into())), "{list}");
    let (s, _) = f
        .app
        .get(&f.requester, "/api/v1/volunteers/expiring-credentials")
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, e) = f
        .app
        .get(
            &f.xuanwu,
            "/api/v1/volunteers/expiring-credentials?within_days=-1",
        )
        .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("within_days"))
    );
}

/// Epoch ms of a local time in Asia/Shanghai (UTC+8, no DST).
fn shanghai(rfc3339_local: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(&format!("{rfc3339_local}+08:00"))
        .unwrap()
        .timestamp_millis()
}

#[tokio::test]
async fn volunteers_availability_window_across_midnight() {
    let f = fixture().await;
    let id = f.register(&f.xuanwu, "13700000001", f.team_a).await;
    let me = f.app.login("13700000001").await;
    // Friday 22:00 to Saturday 06:00, Shanghai time (2020-02-14 is a Friday).
    let (s, w) = f
        .app
        .post(
            &me,
            "/api/v1/volunteers/me/availability/windows",
            json!({"weekday": "fri", "start": "22:00", "end": "06:00"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{w}");
    assert_eq!(
        (
            w["crosses_midnight"].as_bool(),
            w["duration_minutes"].as_i64()
        ),
        (Some(true), Some(480))
    );
    let available = |query: String| {
        let app = &f.app;
        let s = &f.xuanwu;
        async move {
            let (status, body) = app
                .get(s, &format!("/api/v1/volunteers/{id}/available?{query}"))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body["available"].as_bool().unwrap()
        }
    };
    let at = |t: &str| format!("at={}", shanghai(t));
    assert!(!available(at("2020-02-14T21:59:59.999")).await);
    assert!(available(at("2020-02-14T22:00:00")).await);
    assert!(available(at("2020-02-15T00:30:00")).await);
    assert!(available(at("2020-02-15T05:59:59.999")).await);
    assert!(!available(at("2020-02-15T06:00:00")).await);
    assert!(
        !available(at("2020-02-15T22:30:00")).await,
        "Saturday night is not a Friday window"
    );
    assert!(available(at("2020-02-21T23:00:00")).await, "next Friday");
    // A service window inside the night, and one running past 06:00.
    let window = |a: &str, b: &str| format!("at={}&until={}", shanghai(a), shanghai(b));
    assert!(available(window("2020-02-14T23:00:00", "2020-02-15T06:00:00")).await);
    assert!(!available(window("2020-02-14T23:00:00", "2020-02-15T06:00:01")).await);
    // Leave wins.
    let (s, leave) = f
        .app
        .post(&me, "/api/v1/volunteers/me/availability/leaves",
              json!({"from": shanghai("2020-02-15T01:00:00"), "to": shanghai("2020-02-15T02:00:00"), "reason": "家中有事"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{leave}");
    assert!(!available(at("2020-02-15T01:30:00")).await);
    assert!(!available(window("2020-02-14T23:00:00", "2020-02-15T05:00:00")).await);
    let (s, _) = f
        .app
        .call(
            Some(&me),
            Method::DELETE,
            &format!("/api/v1/volunteers/me/availability/leaves/{}", leave["id"]),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(available(at("2020-02-15T01:30:00")).await);
    let (_, view) = f.app.get(&me, "/api/v1/volunteers/me/availability").await;
    assert_eq!(view["time_zone"], "Asia/Shanghai");
    assert_eq!(view["weekly"][0]["weekday"], "fri");
    assert_eq!(view["weekly"][0]["end"], "06:00");
    // Replace the list; bad input names the field.
    let (s, ws) = f
        .app
        .call(Some(&me), Method::PUT, "/api/v1/volunteers/me/availability/windows",
              Some(json!({"windows": [{"weekday": "sat", "start": "08:00", "end": "12:00"}, {"weekday": "sun", "start": "20:00", "end": "24:00"}]})))
        .await;
    assert_eq!(
        (s, ws.as_array().map(Vec::len)),
        (StatusCode::OK, Some(2)),
        "{ws}"
    );
    assert!(!available(at("2020-02-14T23:00:00")).await);
    assert!(available(at("2020-02-16T23:59:00")).await);
    let (s, e) = f
        .app
        .post(
            &me,
            "/api/v1/volunteers/me/availability/windows",
            json!({"weekday": "fri", "start": "25:00", "end": "06:00"}),
        )
        .await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("start"))
    );
    // Another team's coordinator cannot see or edit it.
    let (s, _) = f
        .app
        .get(&f.qinhuai, &format!("/api/v1/volunteers/{id}/availability"))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn volunteers_duty_toggle_is_idempotent_and_feeds_dispatch() {
    let f = fixture().await;
    let id = f.register(&f.xuanwu, "13700000001", f.team_a).await;
    let me = f.app.login("13700000001").await;
    let (s, e) = f
        .app
        .post(&me, "/api/v1/volunteers/me/duty", json!({"on_duty": true}))
        .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_active"))
    );
    f.activate(&f.xuanwu, id).await;
    f.base_credentials(&f.xuanwu, id, 365).await;
    f.app.clock.set(T0.plus_minutes(5));
    let (s, first) = f
        .app
        .post(&me, "/api/v1/volunteers/me/duty", json!({"on_duty": true}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (first["changed"].as_bool(), first["on_duty_since"].as_i64()),
        (Some(true), Some(T0.plus_minutes(5).epoch_ms()))
    );
    f.app.clock.advance_ms(800);
    let (_, second) = f
        .app
        .post(&me, "/api/v1/volunteers/me/duty", json!({"on_duty": true}))
        .await;
    assert_eq!(
        (second["changed"].as_bool(), &second["on_duty_since"]),
        (Some(false), &first["on_duty_since"])
    );

    // The dispatcher's view: on duty, with location, radius, valid qualifications.
    let xuanwu = f
        .app
        .store
        .org_unit(f.app.division("320102").await)
        .await
        .unwrap()
        .unwrap();
    let scopes = [xuanwu.org_path()];
    let query = homefront_store::availability::DispatchQuery {
        scopes: Some(&scopes),
        now: homefront_domain::Clock::now(&f.app.clock),
        window: None,
    };
    let pool = f.app.store.dispatchable_volunteers(&query).await.unwrap();
    assert_eq!(pool.len(), 1);
    let v = &pool[0];
    assert_eq!((v.user_id, v.team_id, v.max_concurrent), (id, f.team_a, 1));
    assert!(v.base_credentials_valid);
    assert!(
        v.qualifications.is_empty(),
        "driving licence is declared, not credentialed"
    );
    assert!((v.location.longitude - xuanwu.longitude.unwrap()).abs() < 1e-9);
    assert_eq!(v.service_radius_km, 10.0);
    let qinhuai = f
        .app
        .store
        .org_unit(f.app.division("320104").await)
        .await
        .unwrap()
        .unwrap();
    let elsewhere = [qinhuai.org_path()];
    let none = homefront_store::availability::DispatchQuery {
        scopes: Some(&elsewhere),
        ..query
    };
    assert!(
        f.app
            .store
            .dispatchable_volunteers(&none)
            .await
            .unwrap()
            .is_empty()
    );

    let (s, off) = f
        .app
        .post(&me, "/api/v1/volunteers/me/duty", json!({"on_duty": false}))
        .await;
    assert_eq!(
        (s, off["on_duty"].as_bool(), off["changed"].as_bool()),
        (StatusCode::OK, Some(false), Some(true))
    );
    assert!(
        f.app
            .store
            .dispatchable_volunteers(&query)
            .await
            .unwrap()
            .is_empty()
    );
    // Coordinators in scope may switch a volunteer off; others cannot see it.
    let (s, _) = f
        .app
        .post(
            &f.qinhuai,
            &format!("/api/v1/volunteers/{id}/duty"),
            json!({"on_duty": false}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

// ---------------------------------------------------------------- rosters

const GOOD_ROWS: usize = 497;

/// A 500-row roster workbook with three bad rows: a bad phone (row 12), an
/// unknown adcode (row 202) and a bad radius (row 402).
fn roster_xlsx() -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    let header = [
        "姓名",
        "手机号",
        "队伍",
        "区县代码",
        "服务半径(公里)",
        "资质",
        "性别",
        "紧急联系人",
        "紧急联系电话",
        "车辆座位数",
    ];
    for (c, h) in header.iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    for i in 0..500u32 {
        let r = i + 1;
        let phone = match i {
            10 => "12345".to_string(),
            _ => format!("139{:08}", i),
        };
        sheet.write_string(r, 0, format!("志愿者{i:03}")).unwrap();
        // Phones as numbers, the way people type them into Excel.
        match phone.parse::<f64>() {
            Ok(n) if i % 2 == 0 => sheet.write_number(r, 1, n).unwrap(),
            _ => sheet.write_string(r, 1, &phone).unwrap(),
        };
        sheet.write_string(r, 2, "玄武区志愿服务队").unwrap();
        sheet
            .write_string(r, 3, if i == 200 { "329999" } else { "320102" })
            .unwrap();
        if i == 400 {
            sheet.write_number(r, 4, -3.0).unwrap();
        } else {
            sheet.write_number(r, 4, 5.0 + f64::from(i % 10)).unwrap();
        }
        if i % 5 == 0 {
            sheet.write_string(r, 5, "驾照、急救").unwrap();
            sheet.write_number(r, 9, 4.0).unwrap();
        }
        sheet
            .write_string(r, 6, if i % 2 == 0 { "女" } else { "男" })
            .unwrap();
        if i % 3 == 0 {
            sheet.write_string(r, 7, "家属").unwrap();
            sheet.write_string(r, 8, "13812345678").unwrap();
        }
    }
    book.save_to_buffer().unwrap()
}

async fn upload(
    app: &TestApp,
    s: &Session,
    query: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let resp = app
        .client
        .post(format!("{}/api/v1/volunteers/import{query}", app.base))
        .bearer_auth(&s.token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

async fn count_volunteers(app: &TestApp) -> i64 {
    sqlx::query_scalar::<_, i64>("select cast(count(*) as bigint) from volunteer")
        .fetch_one(app.store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn volunteers_roster_import_500_rows_reports_bad_rows_and_is_idempotent() {
    let f = fixture().await;
    let file = roster_xlsx();
    let (s, report) = upload(&f.app, &f.xuanwu, "", XLSX, file.clone()).await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!(report["committed"], true);
    assert_eq!(
        (
            report["rows_read"].as_u64(),
            report["created"].as_u64(),
            report["rejected"].as_u64()
        ),
        (Some(500), Some(GOOD_ROWS as u64), Some(3))
    );
    let rejected: Vec<(u64, String, String)> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "rejected")
        .map(|r| {
            (
                r["row"].as_u64().unwrap(),
                r["errors"][0]["field"].as_str().unwrap().into(),
                r["errors"][0]["code"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        [
            (12, "phone".into(), "invalid_phone".into()),
            (202, "adcode".into(), "unknown_adcode".into()),
            (402, "radius_km".into(), "invalid_radius".into()),
        ]
    );
    for r in report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "rejected")
    {
        assert!(!r["errors"][0]["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(count_volunteers(&f.app).await, GOOD_ROWS as i64);
    // The imported profiles are what the sheet said.
    let (_, list) = f.app.get(&f.xuanwu, "/api/v1/volunteers").await;
    let first = list
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["phone"] == "+8613900000000")
        .unwrap();
    assert_eq!(
        (
            first["display_name"].as_str(),
            first["service_radius_km"].as_f64(),
            first["vehicle_seats"].as_i64()
        ),
        (Some("志愿者000"), Some(5.0), Some(4))
    );
    assert_eq!(
        first["declared_qualifications"],
        json!(["driving_licence", "first_aid"])
    );
    assert_eq!(first["vetting_state"], "applied");
    // Imported accounts cannot sign in until an admin sets a password.
    let (s, _) = f
        .app
        .call(None, Method::POST, "/api/v1/auth/login", Some(json!({"phone": "13900000000", "password": "!unusable:set-by-admin-password-reset"})))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Again: nothing new.
    let (s, again) = upload(&f.app, &f.xuanwu, "", XLSX, file).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            again["created"].as_u64(),
            again["unchanged"].as_u64(),
            again["rejected"].as_u64()
        ),
        (Some(0), Some(GOOD_ROWS as u64), Some(3))
    );
    assert_eq!(count_volunteers(&f.app).await, GOOD_ROWS as i64);

    // Outside the coordinator's area, the same phones are not touched.
    let (_, other) = upload(
        &f.app,
        &f.qinhuai,
        &format!("?team_id={}", f.team_b),
        "text/csv",
        "姓名,手机号\n改名,13900000001\n".as_bytes().to_vec(),
    )
    .await;
    assert_eq!(
        other["rows"][0]["errors"][0]["code"], "volunteer_elsewhere",
        "{other}"
    );
}

#[tokio::test]
async fn volunteers_roster_gb18030_csv_keeps_chinese_names_and_updates() {
    let f = fixture().await;
    let text = "姓名,手机号,队伍编号,性别,资质,语言\n张伟,138 0013 8000,{a},女,教师、心理咨询,普通话、English\n李娜,+86 139-1234-5678,,男,,\n";
    let text = text.replace("{a}", &f.team_a.to_string());
    let (gb, _, had_errors) = encoding_rs::GB18030.encode(&text);
    assert!(!had_errors);
    assert!(
        std::str::from_utf8(&gb).is_err(),
        "the test file must not be UTF-8"
    );
    let (s, report) = upload(
        &f.app,
        &f.xuanwu,
        &format!("?team_id={}", f.team_a),
        "text/csv",
        gb.into_owned(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!(report["created"], 2, "{report}");
    let (_, list) = f.app.get(&f.xuanwu, "/api/v1/volunteers").await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["display_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["张伟", "李娜"]);
    assert_eq!(
        list[0]["declared_qualifications"],
        json!(["teacher", "counsellor"])
    );
    assert_eq!(list[0]["languages"], json!(["普通话", "English"]));
    assert_eq!(list[1]["phone"], "+8613912345678");
    // UTF-8 with BOM, one change: reported as updated, no duplicate.
    let mut utf8 = b"\xEF\xBB\xBF".to_vec();
    utf8.extend_from_slice("姓名,手机号,性别\n张伟,13800138000,未说明\n".as_bytes());
    let (_, report) = upload(
        &f.app,
        &f.xuanwu,
        &format!("?team_id={}", f.team_a),
        "text/csv",
        utf8,
    )
    .await;
    assert_eq!(
        (report["updated"].as_u64(), report["created"].as_u64()),
        (Some(1), Some(0)),
        "{report}"
    );
    assert_eq!(count_volunteers(&f.app).await, 2);
    let (_, v) = f
        .app
        .get(&f.xuanwu, &format!("/api/v1/volunteers/{}", list[0]["id"]))
        .await;
    assert_eq!(v["gender"], "unspecified");
    assert_eq!(
        v["declared_qualifications"],
        json!(["teacher", "counsellor"]),
        "absent columns keep their values"
    );
}

#[tokio::test]
async fn volunteers_roster_all_or_nothing_imports_nothing_on_a_bad_row() {
    let f = fixture().await;
    let csv = "姓名,手机号,队伍\n甲,13700000001,玄武区志愿服务队\n乙,not a phone,玄武区志愿服务队\n丙,13700000003,不存在的队\n".as_bytes().to_vec();
    let (s, report) = upload(
        &f.app,
        &f.xuanwu,
        "?all_or_nothing=true",
        "text/csv",
        csv.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{report}");
    assert_eq!(report["committed"], false);
    assert_eq!(report["rejected"], 2);
    assert_eq!(report["rows"][1]["row"], 3);
    assert_eq!(report["rows"][2]["errors"][0]["code"], "unknown_team");
    assert_eq!(count_volunteers(&f.app).await, 0);
    // Without the flag, the good row goes in.
    let (_, report) = upload(&f.app, &f.xuanwu, "", "text/csv", csv).await;
    assert_eq!(
        (report["committed"].as_bool(), report["created"].as_u64()),
        (Some(true), Some(1))
    );
    assert_eq!(count_volunteers(&f.app).await, 1);
    // Whole-file problems name the file and the fix.
    let (s, e) = upload(
        &f.app,
        &f.xuanwu,
        "",
        "text/csv",
        "姓名,手机号,队伍,身高\n".as_bytes().to_vec(),
    )
    .await;
    assert_eq!(
        (s, e["field"].as_str(), e["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("file"),
            Some("unknown_column")
        )
    );
    let (s, _) = upload(&f.app, &f.requester, "", "text/csv", b"x".to_vec()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn volunteers_roster_export_is_safe_and_reimports_unchanged() {
    let f = fixture().await;
    let id = f.register(&f.xuanwu, "13700000001", f.team_a).await;
    f.app
        .call(
            Some(&f.xuanwu),
            Method::PATCH,
            &format!("/api/v1/volunteers/{id}"),
            Some(json!({"languages": ["=HYPERLINK(\"x\")", "普通话"]})),
        )
        .await;
    let get = |path: String| {
        let app = &f.app;
        let token = f.xuanwu.token.clone();
        async move {
            let resp = app
                .client
                .get(format!("{}{path}", app.base))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
            (ct, resp.bytes().await.unwrap().to_vec())
        }
    };
    let (ct, csv) = get("/api/v1/volunteers/export?format=csv".into()).await;
    assert!(ct.starts_with("text/csv"));
    assert!(csv.starts_with(b"\xEF\xBB\xBF"), "UTF-8 BOM");
    let text = String::from_utf8(csv.clone()).unwrap();
    assert!(text.contains("姓名,手机号,队伍"), "{text}");
    assert!(text.contains("'=HYPERLINK"), "formula neutralised: {text}");
    assert!(!text.contains(",=HYPERLINK"), "{text}");
    let (_, report) = upload(&f.app, &f.xuanwu, "", "text/csv", csv).await;
    assert_eq!(
        (report["unchanged"].as_u64(), report["rejected"].as_u64()),
        (Some(1), Some(0)),
        "{report}"
    );
    let (ct, xlsx) = get("/api/v1/volunteers/export?format=xlsx".into()).await;
    assert!(ct.contains("spreadsheetml"));
    let (_, report) = upload(&f.app, &f.xuanwu, "", XLSX, xlsx.clone()).await;
    assert_eq!(report["unchanged"], 1, "{report}");
    // The workbook has Chinese headers.
    use calamine::Reader;
    let mut book: calamine::Xlsx<_> = calamine::Xlsx::new(std::io::Cursor::new(xlsx)).unwrap();
    let range = book.worksheet_range_at(0).unwrap().unwrap();
    assert_eq!(range.get((0, 0)).unwrap().to_string(), "姓名");
    assert_eq!(range.get((1, 0)).unwrap().to_string(), "志愿者 Volunteer");
    // The template downloads in both formats and imports as an empty roster.
    let (_, template) = get("/api/v1/volunteers/import/template?format=xlsx".into()).await;
    let (_, report) = upload(
        &f.app,
        &f.xuanwu,
        &format!("?team_id={}", f.team_a),
        XLSX,
        template,
    )
    .await;
    assert_eq!(
        (report["rows_read"].as_u64(), report["committed"].as_bool()),
        (Some(0), Some(true)),
        "{report}"
    );
    let (_, template) = get("/api/v1/volunteers/import/template?format=csv".into()).await;
    assert!(
        String::from_utf8(template)
            .unwrap()
            .contains("紧急联系电话")
    );
}
