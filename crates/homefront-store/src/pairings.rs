//! Pairings (结对): long-term links between a household and volunteers,
//! `primary` and `backup`. Orders from a paired household go to its paired
//! volunteers first.

use serde::Serialize;

use crate::{Result, Store, StoreError, classify};

/// A pairing as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Pairing {
    /// Row id.
    pub id: i64,
    /// The household.
    pub household_id: i64,
    /// The volunteer's account.
    pub volunteer_user_id: i64,
    /// `primary` or `backup`.
    pub role: String,
    /// Started, epoch ms.
    pub started_at: i64,
    /// Ended, epoch ms; `None` while live.
    pub ended_at: Option<i64>,
    /// Why it ended.
    pub end_reason: Option<String>,
    /// Who created it.
    pub created_by: Option<i64>,
}

const COLUMNS: &str =
    "id, household_id, volunteer_user_id, role, started_at, ended_at, end_reason, created_by";

impl Store {
    /// Live pairings of a household, primary first.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn live_pairings(&self, household_id: i64) -> Result<Vec<Pairing>> {
        let sql = format!(
            "select {COLUMNS} from pairing where household_id = $1 and ended_at is null
             order by case role when 'primary' then 0 else 1 end, id"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(household_id)
            .fetch_all(self.pool())
            .await?)
    }

    /// Live pairings of a volunteer.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn pairings_of_volunteer(&self, volunteer: i64) -> Result<Vec<Pairing>> {
        let sql = format!(
            "select {COLUMNS} from pairing where volunteer_user_id = $1 and ended_at is null order by id"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(volunteer)
            .fetch_all(self.pool())
            .await?)
    }

    /// One pairing by id.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn pairing(&self, id: i64) -> Result<Option<Pairing>> {
        let sql = format!("select {COLUMNS} from pairing where id = $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    /// Links a volunteer to a household.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when that volunteer is already paired with it.
    #[tracing::instrument(skip_all)]
    pub async fn create_pairing(
        &self,
        household_id: i64,
        volunteer: i64,
        role: &str,
        created_by: Option<i64>,
        now_ms: i64,
    ) -> Result<Pairing> {
        let id: i64 = sqlx::query_scalar(
            "insert into pairing (household_id, volunteer_user_id, role, started_at, created_by)
             values ($1, $2, $3, $4, $5) returning id",
        )
        .bind(household_id)
        .bind(volunteer)
        .bind(role)
        .bind(now_ms)
        .bind(created_by)
        .fetch_one(self.pool())
        .await
        .map_err(classify)?;
        self.pairing(id)
            .await?
            .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }

    /// Ends a live pairing; returns whether one was ended.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn end_pairing(&self, id: i64, reason: &str, now_ms: i64) -> Result<bool> {
        let r = sqlx::query(
            "update pairing set ended_at = $1, end_reason = $2 where id = $3 and ended_at is null",
        )
        .bind(now_ms)
        .bind(reason)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }
}
