//! Configuration, layered: defaults in code → `homefront.toml` →
//! `HOMEFRONT_*` environment variables → command-line flags.
//!
//! Layering uses `figment`, the layered-configuration library of the Rocket
//! project, rather than hand-written merging.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Everything `homefront serve` needs to know.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on. Default `127.0.0.1:8080`.
    pub bind: SocketAddr,
    /// `sqlite://FILE` (default `sqlite://homefront.db`, created on first
    /// start) or `postgres://USER[:PASSWORD]@HOST:PORT/DB`.
    pub database_url: String,
    /// Session lifetime in hours. Default 12 (a hospital shift).
    pub session_hours: i64,
    /// Mark session cookies `Secure` (serve behind HTTPS). Default false so
    /// that a local install works over plain HTTP.
    pub secure_cookies: bool,
    /// Days a "remember this phone" sign-in lasts, for requesters and
    /// volunteers (coordinators, liaisons and admins keep `session_hours`).
    /// Signing out everywhere ends it. Default 30.
    pub remember_days: i64,
    /// Failed sign-ins a (phone, client address) pair may make, since its
    /// last success, before each further attempt must wait (exponential
    /// back-off). Default 3.
    pub login_free_failures: i64,
    /// The first back-off wait in seconds; it doubles with every further
    /// failure of the pair (30 s, 60 s, 2 min, ...). Default 30.
    pub login_backoff_base_seconds: i64,
    /// The longest back-off wait in minutes. Default 15.
    pub login_backoff_max_minutes: i64,
    /// Ceiling of failed sign-ins per phone number from all addresses
    /// within the window, past which every attempt is refused until the
    /// window passes or a coordinator unlocks the account. Looser than the
    /// back-off, which keeps one address far below it. Default 30.
    pub login_max_failures_per_account: i64,
    /// Distinct phone numbers that may fail to sign in from one client
    /// address within the window before that address is refused (credential
    /// stuffing). Counts accounts, not attempts, so one person's typos
    /// behind a shared hospital address do not lock out colleagues.
    /// Default 50.
    pub login_max_accounts_per_ip: i64,
    /// Throttling window in minutes. Default 60.
    pub login_window_minutes: i64,
    /// Trust the first `X-Forwarded-For` address as the client IP (only
    /// behind a reverse proxy you run). Default false.
    pub trust_forwarded_for: bool,
    /// Days after an order ends (completed, cancelled, unfulfilled) before
    /// its street address, phone, coordinates and notes are purged. Default 30.
    pub retention_days: i64,
    /// Minutes past an item's default duration before an open check-in is
    /// flagged and capped. Default 60.
    pub session_grace_minutes: u32,
    /// Days after completion before an unconfirmed order is confirmed
    /// automatically. Default 3.
    pub auto_confirm_days: i64,
    /// Seconds between dispatcher passes (it also runs at once when an
    /// order arrives or an offer is declined). Default 5.
    pub dispatch_interval_seconds: u64,
    /// Attempts per notification delivery (group bot, webhook) before it is
    /// marked dead and shown on the coordinators' board. Default 8.
    pub notify_max_attempts: u32,
    /// First retry delay in seconds; doubles on each failure
    /// (10 s, 20 s, 40 s, ...). Default 10.
    pub notify_retry_base_seconds: u64,
    /// Longest retry delay in seconds. Default 3600.
    pub notify_retry_max_seconds: u64,
    /// Milliseconds between delivery passes when nothing wakes the worker
    /// (it also runs at once after a change in this process). Default 1000.
    pub notify_poll_ms: u64,
    /// Seconds a delivery worker holds a delivery it is sending. Only after
    /// that may another worker, or this one after a crash and restart, send
    /// it again (with the same delivery id). Values under 15 (the 10 s send
    /// timeout plus time to record the outcome) are raised to 15. Default 120.
    pub notify_lease_seconds: u64,
    /// Messages per minute to one group bot; WeCom and DingTalk both allow
    /// 20. Messages over the limit wait their turn. Default 20.
    pub notify_bot_rate_per_minute: i64,
    /// Days before a credential's expiry at which its holder is told. Default 14.
    pub credential_notice_days: u32,
    /// Accept group-bot and webhook addresses on this machine or a private
    /// network (`http://`, loopback, 10.x, 192.168.x, link-local, ...) and
    /// WeCom/DingTalk bots on other hosts. Off by default, so a coordinator
    /// cannot make the server call internal services; turn it on only for
    /// an integration inside the operator's own network, or for tests.
    pub notify_allow_private_urls: bool,
    /// Contact of the operator sent to push services with every Web Push
    /// message (the VAPID `sub` claim, RFC 8292 §2.1): a `mailto:` or
    /// `https:` URI. Some push services (Apple's) refuse `localhost` here:
    /// set a real address in production. Default `mailto:admin@localhost`.
    pub push_subject: String,
    /// The VAPID private key (RFC 8292): base64url of a 32-byte P-256
    /// scalar. Default: none, and a key pair is made on first start and
    /// kept in the database (shared by every instance). Browsers subscribe
    /// to the public key, so changing it silences every subscribed phone
    /// until its holder opens the volunteer page again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vapid_private_key: Option<String>,
    /// How old a check-in or check-out recorded on a phone without network
    /// may be when it reaches the server, in hours; older ones are refused
    /// (422 `recorded_at_too_old`) for a coordinator to backfill. Default 24.
    pub offline_max_hours: i64,
    /// How long before an order's window the assigned volunteer may check
    /// in, in minutes; earlier is refused (409 `check_in_too_early`), so
    /// hours start when the service can. Default 30.
    pub check_in_lead_minutes: i64,
    /// Address of the separate Prometheus metrics listener (`GET
    /// /metrics`), e.g. `127.0.0.1:9090`. Default: none (no metrics served).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_bind: Option<SocketAddr>,
    /// Log format on standard error: `text` (default, for people) or `json`
    /// (one JSON object per line, for log collectors).
    pub log_format: LogFormat,
    /// Each escalation level multiplies every volunteer's service radius by
    /// this factor for the order (level 2, the city queue: × factor²).
    /// Values below 1 count as 1. Default 1.5 (10 km → 15, 22.5, 33.75 km).
    pub escalation_radius_factor: f64,
    /// Minutes before its window at which an unaccepted priority-lane order
    /// goes to the top (province) queue, whatever its lane deadline says.
    /// Default 5.
    pub escalation_lead_minutes_priority: i64,
    /// The same for the urgent lane. Default 10.
    pub escalation_lead_minutes_urgent: i64,
    /// The same for the standard lane. Default 10.
    pub escalation_lead_minutes_standard: i64,
    /// Rank-aware acceptance in broadcast mode: seconds an accept from a
    /// lower-ranked candidate is held at most while better-ranked ones are
    /// still deciding; then the best-ranked accept wins. 0 turns it off
    /// (first accept wins). Default 90.
    pub broadcast_hold_seconds: u64,
}

/// How logs are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: homefront_store::DEFAULT_DATABASE_URL.to_string(),
            session_hours: 12,
            secure_cookies: false,
            remember_days: 30,
            login_free_failures: 3,
            login_backoff_base_seconds: 30,
            login_backoff_max_minutes: 15,
            login_max_failures_per_account: 30,
            login_max_accounts_per_ip: 50,
            login_window_minutes: 60,
            trust_forwarded_for: false,
            retention_days: 30,
            session_grace_minutes: 60,
            auto_confirm_days: 3,
            dispatch_interval_seconds: 5,
            notify_max_attempts: 8,
            notify_retry_base_seconds: 10,
            notify_retry_max_seconds: 3600,
            notify_poll_ms: 1000,
            notify_lease_seconds: 120,
            notify_bot_rate_per_minute: 20,
            notify_allow_private_urls: false,
            credential_notice_days: 14,
            push_subject: "mailto:admin@localhost".to_string(),
            vapid_private_key: None,
            offline_max_hours: 24,
            check_in_lead_minutes: 30,
            metrics_bind: None,
            log_format: LogFormat::Text,
            escalation_radius_factor: 1.5,
            escalation_lead_minutes_priority: homefront_domain::escalation::Leads::default()
                .priority,
            escalation_lead_minutes_urgent: homefront_domain::escalation::Leads::default().urgent,
            escalation_lead_minutes_standard: homefront_domain::escalation::Leads::default()
                .standard,
            broadcast_hold_seconds: 90,
        }
    }
}

impl Config {
    /// The escalation leads per lane, in minutes.
    pub fn escalation_leads(&self) -> homefront_domain::escalation::Leads {
        homefront_domain::escalation::Leads {
            priority: self.escalation_lead_minutes_priority,
            urgent: self.escalation_lead_minutes_urgent,
            standard: self.escalation_lead_minutes_standard,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field(
                "database_url",
                &homefront_store::redact_url(&self.database_url),
            )
            .field("session_hours", &self.session_hours)
            .field("secure_cookies", &self.secure_cookies)
            .field("remember_days", &self.remember_days)
            .field("login_free_failures", &self.login_free_failures)
            .field(
                "login_backoff_base_seconds",
                &self.login_backoff_base_seconds,
            )
            .field("login_backoff_max_minutes", &self.login_backoff_max_minutes)
            .field(
                "login_max_failures_per_account",
                &self.login_max_failures_per_account,
            )
            .field("login_max_accounts_per_ip", &self.login_max_accounts_per_ip)
            .field("login_window_minutes", &self.login_window_minutes)
            .field("trust_forwarded_for", &self.trust_forwarded_for)
            .field("retention_days", &self.retention_days)
            .field("session_grace_minutes", &self.session_grace_minutes)
            .field("auto_confirm_days", &self.auto_confirm_days)
            .field("dispatch_interval_seconds", &self.dispatch_interval_seconds)
            .field("notify_max_attempts", &self.notify_max_attempts)
            .field("notify_retry_base_seconds", &self.notify_retry_base_seconds)
            .field("notify_retry_max_seconds", &self.notify_retry_max_seconds)
            .field("notify_poll_ms", &self.notify_poll_ms)
            .field("notify_lease_seconds", &self.notify_lease_seconds)
            .field(
                "notify_bot_rate_per_minute",
                &self.notify_bot_rate_per_minute,
            )
            .field("credential_notice_days", &self.credential_notice_days)
            .field("notify_allow_private_urls", &self.notify_allow_private_urls)
            .field("push_subject", &self.push_subject)
            .field(
                "vapid_private_key",
                &self.vapid_private_key.as_ref().map(|_| "***"),
            )
            .field("offline_max_hours", &self.offline_max_hours)
            .field("check_in_lead_minutes", &self.check_in_lead_minutes)
            .field("metrics_bind", &self.metrics_bind)
            .field("log_format", &self.log_format)
            .field("escalation_radius_factor", &self.escalation_radius_factor)
            .field(
                "escalation_lead_minutes_priority",
                &self.escalation_lead_minutes_priority,
            )
            .field(
                "escalation_lead_minutes_urgent",
                &self.escalation_lead_minutes_urgent,
            )
            .field(
                "escalation_lead_minutes_standard",
                &self.escalation_lead_minutes_standard,
            )
            .field("broadcast_hold_seconds", &self.broadcast_hold_seconds)
            .finish()
    }
}

/// Values given on the command line; `None` leaves the lower layers' value.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Overrides {
    /// `--bind`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<SocketAddr>,
    /// `--database-url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// `--metrics-bind`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_bind: Option<SocketAddr>,
    /// `--log-format`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
}

impl Config {
    /// Loads the layers. `file` is the TOML file (a missing file is not an
    /// error); environment variables are `HOMEFRONT_BIND`,
    /// `HOMEFRONT_DATABASE_URL`, ... (the field names upper-cased).
    ///
    /// # Errors
    /// A message naming the bad key and its source when a value does not parse.
    pub fn load(file: &Path, overrides: &Overrides) -> Result<Config, Box<figment::Error>> {
        // Only the configuration's own keys are read from the environment:
        // other HOMEFRONT_* variables (HOMEFRONT_LOG, HOMEFRONT_ADMIN_PASSWORD,
        // the test suite's) belong to other parts of the program.
        let keys = Config::keys();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(file))
            .merge(Env::prefixed("HOMEFRONT_").only(&keys))
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(Box::new)
    }

    /// The configuration keys (field names), as in `homefront.toml`.
    pub fn keys() -> Vec<String> {
        match toml::Value::try_from(Config::default()) {
            Ok(toml::Value::Table(t)) => t.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// The defaults as a commented TOML document (`homefront config --print-default`).
    pub fn default_toml() -> String {
        let body = toml::to_string_pretty(&Config::default()).unwrap_or_default();
        format!(
            "# homefront.toml: every key is optional; the values below are the defaults.\n\
             # Each key can also be set as HOMEFRONT_<KEY> in the environment\n\
             # (e.g. HOMEFRONT_DATABASE_URL), and bind / database_url by flags.\n\n{body}"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_toml_round_trips() {
        let parsed: Config = toml::from_str(&Config::default_toml()).unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn debug_redacts_the_database_password() {
        let c = Config {
            database_url: "postgres://app:hunter2@db/hf".into(),
            ..Config::default()
        };
        let text = format!("{c:?}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    // figment::Jail's closure must return figment::Error, which is large.
    #[allow(clippy::result_large_err)]
    fn other_homefront_variables_are_not_configuration() {
        let keys = Config::keys();
        assert!(keys.contains(&"database_url".to_string()));
        assert!(keys.contains(&"bind".to_string()));
        assert!(!keys.contains(&"admin_password".to_string()));
        // figment::Jail isolates the process environment for the test.
        figment::Jail::expect_with(|jail| {
            jail.set_env("HOMEFRONT_ADMIN_PASSWORD", "not a key");
            jail.set_env("HOMEFRONT_LOG", "debug");
            jail.set_env("HOMEFRONT_SESSION_HOURS", "6");
            let c = Config::load(Path::new("absent.toml"), &Overrides::default())
                .map_err(|e| e.to_string())?;
            assert_eq!(c.session_hours, 6);
            Ok(())
        });
    }

    #[test]
    // figment::Jail's closure must return figment::Error, which is large.
    #[allow(clippy::result_large_err)]
    fn flags_override_file_values() {
        // Inside a Jail: the environment is process-wide, and another test
        // sets HOMEFRONT_* variables (Jails run one at a time).
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "homefront.toml",
                "bind = \"0.0.0.0:9000\"\nsession_hours = 8\n",
            )?;
            let file = Path::new("homefront.toml");
            let c = Config::load(file, &Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(c.bind.port(), 9000);
            assert_eq!(c.session_hours, 8);
            let o = Overrides {
                bind: Some("127.0.0.1:7000".parse().unwrap()),
                ..Overrides::default()
            };
            let c = Config::load(file, &o).map_err(|e| e.to_string())?;
            assert_eq!(c.bind.port(), 7000);
            assert_eq!(c.session_hours, 8);
            Ok(())
        });
    }
}
