//! The HTTP channels: WeCom (企业微信) and DingTalk group bots, and
//! generic webhooks signed per Standard Webhooks.
//!
//! - WeCom group bot: `POST` to the bot's webhook URL
//!   (`https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY`) with
//!   `{"msgtype":"markdown","markdown":{"content":"..."}}`; the answer is
//!   `{"errcode":0,"errmsg":"ok"}` on success. Limit: 20 messages a minute
//!   per bot.
//! - DingTalk custom robot: `POST` `{"msgtype":"markdown","markdown":
//!   {"title":"...","text":"..."}}`; with signing ("加签") the URL gets
//!   `&timestamp=<ms>&sign=<urlencode(base64(HMAC-SHA256(secret,
//!   "<ms>\n<secret>")))>`. Same answer shape and limit.
//! - Standard Webhooks: headers `webhook-id` (the delivery id),
//!   `webhook-timestamp` (seconds) and `webhook-signature: v1,<base64
//!   HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, key from the
//!   `whsec_<base64>` secret; signed with `standardwebhooks`, the
//!   convention's own library.
//!
//! Every request carries the idempotent delivery id in `X-Homefront-Delivery`
//! too, so any receiver can drop a repeat.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use homefront_domain::notify::{Channel, EventKind};
use serde_json::{Value, json};
use sha2::Sha256;

use super::templates::Message;

/// How long one send may take, connection to answer, before it counts as
/// failed.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Header carrying the idempotent delivery id on every channel.
pub const DELIVERY_HEADER: &str = "x-homefront-delivery";

/// Why a send failed.
#[derive(Debug)]
pub struct SendError {
    /// HTTP status, when one came back.
    pub http_status: Option<i64>,
    /// What went wrong, without the URL (it carries the bot key).
    pub error: String,
    /// Retrying cannot help (a push subscription the browser dropped).
    pub permanent: bool,
}

/// DingTalk's signature of `timestamp_ms` with `secret`.
pub fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(format!("{timestamp_ms}\n{secret}").as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// A fresh Standard Webhooks secret: `whsec_` and 32 random bytes in base64.
pub fn new_webhook_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("whsec_{}", STANDARD.encode(bytes))
}

/// Whether `secret` is usable for Standard Webhooks signing.
pub fn valid_webhook_secret(secret: &str) -> bool {
    standardwebhooks::Webhook::new(secret).is_ok()
}

/// What to send where.
pub struct Outgoing<'a> {
    /// `wecom`, `dingtalk` or `webhook`.
    pub channel: Channel,
    /// Target URL.
    pub url: &'a str,
    /// Signing secret.
    pub secret: Option<&'a str>,
    /// Idempotent delivery id.
    pub delivery_key: &'a str,
    /// Event kind, e.g. `order_submitted`.
    pub kind: EventKind,
    /// Event data (non-identifying facts only).
    pub data: &'a Value,
    /// Rendered message.
    pub message: &'a Message,
    /// Event time, epoch ms.
    pub event_at: i64,
    /// Now, epoch ms (signing timestamps).
    pub now_ms: i64,
}

/// A request ready to send.
#[derive(Debug)]
pub struct Request {
    /// Where (DingTalk's signature parameters included).
    pub url: reqwest::Url,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// JSON body.
    pub body: String,
}

/// Builds the URL, headers and JSON body of a request (pure, for tests).
///
/// # Errors
/// A message when the URL or secret is unusable.
pub fn build(o: &Outgoing<'_>) -> Result<Request, String> {
    let mut url = reqwest::Url::parse(o.url).map_err(|e| format!("bad URL: {e}"))?;
    let mut headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        (DELIVERY_HEADER.to_string(), o.delivery_key.to_string()),
    ];
    let body = match o.channel {
        Channel::Wecom => json!({"msgtype": "markdown", "markdown": {"content": o.message.body}}),
        Channel::Dingtalk => {
            if let Some(secret) = o.secret.filter(|s| !s.is_empty()) {
                let sign = dingtalk_sign(secret, o.now_ms);
                url.query_pairs_mut()
                    .append_pair("timestamp", &o.now_ms.to_string())
                    .append_pair("sign", &sign);
            }
            json!({"msgtype": "markdown",
                   "markdown": {"title": o.message.title, "text": o.message.body}})
        }
        Channel::Webhook => {
            let ts = chrono::DateTime::from_timestamp_millis(o.event_at)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default();
            json!({"type": o.kind.as_str().replacen('_', ".", 1), "timestamp": ts,
                   "data": o.data, "title": o.message.title, "text": o.message.body})
        }
        other => return Err(format!("{other} is not an HTTP channel")),
    }
    .to_string();
    if o.channel == Channel::Webhook {
        let secret = o.secret.ok_or("webhook without a signing secret")?;
        let wh = standardwebhooks::Webhook::new(secret).map_err(|e| format!("bad secret: {e}"))?;
        let ts = o.now_ms.div_euclid(1000);
        let sig = wh
            .sign(o.delivery_key, ts, body.as_bytes())
            .map_err(|e| format!("signing: {e}"))?;
        headers.push(("webhook-id".into(), o.delivery_key.to_string()));
        headers.push(("webhook-timestamp".into(), ts.to_string()));
        headers.push(("webhook-signature".into(), sig));
    }
    Ok(Request { url, headers, body })
}

/// Sends one request. Success is a 2xx answer whose JSON, if it has an
/// `errcode` (WeCom, DingTalk), says 0.
///
/// # Errors
/// [`SendError`] with the status and a short reason.
pub async fn send(client: &reqwest::Client, o: &Outgoing<'_>) -> Result<i64, SendError> {
    let Request { url, headers, body } = build(o).map_err(|error| SendError {
        http_status: None,
        error,
        permanent: false,
    })?;
    let mut req = client.post(url).timeout(SEND_TIMEOUT).body(body);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = req.send().await.map_err(|e| SendError {
        http_status: None,
        // Without the URL: it holds the bot's key.
        error: format!("request failed: {}", e.without_url()),
        permanent: false,
    })?;
    let status = i64::from(resp.status().as_u16());
    let ok = resp.status().is_success();
    let text = resp.text().await.unwrap_or_default();
    if !ok {
        return Err(SendError {
            http_status: Some(status),
            error: format!("HTTP {status}"),
            permanent: false,
        });
    }
    if let Ok(v) = serde_json::from_str::<Value>(&text)
        && let Some(code) = v.get("errcode").and_then(Value::as_i64)
        && code != 0
    {
        // e.g. 45009 (WeCom) / 130101 (DingTalk): sent too fast.
        return Err(SendError {
            http_status: Some(status),
            error: format!(
                "errcode {code}: {}",
                v.get("errmsg").and_then(Value::as_str).unwrap_or("")
            ),
            permanent: false,
        });
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dingtalk_signature_matches_a_known_value() {
        // HMAC-SHA256("SECxyz", "1581500471000\nSECxyz"), base64.
        let a = dingtalk_sign("SECxyz", 1_581_500_471_000);
        let b = dingtalk_sign("SECxyz", 1_581_500_471_000);
        assert_eq!(a, b);
        assert_eq!(STANDARD.decode(&a).unwrap().len(), 32);
        assert_ne!(a, dingtalk_sign("SECxyz", 1_581_500_471_001));
    }

    #[test]
    fn webhook_secrets_round_trip() {
        assert!(valid_webhook_secret(&new_webhook_secret()));
        assert!(!valid_webhook_secret("whsec_***"));
    }
}
