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

/// What one fulfilment pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FulfilmentReport {
    /// Open check-ins flagged and capped.
    pub capped: usize,
    /// Orders confirmed automatically.
    pub auto_confirmed: usize,
    /// Follow-up orders created.
    pub follow_ups: usize,
    /// Re-pairing proposals given a suggested replacement.
    pub proposals: usize,
}

/// One fulfilment pass: caps open sessions past their deadline, confirms
/// orders left unconfirmed for `auto_confirm_days`, and creates due
/// follow-up orders (offered first to the same volunteer).
///
/// # Errors
/// Database errors.
pub async fn fulfilment_pass(
    state: &AppState,
) -> Result<FulfilmentReport, homefront_store::StoreError> {
    let now = state.clock.now();
    let cfg = &state.config;
    let mut report = FulfilmentReport::default();
    for order_id in state
        .store
        .cap_open_sessions(cfg.session_grace_minutes, now.epoch_ms())
        .await?
    {
        report.capped += 1;
        crate::live::publish(state, order_id);
    }
    let days = cfg.auto_confirm_days;
    let due = state
        .store
        .unconfirmed_before(now.plus_days(-days).epoch_ms())
        .await?;
    for order_id in due {
        let reason = homefront_domain::order_state::Reason::parse(&format!(
            "auto-confirmed: the requester did not confirm within {days} days of completion"
        ))
        .ok();
        match state
            .store
            .confirm_order(order_id, None, None, reason, now.epoch_ms())
            .await
        {
            Ok(_) => {
                report.auto_confirmed += 1;
                crate::live::publish(state, order_id);
            }
            // Confirmed by the requester meanwhile.
            Err(
                homefront_store::StoreError::Transition(_) | homefront_store::StoreError::Stale,
            ) => {}
            Err(e) => return Err(e),
        }
    }
    for (order_id, volunteer, duration) in state.store.follow_ups_due(now.epoch_ms()).await? {
        // A follow-up call is placed in the daytime of the household's
        // division; one that falls due at night waits for the morning's
        // first pass, when its volunteers are about.
        let Some(original) = state.store.order(order_id).await? else {
            continue;
        };
        if !in_follow_up_hours(now, original.time_zone) {
            continue;
        }
        // The follow-up can happen any time over the next day.
        let start = now.epoch_ms();
        let end = now
            .plus_days(1)
            .epoch_ms()
            .max(start + duration * Timestamp::MINUTE_MS);
        if let Some(id) = state
            .store
            .create_follow_up(order_id, volunteer, start, end, now.epoch_ms())
            .await?
        {
            report.follow_ups += 1;
            crate::live::publish(state, id);
            state.dispatch_wake.notify_one();
        }
    }
    report.proposals = suggest_replacements(state).await?;
    Ok(report)
}

/// Local hours, `[from, to)`, in which follow-up calls are placed
/// (created and offered): 08:00 to 20:00 in the division's time zone. A
/// follow-up that falls due outside them is placed at the next 08:00, so
/// nobody is called at night and it reaches volunteers while they are on
/// duty.
pub const FOLLOW_UP_HOURS: (u32, u32) = (8, 20);

/// Whether `now` lies in [`FOLLOW_UP_HOURS`] in zone `tz`.
fn in_follow_up_hours(now: Timestamp, tz: chrono_tz::Tz) -> bool {
    use chrono::Timelike;
    now.to_datetime()
        .map(|t| t.with_timezone(&tz).hour())
        .is_some_and(|h| (FOLLOW_UP_HOURS.0..FOLLOW_UP_HOURS.1).contains(&h))
}

/// Suggests a replacement for each open re-pairing proposal without one:
/// the active volunteer of the former volunteer's team nearest (haversine)
/// to the household's first member, not already paired with it.
async fn suggest_replacements(state: &AppState) -> Result<usize, homefront_store::StoreError> {
    use homefront_domain::GeoPoint;
    use homefront_domain::vetting::VettingState;
    let store = &state.store;
    let mut made = 0;
    for p in store.open_pairing_proposals().await? {
        if p.proposed_volunteer_user_id.is_some() {
            continue;
        }
        let Some(former) = store.volunteer(p.former_volunteer_user_id).await? else {
            continue;
        };
        let members = store.members(p.household_id).await?;
        let Some(member) = members.first() else {
            continue;
        };
        let home = match member.longitude.zip(member.latitude) {
            Some((lon, lat)) => GeoPoint::new(lon, lat).ok(),
            None => store
                .org_unit(member.division_id)
                .await?
                .and_then(|d| d.longitude.zip(d.latitude))
                .and_then(|(lon, lat)| GeoPoint::new(lon, lat).ok()),
        };
        let Some(home) = home else { continue };
        let paired: Vec<i64> = store
            .live_pairings(p.household_id)
            .await?
            .iter()
            .map(|x| x.volunteer_user_id)
            .collect();
        let team = store
            .volunteers(&homefront_store::volunteers::VolunteerFilter {
                scopes: None,
                state: Some(VettingState::Active),
                team_id: Some(former.team_id),
                ..homefront_store::volunteers::VolunteerFilter::default()
            })
            .await?;
        let best = team
            .iter()
            .filter(|v| v.user_id != former.user_id && !paired.contains(&v.user_id))
            .filter_map(|v| v.location().map(|l| (l.haversine_km(&home), v.user_id)))
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        if let Some((_, id)) = best {
            store.suggest_replacement(p.id, id).await?;
            made += 1;
        }
    }
    Ok(made)
}

/// Runs [`fulfilment_pass`] every minute.
pub fn spawn_fulfilment(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            if let Err(e) = fulfilment_pass(&state).await {
                tracing::warn!(error = %e, "fulfilment pass failed; retrying next minute");
            }
        }
    })
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
