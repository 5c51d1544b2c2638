//! One dispatcher across instances.
//!
//! The dispatcher and the fulfilment worker must run once per database,
//! however many `homefront serve` share it: two dispatchers would each
//! write an offer round for the same order. On PostgreSQL the instances
//! elect a leader with a session advisory lock
//! ([`homefront_store::leader`]): the instance holding it runs those
//! workers; the others try again every [`RETRY`], so when the leader dies
//! (its session ends and PostgreSQL frees the lock) one of them leads
//! within about `RETRY` + a connection set-up, well within 5 s. SQLite has
//! one instance (`homefront serve` refuses a second one on the same file),
//! which leads from the start.

use std::time::Duration;

use homefront_store::Backend;
use homefront_store::leader::DISPATCH_LEADER_KEY;
use tokio::task::JoinHandle;

use crate::AppState;

/// How often a follower tries to take the lock, and how often the leader
/// checks that its lock connection still answers.
pub const RETRY: Duration = Duration::from_secs(1);

/// Background tasks aborted when dropped (when leadership ends).
struct Workers(Vec<JoinHandle<()>>);

impl Drop for Workers {
    fn drop(&mut self) {
        for w in &self.0 {
            w.abort();
        }
    }
}

/// Runs the workers `start` spawns while this instance leads: at once and
/// for good on SQLite; on PostgreSQL while it holds the dispatcher's
/// advisory lock, stopping them as soon as the lock's connection fails
/// (another instance may lead by then). Aborting the returned task stops
/// them too.
pub fn spawn<F>(state: AppState, start: F) -> JoinHandle<()>
where
    F: Fn(&AppState) -> Vec<JoinHandle<()>> + Send + 'static,
{
    tokio::spawn(async move {
        if state.store.backend() != Backend::Postgres {
            let _workers = Workers(start(&state));
            std::future::pending::<()>().await;
            return;
        }
        let mut waiting_logged = false;
        loop {
            match state.store.try_lead(DISPATCH_LEADER_KEY).await {
                Ok(Some(mut lock)) => {
                    tracing::info!(
                        "leading: this instance runs the dispatcher and the fulfilment worker"
                    );
                    let workers = Workers(start(&state));
                    loop {
                        tokio::time::sleep(RETRY).await;
                        if !lock.still_held().await {
                            break;
                        }
                    }
                    drop(workers);
                    tracing::warn!(
                        "lost the dispatcher lock (its database connection failed); following"
                    );
                    waiting_logged = false;
                }
                Ok(None) => {
                    if !waiting_logged {
                        tracing::info!(
                            "following: another instance runs the dispatcher; taking over if it stops"
                        );
                        waiting_logged = true;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot try the dispatcher lock; retrying"),
            }
            tokio::time::sleep(RETRY).await;
        }
    })
}
