//! Volunteers (product issue 4): profiles, vetting, credentials, duty,
//! availability, and roster import/export. Every `{id}` is the volunteer's
//! account id; `me` stands for the caller's own.
//!
//! | route | who |
//! |---|---|
//! | `POST /volunteers` register (account + grant + profile, state `applied`) | coordinators in scope, admins |
//! | `GET /volunteers?state=&team_id=` | coordinators (subtree), admins; a volunteer gets itself |
//! | `GET /volunteers/{id}`, `PATCH /volunteers/{id}` | the volunteer, coordinators in scope |
//! | `POST /volunteers/{id}/vetting`, `GET` its log, `POST /volunteers/vetting` (bulk) | coordinators; the volunteer may withdraw |
//! | `GET/POST /volunteers/{id}/credentials`, `POST .../{cid}/revoke` | read: the volunteer and coordinators; write: coordinators |
//! | `GET /volunteers/expiring-credentials?within_days=14` | coordinators |
//! | `GET /volunteers/{id}/eligibility?qualifications=teacher,driving_licence&at=MS` | the volunteer, coordinators |
//! | `POST /volunteers/{id}/duty` (`me/duty`) | the volunteer, coordinators in scope |
//! | `GET /volunteers/{id}/availability`, windows and leaves CRUD, `GET .../available?at=&until=` | the volunteer, coordinators |
//! | `POST /volunteers/import`, `GET /volunteers/import/template`, `GET /volunteers/export` | coordinators, admins |
//!
//! Scope: a record outside the caller's scope answers 404 like a missing
//! one; a role that can never do the action answers 403.

// `pub(super)` so that `api::openapi` can name their handlers' paths.
pub(crate) mod availability;
pub(crate) mod credentials;
pub(crate) mod roster;
pub(crate) mod vetting;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use homefront_domain::credentials::{CredentialKind, Qualification};
use homefront_domain::org::{OrgKind, OrgPath};
use homefront_domain::vetting::VettingState;
use homefront_domain::volunteer::{self as profile, Gender, ProfileError};
use homefront_domain::{Adcode, GeoPoint, PhoneNumber, Role};
use homefront_store::volunteers::{
    Account, EmergencyContact, RegisterRefused, UNUSABLE_PASSWORD_HASH, Volunteer, VolunteerFilter,
    VolunteerProfile,
};
use serde::{Deserialize, Deserializer, Serialize};

use crate::AppState;
use crate::api::ApiQuery;
use crate::api::openapi::{BodyRejection, ErrorShape, QueryRejection};
use crate::api::{ApiJson, parse_id};
use crate::auth::{self, Actor};
use crate::error::{ApiError, ApiResult};

/// Volunteer routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/volunteers", get(list).post(register))
        .route("/volunteers/vetting", post(vetting::bulk))
        .route(
            "/volunteers/expiring-credentials",
            get(credentials::expiring),
        )
        .route(
            "/volunteers/import",
            post(roster::import).layer(axum::extract::DefaultBodyLimit::max(
                roster::MAX_UPLOAD_BYTES,
            )),
        )
        .route("/volunteers/import/template", get(roster::template))
        .route("/volunteers/export", get(roster::export))
        .route("/volunteers/{id}", get(show).patch(update))
        .route(
            "/volunteers/{id}/vetting",
            get(vetting::log).post(vetting::move_one),
        )
        .route(
            "/volunteers/{id}/credentials",
            get(credentials::list).post(credentials::add),
        )
        .route(
            "/volunteers/{id}/credentials/{credential_id}/revoke",
            post(credentials::revoke),
        )
        .route(
            "/volunteers/{id}/eligibility",
            get(credentials::eligibility),
        )
        .route("/volunteers/{id}/duty", post(availability::duty))
        .route("/volunteers/{id}/availability", get(availability::show))
        .route(
            "/volunteers/{id}/availability/windows",
            post(availability::add_window).put(availability::replace_windows),
        )
        .route(
            "/volunteers/{id}/availability/windows/{window_id}",
            axum::routing::delete(availability::delete_window),
        )
        .route(
            "/volunteers/{id}/availability/leaves",
            post(availability::add_leave),
        )
        .route(
            "/volunteers/{id}/availability/leaves/{leave_id}",
            axum::routing::delete(availability::delete_leave),
        )
        .route("/volunteers/{id}/available", get(availability::available))
}

/// A path id: a number, or `me` for the caller.
fn volunteer_id(actor: &Actor, raw: &str) -> ApiResult<i64> {
    if raw == "me" {
        Ok(actor.user.id)
    } else {
        parse_id(raw)
    }
}

/// Whether the actor's roles could ever touch volunteer records.
fn may_use_volunteers(actor: &Actor) -> bool {
    actor.is_admin() || actor.has(Role::Coordinator) || actor.has(Role::Volunteer)
}

/// Whether the actor coordinates (or is an admin).
fn coordinates(actor: &Actor) -> bool {
    actor.is_admin() || actor.has(Role::Coordinator)
}

/// Loads a volunteer the actor may see: itself, or one whose team the
/// actor manages. 403 for roles that never see volunteers, 404 otherwise.
async fn visible(state: &AppState, actor: &Actor, id: i64) -> ApiResult<Volunteer> {
    if !may_use_volunteers(actor) {
        return Err(ApiError::forbidden());
    }
    match state.store.volunteer(id).await? {
        Some(v) if v.user_id == actor.user.id || actor.manages(&v.org_path()) => Ok(v),
        _ => Err(ApiError::not_found()),
    }
}

/// Loads a volunteer the actor manages; 403 when the actor sees it (itself)
/// or holds no coordinating role, 404 when it cannot see it.
async fn managed(state: &AppState, actor: &Actor, id: i64) -> ApiResult<Volunteer> {
    let v = visible(state, actor, id).await?;
    if actor.manages(&v.org_path()) {
        Ok(v)
    } else {
        Err(ApiError::forbidden())
    }
}

fn profile_error(e: ProfileError) -> ApiError {
    ApiError::invalid(e.field, e.code, e.message)
}

/// The team a volunteer may be placed in: an org unit of kind `team` that
/// the actor manages.
async fn managed_team(state: &AppState, actor: &Actor, team_id: i64) -> ApiResult<OrgPath> {
    match state.store.org_unit(team_id).await? {
        Some(u) if actor.manages(&u.org_path()) => {
            if u.kind != OrgKind::Team {
                return Err(ApiError::invalid(
                    "team_id",
                    "wrong_org_kind",
                    format!(
                        "org unit {team_id} is a {}, not a team; volunteers belong to a team",
                        u.kind
                    ),
                ));
            }
            Ok(u.org_path())
        }
        _ => Err(ApiError::invalid(
            "team_id",
            "unknown_team",
            "no team with this id in your area",
        )),
    }
}

/// A division (province, city or county) by 6- or 12-digit adcode.
async fn division_by_adcode(state: &AppState, raw: &str) -> ApiResult<i64> {
    let code = Adcode::parse(raw)
        .map_err(|e| ApiError::invalid("home_adcode", "invalid_adcode", e.to_string()))?;
    match state.store.org_unit_by_adcode(&code.as_string()).await? {
        Some(u) if u.kind != OrgKind::Team && u.adcode.is_some() => Ok(u.id),
        _ => Err(ApiError::invalid(
            "home_adcode",
            "unknown_adcode",
            format!(
                "no division with adcode {raw} is set up; check the GB/T 2260 code (e.g. 320102) or ask an admin to import that province"
            ),
        )),
    }
}

/// Coordinates as sent in JSON.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LonLat {
    /// Longitude, decimal degrees.
    pub longitude: f64,
    /// Latitude, decimal degrees.
    pub latitude: f64,
}

fn geo(p: LonLat) -> ApiResult<GeoPoint> {
    GeoPoint::new(p.longitude, p.latitude).map_err(|e| {
        let field = if matches!(e, homefront_domain::geo::GeoError::Longitude(_)) {
            "home_location.longitude"
        } else {
            "home_location.latitude"
        };
        ApiError::invalid(field, "invalid_coordinates", e.to_string())
    })
}

/// An emergency contact as sent in JSON.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactInput {
    /// Name, 1–100 characters.
    pub name: String,
    /// Phone in any common form.
    pub phone: String,
}

fn contact(c: &ContactInput) -> ApiResult<EmergencyContact> {
    Ok(EmergencyContact {
        name: profile::person_name("emergency_contact.name", &c.name).map_err(profile_error)?,
        phone: PhoneNumber::parse(&c.phone)
            .map_err(|e| ApiError::invalid("emergency_contact.phone", e.code(), e.to_string()))?,
    })
}

fn qualifications(raw: &[String], field: &str) -> ApiResult<Vec<Qualification>> {
    let mut out = Vec::new();
    for q in raw {
        let q = Qualification::parse(q.trim())
            .map_err(|e| ApiError::invalid(field, "invalid_qualification", e.to_string()))?;
        if !out.contains(&q) {
            out.push(q);
        }
    }
    Ok(out)
}

fn gender(raw: &str) -> ApiResult<Gender> {
    Gender::parse(raw).map_err(profile_error)
}

/// Deserializes a field that may be absent (`None`), `null` (`Some(None)`)
/// or a value, for PATCH bodies.
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `POST /api/v1/volunteers` body. Give `user_id` of an existing account,
/// or `phone` (an existing account with that phone is used; otherwise one
/// is created with `display_name` and the optional `password`; without a
/// password the account cannot sign in until an admin sets one).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterVolunteer {
    /// An existing account.
    pub user_id: Option<i64>,
    /// Phone in any common form (normalised to E.164).
    pub phone: Option<String>,
    /// Name for a new account, 1–100 characters.
    pub display_name: Option<String>,
    /// Password for a new account: 10 to 256 characters, not easy to guess.
    pub password: Option<String>,
    /// The team (org unit of kind `team`) in the caller's area.
    pub team_id: i64,
    /// Home division's adcode (6 or 12 digits); default: the team's division.
    pub home_adcode: Option<String>,
    /// Own home coordinates; default: the division's point.
    pub home_location: Option<LonLat>,
    /// Service radius in km, above 0, at most 200; default 10.
    pub service_radius_km: Option<f64>,
    /// Claimed qualifications (codes such as `driving_licence`); eligibility
    /// uses credentials only.
    #[serde(default)]
    pub declared_qualifications: Vec<String>,
    /// Passenger seats, 1–60, for drivers (`driving_licence` declared).
    pub vehicle_seats: Option<i64>,
    /// Languages as written, e.g. `["普通话", "English"]`.
    #[serde(default)]
    pub languages: Vec<String>,
    /// Cap on concurrent assignments, 1–10; default 1.
    pub max_concurrent: Option<i64>,
    /// `female`, `male` or `unspecified`.
    pub gender: Option<String>,
    /// Emergency contact (sensitive).
    pub emergency_contact: Option<ContactInput>,
}

/// The volunteer's team.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TeamView {
    /// Org-unit id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// IANA time zone of weekly windows.
    pub time_zone: String,
}

/// Where service distance is measured from.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HomeView {
    /// Home division's org-unit id.
    pub division_id: i64,
    /// Its 12-digit adcode.
    pub adcode: Option<String>,
    /// Its name.
    pub division_name: String,
    /// Effective longitude, decimal degrees.
    pub longitude: Option<f64>,
    /// Effective latitude, decimal degrees.
    pub latitude: Option<f64>,
    /// `own` (the volunteer's coordinates) or `division` (the division's point).
    pub source: &'static str,
}

/// Emergency contact as shown to the volunteer and coordinators in scope.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ContactView {
    /// Name.
    pub name: String,
    /// E.164 phone.
    pub phone: String,
}

/// A volunteer as the API shows it. `emergency_contact` appears only in the
/// single-volunteer answers, never in lists.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VolunteerView {
    /// Volunteer id (= account id).
    pub id: i64,
    /// Account display name.
    pub display_name: String,
    /// Account phone, E.164.
    pub phone: String,
    /// Team.
    pub team: TeamView,
    /// Home location.
    pub home: HomeView,
    /// Service radius, km.
    pub service_radius_km: f64,
    /// Claimed qualifications (not used for eligibility).
    pub declared_qualifications: Vec<Qualification>,
    /// Passenger seats.
    pub vehicle_seats: Option<i64>,
    /// Languages.
    pub languages: Vec<String>,
    /// Cap on concurrent assignments.
    pub max_concurrent: i64,
    /// Gender, if declared.
    pub gender: Option<Gender>,
    /// Emergency contact (detail answers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emergency_contact: Option<ContactView>,
    /// Vetting state.
    #[schema(value_type = String)]
    pub vetting_state: VettingState,
    /// Duty toggle.
    pub on_duty: bool,
    /// On duty since, epoch ms.
    pub on_duty_since: Option<i64>,
    /// Registered at, epoch ms.
    pub created_at: i64,
    /// Last change, epoch ms.
    pub updated_at: i64,
}

impl VolunteerView {
    fn summary(v: &Volunteer) -> Self {
        let location = v.location();
        Self {
            id: v.user_id,
            display_name: v.display_name.clone(),
            phone: v.phone.clone(),
            team: TeamView {
                id: v.team_id,
                name: v.team_name.clone(),
                time_zone: v.time_zone.name().to_string(),
            },
            home: HomeView {
                division_id: v.home_division_id,
                adcode: v.home_adcode.clone(),
                division_name: v.home_division_name.clone(),
                longitude: location.map(|l| l.longitude),
                latitude: location.map(|l| l.latitude),
                source: if v.has_own_location() {
                    "own"
                } else {
                    "division"
                },
            },
            service_radius_km: v.service_radius_km,
            declared_qualifications: v.declared(),
            vehicle_seats: v.vehicle_seats,
            languages: v.language_list(),
            max_concurrent: v.max_concurrent,
            gender: v.gender,
            emergency_contact: None,
            vetting_state: v.vetting_state,
            on_duty: v.on_duty,
            on_duty_since: v.on_duty_since,
            created_at: v.created_at,
            updated_at: v.updated_at,
        }
    }

    fn detail(v: &Volunteer) -> Self {
        Self {
            emergency_contact: match (&v.emergency_contact_name, &v.emergency_contact_phone) {
                (Some(name), Some(phone)) => Some(ContactView {
                    name: name.clone(),
                    phone: phone.clone(),
                }),
                _ => None,
            },
            ..Self::summary(v)
        }
    }
}

fn unknown_user() -> ApiError {
    ApiError::invalid(
        "user_id",
        "unknown_user",
        "no account with this id; give phone and display_name to create one",
    )
}

/// Register a volunteer: an account (existing, or new from `phone`), a
/// volunteer grant on a team, and a profile in vetting state `applied`.
///
/// For coordinators of the team's area and admins. An existing account
/// only when the coordinator administers it (every role inside its area
/// and below its level); any other joins through an admin. Without `password` a
/// new account cannot sign in until someone sets one
/// (`POST /api/v1/users/{id}/password`).
#[utoipa::path(post, path = "/api/v1/volunteers", tag = "volunteers", operation_id = "register_volunteer",
    request_body = RegisterVolunteer,
    responses(
        (status = 201, description = "Registered, state `applied`", body = VolunteerView),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden` for roles other than coordinator and admin; `account_outside_area` (field `user_id` or `phone`): the existing account holds a role outside the coordinator's area or at its level, so an admin must add it; or `csrf_failed`", body = ErrorShape),
        (status = 409, description = "`already_volunteer`, or `phone_taken` (field `phone`) when an account with the phone was created meanwhile", body = ErrorShape),
        (status = 422, description = "Invalid input naming the field: `account_required` (`phone`: give `user_id` or `phone`, not both), `unknown_user` (`user_id`), `invalid_phone`, `invalid_name` (`display_name`), `weak_password`, `password_too_long` or `common_password` (`password`), `unknown_team` or `wrong_org_kind` (`team_id`), `adcode_required`, `invalid_adcode` or `unknown_adcode` (`home_adcode`), `invalid_coordinates` (`home_location.longitude`/`.latitude`), `invalid_radius` (`service_radius_km`, above 0 and at most 200 km), `invalid_qualification` (`declared_qualifications`), `invalid_vehicle_seats` (`vehicle_seats`, 1–60, drivers only), `invalid_languages` (`languages`), `invalid_max_concurrent` (`max_concurrent`, 1–10), `invalid_gender` (`gender`), `invalid_name` or `invalid_phone` (`emergency_contact.name`/`.phone`)", body = ErrorShape),
        BodyRejection))]
pub(crate) async fn register(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<RegisterVolunteer>,
) -> ApiResult<(StatusCode, Json<VolunteerView>)> {
    if !coordinates(&actor) {
        return Err(ApiError::forbidden());
    }
    let team_path = managed_team(&state, &actor, req.team_id).await?;
    let home_division_id = match req.home_adcode.as_deref() {
        Some(code) => division_by_adcode(&state, code).await?,
        None => state
            .store
            .enclosing_division(&team_path)
            .await?
            .ok_or_else(|| {
                ApiError::invalid(
                    "home_adcode",
                    "adcode_required",
                    "the team is not placed under a division; give home_adcode",
                )
            })?,
    };
    let declared = qualifications(&req.declared_qualifications, "declared_qualifications")?;
    let drives = declared.contains(&Qualification::DrivingLicence);
    let p = VolunteerProfile {
        team_id: req.team_id,
        home_division_id,
        home_location: req.home_location.map(geo).transpose()?,
        service_radius_km: profile::service_radius_km(
            req.service_radius_km
                .unwrap_or(profile::DEFAULT_SERVICE_RADIUS_KM),
        )
        .map_err(profile_error)?,
        vehicle_seats: req
            .vehicle_seats
            .map(|s| profile::vehicle_seats(s, drives))
            .transpose()
            .map_err(profile_error)?,
        declared_qualifications: declared,
        languages: profile::languages(&req.languages).map_err(profile_error)?,
        max_concurrent: profile::max_concurrent(
            req.max_concurrent
                .unwrap_or(i64::from(profile::DEFAULT_MAX_CONCURRENT)),
        )
        .map_err(profile_error)?,
        gender: req.gender.as_deref().map(gender).transpose()?,
        emergency_contact: req.emergency_contact.as_ref().map(contact).transpose()?,
    };
    let now = state.clock.now();
    let phone;
    let name;
    let hash;
    let account = match (req.user_id, req.phone.as_deref()) {
        (Some(id), None) => Account::Existing(id),
        (None, Some(raw)) => {
            phone = PhoneNumber::parse(raw)
                .map_err(|e| ApiError::invalid("phone", e.code(), e.to_string()))?;
            match state.store.user_by_phone(&phone).await? {
                Some(u) => Account::Existing(u.id),
                None => {
                    name = profile::person_name(
                        "display_name",
                        req.display_name.as_deref().unwrap_or(""),
                    )
                    .map_err(profile_error)?;
                    hash = match req.password {
                        Some(pw) => {
                            auth::check_password_strength(
                                "password",
                                &pw,
                                &auth::personal_inputs(phone.as_str(), &name),
                            )?;
                            auth::hash_password(pw).await?
                        }
                        None => UNUSABLE_PASSWORD_HASH.to_string(),
                    };
                    Account::New {
                        phone: &phone,
                        display_name: &name,
                        password_hash: &hash,
                    }
                }
            }
        }
        _ => {
            return Err(ApiError::invalid(
                "phone",
                "account_required",
                "give either user_id (an existing account) or phone (and display_name for a new account), not both",
            ));
        }
    };
    // Attaching an existing account to a team makes it visible to the
    // team's coordinators: only for accounts the caller administers. One it
    // cannot see by id answers as a missing one; one found by its phone
    // (which the caller typed) is named.
    if let &Account::Existing(user_id) = &account
        && !actor.is_admin()
    {
        let grants = state.store.grants(user_id).await?;
        let by_id = req.user_id.is_some();
        if by_id && !crate::api::users::can_see(&actor, user_id, &grants) {
            return Err(unknown_user());
        }
        if !actor.administers(&grants) {
            return Err(ApiError {
                field: Some(if by_id { "user_id" } else { "phone" }.into()),
                ..auth::account_outside_area()
            });
        }
    }
    let id = match state
        .store
        .register_volunteer(account, &p, Some(actor.user.id), now)
        .await?
    {
        Ok(id) => id,
        Err(RegisterRefused::AlreadyVolunteer(_)) => {
            return Err(ApiError::conflict(
                "already_volunteer",
                "this account is already a volunteer; change its profile with PATCH /api/v1/volunteers/{id}",
            ));
        }
        Err(RegisterRefused::PhoneTaken) => {
            return Err(ApiError {
                field: Some("phone".into()),
                ..ApiError::conflict(
                    "phone_taken",
                    "an account with this phone was created meanwhile; send the request again",
                )
            });
        }
        Err(RegisterRefused::NoSuchAccount) => return Err(unknown_user()),
    };
    let v = state
        .store
        .volunteer(id)
        .await?
        .ok_or_else(|| ApiError::internal("registered volunteer not found"))?;
    Ok((StatusCode::CREATED, Json(VolunteerView::detail(&v))))
}

/// Query of `GET /api/v1/volunteers`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this vetting state.
    pub state: Option<String>,
    /// Only this team.
    pub team_id: Option<i64>,
}

fn parse_state(field: &str, raw: &str) -> ApiResult<VettingState> {
    VettingState::parse(raw).map_err(|e| ApiError::invalid(field, "invalid_state", e.to_string()))
}

/// Volunteers in the caller's area, without emergency contacts.
///
/// Coordinators see their subtree's teams, admins all; a volunteer gets
/// only itself.
#[utoipa::path(get, path = "/api/v1/volunteers", tag = "volunteers", operation_id = "list_volunteers",
    params(ListQuery),
    responses(
        (status = 200, body = Vec<VolunteerView>),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: no role of the caller deals with volunteers", body = ErrorShape),
        (status = 422, description = "`invalid_state` (field `state`)", body = ErrorShape),
        QueryRejection))]
pub(crate) async fn list(
    State(state): State<AppState>,
    actor: Actor,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Vec<VolunteerView>>> {
    let vetting = q
        .state
        .as_deref()
        .map(|s| parse_state("state", s))
        .transpose()?;
    let scopes = actor.managed_scopes();
    let filter = match &scopes {
        None => VolunteerFilter {
            scopes: None,
            ..VolunteerFilter::default()
        },
        Some(s) if !s.is_empty() => VolunteerFilter {
            scopes: Some(s),
            ..VolunteerFilter::default()
        },
        // Not a coordinator: a volunteer sees itself.
        Some(_) if actor.has(Role::Volunteer) => VolunteerFilter {
            user_id: Some(actor.user.id),
            ..VolunteerFilter::default()
        },
        Some(_) => return Err(ApiError::forbidden()),
    };
    let filter = VolunteerFilter {
        state: vetting,
        team_id: q.team_id,
        ..filter
    };
    let list = state.store.volunteers(&filter).await?;
    Ok(Json(list.iter().map(VolunteerView::summary).collect()))
}

/// One volunteer's profile, with the emergency contact.
#[utoipa::path(get, path = "/api/v1/volunteers/{id}", tag = "volunteers", operation_id = "show_volunteer",
    params(("id" = String, Path, description = "The volunteer's account id, or `me` for the caller")),
    responses(
        (status = 200, body = VolunteerView),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: no role of the caller deals with volunteers", body = ErrorShape),
        (status = 404, description = "No such volunteer, or neither the caller nor in the caller's area", body = ErrorShape)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<VolunteerView>> {
    let id = volunteer_id(&actor, &id)?;
    Ok(Json(VolunteerView::detail(
        &visible(&state, &actor, id).await?,
    )))
}

/// `PATCH /api/v1/volunteers/{id}` body: only the fields given change;
/// `null` clears an optional one. `team_id` and `max_concurrent` are for
/// coordinators (403 for the volunteer itself).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateVolunteer {
    /// Move to this team (coordinators; both teams in their area).
    pub team_id: Option<i64>,
    /// Home division's adcode.
    pub home_adcode: Option<String>,
    /// Own coordinates; `null` = use the division's point.
    #[serde(default, deserialize_with = "nullable")]
    pub home_location: Option<Option<LonLat>>,
    /// Service radius in km.
    pub service_radius_km: Option<f64>,
    /// Claimed qualifications (replaces the list).
    pub declared_qualifications: Option<Vec<String>>,
    /// Passenger seats; `null` clears.
    #[serde(default, deserialize_with = "nullable")]
    pub vehicle_seats: Option<Option<i64>>,
    /// Languages (replaces the list).
    pub languages: Option<Vec<String>>,
    /// Cap on concurrent assignments (coordinators).
    pub max_concurrent: Option<i64>,
    /// Gender; `null` clears.
    #[serde(default, deserialize_with = "nullable")]
    pub gender: Option<Option<String>>,
    /// Emergency contact; `null` clears.
    #[serde(default, deserialize_with = "nullable")]
    pub emergency_contact: Option<Option<ContactInput>>,
}

/// Change a volunteer's profile: only the fields given change, `null`
/// clears an optional one.
///
/// The volunteer may edit its own profile except `team_id` and
/// `max_concurrent`, which are for coordinators of its team.
#[utoipa::path(patch, path = "/api/v1/volunteers/{id}", tag = "volunteers", operation_id = "update_volunteer",
    params(("id" = String, Path, description = "The volunteer's account id, or `me` for the caller")),
    request_body = UpdateVolunteer,
    responses(
        (status = 200, description = "The profile as changed", body = VolunteerView),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: no role of the caller deals with volunteers, or the volunteer itself sets `team_id` or `max_concurrent`; or `csrf_failed`", body = ErrorShape),
        (status = 404, description = "No such volunteer, or neither the caller nor in the caller's area", body = ErrorShape),
        (status = 422, description = "Invalid input naming the field: `unknown_team` or `wrong_org_kind` (`team_id`), `invalid_adcode` or `unknown_adcode` (`home_adcode`), `invalid_coordinates` (`home_location.longitude`/`.latitude`), `invalid_radius` (`service_radius_km`, above 0 and at most 200 km), `invalid_qualification` (`declared_qualifications`), `invalid_vehicle_seats` (`vehicle_seats`, 1–60, drivers only), `invalid_languages` (`languages`), `invalid_max_concurrent` (`max_concurrent`, 1–10), `invalid_gender` (`gender`), `invalid_name` or `invalid_phone` (`emergency_contact.name`/`.phone`)", body = ErrorShape),
        BodyRejection))]
async fn update(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateVolunteer>,
) -> ApiResult<Json<VolunteerView>> {
    let id = volunteer_id(&actor, &id)?;
    let v = visible(&state, &actor, id).await?;
    let manages = actor.manages(&v.org_path());
    if !manages && (req.team_id.is_some() || req.max_concurrent.is_some()) {
        return Err(ApiError::forbidden());
    }
    let mut p = v.profile();
    if let Some(team) = req.team_id
        && team != v.team_id
    {
        managed_team(&state, &actor, team).await?;
        p.team_id = team;
    }
    if let Some(code) = req.home_adcode.as_deref() {
        p.home_division_id = division_by_adcode(&state, code).await?;
    }
    if let Some(loc) = req.home_location {
        p.home_location = loc.map(geo).transpose()?;
    }
    if let Some(km) = req.service_radius_km {
        p.service_radius_km = profile::service_radius_km(km).map_err(profile_error)?;
    }
    if let Some(q) = &req.declared_qualifications {
        p.declared_qualifications = qualifications(q, "declared_qualifications")?;
    }
    if let Some(seats) = req.vehicle_seats {
        p.vehicle_seats = seats
            .map(|n| profile::vehicle_seats(n, true))
            .transpose()
            .map_err(profile_error)?;
    }
    // Seats stay only with a driver: declared, or a licence on file.
    if p.vehicle_seats.is_some()
        && !p
            .declared_qualifications
            .contains(&Qualification::DrivingLicence)
    {
        let licensed = state
            .store
            .credentials_of(id)
            .await?
            .iter()
            .any(|c| c.kind == CredentialKind::DrivingLicence && c.revoked_at.is_none());
        if !licensed {
            let seats = p.vehicle_seats.map_or(0, i64::from);
            if let Err(e) = profile::vehicle_seats(seats, false) {
                return Err(profile_error(e));
            }
        }
    }
    if let Some(l) = &req.languages {
        p.languages = profile::languages(l).map_err(profile_error)?;
    }
    if let Some(n) = req.max_concurrent {
        p.max_concurrent = profile::max_concurrent(n).map_err(profile_error)?;
    }
    if let Some(g) = &req.gender {
        p.gender = g.as_deref().map(gender).transpose()?;
    }
    if let Some(c) = &req.emergency_contact {
        p.emergency_contact = c.as_ref().map(contact).transpose()?;
    }
    state
        .store
        .update_volunteer(id, &p, state.clock.now())
        .await?;
    Ok(Json(VolunteerView::detail(
        &visible(&state, &actor, id).await?,
    )))
}
