//! The dispatcher keeps dispatching until an order is served or its window
//! passes: re-offers after a cooldown, the load cap counted everywhere,
//! escalation that widens the pool, ranking by full cost and rank-aware
//! acceptance. Over HTTP on the manual clock, the dispatcher run by
//! `dispatcher::tick` as the worker would.

use homefront_domain::Timestamp;
use homefront_domain::order_state::OrderState;
use reqwest::StatusCode;
use serde_json::json;

use crate::dispatch::{Flaw, accept, world};

/// A volunteer who let an offer expire is offered the same order again
/// once the unit's cooldown (default 10 min) has passed, accepts and is
/// assigned; a volunteer who declined is never offered it again.
#[tokio::test]
async fn an_expired_offer_is_made_again_after_the_cooldown_and_served() {
    let w = world().await;
    w.mode("sequential", 1).await;
    let near = w.volunteer("13700000001", 0.5, &[], Flaw::default()).await;
    let next = w.volunteer("13700000002", 2.0, &[], Flaw::default()).await;
    let order = w.order("groceries", "cooldown").await;
    w.tick().await;
    let first = w.open_offers(order).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].volunteer_user_id, near);

    // The nearest lets it expire: the next candidate gets it, and declines.
    let expired_at = first[0].expires_at;
    w.app.clock.set(Timestamp(expired_at));
    w.tick().await;
    let second = w.open_offers(order).await;
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].volunteer_user_id, next);
    let s_next = w.app.login("13700000002").await;
    let (status, body) = w
        .app
        .post(
            &s_next,
            &format!("/api/v1/offers/{}/decline", second[0].id),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Within the cooldown nobody may be offered it.
    w.app.clock.set(Timestamp(expired_at + 10 * 60_000 - 1));
    w.tick().await;
    assert!(w.open_offers(order).await.is_empty());
    assert_eq!(
        w.app.store.order(order).await.unwrap().unwrap().state,
        OrderState::Dispatching
    );

    // After it, the first volunteer is offered the order again; the one
    // who declined is not.
    w.app.clock.set(Timestamp(expired_at + 10 * 60_000));
    w.tick().await;
    let third = w.open_offers(order).await;
    assert_eq!(third.len(), 1, "{third:?}");
    assert_eq!(third[0].volunteer_user_id, near);
    assert_eq!(third[0].round, 3);
    let s_near = w.app.login("13700000001").await;
    let (status, body) = accept(&w.app, &s_near, third[0].id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let o = w.app.store.order(order).await.unwrap().unwrap();
    assert_eq!(
        (o.state, o.assignee_user_id),
        (OrderState::Assigned, Some(near))
    );
    let offers_to_next = w
        .app
        .store
        .offers_of_order(order)
        .await
        .unwrap()
        .iter()
        .filter(|o| o.volunteer_user_id == next)
        .count();
    assert_eq!(offers_to_next, 1, "a decline is final for the order");
}

/// The cooldown is set per unit with the mode, and checked.
#[tokio::test]
async fn the_reoffer_cooldown_is_a_unit_setting() {
    let w = world().await;
    let path = format!("/api/v1/org-units/{}/dispatch-setting", w.xuanwu);
    let (status, body) = w.app.get(&w.coordinator, &path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reoffer_cooldown_minutes"], 10);
    let (status, body) = w
        .app
        .call(
            Some(&w.coordinator),
            reqwest::Method::PUT,
            &path,
            Some(json!({"mode": "sequential", "reoffer_cooldown_minutes": 1441})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str(), body["field"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("out_of_range"),
            Some("reoffer_cooldown_minutes")
        )
    );
    let (status, body) = w
        .app
        .call(
            Some(&w.coordinator),
            reqwest::Method::PUT,
            &path,
            Some(json!({"mode": "sequential", "reoffer_cooldown_minutes": 0})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // With no cooldown, an expired offer is made again at the next pass.
    let v = w.volunteer("13700000001", 0.5, &[], Flaw::default()).await;
    let order = w.order("groceries", "no-cooldown").await;
    w.tick().await;
    let first = w.open_offers(order).await.pop().unwrap();
    w.app.clock.set(Timestamp(first.expires_at));
    w.tick().await;
    let again = w.open_offers(order).await;
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].volunteer_user_id, again[0].round), (v, 2));
}
