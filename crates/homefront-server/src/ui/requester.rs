//! Requester pages: the order in three steps (item → who and where →
//! when), the order's live status, cancel, confirm, and history.

use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use futures::Stream;
use homefront_domain::Role;
use homefront_domain::order_state::OrderState;
use homefront_store::catalogue::ServiceItem;
use homefront_store::households::Member;
use homefront_store::orders::{OrderFilter, OrderRow};
use serde::Deserialize;
use serde_json::json;

use super::i18n::Tr;
use super::{
    Layout, Localize, PageError, PageResult, Posted, Viewer, first_name, local_time, see_other,
};
use crate::AppState;
use crate::api::households as api_households;
use crate::api::orders::{self as api_orders, visible_order};
use crate::auth::Actor;
use crate::error::ApiError;
use crate::privacy::OrderAccess;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/orders", get(history).post(create))
        .route("/orders/new", get(step_item))
        .route("/orders/new/who", get(step_who))
        .route("/orders/new/when", get(step_when))
        .route("/orders/{id}", get(show))
        .route("/orders/{id}/cancel", post(cancel))
        .route("/orders/{id}/confirm", post(confirm))
        .route("/live/orders/{id}", get(live))
}

fn requester_only(v: &Viewer) -> PageResult<()> {
    if v.actor.has(Role::Requester) {
        Ok(())
    } else {
        Err(ApiError::forbidden()).page(v.t())
    }
}

/// An order row as a list shows it (no sensitive field).
pub struct OrderLine {
    /// Order id.
    pub id: i64,
    /// Item name in the viewer's language.
    pub item: String,
    /// Division name.
    pub division: String,
    /// State code.
    pub state: String,
    /// Lane code.
    pub lane: String,
    /// Window start, local.
    pub window: String,
}

impl OrderLine {
    /// Shapes `o` for a list.
    pub fn of(t: Tr, o: &OrderRow) -> OrderLine {
        OrderLine {
            id: o.id,
            item: t.pick(&o.item_name_zh, &o.item_name_en).to_string(),
            division: t.place(&o.division_name),
            state: o.state.to_string(),
            lane: o.lane.to_string(),
            window: format!(
                "{} – {}",
                local_time(o.window_start, o.time_zone),
                local_time(o.window_end, o.time_zone)
            ),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "orders.html")]
struct HistoryPage {
    t: Tr,
    l: Layout,
    open: Vec<OrderLine>,
    past: Vec<OrderLine>,
    /// Older orders not listed.
    more: i64,
}

/// Orders listed on the requester's history page, newest first.
const HISTORY_SHOWN: i64 = 200;

async fn history(State(state): State<AppState>, v: Viewer) -> PageResult<HistoryPage> {
    requester_only(&v)?;
    let t = v.t();
    let now = state.clock.now().epoch_ms();
    let household = state
        .store
        .household_of(v.actor.user.id, now)
        .await
        .page(t)?;
    let filter = OrderFilter {
        household_id: Some(household.id),
        limit: Some(HISTORY_SHOWN),
        ..OrderFilter::default()
    };
    let rows = state.store.orders(&filter).await.page(t)?;
    let total = state.store.count_matching_orders(&filter).await.page(t)?;
    let (open, past): (Vec<_>, Vec<_>) = rows.iter().partition(|o| !o.state.is_terminal());
    Ok(HistoryPage {
        t,
        l: v.l,
        more: total - i64::try_from(rows.len()).unwrap_or(0),
        open: open.into_iter().map(|o| OrderLine::of(t, o)).collect(),
        past: past.into_iter().map(|o| OrderLine::of(t, o)).collect(),
    })
}

/// A catalogue item on the wizard's first step.
struct ItemChoice {
    id: i64,
    name: String,
    mode: String,
    /// One line on what the service is (the message catalogue's
    /// `item_desc.<code>`; empty for an item without one).
    description: String,
    /// Why it cannot be delivered now, or does not suit the member.
    why: String,
    /// False when the member's rules exclude it (it cannot be ordered for
    /// them); an item nobody can deliver now may still be ordered (a
    /// coordinator hears of it).
    orderable: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "order_item.html")]
struct StepItem {
    t: Tr,
    l: Layout,
    members: Vec<MemberChoice>,
    /// The member the list is for (0: the household has none yet).
    member: i64,
    /// The chosen member's rules, in words (guardian consent, tutoring).
    rules: Vec<Rule>,
    /// Deliverable now, most-used first.
    items: Vec<ItemChoice>,
    /// The others, each with why.
    apart: Vec<ItemChoice>,
    /// The item chosen before (coming back from step 2); 0: none, so
    /// nothing is preselected.
    selected: i64,
    back_here: String,
}

#[derive(Deserialize)]
struct Wizard {
    item: Option<i64>,
    member: Option<i64>,
}

/// Orders counted for "most-used first": the last 30 days.
const USAGE_DAYS: i64 = 30;

/// A rule about a member in words, split around their name so the page
/// can mark the name as data: (before, name, after).
pub(crate) type Rule = (String, String, String);

fn rule(t: Tr, key: &str, name: &str) -> Rule {
    let text = t.t(key);
    let (before, after) = text.split_once("{name}").unwrap_or((text, ""));
    (before.to_string(), name.to_string(), after.to_string())
}

/// What the wizard says of a member: who needs what before ordering, and,
/// once `item` is chosen, whether it suits them (tutoring is for pupils).
/// Before an item is chosen, the items that do not suit the member are
/// listed apart with why, so no rule about them is repeated here.
fn member_rules(t: Tr, m: &Member, item: Option<&ServiceItem>) -> Vec<Rule> {
    let mut out = Vec::new();
    if api_households::lacks_guardian_consent(m) {
        out.push(rule(t, "wizard.rule_consent", &m.name));
    }
    if item.is_some_and(|i| {
        !homefront_domain::catalogue::suits_member(
            &i.qualification_codes(),
            m.relation,
            m.age_years,
            m.school_grade.as_deref(),
        )
    }) {
        out.push(rule(t, "wizard.rule_tutoring", &m.name));
    }
    out
}

async fn step_item(
    State(state): State<AppState>,
    v: Viewer,
    Query(q): Query<Wizard>,
) -> PageResult<StepItem> {
    requester_only(&v)?;
    let t = v.t();
    let now = state.clock.now();
    let household = state
        .store
        .household_of(v.actor.user.id, now.epoch_ms())
        .await
        .page(t)?;
    let members: Vec<Member> = state.store.members(household.id).await.page(t)?;
    let chosen = q
        .member
        .and_then(|id| members.iter().find(|m| m.id == id))
        .or_else(|| {
            members
                .iter()
                .find(|m| m.relation == homefront_domain::catalogue::Relation::SelfMember)
        })
        .or_else(|| members.first());
    let catalogue = state.store.service_items(false).await.page(t)?;
    let usage = state
        .store
        .order_counts_by_item(now.plus_days(-USAGE_DAYS).epoch_ms())
        .await
        .page(t)?;
    // Who could serve each item at the member's place now, at any
    // escalation level: the dispatcher's rules.
    let reach = match chosen {
        Some(m) => {
            let division = state.store.org_unit(m.division_id).await.page(t)?;
            let point = m
                .longitude
                .zip(m.latitude)
                .or_else(|| division.as_ref().and_then(|d| d.longitude.zip(d.latitude)))
                .and_then(|(lon, lat)| homefront_domain::GeoPoint::new(lon, lat).ok());
            match division {
                Some(d) => Some(
                    crate::dispatcher::reach(
                        &state.store,
                        &d.org_path(),
                        point,
                        &catalogue,
                        now,
                        state.config.escalation_radius_factor,
                    )
                    .await
                    .map_err(ApiError::internal)
                    .page(t)?,
                ),
                None => None,
            }
        }
        None => None,
    };
    let mut sorted: Vec<&ServiceItem> = catalogue.iter().collect();
    sorted.sort_by_key(|i| (-usage.get(&i.id).copied().unwrap_or(0), i.id));
    let (mut items, mut apart) = (Vec::new(), Vec::new());
    for i in sorted {
        let suits = chosen.is_none_or(|m| {
            homefront_domain::catalogue::suits_member(
                &i.qualification_codes(),
                m.relation,
                m.age_years,
                m.school_grade.as_deref(),
            )
        });
        let reachable = reach
            .as_ref()
            .is_none_or(|r| r.get(&i.id).is_some_and(|r| r.any_level > 0));
        let name = t.pick(&i.name_zh, &i.name_en).to_string();
        let why = if !suits {
            t.t("wizard.not_for_member").to_string()
        } else if !reachable {
            t.f1("wizard.none_in_reach", "item", &name)
        } else {
            String::new()
        };
        let choice = ItemChoice {
            id: i.id,
            description: t
                .get(&format!("item_desc.{}", i.code))
                .unwrap_or_default()
                .to_string(),
            mode: i.mode.to_string(),
            name,
            why,
            orderable: suits,
        };
        if suits && reachable {
            items.push(choice);
        } else {
            apart.push(choice);
        }
    }
    let member = chosen.map_or(0, |m| m.id);
    let rules = chosen.map(|m| member_rules(t, m, None)).unwrap_or_default();
    let choices = members_of(&state, &v.actor, t, None).await?;
    Ok(StepItem {
        t,
        selected: q.item.unwrap_or(0),
        back_here: super::url_encode(&format!("/orders/new?member={member}")),
        l: v.l,
        members: choices,
        member,
        rules,
        items,
        apart,
    })
}

/// A household member as the requester's own form shows it.
struct MemberChoice {
    id: i64,
    name: String,
    relation: String,
    division: String,
    street: String,
    /// What this member needs before ordering (guardian consent) and
    /// which services do not suit them, in words.
    rules: Vec<Rule>,
}

#[derive(Template, WebTemplate)]
#[template(path = "order_who.html")]
struct StepWho {
    t: Tr,
    l: Layout,
    item: i64,
    item_name: String,
    members: Vec<MemberChoice>,
    selected: i64,
    /// This step's path, encoded for a `next` parameter, so the household
    /// pages return here after a member is added or changed.
    back_here: String,
}

async fn item_of(state: &AppState, t: Tr, id: Option<i64>) -> PageResult<ServiceItem> {
    match id {
        Some(id) => match state.store.service_item(id).await.page(t)? {
            Some(i) if i.retired_at.is_none() => Ok(i),
            _ => Err(ApiError::invalid("item_id", "unknown_item", "")).page(t),
        },
        None => Err(ApiError::invalid("item_id", "unknown_item", "")).page(t),
    }
}

async fn members_of(
    state: &AppState,
    actor: &Actor,
    t: Tr,
    item: Option<&ServiceItem>,
) -> PageResult<Vec<MemberChoice>> {
    let now = state.clock.now().epoch_ms();
    let household = state.store.household_of(actor.user.id, now).await.page(t)?;
    let members: Vec<Member> = state.store.members(household.id).await.page(t)?;
    let ids: Vec<i64> = members.iter().map(|m| m.division_id).collect();
    let places: std::collections::HashMap<i64, String> = state
        .store
        .org_units_by_ids(&ids)
        .await
        .page(t)?
        .into_iter()
        .map(|u| (u.id, t.place(&u.name)))
        .collect();
    let mut out = Vec::with_capacity(members.len());
    for m in members {
        let division = places.get(&m.division_id).cloned().unwrap_or_default();
        out.push(MemberChoice {
            id: m.id,
            rules: member_rules(t, &m, item),
            name: m.name,
            relation: m.relation.to_string(),
            division,
            street: m.street,
        });
    }
    Ok(out)
}

async fn step_who(
    State(state): State<AppState>,
    v: Viewer,
    Query(q): Query<Wizard>,
) -> PageResult<StepWho> {
    requester_only(&v)?;
    let t = v.t();
    let item = item_of(&state, t, q.item).await?;
    let members = members_of(&state, &v.actor, t, Some(&item)).await?;
    Ok(StepWho {
        t,
        selected: q
            .member
            .unwrap_or_else(|| members.first().map_or(0, |m| m.id)),
        l: v.l,
        item: item.id,
        item_name: t.pick(&item.name_zh, &item.name_en).to_string(),
        members,
        back_here: super::url_encode(&format!("/orders/new/who?item={}", item.id)),
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "order_when.html")]
struct StepWhen {
    t: Tr,
    l: Layout,
    item: i64,
    item_name: String,
    member: i64,
    member_name: String,
    key: String,
    start: String,
    end: String,
    urgent: bool,
    notes: String,
    public_note: String,
    error: Option<String>,
    error_field: String,
}

fn default_window(state: &AppState) -> (String, String) {
    let now = state.clock.now().epoch_ms();
    let tz = chrono_tz::Asia::Shanghai;
    let at = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|d| d.with_timezone(&tz).format("%Y-%m-%dT%H:00").to_string())
            .unwrap_or_default()
    };
    (at(now + 2 * 3_600_000), at(now + 4 * 3_600_000))
}

async fn step_when(
    State(state): State<AppState>,
    v: Viewer,
    Query(q): Query<Wizard>,
) -> PageResult<StepWhen> {
    requester_only(&v)?;
    let t = v.t();
    let item = item_of(&state, t, q.item).await?;
    let members = members_of(&state, &v.actor, t, Some(&item)).await?;
    let member = members
        .into_iter()
        .find(|m| Some(m.id) == q.member)
        .ok_or(())
        .or_else(|()| Err(ApiError::invalid("member_id", "unknown_member", "")).page(t))?;
    let (start, end) = default_window(&state);
    Ok(StepWhen {
        t,
        l: v.l,
        item: item.id,
        item_name: t.pick(&item.name_zh, &item.name_en).to_string(),
        member: member.id,
        member_name: member.name,
        key: uuid::Uuid::new_v4().to_string(),
        start,
        end,
        urgent: false,
        notes: String::new(),
        public_note: String::new(),
        error: None,
        error_field: String::new(),
    })
}

#[derive(Deserialize)]
struct OrderForm {
    item: i64,
    member: i64,
    key: String,
    window_start: String,
    window_end: String,
    #[serde(default)]
    urgent: Option<String>,
    #[serde(default)]
    notes: String,
    #[serde(default)]
    public_note: String,
}

async fn create(State(state): State<AppState>, p: Posted<OrderForm>) -> PageResult {
    let t = p.t;
    let f = p.form;
    let body = json!({
        "item_id": f.item,
        "member_id": f.member,
        "window_start": f.window_start,
        "window_end": f.window_end,
        "urgency": if f.urgent.is_some() { "urgent" } else { "normal" },
        "notes": f.notes,
        "public_note": f.public_note,
    });
    match api_orders::place_order(&state, &p.actor, f.key.trim(), body).await {
        Ok(placed) => {
            let id = placed
                .order_id()
                .ok_or_else(|| ApiError::internal("stored answer without id"))
                .page(t)?;
            Ok(see_other(&format!("/orders/{id}")))
        }
        Err(err) if err.status.as_u16() == 422 => {
            // Show the third step again, with what was typed and the fix.
            let item = item_of(&state, t, Some(f.item)).await?;
            let member_name = members_of(&state, &p.actor, t, Some(&item))
                .await?
                .into_iter()
                .find(|m| m.id == f.member)
                .map(|m| m.name)
                .unwrap_or_default();
            let page = StepWhen {
                t,
                l: Layout::new(t, "/orders/new", Some(&p.actor)),
                item: item.id,
                item_name: t.pick(&item.name_zh, &item.name_en).to_string(),
                member: f.member,
                member_name,
                // A new key: the rejected submit stored nothing.
                key: uuid::Uuid::new_v4().to_string(),
                start: f.window_start,
                end: f.window_end,
                urgent: f.urgent.is_some(),
                notes: f.notes,
                public_note: f.public_note,
                error: Some(super::error_message(t, &err)),
                error_field: err.field.clone().unwrap_or_default(),
            };
            Ok((err.status, page).into_response())
        }
        Err(err) => Err(PageError { t, err, next: None }),
    }
}

/// The live part of an order's page: state, volunteer, actions, timeline.
pub struct StatusView {
    id: i64,
    state: String,
    volunteer: Option<String>,
    /// The live volunteer's phone: E.164 for the link, `138 0001 0001`
    /// to read (shown only while the assignment is live; each read logged).
    volunteer_phone: Option<(String, String)>,
    /// How far the volunteer is from the order's place, e.g. `1.2`
    /// (km, great-circle from their home point).
    distance_km: Option<String>,
    /// While nobody has accepted: how many volunteers near the place are on
    /// duty and could take it now.
    looking: Option<usize>,
    can_cancel: bool,
    can_confirm: bool,
    events: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "order_status.html")]
struct StatusFragment<'a> {
    t: Tr,
    csrf: &'a str,
    s: &'a StatusView,
}

/// The order's point: its own coordinates, else its division's.
async fn order_point(
    state: &AppState,
    order: &OrderRow,
) -> Result<Option<homefront_domain::GeoPoint>, ApiError> {
    let own = order
        .longitude
        .zip(order.latitude)
        .and_then(|(lon, lat)| homefront_domain::GeoPoint::new(lon, lat).ok());
    if own.is_some() {
        return Ok(own);
    }
    Ok(state
        .store
        .org_unit(order.division_id)
        .await?
        .and_then(|d| d.longitude.zip(d.latitude))
        .and_then(|(lon, lat)| homefront_domain::GeoPoint::new(lon, lat).ok()))
}

async fn status_view(
    state: &AppState,
    actor: &Actor,
    order: &OrderRow,
) -> Result<StatusView, ApiError> {
    let st = order.state;
    let live = matches!(st, OrderState::Assigned | OrderState::InService);
    let (mut volunteer, mut volunteer_phone, mut distance_km) = (None, None, None);
    if let Some(uid) = order.assignee_user_id {
        let user = state.store.user(uid).await?;
        volunteer = user.as_ref().map(|u| first_name(&u.display_name));
        if live && let Some(u) = user {
            // The volunteer's phone while the assignment is live, like the
            // requester's address for the volunteer, with the same audit.
            state
                .store
                .log_access(
                    actor.user.id,
                    homefront_domain::privacy::RecordKind::Account,
                    &[uid],
                    &["phone"],
                    "order_page",
                    state.clock.now().epoch_ms(),
                )
                .await?;
            volunteer_phone = Some((u.phone.clone(), super::phone_text(&u.phone)));
            let from = state.store.volunteer(uid).await?.and_then(|v| v.location());
            if order.item_mode == homefront_domain::catalogue::ServiceMode::Onsite
                && let (Some(a), Some(b)) = (from, order_point(state, order).await?)
            {
                distance_km = Some(format!("{:.1}", a.haversine_km(&b)));
            }
        }
    }
    let looking = if matches!(st, OrderState::Submitted | OrderState::Dispatching) {
        let item = state.store.service_item(order.item_id).await?;
        let point = order_point(state, order).await?;
        match item {
            Some(item) => crate::dispatcher::reach(
                &state.store,
                &homefront_domain::org::OrgPath::from_stored(order.division_path.clone()),
                point,
                std::slice::from_ref(&item),
                state.clock.now(),
                state.config.escalation_radius_factor,
            )
            .await
            .map_err(ApiError::internal)?
            .get(&item.id)
            .map(|r| r.nearby),
            None => None,
        }
    } else {
        None
    };
    let events = state
        .store
        .order_events(order.id)
        .await?
        .into_iter()
        .map(|e| (local_time(e.at, order.time_zone), e.to_state.to_string()))
        .collect();
    Ok(StatusView {
        id: order.id,
        state: order.state.to_string(),
        volunteer,
        volunteer_phone,
        distance_km,
        looking,
        can_cancel: matches!(
            st,
            OrderState::Submitted | OrderState::Dispatching | OrderState::Assigned
        ),
        can_confirm: st == OrderState::Completed,
        events,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "order.html")]
struct OrderPage {
    t: Tr,
    l: Layout,
    line: OrderLine,
    member: String,
    street: String,
    public_note: String,
    notes: String,
    status: String,
    now: i64,
}

/// The order for its owner (requester or placing liaison); anyone else,
/// coordinators included, gets 404 here (they have the board).
async fn own_order(state: &AppState, actor: &Actor, t: Tr, id: &str) -> PageResult<OrderRow> {
    let id = crate::api::parse_id(id).page(t)?;
    let (order, access) = visible_order(state, actor, id).await.page(t)?;
    if access != OrderAccess::Full
        || (order.requester_user_id != actor.user.id && order.placed_by != actor.user.id)
    {
        return Err(ApiError::not_found()).page(t);
    }
    Ok(order)
}

async fn show(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
) -> PageResult<OrderPage> {
    let t = v.t();
    let order = own_order(&state, &v.actor, t, &id).await?;
    // The page shows the address: log the read as the API's detail does.
    let view = api_orders::detail(&state, &v.actor, &order, OrderAccess::Full, "order_page")
        .await
        .page(t)?;
    let member = state
        .store
        .member(order.member_id)
        .await
        .page(t)?
        .map(|m| m.name)
        .unwrap_or_default();
    let sv = status_view(&state, &v.actor, &order).await.page(t)?;
    let status = StatusFragment {
        t,
        csrf: &v.l.csrf,
        s: &sv,
    }
    .render()
    .map_err(ApiError::internal)
    .page(t)?;
    Ok(OrderPage {
        t,
        line: OrderLine::of(t, &order),
        member,
        street: view.street.flatten().unwrap_or_default(),
        public_note: view.public_note.unwrap_or_default(),
        notes: view.notes.flatten().unwrap_or_default(),
        status,
        now: state.clock.now().epoch_ms(),
        l: v.l,
    })
}

#[derive(Deserialize)]
struct CancelForm {
    reason: String,
}

async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<CancelForm>,
) -> PageResult {
    let order = own_order(&state, &p.actor, p.t, &id).await?;
    api_orders::cancel_order(&state, &p.actor, order.id, &p.form.reason)
        .await
        .page(p.t)?;
    Ok(see_other(&format!("/orders/{}", order.id)))
}

#[derive(Deserialize)]
struct ConfirmForm {
    #[serde(default)]
    rating: String,
    #[serde(default)]
    comment: String,
}

async fn confirm(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<ConfirmForm>,
) -> PageResult {
    let order = own_order(&state, &p.actor, p.t, &id).await?;
    // A second tap on "confirm" (double click, or a resent form) lands on
    // the confirmed order instead of an error.
    if order.state == OrderState::Confirmed {
        return Ok(see_other(&format!("/orders/{}", order.id)));
    }
    let req = api_orders::ConfirmRequest {
        rating: p.form.rating.trim().parse().ok(),
        comment: Some(p.form.comment).filter(|c| !c.trim().is_empty()),
        complaint: false,
    };
    api_orders::confirm_order(&state, &p.actor, order.id, req)
        .await
        .page(p.t)?;
    Ok(see_other(&format!("/orders/{}", order.id)))
}

/// `GET /live/orders/{id}`: the status fragment again whenever the order
/// changes, for its owner only (checked on connect and on every change).
async fn live(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
) -> PageResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let t = v.t();
    let order = own_order(&state, &v.actor, t, &id).await?;
    let order_id = order.id;
    crate::live::may_stream(&state, &v.actor).await.page(t)?;
    let guard = (state.clone(), v.actor.clone());
    let rx = state.live.subscribe();
    let actor = v.actor;
    let csrf = v.l.csrf;
    let stream = super::live_stream(
        rx,
        "status",
        Duration::from_secs(30),
        move |changed| changed == order_id,
        move || {
            let (state, actor, csrf) = (state.clone(), actor.clone(), csrf.clone());
            async move {
                let order = own_order(&state, &actor, t, &order_id.to_string())
                    .await
                    .ok()?;
                let sv = status_view(&state, &actor, &order).await.ok()?;
                StatusFragment {
                    t,
                    csrf: &csrf,
                    s: &sv,
                }
                .render()
                .ok()
            }
        },
    );
    let stream = crate::live::while_signed_in(guard.0, guard.1, stream);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
