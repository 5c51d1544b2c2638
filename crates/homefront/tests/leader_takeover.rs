//! One dispatcher across instances, across a real process kill.
//!
//! Two `homefront serve` run on one fresh PostgreSQL database (the burst
//! benchmark's scenario: on-duty volunteers around 玄武区). One leads (it
//! holds the dispatcher's advisory lock and runs the dispatcher), the
//! other follows. Orders are submitted, the leader is killed with
//! SIGKILL, more orders are submitted, and the follower must lead within
//! 5 s of the kill; every order must get an offer, and no order may have
//! two offer rounds open at once (offers of one order from different
//! rounds whose open periods overlap).
//!
//! PostgreSQL only (`HOMEFRONT_TEST_DB=postgres`, server at
//! `HOMEFRONT_TEST_POSTGRES_URL`); on SQLite it is skipped (one instance
//! there: `serve` refuses a second one, which the SQLite run checks).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use homefront_domain::{Clock, SystemClock};
use homefront_server::burst::Scenario;
use homefront_store::Store;

mod support;
use support::{Db, Serve, until};

/// The takeover bound the product promises.
const TAKEOVER: Duration = Duration::from_secs(5);

fn postgres() -> bool {
    std::env::var("HOMEFRONT_TEST_DB").is_ok_and(|v| v == "postgres")
}

/// The `homefront` command; the leader election's own log lines are kept.
fn homefront(db: &Db, config: &Path) -> Command {
    support::homefront(db, config, "warn,homefront_server::leader=info")
}

/// A running `homefront serve` and what it logged.
struct Server(Serve);

impl Server {
    fn start(db: &Db, config: &Path) -> Server {
        Server(Serve::start(homefront(db, config)))
    }

    fn logged(&self, what: &str) -> bool {
        self.0.logged(what)
    }

    fn leads(&self) -> bool {
        self.logged("leading:")
    }

    fn follows(&self) -> bool {
        self.logged("following:")
    }

    /// SIGKILL: no shutdown, the lock's session ends with the process.
    fn kill(self) {
        self.0.kill();
    }
}

/// Offers of the orders in `from..=to`: (order, round, offered_at, end of
/// its open period: responded_at, else expires_at).
async fn offers(store: &Store, from: i64, to: i64) -> Vec<(i64, i64, i64, i64)> {
    sqlx::query_as(
        "select order_id, round, offered_at, coalesce(responded_at, expires_at) from offer
         where order_id between $1 and $2 order by order_id, offered_at",
    )
    .bind(from)
    .bind(to)
    .fetch_all(store.pool())
    .await
    .unwrap()
}

async fn submit(store: &Store, scenario: &mut Scenario, key: &str, n: usize) -> Vec<i64> {
    let now = SystemClock.now();
    let orders = (0..n).map(|_| scenario.next_order(now)).collect();
    homefront_server::burst::submit(store, scenario.requester_id, key, orders, |_| {})
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_follower_takes_over_the_dispatcher_within_5_s_without_duplicate_rounds() {
    if !postgres() {
        eprintln!("skipped: leader election runs on PostgreSQL (HOMEFRONT_TEST_DB=postgres)");
        return;
    }
    let db = Db::new("leader").await;
    let config = db.dir.join("homefront.toml");
    std::fs::write(
        &config,
        "bind = \"127.0.0.1:0\"\ndispatch_interval_seconds = 1\n",
    )
    .unwrap();
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    let mut scenario = Scenario::build(&store, 200, SystemClock.now(), |_| {})
        .await
        .unwrap();

    let a = Server::start(&db, &config);
    until(
        "the first instance to lead",
        Duration::from_secs(30),
        || {
            let leads = a.leads();
            async move { leads }
        },
    )
    .await;
    let b = Server::start(&db, &config);
    until(
        "the second instance to follow",
        Duration::from_secs(30),
        || {
            let follows = b.follows();
            async move { follows }
        },
    )
    .await;
    assert!(!b.leads(), "one leader at a time");

    let before = submit(&store, &mut scenario, "before", 10).await;
    let first = before[0];
    until(
        "offers of the orders before the kill",
        Duration::from_secs(15),
        || {
            let store = store.clone();
            let last = *before.last().unwrap();
            async move { store.count_orders_without_offer(first, last).await.unwrap() == 0 }
        },
    )
    .await;

    a.kill();
    let killed = Instant::now();
    let after = submit(&store, &mut scenario, "after", 10).await;
    let last = *after.last().unwrap();
    until("the follower to lead", TAKEOVER, || {
        let leads = b.leads();
        async move { leads }
    })
    .await;
    let took = killed.elapsed();
    assert!(took <= TAKEOVER, "takeover took {took:?}");
    until("offers of every order", Duration::from_secs(15), || {
        let store = store.clone();
        async move { store.count_orders_without_offer(first, last).await.unwrap() == 0 }
    })
    .await;

    // No order stranded, none with two rounds open at once.
    let offers = offers(&store, first, last).await;
    let mut orders: Vec<i64> = offers.iter().map(|o| o.0).collect();
    orders.dedup();
    assert_eq!(orders.len(), 20, "every order has an offer: {offers:?}");
    // Each round's open period: from its first offer to its last offer's end.
    let mut rounds: std::collections::BTreeMap<(i64, i64), (i64, i64)> = Default::default();
    for &(order, round, from, to) in &offers {
        let r = rounds.entry((order, round)).or_insert((from, to));
        // One round is one transaction of one pass: one offered_at. Two
        // dispatchers reading the same history would both write the same
        // round number at different instants.
        assert_eq!(
            r.0, from,
            "order {order}: round {round} written twice: {offers:?}"
        );
        r.1 = r.1.max(to);
    }
    let rounds: Vec<_> = rounds.into_iter().collect();
    for pair in rounds.windows(2) {
        let (((order, r1), (_, end1)), ((next, r2), (start2, _))) = (pair[0], pair[1]);
        if order == next {
            assert!(
                start2 >= end1,
                "order {order} had rounds {r1} and {r2} open at once: {offers:?}"
            );
        }
    }
    drop(b);
    store.close().await;
}

#[tokio::test]
async fn a_second_serve_on_one_sqlite_file_is_refused() {
    if postgres() {
        return;
    }
    let db = Db::new("onesqlite").await;
    let config = db.dir.join("homefront.toml");
    std::fs::write(&config, "bind = \"127.0.0.1:0\"\n").unwrap();
    let a = Server::start(&db, &config);
    until(
        "the first instance to serve",
        Duration::from_secs(30),
        || {
            let up = a.logged("Homefront is serving");
            async move { up }
        },
    )
    .await;
    let mut b = Server::start(&db, &config);
    let status = b.0.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(2), "refused with exit code 2");
    assert!(
        b.logged("SQLite runs one instance"),
        "says why: {:?}",
        b.0.log()
    );
    let mut a = a;
    assert!(a.0.running(), "the first one runs on");
}
