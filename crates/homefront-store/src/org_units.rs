//! Organisation units: the division tree and the teams, employers and
//! partners placed under it.

use homefront_domain::org::{OrgKind, OrgPath};
use serde::Serialize;

use chrono_tz::Tz;

use crate::decode::Text;
use crate::{Result, Store, StoreError};

/// One organisation unit as stored.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct OrgUnit {
    /// Row id.
    pub id: i64,
    /// `province`, `city`, `county`, `team`, `employer` or `partner`.
    #[sqlx(try_from = "Text")]
    #[schema(value_type = String)]
    pub kind: OrgKind,
    /// 12-digit GB/T 2260 code, for divisions only.
    pub adcode: Option<String>,
    /// Display name (any script, stored as given).
    pub name: String,
    /// Enclosing unit; `None` for a province.
    pub parent_id: Option<i64>,
    /// Materialised path of ids, e.g. `/1/2/15/`.
    pub path: String,
    /// Representative point, decimal degrees.
    pub longitude: Option<f64>,
    /// Representative point, decimal degrees.
    pub latitude: Option<f64>,
    /// IANA time zone in which times are shown, e.g. `Asia/Shanghai`.
    #[sqlx(try_from = "Text")]
    #[schema(value_type = String)]
    pub time_zone: Tz,
    /// Creation instant, epoch ms.
    pub created_at: i64,
}

impl OrgUnit {
    /// The unit's path as a domain value.
    pub fn org_path(&self) -> OrgPath {
        OrgPath::from_stored(self.path.clone())
    }
}

/// A new non-division unit.
#[derive(Clone, Debug)]
pub struct NewOrgUnit<'a> {
    /// `team`, `employer` or `partner`.
    pub kind: OrgKind,
    /// Display name.
    pub name: &'a str,
    /// The unit it is placed under.
    pub parent: &'a OrgUnit,
    /// Optional point, decimal degrees (longitude, latitude).
    pub location: Option<(f64, f64)>,
}

const COLUMNS: &str =
    "id, kind, adcode, name, parent_id, path, longitude, latitude, time_zone, created_at";

impl Store {
    /// One unit by id.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn org_unit(&self, id: i64) -> Result<Option<OrgUnit>> {
        let sql = format!("select {COLUMNS} from org_unit where id = $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    /// Several org units at once, by id (the districts of a page's
    /// household members), ordered by id; unknown ids are left out and
    /// repeated ids read once. Binds one parameter per id: callers pass a
    /// page's worth (hundreds), not thousands.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn org_units_by_ids(&self, ids: &[i64]) -> Result<Vec<OrgUnit>> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let slots: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "select {COLUMNS} from org_unit where id in ({}) order by id",
            slots.join(", ")
        );
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for id in &ids {
            q = q.bind(*id);
        }
        Ok(q.fetch_all(self.pool()).await?)
    }

    /// One division by 12-digit adcode.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn org_unit_by_adcode(&self, adcode: &str) -> Result<Option<OrgUnit>> {
        let sql = format!("select {COLUMNS} from org_unit where adcode = $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(adcode)
            .fetch_optional(self.pool())
            .await?)
    }

    /// Units whose path starts with one of `scopes` (each scope's subtree,
    /// the scope unit included), optionally only direct children of
    /// `parent_id` and only of `kind`; `scopes = None` means everything.
    /// Ordered by path, so parents precede children.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn org_units(
        &self,
        scopes: Option<&[OrgPath]>,
        parent_id: Option<i64>,
        kind: Option<OrgKind>,
    ) -> Result<Vec<OrgUnit>> {
        let mut sql = format!("select {COLUMNS} from org_unit where 1 = 1");
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        let mut binds: Vec<String> = Vec::new();
        if let Some(scopes) = scopes {
            if scopes.is_empty() {
                return Ok(Vec::new());
            }
            let clauses: Vec<String> = scopes
                .iter()
                .map(|s| {
                    binds.push(format!("{}%", s.as_str()));
                    format!("path like ${}", next())
                })
                .collect();
            sql.push_str(&format!(" and ({})", clauses.join(" or ")));
        }
        let parent_slot = parent_id.map(|_| next());
        if let Some(slot) = parent_slot {
            sql.push_str(&format!(" and parent_id = ${slot}"));
        }
        let kind_slot = kind.map(|_| next());
        if let Some(slot) = kind_slot {
            sql.push_str(&format!(" and kind = ${slot}"));
        }
        sql.push_str(" order by path");
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = q.bind(b);
        }
        if let Some(p) = parent_id {
            q = q.bind(p);
        }
        if let Some(k) = kind {
            q = q.bind(k.as_str());
        }
        Ok(q.fetch_all(self.pool()).await?)
    }

    /// Number of org units in all.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn count_org_units(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("select cast(count(*) as bigint) from org_unit")
                .fetch_one(self.pool())
                .await?,
        )
    }

    /// Creates a team, employer or partner under `new.parent`.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] on a duplicate; database errors.
    #[tracing::instrument(skip_all)]
    pub async fn create_org_unit(&self, new: NewOrgUnit<'_>, now_ms: i64) -> Result<OrgUnit> {
        let mut tx = self.begin_write().await?;
        let temp_path = format!("pending:{}:{}", new.parent.id, now_ms);
        let id: i64 = sqlx::query_scalar(
            "insert into org_unit (kind, name, parent_id, path, longitude, latitude, time_zone, created_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8) returning id",
        )
        // A nullable double: see the crate docs.
        .persistent(false)
        .bind(new.kind.as_str())
        .bind(new.name)
        .bind(new.parent.id)
        .bind(&temp_path)
        .bind(new.location.map(|l| l.0))
        .bind(new.location.map(|l| l.1))
        .bind(new.parent.time_zone.name())
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await?;
        let path = new.parent.org_path().child(id);
        sqlx::query("update org_unit set path = $1 where id = $2")
            .bind(path.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.org_unit(id)
            .await?
            .ok_or_else(|| StoreError::Database(sqlx::Error::RowNotFound))
    }

    /// Renames a unit and/or sets its time zone.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn update_org_unit(
        &self,
        id: i64,
        name: Option<&str>,
        time_zone: Option<Tz>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "update org_unit set name = coalesce($1, name), time_zone = coalesce($2, time_zone) where id = $3",
        )
        .bind(name)
        .bind(time_zone.map(|tz| tz.name()))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
