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

/// A sign-in attempt from client address `ip` (the app trusts
/// `X-Forwarded-For`): status, `Retry-After` seconds, body.
async fn attempt(
    app: &TestApp,
    phone: &str,
    password: &str,
    ip: &str,
) -> (StatusCode, Option<i64>, serde_json::Value) {
    let resp = app
        .client
        .post(format!("{}/api/v1/auth/login", app.base))
        .header("x-forwarded-for", ip)
        .json(&json!({"phone": phone, "password": password}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (status, retry, resp.json().await.unwrap_or_default())
}

fn behind_proxy() -> Config {
    Config {
        trust_forwarded_for: true,
        ..Config::default()
    }
}

const ATTACKER: &str = "203.0.113.9";
const OWNER: &str = "198.51.100.7";
const WRONG: &str = "wrong password";

#[tokio::test]
async fn a_guessing_client_backs_off_while_the_owner_elsewhere_signs_in() {
    let app = TestApp::spawn_with(behind_proxy()).await;
    let phone = "13800138000";
    app.user(phone, &[]).await;
    for _ in 0..3 {
        let (status, ..) = attempt(&app, phone, WRONG, ATTACKER).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // Each further failure of the pair doubles the wait, up to 15 minutes;
    // even the right password waits (the guesser may have found it).
    for expected in [30, 60, 120, 240, 480, 900, 900] {
        let (status, retry, body) = attempt(&app, phone, PASSWORD, ATTACKER).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(body["code"], "too_many_attempts");
        assert_eq!(retry, Some(expected));
        // The owner, from another address, is not held up.
        let (status, _, body) = attempt(&app, phone, PASSWORD, OWNER).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "owner while attacker waits {expected} s: {body}"
        );
        app.clock.advance_ms(expected * 1000 - 1_000);
        let (status, retry, _) = attempt(&app, phone, WRONG, ATTACKER).await;
        assert_eq!((status, retry), (StatusCode::TOO_MANY_REQUESTS, Some(1)));
        app.clock.advance_ms(1_000);
        let (status, ..) = attempt(&app, phone, WRONG, ATTACKER).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // A success from the pair forgives its failures.
    app.clock.advance_ms(900_000);
    let (status, ..) = attempt(&app, phone, PASSWORD, ATTACKER).await;
    assert_eq!(status, StatusCode::OK);
    let (status, ..) = attempt(&app, phone, WRONG, ATTACKER).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn one_accounts_failures_do_not_lock_out_colleagues_behind_one_address() {
    // Every client of the suite is 127.0.0.1: one hospital behind NAT.
    let app = TestApp::spawn().await;
    let colleagues: Vec<String> = (0..25).map(|i| format!("139001390{i:02}")).collect();
    app.user("13800138000", &[]).await;
    for phone in &colleagues {
        app.user(phone, &[]).await;
    }
    // One account fails 25 times, as fast as its back-off allows.
    for _ in 0..25 {
        let (status, retry, _) = attempt(&app, "13800138000", WRONG, "ignored").await;
        match status {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::TOO_MANY_REQUESTS => {
                app.clock.advance_ms(retry.unwrap() * 1000);
                let (status, ..) = attempt(&app, "13800138000", WRONG, "ignored").await;
                assert_eq!(status, StatusCode::UNAUTHORIZED);
            }
            other => panic!("unexpected {other}"),
        }
    }
    // Everyone else at the address signs in, even after a typo of their
    // own: 26 accounts failed here within the hour, under the limit of 50.
    for phone in &colleagues {
        assert_eq!(fail_login(&app, phone).await.0, StatusCode::UNAUTHORIZED);
        app.login(phone).await;
    }
}

#[tokio::test]
async fn an_address_failing_for_many_accounts_is_refused() {
    let config = Config {
        login_max_accounts_per_ip: 4,
        ..behind_proxy()
    };
    let app = TestApp::spawn_with(config).await;
    app.user("13800138000", &[]).await;
    for phone in ["13900139000", "13700137000", "13600136000", "13500135000"] {
        let (status, ..) = attempt(&app, phone, WRONG, ATTACKER).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, retry, _) = attempt(&app, "13800138000", PASSWORD, ATTACKER).await;
    assert_eq!((status, retry), (StatusCode::TOO_MANY_REQUESTS, Some(3600)));
    let (status, ..) = attempt(&app, "13800138000", PASSWORD, OWNER).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_account_ceiling_holds_across_addresses_until_the_window_passes() {
    let config = Config {
        login_max_failures_per_account: 6,
        ..behind_proxy()
    };
    let app = TestApp::spawn_with(config).await;
    let phone = "13800138000";
    app.user(phone, &[]).await;
    // Two failures from each of three addresses: no back-off yet.
    for ip in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        for _ in 0..2 {
            let (status, ..) = attempt(&app, phone, WRONG, ip).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
    }
    app.clock.advance_ms(10 * Timestamp::MINUTE_MS);
    let (status, retry, _) = attempt(&app, phone, PASSWORD, OWNER).await;
    assert_eq!(
        (status, retry),
        (StatusCode::TOO_MANY_REQUESTS, Some(50 * 60))
    );
    app.clock.advance_ms(50 * Timestamp::MINUTE_MS);
    let (status, ..) = attempt(&app, phone, PASSWORD, OWNER).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_coordinator_unlocks_an_account_of_the_area() {
    let config = Config {
        login_max_failures_per_account: 4,
        ..behind_proxy()
    };
    let phone = "13900139000";
    let w = crate::helpers::World::jiangsu()
        .config(config)
        .county("320102")
        .team("玄武区志愿服务队")
        .volunteer(phone)
        .coordinator("13800000003")
        .coordinator_of("320104", "13800000004")
        .build()
        .await;
    let volunteer = w.user_id(phone);
    let xuanwu_c = w.session("13800000003");
    let qinhuai_c = w.session("13800000004");
    let own = w.session(phone);
    let app = w.app;

    // Locked: the ceiling from everywhere, and the back-off at the guesser.
    for ip in ["203.0.113.1", "203.0.113.1", "203.0.113.1", "203.0.113.2"] {
        let (status, ..) = attempt(&app, phone, WRONG, ip).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, ..) = attempt(&app, phone, PASSWORD, OWNER).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    let path = format!("/api/v1/users/{volunteer}/unlock");
    let (status, _) = app.post(&own, &path, json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a volunteer unlocks nobody");
    let (status, _) = app.post(&qinhuai_c, &path, json!({})).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "out of the coordinator's area"
    );
    let (status, ..) = attempt(&app, phone, PASSWORD, OWNER).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    let (status, body) = app.post(&xuanwu_c, &path, json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, ..) = attempt(&app, phone, PASSWORD, OWNER).await;
    assert_eq!(status, StatusCode::OK);
    let (status, ..) = attempt(&app, phone, PASSWORD, "203.0.113.1").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the guesser's address is cleared too"
    );
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

/// serde reads a struct from an array of its fields too; the API takes
/// objects only (Schemathesis found `[null, null]` patching a unit).
#[tokio::test]
async fn a_body_that_is_not_an_object_is_refused() {
    let app = TestApp::spawn().await;
    app.user("13800138000", &[(Role::Admin, None)]).await;
    let admin = app.login("13800138000").await;
    for body in [
        json!([null, null]),
        json!(["13800138000", PASSWORD]),
        json!(7),
    ] {
        let (status, answer) = app
            .call(
                Some(&admin),
                Method::PATCH,
                "/api/v1/org-units/1",
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        let (status, answer) = app
            .call(None, Method::POST, "/api/v1/auth/login", Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["code"], "invalid_body");
    }
}
