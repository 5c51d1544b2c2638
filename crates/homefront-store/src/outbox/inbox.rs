//! The in-app inbox and each user's notification preferences.

use homefront_domain::notify::EventKind;
use serde::Serialize;
use sqlx::AnyConnection;

use crate::decode::{Flag, Text};
use crate::{Result, Store, flag};

/// A message placed in a user's inbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct Notification {
    /// Row id.
    pub id: i64,
    /// Event kind, e.g. `offer_made`.
    #[sqlx(try_from = "Text")]
    #[schema(value_type = String)]
    pub kind: EventKind,
    /// The order, if any.
    pub order_id: Option<i64>,
    /// Title in the recipient's language.
    pub title: String,
    /// Body (Markdown) in the recipient's language.
    pub body: String,
    /// When, epoch ms.
    pub created_at: i64,
    /// When read, epoch ms; `None` while unread.
    pub read_at: Option<i64>,
}

/// A user's notification choices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Preferences {
    /// Put notices in the in-app inbox (default on).
    #[sqlx(try_from = "Flag")]
    pub inbox: bool,
    /// While off duty, hear of no new offers (default on).
    #[sqlx(try_from = "Flag")]
    pub mute_offers_off_duty: bool,
    /// A personal Standard Webhooks endpoint.
    pub webhook_url: Option<String>,
    /// Its `whsec_` secret (never returned by the API).
    #[serde(skip)]
    pub webhook_secret: Option<String>,
}

impl Default for Preferences {
    fn default() -> Self {
        Self {
            inbox: true,
            mute_offers_off_duty: true,
            webhook_url: None,
            webhook_secret: None,
        }
    }
}

/// A user's preferences read on `conn` (the defaults when never set).
pub(super) async fn preferences_in(conn: &mut AnyConnection, user: i64) -> Result<Preferences> {
    let row: Option<Preferences> = sqlx::query_as(
        "select inbox, mute_offers_off_duty, webhook_url, webhook_secret
         from notification_preference where user_id = $1",
    )
    .bind(user)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.unwrap_or_default())
}

impl Store {
    /// A user's inbox, newest first: at most `limit` notices older than
    /// `before_id` (all when `None`).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn inbox(
        &self,
        user: i64,
        unread_only: bool,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Notification>> {
        Ok(sqlx::query_as(
            "select id, kind, order_id, title, body, created_at, read_at from notification
             where user_id = $1 and ($2 = 0 or read_at is null) and id < $3
             order by id desc limit $4",
        )
        .bind(user)
        .bind(flag(unread_only))
        .bind(before_id.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Notices in a user's inbox, read or not.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn inbox_count(&self, user: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "select cast(count(*) as bigint) from notification where user_id = $1",
        )
        .bind(user)
        .fetch_one(self.pool())
        .await?)
    }

    /// Unread notices of a user.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn unread_count(&self, user: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "select cast(count(*) as bigint) from notification where user_id = $1 and read_at is null",
        )
        .bind(user)
        .fetch_one(self.pool())
        .await?)
    }

    /// Marks notice `id` of `user` read; `false` when it is not theirs.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn mark_read(&self, user: i64, id: i64, now_ms: i64) -> Result<bool> {
        let exists: Option<i64> =
            sqlx::query_scalar("select id from notification where id = $1 and user_id = $2")
                .bind(id)
                .bind(user)
                .fetch_optional(self.pool())
                .await?;
        if exists.is_none() {
            return Ok(false);
        }
        let mut tx = self.begin_write().await?;
        sqlx::query("update notification set read_at = $1 where id = $2 and read_at is null")
            .bind(now_ms)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Marks every notice of `user` read; returns how many changed.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn mark_all_read(&self, user: i64, now_ms: i64) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "update notification set read_at = $1 where user_id = $2 and read_at is null",
        )
        .bind(now_ms)
        .bind(user)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// A user's preferences (the defaults when never set).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn notification_preferences(&self, user: i64) -> Result<Preferences> {
        let mut conn = self.pool().acquire().await?;
        preferences_in(&mut conn, user).await
    }

    /// Replaces a user's preferences.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn set_notification_preferences(
        &self,
        user: i64,
        p: &Preferences,
        now_ms: i64,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "insert into notification_preference (user_id, inbox, mute_offers_off_duty, webhook_url,
                webhook_secret, updated_at)
             values ($1, $2, $3, $4, $5, $6)
             on conflict (user_id) do update set inbox = excluded.inbox,
                mute_offers_off_duty = excluded.mute_offers_off_duty,
                webhook_url = excluded.webhook_url, webhook_secret = excluded.webhook_secret,
                updated_at = excluded.updated_at",
        )
        .bind(user)
        .bind(flag(p.inbox))
        .bind(flag(p.mute_offers_off_duty))
        .bind(&p.webhook_url)
        .bind(&p.webhook_secret)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
