//! The vetting pipeline over HTTP: one move, a bulk move, the log.
//!
//! A move names the target state; the domain picks the one action that
//! leads there (`vetting::action_to`) and refuses skipped steps with 409
//! `step_skipped` (e.g. insured before agreement_signed) and other illegal
//! moves with 409 `illegal_transition`. Each move appends a
//! `vetting_event` in the same transaction. Suspending, withdrawing or
//! rejecting also sets the volunteer off duty
//! (`Store::on_volunteer_deactivated`).

use std::collections::HashSet;

use axum::Json;
use axum::extract::{Path, State};
use homefront_domain::vetting::{VettingError, VettingState};
use homefront_store::Store;
use homefront_store::volunteers::VettingEvent;
use serde::{Deserialize, Serialize};

use super::{coordinates, parse_state, visible, volunteer_id};
use crate::AppState;
use crate::api::ApiJson;
use crate::api::openapi::{BodyRejection, ErrorShape};
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};

/// Most ids in one bulk move.
pub const MAX_BULK: usize = 1000;

/// `POST /api/v1/volunteers/{id}/vetting` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveRequest {
    /// The state to move to, e.g. `reviewed`, `rejected`, `suspended`.
    pub target_state: String,
    /// Optional note, at most 1000 characters (e.g. the reason for a rejection).
    pub note: Option<String>,
    /// Optional reference to a supporting document, at most 500 characters.
    pub document_ref: Option<String>,
}

fn check_text(field: &str, text: Option<&str>, max: usize) -> ApiResult<()> {
    if text.is_some_and(|t| t.chars().count() > max) {
        return Err(ApiError::invalid(
            field,
            "too_long",
            format!("{field} must have at most {max} characters"),
        ));
    }
    Ok(())
}

fn refused(e: &VettingError) -> ApiError {
    ApiError {
        field: Some("target_state".into()),
        ..ApiError::conflict(e.code(), e.to_string())
    }
}

/// Move a volunteer through vetting to a target state.
///
/// The pipeline: applied → reviewed → interviewed → trained → exam_passed
/// → agreement_signed → insured → active; `rejected`, `suspended` (and
/// back) and `withdrawn` branch off. Skipped steps answer 409
/// `step_skipped`. Coordinators of the volunteer's team move it; the
/// volunteer may only withdraw. Suspending, withdrawing or rejecting also
/// sets the volunteer off duty. Each move appends to the vetting log.
#[utoipa::path(post, path = "/api/v1/volunteers/{id}/vetting", tag = "vetting", operation_id = "move_vetting",
    params(("id" = String, Path, description = "The volunteer's account id, or `me` for the caller")),
    request_body = MoveRequest,
    responses(
        (status = 200, description = "Moved: the log entry written", body = VettingEvent),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: the caller does not manage the volunteer's team (a volunteer may only withdraw); or `csrf_failed`", body = ErrorShape),
        (status = 404, description = "No such volunteer, or neither the caller nor in the caller's area", body = ErrorShape),
        (status = 409, description = "`step_skipped` or `illegal_transition` (field `target_state`)", body = ErrorShape),
        (status = 422, description = "`invalid_state` (field `target_state`) or `too_long` (`note`, 1000 characters; `document_ref`, 500)", body = ErrorShape),
        BodyRejection))]
pub(super) async fn move_one(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<MoveRequest>,
) -> ApiResult<Json<VettingEvent>> {
    let id = volunteer_id(&actor, &id)?;
    let v = visible(&state, &actor, id).await?;
    let target = parse_state("target_state", &req.target_state)?;
    // The volunteer may leave on its own; everything else is a coordinator's.
    let own_withdrawal = v.user_id == actor.user.id && target == VettingState::Withdrawn;
    if !actor.manages(&v.org_path()) && !own_withdrawal {
        return Err(ApiError::forbidden());
    }
    check_text("note", req.note.as_deref(), 1000)?;
    check_text("document_ref", req.document_ref.as_deref(), 500)?;
    let mut tx = state.store.begin_write().await?;
    let moved = Store::move_vetting_tx(
        &mut tx,
        id,
        target,
        Some(actor.user.id),
        state.clock.now(),
        req.note.as_deref(),
        req.document_ref.as_deref(),
    )
    .await?;
    match moved {
        Ok(event) => {
            tx.commit().await?;
            // A suspended volunteer's live streams end.
            crate::live::publish_account(&state, id).await;
            Ok(Json(event))
        }
        Err(e) => Err(refused(&e)),
    }
}

/// A volunteer's vetting log, oldest first.
#[utoipa::path(get, path = "/api/v1/volunteers/{id}/vetting", tag = "vetting", operation_id = "vetting_log",
    params(("id" = String, Path, description = "The volunteer's account id, or `me` for the caller")),
    responses(
        (status = 200, body = Vec<VettingEvent>),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: no role of the caller deals with volunteers", body = ErrorShape),
        (status = 404, description = "No such volunteer, or neither the caller nor in the caller's area", body = ErrorShape)))]
pub(crate) async fn log(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<VettingEvent>>> {
    let id = volunteer_id(&actor, &id)?;
    visible(&state, &actor, id).await?;
    Ok(Json(state.store.vetting_events(id).await?))
}

/// `POST /api/v1/volunteers/vetting` body: move several volunteers to one
/// target state.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkMoveRequest {
    /// Volunteer ids, 1 to 1000.
    pub volunteer_ids: Vec<i64>,
    /// The state to move them to.
    pub target_state: String,
    /// Optional note for every event, at most 1000 characters.
    pub note: Option<String>,
    /// Optional document reference for every event, at most 500 characters.
    pub document_ref: Option<String>,
}

/// The outcome for one id of a bulk move.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BulkResult {
    /// The volunteer id as sent.
    pub volunteer_id: i64,
    /// `moved`, `refused` (the pipeline said no), `not_found` (missing or
    /// outside your area) or `duplicate` (the id was listed before).
    pub outcome: &'static str,
    /// The event written, when moved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<VettingEvent>,
    /// Machine code when not moved (`step_skipped`, `illegal_transition`,
    /// `not_found`, `duplicate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    /// Why not, and what to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The answer of a bulk move.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BulkAnswer {
    /// The target state.
    pub target_state: VettingState,
    /// How many moved.
    pub moved: usize,
    /// How many did not.
    pub not_moved: usize,
    /// One result per id, in request order.
    pub results: Vec<BulkResult>,
}

/// Move up to 1000 volunteers to one target state, reporting each id.
///
/// Not all-or-nothing: every id is checked (scope, then the pipeline) and
/// each valid move is applied, with its own event, in ONE transaction; the
/// answer reports every id's outcome. Always 200 once the request itself
/// is valid.
#[utoipa::path(post, path = "/api/v1/volunteers/vetting", tag = "vetting", operation_id = "bulk_move_vetting",
    request_body = BulkMoveRequest,
    responses(
        (status = 200, description = "Every id's outcome, in request order", body = BulkAnswer),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden` for roles other than coordinator and admin; or `csrf_failed`", body = ErrorShape),
        (status = 422, description = "`invalid_state` (field `target_state`), `invalid_count` (`volunteer_ids`, 1–1000) or `too_long` (`note`, `document_ref`)", body = ErrorShape),
        BodyRejection))]
pub(crate) async fn bulk(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<BulkMoveRequest>,
) -> ApiResult<Json<BulkAnswer>> {
    if !coordinates(&actor) {
        return Err(ApiError::forbidden());
    }
    let target = parse_state("target_state", &req.target_state)?;
    if req.volunteer_ids.is_empty() || req.volunteer_ids.len() > MAX_BULK {
        return Err(ApiError::invalid(
            "volunteer_ids",
            "invalid_count",
            format!("give 1 to {MAX_BULK} volunteer ids"),
        ));
    }
    check_text("note", req.note.as_deref(), 1000)?;
    check_text("document_ref", req.document_ref.as_deref(), 500)?;
    let now = state.clock.now();
    let mut seen = HashSet::new();
    let mut results = Vec::with_capacity(req.volunteer_ids.len());
    let mut tx = state.store.begin_write().await?;
    for &id in &req.volunteer_ids {
        let fail = |outcome, code, message: String| BulkResult {
            volunteer_id: id,
            outcome,
            event: None,
            code: Some(code),
            message: Some(message),
        };
        if !seen.insert(id) {
            results.push(fail(
                "duplicate",
                "duplicate",
                "listed twice; moved at most once".into(),
            ));
            continue;
        }
        let in_scope = Store::volunteer_team_path_tx(&mut tx, id)
            .await?
            .is_some_and(|p| actor.manages(&p));
        if !in_scope {
            results.push(fail(
                "not_found",
                "not_found",
                "no such volunteer in your area".into(),
            ));
            continue;
        }
        let moved = Store::move_vetting_tx(
            &mut tx,
            id,
            target,
            Some(actor.user.id),
            now,
            req.note.as_deref(),
            req.document_ref.as_deref(),
        )
        .await?;
        results.push(match moved {
            Ok(event) => BulkResult {
                volunteer_id: id,
                outcome: "moved",
                event: Some(event),
                code: None,
                message: None,
            },
            Err(e) => fail("refused", e.code(), e.to_string()),
        });
    }
    tx.commit().await?;
    for r in results.iter().filter(|r| r.outcome == "moved") {
        crate::live::publish_account(&state, r.volunteer_id).await;
    }
    let moved = results.iter().filter(|r| r.outcome == "moved").count();
    Ok(Json(BulkAnswer {
        target_state: target,
        moved,
        not_moved: results.len() - moved,
        results,
    }))
}
