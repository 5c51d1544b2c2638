//! The dispatcher: turns waiting orders into offers, expires offers,
//! escalates orders up the tree and gives up on orders whose window passed.
//!
//! One pass is [`tick`], called by the worker loop every few seconds (and
//! at once when an order arrives or an offer is declined) and directly by
//! tests with a manual clock. Ranking comes from `homefront-dispatch`;
//! eligibility from the domain's `is_eligible`; every offer stores its
//! explanation.
//!
//! Modes per org unit (the deepest unit on the order's path with a
//! setting; default `auto`):
//! - `sequential`: one offer to the best candidate; the next after a
//!   decline or expiry (and, after the unit's cooldown, a volunteer who let
//!   it expire again: see [`not_to_offer`]).
//! - `broadcast`: offers to the k best at once; an accept from the
//!   best-ranked open candidate wins at once, a lower-ranked accept is held
//!   (at most `broadcast_hold_seconds`) while better-ranked candidates
//!   decide, then the best-ranked accept wins
//!   ([`homefront_store::Store::resolve_holds`]).
//! - `batch`: each pass, all waiting orders of the unit against all
//!   available volunteers, solved exactly (maximum matches, then minimum
//!   total cost).
//! - `manual`: no automatic offers; coordinators pick from the ranked list.
//! - `auto`: `batch` when supply is tight, nearest-first otherwise
//!   ([`homefront_dispatch::AutoPolicy`]).
//!
//! Sequential and broadcast offers go to the best by full cost (distance +
//! load + fairness − pairing bonus) among the [`K`] nearest eligible
//! volunteers, not merely to the nearest.
//!
//! Paired households first: an order of a paired household is offered to
//! its primary volunteer, then its backup, then by the unit's mode.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use homefront_dispatch::cost::FAIRNESS_WINDOW_DAYS;
use homefront_dispatch::{
    AutoPolicy, Candidate, CandidateQuery, CostWeights, DispatchMode, OrderLocation, PendingOrder,
    Volunteer, VolunteerIndex,
};
use homefront_domain::availability::TimeWindow;
use homefront_domain::catalogue::Lane;
use homefront_domain::credentials::{ItemRequirements, Qualification, is_eligible};
use homefront_domain::escalation;
use homefront_domain::order_state::Reason;
use homefront_domain::org::{OrgPath, team_serves};
use homefront_domain::{GeoPoint, Timestamp};
use homefront_store::Store;
use homefront_store::StoreError;
use homefront_store::availability::{DispatchQuery, DispatchableVolunteer, RosterVolunteer};
use homefront_store::catalogue::ServiceItem;
use homefront_store::offers::{NewOffer, Offer};
use homefront_store::orders::OrderRow;
use serde::Serialize;

use crate::AppState;

/// Why a dispatcher pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A volunteer's stored coordinates were out of range.
    #[error(transparent)]
    Index(#[from] homefront_dispatch::IndexError),
}

/// A unit's dispatch mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Batch when supply is tight, nearest-first otherwise.
    Auto,
    /// One offer at a time, best first.
    Sequential,
    /// The k best at once.
    Broadcast,
    /// Exact assignment of all waiting orders each pass.
    Batch,
    /// Coordinators choose.
    Manual,
}

impl Mode {
    /// Parses the stored text.
    pub fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "auto" => Mode::Auto,
            "sequential" => Mode::Sequential,
            "broadcast" => Mode::Broadcast,
            "batch" => Mode::Batch,
            "manual" => Mode::Manual,
            _ => return None,
        })
    }
}

/// The effective setting for an order's unit.
#[derive(Clone, Debug)]
pub struct Setting {
    /// The mode.
    pub mode: Mode,
    /// Offers at once in broadcast mode.
    pub broadcast_k: usize,
    /// Cost weights.
    pub weights: CostWeights,
    /// Minutes after a volunteer's offer of an order expired or was
    /// withdrawn before they may be offered that order again (see
    /// [`not_to_offer`]).
    pub reoffer_cooldown_minutes: i64,
}

impl Default for Setting {
    fn default() -> Self {
        Self {
            mode: Mode::Auto,
            broadcast_k: 5,
            weights: CostWeights::default(),
            reoffer_cooldown_minutes: homefront_store::dispatch::DEFAULT_REOFFER_COOLDOWN_MINUTES,
        }
    }
}

/// Candidates considered per order (the k of the k-nearest search): the
/// sequential and broadcast offers go to the cheapest of these by full
/// cost, the batch solver links each order to them.
pub const K: usize = 16;

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TickReport {
    /// Offers that expired.
    pub expired_orders: usize,
    /// Orders raised one or more levels.
    pub escalated: usize,
    /// Offers made.
    pub offers: usize,
    /// Orders given up because their window ended.
    pub unfulfilled: usize,
    /// Orders assigned to their best-ranked held accept (rank-aware broadcast).
    pub held_accepts_assigned: usize,
}

/// The effective setting for a division path.
///
/// # Errors
/// Database errors.
pub async fn setting_for(store: &Store, path: &OrgPath) -> Result<Setting, StoreError> {
    Ok(match store.dispatch_setting_for(&path.ids()).await? {
        None => Setting::default(),
        Some(s) => Setting {
            mode: Mode::parse(&s.mode).unwrap_or(Mode::Auto),
            broadcast_k: usize::try_from(s.broadcast_k).unwrap_or(5).max(1),
            weights: serde_json::from_str(&s.weights).unwrap_or_default(),
            reoffer_cooldown_minutes: s.reoffer_cooldown_minutes.max(0),
        },
    })
}

/// The volunteers the dispatcher must not offer an order to at `now`,
/// given the order's earlier offers `prior`: whoever holds an open offer of
/// it, declined it or accepted it (a decline is final for that order), and
/// whoever let an offer of it expire, or had one withdrawn, less than
/// `cooldown_minutes` ago (timed from the expiry, or from the withdrawal).
/// After the cooldown they are candidates again, so an order keeps being
/// dispatched until it is served or its window passes.
pub fn not_to_offer(prior: &[Offer], now: Timestamp, cooldown_minutes: i64) -> HashSet<i64> {
    let cooldown_ms = cooldown_minutes.max(0) * Timestamp::MINUTE_MS;
    prior
        .iter()
        .filter(|o| match o.state.as_str() {
            "expired" => o.expires_at + cooldown_ms > now.epoch_ms(),
            "withdrawn" => {
                o.responded_at.unwrap_or(o.expires_at).min(o.expires_at) + cooldown_ms
                    > now.epoch_ms()
            }
            // offered, declined, accepted (and anything unknown).
            _ => true,
        })
        .map(|o| o.volunteer_user_id)
        .collect()
}

fn qualification_bit(q: Qualification) -> u64 {
    let i = Qualification::ALL
        .iter()
        .position(|x| *x == q)
        .unwrap_or(63);
    1u64 << i
}

/// The item's requirements as domain value and bit mask.
fn requirements(item: &ServiceItem) -> (ItemRequirements, u64) {
    let quals: Vec<Qualification> = item
        .qualification_codes()
        .into_iter()
        .filter_map(|c| Qualification::parse(c).ok())
        .collect();
    let mask = quals.iter().fold(0, |m, q| m | qualification_bit(*q));
    (
        ItemRequirements {
            qualifications: quals.into_iter().collect(),
        },
        mask,
    )
}

/// The candidate pool for one order and the context to judge it.
pub struct Pool {
    index: VolunteerIndex,
    by_id: HashMap<i64, DispatchableVolunteer>,
}

/// Loads the volunteers who could serve `order` (active, available for
/// its window, on a team that serves the order's division by
/// [`team_serves`]: one whose division encloses it, or, once the order
/// escalated to the city or province queue, any team there), with loads
/// and recent hours, indexed for the k-nearest search. Each service
/// radius is widened by `radius_factor` per escalation level
/// ([`escalation::radius_multiplier`]; the `escalation_radius_factor`
/// setting).
///
/// # Errors
/// Database errors.
pub async fn pool_for(
    store: &Store,
    order: &OrderRow,
    now: Timestamp,
    radius_factor: f64,
) -> Result<Pool, DispatchError> {
    let order_path = OrgPath::from_stored(order.division_path.clone());
    let root = order_path.ids().first().map(|id| OrgPath::root(*id));
    let scopes: Vec<OrgPath> = root.into_iter().collect();
    let roster = store.dispatch_roster(Some(&scopes)).await?;
    let loads = PoolInputs {
        loads: store.active_loads().await?,
        // Open offers of other orders count toward the load cap.
        open_offers: store.open_offer_counts(now.epoch_ms(), order.id).await?,
        bookings: store.live_bookings().await?,
        minutes: store
            .recent_service_minutes(now.plus_days(-FAIRNESS_WINDOW_DAYS).epoch_ms())
            .await?,
    };
    pool_from(order, now, radius_factor, &roster, &loads)
}

/// What a pool takes beside the roster: live assignments, open offers,
/// live bookings and recent minutes per volunteer (one query each, for a
/// whole pass).
struct PoolInputs {
    loads: HashMap<i64, i64>,
    open_offers: HashMap<i64, i64>,
    bookings: HashMap<i64, Vec<homefront_store::bookings::LiveBooking>>,
    minutes: HashMap<i64, i64>,
}

/// The pool of `order` from its province's `roster`, in memory (see
/// [`pool_for`]).
fn pool_from(
    order: &OrderRow,
    now: Timestamp,
    radius_factor: f64,
    roster: &[RosterVolunteer],
    inputs: &PoolInputs,
) -> Result<Pool, DispatchError> {
    let radius = escalation::radius_multiplier(radius_factor, order.escalation_level);
    let order_path = OrgPath::from_stored(order.division_path.clone());
    let window = TimeWindow::new(Timestamp(order.window_start), Timestamp(order.window_end)).ok();
    // Volunteers whose live assignment overlaps this order are not offered
    // it (the check an accept runs again under its lock).
    let booking = homefront_store::bookings::order_booking(order);
    let mut by_id = HashMap::new();
    let mut entries = Vec::new();
    for r in roster {
        // Scope: a team serves its own division's subtree, widened once the
        // order escalates (the rule hand assignment and pairing use too).
        if !team_serves(
            &OrgPath::from_stored(r.team_path.clone()),
            &order_path,
            order.escalation_level,
        ) {
            continue;
        }
        if booking.is_some_and(|b| {
            inputs.bookings.get(&r.user_id).is_some_and(|held| {
                held.iter()
                    .any(|h| h.order_id != order.id && h.booking.clashes(&b))
            })
        }) {
            continue;
        }
        let Some(v) = r.dispatchable(now, window.as_ref()) else {
            continue;
        };
        entries.push(engine_volunteer(
            &v,
            radius,
            &inputs.loads,
            &inputs.open_offers,
            &inputs.minutes,
        ));
        by_id.insert(v.user_id, v);
    }
    let index = VolunteerIndex::new(entries)?;
    Ok(Pool { index, by_id })
}

/// `v` as the engine sees them: the service radius times `radius` (the
/// escalation multiplier), live assignments from `loads`, the cap less the
/// open offers of other orders in `open_offers`, and the minutes served in
/// the last [`FAIRNESS_WINDOW_DAYS`] from `minutes` (all by account id).
fn engine_volunteer(
    v: &DispatchableVolunteer,
    radius: f64,
    loads: &HashMap<i64, i64>,
    open_offers: &HashMap<i64, i64>,
    minutes: &HashMap<i64, i64>,
) -> Volunteer {
    Volunteer {
        id: v.user_id,
        location: v.location,
        service_radius_km: v.service_radius_km * radius,
        qualifications: v
            .qualifications
            .iter()
            .fold(0, |m, q| m | qualification_bit(*q)),
        current_load: u32::try_from(loads.get(&v.user_id).copied().unwrap_or(0))
            .unwrap_or(u32::MAX),
        max_load: spare_capacity(
            v.max_concurrent,
            open_offers.get(&v.user_id).copied().unwrap_or(0),
        ),
        recent_service_minutes: u32::try_from(minutes.get(&v.user_id).copied().unwrap_or(0).max(0))
            .unwrap_or(u32::MAX),
    }
}

/// A volunteer's cap as the engine sees it: `max_concurrent` less the open
/// offers they hold of other orders, so that live assignments plus open
/// offers never exceed it (the engine offers only while `current_load <
/// max_load`; the load cost term still counts live assignments only).
fn spare_capacity(max_concurrent: u32, open_offers: i64) -> u32 {
    max_concurrent.saturating_sub(u32::try_from(open_offers.max(0)).unwrap_or(u32::MAX))
}

/// What [`judge`] reads about an order's volunteers: the
/// candidates, loads, open offers, live bookings and recent hours.
struct PoolContext<'a> {
    order: &'a OrderRow,
    order_path: OrgPath,
    radius: f64,
    volunteers: Vec<DispatchableVolunteer>,
    loads: HashMap<i64, i64>,
    open_offers: HashMap<i64, i64>,
    booking: Option<homefront_domain::availability::Booking>,
    bookings: HashMap<i64, Vec<homefront_store::bookings::LiveBooking>>,
    minutes: HashMap<i64, i64>,
}

impl<'a> PoolContext<'a> {
    /// Every volunteer of the order's province, whatever their state and
    /// availability, judged as the dispatcher judges them.
    async fn load(
        store: &Store,
        order: &'a OrderRow,
        now: Timestamp,
        radius_factor: f64,
    ) -> Result<PoolContext<'a>, DispatchError> {
        let radius = escalation::radius_multiplier(radius_factor, order.escalation_level);
        let order_path = OrgPath::from_stored(order.division_path.clone());
        let root = order_path.ids().first().map(|id| OrgPath::root(*id));
        let scopes: Vec<OrgPath> = root.into_iter().collect();
        let window =
            TimeWindow::new(Timestamp(order.window_start), Timestamp(order.window_end)).ok();
        let query = DispatchQuery {
            scopes: Some(&scopes),
            now,
            window,
        };
        let volunteers = store.volunteers_judged_for_dispatch(&query).await?;
        Ok(PoolContext {
            order,
            order_path,
            radius,
            volunteers,
            loads: store.active_loads().await?,
            // Open offers of other orders count toward the load cap.
            open_offers: store.open_offer_counts(now.epoch_ms(), order.id).await?,
            booking: homefront_store::bookings::order_booking(order),
            bookings: store.live_bookings().await?,
            minutes: store
                .recent_service_minutes(now.plus_days(-FAIRNESS_WINDOW_DAYS).epoch_ms())
                .await?,
        })
    }

    /// Whether the volunteer's team serves the order's division
    /// ([`team_serves`], widened by escalation).
    fn serves(&self, v: &DispatchableVolunteer) -> bool {
        team_serves(
            &OrgPath::from_stored(v.team_path.clone()),
            &self.order_path,
            self.order.escalation_level,
        )
    }

    /// The volunteer's live assignment whose window overlaps this order's
    /// (they are not offered it: the check an accept runs again under its
    /// lock).
    fn clash(&self, v: &DispatchableVolunteer) -> Option<i64> {
        let b = self.booking?;
        self.bookings.get(&v.user_id).and_then(|held| {
            held.iter()
                .find(|h| h.order_id != self.order.id && h.booking.clashes(&b))
                .map(|h| h.order_id)
        })
    }

    /// The volunteer as the engine sees them (radius widened by
    /// escalation, cap less open offers of other orders).
    fn engine_volunteer(&self, v: &DispatchableVolunteer) -> Volunteer {
        engine_volunteer(
            v,
            self.radius,
            &self.loads,
            &self.open_offers,
            &self.minutes,
        )
    }
}

/// One reason the dispatcher does not offer an order to a volunteer whose
/// team serves it. [`judge`] lists every one that applies.
#[derive(Clone, Debug, PartialEq)]
pub enum Obstacle {
    /// Not vetted to `active`, or a base credential or a qualification the
    /// item needs is missing, expired or not yet valid at the window's
    /// start: [`is_eligible`]'s reasons, one per failed condition.
    Ineligible(homefront_domain::credentials::IneligibleReason),
    /// Not available for the order's window: off duty (or on leave) now,
    /// and no weekly window covers it
    /// ([`homefront_domain::availability::Availability::available_for_order`]).
    Unavailable,
    /// Holds a live assignment (this order id) whose window overlaps.
    Busy(i64),
    /// The order is further than their service radius (on-site items),
    /// widened by escalation: distance and radius in km.
    OutsideRadius {
        /// Great-circle km from the volunteer's location (haversine).
        distance_km: f64,
        /// Their radius times the escalation multiplier, km.
        radius_km: f64,
    },
    /// Live assignments plus open offers of other orders reach their cap.
    AtLoadCap {
        /// Live assignments plus open offers of other orders.
        held: i64,
        /// Their `max_concurrent`.
        cap: u32,
    },
    /// Declined this order: final for it.
    Declined,
    /// An offer of this order expired or was withdrawn; the dispatcher may
    /// offer it to them again from this instant (epoch ms), after the
    /// unit's re-offer cooldown ([`not_to_offer`]).
    CoolingDown(i64),
    /// Holds an open offer of this order: waiting for their answer.
    OfferOpen,
    /// Accepted this order before and it was taken from them.
    HadIt,
}

/// A volunteer whose team serves an order, as the dispatcher sees them.
#[derive(Clone, Debug)]
pub struct Judged {
    /// The volunteer's account.
    pub volunteer_id: i64,
    /// Great-circle km to the order (haversine); `None` for remote items
    /// or an order without a point.
    pub distance_km: Option<f64>,
    /// Minutes of service in the last [`FAIRNESS_WINDOW_DAYS`] (the
    /// fairness term's input).
    pub recent_service_minutes: i64,
    /// Live assignments now.
    pub load: i64,
    /// Their cap of concurrent assignments.
    pub cap: u32,
    /// Why they are not offered the order now; empty when they are a
    /// candidate (then [`rank`] places them).
    pub obstacles: Vec<Obstacle>,
}

/// Every volunteer whose team serves `order` (by [`team_serves`]), each
/// with every reason the dispatcher would not offer them the order at
/// `now`: the same checks as [`pool_for`], [`rank`] and [`not_to_offer`]
/// (vetting and credentials by [`is_eligible`] at the window's start,
/// availability for the window, overlapping assignments, the service
/// radius widened by escalation, the load cap counting open offers of
/// other orders, and this order's earlier offers with the unit's
/// cooldown). Ordered by account id.
///
/// # Errors
/// Database errors.
pub async fn judge(
    store: &Store,
    order: &OrderRow,
    item: &ServiceItem,
    now: Timestamp,
    radius_factor: f64,
    cooldown_minutes: i64,
) -> Result<Vec<Judged>, DispatchError> {
    let ctx = PoolContext::load(store, order, now, radius_factor).await?;
    let (reqs, mask) = requirements(item);
    let at = Timestamp(order.window_start);
    let point = match location(store, order).await? {
        OrderLocation::Onsite(p) => Some(p),
        OrderLocation::Remote => None,
    };
    let prior = store.offers_of_order(order.id).await?;
    let blocked = not_to_offer(&prior, now, cooldown_minutes);
    let cooldown_ms = cooldown_minutes.max(0) * Timestamp::MINUTE_MS;
    let mut out = Vec::new();
    for v in ctx.volunteers.iter().filter(|v| ctx.serves(v)) {
        let engine = ctx.engine_volunteer(v);
        let mut obstacles: Vec<Obstacle> = match is_eligible(&v.eligibility, &reqs, at) {
            Ok(()) => Vec::new(),
            Err(e) => e.reasons.into_iter().map(Obstacle::Ineligible).collect(),
        };
        // The engine's qualification mask agrees with is_eligible (both
        // read the credentials valid at the window's start).
        debug_assert!(
            !obstacles.is_empty() || engine.qualifications & mask == mask,
            "qualification mask and is_eligible disagree"
        );
        if !v.available {
            obstacles.push(Obstacle::Unavailable);
        }
        if let Some(other) = ctx.clash(v) {
            obstacles.push(Obstacle::Busy(other));
        }
        let distance_km = point.map(|p| v.location.haversine_km(&p));
        if let Some(d) = distance_km.filter(|d| *d > engine.service_radius_km) {
            obstacles.push(Obstacle::OutsideRadius {
                distance_km: d,
                radius_km: engine.service_radius_km,
            });
        }
        if !engine.has_capacity() {
            obstacles.push(Obstacle::AtLoadCap {
                held: i64::from(engine.current_load)
                    + ctx.open_offers.get(&v.user_id).copied().unwrap_or(0),
                cap: v.max_concurrent,
            });
        }
        if blocked.contains(&v.user_id) {
            // The latest offer of the order to them says why.
            if let Some(o) = prior
                .iter()
                .rev()
                .find(|o| o.volunteer_user_id == v.user_id)
            {
                obstacles.push(match o.state.as_str() {
                    "declined" => Obstacle::Declined,
                    "offered" => Obstacle::OfferOpen,
                    "accepted" => Obstacle::HadIt,
                    "withdrawn" => Obstacle::CoolingDown(
                        o.responded_at.unwrap_or(o.expires_at).min(o.expires_at) + cooldown_ms,
                    ),
                    _ => Obstacle::CoolingDown(o.expires_at + cooldown_ms),
                });
            }
        }
        out.push(Judged {
            volunteer_id: v.user_id,
            distance_km,
            recent_service_minutes: ctx.minutes.get(&v.user_id).copied().unwrap_or(0),
            load: ctx.loads.get(&v.user_id).copied().unwrap_or(0),
            cap: v.max_concurrent,
            obstacles,
        });
    }
    Ok(out)
}

/// Who could serve one catalogue item at a place now, for the order
/// wizard's honest list: see [`reach`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reach {
    /// Volunteers the dispatcher could offer it to at once (escalation
    /// level 0: a team whose division encloses the place, within their own
    /// radius).
    pub nearby: usize,
    /// Volunteers it could reach at some escalation level up to the
    /// province queue ([`escalation::TOP_LEVEL`]: any team of the province,
    /// radius widened by `escalation_radius_factor` per level).
    pub any_level: usize,
}

/// For each of `items` (by id), how many volunteers could serve it at a
/// place in division `division` (its stored path) at `point` (`None`: the
/// division has no point; only remote items can be judged then) at `now`:
/// available now (on duty and not on leave, or inside a weekly window),
/// eligible by [`is_eligible`] at `now`, below their load cap, on a team
/// that serves the place by [`team_serves`] and, for on-site items, within
/// their service radius. The same rules as [`pool_for`] and [`rank`],
/// without an order (so no overlap check and no earlier offers).
///
/// # Errors
/// Database errors.
pub async fn reach(
    store: &Store,
    division: &OrgPath,
    point: Option<GeoPoint>,
    items: &[ServiceItem],
    now: Timestamp,
    radius_factor: f64,
) -> Result<HashMap<i64, Reach>, DispatchError> {
    let root = division.ids().first().map(|id| OrgPath::root(*id));
    let scopes: Vec<OrgPath> = root.into_iter().collect();
    let volunteers = store
        .dispatchable_volunteers(&DispatchQuery {
            scopes: Some(&scopes),
            now,
            window: None,
        })
        .await?;
    let loads = store.active_loads().await?;
    let open_offers = store.open_offer_counts(now.epoch_ms(), 0).await?;
    let mut out = HashMap::new();
    for item in items {
        let (reqs, _) = requirements(item);
        let remote = item.mode == homefront_domain::catalogue::ServiceMode::Remote;
        let mut r = Reach::default();
        for v in &volunteers {
            let load = loads.get(&v.user_id).copied().unwrap_or(0)
                + open_offers.get(&v.user_id).copied().unwrap_or(0);
            if load >= i64::from(v.max_concurrent)
                || is_eligible(&v.eligibility, &reqs, now).is_err()
            {
                continue;
            }
            let team = OrgPath::from_stored(v.team_path.clone());
            let distance = point.map(|p| v.location.haversine_km(&p));
            let within = |level: i64| {
                team_serves(&team, division, level)
                    && (remote
                        || distance.is_some_and(|d| {
                            d <= v.service_radius_km
                                * escalation::radius_multiplier(radius_factor, level)
                        }))
            };
            if within(0) {
                r.nearby += 1;
            }
            if (0..=escalation::TOP_LEVEL).any(within) {
                r.any_level += 1;
            }
        }
        out.insert(item.id, r);
    }
    Ok(out)
}

/// The order's location for the engine: on-site at its coordinates (or its
/// division's point), or remote.
async fn location(store: &Store, order: &OrderRow) -> Result<OrderLocation, StoreError> {
    if order.item_mode == homefront_domain::catalogue::ServiceMode::Remote {
        return Ok(OrderLocation::Remote);
    }
    let point = match order.longitude.zip(order.latitude) {
        Some((lon, lat)) => GeoPoint::new(lon, lat).ok(),
        None => None,
    };
    let point = match point {
        Some(p) => Some(p),
        None => store
            .org_unit(order.division_id)
            .await?
            .and_then(|d| d.longitude.zip(d.latitude))
            .and_then(|(lon, lat)| GeoPoint::new(lon, lat).ok()),
    };
    // Without any point the order is served like a remote one (rank by load).
    Ok(point.map_or(OrderLocation::Remote, OrderLocation::Onsite))
}

/// What to rank: an order, its item, the pool, the unit's weights, the
/// household's paired volunteers, volunteers not to propose (already
/// offered), and how many to return.
pub struct RankInput<'a> {
    /// The order.
    pub order: &'a OrderRow,
    /// Its catalogue item.
    pub item: &'a ServiceItem,
    /// Volunteers who could serve it.
    pub pool: &'a Pool,
    /// The unit's cost weights.
    pub weights: &'a CostWeights,
    /// Paired volunteers (get the pairing bonus).
    pub paired: &'a [i64],
    /// Volunteers not to propose.
    pub exclude: &'a HashSet<i64>,
    /// At most this many.
    pub k: usize,
}

/// Ranked candidates for an order with their explanations (the manual
/// dispatch list and the automatic modes share it).
///
/// # Errors
/// Database errors.
pub async fn rank(store: &Store, input: &RankInput<'_>) -> Result<Vec<Candidate>, StoreError> {
    let loc = location(store, input.order).await?;
    Ok(rank_at(loc, input))
}

/// [`rank`] with the order's location already known.
fn rank_at(loc: OrderLocation, input: &RankInput<'_>) -> Vec<Candidate> {
    let (reqs, mask) = requirements(input.item);
    let at = Timestamp(input.order.window_start);
    let query = CandidateQuery {
        location: loc,
        required_qualifications: mask,
        k: input.k,
        paired_volunteers: input.paired,
    };
    let pool = input.pool;
    pool.index.candidates(&query, input.weights, |v| {
        input.exclude.contains(&v.id)
            || pool
                .by_id
                .get(&v.id)
                .is_none_or(|d| is_eligible(&d.eligibility, &reqs, at).is_err())
    })
}

/// The `n` cheapest of `ranked` (candidates of one order, already sorted by
/// full cost): the sequential and broadcast modes draw their candidates
/// from the [`K`] nearest eligible volunteers and offer to the best by
/// distance + load + fairness − pairing bonus, so the load and fairness
/// terms can choose among more people than are offered the order.
fn best_by_cost(mut ranked: Vec<Candidate>, n: usize) -> Vec<Candidate> {
    // `rank` returns them cheapest first (ranks 1, 2, ...).
    debug_assert!(
        ranked
            .windows(2)
            .all(|p| p[0].explanation.cost.total <= p[1].explanation.cost.total)
    );
    ranked.truncate(n);
    ranked
}

fn explanation_json(c: &Candidate, via: &str) -> String {
    serde_json::json!({
        "via": via,
        "rank": c.explanation.rank,
        "distance_km": c.explanation.distance_km,
        "cost": c.explanation.cost,
    })
    .to_string()
}

/// An offer of `order` to candidate `c`, expiring after the item's offer timeout.
pub fn new_offer(
    order: &OrderRow,
    item: &ServiceItem,
    c: &Candidate,
    via: &'static str,
    round: i64,
    now: Timestamp,
    by: Option<i64>,
) -> NewOffer {
    NewOffer {
        order_id: order.id,
        volunteer_user_id: c.volunteer_id,
        via,
        round,
        candidate_rank: i64::try_from(c.explanation.rank).unwrap_or(i64::MAX),
        distance_km: c.explanation.distance_km,
        cost: c.explanation.cost.total,
        explanation: explanation_json(c, via),
        expires_at: now.epoch_ms() + item.offer_timeout_seconds * 1000,
        offered_by: by,
    }
}

/// Writes a round's offers (see [`Store::write_round`]) and announces it.
///
/// # Errors
/// Database errors.
pub async fn make_offers(
    state: &AppState,
    order: &OrderRow,
    offers: &[NewOffer],
) -> Result<usize, DispatchError> {
    let now = state.clock.now().epoch_ms();
    if !state.store.write_round(order.id, offers, now).await? {
        return Ok(0);
    }
    crate::live::publish(state, order.id);
    Ok(offers.len())
}

/// Writes a coordinator's offers beside any still open (see
/// [`Store::add_manual_offers`]) and announces them.
///
/// # Errors
/// Database errors.
pub async fn make_manual_offers(
    state: &AppState,
    order: &OrderRow,
    offers: &[NewOffer],
) -> Result<usize, DispatchError> {
    let now = state.clock.now().epoch_ms();
    if !state.store.add_manual_offers(order.id, offers, now).await? {
        return Ok(0);
    }
    crate::live::publish(state, order.id);
    Ok(offers.len())
}

/// What one pass reads, by sets: the catalogue, every unit's setting, the
/// offer history and live pairings of the whole backlog, the loads, open
/// offers, bookings and recent minutes of every volunteer, and (once per
/// province, on first need) the province's roster. Pools are built in
/// memory from these, one per distinct (province, window, item mode,
/// division, escalation level), and shared by the orders that have the
/// same; an offer made in the pass lowers the volunteer's spare capacity in
/// every pool at once.
struct PassData {
    now: Timestamp,
    radius_factor: f64,
    items: HashMap<i64, ServiceItem>,
    settings: HashMap<i64, homefront_store::dispatch::DispatchSetting>,
    offers: HashMap<i64, Vec<Offer>>,
    pairings: HashMap<i64, Vec<i64>>,
    inputs: PoolInputs,
    rosters: HashMap<i64, Vec<RosterVolunteer>>,
    pools: HashMap<PoolKey, Pool>,
    points: HashMap<i64, Option<GeoPoint>>,
}

/// What an order's pool depends on beside the pass's data.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct PoolKey {
    window: (i64, i64),
    remote: bool,
    runs_alongside: bool,
    division_path: String,
    escalation_level: i64,
}

impl PoolKey {
    fn of(order: &OrderRow) -> Self {
        PoolKey {
            window: (order.window_start, order.window_end),
            remote: order.item_mode == homefront_domain::catalogue::ServiceMode::Remote,
            runs_alongside: order.item_runs_alongside,
            division_path: order.division_path.clone(),
            escalation_level: order.escalation_level,
        }
    }
}

impl PassData {
    async fn load(
        store: &Store,
        now: Timestamp,
        radius_factor: f64,
    ) -> Result<Self, DispatchError> {
        let items = store
            .service_items(true)
            .await?
            .into_iter()
            .map(|i| (i.id, i))
            .collect();
        let mut offers: HashMap<i64, Vec<Offer>> = HashMap::new();
        for o in store.offers_of_backlog().await? {
            offers.entry(o.order_id).or_default().push(o);
        }
        let mut pairings: HashMap<i64, Vec<i64>> = HashMap::new();
        for p in store.live_pairings_of_backlog().await? {
            pairings
                .entry(p.household_id)
                .or_default()
                .push(p.volunteer_user_id);
        }
        Ok(PassData {
            now,
            radius_factor,
            items,
            settings: store.dispatch_settings().await?,
            offers,
            pairings,
            inputs: PoolInputs {
                loads: store.active_loads().await?,
                // Waiting orders hold no open offer: every open offer is
                // of another order (0 is no order's id).
                open_offers: store.open_offer_counts(now.epoch_ms(), 0).await?,
                bookings: store.live_bookings().await?,
                minutes: store
                    .recent_service_minutes(now.plus_days(-FAIRNESS_WINDOW_DAYS).epoch_ms())
                    .await?,
            },
            rosters: HashMap::new(),
            pools: HashMap::new(),
            points: HashMap::new(),
        })
    }

    /// The effective setting for a division path (the deepest unit on it
    /// with one), as [`setting_for`] reads it.
    fn setting_for(&self, path: &OrgPath) -> Setting {
        match path.ids().iter().rev().find_map(|id| self.settings.get(id)) {
            None => Setting::default(),
            Some(s) => Setting {
                mode: Mode::parse(&s.mode).unwrap_or(Mode::Auto),
                broadcast_k: usize::try_from(s.broadcast_k).unwrap_or(5).max(1),
                weights: serde_json::from_str(&s.weights).unwrap_or_default(),
                reoffer_cooldown_minutes: s.reoffer_cooldown_minutes.max(0),
            },
        }
    }

    fn prior(&self, order_id: i64) -> &[Offer] {
        self.offers.get(&order_id).map_or(&[], Vec::as_slice)
    }

    /// The order's pool (built on first need, from the province's roster).
    async fn pool(&mut self, store: &Store, order: &OrderRow) -> Result<PoolKey, DispatchError> {
        let key = PoolKey::of(order);
        if self.pools.contains_key(&key) {
            return Ok(key);
        }
        let root = OrgPath::from_stored(order.division_path.clone())
            .ids()
            .first()
            .copied()
            .unwrap_or(0);
        if let std::collections::hash_map::Entry::Vacant(e) = self.rosters.entry(root) {
            let scopes = [OrgPath::root(root)];
            e.insert(store.dispatch_roster(Some(&scopes)).await?);
        }
        let roster = self.rosters.get(&root).map_or(&[][..], Vec::as_slice);
        let pool = pool_from(order, self.now, self.radius_factor, roster, &self.inputs)?;
        self.pools.insert(key.clone(), pool);
        Ok(key)
    }

    /// The order's location (its division's point read once per pass).
    async fn location(
        &mut self,
        store: &Store,
        order: &OrderRow,
    ) -> Result<OrderLocation, StoreError> {
        if order.item_mode == homefront_domain::catalogue::ServiceMode::Remote {
            return Ok(OrderLocation::Remote);
        }
        if let Some(p) = order
            .longitude
            .zip(order.latitude)
            .and_then(|(lon, lat)| GeoPoint::new(lon, lat).ok())
        {
            return Ok(OrderLocation::Onsite(p));
        }
        let point = match self.points.get(&order.division_id) {
            Some(p) => *p,
            None => {
                let p = store
                    .org_unit(order.division_id)
                    .await?
                    .and_then(|d| d.longitude.zip(d.latitude))
                    .and_then(|(lon, lat)| GeoPoint::new(lon, lat).ok());
                self.points.insert(order.division_id, p);
                p
            }
        };
        Ok(point.map_or(OrderLocation::Remote, OrderLocation::Onsite))
    }

    /// An offer to `volunteer` was planned: it holds one more place of
    /// their cap in every pool, and in pools built later.
    fn took(&mut self, volunteer: i64) {
        *self.inputs.open_offers.entry(volunteer).or_default() += 1;
        for pool in self.pools.values_mut() {
            if let Some(v) = pool.index.get(volunteer) {
                let spare = v.max_load.saturating_sub(1);
                // The id is in the index: this cannot fail.
                let _ = pool.index.set_max_load(volunteer, spare);
            }
        }
    }
}

/// A planned round: the order and its offers (none: it just moves to
/// `dispatching`).
type PlannedRound = (OrderRow, Vec<NewOffer>);

/// Chunks of rounds written at once: enough to keep PostgreSQL's pool and
/// SQLite's group commit busy, well under the pool's 32 connections so
/// requests keep theirs.
const WRITERS: usize = 4;

/// One dispatcher pass at the clock's now.
///
/// The backlog is read by sets (see [`PassData`]): a pass costs a fixed
/// number of queries, plus one per province for its roster and per
/// division without a point of an order without coordinates, plus the
/// writes of each round, whatever the number of waiting orders.
///
/// # Errors
/// Database errors (the pass stops; the next one retries).
pub async fn tick(state: &AppState) -> Result<TickReport, DispatchError> {
    let now = state.clock.now();
    let store = &state.store;
    let mut report = TickReport::default();

    for order_id in store.expire_offers(now.epoch_ms()).await? {
        report.expired_orders += 1;
        crate::live::publish(state, order_id);
    }
    // Rank-aware broadcast: held accepts win once no better-ranked
    // candidate is still deciding, or their hold ended.
    for order_id in store.resolve_holds(now.epoch_ms()).await? {
        report.held_accepts_assigned += 1;
        crate::live::publish(state, order_id);
    }

    // Give up on orders whose window ended without a volunteer; escalate
    // the others that waited past their lane's deadline or are close to
    // their window (homefront_domain::escalation).
    let mut backlog = store.unassigned_order_rows().await?;
    let mut changed = false;
    for order in &backlog {
        if order.window_end <= now.epoch_ms() {
            if give_up(state, order).await? {
                report.unfulfilled += 1;
            }
            changed = true;
            continue;
        }
        let lane: Lane = order.lane;
        let (due, cause) = escalation::level_due(
            lane,
            &state.config.escalation_leads(),
            order.created_at,
            order.window_start,
            now.epoch_ms(),
        );
        if due > order.escalation_level {
            let reason = escalation_reason(due, cause);
            if store
                .escalate_order(
                    order.id,
                    order.escalation_level,
                    due,
                    &reason,
                    now.epoch_ms(),
                )
                .await?
            {
                report.escalated += 1;
                crate::live::publish(state, order.id);
            }
            changed = true;
        }
    }
    if changed {
        backlog = store.unassigned_order_rows().await?;
    }

    // Offer rounds, for the orders without an open offer: priority lane
    // first, then by age.
    let mut pass = PassData::load(store, now, state.config.escalation_radius_factor).await?;
    let lane_rank = |lane: &Lane| match lane {
        Lane::Priority => 0,
        Lane::Urgent => 1,
        _ => 2,
    };
    let mut waiting: Vec<OrderRow> = backlog
        .into_iter()
        .filter(|o| !pass.prior(o.id).iter().any(|f| f.state == "offered"))
        .filter(|o| o.window_end > now.epoch_ms())
        .collect();
    waiting.sort_by(|a, b| {
        (lane_rank(&a.lane), a.created_at, a.id).cmp(&(lane_rank(&b.lane), b.created_at, b.id))
    });
    let mut planned: Vec<PlannedRound> = Vec::new();
    // Sorted by key so that rounds run in the same order every time.
    let mut batches: BTreeMap<String, (Setting, Vec<OrderRow>)> = BTreeMap::new();
    for order in waiting {
        let Some(item) = pass.items.get(&order.item_id).cloned() else {
            continue;
        };
        let setting = pass.setting_for(&OrgPath::from_stored(order.division_path.clone()));
        let prior = pass.prior(order.id);
        let offered = not_to_offer(prior, now, setting.reoffer_cooldown_minutes);
        let round = prior.iter().map(|o| o.round).max().unwrap_or(0) + 1;
        let key = pass.pool(store, &order).await?;
        let loc = pass.location(store, &order).await?;

        // Paired volunteers (and a follow-up's preferred volunteer) first.
        let mut preferred: Vec<i64> = order.preferred_volunteer_user_id.into_iter().collect();
        preferred.extend(
            pass.pairings
                .get(&order.household_id)
                .into_iter()
                .flatten()
                .copied(),
        );
        let mut first = None;
        if let Some(pool) = pass.pools.get(&key) {
            for v in preferred.iter().filter(|v| !offered.contains(v)) {
                let only: HashSet<i64> = pool
                    .by_id
                    .keys()
                    .copied()
                    .filter(|id| id != v)
                    .chain(offered.iter().copied())
                    .collect();
                let ranked = rank_at(
                    loc,
                    &RankInput {
                        order: &order,
                        item: &item,
                        pool,
                        weights: &setting.weights,
                        paired: &preferred,
                        exclude: &only,
                        k: 1,
                    },
                );
                if let Some(c) = ranked.first() {
                    first = Some(*c);
                    break;
                }
            }
        }
        if let Some(c) = first {
            let offer = new_offer(&order, &item, &c, "pairing", round, now, None);
            pass.took(c.volunteer_id);
            planned.push((order, vec![offer]));
            continue;
        }

        match setting.mode {
            Mode::Manual => {
                // Coordinators choose; the order is visibly in dispatch.
                planned.push((order, Vec::new()));
            }
            Mode::Sequential | Mode::Broadcast => {
                let offers_at_once = if setting.mode == Mode::Broadcast {
                    setting.broadcast_k
                } else {
                    1
                };
                let mut order = order;
                let mut key = key;
                let mut ranked = Vec::new();
                while let Some(pool) = pass.pools.get(&key) {
                    ranked = best_by_cost(
                        rank_at(
                            loc,
                            &RankInput {
                                order: &order,
                                item: &item,
                                pool,
                                weights: &setting.weights,
                                paired: &preferred,
                                exclude: &offered,
                                k: K.max(offers_at_once),
                            },
                        ),
                        offers_at_once,
                    );
                    if !ranked.is_empty() || order.escalation_level >= escalation::TOP_LEVEL {
                        break;
                    }
                    // Nobody left to offer it to at this level: waiting
                    // out the lane's deadline would only lose time, so it
                    // climbs one level at once and the pool widens.
                    let to = order.escalation_level + 1;
                    if !store
                        .escalate_order(
                            order.id,
                            order.escalation_level,
                            to,
                            &escalation_reason(to, Some(escalation::Cause::NoCandidate)),
                            now.epoch_ms(),
                        )
                        .await?
                    {
                        break;
                    }
                    report.escalated += 1;
                    crate::live::publish(state, order.id);
                    order.escalation_level = to;
                    key = pass.pool(store, &order).await?;
                }
                if !pass.pools.contains_key(&key) {
                    continue;
                }
                let via = if setting.mode == Mode::Broadcast {
                    "broadcast"
                } else {
                    "sequential"
                };
                let offers: Vec<NewOffer> = ranked
                    .iter()
                    .map(|c| new_offer(&order, &item, c, via, round, now, None))
                    .collect();
                for c in &ranked {
                    pass.took(c.volunteer_id);
                }
                planned.push((order, offers));
            }
            Mode::Batch | Mode::Auto => {
                let key = format!(
                    "{:?}:{}",
                    setting.mode,
                    serde_json::to_string(&setting.weights).unwrap_or_default()
                );
                batches
                    .entry(key)
                    .or_insert_with(|| (setting.clone(), Vec::new()))
                    .1
                    .push(order);
            }
        }
    }
    for (_, (setting, group)) in batches {
        planned.extend(batch_round(store, &mut pass, &setting, group, now).await?);
    }
    report.offers += write_rounds(state, planned).await?;
    crate::metrics::dispatch_tick(report.offers, report.escalated, report.unfulfilled);
    crate::metrics::offer_outcome("expired", report.expired_orders as u64);
    Ok(report)
}

/// Writes the planned rounds by sets ([`Store::write_rounds`]: a few
/// multi-row statements per chunk of orders), [`WRITERS`] chunks at a time
/// so PostgreSQL's pool and SQLite's group commit stay busy; returns the
/// offers written.
async fn write_rounds(
    state: &AppState,
    planned: Vec<PlannedRound>,
) -> Result<usize, DispatchError> {
    use futures::StreamExt;
    let now = state.clock.now().epoch_ms();
    let mut chunks: Vec<Vec<PlannedRound>> = Vec::new();
    let mut rounds = planned.into_iter().peekable();
    while rounds.peek().is_some() {
        chunks.push(
            rounds
                .by_ref()
                .take(homefront_store::offers::ROUNDS_PER_CHUNK)
                .collect(),
        );
    }
    let mut made = 0;
    let mut writes = futures::stream::iter(
        chunks
            .into_iter()
            .map(|rounds| write_chunk(state, rounds, now)),
    )
    .buffer_unordered(WRITERS);
    while let Some(n) = writes.next().await {
        made += n?;
    }
    Ok(made)
}

/// One chunk of [`write_rounds`]: one [`Store::write_rounds`] call, then
/// the live notice of each order that got its round.
async fn write_chunk(
    state: &AppState,
    rounds: Vec<PlannedRound>,
    now: i64,
) -> Result<usize, DispatchError> {
    let list: Vec<(i64, &[NewOffer])> = rounds
        .iter()
        .map(|(order, offers)| (order.id, offers.as_slice()))
        .collect();
    let written = state.store.write_rounds(&list, now).await?;
    let mut made = 0;
    for ((order, offers), done) in rounds.iter().zip(written) {
        if done {
            crate::live::publish(state, order.id);
            made += offers.len();
        }
    }
    Ok(made)
}

/// The event's reason for raising an order to level `due`.
fn escalation_reason(due: i64, cause: Option<escalation::Cause>) -> String {
    let queue = match due {
        1 => "county",
        2 => "city",
        _ => "province",
    };
    match cause {
        Some(escalation::Cause::WindowLead(lead)) => format!(
            "not accepted {lead} min before its window: moved to the {queue} coordinators' queue"
        ),
        Some(escalation::Cause::Deadline(minutes)) => {
            format!("not accepted within {minutes} min: moved to the {queue} coordinators' queue")
        }
        Some(escalation::Cause::NoCandidate) => format!(
            "no volunteer left to offer it to at the level below: moved to the {queue} coordinators' queue"
        ),
        None => format!("moved to the {queue} coordinators' queue"),
    }
}

/// Marks an unassigned order whose window ended as unfulfilled.
async fn give_up(state: &AppState, order: &OrderRow) -> Result<bool, DispatchError> {
    let Ok(reason) = Reason::parse(homefront_store::orders::WINDOW_ENDED) else {
        return Ok(false);
    };
    let done = state
        .store
        .mark_unfulfilled(order.id, &reason, state.clock.now().epoch_ms())
        .await?;
    if done {
        crate::live::publish(state, order.id);
    }
    Ok(done)
}

/// A batch or auto round over `group`: one shared pool (the union of the
/// orders' pools), the exact solver (or nearest-first when supply is
/// ample, in auto mode). Returns the planned rounds.
async fn batch_round(
    store: &Store,
    pass: &mut PassData,
    setting: &Setting,
    group: Vec<OrderRow>,
    now: Timestamp,
) -> Result<Vec<PlannedRound>, DispatchError> {
    struct PerOrder {
        item: ServiceItem,
        reqs: ItemRequirements,
        key: PoolKey,
        offered: HashSet<i64>,
        round: i64,
        window_start: i64,
    }
    let mut per_order: HashMap<i64, PerOrder> = HashMap::new();
    let mut pending = Vec::new();
    // Pools in the order each was last used: the union takes a volunteer
    // from the last order's pool that has them.
    let mut last_use: Vec<PoolKey> = Vec::new();
    for order in &group {
        let Some(item) = pass.items.get(&order.item_id).cloned() else {
            continue;
        };
        let key = pass.pool(store, order).await?;
        let prior = pass.prior(order.id);
        let offered = not_to_offer(prior, now, setting.reoffer_cooldown_minutes);
        let round = prior.iter().map(|o| o.round).max().unwrap_or(0) + 1;
        let (reqs, mask) = requirements(&item);
        pending.push(PendingOrder {
            id: order.id,
            location: pass.location(store, order).await?,
            required_qualifications: mask,
            paired_volunteers: pass
                .pairings
                .get(&order.household_id)
                .cloned()
                .unwrap_or_default(),
        });
        last_use.retain(|k| *k != key);
        last_use.push(key.clone());
        per_order.insert(
            order.id,
            PerOrder {
                item,
                reqs,
                key,
                offered,
                round,
                window_start: order.window_start,
            },
        );
    }
    let mut volunteers: HashMap<i64, Volunteer> = HashMap::new();
    let mut by_id: HashMap<i64, &DispatchableVolunteer> = HashMap::new();
    for key in &last_use {
        let Some(pool) = pass.pools.get(key) else {
            continue;
        };
        for (id, d) in &pool.by_id {
            if let Some(v) = pool.index.get(*id) {
                volunteers.insert(*id, v.clone());
            }
            by_id.insert(*id, d);
        }
    }
    // By id: the index and the solver see volunteers in the same order
    // every run (a HashMap's order would leak into tie-breaking).
    let mut volunteers: Vec<Volunteer> = volunteers.into_values().collect();
    volunteers.sort_by_key(|v| v.id);
    let index = VolunteerIndex::new(volunteers)?;
    let pools = &pass.pools;
    let exclude = |o: &PendingOrder, v: &Volunteer| {
        let Some(p) = per_order.get(&o.id) else {
            return true;
        };
        pools
            .get(&p.key)
            .is_none_or(|pool| !pool.by_id.contains_key(&v.id))
            || p.offered.contains(&v.id)
            || by_id.get(&v.id).is_none_or(|d| {
                is_eligible(&d.eligibility, &p.reqs, Timestamp(p.window_start)).is_err()
            })
    };
    let policy = AutoPolicy {
        k: K,
        ..AutoPolicy::default()
    };
    let plan = if setting.mode == Mode::Batch {
        homefront_dispatch::Plan {
            mode: DispatchMode::Batch,
            supply_ratio: 0.0,
            assignments: homefront_dispatch::batch(&pending, &index, &setting.weights, K, exclude),
        }
    } else {
        homefront_dispatch::auto_assign(&pending, &index, &setting.weights, &policy, exclude)
    };
    let via = match plan.mode {
        DispatchMode::Batch => "batch",
        DispatchMode::NearestFirst => "sequential",
    };
    let mut rounds: HashMap<i64, Vec<NewOffer>> = HashMap::new();
    let mut took = Vec::new();
    let by_order: HashMap<i64, &OrderRow> = group.iter().map(|o| (o.id, o)).collect();
    for a in &plan.assignments {
        let Some(order) = by_order.get(&a.order_id) else {
            continue;
        };
        let Some(p) = per_order.get(&a.order_id) else {
            continue;
        };
        let c = Candidate {
            volunteer_id: a.volunteer_id,
            explanation: a.explanation,
        };
        rounds
            .entry(order.id)
            .or_default()
            .push(new_offer(order, &p.item, &c, via, p.round, now, None));
        took.push(a.volunteer_id);
    }
    for v in took {
        pass.took(v);
    }
    // Orders without a match still move to dispatching (visible as waiting).
    Ok(group
        .into_iter()
        .filter_map(|o| match rounds.remove(&o.id) {
            Some(offers) => Some((o, offers)),
            None => (o.state == homefront_domain::order_state::OrderState::Submitted)
                .then(|| (o, Vec::new())),
        })
        .collect())
}

/// Runs [`tick`] every `period`, and at once when woken (a new order, a
/// declined offer).
pub fn spawn(state: AppState, period: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = tick(&state).await {
                tracing::warn!(error = %e, "dispatch pass failed; retrying");
            }
            tokio::select! {
                () = tokio::time::sleep(period) => {}
                () = state.dispatch_wake.notified() => {}
            }
        }
    })
}
