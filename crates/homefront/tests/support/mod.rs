//! Test support shared by the binary's tests: a fresh database per test.
#![allow(dead_code)]

use std::path::PathBuf;

use sqlx::Connection;

/// A fresh database: a SQLite file in a temporary directory, or a new
/// PostgreSQL database dropped at the end. The directory also holds the
/// config file.
pub struct Db {
    /// Its URL.
    pub url: String,
    /// A temporary directory of its own (the SQLite file, config files).
    pub dir: PathBuf,
    postgres: Option<(String, String)>,
}

impl Db {
    /// Creates it (named after `prefix`).
    pub async fn new(prefix: &str) -> Db {
        let id = format!(
            "{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let dir = std::env::temp_dir().join(format!("homefront-{prefix}-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        if std::env::var("HOMEFRONT_TEST_DB").is_ok_and(|v| v == "postgres") {
            let admin_url = std::env::var("HOMEFRONT_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
            let name = format!("hf_{prefix}_{id}");
            let mut c = sqlx::PgConnection::connect(&admin_url)
                .await
                .expect("connect to the PostgreSQL test server");
            sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
                .execute(&mut c)
                .await
                .unwrap();
            let base = admin_url
                .rsplit_once('/')
                .map_or(admin_url.as_str(), |(b, _)| b);
            Db {
                url: format!("{base}/{name}"),
                dir,
                postgres: Some((admin_url, name)),
            }
        } else {
            Db {
                url: format!("sqlite://{}", dir.join("homefront.db").display()),
                dir,
                postgres: None,
            }
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
        if let Some((admin_url, name)) = self.postgres.take() {
            // Drop runs inside the test's runtime: use a thread of our own.
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async {
                    if let Ok(mut c) = sqlx::PgConnection::connect(&admin_url).await {
                        let sql = format!("drop database if exists {name} with (force)");
                        sqlx::query(sqlx::AssertSqlSafe(sql))
                            .execute(&mut c)
                            .await
                            .ok();
                    }
                });
            })
            .join()
            .ok();
        }
    }
}
