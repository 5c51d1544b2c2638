//! Volunteer pages: incoming offers with a countdown (item, district and
//! distance, never the address), accept or decline, the assignment with
//! the address and phone while it is live, check-in and check-out; the
//! duty switch, my hours and my pairings.

use std::time::Duration;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::sse::{KeepAlive, Sse};
use axum::routing::{get, post};
use homefront_domain::Role;
use homefront_domain::order_state::OrderState;
use homefront_store::orders::{OrderFilter, OrderRow};
use serde::Deserialize;

use super::i18n::Tr;
use super::requester::OrderLine;
use super::{Layout, Localize, PageResult, Posted, Viewer, local_time, see_other};
use crate::AppState;
use crate::api::offers::{OfferView, accept_offer, decline_offer, offers_of};
use crate::api::orders::{CheckInRequest, check_in_order, check_out_order, visible_order};
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
}

fn offer_line(t: Tr, o: &OfferView) -> OfferLine {
    let tz = "Asia/Shanghai";
    OfferLine {
        id: o.id,
        item: t
            .pick(&o.order.item.name_zh, &o.order.item.name_en)
            .to_string(),
        division: o.order.division.name.clone(),
        distance: o.distance_km.map(|d| format!("{d:.1}")),
        window: format!(
            "{} – {}",
            local_time(o.order.window_start, tz),
            local_time(o.order.window_end, tz)
        ),
        public_note: o.order.public_note.clone().unwrap_or_default(),
        deadline: o.expires_at,
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
    let offers = offers_of(state, actor, &["offered"]).await?;
    let active = state
        .store
        .orders(&OrderFilter {
            assignee_user_id: Some(actor.user.id),
            states: vec!["assigned".into(), "in_service".into()],
            limit: Some(100),
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
    now: i64,
}

async fn home(State(state): State<AppState>, v: Viewer) -> PageResult<HomePage> {
    let t = v.t();
    volunteer_only(&v.actor, t)?;
    let offers = render_offers(&state, &v.actor, t, &v.l.csrf)
        .await
        .page(t)?;
    let mine = state
        .store
        .orders(&OrderFilter {
            assignee_user_id: Some(v.actor.user.id),
            limit: Some(100),
            ..OrderFilter::default()
        })
        .await
        .page(t)?;
    let me = state
        .store
        .volunteer(v.actor.user.id)
        .await
        .page(t)?
        .ok_or_else(ApiError::not_found)
        .page(t)?;
    let done: Vec<&OrderRow> = mine
        .iter()
        .filter(|o| {
            o.order_state()
                .is_ok_and(|s| s.is_terminal() || s == OrderState::Completed)
        })
        .collect();
    Ok(HomePage {
        t,
        on_duty: me.on_duty != 0,
        active: me.vetting() == homefront_domain::vetting::VettingState::Active,
        offers,
        done: done.into_iter().map(|o| OrderLine::of(t, o)).collect(),
        now: state.clock.now().epoch_ms(),
        l: v.l,
    })
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
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

async fn accept(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<super::Empty>,
) -> PageResult {
    volunteer_only(&p.actor, p.t)?;
    let id = crate::api::parse_id(&id).page(p.t)?;
    let accepted = accept_offer(&state, &p.actor, id).await.page(p.t)?;
    Ok(see_other(&format!("/assignments/{}", accepted.order.id)))
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
    notes: String,
    public_note: String,
    geo: Option<String>,
    /// The same point in Amap (高德), the map app most phones in China
    /// have; its URI API takes WGS-84 with `coordinate=wgs84`.
    amap: Option<String>,
    can_check_in: bool,
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
) -> PageResult<AssignmentPage> {
    let t = v.t();
    let order = assigned(&state, &v.actor, t, &id).await?;
    let access = order_access(&v.actor, &order, false);
    let live = access.is_some_and(|a| a.sees_location());
    if live {
        state
            .store
            .log_access(
                v.actor.user.id,
                "order",
                &[order.id],
                &sensitive_fields(&order),
                "assignment_page",
                state.clock.now().epoch_ms(),
            )
            .await
            .page(t)?;
    }
    let st = order.order_state().ok();
    let shown = |s: &Option<String>| {
        if live {
            s.clone().unwrap_or_default()
        } else {
            String::new()
        }
    };
    Ok(AssignmentPage {
        t,
        line: OrderLine::of(t, &order),
        live,
        street: shown(&order.street),
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
        can_check_out: st == Some(OrderState::InService),
        l: v.l,
    })
}

async fn check_in(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<super::Empty>,
) -> PageResult {
    let order = assigned(&state, &p.actor, p.t, &id).await?;
    // A repeated tap after the check-in went through: show the page.
    if order.order_state() != Ok(OrderState::Assigned) && order.checked_in_at.is_some() {
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
    if matches!(
        order.order_state(),
        Ok(OrderState::Completed | OrderState::Confirmed)
    ) {
        return Ok(see_other(&format!("/assignments/{}", order.id)));
    }
    check_out_order(&state, &p.actor, order.id)
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
    Ok(HoursPage {
        t,
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
    let axum::Json(mine) = crate::api::pairings::mine(State(state), v.actor.clone())
        .await
        .page(t)?;
    let pairings = mine
        .into_iter()
        .filter(|p| p.pairing.ended_at.is_none())
        .map(|p| PairingCard {
            role: p.pairing.role.clone(),
            since: local_time(p.pairing.started_at, "Asia/Shanghai"),
            members: p
                .members
                .iter()
                .map(|m| {
                    let mut who = format!("{} · {}", m.name, t.k("relation", &m.relation));
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
                        o.state.clone(),
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
