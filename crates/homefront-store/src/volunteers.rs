//! Volunteers: profiles, the vetting log, the duty toggle and the
//! deactivation hook.
//!
//! A volunteer is keyed by its account (`app_user.id`): the profile row
//! exists exactly when the account holds a volunteer grant bound to the
//! profile's team, and the two move together. Rules (vetting order, limits)
//! live in `homefront_domain`; this module only applies them in transactions.

use chrono_tz::Tz;
use homefront_domain::credentials::Qualification;
use homefront_domain::org::OrgPath;
use homefront_domain::vetting::{
    self, VettingAction, VettingError, VettingEventAction, VettingState,
};
use homefront_domain::volunteer::Gender;
use homefront_domain::{GeoPoint, PhoneNumber, Timestamp};
use serde::Serialize;

use crate::decode::{Flag, OptText, Text};
use crate::{Result, Store, StoreError, Tx, flag};

/// Password hash given to accounts created without a password (roster
/// import, registration without one). It is not a PHC string, so no
/// password verifies against it: the holder cannot sign in until an admin
/// sets a password (password reset).
pub const UNUSABLE_PASSWORD_HASH: &str = "!unusable:set-by-admin-password-reset";

/// A volunteer as stored, joined with its account, team and home division.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct Volunteer {
    /// The account id, also the volunteer's id.
    pub user_id: i64,
    /// E.164 phone of the account.
    pub phone: String,
    /// Account display name.
    pub display_name: String,
    /// Team (org unit of kind `team`).
    pub team_id: i64,
    /// Team name.
    pub team_name: String,
    /// Team path, for scope checks.
    pub team_path: String,
    /// The team's time zone; weekly windows are in this zone.
    #[sqlx(try_from = "Text")]
    pub time_zone: Tz,
    /// Home division (org unit) id.
    pub home_division_id: i64,
    /// Home division's 12-digit adcode.
    pub home_adcode: Option<String>,
    /// Home division's name.
    pub home_division_name: String,
    /// Own home longitude, decimal degrees; `None` = the division's point.
    pub home_longitude: Option<f64>,
    /// Own home latitude, decimal degrees.
    pub home_latitude: Option<f64>,
    /// The division's longitude.
    pub division_longitude: Option<f64>,
    /// The division's latitude.
    pub division_latitude: Option<f64>,
    /// Service radius in km.
    pub service_radius_km: f64,
    /// JSON array of declared qualification codes.
    pub declared_qualifications: String,
    /// Passenger seats of the volunteer's car.
    pub vehicle_seats: Option<i64>,
    /// JSON array of languages.
    pub languages: String,
    /// Cap on concurrent assignments.
    pub max_concurrent: i64,
    /// Gender, when declared.
    #[sqlx(try_from = "OptText")]
    pub gender: Option<Gender>,
    /// Emergency contact's name (sensitive).
    pub emergency_contact_name: Option<String>,
    /// Emergency contact's E.164 phone (sensitive).
    pub emergency_contact_phone: Option<String>,
    /// Where the volunteer is in the vetting pipeline.
    #[sqlx(try_from = "Text")]
    pub vetting_state: VettingState,
    /// On duty now.
    #[sqlx(try_from = "Flag")]
    pub on_duty: bool,
    /// On duty since, epoch ms.
    pub on_duty_since: Option<i64>,
    /// Creation instant, epoch ms.
    pub created_at: i64,
    /// Last profile or state change, epoch ms.
    pub updated_at: i64,
}

impl Volunteer {
    /// The team's path.
    pub fn org_path(&self) -> OrgPath {
        OrgPath::from_stored(self.team_path.clone())
    }

    /// Where service distance is measured from: own coordinates, else the
    /// home division's point; `None` when neither is known.
    pub fn location(&self) -> Option<GeoPoint> {
        match (self.home_longitude, self.home_latitude) {
            (Some(lon), Some(lat)) => GeoPoint::new(lon, lat).ok(),
            _ => GeoPoint::new(self.division_longitude?, self.division_latitude?).ok(),
        }
    }

    /// Whether the location comes from the volunteer's own coordinates.
    pub fn has_own_location(&self) -> bool {
        self.home_longitude.is_some() && self.home_latitude.is_some()
    }

    /// Declared qualifications (unknown codes dropped).
    pub fn declared(&self) -> Vec<Qualification> {
        parse_json_list(&self.declared_qualifications)
            .iter()
            .filter_map(|s| Qualification::parse(s).ok())
            .collect()
    }

    /// Languages as written.
    pub fn language_list(&self) -> Vec<String> {
        parse_json_list(&self.languages)
    }

    /// The profile as an update input (for partial changes).
    pub fn profile(&self) -> VolunteerProfile {
        VolunteerProfile {
            team_id: self.team_id,
            home_division_id: self.home_division_id,
            home_location: match (self.home_longitude, self.home_latitude) {
                (Some(lon), Some(lat)) => GeoPoint::new(lon, lat).ok(),
                _ => None,
            },
            service_radius_km: self.service_radius_km,
            declared_qualifications: self.declared(),
            vehicle_seats: self.vehicle_seats.and_then(|s| u32::try_from(s).ok()),
            languages: self.language_list(),
            max_concurrent: u32::try_from(self.max_concurrent).unwrap_or(1),
            gender: self.gender,
            emergency_contact: match (&self.emergency_contact_name, &self.emergency_contact_phone) {
                (Some(name), Some(phone)) => {
                    PhoneNumber::parse(phone)
                        .ok()
                        .map(|phone| EmergencyContact {
                            name: name.clone(),
                            phone,
                        })
                }
                _ => None,
            },
        }
    }
}

fn parse_json_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

fn json_list<T: Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// Someone to call if the volunteer is hurt. Sensitive: shown only to the
/// volunteer and coordinators in scope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EmergencyContact {
    /// Name, 1–100 characters.
    pub name: String,
    /// Phone, E.164.
    pub phone: PhoneNumber,
}

/// Every profile field, already checked by the domain (`homefront_domain::volunteer`).
#[derive(Clone, Debug, PartialEq)]
pub struct VolunteerProfile {
    /// Team (org unit of kind `team`).
    pub team_id: i64,
    /// Home division (org unit found by adcode).
    pub home_division_id: i64,
    /// Own coordinates; `None` = the division's point.
    pub home_location: Option<GeoPoint>,
    /// Service radius, km.
    pub service_radius_km: f64,
    /// What the applicant claims; credentials are what counts.
    pub declared_qualifications: Vec<Qualification>,
    /// Passenger seats, for drivers.
    pub vehicle_seats: Option<u32>,
    /// Languages as written.
    pub languages: Vec<String>,
    /// Cap on concurrent assignments.
    pub max_concurrent: u32,
    /// Optional gender.
    pub gender: Option<Gender>,
    /// Optional emergency contact.
    pub emergency_contact: Option<EmergencyContact>,
}

/// Who becomes the volunteer.
#[derive(Clone, Debug)]
pub enum Account<'a> {
    /// An existing account.
    Existing(i64),
    /// A new account.
    New {
        /// E.164 phone (unique).
        phone: &'a PhoneNumber,
        /// Display name.
        display_name: &'a str,
        /// Argon2id PHC string, or [`UNUSABLE_PASSWORD_HASH`].
        password_hash: &'a str,
    },
}

/// Why a registration was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterRefused {
    /// The account already has a volunteer profile.
    AlreadyVolunteer(i64),
    /// A new account's phone is taken.
    PhoneTaken,
    /// The existing account does not exist.
    NoSuchAccount,
}

/// One row of the vetting log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct VettingEvent {
    /// Row id.
    pub id: i64,
    /// The volunteer (account id).
    pub volunteer_id: i64,
    /// State before; `None` for the application.
    #[sqlx(try_from = "OptText")]
    #[schema(value_type = Option<String>)]
    pub from_state: Option<VettingState>,
    /// State after.
    #[sqlx(try_from = "Text")]
    #[schema(value_type = String)]
    pub to_state: VettingState,
    /// `apply`, `advance`, `reject`, `suspend`, `reinstate` or `withdraw`.
    #[sqlx(try_from = "Text")]
    #[schema(value_type = String)]
    pub action: VettingEventAction,
    /// Who acted; `None` for the system (command-line import).
    pub actor_id: Option<i64>,
    /// When, epoch ms.
    pub at: i64,
    /// Free-text note (e.g. the reason for a rejection).
    pub note: Option<String>,
    /// Reference to a supporting document (file name, archive number).
    pub document_ref: Option<String>,
}

/// Filters of [`Store::volunteers`]; every set field narrows the list.
#[derive(Clone, Debug, Default)]
pub struct VolunteerFilter<'a> {
    /// Only volunteers whose team lies in one of these subtrees; `None` = all.
    pub scopes: Option<&'a [OrgPath]>,
    /// Only this vetting state.
    pub state: Option<VettingState>,
    /// Only this team.
    pub team_id: Option<i64>,
    /// Only this account.
    pub user_id: Option<i64>,
    /// Only names containing this text, or phones containing its digits
    /// (case-insensitive; `%` and `_` match themselves).
    pub search: Option<&'a str>,
    /// At most this many rows (a page); `None` = all.
    pub limit: Option<i64>,
    /// Rows skipped before the page.
    pub offset: i64,
}

/// `text` as a `like` pattern that matches it anywhere, with `\` escaping
/// `%`, `_` and `\` (use with `escape '\'`).
pub(crate) fn contains_pattern(text: &str) -> String {
    let mut p = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.extend(c.to_lowercase());
    }
    p.push('%');
    p
}

/// The result of a duty switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DutyStatus {
    /// On duty after the call.
    pub on_duty: bool,
    /// Since when, epoch ms (unchanged by a repeated switch-on).
    pub on_duty_since: Option<i64>,
    /// Whether this call changed anything (false for a double click).
    pub changed: bool,
}

pub(crate) const VOLUNTEER_SELECT: &str = "select v.user_id, u.phone, u.display_name, v.team_id,
    t.name as team_name, t.path as team_path, t.time_zone, v.home_division_id,
    d.adcode as home_adcode, d.name as home_division_name, v.home_longitude, v.home_latitude,
    d.longitude as division_longitude, d.latitude as division_latitude, v.service_radius_km,
    v.declared_qualifications, v.vehicle_seats, v.languages, v.max_concurrent, v.gender,
    v.emergency_contact_name, v.emergency_contact_phone, v.vetting_state, v.on_duty,
    v.on_duty_since, v.created_at, v.updated_at
    from volunteer v
    join app_user u on u.id = v.user_id
    join org_unit t on t.id = v.team_id
    join org_unit d on d.id = v.home_division_id";

/// `base` (a query over `volunteer v`, `app_user u`, `org_unit t`) with
/// `filter`'s conditions: the text and the integer parameters to bind, in
/// that order. `None` when nothing can match (an empty scope set).
/// `with_state` applies the state filter (counts by state leave it out).
fn volunteer_where(
    base: &str,
    filter: &VolunteerFilter<'_>,
    with_state: bool,
) -> Option<(String, Vec<String>, Vec<i64>)> {
    let mut sql = base.to_string();
    let mut binds: Vec<String> = Vec::new();
    if !push_scope_clause(&mut sql, &mut binds, filter.scopes, "t.path") {
        return None;
    }
    if let (Some(state), true) = (filter.state, with_state) {
        binds.push(state.as_str().to_string());
        sql.push_str(&format!(" and v.vetting_state = ${}", binds.len()));
    }
    if let Some(text) = filter.search.map(str::trim).filter(|s| !s.is_empty()) {
        binds.push(contains_pattern(text));
        let name = binds.len();
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        if digits.len() >= 3 {
            binds.push(format!("%{digits}%"));
            sql.push_str(&format!(
                " and (lower(u.display_name) like ${name} escape '\\' or u.phone like ${})",
                binds.len()
            ));
        } else {
            sql.push_str(&format!(
                " and lower(u.display_name) like ${name} escape '\\'"
            ));
        }
    }
    // Ids are bound as integers after the text binds.
    let mut ints = Vec::new();
    if let Some(team) = filter.team_id {
        ints.push(team);
        sql.push_str(&format!(" and v.team_id = ${}", binds.len() + ints.len()));
    }
    if let Some(user) = filter.user_id {
        ints.push(user);
        sql.push_str(&format!(" and v.user_id = ${}", binds.len() + ints.len()));
    }
    Some((sql, binds, ints))
}

/// Appends `and (t.path like $n or ...)` for `scopes` to `sql`, pushing the
/// patterns to `binds`; returns false when `scopes` is an empty set (nothing
/// can match).
pub(crate) fn push_scope_clause(
    sql: &mut String,
    binds: &mut Vec<String>,
    scopes: Option<&[OrgPath]>,
    path_column: &str,
) -> bool {
    let Some(scopes) = scopes else {
        return true;
    };
    if scopes.is_empty() {
        return false;
    }
    let clauses: Vec<String> = scopes
        .iter()
        .map(|s| {
            binds.push(format!("{}%", s.as_str()));
            format!("{path_column} like ${}", binds.len())
        })
        .collect();
    sql.push_str(&format!(" and ({})", clauses.join(" or ")));
    true
}

impl Store {
    /// Registers a volunteer in state `applied`: creates the account when
    /// `account` is new, grants the volunteer role on the team (kept if
    /// already held), writes the profile and the `apply` vetting event, all
    /// in one transaction. Returns the volunteer id (= account id).
    ///
    /// # Errors
    /// `Ok(Err(RegisterRefused))` for a taken phone, an unknown account or an
    /// existing profile; [`StoreError::MissingReference`] for unknown org
    /// units; database errors.
    #[tracing::instrument(skip_all)]
    pub async fn register_volunteer(
        &self,
        account: Account<'_>,
        profile: &VolunteerProfile,
        actor: Option<i64>,
        now: Timestamp,
    ) -> Result<std::result::Result<i64, RegisterRefused>> {
        let mut tx = self.begin_write().await?;
        let user_id = match account {
            Account::Existing(id) => {
                let found: Option<i64> =
                    sqlx::query_scalar("select id from app_user where id = $1")
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                if found.is_none() {
                    return Ok(Err(RegisterRefused::NoSuchAccount));
                }
                id
            }
            Account::New {
                phone,
                display_name,
                password_hash,
            } => {
                let taken: Option<i64> =
                    sqlx::query_scalar("select id from app_user where phone = $1")
                        .bind(phone.as_str())
                        .fetch_optional(&mut *tx)
                        .await?;
                if taken.is_some() {
                    return Ok(Err(RegisterRefused::PhoneTaken));
                }
                Self::insert_account_tx(&mut tx, phone, display_name, password_hash, now).await?
            }
        };
        if Self::is_volunteer_tx(&mut tx, user_id).await? {
            return Ok(Err(RegisterRefused::AlreadyVolunteer(user_id)));
        }
        Self::insert_volunteer_tx(&mut tx, user_id, profile, actor, now).await?;
        tx.commit().await?;
        Ok(Ok(user_id))
    }

    /// Inserts an account (locale zh-CN) inside `tx`; returns its id.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the phone is taken.
    pub(crate) async fn insert_account_tx(
        tx: &mut Tx,
        phone: &PhoneNumber,
        display_name: &str,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<i64> {
        sqlx::query_scalar(
            "insert into app_user (phone, display_name, password_hash, locale, created_at)
             values ($1, $2, $3, 'zh-CN', $4) returning id",
        )
        .bind(phone.as_str())
        .bind(display_name)
        .bind(password_hash)
        .bind(now.epoch_ms())
        .fetch_one(&mut **tx)
        .await
        .map_err(crate::StoreError::from)
    }

    pub(crate) async fn is_volunteer_tx(tx: &mut Tx, user_id: i64) -> Result<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("select user_id from volunteer where user_id = $1")
                .bind(user_id)
                .fetch_optional(&mut **tx)
                .await?;
        Ok(found.is_some())
    }

    /// Writes a new profile (state `applied`), the volunteer grant on its
    /// team (kept if held) and the `apply` vetting event inside `tx`.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when a profile exists; database errors.
    pub(crate) async fn insert_volunteer_tx(
        tx: &mut Tx,
        user_id: i64,
        p: &VolunteerProfile,
        actor: Option<i64>,
        now: Timestamp,
    ) -> Result<()> {
        let now_ms = now.epoch_ms();
        sqlx::query(
            "insert into volunteer (user_id, team_id, home_division_id, home_longitude,
                home_latitude, service_radius_km, declared_qualifications, vehicle_seats,
                languages, max_concurrent, gender, emergency_contact_name,
                emergency_contact_phone, vetting_state, on_duty, on_duty_since, created_at, updated_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'applied', 0, null, $14, $14)",
        )
        // A nullable double: see the crate docs.
        .persistent(false)
        .bind(user_id)
        .bind(p.team_id)
        .bind(p.home_division_id)
        .bind(p.home_location.map(|l| l.longitude))
        .bind(p.home_location.map(|l| l.latitude))
        .bind(p.service_radius_km)
        .bind(json_list(&p.declared_qualifications))
        .bind(p.vehicle_seats.map(i64::from))
        .bind(json_list(&p.languages))
        .bind(i64::from(p.max_concurrent))
        .bind(p.gender.map(Gender::as_str))
        .bind(p.emergency_contact.as_ref().map(|c| c.name.clone()))
        .bind(p.emergency_contact.as_ref().map(|c| c.phone.as_str().to_string()))
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
        Self::ensure_volunteer_grant_tx(tx, user_id, p.team_id, now).await?;
        sqlx::query(
            "insert into vetting_event (volunteer_id, from_state, to_state, action, actor_id, at)
             values ($1, null, 'applied', 'apply', $2, $3)",
        )
        .bind(user_id)
        .bind(actor)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn ensure_volunteer_grant_tx(
        tx: &mut Tx,
        user_id: i64,
        team_id: i64,
        now: Timestamp,
    ) -> Result<()> {
        let held: Option<i64> = sqlx::query_scalar(
            "select id from role_grant where user_id = $1 and role = 'volunteer' and org_unit_id = $2",
        )
        .bind(user_id)
        .bind(team_id)
        .fetch_optional(&mut **tx)
        .await?;
        if held.is_none() {
            sqlx::query(
                "insert into role_grant (user_id, role, org_unit_id, created_at)
                 values ($1, 'volunteer', $2, $3)",
            )
            .bind(user_id)
            .bind(team_id)
            .bind(now.epoch_ms())
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Replaces a volunteer's profile inside `tx`. A team change moves the
    /// volunteer grant from the old team to the new one. Returns whether a
    /// row was updated.
    ///
    /// # Errors
    /// [`StoreError::MissingReference`] for unknown org units; database errors.
    pub(crate) async fn update_volunteer_tx(
        tx: &mut Tx,
        user_id: i64,
        p: &VolunteerProfile,
        now: Timestamp,
    ) -> Result<bool> {
        let old_team: Option<i64> =
            sqlx::query_scalar("select team_id from volunteer where user_id = $1")
                .bind(user_id)
                .fetch_optional(&mut **tx)
                .await?;
        let Some(old_team) = old_team else {
            return Ok(false);
        };
        sqlx::query(
            "update volunteer set team_id = $1, home_division_id = $2, home_longitude = $3,
                home_latitude = $4, service_radius_km = $5, declared_qualifications = $6,
                vehicle_seats = $7, languages = $8, max_concurrent = $9, gender = $10,
                emergency_contact_name = $11, emergency_contact_phone = $12, updated_at = $13
             where user_id = $14",
        )
        // A nullable double: see the crate docs.
        .persistent(false)
        .bind(p.team_id)
        .bind(p.home_division_id)
        .bind(p.home_location.map(|l| l.longitude))
        .bind(p.home_location.map(|l| l.latitude))
        .bind(p.service_radius_km)
        .bind(json_list(&p.declared_qualifications))
        .bind(p.vehicle_seats.map(i64::from))
        .bind(json_list(&p.languages))
        .bind(i64::from(p.max_concurrent))
        .bind(p.gender.map(Gender::as_str))
        .bind(p.emergency_contact.as_ref().map(|c| c.name.clone()))
        .bind(
            p.emergency_contact
                .as_ref()
                .map(|c| c.phone.as_str().to_string()),
        )
        .bind(now.epoch_ms())
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
        if old_team != p.team_id {
            sqlx::query(
                "delete from role_grant where user_id = $1 and role = 'volunteer' and org_unit_id = $2",
            )
            .bind(user_id)
            .bind(old_team)
            .execute(&mut **tx)
            .await?;
            Self::ensure_volunteer_grant_tx(tx, user_id, p.team_id, now).await?;
        }
        Ok(true)
    }

    /// Replaces a volunteer's profile (see [`VolunteerProfile`]); a team
    /// change moves the volunteer grant. Returns false when there is no such
    /// volunteer.
    ///
    /// # Errors
    /// [`StoreError::MissingReference`] for unknown org units; database errors.
    #[tracing::instrument(skip_all)]
    pub async fn update_volunteer(
        &self,
        user_id: i64,
        profile: &VolunteerProfile,
        now: Timestamp,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let updated = Self::update_volunteer_tx(&mut tx, user_id, profile, now).await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Sets an account's display name (roster re-import).
    pub(crate) async fn set_display_name_tx(tx: &mut Tx, user_id: i64, name: &str) -> Result<()> {
        sqlx::query("update app_user set display_name = $1 where id = $2")
            .bind(name)
            .bind(user_id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// One volunteer by account id.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn volunteer(&self, user_id: i64) -> Result<Option<Volunteer>> {
        let mut list = self
            .volunteers(&VolunteerFilter {
                user_id: Some(user_id),
                ..VolunteerFilter::default()
            })
            .await?;
        Ok(list.pop())
    }

    /// A volunteer's vetting state alone (`None`: not a volunteer).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn vetting_state(&self, user_id: i64) -> Result<Option<VettingState>> {
        let state: Option<String> =
            sqlx::query_scalar("select vetting_state from volunteer where user_id = $1")
                .bind(user_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(state.and_then(|s| VettingState::parse(&s).ok()))
    }

    /// Several volunteers at once, by account id (a report's rows),
    /// ordered by id; ids without a volunteer profile are left out and
    /// repeated ids read once. One statement per 1,000 ids (one bound
    /// parameter per id stays far below either engine's limit).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn volunteers_by_ids(&self, user_ids: &[i64]) -> Result<Vec<Volunteer>> {
        let mut ids = user_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(1000) {
            let slots: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "{VOLUNTEER_SELECT} where v.user_id in ({}) order by v.user_id",
                slots.join(", ")
            );
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(*id);
            }
            out.extend(q.fetch_all(self.pool()).await?);
        }
        Ok(out)
    }

    /// Volunteers matching `filter`, ordered by team path then id.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn volunteers(&self, filter: &VolunteerFilter<'_>) -> Result<Vec<Volunteer>> {
        let Some((mut sql, binds, mut ints)) =
            volunteer_where(&format!("{VOLUNTEER_SELECT} where 1 = 1"), filter, true)
        else {
            return Ok(Vec::new());
        };
        sql.push_str(" order by t.path, v.user_id");
        if let Some(limit) = filter.limit {
            sql.push_str(&format!(
                " limit ${} offset ${}",
                binds.len() + ints.len() + 1,
                binds.len() + ints.len() + 2
            ));
            ints.push(limit);
            ints.push(filter.offset.max(0));
        }
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = q.bind(b);
        }
        for i in ints {
            q = q.bind(i);
        }
        Ok(q.fetch_all(self.pool()).await?)
    }

    /// How many volunteers match `filter` (its `limit` and `offset` aside),
    /// by vetting state: (state code, count), states with none left out.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn volunteer_counts_by_state(
        &self,
        filter: &VolunteerFilter<'_>,
    ) -> Result<Vec<(String, i64)>> {
        let Some((mut sql, binds, ints)) = volunteer_where(
            "select v.vetting_state, cast(count(*) as bigint) from volunteer v
             join app_user u on u.id = v.user_id join org_unit t on t.id = v.team_id
             where 1 = 1",
            filter,
            true,
        ) else {
            return Ok(Vec::new());
        };
        sql.push_str(" group by v.vetting_state");
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = q.bind(b);
        }
        for i in ints {
            q = q.bind(i);
        }
        Ok(q.fetch_all(self.pool()).await?)
    }

    /// The account ids of every volunteer matching `filter` (its `limit`
    /// and `offset` aside), for a move of "all that match".
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn volunteer_ids(&self, filter: &VolunteerFilter<'_>) -> Result<Vec<i64>> {
        let Some((mut sql, binds, ints)) = volunteer_where(
            "select v.user_id from volunteer v
             join app_user u on u.id = v.user_id join org_unit t on t.id = v.team_id
             where 1 = 1",
            filter,
            true,
        ) else {
            return Ok(Vec::new());
        };
        sql.push_str(" order by t.path, v.user_id");
        let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = q.bind(b);
        }
        for i in ints {
            q = q.bind(i);
        }
        Ok(q.fetch_all(self.pool()).await?)
    }

    /// The team path of a volunteer inside `tx` (for a scope check before a
    /// move), or `None` when there is no such volunteer.
    ///
    /// # Errors
    /// Database errors.
    pub async fn volunteer_team_path_tx(tx: &mut Tx, user_id: i64) -> Result<Option<OrgPath>> {
        let path: Option<String> = sqlx::query_scalar(
            "select t.path from volunteer v join org_unit t on t.id = v.team_id where v.user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(&mut **tx)
        .await?;
        Ok(path.map(OrgPath::from_stored))
    }

    /// Moves a volunteer to `target` inside `tx`, by the one action that
    /// leads there (`vetting::action_to`, applied with `vetting::transition`),
    /// and appends the vetting event. Moving into `suspended`, `withdrawn` or
    /// `rejected` calls [`Store::on_volunteer_deactivated`] in the same
    /// transaction. The state is compare-and-set, so a concurrent move is
    /// re-read rather than overwritten.
    ///
    /// # Errors
    /// `Ok(Err(VettingError))` when the pipeline refuses the move (e.g.
    /// `step_skipped`); [`StoreError::Database`] with `RowNotFound` when
    /// there is no such volunteer; database errors.
    #[allow(clippy::too_many_arguments)]
    pub async fn move_vetting_tx(
        tx: &mut Tx,
        volunteer_id: i64,
        target: VettingState,
        actor: Option<i64>,
        now: Timestamp,
        note: Option<&str>,
        document_ref: Option<&str>,
    ) -> Result<std::result::Result<VettingEvent, VettingError>> {
        for _ in 0..3 {
            let current: Option<String> =
                sqlx::query_scalar("select vetting_state from volunteer where user_id = $1")
                    .bind(volunteer_id)
                    .fetch_optional(&mut **tx)
                    .await?;
            let from = current
                .as_deref()
                .and_then(|s| VettingState::parse(s).ok())
                .ok_or(StoreError::Database(sqlx::Error::RowNotFound))?;
            let action = match vetting::action_to(from, target) {
                Ok(a) => a,
                Err(e) => return Ok(Err(e)),
            };
            let to = match vetting::transition(from, action) {
                Ok(to) => to,
                Err(e) => return Ok(Err(e)),
            };
            let moved = sqlx::query(
                "update volunteer set vetting_state = $1, updated_at = $2
                 where user_id = $3 and vetting_state = $4",
            )
            .bind(to.as_str())
            .bind(now.epoch_ms())
            .bind(volunteer_id)
            .bind(from.as_str())
            .execute(&mut **tx)
            .await?;
            if moved.rows_affected() != 1 {
                continue;
            }
            let id: i64 = sqlx::query_scalar(
                "insert into vetting_event (volunteer_id, from_state, to_state, action, actor_id, at, note, document_ref)
                 values ($1, $2, $3, $4, $5, $6, $7, $8) returning id",
            )
            .bind(volunteer_id)
            .bind(from.as_str())
            .bind(to.as_str())
            .bind(action.as_str())
            .bind(actor)
            .bind(now.epoch_ms())
            .bind(note)
            .bind(document_ref)
            .fetch_one(&mut **tx)
            .await?;
            if matches!(
                action,
                VettingAction::Suspend | VettingAction::Withdraw | VettingAction::Reject
            ) {
                Self::on_volunteer_deactivated(tx, volunteer_id, actor, now).await?;
            }
            return Ok(Ok(VettingEvent {
                id,
                volunteer_id,
                from_state: Some(from),
                to_state: to,
                action: action.into(),
                actor_id: actor,
                at: now.epoch_ms(),
                note: note.map(str::to_string),
                document_ref: document_ref.map(str::to_string),
            }));
        }
        // The vetting state kept changing concurrently.
        Err(StoreError::Stale)
    }

    /// The deactivation hook: called inside the transaction that suspends,
    /// withdraws or rejects a volunteer ([`Store::move_vetting_tx`] does),
    /// so that a volunteer who may no longer serve stops receiving work in
    /// the same commit:
    /// - off duty, with a duty event (reason `deactivated`);
    /// - open offers withdrawn;
    /// - live assignments (`assigned`, `in_service`) released back to
    ///   dispatch with a `release` event, so the dispatcher offers them again;
    /// - live pairings ended, each with a re-pairing proposal for a
    ///   coordinator (the replacement is suggested by the dispatcher).
    ///
    /// History, hours and ended pairings stay.
    ///
    /// # Errors
    /// Database errors.
    pub async fn on_volunteer_deactivated(
        tx: &mut Tx,
        volunteer_id: i64,
        actor: Option<i64>,
        now: Timestamp,
    ) -> Result<()> {
        let now_ms = now.epoch_ms();
        Self::switch_duty_tx(tx, volunteer_id, false, "deactivated", actor, now).await?;
        sqlx::query(
            "update offer set state = 'withdrawn', responded_at = $1
             where volunteer_user_id = $2 and state = 'offered'",
        )
        .bind(now_ms)
        .bind(volunteer_id)
        .execute(&mut **tx)
        .await?;
        let live: Vec<i64> = sqlx::query_scalar(
            "select id from service_order where assignee_user_id = $1 and state in ('assigned', 'in_service')
             order by id",
        )
        .bind(volunteer_id)
        .fetch_all(&mut **tx)
        .await?;
        for order_id in live {
            crate::orders::transition_in(
                tx,
                order_id,
                &homefront_domain::order_state::OrderAction::Release,
                actor,
                None,
                now_ms,
            )
            .await?;
        }
        let pairings: Vec<(i64, i64, String)> = sqlx::query_as(
            "select id, household_id, role from pairing where volunteer_user_id = $1 and ended_at is null",
        )
        .bind(volunteer_id)
        .fetch_all(&mut **tx)
        .await?;
        for (pairing_id, household_id, role) in pairings {
            sqlx::query("update pairing set ended_at = $1, end_reason = 'volunteer deactivated' where id = $2")
                .bind(now_ms)
                .bind(pairing_id)
                .execute(&mut **tx)
                .await?;
            sqlx::query(
                "insert into pairing_proposal (ended_pairing_id, household_id, role, created_at)
                 values ($1, $2, $3, $4)",
            )
            .bind(pairing_id)
            .bind(household_id)
            .bind(&role)
            .bind(now_ms)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Compare-and-set duty switch inside `tx`; logs a duty event when it
    /// changed something. Switching on requires the state `active`.
    async fn switch_duty_tx(
        tx: &mut Tx,
        volunteer_id: i64,
        on: bool,
        reason: &str,
        actor: Option<i64>,
        now: Timestamp,
    ) -> Result<bool> {
        let now_ms = now.epoch_ms();
        let r = if on {
            sqlx::query(
                "update volunteer set on_duty = 1, on_duty_since = $1
                 where user_id = $2 and on_duty = 0 and vetting_state = 'active'",
            )
            .bind(now_ms)
            .bind(volunteer_id)
            .execute(&mut **tx)
            .await?
        } else {
            sqlx::query(
                "update volunteer set on_duty = 0, on_duty_since = null
                 where user_id = $1 and on_duty = 1",
            )
            .bind(volunteer_id)
            .execute(&mut **tx)
            .await?
        };
        let changed = r.rows_affected() == 1;
        if changed {
            sqlx::query(
                "insert into duty_event (volunteer_id, on_duty, reason, actor_id, at)
                 values ($1, $2, $3, $4, $5)",
            )
            .bind(volunteer_id)
            .bind(flag(on))
            .bind(reason)
            .bind(actor)
            .bind(now_ms)
            .execute(&mut **tx)
            .await?;
        }
        Ok(changed)
    }

    /// Switches the duty toggle: idempotent (switching on twice keeps the
    /// first `on_duty_since`). Switching off withdraws the volunteer's open
    /// offers in the same transaction
    /// ([`Store::withdraw_offers_of_volunteer`]). Switching on only works for an `active`
    /// volunteer; callers check the state first to explain a refusal.
    /// Returns the state after the call, or `None` for no such volunteer.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn set_duty(
        &self,
        volunteer_id: i64,
        on: bool,
        actor: Option<i64>,
        now: Timestamp,
    ) -> Result<Option<DutyStatus>> {
        let mut tx = self.begin_write().await?;
        let changed = Self::switch_duty_tx(&mut tx, volunteer_id, on, "toggle", actor, now).await?;
        if changed && !on {
            // Off duty: their open offers go back to dispatch, each with a notice.
            Self::withdraw_offers_of_volunteer(&mut tx, volunteer_id, now.epoch_ms()).await?;
        }
        let row: Option<(i64, Option<i64>)> =
            sqlx::query_as("select on_duty, on_duty_since from volunteer where user_id = $1")
                .bind(volunteer_id)
                .fetch_optional(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(row.map(|(on_duty, since)| DutyStatus {
            on_duty: on_duty != 0,
            on_duty_since: since,
            changed,
        }))
    }

    /// The deepest division (province, city or county) on `path`, e.g. the
    /// county a team is placed under; `None` when there is none.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn enclosing_division(&self, path: &OrgPath) -> Result<Option<i64>> {
        for id in path.ids().into_iter().rev() {
            let kind: Option<String> =
                sqlx::query_scalar("select kind from org_unit where id = $1")
                    .bind(id)
                    .fetch_optional(self.pool())
                    .await?;
            if matches!(kind.as_deref(), Some("province" | "city" | "county")) {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }

    /// A volunteer's vetting log, oldest first.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn vetting_events(&self, volunteer_id: i64) -> Result<Vec<VettingEvent>> {
        Ok(sqlx::query_as(
            "select id, volunteer_id, from_state, to_state, action, actor_id, at, note, document_ref
             from vetting_event where volunteer_id = $1 order by id",
        )
        .bind(volunteer_id)
        .fetch_all(self.pool())
        .await?)
    }
}
