//! Bulk set-up and read-outs of the dispatcher's burst benchmark
//! (`homefront bench burst`): many on-duty volunteers written in a few
//! multi-row inserts, and each order's first offer read back in one query.

use crate::{Result, Store};

/// Volunteers per multi-row insert (well under SQLite's 32,766 and
/// PostgreSQL's 65,535 bound parameters; the values here are literals).
const CHUNK: usize = 1000;

/// One volunteer to create: where they are, in degrees (WGS 84).
#[derive(Clone, Copy, Debug)]
pub struct BulkVolunteer {
    /// Longitude, degrees.
    pub longitude: f64,
    /// Latitude, degrees.
    pub latitude: f64,
}

/// What every bulk volunteer shares.
#[derive(Clone, Copy, Debug)]
pub struct BulkTeam {
    /// Their team.
    pub team_id: i64,
    /// Their home division.
    pub home_division_id: i64,
    /// Service radius, km (1..=200, as the schema checks).
    pub service_radius_km: f64,
    /// Concurrent assignments each may hold (1..=10).
    pub max_concurrent: i64,
    /// On duty since, and credentials valid from, epoch ms; credentials
    /// run a year from there.
    pub since_ms: i64,
}

impl Store {
    /// Creates `people.len()` accounts with active, on-duty volunteer
    /// profiles of `team`, each with valid training, agreement and
    /// insurance credentials, in multi-row inserts of [`CHUNK`] (phones
    /// `+86170xxxxxxxx` from `first_phone`, which must be unused). Not for
    /// production data: no vetting events, no password (the hash `!` never
    /// verifies). Returns the new account ids in the order of `people`.
    ///
    /// # Errors
    /// Database errors (a phone already taken: [`crate::StoreError::Conflict`]).
    #[tracing::instrument(skip_all)]
    pub async fn bulk_on_duty_volunteers(
        &self,
        team: &BulkTeam,
        people: &[BulkVolunteer],
        first_phone: u64,
    ) -> Result<Vec<i64>> {
        let mut ids = Vec::with_capacity(people.len());
        for (c, chunk) in people.chunks(CHUNK).enumerate() {
            let base = first_phone + (c * CHUNK) as u64;
            let phone = |i: usize| format!("+86170{:08}", base + i as u64);
            // Only numbers formatted here go into the text: no input.
            let users: Vec<String> = (0..chunk.len())
                .map(|i| {
                    format!(
                        "('{}', '志愿者{}', '!', {})",
                        phone(i),
                        base + i as u64,
                        team.since_ms
                    )
                })
                .collect();
            let mut tx = self.begin_write().await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "insert into app_user (phone, display_name, password_hash, created_at) values {}",
                users.join(", ")
            )))
            .execute(&mut *tx)
            .await?;
            let first = phone(0);
            let last = phone(chunk.len() - 1);
            let made: Vec<(i64, String)> = sqlx::query_as(
                "select id, phone from app_user where phone >= $1 and phone <= $2 order by phone",
            )
            .bind(&first)
            .bind(&last)
            .fetch_all(&mut *tx)
            .await?;
            let rows: Vec<String> = made
                .iter()
                .zip(chunk)
                .map(|((id, _), p)| {
                    format!(
                        "({id}, {}, {}, {:.6}, {:.6}, {}, {}, 'active', 1, {}, {}, {})",
                        team.team_id,
                        team.home_division_id,
                        p.longitude,
                        p.latitude,
                        team.service_radius_km,
                        team.max_concurrent,
                        team.since_ms,
                        team.since_ms,
                        team.since_ms,
                    )
                })
                .collect();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "insert into volunteer (user_id, team_id, home_division_id, home_longitude,
                    home_latitude, service_radius_km, max_concurrent, vetting_state, on_duty,
                    on_duty_since, created_at, updated_at) values {}",
                rows.join(", ")
            )))
            .execute(&mut *tx)
            .await?;
            // The three base credentials of each, set-based.
            sqlx::query(
                "insert into credential (volunteer_id, kind, valid_from, valid_to, insurer,
                    policy_number, created_at)
                 select u.id, k.kind, $1, $2,
                    case when k.kind = 'insurance' then 'bench' end,
                    case when k.kind = 'insurance' then 'BENCH' end, $1
                 from app_user u
                 cross join (select 'training_certificate' as kind
                             union all select 'service_agreement'
                             union all select 'insurance') k
                 where u.phone >= $3 and u.phone <= $4",
            )
            .bind(team.since_ms)
            .bind(team.since_ms + 365 * 86_400_000)
            .bind(&first)
            .bind(&last)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            ids.extend(made.into_iter().map(|(id, _)| id));
        }
        Ok(ids)
    }

    /// Orders with id in `from_id..=to_id` that have no offer yet.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn count_orders_without_offer(&self, from_id: i64, to_id: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "select cast(count(*) as bigint) from service_order o
             where o.id between $1 and $2
               and o.id not in (select f.order_id from offer f where f.order_id between $1 and $2)",
        )
        .bind(from_id)
        .bind(to_id)
        .fetch_one(self.pool())
        .await?)
    }

    /// For each order with id in `from_id..=to_id` that has an offer: its
    /// creation and its first offer's creation, epoch ms.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn first_offer_times(&self, from_id: i64, to_id: i64) -> Result<Vec<(i64, i64)>> {
        Ok(sqlx::query_as(
            "select o.created_at, cast(min(f.offered_at) as bigint) from service_order o
             join offer f on f.order_id = o.id
             where o.id between $1 and $2 group by o.id, o.created_at",
        )
        .bind(from_id)
        .bind(to_id)
        .fetch_all(self.pool())
        .await?)
    }
}
