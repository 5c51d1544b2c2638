//! Coordinators' dispatch tools:
//! - `GET /api/v1/orders/{id}/candidates`: the ranked list with each
//!   rank's explanation (distance and cost terms);
//! - `POST /api/v1/orders/{id}/offers`: a manual offer to one of them;
//! - `GET /api/v1/orders/{id}/offers`: every offer made, with explanations;
//! - `GET /api/v1/dispatch/queue`: unassigned orders of the subtree,
//!   escalations on top;
//! - `GET/PUT /api/v1/org-units/{id}/dispatch-setting`: the unit's mode,
//!   broadcast size and cost weights.

use std::collections::{HashMap, HashSet};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use homefront_dispatch::CostWeights;
use homefront_domain::Role;
use homefront_domain::order_state::OrderState;
use homefront_domain::org::{OrgPath, team_serves};
use homefront_store::offers::Offer;
use homefront_store::orders::{OrderFilter, OrderRow};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::api::openapi::{BodyRejection, ErrorShape};
use crate::api::orders::{OrderView, view, visible_order};
use crate::api::org_units::managed_unit;
use crate::api::{ApiJson, parse_id};
use crate::auth::Actor;
use crate::dispatcher::{self, Mode};
use crate::error::{ApiError, ApiResult};
use crate::privacy::OrderAccess;

/// Dispatch routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orders/{id}/candidates", get(candidates))
        .route("/orders/{id}/offers", get(offers).post(manual_offer))
        .route("/dispatch/queue", get(queue))
        .route(
            "/org-units/{id}/dispatch-setting",
            get(get_setting).put(put_setting),
        )
}

/// One ranked candidate.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CandidateView {
    /// The volunteer's account.
    pub volunteer_user_id: i64,
    /// Their name.
    pub display_name: String,
    /// 1 = best.
    pub rank: usize,
    /// Great-circle km from their home; `None` for remote items.
    pub distance_km: Option<f64>,
    /// Cost terms in km-equivalents: distance, load, fairness, pairing bonus, total.
    pub cost: homefront_dispatch::CostTerms,
    /// Already offered this order (any outcome).
    pub offered: bool,
}

/// Whom `actor` may offer an order to, assign it to by hand, or pair a
/// household with: the one rule of manual dispatch. The actor manages the
/// work's division (`target`: the order's division, or a household
/// member's), and the volunteer's team serves it by
/// [`homefront_domain::org::team_serves`] (the rule of the candidate list:
/// a team whose division encloses the target, widened to the escalation
/// queue's division once the order escalated to the city or province;
/// `escalation_level` 0 for pairings).
pub fn may_dispatch(
    actor: &Actor,
    target: &OrgPath,
    escalation_level: i64,
    team: &OrgPath,
) -> bool {
    actor.manages(target) && team_serves(team, target, escalation_level)
}

/// The teams an account volunteers on (its volunteer role grants; empty
/// for an account that is no volunteer).
///
/// # Errors
/// Database errors.
pub async fn volunteer_teams(state: &AppState, volunteer: i64) -> ApiResult<Vec<OrgPath>> {
    Ok(state
        .store
        .grants(volunteer)
        .await?
        .into_iter()
        .filter(|g| g.role == Role::Volunteer)
        .filter_map(|g| g.org_path.map(OrgPath::from_stored))
        .collect())
}

async fn managed_order(state: &AppState, actor: &Actor, id: &str) -> ApiResult<OrderRow> {
    let (order, access) = visible_order(state, actor, parse_id(id)?).await?;
    if access != OrderAccess::Full
        || !actor.manages(&OrgPath::from_stored(order.division_path.clone()))
    {
        return Err(ApiError::forbidden());
    }
    Ok(order)
}

/// The ranked candidates of an order with names and explanations (the
/// API's list and the board page share it).
///
/// # Errors
/// Database errors.
pub async fn ranked(state: &AppState, order: &OrderRow, k: usize) -> ApiResult<Vec<CandidateView>> {
    let now = state.clock.now();
    let item = state
        .store
        .service_item(order.item_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let setting = dispatcher::setting_for(
        &state.store,
        &OrgPath::from_stored(order.division_path.clone()),
    )
    .await?;
    let pool = dispatcher::pool_for(
        &state.store,
        order,
        now,
        state.config.escalation_radius_factor,
    )
    .await
    .map_err(ApiError::internal)?;
    let paired: Vec<i64> = state
        .store
        .live_pairings(order.household_id)
        .await?
        .iter()
        .map(|p| p.volunteer_user_id)
        .collect();
    let offered: HashSet<i64> = state
        .store
        .offers_of_order(order.id)
        .await?
        .iter()
        .map(|o| o.volunteer_user_id)
        .collect();
    let list = dispatcher::rank(
        &state.store,
        &dispatcher::RankInput {
            order,
            item: &item,
            pool: &pool,
            weights: &setting.weights,
            paired: &paired,
            exclude: &HashSet::new(),
            k,
        },
    )
    .await?;
    // One read for the candidates' names, not one per candidate.
    let ids: Vec<i64> = list.iter().map(|c| c.volunteer_id).collect();
    let mut names: HashMap<i64, String> = state
        .store
        .users_by_ids(&ids)
        .await?
        .into_iter()
        .map(|u| (u.id, u.display_name))
        .collect();
    Ok(list
        .into_iter()
        .map(|c| CandidateView {
            volunteer_user_id: c.volunteer_id,
            display_name: names.remove(&c.volunteer_id).unwrap_or_default(),
            rank: c.explanation.rank,
            distance_km: c.explanation.distance_km,
            cost: c.explanation.cost,
            offered: offered.contains(&c.volunteer_id),
        })
        .collect())
}

/// The order's best 20 candidates, ranked, each with its explanation.
///
/// Cost terms are km-equivalents (distance + load + fairness − pairing
/// bonus); distance is great-circle km from the volunteer's home
/// (haversine). For coordinators of the order's division and admins.
#[utoipa::path(get, path = "/api/v1/orders/{id}/candidates", tag = "dispatch", operation_id = "order_candidates",
    params(("id" = i64, Path, description = "Order id")),
    responses(
        (status = 200, description = "Best first", body = Vec<CandidateView>),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: visible, but the caller does not manage the order's division", body = ErrorShape),
        (status = 404, description = "No such order, or not visible to the caller", body = ErrorShape)))]
async fn candidates(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<CandidateView>>> {
    let order = managed_order(&state, &actor, &id).await?;
    Ok(Json(ranked(&state, &order, 20).await?))
}

/// Body of `POST /api/v1/orders/{id}/offers`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualOffer {
    /// The volunteer to offer the order to (from the candidate list).
    pub volunteer_user_id: i64,
}

/// Offer the order to one volunteer from its candidate list, by hand.
///
/// The offer runs alongside any automatic ones and expires after the
/// item's offer timeout.
#[utoipa::path(post, path = "/api/v1/orders/{id}/offers", tag = "dispatch", operation_id = "make_manual_offer",
    params(("id" = i64, Path, description = "Order id")),
    request_body = ManualOffer,
    responses(
        (status = 201, description = "Offered", body = Offer),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: visible, but the caller does not manage the order's division; or `csrf_failed`", body = ErrorShape),
        (status = 404, description = "No such order, or not visible to the caller", body = ErrorShape),
        (status = 409, description = "`not_dispatching`: the order is not waiting for a volunteer; `already_offered`: the volunteer has an open offer for it", body = ErrorShape),
        (status = 422, description = "`not_a_candidate` (field `volunteer_user_id`): not active, off duty, unqualified, out of range or at capacity", body = ErrorShape),
        BodyRejection))]
pub(crate) async fn manual_offer(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ManualOffer>,
) -> ApiResult<(StatusCode, Json<Offer>)> {
    let order = managed_order(&state, &actor, &id).await?;
    if !matches!(order.state.as_str(), "submitted" | "dispatching") {
        return Err(ApiError::conflict(
            "not_dispatching",
            "this order is not waiting for a volunteer",
        ));
    }
    // The candidate list applies the same rule as hand assignment; checked
    // here first so that a volunteer outside it answers before ranking.
    let order_path = OrgPath::from_stored(order.division_path.clone());
    let in_scope = volunteer_teams(&state, req.volunteer_user_id)
        .await?
        .iter()
        .any(|t| may_dispatch(&actor, &order_path, order.escalation_level, t));
    let list = if in_scope {
        ranked(&state, &order, 500).await?
    } else {
        Vec::new()
    };
    let Some(c) = list
        .iter()
        .find(|c| c.volunteer_user_id == req.volunteer_user_id)
    else {
        return Err(ApiError::invalid(
            "volunteer_user_id",
            "not_a_candidate",
            "this volunteer cannot take the order now (not active, off duty, unqualified, out of range or at capacity); pick one from the candidate list",
        ));
    };
    if c.offered
        && state
            .store
            .offers_of_order(order.id)
            .await?
            .iter()
            .any(|o| o.volunteer_user_id == c.volunteer_user_id && o.state == "offered")
    {
        return Err(ApiError::conflict(
            "already_offered",
            "this volunteer already has an open offer for the order",
        ));
    }
    let item = state
        .store
        .service_item(order.item_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let now = state.clock.now();
    let round = state
        .store
        .offers_of_order(order.id)
        .await?
        .iter()
        .map(|o| o.round)
        .max()
        .unwrap_or(0)
        + 1;
    let candidate = homefront_dispatch::Candidate {
        volunteer_id: c.volunteer_user_id,
        explanation: homefront_dispatch::Explanation {
            rank: c.rank,
            distance_km: c.distance_km,
            cost: c.cost,
        },
    };
    let offer = dispatcher::new_offer(
        &order,
        &item,
        &candidate,
        "manual",
        round,
        now,
        Some(actor.user.id),
    );
    dispatcher::make_manual_offers(&state, &order, &[offer])
        .await
        .map_err(ApiError::internal)?;
    let made = state
        .store
        .offers_of_order(order.id)
        .await?
        .into_iter()
        .rev()
        .find(|o| o.volunteer_user_id == req.volunteer_user_id)
        .ok_or_else(ApiError::not_found)?;
    Ok((StatusCode::CREATED, Json(made)))
}

/// Every offer made for the order, oldest first, with its explanation.
#[utoipa::path(get, path = "/api/v1/orders/{id}/offers", tag = "dispatch", operation_id = "order_offers",
    params(("id" = i64, Path, description = "Order id")),
    responses(
        (status = 200, body = Vec<Offer>),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: visible, but the caller does not manage the order's division", body = ErrorShape),
        (status = 404, description = "No such order, or not visible to the caller", body = ErrorShape)))]
async fn offers(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Offer>>> {
    let order = managed_order(&state, &actor, &id).await?;
    Ok(Json(state.store.offers_of_order(order.id).await?))
}

/// An order in the coordinator's queue.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueueItem {
    /// 0: with the dispatcher; 1: county queue; 2: city; 3: province.
    pub escalation_level: i64,
    /// The order (summary: no address or phone).
    pub order: OrderView,
}

/// Orders of the caller's subtree still waiting for a volunteer.
///
/// Escalated orders first (highest level on top), then by lane (priority,
/// urgent, standard), then oldest first. Summaries: no address or phone.
#[utoipa::path(get, path = "/api/v1/dispatch/queue", tag = "dispatch", operation_id = "dispatch_queue",
    responses(
        (status = 200, body = Vec<QueueItem>),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden` for roles other than coordinator and admin", body = ErrorShape)))]
async fn queue(State(state): State<AppState>, actor: Actor) -> ApiResult<Json<Vec<QueueItem>>> {
    let Some(scopes) = actor
        .managed_scopes()
        .map(|s| s.iter().map(|p| p.as_str().to_string()).collect::<Vec<_>>())
    else {
        return queue_for(&state, None).await;
    };
    if scopes.is_empty() {
        return Err(ApiError::forbidden());
    }
    queue_for(&state, Some(scopes)).await
}

async fn queue_for(
    state: &AppState,
    scopes: Option<Vec<String>>,
) -> ApiResult<Json<Vec<QueueItem>>> {
    let mut orders = state
        .store
        .orders(&OrderFilter {
            scopes,
            states: vec![OrderState::Submitted, OrderState::Dispatching],
            ..OrderFilter::default()
        })
        .await?;
    orders.sort_by_key(|o| (-o.escalation_level, o.lane.rank(), o.created_at));
    Ok(Json(
        orders
            .iter()
            .map(|o| QueueItem {
                escalation_level: o.escalation_level,
                order: view(o, None),
            })
            .collect(),
    ))
}

/// A unit's dispatch setting.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingBody {
    /// `auto`, `sequential`, `broadcast`, `batch` or `manual`.
    pub mode: String,
    /// Offers at once in broadcast mode, 1–50 (default 5).
    #[serde(default = "default_k")]
    pub broadcast_k: i64,
    /// Cost weights (km-equivalents); missing keys take the defaults.
    #[serde(default)]
    pub weights: CostWeights,
    /// Minutes, 0–1440 (default 10), after a volunteer's offer of an order
    /// expired or was withdrawn before the dispatcher may offer them the
    /// same order again; a decline is final for that order.
    #[serde(default = "default_cooldown")]
    pub reoffer_cooldown_minutes: i64,
}

fn default_k() -> i64 {
    5
}

fn default_cooldown() -> i64 {
    homefront_store::dispatch::DEFAULT_REOFFER_COOLDOWN_MINUTES
}

/// The dispatch setting in force for a unit (its own or inherited from the
/// nearest ancestor with one, else the defaults).
#[utoipa::path(get, path = "/api/v1/org-units/{id}/dispatch-setting", tag = "dispatch", operation_id = "get_dispatch_setting",
    params(("id" = i64, Path, description = "Org-unit id")),
    responses(
        (status = 200, body = SettingBody),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: readable, but the caller does not manage the unit", body = ErrorShape),
        (status = 404, description = "No such unit, or not readable by the caller", body = ErrorShape)))]
async fn get_setting(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<SettingBody>> {
    let unit = managed_unit(&state, &actor, parse_id(&id)?).await?;
    let s = dispatcher::setting_for(&state.store, &unit.org_path()).await?;
    Ok(Json(SettingBody {
        mode: format!("{:?}", s.mode).to_lowercase(),
        broadcast_k: i64::try_from(s.broadcast_k).unwrap_or(5),
        weights: s.weights,
        reoffer_cooldown_minutes: s.reoffer_cooldown_minutes,
    }))
}

/// Set a unit's dispatch mode, broadcast size and cost weights; the
/// setting applies to the unit's subtree unless a descendant has its own.
#[utoipa::path(put, path = "/api/v1/org-units/{id}/dispatch-setting", tag = "dispatch", operation_id = "put_dispatch_setting",
    params(("id" = i64, Path, description = "Org-unit id")),
    request_body = SettingBody,
    responses(
        (status = 200, description = "The setting as stored", body = SettingBody),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: not a coordinator or admin, or the caller does not manage the unit; or `csrf_failed`", body = ErrorShape),
        (status = 404, description = "No such unit, or not readable by the caller", body = ErrorShape),
        (status = 422, description = "`invalid_mode` (field `mode`), `out_of_range` (`broadcast_k`, 1–50; `reoffer_cooldown_minutes`, 0–1440) or `invalid_weights` (`weights`: finite, ≥ 0)", body = ErrorShape),
        BodyRejection))]
async fn put_setting(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<SettingBody>,
) -> ApiResult<Json<SettingBody>> {
    set_dispatch_setting(&state, &actor, parse_id(&id)?, &req).await?;
    Ok(Json(req))
}

/// The setting in force for unit `id` (its own or inherited), for a
/// coordinator who manages it or an admin. Shared by the API and the pages.
///
/// # Errors
/// 404 for a unit the actor cannot read, 403 for one they do not manage.
pub async fn dispatch_setting(
    state: &AppState,
    actor: &Actor,
    id: i64,
) -> ApiResult<(homefront_store::org_units::OrgUnit, SettingBody)> {
    let unit = managed_unit(state, actor, id).await?;
    let s = dispatcher::setting_for(&state.store, &unit.org_path()).await?;
    Ok((
        unit,
        SettingBody {
            mode: format!("{:?}", s.mode).to_lowercase(),
            broadcast_k: i64::try_from(s.broadcast_k).unwrap_or(5),
            weights: s.weights,
            reoffer_cooldown_minutes: s.reoffer_cooldown_minutes,
        },
    ))
}

/// Sets unit `id`'s dispatch mode, broadcast size, weights and cooldown
/// (checked as the API documents). Shared by the API and the pages.
///
/// # Errors
/// 403 for other roles or an unmanaged unit, 404 for an unreadable one,
/// 422 `invalid_mode` (`mode`), `out_of_range` (`broadcast_k`,
/// `reoffer_cooldown_minutes`) or `invalid_weights` (`weights`).
pub async fn set_dispatch_setting(
    state: &AppState,
    actor: &Actor,
    id: i64,
    req: &SettingBody,
) -> ApiResult<()> {
    if !actor.is_admin() && !actor.has(Role::Coordinator) {
        return Err(ApiError::forbidden());
    }
    let unit = managed_unit(state, actor, id).await?;
    if Mode::parse(&req.mode).is_none() {
        return Err(ApiError::invalid(
            "mode",
            "invalid_mode",
            "mode must be auto, sequential, broadcast, batch or manual",
        ));
    }
    if !(1..=50).contains(&req.broadcast_k) {
        return Err(ApiError::invalid(
            "broadcast_k",
            "out_of_range",
            "broadcast_k must be between 1 and 50",
        ));
    }
    if !(0..=1440).contains(&req.reoffer_cooldown_minutes) {
        return Err(ApiError::invalid(
            "reoffer_cooldown_minutes",
            "out_of_range",
            "reoffer_cooldown_minutes must be between 0 and 1440 (minutes; default 10)",
        ));
    }
    req.weights
        .validate()
        .map_err(|e| ApiError::invalid("weights", "invalid_weights", e.to_string()))?;
    let weights = serde_json::to_string(&req.weights).map_err(ApiError::internal)?;
    state
        .store
        .set_dispatch_setting(
            unit.id,
            &homefront_store::dispatch::NewDispatchSetting {
                mode: &req.mode,
                broadcast_k: req.broadcast_k,
                weights: &weights,
                reoffer_cooldown_minutes: req.reoffer_cooldown_minutes,
            },
            state.clock.now().epoch_ms(),
        )
        .await?;
    Ok(())
}
