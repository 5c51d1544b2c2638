//! Orders over HTTP: idempotent intake, guardian consent, lifecycle and its
//! event log, privacy by field with the access log, and retention.

use homefront_domain::Timestamp;
use homefront_domain::privacy::RecordKind;
use homefront_server::workers;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Session, T0, TestApp};

const STREET: &str = "中山东路321号 3栋502";
const MEMBER_PHONE: &str = "+8613912345678";

struct World {
    app: TestApp,
    requester: Session,
    coordinator: Session,
    other_coordinator: Session,
    volunteer: Session,
    volunteer_id: i64,
    other_volunteer: Session,
    member_self: i64,
    member_child: i64,
    groceries: i64,
}

async fn world() -> World {
    let w = crate::helpers::World::jiangsu()
        .county("320102")
        .team("玄武区志愿服务队")
        .requester("13800000001")
        .coordinator("13800000002")
        .coordinator_of("320104", "13800000003")
        .volunteer("13800000004")
        .volunteer("13800000005")
        .member(
            json!({"name": "王芳", "relation": "self", "phone": "139 1234 5678",
                   "adcode": "320102", "street": STREET, "longitude": 118.80, "latitude": 32.05}),
        )
        .member(
            json!({"name": "小明", "relation": "child", "age_years": 9, "school_grade": "三年级",
                   "adcode": "320102", "street": STREET}),
        )
        .build()
        .await;
    World {
        requester: w.session("13800000001"),
        coordinator: w.session("13800000002"),
        other_coordinator: w.session("13800000003"),
        volunteer: w.session("13800000004"),
        volunteer_id: w.user_id("13800000004"),
        other_volunteer: w.session("13800000005"),
        member_self: w.members[0],
        member_child: w.members[1],
        groceries: w.app.item("groceries").await,
        app: w.app,
    }
}

fn order_body(w: &World, member: i64) -> Value {
    json!({
        "item_id": w.groceries,
        "member_id": member,
        "window_start": "2020-02-12T18:00",
        "window_end": "2020-02-12T20:00",
        "notes": "门口放下即可,电话联系",
        "public_note": "约5公斤蔬菜",
    })
}

async fn place(w: &World, key: &str, body: &Value) -> (StatusCode, String) {
    let resp = w
        .app
        .client
        .post(format!("{}/api/v1/orders", w.app.base))
        .bearer_auth(&w.requester.token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

async fn new_order(w: &World) -> i64 {
    let (status, body) = place(
        w,
        &uuid::Uuid::now_v7().to_string(),
        &order_body(w, w.member_self),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn same_key_replays_and_a_different_body_is_refused() {
    let w = world().await;
    let body = order_body(&w, w.member_self);
    let first = place(&w, "key-1", &body).await;
    assert_eq!(first.0, StatusCode::CREATED, "{}", first.1);
    let order: Value = serde_json::from_str(&first.1).unwrap();
    assert_eq!(order["state"], "submitted");
    assert_eq!(order["street"], STREET);
    assert_eq!(order["contact_phone"], MEMBER_PHONE);
    assert_eq!(order["window_start_local"], "2020-02-12T18:00:00+08:00");
    assert_eq!(order["window_start"], 1_581_501_600_000i64);

    w.app.clock.advance_ms(5_000);
    let again = place(&w, "key-1", &body).await;
    assert_eq!(
        again, first,
        "the same key and body replay the first response"
    );

    let mut changed = body.clone();
    changed["public_note"] = json!("另一单");
    let (status, err) = place(&w, "key-1", &changed).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let err: Value = serde_json::from_str(&err).unwrap();
    assert_eq!(err["code"], "idempotency_key_reused");
    assert_eq!(w.app.store.count_orders().await.unwrap(), 1);

    // A new key is a new order.
    assert_eq!(place(&w, "key-2", &body).await.0, StatusCode::CREATED);
    assert_eq!(w.app.store.count_orders().await.unwrap(), 2);
}

#[tokio::test]
async fn ten_concurrent_identical_submissions_make_one_order() {
    let w = world().await;
    let body = order_body(&w, w.member_self);
    let results =
        futures::future::join_all((0..10).map(|_| place(&w, "double-click", &body))).await;
    let first = &results[0];
    assert_eq!(first.0, StatusCode::CREATED, "{}", first.1);
    for r in &results {
        assert_eq!(r, first);
    }
    assert_eq!(w.app.store.count_orders().await.unwrap(), 1);
    let id = serde_json::from_str::<Value>(&first.1).unwrap()["id"]
        .as_i64()
        .unwrap();
    assert_eq!(w.app.store.order_events(id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_child_under_14_needs_guardian_consent() {
    let w = world().await;
    let (status, err) = place(&w, "child-1", &order_body(&w, w.member_child)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let err: Value = serde_json::from_str(&err).unwrap();
    assert_eq!(err["code"], "guardian_consent_required");
    assert_eq!(err["field"], "member_id");
    assert_eq!(w.app.store.count_orders().await.unwrap(), 0);

    let (status, _) = w
        .app
        .call(
            Some(&w.requester),
            Method::PATCH,
            &format!("/api/v1/household/members/{}", w.member_child),
            Some(
                json!({"name": "小明", "relation": "child", "age_years": 9, "adcode": "320102",
                        "street": STREET, "guardian_consent": true}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // The refused attempt did not consume the key.
    assert_eq!(
        place(&w, "child-1", &order_body(&w, w.member_child))
            .await
            .0,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn validation_errors_name_the_field() {
    let w = world().await;
    let mut cases = Vec::new();
    let mut b = order_body(&w, w.member_self);
    b["window_end"] = json!("2020-02-12T17:00");
    cases.push((b, "window_end", "window_order"));
    let mut b = order_body(&w, w.member_self);
    b["window_start"] = json!("tomorrow");
    cases.push((b, "window_start", "invalid_time"));
    let mut b = order_body(&w, w.member_self);
    b["window_end"] = json!("2020-02-01T10:00");
    b["window_start"] = json!("2020-02-01T09:00");
    cases.push((b, "window_end", "window_past"));
    let mut b = order_body(&w, w.member_self);
    b["location"] = json!({"adcode": "990101", "street": "x"});
    cases.push((b, "location.adcode", "unknown_division"));
    let mut b = order_body(&w, w.member_self);
    b["contact_phone"] = json!("12345");
    cases.push((b, "contact_phone", "invalid_phone"));
    let mut b = order_body(&w, w.member_self);
    b["item_id"] = json!(99999);
    cases.push((b, "item_id", "unknown_item"));
    let mut b = order_body(&w, w.member_self);
    b["urgency"] = json!("asap");
    cases.push((b, "urgency", "invalid_urgency"));
    for (i, (body, field, code)) in cases.into_iter().enumerate() {
        let (status, err) = place(&w, &format!("bad-{i}"), &body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
        let err: Value = serde_json::from_str(&err).unwrap();
        assert_eq!(
            (err["field"].as_str(), err["code"].as_str()),
            (Some(field), Some(code)),
            "{err}"
        );
    }
    // No key at all.
    let (status, err) = w
        .app
        .post(
            &w.requester,
            "/api/v1/orders",
            order_body(&w, w.member_self),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["field"], "Idempotency-Key");
    assert_eq!(w.app.store.count_orders().await.unwrap(), 0);
}

#[tokio::test]
async fn lifecycle_is_logged_and_illegal_moves_are_409() {
    let w = world().await;
    let id = new_order(&w).await;
    let path = |a: &str| format!("/api/v1/orders/{id}/{a}");

    let (status, err) = w.app.post(&w.requester, &path("confirm"), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(err["code"], "illegal_transition");

    let (status, err) = w
        .app
        .post(&w.requester, &path("cancel"), json!({"reason": "  "}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["field"], "reason");

    let (status, body) = w
        .app
        .post(
            &w.coordinator,
            &path("assign"),
            json!({"volunteer_user_id": w.volunteer_id}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "assigned");
    // Another county's coordinator cannot even see it.
    let (status, _) = w
        .app
        .post(
            &w.other_coordinator,
            &path("assign"),
            json!({"volunteer_user_id": w.volunteer_id}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Only the assignee checks in.
    assert_eq!(
        w.app
            .post(&w.other_volunteer, &path("check-in"), json!({}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    w.app.clock.advance_ms(30 * Timestamp::MINUTE_MS);
    assert_eq!(
        w.app
            .post(&w.volunteer, &path("check-in"), json!({}))
            .await
            .0,
        StatusCode::OK
    );
    let (status, err) = w.app.post(&w.volunteer, &path("check-in"), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "double check-in");
    assert_eq!(err["code"], "illegal_transition");
    w.app.clock.advance_ms(60 * Timestamp::MINUTE_MS);
    assert_eq!(
        w.app
            .post(&w.volunteer, &path("check-out"), json!({}))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        w.app
            .post(&w.requester, &path("confirm"), json!({}))
            .await
            .0,
        StatusCode::OK
    );
    let (status, err) = w
        .app
        .post(&w.requester, &path("cancel"), json!({"reason": "too late"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(err["code"], "illegal_transition");

    let (status, events) = w
        .app
        .get(&w.requester, &format!("/api/v1/orders/{id}/events"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let steps: Vec<(String, String)> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["from_state"].as_str().unwrap_or("").to_string(),
                e["to_state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        ("", "submitted"),
        ("submitted", "dispatching"),
        ("dispatching", "assigned"),
        ("assigned", "in_service"),
        ("in_service", "completed"),
        ("completed", "confirmed"),
    ];
    assert_eq!(
        steps,
        want.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    );
    assert_eq!(events[3]["at"], T0.0 + 30 * Timestamp::MINUTE_MS);
    assert_eq!(events[2]["actor_user_id"], w.coordinator_id().await);
}

impl World {
    async fn coordinator_id(&self) -> i64 {
        self.app.get(&self.coordinator, "/api/v1/auth/me").await.1["user"]["id"]
            .as_i64()
            .unwrap()
    }
}

#[tokio::test]
async fn cancellation_records_actor_and_reason() {
    let w = world().await;
    let id = new_order(&w).await;
    let (status, body) = w
        .app
        .post(
            &w.requester,
            &format!("/api/v1/orders/{id}/cancel"),
            json!({"reason": "家人已买到"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "cancelled");
    let events = w.app.store.order_events(id).await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.reason.as_deref(), Some("家人已买到"));
    assert_eq!(last.actor_user_id, Some(w.requester.user_id));
}

/// Every body the volunteer can fetch about orders, as raw text.
async fn volunteer_texts(w: &World, s: &Session, id: i64) -> Vec<(String, StatusCode, String)> {
    let mut out = Vec::new();
    for path in [
        format!("/api/v1/orders/{id}"),
        "/api/v1/orders".to_string(),
        "/api/v1/orders?state=submitted,dispatching,assigned,in_service,completed".to_string(),
        format!("/api/v1/orders/{id}/events"),
    ] {
        let resp = w
            .app
            .client
            .get(format!("{}{path}", w.app.base))
            .bearer_auth(&s.token)
            .send()
            .await
            .unwrap();
        out.push((path, resp.status(), resp.text().await.unwrap()));
    }
    out
}

fn leaks(text: &str) -> bool {
    text.contains("中山东路") || text.contains("13912345678") || text.contains("电话联系")
}

#[tokio::test]
async fn only_the_live_assignee_sees_address_and_phone() {
    let w = world().await;
    let id = new_order(&w).await;
    // Before any assignment: nothing for any volunteer.
    for s in [&w.volunteer, &w.other_volunteer] {
        for (path, status, text) in volunteer_texts(&w, s, id).await {
            assert!(!leaks(&text), "{path} leaked: {text}");
            if path == format!("/api/v1/orders/{id}") {
                assert_eq!(status, StatusCode::NOT_FOUND);
            }
        }
    }
    w.app
        .post(
            &w.coordinator,
            &format!("/api/v1/orders/{id}/assign"),
            json!({"volunteer_user_id": w.volunteer_id}),
        )
        .await;
    let (status, live) = w
        .app
        .get(&w.volunteer, &format!("/api/v1/orders/{id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(live["street"], STREET);
    assert_eq!(live["contact_phone"], MEMBER_PHONE);
    assert_eq!(live["notes"], "门口放下即可,电话联系");
    assert!(live.get("member_id").is_none());
    // The other volunteer still sees nothing; lists never carry the address.
    for (path, _, text) in volunteer_texts(&w, &w.other_volunteer, id).await {
        assert!(
            !leaks(&text),
            "{path} leaked to a volunteer without the assignment"
        );
    }
    let (_, list) = w.app.get(&w.volunteer, "/api/v1/orders").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(!leaks(&list.to_string()));

    w.app
        .post(
            &w.volunteer,
            &format!("/api/v1/orders/{id}/check-in"),
            json!({}),
        )
        .await;
    w.app
        .post(
            &w.volunteer,
            &format!("/api/v1/orders/{id}/check-out"),
            json!({}),
        )
        .await;
    let (status, after) = w
        .app
        .get(&w.volunteer, &format!("/api/v1/orders/{id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(after["state"], "completed");
    assert!(
        after.get("street").is_none() && after.get("contact_phone").is_none(),
        "{after}"
    );
    assert!(!leaks(&after.to_string()));
}

#[tokio::test]
async fn sensitive_reads_are_logged_without_values() {
    let w = world().await;
    let id = new_order(&w).await;
    assert!(
        w.app
            .store
            .access_log(RecordKind::Order, id)
            .await
            .unwrap()
            .is_empty()
    );
    w.app
        .get(&w.coordinator, &format!("/api/v1/orders/{id}"))
        .await;
    // A list read shows no sensitive field and logs nothing.
    w.app.get(&w.coordinator, "/api/v1/orders").await;
    w.app
        .post(
            &w.coordinator,
            &format!("/api/v1/orders/{id}/assign"),
            json!({"volunteer_user_id": w.volunteer_id}),
        )
        .await;
    w.app
        .get(&w.volunteer, &format!("/api/v1/orders/{id}"))
        .await;
    let log = w.app.store.access_log(RecordKind::Order, id).await.unwrap();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0].actor_user_id, w.coordinator_id().await);
    assert_eq!(log[1].actor_user_id, w.volunteer_id);
    for row in &log {
        assert_eq!(row.fields, "street,contact_phone,coordinates,notes");
        assert_eq!(row.purpose, "order_detail");
        assert_eq!(row.at, T0.0);
        assert!(!row.fields.contains("中山") && !row.purpose.contains("139"));
    }
    // The household view logs its members' sensitive fields too.
    w.app.get(&w.requester, "/api/v1/household").await;
    let m = w
        .app
        .store
        .access_log(RecordKind::HouseholdMember, w.member_self)
        .await
        .unwrap();
    assert_eq!(m.len(), 1);
    assert!(m[0].fields.contains("street"));
}

#[tokio::test]
async fn purge_after_retention_keeps_counts_and_history() {
    let w = world().await;
    let done = new_order(&w).await;
    let open = new_order(&w).await;
    w.app
        .post(
            &w.coordinator,
            &format!("/api/v1/orders/{done}/assign"),
            json!({"volunteer_user_id": w.volunteer_id}),
        )
        .await;
    w.app
        .post(
            &w.volunteer,
            &format!("/api/v1/orders/{done}/check-in"),
            json!({}),
        )
        .await;
    w.app
        .post(
            &w.volunteer,
            &format!("/api/v1/orders/{done}/check-out"),
            json!({}),
        )
        .await;
    let state = w.app.state();

    w.app.clock.advance_ms(30 * Timestamp::DAY_MS - 1);
    assert_eq!(workers::purge_expired(&state).await.unwrap(), 0);
    w.app.clock.advance_ms(1);
    assert_eq!(workers::purge_expired(&state).await.unwrap(), 1);
    assert_eq!(
        workers::purge_expired(&state).await.unwrap(),
        0,
        "idempotent"
    );

    // Sessions last 12 h: sign in again a month later.
    let requester = w.app.login("13800000001").await;
    let (_, purged) = w
        .app
        .get(&requester, &format!("/api/v1/orders/{done}"))
        .await;
    assert_eq!(purged["purged"], true);
    assert_eq!(purged["street"], Value::Null);
    assert_eq!(purged["contact_phone"], Value::Null);
    assert_eq!(purged["notes"], Value::Null);
    assert_eq!(purged["state"], "completed");
    assert_eq!(purged["item"]["code"], "groceries");
    let (_, kept) = w
        .app
        .get(&requester, &format!("/api/v1/orders/{open}"))
        .await;
    assert_eq!(kept["street"], STREET, "open orders keep their address");
    assert_eq!(w.app.store.count_orders().await.unwrap(), 2);
    assert_eq!(w.app.store.order_events(done).await.unwrap().len(), 5);
}

#[tokio::test]
async fn member_names_in_any_script_round_trip() {
    let w = world().await;
    let names = [
        "欧阳娜娜",
        "José Núñez",
        "Jose\u{301} NFD",
        "👩‍⚕️ 护士",
        "Ålesund Øvre",
    ];
    for name in names {
        let (status, body) = w
            .app
            .post(
                &w.requester,
                "/api/v1/household/members",
                json!({"name": name, "relation": "parent", "adcode": "320102", "street": STREET}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (_, household) = w.app.get(&w.requester, "/api/v1/household").await;
    let stored: Vec<&str> = household["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    for name in names {
        assert!(
            stored.contains(&name),
            "{name:?} not returned byte for byte"
        );
    }
}

/// Phones as people type them: full-width digits from a Chinese input
/// method are the same number (a member, an order's contact, a sign-in),
/// and an extension is refused with the number to enter instead.
#[tokio::test]
async fn phones_are_read_as_typed_and_an_extension_gets_a_hint() {
    let w = crate::dispatch::world().await;
    let (status, member) = w
        .app
        .post(
            &w.requester,
            "/api/v1/household/members",
            json!({"name": "刘父", "relation": "parent", "adcode": "320102",
                   "street": "龙蟠中路1号", "phone": "１３９００１３９０００"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{member}");
    assert_eq!(member["phone"], "+8613900139000");

    let item = w.app.store.service_items(false).await.unwrap()[0].id;
    let place = |key: &'static str, phone: &'static str| {
        let w = &w;
        async move {
            let resp = w
                .app
                .client
                .post(format!("{}/api/v1/orders", w.app.base))
                .bearer_auth(&w.requester.token)
                .header("Idempotency-Key", key)
                .json(&json!({"item_id": item, "member_id": w.member, "contact_phone": phone,
                              "window_start": "2020-02-12T18:00", "window_end": "2020-02-12T22:00"}))
                .send()
                .await
                .unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };
    let (status, order) = place("fw", "＋８６　１３８　００１３　８０００").await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["contact_phone"], "+8613800138000");
    for typed in ["０２５－８４６８１２３４转１２３", "025-8468 1234 ext. 123"] {
        let (status, body) = place("ext", typed).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(
            (body["field"].as_str(), body["code"].as_str()),
            (Some("contact_phone"), Some("phone_extension")),
            "{typed}"
        );
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("enter 025 8468 1234") && message.contains("123"),
            "{message}"
        );
    }
    assert_eq!(w.app.store.count_orders().await.unwrap(), 1);

    // Signing in with the number typed in full width.
    let (status, body) = w
        .app
        .call(
            None,
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"phone": "１３８０００００００１", "password": crate::helpers::PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn an_order_submission_runs_at_most_six_statements() {
    crate::helpers::statements::install();
    let w = world().await;
    let body = order_body(&w, w.member_self);
    // Warm up: the first request of a connection prepares its statements.
    assert_eq!(place(&w, "warm-up", &body).await.0, StatusCode::CREATED);
    let rid = format!("count-{}", uuid::Uuid::now_v7());
    let resp = w
        .app
        .client
        .post(format!("{}/api/v1/orders", w.app.base))
        .bearer_auth(&w.requester.token)
        .header("Idempotency-Key", "counted")
        .header("x-request-id", &rid)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let all = crate::helpers::statements::of(&rid);
    let data: Vec<&String> = all
        .iter()
        .filter(|s| !crate::helpers::statements::is_transaction_control(s))
        .collect();
    eprintln!("statements of one submission: {all:#?}");
    // Authentication (1), the order's context (1), and in the order's
    // transaction: the order, its event, its outbox event and its
    // idempotency key (four inserts: four statements on SQLite, sent in two
    // round trips; two on PostgreSQL, whose second writes three tables).
    // Nothing is read back and nothing is written outside.
    assert!(
        data.len() <= 6 && data.len() >= 4,
        "{} statements: {data:#?}",
        data.len()
    );
    let writes: usize = data
        .iter()
        .map(|s| s.to_lowercase().matches("insert into").count())
        .sum();
    assert_eq!(writes, 4, "{data:#?}");
    // The transaction's own control: BEGIN and COMMIT on PostgreSQL; a
    // savepoint and its release in the SQLite writer's batch (and the
    // batch's BEGIN when it comes first).
    assert!(all.len() - data.len() <= 3, "transaction control: {all:#?}");
    assert!(
        !all.iter().any(|s| s.contains("pg_notify")),
        "NOTIFY ran inside the request: {all:#?}"
    );
}

#[tokio::test]
async fn concurrent_submissions_commit_apart_from_a_refused_one() {
    let w = world().await;
    let body = order_body(&w, w.member_self);
    assert_eq!(place(&w, "reused", &body).await.0, StatusCode::CREATED);
    let mut other = body.clone();
    other["public_note"] = json!("另一单");
    // Twelve submissions at once, one of them reusing a key with a
    // different body: it is refused and rolled back inside its
    // transaction; the others all commit.
    let w = &w;
    let mut jobs = Vec::new();
    for i in 0..12 {
        let (key, b) = if i == 5 {
            ("reused".to_string(), other.clone())
        } else {
            (format!("batch-{i}"), body.clone())
        };
        jobs.push(async move { (i, place(w, &key, &b).await) });
    }
    let results = futures::future::join_all(jobs).await;
    let mut ids = std::collections::HashSet::new();
    for (i, (status, text)) in results {
        if i == 5 {
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
            assert!(text.contains("idempotency_key_reused"), "{text}");
        } else {
            assert_eq!(status, StatusCode::CREATED, "{text}");
            let id = serde_json::from_str::<Value>(&text).unwrap()["id"]
                .as_i64()
                .unwrap();
            assert!(ids.insert(id));
            assert!(w.app.store.order(id).await.unwrap().is_some());
            assert_eq!(w.app.store.order_events(id).await.unwrap().len(), 1);
        }
    }
    assert_eq!(w.app.store.count_orders().await.unwrap(), 12);
}
