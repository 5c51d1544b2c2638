//! `TestApp`: spawns the application on a fresh database and drives it.

use homefront_domain::locale::Locale;
use std::path::PathBuf;
use std::sync::Arc;

use homefront_domain::org::OrgKind;
use homefront_domain::{ManualClock, PhoneNumber, Role, Timestamp};
use homefront_server::{AppState, Config};
use homefront_store::Store;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::Connection;
use tokio::sync::OnceCell;

/// 2020-02-12T09:41:11Z, the day the programme was reported.
pub const T0: Timestamp = Timestamp(1_581_500_471_000);
/// Password of every seeded account.
pub const PASSWORD: &str = "correct horse battery";

enum TestDb {
    Sqlite(PathBuf),
    Postgres { admin_url: String, name: String },
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match self {
            TestDb::Sqlite(dir) => {
                std::fs::remove_dir_all(dir).ok();
            }
            TestDb::Postgres { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop runs inside the test's runtime: use a thread of our own.
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("runtime");
                    rt.block_on(async {
                        if let Ok(mut c) = sqlx::PgConnection::connect(&admin_url).await {
                            let sql = format!("drop database if exists {name} with (force)");
                            sqlx::query(sqlx::AssertSqlSafe(sql))
                                .execute(&mut c)
                                .await
                                .ok();
                        }
                    });
                })
                .join()
                .ok();
            }
        }
    }
}

/// Which engine this run of the suite uses.
pub fn use_postgres() -> bool {
    std::env::var("HOMEFRONT_TEST_DB").is_ok_and(|v| v == "postgres")
}

/// The application under test.
pub struct TestApp {
    /// The state the server runs with (for calling workers directly).
    state: AppState,
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub base: String,
    /// Direct store access for seeding and for checking what was written.
    pub store: Store,
    /// The injected clock.
    pub clock: ManualClock,
    /// A client without a cookie jar.
    pub client: reqwest::Client,
    /// The database URL (a second instance or a restart opens it again).
    pub database_url: String,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    _db: std::sync::Arc<TestDb>,
}

/// A signed-in API client (bearer token: not exposed to CSRF).
#[derive(Clone, Debug)]
pub struct Session {
    /// Bearer token.
    pub token: String,
    /// User id.
    pub user_id: i64,
}

async fn new_database() -> (String, TestDb) {
    let id = uuid::Uuid::now_v7().simple().to_string();
    if use_postgres() {
        let admin_url = std::env::var("HOMEFRONT_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("hf_test_{id}");
        let mut c = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("connect to the PostgreSQL test server");
        sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
            .execute(&mut c)
            .await
            .expect("create test database");
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(b, _)| b);
        let url = format!("{base}/{name}");
        (url, TestDb::Postgres { admin_url, name })
    } else {
        let dir = std::env::temp_dir().join(format!("homefront-test-{id}"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = format!("sqlite://{}", dir.join("homefront.db").display());
        (url, TestDb::Sqlite(dir))
    }
}

/// One Argon2id hash of [`PASSWORD`] shared by every seeded account, so the
/// suite hashes once instead of once per user.
pub async fn password_hash() -> String {
    static HASH: OnceCell<String> = OnceCell::const_new();
    HASH.get_or_init(|| async {
        homefront_server::auth::hash_password(PASSWORD.to_string())
            .await
            .expect("hash")
    })
    .await
    .clone()
}

impl TestApp {
    /// Spawns the app with default configuration.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(Config::default()).await
    }

    /// Spawns the app with `config` (its bind and database URL are replaced).
    pub async fn spawn_with(mut config: Config) -> TestApp {
        let (url, db) = new_database().await;
        config.database_url = url.clone();
        // Receivers in the tests listen on 127.0.0.1.
        config.notify_allow_private_urls = true;
        let store = Store::connect(&url).await.expect("connect");
        store.migrate().await.expect("migrate");
        let clock = ManualClock::new(T0);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = AppState::new(store.clone(), Arc::new(clock.clone()), config);
        let server = tokio::spawn(homefront_server::serve(
            listener,
            state.clone(),
            std::future::pending(),
        ));
        TestApp {
            state,
            base,
            store,
            clock,
            client: reqwest::Client::new(),
            database_url: url,
            server,
            _db: Arc::new(db),
        }
    }

    /// Another instance of the application on the same database (its own
    /// pool, broadcasts and listener), as a second `homefront serve` would be.
    pub async fn peer(&self) -> TestApp {
        let store = Store::connect(&self.database_url).await.expect("connect");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let config = (*self.state.config).clone();
        let state = AppState::new(store.clone(), Arc::new(self.clock.clone()), config);
        let server = tokio::spawn(homefront_server::serve(
            listener,
            state.clone(),
            std::future::pending(),
        ));
        let peer = TestApp {
            state,
            base,
            store,
            clock: self.clock.clone(),
            client: reqwest::Client::new(),
            database_url: self.database_url.clone(),
            server,
            _db: self._db.clone(),
        };
        peer.relay_listening().await;
        peer
    }

    /// Waits until this instance's PostgreSQL relay LISTENs (a notice sent
    /// now reaches its streams), so that a test does not race the relay's
    /// start: announces a change of account 0 (no such account) until this
    /// instance relays it. At once on SQLite, which has no relay.
    pub async fn relay_listening(&self) {
        if self.store.backend() != homefront_store::Backend::Postgres {
            return;
        }
        let mut heard = self.state.accounts.subscribe();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            self.store.announce_accounts(&[0]).await.expect("NOTIFY");
            let relayed = tokio::time::timeout(std::time::Duration::from_millis(250), async {
                while let Ok(a) = heard.recv().await {
                    if a.user_id == 0 {
                        return true;
                    }
                }
                false
            })
            .await;
            if relayed == Ok(true) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the instance's relay never LISTENed"
            );
        }
    }

    /// Stops this instance abruptly (its server task is aborted and its
    /// connections closed, with no worker pass run), then starts a fresh
    /// one on the same database: a crash and restart.
    pub async fn crash_and_restart(self) -> TestApp {
        self.server.abort();
        self.store.close().await;
        let next = self.peer().await;
        drop(self);
        next
    }

    /// The application state, to run a worker pass directly.
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Imports Jiangsu's 109 divisions.
    pub async fn import_jiangsu(&self) {
        self.store
            .import_divisions(32, T0.epoch_ms(), |_, _| {})
            .await
            .expect("import");
    }

    /// Org-unit id of a division by 6-digit adcode.
    pub async fn division(&self, adcode6: &str) -> i64 {
        self.store
            .org_unit_by_adcode(&format!("{adcode6}000000"))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("division {adcode6}"))
            .id
    }

    /// Creates an org unit of `kind` named `name` under the unit with id
    /// `parent`, directly in the store. Returns its id.
    pub async fn unit(&self, kind: OrgKind, name: &str, parent: i64) -> i64 {
        let parent = self.store.org_unit(parent).await.unwrap().unwrap();
        self.store
            .create_org_unit(
                homefront_store::org_units::NewOrgUnit {
                    kind,
                    name,
                    parent: &parent,
                    location: None,
                },
                T0.epoch_ms(),
            )
            .await
            .unwrap()
            .id
    }

    /// A team named `name` under the unit with id `parent`. Returns its id.
    pub async fn team(&self, parent: i64, name: &str) -> i64 {
        self.unit(OrgKind::Team, name, parent).await
    }

    /// Id of the catalogue's service item with `code` (e.g. `groceries`).
    pub async fn item(&self, code: &str) -> i64 {
        self.store
            .service_items(false)
            .await
            .unwrap()
            .into_iter()
            .find(|i| i.code == code)
            .unwrap_or_else(|| panic!("service item {code}"))
            .id
    }

    /// Creates an account with [`PASSWORD`] and the given grants, directly in
    /// the store. Returns the user id.
    pub async fn user(&self, phone: &str, grants: &[(Role, Option<i64>)]) -> i64 {
        let phone = PhoneNumber::parse(phone).unwrap();
        let user = self
            .store
            .create_user(
                &phone,
                "Test 测试",
                &password_hash().await,
                Locale::ZhCn,
                T0.0,
            )
            .await
            .unwrap();
        for (role, unit) in grants {
            self.store
                .grant_role(user.id, *role, *unit, T0.0)
                .await
                .unwrap();
        }
        user.id
    }

    /// Signs in over HTTP and returns the session.
    pub async fn login(&self, phone: &str) -> Session {
        let (status, body) = self
            .call(
                None,
                Method::POST,
                "/api/v1/auth/login",
                Some(serde_json::json!({"phone": phone, "password": PASSWORD})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login {phone}: {body}");
        Session {
            token: body["token"].as_str().unwrap().to_string(),
            user_id: body["user"]["id"].as_i64().unwrap(),
        }
    }

    /// Sends a request as `session` (bearer) and returns status and JSON body
    /// (`Value::Null` for an empty body).
    pub async fn call(
        &self,
        session: Option<&Session>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(s) = session {
            req = req.bearer_auth(&s.token);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    /// GET shorthand.
    pub async fn get(&self, session: &Session, path: &str) -> (StatusCode, Value) {
        self.call(Some(session), Method::GET, path, None).await
    }

    /// POST shorthand.
    pub async fn post(&self, session: &Session, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Some(session), Method::POST, path, Some(body))
            .await
    }
}

/// The usual world of a test, built in one expression: Jiangsu's divisions,
/// a county, a team under it and accounts with their roles, each signed
/// in, and household members placed by the first requester:
///
/// ```ignore
/// let w = World::jiangsu()
///     .county("320102")
///     .team("玄武区志愿服务队")
///     .requester("13800000001")
///     .coordinator("13800000002")
///     .volunteer("13800000004")
///     .member(json!({"name": "刘护士", "relation": "self", "adcode": "320102", "street": "龙蟠中路1号"}))
///     .build()
///     .await;
/// ```
///
/// Units are created first, then the accounts in the order they were
/// named, then the members in order.
pub struct World {
    /// The application.
    pub app: TestApp,
    /// Org-unit id of the county ([`WorldBuilder::county`]).
    pub county: i64,
    /// Id of the team ([`WorldBuilder::team`]).
    pub team: i64,
    /// Ids of the members, in the order they were named.
    pub members: Vec<i64>,
    accounts: Vec<(String, i64, Session)>,
}

/// What [`World::build`](WorldBuilder::build) makes.
pub struct WorldBuilder {
    config: Config,
    county: Option<String>,
    team: Option<String>,
    accounts: Vec<(String, Grant)>,
    members: Vec<Value>,
}

/// A role an account of the world holds.
enum Grant {
    Admin,
    Requester,
    /// Coordinator of the county.
    Coordinator,
    /// Coordinator of the division with this 6-digit adcode.
    CoordinatorOf(String),
    /// Volunteer of the team.
    Volunteer,
}

impl World {
    /// Starts a world on a fresh app with Jiangsu's divisions imported.
    pub fn jiangsu() -> WorldBuilder {
        WorldBuilder {
            config: Config::default(),
            county: None,
            team: None,
            accounts: Vec::new(),
            members: Vec::new(),
        }
    }

    /// The session of the account with `phone`.
    pub fn session(&self, phone: &str) -> Session {
        self.account(phone).2.clone()
    }

    /// The user id of the account with `phone`.
    pub fn user_id(&self, phone: &str) -> i64 {
        self.account(phone).1
    }

    fn account(&self, phone: &str) -> &(String, i64, Session) {
        self.accounts
            .iter()
            .find(|(p, ..)| p == phone)
            .unwrap_or_else(|| panic!("no account {phone} in this world"))
    }
}

impl WorldBuilder {
    /// Runs the app with `config` (its bind and database URL are replaced).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The county (6-digit adcode) the team and the coordinator belong to.
    pub fn county(mut self, adcode6: &str) -> Self {
        self.county = Some(adcode6.to_string());
        self
    }

    /// A team named `name` under the county.
    pub fn team(mut self, name: &str) -> Self {
        self.team = Some(name.to_string());
        self
    }

    /// An admin.
    pub fn admin(mut self, phone: &str) -> Self {
        self.accounts.push((phone.to_string(), Grant::Admin));
        self
    }

    /// A requester (hospital staff).
    pub fn requester(mut self, phone: &str) -> Self {
        self.accounts.push((phone.to_string(), Grant::Requester));
        self
    }

    /// A coordinator of the county.
    pub fn coordinator(mut self, phone: &str) -> Self {
        self.accounts.push((phone.to_string(), Grant::Coordinator));
        self
    }

    /// A coordinator of the division with 6-digit adcode `adcode6`.
    pub fn coordinator_of(mut self, adcode6: &str, phone: &str) -> Self {
        self.accounts
            .push((phone.to_string(), Grant::CoordinatorOf(adcode6.to_string())));
        self
    }

    /// An account with the volunteer role on the team (no profile: see the
    /// dispatch tests for vetted, credentialed volunteers).
    pub fn volunteer(mut self, phone: &str) -> Self {
        self.accounts.push((phone.to_string(), Grant::Volunteer));
        self
    }

    /// A household member the first requester adds over HTTP (the body of
    /// `POST /api/v1/household/members`); must answer 201.
    pub fn member(mut self, body: Value) -> Self {
        self.members.push(body);
        self
    }

    /// Spawns the app and creates the world.
    pub async fn build(self) -> World {
        let app = TestApp::spawn_with(self.config).await;
        app.import_jiangsu().await;
        let county = match &self.county {
            Some(code) => app.division(code).await,
            None => 0,
        };
        let team = match &self.team {
            Some(name) => {
                assert!(county != 0, "a team needs a county");
                app.team(county, name).await
            }
            None => 0,
        };
        let mut ids = Vec::new();
        for (phone, grant) in &self.accounts {
            let grant = match grant {
                Grant::Admin => (Role::Admin, None),
                Grant::Requester => (Role::Requester, None),
                Grant::Coordinator => {
                    assert!(county != 0, "a coordinator of the county needs a county");
                    (Role::Coordinator, Some(county))
                }
                Grant::CoordinatorOf(code) => (Role::Coordinator, Some(app.division(code).await)),
                Grant::Volunteer => {
                    assert!(team != 0, "a volunteer needs a team");
                    (Role::Volunteer, Some(team))
                }
            };
            ids.push(app.user(phone, &[grant]).await);
        }
        let mut accounts = Vec::new();
        for ((phone, _), id) in self.accounts.iter().zip(ids) {
            accounts.push((phone.clone(), id, app.login(phone).await));
        }
        let mut members = Vec::new();
        if !self.members.is_empty() {
            let requester = self
                .accounts
                .iter()
                .position(|(_, g)| matches!(g, Grant::Requester))
                .expect("members need a requester");
            let session = &accounts[requester].2;
            for body in self.members {
                let (status, m) = app.post(session, "/api/v1/household/members", body).await;
                assert_eq!(status, StatusCode::CREATED, "{m}");
                members.push(m["id"].as_i64().unwrap());
            }
        }
        World {
            app,
            county,
            team,
            members,
            accounts,
        }
    }
}

/// Counts the SQL statements each HTTP request runs: a tracing layer that
/// files every `sqlx::query` event (sqlx logs each statement it runs,
/// with its text) under the `x-request-id` of the `http` span around it.
/// The SQLite driver's thread and the group-commit writer run statements
/// inside the caller's span, so they count for the request too.
pub mod statements {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id};
    use tracing::{Event, Subscriber};
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::registry::LookupSpan;
    use tracing_subscriber::{Layer, Registry};

    fn counts() -> &'static Mutex<HashMap<String, Vec<String>>> {
        static COUNTS: OnceLock<Mutex<HashMap<String, Vec<String>>>> = OnceLock::new();
        COUNTS.get_or_init(Default::default)
    }

    struct RequestId(String);

    #[derive(Default)]
    struct Find {
        name: &'static str,
        value: Option<String>,
    }

    impl Visit for Find {
        fn record_str(&mut self, field: &Field, value: &str) {
            if field.name() == self.name {
                self.value = Some(value.to_string());
            }
        }
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == self.name {
                self.value = Some(format!("{value:?}").trim_matches('"').to_string());
            }
        }
    }

    struct Counter;

    impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Counter {
        fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
            if attrs.metadata().name() != "http" {
                return;
            }
            let mut f = Find {
                name: "request_id",
                value: None,
            };
            attrs.record(&mut f);
            if let (Some(rid), Some(span)) = (f.value, ctx.span(id)) {
                span.extensions_mut().insert(RequestId(rid));
            }
        }

        fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
            if event.metadata().target() != "sqlx::query" {
                return;
            }
            let Some(scope) = ctx.event_scope(event) else {
                return;
            };
            for span in scope {
                if let Some(RequestId(rid)) = span.extensions().get::<RequestId>() {
                    let mut f = Find {
                        name: "db.statement",
                        value: None,
                    };
                    event.record(&mut f);
                    let mut s = Find {
                        name: "summary",
                        value: None,
                    };
                    event.record(&mut s);
                    let text = f
                        .value
                        .filter(|t| !t.is_empty())
                        .or(s.value)
                        .unwrap_or_default();
                    counts()
                        .lock()
                        .unwrap()
                        .entry(rid.clone())
                        .or_default()
                        .push(text);
                    return;
                }
            }
        }
    }

    /// Installs the counting layer, and the log capture of [`super::logs`],
    /// as the global subscriber (once).
    pub fn install() {
        static ONCE: OnceLock<()> = OnceLock::new();
        ONCE.get_or_init(|| {
            let filter = Targets::new()
                .with_default(tracing::Level::INFO)
                .with_target("sqlx::query", tracing::Level::DEBUG);
            let capture = tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(|| super::logs::Writer)
                .with_filter(tracing_subscriber::filter::filter_fn(|_| {
                    super::logs::capturing()
                }));
            let subscriber = Registry::default()
                .with(Counter.with_filter(filter))
                .with(capture);
            // Another test may have installed one first: then counts stay empty
            // and the test using them fails visibly.
            let _ = tracing::subscriber::set_global_default(subscriber);
        });
    }

    /// The statements run for the request sent with `x-request-id: rid`,
    /// one entry per statement (a text of several sent in one round trip
    /// counts each).
    pub fn of(rid: &str) -> Vec<String> {
        counts()
            .lock()
            .unwrap()
            .remove(rid)
            .unwrap_or_default()
            .iter()
            .flat_map(|text| text.split(';'))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// Whether a statement only steers a transaction (BEGIN, COMMIT,
    /// SAVEPOINT, RELEASE, ROLLBACK).
    pub fn is_transaction_control(sql: &str) -> bool {
        let first = sql.split_whitespace().next().unwrap_or("").to_lowercase();
        matches!(
            first.as_str(),
            "begin" | "commit" | "rollback" | "savepoint" | "release" | "end"
        )
    }
}

/// Every log line the process writes, at every level and from every
/// thread, while a test captures: a formatting layer of the global
/// subscriber ([`statements::install`]) that writes only between
/// [`logs::start`] and [`logs::stop`].
pub mod logs {
    use std::io::Write;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    static CAPTURING: AtomicBool = AtomicBool::new(false);
    static LINES: Mutex<Vec<u8>> = Mutex::new(Vec::new());

    /// Whether a capture is on.
    pub(super) fn capturing() -> bool {
        CAPTURING.load(Ordering::SeqCst)
    }

    /// Appends to the captured text.
    pub(super) struct Writer;

    impl Write for Writer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            LINES.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Starts capturing every event at TRACE.
    pub fn start() {
        super::statements::install();
        LINES.lock().unwrap().clear();
        CAPTURING.store(true, Ordering::SeqCst);
    }

    /// Stops and returns what was written since [`start`].
    pub fn stop() -> String {
        CAPTURING.store(false, Ordering::SeqCst);
        String::from_utf8_lossy(&std::mem::take(&mut *LINES.lock().unwrap())).into_owned()
    }
}
