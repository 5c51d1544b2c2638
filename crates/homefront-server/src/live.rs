//! Live updates: a broadcast of "this order changed" and "this user's inbox
//! changed", which server-sent-event streams (`GET /api/v1/events`) filter
//! per viewer. Publishing never blocks; a slow subscriber loses old notices
//! and is told to reload.
//!
//! Within one process, handlers and workers publish after they commit. On
//! PostgreSQL, the store also calls `pg_notify` inside every transaction
//! that writes an outbox event (delivered only at commit), and each
//! instance relays what it hears on `LISTEN homefront_events` into its own
//! broadcast, so a page connected to instance A sees an order accepted
//! through instance B. A change may thus arrive twice on one instance;
//! notices are idempotent ("reload order 12"), so that is harmless.

use std::time::Duration;

use homefront_store::Backend;
use homefront_store::outbox::LiveListener;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::AppState;

/// Capacity of the broadcast ring; a subscriber lagging by more reloads.
pub const CAPACITY: usize = 1024;

/// A change notice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct OrderChanged {
    /// The order whose state, offers or assignment changed.
    pub order_id: i64,
}

/// A user's inbox got a notice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct InboxChanged {
    /// The recipient.
    pub user_id: i64,
}

/// A new broadcast channel.
pub fn channel() -> broadcast::Sender<OrderChanged> {
    broadcast::channel(CAPACITY).0
}

/// Announces that `order_id` changed (and wakes the notification worker:
/// the change wrote an outbox row). Nobody listening is fine.
pub fn publish(state: &AppState, order_id: i64) {
    let _ = state.live.send(OrderChanged { order_id });
    state.outbox_wake.notify_one();
}

/// Announces that `user_id`'s inbox changed.
pub fn publish_inbox(state: &AppState, user_id: i64) {
    let _ = state.inbox.send(InboxChanged { user_id });
}

/// The payload written by `homefront_store::outbox::notify_live_in`.
#[derive(Debug, Deserialize)]
struct Payload {
    order: Option<i64>,
    user: Option<i64>,
}

/// On PostgreSQL, relays `LISTEN homefront_events` into this process's
/// broadcasts (reconnecting after errors); `None` on SQLite, where one
/// instance owns the database and the in-process broadcast is enough.
pub fn spawn_relay(state: AppState) -> Option<tokio::task::JoinHandle<()>> {
    if state.store.backend() != Backend::Postgres {
        return None;
    }
    Some(tokio::spawn(async move {
        loop {
            let mut listener = match LiveListener::connect(&state.config.database_url).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "live relay: cannot LISTEN; retrying in 5 s");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    continue;
                }
            };
            loop {
                match listener.recv().await {
                    Ok(text) => {
                        let Ok(p) = serde_json::from_str::<Payload>(&text) else {
                            continue;
                        };
                        if let Some(order_id) = p.order {
                            let _ = state.live.send(OrderChanged { order_id });
                            state.outbox_wake.notify_one();
                        }
                        if let Some(user_id) = p.user {
                            let _ = state.inbox.send(InboxChanged { user_id });
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "live relay: connection lost; reconnecting");
                        break;
                    }
                }
            }
        }
    }))
}
