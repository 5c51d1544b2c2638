//! Notification delivery: the worker that drains the outbox.
//!
//! One pass ([`deliver_pass`], called by the loop of [`spawn_delivery`] and
//! directly by tests on a manual clock):
//! 1. plans new outbox events into deliveries (one per channel and target);
//! 2. for each due delivery, claims it (compare-and-set lease), renders it
//!    in the recipient's language, sends it, and records the attempt with
//!    the delivery's new state in one transaction. Failures retry with
//!    exponential backoff (`notify_retry_base_seconds · 2^(n-1)`, capped at
//!    `notify_retry_max_seconds`); after `notify_max_attempts` the delivery
//!    is `dead`, shows on the coordinators' board and raises a
//!    `delivery_failed` notice in their inbox.
//!
//! Group bots are rate limited per bot (`notify_bot_rate_per_minute`, 20
//! for WeCom and DingTalk): over the limit a delivery waits for the sliding
//! minute to pass instead of being dropped. The window is counted from the
//! attempts table, so it holds across instances.
//!
//! Delivery is at least once towards receivers, and exactly once for what
//! was recorded as delivered: a process that dies after commit but before
//! sending leaves the delivery pending and it is sent after restart; one
//! that dies mid-send (after the receiver got it, before the outcome was
//! written) sends it again when its lease runs out, with the same delivery
//! id, which receivers use to drop the repeat. A claim's lease is
//! `notify_lease_seconds` (default 120 s, at least the 10 s send timeout
//! plus 5 s).

pub mod channels;
pub mod push;
pub mod templates;

use std::time::Duration;

use homefront_domain::Timestamp;
use homefront_domain::notify::{Channel, EventKind};
use homefront_store::StoreError;
use homefront_store::outbox::{AttemptOutcome, NewEvent};
use serde::Serialize;
use serde_json::Value;

use crate::AppState;
use channels::Outgoing;
use templates::{render, render_plain};

/// How long a claimed delivery is held before another worker may retry it,
/// by default (`notify_lease_seconds`).
pub const LEASE_MS: i64 = 2 * 60 * 1000;

/// The shortest lease: the send timeout plus 5 s to record the outcome, so
/// that a live worker's send is never repeated by another while it runs.
pub const MIN_LEASE_MS: i64 = channels::SEND_TIMEOUT.as_millis() as i64 + 5_000;

/// The lease of `config` in ms (`notify_lease_seconds`, at least [`MIN_LEASE_MS`]).
pub fn lease_ms(config: &crate::Config) -> i64 {
    i64::try_from(config.notify_lease_seconds.saturating_mul(1000))
        .unwrap_or(i64::MAX)
        .max(MIN_LEASE_MS)
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    /// Events fanned out into deliveries.
    pub planned: usize,
    /// Deliveries that succeeded.
    pub delivered: usize,
    /// Failed attempts that will be retried.
    pub retrying: usize,
    /// Deliveries that gave up.
    pub dead: usize,
    /// Deliveries put back because a bot's rate limit was reached.
    pub deferred: usize,
}

/// The delay before retry number `attempts` (1-based count of attempts made).
pub fn backoff_ms(base_seconds: u64, max_seconds: u64, attempts: i64) -> i64 {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let secs = base_seconds.saturating_mul(1u64 << exp).min(max_seconds);
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// One delivery pass at the clock's now.
///
/// # Errors
/// Database errors (the pass stops; the next one goes on).
pub async fn deliver_pass(state: &AppState) -> Result<DeliveryReport, StoreError> {
    let cfg = &state.config;
    let store = &state.store;
    let mut report = DeliveryReport {
        planned: store.plan_outbox(state.clock.now().epoch_ms(), 500).await?,
        ..DeliveryReport::default()
    };
    let now = state.clock.now().epoch_ms();
    let lease = lease_ms(cfg);
    for d in store.due_deliveries(now, 200).await? {
        let token = uuid::Uuid::new_v4().to_string();
        if !store.claim_delivery(d.id, &token, now, lease).await? {
            continue;
        }
        let data: Value = serde_json::from_str(&d.data).unwrap_or(Value::Null);
        // The inbox shows plain lines; group bots and webhooks get Markdown
        // with every typed name escaped.
        let message = if d.channel == Channel::Inbox {
            render_plain(d.kind, &data, d.locale.into())
        } else {
            render(d.kind, &data, d.locale.into())
        };
        let result = if d.channel == Channel::Inbox {
            Ok(None)
        } else if d.channel == Channel::Push {
            push::send(state, &d, &data, now).await.map(Some)
        } else if d.bot_deleted_at.is_some() {
            Err(channels::SendError {
                http_status: None,
                error: "the bot was deleted".into(),
                permanent: false,
            })
        } else {
            if let Some(bot) = d.bot_id {
                let (sent, oldest) = store.bot_attempts_since(bot, now - 60_000).await?;
                if sent >= cfg.notify_bot_rate_per_minute {
                    let at = oldest.unwrap_or(now) + 60_000;
                    store.defer_delivery(d.id, &token, at.max(now + 1)).await?;
                    report.deferred += 1;
                    continue;
                }
            }
            match d.url.as_deref() {
                None => Err(channels::SendError {
                    http_status: None,
                    error: "no URL configured".into(),
                    permanent: false,
                }),
                Some(url) => channels::send(
                    &state.http,
                    &Outgoing {
                        channel: d.channel,
                        url,
                        secret: d.secret.as_deref(),
                        delivery_key: &d.delivery_key,
                        kind: d.kind,
                        data: &data,
                        message: &message,
                        event_at: d.event_at,
                        now_ms: now,
                    },
                )
                .await
                .map(Some),
            }
        };
        let outcome = match result {
            Ok(http_status) => AttemptOutcome::Delivered { http_status },
            Err(e) => {
                let attempts = d.attempts + 1;
                let retry_at = (attempts < i64::from(cfg.notify_max_attempts)
                    && d.bot_deleted_at.is_none()
                    && !e.permanent)
                    .then(|| {
                        now + backoff_ms(
                            cfg.notify_retry_base_seconds,
                            cfg.notify_retry_max_seconds,
                            attempts,
                        )
                    });
                tracing::warn!(delivery = %d.delivery_key, channel = %d.channel, attempts,
                    error = %e.error, "notification delivery failed");
                AttemptOutcome::Failed {
                    http_status: e.http_status,
                    error: e.error,
                    retry_at,
                }
            }
        };
        let inbox = (d.channel == Channel::Inbox)
            .then_some((message.title.as_str(), message.body.as_str()));
        if store
            .finish_delivery(&d, &token, &outcome, inbox, now)
            .await?
        {
            match &outcome {
                AttemptOutcome::Delivered { .. } => {
                    report.delivered += 1;
                    if let Some(user) = d.user_id.filter(|_| d.channel == Channel::Inbox) {
                        crate::live::publish_inbox(state, user);
                    }
                }
                AttemptOutcome::Failed {
                    retry_at: Some(_), ..
                } => report.retrying += 1,
                AttemptOutcome::Failed { retry_at: None, .. } => report.dead += 1,
            }
        }
    }
    Ok(report)
}

/// Writes a `credential_expiring` notice (once per credential and expiry
/// date) for every credential that expires within
/// `credential_notice_days`. Returns how many were new.
///
/// # Errors
/// Database errors.
pub async fn credential_pass(state: &AppState) -> Result<usize, StoreError> {
    let now = state.clock.now();
    let mut new = 0;
    for e in state
        .store
        .expiring_credentials(None, now, state.config.credential_notice_days)
        .await?
    {
        let valid_to = e.credential.effective_valid_to();
        let mut data = serde_json::Map::new();
        data.insert("credential_kind".into(), e.credential.kind.as_str().into());
        data.insert("valid_to".into(), valid_to.into());
        let key = format!(
            "credential_expiring:{}:{}",
            e.credential.id,
            valid_to.unwrap_or(0)
        );
        if state
            .store
            .enqueue(
                NewEvent {
                    user_id: Some(e.volunteer_id),
                    data,
                    dedupe_key: Some(key),
                    ..NewEvent::of(EventKind::CredentialExpiring)
                },
                now.epoch_ms(),
            )
            .await?
            .is_some()
        {
            new += 1;
        }
    }
    Ok(new)
}

/// Runs [`deliver_pass`] every `notify_poll_ms`, and at once when a change
/// is published in this process; [`credential_pass`] once an hour.
pub fn spawn_delivery(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let poll = Duration::from_millis(state.config.notify_poll_ms.max(50));
        let mut last_credentials: Option<Timestamp> = None;
        loop {
            let now = state.clock.now();
            if last_credentials.is_none_or(|t| now.epoch_ms() - t.epoch_ms() >= 3_600_000) {
                last_credentials = Some(now);
                if let Err(e) = credential_pass(&state).await {
                    tracing::warn!(error = %e, "credential notice pass failed");
                }
            }
            match deliver_pass(&state).await {
                // More may be due already: go on without waiting.
                Ok(r) if r.planned + r.delivered + r.retrying + r.dead > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "delivery pass failed; retrying"),
            }
            tokio::select! {
                () = tokio::time::sleep(poll) => {}
                () = state.outbox_wake.notified() => {}
            }
        }
    })
}
