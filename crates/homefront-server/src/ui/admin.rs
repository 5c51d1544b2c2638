//! Administration pages for admins and coordinators (each within what the
//! API lets them manage): accounts and roles, org units and teams, and the
//! service catalogue. Every change goes through the JSON API's handler;
//! a refused input re-renders the page with the error in the viewer's
//! language, naming the field.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

use super::i18n::Tr;
use super::{Layout, Localize, PageResult, Posted, Viewer, refused, see_other};
use crate::AppState;
use crate::api::ApiJson;
use crate::api::catalogue::{ItemQuery, ItemRequest};
use crate::api::org_units::{CreateOrgUnit, OrgUnitQuery};
use crate::api::users::{CreateUser, GrantRequest, UserQuery};
use crate::auth::Actor;
use crate::error::ApiError;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(|| async { see_other("/admin/users") }))
        .route("/admin/users", get(users).post(create_user))
        .route("/admin/users/{id}", get(user_page))
        .route("/admin/users/{id}/grants", post(add_grant))
        .route("/admin/users/{id}/password", post(set_password))
        .route(
            "/admin/users/{id}/grants/{grant}/remove",
            post(remove_grant),
        )
        .route("/admin/units", get(units).post(create_unit))
        .route(
            "/admin/units/{id}/dispatch",
            get(dispatch_page).post(set_dispatch),
        )
        .route("/admin/catalogue", get(catalogue).post(create_item))
        .route("/admin/catalogue/{id}/retire", post(retire_item))
}

/// Units the actor manages, parents first: (id, indented name, kind).
async fn managed_units(state: &AppState, actor: &Actor) -> Result<Vec<UnitLine>, ApiError> {
    let axum::Json(units) = crate::api::org_units::list(
        State(state.clone()),
        actor.clone(),
        crate::api::ApiQuery(OrgUnitQuery {
            parent_id: None,
            kind: None,
        }),
    )
    .await?;
    let mut units = units;
    super::tree_order(&mut units);
    Ok(units
        .into_iter()
        .filter(|u| actor.manages(&u.org_path()))
        .map(|u| UnitLine {
            id: u.id,
            depth: u.path.matches('/').count().saturating_sub(2),
            name: u.name,
            kind: u.kind.to_string(),
            division: u.kind.is_division(),
            adcode: u.adcode.unwrap_or_default(),
        })
        .collect())
}

#[derive(Clone)]
struct UnitLine {
    id: i64,
    depth: usize,
    name: String,
    kind: String,
    /// A province, city or county (not a team, employer or partner).
    division: bool,
    adcode: String,
}

impl UnitLine {
    fn label(&self) -> String {
        format!("{}{}", "\u{a0}\u{a0}".repeat(self.depth), self.name)
    }
}

// ---- accounts and roles ----

struct GrantLine {
    id: i64,
    role: String,
    unit: String,
}

struct UserLine {
    id: i64,
    name: String,
    phone: String,
    disabled: bool,
    roles: String,
}

/// Accounts listed per page; the search and filters narrow the list.
const USER_ROWS: usize = 50;

#[derive(Template, WebTemplate)]
#[template(path = "admin_users.html")]
struct UsersPage {
    t: Tr,
    l: Layout,
    users: Vec<UserLine>,
    f: UsersQuery,
    /// Accounts matching the filter.
    total: usize,
    first: usize,
    last: usize,
    prev: Option<String>,
    next: Option<String>,
    units: Vec<UnitLine>,
    roles: Vec<&'static str>,
    error: Option<String>,
    notice: Option<String>,
}

#[derive(Deserialize, Default)]
struct Notice {
    done: Option<String>,
}

/// The account list's filter: name or phone text, a role, a unit (the
/// accounts with a role there: a team's volunteers, a county's
/// coordinators), and the page.
#[derive(Clone, Deserialize, Default)]
struct UsersQuery {
    q: Option<String>,
    done: Option<String>,
    #[serde(default)]
    role: String,
    #[serde(default)]
    unit: String,
    page: Option<usize>,
}

impl UsersQuery {
    fn href(&self, page: usize) -> String {
        format!(
            "/admin/users?q={}&role={}&unit={}&page={page}",
            super::url_encode(self.q.as_deref().unwrap_or("").trim()),
            super::url_encode(self.role.trim()),
            super::url_encode(self.unit.trim()),
        )
    }
}

impl UsersPage {
    /// "1–50 of 5,000" in the page's language.
    fn showing(&self) -> String {
        self.t.f(
            "vet.showing",
            &[
                ("first", &self.first.to_string()),
                ("last", &self.last.to_string()),
                ("total", &self.total.to_string()),
            ],
        )
    }
}

fn grantable_roles(actor: &Actor) -> Vec<&'static str> {
    let mut roles = vec!["coordinator", "volunteer", "requester", "liaison"];
    if actor.is_admin() {
        roles.insert(0, "admin");
    }
    roles
}

async fn users_page(
    state: &AppState,
    actor: &Actor,
    l: Layout,
    f: UsersQuery,
    error: Option<String>,
    notice: Option<String>,
) -> PageResult<UsersPage> {
    let q = f.q.clone().unwrap_or_default();
    let t = l.t;
    super::coordinator_only(actor, t)?;
    let axum::Json(list) = crate::api::users::list(
        State(state.clone()),
        actor.clone(),
        crate::api::ApiQuery(UserQuery { role: None }),
    )
    .await
    .page(t)?;
    let units = managed_units(state, actor).await.page(t)?;
    let needle = q.trim().to_lowercase();
    let digits: String = needle.chars().filter(char::is_ascii_digit).collect();
    let mut matching: Vec<_> = list
        .into_iter()
        .filter(|u| {
            needle.is_empty()
                || u.display_name.to_lowercase().contains(&needle)
                || (digits.len() >= 3 && u.phone.contains(&digits))
        })
        .collect();
    let role: Option<homefront_domain::Role> = f.role.trim().parse().ok();
    let unit: Option<i64> = f.unit.trim().parse().ok();
    if role.is_some() || unit.is_some() {
        // One query for the grants of every account still in the list.
        let ids: Vec<i64> = matching.iter().map(|u| u.id).collect();
        let keep: std::collections::HashSet<i64> = state
            .store
            .grants_of(&ids)
            .await
            .page(t)?
            .into_iter()
            .filter(|g| role.is_none_or(|r| g.role == r))
            .filter(|g| unit.is_none() || g.org_unit_id == unit)
            .map(|g| g.user_id)
            .collect();
        matching.retain(|u| keep.contains(&u.id));
    }
    let total = matching.len();
    let page = f.page.unwrap_or(1).max(1);
    let skip = (page - 1) * USER_ROWS;
    let shown: Vec<_> = matching.into_iter().skip(skip).take(USER_ROWS).collect();
    let (first, last) = (skip + 1, skip + shown.len());
    // One query for every row's roles.
    let ids: Vec<i64> = shown.iter().map(|u| u.id).collect();
    let mut roles: std::collections::HashMap<i64, Vec<&'static str>> = Default::default();
    for g in state.store.grants_of(&ids).await.page(t)? {
        roles
            .entry(g.user_id)
            .or_default()
            .push(t.k("role", g.role.as_str()));
    }
    let users = shown
        .into_iter()
        .map(|u| UserLine {
            roles: roles.get(&u.id).map(|r| r.join("、")).unwrap_or_default(),
            id: u.id,
            name: u.display_name,
            phone: super::phone_text(&u.phone),
            disabled: u.disabled,
        })
        .collect();
    Ok(UsersPage {
        t,
        l,
        users,
        total,
        first,
        last,
        prev: (page > 1).then(|| f.href(page - 1)),
        next: (last < total).then(|| f.href(page + 1)),
        f,
        units,
        roles: grantable_roles(actor),
        error,
        notice,
    })
}

async fn users(
    State(state): State<AppState>,
    v: Viewer,
    Query(q): Query<UsersQuery>,
) -> PageResult<UsersPage> {
    let notice = q.done.as_ref().map(|_| v.t().t("admin.saved").to_string());
    users_page(&state, &v.actor, v.l, q, None, notice).await
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_user.html")]
struct UserPage {
    t: Tr,
    l: Layout,
    id: i64,
    name: String,
    phone: String,
    grants: Vec<GrantLine>,
    units: Vec<UnitLine>,
    roles: Vec<&'static str>,
    error: Option<String>,
    notice: Option<String>,
}

async fn one_user_page(
    state: &AppState,
    actor: &Actor,
    id: &str,
    error: Option<String>,
    notice: Option<String>,
    t: Tr,
) -> PageResult<UserPage> {
    super::coordinator_only(actor, t)?;
    let axum::Json(detail) =
        crate::api::users::show(State(state.clone()), actor.clone(), Path(id.to_string()))
            .await
            .page(t)?;
    let units = managed_units(state, actor).await.page(t)?;
    let unit_name = |id: Option<i64>| -> String {
        id.and_then(|id| units.iter().find(|x| x.id == id))
            .map(|x| x.name.clone())
            .unwrap_or_default()
    };
    let grants = detail
        .grants
        .iter()
        .map(|g| GrantLine {
            id: g.id,
            unit: unit_name(g.org_unit_id),
            role: g.role.to_string(),
        })
        .collect();
    Ok(UserPage {
        t,
        l: Layout::new(t, &format!("/admin/users/{}", detail.user.id), Some(actor)),
        id: detail.user.id,
        name: detail.user.display_name.clone(),
        phone: super::phone_text(&detail.user.phone),
        grants,
        roles: grantable_roles(actor),
        units,
        error,
        notice,
    })
}

async fn user_page(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Query(n): Query<Notice>,
) -> PageResult<UserPage> {
    let t = v.t();
    let notice = n.done.map(|_| t.t("admin.saved").to_string());
    one_user_page(&state, &v.actor, &id, None, notice, t).await
}

/// Gives a volunteer account its volunteer profile on `team` (the API's
/// registration for an existing account), so it can use the volunteer
/// pages and be vetted.
async fn volunteer_profile(
    state: &AppState,
    actor: &Actor,
    user_id: i64,
    team: Option<i64>,
) -> Result<(), ApiError> {
    let Some(team_id) = team else {
        return Err(ApiError::invalid(
            "org_unit_id",
            "role_needs_unit",
            "a volunteer needs a team",
        ));
    };
    if state.store.volunteer(user_id).await?.is_some() {
        return Ok(());
    }
    crate::api::volunteers::register(
        State(state.clone()),
        actor.clone(),
        ApiJson(crate::api::volunteers::RegisterVolunteer {
            user_id: Some(user_id),
            phone: None,
            display_name: None,
            password: None,
            team_id,
            home_adcode: None,
            home_location: None,
            service_radius_km: None,
            declared_qualifications: Vec::new(),
            vehicle_seats: None,
            languages: Vec::new(),
            max_concurrent: None,
            gender: None,
            emergency_contact: None,
        }),
    )
    .await
    .map(|_| ())
}

#[derive(Deserialize)]
struct UserForm {
    phone: String,
    display_name: String,
    password: String,
    role: String,
    org_unit: String,
}

fn unit_field(raw: &str) -> Option<i64> {
    raw.trim().parse().ok()
}

async fn create_user(State(state): State<AppState>, p: Posted<UserForm>) -> PageResult<Response> {
    let t = p.t;
    super::coordinator_only(&p.actor, t)?;
    let f = p.form;
    let unit = unit_field(&f.org_unit);
    let volunteer = f.role == "volunteer";
    let result = crate::api::users::create(
        State(state.clone()),
        p.actor.clone(),
        ApiJson(CreateUser {
            phone: f.phone,
            display_name: f.display_name,
            password: f.password,
            locale: Some(t.lang().to_string()),
            grants: vec![GrantRequest {
                role: f.role,
                org_unit_id: unit,
            }],
        }),
    )
    .await;
    let result = match result {
        Ok((_, axum::Json(detail))) if volunteer => {
            volunteer_profile(&state, &p.actor, detail.user.id, unit).await
        }
        Ok(_) => Ok(()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(see_other("/admin/users?done=1")),
        Err(err) => {
            let l = Layout::new(t, "/admin/users", Some(&p.actor));
            refused(t, err, |m| {
                users_page(&state, &p.actor, l, UsersQuery::default(), Some(m), None)
            })
            .await
        }
    }
}

#[derive(Deserialize)]
struct GrantForm {
    role: String,
    org_unit: String,
}

async fn add_grant(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<GrantForm>,
) -> PageResult<Response> {
    let t = p.t;
    super::coordinator_only(&p.actor, t)?;
    let unit = unit_field(&p.form.org_unit);
    let volunteer = p.form.role == "volunteer";
    let result = crate::api::users::add_grant(
        State(state.clone()),
        p.actor.clone(),
        Path(id.clone()),
        ApiJson(GrantRequest {
            role: p.form.role,
            org_unit_id: unit,
        }),
    )
    .await;
    let result = match result {
        Ok((_, axum::Json(grant))) if volunteer => {
            volunteer_profile(&state, &p.actor, grant.user_id, unit).await
        }
        Ok(_) => Ok(()),
        Err(e) => Err(e),
    };
    back_to_user(&state, &p.actor, &id, t, result).await
}

/// 303 to the account's page after a change, or the page again with the
/// refusal.
async fn back_to_user(
    state: &AppState,
    actor: &Actor,
    id: &str,
    t: Tr,
    result: Result<(), ApiError>,
) -> PageResult<Response> {
    match result {
        Ok(()) => Ok(see_other(&format!(
            "/admin/users/{}?done=1",
            super::url_encode(id)
        ))),
        Err(err) => {
            refused(t, err, |m| {
                one_user_page(state, actor, id, Some(m), None, t)
            })
            .await
        }
    }
}

async fn remove_grant(
    State(state): State<AppState>,
    Path((id, grant)): Path<(String, String)>,
    p: Posted<super::Empty>,
) -> PageResult<Response> {
    let t = p.t;
    super::coordinator_only(&p.actor, t)?;
    let result = crate::api::users::remove_grant(
        State(state.clone()),
        p.actor.clone(),
        Path((id.clone(), grant)),
    )
    .await
    .map(|_| ());
    back_to_user(&state, &p.actor, &id, t, result).await
}

#[derive(Deserialize)]
struct PasswordForm {
    password: String,
}

/// A password reset by a coordinator or admin (e.g. for an imported
/// volunteer, who has none yet); it ends the account's sessions.
async fn set_password(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<PasswordForm>,
) -> PageResult<Response> {
    let t = p.t;
    super::coordinator_only(&p.actor, t)?;
    let result = crate::api::users::set_password(
        State(state.clone()),
        p.actor.clone(),
        Path(id.clone()),
        ApiJson(crate::api::users::SetPassword {
            password: p.form.password,
        }),
    )
    .await
    .map(|_| ());
    back_to_user(&state, &p.actor, &id, t, result).await
}

// ---- org units and teams ----

#[derive(Template, WebTemplate)]
#[template(path = "admin_units.html")]
struct UnitsPage {
    t: Tr,
    l: Layout,
    units: Vec<UnitLine>,
    error: Option<String>,
    notice: Option<String>,
}

async fn units_page(
    state: &AppState,
    actor: &Actor,
    l: Layout,
    error: Option<String>,
    notice: Option<String>,
) -> PageResult<UnitsPage> {
    let t = l.t;
    super::coordinator_only(actor, t)?;
    Ok(UnitsPage {
        t,
        units: managed_units(state, actor).await.page(t)?,
        l,
        error,
        notice,
    })
}

async fn units(
    State(state): State<AppState>,
    v: Viewer,
    Query(n): Query<Notice>,
) -> PageResult<UnitsPage> {
    let notice = n.done.map(|_| v.t().t("admin.saved").to_string());
    units_page(&state, &v.actor, v.l, None, notice).await
}

#[derive(Deserialize)]
struct UnitForm {
    kind: String,
    name: String,
    parent: String,
}

async fn create_unit(State(state): State<AppState>, p: Posted<UnitForm>) -> PageResult<Response> {
    let t = p.t;
    super::coordinator_only(&p.actor, t)?;
    let parent_id = crate::api::parse_id(&p.form.parent).page(t)?;
    let result = crate::api::org_units::create(
        State(state.clone()),
        p.actor.clone(),
        ApiJson(CreateOrgUnit {
            kind: p.form.kind,
            name: p.form.name,
            parent_id,
            longitude: None,
            latitude: None,
        }),
    )
    .await;
    match result {
        Ok(_) => Ok(see_other("/admin/units?done=1")),
        Err(err) => {
            let l = Layout::new(t, "/admin/units", Some(&p.actor));
            refused(t, err, |m| units_page(&state, &p.actor, l, Some(m), None)).await
        }
    }
}

// ---- catalogue ----

struct ItemLine {
    id: i64,
    code: String,
    name: String,
    mode: String,
    lane: String,
    minutes: i64,
    qualifications: String,
    retired: bool,
    /// Whether the viewer may retire or restore it (admins: all; a
    /// coordinator: the items of units in their area).
    manageable: bool,
}

/// Qualification codes (`["first_aid","medical_licence"]` or a comma
/// list) in words in the page's language: `First aid, Medical licence`.
pub(crate) fn qualification_words(t: Tr, codes: &str) -> String {
    codes
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|c| !c.is_empty())
        .map(|c| t.get(&format!("credential.{c}")).unwrap_or(c))
        .collect::<Vec<_>>()
        .join(if t.is_en() { ", " } else { "、" })
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_catalogue.html")]
struct CataloguePage {
    t: Tr,
    l: Layout,
    items: Vec<ItemLine>,
    units: Vec<UnitLine>,
    admin: bool,
    error: Option<String>,
    notice: Option<String>,
}

async fn catalogue_page(
    state: &AppState,
    actor: &Actor,
    l: Layout,
    error: Option<String>,
    notice: Option<String>,
) -> PageResult<CataloguePage> {
    let t = l.t;
    super::coordinator_only(actor, t)?;
    let axum::Json(items) = crate::api::catalogue::list(
        State(state.clone()),
        actor.clone(),
        crate::api::ApiQuery(ItemQuery {
            include_retired: true,
        }),
    )
    .await
    .page(t)?;
    let all_units = managed_units(state, actor).await.page(t)?;
    let manageable = |unit: Option<i64>| {
        actor.is_admin() || unit.is_some_and(|id| all_units.iter().any(|u| u.id == id))
    };
    let units = all_units.iter().filter(|u| u.division).cloned().collect();
    Ok(CataloguePage {
        t,
        units,
        admin: actor.is_admin(),
        items: items
            .into_iter()
            .map(|i| ItemLine {
                id: i.id,
                name: t.pick(&i.name_zh, &i.name_en).to_string(),
                code: i.code,
                mode: i.mode.to_string(),
                lane: i.lane.to_string(),
                minutes: i.default_duration_minutes,
                qualifications: qualification_words(t, &i.qualifications),
                retired: i.retired_at.is_some(),
                manageable: manageable(i.org_unit_id),
            })
            .collect(),
        l,
        error,
        notice,
    })
}

async fn catalogue(
    State(state): State<AppState>,
    v: Viewer,
    Query(n): Query<Notice>,
) -> PageResult<CataloguePage> {
    let notice = n.done.map(|_| v.t().t("admin.saved").to_string());
    catalogue_page(&state, &v.actor, v.l, None, notice).await
}

#[derive(Deserialize)]
struct ItemForm {
    code: String,
    name_zh: String,
    name_en: String,
    mode: String,
    lane: String,
    default_duration_minutes: String,
    offer_timeout_seconds: String,
    #[serde(default)]
    qualifications: String,
    /// Owning division; empty = deployment-wide (admins only).
    #[serde(default)]
    org_unit: String,
    /// `1` when ticked: a remote item that may run alongside other work.
    #[serde(default)]
    runs_alongside: String,
}

/// A whole number from a form field, or a 422 naming it.
fn number(field: &str, raw: &str) -> Result<i64, ApiError> {
    raw.trim().parse().map_err(|_| {
        ApiError::invalid(
            field,
            "not_a_number",
            format!("{field} must be a whole number"),
        )
    })
}

async fn create_item(State(state): State<AppState>, p: Posted<ItemForm>) -> PageResult<Response> {
    let t = p.t;
    super::coordinator_only(&p.actor, t)?;
    let f = p.form;
    let l = Layout::new(t, "/admin/catalogue", Some(&p.actor));
    let parsed = number("default_duration_minutes", &f.default_duration_minutes)
        .and_then(|d| number("offer_timeout_seconds", &f.offer_timeout_seconds).map(|o| (d, o)));
    let (duration, timeout) = match parsed {
        Ok(v) => v,
        Err(err) => {
            return refused(t, err, |m| {
                catalogue_page(&state, &p.actor, l, Some(m), None)
            })
            .await;
        }
    };
    let result = crate::api::catalogue::create(
        State(state.clone()),
        p.actor.clone(),
        ApiJson(ItemRequest {
            code: Some(f.code.trim().to_string()),
            org_unit_id: unit_field(&f.org_unit),
            name_zh: f.name_zh,
            name_en: f.name_en,
            mode: f.mode,
            qualifications: f
                .qualifications
                .split([',', '，', ' '])
                .map(str::trim)
                .filter(|q| !q.is_empty())
                .map(str::to_string)
                .collect(),
            default_duration_minutes: duration,
            offer_timeout_seconds: timeout,
            lane: f.lane,
            priority_channel: false,
            follow_up_days: None,
            runs_alongside: f.runs_alongside == "1",
            retired: None,
        }),
    )
    .await;
    match result {
        Ok(_) => Ok(see_other("/admin/catalogue?done=1")),
        Err(err) => {
            refused(t, err, |m| {
                catalogue_page(&state, &p.actor, l, Some(m), None)
            })
            .await
        }
    }
}

#[derive(Deserialize)]
struct RetireForm {
    retired: String,
}

async fn retire_item(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<RetireForm>,
) -> PageResult<Response> {
    let t = p.t;
    super::coordinator_only(&p.actor, t)?;
    let item_id = crate::api::parse_id(&id).page(t)?;
    let item = state
        .store
        .service_item(item_id)
        .await
        .page(t)?
        .ok_or_else(ApiError::not_found)
        .page(t)?;
    let quals = item
        .qualifications
        .split(',')
        .filter(|q| !q.is_empty())
        .map(str::to_string)
        .collect();
    let result = crate::api::catalogue::update(
        State(state.clone()),
        p.actor.clone(),
        Path(id),
        ApiJson(ItemRequest {
            code: None,
            org_unit_id: None,
            name_zh: item.name_zh,
            name_en: item.name_en,
            mode: item.mode.to_string(),
            qualifications: quals,
            default_duration_minutes: item.default_duration_minutes,
            offer_timeout_seconds: item.offer_timeout_seconds,
            lane: item.lane.to_string(),
            priority_channel: item.priority_channel,
            follow_up_days: item.follow_up_days,
            runs_alongside: item.runs_alongside,
            retired: Some(p.form.retired == "1"),
        }),
    )
    .await;
    match result {
        Ok(_) => Ok(see_other("/admin/catalogue?done=1")),
        Err(err) => {
            let l = Layout::new(t, "/admin/catalogue", Some(&p.actor));
            refused(t, err, |m| {
                catalogue_page(&state, &p.actor, l, Some(m), None)
            })
            .await
        }
    }
}

/// The dispatch modes, in the order the page lists them.
const MODES: [&str; 5] = ["auto", "sequential", "broadcast", "batch", "manual"];

#[derive(Template, WebTemplate)]
#[template(path = "admin_dispatch.html")]
struct DispatchPage {
    t: Tr,
    l: Layout,
    unit: i64,
    unit_name: String,
    modes: &'static [&'static str],
    mode: String,
    broadcast_k: i64,
    cooldown: i64,
    error: Option<String>,
    notice: Option<String>,
}

async fn dispatch_view(
    state: &AppState,
    actor: &Actor,
    t: Tr,
    id: &str,
) -> PageResult<DispatchPage> {
    super::coordinator_only(actor, t)?;
    let id = crate::api::parse_id(id).page(t)?;
    let (unit, s) = crate::api::dispatch::dispatch_setting(state, actor, id)
        .await
        .page(t)?;
    Ok(DispatchPage {
        t,
        l: Layout::new(t, &format!("/admin/units/{id}/dispatch"), Some(actor)),
        unit: unit.id,
        unit_name: t.place(&unit.name),
        modes: &MODES,
        mode: s.mode,
        broadcast_k: s.broadcast_k,
        cooldown: s.reoffer_cooldown_minutes,
        error: None,
        notice: None,
    })
}

/// `GET /admin/units/{id}/dispatch`: the unit's dispatch mode (its own or
/// inherited) with what each mode means, broadcast size and cooldown.
async fn dispatch_page(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Query(n): Query<Notice>,
) -> PageResult<DispatchPage> {
    let t = v.t();
    let mut page = dispatch_view(&state, &v.actor, t, &id).await?;
    page.notice = n.done.map(|_| t.t("admin.saved").to_string());
    Ok(page)
}

#[derive(Deserialize)]
struct DispatchForm {
    #[serde(default)]
    mode: String,
    #[serde(default)]
    broadcast_k: String,
    #[serde(default)]
    cooldown: String,
}

/// Sets the unit's mode through the API's rule (weights kept as they are
/// in force); a bad number answers 422 naming the field.
async fn set_dispatch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<DispatchForm>,
) -> PageResult<Response> {
    use axum::response::IntoResponse;
    let t = p.t;
    let page = dispatch_view(&state, &p.actor, t, &id).await?;
    let number = |field: &str, text: &str| {
        text.trim().parse::<i64>().map_err(|_| {
            ApiError::invalid(
                field,
                "out_of_range",
                format!("{field} must be a whole number"),
            )
        })
    };
    let (_, current) = crate::api::dispatch::dispatch_setting(&state, &p.actor, page.unit)
        .await
        .page(t)?;
    let result = async {
        let req = crate::api::dispatch::SettingBody {
            mode: p.form.mode.trim().to_string(),
            broadcast_k: number("broadcast_k", &p.form.broadcast_k)?,
            weights: current.weights,
            reoffer_cooldown_minutes: number("reoffer_cooldown_minutes", &p.form.cooldown)?,
        };
        crate::api::dispatch::set_dispatch_setting(&state, &p.actor, page.unit, &req).await
    }
    .await;
    match result {
        Ok(()) => Ok(see_other(&format!(
            "/admin/units/{}/dispatch?done=1",
            page.unit
        ))),
        Err(err) if err.status.is_client_error() && err.status.as_u16() != 404 => {
            let mut page = page;
            page.error = Some(super::error_message(t, &err));
            Ok((err.status, page).into_response())
        }
        Err(err) => Err(err).page(t),
    }
}
