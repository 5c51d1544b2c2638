//! The dispatcher keeps dispatching until an order is served or its window
//! passes: re-offers after a cooldown, the load cap counted everywhere,
//! escalation that widens the pool, ranking by full cost and rank-aware
//! acceptance. Over HTTP on the manual clock, the dispatcher run by
//! `dispatcher::tick` as the worker would.

use homefront_domain::Timestamp;
use homefront_domain::credentials::CredentialKind;
use homefront_domain::order_state::OrderState;
use reqwest::StatusCode;
use serde_json::json;

use crate::dispatch::{Flaw, accept, world};
use crate::helpers::T0;

/// A volunteer who let an offer expire is offered the same order again
/// once the unit's cooldown (default 10 min) has passed, accepts and is
/// assigned; a volunteer who declined is never offered it again.
#[tokio::test]
async fn an_expired_offer_is_made_again_after_the_cooldown_and_served() {
    let w = world().await;
    w.mode("sequential", 1).await;
    let near = w.volunteer("13700000001", 0.5, &[], Flaw::default()).await;
    let next = w.volunteer("13700000002", 2.0, &[], Flaw::default()).await;
    let order = w.order("groceries", "cooldown").await;
    w.tick().await;
    let first = w.open_offers(order).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].volunteer_user_id, near);

    // The nearest lets it expire: the next candidate gets it, and declines.
    let expired_at = first[0].expires_at;
    w.app.clock.set(Timestamp(expired_at));
    w.tick().await;
    let second = w.open_offers(order).await;
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].volunteer_user_id, next);
    let s_next = w.app.login("13700000002").await;
    let (status, body) = w
        .app
        .post(
            &s_next,
            &format!("/api/v1/offers/{}/decline", second[0].id),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Within the cooldown nobody may be offered it.
    w.app.clock.set(Timestamp(expired_at + 10 * 60_000 - 1));
    w.tick().await;
    assert!(w.open_offers(order).await.is_empty());
    assert_eq!(
        w.app.store.order(order).await.unwrap().unwrap().state,
        OrderState::Dispatching
    );

    // After it, the first volunteer is offered the order again; the one
    // who declined is not.
    w.app.clock.set(Timestamp(expired_at + 10 * 60_000));
    w.tick().await;
    let third = w.open_offers(order).await;
    assert_eq!(third.len(), 1, "{third:?}");
    assert_eq!(third[0].volunteer_user_id, near);
    assert_eq!(third[0].round, 3);
    let s_near = w.app.login("13700000001").await;
    let (status, body) = accept(&w.app, &s_near, third[0].id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let o = w.app.store.order(order).await.unwrap().unwrap();
    assert_eq!(
        (o.state, o.assignee_user_id),
        (OrderState::Assigned, Some(near))
    );
    let offers_to_next = w
        .app
        .store
        .offers_of_order(order)
        .await
        .unwrap()
        .iter()
        .filter(|o| o.volunteer_user_id == next)
        .count();
    assert_eq!(offers_to_next, 1, "a decline is final for the order");
}

/// The cooldown is set per unit with the mode, and checked.
#[tokio::test]
async fn the_reoffer_cooldown_is_a_unit_setting() {
    let w = world().await;
    let path = format!("/api/v1/org-units/{}/dispatch-setting", w.xuanwu);
    let (status, body) = w.app.get(&w.coordinator, &path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reoffer_cooldown_minutes"], 10);
    let (status, body) = w
        .app
        .call(
            Some(&w.coordinator),
            reqwest::Method::PUT,
            &path,
            Some(json!({"mode": "sequential", "reoffer_cooldown_minutes": 1441})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str(), body["field"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("out_of_range"),
            Some("reoffer_cooldown_minutes")
        )
    );
    let (status, body) = w
        .app
        .call(
            Some(&w.coordinator),
            reqwest::Method::PUT,
            &path,
            Some(json!({"mode": "sequential", "reoffer_cooldown_minutes": 0})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // With no cooldown, an expired offer is made again at the next pass.
    let v = w.volunteer("13700000001", 0.5, &[], Flaw::default()).await;
    let order = w.order("groceries", "no-cooldown").await;
    w.tick().await;
    let first = w.open_offers(order).await.pop().unwrap();
    w.app.clock.set(Timestamp(first.expires_at));
    w.tick().await;
    let again = w.open_offers(order).await;
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].volunteer_user_id, again[0].round), (v, 2));
}

/// Open offers count toward a volunteer's `max_concurrent`: at the cap
/// (one open offer, cap 1) they get no offer of a second order, which goes
/// to the next candidate.
#[tokio::test]
async fn a_volunteer_at_the_cap_gets_no_new_offer() {
    let w = world().await;
    w.mode("broadcast", 5).await;
    let capped = w.volunteer("13700000001", 0.5, &[], Flaw::default()).await;
    let first = w.order("groceries", "cap-1").await;
    w.tick().await;
    let offers = w.open_offers(first).await;
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].volunteer_user_id, capped);

    // Another day's order: no overlap, but the cap (1) is taken by the
    // open offer.
    let other = w.volunteer("13700000002", 3.0, &[], Flaw::default()).await;
    let second = w
        .order_with(
            "groceries",
            "cap-2",
            json!({"window_start": "2020-02-13T18:00", "window_end": "2020-02-13T22:00"}),
        )
        .await;
    w.tick().await;
    let offered: Vec<i64> = w
        .open_offers(second)
        .await
        .iter()
        .map(|o| o.volunteer_user_id)
        .collect();
    assert_eq!(offered, vec![other]);

    // With a cap of 2 the same volunteer may hold both.
    w.max_load(capped, 2).await;
    let third = w
        .order_with(
            "groceries",
            "cap-3",
            json!({"window_start": "2020-02-14T18:00", "window_end": "2020-02-14T22:00"}),
        )
        .await;
    w.tick().await;
    assert!(
        w.open_offers(third)
            .await
            .iter()
            .any(|o| o.volunteer_user_id == capped)
    );
}

/// An accept re-checks the cap in the same compare-and-set: a volunteer
/// with cap 1 holding two offers (of orders on different days, so they do
/// not overlap) accepts the first and gets 409 `load_cap_reached` for the
/// second, which stays open for others.
#[tokio::test]
async fn a_volunteer_at_the_cap_cannot_accept_a_second_order() {
    use homefront_domain::Clock;
    let w = world().await;
    w.mode("manual", 1).await;
    let v = w.volunteer("13700000001", 0.5, &[], Flaw::default()).await;
    let s = w.app.login("13700000001").await;
    let later = w.app.clock.now().epoch_ms() + 3_600_000;
    let first = w.order("groceries", "cap-accept-1").await;
    let second = w
        .order_with(
            "groceries",
            "cap-accept-2",
            json!({"window_start": "2020-02-13T18:00", "window_end": "2020-02-13T22:00"}),
        )
        .await;
    let a = w.offer_to(first, v, later).await;
    let b = w.offer_to(second, v, later).await;
    let (status, body) = accept(&w.app, &s, a).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = accept(&w.app, &s, b).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("load_cap_reached")),
        "{body}"
    );
    let o = w.app.store.order(second).await.unwrap().unwrap();
    assert_eq!(
        (o.state, o.assignee_user_id),
        (OrderState::Dispatching, None)
    );
    assert_eq!(
        w.app.store.offer_responses(b).await.unwrap(),
        vec![("accept".to_string(), "load_cap_reached".to_string())]
    );
    // With a cap of 2 the second can be accepted too.
    w.max_load(v, 2).await;
    let (status, body) = accept(&w.app, &s, b).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Going off duty withdraws the volunteer's open offers at once (a late
/// accept is 409 `offer_withdrawn`), tells them, and the order goes to
/// the next candidate.
#[tokio::test]
async fn going_off_duty_withdraws_open_offers() {
    let w = world().await;
    w.mode("sequential", 1).await;
    let leaving = w.volunteer("13700000001", 0.5, &[], Flaw::default()).await;
    let staying = w.volunteer("13700000002", 2.0, &[], Flaw::default()).await;
    let s = w.app.login("13700000001").await;
    let order = w.order("groceries", "off-duty").await;
    w.tick().await;
    let offer = w.open_offers(order).await.pop().unwrap();
    assert_eq!(offer.volunteer_user_id, leaving);

    let (status, body) = w
        .app
        .post(&s, "/api/v1/volunteers/me/duty", json!({"on_duty": false}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        w.app.store.offer(offer.id).await.unwrap().unwrap().state,
        "withdrawn"
    );
    let (status, body) = accept(&w.app, &s, offer.id).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("offer_withdrawn")),
        "{body}"
    );
    // Their offer list no longer shows it as open.
    let (_, open) = w.app.get(&s, "/api/v1/offers").await;
    assert!(open.as_array().unwrap().is_empty(), "{open}");
    w.tick().await;
    let next = w.open_offers(order).await;
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].volunteer_user_id, staying);
}

/// Escalation widens the pool: at the city queue (level 2) a team of a
/// neighbouring county serves, and every service radius is widened by the
/// configured factor per level (1.5 by default: 10 km → 22.5 km), so a
/// volunteer 13 km away in the next county is offered the order. With
/// nobody at the county level the order climbs there at its first pass.
#[tokio::test]
async fn escalation_to_the_city_reaches_a_neighbouring_countys_volunteer() {
    let w = world().await;
    w.mode("broadcast", 5).await;
    let qinhuai = w.app.division("320104").await;
    let neighbour_team = w.team_under(qinhuai, "秦淮区志愿服务队").await;
    let neighbour = w
        .volunteer_on(neighbour_team, "13700000001", 13.0, &[], Flaw::default())
        .await;
    // Tomorrow's window: the lane's deadline (standard, 120 min) would
    // leave it waiting two hours per level, with nobody to offer it to.
    let order = w
        .order_with(
            "groceries",
            "widen-city",
            json!({"window_start": "2020-02-13T18:00", "window_end": "2020-02-13T22:00"}),
        )
        .await;
    w.tick().await;
    let o = w.app.store.order(order).await.unwrap().unwrap();
    assert_eq!(o.escalation_level, 2, "county, then city, at once");
    let offers = w.open_offers(order).await;
    assert_eq!(offers.len(), 1, "{offers:?}");
    assert_eq!(offers[0].volunteer_user_id, neighbour);
    assert!(offers[0].distance_km.unwrap() > 12.0);
    let reasons: Vec<String> = w
        .app
        .store
        .order_events(order)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action.as_str() == "escalate")
        .filter_map(|e| e.reason)
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .all(|r| r.starts_with("no volunteer left to offer it to")),
        "{reasons:?}"
    );
}

/// An order whose county has a volunteer for it stays at its level while
/// that volunteer decides; once they decline and nobody else is left, it
/// climbs at once instead of waiting out the lane's deadline.
#[tokio::test]
async fn an_order_climbs_at_once_when_its_level_has_nobody_left() {
    let w = world().await;
    w.mode("broadcast", 5).await;
    let local = w.volunteer("13700000002", 1.0, &[], Flaw::default()).await;
    let qinhuai = w.app.division("320104").await;
    let neighbour_team = w.team_under(qinhuai, "秦淮区志愿服务队").await;
    let neighbour = w
        .volunteer_on(neighbour_team, "13700000001", 13.0, &[], Flaw::default())
        .await;
    let order = w
        .order_with(
            "groceries",
            "climb-after-decline",
            json!({"window_start": "2020-02-13T18:00", "window_end": "2020-02-13T22:00"}),
        )
        .await;
    w.tick().await;
    let offers = w.open_offers(order).await;
    assert_eq!(offers.len(), 1, "{offers:?}");
    assert_eq!(offers[0].volunteer_user_id, local);
    let o = w.app.store.order(order).await.unwrap().unwrap();
    assert_eq!(o.escalation_level, 0, "someone is deciding");
    let s = w.app.login("13700000002").await;
    let (status, body) = w
        .app
        .post(
            &s,
            &format!("/api/v1/offers/{}/decline", offers[0].id),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    w.tick().await;
    let o = w.app.store.order(order).await.unwrap().unwrap();
    assert_eq!(o.escalation_level, 2);
    let offers = w.open_offers(order).await;
    assert_eq!(offers.len(), 1, "{offers:?}");
    assert_eq!(offers[0].volunteer_user_id, neighbour);
}

/// A remote item (counselling by phone) reaches any qualified volunteer of
/// the province at the top level: with no counsellor in its city, the
/// order climbs there at its first pass.
#[tokio::test]
async fn counselling_at_province_level_reaches_another_citys_counsellor() {
    let w = world().await;
    w.mode("broadcast", 5).await;
    let suzhou = w.app.division("320500").await;
    let suzhou_team = w.team_under(suzhou, "苏州12355青少年服务台").await;
    let counsellor = w
        .volunteer_on(
            suzhou_team,
            "13700000001",
            200.0,
            &[CredentialKind::Counsellor],
            Flaw::default(),
        )
        .await;
    // 18:00 today, about 19 minutes ahead; nobody in Nanjing counsels.
    let order = w.order("counselling", "widen-province").await;
    w.tick().await;
    let o = w.app.store.order(order).await.unwrap().unwrap();
    assert_eq!(o.escalation_level, 3);
    let offers = w.open_offers(order).await;
    assert_eq!(offers.len(), 1, "{offers:?}");
    assert_eq!(offers[0].volunteer_user_id, counsellor);
}

/// Offers go to the best by full cost among the k (16) nearest, not to the
/// nearest: a volunteer 0.5 km away already holding a service (load term
/// 2 km by default: cost 2.5) loses the sequential offer to an idle one
/// 2 km away (cost 2.0), and the offer's explanation says why.
#[tokio::test]
async fn offers_go_to_the_best_by_full_cost_among_the_nearest() {
    use homefront_domain::Clock;
    let w = world().await;
    w.mode("sequential", 1).await;
    let busy = w.volunteer("13700000001", 0.5, &[], Flaw::default()).await;
    w.max_load(busy, 2).await;
    // The busy volunteer holds tomorrow's service (no overlap with tonight).
    let s = w.app.login("13700000001").await;
    let tomorrow = w
        .order_with(
            "groceries",
            "cost-held",
            json!({"window_start": "2020-02-13T18:00", "window_end": "2020-02-13T22:00"}),
        )
        .await;
    let later = w.app.clock.now().epoch_ms() + 3_600_000;
    let held = w.offer_to(tomorrow, busy, later).await;
    assert_eq!(accept(&w.app, &s, held).await.0, StatusCode::OK);
    let idle = w.volunteer("13700000002", 2.0, &[], Flaw::default()).await;

    let order = w.order("groceries", "cost-tonight").await;
    w.tick().await;
    let offers = w.open_offers(order).await;
    assert_eq!(offers.len(), 1, "{offers:?}");
    assert_eq!(offers[0].volunteer_user_id, idle);
    assert_eq!(offers[0].candidate_rank, 1);
    let why: serde_json::Value = serde_json::from_str(&offers[0].explanation).unwrap();
    assert!(why["distance_km"].as_f64().unwrap() > 1.5, "{why}");
    // The coordinator's list shows both, the nearer one second by its load.
    let (status, list) = w
        .app
        .get(
            &w.coordinator,
            &format!("/api/v1/orders/{order}/candidates"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list[0]["volunteer_user_id"], idle);
    assert_eq!(list[1]["volunteer_user_id"], busy);
    assert!(list[1]["cost"]["load"].as_f64().unwrap() > 1.9, "{list}");
}

/// Rank-aware broadcast: an accept from the farthest of three is held
/// (202, "waiting for confirmation" with the time, on the API and on the
/// page in both languages) while nearer candidates decide; the nearest
/// accepts within the hold and wins at once, and the held one is told it
/// was taken.
#[tokio::test]
async fn a_farther_accept_is_held_and_the_nearer_accept_wins_within_the_hold() {
    let w = world().await;
    w.mode("broadcast", 3).await;
    let near = w.volunteer("13700000001", 0.5, &[], Flaw::default()).await;
    let _mid = w.volunteer("13700000002", 1.5, &[], Flaw::default()).await;
    let far = w.volunteer("13700000003", 3.0, &[], Flaw::default()).await;
    let s_near = w.app.login("13700000001").await;
    let s_far = w.app.login("13700000003").await;
    let order = w.order("groceries", "rank-aware").await;
    w.tick().await;
    let offers = w.open_offers(order).await;
    assert_eq!(offers.len(), 3);
    let offer_of = |v: i64| offers.iter().find(|o| o.volunteer_user_id == v).unwrap();
    assert_eq!(offer_of(near).candidate_rank, 1);
    assert_eq!(offer_of(far).candidate_rank, 3);

    let (status, body) = accept(&w.app, &s_far, offer_of(far).id).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["waiting_for_confirmation"], true);
    assert_eq!(body["hold_until"], T0.0 + 90_000);
    assert_eq!(
        w.app.store.order(order).await.unwrap().unwrap().state,
        OrderState::Dispatching
    );
    // Asking again answers the same; the offer list shows the wait.
    let (status, _) = accept(&w.app, &s_far, offer_of(far).id).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, mine) = w.app.get(&s_far, "/api/v1/offers").await;
    assert_eq!(mine[0]["waiting_for_confirmation"], true, "{mine}");
    for (lang, text) in [
        ("zh-CN", "等待确认，最迟 17:42 确定"),
        ("en", "decided by 17:42 at the latest"),
    ] {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(
                [(reqwest::header::ACCEPT_LANGUAGE, lang.parse().unwrap())]
                    .into_iter()
                    .collect(),
            )
            .build()
            .unwrap();
        crate::ui::sign_in(&w.app, &client, "13700000003", "/volunteer").await;
        let html = client
            .get(format!("{}/volunteer", w.app.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(html.contains(text), "{lang}: {html}");
    }

    // The nearest accepts within the hold: assigned at once.
    w.app.clock.set(T0.plus_ms(30_000));
    let (status, body) = accept(&w.app, &s_near, offer_of(near).id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let o = w.app.store.order(order).await.unwrap().unwrap();
    assert_eq!(
        (o.state, o.assignee_user_id),
        (OrderState::Assigned, Some(near))
    );
    let (_, all) = w.app.get(&s_far, "/api/v1/offers?show=all").await;
    assert_eq!(all[0]["taken"], true, "{all}");
    assert_eq!(all[0]["waiting_for_confirmation"], false);
    let every = w.app.store.offers_of_order(order).await.unwrap();
    assert_eq!(every.iter().filter(|o| o.state == "accepted").count(), 1);
    assert_eq!(every.iter().filter(|o| o.state == "withdrawn").count(), 2);
}

/// When better-ranked candidates decline, or the hold ends while one is
/// still deciding, the best-ranked held accept wins at the next pass.
#[tokio::test]
async fn a_held_accept_wins_once_better_candidates_decline_or_the_hold_ends() {
    let w = world().await;
    w.mode("broadcast", 3).await;
    let near = w.volunteer("13700000001", 0.5, &[], Flaw::default()).await;
    let mid = w.volunteer("13700000002", 1.5, &[], Flaw::default()).await;
    let far = w.volunteer("13700000003", 3.0, &[], Flaw::default()).await;
    let sessions = [
        w.app.login("13700000001").await,
        w.app.login("13700000002").await,
        w.app.login("13700000003").await,
    ];
    let order = w.order("groceries", "held-1").await;
    w.tick().await;
    let offers = w.open_offers(order).await;
    let offer_of = |v: i64| offers.iter().find(|o| o.volunteer_user_id == v).unwrap().id;
    // Far and mid accept (both held: near is deciding); near declines.
    assert_eq!(
        accept(&w.app, &sessions[2], offer_of(far)).await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        accept(&w.app, &sessions[1], offer_of(mid)).await.0,
        StatusCode::ACCEPTED
    );
    let (status, _) = w
        .app
        .post(
            &sessions[0],
            &format!("/api/v1/offers/{}/decline", offer_of(near)),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(w.tick().await.held_accepts_assigned, 1);
    let o = w.app.store.order(order).await.unwrap().unwrap();
    assert_eq!(o.assignee_user_id, Some(mid), "the best-ranked held accept");
    let (_, all) = w.app.get(&sessions[2], "/api/v1/offers?show=all").await;
    assert_eq!(all[0]["taken"], true, "{all}");

    // A second order: far accepts, near never answers; mid stays open.
    // Still held just before the hold ends, assigned at its end.
    let order = w
        .order_with(
            "groceries",
            "held-2",
            json!({"window_start": "2020-02-13T18:00", "window_end": "2020-02-13T22:00"}),
        )
        .await;
    w.max_load(mid, 2).await;
    w.max_load(far, 2).await;
    w.tick().await;
    let offers = w.open_offers(order).await;
    let far_offer = offers.iter().find(|o| o.volunteer_user_id == far).unwrap();
    assert!(offers.iter().any(|o| o.volunteer_user_id == near));
    let (status, body) = accept(&w.app, &sessions[2], far_offer.id).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let until = body["hold_until"].as_i64().unwrap();
    w.app.clock.set(Timestamp(until - 1));
    assert_eq!(w.tick().await.held_accepts_assigned, 0);
    w.app.clock.set(Timestamp(until));
    assert_eq!(w.tick().await.held_accepts_assigned, 1);
    let o = w.app.store.order(order).await.unwrap().unwrap();
    assert_eq!(
        (o.state, o.assignee_user_id),
        (OrderState::Assigned, Some(far))
    );
}

/// Exactly once with holds: fifty volunteers accept one broadcast offer at
/// once; whatever the interleaving, each answer is 200, 202 (held) or 409
/// `offer_taken`, at most one is 200, and after the hold exactly one offer
/// is accepted and the order assigned once.
#[tokio::test]
async fn fifty_concurrent_accepts_with_holds_assign_exactly_once() {
    let w = world().await;
    w.mode("broadcast", 50).await;
    let mut sessions = Vec::new();
    for i in 0..50 {
        let phone = format!("1370000{i:04}");
        w.volunteer(&phone, 0.1 * f64::from(i), &[], Flaw::default())
            .await;
        sessions.push(w.app.login(&phone).await);
    }
    let order = w.order("groceries", "race-held").await;
    w.tick().await;
    let offers = w.open_offers(order).await;
    assert_eq!(offers.len(), 50);
    let attempts = offers.iter().rev().map(|o| {
        let s = sessions
            .iter()
            .find(|s| s.user_id == o.volunteer_user_id)
            .unwrap();
        accept(&w.app, s, o.id)
    });
    let results = futures::future::join_all(attempts).await;
    assert!(
        results.iter().all(|(s, b)| *s == StatusCode::OK
            || *s == StatusCode::ACCEPTED
            || (*s == StatusCode::CONFLICT && b["code"] == "offer_taken")),
        "{results:?}"
    );
    assert!(results.iter().filter(|(s, _)| *s == StatusCode::OK).count() <= 1);
    w.app.clock.set(T0.plus_ms(90_000));
    w.tick().await;
    let all = w.app.store.offers_of_order(order).await.unwrap();
    assert_eq!(all.iter().filter(|o| o.state == "accepted").count(), 1);
    assert_eq!(all.iter().filter(|o| o.state == "offered").count(), 0);
    let events = w.app.store.order_events(order).await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.to_state == OrderState::Assigned)
            .count(),
        1
    );
}
