//! Leader election across instances on one PostgreSQL database.
//!
//! Several `homefront serve` may share a PostgreSQL database; exactly one
//! of them (the leader) runs the dispatcher and the fulfilment worker. The
//! leader is whoever holds a session-level advisory lock
//! (`pg_try_advisory_lock`) on a connection of its own, outside the pool.
//! PostgreSQL releases the lock when that session ends, so when the leader
//! dies (even by SIGKILL: the kernel closes its socket) the lock is free
//! at once and the next follower to try takes it.
//!
//! SQLite has no such lock and one instance only: see `homefront serve`.

use std::time::Duration;

use sqlx::{AnyConnection, Connection};

use crate::{Backend, Result, Store, StoreError};

/// The advisory lock key of the dispatcher's leader: the ASCII bytes of
/// `"HFDISPAT"` read as a big-endian `i64`, so it cannot clash with a small
/// key another application on the same server might use.
pub const DISPATCH_LEADER_KEY: i64 = i64::from_be_bytes(*b"HFDISPAT");

/// How long a keep-alive query may take before the lock is taken as lost
/// (a connection that hangs is as good as a dead one: another instance
/// may already lead).
pub const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(2);

/// A held advisory lock: the dedicated connection it lives on. Dropping it
/// closes the connection, which releases the lock.
#[derive(Debug)]
pub struct LeaderLock {
    conn: AnyConnection,
}

impl Store {
    /// Tries once to take the advisory lock `key` on a new connection of
    /// its own (PostgreSQL). `Ok(None)` when another session holds it.
    ///
    /// # Errors
    /// [`StoreError::BadUrl`] on SQLite (one instance only, no lock);
    /// connection errors.
    #[tracing::instrument(skip_all)]
    pub async fn try_lead(&self, key: i64) -> Result<Option<LeaderLock>> {
        if self.backend != Backend::Postgres {
            return Err(StoreError::BadUrl(
                "leader election needs PostgreSQL; SQLite runs one instance".into(),
            ));
        }
        let mut conn = AnyConnection::connect_with(&self.options).await?;
        // `case` rather than the boolean itself: the Any driver decodes
        // integers on both engines.
        let got: i64 = sqlx::query_scalar(
            "select cast(case when pg_try_advisory_lock($1) then 1 else 0 end as bigint)",
        )
        .bind(key)
        .fetch_one(&mut conn)
        .await?;
        if got == 1 {
            Ok(Some(LeaderLock { conn }))
        } else {
            conn.close().await.ok();
            Ok(None)
        }
    }
}

impl LeaderLock {
    /// Whether the lock is still held: its connection answers a query
    /// within [`KEEP_ALIVE_TIMEOUT`]. After `false` the lock must be taken
    /// as lost (drop it and stop leading).
    pub async fn still_held(&mut self) -> bool {
        matches!(
            tokio::time::timeout(KEEP_ALIVE_TIMEOUT, self.conn.ping()).await,
            Ok(Ok(()))
        )
    }

    /// Releases the lock by closing its connection.
    pub async fn release(self) {
        self.conn.close().await.ok();
    }
}
