//! The database half of a roster import: resolve teams and adcodes, match
//! rows to existing accounts by E.164 phone, and write every accepted row in
//! one transaction. Reading files and checking cells is
//! `homefront_server::roster`'s job; rows arrive here already parsed.

use std::collections::HashMap;

use homefront_domain::credentials::Qualification;
use homefront_domain::org::OrgPath;
use homefront_domain::volunteer::{DEFAULT_MAX_CONCURRENT, DEFAULT_SERVICE_RADIUS_KM, Gender};
use homefront_domain::{Adcode, GeoPoint, PhoneNumber, Timestamp};
use serde::Serialize;

use crate::volunteers::{EmergencyContact, UNUSABLE_PASSWORD_HASH, VolunteerProfile};
use crate::{Result, Store, Tx};

/// How a roster row names its team.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TeamRef {
    /// By org-unit id.
    Id(i64),
    /// By exact team name (must be unique among the teams in scope).
    Name(String),
}

/// One parsed roster row. For every `Option` field, `None` means the column
/// is not in the file: an existing volunteer keeps its value, a new one
/// gets the default. A column that is present with an empty cell arrives
/// as the default (`Some(None)`, `Some(vec![])`, `Some(10.0)` ...).
#[derive(Clone, Debug, PartialEq)]
pub struct RosterRow {
    /// Spreadsheet row number as the user sees it (header = 1).
    pub row: usize,
    /// E.164 phone: the key that makes re-imports idempotent.
    pub phone: PhoneNumber,
    /// Display name.
    pub display_name: String,
    /// The team.
    pub team: TeamRef,
    /// Home division; `None`: keep, or for a new volunteer the team's division.
    pub home_adcode: Option<Adcode>,
    /// Own coordinates.
    pub home_location: Option<Option<GeoPoint>>,
    /// Service radius, km.
    pub service_radius_km: Option<f64>,
    /// Declared qualifications.
    pub declared_qualifications: Option<Vec<Qualification>>,
    /// Vehicle seats.
    pub vehicle_seats: Option<Option<u32>>,
    /// Languages.
    pub languages: Option<Vec<String>>,
    /// Concurrent-assignment cap.
    pub max_concurrent: Option<u32>,
    /// Gender.
    pub gender: Option<Option<Gender>>,
    /// Emergency contact.
    pub emergency_contact: Option<Option<EmergencyContact>>,
}

impl RosterRow {
    fn merge_into(&self, mut p: VolunteerProfile) -> VolunteerProfile {
        if let Some(v) = self.home_location {
            p.home_location = v;
        }
        if let Some(v) = self.service_radius_km {
            p.service_radius_km = v;
        }
        if let Some(v) = &self.declared_qualifications {
            p.declared_qualifications = v.clone();
        }
        if let Some(v) = self.vehicle_seats {
            p.vehicle_seats = v;
        }
        if let Some(v) = &self.languages {
            p.languages = v.clone();
        }
        if let Some(v) = self.max_concurrent {
            p.max_concurrent = v;
        }
        if let Some(v) = self.gender {
            p.gender = v;
        }
        if let Some(v) = &self.emergency_contact {
            p.emergency_contact = v.clone();
        }
        p
    }
}

/// What happened to one row.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RowOutcome {
    /// A new volunteer (state `applied`); `existing_account` when the phone
    /// already had an account, which now also holds a volunteer grant.
    Created {
        /// The volunteer id (= account id).
        volunteer_id: i64,
        /// Whether the account existed before.
        existing_account: bool,
    },
    /// An existing volunteer whose profile or name changed.
    Updated {
        /// The volunteer id.
        volunteer_id: i64,
    },
    /// An existing volunteer the row matches exactly.
    Unchanged {
        /// The volunteer id.
        volunteer_id: i64,
    },
    /// Not imported.
    Rejected {
        /// Every problem found in the row (at least one).
        errors: Vec<RowError>,
    },
}

/// One problem in a roster row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RowError {
    /// The column at fault (English column name, e.g. `phone`).
    pub field: String,
    /// Stable machine code, e.g. `invalid_phone`.
    pub code: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl RowOutcome {
    /// A rejection for one problem.
    pub fn rejected(field: &str, code: &str, message: impl Into<String>) -> Self {
        RowOutcome::Rejected {
            errors: vec![RowError {
                field: field.to_string(),
                code: code.to_string(),
                message: message.into(),
            }],
        }
    }
}

/// When an import writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportMode {
    /// Commit every accepted row; rejected rows are only reported.
    ValidRows,
    /// Commit only when no row is rejected.
    AllOrNothing,
    /// Check everything, commit nothing.
    DryRun,
}

/// The store's answer: per-row outcomes (in input order) and whether the
/// transaction was committed.
#[derive(Clone, Debug, PartialEq)]
pub struct RosterWrite {
    /// One outcome per input row, same order.
    pub outcomes: Vec<RowOutcome>,
    /// Whether anything was written.
    pub committed: bool,
}

#[derive(Clone, Debug)]
struct TeamInfo {
    id: i64,
    path: OrgPath,
}

fn within(scopes: Option<&[OrgPath]>, path: &OrgPath) -> bool {
    scopes.is_none_or(|s| s.iter().any(|s| path.is_within(s)))
}

impl Store {
    /// Writes a parsed roster in ONE transaction: every row is checked
    /// against the database (team exists, is a team and lies in `scopes`;
    /// adcode names a division; an existing volunteer with that phone lies
    /// in `scopes`) and, unless rejected, created or updated at once, so a
    /// later row sees an earlier one. Accounts created here get
    /// [`UNUSABLE_PASSWORD_HASH`] (no hashing per row). Existing volunteers
    /// keep their vetting state and credentials. `mode` decides whether the
    /// transaction commits. `progress(done, total)` is called per row.
    ///
    /// # Errors
    /// Database errors (nothing is written then).
    #[tracing::instrument(skip_all, fields(rows = rows.len()))]
    pub async fn import_roster(
        &self,
        rows: &[RosterRow],
        scopes: Option<&[OrgPath]>,
        actor: Option<i64>,
        now: Timestamp,
        mode: ImportMode,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<RosterWrite> {
        let mut tx = self.begin_write().await?;
        let mut teams: HashMap<TeamRef, std::result::Result<TeamInfo, RowOutcome>> = HashMap::new();
        let mut divisions: HashMap<Adcode, Option<i64>> = HashMap::new();
        let mut team_divisions: HashMap<i64, Option<i64>> = HashMap::new();
        let mut outcomes = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            let outcome = self
                .import_row(
                    &mut tx,
                    row,
                    scopes,
                    actor,
                    now,
                    &mut teams,
                    &mut divisions,
                    &mut team_divisions,
                )
                .await?;
            outcomes.push(outcome);
            progress(i + 1, rows.len());
        }
        let any_rejected = outcomes
            .iter()
            .any(|o| matches!(o, RowOutcome::Rejected { .. }));
        let commit = match mode {
            ImportMode::ValidRows => true,
            ImportMode::AllOrNothing => !any_rejected,
            ImportMode::DryRun => false,
        };
        if commit {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(RosterWrite {
            outcomes,
            committed: commit,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn import_row(
        &self,
        tx: &mut Tx,
        row: &RosterRow,
        scopes: Option<&[OrgPath]>,
        actor: Option<i64>,
        now: Timestamp,
        teams: &mut HashMap<TeamRef, std::result::Result<TeamInfo, RowOutcome>>,
        divisions: &mut HashMap<Adcode, Option<i64>>,
        team_divisions: &mut HashMap<i64, Option<i64>>,
    ) -> Result<RowOutcome> {
        if !teams.contains_key(&row.team) {
            let found = resolve_team(tx, &row.team, scopes).await?;
            teams.insert(row.team.clone(), found);
        }
        let team = match &teams[&row.team] {
            Ok(t) => t.clone(),
            Err(rejection) => return Ok(rejection.clone()),
        };
        let division = match row.home_adcode {
            None => None,
            Some(code) => {
                let found = match divisions.get(&code) {
                    Some(found) => *found,
                    None => {
                        let id: Option<i64> = sqlx::query_scalar(
                            "select id from org_unit where adcode = $1
                             and kind in ('province', 'city', 'county')",
                        )
                        .bind(code.as_string())
                        .fetch_optional(&mut **tx)
                        .await?;
                        divisions.insert(code, id);
                        id
                    }
                };
                match found {
                    Some(id) => Some(id),
                    None => {
                        return Ok(RowOutcome::rejected(
                            "adcode",
                            "unknown_adcode",
                            format!(
                                "no division with adcode {} is set up; check the 6-digit GB/T 2260 code of the county (e.g. 320102), or ask an admin to import that province",
                                short_adcode(code)
                            ),
                        ));
                    }
                }
            }
        };
        let existing: Option<(i64, String, Option<i64>)> = sqlx::query_as(
            "select u.id, u.display_name, v.user_id from app_user u
             left join volunteer v on v.user_id = u.id where u.phone = $1",
        )
        .bind(row.phone.as_str())
        .fetch_optional(&mut **tx)
        .await?;
        match existing {
            Some((user_id, name, Some(_))) => {
                let Some(current) = self.volunteer_in_tx(tx, user_id).await? else {
                    return Ok(RowOutcome::rejected(
                        "phone",
                        "internal",
                        "volunteer vanished during import; run it again",
                    ));
                };
                if !within(scopes, &current.org_path()) {
                    return Ok(RowOutcome::rejected(
                        "phone",
                        "volunteer_elsewhere",
                        "this phone belongs to a volunteer of a team outside your area; ask that team's coordinator, or remove the row",
                    ));
                }
                let mut base = current.profile();
                base.team_id = team.id;
                if let Some(d) = division {
                    base.home_division_id = d;
                }
                let profile = row.merge_into(base);
                if profile == current.profile() && name == row.display_name {
                    return Ok(RowOutcome::Unchanged {
                        volunteer_id: user_id,
                    });
                }
                Self::update_volunteer_tx(tx, user_id, &profile, now).await?;
                if name != row.display_name {
                    Self::set_display_name_tx(tx, user_id, &row.display_name).await?;
                }
                Ok(RowOutcome::Updated {
                    volunteer_id: user_id,
                })
            }
            existing => {
                // Attaching an existing account to a team makes it visible
                // to the team's coordinators: only for accounts the importer
                // already administers (or an admin's import, `scopes` None).
                if let (Some((user_id, _, _)), Some(scopes)) = (&existing, scopes)
                    && !administers_in_tx(tx, scopes, *user_id).await?
                {
                    return Ok(RowOutcome::rejected(
                        "phone",
                        "account_outside_area",
                        "this phone belongs to an account with a role outside your area or at your level; an admin can add it to the team, or remove the row",
                    ));
                }
                let home_division_id = match division {
                    Some(d) => d,
                    None => {
                        let found = match team_divisions.get(&team.id) {
                            Some(found) => *found,
                            None => {
                                let d = team_division(tx, &team.path).await?;
                                team_divisions.insert(team.id, d);
                                d
                            }
                        };
                        match found {
                            Some(d) => d,
                            None => {
                                return Ok(RowOutcome::rejected(
                                    "adcode",
                                    "adcode_required",
                                    "the team is not placed under a division; give the home county's adcode (e.g. 320102)",
                                ));
                            }
                        }
                    }
                };
                let base = VolunteerProfile {
                    team_id: team.id,
                    home_division_id,
                    home_location: None,
                    service_radius_km: DEFAULT_SERVICE_RADIUS_KM,
                    declared_qualifications: Vec::new(),
                    vehicle_seats: None,
                    languages: Vec::new(),
                    max_concurrent: DEFAULT_MAX_CONCURRENT,
                    gender: None,
                    emergency_contact: None,
                };
                let profile = row.merge_into(base);
                let (user_id, existing_account) = match existing {
                    Some((id, _, _)) => (id, true),
                    None => (
                        Self::insert_account_tx(
                            tx,
                            &row.phone,
                            &row.display_name,
                            UNUSABLE_PASSWORD_HASH,
                            now,
                        )
                        .await?,
                        false,
                    ),
                };
                Self::insert_volunteer_tx(tx, user_id, &profile, actor, now).await?;
                Ok(RowOutcome::Created {
                    volunteer_id: user_id,
                    existing_account,
                })
            }
        }
    }

    async fn volunteer_in_tx(
        &self,
        tx: &mut Tx,
        user_id: i64,
    ) -> Result<Option<crate::volunteers::Volunteer>> {
        let sql = format!(
            "{} where v.user_id = $1",
            crate::volunteers::VOLUNTEER_SELECT
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(user_id)
            .fetch_optional(&mut **tx)
            .await?)
    }
}

/// Whether a coordinator of `scopes` administers the account `user_id`
/// ([`homefront_domain::role::coordinator_administers`]), read inside `tx`.
async fn administers_in_tx(tx: &mut Tx, scopes: &[OrgPath], user_id: i64) -> Result<bool> {
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "select g.role, o.path from role_grant g left join org_unit o on o.id = g.org_unit_id
         where g.user_id = $1",
    )
    .bind(user_id)
    .fetch_all(&mut **tx)
    .await?;
    let grants: Vec<_> = rows
        .into_iter()
        .map(|(role, path)| (role.parse().ok(), path.map(OrgPath::from_stored)))
        .collect();
    Ok(homefront_domain::role::coordinator_administers(
        scopes, &grants,
    ))
}

/// `320102000000` → `320102` for messages.
fn short_adcode(code: Adcode) -> String {
    let s = code.as_string();
    if s.ends_with("000000") {
        s[..6].to_string()
    } else {
        s
    }
}

async fn resolve_team(
    tx: &mut Tx,
    team: &TeamRef,
    scopes: Option<&[OrgPath]>,
) -> Result<std::result::Result<TeamInfo, RowOutcome>> {
    let rows: Vec<(i64, String, String)> = match team {
        TeamRef::Id(id) => {
            sqlx::query_as("select id, kind, path from org_unit where id = $1")
                .bind(*id)
                .fetch_all(&mut **tx)
                .await?
        }
        TeamRef::Name(name) => {
            sqlx::query_as("select id, kind, path from org_unit where kind = 'team' and name = $1")
                .bind(name)
                .fetch_all(&mut **tx)
                .await?
        }
    };
    let visible: Vec<TeamInfo> = rows
        .into_iter()
        .filter(|(_, kind, _)| kind == "team")
        .map(|(id, _, path)| TeamInfo {
            id,
            path: OrgPath::from_stored(path),
        })
        .filter(|t| within(scopes, &t.path))
        .collect();
    let shown = match team {
        TeamRef::Id(id) => id.to_string(),
        TeamRef::Name(n) => n.clone(),
    };
    Ok(match visible.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(RowOutcome::rejected(
            "team",
            "unknown_team",
            format!(
                "no team \"{shown}\" in your area; use the id or exact name of a team (org unit of kind team) you coordinate"
            ),
        )),
        _ => Err(RowOutcome::rejected(
            "team",
            "ambiguous_team",
            format!("several teams in your area are named \"{shown}\"; use the team's id instead"),
        )),
    })
}

/// The deepest division (province, city or county) on a team's path.
async fn team_division(tx: &mut Tx, path: &OrgPath) -> Result<Option<i64>> {
    for id in path.ids().into_iter().rev() {
        let kind: Option<String> = sqlx::query_scalar("select kind from org_unit where id = $1")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
        if matches!(kind.as_deref(), Some("province" | "city" | "county")) {
            return Ok(Some(id));
        }
    }
    Ok(None)
}
