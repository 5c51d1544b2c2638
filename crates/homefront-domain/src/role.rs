//! The roles of SPEC.md and what each may be bound to.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A user's role. A user may hold several grants, each a role bound to an
/// organisation unit where the role needs one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Operator of the deployment: organisations, catalogue, accounts. No scope.
    Admin,
    /// League-committee staff; acts on the subtree of the division it is bound to.
    Coordinator,
    /// A hospital's or unit's contact; bound to an employer organisation.
    Liaison,
    /// A frontline worker placing orders for their household. No scope.
    Requester,
    /// A vetted volunteer; bound to a team.
    Volunteer,
}

/// An unknown role name.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("unknown role \"{0}\"; use one of admin, coordinator, liaison, requester, volunteer")]
pub struct RoleError(pub String);

impl Role {
    /// Every role, in a stable order.
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Coordinator,
        Role::Liaison,
        Role::Requester,
        Role::Volunteer,
    ];

    /// The snake_case text stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Coordinator => "coordinator",
            Role::Liaison => "liaison",
            Role::Requester => "requester",
            Role::Volunteer => "volunteer",
        }
    }

    /// Whether a grant of this role must name an organisation unit
    /// (coordinator: a division; liaison: an employer; volunteer: a team).
    pub fn needs_org_unit(self) -> bool {
        matches!(self, Role::Coordinator | Role::Liaison | Role::Volunteer)
    }

    /// Whether this role may (and should) protect its login with TOTP.
    pub fn may_use_totp(self) -> bool {
        matches!(self, Role::Admin | Role::Coordinator)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = RoleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| RoleError(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_text() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("root".parse::<Role>().is_err());
    }
}
