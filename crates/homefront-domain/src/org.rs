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

    /// The ids on the path, root first.
    pub fn ids(&self) -> Vec<i64> {
        self.0
            .split('/')
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.parse().ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
