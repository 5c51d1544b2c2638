//! The coordinator's pairings page (结对): find a household by its
//! requester's phone, see its live pairings, pair a volunteer (by phone,
//! as primary or backup), end a pairing with a reason, or re-pair (another
//! volunteer takes the same role in one step); and the re-pairing
//! proposals left when a paired volunteer was deactivated. Every action
//! goes through the JSON API's handler (`api::pairings`), so its scope and
//! limits (`pairing_max`, one primary) are the API's.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use homefront_domain::PhoneNumber;
use homefront_store::pairings::Pairing;
use serde::Deserialize;

use super::i18n::Tr;
use super::{Layout, Localize, PageResult, Posted, Viewer, local_time, see_other};
use crate::AppState;
use crate::api::ApiJson;
use crate::api::pairings::{CreatePairing, EndPairing, RepairPairing};
use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/board/pairings", get(pairings))
        .route("/board/pairings/new", post(create))
        .route("/board/pairings/{id}/end", post(end))
        .route("/board/pairings/{id}/repair", post(repair))
        .route(
            "/board/pairings/proposals/{id}/accept",
            post(accept_proposal),
        )
        .route(
            "/board/pairings/proposals/{id}/dismiss",
            post(dismiss_proposal),
        )
}

/// Query of `/board/pairings`: the household, by its requester's phone
/// (typed) or its id (after an action), and what was just done.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PairingsQuery {
    phone: Option<String>,
    household: Option<i64>,
    done: Option<String>,
}

struct ProposalLine {
    id: i64,
    household: i64,
    role: String,
    former: String,
    proposed: Option<String>,
    created: String,
}

struct MemberLine {
    name: String,
    district: String,
}

struct PairingLine {
    id: i64,
    volunteer: String,
    role: String,
    since: String,
}

/// The household found, with its live pairings.
struct HouseholdView {
    id: i64,
    requester: String,
    members: Vec<MemberLine>,
    pairings: Vec<PairingLine>,
}

/// What the coordinator typed into a refused form, shown again.
#[derive(Default)]
struct Typed {
    /// The form that was refused: `new-0`, `end-ID` or `repair-ID`.
    form: String,
    volunteer_phone: String,
    reason: String,
    role: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pairings.html")]
struct PairingsPage {
    t: Tr,
    l: Layout,
    phone: String,
    household: Option<HouseholdView>,
    /// A household was asked for but none in the viewer's area matched.
    not_found: bool,
    done: Option<String>,
    error: Option<String>,
    typed: Typed,
    proposals: Vec<ProposalLine>,
}

impl PairingsPage {
    /// Whether the refused form was `kind` (`new`, `end`, `repair`) for
    /// pairing `id` (0 for `new`).
    fn typed_in(&self, kind: &str, id: impl std::fmt::Display) -> bool {
        self.typed.form == format!("{kind}-{id}")
    }
}

async fn name_of(state: &AppState, id: i64) -> String {
    state
        .store
        .user(id)
        .await
        .ok()
        .flatten()
        .map_or_else(|| format!("#{id}"), |u| u.display_name)
}

/// The household of the requester with `phone`, if it lives in `actor`'s
/// area; a household elsewhere answers like a missing one.
async fn household_by_phone(
    state: &AppState,
    actor: &Actor,
    phone: &str,
) -> ApiResult<Option<i64>> {
    let Ok(phone) = PhoneNumber::parse(phone) else {
        return Ok(None);
    };
    let Some(user) = state.store.user_by_phone(&phone).await? else {
        return Ok(None);
    };
    let Some(h) = state.store.household_by_requester(user.id).await? else {
        return Ok(None);
    };
    Ok(in_area(state, actor, h.id).await?.then_some(h.id))
}

async fn in_area(state: &AppState, actor: &Actor, household: i64) -> ApiResult<bool> {
    Ok(crate::api::pairings::household_divisions(state, household)
        .await?
        .iter()
        .any(|d| actor.manages(d)))
}

async fn household_view(
    state: &AppState,
    actor: &Actor,
    t: Tr,
    id: i64,
    tz: chrono_tz::Tz,
) -> ApiResult<Option<HouseholdView>> {
    let Some(h) = state.store.household(id).await? else {
        return Ok(None);
    };
    if !in_area(state, actor, id).await? {
        return Ok(None);
    }
    let mut members = Vec::new();
    for m in state.store.members(id).await? {
        let district = state
            .store
            .org_unit(m.division_id)
            .await?
            .map(|d| t.place(&d.name))
            .unwrap_or_default();
        members.push(MemberLine {
            name: m.name,
            district,
        });
    }
    let axum::Json(live) = crate::api::pairings::list(
        State(state.clone()),
        actor.clone(),
        crate::api::ApiQuery(crate::api::pairings::PairingQuery { household_id: id }),
    )
    .await?;
    let mut pairings = Vec::new();
    for p in live {
        pairings.push(PairingLine {
            id: p.id,
            volunteer: name_of(state, p.volunteer_user_id).await,
            role: p.role.to_string(),
            since: local_time(p.started_at, tz),
        });
    }
    Ok(Some(HouseholdView {
        id,
        requester: name_of(state, h.requester_user_id).await,
        members,
        pairings,
    }))
}

async fn proposals(
    state: &AppState,
    actor: &Actor,
    tz: chrono_tz::Tz,
) -> ApiResult<Vec<ProposalLine>> {
    let axum::Json(list) =
        crate::api::pairings::proposals(State(state.clone()), actor.clone()).await?;
    let mut out = Vec::new();
    for p in list {
        out.push(ProposalLine {
            id: p.id,
            household: p.household_id,
            role: p.role.to_string(),
            former: name_of(state, p.former_volunteer_user_id).await,
            proposed: match p.proposed_volunteer_user_id {
                Some(id) => Some(name_of(state, id).await),
                None => None,
            },
            created: local_time(p.created_at, tz),
        });
    }
    Ok(out)
}

/// Renders the page for `household` (or the phone lookup), with a refused
/// form's message and input.
#[allow(clippy::too_many_arguments)] // one page, its parts
async fn render(
    state: &AppState,
    actor: &Actor,
    l: Layout,
    phone: String,
    household: Option<i64>,
    done: Option<String>,
    error: Option<String>,
    typed: Typed,
) -> PageResult<PairingsPage> {
    let t = l.t;
    let tz = super::viewer_time_zone(state, actor).await;
    let asked = household.is_some() || !phone.trim().is_empty();
    let id = match household {
        Some(id) => Some(id),
        None if !phone.trim().is_empty() => {
            household_by_phone(state, actor, &phone).await.page(t)?
        }
        None => None,
    };
    let household = match id {
        Some(id) => household_view(state, actor, t, id, tz).await.page(t)?,
        None => None,
    };
    Ok(PairingsPage {
        t,
        l,
        phone,
        not_found: asked && household.is_none(),
        household,
        done,
        error,
        typed,
        proposals: proposals(state, actor, tz).await.page(t)?,
    })
}

async fn pairings(
    State(state): State<AppState>,
    v: Viewer,
    Query(q): Query<PairingsQuery>,
) -> PageResult<PairingsPage> {
    let t = v.t();
    super::coordinator_only(&v.actor, t)?;
    let done = q
        .done
        .filter(|d| matches!(d.as_str(), "paired" | "ended" | "repaired"));
    render(
        &state,
        &v.actor,
        v.l,
        q.phone.unwrap_or_default(),
        q.household,
        done,
        None,
        Typed::default(),
    )
    .await
}

/// The account id of the volunteer with `phone` (field `volunteer_phone`).
async fn volunteer_by_phone(state: &AppState, phone: &str) -> ApiResult<i64> {
    let phone = PhoneNumber::parse(phone)
        .map_err(|e| ApiError::invalid("volunteer_phone", e.code(), e.to_string()))?;
    let unknown = || {
        ApiError::invalid(
            "volunteer_phone",
            "unknown_volunteer",
            "no volunteer has this phone number",
        )
    };
    let user = state
        .store
        .user_by_phone(&phone)
        .await?
        .ok_or_else(unknown)?;
    if crate::api::dispatch::volunteer_teams(state, user.id)
        .await?
        .is_empty()
    {
        return Err(unknown());
    }
    Ok(user.id)
}

/// The API names the volunteer by id; the form by phone.
fn by_phone(mut err: ApiError) -> ApiError {
    if err.field.as_deref() == Some("volunteer_user_id") {
        err.field = Some("volunteer_phone".into());
    }
    err
}

/// After a form: back to the household, or the page again with the
/// refusal (its status, the message naming the field, the input kept).
async fn after(
    state: &AppState,
    p: Posted<PairForm>,
    household: i64,
    result: ApiResult<Pairing>,
    done: &str,
    form: String,
) -> PageResult<Response> {
    let t = p.t;
    match result {
        Ok(_) => Ok(see_other(&format!(
            "/board/pairings?household={household}&done={done}#household"
        ))),
        Err(err) => {
            let err = by_phone(err);
            let l = Layout::new(t, "/board/pairings", Some(&p.actor));
            let typed = Typed {
                form,
                volunteer_phone: p.form.volunteer_phone.clone(),
                reason: p.form.reason.clone(),
                role: p.form.role.clone(),
            };
            super::refused(t, err, |msg| {
                render(
                    state,
                    &p.actor,
                    l,
                    String::new(),
                    Some(household),
                    None,
                    Some(msg),
                    typed,
                )
            })
            .await
        }
    }
}

/// The fields of the pairing forms (each uses some).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PairForm {
    household_id: i64,
    volunteer_phone: String,
    role: String,
    reason: String,
}

async fn create(State(state): State<AppState>, p: Posted<PairForm>) -> PageResult<Response> {
    super::coordinator_only(&p.actor, p.t)?;
    let household = p.form.household_id;
    let result = async {
        let volunteer_user_id = volunteer_by_phone(&state, &p.form.volunteer_phone).await?;
        let (_, axum::Json(pairing)) = crate::api::pairings::create(
            State(state.clone()),
            p.actor.clone(),
            ApiJson(CreatePairing {
                household_id: household,
                volunteer_user_id,
                role: p.form.role.clone(),
            }),
        )
        .await?;
        Ok::<Pairing, ApiError>(pairing)
    }
    .await;
    after(&state, p, household, result, "paired", "new-0".into()).await
}

/// The household of pairing `id`, when the viewer manages it (else 404).
async fn pairing_household(state: &AppState, p: &Posted<PairForm>, id: &str) -> PageResult<i64> {
    super::coordinator_only(&p.actor, p.t)?;
    let pairing = match id.parse::<i64>() {
        Ok(id) => state.store.pairing(id).await.page(p.t)?,
        Err(_) => None,
    };
    if let Some(pairing) = pairing
        && in_area(state, &p.actor, pairing.household_id)
            .await
            .page(p.t)?
    {
        return Ok(pairing.household_id);
    }
    Err(ApiError::not_found()).page(p.t)
}

async fn end(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<PairForm>,
) -> PageResult<Response> {
    let household = pairing_household(&state, &p, &id).await?;
    let result = crate::api::pairings::end(
        State(state.clone()),
        p.actor.clone(),
        Path(id.clone()),
        ApiJson(EndPairing {
            reason: p.form.reason.clone(),
        }),
    )
    .await
    .map(|axum::Json(pairing)| pairing);
    after(&state, p, household, result, "ended", format!("end-{id}")).await
}

async fn repair(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<PairForm>,
) -> PageResult<Response> {
    let household = pairing_household(&state, &p, &id).await?;
    let result = async {
        let volunteer_user_id = volunteer_by_phone(&state, &p.form.volunteer_phone).await?;
        let axum::Json(pairing) = crate::api::pairings::repair(
            State(state.clone()),
            p.actor.clone(),
            Path(id.clone()),
            ApiJson(RepairPairing {
                reason: p.form.reason.clone(),
                volunteer_user_id,
            }),
        )
        .await?;
        Ok::<Pairing, ApiError>(pairing)
    }
    .await;
    after(
        &state,
        p,
        household,
        result,
        "repaired",
        format!("repair-{id}"),
    )
    .await
}

async fn accept_proposal(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<super::Empty>,
) -> PageResult {
    super::coordinator_only(&p.actor, p.t)?;
    let _answer = crate::api::pairings::accept(
        State(state),
        p.actor,
        Path(id),
        ApiJson(crate::api::pairings::AcceptProposal::default()),
    )
    .await
    .page(p.t)?;
    Ok(see_other("/board/pairings"))
}

async fn dismiss_proposal(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<super::Empty>,
) -> PageResult {
    super::coordinator_only(&p.actor, p.t)?;
    crate::api::pairings::dismiss(State(state), p.actor, Path(id))
        .await
        .page(p.t)?;
    Ok(see_other("/board/pairings"))
}
