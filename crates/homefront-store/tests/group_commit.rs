//! Group commit on SQLite: a unit's caller is answered only once the batch
//! holding it is committed, and a unit that fails or rolls back leaves the
//! other units of its batch in place.
//!
//! Each test opens a fresh SQLite file; "durable" is checked from a
//! connection of its own, opened after the answer.

use std::path::PathBuf;

use homefront_store::Store;
use sqlx::{AnyConnection, Connection};

struct Db {
    dir: PathBuf,
    url: String,
}

impl Db {
    fn new() -> Db {
        let dir = std::env::temp_dir().join(format!("homefront-group-commit-{}", uuid_like()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("t.db").display());
        Db { dir, url }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// A name no other test of this run uses: the process id, the time and a
/// counter (two tests can read the same clock value; sharing a directory,
/// one would remove the other's database under it).
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

async fn store(db: &Db) -> Store {
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    store
}

/// A table of names for these tests.
async fn scratch(store: &Store) {
    let mut tx = store.begin_write().await.unwrap();
    sqlx::query("create table scratch (name text primary key)")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// Whether `name` is on disk, seen from a connection opened now.
async fn on_disk(db: &Db, name: &str) -> bool {
    sqlx::any::install_default_drivers();
    let mut c = AnyConnection::connect(&db.url).await.unwrap();
    let n: i64 = sqlx::query_scalar("select count(*) from scratch where name = $1")
        .bind(name)
        .fetch_one(&mut c)
        .await
        .unwrap();
    c.close().await.ok();
    n == 1
}

async fn insert(tx: &mut homefront_store::Tx, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query("insert into scratch (name) values ($1)")
        .bind(name)
        .execute(&mut **tx)
        .await
        .map(|_| ())
}

/// Waits (yielding, no timer) until `n` units wait for the writer.
async fn until_waiting(store: &Store, n: usize) {
    for _ in 0..1_000_000 {
        if store.writer_stats().unwrap().waiting >= n {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("the units never queued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_answers_each_caller_only_after_its_batch_commits() {
    let db = Db::new();
    let store = store(&db).await;
    scratch(&store).await;
    let before = store.writer_stats().unwrap();

    // H holds the connection while A and B queue behind it.
    let mut h = store.begin_write().await.unwrap();
    insert(&mut h, "h").await.unwrap();
    let (b_lent_tx, b_lent) = tokio::sync::oneshot::channel::<()>();
    let (b_go, b_go_rx) = tokio::sync::oneshot::channel::<()>();
    let a = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut tx = store.begin_write().await.unwrap();
            insert(&mut tx, "a").await.unwrap();
            tx.commit().await.unwrap();
        })
    };
    until_waiting(&store, 1).await;
    let b = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut tx = store.begin_write().await.unwrap();
            insert(&mut tx, "b").await.unwrap();
            b_lent_tx.send(()).unwrap();
            b_go_rx.await.unwrap();
            tx.commit().await.unwrap();
        })
    };
    until_waiting(&store, 2).await;
    // H, A and B were all waiting when H hands the connection back: one
    // batch, which cannot commit while B is still running.
    let h = tokio::spawn(async move { h.commit().await.unwrap() });
    b_lent.await.unwrap();
    assert!(
        !h.is_finished(),
        "H was answered before its batch committed"
    );
    assert!(
        !a.is_finished(),
        "A was answered before its batch committed"
    );
    assert!(
        !on_disk(&db, "h").await,
        "the batch committed while B was still running"
    );
    assert!(
        !on_disk(&db, "a").await,
        "the batch committed while B was still running"
    );

    b_go.send(()).unwrap();
    h.await.unwrap();
    assert!(
        on_disk(&db, "h").await,
        "H was answered before it was on disk"
    );
    a.await.unwrap();
    assert!(
        on_disk(&db, "a").await,
        "A was answered before it was on disk"
    );
    b.await.unwrap();
    assert!(
        on_disk(&db, "b").await,
        "B was answered before it was on disk"
    );

    let after = store.writer_stats().unwrap();
    assert_eq!(after.units - before.units, 3);
    assert_eq!(
        after.batches - before.batches,
        1,
        "H, A and B share one batch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_unit_does_not_fail_the_others_of_its_batch() {
    let db = Db::new();
    let store = store(&db).await;
    scratch(&store).await;
    {
        let mut tx = store.begin_write().await.unwrap();
        insert(&mut tx, "taken").await.unwrap();
        tx.commit().await.unwrap();
    }
    let before = store.writer_stats().unwrap();

    // Hold the connection so the next units queue into one batch.
    let h = store.begin_write().await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut tx = store.begin_write().await.unwrap();
            let name = format!("u{i}");
            insert(&mut tx, &name).await.unwrap();
            match i % 4 {
                // Fails on the unique key after writing its first row: the
                // caller gives up, and the unit rolls back alone.
                1 => {
                    let err = insert(&mut tx, "taken").await.unwrap_err();
                    assert!(err.to_string().contains("UNIQUE"), "{err}");
                    drop(tx);
                    (name, false)
                }
                // Rolls back on purpose.
                2 => {
                    tx.rollback().await.unwrap();
                    (name, false)
                }
                _ => {
                    tx.commit().await.unwrap();
                    (name, true)
                }
            }
        }));
    }
    until_waiting(&store, 12).await;
    h.commit().await.unwrap();
    for t in tasks {
        let (name, kept) = t.await.unwrap();
        assert_eq!(on_disk(&db, &name).await, kept, "{name}");
    }
    let after = store.writer_stats().unwrap();
    assert_eq!(
        after.units - before.units,
        1 + 6,
        "H and the six kept units"
    );
    assert_eq!(
        after.batches - before.batches,
        1,
        "the queued units were committed with H"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_never_write_and_see_only_committed_units() {
    let db = Db::new();
    let store = store(&db).await;
    scratch(&store).await;
    // The pool's connections are read-only: a write there fails at once
    // instead of waiting on the writer's lock.
    let err = sqlx::query("insert into scratch (name) values ('x')")
        .execute(store.pool())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("readonly"), "{err}");

    let mut tx = store.begin_write().await.unwrap();
    insert(&mut tx, "pending").await.unwrap();
    let seen: i64 = sqlx::query_scalar("select count(*) from scratch")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(seen, 0, "a reader saw an uncommitted unit");
    tx.commit().await.unwrap();
    let seen: i64 = sqlx::query_scalar("select count(*) from scratch")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(seen, 1);
    // Closing the store stops the writer after what was queued.
    store.close().await;
    assert!(store.begin_write().await.is_err());
}
