//! Live changes across instances: `pg_notify` after commit, and the
//! `LISTEN` side every instance holds (PostgreSQL).

use sqlx::AnyPool;
use tokio::sync::mpsc;

use crate::Result;

/// The PostgreSQL `LISTEN` channel of live changes.
pub const LIVE_CHANNEL: &str = "homefront_events";

/// A change that open pages on every instance should show at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveChange {
    /// The order's state, offers or assignment changed.
    Order(i64),
    /// The user's inbox got a notice.
    Inbox(i64),
}

/// Largest `NOTIFY` payload sent, in bytes (PostgreSQL's limit is 8000).
const MAX_PAYLOAD_BYTES: usize = 7900;

/// Sends live changes to every instance with `pg_notify` after their
/// transactions commit (PostgreSQL). A background task takes what has
/// been committed meanwhile and sends it as few notices as fit, e.g.
/// `{"orders":[12,13],"users":[3]}`, so notices cost neither the commits
/// nor the requests a round trip. A change committed just before the
/// process dies may go unannounced; live pages also reload on reconnect.
#[derive(Clone, Debug)]
pub struct LiveNotifier {
    changes: mpsc::UnboundedSender<Vec<LiveChange>>,
}

impl LiveNotifier {
    /// Spawns the sending task on `pool`.
    pub(crate) fn spawn(pool: AnyPool) -> LiveNotifier {
        let (changes, mut rx) = mpsc::unbounded_channel::<Vec<LiveChange>>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut orders = std::collections::BTreeSet::new();
                let mut users = std::collections::BTreeSet::new();
                let mut add = |batch: Vec<LiveChange>| {
                    for c in batch {
                        match c {
                            LiveChange::Order(id) => orders.insert(id),
                            LiveChange::Inbox(id) => users.insert(id),
                        };
                    }
                };
                add(first);
                while let Ok(more) = rx.try_recv() {
                    add(more);
                }
                for payload in live_payloads(&orders, &users) {
                    if let Err(e) = sqlx::query("select pg_notify($1, $2)")
                        .bind(LIVE_CHANNEL)
                        .bind(payload)
                        .execute(&pool)
                        .await
                    {
                        tracing::warn!(error = %e, "live changes: NOTIFY failed");
                    }
                }
            }
        });
        LiveNotifier { changes }
    }

    /// Queues committed changes for sending.
    pub(crate) fn send(&self, changes: Vec<LiveChange>) {
        if !changes.is_empty() {
            let _ = self.changes.send(changes);
        }
    }
}

/// The notices for a set of changes: JSON objects `{"orders":[..],"users":[..]}`
/// of at most [`MAX_PAYLOAD_BYTES`] each.
fn live_payloads(
    orders: &std::collections::BTreeSet<i64>,
    users: &std::collections::BTreeSet<i64>,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut o: Vec<i64> = Vec::new();
    let mut u: Vec<i64> = Vec::new();
    let mut size = 0;
    let render = |o: &[i64], u: &[i64]| serde_json::json!({"orders": o, "users": u}).to_string();
    for (is_order, id) in orders
        .iter()
        .map(|id| (true, *id))
        .chain(users.iter().map(|id| (false, *id)))
    {
        // 21 bytes: the longest i64 and its comma.
        if size + 21 > MAX_PAYLOAD_BYTES - 32 {
            out.push(render(&o, &u));
            o.clear();
            u.clear();
            size = 0;
        }
        if is_order {
            o.push(id);
        } else {
            u.push(id);
        }
        size += id.to_string().len() + 1;
    }
    if !o.is_empty() || !u.is_empty() {
        out.push(render(&o, &u));
    }
    out
}

/// A listener of live changes on PostgreSQL (`LISTEN homefront_events`):
/// what any instance committed, as the JSON payloads written by
/// [`LiveNotifier`]. Several `homefront serve` instances on one database
/// each hold one, so a page connected to any of them sees every change.
#[derive(Debug)]
pub struct LiveListener(sqlx::postgres::PgListener);

impl LiveListener {
    /// Opens a dedicated PostgreSQL connection (the `Any` pool cannot
    /// LISTEN) and subscribes.
    ///
    /// # Errors
    /// Connection errors.
    pub async fn connect(url: &str) -> Result<LiveListener> {
        let mut l = sqlx::postgres::PgListener::connect(url).await?;
        l.listen(LIVE_CHANNEL).await?;
        Ok(LiveListener(l))
    }

    /// The next payload. After a lost connection it reconnects (notices
    /// sent meanwhile are missed; pages reload on `reload`).
    ///
    /// # Errors
    /// Connection errors.
    pub async fn recv(&mut self) -> Result<String> {
        Ok(self.0.recv().await?.payload().to_string())
    }
}
