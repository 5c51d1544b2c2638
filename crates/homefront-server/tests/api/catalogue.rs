//! The catalogue, households verified by liaisons, and lanes.

use homefront_domain::Role;
use homefront_domain::org::OrgKind;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::TestApp;

fn item(code: &str, org_unit_id: Option<i64>) -> Value {
    json!({"code": code, "org_unit_id": org_unit_id, "name_zh": "接送上下班", "name_en": "Shift rides",
           "mode": "onsite", "qualifications": ["driving_licence"], "default_duration_minutes": 40,
           "offer_timeout_seconds": 180, "lane": "urgent"})
}

#[tokio::test]
async fn catalogue_is_seeded_bilingual_and_editable_in_scope() {
    let app = TestApp::spawn().await;
    app.import_jiangsu().await;
    let xuanwu = app.division("320102").await;
    let qinhuai = app.division("320104").await;
    app.user("13800000001", &[(Role::Admin, None)]).await;
    app.user("13800000002", &[(Role::Coordinator, Some(xuanwu))])
        .await;
    app.user("13800000003", &[(Role::Coordinator, Some(qinhuai))])
        .await;
    app.user("13800000004", &[(Role::Requester, None)]).await;
    let admin = app.login("13800000001").await;
    let xw = app.login("13800000002").await;
    let qh = app.login("13800000003").await;
    let req = app.login("13800000004").await;

    let (status, items) = app.get(&req, "/api/v1/service-items").await;
    assert_eq!(status, StatusCode::OK);
    let items = items.as_array().unwrap();
    assert_eq!(items.len(), 12);
    let counselling = items.iter().find(|i| i["code"] == "counselling").unwrap();
    assert_eq!(counselling["mode"], "remote");
    assert_eq!(counselling["qualifications"], "counsellor");
    assert_eq!(counselling["follow_up_days"], 7);
    assert!(
        items
            .iter()
            .all(|i| !i["name_zh"].as_str().unwrap().is_empty()
                && !i["name_en"].as_str().unwrap().is_empty())
    );

    assert_eq!(
        app.post(&req, "/api/v1/service-items", item("ride2", None))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (status, err) = app
        .post(&xw, "/api/v1/service-items", item("ride2", None))
        .await;
    assert_eq!(
        (status, err["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("org_unit_id"))
    );
    let (status, local) = app
        .post(
            &xw,
            "/api/v1/service-items",
            item("shift_ride", Some(xuanwu)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{local}");
    let (status, _) = app
        .post(
            &qh,
            "/api/v1/service-items",
            item("shift_ride", Some(xuanwu)),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, err) = app
        .post(
            &xw,
            "/api/v1/service-items",
            item("shift_ride", Some(xuanwu)),
        )
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::CONFLICT, Some("duplicate_code"))
    );
    let (status, err) = app
        .post(&admin, "/api/v1/service-items", json!({"code": "x y"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");

    let id = local["id"].as_i64().unwrap();
    let mut edit = item("shift_ride", None);
    edit.as_object_mut().unwrap().remove("org_unit_id");
    edit["default_duration_minutes"] = json!(50);
    let path = format!("/api/v1/service-items/{id}");
    assert_eq!(
        app.call(Some(&qh), Method::PATCH, &path, Some(edit.clone()))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (status, edited) = app
        .call(Some(&xw), Method::PATCH, &path, Some(edit.clone()))
        .await;
    assert_eq!(
        (status, edited["default_duration_minutes"].as_i64()),
        (StatusCode::OK, Some(50))
    );
    let global = items.iter().find(|i| i["code"] == "groceries").unwrap()["id"]
        .as_i64()
        .unwrap();
    let (status, _) = app
        .call(
            Some(&xw),
            Method::PATCH,
            &format!("/api/v1/service-items/{global}"),
            Some(edit),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "global items are the admin's"
    );
}

#[tokio::test]
async fn retired_items_take_no_orders_and_old_orders_stay_readable() {
    let app = TestApp::spawn().await;
    app.import_jiangsu().await;
    app.user("13800000001", &[(Role::Admin, None)]).await;
    app.user("13800000004", &[(Role::Requester, None)]).await;
    let admin = app.login("13800000001").await;
    let req = app.login("13800000004").await;
    let (_, m) = app
        .post(&req, "/api/v1/household/members",
              json!({"name": "李华", "relation": "self", "adcode": "320102", "street": "北京东路1号"}))
        .await;
    let courier = app
        .store
        .service_items(false)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.code == "courier")
        .unwrap();
    let body = json!({"item_id": courier.id, "member_id": m["id"], "window_start": "2020-02-13T09:00",
                      "window_end": "2020-02-13T12:00"});
    let send = |key: &'static str| {
        app.client
            .post(format!("{}/api/v1/orders", app.base))
            .bearer_auth(&req.token)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let old: Value = send("a").await.unwrap().json().await.unwrap();
    let retire = json!({"name_zh": courier.name_zh, "name_en": courier.name_en, "mode": "onsite",
        "default_duration_minutes": 45, "offer_timeout_seconds": 300, "lane": "standard", "retired": true});
    let (status, item) = app
        .call(
            Some(&admin),
            Method::PATCH,
            &format!("/api/v1/service-items/{}", courier.id),
            Some(retire),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{item}");
    assert!(item["retired_at"].is_i64());
    let resp = send("b").await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(resp.json::<Value>().await.unwrap()["code"], "item_retired");
    let (status, read) = app
        .get(&req, &format!("/api/v1/orders/{}", old["id"]))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["item"]["name_zh"], "快递跑腿");
    let (_, active) = app.get(&req, "/api/v1/service-items").await;
    assert_eq!(active.as_array().unwrap().len(), 11);
    let (_, all) = app
        .get(&admin, "/api/v1/service-items?include_retired=true")
        .await;
    assert_eq!(all.as_array().unwrap().len(), 12);
}

#[tokio::test]
async fn liaison_verifies_deployed_staff_whose_counselling_gets_the_priority_lane() {
    let app = TestApp::spawn().await;
    app.import_jiangsu().await;
    let xuanwu = app.division("320102").await;
    let hospital = app.unit(OrgKind::Employer, "江苏省人民医院", xuanwu).await;
    let other_hospital = app.unit(OrgKind::Employer, "南京市鼓楼医院", xuanwu).await;
    app.user("13800000006", &[(Role::Liaison, Some(hospital))])
        .await;
    app.user("13800000004", &[(Role::Requester, None)]).await;
    let liaison = app.login("13800000006").await;
    let req = app.login("13800000004").await;
    let (_, m) = app
        .post(&req, "/api/v1/household/members",
              json!({"name": "张医生", "relation": "self", "adcode": "320102", "street": "广州路300号"}))
        .await;
    let items = app.store.service_items(false).await.unwrap();
    let counselling = items.iter().find(|i| i.code == "counselling").unwrap().id;
    let order = |key: &'static str, session: &crate::helpers::Session, extra: Value| {
        let mut body = json!({"item_id": counselling, "member_id": m["id"],
            "window_start": "2020-02-12T20:00", "window_end": "2020-02-12T21:00"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        app.client
            .post(format!("{}/api/v1/orders", app.base))
            .bearer_auth(&session.token)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let before: Value = order("1", &req, json!({}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(before["lane"], "urgent");

    let verify = |employer: i64| json!({"phone": "13800000004", "employer_id": employer, "department": "重症医学科", "deployed_to_centre": true});
    let (status, _) = app
        .post(
            &liaison,
            "/api/v1/households/verify",
            verify(other_hospital),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "not the liaison's employer"
    );
    let (status, _) = app
        .post(&req, "/api/v1/households/verify", verify(hospital))
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "requesters cannot verify themselves"
    );
    let (status, h) = app
        .post(&liaison, "/api/v1/households/verify", verify(hospital))
        .await;
    assert_eq!(status, StatusCode::OK, "{h}");
    assert_eq!(h["deployed_to_centre"], 1);

    let after: Value = order("2", &req, json!({}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after["lane"], "priority");

    // The liaison places one on the requester's behalf; the requester sees it.
    let resp = order(
        "3",
        &liaison,
        json!({"on_behalf_of_phone": "138 0000 0004"}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let placed: Value = resp.json().await.unwrap();
    let (status, seen) = app
        .get(&req, &format!("/api/v1/orders/{}", placed["id"]))
        .await;
    assert_eq!(
        (status, seen["lane"].as_str()),
        (StatusCode::OK, Some("priority"))
    );
}
