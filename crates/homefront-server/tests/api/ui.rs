//! The web pages: sign-in by form, the `_csrf` form field, language choice,
//! embedded assets, and 404 pages for records outside the viewer's reach.

use homefront_domain::Role;
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp};

pub(crate) fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

pub(crate) async fn sign_in(
    app: &TestApp,
    client: &reqwest::Client,
    phone: &str,
    page: &str,
) -> String {
    let resp = client
        .post(format!("{}/login", app.base))
        .form(&[("phone", phone), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    // The session's CSRF token, as the pages embed it in their forms.
    let html = client
        .get(format!("{}{page}", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    html.split("name=\"_csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("csrf field")
        .to_string()
}

#[tokio::test]
async fn form_posts_need_the_sessions_csrf_token_in_the_form_or_header() {
    let app = TestApp::spawn().await;
    app.import_jiangsu().await;
    app.user("13800000001", &[(Role::Requester, None)]).await;
    let requester = app.login("13800000001").await;
    let (status, member) = app
        .post(
            &requester,
            "/api/v1/household/members",
            json!({"name": "王芳", "relation": "self", "adcode": "320102", "street": "中山东路1号"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{member}");
    let client = browser();
    let csrf = sign_in(&app, &client, "13800000001", "/orders").await;
    let items = app.store.service_items(false).await.unwrap();
    let form = |token: Option<&str>| {
        let mut f = vec![
            ("item", items[0].id.to_string()),
            ("member", member["id"].to_string()),
            ("key", "k-1".to_string()),
            ("window_start", "2020-02-13T10:00".to_string()),
            ("window_end", "2020-02-13T12:00".to_string()),
        ];
        if let Some(t) = token {
            f.push(("_csrf", t.to_string()));
        }
        f
    };
    for bad in [None, Some(""), Some("wrong")] {
        let resp = client
            .post(format!("{}/orders", app.base))
            .form(&form(bad))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "token {bad:?}");
        assert!(resp.text().await.unwrap().contains("页面已过期"));
    }
    assert_eq!(app.store.count_orders().await.unwrap(), 0);
    let resp = client
        .post(format!("{}/orders", app.base))
        .form(&form(Some(&csrf)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let to = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with("/orders/"), "{to}");
    // The same form again (a double submit) makes no second order.
    let resp = client
        .post(format!("{}/orders", app.base))
        .form(&form(Some(&csrf)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["location"].to_str().unwrap(), to);
    assert_eq!(app.store.count_orders().await.unwrap(), 1);
    // The header still works for the JSON API with the cookie, and a wrong
    // header is not rescued by a right form field.
    let resp = client
        .post(format!("{}{to}/cancel", app.base))
        .header("x-csrf-token", "wrong")
        .form(&[("_csrf", csrf.as_str()), ("reason", "不需要了")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn pages_speak_chinese_by_default_and_english_on_request() {
    let app = TestApp::spawn().await;
    let client = browser();
    let zh = client
        .get(format!("{}/login", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(zh.contains("<html lang=\"zh-CN\">") && zh.contains("登录"));
    let en = client
        .get(format!("{}/login", app.base))
        .header("accept-language", "en-GB,en;q=0.9,zh;q=0.5")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(en.contains("<html lang=\"en\">") && en.contains("Sign in"));
    // The switch sets a cookie that wins over Accept-Language, and only
    // returns to local paths.
    let resp = client
        .get(format!("{}/lang/en?next=//evil.example/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["location"], "/");
    let en = client
        .get(format!("{}/login", app.base))
        .header("accept-language", "zh-CN")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(en.contains("Sign in"));
    let resp = client
        .post(format!("{}/login", app.base))
        .form(&[("phone", "12"), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp.text().await.unwrap().contains("enter 11 digits"));
}

#[tokio::test]
async fn assets_are_embedded_and_pages_need_a_session() {
    let app = TestApp::spawn().await;
    let client = browser();
    for (path, ctype) in [
        ("/assets/app.css", "text/css"),
        ("/assets/vendor/htmx-2.0.11.min.js", "text/javascript"),
    ] {
        let resp = client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(ctype)
        );
    }
    for path in ["/", "/orders", "/volunteer", "/board", "/orders/1"] {
        let resp = client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{path}");
        // Back to the page asked for after signing in.
        let expected = if path == "/" {
            "/login".to_string()
        } else {
            format!("/login?next={path}")
        };
        assert_eq!(resp.headers()["location"], expected.as_str());
    }
}

#[tokio::test]
async fn order_pages_answer_404_outside_the_viewers_reach() {
    let app = TestApp::spawn().await;
    app.import_jiangsu().await;
    let qinhuai = app.division("320104").await;
    app.user("13800000001", &[(Role::Requester, None)]).await;
    app.user("13800000003", &[(Role::Coordinator, Some(qinhuai))])
        .await;
    let requester = app.login("13800000001").await;
    let (_, member) = app
        .post(
            &requester,
            "/api/v1/household/members",
            json!({"name": "王芳", "relation": "self", "adcode": "320102", "street": "中山东路1号"}),
        )
        .await;
    let items = app.store.service_items(false).await.unwrap();
    let resp = app
        .client
        .post(format!("{}/api/v1/orders", app.base))
        .bearer_auth(&requester.token)
        .header("idempotency-key", "a")
        .json(&json!({"item_id": items[0].id, "member_id": member["id"],
            "window_start": "2020-02-13T10:00", "window_end": "2020-02-13T12:00"}))
        .send()
        .await
        .unwrap();
    let order: serde_json::Value = resp.json().await.unwrap();
    let id = order["id"].as_i64().unwrap();
    let client = browser();
    sign_in(&app, &client, "13800000003", "/board").await;
    for path in [
        format!("/board/orders/{id}"),
        format!("/orders/{id}"),
        format!("/assignments/{id}"),
        format!("/live/orders/{id}"),
    ] {
        let resp = client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(!resp.text().await.unwrap().contains("中山东路"), "{path}");
    }
}

/// The sign-in page backing off after failed sign-ins says how long to
/// wait and that a coordinator can unlock the account, in the page's
/// language, with the same `Retry-After` header as the API.
#[tokio::test]
async fn the_sign_in_page_says_how_long_to_wait_after_failed_sign_ins() {
    let app = TestApp::spawn().await;
    app.user("13800000001", &[(Role::Requester, None)]).await;
    let client = browser();
    let attempt = |lang: &'static str| {
        let client = &client;
        let app = &app;
        async move {
            client
                .post(format!("{}/login", app.base))
                .header("accept-language", lang)
                .form(&[("phone", "13800000001"), ("password", "not-the-password")])
                .send()
                .await
                .unwrap()
        }
    };
    // The free failures (login_free_failures = 3): a wrong password.
    for _ in 0..3 {
        assert_eq!(attempt("zh-CN").await.status(), StatusCode::UNAUTHORIZED);
    }
    let resp = attempt("zh-CN").await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "30");
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("请30秒后再试") && html.contains("解锁"),
        "{html}"
    );
    let en = attempt("en").await.text().await.unwrap();
    assert!(
        en.contains("wait 30 seconds") && en.contains("unlock the account"),
        "{en}"
    );
}
