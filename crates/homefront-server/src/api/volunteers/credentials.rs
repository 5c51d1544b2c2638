//! Credentials with validity dates, the expiring-soon list and the
//! eligibility check (`homefront_domain::credentials::is_eligible`, the
//! same function the dispatcher calls).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use homefront_domain::Timestamp;
use homefront_domain::credentials::{
    Credential, CredentialKind, DEFAULT_EXPIRING_WITHIN_DAYS, IneligibleReason, ItemRequirements,
    Qualification, is_eligible,
};
use homefront_store::credentials::{CredentialRecord, ExpiringCredential, NewCredential};
use serde::{Deserialize, Serialize};

use super::{coordinates, managed, visible, volunteer_id};
use crate::AppState;
use crate::api::ApiQuery;
use crate::api::openapi::{BodyRejection, ErrorShape, QueryRejection};
use crate::api::{ApiJson, parse_id};
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};

/// `POST /api/v1/volunteers/{id}/credentials` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddCredential {
    /// `driving_licence`, `teacher`, `counsellor`, `medical_licence`,
    /// `first_aid`, `language`, `training_certificate`, `service_agreement`
    /// or `insurance`.
    pub kind: String,
    /// First valid instant, epoch ms (inclusive).
    pub valid_from: i64,
    /// First instant no longer valid, epoch ms (exclusive); absent = no expiry.
    pub valid_to: Option<i64>,
    /// Insurer; required for, and only for, insurance.
    pub insurer: Option<String>,
    /// Policy number; required for, and only for, insurance.
    pub policy_number: Option<String>,
    /// Reference to the scanned document or archive entry, at most 500 characters.
    pub document_ref: Option<String>,
}

/// A credential with its status at the time of the answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CredentialView {
    /// The stored credential.
    #[serde(flatten)]
    pub record: CredentialRecord,
    /// `valid`, `expired`, `not_yet_valid` or `revoked`, at the answer's now.
    pub status: &'static str,
}

impl CredentialView {
    fn at(record: CredentialRecord, now: Timestamp) -> Self {
        let status = if record.revoked_at.is_some_and(|r| r <= now.epoch_ms()) {
            "revoked"
        } else if record.valid_from > now.epoch_ms() {
            "not_yet_valid"
        } else if record.valid_to.is_some_and(|t| t <= now.epoch_ms()) {
            "expired"
        } else {
            "valid"
        };
        Self { record, status }
    }
}

fn non_empty<'a>(field: &str, v: Option<&'a str>) -> ApiResult<&'a str> {
    match v.map(str::trim) {
        Some(s) if !s.is_empty() && s.chars().count() <= 200 => Ok(s),
        _ => Err(ApiError::invalid(
            field,
            "required",
            format!("insurance needs {field} (1 to 200 characters) as printed on the policy"),
        )),
    }
}

/// Record a credential (licence, certificate, agreement, insurance) with
/// its validity `[valid_from, valid_to)` in epoch ms.
///
/// For coordinators of the volunteer's team. Insurance needs `insurer` and
/// `policy_number`; other kinds may not have them.
#[utoipa::path(post, path = "/api/v1/volunteers/{id}/credentials", tag = "credentials", operation_id = "add_credential",
    params(("id" = String, Path, description = "The volunteer's account id, or `me` for the caller")),
    request_body = AddCredential,
    responses(
        (status = 201, description = "Recorded, with its status now", body = CredentialView),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: the caller sees the volunteer (itself) but does not manage its team, or holds no coordinating role; or `csrf_failed`", body = ErrorShape),
        (status = 404, description = "No such volunteer, or neither the caller nor in the caller's area", body = ErrorShape),
        (status = 422, description = "`invalid_kind` (field `kind`), `invalid_validity` (`valid_to`), `required` or `insurance_only` (`insurer`, `policy_number`), `too_long` (`document_ref`)", body = ErrorShape),
        BodyRejection))]
pub(crate) async fn add(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AddCredential>,
) -> ApiResult<(StatusCode, Json<CredentialView>)> {
    let id = volunteer_id(&actor, &id)?;
    managed(&state, &actor, id).await?;
    let kind = CredentialKind::parse(&req.kind)
        .map_err(|e| ApiError::invalid("kind", "invalid_kind", e.to_string()))?;
    let credential = Credential::new(kind, Timestamp(req.valid_from), req.valid_to.map(Timestamp))
        .map_err(|e| ApiError::invalid("valid_to", e.code(), e.to_string()))?;
    let (insurer, policy) = if kind == CredentialKind::Insurance {
        (
            Some(non_empty("insurer", req.insurer.as_deref())?),
            Some(non_empty("policy_number", req.policy_number.as_deref())?),
        )
    } else {
        for (field, v) in [
            ("insurer", &req.insurer),
            ("policy_number", &req.policy_number),
        ] {
            if v.is_some() {
                return Err(ApiError::invalid(
                    field,
                    "insurance_only",
                    format!("{field} applies to insurance only; leave it out for {kind}"),
                ));
            }
        }
        (None, None)
    };
    if req
        .document_ref
        .as_ref()
        .is_some_and(|d| d.chars().count() > 500)
    {
        return Err(ApiError::invalid(
            "document_ref",
            "too_long",
            "document_ref must have at most 500 characters",
        ));
    }
    let now = state.clock.now();
    let record = state
        .store
        .add_credential(
            &NewCredential {
                volunteer_id: id,
                credential: &credential,
                insurer,
                policy_number: policy,
                document_ref: req.document_ref.as_deref(),
                actor: Some(actor.user.id),
            },
            now,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(CredentialView::at(record, now))))
}

/// A volunteer's credentials, each with its status now (`valid`,
/// `expired`, `not_yet_valid` or `revoked`).
#[utoipa::path(get, path = "/api/v1/volunteers/{id}/credentials", tag = "credentials", operation_id = "list_credentials",
    params(("id" = String, Path, description = "The volunteer's account id, or `me` for the caller")),
    responses(
        (status = 200, body = Vec<CredentialView>),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: no role of the caller deals with volunteers", body = ErrorShape),
        (status = 404, description = "No such volunteer, or neither the caller nor in the caller's area", body = ErrorShape)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<CredentialView>>> {
    let id = volunteer_id(&actor, &id)?;
    visible(&state, &actor, id).await?;
    let now = state.clock.now();
    Ok(Json(
        state
            .store
            .credentials_of(id)
            .await?
            .into_iter()
            .map(|r| CredentialView::at(r, now))
            .collect(),
    ))
}

/// `POST /api/v1/volunteers/{id}/credentials/{credential_id}/revoke` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeCredential {
    /// Why, at most 500 characters.
    pub reason: Option<String>,
}

/// Revoke a credential: its validity ends now. Revoking again keeps the
/// first revocation.
#[utoipa::path(post, path = "/api/v1/volunteers/{id}/credentials/{credential_id}/revoke", tag = "credentials", operation_id = "revoke_credential",
    params(("id" = String, Path, description = "The volunteer's account id, or `me` for the caller"), ("credential_id" = i64, Path, description = "Credential id")),
    request_body = RevokeCredential,
    responses(
        (status = 200, description = "The credential, revoked", body = CredentialView),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: the caller sees the volunteer (itself) but does not manage its team, or holds no coordinating role; or `csrf_failed`", body = ErrorShape),
        (status = 404, description = "No such volunteer or credential, or the volunteer is neither the caller nor in the caller's area", body = ErrorShape),
        (status = 422, description = "`too_long` (field `reason`, 500 characters)", body = ErrorShape),
        BodyRejection))]
pub(super) async fn revoke(
    State(state): State<AppState>,
    actor: Actor,
    Path((id, credential_id)): Path<(String, String)>,
    ApiJson(req): ApiJson<RevokeCredential>,
) -> ApiResult<Json<CredentialView>> {
    let id = volunteer_id(&actor, &id)?;
    let credential_id = parse_id(&credential_id)?;
    managed(&state, &actor, id).await?;
    if req.reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
        return Err(ApiError::invalid(
            "reason",
            "too_long",
            "reason must have at most 500 characters",
        ));
    }
    let now = state.clock.now();
    let record = state
        .store
        .revoke_credential(
            id,
            credential_id,
            Some(actor.user.id),
            req.reason.as_deref(),
            now,
        )
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(CredentialView::at(record, now)))
}

/// Query of `GET /api/v1/volunteers/expiring-credentials`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExpiringQuery {
    /// Look-ahead in days of 24 h, 0 to 366; default 14.
    pub within_days: Option<i64>,
}

/// Credentials of volunteers in the caller's area that are valid now and
/// expire within `within_days` days (renewed ones left out), soonest first.
#[utoipa::path(get, path = "/api/v1/volunteers/expiring-credentials", tag = "credentials", operation_id = "expiring_credentials",
    params(ExpiringQuery),
    responses(
        (status = 200, body = Vec<ExpiringCredential>),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden` for roles other than coordinator and admin", body = ErrorShape),
        (status = 422, description = "`invalid_days` (field `within_days`, 0–366)", body = ErrorShape),
        QueryRejection))]
pub(crate) async fn expiring(
    State(state): State<AppState>,
    actor: Actor,
    ApiQuery(q): ApiQuery<ExpiringQuery>,
) -> ApiResult<Json<Vec<ExpiringCredential>>> {
    if !coordinates(&actor) {
        return Err(ApiError::forbidden());
    }
    let days = q
        .within_days
        .unwrap_or(i64::from(DEFAULT_EXPIRING_WITHIN_DAYS));
    let days = u32::try_from(days)
        .ok()
        .filter(|d| *d <= 366)
        .ok_or_else(|| {
            ApiError::invalid(
                "within_days",
                "invalid_days",
                "within_days must be a whole number of days from 0 to 366",
            )
        })?;
    let scopes = actor.managed_scopes();
    Ok(Json(
        state
            .store
            .expiring_credentials(scopes.as_deref(), state.clock.now(), days)
            .await?,
    ))
}

/// Query of `GET /api/v1/volunteers/{id}/eligibility`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EligibilityQuery {
    /// Qualifications the item needs, comma-separated codes
    /// (`teacher,driving_licence`); empty = none beyond the base credentials.
    pub qualifications: Option<String>,
    /// The instant to check, epoch ms (an order's service start); default now.
    pub at: Option<i64>,
}

/// One reason a volunteer is not eligible.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReasonView {
    /// Machine code, e.g. `insurance_expired`, `qualification_missing`, `not_active`.
    pub code: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
    /// The structured reason (`reason`, `kind`, `valid_to` ...).
    #[serde(flatten)]
    pub detail: IneligibleReason,
}

/// The answer of the eligibility check.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EligibilityView {
    /// The volunteer.
    pub volunteer_id: i64,
    /// The instant checked, epoch ms.
    pub at: i64,
    /// The qualifications asked for.
    pub qualifications: Vec<Qualification>,
    /// Whether the volunteer may serve such an item at `at`.
    pub eligible: bool,
    /// Every failed condition (empty when eligible).
    pub reasons: Vec<ReasonView>,
}

/// Whether the volunteer may serve an item needing some qualifications at
/// an instant, with every failed condition.
///
/// The same check the dispatcher runs: active vetting state, the three
/// base credentials (training certificate, service agreement, insurance)
/// and a credential for each qualification, all valid at `at`.
#[utoipa::path(get, path = "/api/v1/volunteers/{id}/eligibility", tag = "credentials", operation_id = "eligibility",
    params(("id" = String, Path, description = "The volunteer's account id, or `me` for the caller"), EligibilityQuery),
    responses(
        (status = 200, body = EligibilityView),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: no role of the caller deals with volunteers", body = ErrorShape),
        (status = 404, description = "No such volunteer, or neither the caller nor in the caller's area", body = ErrorShape),
        (status = 422, description = "`invalid_qualification` (field `qualifications`)", body = ErrorShape),
        QueryRejection))]
pub(crate) async fn eligibility(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<EligibilityQuery>,
) -> ApiResult<Json<EligibilityView>> {
    let id = volunteer_id(&actor, &id)?;
    visible(&state, &actor, id).await?;
    let mut wanted = Vec::new();
    for code in q.qualifications.as_deref().unwrap_or("").split(',') {
        let code = code.trim();
        if code.is_empty() {
            continue;
        }
        wanted.push(Qualification::parse(code).map_err(|e| {
            ApiError::invalid("qualifications", "invalid_qualification", e.to_string())
        })?);
    }
    let at = q.at.map_or_else(|| state.clock.now(), Timestamp);
    let facts = state
        .store
        .volunteer_eligibility(id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let item = ItemRequirements::new(wanted.iter().copied());
    let reasons = match is_eligible(&facts, &item, at) {
        Ok(()) => Vec::new(),
        Err(e) => e
            .reasons
            .into_iter()
            .map(|r| ReasonView {
                code: r.code(),
                message: r.to_string(),
                detail: r,
            })
            .collect(),
    };
    Ok(Json(EligibilityView {
        volunteer_id: id,
        at: at.epoch_ms(),
        qualifications: wanted,
        eligible: reasons.is_empty(),
        reasons,
    }))
}
