//! The demo simulator (product issue 10): a short run through the real
//! application, its report recomputed independently from the tables, and
//! determinism (same seed, same report; another seed, another report).

use homefront_server::demo::{SimOptions, simulate};
use sqlx::{Connection, Row};

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
