//! Time as the rest of the system sees it: UTC instants in epoch milliseconds,
//! read through an injectable [`Clock`] so that offer expiry, retention and
//! credential validity can be tested without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The zone times are shown in when no org unit gives one (an admin of
/// the whole deployment, an account that is not a volunteer): China
/// Standard Time, where Homefront's programmes run. Every org unit stores
/// its own (`org_unit.time_zone`), and that one wins wherever there is a
/// unit to take it from.
pub const DEFAULT_TIME_ZONE: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

/// A UTC instant in milliseconds since the Unix epoch (1970-01-01T00:00:00Z).
///
/// Stored as `BIGINT` in every database so one schema works on SQLite and
/// PostgreSQL.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// One minute in milliseconds.
    pub const MINUTE_MS: i64 = 60_000;
    /// One hour in milliseconds.
    pub const HOUR_MS: i64 = 3_600_000;
    /// One day (24 h) in milliseconds.
    pub const DAY_MS: i64 = 86_400_000;

    /// The instant in epoch milliseconds.
    pub fn epoch_ms(self) -> i64 {
        self.0
    }

    /// This instant plus `ms` milliseconds (negative moves back).
    #[must_use]
    pub fn plus_ms(self, ms: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }

    /// This instant plus `minutes` whole minutes.
    #[must_use]
    pub fn plus_minutes(self, minutes: i64) -> Timestamp {
        self.plus_ms(minutes.saturating_mul(Self::MINUTE_MS))
    }

    /// This instant plus `days` days of 24 h.
    #[must_use]
    pub fn plus_days(self, days: i64) -> Timestamp {
        self.plus_ms(days.saturating_mul(Self::DAY_MS))
    }

    /// The instant as a chrono UTC date-time; `None` when out of chrono's range.
    pub fn to_datetime(self) -> Option<DateTime<Utc>> {
        DateTime::<Utc>::from_timestamp_millis(self.0)
    }

    /// Converts a chrono date-time (any time zone) to an instant.
    pub fn from_datetime<Tz: chrono::TimeZone>(dt: &DateTime<Tz>) -> Timestamp {
        Timestamp(dt.timestamp_millis())
    }

    /// RFC 3339 text in UTC with millisecond precision, e.g. `2020-02-12T09:41:11.000Z`.
    pub fn to_rfc3339(self) -> String {
        self.to_datetime()
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_else(|| self.0.to_string())
    }
}

/// The source of "now" for everything time-dependent.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp(Utc::now().timestamp_millis())
    }
}

/// A clock that only moves when told to: for tests and simulations.
///
/// Clones share the same instant.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self(Arc::new(AtomicI64::new(start.0)))
    }

    /// Sets the clock to `at` (it may move backwards; tests decide).
    pub fn set(&self, at: Timestamp) {
        self.0.store(at.0, Ordering::SeqCst);
    }

    /// Moves the clock forward by `ms` milliseconds.
    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_clones_share_time() {
        let a = ManualClock::new(Timestamp(1_000));
        let b = a.clone();
        a.advance_ms(500);
        assert_eq!(b.now(), Timestamp(1_500));
        b.set(Timestamp(7));
        assert_eq!(a.now(), Timestamp(7));
    }

    #[test]
    fn rfc3339_is_utc_millis() {
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(Timestamp(0).plus_days(1).plus_minutes(1).0, 86_460_000);
    }
}
