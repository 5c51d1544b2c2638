//! The web interface: server-rendered pages (askama templates under
//! `templates/`), the message catalogue ([`i18n`]), embedded static assets
//! and server-sent-event streams for live views.
//!
//! Pages use the API's session cookie and call the same functions as the
//! JSON API (`api::orders::place_order`, `api::offers::accept_offer`, ...),
//! so validation, scope and privacy rules live in one place. Forms carry
//! the session's CSRF token in a `_csrf` field, checked by
//! [`auth::actor_with_form_token`]. A record outside the viewer's reach
//! answers the same "not found" page as a missing one.

pub mod i18n;

mod account;
mod admin;
mod assets;
pub(crate) mod charts;
mod coordinator;
mod dashboard;
mod household;
mod inbox;
mod liaison;
mod pairings;
mod pwa;
mod requester;
mod vetting;
mod volunteer;

use askama::Template;
use askama_web::WebTemplate;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use homefront_domain::Role;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::auth::{self, Actor};
use crate::error::ApiError;
use i18n::{LANG_COOKIE, Lang, Tr};

/// The pages' routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login_submit))
        .route("/logout", post(logout))
        .route("/lang/{code}", get(switch_lang).post(switch_lang_posted))
        .merge(assets::router())
        .merge(pwa::router())
        .merge(requester::router())
        .merge(household::router())
        .merge(account::router())
        .merge(volunteer::router())
        .merge(coordinator::router())
        .merge(liaison::router())
        .merge(dashboard::router())
        .merge(vetting::router())
        .merge(pairings::router())
        .merge(inbox::router())
        .merge(admin::router())
}

/// A link of the coordinator's sub-navigation.
#[derive(Clone, Debug)]
pub struct Tab {
    /// Target.
    pub href: &'static str,
    /// Catalogue key of its text.
    pub key: &'static str,
    /// Whether it is the page shown.
    pub current: bool,
}

/// The coordinator pages: (href, catalogue key).
const COORDINATOR_TABS: [(&str, &str); 6] = [
    ("/board", "tabs.board"),
    ("/board/dashboard", "tabs.dashboard"),
    ("/board/volunteers", "tabs.volunteers"),
    ("/board/import", "tabs.import"),
    ("/board/pairings", "tabs.pairings"),
    ("/board/bots", "tabs.bots"),
];

/// What every page's frame needs: the translator, the CSRF token for its
/// forms, the path (for the language switch) and the navigation.
#[derive(Clone, Debug)]
pub struct Layout {
    /// Translator.
    pub t: Tr,
    /// CSRF token of the session ("" when signed out).
    pub csrf: String,
    /// This page's path and query, to come back to after switching language.
    pub path: String,
    /// The signed-in user's name.
    pub user: Option<String>,
    /// Navigation links: (href, catalogue key).
    pub nav: Vec<(&'static str, &'static str)>,
    /// Unread notices in the viewer's inbox (shown beside "Inbox").
    pub unread: i64,
}

impl Layout {
    fn new(t: Tr, path: &str, actor: Option<&Actor>) -> Layout {
        let mut nav = Vec::new();
        if let Some(a) = actor {
            if a.has(Role::Requester) {
                nav.push(("/orders", "nav.orders"));
                nav.push(("/household", "nav.household"));
            }
            if a.has(Role::Volunteer) {
                nav.push(("/volunteer", "nav.volunteer"));
            }
            if a.has(Role::Liaison) {
                nav.push(("/liaison", "nav.liaison"));
            }
            if a.has(Role::Coordinator) || a.is_admin() {
                nav.push(("/board", "nav.board"));
            }
            if a.is_admin() || a.has(Role::Coordinator) {
                nav.push(("/admin", "nav.admin"));
            }
            nav.push(("/inbox", "nav.inbox"));
        }
        Layout {
            t,
            csrf: actor.map(|a| a.csrf_token.clone()).unwrap_or_default(),
            path: path.to_string(),
            user: actor.map(|a| a.user.display_name.clone()),
            nav,
            unread: 0,
        }
    }

    /// The coordinator's sub-navigation, the current page marked.
    pub fn tabs(&self) -> Vec<Tab> {
        let path = self.path.split('?').next().unwrap_or("");
        COORDINATOR_TABS
            .iter()
            .map(|(href, key)| Tab {
                href,
                key,
                current: if *href == "/board" {
                    path == "/board" || path.starts_with("/board/orders")
                } else {
                    path.starts_with(href)
                },
            })
            .collect()
    }

    /// The other language's tag (`en` or `zh-CN`).
    fn other_lang(&self) -> &'static str {
        if self.t.is_en() { "zh-CN" } else { "en" }
    }

    /// The link that switches to the other language (signed out: it sets
    /// the `lang` cookie only).
    pub fn switch_href(&self) -> String {
        format!(
            "/lang/{}?next={}",
            self.other_lang(),
            url_encode(&self.path)
        )
    }

    /// Where the signed-in switch posts (it also becomes the account's
    /// language, in which notifications are written).
    pub fn switch_action(&self) -> String {
        format!("/lang/{}", self.other_lang())
    }
}

/// Percent-encodes `s` for a query value, keeping `/` readable.
pub(crate) fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `next` when it is a path on this site, e.g. `/orders/new/who?item=3`,
/// so a `next` parameter cannot send the browser elsewhere: it starts with
/// one `/` (`//host` and `/\host` name another host), and holds visible
/// ASCII only (browsers drop tabs and newlines, which would turn `/\t/host`
/// into `//host`; a `Location` header takes nothing else).
pub(crate) fn local_path(next: Option<&str>) -> Option<String> {
    let n = next?;
    let ok = n.starts_with('/')
        && !n.starts_with("//")
        && !n.contains('\\')
        && n.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| n.to_string())
}

fn path_of(parts: &Parts) -> String {
    parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string()
}

/// An error page in the viewer's language: the API error's code picks the
/// message (`err.CODE`), falling back to a general one by status.
#[derive(Debug)]
pub struct PageError {
    t: Tr,
    err: ApiError,
    /// The page to return to after signing in, for a signed-out visit.
    next: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
struct ErrorPage {
    t: Tr,
    l: Layout,
    message: String,
}

/// The message for an API error in the viewer's language.
pub fn error_message(t: Tr, err: &ApiError) -> String {
    if let Some(secs) = err.retry_after_s {
        // How long to wait, in the page's language: seconds under two
        // minutes, else whole minutes rounded up.
        let wait = if secs < 120 {
            t.f1("login.wait_seconds", "n", secs)
        } else {
            t.f1("login.wait_minutes", "n", (secs + 59) / 60)
        };
        if t.get(&format!("err.{}", err.code)).is_some() {
            return t.f1(&format!("err.{}", err.code), "wait", wait);
        }
    }
    if let Some(m) = t.get(&format!("err.{}", err.code)) {
        return m.to_string();
    }
    let key = match err.status.as_u16() {
        404 => "err.not_found",
        403 => "err.forbidden",
        409 => "err.conflict",
        422 | 400 => "err.invalid",
        _ => "err.internal",
    };
    t.t(key).to_string()
}

/// A refused input as a line in the page's language: the field
/// (`field.NAME`), then what to do (`err.CODE`).
pub fn field_error(t: Tr, err: &ApiError) -> String {
    match &err.field {
        Some(f) => format!(
            "{}: {}",
            t.get(&format!("field.{f}")).unwrap_or(f),
            error_message(t, err)
        ),
        None => error_message(t, err),
    }
}

/// Renders `page` with the refusal's message when the API refused the
/// input (4xx other than 404), with the refusal's status; else fails the
/// request with the error page.
pub(crate) async fn refused<P, F, Fut>(t: Tr, err: ApiError, page: F) -> PageResult<Response>
where
    P: IntoResponse,
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = PageResult<P>>,
{
    if err.status.is_client_error() && err.status.as_u16() != 404 {
        let status = err.status;
        Ok((status, page(field_error(t, &err)).await?).into_response())
    } else {
        Err(err).page(t)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        if self.err.status == StatusCode::UNAUTHORIZED {
            let to = match self.next.as_deref().and_then(|n| local_path(Some(n))) {
                Some(next) if next != "/" => format!("/login?next={}", url_encode(&next)),
                _ => "/login".to_string(),
            };
            return Redirect::to(&to).into_response();
        }
        let page = ErrorPage {
            t: self.t,
            l: Layout::new(self.t, "/", None),
            message: error_message(self.t, &self.err),
        };
        (self.err.status, page).into_response()
    }
}

/// Result of a page handler.
pub type PageResult<T = Response> = Result<T, PageError>;

/// Maps API errors into the page's language.
pub trait Localize<T> {
    /// Attaches the translator.
    fn page(self, t: Tr) -> PageResult<T>;
}

impl<T, E: Into<ApiError>> Localize<T> for Result<T, E> {
    fn page(self, t: Tr) -> PageResult<T> {
        self.map_err(|e| PageError {
            t,
            err: e.into(),
            next: None,
        })
    }
}

/// A signed-in viewer of a page (GET): the actor and the page frame.
/// Without a session, the page redirects to `/login`.
pub struct Viewer {
    /// The signed-in actor.
    pub actor: Actor,
    /// The page frame.
    pub l: Layout,
}

impl Viewer {
    /// The translator.
    pub fn t(&self) -> Tr {
        self.l.t
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let t = Tr(Lang::of(&parts.headers));
        // Pages (not event streams) come back after signing in.
        let next = (parts.method == axum::http::Method::GET
            && !parts.uri.path().starts_with("/live/"))
        .then(|| path_of(parts));
        let actor = Actor::from_request_parts(parts, state)
            .await
            .map_err(|err| PageError { t, err, next })?;
        let mut l = Layout::new(t, &path_of(parts), Some(&actor));
        // The badge is a convenience: a failed count shows none.
        l.unread = state.store.unread_count(actor.user.id).await.unwrap_or(0);
        Ok(Viewer { l, actor })
    }
}

/// A posted HTML form from a signed-in actor, its `_csrf` field checked
/// against the session ([`auth::actor_with_form_token`]) and every field
/// against the text rule ([`crate::input::check_pairs`]).
pub struct Posted<T> {
    /// The actor.
    pub actor: Actor,
    /// Translator.
    pub t: Tr,
    /// The form's fields.
    pub form: T,
}

#[derive(Deserialize)]
struct CsrfField {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
}

/// Largest form body accepted, in bytes.
const FORM_LIMIT: usize = 64 * 1024;

impl<T: DeserializeOwned + Send> FromRequest<AppState> for Posted<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, PageError> {
        let (parts, body) = req.into_parts();
        let t = Tr(Lang::of(&parts.headers));
        let bytes = axum::body::to_bytes(body, FORM_LIMIT)
            .await
            .map_err(|_| PageError {
                t,
                next: None,
                err: ApiError::invalid("body", "invalid_body", "form too large"),
            })?;
        let rebuild = |b: axum::body::Bytes| Request::from_parts(parts.clone(), Body::from(b));
        let csrf = Form::<CsrfField>::from_request(rebuild(bytes.clone()), state)
            .await
            .ok()
            .and_then(|Form(f)| f.csrf);
        let actor = auth::actor_with_form_token(&parts, state, csrf.as_deref())
            .await
            .map_err(|err| PageError { t, err, next: None })?;
        crate::input::check_pairs(form_urlencoded::parse(&bytes)).map_err(|err| PageError {
            t,
            err,
            next: None,
        })?;
        let Form(form) = Form::<T>::from_request(rebuild(bytes), state)
            .await
            .map_err(|e| PageError {
                t,
                next: None,
                err: ApiError::invalid("body", "invalid_body", e.body_text()),
            })?;
        Ok(Posted { actor, t, form })
    }
}

/// 303 to `to`, as after every successful form post.
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// A session-less page frame for the request (login, errors).
pub(crate) fn anonymous(headers: &HeaderMap, path: &str) -> Layout {
    Layout::new(Tr(Lang::of(headers)), path, None)
}

async fn home(viewer: Result<Viewer, PageError>) -> Response {
    let Ok(v) = viewer else {
        return see_other("/login");
    };
    let a = &v.actor;
    if a.has(Role::Coordinator) || a.is_admin() {
        see_other("/board")
    } else if a.has(Role::Volunteer) {
        see_other("/volunteer")
    } else if a.has(Role::Requester) {
        see_other("/orders")
    } else if a.has(Role::Liaison) {
        see_other("/liaison")
    } else {
        PageError {
            t: v.t(),
            next: None,
            err: ApiError::forbidden(),
        }
        .into_response()
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
struct LoginPage {
    t: Tr,
    l: Layout,
    phone: String,
    error: Option<String>,
    totp: bool,
    notice: Option<&'static str>,
    /// Local page to go to after signing in ("" = home).
    next: String,
    /// "Remember this phone" ticked.
    remember: bool,
    /// How long a remembered session lasts (`remember_days`).
    remember_days: i64,
}

#[derive(Deserialize)]
struct LoginQuery {
    /// Set after a password change, which ended the session.
    changed: Option<String>,
    /// Set after signing out everywhere.
    signed_out: Option<String>,
    /// The page a signed-out visit asked for.
    next: Option<String>,
}

async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> LoginPage {
    let l = anonymous(&headers, "/login");
    LoginPage {
        t: l.t,
        notice: match (q.changed, q.signed_out) {
            (Some(_), _) => Some(l.t.t("login.password_changed")),
            (None, Some(_)) => Some(l.t.t("login.signed_out_everywhere")),
            (None, None) => None,
        },
        next: local_path(q.next.as_deref()).unwrap_or_default(),
        l,
        phone: String::new(),
        error: None,
        totp: false,
        remember: false,
        remember_days: state.config.remember_days,
    }
}

#[derive(Deserialize)]
struct LoginForm {
    phone: String,
    password: String,
    #[serde(default)]
    totp_code: Option<String>,
    #[serde(default)]
    next: Option<String>,
    /// The "remember this phone" box (`1` when ticked).
    #[serde(default)]
    remember: Option<String>,
}

async fn login_submit(
    State(state): State<AppState>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let ip = crate::api::sessions::client_ip(&state, &headers, peer);
    let req = crate::api::sessions::LoginRequest {
        phone: form.phone.clone(),
        password: form.password,
        totp_code: form.totp_code.filter(|c| !c.trim().is_empty()),
        remember: form.remember.is_some(),
    };
    let signed_in = match auth::check_same_origin(&headers) {
        Ok(()) => crate::api::sessions::sign_in(&state, &ip, req).await,
        Err(e) => Err(e),
    };
    match signed_in {
        Ok((_, cookie)) => {
            let to = local_path(form.next.as_deref()).unwrap_or_else(|| "/".into());
            let mut resp = see_other(&to);
            resp.headers_mut().insert(header::SET_COOKIE, cookie);
            resp
        }
        Err(err) => {
            let l = anonymous(&headers, "/login");
            let totp = matches!(err.code, "totp_required" | "invalid_totp");
            let page = LoginPage {
                t: l.t,
                error: Some(error_message(l.t, &err)),
                l,
                phone: form.phone,
                totp,
                notice: None,
                next: local_path(form.next.as_deref()).unwrap_or_default(),
                remember: form.remember.is_some(),
                remember_days: state.config.remember_days,
            };
            let mut resp = (err.status, page).into_response();
            if let Some(secs) = err.retry_after_s
                && let Ok(v) = header::HeaderValue::from_str(&secs.to_string())
            {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
    }
}

async fn logout(State(state): State<AppState>, posted: Posted<CsrfField>) -> PageResult {
    state
        .store
        .delete_session(&posted.actor.token_hash)
        .await
        .page(posted.t)?;
    crate::live::publish_account(&state, posted.actor.user.id).await;
    Ok(signed_out(see_other("/login")))
}

/// Clears the session cookie on `resp`, and asks the browser to drop what
/// it cached for this site (`Clear-Site-Data`, secure contexts only; the
/// page's script also empties the service worker's copies first).
pub(crate) fn signed_out(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("hf_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    resp.headers_mut().insert(
        header::HeaderName::from_static("clear-site-data"),
        HeaderValue::from_static("\"cache\""),
    );
    resp
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// The `lang` cookie for `lang` and a 303 back to `next` (a local path
/// only, so the switch cannot redirect elsewhere; else `/`).
fn lang_redirect(lang: Lang, next: Option<&str>) -> Response {
    let next = local_path(next).unwrap_or_else(|| "/".into());
    let mut resp = see_other(&next);
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{LANG_COOKIE}={}; Path=/; SameSite=Lax; Max-Age=31536000",
        lang.tag()
    )) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// `GET /lang/{code}`: sets the `lang` cookie (this browser's pages) and
/// returns to the page. It changes nothing stored: a GET is safe (RFC 9110
/// §9.2.1), so a link on another site cannot change an account.
async fn switch_lang(Path(code): Path<String>, Query(q): Query<NextQuery>) -> Response {
    lang_redirect(Lang::parse(&code).unwrap_or(Lang::Zh), q.next.as_deref())
}

/// The switch's form when signed in: a `next` path to return to.
#[derive(Deserialize)]
struct LangForm {
    next: Option<String>,
}

/// `POST /lang/{code}` (the signed-in switch, with the session's CSRF
/// token): sets the cookie and makes it the account's language, in which
/// its notifications are written.
async fn switch_lang_posted(
    State(state): State<AppState>,
    Path(code): Path<String>,
    p: Posted<LangForm>,
) -> Response {
    let lang = Lang::parse(&code).unwrap_or(Lang::Zh);
    if p.actor.user.locale != lang.locale()
        && let Err(e) = state.store.set_locale(p.actor.user.id, lang.locale()).await
    {
        tracing::warn!(error = %e, "could not store the account's language");
    }
    lang_redirect(lang, p.form.next.as_deref())
}

/// Coordinators' and admins' pages; others get the forbidden page.
pub(crate) fn coordinator_only(actor: &Actor, t: Tr) -> PageResult<()> {
    if actor.has(Role::Coordinator) || actor.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden()).page(t)
    }
}

/// A form with no fields but the CSRF token (buttons that post).
#[derive(Deserialize)]
pub(crate) struct Empty {}

/// A stored phone number (E.164) as people read it: `138 0001 0001`.
pub(crate) fn phone_text(stored: &str) -> String {
    homefront_domain::phone::PhoneNumber::display_text(stored)
}

/// Minutes as hours with one decimal, for display (`90` → `1.5`); sum
/// minutes first and convert last, so totals do not drift.
pub(crate) fn hours_text(minutes: i64) -> String {
    #[allow(clippy::cast_precision_loss)] // minutes are far below 2^52
    let h = minutes as f64 / 60.0;
    format!("{h:.1}")
}

/// Sorts org units into tree order (each parent before its children,
/// siblings by id), for pickers: the stored paths sort as text, which
/// puts `/1/10/` before `/1/2/`.
pub fn tree_order(units: &mut [homefront_store::org_units::OrgUnit]) {
    units.sort_by_cached_key(|u| {
        u.path
            .split('/')
            .filter_map(|p| p.parse::<i64>().ok())
            .collect::<Vec<_>>()
    });
}

/// The time zone a viewer's pages show times in: the zone of the unit
/// they act for (a coordinator's division, a volunteer's team, a liaison's
/// employer), else of the district their household lives in, else the
/// deployment's default (an admin of the whole deployment).
pub(crate) async fn viewer_time_zone(state: &AppState, actor: &Actor) -> chrono_tz::Tz {
    for id in actor.grants.iter().filter_map(|g| g.org_unit_id) {
        if let Ok(Some(unit)) = state.store.org_unit(id).await {
            return unit.time_zone;
        }
    }
    if actor.has(Role::Requester)
        && let Ok(h) = state
            .store
            .household_of(actor.user.id, state.clock.now().epoch_ms())
            .await
        && let Ok(members) = state.store.members(h.id).await
        && let Some(m) = members.first()
        && let Ok(Some(unit)) = state.store.org_unit(m.division_id).await
    {
        return unit.time_zone;
    }
    homefront_domain::clock::DEFAULT_TIME_ZONE
}

/// An RFC 3339 instant with its offset (an order's `window_start_local`)
/// as `YYYY-MM-DD HH:MM` at that offset: the order's own local time.
pub fn offset_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// Local date and time of `ms` in time zone `tz`, e.g. `2020-02-12 14:00`.
pub fn local_time(ms: i64, tz: chrono_tz::Tz) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// The given name to show for a display name: for a Chinese name of two to
/// four characters, the characters after the one-character surname; for
/// others, the first word.
pub fn first_name(display: &str) -> String {
    let display = display.trim();
    let chars: Vec<char> = display.chars().collect();
    let cjk = |c: &char| ('\u{4e00}'..='\u{9fff}').contains(c);
    if (2..=4).contains(&chars.len()) && chars.iter().all(cjk) {
        return chars[1..].iter().collect();
    }
    display
        .split_whitespace()
        .next()
        .unwrap_or(display)
        .to_string()
}

/// A server-sent-event stream for a live view: renders once on connect,
/// then again whenever a relevant order changes (or every `tick`, which
/// also catches expiries), sending `event` only when the HTML differs.
/// `render` answers `None` when the viewer may no longer see the view,
/// which ends the stream (the browser reconnects and is checked again).
pub(crate) fn live_stream<F, R, Fut>(
    rx: tokio::sync::broadcast::Receiver<crate::live::OrderChanged>,
    event: &'static str,
    tick: std::time::Duration,
    relevant: F,
    render: R,
) -> impl futures::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>
where
    F: Fn(i64) -> bool + Send + 'static,
    R: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = Option<String>> + Send,
{
    use tokio::sync::broadcast::error::RecvError;
    struct S<F, R> {
        rx: tokio::sync::broadcast::Receiver<crate::live::OrderChanged>,
        relevant: F,
        render: R,
        last: Option<String>,
        first: bool,
    }
    let s = S {
        rx,
        relevant,
        render,
        last: None,
        first: true,
    };
    futures::stream::unfold(s, move |mut s| async move {
        loop {
            let wake = if s.first {
                s.first = false;
                true
            } else {
                tokio::select! {
                    r = s.rx.recv() => match r {
                        Ok(c) => (s.relevant)(c.order_id),
                        Err(RecvError::Lagged(_)) => true,
                        Err(RecvError::Closed) => return None,
                    },
                    () = tokio::time::sleep(tick) => true,
                }
            };
            if !wake {
                continue;
            }
            let html = (s.render)().await?;
            if s.last.as_deref() == Some(html.as_str()) {
                continue;
            }
            s.last = Some(html.clone());
            let ev = axum::response::sse::Event::default()
                .event(event)
                .data(html);
            return Some((Ok(ev), s));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_names() {
        assert_eq!(first_name("王芳"), "芳");
        assert_eq!(first_name("Li Wei"), "Li");
        assert_eq!(first_name("Test 测试"), "Test");
    }

    #[test]
    fn next_must_be_a_local_path() {
        assert_eq!(
            local_path(Some("/orders/new/who?item=3")).as_deref(),
            Some("/orders/new/who?item=3")
        );
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example/",
            "/\t/evil.example/",
            "/ok\r\nSet-Cookie: x=1",
            "orders",
            "",
        ] {
            assert_eq!(local_path(Some(bad)), None, "{bad:?}");
        }
        assert_eq!(local_path(None), None);
    }

    #[test]
    fn switch_href_keeps_the_page() {
        let l = Layout::new(Tr(Lang::Zh), "/orders/new?item=3", None);
        assert_eq!(l.switch_href(), "/lang/en?next=/orders/new%3Fitem%3D3");
    }
}
