//! Coordinator pages: the live board of open orders in the subtree (by
//! state, escalations and priority lanes on top) and an order's page: its
//! log and offers in words, manual dispatch with the ranking in words and
//! the true reason each other volunteer is out, candidate phones (each
//! read logged), cancelling with a reason and reassigning a live order. A coordinator reaches only orders in their subtree:
//! others answer 404, as in the API.

use std::collections::HashMap;
use std::time::Duration;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::sse::{KeepAlive, Sse};
use axum::routing::{get, post};
use homefront_domain::order_state::OrderState;
use homefront_domain::org::OrgPath;
use homefront_domain::privacy::RecordKind;
use homefront_store::orders::{OrderFilter, OrderRow};
use serde::Deserialize;

use super::i18n::Tr;
use super::requester::OrderLine;
use super::{Layout, Localize, PageResult, Posted, Viewer, see_other};
use crate::AppState;
use crate::api::orders::{
    Reassign, assign_order, cancel_order, detail, reassign_order, visible_order,
};
use crate::auth::Actor;
use crate::dispatcher::{Judged, Obstacle};
use crate::error::{ApiError, ApiResult};
use crate::privacy::OrderAccess;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/board", get(board))
        .route("/live/board", get(live_board))
        .route("/board/orders/{id}", get(order))
        .route("/board/orders/{id}/assign", post(assign))
        .route("/board/orders/{id}/offer", post(offer))
        .route("/board/orders/{id}/cancel", post(cancel))
        .route("/board/orders/{id}/reassign", post(reassign))
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

/// Most volunteers listed for manual dispatch or reassignment: the
/// dispatcher's ranking first, then the others with why they are out; the
/// page says how many more there are.
const MAX_CANDIDATES: usize = 100;

struct Candidate {
    id: i64,
    name: String,
    /// `138 0001 0001`; reading it writes an access-log row. Empty for a
    /// volunteer whose team lies outside the reader's area.
    phone: String,
    /// The stored E.164 number, for a `tel:` link.
    tel: String,
    /// In the dispatcher's ranking (may be offered the order now); the
    /// others may only be assigned after a call.
    ranked: bool,
    /// The ranking in words, or every reason they are out.
    explain: String,
}

/// A row of the order's log, in words.
struct EventLine {
    at: String,
    who: String,
    what: String,
    /// Whom it concerns (the volunteer an order was assigned to), shown
    /// after `what` as a name.
    whom: Option<String>,
    /// A person's reason (cancel, reassign), as typed.
    reason: Option<String>,
}

/// An offer of the order and how it ended.
struct OfferLine {
    volunteer: String,
    /// `offered`, `held`, `accepted`, `declined`, `expired`, `withdrawn`.
    outcome: String,
    via: String,
    offered_at: String,
    /// When it was answered, expired or withdrawn; when it expires for an
    /// open one.
    until: String,
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

    fn more_text(&self) -> String {
        self.t.f1("board.more_candidates", "n", self.more)
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
    /// The live assignee's phone: E.164 for the link, `138 0001 0001`.
    volunteer_phone: Option<(String, String)>,
    /// Unassigned: offer or assign by hand.
    can_assign: bool,
    /// A live assignment: withdraw it and give the order to someone else.
    can_reassign: bool,
    /// Open: may be cancelled, with a reason.
    can_cancel: bool,
    candidates: Vec<Candidate>,
    /// Volunteers not listed past [`MAX_CANDIDATES`].
    more: usize,
    events: Vec<EventLine>,
    offers: Vec<OfferLine>,
    error: Option<String>,
    /// Set after a manual offer went out.
    notice: Option<String>,
    /// The reason typed into a refused cancel or reassign form.
    reason: String,
}

/// A reason the dispatcher does not offer the order to a volunteer, in the
/// viewer's language.
fn obstacle_text(t: Tr, o: &Obstacle, item: &str, tz: chrono_tz::Tz) -> String {
    use homefront_domain::credentials::{CredentialKind, IneligibleReason as R};
    match o {
        Obstacle::Ineligible(R::NotActive { state }) => t.f1(
            "board.out_not_vetted",
            "state",
            t.k("vetting", state.as_str()),
        ),
        Obstacle::Ineligible(
            R::Missing { kind } | R::Expired { kind, .. } | R::NotYetValid { kind, .. },
        ) if !CredentialKind::BASE.contains(kind) => t.f(
            "board.out_unqualified",
            &[("item", item), ("kind", t.k("credential", kind.as_str()))],
        ),
        Obstacle::Ineligible(r) => super::vetting::reason_text(t, r),
        Obstacle::Unavailable => t.t("board.out_off_duty").to_string(),
        Obstacle::Busy(other) => t.f1("board.out_busy", "id", other),
        Obstacle::OutsideRadius {
            distance_km,
            radius_km,
        } => t.f(
            "board.out_radius",
            &[
                ("km", &format!("{distance_km:.1}")),
                ("radius", &format!("{radius_km:.1}")),
            ],
        ),
        Obstacle::AtLoadCap { held, cap } => t.f(
            "board.out_load_cap",
            &[("held", &held.to_string()), ("cap", &cap.to_string())],
        ),
        Obstacle::Declined => t.t("board.out_declined").to_string(),
        Obstacle::CoolingDown(until) => {
            t.f1("board.out_cooling", "at", super::local_time(*until, tz))
        }
        Obstacle::OfferOpen => t.t("board.out_offer_open").to_string(),
        Obstacle::HadIt => t.t("board.out_had_it").to_string(),
    }
}

/// The ranking in words: `#1 · paired family's volunteer · 1.2 km · 3.0 h
/// in 4 weeks · 0 of 1 orders now`.
fn ranking_text(t: Tr, rank: usize, paired: bool, j: Option<&Judged>, km: Option<f64>) -> String {
    let mut parts = vec![t.f1("board.rank", "rank", rank)];
    if paired {
        parts.push(t.t("board.paired").to_string());
    }
    parts.push(match km {
        Some(km) => t.f1("board.km", "km", format!("{km:.1}")),
        None => t.t("board.remote").to_string(),
    });
    if let Some(j) = j {
        parts.push(t.f1(
            "board.recent_hours",
            "h",
            super::hours_text(j.recent_service_minutes),
        ));
        parts.push(t.f(
            "board.load_now",
            &[("load", &j.load.to_string()), ("cap", &j.cap.to_string())],
        ));
    }
    parts.join(" · ")
}

/// The order's log in words: when (the division's time), who, what.
fn event_lines(
    t: Tr,
    order: &OrderRow,
    events: &[homefront_store::orders::OrderEvent],
    offers: &[homefront_store::offers::Offer],
    names: &HashMap<i64, String>,
) -> Vec<EventLine> {
    use homefront_domain::order_state::EventAction as A;
    let name = |id: Option<i64>| match id {
        Some(id) => names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| t.f1("board.account", "id", id)),
        None => t.t("board.system").to_string(),
    };
    let last_assign = events.iter().rposition(|e| e.action == A::Assign);
    let mut out = Vec::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        let mut assignee = None;
        let what = match e.action {
            A::Assign => {
                // Whom: the offer accepted since the assignment before
                // (accepting writes both at once; a held accept wins
                // later), else, for a hand assignment still in force, the
                // assignee.
                let since = events[..i]
                    .iter()
                    .rev()
                    .find(|p| p.action == A::Assign)
                    .map_or(i64::MIN, |p| p.at);
                let accepted = offers
                    .iter()
                    .filter(|o| {
                        o.state == "accepted"
                            && o.responded_at.is_some_and(|r| r > since && r <= e.at)
                    })
                    .max_by_key(|o| o.responded_at);
                let whom = match (accepted, e.actor_user_id) {
                    (Some(o), Some(a)) if o.volunteer_user_id == a => None,
                    (Some(o), _) => Some(o.volunteer_user_id),
                    (None, _) if Some(i) == last_assign => order.assignee_user_id,
                    (None, _) => None,
                };
                match whom {
                    Some(v) if Some(v) != e.actor_user_id => {
                        assignee = Some(name(Some(v)));
                        t.t("event.assign_to").to_string()
                    }
                    _ if accepted.is_some() => t.t("event.accepted").to_string(),
                    _ => t.t("event.assign").to_string(),
                }
            }
            A::Escalate => {
                let queue = ["county", "city", "province"]
                    .into_iter()
                    .find(|q| {
                        e.reason
                            .as_deref()
                            .is_some_and(|r| r.contains(&format!("{q} coordinators")))
                    })
                    .unwrap_or("county");
                t.f1("event.escalate", "queue", t.k("queue", queue))
            }
            A::MarkUnfulfilled
                if e.reason.as_deref() == Some(homefront_store::orders::WINDOW_ENDED) =>
            {
                t.t("event.window_ended").to_string()
            }
            a => t.k("event", a.as_str()).to_string(),
        };
        // A person's reason is shown as typed; the system's own reasons
        // (escalation, window ended) are said in words above.
        let reason = e
            .reason
            .clone()
            .filter(|_| e.actor_user_id.is_some() && e.action != A::Escalate);
        out.push(EventLine {
            at: super::local_time(e.at, order.time_zone),
            who: name(e.actor_user_id),
            what,
            whom: assignee,
            reason,
        });
    }
    out
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
    let can_assign = matches!(order.state, OrderState::Submitted | OrderState::Dispatching);
    let can_reassign = matches!(order.state, OrderState::Assigned | OrderState::InService);
    let offers = state.store.offers_of_order(order.id).await.page(t)?;
    let mut candidates = Vec::new();
    let mut more = 0;
    if can_assign || can_reassign {
        let item = state
            .store
            .service_item(order.item_id)
            .await
            .page(t)?
            .ok_or_else(ApiError::not_found)
            .page(t)?;
        let item_name = t.pick(&item.name_zh, &item.name_en).to_string();
        let setting = crate::dispatcher::setting_for(
            &state.store,
            &OrgPath::from_stored(order.division_path.clone()),
        )
        .await
        .map_err(ApiError::from)
        .page(t)?;
        // Who could serve it, each with every reason they are out: the
        // dispatcher's own checks.
        let judged = crate::dispatcher::judge(
            &state.store,
            order,
            &item,
            state.clock.now(),
            state.config.escalation_radius_factor,
            setting.reoffer_cooldown_minutes,
        )
        .await
        .map_err(ApiError::internal)
        .page(t)?;
        let by_id: HashMap<i64, &Judged> = judged.iter().map(|j| (j.volunteer_id, j)).collect();
        let ranked = crate::api::dispatch::ranked(state, order, MAX_CANDIDATES)
            .await
            .page(t)?;
        let paired: Vec<i64> = state
            .store
            .live_pairings(order.household_id)
            .await
            .page(t)?
            .iter()
            .map(|p| p.volunteer_user_id)
            .collect();
        // The ranking ignores this order's earlier offers; the dispatcher
        // does not: a decline, a cooldown or an earlier accept puts them
        // with the others, an open offer is said beside the rank.
        let held_back = |id: i64| {
            by_id.get(&id).is_some_and(|j| {
                j.obstacles.iter().any(|o| {
                    matches!(
                        o,
                        Obstacle::Declined | Obstacle::CoolingDown(_) | Obstacle::HadIt
                    )
                })
            })
        };
        let mut listed = std::collections::HashSet::new();
        if let Some(a) = order.assignee_user_id {
            listed.insert(a);
        }
        for c in &ranked {
            if listed.contains(&c.volunteer_user_id) || held_back(c.volunteer_user_id) {
                continue;
            }
            listed.insert(c.volunteer_user_id);
            let j = by_id.get(&c.volunteer_user_id).copied();
            let mut explain = ranking_text(
                t,
                c.rank,
                paired.contains(&c.volunteer_user_id),
                j,
                c.distance_km,
            );
            if j.is_some_and(|j| j.obstacles.contains(&Obstacle::OfferOpen)) {
                explain = format!("{explain} · {}", t.t("board.out_offer_open"));
            }
            candidates.push((c.volunteer_user_id, true, explain));
        }
        // Then everyone else whose team serves the order: why not, fewest
        // reasons first (the nearest to being eligible).
        let mut rest: Vec<&Judged> = judged
            .iter()
            .filter(|j| !listed.contains(&j.volunteer_id))
            .collect();
        rest.sort_by_key(|j| (j.obstacles.len(), j.volunteer_id));
        for j in rest {
            if candidates.len() >= MAX_CANDIDATES {
                more += 1;
                continue;
            }
            let explain = if j.obstacles.is_empty() {
                t.f1("board.out_below", "n", MAX_CANDIDATES)
            } else {
                j.obstacles
                    .iter()
                    .map(|o| obstacle_text(t, o, &item_name, order.time_zone))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            candidates.push((j.volunteer_id, false, explain));
        }
        // Accounts with a volunteer role on a team that serves the order
        // but no volunteer profile yet (no home point, radius or vetting):
        // the dispatcher never sees them; a coordinator may still assign
        // one after a call, as hand assignment allows.
        let scopes: Option<Vec<String>> = actor
            .managed_scopes()
            .map(|s| s.iter().map(|p| p.as_str().to_string()).collect());
        let judged_ids: std::collections::HashSet<i64> =
            judged.iter().map(|j| j.volunteer_id).collect();
        let bare: Vec<i64> = state
            .store
            .users_in_scope(scopes.as_deref(), Some(homefront_domain::Role::Volunteer))
            .await
            .page(t)?
            .into_iter()
            .map(|u| u.id)
            .filter(|id| !judged_ids.contains(id) && !listed.contains(id))
            .collect();
        let order_path = OrgPath::from_stored(order.division_path.clone());
        let grants = state.store.grants_of(&bare).await.page(t)?;
        for id in bare {
            let serves = grants.iter().any(|g| {
                g.user_id == id
                    && g.role == homefront_domain::Role::Volunteer
                    && g.org_path.as_ref().is_some_and(|p| {
                        crate::api::dispatch::may_dispatch(
                            actor,
                            &order_path,
                            order.escalation_level,
                            &OrgPath::from_stored(p.clone()),
                        )
                    })
            });
            if !serves {
                continue;
            }
            if candidates.len() >= MAX_CANDIDATES {
                more += 1;
                continue;
            }
            candidates.push((id, false, t.t("board.out_no_profile").to_string()));
        }
    }
    // Names for the log, the offers and the lists; phones for the lists
    // and the live assignee (each read logged).
    let mut ids: Vec<i64> = candidates.iter().map(|c| c.0).collect();
    ids.extend(offers.iter().map(|o| o.volunteer_user_id));
    ids.extend(order.assignee_user_id);
    let log = state.store.order_events(order.id).await.page(t)?;
    ids.extend(log.iter().filter_map(|e| e.actor_user_id));
    ids.sort_unstable();
    ids.dedup();
    let users: HashMap<i64, homefront_store::users::User> = state
        .store
        .users_by_ids(&ids)
        .await
        .page(t)?
        .into_iter()
        .map(|u| (u.id, u))
        .collect();
    let names: HashMap<i64, String> = users
        .iter()
        .map(|(id, u)| (*id, u.display_name.clone()))
        .collect();
    // Phones only of volunteers whose team lies in the reader's own area:
    // the province's or the city's volunteers may be listed (and offered
    // the order) on a county coordinator's page, but their phones are no
    // more the county's to read here than through the API.
    let candidate_ids: Vec<i64> = candidates.iter().map(|c| c.0).collect();
    let phone_visible: std::collections::HashSet<i64> = state
        .store
        .grants_of(&candidate_ids)
        .await
        .page(t)?
        .into_iter()
        .filter(|g| {
            g.role == homefront_domain::Role::Volunteer
                && g.org_path
                    .as_ref()
                    .is_some_and(|p| actor.manages(&OrgPath::from_stored(p.clone())))
        })
        .map(|g| g.user_id)
        .collect();
    let mut phones_read: Vec<i64> = candidate_ids
        .into_iter()
        .filter(|id| phone_visible.contains(id))
        .collect();
    phones_read.extend(order.assignee_user_id);
    state
        .store
        .log_access(
            actor.user.id,
            RecordKind::Account,
            &phones_read,
            &["phone"],
            "manual_dispatch",
            state.clock.now().epoch_ms(),
        )
        .await
        .page(t)?;
    let phone_of = |id: i64| {
        users
            .get(&id)
            .map(|u| super::phone_text(&u.phone))
            .unwrap_or_default()
    };
    let tel_of = |id: i64| users.get(&id).map(|u| u.phone.clone()).unwrap_or_default();
    let name_of = |id: i64| names.get(&id).cloned().unwrap_or_default();
    let candidates = candidates
        .into_iter()
        .map(|(id, ranked, explain)| Candidate {
            id,
            name: name_of(id),
            phone: if phone_visible.contains(&id) {
                phone_of(id)
            } else {
                String::new()
            },
            tel: if phone_visible.contains(&id) {
                tel_of(id)
            } else {
                String::new()
            },
            ranked,
            explain,
        })
        .collect();
    let events = event_lines(t, order, &log, &offers, &names);
    let offers = offers
        .iter()
        .map(|o| {
            let outcome = if o.state == "offered" && o.held_at.is_some() {
                "held".to_string()
            } else {
                o.state.clone()
            };
            let until = match o.state.as_str() {
                "offered" => o.hold_until.unwrap_or(o.expires_at),
                "expired" => o.expires_at,
                _ => o.responded_at.unwrap_or(o.expires_at),
            };
            OfferLine {
                volunteer: name_of(o.volunteer_user_id),
                outcome,
                via: o.via.clone(),
                offered_at: super::local_time(o.offered_at, order.time_zone),
                until: super::local_time(until, order.time_zone),
            }
        })
        .collect();
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
        volunteer: order.assignee_user_id.map(name_of),
        volunteer_phone: order
            .assignee_user_id
            .filter(|_| can_reassign)
            .map(|id| (tel_of(id), phone_of(id))),
        can_assign,
        can_reassign,
        can_cancel: order.state.is_open(),
        candidates,
        more,
        events,
        offers,
        error,
        notice: None,
        reason: String::new(),
    })
}

#[derive(Deserialize)]
struct OrderQuery {
    offered: Option<String>,
    done: Option<String>,
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
    page.notice = match (q.offered, q.done.as_deref()) {
        (Some(_), _) => Some(t.t("board.offered").to_string()),
        (None, Some("cancelled")) => Some(t.t("board.cancelled").to_string()),
        (None, Some("reassigned")) => Some(t.t("board.reassigned").to_string()),
        _ => None,
    };
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

/// A refused form: the order's page again with the error, the reason as
/// typed, and the error's status.
async fn refused(
    state: &AppState,
    actor: &Actor,
    t: Tr,
    id: &str,
    err: &ApiError,
    reason: String,
) -> PageResult {
    use axum::response::IntoResponse;
    let o = managed_order(state, actor, t, id).await?;
    let mut page = order_page(state, actor, t, &o, Some(super::error_message(t, err))).await?;
    page.reason = reason;
    Ok((err.status, page).into_response())
}

async fn dispatch_by_hand(
    state: AppState,
    id: String,
    p: Posted<AssignForm>,
    how: Dispatch,
) -> PageResult {
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
            refused(&state, &p.actor, t, &id, &err, String::new()).await
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

#[derive(Deserialize)]
struct CancelForm {
    #[serde(default)]
    reason: String,
}

/// Cancels the order with the coordinator's reason (the form asks for
/// confirmation first); a blank reason answers 422 naming the field.
async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<CancelForm>,
) -> PageResult {
    let t = p.t;
    let o = managed_order(&state, &p.actor, t, &id).await?;
    match cancel_order(&state, &p.actor, o.id, &p.form.reason).await {
        Ok(_) => Ok(see_other(&format!("/board/orders/{}?done=cancelled", o.id))),
        Err(err) if err.status.is_client_error() && err.status.as_u16() != 404 => {
            refused(&state, &p.actor, t, &id, &err, p.form.reason.clone()).await
        }
        Err(err) => Err(err).page(t),
    }
}

#[derive(Deserialize)]
struct ReassignForm {
    #[serde(default)]
    reason: String,
    volunteer: Option<i64>,
    /// `offer` (default) or `assign`.
    #[serde(default)]
    how: String,
}

/// Withdraws the live assignment with the coordinator's reason and offers
/// the order to, or assigns it directly to, the picked volunteer.
async fn reassign(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<ReassignForm>,
) -> PageResult {
    let t = p.t;
    let o = managed_order(&state, &p.actor, t, &id).await?;
    let how = if p.form.how == "assign" {
        Reassign::Assign
    } else {
        Reassign::Offer
    };
    let result = match p.form.volunteer {
        None => Err(ApiError::invalid(
            "volunteer_user_id",
            "pick_volunteer",
            "pick a volunteer",
        )),
        Some(vid) => reassign_order(&state, &p.actor, o.id, &p.form.reason, vid, how).await,
    };
    match result {
        Ok(_) => Ok(see_other(&format!(
            "/board/orders/{}?done=reassigned",
            o.id
        ))),
        Err(err) if err.status.is_client_error() && err.status.as_u16() != 404 => {
            refused(&state, &p.actor, t, &id, &err, p.form.reason.clone()).await
        }
        Err(err) => Err(err).page(t),
    }
}
