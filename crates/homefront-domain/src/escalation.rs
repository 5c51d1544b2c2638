//! When an unaccepted order moves up the tree, and how far the pool widens
//! when it does.
//!
//! Levels: 0 with the dispatcher, 1 the county coordinators' queue, 2 the
//! city's, 3 the province's (see [`crate::org::team_serves`] for whose
//! teams serve at each level). Level `n` is due at
//!
//! ```text
//! min(anchor + n × lane deadline, window_start − lead)
//! ```
//!
//! where `anchor` is when the order became dispatchable (its creation; a
//! scheduled follow-up is created when it falls due, so it is timed from
//! then) and `lead` is configured per lane. The lane deadline climbs the
//! tree one level at a time for orders placed well ahead; an order still
//! unaccepted `lead` minutes before its window goes to the top at once, so
//! the widest pool has the time that is left. An order placed less than
//! `lead` ahead therefore goes to the top at its first pass.

use crate::catalogue::Lane;

/// The top level (the province coordinators' queue).
pub const TOP_LEVEL: i64 = 3;

/// Minutes before an order's window by which it is escalated to the top
/// level if nobody has accepted it, per lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leads {
    /// Priority lane (default 5).
    pub priority: i64,
    /// Urgent lane (default 10).
    pub urgent: i64,
    /// Standard lane (default 10).
    pub standard: i64,
}

impl Default for Leads {
    fn default() -> Self {
        Self {
            priority: 5,
            urgent: 10,
            standard: 10,
        }
    }
}

impl Leads {
    /// The lane's lead in minutes (never negative).
    pub fn minutes(&self, lane: Lane) -> i64 {
        match lane {
            Lane::Priority => self.priority,
            Lane::Urgent => self.urgent,
            Lane::Standard => self.standard,
        }
        .max(0)
    }
}

/// Why an order is due at a level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// Not accepted within `n ×` the lane's deadline (minutes given).
    Deadline(i64),
    /// Not accepted `lead` minutes before its window (minutes given).
    WindowLead(i64),
    /// Nobody at the level below could be offered it (every eligible
    /// volunteer there declined, is cooling down, busy, off duty or out
    /// of reach): the dispatcher widens the pool at once rather than wait
    /// for the lane's deadline.
    NoCandidate,
}

/// The level an order of `lane` is due at, at `now_ms` (all epoch ms):
/// 0 to [`TOP_LEVEL`], with the cause of the highest level due (`None` at 0).
pub fn level_due(
    lane: Lane,
    leads: &Leads,
    anchor_ms: i64,
    window_start_ms: i64,
    now_ms: i64,
) -> (i64, Option<Cause>) {
    const MINUTE_MS: i64 = 60_000;
    let deadline = lane.deadline_minutes();
    let lead = leads.minutes(lane);
    if now_ms >= window_start_ms - lead * MINUTE_MS {
        return (TOP_LEVEL, Some(Cause::WindowLead(lead)));
    }
    let by_deadline = ((now_ms - anchor_ms) / (deadline * MINUTE_MS)).clamp(0, TOP_LEVEL);
    let cause = (by_deadline > 0).then_some(Cause::Deadline(deadline * by_deadline));
    (by_deadline, cause)
}

/// The service-radius multiplier at `level`: `factor^level` (a factor
/// below 1 counts as 1: escalation never narrows the pool).
pub fn radius_multiplier(factor: f64, level: i64) -> f64 {
    let factor = if factor.is_finite() {
        factor.max(1.0)
    } else {
        1.0
    };
    let level = i32::try_from(level.clamp(0, TOP_LEVEL)).unwrap_or(0);
    factor.powi(level)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn deadlines_climb_one_level_at_a_time_until_the_lead_before_the_window() {
        let leads = Leads::default();
        // Standard lane (120 min), window 10 h ahead.
        let ws = 600 * MIN;
        assert_eq!(
            level_due(Lane::Standard, &leads, 0, ws, 119 * MIN),
            (0, None)
        );
        assert_eq!(
            level_due(Lane::Standard, &leads, 0, ws, 120 * MIN),
            (1, Some(Cause::Deadline(120)))
        );
        assert_eq!(
            level_due(Lane::Standard, &leads, 0, ws, 479 * MIN),
            (3, Some(Cause::Deadline(360)))
        );
        // Window 3 h ahead: level 1 at 120 min, the top 10 min before the window.
        let ws = 180 * MIN;
        assert_eq!(level_due(Lane::Standard, &leads, 0, ws, 169 * MIN).0, 1);
        assert_eq!(
            level_due(Lane::Standard, &leads, 0, ws, 170 * MIN),
            (3, Some(Cause::WindowLead(10)))
        );
        // Placed 5 min ahead: the top at once.
        assert_eq!(level_due(Lane::Standard, &leads, 0, 5 * MIN, 0).0, 3);
    }

    #[test]
    fn a_later_anchor_times_from_then() {
        let leads = Leads::default();
        let day = 24 * 60 * MIN;
        assert_eq!(
            level_due(Lane::Urgent, &leads, day, 3 * day, day + 29 * MIN).0,
            0
        );
        assert_eq!(
            level_due(Lane::Urgent, &leads, day, 3 * day, day + 30 * MIN).0,
            1
        );
    }

    #[test]
    fn the_radius_widens_by_the_factor_per_level_and_never_narrows() {
        assert!((radius_multiplier(1.5, 0) - 1.0).abs() < 1e-12);
        assert!((radius_multiplier(1.5, 2) - 2.25).abs() < 1e-12);
        assert!((radius_multiplier(0.5, 3) - 1.0).abs() < 1e-12);
        assert!((radius_multiplier(f64::NAN, 3) - 1.0).abs() < 1e-12);
    }
}
