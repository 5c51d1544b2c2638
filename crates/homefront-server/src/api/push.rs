//! Web Push subscriptions: `GET /push/key`, `GET|POST /push/subscriptions`,
//! `DELETE /push/subscriptions/{id}`.
//!
//! A browser that opts in (the volunteer page's "turn on alerts") sends
//! `PushSubscription.toJSON()` here; the subscription belongs to the
//! session that sent it, so signing out silences the phone. See
//! `notify::push` for what is sent.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use homefront_store::push::{NewSubscription, PushSubscription};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::api::openapi::{BodyRejection, ErrorShape};
use crate::api::{ApiJson, parse_id};
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};

/// Push routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/push/key", get(key))
        .route("/push/subscriptions", get(list).post(subscribe))
        .route("/push/subscriptions/{id}", delete(unsubscribe))
}

/// The server's VAPID public key.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PushKey {
    /// base64url (no padding) of the uncompressed P-256 point (65 bytes):
    /// pass it as `applicationServerKey` to `PushManager.subscribe`.
    pub public_key: String,
}

/// The VAPID public key browsers subscribe to (RFC 8292 §3.2).
#[utoipa::path(get, path = "/api/v1/push/key", tag = "notifications", operation_id = "push_key",
    security(()),
    responses(
        (status = 200, body = PushKey),
        (status = 500, description = "The key could not be read or made", body = ErrorShape)))]
pub(crate) async fn key(State(state): State<AppState>) -> ApiResult<Json<PushKey>> {
    let v = crate::notify::push::vapid(&state)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(PushKey {
        public_key: v.public_key.clone(),
    }))
}

/// The caller's push subscriptions (one per browser), newest first.
#[utoipa::path(get, path = "/api/v1/push/subscriptions", tag = "notifications", operation_id = "push_subscriptions",
    responses(
        (status = 200, body = Vec<PushSubscription>),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    actor: Actor,
) -> ApiResult<Json<Vec<PushSubscription>>> {
    Ok(Json(
        state
            .store
            .push_subscriptions_of(actor.user.id, state.clock.now().epoch_ms())
            .await?,
    ))
}

/// The keys of a subscription, as the browser gives them.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionKeys {
    /// base64url P-256 public key of the browser (65 bytes uncompressed).
    pub p256dh: String,
    /// base64url 16-byte authentication secret.
    pub auth: String,
}

/// `POST /api/v1/push/subscriptions` body: `PushSubscription.toJSON()`,
/// with an optional label.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Subscribe {
    /// The push service's URL for this browser.
    pub endpoint: String,
    /// When the browser will drop it, epoch ms (usually null; ignored).
    #[serde(default, rename = "expirationTime")]
    pub expiration_time: Option<f64>,
    /// The encryption keys (RFC 8291).
    pub keys: SubscriptionKeys,
    /// What the browser calls itself, e.g. `Chrome on Android` (up to 80
    /// characters).
    #[serde(default)]
    pub label: Option<String>,
}

/// Turn on alerts for this browser: saves its push subscription under the
/// current session (sending it again renews it).
///
/// The endpoint is checked like a webhook's address: `https://` on the
/// internet unless `notify_allow_private_urls` is on.
#[utoipa::path(post, path = "/api/v1/push/subscriptions", tag = "notifications", operation_id = "push_subscribe",
    request_body = Subscribe,
    responses(
        (status = 201, description = "Subscribed (or renewed)", body = PushSubscription),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`csrf_failed`: cookie sign-in without a matching `X-CSRF-Token`", body = ErrorShape),
        (status = 422, description = "`invalid_url` or `private_url` (field `endpoint`); `invalid_push_key` (field `keys.p256dh` or `keys.auth`)", body = ErrorShape),
        BodyRejection))]
pub(crate) async fn subscribe(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<Subscribe>,
) -> ApiResult<(StatusCode, Json<PushSubscription>)> {
    let endpoint = req.endpoint.trim();
    crate::api::notifications::check_url(
        "endpoint",
        endpoint,
        None,
        state.config.notify_allow_private_urls,
    )?;
    if endpoint.len() > 2000 {
        return Err(ApiError::invalid(
            "endpoint",
            "invalid_url",
            "the address is longer than 2000 characters",
        ));
    }
    crate::notify::push::check_keys(&req.keys.p256dh, &req.keys.auth)
        .map_err(|(field, why)| ApiError::invalid(field, "invalid_push_key", why))?;
    let label: Option<String> = req
        .label
        .as_deref()
        .map(|l| l.trim().chars().take(80).collect::<String>())
        .filter(|l| !l.is_empty());
    let sub = state
        .store
        .upsert_push_subscription(
            &NewSubscription {
                user_id: actor.user.id,
                session_token_hash: &actor.token_hash,
                endpoint,
                p256dh: req.keys.p256dh.trim(),
                auth: req.keys.auth.trim(),
                label: label.as_deref(),
            },
            state.clock.now().epoch_ms(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(sub)))
}

/// Turn off alerts for one browser.
#[utoipa::path(delete, path = "/api/v1/push/subscriptions/{id}", tag = "notifications", operation_id = "push_unsubscribe",
    params(("id" = i64, Path, description = "Subscription id")),
    responses(
        (status = 204, description = "Ended: that browser gets no more alerts"),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`csrf_failed`: cookie sign-in without a matching `X-CSRF-Token`", body = ErrorShape),
        (status = 404, description = "No such subscription of the caller", body = ErrorShape)))]
pub(crate) async fn unsubscribe(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id)?;
    if state
        .store
        .end_push_subscription(actor.user.id, id, state.clock.now().epoch_ms())
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}
