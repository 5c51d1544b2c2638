//! Group bots (WeCom, DingTalk) and generic webhooks of org units.

use homefront_domain::locale::Locale;
use homefront_domain::notify::BotKind;
use serde::Serialize;

use crate::decode::Text;
use crate::{Result, Store};

/// A group bot (WeCom, DingTalk) or generic webhook of an org unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct GroupBot {
    /// Row id.
    pub id: i64,
    /// The unit whose subtree it hears about.
    pub org_unit_id: i64,
    /// `wecom`, `dingtalk` or `webhook`.
    #[sqlx(try_from = "Text")]
    #[schema(value_type = String)]
    pub kind: BotKind,
    /// Label, e.g. `玄武区调度群`.
    pub name: String,
    /// Webhook URL (carries the bot's key: treat as secret).
    #[serde(skip)]
    pub url: String,
    /// Signing secret.
    #[serde(skip)]
    pub secret: Option<String>,
    /// Message language.
    #[sqlx(try_from = "Text")]
    #[schema(value_type = String)]
    pub locale: Locale,
    /// Who added it.
    pub created_by: Option<i64>,
    /// Added, epoch ms.
    pub created_at: i64,
}

/// A new group bot.
#[derive(Clone, Debug)]
pub struct NewBot<'a> {
    /// Unit.
    pub org_unit_id: i64,
    /// What kind of receiver.
    pub kind: BotKind,
    /// Label.
    pub name: &'a str,
    /// URL.
    pub url: &'a str,
    /// Secret.
    pub secret: Option<&'a str>,
    /// Message language.
    pub locale: Locale,
    /// Coordinator.
    pub created_by: i64,
}

impl Store {
    /// Adds a group bot.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn create_bot(&self, b: &NewBot<'_>, now_ms: i64) -> Result<GroupBot> {
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "insert into group_bot (org_unit_id, kind, name, url, secret, locale, created_by, created_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8) returning id",
        )
        .bind(b.org_unit_id)
        .bind(b.kind.as_str())
        .bind(b.name)
        .bind(b.url)
        .bind(b.secret)
        .bind(b.locale.as_str())
        .bind(b.created_by)
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        self.bot(id)
            .await?
            .ok_or(crate::StoreError::Database(sqlx::Error::RowNotFound))
    }

    /// A live (not deleted) bot by id.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn bot(&self, id: i64) -> Result<Option<GroupBot>> {
        Ok(sqlx::query_as(
            "select id, org_unit_id, kind, name, url, secret, locale, created_by, created_at
             from group_bot where id = $1 and deleted_at is null",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Live bots of one unit, by id.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn bots_of_unit(&self, org_unit_id: i64) -> Result<Vec<GroupBot>> {
        Ok(sqlx::query_as(
            "select id, org_unit_id, kind, name, url, secret, locale, created_by, created_at
             from group_bot where org_unit_id = $1 and deleted_at is null order by id",
        )
        .bind(org_unit_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Deletes a bot (kept as a row for the delivery history; its pending
    /// deliveries are dropped as dead by the worker). Returns whether it was live.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn delete_bot(&self, id: i64, now_ms: i64) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query(
            "update group_bot set deleted_at = $1 where id = $2 and deleted_at is null",
        )
        .bind(now_ms)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        tx.commit().await?;
        Ok(deleted)
    }
}
