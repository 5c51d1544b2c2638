//! The notification outbox: events written in the same transaction as what
//! they announce, fanned out into per-channel deliveries, each sent with
//! retries and recorded attempt by attempt; the in-app inbox; preferences;
//! group bots.
//!
//! Life of a notice:
//! 1. [`enqueue_in`] writes an `outbox_event` inside the caller's
//!    transaction (an order transition, an offer round, an escalation). On
//!    PostgreSQL the transaction also records a live change, which is sent
//!    with `pg_notify('homefront_events', ...)` after it commits (see
//!    [`LiveNotifier`]), so every instance can push the change to its open
//!    pages at once. `NOTIFY` inside the transaction would serialise every
//!    commit of the database on PostgreSQL's notification queue lock.
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

mod bots;
mod delivery;
mod inbox;
mod live;
mod plan;

use chrono_tz::Tz;
use homefront_domain::catalogue::Lane;
use homefront_domain::notify::EventKind;
use homefront_domain::order_state::OrderState;
use sqlx::AnyConnection;

pub use bots::{GroupBot, NewBot};
pub use delivery::{AttemptOutcome, DeadDelivery, DeliveryStatus, DueDelivery};
pub use inbox::{Notification, Preferences};
pub use live::{LIVE_CHANNEL, LiveChange, LiveListener, LiveNotifier};

use crate::decode::Text;
use crate::{Result, Store, Tx};

/// Kinds of events by name (the CHECK list of `outbox_event.kind`).
pub mod kind {
    use homefront_domain::notify::EventKind;

    /// A new order (requester; group bots of the units above it).
    pub const ORDER_SUBMITTED: EventKind = EventKind::OrderSubmitted;
    /// Any other state change of an order.
    pub const ORDER_STATE: EventKind = EventKind::OrderState;
    /// An offer was accepted: the order has its volunteer.
    pub const ORDER_ASSIGNED: EventKind = EventKind::OrderAssigned;
    /// The system confirmed a completed order the requester did not.
    pub const ORDER_AUTO_CONFIRMED: EventKind = EventKind::OrderAutoConfirmed;
    /// Not accepted in time: moved up to a coordinators' queue.
    pub const ORDER_ESCALATED: EventKind = EventKind::OrderEscalated;
    /// An offer to one volunteer.
    pub const OFFER_MADE: EventKind = EventKind::OfferMade;
    /// Another volunteer accepted the order first.
    pub const OFFER_TAKEN: EventKind = EventKind::OfferTaken;
    /// The order no longer needs this volunteer (cancelled, escalated, reassigned).
    pub const OFFER_WITHDRAWN: EventKind = EventKind::OfferWithdrawn;
    /// A volunteer's credential expires soon.
    pub const CREDENTIAL_EXPIRING: EventKind = EventKind::CredentialExpiring;
    /// A delivery gave up after its last attempt (coordinators' inbox).
    pub const DELIVERY_FAILED: EventKind = EventKind::DeliveryFailed;
    /// A coordinator's test message to a group bot.
    pub const BOT_TEST: EventKind = EventKind::BotTest;
}

/// An event to write.
#[derive(Clone, Debug)]
pub struct NewEvent {
    /// What happened.
    pub kind: EventKind,
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
    /// The order's facts (see [`order_facts`]) when the caller has them at
    /// hand; `None`: read from the order.
    pub facts: Option<serde_json::Map<String, serde_json::Value>>,
}

impl NewEvent {
    /// An event of `kind` with every other field empty.
    pub fn of(kind: EventKind) -> Self {
        NewEvent {
            kind,
            order_id: None,
            user_id: None,
            org_unit_id: None,
            bot_id: None,
            data: serde_json::Map::new(),
            dedupe_key: None,
            facts: None,
        }
    }
}

#[derive(sqlx::FromRow)]
struct OrderFacts {
    id: i64,
    code: String,
    name_zh: String,
    name_en: String,
    district: String,
    #[sqlx(try_from = "Text")]
    time_zone: Tz,
    #[sqlx(try_from = "Text")]
    lane: Lane,
    window_start: i64,
    window_end: i64,
    #[sqlx(try_from = "Text")]
    state: OrderState,
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
        "select o.id, i.code, i.name_zh, i.name_en, d.name as district, d.time_zone, o.lane,
            o.window_start, o.window_end, o.state, o.escalation_level
         from service_order o join service_item i on i.id = o.item_id
         join org_unit d on d.id = o.division_id where o.id = $1",
    )
    .bind(order_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(facts_map(order_id, row))
}

/// [`order_facts`] of several orders in one read: the map of each order
/// found (an id that is no order is absent).
///
/// # Errors
/// Database errors.
pub(crate) async fn orders_facts(
    conn: &mut AnyConnection,
    backend: crate::Backend,
    order_ids: &[i64],
) -> Result<std::collections::HashMap<i64, serde_json::Map<String, serde_json::Value>>> {
    if order_ids.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    let list = (1..=order_ids.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "select o.id, i.code, i.name_zh, i.name_en, d.name as district, d.time_zone, o.lane,
            o.window_start, o.window_end, o.state, o.escalation_level
         from service_order o join service_item i on i.id = o.item_id
         join org_unit d on d.id = o.division_id where o.id in ({list})"
    );
    let mut q =
        sqlx::query_as::<_, OrderFacts>(sqlx::AssertSqlSafe(crate::positional(backend, sql)));
    for id in order_ids {
        q = q.bind(*id);
    }
    Ok(q.fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|f| (f.id, facts_map(f.id, Some(f))))
        .collect())
}

fn facts_map(order_id: i64, row: Option<OrderFacts>) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    if let Some(f) = row {
        m.insert("order_id".into(), order_id.into());
        m.insert("item_code".into(), f.code.into());
        m.insert("item_name_zh".into(), f.name_zh.into());
        m.insert("item_name_en".into(), f.name_en.into());
        m.insert("district".into(), f.district.into());
        m.insert("time_zone".into(), f.time_zone.name().into());
        m.insert("lane".into(), f.lane.as_str().into());
        m.insert("window_start".into(), f.window_start.into());
        m.insert("window_end".into(), f.window_end.into());
        m.insert("state".into(), f.state.as_str().into());
        m.insert("escalation_level".into(), f.escalation_level.into());
    }
    m
}

/// Writes an outbox event inside the caller's transaction; the order's
/// non-identifying facts are snapshotted into its data (read from the
/// order unless the caller passes them in `facts`). Returns the new id, or
/// `None` when `dedupe_key` was written before. An order's event also
/// records a live change for other instances (sent after commit).
///
/// # Errors
/// Database errors (the caller's transaction then fails as a whole).
pub async fn enqueue_in(tx: &mut Tx, e: NewEvent, now_ms: i64) -> Result<Option<i64>> {
    let mut data = match (e.order_id, e.facts) {
        (_, Some(facts)) => facts,
        (Some(id), None) => order_facts(tx, id).await?,
        (None, None) => serde_json::Map::new(),
    };
    data.extend(e.data);
    let id: Option<i64> = sqlx::query_scalar(
        "insert into outbox_event (kind, order_id, user_id, org_unit_id, bot_id, data, dedupe_key, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict do nothing returning id",
    )
    .bind(e.kind.as_str())
    .bind(e.order_id)
    .bind(e.user_id)
    .bind(e.org_unit_id)
    .bind(e.bot_id)
    .bind(serde_json::Value::Object(data).to_string())
    .bind(e.dedupe_key)
    .bind(now_ms)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(order_id) = e.order_id {
        tx.notify_live(LiveChange::Order(order_id));
    }
    Ok(id)
}

/// An order event of `kind` with extra `data` pairs, in the caller's transaction.
///
/// # Errors
/// Database errors.
pub async fn enqueue_order_in(
    tx: &mut Tx,
    kind: EventKind,
    order_id: i64,
    user_id: Option<i64>,
    data: &[(&str, serde_json::Value)],
    now_ms: i64,
) -> Result<Option<i64>> {
    enqueue_in(
        tx,
        NewEvent {
            order_id: Some(order_id),
            user_id,
            data: data
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.clone()))
                .collect(),
            ..NewEvent::of(kind)
        },
        now_ms,
    )
    .await
}

impl Store {
    /// Writes an event in its own transaction (periodic discoveries such as
    /// expiring credentials, bot tests). Returns `None` when its dedupe key
    /// was written before.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn enqueue(&self, e: NewEvent, now_ms: i64) -> Result<Option<i64>> {
        let mut tx = self.begin_write().await?;
        let id = enqueue_in(&mut tx, e, now_ms).await?;
        tx.commit().await?;
        Ok(id)
    }
}

/// Whether an event of `kind` with `data` alerts its recipients' phones by
/// Web Push: what a person must act on now. An offer made, taken by
/// another or withdrawn (the phone replaces the offer's alert), a volunteer
/// found for the requester's order, an order cancelled or given up, an
/// escalation for the coordinators. Other state changes stay in the inbox.
pub fn pushed(kind: EventKind, data: &serde_json::Value) -> bool {
    match kind {
        EventKind::OfferMade
        | EventKind::OfferTaken
        | EventKind::OfferWithdrawn
        | EventKind::OrderAssigned
        | EventKind::OrderEscalated => true,
        EventKind::OrderState => matches!(
            data.get("to")
                .and_then(serde_json::Value::as_str)
                .and_then(|s| s.parse().ok()),
            Some(OrderState::Cancelled | OrderState::Unfulfilled)
        ),
        _ => false,
    }
}

/// Whether an order event reaches `user`'s in-app inbox: one notice per
/// change that person must know of and did not make. The requester hears
/// that a volunteer was found, that the service is done (to confirm it),
/// and that the order was cancelled or given up; the assigned volunteer
/// that the order was cancelled or confirmed, and a volunteer that a
/// release or reassignment took it from them; both hear of an automatic
/// confirmation. Submitting, dispatching and
/// checking in and out are the pages' live status (and the volunteer's own
/// taps); webhooks and group bots still hear every change.
pub fn inboxed(
    kind: EventKind,
    data: &serde_json::Value,
    user: i64,
    requester: i64,
    assignee: Option<i64>,
) -> bool {
    let to = data
        .get("to")
        .and_then(serde_json::Value::as_str)
        .and_then(|s| s.parse::<OrderState>().ok());
    let actor = data
        .get("actor_user_id")
        .and_then(serde_json::Value::as_i64);
    if actor == Some(user) {
        return false;
    }
    let is_requester = user == requester;
    let is_assignee = assignee == Some(user);
    // Taken from them (released or reassigned): they must stop.
    if data
        .get("released_user_id")
        .and_then(serde_json::Value::as_i64)
        == Some(user)
    {
        return true;
    }
    match kind {
        EventKind::OrderSubmitted => false,
        EventKind::OrderAssigned => is_requester,
        EventKind::OrderAutoConfirmed => is_requester || is_assignee,
        EventKind::OrderState => match to {
            Some(OrderState::Completed) => is_requester,
            Some(OrderState::Cancelled) => true,
            Some(OrderState::Unfulfilled) => is_requester,
            Some(OrderState::Confirmed) => is_assignee,
            _ => false,
        },
        _ => true,
    }
}
