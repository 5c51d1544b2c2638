//! Fulfilment over HTTP: the hours ledger from check-in and check-out,
//! capped open sessions, adjustments, confirmation and auto-confirmation,
//! follow-ups, pairings and re-pairing proposals.

use homefront_domain::Timestamp;
use homefront_domain::credentials::CredentialKind;
use homefront_domain::order_state::OrderState;
use homefront_server::workers;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::dispatch::{Flaw, World, accept, world};
use crate::helpers::Session;

/// 2020-02-12T22:00+08:00.
const EVENING_22: Timestamp = Timestamp(1_581_516_000_000);

/// A night-care item of 9 h so an overnight session is within its duration.
async fn night_care(w: &World) -> i64 {
    let (status, item) = w
        .app
        .post(
            &w.coordinator,
            "/api/v1/service-items",
            json!({"code": "night_care", "org_unit_id": w.xuanwu, "name_zh": "夜间陪护",
                   "name_en": "Night care", "mode": "onsite", "default_duration_minutes": 540,
                   "offer_timeout_seconds": 600, "lane": "standard"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{item}");
    item["id"].as_i64().unwrap()
}

/// Places an order of item `item_id`, dispatches it to the only volunteer
/// and has them accept; returns (order id, volunteer session).
async fn assigned(w: &World, item_code: &str, key: &str, phone: &str) -> (i64, Session) {
    let order = w.order(item_code, key).await;
    w.tick().await;
    let offer = w.open_offers(order).await.pop().expect("an offer");
    let s = w.app.login(phone).await;
    assert_eq!(accept(&w.app, &s, offer.id).await.0, StatusCode::OK);
    (order, s)
}

async fn act(w: &World, s: &Session, order: i64, what: &str) -> (StatusCode, Value) {
    w.app
        .post(s, &format!("/api/v1/orders/{order}/{what}"), json!({}))
        .await
}

#[tokio::test]
async fn an_overnight_session_counts_eight_hours_and_adjustments_append() {
    let w = world().await;
    w.mode("sequential", 1).await;
    night_care(&w).await;
    let v = w.volunteer("13700000001", 1.0, &[], Flaw::default()).await;
    let (order, s) = assigned(&w, "night_care", "night", "13700000001").await;
    w.app.clock.set(EVENING_22);
    assert_eq!(act(&w, &s, order, "check-in").await.0, StatusCode::OK);
    w.app.clock.set(EVENING_22.plus_minutes(8 * 60));
    // Sessions last 12 h: the night outlived the morning's sign-ins.
    let s = w.app.login("13700000001").await;
    let coordinator = w.app.login("13800000002").await;
    let (status, body) = act(&w, &s, order, "check-out").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "completed");

    let (_, hours) = w.app.get(&s, "/api/v1/hours/me").await;
    assert_eq!(hours["total"]["recorded_minutes"], 480);
    assert_eq!(hours["total"]["backfilled_minutes"], 0);
    assert_eq!(hours["orders_served"], 1);
    assert_eq!(hours["by_item"]["night_care"]["recorded_minutes"], 480);
    assert_eq!(hours["by_month"]["2020-02"]["recorded_minutes"], 480);
    let entry = hours["entries"][0]["id"].as_i64().unwrap();

    // A coordinator's adjustment is a new entry; the original stays.
    let (status, adj) = w
        .app
        .post(
            &coordinator,
            &format!("/api/v1/hours/{entry}/adjust"),
            json!({"minutes_delta": 30, "reason": "交接时间未计入"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{adj}");
    assert_eq!(adj["adjusts_entry_id"], entry);
    let (_, after) = w
        .app
        .get(&coordinator, &format!("/api/v1/volunteers/{v}/hours"))
        .await;
    assert_eq!(after["total"]["recorded_minutes"], 510);
    assert_eq!(after["entries"].as_array().unwrap().len(), 2);
    assert_eq!(
        after["entries"][0]["minutes"], 480,
        "the original is intact"
    );
    let (status, err) = w
        .app
        .post(
            &coordinator,
            &format!("/api/v1/hours/{entry}/adjust"),
            json!({"minutes_delta": -600, "reason": "x"}),
        )
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("below_zero"))
    );

    // A backfill is kept apart from recorded hours.
    let (status, _) = w
        .app
        .post(&coordinator, &format!("/api/v1/volunteers/{v}/hours"),
              json!({"minutes": 90, "started_at": EVENING_22.plus_days(-3).epoch_ms(), "reason": "线下送药,未签到"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, totals) = w.app.get(&s, "/api/v1/hours/me").await;
    assert_eq!(
        (
            totals["total"]["recorded_minutes"].as_i64(),
            totals["total"]["backfilled_minutes"].as_i64()
        ),
        (Some(510), Some(90))
    );
}

#[tokio::test]
async fn a_session_ending_at_midnight_counts_one_hour() {
    let w = world().await;
    w.mode("sequential", 1).await;
    night_care(&w).await;
    w.volunteer("13700000001", 1.0, &[], Flaw::default()).await;
    let (order, s) = assigned(&w, "night_care", "midnight", "13700000001").await;
    w.app.clock.set(EVENING_22.plus_minutes(60)); // 23:00
    act(&w, &s, order, "check-in").await;
    w.app.clock.set(EVENING_22.plus_minutes(120)); // 00:00 next day
    act(&w, &s, order, "check-out").await;
    let (_, hours) = w.app.get(&s, "/api/v1/hours/me").await;
    assert_eq!(hours["total"]["recorded_minutes"], 60);
}

#[tokio::test]
async fn an_open_check_in_is_flagged_and_capped() {
    let w = world().await;
    w.mode("sequential", 1).await;
    w.volunteer("13700000001", 1.0, &[], Flaw::default()).await;
    let (order, s) = assigned(&w, "groceries", "open", "13700000001").await; // 60 min
    w.app.clock.set(EVENING_22);
    act(&w, &s, order, "check-in").await;
    let state = w.app.state();
    // Default 60 min + grace 60 min: nothing before the deadline...
    w.app.clock.set(EVENING_22.plus_minutes(120).plus_ms(-1));
    assert_eq!(workers::fulfilment_pass(&state).await.unwrap().capped, 0);
    w.app.clock.set(EVENING_22.plus_minutes(120));
    assert_eq!(workers::fulfilment_pass(&state).await.unwrap().capped, 1);
    assert_eq!(
        workers::fulfilment_pass(&state).await.unwrap().capped,
        0,
        "once"
    );
    let (_, queue) = w.app.get(&w.coordinator, "/api/v1/follow-ups").await;
    assert_eq!(queue[0]["kind"], "open_session");
    assert_eq!(queue[0]["order_id"], order);
    // Checking out three days later adds nothing: the cap stands.
    w.app.clock.set(EVENING_22.plus_days(3));
    let s = w.app.login("13700000001").await;
    assert_eq!(act(&w, &s, order, "check-out").await.0, StatusCode::OK);
    let (_, hours) = w.app.get(&s, "/api/v1/hours/me").await;
    assert_eq!(hours["total"]["recorded_minutes"], 60);
    assert_eq!(hours["entries"].as_array().unwrap().len(), 1);
    assert_eq!(hours["entries"][0]["capped"], 1);
}

#[tokio::test]
async fn unconfirmed_orders_confirm_themselves_after_n_days() {
    let w = world().await;
    w.mode("sequential", 1).await;
    w.volunteer("13700000001", 1.0, &[], Flaw::default()).await;
    let (order, s) = assigned(&w, "groceries", "auto", "13700000001").await;
    act(&w, &s, order, "check-in").await;
    w.app.clock.advance_ms(45 * 60_000);
    act(&w, &s, order, "check-out").await;
    let done_at = w
        .app
        .store
        .order(order)
        .await
        .unwrap()
        .unwrap()
        .checked_out_at
        .unwrap();
    let state = w.app.state();
    w.app.clock.set(Timestamp(done_at).plus_days(3).plus_ms(-1));
    assert_eq!(
        workers::fulfilment_pass(&state)
            .await
            .unwrap()
            .auto_confirmed,
        0
    );
    w.app.clock.set(Timestamp(done_at).plus_days(3));
    assert_eq!(
        workers::fulfilment_pass(&state)
            .await
            .unwrap()
            .auto_confirmed,
        1
    );
    let o = w.app.store.order(order).await.unwrap().unwrap();
    assert_eq!(o.state, OrderState::Confirmed);
    let last = w
        .app
        .store
        .order_events(order)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        (last.action.as_str(), last.actor_user_id),
        ("confirm", None)
    );
    assert!(last.reason.unwrap().contains("auto-confirmed"));
}

#[tokio::test]
async fn a_low_rating_opens_a_follow_up() {
    let w = world().await;
    w.mode("sequential", 1).await;
    w.volunteer("13700000001", 1.0, &[], Flaw::default()).await;
    let (order, s) = assigned(&w, "groceries", "rate", "13700000001").await;
    act(&w, &s, order, "check-in").await;
    act(&w, &s, order, "check-out").await;
    let (status, err) = w
        .app
        .post(
            &w.requester,
            &format!("/api/v1/orders/{order}/confirm"),
            json!({"rating": 9}),
        )
        .await;
    assert_eq!(
        (status, err["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("rating"))
    );
    let (status, _) = w
        .app
        .post(
            &w.requester,
            &format!("/api/v1/orders/{order}/confirm"),
            json!({"rating": 2, "comment": "迟到了一小时"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, queue) = w.app.get(&w.coordinator, "/api/v1/follow-ups").await;
    assert_eq!(queue.as_array().unwrap().len(), 1);
    assert_eq!(queue[0]["kind"], "low_rating");
}

#[tokio::test]
async fn counselling_is_followed_up_after_seven_days_by_the_same_volunteer_first() {
    let w = world().await;
    w.mode("broadcast", 5).await;
    let v = w
        .volunteer(
            "13700000001",
            1.0,
            &[CredentialKind::Counsellor],
            Flaw::default(),
        )
        .await;
    let other = w
        .volunteer(
            "13700000002",
            0.2,
            &[CredentialKind::Counsellor],
            Flaw::default(),
        )
        .await;
    let order = w.order("counselling", "counsel").await;
    w.tick().await;
    let offers = w.open_offers(order).await;
    let mine = offers.iter().find(|o| o.volunteer_user_id == v).unwrap();
    let s = w.app.login("13700000001").await;
    assert_eq!(accept(&w.app, &s, mine.id).await.0, StatusCode::OK);
    act(&w, &s, order, "check-in").await;
    w.app.clock.advance_ms(50 * 60_000);
    act(&w, &s, order, "check-out").await;
    let done = w
        .app
        .store
        .order(order)
        .await
        .unwrap()
        .unwrap()
        .checked_out_at
        .unwrap();

    let state = w.app.state();
    w.app.clock.set(Timestamp(done).plus_days(7).plus_ms(-1));
    assert_eq!(
        workers::fulfilment_pass(&state).await.unwrap().follow_ups,
        0
    );
    w.app.clock.set(Timestamp(done).plus_days(7));
    assert_eq!(
        workers::fulfilment_pass(&state).await.unwrap().follow_ups,
        1
    );
    assert_eq!(
        workers::fulfilment_pass(&state).await.unwrap().follow_ups,
        0,
        "once"
    );
    let list = w.app.store.orders(&Default::default()).await.unwrap();
    let follow = list.iter().find(|o| o.follow_up_of == Some(order)).unwrap();
    assert_eq!(follow.state, OrderState::Submitted);
    assert_eq!(follow.created_at, Timestamp(done).plus_days(7).epoch_ms());
    w.tick().await;
    let offers = w.open_offers(follow.id).await;
    assert_eq!(offers.len(), 1, "the same volunteer first, alone");
    assert_eq!(offers[0].volunteer_user_id, v);
    assert_ne!(offers[0].volunteer_user_id, other);
}

/// A follow-up that falls due at night (21:30 in Nanjing) is placed at
/// 08:00 the next morning, and timed from then.
#[tokio::test]
async fn a_follow_up_due_at_night_is_placed_in_the_morning() {
    let w = world().await;
    w.mode("broadcast", 5).await;
    w.volunteer(
        "13700000001",
        1.0,
        &[CredentialKind::Counsellor],
        Flaw::default(),
    )
    .await;
    let order = w.order("counselling", "counsel-night").await;
    w.tick().await;
    let offer = w.open_offers(order).await[0].id;
    let s = w.app.login("13700000001").await;
    assert_eq!(accept(&w.app, &s, offer).await.0, StatusCode::OK);
    act(&w, &s, order, "check-in").await;
    // Check out at 21:30 local (UTC+8): the follow-up falls due at 21:30.
    let local_midnight = {
        let now = homefront_domain::Clock::now(&w.app.clock).epoch_ms();
        now - (now + 8 * Timestamp::HOUR_MS).rem_euclid(Timestamp::DAY_MS)
    };
    w.app.clock.set(Timestamp(
        local_midnight + 21 * Timestamp::HOUR_MS + 30 * 60_000,
    ));
    act(&w, &s, order, "check-out").await;

    let state = w.app.state();
    let due = Timestamp(local_midnight + 21 * Timestamp::HOUR_MS + 30 * 60_000).plus_days(7);
    for at in [
        due,
        due.plus_ms(2 * Timestamp::HOUR_MS),
        due.plus_ms(10 * Timestamp::HOUR_MS),
    ] {
        w.app.clock.set(at);
        assert_eq!(
            workers::fulfilment_pass(&state).await.unwrap().follow_ups,
            0,
            "not at night ({at:?})"
        );
    }
    // 08:00 the next morning.
    let morning = due.plus_ms(10 * Timestamp::HOUR_MS + 30 * 60_000);
    w.app.clock.set(morning);
    assert_eq!(
        workers::fulfilment_pass(&state).await.unwrap().follow_ups,
        1
    );
    let list = w.app.store.orders(&Default::default()).await.unwrap();
    let follow = list.iter().find(|o| o.follow_up_of == Some(order)).unwrap();
    assert_eq!(follow.created_at, morning.epoch_ms());
    assert_eq!(follow.window_start, morning.epoch_ms());
}

#[tokio::test]
async fn suspending_a_paired_volunteer_proposes_a_replacement() {
    let w = world().await;
    let first = w.volunteer("13700000001", 0.5, &[], Flaw::default()).await;
    let near = w.volunteer("13700000002", 1.0, &[], Flaw::default()).await;
    let _far = w.volunteer("13700000003", 6.0, &[], Flaw::default()).await;
    let (status, p) = w
        .app
        .post(
            &w.coordinator,
            "/api/v1/pairings",
            json!({"household_id": w.household, "volunteer_user_id": first, "role": "primary"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let (status, err) = w
        .app
        .post(
            &w.coordinator,
            "/api/v1/pairings",
            json!({"household_id": w.household, "volunteer_user_id": near, "role": "primary"}),
        )
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::CONFLICT, Some("primary_taken"))
    );

    // The paired volunteer sees the household's standing details, no address.
    let s = w.app.login("13700000001").await;
    let (_, mine) = w.app.get(&s, "/api/v1/pairings/me").await;
    assert_eq!(mine[0]["members"][0]["name"], "刘护士");
    assert_eq!(mine[0]["members"][0]["district"], "玄武区");
    assert!(!mine.to_string().contains("龙蟠中路"));

    let (status, _) = w
        .app
        .post(
            &w.coordinator,
            &format!("/api/v1/volunteers/{first}/vetting"),
            json!({"target_state": "suspended"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    workers::fulfilment_pass(&w.app.state()).await.unwrap();
    let (_, proposals) = w.app.get(&w.coordinator, "/api/v1/pairing-proposals").await;
    assert_eq!(proposals.as_array().unwrap().len(), 1, "{proposals}");
    assert_eq!(proposals[0]["role"], "primary");
    assert_eq!(proposals[0]["proposed_volunteer_user_id"], near);
    let id = proposals[0]["id"].as_i64().unwrap();
    let (status, pairing) = w
        .app
        .call(
            Some(&w.coordinator),
            Method::POST,
            &format!("/api/v1/pairing-proposals/{id}/accept"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{pairing}");
    assert_eq!(
        (
            pairing["volunteer_user_id"].as_i64(),
            pairing["role"].as_str()
        ),
        (Some(near), Some("primary"))
    );
    let (status, _) = w
        .app
        .call(
            Some(&w.coordinator),
            Method::POST,
            &format!("/api/v1/pairing-proposals/{id}/accept"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "decided once");
}
