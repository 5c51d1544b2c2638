//! Organisation units: `GET/POST /api/v1/org-units`, `GET/PATCH
//! /api/v1/org-units/{id}`.
//!
//! Scope: admins see everything; a coordinator sees and changes its
//! division's subtree; a liaison, volunteer or requester sees the one unit
//! its grant is bound to. Anything else answers 404, like a missing id.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use homefront_domain::Role;
use homefront_domain::org::OrgKind;
use homefront_store::org_units::{NewOrgUnit, OrgUnit};
use serde::Deserialize;

use crate::AppState;
use crate::api::ApiQuery;
use crate::api::openapi::{BodyRejection, ErrorShape, QueryRejection};
use crate::api::{ApiJson, parse_id};
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};

/// Org-unit routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/org-units", get(list).post(create))
        .route("/org-units/{id}", get(show).patch(update))
}

/// Query of `GET /api/v1/org-units`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrgUnitQuery {
    /// Only direct children of this unit.
    pub parent_id: Option<i64>,
    /// Only this kind (`province`, `city`, `county`, `team`, `employer`, `partner`).
    #[param(pattern = "^(province|city|county|team|employer|partner)$")]
    pub kind: Option<String>,
}

/// Loads a unit the actor may read, or 404.
pub async fn readable_unit(state: &AppState, actor: &Actor, id: i64) -> ApiResult<OrgUnit> {
    match state.store.org_unit(id).await? {
        Some(u) if actor.reads_org(&u.org_path()) => Ok(u),
        _ => Err(ApiError::not_found()),
    }
}

/// Loads a unit the actor manages (admin, or coordinator of it or an
/// ancestor), or 404 when it cannot even read it, 403 when it reads but
/// may not manage.
pub async fn managed_unit(state: &AppState, actor: &Actor, id: i64) -> ApiResult<OrgUnit> {
    let unit = readable_unit(state, actor, id).await?;
    if actor.manages(&unit.org_path()) {
        Ok(unit)
    } else {
        Err(ApiError::forbidden())
    }
}

/// Organisation units the caller may read.
///
/// Admins see every unit; a coordinator its divisions' subtrees; a liaison,
/// volunteer or requester the units its grants are bound to.
#[utoipa::path(get, path = "/api/v1/org-units", tag = "org-units", operation_id = "list_org_units",
    params(OrgUnitQuery),
    responses(
        (status = 200, body = Vec<OrgUnit>),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 422, description = "`invalid_kind` (field `kind`)", body = ErrorShape),
        QueryRejection))]
pub(crate) async fn list(
    State(state): State<AppState>,
    actor: Actor,
    ApiQuery(q): ApiQuery<OrgUnitQuery>,
) -> ApiResult<Json<Vec<OrgUnit>>> {
    let kind = q
        .kind
        .as_deref()
        .map(str::parse::<OrgKind>)
        .transpose()
        .map_err(|e| ApiError::invalid("kind", "invalid_kind", e.to_string()))?;
    let units = match actor.managed_scopes() {
        None => state.store.org_units(None, q.parent_id, kind).await?,
        Some(mut scopes) => {
            // Units bound to non-coordinator grants are readable one by one.
            scopes.extend(
                actor
                    .grants
                    .iter()
                    .filter(|g| g.role != Role::Coordinator)
                    .filter_map(|g| g.org_path.clone())
                    .map(homefront_domain::org::OrgPath::from_stored),
            );
            state
                .store
                .org_units(Some(&scopes), q.parent_id, kind)
                .await?
                .into_iter()
                .filter(|u| actor.reads_org(&u.org_path()))
                .collect()
        }
    };
    Ok(Json(units))
}

/// One organisation unit the caller may read.
#[utoipa::path(get, path = "/api/v1/org-units/{id}", tag = "org-units", operation_id = "show_org_unit",
    params(("id" = i64, Path, description = "Org-unit id")),
    responses(
        (status = 200, body = OrgUnit),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 404, description = "No such unit, or not readable by the caller", body = ErrorShape)))]
async fn show(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<OrgUnit>> {
    Ok(Json(readable_unit(&state, &actor, parse_id(&id)?).await?))
}

/// `POST /api/v1/org-units` body: a team, employer or partner under a unit.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrgUnit {
    /// `team`, `employer` or `partner` (divisions come from
    /// `homefront org import-divisions`).
    pub kind: String,
    /// Display name, 1–200 characters.
    pub name: String,
    /// The unit to place it under.
    pub parent_id: i64,
    /// Optional longitude, decimal degrees.
    pub longitude: Option<f64>,
    /// Optional latitude, decimal degrees.
    pub latitude: Option<f64>,
}

fn check_name(name: &str) -> ApiResult<&str> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::invalid(
            "name",
            "invalid_name",
            "name must have 1 to 200 characters",
        ));
    }
    Ok(name)
}

/// Create a team, employer or partner under a unit the caller manages.
///
/// Divisions are not created here: they come from
/// `homefront org import-divisions`. Coordinators and admins only.
#[utoipa::path(post, path = "/api/v1/org-units", tag = "org-units", operation_id = "create_org_unit",
    request_body = CreateOrgUnit,
    responses(
        (status = 201, description = "Created", body = OrgUnit),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden` for roles other than coordinator and admin; or `csrf_failed`", body = ErrorShape),
        (status = 422, description = "`invalid_kind` (field `kind`), `invalid_name` (`name`), `invalid_coordinates` (`longitude`/`latitude`) or `unknown_parent` (`parent_id`, also for a parent outside the caller's area)", body = ErrorShape),
        BodyRejection))]
pub(crate) async fn create(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<CreateOrgUnit>,
) -> ApiResult<(StatusCode, Json<OrgUnit>)> {
    if !actor.is_admin() && !actor.has(Role::Coordinator) {
        return Err(ApiError::forbidden());
    }
    let kind: OrgKind = req
        .kind
        .parse()
        .map_err(|e: homefront_domain::org::OrgKindError| {
            ApiError::invalid("kind", "invalid_kind", e.to_string())
        })?;
    if kind.is_division() {
        return Err(ApiError::invalid(
            "kind",
            "invalid_kind",
            "divisions are imported with `homefront org import-divisions`; create a team, employer or partner",
        ));
    }
    let name = check_name(&req.name)?;
    let location = crate::api::coordinates(req.longitude, req.latitude)?;
    let parent = match state.store.org_unit(req.parent_id).await? {
        Some(p) if actor.manages(&p.org_path()) => p,
        _ => {
            return Err(ApiError::invalid(
                "parent_id",
                "unknown_parent",
                "no organisation unit with this id in your area",
            ));
        }
    };
    let unit = state
        .store
        .create_org_unit(
            NewOrgUnit {
                kind,
                name,
                parent: &parent,
                location,
            },
            state.clock.now().epoch_ms(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(unit)))
}

/// `PATCH /api/v1/org-units/{id}` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrgUnit {
    /// New display name.
    pub name: Option<String>,
    /// IANA time zone, e.g. `Asia/Shanghai`.
    pub time_zone: Option<String>,
}

/// Rename a unit or set its time zone; absent fields keep their value.
///
/// For coordinators of the unit or an ancestor, and admins.
#[utoipa::path(patch, path = "/api/v1/org-units/{id}", tag = "org-units", operation_id = "update_org_unit",
    params(("id" = i64, Path, description = "Org-unit id")),
    request_body = UpdateOrgUnit,
    responses(
        (status = 200, description = "The unit as changed", body = OrgUnit),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: readable, but the caller does not manage it; or `csrf_failed`", body = ErrorShape),
        (status = 404, description = "No such unit, or not readable by the caller", body = ErrorShape),
        (status = 422, description = "`invalid_name` (field `name`) or `invalid_time_zone` (`time_zone`)", body = ErrorShape),
        BodyRejection))]
async fn update(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateOrgUnit>,
) -> ApiResult<Json<OrgUnit>> {
    let unit = managed_unit(&state, &actor, parse_id(&id)?).await?;
    let name = req.name.as_deref().map(check_name).transpose()?;
    let time_zone = req
        .time_zone
        .as_deref()
        .map(|tz| {
            tz.parse::<chrono_tz::Tz>().map_err(|_| {
                ApiError::invalid(
                    "time_zone",
                    "invalid_time_zone",
                    format!("\"{tz}\" is not an IANA time zone; use e.g. Asia/Shanghai"),
                )
            })
        })
        .transpose()?;
    state
        .store
        .update_org_unit(unit.id, name, time_zone)
        .await?;
    Ok(Json(readable_unit(&state, &actor, unit.id).await?))
}
