//! Volunteer pages: incoming offers with a countdown (item, district and
//! distance, never the address), accept or decline, the assignment with
//! the address and phone while it is live, check-in and check-out; the
//! duty switch, the alerts switch (Web Push), my hours and my pairings.
//!
//! Two pages may be kept on the phone for use without network, and say so
//! to the service worker with `X-Homefront-Offline`: the offer list
//! (`offers`, naming the live assignments in `X-Homefront-Live-Assignments`
//! so the worker drops any other) and a live assignment (`assignment`);
//! an assignment that is no longer live is sent without it, and the worker
//! drops its copy.

use std::time::Duration;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use homefront_domain::Role;
use homefront_domain::order_state::OrderState;
use homefront_domain::privacy::RecordKind;
use homefront_store::orders::{OrderFilter, OrderRow};
use serde::Deserialize;

use super::i18n::Tr;
use super::requester::OrderLine;
use super::{Layout, Localize, PageResult, Posted, Viewer, local_time, see_other};
use crate::AppState;
use crate::api::offers::{OfferView, accept_offer, decline_offer, offers_of};
use crate::api::orders::{
    CheckInRequest, CheckOutRequest, check_in_order, check_out_order, visible_order,
};
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::privacy::{order_access, sensitive_fields};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/volunteer", get(home))
        .route("/live/offers", get(live_offers))
        .route("/offers/{id}/accept", post(accept))
        .route("/offers/{id}/decline", post(decline))
        .route("/assignments/{id}", get(assignment))
        .route("/assignments/{id}/check-in", post(check_in))
        .route("/assignments/{id}/check-out", post(check_out))
        .route("/volunteer/duty", post(duty))
        .route("/volunteer/hours", get(my_hours))
        .route("/volunteer/pairings", get(my_pairings))
}

fn volunteer_only(actor: &Actor, t: Tr) -> PageResult<()> {
    if actor.has(Role::Volunteer) {
        Ok(())
    } else {
        Err(ApiError::forbidden()).page(t)
    }
}

/// An open offer as the volunteer sees it before accepting.
struct OfferLine {
    id: i64,
    item: String,
    division: String,
    distance: Option<String>,
    window: String,
    public_note: String,
    deadline: i64,
    /// A held accept: the latest time of the decision, in the order's
    /// local time (`HH:MM`).
    waiting_until: Option<String>,
}

fn offer_line(t: Tr, o: &OfferView) -> OfferLine {
    OfferLine {
        id: o.id,
        item: t
            .pick(&o.order.item.name_zh, &o.order.item.name_en)
            .to_string(),
        division: t.place(&o.order.division.name),
        distance: o.distance_km.map(|d| format!("{d:.1}")),
        // In the order's own time zone, as its page and the API show it.
        window: format!(
            "{} – {}",
            super::offset_time(&o.order.window_start_local),
            super::offset_time(&o.order.window_end_local)
        ),
        public_note: o.order.public_note.clone().unwrap_or_default(),
        deadline: o.expires_at,
        waiting_until: o
            .hold_until
            .filter(|_| o.waiting_for_confirmation)
            .map(|until| {
                // At the order's own offset, like its window.
                let offset = chrono::DateTime::parse_from_rfc3339(&o.order.window_start_local)
                    .map(|d| *d.offset())
                    .unwrap_or_else(|_| chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8"));
                chrono::DateTime::from_timestamp_millis(until)
                    .map(|d| d.with_timezone(&offset).format("%H:%M").to_string())
                    .unwrap_or_default()
            }),
    }
}

#[derive(Template)]
#[template(path = "offers.html")]
struct OffersFragment<'a> {
    t: Tr,
    csrf: &'a str,
    offers: Vec<OfferLine>,
    active: Vec<OrderLine>,
}

async fn render_offers(state: &AppState, actor: &Actor, t: Tr, csrf: &str) -> ApiResult<String> {
    // Every open offer: a volunteer holds a few at a time, never pages.
    let (offers, _) = offers_of(state, actor, &["offered"], None, i64::from(u16::MAX)).await?;
    let active = state
        .store
        .orders(&OrderFilter {
            assignee_user_id: Some(actor.user.id),
            states: vec![OrderState::Assigned, OrderState::InService],
            ..OrderFilter::default()
        })
        .await?;
    OffersFragment {
        t,
        csrf,
        offers: offers.iter().map(|o| offer_line(t, o)).collect(),
        active: active.iter().map(|o| OrderLine::of(t, o)).collect(),
    }
    .render()
    .map_err(ApiError::internal)
}

#[derive(Template, WebTemplate)]
#[template(path = "volunteer.html")]
struct HomePage {
    t: Tr,
    l: Layout,
    on_duty: bool,
    active: bool,
    offers: String,
    done: Vec<OrderLine>,
    /// Earlier done orders not listed (the hours page has their time).
    done_more: i64,
    now: i64,
    /// The VAPID public key for the alerts switch ("" when unavailable).
    push_key: String,
    /// The account id (the alerts switch renews only its own subscription).
    user_id: i64,
}

/// Done orders listed on the volunteer's home page, newest first.
const DONE_SHOWN: i64 = 100;

/// Marks a page the service worker may keep for use without network.
const OFFLINE: HeaderName = HeaderName::from_static("x-homefront-offline");
/// The live assignments (order ids, comma-separated): the service worker
/// drops the kept copy of any other.
const LIVE_ASSIGNMENTS: HeaderName = HeaderName::from_static("x-homefront-live-assignments");

async fn home(State(state): State<AppState>, v: Viewer) -> PageResult<Response> {
    let t = v.t();
    volunteer_only(&v.actor, t)?;
    let offers = render_offers(&state, &v.actor, t, &v.l.csrf)
        .await
        .page(t)?;
    // Done: completed or ended, newest first; the page shows the latest
    // DONE_SHOWN and says how many earlier ones there are.
    let done_filter = OrderFilter {
        assignee_user_id: Some(v.actor.user.id),
        states: vec![
            OrderState::Completed,
            OrderState::Confirmed,
            OrderState::Cancelled,
            OrderState::Unfulfilled,
        ],
        limit: Some(DONE_SHOWN),
        ..OrderFilter::default()
    };
    let done = state.store.orders(&done_filter).await.page(t)?;
    let done_total = state
        .store
        .count_matching_orders(&done_filter)
        .await
        .page(t)?;
    let me = state
        .store
        .volunteer(v.actor.user.id)
        .await
        .page(t)?
        .ok_or_else(ApiError::not_found)
        .page(t)?;
    let live_filter = OrderFilter {
        assignee_user_id: Some(v.actor.user.id),
        states: vec![OrderState::Assigned, OrderState::InService],
        ..OrderFilter::default()
    };
    let live: Vec<String> = state
        .store
        .orders(&live_filter)
        .await
        .page(t)?
        .iter()
        .map(|o| o.id.to_string())
        .collect();
    let push_key = crate::notify::push::vapid(&state)
        .await
        .map(|k| k.public_key.clone())
        .unwrap_or_default();
    let page = HomePage {
        t,
        on_duty: me.on_duty,
        active: me.vetting_state == homefront_domain::vetting::VettingState::Active,
        offers,
        done_more: done_total - i64::try_from(done.len()).unwrap_or(0),
        done: done.iter().map(|o| OrderLine::of(t, o)).collect(),
        now: state.clock.now().epoch_ms(),
        push_key,
        user_id: v.actor.user.id,
        l: v.l,
    };
    let mut resp = page.into_response();
    let h = resp.headers_mut();
    h.insert(OFFLINE, HeaderValue::from_static("offers"));
    if let Ok(ids) = HeaderValue::from_str(&live.join(",")) {
        h.insert(LIVE_ASSIGNMENTS, ids);
    }
    Ok(resp)
}

/// `GET /live/offers`: the volunteer's open offers, re-rendered when any
/// order changes or every few seconds (new offers, expiries).
async fn live_offers(
    State(state): State<AppState>,
    v: Viewer,
) -> PageResult<
    Sse<impl futures::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>>,
> {
    let t = v.t();
    volunteer_only(&v.actor, t)?;
    crate::live::may_stream(&state, &v.actor).await.page(t)?;
    let guard = (state.clone(), v.actor.clone());
    let rx = state.live.subscribe();
    let (actor, csrf) = (v.actor, v.l.csrf);
    let stream = super::live_stream(
        rx,
        "offers",
        Duration::from_secs(3),
        |_| true,
        move || {
            let (state, actor, csrf) = (state.clone(), actor.clone(), csrf.clone());
            async move { render_offers(&state, &actor, t, &csrf).await.ok() }
        },
    );
    let stream = crate::live::while_signed_in(guard.0, guard.1, stream);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

async fn accept(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<super::Empty>,
) -> PageResult {
    volunteer_only(&p.actor, p.t)?;
    let id = crate::api::parse_id(&id).page(p.t)?;
    match accept_offer(&state, &p.actor, id).await.page(p.t)? {
        crate::api::offers::AcceptOutcome::Assigned(a) => {
            Ok(see_other(&format!("/assignments/{}", a.order.id)))
        }
        // Held: the offer list says "waiting for confirmation" and until when.
        crate::api::offers::AcceptOutcome::Held(_) => Ok(see_other("/volunteer")),
    }
}

async fn decline(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<super::Empty>,
) -> PageResult {
    volunteer_only(&p.actor, p.t)?;
    let id = crate::api::parse_id(&id).page(p.t)?;
    decline_offer(&state, &p.actor, id).await.page(p.t)?;
    Ok(see_other("/volunteer"))
}

#[derive(Template, WebTemplate)]
#[template(path = "assignment.html")]
struct AssignmentPage {
    t: Tr,
    l: Layout,
    line: OrderLine,
    live: bool,
    street: String,
    phone: String,
    /// The phone as people read it (`138 0001 0001`).
    phone_text: String,
    notes: String,
    public_note: String,
    geo: Option<String>,
    /// The same point in Amap (高德), the map app most phones in China
    /// have; its URI API takes WGS-84 with `coordinate=wgs84`.
    amap: Option<String>,
    can_check_in: bool,
    /// When check-in opens, local time, while it is not yet open.
    check_in_opens: Option<String>,
    can_check_out: bool,
}

/// The order assigned to this volunteer; 404 for any other order, whoever
/// asks (a coordinator has the board).
async fn assigned(state: &AppState, actor: &Actor, t: Tr, id: &str) -> PageResult<OrderRow> {
    let id = crate::api::parse_id(id).page(t)?;
    let (order, _) = visible_order(state, actor, id).await.page(t)?;
    if order.assignee_user_id != Some(actor.user.id) {
        return Err(ApiError::not_found()).page(t);
    }
    Ok(order)
}

async fn assignment(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
) -> PageResult<Response> {
    let t = v.t();
    let order = assigned(&state, &v.actor, t, &id).await?;
    let access = order_access(&v.actor, &order, false);
    let live = access.is_some_and(|a| a.sees_location());
    if live {
        state
            .store
            .log_access(
                v.actor.user.id,
                RecordKind::Order,
                &[order.id],
                &sensitive_fields(&order),
                "assignment_page",
                state.clock.now().epoch_ms(),
            )
            .await
            .page(t)?;
    }
    let st = Some(order.state);
    let shown = |s: &Option<String>| {
        if live {
            s.clone().unwrap_or_default()
        } else {
            String::new()
        }
    };
    let page = AssignmentPage {
        t,
        line: OrderLine::of(t, &order),
        live,
        street: shown(&order.street),
        phone_text: super::phone_text(&shown(&order.contact_phone)),
        phone: shown(&order.contact_phone),
        notes: shown(&order.notes),
        public_note: order.public_note.clone().unwrap_or_default(),
        geo: if live {
            order
                .latitude
                .zip(order.longitude)
                .map(|(la, lo)| format!("geo:{la:.5},{lo:.5}?q={la:.5},{lo:.5}"))
        } else {
            None
        },
        amap: if live {
            order.latitude.zip(order.longitude).map(|(la, lo)| {
                format!(
                    "https://uri.amap.com/marker?position={lo:.6},{la:.6}&coordinate=wgs84&callnative=1"
                )
            })
        } else {
            None
        },
        can_check_in: st == Some(OrderState::Assigned),
        check_in_opens: {
            let opens = crate::api::orders::check_in_opens(&state, &order);
            (st == Some(OrderState::Assigned) && state.clock.now().epoch_ms() < opens)
                .then(|| super::local_time(opens, order.time_zone))
        },
        can_check_out: st == Some(OrderState::InService),
        l: v.l,
    };
    let mut resp = page.into_response();
    if live {
        // Kept on the phone only while live: the service worker drops it
        // once a fetch comes back without this header.
        resp.headers_mut()
            .insert(OFFLINE, HeaderValue::from_static("assignment"));
    }
    Ok(resp)
}

async fn check_in(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<super::Empty>,
) -> PageResult {
    let order = assigned(&state, &p.actor, p.t, &id).await?;
    // A repeated tap after the check-in went through: show the page.
    if order.state != OrderState::Assigned && order.checked_in_at.is_some() {
        return Ok(see_other(&format!("/assignments/{}", order.id)));
    }
    check_in_order(&state, &p.actor, order.id, CheckInRequest::default())
        .await
        .page(p.t)?;
    Ok(see_other(&format!("/assignments/{}", order.id)))
}

async fn check_out(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<super::Empty>,
) -> PageResult {
    let order = assigned(&state, &p.actor, p.t, &id).await?;
    // A repeated tap after the check-out went through: show the page.
    if matches!(order.state, OrderState::Completed | OrderState::Confirmed) {
        return Ok(see_other(&format!("/assignments/{}", order.id)));
    }
    check_out_order(&state, &p.actor, order.id, CheckOutRequest::default())
        .await
        .page(p.t)?;
    Ok(see_other(&format!("/assignments/{}", order.id)))
}

#[derive(Deserialize)]
struct DutyForm {
    on_duty: String,
}

/// One tap on the duty switch (`on_duty=1|0`), through the API's handler;
/// a double click changes nothing.
async fn duty(State(state): State<AppState>, p: Posted<DutyForm>) -> PageResult {
    use crate::api::ApiJson;
    use crate::api::volunteers::availability::{DutyRequest, duty};
    volunteer_only(&p.actor, p.t)?;
    let on_duty = p.form.on_duty == "1";
    let _answer = duty(
        State(state),
        p.actor,
        Path("me".to_string()),
        ApiJson(DutyRequest { on_duty }),
    )
    .await
    .page(p.t)?;
    Ok(see_other("/volunteer"))
}

/// A line of the hours table.
struct HoursLine {
    label: String,
    recorded: String,
    backfilled: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "my_hours.html")]
struct HoursPage {
    t: Tr,
    l: Layout,
    total_recorded: String,
    total_backfilled: String,
    orders_served: usize,
    by_month: Vec<HoursLine>,
    by_item: Vec<HoursLine>,
    /// The volunteer's account, for the certificate's address.
    me: i64,
    /// The certificate form's default period: this month so far, dates in
    /// Asia/Shanghai (`YYYY-MM-DD`).
    cert_from: String,
    cert_to: String,
}

async fn my_hours(State(state): State<AppState>, v: Viewer) -> PageResult<HoursPage> {
    let t = v.t();
    volunteer_only(&v.actor, t)?;
    let axum::Json(view) = crate::api::hours::mine(
        State(state.clone()),
        v.actor.clone(),
        crate::api::ApiQuery(crate::api::hours::Period::default()),
    )
    .await
    .page(t)?;
    let names: std::collections::HashMap<String, String> = state
        .store
        .service_items(true)
        .await
        .page(t)?
        .into_iter()
        .map(|i| (i.code.clone(), t.pick(&i.name_zh, &i.name_en).to_string()))
        .collect();
    let line = |label: String, s: &crate::api::hours::Split| HoursLine {
        label,
        recorded: super::hours_text(s.recorded_minutes),
        backfilled: super::hours_text(s.backfilled_minutes),
    };
    let today = chrono::DateTime::from_timestamp_millis(state.clock.now().epoch_ms())
        .map(|d| d.with_timezone(&chrono_tz::Asia::Shanghai).date_naive())
        .unwrap_or_default();
    Ok(HoursPage {
        t,
        me: v.actor.user.id,
        cert_from: today.format("%Y-%m-01").to_string(),
        cert_to: today.format("%Y-%m-%d").to_string(),
        total_recorded: super::hours_text(view.total.recorded_minutes),
        total_backfilled: super::hours_text(view.total.backfilled_minutes),
        orders_served: view.orders_served,
        by_month: view
            .by_month
            .iter()
            .rev()
            .map(|(m, s)| line(m.clone(), s))
            .collect(),
        by_item: view
            .by_item
            .iter()
            .map(|(code, s)| {
                let name = if code == "backfill" {
                    t.t("hours.backfill").to_string()
                } else {
                    names.get(code).cloned().unwrap_or_else(|| code.clone())
                };
                line(name, s)
            })
            .collect(),
        l: v.l,
    })
}

/// A pairing as the volunteer's page shows it (no street or phone).
struct PairingCard {
    role: String,
    since: String,
    members: Vec<(String, String)>,
    orders: Vec<(i64, String, String)>,
}

#[derive(Template, WebTemplate)]
#[template(path = "my_pairings.html")]
struct PairingsPage {
    t: Tr,
    l: Layout,
    pairings: Vec<PairingCard>,
}

async fn my_pairings(State(state): State<AppState>, v: Viewer) -> PageResult<PairingsPage> {
    let t = v.t();
    volunteer_only(&v.actor, t)?;
    let tz = super::viewer_time_zone(&state, &v.actor).await;
    let axum::Json(mine) = crate::api::pairings::mine(State(state), v.actor.clone())
        .await
        .page(t)?;
    let pairings = mine
        .into_iter()
        .filter(|p| p.pairing.ended_at.is_none())
        .map(|p| PairingCard {
            role: p.pairing.role.to_string(),
            since: local_time(p.pairing.started_at, tz),
            members: p
                .members
                .iter()
                .map(|m| {
                    let mut who = format!("{} · {}", m.name, t.k("relation", m.relation.as_str()));
                    if let Some(age) = m.age_years {
                        who.push_str(&format!(" · {}", t.f1("pair.age", "n", age)));
                    }
                    if let Some(g) = &m.school_grade {
                        who.push_str(&format!(" · {g}"));
                    }
                    (who, m.district.clone())
                })
                .collect(),
            orders: p
                .orders
                .iter()
                .map(|o| {
                    (
                        o.id,
                        t.pick(&o.item.name_zh, &o.item.name_en).to_string(),
                        o.state.to_string(),
                    )
                })
                .collect(),
        })
        .collect();
    Ok(PairingsPage {
        t,
        l: v.l,
        pairings,
    })
}
