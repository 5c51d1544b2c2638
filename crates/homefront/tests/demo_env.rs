//! `homefront demo simulate` takes its database from
//! `HOMEFRONT_DATABASE_URL` when `--database-url` is not given, as `serve`
//! and every other command do: the replay is written there, and a
//! database that is no longer empty is refused.
//!
//! SQLite by default; `HOMEFRONT_TEST_DB=postgres` runs it on a fresh
//! PostgreSQL database, as the API suite does.

use std::process::{Command, Output};

use homefront_store::Store;
use serde_json::Value;

mod support;
use support::Db;

fn simulate(db: &Db) -> Output {
    Command::new(env!("CARGO_BIN_EXE_homefront"))
        .args(["demo", "simulate", "--days", "1", "--seed", "3", "--json"])
        .env("HOMEFRONT_DATABASE_URL", &db.url)
        .env_remove("HOMEFRONT_CONFIG")
        // No homefront.toml there: the environment is the only setting.
        .current_dir(&db.dir)
        .output()
        .expect("run homefront")
}

#[tokio::test]
async fn demo_simulate_replays_into_the_database_the_environment_names() {
    let db = Db::new("simenv").await;
    let out = simulate(&db);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("the --json report");
    let placed = report["orders_placed"].as_i64().unwrap();
    assert!(placed > 0, "{report}");
    let store = Store::connect(&db.url).await.unwrap();
    assert_eq!(store.count_orders().await.unwrap(), placed);
    store.close().await;

    // That database now holds the replay: a second run refuses it.
    let out = simulate(&db);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not empty"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
