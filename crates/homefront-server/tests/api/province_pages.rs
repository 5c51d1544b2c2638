//! The coordinator's people pages at a province's size: the vetting board
//! and the account list with 5,000 volunteers, searched, filtered by team
//! and stage, paged with counts, and "all that match" moved in one go.

use homefront_domain::Role;
use reqwest::StatusCode;

use crate::helpers::TestApp;
use crate::ui::{browser, sign_in};

/// Volunteers imported into the big team.
const BIG: usize = 5000;
/// Volunteers of the small team, moved all at once.
const SMALL: usize = 60;

async fn upload(app: &TestApp, client: &reqwest::Client, csrf: &str, team: i64, csv: String) {
    let form = reqwest::multipart::Form::new()
        .text("_csrf", csrf.to_string())
        .text("team_id", team.to_string())
        .part(
            "file",
            reqwest::multipart::Part::bytes(csv.into_bytes())
                .file_name("roster.csv")
                .mime_str("text/csv")
                .unwrap(),
        );
    let resp = client
        .post(format!("{}/board/import", app.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let html = resp.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("id=\"rejected-count\">0<"), "{html}");
}

fn roster(from: usize, count: usize) -> String {
    let mut csv = String::from("姓名,手机号,区县代码\n");
    for i in from..from + count {
        csv.push_str(&format!("志愿者{i:05},139{i:08},320102\n"));
    }
    csv
}

async fn get(app: &TestApp, client: &reqwest::Client, path: &str) -> String {
    let resp = client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    resp.text().await.unwrap()
}

#[tokio::test]
async fn province_pages_page_5000_volunteers_search_filter_and_move_all_matching() {
    let app = TestApp::spawn().await;
    app.import_jiangsu().await;
    let province = app.division("320000").await;
    let xuanwu = app.division("320102").await;
    let suzhou = app.division("320500").await;
    let big = app.team(xuanwu, "玄武区志愿服务队").await;
    let small = app.team(xuanwu, "玄武区青年突击队").await;
    app.user("13800000001", &[(Role::Coordinator, Some(province))])
        .await;
    app.user("13800000005", &[(Role::Coordinator, Some(suzhou))])
        .await;
    let client = browser();
    let csrf = sign_in(&app, &client, "13800000001", "/board/import").await;
    upload(&app, &client, &csrf, big, roster(0, BIG)).await;
    upload(&app, &client, &csrf, small, roster(BIG, SMALL)).await;
    let total = BIG + SMALL;

    // The board pages the applicants 50 at a time and counts them all.
    let html = get(&app, &client, "/board/volunteers?state=applied").await;
    assert!(
        html.contains(&format!("第 1–50 人，共 {total} 人")),
        "{html}"
    );
    assert_eq!(html.matches("name=\"volunteer\" value=").count(), 50);
    assert!(html.contains("id=\"next-page\"") && !html.contains("id=\"prev-page\""));
    let last_page = total.div_ceil(50);
    let html = get(
        &app,
        &client,
        &format!("/board/volunteers?state=applied&page={last_page}"),
    )
    .await;
    assert!(
        html.contains(&format!(
            "第 {}–{total} 人，共 {total} 人",
            (last_page - 1) * 50 + 1
        )),
        "{html}"
    );
    assert!(!html.contains("id=\"next-page\"") && html.contains("id=\"prev-page\""));
    // The stage counts cover every page.
    assert!(
        html.contains(&format!("已报名 <span class=\"badge\">{total}</span>")),
        "{html}"
    );

    // Search by name and by phone digits, and filter by team.
    let html = get(
        &app,
        &client,
        "/board/volunteers?q=%E5%BF%97%E6%84%BF%E8%80%8504321",
    )
    .await;
    assert!(
        html.contains("共 1 人") && html.contains("志愿者04321"),
        "{html}"
    );
    let html = get(&app, &client, "/board/volunteers?q=13900004321").await;
    assert!(
        html.contains("共 1 人") && html.contains("139 0000 4321"),
        "{html}"
    );
    let html = get(&app, &client, &format!("/board/volunteers?team={small}")).await;
    assert!(html.contains(&format!("共 {SMALL} 人")), "{html}");

    // "All that match" moves the small team's applicants, on every page,
    // and no one else.
    let resp = client
        .post(format!("{}/board/volunteers", app.base))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("all_matching", "1"),
            ("team", &small.to_string()),
            ("state", "applied"),
            ("q", ""),
            ("target_state", "reviewed"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains(&format!("{SMALL} 人已调整为“已初审”，0 人未调整。")),
        "{html}"
    );
    let html = get(&app, &client, "/board/volunteers").await;
    assert!(
        html.contains(&format!("已报名 <span class=\"badge\">{BIG}</span>")),
        "{html}"
    );
    assert!(
        html.contains(&format!("已初审 <span class=\"badge\">{SMALL}</span>")),
        "{html}"
    );

    // Another area's coordinator matches nobody, so moves nobody.
    let other = browser();
    let csrf_other = sign_in(&app, &other, "13800000005", "/board/volunteers").await;
    let resp = other
        .post(format!("{}/board/volunteers", app.base))
        .form(&[
            ("_csrf", csrf_other.as_str()),
            ("all_matching", "1"),
            ("team", ""),
            ("state", ""),
            ("q", ""),
            ("target_state", "rejected"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = get(&app, &client, "/board/volunteers?state=rejected").await;
    assert!(
        html.contains("共 0 人") || html.contains("id=\"match-count\">0<"),
        "{html}"
    );

    // The account list: 50 a page with counts, searched, by unit and role.
    let html = get(&app, &client, "/admin/users?role=volunteer").await;
    assert!(
        html.contains(&format!("第 1–50 人，共 {total} 人")),
        "{html}"
    );
    assert_eq!(html.matches("class=\"card user-line\"").count(), 50);
    let html = get(&app, &client, &format!("/admin/users?unit={small}")).await;
    assert!(html.contains(&format!("共 {SMALL} 人")), "{html}");
    let html = get(&app, &client, "/admin/users?q=04999").await;
    assert!(
        html.contains("共 1 人") && html.contains("志愿者04999"),
        "{html}"
    );
    let html = get(&app, &client, "/admin/users?role=volunteer&page=102").await;
    assert!(html.contains(&format!("第 5051–{total} 人")), "{html}");
}
