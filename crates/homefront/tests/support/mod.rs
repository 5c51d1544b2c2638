//! Test support shared by the binary's tests: a fresh database per test,
//! the `homefront` command and a running `homefront serve`, and polling.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use sqlx::Connection;

/// A fresh database: a SQLite file in a temporary directory, or a new
/// PostgreSQL database dropped at the end. The directory also holds the
/// config file.
pub struct Db {
    /// Its URL.
    pub url: String,
    /// A temporary directory of its own (the SQLite file, config files).
    pub dir: PathBuf,
    postgres: Option<(String, String)>,
}

impl Db {
    /// Creates it (named after `prefix`).
    pub async fn new(prefix: &str) -> Db {
        let id = format!(
            "{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let dir = std::env::temp_dir().join(format!("homefront-{prefix}-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        if std::env::var("HOMEFRONT_TEST_DB").is_ok_and(|v| v == "postgres") {
            let admin_url = std::env::var("HOMEFRONT_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
            let name = format!("hf_{prefix}_{id}");
            let mut c = sqlx::PgConnection::connect(&admin_url)
                .await
                .expect("connect to the PostgreSQL test server");
            sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
                .execute(&mut c)
                .await
                .unwrap();
            let base = admin_url
                .rsplit_once('/')
                .map_or(admin_url.as_str(), |(b, _)| b);
            Db {
                url: format!("{base}/{name}"),
                dir,
                postgres: Some((admin_url, name)),
            }
        } else {
            Db {
                url: format!("sqlite://{}", dir.join("homefront.db").display()),
                dir,
                postgres: None,
            }
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
        if let Some((admin_url, name)) = self.postgres.take() {
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

/// The `homefront` command on the test's database and config file, with
/// no `HOMEFRONT_*` variable of the surrounding environment, logging at
/// `log` (a `HOMEFRONT_LOG` filter such as `warn`).
pub fn homefront(db: &Db, config: &Path, log: &str) -> Command {
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
        .env("HOMEFRONT_LOG", log);
    cmd
}

/// Runs `cmd` to its end; fails the test, with its output, unless it
/// exits 0.
pub fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run homefront");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running `homefront serve` child process and every line it wrote to
/// standard error. Dropped, it is killed; dropped while the test panics,
/// it prints what it logged.
pub struct Serve {
    child: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
    url: Mutex<mpsc::Receiver<String>>,
}

impl Serve {
    /// Spawns `cmd serve` (from [`homefront`]) and drains its standard
    /// error for the process's whole life (a full pipe would block its
    /// logging).
    pub fn start(mut cmd: Command) -> Serve {
        let mut child = cmd
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn homefront serve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.split("Homefront is serving on ").nth(1) {
                    tx.send(url.trim().to_string()).ok();
                }
                lines.lock().unwrap().push(line);
            }
        });
        Serve {
            child: Some(child),
            log,
            url: Mutex::new(rx),
        }
    }

    /// The base URL the process announces once it serves (waits up to
    /// `timeout`; fails the test after it).
    pub fn base_url(&self, timeout: Duration) -> String {
        self.url
            .lock()
            .unwrap()
            .recv_timeout(timeout)
            .unwrap_or_else(|_| panic!("homefront serve did not start: {:?}", self.log()))
    }

    /// Every line logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Whether a line logged so far contains `what`.
    pub fn logged(&self, what: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(what))
    }

    /// Waits for the process to end by itself (at most `timeout`; fails
    /// the test after it).
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let child = self.child.as_mut().unwrap();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "still running: {:?}", self.log);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// SIGKILL: no shutdown, no last worker pass. Returns how it ended.
    pub fn kill(mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
        if std::thread::panicking() {
            eprintln!("homefront serve logged:");
            for line in self.log.lock().unwrap().iter() {
                eprintln!("  {line}");
            }
        }
    }
}

/// Polls `probe` every 50 ms until it gives a value; fails after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
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

/// Polls `probe` every 50 ms until it holds; fails after `timeout`.
pub async fn until<F, Fut>(what: &str, timeout: Duration, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually(what, timeout, || {
        let held = probe();
        async move { held.await.then_some(()) }
    })
    .await
}
