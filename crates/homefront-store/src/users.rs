//! Accounts and role grants.

use homefront_domain::{PhoneNumber, Role};
use serde::Serialize;

use homefront_domain::locale::Locale;

use crate::decode::{Flag, Text};
use crate::{Result, Store, StoreError, flag};

/// An account as stored, without secrets.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct User {
    /// Row id.
    pub id: i64,
    /// E.164 phone number, the login name.
    pub phone: String,
    /// Name shown to others (any script, stored as given).
    pub display_name: String,
    /// `zh-CN` or `en`.
    #[sqlx(try_from = "Text")]
    #[schema(value_type = String)]
    pub locale: Locale,
    /// Whether TOTP is required at login (stored 0/1; a boolean in JSON).
    #[sqlx(try_from = "Flag")]
    pub totp_enabled: bool,
    /// Whether the account is disabled (stored 0/1; a boolean in JSON).
    #[sqlx(try_from = "Flag")]
    pub disabled: bool,
    /// Creation instant, epoch ms.
    pub created_at: i64,
}

/// The secrets needed at login.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Credentials {
    /// Row id.
    pub id: i64,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Base32 TOTP secret, when set up.
    pub totp_secret: Option<String>,
    /// Whether TOTP is required at login.
    #[sqlx(try_from = "Flag")]
    pub totp_enabled: bool,
    /// Whether the account is disabled.
    #[sqlx(try_from = "Flag")]
    pub disabled: bool,
}

/// A role bound (where the role needs it) to an organisation unit, with
/// that unit's path for scope checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct Grant {
    /// Row id.
    pub id: i64,
    /// The user holding it.
    pub user_id: i64,
    /// Role name (see [`Role`]).
    #[sqlx(try_from = "Text")]
    #[schema(value_type = String)]
    pub role: Role,
    /// The bound unit, if any.
    pub org_unit_id: Option<i64>,
    /// The bound unit's path, if any.
    pub org_path: Option<String>,
}

const USER_COLUMNS: &str = "id, phone, display_name, locale, totp_enabled, disabled, created_at";

impl Store {
    /// Creates an account with an already-hashed password.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the phone number is taken.
    #[tracing::instrument(skip_all)]
    pub async fn create_user(
        &self,
        phone: &PhoneNumber,
        display_name: &str,
        password_hash: &str,
        locale: Locale,
        now_ms: i64,
    ) -> Result<User> {
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "insert into app_user (phone, display_name, password_hash, locale, created_at)
             values ($1, $2, $3, $4, $5) returning id",
        )
        .bind(phone.as_str())
        .bind(display_name)
        .bind(password_hash)
        .bind(locale.as_str())
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        self.user(id)
            .await?
            .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }

    /// One account by id.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn user(&self, id: i64) -> Result<Option<User>> {
        let sql = format!("select {USER_COLUMNS} from app_user where id = $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    /// One account by E.164 phone.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn user_by_phone(&self, phone: &PhoneNumber) -> Result<Option<User>> {
        let sql = format!("select {USER_COLUMNS} from app_user where phone = $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(phone.as_str())
            .fetch_optional(self.pool())
            .await?)
    }

    /// Login secrets for a phone.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn credentials_by_phone(&self, phone: &PhoneNumber) -> Result<Option<Credentials>> {
        Ok(sqlx::query_as(
            "select id, password_hash, totp_secret, totp_enabled, disabled from app_user where phone = $1",
        )
        .bind(phone.as_str())
        .fetch_optional(self.pool())
        .await?)
    }

    /// Login secrets for a user id.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn credentials(&self, user_id: i64) -> Result<Option<Credentials>> {
        Ok(sqlx::query_as(
            "select id, password_hash, totp_secret, totp_enabled, disabled from app_user where id = $1",
        )
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Replaces the password hash.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn set_password_hash(&self, user_id: i64, hash: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("update app_user set password_hash = $1 where id = $2")
            .bind(hash)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores a TOTP secret (pending until enabled) or enables it.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn set_totp(&self, user_id: i64, secret: Option<&str>, enabled: bool) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("update app_user set totp_secret = $1, totp_enabled = $2 where id = $3")
            .bind(secret)
            .bind(flag(enabled))
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets the preferred language.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn set_locale(&self, user_id: i64, locale: Locale) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("update app_user set locale = $1 where id = $2")
            .bind(locale.as_str())
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Grants `role` bound to `org_unit_id`. Granting the same again is a no-op
    /// that returns the existing grant.
    ///
    /// # Errors
    /// [`StoreError::MissingReference`] for an unknown user or unit.
    #[tracing::instrument(skip_all)]
    pub async fn grant_role(
        &self,
        user_id: i64,
        role: Role,
        org_unit_id: Option<i64>,
        now_ms: i64,
    ) -> Result<Grant> {
        let mut tx = self.begin_write().await?;
        let existing: Option<i64> = sqlx::query_scalar(
            "select id from role_grant where user_id = $1 and role = $2
             and (org_unit_id = $3 or (org_unit_id is null and $4 = 1))",
        )
        .bind(user_id)
        .bind(role.as_str())
        .bind(org_unit_id)
        .bind(flag(org_unit_id.is_none()))
        .fetch_optional(&mut *tx)
        .await?;
        let id = match existing {
            Some(id) => id,
            None => {
                sqlx::query_scalar(
                    "insert into role_grant (user_id, role, org_unit_id, created_at)
                 values ($1, $2, $3, $4) returning id",
                )
                .bind(user_id)
                .bind(role.as_str())
                .bind(org_unit_id)
                .bind(now_ms)
                .fetch_one(&mut *tx)
                .await?
            }
        };
        tx.commit().await?;
        let grants = self.grants(user_id).await?;
        grants
            .into_iter()
            .find(|g| g.id == id)
            .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }

    /// Removes a grant of `user_id`; returns whether one was removed.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn revoke_grant(&self, user_id: i64, grant_id: i64) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query("delete from role_grant where id = $1 and user_id = $2")
            .bind(grant_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    /// A user's grants with their units' paths.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn grants(&self, user_id: i64) -> Result<Vec<Grant>> {
        Ok(sqlx::query_as(
            "select g.id, g.user_id, g.role, g.org_unit_id, o.path as org_path
             from role_grant g left join org_unit o on o.id = g.org_unit_id
             where g.user_id = $1 order by g.id",
        )
        .bind(user_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Several users at once (names for a page's log and lists), by id;
    /// unknown ids are left out. Binds one parameter per id: callers pass
    /// a page's worth (hundreds), not thousands.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn users_by_ids(&self, user_ids: &[i64]) -> Result<Vec<User>> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let slots: Vec<String> = (1..=user_ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "select {USER_COLUMNS} from app_user where id in ({}) order by id",
            slots.join(", ")
        );
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for id in user_ids {
            q = q.bind(*id);
        }
        Ok(q.fetch_all(self.pool()).await?)
    }

    /// The grants of several users at once (a list page's roles column),
    /// ordered by user and grant id.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn grants_of(&self, user_ids: &[i64]) -> Result<Vec<Grant>> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let slots: Vec<String> = (1..=user_ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "select g.id, g.user_id, g.role, g.org_unit_id, o.path as org_path
             from role_grant g left join org_unit o on o.id = g.org_unit_id
             where g.user_id in ({}) order by g.user_id, g.id",
            slots.join(", ")
        );
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for id in user_ids {
            q = q.bind(*id);
        }
        Ok(q.fetch_all(self.pool()).await?)
    }

    /// Users holding at least one grant bound inside one of `scopes`
    /// (`None`: all users), optionally only those with `role`.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn users_in_scope(
        &self,
        scopes: Option<&[String]>,
        role: Option<Role>,
    ) -> Result<Vec<User>> {
        let cols = USER_COLUMNS
            .split(", ")
            .map(|c| format!("u.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut sql = format!(
            "select distinct {cols} from app_user u
             left join role_grant g on g.user_id = u.id
             left join org_unit o on o.id = g.org_unit_id where 1 = 1"
        );
        let mut binds: Vec<String> = Vec::new();
        if let Some(scopes) = scopes {
            if scopes.is_empty() {
                return Ok(Vec::new());
            }
            let clauses: Vec<String> = scopes
                .iter()
                .map(|s| {
                    binds.push(format!("{s}%"));
                    format!("o.path like ${}", binds.len())
                })
                .collect();
            sql.push_str(&format!(" and ({})", clauses.join(" or ")));
        }
        if let Some(role) = role {
            binds.push(role.as_str().to_string());
            sql.push_str(&format!(" and g.role = ${}", binds.len()));
        }
        sql.push_str(" order by u.id");
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = q.bind(b);
        }
        Ok(q.fetch_all(self.pool()).await?)
    }
}
