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

const OPEN: [OrderState; 4] = [
    OrderState::Submitted,
    OrderState::Dispatching,
    OrderState::Assigned,
    OrderState::InService,
];

struct BoardCard {
    line: OrderLine,
    escalation: i64,
    /// How long an unassigned order has waited, e.g. `1 h 5 min`.
    waiting: Option<String>,
}

/// `ms` of waiting as people say it: `12 min`, `2 h 5 min`.
pub(crate) fn waited(t: Tr, ms: i64) -> String {
    let m = (ms / 60_000).max(0);
    if m < 60 {
        t.f1("board.wait_min", "m", m)
    } else {
        t.f(
            "board.wait_h",
            &[("h", &(m / 60).to_string()), ("m", &(m % 60).to_string())],
        )
    }
}

fn waiting_of(t: Tr, o: &OrderRow, now: i64) -> Option<String> {
    matches!(o.state.as_str(), "submitted" | "dispatching").then(|| waited(t, now - o.created_at))
}

struct Column {
    state: &'static str,
    /// Open orders in this state in all (the badge).
    total: usize,
    /// The most urgent of them, at most [`COLUMN_CARDS`].
    cards: Vec<BoardCard>,
    /// `total - cards.len()`: said under the column, never dropped silently.
    more: usize,
}

/// Cards shown per board column (and of escalated orders): enough for a
/// surge, few enough to render on a phone. The column's badge counts all,
/// and a line under the cards says how many more there are.
pub const COLUMN_CARDS: usize = 200;

#[derive(Template)]
#[template(path = "board_columns.html")]
struct BoardFragment {
    t: Tr,
    columns: Vec<Column>,
    escalated: Vec<BoardCard>,
    escalated_more: usize,
}

async fn render_board(state: &AppState, actor: &Actor, t: Tr) -> ApiResult<String> {
    let scopes = actor
        .managed_scopes()
        .map(|s| s.iter().map(|p| p.as_str().to_string()).collect());
    // Every open order of the subtree: the board sorts them by urgency and
    // shows the most urgent of each column, counting the rest.
    let rows = state
        .store
        .orders(&OrderFilter {
            scopes,
            states: OPEN.to_vec(),
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
    let now = state.clock.now().epoch_ms();
    let card = |o: &OrderRow| BoardCard {
        line: OrderLine::of(t, o),
        escalation: levels.get(&o.id).copied().unwrap_or(0),
        waiting: waiting_of(t, o, now),
    };
    let mut sorted: Vec<&OrderRow> = rows.iter().collect();
    sorted.sort_by_key(|o| {
        (
            -levels.get(&o.id).copied().unwrap_or(0),
            o.lane.rank(),
            o.created_at,
        )
    });
    let escalated_all: Vec<&&OrderRow> = sorted
        .iter()
        .filter(|o| levels.get(&o.id).copied().unwrap_or(0) > 0)
        .collect();
    let escalated_more = escalated_all.len().saturating_sub(COLUMN_CARDS);
    let escalated = escalated_all
        .iter()
        .take(COLUMN_CARDS)
        .map(|o| card(o))
        .collect();
    let columns = OPEN
        .iter()
        .map(|st| {
            let all: Vec<&&OrderRow> = sorted.iter().filter(|o| o.state == *st).collect();
            Column {
                state: st.as_str(),
                total: all.len(),
                more: all.len().saturating_sub(COLUMN_CARDS),
                cards: all.iter().take(COLUMN_CARDS).map(|o| card(o)).collect(),
            }
        })
        .collect();
    BoardFragment {
        t,
        columns,
        escalated,
        escalated_more,
    }
    .render()
    .map_err(ApiError::internal)
}

/// Orders listed per page of a board search.
pub const SEARCH_PAGE: i64 = 50;

/// The board's search: order number or name, state (any, open or closed
/// ones too), lane, service, division, waiting longer than N minutes.
#[derive(Clone, Debug, Default, Deserialize)]
struct BoardQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    lane: String,
    #[serde(default)]
    item: String,
    #[serde(default)]
    unit: String,
    #[serde(default)]
    waiting: String,
    page: Option<i64>,
}

impl BoardQuery {
    fn active(&self) -> bool {
        [
            &self.q,
            &self.state,
            &self.lane,
            &self.item,
            &self.unit,
            &self.waiting,
        ]
        .iter()
        .any(|f| !f.trim().is_empty())
    }

    fn href(&self, page: i64) -> String {
        let e = |s: &str| super::url_encode(s.trim());
        format!(
            "/board?q={}&state={}&lane={}&item={}&unit={}&waiting={}&page={page}",
            e(&self.q),
            e(&self.state),
            e(&self.lane),
            e(&self.item),
            e(&self.unit),
            e(&self.waiting)
        )
    }
}

/// Every state an order can be in, for the search's state filter.
const ALL_STATES: [&str; 8] = [
    "submitted",
    "dispatching",
    "assigned",
    "in_service",
    "completed",
    "confirmed",
    "cancelled",
    "unfulfilled",
];

/// A row of the search's results.
struct FoundOrder {
    card: BoardCard,
    state: String,
    created: String,
}

struct Found {
    total: i64,
    first: i64,
    last: i64,
    rows: Vec<FoundOrder>,
    prev: Option<String>,
    next: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "board.html")]
struct BoardPage {
    t: Tr,
    l: Layout,
    columns: String,
    f: BoardQuery,
    states: &'static [&'static str],
    items: Vec<(String, String)>,
    units: Vec<(i64, String)>,
    found: Option<Found>,
}

impl BoardPage {
    fn showing(&self) -> String {
        self.found.as_ref().map_or_else(String::new, |f| {
            self.t.f(
                "board.showing",
                &[
                    ("first", &f.first.to_string()),
                    ("last", &f.last.to_string()),
                    ("total", &f.total.to_string()),
                ],
            )
        })
    }
}

async fn search(state: &AppState, actor: &Actor, t: Tr, f: &BoardQuery) -> ApiResult<Found> {
    let scopes = actor
        .managed_scopes()
        .map(|s| s.iter().map(|p| p.as_str().to_string()).collect());
    let now = state.clock.now().epoch_ms();
    let within = match f.unit.trim().parse::<i64>().ok() {
        Some(id) => match state.store.org_unit(id).await? {
            Some(u) => Some(u.path),
            None => return Err(ApiError::not_found()),
        },
        None => None,
    };
    let states = match f.state.trim() {
        "" => Vec::new(),
        "open" => OPEN.to_vec(),
        "closed" => OrderState::ALL[4..].to_vec(),
        s => match s.parse::<OrderState>() {
            Ok(one) => vec![one],
            Err(_) => return Err(ApiError::invalid("state", "invalid_state", "unknown state")),
        },
    };
    let page = f.page.unwrap_or(1).max(1);
    let filter = OrderFilter {
        scopes,
        states,
        item_code: Some(f.item.trim().to_string()).filter(|s| !s.is_empty()),
        lane: f.lane.trim().parse().ok(),
        within,
        search: Some(f.q.trim().to_string()).filter(|s| !s.is_empty()),
        waiting_since: f
            .waiting
            .trim()
            .parse::<i64>()
            .ok()
            .map(|m| now - m * 60_000),
        limit: Some(SEARCH_PAGE),
        offset: (page - 1) * SEARCH_PAGE,
        ..OrderFilter::default()
    };
    let total = state.store.count_matching_orders(&filter).await?;
    let rows = state.store.orders(&filter).await?;
    let first = (page - 1) * SEARCH_PAGE + 1;
    let last = first - 1 + i64::try_from(rows.len()).unwrap_or(0);
    Ok(Found {
        total,
        first,
        last,
        prev: (page > 1).then(|| f.href(page - 1)),
        next: (last < total).then(|| f.href(page + 1)),
        rows: rows
            .iter()
            .map(|o| FoundOrder {
                card: BoardCard {
                    line: OrderLine::of(t, o),
                    escalation: o.escalation_level,
                    waiting: waiting_of(t, o, now),
                },
                state: o.state.to_string(),
                created: super::local_time(o.created_at, o.time_zone),
            })
            .collect(),
    })
}

async fn board(
    State(state): State<AppState>,
    v: Viewer,
    axum::extract::Query(f): axum::extract::Query<BoardQuery>,
) -> PageResult<BoardPage> {
    let t = v.t();
    super::coordinator_only(&v.actor, t)?;
    let (columns, found) = if f.active() {
        (
            String::new(),
            Some(search(&state, &v.actor, t, &f).await.page(t)?),
        )
    } else {
        (render_board(&state, &v.actor, t).await.page(t)?, None)
    };
    let items = state
        .store
        .service_items(true)
        .await
        .page(t)?
        .into_iter()
        .map(|i| (i.code.clone(), t.pick(&i.name_zh, &i.name_en).to_string()))
        .collect();
    let scopes = v.actor.managed_scopes();
    let mut units = state
        .store
        .org_units(scopes.as_deref(), None, None)
        .await
        .page(t)?;
    super::tree_order(&mut units);
    let units = units
        .into_iter()
        .filter(|u| matches!(u.kind.as_str(), "province" | "city" | "county"))
        .map(|u| (u.id, t.place(&u.name)))
        .collect();
    Ok(BoardPage {
        t,
        l: v.l,
        columns,
        f,
        states: &ALL_STATES,
        items,
        units,
        found,
    })
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
    crate::live::may_stream(&state, &v.actor).await.page(t)?;
    let guard = (state.clone(), v.actor.clone());
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
    let stream = crate::live::while_signed_in(guard.0, guard.1, stream);
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
    let can_assign = matches!(order.state, OrderState::Submitted | OrderState::Dispatching);
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
        phone: view
            .contact_phone
            .flatten()
            .map(|p| super::phone_text(&p))
            .unwrap_or_default(),
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
