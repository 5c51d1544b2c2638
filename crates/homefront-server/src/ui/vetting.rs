//! Coordinator pages for people: the vetting board (pipeline columns with
//! bulk moves, expiring credentials), the roster import with its per-row
//! report. Every action goes through the JSON
//! API's handler, so scope and pipeline rules are the API's.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use homefront_domain::vetting::VettingState;
use homefront_store::roster::RowOutcome;

use super::i18n::{Lang, Tr};
use super::{Layout, Localize, PageError, PageResult, Posted, Viewer, local_time, see_other};
use crate::AppState;
use crate::api::ApiJson;
use crate::api::volunteers::vetting::BulkMoveRequest;
use crate::auth::{self, Actor};
use crate::error::ApiError;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/board/volunteers", get(board).post(bulk_move))
        .route(
            "/board/import",
            get(import_page)
                .post(import)
                .layer(axum::extract::DefaultBodyLimit::max(
                    crate::api::volunteers::roster::MAX_UPLOAD_BYTES + 64 * 1024,
                )),
        )
        .route("/board/volunteers/{id}", get(volunteer))
        .route("/board/volunteers/{id}/credentials", post(add_credential))
}

/// The pipeline's columns, in order; terminal and barred states follow.
const COLUMNS: [VettingState; 11] = [
    VettingState::Applied,
    VettingState::Reviewed,
    VettingState::Interviewed,
    VettingState::Trained,
    VettingState::ExamPassed,
    VettingState::AgreementSigned,
    VettingState::Insured,
    VettingState::Active,
    VettingState::Suspended,
    VettingState::Rejected,
    VettingState::Withdrawn,
];

/// Days ahead that the expiring-credentials list looks.
const EXPIRING_DAYS: i64 = 30;

/// Volunteers listed per page of the vetting board.
pub const VETTING_PAGE: i64 = 50;

/// Most results of a bulk move listed by name (the count says the rest).
const RESULTS_SHOWN: usize = 100;

struct Person {
    id: i64,
    name: String,
    phone: String,
    team: String,
    state: String,
    on_duty: bool,
}

/// A pipeline stage with how many of the filtered volunteers are in it.
struct StageCount {
    state: &'static str,
    count: i64,
    /// The board filtered to this stage.
    href: String,
    current: bool,
}

struct Expiring {
    name: String,
    kind: String,
    valid_to: String,
}

struct MoveResult {
    name: String,
    moved: bool,
    message: String,
}

/// The board's filter, from the query string (and echoed by the move form).
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub(crate) struct VetQuery {
    /// Name or phone text.
    #[serde(default)]
    q: String,
    /// Team id ("" = all teams).
    #[serde(default)]
    team: String,
    /// Vetting state ("" = every state).
    #[serde(default)]
    state: String,
    /// Page number, from 1.
    #[serde(default)]
    page: Option<i64>,
}

impl VetQuery {
    fn team_id(&self) -> Option<i64> {
        self.team.trim().parse().ok()
    }

    fn vetting_state(&self) -> Option<VettingState> {
        VettingState::parse(self.state.trim()).ok()
    }

    fn page(&self) -> i64 {
        self.page.unwrap_or(1).max(1)
    }

    /// The query string for this filter at `page` (and another `state`).
    fn href(&self, state: Option<&str>, page: i64) -> String {
        format!(
            "/board/volunteers?q={}&team={}&state={}&page={page}",
            super::url_encode(self.q.trim()),
            super::url_encode(self.team.trim()),
            super::url_encode(state.unwrap_or(self.state.trim())),
        )
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "vetting.html")]
struct VettingPage {
    t: Tr,
    l: Layout,
    f: VetQuery,
    stages: Vec<StageCount>,
    /// Volunteers matching the filter (all stages when none is chosen).
    total: i64,
    people: Vec<Person>,
    first: i64,
    last: i64,
    prev: Option<String>,
    next: Option<String>,
    teams: Vec<(i64, String)>,
    targets: Vec<&'static str>,
    expiring: Vec<Expiring>,
    results: Vec<MoveResult>,
    results_more: usize,
    summary: Option<String>,
    error: Option<String>,
}

impl VettingPage {
    /// "1–50 of 5,000" in the page's language.
    fn showing(&self) -> String {
        self.t.f(
            "vet.showing",
            &[
                ("first", &self.first.to_string()),
                ("last", &self.last.to_string()),
                ("total", &self.total.to_string()),
            ],
        )
    }
}

/// The store filter for `f` in `actor`'s area (`scopes` from
/// [`Actor::managed_scopes`]).
fn store_filter<'a>(
    f: &'a VetQuery,
    scopes: Option<&'a [homefront_domain::org::OrgPath]>,
) -> homefront_store::volunteers::VolunteerFilter<'a> {
    homefront_store::volunteers::VolunteerFilter {
        scopes,
        state: f.vetting_state(),
        team_id: f.team_id(),
        search: Some(f.q.as_str()),
        ..Default::default()
    }
}

async fn vetting_page(
    state: &AppState,
    actor: &Actor,
    l: Layout,
    f: VetQuery,
    results: (Vec<MoveResult>, usize),
    summary: Option<String>,
    error: Option<String>,
) -> PageResult<VettingPage> {
    let t = l.t;
    super::coordinator_only(actor, t)?;
    let tz = super::viewer_time_zone(state, actor).await;
    let scopes = actor.managed_scopes();
    let filter = store_filter(&f, scopes.as_deref());
    let counts = state
        .store
        .volunteer_counts_by_state(&filter)
        .await
        .page(t)?;
    let count_of = |s: &str| counts.iter().find(|(c, _)| c == s).map_or(0, |(_, n)| *n);
    let total = match f.vetting_state() {
        Some(s) => count_of(s.as_str()),
        None => counts.iter().map(|(_, n)| n).sum(),
    };
    let page = f.page();
    let rows = state
        .store
        .volunteers(&homefront_store::volunteers::VolunteerFilter {
            limit: Some(VETTING_PAGE),
            offset: (page - 1) * VETTING_PAGE,
            ..filter.clone()
        })
        .await
        .page(t)?;
    let first = (page - 1) * VETTING_PAGE + 1;
    let last = first - 1 + i64::try_from(rows.len()).unwrap_or(0);
    let people = rows
        .into_iter()
        .map(|v| Person {
            id: v.user_id,
            name: v.display_name.clone(),
            phone: super::phone_text(&v.phone),
            team: v.team_name.clone(),
            state: v.vetting_state.to_string(),
            on_duty: v.on_duty,
        })
        .collect();
    let stages = COLUMNS
        .iter()
        .map(|s| StageCount {
            state: s.as_str(),
            count: count_of(s.as_str()),
            href: f.href(Some(s.as_str()), 1),
            current: f.vetting_state() == Some(*s),
        })
        .collect();
    let expiring = crate::api::volunteers::credentials::expiring(
        State(state.clone()),
        actor.clone(),
        crate::api::ApiQuery(crate::api::volunteers::credentials::ExpiringQuery {
            within_days: Some(EXPIRING_DAYS),
        }),
    )
    .await
    .page(t)?
    .0
    .into_iter()
    .map(|e| Expiring {
        name: e.display_name,
        kind: e.credential.kind.to_string(),
        valid_to: e
            .credential
            .valid_to
            .map(|ms| local_time(ms, tz))
            .unwrap_or_default(),
    })
    .collect();
    Ok(VettingPage {
        t,
        l,
        stages,
        total,
        people,
        first,
        last,
        prev: (page > 1).then(|| f.href(None, page - 1)),
        next: (last < total).then(|| f.href(None, page + 1)),
        teams: teams(state, actor).await.page(t)?,
        targets: COLUMNS.iter().map(|s| s.as_str()).collect(),
        expiring,
        results: results.0,
        results_more: results.1,
        summary,
        error,
        f,
    })
}

async fn board(
    State(state): State<AppState>,
    v: Viewer,
    axum::extract::Query(f): axum::extract::Query<VetQuery>,
) -> PageResult<VettingPage> {
    vetting_page(&state, &v.actor, v.l, f, (Vec::new(), 0), None, None).await
}

/// The bulk-move form: repeated `volunteer` fields (the ticked people), or
/// `all_matching` = 1 with the board's filter (`q`, `team`, `state`) for
/// every volunteer that matches it on every page; `target_state`, `note`.
async fn bulk_move(State(state): State<AppState>, p: Posted<Vec<(String, String)>>) -> PageResult {
    let t = p.t;
    super::coordinator_only(&p.actor, t)?;
    let mut ids = Vec::new();
    let (mut target, mut note) = (String::new(), None);
    let mut f = VetQuery::default();
    let mut all_matching = false;
    for (k, v) in &p.form {
        match k.as_str() {
            "volunteer" => ids.push(crate::api::parse_id(v).page(t)?),
            "target_state" => target.clone_from(v),
            "note" if !v.trim().is_empty() => note = Some(v.trim().to_string()),
            "all_matching" => all_matching = v == "1",
            "q" => f.q.clone_from(v),
            "team" => f.team.clone_from(v),
            "state" => f.state.clone_from(v),
            _ => {}
        }
    }
    let layout = Layout::new(t, &f.href(None, 1), Some(&p.actor));
    if all_matching {
        let scopes = p.actor.managed_scopes();
        ids = state
            .store
            .volunteer_ids(&store_filter(&f, scopes.as_deref()))
            .await
            .page(t)?;
    }
    if ids.is_empty() {
        let page = vetting_page(
            &state,
            &p.actor,
            layout,
            f,
            (Vec::new(), 0),
            None,
            Some(t.t("vet.pick_someone").to_string()),
        )
        .await?;
        return Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    // The API moves at most MAX_BULK at a time: "all that match" goes in
    // batches, each person checked and logged as in a single move.
    let mut moved = 0usize;
    let mut outcomes = Vec::with_capacity(ids.len());
    let mut moved_to = String::new();
    for chunk in ids.chunks(crate::api::volunteers::vetting::MAX_BULK) {
        let answer = crate::api::volunteers::vetting::bulk(
            State(state.clone()),
            p.actor.clone(),
            ApiJson(BulkMoveRequest {
                volunteer_ids: chunk.to_vec(),
                target_state: target.clone(),
                note: note.clone(),
                document_ref: None,
            }),
        )
        .await;
        let axum::Json(answer) = match answer {
            Ok(a) => a,
            Err(err) if err.status.is_client_error() => {
                let page = vetting_page(
                    &state,
                    &p.actor,
                    layout,
                    f,
                    (Vec::new(), 0),
                    None,
                    Some(super::error_message(t, &err)),
                )
                .await?;
                return Ok((err.status, page).into_response());
            }
            Err(err) => return Err(err).page(t),
        };
        moved += answer.moved;
        moved_to = answer.target_state.as_str().to_string();
        outcomes.extend(answer.results);
    }
    // Name the people whose move failed (and everyone, for a short list).
    let few = outcomes.len() <= 20;
    let listed: Vec<_> = outcomes
        .iter()
        .filter(|r| few || r.outcome != "moved")
        .collect();
    let more = listed.len().saturating_sub(RESULTS_SHOWN);
    let mut results = Vec::new();
    for r in listed.into_iter().take(RESULTS_SHOWN) {
        let name = state
            .store
            .user(r.volunteer_id)
            .await
            .page(t)?
            .map_or_else(|| format!("#{}", r.volunteer_id), |u| u.display_name);
        results.push(MoveResult {
            name,
            moved: r.outcome == "moved",
            message: match r.code {
                None => t.k("vetting", &moved_to).to_string(),
                Some(code) => t
                    .get(&format!("err.{code}"))
                    .map_or_else(|| r.message.clone().unwrap_or_default(), str::to_string),
            },
        });
    }
    let summary = t.f(
        "vet.summary",
        &[
            ("moved", &moved.to_string()),
            ("not_moved", &(outcomes.len() - moved).to_string()),
            ("state", t.k("vetting", &moved_to)),
        ],
    );
    let page = vetting_page(
        &state,
        &p.actor,
        layout,
        f,
        (results, more),
        Some(summary),
        None,
    )
    .await?;
    Ok(page.into_response())
}

/// A row of the import report as the page shows it.
struct ReportRow {
    row: usize,
    outcome: &'static str,
    volunteer: Option<i64>,
    problems: Vec<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "import.html")]
struct ImportPage {
    t: Tr,
    l: Layout,
    teams: Vec<(i64, String)>,
    error: Option<String>,
    report: Option<ImportView>,
}

struct ImportView {
    committed: bool,
    dry_run: bool,
    rows_read: usize,
    created: usize,
    updated: usize,
    unchanged: usize,
    rejected: usize,
    rows: Vec<ReportRow>,
}

async fn teams(state: &AppState, actor: &Actor) -> Result<Vec<(i64, String)>, ApiError> {
    let scopes = actor.managed_scopes();
    Ok(state
        .store
        .org_units(
            scopes.as_deref(),
            None,
            Some(homefront_domain::org::OrgKind::Team),
        )
        .await?
        .into_iter()
        .map(|u| (u.id, u.name))
        .collect())
}

async fn import_page(State(state): State<AppState>, v: Viewer) -> PageResult<ImportPage> {
    let t = v.t();
    super::coordinator_only(&v.actor, t)?;
    Ok(ImportPage {
        t,
        teams: teams(&state, &v.actor).await.page(t)?,
        error: None,
        report: None,
        l: v.l,
    })
}

/// The upload (`multipart/form-data`: `_csrf`, `team_id`, `all_or_nothing`,
/// `dry_run`, `file`), handed to the API's import handler.
async fn import(State(state): State<AppState>, req: Request) -> Response {
    let t = Tr(Lang::of(req.headers()));
    match import_inner(&state, req, t).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn import_inner(state: &AppState, req: Request, t: Tr) -> PageResult {
    let (parts, body) = req.into_parts();
    let mut multipart = Multipart::from_request(Request::from_parts(parts.clone(), body), state)
        .await
        .map_err(|e| PageError {
            t,
            next: None,
            err: ApiError::invalid("file", "invalid_body", e.body_text()),
        })?;
    let (mut csrf, mut team, mut all_or_nothing, mut dry_run) = (None, None, false, false);
    let mut file: Option<(Bytes, Option<String>, Option<String>)> = None;
    while let Some(field) = multipart.next_field().await.map_err(|e| PageError {
        t,
        next: None,
        err: ApiError::invalid("file", "invalid_body", e.body_text()),
    })? {
        let name = field.name().unwrap_or("").to_string();
        if name == "file" {
            let content_type = field.content_type().map(str::to_string);
            let file_name = field.file_name().map(str::to_string);
            let bytes = field.bytes().await.map_err(|e| PageError {
                t,
                next: None,
                err: ApiError::invalid("file", "file_too_large", e.body_text()),
            })?;
            file = Some((bytes, content_type, file_name));
            continue;
        }
        let text = field.text().await.unwrap_or_default();
        match name.as_str() {
            "_csrf" => csrf = Some(text),
            "team_id" if !text.is_empty() => {
                team = Some(crate::api::parse_id(&text).page(t)?);
            }
            "all_or_nothing" => all_or_nothing = true,
            "dry_run" => dry_run = true,
            _ => {}
        }
    }
    let actor = auth::actor_with_form_token(&parts, state, csrf.as_deref())
        .await
        .map_err(|err| PageError { t, err, next: None })?;
    super::coordinator_only(&actor, t)?;
    let layout = Layout::new(t, "/board/import", Some(&actor));
    let teams = teams(state, &actor).await.page(t)?;
    let page = |error: Option<String>, report: Option<ImportView>| ImportPage {
        t,
        l: layout.clone(),
        teams: teams.clone(),
        error,
        report,
    };
    let Some((bytes, content_type, file_name)) = file.filter(|(b, _, _)| !b.is_empty()) else {
        let msg = t.t("err.empty_file").to_string();
        return Ok((
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            page(Some(msg), None),
        )
            .into_response());
    };
    // The file's own type, else its extension, decides the format.
    let format = match file_name.as_deref().and_then(|n| n.rsplit('.').next()) {
        Some(ext) if ext.eq_ignore_ascii_case("xlsx") => Some("xlsx".to_string()),
        Some(ext) if ext.eq_ignore_ascii_case("csv") => Some("csv".to_string()),
        _ => None,
    };
    let mut headers = HeaderMap::new();
    if let Some(ct) = content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(header::CONTENT_TYPE, ct);
    }
    let result = crate::api::volunteers::roster::import(
        State(state.clone()),
        actor.clone(),
        crate::api::ApiQuery(crate::api::volunteers::roster::ImportQuery {
            team_id: team,
            all_or_nothing,
            dry_run,
            format,
        }),
        headers,
        bytes,
    )
    .await;
    match result {
        Ok(axum::Json(r)) => {
            let rows = r
                .rows
                .iter()
                .map(|row| {
                    let (outcome, volunteer, problems) = match &row.outcome {
                        RowOutcome::Created { volunteer_id, .. } => {
                            ("created", Some(*volunteer_id), Vec::new())
                        }
                        RowOutcome::Updated { volunteer_id } => {
                            ("updated", Some(*volunteer_id), Vec::new())
                        }
                        RowOutcome::Unchanged { volunteer_id } => {
                            ("unchanged", Some(*volunteer_id), Vec::new())
                        }
                        RowOutcome::Rejected { errors } => (
                            "rejected",
                            None,
                            errors
                                .iter()
                                .map(|e| {
                                    let msg = t
                                        .get(&format!("err.{}", e.code))
                                        .map_or_else(|| e.message.clone(), str::to_string);
                                    // The column as the template heads it.
                                    let column = crate::roster::COLUMNS
                                        .iter()
                                        .find(|c| c.key == e.field)
                                        .map_or(e.field.as_str(), |c| {
                                            if t.is_en() { c.key } else { c.zh }
                                        });
                                    format!("{column}: {msg}")
                                })
                                .collect(),
                        ),
                    };
                    ReportRow {
                        row: row.row,
                        outcome,
                        volunteer,
                        problems,
                    }
                })
                .collect();
            Ok(page(
                None,
                Some(ImportView {
                    committed: r.committed,
                    dry_run,
                    rows_read: r.rows_read,
                    created: r.created,
                    updated: r.updated,
                    unchanged: r.unchanged,
                    rejected: r.rejected,
                    rows,
                }),
            )
            .into_response())
        }
        Err(err) if err.status.is_client_error() && err.status.as_u16() != 404 => {
            let msg = format!("{} {}", super::error_message(t, &err), err.message);
            Ok((err.status, page(Some(msg), None)).into_response())
        }
        Err(err) => Err(err).page(t),
    }
}

// ---- one volunteer: eligibility, credentials, vetting log ----

struct CredentialLine {
    kind: String,
    from: String,
    to: String,
    status: &'static str,
}

struct LogLine {
    at: String,
    to_state: String,
    note: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "volunteer_detail.html")]
struct VolunteerPage {
    t: Tr,
    l: Layout,
    id: i64,
    name: String,
    phone: String,
    team: String,
    state: String,
    on_duty: bool,
    eligible: bool,
    reasons: Vec<String>,
    credentials: Vec<CredentialLine>,
    log: Vec<LogLine>,
    kinds: Vec<&'static str>,
    error: Option<String>,
    notice: Option<String>,
}

/// A reason the volunteer cannot be dispatched, in the viewer's language.
pub(super) fn reason_text(t: Tr, r: &homefront_domain::credentials::IneligibleReason) -> String {
    use homefront_domain::credentials::IneligibleReason as R;
    match r {
        R::NotActive { state } => t.f1(
            "vdetail.not_active",
            "state",
            t.k("vetting", state.as_str()),
        ),
        R::Missing { kind } => t.f1("vdetail.missing", "kind", t.k("credential", kind.as_str())),
        R::Expired { kind, .. } => {
            t.f1("vdetail.expired", "kind", t.k("credential", kind.as_str()))
        }
        R::NotYetValid { kind, .. } => t.f1(
            "vdetail.not_yet_valid",
            "kind",
            t.k("credential", kind.as_str()),
        ),
    }
}

async fn volunteer_page(
    state: &AppState,
    actor: &Actor,
    id: &str,
    t: Tr,
    error: Option<String>,
    notice: Option<String>,
) -> PageResult<VolunteerPage> {
    super::coordinator_only(actor, t)?;
    let axum::Json(v) =
        crate::api::volunteers::show(State(state.clone()), actor.clone(), Path(id.to_string()))
            .await
            .page(t)?;
    let axum::Json(elig) = crate::api::volunteers::credentials::eligibility(
        State(state.clone()),
        actor.clone(),
        Path(id.to_string()),
        crate::api::ApiQuery(crate::api::volunteers::credentials::EligibilityQuery {
            qualifications: None,
            at: None,
        }),
    )
    .await
    .page(t)?;
    let axum::Json(creds) = crate::api::volunteers::credentials::list(
        State(state.clone()),
        actor.clone(),
        Path(id.to_string()),
    )
    .await
    .page(t)?;
    let axum::Json(log) = crate::api::volunteers::vetting::log(
        State(state.clone()),
        actor.clone(),
        Path(id.to_string()),
    )
    .await
    .page(t)?;
    let tz = v
        .team
        .time_zone
        .parse()
        .unwrap_or(homefront_domain::clock::DEFAULT_TIME_ZONE);
    Ok(VolunteerPage {
        t,
        l: Layout::new(t, &format!("/board/volunteers/{}", v.id), Some(actor)),
        id: v.id,
        name: v.display_name.clone(),
        phone: super::phone_text(&v.phone),
        team: v.team.name.clone(),
        state: v.vetting_state.to_string(),
        on_duty: v.on_duty,
        eligible: elig.eligible,
        reasons: elig
            .reasons
            .iter()
            .map(|r| reason_text(t, &r.detail))
            .collect(),
        credentials: creds
            .iter()
            .map(|c| CredentialLine {
                kind: c.record.kind.to_string(),
                from: local_time(c.record.valid_from, tz),
                to: c
                    .record
                    .valid_to
                    .map(|ms| local_time(ms, tz))
                    .unwrap_or_default(),
                status: c.status,
            })
            .collect(),
        log: log
            .iter()
            .rev()
            .map(|e| LogLine {
                at: local_time(e.at, tz),
                to_state: e.to_state.to_string(),
                note: e.note.clone().unwrap_or_default(),
            })
            .collect(),
        kinds: homefront_domain::credentials::CredentialKind::ALL
            .iter()
            .map(|k| k.as_str())
            .collect(),
        error,
        notice,
    })
}

#[derive(serde::Deserialize, Default)]
struct SavedQuery {
    saved: Option<String>,
}

async fn volunteer(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<SavedQuery>,
) -> PageResult<VolunteerPage> {
    let t = v.t();
    let notice = q.saved.map(|_| t.t("admin.saved").to_string());
    volunteer_page(&state, &v.actor, &id, t, None, notice).await
}

#[derive(serde::Deserialize)]
struct CredentialForm {
    kind: String,
    valid_from: String,
    #[serde(default)]
    valid_to: String,
    #[serde(default)]
    insurer: String,
    #[serde(default)]
    policy_number: String,
}

/// Midnight at the start of `date` (`YYYY-MM-DD`) in `tz`, epoch ms; with
/// `next_day`, the midnight after it (a "valid until" date is inclusive).
fn day_start(field: &str, date: &str, tz: chrono_tz::Tz, next_day: bool) -> Result<i64, ApiError> {
    use chrono::TimeZone;
    chrono::NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d")
        .ok()
        .map(|d| {
            if next_day {
                d.succ_opt().unwrap_or(d)
            } else {
                d
            }
        })
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|d| tz.from_local_datetime(&d).earliest())
        .map(|d| d.timestamp_millis())
        .ok_or_else(|| ApiError::invalid(field, "invalid_time", "pick a date"))
}

async fn add_credential(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<CredentialForm>,
) -> PageResult<Response> {
    let t = p.t;
    super::coordinator_only(&p.actor, t)?;
    let vid = crate::api::parse_id(&id).page(t)?;
    let tz = state
        .store
        .volunteer(vid)
        .await
        .page(t)?
        .map_or(homefront_domain::clock::DEFAULT_TIME_ZONE, |v| v.time_zone);
    let f = p.form;
    let opt = |s: String| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let result = async {
        let valid_from = day_start("valid_from", &f.valid_from, tz, false)?;
        let valid_to = match opt(f.valid_to) {
            Some(d) => Some(day_start("valid_to", &d, tz, true)?),
            None => None,
        };
        crate::api::volunteers::credentials::add(
            State(state.clone()),
            p.actor.clone(),
            Path(id.clone()),
            ApiJson(crate::api::volunteers::credentials::AddCredential {
                kind: f.kind,
                valid_from,
                valid_to,
                insurer: opt(f.insurer),
                policy_number: opt(f.policy_number),
                document_ref: None,
            }),
        )
        .await
        .map(|_| ())
    }
    .await;
    match result {
        Ok(()) => Ok(see_other(&format!("/board/volunteers/{vid}?saved=1"))),
        Err(err) => {
            super::refused(t, err, |m| {
                volunteer_page(&state, &p.actor, &id, t, Some(m), None)
            })
            .await
        }
    }
}
