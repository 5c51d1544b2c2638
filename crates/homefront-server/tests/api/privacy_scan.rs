//! Privacy scan: one order's life with distinctive personal data (a
//! street, phones, a name, notes), then a search for any of it (and for
//! passwords and session tokens) in every log line the process wrote at
//! TRACE, and for the personal data in every answer given to an account
//! that may not see it: a volunteer not assigned, the offered volunteer
//! before accepting, the assigned volunteer after completing, and a
//! coordinator outside the area. Either engine.
//!
//! The log capture is a layer of the suite's global subscriber
//! (`helpers::logs`): every event at every level, from every thread (the
//! server, its workers, the store, the SQLite driver's threads), formatted
//! as `homefront serve` would write it. Tests running alongside write
//! there too; they use none of this fixture's data.

use homefront_domain::Timestamp;
use homefront_server::{notify, workers};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::dispatch::{Flaw, World, accept, world};
use crate::helpers::Session;

const STREET: &str = "扫描专用巷987号";
const STREET_PART: &str = "扫描专用巷";
const MEMBER_PHONE: &str = "13912398765";
const CONTACT_PHONE: &str = "13798765432";
const MEMBER_NAME: &str = "隐私扫描员";
const NOTES: &str = "门禁密码4242，放门口";

/// 18:30 and 19:30 on 2020-02-12 (+08:00), inside the order's window.
const CHECK_IN: Timestamp = Timestamp(1_581_503_400_000);
const CHECK_OUT: Timestamp = Timestamp(1_581_507_000_000);

/// Every piece of personal data of the fixture, in the forms it may take
/// (E.164, national digits, the street's distinctive part).
fn needles() -> Vec<String> {
    let mut n = vec![
        STREET.to_string(),
        STREET_PART.to_string(),
        MEMBER_NAME.to_string(),
        NOTES.to_string(),
        // The door code alone: "4242" also occurs in timings.
        "密码4242".to_string(),
    ];
    for phone in [MEMBER_PHONE, CONTACT_PHONE] {
        n.push(phone.to_string());
        n.push(format!("+86{phone}"));
        // A phone cut in the middle still identifies it.
        n.push(phone[3..].to_string());
    }
    n
}

fn hits(text: &str) -> Vec<String> {
    needles().into_iter().filter(|n| text.contains(n)).collect()
}

/// The answers given to accounts that may not see the data, and the
/// requests that produced them.
#[derive(Default)]
struct Seen(Vec<(String, String)>);

impl Seen {
    async fn get(&mut self, w: &World, who: &str, s: &Session, path: &str) {
        let resp = w
            .app
            .client
            .get(format!("{}{path}", w.app.base))
            .bearer_auth(&s.token)
            .send()
            .await
            .unwrap();
        let text = resp.text().await.unwrap_or_default();
        self.0.push((format!("{who} GET {path}"), text));
    }

    /// The views an account without access to `order` tries.
    async fn all(&mut self, w: &World, who: &str, s: &Session, order: i64) {
        for path in [
            "/api/v1/orders".to_string(),
            format!("/api/v1/orders/{order}"),
            format!("/api/v1/orders/{order}/events"),
            format!("/api/v1/orders/{order}/candidates"),
            format!("/api/v1/orders/{order}/offers"),
            "/api/v1/offers?show=all".to_string(),
            "/api/v1/inbox".to_string(),
            "/api/v1/hours/me".to_string(),
            "/api/v1/dispatch/queue".to_string(),
            "/api/v1/pairings/me".to_string(),
            "/api/v1/household".to_string(),
            "/api/v1/users".to_string(),
            "/api/v1/volunteers".to_string(),
            "/".to_string(),
            "/volunteer".to_string(),
            "/volunteer/hours".to_string(),
            "/inbox".to_string(),
            "/board".to_string(),
            format!("/orders/{order}"),
            format!("/assignments/{order}"),
            format!("/board/orders/{order}"),
        ] {
            self.get(w, who, s, &path).await;
        }
    }
}

#[tokio::test]
async fn no_log_line_and_no_unentitled_answer_carries_personal_data() {
    crate::helpers::logs::start();

    let w = world().await;
    w.mode("sequential", 1).await;
    w.volunteer("13700000001", 1.0, &[], Flaw::default()).await;
    w.volunteer("13700000002", 2.0, &[], Flaw::default()).await;
    let qinhuai = w.app.division("320104").await;
    w.app
        .user(
            "13800000009",
            &[(homefront_domain::Role::Coordinator, Some(qinhuai))],
        )
        .await;
    let first = w.app.login("13700000001").await;
    let other = w.app.login("13700000002").await;
    let outsider = w.app.login("13800000009").await;

    let (status, m) = w
        .app
        .post(
            &w.requester,
            "/api/v1/household/members",
            json!({"name": MEMBER_NAME, "relation": "parent", "adcode": "320102",
                   "street": STREET, "phone": MEMBER_PHONE,
                   "longitude": 118.797, "latitude": 32.049}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{m}");
    // A sign-in with the member's phone that fails, and a malformed one.
    w.app
        .call(
            None,
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"phone": MEMBER_PHONE, "password": "not the password"})),
        )
        .await;
    w.app
        .call(
            None,
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({"phone": format!("{MEMBER_PHONE}9"), "password": "x"})),
        )
        .await;
    let order = w
        .order_with(
            "groceries",
            "scan",
            json!({"member_id": m["id"], "contact_phone": CONTACT_PHONE, "notes": NOTES}),
        )
        .await;
    w.tick().await;
    let offer = w.open_offers(order).await.pop().expect("an offer");

    let mut seen = Seen::default();
    // Before accepting: the offered volunteer, another, an outsider.
    seen.all(&w, "offered volunteer before accept", &first, order)
        .await;
    seen.all(&w, "other volunteer", &other, order).await;
    seen.all(&w, "coordinator of Qinhuai", &outsider, order)
        .await;

    assert_eq!(accept(&w.app, &first, offer.id).await.0, StatusCode::OK);
    // Control: the assigned volunteer now sees the address, so a leak
    // would show up in the same views.
    let (_, own) = w.app.get(&first, &format!("/api/v1/orders/{order}")).await;
    assert!(
        own.to_string().contains(STREET),
        "the assigned volunteer should see the street: {own}"
    );
    seen.all(&w, "other volunteer after accept", &other, order)
        .await;
    seen.all(&w, "coordinator of Qinhuai after accept", &outsider, order)
        .await;

    w.app.clock.set(CHECK_IN);
    let path = format!("/api/v1/orders/{order}/check-in");
    assert_eq!(w.app.post(&first, &path, json!({})).await.0, StatusCode::OK);
    w.app.clock.set(CHECK_OUT);
    let path = format!("/api/v1/orders/{order}/check-out");
    assert_eq!(w.app.post(&first, &path, json!({})).await.0, StatusCode::OK);
    // The workers' passes log too.
    notify::deliver_pass(&w.app.state()).await.unwrap();
    workers::fulfilment_pass(&w.app.state()).await.ok();

    seen.all(&w, "assigned volunteer after completion", &first, order)
        .await;
    seen.all(&w, "other volunteer after completion", &other, order)
        .await;
    seen.all(
        &w,
        "coordinator of Qinhuai after completion",
        &outsider,
        order,
    )
    .await;

    // The in-scope coordinator sees the data: the scan looks for the forms
    // the answers really use.
    let (_, list) = w
        .app
        .get(&w.coordinator, &format!("/api/v1/orders/{order}"))
        .await;
    assert!(!hits(&list.to_string()).is_empty(), "control: {list}");

    let mut leaks = Vec::new();
    for (what, body) in &seen.0 {
        let h = hits(body);
        if !h.is_empty() {
            leaks.push(format!("{what}: {h:?}"));
        }
    }
    let logs = crate::helpers::logs::stop();
    assert!(
        logs.contains("/api/v1/orders") && logs.lines().count() > 100,
        "the capture saw the traffic: {} lines",
        logs.lines().count()
    );
    // Logs carry no password and no session token either (bearer tokens
    // go in every request above).
    let secrets = [
        crate::helpers::PASSWORD.to_string(),
        "not the password".to_string(),
        first.token.clone(),
        other.token.clone(),
        outsider.token.clone(),
        w.requester.token.clone(),
        w.coordinator.token.clone(),
    ];
    for line in logs.lines() {
        let mut h = hits(line);
        h.extend(
            secrets
                .iter()
                .filter(|t| line.contains(t.as_str()))
                .cloned(),
        );
        if !h.is_empty() {
            leaks.push(format!("log line {line:?}: {h:?}"));
        }
    }
    assert!(
        leaks.is_empty(),
        "personal data leaked:\n{}",
        leaks.join("\n")
    );
}
