//! The service catalogue (`service_item`).

use serde::Serialize;
use std::collections::HashMap;

use homefront_domain::catalogue::{Lane, ServiceMode};

use crate::decode::{Flag, Text, as_flag};
use crate::{Result, Store, StoreError, flag};

/// One catalogue item as stored.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct ServiceItem {
    /// Row id.
    pub id: i64,
    /// Stable code, e.g. `groceries`.
    pub code: String,
    /// Owning org unit; `None` for the deployment-wide catalogue.
    pub org_unit_id: Option<i64>,
    /// Chinese name.
    pub name_zh: String,
    /// English name.
    pub name_en: String,
    /// `onsite` or `remote`.
    #[sqlx(try_from = "Text")]
    #[schema(value_type = String)]
    pub mode: ServiceMode,
    /// Comma-separated qualification codes a volunteer needs.
    pub qualifications: String,
    /// Default duration in minutes.
    pub default_duration_minutes: i64,
    /// How long one offer stays open, in seconds.
    pub offer_timeout_seconds: i64,
    /// `priority`, `urgent` or `standard`.
    #[sqlx(try_from = "Text")]
    #[schema(value_type = String)]
    pub lane: Lane,
    /// 1: requesters deployed to the epidemic's centre get the priority lane.
    #[sqlx(try_from = "Flag")]
    #[serde(serialize_with = "as_flag")]
    #[schema(value_type = i64)]
    pub priority_channel: bool,
    /// Days after completion to schedule a follow-up order; `None`: none.
    pub follow_up_days: Option<i64>,
    /// 1: a remote item that may run alongside a volunteer's other
    /// assignments in the same hours (e.g. activating free call time and
    /// data); 0: an assignment of it excludes others whose window overlaps.
    #[sqlx(try_from = "Flag")]
    #[serde(serialize_with = "as_flag")]
    #[schema(value_type = i64)]
    pub runs_alongside: bool,
    /// When it was retired (epoch ms); retired items take no new orders.
    pub retired_at: Option<i64>,
    /// Creation instant, epoch ms.
    pub created_at: i64,
}

impl ServiceItem {
    /// The required qualification codes.
    pub fn qualification_codes(&self) -> Vec<&str> {
        self.qualifications
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// Fields of a new or edited item (validated by the caller).
#[derive(Clone, Debug)]
pub struct ItemFields {
    /// Stable code.
    pub code: String,
    /// Owning org unit; `None` for the deployment-wide catalogue.
    pub org_unit_id: Option<i64>,
    /// Chinese name.
    pub name_zh: String,
    /// English name.
    pub name_en: String,
    /// How it is delivered.
    pub mode: ServiceMode,
    /// Comma-separated qualification codes.
    pub qualifications: String,
    /// Minutes.
    pub default_duration_minutes: i64,
    /// Seconds.
    pub offer_timeout_seconds: i64,
    /// Priority lane.
    pub lane: Lane,
    /// Requesters deployed to the epidemic's centre get the priority lane.
    pub priority_channel: bool,
    /// Days, or none.
    pub follow_up_days: Option<i64>,
    /// May run alongside other assignments; only for remote items.
    pub runs_alongside: bool,
}

const COLUMNS: &str = "id, code, org_unit_id, name_zh, name_en, mode, qualifications, \
    default_duration_minutes, offer_timeout_seconds, lane, priority_channel, follow_up_days, \
    runs_alongside, retired_at, created_at";

impl Store {
    /// Orders placed per catalogue item since `since_ms` (epoch ms), for
    /// listing the most-used services first: item id → count (items never
    /// ordered are absent).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn order_counts_by_item(&self, since_ms: i64) -> Result<HashMap<i64, i64>> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "select item_id, cast(count(*) as bigint) from service_order
             where created_at >= $1 group by item_id",
        )
        .bind(since_ms)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// Catalogue items, retired ones included when asked, ordered by code.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn service_items(&self, include_retired: bool) -> Result<Vec<ServiceItem>> {
        let sql = format!(
            "select {COLUMNS} from service_item where ($1 = 1 or retired_at is null) order by code, id"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(i64::from(include_retired))
            .fetch_all(self.pool())
            .await?)
    }

    /// One item by id (retired or not).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn service_item(&self, id: i64) -> Result<Option<ServiceItem>> {
        let sql = format!("select {COLUMNS} from service_item where id = $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    /// Creates an item.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the code exists in the same catalogue.
    #[tracing::instrument(skip_all)]
    pub async fn create_service_item(&self, f: &ItemFields, now_ms: i64) -> Result<ServiceItem> {
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "insert into service_item (code, org_unit_id, name_zh, name_en, mode, qualifications,
                default_duration_minutes, offer_timeout_seconds, lane, priority_channel, follow_up_days,
                runs_alongside, created_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) returning id",
        )
        .bind(&f.code)
        .bind(f.org_unit_id)
        .bind(&f.name_zh)
        .bind(&f.name_en)
        .bind(f.mode.as_str())
        .bind(&f.qualifications)
        .bind(f.default_duration_minutes)
        .bind(f.offer_timeout_seconds)
        .bind(f.lane.as_str())
        .bind(flag(f.priority_channel))
        .bind(f.follow_up_days)
        .bind(flag(f.runs_alongside))
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        self.service_item(id)
            .await?
            .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }

    /// Replaces an item's editable fields (not its code or owner). Orders
    /// keep pointing at the same row, so old orders stay readable.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn update_service_item(&self, id: i64, f: &ItemFields) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "update service_item set name_zh = $1, name_en = $2, mode = $3, qualifications = $4,
                default_duration_minutes = $5, offer_timeout_seconds = $6, lane = $7,
                priority_channel = $8, follow_up_days = $9, runs_alongside = $10
             where id = $11",
        )
        .bind(&f.name_zh)
        .bind(&f.name_en)
        .bind(f.mode.as_str())
        .bind(&f.qualifications)
        .bind(f.default_duration_minutes)
        .bind(f.offer_timeout_seconds)
        .bind(f.lane.as_str())
        .bind(flag(f.priority_channel))
        .bind(f.follow_up_days)
        .bind(flag(f.runs_alongside))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Retires (`Some(now)`) or restores (`None`) an item.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn set_item_retired(&self, id: i64, retired_at: Option<i64>) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("update service_item set retired_at = $1 where id = $2")
            .bind(retired_at)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
