//! The service catalogue: `GET/POST /api/v1/service-items`,
//! `PATCH /api/v1/service-items/{id}`.
//!
//! Everyone signed in reads the catalogue. Admins edit the deployment-wide
//! items; a coordinator edits items it created for its subtree. Retiring
//! an item stops new orders and leaves old orders intact.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch};
use axum::{Json, Router};
use homefront_domain::Role;
use homefront_domain::catalogue::{Lane, ServiceMode};
use homefront_domain::credentials::Qualification;
use homefront_store::catalogue::{ItemFields, ServiceItem};
use serde::Deserialize;

use crate::AppState;
use crate::api::ApiQuery;
use crate::api::openapi::{BodyRejection, ErrorShape, QueryRejection};
use crate::api::org_units::readable_unit;
use crate::api::{ApiJson, parse_id};
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult, OnConstraint};
use homefront_store::constraint;

/// Catalogue routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/service-items", get(list).post(create))
        .route("/service-items/{id}", patch(update))
}

/// Query of `GET /api/v1/service-items`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ItemQuery {
    /// Include retired items (default false).
    #[serde(default)]
    pub include_retired: bool,
}

/// The service catalogue: deployment-wide and local items.
///
/// Any signed-in user may read it; retired items only on request.
#[utoipa::path(get, path = "/api/v1/service-items", tag = "catalogue", operation_id = "list_service_items",
    params(ItemQuery),
    responses(
        (status = 200, body = Vec<ServiceItem>),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        QueryRejection))]
pub(crate) async fn list(
    State(state): State<AppState>,
    _actor: Actor,
    ApiQuery(q): ApiQuery<ItemQuery>,
) -> ApiResult<Json<Vec<ServiceItem>>> {
    Ok(Json(state.store.service_items(q.include_retired).await?))
}

/// Body of `POST /api/v1/service-items` and `PATCH /api/v1/service-items/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemRequest {
    /// Stable code: lower-case letters, digits and `_`, 2–40 characters
    /// (create only).
    pub code: Option<String>,
    /// Owning org unit for a local item; leave out for the deployment-wide
    /// catalogue (admins only). Create only.
    pub org_unit_id: Option<i64>,
    /// Chinese name.
    pub name_zh: String,
    /// English name.
    pub name_en: String,
    /// `onsite` or `remote`.
    pub mode: String,
    /// Qualification codes a volunteer needs, e.g. `["driving_licence"]`.
    #[serde(default)]
    pub qualifications: Vec<String>,
    /// Default duration in minutes, 5–1440.
    pub default_duration_minutes: i64,
    /// Offer timeout in seconds, 30–86400.
    pub offer_timeout_seconds: i64,
    /// `priority`, `urgent` or `standard`.
    pub lane: String,
    /// Requesters deployed to the epidemic's centre get the priority lane.
    #[serde(default)]
    pub priority_channel: bool,
    /// Days after completion to schedule a follow-up order, 1–90.
    pub follow_up_days: Option<i64>,
    /// A remote item whose assignments may run alongside the volunteer's
    /// other assignments in the same hours (default false: an assignment
    /// excludes others whose window overlaps). Not for on-site items.
    #[serde(default)]
    pub runs_alongside: bool,
    /// Retire (true) or restore (false); update only.
    pub retired: Option<bool>,
}

fn validate(req: &ItemRequest, code: String, org_unit_id: Option<i64>) -> ApiResult<ItemFields> {
    let name = |field: &str, v: &str| -> ApiResult<String> {
        let v = v.trim();
        if v.is_empty() || v.chars().count() > 100 {
            return Err(ApiError::invalid(
                field,
                "invalid_name",
                format!("{field} must have 1 to 100 characters"),
            ));
        }
        Ok(v.to_string())
    };
    let mode: ServiceMode =
        req.mode
            .parse()
            .map_err(|e: homefront_domain::catalogue::UnknownValue| {
                ApiError::invalid("mode", "invalid_mode", e.to_string())
            })?;
    let lane: Lane = req
        .lane
        .parse()
        .map_err(|e: homefront_domain::catalogue::UnknownValue| {
            ApiError::invalid("lane", "invalid_lane", e.to_string())
        })?;
    let mut quals = Vec::new();
    for q in &req.qualifications {
        let q = Qualification::parse(q.trim()).map_err(|e| {
            ApiError::invalid("qualifications", "invalid_qualification", e.to_string())
        })?;
        quals.push(q.as_str());
    }
    quals.sort_unstable();
    quals.dedup();
    if !(5..=1440).contains(&req.default_duration_minutes) {
        return Err(ApiError::invalid(
            "default_duration_minutes",
            "out_of_range",
            "default_duration_minutes must be between 5 and 1440",
        ));
    }
    if !(30..=86_400).contains(&req.offer_timeout_seconds) {
        return Err(ApiError::invalid(
            "offer_timeout_seconds",
            "out_of_range",
            "offer_timeout_seconds must be between 30 and 86400",
        ));
    }
    if let Some(d) = req.follow_up_days
        && !(1..=90).contains(&d)
    {
        return Err(ApiError::invalid(
            "follow_up_days",
            "out_of_range",
            "follow_up_days must be between 1 and 90, or left out",
        ));
    }
    if req.runs_alongside && mode == ServiceMode::Onsite {
        return Err(ApiError::invalid(
            "runs_alongside",
            "onsite_cannot_run_alongside",
            "only a remote item can run alongside other assignments: a volunteer is in one place at a time",
        ));
    }
    Ok(ItemFields {
        code,
        org_unit_id,
        name_zh: name("name_zh", &req.name_zh)?,
        name_en: name("name_en", &req.name_en)?,
        mode,
        qualifications: quals.join(","),
        default_duration_minutes: req.default_duration_minutes,
        offer_timeout_seconds: req.offer_timeout_seconds,
        lane,
        priority_channel: req.priority_channel,
        follow_up_days: req.follow_up_days,
        runs_alongside: req.runs_alongside,
    })
}

/// Whether `actor` may edit an item owned by `org_unit_id`.
async fn may_edit(state: &AppState, actor: &Actor, org_unit_id: Option<i64>) -> ApiResult<bool> {
    Ok(match org_unit_id {
        None => actor.is_admin(),
        Some(id) => match readable_unit(state, actor, id).await {
            Ok(unit) => actor.manages(&unit.org_path()),
            Err(_) => false,
        },
    })
}

/// Add a catalogue item.
///
/// Admins add deployment-wide items (no `org_unit_id`); a coordinator adds
/// local items for a unit in its area. Durations are minutes (5–1440),
/// offer timeouts seconds (30–86400), follow-ups days (1–90).
#[utoipa::path(post, path = "/api/v1/service-items", tag = "catalogue", operation_id = "create_service_item",
    request_body = ItemRequest,
    responses(
        (status = 201, description = "Created", body = ServiceItem),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden` for roles other than coordinator and admin; or `csrf_failed`", body = ErrorShape),
        (status = 409, description = "`duplicate_code` (field `code`): an item with this code exists here", body = ErrorShape),
        (status = 422, description = "Invalid input naming the field: `invalid_code`, `org_unit_required`, `unknown_org_unit`, `invalid_name`, `invalid_mode`, `invalid_lane`, `invalid_qualification`, `out_of_range`, `onsite_cannot_run_alongside` (`runs_alongside`)", body = ErrorShape),
        BodyRejection))]
pub(crate) async fn create(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<ItemRequest>,
) -> ApiResult<(StatusCode, Json<ServiceItem>)> {
    if !actor.is_admin() && !actor.has(Role::Coordinator) {
        return Err(ApiError::forbidden());
    }
    let code = req.code.clone().unwrap_or_default();
    let code_ok = (2..=40).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !code_ok {
        return Err(ApiError::invalid(
            "code",
            "invalid_code",
            "code must have 2 to 40 lower-case letters, digits or underscores, e.g. school_run",
        ));
    }
    if !may_edit(&state, &actor, req.org_unit_id).await? {
        return Err(if req.org_unit_id.is_none() {
            ApiError::invalid(
                "org_unit_id",
                "org_unit_required",
                "coordinators add items for their own area: give org_unit_id",
            )
        } else {
            ApiError::invalid(
                "org_unit_id",
                "unknown_org_unit",
                "no organisation unit with this id in your area",
            )
        });
    }
    let fields = validate(&req, code, req.org_unit_id)?;
    let item = state
        .store
        .create_service_item(&fields, state.clock.now().epoch_ms())
        .await
        .on_constraint(constraint::SERVICE_ITEM_CODE, || ApiError {
            field: Some("code".into()),
            ..ApiError::conflict("duplicate_code", "an item with this code exists here")
        })?;
    Ok((StatusCode::CREATED, Json(item)))
}

/// Change a catalogue item, or retire (`retired: true`) or restore it.
///
/// The body is the full item as for create; `code` and `org_unit_id`, if
/// given, must match the item's. Retiring stops new orders and leaves old
/// orders intact. Admins edit deployment-wide items; coordinators the
/// items of units in their area.
#[utoipa::path(patch, path = "/api/v1/service-items/{id}", tag = "catalogue", operation_id = "update_service_item",
    params(("id" = i64, Path, description = "Item id")),
    request_body = ItemRequest,
    responses(
        (status = 200, description = "The item as changed", body = ServiceItem),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: the caller may not edit this item; or `csrf_failed`", body = ErrorShape),
        (status = 404, description = "No such item", body = ErrorShape),
        (status = 422, description = "`immutable` (field `code`) or invalid input naming the field, as for create", body = ErrorShape),
        BodyRejection))]
pub(crate) async fn update(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ItemRequest>,
) -> ApiResult<Json<ServiceItem>> {
    let id = parse_id(&id)?;
    let item = state
        .store
        .service_item(id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if !may_edit(&state, &actor, item.org_unit_id).await? {
        return Err(ApiError::forbidden());
    }
    if req.code.as_deref().is_some_and(|c| c != item.code)
        || req.org_unit_id.is_some_and(|o| Some(o) != item.org_unit_id)
    {
        return Err(ApiError::invalid(
            "code",
            "immutable",
            "an item's code and owner cannot change; retire it and create another",
        ));
    }
    let fields = validate(&req, item.code.clone(), item.org_unit_id)?;
    state.store.update_service_item(id, &fields).await?;
    if let Some(retired) = req.retired {
        let at = retired.then(|| item.retired_at.unwrap_or(state.clock.now().epoch_ms()));
        state.store.set_item_retired(id, at).await?;
    }
    Ok(Json(
        state
            .store
            .service_item(id)
            .await?
            .ok_or_else(ApiError::not_found)?,
    ))
}
