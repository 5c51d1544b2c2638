//! Bookings: what a volunteer's live assignments (`assigned` or
//! `in_service` orders) hold of their time, and the check that keeps two of
//! them from overlapping ([`homefront_domain::availability::Booking`]).
//!
//! The check runs in two places with one rule: inside the write
//! transaction that assigns an order (an accept's compare-and-set, a hand
//! assignment), after [`Store::lock_volunteer`], so that two concurrent
//! accepts by one volunteer cannot both pass; and over
//! [`Store::live_bookings`] when the dispatcher builds an order's candidate
//! pool, so that no such order is offered in the first place.

use std::collections::HashMap;

use homefront_domain::Timestamp;
use homefront_domain::availability::{Booking, TimeWindow};
use sqlx::AnyConnection;

use homefront_domain::catalogue::ServiceMode;

use crate::decode::{Flag, Text};
use crate::orders::OrderRow;
use crate::{Backend, Result, Store, Tx};

/// One live assignment's hold on its volunteer's time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveBooking {
    /// The assigned order.
    pub order_id: i64,
    /// Its assignee.
    pub volunteer_user_id: i64,
    /// Its window and whether it runs alongside other work.
    pub booking: Booking,
}

#[derive(sqlx::FromRow)]
struct Row {
    assignee_user_id: i64,
    id: i64,
    window_start: i64,
    window_end: i64,
    #[sqlx(try_from = "Text")]
    mode: ServiceMode,
    #[sqlx(try_from = "Flag")]
    runs_alongside: bool,
}

impl Row {
    fn live(&self) -> Option<LiveBooking> {
        Some(LiveBooking {
            order_id: self.id,
            volunteer_user_id: self.assignee_user_id,
            booking: booking(
                self.window_start,
                self.window_end,
                self.mode,
                self.runs_alongside,
            )?,
        })
    }
}

const LIVE: &str = "select o.assignee_user_id, o.id, o.window_start, o.window_end, i.mode,
        i.runs_alongside
    from service_order o join service_item i on i.id = o.item_id
    where o.state in ('assigned', 'in_service') and o.assignee_user_id is not null";

fn booking(start: i64, end: i64, mode: ServiceMode, runs_alongside: bool) -> Option<Booking> {
    let window = TimeWindow::new(Timestamp(start), Timestamp(end)).ok()?;
    Some(Booking::new(
        window,
        mode == ServiceMode::Onsite,
        runs_alongside,
    ))
}

/// The booking an order would make (its window, its item's mode and flag).
pub fn order_booking(order: &OrderRow) -> Option<Booking> {
    booking(
        order.window_start,
        order.window_end,
        order.item_mode,
        order.item_runs_alongside,
    )
}

/// The live assignment of `volunteer` that assigning order `order_id` would
/// clash with, if any (its order id): the named check of an accept and a
/// hand assignment, run inside their write transaction after the order's
/// and the volunteer's locks are held.
///
/// # Errors
/// Database errors.
pub async fn clashing_assignment(
    conn: &mut AnyConnection,
    order_id: i64,
    volunteer: i64,
) -> Result<Option<i64>> {
    let target: Option<Row> = sqlx::query_as(
        "select coalesce(o.assignee_user_id, 0) as assignee_user_id, o.id, o.window_start,
            o.window_end, i.mode, i.runs_alongside
         from service_order o join service_item i on i.id = o.item_id where o.id = $1",
    )
    .bind(order_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(target) = target.and_then(|r| r.live()).map(|b| b.booking) else {
        return Ok(None);
    };
    let sql = format!("{LIVE} and o.assignee_user_id = $1 and o.id <> $2 order by o.id");
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(volunteer)
        .bind(order_id)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows
        .iter()
        .filter_map(Row::live)
        .find(|b| b.booking.clashes(&target))
        .map(|b| b.order_id))
}

/// Whether `volunteer` already holds as many live assignments (assigned or
/// in service, other than order `order_id`) as their `max_concurrent`
/// allows: the load-cap check of an accept, run inside its write
/// transaction after [`Store::lock_volunteer`], beside
/// [`clashing_assignment`]. No such volunteer counts as at the cap.
///
/// # Errors
/// Database errors.
pub async fn at_load_cap(conn: &mut AnyConnection, order_id: i64, volunteer: i64) -> Result<bool> {
    let cap: Option<i64> =
        sqlx::query_scalar("select max_concurrent from volunteer where user_id = $1")
            .bind(volunteer)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(cap) = cap else {
        return Ok(true);
    };
    let live: i64 = sqlx::query_scalar(
        "select cast(count(*) as bigint) from service_order
         where assignee_user_id = $1 and state in ('assigned', 'in_service') and id <> $2",
    )
    .bind(volunteer)
    .bind(order_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(live >= cap)
}

impl Store {
    /// Every live assignment's booking, by volunteer (for the candidate
    /// pool: one query per dispatcher pass, like the loads).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn live_bookings(&self) -> Result<HashMap<i64, Vec<LiveBooking>>> {
        let rows: Vec<Row> = sqlx::query_as(LIVE).fetch_all(self.pool()).await?;
        let mut out: HashMap<i64, Vec<LiveBooking>> = HashMap::new();
        for b in rows.iter().filter_map(Row::live) {
            out.entry(b.volunteer_user_id).or_default().push(b);
        }
        Ok(out)
    }

    /// Serialises assignments of one volunteer inside `tx`, so that the
    /// overlap check of two concurrent accepts (of different orders, which
    /// lock different order rows) cannot both pass. PostgreSQL: a
    /// transaction-scoped advisory lock keyed by the volunteer; SQLite's
    /// `BEGIN IMMEDIATE` already serialises every writer.
    ///
    /// # Errors
    /// Database errors.
    pub async fn lock_volunteer(&self, tx: &mut Tx, volunteer: i64) -> Result<()> {
        if self.backend() == Backend::Postgres {
            // Key space: "HF" in the top bytes, the account id below.
            const KEY_BASE: i64 = 0x4846_i64 << 48;
            sqlx::query("select cast(pg_advisory_xact_lock($1) as text)")
                .bind(KEY_BASE | (volunteer & 0xFFFF_FFFF_FFFF))
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}
