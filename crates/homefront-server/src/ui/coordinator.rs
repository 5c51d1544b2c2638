//! Coordinator pages: the live board of open orders in the subtree (by
//! state, escalations and priority lanes on top) and an order's page with
//! manual dispatch. A coordinator reaches only orders in their subtree:
//! others answer 404, as in the API.

use std::collections::HashMap;
use std::time::Duration;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::sse::{KeepAlive, Sse};
use axum::routing::{get, post};
use homefront_domain::Role;
use homefront_domain::order_state::OrderState;
use homefront_domain::org::OrgPath;
use homefront_store::orders::{OrderFilter, OrderRow};
use serde::Deserialize;

use super::i18n::Tr;
use super::requester::OrderLine;
use super::{Layout, Localize, PageResult, Posted, Viewer, first_name, see_other};
use crate::AppState;
use crate::api::orders::{assign_order, detail, visible_order};
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::privacy::OrderAccess;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/board", get(board))
        .route("/live/board", get(live_board))
        .route("/board/orders/{id}", get(order))
        .route("/board/orders/{id}/assign", post(assign))
        .route("/board/orders/{id}/offer", post(offer))
}

const OPEN: [&str; 4] = ["submitted", "dispatching", "assigned", "in_service"];

struct BoardCard {
    line: OrderLine,
    escalation: i64,
}

struct Column {
    state: &'static str,
    cards: Vec<BoardCard>,
}

#[derive(Template)]
#[template(path = "board_columns.html")]
struct BoardFragment {
    t: Tr,
    columns: Vec<Column>,
    escalated: Vec<BoardCard>,
}

fn lane_rank(lane: &str) -> u8 {
    match lane {
        "priority" => 0,
        "urgent" => 1,
        _ => 2,
    }
}

async fn render_board(state: &AppState, actor: &Actor, t: Tr) -> ApiResult<String> {
    let scopes = actor
        .managed_scopes()
        .map(|s| s.iter().map(|p| p.as_str().to_string()).collect());
    let rows = state
        .store
        .orders(&OrderFilter {
            scopes,
            states: OPEN.iter().map(|s| (*s).to_string()).collect(),
            limit: Some(500),
            ..OrderFilter::default()
        })
        .await?;
    let levels: HashMap<i64, i64> = state
        .store
        .orders_unassigned()
        .await?
        .into_iter()
        .map(|w| (w.id, w.escalation_level))
        .collect();
    let card = |o: &OrderRow| BoardCard {
        line: OrderLine::of(t, o),
        escalation: levels.get(&o.id).copied().unwrap_or(0),
    };
    let mut sorted: Vec<&OrderRow> = rows.iter().collect();
    sorted.sort_by_key(|o| {
        (
            -levels.get(&o.id).copied().unwrap_or(0),
            lane_rank(&o.lane),
            o.created_at,
        )
    });
    let escalated = sorted
        .iter()
        .filter(|o| levels.get(&o.id).copied().unwrap_or(0) > 0)
        .map(|o| card(o))
        .collect();
    let columns = OPEN
        .iter()
        .map(|st| Column {
            state: st,
            cards: sorted
                .iter()
                .filter(|o| o.state == *st)
                .map(|o| card(o))
                .collect(),
        })
        .collect();
    BoardFragment {
        t,
        columns,
        escalated,
    }
    .render()
    .map_err(ApiError::internal)
}

#[derive(Template, WebTemplate)]
#[template(path = "board.html")]
struct BoardPage {
    t: Tr,
    l: Layout,
    columns: String,
}

async fn board(State(state): State<AppState>, v: Viewer) -> PageResult<BoardPage> {
    let t = v.t();
    super::coordinator_only(&v.actor, t)?;
    let columns = render_board(&state, &v.actor, t).await.page(t)?;
    Ok(BoardPage { t, l: v.l, columns })
}

/// `GET /live/board`: the columns again when an order in the subtree
/// changes (or every 10 s, for escalations).
async fn live_board(
    State(state): State<AppState>,
    v: Viewer,
) -> PageResult<
    Sse<impl futures::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>>,
> {
    let t = v.t();
    super::coordinator_only(&v.actor, t)?;
    let rx = state.live.subscribe();
    let actor = v.actor;
    let stream = super::live_stream(
        rx,
        "board",
        Duration::from_secs(10),
        |_| true,
        move || {
            let (state, actor) = (state.clone(), actor.clone());
            async move { render_board(&state, &actor, t).await.ok() }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// An order in the actor's subtree, else 404.
async fn managed_order(state: &AppState, actor: &Actor, t: Tr, id: &str) -> PageResult<OrderRow> {
    super::coordinator_only(actor, t)?;
    let id = crate::api::parse_id(id).page(t)?;
    let (order, access) = visible_order(state, actor, id).await.page(t)?;
    if access != OrderAccess::Full
        || !actor.manages(&OrgPath::from_stored(order.division_path.clone()))
    {
        return Err(ApiError::not_found()).page(t);
    }
    Ok(order)
}

/// Most volunteers listed for manual dispatch (ranked first).
const MAX_CANDIDATES: usize = 100;

struct Candidate {
    id: i64,
    name: String,
    /// In the dispatcher's ranking (eligible now); the others may only be
    /// assigned after a call.
    ranked: bool,
    /// Rank, distance and cost terms; the not-ranked note for the others.
    explain: String,
}

impl OrderPage {
    fn ranked(&self) -> impl Iterator<Item = &Candidate> {
        self.candidates.iter().filter(|c| c.ranked)
    }

    fn unranked(&self) -> impl Iterator<Item = &Candidate> {
        self.candidates.iter().filter(|c| !c.ranked)
    }

    fn has_ranked(&self) -> bool {
        self.candidates.iter().any(|c| c.ranked)
    }

    fn has_unranked(&self) -> bool {
        self.candidates.iter().any(|c| !c.ranked)
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "board_order.html")]
struct OrderPage {
    t: Tr,
    l: Layout,
    line: OrderLine,
    street: String,
    phone: String,
    volunteer: Option<String>,
    can_assign: bool,
    candidates: Vec<Candidate>,
    error: Option<String>,
    /// Set after a manual offer went out.
    notice: Option<String>,
}

async fn order_page(
    state: &AppState,
    actor: &Actor,
    t: Tr,
    order: &OrderRow,
    error: Option<String>,
) -> PageResult<OrderPage> {
    let view = detail(state, actor, order, OrderAccess::Full, "board_order")
        .await
        .page(t)?;
    let volunteer = match order.assignee_user_id {
        Some(u) => state.store.user(u).await.page(t)?.map(|u| u.display_name),
        None => None,
    };
    let can_assign = matches!(
        order.order_state(),
        Ok(OrderState::Submitted | OrderState::Dispatching)
    );
    let mut candidates = Vec::new();
    if can_assign {
        // The dispatcher's ranking first, with each rank's explanation...
        let ranked = crate::api::dispatch::ranked(state, order, MAX_CANDIDATES)
            .await
            .page(t)?;
        for c in &ranked {
            let args = [
                ("rank", c.rank.to_string()),
                ("km", format!("{:.1}", c.distance_km.unwrap_or(0.0))),
                ("load", format!("{:.1}", c.cost.load)),
                ("fairness", format!("{:.1}", c.cost.fairness)),
                ("pairing", format!("{:.1}", c.cost.pairing_bonus)),
                ("total", format!("{:.1}", c.cost.total)),
            ];
            let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let key = if c.distance_km.is_some() {
                "board.explain"
            } else {
                "board.explain_remote"
            };
            candidates.push(Candidate {
                id: c.volunteer_user_id,
                name: c.display_name.clone(),
                ranked: true,
                explain: t.f(key, &args),
            });
        }
        // ...then the area's other volunteers, whom a coordinator may still
        // assign by hand (e.g. reached by phone).
        let scopes: Option<Vec<String>> = actor
            .managed_scopes()
            .map(|s| s.iter().map(|p| p.as_str().to_string()).collect());
        for u in state
            .store
            .users_in_scope(scopes.as_deref(), Some(Role::Volunteer))
            .await
            .page(t)?
        {
            if ranked.iter().any(|c| c.volunteer_user_id == u.id) {
                continue;
            }
            if candidates.len() >= MAX_CANDIDATES {
                break;
            }
            candidates.push(Candidate {
                id: u.id,
                name: u.display_name,
                ranked: false,
                explain: t.t("board.unranked").to_string(),
            });
        }
    }
    Ok(OrderPage {
        t,
        l: Layout::new(t, &format!("/board/orders/{}", order.id), Some(actor)),
        line: OrderLine::of(t, order),
        street: view.street.flatten().unwrap_or_default(),
        phone: view.contact_phone.flatten().unwrap_or_default(),
        volunteer: volunteer.map(|n| first_name(&n)),
        can_assign,
        candidates,
        error,
        notice: None,
    })
}

#[derive(Deserialize)]
struct OrderQuery {
    offered: Option<String>,
}

async fn order(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<OrderQuery>,
) -> PageResult<OrderPage> {
    let t = v.t();
    let o = managed_order(&state, &v.actor, t, &id).await?;
    let mut page = order_page(&state, &v.actor, t, &o, None).await?;
    page.notice = q.offered.map(|_| t.t("board.offered").to_string());
    Ok(page)
}

#[derive(Deserialize)]
struct AssignForm {
    volunteer: Option<i64>,
}

/// Manual dispatch, either way: the picked volunteer, or a 422 naming the
/// field when none was picked.
#[derive(Clone, Copy)]
enum Dispatch {
    /// Straight to assigned (agreed by phone).
    Assign,
    /// An offer the volunteer answers on their phone.
    Offer,
}

async fn dispatch_by_hand(
    state: AppState,
    id: String,
    p: Posted<AssignForm>,
    how: Dispatch,
) -> PageResult {
    use axum::response::IntoResponse;
    let t = p.t;
    let o = managed_order(&state, &p.actor, t, &id).await?;
    let result = match (p.form.volunteer, how) {
        (None, _) => Err(ApiError::invalid(
            "volunteer_user_id",
            "pick_volunteer",
            "pick a volunteer",
        )),
        (Some(vid), Dispatch::Assign) => {
            assign_order(&state, &p.actor, o.id, vid).await.map(|_| ())
        }
        (Some(vid), Dispatch::Offer) => crate::api::dispatch::manual_offer(
            State(state.clone()),
            p.actor.clone(),
            Path(o.id.to_string()),
            crate::api::ApiJson(crate::api::dispatch::ManualOffer {
                volunteer_user_id: vid,
            }),
        )
        .await
        .map(|_| ()),
    };
    match result {
        Ok(()) => Ok(see_other(&match how {
            Dispatch::Assign => format!("/board/orders/{}", o.id),
            Dispatch::Offer => format!("/board/orders/{}?offered=1", o.id),
        })),
        Err(err) if err.status.is_client_error() && err.status.as_u16() != 404 => {
            let o = managed_order(&state, &p.actor, t, &id).await?;
            let page =
                order_page(&state, &p.actor, t, &o, Some(super::error_message(t, &err))).await?;
            Ok((err.status, page).into_response())
        }
        Err(err) => Err(err).page(t),
    }
}

/// Assigns the picked volunteer directly.
async fn assign(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<AssignForm>,
) -> PageResult {
    dispatch_by_hand(state, id, p, Dispatch::Assign).await
}

/// An offer to the picked volunteer, as the dispatcher would make it (they
/// accept or decline on their phone); only ranked candidates qualify.
async fn offer(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<AssignForm>,
) -> PageResult {
    dispatch_by_hand(state, id, p, Dispatch::Offer).await
}
