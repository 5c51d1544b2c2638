//! Replays the programme through the real application: the app serves on
//! 127.0.0.1:0 in-process, requesters place orders and volunteers go on
//! duty, accept or decline, check in and out over HTTP, and the
//! dispatcher and fulfilment worker run by direct calls at each step.
//!
//! Event-driven and deterministic: a priority queue of (time, sequence)
//! events; the manual clock jumps to the next event; every random draw
//! comes from one seeded `StdRng`, except placements and answers, which
//! come from generators keyed by (seed, stream, instant) and (seed, order,
//! volunteer) so that they do not depend on the dispatch policy; iteration
//! is over sorted collections.
//! The simulator observes the database only to learn which offers reached
//! which volunteer (what a push notification would tell them) and an
//! accepted order's window; the report is computed from the database
//! after the run ([`super::report`]).
//!
//! The same engine drives `serve --demo` ([`Pace::Live`]): arrivals every
//! 20–60 s of wall time, compressed service durations, no clock of its own.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::sync::Arc;

use chrono::{TimeZone, Timelike};
use homefront_domain::catalogue::Lane;
use homefront_domain::{Clock, ManualClock, SystemClock, Timestamp};
use homefront_store::Store;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use super::model::{self, STREAMS};
use super::report::{self, Report};
use super::scenario::{self, DemoHousehold, Programme, Scenario};
use crate::{AppState, Config, auth, dispatcher, workers};

/// 2020-02-01T00:00+08:00: the first batch of the provincial team started
/// in the first days of February 2020.
pub const START: Timestamp = Timestamp(1_580_486_400_000);

/// Options of a run.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Days to replay.
    pub days: u32,
    /// RNG seed.
    pub seed: u64,
    /// Database URL; `None`: a new SQLite file in a temporary directory,
    /// removed afterwards.
    pub database_url: Option<String>,
    /// Dispatch policy for the whole province (`None`: the programme's own,
    /// broadcast to 3 with rank-aware holds, Xuzhou sequential).
    pub policy: Option<Policy>,
    /// Fairness weight of the cost, km per minute served in the last 28
    /// days (`None`: the default, 0.03).
    pub fairness_weight: Option<f64>,
    /// Rank-aware hold, seconds (`None`: the default configuration's
    /// `broadcast_hold_seconds`); the `broadcast` policy always holds 0.
    pub hold_seconds: Option<u64>,
}

/// A dispatch policy the replay can compare (`demo simulate --compare`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Broadcast to 3, first accept wins (no holds).
    Broadcast,
    /// Broadcast to 3 with rank-aware holds (90 s).
    RankAware,
    /// One offer at a time, best first.
    Sequential,
    /// Batch when supply is tight, nearest-first otherwise.
    Auto,
}

impl Policy {
    /// Parses `broadcast`, `rank-aware`, `sequential` or `auto`.
    pub fn parse(s: &str) -> Option<Policy> {
        Some(match s {
            "broadcast" => Policy::Broadcast,
            "rank-aware" => Policy::RankAware,
            "sequential" => Policy::Sequential,
            "auto" => Policy::Auto,
            _ => return None,
        })
    }

    /// The name `parse` reads.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Broadcast => "broadcast",
            Policy::RankAware => "rank-aware",
            Policy::Sequential => "sequential",
            Policy::Auto => "auto",
        }
    }
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] homefront_store::StoreError),
    /// Building the scenario failed.
    #[error(transparent)]
    Scenario(#[from] scenario::ScenarioError),
    /// The dispatcher failed.
    #[error(transparent)]
    Dispatch(#[from] dispatcher::DispatchError),
    /// An HTTP call failed or the app answered 5xx.
    #[error("HTTP: {0}")]
    Http(String),
    /// Local I/O (temporary directory, listener).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The database was not empty.
    #[error("the database is not empty: simulate needs a new one")]
    NotEmpty,
}

/// How simulated time passes.
#[derive(Clone, Debug)]
pub enum Pace {
    /// A manual clock set to each event's time (simulate).
    Manual(ManualClock),
    /// Wall time (serve --demo): the engine sleeps until each event, and
    /// service durations are divided by `compress`.
    Live {
        /// Divisor of durations and delays.
        compress: f64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Place {
        stream: usize,
    },
    DutyOn(i64),
    DutyOff(i64),
    Respond {
        offer: i64,
        accept: bool,
    },
    CheckIn {
        order: i64,
        volunteer: i64,
    },
    CheckOut {
        order: i64,
        volunteer: i64,
    },
    Confirm {
        order: i64,
        rating: i64,
    },
    Cancel {
        order: i64,
    },
    Wake,
    /// The provincial coordinator looks at the province's queue.
    Coordinate,
    Fulfil,
    Scan,
    Showcase,
    /// The volunteer takes the day off: a leave from now until the next
    /// midnight, so that no offer counts on their weekly shift window.
    RestDay(i64),
}

/// The engine: actors' sessions, the event queue and the RNG.
pub struct Engine {
    state: AppState,
    pace: Pace,
    base: String,
    client: reqwest::Client,
    rng: StdRng,
    /// The run's seed: keyed decisions ([`Engine::keyed_rng`]) derive from it.
    seed: u64,
    scenario: Scenario,
    tokens: BTreeMap<i64, String>,
    queue: BinaryHeap<Reverse<(i64, u64, Ev)>>,
    seq: u64,
    seen_offers: BTreeSet<i64>,
    items: BTreeMap<String, (i64, i64, String)>,
    placed: u64,
    /// Accounts a person signs in as (live only): the driver never acts
    /// as them: it answers no offer made to them and places, confirms and
    /// cancels no order for them.
    humans: BTreeSet<i64>,
    /// The login volunteer and the paired neighbour household whose
    /// orders keep an offer in front of them (live only; see
    /// [`scenario::stage_live`]).
    showcase: Option<(i64, DemoHousehold)>,
    /// The provincial coordinator acting on the province's queue
    /// (simulate only; see [`Engine::with_coordinator`]).
    coordinator: Option<i64>,
    /// What was seen of each order when it became dispatchable (simulate
    /// only): whether it had a candidate, and who would have accepted it.
    pub observed: report::Observed,
    /// HTTP answers other than the expected ones (4xx), for the log.
    pub refused: u64,
}

impl Engine {
    /// An engine over a running app at `base` with `scenario` built.
    /// Sessions for every demo account are created directly in the store
    /// (one per account, valid `valid_days`): verifying Argon2 for 300
    /// accounts would take minutes and test nothing new.
    ///
    /// # Errors
    /// Database errors.
    pub async fn new(
        state: AppState,
        pace: Pace,
        base: String,
        scenario: Scenario,
        seed: u64,
        valid_days: i64,
    ) -> Result<Self, SimError> {
        let now = state.clock.now();
        let mut tokens = BTreeMap::new();
        let ids = scenario
            .volunteers
            .iter()
            .map(|v| v.user_id)
            .chain(scenario.households.iter().map(|h| h.requester_id));
        for id in ids {
            let token = auth::new_token();
            state
                .store
                .create_session(
                    &auth::sha256_hex(&token),
                    id,
                    &auth::new_token(),
                    now.epoch_ms(),
                    now.plus_days(valid_days).epoch_ms(),
                )
                .await?;
            tokens.insert(id, token);
        }
        let items = state
            .store
            .service_items(false)
            .await?
            .into_iter()
            .map(|i| {
                (
                    i.code.clone(),
                    (i.id, i.default_duration_minutes, i.mode.to_string()),
                )
            })
            .collect();
        Ok(Self {
            state,
            pace,
            base,
            client: reqwest::Client::new(),
            rng: StdRng::seed_from_u64(seed),
            seed,
            scenario,
            tokens,
            queue: BinaryHeap::new(),
            seq: 0,
            seen_offers: BTreeSet::new(),
            items,
            placed: 0,
            humans: BTreeSet::new(),
            showcase: None,
            coordinator: None,
            observed: report::Observed::default(),
            refused: 0,
        })
    }

    /// Lets the account `user` (a coordinator of the province) act as the
    /// person who watches the province's queue: from the day planned next,
    /// during [`model::COORDINATOR_HOURS`], every
    /// [`model::COORDINATOR_LOOK_EVERY_MIN`] minutes it offers each order
    /// escalated to the top to the best-ranked candidate not yet offered it
    /// (`GET /dispatch/queue`, `GET /orders/{id}/candidates`,
    /// `POST /orders/{id}/offers`), as a coordinator does by hand.
    ///
    /// # Errors
    /// Database errors (creating the account's session).
    pub async fn with_coordinator(&mut self, user: i64, valid_days: i64) -> Result<(), SimError> {
        let now = self.now();
        let token = auth::new_token();
        self.state
            .store
            .create_session(
                &auth::sha256_hex(&token),
                user,
                &auth::new_token(),
                now.epoch_ms(),
                now.plus_days(valid_days).epoch_ms(),
            )
            .await?;
        self.tokens.insert(user, token);
        self.coordinator = Some(user);
        Ok(())
    }

    fn now(&self) -> Timestamp {
        self.state.clock.now()
    }

    /// A generator for one decision keyed by `parts` (e.g. an order and a
    /// volunteer), derived from the run's seed with splitmix64: the
    /// decision is the same whatever happened before it, so arrivals and
    /// answers do not depend on the dispatch policy.
    fn keyed_rng(&self, parts: &[i64]) -> StdRng {
        let mut z = self.seed;
        for p in parts {
            z = z
                .wrapping_add(0x9e37_79b9_7f4a_7c15)
                .wrapping_add(*p as u64);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
        }
        StdRng::seed_from_u64(z)
    }

    fn push(&mut self, at: i64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, ev)));
    }

    fn compress(&self) -> f64 {
        match self.pace {
            Pace::Manual(_) => 1.0,
            Pace::Live { compress } => compress,
        }
    }

    /// Minutes as ms after compression.
    fn minutes(&self, m: f64) -> i64 {
        (m * 60_000.0 / self.compress()) as i64
    }

    async fn call(
        &self,
        user: i64,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        idempotency_key: Option<&str>,
    ) -> Result<(reqwest::StatusCode, Value), SimError> {
        let token = self.tokens.get(&user).cloned().unwrap_or_default();
        let mut req = self
            .client
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(token);
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| SimError::Http(e.to_string()))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if status.is_server_error() {
            return Err(SimError::Http(format!("{path}: {status}: {text}")));
        }
        let value = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok((status, value))
    }

    async fn post(&mut self, user: i64, path: &str, body: Value) -> Result<bool, SimError> {
        let (status, v) = self
            .call(user, reqwest::Method::POST, path, Some(body), None)
            .await?;
        if !status.is_success() {
            self.refused += 1;
            tracing::debug!(%status, path, code = %v["code"], "demo: refused");
        }
        Ok(status.is_success())
    }

    /// Schedules the arrivals of day `day` (0-based from `start`) and the
    /// volunteers' duty for that day.
    fn plan_day(&mut self, start: Timestamp, day: i64) {
        let midnight = start.plus_days(day).epoch_ms();
        let (from, to) = model::PLACING_HOURS;
        let span = (to - from) * Timestamp::HOUR_MS;
        let cities = 12.0;
        for (i, s) in STREAMS.iter().enumerate() {
            let lambda = if s.households == Programme::Counselling {
                s.per_day * cities
            } else {
                s.per_day
            };
            for _ in 0..model::poisson(&mut self.rng, lambda) {
                let at = midnight + from * Timestamp::HOUR_MS + self.rng.random_range(0..span);
                self.push(at, Ev::Place { stream: i });
            }
        }
        let duty: Vec<(i64, (u32, u32))> = self
            .scenario
            .volunteers
            .iter()
            .map(|v| (v.user_id, v.duty))
            .collect();
        for (id, (on, off)) in duty {
            if self.rng.random_bool(model::REST_DAY) {
                if let Pace::Manual(_) = self.pace {
                    self.push(midnight, Ev::RestDay(id));
                }
                continue;
            }
            self.push(midnight + i64::from(on) * 60_000, Ev::DutyOn(id));
            self.push(midnight + i64::from(off) * 60_000, Ev::DutyOff(id));
        }
        for h in 0..24 {
            self.push(midnight + h * Timestamp::HOUR_MS + 1, Ev::Fulfil);
        }
        if self.coordinator.is_some() {
            // Keyed by day: the coordinator's looks do not depend on the
            // policy or on anything else drawn.
            let mut keyed = self.keyed_rng(&[5, day]);
            let (from, to) = model::COORDINATOR_HOURS;
            let end = midnight + to * Timestamp::HOUR_MS;
            let mut at = midnight + from * Timestamp::HOUR_MS;
            loop {
                at += self.minutes(model::uniform(
                    &mut keyed,
                    model::COORDINATOR_LOOK_EVERY_MIN,
                ));
                if at >= end {
                    break;
                }
                self.push(at, Ev::Coordinate);
            }
        }
    }

    /// One look of the provincial coordinator at the province's queue: each
    /// order escalated to the top (up to
    /// [`model::COORDINATOR_ORDERS_PER_LOOK`]) is offered to its
    /// best-ranked candidate that was not offered it yet, through the API a
    /// coordinator's page uses. Returns the offers made.
    async fn coordinate(&mut self) -> Result<u64, SimError> {
        let Some(c) = self.coordinator else {
            return Ok(0);
        };
        let (status, queue) = self
            .call(c, reqwest::Method::GET, "/dispatch/queue", None, None)
            .await?;
        if !status.is_success() {
            self.refused += 1;
            return Ok(0);
        }
        let top: Vec<i64> = queue
            .as_array()
            .map(|q| {
                q.iter()
                    .filter(|e| e["escalation_level"].as_i64() == Some(3))
                    .filter_map(|e| e["order"]["id"].as_i64())
                    .take(model::COORDINATOR_ORDERS_PER_LOOK)
                    .collect()
            })
            .unwrap_or_default();
        let mut made = 0;
        for order in top {
            let (status, list) = self
                .call(
                    c,
                    reqwest::Method::GET,
                    &format!("/orders/{order}/candidates"),
                    None,
                    None,
                )
                .await?;
            if !status.is_success() {
                self.refused += 1;
                continue;
            }
            let best = list.as_array().and_then(|l| {
                l.iter()
                    .find(|cand| cand["offered"] == Value::Bool(false))
                    .and_then(|cand| cand["volunteer_user_id"].as_i64())
            });
            let Some(volunteer) = best else {
                continue;
            };
            if self
                .post(
                    c,
                    &format!("/orders/{order}/offers"),
                    json!({ "volunteer_user_id": volunteer }),
                )
                .await?
            {
                made += 1;
            }
        }
        Ok(made)
    }

    /// Households that place orders of stream `s` (not those of a person
    /// signed in as their requester).
    fn households_of(&self, s: &model::Stream) -> Vec<DemoHousehold> {
        let mut pool: Vec<DemoHousehold> = match s.households {
            // Any household of a city with a 12355 team (not Lianyungang).
            Programme::Counselling => self
                .scenario
                .households
                .iter()
                .filter(|h| h.city != "3207")
                .cloned()
                .collect(),
            p => self
                .scenario
                .households
                .iter()
                .filter(|h| h.programme == p)
                .cloned()
                .collect(),
        };
        pool.retain(|h| !self.humans.contains(&h.requester_id));
        pool
    }

    async fn place(&mut self, stream: usize) -> Result<(), SimError> {
        let s = STREAMS[stream];
        let pool = self.households_of(&s);
        if pool.is_empty() {
            return Ok(());
        }
        // Every draw of this placement comes from a generator keyed by the
        // stream and the instant, so the same orders arrive under any policy.
        let mut keyed = self.keyed_rng(&[1, stream as i64, self.now().epoch_ms()]);
        std::mem::swap(&mut self.rng, &mut keyed);
        let h = pool[self.rng.random_range(0..pool.len())].clone();
        let placed = self.place_for(stream, &h).await;
        std::mem::swap(&mut self.rng, &mut keyed);
        placed
    }

    /// Places an order of stream `stream` as household `h`'s requester.
    async fn place_for(&mut self, stream: usize, h: &DemoHousehold) -> Result<(), SimError> {
        let s = STREAMS[stream];
        let Some(member) = s
            .members
            .iter()
            .find_map(|rel| h.members.iter().find(|(_, r)| r.as_str() == *rel))
            .or_else(|| h.members.first())
            .map(|(id, _)| *id)
        else {
            return Ok(());
        };
        let Some((item_id, duration, mode)) = self.items.get(s.item).cloned() else {
            return Ok(());
        };
        let now = self.now().epoch_ms();
        let (start, end) = self.window(s.item, &mode, duration, now);
        let fmt = |ms: i64| {
            chrono::FixedOffset::east_opt(8 * 3600)
                .and_then(|tz| tz.timestamp_millis_opt(ms).single())
                .map(|d| d.to_rfc3339())
                .unwrap_or_default()
        };
        let mut body = json!({
            "item_id": item_id,
            "member_id": member,
            "window_start": fmt(start),
            "window_end": fmt(end),
            "public_note": "示例订单(模拟)",
        });
        if s.households == Programme::Seu {
            // Meals go to the staff at Zhongda Hospital, on its district's point.
            body["location"] = json!({"adcode": "320106", "street": "东南大学附属中大医院(示例)"});
        }
        self.placed += 1;
        let key = format!("demo-{}-{}", now, self.placed);
        let (status, v) = self
            .call(
                h.requester_id,
                reqwest::Method::POST,
                "/orders",
                Some(body),
                Some(&key),
            )
            .await?;
        if !status.is_success() {
            self.refused += 1;
            // The code only: a refusal's message may quote what was sent.
            tracing::warn!(%status, code = %v["code"], field = %v["field"], "demo: an order was refused");
            return Ok(());
        }
        let order = v["id"].as_i64().unwrap_or(0);
        if let Some(c) = self.coordinator {
            // Whether an eligible volunteer was on duty when the order
            // became dispatchable: the candidate list the dispatcher ranks
            // from, read before its pass at this instant.
            let (status, list) = self
                .call(
                    c,
                    reqwest::Method::GET,
                    &format!("/orders/{order}/candidates"),
                    None,
                    None,
                )
                .await?;
            if status.is_success() && list.as_array().is_some_and(|l| !l.is_empty()) {
                self.observed.had_candidate.insert(order);
            }
            self.observe_would_accept(order).await?;
        }
        if let Pace::Manual(_) = self.pace {
            // Wake the dispatcher at each escalation deadline and at the
            // window's end.
            let lane: Lane = v["lane"]
                .as_str()
                .unwrap_or("standard")
                .parse()
                .unwrap_or(Lane::Standard);
            for k in 1..=3 {
                self.push(
                    now + k * lane.deadline_minutes() * Timestamp::MINUTE_MS,
                    Ev::Wake,
                );
            }
            self.push(end, Ev::Wake);
        }
        if self.rng.random_bool(model::CANCEL) {
            let after = model::uniform(&mut self.rng, model::CANCEL_AFTER_MIN);
            let at = now + self.minutes(after);
            self.push(at, Ev::Cancel { order });
        }
        Ok(())
    }

    /// The order window for `item` placed at `now`, epoch ms.
    fn window(&mut self, item: &str, mode: &str, duration: i64, now: i64) -> (i64, i64) {
        let local = chrono::FixedOffset::east_opt(8 * 3600)
            .and_then(|tz| tz.timestamp_millis_opt(now).single());
        let hour = local.map_or(12, |d| i64::from(d.hour()));
        let minute = Timestamp::MINUTE_MS;
        if let Pace::Live { .. } = self.pace {
            return (now + 5 * minute, now + 3 * Timestamp::HOUR_MS);
        }
        match (item, mode) {
            // Lessons in the evening: today's if placed before 17:00.
            ("tutoring_video", _) => {
                let midnight = now - (now + 8 * Timestamp::HOUR_MS).rem_euclid(Timestamp::DAY_MS);
                let day = if hour < 17 { 0 } else { Timestamp::DAY_MS };
                let start = midnight + day + 19 * Timestamp::HOUR_MS;
                (start, start + 2 * Timestamp::HOUR_MS)
            }
            ("carrier_data", _) => (now, now + Timestamp::DAY_MS),
            (_, "remote") => (now + 5 * minute, now + 3 * Timestamp::HOUR_MS),
            _ => {
                let lead = self.rng.random_range(3..18) * 10 * minute;
                let start = now + lead;
                (start, start + (duration + 120) * minute)
            }
        }
    }

    /// The behaviour model's answer of `volunteer` to an offer of `order`:
    /// the delay in seconds and whether it is an accept. Keyed by (seed,
    /// order, volunteer), so the same under any policy (a re-offer gets the
    /// same delay and the same draw); the decline probability depends on
    /// whether the offer comes through a pairing and whether the volunteer
    /// is already serving an order ([`model::DECLINE_PAIRED`]).
    fn answer(
        &self,
        order: i64,
        volunteer: i64,
        lane: &str,
        paired: bool,
        busy: bool,
    ) -> (f64, bool) {
        let mut keyed = self.keyed_rng(&[2, order, volunteer]);
        let delay_s =
            model::MIN_RESPONSE_S + model::exponential(&mut keyed, model::mean_response_s(lane));
        let p_decline = if paired {
            model::DECLINE_PAIRED
        } else if busy {
            model::DECLINE_BUSY
        } else {
            model::DECLINE_OTHER
        };
        let draw: f64 = keyed.random();
        (delay_s, draw >= p_decline)
    }

    /// Records who would have accepted `order_id` now
    /// ([`report::Observed::would_accept`]): every volunteer the dispatcher
    /// would judge free of obstacles at the top escalation level (a load
    /// cap reached only through open offers of other orders does not
    /// count), whose modelled answer is an accept within the item's offer
    /// timeout.
    async fn observe_would_accept(&mut self, order_id: i64) -> Result<(), SimError> {
        let store = self.state.store.clone();
        let Some(mut order) = store.order(order_id).await? else {
            return Ok(());
        };
        let Some(item) = store.service_item(order.item_id).await? else {
            return Ok(());
        };
        order.escalation_level = homefront_domain::escalation::TOP_LEVEL;
        let paired: BTreeSet<i64> = store
            .live_pairings(order.household_id)
            .await?
            .into_iter()
            .map(|p| p.volunteer_user_id)
            .collect();
        let judged = dispatcher::judge(
            &store,
            &order,
            &item,
            self.now(),
            self.state.config.escalation_radius_factor,
            0,
        )
        .await?;
        let timeout_s = item.offer_timeout_seconds as f64;
        let mut would: Vec<(i64, Option<f64>)> = Vec::new();
        let mut would_paired = Vec::new();
        for j in judged {
            let free = j.obstacles.iter().all(|o| {
                matches!(o, dispatcher::Obstacle::AtLoadCap { .. }) && j.load < i64::from(j.cap)
            });
            if !free {
                continue;
            }
            let is_paired = paired.contains(&j.volunteer_id);
            let (delay_s, accept) = self.answer(
                order_id,
                j.volunteer_id,
                order.lane.as_str(),
                is_paired,
                j.load > 0,
            );
            if accept && delay_s < timeout_s {
                if is_paired {
                    would_paired.push((j.volunteer_id, j.distance_km));
                }
                would.push((j.volunteer_id, j.distance_km));
            }
        }
        if !would_paired.is_empty() {
            would = would_paired;
        }
        if !would.is_empty() {
            self.observed.would_accept.insert(order_id, would);
        }
        Ok(())
    }

    /// Schedules a response for every open offer not seen before.
    async fn scan_offers(&mut self) -> Result<(), SimError> {
        let offers = self.state.store.open_offers().await?;
        let loads = self.state.store.active_loads().await?;
        for o in offers {
            if !self.seen_offers.insert(o.id) {
                continue;
            }
            if self.humans.contains(&o.volunteer_user_id) {
                // A person answers this one, or it expires.
                continue;
            }
            let Some(order) = self.state.store.order(o.order_id).await? else {
                continue;
            };
            // The volunteer's delay and answer for this order: keyed by
            // (seed, order, volunteer), so the same under any policy (a
            // re-offer gets the same delay and the same draw).
            let (delay_s, accept) = self.answer(
                o.order_id,
                o.volunteer_user_id,
                order.lane.as_str(),
                o.via == "pairing",
                loads.get(&o.volunteer_user_id).copied().unwrap_or(0) > 0,
            );
            let at = o.offered_at + (delay_s * 1000.0 / self.compress().min(8.0)) as i64;
            if at >= o.expires_at {
                // No answer in time: the offer expires; wake the dispatcher then.
                if let Pace::Manual(_) = self.pace {
                    self.push(o.expires_at, Ev::Wake);
                }
                continue;
            }
            self.push(
                at,
                Ev::Respond {
                    offer: o.id,
                    accept,
                },
            );
            if let Pace::Manual(_) = self.pace {
                self.push(o.expires_at, Ev::Wake);
            }
        }
        Ok(())
    }

    async fn respond(&mut self, offer_id: i64, accept: bool) -> Result<(), SimError> {
        let Some(offer) = self.state.store.offer(offer_id).await? else {
            return Ok(());
        };
        if offer.state != "offered" {
            return Ok(());
        }
        let v = offer.volunteer_user_id;
        let verb = if accept { "accept" } else { "decline" };
        let ok = self
            .post(v, &format!("/offers/{offer_id}/{verb}"), json!({}))
            .await?;
        if !(ok && accept) {
            return Ok(());
        }
        let Some(order) = self.state.store.order(offer.order_id).await? else {
            return Ok(());
        };
        let now = self.now().epoch_ms();
        let travel = if order.item_mode == homefront_domain::catalogue::ServiceMode::Onsite {
            let km = offer.distance_km.unwrap_or(0.0);
            let prep = model::uniform(&mut self.rng, model::PREPARE_MIN);
            self.minutes(prep + km / model::TRAVEL_KMH * 60.0)
        } else {
            0
        };
        let at = match self.pace {
            Pace::Manual(_) => (now + travel).max(order.window_start),
            // Check-in opens `check_in_lead_minutes` before the window.
            Pace::Live { .. } => (now + travel)
                .max(order.window_start - self.state.config.check_in_lead_minutes * 60_000),
        };
        self.push(
            at,
            Ev::CheckIn {
                order: order.id,
                volunteer: v,
            },
        );
        Ok(())
    }

    async fn check_in(&mut self, order_id: i64, v: i64) -> Result<(), SimError> {
        if !self
            .post(v, &format!("/orders/{order_id}/check-in"), json!({}))
            .await?
        {
            return Ok(());
        }
        let Some(order) = self.state.store.order(order_id).await? else {
            return Ok(());
        };
        let range = if order.item_mode == homefront_domain::catalogue::ServiceMode::Onsite {
            model::DURATION_ONSITE
        } else {
            model::DURATION_REMOTE
        };
        let factor = model::uniform(&mut self.rng, range);
        let at = self.now().epoch_ms() + self.minutes(order.item_duration_minutes as f64 * factor);
        self.push(
            at,
            Ev::CheckOut {
                order: order_id,
                volunteer: v,
            },
        );
        Ok(())
    }

    async fn check_out(&mut self, order_id: i64, v: i64) -> Result<(), SimError> {
        let (status, _) = self
            .call(
                v,
                reqwest::Method::POST,
                &format!("/orders/{order_id}/check-out"),
                None,
                None,
            )
            .await?;
        if !status.is_success() {
            self.refused += 1;
            return Ok(());
        }
        if self.rng.random_bool(model::CONFIRM) {
            let delay = model::uniform(&mut self.rng, model::CONFIRM_DELAY_MIN);
            let rating = model::rating(&mut self.rng);
            let at = self.now().epoch_ms() + self.minutes(delay);
            self.push(
                at,
                Ev::Confirm {
                    order: order_id,
                    rating,
                },
            );
        }
        Ok(())
    }

    /// The requester of an order, unless a person plays them.
    async fn requester_of(&self, order_id: i64) -> Result<Option<i64>, SimError> {
        Ok(self
            .state
            .store
            .order(order_id)
            .await?
            .map(|o| o.requester_user_id)
            .filter(|r| !self.humans.contains(r)))
    }

    /// Keeps an offer in front of the login volunteer (live only): when
    /// they are on duty with no open offer and no assignment in progress,
    /// the paired neighbour household places an order of a common item
    /// (groceries, errands or supplies), which the dispatcher offers to
    /// them first (see [`scenario::stage_live`]).
    async fn showcase(&mut self) -> Result<(), SimError> {
        let Some((volunteer, household)) = self.showcase.clone() else {
            return Ok(());
        };
        let store = &self.state.store;
        let on_duty = store.volunteer(volunteer).await?.is_some_and(|v| v.on_duty);
        let offered = store
            .open_offers()
            .await?
            .iter()
            .any(|o| o.volunteer_user_id == volunteer);
        let busy = store
            .active_loads()
            .await?
            .get(&volunteer)
            .is_some_and(|n| *n > 0);
        if !on_duty || offered || busy {
            return Ok(());
        }
        let common: Vec<usize> = STREAMS
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.households == Programme::Provincial
                    && matches!(s.item, "groceries" | "errands" | "supplies_delivery")
            })
            .map(|(i, _)| i)
            .collect();
        if common.is_empty() {
            return Ok(());
        }
        let stream = common[self.rng.random_range(0..common.len())];
        self.place_for(stream, &household).await
    }

    /// Handles one event; returns whether the dispatcher should run.
    async fn handle(&mut self, ev: Ev) -> Result<bool, SimError> {
        match ev {
            Ev::Place { stream } => {
                self.place(stream).await?;
                Ok(true)
            }
            Ev::DutyOn(v) | Ev::DutyOff(v) => {
                let on = matches!(ev, Ev::DutyOn(_));
                self.post(v, "/volunteers/me/duty", json!({ "on_duty": on }))
                    .await?;
                Ok(on)
            }
            Ev::Respond { offer, accept } => {
                self.respond(offer, accept).await?;
                Ok(!accept)
            }
            Ev::CheckIn { order, volunteer } => {
                self.check_in(order, volunteer).await?;
                Ok(false)
            }
            Ev::CheckOut { order, volunteer } => {
                self.check_out(order, volunteer).await?;
                Ok(false)
            }
            Ev::Confirm { order, rating } => {
                if let Some(r) = self.requester_of(order).await? {
                    self.post(
                        r,
                        &format!("/orders/{order}/confirm"),
                        json!({ "rating": rating }),
                    )
                    .await?;
                }
                Ok(false)
            }
            Ev::Cancel { order } => {
                let open = self.state.store.order(order).await?.is_some_and(|o| {
                    matches!(o.state.as_str(), "submitted" | "dispatching" | "assigned")
                });
                if open && let Some(r) = self.requester_of(order).await? {
                    self.post(
                        r,
                        &format!("/orders/{order}/cancel"),
                        json!({"reason": "示例:家人已自行解决"}),
                    )
                    .await?;
                }
                Ok(open)
            }
            Ev::Wake | Ev::Scan => Ok(true),
            Ev::Coordinate => {
                self.coordinate().await?;
                Ok(false)
            }
            Ev::Showcase => {
                self.showcase().await?;
                Ok(false)
            }
            Ev::Fulfil => {
                let r = workers::fulfilment_pass(&self.state).await?;
                Ok(r.follow_ups > 0)
            }
            Ev::RestDay(v) => {
                let from = self.now().epoch_ms();
                let to = from + Timestamp::DAY_MS;
                self.post(
                    v,
                    "/volunteers/me/availability/leaves",
                    json!({ "from": from, "to": to, "reason": "rest day (simulated)" }),
                )
                .await?;
                Ok(false)
            }
        }
    }

    /// Runs events until `end` (epoch ms) or, when `None`, forever;
    /// `progress(done, total)` in simulated minutes.
    ///
    /// # Errors
    /// Database or HTTP failures.
    pub async fn run_until(
        &mut self,
        end: Option<i64>,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<(), SimError> {
        let begin = self.now().epoch_ms();
        let total = end.map_or(0, |e| u64::try_from((e - begin) / 60_000).unwrap_or(0));
        while let Some(Reverse((at, _, ev))) = self.queue.pop() {
            if end.is_some_and(|e| at >= e) {
                break;
            }
            match &self.pace {
                Pace::Manual(clock) => {
                    if at > clock.now().epoch_ms() {
                        clock.set(Timestamp(at));
                    }
                }
                Pace::Live { .. } => {
                    let wait = at - SystemClock.now().epoch_ms();
                    if wait > 0 {
                        tokio::time::sleep(std::time::Duration::from_millis(
                            u64::try_from(wait).unwrap_or(0),
                        ))
                        .await;
                    }
                }
            }
            let live = matches!(self.pace, Pace::Live { .. });
            if live {
                self.live_event(&ev);
            }
            let dispatch = self.handle(ev).await?;
            // Run the dispatcher once after all events of this instant.
            let same_instant = self
                .queue
                .peek()
                .is_some_and(|Reverse((next, _, _))| *next == at);
            if !live && dispatch && !same_instant {
                dispatcher::tick(&self.state).await?;
            }
            if !same_instant {
                self.scan_offers().await?;
            }
            progress(
                u64::try_from((at - begin) / 60_000).unwrap_or(0).min(total),
                total,
            );
        }
        progress(total, total);
        Ok(())
    }

    /// Live pacing: the next arrival after each one (20–60 s), a scan of
    /// offers every 3 s (the app's own dispatcher makes them).
    fn live_event(&mut self, ev: &Ev) {
        let now = SystemClock.now().epoch_ms();
        match ev {
            Ev::Place { .. } => {
                let next = now + self.rng.random_range(20_000..60_000);
                let weights: Vec<f64> = STREAMS.iter().map(|s| s.per_day).collect();
                let total: f64 = weights.iter().sum();
                let mut u = self.rng.random_range(0.0..total);
                let mut stream = 0;
                for (i, w) in weights.iter().enumerate() {
                    if u < *w {
                        stream = i;
                        break;
                    }
                    u -= w;
                }
                self.push(next, Ev::Place { stream });
            }
            Ev::Scan => self.push(now + 3_000, Ev::Scan),
            Ev::Showcase => self.push(now + SHOWCASE_EVERY_MS, Ev::Showcase),
            _ => {}
        }
    }
}

/// Runs a simulation: a fresh database, the scenario, `days` of events,
/// then the report from the database. `progress(done, total)` reports
/// simulated minutes.
///
/// # Errors
/// [`SimError`] on database, HTTP or I/O failures.
pub async fn simulate(
    opts: &SimOptions,
    progress: impl FnMut(u64, u64),
) -> Result<Report, SimError> {
    let (url, _dir) = match &opts.database_url {
        Some(u) => (u.clone(), None),
        None => {
            let dir = std::env::temp_dir().join(format!(
                "homefront-simulate-{}",
                uuid::Uuid::now_v7().simple()
            ));
            std::fs::create_dir_all(&dir)?;
            let url = format!("sqlite://{}", dir.join("simulate.db").display());
            (url, Some(TempDir(dir)))
        }
    };
    let store = Store::connect(&url).await?;
    store.migrate().await?;
    if store.count_users().await? > 0 || store.count_org_units().await? > 0 {
        return Err(SimError::NotEmpty);
    }
    let clock = ManualClock::new(START.plus_days(-10));
    let config = Config {
        database_url: url.clone(),
        broadcast_hold_seconds: if opts.policy == Some(Policy::Broadcast) {
            0
        } else {
            opts.hold_seconds
                .unwrap_or(Config::default().broadcast_hold_seconds)
        },
        ..Config::default()
    };
    let state = AppState::new(store.clone(), Arc::new(clock.clone()), config);
    let hash = auth::hash_password(scenario::DEMO_PASSWORD.to_string())
        .await
        .map_err(|e| SimError::Http(e.message.clone()))?;
    let scenario = scenario::build(&store, START.plus_days(-10), &hash, opts.seed).await?;
    apply_policy(&store, opts, START.plus_days(-10)).await?;
    record_shifts(&store, &scenario, START.plus_days(-10)).await?;
    clock.set(START);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::serve(listener, state.clone(), async move {
        stop_rx.await.ok();
    }));
    let provincial = scenario.provincial_team_id;
    let mut engine = Engine::new(
        state,
        Pace::Manual(clock.clone()),
        base,
        scenario,
        opts.seed,
        i64::from(opts.days) + 30,
    )
    .await?;
    if let Some(c) = province_coordinator(&store).await? {
        engine
            .with_coordinator(c, i64::from(opts.days) + 30)
            .await?;
    }
    for day in 0..i64::from(opts.days) {
        engine.plan_day(START, day);
    }
    let end = START.plus_days(i64::from(opts.days)).epoch_ms();
    let result = engine.run_until(Some(end), progress).await;
    if engine.refused > 0 {
        tracing::info!(
            refused = engine.refused,
            "demo: refused calls (taken offers and the like)"
        );
    }
    stop_tx.send(()).ok();
    server.await.ok();
    result?;
    let report = report::compute(&store, provincial, Some(&engine.observed)).await?;
    store.close().await;
    Ok(report)
}

/// Records each volunteer's duty shift as weekly availability windows,
/// every day of the week, as volunteers who keep a rota do: an order for a
/// later window is offered at once to those whose shift will cover it,
/// even while they are off duty now. Rest days are leaves
/// ([`Ev::RestDay`]). Volunteers who already keep windows (the tutors'
/// evenings) keep theirs.
async fn record_shifts(store: &Store, scenario: &Scenario, at: Timestamp) -> Result<(), SimError> {
    use chrono::{NaiveTime, Weekday};
    use homefront_domain::availability::WeeklyWindow;
    let time = |minutes: u32| NaiveTime::from_num_seconds_from_midnight_opt(minutes * 60, 0);
    for v in &scenario.volunteers {
        let (Some(start), Some(end)) = (time(v.duty.0), time(v.duty.1)) else {
            continue;
        };
        if !store.availability_windows(v.user_id).await?.is_empty() {
            continue;
        }
        let windows: Vec<WeeklyWindow> = [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
            Weekday::Sat,
            Weekday::Sun,
        ]
        .into_iter()
        .map(|d| WeeklyWindow::new(d, start, end))
        .collect();
        store
            .replace_availability_windows(v.user_id, &windows, at)
            .await?;
    }
    Ok(())
}

/// The scenario's provincial coordinator (the demo login 13800000001),
/// who acts on the province's queue in a simulation.
async fn province_coordinator(store: &Store) -> Result<Option<i64>, SimError> {
    let Ok(phone) = homefront_domain::PhoneNumber::parse("13800000001") else {
        return Ok(None);
    };
    Ok(store.user_by_phone(&phone).await?.map(|u| u.id))
}

/// Sets the policy and fairness weight of `opts` on every unit that has a
/// dispatch setting (the province and Xuzhou in the scenario), so that it
/// governs the whole province.
async fn apply_policy(store: &Store, opts: &SimOptions, at: Timestamp) -> Result<(), SimError> {
    if opts.policy.is_none() && opts.fairness_weight.is_none() {
        return Ok(());
    }
    let units: Vec<i64> = store
        .org_units(None, None, None)
        .await?
        .into_iter()
        .map(|u| u.id)
        .collect();
    for id in units {
        let Some(current) = store.dispatch_setting_for(&[id]).await? else {
            continue;
        };
        if current.org_unit_id != id {
            continue;
        }
        let mut weights: homefront_dispatch::CostWeights =
            serde_json::from_str(&current.weights).unwrap_or_default();
        if let Some(w) = opts.fairness_weight {
            weights.fairness_weight = w;
        }
        let weights = serde_json::to_string(&weights).unwrap_or_else(|_| "{}".into());
        let (mode, k) = match opts.policy {
            None => (current.mode.as_str(), current.broadcast_k),
            Some(Policy::Broadcast | Policy::RankAware) => ("broadcast", 3),
            Some(Policy::Sequential) => ("sequential", 1),
            Some(Policy::Auto) => ("auto", current.broadcast_k),
        };
        store
            .set_dispatch_setting(
                id,
                &homefront_store::dispatch::NewDispatchSetting {
                    mode,
                    broadcast_k: k,
                    weights: &weights,
                    reoffer_cooldown_minutes: current.reoffer_cooldown_minutes,
                },
                at.epoch_ms(),
            )
            .await?;
    }
    Ok(())
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// How often the live driver checks whether the login volunteer has an
/// offer in front of them, ms (see [`Engine::showcase`]).
pub const SHOWCASE_EVERY_MS: i64 = 30_000;

/// Starts the live demo driver for `serve --demo` over the app at `base`:
/// every volunteer on duty, an order every 20–60 s, volunteers answering
/// within seconds and serving in minutes (durations divided by 30).
///
/// The login volunteer and requester are left to a person: the scenario
/// is staged for them ([`scenario::stage_live`]), the driver never acts
/// as them, and whenever the login volunteer is on duty with no open
/// offer and nothing in progress, it has the paired neighbour household
/// place an order (checked every [`SHOWCASE_EVERY_MS`]), so an offer with
/// its countdown is there within about a minute of signing in.
///
/// # Errors
/// Database errors while staging the scenario or creating the driver's
/// sessions.
pub async fn spawn_live(
    state: AppState,
    base: String,
    scenario: Scenario,
    seed: u64,
) -> Result<tokio::task::JoinHandle<()>, SimError> {
    let now = state.clock.now();
    for v in &scenario.volunteers {
        state.store.set_duty(v.user_id, true, None, now).await?;
    }
    let neighbour = scenario::stage_live(&state.store, &scenario, now).await?;
    tracing::info!(
        volunteer = scenario.login_volunteer_id,
        requester = scenario.login_requester_id,
        neighbour = neighbour.requester_id,
        "demo: the login volunteer is paired with the login requester's household and a neighbour's"
    );
    let humans = BTreeSet::from([scenario.login_volunteer_id, scenario.login_requester_id]);
    let showcase = Some((scenario.login_volunteer_id, neighbour));
    let mut engine = Engine::new(
        state,
        Pace::Live { compress: 30.0 },
        base,
        scenario,
        seed,
        365,
    )
    .await?;
    engine.humans = humans;
    engine.showcase = showcase;
    let first = now.epoch_ms() + 5_000;
    engine.push(first, Ev::Place { stream: 0 });
    engine.push(first, Ev::Scan);
    engine.push(first + 5_000, Ev::Showcase);
    Ok(tokio::spawn(async move {
        loop {
            if let Err(e) = engine.run_until(None, |_, _| {}).await {
                tracing::warn!(error = %e, "demo driver: retrying in 10 s");
                tokio::time::sleep(std::time::Duration::from_secs(10)).await;
                // Restart the recurring events whose chain the failed one was.
                let at = SystemClock.now().epoch_ms();
                for ev in [Ev::Place { stream: 0 }, Ev::Scan, Ev::Showcase] {
                    let kind = std::mem::discriminant(&ev);
                    let queued = engine
                        .queue
                        .iter()
                        .any(|Reverse((_, _, e))| std::mem::discriminant(e) == kind);
                    if !queued {
                        engine.push(at, ev);
                    }
                }
            }
        }
    }))
}
