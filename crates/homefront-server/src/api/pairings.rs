//! Pairings (结对) and re-pairing proposals:
//! - `POST /api/v1/pairings` (coordinator of the volunteer's team),
//!   `POST /api/v1/pairings/{id}/end`, `POST /api/v1/pairings/{id}/repair`
//!   (another volunteer in the same role), `GET /api/v1/pairings?household_id=`;
//! - `GET /api/v1/pairings/me`: a volunteer's households with their
//!   standing details (names, relations, children's age and grade, the
//!   district; never the street or phone outside a live assignment) and
//!   the volunteer's order history with each;
//! - `GET /api/v1/pairing-proposals`, `POST .../{id}/accept`, `.../dismiss`.
//!
//! Policy: at most `pairing_max` live volunteers per household (dispatch
//! setting of the team's division, default 2: the Nantong model of one
//! frontline family, two volunteers), and one primary.

use std::collections::{HashMap, HashSet};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use homefront_domain::Role;
use homefront_domain::org::OrgPath;
use homefront_domain::pairing::PairingRole;
use homefront_domain::privacy::RecordKind;
use homefront_store::orders::OrderFilter;
use homefront_store::pairings::{Pairing, PairingProposal};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::api::ApiQuery;
use crate::api::dispatch::{may_dispatch, volunteer_teams};
use crate::api::openapi::{BodyRejection, ErrorShape, QueryRejection};
use crate::api::orders::{OrderView, view};
use crate::api::{ApiJson, parse_id};
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult, OnConstraint};
use homefront_store::constraint;

/// Pairing routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/pairings", get(list).post(create))
        .route("/pairings/me", get(mine))
        .route("/pairings/{id}/end", post(end))
        .route("/pairings/{id}/repair", post(repair))
        .route("/pairing-proposals", get(proposals))
        .route("/pairing-proposals/{id}/accept", post(accept))
        .route("/pairing-proposals/{id}/dismiss", post(dismiss))
}

/// The divisions the household's members live in.
pub(crate) async fn household_divisions(
    state: &AppState,
    household: i64,
) -> ApiResult<Vec<OrgPath>> {
    let members = state.store.members(household).await?;
    let ids: Vec<i64> = members.iter().map(|m| m.division_id).collect();
    let units: HashMap<i64, OrgPath> = state
        .store
        .org_units_by_ids(&ids)
        .await?
        .into_iter()
        .map(|d| (d.id, d.org_path()))
        .collect();
    let mut out: Vec<OrgPath> = Vec::new();
    for m in &members {
        if let Some(d) = units.get(&m.division_id)
            && !out.contains(d)
        {
            out.push(d.clone());
        }
    }
    Ok(out)
}

/// Whether `actor` manages `pairing`: its volunteer's team, or a division
/// its household lives in (a county coordinator who paired a province-team
/// volunteer with a county family ends that pairing too).
async fn manages_pairing(state: &AppState, actor: &Actor, pairing: &Pairing) -> ApiResult<bool> {
    if volunteer_teams(state, pairing.volunteer_user_id)
        .await?
        .iter()
        .any(|t| actor.manages(t))
    {
        return Ok(true);
    }
    Ok(household_divisions(state, pairing.household_id)
        .await?
        .iter()
        .any(|d| actor.manages(d)))
}

/// Body of `POST /api/v1/pairings`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePairing {
    /// The household (see an order's `household_id`).
    pub household_id: i64,
    /// The volunteer's account.
    pub volunteer_user_id: i64,
    /// `primary` or `backup`.
    pub role: String,
}

/// Pair a volunteer with a household (结对), as `primary` or `backup`.
///
/// For coordinators of a division the household lives in, and admins; the
/// volunteer is one whose team serves that division (the rule of an
/// order's candidate list: a team of its county, its city or the
/// province). A household has at most `pairing_max` live volunteers
/// (dispatch setting of the team's division, default 2) and one primary.
#[utoipa::path(post, path = "/api/v1/pairings", tag = "pairings", operation_id = "create_pairing",
    request_body = CreatePairing,
    responses(
        (status = 201, description = "Paired", body = Pairing),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden` for roles other than coordinator and admin; or `csrf_failed`", body = ErrorShape),
        (status = 409, description = "`pairing_full`, `primary_taken` (field `role`) or `already_paired`", body = ErrorShape),
        (status = 422, description = "`invalid_role` (field `role`), `unknown_volunteer` (`volunteer_user_id`: no such volunteer, or their team does not serve the household's district) or `unknown_household` (`household_id`: none living in the caller's area)", body = ErrorShape),
        BodyRejection))]
pub(crate) async fn create(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<CreatePairing>,
) -> ApiResult<(StatusCode, Json<Pairing>)> {
    if !actor.is_admin() && !actor.has(Role::Coordinator) {
        return Err(ApiError::forbidden());
    }
    let Ok(role) = req.role.parse::<PairingRole>() else {
        return Err(ApiError::invalid(
            "role",
            "invalid_role",
            "role must be primary or backup",
        ));
    };
    let teams = volunteer_teams(&state, req.volunteer_user_id).await?;
    if teams.is_empty() {
        return Err(ApiError::invalid(
            "volunteer_user_id",
            "unknown_volunteer",
            "no volunteer with this id",
        ));
    }
    let divisions = if state.store.household(req.household_id).await?.is_some() {
        household_divisions(&state, req.household_id).await?
    } else {
        Vec::new()
    };
    // A household elsewhere answers like a missing one.
    if !divisions.iter().any(|d| actor.manages(d)) {
        return Err(ApiError::invalid(
            "household_id",
            "unknown_household",
            "no household with this id living in your area",
        ));
    }
    let Some(team) = teams
        .iter()
        .find(|t| divisions.iter().any(|d| may_dispatch(&actor, d, 0, t)))
    else {
        return Err(ApiError::invalid(
            "volunteer_user_id",
            "unknown_volunteer",
            "this volunteer's team does not serve the household's district: pick a volunteer \
             of a team of that county, its city or the province",
        ));
    };
    let live = state.store.live_pairings(req.household_id).await?;
    let division: Vec<i64> = team.ids().into_iter().rev().skip(1).rev().collect();
    let max = state.store.dispatch_pairing_max(&division).await?;
    if i64::try_from(live.len()).unwrap_or(i64::MAX) >= max {
        return Err(ApiError::conflict(
            "pairing_full",
            format!("this household already has {max} paired volunteers; end one first"),
        ));
    }
    if role == PairingRole::Primary && live.iter().any(|p| p.role == PairingRole::Primary) {
        return Err(ApiError {
            field: Some("role".into()),
            ..ApiError::conflict(
                "primary_taken",
                "this household has a primary volunteer; add a backup or end the primary first",
            )
        });
    }
    let pairing = state
        .store
        .create_pairing(
            req.household_id,
            req.volunteer_user_id,
            role,
            Some(actor.user.id),
            state.clock.now().epoch_ms(),
        )
        .await
        .on_constraint(constraint::PAIRING_LIVE, || {
            ApiError::conflict(
                "already_paired",
                "this volunteer is already paired with the household",
            )
        })?;
    Ok((StatusCode::CREATED, Json(pairing)))
}

/// Body of `POST /api/v1/pairings/{id}/end`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndPairing {
    /// Why, 1–500 characters.
    pub reason: String,
}

async fn managed_pairing(state: &AppState, actor: &Actor, id: i64) -> ApiResult<Pairing> {
    let pairing = state
        .store
        .pairing(id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if manages_pairing(state, actor, &pairing).await? {
        Ok(pairing)
    } else {
        Err(ApiError::not_found())
    }
}

/// End a pairing, with a reason.
#[utoipa::path(post, path = "/api/v1/pairings/{id}/end", tag = "pairings", operation_id = "end_pairing",
    params(("id" = i64, Path, description = "Pairing id")),
    request_body = EndPairing,
    responses(
        (status = 200, description = "The pairing, ended", body = Pairing),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`csrf_failed`: cookie sign-in without a matching `X-CSRF-Token`", body = ErrorShape),
        (status = 404, description = "No such pairing, or neither its volunteer's team nor its household is in the caller's area", body = ErrorShape),
        (status = 409, description = "`already_ended`", body = ErrorShape),
        (status = 422, description = "`reason_required` or `reason_too_long` (field `reason`, 1–500 characters)", body = ErrorShape),
        BodyRejection))]
pub(crate) async fn end(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<EndPairing>,
) -> ApiResult<Json<Pairing>> {
    let pairing = managed_pairing(&state, &actor, parse_id(&id)?).await?;
    let reason = homefront_domain::order_state::Reason::parse(&req.reason)
        .map_err(|e| ApiError::invalid("reason", e.code(), e.to_string()))?;
    if !state
        .store
        .end_pairing(pairing.id, reason.as_str(), state.clock.now().epoch_ms())
        .await?
    {
        return Err(ApiError::conflict(
            "already_ended",
            "this pairing has already ended",
        ));
    }
    Ok(Json(
        state
            .store
            .pairing(pairing.id)
            .await?
            .ok_or_else(ApiError::not_found)?,
    ))
}

/// Body of `POST /api/v1/pairings/{id}/repair`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepairPairing {
    /// Why the current volunteer's pairing ends, 1–500 characters.
    pub reason: String,
    /// The volunteer who takes the household over (account id).
    pub volunteer_user_id: i64,
}

/// Re-pair: end a live pairing, with a reason, and pair another volunteer
/// with the household in the same role (`primary` or `backup`), in one
/// step, so the household keeps its place.
///
/// The new volunteer follows the rule of a new pairing: their team serves
/// a district the household lives in (a team of its county, its city or
/// the province) within the caller's area.
#[utoipa::path(post, path = "/api/v1/pairings/{id}/repair", tag = "pairings", operation_id = "repair_pairing",
    params(("id" = i64, Path, description = "Pairing id")),
    request_body = RepairPairing,
    responses(
        (status = 200, description = "The new pairing (the old one has ended with the reason)", body = Pairing),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`csrf_failed`: cookie sign-in without a matching `X-CSRF-Token`", body = ErrorShape),
        (status = 404, description = "No such pairing, or neither its volunteer's team nor its household is in the caller's area", body = ErrorShape),
        (status = 409, description = "`already_ended`; or `already_paired`: the new volunteer is already paired with the household (nothing changed)", body = ErrorShape),
        (status = 422, description = "`reason_required` or `reason_too_long` (field `reason`, 1–500 characters); `same_volunteer` or `unknown_volunteer` (field `volunteer_user_id`: no volunteer whose team serves the household's district in the caller's area)", body = ErrorShape),
        BodyRejection))]
pub(crate) async fn repair(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RepairPairing>,
) -> ApiResult<Json<Pairing>> {
    let pairing = managed_pairing(&state, &actor, parse_id(&id)?).await?;
    let reason = homefront_domain::order_state::Reason::parse(&req.reason)
        .map_err(|e| ApiError::invalid("reason", e.code(), e.to_string()))?;
    if pairing.ended_at.is_some() {
        return Err(ApiError::conflict(
            "already_ended",
            "this pairing has already ended",
        ));
    }
    if req.volunteer_user_id == pairing.volunteer_user_id {
        return Err(ApiError::invalid(
            "volunteer_user_id",
            "same_volunteer",
            "this volunteer is the one paired now: pick another one",
        ));
    }
    let divisions = household_divisions(&state, pairing.household_id).await?;
    let teams = volunteer_teams(&state, req.volunteer_user_id).await?;
    if !teams
        .iter()
        .any(|t| divisions.iter().any(|d| may_dispatch(&actor, d, 0, t)))
    {
        return Err(ApiError::invalid(
            "volunteer_user_id",
            "unknown_volunteer",
            "no volunteer with this id whose team serves the household's district in your area",
        ));
    }
    state
        .store
        .repair_pairing(
            pairing.id,
            reason.as_str(),
            req.volunteer_user_id,
            Some(actor.user.id),
            state.clock.now().epoch_ms(),
        )
        .await
        .on_constraint(constraint::PAIRING_LIVE, || {
            ApiError::conflict(
                "already_paired",
                "this volunteer is already paired with the household",
            )
        })?
        .map(Json)
        .ok_or_else(|| ApiError::conflict("already_ended", "this pairing has already ended"))
}

/// Query of `GET /api/v1/pairings`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PairingQuery {
    /// The household.
    pub household_id: i64,
}

/// A household's live pairings the caller manages (the volunteer's team or
/// the household's division is in the caller's area).
#[utoipa::path(get, path = "/api/v1/pairings", tag = "pairings", operation_id = "list_pairings",
    params(PairingQuery),
    responses(
        (status = 200, body = Vec<Pairing>),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden` for roles other than coordinator and admin", body = ErrorShape),
        QueryRejection))]
pub(crate) async fn list(
    State(state): State<AppState>,
    actor: Actor,
    ApiQuery(q): ApiQuery<PairingQuery>,
) -> ApiResult<Json<Vec<Pairing>>> {
    if !actor.is_admin() && !actor.has(Role::Coordinator) {
        return Err(ApiError::forbidden());
    }
    let live = state.store.live_pairings(q.household_id).await?;
    if live.is_empty() {
        return Ok(Json(live));
    }
    // As `manages_pairing` for each, in two reads: the household's
    // divisions once (every pairing here shares the household), then the
    // volunteers' team grants at once.
    if household_divisions(&state, q.household_id)
        .await?
        .iter()
        .any(|d| actor.manages(d))
    {
        return Ok(Json(live));
    }
    let volunteers: Vec<i64> = live.iter().map(|p| p.volunteer_user_id).collect();
    let managed: HashSet<i64> = state
        .store
        .grants_of(&volunteers)
        .await?
        .into_iter()
        .filter(|g| g.role == Role::Volunteer)
        .filter(|g| {
            g.org_path
                .clone()
                .is_some_and(|p| actor.manages(&OrgPath::from_stored(p)))
        })
        .map(|g| g.user_id)
        .collect();
    Ok(Json(
        live.into_iter()
            .filter(|p| managed.contains(&p.volunteer_user_id))
            .collect(),
    ))
}

/// A household member as a paired volunteer sees them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberBrief {
    /// Name.
    pub name: String,
    /// `self`, `parent`, `child`, `spouse` or `other`.
    #[schema(value_type = String)]
    pub relation: homefront_domain::catalogue::Relation,
    /// Age (children).
    pub age_years: Option<i64>,
    /// School grade (children).
    pub school_grade: Option<String>,
    /// District name.
    pub district: String,
}

/// One of a volunteer's pairings.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MyPairing {
    /// The pairing.
    pub pairing: Pairing,
    /// The household's members (no street or phone).
    pub members: Vec<MemberBrief>,
    /// This volunteer's orders for the household, newest first.
    pub orders: Vec<OrderView>,
}

/// The caller's pairings: each household's members and the caller's
/// orders with it.
///
/// Members show names, relations, children's age and grade and the
/// district; never the street or phone (those come with a live
/// assignment). Each read writes an `access_log` row.
#[utoipa::path(get, path = "/api/v1/pairings/me", tag = "pairings", operation_id = "my_pairings",
    responses(
        (status = 200, body = Vec<MyPairing>),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: the caller is not a volunteer", body = ErrorShape)))]
pub(crate) async fn mine(
    State(state): State<AppState>,
    actor: Actor,
) -> ApiResult<Json<Vec<MyPairing>>> {
    if !actor.has(Role::Volunteer) {
        return Err(ApiError::forbidden());
    }
    let now = state.clock.now().epoch_ms();
    let pairings = state.store.pairings_of_volunteer(actor.user.id).await?;
    let mut lists = Vec::with_capacity(pairings.len());
    for pairing in &pairings {
        lists.push(state.store.members(pairing.household_id).await?);
    }
    // One read for every member's district, not one per member.
    let divisions: Vec<i64> = lists.iter().flatten().map(|m| m.division_id).collect();
    let names: HashMap<i64, String> = state
        .store
        .org_units_by_ids(&divisions)
        .await?
        .into_iter()
        .map(|d| (d.id, d.name))
        .collect();
    let mut out = Vec::new();
    for (pairing, list) in pairings.into_iter().zip(lists) {
        let members = list
            .iter()
            .map(|m| MemberBrief {
                name: m.name.clone(),
                relation: m.relation,
                age_years: m.age_years,
                school_grade: m.school_grade.clone(),
                district: names.get(&m.division_id).cloned().unwrap_or_default(),
            })
            .collect();
        let ids: Vec<i64> = list.iter().map(|m| m.id).collect();
        state
            .store
            .log_access(
                actor.user.id,
                RecordKind::HouseholdMember,
                &ids,
                &["age_years", "school_grade"],
                "pairing",
                now,
            )
            .await?;
        let orders = state
            .store
            .orders(&OrderFilter {
                household_id: Some(pairing.household_id),
                assignee_user_id: Some(actor.user.id),
                ..OrderFilter::default()
            })
            .await?;
        out.push(MyPairing {
            pairing,
            members,
            orders: orders.iter().map(|o| view(o, None)).collect(),
        });
    }
    Ok(Json(out))
}

/// Open re-pairing proposals of teams in the caller's area.
///
/// A proposal appears when a paired volunteer is deactivated (suspended,
/// withdrawn, rejected): the pairing ends and the dispatcher suggests a
/// replacement.
#[utoipa::path(get, path = "/api/v1/pairing-proposals", tag = "pairings", operation_id = "list_pairing_proposals",
    responses(
        (status = 200, body = Vec<PairingProposal>),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden` for roles other than coordinator and admin", body = ErrorShape)))]
pub(crate) async fn proposals(
    State(state): State<AppState>,
    actor: Actor,
) -> ApiResult<Json<Vec<PairingProposal>>> {
    if !actor.is_admin() && !actor.has(Role::Coordinator) {
        return Err(ApiError::forbidden());
    }
    Ok(Json(
        state
            .store
            .open_pairing_proposals()
            .await?
            .into_iter()
            .filter(|p| actor.manages(&OrgPath::from_stored(p.team_path.clone())))
            .collect(),
    ))
}

async fn managed_proposal(state: &AppState, actor: &Actor, id: &str) -> ApiResult<PairingProposal> {
    match state.store.pairing_proposal(parse_id(id)?).await? {
        Some(p) if actor.manages(&OrgPath::from_stored(p.team_path.clone())) => Ok(p),
        _ => Err(ApiError::not_found()),
    }
}

/// Body of `POST /api/v1/pairing-proposals/{id}/accept`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AcceptProposal {
    /// Another volunteer than the suggested one.
    pub volunteer_user_id: Option<i64>,
}

/// Accept a re-pairing proposal: pair the suggested volunteer, or another
/// one named in the body, in the ended pairing's role.
#[utoipa::path(post, path = "/api/v1/pairing-proposals/{id}/accept", tag = "pairings", operation_id = "accept_pairing_proposal",
    params(("id" = i64, Path, description = "Proposal id")),
    request_body = AcceptProposal,
    responses(
        (status = 200, description = "The new pairing", body = Pairing),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`csrf_failed`: cookie sign-in without a matching `X-CSRF-Token`", body = ErrorShape),
        (status = 404, description = "No such proposal, or outside the caller's area", body = ErrorShape),
        (status = 409, description = "`already_decided`; or `duplicate`: the volunteer is already paired with the household", body = ErrorShape),
        (status = 422, description = "`no_suggestion` or `unknown_volunteer` (field `volunteer_user_id`)", body = ErrorShape),
        BodyRejection))]
pub(crate) async fn accept(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AcceptProposal>,
) -> ApiResult<Json<Pairing>> {
    let p = managed_proposal(&state, &actor, &id).await?;
    let Some(volunteer) = req.volunteer_user_id.or(p.proposed_volunteer_user_id) else {
        return Err(ApiError::invalid(
            "volunteer_user_id",
            "no_suggestion",
            "no replacement was found yet; name a volunteer",
        ));
    };
    // The rule of a new pairing: the volunteer's team serves a district
    // the household lives in, in the caller's area.
    let divisions = household_divisions(&state, p.household_id).await?;
    let teams = volunteer_teams(&state, volunteer).await?;
    if !teams
        .iter()
        .any(|t| divisions.iter().any(|d| may_dispatch(&actor, d, 0, t)))
    {
        return Err(ApiError::invalid(
            "volunteer_user_id",
            "unknown_volunteer",
            "no volunteer with this id whose team serves the household's district in your area",
        ));
    }
    match state
        .store
        .decide_proposal(
            p.id,
            Some(volunteer),
            actor.user.id,
            state.clock.now().epoch_ms(),
        )
        .await?
    {
        Some(Some(pairing)) => Ok(Json(pairing)),
        _ => Err(ApiError::conflict(
            "already_decided",
            "this proposal was already decided",
        )),
    }
}

/// Dismiss a re-pairing proposal without pairing anyone.
#[utoipa::path(post, path = "/api/v1/pairing-proposals/{id}/dismiss", tag = "pairings", operation_id = "dismiss_pairing_proposal",
    params(("id" = i64, Path, description = "Proposal id")),
    responses(
        (status = 204, description = "Dismissed"),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`csrf_failed`: cookie sign-in without a matching `X-CSRF-Token`", body = ErrorShape),
        (status = 404, description = "No such proposal, or outside the caller's area", body = ErrorShape),
        (status = 409, description = "`already_decided`", body = ErrorShape)))]
pub(crate) async fn dismiss(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let p = managed_proposal(&state, &actor, &id).await?;
    match state
        .store
        .decide_proposal(p.id, None, actor.user.id, state.clock.now().epoch_ms())
        .await?
    {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(ApiError::conflict(
            "already_decided",
            "this proposal was already decided",
        )),
    }
}
