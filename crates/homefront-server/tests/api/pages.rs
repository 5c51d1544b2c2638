//! The coordinator, volunteer and admin pages over real HTTP, signed in by
//! form with the session cookie: the dashboard shows the same figures as
//! the summary API and stays in the viewer's subtree; bulk vetting moves,
//! roster upload and the duty switch change what the API reports; admin
//! forms refuse bad input naming the field and lose nothing.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, Session, T0, TestApp};
use crate::ui::{browser, sign_in};

struct World {
    app: TestApp,
    nanjing: Session,
    team: i64,
    xuanwu: i64,
    suzhou: i64,
}

/// Jiangsu, a coordinator of Nanjing (13800000002), one of Suzhou
/// (13800000005), a team under Xuanwu, and a requester (13800000008)
/// with two orders placed in Xuanwu.
async fn world() -> World {
    let w = crate::helpers::World::jiangsu()
        .county("320102")
        .team("玄武区志愿服务队")
        .coordinator_of("320100", "13800000002")
        .coordinator_of("320500", "13800000005")
        .requester("13800000008")
        .member(json!({"name": "王芳", "relation": "self", "adcode": "320102", "street": "中山东路1号"}))
        .build()
        .await;
    let (app, requester) = (&w.app, w.session("13800000008"));
    let item = app.store.service_items(false).await.unwrap()[0].id;
    for key in ["k-1", "k-2"] {
        let resp = app
            .client
            .post(format!("{}/api/v1/orders", app.base))
            .bearer_auth(&requester.token)
            .header("Idempotency-Key", key)
            .json(&json!({"item_id": item, "member_id": w.members[0],
                "window_start": "2020-02-12T18:00", "window_end": "2020-02-12T20:00"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    World {
        nanjing: w.session("13800000002"),
        suzhou: w.app.division("320500").await,
        team: w.team,
        xuanwu: w.county,
        app: w.app,
    }
}

async fn page(client: &reqwest::Client, app: &TestApp, path: &str) -> (StatusCode, String) {
    let resp = client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

async fn post_form(
    client: &reqwest::Client,
    app: &TestApp,
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String) {
    let resp = client
        .post(format!("{}{path}", app.base))
        .form(form)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

/// The text of the tile whose label is `label`.
fn tile<'a>(html: &'a str, label: &str) -> &'a str {
    let end = html
        .find(&format!("<span class=\"tile-label\">{label}</span>"))
        .unwrap_or_else(|| panic!("tile {label}"));
    let start = html[..end].rfind("<span class=\"tile-value\">").unwrap() + 25;
    html[start..end].trim_end_matches("</span>")
}

#[tokio::test]
async fn pages_dashboard_shows_the_summary_figures_charts_and_map_within_scope() {
    let w = world().await;
    let (status, summary) = w
        .app
        .get(
            &w.nanjing,
            &format!(
                "/api/v1/reports/summary?org_unit={}&from=2020-01-30&to=2020-02-12",
                w.app.division("320100").await
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["orders"]["total"], 2);

    let client = browser();
    sign_in(&w.app, &client, "13800000002", "/board").await;
    // Default: the coordinator's own area and the last 14 days (T0's day
    // included), the same period as the API call above.
    let (status, html) = page(&client, &w.app, "/board/dashboard").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        tile(&html, "订单数"),
        summary["orders"]["total"].to_string()
    );
    assert_eq!(
        tile(&html, "已完成"),
        summary["orders"]["completed"].to_string()
    );
    assert!(html.contains("value=\"2020-01-30\"") && html.contains("value=\"2020-02-12\""));
    // Charts with data and the map are images with a name and a data
    // table; nothing accepted and no hours yet: those say so instead.
    assert_eq!(
        html.matches("<svg class=\"chart\" role=\"img\"").count(),
        2,
        "orders per day and the map"
    );
    assert_eq!(html.matches("该时间段没有数据。").count(), 3);
    assert!(html.contains("aria-label=\"每日订单（按状态）\""));
    assert!(html.contains("aria-label=\"各行政区待办订单与在岗志愿者\""));
    // The daily table has the two orders on T0's day, still submitted.
    assert!(
        html.contains("<th scope=\"row\" translate=\"no\">2020-02-12</th><td>2</td>"),
        "{html}"
    );
    // The map names the division with open orders; its table counts them.
    assert!(html.contains("<th scope=\"row\" translate=\"no\">玄武区</th><td>2</td><td>0</td>"));

    // The export buttons carry the dashboard's filter: the file has the
    // orders the tiles count.
    let href = html
        .split("href=\"/api/v1/exports/orders?")
        .nth(1)
        .and_then(|h| h.split('"').next())
        .unwrap()
        .replace("&amp;", "&")
        .replace("&#38;", "&");
    let resp = client
        .get(format!("{}/api/v1/exports/orders?{href}", w.app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{href}");
    assert_eq!(resp.headers()["x-row-count"], "2");

    // English, by cookie.
    let (_, en) = page(&client, &w.app, "/lang/en?next=/board/dashboard").await;
    assert!(en.is_empty());
    let (_, html) = page(&client, &w.app, "/board/dashboard").await;
    assert!(html.contains("Orders per day by state") && !html.contains("每日订单"));

    // Another city's unit, by editing the URL: the same 404 as a missing one.
    let (status, _) = page(
        &client,
        &w.app,
        &format!("/board/dashboard?org_unit={}", w.suzhou),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The Suzhou coordinator's dashboard has none of Nanjing's orders.
    let other = browser();
    sign_in(&w.app, &other, "13800000005", "/board").await;
    let (status, html) = page(&other, &w.app, "/board/dashboard").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tile(&html, "订单数"), "0");
    assert!(!html.contains("玄武区"));
    // A bad period names the fix.
    let (status, html) = page(
        &client,
        &w.app,
        "/board/dashboard?from=2020-02-12&to=2020-01-01",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html.contains("To: The period must end after it starts"),
        "{html}"
    );
    // ...above the filter form, kept as typed, with no figures.
    assert!(html.contains("value=\"2020-02-12\"") && !html.contains("id=\"figures\""));
}

#[tokio::test]
async fn pages_vetting_board_moves_ticked_volunteers_and_reports_each() {
    let w = world().await;
    let mut ids = Vec::new();
    for phone in ["13900000001", "13900000002"] {
        let (status, body) = w
            .app
            .post(
                &w.nanjing,
                "/api/v1/volunteers",
                json!({"phone": phone, "display_name": format!("志愿者{phone}"), "password": PASSWORD,
                       "team_id": w.team}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["id"].as_i64().unwrap().to_string());
    }
    let client = browser();
    let csrf = sign_in(&w.app, &client, "13800000002", "/board/volunteers").await;
    let (_, html) = page(&client, &w.app, "/board/volunteers").await;
    assert!(html.contains("志愿者13900000001") && html.contains("data-state=\"applied\""));
    // Both move one step; a repeated id is reported, not moved twice.
    let (status, html) = post_form(
        &client,
        &w.app,
        "/board/volunteers",
        &[
            ("_csrf", &csrf),
            ("volunteer", &ids[0]),
            ("volunteer", &ids[1]),
            ("volunteer", &ids[1]),
            ("target_state", "reviewed"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("2 人已调整为“已初审”，1 人未调整。"),
        "{html}"
    );
    for id in &ids {
        let (_, v) = w
            .app
            .get(&w.nanjing, &format!("/api/v1/volunteers/{id}"))
            .await;
        assert_eq!(v["vetting_state"], "reviewed");
    }
    // Skipping steps is refused per volunteer, with the reason.
    let (_, html) = post_form(
        &client,
        &w.app,
        "/board/volunteers",
        &[
            ("_csrf", &csrf),
            ("volunteer", &ids[0]),
            ("target_state", "active"),
        ],
    )
    .await;
    assert!(
        html.contains("0 人已调整") && html.contains("逐步推进"),
        "{html}"
    );
    let (_, v) = w
        .app
        .get(&w.nanjing, &format!("/api/v1/volunteers/{}", ids[0]))
        .await;
    assert_eq!(v["vetting_state"], "reviewed");
    // Nothing ticked: a clear error, nothing changes.
    let (status, html) = post_form(
        &client,
        &w.app,
        "/board/volunteers",
        &[("_csrf", &csrf), ("target_state", "interviewed")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("请先勾选至少一名志愿者"));
    // The Suzhou coordinator sees neither volunteer and cannot move them.
    let other = browser();
    let csrf = sign_in(&w.app, &other, "13800000005", "/board/volunteers").await;
    let (_, html) = page(&other, &w.app, "/board/volunteers").await;
    assert!(!html.contains("志愿者13900000001"));
    let (_, html) = post_form(
        &other,
        &w.app,
        "/board/volunteers",
        &[
            ("_csrf", &csrf),
            ("volunteer", &ids[0]),
            ("target_state", "interviewed"),
        ],
    )
    .await;
    assert!(html.contains("0 人已调整"), "{html}");
    let (_, v) = w
        .app
        .get(&w.nanjing, &format!("/api/v1/volunteers/{}", ids[0]))
        .await;
    assert_eq!(v["vetting_state"], "reviewed");
}

#[tokio::test]
async fn pages_roster_upload_reports_every_row_and_reimports_nothing_twice() {
    let w = world().await;
    let client = browser();
    let csrf = sign_in(&w.app, &client, "13800000002", "/board/import").await;
    let csv = "姓名,手机号,区县代码\n李明,13900000011,320102\n赵丽,1390000,320102\n";
    let upload = |csrf: String| {
        let form = reqwest::multipart::Form::new()
            .text("_csrf", csrf)
            .text("team_id", w.team.to_string())
            .part(
                "file",
                reqwest::multipart::Part::bytes(csv.as_bytes().to_vec())
                    .file_name("roster.csv")
                    .mime_str("text/csv")
                    .unwrap(),
            );
        let client = client.clone();
        let url = format!("{}/board/import", w.app.base);
        async move {
            let resp = client.post(url).multipart(form).send().await.unwrap();
            (resp.status(), resp.text().await.unwrap())
        }
    };
    let (status, html) = upload(csrf.clone()).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("id=\"created-count\">1<") && html.contains("id=\"rejected-count\">1<"));
    assert!(
        html.contains("<tr class=\"rejected\"><th scope=\"row\">3</th>"),
        "{html}"
    );
    assert!(
        html.contains("手机号: "),
        "the problem names the column: {html}"
    );
    let (_, list) = w.app.get(&w.nanjing, "/api/v1/volunteers").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    // The same file again (a double submit): unchanged, no duplicate.
    let (_, html) = upload(csrf.clone()).await;
    assert!(html.contains("id=\"created-count\">0<"), "{html}");
    let (_, list) = w.app.get(&w.nanjing, "/api/v1/volunteers").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    // No file, or a wrong token: refused.
    let resp = client
        .post(format!("{}/board/import", w.app.base))
        .multipart(reqwest::multipart::Form::new().text("_csrf", csrf))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp.text().await.unwrap().contains("请先选择名单文件"));
    let (status, _) = upload("wrong".into()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn pages_duty_switch_hours_and_pairings_for_the_volunteer() {
    let w = world().await;
    let (status, body) = w
        .app
        .post(
            &w.nanjing,
            "/api/v1/volunteers",
            json!({"phone": "13900000021", "display_name": "周强", "password": PASSWORD, "team_id": w.team}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_i64().unwrap();
    let client = browser();
    let csrf = sign_in(&w.app, &client, "13900000021", "/volunteer").await;
    // Not yet vetted: no switch, and a forged switch-on is refused.
    let (_, html) = page(&client, &w.app, "/volunteer").await;
    assert!(html.contains("审核全部完成后即可上岗") && !html.contains("id=\"duty-toggle\""));
    let (status, _) = post_form(
        &client,
        &w.app,
        "/volunteer/duty",
        &[("_csrf", &csrf), ("on_duty", "1")],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    for step in [
        "reviewed",
        "interviewed",
        "trained",
        "exam_passed",
        "agreement_signed",
        "insured",
        "active",
    ] {
        let (status, body) = w
            .app
            .post(
                &w.nanjing,
                &format!("/api/v1/volunteers/{id}/vetting"),
                json!({"target_state": step}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{step}: {body}");
    }
    // One tap on; a double tap keeps the first since-time.
    for _ in 0..2 {
        let (status, _) = post_form(
            &client,
            &w.app,
            "/volunteer/duty",
            &[("_csrf", &csrf), ("on_duty", "1")],
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
    }
    let (_, v) = w
        .app
        .get(&w.nanjing, &format!("/api/v1/volunteers/{id}"))
        .await;
    assert_eq!(
        (v["on_duty"].clone(), v["on_duty_since"].clone()),
        (json!(true), json!(T0.epoch_ms()))
    );
    let (_, html) = page(&client, &w.app, "/volunteer").await;
    assert!(html.contains("data-on-duty=\"true\"") && html.contains("结束值班"));
    let (status, html) = page(&client, &w.app, "/board/dashboard").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a volunteer has no dashboard"
    );
    assert!(html.contains("您的角色不能进行这项操作"));
    // My hours and my pairings: empty states, in the volunteer's language.
    let (status, html) = page(&client, &w.app, "/volunteer/hours").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("暂无服务时长"));
    let (_, html) = page(&client, &w.app, "/volunteer/pairings").await;
    assert!(html.contains("你目前没有结对家庭"));
    // Off again.
    post_form(
        &client,
        &w.app,
        "/volunteer/duty",
        &[("_csrf", &csrf), ("on_duty", "0")],
    )
    .await;
    let (_, v) = w
        .app
        .get(&w.nanjing, &format!("/api/v1/volunteers/{id}"))
        .await;
    assert_eq!(v["on_duty"], false);
}

#[tokio::test]
async fn pages_admin_forms_name_the_bad_field_and_lose_nothing() {
    let w = world().await;
    let client = browser();
    let csrf = sign_in(&w.app, &client, "13800000002", "/admin/users").await;
    let users_before = w.app.get(&w.nanjing, "/api/v1/users").await.1;
    let new_user = |phone: &'static str| {
        vec![
            ("_csrf", csrf.clone()),
            ("phone", phone.to_string()),
            ("display_name", "孙悦".to_string()),
            ("password", PASSWORD.to_string()),
            ("role", "volunteer".to_string()),
            ("org_unit", w.team.to_string()),
        ]
    };
    let as_refs = |f: &Vec<(&'static str, String)>| -> Vec<(&'static str, String)> { f.clone() };
    let resp = client
        .post(format!("{}/admin/users", w.app.base))
        .form(&as_refs(&new_user("1390")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("手机号: 手机号不正确") || html.contains("手机号:"),
        "{html}"
    );
    assert_eq!(w.app.get(&w.nanjing, "/api/v1/users").await.1, users_before);
    // A good one, then the same again (a double click): one account.
    for expect in [StatusCode::SEE_OTHER, StatusCode::CONFLICT] {
        let resp = client
            .post(format!("{}/admin/users", w.app.base))
            .form(&new_user("13900000031"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), expect);
    }
    let (_, html) = page(&client, &w.app, "/admin/users").await;
    assert_eq!(html.matches("139 0000 0031").count(), 1, "{html}");
    // No role picked: refused, naming the field.
    let mut no_role = new_user("13900000032");
    no_role[4].1 = String::new();
    let resp = client
        .post(format!("{}/admin/users", w.app.base))
        .form(&no_role)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("角色: 请从列表中选择角色。")
    );
    // A volunteer made here gets a volunteer profile on the team (so the
    // volunteer pages and the vetting board know them).
    let resp = client
        .post(format!("{}/admin/users", w.app.base))
        .form(&new_user("13900000033"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, list) = w.app.get(&w.nanjing, "/api/v1/volunteers").await;
    let vol = list
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["phone"] == "+8613900000033")
        .expect("a volunteer profile")
        .clone();
    assert_eq!(vol["team"]["id"], w.team);
    // A password reset from the account's page; the new one signs in.
    let (status, _) = post_form(
        &client,
        &w.app,
        &format!("/admin/users/{}/password", vol["id"]),
        &[("_csrf", &csrf), ("password", "a-new-password-9")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let resp = w
        .app
        .client
        .post(format!("{}/api/v1/auth/login", w.app.base))
        .json(&json!({"phone": "13900000033", "password": "a-new-password-9"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // A team under Xuanwu.
    let (status, _) = post_form(
        &client,
        &w.app,
        "/admin/units",
        &[
            ("_csrf", &csrf),
            ("kind", "team"),
            ("name", "玄武区青年突击队"),
            ("parent", &w.xuanwu.to_string()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, html) = page(&client, &w.app, "/admin/units").await;
    assert!(html.contains("玄武区青年突击队"));
    // Not under another city's unit: refused, nothing created.
    let (status, html) = post_form(
        &client,
        &w.app,
        "/admin/units",
        &[
            ("_csrf", &csrf),
            ("kind", "team"),
            ("name", "越权队"),
            ("parent", &w.suzhou.to_string()),
        ],
    )
    .await;
    assert!(status.is_client_error(), "{status}");
    assert!(
        html.contains("上级单位"),
        "the error names the field: {html}"
    );
    let (_, html) = page(&client, &w.app, "/admin/units").await;
    assert!(!html.contains("越权队"));
    // A catalogue item with a non-number duration names the field.
    let (status, html) = post_form(
        &client,
        &w.app,
        "/admin/catalogue",
        &[
            ("_csrf", &csrf),
            ("code", "pet_care"),
            ("name_zh", "宠物照看"),
            ("name_en", "Pet care"),
            ("mode", "onsite"),
            ("lane", "standard"),
            ("default_duration_minutes", "一小时"),
            ("offer_timeout_seconds", "300"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("通常时长（分钟）: 请输入整数。"), "{html}");
    let before = w.app.store.service_items(true).await.unwrap().len();
    let nanjing = w.app.division("320100").await.to_string();
    let (status, html) = post_form(
        &client,
        &w.app,
        "/admin/catalogue",
        &[
            ("_csrf", &csrf),
            ("code", "pet_care"),
            ("name_zh", "宠物照看"),
            ("name_en", "Pet care"),
            ("mode", "onsite"),
            ("lane", "standard"),
            ("default_duration_minutes", "60"),
            ("offer_timeout_seconds", "300"),
            ("org_unit", &nanjing),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    assert_eq!(
        w.app.store.service_items(true).await.unwrap().len(),
        before + 1
    );
}

#[tokio::test]
async fn pages_inbox_lists_notices_and_marks_them_read() {
    let w = world().await;
    let nanjing = w.app.division("320100").await;
    let (status, bot) = w
        .app
        .post(
            &w.nanjing,
            &format!("/api/v1/org-units/{nanjing}/bots"),
            json!({"kind": "wecom", "name": "南京调度群", "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{bot}");
    let client = browser();
    let csrf = sign_in(&w.app, &client, "13800000002", "/inbox").await;
    let (_, html) = page(&client, &w.app, "/board/bots").await;
    assert!(html.contains("南京调度群") && html.contains("https://qyapi.weixin.qq.com"));
    assert!(!html.contains("key=k"), "the bot's key stays hidden");
    // A test message is queued (the outbox grows by one).
    let outbox = || async {
        sqlx::query_scalar::<_, i64>("select cast(count(*) as bigint) from outbox_event")
            .fetch_one(w.app.store.pool())
            .await
            .unwrap()
    };
    let before = outbox().await;
    let (status, _) = post_form(
        &client,
        &w.app,
        &format!("/board/bots/{nanjing}/{}/test", bot["id"]),
        &[("_csrf", &csrf)],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(outbox().await, before + 1);
    // A bad address names the field.
    let (status, html) = post_form(
        &client,
        &w.app,
        "/board/bots",
        &[
            ("_csrf", &csrf),
            ("org_unit", &nanjing.to_string()),
            ("kind", "dingtalk"),
            ("name", "x"),
            ("url", "not a url"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("Webhook 地址:"), "{html}");
    // The inbox page and read-all.
    let (status, html) = page(&client, &w.app, "/inbox").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("通知设置"));
    let (status, _) = post_form(&client, &w.app, "/inbox/read-all", &[("_csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, inbox) = w.app.get(&w.nanjing, "/api/v1/inbox").await;
    assert_eq!(inbox["unread"], 0);
}

/// The inbox page shows each notice's time in the viewer's unit's time
/// zone: a coordinator of a unit in Asia/Yangon (UTC+06:30) reads Yangon
/// time, not Shanghai's (UTC+08:00).
#[tokio::test]
async fn pages_inbox_times_are_in_the_units_time_zone() {
    let w = world().await;
    let nanjing = w.app.division("320100").await;
    let (status, body) = w
        .app
        .call(
            Some(&w.nanjing),
            reqwest::Method::PATCH,
            &format!("/api/v1/org-units/{nanjing}"),
            Some(json!({"time_zone": "Asia/Yangon"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // An escalation puts a notice in the coordinator's inbox.
    let order = w
        .app
        .store
        .orders(&homefront_store::orders::OrderFilter::default())
        .await
        .unwrap()[0]
        .id;
    assert!(
        w.app
            .store
            .escalate_order(order, 0, 2, "city queue", T0.epoch_ms() + 1)
            .await
            .unwrap()
    );
    homefront_server::notify::deliver_pass(&w.app.state())
        .await
        .unwrap();
    let (_, inbox) = w.app.get(&w.nanjing, "/api/v1/inbox").await;
    let at = inbox["items"][0]["created_at"]
        .as_i64()
        .unwrap_or_else(|| panic!("a notice: {inbox}"));
    let shown = |tz: chrono_tz::Tz| {
        chrono::DateTime::from_timestamp_millis(at)
            .unwrap()
            .with_timezone(&tz)
            .format("%Y-%m-%d %H:%M")
            .to_string()
    };
    let client = browser();
    sign_in(&w.app, &client, "13800000002", "/inbox").await;
    let (status, html) = page(&client, &w.app, "/inbox").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&shown(chrono_tz::Asia::Yangon)), "{html}");
    assert!(!html.contains(&shown(chrono_tz::Asia::Shanghai)));
}

#[tokio::test]
async fn pages_sign_in_returns_to_the_page_asked_for() {
    let w = world().await;
    let client = browser();
    let resp = client
        .get(format!("{}/board/dashboard?from=2020-02-01", w.app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let to = resp.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(to, "/login?next=/board/dashboard%3Ffrom%3D2020-02-01");
    let (_, html) = page(&client, &w.app, &to).await;
    assert!(html.contains("name=\"next\" value=\"/board/dashboard?from=2020-02-01\""));
    let resp = client
        .post(format!("{}/login", w.app.base))
        .form(&[
            ("phone", "13800000002"),
            ("password", PASSWORD),
            ("next", "/board/dashboard?from=2020-02-01"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["location"],
        "/board/dashboard?from=2020-02-01"
    );
    // Never elsewhere.
    let other = browser();
    let resp = other
        .post(format!("{}/login", w.app.base))
        .form(&[
            ("phone", "13800000002"),
            ("password", PASSWORD),
            ("next", "//evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["location"], "/");
}

#[tokio::test]
async fn a_bad_query_string_answers_in_the_error_shape_naming_the_parameter() {
    let w = world().await;
    let unit = w.app.division("320100").await;
    let (status, err) = w
        .app
        .get(
            &w.nanjing,
            &format!("/api/v1/reports/summary?org_unit={unit}"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(
        (err["code"].as_str(), err["field"].as_str()),
        (Some("invalid_query"), Some("from"))
    );
    let (status, err) = w.app.get(&w.nanjing, "/api/v1/orders?from=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["field"], "from");
}

#[tokio::test]
async fn an_order_years_ahead_is_refused_naming_the_start() {
    let w = world().await;
    let requester = w.app.login("13800000008").await;
    let (_, household) = w.app.get(&requester, "/api/v1/household").await;
    let member = household["members"][0]["id"].clone();
    let item = w.app.store.service_items(false).await.unwrap()[0].id;
    let before = w.app.store.count_orders().await.unwrap();
    let resp = w
        .app
        .client
        .post(format!("{}/api/v1/orders", w.app.base))
        .bearer_auth(&requester.token)
        .header("Idempotency-Key", "far-1")
        .json(&json!({"item_id": item, "member_id": member,
            "window_start": "2025-02-12T09:00", "window_end": "2025-02-12T10:00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let err: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        (err["code"].as_str(), err["field"].as_str()),
        (Some("window_too_far"), Some("window_start"))
    );
    assert_eq!(w.app.store.count_orders().await.unwrap(), before);
}

#[tokio::test]
async fn a_coordinator_cannot_make_an_account_outside_their_area_a_coordinator() {
    let w = world().await;
    // The Suzhou coordinator's account is outside Nanjing: no coordinator
    // grant on Nanjing for it, through the API or the page.
    let suzhou_user = w
        .app
        .store
        .user_by_phone(&homefront_domain::PhoneNumber::parse("13800000005").unwrap())
        .await
        .unwrap()
        .unwrap()
        .id;
    let nanjing = w.app.division("320100").await;
    let (status, _) = w
        .app
        .post(
            &w.nanjing,
            &format!("/api/v1/users/{suzhou_user}/grants"),
            json!({"role": "coordinator", "org_unit_id": nanjing}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let client = browser();
    let csrf = sign_in(&w.app, &client, "13800000002", "/admin/users").await;
    let (status, _) = post_form(
        &client,
        &w.app,
        &format!("/admin/users/{suzhou_user}/grants"),
        &[
            ("_csrf", &csrf),
            ("role", "coordinator"),
            ("org_unit", &nanjing.to_string()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let grants = w.app.store.grants(suzhou_user).await.unwrap();
    assert_eq!(grants.len(), 1, "only the Suzhou grant: {grants:?}");
    // Nor a volunteer role: on a team of Nanjing's, the account would be
    // visible to Nanjing's coordinator, a step towards resetting it.
    let (status, body) = w
        .app
        .post(
            &w.nanjing,
            &format!("/api/v1/users/{suzhou_user}/grants"),
            json!({"role": "volunteer", "org_unit_id": w.team}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(w.app.store.grants(suzhou_user).await.unwrap().len(), 1);
}

/// The language switch: a GET (a link, perhaps on another site) changes
/// only this browser's cookie; the signed-in switch posts with the
/// session's CSRF token and becomes the account's language for notices.
#[tokio::test]
async fn the_language_switch_posts_to_become_the_accounts_language() {
    let w = world().await;
    let client = browser();
    let csrf = sign_in(&w.app, &client, "13800000002", "/inbox").await;
    let locale = || async {
        w.app
            .store
            .user_by_phone(&homefront_domain::PhoneNumber::parse("13800000002").unwrap())
            .await
            .unwrap()
            .unwrap()
            .locale
            .as_str()
    };
    // A GET: the pages turn English, the account does not.
    let resp = client
        .get(format!("{}/lang/en?next=/inbox", w.app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(
        resp.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("lang=en")
    );
    assert_eq!(locale().await, "zh-CN");
    let (_, inbox) = page(&client, &w.app, "/inbox").await;
    assert!(inbox.contains("<html lang=\"en\">"));
    // The page's switch is a form that posts back with the CSRF token.
    assert!(inbox.contains("action=\"/lang/zh-CN\""), "{inbox}");
    // Without the token the post is refused and nothing changes.
    let (status, _) = post_form(&client, &w.app, "/lang/en", &[("next", "/inbox")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(locale().await, "zh-CN");
    let resp = client
        .post(format!("{}/lang/en", w.app.base))
        .form(&[("_csrf", csrf.as_str()), ("next", "/inbox")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], "/inbox");
    assert_eq!(locale().await, "en");
}

#[tokio::test]
async fn pages_a_volunteers_page_says_why_they_get_no_orders_and_records_credentials() {
    let w = world().await;
    let (status, body) = w
        .app
        .post(
            &w.nanjing,
            "/api/v1/volunteers",
            json!({"phone": "13900000041", "display_name": "陶然", "password": PASSWORD, "team_id": w.team}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_i64().unwrap();
    for step in [
        "reviewed",
        "interviewed",
        "trained",
        "exam_passed",
        "agreement_signed",
        "insured",
        "active",
    ] {
        let (status, _) = w
            .app
            .post(
                &w.nanjing,
                &format!("/api/v1/volunteers/{id}/vetting"),
                json!({"target_state": step}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let client = browser();
    let csrf = sign_in(&w.app, &client, "13800000002", "/board/volunteers").await;
    let path = format!("/board/volunteers/{id}");
    let (status, html) = page(&client, &w.app, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("data-eligible=\"false\"") && html.contains("未登记保险"),
        "{html}"
    );
    // Insurance without its insurer: refused, naming the field, nothing kept.
    let form = |kind: &'static str, extra: &[(&'static str, &'static str)]| {
        let mut f = vec![
            ("_csrf", csrf.clone()),
            ("kind", kind.to_string()),
            ("valid_from", "2020-02-01".to_string()),
            ("valid_to", "2020-12-31".to_string()),
        ];
        f.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        f
    };
    let resp = client
        .post(format!("{}{path}/credentials", w.app.base))
        .form(&form("insurance", &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp.text().await.unwrap().contains("保险公司"));
    for (kind, extra) in [
        ("training_certificate", &[][..]),
        ("service_agreement", &[][..]),
        (
            "insurance",
            &[("insurer", "中国人保"), ("policy_number", "PICC-1")][..],
        ),
    ] {
        let resp = client
            .post(format!("{}{path}/credentials", w.app.base))
            .form(&form(kind, extra))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{kind}");
    }
    let (_, html) = page(&client, &w.app, &path).await;
    assert!(html.contains("data-eligible=\"true\""), "{html}");
    // The vetting board links to the page; another city's coordinator
    // cannot open it.
    let (_, board) = page(&client, &w.app, "/board/volunteers").await;
    assert!(board.contains(&format!("href=\"/board/volunteers/{id}\"")));
    let other = browser();
    sign_in(&w.app, &other, "13800000005", "/board").await;
    let (status, _) = page(&other, &w.app, &path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn pages_board_search_finds_open_and_closed_orders_with_filters_and_counts() {
    let w = world().await;
    let client = browser();
    sign_in(&w.app, &client, "13800000002", "/board").await;
    let (_, list) = w.app.get(&w.nanjing, "/api/v1/orders").await;
    let ids: Vec<i64> = list["items"]
        .as_array()
        .or_else(|| list.as_array())
        .unwrap()
        .iter()
        .map(|o| o["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{list}");
    // By number, and by the family member's name.
    let (status, html) = page(&client, &w.app, &format!("/board?q=%23{}", ids[0])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"result-count\">1<"), "{html}");
    let (_, html) = page(&client, &w.app, "/board?q=%E7%8E%8B%E8%8A%B3").await;
    assert!(html.contains("id=\"result-count\">2<"), "{html}");
    assert!(html.contains("第 1–2 单，共 2 单"), "{html}");
    // Waiting time shows, and the filter by it.
    w.app.clock.advance_ms(45 * 60_000);
    let (_, html) = page(&client, &w.app, "/board?waiting=30").await;
    assert!(
        html.contains("id=\"result-count\">2<") && html.contains("已等待 45 分钟"),
        "{html}"
    );
    let (_, html) = page(&client, &w.app, "/board?waiting=60").await;
    assert!(html.contains("id=\"result-count\">0<"), "{html}");
    // A closed order is found among the closed ones, not the open ones.
    let (status, body) = w
        .app
        .post(
            &w.nanjing,
            &format!("/api/v1/orders/{}/cancel", ids[0]),
            json!({"reason": "重复下单"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, html) = page(&client, &w.app, "/board?state=closed").await;
    assert!(
        html.contains("id=\"result-count\">1<") && html.contains("data-state=\"cancelled\""),
        "{html}"
    );
    let (_, html) = page(&client, &w.app, "/board?state=open&lane=standard").await;
    assert!(html.contains("id=\"result-count\">1<"), "{html}");
    // Another area's coordinator finds none of them.
    let other = browser();
    sign_in(&w.app, &other, "13800000005", "/board").await;
    let (_, html) = page(&other, &w.app, "/board?q=%E7%8E%8B%E8%8A%B3").await;
    assert!(html.contains("id=\"result-count\">0<"), "{html}");
}
