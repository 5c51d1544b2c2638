//! Accounts and roles: `GET/POST /api/v1/users`, `GET /api/v1/users/{id}`,
//! `POST /api/v1/users/{id}/grants`, `DELETE /api/v1/users/{id}/grants/{grant_id}`.
//!
//! Admins manage every account. A coordinator creates accounts in its
//! subtree, reads accounts with a grant there, and changes (password,
//! roles) only accounts it administers: every role inside its subtree and
//! below its level ([`Actor::administers`]). Adding a role to an existing
//! account it does not administer (attaching someone else's account to a
//! team) is for an admin. Only admins grant `admin`. Everyone reads their
//! own account.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use homefront_domain::org::OrgPath;
use homefront_domain::{PhoneNumber, Role};
use homefront_store::users::{Grant, User};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::api::ApiQuery;
use crate::api::openapi::{BodyRejection, ErrorShape};
use crate::api::{ApiJson, parse_id};
use crate::auth::{self, Actor};
use crate::error::{ApiError, ApiResult, OnConstraint};
use homefront_store::constraint;

/// User routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/{id}", get(show))
        .route("/users/{id}/grants", post(add_grant))
        .route("/users/{id}/password", post(set_password))
        .route("/users/{id}/unlock", post(unlock))
        .route("/users/{id}/grants/{grant_id}", delete(remove_grant))
}

/// An account with its grants.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserDetail {
    /// The account.
    #[serde(flatten)]
    pub user: User,
    /// Its role grants.
    pub grants: Vec<Grant>,
}

/// Query of `GET /api/v1/users`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Only users with this role: `admin`, `coordinator`, `liaison`,
    /// `requester` or `volunteer`.
    #[param(pattern = "^(admin|coordinator|liaison|requester|volunteer)$")]
    pub role: Option<String>,
}

fn parse_role(raw: &str) -> ApiResult<Role> {
    raw.parse().map_err(|e: homefront_domain::role::RoleError| {
        ApiError::invalid("role", "invalid_role", e.to_string())
    })
}

/// Accounts the caller manages: admins all, coordinators those with a grant
/// in their subtree.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", operation_id = "list_users",
    params(UserQuery),
    responses(
        (status = 200, body = Vec<User>),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden` for roles other than coordinator and admin", body = ErrorShape),
        (status = 422, description = "`invalid_role` (field `role`)", body = ErrorShape),
        crate::api::openapi::QueryRejection))]
pub(crate) async fn list(
    State(state): State<AppState>,
    actor: Actor,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> ApiResult<Json<Vec<User>>> {
    let role = q.role.as_deref().map(parse_role).transpose()?;
    let scopes = match actor.managed_scopes() {
        None => None,
        Some(s) if s.is_empty() => return Err(ApiError::forbidden()),
        Some(s) => Some(s.iter().map(|p| p.as_str().to_string()).collect::<Vec<_>>()),
    };
    Ok(Json(
        state.store.users_in_scope(scopes.as_deref(), role).await?,
    ))
}

/// Whether `actor` may see the account holding `grants`: itself, an admin,
/// or a coordinator of a unit one of the grants is bound to.
pub(crate) fn can_see(actor: &Actor, user_id: i64, grants: &[Grant]) -> bool {
    actor.user.id == user_id
        || actor.is_admin()
        || grants.iter().any(|g| {
            g.org_path
                .as_ref()
                .is_some_and(|p| actor.manages(&OrgPath::from_stored(p.clone())))
        })
}

async fn load_visible(state: &AppState, actor: &Actor, id: i64) -> ApiResult<UserDetail> {
    let user = state
        .store
        .user(id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let grants = state.store.grants(id).await?;
    if !can_see(actor, id, &grants) {
        return Err(ApiError::not_found());
    }
    Ok(UserDetail { user, grants })
}

/// One account with its grants: the caller's own, or one with a grant in
/// the caller's area (admins: any).
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", operation_id = "show_user",
    params(("id" = i64, Path, description = "Account id")),
    responses(
        (status = 200, body = UserDetail),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 404, description = "No such account, or not visible to the caller", body = ErrorShape)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<Json<UserDetail>> {
    Ok(Json(load_visible(&state, &actor, parse_id(&id)?).await?))
}

/// A role to grant.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// `admin`, `coordinator`, `liaison`, `requester` or `volunteer`.
    pub role: String,
    /// The unit the role is bound to: a division for a coordinator, an
    /// employer for a liaison, a team for a volunteer; optional (an
    /// employer) for a requester; none for an admin.
    pub org_unit_id: Option<i64>,
}

/// `POST /api/v1/users` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Phone number in any common form; normalised to E.164.
    pub phone: String,
    /// Name shown to others, 1–100 characters, any script.
    pub display_name: String,
    /// Initial password: 10 to 256 characters, not easy to guess.
    pub password: String,
    /// `zh-CN` (default) or `en`.
    #[serde(default)]
    pub locale: Option<String>,
    /// Roles to grant at once.
    #[serde(default)]
    pub grants: Vec<GrantRequest>,
}

/// Checks that `actor` may grant `req` and returns the parsed role and unit.
async fn check_grant(
    state: &AppState,
    actor: &Actor,
    req: &GrantRequest,
) -> ApiResult<(Role, Option<i64>)> {
    let role = parse_role(&req.role)?;
    if role == Role::Admin {
        if !actor.is_admin() {
            return Err(ApiError::forbidden());
        }
        if req.org_unit_id.is_some() {
            return Err(ApiError::invalid(
                "org_unit_id",
                "unexpected_org_unit",
                "an admin is not bound to an organisation unit; leave org_unit_id out",
            ));
        }
        return Ok((role, None));
    }
    let Some(unit_id) = req.org_unit_id else {
        if role.needs_org_unit() {
            return Err(ApiError::invalid(
                "org_unit_id",
                "org_unit_required",
                format!("a {role} must be bound to an organisation unit; give org_unit_id"),
            ));
        }
        if !actor.is_admin() && !actor.has(Role::Coordinator) && !actor.has(Role::Liaison) {
            return Err(ApiError::forbidden());
        }
        return Ok((role, None));
    };
    let unit = match state.store.org_unit(unit_id).await? {
        Some(u) if actor.manages(&u.org_path()) => u,
        _ => {
            return Err(ApiError::invalid(
                "org_unit_id",
                "unknown_org_unit",
                "no organisation unit with this id in your area",
            ));
        }
    };
    let kind = unit.kind;
    let fits = match role {
        Role::Coordinator => kind.is_division(),
        Role::Liaison | Role::Requester => kind == homefront_domain::org::OrgKind::Employer,
        Role::Volunteer => kind == homefront_domain::org::OrgKind::Team,
        Role::Admin => false,
    };
    if !fits {
        return Err(ApiError::invalid(
            "org_unit_id",
            "wrong_org_kind",
            format!(
                "a {role} cannot be bound to a {kind}; coordinators go to a province, city or county, liaisons and requesters to an employer, volunteers to a team"
            ),
        ));
    }
    Ok((role, Some(unit.id)))
}

/// Create an account with roles.
///
/// Coordinators must grant at least one role in their area (so the account
/// stays visible to them); only admins grant `admin`.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", operation_id = "create_user",
    request_body = CreateUser,
    responses(
        (status = 201, description = "Created", body = UserDetail),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: not a coordinator or admin, or a non-admin granting `admin`; or `csrf_failed`", body = ErrorShape),
        (status = 409, description = "`phone_taken` (field `phone`): add a role to the existing account instead", body = ErrorShape),
        (status = 422, description = "`invalid_phone` or `phone_extension` (field `phone`), `invalid_name` (`display_name`), `invalid_locale` (`locale`), `weak_password` (`password`, at least 10 characters), `password_too_long` or `common_password` (`password`), `grant_required` (`grants`), `invalid_role` (field `role`); `unexpected_org_unit`, `org_unit_required`, `unknown_org_unit` or `wrong_org_kind` (`org_unit_id`: a division for a coordinator, an employer for a liaison or requester, a team for a volunteer)", body = ErrorShape),
        BodyRejection))]
pub(crate) async fn create(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<CreateUser>,
) -> ApiResult<(StatusCode, Json<UserDetail>)> {
    if !actor.is_admin() && !actor.has(Role::Coordinator) {
        return Err(ApiError::forbidden());
    }
    let phone = PhoneNumber::parse(&req.phone)
        .map_err(|e| ApiError::invalid("phone", e.code(), e.to_string()))?;
    let name = req.display_name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid(
            "display_name",
            "invalid_name",
            "display_name must have 1 to 100 characters",
        ));
    }
    let Ok(locale) = req
        .locale
        .as_deref()
        .unwrap_or("zh-CN")
        .parse::<homefront_domain::locale::Locale>()
    else {
        return Err(ApiError::invalid(
            "locale",
            "invalid_locale",
            "locale must be zh-CN or en",
        ));
    };
    auth::check_password_strength(
        "password",
        &req.password,
        &auth::personal_inputs(phone.as_str(), name),
    )?;
    if !actor.is_admin() && req.grants.is_empty() {
        return Err(ApiError::invalid(
            "grants",
            "grant_required",
            "give at least one role in your area, so the account stays visible to you",
        ));
    }
    let mut checked = Vec::new();
    for g in &req.grants {
        checked.push(check_grant(&state, &actor, g).await?);
    }
    if state.store.user_by_phone(&phone).await?.is_some() {
        return Err(ApiError {
            field: Some("phone".into()),
            ..ApiError::conflict(
                "phone_taken",
                "an account with this phone number exists; add a role to it instead",
            )
        });
    }
    let hash = auth::hash_password(req.password).await?;
    let now = state.clock.now().epoch_ms();
    let user = state
        .store
        .create_user(&phone, name, &hash, locale, now)
        .await
        .on_constraint(constraint::USER_PHONE, || ApiError {
            field: Some("phone".into()),
            ..ApiError::conflict(
                "phone_taken",
                "an account with this phone number exists; add a role to it instead",
            )
        })?;
    for (role, unit) in checked {
        state.store.grant_role(user.id, role, unit, now).await?;
    }
    let grants = state.store.grants(user.id).await?;
    Ok((StatusCode::CREATED, Json(UserDetail { user, grants })))
}

/// Grant an account a role, bound to a unit in the caller's area.
///
/// Coordinators only for accounts they administer (every role inside their
/// area and below their level); another account (a requester without an
/// employer in the area, a volunteer of another county) joins through an
/// admin.
#[utoipa::path(post, path = "/api/v1/users/{id}/grants", tag = "users", operation_id = "add_grant",
    params(("id" = i64, Path, description = "Account id")),
    request_body = GrantRequest,
    responses(
        (status = 201, description = "Granted", body = Grant),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: not a coordinator or admin, or a non-admin granting `admin`; `account_outside_area`: the account holds a role outside the coordinator's area or at its level; or `csrf_failed`", body = ErrorShape),
        (status = 404, description = "No such account, or not visible to the caller", body = ErrorShape),
        (status = 409, description = "`duplicate`: the account already holds this role for this unit", body = ErrorShape),
        (status = 422, description = "`invalid_role` (field `role`); `unexpected_org_unit`, `org_unit_required`, `unknown_org_unit` or `wrong_org_kind` (`org_unit_id`: a division for a coordinator, an employer for a liaison or requester, a team for a volunteer)", body = ErrorShape),
        BodyRejection))]
pub(crate) async fn add_grant(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<GrantRequest>,
) -> ApiResult<(StatusCode, Json<Grant>)> {
    let id = parse_id(&id)?;
    if !actor.is_admin() && !actor.has(Role::Coordinator) {
        return Err(ApiError::forbidden());
    }
    // A grant in the caller's area would make the account visible to the
    // caller, and with it resettable: so coordinators add roles only to
    // accounts they already administer, and an account they cannot see
    // answers as a missing one.
    let target = load_visible(&state, &actor, id).await?;
    if !actor.administers(&target.grants) {
        return Err(auth::account_outside_area());
    }
    let (role, unit) = check_grant(&state, &actor, &req).await?;
    let grant = state
        .store
        .grant_role(id, role, unit, state.clock.now().epoch_ms())
        .await?;
    Ok((StatusCode::CREATED, Json(grant)))
}

/// Revoke one of an account's role grants.
///
/// Coordinators revoke grants bound to units in their area of accounts they
/// administer (every role inside their area and below their level); only
/// admins revoke `admin`, and never their own.
#[utoipa::path(delete, path = "/api/v1/users/{id}/grants/{grant_id}", tag = "users", operation_id = "remove_grant",
    params(("id" = i64, Path, description = "Account id"), ("grant_id" = i64, Path, description = "Grant id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: the account is visible but the caller may not revoke this grant; `account_outside_area`: the account holds a role outside the coordinator's area or at its level; or `csrf_failed`", body = ErrorShape),
        (status = 404, description = "No such grant on the account, or the account is not visible to the caller", body = ErrorShape)))]
pub(crate) async fn remove_grant(
    State(state): State<AppState>,
    actor: Actor,
    Path((id, grant_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (id, grant_id) = (parse_id(&id)?, parse_id(&grant_id)?);
    let grants = state.store.grants(id).await?;
    let grant = grants
        .iter()
        .find(|g| g.id == grant_id)
        .ok_or_else(ApiError::not_found)?;
    let allowed = if grant.role == Role::Admin {
        actor.is_admin() && actor.user.id != id
    } else {
        grant.org_path.as_ref().map_or(actor.is_admin(), |p| {
            actor.manages(&OrgPath::from_stored(p.clone()))
        })
    };
    if !allowed {
        return Err(if can_see(&actor, id, &grants) {
            ApiError::forbidden()
        } else {
            ApiError::not_found()
        });
    }
    if !actor.administers(&grants) {
        return Err(auth::account_outside_area());
    }
    state.store.revoke_grant(id, grant_id).await?;
    crate::live::publish_account(&state, id).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /api/v1/users/{id}/password`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    /// The new password: 10 to 256 characters, not easy to guess; tell the
    /// person in person.
    pub password: String,
}

/// Set another account's password (a reset), ending its sessions.
///
/// E.g. for volunteers imported from a roster, who start without one.
/// Admins for anyone; coordinators only for accounts they administer:
/// every role inside their area and below their level (never an admin's,
/// a peer coordinator's, or one with a role elsewhere). Tell the person
/// the password in person.
#[utoipa::path(post, path = "/api/v1/users/{id}/password", tag = "users", operation_id = "set_user_password",
    params(("id" = i64, Path, description = "Account id")),
    request_body = SetPassword,
    responses(
        (status = 204, description = "Set; every session of the account has ended"),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: not a coordinator or admin; `account_outside_area`: the account holds a role outside the coordinator's area or at its level (an admin, a peer coordinator); or `csrf_failed`", body = ErrorShape),
        (status = 404, description = "No such account, or not visible to the caller", body = ErrorShape),
        (status = 422, description = "`weak_password` (field `password`, at least 10 characters), `password_too_long` or `common_password` (`password`)", body = ErrorShape),
        BodyRejection))]
pub(crate) async fn set_password(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<SetPassword>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id)?;
    if !actor.is_admin() && !actor.has(Role::Coordinator) {
        return Err(ApiError::forbidden());
    }
    let target = load_visible(&state, &actor, id).await?;
    if !actor.administers(&target.grants) {
        return Err(auth::account_outside_area());
    }
    auth::check_password_strength(
        "password",
        &req.password,
        &auth::personal_inputs(&target.user.phone, &target.user.display_name),
    )?;
    let hash = auth::hash_password(req.password).await?;
    state.store.set_password_hash(id, &hash).await?;
    state.store.delete_user_sessions(id).await?;
    crate::live::publish_account(&state, id).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Lift the sign-in throttling of an account: forget its failed sign-ins
/// from every address, ending its back-off and its per-account ceiling
/// (after the person proved who they are, e.g. in person or by phone).
///
/// Admins for anyone; coordinators for accounts they administer (as a
/// password reset). A client address over its own limit stays limited.
#[utoipa::path(post, path = "/api/v1/users/{id}/unlock", tag = "users", operation_id = "unlock_user",
    params(("id" = i64, Path, description = "Account id")),
    responses(
        (status = 204, description = "Unlocked: the account may sign in again from every address"),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: not a coordinator or admin; `account_outside_area`: the account holds a role outside the coordinator's area or at its level; or `csrf_failed`", body = ErrorShape),
        (status = 404, description = "No such account, or not visible to the caller", body = ErrorShape)))]
pub(crate) async fn unlock(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id)?;
    if !actor.is_admin() && !actor.has(Role::Coordinator) {
        return Err(ApiError::forbidden());
    }
    let target = load_visible(&state, &actor, id).await?;
    if !actor.administers(&target.grants) {
        return Err(auth::account_outside_area());
    }
    let forgotten = state.store.clear_failed_logins(&target.user.phone).await?;
    tracing::info!(
        user_id = id,
        by = actor.user.id,
        forgotten,
        "sign-in throttling lifted"
    );
    Ok(StatusCode::NO_CONTENT)
}
