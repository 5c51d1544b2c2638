//! The inbox page (every signed-in user: notices newest first, unread
//! marked, mark all read, notification preferences) and the coordinator's
//! group-bot page (WeCom, DingTalk and signed webhooks per org unit, with a
//! test message). Both go through the JSON API's handlers.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use homefront_domain::Role;
use serde::Deserialize;

use super::i18n::Tr;
use super::{Layout, Localize, PageResult, Posted, Viewer, local_time, see_other};
use crate::AppState;
use crate::api::ApiJson;
use crate::api::notifications::{BotBody, InboxQuery, PreferencesBody};
use crate::auth::Actor;
use crate::error::ApiError;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/inbox", get(inbox))
        .route("/inbox/read-all", post(read_all))
        .route("/inbox/preferences", post(preferences))
        .route("/board/bots", get(bots).post(create_bot))
        .route("/board/bots/{unit}/{bot}/test", post(test_bot))
        .route("/board/bots/{unit}/{bot}/delete", post(delete_bot))
}

struct Notice {
    title: String,
    /// Paragraphs of the body.
    lead: Vec<String>,
    /// Its `- ` lines (order, service, district, time).
    facts: Vec<String>,
    at: String,
    unread: bool,
    href: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "inbox.html")]
struct InboxPage {
    t: Tr,
    l: Layout,
    unread: i64,
    notices: Vec<Notice>,
    /// Older notices not listed.
    more: i64,
    inbox_on: bool,
    mute_offers: bool,
    volunteer: bool,
}

/// Notices listed on the inbox page, newest first.
const NOTICES_SHOWN: i64 = 100;

/// Where a notice about an order leads, by the viewer's role.
fn order_href(actor: &Actor, order: i64) -> String {
    if actor.has(Role::Coordinator) || actor.is_admin() {
        format!("/board/orders/{order}")
    } else if actor.has(Role::Volunteer) {
        "/volunteer".to_string()
    } else {
        format!("/orders/{order}")
    }
}

async fn inbox(State(state): State<AppState>, v: Viewer) -> PageResult<InboxPage> {
    let t = v.t();
    let (page, _) = crate::api::notifications::inbox_page(
        &state,
        &v.actor,
        &InboxQuery {
            limit: Some(NOTICES_SHOWN),
            ..InboxQuery::default()
        },
    )
    .await
    .page(t)?;
    let total = state.store.inbox_count(v.actor.user.id).await.page(t)?;
    let tz = super::viewer_time_zone(&state, &v.actor).await;
    let axum::Json(prefs) =
        crate::api::notifications::preferences(State(state.clone()), v.actor.clone())
            .await
            .page(t)?;
    let notices = page
        .items
        .iter()
        .cloned()
        .map(|n| Notice {
            lead: body_lines(&n.body, false),
            facts: body_lines(&n.body, true),
            title: n.title,
            at: local_time(n.created_at, tz),
            unread: n.read_at.is_none(),
            href: n.order_id.map(|o| order_href(&v.actor, o)),
        })
        .collect();
    Ok(InboxPage {
        t,
        unread: page.unread,
        more: total - i64::try_from(page.items.len()).unwrap_or(0),
        notices,
        inbox_on: prefs.inbox,
        mute_offers: prefs.mute_offers_off_duty,
        volunteer: v.actor.has(Role::Volunteer),
        l: v.l,
    })
}

/// The body's plain lines (`facts = false`) or its `- ` list lines,
/// without the `###` heading that repeats the title and without Markdown
/// emphasis (bodies are the group bots' Markdown).
fn body_lines(body: &str, facts: bool) -> Vec<String> {
    body.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|l| l.starts_with("- ") == facts)
        .map(|l| l.trim_start_matches("- ").replace("**", ""))
        .collect()
}

async fn read_all(State(state): State<AppState>, p: Posted<super::Empty>) -> PageResult {
    let _answer = crate::api::notifications::read_all(State(state), p.actor)
        .await
        .page(p.t)?;
    Ok(see_other("/inbox"))
}

#[derive(Deserialize)]
struct PreferencesForm {
    inbox: Option<String>,
    mute_offers_off_duty: Option<String>,
}

/// Checkboxes: a box left unticked is absent from the form, so absence
/// means "off".
async fn preferences(State(state): State<AppState>, p: Posted<PreferencesForm>) -> PageResult {
    let _answer = crate::api::notifications::set_preferences(
        State(state),
        p.actor,
        ApiJson(PreferencesBody {
            inbox: Some(p.form.inbox.is_some()),
            mute_offers_off_duty: Some(p.form.mute_offers_off_duty.is_some()),
            webhook_url: None,
            webhook_secret: None,
        }),
    )
    .await
    .page(p.t)?;
    Ok(see_other("/inbox"))
}

struct BotLine {
    id: i64,
    kind: String,
    name: String,
    host: String,
    signed: bool,
    locale: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "bots.html")]
struct BotsPage {
    t: Tr,
    l: Layout,
    units: Vec<(i64, String)>,
    unit: i64,
    bots: Vec<BotLine>,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
struct BotsQuery {
    org_unit: Option<String>,
    sent: Option<String>,
    added: Option<String>,
}

async fn bots_page(
    state: &AppState,
    actor: &Actor,
    l: Layout,
    unit: Option<&str>,
    notice: Option<String>,
    error: Option<String>,
) -> PageResult<BotsPage> {
    let t = l.t;
    super::coordinator_only(actor, t)?;
    let scopes = actor.managed_scopes();
    let mut units = state
        .store
        .org_units(scopes.as_deref(), None, None)
        .await
        .page(t)?;
    super::tree_order(&mut units);
    let units: Vec<(i64, String)> = units
        .into_iter()
        .filter(|u| matches!(u.kind.as_str(), "province" | "city" | "county" | "team"))
        .map(|u| (u.id, u.name))
        .collect();
    let unit = match unit.filter(|s| !s.is_empty()) {
        Some(raw) => crate::api::parse_id(raw).page(t)?,
        None => units
            .first()
            .map(|u| u.0)
            .ok_or_else(ApiError::not_found)
            .page(t)?,
    };
    let axum::Json(list) = crate::api::notifications::bots(
        State(state.clone()),
        actor.clone(),
        Path(unit.to_string()),
    )
    .await
    .page(t)?;
    Ok(BotsPage {
        t,
        l,
        units,
        unit,
        bots: list
            .into_iter()
            .map(|b| BotLine {
                id: b.bot.id,
                kind: b.bot.kind.to_string(),
                name: b.bot.name.clone(),
                host: b.url_host.clone(),
                signed: b.signed,
                locale: b.bot.locale.to_string(),
            })
            .collect(),
        notice,
        error,
    })
}

async fn bots(
    State(state): State<AppState>,
    v: Viewer,
    Query(q): Query<BotsQuery>,
) -> PageResult<BotsPage> {
    let t = v.t();
    let notice = match (q.sent, q.added) {
        (Some(_), _) => Some(t.t("bots.test_sent").to_string()),
        (None, Some(_)) => Some(t.t("bots.created").to_string()),
        (None, None) => None,
    };
    bots_page(&state, &v.actor, v.l, q.org_unit.as_deref(), notice, None).await
}

#[derive(Deserialize)]
struct BotForm {
    org_unit: String,
    kind: String,
    name: String,
    url: String,
    #[serde(default)]
    secret: String,
    locale: Option<String>,
}

async fn create_bot(State(state): State<AppState>, p: Posted<BotForm>) -> PageResult<Response> {
    let t = p.t;
    super::coordinator_only(&p.actor, t)?;
    let f = p.form;
    let secret = Some(f.secret.trim().to_string()).filter(|s| !s.is_empty());
    let result = crate::api::notifications::create_bot(
        State(state.clone()),
        p.actor.clone(),
        Path(f.org_unit.clone()),
        ApiJson(BotBody {
            kind: f.kind,
            name: f.name,
            url: f.url.trim().to_string(),
            secret,
            locale: f.locale,
        }),
    )
    .await;
    let layout = Layout::new(t, "/board/bots", Some(&p.actor));
    match result {
        Ok((_, axum::Json(bot))) => match bot.secret {
            // A generated webhook secret is shown once, here.
            Some(secret) => {
                let notice = Some(t.f1("bots.secret_once", "secret", secret));
                Ok(
                    bots_page(&state, &p.actor, layout, Some(&f.org_unit), notice, None)
                        .await?
                        .into_response(),
                )
            }
            // Otherwise back to the list, so reloading adds nothing.
            None => Ok(see_other(&format!(
                "/board/bots?org_unit={}&added=1",
                super::url_encode(&f.org_unit)
            ))),
        },
        Err(err) if err.status.is_client_error() && err.status != StatusCode::NOT_FOUND => {
            let msg = match &err.field {
                Some(field) => format!("{}: {}", t.k("bots", field), super::error_message(t, &err)),
                None => super::error_message(t, &err),
            };
            let page =
                bots_page(&state, &p.actor, layout, Some(&f.org_unit), None, Some(msg)).await?;
            Ok((err.status, page).into_response())
        }
        Err(err) => Err(err).page(t),
    }
}

async fn test_bot(
    State(state): State<AppState>,
    Path((unit, bot)): Path<(String, String)>,
    p: Posted<super::Empty>,
) -> PageResult {
    let _answer =
        crate::api::notifications::test_bot(State(state), p.actor, Path((unit.clone(), bot)))
            .await
            .page(p.t)?;
    Ok(see_other(&format!(
        "/board/bots?org_unit={}&sent=1",
        super::url_encode(&unit)
    )))
}

async fn delete_bot(
    State(state): State<AppState>,
    Path((unit, bot)): Path<(String, String)>,
    p: Posted<super::Empty>,
) -> PageResult {
    crate::api::notifications::delete_bot(State(state), p.actor, Path((unit.clone(), bot)))
        .await
        .page(p.t)?;
    Ok(see_other(&format!(
        "/board/bots?org_unit={}",
        super::url_encode(&unit)
    )))
}
