//! The service-hours ledger:
//! - `GET /api/v1/hours/me` and `GET /api/v1/volunteers/{id}/hours`
//!   (`?from=&to=` epoch ms): entries and totals by month, by item,
//!   recorded vs backfilled, and orders served;
//! - `POST /api/v1/volunteers/{id}/hours`: a coordinator's backfill for
//!   work done offline, with a reason;
//! - `POST /api/v1/hours/{id}/adjust`: a coordinator's correction, a new
//!   entry with a reason; the original stays as it was;
//! - `GET /api/v1/follow-ups`: open follow-up items of the subtree (low
//!   ratings, complaints, capped sessions).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use homefront_domain::Role;
use homefront_domain::clock::DEFAULT_TIME_ZONE;
use homefront_domain::hours::HoursKind;
use homefront_store::fulfilment::{FollowUpItem, HoursEntry, NewHours};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::api::ApiQuery;
use crate::api::openapi::{BodyRejection, ErrorShape, QueryRejection};
use crate::api::{ApiJson, parse_id};
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};

/// Hours routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/hours/me", get(mine))
        .route("/volunteers/{id}/hours", get(of_volunteer).post(backfill))
        .route("/hours/{id}/adjust", post(adjust))
        .route("/follow-ups", get(follow_ups))
}

/// Query of the hours views.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Period {
    /// From (inclusive), epoch ms.
    pub from: Option<i64>,
    /// To (exclusive), epoch ms.
    pub to: Option<i64>,
}

/// Minutes split by kind.
#[derive(Debug, Default, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Split {
    /// From check-in/out.
    pub recorded_minutes: i64,
    /// Entered by coordinators for offline work.
    pub backfilled_minutes: i64,
}

impl Split {
    fn add(&mut self, e: &HoursEntry) {
        if e.kind == HoursKind::Backfilled {
            self.backfilled_minutes += e.minutes;
        } else {
            self.recorded_minutes += e.minutes;
        }
    }
}

/// A volunteer's hours for a period.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HoursView {
    /// The volunteer.
    pub volunteer_user_id: i64,
    /// Totals by kind (adjustments included).
    pub total: Split,
    /// By month (`YYYY-MM` in the team's time zone).
    pub by_month: BTreeMap<String, Split>,
    /// By item code (`backfill` for entries without an item).
    pub by_item: BTreeMap<String, Split>,
    /// Distinct orders served.
    pub orders_served: usize,
    /// Every entry, oldest first.
    pub entries: Vec<HoursEntry>,
}

async fn hours_view(state: &AppState, volunteer: i64, period: &Period) -> ApiResult<HoursView> {
    let tz = state
        .store
        .volunteer(volunteer)
        .await?
        .map_or(DEFAULT_TIME_ZONE, |v| v.time_zone);
    let entries = state
        .store
        .hours_of(volunteer, period.from, period.to)
        .await?;
    let items = state.store.service_items(true).await?;
    let mut view = HoursView {
        volunteer_user_id: volunteer,
        total: Split::default(),
        by_month: BTreeMap::new(),
        by_item: BTreeMap::new(),
        orders_served: 0,
        entries: Vec::new(),
    };
    let mut orders = std::collections::BTreeSet::new();
    for e in &entries {
        view.total.add(e);
        let at = e.started_at.unwrap_or(e.created_at);
        let month = chrono::DateTime::from_timestamp_millis(at)
            .map(|d| d.with_timezone(&tz).format("%Y-%m").to_string())
            .unwrap_or_default();
        view.by_month.entry(month).or_default().add(e);
        let item = e
            .item_id
            .and_then(|id| items.iter().find(|i| i.id == id))
            .map_or_else(|| "backfill".to_string(), |i| i.code.clone());
        view.by_item.entry(item).or_default().add(e);
        if let Some(o) = e.order_id {
            orders.insert(o);
        }
    }
    view.orders_served = orders.len();
    view.entries = entries;
    Ok(view)
}

/// The caller's service hours: entries and totals in minutes, by month
/// and by item, recorded vs backfilled, and orders served.
#[utoipa::path(get, path = "/api/v1/hours/me", tag = "hours", operation_id = "my_hours",
    params(Period),
    responses(
        (status = 200, body = HoursView),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: the caller is not a volunteer", body = ErrorShape),
        QueryRejection))]
pub(crate) async fn mine(
    State(state): State<AppState>,
    actor: Actor,
    ApiQuery(p): ApiQuery<Period>,
) -> ApiResult<Json<HoursView>> {
    if !actor.has(Role::Volunteer) {
        return Err(ApiError::forbidden());
    }
    Ok(Json(hours_view(&state, actor.user.id, &p).await?))
}

/// The volunteer if `actor` may see their hours (itself, or a coordinator
/// of their team), else 404.
async fn visible_volunteer(state: &AppState, actor: &Actor, id: i64) -> ApiResult<i64> {
    if actor.user.id == id {
        return Ok(id);
    }
    match state.store.volunteer(id).await? {
        Some(v) if actor.manages(&v.org_path()) => Ok(id),
        _ => Err(ApiError::not_found()),
    }
}

/// A volunteer's service hours (as `GET /api/v1/hours/me`): the volunteer
/// itself, or a coordinator of its team.
#[utoipa::path(get, path = "/api/v1/volunteers/{id}/hours", tag = "hours", operation_id = "volunteer_hours",
    params(("id" = i64, Path, description = "The volunteer's account id"), Period),
    responses(
        (status = 200, body = HoursView),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 404, description = "No such volunteer, or neither the caller nor in the caller's area", body = ErrorShape),
        QueryRejection))]
async fn of_volunteer(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<Period>,
) -> ApiResult<Json<HoursView>> {
    let id = visible_volunteer(&state, &actor, parse_id(&id)?).await?;
    Ok(Json(hours_view(&state, id, &p).await?))
}

/// Body of `POST /api/v1/volunteers/{id}/hours`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Backfill {
    /// Minutes served, 1–1440.
    pub minutes: i64,
    /// When the work started, epoch ms.
    pub started_at: i64,
    /// The catalogue item, if one fits.
    pub item_id: Option<i64>,
    /// Why it is entered by hand, 1–500 characters.
    pub reason: String,
}

fn reason(text: &str) -> ApiResult<String> {
    homefront_domain::order_state::Reason::parse(text)
        .map(|r| r.as_str().to_string())
        .map_err(|e| ApiError::invalid("reason", e.code(), e.to_string()))
}

/// Backfill hours for work done offline, with a reason (coordinators of
/// the volunteer's team).
///
/// One entry per day of work: 1–1440 minutes, started in the past.
#[utoipa::path(post, path = "/api/v1/volunteers/{id}/hours", tag = "hours", operation_id = "backfill_hours",
    params(("id" = i64, Path, description = "The volunteer's account id")),
    request_body = Backfill,
    responses(
        (status = 201, description = "The new `backfilled` entry", body = HoursEntry),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`csrf_failed`: cookie sign-in without a matching `X-CSRF-Token`", body = ErrorShape),
        (status = 404, description = "No such volunteer in the caller's area", body = ErrorShape),
        (status = 422, description = "`out_of_range` (field `minutes`), `in_future` (`started_at`), `reason_required` or `reason_too_long` (`reason`), `missing_reference` (an unknown `item_id`)", body = ErrorShape),
        BodyRejection))]
async fn backfill(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Backfill>,
) -> ApiResult<(StatusCode, Json<HoursEntry>)> {
    let id = parse_id(&id)?;
    let volunteer = match state.store.volunteer(id).await? {
        Some(v) if actor.manages(&v.org_path()) => v,
        _ => return Err(ApiError::not_found()),
    };
    if !(1..=1440).contains(&req.minutes) {
        return Err(ApiError::invalid(
            "minutes",
            "out_of_range",
            "minutes must be between 1 and 1440 (one entry per day of work)",
        ));
    }
    let now = state.clock.now().epoch_ms();
    if req.started_at > now {
        return Err(ApiError::invalid(
            "started_at",
            "in_future",
            "backfilled work must have started already",
        ));
    }
    let entry = state
        .store
        .add_hours(
            &NewHours {
                volunteer_user_id: id,
                order_id: None,
                item_id: req.item_id,
                team_id: Some(volunteer.team_id),
                kind: HoursKind::Backfilled,
                minutes: req.minutes,
                started_at: Some(req.started_at),
                ended_at: Some(req.started_at + req.minutes * 60_000),
                adjusts_entry_id: None,
                capped: false,
                reason: Some(reason(&req.reason)?),
                actor_user_id: Some(actor.user.id),
            },
            now,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(entry)))
}

/// Body of `POST /api/v1/hours/{id}/adjust`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Adjust {
    /// Minutes to add (negative to remove); the entry's total may not go below zero.
    pub minutes_delta: i64,
    /// Why, 1–500 characters.
    pub reason: String,
}

/// Correct a ledger entry by a number of minutes, with a reason.
///
/// The correction is a new entry that names the original; the original
/// stays as it was, and the two together may not go below zero minutes.
/// For coordinators of the volunteer's team and admins.
#[utoipa::path(post, path = "/api/v1/hours/{id}/adjust", tag = "hours", operation_id = "adjust_hours",
    params(("id" = i64, Path, description = "The original entry's id")),
    request_body = Adjust,
    responses(
        (status = 201, description = "The adjustment entry", body = HoursEntry),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`csrf_failed`: cookie sign-in without a matching `X-CSRF-Token`", body = ErrorShape),
        (status = 404, description = "No such entry, or its volunteer is outside the caller's area", body = ErrorShape),
        (status = 422, description = "`adjust_the_original` (field `id`), `out_of_range` or `below_zero` (`minutes_delta`), `reason_required` or `reason_too_long` (`reason`)", body = ErrorShape),
        BodyRejection))]
async fn adjust(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Adjust>,
) -> ApiResult<(StatusCode, Json<HoursEntry>)> {
    let original = state
        .store
        .hours_entry(parse_id(&id)?)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let volunteer = match state.store.volunteer(original.volunteer_user_id).await? {
        Some(v)
            if actor.manages(&v.org_path())
                && (actor.is_admin() || actor.has(Role::Coordinator)) =>
        {
            v
        }
        _ => return Err(ApiError::not_found()),
    };
    if original.adjusts_entry_id.is_some() {
        return Err(ApiError::invalid(
            "id",
            "adjust_the_original",
            "adjust the original entry, not an adjustment",
        ));
    }
    if req.minutes_delta == 0 {
        return Err(ApiError::invalid(
            "minutes_delta",
            "out_of_range",
            "minutes_delta must not be 0",
        ));
    }
    let so_far: i64 = state
        .store
        .hours_of(original.volunteer_user_id, None, None)
        .await?
        .iter()
        .filter(|e| e.id == original.id || e.adjusts_entry_id == Some(original.id))
        .map(|e| e.minutes)
        .sum();
    if so_far + req.minutes_delta < 0 {
        return Err(ApiError::invalid(
            "minutes_delta",
            "below_zero",
            format!("the entry has {so_far} minutes; it cannot go below zero"),
        ));
    }
    let kind = if original.kind == HoursKind::Backfilled {
        HoursKind::Backfilled
    } else {
        HoursKind::Recorded
    };
    let entry = state
        .store
        .add_hours(
            &NewHours {
                volunteer_user_id: original.volunteer_user_id,
                order_id: original.order_id,
                item_id: original.item_id,
                team_id: Some(volunteer.team_id),
                kind,
                minutes: req.minutes_delta,
                started_at: original.started_at,
                ended_at: original.ended_at,
                adjusts_entry_id: Some(original.id),
                capped: false,
                reason: Some(reason(&req.reason)?),
                actor_user_id: Some(actor.user.id),
            },
            state.clock.now().epoch_ms(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(entry)))
}

/// Open follow-up items of the caller's subtree: low ratings (1–2),
/// complaints and sessions without a check-out.
#[utoipa::path(get, path = "/api/v1/follow-ups", tag = "hours", operation_id = "list_follow_ups",
    responses(
        (status = 200, body = Vec<FollowUpItem>),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden` for roles other than coordinator and admin", body = ErrorShape)))]
async fn follow_ups(
    State(state): State<AppState>,
    actor: Actor,
) -> ApiResult<Json<Vec<FollowUpItem>>> {
    let scopes = match actor.managed_scopes() {
        None => None,
        Some(s) if s.is_empty() => return Err(ApiError::forbidden()),
        Some(s) => Some(s.iter().map(|p| p.as_str().to_string()).collect::<Vec<_>>()),
    };
    Ok(Json(state.store.open_follow_ups(scopes.as_deref()).await?))
}
