//! The organisation tree over HTTP: import, teams, names in any script.

use homefront_domain::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn import_is_idempotent_with_109_jiangsu_units() {
    let app = TestApp::spawn().await;
    app.import_jiangsu().await;
    assert_eq!(app.store.count_org_units().await.unwrap(), 109);
    let again = app.store.import_divisions(32, 0, |_, _| {}).await.unwrap();
    assert_eq!(again.created, 0);
    assert_eq!(again.existing, 109);
    assert_eq!(app.store.count_org_units().await.unwrap(), 109);

    // Tree shape: Xuanwu under Nanjing under Jiangsu, with coordinates.
    let xuanwu = app
        .store
        .org_unit_by_adcode("320102000000")
        .await
        .unwrap()
        .unwrap();
    let nanjing = app
        .store
        .org_unit(xuanwu.parent_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(nanjing.adcode.as_deref(), Some("320100000000"));
    let jiangsu = app
        .store
        .org_unit(nanjing.parent_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(jiangsu.name, "江苏省");
    assert!(xuanwu.longitude.is_some() && xuanwu.latitude.is_some());
    assert!(xuanwu.path.starts_with(&nanjing.path));
}

#[tokio::test]
async fn divisions_list_children() {
    let app = TestApp::spawn().await;
    app.import_jiangsu().await;
    app.user("13800138000", &[(Role::Requester, None)]).await;
    let s = app.login("13800138000").await;
    let (status, provinces) = app.get(&s, "/api/v1/divisions").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(provinces.as_array().unwrap().len(), 1);
    let js = provinces[0]["id"].as_i64().unwrap();
    let (_, cities) = app
        .get(&s, &format!("/api/v1/divisions?parent_id={js}"))
        .await;
    assert_eq!(cities.as_array().unwrap().len(), 13);
}

#[tokio::test]
async fn names_in_any_script_round_trip() {
    let app = TestApp::spawn().await;
    app.import_jiangsu().await;
    let xuanwu = app.division("320102").await;
    app.user("13800138000", &[(Role::Admin, None)]).await;
    let s = app.login("13800138000").await;
    let nfd = "Cafe\u{301} Équipe";
    for name in [
        "熊猫爱心车队",
        "Zhōngdà Hospital",
        nfd,
        "Team 🚑 救护",
        "Ελληνικά ομάδα",
    ] {
        let (status, body) = app
            .post(
                &s,
                "/api/v1/org-units",
                json!({"kind": "partner", "name": name, "parent_id": xuanwu}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["id"].as_i64().unwrap();
        let (_, read) = app.get(&s, &format!("/api/v1/org-units/{id}")).await;
        assert_eq!(
            read["name"], name,
            "bytes must be unchanged, NFD kept as NFD"
        );
    }
}

#[tokio::test]
async fn bad_input_names_the_field_and_creates_nothing() {
    let app = TestApp::spawn().await;
    app.import_jiangsu().await;
    let xuanwu = app.division("320102").await;
    app.user("13800138000", &[(Role::Admin, None)]).await;
    let s = app.login("13800138000").await;
    let cases = [
        (
            json!({"kind": "county", "name": "x", "parent_id": xuanwu}),
            "kind",
        ),
        (
            json!({"kind": "team", "name": "  ", "parent_id": xuanwu}),
            "name",
        ),
        (
            json!({"kind": "team", "name": "x", "parent_id": 999999}),
            "parent_id",
        ),
        (
            json!({"kind": "team", "name": "x", "parent_id": xuanwu, "longitude": 200.0, "latitude": 30.0}),
            "longitude",
        ),
        (
            json!({"kind": "team", "name": "x", "parent_id": xuanwu, "longitude": 118.0}),
            "latitude",
        ),
    ];
    for (body, field) in cases {
        let (status, err) = app.post(&s, "/api/v1/org-units", body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
        assert_eq!(err["field"], field, "{err}");
    }
    assert_eq!(app.store.count_org_units().await.unwrap(), 109);

    let (status, err) = app
        .post(
            &s,
            "/api/v1/users",
            json!({"phone": "12345", "display_name": "x", "password": "long enough pw"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["field"], "phone");
    let (status, err) = app
        .post(
            &s,
            "/api/v1/users",
            json!({"phone": "+86 138 0013 8000", "display_name": "dup", "password": "long enough pw"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(err["code"], "phone_taken");
}
