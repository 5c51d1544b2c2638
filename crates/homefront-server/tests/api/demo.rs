//! The demo simulator (product issue 10): a short run through the real
//! application, its report recomputed independently from the tables, and
//! determinism (same seed, same report; another seed, another report).
//! And the live demo's staging: an order of the login requester reaches
//! the login volunteer first, and goes on to others when that offer expires.

use homefront_server::demo::scenario::{self, stage_live};
use homefront_server::demo::{SimOptions, simulate};
use homefront_server::dispatcher;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{Connection, Row};

use crate::helpers::{T0, TestApp, password_hash};

fn percentile(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

async fn scalar(c: &mut sqlx::SqliteConnection, sql: &'static str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(&mut *c)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[tokio::test]
async fn a_short_simulation_reports_what_the_tables_hold() {
    let dir = std::env::temp_dir().join(format!(
        "homefront-demo-test-{}",
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("sim.db").display());
    let opts = SimOptions {
        days: 2,
        seed: 1,
        database_url: Some(url.clone()),
        policy: None,
        fairness_weight: None,
        hold_seconds: None,
    };
    let report = simulate(&opts, |_, _| {}).await.expect("simulate");

    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let placed = scalar(&mut c, "select count(*) from service_order").await;
    let completed = scalar(
        &mut c,
        "select count(*) from service_order where state in ('completed', 'confirmed')",
    )
    .await;
    let minutes = scalar(&mut c, "select coalesce(sum(minutes), 0) from hours_entry").await;
    let active = scalar(
        &mut c,
        "select count(*) from volunteer where vetting_state = 'active'",
    )
    .await;
    let escalations = scalar(
        &mut c,
        "select count(*) from order_event where action = 'escalate'",
    )
    .await;
    let mut waits: Vec<i64> = sqlx::query(
        "select f.responded_at, o.created_at from offer f
         join service_order o on o.id = f.order_id where f.state = 'accepted'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get::<i64, _>(0) - r.get::<i64, _>(1))
    .collect();
    waits.sort_unstable();
    // Every volunteer keeps a rota: their shift as weekly windows.
    let without_windows = scalar(
        &mut c,
        "select count(*) from volunteer v where not exists
           (select 1 from availability_window w where w.volunteer_id = v.user_id)",
    )
    .await;
    c.close().await.ok();

    assert!(placed > 20, "orders placed over two days: {placed}");
    assert!(completed > 0 && minutes > 0, "{report:?}");
    assert_eq!(report.orders_placed, placed);
    assert_eq!(report.orders_completed, completed);
    assert_eq!(
        report.service_hours,
        (minutes as f64 / 60.0 * 10.0).round() / 10.0
    );
    // 46 + 6 + 6 + 20 + 10 + 33 + 12 + 24 volunteers in the scenario.
    assert_eq!(report.volunteers_active, active);
    assert_eq!(active, 157);
    assert_eq!(report.escalations, escalations);
    assert_eq!(report.accept_p50_s, percentile(&waits, 0.5));
    assert_eq!(report.accept_p90_s, percentile(&waits, 0.9));
    assert_eq!(report.provincial_team.volunteers_active, 46);
    let by_item: i64 = report.by_item.values().map(|o| o.placed).sum();
    let by_city: i64 = report.by_city.values().map(|o| o.placed).sum();
    assert_eq!((by_item, by_city), (placed, placed));
    assert_eq!(without_windows, 0);
    // The hindsight optimum is a lower bound over the same orders: each
    // order's nearest would-be acceptor, the actual one included.
    assert!(report.travel_km > 0.0, "{report:?}");
    assert!(
        report.travel_hindsight_optimum_km > 0.0
            && report.travel_hindsight_optimum_km <= report.travel_km,
        "{} km against an optimum of {} km",
        report.travel_km,
        report.travel_hindsight_optimum_km
    );
    assert!(report.unfulfilled_while_reachable <= report.orders_unfulfilled);
    std::fs::remove_dir_all(&dir).ok();

    // Same seed: the same report; another seed: another one.
    let again = simulate(
        &SimOptions {
            database_url: None,
            ..opts.clone()
        },
        |_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(again, report);
    let other = simulate(
        &SimOptions {
            seed: 2,
            database_url: None,
            ..opts
        },
        |_, _| {},
    )
    .await
    .unwrap();
    assert_ne!(other, report);
}

#[tokio::test]
async fn the_live_demo_offers_the_login_requesters_order_to_the_login_volunteer_first() {
    let app = TestApp::spawn().await;
    let store = &app.store;
    let built = scenario::build(store, T0, &password_hash().await, 7)
        .await
        .unwrap();
    let neighbour = stage_live(store, &built, T0).await.unwrap();
    for v in &built.volunteers {
        store.set_duty(v.user_id, true, None, T0).await.unwrap();
    }
    let volunteer = built.login_volunteer_id;
    for h in [built.login_requester_id, neighbour.requester_id] {
        let household = store.household_of(h, T0.epoch_ms()).await.unwrap();
        let paired: Vec<i64> = store
            .live_pairings(household.id)
            .await
            .unwrap()
            .iter()
            .map(|p| p.volunteer_user_id)
            .collect();
        assert_eq!(paired, [volunteer]);
    }

    // The requester the README signs in as places groceries for a parent.
    let requester = app.login("13800010001").await;
    assert_eq!(requester.user_id, built.login_requester_id);
    let (_, household) = app.get(&requester, "/api/v1/household").await;
    let member = household["members"][0]["id"].as_i64().unwrap();
    let groceries = store
        .service_items(false)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.code == "groceries")
        .unwrap();
    let resp = app
        .client
        .post(format!("{}/api/v1/orders", app.base))
        .bearer_auth(&requester.token)
        .header("Idempotency-Key", "demo-login-order")
        .json(&json!({"item_id": groceries.id, "member_id": member,
                      "window_start": "2020-02-12T18:30", "window_end": "2020-02-12T21:00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let order = resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap();

    // The login volunteer alone, for the item's whole offer timeout, about
    // 500 m away.
    dispatcher::tick(&app.state()).await.unwrap();
    let offers = store.offers_of_order(order).await.unwrap();
    assert_eq!(offers.len(), 1, "{offers:?}");
    let first = &offers[0];
    assert_eq!(
        (first.volunteer_user_id, first.via.as_str()),
        (volunteer, "pairing")
    );
    assert_eq!(
        first.expires_at - first.offered_at,
        groceries.offer_timeout_seconds * 1000
    );
    assert!(first.distance_km.is_some_and(|km| km < 1.0), "{first:?}");
    let login = app.login("13900000001").await;
    let (status, listed) = app.get(&login, "/api/v1/offers").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed[0]["id"].as_i64(), Some(first.id), "{listed}");

    // Nobody took it: the province's broadcast hands it to the 3 nearest others.
    app.clock
        .set(T0.plus_ms(groceries.offer_timeout_seconds * 1000 + 1_000));
    dispatcher::tick(&app.state()).await.unwrap();
    let offers = store.offers_of_order(order).await.unwrap();
    assert_eq!(offers[0].state, "expired");
    let next: Vec<_> = offers.iter().skip(1).collect();
    assert_eq!(next.len(), 3, "{offers:?}");
    assert!(
        next.iter().all(|o| o.via == "broadcast"
            && o.state == "offered"
            && o.volunteer_user_id != volunteer),
        "{offers:?}"
    );
}
