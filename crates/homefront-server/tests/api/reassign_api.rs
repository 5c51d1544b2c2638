//! `POST /api/v1/orders/{id}/reassign` over HTTP: a coordinator takes a
//! live assignment from its volunteer with a reason and gives the order to
//! another, straight away or as an offer; bad input names the field and
//! changes nothing.

use homefront_domain::order_state::{EventAction, OrderState};
use reqwest::StatusCode;
use serde_json::json;

use crate::dispatch::{Flaw, World, accept, world};

/// An order accepted by the first of three volunteers; returns the order
/// and the three account ids.
async fn assigned(w: &World) -> (i64, [i64; 3]) {
    w.mode("sequential", 1).await;
    let first = w.volunteer("13900000001", 0.5, &[], Flaw::default()).await;
    let second = w.volunteer("13900000002", 1.0, &[], Flaw::default()).await;
    let third = w.volunteer("13900000003", 2.0, &[], Flaw::default()).await;
    let order = w.order("groceries", "g-1").await;
    w.tick().await;
    let offer = w.open_offers(order).await.remove(0);
    assert_eq!(offer.volunteer_user_id, first);
    let s = w.app.login("13900000001").await;
    let (status, body) = accept(&w.app, &s, offer.id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (order, [first, second, third])
}

#[tokio::test]
async fn reassign_refuses_bad_input_naming_the_field_and_changes_nothing() {
    let w = world().await;
    let (order, [first, second, _]) = assigned(&w).await;
    let path = format!("/api/v1/orders/{order}/reassign");
    for (body, field, code) in [
        (
            json!({"reason": " ", "volunteer_user_id": second}),
            "reason",
            "reason_required",
        ),
        (
            json!({"reason": "联系不上", "volunteer_user_id": second, "how": "push"}),
            "how",
            "invalid_how",
        ),
        (
            json!({"reason": "联系不上", "volunteer_user_id": first}),
            "volunteer_user_id",
            "same_volunteer",
        ),
        (
            json!({"reason": "联系不上", "volunteer_user_id": 999_999}),
            "volunteer_user_id",
            "unknown_volunteer",
        ),
    ] {
        let (status, err) = w.app.post(&w.coordinator, &path, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {err}");
        assert_eq!(err["field"], field, "{body}: {err}");
        assert_eq!(err["code"], code, "{body}: {err}");
        assert!(!err["message"].as_str().unwrap().is_empty());
    }
    // The requester may see the order but not reassign it.
    let (status, _) = w
        .app
        .post(
            &w.requester,
            &path,
            json!({"reason": "想换人", "volunteer_user_id": second}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A coordinator of another county does not see the order at all.
    w.app
        .user(
            "13800000009",
            &[(
                homefront_domain::Role::Coordinator,
                Some(w.app.division("320104").await),
            )],
        )
        .await;
    let other = w.app.login("13800000009").await;
    let (status, _) = w
        .app
        .post(
            &other,
            &path,
            json!({"reason": "联系不上", "volunteer_user_id": second}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let o = w.app.store.order(order).await.unwrap().unwrap();
    assert_eq!(o.state, OrderState::Assigned);
    assert_eq!(o.assignee_user_id, Some(first));
    assert!(
        !w.app
            .store
            .order_events(order)
            .await
            .unwrap()
            .iter()
            .any(|e| e.action == EventAction::Reassign)
    );
}

#[tokio::test]
async fn reassign_assigns_straight_away_with_the_reason_in_the_log() {
    let w = world().await;
    let (order, [first, second, _]) = assigned(&w).await;
    let (status, body) = w
        .app
        .post(
            &w.coordinator,
            &format!("/api/v1/orders/{order}/reassign"),
            json!({"reason": "电话一直打不通", "volunteer_user_id": second}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "assigned");
    assert_eq!(body["assignee_user_id"], second);
    let events = w.app.store.order_events(order).await.unwrap();
    let n = events.len();
    assert_eq!(events[n - 2].action, EventAction::Reassign);
    assert_eq!(events[n - 2].reason.as_deref(), Some("电话一直打不通"));
    assert_eq!(events[n - 2].actor_user_id, Some(w.coordinator.user_id));
    assert_eq!(events[n - 1].action, EventAction::Assign);
    // The earlier volunteer no longer sees the address.
    let s = w.app.login("13900000001").await;
    let (status, body) = w.app.get(&s, &format!("/api/v1/orders/{order}")).await;
    assert!(
        status == StatusCode::NOT_FOUND || body.get("street").is_none(),
        "{body}"
    );
    // Once cancelled, the order has no live assignment to reassign.
    let (status, _) = w
        .app
        .post(
            &w.coordinator,
            &format!("/api/v1/orders/{order}/cancel"),
            json!({"reason": "家属已自行解决"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, err) = w
        .app
        .post(
            &w.coordinator,
            &format!("/api/v1/orders/{order}/reassign"),
            json!({"reason": "再试", "volunteer_user_id": first}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert_eq!(err["code"], "illegal_transition");
}

#[tokio::test]
async fn reassign_as_an_offer_puts_the_order_back_in_dispatch_with_one_offer() {
    let w = world().await;
    let (order, [first, _, third]) = assigned(&w).await;
    let (status, body) = w
        .app
        .post(
            &w.coordinator,
            &format!("/api/v1/orders/{order}/reassign"),
            json!({"reason": "志愿者临时生病", "volunteer_user_id": third, "how": "offer"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "dispatching");
    assert!(body["assignee_user_id"].is_null(), "{body}");
    let offers = w.open_offers(order).await;
    assert_eq!(offers.len(), 1, "{offers:?}");
    assert_eq!(offers[0].volunteer_user_id, third);
    assert_ne!(offers[0].volunteer_user_id, first);
    let s = w.app.login("13900000003").await;
    let (status, body) = accept(&w.app, &s, offers[0].id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let o = w.app.store.order(order).await.unwrap().unwrap();
    assert_eq!(o.assignee_user_id, Some(third));
}

#[tokio::test]
async fn an_order_taken_back_from_a_suspended_volunteer_can_be_accepted_by_another() {
    let w = world().await;
    let (order, [first, second, _]) = assigned(&w).await;
    let (status, body) = w
        .app
        .post(
            &w.coordinator,
            &format!("/api/v1/volunteers/{first}/vetting"),
            json!({"target_state": "suspended", "note": "投诉调查"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    w.tick().await;
    let again = w.open_offers(order).await;
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0].volunteer_user_id, second);
    let s = w.app.login("13900000002").await;
    let (status, body) = accept(&w.app, &s, again[0].id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let o = w.app.store.order(order).await.unwrap().unwrap();
    assert_eq!(o.state, OrderState::Assigned);
    assert_eq!(o.assignee_user_id, Some(second));
    // The suspended volunteer's accept stays on the record.
    let offers = w.app.store.offers_of_order(order).await.unwrap();
    assert!(
        offers
            .iter()
            .any(|f| f.volunteer_user_id == first && f.state == "accepted")
    );
}
