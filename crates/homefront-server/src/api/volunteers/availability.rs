//! Duty toggle, weekly availability windows, leave, and the availability
//! check (`homefront_domain::availability`).
//!
//! Weekly windows are wall-clock times in the team's time zone
//! (`org_unit.time_zone`, default Asia/Shanghai): `{"weekday": "fri",
//! "start": "22:00", "end": "06:00"}` runs from Friday 22:00 to Saturday
//! 06:00 (an end at or before the start crosses midnight; `24:00` means
//! midnight). Leave is a half-open interval of epoch-ms instants.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{NaiveTime, Timelike, Weekday};
use homefront_domain::Timestamp;
use homefront_domain::availability::{Leave, TimeWindow, WeeklyWindow, is_available_at};
use homefront_domain::vetting::VettingState;
use homefront_store::availability::{LeaveRecord, WindowRecord};
use homefront_store::volunteers::DutyStatus;
use serde::{Deserialize, Serialize};

use super::{visible, volunteer_id};
use crate::AppState;
use crate::api::ApiQuery;
use crate::api::openapi::{BodyRejection, ErrorShape, QueryRejection};
use crate::api::{ApiJson, parse_id};
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};

/// Most weekly windows per volunteer.
pub const MAX_WINDOWS: usize = 50;

/// `POST /api/v1/volunteers/{id}/duty` (`/volunteers/me/duty`) body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DutyRequest {
    /// true = on duty (may be offered work now), false = off duty.
    pub on_duty: bool,
}

/// One tap on the duty switch: on duty (may be offered work now) or off.
///
/// Idempotent: switching on twice keeps the first `on_duty_since` and
/// answers `changed: false`. Only an `active` volunteer may go on duty
/// (409 `not_active`); going off always works, and withdraws the
/// volunteer's open offers (each withdrawal is announced to them, and the
/// orders go to their next candidates). The volunteer itself or a
/// coordinator of its team.
#[utoipa::path(post, path = "/api/v1/volunteers/{id}/duty", tag = "availability", operation_id = "set_duty",
    params(("id" = String, Path, description = "The volunteer's account id, or `me` for the caller")),
    request_body = DutyRequest,
    responses(
        (status = 200, body = DutyStatus),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: no role of the caller deals with volunteers; or `csrf_failed`", body = ErrorShape),
        (status = 404, description = "No such volunteer, or neither the caller nor in the caller's area", body = ErrorShape),
        (status = 409, description = "`not_active` (field `on_duty`): only active volunteers go on duty", body = ErrorShape),
        (status = 422, description = "`invalid_body`: the body does not fit, e.g. `on_duty` missing", body = ErrorShape),
        BodyRejection))]
pub(crate) async fn duty(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<DutyRequest>,
) -> ApiResult<Json<DutyStatus>> {
    let id = volunteer_id(&actor, &id)?;
    let v = visible(&state, &actor, id).await?;
    if req.on_duty && v.vetting_state != VettingState::Active {
        return Err(ApiError {
            field: Some("on_duty".into()),
            ..ApiError::conflict(
                "not_active",
                format!(
                    "only active volunteers go on duty; the vetting state is {}",
                    v.vetting_state
                ),
            )
        });
    }
    let status = state
        .store
        .set_duty(id, req.on_duty, Some(actor.user.id), state.clock.now())
        .await?
        .ok_or_else(ApiError::not_found)?;
    if status.changed && !status.on_duty {
        // Their open offers were withdrawn: the next candidates should not
        // wait for a pass.
        state.dispatch_wake.notify_one();
    }
    Ok(Json(status))
}

/// A weekly window as JSON.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowInput {
    /// `mon` … `sun` (or the full English name).
    pub weekday: String,
    /// Local start `HH:MM`, inclusive.
    pub start: String,
    /// Local end `HH:MM`, exclusive; at or before `start` = next day; `24:00` = midnight.
    pub end: String,
}

/// A stored weekly window.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WindowView {
    /// Row id.
    pub id: i64,
    /// `mon` … `sun`.
    pub weekday: String,
    /// Local start, `HH:MM`.
    pub start: String,
    /// Local end, `HH:MM`.
    pub end: String,
    /// Whether it ends on the next day.
    pub crosses_midnight: bool,
    /// Length in minutes.
    pub duration_minutes: i64,
}

fn hhmm(t: NaiveTime) -> String {
    format!("{:02}:{:02}", t.hour(), t.minute())
}

fn window_view(r: &WindowRecord) -> Option<WindowView> {
    let w = r.to_domain()?;
    Some(WindowView {
        id: r.id,
        weekday: w.weekday.to_string().to_lowercase(),
        start: hhmm(w.start),
        end: hhmm(w.end),
        crosses_midnight: w.crosses_midnight(),
        duration_minutes: w.duration_minutes(),
    })
}

fn parse_time(field: &str, raw: &str) -> ApiResult<NaiveTime> {
    let raw = raw.trim();
    if raw == "24:00" {
        return Ok(NaiveTime::MIN);
    }
    NaiveTime::parse_from_str(raw, "%H:%M").map_err(|_| {
        ApiError::invalid(
            field,
            "invalid_time",
            format!("\"{raw}\" is not a time of day; use HH:MM in 24-hour local time, e.g. 22:00"),
        )
    })
}

fn parse_window(w: &WindowInput, prefix: &str) -> ApiResult<WeeklyWindow> {
    let weekday: Weekday = w.weekday.trim().parse().map_err(|_| {
        ApiError::invalid(
            &format!("{prefix}weekday"),
            "invalid_weekday",
            format!(
                "\"{}\" is not a weekday; use mon, tue, wed, thu, fri, sat or sun",
                w.weekday
            ),
        )
    })?;
    Ok(WeeklyWindow::new(
        weekday,
        parse_time(&format!("{prefix}start"), &w.start)?,
        parse_time(&format!("{prefix}end"), &w.end)?,
    ))
}

/// A leave period as JSON.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaveInput {
    /// First instant of leave, epoch ms.
    pub from: i64,
    /// First instant back, epoch ms (after `from`).
    pub to: i64,
    /// Optional reason, at most 500 characters.
    pub reason: Option<String>,
}

/// A volunteer's availability.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AvailabilityView {
    /// The zone weekly windows are in.
    pub time_zone: String,
    /// On duty since, epoch ms; null when off duty.
    pub on_duty_since: Option<i64>,
    /// Weekly windows.
    pub weekly: Vec<WindowView>,
    /// Leave periods.
    pub leaves: Vec<LeaveRecord>,
}

/// A volunteer's availability: the duty toggle, weekly windows (wall-clock
/// times in the team's time zone) and leave periods (epoch ms).
#[utoipa::path(get, path = "/api/v1/volunteers/{id}/availability", tag = "availability", operation_id = "show_availability",
    params(("id" = String, Path, description = "The volunteer's account id, or `me` for the caller")),
    responses(
        (status = 200, body = AvailabilityView),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: no role of the caller deals with volunteers", body = ErrorShape),
        (status = 404, description = "No such volunteer, or neither the caller nor in the caller's area", body = ErrorShape)))]
pub(super) async fn show(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<AvailabilityView>> {
    let id = volunteer_id(&actor, &id)?;
    let v = visible(&state, &actor, id).await?;
    Ok(Json(AvailabilityView {
        time_zone: v.time_zone.name().to_string(),
        on_duty_since: v.on_duty_since,
        weekly: state
            .store
            .availability_windows(id)
            .await?
            .iter()
            .filter_map(window_view)
            .collect(),
        leaves: state.store.leaves(id).await?,
    }))
}

/// Add a weekly window, e.g. Friday 22:00–06:00 (an end at or before the
/// start runs into the next day; `24:00` means midnight).
#[utoipa::path(post, path = "/api/v1/volunteers/{id}/availability/windows", tag = "availability", operation_id = "add_window",
    params(("id" = String, Path, description = "The volunteer's account id, or `me` for the caller")),
    request_body = WindowInput,
    responses(
        (status = 201, description = "Added", body = WindowView),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: no role of the caller deals with volunteers; or `csrf_failed`", body = ErrorShape),
        (status = 404, description = "No such volunteer, or neither the caller nor in the caller's area", body = ErrorShape),
        (status = 409, description = "`too_many_windows`: at most 50; delete some or replace the list with PUT", body = ErrorShape),
        (status = 422, description = "`invalid_weekday` (field `weekday`), `invalid_time` (`start`, `end`: `HH:MM`, 24-hour local time)", body = ErrorShape),
        BodyRejection))]
pub(super) async fn add_window(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<WindowInput>,
) -> ApiResult<(StatusCode, Json<WindowView>)> {
    let id = volunteer_id(&actor, &id)?;
    visible(&state, &actor, id).await?;
    let w = parse_window(&req, "")?;
    if state.store.availability_windows(id).await?.len() >= MAX_WINDOWS {
        return Err(ApiError::conflict(
            "too_many_windows",
            format!(
                "at most {MAX_WINDOWS} weekly windows; delete some or replace the list with PUT"
            ),
        ));
    }
    let r = state
        .store
        .add_availability_window(id, &w, state.clock.now())
        .await?;
    let view = window_view(&r).ok_or_else(|| ApiError::internal("stored window"))?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// `PUT /api/v1/volunteers/{id}/availability/windows` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceWindows {
    /// The new weekly windows (replace all), at most 50.
    pub windows: Vec<WindowInput>,
}

/// Replace all weekly windows with a new list (at most 50; empty clears).
#[utoipa::path(put, path = "/api/v1/volunteers/{id}/availability/windows", tag = "availability", operation_id = "replace_windows",
    params(("id" = String, Path, description = "The volunteer's account id, or `me` for the caller")),
    request_body = ReplaceWindows,
    responses(
        (status = 200, description = "The windows as stored", body = Vec<WindowView>),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: no role of the caller deals with volunteers; or `csrf_failed`", body = ErrorShape),
        (status = 404, description = "No such volunteer, or neither the caller nor in the caller's area", body = ErrorShape),
        (status = 422, description = "`too_many_windows` (field `windows`), or a window's error with the field prefixed `windows[i].`: `invalid_weekday` (field `weekday`), `invalid_time` (`start`, `end`: `HH:MM`, 24-hour local time)", body = ErrorShape),
        BodyRejection))]
pub(super) async fn replace_windows(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ReplaceWindows>,
) -> ApiResult<Json<Vec<WindowView>>> {
    let id = volunteer_id(&actor, &id)?;
    visible(&state, &actor, id).await?;
    if req.windows.len() > MAX_WINDOWS {
        return Err(ApiError::invalid(
            "windows",
            "too_many_windows",
            format!("at most {MAX_WINDOWS} weekly windows"),
        ));
    }
    let windows = req
        .windows
        .iter()
        .enumerate()
        .map(|(i, w)| parse_window(w, &format!("windows[{i}].")))
        .collect::<ApiResult<Vec<_>>>()?;
    let stored = state
        .store
        .replace_availability_windows(id, &windows, state.clock.now())
        .await?;
    Ok(Json(stored.iter().filter_map(window_view).collect()))
}

/// Delete one weekly window.
#[utoipa::path(delete, path = "/api/v1/volunteers/{id}/availability/windows/{window_id}", tag = "availability", operation_id = "delete_window",
    params(("id" = String, Path, description = "The volunteer's account id, or `me` for the caller"), ("window_id" = i64, Path, description = "Window id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: no role of the caller deals with volunteers; or `csrf_failed`", body = ErrorShape),
        (status = 404, description = "No such window of this volunteer, or the volunteer is neither the caller nor in the caller's area", body = ErrorShape)))]
pub(super) async fn delete_window(
    State(state): State<AppState>,
    actor: Actor,
    Path((id, window_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let id = volunteer_id(&actor, &id)?;
    let window_id = parse_id(&window_id)?;
    visible(&state, &actor, id).await?;
    if state
        .store
        .delete_availability_window(id, window_id)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

/// Add a leave period `[from, to)`, epoch ms; the volunteer gets no
/// offers for work inside it.
#[utoipa::path(post, path = "/api/v1/volunteers/{id}/availability/leaves", tag = "availability", operation_id = "add_leave",
    params(("id" = String, Path, description = "The volunteer's account id, or `me` for the caller")),
    request_body = LeaveInput,
    responses(
        (status = 201, description = "Added", body = LeaveRecord),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: no role of the caller deals with volunteers; or `csrf_failed`", body = ErrorShape),
        (status = 404, description = "No such volunteer, or neither the caller nor in the caller's area", body = ErrorShape),
        (status = 422, description = "`invalid_time_window` (field `to`: after `from`) or `too_long` (`reason`, 500 characters)", body = ErrorShape),
        BodyRejection))]
pub(super) async fn add_leave(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<LeaveInput>,
) -> ApiResult<(StatusCode, Json<LeaveRecord>)> {
    let id = volunteer_id(&actor, &id)?;
    visible(&state, &actor, id).await?;
    let leave = Leave::new(Timestamp(req.from), Timestamp(req.to))
        .map_err(|e| ApiError::invalid("to", e.code(), e.to_string()))?;
    if req.reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
        return Err(ApiError::invalid(
            "reason",
            "too_long",
            "reason must have at most 500 characters",
        ));
    }
    let r = state
        .store
        .add_leave(id, &leave, req.reason.as_deref(), state.clock.now())
        .await?;
    Ok((StatusCode::CREATED, Json(r)))
}

/// Delete one leave period.
#[utoipa::path(delete, path = "/api/v1/volunteers/{id}/availability/leaves/{leave_id}", tag = "availability", operation_id = "delete_leave",
    params(("id" = String, Path, description = "The volunteer's account id, or `me` for the caller"), ("leave_id" = i64, Path, description = "Leave id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: no role of the caller deals with volunteers; or `csrf_failed`", body = ErrorShape),
        (status = 404, description = "No such leave of this volunteer, or the volunteer is neither the caller nor in the caller's area", body = ErrorShape)))]
pub(super) async fn delete_leave(
    State(state): State<AppState>,
    actor: Actor,
    Path((id, leave_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let id = volunteer_id(&actor, &id)?;
    let leave_id = parse_id(&leave_id)?;
    visible(&state, &actor, id).await?;
    if state.store.delete_leave(id, leave_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

/// Query of `GET /api/v1/volunteers/{id}/available`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AvailableQuery {
    /// The instant, epoch ms; default now.
    pub at: Option<i64>,
    /// With `until`: ask about the service window `[at, until)` instead of
    /// the instant, as the dispatcher does (offer made now).
    pub until: Option<i64>,
}

/// The answer of the availability check.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AvailableView {
    /// The volunteer.
    pub volunteer_id: i64,
    /// The instant (or window start), epoch ms.
    pub at: i64,
    /// The window end, epoch ms, when a window was asked about.
    pub until: Option<i64>,
    /// The zone weekly windows were evaluated in.
    pub time_zone: String,
    /// The verdict: for an instant, `is_available_at`; for a window,
    /// `Availability::available_for_order` with the offer made now.
    pub available: bool,
    /// Whether the duty toggle is on at `at`.
    pub on_duty: bool,
    /// Whether `at` is inside a leave period.
    pub on_leave: bool,
    /// Whether `at` is inside a weekly window.
    pub in_weekly_window: bool,
}

/// Whether the volunteer is available at an instant, or for a service
/// window `[at, until)` as the dispatcher asks (offer made now), with the
/// parts of the verdict.
#[utoipa::path(get, path = "/api/v1/volunteers/{id}/available", tag = "availability", operation_id = "check_available",
    params(("id" = String, Path, description = "The volunteer's account id, or `me` for the caller"), AvailableQuery),
    responses(
        (status = 200, body = AvailableView),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: no role of the caller deals with volunteers", body = ErrorShape),
        (status = 404, description = "No such volunteer, or neither the caller nor in the caller's area", body = ErrorShape),
        (status = 422, description = "`invalid_time_window` (field `until`: after `at`)", body = ErrorShape),
        QueryRejection))]
pub(super) async fn available(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<AvailableQuery>,
) -> ApiResult<Json<AvailableView>> {
    let id = volunteer_id(&actor, &id)?;
    visible(&state, &actor, id).await?;
    let now = state.clock.now();
    let at = q.at.map_or(now, Timestamp);
    let found = state
        .store
        .volunteer_availability(id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let (a, tz) = (&found.availability, found.time_zone);
    let available = match q.until {
        None => is_available_at(a, tz, at),
        Some(until) => {
            let window = TimeWindow::new(at, Timestamp(until))
                .map_err(|e| ApiError::invalid("until", e.code(), e.to_string()))?;
            a.available_for_order(tz, now, &window)
        }
    };
    Ok(Json(AvailableView {
        volunteer_id: id,
        at: at.epoch_ms(),
        until: q.until,
        time_zone: tz.name().to_string(),
        available,
        on_duty: a.on_duty_at(at),
        on_leave: a.on_leave_at(at),
        in_weekly_window: a.in_weekly_window(tz, at),
    }))
}
