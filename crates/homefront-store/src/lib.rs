//! All of Homefront's SQL: connection, migrations per dialect, repositories.
//!
//! One code path serves both engines through sqlx's `Any` driver. Queries use
//! `$1`-style placeholders, which SQLite and PostgreSQL both accept, and the
//! schema is portable (see `migrations/`): BIGINT ids, epoch-millisecond
//! timestamps, TEXT enums with CHECK, 0/1 booleans.
#![forbid(unsafe_code)]

pub mod availability;
pub mod backup;
pub mod catalogue;
pub mod credentials;
pub mod dispatch;
pub mod divisions;
pub mod figures;
pub mod fulfilment;
pub mod households;
pub mod offers;
pub mod orders;
pub mod org_units;
pub mod outbox;
pub mod pairings;
pub mod reports;
pub mod roster;
pub mod sessions;
pub mod users;
pub mod volunteers;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Executor, Transaction};
use thiserror::Error;

/// A write transaction on either engine.
pub type Tx = Transaction<'static, Any>;

/// The database engine behind a [`Store`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file (the default).
    Sqlite,
    /// PostgreSQL server (production).
    Postgres,
}

impl Backend {
    /// `"sqlite"` or `"postgres"`, as `/healthz` reports it.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Errors from the store, already sorted into what callers act on.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A unique constraint was violated; carries the constraint or index name
    /// when the engine reports one.
    #[error("duplicate value violates {0}")]
    Conflict(String),
    /// A foreign key pointed at a missing row.
    #[error("referenced record does not exist ({0})")]
    MissingReference(String),
    /// The database URL is not usable.
    #[error("database URL not supported: {0}; use sqlite://FILE or postgres://USER@HOST:PORT/DB")]
    BadUrl(String),
    /// Any other database error.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The order's state does not allow the action (the domain's verdict).
    #[error(transparent)]
    Transition(#[from] homefront_domain::order_state::TransitionError),
    /// A compare-and-set found the record changed since it was read.
    #[error("the record changed while this request was handled; reload and try again")]
    Stale,
}

/// Store result.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Maps engine errors to [`StoreError`]: unique and foreign-key violations
/// become `Conflict` / `MissingReference` so the API can answer 409 / 422.
pub fn classify(err: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &err {
        let name = db
            .constraint()
            .map(str::to_string)
            .unwrap_or_else(|| db.message().to_string());
        match db.kind() {
            sqlx::error::ErrorKind::UniqueViolation => return StoreError::Conflict(name),
            sqlx::error::ErrorKind::ForeignKeyViolation => {
                return StoreError::MissingReference(name);
            }
            _ => {}
        }
    }
    StoreError::Database(err)
}

/// Like [`classify`] for a borrowed error: `Some` for unique and
/// foreign-key violations, `None` otherwise.
pub fn classify_ref(err: &sqlx::Error) -> Option<StoreError> {
    let sqlx::Error::Database(db) = err else {
        return None;
    };
    let name = db.constraint().unwrap_or("").to_string();
    match db.kind() {
        sqlx::error::ErrorKind::UniqueViolation => Some(StoreError::Conflict(name)),
        sqlx::error::ErrorKind::ForeignKeyViolation => Some(StoreError::MissingReference(name)),
        _ => None,
    }
}

/// The connection pool and the engine it talks to.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// Default SQLite URL: the file `./homefront.db`, created if missing.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://homefront.db";

impl Store {
    /// Opens a pool for `url` (`sqlite://FILE`, `sqlite::memory:` or
    /// `postgres://…`). SQLite files are created when missing and run in WAL
    /// mode with a 10 s busy timeout and foreign keys on.
    ///
    /// # Errors
    /// [`StoreError::BadUrl`] for other schemes; connection errors otherwise.
    #[tracing::instrument(skip_all)]
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if url.starts_with("sqlite:") {
            let url = if url.contains("mode=") || url.contains(":memory:") {
                url.to_string()
            } else if url.contains('?') {
                format!("{url}&mode=rwc")
            } else {
                format!("{url}?mode=rwc")
            };
            (Backend::Sqlite, url)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(StoreError::BadUrl(redact_url(url)));
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the single writer; the busy
                        // timeout makes a second writer wait instead of failing.
                        conn.execute("pragma journal_mode = wal").await?;
                        conn.execute("pragma busy_timeout = 10000").await?;
                        conn.execute("pragma foreign_keys = on").await?;
                        conn.execute("pragma synchronous = normal").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Store { pool, backend })
    }

    /// Applies the embedded migrations of this engine's dialect.
    ///
    /// # Errors
    /// [`StoreError::Migrate`] when a migration fails or the applied history
    /// differs from the embedded one.
    #[tracing::instrument(skip_all)]
    pub async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    /// The engine behind this store.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for read queries.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begins a read-then-write transaction. On SQLite it is `BEGIN
    /// IMMEDIATE`, which takes the write lock up front so two such
    /// transactions serialise instead of failing at commit.
    ///
    /// # Errors
    /// Connection or lock-timeout errors.
    pub async fn begin_write(&self) -> Result<Tx> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("begin immediate").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(tx)
    }

    /// Checks that the database answers (for `/readyz` and `/healthz`).
    ///
    /// # Errors
    /// The database error when it does not.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections to return.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The URL with any password replaced by `***`, for logs and errors.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// `0`/`1` as stored for booleans.
pub(crate) fn flag(b: bool) -> i64 {
    i64::from(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/hf"),
            "postgres://app:***@db:5432/hf"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/x"),
            "postgres://postgres@127.0.0.1/x"
        );
    }
}
