//! The requester's household pages: `/household` lists the family members
//! with their addresses and adds one; `/household/members/{id}` edits one.
//!
//! Reads and changes go through the JSON API's handlers
//! (`api::households::{mine, add_member, update_member}`), so validation,
//! the requester-only rule, the own-household check (another household's
//! member is 404) and the access log stay in one place. A `next` parameter
//! (a local path only) returns to the order wizard after saving.

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use homefront_domain::org::OrgKind;
use homefront_store::households::Member;
use serde::Deserialize;

use super::i18n::Tr;
use super::{Layout, Localize, PageResult, Posted, Viewer, local_path, refused, see_other};
use crate::AppState;
use crate::api::ApiJson;
use crate::api::households::{self as api, MemberRequest};
use crate::auth::Actor;
use crate::error::ApiError;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/household", get(household).post(add))
        .route("/household/members/{id}", get(edit).post(update))
}

/// The relations a member may have, in the order the form offers them.
const RELATIONS: [&str; 5] = ["self", "parent", "child", "spouse", "other"];

/// A division a member's address may be in.
struct District {
    /// 12-digit adcode (the form's value).
    adcode: String,
    name: String,
}

/// The districts of one city (or the directly administered counties of a
/// province), an `<optgroup>`.
struct CityGroup {
    adcode: String,
    name: String,
    districts: Vec<District>,
}

/// The divisions a member's address may name: counties grouped by their
/// city, both sorted by adcode; a city without counties is its own choice.
struct Divisions {
    groups: Vec<CityGroup>,
    /// Org-unit id → (adcode, name) of every choice.
    by_id: HashMap<i64, (String, String)>,
}

async fn divisions(state: &AppState) -> Result<Divisions, ApiError> {
    let store = &state.store;
    let provinces = store.org_units(None, None, Some(OrgKind::Province)).await?;
    let cities = store.org_units(None, None, Some(OrgKind::City)).await?;
    let counties = store.org_units(None, None, Some(OrgKind::County)).await?;
    let mut groups: HashMap<i64, CityGroup> = provinces
        .iter()
        .chain(&cities)
        .filter_map(|u| {
            let group = CityGroup {
                adcode: u.adcode.clone()?,
                name: u.name.clone(),
                districts: Vec::new(),
            };
            Some((u.id, group))
        })
        .collect();
    let mut by_id = HashMap::new();
    for c in &counties {
        let (Some(adcode), Some(group)) = (&c.adcode, c.parent_id.and_then(|p| groups.get_mut(&p)))
        else {
            continue;
        };
        group.districts.push(District {
            adcode: adcode.clone(),
            name: c.name.clone(),
        });
        by_id.insert(c.id, (adcode.clone(), c.name.clone()));
    }
    for city in &cities {
        if let Some(group) = groups.get_mut(&city.id)
            && group.districts.is_empty()
        {
            group.districts.push(District {
                adcode: group.adcode.clone(),
                name: city.name.clone(),
            });
            by_id.insert(city.id, (group.adcode.clone(), city.name.clone()));
        }
    }
    let mut groups: Vec<CityGroup> = groups
        .into_values()
        .filter(|g| !g.districts.is_empty())
        .collect();
    groups.sort_by(|a, b| a.adcode.cmp(&b.adcode));
    for g in &mut groups {
        g.districts.sort_by(|a, b| a.adcode.cmp(&b.adcode));
    }
    Ok(Divisions { groups, by_id })
}

/// A member's fields as the form has them: what was typed, or the stored
/// member. Also the posted form (`_csrf` is ignored here).
#[derive(Clone, Debug, Default, Deserialize)]
struct MemberForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    relation: String,
    /// 12-digit adcode of the district.
    #[serde(default)]
    adcode: String,
    #[serde(default)]
    street: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    age_years: String,
    #[serde(default)]
    school_grade: String,
    /// Present (`1`) when ticked.
    #[serde(default)]
    guardian_consent: Option<String>,
    /// Kept from the stored member, so an edit does not drop coordinates
    /// set through the API.
    #[serde(default)]
    longitude: String,
    #[serde(default)]
    latitude: String,
    /// Where to go after saving (a local path).
    #[serde(default)]
    next: String,
}

impl MemberForm {
    fn of(m: &Member, adcode: String) -> MemberForm {
        MemberForm {
            name: m.name.clone(),
            relation: m.relation.to_string(),
            adcode,
            street: m.street.clone(),
            phone: m
                .phone
                .as_deref()
                .map(super::phone_text)
                .unwrap_or_default(),
            age_years: m.age_years.map(|a| a.to_string()).unwrap_or_default(),
            school_grade: m.school_grade.clone().unwrap_or_default(),
            guardian_consent: m.guardian_consent.then(|| "1".to_string()),
            longitude: m.longitude.map(|x| x.to_string()).unwrap_or_default(),
            latitude: m.latitude.map(|x| x.to_string()).unwrap_or_default(),
            next: String::new(),
        }
    }

    fn consent(&self) -> bool {
        self.guardian_consent.is_some()
    }

    /// The API's request body; a field that is not a number is a 422
    /// naming it.
    fn request(&self) -> Result<MemberRequest, ApiError> {
        fn opt<T: std::str::FromStr>(field: &str, raw: &str) -> Result<Option<T>, ApiError> {
            let raw = raw.trim();
            if raw.is_empty() {
                return Ok(None);
            }
            raw.parse().map(Some).map_err(|_| {
                ApiError::invalid(field, "not_a_number", format!("{field} must be a number"))
            })
        }
        Ok(MemberRequest {
            name: self.name.clone(),
            relation: self.relation.clone(),
            age_years: opt("age_years", &self.age_years)?,
            school_grade: Some(self.school_grade.clone()),
            phone: Some(self.phone.clone()),
            adcode: self.adcode.clone(),
            street: self.street.clone(),
            longitude: opt("longitude", &self.longitude)?,
            latitude: opt("latitude", &self.latitude)?,
            guardian_consent: self.consent(),
        })
    }
}

/// A member as the list shows it: the requester's own data, in full.
struct MemberLine {
    id: i64,
    name: String,
    relation: String,
    division: String,
    street: String,
    phone: String,
    age_years: Option<i64>,
    school_grade: String,
    /// A child under 14 without a guardian's consent: orders for them
    /// are refused until it is recorded.
    needs_consent: bool,
}

/// What the add and edit forms share.
struct FormView {
    draft: MemberForm,
    groups: Vec<CityGroup>,
    relations: [&'static str; 5],
    /// The field the error names ("" when none).
    error_field: String,
    error: Option<String>,
}

impl FormView {
    fn new(draft: MemberForm, groups: Vec<CityGroup>) -> FormView {
        FormView {
            draft,
            groups,
            relations: RELATIONS,
            error_field: String::new(),
            error: None,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "household.html")]
struct HouseholdPage {
    t: Tr,
    l: Layout,
    members: Vec<MemberLine>,
    f: FormView,
    /// `?next=...` for links to a member's page ("" without `next`).
    next_query: String,
    notice: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "household_member.html")]
struct MemberPage {
    t: Tr,
    l: Layout,
    id: i64,
    f: FormView,
    /// Where "back" leads: `next`, else the household.
    back: String,
}

fn requester_only(actor: &Actor, t: Tr) -> PageResult<()> {
    if actor.has(homefront_domain::Role::Requester) {
        Ok(())
    } else {
        Err(ApiError::forbidden()).page(t)
    }
}

/// The requester's members through the API's handler (which logs the read).
async fn own_members(state: &AppState, actor: &Actor) -> Result<Vec<Member>, ApiError> {
    let axum::Json(view) = api::mine(State(state.clone()), actor.clone()).await?;
    Ok(view.members)
}

/// The adcode and name of a member's division.
async fn division_of(
    state: &AppState,
    d: &Divisions,
    m: &Member,
) -> Result<(String, String), ApiError> {
    if let Some(x) = d.by_id.get(&m.division_id) {
        return Ok(x.clone());
    }
    Ok(state
        .store
        .org_unit(m.division_id)
        .await?
        .map(|u| (u.adcode.unwrap_or_default(), u.name))
        .unwrap_or_default())
}

fn next_query(next: &str) -> String {
    if next.is_empty() {
        String::new()
    } else {
        format!("?next={}", super::url_encode(next))
    }
}

async fn household_page(
    state: &AppState,
    actor: &Actor,
    l: Layout,
    draft: MemberForm,
    refusal: Option<(String, String)>,
    notice: Option<String>,
) -> PageResult<HouseholdPage> {
    let t = l.t;
    requester_only(actor, t)?;
    let members = own_members(state, actor).await.page(t)?;
    let d = divisions(state).await.page(t)?;
    let mut lines = Vec::with_capacity(members.len());
    for m in &members {
        let (_, division) = division_of(state, &d, m).await.page(t)?;
        lines.push(MemberLine {
            id: m.id,
            name: m.name.clone(),
            relation: m.relation.to_string(),
            division,
            street: m.street.clone(),
            phone: m
                .phone
                .as_deref()
                .map(super::phone_text)
                .unwrap_or_default(),
            age_years: m.age_years,
            school_grade: m.school_grade.clone().unwrap_or_default(),
            needs_consent: api::lacks_guardian_consent(m),
        });
    }
    let next_query = next_query(&draft.next);
    let mut f = FormView::new(draft, d.groups);
    if let Some((field, message)) = refusal {
        f.error_field = field;
        f.error = Some(message);
    }
    Ok(HouseholdPage {
        t,
        l,
        members: lines,
        f,
        next_query,
        notice,
    })
}

#[derive(Deserialize, Default)]
struct PageQuery {
    next: Option<String>,
    done: Option<String>,
}

/// `GET /household`: the members and the form to add one.
async fn household(
    State(state): State<AppState>,
    v: Viewer,
    Query(q): Query<PageQuery>,
) -> PageResult<HouseholdPage> {
    let notice = q.done.map(|_| v.t().t("household.saved").to_string());
    let draft = MemberForm {
        next: local_path(q.next.as_deref()).unwrap_or_default(),
        ..MemberForm::default()
    };
    household_page(&state, &v.actor, v.l, draft, None, notice).await
}

/// Where to go after saving member `id`: back to the wizard's second step
/// with the member chosen, to another local `next`, or to the household.
fn after_save(next: &str, id: i64) -> String {
    let Some(next) = local_path(Some(next)) else {
        return "/household?done=1".into();
    };
    let (path, query) = next.split_once('?').unwrap_or((&next, ""));
    if path != "/orders/new/who" {
        return next;
    }
    let mut pairs: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("member="))
        .collect();
    let member = format!("member={id}");
    pairs.push(&member);
    format!("{path}?{}", pairs.join("&"))
}

/// `POST /household`: adds a member through the API's handler.
async fn add(State(state): State<AppState>, p: Posted<MemberForm>) -> PageResult<Response> {
    let t = p.t;
    requester_only(&p.actor, t)?;
    let mut draft = p.form;
    draft.next = local_path(Some(&draft.next)).unwrap_or_default();
    let result = match draft.request() {
        Ok(req) => api::add_member(State(state.clone()), p.actor.clone(), ApiJson(req))
            .await
            .map(|(_, axum::Json(m))| m),
        Err(err) => Err(err),
    };
    match result {
        Ok(m) => Ok(see_other(&after_save(&draft.next, m.id))),
        Err(err) => {
            let field = err.field.clone().unwrap_or_default();
            let l = Layout::new(t, "/household", Some(&p.actor));
            refused(t, err, |m| {
                household_page(&state, &p.actor, l, draft, Some((field, m)), None)
            })
            .await
        }
    }
}

async fn member_page(
    state: &AppState,
    actor: &Actor,
    l: Layout,
    id: &str,
    draft: Option<MemberForm>,
    next: String,
    refusal: Option<(String, String)>,
) -> PageResult<MemberPage> {
    let t = l.t;
    requester_only(actor, t)?;
    let id = crate::api::parse_id(id).page(t)?;
    // Another household's member is not among the requester's own: 404,
    // as for a missing one.
    let members = own_members(state, actor).await.page(t)?;
    let member = members
        .iter()
        .find(|m| m.id == id)
        .ok_or_else(ApiError::not_found)
        .page(t)?;
    let d = divisions(state).await.page(t)?;
    let mut draft = match draft {
        Some(draft) => draft,
        None => {
            let (adcode, _) = division_of(state, &d, member).await.page(t)?;
            MemberForm::of(member, adcode)
        }
    };
    draft.next = next;
    let back = if draft.next.is_empty() {
        "/household".to_string()
    } else {
        draft.next.clone()
    };
    let mut f = FormView::new(draft, d.groups);
    if let Some((field, message)) = refusal {
        f.error_field = field;
        f.error = Some(message);
    }
    Ok(MemberPage {
        t,
        l,
        id: member.id,
        f,
        back,
    })
}

/// `GET /household/members/{id}`: one member's form, filled in.
async fn edit(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> PageResult<MemberPage> {
    let next = local_path(q.next.as_deref()).unwrap_or_default();
    member_page(&state, &v.actor, v.l, &id, None, next, None).await
}

/// `POST /household/members/{id}`: replaces the member's details through
/// the API's handler (`PATCH /api/v1/household/members/{id}`).
async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<MemberForm>,
) -> PageResult<Response> {
    let t = p.t;
    requester_only(&p.actor, t)?;
    let mut draft = p.form;
    draft.next = local_path(Some(&draft.next)).unwrap_or_default();
    let result = match draft.request() {
        Ok(req) => {
            api::update_member(
                State(state.clone()),
                p.actor.clone(),
                Path(id.clone()),
                ApiJson(req),
            )
            .await
        }
        Err(err) => Err(err),
    };
    match result {
        Ok(axum::Json(m)) => Ok(see_other(&after_save(&draft.next, m.id))),
        Err(err) => {
            let field = err.field.clone().unwrap_or_default();
            let path = format!("/household/members/{id}");
            let l = Layout::new(t, &path, Some(&p.actor));
            let next = draft.next.clone();
            refused(t, err, |m| {
                member_page(
                    &state,
                    &p.actor,
                    l,
                    &id,
                    Some(draft),
                    next,
                    Some((field, m)),
                )
            })
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saving_returns_to_the_wizard_with_the_member_chosen() {
        assert_eq!(
            after_save("/orders/new/who?item=3", 7),
            "/orders/new/who?item=3&member=7"
        );
        assert_eq!(
            after_save("/orders/new/who?item=3&member=2", 7),
            "/orders/new/who?item=3&member=7"
        );
        assert_eq!(after_save("/orders", 7), "/orders");
        assert_eq!(after_save("", 7), "/household?done=1");
        assert_eq!(after_save("https://evil.example/", 7), "/household?done=1");
        assert_eq!(after_save("//evil.example/", 7), "/household?done=1");
    }
}
