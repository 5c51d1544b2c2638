//! Group commit for SQLite: one task owns the only write connection.
//!
//! SQLite allows one writer at a time, and at `synchronous = FULL` every
//! commit waits for the disk (an `fsync` of the WAL, a few milliseconds).
//! One commit per request would cap intake at the disk's fsync rate. So
//! the writer task runs the units of work that arrive while the previous
//! commit is on its way to the disk one after another in one transaction,
//! and commits them together with one fsync:
//!
//! 1. [`Writer::begin`] queues a request for the connection. When its turn
//!    comes, the writer opens the batch (`BEGIN IMMEDIATE`) if none is
//!    open, sets a savepoint for this unit and lends the connection to the
//!    caller, who runs its statements on it as on any transaction.
//! 2. The caller commits ([`WriteUnit::commit`]): the writer releases the
//!    savepoint and, once no more requests are waiting (or the batch is
//!    full), commits the batch and only then answers every caller in it.
//!    A caller that rolls back, fails or is dropped rolls back to its
//!    savepoint; the other units of the batch are not affected.
//!
//! Checkpoints (copying the WAL back into the database file) run on a
//! connection of their own every 250 ms, so the writer never stalls for
//! the database file's sync.
//!
//! A unit is answered only after the batch that holds it is durable, so
//! "acknowledged" keeps meaning "on disk". Reads go to a separate pool of
//! read-only connections and never wait for the writer (WAL mode).
//! Everything that writes goes through here, so no connection waits on
//! SQLite's busy lock behind the writer's open batch.
//!
//! Design after SQLite's own advice for write throughput (one writer,
//! several statements per transaction: <https://sqlite.org/faq.html#q19>)
//! and the group commit of database write-ahead logs (PostgreSQL's
//! `commit_delay`, InnoDB's binlog group commit), without their wait: the
//! batch closes as soon as nothing more is queued.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, Connection, Executor};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use crate::{Result, StoreError};

/// Most units in one batch: bounds the wait of the batch's first caller
/// when units keep arriving (256 order submissions run in about 30 ms).
pub const MAX_BATCH_UNITS: usize = 256;

/// The handle through which callers reach the writer task.
#[derive(Clone, Debug)]
pub(crate) struct Writer {
    requests: mpsc::UnboundedSender<Message>,
    stats: Arc<Stats>,
}

/// Counters of the writer, for tests and metrics.
#[derive(Debug, Default)]
struct Stats {
    /// Units asked for and not yet lent.
    waiting: AtomicUsize,
    /// Batches committed.
    batches: AtomicU64,
    /// Units committed.
    units: AtomicU64,
}

/// What the writer has done so far (see [`crate::Store::writer_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Units of work waiting for the connection now.
    pub waiting: usize,
    /// Batches committed.
    pub batches: u64,
    /// Units committed in them.
    pub units: u64,
}

/// What the writer is asked for.
enum Message {
    /// A unit of work.
    Unit(Request),
    /// Finish what is queued before, close the connection and stop.
    Close(oneshot::Sender<()>),
}

/// A caller waiting for the connection.
struct Request {
    /// The caller's span, so the writer's statements for this unit are
    /// attributed to the request that caused them.
    span: tracing::Span,
    lend: oneshot::Sender<Result<Lent, StoreError>>,
}

/// The connection on loan to one unit of work.
struct Lent {
    conn: AnyConnection,
    back: oneshot::Sender<Returned>,
}

/// The connection coming back, with what to do with the unit.
struct Returned {
    conn: AnyConnection,
    outcome: Outcome,
}

enum Outcome {
    /// Keep the unit; answer on `durable` once its batch is committed.
    Commit(oneshot::Sender<Result<(), StoreError>>),
    /// Undo the unit (an explicit rollback, an error, a dropped caller).
    Rollback,
    /// Undo the unit, but answer on `durable` once the batch (whose writes
    /// the unit may have read) is committed.
    RollbackAfterCommit(oneshot::Sender<Result<(), StoreError>>),
}

/// One unit of work on the writer's connection (see the module docs).
/// Derefs to the connection, so queries run on `&mut *unit` as on a
/// transaction. Dropping it without [`commit`](Self::commit) rolls the
/// unit back.
pub(crate) struct WriteUnit {
    conn: Option<AnyConnection>,
    back: Option<oneshot::Sender<Returned>>,
}

impl std::fmt::Debug for WriteUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteUnit").finish_non_exhaustive()
    }
}

fn writer_gone() -> StoreError {
    StoreError::WriteFailed("the database writer has stopped".into())
}

impl Writer {
    /// Opens the write connection (`connect` applies the pragmas) and
    /// spawns the writer task on the current runtime.
    pub(crate) async fn spawn(options: AnyConnectOptions) -> Result<Writer> {
        let conn = open(&options).await?;
        let (requests, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(Stats::default());
        let checkpointer = tokio::spawn(checkpoint(options.clone()));
        let for_run = stats.clone();
        tokio::spawn(async move {
            run(conn, options, rx, for_run).await;
            checkpointer.abort();
        });
        Ok(Writer { requests, stats })
    }

    /// The writer's counters.
    pub(crate) fn stats(&self) -> WriterStats {
        WriterStats {
            waiting: self.stats.waiting.load(Ordering::Relaxed),
            batches: self.stats.batches.load(Ordering::Relaxed),
            units: self.stats.units.load(Ordering::Relaxed),
        }
    }

    /// Waits for the connection and returns it as a unit of work.
    pub(crate) async fn begin(&self) -> Result<WriteUnit> {
        let (lend, lent) = oneshot::channel();
        self.stats.waiting.fetch_add(1, Ordering::Relaxed);
        self.requests
            .send(Message::Unit(Request {
                span: tracing::Span::current(),
                lend,
            }))
            .map_err(|_| writer_gone())?;
        let Lent { conn, back } = lent.await.map_err(|_| writer_gone())??;
        Ok(WriteUnit {
            conn: Some(conn),
            back: Some(back),
        })
    }

    /// Lets the writer finish the units queued before, then stops it.
    pub(crate) async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.requests.send(Message::Close(done)).is_ok() {
            let _ = closed.await;
        }
    }
}

impl WriteUnit {
    /// Keeps the unit and waits until its batch is committed (durable).
    ///
    /// # Errors
    /// The batch's commit error (then nothing of the unit was written).
    pub(crate) async fn commit(mut self) -> Result<()> {
        let (durable, done) = oneshot::channel();
        self.give_back(Outcome::Commit(durable));
        done.await.map_err(|_| writer_gone())?
    }

    /// Undoes the unit. The writer rolls it back in the background.
    pub(crate) fn rollback(mut self) {
        self.give_back(Outcome::Rollback);
    }

    /// Undoes the unit and waits until the batch it ran in is committed:
    /// for a unit that read what another unit of the batch wrote and
    /// answers from it.
    ///
    /// # Errors
    /// The batch's commit error.
    pub(crate) async fn rollback_after_commit(mut self) -> Result<()> {
        let (durable, done) = oneshot::channel();
        self.give_back(Outcome::RollbackAfterCommit(durable));
        done.await.map_err(|_| writer_gone())?
    }

    fn give_back(&mut self, outcome: Outcome) {
        if let (Some(conn), Some(back)) = (self.conn.take(), self.back.take()) {
            // The writer waits for it; if it has stopped there is nothing to undo.
            let _ = back.send(Returned { conn, outcome });
        }
    }

    /// The lent connection.
    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        self.conn
            .as_mut()
            .expect("a write unit holds its connection until commit or rollback")
    }

    /// The lent connection, shared.
    pub(crate) fn conn_ref(&self) -> &AnyConnection {
        self.conn
            .as_ref()
            .expect("a write unit holds its connection until commit or rollback")
    }
}

impl Drop for WriteUnit {
    fn drop(&mut self) {
        self.give_back(Outcome::Rollback);
    }
}

/// Opens a write connection: WAL, a busy timeout for other processes (the
/// CLI, a backup), foreign keys, and `synchronous = FULL`, so a commit
/// returns only once the WAL is on disk (<https://sqlite.org/pragma.html#pragma_synchronous>).
async fn open(options: &AnyConnectOptions) -> Result<AnyConnection> {
    let mut conn = AnyConnection::connect_with(options).await?;
    conn.execute("pragma journal_mode = wal").await?;
    conn.execute("pragma busy_timeout = 10000").await?;
    conn.execute("pragma foreign_keys = on").await?;
    conn.execute("pragma synchronous = full").await?;
    // Checkpoints run beside the writer (see `checkpoint`); this is only
    // the backstop should that task stop (about 80 MB of WAL).
    conn.execute("pragma wal_autocheckpoint = 20000").await?;
    Ok(conn)
}

/// How often the WAL is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Copies committed WAL frames into the database file from a connection
/// of its own, every [`CHECKPOINT_EVERY`]. By default SQLite checkpoints
/// inside the commit that crosses 1000 WAL pages, which would stall the
/// writer, and every caller waiting on its batch, for a file sync of the
/// database; a `PASSIVE` checkpoint here never blocks the writer or the
/// readers (<https://sqlite.org/wal.html#ckpt>).
async fn checkpoint(options: AnyConnectOptions) {
    let mut conn = None;
    loop {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        if conn.is_none() {
            conn = match AnyConnection::connect_with(&options).await {
                Ok(mut c) => c
                    .execute("pragma busy_timeout = 1000; pragma synchronous = full")
                    .await
                    .is_ok()
                    .then_some(c),
                Err(_) => None,
            };
        }
        if let Some(c) = conn.as_mut()
            && let Err(e) = c.execute("pragma wal_checkpoint(passive)").await
        {
            tracing::warn!(error = %e, "database checkpoint failed; retrying");
            conn = None;
        }
    }
}

/// The batch being built.
struct Batch {
    /// Callers of committed units, answered after the batch commits.
    durable: Vec<oneshot::Sender<Result<(), StoreError>>>,
}

async fn run(
    mut conn: AnyConnection,
    options: AnyConnectOptions,
    mut messages: mpsc::UnboundedReceiver<Message>,
    stats: Arc<Stats>,
) {
    let mut closing = None;
    while closing.is_none() {
        let first = match messages.recv().await {
            Some(Message::Unit(r)) => r,
            Some(Message::Close(done)) => {
                closing = Some(done);
                break;
            }
            None => break,
        };
        let span = first.span.clone();
        if let Err(e) = conn
            .execute("begin immediate; savepoint unit")
            .instrument(span)
            .await
        {
            stats.waiting.fetch_sub(1, Ordering::Relaxed);
            let _ = conn.execute("rollback").await;
            let _ = first.lend.send(Err(StoreError::from(e)));
            continue;
        }
        let mut batch = Batch {
            durable: Vec::new(),
        };
        let mut req = first;
        let mut units = 0;
        let mut broken: Option<String> = None;
        // Each unit runs inside the savepoint opened for it; closing it and
        // opening the next one's is one round trip to the driver.
        loop {
            units += 1;
            stats.waiting.fetch_sub(1, Ordering::Relaxed);
            let span = req.span.clone();
            let (c, outcome) = match lend(conn, req).await {
                Ok(r) => r,
                Err(why) => {
                    // The unit lost the connection: its transaction is gone.
                    conn = match reopen(&options).await {
                        Some(c) => c,
                        None => return fail_all(batch, &why, messages),
                    };
                    broken = Some(why);
                    break;
                }
            };
            conn = c;
            let mut next = None;
            if units < MAX_BATCH_UNITS {
                match messages.try_recv() {
                    Ok(Message::Unit(r)) => next = Some(r),
                    Ok(Message::Close(done)) => closing = Some(done),
                    Err(_) => {}
                }
            }
            let (sql, durable) = match (outcome, next.is_some()) {
                (Outcome::Commit(d), true) => ("release unit; savepoint unit", Some(d)),
                (Outcome::Commit(d), false) => ("release unit", Some(d)),
                (Outcome::Rollback, true) => {
                    ("rollback to unit; release unit; savepoint unit", None)
                }
                (Outcome::Rollback, false) => ("rollback to unit; release unit", None),
                (Outcome::RollbackAfterCommit(d), true) => {
                    ("rollback to unit; release unit; savepoint unit", Some(d))
                }
                (Outcome::RollbackAfterCommit(d), false) => {
                    ("rollback to unit; release unit", Some(d))
                }
            };
            match conn.execute(sql).instrument(span).await {
                Ok(_) => batch.durable.extend(durable),
                Err(e) => {
                    // SQLite rolled the whole transaction back (an I/O
                    // error, a full disk): the batch cannot commit.
                    let why = e.to_string();
                    if let Some(d) = durable {
                        let _ = d.send(Err(StoreError::from(e)));
                    }
                    if let Some(r) = next {
                        // Taken from the queue but not lent: it fails with the batch.
                        let _ = r.lend.send(Err(StoreError::WriteFailed(why.clone())));
                        stats.waiting.fetch_sub(1, Ordering::Relaxed);
                    }
                    broken = Some(why);
                    break;
                }
            }
            match next {
                Some(r) => req = r,
                None => break,
            }
        }
        let result = match broken {
            Some(why) => {
                let _ = conn.execute("rollback").await;
                Err(why)
            }
            None => match conn.execute("commit").await {
                Ok(_) => Ok(()),
                Err(e) => {
                    let _ = conn.execute("rollback").await;
                    Err(e.to_string())
                }
            },
        };
        match &result {
            Ok(()) => {
                stats.batches.fetch_add(1, Ordering::Relaxed);
                stats
                    .units
                    .fetch_add(batch.durable.len() as u64, Ordering::Relaxed);
            }
            Err(why) => tracing::error!(error = %why, units, "database writer: a batch failed"),
        }
        for durable in batch.durable {
            let _ = durable.send(result.clone().map_err(StoreError::WriteFailed));
        }
    }
    let _ = conn.close().await;
    messages.close();
    while let Ok(m) = messages.try_recv() {
        if let Message::Unit(r) = m {
            let _ = r.lend.send(Err(writer_gone()));
        }
    }
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// Lends the connection (inside its open savepoint) to `req` and waits for
/// it back. A caller that stopped waiting gives it back untouched.
async fn lend(
    conn: AnyConnection,
    req: Request,
) -> std::result::Result<(AnyConnection, Outcome), String> {
    let (back, returned) = oneshot::channel();
    match req.lend.send(Ok(Lent { conn, back })) {
        Ok(()) => match returned.await {
            Ok(Returned { conn, outcome }) => Ok((conn, outcome)),
            Err(_) => Err("a unit of work lost the write connection".into()),
        },
        Err(Ok(lent)) => Ok((lent.conn, Outcome::Rollback)),
        Err(Err(_)) => unreachable!("only Ok(Lent) is sent here"),
    }
}

async fn reopen(options: &AnyConnectOptions) -> Option<AnyConnection> {
    for attempt in 0..5u32 {
        match open(options).await {
            Ok(c) => return Some(c),
            Err(e) => {
                tracing::error!(error = %e, attempt, "database writer: cannot reopen the connection");
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
        }
    }
    None
}

/// Answers everyone with an error and stops: the writer cannot reach the
/// database any more (callers then see [`StoreError::WriteFailed`]).
fn fail_all(batch: Batch, why: &str, mut messages: mpsc::UnboundedReceiver<Message>) {
    for durable in batch.durable {
        let _ = durable.send(Err(StoreError::WriteFailed(why.to_string())));
    }
    messages.close();
    while let Ok(m) = messages.try_recv() {
        match m {
            Message::Unit(r) => {
                let _ = r.lend.send(Err(StoreError::WriteFailed(why.to_string())));
            }
            Message::Close(done) => {
                let _ = done.send(());
            }
        }
    }
}
