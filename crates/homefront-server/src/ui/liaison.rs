//! The liaison's pages: verify staff of their employer, place an order on
//! a staff member's behalf, and see the orders they placed. The same
//! application functions as the API ([`api_households::verify_staff`],
//! [`api_orders::place_order`] with `on_behalf_of_phone`).

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use homefront_domain::Role;
use homefront_store::orders::OrderFilter;
use serde::Deserialize;
use serde_json::json;

use super::i18n::Tr;
use super::requester::OrderLine;
use super::{Layout, Localize, PageResult, Posted, Viewer, see_other};
use crate::AppState;
use crate::api::households as api_households;
use crate::api::orders as api_orders;
use crate::auth::Actor;
use crate::error::ApiError;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/liaison", get(home))
        .route("/liaison/verify", post(verify))
        .route("/liaison/order", get(order_form))
        .route("/liaison/orders", post(place))
}

/// Orders listed on the liaison's page, newest first.
const ORDERS_SHOWN: i64 = 100;

/// The employers the actor is a liaison of (their grants' units).
fn employers(actor: &Actor) -> Vec<i64> {
    actor
        .grants
        .iter()
        .filter(|g| g.role == Role::Liaison)
        .filter_map(|g| g.org_unit_id)
        .collect()
}

fn liaison_only(v: &Viewer) -> PageResult<Vec<i64>> {
    let e = employers(&v.actor);
    if e.is_empty() {
        Err(ApiError::forbidden()).page(v.t())
    } else {
        Ok(e)
    }
}

/// A verified staff member.
struct Staff {
    household: i64,
    name: String,
    phone: String,
    department: String,
    employer: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "liaison.html")]
struct LiaisonPage {
    t: Tr,
    l: Layout,
    employers: Vec<(i64, String)>,
    staff: Vec<Staff>,
    orders: Vec<OrderLine>,
    error: Option<String>,
    notice: Option<String>,
    phone: String,
    department: String,
}

async fn page(state: &AppState, actor: &Actor, t: Tr, ids: &[i64]) -> PageResult<LiaisonPage> {
    let mut employers = Vec::new();
    let mut staff = Vec::new();
    for id in ids {
        let Some(unit) = state.store.org_unit(*id).await.page(t)? else {
            continue;
        };
        let name = t.place(&unit.name);
        for h in state.store.households_of_employer(*id).await.page(t)? {
            let user = state.store.user(h.requester_user_id).await.page(t)?;
            staff.push(Staff {
                household: h.id,
                name: user
                    .as_ref()
                    .map(|u| u.display_name.clone())
                    .unwrap_or_default(),
                phone: user
                    .map(|u| super::phone_text(&u.phone))
                    .unwrap_or_default(),
                department: h.department.unwrap_or_default(),
                employer: name.clone(),
            });
        }
        employers.push((*id, name));
    }
    let rows = state
        .store
        .orders(&OrderFilter {
            placed_by: Some(actor.user.id),
            limit: Some(ORDERS_SHOWN),
            ..OrderFilter::default()
        })
        .await
        .page(t)?;
    Ok(LiaisonPage {
        t,
        l: Layout::new(t, "/liaison", Some(actor)),
        employers,
        staff,
        orders: rows.iter().map(|o| OrderLine::of(t, o)).collect(),
        error: None,
        notice: None,
        phone: String::new(),
        department: String::new(),
    })
}

#[derive(Deserialize)]
struct HomeQuery {
    verified: Option<String>,
}

async fn home(
    State(state): State<AppState>,
    v: Viewer,
    Query(q): Query<HomeQuery>,
) -> PageResult<LiaisonPage> {
    let ids = liaison_only(&v)?;
    let t = v.t();
    let mut p = page(&state, &v.actor, t, &ids).await?;
    p.notice = q.verified.map(|_| t.t("liaison.verified").to_string());
    Ok(p)
}

#[derive(Deserialize)]
struct VerifyForm {
    #[serde(default)]
    phone: String,
    employer: Option<i64>,
    #[serde(default)]
    department: String,
    deployed: Option<String>,
}

/// Verifies a staff member (the API's rule); a bad phone or an unknown
/// requester answers 422 with the page again and what was typed.
async fn verify(State(state): State<AppState>, p: Posted<VerifyForm>) -> PageResult {
    let ids = employers(&p.actor);
    let t = p.t;
    if ids.is_empty() {
        return Err(ApiError::forbidden()).page(t);
    }
    let req = api_households::VerifyRequest {
        phone: p.form.phone.clone(),
        employer_id: p.form.employer.unwrap_or(ids[0]),
        department: Some(p.form.department.clone()),
        deployed_to_centre: p.form.deployed.is_some(),
    };
    match api_households::verify_staff(&state, &p.actor, &req).await {
        Ok(_) => Ok(see_other("/liaison?verified=1")),
        Err(err) if err.status.is_client_error() => {
            let mut page = page(&state, &p.actor, t, &ids).await?;
            page.error = Some(super::error_message(t, &err));
            page.phone = p.form.phone;
            page.department = p.form.department;
            Ok((err.status, page).into_response())
        }
        Err(err) => Err(err).page(t),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "liaison_order.html")]
struct OrderFormPage {
    t: Tr,
    l: Layout,
    household: i64,
    staff: String,
    members: Vec<(i64, String)>,
    items: Vec<(i64, String)>,
    key: String,
    start: String,
    end: String,
    error: Option<String>,
}

#[derive(Deserialize)]
struct OrderQuery {
    household: Option<i64>,
}

/// The staff member's household, if the liaison's employer verified it.
async fn verified_household(
    state: &AppState,
    actor: &Actor,
    t: Tr,
    id: Option<i64>,
) -> PageResult<(homefront_store::households::Household, String)> {
    let ids = employers(actor);
    let h = match id {
        Some(id) => state.store.household(id).await.page(t)?,
        None => None,
    }
    .filter(|h| h.employer_id.is_some_and(|e| ids.contains(&e)))
    .ok_or_else(ApiError::not_found)
    .page(t)?;
    let user = state
        .store
        .user(h.requester_user_id)
        .await
        .page(t)?
        .ok_or_else(ApiError::not_found)
        .page(t)?;
    Ok((h, user.phone))
}

async fn order_form_page(
    state: &AppState,
    actor: &Actor,
    t: Tr,
    household: Option<i64>,
    error: Option<String>,
) -> PageResult<OrderFormPage> {
    let (h, phone) = verified_household(state, actor, t, household).await?;
    let members = state
        .store
        .members(h.id)
        .await
        .page(t)?
        .into_iter()
        .map(|m| {
            (
                m.id,
                format!("{} · {}", m.name, t.k("relation", m.relation)),
            )
        })
        .collect();
    let items = state
        .store
        .service_items(false)
        .await
        .page(t)?
        .into_iter()
        .map(|i| (i.id, t.pick(&i.name_zh, &i.name_en).to_string()))
        .collect();
    let now = state.clock.now().epoch_ms();
    let at = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|d| {
                d.with_timezone(&chrono_tz::Asia::Shanghai)
                    .format("%Y-%m-%dT%H:00")
                    .to_string()
            })
            .unwrap_or_default()
    };
    let staff = state
        .store
        .user(h.requester_user_id)
        .await
        .page(t)?
        .map(|u| format!("{} · {}", u.display_name, super::phone_text(&phone)))
        .unwrap_or_default();
    Ok(OrderFormPage {
        t,
        l: Layout::new(t, "/liaison/order", Some(actor)),
        household: h.id,
        staff,
        members,
        items,
        key: uuid::Uuid::new_v4().to_string(),
        start: at(now + 2 * 3_600_000),
        end: at(now + 4 * 3_600_000),
        error,
    })
}

async fn order_form(
    State(state): State<AppState>,
    v: Viewer,
    Query(q): Query<OrderQuery>,
) -> PageResult<OrderFormPage> {
    liaison_only(&v)?;
    order_form_page(&state, &v.actor, v.t(), q.household, None).await
}

#[derive(Deserialize)]
struct PlaceForm {
    household: i64,
    key: String,
    member: Option<i64>,
    item: Option<i64>,
    window_start: String,
    window_end: String,
}

/// Places the order for the staff member through the API's intake
/// (`on_behalf_of_phone`); a refused order shows the form again with why.
async fn place(State(state): State<AppState>, p: Posted<PlaceForm>) -> PageResult {
    let t = p.t;
    let (_, phone) = verified_household(&state, &p.actor, t, Some(p.form.household)).await?;
    let body = json!({
        "item_id": p.form.item,
        "member_id": p.form.member,
        "window_start": p.form.window_start,
        "window_end": p.form.window_end,
        "on_behalf_of_phone": phone,
    });
    match api_orders::place_order(&state, &p.actor, p.form.key.trim(), body).await {
        Ok(placed) => {
            let id = placed
                .order_id()
                .ok_or_else(|| ApiError::internal("stored answer without id"))
                .page(t)?;
            Ok(see_other(&format!("/orders/{id}")))
        }
        Err(err) if err.status.is_client_error() && err.status.as_u16() != 404 => {
            let page = order_form_page(
                &state,
                &p.actor,
                t,
                Some(p.form.household),
                Some(super::error_message(t, &err)),
            )
            .await?;
            Ok((err.status, page).into_response())
        }
        Err(err) => Err(err).page(t),
    }
}
