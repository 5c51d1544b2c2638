//! The coordinator's order page over HTTP, signed in by form: the ranking
//! in words, the true reason each other volunteer is out (the dispatcher's
//! own checks), candidate phones with their access-log rows, the order's
//! log and offers in words, cancelling with a reason and reassigning a
//! live order.

use homefront_domain::credentials::CredentialKind;
use homefront_domain::order_state::{EventAction, OrderState};
use homefront_domain::privacy::RecordKind;
use reqwest::StatusCode;
use serde_json::json;

use crate::dispatch::{Flaw, World, accept, world};
use crate::ui::{browser, sign_in};

async fn get(client: &reqwest::Client, w: &World, path: &str) -> (StatusCode, String) {
    let resp = client
        .get(format!("{}{path}", w.app.base))
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

async fn post(
    client: &reqwest::Client,
    w: &World,
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String) {
    let resp = client
        .post(format!("{}{path}", w.app.base))
        .form(form)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

/// The candidate row (a `<label class="choice">`) that shows `phone`, and
/// whether it is in the ranked list.
fn row<'a>(html: &'a str, phone: &str) -> (&'a str, bool) {
    let others = html.find("id=\"others\"").unwrap_or(html.len());
    let at = html
        .find(&format!(">{phone}</a>"))
        .unwrap_or_else(|| panic!("no row shows {phone}"));
    let start = html[..at].rfind("<label class=\"choice\">").unwrap();
    let end = at + html[at..].find("</label>").unwrap();
    (&html[start..end], start < others)
}

#[tokio::test]
async fn coordinator_order_page_ranks_in_words_says_why_others_are_out_and_logs_phone_reads() {
    let w = world().await;
    w.mode("manual", 1).await;
    let licence = [CredentialKind::DrivingLicence];
    let ok = w
        .volunteer("13900000001", 1.2, &licence, Flaw::default())
        .await;
    let off = w
        .volunteer(
            "13900000002",
            0.5,
            &licence,
            Flaw {
                off_duty: true,
                ..Flaw::default()
            },
        )
        .await;
    let far = w
        .volunteer(
            "13900000003",
            0.0,
            &licence,
            Flaw {
                far_km: 30.0,
                ..Flaw::default()
            },
        )
        .await;
    let uninsured = w
        .volunteer(
            "13900000004",
            0.3,
            &licence,
            Flaw {
                expired_insurance: true,
                ..Flaw::default()
            },
        )
        .await;
    let unlicensed = w.volunteer("13900000005", 0.4, &[], Flaw::default()).await;
    // An account with the volunteer role on the team but no profile yet.
    w.app
        .user(
            "13900000009",
            &[(homefront_domain::Role::Volunteer, Some(w.team))],
        )
        .await;
    let order = w.order("ride", "ride-1").await;
    w.tick().await;

    let client = browser();
    sign_in(&w.app, &client, "13800000002", "/board").await;
    let (status, html) = get(&client, &w, &format!("/board/orders/{order}")).await;
    assert_eq!(status, StatusCode::OK, "{html}");

    // The one eligible volunteer is ranked, in words, with the phone.
    let (ranked, in_ranking) = row(&html, "139 0000 0001");
    assert!(in_ranking, "{ranked}");
    assert!(
        ranked.contains("第1名")
            && ranked.contains("1.2 公里")
            && ranked.contains("近4周已服务 0.0 小时"),
        "{ranked}"
    );
    assert!(
        !html.contains("代价") && !html.contains("负荷 "),
        "cost terms leaked"
    );

    // Every other one with the dispatcher's true reason.
    for (phone, why) in [
        ("139 0000 0002", "未上岗"),
        ("139 0000 0003", "超出服务半径"),
        ("139 0000 0004", "保险"),
        ("139 0000 0005", "不具备免费用车资质"),
        ("139 0000 0009", "尚未建立志愿者档案"),
    ] {
        let (r, in_ranking) = row(&html, phone);
        assert!(!in_ranking, "{phone} ranked: {r}");
        assert!(r.contains(why), "{phone}: {r}");
    }
    // Not one blanket reason for everybody.
    assert!(!html.contains("未上岗、未完成审核或超出服务半径"));
    let (far_row, _) = row(&html, "139 0000 0003");
    assert!(
        far_row.contains("相距 30.") && far_row.contains("服务 10.0 公里内"),
        "{far_row}"
    );

    // Each phone shown left an access-log row naming the reader and why.
    let coordinator = w.coordinator.user_id;
    for v in [ok, off, far, uninsured, unlicensed] {
        let log = w
            .app
            .store
            .access_log(RecordKind::Account, v)
            .await
            .unwrap();
        assert_eq!(log.len(), 1, "volunteer {v}: {log:?}");
        assert_eq!(log[0].actor_user_id, coordinator);
        assert_eq!(log[0].fields, "phone");
        assert_eq!(log[0].purpose, "manual_dispatch");
    }

    // A volunteer who declined is out for that reason, not ranked.
    let (_, offer) = w
        .app
        .post(
            &w.coordinator,
            &format!("/api/v1/orders/{order}/offers"),
            json!({"volunteer_user_id": ok}),
        )
        .await;
    let s = w.app.login("13900000001").await;
    let (status, body) = w
        .app
        .post(
            &s,
            &format!("/api/v1/offers/{}/decline", offer["id"]),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, html) = get(&client, &w, &format!("/board/orders/{order}")).await;
    let (r, in_ranking) = row(&html, "139 0000 0001");
    assert!(!in_ranking && r.contains("已谢绝此订单"), "{r}");
    // The offer with its outcome and the log in words.
    assert!(html.contains("data-outcome=\"declined\""), "{html}");
    assert!(html.contains("协调员派单"));
    assert!(html.contains("提交了订单") && html.contains("开始派单"));

    // The same page in English says it in English.
    let en = client
        .get(format!("{}/board/orders/{order}", w.app.base))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (r, _) = row(&en, "139 0000 0005");
    assert!(r.contains("not qualified for Free ride"), "{r}");
    let (r, _) = row(&en, "139 0000 0002");
    assert!(r.contains("off duty"), "{r}");
    assert!(en.contains("declined this order") && en.contains("placed the order"));
}

#[tokio::test]
async fn coordinator_reassigns_a_live_order_and_cancels_with_a_reason() {
    let w = world().await;
    w.mode("sequential", 1).await;
    let first = w.volunteer("13900000001", 0.5, &[], Flaw::default()).await;
    let second = w.volunteer("13900000002", 2.0, &[], Flaw::default()).await;
    let order = w.order("groceries", "g-1").await;
    w.tick().await;
    let offer = w.open_offers(order).await.remove(0);
    assert_eq!(offer.volunteer_user_id, first);
    let s = w.app.login("13900000001").await;
    let (status, body) = accept(&w.app, &s, offer.id).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let client = browser();
    let csrf = sign_in(&w.app, &client, "13800000002", "/board").await;
    let path = format!("/board/orders/{order}");
    let (_, html) = get(&client, &w, &path).await;
    // Live: the assignee's phone, the reassign form listing the other
    // volunteer (not the assignee), the accepted offer and the log.
    assert!(html.contains("id=\"reassign-form\"") && html.contains("data-confirm"));
    assert!(html.contains("id=\"assignee\"") && html.contains("139 0000 0001"));
    let (r, in_ranking) = row(&html, "139 0000 0002");
    assert!(in_ranking, "{r}");
    assert!(!html.contains(&format!("name=\"volunteer\" value=\"{first}\"")));
    assert!(html.contains("data-outcome=\"accepted\"") && html.contains("接受了邀请"));

    // No reason: 422 naming it, the page again, nothing changed.
    let second_s = second.to_string();
    let (status, html) = post(
        &client,
        &w,
        &format!("{path}/reassign"),
        &[
            ("_csrf", &csrf),
            ("reason", " "),
            ("volunteer", &second_s),
            ("how", "assign"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html.contains("id=\"form-error\"") && html.contains("原因"),
        "{html}"
    );
    let o = w.app.store.order(order).await.unwrap().unwrap();
    assert_eq!(o.assignee_user_id, Some(first));

    homefront_server::notify::deliver_pass(&w.app.state())
        .await
        .unwrap();
    let (_, inbox) = w.app.get(&s, "/api/v1/inbox").await;
    let unread_before = inbox["unread"].as_i64().unwrap();
    // With a reason: withdrawn from the first, assigned to the second, in
    // one go, the reason in the log.
    let (status, _) = post(
        &client,
        &w,
        &format!("{path}/reassign"),
        &[
            ("_csrf", &csrf),
            ("reason", "电话一直打不通"),
            ("volunteer", &second_s),
            ("how", "assign"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let o = w.app.store.order(order).await.unwrap().unwrap();
    assert_eq!(o.state, OrderState::Assigned);
    assert_eq!(o.assignee_user_id, Some(second));
    let events = w.app.store.order_events(order).await.unwrap();
    let n = events.len();
    assert_eq!(events[n - 2].action, EventAction::Reassign);
    assert_eq!(events[n - 2].reason.as_deref(), Some("电话一直打不通"));
    assert_eq!(events[n - 2].actor_user_id, Some(w.coordinator.user_id));
    assert_eq!(events[n - 1].action, EventAction::Assign);
    // The first volunteer hears that the order was taken from them.
    homefront_server::notify::deliver_pass(&w.app.state())
        .await
        .unwrap();
    let (_, inbox) = w.app.get(&s, "/api/v1/inbox").await;
    assert_eq!(
        inbox["unread"].as_i64().unwrap(),
        unread_before + 1,
        "{inbox}"
    );
    // The first volunteer no longer sees the address.
    let (status, body) = w.app.get(&s, &format!("/api/v1/orders/{order}")).await;
    assert!(
        status == StatusCode::NOT_FOUND || body.get("street").is_none(),
        "{body}"
    );
    let (_, html) = get(&client, &w, &format!("{path}?done=reassigned")).await;
    assert!(
        html.contains("收回指派以改派") && html.contains("电话一直打不通"),
        "{html}"
    );
    assert!(html.contains("将订单指派给"));

    // Cancel: a blank reason is refused naming it; then cancelled with it.
    let (status, html) = post(
        &client,
        &w,
        &format!("{path}/cancel"),
        &[("_csrf", &csrf), ("reason", "")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("id=\"cancel-form\"") && html.contains("原因"));
    let (status, _) = post(
        &client,
        &w,
        &format!("{path}/cancel"),
        &[("_csrf", &csrf), ("reason", "家属已自行解决")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let o = w.app.store.order(order).await.unwrap().unwrap();
    assert_eq!(o.state, OrderState::Cancelled);
    let (_, html) = get(&client, &w, &path).await;
    assert!(html.contains("取消了订单") && html.contains("家属已自行解决"));
    assert!(!html.contains("id=\"cancel-form\"") && !html.contains("id=\"reassign-form\""));
    // A cancelled order cannot be reassigned.
    let (status, _) = post(
        &client,
        &w,
        &format!("{path}/reassign"),
        &[
            ("_csrf", &csrf),
            ("reason", "再试"),
            ("volunteer", &first.to_string()),
            ("how", "assign"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn coordinator_sets_a_units_dispatch_mode_on_its_page() {
    let w = world().await;
    let client = browser();
    let csrf = sign_in(&w.app, &client, "13800000002", "/board").await;
    let path = format!("/admin/units/{}/dispatch", w.xuanwu);
    let (status, html) = get(&client, &w, &path).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    // Every mode with what it means; the one in force (default) checked.
    assert!(html.contains("value=\"auto\" checked"), "{html}");
    assert!(
        html.contains("同时邀请几位最合适的志愿者") && html.contains("由协调员从排名列表中邀请")
    );
    let (_, units) = get(&client, &w, "/admin/units").await;
    assert!(units.contains(&format!("href=\"{path}\"")));

    let (status, html) = post(
        &client,
        &w,
        &path,
        &[
            ("_csrf", &csrf),
            ("mode", "broadcast"),
            ("broadcast_k", "99"),
            ("cooldown", "10"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("id=\"form-error\""));
    let (status, _) = post(
        &client,
        &w,
        &path,
        &[
            ("_csrf", &csrf),
            ("mode", "broadcast"),
            ("broadcast_k", "3"),
            ("cooldown", "15"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, s) = w
        .app
        .get(
            &w.coordinator,
            &format!("/api/v1/org-units/{}/dispatch-setting", w.xuanwu),
        )
        .await;
    assert_eq!(s["mode"], "broadcast");
    assert_eq!(s["broadcast_k"], 3);
    assert_eq!(s["reoffer_cooldown_minutes"], 15);
    let (_, html) = get(&client, &w, &format!("{path}?done=1")).await;
    assert!(html.contains("value=\"broadcast\" checked"));
    // Another county's unit is out of reach.
    let other = w.app.division("320104").await;
    let (status, _) = get(&client, &w, &format!("/admin/units/{other}/dispatch")).await;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
        "{status}"
    );
}

/// A county coordinator's page lists the province's volunteers it may
/// offer the order to, but shows (and logs a read of) phones only of
/// volunteers whose team lies in the county: the API does not show it the
/// province's volunteers either.
#[tokio::test]
async fn a_county_coordinators_page_shows_no_phone_of_volunteers_outside_its_area() {
    let w = world().await;
    w.mode("manual", 1).await;
    let province = w.app.division("320000").await;
    let province_team = w.team_under(province, "省青年志愿者应急服务队").await;
    let licence = [CredentialKind::DrivingLicence];
    let own = w
        .volunteer("13900000001", 1.0, &licence, Flaw::default())
        .await;
    let outside = w
        .volunteer_on(province_team, "13700000001", 0.5, &licence, Flaw::default())
        .await;
    let order = w.order("ride", "ride-outside").await;
    w.tick().await;

    let client = browser();
    sign_in(&w.app, &client, "13800000002", "/board").await;
    let (status, html) = get(&client, &w, &format!("/board/orders/{order}")).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let outside_name = w
        .app
        .store
        .user(outside)
        .await
        .unwrap()
        .unwrap()
        .display_name;
    assert!(
        html.contains(&outside_name),
        "the province's volunteer is listed"
    );
    assert!(
        !html.contains("137 0000 0001") && !html.contains("+8613700000001"),
        "a phone outside the county was shown"
    );
    let (_, in_ranking) = row(&html, "139 0000 0001");
    assert!(in_ranking, "the county's own volunteer, with the phone");
    let read = |v: i64| {
        let w = &w;
        async move {
            w.app
                .store
                .access_log(RecordKind::Account, v)
                .await
                .unwrap()
                .len()
        }
    };
    assert_eq!(read(own).await, 1);
    assert_eq!(read(outside).await, 0);
}
