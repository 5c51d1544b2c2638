//! Sign-in, sessions, throttling, CSRF, TOTP, phone normalisation, health.

use homefront_domain::{Clock, Role, Timestamp};
use homefront_server::Config;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp};

#[tokio::test]
async fn healthz_names_the_engine() {
    let app = TestApp::spawn().await;
    let resp = reqwest::get(format!("{}/healthz", app.base)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().contains_key("x-request-id"));
    let body: serde_json::Value = resp.json().await.unwrap();
    let engine = if crate::helpers::use_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    assert_eq!(body, json!({"status": "ok", "database": engine}));
}

#[tokio::test]
async fn login_me_logout() {
    let app = TestApp::spawn().await;
    app.user("13800138000", &[(Role::Admin, None)]).await;
    let s = app.login("138 0013 8000").await;
    let (status, me) = app.get(&s, "/api/v1/auth/me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["user"]["phone"], "+8613800138000");
    assert_eq!(me["grants"][0]["role"], "admin");
    assert!(me["user"].get("password_hash").is_none());

    let (status, _) = app
        .call(Some(&s), Method::POST, "/api/v1/auth/logout", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get(&s, "/api/v1/auth/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "session_expired");
}

#[tokio::test]
async fn every_phone_form_signs_into_the_same_account() {
    let app = TestApp::spawn().await;
    let id = app.user("+86 138 0013 8000", &[]).await;
    for form in [
        "13800138000",
        "+86 138 0013 8000",
        "008613800138000",
        "+86-138-0013-8000",
    ] {
        assert_eq!(app.login(form).await.user_id, id, "{form}");
    }
    let (status, body) = app
        .call(
            None,
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"phone": "not a phone", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "invalid_phone");
    assert_eq!(body["field"], "phone");
    assert!(body["message"].as_str().unwrap().contains("13800138000"));
}

#[tokio::test]
async fn wrong_password_and_unknown_account_look_the_same() {
    let app = TestApp::spawn().await;
    app.user("13800138000", &[]).await;
    let wrong = app
        .call(
            None,
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"phone": "13800138000", "password": "wrong password"})),
        )
        .await;
    let unknown = app
        .call(
            None,
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"phone": "13900139000", "password": PASSWORD})),
        )
        .await;
    assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong, unknown);
}

async fn fail_login(app: &TestApp, phone: &str) -> (StatusCode, serde_json::Value) {
    app.call(
        None,
        Method::POST,
        "/api/v1/auth/login",
        Some(json!({"phone": phone, "password": "wrong password"})),
    )
    .await
}

#[tokio::test]
async fn account_is_throttled_after_five_failures_until_the_window_passes() {
    let app = TestApp::spawn().await;
    app.user("13800138000", &[]).await;
    for _ in 0..5 {
        assert_eq!(
            fail_login(&app, "13800138000").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    // Even the right password is refused while throttled.
    let resp = app
        .client
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&json!({"phone": "13800138000", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: i64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(retry, 15 * 60);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "too_many_attempts");

    // Another account from the same IP is not affected by this account's limit.
    app.user("13900139000", &[]).await;
    app.login("13900139000").await;

    app.clock.advance_ms(15 * Timestamp::MINUTE_MS + 1);
    app.login("13800138000").await;
}

#[tokio::test]
async fn ip_is_throttled_across_accounts() {
    let config = Config {
        login_max_failures_per_ip: 4,
        ..Config::default()
    };
    let app = TestApp::spawn_with(config).await;
    app.user("13800138000", &[]).await;
    for phone in ["13900139000", "13700137000", "13600136000", "13500135000"] {
        assert_eq!(fail_login(&app, phone).await.0, StatusCode::UNAUTHORIZED);
    }
    let resp = app
        .call(
            None,
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"phone": "13800138000", "password": PASSWORD})),
        )
        .await;
    assert_eq!(resp.0, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn sessions_expire_by_the_clock() {
    let app = TestApp::spawn().await;
    app.user("13800138000", &[]).await;
    let s = app.login("13800138000").await;
    app.clock.advance_ms(12 * Timestamp::HOUR_MS - 1);
    assert_eq!(app.get(&s, "/api/v1/auth/me").await.0, StatusCode::OK);
    app.clock.advance_ms(1);
    let (status, body) = app.get(&s, "/api/v1/auth/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "session_expired");
}

#[tokio::test]
async fn cookie_requests_need_the_csrf_token_for_unsafe_methods() {
    let app = TestApp::spawn().await;
    app.import_jiangsu().await;
    let xuanwu = app.division("320102").await;
    app.user("13800138000", &[(Role::Admin, None)]).await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let resp = browser
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&json!({"phone": "13800138000", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    let csrf = resp.json::<serde_json::Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_string();

    // Safe method: the cookie alone is enough.
    let me = browser
        .get(format!("{}/api/v1/auth/me", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);

    let team = json!({"kind": "team", "name": "玄武区青年志愿者服务队", "parent_id": xuanwu});
    let url = format!("{}/api/v1/org-units", app.base);
    let no_token = browser.post(&url).json(&team).send().await.unwrap();
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        no_token.json::<serde_json::Value>().await.unwrap()["code"],
        "csrf_failed"
    );
    let wrong = browser
        .post(&url)
        .header("x-csrf-token", "forged")
        .json(&team)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    // Nothing was created by the refused requests.
    let teams = app
        .store
        .org_units(
            None,
            Some(xuanwu),
            Some(homefront_domain::org::OrgKind::Team),
        )
        .await
        .unwrap();
    assert!(teams.is_empty());

    let ok = browser
        .post(&url)
        .header("x-csrf-token", &csrf)
        .json(&team)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn totp_is_required_once_enabled() {
    let app = TestApp::spawn().await;
    app.user("13800138000", &[(Role::Admin, None)]).await;
    let s = app.login("13800138000").await;
    let (status, setup) = app.post(&s, "/api/v1/auth/totp/setup", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{setup}");
    let secret = setup["secret"].as_str().unwrap().to_string();
    assert!(
        setup["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );

    let (status, body) = app
        .post(
            &s,
            "/api/v1/auth/totp/enable",
            json!({"totp_code": "000000"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let code = homefront_server::auth::totp_code(&secret, app.clock.now()).unwrap();
    let (status, _) = app
        .post(&s, "/api/v1/auth/totp/enable", json!({"totp_code": code}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let login =
        |body: serde_json::Value| app.call(None, Method::POST, "/api/v1/auth/login", Some(body));
    let (status, body) = login(json!({"phone": "13800138000", "password": PASSWORD})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "totp_required");
    assert_eq!(body["field"], "totp_code");
    let (status, body) =
        login(json!({"phone": "13800138000", "password": PASSWORD, "totp_code": "123456"})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "invalid_totp");
    app.clock.advance_ms(5 * Timestamp::MINUTE_MS);
    let code = homefront_server::auth::totp_code(&secret, app.clock.now()).unwrap();
    let (status, _) =
        login(json!({"phone": "13800138000", "password": PASSWORD, "totp_code": code})).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn totp_is_only_for_coordinators_and_admins() {
    let app = TestApp::spawn().await;
    app.user("13800138000", &[(Role::Requester, None)]).await;
    let s = app.login("13800138000").await;
    let (status, _) = app.post(&s, "/api/v1/auth/totp/setup", json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn password_change_ends_other_sessions() {
    let app = TestApp::spawn().await;
    app.user("13800138000", &[]).await;
    let a = app.login("13800138000").await;
    let (status, body) = app
        .post(
            &a,
            "/api/v1/auth/password",
            json!({"current_password": PASSWORD, "new_password": "short"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "new_password");
    let (status, _) = app
        .post(
            &a,
            "/api/v1/auth/password",
            json!({"current_password": PASSWORD, "new_password": "a much longer secret"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&a, "/api/v1/auth/me").await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = app
        .call(
            None,
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"phone": "13800138000", "password": "a much longer secret"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn malformed_bodies_name_the_field() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .call(
            None,
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"phone": "13800138000"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "invalid_body");
    assert_eq!(body["field"], "password");
}
