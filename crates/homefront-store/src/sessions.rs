//! Login sessions and the login-attempt log used for throttling.

use homefront_domain::Role;
use homefront_domain::locale::Locale;

use crate::decode::{Flag, OptText, Text};
use crate::users::{Grant, User};
use crate::{Result, Store, flag};

/// A live session, found by the SHA-256 of its token.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Session {
    /// Row id.
    pub id: i64,
    /// The signed-in user.
    pub user_id: i64,
    /// Per-session CSRF token that cookie-authenticated unsafe requests echo.
    pub csrf_token: String,
    /// Expiry instant, epoch ms.
    pub expires_at: i64,
}

impl Store {
    /// Stores a new session.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        csrf_token: &str,
        now_ms: i64,
        expires_at: i64,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "insert into user_session (token_hash, user_id, csrf_token, created_at, expires_at)
             values ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(csrf_token)
        .bind(now_ms)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The unexpired session with this token hash.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn session(&self, token_hash: &str, now_ms: i64) -> Result<Option<Session>> {
        Ok(sqlx::query_as(
            "select s.id, s.user_id, s.csrf_token, s.expires_at from user_session s
             join app_user u on u.id = s.user_id
             where s.token_hash = $1 and s.expires_at > $2 and u.disabled = 0",
        )
        .bind(token_hash)
        .bind(now_ms)
        .fetch_optional(self.pool())
        .await?)
    }

    /// The unexpired session with this token hash, its (enabled) account
    /// and the account's grants, in one query: what authenticating a
    /// request needs.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn session_with_user(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<(Session, User, Vec<Grant>)>> {
        // One row per grant (one row with null grant columns when none).
        let rows: Vec<SessionUserRow> = sqlx::query_as(
            "select s.id, s.user_id, s.csrf_token, s.expires_at, u.phone, u.display_name, u.locale,
                u.totp_enabled, u.disabled, u.created_at, g.id as grant_id, g.role,
                g.org_unit_id, o.path as org_path
             from user_session s
             join app_user u on u.id = s.user_id
             left join role_grant g on g.user_id = u.id
             left join org_unit o on o.id = g.org_unit_id
             where s.token_hash = $1 and s.expires_at > $2 and u.disabled = 0
             order by g.id",
        )
        .bind(token_hash)
        .bind(now_ms)
        .fetch_all(self.pool())
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let session = Session {
            id: first.id,
            user_id: first.user_id,
            csrf_token: first.csrf_token.clone(),
            expires_at: first.expires_at,
        };
        let user = User {
            id: first.user_id,
            phone: first.phone.clone(),
            display_name: first.display_name.clone(),
            locale: first.locale,
            totp_enabled: first.totp_enabled,
            disabled: first.disabled,
            created_at: first.created_at,
        };
        let grants = rows
            .into_iter()
            .filter_map(|r| {
                Some(Grant {
                    id: r.grant_id?,
                    user_id: r.user_id,
                    role: r.role?,
                    org_unit_id: r.org_unit_id,
                    org_path: r.org_path,
                })
            })
            .collect();
        Ok(Some((session, user, grants)))
    }

    /// Ends a session (logout).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("delete from user_session where token_hash = $1")
            .bind(token_hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Ends every session of a user (password change, account disabled).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn delete_user_sessions(&self, user_id: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("delete from user_session where user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Tells every other instance (PostgreSQL: `pg_notify` on
    /// [`crate::outbox::LIVE_CHANNEL`], `{"accounts":[3]}`) that these
    /// accounts' sessions, roles or standing changed, so their live streams
    /// check again whether they may go on. A no-op on SQLite, where one
    /// instance owns the database.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn announce_accounts(&self, user_ids: &[i64]) -> Result<()> {
        if self.backend() != crate::Backend::Postgres || user_ids.is_empty() {
            return Ok(());
        }
        let payload = serde_json::json!({ "accounts": user_ids }).to_string();
        sqlx::query("select pg_notify($1, $2)")
            .bind(crate::outbox::LIVE_CHANNEL)
            .bind(payload)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Deletes expired sessions and login attempts older than `attempts_before`.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn prune_sessions(&self, now_ms: i64, attempts_before: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("delete from user_session where expires_at <= $1")
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        sqlx::query("delete from login_attempt where at < $1")
            .bind(attempts_before)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a login attempt. `phone` is the normalised number, or the raw
    /// text's hash when it did not parse (so garbage is throttled too without
    /// storing it).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn record_login_attempt(
        &self,
        phone: &str,
        ip: &str,
        succeeded: bool,
        now_ms: i64,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("insert into login_attempt (phone, ip, succeeded, at) values ($1, $2, $3, $4)")
            .bind(phone)
            .bind(ip)
            .bind(flag(succeeded))
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The sign-in history that throttling reads, since `since_ms`: the
    /// failures of this (phone, ip) pair after its last success, the
    /// failures of the phone from any address, and the accounts that failed
    /// from this address. Epoch ms throughout.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn failed_logins_since(
        &self,
        phone: &str,
        ip: &str,
        since_ms: i64,
    ) -> Result<FailedLogins> {
        // A success from the pair forgives its earlier failures: the person
        // remembered the password.
        let (by_pair, last_pair): (i64, Option<i64>) = sqlx::query_as(
            "select cast(count(*) as bigint), cast(max(at) as bigint) from login_attempt
             where phone = $1 and ip = $2 and succeeded = 0 and at >= $3
               and at > coalesce((select max(s.at) from login_attempt s
                                  where s.phone = $1 and s.ip = $2 and s.succeeded = 1), -1)",
        )
        .bind(phone)
        .bind(ip)
        .bind(since_ms)
        .fetch_one(self.pool())
        .await?;
        let (by_phone, oldest_phone): (i64, Option<i64>) = sqlx::query_as(
            "select cast(count(*) as bigint), cast(min(at) as bigint) from login_attempt
             where phone = $1 and succeeded = 0 and at >= $2",
        )
        .bind(phone)
        .bind(since_ms)
        .fetch_one(self.pool())
        .await?;
        // Distinct accounts, not attempts: one person mistyping many times
        // behind a hospital's shared address must not lock out colleagues.
        let (phones_by_ip, oldest_ip): (i64, Option<i64>) = sqlx::query_as(
            "select cast(count(distinct phone) as bigint), cast(min(at) as bigint) from login_attempt
             where ip = $1 and succeeded = 0 and at >= $2",
        )
        .bind(ip)
        .bind(since_ms)
        .fetch_one(self.pool())
        .await?;
        Ok(FailedLogins {
            by_pair,
            last_pair,
            by_phone,
            oldest_phone,
            phones_by_ip,
            oldest_ip,
        })
    }

    /// Forgets the failed sign-ins of `phone` (E.164) from every address,
    /// lifting its back-off and ceiling; returns how many were forgotten.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn clear_failed_logins(&self, phone: &str) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("delete from login_attempt where phone = $1 and succeeded = 0")
            .bind(phone)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }
}

#[derive(sqlx::FromRow)]
struct SessionUserRow {
    id: i64,
    user_id: i64,
    csrf_token: String,
    expires_at: i64,
    phone: String,
    display_name: String,
    #[sqlx(try_from = "Text")]
    locale: Locale,
    #[sqlx(try_from = "Flag")]
    totp_enabled: bool,
    #[sqlx(try_from = "Flag")]
    disabled: bool,
    created_at: i64,
    grant_id: Option<i64>,
    #[sqlx(try_from = "OptText")]
    role: Option<Role>,
    org_unit_id: Option<i64>,
    org_path: Option<String>,
}

/// Counts of recent failed sign-ins (see [`Store::failed_logins_since`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct FailedLogins {
    /// Failures of this (phone, address) pair since its last success.
    pub by_pair: i64,
    /// The latest of them, epoch ms.
    pub last_pair: Option<i64>,
    /// Failures for this phone from any address.
    pub by_phone: i64,
    /// Oldest such failure, epoch ms.
    pub oldest_phone: Option<i64>,
    /// Distinct phones that failed from this address.
    pub phones_by_ip: i64,
    /// Oldest failure from this address, epoch ms.
    pub oldest_ip: Option<i64>,
}
