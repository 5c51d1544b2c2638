//! Background workers started by `homefront serve`. Each runs one pass as a
//! plain async function (called directly by tests with a manual clock) and
//! a loop that repeats the pass on a timer.

use std::time::Duration;

use homefront_domain::Timestamp;

use crate::AppState;

/// Purges the address, phone, coordinates and notes of orders that ended
/// more than `retention_days` days before the clock's now. Returns the
/// number of orders purged.
///
/// # Errors
/// Database errors.
pub async fn purge_expired(state: &AppState) -> Result<u64, homefront_store::StoreError> {
    let now = state.clock.now();
    let cutoff = now.plus_days(-state.config.retention_days);
    let purged = state
        .store
        .purge_ended_orders(cutoff.epoch_ms(), now.epoch_ms())
        .await?;
    // Expired sessions and old login attempts go too.
    state
        .store
        .prune_sessions(now.epoch_ms(), now.epoch_ms() - Timestamp::DAY_MS)
        .await?;
    if purged > 0 {
        tracing::info!(purged, "retention: purged personal data of ended orders");
    }
    Ok(purged)
}

/// Runs [`purge_expired`] once an hour, so each order is purged within an
/// hour of its retention deadline (a daily job would be up to a day late).
pub fn spawn_retention(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tick.tick().await;
            if let Err(e) = purge_expired(&state).await {
                tracing::warn!(error = %e, "retention pass failed; retrying next hour");
            }
        }
    })
}
