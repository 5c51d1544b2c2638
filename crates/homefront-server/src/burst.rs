//! The dispatcher under a burst (`homefront bench burst`): a fresh
//! scenario of M on-duty volunteers in one province (玄武区, Nanjing,
//! Jiangsu), N orders submitted as fast as the store takes them, then the
//! real dispatcher's passes ([`dispatcher::tick`]) until every order has
//! a first offer.
//!
//! Figures: each order's time from its submission to its first offer
//! (p50, p99), the time from the first submission until the last order
//! got its first offer, and the SQL statements the dispatcher's passes ran
//! per order ([`Store::statements`]: each read and each statement of a
//! write transaction; `BEGIN`/`COMMIT` not counted).

use std::sync::Arc;
use std::time::Instant;

use homefront_domain::catalogue::{Lane, Relation, Urgency};
use homefront_domain::org::OrgKind;
use homefront_domain::{Clock, PhoneNumber, Role, SystemClock};
use homefront_store::Store;
use homefront_store::burst::{BulkTeam, BulkVolunteer};
use homefront_store::households::MemberFields;
use homefront_store::orders::NewOrder;
use homefront_store::org_units::NewOrgUnit;
use serde::Serialize;

use crate::{AppState, Config, dispatcher};

/// The county the scenario happens in (玄武区, Nanjing).
pub const COUNTY_ADCODE: &str = "320102000000";

/// Volunteers and orders are spread uniformly over a square of this half
/// side around the county's point, km.
pub const SPREAD_KM: f64 = 5.0;

/// Orders in flight while submitting (the HTTP server's connection pool
/// would allow as many).
const SUBMITTERS: usize = 64;

/// The benchmark's result, printed as one JSON line.
#[derive(Clone, Debug, Serialize)]
pub struct BurstReport {
    /// Orders submitted.
    pub orders: usize,
    /// Median time from an order's submission to its first offer, s.
    pub first_offer_p50_s: f64,
    /// 99th percentile of that time, s.
    pub first_offer_p99_s: f64,
    /// From the first submission until the end of the dispatcher pass after
    /// which every order had an offer, s (submission included: every order
    /// is stored before the first pass, the worst case for a burst).
    pub all_offered_s: f64,
    /// Statements of the dispatcher's passes divided by `orders`.
    pub statements_per_order: f64,
}

/// Where the benchmark is.
#[derive(Clone, Copy, Debug)]
pub enum Stage {
    /// Volunteers written so far.
    Volunteers(usize),
    /// Orders submitted so far.
    Orders(usize),
    /// Orders with an offer so far.
    Offered(usize),
}

/// Why the benchmark stopped.
#[derive(Debug, thiserror::Error)]
pub enum BurstError {
    /// The database is not empty.
    #[error(
        "the database already holds organisations or accounts; bench burst builds its scenario \
         into an empty database (omit --database-url for a temporary SQLite file)"
    )]
    NotEmpty,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] homefront_store::StoreError),
    /// A dispatcher pass failed.
    #[error(transparent)]
    Dispatch(#[from] dispatcher::DispatchError),
    /// The scenario could not be built.
    #[error("scenario: {0}")]
    Scenario(String),
    /// Passes stopped making offers with orders still waiting.
    #[error("{0} orders found no volunteer; the scenario is too small for them")]
    Stranded(i64),
}

/// A deterministic point generator (SplitMix64), so that every run places
/// the same people at the same points.
struct Points(u64);

impl Points {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Within [`SPREAD_KM`] of (lon, lat): 1 km is about 0.009° of
    /// latitude and 0.0106° of longitude at 32° N.
    fn near(&mut self, lon: f64, lat: f64) -> (f64, f64) {
        let dx = (self.unit() * 2.0 - 1.0) * SPREAD_KM * 0.0106;
        let dy = (self.unit() * 2.0 - 1.0) * SPREAD_KM * 0.009;
        (lon + dx, lat + dy)
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The scenario: one team of on-duty volunteers around 玄武区's point and
/// one requester whose orders are spread over the same square.
pub struct Scenario {
    /// The requester's account.
    pub requester_id: i64,
    /// Their household.
    pub household_id: i64,
    /// The member served.
    pub member_id: i64,
    /// The county (division of every order).
    pub county_id: i64,
    /// The catalogue item ordered (`groceries`).
    pub item_id: i64,
    /// The volunteers' team.
    pub team_id: i64,
    centre: (f64, f64),
    points: Points,
}

impl Scenario {
    /// Builds it into `store` (empty, migrated) with `volunteers` on-duty
    /// volunteers as of `now`; `progress` hears how many are written.
    ///
    /// # Errors
    /// [`BurstError`].
    pub async fn build(
        store: &Store,
        volunteers: usize,
        now: homefront_domain::Timestamp,
        progress: impl Fn(Stage),
    ) -> Result<Scenario, BurstError> {
        if store.count_users().await? > 0 || store.count_org_units().await? > 0 {
            return Err(BurstError::NotEmpty);
        }
        store
            .import_divisions(32, now.epoch_ms(), |_, _| {})
            .await?;
        let county = store
            .org_unit_by_adcode(COUNTY_ADCODE)
            .await?
            .ok_or_else(|| BurstError::Scenario(format!("division {COUNTY_ADCODE} missing")))?;
        let (lon, lat) = county
            .longitude
            .zip(county.latitude)
            .ok_or_else(|| BurstError::Scenario("the county has no point".into()))?;
        let team = store
            .create_org_unit(
                NewOrgUnit {
                    kind: OrgKind::Team,
                    name: "压测志愿队",
                    parent: &county,
                    location: Some((lon, lat)),
                },
                now.epoch_ms(),
            )
            .await?;
        let mut points = Points(16);
        let people: Vec<BulkVolunteer> = (0..volunteers)
            .map(|_| {
                let (longitude, latitude) = points.near(lon, lat);
                BulkVolunteer {
                    longitude,
                    latitude,
                }
            })
            .collect();
        let bulk = BulkTeam {
            team_id: team.id,
            home_division_id: county.id,
            // Anyone can reach any point of the square.
            service_radius_km: 2.0 * SPREAD_KM * std::f64::consts::SQRT_2,
            max_concurrent: 1,
            since_ms: now.plus_days(-1).epoch_ms(),
        };
        for (i, chunk) in people.chunks(10_000).enumerate() {
            store
                .bulk_on_duty_volunteers(&bulk, chunk, (i * 10_000) as u64)
                .await?;
            progress(Stage::Volunteers(i * 10_000 + chunk.len()));
        }
        let phone =
            PhoneNumber::parse("13800000001").map_err(|e| BurstError::Scenario(e.to_string()))?;
        let user = store
            .create_user(
                &phone,
                "压测医护",
                "!",
                homefront_domain::locale::Locale::ZhCn,
                now.epoch_ms(),
            )
            .await?;
        store
            .grant_role(user.id, Role::Requester, None, now.epoch_ms())
            .await?;
        let household = store.household_of(user.id, now.epoch_ms()).await?;
        let member = store
            .add_member(
                household.id,
                &MemberFields {
                    name: "压测成员".into(),
                    relation: Relation::SelfMember,
                    age_years: Some(35),
                    school_grade: None,
                    phone: None,
                    division_id: county.id,
                    street: "压测路1号".into(),
                    location: Some((lon, lat)),
                    guardian_consent: false,
                },
                now.epoch_ms(),
            )
            .await?;
        let item = store
            .service_items(false)
            .await?
            .into_iter()
            .find(|i| i.code == "groceries")
            .ok_or_else(|| BurstError::Scenario("no groceries item".into()))?;
        Ok(Scenario {
            requester_id: user.id,
            household_id: household.id,
            member_id: member.id,
            county_id: county.id,
            item_id: item.id,
            team_id: team.id,
            centre: (lon, lat),
            points,
        })
    }

    /// A new order at the next point, for a 4-hour window from a day
    /// after `now`.
    pub fn next_order(&mut self, now: homefront_domain::Timestamp) -> NewOrder {
        let (lon, lat) = self.points.near(self.centre.0, self.centre.1);
        let window_start = now.plus_days(1).epoch_ms();
        NewOrder {
            item_id: self.item_id,
            household_id: self.household_id,
            member_id: self.member_id,
            placed_by: self.requester_id,
            division_id: self.county_id,
            lane: Lane::Standard,
            urgency: Urgency::Normal,
            window_start,
            window_end: window_start + 4 * 3_600_000,
            street: "压测路1号".into(),
            contact_phone: None,
            location: Some((lon, lat)),
            notes: None,
            public_note: None,
            labels: None,
        }
    }
}

/// Submits `orders`, [`SUBMITTERS`] at a time, under the idempotency keys
/// `{key_prefix}-{i}`; returns their ids. `progress` hears how many were
/// handed to the store.
///
/// # Errors
/// Database errors; [`BurstError::Scenario`] for a key used before.
pub async fn submit(
    store: &Store,
    placed_by: i64,
    key_prefix: &str,
    orders: Vec<NewOrder>,
    progress: impl Fn(Stage),
) -> Result<Vec<i64>, BurstError> {
    let n = orders.len();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(SUBMITTERS));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, new) in orders.into_iter().enumerate() {
        let permit = semaphore
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| BurstError::Scenario(e.to_string()))?;
        let store = store.clone();
        let key = format!("{key_prefix}-{i}");
        tasks.spawn(async move {
            let _permit = permit;
            let at = SystemClock.now().epoch_ms();
            store
                .create_order_idempotent(placed_by, &key, &key, &new, at, |o| {
                    (201, o.id.to_string())
                })
                .await
        });
        if i % 500 == 0 {
            progress(Stage::Orders(i));
        }
    }
    let mut ids = Vec::with_capacity(n);
    while let Some(done) = tasks.join_next().await {
        match done.map_err(|e| BurstError::Scenario(e.to_string()))?? {
            homefront_store::orders::Idempotent::Created { order, .. } => ids.push(order.id),
            _ => return Err(BurstError::Scenario("an order key was reused".into())),
        }
    }
    progress(Stage::Orders(n));
    ids.sort_unstable();
    Ok(ids)
}

/// Runs the benchmark on `store` (empty, migrated): `orders` orders,
/// `volunteers` volunteers; `progress` hears how far it got.
///
/// # Errors
/// [`BurstError`].
pub async fn run(
    store: &Store,
    orders: usize,
    volunteers: usize,
    progress: impl Fn(Stage),
) -> Result<BurstReport, BurstError> {
    let clock = SystemClock;
    let now = clock.now();
    let mut scenario = Scenario::build(store, volunteers, now, &progress).await?;
    let new_orders: Vec<NewOrder> = (0..orders).map(|_| scenario.next_order(now)).collect();
    let started = Instant::now();
    let ids = submit(store, scenario.requester_id, "burst", new_orders, &progress).await?;
    let (Some(&from_id), Some(&to_id)) = (ids.iter().min(), ids.iter().max()) else {
        return Ok(BurstReport {
            orders,
            first_offer_p50_s: 0.0,
            first_offer_p99_s: 0.0,
            all_offered_s: 0.0,
            statements_per_order: 0.0,
        });
    };

    // The real dispatcher, pass after pass, as `serve` runs it (passes
    // back to back: the loop would be woken by each new order).
    let state = AppState::new(store.clone(), Arc::new(SystemClock), Config::default());
    let submitted_s = started.elapsed().as_secs_f64();
    let mut dispatch_statements = 0;
    let mut passes = 0;
    let all_offered_s = loop {
        let before = store.statements();
        let report = dispatcher::tick(&state).await?;
        dispatch_statements += store.statements() - before;
        passes += 1;
        let done_s = started.elapsed().as_secs_f64();
        let left = store.count_orders_without_offer(from_id, to_id).await?;
        progress(Stage::Offered(orders - usize::try_from(left).unwrap_or(0)));
        if left == 0 {
            break done_s;
        }
        if report.offers == 0 {
            return Err(BurstError::Stranded(left));
        }
    };
    tracing::info!(
        submitted_s,
        passes,
        dispatch_s = all_offered_s - submitted_s,
        "burst: orders submitted, then offered"
    );
    let mut waits: Vec<f64> = store
        .first_offer_times(from_id, to_id)
        .await?
        .into_iter()
        .map(|(created, offered)| (offered - created).max(0) as f64 / 1000.0)
        .collect();
    waits.sort_by(f64::total_cmp);
    Ok(BurstReport {
        orders,
        first_offer_p50_s: percentile(&waits, 50.0),
        first_offer_p99_s: percentile(&waits, 99.0),
        all_offered_s,
        statements_per_order: dispatch_statements as f64 / orders as f64,
    })
}
