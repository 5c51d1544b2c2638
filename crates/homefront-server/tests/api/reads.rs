//! Lists read by sets: the statements one request of the order list, the
//! offer list and the board runs do not grow with the rows it shows, so a
//! per-row read (an N+1) cannot come back unnoticed.

use reqwest::StatusCode;

use crate::dispatch::{Flaw, World, world};
use crate::helpers::T0;
use crate::ui::{browser, sign_in};

/// Statements the store ran for each of: `GET /api/v1/orders` as the
/// county's coordinator, `GET /api/v1/offers?show=all` as the volunteer
/// and the board page as the coordinator, with `n` orders each offered
/// to the volunteer. Each is sent once first (a connection prepares its
/// statements on first use), then counted on the second send.
async fn list_statements(n: usize) -> (u64, u64, u64) {
    let w = world().await;
    let v = w.volunteer("13900000001", 0.5, &[], Flaw::default()).await;
    for i in 0..n {
        let order = w.order("groceries", &format!("reads-{i}")).await;
        offer(&w, order, v).await;
    }
    let volunteer = w.app.login("13900000001").await;
    let client = browser();
    sign_in(&w.app, &client, "13800000002", "/board").await;
    let board = || async {
        let resp = client
            .get(format!("{}/board", w.app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.text().await.unwrap()
    };
    let store = &w.app.store;

    let orders = || async {
        let (status, body) = w.app.get(&w.coordinator, "/api/v1/orders").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    };
    orders().await;
    let before = store.statements();
    let body = orders().await;
    let orders_cost = store.statements() - before;
    assert_eq!(listed(&body), n, "{body}");

    let offers = || async {
        let (status, body) = w.app.get(&volunteer, "/api/v1/offers?show=all").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    };
    offers().await;
    let before = store.statements();
    let body = offers().await;
    let offers_cost = store.statements() - before;
    assert_eq!(listed(&body), n, "{body}");

    board().await;
    let before = store.statements();
    let html = board().await;
    let board_cost = store.statements() - before;
    assert!(html.matches("/board/orders/").count() >= n, "{html}");

    (orders_cost, offers_cost, board_cost)
}

/// Rows of a list answer (a JSON array, or an object's `items`).
fn listed(body: &serde_json::Value) -> usize {
    body.as_array()
        .or_else(|| body["items"].as_array())
        .map_or(0, Vec::len)
}

/// Writes an open offer of `order` to volunteer `v`, as a dispatcher
/// round would.
async fn offer(w: &World, order: i64, v: i64) {
    let offer = homefront_store::offers::NewOffer {
        order_id: order,
        volunteer_user_id: v,
        via: "manual",
        round: 1,
        candidate_rank: 1,
        distance_km: Some(0.5),
        cost: 0.5,
        explanation: "{}".into(),
        expires_at: T0.epoch_ms() + 3_600_000,
        offered_by: None,
    };
    assert!(
        w.app
            .store
            .write_round(order, &[offer], T0.epoch_ms())
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn the_order_list_the_offer_list_and_the_board_read_by_sets() {
    let (orders_2, offers_2, board_2) = list_statements(2).await;
    let (orders_20, offers_20, board_20) = list_statements(20).await;
    assert_eq!(
        orders_2, orders_20,
        "the order list: {orders_2} statements for 2 orders, {orders_20} for 20"
    );
    assert_eq!(
        offers_2, offers_20,
        "the offer list: {offers_2} statements for 2 offers, {offers_20} for 20"
    );
    assert_eq!(
        board_2, board_20,
        "the board: {board_2} statements for 2 orders, {board_20} for 20"
    );
}
