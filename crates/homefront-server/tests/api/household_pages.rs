//! The requester's household pages and everyone's account page over real
//! HTTP, signed in by form with the session cookie: a new requester adds
//! a family member from the order wizard's empty state and comes back to
//! it with the member chosen; bad input is refused naming the field and
//! saves nothing; another requester cannot read or change the members by
//! editing ids; a password change ends the session and the old password.

use homefront_domain::Role;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{PASSWORD, TestApp};
use crate::ui::{browser, sign_in};

const REQUESTER: &str = "13800000008";
const OTHER: &str = "13800000009";

async fn page(client: &reqwest::Client, app: &TestApp, path: &str) -> (StatusCode, String) {
    let resp = client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

/// Posts a form; answers the status, the `Location` ("" when none) and the
/// page.
async fn post_form(
    client: &reqwest::Client,
    app: &TestApp,
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String, String) {
    let resp = client
        .post(format!("{}{path}", app.base))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let to = resp
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, to, resp.text().await.unwrap())
}

/// The requester's members as the JSON API lists them.
async fn members(app: &TestApp, phone: &str) -> Vec<Value> {
    let session = app.login(phone).await;
    let (status, body) = app.get(&session, "/api/v1/household").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["members"].as_array().unwrap().clone()
}

/// A member form: the fields of the add and edit forms, with the CSRF token.
fn member<'a>(csrf: &'a str, fields: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut f = vec![
        ("_csrf", csrf),
        ("name", "王芳"),
        ("relation", "parent"),
        ("adcode", "320102000000"),
        ("street", "北京东路5号2单元301室"),
        ("phone", "13900139000"),
        ("age_years", ""),
        ("school_grade", ""),
        ("longitude", ""),
        ("latitude", ""),
        ("next", ""),
    ];
    for (k, v) in fields {
        match f.iter_mut().find(|(name, _)| name == k) {
            Some(slot) => slot.1 = v,
            None => f.push((k, v)),
        }
    }
    f
}

#[tokio::test]
async fn household_page_adds_a_member_from_the_wizard_and_returns_to_it() {
    let app = TestApp::spawn().await;
    app.import_jiangsu().await;
    app.user(REQUESTER, &[(Role::Requester, None)]).await;
    let item = app.store.service_items(false).await.unwrap()[0].id;
    let client = browser();
    let csrf = sign_in(&app, &client, REQUESTER, "/household").await;

    // Step 2 of an order with nobody registered links to the household
    // page, which will come back here.
    let who = format!("/orders/new/who?item={item}");
    let (status, html) = page(&client, &app, &who).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("家庭成员还没有登记"), "{html}");
    let link = format!("/household?next=/orders/new/who%3Fitem%3D{item}");
    assert!(html.contains(&format!("href=\"{link}\"")), "{html}");
    assert!(html.contains("href=\"/household\""), "the requester's nav");

    // The empty household, with districts grouped by city in adcode order.
    let (status, html) = page(&client, &app, &link).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("还没有家庭成员"));
    let nanjing = html.find("<optgroup label=\"南京市\">").expect("Nanjing");
    let wuxi = html.find("<optgroup label=\"无锡市\">").expect("Wuxi");
    assert!(nanjing < wuxi);
    let xuanwu = html.find("<option value=\"320102000000\">玄武区</option>");
    let qinhuai = html.find("<option value=\"320104000000\">秦淮区</option>");
    assert!(nanjing < xuanwu.unwrap() && xuanwu < qinhuai && qinhuai.unwrap() < wuxi);
    let next = format!("/orders/new/who?item={item}");
    assert!(html.contains(&format!("name=\"next\" value=\"{next}\"")));

    // A bad phone: 422, the field named, what was typed kept, nothing saved.
    let (status, _, html) = post_form(
        &client,
        &app,
        "/household",
        &member(&csrf, &[("phone", "12345"), ("next", next.as_str())]),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("手机号: 手机号格式不正确"), "{html}");
    assert!(html.contains("id=\"phone\" name=\"phone\" inputmode=\"tel\" autocomplete=\"off\" value=\"12345\" aria-invalid=\"true\""));
    assert!(html.contains("value=\"北京东路5号2单元301室\""));
    assert!(html.contains("<option value=\"320102000000\" selected>玄武区</option>"));
    assert!(html.contains(&format!("name=\"next\" value=\"{next}\"")));
    assert!(members(&app, REQUESTER).await.is_empty());

    // A child needs an age; in English the field is named in English.
    let resp = client
        .post(format!("{}/household", app.base))
        .header("accept-language", "en")
        .form(&member(&csrf, &[("relation", "child"), ("name", "小明")]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp.text().await.unwrap().contains("Age: Give the child"));
    assert!(members(&app, REQUESTER).await.is_empty());

    // Good: saved, and back to step 2 with the new member chosen.
    let (status, to, _) = post_form(
        &client,
        &app,
        "/household",
        &member(&csrf, &[("next", next.as_str())]),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let saved = members(&app, REQUESTER).await;
    assert_eq!(saved.len(), 1);
    let id = saved[0]["id"].as_i64().unwrap();
    assert_eq!(saved[0]["phone"], "+8613900139000");
    assert_eq!(saved[0]["street"], "北京东路5号2单元301室");
    assert_eq!(to, format!("/orders/new/who?item={item}&member={id}"));
    let (status, html) = page(&client, &app, &to).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!("name=\"member\" value=\"{id}\" checked")));
    assert!(html.contains("玄武区 <span translate=\"no\">北京东路5号2单元301室</span>"));
    // ... and on to step 3 with them.
    let (status, html) = page(
        &client,
        &app,
        &format!("/orders/new/when?item={item}&member={id}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("王芳"));

    // Listed on the household page.
    let (_, html) = page(&client, &app, "/household").await;
    assert!(html.contains("王芳") && html.contains("139 0013 9000"));
    assert!(html.contains(&format!("href=\"/household/members/{id}\"")));

    // Edit: the form comes filled in; an empty street is refused naming
    // it and changes nothing; a good edit is saved.
    let path = format!("/household/members/{id}");
    let (status, html) = page(&client, &app, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("value=\"北京东路5号2单元301室\""));
    assert!(html.contains("<option value=\"320102000000\" selected>玄武区</option>"));
    assert!(html.contains("<option value=\"parent\" selected>"));
    let (status, _, html) =
        post_form(&client, &app, &path, &member(&csrf, &[("street", " ")])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("详细地址: 请填写详细地址"), "{html}");
    assert_eq!(
        members(&app, REQUESTER).await[0]["street"],
        "北京东路5号2单元301室"
    );
    let (status, to, _) = post_form(
        &client,
        &app,
        &path,
        &member(
            &csrf,
            &[
                ("adcode", "320104000000"),
                ("street", "中华路2号"),
                ("phone", ""),
            ],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(to, "/household?done=1");
    let saved = members(&app, REQUESTER).await;
    assert_eq!(saved[0]["street"], "中华路2号");
    assert_eq!(saved[0]["phone"], Value::Null);
    assert_eq!(saved[0]["division_id"], app.division("320104").await);
    let (_, html) = page(&client, &app, &to).await;
    assert!(
        html.contains("已保存") && html.contains("秦淮区 <span translate=\"no\">中华路2号</span>")
    );

    // A `next` elsewhere is ignored: back to the household.
    let (status, to, _) = post_form(
        &client,
        &app,
        &path,
        &member(&csrf, &[("next", "//evil.example/")]),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(to, "/household?done=1");
}

#[tokio::test]
async fn household_pages_hide_and_protect_another_requesters_members() {
    let app = TestApp::spawn().await;
    app.import_jiangsu().await;
    app.user(REQUESTER, &[(Role::Requester, None)]).await;
    app.user(OTHER, &[(Role::Requester, None)]).await;
    let xuanwu = app.division("320102").await;
    app.user("13800000010", &[(Role::Coordinator, Some(xuanwu))])
        .await;
    let first = browser();
    let csrf = sign_in(&app, &first, REQUESTER, "/household").await;
    let (status, _, _) = post_form(&first, &app, "/household", &member(&csrf, &[])).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let id = members(&app, REQUESTER).await[0]["id"].as_i64().unwrap();

    let second = browser();
    let csrf2 = sign_in(&app, &second, OTHER, "/household").await;
    let (status, html) = page(&second, &app, "/household").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("王芳") && !html.contains("北京东路"));
    // The first requester's member by id, read or written: the same 404
    // as a missing member, and nothing changes.
    let path = format!("/household/members/{id}");
    for p in [path.clone(), "/household/members/999999".into()] {
        let (status, html) = page(&second, &app, &p).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{p}");
        assert!(!html.contains("北京东路"));
    }
    let (status, _, html) = post_form(
        &second,
        &app,
        &path,
        &member(&csrf2, &[("name", "冒名"), ("street", "别处1号")]),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!html.contains("北京东路"));
    // Also with an input the API would refuse: still 404, no form echoed.
    let (status, _, html) =
        post_form(&second, &app, &path, &member(&csrf2, &[("phone", "12345")])).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!html.contains("北京东路"));
    let stored = app.store.member(id).await.unwrap().unwrap();
    assert_eq!(
        (stored.name.as_str(), stored.street.as_str()),
        ("王芳", "北京东路5号2单元301室")
    );
    assert!(members(&app, OTHER).await.is_empty());

    // Not a requester: no household pages.
    let coordinator = browser();
    sign_in(&app, &coordinator, "13800000010", "/account").await;
    for p in ["/household", path.as_str()] {
        let (status, _) = page(&coordinator, &app, p).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{p}");
    }
}

#[tokio::test]
async fn account_page_changes_the_password_and_refuses_a_wrong_current_one() {
    let app = TestApp::spawn().await;
    app.import_jiangsu().await;
    app.user(REQUESTER, &[(Role::Requester, None)]).await;
    let client = browser();
    let csrf = sign_in(&app, &client, REQUESTER, "/account").await;
    let (status, html) = page(&client, &app, "/account").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("href=\"/account\"") && html.contains("修改密码"));

    let new = "a new long password";
    let refusals = [
        ("wrong current password", "当前密码: 当前密码不正确"),
        (PASSWORD, "新密码: 密码太短"),
        (PASSWORD, "再次输入新密码: 两次输入的新密码不一致"),
    ];
    for (i, (current, says)) in refusals.into_iter().enumerate() {
        let (new_password, repeat) = match i {
            0 => (new, new),
            1 => ("short", "short"),
            _ => (new, "a different password"),
        };
        let (status, _, html) = post_form(
            &client,
            &app,
            "/account/password",
            &[
                ("_csrf", &csrf),
                ("current_password", current),
                ("new_password", new_password),
                ("new_password_repeat", repeat),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{says}");
        assert!(html.contains(says), "{says}: {html}");
    }
    // Nothing changed: the old password still signs in, this session lives.
    app.login(REQUESTER).await;
    let (status, _) = page(&client, &app, "/account").await;
    assert_eq!(status, StatusCode::OK);

    let resp = client
        .post(format!("{}/account/password", app.base))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("current_password", PASSWORD),
            ("new_password", new),
            ("new_password_repeat", new),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], "/login?changed=1");
    // The session ended with the old password.
    let (status, _) = page(&client, &app, "/account").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, html) = page(&client, &app, "/login?changed=1").await;
    assert!(html.contains("密码已修改"));
    // The old password no longer signs in; the new one does.
    let (status, _, html) = post_form(
        &client,
        &app,
        "/login",
        &[("phone", REQUESTER), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(html.contains("手机号或密码不正确"));
    let (status, to, _) = post_form(
        &client,
        &app,
        "/login",
        &[("phone", REQUESTER), ("password", new)],
    )
    .await;
    assert_eq!((status, to.as_str()), (StatusCode::SEE_OTHER, "/"));
    let (status, _) = page(&client, &app, "/account").await;
    assert_eq!(status, StatusCode::OK);
}
