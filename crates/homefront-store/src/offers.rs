//! Offers: proposals of an order to one volunteer, accepted exactly once.
//!
//! Every claim is a compare-and-set on the offer's state and expiry
//! (`update ... where state = 'offered' and expires_at > $now`) checked by
//! `rows_affected`, inside the same write transaction as the order's
//! transition, and backed by the unique index `offer_one_accepted`. Expiry
//! runs the mirror condition (`expires_at <= $now`), so an accept racing an
//! expiry at the boundary instant ends one way only.

use homefront_domain::order_state::{self, OrderAction, OrderState, Reason};
use serde::Serialize;

use crate::orders::transition_in;
use crate::outbox;
use crate::{Result, Store, StoreError};

/// An offer as stored.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct Offer {
    /// Row id.
    pub id: i64,
    /// The order.
    pub order_id: i64,
    /// The volunteer's account.
    pub volunteer_user_id: i64,
    /// `offered`, `accepted`, `declined`, `expired` or `withdrawn`.
    pub state: String,
    /// `sequential`, `broadcast`, `batch`, `manual` or `pairing`.
    pub via: String,
    /// Dispatch round (1-based) of the order.
    pub round: i64,
    /// Candidate rank, 1 = best.
    pub candidate_rank: i64,
    /// Great-circle distance in km; `None` for remote items.
    pub distance_km: Option<f64>,
    /// Total cost in km-equivalents.
    pub cost: f64,
    /// JSON of the explanation (rank, distance, cost terms).
    pub explanation: String,
    /// Offered, epoch ms.
    pub offered_at: i64,
    /// Expires, epoch ms.
    pub expires_at: i64,
    /// Accepted or declined, epoch ms.
    pub responded_at: Option<i64>,
    /// The coordinator of a manual offer; `None` for the dispatcher.
    pub offered_by: Option<i64>,
    /// A held accept (rank-aware broadcast): when it was held, epoch ms.
    pub held_at: Option<i64>,
    /// A held accept wins by this time at the latest (epoch ms), unless a
    /// better-ranked candidate accepts first.
    pub hold_until: Option<i64>,
}

/// A new offer.
#[derive(Clone, Debug)]
pub struct NewOffer {
    /// The order.
    pub order_id: i64,
    /// The volunteer's account.
    pub volunteer_user_id: i64,
    /// How it came about.
    pub via: &'static str,
    /// Round of the order.
    pub round: i64,
    /// Candidate rank.
    pub candidate_rank: i64,
    /// km, or `None` for remote.
    pub distance_km: Option<f64>,
    /// Total cost.
    pub cost: f64,
    /// Explanation JSON.
    pub explanation: String,
    /// Expires, epoch ms.
    pub expires_at: i64,
    /// Manual offers: the coordinator.
    pub offered_by: Option<i64>,
}

/// Why a response to an offer was refused; each has a stable API code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Another volunteer accepted first (`offer_taken`).
    Taken,
    /// The offer's time ran out (`offer_expired`).
    Expired,
    /// Withdrawn: the order was cancelled or reassigned (`offer_withdrawn`).
    Withdrawn,
    /// This volunteer already accepted it (`already_accepted`).
    AlreadyAccepted,
    /// This volunteer already declined it (`already_declined`).
    AlreadyDeclined,
    /// The order's service window has ended (`window_passed`); the order
    /// is given up as unfulfilled in the same transaction.
    WindowPassed,
    /// The volunteer holds a live assignment whose window overlaps this
    /// order's (`overlapping_assignment`; see [`crate::bookings`]).
    Overlapping,
    /// The volunteer already holds as many live assignments as their
    /// `max_concurrent` allows (`load_cap_reached`).
    AtLoadCap,
}

impl Refusal {
    /// The API code.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Taken => "offer_taken",
            Refusal::Expired => "offer_expired",
            Refusal::Withdrawn => "offer_withdrawn",
            Refusal::AlreadyAccepted => "already_accepted",
            Refusal::AlreadyDeclined => "already_declined",
            Refusal::WindowPassed => "window_passed",
            Refusal::Overlapping => "overlapping_assignment",
            Refusal::AtLoadCap => "load_cap_reached",
        }
    }

    /// A message for the volunteer.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Taken => "another volunteer took this order first",
            Refusal::Expired => "this offer expired before it was accepted",
            Refusal::Withdrawn => "this order no longer needs a volunteer",
            Refusal::AlreadyAccepted => "you already accepted this order",
            Refusal::AlreadyDeclined => "you already declined this offer",
            Refusal::WindowPassed => {
                "this order's service window has ended; it can no longer be accepted"
            }
            Refusal::Overlapping => {
                "you already have a service whose time overlaps this order's; \
                 finish it (check out) before accepting another for the same hours"
            }
            Refusal::AtLoadCap => {
                "you already hold as many live services as your load cap (max_concurrent) \
                 allows; finish one (check out) before accepting another"
            }
        }
    }
}

/// What happened to a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Response {
    /// The response took effect; for an accept, the order is now assigned.
    Done {
        /// The order.
        order_id: i64,
    },
    /// Refused, and recorded against the offer.
    Refused(Refusal),
    /// Rank-aware broadcast: better-ranked candidates are still deciding,
    /// so the accept is held until `until` (epoch ms) at the latest; the
    /// dispatcher then assigns the best-ranked held accept
    /// ([`Store::resolve_holds`]).
    Held {
        /// The order.
        order_id: i64,
        /// The hold's end, epoch ms.
        until: i64,
    },
}

/// Most rounds [`Store::write_rounds`] writes in one transaction.
pub const ROUNDS_PER_CHUNK: usize = 500;

/// About the most offers [`Store::write_rounds`] writes in one transaction
/// (11 bound values each, and 5 for each outbox row: well within SQLite's
/// 32,766 and PostgreSQL's 65,535 parameters per statement).
pub const ROWS_PER_CHUNK: usize = 2_000;

/// `$from, $from+1, …` for `n` values.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) const COLUMNS: &str = "id, order_id, volunteer_user_id, state, via, round, candidate_rank, distance_km, \
    cost, explanation, offered_at, expires_at, responded_at, offered_by, held_at, hold_until";

/// Takes the order's row lock (a no-op write), so that every claim on one
/// order's offers serialises: on PostgreSQL two accepts would otherwise
/// lock each other's offer rows in opposite orders; SQLite's `BEGIN
/// IMMEDIATE` already serialises all writers.
///
/// # Errors
/// Database errors.
pub async fn lock_order(tx: &mut crate::Tx, order_id: i64) -> Result<()> {
    sqlx::query("update service_order set updated_at = updated_at where id = $1")
        .bind(order_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn record_response(
    tx: &mut crate::Tx,
    offer_id: i64,
    volunteer: i64,
    response: &str,
    outcome: &str,
    now_ms: i64,
) -> Result<()> {
    sqlx::query(
        "insert into offer_response (offer_id, volunteer_user_id, response, outcome, at)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(offer_id)
    .bind(volunteer)
    .bind(response)
    .bind(outcome)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Why a compare-and-set on `offer` failed, read after the fact.
async fn refusal(
    tx: &mut crate::Tx,
    offer: &Offer,
    volunteer: i64,
    now_ms: i64,
) -> Result<Refusal> {
    let someone_accepted: Option<i64> = sqlx::query_scalar(
        "select volunteer_user_id from offer
         where order_id = $1 and state = 'accepted' and released_at is null",
    )
    .bind(offer.order_id)
    .fetch_optional(&mut **tx)
    .await?;
    // An order nobody took whose window ended: too late, whatever the
    // offer's own state (the dispatcher may have withdrawn it already).
    let too_late: Option<i64> = sqlx::query_scalar(
        "select id from service_order where id = $1 and window_end <= $2
            and state in ('submitted', 'dispatching', 'unfulfilled')",
    )
    .bind(offer.order_id)
    .bind(now_ms)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(match (offer.state.as_str(), someone_accepted) {
        ("accepted", _) => Refusal::AlreadyAccepted,
        ("declined", _) => Refusal::AlreadyDeclined,
        (_, Some(v)) if v != volunteer => Refusal::Taken,
        _ if too_late.is_some() => Refusal::WindowPassed,
        ("expired", _) => Refusal::Expired,
        ("offered", _) if offer.expires_at <= now_ms => Refusal::Expired,
        _ => Refusal::Withdrawn,
    })
}

/// A held accept: until when, and whether this call held it (false: it
/// was held already).
struct Held {
    until: i64,
    fresh: bool,
}

/// Rank-aware broadcast: holds an accept of `offer` (inside the accept's
/// transaction, after the order's lock) when `hold_ms > 0`, the offer came
/// from a broadcast round and a better-ranked candidate of the same round
/// is still deciding (an open offer not yet expired) or has an accept held
/// already. Returns `None` when the accept should go ahead now; an offer
/// held earlier answers with its hold again.
async fn hold(
    tx: &mut crate::Tx,
    offer: &Offer,
    now_ms: i64,
    hold_ms: i64,
) -> Result<Option<Held>> {
    if offer.state != "offered" {
        return Ok(None);
    }
    if let (Some(_), Some(until)) = (offer.held_at, offer.hold_until) {
        return Ok(Some(Held {
            until,
            fresh: false,
        }));
    }
    if hold_ms <= 0 || offer.via != "broadcast" || offer.expires_at <= now_ms {
        return Ok(None);
    }
    let better: i64 = sqlx::query_scalar(
        "select cast(count(*) as bigint) from offer
         where order_id = $1 and round = $2 and id <> $3 and state = 'offered'
           and candidate_rank < $4 and (held_at is not null or expires_at > $5)",
    )
    .bind(offer.order_id)
    .bind(offer.round)
    .bind(offer.id)
    .bind(offer.candidate_rank)
    .bind(now_ms)
    .fetch_one(&mut **tx)
    .await?;
    if better == 0 {
        return Ok(None);
    }
    let until = now_ms + hold_ms;
    let n = sqlx::query(
        "update offer set held_at = $1, hold_until = $2
         where id = $3 and state = 'offered' and held_at is null and expires_at > $1
           and exists (select 1 from service_order o where o.id = $4 and o.window_end > $1)",
    )
    .bind(now_ms)
    .bind(until)
    .bind(offer.id)
    .bind(offer.order_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    // Not held (the window ended meanwhile): the ordinary accept refuses it.
    Ok((n == 1).then_some(Held { until, fresh: true }))
}

impl Store {
    /// Inserts offers inside `tx` (a dispatch round).
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when a volunteer already holds an open offer
    /// for the order.
    pub async fn insert_offers(
        tx: &mut crate::Tx,
        offers: &[NewOffer],
        now_ms: i64,
    ) -> Result<Vec<i64>> {
        let mut ids = Vec::with_capacity(offers.len());
        for o in offers {
            let id: i64 = sqlx::query_scalar(
                "insert into offer (order_id, volunteer_user_id, state, via, round, candidate_rank,
                    distance_km, cost, explanation, offered_at, expires_at, offered_by)
                 values ($1, $2, 'offered', $3, $4, $5, $6, $7, $8, $9, $10, $11) returning id",
            )
            // A nullable double: see the crate docs.
            .persistent(false)
            .bind(o.order_id)
            .bind(o.volunteer_user_id)
            .bind(o.via)
            .bind(o.round)
            .bind(o.candidate_rank)
            .bind(o.distance_km)
            .bind(o.cost)
            .bind(&o.explanation)
            .bind(now_ms)
            .bind(o.expires_at)
            .bind(o.offered_by)
            .fetch_one(&mut **tx)
            .await?;
            outbox::enqueue_order_in(
                tx,
                outbox::kind::OFFER_MADE,
                o.order_id,
                Some(o.volunteer_user_id),
                &[
                    ("offer_id", id.into()),
                    ("expires_at", o.expires_at.into()),
                    // Approximate distance only (0.1 km), as before acceptance.
                    (
                        "distance_km",
                        o.distance_km.map(|d| (d * 10.0).round() / 10.0).into(),
                    ),
                ],
                now_ms,
            )
            .await?;
            ids.push(id);
        }
        Ok(ids)
    }

    /// Writes a dispatch round for `order_id`: a `submitted` order first
    /// moves to `dispatching`, then `offers` are inserted, in one
    /// transaction. An order that is no longer waiting (cancelled or
    /// assigned meanwhile) gets nothing, and neither does one that still
    /// has an open offer (`offered`, held accepts included): a round while
    /// another is open would be a duplicate round (two dispatchers, or a
    /// pass that read a stale backlog). Returns whether the round was written.
    ///
    /// # Errors
    /// Database errors; [`StoreError::Conflict`] when a volunteer already
    /// holds an open offer for the order.
    #[tracing::instrument(skip_all)]
    pub async fn write_round(
        &self,
        order_id: i64,
        offers: &[NewOffer],
        now_ms: i64,
    ) -> Result<bool> {
        self.write_offers(order_id, offers, now_ms, true).await
    }

    /// Writes many dispatch rounds as [`write_round`](Store::write_round)
    /// would one by one, with the same rows and the same guarantees, but by
    /// sets: rounds are taken in chunks (at most [`ROUNDS_PER_CHUNK`] orders
    /// and about [`ROWS_PER_CHUNK`] offers), and each chunk is one
    /// transaction of a few multi-row statements: lock the orders (row locks
    /// in id order on PostgreSQL; SQLite's writer already runs alone), read
    /// their states and open offers, move the `submitted` ones to
    /// `dispatching` (compare-and-set on the state) with their event rows,
    /// insert the offers, and insert every outbox row (state changes and
    /// offers made, in the order the single writes would have). An order no
    /// longer waiting, or with an offer still open, gets nothing, as in
    /// `write_round`. A chunk that fails on a conflict (`offer_one_open`) or
    /// a state that changed under it is rolled back and written round by
    /// round instead, so one bad round does not cost the others theirs.
    ///
    /// Returns, in the order given, whether each round was written.
    ///
    /// # Errors
    /// Database errors (chunks committed before stay committed).
    #[tracing::instrument(skip_all)]
    pub async fn write_rounds(
        &self,
        rounds: &[(i64, &[NewOffer])],
        now_ms: i64,
    ) -> Result<Vec<bool>> {
        let mut written = Vec::with_capacity(rounds.len());
        let mut start = 0;
        while start < rounds.len() {
            let mut end = start;
            let mut rows = 0;
            while end < rounds.len()
                && end - start < ROUNDS_PER_CHUNK
                && (end == start || rows + rounds[end].1.len() <= ROWS_PER_CHUNK)
            {
                rows += rounds[end].1.len();
                end += 1;
            }
            let chunk = &rounds[start..end];
            match self.write_rounds_chunk(chunk, now_ms).await {
                Ok(done) => written.extend(done),
                Err(StoreError::Conflict(_) | StoreError::Stale) => {
                    for (order_id, offers) in chunk {
                        written.push(match self.write_round(*order_id, offers, now_ms).await {
                            Ok(done) => done,
                            // This round only: the others still get theirs.
                            Err(StoreError::Conflict(_) | StoreError::Stale) => false,
                            Err(e) => return Err(e),
                        });
                    }
                }
                Err(e) => return Err(e),
            }
            start = end;
        }
        Ok(written)
    }

    async fn write_rounds_chunk(
        &self,
        chunk: &[(i64, &[NewOffer])],
        now_ms: i64,
    ) -> Result<Vec<bool>> {
        let mut ids: Vec<i64> = chunk.iter().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        let backend = self.backend();
        let mut tx = self.begin_write().await?;
        if backend == crate::Backend::Postgres {
            // Row locks in id order: two lockers of overlapping sets cannot
            // deadlock, and single-order writers (accepts, cancels) wait.
            let sql = format!(
                "select id from service_order where id in ({}) order by id for update",
                placeholders(1, ids.len())
            );
            let mut q =
                sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(crate::positional(backend, sql)));
            for id in &ids {
                q = q.bind(*id);
            }
            q.fetch_all(&mut *tx).await?;
        }
        // Each order's state and whether an offer of it is open, under the lock.
        let sql = format!(
            "select id, state, cast((select count(*) from offer f
                                     where f.order_id = o.id and f.state = 'offered') as bigint)
             from service_order o where id in ({})",
            placeholders(1, ids.len())
        );
        let mut q = sqlx::query_as::<_, (i64, String, i64)>(sqlx::AssertSqlSafe(
            crate::positional(backend, sql),
        ));
        for id in &ids {
            q = q.bind(*id);
        }
        let current: std::collections::HashMap<i64, (String, i64)> = q
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(id, state, open)| (id, (state, open)))
            .collect();

        // Which rounds go ahead (the first of an order given twice only).
        let mut seen = std::collections::HashSet::new();
        let mut go = Vec::with_capacity(chunk.len());
        let mut starting: Vec<i64> = Vec::new();
        for (order_id, _) in chunk {
            let ok = match current.get(order_id) {
                Some((state, open)) if *open == 0 && seen.insert(*order_id) => {
                    match state.as_str() {
                        "submitted" => {
                            starting.push(*order_id);
                            true
                        }
                        "dispatching" => true,
                        _ => false,
                    }
                }
                Some((_, open)) if *open > 0 => {
                    tracing::warn!(
                        order_id,
                        open,
                        "round refused: an offer of the order is still open"
                    );
                    false
                }
                _ => false,
            };
            go.push(ok);
        }
        if !go.contains(&true) {
            return Ok(go);
        }

        // submitted → dispatching, as `transition_in` writes it.
        let action = OrderAction::StartDispatch;
        let from = OrderState::Submitted;
        let to = order_state::transition(from, &action)?;
        if !starting.is_empty() {
            let sql = format!(
                "update service_order set state = $1, updated_at = $2
                 where state = $3 and id in ({})",
                placeholders(4, starting.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(crate::positional(backend, sql)))
                .bind(to.as_str())
                .bind(now_ms)
                .bind(from.as_str());
            for id in &starting {
                q = q.bind(*id);
            }
            let n = q.execute(&mut *tx).await?.rows_affected();
            if n != starting.len() as u64 {
                return Err(StoreError::Stale);
            }
            // Placeholders in the order they are bound (see `positional`).
            let values = (0..starting.len())
                .map(|i| {
                    let b = 6 * i;
                    format!(
                        "(${}, ${}, ${}, ${}, ${}, null, ${}, null)",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5,
                        b + 6
                    )
                })
                .collect::<Vec<_>>();
            let sql = format!(
                "{} values {}",
                crate::orders::events::INSERT,
                values.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(crate::positional(backend, sql)));
            for id in &starting {
                q = q
                    .bind(*id)
                    .bind(now_ms)
                    .bind(action.event_action().as_str())
                    .bind(from.as_str())
                    .bind(to.as_str())
                    .bind(action.reason().map(|r| r.as_str()));
            }
            q.execute(&mut *tx).await?;
        }

        // The offers, by (order, volunteer) → id.
        let new: Vec<&NewOffer> = chunk
            .iter()
            .zip(&go)
            .filter(|(_, ok)| **ok)
            .flat_map(|((_, offers), _)| offers.iter())
            .collect();
        let mut offer_ids = std::collections::HashMap::new();
        if !new.is_empty() {
            const COLS: usize = 11;
            let values = (0..new.len())
                .map(|i| {
                    let b = COLS * i;
                    let p: Vec<String> = (1..=COLS).map(|c| format!("${}", b + c)).collect();
                    format!("({}, {}, 'offered', {})", p[0], p[1], p[2..].join(", "))
                })
                .collect::<Vec<_>>();
            let sql = format!(
                "insert into offer (order_id, volunteer_user_id, state, via, round, candidate_rank,
                    distance_km, cost, explanation, offered_at, expires_at, offered_by)
                 values {} returning id, order_id, volunteer_user_id",
                values.join(", ")
            );
            // A nullable double: see the crate docs.
            let mut q = sqlx::query_as::<_, (i64, i64, i64)>(sqlx::AssertSqlSafe(
                crate::positional(backend, sql),
            ))
            .persistent(false);
            for o in &new {
                q = q
                    .bind(o.order_id)
                    .bind(o.volunteer_user_id)
                    .bind(o.via)
                    .bind(o.round)
                    .bind(o.candidate_rank)
                    .bind(o.distance_km)
                    .bind(o.cost)
                    .bind(&o.explanation)
                    .bind(now_ms)
                    .bind(o.expires_at)
                    .bind(o.offered_by);
            }
            for (id, order_id, volunteer) in q.fetch_all(&mut *tx).await? {
                offer_ids.insert((order_id, volunteer), id);
            }
        }

        // The outbox rows, each order's state change before its offers.
        let touched: Vec<i64> = chunk
            .iter()
            .zip(&go)
            .filter(|(_, ok)| **ok)
            .map(|((id, _), _)| *id)
            .collect();
        let facts = outbox::orders_facts(&mut tx, backend, &touched).await?;
        let starting: std::collections::HashSet<i64> = starting.into_iter().collect();
        let mut rows: Vec<(
            homefront_domain::notify::EventKind,
            i64,
            Option<i64>,
            String,
        )> = Vec::new();
        for ((order_id, offers), ok) in chunk.iter().zip(&go) {
            if !*ok {
                continue;
            }
            let base = facts.get(order_id).cloned().unwrap_or_default();
            if starting.contains(order_id) {
                let mut data = base.clone();
                data.insert("action".into(), action.as_str().into());
                data.insert("from".into(), from.as_str().into());
                data.insert("to".into(), to.as_str().into());
                data.insert("actor_user_id".into(), serde_json::Value::Null);
                data.insert("released_user_id".into(), serde_json::Value::Null);
                rows.push((
                    outbox::kind::ORDER_STATE,
                    *order_id,
                    None,
                    serde_json::Value::Object(data).to_string(),
                ));
            }
            for o in offers.iter() {
                let id = offer_ids
                    .get(&(o.order_id, o.volunteer_user_id))
                    .copied()
                    .ok_or(StoreError::Stale)?;
                let mut data = base.clone();
                data.insert("offer_id".into(), id.into());
                data.insert("expires_at".into(), o.expires_at.into());
                // Approximate distance only (0.1 km), as before acceptance.
                data.insert(
                    "distance_km".into(),
                    o.distance_km.map(|d| (d * 10.0).round() / 10.0).into(),
                );
                rows.push((
                    outbox::kind::OFFER_MADE,
                    o.order_id,
                    Some(o.volunteer_user_id),
                    serde_json::Value::Object(data).to_string(),
                ));
            }
        }
        if !rows.is_empty() {
            let values = (0..rows.len())
                .map(|i| {
                    let b = 5 * i;
                    format!(
                        "(${}, ${}, ${}, null, null, ${}, null, ${})",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5
                    )
                })
                .collect::<Vec<_>>();
            let sql = format!(
                "insert into outbox_event (kind, order_id, user_id, org_unit_id, bot_id, data, dedupe_key, created_at)
                 values {} on conflict do nothing",
                values.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(crate::positional(backend, sql)));
            for (kind, order_id, user_id, data) in &rows {
                q = q
                    .bind(kind.as_str())
                    .bind(*order_id)
                    .bind(*user_id)
                    .bind(data)
                    .bind(now_ms);
            }
            q.execute(&mut *tx).await?;
        }
        for id in &touched {
            tx.notify_live(outbox::LiveChange::Order(*id));
        }
        tx.commit().await?;
        Ok(go)
    }

    /// Adds a coordinator's offers of `order_id` (manual dispatch) like
    /// [`write_round`](Store::write_round), but beside offers still open:
    /// a coordinator may offer the order to one more volunteer.
    ///
    /// # Errors
    /// As [`write_round`](Store::write_round).
    #[tracing::instrument(skip_all)]
    pub async fn add_manual_offers(
        &self,
        order_id: i64,
        offers: &[NewOffer],
        now_ms: i64,
    ) -> Result<bool> {
        self.write_offers(order_id, offers, now_ms, false).await
    }

    async fn write_offers(
        &self,
        order_id: i64,
        offers: &[NewOffer],
        now_ms: i64,
        refuse_if_open: bool,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        lock_order(&mut tx, order_id).await?;
        // The state and whether an offer of the order is open, in one read
        // under the order's lock.
        let current: Option<(String, i64)> = sqlx::query_as(
            "select state, cast((select count(*) from offer f
                                 where f.order_id = o.id and f.state = 'offered') as bigint)
             from service_order o where id = $1",
        )
        .bind(order_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((state, open)) = current else {
            return Ok(false);
        };
        if refuse_if_open && open > 0 {
            tracing::warn!(
                order_id,
                open,
                "round refused: an offer of the order is still open"
            );
            return Ok(false);
        }
        match state.as_str() {
            "submitted" => {
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
            "dispatching" => {}
            _ => return Ok(false),
        }
        Self::insert_offers(&mut tx, offers, now_ms).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// One offer by id.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn offer(&self, id: i64) -> Result<Option<Offer>> {
        let sql = format!("select {COLUMNS} from offer where id = $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    /// Offers of a volunteer in the given states, newest first: at most
    /// `limit` older than `before_id` (all when `None`).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn offers_of_volunteer(
        &self,
        volunteer: i64,
        states: &[&str],
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Offer>> {
        let slots: Vec<String> = (0..states.len()).map(|i| format!("${}", i + 4)).collect();
        let sql = format!(
            "select {COLUMNS} from offer where volunteer_user_id = $1 and id < $2 and state in ({})
             order by id desc limit $3",
            slots.join(", ")
        );
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(volunteer)
            .bind(before_id.unwrap_or(i64::MAX))
            .bind(limit);
        for s in states {
            q = q.bind(*s);
        }
        Ok(q.fetch_all(self.pool()).await?)
    }

    /// Every offer of an order, oldest first.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn offers_of_order(&self, order_id: i64) -> Result<Vec<Offer>> {
        let sql = format!("select {COLUMNS} from offer where order_id = $1 order by id");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(order_id)
            .fetch_all(self.pool())
            .await?)
    }

    /// Whether `volunteer` has ever been offered `order_id` (any state):
    /// they may see its non-identifying summary.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn was_offered(&self, order_id: i64, volunteer: i64) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "select cast(count(*) as bigint) from offer where order_id = $1 and volunteer_user_id = $2",
        )
        .bind(order_id)
        .bind(volunteer)
        .fetch_one(self.pool())
        .await?;
        Ok(n > 0)
    }

    /// Accepts offer `offer_id` for `volunteer` at `now_ms`: claims the offer
    /// (compare-and-set on its state and expiry and on the order's window
    /// not having ended), checks that the volunteer holds no live
    /// assignment that overlaps it ([`crate::bookings::clashing_assignment`],
    /// under [`Store::lock_volunteer`]), withdraws the order's other open
    /// offers, and moves the order `dispatching → assigned`, all in one
    /// transaction. A refused accept is recorded against the offer; one
    /// refused because the window ended also gives the order up as
    /// `unfulfilled` in that transaction.
    ///
    /// Returns `None` when the offer does not exist or is not this volunteer's.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn accept_offer(
        &self,
        offer_id: i64,
        volunteer: i64,
        now_ms: i64,
        hold_ms: i64,
    ) -> Result<Option<Response>> {
        let mut tx = self.begin_write().await?;
        let sql = format!("select {COLUMNS} from offer where id = $1");
        let offer: Option<Offer> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(offer_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(offer) = offer.filter(|o| o.volunteer_user_id == volunteer) else {
            return Ok(None);
        };
        lock_order(&mut tx, offer.order_id).await?;
        self.lock_volunteer(&mut tx, volunteer).await?;
        if let Some(held) = hold(&mut tx, &offer, now_ms, hold_ms).await? {
            if held.fresh {
                record_response(&mut tx, offer_id, volunteer, "accept", "held", now_ms).await?;
                tx.commit().await?;
            }
            return Ok(Some(Response::Held {
                order_id: offer.order_id,
                until: held.until,
            }));
        }
        let claimed = sqlx::query(
            "update offer set state = 'accepted', responded_at = $1
             where id = $2 and state = 'offered' and expires_at > $1
               and exists (select 1 from service_order o
                           where o.id = $3 and o.window_end > $1)",
        )
        .bind(now_ms)
        .bind(offer_id)
        .bind(offer.order_id)
        .execute(&mut *tx)
        .await;
        let claimed = match claimed {
            Ok(r) => r.rows_affected() == 1,
            // offer_one_accepted: another accept committed first (PostgreSQL).
            Err(e) => match StoreError::from(e) {
                e if e.violates(&crate::constraint::OFFER_ONE_ACCEPTED) => false,
                e => return Err(e),
            },
        };
        // The load cap, under the same locks as the claim: two accepts of
        // different orders by one volunteer serialise on lock_volunteer.
        let at_cap =
            claimed && crate::bookings::at_load_cap(&mut tx, offer.order_id, volunteer).await?;
        let overlapping = claimed
            && !at_cap
            && crate::bookings::clashing_assignment(&mut tx, offer.order_id, volunteer)
                .await?
                .is_some();
        let assigned = if claimed && !at_cap && !overlapping {
            match transition_in(
                &mut tx,
                offer.order_id,
                &OrderAction::Assign,
                Some(volunteer),
                Some(volunteer),
                now_ms,
            )
            .await
            {
                Ok(_) => true,
                Err(StoreError::Transition(_) | StoreError::Stale) => false,
                Err(e) => return Err(e),
            }
        } else {
            false
        };
        if !assigned {
            // Undo the claim (if any) and record the refused response.
            tx.rollback().await?;
            let mut tx = self.begin_write().await?;
            let sql = format!("select {COLUMNS} from offer where id = $1");
            let current: Offer = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(offer_id)
                .fetch_one(&mut *tx)
                .await?;
            let why = if at_cap {
                Refusal::AtLoadCap
            } else if overlapping {
                Refusal::Overlapping
            } else {
                refusal(&mut tx, &current, volunteer, now_ms).await?
            };
            record_response(&mut tx, offer_id, volunteer, "accept", why.code(), now_ms).await?;
            if why == Refusal::WindowPassed {
                // Nobody can take it any more: unfulfilled now, not at the
                // dispatcher's next pass.
                let reason = Reason::parse(crate::orders::WINDOW_ENDED)
                    .map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))?;
                crate::orders::give_up_in(&mut tx, offer.order_id, &reason, now_ms).await?;
            }
            tx.commit().await?;
            return Ok(Some(Response::Refused(why)));
        }
        let losers: Vec<(i64, i64)> = sqlx::query_as(
            "update offer set state = 'withdrawn', responded_at = $1
             where order_id = $2 and state = 'offered' and id <> $3
             returning id, volunteer_user_id",
        )
        .bind(now_ms)
        .bind(offer.order_id)
        .bind(offer_id)
        .fetch_all(&mut *tx)
        .await?;
        for (id, loser) in losers {
            outbox::enqueue_order_in(
                &mut tx,
                outbox::kind::OFFER_TAKEN,
                offer.order_id,
                Some(loser),
                &[("offer_id", id.into())],
                now_ms,
            )
            .await?;
        }
        record_response(&mut tx, offer_id, volunteer, "accept", "accepted", now_ms).await?;
        tx.commit().await?;
        Ok(Some(Response::Done {
            order_id: offer.order_id,
        }))
    }

    /// Declines offer `offer_id` for `volunteer` (compare-and-set, like accept).
    /// Returns `None` when the offer does not exist or is not this volunteer's.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn decline_offer(
        &self,
        offer_id: i64,
        volunteer: i64,
        now_ms: i64,
    ) -> Result<Option<Response>> {
        let mut tx = self.begin_write().await?;
        let sql = format!("select {COLUMNS} from offer where id = $1");
        let offer: Option<Offer> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(offer_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(offer) = offer.filter(|o| o.volunteer_user_id == volunteer) else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "update offer set state = 'declined', responded_at = $1
             where id = $2 and state = 'offered' and (expires_at > $1 or held_at is not null)",
        )
        .bind(now_ms)
        .bind(offer_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let outcome = if rows == 1 {
            Response::Done {
                order_id: offer.order_id,
            }
        } else {
            Response::Refused(refusal(&mut tx, &offer, volunteer, now_ms).await?)
        };
        let text = match outcome {
            Response::Done { .. } => "declined",
            Response::Refused(r) => r.code(),
            // A decline is never held.
            Response::Held { .. } => "held",
        };
        record_response(&mut tx, offer_id, volunteer, "decline", text, now_ms).await?;
        tx.commit().await?;
        Ok(Some(outcome))
    }

    /// Settles held accepts (rank-aware broadcast) at `now_ms`: for each
    /// order with a held accept, once no better-ranked candidate than the
    /// best held one is still deciding (all declined, expired or held), or
    /// the best one's hold has ended, the best-ranked held accept that can
    /// still be served wins: compare-and-set to `accepted` (the unique index
    /// `offer_one_accepted` backs it), the order moves to `assigned`, and
    /// every other open offer is withdrawn with an offer-taken notice, in
    /// one transaction under the order's lock. A held accept that can no
    /// longer be served (its volunteer reached the load cap or took an
    /// overlapping service meanwhile) is withdrawn with that refusal
    /// recorded, and the next held one is tried. Returns the orders assigned.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn resolve_holds(&self, now_ms: i64) -> Result<Vec<i64>> {
        let orders: Vec<i64> = sqlx::query_scalar(
            "select distinct order_id from offer
             where state = 'offered' and held_at is not null order by order_id",
        )
        .fetch_all(self.pool())
        .await?;
        let mut assigned = Vec::new();
        for order_id in orders {
            let mut tx = self.begin_write().await?;
            lock_order(&mut tx, order_id).await?;
            let sql = format!(
                "select {COLUMNS} from offer where order_id = $1 and state = 'offered'
                 order by candidate_rank, id"
            );
            let open: Vec<Offer> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(order_id)
                .fetch_all(&mut *tx)
                .await?;
            let held: Vec<&Offer> = open.iter().filter(|o| o.held_at.is_some()).collect();
            let Some(best) = held.first() else {
                continue;
            };
            let deciding = open.iter().any(|o| {
                o.held_at.is_none()
                    && o.round == best.round
                    && o.candidate_rank < best.candidate_rank
                    && o.expires_at > now_ms
            });
            if deciding && best.hold_until.is_some_and(|u| u > now_ms) {
                continue;
            }
            let mut winner = None;
            for h in &held {
                self.lock_volunteer(&mut tx, h.volunteer_user_id).await?;
                let why = if crate::bookings::at_load_cap(&mut tx, order_id, h.volunteer_user_id)
                    .await?
                {
                    Some(Refusal::AtLoadCap)
                } else if crate::bookings::clashing_assignment(
                    &mut tx,
                    order_id,
                    h.volunteer_user_id,
                )
                .await?
                .is_some()
                {
                    Some(Refusal::Overlapping)
                } else {
                    None
                };
                if let Some(why) = why {
                    sqlx::query(
                        "update offer set state = 'withdrawn', responded_at = $1
                         where id = $2 and state = 'offered'",
                    )
                    .bind(now_ms)
                    .bind(h.id)
                    .execute(&mut *tx)
                    .await?;
                    record_response(
                        &mut tx,
                        h.id,
                        h.volunteer_user_id,
                        "accept",
                        why.code(),
                        now_ms,
                    )
                    .await?;
                    outbox::enqueue_order_in(
                        &mut tx,
                        outbox::kind::OFFER_WITHDRAWN,
                        order_id,
                        Some(h.volunteer_user_id),
                        &[("offer_id", h.id.into())],
                        now_ms,
                    )
                    .await?;
                    continue;
                }
                winner = Some(*h);
                break;
            }
            let Some(w) = winner else {
                tx.commit().await?;
                continue;
            };
            let n = sqlx::query(
                "update offer set state = 'accepted', responded_at = $1
                 where id = $2 and state = 'offered' and held_at is not null
                   and exists (select 1 from service_order o
                               where o.id = $3 and o.window_end > $1)",
            )
            .bind(now_ms)
            .bind(w.id)
            .bind(order_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n != 1 {
                // The window ended: the dispatcher's pass gives the order up.
                tx.rollback().await?;
                continue;
            }
            match transition_in(
                &mut tx,
                order_id,
                &OrderAction::Assign,
                Some(w.volunteer_user_id),
                Some(w.volunteer_user_id),
                now_ms,
            )
            .await
            {
                Ok(_) => {}
                Err(StoreError::Transition(_) | StoreError::Stale) => {
                    tx.rollback().await?;
                    continue;
                }
                Err(e) => return Err(e),
            }
            let losers: Vec<(i64, i64)> = sqlx::query_as(
                "update offer set state = 'withdrawn', responded_at = $1
                 where order_id = $2 and state = 'offered' and id <> $3
                 returning id, volunteer_user_id",
            )
            .bind(now_ms)
            .bind(order_id)
            .bind(w.id)
            .fetch_all(&mut *tx)
            .await?;
            for (id, loser) in losers {
                outbox::enqueue_order_in(
                    &mut tx,
                    outbox::kind::OFFER_TAKEN,
                    order_id,
                    Some(loser),
                    &[("offer_id", id.into())],
                    now_ms,
                )
                .await?;
            }
            record_response(
                &mut tx,
                w.id,
                w.volunteer_user_id,
                "accept",
                "accepted",
                now_ms,
            )
            .await?;
            tx.commit().await?;
            assigned.push(order_id);
        }
        Ok(assigned)
    }

    /// Expires every open offer whose time is up (`expires_at <= now`),
    /// except held accepts (see [`Store::resolve_holds`]).
    /// Returns the ids of the orders that lost an offer.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn expire_offers(&self, now_ms: i64) -> Result<Vec<i64>> {
        let orders: Vec<i64> = sqlx::query_scalar(
            "select distinct order_id from offer
             where state = 'offered' and expires_at <= $1 and held_at is null order by order_id",
        )
        .bind(now_ms)
        .fetch_all(self.pool())
        .await?;
        // One order at a time, under its lock, like accepts.
        let mut expired = Vec::with_capacity(orders.len());
        for order_id in orders {
            let mut tx = self.begin_write().await?;
            lock_order(&mut tx, order_id).await?;
            let n = sqlx::query(
                "update offer set state = 'expired'
                 where order_id = $1 and state = 'offered' and expires_at <= $2 and held_at is null",
            )
            .bind(order_id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            if n > 0 {
                expired.push(order_id);
            }
        }
        Ok(expired)
    }

    /// Withdraws the open offers of an order inside `tx` (cancelled,
    /// assigned manually, or escalated to a coordinator).
    ///
    /// # Errors
    /// Database errors.
    pub async fn withdraw_offers(tx: &mut crate::Tx, order_id: i64, now_ms: i64) -> Result<u64> {
        let withdrawn: Vec<(i64, i64)> = sqlx::query_as(
            "update offer set state = 'withdrawn', responded_at = $1 where order_id = $2 and state = 'offered'
             returning id, volunteer_user_id",
        )
        .bind(now_ms)
        .bind(order_id)
        .fetch_all(&mut **tx)
        .await?;
        for (id, volunteer) in &withdrawn {
            outbox::enqueue_order_in(
                tx,
                outbox::kind::OFFER_WITHDRAWN,
                order_id,
                Some(*volunteer),
                &[("offer_id", (*id).into())],
                now_ms,
            )
            .await?;
        }
        Ok(withdrawn.len() as u64)
    }

    /// Withdraws every open offer of `volunteer` inside `tx` (they went off
    /// duty: an offer they can no longer serve must not keep a working
    /// accept button, nor keep the order from its next candidate), telling
    /// them through the outbox. Returns the orders that lost an offer.
    ///
    /// # Errors
    /// Database errors.
    pub async fn withdraw_offers_of_volunteer(
        tx: &mut crate::Tx,
        volunteer: i64,
        now_ms: i64,
    ) -> Result<Vec<i64>> {
        let withdrawn: Vec<(i64, i64)> = sqlx::query_as(
            "update offer set state = 'withdrawn', responded_at = $1
             where volunteer_user_id = $2 and state = 'offered'
             returning id, order_id",
        )
        .bind(now_ms)
        .bind(volunteer)
        .fetch_all(&mut **tx)
        .await?;
        let mut orders = Vec::with_capacity(withdrawn.len());
        for (id, order_id) in withdrawn {
            outbox::enqueue_order_in(
                tx,
                outbox::kind::OFFER_WITHDRAWN,
                order_id,
                Some(volunteer),
                &[("offer_id", id.into())],
                now_ms,
            )
            .await?;
            orders.push(order_id);
        }
        Ok(orders)
    }

    /// Responses recorded against an offer: `(response, outcome)` pairs, oldest first.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn offer_responses(&self, offer_id: i64) -> Result<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "select response, outcome from offer_response where offer_id = $1 order by id",
        )
        .bind(offer_id)
        .fetch_all(self.pool())
        .await?)
    }
}
