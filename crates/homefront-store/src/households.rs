//! Households: a requester and the family members who may be served.

use serde::Serialize;

use crate::{Result, Store, StoreError, classify};

/// A household as stored.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct Household {
    /// Row id.
    pub id: i64,
    /// The requester's account.
    pub requester_user_id: i64,
    /// Verified employer (org unit of kind employer), once a liaison verified.
    pub employer_id: Option<i64>,
    /// Department at the employer.
    pub department: Option<String>,
    /// 1 when deployed to the epidemic's centre (priority lane for counselling).
    pub deployed_to_centre: i64,
    /// The liaison who verified the employment.
    pub verified_by: Option<i64>,
    /// When it was verified, epoch ms.
    pub verified_at: Option<i64>,
    /// Creation instant, epoch ms.
    pub created_at: i64,
}

/// A household member as stored. `phone`, `street`, coordinates, age and
/// school grade are sensitive.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct Member {
    /// Row id.
    pub id: i64,
    /// Household.
    pub household_id: i64,
    /// Name (any script).
    pub name: String,
    /// `self`, `parent`, `child`, `spouse` or `other`.
    pub relation: String,
    /// Age in years (children).
    pub age_years: Option<i64>,
    /// School grade (children), e.g. `初二`.
    pub school_grade: Option<String>,
    /// E.164 phone.
    pub phone: Option<String>,
    /// Division (org unit) of the address.
    pub division_id: i64,
    /// Street address text.
    pub street: String,
    /// Optional longitude, decimal degrees.
    pub longitude: Option<f64>,
    /// Optional latitude, decimal degrees.
    pub latitude: Option<f64>,
    /// 1 when a guardian consented to services for this (minor) member.
    pub guardian_consent: i64,
    /// Creation instant, epoch ms.
    pub created_at: i64,
}

/// Fields of a new or edited member (validated by the caller).
#[derive(Clone, Debug)]
pub struct MemberFields {
    /// Name.
    pub name: String,
    /// Relation text.
    pub relation: String,
    /// Age in years.
    pub age_years: Option<i64>,
    /// School grade.
    pub school_grade: Option<String>,
    /// E.164 phone.
    pub phone: Option<String>,
    /// Division org unit id.
    pub division_id: i64,
    /// Street text.
    pub street: String,
    /// (longitude, latitude).
    pub location: Option<(f64, f64)>,
    /// Guardian consent given.
    pub guardian_consent: bool,
}

const MEMBER_COLUMNS: &str = "id, household_id, name, relation, age_years, school_grade, phone, \
    division_id, street, longitude, latitude, guardian_consent, created_at";
const HOUSEHOLD_COLUMNS: &str = "id, requester_user_id, employer_id, department, deployed_to_centre, \
    verified_by, verified_at, created_at";

impl Store {
    /// The household of a requester, created empty on first use.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn household_of(&self, requester_user_id: i64, now_ms: i64) -> Result<Household> {
        sqlx::query(
            "insert into household (requester_user_id, created_at) values ($1, $2)
             on conflict (requester_user_id) do nothing",
        )
        .bind(requester_user_id)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        let sql = format!("select {HOUSEHOLD_COLUMNS} from household where requester_user_id = $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(requester_user_id)
            .fetch_one(self.pool())
            .await?)
    }

    /// One household by id.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn household(&self, id: i64) -> Result<Option<Household>> {
        let sql = format!("select {HOUSEHOLD_COLUMNS} from household where id = $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    /// Records a liaison's verification of the requester's employment.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn verify_household(
        &self,
        household_id: i64,
        employer_id: i64,
        department: Option<&str>,
        deployed_to_centre: bool,
        verified_by: i64,
        now_ms: i64,
    ) -> Result<()> {
        sqlx::query(
            "update household set employer_id = $1, department = $2, deployed_to_centre = $3,
                verified_by = $4, verified_at = $5 where id = $6",
        )
        .bind(employer_id)
        .bind(department)
        .bind(i64::from(deployed_to_centre))
        .bind(verified_by)
        .bind(now_ms)
        .bind(household_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Members of a household, oldest first.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn members(&self, household_id: i64) -> Result<Vec<Member>> {
        let sql = format!(
            "select {MEMBER_COLUMNS} from household_member where household_id = $1 order by id"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(household_id)
            .fetch_all(self.pool())
            .await?)
    }

    /// One member by id.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn member(&self, id: i64) -> Result<Option<Member>> {
        let sql = format!("select {MEMBER_COLUMNS} from household_member where id = $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    /// Adds a member.
    ///
    /// # Errors
    /// [`StoreError::MissingReference`] for an unknown division.
    #[tracing::instrument(skip_all)]
    pub async fn add_member(
        &self,
        household_id: i64,
        f: &MemberFields,
        now_ms: i64,
    ) -> Result<Member> {
        let id: i64 = sqlx::query_scalar(
            "insert into household_member (household_id, name, relation, age_years, school_grade,
                phone, division_id, street, longitude, latitude, guardian_consent, created_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) returning id",
        )
        .bind(household_id)
        .bind(&f.name)
        .bind(&f.relation)
        .bind(f.age_years)
        .bind(&f.school_grade)
        .bind(&f.phone)
        .bind(f.division_id)
        .bind(&f.street)
        .bind(f.location.map(|l| l.0))
        .bind(f.location.map(|l| l.1))
        .bind(i64::from(f.guardian_consent))
        .bind(now_ms)
        .fetch_one(self.pool())
        .await
        .map_err(classify)?;
        self.member(id)
            .await?
            .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }

    /// Replaces a member's fields.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn update_member(&self, id: i64, f: &MemberFields) -> Result<()> {
        sqlx::query(
            "update household_member set name = $1, relation = $2, age_years = $3, school_grade = $4,
                phone = $5, division_id = $6, street = $7, longitude = $8, latitude = $9,
                guardian_consent = $10 where id = $11",
        )
        .bind(&f.name)
        .bind(&f.relation)
        .bind(f.age_years)
        .bind(&f.school_grade)
        .bind(&f.phone)
        .bind(f.division_id)
        .bind(&f.street)
        .bind(f.location.map(|l| l.0))
        .bind(f.location.map(|l| l.1))
        .bind(i64::from(f.guardian_consent))
        .bind(id)
        .execute(self.pool())
        .await
        .map_err(classify)?;
        Ok(())
    }
}
