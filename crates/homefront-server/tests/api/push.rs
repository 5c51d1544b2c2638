//! The installed app over HTTP: Web Push to a local push service that
//! checks the VAPID signature (RFC 8292) and decrypts the payload (RFC 8291)
//! with its own code, not the server's crate; retries with the same
//! delivery id, a subscription the push service says is gone, alerts that
//! stop when the session ends; remembered sessions and signing out
//! everywhere; check-in and check-out recorded without network and sent
//! later; the manifest, the service worker and the offline headers.

use homefront_domain::notify::{Channel, DeliveryState, EventKind};
use std::sync::{Arc, Mutex};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus, Uri};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use homefront_domain::{Clock, Role};
use homefront_server::notify;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::dispatch::{Flaw, World, accept, world};
use crate::helpers::{Session, TestApp};
use crate::ui::{browser, sign_in};

/// One message the push service got.
#[derive(Clone, Debug)]
struct Pushed {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

#[derive(Clone, Default)]
struct ServiceState {
    got: Arc<Mutex<Vec<Pushed>>>,
    /// Statuses to answer first, in order; then 201 Created.
    script: Arc<Mutex<Vec<u16>>>,
}

async fn receive(
    State(s): State<ServiceState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> AxumStatus {
    s.got.lock().unwrap().push(Pushed {
        path: uri.path().to_string(),
        headers,
        body: body.to_vec(),
    });
    let mut script = s.script.lock().unwrap();
    if script.is_empty() {
        AxumStatus::CREATED
    } else {
        AxumStatus::from_u16(script.remove(0)).unwrap()
    }
}

/// A push service on 127.0.0.1:0 (RFC 8030 §5: it answers 201 Created),
/// and the browser's side of one subscription: its P-256 key pair and
/// 16-byte authentication secret.
struct PushService {
    origin: String,
    state: ServiceState,
    secret: p256::SecretKey,
    auth: [u8; 16],
}

impl PushService {
    async fn start() -> PushService {
        let state = ServiceState::default();
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let secret = p256::SecretKey::from_slice(&rand::random::<[u8; 32]>()).unwrap();
        PushService {
            origin,
            state,
            secret,
            auth: rand::random(),
        }
    }

    fn answer_next(&self, statuses: &[u16]) {
        self.state
            .script
            .lock()
            .unwrap()
            .extend_from_slice(statuses);
    }

    fn got(&self) -> Vec<Pushed> {
        self.state.got.lock().unwrap().clone()
    }

    /// `PushSubscription.toJSON()` as the browser would send it.
    fn subscription(&self, path: &str) -> Value {
        let public = self.secret.public_key().to_encoded_point(false);
        json!({
            "endpoint": format!("{}{path}", self.origin),
            "expirationTime": null,
            "keys": {
                "p256dh": URL_SAFE_NO_PAD.encode(public.as_bytes()),
                "auth": URL_SAFE_NO_PAD.encode(self.auth),
            },
            "label": "Chrome · Android",
        })
    }

    /// Checks the VAPID header (RFC 8292 §2–3) against the server's public
    /// key `k`: an ES256 JWT signed by it for this origin, expiring within
    /// 24 h, with a contact. Returns the claims.
    fn verify_vapid(&self, m: &Pushed, k: &str) -> Value {
        let header = m.headers["authorization"].to_str().unwrap();
        let rest = header.strip_prefix("vapid ").expect("vapid scheme");
        let mut t = "";
        let mut key = "";
        for part in rest.split(',') {
            let (name, value) = part.trim().split_once('=').unwrap();
            match name {
                "t" => t = value,
                "k" => key = value,
                _ => {}
            }
        }
        assert_eq!(key, k, "the server's public key");
        let (signed, sig) = t.rsplit_once('.').unwrap();
        let (head, claims) = signed.split_once('.').unwrap();
        let head: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(head).unwrap()).unwrap();
        assert_eq!(head["alg"], "ES256");
        let verifying = VerifyingKey::from_sec1_bytes(&URL_SAFE_NO_PAD.decode(k).unwrap()).unwrap();
        // JWS ES256: the signature is r || s, 64 bytes (RFC 7518 §3.4).
        let sig = Signature::from_slice(&URL_SAFE_NO_PAD.decode(sig).unwrap()).unwrap();
        verifying
            .verify(signed.as_bytes(), &sig)
            .expect("the VAPID token is signed by the server's key");
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
        assert_eq!(
            claims["aud"],
            self.origin.as_str(),
            "audience: the push service's origin"
        );
        let now_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let exp = claims["exp"].as_i64().unwrap();
        assert!(
            exp > now_s && exp <= now_s + 24 * 3600,
            "exp within 24 h: {claims}"
        );
        assert!(claims["sub"].as_str().unwrap().starts_with("mailto:"));
        claims
    }

    /// Decrypts an `aes128gcm` body (RFC 8188 §2.1, RFC 8291 §3.4) with the
    /// browser's keys.
    fn decrypt(&self, m: &Pushed) -> Value {
        assert_eq!(m.headers["content-encoding"], "aes128gcm");
        let b = &m.body;
        let salt = &b[..16];
        let rs = u32::from_be_bytes(b[16..20].try_into().unwrap());
        let idlen = b[20] as usize;
        let as_public = p256::PublicKey::from_sec1_bytes(&b[21..21 + idlen]).unwrap();
        let ciphertext = &b[21 + idlen..];
        assert!(ciphertext.len() <= rs as usize, "one record");
        let ua_public = self.secret.public_key();
        let shared =
            p256::ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), as_public.as_affine());
        // IKM = HKDF(auth_secret, ecdh_secret, "WebPush: info" 0x00 ua_public as_public, 32)
        let mut info = b"WebPush: info\0".to_vec();
        info.extend_from_slice(ua_public.to_encoded_point(false).as_bytes());
        info.extend_from_slice(as_public.to_encoded_point(false).as_bytes());
        let mut ikm = [0u8; 32];
        Hkdf::<Sha256>::new(Some(&self.auth), &shared.raw_secret_bytes()[..])
            .expand(&info, &mut ikm)
            .unwrap();
        let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
        let mut cek = [0u8; 16];
        prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
            .unwrap();
        let mut nonce = [0u8; 12];
        prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
            .unwrap();
        let mut plain = Aes128Gcm::new_from_slice(&cek)
            .unwrap()
            .decrypt(&Nonce::from(nonce), ciphertext)
            .expect("decrypts with the browser's keys");
        // The last record ends with the delimiter 0x02 and zero padding.
        while plain.last() == Some(&0) {
            plain.pop();
        }
        assert_eq!(plain.pop(), Some(2), "last-record delimiter");
        serde_json::from_slice(&plain).unwrap()
    }
}

const VOLUNTEER: &str = "13700000001";

async fn server_key(app: &TestApp) -> String {
    let (status, k) = app.call(None, Method::GET, "/api/v1/push/key", None).await;
    assert_eq!(status, StatusCode::OK, "{k}");
    k["public_key"].as_str().unwrap().to_string()
}

async fn subscribe(app: &TestApp, s: &Session, body: Value) -> (StatusCode, Value) {
    app.post(s, "/api/v1/push/subscriptions", body).await
}

async fn deliver(w: &World) -> notify::DeliveryReport {
    notify::deliver_pass(&w.app.state()).await.unwrap()
}

/// Places a groceries order and runs the dispatcher: the one volunteer
/// gets an offer. Returns (order, offer).
async fn offered(w: &World, key: &str) -> (i64, i64) {
    let order = w.order("groceries", key).await;
    w.tick().await;
    let offer = w.open_offers(order).await.pop().expect("an offer");
    (order, offer.id)
}

fn no_personal_data(text: &str) {
    for secret in ["龙蟠中路", "刘护士", "张志愿", "13800000001", "13700000001"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

#[tokio::test]
async fn push_an_offer_reaches_the_phone_signed_encrypted_and_once() {
    let w = world().await;
    w.mode("sequential", 1).await;
    w.volunteer(VOLUNTEER, 1.0, &[], Flaw::default()).await;
    let v = w.app.login(VOLUNTEER).await;
    let rx = PushService::start().await;
    let key = server_key(&w.app).await;
    // Bad keys and addresses are refused, naming the field.
    let mut bad = rx.subscription("/p/1");
    bad["keys"]["auth"] = json!("c2hvcnQ");
    let (status, e) = subscribe(&w.app, &v, bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(
        (e["code"].as_str(), e["field"].as_str()),
        (Some("invalid_push_key"), Some("keys.auth"))
    );
    let mut bad = rx.subscription("/p/1");
    bad["endpoint"] = json!("ftp://push.example/x");
    let (status, e) = subscribe(&w.app, &v, bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["field"], "endpoint");

    let (status, sub) = subscribe(&w.app, &v, rx.subscription("/p/1")).await;
    assert_eq!(status, StatusCode::CREATED, "{sub}");
    assert_eq!(sub["active"], true);
    assert_eq!(sub["label"], "Chrome · Android");

    let (order, offer) = offered(&w, "push-1").await;
    let report = deliver(&w).await;
    assert!(report.delivered >= 2, "{report:?}");
    let got = rx.got();
    assert_eq!(got.len(), 1, "one alert for one offer");
    let m = &got[0];
    assert_eq!(m.path, "/p/1");
    let claims = rx.verify_vapid(m, &key);
    assert_eq!(claims["sub"], "mailto:admin@localhost");
    // RFC 8030 §5.2-5.4: the offer's remaining time, high urgency, a topic.
    let ttl: i64 = m.headers["ttl"].to_str().unwrap().parse().unwrap();
    assert!((30..=300).contains(&ttl), "ttl {ttl}");
    assert_eq!(m.headers["urgency"], "high");
    assert_eq!(m.headers["topic"], format!("o{order}").as_str());
    let payload = rx.decrypt(m);
    assert_eq!(payload["kind"], "offer_made");
    assert_eq!(payload["url"], format!("/volunteer#offer-{offer}"));
    assert_eq!(payload["tag"], format!("order-{order}"));
    assert_eq!(payload["order_id"], order);
    assert!(
        payload["title"].as_str().unwrap().contains("买菜")
            || payload["title"].as_str().unwrap().contains("采购"),
        "{payload}"
    );
    assert!(
        payload["body"].as_str().unwrap().contains("玄武区"),
        "{payload}"
    );
    no_personal_data(&payload.to_string());

    // The delivery id is the outbox's, and a later pass sends nothing again.
    let deliveries = w.app.store.deliveries(Some(order)).await.unwrap();
    let push: Vec<_> = deliveries
        .iter()
        .filter(|d| d.channel == Channel::Push)
        .collect();
    assert_eq!(push.len(), 1);
    assert_eq!(push[0].state, DeliveryState::Delivered);
    assert_eq!(
        m.headers["x-homefront-delivery"].to_str().unwrap(),
        push[0].delivery_key
    );
    // Accepted by the volunteer (the requester has no subscription, so the
    // assignment alerts nobody); a cancellation reaches the volunteer.
    assert_eq!(accept(&w.app, &v, offer).await.0, StatusCode::OK);
    // A later pass sends nothing again.
    deliver(&w).await;
    assert_eq!(rx.got().len(), 1);

    let (status, _) = w
        .app
        .post(
            &w.requester,
            &format!("/api/v1/orders/{order}/cancel"),
            json!({"reason": "no_longer_needed"}),
        )
        .await;
    assert!(status.is_success(), "{status}");
    deliver(&w).await;
    let got = rx.got();
    assert_eq!(
        got.len(),
        2,
        "the cancellation reaches the assigned volunteer"
    );
    let p = rx.decrypt(&got[1]);
    assert_eq!(p["kind"], "order_state");
    assert_eq!(p["url"], format!("/assignments/{order}"));
    assert_eq!(p["tag"], format!("order-{order}"));
    no_personal_data(&p.to_string());
}

#[tokio::test]
async fn push_retries_with_the_same_id_and_a_gone_subscription_ends() {
    let w = world().await;
    w.mode("sequential", 1).await;
    let id = w.volunteer(VOLUNTEER, 1.0, &[], Flaw::default()).await;
    // Open offers count toward the load cap: room for one per order below.
    w.max_load(id, 5).await;
    let v = w.app.login(VOLUNTEER).await;
    let rx = PushService::start().await;
    let (status, sub) = subscribe(&w.app, &v, rx.subscription("/p/2")).await;
    assert_eq!(status, StatusCode::CREATED, "{sub}");
    rx.answer_next(&[500, 429]);
    let (order, _) = offered(&w, "push-2").await;
    assert_eq!(deliver(&w).await.retrying, 1);
    w.app.clock.advance_ms(60_000);
    deliver(&w).await;
    w.app.clock.advance_ms(60_000);
    deliver(&w).await;
    let got = rx.got();
    assert_eq!(got.len(), 3, "two failures, then accepted");
    let ids: std::collections::HashSet<_> = got
        .iter()
        .map(|m| {
            m.headers["x-homefront-delivery"]
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one delivery id on every attempt");
    let d: Vec<_> = w
        .app
        .store
        .deliveries(Some(order))
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.channel == Channel::Push)
        .collect();
    assert_eq!((d[0].state.as_str(), d[0].attempts), ("delivered", 3));

    // The browser dropped it: 410 Gone ends the subscription at once, with
    // no retry and no notice to the coordinators. (The withdrawal of the
    // second order's offer meets the 410.)
    let (order2, _) = offered(&w, "push-3").await;
    deliver(&w).await;
    assert_eq!(rx.got().len(), 4);
    rx.answer_next(&[410]);
    let (s, _) = w
        .app
        .post(
            &w.requester,
            &format!("/api/v1/orders/{order2}/cancel"),
            json!({"reason": "no_longer_needed"}),
        )
        .await;
    assert!(s.is_success());
    deliver(&w).await;
    assert_eq!(rx.got().len(), 5);
    w.app.clock.advance_ms(120 * 60_000);
    deliver(&w).await;
    assert_eq!(rx.got().len(), 5, "no retry after 410");
    let withdrawn: Vec<_> = w
        .app
        .store
        .deliveries(Some(order2))
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.channel == Channel::Push && d.kind == EventKind::OfferWithdrawn)
        .collect();
    assert_eq!(
        (withdrawn[0].state.as_str(), withdrawn[0].attempts),
        ("dead", 1)
    );
    // And the phone gets nothing more.
    let (order3, _) = offered(&w, "push-5").await;
    deliver(&w).await;
    assert_eq!(rx.got().len(), 5);
    assert!(
        !w.app
            .store
            .deliveries(Some(order3))
            .await
            .unwrap()
            .iter()
            .any(|d| d.channel == Channel::Push)
    );
    let (_, list) = w.app.get(&v, "/api/v1/push/subscriptions").await;
    assert_eq!(list, json!([]), "ended subscriptions are not listed");
    let (_, inbox) = w.app.get(&w.coordinator, "/api/v1/inbox").await;
    assert!(
        !inbox.to_string().contains("delivery_failed"),
        "coordinators are not told about a phone: {inbox}"
    );
}

#[tokio::test]
async fn push_stops_when_the_session_ends_and_a_new_sign_in_takes_the_phone_over() {
    let w = world().await;
    w.mode("sequential", 1).await;
    w.volunteer(VOLUNTEER, 1.0, &[], Flaw::default()).await;
    let v = w.app.login(VOLUNTEER).await;
    let rx = PushService::start().await;
    let (_, sub) = subscribe(&w.app, &v, rx.subscription("/p/3")).await;
    // Signing out everywhere ends the session the subscription belongs to.
    let (status, _) = w
        .app
        .call(Some(&v), Method::POST, "/api/v1/auth/logout-all", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (order, _) = offered(&w, "push-4").await;
    deliver(&w).await;
    assert!(rx.got().is_empty(), "a signed-out phone hears nothing");
    assert!(
        !w.app
            .store
            .deliveries(Some(order))
            .await
            .unwrap()
            .iter()
            .any(|d| d.channel == Channel::Push)
    );
    let v2 = w.app.login(VOLUNTEER).await;
    let (_, list) = w.app.get(&v2, "/api/v1/push/subscriptions").await;
    assert_eq!(list[0]["id"], sub["id"]);
    assert_eq!(list[0]["active"], false, "{list}");
    // Signing in again on the phone renews it (same endpoint, same row).
    let (status, again) = subscribe(&w.app, &v2, rx.subscription("/p/3")).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        (again["id"].clone(), again["active"].clone()),
        (sub["id"].clone(), json!(true))
    );
    // Turning alerts off ends it; another's id is not found.
    let id = again["id"].as_i64().unwrap();
    let (status, _) = w
        .app
        .call(
            Some(&w.requester),
            Method::DELETE,
            &format!("/api/v1/push/subscriptions/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = w
        .app
        .call(
            Some(&v2),
            Method::DELETE,
            &format!("/api/v1/push/subscriptions/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn remember_this_phone_lasts_30_days_for_requesters_and_volunteers_until_logout_all() {
    let app = TestApp::spawn().await;
    app.user("13800000011", &[(Role::Requester, None)]).await;
    app.user("13800000012", &[(Role::Coordinator, None)]).await;
    let login = |phone: &'static str, remember: bool| {
        let app = &app;
        async move {
            let resp = app
                .client
                .post(format!("{}/api/v1/auth/login", app.base))
                .json(&json!({"phone": phone, "password": crate::helpers::PASSWORD, "remember": remember}))
                .send()
                .await
                .unwrap();
            let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
            let body: Value = resp.json().await.unwrap();
            (body, cookie)
        }
    };
    let now = app.clock.now().epoch_ms();
    let (kept, cookie) = login("13800000011", true).await;
    assert_eq!(kept["remembered"], true);
    assert_eq!(kept["expires_at"], now + 30 * 24 * 3_600_000);
    assert!(cookie.contains("Max-Age=2592000"), "{cookie}");
    let (short, _) = login("13800000011", false).await;
    assert_eq!(short["remembered"], false);
    let (coord, cookie) = login("13800000012", true).await;
    assert_eq!(
        coord["remembered"], false,
        "coordinators keep short sessions"
    );
    assert_eq!(coord["expires_at"], now + 12 * 3_600_000);
    assert!(cookie.contains("Max-Age=43200"), "{cookie}");

    let s = |b: &Value| Session {
        token: b["token"].as_str().unwrap().into(),
        user_id: b["user"]["id"].as_i64().unwrap(),
    };
    let (kept, short) = (s(&kept), s(&short));
    app.clock.advance_ms((13 * 60) * 60_000);
    assert_eq!(app.get(&kept, "/api/v1/auth/me").await.0, StatusCode::OK);
    assert_eq!(
        app.get(&short, "/api/v1/auth/me").await.0,
        StatusCode::UNAUTHORIZED
    );
    let (again, _) = login("13800000011", false).await;
    let again = s(&again);
    let (status, _) = app
        .call(Some(&again), Method::POST, "/api/v1/auth/logout-all", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&kept, "/api/v1/auth/me").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get(&again, "/api/v1/auth/me").await.0,
        StatusCode::UNAUTHORIZED
    );
    // A remembered session runs out after 30 days.
    let (late, _) = login("13800000011", true).await;
    let late = s(&late);
    app.clock.advance_ms((30 * 24 * 60 - 1) * 60_000);
    assert_eq!(app.get(&late, "/api/v1/auth/me").await.0, StatusCode::OK);
    app.clock.advance_ms(60_000);
    assert_eq!(
        app.get(&late, "/api/v1/auth/me").await.0,
        StatusCode::UNAUTHORIZED
    );
}

/// An offered groceries order accepted by the volunteer.
async fn assigned(w: &World, key: &str, v: &Session) -> i64 {
    let (order, offer) = offered(w, key).await;
    assert_eq!(accept(&w.app, v, offer).await.0, StatusCode::OK);
    order
}

async fn act(
    w: &World,
    v: &Session,
    order: i64,
    what: &str,
    at: Option<i64>,
) -> (StatusCode, Value) {
    let body = at.map_or_else(|| json!({}), |t| json!({"recorded_at": t}));
    w.app
        .post(v, &format!("/api/v1/orders/{order}/{what}"), body)
        .await
}

#[tokio::test]
async fn offline_check_in_and_out_keep_the_phones_times_within_bounds() {
    let w = world().await;
    w.mode("sequential", 1).await;
    w.volunteer(VOLUNTEER, 1.0, &[], Flaw::default()).await;
    let v = w.app.login(VOLUNTEER).await;
    let order = assigned(&w, "off-1", &v).await;
    let assigned_at = w.app.clock.now().epoch_ms();
    w.app.clock.advance_ms(120 * 60_000);
    let now = w.app.clock.now().epoch_ms();
    let min = 60_000;

    // Before the assignment: refused, naming the field.
    let (status, e) = act(&w, &v, order, "check-in", Some(assigned_at - min)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(
        (e["code"].as_str(), e["field"].as_str()),
        (Some("recorded_at_too_early"), Some("recorded_at"))
    );
    // In the future beyond clock skew: refused.
    let (status, e) = act(&w, &v, order, "check-in", Some(now + 10 * min)).await;
    assert_eq!(
        (status, e["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("recorded_at_in_future")
        )
    );

    let checked_in = now - 90 * min;
    let (status, o) = act(&w, &v, order, "check-in", Some(checked_in)).await;
    assert_eq!(status, StatusCode::OK, "{o}");
    assert_eq!(o["state"], "in_service");
    // Sent again (the answer was lost on a bad network): the same, once.
    let (status, _) = act(&w, &v, order, "check-in", Some(checked_in)).await;
    assert_eq!(status, StatusCode::OK);

    let (status, e) = act(&w, &v, order, "check-out", Some(checked_in - min)).await;
    assert_eq!(
        (status, e["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("recorded_at_too_early")
        )
    );
    let (status, o) = act(&w, &v, order, "check-out", Some(checked_in + 45 * min)).await;
    assert_eq!(status, StatusCode::OK, "{o}");
    assert_eq!(o["state"], "completed");
    let (status, _) = act(&w, &v, order, "check-out", Some(checked_in + 45 * min)).await;
    assert_eq!(status, StatusCode::OK);

    // The log says when it happened and when the server heard of it.
    let (_, events) = w
        .app
        .get(&w.coordinator, &format!("/api/v1/orders/{order}/events"))
        .await;
    let ev = |action: &str| -> Vec<Value> {
        events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == action)
            .cloned()
            .collect()
    };
    let ins = ev("check_in");
    assert_eq!(ins.len(), 1, "{events}");
    assert_eq!(
        (ins[0]["at"].as_i64(), ins[0]["received_at"].as_i64()),
        (Some(checked_in), Some(now))
    );
    let outs = ev("check_out");
    assert_eq!(outs.len(), 1);
    assert_eq!(
        (outs[0]["at"].as_i64(), outs[0]["received_at"].as_i64()),
        (Some(checked_in + 45 * min), Some(now))
    );
    assert_eq!(ev("assign")[0]["received_at"], Value::Null);
    // The hours are the phone's: 45 minutes.
    let (_, hours) = w.app.get(&v, "/api/v1/hours/me").await;
    assert_eq!(hours["total"]["recorded_minutes"], 45, "{hours}");

    // Older than offline_max_hours (24): for a coordinator to backfill.
    let second = assigned(&w, "off-2", &v).await;
    w.app.clock.advance_ms((25 * 60) * 60_000);
    let v = w.app.login(VOLUNTEER).await;
    let (status, e) = act(
        &w,
        &v,
        second,
        "check-in",
        Some(w.app.clock.now().epoch_ms() - 24 * 60 * min - min),
    )
    .await;
    assert_eq!(
        (status, e["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("recorded_at_too_old")
        )
    );
    // Within the clock skew: simply now, with no received_at.
    let (status, _) = act(
        &w,
        &v,
        second,
        "check-in",
        Some(w.app.clock.now().epoch_ms() + min),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let coordinator = w.app.login("13800000002").await;
    let (_, events) = w
        .app
        .get(&coordinator, &format!("/api/v1/orders/{second}/events"))
        .await;
    let last = events.as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["action"].as_str(), last["received_at"].clone()),
        (Some("check_in"), Value::Null)
    );
}

async fn page(client: &reqwest::Client, app: &TestApp, path: &str) -> reqwest::Response {
    client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn pwa_manifest_worker_and_the_pages_kept_offline() {
    let w = world().await;
    w.mode("sequential", 1).await;
    w.volunteer(VOLUNTEER, 1.0, &[], Flaw::default()).await;
    let c = reqwest::Client::new();
    let m = page(&c, &w.app, "/manifest.webmanifest?lang=en").await;
    assert_eq!(m.headers()["content-type"], "application/manifest+json");
    let m: Value = m.json().await.unwrap();
    assert_eq!(
        (
            m["display"].as_str(),
            m["scope"].as_str(),
            m["lang"].as_str()
        ),
        (Some("standalone"), Some("/"), Some("en"))
    );
    assert!(
        m["icons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["sizes"] == "512x512" && i["purpose"] == "maskable")
    );
    let zh: Value = page(&c, &w.app, "/manifest.json?lang=zh-CN")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(zh["lang"], "zh-CN");
    assert_ne!(zh["description"], m["description"]);
    for icon in m["icons"].as_array().unwrap() {
        assert_eq!(
            page(&c, &w.app, icon["src"].as_str().unwrap())
                .await
                .status(),
            StatusCode::OK
        );
    }
    let sw = page(&c, &w.app, "/sw.js").await;
    assert_eq!(sw.headers()["service-worker-allowed"], "/");
    assert_eq!(sw.headers()["cache-control"], "no-cache");
    assert!(
        sw.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let text = sw.text().await.unwrap();
    assert!(!text.contains("__VERSION__") && text.contains("hf-assets-"));
    // Everything the worker keeps on install exists.
    for line in text
        .lines()
        .skip_while(|l| !l.contains("PRECACHE = ["))
        .take(6)
    {
        for path in line.split('"').filter(|p| p.starts_with('/')) {
            assert_eq!(
                page(&c, &w.app, path).await.status(),
                StatusCode::OK,
                "{path}"
            );
        }
    }

    // The volunteer's pages tell the worker what it may keep.
    let b = browser();
    sign_in(&w.app, &b, VOLUNTEER, "/volunteer").await;
    let home = page(&b, &w.app, "/volunteer").await;
    assert_eq!(home.headers()["x-homefront-offline"], "offers");
    assert_eq!(home.headers()["x-homefront-live-assignments"], "");
    let html = home.text().await.unwrap();
    assert!(html.contains("id=\"alerts\"") && html.contains(&server_key(&w.app).await));
    assert!(html.contains("rel=\"manifest\""));
    let v = w.app.login(VOLUNTEER).await;
    let order = assigned(&w, "pwa-1", &v).await;
    let home = page(&b, &w.app, "/volunteer").await;
    assert_eq!(
        home.headers()["x-homefront-live-assignments"],
        order.to_string().as_str()
    );
    let live = page(&b, &w.app, &format!("/assignments/{order}")).await;
    assert_eq!(live.headers()["x-homefront-offline"], "assignment");
    let html = live.text().await.unwrap();
    assert!(html.contains("龙蟠中路1号"));
    assert!(html.contains("data-queue=\"check-in\"") && html.contains("data-queue=\"check-out\""));
    assert_eq!(act(&w, &v, order, "check-in", None).await.0, StatusCode::OK);
    assert_eq!(
        act(&w, &v, order, "check-out", None).await.0,
        StatusCode::OK
    );
    // Ended: no longer kept (and the address is gone from the page).
    let ended = page(&b, &w.app, &format!("/assignments/{order}")).await;
    assert!(ended.headers().get("x-homefront-offline").is_none());
    assert!(!ended.text().await.unwrap().contains("龙蟠中路1号"));
    assert_eq!(
        page(&b, &w.app, "/volunteer").await.headers()["x-homefront-live-assignments"],
        ""
    );
}

#[tokio::test]
async fn pwa_remember_box_and_signing_out_everywhere_from_the_account_page() {
    let app = TestApp::spawn().await;
    app.user("13800000021", &[(Role::Requester, None)]).await;
    let b = browser();
    let resp = b
        .post(format!("{}/login", app.base))
        .form(&[
            ("phone", "13800000021"),
            ("password", crate::helpers::PASSWORD),
            ("remember", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(
        resp.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=2592000")
    );
    let other = app.login("13800000021").await;
    let csrf = sign_in(&app, &b, "13800000021", "/account").await;
    let html = page(&b, &app, "/account").await.text().await.unwrap();
    assert!(html.contains("action=\"/account/logout-all\""));
    let resp = b
        .post(format!("{}/account/logout-all", app.base))
        .form(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], "/login?signed_out=1");
    assert_eq!(resp.headers()["clear-site-data"], "\"cache\"");
    assert_eq!(
        app.get(&other, "/api/v1/auth/me").await.0,
        StatusCode::UNAUTHORIZED
    );
    let html = page(&b, &app, "/login?signed_out=1")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("已在所有设备上退出登录"));
}
