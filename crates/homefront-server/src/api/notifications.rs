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

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use futures::Stream;
use homefront_domain::Role;
use homefront_store::outbox::{GroupBot, NewBot, NewEvent, Notification, Preferences, kind};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::AppState;
use crate::api::org_units::managed_unit;
use crate::api::{ApiJson, parse_id};
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
#[derive(Debug, Deserialize)]
pub struct InboxQuery {
    /// Only unread notices.
    #[serde(default)]
    pub unread: bool,
    /// At most this many (default 50, at most 200).
    pub limit: Option<i64>,
}

/// The inbox answer.
#[derive(Debug, Serialize)]
pub struct InboxPage {
    /// Unread notices in all.
    pub unread: i64,
    /// Newest first.
    pub items: Vec<Notification>,
}

pub(crate) async fn inbox(
    State(state): State<AppState>,
    actor: Actor,
    Query(q): Query<InboxQuery>,
) -> ApiResult<Json<InboxPage>> {
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let items = state.store.inbox(actor.user.id, q.unread, limit).await?;
    let unread = state.store.unread_count(actor.user.id).await?;
    Ok(Json(InboxPage { unread, items }))
}

pub(crate) async fn read_one(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
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
    Ok(Json(json!({ "unread": unread })))
}

pub(crate) async fn read_all(
    State(state): State<AppState>,
    actor: Actor,
) -> ApiResult<Json<Value>> {
    let now = state.clock.now().epoch_ms();
    let updated = state.store.mark_all_read(actor.user.id, now).await?;
    crate::live::publish_inbox(&state, actor.user.id);
    Ok(Json(json!({ "updated": updated, "unread": 0 })))
}

/// Preferences as the API shows them (the webhook secret never leaves
/// except once, when it is generated).
#[derive(Debug, Serialize)]
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

pub(crate) async fn preferences(
    State(state): State<AppState>,
    actor: Actor,
) -> ApiResult<Json<PreferencesView>> {
    let p = state.store.notification_preferences(actor.user.id).await?;
    Ok(Json(view(p, None)))
}

/// Body of `PUT /api/v1/notification-preferences`; absent fields keep
/// their value, `"webhook_url": null` removes the webhook.
#[derive(Debug, Deserialize)]
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

fn check_url(field: &str, url: &str) -> ApiResult<()> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => Err(ApiError::invalid(
            field,
            "invalid_url",
            "give an absolute http:// or https:// URL",
        )),
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
                check_url("webhook_url", &url)?;
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
#[derive(Debug, Serialize)]
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
#[derive(Debug, Deserialize)]
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

pub(crate) async fn create_bot(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<BotBody>,
) -> ApiResult<(StatusCode, Json<BotView>)> {
    require_coordinator(&actor)?;
    let unit = managed_unit(&state, &actor, parse_id(&id)?).await?;
    if !matches!(body.kind.as_str(), "wecom" | "dingtalk" | "webhook") {
        return Err(ApiError::invalid(
            "kind",
            "invalid_kind",
            "kind is wecom, dingtalk or webhook",
        ));
    }
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid(
            "name",
            "invalid_name",
            "give a name of 1 to 100 characters",
        ));
    }
    check_url("url", &body.url)?;
    let locale = body.locale.as_deref().unwrap_or("zh-CN");
    if !matches!(locale, "zh-CN" | "en") {
        return Err(ApiError::invalid(
            "locale",
            "invalid_locale",
            "locale is zh-CN or en",
        ));
    }
    let mut secret = body.secret.filter(|s| !s.trim().is_empty());
    let mut fresh = None;
    if body.kind == "webhook" {
        match &secret {
            Some(s) => check_webhook_secret(s)?,
            None => {
                let s = channels::new_webhook_secret();
                secret = Some(s.clone());
                fresh = Some(s);
            }
        }
    } else if body.kind == "wecom" && secret.is_some() {
        return Err(ApiError::invalid(
            "secret",
            "invalid_secret",
            "WeCom group bots are not signed; leave the secret out",
        ));
    }
    let bot = state
        .store
        .create_bot(
            &NewBot {
                org_unit_id: unit.id,
                kind: &body.kind,
                name,
                url: &body.url,
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

pub(crate) async fn test_bot(
    State(state): State<AppState>,
    actor: Actor,
    Path((id, bot_id)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let bot = unit_bot(&state, &actor, &id, &bot_id).await?;
    let event = state
        .store
        .enqueue(
            NewEvent {
                kind: kind::BOT_TEST,
                org_unit_id: Some(bot.org_unit_id),
                bot_id: Some(bot.id),
                ..NewEvent::default()
            },
            state.clock.now().epoch_ms(),
        )
        .await?;
    state.outbox_wake.notify_one();
    Ok((StatusCode::ACCEPTED, Json(json!({ "event_id": event }))))
}

async fn dead(
    State(state): State<AppState>,
    actor: Actor,
) -> ApiResult<Json<Vec<homefront_store::outbox::DeadDelivery>>> {
    require_coordinator(&actor)?;
    let scopes: Option<Vec<String>> = actor
        .managed_scopes()
        .map(|s| s.iter().map(|p| p.as_str().to_string()).collect());
    Ok(Json(state.store.dead_deliveries(scopes.as_deref()).await?))
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

async fn events(
    State(state): State<AppState>,
    actor: Actor,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
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
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
