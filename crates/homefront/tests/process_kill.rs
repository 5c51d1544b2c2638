//! Notifications across a real process kill.
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
//! SQLite by default; `HOMEFRONT_TEST_DB=postgres` runs it on a fresh
//! PostgreSQL database (server at `HOMEFRONT_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`), as the API suite does.

use homefront_domain::notify::{Channel, DeliveryState};
use homefront_domain::order_state::OrderState;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use homefront_store::Store;
use homefront_store::outbox::DeliveryStatus;
use reqwest::Method;
use serde_json::{Value, json};

mod support;
use support::Db;

const ADMIN: &str = "13800000000";
const REQUESTER: &str = "13800000001";
const PASSWORD: &str = "correct horse battery";
const STREET: &str = "龙蟠中路1号";
const PHONE: &str = "13912345678";
/// `notify_lease_seconds` of the servers under test (the least allowed).
const LEASE_S: u64 = 15;
/// The send timeout of the delivery worker (`notify::channels::SEND_TIMEOUT`).
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The `homefront` command on the test's database and config file, with
/// no `HOMEFRONT_*` variable of the surrounding environment.
fn homefront(db: &Db, config: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_homefront"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("HOMEFRONT_") {
            cmd.env_remove(key);
        }
    }
    cmd.arg("--config")
        .arg(config)
        .arg("--database-url")
        .arg(&db.url)
        .env("HOMEFRONT_LOG", "warn");
    cmd
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run homefront");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running `homefront serve`.
struct Server {
    child: Option<Child>,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
    client: reqwest::Client,
}

impl Server {
    /// Starts `homefront serve` (bound to 127.0.0.1:0 by the config file)
    /// and waits for the address it announces on standard error.
    fn start(db: &Db, config: &Path) -> Server {
        let mut child = homefront(db, config)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn homefront serve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let lines = log.clone();
        // Drains standard error for the process's whole life (a full pipe
        // would block its logging).
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.split("Homefront is serving on ").nth(1) {
                    tx.send(url.trim().to_string()).ok();
                }
                lines.lock().unwrap().push(line);
            }
        });
        let mut server = Server {
            child: Some(child),
            base: String::new(),
            log,
            client: reqwest::Client::new(),
        };
        server.base = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("homefront serve did not start: {:?}", server.log));
        server
    }

    /// SIGKILL: no shutdown, no last delivery pass.
    fn kill(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        let status = child.wait().unwrap();
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

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
        if std::thread::panicking() {
            eprintln!("homefront serve at {} logged:", self.base);
            for line in self.log.lock().unwrap().iter() {
                eprintln!("  {line}");
            }
        }
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

/// Polls `probe` every 50 ms until it gives a value; fails after `timeout`.
async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
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
