//! Orders, their append-only event log, idempotency keys, the access log of
//! sensitive reads, and retention.

pub mod events;

pub use events::OrderEvent;

use chrono_tz::Tz;
use homefront_domain::catalogue::{Lane, ServiceMode, Urgency};
use homefront_domain::notify::EventKind;
use homefront_domain::order_state::{self, OrderAction, OrderState, Reason};
use homefront_domain::privacy::RecordKind;
use serde::Serialize;

use crate::decode::{Flag, Text};
use crate::{Backend, Result, Store, StoreError, Tx, outbox};

/// An order joined with its item and division, as the API shapes it.
#[derive(Clone, Debug, PartialEq, Serialize, sqlx::FromRow)]
pub struct OrderRow {
    /// Row id.
    pub id: i64,
    /// Catalogue item.
    pub item_id: i64,
    /// Item code, e.g. `groceries`.
    pub item_code: String,
    /// Item name, Chinese.
    pub item_name_zh: String,
    /// Item name, English.
    pub item_name_en: String,
    /// `onsite` or `remote`.
    #[sqlx(try_from = "Text")]
    pub item_mode: ServiceMode,
    /// The item may run alongside other assignments (remote only).
    #[sqlx(try_from = "Flag")]
    pub item_runs_alongside: bool,
    /// Household served.
    pub household_id: i64,
    /// Member served.
    pub member_id: i64,
    /// Who placed it (the requester, or a liaison on their behalf).
    pub placed_by: i64,
    /// The requester who owns the household.
    pub requester_user_id: i64,
    /// Division where the service happens.
    pub division_id: i64,
    /// Division name, e.g. `玄武区`.
    pub division_name: String,
    /// Division's org path (scope checks).
    pub division_path: String,
    /// Division's time zone.
    #[sqlx(try_from = "Text")]
    pub time_zone: Tz,
    /// Lifecycle state.
    #[sqlx(try_from = "Text")]
    pub state: OrderState,
    /// Priority lane.
    #[sqlx(try_from = "Text")]
    pub lane: Lane,
    /// The requester's urgency.
    #[sqlx(try_from = "Text")]
    pub urgency: Urgency,
    /// Window start, epoch ms (UTC).
    pub window_start: i64,
    /// Window end, epoch ms (UTC).
    pub window_end: i64,
    /// Street address (sensitive; `None` once purged).
    pub street: Option<String>,
    /// Contact phone (sensitive; `None` once purged).
    pub contact_phone: Option<String>,
    /// Longitude of the service location (sensitive).
    pub longitude: Option<f64>,
    /// Latitude of the service location (sensitive).
    pub latitude: Option<f64>,
    /// Free-text notes for the assigned volunteer (sensitive).
    pub notes: Option<String>,
    /// Non-identifying note shown before acceptance.
    pub public_note: Option<String>,
    /// Assigned volunteer's account, while assigned or after.
    pub assignee_user_id: Option<i64>,
    /// Created, epoch ms.
    pub created_at: i64,
    /// Last change, epoch ms.
    pub updated_at: i64,
    /// When it ended (completed, cancelled or unfulfilled), epoch ms.
    pub ended_at: Option<i64>,
    /// When sensitive fields were purged, epoch ms.
    pub purged_at: Option<i64>,
    /// 0: with the dispatcher; 1: county queue; 2: city; 3: province.
    pub escalation_level: i64,
    /// Default duration of the item, minutes.
    pub item_duration_minutes: i64,
    /// Check-in instant, epoch ms.
    pub checked_in_at: Option<i64>,
    /// Check-out instant, epoch ms.
    pub checked_out_at: Option<i64>,
    /// The order this one follows up (counselling follow-ups).
    pub follow_up_of: Option<i64>,
    /// Offered first to this volunteer (a follow-up's original volunteer).
    pub preferred_volunteer_user_id: Option<i64>,
    /// An open check-in was flagged and capped.
    #[sqlx(try_from = "Flag")]
    pub session_capped: bool,
}

const ORDER_SELECT: &str = "select o.id, o.item_id, i.code as item_code, i.name_zh as item_name_zh,
    i.name_en as item_name_en, i.mode as item_mode, i.runs_alongside as item_runs_alongside,
    o.household_id, o.member_id, o.placed_by,
    h.requester_user_id, o.division_id, d.name as division_name, d.path as division_path,
    d.time_zone, o.state, o.lane, o.urgency, o.window_start, o.window_end, o.street,
    o.contact_phone, o.longitude, o.latitude, o.notes, o.public_note, o.assignee_user_id,
    o.created_at, o.updated_at, o.ended_at, o.purged_at, o.escalation_level,
    i.default_duration_minutes as item_duration_minutes, o.checked_in_at, o.checked_out_at,
    o.follow_up_of, o.preferred_volunteer_user_id, o.session_capped
    from service_order o
    join service_item i on i.id = o.item_id
    join household h on h.id = o.household_id
    join org_unit d on d.id = o.division_id";

/// A validated new order.
#[derive(Clone, Debug)]
pub struct NewOrder {
    /// Catalogue item.
    pub item_id: i64,
    /// Household.
    pub household_id: i64,
    /// Member served.
    pub member_id: i64,
    /// Who placed it.
    pub placed_by: i64,
    /// Division of the location.
    pub division_id: i64,
    /// Priority lane.
    pub lane: Lane,
    /// The requester's urgency.
    pub urgency: Urgency,
    /// Window start, epoch ms.
    pub window_start: i64,
    /// Window end, epoch ms.
    pub window_end: i64,
    /// Street.
    pub street: String,
    /// Contact phone, E.164.
    pub contact_phone: Option<String>,
    /// (longitude, latitude).
    pub location: Option<(f64, f64)>,
    /// Private notes.
    pub notes: Option<String>,
    /// Public, non-identifying note.
    pub public_note: Option<String>,
    /// The labels of its item, division and household, when the caller has
    /// them at hand: the new order is then rendered without reading it
    /// back. `None`: read back.
    pub labels: Option<OrderLabels>,
}

/// What an order's row shows beside its own columns: from its item, its
/// division and its household (see [`OrderRow`]).
#[derive(Clone, Debug)]
pub struct OrderLabels {
    /// Item code, e.g. `groceries`.
    pub item_code: String,
    /// Item name, Chinese.
    pub item_name_zh: String,
    /// Item name, English.
    pub item_name_en: String,
    /// How the item is delivered.
    pub item_mode: ServiceMode,
    /// Default duration of the item, minutes.
    pub item_duration_minutes: i64,
    /// The item may run alongside another service (see
    /// [`OrderRow::item_runs_alongside`]).
    pub item_runs_alongside: bool,
    /// Division name, e.g. `玄武区`.
    pub division_name: String,
    /// Division's org path.
    pub division_path: String,
    /// Division's time zone.
    pub time_zone: Tz,
    /// The requester who owns the household.
    pub requester_user_id: i64,
}

impl OrderLabels {
    /// The row of a just-created order `id` from `new` and these labels
    /// (the state and every column set later at their initial values).
    fn new_row(&self, id: i64, new: &NewOrder, now_ms: i64) -> OrderRow {
        OrderRow {
            id,
            item_id: new.item_id,
            item_code: self.item_code.clone(),
            item_name_zh: self.item_name_zh.clone(),
            item_name_en: self.item_name_en.clone(),
            item_mode: self.item_mode,
            household_id: new.household_id,
            member_id: new.member_id,
            placed_by: new.placed_by,
            requester_user_id: self.requester_user_id,
            division_id: new.division_id,
            division_name: self.division_name.clone(),
            division_path: self.division_path.clone(),
            time_zone: self.time_zone,
            state: OrderState::Submitted,
            lane: new.lane,
            urgency: new.urgency,
            window_start: new.window_start,
            window_end: new.window_end,
            street: Some(new.street.clone()),
            contact_phone: new.contact_phone.clone(),
            longitude: new.location.map(|l| l.0),
            latitude: new.location.map(|l| l.1),
            notes: new.notes.clone(),
            public_note: new.public_note.clone(),
            assignee_user_id: None,
            created_at: now_ms,
            updated_at: now_ms,
            ended_at: None,
            purged_at: None,
            escalation_level: 0,
            item_duration_minutes: self.item_duration_minutes,
            item_runs_alongside: self.item_runs_alongside,
            checked_in_at: None,
            checked_out_at: None,
            follow_up_of: None,
            preferred_volunteer_user_id: None,
            session_capped: false,
        }
    }
}

/// The non-identifying facts of an order that outbox messages carry (as
/// `outbox::order_facts` reads them), from its row.
fn row_facts(o: &OrderRow) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    m.insert("order_id".into(), o.id.into());
    m.insert("item_code".into(), o.item_code.clone().into());
    m.insert("item_name_zh".into(), o.item_name_zh.clone().into());
    m.insert("item_name_en".into(), o.item_name_en.clone().into());
    m.insert("district".into(), o.division_name.clone().into());
    m.insert("time_zone".into(), o.time_zone.name().into());
    m.insert("lane".into(), o.lane.as_str().into());
    m.insert("window_start".into(), o.window_start.into());
    m.insert("window_end".into(), o.window_end.into());
    m.insert("state".into(), o.state.as_str().into());
    m.insert("escalation_level".into(), o.escalation_level.into());
    m
}

/// What an idempotent create did.
#[derive(Debug)]
pub enum Idempotent {
    /// The order was created; the response was stored under the key.
    Created {
        /// The new order.
        order: Box<OrderRow>,
        /// Stored response status.
        status: u16,
        /// Stored response body.
        body: String,
    },
    /// The key was used before with the same request: the first response.
    Replayed {
        /// Stored response status.
        status: u16,
        /// Stored response body.
        body: String,
    },
    /// The key was used before with a different request.
    KeyReused,
}

/// Filter of [`Store::orders`]. Empty fields do not filter.
#[derive(Clone, Debug, Default)]
pub struct OrderFilter {
    /// Division subtrees (org paths); `None`: anywhere.
    pub scopes: Option<Vec<String>>,
    /// Only this household.
    pub household_id: Option<i64>,
    /// Only orders assigned to this account.
    pub assignee_user_id: Option<i64>,
    /// Only orders placed by this account (a liaison's orders for staff).
    pub placed_by: Option<i64>,
    /// Only these states.
    pub states: Vec<OrderState>,
    /// Only these item codes.
    pub item_code: Option<String>,
    /// Created at or after, epoch ms.
    pub created_from: Option<i64>,
    /// Created before, epoch ms.
    pub created_to: Option<i64>,
    /// Only orders older than this one (`o.id < before_id`): the keyset
    /// cursor of the next page, since rows come newest (highest id) first.
    pub before_id: Option<i64>,
    /// At most this many rows (newest first); `None`: all.
    pub limit: Option<i64>,
    /// Rows skipped before the page (with `limit`).
    pub offset: i64,
    /// Only this priority lane (`standard`, `urgent`, `priority`).
    pub lane: Option<Lane>,
    /// Only orders in this division subtree (an org path), within `scopes`.
    pub within: Option<String>,
    /// Only orders whose number is this text, or whose household member's
    /// or assigned volunteer's name contains it (case-insensitive).
    pub search: Option<String>,
    /// Only unassigned orders (`submitted`, `dispatching`) created at or
    /// before this instant, epoch ms: "waiting longer than".
    pub waiting_since: Option<i64>,
}

impl OrderFilter {
    /// The `where` clause (after `where 1 = 1`) and its bind values;
    /// `None` when the filter can match nothing (an empty scope list).
    fn clause(&self) -> Option<(String, Vec<Bind>)> {
        let mut sql = String::new();
        let mut binds: Vec<Bind> = Vec::new();
        let mut slot = |b: Bind| {
            binds.push(b);
            format!("${}", binds.len())
        };
        if let Some(scopes) = &self.scopes {
            if scopes.is_empty() {
                return None;
            }
            let parts: Vec<String> = scopes
                .iter()
                .map(|s| format!("d.path like {}", slot(Bind::Text(format!("{s}%")))))
                .collect();
            sql.push_str(&format!(" and ({})", parts.join(" or ")));
        }
        if !self.states.is_empty() {
            let parts: Vec<String> = self
                .states
                .iter()
                .map(|s| slot(Bind::Text(s.as_str().to_string())))
                .collect();
            sql.push_str(&format!(" and o.state in ({})", parts.join(", ")));
        }
        if let Some(code) = &self.item_code {
            sql.push_str(&format!(" and i.code = {}", slot(Bind::Text(code.clone()))));
        }
        if let Some(lane) = &self.lane {
            sql.push_str(&format!(
                " and o.lane = {}",
                slot(Bind::Text(lane.as_str().to_string()))
            ));
        }
        if let Some(path) = &self.within {
            sql.push_str(&format!(
                " and d.path like {}",
                slot(Bind::Text(format!("{path}%")))
            ));
        }
        if let Some(text) = self
            .search
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let number = text.trim_start_matches('#').parse::<i64>().ok();
            let pattern = slot(Bind::Text(crate::volunteers::contains_pattern(text)));
            let by_number = match number {
                Some(n) => format!("o.id = {} or ", slot(Bind::Int(n))),
                None => String::new(),
            };
            sql.push_str(&format!(
                " and ({by_number}exists (select 1 from household_member m where m.id = o.member_id
                   and lower(m.name) like {pattern} escape '\\')
                 or exists (select 1 from app_user a where a.id = o.assignee_user_id
                   and lower(a.display_name) like {pattern} escape '\\'))"
            ));
        }
        if let Some(at) = self.waiting_since {
            sql.push_str(&format!(
                " and o.state in ('submitted', 'dispatching') and o.created_at <= {}",
                slot(Bind::Int(at))
            ));
        }
        for (value, column, op) in [
            (self.household_id, "o.household_id", "="),
            (self.assignee_user_id, "o.assignee_user_id", "="),
            (self.placed_by, "o.placed_by", "="),
            (self.created_from, "o.created_at", ">="),
            (self.created_to, "o.created_at", "<"),
            (self.before_id, "o.id", "<"),
        ] {
            if let Some(v) = value {
                sql.push_str(&format!(" and {column} {op} {}", slot(Bind::Int(v))));
            }
        }
        Some((sql, binds))
    }

    /// The full select for this filter, newest first, with its limit.
    fn select(&self) -> Option<(String, Vec<Bind>)> {
        let (clause, binds) = self.clause()?;
        let mut sql = format!("{ORDER_SELECT} where 1 = 1{clause} order by o.id desc");
        if let Some(limit) = self.limit {
            sql.push_str(&format!(" limit {}", limit.max(0)));
            if self.offset > 0 {
                sql.push_str(&format!(" offset {}", self.offset));
            }
        }
        Some((sql, binds))
    }

    /// `count(*)` of the rows this filter matches (the limit ignored).
    fn count(&self) -> Option<(String, Vec<Bind>)> {
        let (clause, binds) = self.clause()?;
        // The same joins as the select: the scope and item code filter on them.
        let sql = format!(
            "select cast(count(*) as bigint) from service_order o
             join service_item i on i.id = o.item_id
             join org_unit d on d.id = o.division_id
             where 1 = 1{clause}"
        );
        Some((sql, binds))
    }
}

/// Binds run-time values to a query assembled with [`OrderFilter::clause`].
fn bind_all<'q, O>(
    mut q: sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments>,
    binds: Vec<Bind>,
) -> sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments> {
    for b in binds {
        q = match b {
            Bind::Text(t) => q.bind(t),
            Bind::Int(i) => q.bind(i),
        };
    }
    q
}

/// The orders of one filter read from one snapshot of the database: the
/// count first, then every row, in a read-only transaction (PostgreSQL
/// `repeatable read`; on SQLite a read transaction, which in WAL mode
/// sees one snapshot until it ends), so the count announced before a file
/// is written equals the rows written, whatever commits meanwhile. Rows
/// stream from the database as they are read: memory stays flat whatever
/// the number of rows.
pub struct OrderSnapshot {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    filter: OrderFilter,
    /// Rows the filter matches (at most its limit).
    pub count: i64,
}

impl std::fmt::Debug for OrderSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderSnapshot")
            .field("filter", &self.filter)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl OrderSnapshot {
    /// The rows, newest first, as they are read from the database.
    pub fn rows(&mut self) -> futures::stream::BoxStream<'_, Result<OrderRow>> {
        use futures::StreamExt;
        let Some((sql, binds)) = self.filter.select() else {
            return futures::stream::empty().boxed();
        };
        bind_all(sqlx::query_as(sqlx::AssertSqlSafe(sql)), binds)
            .fetch(&mut *self.tx)
            .map(|r| r.map_err(StoreError::from))
            .boxed()
    }
}

/// One access-log row: who read which sensitive fields of what, never values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AccessLogEntry {
    /// Row id.
    pub id: i64,
    /// Reader.
    pub actor_user_id: i64,
    /// The kind of record read.
    #[sqlx(try_from = "Text")]
    pub record_kind: RecordKind,
    /// Record id.
    pub record_id: i64,
    /// Comma-separated field names.
    pub fields: String,
    /// Why, e.g. `order_detail`.
    pub purpose: String,
    /// When, epoch ms.
    pub at: i64,
}

/// The result of a transition: the states before and after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transitioned {
    /// State before.
    pub from: OrderState,
    /// State after.
    pub to: OrderState,
}

/// A bind value of a query assembled at run time.
enum Bind {
    Text(String),
    Int(i64),
}

/// The state of order `order_id`, read inside `tx`; `None` when there is
/// no such order.
///
/// # Errors
/// Database errors, and a decode error for a state no value names.
pub async fn state_in(tx: &mut Tx, order_id: i64) -> Result<Option<OrderState>> {
    let state: Option<Text> = sqlx::query_scalar("select state from service_order where id = $1")
        .bind(order_id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(state.map(OrderState::try_from).transpose()?)
}

/// Applies `action` to order `order_id` inside `tx`: the domain's
/// [`order_state::transition`] decides, a compare-and-set on the state
/// writes it, and the event row is appended in the same transaction.
/// `Assign` sets the assignee to `assignee`; `Release` clears it.
/// Cancelling withdraws the order's open offers (an accept withdraws the
/// others as "taken"; a hand assignment and giving up withdraw them too);
/// `Release` and `Reassign` release the accepted offer (`released_at`), so
/// the order can be accepted again.
///
/// # Errors
/// [`StoreError::Transition`] when the state does not allow the action;
/// [`StoreError::Stale`] when the state changed under us; database errors.
pub async fn transition_in(
    tx: &mut Tx,
    order_id: i64,
    action: &OrderAction,
    actor: Option<i64>,
    assignee: Option<i64>,
    now_ms: i64,
) -> Result<Transitioned> {
    transition_recorded_in(tx, order_id, action, actor, assignee, now_ms, None).await
}

/// [`transition_in`] for an action the phone recorded at `recorded_ms`,
/// without network, and sent later: the event row is at `recorded_ms` and
/// notes `received_at` = `now_ms` (the caller has checked the bounds).
///
/// # Errors
/// As [`transition_in`].
pub async fn transition_recorded_in(
    tx: &mut Tx,
    order_id: i64,
    action: &OrderAction,
    actor: Option<i64>,
    assignee: Option<i64>,
    now_ms: i64,
    recorded_ms: Option<i64>,
) -> Result<Transitioned> {
    let from = state_in(tx, order_id)
        .await?
        .ok_or(StoreError::Database(sqlx::Error::RowNotFound))?;
    let to = order_state::transition(from, action)?;
    // Whom a release or reassignment takes the order from: they hear of it.
    let released: Option<i64> =
        if matches!(action, OrderAction::Release | OrderAction::Reassign { .. }) {
            sqlx::query_scalar("select assignee_user_id from service_order where id = $1")
                .bind(order_id)
                .fetch_optional(&mut **tx)
                .await?
                .flatten()
        } else {
            None
        };
    let assignee_sql = match action {
        OrderAction::Assign => "$5",
        OrderAction::Release | OrderAction::Reassign { .. } => "null",
        _ => "assignee_user_id",
    };
    let sql = format!(
        "update service_order set state = $1, updated_at = $2,
            ended_at = case when $3 = 1 and ended_at is null then $2 else ended_at end,
            assignee_user_id = {assignee_sql}
         where id = $4 and state = $6"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(to.as_str())
        .bind(now_ms)
        .bind(i64::from(to.ended()))
        .bind(order_id)
        .bind(assignee)
        .bind(from.as_str())
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if rows != 1 {
        return Err(StoreError::Stale);
    }
    events::append(
        &mut *tx,
        events::NewEvent {
            order_id,
            action: action.event_action(),
            from: Some(from),
            to,
            actor,
            reason: action.reason().map(|r| r.as_str()),
            at: recorded_ms.unwrap_or(now_ms),
            received_at: recorded_ms.map(|_| now_ms),
        },
    )
    .await?;
    // Taken back from its volunteer: the offer they accepted stays
    // accepted (they are not offered the order again) but is released, so
    // that another volunteer's accept of the order can win.
    if matches!(action, OrderAction::Release | OrderAction::Reassign { .. }) {
        sqlx::query(
            "update offer set released_at = $1
             where order_id = $2 and state = 'accepted' and released_at is null",
        )
        .bind(now_ms)
        .bind(order_id)
        .execute(&mut **tx)
        .await?;
    }
    // A cancelled order needs no volunteer: its open offers are withdrawn
    // (each volunteer hears of it) in the same transaction.
    if matches!(action, OrderAction::Cancel { .. }) {
        Store::withdraw_offers(tx, order_id, now_ms).await?;
    }
    // The outbox row that announces it, in the same transaction.
    let kind = match action {
        OrderAction::Assign => outbox::kind::ORDER_ASSIGNED,
        OrderAction::Confirm { auto: true } => outbox::kind::ORDER_AUTO_CONFIRMED,
        _ => outbox::kind::ORDER_STATE,
    };
    outbox::enqueue_order_in(
        &mut *tx,
        kind,
        order_id,
        None,
        &[
            ("action", action.as_str().into()),
            ("from", from.as_str().into()),
            ("to", to.as_str().into()),
            // Who made the change: their own inbox need not hear of it.
            (
                "actor_user_id",
                actor.map_or(serde_json::Value::Null, Into::into),
            ),
            (
                "released_user_id",
                released.map_or(serde_json::Value::Null, Into::into),
            ),
        ],
        now_ms,
    )
    .await?;
    Ok(Transitioned { from, to })
}

/// Gives up on order `order_id` inside `tx` if it is still unassigned
/// (`submitted` or `dispatching` → `unfulfilled` with `reason`), withdrawing
/// its open offers. Returns whether it did; `false` leaves `tx` unchanged
/// (apart from a `submitted` order's move to `dispatching`, which callers
/// roll back by not committing).
///
/// # Errors
/// Database errors.
pub async fn give_up_in(tx: &mut Tx, order_id: i64, reason: &Reason, now_ms: i64) -> Result<bool> {
    match state_in(tx, order_id).await? {
        Some(OrderState::Submitted) => {
            transition_in(
                tx,
                order_id,
                &OrderAction::StartDispatch,
                None,
                None,
                now_ms,
            )
            .await?;
        }
        Some(OrderState::Dispatching) => {}
        _ => return Ok(false),
    }
    Store::withdraw_offers(tx, order_id, now_ms).await?;
    let action = OrderAction::MarkUnfulfilled {
        reason: reason.clone(),
    };
    match transition_in(tx, order_id, &action, None, None, now_ms).await {
        Ok(_) => Ok(true),
        Err(StoreError::Transition(_) | StoreError::Stale) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The reason an order is given up when its window ends unassigned.
pub const WINDOW_ENDED: &str = "no volunteer accepted before the service window ended";

impl Store {
    /// Creates an order under an idempotency key, in one transaction: the
    /// order, its `submitted` event and its outbox event are written, the
    /// response `render` builds from the new row is stored under the key,
    /// and all of it commits together. When the key exists already (an
    /// earlier submit, or a concurrent one that committed first: the key's
    /// insert waits for it), the new rows are rolled back and the stored
    /// answer is replayed, or `KeyReused` when the request differs.
    ///
    /// With `new.labels` the submission is four inserts inside the
    /// transaction (order, event, outbox event, key), nothing read back;
    /// on SQLite the last three go to the driver in one round trip.
    ///
    /// # Errors
    /// Database errors; nothing is written when one occurs.
    #[tracing::instrument(skip_all)]
    pub async fn create_order_idempotent(
        &self,
        user_id: i64,
        key: &str,
        request_hash: &str,
        new: &NewOrder,
        now_ms: i64,
        render: impl FnOnce(&OrderRow) -> (u16, String),
    ) -> Result<Idempotent> {
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "insert into service_order (item_id, household_id, member_id, placed_by, division_id, state,
                lane, urgency, window_start, window_end, street, contact_phone, longitude, latitude,
                notes, public_note, created_at, updated_at)
             values ($1, $2, $3, $4, $5, 'submitted', $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)
             returning id",
        )
        // A nullable double: see the crate docs.
        .persistent(false)
        .bind(new.item_id)
        .bind(new.household_id)
        .bind(new.member_id)
        .bind(new.placed_by)
        .bind(new.division_id)
        .bind(new.lane.as_str())
        .bind(new.urgency.as_str())
        .bind(new.window_start)
        .bind(new.window_end)
        .bind(&new.street)
        .bind(&new.contact_phone)
        .bind(new.location.map(|l| l.0))
        .bind(new.location.map(|l| l.1))
        .bind(&new.notes)
        .bind(&new.public_note)
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await?;
        let order: OrderRow = match &new.labels {
            Some(labels) => labels.new_row(id, new, now_ms),
            None => {
                let sql = format!("{ORDER_SELECT} where o.id = $1");
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?
            }
        };
        let (status, body) = render(&order);
        let claimed = match self.backend() {
            // The order's event, its outbox event and the idempotency key
            // in one round trip to the driver's thread: SQLite runs a text
            // of several statements in order, and `$n` binds across them.
            // What they write is what `events::append`, `outbox::enqueue_in`
            // and the PostgreSQL branch below write.
            crate::Backend::Sqlite => sqlx::query(sqlx::AssertSqlSafe(format!(
                "{} values ($1, $2, 'submit', null, 'submitted', $3, null, null);
                 insert into outbox_event (kind, order_id, user_id, org_unit_id, bot_id, data, dedupe_key, created_at)
                 values ($4, $1, null, null, null, $5, null, $2);
                 insert into idempotency_key (user_id, idem_key, request_hash, response_status, response_body, created_at)
                 values ($6, $7, $8, $9, $10, $2) on conflict (user_id, idem_key) do nothing
                 returning 1",
                events::INSERT
            )))
            .bind(id)
            .bind(now_ms)
            .bind(new.placed_by)
            .bind(EventKind::OrderSubmitted.as_str())
            .bind(serde_json::Value::Object(row_facts(&order)).to_string())
            .bind(user_id)
            .bind(key)
            .bind(request_hash)
            .bind(i64::from(status))
            .bind(&body)
            // All rows: a row limit would stop after the first statement.
            .fetch_all(&mut *tx)
            .await?
            .len()
                == 1,
            // The same three inserts as one statement: PostgreSQL runs
            // data-modifying CTEs with the main statement, so the event and
            // the outbox event are written whether or not the key is new
            // (a replay rolls the transaction back).
            crate::Backend::Postgres => sqlx::query(sqlx::AssertSqlSafe(format!(
                "with e as (
                    {} values ($1, $2, 'submit', null, 'submitted', $3, null, null)),
                 x as (
                    insert into outbox_event (kind, order_id, user_id, org_unit_id, bot_id, data, dedupe_key, created_at)
                    values ($4, $1, null, null, null, $5, null, $2))
                 insert into idempotency_key (user_id, idem_key, request_hash, response_status, response_body, created_at)
                 values ($6, $7, $8, $9, $10, $2) on conflict (user_id, idem_key) do nothing
                 returning 1",
                events::INSERT
            )))
            .bind(id)
            .bind(now_ms)
            .bind(new.placed_by)
            .bind(EventKind::OrderSubmitted.as_str())
            .bind(serde_json::Value::Object(row_facts(&order)).to_string())
            .bind(user_id)
            .bind(key)
            .bind(request_hash)
            .bind(i64::from(status))
            .bind(&body)
            .fetch_all(&mut *tx)
            .await?
            .len()
                == 1,
        };
        // Other instances hear of the new order after the commit.
        tx.notify_live(outbox::LiveChange::Order(id));
        if !claimed {
            // Read inside the transaction: on SQLite the first submit may
            // sit in the same, not yet committed batch.
            let (hash, status, body): (String, i64, String) = sqlx::query_as(
                "select request_hash, response_status, response_body from idempotency_key
                 where user_id = $1 and idem_key = $2",
            )
            .bind(user_id)
            .bind(key)
            .fetch_one(&mut *tx)
            .await?;
            // Answer only once that first submit is durable.
            tx.rollback_after_commit().await?;
            if hash != request_hash {
                return Ok(Idempotent::KeyReused);
            }
            return Ok(Idempotent::Replayed {
                status: u16::try_from(status).unwrap_or(500),
                body,
            });
        }
        tx.commit().await?;
        Ok(Idempotent::Created {
            order: Box::new(order),
            status,
            body,
        })
    }

    /// Every unassigned order (`submitted` or `dispatching`), by id: the
    /// dispatcher's backlog, in one query.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn unassigned_order_rows(&self) -> Result<Vec<OrderRow>> {
        let sql =
            format!("{ORDER_SELECT} where o.state in ('submitted', 'dispatching') order by o.id");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.pool())
            .await?)
    }

    /// One order by id.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn order(&self, id: i64) -> Result<Option<OrderRow>> {
        let sql = format!("{ORDER_SELECT} where o.id = $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    /// Several orders at once, by id (a page of offers, pairings or
    /// reports shows the order of each row), ordered by id; unknown ids are
    /// left out and repeated ids read once. Binds one parameter per id:
    /// callers pass a page's worth (hundreds), not thousands.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn orders_by_ids(&self, ids: &[i64]) -> Result<Vec<OrderRow>> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let slots: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "{ORDER_SELECT} where o.id in ({}) order by o.id",
            slots.join(", ")
        );
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for id in &ids {
            q = q.bind(*id);
        }
        Ok(q.fetch_all(self.pool()).await?)
    }

    /// Orders matching `filter`, newest first.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn orders(&self, filter: &OrderFilter) -> Result<Vec<OrderRow>> {
        let Some((sql, binds)) = filter.select() else {
            return Ok(Vec::new());
        };
        Ok(bind_all(sqlx::query_as(sqlx::AssertSqlSafe(sql)), binds)
            .fetch_all(self.pool())
            .await?)
    }

    /// How many orders match `filter` (its limit and nothing else ignored):
    /// the "N more" of a list that shows a page of them.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn count_matching_orders(&self, filter: &OrderFilter) -> Result<i64> {
        let Some((sql, binds)) = filter.count() else {
            return Ok(0);
        };
        let (n,): (i64,) = bind_all(sqlx::query_as(sqlx::AssertSqlSafe(sql)), binds)
            .fetch_one(self.pool())
            .await?;
        Ok(n)
    }

    /// Opens an [`OrderSnapshot`] of `filter`: the count now, the rows when
    /// streamed. The snapshot holds a pooled connection until dropped.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn order_snapshot(&self, filter: &OrderFilter) -> Result<OrderSnapshot> {
        let mut tx = match self.backend() {
            // Deferred: SQLite takes its read snapshot at the first select.
            Backend::Sqlite => self.pool().begin().await?,
            Backend::Postgres => {
                self.pool()
                    .begin_with("begin isolation level repeatable read read only")
                    .await?
            }
        };
        let count = match filter.count() {
            None => 0,
            Some((sql, binds)) => {
                let (n,): (i64,) = bind_all(sqlx::query_as(sqlx::AssertSqlSafe(sql)), binds)
                    .fetch_one(&mut *tx)
                    .await?;
                match filter.limit {
                    Some(limit) => n.min(limit.max(0)),
                    None => n,
                }
            }
        };
        Ok(OrderSnapshot {
            tx,
            filter: filter.clone(),
            count,
        })
    }

    /// Applies a transition in its own write transaction (see [`transition_in`]).
    ///
    /// # Errors
    /// As [`transition_in`].
    #[tracing::instrument(skip_all)]
    pub async fn transition_order(
        &self,
        order_id: i64,
        action: &OrderAction,
        actor: Option<i64>,
        assignee: Option<i64>,
        now_ms: i64,
    ) -> Result<Transitioned> {
        let mut tx = self.begin_write().await?;
        let t = transition_in(&mut tx, order_id, action, actor, assignee, now_ms).await?;
        tx.commit().await?;
        Ok(t)
    }

    /// Gives up on an unassigned order (`submitted` or `dispatching` →
    /// `unfulfilled`), withdrawing its open offers, in one transaction.
    /// Returns whether this call did it.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn mark_unfulfilled(
        &self,
        order_id: i64,
        reason: &Reason,
        now_ms: i64,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        if give_up_in(&mut tx, order_id, reason, now_ms).await? {
            tx.commit().await?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// Records reads of sensitive fields: one row per record, naming the
    /// fields (never their values).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn log_access(
        &self,
        actor_user_id: i64,
        record_kind: RecordKind,
        record_ids: &[i64],
        fields: &[&str],
        purpose: &str,
        now_ms: i64,
    ) -> Result<()> {
        if record_ids.is_empty() || fields.is_empty() {
            return Ok(());
        }
        let fields = fields.join(",");
        let mut tx = self.begin_write().await?;
        for id in record_ids {
            sqlx::query(
                "insert into access_log (actor_user_id, record_kind, record_id, fields, purpose, at)
                 values ($1, $2, $3, $4, $5, $6)",
            )
            .bind(actor_user_id)
            .bind(record_kind.as_str())
            .bind(id)
            .bind(&fields)
            .bind(purpose)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Access-log rows of one record, oldest first.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn access_log(
        &self,
        record_kind: RecordKind,
        record_id: i64,
    ) -> Result<Vec<AccessLogEntry>> {
        Ok(sqlx::query_as(
            "select id, actor_user_id, record_kind, record_id, fields, purpose, at from access_log
             where record_kind = $1 and record_id = $2 order by id",
        )
        .bind(record_kind.as_str())
        .bind(record_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Purges street, phone, coordinates (the check-in location too) and
    /// free-text notes of orders that
    /// ended at or before `ended_before` (epoch ms). Counts, states, items,
    /// divisions and the event log stay. Returns how many orders were purged.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn purge_ended_orders(&self, ended_before: i64, now_ms: i64) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "update service_order set street = null, contact_phone = null, longitude = null,
                latitude = null, notes = null, public_note = null, checkin_longitude = null,
                checkin_latitude = null, purged_at = $1
             where ended_at is not null and ended_at <= $2 and purged_at is null",
        )
        .bind(now_ms)
        .bind(ended_before)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(r.rows_affected())
    }

    /// Number of orders in all (for checks and reports).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn count_orders(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("select cast(count(*) as bigint) from service_order")
                .fetch_one(self.pool())
                .await?,
        )
    }
}
