//! Orders, their append-only event log, idempotency keys, the access log of
//! sensitive reads, and retention.

use homefront_domain::order_state::{self, OrderAction, OrderState, Reason};
use serde::Serialize;
use sqlx::AnyConnection;

use crate::{Result, Store, StoreError, Tx, classify, outbox};

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
    pub item_mode: String,
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
    pub time_zone: String,
    /// Lifecycle state.
    pub state: String,
    /// `priority`, `urgent` or `standard`.
    pub lane: String,
    /// `normal` or `urgent`.
    pub urgency: String,
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
    /// 1 when an open check-in was flagged and capped.
    pub session_capped: i64,
}

impl OrderRow {
    /// The state as a domain value.
    ///
    /// # Errors
    /// Never for rows written by this code (CHECK constraint).
    pub fn order_state(&self) -> Result<OrderState, order_state::OrderStateError> {
        OrderState::parse(&self.state)
    }
}

const ORDER_SELECT: &str = "select o.id, o.item_id, i.code as item_code, i.name_zh as item_name_zh,
    i.name_en as item_name_en, i.mode as item_mode, o.household_id, o.member_id, o.placed_by,
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
    /// Lane text.
    pub lane: String,
    /// Urgency text.
    pub urgency: String,
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
    /// Only these states.
    pub states: Vec<String>,
    /// Only these item codes.
    pub item_code: Option<String>,
    /// Created at or after, epoch ms.
    pub created_from: Option<i64>,
    /// Created before, epoch ms.
    pub created_to: Option<i64>,
    /// At most this many rows (newest first); `None`: all.
    pub limit: Option<i64>,
}

/// One row of the event log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct OrderEvent {
    /// Row id (the log's order).
    pub id: i64,
    /// The order.
    pub order_id: i64,
    /// When, epoch ms.
    pub at: i64,
    /// The action, e.g. `cancel`.
    pub action: String,
    /// State before; `None` for creation.
    pub from_state: Option<String>,
    /// State after.
    pub to_state: String,
    /// Who; `None` for the system.
    pub actor_user_id: Option<i64>,
    /// Why, for cancellations and the like.
    pub reason: Option<String>,
}

/// One access-log row: who read which sensitive fields of what, never values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AccessLogEntry {
    /// Row id.
    pub id: i64,
    /// Reader.
    pub actor_user_id: i64,
    /// `order` or `household_member`.
    pub record_kind: String,
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

/// An event row to append.
struct NewEvent<'a> {
    order_id: i64,
    action: &'a str,
    from: Option<OrderState>,
    to: OrderState,
    actor: Option<i64>,
    reason: Option<&'a str>,
    at: i64,
}

/// Appends one event row. Only this module writes `order_event`.
async fn append_event(conn: &mut AnyConnection, e: NewEvent<'_>) -> Result<()> {
    sqlx::query(
        "insert into order_event (order_id, at, action, from_state, to_state, actor_user_id, reason)
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(e.order_id)
    .bind(e.at)
    .bind(e.action)
    .bind(e.from.map(OrderState::as_str))
    .bind(e.to.as_str())
    .bind(e.actor)
    .bind(e.reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// Applies `action` to order `order_id` inside `tx`: the domain's
/// [`order_state::transition`] decides, a compare-and-set on the state
/// writes it, and the event row is appended in the same transaction.
/// `Assign` sets the assignee to `assignee`; `Release` clears it.
/// Cancelling withdraws the order's open offers (an accept withdraws the
/// others as "taken"; a hand assignment and giving up withdraw them too).
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
    let state: String = sqlx::query_scalar("select state from service_order where id = $1")
        .bind(order_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::Database(sqlx::Error::RowNotFound))?;
    let from = OrderState::parse(&state)
        .map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))?;
    let to = order_state::transition(from, action)?;
    let assignee_sql = match action {
        OrderAction::Assign => "$5",
        OrderAction::Release => "null",
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
    append_event(
        &mut *tx,
        NewEvent {
            order_id,
            action: action.as_str(),
            from: Some(from),
            to,
            actor,
            reason: action.reason().map(|r| r.as_str()),
            at: now_ms,
        },
    )
    .await?;
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
        ],
        now_ms,
    )
    .await?;
    Ok(Transitioned { from, to })
}

impl Store {
    /// Creates an order under an idempotency key, in one transaction: the
    /// key row is claimed first (a concurrent duplicate waits on it and then
    /// replays), the order and its `submitted` event are written, and the
    /// response `render` builds from the new row is stored under the key.
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
        let claimed = sqlx::query(
            "insert into idempotency_key (user_id, idem_key, request_hash, response_status, response_body, created_at)
             values ($1, $2, $3, 0, '', $4) on conflict (user_id, idem_key) do nothing",
        )
        .bind(user_id)
        .bind(key)
        .bind(request_hash)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            let (hash, status, body): (String, i64, String) = sqlx::query_as(
                "select request_hash, response_status, response_body from idempotency_key
                 where user_id = $1 and idem_key = $2",
            )
            .bind(user_id)
            .bind(key)
            .fetch_one(&mut *tx)
            .await?;
            tx.rollback().await?;
            if hash != request_hash {
                return Ok(Idempotent::KeyReused);
            }
            return Ok(Idempotent::Replayed {
                status: u16::try_from(status).unwrap_or(500),
                body,
            });
        }
        let id: i64 = sqlx::query_scalar(
            "insert into service_order (item_id, household_id, member_id, placed_by, division_id, state,
                lane, urgency, window_start, window_end, street, contact_phone, longitude, latitude,
                notes, public_note, created_at, updated_at)
             values ($1, $2, $3, $4, $5, 'submitted', $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)
             returning id",
        )
        .bind(new.item_id)
        .bind(new.household_id)
        .bind(new.member_id)
        .bind(new.placed_by)
        .bind(new.division_id)
        .bind(&new.lane)
        .bind(&new.urgency)
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
        .await
        .map_err(classify)?;
        append_event(
            &mut tx,
            NewEvent {
                order_id: id,
                action: "submit",
                from: None,
                to: OrderState::Submitted,
                actor: Some(new.placed_by),
                reason: None,
                at: now_ms,
            },
        )
        .await?;
        outbox::enqueue_order_in(
            &mut tx,
            outbox::kind::ORDER_SUBMITTED,
            id,
            None,
            &[],
            now_ms,
        )
        .await?;
        let sql = format!("{ORDER_SELECT} where o.id = $1");
        let order: OrderRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let (status, body) = render(&order);
        sqlx::query(
            "update idempotency_key set response_status = $1, response_body = $2
             where user_id = $3 and idem_key = $4",
        )
        .bind(i64::from(status))
        .bind(&body)
        .bind(user_id)
        .bind(key)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Idempotent::Created {
            order: Box::new(order),
            status,
            body,
        })
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

    /// Orders matching `filter`, newest first.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn orders(&self, filter: &OrderFilter) -> Result<Vec<OrderRow>> {
        let mut sql = format!("{ORDER_SELECT} where 1 = 1");
        let mut binds: Vec<Bind> = Vec::new();
        let mut slot = |b: Bind| {
            binds.push(b);
            format!("${}", binds.len())
        };
        if let Some(scopes) = &filter.scopes {
            if scopes.is_empty() {
                return Ok(Vec::new());
            }
            let parts: Vec<String> = scopes
                .iter()
                .map(|s| format!("d.path like {}", slot(Bind::Text(format!("{s}%")))))
                .collect();
            sql.push_str(&format!(" and ({})", parts.join(" or ")));
        }
        if !filter.states.is_empty() {
            let parts: Vec<String> = filter
                .states
                .iter()
                .map(|s| slot(Bind::Text(s.clone())))
                .collect();
            sql.push_str(&format!(" and o.state in ({})", parts.join(", ")));
        }
        if let Some(code) = &filter.item_code {
            sql.push_str(&format!(" and i.code = {}", slot(Bind::Text(code.clone()))));
        }
        for (value, column, op) in [
            (filter.household_id, "o.household_id", "="),
            (filter.assignee_user_id, "o.assignee_user_id", "="),
            (filter.created_from, "o.created_at", ">="),
            (filter.created_to, "o.created_at", "<"),
        ] {
            if let Some(v) = value {
                sql.push_str(&format!(" and {column} {op} {}", slot(Bind::Int(v))));
            }
        }
        sql.push_str(" order by o.id desc");
        if let Some(limit) = filter.limit {
            sql.push_str(&format!(" limit {}", limit.max(0)));
        }
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = match b {
                Bind::Text(t) => q.bind(t),
                Bind::Int(i) => q.bind(i),
            };
        }
        Ok(q.fetch_all(self.pool()).await?)
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
        let state: Option<String> =
            sqlx::query_scalar("select state from service_order where id = $1")
                .bind(order_id)
                .fetch_optional(&mut *tx)
                .await?;
        if state.as_deref() == Some("submitted") {
            transition_in(
                &mut tx,
                order_id,
                &OrderAction::StartDispatch,
                None,
                None,
                now_ms,
            )
            .await?;
        }
        Store::withdraw_offers(&mut tx, order_id, now_ms).await?;
        let action = OrderAction::MarkUnfulfilled {
            reason: reason.clone(),
        };
        match transition_in(&mut tx, order_id, &action, None, None, now_ms).await {
            Ok(_) => {
                tx.commit().await?;
                Ok(true)
            }
            Err(StoreError::Transition(_) | StoreError::Stale) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The order's event log, oldest first.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn order_events(&self, order_id: i64) -> Result<Vec<OrderEvent>> {
        Ok(sqlx::query_as(
            "select id, order_id, at, action, from_state, to_state, actor_user_id, reason
             from order_event where order_id = $1 order by id",
        )
        .bind(order_id)
        .fetch_all(self.pool())
        .await?)
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
        record_kind: &str,
        record_ids: &[i64],
        fields: &[&str],
        purpose: &str,
        now_ms: i64,
    ) -> Result<()> {
        if record_ids.is_empty() || fields.is_empty() {
            return Ok(());
        }
        let fields = fields.join(",");
        let mut tx = self.pool().begin().await?;
        for id in record_ids {
            sqlx::query(
                "insert into access_log (actor_user_id, record_kind, record_id, fields, purpose, at)
                 values ($1, $2, $3, $4, $5, $6)",
            )
            .bind(actor_user_id)
            .bind(record_kind)
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
        record_kind: &str,
        record_id: i64,
    ) -> Result<Vec<AccessLogEntry>> {
        Ok(sqlx::query_as(
            "select id, actor_user_id, record_kind, record_id, fields, purpose, at from access_log
             where record_kind = $1 and record_id = $2 order by id",
        )
        .bind(record_kind)
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
        let r = sqlx::query(
            "update service_order set street = null, contact_phone = null, longitude = null,
                latitude = null, notes = null, public_note = null, checkin_longitude = null,
                checkin_latitude = null, purged_at = $1
             where ended_at is not null and ended_at <= $2 and purged_at is null",
        )
        .bind(now_ms)
        .bind(ended_before)
        .execute(self.pool())
        .await?;
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
