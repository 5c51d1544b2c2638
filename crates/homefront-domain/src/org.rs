//! The organisation tree: divisions mirrored from GB/T 2260 adcodes, with
//! teams, employers and partners placed under them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::adcode::DivisionLevel;

/// What an organisation unit is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgKind {
    /// Province committee (division).
    Province,
    /// City committee (division).
    City,
    /// County committee (division).
    County,
    /// A volunteer team under a division.
    Team,
    /// An employer of requesters: a hospital, a police bureau.
    Employer,
    /// A partner organisation: a car fleet, a phone carrier.
    Partner,
}

/// An unknown org kind.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("unknown organisation kind \"{0}\"; use team, employer or partner")]
pub struct OrgKindError(pub String);

impl OrgKind {
    /// Every kind, in a stable order.
    pub const ALL: [OrgKind; 6] = [
        OrgKind::Province,
        OrgKind::City,
        OrgKind::County,
        OrgKind::Team,
        OrgKind::Employer,
        OrgKind::Partner,
    ];

    /// The snake_case text stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            OrgKind::Province => "province",
            OrgKind::City => "city",
            OrgKind::County => "county",
            OrgKind::Team => "team",
            OrgKind::Employer => "employer",
            OrgKind::Partner => "partner",
        }
    }

    /// Whether this kind is an administrative division (keyed by adcode).
    pub fn is_division(self) -> bool {
        matches!(self, OrgKind::Province | OrgKind::City | OrgKind::County)
    }

    /// The kind of unit that mirrors a division at `level`.
    pub fn for_level(level: DivisionLevel) -> OrgKind {
        match level {
            DivisionLevel::Province => OrgKind::Province,
            DivisionLevel::City => OrgKind::City,
            DivisionLevel::County => OrgKind::County,
        }
    }
}

impl fmt::Display for OrgKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OrgKind {
    type Err = OrgKindError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OrgKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| OrgKindError(s.to_string()))
    }
}

/// A materialised path of org-unit ids from the root, e.g. `/1/2/15/`.
///
/// Subtree membership is a prefix test, which both SQLite and PostgreSQL
/// answer from an index (`path like '/1/2/%'`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrgPath(String);

impl OrgPath {
    /// The path of a root unit with id `id`.
    pub fn root(id: i64) -> Self {
        Self(format!("/{id}/"))
    }

    /// The path of a child with id `id` under this path.
    #[must_use]
    pub fn child(&self, id: i64) -> Self {
        Self(format!("{}{id}/", self.0))
    }

    /// Wraps a path read from the database.
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    /// The path text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `self` is `other` or lies below it.
    pub fn is_within(&self, other: &OrgPath) -> bool {
        self.0.starts_with(&other.0)
    }

    /// The path one level up (`/1/2/15/` → `/1/2/`); `None` for a root.
    pub fn parent(&self) -> Option<OrgPath> {
        let trimmed = self.0.trim_end_matches('/');
        let cut = trimmed.rfind('/')?;
        (cut > 0).then(|| OrgPath(self.0[..=cut].to_string()))
    }

    /// The ids on the path, root first.
    pub fn ids(&self) -> Vec<i64> {
        self.0
            .split('/')
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.parse().ok())
            .collect()
    }
}

/// Whether volunteers of the team at `team` may serve work (an order, or a
/// household for a pairing) in the division at `target`: the one rule
/// behind an order's candidate list, a coordinator's manual offer, hand
/// assignment and pairing.
///
/// A team serves its own division's subtree: a county team its county, a
/// city team every county of its city, the province's team the whole
/// province (the team's path is its division's path plus the team's id).
/// An order that escalated (`escalation_level` 1: county queue, 2: city
/// queue, 3: province queue; see the dispatcher) widens this to every team
/// in that queue's division: at level 2 a neighbouring county's team may
/// serve, at level 3 any team of the province. Level 0 and 1 widen
/// nothing beyond the teams whose division encloses `target`.
pub fn team_serves(team: &OrgPath, target: &OrgPath, escalation_level: i64) -> bool {
    let Some(division) = team.parent() else {
        return false;
    };
    if target.is_within(&division) {
        return true;
    }
    // The queue's division: the target's ancestor at depth 3 - level
    // (province 0, city 1, county 2), never deeper than the target itself.
    let ids = target.ids();
    let Ok(level) = usize::try_from(escalation_level.clamp(0, 3)) else {
        return false;
    };
    if level < 2 || ids.is_empty() {
        return false;
    }
    let depth = (3 - level).min(ids.len() - 1);
    let queue = ids[..=depth]
        .iter()
        .fold(String::from("/"), |p, id| format!("{p}{id}/"));
    division.is_within(&OrgPath(queue))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn teams_serve_their_divisions_subtree_widened_by_escalation() {
        let province = OrgPath::root(1);
        let city = province.child(2);
        let county = city.child(15);
        let sibling = city.child(16);
        let other_city = province.child(3).child(30);
        let (province_team, city_team) = (province.child(900), city.child(901));
        let (county_team, sibling_team) = (county.child(902), sibling.child(903));
        let far_team = other_city.child(904);
        for team in [&province_team, &city_team, &county_team] {
            assert!(team_serves(team, &county, 0), "{team:?}");
        }
        for level in [0, 1] {
            assert!(!team_serves(&sibling_team, &county, level));
        }
        assert!(team_serves(&sibling_team, &county, 2));
        assert!(!team_serves(&far_team, &county, 2));
        assert!(team_serves(&far_team, &county, 3));
        // A county team never serves its city's other counties by itself.
        assert!(!team_serves(&county_team, &sibling, 0));
        // An order placed at city level: its queue at level 1 is the city.
        assert!(team_serves(&city_team, &city, 0));
        assert!(!team_serves(&county_team, &city, 1));
        assert!(team_serves(&county_team, &city, 2));
        assert!(
            !team_serves(&OrgPath::root(1), &county, 3),
            "a path without a parent is no team"
        );
    }

    #[test]
    fn subtree_is_a_prefix_of_whole_segments() {
        let province = OrgPath::root(1);
        let city = province.child(2);
        let county = city.child(15);
        let other = province.child(21);
        assert!(county.is_within(&city));
        assert!(county.is_within(&province));
        assert!(county.is_within(&county));
        assert!(!city.is_within(&county));
        assert!(!other.is_within(&city));
        // "/1/2/" must not match "/1/21/": segments end with '/'.
        assert!(
            !OrgPath::root(1)
                .child(21)
                .is_within(&OrgPath::root(1).child(2))
        );
        assert_eq!(county.ids(), vec![1, 2, 15]);
    }
}
