//! Offers, as volunteers see them: `GET /api/v1/offers`,
//! `POST /api/v1/offers/{id}/accept`, `POST /api/v1/offers/{id}/decline`.
//!
//! Before accepting, a volunteer sees the item, the district, the distance
//! the dispatcher measured, the window and the non-identifying public note;
//! never the address or phone. A late or duplicate response answers 409
//! with `offer_taken`, `offer_expired`, `offer_withdrawn`,
//! `already_accepted` or `already_declined`, and is recorded.

use std::collections::HashMap;

use axum::extract::{OriginalUri, Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use homefront_domain::Role;
use homefront_domain::privacy::RecordKind;
use homefront_store::offers::{Offer, Refusal, Response};
use homefront_store::orders::OrderRow;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::api::ApiQuery;
use crate::api::openapi::ErrorShape;
use crate::api::orders::{OrderView, view};
use crate::api::{paging, parse_id};
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::privacy::{OrderAccess, order_access};

/// Offer routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/offers", get(list))
        .route("/offers/{id}/accept", post(accept))
        .route("/offers/{id}/decline", post(decline))
}

/// An offer with the order as the volunteer may see it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OfferView {
    /// Offer id.
    pub id: i64,
    /// `offered`, `accepted`, `declined`, `expired` or `withdrawn`
    /// (shown as "taken" when another volunteer accepted).
    pub state: String,
    /// True when the order went to someone else.
    pub taken: bool,
    /// Expires, epoch ms.
    pub expires_at: i64,
    /// Offered, epoch ms.
    pub offered_at: i64,
    /// Distance from the volunteer's home in km, rounded to 0.1 km; `None`
    /// for remote items.
    pub distance_km: Option<f64>,
    /// Candidate rank when offered (1 = best).
    pub candidate_rank: i64,
    /// Rank-aware broadcast: the caller accepted while better-ranked
    /// candidates were still deciding, and waits for confirmation (the
    /// order is theirs by `hold_until` unless a better-ranked candidate
    /// accepts first; either way they are told).
    pub waiting_for_confirmation: bool,
    /// While waiting: the latest time of the decision, epoch ms.
    pub hold_until: Option<i64>,
    /// The order (summary before acceptance; address and phone only while
    /// this volunteer's assignment is live).
    pub order: OrderView,
}

/// Query of `GET /api/v1/offers`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OfferQuery {
    /// `open` (default): offers awaiting an answer; `all`: every offer.
    #[param(pattern = "^(open|all)$")]
    pub show: Option<String>,
    /// Page size, 1–200 (default 200), newest first.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// The next page: the cursor of the previous page's `Link` header.
    pub cursor: Option<String>,
}

/// Largest (and default) page of `GET /api/v1/offers`.
pub const MAX_PAGE: i64 = 200;

/// Shapes an offer for its volunteer (reads its order).
pub async fn offer_view(state: &AppState, actor: &Actor, offer: &Offer) -> ApiResult<OfferView> {
    let order = state
        .store
        .order(offer.order_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(offer_view_of(actor, offer, &order))
}

/// Shapes an offer for its volunteer from its order, already read.
fn offer_view_of(actor: &Actor, offer: &Offer, order: &OrderRow) -> OfferView {
    let access = order_access(actor, order, true).unwrap_or(OrderAccess::Limited);
    let taken =
        offer.state == "withdrawn" && order.assignee_user_id.is_some_and(|a| a != actor.user.id);
    OfferView {
        id: offer.id,
        state: offer.state.clone(),
        taken,
        expires_at: offer.expires_at,
        offered_at: offer.offered_at,
        distance_km: offer.distance_km.map(|d| (d * 10.0).round() / 10.0),
        candidate_rank: offer.candidate_rank,
        waiting_for_confirmation: offer.state == "offered" && offer.held_at.is_some(),
        hold_until: offer.hold_until.filter(|_| offer.state == "offered"),
        order: view(order, Some(access.min(OrderAccess::Limited))),
    }
}

/// The caller's offers, newest first, a page at a time: open ones by default.
///
/// Before accepting, a volunteer sees the item, the district, the distance
/// (km, rounded to 0.1 km), the window and the public note; never the
/// address or phone. Open offers past their expiry are left out. When more
/// offers exist than the page holds, `Link: <…>; rel="next"` (and
/// `X-Next-Cursor`) lead to the next page.
#[utoipa::path(get, path = "/api/v1/offers", tag = "offers", operation_id = "list_offers",
    params(OfferQuery),
    responses(
        (status = 200, body = Vec<OfferView>, headers(
            ("Link" = String, description = "`<URL>; rel=\"next\"` when more offers exist"),
            ("X-Next-Cursor" = String, description = "The next page's `cursor`, when more offers exist"))),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: the caller is not a volunteer", body = ErrorShape),
        (status = 422, description = "`invalid_filter` (field `show`), `invalid_limit` (`limit`, 1–200) or `invalid_cursor` (`cursor`)", body = ErrorShape),
        crate::api::openapi::QueryRejection))]
async fn list(
    State(state): State<AppState>,
    actor: Actor,
    OriginalUri(uri): OriginalUri,
    ApiQuery(q): ApiQuery<OfferQuery>,
) -> ApiResult<(HeaderMap, Json<Vec<OfferView>>)> {
    if !actor.has(Role::Volunteer) {
        return Err(ApiError::forbidden());
    }
    let states: &[&str] = match q.show.as_deref() {
        None | Some("open") => &["offered"],
        Some("all") => &["offered", "accepted", "declined", "expired", "withdrawn"],
        Some(other) => {
            return Err(ApiError::invalid(
                "show",
                "invalid_filter",
                format!("show must be open or all, not {other}"),
            ));
        }
    };
    let limit = paging::page_size(q.limit, MAX_PAGE, MAX_PAGE)?;
    let before = q.cursor.as_deref().map(paging::decode).transpose()?;
    let (views, next) = offers_of(&state, &actor, states, before, limit).await?;
    Ok((paging::headers(&uri, next.as_deref()), Json(views)))
}

/// A page of the actor's offers in `states` (newest first, `limit` older
/// than `before`), leaving out open offers that have expired, with the
/// next page's cursor: shared by the API and the pages.
///
/// # Errors
/// Database errors.
pub async fn offers_of(
    state: &AppState,
    actor: &Actor,
    states: &[&str],
    before: Option<i64>,
    limit: i64,
) -> ApiResult<(Vec<OfferView>, Option<String>)> {
    let now = state.clock.now().epoch_ms();
    let mut offers = state
        .store
        .offers_of_volunteer(actor.user.id, states, before, limit + 1)
        .await?;
    let next = paging::split(&mut offers, limit, |o| o.id);
    offers.retain(|o| o.state != "offered" || o.expires_at > now || o.held_at.is_some());
    // One read for the page's orders, not one per offer.
    let ids: Vec<i64> = offers.iter().map(|o| o.order_id).collect();
    let orders: HashMap<i64, OrderRow> = state
        .store
        .orders_by_ids(&ids)
        .await?
        .into_iter()
        .map(|o| (o.id, o))
        .collect();
    let mut out = Vec::with_capacity(offers.len());
    for o in &offers {
        let order = orders.get(&o.order_id).ok_or_else(ApiError::not_found)?;
        out.push(offer_view_of(actor, o, order));
    }
    Ok((out, next))
}

/// Answer to an accepted offer: the offer and the order with its address.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// The offer, now `accepted`.
    pub offer: OfferView,
    /// The order as the live assignee sees it.
    pub order: OrderView,
}

fn refused(r: homefront_store::offers::Refusal) -> ApiError {
    ApiError::conflict(r.code(), r.message())
}

/// Accept an offer: the first valid accept wins the order, exactly once.
///
/// The answer carries the order with its address and phone for the new
/// assignee; that read writes an `access_log` row. Late or repeated
/// answers are refused with 409 and recorded, as is an accept after the
/// order's window ended (the order becomes `unfulfilled` at once), one
/// that would overlap another live assignment of the caller, and one over
/// the caller's load cap (`max_concurrent` live assignments), all checked
/// in the compare-and-set's transaction.
#[utoipa::path(post, path = "/api/v1/offers/{id}/accept", tag = "offers", operation_id = "accept_offer",
    params(("id" = i64, Path, description = "Offer id")),
    responses(
        (status = 200, description = "Accepted: the order is the caller's", body = Accepted),
        (status = 202, description = "Held (broadcast, rank-aware): better-ranked candidates are still deciding; the offer shows `waiting_for_confirmation` and `hold_until`, and the caller is told the outcome", body = OfferView),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`csrf_failed`: cookie sign-in without a matching `X-CSRF-Token`", body = ErrorShape),
        (status = 404, description = "No such offer, or not the caller's", body = ErrorShape),
        (status = 409, description = "Refused and recorded: `offer_taken`, `offer_expired`, `offer_withdrawn`, `already_accepted` or `already_declined`; `window_passed`: the order's service window has ended (the order is now `unfulfilled`); `overlapping_assignment`: the caller holds a live assignment whose window overlaps this order's (unless one of them is a remote item that runs alongside); `load_cap_reached`: the caller already holds as many live assignments as their `max_concurrent` allows", body = ErrorShape)))]
async fn accept(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    Ok(match accept_offer(&state, &actor, parse_id(&id)?).await? {
        AcceptOutcome::Assigned(a) => Json(a).into_response(),
        AcceptOutcome::Held(o) => (axum::http::StatusCode::ACCEPTED, Json(o)).into_response(),
    })
}

/// What an accept did. Both variants are large views, returned once per
/// request; boxing would only add an allocation.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum AcceptOutcome {
    /// The order is the caller's.
    Assigned(Accepted),
    /// Held while better-ranked candidates decide (rank-aware broadcast).
    Held(OfferView),
}

/// The volunteer accepts offer `id` (first valid accept wins, exactly
/// once): shared by the API and the pages. Logs the read of the address.
///
/// # Errors
/// 404 for someone else's or no offer; 409 with the refusal's code.
pub async fn accept_offer(state: &AppState, actor: &Actor, id: i64) -> ApiResult<AcceptOutcome> {
    let now = state.clock.now().epoch_ms();
    let hold_ms = i64::try_from(state.config.broadcast_hold_seconds)
        .unwrap_or(i64::MAX / 2_000)
        .saturating_mul(1000);
    let response = state
        .store
        .accept_offer(id, actor.user.id, now, hold_ms)
        .await?;
    crate::metrics::offer_outcome(outcome_label(&response, "accepted"), 1);
    match response {
        None => Err(ApiError::not_found()),
        Some(Response::Refused(r)) => {
            if r == Refusal::WindowPassed {
                // The refusal gave the order up: boards and the requester see it now.
                crate::metrics::dispatch_tick(0, 0, 1);
                if let Some(o) = state.store.offer(id).await? {
                    crate::live::publish(state, o.order_id);
                }
            }
            Err(refused(r))
        }
        Some(Response::Held { order_id, .. }) => {
            // The dispatcher settles holds; wake it for the hold's end.
            state.dispatch_wake.notify_one();
            crate::live::publish(state, order_id);
            let offer = state
                .store
                .offer(id)
                .await?
                .ok_or_else(ApiError::not_found)?;
            Ok(AcceptOutcome::Held(offer_view(state, actor, &offer).await?))
        }
        Some(Response::Done { order_id }) => {
            crate::live::publish(state, order_id);
            let offer = state
                .store
                .offer(id)
                .await?
                .ok_or_else(ApiError::not_found)?;
            let order = state
                .store
                .order(order_id)
                .await?
                .ok_or_else(ApiError::not_found)?;
            let fields = crate::privacy::sensitive_fields(&order);
            state
                .store
                .log_access(
                    actor.user.id,
                    RecordKind::Order,
                    &[order_id],
                    &fields,
                    "offer_accepted",
                    now,
                )
                .await?;
            Ok(AcceptOutcome::Assigned(Accepted {
                offer: offer_view(state, actor, &offer).await?,
                order: view(&order, Some(OrderAccess::AssignedLive)),
            }))
        }
    }
}

/// Decline an offer; the dispatcher moves on to the next candidate at once.
#[utoipa::path(post, path = "/api/v1/offers/{id}/decline", tag = "offers", operation_id = "decline_offer",
    params(("id" = i64, Path, description = "Offer id")),
    responses(
        (status = 200, description = "Declined", body = OfferView),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`csrf_failed`: cookie sign-in without a matching `X-CSRF-Token`", body = ErrorShape),
        (status = 404, description = "No such offer, or not the caller's", body = ErrorShape),
        (status = 409, description = "Refused and recorded: `offer_taken`, `offer_expired`, `offer_withdrawn`, `already_accepted` or `already_declined`", body = ErrorShape)))]
async fn decline(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<OfferView>> {
    Ok(Json(decline_offer(&state, &actor, parse_id(&id)?).await?))
}

/// The volunteer declines offer `id` and the dispatcher wakes for the next
/// candidate: shared by the API and the pages.
///
/// # Errors
/// 404 for someone else's or no offer; 409 with the refusal's code.
pub async fn decline_offer(state: &AppState, actor: &Actor, id: i64) -> ApiResult<OfferView> {
    let now = state.clock.now().epoch_ms();
    let response = state.store.decline_offer(id, actor.user.id, now).await?;
    crate::metrics::offer_outcome(outcome_label(&response, "declined"), 1);
    match response {
        None => Err(ApiError::not_found()),
        Some(Response::Refused(r)) => Err(refused(r)),
        // A decline is never held; answer like a done one.
        Some(Response::Done { order_id } | Response::Held { order_id, .. }) => {
            // Wake the dispatcher: the next candidate should not wait for a tick.
            state.dispatch_wake.notify_one();
            crate::live::publish(state, order_id);
            let offer = state
                .store
                .offer(id)
                .await?
                .ok_or_else(ApiError::not_found)?;
            offer_view(state, actor, &offer).await
        }
    }
}

/// The metrics label of a response: `done` when it went through, else
/// `refused` (unknown offers count as refused too).
fn outcome_label(r: &Option<Response>, done: &'static str) -> &'static str {
    match r {
        Some(Response::Done { .. }) => done,
        Some(Response::Held { .. }) => "held",
        _ => "refused",
    }
}
