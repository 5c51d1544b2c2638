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
/// Shortest password accepted, in characters. NIST SP 800-63B §5.1.1.2
/// asks for at least 8; 10 leaves room for a passphrase people remember.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// Longest password accepted, in characters (NIST SP 800-63B asks for at
/// least 64).
pub const MAX_PASSWORD_CHARS: usize = 256;

/// The least zxcvbn score a password must reach: 3, "safely unguessable"
/// (more than 10^8 guesses), as zxcvbn's authors recommend.
pub const MIN_PASSWORD_SCORE: zxcvbn::Score = zxcvbn::Score::Three;

/// Argon2 computations running at once: one per core. Each holds 19 MiB
/// while it runs, so a storm of sign-ins queues here instead of growing
/// the process by 19 MiB per request (40 at once took it to 846 MB); the
/// memory in use stays at cores × 19 MiB and the CPU is kept busy.
static HASHERS: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(1, usize::from))
});

/// Runs an Argon2 computation on the blocking pool once a [`HASHERS`]
/// permit is free.
async fn with_hasher<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let _permit = HASHERS.acquire().await.ok()?;
    tokio::task::spawn_blocking(work).await.ok()
}

/// Hashes `password` with Argon2id (default parameters of the `argon2`
/// crate: m = 19 MiB, t = 2, p = 1, per OWASP's password storage guidance)
/// on the blocking pool, at most one per core at once, so the async
/// runtime keeps serving and memory stays bounded.
///
/// # Errors
/// Internal error when hashing fails (out of memory).
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    with_hasher(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(ApiError::internal)
    })
    .await
    .ok_or_else(|| ApiError::internal("password hashing was interrupted"))?
}

/// Checks `password` against a stored PHC string on the blocking pool,
/// at most one per core at once (as [`hash_password`]). A malformed stored
/// hash counts as a mismatch.
pub async fn verify_password(password: String, stored: String) -> bool {
    with_hasher(move || {
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

/// Checks a new password, as typed (nothing is trimmed): from
/// [`MIN_PASSWORD_CHARS`] to [`MAX_PASSWORD_CHARS`] characters, and not
/// guessable: zxcvbn (Dropbox's estimator, its Rust port, with its lists of
/// common passwords, names and words, keyboard patterns, repeats and
/// sequences) must give it at least [`MIN_PASSWORD_SCORE`]. `user_inputs`
/// (the account's phone number and name) count as known to an attacker.
///
/// # Errors
/// 422 on field `field`: `weak_password` (too short), `password_too_long`,
/// or `common_password` with zxcvbn's warning and suggestions.
pub fn check_password_strength(
    field: &str,
    password: &str,
    user_inputs: &[&str],
) -> Result<(), ApiError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(ApiError::invalid(
            field,
            "weak_password",
            format!("password must have at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(ApiError::invalid(
            field,
            "password_too_long",
            format!("password must have at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    let estimate = zxcvbn::zxcvbn(password, user_inputs);
    if estimate.score() < MIN_PASSWORD_SCORE {
        let advice = estimate
            .feedback()
            .map(ToString::to_string)
            .filter(|a| !a.trim().is_empty())
            .unwrap_or_else(|| "Add another word or two.".into());
        return Err(ApiError::invalid(
            field,
            "common_password",
            format!("this password is too easy to guess. {advice}"),
        ));
    }
    Ok(())
}

/// What an attacker knows of an account, for [`check_password_strength`]:
/// the phone as stored (E.164), its national digits, and the name.
pub fn personal_inputs<'a>(phone_e164: &'a str, name: &'a str) -> [&'a str; 3] {
    let national = phone_e164.strip_prefix("+86").unwrap_or(phone_e164);
    [phone_e164, national, name]
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
        self.grants.iter().any(|g| g.role == role)
    }

    /// Whether the actor is an admin.
    pub fn is_admin(&self) -> bool {
        self.has(Role::Admin)
    }

    /// Paths of the units bound to grants of `role`.
    pub fn scopes(&self, role: Role) -> Vec<OrgPath> {
        self.grants
            .iter()
            .filter(|g| g.role == role)
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

    /// Whether the actor may administer the account holding `grants`: set
    /// its password, add or revoke its roles, attach it to a team. Admins
    /// administer everyone; a coordinator only an account whose every role
    /// lies inside its area and below its level
    /// ([`homefront_domain::role::coordinator_administers`]). Seeing an
    /// account (one of its grants in the area) is not enough.
    pub fn administers(&self, grants: &[Grant]) -> bool {
        if self.is_admin() {
            return true;
        }
        let grants: Vec<(Option<Role>, Option<OrgPath>)> = grants
            .iter()
            .map(|g| (Some(g.role), g.org_path.clone().map(OrgPath::from_stored)))
            .collect();
        homefront_domain::role::coordinator_administers(&self.scopes(Role::Coordinator), &grants)
    }

    /// Whether the actor may read the unit at `path`: it manages it, or it
    /// is the unit a liaison, volunteer or requester grant is bound to.
    pub fn reads_org(&self, path: &OrgPath) -> bool {
        self.manages(path)
            || self
                .grants
                .iter()
                .filter(|g| g.role != Role::Coordinator)
                .any(|g| g.org_path.as_deref() == Some(path.as_str()))
    }
}

/// 403 `account_outside_area`: the account is visible to the coordinator
/// but holds a role outside its area or at its level (see
/// [`Actor::administers`]), so only an admin may change it.
pub fn account_outside_area() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "account_outside_area",
        "this account holds a role outside your area or at your level; ask an admin to change it",
    )
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
    // Session, account and grants in one query.
    let (session, user, grants) = state
        .store
        .session_with_user(&token_hash, now.epoch_ms())
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
    Ok(Actor {
        user,
        grants,
        token_hash,
        csrf_token: session.csrf_token,
    })
}

/// Refuses a sign-in posted from another site (login CSRF: a page
/// elsewhere signing the browser into the attacker's account, so that what
/// the victim then types lands there). A browser says where a request comes
/// from: `Sec-Fetch-Site` must be `same-origin` or `none` (typed, a
/// bookmark); a browser without it sends `Origin`, which must name this
/// host. Clients that send neither (curl, apps) are not browsers and cannot
/// be driven by another site.
///
/// # Errors
/// 403 `cross_site_request`.
pub fn check_same_origin(headers: &header::HeaderMap) -> Result<(), ApiError> {
    let refused = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_site_request",
            "this sign-in came from another site; open Homefront's own sign-in page and sign in there",
        )
    };
    let text = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or(""));
    if let Some(site) = text("sec-fetch-site") {
        return if matches!(site, "same-origin" | "none") {
            Ok(())
        } else {
            Err(refused())
        };
    }
    let Some(origin) = text("origin") else {
        return Ok(());
    };
    let authority = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'));
    let host = text("host");
    match (authority, host) {
        (Some(a), Some(h)) if !h.is_empty() && a.eq_ignore_ascii_case(h) => Ok(()),
        _ => Err(refused()),
    }
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

#[cfg(test)]
mod password_tests {
    use super::check_password_strength;

    #[test]
    fn common_short_and_personal_passwords_are_refused() {
        let code = |pw: &str| {
            check_password_strength("password", pw, &["+8613800138000", "张伟"])
                .err()
                .map(|e| e.code)
        };
        for weak in ["12345678", "password", "        ", "homefront"] {
            assert_eq!(code(weak), Some("weak_password"), "{weak:?}");
        }
        for common in [
            "1234567890",
            "password123",
            "qwertyuiop",
            "          ",
            "aaaaaaaaaaaa",
            "iloveyou12",
            "13800138000",
            "+8613800138000",
        ] {
            assert_eq!(code(common), Some("common_password"), "{common:?}");
        }
        for strong in [
            "correct horse battery",
            "a new long password",
            "夜班护士也要按时吃上热饭",
            "Zhongda-night-2020!",
        ] {
            assert_eq!(code(strong), None, "{strong:?}");
        }
        assert_eq!(code(&"x7#".repeat(100)), Some("password_too_long"));
    }
}
