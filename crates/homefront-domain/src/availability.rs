//! When a volunteer can be offered work: an on-duty toggle, weekly
//! availability windows in local time, and leave periods.
//!
//! # Semantics (SPEC.md, Dispatch: "on duty (or available in the window)")
//! - **On duty** ([`Availability::on_duty_since`] is set, at or before the
//!   instant asked about) means "available now", overriding the weekly
//!   windows: the volunteer may be offered any order, whatever its time
//!   window, since they see the window before accepting.
//! - **Off duty** is not "do not disturb": an off-duty volunteer may still
//!   be offered an order whose whole time window lies inside their weekly
//!   windows. A volunteer who wants no offers in a declared window takes leave.
//! - **Leave** always wins: nobody is available at an instant inside a leave
//!   period, nor for an order whose window overlaps one.
//!
//! The dispatcher calls [`Availability::available_for_order`]; the
//! point-in-time view ("who is available at 10:00?") is [`is_available_at`].
//!
//! # Time zones and DST
//! Weekly windows are wall-clock times in the organisation's zone (a
//! `chrono_tz::Tz`, normally `Asia/Shanghai`, UTC+8 without DST). Each
//! occurrence of a window is turned into instants: an ambiguous local time
//! (clocks fall back) takes the **earliest** instant, so a window ending in
//! the repeated hour ends at its first pass; a nonexistent local time (clocks
//! spring forward) takes the first instant after the gap, i.e. the
//! transition itself. All containment checks use these instants, so the
//! point and interval views always agree.

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::clock::Timestamp;

/// A half-open interval of instants `[start, end)` in epoch ms with
/// `start < end`: an order's service window, or a query range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawWindow")]
pub struct TimeWindow {
    start: Timestamp,
    end: Timestamp,
}

#[derive(Deserialize)]
struct RawWindow {
    start: Timestamp,
    end: Timestamp,
}

impl TryFrom<RawWindow> for TimeWindow {
    type Error = AvailabilityError;
    fn try_from(r: RawWindow) -> Result<Self, Self::Error> {
        TimeWindow::new(r.start, r.end)
    }
}

/// An interval whose end is not after its start. API code
/// `invalid_time_window` (422).
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error(
    "{field}: the end ({}) must be after the start ({}); swap or correct the times",
    end.to_rfc3339(),
    start.to_rfc3339()
)]
pub struct AvailabilityError {
    /// Which interval: `time_window` or `leave`.
    pub field: &'static str,
    /// The given start, epoch ms.
    pub start: Timestamp,
    /// The given end, epoch ms.
    pub end: Timestamp,
}

impl AvailabilityError {
    /// Stable machine code: `invalid_time_window`.
    pub fn code(&self) -> &'static str {
        "invalid_time_window"
    }
}

impl TimeWindow {
    /// The interval `[start, end)`.
    ///
    /// # Errors
    /// [`AvailabilityError`] (field `time_window`) when `end <= start`.
    pub fn new(start: Timestamp, end: Timestamp) -> Result<Self, AvailabilityError> {
        if end <= start {
            return Err(AvailabilityError {
                field: "time_window",
                start,
                end,
            });
        }
        Ok(Self { start, end })
    }

    /// First instant inside (inclusive), epoch ms.
    pub fn start(&self) -> Timestamp {
        self.start
    }

    /// First instant after (exclusive), epoch ms.
    pub fn end(&self) -> Timestamp {
        self.end
    }

    /// Whether `at` lies in `[start, end)`.
    pub fn contains(&self, at: Timestamp) -> bool {
        self.start <= at && at < self.end
    }

    /// Whether the two half-open intervals share an instant (touching ends do not).
    pub fn overlaps(&self, other: &TimeWindow) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// What one assignment holds of a volunteer's time: its order's window,
/// and whether it leaves room for other work then. Two live assignments of
/// one volunteer may not [`Booking::clashes`]: a volunteer is in one place
/// at a time, and on one call at a time, unless the catalogue marks a
/// remote item as able to run alongside other work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Booking {
    window: TimeWindow,
    alongside: bool,
}

impl Booking {
    /// The booking of an order with service window `window`: on site
    /// (`onsite`), or remote; `runs_alongside` is the item's catalogue flag,
    /// which only a remote item can use.
    pub fn new(window: TimeWindow, onsite: bool, runs_alongside: bool) -> Self {
        Self {
            window,
            alongside: runs_alongside && !onsite,
        }
    }

    /// The order's service window.
    pub fn window(&self) -> TimeWindow {
        self.window
    }

    /// Whether one volunteer may not hold both: their windows overlap
    /// (half-open: one ending as the other starts does not) and neither
    /// runs alongside other work.
    pub fn clashes(&self, other: &Booking) -> bool {
        !self.alongside && !other.alongside && self.window.overlaps(&other.window)
    }
}

/// A leave period: the volunteer is unavailable on `[from, to)` (epoch ms),
/// whatever the duty toggle and weekly windows say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawLeave")]
pub struct Leave {
    from: Timestamp,
    to: Timestamp,
}

#[derive(Deserialize)]
struct RawLeave {
    from: Timestamp,
    to: Timestamp,
}

impl TryFrom<RawLeave> for Leave {
    type Error = AvailabilityError;
    fn try_from(r: RawLeave) -> Result<Self, Self::Error> {
        Leave::new(r.from, r.to)
    }
}

impl Leave {
    /// Leave on `[from, to)`.
    ///
    /// # Errors
    /// [`AvailabilityError`] (field `leave`) when `to <= from`.
    pub fn new(from: Timestamp, to: Timestamp) -> Result<Self, AvailabilityError> {
        if to <= from {
            return Err(AvailabilityError {
                field: "leave",
                start: from,
                end: to,
            });
        }
        Ok(Self { from, to })
    }

    /// First instant of leave (inclusive), epoch ms.
    pub fn from(&self) -> Timestamp {
        self.from
    }

    /// First instant back (exclusive), epoch ms.
    pub fn to(&self) -> Timestamp {
        self.to
    }

    fn window(&self) -> TimeWindow {
        TimeWindow {
            start: self.from,
            end: self.to,
        }
    }
}

/// A weekly availability window in local wall-clock time, starting on
/// `weekday` at `start`. When `end <= start` it crosses midnight and ends on
/// the next day: Fri 22:00–06:00 covers Fri 22:00 to Sat 06:00, Sun 22:00–02:00
/// runs into Monday, and `end == start` is a full 24 h. Start inclusive, end
/// exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WeeklyWindow {
    /// Day the window starts on.
    pub weekday: Weekday,
    /// Local start time (inclusive).
    pub start: NaiveTime,
    /// Local end time (exclusive); on the next day when `end <= start`.
    pub end: NaiveTime,
}

impl WeeklyWindow {
    /// A window on `weekday` from `start` to `end` (local times).
    pub fn new(weekday: Weekday, start: NaiveTime, end: NaiveTime) -> Self {
        Self {
            weekday,
            start,
            end,
        }
    }

    /// Whether the window ends on the day after it starts (`end <= start`).
    pub fn crosses_midnight(&self) -> bool {
        self.end <= self.start
    }

    /// Wall-clock length in whole minutes (1..=1440); DST days may make the
    /// real occurrence an hour shorter or longer.
    pub fn duration_minutes(&self) -> i64 {
        let d = (self.end - self.start).num_minutes();
        if self.crosses_midnight() { d + 1440 } else { d }
    }

    /// The occurrence starting on local `date` (which must be a `weekday`),
    /// as instants; `None` if out of chrono's range or empty after DST.
    fn occurrence(&self, tz: Tz, date: NaiveDate) -> Option<(Timestamp, Timestamp)> {
        let end_date = if self.crosses_midnight() {
            date.checked_add_days(Days::new(1))?
        } else {
            date
        };
        let a = local_to_instant(tz, date.and_time(self.start))?;
        let b = local_to_instant(tz, end_date.and_time(self.end))?;
        (a < b).then_some((a, b))
    }
}

/// A local wall-clock time to an instant: earliest of an ambiguous pair; for
/// a nonexistent time, the first instant whose local time is at or after it
/// (the DST transition), found by bisection within ±26 h (covers any UTC
/// offset plus any real-world gap).
fn local_to_instant(tz: Tz, local: NaiveDateTime) -> Option<Timestamp> {
    if let Some(dt) = tz.from_local_datetime(&local).earliest() {
        return Some(Timestamp::from_datetime(&dt));
    }
    let local_of =
        |ms: i64| DateTime::from_timestamp_millis(ms).map(|d| d.with_timezone(&tz).naive_local());
    let guess = local.and_utc().timestamp_millis();
    let (mut lo, mut hi) = (
        guess - 26 * Timestamp::HOUR_MS,
        guess + 26 * Timestamp::HOUR_MS,
    );
    if local_of(lo)? >= local || local_of(hi)? < local {
        return None;
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if local_of(mid)? >= local {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(Timestamp(hi))
}

/// A volunteer's availability profile.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Availability {
    /// Recurring weekly windows, local time; may overlap or touch (they are
    /// merged, so Fri 22:00–06:00 plus Sat 06:00–12:00 is one stretch).
    pub weekly: Vec<WeeklyWindow>,
    /// Leave periods, any order.
    pub leaves: Vec<Leave>,
    /// `Some(t)`: on duty since instant `t` (epoch ms); `None`: off duty.
    /// An instant before `t` counts as off duty.
    pub on_duty_since: Option<Timestamp>,
}

/// Longest order window [`Availability::available_for_window`] will try to
/// cover with weekly windows: 31 days (no single service lasts longer;
/// bounds the work done).
pub const MAX_WINDOW_DAYS: i64 = 31;

impl Availability {
    /// Whether the duty toggle was on at `at`.
    pub fn on_duty_at(&self, at: Timestamp) -> bool {
        self.on_duty_since.is_some_and(|since| since <= at)
    }

    /// Whether `at` falls inside a leave period.
    pub fn on_leave_at(&self, at: Timestamp) -> bool {
        self.leaves.iter().any(|l| l.window().contains(at))
    }

    /// Whether any leave period shares an instant with `window`.
    pub fn leave_overlaps(&self, window: &TimeWindow) -> bool {
        self.leaves.iter().any(|l| l.window().overlaps(window))
    }

    /// On duty and not on leave at `at`: may be offered work immediately.
    pub fn available_now(&self, at: Timestamp) -> bool {
        self.on_duty_at(at) && !self.on_leave_at(at)
    }

    /// Whether `at` lies in an occurrence of a weekly window in zone `tz`
    /// (ignores duty and leave). See the module docs for DST.
    pub fn in_weekly_window(&self, tz: Tz, at: Timestamp) -> bool {
        TimeWindow::new(at, at.plus_ms(1)).is_ok_and(|w| self.weekly_covers(tz, &w))
    }

    /// Whether the whole `window` lies inside the (merged) weekly windows in
    /// zone `tz` and no leave overlaps it; the duty toggle is ignored. False
    /// for windows longer than [`MAX_WINDOW_DAYS`] or outside chrono's range.
    pub fn available_for_window(&self, tz: Tz, window: &TimeWindow) -> bool {
        !self.leave_overlaps(window) && self.weekly_covers(tz, window)
    }

    /// The dispatcher's rule: may this volunteer be offered, at instant
    /// `now`, an order to be served during `window`? Yes when on duty and not
    /// on leave at `now` and no leave overlaps `window`; or, on or off duty,
    /// when [`Availability::available_for_window`] holds.
    pub fn available_for_order(&self, tz: Tz, now: Timestamp, window: &TimeWindow) -> bool {
        (self.available_now(now) && !self.leave_overlaps(window))
            || self.available_for_window(tz, window)
    }

    fn weekly_covers(&self, tz: Tz, window: &TimeWindow) -> bool {
        let too_long = window
            .end
            .0
            .checked_sub(window.start.0)
            .is_none_or(|ms| ms > MAX_WINDOW_DAYS * Timestamp::DAY_MS);
        if self.weekly.is_empty() || too_long {
            return false;
        }
        let local_date = |t: Timestamp| t.to_datetime().map(|d| d.with_timezone(&tz).date_naive());
        // An occurrence starting on local day d lies within [d, d + 2 days);
        // one extra day each side absorbs DST shifts.
        let (Some(first), Some(last)) = (
            local_date(window.start).and_then(|d| d.checked_sub_days(Days::new(2))),
            local_date(window.end).and_then(|d| d.checked_add_days(Days::new(1))),
        ) else {
            return false;
        };
        let mut occurrences: Vec<(Timestamp, Timestamp)> = first
            .iter_days()
            .take_while(|d| *d <= last)
            .flat_map(|d| {
                self.weekly
                    .iter()
                    .filter(move |w| w.weekday == d.weekday())
                    .filter_map(move |w| w.occurrence(tz, d))
            })
            .collect();
        occurrences.sort_unstable();
        let mut covered_to = window.start;
        for (a, b) in occurrences {
            if a > covered_to {
                break;
            }
            covered_to = covered_to.max(b);
            if covered_to >= window.end {
                return true;
            }
        }
        false
    }
}

/// Point-in-time availability at instant `at`, for dashboards and the map of
/// on-duty volunteers: not on leave, and either on duty or inside a weekly
/// window (zone `tz`). Equals [`Availability::available_for_order`] with
/// `now = at` for a 1 ms window at `at`.
pub fn is_available_at(profile: &Availability, tz: Tz, at: Timestamp) -> bool {
    !profile.on_leave_at(at) && (profile.on_duty_at(at) || profile.in_weekly_window(tz, at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::New_York;
    use chrono_tz::Asia::Shanghai;
    use chrono_tz::UTC;
    use proptest::prelude::*;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    /// Instant from RFC 3339 text.
    fn at(s: &str) -> Timestamp {
        Timestamp::from_datetime(&DateTime::parse_from_rfc3339(s).unwrap())
    }

    fn win(a: &str, b: &str) -> TimeWindow {
        TimeWindow::new(at(a), at(b)).unwrap()
    }

    fn weekly(ws: &[WeeklyWindow]) -> Availability {
        Availability {
            weekly: ws.to_vec(),
            ..Availability::default()
        }
    }

    // 2020-02-07 is a Friday, 2020-02-09 a Sunday.

    #[test]
    fn friday_night_window_crosses_midnight() {
        let p = weekly(&[WeeklyWindow::new(Weekday::Fri, t(22, 0), t(6, 0))]);
        assert!(p.in_weekly_window(UTC, at("2020-02-07T22:00:00Z")));
        assert!(p.in_weekly_window(UTC, at("2020-02-08T05:59:59.999Z")));
        assert!(!p.in_weekly_window(UTC, at("2020-02-08T06:00:00Z")));
        assert!(!p.in_weekly_window(UTC, at("2020-02-07T21:59:59.999Z")));
        // Saturday night is not a Friday window.
        assert!(!p.in_weekly_window(UTC, at("2020-02-08T23:00:00Z")));
        // Friday morning before 06:00 belongs to Thursday's window, which does not exist.
        assert!(!p.in_weekly_window(UTC, at("2020-02-07T03:00:00Z")));
        assert_eq!(p.weekly[0].duration_minutes(), 480);
    }

    #[test]
    fn sunday_window_crosses_the_week_boundary() {
        let p = weekly(&[WeeklyWindow::new(Weekday::Sun, t(22, 0), t(2, 0))]);
        assert!(p.in_weekly_window(UTC, at("2020-02-10T01:00:00Z"))); // Monday 01:00
        assert!(!p.in_weekly_window(UTC, at("2020-02-10T02:00:00Z")));
        assert!(!p.in_weekly_window(UTC, at("2020-02-10T22:30:00Z"))); // Monday night
        assert!(p.available_for_window(UTC, &win("2020-02-09T23:00:00Z", "2020-02-10T02:00:00Z")));
        assert!(!p.available_for_window(
            UTC,
            &win("2020-02-09T23:00:00Z", "2020-02-10T02:00:00.001Z")
        ));
    }

    #[test]
    fn shanghai_local_time_decides() {
        // 2020-02-09T23:30+08:00 (Sunday night in Nanjing) is 15:30Z.
        let p = weekly(&[WeeklyWindow::new(Weekday::Sun, t(22, 0), t(2, 0))]);
        let instant = at("2020-02-09T15:30:00Z");
        assert_eq!(instant, at("2020-02-09T23:30:00+08:00"));
        assert!(p.in_weekly_window(Shanghai, instant));
        assert!(!p.in_weekly_window(UTC, instant));
        // Covered until Monday 02:00 local = Sunday 18:00Z.
        assert!(p.available_for_window(
            Shanghai,
            &win("2020-02-09T15:30:00Z", "2020-02-09T18:00:00Z")
        ));
        assert!(!p.available_for_window(
            Shanghai,
            &win("2020-02-09T15:30:00Z", "2020-02-09T18:30:00Z")
        ));
        assert!(is_available_at(&p, Shanghai, at("2020-02-09T17:59:00Z")));
        assert!(!is_available_at(&p, Shanghai, at("2020-02-09T18:00:00Z")));
    }

    #[test]
    fn touching_windows_merge() {
        let p = weekly(&[
            WeeklyWindow::new(Weekday::Fri, t(22, 0), t(6, 0)),
            WeeklyWindow::new(Weekday::Sat, t(6, 0), t(8, 0)),
        ]);
        assert!(p.available_for_window(UTC, &win("2020-02-08T05:00:00Z", "2020-02-08T07:00:00Z")));
        assert!(!p.available_for_window(UTC, &win("2020-02-08T05:00:00Z", "2020-02-08T08:01:00Z")));
    }

    #[test]
    fn equal_start_and_end_is_a_full_day() {
        let p = weekly(&[WeeklyWindow::new(Weekday::Mon, t(0, 0), t(0, 0))]);
        assert_eq!(p.weekly[0].duration_minutes(), 1440);
        assert!(p.available_for_window(UTC, &win("2020-02-10T00:00:00Z", "2020-02-11T00:00:00Z")));
        assert!(!p.in_weekly_window(UTC, at("2020-02-11T00:00:00Z")));
    }

    #[test]
    fn on_duty_overrides_windows_and_leave_overrides_everything() {
        let now = at("2020-02-12T09:00:00Z");
        let mut p = Availability {
            on_duty_since: Some(now.plus_minutes(-5)),
            ..Availability::default()
        };
        let tomorrow = win("2020-02-13T09:00:00Z", "2020-02-13T10:00:00Z");
        assert!(p.available_now(now));
        assert!(is_available_at(&p, Shanghai, now));
        assert!(p.available_for_order(Shanghai, now, &tomorrow));
        assert!(!p.available_for_window(Shanghai, &tomorrow)); // no weekly windows
        // Not on duty before the toggle was set.
        assert!(!p.available_now(now.plus_minutes(-6)));

        p.leaves
            .push(Leave::new(at("2020-02-13T09:30:00Z"), at("2020-02-14T00:00:00Z")).unwrap());
        assert!(p.available_now(now));
        assert!(!p.available_for_order(Shanghai, now, &tomorrow));
        // Leave is half-open: available again at its end.
        assert!(!p.available_now(at("2020-02-13T23:59:59.999Z")));
        assert!(p.available_now(at("2020-02-14T00:00:00Z")));
    }

    #[test]
    fn off_duty_is_offerable_only_inside_weekly_windows() {
        let p = weekly(&[WeeklyWindow::new(Weekday::Wed, t(18, 0), t(21, 0))]);
        let now = at("2020-02-12T08:00:00Z"); // Wed 16:00 in Shanghai
        assert!(!p.available_now(now));
        let evening = win("2020-02-12T10:00:00Z", "2020-02-12T12:00:00Z"); // 18:00–20:00 local
        let late = win("2020-02-12T12:00:00Z", "2020-02-12T13:30:00Z"); // 20:00–21:30 local
        assert!(p.available_for_order(Shanghai, now, &evening));
        assert!(!p.available_for_order(Shanghai, now, &late));
    }

    #[test]
    fn dst_gap_starts_at_the_transition() {
        // New York springs forward 2021-03-14 02:00 EST → 03:00 EDT (07:00Z).
        let p = weekly(&[WeeklyWindow::new(Weekday::Sun, t(2, 30), t(4, 0))]);
        assert!(!p.in_weekly_window(New_York, at("2021-03-14T06:59:59.999Z")));
        assert!(p.in_weekly_window(New_York, at("2021-03-14T07:00:00Z")));
        assert!(p.in_weekly_window(New_York, at("2021-03-14T07:59:59.999Z")));
        assert!(!p.in_weekly_window(New_York, at("2021-03-14T08:00:00Z"))); // 04:00 EDT
    }

    #[test]
    fn dst_ambiguous_end_takes_the_first_pass() {
        // New York falls back 2021-11-07 02:00 EDT → 01:00 EST (06:00Z).
        let p = weekly(&[WeeklyWindow::new(Weekday::Sun, t(0, 0), t(1, 30))]);
        assert!(p.in_weekly_window(New_York, at("2021-11-07T05:15:00Z"))); // 01:15 EDT
        assert!(!p.in_weekly_window(New_York, at("2021-11-07T05:30:00Z"))); // 01:30 EDT
        assert!(!p.in_weekly_window(New_York, at("2021-11-07T06:15:00Z"))); // 01:15 EST
    }

    #[test]
    fn invalid_intervals_are_rejected() {
        let e = TimeWindow::new(Timestamp(10), Timestamp(10)).unwrap_err();
        assert_eq!(e.code(), "invalid_time_window");
        assert!(e.to_string().starts_with("time_window: the end"), "{e}");
        assert_eq!(
            Leave::new(Timestamp(9), Timestamp(3)).unwrap_err().field,
            "leave"
        );
        assert!(serde_json::from_str::<Leave>(r#"{"from":5,"to":5}"#).is_err());
        assert!(serde_json::from_str::<TimeWindow>(r#"{"start":5,"end":6}"#).is_ok());
    }

    #[test]
    fn very_long_windows_are_not_covered() {
        let every_day: Vec<_> = [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
            Weekday::Sat,
            Weekday::Sun,
        ]
        .into_iter()
        .map(|d| WeeklyWindow::new(d, t(0, 0), t(0, 0)))
        .collect();
        let p = weekly(&every_day);
        let start = at("2020-02-01T00:00:00Z");
        let ok = TimeWindow::new(start, start.plus_days(MAX_WINDOW_DAYS)).unwrap();
        let too_long = TimeWindow::new(start, start.plus_days(MAX_WINDOW_DAYS).plus_ms(1)).unwrap();
        assert!(p.available_for_window(Shanghai, &ok));
        assert!(!p.available_for_window(Shanghai, &too_long));
    }

    /// Reference: plain wall-clock containment (exact in zones without DST).
    fn contains_local(w: &WeeklyWindow, local: NaiveDateTime) -> bool {
        let (day, time) = (local.weekday(), local.time());
        if w.crosses_midnight() {
            (day == w.weekday && time >= w.start) || (day == w.weekday.succ() && time < w.end)
        } else {
            day == w.weekday && w.start <= time && time < w.end
        }
    }

    #[test]
    fn overlapping_bookings_clash_unless_one_runs_alongside() {
        let w = |a: i64, b: i64| TimeWindow::new(Timestamp(a), Timestamp(b)).unwrap();
        let onsite = |a, b| Booking::new(w(a, b), true, false);
        assert!(onsite(0, 10).clashes(&onsite(5, 15)));
        assert!(!onsite(0, 10).clashes(&onsite(10, 20)), "touching windows");
        let call = Booking::new(w(5, 15), false, false);
        assert!(
            onsite(0, 10).clashes(&call),
            "a video lesson during an errand"
        );
        let data = Booking::new(w(5, 15), false, true);
        assert!(!onsite(0, 10).clashes(&data) && !data.clashes(&call));
        // The flag means nothing on an on-site item.
        assert!(Booking::new(w(5, 15), true, true).clashes(&onsite(0, 10)));
    }

    fn arb_window() -> impl Strategy<Value = WeeklyWindow> {
        (0u32..7, 0u32..96, 0u32..96).prop_map(|(d, s, e)| {
            let q = |i: u32| NaiveTime::from_hms_opt(i / 4, (i % 4) * 15, 0).unwrap();
            WeeklyWindow::new(Weekday::try_from(d as u8).unwrap(), q(s), q(e))
        })
    }

    proptest! {
        /// The instant-based check agrees with wall-clock containment in
        /// Shanghai for any windows and any instant in 2020.
        #[test]
        fn point_check_matches_wall_clock(
            ws in prop::collection::vec(arb_window(), 1..4),
            offset_min in 0i64..(366 * 1440),
        ) {
            let instant = at("2020-01-01T00:00:00Z").plus_minutes(offset_min);
            let local = instant.to_datetime().unwrap().with_timezone(&Shanghai).naive_local();
            let expected = ws.iter().any(|w| contains_local(w, local));
            prop_assert_eq!(weekly(&ws).in_weekly_window(Shanghai, instant), expected);
        }

        /// A window is covered iff every minute in it (windows have quarter-hour
        /// edges, so minutes suffice) is inside a weekly window.
        #[test]
        fn window_check_matches_pointwise(
            ws in prop::collection::vec(arb_window(), 1..5),
            start_q in 0i64..(8 * 96),
            len_min in 1i64..(36 * 60),
        ) {
            let p = weekly(&ws);
            let start = at("2020-02-03T00:00:00+08:00").plus_minutes(start_q * 15);
            let w = TimeWindow::new(start, start.plus_minutes(len_min)).unwrap();
            let pointwise = (0..len_min).all(|m| {
                let local = start.plus_minutes(m).to_datetime().unwrap().with_timezone(&Shanghai).naive_local();
                ws.iter().any(|x| contains_local(x, local))
            });
            prop_assert_eq!(p.available_for_window(Shanghai, &w), pointwise);
        }
    }

    #[test]
    fn local_to_instant_handles_every_case() {
        let d = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        assert_eq!(
            local_to_instant(Shanghai, d("2020-02-09 23:30")),
            Some(at("2020-02-09T15:30:00Z"))
        );
        assert_eq!(
            local_to_instant(New_York, d("2021-03-14 02:30")),
            Some(at("2021-03-14T07:00:00Z"))
        );
        assert_eq!(
            local_to_instant(New_York, d("2021-11-07 01:30")),
            Some(at("2021-11-07T05:30:00Z"))
        );
    }
}
