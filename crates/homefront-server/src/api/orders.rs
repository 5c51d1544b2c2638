//! Orders: intake with idempotency keys, views shaped by [`crate::privacy`],
//! lifecycle actions, and the event log.
//!
//! - `POST /api/v1/orders` (header `Idempotency-Key`, required)
//! - `GET /api/v1/orders` (summaries; no sensitive fields for anyone)
//! - `GET /api/v1/orders/{id}`, `GET /api/v1/orders/{id}/events`
//! - `POST /api/v1/orders/{id}/cancel|assign|reassign|check-in|check-out|confirm`

use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{NaiveDateTime, TimeZone};
use homefront_domain::catalogue::{Lane, ServiceMode, Urgency, order_lane};
use homefront_domain::order_state::{OrderAction, OrderState, Reason};
use homefront_domain::org::OrgPath;
use homefront_domain::privacy::RecordKind;
use homefront_domain::{PhoneNumber, Role, Timestamp};
use homefront_store::StoreError;
use homefront_store::households::OrderDivision;
use homefront_store::orders::{
    Idempotent, NewOrder, OrderEvent, OrderFilter, OrderLabels, OrderRow,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::AppState;
use crate::api::ApiQuery;
use crate::api::coordinates;
use crate::api::households::{division_id, lacks_guardian_consent};
use crate::api::openapi::{BodyRejection, ErrorShape, QueryRejection};
use crate::api::paging;
use crate::api::{ApiJson, parse_id};
use crate::auth::{self, Actor};
use crate::error::{ApiError, ApiResult};
use crate::privacy::{OrderAccess, order_access, sensitive_fields};

/// Order routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orders", get(list).post(create))
        .route("/orders/{id}", get(show))
        .route("/orders/{id}/events", get(events))
        .route("/orders/{id}/cancel", post(cancel))
        .route("/orders/{id}/assign", post(assign))
        .route("/orders/{id}/reassign", post(reassign))
        .route("/orders/{id}/check-in", post(check_in))
        .route("/orders/{id}/check-out", post(check_out))
        .route("/orders/{id}/confirm", post(confirm))
}

/// Longest time window an order may ask for, in days.
pub const MAX_WINDOW_DAYS: i64 = 31;

/// Days ahead an order's window may start: volunteers are dispatched for
/// the coming weeks, not years (a mistyped year would wait unserved).
pub const MAX_AHEAD_DAYS: i64 = 90;

/// An item as shown inside an order.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ItemBrief {
    /// Item id.
    pub id: i64,
    /// Item code.
    pub code: String,
    /// Chinese name.
    pub name_zh: String,
    /// English name.
    pub name_en: String,
    /// `onsite` or `remote`.
    #[schema(value_type = String)]
    pub mode: ServiceMode,
}

/// A division as shown inside an order.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DivisionBrief {
    /// Org-unit id.
    pub id: i64,
    /// Name, e.g. `玄武区`.
    pub name: String,
}

/// An order as one actor may see it. Sensitive fields are absent (not
/// null) when the actor may not see them; `null` means purged or empty.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderView {
    /// Order id.
    pub id: i64,
    /// The catalogue item.
    pub item: ItemBrief,
    /// Lifecycle state.
    #[schema(value_type = String)]
    pub state: OrderState,
    /// Priority lane.
    #[schema(value_type = String)]
    pub lane: Lane,
    /// `normal` or `urgent`.
    #[schema(value_type = String)]
    pub urgency: Urgency,
    /// Where the service happens, to district level.
    pub division: DivisionBrief,
    /// Window start, epoch ms (UTC).
    pub window_start: i64,
    /// Window end, epoch ms (UTC).
    pub window_end: i64,
    /// Window start in the division's time zone (RFC 3339 with offset).
    pub window_start_local: String,
    /// Window end in the division's time zone.
    pub window_end_local: String,
    /// Non-identifying note.
    pub public_note: Option<String>,
    /// Created, epoch ms.
    pub created_at: i64,
    /// Last change, epoch ms.
    pub updated_at: i64,
    /// Whether the address, phone and notes were purged by retention.
    pub purged: bool,
    /// Household member served (requester's view and coordinators).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_id: Option<i64>,
    /// Household served (requester's view and coordinators; for pairings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub household_id: Option<i64>,
    /// 0: with the dispatcher; 1: county queue; 2: city; 3: province.
    pub escalation_level: i64,
    /// Assigned volunteer's account, for those who see the full order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignee_user_id: Option<i64>,
    /// Street address (live assignee and full access only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street: Option<Option<String>>,
    /// Contact phone (live assignee and full access only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_phone: Option<Option<String>>,
    /// Longitude (live assignee and full access only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub longitude: Option<Option<f64>>,
    /// Latitude (live assignee and full access only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latitude: Option<Option<f64>>,
    /// Private notes (live assignee and full access only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<Option<String>>,
}

fn local_time(ms: i64, tz: chrono_tz::Tz) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.with_timezone(&tz).to_rfc3339())
        .unwrap_or_default()
}

/// Shapes `order` for `access`: summaries (`None`) carry no sensitive field.
pub fn view(order: &OrderRow, access: Option<OrderAccess>) -> OrderView {
    let full = access == Some(OrderAccess::Full);
    let loc = access.is_some_and(OrderAccess::sees_location);
    let sensitive = |v: Option<String>| loc.then_some(v);
    OrderView {
        id: order.id,
        item: ItemBrief {
            id: order.item_id,
            code: order.item_code.clone(),
            name_zh: order.item_name_zh.clone(),
            name_en: order.item_name_en.clone(),
            mode: order.item_mode,
        },
        state: order.state,
        lane: order.lane,
        urgency: order.urgency,
        division: DivisionBrief {
            id: order.division_id,
            name: order.division_name.clone(),
        },
        window_start: order.window_start,
        window_end: order.window_end,
        window_start_local: local_time(order.window_start, order.time_zone),
        window_end_local: local_time(order.window_end, order.time_zone),
        public_note: order.public_note.clone(),
        created_at: order.created_at,
        updated_at: order.updated_at,
        purged: order.purged_at.is_some(),
        member_id: full.then_some(order.member_id),
        household_id: full.then_some(order.household_id),
        escalation_level: order.escalation_level,
        assignee_user_id: if full { order.assignee_user_id } else { None },
        street: sensitive(order.street.clone()),
        contact_phone: sensitive(order.contact_phone.clone()),
        longitude: loc.then_some(order.longitude),
        latitude: loc.then_some(order.latitude),
        notes: sensitive(order.notes.clone()),
    }
}

/// `POST /api/v1/orders` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrder {
    /// Catalogue item id.
    pub item_id: i64,
    /// Household member served.
    pub member_id: i64,
    /// Window start: RFC 3339 with offset (`2020-02-12T14:00:00+08:00`), or
    /// local time of the division (`2020-02-12T14:00`).
    pub window_start: String,
    /// Window end, same forms; after the start, within 31 days.
    pub window_end: String,
    /// Another location than the member's address.
    pub location: Option<LocationRequest>,
    /// `normal` (default) or `urgent`.
    pub urgency: Option<String>,
    /// Private notes for the assigned volunteer, up to 1000 characters.
    pub notes: Option<String>,
    /// A note volunteers see before accepting; must not identify the
    /// household (no names, addresses, phones), up to 200 characters.
    pub public_note: Option<String>,
    /// Contact phone; default the member's, else the requester's.
    pub contact_phone: Option<String>,
    /// For a liaison placing the order on a requester's behalf: the
    /// requester's phone.
    pub on_behalf_of_phone: Option<String>,
}

/// A service location other than the member's address.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationRequest {
    /// County (or city) division code.
    pub adcode: String,
    /// Street address.
    pub street: String,
    /// Optional longitude.
    pub longitude: Option<f64>,
    /// Optional latitude.
    pub latitude: Option<f64>,
}

/// Parses a window bound: RFC 3339, or naive local time in `tz`.
fn parse_instant(field: &str, text: &str, tz: chrono_tz::Tz) -> ApiResult<Timestamp> {
    let text = text.trim();
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(Timestamp::from_datetime(&dt));
    }
    for fmt in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, fmt) {
            // Ambiguous local times (DST) take the earlier instant.
            if let Some(dt) = tz.from_local_datetime(&naive).earliest() {
                return Ok(Timestamp::from_datetime(&dt));
            }
        }
    }
    Err(ApiError::invalid(
        field,
        "invalid_time",
        format!(
            "\"{text}\" is not a time; use 2020-02-12T14:00 (local) or 2020-02-12T14:00:00+08:00"
        ),
    ))
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<String> {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("");
    if key.is_empty() || key.len() > 200 {
        return Err(ApiError::invalid(
            "Idempotency-Key",
            "idempotency_key_required",
            "send an Idempotency-Key header (1-200 characters, e.g. a UUID) so a retried submit makes one order",
        ));
    }
    Ok(key.to_string())
}

fn text_field(field: &str, v: Option<String>, max: usize) -> ApiResult<Option<String>> {
    let v = v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    if let Some(s) = &v
        && s.chars().count() > max
    {
        return Err(ApiError::invalid(
            field,
            "too_long",
            format!("{field} may have at most {max} characters"),
        ));
    }
    Ok(v)
}

/// Place an order for a household member (or, as a liaison, for a
/// verified requester via `on_behalf_of_phone`).
///
/// The `Idempotency-Key` header makes a retried submit safe: the same key
/// with the same body answers the stored status and body of the first
/// submit (201 and the order in full) and places nothing new. Window
/// times are RFC 3339 or local time of the division; a window may span at
/// most 31 days.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", operation_id = "create_order",
    params(("Idempotency-Key" = String, Header, description = "1–200 characters, e.g. a UUID; one key per intended order")),
    request_body = CreateOrder,
    responses(
        (status = 201, description = "Placed (or replayed under the same key)", body = OrderView),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: the caller is not a requester (or, with `on_behalf_of_phone`, not a liaison); or `csrf_failed`", body = ErrorShape),
        (status = 422, description = "Invalid input naming the field: `idempotency_key_required` or `idempotency_key_reused` (`Idempotency-Key`), `invalid_body`, `unknown_item` or `item_retired` (`item_id`), `unknown_member` or `guardian_consent_required` (`member_id`), `invalid_time`, `window_order`, `window_past`, `window_too_long` or `window_too_far` (`window_start`/`window_end`), `invalid_urgency`, `invalid_phone` or `phone_extension` (`contact_phone`, `on_behalf_of_phone`), `too_long`, `unknown_requester` (`on_behalf_of_phone`), location errors (`location.adcode`, `location.street`, `longitude`/`latitude`)", body = ErrorShape),
        BodyRejection))]
async fn create(
    State(state): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Response> {
    let key = idempotency_key(&headers)?;
    let placed = place_order(&state, &actor, &key, body).await?;
    let status = StatusCode::from_u16(placed.status).unwrap_or(StatusCode::CREATED);
    Ok((
        status,
        [(header::CONTENT_TYPE, "application/json")],
        placed.body,
    )
        .into_response())
}

/// What [`place_order`] answers: the stored response of the first submit
/// under the idempotency key (a replay answers the same).
#[derive(Debug)]
pub struct Placed {
    /// HTTP status of the stored answer (201).
    pub status: u16,
    /// JSON body of the stored answer (an [`OrderView`]).
    pub body: String,
}

impl Placed {
    /// The order's id, read from the stored answer.
    pub fn order_id(&self) -> Option<i64> {
        serde_json::from_str::<Value>(&self.body)
            .ok()
            .and_then(|v| v["id"].as_i64())
    }
}

/// Validates and places an order for `actor` under idempotency `key`: the
/// one intake path of the JSON API and the web pages. `body` is a
/// [`CreateOrder`] as JSON; its canonical text identifies the request.
///
/// # Errors
/// 422 naming the field to fix, 403 for roles that may not order.
pub async fn place_order(
    state: &AppState,
    actor: &Actor,
    key: &str,
    body: Value,
) -> ApiResult<Placed> {
    // The canonical body (serde_json orders keys) identifies the request.
    let request_hash = auth::sha256_hex(&body.to_string());
    let req: CreateOrder = serde_json::from_value(body).map_err(|e| {
        let text = e.to_string();
        let mut err = ApiError::invalid(
            "body",
            "invalid_body",
            format!("the order is not valid: {text}"),
        );
        err.field = text.split('`').nth(1).map(str::to_string).or(err.field);
        err
    })?;
    let state = state.clone();
    let now = state.clock.now();

    // Whose household: the requester's own, or (liaison) a verified requester's.
    let requester_id = match &req.on_behalf_of_phone {
        None => {
            if !actor.has(Role::Requester) {
                return Err(ApiError::forbidden());
            }
            actor.user.id
        }
        Some(phone) => on_behalf_of(&state, actor, phone).await?,
    };
    // Household, member, item, the member's division and the requester's
    // phone in one read; nothing is written before the order's transaction.
    let ctx = state
        .store
        .order_context(requester_id, req.member_id, req.item_id)
        .await?;
    let item = match ctx.item {
        Some(i) if i.retired_at.is_none() => i,
        Some(_) => {
            return Err(ApiError::invalid(
                "item_id",
                "item_retired",
                "this service is no longer offered; pick another item",
            ));
        }
        None => {
            return Err(ApiError::invalid(
                "item_id",
                "unknown_item",
                "no catalogue item with this id",
            ));
        }
    };
    let (Some((household_id, deployed_to_centre)), Some(member)) = (ctx.household, ctx.member)
    else {
        return Err(ApiError::invalid(
            "member_id",
            "unknown_member",
            "no member with this id in the household; add the family member first",
        ));
    };
    if lacks_guardian_consent(&member) {
        return Err(ApiError::invalid(
            "member_id",
            "guardian_consent_required",
            "this child is under 14: record a guardian's consent on the family member before ordering",
        ));
    }
    if !homefront_domain::catalogue::suits_member(
        &item.qualification_codes(),
        member.relation,
        member.age_years,
        member.school_grade.as_deref(),
    ) {
        return Err(ApiError::invalid(
            "item_id",
            "item_not_for_member",
            "tutoring is for school pupils: choose a child under 18 or a member with a school grade, or another service",
        ));
    }
    let (division, street, location, unit) = match req.location {
        Some(loc) => {
            let street =
                text_field("location.street", Some(loc.street), 200)?.ok_or_else(|| {
                    ApiError::invalid(
                        "location.street",
                        "invalid_street",
                        "give the street address",
                    )
                })?;
            let division = division_id(&state, "location.adcode", &loc.adcode).await?;
            let unit = state
                .store
                .org_unit(division)
                .await?
                .map(|u| OrderDivision {
                    name: u.name,
                    path: u.path,
                    time_zone: u.time_zone,
                });
            (
                division,
                street,
                coordinates(loc.longitude, loc.latitude)?,
                unit,
            )
        }
        None => (
            member.division_id,
            member.street.clone(),
            member.longitude.zip(member.latitude),
            ctx.division,
        ),
    };
    let unit = unit.ok_or_else(|| {
        ApiError::invalid("location.adcode", "unknown_division", "unknown division")
    })?;
    let tz = unit.time_zone;
    let start = parse_instant("window_start", &req.window_start, tz)?;
    let end = parse_instant("window_end", &req.window_end, tz)?;
    if end <= start {
        return Err(ApiError::invalid(
            "window_end",
            "window_order",
            "window_end must be after window_start",
        ));
    }
    if end <= now {
        return Err(ApiError::invalid(
            "window_end",
            "window_past",
            "the window has already ended; pick a time in the future",
        ));
    }
    if end.epoch_ms() - start.epoch_ms() > MAX_WINDOW_DAYS * Timestamp::DAY_MS {
        return Err(ApiError::invalid(
            "window_end",
            "window_too_long",
            format!(
                "a window may span at most {MAX_WINDOW_DAYS} days; split longer needs into several orders"
            ),
        ));
    }
    if start.epoch_ms() - now.epoch_ms() > MAX_AHEAD_DAYS * Timestamp::DAY_MS {
        return Err(ApiError::invalid(
            "window_start",
            "window_too_far",
            format!(
                "a window may start at most {MAX_AHEAD_DAYS} days ahead; place the order nearer the time"
            ),
        ));
    }
    let urgency: Urgency = req.urgency.as_deref().unwrap_or("normal").parse().map_err(
        |e: homefront_domain::catalogue::UnknownValue| {
            ApiError::invalid("urgency", "invalid_urgency", e.to_string())
        },
    )?;
    let contact_phone = match req
        .contact_phone
        .as_deref()
        .filter(|p| !p.trim().is_empty())
    {
        Some(p) => Some(
            PhoneNumber::parse(p)
                .map_err(|e| ApiError::invalid("contact_phone", e.code(), e.to_string()))?
                .as_str()
                .to_string(),
        ),
        None => member.phone.clone().or(ctx.requester_phone),
    };
    let lane = order_lane(
        item.lane,
        item.priority_channel,
        deployed_to_centre,
        urgency,
    );
    let new = NewOrder {
        item_id: item.id,
        household_id,
        member_id: member.id,
        placed_by: actor.user.id,
        division_id: division,
        lane,
        urgency,
        window_start: start.epoch_ms(),
        window_end: end.epoch_ms(),
        street,
        contact_phone,
        location,
        notes: text_field("notes", req.notes, 1000)?,
        public_note: text_field("public_note", req.public_note, 200)?,
        labels: Some(OrderLabels {
            item_code: item.code,
            item_name_zh: item.name_zh,
            item_name_en: item.name_en,
            item_mode: item.mode,
            item_duration_minutes: item.default_duration_minutes,
            item_runs_alongside: item.runs_alongside,
            division_name: unit.name,
            division_path: unit.path,
            time_zone: unit.time_zone,
            requester_user_id: requester_id,
        }),
    };
    let outcome = state
        .store
        .create_order_idempotent(
            actor.user.id,
            key,
            &request_hash,
            &new,
            now.epoch_ms(),
            |order| {
                let body = serde_json::to_string(&view(order, Some(OrderAccess::Full)))
                    .unwrap_or_default();
                (201, body)
            },
        )
        .await?;
    let (status, body) = match outcome {
        Idempotent::Created {
            status,
            body,
            order,
        } => {
            state.dispatch_wake.notify_one();
            crate::live::publish(&state, order.id);
            (status, body)
        }
        Idempotent::Replayed { status, body } => (status, body),
        Idempotent::KeyReused => {
            return Err(ApiError::invalid(
                "Idempotency-Key",
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different order; use a new key for a new order",
            ));
        }
    };
    Ok(Placed { status, body })
}

/// The requester a liaison places an order for: the phone must belong to a
/// requester whose household the liaison's employer verified.
async fn on_behalf_of(state: &AppState, actor: &Actor, phone: &str) -> ApiResult<i64> {
    if !actor.has(Role::Liaison) {
        return Err(ApiError::forbidden());
    }
    let phone = PhoneNumber::parse(phone)
        .map_err(|e| ApiError::invalid("on_behalf_of_phone", e.code(), e.to_string()))?;
    let unknown = || {
        ApiError::invalid(
            "on_behalf_of_phone",
            "unknown_requester",
            "no requester verified by your employer has this phone number; verify them first",
        )
    };
    let user = state
        .store
        .user_by_phone(&phone)
        .await?
        .ok_or_else(unknown)?;
    let household = state
        .store
        .household_by_requester(user.id)
        .await?
        .ok_or_else(unknown)?;
    let employers: Vec<i64> = actor
        .grants
        .iter()
        .filter(|g| g.role == Role::Liaison)
        .filter_map(|g| g.org_unit_id)
        .collect();
    if household
        .employer_id
        .is_some_and(|e| employers.contains(&e))
    {
        Ok(user.id)
    } else {
        Err(unknown())
    }
}

/// Query of `GET /api/v1/orders` (and of the orders export).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderQuery {
    /// Comma-separated states, e.g. `submitted,dispatching`.
    pub state: Option<String>,
    /// Item code.
    pub item: Option<String>,
    /// Created at or after, epoch ms.
    pub from: Option<i64>,
    /// Created before, epoch ms.
    pub to: Option<i64>,
    /// Page size, 1–1000 (default 200), newest first; a larger value is a
    /// 422, never a shorter page. The export takes every row unless a
    /// limit is given (then the newest that many, with no maximum).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The next page: the cursor of the `Link: <…>; rel="next"` header (or
    /// `X-Next-Cursor`) of the previous page. Opaque; pass it back as is.
    pub cursor: Option<String>,
    /// Not supported (lists page with `cursor`): 422 `offset_unsupported`.
    pub offset: Option<String>,
    /// Only orders in this org unit's subtree (coordinators and admins;
    /// 404 for a unit outside the caller's area).
    pub org_unit: Option<i64>,
}

/// Largest page of `GET /api/v1/orders`.
pub const MAX_PAGE: i64 = 1000;

/// Default page of `GET /api/v1/orders`.
pub const DEFAULT_PAGE: i64 = 200;

/// The list filter for `actor`: coordinators and admins their subtree,
/// requesters their household, volunteers their assignments. Shared by the
/// list and exports so both show the same rows. The filter has no limit:
/// the list sets its page, the export takes every row.
///
/// # Errors
/// 422 for a bad state, cursor or `offset`; 403/404 as the list.
pub async fn scoped_filter(
    state: &AppState,
    actor: &Actor,
    q: &OrderQuery,
) -> ApiResult<OrderFilter> {
    paging::reject_offset(q.offset.as_deref())?;
    let before_id = q.cursor.as_deref().map(paging::decode).transpose()?;
    let mut states = Vec::new();
    if let Some(s) = &q.state {
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            states.push(
                OrderState::parse(part)
                    .map_err(|e| ApiError::invalid("state", "invalid_state", e.to_string()))?,
            );
        }
    }
    let mut filter = OrderFilter {
        states,
        item_code: q.item.clone(),
        created_from: q.from,
        created_to: q.to,
        before_id,
        limit: None,
        ..OrderFilter::default()
    };
    match actor.managed_scopes() {
        None => {}
        Some(scopes) if !scopes.is_empty() => {
            filter.scopes = Some(scopes.iter().map(|p| p.as_str().to_string()).collect());
        }
        Some(_) if actor.has(Role::Requester) => {
            let h = state
                .store
                .household_of(actor.user.id, state.clock.now().epoch_ms())
                .await?;
            filter.household_id = Some(h.id);
        }
        Some(_) if actor.has(Role::Volunteer) => filter.assignee_user_id = Some(actor.user.id),
        Some(_) => return Err(ApiError::forbidden()),
    }
    if let Some(unit) = q.org_unit {
        if actor.managed_scopes().is_some_and(|s| s.is_empty()) {
            return Err(ApiError::forbidden());
        }
        let unit = state
            .store
            .org_unit(unit)
            .await?
            .filter(|u| actor.manages(&u.org_path()))
            .ok_or_else(ApiError::not_found)?;
        filter.scopes = Some(vec![unit.path]);
    }
    Ok(filter)
}

/// Orders the caller may list, newest first, as summaries, a page at a time.
///
/// Coordinators and admins see their subtree, requesters their household,
/// volunteers their assignments. Summaries never carry the address, phone
/// or notes, for anyone. When more orders match than the page holds, the
/// answer has a `Link: <…>; rel="next"` header (RFC 8288) with the next
/// page's URL, and `X-Next-Cursor` with its cursor; the last page has
/// neither.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", operation_id = "list_orders",
    params(OrderQuery),
    responses(
        (status = 200, body = Vec<OrderView>, headers(
            ("Link" = String, description = "`<URL>; rel=\"next\"` when more orders match"),
            ("X-Next-Cursor" = String, description = "The next page's `cursor`, when more orders match"))),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: no role of the caller lists orders", body = ErrorShape),
        (status = 404, description = "`not_found`: `org_unit` names no unit in the caller's area (or the caller manages none)", body = ErrorShape),
        (status = 422, description = "`invalid_state` (field `state`), `invalid_limit` (`limit`, 1–1000), `invalid_cursor` (`cursor`) or `offset_unsupported` (`offset`)", body = ErrorShape),
        QueryRejection))]
async fn list(
    State(state): State<AppState>,
    actor: Actor,
    OriginalUri(uri): OriginalUri,
    ApiQuery(q): ApiQuery<OrderQuery>,
) -> ApiResult<(HeaderMap, Json<Vec<OrderView>>)> {
    let limit = paging::page_size(q.limit, DEFAULT_PAGE, MAX_PAGE)?;
    let mut filter = scoped_filter(&state, &actor, &q).await?;
    filter.limit = Some(limit + 1);
    let mut orders = state.store.orders(&filter).await?;
    let next = paging::split(&mut orders, limit, |o| o.id);
    // Lists are summaries for everyone: the address, phone and notes are
    // only in the detail view, where each read is logged.
    Ok((
        paging::headers(&uri, next.as_deref()),
        Json(orders.iter().map(|o| view(o, None)).collect()),
    ))
}

/// Loads an order the actor may see, with the access level, or 404.
pub async fn visible_order(
    state: &AppState,
    actor: &Actor,
    id: i64,
) -> ApiResult<(OrderRow, OrderAccess)> {
    let order = state
        .store
        .order(id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let access = match order_access(actor, &order, false) {
        Some(a) => a,
        // A volunteer who was offered it may see the summary.
        None if actor.has(Role::Volunteer)
            && state.store.was_offered(order.id, actor.user.id).await? =>
        {
            OrderAccess::Limited
        }
        None => return Err(ApiError::not_found()),
    };
    Ok((order, access))
}

/// The detail view, logging each sensitive read.
pub async fn detail(
    state: &AppState,
    actor: &Actor,
    order: &OrderRow,
    access: OrderAccess,
    purpose: &str,
) -> ApiResult<OrderView> {
    if access.sees_location() {
        let fields = sensitive_fields(order);
        state
            .store
            .log_access(
                actor.user.id,
                RecordKind::Order,
                &[order.id],
                &fields,
                purpose,
                state.clock.now().epoch_ms(),
            )
            .await?;
    }
    Ok(view(order, Some(access)))
}

/// One order as the caller may see it.
///
/// The address, phone and notes appear only for those with full access and
/// the live assignee; each such read writes an `access_log` row.
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", operation_id = "show_order",
    params(("id" = i64, Path, description = "Order id")),
    responses(
        (status = 200, body = OrderView),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 404, description = "No such order, or not visible to the caller", body = ErrorShape)))]
async fn show(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<OrderView>> {
    let (order, access) = visible_order(&state, &actor, parse_id(&id)?).await?;
    Ok(Json(
        detail(&state, &actor, &order, access, "order_detail").await?,
    ))
}

/// An order's event log, oldest first: every state change with its actor
/// and reason.
#[utoipa::path(get, path = "/api/v1/orders/{id}/events", tag = "orders", operation_id = "order_events",
    params(("id" = i64, Path, description = "Order id")),
    responses(
        (status = 200, body = Vec<OrderEvent>),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 404, description = "No such order, or not visible to the caller", body = ErrorShape)))]
async fn events(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<OrderEvent>>> {
    let (order, _) = visible_order(&state, &actor, parse_id(&id)?).await?;
    Ok(Json(state.store.order_events(order.id).await?))
}

/// Maps a failed transition to its answer: 409 with the domain's code.
pub fn transition_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Transition(t) => ApiError::conflict(t.code(), t.to_string()),
        StoreError::Stale => ApiError::conflict(
            "stale",
            "the order changed meanwhile; reload it and try again",
        ),
        other => other.into(),
    }
}

/// Body of `POST /api/v1/orders/{id}/cancel`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// Why, 1–500 characters.
    pub reason: String,
}

async fn act(
    state: &AppState,
    actor: &Actor,
    order: &OrderRow,
    action: OrderAction,
    assignee: Option<i64>,
) -> ApiResult<OrderView> {
    state
        .store
        .transition_order(
            order.id,
            &action,
            Some(actor.user.id),
            assignee,
            state.clock.now().epoch_ms(),
        )
        .await
        .map_err(transition_error)?;
    crate::live::publish(state, order.id);
    let order = state
        .store
        .order(order.id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let access = order_access(actor, &order, false).unwrap_or(OrderAccess::Limited);
    detail(state, actor, &order, access, "order_action").await
}

/// Cancels order `id` with `reason`: the requester, placing liaison, a
/// coordinator in scope or an admin. Shared by the API and the pages.
///
/// # Errors
/// 404 outside the actor's view, 403 without full access, 422 for a bad
/// reason, 409 when the state does not allow it.
pub async fn cancel_order(
    state: &AppState,
    actor: &Actor,
    id: i64,
    reason: &str,
) -> ApiResult<OrderView> {
    let (order, access) = visible_order(state, actor, id).await?;
    if access != OrderAccess::Full {
        return Err(ApiError::forbidden());
    }
    let reason =
        Reason::parse(reason).map_err(|e| ApiError::invalid("reason", e.code(), e.to_string()))?;
    act(state, actor, &order, OrderAction::Cancel { reason }, None).await
}

/// Cancel an order, with a reason.
///
/// For the requester, the liaison who placed it, a coordinator in scope
/// or an admin.
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "orders", operation_id = "cancel_order",
    params(("id" = i64, Path, description = "Order id")),
    request_body = CancelRequest,
    responses(
        (status = 200, description = "The order, now `cancelled`", body = OrderView),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: visible, but without full access; or `csrf_failed`", body = ErrorShape),
        (status = 404, description = "No such order, or not visible to the caller", body = ErrorShape),
        (status = 409, description = "`illegal_transition`: the order's state does not allow this; or `stale`: it changed meanwhile", body = ErrorShape),
        (status = 422, description = "`reason_required` or `reason_too_long` (field `reason`, 1–500 characters)", body = ErrorShape),
        BodyRejection))]
async fn cancel(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CancelRequest>,
) -> ApiResult<Json<OrderView>> {
    Ok(Json(
        cancel_order(&state, &actor, parse_id(&id)?, &req.reason).await?,
    ))
}

/// Body of `POST /api/v1/orders/{id}/assign` (manual dispatch).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignRequest {
    /// The volunteer's account id.
    pub volunteer_user_id: i64,
}

/// Manual dispatch: a coordinator in scope (or an admin) assigns order `id`
/// to a volunteer whose team serves the order's division (see
/// [`crate::api::dispatch::may_dispatch`]). Shared by the API and the pages.
///
/// # Errors
/// 404 outside scope, 403 for other roles, 422 for a volunteer whose team
/// does not serve the order, 409 when the state does not allow it.
pub async fn assign_order(
    state: &AppState,
    actor: &Actor,
    id: i64,
    volunteer_user_id: i64,
) -> ApiResult<OrderView> {
    let (order, access) = visible_order(state, actor, id).await?;
    if access != OrderAccess::Full
        || !actor.manages(&OrgPath::from_stored(order.division_path.clone()))
    {
        return Err(ApiError::forbidden());
    }
    // Whom the coordinator may assign: the candidate list's rule (the
    // volunteer's team serves the order's division, widened by escalation),
    // whether or not the volunteer is on duty now: one reached by phone can
    // be recorded.
    ensure_may_dispatch(state, actor, &order, volunteer_user_id).await?;
    let now = state.clock.now().epoch_ms();
    if order.window_end <= now {
        // Too late for anyone: give it up now, as an accept would.
        let reason = Reason::parse(homefront_store::orders::WINDOW_ENDED)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        if state.store.mark_unfulfilled(order.id, &reason, now).await? {
            crate::live::publish(state, order.id);
        }
        let r = homefront_store::offers::Refusal::WindowPassed;
        return Err(ApiError::conflict(r.code(), r.message()));
    }
    let mut tx = state.store.begin_write().await?;
    // The order's lock, then the volunteer's, as an accept takes them.
    homefront_store::offers::lock_order(&mut tx, order.id).await?;
    state
        .store
        .lock_volunteer(&mut tx, volunteer_user_id)
        .await?;
    if let Some(other) =
        homefront_store::bookings::clashing_assignment(&mut tx, order.id, volunteer_user_id).await?
    {
        return Err(ApiError::conflict(
            "overlapping_assignment",
            format!(
                "this volunteer is assigned order {other}, whose window overlaps this one's; \
                 pick another volunteer, or release that order first"
            ),
        ));
    }
    if order.state == OrderState::Submitted {
        homefront_store::orders::transition_in(
            &mut tx,
            order.id,
            &OrderAction::StartDispatch,
            Some(actor.user.id),
            None,
            now,
        )
        .await
        .map_err(transition_error)?;
    }
    homefront_store::orders::transition_in(
        &mut tx,
        order.id,
        &OrderAction::Assign,
        Some(actor.user.id),
        Some(volunteer_user_id),
        now,
    )
    .await
    .map_err(transition_error)?;
    // Assigned by hand: the order's open offers are void.
    homefront_store::Store::withdraw_offers(&mut tx, order.id, now).await?;
    tx.commit().await?;
    crate::live::publish(state, order.id);
    let order = state
        .store
        .order(order.id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(view(&order, Some(OrderAccess::Full)))
}

/// How a reassigned order reaches its next volunteer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reassign {
    /// Assigned straight away (agreed by phone), as [`assign_order`].
    Assign,
    /// Offered, as a manual offer: the volunteer accepts or declines on
    /// their phone; they must be in the dispatcher's ranking now.
    Offer,
}

/// A coordinator in scope (or an admin) takes a live assignment (`assigned`
/// or `in_service`) from its volunteer, with a reason, and gives the order
/// to `volunteer_user_id` (see [`Reassign`]). The withdrawal is the
/// lifecycle's `reassign` transition (its event row carries the reason);
/// a direct assignment follows in the same transaction, so the order is
/// never left without one; an offer follows once the order is back in
/// dispatch (if it cannot be made, the order stays in dispatch and the
/// dispatcher goes on). The earlier volunteer, having accepted the order
/// once, is not offered it again ([`crate::dispatcher::not_to_offer`]).
/// Shared by the API and the pages.
///
/// # Errors
/// 404 outside scope, 403 for other roles, 422 `reason_required` /
/// `reason_too_long` (field `reason`), `same_volunteer` or
/// `unknown_volunteer` / `not_a_candidate` (field `volunteer_user_id`),
/// 409 `illegal_transition` when the order has no live assignment,
/// `overlapping_assignment` when the new volunteer is busy then.
pub async fn reassign_order(
    state: &AppState,
    actor: &Actor,
    id: i64,
    reason: &str,
    volunteer_user_id: i64,
    how: Reassign,
) -> ApiResult<OrderView> {
    let (order, access) = visible_order(state, actor, id).await?;
    if access != OrderAccess::Full
        || !actor.manages(&OrgPath::from_stored(order.division_path.clone()))
    {
        return Err(ApiError::forbidden());
    }
    let reason =
        Reason::parse(reason).map_err(|e| ApiError::invalid("reason", e.code(), e.to_string()))?;
    if !matches!(order.state, OrderState::Assigned | OrderState::InService) {
        let e = homefront_domain::order_state::TransitionError {
            from: order.state,
            action: "reassign",
        };
        return Err(ApiError::conflict(e.code(), e.to_string()));
    }
    if order.assignee_user_id == Some(volunteer_user_id) {
        return Err(ApiError::invalid(
            "volunteer_user_id",
            "same_volunteer",
            "this volunteer already has the order: pick another one",
        ));
    }
    ensure_may_dispatch(state, actor, &order, volunteer_user_id).await?;
    if how == Reassign::Offer
        && !crate::api::dispatch::ranked(state, &order, 500)
            .await?
            .iter()
            .any(|c| c.volunteer_user_id == volunteer_user_id)
    {
        return Err(ApiError::invalid(
            "volunteer_user_id",
            "not_a_candidate",
            "this volunteer cannot be offered the order now (not active, off duty, \
             unqualified, out of range or at capacity): pick one from the ranking, \
             or assign directly after a call",
        ));
    }
    let now = state.clock.now().epoch_ms();
    let mut tx = state.store.begin_write().await?;
    homefront_store::offers::lock_order(&mut tx, order.id).await?;
    if how == Reassign::Assign {
        state
            .store
            .lock_volunteer(&mut tx, volunteer_user_id)
            .await?;
        if let Some(other) =
            homefront_store::bookings::clashing_assignment(&mut tx, order.id, volunteer_user_id)
                .await?
        {
            return Err(ApiError::conflict(
                "overlapping_assignment",
                format!(
                    "this volunteer is assigned order {other}, whose window overlaps this one's; \
                     pick another volunteer, or release that order first"
                ),
            ));
        }
    }
    homefront_store::orders::transition_in(
        &mut tx,
        order.id,
        &OrderAction::Reassign { reason },
        Some(actor.user.id),
        None,
        now,
    )
    .await
    .map_err(transition_error)?;
    if how == Reassign::Assign {
        homefront_store::orders::transition_in(
            &mut tx,
            order.id,
            &OrderAction::Assign,
            Some(actor.user.id),
            Some(volunteer_user_id),
            now,
        )
        .await
        .map_err(transition_error)?;
    }
    tx.commit().await?;
    crate::live::publish(state, order.id);
    if how == Reassign::Offer {
        crate::api::dispatch::manual_offer(
            State(state.clone()),
            actor.clone(),
            Path(order.id.to_string()),
            ApiJson(crate::api::dispatch::ManualOffer { volunteer_user_id }),
        )
        .await
        .map(|_| ())?;
    }
    let order = state
        .store
        .order(order.id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(view(&order, Some(OrderAccess::Full)))
}

/// Manual dispatch: assign an order to a volunteer directly.
///
/// For a coordinator of the order's division (or an admin). The volunteer
/// is one the order's candidate list may hold: on a team of the order's
/// county, its city or the province, or, once the order escalated to the
/// city or province queue, on any team there (on duty or not: a volunteer
/// reached by phone can be recorded). Open offers of the order are
/// withdrawn.
#[utoipa::path(post, path = "/api/v1/orders/{id}/assign", tag = "orders", operation_id = "assign_order",
    params(("id" = i64, Path, description = "Order id")),
    request_body = AssignRequest,
    responses(
        (status = 200, description = "The order, now `assigned`", body = OrderView),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: the caller does not manage the order's division; or `csrf_failed`", body = ErrorShape),
        (status = 404, description = "No such order, or not visible to the caller", body = ErrorShape),
        (status = 409, description = "`illegal_transition`: the order's state does not allow this; `stale`: it changed meanwhile; `window_passed`: its window has ended (the order is now `unfulfilled`); `overlapping_assignment`: the volunteer holds a live assignment whose window overlaps this order's", body = ErrorShape),
        (status = 422, description = "`unknown_volunteer` (field `volunteer_user_id`): no volunteer with this id whose team serves the order's division", body = ErrorShape),
        BodyRejection))]
async fn assign(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AssignRequest>,
) -> ApiResult<Json<OrderView>> {
    Ok(Json(
        assign_order(&state, &actor, parse_id(&id)?, req.volunteer_user_id).await?,
    ))
}

/// Body of `POST /api/v1/orders/{id}/reassign`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReassignRequest {
    /// Why the assignment is taken from its volunteer, 1–500 characters
    /// (kept in the order's log; the volunteer is told the order was
    /// reassigned).
    pub reason: String,
    /// The volunteer who gets the order next (account id).
    pub volunteer_user_id: i64,
    /// `assign` (default): assigned straight away, as after a phone call
    /// (any volunteer whose team serves the order); `offer`: offered, the
    /// volunteer accepts or declines on their phone (only one in the
    /// dispatcher's ranking now, see `GET /api/v1/orders/{id}/candidates`).
    #[serde(default)]
    pub how: Option<String>,
}

/// Reassign a live order: take it from its volunteer, with a reason, and
/// give it to another.
///
/// For a coordinator of the order's division (or an admin). The order is
/// `assigned` or `in_service`; its log gets a `reassign` event with the
/// reason, then (`how` = `assign`) an `assign` event in the same
/// transaction, so the order never waits without a volunteer; or (`how` =
/// `offer`) the order is back in dispatch with a manual offer to the
/// volunteer. The earlier volunteer is not offered the order again and no
/// longer sees its address.
#[utoipa::path(post, path = "/api/v1/orders/{id}/reassign", tag = "orders", operation_id = "reassign_order",
    params(("id" = i64, Path, description = "Order id")),
    request_body = ReassignRequest,
    responses(
        (status = 200, description = "The order: `assigned` to the new volunteer (`assign`), or `dispatching` with an open offer to them (`offer`)", body = OrderView),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: the caller does not manage the order's division; or `csrf_failed`", body = ErrorShape),
        (status = 404, description = "No such order, or not visible to the caller", body = ErrorShape),
        (status = 409, description = "`illegal_transition`: the order has no live assignment (not `assigned` or `in_service`); `stale`: it changed meanwhile; `overlapping_assignment`: the new volunteer holds a live assignment whose window overlaps this order's", body = ErrorShape),
        (status = 422, description = "`reason_required` or `reason_too_long` (field `reason`, 1–500 characters); `invalid_how` (field `how`: `assign` or `offer`); `same_volunteer`, `unknown_volunteer` (no volunteer with this id whose team serves the order's division) or `not_a_candidate` (`offer` to a volunteer not in the ranking now) (field `volunteer_user_id`)", body = ErrorShape),
        BodyRejection))]
async fn reassign(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ReassignRequest>,
) -> ApiResult<Json<OrderView>> {
    let how = match req.how.as_deref() {
        None | Some("assign") => Reassign::Assign,
        Some("offer") => Reassign::Offer,
        Some(_) => {
            return Err(ApiError::invalid(
                "how",
                "invalid_how",
                "how must be assign (straight away, after a call) or offer (the volunteer \
                 accepts on their phone)",
            ));
        }
    };
    Ok(Json(
        reassign_order(
            &state,
            &actor,
            parse_id(&id)?,
            &req.reason,
            req.volunteer_user_id,
            how,
        )
        .await?,
    ))
}

/// Loads an order for its assigned volunteer, or 404/403.
async fn as_assignee(state: &AppState, actor: &Actor, id: i64) -> ApiResult<OrderRow> {
    let (order, _) = visible_order(state, actor, id).await?;
    if order.assignee_user_id != Some(actor.user.id) {
        return Err(ApiError::forbidden());
    }
    Ok(order)
}

/// Re-reads an order after an action and shapes it for `actor`.
async fn after_action(state: &AppState, actor: &Actor, order_id: i64) -> ApiResult<OrderView> {
    crate::live::publish(state, order_id);
    let order = state
        .store
        .order(order_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let access = order_access(actor, &order, false).unwrap_or(OrderAccess::Limited);
    detail(state, actor, &order, access, "order_action").await
}

/// `POST /api/v1/orders/{id}/check-in` body: where the volunteer is, if
/// they share it (kept only while the assignment is live), and when the
/// phone recorded it if it was done without network.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CheckInRequest {
    /// Longitude, decimal degrees.
    pub longitude: Option<f64>,
    /// Latitude, decimal degrees.
    pub latitude: Option<f64>,
    /// When the phone recorded the check-in, epoch ms, for one done without
    /// network and sent later: at most 5 minutes ahead of the server's
    /// clock, at most `offline_max_hours` (default 24) old, and not before
    /// the assignment.
    pub recorded_at: Option<i64>,
}

/// `POST /api/v1/orders/{id}/check-out` body (optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CheckOutRequest {
    /// When the phone recorded the check-out, epoch ms, for one done
    /// without network and sent later: at most 5 minutes ahead of the
    /// server's clock, at most `offline_max_hours` (default 24) old, and
    /// not before the check-in.
    pub recorded_at: Option<i64>,
}

/// How far ahead of the server's clock a phone's clock may run before its
/// recorded time is refused (and within which it counts as now): 5 minutes.
pub const CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

/// Checks a time a phone recorded for a check-in or check-out made without
/// network, against `now_ms`, `offline_max_hours` and `not_before` (the
/// assignment for a check-in, the check-in for a check-out). Returns the
/// instant to record: `None` when none was given or it is not in the past
/// (ahead by at most [`CLOCK_SKEW_MS`]: the action is simply now).
///
/// # Errors
/// 422 on field `recorded_at`: `recorded_at_in_future` (more than 5
/// minutes ahead), `recorded_at_too_old` (older than `offline_max_hours`),
/// `recorded_at_too_early` (before `not_before`).
pub fn recorded_time(
    recorded: Option<i64>,
    now_ms: i64,
    max_hours: i64,
    not_before: Option<i64>,
    not_before_what: &str,
) -> ApiResult<Option<i64>> {
    let Some(at) = recorded else {
        return Ok(None);
    };
    let field = "recorded_at";
    if at > now_ms + CLOCK_SKEW_MS {
        return Err(ApiError::invalid(
            field,
            "recorded_at_in_future",
            "the recorded time is in the future: check the phone's clock",
        ));
    }
    if at < now_ms - max_hours * Timestamp::HOUR_MS {
        return Err(ApiError::invalid(
            field,
            "recorded_at_too_old",
            format!(
                "the recorded time is more than {max_hours} hours old; ask a coordinator to record the hours"
            ),
        ));
    }
    if not_before.is_some_and(|first| at < first) {
        return Err(ApiError::invalid(
            field,
            "recorded_at_too_early",
            format!("the recorded time is before {not_before_what}"),
        ));
    }
    Ok((at < now_ms).then_some(at))
}

/// When the assigned volunteer may check in on `order`, epoch ms: the
/// window's start less `check_in_lead_minutes`.
pub fn check_in_opens(state: &AppState, order: &OrderRow) -> i64 {
    order.window_start - state.config.check_in_lead_minutes * 60_000
}

/// The assigned volunteer checks in on order `id`: shared by the API and
/// the pages.
///
/// # Errors
/// 404 outside the actor's view, 403 for anyone but the assignee, 422 for
/// bad coordinates, 409 when the state does not allow it or
/// `check_in_too_early` (more than `check_in_lead_minutes` before the
/// window).
pub async fn check_in_order(
    state: &AppState,
    actor: &Actor,
    id: i64,
    req: CheckInRequest,
) -> ApiResult<OrderView> {
    let order = as_assignee(state, actor, id).await?;
    let location = coordinates(req.longitude, req.latitude)?;
    let now = state.clock.now().epoch_ms();
    // The same offline check-in sent again (its answer was lost): done.
    if req.recorded_at.is_some() && order.checked_in_at == req.recorded_at {
        return after_action(state, actor, order.id).await;
    }
    let assigned_at = state.store.assigned_at(order.id).await?;
    let recorded = recorded_time(
        req.recorded_at,
        now,
        state.config.offline_max_hours,
        assigned_at,
        "the assignment",
    )?;
    let opens = check_in_opens(state, &order);
    if recorded.unwrap_or(now) < opens {
        return Err(ApiError::conflict(
            "check_in_too_early",
            format!(
                "check-in opens {} minutes before the window, at {}",
                state.config.check_in_lead_minutes,
                crate::ui::local_time(opens, order.time_zone)
            ),
        ));
    }
    state
        .store
        .check_in_recorded(order.id, actor.user.id, location, now, recorded)
        .await
        .map_err(transition_error)?;
    after_action(state, actor, order.id).await
}

/// The assigned volunteer checks in: the service starts.
///
/// The volunteer's position (decimal degrees) is optional and kept only
/// while the assignment is live. Send `{}` to check in without one. A
/// check-in done on the phone without network is sent later with
/// `recorded_at`: the service starts then, and the order's log shows it
/// with `received_at`. Sending the same `recorded_at` again answers 200.
#[utoipa::path(post, path = "/api/v1/orders/{id}/check-in", tag = "orders", operation_id = "check_in_order",
    params(("id" = i64, Path, description = "Order id")),
    request_body = CheckInRequest,
    responses(
        (status = 200, description = "The order, now `in_service`", body = OrderView),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: the caller is not the order's assignee; or `csrf_failed`", body = ErrorShape),
        (status = 404, description = "No such order, or not visible to the caller", body = ErrorShape),
        (status = 409, description = "`illegal_transition`: the order's state does not allow this; `stale`: it changed meanwhile; `check_in_too_early`: more than `check_in_lead_minutes` (30) before the window", body = ErrorShape),
        (status = 422, description = "`invalid_coordinates` (field `longitude` or `latitude`); `recorded_at_in_future`, `recorded_at_too_old` or `recorded_at_too_early` (field `recorded_at`)", body = ErrorShape),
        BodyRejection))]
async fn check_in(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CheckInRequest>,
) -> ApiResult<Json<OrderView>> {
    Ok(Json(
        check_in_order(&state, &actor, parse_id(&id)?, req).await?,
    ))
}

/// The assigned volunteer checks out of order `id` (hours go to the
/// ledger): shared by the API and the pages.
///
/// # Errors
/// 404 outside the actor's view, 403 for anyone but the assignee, 409 when
/// the state does not allow it.
pub async fn check_out_order(
    state: &AppState,
    actor: &Actor,
    id: i64,
    req: CheckOutRequest,
) -> ApiResult<OrderView> {
    let order = as_assignee(state, actor, id).await?;
    let now = state.clock.now().epoch_ms();
    // The same offline check-out sent again (its answer was lost): done.
    if req.recorded_at.is_some() && order.checked_out_at == req.recorded_at {
        return after_action(state, actor, order.id).await;
    }
    let recorded = recorded_time(
        req.recorded_at,
        now,
        state.config.offline_max_hours,
        order.checked_in_at,
        "the check-in",
    )?;
    state
        .store
        .check_out_recorded(
            order.id,
            actor.user.id,
            state.config.session_grace_minutes,
            now,
            recorded,
        )
        .await
        .map_err(transition_error)?;
    after_action(state, actor, order.id).await
}

/// The assigned volunteer checks out: the service ends and its minutes go
/// to the hours ledger.
///
/// The body is optional. A check-out done on the phone without network is
/// sent later with `recorded_at`: the session ends then (hours count to
/// it), and the log shows `received_at`. Sending the same `recorded_at`
/// again answers 200.
#[utoipa::path(post, path = "/api/v1/orders/{id}/check-out", tag = "orders", operation_id = "check_out_order",
    params(("id" = i64, Path, description = "Order id")),
    request_body(content = Option<CheckOutRequest>, description = "Optional"),
    responses(
        (status = 200, description = "The order, now `completed` (awaiting confirmation)", body = OrderView),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: the caller is not the order's assignee; or `csrf_failed`", body = ErrorShape),
        (status = 404, description = "No such order, or not visible to the caller", body = ErrorShape),
        (status = 409, description = "`illegal_transition`: the order's state does not allow this; or `stale`: it changed meanwhile", body = ErrorShape),
        (status = 422, description = "`recorded_at_in_future`, `recorded_at_too_old` or `recorded_at_too_early` (field `recorded_at`)", body = ErrorShape),
        BodyRejection))]
async fn check_out(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    body: Option<ApiJson<CheckOutRequest>>,
) -> ApiResult<Json<OrderView>> {
    let req = body.map(|ApiJson(r)| r).unwrap_or_default();
    Ok(Json(
        check_out_order(&state, &actor, parse_id(&id)?, req).await?,
    ))
}

/// `POST /api/v1/orders/{id}/confirm` body: optional feedback.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ConfirmRequest {
    /// 1 (poor) to 5 (excellent); 1 or 2 opens a follow-up for coordinators.
    pub rating: Option<i64>,
    /// Comment, up to 1000 characters.
    pub comment: Option<String>,
    /// A complaint: opens a follow-up for coordinators.
    pub complaint: bool,
}

/// The requester (or placing liaison) confirms completion of order `id`,
/// with optional feedback: shared by the API and the pages.
///
/// # Errors
/// 404 outside the actor's view, 403 for anyone else, 422 for a rating
/// outside 1-5 or a long comment, 409 when the state does not allow it.
pub async fn confirm_order(
    state: &AppState,
    actor: &Actor,
    id: i64,
    req: ConfirmRequest,
) -> ApiResult<OrderView> {
    let (order, _) = visible_order(state, actor, id).await?;
    if order.requester_user_id != actor.user.id && order.placed_by != actor.user.id {
        return Err(ApiError::forbidden());
    }
    if let Some(r) = req.rating
        && !(1..=5).contains(&r)
    {
        return Err(ApiError::invalid(
            "rating",
            "out_of_range",
            "rating must be 1 to 5",
        ));
    }
    let comment = text_field("comment", req.comment, 1000)?;
    let feedback = (req.rating.is_some() || comment.is_some() || req.complaint).then_some((
        req.rating,
        comment,
        req.complaint,
    ));
    state
        .store
        .confirm_order(
            order.id,
            Some(actor.user.id),
            feedback,
            None,
            state.clock.now().epoch_ms(),
        )
        .await
        .map_err(transition_error)?;
    after_action(state, actor, order.id).await
}

/// The requester (or the liaison who placed it) confirms the service was
/// done, with optional feedback.
///
/// A rating of 1 or 2, or a complaint, opens a follow-up item for
/// coordinators. Send `{}` to confirm without feedback.
#[utoipa::path(post, path = "/api/v1/orders/{id}/confirm", tag = "orders", operation_id = "confirm_order",
    params(("id" = i64, Path, description = "Order id")),
    request_body = ConfirmRequest,
    responses(
        (status = 200, description = "The order, now `confirmed`", body = OrderView),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: the caller neither requested nor placed the order; or `csrf_failed`", body = ErrorShape),
        (status = 404, description = "No such order, or not visible to the caller", body = ErrorShape),
        (status = 409, description = "`illegal_transition`: the order's state does not allow this; or `stale`: it changed meanwhile", body = ErrorShape),
        (status = 422, description = "`out_of_range` (field `rating`, 1–5) or `too_long` (`comment`, 1000 characters)", body = ErrorShape),
        BodyRejection))]
async fn confirm(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ConfirmRequest>,
) -> ApiResult<Json<OrderView>> {
    Ok(Json(
        confirm_order(&state, &actor, parse_id(&id)?, req).await?,
    ))
}

/// Refuses, with 422 `unknown_volunteer` on `volunteer_user_id`, a
/// volunteer the coordinator may not assign `order` to: the candidate
/// list's rule ([`crate::api::dispatch::may_dispatch`]), whether or not the
/// volunteer is on duty now (one reached by phone can be recorded).
///
/// # Errors
/// Database errors; `unknown_volunteer`.
async fn ensure_may_dispatch(
    state: &AppState,
    actor: &Actor,
    order: &OrderRow,
    volunteer_user_id: i64,
) -> ApiResult<()> {
    let order_path = OrgPath::from_stored(order.division_path.clone());
    let in_scope = crate::api::dispatch::volunteer_teams(state, volunteer_user_id)
        .await?
        .iter()
        .any(|team| {
            crate::api::dispatch::may_dispatch(actor, &order_path, order.escalation_level, team)
        });
    if in_scope {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "volunteer_user_id",
            "unknown_volunteer",
            "no volunteer with this id whose team serves this order's district: \
             a team of its county, its city or the province (or, once the order \
             escalated, of the city or province whose queue it is in)",
        ))
    }
}
