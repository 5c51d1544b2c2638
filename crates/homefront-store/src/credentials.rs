//! Volunteers' credentials with validity dates, and the loaders that feed
//! `homefront_domain::credentials::is_eligible` and `expiring`.

use std::collections::BTreeMap;

use homefront_domain::Timestamp;
use homefront_domain::credentials::{Credential, CredentialKind, VolunteerEligibility};
use homefront_domain::org::OrgPath;
use homefront_domain::vetting::VettingState;
use serde::Serialize;

use crate::decode::Text;
use crate::volunteers::push_scope_clause;
use crate::{Result, Store};

/// A credential row. Validity is `[valid_from, valid_to)` in epoch ms,
/// cut short at `revoked_at` when revoked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct CredentialRecord {
    /// Row id.
    pub id: i64,
    /// The volunteer (account id).
    pub volunteer_id: i64,
    /// Credential kind text (see `CredentialKind`).
    #[sqlx(try_from = "Text")]
    #[schema(value_type = String)]
    pub kind: CredentialKind,
    /// First valid instant, epoch ms.
    pub valid_from: i64,
    /// First instant no longer valid, epoch ms; `None` = no expiry.
    pub valid_to: Option<i64>,
    /// Insurer (insurance only).
    pub insurer: Option<String>,
    /// Policy number (insurance only).
    pub policy_number: Option<String>,
    /// Reference to the scanned document or archive entry.
    pub document_ref: Option<String>,
    /// Who recorded it.
    pub created_by: Option<i64>,
    /// When it was recorded, epoch ms.
    pub created_at: i64,
    /// When it was revoked, epoch ms.
    pub revoked_at: Option<i64>,
    /// Who revoked it.
    pub revoked_by: Option<i64>,
    /// Why it was revoked.
    pub revoke_reason: Option<String>,
}

impl CredentialRecord {
    /// The end of validity after revocation: the earlier of `valid_to` and
    /// `revoked_at`, epoch ms.
    pub fn effective_valid_to(&self) -> Option<i64> {
        match (self.valid_to, self.revoked_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The domain credential with revocation applied; `None` when revoked
    /// before it became valid (it never counts).
    pub fn effective(&self) -> Option<Credential> {
        Credential::new(
            self.kind,
            Timestamp(self.valid_from),
            self.effective_valid_to().map(Timestamp),
        )
        .ok()
    }
}

/// A credential to record.
#[derive(Clone, Debug)]
pub struct NewCredential<'a> {
    /// The volunteer (account id).
    pub volunteer_id: i64,
    /// Kind and validity, already checked by the domain.
    pub credential: &'a Credential,
    /// Insurer (insurance only).
    pub insurer: Option<&'a str>,
    /// Policy number (insurance only).
    pub policy_number: Option<&'a str>,
    /// Reference to the document.
    pub document_ref: Option<&'a str>,
    /// Who records it.
    pub actor: Option<i64>,
}

/// A credential about to expire, with its holder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ExpiringCredential {
    /// The holder (account id).
    pub volunteer_id: i64,
    /// The holder's display name.
    pub display_name: String,
    /// The holder's team.
    pub team_id: i64,
    /// The credential.
    pub credential: CredentialRecord,
}

const CREDENTIAL_COLUMNS: &str =
    "c.id, c.volunteer_id, c.kind, c.valid_from, c.valid_to, c.insurer,
    c.policy_number, c.document_ref, c.created_by, c.created_at, c.revoked_at, c.revoked_by,
    c.revoke_reason";

impl Store {
    /// Records a credential.
    ///
    /// # Errors
    /// [`crate::StoreError::MissingReference`] for an unknown volunteer; database errors.
    #[tracing::instrument(skip_all)]
    pub async fn add_credential(
        &self,
        new: &NewCredential<'_>,
        now: Timestamp,
    ) -> Result<CredentialRecord> {
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "insert into credential (volunteer_id, kind, valid_from, valid_to, insurer,
                policy_number, document_ref, created_by, created_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning id",
        )
        .bind(new.volunteer_id)
        .bind(new.credential.kind().as_str())
        .bind(new.credential.valid_from().epoch_ms())
        .bind(new.credential.valid_to().map(Timestamp::epoch_ms))
        .bind(new.insurer)
        .bind(new.policy_number)
        .bind(new.document_ref)
        .bind(new.actor)
        .bind(now.epoch_ms())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        self.credential(new.volunteer_id, id)
            .await?
            .ok_or(crate::StoreError::Database(sqlx::Error::RowNotFound))
    }

    /// One credential of a volunteer.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn credential(&self, volunteer_id: i64, id: i64) -> Result<Option<CredentialRecord>> {
        let sql = format!(
            "select {CREDENTIAL_COLUMNS} from credential c where c.volunteer_id = $1 and c.id = $2"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(volunteer_id)
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    /// A volunteer's credentials, revoked ones included, newest validity first.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn credentials_of(&self, volunteer_id: i64) -> Result<Vec<CredentialRecord>> {
        let sql = format!(
            "select {CREDENTIAL_COLUMNS} from credential c where c.volunteer_id = $1
             order by c.valid_from desc, c.id desc"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(volunteer_id)
            .fetch_all(self.pool())
            .await?)
    }

    /// Revokes a credential at `now` (validity ends then). Revoking twice
    /// keeps the first revocation. Returns the row, or `None` when the
    /// volunteer has no such credential.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn revoke_credential(
        &self,
        volunteer_id: i64,
        id: i64,
        actor: Option<i64>,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<Option<CredentialRecord>> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "update credential set revoked_at = $1, revoked_by = $2, revoke_reason = $3
             where volunteer_id = $4 and id = $5 and revoked_at is null",
        )
        .bind(now.epoch_ms())
        .bind(actor)
        .bind(reason)
        .bind(volunteer_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.credential(volunteer_id, id).await
    }

    /// Every credential (revoked ones included) of the volunteers whose
    /// team lies in `scopes` (`None` = all), by volunteer then id: one query
    /// for lists and exports.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn credentials_in_scope(
        &self,
        scopes: Option<&[OrgPath]>,
    ) -> Result<Vec<CredentialRecord>> {
        let mut binds = Vec::new();
        let mut scope_sql = String::new();
        if !push_scope_clause(&mut scope_sql, &mut binds, scopes, "t.path") {
            return Ok(Vec::new());
        }
        let sql = format!(
            "select {CREDENTIAL_COLUMNS} from credential c
             join volunteer v on v.user_id = c.volunteer_id
             join org_unit t on t.id = v.team_id
             where 1 = 1 {scope_sql} order by c.volunteer_id, c.id"
        );
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = q.bind(b);
        }
        Ok(q.fetch_all(self.pool()).await?)
    }

    /// What `homefront_domain::credentials::is_eligible` needs about one
    /// volunteer: its vetting state and its credentials (revocation applied).
    /// `None` when there is no such volunteer. The dispatcher and the
    /// eligibility endpoint both use this, so there is one truth.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn volunteer_eligibility(
        &self,
        volunteer_id: i64,
    ) -> Result<Option<VolunteerEligibility>> {
        let state: Option<String> =
            sqlx::query_scalar("select vetting_state from volunteer where user_id = $1")
                .bind(volunteer_id)
                .fetch_optional(self.pool())
                .await?;
        let Some(state) = state.and_then(|s| VettingState::parse(&s).ok()) else {
            return Ok(None);
        };
        let credentials = self
            .credentials_of(volunteer_id)
            .await?
            .iter()
            .filter_map(CredentialRecord::effective)
            .collect();
        Ok(Some(VolunteerEligibility {
            vetting: state,
            credentials,
        }))
    }

    /// Credentials of volunteers in `scopes` (team subtrees; `None` = all)
    /// that are valid at `now` and expire within `within_days` days, as
    /// `homefront_domain::credentials::expiring` decides (renewed ones are
    /// left out), soonest first. Volunteers who were rejected or withdrew
    /// are skipped.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn expiring_credentials(
        &self,
        scopes: Option<&[OrgPath]>,
        now: Timestamp,
        within_days: u32,
    ) -> Result<Vec<ExpiringCredential>> {
        let horizon = now.plus_days(i64::from(within_days));
        let mut binds = Vec::new();
        let mut scope_sql = String::new();
        if !push_scope_clause(&mut scope_sql, &mut binds, scopes, "t.path") {
            return Ok(Vec::new());
        }
        let n = binds.len();
        // Candidates: holders with some credential ending in (now, horizon];
        // then every credential of theirs, so renewals are seen.
        let sql = format!(
            "select {CREDENTIAL_COLUMNS}, u.display_name, v.team_id
             from credential c
             join volunteer v on v.user_id = c.volunteer_id
             join app_user u on u.id = v.user_id
             join org_unit t on t.id = v.team_id
             where v.vetting_state not in ('rejected', 'withdrawn') {scope_sql}
               and c.volunteer_id in (
                   select c2.volunteer_id from credential c2
                   where c2.valid_to > ${} and c2.valid_to <= ${})
             order by c.volunteer_id, c.id",
            n + 1,
            n + 2
        );
        let mut q = sqlx::query_as::<_, ExpiringRow>(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = q.bind(b);
        }
        let rows = q
            .bind(now.epoch_ms())
            .bind(horizon.epoch_ms())
            .fetch_all(self.pool())
            .await?;
        let mut by_volunteer: BTreeMap<i64, Vec<ExpiringRow>> = BTreeMap::new();
        for r in rows {
            by_volunteer
                .entry(r.record.volunteer_id)
                .or_default()
                .push(r);
        }
        let mut out = Vec::new();
        for rows in by_volunteer.values() {
            let effective: Vec<(Credential, &ExpiringRow)> = rows
                .iter()
                .filter_map(|r| r.record.effective().map(|c| (c, r)))
                .collect();
            let creds: Vec<Credential> = effective.iter().map(|(c, _)| c.clone()).collect();
            for soon in homefront_domain::credentials::expiring(&creds, now, within_days) {
                if let Some((_, row)) = effective.iter().find(|(c, _)| c == soon) {
                    out.push(ExpiringCredential {
                        volunteer_id: row.record.volunteer_id,
                        display_name: row.display_name.clone(),
                        team_id: row.team_id,
                        credential: row.record.clone(),
                    });
                }
            }
        }
        out.sort_by_key(|e| {
            (
                e.credential.effective_valid_to(),
                e.volunteer_id,
                e.credential.id,
            )
        });
        Ok(out)
    }
}

#[derive(sqlx::FromRow)]
struct ExpiringRow {
    #[sqlx(flatten)]
    record: CredentialRecord,
    display_name: String,
    team_id: i64,
}
