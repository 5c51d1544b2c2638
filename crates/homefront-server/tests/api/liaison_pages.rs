//! The liaison's pages over HTTP: they land on their staff page, verify a
//! staff member of their employer, place an order on the staff member's
//! behalf and see it listed; households their employer did not verify stay
//! out of reach.

use homefront_domain::Role;
use homefront_domain::org::OrgKind;
use reqwest::StatusCode;

use crate::dispatch::world;
use crate::ui::{browser, sign_in};

#[tokio::test]
async fn liaison_verifies_staff_and_orders_on_their_behalf() {
    let w = world().await;
    let hospital = w
        .app
        .unit(OrgKind::Employer, "江苏省人民医院", w.xuanwu)
        .await;
    let liaison = w
        .app
        .user("13800000004", &[(Role::Liaison, Some(hospital))])
        .await;
    let client = browser();
    let csrf = sign_in(&w.app, &client, "13800000004", "/liaison").await;
    let base = &w.app.base;
    // Home leads a liaison to their page.
    let resp = client.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(resp.headers()["location"], "/liaison");
    let household = w.household.to_string();
    // Not verified yet: the order form is out of reach.
    let resp = client
        .get(format!("{base}/liaison/order?household={household}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // A bad phone is refused naming it, with what was typed.
    let resp = client
        .post(format!("{base}/liaison/verify"))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("phone", "12"),
            ("department", "呼吸科"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = resp.text().await.unwrap();
    assert!(html.contains("id=\"form-error\"") && html.contains("value=\"呼吸科\""));
    let resp = client
        .post(format!("{base}/liaison/verify"))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("phone", "13800000001"),
            ("department", "呼吸科"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let h = w.app.store.household(w.household).await.unwrap().unwrap();
    assert_eq!(h.employer_id, Some(hospital));
    assert_eq!(h.verified_by, Some(liaison));
    let html = client
        .get(format!("{base}/liaison?verified=1"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("138 0000 0001") && html.contains("呼吸科"),
        "{html}"
    );

    // The order form lists the staff member's family; the order is theirs,
    // placed by the liaison, and listed on the liaison's page.
    let html = client
        .get(format!("{base}/liaison/order?household={household}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("刘护士"), "{html}");
    let key = html
        .split("name=\"key\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let item = w
        .app
        .store
        .service_items(false)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.code == "groceries")
        .unwrap()
        .id
        .to_string();
    let member = w.member.to_string();
    let form = [
        ("_csrf", csrf.as_str()),
        ("household", household.as_str()),
        ("key", key.as_str()),
        ("member", member.as_str()),
        ("item", item.as_str()),
        ("window_start", "2020-02-12T18:00"),
        ("window_end", "2020-02-12T20:00"),
    ];
    // Without a member the intake's refusal shows on the form.
    let resp = client
        .post(format!("{base}/liaison/orders"))
        .form(&[&form[..3], &form[4..]].concat())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let resp = client
        .post(format!("{base}/liaison/orders"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let to = resp.headers()["location"].to_str().unwrap().to_string();
    let id: i64 = to.trim_start_matches("/orders/").parse().unwrap();
    let o = w.app.store.order(id).await.unwrap().unwrap();
    assert_eq!(o.placed_by, liaison);
    assert_eq!(o.requester_user_id, w.requester.user_id);
    let html = client
        .get(format!("{base}/liaison"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(&format!("data-order=\"{id}\"")), "{html}");
    // The liaison follows it on the order's page.
    let resp = client.get(format!("{base}{to}")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}
