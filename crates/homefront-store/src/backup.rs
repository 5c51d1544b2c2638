//! Backup and restore of the embedded SQLite database.
//!
//! A backup is `VACUUM INTO 'file'`: SQLite writes a compact copy of the
//! database as of one read transaction, so it is consistent while the
//! server keeps writing (WAL mode lets the writer continue meanwhile).
//! PostgreSQL deployments use `pg_dump` / `pg_restore` (see README).

use std::path::{Path, PathBuf};

use sqlx::Connection;

use crate::{Backend, Result, Store, StoreError};

/// The file of a `sqlite://FILE[?params]` or `sqlite:FILE` URL; `None`
/// for other URLs and in-memory databases.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let file = rest.split('?').next().unwrap_or("");
    (!file.is_empty() && !file.contains(":memory:")).then(|| PathBuf::from(file))
}

fn unsupported() -> StoreError {
    StoreError::BadUrl(
        "backup and restore work on SQLite; for PostgreSQL use pg_dump and pg_restore".into(),
    )
}

/// Copies the database in `from` to the new file `to` with `VACUUM INTO`.
async fn vacuum_into(conn: &mut sqlx::AnyConnection, to: &Path) -> Result<()> {
    let target = to.to_str().ok_or_else(|| {
        StoreError::BadUrl(format!("{}: the file name is not UTF-8", to.display()))
    })?;
    // VACUUM INTO takes an expression, so the file name is bound, not spliced.
    sqlx::query("vacuum into $1")
        .bind(target)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl Store {
    /// Writes a consistent copy of the database to `out` (which must not
    /// exist) while the server keeps serving.
    ///
    /// # Errors
    /// [`StoreError::BadUrl`] on PostgreSQL; database errors (e.g. `out`
    /// exists or its folder is not writable).
    #[tracing::instrument(skip_all)]
    pub async fn backup_to(&self, out: &Path) -> Result<()> {
        if self.backend() != Backend::Sqlite {
            return Err(unsupported());
        }
        // A connection of its own: the pool's are read-only.
        let mut conn = self
            .own_sqlite_connection()
            .await?
            .ok_or_else(unsupported)?;
        let done = vacuum_into(&mut conn, out).await;
        conn.close().await.ok();
        done
    }

    /// Replaces the SQLite database of `database_url` with the backup
    /// `backup`. The backup is checked first (it must open and carry
    /// Homefront's migration history), copied next to the target and then
    /// renamed over it, so a failure leaves the old database in place; the
    /// old file is kept as `FILE.before-restore`. The server must be stopped.
    ///
    /// Returns the number of orders in the restored database.
    ///
    /// # Errors
    /// [`StoreError::BadUrl`] for a non-SQLite URL; database or I/O errors
    /// (as database errors) when the backup is not a Homefront database.
    #[tracing::instrument(skip_all)]
    pub async fn restore_sqlite(backup: &Path, database_url: &str) -> Result<i64> {
        let target = sqlite_path(database_url).ok_or_else(unsupported)?;
        sqlx::any::install_default_drivers();
        let url = format!("sqlite://{}?mode=ro", backup.display());
        let mut conn = sqlx::AnyConnection::connect(&url).await?;
        let applied: i64 =
            sqlx::query_scalar("select cast(count(*) as bigint) from _sqlx_migrations")
                .fetch_one(&mut conn)
                .await?;
        if applied == 0 {
            return Err(StoreError::BadUrl(format!(
                "{} is not a Homefront backup (no migrations)",
                backup.display()
            )));
        }
        let staging = target.with_extension("restore-tmp");
        std::fs::remove_file(&staging).ok();
        vacuum_into(&mut conn, &staging).await?;
        conn.close().await?;
        let io = |e: std::io::Error| StoreError::Database(sqlx::Error::Io(e));
        if target.exists() {
            let keep = target.with_extension("before-restore");
            std::fs::rename(&target, &keep).map_err(io)?;
        }
        // A stale WAL would be replayed into the restored file: drop it.
        for suffix in ["-wal", "-shm"] {
            let mut side = target.clone().into_os_string();
            side.push(suffix);
            std::fs::remove_file(PathBuf::from(side)).ok();
        }
        std::fs::rename(&staging, &target).map_err(io)?;
        let store = Store::connect(database_url).await?;
        let orders = store.count_orders().await?;
        store.close().await;
        Ok(orders)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths_from_urls() {
        assert_eq!(
            sqlite_path("sqlite://homefront.db"),
            Some(PathBuf::from("homefront.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:///var/lib/hf.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/hf.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x@y/z"), None);
    }
}
