//! Deliveries: claimed by the worker, sent, and recorded attempt by
//! attempt; dead ones listed for coordinators.

use homefront_domain::locale::Locale;
use homefront_domain::notify::{Channel, DeliveryState, EventKind};
use serde::Serialize;

use super::{LiveChange, NewEvent, enqueue_in};
use crate::decode::Text;
use crate::{Result, Store, flag};

/// A delivery ready to send, with what the worker needs to render and
/// address it.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct DueDelivery {
    /// Delivery row id.
    pub id: i64,
    /// The idempotent delivery id sent to the receiver.
    pub delivery_key: String,
    /// Where it goes.
    #[sqlx(try_from = "Text")]
    pub channel: Channel,
    /// Attempts so far.
    pub attempts: i64,
    /// Recipient account (inbox, personal webhook).
    pub user_id: Option<i64>,
    /// Group bot.
    pub bot_id: Option<i64>,
    /// Event id.
    pub event_id: i64,
    /// Event kind.
    #[sqlx(try_from = "Text")]
    pub kind: EventKind,
    /// Event data JSON.
    pub data: String,
    /// The order, if any.
    pub order_id: Option<i64>,
    /// Event time, epoch ms.
    pub event_at: i64,
    /// Recipient's or bot's language.
    #[sqlx(try_from = "Text")]
    pub locale: Locale,
    /// Where to POST (bot URL or personal webhook URL).
    pub url: Option<String>,
    /// Signing secret (DingTalk `SEC...`, webhook `whsec_...`).
    pub secret: Option<String>,
    /// Set when the bot was deleted after the delivery was planned.
    pub bot_deleted_at: Option<i64>,
    /// The push subscription (channel `push`).
    pub push_subscription_id: Option<i64>,
}

/// How one attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The receiver accepted it.
    Delivered {
        /// HTTP status, for HTTP channels.
        http_status: Option<i64>,
    },
    /// It failed; retry at `retry_at` (epoch ms), or give up (`None`).
    Failed {
        /// HTTP status, when one came back.
        http_status: Option<i64>,
        /// What went wrong (no secrets, no message body).
        error: String,
        /// Next try, or `None` when this was the last attempt.
        retry_at: Option<i64>,
    },
}

/// A dead delivery, for the coordinator's board.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct DeadDelivery {
    /// Delivery id.
    pub id: i64,
    /// The idempotent delivery id.
    pub delivery_key: String,
    /// Channel.
    #[sqlx(try_from = "Text")]
    #[schema(value_type = String)]
    pub channel: Channel,
    /// Event kind.
    #[sqlx(try_from = "Text")]
    #[schema(value_type = String)]
    pub kind: EventKind,
    /// Order, if any.
    pub order_id: Option<i64>,
    /// Bot, if any.
    pub bot_id: Option<i64>,
    /// Recipient, if personal.
    pub user_id: Option<i64>,
    /// Attempts made.
    pub attempts: i64,
    /// Last error.
    pub last_error: Option<String>,
    /// Event time, epoch ms.
    pub created_at: i64,
}

/// A delivery's state and attempt count (for checks).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct DeliveryStatus {
    /// Delivery id.
    pub id: i64,
    /// The idempotent delivery id sent to the receiver.
    pub delivery_key: String,
    /// Event id.
    pub event_id: i64,
    /// Event kind.
    #[sqlx(try_from = "Text")]
    pub kind: EventKind,
    /// Channel.
    #[sqlx(try_from = "Text")]
    pub channel: Channel,
    /// Recipient.
    pub user_id: Option<i64>,
    /// Bot.
    pub bot_id: Option<i64>,
    /// Where it stands.
    #[sqlx(try_from = "Text")]
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: i64,
}

impl Store {
    /// Deliveries due at `now_ms` and not claimed by a live lease, oldest first.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn due_deliveries(&self, now_ms: i64, limit: i64) -> Result<Vec<DueDelivery>> {
        Ok(sqlx::query_as(
            "select d.id, d.delivery_key, d.channel, d.attempts, d.user_id, d.bot_id,
                e.id as event_id, e.kind, e.data, e.order_id, e.created_at as event_at,
                coalesce(b.locale, u.locale, 'zh-CN') as locale,
                coalesce(b.url, p.webhook_url) as url,
                case when b.id is not null then b.secret else p.webhook_secret end as secret,
                b.deleted_at as bot_deleted_at, d.push_subscription_id
             from outbox_delivery d
             join outbox_event e on e.id = d.event_id
             left join group_bot b on b.id = d.bot_id
             left join app_user u on u.id = d.user_id
             left join notification_preference p on p.user_id = d.user_id
             where d.state = 'pending' and d.next_attempt_at <= $1
               and (d.claimed_until is null or d.claimed_until < $1)
             order by d.id limit $2",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Claims delivery `id` for `lease_ms` under `token` (compare-and-set:
    /// pending, due, and not under another live lease). Returns whether
    /// this caller holds it.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn claim_delivery(
        &self,
        id: i64,
        token: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let claimed = sqlx::query(
            "update outbox_delivery set claimed_until = $1, claim_token = $2
             where id = $3 and state = 'pending' and next_attempt_at <= $4
               and (claimed_until is null or claimed_until < $4)",
        )
        .bind(now_ms + lease_ms)
        .bind(token)
        .bind(id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        tx.commit().await?;
        Ok(claimed)
    }

    /// Puts a claimed delivery back without an attempt, due at `at` (a bot's
    /// rate limit is reached: queue, don't drop).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn defer_delivery(&self, id: i64, token: &str, at: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "update outbox_delivery set next_attempt_at = $1, claimed_until = null, claim_token = null
             where id = $2 and claim_token = $3 and state = 'pending'",
        )
        .bind(at)
        .bind(id)
        .bind(token)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Attempts sent to `bot_id` at or after `since_ms`: their count and the
    /// earliest instant (the sliding window of a bot's rate limit).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn bot_attempts_since(
        &self,
        bot_id: i64,
        since_ms: i64,
    ) -> Result<(i64, Option<i64>)> {
        Ok(sqlx::query_as(
            "select cast(count(*) as bigint), min(at) from outbox_attempt where bot_id = $1 and at >= $2",
        )
        .bind(bot_id)
        .bind(since_ms)
        .fetch_one(self.pool())
        .await?)
    }

    /// Records an attempt of claimed delivery `d` and its outcome in one
    /// transaction, only while `token` still holds the claim. A delivery
    /// that gives up becomes `dead` and raises a `delivery_failed` event for
    /// the coordinators of its unit. `inbox` (title, body) puts the message
    /// in the recipient's inbox in the same transaction. Returns whether
    /// the claim was still held (else nothing was written).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn finish_delivery(
        &self,
        d: &DueDelivery,
        token: &str,
        outcome: &AttemptOutcome,
        inbox: Option<(&str, &str)>,
        now_ms: i64,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let (state, next, error, status) = match outcome {
            AttemptOutcome::Delivered { http_status } => {
                (DeliveryState::Delivered, None, None, *http_status)
            }
            AttemptOutcome::Failed {
                http_status,
                error,
                retry_at,
            } => (
                if retry_at.is_some() {
                    DeliveryState::Pending
                } else {
                    DeliveryState::Dead
                },
                *retry_at,
                Some(error.as_str()),
                *http_status,
            ),
        };
        let held = sqlx::query(
            "update outbox_delivery set state = $1, attempts = attempts + 1,
                next_attempt_at = coalesce($2, next_attempt_at), claimed_until = null,
                claim_token = null, last_error = $3,
                delivered_at = case when $1 = 'delivered' then $4 else delivered_at end
             where id = $5 and claim_token = $6 and state = 'pending'",
        )
        .bind(state.as_str())
        .bind(next)
        .bind(error)
        .bind(now_ms)
        .bind(d.id)
        .bind(token)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !held {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "insert into outbox_attempt (delivery_id, bot_id, at, ok, http_status, error)
             values ($1, $2, $3, $4, $5, $6)",
        )
        .bind(d.id)
        .bind(d.bot_id)
        .bind(now_ms)
        .bind(flag(state == DeliveryState::Delivered))
        .bind(status)
        .bind(error)
        .execute(&mut *tx)
        .await?;
        if let (Some((title, body)), Some(user), DeliveryState::Delivered) =
            (inbox, d.user_id, state)
        {
            sqlx::query(
                "insert into notification (user_id, delivery_id, kind, order_id, title, body, created_at)
                 values ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(user)
            .bind(d.id)
            .bind(d.kind.as_str())
            .bind(d.order_id)
            .bind(title)
            .bind(body)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            tx.notify_live(LiveChange::Inbox(user));
        }
        // A phone that stopped taking alerts is its holder's business (the
        // volunteer's page shows it), not the coordinators'.
        if state == DeliveryState::Dead
            && d.kind != EventKind::DeliveryFailed
            && d.channel != Channel::Push
        {
            let unit: Option<i64> = sqlx::query_scalar(
                "select coalesce(o.division_id, e.org_unit_id, b.org_unit_id)
                 from outbox_event e left join service_order o on o.id = e.order_id
                 left join group_bot b on b.id = $1 where e.id = $2",
            )
            .bind(d.bot_id)
            .bind(d.event_id)
            .fetch_optional(&mut *tx)
            .await?
            .flatten();
            if unit.is_some() {
                let mut data = serde_json::Map::new();
                data.insert("channel".into(), d.channel.as_str().into());
                data.insert("failed_kind".into(), d.kind.as_str().into());
                data.insert("delivery_id".into(), d.delivery_key.clone().into());
                if let Some(o) = d.order_id {
                    data.insert("order_id".into(), o.into());
                }
                enqueue_in(
                    &mut tx,
                    NewEvent {
                        org_unit_id: unit,
                        data,
                        ..NewEvent::of(EventKind::DeliveryFailed)
                    },
                    now_ms,
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Every delivery of the events of `order_id` (or of all events when
    /// `None`), by id: for checks and the board.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn deliveries(&self, order_id: Option<i64>) -> Result<Vec<DeliveryStatus>> {
        let filter = if order_id.is_some() {
            "e.order_id = $1"
        } else {
            "1 = 1"
        };
        let sql = format!(
            "select d.id, d.delivery_key, d.event_id, e.kind, d.channel, d.user_id, d.bot_id, d.state,
                d.attempts
             from outbox_delivery d join outbox_event e on e.id = d.event_id
             where {filter} order by d.id"
        );
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        if let Some(o) = order_id {
            q = q.bind(o);
        }
        Ok(q.fetch_all(self.pool()).await?)
    }

    /// Dead deliveries whose order, unit or bot lies in one of `scopes`
    /// (org paths; `None`: everywhere), newest first: at most `limit` older
    /// than `before_id` (all when `None`).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn dead_deliveries(
        &self,
        scopes: Option<&[String]>,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<DeadDelivery>> {
        let mut sql = String::from(
            "select d.id, d.delivery_key, d.channel, e.kind, e.order_id, d.bot_id, d.user_id,
                d.attempts, d.last_error, e.created_at
             from outbox_delivery d join outbox_event e on e.id = d.event_id
             left join service_order o on o.id = e.order_id
             left join group_bot b on b.id = d.bot_id
             left join org_unit u on u.id = coalesce(o.division_id, b.org_unit_id, e.org_unit_id)
             where d.state = 'dead'",
        );
        if let Some(scopes) = scopes {
            if scopes.is_empty() {
                return Ok(Vec::new());
            }
            let parts: Vec<String> = (1..=scopes.len())
                .map(|i| format!("u.path like ${i}"))
                .collect();
            sql.push_str(&format!(" and ({})", parts.join(" or ")));
        }
        let n = scopes.map_or(0, <[String]>::len);
        sql.push_str(&format!(
            " and d.id < ${} order by d.id desc limit ${}",
            n + 1,
            n + 2
        ));
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for s in scopes.unwrap_or_default() {
            q = q.bind(format!("{s}%"));
        }
        q = q.bind(before_id.unwrap_or(i64::MAX)).bind(limit);
        Ok(q.fetch_all(self.pool()).await?)
    }
}
