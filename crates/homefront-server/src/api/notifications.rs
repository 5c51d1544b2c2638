//! Notifications: the in-app inbox, preferences, group bots, the board of
//! dead deliveries, and the live event stream.
//!
//! - `GET /api/v1/inbox[?unread=true&limit=N]` → `{"unread": n, "items": [...]}`
//! - `POST /api/v1/inbox/{id}/read`, `POST /api/v1/inbox/read-all` → `{"unread": n}`
//! - `GET/PUT /api/v1/notification-preferences`
//! - `GET/POST /api/v1/org-units/{id}/bots`, `DELETE .../bots/{bot_id}`,
//!   `POST .../bots/{bot_id}/test` (coordinators of the unit's subtree)
//! - `GET /api/v1/outbox/dead` (coordinators: their subtree; admins: all)
//! - `GET /api/v1/events`: server-sent events `ready` (`{"unread": n}`),
//!   `order` (`{"order_id", "state", "updated_at"}` for orders the viewer
//!   may see, as `privacy::order_access` decides), `inbox` (`{"unread": n}`)
//!   and `reload` (the stream lagged: refetch).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use futures::Stream;
use homefront_domain::Role;
use homefront_domain::locale::Locale;
use homefront_domain::notify::{BotKind, EventKind};
use homefront_store::outbox::{GroupBot, NewBot, NewEvent, Notification, Preferences};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::AppState;
use crate::api::ApiQuery;
use crate::api::openapi::{BodyRejection, ErrorShape, QueryRejection};
use crate::api::org_units::managed_unit;
use crate::api::{ApiJson, paging, parse_id};
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::notify::channels;

/// Notification routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/inbox", get(inbox))
        .route("/inbox/read-all", post(read_all))
        .route("/inbox/{id}/read", post(read_one))
        .route(
            "/notification-preferences",
            get(preferences).put(set_preferences),
        )
        .route("/org-units/{id}/bots", get(bots).post(create_bot))
        .route("/org-units/{id}/bots/{bot_id}", delete(delete_bot))
        .route("/org-units/{id}/bots/{bot_id}/test", post(test_bot))
        .route("/outbox/dead", get(dead))
        .route("/events", get(events))
}

/// Query of `GET /api/v1/inbox`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    /// Only unread notices.
    #[serde(default)]
    pub unread: bool,
    /// Page size, 1–200 (default 50), newest first.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// The next page: the cursor of the previous page's `Link` header.
    pub cursor: Option<String>,
}

/// The inbox answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InboxPage {
    /// Unread notices in all.
    pub unread: i64,
    /// Newest first.
    pub items: Vec<Notification>,
}

/// The caller's in-app inbox, newest first, a page at a time, with the
/// unread count.
///
/// When more notices exist than the page holds, `Link: <…>; rel="next"`
/// (and `X-Next-Cursor`) lead to the next page.
#[utoipa::path(get, path = "/api/v1/inbox", tag = "notifications", operation_id = "inbox",
    params(InboxQuery),
    responses(
        (status = 200, body = InboxPage, headers(
            ("Link" = String, description = "`<URL>; rel=\"next\"` when more notices exist"),
            ("X-Next-Cursor" = String, description = "The next page's `cursor`, when more notices exist"))),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 422, description = "`invalid_limit` (`limit`, 1–200) or `invalid_cursor` (`cursor`)", body = ErrorShape),
        QueryRejection))]
pub(crate) async fn inbox(
    State(state): State<AppState>,
    actor: Actor,
    OriginalUri(uri): OriginalUri,
    ApiQuery(q): ApiQuery<InboxQuery>,
) -> ApiResult<(HeaderMap, Json<InboxPage>)> {
    let (page, next) = inbox_page(&state, &actor, &q).await?;
    Ok((paging::headers(&uri, next.as_deref()), Json(page)))
}

/// A page of `actor`'s inbox for `q`, with the next page's cursor: shared
/// by the API and the inbox page.
///
/// # Errors
/// 422 for a bad limit or cursor; database errors.
pub(crate) async fn inbox_page(
    state: &AppState,
    actor: &Actor,
    q: &InboxQuery,
) -> ApiResult<(InboxPage, Option<String>)> {
    let limit = paging::page_size(q.limit, 50, 200)?;
    let before = q.cursor.as_deref().map(paging::decode).transpose()?;
    let mut items = state
        .store
        .inbox(actor.user.id, q.unread, before, limit + 1)
        .await?;
    let next = paging::split(&mut items, limit, |n| n.id);
    let unread = state.store.unread_count(actor.user.id).await?;
    Ok((InboxPage { unread, items }, next))
}

/// Answer of `POST /api/v1/inbox/{id}/read`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Unread {
    /// Unread notices left.
    pub unread: i64,
}

/// Mark one notice read.
#[utoipa::path(post, path = "/api/v1/inbox/{id}/read", tag = "notifications", operation_id = "mark_read",
    params(("id" = i64, Path, description = "Notice id")),
    responses(
        (status = 200, description = "Marked read", body = Unread),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`csrf_failed`: cookie sign-in without a matching `X-CSRF-Token`", body = ErrorShape),
        (status = 404, description = "No such notice in the caller's inbox", body = ErrorShape)))]
pub(crate) async fn read_one(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Unread>> {
    let now = state.clock.now().epoch_ms();
    if !state
        .store
        .mark_read(actor.user.id, parse_id(&id)?, now)
        .await?
    {
        return Err(ApiError::not_found());
    }
    let unread = state.store.unread_count(actor.user.id).await?;
    crate::live::publish_inbox(&state, actor.user.id);
    Ok(Json(Unread { unread }))
}

/// Answer of `POST /api/v1/inbox/read-all`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReadAll {
    /// Unread notices left: 0.
    pub unread: i64,
    /// Notices this call marked read.
    pub updated: u64,
}

/// Mark every notice in the caller's inbox read.
#[utoipa::path(post, path = "/api/v1/inbox/read-all", tag = "notifications", operation_id = "mark_all_read",
    responses(
        (status = 200, description = "All read", body = ReadAll),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`csrf_failed`: cookie sign-in without a matching `X-CSRF-Token`", body = ErrorShape)))]
pub(crate) async fn read_all(
    State(state): State<AppState>,
    actor: Actor,
) -> ApiResult<Json<ReadAll>> {
    let now = state.clock.now().epoch_ms();
    let updated = state.store.mark_all_read(actor.user.id, now).await?;
    crate::live::publish_inbox(&state, actor.user.id);
    Ok(Json(ReadAll { unread: 0, updated }))
}

/// Preferences as the API shows them (the webhook secret never leaves
/// except once, when it is generated).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PreferencesView {
    /// In-app inbox on.
    pub inbox: bool,
    /// Offers muted while off duty.
    pub mute_offers_off_duty: bool,
    /// Personal webhook URL.
    pub webhook_url: Option<String>,
    /// Whether a signing secret is set.
    pub webhook_secret_set: bool,
    /// The generated secret, only in the answer that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
}

fn view(p: Preferences, fresh_secret: Option<String>) -> PreferencesView {
    PreferencesView {
        inbox: p.inbox,
        mute_offers_off_duty: p.mute_offers_off_duty,
        webhook_url: p.webhook_url,
        webhook_secret_set: p.webhook_secret.is_some(),
        webhook_secret: fresh_secret,
    }
}

/// The caller's notification preferences (the webhook secret itself is
/// never shown again after it was generated).
#[utoipa::path(get, path = "/api/v1/notification-preferences", tag = "notifications", operation_id = "get_notification_preferences",
    responses(
        (status = 200, body = PreferencesView),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape)))]
pub(crate) async fn preferences(
    State(state): State<AppState>,
    actor: Actor,
) -> ApiResult<Json<PreferencesView>> {
    let p = state.store.notification_preferences(actor.user.id).await?;
    Ok(Json(view(p, None)))
}

/// Body of `PUT /api/v1/notification-preferences`; absent fields keep
/// their value, `"webhook_url": null` removes the webhook.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesBody {
    /// In-app inbox on or off.
    pub inbox: Option<bool>,
    /// Mute offers while off duty.
    pub mute_offers_off_duty: Option<bool>,
    /// Personal Standard Webhooks endpoint (`http(s)://...`), or null.
    #[serde(default, with = "double_option")]
    pub webhook_url: Option<Option<String>>,
    /// `whsec_<base64>`; generated when a URL is set without one.
    pub webhook_secret: Option<String>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

/// The host of a WeCom group bot's webhook.
pub const WECOM_HOST: &str = "qyapi.weixin.qq.com";
/// The host of a DingTalk group bot's webhook.
pub const DINGTALK_HOST: &str = "oapi.dingtalk.com";

/// Whether `ip` is on this machine or a private, link-local, shared or
/// otherwise non-public network (RFC 1918, RFC 6598, RFC 4193, ...).
fn is_internal(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// Checks an address the server will send notifications to.
///
/// Unless `allow_private` (config `notify_allow_private_urls`): only
/// `https://`, never a host on this machine or a private network (IP
/// literals and `localhost`-style names; names that resolve to such
/// addresses are the operator's firewall's business), and WeCom/DingTalk
/// bots only at their services' hosts.
///
/// # Errors
/// 422 naming `field`: `invalid_url` (not an https:// address),
/// `private_url` (this machine or a private network), `wrong_bot_host`
/// (a WeCom or DingTalk bot elsewhere than at its service).
pub fn check_url(field: &str, url: &str, kind: Option<&str>, allow_private: bool) -> ApiResult<()> {
    let bad = |msg: &str| Err(ApiError::invalid(field, "invalid_url", msg.to_string()));
    let refuse =
        |code: &'static str, msg: &str| Err(ApiError::invalid(field, code, msg.to_string()));
    let Ok(u) = reqwest::Url::parse(url.trim()) else {
        return bad("give the full address, starting with https://");
    };
    let Some(host) = u.host_str().map(str::to_ascii_lowercase) else {
        return bad("give the full address, starting with https://");
    };
    if allow_private {
        return if matches!(u.scheme(), "http" | "https") {
            Ok(())
        } else {
            bad("give an absolute http:// or https:// address")
        };
    }
    if u.scheme() != "https" {
        return bad("the address must start with https://");
    }
    let name = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.');
    let internal = match name.parse::<std::net::IpAddr>() {
        Ok(ip) => is_internal(ip),
        Err(_) => {
            name == "localhost"
                || name.ends_with(".localhost")
                || name.ends_with(".local")
                || name.ends_with(".internal")
                || !name.contains('.')
        }
    };
    if internal {
        return refuse(
            "private_url",
            "the address must be on the internet, not on this machine or a private network",
        );
    }
    match kind {
        Some("wecom") if name != WECOM_HOST => refuse(
            "wrong_bot_host",
            "a WeCom group bot's address starts with https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=",
        ),
        Some("dingtalk") if name != DINGTALK_HOST => refuse(
            "wrong_bot_host",
            "a DingTalk group bot's address starts with https://oapi.dingtalk.com/robot/send?access_token=",
        ),
        _ => Ok(()),
    }
}

fn check_webhook_secret(secret: &str) -> ApiResult<()> {
    if channels::valid_webhook_secret(secret) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "secret",
            "invalid_secret",
            "a webhook secret is whsec_ followed by base64 (leave it out to have one generated)",
        ))
    }
}

/// Change the caller's notification preferences; absent fields keep their
/// value.
///
/// Setting a webhook URL without a secret generates a `whsec_` secret
/// (Standard Webhooks signing), shown once in this answer;
/// `"webhook_url": null` removes the webhook and its secret.
#[utoipa::path(put, path = "/api/v1/notification-preferences", tag = "notifications", operation_id = "set_notification_preferences",
    request_body = PreferencesBody,
    responses(
        (status = 200, description = "The preferences as stored", body = PreferencesView),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`csrf_failed`: cookie sign-in without a matching `X-CSRF-Token`", body = ErrorShape),
        (status = 422, description = "`invalid_url` (field `webhook_url`: an absolute http(s) URL) or `invalid_secret` (`webhook_secret`: `whsec_` and base64)", body = ErrorShape),
        BodyRejection))]
pub(crate) async fn set_preferences(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(body): ApiJson<PreferencesBody>,
) -> ApiResult<Json<PreferencesView>> {
    let mut p = state.store.notification_preferences(actor.user.id).await?;
    if let Some(v) = body.inbox {
        p.inbox = v;
    }
    if let Some(v) = body.mute_offers_off_duty {
        p.mute_offers_off_duty = v;
    }
    let mut fresh = None;
    if let Some(url) = body.webhook_url {
        match url {
            None => {
                p.webhook_url = None;
                p.webhook_secret = None;
            }
            Some(url) => {
                check_url(
                    "webhook_url",
                    &url,
                    None,
                    state.config.notify_allow_private_urls,
                )?;
                p.webhook_url = Some(url);
            }
        }
    }
    if let Some(secret) = body.webhook_secret {
        check_webhook_secret(&secret).map_err(|mut e| {
            e.field = Some("webhook_secret".into());
            e
        })?;
        p.webhook_secret = Some(secret);
    }
    if p.webhook_url.is_some() && p.webhook_secret.is_none() {
        let s = channels::new_webhook_secret();
        p.webhook_secret = Some(s.clone());
        fresh = Some(s);
    }
    let now = state.clock.now().epoch_ms();
    state
        .store
        .set_notification_preferences(actor.user.id, &p, now)
        .await?;
    Ok(Json(view(p, fresh)))
}

fn require_coordinator(actor: &Actor) -> ApiResult<()> {
    if actor.is_admin() || actor.has(Role::Coordinator) {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

/// A bot as the API shows it: the URL (it carries the bot's key) is shown
/// only as scheme and host.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BotView {
    /// The bot.
    #[serde(flatten)]
    pub bot: GroupBot,
    /// e.g. `https://qyapi.weixin.qq.com`.
    pub url_host: String,
    /// Whether a signing secret is set.
    pub signed: bool,
    /// A generated webhook secret, only in the answer that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

fn bot_view(bot: GroupBot, fresh_secret: Option<String>) -> BotView {
    let url_host = reqwest::Url::parse(&bot.url)
        .map(|u| format!("{}://{}", u.scheme(), u.host_str().unwrap_or("")))
        .unwrap_or_default();
    BotView {
        signed: bot.secret.is_some(),
        url_host,
        bot,
        secret: fresh_secret,
    }
}

/// The group bots and webhooks of a unit; URLs show only scheme and host
/// (the full URL carries the bot's key).
#[utoipa::path(get, path = "/api/v1/org-units/{id}/bots", tag = "notifications", operation_id = "list_bots",
    params(("id" = i64, Path, description = "Org-unit id")),
    responses(
        (status = 200, body = Vec<BotView>),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: not a coordinator or admin, or the unit is readable but not managed by the caller", body = ErrorShape),
        (status = 404, description = "No such unit, or not readable by the caller", body = ErrorShape)))]
pub(crate) async fn bots(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<BotView>>> {
    require_coordinator(&actor)?;
    let unit = managed_unit(&state, &actor, parse_id(&id)?).await?;
    let bots = state.store.bots_of_unit(unit.id).await?;
    Ok(Json(bots.into_iter().map(|b| bot_view(b, None)).collect()))
}

/// Body of `POST /api/v1/org-units/{id}/bots`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BotBody {
    /// `wecom`, `dingtalk` or `webhook`.
    pub kind: String,
    /// Label, e.g. `玄武区调度群`.
    pub name: String,
    /// The bot's webhook URL as the chat app shows it.
    pub url: String,
    /// DingTalk: the `SEC...` signing secret (optional); webhook: `whsec_...`
    /// (generated when left out).
    pub secret: Option<String>,
    /// `zh-CN` (default) or `en`.
    pub locale: Option<String>,
}

/// Add a group bot (WeCom, DingTalk) or a generic webhook to a unit; it
/// hears about events of the unit's subtree.
///
/// A `webhook` without a secret gets a generated `whsec_` secret, shown
/// once in this answer.
#[utoipa::path(post, path = "/api/v1/org-units/{id}/bots", tag = "notifications", operation_id = "create_bot",
    params(("id" = i64, Path, description = "Org-unit id")),
    request_body = BotBody,
    responses(
        (status = 201, description = "Added", body = BotView),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: not a coordinator or admin, or the unit is readable but not managed by the caller; or `csrf_failed`", body = ErrorShape),
        (status = 404, description = "No such unit, or not readable by the caller", body = ErrorShape),
        (status = 422, description = "`invalid_kind` (field `kind`), `invalid_name` (`name`), `invalid_url` (`url`), `invalid_locale` (`locale`) or `invalid_secret` (`secret`)", body = ErrorShape),
        BodyRejection))]
pub(crate) async fn create_bot(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<BotBody>,
) -> ApiResult<(StatusCode, Json<BotView>)> {
    require_coordinator(&actor)?;
    let unit = managed_unit(&state, &actor, parse_id(&id)?).await?;
    let Ok(kind) = body.kind.parse::<BotKind>() else {
        return Err(ApiError::invalid(
            "kind",
            "invalid_kind",
            "kind is wecom, dingtalk or webhook",
        ));
    };
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid(
            "name",
            "invalid_name",
            "give a name of 1 to 100 characters",
        ));
    }
    check_url(
        "url",
        &body.url,
        Some(kind.as_str()),
        state.config.notify_allow_private_urls,
    )?;
    let Ok(locale) = body.locale.as_deref().unwrap_or("zh-CN").parse::<Locale>() else {
        return Err(ApiError::invalid(
            "locale",
            "invalid_locale",
            "locale is zh-CN or en",
        ));
    };
    let mut secret = body.secret.filter(|s| !s.trim().is_empty());
    let mut fresh = None;
    if kind == BotKind::Webhook {
        match &secret {
            Some(s) => check_webhook_secret(s)?,
            None => {
                let s = channels::new_webhook_secret();
                secret = Some(s.clone());
                fresh = Some(s);
            }
        }
    } else if kind == BotKind::Dingtalk && secret.as_deref().is_some_and(|s| !s.starts_with("SEC"))
    {
        return Err(ApiError::invalid(
            "secret",
            "invalid_secret",
            "a DingTalk signing secret starts with SEC (copy it from the bot's security settings), or leave it out",
        ));
    } else if kind == BotKind::Wecom && secret.is_some() {
        return Err(ApiError::invalid(
            "secret",
            "invalid_secret",
            "WeCom group bots are not signed; leave the secret out",
        ));
    }
    let url = body.url.trim();
    if state
        .store
        .bots_of_unit(unit.id)
        .await?
        .iter()
        .any(|b| b.url == url)
    {
        return Err(ApiError {
            field: Some("url".into()),
            ..ApiError::conflict(
                "bot_exists",
                "this unit already has a bot with this address",
            )
        });
    }
    let bot = state
        .store
        .create_bot(
            &NewBot {
                org_unit_id: unit.id,
                kind,
                name,
                url,
                secret: secret.as_deref(),
                locale,
                created_by: actor.user.id,
            },
            state.clock.now().epoch_ms(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(bot_view(bot, fresh))))
}

async fn unit_bot(state: &AppState, actor: &Actor, id: &str, bot_id: &str) -> ApiResult<GroupBot> {
    require_coordinator(actor)?;
    let unit = managed_unit(state, actor, parse_id(id)?).await?;
    match state.store.bot(parse_id(bot_id)?).await? {
        Some(b) if b.org_unit_id == unit.id => Ok(b),
        _ => Err(ApiError::not_found()),
    }
}

/// Remove a unit's bot.
#[utoipa::path(delete, path = "/api/v1/org-units/{id}/bots/{bot_id}", tag = "notifications", operation_id = "delete_bot",
    params(("id" = i64, Path, description = "Org-unit id"), ("bot_id" = i64, Path, description = "Bot id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: not a coordinator or admin, or the unit is readable but not managed by the caller; or `csrf_failed`", body = ErrorShape),
        (status = 404, description = "No such unit or bot, or not readable by the caller", body = ErrorShape)))]
pub(crate) async fn delete_bot(
    State(state): State<AppState>,
    actor: Actor,
    Path((id, bot_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let bot = unit_bot(&state, &actor, &id, &bot_id).await?;
    state
        .store
        .delete_bot(bot.id, state.clock.now().epoch_ms())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Answer of `POST /api/v1/org-units/{id}/bots/{bot_id}/test`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BotTestQueued {
    /// The outbox event queued for the bot (`null` only for an event with a
    /// dedupe key already written, which a test never has).
    pub event_id: Option<i64>,
}

/// Send a test message to a unit's bot, through the outbox like any event.
#[utoipa::path(post, path = "/api/v1/org-units/{id}/bots/{bot_id}/test", tag = "notifications", operation_id = "test_bot",
    params(("id" = i64, Path, description = "Org-unit id"), ("bot_id" = i64, Path, description = "Bot id")),
    responses(
        (status = 202, description = "Queued; the delivery happens in the background", body = BotTestQueued),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: not a coordinator or admin, or the unit is readable but not managed by the caller; or `csrf_failed`", body = ErrorShape),
        (status = 404, description = "No such unit or bot, or not readable by the caller", body = ErrorShape)))]
pub(crate) async fn test_bot(
    State(state): State<AppState>,
    actor: Actor,
    Path((id, bot_id)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<BotTestQueued>)> {
    let bot = unit_bot(&state, &actor, &id, &bot_id).await?;
    let event = state
        .store
        .enqueue(
            NewEvent {
                org_unit_id: Some(bot.org_unit_id),
                bot_id: Some(bot.id),
                ..NewEvent::of(EventKind::BotTest)
            },
            state.clock.now().epoch_ms(),
        )
        .await?;
    state.outbox_wake.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        Json(BotTestQueued { event_id: event }),
    ))
}

/// Query of `GET /api/v1/outbox/dead`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadQuery {
    /// Page size, 1–500 (default 500), newest first.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The next page: the cursor of the previous page's `Link` header.
    pub cursor: Option<String>,
}

/// Deliveries the outbox gave up on (all retries failed): the caller's
/// subtree for coordinators, everything for admins; newest first, a page
/// at a time (`Link: <…>; rel="next"` when more exist).
#[utoipa::path(get, path = "/api/v1/outbox/dead", tag = "notifications", operation_id = "dead_deliveries",
    params(DeadQuery),
    responses(
        (status = 200, body = Vec<homefront_store::outbox::DeadDelivery>, headers(
            ("Link" = String, description = "`<URL>; rel=\"next\"` when more exist"),
            ("X-Next-Cursor" = String, description = "The next page's `cursor`, when more exist"))),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden` for roles other than coordinator and admin", body = ErrorShape),
        (status = 422, description = "`invalid_limit` (`limit`, 1–500) or `invalid_cursor` (`cursor`)", body = ErrorShape),
        crate::api::openapi::QueryRejection))]
async fn dead(
    State(state): State<AppState>,
    actor: Actor,
    OriginalUri(uri): OriginalUri,
    ApiQuery(q): ApiQuery<DeadQuery>,
) -> ApiResult<(HeaderMap, Json<Vec<homefront_store::outbox::DeadDelivery>>)> {
    require_coordinator(&actor)?;
    let limit = paging::page_size(q.limit, 500, 500)?;
    let before = q.cursor.as_deref().map(paging::decode).transpose()?;
    let scopes: Option<Vec<String>> = actor
        .managed_scopes()
        .map(|s| s.iter().map(|p| p.as_str().to_string()).collect());
    let mut rows = state
        .store
        .dead_deliveries(scopes.as_deref(), before, limit + 1)
        .await?;
    let next = paging::split(&mut rows, limit, |d| d.id);
    Ok((paging::headers(&uri, next.as_deref()), Json(rows)))
}

async fn order_event(state: &AppState, actor: &Actor, order_id: i64) -> Option<Event> {
    let order = state.store.order(order_id).await.ok()??;
    let mut access = crate::privacy::order_access(actor, &order, false);
    if access.is_none() {
        let offered = state
            .store
            .was_offered(order_id, actor.user.id)
            .await
            .ok()?;
        access = crate::privacy::order_access(actor, &order, offered);
    }
    access?;
    Some(
        Event::default().event("order").data(
            json!({"order_id": order.id, "state": order.state, "updated_at": order.updated_at})
                .to_string(),
        ),
    )
}

/// Live updates as server-sent events.
///
/// Events: `ready` (`{"unread": n}`, first), `order`
/// (`{"order_id", "state", "updated_at"}` for orders the caller may see),
/// `inbox` (`{"unread": n}`) and `reload` (the stream fell behind:
/// refetch). A keep-alive comment every 15 seconds. The stream ends when
/// its session does (sign-out, a password reset, expiry), when the
/// account's roles change, or when a volunteer is suspended; a suspended
/// volunteer cannot open one.
#[utoipa::path(get, path = "/api/v1/events", tag = "notifications", operation_id = "event_stream",
    responses(
        (status = 200, description = "An endless `text/event-stream`; each event's data is a JSON object", content_type = "text/event-stream", body = String),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`account_suspended`: a suspended volunteer", body = ErrorShape)))]
async fn events(
    State(state): State<AppState>,
    actor: Actor,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    crate::live::may_stream(&state, &actor).await?;
    let guard = (state.clone(), actor.clone());
    // Subscribe before answering, so nothing after `ready` is missed.
    let orders = state.live.subscribe();
    let inbox = state.inbox.subscribe();
    let unread = state.store.unread_count(actor.user.id).await?;
    let ready = Event::default()
        .event("ready")
        .data(json!({ "unread": unread }).to_string());
    let stream = futures::stream::unfold(
        (state, actor, orders, inbox, Some(ready)),
        |(state, actor, mut orders, mut inbox, first)| async move {
            if let Some(ev) = first {
                return Some((Ok(ev), (state, actor, orders, inbox, None)));
            }
            loop {
                let ev = tokio::select! {
                    r = orders.recv() => match r {
                        Ok(c) => order_event(&state, &actor, c.order_id).await,
                        Err(RecvError::Lagged(_)) => Some(Event::default().event("reload").data("{}")),
                        Err(RecvError::Closed) => return None,
                    },
                    r = inbox.recv() => match r {
                        Ok(c) if c.user_id == actor.user.id => {
                            let unread = state.store.unread_count(actor.user.id).await.unwrap_or(0);
                            Some(Event::default().event("inbox").data(json!({ "unread": unread }).to_string()))
                        }
                        Ok(_) => None,
                        Err(RecvError::Lagged(_)) => Some(Event::default().event("reload").data("{}")),
                        Err(RecvError::Closed) => return None,
                    },
                };
                if let Some(ev) = ev {
                    return Some((Ok(ev), (state, actor, orders, inbox, None)));
                }
            }
        },
    );
    let stream = crate::live::while_signed_in(guard.0, guard.1, stream);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

#[cfg(test)]
mod url_tests {
    use super::check_url;

    #[test]
    fn bot_addresses_must_be_public_https_at_the_services_host() {
        let ok = |u: &str, k: Option<&str>| check_url("url", u, k, false).is_ok();
        assert!(ok(
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
            Some("wecom")
        ));
        assert!(ok(
            "https://oapi.dingtalk.com/robot/send?access_token=t",
            Some("dingtalk")
        ));
        assert!(ok("https://hooks.example.org/homefront", Some("webhook")));
        for bad in [
            "http://hooks.example.org/h",
            "https://127.0.0.1:8091/api/v1/orders",
            "https://169.254.169.254/latest/meta-data/",
            "https://10.0.0.5/h",
            "https://192.168.1.1/h",
            "https://100.64.0.1/h",
            "https://[::1]/h",
            "https://[::ffff:127.0.0.1]/h",
            "https://[fd00::1]/h",
            "https://localhost/h",
            "https://intranet/h",
            "https://svc.internal/h",
            "not a url",
        ] {
            assert!(!ok(bad, Some("webhook")), "{bad}");
        }
        // A WeCom bot at DingTalk's address, and the other way round.
        assert!(!ok(
            "https://oapi.dingtalk.com/robot/send?access_token=t",
            Some("wecom")
        ));
        assert!(!ok(
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
            Some("dingtalk")
        ));
        let err =
            check_url("url", "http://127.0.0.1:9999/hook", Some("webhook"), false).unwrap_err();
        assert_eq!(
            (err.code, err.field.as_deref()),
            ("invalid_url", Some("url"))
        );
        // Allowed for an operator's own network (and tests).
        assert!(check_url("url", "http://127.0.0.1:9999/hook", Some("wecom"), true).is_ok());
    }
}
