//! Sign-in and sessions: `POST /auth/login`, `POST /auth/logout`,
//! `GET /auth/me`, TOTP set-up, password change.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use homefront_domain::{PhoneNumber, Role, Timestamp};
use homefront_store::users::{Grant, User};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::api::ApiJson;
use crate::api::openapi::{BodyRejection, ErrorShape};
use crate::auth::{self, Actor, SESSION_COOKIE};
use crate::error::{ApiError, ApiResult};

/// Session routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/logout-all", post(logout_all))
        .route("/auth/me", get(me))
        .route("/auth/password", post(change_password))
        .route("/auth/totp/setup", post(totp_setup))
        .route("/auth/totp/enable", post(totp_enable))
}

/// `POST /api/v1/auth/login` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Phone number in any common form; normalised to E.164.
    pub phone: String,
    /// Password.
    pub password: String,
    /// Six-digit TOTP code, required when the account has TOTP enabled.
    #[serde(default)]
    pub totp_code: Option<String>,
    /// "Remember this phone": a session of `remember_days` (default 30)
    /// instead of `session_hours`, for accounts that are only requesters
    /// and volunteers (others get a normal session; see `remembered`).
    #[serde(default)]
    pub remember: bool,
}

/// Who is signed in: the account and its grants.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    /// The account.
    pub user: User,
    /// Role grants.
    pub grants: Vec<Grant>,
    /// Token to echo in `X-CSRF-Token` on cookie-authenticated POST/PUT/PATCH/DELETE.
    pub csrf_token: String,
}

/// `POST /api/v1/auth/login` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoginResponse {
    /// The account, its grants and the CSRF token.
    #[serde(flatten)]
    pub me: Me,
    /// Bearer token for API clients (browsers use the HttpOnly cookie).
    pub token: String,
    /// Session expiry, epoch ms.
    pub expires_at: i64,
    /// Whether the session is a remembered one (`remember_days`).
    pub remembered: bool,
}

/// The client's address: the peer, or the first `X-Forwarded-For` entry
/// when the configuration trusts a proxy.
pub fn client_ip(state: &AppState, headers: &HeaderMap, peer: SocketAddr) -> String {
    if state.config.trust_forwarded_for
        && let Some(first) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
    {
        return first.trim().to_string();
    }
    peer.ip().to_string()
}

fn too_many(retry_ms: i64) -> ApiError {
    let secs = (retry_ms + 999) / 1000;
    let wait = if secs < 120 {
        format!("{secs} seconds")
    } else {
        format!("{} minutes", (secs + 59) / 60)
    };
    let mut e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
        format!(
            "too many failed sign-ins; wait {wait} and try again, or ask your coordinator to unlock the account"
        ),
    );
    e.retry_after_s = Some(secs);
    e
}

/// Milliseconds a (phone, address) pair must wait after `failures` failed
/// sign-ins since its last success: none for the first
/// `login_free_failures`, then `login_backoff_base_seconds` doubling with
/// each further failure, at most `login_backoff_max_minutes`.
pub fn backoff_ms(cfg: &crate::config::Config, failures: i64) -> i64 {
    let free = cfg.login_free_failures.max(1);
    if failures < free {
        return 0;
    }
    let doublings = u32::try_from(failures - free).unwrap_or(0).min(30);
    let max_ms = cfg.login_backoff_max_minutes * Timestamp::MINUTE_MS;
    (cfg.login_backoff_base_seconds * 1000)
        .saturating_mul(1i64 << doublings)
        .min(max_ms)
}

/// How long the next sign-in for `phone` from `ip` must wait, in ms (0:
/// it may go ahead): the pair's back-off, the account's ceiling and the
/// address's limit on distinct accounts, whichever ends last.
async fn throttled_for(state: &AppState, phone: &str, ip: &str, now: Timestamp) -> ApiResult<i64> {
    let cfg = &state.config;
    let window_ms = cfg.login_window_minutes * Timestamp::MINUTE_MS;
    let failed = state
        .store
        .failed_logins_since(phone, ip, now.epoch_ms() - window_ms)
        .await?;
    let mut wait = 0i64;
    if let Some(last) = failed.last_pair {
        wait = wait.max(last + backoff_ms(cfg, failed.by_pair) - now.epoch_ms());
    }
    if failed.by_phone >= cfg.login_max_failures_per_account {
        let oldest = failed.oldest_phone.unwrap_or(now.epoch_ms());
        wait = wait.max(oldest + window_ms - now.epoch_ms());
    }
    if failed.phones_by_ip >= cfg.login_max_accounts_per_ip {
        let oldest = failed.oldest_ip.unwrap_or(now.epoch_ms());
        wait = wait.max(oldest + window_ms - now.epoch_ms());
    }
    Ok(wait.max(0))
}

/// Sign in with phone and password (and a TOTP code when enabled).
///
/// Opens a session for `session_hours` (default 12 h), or `remember_days`
/// (default 30) with `"remember": true` for requesters and volunteers:
/// the answer carries a bearer token for API clients and sets the HttpOnly `hf_session` cookie
/// for browsers. Failed attempts are throttled without locking the owner
/// out: each (phone, client address) pair gets 3 free failures, then waits
/// 30 s, 60 s, 2 min, ... (at most 15 min) between attempts, so a guesser
/// elsewhere does not stop the owner signing in; a phone gets at most 30
/// failures an hour from all addresses, and an address at most 50 failing
/// phones an hour. A coordinator lifts the limits with
/// `POST /api/v1/users/{id}/unlock`. The response time does not reveal
/// whether a phone number has an account.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "sessions", operation_id = "login",
    security(()),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = LoginResponse,
            headers(("Set-Cookie" = String, description = "`hf_session=<token>; Path=/; HttpOnly; SameSite=Lax; Max-Age=<seconds>`"))),
        (status = 401, description = "`invalid_credentials` (wrong phone or password, or a disabled account); `totp_required` or `invalid_totp` (field `totp_code`)", body = ErrorShape),
        (status = 403, description = "`cross_site_request`: a browser posted it from another site (`Sec-Fetch-Site` other than `same-origin` or `none`, or an `Origin` that is not this host)", body = ErrorShape),
        (status = 422, description = "Malformed phone number (field `phone`) or body", body = ErrorShape),
        (status = 429, description = "`too_many_attempts`: this phone from this address is backing off after failed sign-ins, the phone reached its ceiling, or this address failed for too many phones",
            body = ErrorShape, headers(("Retry-After" = i64, description = "Seconds until a new attempt may succeed"))),
        BodyRejection))]
async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    auth::check_same_origin(&headers)?;
    let ip = client_ip(&state, &headers, peer);
    let (body, cookie) = sign_in(&state, &ip, req).await?;
    let mut resp = Json(body).into_response();
    resp.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(resp)
}

/// Checks a sign-in (throttling per account and per address, password,
/// TOTP), opens a session and returns the answer with its `Set-Cookie`
/// value: the one sign-in path of the JSON API and the login page.
///
/// # Errors
/// 422 for a malformed phone, 401 for wrong credentials or a missing TOTP
/// code, 429 when throttled.
pub async fn sign_in(
    state: &AppState,
    ip: &str,
    req: LoginRequest,
) -> ApiResult<(LoginResponse, HeaderValue)> {
    let now = state.clock.now();
    let ip = ip.to_string();
    let phone = PhoneNumber::parse(&req.phone)
        .map_err(|e| ApiError::invalid("phone", e.code(), e.to_string()))?;
    let cfg = &state.config;
    let wait_ms = throttled_for(state, phone.as_str(), &ip, now).await?;
    if wait_ms > 0 {
        return Err(too_many(wait_ms));
    }

    let creds = state.store.credentials_by_phone(&phone).await?;
    // Verify against a fixed hash when the account is unknown, so response
    // time does not reveal which phone numbers have accounts.
    let stored = creds
        .as_ref()
        .map(|c| c.password_hash.clone())
        .unwrap_or_else(String::new);
    let stored = if stored.is_empty() {
        dummy_hash().await?
    } else {
        stored
    };
    let password_ok = auth::verify_password(req.password, stored).await;
    let creds = match creds {
        Some(c) if password_ok && !c.disabled => c,
        _ => {
            state
                .store
                .record_login_attempt(phone.as_str(), &ip, false, now.epoch_ms())
                .await?;
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "the phone number or password is wrong",
            ));
        }
    };
    if creds.totp_enabled {
        let secret = creds.totp_secret.as_deref().unwrap_or("");
        match req.totp_code.as_deref() {
            None | Some("") => {
                let mut e = ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "totp_required",
                    "enter the 6-digit code from your authenticator app",
                );
                e.field = Some("totp_code".into());
                return Err(e);
            }
            Some(code) if !auth::totp_matches(secret, code, now) => {
                state
                    .store
                    .record_login_attempt(phone.as_str(), &ip, false, now.epoch_ms())
                    .await?;
                let mut e = ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_totp",
                    "the authenticator code is wrong or has expired; enter the current code",
                );
                e.field = Some("totp_code".into());
                return Err(e);
            }
            Some(_) => {}
        }
    }
    state
        .store
        .record_login_attempt(phone.as_str(), &ip, true, now.epoch_ms())
        .await?;

    let token = auth::new_token();
    let csrf = auth::new_token();
    let grants = state.store.grants(creds.id).await?;
    let remembered = req.remember && may_remember(&grants);
    let lifetime_ms = if remembered {
        cfg.remember_days * 24 * Timestamp::HOUR_MS
    } else {
        cfg.session_hours * Timestamp::HOUR_MS
    };
    let expires_at = now.epoch_ms() + lifetime_ms;
    state
        .store
        .create_session(
            &auth::sha256_hex(&token),
            creds.id,
            &csrf,
            now.epoch_ms(),
            expires_at,
        )
        .await?;
    let user = state
        .store
        .user(creds.id)
        .await?
        .ok_or_else(ApiError::unauthenticated)?;
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        lifetime_ms / 1000,
        if cfg.secure_cookies { "; Secure" } else { "" }
    );
    let body = LoginResponse {
        me: Me {
            user,
            grants,
            csrf_token: csrf,
        },
        token,
        expires_at,
        remembered,
    };
    Ok((
        body,
        HeaderValue::from_str(&cookie).map_err(ApiError::internal)?,
    ))
}

/// Whether an account with `grants` may keep a remembered session: it holds
/// the requester or volunteer role and no role that acts for others
/// (admin, coordinator, liaison), whose sessions stay short.
pub fn may_remember(grants: &[Grant]) -> bool {
    let has = |r: Role| grants.iter().any(|g| g.role == r);
    (has(Role::Requester) || has(Role::Volunteer))
        && !(has(Role::Admin) || has(Role::Coordinator) || has(Role::Liaison))
}

/// Argon2id hash of a random string nobody knows, made once per process and
/// verified against when the phone number has no account.
async fn dummy_hash() -> ApiResult<String> {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_try_init(|| auth::hash_password(auth::new_token()))
        .await
        .cloned()
}

/// Sign out: ends the current session and clears the cookie.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "sessions", operation_id = "logout",
    responses(
        (status = 204, description = "Signed out",
            headers(("Set-Cookie" = String, description = "`hf_session=; Max-Age=0`: clears the cookie"))),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`csrf_failed`: cookie sign-in without a matching `X-CSRF-Token`", body = ErrorShape)))]
async fn logout(State(state): State<AppState>, actor: Actor) -> ApiResult<Response> {
    state.store.delete_session(&actor.token_hash).await?;
    crate::live::publish_account(&state, actor.user.id).await;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("hf_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    Ok(resp)
}

/// Sign out everywhere: ends every session of the account (remembered
/// phones included, and with them their alerts) and clears this cookie.
#[utoipa::path(post, path = "/api/v1/auth/logout-all", tag = "sessions", operation_id = "logout_all",
    responses(
        (status = 204, description = "Every session of the account has ended",
            headers(("Set-Cookie" = String, description = "`hf_session=; Max-Age=0`: clears the cookie"))),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`csrf_failed`: cookie sign-in without a matching `X-CSRF-Token`", body = ErrorShape)))]
pub(crate) async fn logout_all(State(state): State<AppState>, actor: Actor) -> ApiResult<Response> {
    state.store.delete_user_sessions(actor.user.id).await?;
    crate::live::publish_account(&state, actor.user.id).await;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("hf_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    Ok(resp)
}

/// The signed-in account, its role grants and the session's CSRF token.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "sessions", operation_id = "me",
    responses(
        (status = 200, body = Me),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape)))]
async fn me(actor: Actor) -> Json<Me> {
    Json(Me {
        user: actor.user,
        grants: actor.grants,
        csrf_token: actor.csrf_token,
    })
}

/// `POST /api/v1/auth/password` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    /// The current password.
    pub current_password: String,
    /// The new password: 10 to 256 characters, not easy to guess (see
    /// `common_password`); kept exactly as typed.
    pub new_password: String,
}

/// Change the caller's own password.
///
/// Every session of the account ends, this one included: sign in again
/// with the new password.
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "sessions", operation_id = "change_password",
    request_body = ChangePassword,
    responses(
        (status = 204, description = "Changed; every session of the account has ended"),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`csrf_failed`: cookie sign-in without a matching `X-CSRF-Token`", body = ErrorShape),
        (status = 422, description = "`weak_password` (field `new_password`, under 10 characters), `password_too_long` (over 256) or `common_password` (easy to guess: a common password, a pattern, the phone number or name) or `invalid_credentials` (field `current_password`)", body = ErrorShape),
        BodyRejection))]
pub(crate) async fn change_password(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<ChangePassword>,
) -> ApiResult<StatusCode> {
    auth::check_password_strength(
        "new_password",
        &req.new_password,
        &auth::personal_inputs(&actor.user.phone, &actor.user.display_name),
    )?;
    let creds = state
        .store
        .credentials(actor.user.id)
        .await?
        .ok_or_else(ApiError::unauthenticated)?;
    if !auth::verify_password(req.current_password, creds.password_hash).await {
        return Err(ApiError::invalid(
            "current_password",
            "invalid_credentials",
            "the current password is wrong",
        ));
    }
    let hash = auth::hash_password(req.new_password).await?;
    state.store.set_password_hash(actor.user.id, &hash).await?;
    // Every other session ends with the old password.
    state.store.delete_user_sessions(actor.user.id).await?;
    crate::live::publish_account(&state, actor.user.id).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/auth/totp/setup` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TotpSetup {
    /// Base32 secret to type into an authenticator app.
    pub secret: String,
    /// `otpauth://` URI (Google Authenticator Key Uri Format) for a QR code.
    pub otpauth_uri: String,
}

/// Start two-step sign-in: a new TOTP secret for an authenticator app.
///
/// For roles that may use TOTP (admins, coordinators). The secret is not
/// required at sign-in until `POST /api/v1/auth/totp/enable` confirms a
/// code (RFC 6238: SHA-1, 6 digits, 30-second steps).
#[utoipa::path(post, path = "/api/v1/auth/totp/setup", tag = "sessions", operation_id = "totp_setup",
    responses(
        (status = 200, body = TotpSetup),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`forbidden`: no role of the account uses TOTP; or `csrf_failed`", body = ErrorShape),
        (status = 409, description = "`totp_already_enabled`", body = ErrorShape)))]
async fn totp_setup(State(state): State<AppState>, actor: Actor) -> ApiResult<Json<TotpSetup>> {
    if !Role::ALL.iter().any(|r| r.may_use_totp() && actor.has(*r)) {
        return Err(ApiError::forbidden());
    }
    if actor.user.totp_enabled {
        return Err(ApiError::conflict(
            "totp_already_enabled",
            "two-step sign-in is already on for this account",
        ));
    }
    let secret = auth::new_totp_secret();
    state
        .store
        .set_totp(actor.user.id, Some(&secret), false)
        .await?;
    let otpauth_uri = format!(
        "otpauth://totp/Homefront:{}?secret={secret}&issuer=Homefront&digits=6&period=30",
        actor.user.phone.trim_start_matches('+')
    );
    Ok(Json(TotpSetup {
        secret,
        otpauth_uri,
    }))
}

/// `POST /api/v1/auth/totp/enable` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpEnable {
    /// The current code from the authenticator app, proving it was set up.
    pub totp_code: String,
}

/// Turn two-step sign-in on by confirming a current code from the app.
#[utoipa::path(post, path = "/api/v1/auth/totp/enable", tag = "sessions", operation_id = "totp_enable",
    request_body = TotpEnable,
    responses(
        (status = 204, description = "On: sign-in now needs `totp_code`"),
        (status = 401, description = "`unauthenticated` or `session_expired`", body = ErrorShape),
        (status = 403, description = "`csrf_failed`: cookie sign-in without a matching `X-CSRF-Token`", body = ErrorShape),
        (status = 409, description = "`totp_not_set_up`: call `POST /api/v1/auth/totp/setup` first", body = ErrorShape),
        (status = 422, description = "`invalid_totp` (field `totp_code`)", body = ErrorShape),
        BodyRejection))]
async fn totp_enable(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<TotpEnable>,
) -> ApiResult<StatusCode> {
    let creds = state
        .store
        .credentials(actor.user.id)
        .await?
        .ok_or_else(ApiError::unauthenticated)?;
    let Some(secret) = creds.totp_secret else {
        return Err(ApiError::conflict(
            "totp_not_set_up",
            "call POST /api/v1/auth/totp/setup first",
        ));
    };
    if !auth::totp_matches(&secret, &req.totp_code, state.clock.now()) {
        return Err(ApiError::invalid(
            "totp_code",
            "invalid_totp",
            "the code does not match; enter the current code from your authenticator app",
        ));
    }
    state
        .store
        .set_totp(actor.user.id, Some(&secret), true)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
