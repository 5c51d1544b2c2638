//! Notifications over HTTP: the outbox written with each event, delivery to
//! group bots and signed webhooks (a real HTTP receiver on 127.0.0.1:0
//! stands in for WeCom, DingTalk and an integration), retries with backoff,
//! dead rows on the board, the inbox, preferences, restarts, and live
//! events across instances. The delivery worker runs by
//! `notify::deliver_pass` on the manual clock, as its loop would.

use homefront_domain::locale::Locale;
use homefront_domain::notify::{Channel, DeliveryState, EventKind};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus, Uri};
use homefront_domain::{GeoPoint, PhoneNumber, Role, Timestamp};
use homefront_server::Config;
use homefront_server::notify::{self, DeliveryReport, channels};
use homefront_store::offers::NewOffer;
use homefront_store::volunteers::{Account, VolunteerProfile};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Session, T0, TestApp};

const STREET: &str = "龙蟠中路1号";
const PHONE: &str = "13912345678";

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    path_and_query: String,
    headers: HeaderMap,
    body: String,
    /// Whether the receiver answered success.
    accepted: bool,
}

#[derive(Clone, Default)]
struct ReceiverState {
    got: Arc<Mutex<Vec<Received>>>,
    /// Answer 500 to this many requests first.
    fail_first: Arc<Mutex<usize>>,
}

/// A local HTTP receiver on 127.0.0.1:0 answering like WeCom and DingTalk
/// (`{"errcode":0,"errmsg":"ok"}`).
struct Receiver {
    base: String,
    state: ReceiverState,
}

async fn record(
    State(s): State<ReceiverState>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> (AxumStatus, String) {
    let fail = {
        let mut left = s.fail_first.lock().unwrap();
        if *left > 0 {
            *left -= 1;
            true
        } else {
            false
        }
    };
    s.got.lock().unwrap().push(Received {
        path_and_query: uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers,
        body,
        accepted: !fail,
    });
    if fail {
        (AxumStatus::INTERNAL_SERVER_ERROR, "busy".into())
    } else {
        (AxumStatus::OK, r#"{"errcode":0,"errmsg":"ok"}"#.into())
    }
}

impl Receiver {
    async fn start(fail_first: usize) -> Receiver {
        let state = ReceiverState::default();
        *state.fail_first.lock().unwrap() = fail_first;
        let app = axum::Router::new()
            .fallback(record)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { base, state }
    }

    fn got(&self) -> Vec<Received> {
        self.state.got.lock().unwrap().clone()
    }

    fn at(&self, path: &str) -> Vec<Received> {
        self.got()
            .into_iter()
            .filter(|r| r.path_and_query.starts_with(path))
            .collect()
    }
}

struct World {
    app: TestApp,
    xuanwu: i64,
    nanjing: i64,
    requester: Session,
    coordinator: Session,
    member: i64,
    item: i64,
}

async fn world_with(config: Config) -> World {
    let w = crate::helpers::World::jiangsu()
        .config(config)
        .county("320102")
        .requester("13800000001")
        .coordinator("13800000002")
        .member(
            json!({"name": "刘护士", "relation": "self", "adcode": "320102", "street": STREET,
                   "longitude": 118.797, "latitude": 32.049}),
        )
        .build()
        .await;
    World {
        xuanwu: w.county,
        nanjing: w.app.division("320100").await,
        requester: w.session("13800000001"),
        coordinator: w.session("13800000002"),
        member: w.members[0],
        item: w.app.item("groceries").await,
        app: w.app,
    }
}

async fn world() -> World {
    world_with(Config::default()).await
}

impl World {
    async fn order(&self, key: &str) -> i64 {
        self.order_in(key, "2020-02-12T18:00", "2020-02-12T22:00")
            .await
    }

    /// An order for the window `[start, end)` (local times).
    async fn order_in(&self, key: &str, start: &str, end: &str) -> i64 {
        let resp = self
            .app
            .client
            .post(format!("{}/api/v1/orders", self.app.base))
            .bearer_auth(&self.requester.token)
            .header("Idempotency-Key", key)
            .json(&json!({"item_id": self.item, "member_id": self.member,
                          "contact_phone": PHONE,
                          "window_start": start, "window_end": end}))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_i64().unwrap()
    }

    async fn bot(&self, unit: i64, body: Value) -> Value {
        let (status, b) = self
            .app
            .post(
                &self.coordinator,
                &format!("/api/v1/org-units/{unit}/bots"),
                body,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{b}");
        b
    }

    async fn pass(&self) -> DeliveryReport {
        notify::deliver_pass(&self.app.state()).await.unwrap()
    }

    fn advance_s(&self, seconds: i64) {
        self.app
            .clock
            .set(Timestamp(self.app.clock_now() + seconds * 1000));
    }
}

trait ClockNow {
    fn clock_now(&self) -> i64;
}

impl ClockNow for TestApp {
    fn clock_now(&self) -> i64 {
        use homefront_domain::Clock;
        self.clock.now().epoch_ms()
    }
}

/// No street, no phone, and no run of exactly 11 digits starting with 1
/// (the shape of a mainland mobile number; epoch-ms timestamps have 13).
fn assert_no_personal_data(text: &str) {
    assert!(!text.contains(STREET), "street leaked: {text}");
    assert!(!text.contains("龙蟠中路"), "street leaked: {text}");
    assert!(!text.contains(PHONE), "phone leaked: {text}");
    assert!(!text.contains(&PHONE[3..]), "phone leaked: {text}");
    for run in text.split(|c: char| !c.is_ascii_digit()) {
        assert!(
            !(run.len() == 11 && run.starts_with('1')),
            "a phone-like number in: {text}"
        );
    }
}

fn json_body(r: &Received) -> Value {
    serde_json::from_str(&r.body).unwrap()
}

#[tokio::test]
async fn notify_group_bots_and_webhooks_follow_each_format_and_signature() {
    let w = world().await;
    let rx = Receiver::start(0).await;
    w.bot(
        w.xuanwu,
        json!({"kind": "wecom", "name": "玄武区调度群", "url": format!("{}/wecom/send?key=KEY1", rx.base)}),
    )
    .await;
    // A city coordinator's DingTalk group hears about its counties' orders.
    w.app
        .user("13800000003", &[(Role::Coordinator, Some(w.nanjing))])
        .await;
    let city = w.app.login("13800000003").await;
    let (status, b) = w
        .app
        .post(
            &city,
            &format!("/api/v1/org-units/{}/bots", w.nanjing),
            json!({"kind": "dingtalk", "name": "Nanjing", "locale": "en", "secret": "SECabc+/=",
                   "url": format!("{}/dingtalk/send?access_token=TOKEN", rx.base)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    // The county coordinator may not configure the city's bots.
    let (status, _) = w
        .app
        .post(
            &w.coordinator,
            &format!("/api/v1/org-units/{}/bots", w.nanjing),
            json!({"kind": "wecom", "name": "x", "url": "http://127.0.0.1:9/x"}),
        )
        .await;
    assert!(
        status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN,
        "{status}"
    );
    let hook = w
        .bot(
            w.xuanwu,
            json!({"kind": "webhook", "name": "ERP", "url": format!("{}/hook", rx.base)}),
        )
        .await;
    let secret = hook["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    // The listing never shows the URL's key or the secret.
    let (_, list) = w
        .app
        .get(
            &w.coordinator,
            &format!("/api/v1/org-units/{}/bots", w.xuanwu),
        )
        .await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(!list.to_string().contains("KEY1") && !list.to_string().contains(&secret));

    let order = w.order("fmt").await;
    let report = w.pass().await;
    // The three bots; the requester's own submission is no inbox notice.
    assert!(report.delivered >= 3, "{report:?}");

    // WeCom: markdown with `content`, in Chinese.
    let wecom = rx.at("/wecom/send?key=KEY1");
    assert_eq!(wecom.len(), 1);
    let body = json_body(&wecom[0]);
    assert_eq!(body["msgtype"], "markdown");
    let content = body["markdown"]["content"].as_str().unwrap();
    assert!(content.starts_with("### 新订单："), "{content}");
    assert!(content.contains("玄武区") && content.contains(&format!("#{order}")));
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");

    // DingTalk: markdown with `title` and `text`, in English, signed.
    let ding = rx.at("/dingtalk/send");
    assert_eq!(ding.len(), 1);
    let url = reqwest::Url::parse(&format!("{}{}", rx.base, ding[0].path_and_query)).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["access_token"], "TOKEN");
    let ts: i64 = q["timestamp"].parse().unwrap();
    assert_eq!(ts, T0.epoch_ms());
    assert_eq!(q["sign"], channels::dingtalk_sign("SECabc+/=", ts));
    // The sign is URL-encoded on the wire (base64's + / = escaped).
    assert!(
        !ding[0].path_and_query.contains('+'),
        "{}",
        ding[0].path_and_query
    );
    let body = json_body(&ding[0]);
    assert_eq!(body["msgtype"], "markdown");
    assert!(
        body["markdown"]["title"]
            .as_str()
            .unwrap()
            .starts_with("New order: ")
    );
    assert!(
        body["markdown"]["text"]
            .as_str()
            .unwrap()
            .contains("Groceries")
    );

    // Standard Webhooks: id, timestamp (seconds), v1 signature over id.ts.body.
    let hooks = rx.at("/hook");
    assert!(!hooks.is_empty());
    for h in &hooks {
        let id = h.headers["webhook-id"].to_str().unwrap();
        let ts: i64 = h.headers["webhook-timestamp"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(ts, T0.epoch_ms() / 1000);
        let expected = standardwebhooks::Webhook::new(&secret)
            .unwrap()
            .sign(id, ts, h.body.as_bytes())
            .unwrap();
        assert_eq!(h.headers["webhook-signature"].to_str().unwrap(), expected);
        assert_eq!(h.headers["x-homefront-delivery"].to_str().unwrap(), id);
        let v = json_body(h);
        assert_eq!(v["data"]["order_id"], order);
    }
    assert_eq!(json_body(&hooks[0])["type"], "order.submitted");

    // Nothing anywhere carries the street or the phone.
    for r in rx.got() {
        assert_no_personal_data(&r.body);
        assert_no_personal_data(&r.path_and_query);
    }
    // The requester placed it: the groups hear of it, their own inbox
    // gets no notice of their own submission.
    let (_, inbox) = w.app.get(&w.requester, "/api/v1/inbox").await;
    assert_eq!(inbox["unread"], 0, "{inbox}");
    // A second pass sends nothing again.
    let before = rx.got().len();
    w.advance_s(3600);
    w.pass().await;
    assert_eq!(rx.got().len(), before);
}

#[tokio::test]
async fn notify_a_receiver_failing_three_times_gets_the_message_exactly_once() {
    let w = world().await;
    let rx = Receiver::start(3).await;
    let bot = w
        .bot(
            w.xuanwu,
            json!({"kind": "wecom", "name": "群", "url": format!("{}/wecom?key=K", rx.base)}),
        )
        .await;
    let (status, _) = w
        .app
        .post(
            &w.coordinator,
            &format!("/api/v1/org-units/{}/bots/{}/test", w.xuanwu, bot["id"]),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    assert_eq!(w.pass().await.retrying, 1);
    // Not due yet: nothing is sent.
    w.pass().await;
    assert_eq!(rx.got().len(), 1);
    // Backoff 10 s, 20 s, 40 s (base 10 s, doubling).
    for (wait, attempts) in [(10, 2), (20, 3), (40, 4)] {
        w.advance_s(wait - 1);
        w.pass().await;
        assert_eq!(rx.got().len(), attempts - 1, "sent before its backoff");
        w.advance_s(1);
        w.pass().await;
        assert_eq!(rx.got().len(), attempts);
    }
    w.advance_s(7200);
    w.pass().await;
    let got = rx.got();
    assert_eq!(got.len(), 4);
    assert_eq!(got.iter().filter(|r| r.accepted).count(), 1, "exactly once");
    let ids: std::collections::HashSet<_> = got
        .iter()
        .map(|r| {
            r.headers["x-homefront-delivery"]
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one delivery id on every attempt");
    assert!(
        json_body(&got[3])["markdown"]["content"]
            .as_str()
            .unwrap()
            .contains("测试消息")
    );
    let d = w.app.store.deliveries(None).await.unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].state.as_str(), d[0].attempts), ("delivered", 4));
}

#[tokio::test]
async fn notify_a_delivery_that_keeps_failing_goes_dead_and_shows_on_the_board() {
    let w = world_with(Config {
        notify_max_attempts: 2,
        ..Config::default()
    })
    .await;
    let rx = Receiver::start(usize::MAX).await;
    w.bot(
        w.xuanwu,
        json!({"kind": "dingtalk", "name": "群", "url": format!("{}/ding", rx.base)}),
    )
    .await;
    let order = w.order("dead").await;
    w.pass().await;
    w.advance_s(10);
    let r = w.pass().await;
    assert_eq!(r.dead, 1, "{r:?}");
    w.advance_s(3600);
    w.pass().await;
    assert_eq!(rx.got().len(), 2);

    let (status, dead) = w.app.get(&w.coordinator, "/api/v1/outbox/dead").await;
    assert_eq!(status, StatusCode::OK);
    let dead = dead.as_array().unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["channel"], "dingtalk");
    assert_eq!(dead[0]["order_id"], order);
    assert_eq!(dead[0]["attempts"], 2);
    // The coordinators of the unit hear about it in their inbox.
    let (_, inbox) = w.app.get(&w.coordinator, "/api/v1/inbox").await;
    let kinds: Vec<&str> = inbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"delivery_failed"), "{inbox}");
    // A coordinator elsewhere sees none of it; a requester may not look.
    let suzhou = w.app.division("320500").await;
    w.app
        .user("13800000009", &[(Role::Coordinator, Some(suzhou))])
        .await;
    let other = w.app.login("13800000009").await;
    let (_, none) = w.app.get(&other, "/api/v1/outbox/dead").await;
    assert_eq!(none, json!([]));
    let (status, _) = w.app.get(&w.requester, "/api/v1/outbox/dead").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn notify_a_crash_between_commit_and_delivery_loses_and_repeats_nothing() {
    let w = world().await;
    let rx = Receiver::start(0).await;
    w.bot(
        w.xuanwu,
        json!({"kind": "wecom", "name": "群", "url": format!("{}/wecom?key=K", rx.base)}),
    )
    .await;
    // The order and its outbox row commit; the process dies before any
    // delivery pass runs.
    w.order("crash").await;
    let World {
        app, member, item, ..
    } = w;
    let app = app.crash_and_restart().await;
    assert!(rx.got().is_empty());
    let state = app.state();
    notify::deliver_pass(&state).await.unwrap();
    assert_eq!(rx.at("/wecom").len(), 1);

    // A second crash after a claim, before the outcome was written: the
    // lease keeps other workers off, then it is sent again with the same
    // delivery id (receivers drop the repeat by it).
    let order2 = {
        let s = app.login("13800000001").await;
        let resp = app
            .client
            .post(format!("{}/api/v1/orders", app.base))
            .bearer_auth(&s.token)
            .header("Idempotency-Key", "crash-2")
            .json(&json!({"item_id": item, "member_id": member,
                          "window_start": "2020-02-12T18:00", "window_end": "2020-02-12T22:00"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
    };
    let now = T0.epoch_ms();
    app.store.plan_outbox(now, 100).await.unwrap();
    let due = app.store.due_deliveries(now, 100).await.unwrap();
    let wecom = due
        .iter()
        .find(|d| d.channel == Channel::Wecom && d.order_id == Some(order2))
        .unwrap();
    assert!(
        app.store
            .claim_delivery(wecom.id, "the-process-that-died", now, notify::LEASE_MS)
            .await
            .unwrap()
    );
    let app = app.crash_and_restart().await;
    notify::deliver_pass(&app.state()).await.unwrap();
    assert_eq!(rx.at("/wecom").len(), 1, "held by the dead worker's lease");
    app.clock.set(Timestamp(now + notify::LEASE_MS + 1));
    notify::deliver_pass(&app.state()).await.unwrap();
    let sent = rx.at("/wecom");
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[1].headers["x-homefront-delivery"].to_str().unwrap(),
        wecom.delivery_key
    );
    notify::deliver_pass(&app.state()).await.unwrap();
    assert_eq!(rx.at("/wecom").len(), 2);
}

/// Registers an off-duty volunteer (not vetted: enough for an offer row).
async fn volunteer(app: &TestApp, phone: &str, team: i64, home: i64) -> i64 {
    let phone = PhoneNumber::parse(phone).unwrap();
    let hash = crate::helpers::password_hash().await;
    app.store
        .register_volunteer(
            Account::New {
                phone: &phone,
                display_name: "张志愿",
                password_hash: &hash,
            },
            &VolunteerProfile {
                team_id: team,
                home_division_id: home,
                home_location: Some(GeoPoint::new(118.8, 32.05).unwrap()),
                service_radius_km: 10.0,
                declared_qualifications: vec![],
                vehicle_seats: None,
                languages: vec![],
                max_concurrent: 1,
                gender: None,
                emergency_contact: None,
            },
            None,
            T0,
        )
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn notify_inbox_language_read_state_and_muted_offers() {
    let w = world().await;
    let team = w.app.team(w.xuanwu, "玄武区志愿服务队").await;
    let muted = volunteer(&w.app, "13700000001", team, w.xuanwu).await;
    let hears = volunteer(&w.app, "13700000002", team, w.xuanwu).await;
    w.app.store.set_locale(hears, Locale::En).await.unwrap();
    let s_muted = w.app.login("13700000001").await;
    let s_hears = w.app.login("13700000002").await;
    let (status, prefs) = w
        .app
        .call(
            Some(&s_hears),
            Method::PUT,
            "/api/v1/notification-preferences",
            Some(json!({"mute_offers_off_duty": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{prefs}");
    assert_eq!(prefs["mute_offers_off_duty"], false);
    let (_, prefs) = w
        .app
        .get(&s_muted, "/api/v1/notification-preferences")
        .await;
    assert_eq!(prefs["mute_offers_off_duty"], true, "muted by default");

    let order = w.order("inbox").await;
    let offers: Vec<NewOffer> = [muted, hears]
        .iter()
        .map(|v| NewOffer {
            order_id: order,
            volunteer_user_id: *v,
            via: "broadcast",
            round: 1,
            candidate_rank: 1,
            distance_km: Some(1.234),
            cost: 1.0,
            explanation: "{}".into(),
            expires_at: T0.epoch_ms() + 300_000,
            offered_by: None,
        })
        .collect();
    assert!(
        w.app
            .store
            .write_round(order, &offers, T0.epoch_ms())
            .await
            .unwrap()
    );
    w.pass().await;
    // Off duty and muted: no notice. Not muted: an English notice.
    let (_, inbox) = w.app.get(&s_muted, "/api/v1/inbox").await;
    assert_eq!(inbox["unread"], 0, "{inbox}");
    let (_, inbox) = w.app.get(&s_hears, "/api/v1/inbox").await;
    assert_eq!(inbox["unread"], 1, "{inbox}");
    let item = &inbox["items"][0];
    assert_eq!(item["kind"], "offer_made");
    assert_eq!(item["title"], "New offer: Groceries");
    assert!(item["body"].as_str().unwrap().contains("About 1.2 km away"));

    // Cancelling withdraws the offer: the volunteer hears of it.
    let (status, body) = w
        .app
        .post(
            &w.requester,
            &format!("/api/v1/orders/{order}/cancel"),
            json!({"reason": "call 13912345678 instead"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    w.pass().await;
    let (_, inbox) = w.app.get(&s_hears, "/api/v1/inbox").await;
    assert_eq!(inbox["unread"], 2, "{inbox}");
    assert_eq!(inbox["items"][0]["kind"], "offer_withdrawn");
    // The requester cancelled it: their own inbox gets no notice of it,
    // and the volunteer's carries nothing of the reason's text.
    let (_, mine) = w.app.get(&w.requester, "/api/v1/inbox").await;
    assert!(
        !mine.to_string().contains("已取消"),
        "own cancellation in own inbox: {mine}"
    );
    assert_no_personal_data(&inbox.to_string());

    let id = inbox["items"][1]["id"].as_i64().unwrap();
    let (status, r) = w
        .app
        .post(&s_hears, &format!("/api/v1/inbox/{id}/read"), json!({}))
        .await;
    assert_eq!((status, r["unread"].as_i64()), (StatusCode::OK, Some(1)));
    // Someone else's notice is 404.
    let (status, _) = w
        .app
        .post(&s_muted, &format!("/api/v1/inbox/{id}/read"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, r) = w
        .app
        .post(&s_hears, "/api/v1/inbox/read-all", json!({}))
        .await;
    assert_eq!(r["unread"], 0);
    let (_, inbox) = w.app.get(&s_hears, "/api/v1/inbox?unread=true").await;
    assert_eq!(inbox["items"], json!([]));
}

/// Reads server-sent events until one named `event` whose data satisfies
/// `pred`, or `timeout`.
async fn wait_for_event(
    resp: &mut reqwest::Response,
    buf: &mut String,
    event: &str,
    pred: impl Fn(&Value) -> bool,
    timeout: Duration,
) -> Option<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let mut name = "message";
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(n) = line.strip_prefix("event:") {
                    name = n.trim();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim());
                }
            }
            if name == event
                && let Ok(v) = serde_json::from_str::<Value>(&data)
                && pred(&v)
            {
                return Some(v);
            }
        }
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, resp.chunk()).await {
            Ok(Ok(Some(bytes))) => buf.push_str(&String::from_utf8_lossy(&bytes)),
            _ => return None,
        }
    }
}

#[tokio::test]
async fn notify_sse_on_one_instance_sees_an_accept_made_through_another() {
    let w = world().await;
    // Two instances on one PostgreSQL database; on SQLite (one instance
    // owns the file) both roles fall to the same instance.
    let b = if crate::helpers::use_postgres() {
        Some(w.app.peer().await)
    } else {
        None
    };
    let via_b = b.as_ref().unwrap_or(&w.app);
    let team = w.app.team(w.xuanwu, "队").await;
    let v = volunteer(&w.app, "13700000001", team, w.xuanwu).await;
    let order = w.order("sse").await;
    let offer = NewOffer {
        order_id: order,
        volunteer_user_id: v,
        via: "manual",
        round: 1,
        candidate_rank: 1,
        distance_km: None,
        cost: 0.0,
        explanation: "{}".into(),
        expires_at: T0.epoch_ms() + 300_000,
        offered_by: None,
    };
    w.app
        .store
        .write_round(order, &[offer], T0.epoch_ms())
        .await
        .unwrap();
    let offer_id = w.app.store.offers_of_order(order).await.unwrap()[0].id;

    let mut resp = w
        .app
        .client
        .get(format!("{}/api/v1/events", w.app.base))
        .bearer_auth(&w.requester.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut buf = String::new();
    assert!(
        wait_for_event(
            &mut resp,
            &mut buf,
            "ready",
            |_| true,
            Duration::from_secs(5)
        )
        .await
        .is_some()
    );

    let s = via_b.login("13700000001").await;
    let started = Instant::now();
    let (status, body) = via_b
        .post(&s, &format!("/api/v1/offers/{offer_id}/accept"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let seen = wait_for_event(
        &mut resp,
        &mut buf,
        "order",
        |v| v["order_id"] == order && v["state"] == "assigned",
        Duration::from_secs(1),
    )
    .await;
    assert!(
        seen.is_some(),
        "no live event within 1 s (waited {:?})",
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(1));

    // The inbox count arrives live too, whichever instance delivers.
    notify::deliver_pass(&via_b.state()).await.unwrap();
    let unread = wait_for_event(
        &mut resp,
        &mut buf,
        "inbox",
        |v| v["unread"].as_i64().unwrap_or(0) > 0,
        Duration::from_secs(2),
    )
    .await;
    assert!(unread.is_some());
}

/// Messages to one receiver path whose text (WeCom `content`) starts with `prefix`.
fn wecom_messages(rx: &Receiver, path: &str, prefix: &str) -> Vec<String> {
    rx.at(path)
        .iter()
        .map(|r| {
            json_body(r)["markdown"]["content"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .filter(|c| c.starts_with(prefix))
        .collect()
}

/// Inbox notices of `kind` of a signed-in user.
async fn inbox_of_kind(app: &TestApp, s: &Session, kind: &str) -> Vec<Value> {
    let (status, inbox) = app.get(s, "/api/v1/inbox").await;
    assert_eq!(status, StatusCode::OK, "{inbox}");
    assert_no_personal_data(&inbox.to_string());
    inbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == kind)
        .cloned()
        .collect()
}

#[tokio::test]
async fn notify_an_escalation_to_the_city_reaches_the_city_group_and_the_coordinators_inboxes() {
    use homefront_domain::catalogue::Lane;
    use homefront_server::dispatcher;

    let w = world().await;
    let rx = Receiver::start(0).await;
    w.bot(
        w.xuanwu,
        json!({"kind": "wecom", "name": "玄武区调度群", "url": format!("{}/county?key=X", rx.base)}),
    )
    .await;
    w.app
        .user("13800000003", &[(Role::Coordinator, Some(w.nanjing))])
        .await;
    let city = w.app.login("13800000003").await;
    let (status, b) = w
        .app
        .post(
            &city,
            &format!("/api/v1/org-units/{}/bots", w.nanjing),
            json!({"kind": "wecom", "name": "南京市调度群", "url": format!("{}/city?key=C", rx.base)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    let city_bot = b["id"].as_i64().unwrap();

    // Nobody to dispatch to: the order waits past its lane's deadline twice
    // (tomorrow's window, so the lead before the window plays no part).
    let order = w
        .order_in("escalate", "2020-02-13T18:00", "2020-02-13T22:00")
        .await;
    let lane: Lane = w.app.store.order(order).await.unwrap().unwrap().lane;
    let deadline = lane.deadline_minutes();
    let state = w.app.state();
    dispatcher::tick(&state).await.unwrap();
    w.pass().await;
    assert!(wecom_messages(&rx, "/city", "### 订单升级").is_empty());
    w.app.clock.set(T0.plus_minutes(deadline));
    assert_eq!(dispatcher::tick(&state).await.unwrap().escalated, 1);
    w.pass().await;
    w.app.clock.set(T0.plus_minutes(2 * deadline));
    assert_eq!(dispatcher::tick(&state).await.unwrap().escalated, 1);
    w.pass().await;
    assert_eq!(
        w.app
            .store
            .order(order)
            .await
            .unwrap()
            .unwrap()
            .escalation_level,
        2
    );

    // The city's group hears that the order is now in the city queue.
    let to_city = wecom_messages(&rx, "/city", "### 订单升级：");
    let last = to_city
        .last()
        .expect("an escalation message to the city bot");
    assert!(last.contains("已转至市级协调员队列"), "{last}");
    assert!(
        last.contains(&format!("#{order}")) && last.contains("玄武区"),
        "{last}"
    );
    let rows = w.app.store.deliveries(Some(order)).await.unwrap();
    let city_rows: Vec<_> = rows
        .iter()
        .filter(|d| d.kind == EventKind::OrderEscalated && d.bot_id == Some(city_bot))
        .collect();
    assert_eq!(city_rows.len(), 2, "one per escalation: {rows:?}");
    assert!(
        city_rows
            .iter()
            .all(|d| d.state == DeliveryState::Delivered && d.channel == Channel::Wecom)
    );
    // So does the county's (its orders' escalations, too).
    let to_county = wecom_messages(&rx, "/county", "### 订单升级：");
    assert_eq!(to_county.len(), 2);
    assert!(to_county[1].contains("市级"), "{}", to_county[1]);

    // The city's and the county's coordinators find it in their inboxes;
    // the requester hears of no escalation.
    for s in [&city, &w.coordinator] {
        let notes = inbox_of_kind(&w.app, s, "order_escalated").await;
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(
            notes[0]["title"]
                .as_str()
                .unwrap()
                .starts_with("订单升级：")
        );
        assert!(
            notes[0]["body"]
                .as_str()
                .unwrap()
                .contains("市级协调员队列")
        );
        assert_eq!(notes[0]["order_id"], order);
    }
    assert!(
        inbox_of_kind(&w.app, &w.requester, "order_escalated")
            .await
            .is_empty()
    );
    for r in rx.got() {
        assert_no_personal_data(&r.body);
        assert_no_personal_data(&r.path_and_query);
    }
}

/// Places an order of `item_code` in the dispatch world with the contact
/// phone [`PHONE`] (the member's street is [`STREET`]).
async fn order_with_phone(w: &crate::dispatch::World, item_code: &str, key: &str) -> i64 {
    let item = w
        .app
        .store
        .service_items(false)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.code == item_code)
        .unwrap()
        .id;
    let resp = w
        .app
        .client
        .post(format!("{}/api/v1/orders", w.app.base))
        .bearer_auth(&w.requester.token)
        .header("Idempotency-Key", key)
        .json(
            &json!({"item_id": item, "member_id": w.member, "contact_phone": PHONE,
                      "window_start": "2020-02-12T18:00", "window_end": "2020-02-12T22:00"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

#[tokio::test]
async fn notify_auto_confirmation_tells_the_requester_in_the_inbox_and_by_webhook() {
    use crate::dispatch::{Flaw, accept};
    use homefront_server::workers;

    let w = crate::dispatch::world().await;
    w.mode("sequential", 1).await;
    w.volunteer("13700000001", 1.0, &[], Flaw::default()).await;
    let rx = Receiver::start(0).await;
    let (status, prefs) = w
        .app
        .call(
            Some(&w.requester),
            Method::PUT,
            "/api/v1/notification-preferences",
            Some(json!({"webhook_url": format!("{}/mine", rx.base)})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{prefs}");
    let secret = prefs["webhook_secret"].as_str().unwrap().to_string();

    let order = order_with_phone(&w, "groceries", "auto").await;
    w.tick().await;
    let offer = w.open_offers(order).await.pop().expect("an offer");
    let v = w.app.login("13700000001").await;
    assert_eq!(accept(&w.app, &v, offer.id).await.0, StatusCode::OK);
    for (what, after_ms) in [("check-in", 0), ("check-out", 45 * 60_000)] {
        w.app.clock.advance_ms(after_ms);
        let (status, body) = w
            .app
            .post(&v, &format!("/api/v1/orders/{order}/{what}"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{what}: {body}");
    }
    let state = w.app.state();
    notify::deliver_pass(&state).await.unwrap();
    assert!(
        inbox_of_kind(&w.app, &w.requester, "order_auto_confirmed")
            .await
            .is_empty()
    );
    // One notice per change that matters: the requester hears that a
    // volunteer was found and that the service is done, not of the
    // submission, the dispatching or the check-in; the volunteer hears of
    // the offer only (accepting and checking in and out were their taps).
    let kinds = |inbox: &Value| -> Vec<String> {
        inbox["items"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .map(|i| format!("{}:{}", i["kind"].as_str().unwrap(), i["title"]))
            .collect()
    };
    let (_, mine) = w.app.get(&w.requester, "/api/v1/inbox").await;
    let mine = kinds(&mine);
    assert_eq!(mine.len(), 2, "{mine:?}");
    assert!(mine[0].starts_with("order_assigned:"), "{mine:?}");
    assert!(mine[1].contains("已完成"), "{mine:?}");
    let (_, theirs) = w.app.get(&v, "/api/v1/inbox").await;
    let theirs = kinds(&theirs);
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert!(theirs[0].starts_with("offer_made:"), "{theirs:?}");

    let done_at = w
        .app
        .store
        .order(order)
        .await
        .unwrap()
        .unwrap()
        .checked_out_at
        .unwrap();
    w.app.clock.set(Timestamp(done_at).plus_days(3));
    assert_eq!(
        workers::fulfilment_pass(&state)
            .await
            .unwrap()
            .auto_confirmed,
        1
    );
    notify::deliver_pass(&state).await.unwrap();

    // Three days on, everyone signs in again (sessions last 12 h).
    let requester = w.app.login("13800000001").await;
    let v = w.app.login("13700000001").await;
    let notes = inbox_of_kind(&w.app, &requester, "order_auto_confirmed").await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["title"], "订单已自动确认");
    assert_eq!(notes[0]["order_id"], order);
    assert!(
        notes[0]["body"]
            .as_str()
            .unwrap()
            .contains("系统已自动确认")
    );
    // The volunteer who served hears of it too.
    assert_eq!(
        inbox_of_kind(&w.app, &v, "order_auto_confirmed")
            .await
            .len(),
        1
    );
    // The requester's own webhook: type, order, and a valid signature.
    let hooks: Vec<Received> = rx
        .at("/mine")
        .into_iter()
        .filter(|r| json_body(r)["type"] == "order.auto_confirmed")
        .collect();
    assert_eq!(hooks.len(), 1);
    let h = &hooks[0];
    let body = json_body(h);
    assert_eq!(body["data"]["order_id"], order);
    assert_eq!(body["data"]["to"], "confirmed");
    let id = h.headers["webhook-id"].to_str().unwrap();
    let ts: i64 = h.headers["webhook-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let expected = standardwebhooks::Webhook::new(&secret)
        .unwrap()
        .sign(id, ts, h.body.as_bytes())
        .unwrap();
    assert_eq!(h.headers["webhook-signature"].to_str().unwrap(), expected);
    for r in rx.got() {
        assert_no_personal_data(&r.body);
    }
}

#[tokio::test]
async fn notify_an_expiring_credential_tells_its_holder_once() {
    use crate::dispatch::Flaw;

    let w = crate::dispatch::world().await;
    // Insurance ending a minute after T0: within the 14 days' notice.
    w.volunteer(
        "13700000001",
        1.0,
        &[],
        Flaw {
            expired_insurance: true,
            ..Flaw::default()
        },
    )
    .await;
    let state = w.app.state();
    assert_eq!(notify::credential_pass(&state).await.unwrap(), 1);
    assert_eq!(
        notify::credential_pass(&state).await.unwrap(),
        0,
        "once per credential and expiry"
    );
    notify::deliver_pass(&state).await.unwrap();
    let v = w.app.login("13700000001").await;
    let notes = inbox_of_kind(&w.app, &v, "credential_expiring").await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["title"], "证件即将到期");
    let body = notes[0]["body"].as_str().unwrap();
    assert!(
        body.contains("意外保险") && body.contains("2020-02-12"),
        "{body}"
    );
    // Neither the policy number nor the insurer.
    assert!(
        !body.contains("PICC") && !body.contains("中国人保"),
        "{body}"
    );
    // Nobody else is told.
    assert!(
        inbox_of_kind(&w.app, &w.coordinator, "credential_expiring")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn notify_markdown_in_an_item_name_reaches_group_bots_escaped() {
    let w = world().await;
    let rx = Receiver::start(0).await;
    w.bot(
        w.xuanwu,
        json!({"kind": "wecom", "name": "玄武区调度群", "url": format!("{}/wecom/send?key=K", rx.base)}),
    )
    .await;
    w.bot(
        w.xuanwu,
        json!({"kind": "dingtalk", "name": "钉钉群", "locale": "en",
               "url": format!("{}/dingtalk/send?access_token=T", rx.base)}),
    )
    .await;
    // A local item whose names a coordinator typed with Markdown in them.
    let evil_zh =
        "买菜[点此](http://evil.example) **加急**\n# 通知 <font color=\"warning\">!</font>";
    let evil_en = "Food [click](http://evil.example) **now**\n# Heading";
    let (status, item) = w
        .app
        .post(
            &w.coordinator,
            "/api/v1/service-items",
            json!({"code": "md_groceries", "org_unit_id": w.xuanwu, "name_zh": evil_zh,
                   "name_en": evil_en, "mode": "onsite", "qualifications": [],
                   "default_duration_minutes": 60, "offer_timeout_seconds": 300,
                   "lane": "standard"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{item}");
    let resp = w
        .app
        .client
        .post(format!("{}/api/v1/orders", w.app.base))
        .bearer_auth(&w.requester.token)
        .header("Idempotency-Key", "md")
        .json(
            &json!({"item_id": item["id"], "member_id": w.member, "contact_phone": PHONE,
                      "window_start": "2020-02-12T18:00", "window_end": "2020-02-12T22:00"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    w.pass().await;

    let wecom = rx.at("/wecom/send");
    assert_eq!(wecom.len(), 1);
    let content = json_body(&wecom[0])["markdown"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    let ding = rx.at("/dingtalk/send");
    assert_eq!(ding.len(), 1);
    let text = json_body(&ding[0])["markdown"]["text"]
        .as_str()
        .unwrap()
        .to_string();
    for body in [&content, &text] {
        // No link, emphasis, HTML tag or heading survives unescaped: with
        // every escaped character taken out, none of their marks is left.
        let mut bare = String::new();
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                chars.next();
            } else {
                bare.push(c);
            }
        }
        for mark in ["[", "]", "*", "<", ">", "\n# "] {
            assert!(!bare.contains(mark), "{mark:?} unescaped in {body}");
        }
        // ... and the template's own heading and bullets are still there.
        assert!(body.starts_with("### "), "{body}");
        assert!(body.contains("\n- "), "{body}");
    }
    assert!(
        content.contains(r"买菜\[点此\]\(http://evil.example\) \*\*加急\*\* \# 通知 \<font"),
        "{content}"
    );
    assert!(
        text.contains(r"Food \[click\]\(http://evil.example\) \*\*now\*\* \# Heading"),
        "{text}"
    );
    // DingTalk's title is plain text (the chat list does not render it).
    let title = json_body(&ding[0])["markdown"]["title"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(title.contains("[click](http://evil.example)"), "{title}");
}
