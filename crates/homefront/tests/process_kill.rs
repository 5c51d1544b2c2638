//! Notifications and orders across real process kills.
//!
//! `homefront serve` runs as a child process on a temporary database with a
//! config file of its own; a local HTTP receiver on 127.0.0.1:0 stands in
//! for the county's WeCom group bot and signed generic webhook. The
//! receiver holds the first request it gets open and never answers it. The
//! delivery worker sends one delivery at a time, so while that request
//! hangs (up to the 10 s send timeout) nothing else can be delivered: a
//! second order placed then commits its outbox row with no chance of
//! delivery, and the process is killed with SIGKILL. A second `homefront
//! serve` on the same database must then deliver every message, each
//! accepted exactly once: the rows committed before the kill at once, and
//! the one whose send was cut off when the dead process's lease
//! (`notify_lease_seconds`, 15 s here) runs out, under the same delivery id.
//!
//! A second test kills the server at 20 seeded random moments
//! (`HOMEFRONT_KILL_SEED` replays another run) while a client submits
//! orders, accepts offers and cancels, then checks that every acknowledged
//! order exists exactly once, every assignment has its event and outbox
//! row, every acknowledged accept and cancellation holds, and (SQLite)
//! `PRAGMA integrity_check` says ok.
//!
//! SQLite by default; `HOMEFRONT_TEST_DB=postgres` runs them on a fresh
//! PostgreSQL database (server at `HOMEFRONT_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`), as the API suite does.

use homefront_domain::notify::{Channel, DeliveryState};
use homefront_domain::order_state::OrderState;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use homefront_store::Store;
use homefront_store::outbox::DeliveryStatus;
use reqwest::Method;
use serde_json::{Value, json};

mod support;
use support::{Db, Serve, eventually, run};

const ADMIN: &str = "13800000000";
const REQUESTER: &str = "13800000001";
const PASSWORD: &str = "correct horse battery";
const STREET: &str = "龙蟠中路1号";
const PHONE: &str = "13912345678";
/// `notify_lease_seconds` of the servers under test (the least allowed).
const LEASE_S: u64 = 15;
/// The send timeout of the delivery worker (`notify::channels::SEND_TIMEOUT`).
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The `homefront` command, logging warnings.
fn homefront(db: &Db, config: &Path) -> Command {
    support::homefront(db, config, "warn")
}

/// A running `homefront serve`.
struct Server {
    /// The process; `None` for a client of a server started elsewhere.
    process: Option<Serve>,
    base: String,
    client: reqwest::Client,
}

impl Server {
    /// Starts `homefront serve` (bound to 127.0.0.1:0 by the config file)
    /// and waits for the address it announces on standard error.
    fn start(db: &Db, config: &Path) -> Server {
        let process = Serve::start(homefront(db, config));
        let base = process.base_url(Duration::from_secs(60));
        Server {
            process: Some(process),
            base,
            client: reqwest::Client::new(),
        }
    }

    /// SIGKILL: no shutdown, no last delivery pass.
    fn kill(self) {
        let status = self.process.expect("a started server").kill();
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(9), "killed by SIGKILL");
        }
        #[cfg(not(unix))]
        assert!(!status.success());
    }

    async fn call(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
        idempotency_key: Option<&str>,
    ) -> (reqwest::StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}/api/v1{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> Value {
        let (status, v) = self
            .call(Some(token), Method::POST, path, Some(body), None)
            .await;
        assert!(status.is_success(), "POST {path}: {status} {v}");
        v
    }

    async fn login(&self, phone: &str) -> String {
        let (status, v) = self
            .call(
                None,
                Method::POST,
                "/auth/login",
                Some(json!({"phone": phone, "password": PASSWORD})),
                None,
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::OK, "login {phone}: {v}");
        v["token"].as_str().unwrap().to_string()
    }

    /// Places an order for tomorrow evening; returns its id once committed.
    async fn order(&self, token: &str, key: &str, item: i64, member: i64) -> i64 {
        let start = chrono::Utc::now() + chrono::Duration::days(1);
        let end = start + chrono::Duration::hours(4);
        let rfc =
            |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let (status, v) = self
            .call(
                Some(token),
                Method::POST,
                "/orders",
                Some(
                    json!({"item_id": item, "member_id": member, "contact_phone": PHONE,
                            "window_start": rfc(start), "window_end": rfc(end)}),
                ),
                Some(key),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{v}");
        v["id"].as_i64().unwrap()
    }
}

impl Server {
    /// Submits (or replays) the order `body` under idempotency key `key`;
    /// its id.
    async fn order_with_key(&self, token: &str, key: &str, body: &Value) -> i64 {
        let (status, v) = self
            .call(
                Some(token),
                Method::POST,
                "/orders",
                Some(body.clone()),
                Some(key),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{key}: {v}");
        v["id"].as_i64().unwrap()
    }
}

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    at: Instant,
    path_and_query: String,
    headers: HeaderMap,
    body: String,
    /// Whether it was answered (with success); the held request never is.
    answered: bool,
}

impl Received {
    fn delivery_id(&self) -> String {
        self.headers["x-homefront-delivery"]
            .to_str()
            .unwrap()
            .to_string()
    }
}

/// A local HTTP receiver answering like WeCom (`{"errcode":0,...}`), except
/// that it holds the very first request open without an answer.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    held_one: Arc<AtomicBool>,
}

async fn receive(
    State(rx): State<Receiver>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, &'static str) {
    let hold = !rx.held_one.swap(true, Ordering::SeqCst);
    rx.got.lock().unwrap().push(Received {
        at: Instant::now(),
        path_and_query: uri.to_string(),
        headers,
        body,
        answered: !hold,
    });
    if hold {
        // The sender waits here until it is killed.
        std::future::pending::<()>().await;
    }
    (StatusCode::OK, r#"{"errcode":0,"errmsg":"ok"}"#)
}

impl Receiver {
    /// Starts on 127.0.0.1:0; returns the receiver and its base URL.
    async fn start() -> (Receiver, String) {
        let rx = Receiver::default();
        let app = axum::Router::new().fallback(receive).with_state(rx.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (rx, base)
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

/// No street, no phone, and no run of exactly 11 digits starting with 1
/// (the shape of a mainland mobile number).
fn assert_no_personal_data(text: &str) {
    assert!(!text.contains(STREET), "street leaked: {text}");
    assert!(!text.contains("龙蟠中路"), "street leaked: {text}");
    for run in text.split(|c: char| !c.is_ascii_digit()) {
        assert!(
            !(run.len() == 11 && run.starts_with('1')),
            "a phone-like number in: {text}"
        );
    }
}

/// Deliveries to the receiver (WeCom bot, webhook), by delivery id.
async fn http_deliveries(store: &Store) -> BTreeMap<String, DeliveryStatus> {
    store
        .deliveries(None)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.channel != Channel::Inbox)
        .map(|d| (d.delivery_key.clone(), d))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_rows_committed_before_a_sigkill_are_delivered_once_after_restart() {
    let started = Instant::now();
    let db = Db::new("kill").await;
    let config = db.dir.join("homefront.toml");
    std::fs::write(
        &config,
        format!("bind = \"127.0.0.1:0\"\nnotify_poll_ms = 100\nnotify_lease_seconds = {LEASE_S}\nnotify_allow_private_urls = true\n"),
    )
    .unwrap();
    run(homefront(&db, &config).args(["org", "import-divisions", "--province", "32"]));
    run(homefront(&db, &config)
        .args(["user", "create-admin", "--phone", ADMIN])
        .env("HOMEFRONT_ADMIN_PASSWORD", PASSWORD));
    // Read-only checks of what was written.
    let store = Store::connect(&db.url).await.unwrap();
    let xuanwu = store
        .org_unit_by_adcode("320102000000")
        .await
        .unwrap()
        .unwrap()
        .id;
    let item = store
        .service_items(false)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.code == "groceries")
        .unwrap()
        .id;
    let (rx, rx_base) = Receiver::start().await;

    let a = Server::start(&db, &config);
    let admin = a.login(ADMIN).await;
    a.post(
        &admin,
        "/users",
        json!({"phone": REQUESTER, "display_name": "刘护士", "password": PASSWORD,
               "grants": [{"role": "requester"}]}),
    )
    .await;
    let requester = a.login(REQUESTER).await;
    let member = a
        .post(
            &requester,
            "/household/members",
            json!({"name": "刘护士", "relation": "self", "adcode": "320102", "street": STREET,
                   "phone": PHONE, "longitude": 118.797, "latitude": 32.049}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    a.post(
        &admin,
        &format!("/org-units/{xuanwu}/bots"),
        json!({"kind": "wecom", "name": "玄武区调度群", "url": format!("{rx_base}/wecom/send?key=KEY")}),
    )
    .await;
    let hook = a
        .post(
            &admin,
            &format!("/org-units/{xuanwu}/bots"),
            json!({"kind": "webhook", "name": "ERP", "url": format!("{rx_base}/hook")}),
        )
        .await;
    let secret = hook["secret"].as_str().unwrap().to_string();

    // The first order's first message reaches the receiver, which holds it:
    // the delivery worker waits in that send.
    let order1 = a.order(&requester, "kill-1", item, member).await;
    let held = eventually("the first delivery", Duration::from_secs(10), || {
        let got = rx.got();
        async move { got.into_iter().next() }
    })
    .await;
    // The second order commits its outbox row meanwhile.
    let order2 = a.order(&requester, "kill-2", item, member).await;
    assert!(
        held.at.elapsed() < SEND_TIMEOUT - Duration::from_secs(2),
        "too slow to be sure the worker is still in the held send ({:?})",
        held.at.elapsed()
    );
    assert_eq!(rx.got().len(), 1, "nothing else was sent");
    a.kill();
    let killed_at = Instant::now();
    assert_eq!(rx.got().len(), 1, "nothing was delivered before the kill");
    let http = http_deliveries(&store).await;
    assert!(
        http.values().all(|d| d.state == DeliveryState::Pending),
        "nothing is recorded as delivered: {http:?}"
    );
    let (backlog, _) = store.outbox_backlog().await.unwrap();
    // Order 1's two messages (one of them the held one) and at least the
    // unplanned event of order 2.
    assert!(backlog >= 3, "committed and waiting: {backlog}");

    let b = Server::start(&db, &config);
    // Everything ends delivered: both orders have reached `dispatching`
    // (no volunteers), every event is planned and no delivery is pending.
    let delivered = eventually(
        "every delivery to be delivered",
        Duration::from_secs(LEASE_S + 15),
        || {
            let store = &store;
            async move {
                for o in [order1, order2] {
                    if store.order(o).await.unwrap().unwrap().state != OrderState::Dispatching {
                        return None;
                    }
                }
                if store.outbox_backlog().await.unwrap().0 != 0 {
                    return None;
                }
                let http = http_deliveries(store).await;
                http.values()
                    .all(|d| d.state == DeliveryState::Delivered)
                    .then_some(http)
            }
        },
    )
    .await;
    b.kill();

    let got = rx.got();
    // Every delivery was accepted exactly once, under its delivery id; the
    // receiver heard of nothing else.
    let mut by_id: BTreeMap<String, Vec<&Received>> = BTreeMap::new();
    for r in &got {
        by_id.entry(r.delivery_id()).or_default().push(r);
    }
    assert_eq!(
        by_id.keys().collect::<Vec<_>>(),
        delivered.keys().collect::<Vec<_>>()
    );
    for (id, receipts) in &by_id {
        let accepted = receipts.iter().filter(|r| r.answered).count();
        assert_eq!(accepted, 1, "{id} accepted {accepted} times");
        // The send cut off by the kill is the only one recorded.
        assert_eq!(delivered[id].attempts, 1, "{id}");
    }
    // The held message: sent again by the restarted process, with the same
    // delivery id, only once the dead process's lease ran out.
    let repeats = &by_id[&held.delivery_id()];
    assert_eq!(repeats.len(), 2);
    assert!(!repeats[0].answered && repeats[1].answered);
    let gap = repeats[1].at - repeats[0].at;
    assert!(
        gap >= Duration::from_secs(LEASE_S - 1),
        "repeated {gap:?} after the first send, before the lease ran out"
    );
    // Order 2's group message was committed before the kill and first sent
    // after the restart.
    let order2_wecom: Vec<&DeliveryStatus> = store
        .deliveries(Some(order2))
        .await
        .unwrap()
        .iter()
        .filter(|d| d.channel == Channel::Wecom)
        .map(|d| &delivered[&d.delivery_key])
        .collect();
    assert_eq!(order2_wecom.len(), 1);
    let receipts = &by_id[&order2_wecom[0].delivery_key];
    assert_eq!(receipts.len(), 1);
    assert!(receipts[0].at > killed_at);

    // Each channel's format; nothing personal anywhere.
    let mut wecom_orders = Vec::new();
    for r in &got {
        assert_no_personal_data(&r.body);
        assert_no_personal_data(&r.path_and_query);
        let v: Value = serde_json::from_str(&r.body).unwrap();
        if r.path_and_query.starts_with("/wecom/send?key=KEY") {
            assert_eq!(v["msgtype"], "markdown");
            let content = v["markdown"]["content"].as_str().unwrap();
            assert!(content.starts_with("### 新订单："), "{content}");
            if r.answered {
                wecom_orders.push(content.to_string());
            }
        } else {
            assert_eq!(r.path_and_query, "/hook");
            let id = r.headers["webhook-id"].to_str().unwrap();
            assert_eq!(id, r.delivery_id());
            let ts: i64 = r.headers["webhook-timestamp"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let expected = standardwebhooks::Webhook::new(&secret)
                .unwrap()
                .sign(id, ts, r.body.as_bytes())
                .unwrap();
            assert_eq!(r.headers["webhook-signature"].to_str().unwrap(), expected);
            assert!(v["type"].as_str().unwrap().starts_with("order."), "{v}");
        }
    }
    wecom_orders.sort();
    assert_eq!(wecom_orders.len(), 2, "one group message per order");
    assert!(
        wecom_orders
            .iter()
            .any(|c| c.contains(&format!("#{order1}\n")))
    );
    assert!(
        wecom_orders
            .iter()
            .any(|c| c.contains(&format!("#{order2}\n")))
    );
    store.close().await;
    eprintln!(
        "{} deliveries, each accepted once, in {:.1} s",
        delivered.len(),
        started.elapsed().as_secs_f64()
    );
}

/// SplitMix64 (Steele, Lea and Flood, 2014): seeded pseudo-random numbers,
/// so that a failing run replays with the same kill moments.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (milliseconds here).
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// What the client was told: orders acknowledged per idempotency key (the
/// id it got, or `None` while unacknowledged), offers it accepted (order,
/// volunteer), orders it cancelled, and how many submissions it sent again
/// after a kill.
#[derive(Default)]
struct Told {
    orders: Vec<(String, Option<i64>)>,
    accepted: Vec<(i64, i64)>,
    cancelled: Vec<i64>,
    retries: usize,
}

/// One active volunteer of `team`, on duty, holding up to 10 services at
/// once, written straight to the database before the servers start.
async fn seed_volunteer(store: &Store, phone: &str, team: i64, xuanwu: i64) -> i64 {
    use homefront_domain::credentials::{Credential, CredentialKind};
    use homefront_domain::vetting::VettingState;
    use homefront_domain::{GeoPoint, PhoneNumber, Timestamp};
    use homefront_store::credentials::NewCredential;
    use homefront_store::volunteers::{Account, VolunteerProfile};
    let now = Timestamp(chrono::Utc::now().timestamp_millis());
    let hash = homefront_server::auth::hash_password(PASSWORD.into())
        .await
        .unwrap();
    let id = store
        .register_volunteer(
            Account::New {
                phone: &PhoneNumber::parse(phone).unwrap(),
                display_name: "张志愿",
                password_hash: &hash,
            },
            &VolunteerProfile {
                team_id: team,
                home_division_id: xuanwu,
                home_location: Some(GeoPoint::new(118.80, 32.05).unwrap()),
                service_radius_km: 10.0,
                declared_qualifications: vec![],
                vehicle_seats: None,
                languages: vec![],
                max_concurrent: 10,
                gender: None,
                emergency_contact: None,
            },
            None,
            now,
        )
        .await
        .unwrap()
        .unwrap();
    for target in [
        VettingState::Reviewed,
        VettingState::Interviewed,
        VettingState::Trained,
        VettingState::ExamPassed,
        VettingState::AgreementSigned,
        VettingState::Insured,
        VettingState::Active,
    ] {
        let mut tx = store.begin_write().await.unwrap();
        Store::move_vetting_tx(&mut tx, id, target, None, now, None, None)
            .await
            .unwrap()
            .unwrap();
        tx.commit().await.unwrap();
    }
    for kind in [
        CredentialKind::TrainingCertificate,
        CredentialKind::ServiceAgreement,
        CredentialKind::Insurance,
    ] {
        let c = Credential::new(kind, now.plus_days(-30), Some(now.plus_days(365))).unwrap();
        store
            .add_credential(
                &NewCredential {
                    volunteer_id: id,
                    credential: &c,
                    insurer: Some("中国人保"),
                    policy_number: Some("PICC-1"),
                    document_ref: None,
                    actor: None,
                },
                now,
            )
            .await
            .unwrap();
    }
    store.set_duty(id, true, None, now).await.unwrap();
    id
}

/// Submits orders, accepts offers and cancels assigned orders (which frees
/// the volunteer for the next) as fast as answers come, until the server
/// stops answering; records what it was told in `told`. Unanswered
/// submissions are retried under the same key first, as a client would.
async fn client_until_killed(
    base: String,
    requester: String,
    volunteers: Vec<(i64, String)>,
    body: Value,
    told: Arc<Mutex<Told>>,
) {
    let server = Server {
        process: None,
        base,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap(),
    };
    loop {
        let key = {
            let mut t = told.lock().unwrap();
            match t.orders.iter().find(|(_, id)| id.is_none()).cloned() {
                Some((k, _)) => {
                    t.retries += 1;
                    k
                }
                None => {
                    let k = format!("rk-{}", t.orders.len());
                    t.orders.push((k.clone(), None));
                    k
                }
            }
        };
        let req = server
            .client
            .post(format!("{}/api/v1/orders", server.base))
            .bearer_auth(&requester)
            .header("Idempotency-Key", &key)
            .json(&body);
        let Ok(resp) = req.send().await else { return };
        let status = resp.status();
        let Ok(v) = resp.json::<Value>().await else {
            return;
        };
        assert_eq!(status, reqwest::StatusCode::CREATED, "{key}: {v}");
        let id = v["id"].as_i64().unwrap();
        told.lock()
            .unwrap()
            .orders
            .iter_mut()
            .find(|(k, _)| *k == key)
            .unwrap()
            .1 = Some(id);
        for (volunteer, token) in &volunteers {
            let Ok(resp) = server
                .client
                .get(format!("{}/api/v1/offers", server.base))
                .bearer_auth(token)
                .send()
                .await
            else {
                return;
            };
            let Ok(offers) = resp.json::<Value>().await else {
                return;
            };
            for offer in offers.as_array().into_iter().flatten() {
                let path = format!("{}/api/v1/offers/{}/accept", server.base, offer["id"]);
                let Ok(resp) = server
                    .client
                    .post(path)
                    .bearer_auth(token)
                    .json(&json!({}))
                    .send()
                    .await
                else {
                    return;
                };
                if resp.status() == reqwest::StatusCode::OK {
                    let order = offer["order"]["id"].as_i64().unwrap();
                    told.lock().unwrap().accepted.push((order, *volunteer));
                }
            }
        }
        let to_cancel = {
            let t = told.lock().unwrap();
            t.accepted
                .iter()
                .map(|(o, _)| *o)
                .find(|o| !t.cancelled.contains(o))
        };
        if let Some(order) = to_cancel {
            let path = format!("{}/api/v1/orders/{order}/cancel", server.base);
            let Ok(resp) = server
                .client
                .post(path)
                .bearer_auth(&requester)
                .json(&json!({"reason": "no longer needed"}))
                .send()
                .await
            else {
                return;
            };
            if resp.status() == reqwest::StatusCode::OK {
                told.lock().unwrap().cancelled.push(order);
            }
        }
    }
}

/// Counts rows of `sql` (one bigint column) for `id`.
async fn count(store: &Store, sql: &str, id: i64) -> i64 {
    let mut tx = store.begin_write().await.unwrap();
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_sigkills_lose_and_repeat_no_acknowledged_order_or_assignment() {
    let started = Instant::now();
    let seed: u64 = std::env::var("HOMEFRONT_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_200_212);
    let kills = 20;
    let mut rng = SplitMix(seed);
    let db = Db::new("randkill").await;
    let config = db.dir.join("homefront.toml");
    std::fs::write(
        &config,
        "bind = \"127.0.0.1:0\"\ndispatch_interval_seconds = 1\n",
    )
    .unwrap();
    run(homefront(&db, &config).args(["org", "import-divisions", "--province", "32"]));
    run(homefront(&db, &config)
        .args(["user", "create-admin", "--phone", ADMIN])
        .env("HOMEFRONT_ADMIN_PASSWORD", PASSWORD));
    let store = Store::connect(&db.url).await.unwrap();
    let xuanwu = store
        .org_unit_by_adcode("320102000000")
        .await
        .unwrap()
        .unwrap()
        .id;

    let a = Server::start(&db, &config);
    let admin = a.login(ADMIN).await;
    a.post(
        &admin,
        "/users",
        json!({"phone": REQUESTER, "display_name": "刘护士", "password": PASSWORD,
               "grants": [{"role": "requester"}]}),
    )
    .await;
    let requester = a.login(REQUESTER).await;
    let member = a
        .post(
            &requester,
            "/household/members",
            json!({"name": "刘护士", "relation": "self", "adcode": "320102", "street": STREET,
                   "phone": PHONE, "longitude": 118.797, "latitude": 32.049}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let team = a
        .post(
            &admin,
            "/org-units",
            json!({"kind": "team", "name": "玄武区志愿服务队", "parent_id": xuanwu}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    // A remote item that may run alongside others, so that one volunteer
    // can hold several of the same evening's orders (up to 10).
    let item = a
        .post(
            &admin,
            "/service-items",
            json!({"code": "kill_calls", "org_unit_id": xuanwu, "name_zh": "电话陪伴",
                   "name_en": "Phone company", "mode": "remote", "qualifications": [],
                   "default_duration_minutes": 60, "offer_timeout_seconds": 3600,
                   "lane": "standard", "runs_alongside": true}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let mut volunteers = Vec::new();
    for phone in ["13700000001", "13700000002", "13700000003"] {
        let id = seed_volunteer(&store, phone, team, xuanwu).await;
        volunteers.push((id, a.login(phone).await));
    }
    a.kill();

    // One body for every submission: a retry under the same key must be
    // the same request.
    let start = chrono::Utc::now() + chrono::Duration::days(1);
    let rfc =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let body = json!({"item_id": item, "member_id": member, "contact_phone": PHONE,
                      "window_start": rfc(start),
                      "window_end": rfc(start + chrono::Duration::hours(4))});
    // Sessions live in the database: the same tokens serve every process.
    let told = Arc::new(Mutex::new(Told::default()));
    for _ in 0..kills {
        let server = Server::start(&db, &config);
        let client = tokio::spawn(client_until_killed(
            server.base.clone(),
            requester.clone(),
            volunteers.clone(),
            body.clone(),
            told.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(rng.between(50, 1500))).await;
        server.kill();
        client.await.expect("the client's own checks");
    }

    // A last process: every unanswered submission is retried under its key
    // and every answered one replays the same order.
    let last = Server::start(&db, &config);
    let orders = told.lock().unwrap().orders.clone();
    let mut acked = BTreeMap::new();
    for (key, id) in &orders {
        let again = last.order_with_key(&requester, key, &body).await;
        if let Some(id) = id {
            assert_eq!(again, *id, "{key} replays its order");
        }
        acked.insert(key.clone(), again);
    }
    last.kill();

    let ids: std::collections::BTreeSet<i64> = acked.values().copied().collect();
    assert_eq!(ids.len(), acked.len(), "one order per key: {acked:?}");
    let total = count(
        &store,
        "select cast(count(*) as bigint) from service_order where member_id = $1",
        member,
    )
    .await;
    assert_eq!(
        total,
        i64::try_from(ids.len()).unwrap(),
        "no order without an acknowledged key"
    );
    let mut assignments = 0;
    for &order in &ids {
        let per = |sql: &'static str| {
            let store = &store;
            async move { count(store, sql, order).await }
        };
        let submitted_events = per(
            "select cast(count(*) as bigint) from order_event where order_id = $1 and to_state = 'submitted'",
        )
        .await;
        let submitted_rows = per(
            "select cast(count(*) as bigint) from outbox_event where order_id = $1 and kind = 'order_submitted'",
        )
        .await;
        assert_eq!(
            (submitted_events, submitted_rows),
            (1, 1),
            "order {order}: one submit event and outbox row"
        );
        let accepted = per(
            "select cast(count(*) as bigint) from offer where order_id = $1 and state = 'accepted'",
        )
        .await;
        let assigned_events = per(
            "select cast(count(*) as bigint) from order_event where order_id = $1 and to_state = 'assigned'",
        )
        .await;
        let assigned_rows = per(
            "select cast(count(*) as bigint) from outbox_event where order_id = $1 and kind = 'order_assigned'",
        )
        .await;
        assert!(accepted <= 1, "order {order}: {accepted} accepted offers");
        assert_eq!(
            (assigned_events, assigned_rows),
            (accepted, accepted),
            "order {order}: an assignment with its event and outbox row, or none of them"
        );
        let o = store.order(order).await.unwrap().unwrap();
        if o.state == OrderState::Assigned {
            assert_eq!(
                accepted, 1,
                "order {order} is assigned without an accepted offer"
            );
            assert!(o.assignee_user_id.is_some());
        }
        assignments += accepted;
    }
    // Every accept and cancellation the client was told of holds.
    let (told_accepted, told_cancelled, retries) = {
        let t = told.lock().unwrap();
        (t.accepted.clone(), t.cancelled.clone(), t.retries)
    };
    for (order, volunteer) in &told_accepted {
        let offers = store.offers_of_order(*order).await.unwrap();
        assert!(
            offers
                .iter()
                .any(|o| o.state == "accepted" && o.volunteer_user_id == *volunteer),
            "order {order}: the accept told to volunteer {volunteer}"
        );
    }
    for order in &told_cancelled {
        let o = store.order(*order).await.unwrap().unwrap();
        assert_eq!(o.state, OrderState::Cancelled, "order {order}");
        let events = count(
            &store,
            "select cast(count(*) as bigint) from order_event where order_id = $1 and to_state = 'cancelled'",
            *order,
        )
        .await;
        assert_eq!(events, 1, "order {order}: one cancel event");
    }
    if db.url.starts_with("sqlite:") {
        let mut tx = store.begin_write().await.unwrap();
        let check: String = sqlx::query_scalar("pragma integrity_check")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(check, "ok");
    }
    store.close().await;
    eprintln!(
        "seed {seed}: {kills} SIGKILLs, {} orders ({retries} submissions sent again after a kill), {assignments} assignments ({} accepts and {} cancellations acknowledged), in {:.1} s",
        ids.len(),
        told_accepted.len(),
        told_cancelled.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(ids.len() >= kills, "the client got work done between kills");
}
