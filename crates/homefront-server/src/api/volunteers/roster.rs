//! Roster files over HTTP: `POST /volunteers/import`, `GET
//! /volunteers/import/template`, `GET /volunteers/export`. The work is in
//! [`crate::roster`], shared with the command line.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use homefront_store::roster::TeamRef;
use homefront_store::volunteers::VolunteerFilter;
use serde::Deserialize;

use super::{coordinates, managed_team, parse_state};
use crate::AppState;
use crate::api::ApiQuery;
use crate::api::openapi::{ErrorShape, FileBytes, QueryRejection};
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::roster::{self, Format, ImportOptions, ImportReport, RosterError};

/// Largest accepted upload, bytes (10 MiB: tens of thousands of rows).
pub const MAX_UPLOAD_BYTES: usize = 10 * 1024 * 1024;

/// Query of `POST /api/v1/volunteers/import`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// Team (id) for rows whose team cell is empty or whose file has no team column.
    pub team_id: Option<i64>,
    /// `true`: import nothing when any row is rejected.
    #[serde(default)]
    pub all_or_nothing: bool,
    /// `true`: check only, write nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// `xlsx` or `csv`, when the content type does not say.
    #[param(pattern = "^(xlsx|csv)$")]
    pub format: Option<String>,
}

fn format_of(headers: &HeaderMap, query: Option<&str>, body: &[u8]) -> ApiResult<Format> {
    if let Some(f) = query {
        return Format::parse(f).ok_or_else(|| {
            ApiError::invalid("format", "invalid_format", "format must be xlsx or csv")
        });
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    Ok(if ct.contains("spreadsheetml") {
        Format::Xlsx
    } else if ct.starts_with("text/csv") {
        Format::Csv
    } else {
        Format::sniff(body)
    })
}

fn roster_error(e: RosterError) -> ApiError {
    match e {
        RosterError::Store(s) => s.into(),
        RosterError::Write(e) => ApiError::internal(e),
        RosterError::WorkbookTooLarge => ApiError {
            field: Some("file".into()),
            ..ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "workbook_too_large",
                RosterError::WorkbookTooLarge.to_string(),
            )
        },
        other => ApiError::invalid("file", other.code(), other.to_string()),
    }
}

/// Import a volunteer roster (xlsx or CSV) sent as the raw request body.
///
/// The format comes from `?format=`, else `Content-Type` (`text/csv` or
/// the xlsx MIME type), else the file's signature. CSV may be UTF-8 or
/// GB18030. Answers 200 with a report naming every row (created, updated,
/// unchanged or rejected with its errors); 422 when the file as a whole is
/// unreadable (field `file`). At most 10 MiB. Coordinators (their area's
/// teams) and admins.
#[utoipa::path(post, path = "/api/v1/volunteers/import", tag = "roster", operation_id = "import_roster",
    params(ImportQuery),
    request_body(description = "The roster file, as the template lays it out", content((FileBytes = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (FileBytes = "text/csv"))),
    responses(
        (status = 200, description = "Every row's outcome (`committed` says whether anything was written)", body = ImportReport),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden` for roles other than coordinator and admin; or `csrf_failed`", body = ErrorShape),
        (status = 413, description = "The file is larger than 10 MiB (plain text from axum), or `workbook_too_large` (field `file`): an xlsx that unpacks to more than 32 MiB or has more than 1,000 parts", content_type = "text/plain", body = String),
        (status = 422, description = "Field `file`: `empty_file`, `unreadable_workbook`, `unknown_encoding` (CSV neither UTF-8 nor GB18030), `malformed_csv`, `unknown_column`, `duplicate_column`, `missing_column`, `too_many_rows` or `cell_too_long` (a cell over 1,000 characters); also `invalid_format` (`format`), `unknown_team` or `wrong_org_kind` (`team_id`)", body = ErrorShape),
        QueryRejection))]
pub(crate) async fn import(
    State(state): State<AppState>,
    actor: Actor,
    ApiQuery(q): ApiQuery<ImportQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<ImportReport>> {
    if !coordinates(&actor) {
        return Err(ApiError::forbidden());
    }
    if body.is_empty() {
        return Err(ApiError::invalid(
            "file",
            "empty_file",
            "send the roster file as the request body",
        ));
    }
    let format = format_of(&headers, q.format.as_deref(), &body)?;
    if let Some(team) = q.team_id {
        managed_team(&state, &actor, team).await?;
    }
    let scopes = actor.managed_scopes();
    let options = ImportOptions {
        default_team: q.team_id.map(TeamRef::Id),
        all_or_nothing: q.all_or_nothing,
        dry_run: q.dry_run,
        scopes: scopes.as_deref(),
        actor: Some(actor.user.id),
    };
    let report = roster::import(
        &state.store,
        &body,
        format,
        &options,
        state.clock.now(),
        |_, _| {},
    )
    .await
    .map_err(roster_error)?;
    Ok(Json(report))
}

/// Query of the template and export downloads.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DownloadQuery {
    /// `xlsx` (default) or `csv`.
    #[param(pattern = "^(xlsx|csv)$")]
    pub format: Option<String>,
    /// Export only this team.
    pub team_id: Option<i64>,
    /// Export only this vetting state.
    pub state: Option<String>,
}

fn download_format(q: &DownloadQuery) -> ApiResult<Format> {
    match q.format.as_deref() {
        None => Ok(Format::Xlsx),
        Some(f) => Format::parse(f).ok_or_else(|| {
            ApiError::invalid("format", "invalid_format", "format must be xlsx or csv")
        }),
    }
}

fn attachment(bytes: Vec<u8>, format: Format, stem: &str) -> Response {
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{stem}.{}\"",
        format.extension()
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// The empty roster template to fill in (header row; xlsx adds a `说明`
/// help sheet). Coordinators and admins.
#[utoipa::path(get, path = "/api/v1/volunteers/import/template", tag = "roster", operation_id = "roster_template",
    params(DownloadQuery),
    responses(
        (status = 200, description = "The file, as an attachment (`xlsx` unless `format=csv`)", content((FileBytes = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (FileBytes = "text/csv"))),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden` for roles other than coordinator and admin", body = ErrorShape),
        (status = 422, description = "`invalid_format` (field `format`)", body = ErrorShape),
        QueryRejection))]
pub(super) async fn template(
    actor: Actor,
    ApiQuery(q): ApiQuery<DownloadQuery>,
) -> ApiResult<Response> {
    if !coordinates(&actor) {
        return Err(ApiError::forbidden());
    }
    let format = download_format(&q)?;
    // Writing a workbook is CPU work: off the async runtime.
    let bytes = tokio::task::spawn_blocking(move || roster::template(format))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(attachment(bytes, format, "volunteer-roster-template"))
}

/// The roster of the caller's area (optionally one team or vetting state)
/// as a file.
///
/// The template's columns plus read-only ones; re-importing it changes
/// nothing. Coordinators and admins.
#[utoipa::path(get, path = "/api/v1/volunteers/export", tag = "roster", operation_id = "export_roster",
    params(DownloadQuery),
    responses(
        (status = 200, description = "The file, as an attachment (`xlsx` unless `format=csv`)", content((FileBytes = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (FileBytes = "text/csv"))),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden` for roles other than coordinator and admin", body = ErrorShape),
        (status = 422, description = "`invalid_format` (field `format`) or `invalid_state` (`state`)", body = ErrorShape),
        QueryRejection))]
pub(super) async fn export(
    State(state): State<AppState>,
    actor: Actor,
    ApiQuery(q): ApiQuery<DownloadQuery>,
) -> ApiResult<Response> {
    if !coordinates(&actor) {
        return Err(ApiError::forbidden());
    }
    let format = download_format(&q)?;
    let vetting = q
        .state
        .as_deref()
        .map(|s| parse_state("state", s))
        .transpose()?;
    let scopes = actor.managed_scopes();
    let filter = VolunteerFilter {
        scopes: scopes.as_deref(),
        state: vetting,
        team_id: q.team_id,
        ..VolunteerFilter::default()
    };
    let (bytes, _) = roster::export_roster(&state.store, &filter, format, state.clock.now())
        .await
        .map_err(roster_error)?;
    Ok(attachment(bytes, format, "volunteer-roster"))
}
