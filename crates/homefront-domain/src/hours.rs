//! Service hours for the volunteer's ledger (SPEC.md, "Assignment" and
//! "Reporting": public figures come from the ledger, never typed).
//!
//! Hours are kept in whole minutes ([`ServiceMinutes`]) computed from full
//! UTC instants, so a session across midnight (22:00 → 06:00 = 480 min) or a
//! DST change is counted by elapsed time, never by wall-clock subtraction.

use std::fmt;
use std::iter::Sum;
use std::ops::Add;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::clock::Timestamp;

/// A non-negative number of whole service minutes. Serialized as a JSON
/// integer; stored as `BIGINT` minutes. Sums saturate instead of overflowing.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(try_from = "i64", into = "i64")]
pub struct ServiceMinutes(i64);

/// Why hours could not be computed or accepted.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum HoursError {
    /// check_out is earlier than check_in.
    #[error(
        "check_out ({}) is before check_in ({}); correct the check-out time",
        check_out.to_rfc3339(),
        check_in.to_rfc3339()
    )]
    CheckOutBeforeCheckIn {
        /// Check-in instant, epoch ms.
        check_in: Timestamp,
        /// The earlier check-out instant, epoch ms.
        check_out: Timestamp,
    },
    /// A negative minute count (e.g. from a database row or JSON).
    #[error(
        "service minutes must be zero or more, got {0}; record a reduction as a \
         coordinator adjustment instead"
    )]
    NegativeMinutes(i64),
}

impl HoursError {
    /// Stable machine code: `check_out_before_check_in` or `negative_minutes`.
    pub fn code(&self) -> &'static str {
        match self {
            HoursError::CheckOutBeforeCheckIn { .. } => "check_out_before_check_in",
            HoursError::NegativeMinutes(_) => "negative_minutes",
        }
    }
}

impl ServiceMinutes {
    /// No time.
    pub const ZERO: ServiceMinutes = ServiceMinutes(0);

    /// `minutes` whole minutes.
    ///
    /// # Errors
    /// [`HoursError::NegativeMinutes`] when `minutes < 0`.
    pub fn new(minutes: i64) -> Result<Self, HoursError> {
        if minutes < 0 {
            return Err(HoursError::NegativeMinutes(minutes));
        }
        Ok(Self(minutes))
    }

    /// From an unsigned count (catalogue durations); cannot fail.
    pub fn from_u32(minutes: u32) -> Self {
        Self(i64::from(minutes))
    }

    /// The number of minutes (≥ 0).
    pub fn minutes(self) -> i64 {
        self.0
    }

    /// Hours as a float for display and charts (`480` min → `8.0`); sum
    /// minutes first and convert last, so totals do not drift.
    pub fn to_hours_f64(self) -> f64 {
        self.0 as f64 / 60.0
    }
}

impl TryFrom<i64> for ServiceMinutes {
    type Error = HoursError;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<ServiceMinutes> for i64 {
    fn from(value: ServiceMinutes) -> Self {
        value.0
    }
}

impl Add for ServiceMinutes {
    type Output = ServiceMinutes;
    fn add(self, rhs: Self) -> Self {
        Self(self.0.saturating_add(rhs.0))
    }
}

impl Sum for ServiceMinutes {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::ZERO, Add::add)
    }
}

impl fmt::Display for ServiceMinutes {
    /// `"480 min"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} min", self.0)
    }
}

/// Elapsed service time from `check_in` to `check_out` (epoch-ms instants),
/// rounded to the **nearest** whole minute with exactly 30 s rounding up
/// (so rounding neither systematically gains nor loses time over many
/// sessions). Equal instants give 0.
///
/// # Errors
/// [`HoursError::CheckOutBeforeCheckIn`] when `check_out < check_in`.
pub fn minutes_between(
    check_in: Timestamp,
    check_out: Timestamp,
) -> Result<ServiceMinutes, HoursError> {
    if check_out < check_in {
        return Err(HoursError::CheckOutBeforeCheckIn {
            check_in,
            check_out,
        });
    }
    // i128: the difference of two extreme i64 instants does not fit in i64.
    let ms = i128::from(check_out.0) - i128::from(check_in.0);
    let minutes = (ms + 30_000) / 60_000;
    Ok(ServiceMinutes(i64::try_from(minutes).unwrap_or(i64::MAX)))
}

/// The instant at which an open session (check-in, no check-out) is capped:
/// `check_in + default_duration_minutes + grace_minutes`.
/// The worker closing forgotten sessions can select rows past it.
pub fn session_deadline(
    check_in: Timestamp,
    default_duration_minutes: u32,
    grace_minutes: u32,
) -> Timestamp {
    check_in.plus_minutes(i64::from(default_duration_minutes) + i64::from(grace_minutes))
}

/// For a session checked in at `check_in` and still open at `now`: `None`
/// while `now` is before [`session_deadline`]; from the deadline on (inclusive),
/// `Some` of the minutes to credit, which is the catalogue item's
/// `default_duration_minutes`. The grace is only tolerance for a late
/// check-out, not evidence of service, so it is not credited; a coordinator
/// may adjust with a reason. This keeps a forgotten check-out from growing
/// into a multi-day entry.
pub fn cap_open_session(
    check_in: Timestamp,
    default_duration_minutes: u32,
    grace_minutes: u32,
    now: Timestamp,
) -> Option<ServiceMinutes> {
    (now >= session_deadline(check_in, default_duration_minutes, grace_minutes))
        .then(|| ServiceMinutes::from_u32(default_duration_minutes))
}

/// Minutes to record for a check-out: [`minutes_between`] when the check-out
/// came before the [`session_deadline`], otherwise the cap of
/// [`cap_open_session`]. Gives the same answer whether the volunteer's late
/// check-out or the capping worker wins the race.
///
/// # Errors
/// [`HoursError::CheckOutBeforeCheckIn`] when `check_out < check_in`.
pub fn recorded_minutes(
    check_in: Timestamp,
    check_out: Timestamp,
    default_duration_minutes: u32,
    grace_minutes: u32,
) -> Result<ServiceMinutes, HoursError> {
    let actual = minutes_between(check_in, check_out)?;
    Ok(
        cap_open_session(check_in, default_duration_minutes, grace_minutes, check_out)
            .unwrap_or(actual),
    )
}

/// How a ledger entry came to be. Stored as snake_case TEXT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoursKind {
    /// From the volunteer's check-in and check-out (or capped by
    /// [`cap_open_session`]).
    Recorded,
    /// Entered after the fact by a coordinator, with a reason (e.g. work done
    /// offline and kept on a spreadsheet).
    Backfilled,
}

/// Text that names no [`HoursKind`].
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("unknown hours kind \"{0}\"; use one of recorded, backfilled")]
pub struct HoursKindError(pub String);

impl HoursKind {
    /// Every kind.
    pub const ALL: [HoursKind; 2] = [HoursKind::Recorded, HoursKind::Backfilled];

    /// The snake_case text stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            HoursKind::Recorded => "recorded",
            HoursKind::Backfilled => "backfilled",
        }
    }

    /// Parses the text of [`HoursKind::as_str`].
    ///
    /// # Errors
    /// [`HoursKindError`] with the offending text.
    pub fn parse(text: &str) -> Result<Self, HoursKindError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| HoursKindError(text.to_owned()))
    }
}

impl fmt::Display for HoursKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HoursKind {
    type Err = HoursKindError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: Timestamp = Timestamp(1_581_458_400_000); // 2020-02-11T22:00:00Z
    const MIN: i64 = Timestamp::MINUTE_MS;

    fn m(n: i64) -> ServiceMinutes {
        ServiceMinutes::new(n).unwrap()
    }

    #[test]
    fn overnight_session_is_480_minutes() {
        assert_eq!(T0.to_rfc3339(), "2020-02-11T22:00:00.000Z");
        assert_eq!(minutes_between(T0, T0.plus_minutes(480)), Ok(m(480)));
        assert_eq!(m(480).to_hours_f64(), 8.0);
    }

    #[test]
    fn session_ending_exactly_at_midnight() {
        let midnight = Timestamp(1_581_465_600_000); // 2020-02-12T00:00:00Z
        assert_eq!(minutes_between(T0, midnight), Ok(m(120)));
        assert_eq!(
            minutes_between(midnight, midnight),
            Ok(ServiceMinutes::ZERO)
        );
    }

    #[test]
    fn check_out_before_check_in_is_an_error() {
        let e = minutes_between(T0, T0.plus_ms(-1)).unwrap_err();
        assert_eq!(e.code(), "check_out_before_check_in");
        assert!(e.to_string().contains("correct the check-out time"), "{e}");
    }

    #[test]
    fn rounds_to_nearest_minute_half_up() {
        assert_eq!(minutes_between(T0, T0.plus_ms(29_999)), Ok(m(0)));
        assert_eq!(minutes_between(T0, T0.plus_ms(30_000)), Ok(m(1)));
        assert_eq!(minutes_between(T0, T0.plus_ms(MIN + 29_999)), Ok(m(1)));
        assert_eq!(minutes_between(T0, T0.plus_ms(MIN + 30_000)), Ok(m(2)));
    }

    #[test]
    fn extreme_instants_do_not_overflow() {
        let r = minutes_between(Timestamp(i64::MIN), Timestamp(i64::MAX)).unwrap();
        assert!(r.minutes() > 0);
    }

    #[test]
    fn open_session_is_capped_at_default_duration_after_grace() {
        let (dur, grace) = (60, 30);
        let deadline = session_deadline(T0, dur, grace);
        assert_eq!(deadline, T0.plus_minutes(90));
        assert_eq!(cap_open_session(T0, dur, grace, deadline.plus_ms(-1)), None);
        assert_eq!(cap_open_session(T0, dur, grace, deadline), Some(m(60)));
        // Days later it is still the same cap, not a multi-day entry.
        assert_eq!(
            cap_open_session(T0, dur, grace, T0.plus_days(3)),
            Some(m(60))
        );
    }

    #[test]
    fn recorded_minutes_caps_late_check_outs() {
        assert_eq!(recorded_minutes(T0, T0.plus_minutes(85), 60, 30), Ok(m(85)));
        assert_eq!(recorded_minutes(T0, T0.plus_minutes(90), 60, 30), Ok(m(60)));
        assert_eq!(recorded_minutes(T0, T0.plus_days(2), 60, 30), Ok(m(60)));
        assert!(recorded_minutes(T0, T0.plus_ms(-1), 60, 30).is_err());
    }

    #[test]
    fn minutes_are_never_negative() {
        assert_eq!(
            ServiceMinutes::new(-1),
            Err(HoursError::NegativeMinutes(-1))
        );
        assert_eq!(HoursError::NegativeMinutes(-1).code(), "negative_minutes");
        assert!(serde_json::from_str::<ServiceMinutes>("-5").is_err());
        assert_eq!(
            serde_json::from_str::<ServiceMinutes>("130").unwrap(),
            m(130)
        );
        assert_eq!(serde_json::to_string(&m(130)).unwrap(), "130");
    }

    #[test]
    fn sums_saturate() {
        let total: ServiceMinutes = [m(30), m(90), m(60)].into_iter().sum();
        assert_eq!(total, m(180));
        assert_eq!((m(i64::MAX) + m(1)).minutes(), i64::MAX);
    }

    #[test]
    fn hours_kind_text() {
        for k in HoursKind::ALL {
            assert_eq!(k.as_str().parse::<HoursKind>(), Ok(k));
            assert_eq!(
                serde_json::to_string(&k).unwrap(),
                format!("\"{}\"", k.as_str())
            );
        }
        assert_eq!(
            HoursKind::parse("manual").unwrap_err().to_string(),
            "unknown hours kind \"manual\"; use one of recorded, backfilled"
        );
    }

    proptest! {
        #[test]
        fn minutes_match_rounded_elapsed_time(start in -1_000_000_000_000i64..4_000_000_000_000, ms in 0i64..(40 * Timestamp::DAY_MS)) {
            let got = minutes_between(Timestamp(start), Timestamp(start + ms)).unwrap().minutes();
            prop_assert!(got >= 0);
            prop_assert!((got * MIN - ms).abs() <= MIN / 2);
            prop_assert!(minutes_between(Timestamp(start + ms + 1), Timestamp(start)).is_err());
        }

        /// Splitting a session changes the total by at most one minute.
        #[test]
        fn splitting_a_session_is_nearly_additive(a in 0i64..1_000_000_000, b in 0i64..1_000_000_000) {
            let (mid, end) = (T0.plus_ms(a), T0.plus_ms(a + b));
            let whole = minutes_between(T0, end).unwrap().minutes();
            let parts = minutes_between(T0, mid).unwrap().minutes() + minutes_between(mid, end).unwrap().minutes();
            prop_assert!((whole - parts).abs() <= 1);
        }
    }
}
