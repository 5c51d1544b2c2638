//! Live updates: a broadcast of "this order changed" and "this user's inbox
//! changed", which server-sent-event streams (`GET /api/v1/events`) filter
//! per viewer, and of "this account changed", which ends the streams of a
//! session that ended ([`while_signed_in`]). Publishing never blocks; a slow subscriber loses old notices
//! and is told to reload.
//!
//! Within one process, handlers and workers publish after they commit. On
//! PostgreSQL, every transaction that writes an outbox event also records
//! a live change, which the store sends with `pg_notify` after the commit
//! (batched: `homefront_store::outbox::LiveNotifier`), and each instance
//! relays what it hears on `LISTEN homefront_events` into its own
//! broadcast, so a page connected to instance A sees an order accepted
//! through instance B. A change may thus arrive twice on one instance;
//! notices are idempotent ("reload order 12"), so that is harmless.

use std::time::Duration;

use axum::http::StatusCode;
use futures::{Stream, StreamExt};
use homefront_domain::vetting::VettingState;
use homefront_store::Backend;
use homefront_store::outbox::LiveListener;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::AppState;
use crate::auth::Actor;
use crate::error::ApiError;

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

/// An account's sessions, roles or standing changed (a sign-out, a
/// password reset, a role revoked, a volunteer suspended): its live
/// streams check whether they may go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct AccountChanged {
    /// The account.
    pub user_id: i64,
}

/// How often an open stream checks its session even when nothing was
/// announced: the bound on how long a stream outlives a session that ran
/// out by time, or one ended on an instance whose notice was lost.
pub const SESSION_CHECK_INTERVAL: Duration = Duration::from_secs(30);

/// Announces that `user_id`'s account changed, to this instance's streams
/// and (PostgreSQL) every other instance's. Call it after the change
/// commits.
pub async fn publish_account(state: &AppState, user_id: i64) {
    let _ = state.accounts.send(AccountChanged { user_id });
    if let Err(e) = state.store.announce_accounts(&[user_id]).await {
        tracing::warn!(error = %e, "could not announce an account change to other instances");
    }
}

/// Whether the actor behind a stream may still have it: the same session
/// alive (not signed out, not expired, account not disabled), the same
/// roles as when the stream opened, and not a suspended volunteer.
///
/// # Errors
/// 401 `session_expired`, 403 `roles_changed` or `account_suspended`.
pub async fn may_stream(state: &AppState, actor: &Actor) -> Result<(), ApiError> {
    let now = state.clock.now().epoch_ms();
    let Some((_, _, grants)) = state
        .store
        .session_with_user(&actor.token_hash, now)
        .await?
    else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "session_expired",
            "your session has ended; sign in again",
        ));
    };
    if grants != actor.grants {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "roles_changed",
            "your roles changed; reload the page",
        ));
    }
    if state.store.vetting_state(actor.user.id).await? == Some(VettingState::Suspended) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "account_suspended",
            "your volunteer account is suspended; ask your coordinator",
        ));
    }
    Ok(())
}

/// `stream` for as long as the actor may have it ([`may_stream`]): checked
/// whenever the actor's account is announced as changed, and every
/// [`SESSION_CHECK_INTERVAL`]. The stream then ends, and a browser that
/// reconnects is asked to sign in again (or refused, when suspended).
pub fn while_signed_in<S, T>(state: AppState, actor: Actor, stream: S) -> impl Stream<Item = T>
where
    S: Stream<Item = T> + Send + 'static,
    T: Send + 'static,
{
    let accounts = state.accounts.subscribe();
    let mut tick = tokio::time::interval(SESSION_CHECK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    futures::stream::unfold(
        (Box::pin(stream), accounts, tick, state, actor, true),
        |(mut inner, mut accounts, mut tick, state, actor, first)| async move {
            if first {
                // An interval's first tick is at once.
                tick.tick().await;
            }
            loop {
                let check = tokio::select! {
                    item = inner.next() => {
                        return item.map(|i| (i, (inner, accounts, tick, state, actor, false)));
                    }
                    notice = accounts.recv() => match notice {
                        Ok(AccountChanged { user_id }) => user_id == actor.user.id,
                        Err(broadcast::error::RecvError::Lagged(_)) => true,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                    _ = tick.tick() => true,
                };
                if check && may_stream(&state, &actor).await.is_err() {
                    return None;
                }
            }
        },
    )
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

/// The payload written by `homefront_store::outbox::LiveNotifier`:
/// `{"orders":[12,13],"users":[3]}` (the single `order` / `user` form of
/// earlier versions is accepted too, for instances of mixed versions).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Payload {
    order: Option<i64>,
    user: Option<i64>,
    orders: Vec<i64>,
    users: Vec<i64>,
    /// Accounts whose sessions, roles or standing changed.
    accounts: Vec<i64>,
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
                        let orders: Vec<i64> = p.order.into_iter().chain(p.orders).collect();
                        for &order_id in &orders {
                            let _ = state.live.send(OrderChanged { order_id });
                        }
                        if !orders.is_empty() {
                            state.outbox_wake.notify_one();
                        }
                        for user_id in p.user.into_iter().chain(p.users) {
                            let _ = state.inbox.send(InboxChanged { user_id });
                        }
                        for user_id in p.accounts {
                            let _ = state.accounts.send(AccountChanged { user_id });
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
