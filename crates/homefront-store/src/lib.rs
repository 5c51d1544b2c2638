//! All of Homefront's SQL: connection, migrations per dialect, repositories.
//!
//! One code path serves both engines through sqlx's `Any` driver. Queries use
//! `$1`-style placeholders, which SQLite and PostgreSQL both accept, and the
//! schema is portable (see `migrations/`): BIGINT ids, epoch-millisecond
//! timestamps, TEXT enums with CHECK, 0/1 booleans.
//!
//! # Nullable doubles
//! Statements that bind a nullable `DOUBLE PRECISION` (coordinates, a
//! remote offer's distance) are not kept prepared (`.persistent(false)`):
//! sqlx 0.9.0's `Any` driver sends a `None::<f64>` to PostgreSQL as a
//! `real` (float4) NULL (its `Real`/`Double` null mapping is swapped), and a
//! prepared statement keeps the parameter types of its first execution on
//! a connection, so a later execution with a value (an 8-byte float8)
//! failed with "incorrect binary data format in bind parameter". Parsed
//! each time, a statement takes each execution's own types.
#![forbid(unsafe_code)]

pub mod availability;
pub mod backup;
pub mod bookings;
pub mod burst;
pub mod catalogue;
pub mod credentials;
pub mod decode;
pub mod dispatch;
pub mod divisions;
pub mod figures;
pub mod fulfilment;
pub mod households;
pub mod leader;
pub mod offers;
pub mod orders;
pub mod org_units;
pub mod outbox;
pub mod pairings;
pub mod push;
pub mod reports;
pub mod roster;
pub mod sessions;
pub mod users;
pub mod volunteers;
pub mod writer;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyConnection, AnyPool, Connection, Executor, Transaction};
use thiserror::Error;

use crate::outbox::{LiveChange, LiveNotifier};
use crate::writer::{WriteUnit, Writer};

/// A write transaction on either engine, from [`Store::begin_write`].
///
/// It derefs to the connection, so queries run on `&mut *tx`. On
/// PostgreSQL it is an ordinary transaction of the pool; on SQLite it is a
/// unit of work on the single write connection, committed together with
/// the units around it (see [`writer`]). Either way [`commit`](Tx::commit)
/// returns once the write is durable, and dropping it uncommitted rolls
/// it back.
#[derive(Debug)]
pub struct Tx {
    inner: TxInner,
    /// Live-change notices to send once committed (PostgreSQL).
    live: Vec<LiveChange>,
    notifier: Option<LiveNotifier>,
    /// The store's statement counter (see [`Store::statements`]).
    statements: Arc<AtomicU64>,
}

#[derive(Debug)]
enum TxInner {
    Pool(Transaction<'static, Any>),
    Unit(WriteUnit),
}

impl std::ops::Deref for Tx {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        match &self.inner {
            TxInner::Pool(t) => t,
            TxInner::Unit(u) => u.conn_ref(),
        }
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        // Every statement of a transaction runs on `&mut *tx`.
        self.statements.fetch_add(1, Ordering::Relaxed);
        match &mut self.inner {
            TxInner::Pool(t) => t,
            TxInner::Unit(u) => u.conn(),
        }
    }
}

impl Tx {
    /// Commits, returning once the write is durable; then sends the live
    /// notices recorded with [`notify_live`](Tx::notify_live).
    ///
    /// # Errors
    /// The commit's error; nothing was written then.
    pub async fn commit(self) -> Result<()> {
        match self.inner {
            TxInner::Pool(t) => t.commit().await?,
            TxInner::Unit(u) => u.commit().await?,
        }
        if let Some(n) = &self.notifier {
            n.send(self.live);
        }
        Ok(())
    }

    /// Rolls back; nothing of the transaction is written.
    ///
    /// # Errors
    /// Connection errors (PostgreSQL).
    pub async fn rollback(self) -> Result<()> {
        match self.inner {
            TxInner::Pool(t) => t.rollback().await?,
            TxInner::Unit(u) => u.rollback(),
        }
        Ok(())
    }

    /// Rolls back, and returns only once every write this transaction may
    /// have read is durable: on SQLite a unit can read what an earlier unit
    /// of its batch wrote before that batch commits. Use it when answering
    /// from such a read (an idempotent replay).
    ///
    /// # Errors
    /// The batch's commit error (SQLite); connection errors (PostgreSQL).
    pub async fn rollback_after_commit(self) -> Result<()> {
        match self.inner {
            TxInner::Pool(t) => t.rollback().await?,
            TxInner::Unit(u) => u.rollback_after_commit().await?,
        }
        Ok(())
    }

    /// Records a live change to announce to every instance once this
    /// transaction has committed (PostgreSQL `NOTIFY`, sent after the
    /// commit so notices never hold up commits; a no-op on SQLite, where
    /// one instance publishes in-process).
    pub fn notify_live(&mut self, change: LiveChange) {
        if self.notifier.is_some() {
            self.live.push(change);
        }
    }
}

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
///
/// Every `sqlx::Error` becomes one through [`From`], which classifies
/// constraint violations (unique, foreign key, check) into their own
/// variants, so a plain `?` never lets one through as a generic database
/// error. The [`Constraint`] they carry is for logs and for
/// [`StoreError::violates`]; it is never shown to a client.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A unique constraint or index was violated.
    #[error("duplicate value violates {0}")]
    Conflict(Constraint),
    /// A foreign key pointed at a missing row.
    #[error("referenced record does not exist ({0})")]
    MissingReference(Constraint),
    /// A CHECK constraint refused a value.
    #[error("value refused by check {0}")]
    CheckViolation(Constraint),
    /// The database URL is not usable.
    #[error("database URL not supported: {0}; use sqlite://FILE or postgres://USER@HOST:PORT/DB")]
    BadUrl(String),
    /// Any other database error (connection, I/O, decoding a stored value).
    #[error(transparent)]
    Database(sqlx::Error),
    /// A migration failed.
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The order's state does not allow the action (the domain's verdict).
    #[error(transparent)]
    Transition(#[from] homefront_domain::order_state::TransitionError),
    /// A compare-and-set found the record changed since it was read.
    #[error("the record changed while this request was handled; reload and try again")]
    Stale,
    /// The write's batch could not be committed (SQLite group commit), or
    /// the writer has stopped; nothing of the write was saved.
    #[error("the write was not saved: {0}")]
    WriteFailed(String),
}

impl From<sqlx::Error> for StoreError {
    /// Sorts constraint violations into their variants; everything else is
    /// [`StoreError::Database`].
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err {
            let constraint = Constraint::of(db.as_ref());
            match db.kind() {
                sqlx::error::ErrorKind::UniqueViolation => return StoreError::Conflict(constraint),
                sqlx::error::ErrorKind::ForeignKeyViolation => {
                    return StoreError::MissingReference(constraint);
                }
                sqlx::error::ErrorKind::CheckViolation => {
                    return StoreError::CheckViolation(constraint);
                }
                _ => {}
            }
        }
        StoreError::Database(err)
    }
}

impl StoreError {
    /// Whether this is the violation of `constraint` (a unique, foreign-key
    /// or check constraint), on either engine.
    pub fn violates(&self, constraint: &ConstraintName) -> bool {
        match self {
            StoreError::Conflict(c)
            | StoreError::MissingReference(c)
            | StoreError::CheckViolation(c) => constraint.matches(c),
            _ => false,
        }
    }
}

/// The constraint an engine named in a violation: PostgreSQL's constraint
/// or index name (`app_user_phone_key`), or what SQLite's message names
/// after "constraint failed: " (`app_user.phone`, `index 'service_item_code'`;
/// empty for a foreign key, which SQLite does not name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Constraint(String);

impl Constraint {
    fn of(db: &dyn sqlx::error::DatabaseError) -> Self {
        if let Some(name) = db.constraint() {
            return Constraint(name.to_string());
        }
        let message = db.message();
        Constraint(
            message
                .split_once("constraint failed: ")
                .map_or("", |(_, what)| what)
                .trim()
                .to_string(),
        )
    }

    /// The name as the engine gave it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "unnamed"
        } else {
            &self.0
        })
    }
}

/// A constraint of the schema as each engine reports its violation, for
/// call sites that map one constraint to one answer
/// ([`StoreError::violates`]). The constants are in [`constraint`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConstraintName {
    /// PostgreSQL's name of the constraint or unique index.
    pub postgres: &'static str,
    /// What SQLite's "constraint failed: ..." message names.
    pub sqlite: &'static str,
}

impl ConstraintName {
    fn matches(&self, c: &Constraint) -> bool {
        c.0 == self.postgres || c.0 == self.sqlite
    }
}

/// The constraints callers map to their own answers (see the migrations).
pub mod constraint {
    use super::ConstraintName;

    /// One account per phone number (`app_user.phone unique`).
    pub const USER_PHONE: ConstraintName = ConstraintName {
        postgres: "app_user_phone_key",
        sqlite: "app_user.phone",
    };
    /// One catalogue item per code within a catalogue (`service_item_code`).
    pub const SERVICE_ITEM_CODE: ConstraintName = ConstraintName {
        postgres: "service_item_code",
        sqlite: "index 'service_item_code'",
    };
    /// One live pairing of a volunteer with a household (`pairing_live`).
    pub const PAIRING_LIVE: ConstraintName = ConstraintName {
        postgres: "pairing_live",
        sqlite: "pairing.household_id, pairing.volunteer_user_id",
    };
    /// One accepted offer per order (`offer_one_accepted`).
    pub const OFFER_ONE_ACCEPTED: ConstraintName = ConstraintName {
        postgres: "offer_one_accepted",
        sqlite: "offer.order_id",
    };
}

/// Store result.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The database: a pool and, on SQLite, the writer task that owns the
/// only write connection.
#[derive(Clone, Debug)]
pub struct Store {
    /// All connections on PostgreSQL; the read-only connections on SQLite.
    pool: AnyPool,
    backend: Backend,
    /// SQLite: the group-commit writer (see [`writer`]).
    writer: Option<Writer>,
    /// SQLite: how to open a connection of our own (migrations, backups).
    sqlite_options: Option<Arc<AnyConnectOptions>>,
    /// PostgreSQL: sends live-change notices after commit.
    live: Option<LiveNotifier>,
    /// How to open a connection of our own (the leader lock's, on PostgreSQL).
    options: Arc<AnyConnectOptions>,
    /// Statements run so far (see [`Store::statements`]).
    statements: Arc<AtomicU64>,
}

/// Default SQLite URL: the file `./homefront.db`, created if missing.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://homefront.db";

/// Read connections of the SQLite pool (each has its own driver thread).
const SQLITE_READERS: u32 = 8;

/// Connections of the PostgreSQL pool per instance: enough in-flight
/// transactions for PostgreSQL's own group commit to fill each WAL flush
/// (measured in BENCHMARKS.md), well under the server's default
/// `max_connections = 100` with a few instances.
pub const POSTGRES_POOL_SIZE: u32 = 32;

impl Store {
    /// Opens `url` (`sqlite://FILE` or `postgres://…`).
    ///
    /// SQLite files are created when missing and run in WAL mode with
    /// `synchronous = FULL`: a committed write is on disk. One task owns the
    /// write connection and commits concurrent writes together (see
    /// [`writer`]); reads use a pool of read-only connections. PostgreSQL
    /// uses one pool of [`POSTGRES_POOL_SIZE`] connections.
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
        // The writer first: it creates the file and switches it to WAL.
        let writer = match backend {
            Backend::Sqlite => Some(Writer::spawn(options.clone()).await?),
            Backend::Postgres => None,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => SQLITE_READERS,
                Backend::Postgres => POSTGRES_POOL_SIZE,
            })
            .acquire_timeout(Duration::from_secs(30))
            // A broken connection fails its query and is replaced; a ping
            // on every acquire would cost each query a second round trip.
            .test_before_acquire(false)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // Readers never write: every write goes through the
                        // writer, so none can wait on SQLite's lock behind it.
                        conn.execute("pragma busy_timeout = 10000").await?;
                        conn.execute("pragma foreign_keys = on").await?;
                        conn.execute("pragma query_only = on").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options.clone())
            .await?;
        let live = (backend == Backend::Postgres).then(|| LiveNotifier::spawn(pool.clone()));
        Ok(Store {
            pool,
            backend,
            writer,
            sqlite_options: (backend == Backend::Sqlite).then(|| Arc::new(options.clone())),
            live,
            options: Arc::new(options),
            statements: Arc::new(AtomicU64::new(0)),
        })
    }

    /// A connection of its own that may write, outside the writer (SQLite
    /// only): for migrations and backups, which manage their own
    /// transactions. The writer holds SQLite's write lock only while it
    /// commits a batch, so this waits at most that long (busy timeout).
    pub(crate) async fn own_sqlite_connection(&self) -> Result<Option<AnyConnection>> {
        let Some(options) = &self.sqlite_options else {
            return Ok(None);
        };
        let mut conn = AnyConnection::connect_with(options).await?;
        conn.execute("pragma busy_timeout = 10000").await?;
        conn.execute("pragma foreign_keys = on").await?;
        conn.execute("pragma synchronous = full").await?;
        Ok(Some(conn))
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
                let mut conn = self
                    .own_sqlite_connection()
                    .await?
                    .ok_or_else(|| StoreError::BadUrl("no SQLite options".into()))?;
                sqlx::migrate!("./migrations/sqlite").run(&mut conn).await?;
                conn.close().await?;
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

    /// The pool, for read queries (read-only connections on SQLite: write
    /// with [`begin_write`](Store::begin_write)).
    pub fn pool(&self) -> &AnyPool {
        // Every read runs on `self.pool()`, one call per statement.
        self.statements.fetch_add(1, Ordering::Relaxed);
        &self.pool
    }

    /// SQL statements this store (and its clones) ran so far: each read on
    /// [`pool`](Store::pool) and each statement of a write transaction
    /// ([`Tx`]) counts one; `BEGIN`/`COMMIT`, migrations and the leader
    /// lock's keep-alive do not. For benchmarks and for tests that a hot
    /// path reads by sets (a difference of two readings is the cost of
    /// what ran between them, when nothing else used the store).
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// Begins a write transaction; every write goes through one. On
    /// PostgreSQL it is a transaction of the pool. On SQLite it waits for
    /// the single write connection and runs as one unit of a group commit
    /// (see [`writer`]): it sees every write committed or in the same batch
    /// before it, nothing writes beside it (so read-then-write needs no
    /// lock), and [`Tx::commit`] returns once the batch is on disk.
    ///
    /// Do not call the store's writing functions while holding one on
    /// SQLite: they wait for this transaction to finish.
    ///
    /// # Errors
    /// Connection errors; [`StoreError::WriteFailed`] when the writer stopped.
    pub async fn begin_write(&self) -> Result<Tx> {
        let inner = match &self.writer {
            Some(w) => TxInner::Unit(w.begin().await?),
            None => TxInner::Pool(self.pool.begin().await?),
        };
        Ok(Tx {
            inner,
            live: Vec::new(),
            notifier: self.live.clone(),
            statements: self.statements.clone(),
        })
    }

    /// The SQLite writer's counters (`None` on PostgreSQL): units waiting,
    /// batches and units committed.
    pub fn writer_stats(&self) -> Option<writer::WriterStats> {
        self.writer.as_ref().map(Writer::stats)
    }

    /// Checks that the database answers (for `/readyz` and `/healthz`).
    ///
    /// # Errors
    /// The database error when it does not.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections to return, and stops the
    /// writer after the writes queued before.
    pub async fn close(&self) {
        if let Some(w) = &self.writer {
            w.close().await;
        }
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

/// `sql` for `backend`: on SQLite every `$n` placeholder becomes `?`.
/// SQLite takes `$n` as a named parameter and sqlx looks each one up by
/// name, a scan of all of them per value bound: quadratic in a multi-row
/// statement of thousands of values. The `$n` of `sql` must appear in
/// increasing order, each once (as they are bound).
pub(crate) fn positional(backend: Backend, sql: String) -> String {
    if backend == Backend::Postgres {
        return sql;
    }
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

/// `0`/`1` as stored for booleans.
pub(crate) fn flag(b: bool) -> i64 {
    i64::from(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positional_placeholders_on_sqlite_only() {
        let sql = "insert into t (a, b) values ($1, 'x'), ($2, $10)".to_string();
        assert_eq!(
            positional(Backend::Sqlite, sql.clone()),
            "insert into t (a, b) values (?, 'x'), (?, ?)"
        );
        assert_eq!(positional(Backend::Postgres, sql.clone()), sql);
    }

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
