//! Reports: figures for an org unit's subtree and a period, public figures
//! with small-cell suppression, hours per volunteer, and exports.
//!
//! - `GET /api/v1/reports/summary?org_unit=ID&from=…&to=…` (coordinator in
//!   scope, admin): [`Summary`]; the dashboard calls [`summary_for`] too.
//! - `GET /api/v1/reports/public?org_unit=ID&from=…&to=…` (anyone):
//!   [`PublicFigures`], every figure below 5 shown as `<5`.
//! - `GET /api/v1/reports/hours?org_unit=ID&from=…&to=…`: hours per volunteer.
//! - `GET /api/v1/exports/orders?format=csv|xlsx&…` (the filter of
//!   `GET /api/v1/orders`) and `GET /api/v1/exports/hours?format=…&org_unit=…`.
//!
//! `from` and `to` are epoch ms, RFC 3339 instants, or dates
//! (`2020-02-01`) in the unit's time zone; a date `to` includes that day.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{NaiveDate, TimeZone};
use futures::StreamExt;
use homefront_domain::{PhoneNumber, Role};
use homefront_store::Store;
use homefront_store::figures::{Figures, ReportScope};
use homefront_store::org_units::OrgUnit;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::AppState;
use crate::api::ApiQuery;
use crate::api::orders::{OrderQuery, scoped_filter};
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::exports::{self, Format, VolunteerHours};

/// Report and export routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/reports/summary", get(summary))
        .route("/reports/public", get(public))
        .route("/reports/hours", get(hours))
        .route("/exports/orders", get(export_orders))
        .route("/exports/hours", get(export_hours))
}

/// Query of the report endpoints.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// Root of the subtree (org unit id).
    pub org_unit: i64,
    /// Period start: epoch ms, RFC 3339, or a date (start of that day).
    #[param(pattern = r"^([0-9]{1,13}|20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8]))$")]
    pub from: String,
    /// Period end: epoch ms, RFC 3339 (exclusive), or a date (inclusive).
    #[param(pattern = r"^([0-9]{1,13}|20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8]))$")]
    pub to: String,
}

/// A unit as named in a report.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UnitBrief {
    /// Org-unit id.
    pub id: i64,
    /// Name.
    pub name: String,
}

/// `GET /api/v1/reports/summary` answer.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Summary {
    /// Root of the subtree.
    pub org_unit: UnitBrief,
    /// Period start, epoch ms.
    pub from: i64,
    /// Period end (exclusive), epoch ms.
    pub to: i64,
    /// The figures.
    #[serde(flatten)]
    pub figures: Figures,
}

/// Parses a period bound. Dates are local to `tz`; with `end`, a date
/// means the end of that day.
fn parse_bound(field: &str, text: &str, tz: chrono_tz::Tz, end: bool) -> ApiResult<i64> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(dt.timestamp_millis());
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let day = if end { d.succ_opt().unwrap_or(d) } else { d };
        if let Some(dt) = day
            .and_hms_opt(0, 0, 0)
            .and_then(|n| tz.from_local_datetime(&n).earliest())
        {
            return Ok(dt.timestamp_millis());
        }
    }
    Err(ApiError::invalid(
        field,
        "invalid_time",
        format!(
            "\"{text}\" is not a time; use a date (2020-02-01), an RFC 3339 instant or epoch ms"
        ),
    ))
}

/// The period `[from, to)` of a query, in `unit`'s time zone.
///
/// # Errors
/// 422 on an unparsable bound or `to <= from`.
pub fn period(unit: &OrgUnit, from: &str, to: &str) -> ApiResult<(i64, i64)> {
    let tz = unit.time_zone;
    let from = parse_bound("from", from, tz, false)?;
    let to = parse_bound("to", to, tz, true)?;
    if to <= from {
        return Err(ApiError::invalid(
            "to",
            "period_order",
            "the period must end after it starts",
        ));
    }
    Ok((from, to))
}

/// The unit of `q` if the actor manages it: 403 for roles that see no
/// reports, 404 for units outside the actor's subtrees.
async fn managed_unit(state: &AppState, actor: &Actor, org_unit: i64) -> ApiResult<OrgUnit> {
    if !actor.is_admin() && !actor.has(Role::Coordinator) {
        return Err(ApiError::forbidden());
    }
    let unit = state
        .store
        .org_unit(org_unit)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if !actor.manages(&unit.org_path()) {
        return Err(ApiError::not_found());
    }
    Ok(unit)
}

/// The figures for `q` as `actor` may see them: the code behind
/// `GET /api/v1/reports/summary` and the dashboard.
///
/// # Errors
/// 403/404 as [`managed_unit`]; 422 for a bad period; database errors.
pub async fn summary_for(state: &AppState, actor: &Actor, q: &ReportQuery) -> ApiResult<Summary> {
    let unit = managed_unit(state, actor, q.org_unit).await?;
    let (from, to) = period(&unit, &q.from, &q.to)?;
    let scope = ReportScope {
        path: unit.path.clone(),
        from_ms: from,
        to_ms: to,
    };
    let figures = state.store.report_figures(&scope).await?;
    Ok(Summary {
        org_unit: UnitBrief {
            id: unit.id,
            name: unit.name,
        },
        from,
        to,
        figures,
    })
}

/// Figures for an org unit's subtree and a period: orders, times to
/// offer and accept, rates, escalations, volunteers, hours and pairings.
#[utoipa::path(get, path = "/api/v1/reports/summary", tag = "reports", params(ReportQuery),
    responses((status = 200, body = Summary),
        (status = 401, description = "Not signed in", body = crate::api::openapi::ErrorShape),
        (status = 403, description = "The role sees no reports", body = crate::api::openapi::ErrorShape),
        (status = 404, description = "No such unit in the caller's subtrees", body = crate::api::openapi::ErrorShape),
        (status = 422, description = "Bad period or format", body = crate::api::openapi::ErrorShape),
        crate::api::openapi::QueryRejection))]
pub async fn summary(
    State(state): State<AppState>,
    actor: Actor,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> ApiResult<Json<Summary>> {
    Ok(Json(summary_for(&state, &actor, &q).await?))
}

/// Smallest figure shown as is; smaller ones are shown as `<5` so that no
/// household or volunteer can be singled out (small-cell suppression, as
/// in official statistics disclosure control).
pub const SUPPRESS_BELOW: i64 = 5;

/// `n` as shown publicly: `"<5"` below [`SUPPRESS_BELOW`], else the number.
pub fn suppress(n: i64) -> String {
    if n < SUPPRESS_BELOW {
        format!("<{SUPPRESS_BELOW}")
    } else {
        n.to_string()
    }
}

/// `GET /api/v1/reports/public` answer: totals only, no breakdown.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PublicFigures {
    /// Unit name.
    pub org_unit: String,
    /// Period start, epoch ms.
    pub from: i64,
    /// Period end (exclusive), epoch ms.
    pub to: i64,
    /// Volunteers who served (net hours above zero in the period).
    pub volunteers: String,
    /// Orders completed in the period.
    pub orders_completed: String,
    /// Whole service hours in the period (recorded and backfilled).
    pub service_hours: String,
    /// The sentence for a press release, in Chinese.
    pub text_zh: String,
    /// The same in English.
    pub text_en: String,
}

/// Public totals (volunteers who served, orders completed, service
/// hours) with every figure below 5 shown as `<5`; no sign-in needed.
#[utoipa::path(get, path = "/api/v1/reports/public", tag = "reports", params(ReportQuery),
    security(()),
    responses((status = 200, description = "Totals, figures below 5 shown as `<5`", body = PublicFigures),
        (status = 404, description = "No such unit", body = crate::api::openapi::ErrorShape),
        (status = 422, description = "Bad period", body = crate::api::openapi::ErrorShape),
        crate::api::openapi::QueryRejection))]
pub async fn public(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> ApiResult<Json<PublicFigures>> {
    let unit = state
        .store
        .org_unit(q.org_unit)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let (from, to) = period(&unit, &q.from, &q.to)?;
    let totals = state
        .store
        .public_totals(&ReportScope {
            path: unit.path.clone(),
            from_ms: from,
            to_ms: to,
        })
        .await?;
    let volunteers = suppress(totals.volunteers);
    let orders = suppress(totals.orders_completed);
    let hours = suppress(totals.minutes.max(0) / 60);
    Ok(Json(PublicFigures {
        text_zh: format!(
            "{}：{volunteers}名志愿者，完成{orders}单服务，服务时长{hours}小时",
            unit.name
        ),
        text_en: format!(
            "{}: {volunteers} volunteers, {orders} orders completed, {hours} hours of service",
            unit.name
        ),
        org_unit: unit.name,
        from,
        to,
        volunteers,
        orders_completed: orders,
        service_hours: hours,
    }))
}

/// Hours per volunteer of teams in `scope`, with masked phones and current
/// team names: the rows of `GET /api/v1/reports/hours` and of the export.
///
/// # Errors
/// Database errors.
pub async fn volunteer_hours(
    store: &Store,
    scope: &ReportScope,
) -> homefront_store::Result<Vec<VolunteerHours>> {
    let lines = store.volunteer_hours(scope).await?;
    let ids: Vec<i64> = lines
        .iter()
        .map(|l| l.key.parse().unwrap_or_default())
        .collect();
    // Phones and teams in two reads, not one or two per line: volunteers
    // with a profile, then the accounts of any without one.
    let mut found: HashMap<i64, (String, String)> = store
        .volunteers_by_ids(&ids)
        .await?
        .into_iter()
        .map(|v| (v.user_id, (v.phone, v.team_name)))
        .collect();
    let missing: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|id| !found.contains_key(id))
        .collect();
    if !missing.is_empty() {
        for u in store.users_by_ids(&missing).await? {
            found.insert(u.id, (u.phone, String::new()));
        }
    }
    let mut out = Vec::with_capacity(lines.len());
    for (l, id) in lines.into_iter().zip(ids) {
        let (phone, team) = found.get(&id).cloned().unwrap_or_default();
        out.push(VolunteerHours {
            volunteer_user_id: id,
            name: l.name,
            masked_phone: mask_phone(&phone),
            team,
            recorded_minutes: l.recorded_minutes,
            backfilled_minutes: l.backfilled_minutes,
            orders: l.orders,
        });
    }
    Ok(out)
}

/// The stored (E.164) phone masked as [`PhoneNumber::masked`]; anything
/// unparsable is hidden entirely.
pub fn mask_phone(e164: &str) -> String {
    PhoneNumber::parse(e164)
        .map(|p| p.masked())
        .unwrap_or_else(|_| "***".to_string())
}

/// Service hours per volunteer of teams in the subtree (phones masked).
#[utoipa::path(get, path = "/api/v1/reports/hours", tag = "reports", params(ReportQuery),
    responses((status = 200, body = Vec<VolunteerHours>),
        (status = 401, description = "Not signed in", body = crate::api::openapi::ErrorShape),
        (status = 403, description = "The role sees no reports", body = crate::api::openapi::ErrorShape),
        (status = 404, description = "No such unit in the caller's subtrees", body = crate::api::openapi::ErrorShape),
        (status = 422, description = "Bad period or format", body = crate::api::openapi::ErrorShape),
        crate::api::openapi::QueryRejection))]
pub async fn hours(
    State(state): State<AppState>,
    actor: Actor,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> ApiResult<Json<Vec<VolunteerHours>>> {
    let unit = managed_unit(&state, &actor, q.org_unit).await?;
    let (from, to) = period(&unit, &q.from, &q.to)?;
    let scope = ReportScope {
        path: unit.path,
        from_ms: from,
        to_ms: to,
    };
    Ok(Json(volunteer_hours(&state.store, &scope).await?))
}

/// The `format` query parameter of exports.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FormatQuery {
    /// `csv` or `xlsx`.
    #[param(pattern = "^(csv|xlsx)$")]
    pub format: String,
}

fn format_of(q: &FormatQuery) -> ApiResult<Format> {
    Format::parse(&q.format)
        .ok_or_else(|| ApiError::invalid("format", "invalid_format", "format must be csv or xlsx"))
}

fn file_response(body: Body, format: Format, stem: &str, rows: i64) -> Response {
    let disposition = format!("attachment; filename=\"{stem}.{}\"", format.extension());
    (
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (header::CONTENT_DISPOSITION, disposition),
            (
                header::HeaderName::from_static("x-row-count"),
                rows.to_string(),
            ),
        ],
        body,
    )
        .into_response()
}

/// The orders export for `actor`: every order `GET /api/v1/orders` would
/// list with the same query, over all its pages (the same scope and
/// filter; a `cursor` starts after that page, an explicit `limit` keeps the
/// newest that many), summaries only. Returns the body, streamed from one
/// database snapshot as it is written, and its row count.
///
/// # Errors
/// As the list (422 for a `limit` below 1); database errors. A failure
/// while streaming breaks the download instead of ending it early.
pub async fn orders_export(
    state: &AppState,
    actor: &Actor,
    q: &OrderQuery,
    format: Format,
) -> ApiResult<(Body, i64)> {
    let mut filter = scoped_filter(state, actor, q).await?;
    if let Some(limit) = q.limit {
        if limit < 1 {
            return Err(ApiError::invalid(
                "limit",
                "invalid_limit",
                "limit must be at least 1; leave it out to export every matching order",
            ));
        }
        filter.limit = Some(limit);
    }
    let mut snapshot = state.store.order_snapshot(&filter).await?;
    let count = snapshot.count;
    let (tx, rx) = mpsc::channel::<exports::RowResult>(256);
    tokio::spawn(async move {
        let mut rows = snapshot.rows();
        while let Some(row) = rows.next().await {
            let row = row
                .map(|o| exports::order_cells(&o))
                .map_err(|e| e.to_string());
            let stop = row.is_err();
            if tx.send(row).await.is_err() || stop {
                break;
            }
        }
    });
    Ok((exports::body(format, exports::ORDERS, rx), count))
}

/// Every order of `GET /api/v1/orders` with the same query (all pages, not
/// one), as a CSV or xlsx file (list summaries: no address, phone or notes).
///
/// The file is streamed as it is written; `X-Row-Count` gives its rows,
/// counted from the same database snapshot the rows are read from.
#[utoipa::path(get, path = "/api/v1/exports/orders", tag = "exports",
    params(FormatQuery, crate::api::orders::OrderQuery),
    responses((status = 200, description = "The file (`X-Row-Count` gives its rows)",
            content((crate::api::openapi::FileBytes = "text/csv"), (crate::api::openapi::FileBytes = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
        (status = 401, description = "Not signed in", body = crate::api::openapi::ErrorShape),
        (status = 403, description = "The role sees no reports", body = crate::api::openapi::ErrorShape),
        (status = 404, description = "No such unit in the caller's subtrees", body = crate::api::openapi::ErrorShape),
        (status = 422, description = "Bad period or format", body = crate::api::openapi::ErrorShape),
        crate::api::openapi::QueryRejection))]
pub async fn export_orders(
    State(state): State<AppState>,
    actor: Actor,
    ApiQuery(f): ApiQuery<FormatQuery>,
    ApiQuery(q): ApiQuery<OrderQuery>,
) -> ApiResult<Response> {
    let format = format_of(&f)?;
    let (body, rows) = orders_export(&state, &actor, &q, format).await?;
    Ok(file_response(body, format, "orders", rows))
}

/// Hours per volunteer (as `GET /api/v1/reports/hours`) as a CSV or xlsx file.
#[utoipa::path(get, path = "/api/v1/exports/hours", tag = "exports",
    params(FormatQuery, ReportQuery),
    responses((status = 200, description = "The file (`X-Row-Count` gives its rows)",
            content((crate::api::openapi::FileBytes = "text/csv"), (crate::api::openapi::FileBytes = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
        (status = 401, description = "Not signed in", body = crate::api::openapi::ErrorShape),
        (status = 403, description = "The role sees no reports", body = crate::api::openapi::ErrorShape),
        (status = 404, description = "No such unit in the caller's subtrees", body = crate::api::openapi::ErrorShape),
        (status = 422, description = "Bad period or format", body = crate::api::openapi::ErrorShape),
        crate::api::openapi::QueryRejection))]
pub async fn export_hours(
    State(state): State<AppState>,
    actor: Actor,
    ApiQuery(f): ApiQuery<FormatQuery>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> ApiResult<Response> {
    let format = format_of(&f)?;
    let unit = managed_unit(&state, &actor, q.org_unit).await?;
    let (from, to) = period(&unit, &q.from, &q.to)?;
    let scope = ReportScope {
        path: unit.path,
        from_ms: from,
        to_ms: to,
    };
    let rows = volunteer_hours(&state.store, &scope).await?;
    let count = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    let (tx, rx) = mpsc::channel::<exports::RowResult>(256);
    tokio::spawn(async move {
        for r in &rows {
            if tx.send(Ok(exports::hours_cells(r))).await.is_err() {
                break;
            }
        }
    });
    Ok(file_response(
        exports::body(format, exports::HOURS, rx),
        format,
        "hours",
        count,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_cells_are_suppressed() {
        assert_eq!(suppress(0), "<5");
        assert_eq!(suppress(4), "<5");
        assert_eq!(suppress(5), "5");
        assert_eq!(suppress(130), "130");
    }

    #[test]
    fn date_bounds_cover_whole_local_days() {
        let tz = chrono_tz::Asia::Shanghai;
        // 2020-02-01T00:00+08:00 and 2020-03-01T00:00+08:00.
        assert_eq!(
            parse_bound("from", "2020-02-01", tz, false).unwrap(),
            1_580_486_400_000
        );
        assert_eq!(
            parse_bound("to", "2020-02-29", tz, true).unwrap(),
            1_582_992_000_000
        );
        assert_eq!(parse_bound("to", "1000", tz, true).unwrap(), 1000);
        assert!(parse_bound("to", "soon", tz, true).is_err());
    }
}
