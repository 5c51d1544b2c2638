//! Web Push: the channel that reaches a locked phone.
//!
//! A message is a `POST` to the browser's push service (RFC 8030 §5) with
//! its payload encrypted to the browser's keys (RFC 8291, `Content-Encoding:
//! aes128gcm`, RFC 8188) and signed by the server's VAPID key (RFC 8292:
//! `Authorization: vapid t=<ES256 JWT>, k=<public key>`). The crate
//! `web-push-native` builds the request (pure Rust on the RustCrypto
//! crates, no OpenSSL; it returns an `http::Request`, which is sent here
//! with the same rustls client as every other channel).
//!
//! Headers (RFC 8030 §5.2–5.4): `TTL` is the offer's remaining time for an
//! offer (an alert for an expired offer is useless) and a day otherwise;
//! `Urgency: high` for offers; `Topic: o<order id>` so a withdrawal
//! replaces an offer the phone has not fetched yet. The delivery id rides in
//! `X-Homefront-Delivery` as on every channel.
//!
//! The payload is JSON `{"title","body","url","tag","kind","order_id"}` made
//! from the event's non-identifying facts only (item, district, window,
//! distance): never a street, phone number or name. `url` is the page a tap
//! opens; `tag` (`order-<id>`) lets the service worker replace an offer's
//! alert when it is taken or withdrawn.
//!
//! The push service answering 404 or 410 means the browser dropped the
//! subscription (RFC 8030 §7.3): it ends, and the delivery stops at once.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use homefront_domain::notify::EventKind;
use homefront_store::outbox::DueDelivery;
use serde_json::{Value, json};
use web_push_native::jwt_simple::algorithms::{
    ECDSAP256KeyPairLike, ECDSAP256PublicKeyLike, ES256KeyPair,
};
use web_push_native::jwt_simple::claims::Claims;
use web_push_native::{Auth, WebPushBuilder, p256};

use super::channels::{DELIVERY_HEADER, SEND_TIMEOUT, SendError};
use super::templates::render_push;
use crate::AppState;

/// The server's VAPID key pair.
pub struct Vapid {
    key: ES256KeyPair,
    /// base64url (no padding) of the uncompressed public point, 65 bytes:
    /// the browser's `applicationServerKey`.
    pub public_key: String,
}

impl std::fmt::Debug for Vapid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vapid")
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

impl Vapid {
    /// The pair of a base64url 32-byte private scalar.
    ///
    /// # Errors
    /// A message when the text is not such a key.
    pub fn from_private(b64: &str) -> Result<Vapid, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(b64.trim().trim_end_matches('='))
            .map_err(|e| format!("vapid_private_key is not base64url: {e}"))?;
        let key = ES256KeyPair::from_bytes(&bytes)
            .map_err(|e| format!("vapid_private_key is not a P-256 private key: {e}"))?;
        let public_key =
            URL_SAFE_NO_PAD.encode(key.public_key().public_key().to_bytes_uncompressed());
        Ok(Vapid { key, public_key })
    }

    /// The `Authorization` header for a message to `endpoint` (RFC 8292
    /// §3): `vapid t=<JWT>, k=<public key>`, the JWT signed with ES256 for
    /// the endpoint's origin (scheme, host and any non-default port: the
    /// crate's own helper leaves the port out), valid 12 hours (at most 24
    /// allowed), with `sub` = `subject`.
    ///
    /// # Errors
    /// A message when the endpoint has no origin or signing fails.
    pub fn authorization(&self, endpoint: &str, subject: &str) -> Result<String, String> {
        let url = reqwest::Url::parse(endpoint).map_err(|e| format!("endpoint: {e}"))?;
        let origin = url.origin().ascii_serialization();
        if origin == "null" {
            return Err("the endpoint has no origin".into());
        }
        let claims = Claims::create(Duration::from_secs(12 * 3600).into())
            .with_audience(origin)
            .with_subject(subject);
        let token = self.key.sign(claims).map_err(|e| format!("signing: {e}"))?;
        Ok(format!("vapid t={token}, k={}", self.public_key))
    }

    /// A fresh pair: (private, public), both base64url.
    pub fn generate() -> (String, String) {
        let key = ES256KeyPair::generate();
        (
            URL_SAFE_NO_PAD.encode(key.to_bytes()),
            URL_SAFE_NO_PAD.encode(key.public_key().public_key().to_bytes_uncompressed()),
        )
    }
}

/// The VAPID key pair: `vapid_private_key` when configured, else the one in
/// the database, made on first use.
///
/// # Errors
/// A message when the configured key is bad or the database fails.
pub async fn vapid(state: &AppState) -> Result<Arc<Vapid>, String> {
    state
        .vapid
        .get_or_try_init(|| async {
            let private = match &state.config.vapid_private_key {
                Some(k) => k.clone(),
                None => {
                    state
                        .store
                        .vapid_key(state.clock.now().epoch_ms(), Vapid::generate)
                        .await
                        .map_err(|e| e.to_string())?
                        .0
                }
            };
            Vapid::from_private(&private).map(Arc::new)
        })
        .await
        .cloned()
}

/// Checks a subscription's keys as the browser gives them
/// (`PushSubscription.toJSON().keys`): `p256dh` a P-256 public point, `auth`
/// 16 bytes, both base64url.
///
/// # Errors
/// The name of the bad key and why.
pub fn check_keys(p256dh: &str, auth: &str) -> Result<(), (&'static str, String)> {
    let decode = |s: &str| URL_SAFE_NO_PAD.decode(s.trim().trim_end_matches('='));
    let point = decode(p256dh).map_err(|_| ("keys.p256dh", "not base64url".to_string()))?;
    p256::PublicKey::from_sec1_bytes(&point)
        .map_err(|_| ("keys.p256dh", "not a P-256 public key".to_string()))?;
    let secret = decode(auth).map_err(|_| ("keys.auth", "not base64url".to_string()))?;
    if secret.len() != 16 {
        return Err(("keys.auth", "the authentication secret has 16 bytes".into()));
    }
    Ok(())
}

/// The page a tap on the alert opens, for the recipient.
async fn target_url(state: &AppState, d: &DueDelivery, data: &Value) -> String {
    let id = |k: &str| data.get(k).and_then(Value::as_i64);
    match d.kind {
        EventKind::OfferMade => id("offer_id").map_or_else(
            || "/volunteer".to_string(),
            |o| format!("/volunteer#offer-{o}"),
        ),
        EventKind::OfferTaken | EventKind::OfferWithdrawn => "/volunteer".to_string(),
        _ => match d.order_id {
            Some(o) if d.kind == EventKind::OrderEscalated => format!("/board/orders/{o}"),
            Some(o) => {
                let assignee = state
                    .store
                    .order(o)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|r| r.assignee_user_id);
                if assignee.is_some() && assignee == d.user_id {
                    format!("/assignments/{o}")
                } else {
                    format!("/orders/{o}")
                }
            }
            None => "/inbox".to_string(),
        },
    }
}

/// The JSON payload of delivery `d` (before encryption).
pub async fn payload(state: &AppState, d: &DueDelivery, data: &Value) -> String {
    let m = render_push(d.kind, data, d.locale.into());
    let order_id = d.order_id;
    json!({
        "title": m.title,
        "body": m.body,
        "url": target_url(state, d, data).await,
        "tag": order_id.map_or_else(|| d.kind.to_string(), |o| format!("order-{o}")),
        "kind": d.kind,
        "order_id": order_id,
    })
    .to_string()
}

fn failure(http_status: Option<i64>, error: impl Into<String>, permanent: bool) -> SendError {
    SendError {
        http_status,
        error: error.into(),
        permanent,
    }
}

/// Sends push delivery `d` at `now_ms`. Success is any 2xx (push services
/// answer 201 Created). 404 and 410 end the subscription and fail for good,
/// as does a subscription that ended (signed out) before it was sent.
///
/// # Errors
/// [`SendError`]; `permanent` when retrying cannot help.
pub async fn send(
    state: &AppState,
    d: &DueDelivery,
    data: &Value,
    now_ms: i64,
) -> Result<i64, SendError> {
    let store = &state.store;
    let db = |e: homefront_store::StoreError| failure(None, format!("database: {e}"), false);
    let sub_id = d
        .push_subscription_id
        .ok_or_else(|| failure(None, "no subscription", true))?;
    let target = store
        .push_target(sub_id, now_ms)
        .await
        .map_err(db)?
        .filter(|t| t.active)
        .ok_or_else(|| {
            failure(
                None,
                "the subscription ended (signed out or unsubscribed)",
                true,
            )
        })?;
    let vapid = vapid(state).await.map_err(|e| failure(None, e, false))?;
    let body = payload(state, d, data).await;
    let bad = |what: &str| failure(None, format!("unusable subscription: {what}"), true);
    let endpoint = target.endpoint.parse().map_err(|_| bad("endpoint"))?;
    let ua_public = URL_SAFE_NO_PAD
        .decode(target.p256dh.trim_end_matches('='))
        .ok()
        .and_then(|b| p256::PublicKey::from_sec1_bytes(&b).ok())
        .ok_or_else(|| bad("p256dh"))?;
    let auth: [u8; 16] = URL_SAFE_NO_PAD
        .decode(target.auth.trim_end_matches('='))
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("auth"))?;
    let authorization = vapid
        .authorization(&target.endpoint, &state.config.push_subject)
        .map_err(|e| failure(None, e, true))?;
    let request = WebPushBuilder::new(endpoint, ua_public, Auth::from(auth))
        .build(body)
        .map_err(|e| failure(None, format!("encrypting: {e}"), true))?;
    let offer = d.kind == EventKind::OfferMade;
    let ttl_s = if offer {
        let expires = data
            .get("expires_at")
            .and_then(Value::as_i64)
            .unwrap_or(now_ms);
        ((expires - now_ms) / 1000).max(30)
    } else {
        86_400
    };
    let (parts, body) = request.into_parts();
    let mut req = state
        .http
        .post(parts.uri.to_string())
        .timeout(SEND_TIMEOUT)
        .header(DELIVERY_HEADER, d.delivery_key.as_str())
        .header("ttl", ttl_s.to_string())
        .header(axum::http::header::AUTHORIZATION, authorization)
        .header("urgency", if offer { "high" } else { "normal" });
    for (name, value) in &parts.headers {
        // reqwest sets the length itself; TTL is set above.
        if name != axum::http::header::CONTENT_LENGTH && name.as_str() != "ttl" {
            req = req.header(name, value);
        }
    }
    if let Some(o) = d.order_id {
        req = req.header("topic", format!("o{o}"));
    }
    let resp = req
        .body(body)
        .send()
        .await
        .map_err(|e| failure(None, format!("request failed: {}", e.without_url()), false))?;
    let status = resp.status().as_u16();
    let code = i64::from(status);
    if resp.status().is_success() {
        store
            .record_push_result(sub_id, None, false, now_ms)
            .await
            .map_err(db)?;
        return Ok(code);
    }
    let gone = matches!(status, 404 | 410);
    let error = format!("HTTP {status}");
    store
        .record_push_result(sub_id, Some(&error), gone, now_ms)
        .await
        .map_err(db)?;
    // 413: the payload can never fit; 400: the request is malformed.
    Err(failure(
        Some(code),
        error,
        gone || matches!(status, 400 | 413),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_round_trips_and_its_public_key_is_an_uncompressed_point() {
        let (private, public) = Vapid::generate();
        let v = Vapid::from_private(&private).unwrap();
        assert_eq!(v.public_key, public);
        let point = URL_SAFE_NO_PAD.decode(&public).unwrap();
        assert_eq!(point.len(), 65);
        assert_eq!(point[0], 4);
        assert!(Vapid::from_private("not a key").is_err());
    }

    #[test]
    fn subscription_keys_are_checked() {
        let (_, public) = Vapid::generate();
        let auth = URL_SAFE_NO_PAD.encode([7u8; 16]);
        assert!(check_keys(&public, &auth).is_ok());
        assert_eq!(check_keys("AAAA", &auth).unwrap_err().0, "keys.p256dh");
        assert_eq!(
            check_keys(&public, &URL_SAFE_NO_PAD.encode([7u8; 8]))
                .unwrap_err()
                .0,
            "keys.auth"
        );
    }
}
