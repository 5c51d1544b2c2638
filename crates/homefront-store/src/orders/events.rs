//! The order event log (`order_event`): append-only, one row per state
//! change (and per escalation), written only here, in the transaction that
//! makes the change.

use homefront_domain::order_state::{EventAction, OrderState};
use serde::Serialize;
use sqlx::AnyConnection;

use crate::decode::{OptText, Text};
use crate::{Result, Store};

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
    #[sqlx(try_from = "Text")]
    #[schema(value_type = String)]
    pub action: EventAction,
    /// State before; `None` for creation.
    #[sqlx(try_from = "OptText")]
    #[schema(value_type = Option<String>)]
    pub from_state: Option<OrderState>,
    /// State after.
    #[sqlx(try_from = "Text")]
    #[schema(value_type = String)]
    pub to_state: OrderState,
    /// Who; `None` for the system.
    pub actor_user_id: Option<i64>,
    /// Why, for cancellations and the like.
    pub reason: Option<String>,
    /// When the server received it, for a check-in or check-out the phone
    /// recorded without network and sent later (`at` is when it was
    /// recorded); null when the server acted at once.
    pub received_at: Option<i64>,
}

/// An event row to append.
#[derive(Clone, Debug)]
pub(crate) struct NewEvent<'a> {
    pub order_id: i64,
    pub action: EventAction,
    pub from: Option<OrderState>,
    pub to: OrderState,
    pub actor: Option<i64>,
    pub reason: Option<&'a str>,
    /// When it happened (for an offline check-in, when the phone recorded it).
    pub at: i64,
    /// When the server received it, if later than `at`.
    pub received_at: Option<i64>,
}

/// The columns of an event row, in the order [`append`] binds them; the
/// SQLite intake batch in [`super`] binds the same.
pub(crate) const INSERT: &str = "insert into order_event
    (order_id, at, action, from_state, to_state, actor_user_id, reason, received_at)";

/// Appends one event row: the only writer of `order_event`.
pub(crate) async fn append(conn: &mut AnyConnection, e: NewEvent<'_>) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "{INSERT} values ($1, $2, $3, $4, $5, $6, $7, $8)"
    )))
    .bind(e.order_id)
    .bind(e.at)
    .bind(e.action.as_str())
    .bind(e.from.map(OrderState::as_str))
    .bind(e.to.as_str())
    .bind(e.actor)
    .bind(e.reason)
    .bind(e.received_at)
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// The order's event log, oldest first.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn order_events(&self, order_id: i64) -> Result<Vec<OrderEvent>> {
        Ok(sqlx::query_as(
            "select id, order_id, at, action, from_state, to_state, actor_user_id, reason, received_at
             from order_event where order_id = $1 order by id",
        )
        .bind(order_id)
        .fetch_all(self.pool())
        .await?)
    }
}
