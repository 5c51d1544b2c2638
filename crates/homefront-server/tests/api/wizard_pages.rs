//! The requester's order wizard tells the truth, over HTTP: step 1 lists
//! what can be delivered to the chosen member now (most-used first, with a
//! description, nothing preselected) and shows the rest apart with why;
//! member rules show where the member is chosen; after submitting, the
//! order says how many volunteers nearby are on duty, then the volunteer's
//! name, phone (while the assignment is live, each read logged) and
//! distance.

use homefront_domain::privacy::RecordKind;
use reqwest::StatusCode;
use serde_json::json;

use crate::dispatch::{Flaw, World, accept, world};
use crate::ui::{browser, sign_in};

async fn get(client: &reqwest::Client, w: &World, path: &str) -> String {
    let resp = client
        .get(format!("{}{path}", w.app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    resp.text().await.unwrap()
}

/// The part of `html` between the element with `id` and the next `</fieldset>`.
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {html}"));
    let end = start + html[start..].find("</fieldset>").unwrap();
    &html[start..end]
}

async fn add_member(w: &World, body: serde_json::Value) -> i64 {
    let (status, m) = w
        .app
        .post(&w.requester, "/api/v1/household/members", body)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{m}");
    m["id"].as_i64().unwrap()
}

#[tokio::test]
async fn wizard_lists_what_can_be_delivered_now_and_says_why_not_for_the_rest() {
    let w = world().await;
    let volunteer = w.volunteer("13900000001", 0.5, &[], Flaw::default()).await;
    let parent = add_member(
        &w,
        json!({"name": "刘父", "relation": "parent", "age_years": 69, "adcode": "320102",
               "street": "龙蟠中路1号"}),
    )
    .await;
    let child = add_member(
        &w,
        json!({"name": "刘小", "relation": "child", "age_years": 9, "adcode": "320102",
               "street": "龙蟠中路1号"}),
    )
    .await;
    // Courier is the most-used service of the last 30 days.
    for key in ["c-1", "c-2"] {
        let id = w.order("courier", key).await;
        let (status, _) = w
            .app
            .post(
                &w.requester,
                &format!("/api/v1/orders/{id}/cancel"),
                json!({"reason": "测试"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }

    let client = browser();
    sign_in(&w.app, &client, "13800000001", "/orders/new").await;
    let html = get(&client, &w, "/orders/new").await;
    let ok = section(&html, "deliverable");
    // Deliverable now: on-site items without a qualification, and the
    // remote ones; courier first; a description; nothing preselected.
    let courier = ok.find("快递跑腿").expect("courier listed");
    let groceries = ok.find("买菜送菜").expect("groceries listed");
    assert!(courier < groceries, "most-used first: {ok}");
    assert!(ok.contains("志愿者代买蔬菜食品并送到家门口"), "{ok}");
    assert!(!ok.contains(" checked"), "an item was preselected: {ok}");
    assert!(!ok.contains("免费用车") && !ok.contains("视频课业辅导"));
    // Apart, with why: no licensed driver near; tutoring not for an adult.
    let apart = section(&html, "apart");
    assert!(
        apart.contains("附近暂时没有能提供免费用车的志愿者——下单后会通知协调员"),
        "{apart}"
    );
    assert!(apart.contains("课业辅导仅面向中小学生"), "{apart}");

    // For the child: tutoring is for them, but no teacher is in reach.
    let html = get(&client, &w, &format!("/orders/new?member={child}")).await;
    let apart = section(&html, "apart");
    assert!(
        apart.contains("附近暂时没有能提供视频课业辅导的志愿者"),
        "{apart}"
    );
    // A child under 14 without recorded consent: said where they are chosen.
    assert!(html.contains("id=\"member-rules\"") && html.contains("刘小</span>未满14周岁"));
    let courier_id = w
        .app
        .store
        .service_items(false)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.code == "courier")
        .unwrap()
        .id;
    let who = get(
        &client,
        &w,
        &format!("/orders/new/who?item={courier_id}&member={child}"),
    )
    .await;
    // Consent is said for the child; the tutoring rule is not, as courier
    // suits everyone.
    assert!(who.contains("刘小</span>未满14周岁"), "{who}");
    assert!(
        !who.contains("不能为<span translate=\"no\">刘父</span>下单"),
        "a rule of another item: {who}"
    );
    assert!(who.contains(&format!("value=\"{child}\" checked")), "{who}");

    // Intake refuses tutoring for the 69-year-old, naming the field.
    let tutoring = w
        .app
        .store
        .service_items(false)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.code == "tutoring_video")
        .unwrap()
        .id;
    // With tutoring chosen, the member it does not suit is told why.
    let who = get(
        &client,
        &w,
        &format!("/orders/new/who?item={tutoring}&member={child}"),
    )
    .await;
    assert!(
        who.contains("不能为<span translate=\"no\">刘父</span>下单"),
        "{who}"
    );
    let resp = w
        .app
        .client
        .post(format!("{}/api/v1/orders", w.app.base))
        .bearer_auth(&w.requester.token)
        .header("Idempotency-Key", "t-1")
        .json(&json!({"item_id": tutoring, "member_id": parent,
            "window_start": "2020-02-12T18:00", "window_end": "2020-02-12T20:00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "item_not_for_member");
    assert_eq!(body["field"], "item_id");

    // After submitting: how many nearby are on duty, then who, their phone
    // and how far, while the assignment is live.
    let order = w.order("groceries", "g-1").await;
    let page = get(&client, &w, &format!("/orders/{order}")).await;
    assert!(page.contains("正在寻找志愿者——附近有 1 位在岗"), "{page}");
    w.tick().await;
    let offer = w.open_offers(order).await.remove(0);
    let s = w.app.login("13900000001").await;
    let (status, body) = accept(&w.app, &s, offer.id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let page = get(&client, &w, &format!("/orders/{order}")).await;
    assert!(
        page.contains("id=\"volunteer-phone\" translate=\"no\">139 0000 0001<"),
        "{page}"
    );
    assert!(page.contains("距离 0.5 公里"), "{page}");
    assert!(!page.contains("id=\"looking\""));
    let log = w
        .app
        .store
        .access_log(RecordKind::Account, volunteer)
        .await
        .unwrap();
    assert!(
        log.iter()
            .any(|e| e.actor_user_id == w.requester.user_id && e.purpose == "order_page"),
        "{log:?}"
    );
    // Over: the phone is no longer shown.
    let (status, _) = w
        .app
        .post(
            &w.requester,
            &format!("/api/v1/orders/{order}/cancel"),
            json!({"reason": "不需要了"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let page = get(&client, &w, &format!("/orders/{order}")).await;
    assert!(!page.contains("139 0000 0001"), "{page}");
}

#[tokio::test]
async fn a_volunteer_prints_a_certificate_from_the_hours_page_and_anyone_verifies_it() {
    let w = world().await;
    let me = w.volunteer("13900000001", 0.5, &[], Flaw::default()).await;
    let client = browser();
    sign_in(&w.app, &client, "13900000001", "/volunteer").await;
    let html = get(&client, &w, "/volunteer/hours").await;
    let action = format!("action=\"/api/v1/volunteers/{me}/certificate\"");
    assert!(
        html.contains(&action) && html.contains("value=\"2020-02-01\""),
        "{html}"
    );
    // The form's request, as the browser sends it with the session cookie.
    let cert = get(
        &client,
        &w,
        &format!("/api/v1/volunteers/{me}/certificate?from=2020-02-01&to=2020-02-12"),
    )
    .await;
    assert!(cert.contains("@media print"), "print stylesheet");
    let code = cert
        .split("/certificates/")
        .nth(1)
        .and_then(|s| s.split(['"', '<']).next())
        .expect("verification link")
        .to_string();
    let resp = reqwest::Client::new()
        .get(format!("{}/certificates/{code}", w.app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = reqwest::Client::new()
        .get(format!("{}/certificates/not-a-code", w.app.base))
        .send()
        .await
        .unwrap();
    assert_ne!(resp.status(), StatusCode::OK);
}
