//! Authentication: Argon2id password hashes, opaque session tokens, the
//! [`Actor`] extractor with CSRF protection, login throttling and TOTP.
//!
//! Sessions are opaque random tokens (256 bits, base64url). The database
//! keeps only their SHA-256, so a leaked database cannot be replayed. A
//! browser carries the token in the `hf_session` cookie (HttpOnly,
//! SameSite=Lax); API clients may send `Authorization: Bearer TOKEN`.
//! Cookie-authenticated unsafe requests must echo the session's CSRF token
//! in `X-CSRF-Token` (synchroniser-token pattern, OWASP CSRF Prevention
//! Cheat Sheet); bearer requests are not exposed to CSRF and need not.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, PasswordHash};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use homefront_domain::org::OrgPath;
use homefront_domain::{Role, Timestamp};
use homefront_store::users::{Grant, User};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "hf_session";
/// Header that carries the CSRF token on cookie-authenticated unsafe requests.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Shortest password accepted, in characters (NIST SP 800-63B §5.1.1.2).
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Hashes `password` with Argon2id (default parameters of the `argon2`
/// crate: m = 19 MiB, t = 2, p = 1, per OWASP's password storage guidance)
/// on the blocking pool, so the async runtime keeps serving.
///
/// # Errors
/// Internal error when hashing fails (out of memory).
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(ApiError::internal)
    })
    .await
    .map_err(ApiError::internal)?
}

/// Checks `password` against a stored PHC string on the blocking pool.
/// A malformed stored hash counts as a mismatch.
pub async fn verify_password(password: String, stored: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// Rejects passwords that are too short, naming the field.
///
/// # Errors
/// 422 `weak_password` on field `field`.
pub fn check_password_strength(field: &str, password: &str) -> Result<(), ApiError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::invalid(
            field,
            "weak_password",
            format!("password must have at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

/// A fresh random token: 32 bytes from the OS-seeded thread RNG, base64url.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Lower-case hex SHA-256 of `text`.
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The signed-in user behind a request, with their role grants.
#[derive(Clone, Debug)]
pub struct Actor {
    /// The account.
    pub user: User,
    /// Role grants with their units' paths.
    pub grants: Vec<Grant>,
    /// SHA-256 of the session token (for logout).
    pub token_hash: String,
    /// This session's CSRF token.
    pub csrf_token: String,
}

impl Actor {
    /// Whether the actor holds `role` in any scope.
    pub fn has(&self, role: Role) -> bool {
        self.grants.iter().any(|g| g.role() == Some(role))
    }

    /// Whether the actor is an admin.
    pub fn is_admin(&self) -> bool {
        self.has(Role::Admin)
    }

    /// Paths of the units bound to grants of `role`.
    pub fn scopes(&self, role: Role) -> Vec<OrgPath> {
        self.grants
            .iter()
            .filter(|g| g.role() == Some(role))
            .filter_map(|g| g.org_path.clone().map(OrgPath::from_stored))
            .collect()
    }

    /// The subtrees the actor manages: `None` means everything (admin);
    /// otherwise each coordinator grant's subtree.
    pub fn managed_scopes(&self) -> Option<Vec<OrgPath>> {
        if self.is_admin() {
            None
        } else {
            Some(self.scopes(Role::Coordinator))
        }
    }

    /// Whether the actor manages the unit at `path`: an admin, or a
    /// coordinator of it or of an ancestor.
    pub fn manages(&self, path: &OrgPath) -> bool {
        match self.managed_scopes() {
            None => true,
            Some(scopes) => scopes.iter().any(|s| path.is_within(s)),
        }
    }

    /// Whether the actor may read the unit at `path`: it manages it, or it
    /// is the unit a liaison, volunteer or requester grant is bound to.
    pub fn reads_org(&self, path: &OrgPath) -> bool {
        self.manages(path)
            || self
                .grants
                .iter()
                .filter(|g| g.role() != Some(Role::Coordinator))
                .any(|g| g.org_path.as_deref() == Some(path.as_str()))
    }
}

fn cookie_token(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
}

fn bearer_token(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl FromRequestParts<AppState> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state, None).await
    }
}

/// The actor behind a request whose CSRF token may also come in a form
/// field (`_csrf`) of an HTML form, which cannot set headers. The token must
/// match the session's exactly as the header would; `form_token` is `None`
/// when the body carries none. Used by the web pages' POST handlers.
///
/// # Errors
/// As the [`Actor`] extractor: 401 without a live session, 403
/// `csrf_failed` when a cookie-authenticated unsafe request proves nothing.
pub async fn actor_with_form_token(
    parts: &Parts,
    state: &AppState,
    form_token: Option<&str>,
) -> Result<Actor, ApiError> {
    authenticate(parts, state, form_token).await
}

async fn authenticate(
    parts: &Parts,
    state: &AppState,
    form_token: Option<&str>,
) -> Result<Actor, ApiError> {
    let (token, via_cookie) = match bearer_token(parts) {
        Some(t) => (t, false),
        None => (
            cookie_token(parts).ok_or_else(ApiError::unauthenticated)?,
            true,
        ),
    };
    let token_hash = sha256_hex(&token);
    let now = state.clock.now();
    let session = state
        .store
        .session(&token_hash, now.epoch_ms())
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "session_expired",
                "your session has ended; sign in again",
            )
        })?;
    if via_cookie && !is_safe(&parts.method) {
        let sent = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .or(form_token)
            .unwrap_or("");
        if sent.is_empty() || !constant_time_eq(sent.as_bytes(), session.csrf_token.as_bytes()) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf_failed",
                "missing or wrong X-CSRF-Token header; reload the page and try again",
            ));
        }
    }
    let user = state
        .store
        .user(session.user_id)
        .await?
        .ok_or_else(ApiError::unauthenticated)?;
    let grants = state.store.grants(user.id).await?;
    Ok(Actor {
        user,
        grants,
        token_hash,
        csrf_token: session.csrf_token,
    })
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// TOTP (RFC 6238: SHA-1, 6 digits, 30 s steps, ±1 step of skew) checked
/// against the injected clock.
pub fn totp_matches(secret_b32: &str, code: &str, now: Timestamp) -> bool {
    let Ok(secret) = totp_rs::Secret::try_from_base32(secret_b32) else {
        return false;
    };
    let Ok(totp) = totp_rs::Builder::new().with_secret(secret).build() else {
        return false;
    };
    let secs = u64::try_from(now.epoch_ms() / 1000).unwrap_or(0);
    totp.check(code.trim(), secs).is_some()
}

/// The current TOTP code for a secret (used by tests and the setup check).
pub fn totp_code(secret_b32: &str, now: Timestamp) -> Option<String> {
    let secret = totp_rs::Secret::try_from_base32(secret_b32).ok()?;
    let totp = totp_rs::Builder::new().with_secret(secret).build().ok()?;
    Some(
        totp.generate(u64::try_from(now.epoch_ms() / 1000).unwrap_or(0))
            .to_string(),
    )
}

/// A fresh 160-bit TOTP secret in base32 (RFC 4226 recommends 160 bits).
pub fn new_totp_secret() -> String {
    let bytes: [u8; 20] = rand::random();
    totp_rs::Secret::from(bytes).to_base32()
}
