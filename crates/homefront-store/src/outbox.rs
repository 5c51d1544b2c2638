//! The notification outbox: events written in the same transaction as what
//! they announce, fanned out into per-channel deliveries, each sent with
//! retries and recorded attempt by attempt; the in-app inbox; preferences;
//! group bots.
//!
//! Life of a notice:
//! 1. [`enqueue_in`] writes an `outbox_event` inside the caller's
//!    transaction (an order transition, an offer round, an escalation). On
//!    PostgreSQL it also calls `pg_notify('homefront_events', ...)`, which
//!    the server delivers only if the transaction commits, so every instance
//!    can push the change to its open pages at once.
//! 2. [`Store::plan_outbox`] turns each new event into `outbox_delivery`
//!    rows (inbox per recipient, group bots of the units above the order,
//!    personal and generic webhooks), in one transaction per event guarded
//!    by a compare-and-set on `planned_at`.
//! 3. The delivery worker claims a due delivery ([`Store::claim_delivery`]:
//!    compare-and-set on `claimed_until`), sends it, and records the attempt
//!    and the new state in one transaction ([`Store::finish_delivery`]),
//!    checked against its claim token. Its `delivery_key` is stable across
//!    retries and restarts, and is sent to the receiver as the idempotent
//!    delivery id.

use serde::Serialize;
use sqlx::AnyConnection;

use crate::{Result, Store, Tx, flag};

/// The PostgreSQL `LISTEN` channel of live changes.
pub const LIVE_CHANNEL: &str = "homefront_events";

/// Kinds of events (the CHECK list of `outbox_event.kind`).
pub mod kind {
    /// A new order (requester; group bots of the units above it).
    pub const ORDER_SUBMITTED: &str = "order_submitted";
    /// Any other state change of an order.
    pub const ORDER_STATE: &str = "order_state";
    /// An offer was accepted: the order has its volunteer.
    pub const ORDER_ASSIGNED: &str = "order_assigned";
    /// The system confirmed a completed order the requester did not.
    pub const ORDER_AUTO_CONFIRMED: &str = "order_auto_confirmed";
    /// Not accepted in time: moved up to a coordinators' queue.
    pub const ORDER_ESCALATED: &str = "order_escalated";
    /// An offer to one volunteer.
    pub const OFFER_MADE: &str = "offer_made";
    /// Another volunteer accepted the order first.
    pub const OFFER_TAKEN: &str = "offer_taken";
    /// The order no longer needs this volunteer (cancelled, escalated, reassigned).
    pub const OFFER_WITHDRAWN: &str = "offer_withdrawn";
    /// A volunteer's credential expires soon.
    pub const CREDENTIAL_EXPIRING: &str = "credential_expiring";
    /// A delivery gave up after its last attempt (coordinators' inbox).
    pub const DELIVERY_FAILED: &str = "delivery_failed";
    /// A coordinator's test message to a group bot.
    pub const BOT_TEST: &str = "bot_test";
}

/// An event to write.
#[derive(Clone, Debug, Default)]
pub struct NewEvent<'a> {
    /// One of [`kind`].
    pub kind: &'a str,
    /// The order it is about.
    pub order_id: Option<i64>,
    /// The one person it concerns, when not derived from the order.
    pub user_id: Option<i64>,
    /// The unit it concerns (delivery failures, bot tests).
    pub org_unit_id: Option<i64>,
    /// A bot test's bot.
    pub bot_id: Option<i64>,
    /// Extra template parameters (merged over the order's).
    pub data: serde_json::Map<String, serde_json::Value>,
    /// Written at most once per key.
    pub dedupe_key: Option<String>,
}

/// Whether the connection is PostgreSQL (live notices go through NOTIFY).
fn is_postgres(conn: &AnyConnection) -> bool {
    conn.backend_name() == "PostgreSQL"
}

/// Announces a live change to every instance (PostgreSQL only; delivered
/// at commit). `payload` is JSON such as `{"order":12}` or `{"user":3}`.
pub async fn notify_live_in(conn: &mut AnyConnection, payload: &str) -> Result<()> {
    if is_postgres(conn) {
        sqlx::query("select pg_notify($1, $2)")
            .bind(LIVE_CHANNEL)
            .bind(payload)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct OrderFacts {
    code: String,
    name_zh: String,
    name_en: String,
    district: String,
    time_zone: String,
    lane: String,
    window_start: i64,
    window_end: i64,
    state: String,
    escalation_level: i64,
}

/// The non-identifying facts of an order that messages may carry: item,
/// district, lane, window, state. Never street, phone, coordinates, notes
/// or names.
async fn order_facts(
    conn: &mut AnyConnection,
    order_id: i64,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let row: Option<OrderFacts> = sqlx::query_as(
        "select i.code, i.name_zh, i.name_en, d.name as district, d.time_zone, o.lane,
            o.window_start, o.window_end, o.state, o.escalation_level
         from service_order o join service_item i on i.id = o.item_id
         join org_unit d on d.id = o.division_id where o.id = $1",
    )
    .bind(order_id)
    .fetch_optional(&mut *conn)
    .await?;
    let mut m = serde_json::Map::new();
    if let Some(f) = row {
        m.insert("order_id".into(), order_id.into());
        m.insert("item_code".into(), f.code.into());
        m.insert("item_name_zh".into(), f.name_zh.into());
        m.insert("item_name_en".into(), f.name_en.into());
        m.insert("district".into(), f.district.into());
        m.insert("time_zone".into(), f.time_zone.into());
        m.insert("lane".into(), f.lane.into());
        m.insert("window_start".into(), f.window_start.into());
        m.insert("window_end".into(), f.window_end.into());
        m.insert("state".into(), f.state.into());
        m.insert("escalation_level".into(), f.escalation_level.into());
    }
    Ok(m)
}

/// Writes an outbox event inside the caller's transaction; the order's
/// non-identifying facts are snapshotted into its data. Returns the new
/// id, or `None` when `dedupe_key` was written before.
///
/// # Errors
/// Database errors (the caller's transaction then fails as a whole).
pub async fn enqueue_in(
    conn: &mut AnyConnection,
    e: NewEvent<'_>,
    now_ms: i64,
) -> Result<Option<i64>> {
    let mut data = match e.order_id {
        Some(id) => order_facts(conn, id).await?,
        None => serde_json::Map::new(),
    };
    data.extend(e.data);
    let id: Option<i64> = sqlx::query_scalar(
        "insert into outbox_event (kind, order_id, user_id, org_unit_id, bot_id, data, dedupe_key, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict do nothing returning id",
    )
    .bind(e.kind)
    .bind(e.order_id)
    .bind(e.user_id)
    .bind(e.org_unit_id)
    .bind(e.bot_id)
    .bind(serde_json::Value::Object(data).to_string())
    .bind(e.dedupe_key)
    .bind(now_ms)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(order_id) = e.order_id {
        notify_live_in(conn, &format!("{{\"order\":{order_id}}}")).await?;
    }
    Ok(id)
}

/// An order event of `kind` with extra `data` pairs, in the caller's transaction.
///
/// # Errors
/// Database errors.
pub async fn enqueue_order_in(
    conn: &mut AnyConnection,
    kind: &str,
    order_id: i64,
    user_id: Option<i64>,
    data: &[(&str, serde_json::Value)],
    now_ms: i64,
) -> Result<Option<i64>> {
    enqueue_in(
        conn,
        NewEvent {
            kind,
            order_id: Some(order_id),
            user_id,
            data: data
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.clone()))
                .collect(),
            ..NewEvent::default()
        },
        now_ms,
    )
    .await
}

/// A delivery ready to send, with what the worker needs to render and
/// address it.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct DueDelivery {
    /// Delivery row id.
    pub id: i64,
    /// The idempotent delivery id sent to the receiver.
    pub delivery_key: String,
    /// `inbox`, `wecom`, `dingtalk` or `webhook`.
    pub channel: String,
    /// Attempts so far.
    pub attempts: i64,
    /// Recipient account (inbox, personal webhook).
    pub user_id: Option<i64>,
    /// Group bot.
    pub bot_id: Option<i64>,
    /// Event id.
    pub event_id: i64,
    /// Event kind.
    pub kind: String,
    /// Event data JSON.
    pub data: String,
    /// The order, if any.
    pub order_id: Option<i64>,
    /// Event time, epoch ms.
    pub event_at: i64,
    /// Recipient's or bot's locale (`zh-CN` or `en`).
    pub locale: String,
    /// Where to POST (bot URL or personal webhook URL).
    pub url: Option<String>,
    /// Signing secret (DingTalk `SEC...`, webhook `whsec_...`).
    pub secret: Option<String>,
    /// Set when the bot was deleted after the delivery was planned.
    pub bot_deleted_at: Option<i64>,
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

/// A message placed in a user's inbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct Notification {
    /// Row id.
    pub id: i64,
    /// Event kind, e.g. `offer_made`.
    pub kind: String,
    /// The order, if any.
    pub order_id: Option<i64>,
    /// Title in the recipient's language.
    pub title: String,
    /// Body (Markdown) in the recipient's language.
    pub body: String,
    /// When, epoch ms.
    pub created_at: i64,
    /// When read, epoch ms; `None` while unread.
    pub read_at: Option<i64>,
}

/// A user's notification choices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Preferences {
    /// Put notices in the in-app inbox (default on).
    pub inbox: bool,
    /// While off duty, hear of no new offers (default on).
    pub mute_offers_off_duty: bool,
    /// A personal Standard Webhooks endpoint.
    pub webhook_url: Option<String>,
    /// Its `whsec_` secret (never returned by the API).
    #[serde(skip)]
    pub webhook_secret: Option<String>,
}

impl Default for Preferences {
    fn default() -> Self {
        Self {
            inbox: true,
            mute_offers_off_duty: true,
            webhook_url: None,
            webhook_secret: None,
        }
    }
}

#[derive(sqlx::FromRow)]
struct PreferenceRow {
    inbox: i64,
    mute_offers_off_duty: i64,
    webhook_url: Option<String>,
    webhook_secret: Option<String>,
}

/// A group bot (WeCom, DingTalk) or generic webhook of an org unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct GroupBot {
    /// Row id.
    pub id: i64,
    /// The unit whose subtree it hears about.
    pub org_unit_id: i64,
    /// `wecom`, `dingtalk` or `webhook`.
    pub kind: String,
    /// Label, e.g. `玄武区调度群`.
    pub name: String,
    /// Webhook URL (carries the bot's key: treat as secret).
    #[serde(skip)]
    pub url: String,
    /// Signing secret.
    #[serde(skip)]
    pub secret: Option<String>,
    /// Message language.
    pub locale: String,
    /// Who added it.
    pub created_by: Option<i64>,
    /// Added, epoch ms.
    pub created_at: i64,
}

/// A new group bot.
#[derive(Clone, Debug)]
pub struct NewBot<'a> {
    /// Unit.
    pub org_unit_id: i64,
    /// `wecom`, `dingtalk` or `webhook`.
    pub kind: &'a str,
    /// Label.
    pub name: &'a str,
    /// URL.
    pub url: &'a str,
    /// Secret.
    pub secret: Option<&'a str>,
    /// `zh-CN` or `en`.
    pub locale: &'a str,
    /// Coordinator.
    pub created_by: i64,
}

/// A dead delivery, for the coordinator's board.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct DeadDelivery {
    /// Delivery id.
    pub id: i64,
    /// The idempotent delivery id.
    pub delivery_key: String,
    /// Channel.
    pub channel: String,
    /// Event kind.
    pub kind: String,
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
    pub kind: String,
    /// Channel.
    pub channel: String,
    /// Recipient.
    pub user_id: Option<i64>,
    /// Bot.
    pub bot_id: Option<i64>,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    /// Attempts made.
    pub attempts: i64,
}

/// Kinds group chat bots (WeCom, DingTalk) hear: a county's group hears
/// about its new and escalated orders.
const GROUP_KINDS: [&str; 2] = [kind::ORDER_SUBMITTED, kind::ORDER_ESCALATED];

async fn coordinators_above(tx: &mut Tx, path: &str) -> Result<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "select distinct g.user_id from role_grant g join org_unit u on u.id = g.org_unit_id
         join app_user a on a.id = g.user_id
         where g.role = 'coordinator' and a.disabled = 0 and $1 like u.path || '%'
         order by g.user_id",
    )
    .bind(path)
    .fetch_all(&mut **tx)
    .await?)
}

async fn preferences_in(tx: &mut Tx, user: i64) -> Result<Preferences> {
    let row: Option<PreferenceRow> = sqlx::query_as(
        "select inbox, mute_offers_off_duty, webhook_url, webhook_secret
         from notification_preference where user_id = $1",
    )
    .bind(user)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map_or_else(Preferences::default, |r| Preferences {
        inbox: r.inbox == 1,
        mute_offers_off_duty: r.mute_offers_off_duty == 1,
        webhook_url: r.webhook_url,
        webhook_secret: r.webhook_secret,
    }))
}

async fn insert_delivery(
    tx: &mut Tx,
    event_id: i64,
    channel: &str,
    user_id: Option<i64>,
    bot_id: Option<i64>,
    now_ms: i64,
) -> Result<()> {
    // Stable and unique per event, channel and target: the receiver's
    // deduplication key, the same on every retry and after a restart.
    let target = match (user_id, bot_id) {
        (_, Some(b)) => format!("b{b}"),
        (Some(u), None) => format!("u{u}"),
        (None, None) => "x".to_string(),
    };
    let key = format!("hf-{event_id}-{channel}-{target}");
    sqlx::query(
        "insert into outbox_delivery (event_id, channel, user_id, bot_id, delivery_key, state,
            attempts, next_attempt_at, created_at)
         values ($1, $2, $3, $4, $5, 'pending', 0, $6, $6) on conflict do nothing",
    )
    .bind(event_id)
    .bind(channel)
    .bind(user_id)
    .bind(bot_id)
    .bind(key)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct EventRow {
    id: i64,
    kind: String,
    order_id: Option<i64>,
    user_id: Option<i64>,
    org_unit_id: Option<i64>,
    bot_id: Option<i64>,
}

impl Store {
    /// Fans out up to `limit` unplanned events into deliveries (see the
    /// module docs). Returns how many events this call planned.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn plan_outbox(&self, now_ms: i64, limit: i64) -> Result<usize> {
        let events: Vec<EventRow> = sqlx::query_as(
            "select id, kind, order_id, user_id, org_unit_id, bot_id from outbox_event
             where planned_at is null order by id limit $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut planned = 0;
        for e in events {
            let mut tx = self.begin_write().await?;
            // Compare-and-set: one instance plans each event.
            let won = sqlx::query(
                "update outbox_event set planned_at = $1 where id = $2 and planned_at is null",
            )
            .bind(now_ms)
            .bind(e.id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !won {
                tx.rollback().await?;
                continue;
            }
            plan_event(&mut tx, &e, now_ms).await?;
            tx.commit().await?;
            planned += 1;
        }
        Ok(planned)
    }

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
                b.deleted_at as bot_deleted_at
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
        Ok(sqlx::query(
            "update outbox_delivery set claimed_until = $1, claim_token = $2
             where id = $3 and state = 'pending' and next_attempt_at <= $4
               and (claimed_until is null or claimed_until < $4)",
        )
        .bind(now_ms + lease_ms)
        .bind(token)
        .bind(id)
        .bind(now_ms)
        .execute(self.pool())
        .await?
        .rows_affected()
            == 1)
    }

    /// Puts a claimed delivery back without an attempt, due at `at` (a bot's
    /// rate limit is reached: queue, don't drop).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn defer_delivery(&self, id: i64, token: &str, at: i64) -> Result<()> {
        sqlx::query(
            "update outbox_delivery set next_attempt_at = $1, claimed_until = null, claim_token = null
             where id = $2 and claim_token = $3 and state = 'pending'",
        )
        .bind(at)
        .bind(id)
        .bind(token)
        .execute(self.pool())
        .await?;
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
            AttemptOutcome::Delivered { http_status } => ("delivered", None, None, *http_status),
            AttemptOutcome::Failed {
                http_status,
                error,
                retry_at,
            } => (
                if retry_at.is_some() {
                    "pending"
                } else {
                    "dead"
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
        .bind(state)
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
        .bind(flag(state == "delivered"))
        .bind(status)
        .bind(error)
        .execute(&mut *tx)
        .await?;
        if let (Some((title, body)), Some(user), "delivered") = (inbox, d.user_id, state) {
            sqlx::query(
                "insert into notification (user_id, delivery_id, kind, order_id, title, body, created_at)
                 values ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(user)
            .bind(d.id)
            .bind(&d.kind)
            .bind(d.order_id)
            .bind(title)
            .bind(body)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            notify_live_in(&mut tx, &format!("{{\"user\":{user}}}")).await?;
        }
        if state == "dead" && d.kind != kind::DELIVERY_FAILED {
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
                data.insert("channel".into(), d.channel.clone().into());
                data.insert("failed_kind".into(), d.kind.clone().into());
                data.insert("delivery_id".into(), d.delivery_key.clone().into());
                if let Some(o) = d.order_id {
                    data.insert("order_id".into(), o.into());
                }
                enqueue_in(
                    &mut tx,
                    NewEvent {
                        kind: kind::DELIVERY_FAILED,
                        org_unit_id: unit,
                        data,
                        ..NewEvent::default()
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
    /// (org paths; `None`: everywhere), newest first.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn dead_deliveries(&self, scopes: Option<&[String]>) -> Result<Vec<DeadDelivery>> {
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
        sql.push_str(" order by d.id desc limit 500");
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for s in scopes.unwrap_or_default() {
            q = q.bind(format!("{s}%"));
        }
        Ok(q.fetch_all(self.pool()).await?)
    }

    /// Writes an event in its own transaction (periodic discoveries such as
    /// expiring credentials, bot tests). Returns `None` when its dedupe key
    /// was written before.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn enqueue(&self, e: NewEvent<'_>, now_ms: i64) -> Result<Option<i64>> {
        let mut tx = self.begin_write().await?;
        let id = enqueue_in(&mut tx, e, now_ms).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// A user's inbox, newest first (at most `limit`).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn inbox(
        &self,
        user: i64,
        unread_only: bool,
        limit: i64,
    ) -> Result<Vec<Notification>> {
        Ok(sqlx::query_as(
            "select id, kind, order_id, title, body, created_at, read_at from notification
             where user_id = $1 and ($2 = 0 or read_at is null) order by id desc limit $3",
        )
        .bind(user)
        .bind(flag(unread_only))
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Unread notices of a user.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn unread_count(&self, user: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "select cast(count(*) as bigint) from notification where user_id = $1 and read_at is null",
        )
        .bind(user)
        .fetch_one(self.pool())
        .await?)
    }

    /// Marks notice `id` of `user` read; `false` when it is not theirs.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn mark_read(&self, user: i64, id: i64, now_ms: i64) -> Result<bool> {
        let exists: Option<i64> =
            sqlx::query_scalar("select id from notification where id = $1 and user_id = $2")
                .bind(id)
                .bind(user)
                .fetch_optional(self.pool())
                .await?;
        if exists.is_none() {
            return Ok(false);
        }
        sqlx::query("update notification set read_at = $1 where id = $2 and read_at is null")
            .bind(now_ms)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(true)
    }

    /// Marks every notice of `user` read; returns how many changed.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn mark_all_read(&self, user: i64, now_ms: i64) -> Result<u64> {
        Ok(sqlx::query(
            "update notification set read_at = $1 where user_id = $2 and read_at is null",
        )
        .bind(now_ms)
        .bind(user)
        .execute(self.pool())
        .await?
        .rows_affected())
    }

    /// A user's preferences (the defaults when never set).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn notification_preferences(&self, user: i64) -> Result<Preferences> {
        let mut tx = self.pool().begin().await?;
        let p = preferences_in(&mut tx, user).await?;
        tx.commit().await?;
        Ok(p)
    }

    /// Replaces a user's preferences.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn set_notification_preferences(
        &self,
        user: i64,
        p: &Preferences,
        now_ms: i64,
    ) -> Result<()> {
        sqlx::query(
            "insert into notification_preference (user_id, inbox, mute_offers_off_duty, webhook_url,
                webhook_secret, updated_at)
             values ($1, $2, $3, $4, $5, $6)
             on conflict (user_id) do update set inbox = excluded.inbox,
                mute_offers_off_duty = excluded.mute_offers_off_duty,
                webhook_url = excluded.webhook_url, webhook_secret = excluded.webhook_secret,
                updated_at = excluded.updated_at",
        )
        .bind(user)
        .bind(flag(p.inbox))
        .bind(flag(p.mute_offers_off_duty))
        .bind(&p.webhook_url)
        .bind(&p.webhook_secret)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Adds a group bot.
    ///
    /// # Errors
    /// Database errors (CHECK on kind and locale).
    #[tracing::instrument(skip_all)]
    pub async fn create_bot(&self, b: &NewBot<'_>, now_ms: i64) -> Result<GroupBot> {
        let id: i64 = sqlx::query_scalar(
            "insert into group_bot (org_unit_id, kind, name, url, secret, locale, created_by, created_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8) returning id",
        )
        .bind(b.org_unit_id)
        .bind(b.kind)
        .bind(b.name)
        .bind(b.url)
        .bind(b.secret)
        .bind(b.locale)
        .bind(b.created_by)
        .bind(now_ms)
        .fetch_one(self.pool())
        .await
        .map_err(crate::classify)?;
        self.bot(id)
            .await?
            .ok_or(crate::StoreError::Database(sqlx::Error::RowNotFound))
    }

    /// A live (not deleted) bot by id.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn bot(&self, id: i64) -> Result<Option<GroupBot>> {
        Ok(sqlx::query_as(
            "select id, org_unit_id, kind, name, url, secret, locale, created_by, created_at
             from group_bot where id = $1 and deleted_at is null",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Live bots of one unit, by id.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn bots_of_unit(&self, org_unit_id: i64) -> Result<Vec<GroupBot>> {
        Ok(sqlx::query_as(
            "select id, org_unit_id, kind, name, url, secret, locale, created_by, created_at
             from group_bot where org_unit_id = $1 and deleted_at is null order by id",
        )
        .bind(org_unit_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Deletes a bot (kept as a row for the delivery history; its pending
    /// deliveries are dropped as dead by the worker). Returns whether it was live.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn delete_bot(&self, id: i64, now_ms: i64) -> Result<bool> {
        Ok(
            sqlx::query(
                "update group_bot set deleted_at = $1 where id = $2 and deleted_at is null",
            )
            .bind(now_ms)
            .bind(id)
            .execute(self.pool())
            .await?
            .rows_affected()
                == 1,
        )
    }
}

/// Writes the deliveries of one event inside `tx`.
async fn plan_event(tx: &mut Tx, e: &EventRow, now_ms: i64) -> Result<()> {
    let order: Option<(String, i64, Option<i64>)> = match e.order_id {
        Some(id) => {
            sqlx::query_as(
                "select d.path, h.requester_user_id, o.assignee_user_id from service_order o
                 join org_unit d on d.id = o.division_id join household h on h.id = o.household_id
                 where o.id = $1",
            )
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?
        }
        None => None,
    };
    let unit_path: Option<String> = match (&order, e.org_unit_id) {
        (Some((path, _, _)), _) => Some(path.clone()),
        (None, Some(u)) => {
            sqlx::query_scalar("select path from org_unit where id = $1")
                .bind(u)
                .fetch_optional(&mut **tx)
                .await?
        }
        (None, None) => None,
    };
    let k = e.kind.as_str();
    let mut users: Vec<i64> = match k {
        kind::OFFER_MADE
        | kind::OFFER_TAKEN
        | kind::OFFER_WITHDRAWN
        | kind::CREDENTIAL_EXPIRING => e.user_id.into_iter().collect(),
        kind::ORDER_ESCALATED | kind::DELIVERY_FAILED => match &unit_path {
            Some(p) => coordinators_above(tx, p).await?,
            None => Vec::new(),
        },
        kind::BOT_TEST => Vec::new(),
        _ => match &order {
            Some((_, requester, assignee)) => {
                let mut v = vec![*requester];
                v.extend(assignee.filter(|a| a != requester));
                v
            }
            None => Vec::new(),
        },
    };
    users.dedup();
    for user in users {
        let prefs = preferences_in(tx, user).await?;
        if k == kind::OFFER_MADE && prefs.mute_offers_off_duty {
            let on_duty: Option<i64> =
                sqlx::query_scalar("select on_duty from volunteer where user_id = $1")
                    .bind(user)
                    .fetch_optional(&mut **tx)
                    .await?;
            if on_duty == Some(0) {
                continue;
            }
        }
        if prefs.inbox {
            insert_delivery(tx, e.id, "inbox", Some(user), None, now_ms).await?;
        }
        if prefs.webhook_url.is_some() && k != kind::DELIVERY_FAILED {
            insert_delivery(tx, e.id, "webhook", Some(user), None, now_ms).await?;
        }
    }
    let bots: Vec<(i64, String)> = if k == kind::BOT_TEST {
        sqlx::query_as("select id, kind from group_bot where id = $1 and deleted_at is null")
            .bind(e.bot_id)
            .fetch_all(&mut **tx)
            .await?
    } else if let (Some(path), true) = (&unit_path, e.order_id.is_some()) {
        // Bots of the order's division and of every unit above it.
        sqlx::query_as(
            "select b.id, b.kind from group_bot b join org_unit u on u.id = b.org_unit_id
             where b.deleted_at is null and $1 like u.path || '%' order by b.id",
        )
        .bind(path)
        .fetch_all(&mut **tx)
        .await?
    } else {
        Vec::new()
    };
    let order_kind = k.starts_with("order_");
    for (bot, bot_kind) in bots {
        let wanted = k == kind::BOT_TEST
            || match bot_kind.as_str() {
                "webhook" => order_kind,
                _ => GROUP_KINDS.contains(&k),
            };
        if wanted {
            insert_delivery(tx, e.id, &bot_kind, None, Some(bot), now_ms).await?;
        }
    }
    Ok(())
}

/// A listener of live changes on PostgreSQL (`LISTEN homefront_events`):
/// what any instance committed, as the JSON payload written by
/// [`notify_live_in`]. Several `homefront serve` instances on one database
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
