//! The roles of SPEC.md and what each may be bound to.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::org::OrgPath;

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

/// Whether a coordinator bound to the divisions at `coordinator_scopes` may
/// administer the account holding `grants` (each a role and the path of the
/// unit it is bound to): set its password, add or revoke its roles, attach
/// it to a team.
///
/// The one rule behind those powers: every role of the account lies inside
/// one of the coordinator's subtrees, and none is at or above the
/// coordinator's own level. So an account with a role elsewhere (a
/// requester without an employer, a volunteer of another county's team), a
/// coordinator of the same division or an ancestor, an admin, or an
/// account with no role at all is out of reach: making an account visible
/// (a grant in one's own area) never hands over the rest of what the
/// account may see. Admins are not decided here; they administer everyone.
pub fn coordinator_administers(
    coordinator_scopes: &[OrgPath],
    grants: &[(Option<Role>, Option<OrgPath>)],
) -> bool {
    !grants.is_empty()
        && grants.iter().all(|(role, path)| {
            let (Some(role), Some(path)) = (role, path) else {
                return false;
            };
            match role {
                Role::Admin => false,
                // Strictly below: a peer coordinator of the same division
                // is at the coordinator's level.
                Role::Coordinator => coordinator_scopes
                    .iter()
                    .any(|s| path.is_within(s) && path != s),
                Role::Liaison | Role::Requester | Role::Volunteer => {
                    coordinator_scopes.iter().any(|s| path.is_within(s))
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn administers_only_accounts_wholly_inside_and_below() {
        let city = OrgPath::from_stored("/1/2/".into());
        let county = OrgPath::from_stored("/1/2/3/".into());
        let team = OrgPath::from_stored("/1/2/3/9/".into());
        let other_team = OrgPath::from_stored("/1/5/6/10/".into());
        let g = |r: Role, p: Option<&OrgPath>| (Some(r), p.cloned());
        let scopes = std::slice::from_ref(&county);
        assert!(coordinator_administers(
            scopes,
            &[g(Role::Volunteer, Some(&team))]
        ));
        // A role elsewhere, or a requester bound to no employer.
        assert!(!coordinator_administers(
            scopes,
            &[
                g(Role::Volunteer, Some(&team)),
                g(Role::Volunteer, Some(&other_team))
            ]
        ));
        assert!(!coordinator_administers(
            scopes,
            &[g(Role::Volunteer, Some(&team)), g(Role::Requester, None)]
        ));
        // A peer or a superior coordinator; an admin; no role at all.
        assert!(!coordinator_administers(
            scopes,
            &[g(Role::Coordinator, Some(&county))]
        ));
        assert!(!coordinator_administers(
            scopes,
            &[
                g(Role::Coordinator, Some(&city)),
                g(Role::Volunteer, Some(&team))
            ]
        ));
        assert!(!coordinator_administers(
            scopes,
            &[g(Role::Admin, None), g(Role::Volunteer, Some(&team))]
        ));
        assert!(!coordinator_administers(scopes, &[]));
        assert!(!coordinator_administers(
            &[],
            &[g(Role::Volunteer, Some(&team))]
        ));
        // A city coordinator administers the county's coordinator.
        assert!(coordinator_administers(
            std::slice::from_ref(&city),
            &[g(Role::Coordinator, Some(&county))]
        ));
        // A role name the code does not know is out of reach.
        assert!(!coordinator_administers(scopes, &[(None, Some(team))]));
    }

    #[test]
    fn round_trips_text() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("root".parse::<Role>().is_err());
    }
}
