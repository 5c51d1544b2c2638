//! `homefront bench load`: drives a running Homefront over real HTTP as the
//! demo's requesters and volunteers, and checks afterwards that every
//! acknowledged write is there exactly once.
//!
//! - Open loop: operation `i` is due at `start + i / rate`, whatever
//!   happened to the ones before, and its latency runs from that due time
//!   to the answer, so time spent queueing for a free connection counts
//!   (no coordinated omission; Tene, "How NOT to measure latency"). With
//!   `--rate max` each connection sends its next operation as soon as the
//!   previous one is answered.
//! - Each order carries its own `Idempotency-Key`; a connection error
//!   (the server restarting, say) retries the same request with the same
//!   key until it is answered or [`RETRY_FOR`] has passed.
//! - Afterwards every acknowledged order is read back through the API
//!   (each requester's orders of this run, found by the run's tag in the
//!   public note): `verified_exactly_once` is true when each is there once
//!   and nothing more was created than was acknowledged (plus operations
//!   whose outcome stayed unknown).
//!
//! The target must hold the demo scenario (`homefront serve --demo`): the
//! tool signs in as its admin to find the requesters and volunteers, all
//! with the demo password.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use crate::demo::DEMO_PASSWORD;

/// How long one operation keeps retrying after connection errors.
pub const RETRY_FOR: Duration = Duration::from_secs(60);
/// The demo's admin, who lists the requesters and volunteers.
const DEMO_ADMIN: &str = "13800000000";
/// Requesters signed in (each has its own idempotency keys and orders).
const MAX_REQUESTERS: usize = 48;
/// Volunteers signed in for the accept scenarios.
const MAX_VOLUNTEERS: usize = 48;

/// What each operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// A requester places an order.
    Submit,
    /// A volunteer lists its open offers and accepts one (orders are placed
    /// meanwhile at the same rate, unmeasured, so offers keep coming).
    Accept,
    /// Every other operation a submit, the others accepts.
    Mixed,
    /// `GET /` of `homefront bench hello` (an axum hello-world): the HTTP
    /// floor of this machine, for comparison. Not a `--scenario` value.
    Hello,
}

impl std::str::FromStr for Scenario {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "submit" => Ok(Scenario::Submit),
            "accept" => Ok(Scenario::Accept),
            "mixed" => Ok(Scenario::Mixed),
            _ => Err(format!("{s}: use submit, accept or mixed")),
        }
    }
}

/// Operations per second, or as fast as the connections allow.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rate {
    /// This many operations per second, on schedule.
    PerSecond(f64),
    /// Back to back on every connection.
    Max,
}

impl std::str::FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "max" {
            return Ok(Rate::Max);
        }
        match s.parse::<f64>() {
            Ok(r) if r > 0.0 && r.is_finite() => Ok(Rate::PerSecond(r)),
            _ => Err(format!(
                "{s}: use a positive number of operations per second, or max"
            )),
        }
    }
}

/// A run's settings.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Base URL, e.g. `http://127.0.0.1:8080`.
    pub target: String,
    /// What to do.
    pub scenario: Scenario,
    /// How fast.
    pub rate: Rate,
    /// How long operations are started, seconds.
    pub duration: Duration,
    /// HTTP connections (operations in flight at most).
    pub connections: usize,
}

/// The result, printed as one JSON line with these keys.
#[derive(Clone, Debug, Serialize)]
pub struct LoadReport {
    /// Acknowledged operations per second of the run.
    pub achieved_per_s: f64,
    /// Median latency from the due time, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Largest latency, ms.
    pub max_ms: f64,
    /// Failed operations by HTTP status or kind (`connect`, `timeout`, `no_offer`, ...).
    pub errors: BTreeMap<String, u64>,
    /// Acknowledged operations (201 for an order, 200 for an accept).
    pub acknowledged: u64,
    /// Whether every acknowledged write was read back exactly once.
    pub verified_exactly_once: bool,
}

/// What went wrong before or after the measured run.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The target does not answer as a Homefront with the demo scenario.
    #[error("{0}")]
    Setup(String),
    /// An HTTP error outside the measured operations.
    #[error(transparent)]
    Http(#[from] reqwest::Error),
}

/// Progress of a run: seconds elapsed, acknowledged, failed.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Seconds since the first operation was due.
    pub elapsed_s: f64,
    /// Acknowledged so far.
    pub acknowledged: u64,
    /// Failed so far.
    pub failed: u64,
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn login(&self, phone: &str) -> Result<String, LoadError> {
        let resp = self
            .http
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({"phone": phone, "password": DEMO_PASSWORD}))
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        body["token"].as_str().map(str::to_string).ok_or_else(|| {
            LoadError::Setup(format!(
                "cannot sign in as {phone} ({status}); start the target with `homefront serve --demo`"
            ))
        })
    }

    async fn get(&self, token: &str, path: &str) -> Result<Value, LoadError> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await?;
        let status = resp.status();
        if !status.is_success() {
            return Err(LoadError::Setup(format!("GET {path}: {status}")));
        }
        Ok(resp.json().await?)
    }
}

/// A signed-in requester with what it can order.
struct Requester {
    token: String,
    /// (item id, member id) pairs it may order.
    choices: Vec<(i64, i64)>,
    /// Orders acknowledged: key -> order id.
    acked: Mutex<HashMap<String, i64>>,
}

struct Volunteer {
    token: String,
    /// Offers accepted: order ids.
    accepted: Mutex<Vec<i64>>,
}

/// Shared counters and samples of a run.
#[derive(Default)]
struct Tally {
    acknowledged: AtomicU64,
    failed: AtomicU64,
    /// Operations whose outcome is unknown (gave up mid-request).
    unknown: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Tally {
    fn error(&self, kind: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        *self.errors.lock().expect("tally").entry(kind).or_default() += 1;
    }
}

fn error_kind(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else if let Some(s) = e.status() {
        s.as_u16().to_string()
    } else {
        "io".into()
    }
}

/// Runs the load and the verification. `progress` is called about
/// every 200 ms while operations run.
///
/// # Errors
/// [`LoadError::Setup`] when the target is not a demo Homefront.
pub async fn run(
    opts: &LoadOptions,
    progress: impl Fn(Progress) + Send + Sync + 'static,
) -> Result<LoadReport, LoadError> {
    let connections = opts.connections.max(1);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(connections + 4)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?;
    let client = Arc::new(Client {
        http,
        base: opts.target.trim_end_matches('/').to_string(),
    });
    let (requesters, volunteers) = if opts.scenario == Scenario::Hello {
        (Vec::new(), Vec::new())
    } else {
        setup(&client, opts.scenario).await?
    };
    let requesters = Arc::new(requesters);
    let volunteers = Arc::new(volunteers);
    // Marks this run's orders (letters only: a public note must not look
    // like a phone number).
    let tag: String = (0..10)
        .map(|_| char::from(b'a' + rand::random::<u8>() % 26))
        .collect();
    let note = format!("load test {tag}");
    let tally = Arc::new(Tally::default());
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now() + Duration::from_millis(50);
    let end = start + opts.duration;

    let reporter = {
        let tally = tally.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tick.tick().await;
                progress(Progress {
                    elapsed_s: Instant::now()
                        .saturating_duration_since(start)
                        .as_secs_f64(),
                    acknowledged: tally.acknowledged.load(Ordering::Relaxed),
                    failed: tally.failed.load(Ordering::Relaxed),
                });
            }
        })
    };
    // The accept scenario's orders, placed at the same rate but not measured.
    let feeder = (opts.scenario == Scenario::Accept).then(|| {
        let (client, requesters, note) = (client.clone(), requesters.clone(), note.clone());
        let interval = match opts.rate {
            Rate::PerSecond(r) => Duration::from_secs_f64(1.0 / r),
            Rate::Max => Duration::from_millis(2),
        };
        tokio::spawn(async move {
            // Its outcomes are not measured.
            let unmeasured = Arc::new(Tally::default());
            let mut tick = tokio::time::interval(interval);
            let mut i = 0usize;
            while Instant::now() < end {
                tick.tick().await;
                let (c, r, n, t) = (
                    client.clone(),
                    requesters.clone(),
                    note.clone(),
                    unmeasured.clone(),
                );
                tokio::spawn(async move { submit(&c, &r, i, &n, Instant::now(), &t).await });
                i += 1;
            }
        })
    });
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (client, requesters, volunteers, tally, next, note) = (
            client.clone(),
            requesters.clone(),
            volunteers.clone(),
            tally.clone(),
            next.clone(),
            note.clone(),
        );
        let (scenario, rate) = (opts.scenario, opts.rate);
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let due = match rate {
                    Rate::PerSecond(r) => start + Duration::from_secs_f64(i as f64 / r),
                    Rate::Max => Instant::now().max(start),
                };
                if due >= end {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                let accept = match scenario {
                    Scenario::Submit => false,
                    Scenario::Accept => true,
                    Scenario::Mixed => i % 2 == 1,
                    Scenario::Hello => {
                        hello(&client, due, &tally).await;
                        continue;
                    }
                };
                if accept {
                    take_offer(&client, &volunteers, i, due, &tally).await;
                } else {
                    submit(&client, &requesters, i, &note, due, &tally).await;
                }
            }
        }));
    }
    for w in workers {
        w.await.ok();
    }
    let finished = Instant::now();
    if let Some(f) = feeder {
        f.abort();
    }
    reporter.abort();
    let elapsed = finished
        .saturating_duration_since(start)
        .as_secs_f64()
        .max(1e-9);

    let counted = opts.scenario != Scenario::Accept;
    let verified = verify(&client, &requesters, &volunteers, &note, &tally, counted).await?;
    let mut lat = std::mem::take(&mut *tally.latencies_us.lock().expect("tally"));
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let idx = ((p * lat.len() as f64).ceil() as usize).clamp(1, lat.len()) - 1;
        lat[idx] as f64 / 1000.0
    };
    let acknowledged = tally.acknowledged.load(Ordering::Relaxed);
    let round = |x: f64| (x * 100.0).round() / 100.0;
    Ok(LoadReport {
        achieved_per_s: round(acknowledged as f64 / elapsed),
        p50_ms: round(pct(0.50)),
        p99_ms: round(pct(0.99)),
        max_ms: round(lat.last().map_or(0.0, |&m| m as f64 / 1000.0)),
        errors: tally.errors.lock().expect("tally").clone(),
        acknowledged,
        verified_exactly_once: verified,
    })
}

/// Signs in the demo's requesters (with their orderable items and
/// members) and, for the accept scenarios, its volunteers.
async fn setup(
    client: &Client,
    scenario: Scenario,
) -> Result<(Vec<Requester>, Vec<Volunteer>), LoadError> {
    let admin = client.login(DEMO_ADMIN).await?;
    let items = client.get(&admin, "/api/v1/service-items").await?;
    let items: Vec<i64> = items
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["retired_at"].is_null())
        .filter_map(|i| i["id"].as_i64())
        .collect();
    if items.is_empty() {
        return Err(LoadError::Setup("the target has no service items".into()));
    }
    let phones = |users: Value| -> Vec<String> {
        users
            .as_array()
            .into_iter()
            .flatten()
            .filter(|u| u["disabled"] != json!(true))
            .filter_map(|u| u["phone"].as_str().map(str::to_string))
            .collect()
    };
    let requester_phones = phones(client.get(&admin, "/api/v1/users?role=requester").await?);
    let mut requesters = Vec::new();
    for phone in requester_phones.iter().take(MAX_REQUESTERS) {
        let local = phone.trim_start_matches("+86");
        let token = client.login(local).await?;
        let household = client.get(&token, "/api/v1/household").await?;
        let members: Vec<i64> = household["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| {
                // Children under 14 need a guardian's consent on record.
                m["relation"] != json!("child")
                    || m["guardian_consent"] == json!(1)
                    || m["age_years"].as_i64().is_some_and(|a| a >= 14)
            })
            .filter_map(|m| m["id"].as_i64())
            .collect();
        let choices: Vec<(i64, i64)> = members
            .iter()
            .flat_map(|m| items.iter().map(move |i| (*i, *m)))
            .collect();
        if !choices.is_empty() {
            requesters.push(Requester {
                token,
                choices,
                acked: Mutex::new(HashMap::new()),
            });
        }
    }
    if requesters.is_empty() {
        return Err(LoadError::Setup(
            "no demo requester with a household member; start the target with `homefront serve --demo`"
                .into(),
        ));
    }
    let mut volunteers = Vec::new();
    if scenario != Scenario::Submit {
        let volunteer_phones = phones(client.get(&admin, "/api/v1/users?role=volunteer").await?);
        for phone in volunteer_phones.iter().take(MAX_VOLUNTEERS) {
            let token = client.login(phone.trim_start_matches("+86")).await?;
            // On duty, so the dispatcher offers them orders.
            let _ = client
                .http
                .post(format!("{}/api/v1/volunteers/me/duty", client.base))
                .bearer_auth(&token)
                .json(&json!({"on_duty": true}))
                .send()
                .await;
            volunteers.push(Volunteer {
                token,
                accepted: Mutex::new(Vec::new()),
            });
        }
        if volunteers.is_empty() {
            return Err(LoadError::Setup("the target has no volunteers".into()));
        }
    }
    Ok((requesters, volunteers))
}

/// Places order `i` (requester, item and member round robin), retrying
/// connection errors with the same key.
async fn submit(
    client: &Client,
    requesters: &[Requester],
    i: usize,
    note: &str,
    due: Instant,
    tally: &Tally,
) {
    let r = &requesters[i % requesters.len()];
    let (item, member) = r.choices[(i / requesters.len()) % r.choices.len()];
    let key = uuid::Uuid::now_v7().to_string();
    let now = chrono::Utc::now();
    let body = json!({
        "item_id": item,
        "member_id": member,
        "window_start": (now + chrono::Duration::hours(2)).to_rfc3339(),
        "window_end": (now + chrono::Duration::hours(4)).to_rfc3339(),
        "public_note": note,
    });
    let url = format!("{}/api/v1/orders", client.base);
    let give_up = Instant::now() + RETRY_FOR;
    loop {
        let sent = client
            .http
            .post(&url)
            .bearer_auth(&r.token)
            .header("idempotency-key", &key)
            .json(&body)
            .send()
            .await;
        match sent {
            Ok(resp) => {
                let status = resp.status();
                let answer: Option<Value> = resp.json().await.ok();
                let latency = due.elapsed();
                match (status.as_u16(), answer.and_then(|v| v["id"].as_i64())) {
                    (200 | 201, Some(id)) => {
                        r.acked.lock().expect("acked").insert(key, id);
                        record(tally, latency);
                    }
                    (s, _) => tally.error(s.to_string()),
                }
                return;
            }
            Err(e) if (e.is_connect() || e.is_request()) && Instant::now() < give_up => {
                // Not answered: the same request again, under the same key.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                tally.unknown.fetch_add(1, Ordering::Relaxed);
                tally.error(error_kind(&e));
                return;
            }
        }
    }
}

/// `GET /` of the hello-world server.
async fn hello(client: &Client, due: Instant, tally: &Tally) {
    match client.http.get(format!("{}/", client.base)).send().await {
        Ok(resp) if resp.status().is_success() => {
            let _ = resp.bytes().await;
            record(tally, due.elapsed());
        }
        Ok(resp) => tally.error(resp.status().as_u16().to_string()),
        Err(e) => tally.error(error_kind(&e)),
    }
}

/// Serves an axum hello-world on `listener` (`GET /` answers `hello`): the
/// floor of what any HTTP service on this machine and runtime can do.
///
/// # Errors
/// I/O errors from the listener.
pub async fn serve_hello(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
    axum::serve(listener, app).await
}

fn record(tally: &Tally, latency: Duration) {
    tally.acknowledged.fetch_add(1, Ordering::Relaxed);
    let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    tally.latencies_us.lock().expect("tally").push(us);
}

/// Volunteer `i` (round robin) lists its open offers and accepts the
/// first; `no_offer` when it has none.
async fn take_offer(
    client: &Client,
    volunteers: &[Volunteer],
    i: usize,
    due: Instant,
    tally: &Tally,
) {
    let v = &volunteers[i % volunteers.len()];
    let listed = client
        .http
        .get(format!("{}/api/v1/offers", client.base))
        .bearer_auth(&v.token)
        .send()
        .await;
    let offers: Value = match listed {
        Ok(resp) if resp.status().is_success() => resp.json().await.unwrap_or(Value::Null),
        Ok(resp) => return tally.error(resp.status().as_u16().to_string()),
        Err(e) => return tally.error(error_kind(&e)),
    };
    let Some(offer) = offers.as_array().and_then(|a| a.first()) else {
        return tally.error("no_offer".into());
    };
    let (Some(offer_id), Some(order_id)) = (offer["id"].as_i64(), offer["order"]["id"].as_i64())
    else {
        return tally.error("no_offer".into());
    };
    let sent = client
        .http
        .post(format!("{}/api/v1/offers/{offer_id}/accept", client.base))
        .bearer_auth(&v.token)
        .json(&json!({}))
        .send()
        .await;
    match sent {
        Ok(resp) if resp.status().is_success() => {
            v.accepted.lock().expect("accepted").push(order_id);
            record(tally, due.elapsed());
        }
        Ok(resp) => tally.error(resp.status().as_u16().to_string()),
        Err(e) => tally.error(error_kind(&e)),
    }
}

/// Reads every acknowledged write back (see the module docs).
async fn verify(
    client: &Client,
    requesters: &[Requester],
    volunteers: &[Volunteer],
    note: &str,
    tally: &Tally,
    counted: bool,
) -> Result<bool, LoadError> {
    let mut ok = true;
    let mut created = 0u64;
    let mut acked_orders = 0u64;
    for r in requesters {
        let acked = r.acked.lock().expect("acked").clone();
        acked_orders += acked.len() as u64;
        let ids: HashSet<i64> = acked.values().copied().collect();
        // Two keys answered with one order: a duplicate answer.
        ok &= ids.len() == acked.len();
        let listed = orders_of_run(client, &r.token, note).await?;
        created += listed.len() as u64;
        let listed_set: HashSet<i64> = listed.iter().copied().collect();
        ok &= listed_set.len() == listed.len();
        ok &= ids.iter().all(|id| listed_set.contains(id));
    }
    // Every submit was measured (the accept scenario's feeder's are not):
    // nothing beyond the acknowledged ones may exist, except operations
    // whose outcome stayed unknown.
    if counted {
        let unknown = tally.unknown.load(Ordering::Relaxed);
        ok &= created >= acked_orders && created <= acked_orders + unknown;
    }
    for v in volunteers {
        let accepted = v.accepted.lock().expect("accepted").clone();
        let unique: HashSet<i64> = accepted.iter().copied().collect();
        ok &= unique.len() == accepted.len();
        for order in accepted {
            let o = client
                .get(&v.token, &format!("/api/v1/orders/{order}"))
                .await?;
            ok &= o["assignee_user_id"].is_number() || o["street"].is_string();
        }
    }
    Ok(ok)
}

/// Ids of the requester's orders carrying `note`, paging through the list
/// by creation time (the list answers at most 1000 at a time).
async fn orders_of_run(client: &Client, token: &str, note: &str) -> Result<Vec<i64>, LoadError> {
    let mut out = Vec::new();
    let mut ranges = vec![(0i64, i64::MAX / 2)];
    while let Some((from, to)) = ranges.pop() {
        let page = client
            .get(
                token,
                &format!("/api/v1/orders?from={from}&to={to}&limit=1000"),
            )
            .await?;
        let rows = page.as_array().cloned().unwrap_or_default();
        if rows.len() >= 1000 && to - from > 1 {
            let mid = from + (to - from) / 2;
            ranges.push((from, mid));
            ranges.push((mid, to));
            continue;
        }
        out.extend(
            rows.iter()
                .filter(|o| o["public_note"].as_str() == Some(note))
                .filter_map(|o| o["id"].as_i64()),
        );
    }
    Ok(out)
}
