//! Households: a requester and the family members who may be served.

use serde::Serialize;

use chrono_tz::Tz;
use homefront_domain::catalogue::{Lane, Relation, ServiceMode};

use crate::decode::{Flag, OptText, Text, as_flag};
use crate::{Result, Store, StoreError};

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
    #[sqlx(try_from = "Flag")]
    #[serde(serialize_with = "as_flag")]
    #[schema(value_type = i64)]
    pub deployed_to_centre: bool,
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
    #[sqlx(try_from = "Text")]
    #[schema(value_type = String)]
    pub relation: Relation,
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
    #[sqlx(try_from = "Flag")]
    #[serde(serialize_with = "as_flag")]
    #[schema(value_type = i64)]
    pub guardian_consent: bool,
    /// Creation instant, epoch ms.
    pub created_at: i64,
}

/// Fields of a new or edited member (validated by the caller).
#[derive(Clone, Debug)]
pub struct MemberFields {
    /// Name.
    pub name: String,
    /// Relation to the requester.
    pub relation: Relation,
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

/// What placing an order reads (see [`Store::order_context`]); `None`
/// where the row does not exist.
#[derive(Clone, Debug, Default)]
pub struct OrderContext {
    /// The requester's own phone (E.164); `None` for an unknown account.
    pub requester_phone: Option<String>,
    /// The requester's household: id and whether deployed to the
    /// epidemic's centre.
    pub household: Option<(i64, bool)>,
    /// The member, when it belongs to the household.
    pub member: Option<Member>,
    /// The catalogue item.
    pub item: Option<OrderItem>,
    /// The member's division.
    pub division: Option<OrderDivision>,
}

/// The parts of a catalogue item an order needs.
#[derive(Clone, Debug)]
pub struct OrderItem {
    /// Item id.
    pub id: i64,
    /// Code, e.g. `groceries`.
    pub code: String,
    /// Chinese name.
    pub name_zh: String,
    /// English name.
    pub name_en: String,
    /// How it is delivered.
    pub mode: ServiceMode,
    /// Priority lane.
    pub lane: Lane,
    /// It has the priority channel for staff deployed to the centre.
    pub priority_channel: bool,
    /// Default duration, minutes.
    pub default_duration_minutes: i64,
    /// The item may run alongside other assignments (remote only).
    pub runs_alongside: bool,
    /// Comma-separated qualification codes a volunteer needs.
    pub qualifications: String,
    /// When retired, epoch ms.
    pub retired_at: Option<i64>,
}

impl OrderItem {
    /// The required qualification codes.
    pub fn qualification_codes(&self) -> Vec<&str> {
        self.qualifications
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect()
    }
}

/// The parts of a division an order needs.
#[derive(Clone, Debug)]
pub struct OrderDivision {
    /// Name, e.g. `玄武区`.
    pub name: String,
    /// Org path.
    pub path: String,
    /// Its time zone.
    pub time_zone: Tz,
}

#[derive(sqlx::FromRow)]
struct OrderContextRow {
    requester_phone: Option<String>,
    household_id: Option<i64>,
    deployed_to_centre: Option<i64>,
    member_id: Option<i64>,
    member_name: Option<String>,
    #[sqlx(try_from = "OptText")]
    relation: Option<Relation>,
    age_years: Option<i64>,
    school_grade: Option<String>,
    member_phone: Option<String>,
    division_id: Option<i64>,
    street: Option<String>,
    longitude: Option<f64>,
    latitude: Option<f64>,
    guardian_consent: Option<i64>,
    member_created_at: Option<i64>,
    item_id: Option<i64>,
    item_code: Option<String>,
    item_name_zh: Option<String>,
    item_name_en: Option<String>,
    #[sqlx(try_from = "OptText")]
    item_mode: Option<ServiceMode>,
    #[sqlx(try_from = "OptText")]
    item_lane: Option<Lane>,
    priority_channel: Option<i64>,
    default_duration_minutes: Option<i64>,
    runs_alongside: Option<i64>,
    item_qualifications: Option<String>,
    retired_at: Option<i64>,
    division_name: Option<String>,
    division_path: Option<String>,
    #[sqlx(try_from = "OptText")]
    time_zone: Option<Tz>,
}

const MEMBER_COLUMNS: &str = "id, household_id, name, relation, age_years, school_grade, phone, \
    division_id, street, longitude, latitude, guardian_consent, created_at";
const HOUSEHOLD_COLUMNS: &str = "id, requester_user_id, employer_id, department, deployed_to_centre, \
    verified_by, verified_at, created_at";

impl Store {
    /// The household of a requester, created empty on first use (a read
    /// when it exists; the insert only the first time).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn household_of(&self, requester_user_id: i64, now_ms: i64) -> Result<Household> {
        if let Some(h) = self.household_by_requester(requester_user_id).await? {
            return Ok(h);
        }
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "insert into household (requester_user_id, created_at) values ($1, $2)
             on conflict (requester_user_id) do nothing",
        )
        .bind(requester_user_id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        let sql = format!("select {HOUSEHOLD_COLUMNS} from household where requester_user_id = $1");
        let household = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(requester_user_id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(household)
    }

    /// The households an employer verified, most recently verified first.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn households_of_employer(&self, employer_id: i64) -> Result<Vec<Household>> {
        let sql = format!(
            "select {HOUSEHOLD_COLUMNS} from household where employer_id = $1
             order by verified_at desc, id desc"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(employer_id)
            .fetch_all(self.pool())
            .await?)
    }

    /// The household of a requester, if it has one (never writes).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn household_by_requester(
        &self,
        requester_user_id: i64,
    ) -> Result<Option<Household>> {
        let sql = format!("select {HOUSEHOLD_COLUMNS} from household where requester_user_id = $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(requester_user_id)
            .fetch_optional(self.pool())
            .await?)
    }

    /// Everything placing an order for `member_id` of `requester_user_id`'s
    /// household with item `item_id` needs to read, in one query: the
    /// household, the member (only if it belongs to that household), the
    /// item, the member's division and the requester's phone.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn order_context(
        &self,
        requester_user_id: i64,
        member_id: i64,
        item_id: i64,
    ) -> Result<OrderContext> {
        let row: Option<OrderContextRow> = sqlx::query_as(
            "select u.phone as requester_phone, h.id as household_id, h.deployed_to_centre,
                m.id as member_id, m.name as member_name, m.relation, m.age_years, m.school_grade,
                m.phone as member_phone, m.division_id, m.street, m.longitude, m.latitude,
                m.guardian_consent, m.created_at as member_created_at,
                i.id as item_id, i.code as item_code, i.name_zh as item_name_zh,
                i.name_en as item_name_en, i.mode as item_mode, i.lane as item_lane,
                i.priority_channel, i.default_duration_minutes, i.runs_alongside, i.retired_at,
                i.qualifications as item_qualifications, d.name as division_name, d.path as division_path, d.time_zone
             from app_user u
             left join household h on h.requester_user_id = u.id
             left join household_member m on m.id = $2 and m.household_id = h.id
             left join service_item i on i.id = $3
             left join org_unit d on d.id = m.division_id
             where u.id = $1",
        )
        .bind(requester_user_id)
        .bind(member_id)
        .bind(item_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else {
            return Ok(OrderContext::default());
        };
        let member = match (r.household_id, r.member_id, r.division_id, r.relation) {
            (Some(household_id), Some(id), Some(division_id), Some(relation)) => Some(Member {
                id,
                household_id,
                name: r.member_name.unwrap_or_default(),
                relation,
                age_years: r.age_years,
                school_grade: r.school_grade,
                phone: r.member_phone,
                division_id,
                street: r.street.unwrap_or_default(),
                longitude: r.longitude,
                latitude: r.latitude,
                guardian_consent: r.guardian_consent.unwrap_or(0) != 0,
                created_at: r.member_created_at.unwrap_or(0),
            }),
            _ => None,
        };
        let item = match (r.item_id, r.item_code, r.item_mode, r.item_lane) {
            (Some(id), Some(code), Some(mode), Some(lane)) => Some(OrderItem {
                id,
                code,
                name_zh: r.item_name_zh.unwrap_or_default(),
                name_en: r.item_name_en.unwrap_or_default(),
                mode,
                lane,
                priority_channel: r.priority_channel.unwrap_or(0) != 0,
                default_duration_minutes: r.default_duration_minutes.unwrap_or(0),
                runs_alongside: r.runs_alongside.unwrap_or(0) != 0,
                qualifications: r.item_qualifications.unwrap_or_default(),
                retired_at: r.retired_at,
            }),
            _ => None,
        };
        let division = match (r.division_name, r.division_path, r.time_zone) {
            (Some(name), Some(path), Some(time_zone)) => Some(OrderDivision {
                name,
                path,
                time_zone,
            }),
            _ => None,
        };
        Ok(OrderContext {
            requester_phone: r.requester_phone,
            household: r
                .household_id
                .map(|id| (id, r.deployed_to_centre.unwrap_or(0) == 1)),
            member,
            item,
            division,
        })
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
        let mut tx = self.begin_write().await?;
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
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
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
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "insert into household_member (household_id, name, relation, age_years, school_grade,
                phone, division_id, street, longitude, latitude, guardian_consent, created_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) returning id",
        )
        // A nullable double: see the crate docs.
        .persistent(false)
        .bind(household_id)
        .bind(&f.name)
        .bind(f.relation.as_str())
        .bind(f.age_years)
        .bind(&f.school_grade)
        .bind(&f.phone)
        .bind(f.division_id)
        .bind(&f.street)
        .bind(f.location.map(|l| l.0))
        .bind(f.location.map(|l| l.1))
        .bind(i64::from(f.guardian_consent))
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
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
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "update household_member set name = $1, relation = $2, age_years = $3, school_grade = $4,
                phone = $5, division_id = $6, street = $7, longitude = $8, latitude = $9,
                guardian_consent = $10 where id = $11",
        )
        // A nullable double: see the crate docs.
        .persistent(false)
        .bind(&f.name)
        .bind(f.relation.as_str())
        .bind(f.age_years)
        .bind(&f.school_grade)
        .bind(&f.phone)
        .bind(f.division_id)
        .bind(&f.street)
        .bind(f.location.map(|l| l.0))
        .bind(f.location.map(|l| l.1))
        .bind(i64::from(f.guardian_consent))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
