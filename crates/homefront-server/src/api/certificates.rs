//! Service-hours certificates (志愿服务证明): a printable page per volunteer
//! and period, and a public verification page.
//!
//! - `GET /api/v1/volunteers/{id}/certificate?from=…&to=…` (the volunteer,
//!   or a coordinator whose subtree holds the volunteer's team): issues (or
//!   reuses, for the same period and figures) a certificate and returns the
//!   printable HTML page.
//! - `GET /certificates/{code}` (anyone): shows whether the code is valid
//!   and, if so, only what the certificate itself states.
//!
//! The code is 256 random bits (base64url), stored in `certificate`;
//! guessing one is hopeless, and a code reveals nothing about any other
//! certificate. Text is HTML-escaped with `html-escape` on the way out.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use homefront_domain::org::OrgPath;
use homefront_store::figures::{Certificate, NewCertificate, ServiceLine};
use homefront_store::volunteers::VolunteerFilter;
use html_escape::encode_text;
use serde::Deserialize;

use crate::AppState;
use crate::api::ApiQuery;
use crate::api::parse_id;
use crate::api::reports::{mask_phone, period};
use crate::auth::{self, Actor};
use crate::error::{ApiError, ApiResult};

/// Routes under `/api/v1` (issue).
pub fn router() -> Router<AppState> {
    Router::new().route("/volunteers/{id}/certificate", get(issue))
}

/// Public routes outside `/api/v1` (verification).
pub fn public_router() -> Router<AppState> {
    Router::new().route("/certificates/{code}", get(verify))
}

/// Query of the issue endpoint.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    /// Period start (date, RFC 3339 or epoch ms).
    #[param(pattern = r"^([0-9]{1,13}|20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8]))$")]
    pub from: String,
    /// Period end (a date includes that day).
    #[param(pattern = r"^([0-9]{1,13}|20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8]))$")]
    pub to: String,
}

/// Where a certificate is verified, relative to the site root.
pub fn verification_path(code: &str) -> String {
    format!("/certificates/{code}")
}

/// Issues (or reuses) the volunteer's service-hours certificate for the
/// period and returns the printable page.
#[utoipa::path(get, path = "/api/v1/volunteers/{id}/certificate", tag = "certificates",
    params(("id" = i64, Path, description = "The volunteer's account id"), PeriodQuery),
    responses((status = 200, description = "The printable certificate page", content_type = "text/html", body = String),
        (status = 401, description = "Not signed in", body = crate::api::openapi::ErrorShape),
        (status = 404, description = "No such volunteer, or not the caller nor in the caller's subtrees", body = crate::api::openapi::ErrorShape),
        (status = 422, description = "Bad period", body = crate::api::openapi::ErrorShape),
        crate::api::openapi::QueryRejection))]
pub async fn issue(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PeriodQuery>,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let volunteer = state
        .store
        .volunteers(&VolunteerFilter {
            user_id: Some(id),
            ..VolunteerFilter::default()
        })
        .await?
        .pop()
        .ok_or_else(ApiError::not_found)?;
    let own = actor.user.id == volunteer.user_id;
    if !own && !actor.manages(&OrgPath::from_stored(volunteer.team_path.clone())) {
        return Err(ApiError::not_found());
    }
    let team = state
        .store
        .org_unit(volunteer.team_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let (from, to) = period(&team, &q.from, &q.to)?;
    let (recorded, backfilled, services) = state
        .store
        .certificate_figures(volunteer.user_id, from, to)
        .await?;
    let services_json = serde_json::to_string(&services).map_err(ApiError::internal)?;
    let parent = match team.parent_id {
        Some(p) => state.store.org_unit(p).await?.map(|u| u.name),
        None => None,
    };
    let organisation = match parent {
        Some(p) => format!("{p} {}", team.name),
        None => team.name.clone(),
    };
    let existing = state
        .store
        .same_certificate(
            volunteer.user_id,
            (from, to),
            (recorded, backfilled),
            &services_json,
        )
        .await?
        .filter(|c| c.organisation == organisation && c.volunteer_name == volunteer.display_name);
    let cert = match existing {
        Some(c) => c,
        None => {
            let code = auth::new_token();
            state
                .store
                .insert_certificate(
                    &NewCertificate {
                        code: &code,
                        volunteer_user_id: volunteer.user_id,
                        period_from: from,
                        period_to: to,
                        volunteer_name: &volunteer.display_name,
                        masked_phone: &mask_phone(&volunteer.phone),
                        organisation: &organisation,
                        recorded_minutes: recorded,
                        backfilled_minutes: backfilled,
                        services: &services_json,
                        issued_by: (!own).then_some(actor.user.id),
                    },
                    state.clock.now().epoch_ms(),
                )
                .await?
        }
    };
    Ok(Html(certificate_page(&cert, &services)).into_response())
}

/// Public check of a certificate code: valid, and the certificate's own
/// facts only.
#[utoipa::path(get, path = "/certificates/{code}", tag = "certificates", security(()),
    params(("code" = String, Path, description = "The verification code printed on the certificate")),
    responses((status = 200, description = "Valid: the certificate's own facts", content_type = "text/html", body = String),
        (status = 404, description = "No certificate has this code: a page, or the API's error shape when the code is not text at all (a control character)",
            content((String = "text/html"), (crate::api::openapi::ErrorShape = "application/json")))))]
pub async fn verify(State(state): State<AppState>, Path(code): Path<String>) -> Response {
    // Codes are base64url: anything else cannot match, so skip the query.
    let valid_shape = !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let found = if valid_shape {
        match state.store.certificate_by_code(&code).await {
            Ok(c) => c,
            Err(e) => return ApiError::from(e).into_response(),
        }
    } else {
        None
    };
    match found {
        Some(c) => Html(verification_page(&c)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Html(page(
                "证书查验 Certificate check",
                "<p class=\"bad\">未找到该证书编号。No certificate has this code.</p>",
            )),
        )
            .into_response(),
    }
}

fn date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| {
            d.with_timezone(&chrono_tz::Asia::Shanghai)
                .format("%Y-%m-%d")
                .to_string()
        })
        .unwrap_or_default()
}

/// The period as printed: first and last day (the end is exclusive).
fn period_text(c: &Certificate) -> String {
    format!("{} 至 {}", date(c.period_from), date(c.period_to - 1))
}

fn hours(minutes: i64) -> String {
    format!("{:.1}", minutes as f64 / 60.0)
}

const STYLE: &str = "body{font-family:'Noto Serif CJK SC','Songti SC',serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{text-align:center;letter-spacing:.3em}
table{border-collapse:collapse;width:100%;margin:1rem 0}
th,td{border:1px solid #999;padding:.4rem .6rem;text-align:left}
.code{font-family:monospace;word-break:break-all}
.ok{color:#176317}.bad{color:#a11}
.noprint{margin:1rem 0}
@media print{@page{size:A4;margin:20mm}body{margin:0;max-width:none}.noprint{display:none}a{color:inherit;text-decoration:none}}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\">\
         <title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        encode_text(title)
    )
}

fn facts(c: &Certificate) -> String {
    format!(
        "<table>\
         <tr><th>姓名 Name</th><td>{}</td></tr>\
         <tr><th>身份标识 ID (masked)</th><td>{}</td></tr>\
         <tr><th>服务组织 Organisation</th><td>{}</td></tr>\
         <tr><th>服务期间 Period</th><td>{}</td></tr>\
         <tr><th>记录时长 Recorded hours</th><td>{}</td></tr>\
         <tr><th>补录时长 Backfilled hours</th><td>{}</td></tr>\
         <tr><th>合计 Total hours</th><td>{}</td></tr>\
         <tr><th>出具日期 Issued</th><td>{}</td></tr>\
         </table>",
        encode_text(&c.volunteer_name),
        encode_text(&c.masked_phone),
        encode_text(&c.organisation),
        encode_text(&period_text(c)),
        hours(c.recorded_minutes),
        hours(c.backfilled_minutes),
        hours(c.recorded_minutes + c.backfilled_minutes),
        date(c.issued_at),
    )
}

/// The printable certificate: facts, services by item and the
/// verification code with its URL.
pub fn certificate_page(c: &Certificate, services: &[ServiceLine]) -> String {
    let mut rows = String::new();
    for s in services {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            encode_text(&s.item),
            s.orders,
            hours(s.minutes)
        ));
    }
    let path = verification_path(&c.code);
    let body = format!(
        "<p class=\"noprint\"><button onclick=\"window.print()\">打印 Print</button></p>\
         <h1>志愿服务证明</h1><p style=\"text-align:center\">Certificate of volunteer service</p>\
         <p>兹证明以下志愿者在服务期间参加志愿服务，服务时长以服务记录为准。</p>{}\
         <h2>服务内容 Services</h2><table><tr><th>服务项目 Service</th><th>服务单数 Orders</th><th>时长(小时) Hours</th></tr>{rows}</table>\
         <p>查验码 Verification code: <span class=\"code\">{}</span><br>\
         查验地址 Verify at: <a class=\"code\" href=\"{}\">{}</a></p>",
        facts(c),
        encode_text(&c.code),
        encode_text(&path),
        encode_text(&path),
    );
    page("志愿服务证明 Certificate of volunteer service", &body)
}

/// The public verification page: valid, and the certificate's own facts.
pub fn verification_page(c: &Certificate) -> String {
    let body = format!(
        "<h1>证书查验</h1><p class=\"ok\">该志愿服务证明真实有效。This certificate is genuine.</p>{}",
        facts(c)
    );
    page("证书查验 Certificate check", &body)
}
