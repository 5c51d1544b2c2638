//! Attacks on input, headers, sessions and sign-in, each tried over HTTP
//! the way an attacker would, on whichever engine the suite runs.
//!
//! Fixture (Jiangsu divisions imported): a team and an employer under
//! Xuanwu (320102); an admin, Xuanwu's coordinator, a requester with one
//! household member, a volunteer of the team.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Session, TestApp};

pub(crate) struct Fixture {
    pub app: TestApp,
    pub xuanwu_id: i64,
    pub team: i64,
    pub admin: Session,
    pub coordinator: Session,
    pub requester: Session,
    pub volunteer: Session,
    pub member: i64,
    pub item: i64,
}

pub(crate) async fn fixture() -> Fixture {
    let w = crate::helpers::World::jiangsu()
        .county("320102")
        .team("玄武区志愿服务队")
        .admin("13800000001")
        .coordinator("13800000003")
        .requester("13800000008")
        .build()
        .await;
    let (xuanwu_id, team) = (w.county, w.team);
    let admin = w.session("13800000001");
    let coordinator = w.session("13800000003");
    let requester = w.session("13800000008");
    let app = w.app;
    let (s, v) = app
        .post(
            &coordinator,
            "/api/v1/volunteers",
            json!({"phone": "13900000001", "display_name": "志愿者", "team_id": team,
                   "password": "volunteer password 1"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let volunteer = login_with(&app, "13900000001", "volunteer password 1").await;
    let (s, m) = app
        .post(
            &requester,
            "/api/v1/household/members",
            json!({"name": "周护士", "relation": "self", "adcode": "320102", "street": "珠江路1号"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    let item = app.store.service_items(false).await.unwrap()[0].id;
    Fixture {
        xuanwu_id,
        team,
        admin,
        coordinator,
        requester,
        volunteer,
        member: m["id"].as_i64().unwrap(),
        item,
        app,
    }
}

/// Signs in with a given password.
pub(crate) async fn login_with(app: &TestApp, phone: &str, password: &str) -> Session {
    let (status, body) = app
        .call(
            None,
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"phone": phone, "password": password})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "login {phone}: {body}");
    Session {
        token: body["token"].as_str().unwrap().to_string(),
        user_id: body["user"]["id"].as_i64().unwrap(),
    }
}

impl Fixture {
    /// Places an order with `notes`; returns status and body.
    pub async fn order(&self, key: &str, notes: &str) -> (StatusCode, Value) {
        self.order_as(&self.requester, key, notes).await
    }

    /// Places an order as `session` (a requester of the household).
    pub async fn order_as(&self, session: &Session, key: &str, notes: &str) -> (StatusCode, Value) {
        let resp = self
            .app
            .client
            .post(format!("{}/api/v1/orders", self.app.base))
            .bearer_auth(&session.token)
            .header("Idempotency-Key", key)
            .json(&json!({"item_id": self.item, "member_id": self.member,
                          "window_start": "2020-02-12T20:00", "window_end": "2020-02-12T22:00",
                          "notes": notes}))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select cast(count(*) as bigint) from {table}"
    )))
    .fetch_one(app.store.pool())
    .await
    .unwrap()
}

/// NUL and other control characters, bidirectional overrides and
/// invisible-only names answer 422 naming the field, on every engine
/// (PostgreSQL's text columns refuse NUL, which used to answer 500), and
/// nothing is written.
#[tokio::test]
async fn control_characters_bidi_overrides_and_invisible_names_are_refused() {
    let f = fixture().await;
    let (s, order) = f.order("ok", "门口放下").await;
    assert_eq!(s, StatusCode::CREATED, "{order}");
    let order = order["id"].as_i64().unwrap();
    let volunteer_id = f.volunteer.user_id;
    let nul = "a\u{0}b";
    let cases: Vec<(&str, &Session, Method, String, Value, &str)> = vec![
        (
            "member name",
            &f.requester,
            Method::POST,
            "/api/v1/household/members".into(),
            json!({"name": nul, "relation": "parent", "adcode": "320102", "street": "珠江路2号"}),
            "name",
        ),
        (
            "member street",
            &f.requester,
            Method::POST,
            "/api/v1/household/members".into(),
            json!({"name": "周父", "relation": "parent", "adcode": "320102", "street": nul}),
            "street",
        ),
        (
            "member street with a right-to-left override",
            &f.requester,
            Method::PATCH,
            format!("/api/v1/household/members/{}", f.member),
            json!({"name": "周护士", "relation": "self", "adcode": "320102",
                   "street": "珠江路\u{202E}号1"}),
            "street",
        ),
        (
            "cancel reason",
            &f.requester,
            Method::POST,
            format!("/api/v1/orders/{order}/cancel"),
            json!({"reason": "\u{1b}[2J不需要了"}),
            "reason",
        ),
        (
            "unit name",
            &f.coordinator,
            Method::POST,
            "/api/v1/org-units".into(),
            json!({"kind": "team", "name": nul, "parent_id": f.xuanwu_id}),
            "name",
        ),
        (
            "user name",
            &f.coordinator,
            Method::POST,
            "/api/v1/users".into(),
            json!({"phone": "13900000002", "display_name": nul, "password": "long enough password",
                   "grants": [{"role": "volunteer", "org_unit_id": f.team}]}),
            "display_name",
        ),
        (
            "user name of zero-width characters only",
            &f.coordinator,
            Method::POST,
            "/api/v1/users".into(),
            json!({"phone": "13900000003", "display_name": "\u{200B}\u{200B}\u{FEFF}",
                   "password": "long enough password",
                   "grants": [{"role": "volunteer", "org_unit_id": f.team}]}),
            "display_name",
        ),
        (
            "a grant's role, in a list",
            &f.coordinator,
            Method::POST,
            "/api/v1/users".into(),
            json!({"phone": "13900000004", "display_name": "x", "password": "long enough password",
                   "grants": [{"role": "volunteer\u{0}", "org_unit_id": f.team}]}),
            "grants[0].role",
        ),
        (
            "vetting note",
            &f.coordinator,
            Method::POST,
            format!("/api/v1/volunteers/{volunteer_id}/vetting"),
            json!({"target_state": "reviewed", "note": nul}),
            "note",
        ),
    ];
    let mut failures = Vec::new();
    for (what, session, method, path, body, field) in cases {
        let (status, answer) = f.app.call(Some(session), method, &path, Some(body)).await;
        if (status, answer["code"].as_str(), answer["field"].as_str())
            != (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("invalid_text"),
                Some(field),
            )
        {
            failures.push(format!("{what}: {status} {answer}"));
        }
    }
    // Order notes, and a query parameter of any signed-in user.
    let (status, answer) = f.order("nul", nul).await;
    if (status, answer["field"].as_str()) != (StatusCode::UNPROCESSABLE_ENTITY, Some("notes")) {
        failures.push(format!("order notes: {status} {answer}"));
    }
    for session in [&f.requester, &f.volunteer, &f.coordinator] {
        let (status, answer) = f.app.get(session, "/api/v1/orders?item=%00").await;
        if (status, answer["field"].as_str()) != (StatusCode::UNPROCESSABLE_ENTITY, Some("item")) {
            failures.push(format!("?item=%00: {status} {answer}"));
        }
    }
    // A path segment: no record has such a code.
    let (status, _) = f.app.get(&f.admin, "/certificates/%00").await;
    if status != StatusCode::NOT_FOUND {
        failures.push(format!("/certificates/%00: {status}"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Nothing was written; the order is still open.
    assert_eq!(count(&f.app, "household_member").await, 1);
    assert_eq!(count(&f.app, "app_user").await, 4);
    assert_eq!(count(&f.app, "service_order").await, 1);
    let (_, o) = f
        .app
        .get(&f.requester, &format!("/api/v1/orders/{order}"))
        .await;
    assert_ne!(o["state"], "cancelled");
    // What people type is fine: new lines (CR LF from a form), tabs,
    // emoji joined by zero-width joiners.
    let (s, b) = f
        .order("fine", "第一行\r\n第二行\t👨\u{200D}👩\u{200D}👧")
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}

/// A page's form (the household page) and a roster file obey the same rule.
#[tokio::test]
async fn forms_and_roster_cells_obey_the_text_rule() {
    let f = fixture().await;
    let client = crate::ui::browser();
    let csrf = crate::ui::sign_in(&f.app, &client, "13800000008", "/household").await;
    let resp = client
        .post(format!("{}/household", f.app.base))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("name", "周父"),
            ("relation", "parent"),
            ("adcode", "320102000000"),
            ("street", "珠江路\u{0}3号"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(count(&f.app, "household_member").await, 1);

    let csv = "姓名,手机号\n\u{202E}张伟,13900000005\n李娜\u{0},13900000006\n王芳,13900000007\n";
    let resp = f
        .app
        .client
        .post(format!(
            "{}/api/v1/volunteers/import?team_id={}",
            f.app.base, f.team
        ))
        .bearer_auth(&f.coordinator.token)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let report: Value = resp.json().await.unwrap();
    assert_eq!(
        (report["created"].as_u64(), report["rejected"].as_u64()),
        (Some(1), Some(2)),
        "{report}"
    );
    for row in 0..2 {
        let e = &report["rows"][row]["errors"][0];
        assert_eq!(
            (e["field"].as_str(), e["code"].as_str()),
            (Some("name"), Some("invalid_text")),
            "{report}"
        );
    }
}

/// Uploads a roster file as the county coordinator to the fixture's team;
/// returns status and the body as text (it may not be JSON).
async fn upload_roster(f: &Fixture, content_type: &str, body: Vec<u8>) -> (StatusCode, String) {
    let resp = f
        .app
        .client
        .post(format!(
            "{}/api/v1/volunteers/import?team_id={}",
            f.app.base, f.team
        ))
        .bearer_auth(&f.coordinator.token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.text().await.unwrap())
}

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// A real workbook (header and one row whose gender cell is `MARKER`),
/// with `MARKER` in its shared strings then replaced by `cell`: a small
/// file whose one cell unpacks to `cell.len()` bytes, as a zip bomb does.
fn workbook_with_cell(cell: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in ["姓名", "手机号", "性别"].iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    sheet.write_string(1, 0, "张伟").unwrap();
    sheet.write_string(1, 1, "13900000009").unwrap();
    sheet.write_string(1, 2, "MARKER").unwrap();
    let plain = book.save_to_buffer().unwrap();
    let mut from = zip::ZipArchive::new(std::io::Cursor::new(plain)).unwrap();
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    for i in 0..from.len() {
        let mut part = from.by_index(i).unwrap();
        let name = part.name().unwrap().to_string();
        let mut data = Vec::new();
        part.read_to_end(&mut data).unwrap();
        if name == "xl/sharedStrings.xml" {
            data = String::from_utf8(data)
                .unwrap()
                .replace("MARKER", cell)
                .into_bytes();
        }
        out.start_file(name, options).unwrap();
        out.write_all(&data).unwrap();
    }
    out.finish().unwrap().into_inner()
}

/// A workbook that unpacks to far more than any roster (one 40 MiB cell
/// in a 40 KiB file) is refused with 413 before it is parsed, and the
/// answer does not echo the cell; a cell over 1,000 characters is refused
/// as a whole-file error quoting a few characters; and a bad cell's row
/// error quotes at most a short prefix.
#[tokio::test]
async fn roster_zip_bombs_and_giant_cells_are_refused_without_echo() {
    let f = fixture().await;
    let bomb = workbook_with_cell(&"9".repeat(40 * 1024 * 1024));
    assert!(
        bomb.len() < 200 * 1024,
        "the file itself is small: {}",
        bomb.len()
    );
    let (status, body) = upload_roster(&f, XLSX, bomb).await;
    assert!(
        body.len() < 2048,
        "the answer is short: {} bytes",
        body.len()
    );
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (body["code"].as_str(), body["field"].as_str()),
        (Some("workbook_too_large"), Some("file"))
    );

    // Under the unpacked bound but over the cell bound, in either format.
    let long = "男".repeat(5_000);
    let csv = format!("姓名,手机号,性别\n张伟,13900000009,{long}\n");
    for (content_type, file) in [
        ("text/csv", csv.into_bytes()),
        (XLSX, workbook_with_cell(&long)),
    ] {
        let (status, body) = upload_roster(&f, content_type, file).await;
        assert!(body.len() < 1024, "{content_type}: {} bytes", body.len());
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["code"], "cell_too_long", "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("row 2"),
            "{body}"
        );
    }

    // A bad cell within bounds: its error quotes a short prefix.
    let csv = format!("姓名,手机号,性别\n张伟,13900000009,{}\n", "x".repeat(900));
    let (status, body) = upload_roster(&f, "text/csv", csv.into_bytes()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    let error = &report["rows"][0]["errors"][0];
    assert_eq!(error["code"], "invalid_gender", "{report}");
    assert!(
        error["message"].as_str().unwrap().chars().count() < 200,
        "{error}"
    );
    assert_eq!(count(&f.app, "volunteer").await, 1, "only the fixture's");
}

/// Every answer (page, API, error, asset) carries the security headers;
/// answers with personal data are `no-store`; HSTS only with
/// `secure_cookies`; and no page has an inline script or event handler,
/// which the CSP would block.
#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let f = fixture().await;
    let client = crate::ui::browser();
    crate::ui::sign_in(&f.app, &client, "13800000008", "/orders").await;
    let get = |path: &'static str, token: Option<&str>| {
        let mut req = client.get(format!("{}{path}", f.app.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let mut pages = Vec::new();
    for (path, token, cache) in [
        ("/login", None, "no-store"),
        ("/orders", None, "no-store"),
        ("/household", None, "no-store"),
        (
            "/api/v1/household",
            Some(f.requester.token.as_str()),
            "no-store",
        ),
        (
            "/api/v1/orders",
            Some(f.coordinator.token.as_str()),
            "no-store",
        ),
        ("/api/v1/no-such-thing", None, "no-store"),
        ("/assets/app.js", None, "public, max-age=3600"),
    ] {
        let resp = get(path, token).await.unwrap();
        let h = resp.headers().clone();
        let header = |name: &str| {
            h.get(name)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default()
        };
        let csp = header("content-security-policy");
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
            "{path}: {csp}"
        );
        assert!(!csp.contains("unsafe-eval"), "{path}: {csp}");
        assert!(
            !csp.replace("style-src-attr 'unsafe-inline'", "")
                .contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(header("cache-control"), cache, "{path}");
        assert_eq!(
            header("strict-transport-security"),
            "",
            "{path}: no HSTS over http"
        );
        if header("content-type").starts_with("text/html") {
            pages.push((path, resp.text().await.unwrap()));
        }
    }
    assert_eq!(pages.len(), 3);
    for (path, html) in pages {
        for tag in html.split("<script").skip(1) {
            let open = &tag[..tag.find('>').unwrap()];
            assert!(open.contains("src="), "{path}: inline script {open}");
        }
        let lower = html.to_lowercase();
        for handler in [
            " onclick=",
            " onload=",
            " onsubmit=",
            " onchange=",
            "javascript:",
        ] {
            assert!(!lower.contains(handler), "{path}: {handler}");
        }
    }

    // Served over HTTPS (secure cookies on): HSTS too.
    let config = homefront_server::Config {
        secure_cookies: true,
        ..homefront_server::Config::default()
    };
    let app = TestApp::spawn_with(config).await;
    let resp = app
        .client
        .get(format!("{}/login", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
}

/// A sign-in posted from another site (login CSRF) is refused and sets no
/// cookie, by the page's form and by the JSON API; the site's own form,
/// a typed address and a client that is not a browser still sign in.
#[tokio::test]
async fn a_sign_in_posted_from_another_site_is_refused() {
    let f = fixture().await;
    let form = [
        ("phone", "13800000008"),
        ("password", crate::helpers::PASSWORD),
    ];
    let json = json!({"phone": "13800000008", "password": crate::helpers::PASSWORD});
    let host = f.app.base.trim_start_matches("http://").to_string();
    let own = f.app.base.clone();
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, bool);
    let cases: [Case; 6] = [
        (
            "cross-site fetch",
            vec![("sec-fetch-site", "cross-site".into())],
            false,
        ),
        (
            "same-site (a sibling subdomain)",
            vec![("sec-fetch-site", "same-site".into())],
            false,
        ),
        (
            "foreign Origin, no Sec-Fetch-Site",
            vec![("origin", "https://evil.example".into())],
            false,
        ),
        ("opaque Origin", vec![("origin", "null".into())], false),
        (
            "own page",
            vec![("sec-fetch-site", "same-origin".into()), ("origin", own)],
            true,
        ),
        (
            "own Origin, no Sec-Fetch-Site",
            vec![("origin", format!("http://{host}"))],
            true,
        ),
    ];
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (what, headers, allowed) in cases {
        let mut page = client.post(format!("{}/login", f.app.base)).form(&form);
        let mut api = client
            .post(format!("{}/api/v1/auth/login", f.app.base))
            .json(&json);
        for (k, v) in &headers {
            page = page.header(*k, v.as_str());
            api = api.header(*k, v.as_str());
        }
        for (how, resp) in [
            ("form", page.send().await.unwrap()),
            ("api", api.send().await.unwrap()),
        ] {
            let cookie = resp.headers().get("set-cookie").is_some();
            let status = resp.status();
            if allowed {
                assert!(
                    status.is_success() || status == StatusCode::SEE_OTHER,
                    "{what} {how}: {status}"
                );
                assert!(cookie, "{what} {how}");
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{what} {how}");
                assert!(!cookie, "{what} {how}: no session");
            }
        }
    }
    // No browser headers at all (curl, an app): signs in.
    f.app.login("13800000008").await;
}

/// Opens `path` as a server-sent-event stream with `session` and reads up
/// to its first event.
async fn open_stream(app: &TestApp, session: &Session, path: &str) -> reqwest::Response {
    let mut resp = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(&session.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), resp.chunk())
        .await
        .expect("a first event")
        .unwrap()
        .expect("the stream is open");
    assert!(
        String::from_utf8_lossy(&first).contains("event: "),
        "{first:?}"
    );
    resp
}

/// Whether the stream ends (rather than staying open) once what ended its
/// session has been answered. The ending is announced, not waited for; the
/// timeout only keeps a failing test from hanging.
async fn stream_ends(mut resp: reqwest::Response) -> bool {
    let read_to_end = async { while let Ok(Some(_)) = resp.chunk().await {} };
    tokio::time::timeout(std::time::Duration::from_secs(10), read_to_end)
        .await
        .is_ok()
}

/// Open event streams end with their session: at sign-out, at a password
/// reset, when a role is revoked, when the volunteer is suspended (who
/// then cannot open another); a stream of another session goes on.
#[tokio::test]
async fn live_streams_end_with_the_session_or_a_suspension() {
    let f = fixture().await;
    // Sign-out: this session's streams end, those of another session of
    // the same account do not.
    let other = f.app.login("13800000008").await;
    let mine = open_stream(&f.app, &f.requester, "/api/v1/events").await;
    let theirs = open_stream(&f.app, &other, "/api/v1/events").await;
    let (s, _) = f
        .app
        .post(&f.requester, "/api/v1/auth/logout", json!({}))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(
        stream_ends(mine).await,
        "the signed-out session's stream ended"
    );
    // The other session's stream still carries events.
    let mut theirs = theirs;
    let (s, _) = f.order_as(&other, "live", "").await;
    assert_eq!(s, StatusCode::CREATED);
    let next = tokio::time::timeout(std::time::Duration::from_secs(10), theirs.chunk())
        .await
        .expect("an event")
        .unwrap();
    assert!(next.is_some(), "the other session's stream is open");

    // A password reset by the coordinator ends the volunteer's streams.
    let stream = open_stream(&f.app, &f.volunteer, "/api/v1/events").await;
    let (s, _) = f
        .app
        .post(
            &f.coordinator,
            &format!("/api/v1/users/{}/password", f.volunteer.user_id),
            json!({"password": "a brand new password"}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(stream_ends(stream).await, "reset");

    // Suspension: the API stream and the volunteer page's stream end, and
    // a new one is refused.
    let volunteer = login_with(&f.app, "13900000001", "a brand new password").await;
    let api = open_stream(&f.app, &volunteer, "/api/v1/events").await;
    let page = open_stream(&f.app, &volunteer, "/live/offers").await;
    let path = format!("/api/v1/volunteers/{}/vetting", volunteer.user_id);
    for step in [
        "reviewed",
        "interviewed",
        "trained",
        "exam_passed",
        "agreement_signed",
        "insured",
        "active",
        "suspended",
    ] {
        let (s, b) = f
            .app
            .post(&f.coordinator, &path, json!({"target_state": step}))
            .await;
        assert_eq!(s, StatusCode::OK, "{step}: {b}");
    }
    assert!(stream_ends(api).await, "suspended: API stream");
    assert!(stream_ends(page).await, "suspended: page stream");
    let (s, b) = f.app.get(&volunteer, "/api/v1/events").await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("account_suspended"))
    );

    // A revoked role: the coordinator's board stream ends.
    let board = open_stream(&f.app, &f.coordinator, "/live/board").await;
    let (_, me) = f.app.get(&f.coordinator, "/api/v1/auth/me").await;
    let grant = me["grants"][0]["id"].as_i64().unwrap();
    let (s, _) = f
        .app
        .call(
            Some(&f.admin),
            Method::DELETE,
            &format!("/api/v1/users/{}/grants/{grant}", f.coordinator.user_id),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(stream_ends(board).await, "revoked: board stream");

    // PostgreSQL, several instances: a stream on one ends when the
    // session ends through another (announced with NOTIFY).
    if crate::helpers::use_postgres() {
        let peer = f.app.peer().await;
        let stream = open_stream(&peer, &other, "/api/v1/events").await;
        let (s, _) = f
            .app
            .post(&other, "/api/v1/auth/logout-all", json!({}))
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        assert!(stream_ends(stream).await, "ended through another instance");
    }
}

/// Weak passwords are refused wherever a password is set (a new account,
/// a volunteer registration, a reset, one's own change), naming the field;
/// a password is kept exactly as typed, spaces included.
#[tokio::test]
async fn weak_passwords_are_refused_and_none_is_trimmed() {
    let f = fixture().await;
    let cases = [
        ("12345678", "weak_password"),
        ("password", "weak_password"),
        ("        ", "weak_password"),
        ("1234567890", "common_password"),
        ("password123", "common_password"),
        ("qwertyuiop", "common_password"),
        ("          ", "common_password"),
        // The account's own phone number.
        ("13900000042", "common_password"),
    ];
    for (pw, code) in cases {
        let (s, b) = f
            .app
            .post(
                &f.coordinator,
                "/api/v1/users",
                json!({"phone": "13900000042", "display_name": "新志愿者", "password": pw,
                       "grants": [{"role": "volunteer", "org_unit_id": f.team}]}),
            )
            .await;
        assert_eq!(
            (s, b["code"].as_str(), b["field"].as_str()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(code),
                Some("password")
            ),
            "{pw:?}: {b}"
        );
        if pw == "13900000042" {
            // Personal to that account only.
            continue;
        }
        let (s, b) = f
            .app
            .post(
                &f.coordinator,
                "/api/v1/volunteers",
                json!({"phone": "13900000043", "display_name": "x", "team_id": f.team, "password": pw}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "register {pw:?}: {b}");
        let (s, b) = f
            .app
            .post(
                &f.coordinator,
                &format!("/api/v1/users/{}/password", f.volunteer.user_id),
                json!({"password": pw}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "reset {pw:?}: {b}");
        let (s, b) = f
            .app
            .post(
                &f.requester,
                "/api/v1/auth/password",
                json!({"current_password": crate::helpers::PASSWORD, "new_password": pw}),
            )
            .await;
        assert_eq!(
            (s, b["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("new_password")),
            "change {pw:?}: {b}"
        );
    }
    assert_eq!(count(&f.app, "app_user").await, 4, "no account was created");

    // Spaces are part of the password: the trimmed one does not sign in.
    let padded = "  night shift at Zhongda  ";
    let (s, b) = f
        .app
        .post(
            &f.requester,
            "/api/v1/auth/password",
            json!({"current_password": crate::helpers::PASSWORD, "new_password": padded}),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let app = &f.app;
    let status = |pw: &'static str| async move {
        app.call(
            None,
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"phone": "13800000008", "password": pw})),
        )
        .await
        .0
    };
    assert_eq!(status(padded.trim()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(padded).await, StatusCode::OK);
}
