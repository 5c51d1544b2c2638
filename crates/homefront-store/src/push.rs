//! Web Push subscriptions (RFC 8030) and the server's VAPID key (RFC 8292).
//!
//! A subscription is one browser of one account: the push service's
//! endpoint and the keys messages are encrypted to (RFC 8291). It belongs to
//! the session that made it (`user_session` row): when the session ends, the
//! foreign key clears `session_id` and the subscription gets nothing more,
//! so signing out (or out everywhere) silences the phone at once. The same
//! browser subscribing again (same endpoint) takes the row over.

use serde::Serialize;

use crate::{Result, Store};

/// A browser's push subscription, as its owner sees it (never the keys).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PushSubscription {
    /// Row id.
    pub id: i64,
    /// The account.
    pub user_id: i64,
    /// The push service's URL (a capability: shown only to its owner).
    pub endpoint: String,
    /// What the browser calls itself, e.g. `Chrome on Android`.
    pub label: Option<String>,
    /// Subscribed (or last renewed), epoch ms.
    pub updated_at: i64,
    /// Whether messages go to it now: not ended, and its session is live.
    pub active: bool,
    /// Last message the push service accepted, epoch ms.
    pub last_delivered_at: Option<i64>,
    /// The last failure, e.g. `HTTP 410` (the browser dropped it).
    pub last_error: Option<String>,
}

#[derive(sqlx::FromRow)]
struct SubscriptionRow {
    id: i64,
    user_id: i64,
    endpoint: String,
    label: Option<String>,
    updated_at: i64,
    active: i64,
    last_delivered_at: Option<i64>,
    last_error: Option<String>,
}

impl From<SubscriptionRow> for PushSubscription {
    fn from(r: SubscriptionRow) -> Self {
        PushSubscription {
            id: r.id,
            user_id: r.user_id,
            endpoint: r.endpoint,
            label: r.label,
            updated_at: r.updated_at,
            active: r.active == 1,
            last_delivered_at: r.last_delivered_at,
            last_error: r.last_error,
        }
    }
}

/// Where and how to send one push message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushTarget {
    /// Row id.
    pub id: i64,
    /// The push service's URL.
    pub endpoint: String,
    /// base64url of the browser's P-256 public key (65 bytes, uncompressed).
    pub p256dh: String,
    /// base64url of the browser's 16-byte authentication secret.
    pub auth: String,
    /// Whether it still takes messages (not ended, session live).
    pub active: bool,
}

#[derive(sqlx::FromRow)]
struct TargetRow {
    id: i64,
    endpoint: String,
    p256dh: String,
    auth: String,
    active: i64,
}

/// A new or renewed subscription.
#[derive(Clone, Debug)]
pub struct NewSubscription<'a> {
    /// The account.
    pub user_id: i64,
    /// SHA-256 (hex) of the subscribing session's token.
    pub session_token_hash: &'a str,
    /// The push service's URL.
    pub endpoint: &'a str,
    /// base64url P-256 public key of the browser.
    pub p256dh: &'a str,
    /// base64url authentication secret.
    pub auth: &'a str,
    /// Browser label.
    pub label: Option<&'a str>,
}

/// The columns of [`PushSubscription`]; `$N` is "now".
fn view_columns(now: &str) -> String {
    format!(
        "s.id, s.user_id, s.endpoint, s.label, s.updated_at,
         case when s.ended_at is null and exists (select 1 from user_session us
             where us.id = s.session_id and us.expires_at > {now}) then 1 else 0 end as active,
         s.last_delivered_at, s.last_error"
    )
}

impl Store {
    /// Saves a subscription for `s.user_id` under the session, or takes over
    /// the row of the same endpoint (a browser re-subscribing, or another
    /// account signing in on the same phone).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn upsert_push_subscription(
        &self,
        s: &NewSubscription<'_>,
        now_ms: i64,
    ) -> Result<PushSubscription> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "insert into push_subscription (user_id, session_id, endpoint, p256dh, auth, label,
                created_at, updated_at)
             values ($1, (select id from user_session where token_hash = $2), $3, $4, $5, $6, $7, $7)
             on conflict (endpoint) do update set user_id = excluded.user_id,
                session_id = excluded.session_id, p256dh = excluded.p256dh, auth = excluded.auth,
                label = excluded.label, updated_at = excluded.updated_at, ended_at = null,
                last_error = null",
        )
        .bind(s.user_id)
        .bind(s.session_token_hash)
        .bind(s.endpoint)
        .bind(s.p256dh)
        .bind(s.auth)
        .bind(s.label)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        let sql = format!(
            "select {} from push_subscription s where s.endpoint = $1",
            view_columns("$2")
        );
        let row: SubscriptionRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(s.endpoint)
            .bind(now_ms)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(row.into())
    }

    /// The subscriptions of `user` that have not ended, newest first.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn push_subscriptions_of(
        &self,
        user: i64,
        now_ms: i64,
    ) -> Result<Vec<PushSubscription>> {
        let sql = format!(
            "select {} from push_subscription s where s.user_id = $1 and s.ended_at is null
             order by s.updated_at desc, s.id desc",
            view_columns("$2")
        );
        let rows: Vec<SubscriptionRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(user)
            .bind(now_ms)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Ends subscription `id` of `user` (unsubscribed). Returns whether it
    /// was theirs and still open.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn end_push_subscription(&self, user: i64, id: i64, now_ms: i64) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let ended = sqlx::query(
            "update push_subscription set ended_at = $1, session_id = null
             where id = $2 and user_id = $3 and ended_at is null",
        )
        .bind(now_ms)
        .bind(id)
        .bind(user)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        tx.commit().await?;
        Ok(ended)
    }

    /// The endpoint and keys of subscription `id`, with whether it still
    /// takes messages at `now_ms`.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn push_target(&self, id: i64, now_ms: i64) -> Result<Option<PushTarget>> {
        let row: Option<TargetRow> = sqlx::query_as(
            "select s.id, s.endpoint, s.p256dh, s.auth,
                case when s.ended_at is null and exists (select 1 from user_session us
                    where us.id = s.session_id and us.expires_at > $2) then 1 else 0 end as active
             from push_subscription s where s.id = $1",
        )
        .bind(id)
        .bind(now_ms)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| PushTarget {
            id: r.id,
            endpoint: r.endpoint,
            p256dh: r.p256dh,
            auth: r.auth,
            active: r.active == 1,
        }))
    }

    /// Records a push service's answer to a message for subscription `id`:
    /// success, a failure to retry, or `gone` (404/410: the browser dropped
    /// the subscription, which then ends).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn record_push_result(
        &self,
        id: i64,
        error: Option<&str>,
        gone: bool,
        now_ms: i64,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "update push_subscription set
                last_delivered_at = case when $1 is null then $2 else last_delivered_at end,
                last_error = $1,
                ended_at = case when $3 = 1 and ended_at is null then $2 else ended_at end
             where id = $4",
        )
        .bind(error)
        .bind(now_ms)
        .bind(i64::from(gone))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The stored VAPID key pair (private, public; base64url), writing
    /// `generate()`'s pair first when there is none. Several instances
    /// starting at once agree on the first pair written.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn vapid_key(
        &self,
        now_ms: i64,
        generate: impl FnOnce() -> (String, String),
    ) -> Result<(String, String)> {
        let existing: Option<(String, String)> =
            sqlx::query_as("select private_key, public_key from push_vapid_key where id = 1")
                .fetch_optional(self.pool())
                .await?;
        if let Some(pair) = existing {
            return Ok(pair);
        }
        let (private, public) = generate();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "insert into push_vapid_key (id, private_key, public_key, created_at)
             values (1, $1, $2, $3) on conflict (id) do nothing",
        )
        .bind(&private)
        .bind(&public)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(
            sqlx::query_as("select private_key, public_key from push_vapid_key where id = 1")
                .fetch_one(self.pool())
                .await?,
        )
    }
}
