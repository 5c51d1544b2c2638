//! Households: `GET /api/v1/household` (the requester's own, with members),
//! `POST /api/v1/household/members`, `PATCH /api/v1/household/members/{id}`,
//! and a liaison's `POST /api/v1/households/verify`.
//!
//! Members' phones, addresses and children's details are sensitive: every
//! answer that carries them writes an `access_log` row.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use homefront_domain::catalogue::{GUARDIAN_CONSENT_AGE, Relation};
use homefront_domain::org::OrgKind;
use homefront_domain::privacy::RecordKind;
use homefront_domain::{Adcode, PhoneNumber, Role};
use homefront_store::households::{Household, Member, MemberFields};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::api::openapi::{BodyRejection, ErrorShape};
use crate::api::{ApiJson, coordinates, parse_id};
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};

/// Household routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/household", get(mine))
        .route("/household/members", post(add_member))
        .route("/household/members/{id}", patch(update_member))
        .route("/households/verify", post(verify))
}

/// Sensitive member fields, as named in the access log.
pub const MEMBER_SENSITIVE_FIELDS: &[&str] = &[
    "phone",
    "street",
    "coordinates",
    "age_years",
    "school_grade",
];

/// The requester's household with its members.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HouseholdView {
    /// The household.
    #[serde(flatten)]
    pub household: Household,
    /// Its members.
    pub members: Vec<Member>,
}

fn require_requester(actor: &Actor) -> ApiResult<()> {
    if actor.has(Role::Requester) {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

/// The requester's own household with its members.
///
/// The household is created on first use. Members' phones, addresses and
/// children's details are sensitive: each read writes an `access_log` row.
#[utoipa::path(get, path = "/api/v1/household", tag = "households", operation_id = "my_household",
    responses(
        (status = 200, body = HouseholdView),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: the caller is not a requester", body = ErrorShape)))]
pub(crate) async fn mine(
    State(state): State<AppState>,
    actor: Actor,
) -> ApiResult<Json<HouseholdView>> {
    require_requester(&actor)?;
    let now = state.clock.now().epoch_ms();
    let household = state.store.household_of(actor.user.id, now).await?;
    let members = state.store.members(household.id).await?;
    let ids: Vec<i64> = members.iter().map(|m| m.id).collect();
    state
        .store
        .log_access(
            actor.user.id,
            RecordKind::HouseholdMember,
            &ids,
            MEMBER_SENSITIVE_FIELDS,
            "own_household",
            now,
        )
        .await?;
    Ok(Json(HouseholdView { household, members }))
}

/// Body of `POST /api/v1/household/members` and `PATCH .../{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberRequest {
    /// Name, 1–100 characters, any script.
    pub name: String,
    /// `self`, `parent`, `child`, `spouse` or `other`.
    pub relation: String,
    /// Age in years, 0–130 (needed for children).
    pub age_years: Option<i64>,
    /// School grade, e.g. `初二` (children).
    pub school_grade: Option<String>,
    /// Phone in any common form.
    pub phone: Option<String>,
    /// County (or city) division code of the address, 6 or 12 digits.
    pub adcode: String,
    /// Street address, 1–200 characters.
    pub street: String,
    /// Optional longitude, decimal degrees.
    pub longitude: Option<f64>,
    /// Optional latitude, decimal degrees.
    pub latitude: Option<f64>,
    /// A guardian consents to services for this member (required for
    /// children under 14 before any order serves them).
    #[serde(default)]
    pub guardian_consent: bool,
}

/// Resolves a division code to an org unit id, naming `field` on error.
pub async fn division_id(state: &AppState, field: &str, adcode: &str) -> ApiResult<i64> {
    let code = Adcode::parse(adcode)
        .map_err(|e| ApiError::invalid(field, "invalid_adcode", e.to_string()))?;
    let unit = state
        .store
        .org_unit_by_adcode(&code.as_string())
        .await?
        .ok_or_else(|| {
            ApiError::invalid(
                field,
                "unknown_division",
                format!(
                    "division {adcode} is not served by this deployment; pick a county of your city"
                ),
            )
        })?;
    Ok(unit.id)
}

async fn member_fields(state: &AppState, req: MemberRequest) -> ApiResult<MemberFields> {
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid(
            "name",
            "invalid_name",
            "name must have 1 to 100 characters",
        ));
    }
    let relation: Relation =
        req.relation
            .parse()
            .map_err(|e: homefront_domain::catalogue::UnknownValue| {
                ApiError::invalid("relation", "invalid_relation", e.to_string())
            })?;
    if let Some(age) = req.age_years
        && !(0..=130).contains(&age)
    {
        return Err(ApiError::invalid(
            "age_years",
            "out_of_range",
            "age_years must be between 0 and 130",
        ));
    }
    if relation == Relation::Child && req.age_years.is_none() {
        return Err(ApiError::invalid(
            "age_years",
            "age_required",
            "give the child's age, so guardian consent and tutoring can be checked",
        ));
    }
    let phone = req
        .phone
        .as_deref()
        .filter(|p| !p.trim().is_empty())
        .map(PhoneNumber::parse)
        .transpose()
        .map_err(|e| ApiError::invalid("phone", e.code(), e.to_string()))?;
    let street = req.street.trim();
    if street.is_empty() || street.chars().count() > 200 {
        return Err(ApiError::invalid(
            "street",
            "invalid_street",
            "street must have 1 to 200 characters",
        ));
    }
    Ok(MemberFields {
        name: name.to_string(),
        relation,
        age_years: req.age_years,
        school_grade: req
            .school_grade
            .map(|g| g.trim().to_string())
            .filter(|g| !g.is_empty()),
        phone: phone.map(|p| p.as_str().to_string()),
        division_id: division_id(state, "adcode", &req.adcode).await?,
        street: street.to_string(),
        location: coordinates(req.longitude, req.latitude)?,
        guardian_consent: req.guardian_consent,
    })
}

/// Whether an order serving `member` needs guardian consent that is missing.
pub fn lacks_guardian_consent(member: &Member) -> bool {
    member.relation == Relation::Child
        && member.age_years.is_none_or(|a| a < GUARDIAN_CONSENT_AGE)
        && !member.guardian_consent
}

/// Add a member to the requester's household.
///
/// Children under 14 need `guardian_consent` before any order serves them.
#[utoipa::path(post, path = "/api/v1/household/members", tag = "households", operation_id = "add_household_member",
    request_body = MemberRequest,
    responses(
        (status = 201, description = "Added", body = Member),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: the caller is not a requester; or `csrf_failed`", body = ErrorShape),
        (status = 422, description = "Invalid input naming the field: `invalid_name`, `invalid_relation`, `out_of_range` or `age_required` (`age_years`), `invalid_phone` or `phone_extension` (`phone`), `invalid_adcode` or `unknown_division` (`adcode`), `invalid_street`, `invalid_coordinates`", body = ErrorShape),
        BodyRejection))]
pub(crate) async fn add_member(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<MemberRequest>,
) -> ApiResult<(StatusCode, Json<Member>)> {
    require_requester(&actor)?;
    let now = state.clock.now().epoch_ms();
    let fields = member_fields(&state, req).await?;
    let household = state.store.household_of(actor.user.id, now).await?;
    let member = state.store.add_member(household.id, &fields, now).await?;
    Ok((StatusCode::CREATED, Json(member)))
}

/// Replace a member's details (the full member, as for adding one).
#[utoipa::path(patch, path = "/api/v1/household/members/{id}", tag = "households", operation_id = "update_household_member",
    params(("id" = i64, Path, description = "Member id")),
    request_body = MemberRequest,
    responses(
        (status = 200, description = "The member as changed", body = Member),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: the caller is not a requester; or `csrf_failed`", body = ErrorShape),
        (status = 404, description = "No such member in the caller's household", body = ErrorShape),
        (status = 422, description = "Invalid input naming the field: `invalid_name`, `invalid_relation`, `out_of_range` or `age_required` (`age_years`), `invalid_phone` or `phone_extension` (`phone`), `invalid_adcode` or `unknown_division` (`adcode`), `invalid_street`, `invalid_coordinates`", body = ErrorShape),
        BodyRejection))]
pub(crate) async fn update_member(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<MemberRequest>,
) -> ApiResult<Json<Member>> {
    require_requester(&actor)?;
    let id = parse_id(&id)?;
    let now = state.clock.now().epoch_ms();
    let household = state.store.household_of(actor.user.id, now).await?;
    match state.store.member(id).await? {
        Some(m) if m.household_id == household.id => {}
        _ => return Err(ApiError::not_found()),
    }
    let fields = member_fields(&state, req).await?;
    state.store.update_member(id, &fields).await?;
    Ok(Json(
        state
            .store
            .member(id)
            .await?
            .ok_or_else(ApiError::not_found)?,
    ))
}

/// Body of `POST /api/v1/households/verify`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The requester's phone number.
    pub phone: String,
    /// The employer (org unit of kind employer) the liaison speaks for.
    pub employer_id: i64,
    /// Department, e.g. `呼吸科`.
    pub department: Option<String>,
    /// Deployed to the epidemic's centre: counselling orders go to the
    /// priority lane.
    #[serde(default)]
    pub deployed_to_centre: bool,
}

/// A liaison verifies that a requester works for its employer.
///
/// Coordinators and admins may verify for employers in their area.
/// `deployed_to_centre` sends the household's counselling orders to the
/// priority lane.
#[utoipa::path(post, path = "/api/v1/households/verify", tag = "households", operation_id = "verify_household",
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "The household, now verified", body = Household),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden` for roles other than liaison, coordinator and admin; or `csrf_failed`", body = ErrorShape),
        (status = 422, description = "`unknown_employer` (field `employer_id`), `invalid_phone` or `unknown_requester` (`phone`)", body = ErrorShape),
        BodyRejection))]
async fn verify(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<VerifyRequest>,
) -> ApiResult<Json<Household>> {
    Ok(Json(verify_staff(&state, &actor, &req).await?))
}

/// A liaison (for its own employer), or a coordinator or admin (for
/// employers in their area), verifies that the requester with `req.phone`
/// works for `req.employer_id`. Shared by the API and the liaison's page.
///
/// # Errors
/// 403 for other roles; 422 `unknown_employer` (field `employer_id`),
/// `invalid_phone` or `unknown_requester` (`phone`).
pub async fn verify_staff(
    state: &AppState,
    actor: &Actor,
    req: &VerifyRequest,
) -> ApiResult<Household> {
    // A liaison verifies for its own employer; coordinators and admins for
    // employers in their area.
    let employer = state.store.org_unit(req.employer_id).await?;
    let allowed = employer.as_ref().is_some_and(|e| {
        e.kind == OrgKind::Employer
            && (actor.manages(&e.org_path())
                || actor
                    .grants
                    .iter()
                    .any(|g| g.role == Role::Liaison && g.org_unit_id == Some(e.id)))
    });
    if !allowed {
        if !actor.has(Role::Liaison) && !actor.has(Role::Coordinator) && !actor.is_admin() {
            return Err(ApiError::forbidden());
        }
        return Err(ApiError::invalid(
            "employer_id",
            "unknown_employer",
            "no employer with this id that you may verify for",
        ));
    }
    let phone = PhoneNumber::parse(&req.phone)
        .map_err(|e| ApiError::invalid("phone", e.code(), e.to_string()))?;
    let user = state.store.user_by_phone(&phone).await?;
    let requester = match user {
        Some(u)
            if state
                .store
                .grants(u.id)
                .await?
                .iter()
                .any(|g| g.role == Role::Requester) =>
        {
            u
        }
        _ => {
            return Err(ApiError::invalid(
                "phone",
                "unknown_requester",
                "no requester account with this phone number; ask them to register first",
            ));
        }
    };
    let now = state.clock.now().epoch_ms();
    let household = state.store.household_of(requester.id, now).await?;
    state
        .store
        .verify_household(
            household.id,
            req.employer_id,
            req.department
                .as_deref()
                .map(str::trim)
                .filter(|d| !d.is_empty()),
            req.deployed_to_centre,
            actor.user.id,
            now,
        )
        .await?;
    state
        .store
        .household(household.id)
        .await?
        .ok_or_else(ApiError::not_found)
}
