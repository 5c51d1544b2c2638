//! Pairings (结对): long-term links between a household and volunteers,
//! `primary` and `backup`. Orders from a paired household go to its paired
//! volunteers first.

use serde::Serialize;

use homefront_domain::pairing::{PairingRole, ProposalStatus};

use crate::decode::Text;
use crate::{Result, Store, StoreError};

/// A pairing as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct Pairing {
    /// Row id.
    pub id: i64,
    /// The household.
    pub household_id: i64,
    /// The volunteer's account.
    pub volunteer_user_id: i64,
    /// `primary` or `backup`.
    #[sqlx(try_from = "Text")]
    #[schema(value_type = String)]
    pub role: PairingRole,
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

    /// Live pairings of every household with an unassigned order
    /// (`submitted` or `dispatching`), primary first: the dispatcher's
    /// pairing-first input for a whole pass, in one query.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn live_pairings_of_backlog(&self) -> Result<Vec<Pairing>> {
        let sql = format!(
            "select {COLUMNS} from pairing where ended_at is null and household_id in
                (select household_id from service_order where state in ('submitted', 'dispatching'))
             order by household_id, case role when 'primary' then 0 else 1 end, id"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
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
        role: PairingRole,
        created_by: Option<i64>,
        now_ms: i64,
    ) -> Result<Pairing> {
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "insert into pairing (household_id, volunteer_user_id, role, started_at, created_by)
             values ($1, $2, $3, $4, $5) returning id",
        )
        .bind(household_id)
        .bind(volunteer)
        .bind(role.as_str())
        .bind(now_ms)
        .bind(created_by)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
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
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "update pairing set ended_at = $1, end_reason = $2 where id = $3 and ended_at is null",
        )
        .bind(now_ms)
        .bind(reason)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    /// Re-pairs: ends live pairing `id` with `reason` and pairs `volunteer`
    /// with the same household in the same role, in one transaction, so
    /// the household never loses the slot. `None` when the pairing was no
    /// longer live.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when `volunteer` is already paired with the
    /// household (nothing changes); database errors.
    #[tracing::instrument(skip_all)]
    pub async fn repair_pairing(
        &self,
        id: i64,
        reason: &str,
        volunteer: i64,
        created_by: Option<i64>,
        now_ms: i64,
    ) -> Result<Option<Pairing>> {
        let mut tx = self.begin_write().await?;
        let ended = sqlx::query(
            "update pairing set ended_at = $1, end_reason = $2 where id = $3 and ended_at is null",
        )
        .bind(now_ms)
        .bind(reason)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if ended == 0 {
            return Ok(None);
        }
        let new_id: i64 = sqlx::query_scalar(
            "insert into pairing (household_id, volunteer_user_id, role, started_at, created_by)
             select household_id, $1, role, $2, $3 from pairing where id = $4
             returning id",
        )
        .bind(volunteer)
        .bind(now_ms)
        .bind(created_by)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        self.pairing(new_id).await
    }
}

/// A re-pairing proposal: a pairing ended because its volunteer was
/// deactivated, and the suggested replacement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct PairingProposal {
    /// Row id.
    pub id: i64,
    /// The pairing that ended.
    pub ended_pairing_id: i64,
    /// The household left without that volunteer.
    pub household_id: i64,
    /// The ended pairing's role, which the replacement takes.
    #[sqlx(try_from = "Text")]
    #[schema(value_type = String)]
    pub role: PairingRole,
    /// The suggested replacement; `None` until the dispatcher finds one.
    pub proposed_volunteer_user_id: Option<i64>,
    /// `proposed`, `accepted` or `dismissed`.
    #[sqlx(try_from = "Text")]
    #[schema(value_type = String)]
    pub status: ProposalStatus,
    /// Created, epoch ms.
    pub created_at: i64,
    /// The ended pairing's volunteer.
    pub former_volunteer_user_id: i64,
    /// That volunteer's team path (scope).
    pub team_path: String,
}

const PROPOSAL_SELECT: &str = "select p.id, p.ended_pairing_id, p.household_id, p.role,
    p.proposed_volunteer_user_id, p.status, p.created_at, e.volunteer_user_id as former_volunteer_user_id,
    t.path as team_path
    from pairing_proposal p join pairing e on e.id = p.ended_pairing_id
    join volunteer v on v.user_id = e.volunteer_user_id join org_unit t on t.id = v.team_id";

impl Store {
    /// Open (`proposed`) re-pairing proposals, oldest first.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn open_pairing_proposals(&self) -> Result<Vec<PairingProposal>> {
        let sql = format!("{PROPOSAL_SELECT} where p.status = 'proposed' order by p.id");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.pool())
            .await?)
    }

    /// One proposal.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn pairing_proposal(&self, id: i64) -> Result<Option<PairingProposal>> {
        let sql = format!("{PROPOSAL_SELECT} where p.id = $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    /// Records the suggested replacement of a proposal still without one.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn suggest_replacement(&self, id: i64, volunteer: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "update pairing_proposal set proposed_volunteer_user_id = $1
             where id = $2 and proposed_volunteer_user_id is null and status = 'proposed'",
        )
        .bind(volunteer)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Accepts (creating the pairing with the suggested volunteer, or
    /// `volunteer` when given) or dismisses a proposal, once
    /// (compare-and-set on `proposed`). Returns the new pairing on accept;
    /// `Ok(None)` when the proposal was already decided.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when that volunteer is already paired with
    /// the household; database errors.
    #[tracing::instrument(skip_all)]
    pub async fn decide_proposal(
        &self,
        id: i64,
        accept: Option<i64>,
        actor: i64,
        now_ms: i64,
    ) -> Result<Option<Option<Pairing>>> {
        let mut tx = self.begin_write().await?;
        let status = if accept.is_some() {
            ProposalStatus::Accepted
        } else {
            ProposalStatus::Dismissed
        };
        let n = sqlx::query(
            "update pairing_proposal set status = $1, decided_at = $2, decided_by = $3,
                proposed_volunteer_user_id = coalesce($4, proposed_volunteer_user_id)
             where id = $5 and status = 'proposed'",
        )
        .bind(status.as_str())
        .bind(now_ms)
        .bind(actor)
        .bind(accept)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(None);
        }
        let mut created = None;
        if let Some(volunteer) = accept {
            // The replacement takes the ended pairing's role.
            let pid: i64 = sqlx::query_scalar(
                "insert into pairing (household_id, volunteer_user_id, role, started_at, created_by)
                 select household_id, $1, role, $2, $3 from pairing_proposal where id = $4
                 returning id",
            )
            .bind(volunteer)
            .bind(now_ms)
            .bind(actor)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            created = Some(pid);
        }
        tx.commit().await?;
        match created {
            Some(pid) => Ok(Some(self.pairing(pid).await?)),
            None => Ok(Some(None)),
        }
    }
}
