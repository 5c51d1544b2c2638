//! Live updates inside one process: a broadcast of "this order changed",
//! which server-sent-event streams filter per viewer. Publishing never
//! blocks; a slow subscriber loses old notices and reloads.

use serde::Serialize;
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

/// A new broadcast channel.
pub fn channel() -> broadcast::Sender<OrderChanged> {
    broadcast::channel(CAPACITY).0
}

/// Announces that `order_id` changed. Nobody listening is fine.
pub fn publish(state: &AppState, order_id: i64) {
    let _ = state.live.send(OrderChanged { order_id });
}
