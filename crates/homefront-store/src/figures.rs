//! Report figures for an org unit's subtree and a period, computed from the
//! order event log, the offers, the volunteer tables and the hours ledger
//! (never typed in), and the service-hours certificates.
//!
//! Scope: orders by their division's path, volunteers, hours and pairings
//! by the team's path, all with `path like '<subtree>%'`. Periods are
//! half-open `[from, to)` in epoch ms.

use serde::{Deserialize, Serialize};

use homefront_domain::order_state::OrderState;
use homefront_domain::org::OrgKind;

use crate::decode::Text;
use crate::{Result, Store};

/// An org subtree and a period `[from_ms, to_ms)`.
#[derive(Clone, Debug)]
pub struct ReportScope {
    /// Materialised path of the subtree's root, e.g. `/1/2/`.
    pub path: String,
    /// Period start, epoch ms (inclusive).
    pub from_ms: i64,
    /// Period end, epoch ms (exclusive).
    pub to_ms: i64,
}

impl ReportScope {
    fn like(&self) -> String {
        format!("{}%", self.path)
    }
}

/// One group of a breakdown with its count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Count {
    /// The group's key: a state, item code or lane.
    pub key: String,
    /// Number of orders in the group.
    pub count: i64,
}

/// p50 and p90 of a set of durations (nearest-rank method: the smallest
/// value with at least p % of the values at or below it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Durations {
    /// How many orders contributed a duration.
    pub count: i64,
    /// Median, ms; `None` without values.
    pub p50_ms: Option<i64>,
    /// 90th percentile, ms; `None` without values.
    pub p90_ms: Option<i64>,
}

impl Durations {
    /// Summarises `values` (any order).
    pub fn of(mut values: Vec<i64>) -> Durations {
        values.sort_unstable();
        Durations {
            count: i64::try_from(values.len()).unwrap_or(i64::MAX),
            p50_ms: percentile(&values, 50),
            p90_ms: percentile(&values, 90),
        }
    }
}

/// Nearest-rank percentile of sorted `values`: the value at rank
/// `ceil(p / 100 * n)` (1-based); `None` for no values.
pub fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// Order figures: orders created in the period in the subtree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderFigures {
    /// Orders created in the period.
    pub total: i64,
    /// By current state.
    pub by_state: Vec<Count>,
    /// By item code.
    pub by_item: Vec<Count>,
    /// By priority lane.
    pub by_lane: Vec<Count>,
    /// Creation to the first offer (orders that got one).
    pub time_to_first_offer: Durations,
    /// Creation to the first `assigned` event (orders that were assigned).
    pub time_to_accept: Durations,
    /// Orders whose log has a `completed` event.
    pub completed: i64,
    /// Orders whose log has a `cancelled` event.
    pub cancelled: i64,
    /// Orders whose log has an `unfulfilled` event.
    pub unfulfilled: i64,
    /// `completed / total`; `None` when there are no orders.
    pub completion_rate: Option<f64>,
    /// `cancelled / total`; `None` when there are no orders.
    pub cancellation_rate: Option<f64>,
}

/// Escalations: `escalate` events in the period on orders in the subtree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EscalationFigures {
    /// Escalation events (one per level raised).
    pub events: i64,
    /// Distinct orders escalated.
    pub orders: i64,
}

/// Volunteers of teams in the subtree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VolunteerFigures {
    /// Vetting state `active` now.
    pub active: i64,
    /// On duty now.
    pub on_duty: i64,
    /// First reached `active` within the period.
    pub newly_vetted: i64,
}

/// One line of an hours breakdown; minutes are net of adjustments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HoursLine {
    /// Team id, item code or volunteer id, as text.
    pub key: String,
    /// Team name, item name (Chinese) or volunteer display name.
    pub name: String,
    /// Minutes from check-in/check-out.
    pub recorded_minutes: i64,
    /// Minutes entered afterwards by a coordinator.
    pub backfilled_minutes: i64,
    /// Distinct orders the entries belong to.
    pub orders: i64,
}

/// Hours from the ledger: entries whose session started (or, without a
/// session, that were written) in the period, on teams in the subtree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HoursFigures {
    /// Recorded minutes in all.
    pub recorded_minutes: i64,
    /// Backfilled minutes in all.
    pub backfilled_minutes: i64,
    /// By team.
    pub by_team: Vec<HoursLine>,
    /// By item (`key` empty for entries without an item).
    pub by_item: Vec<HoursLine>,
    /// By volunteer.
    pub by_volunteer: Vec<HoursLine>,
}

/// Pairings of volunteers on teams in the subtree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PairingFigures {
    /// Started in the period.
    pub started: i64,
    /// Ended in the period.
    pub ended: i64,
    /// Live at the end of the period.
    pub live_at_end: i64,
    /// Distinct households with a live pairing at the end of the period.
    pub households_at_end: i64,
}

/// Everything `GET /api/v1/reports/summary` shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Figures {
    /// Orders created in the period.
    pub orders: OrderFigures,
    /// Escalations in the period.
    pub escalations: EscalationFigures,
    /// Volunteers.
    pub volunteers: VolunteerFigures,
    /// Service hours.
    pub hours: HoursFigures,
    /// Pairings.
    pub pairings: PairingFigures,
}

/// Totals for a public page, before small-cell suppression.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PublicTotals {
    /// Volunteers with a positive net of hours in the period.
    pub volunteers: i64,
    /// Orders completed (a `completed` event) in the period.
    pub orders_completed: i64,
    /// Net minutes of service in the period, recorded and backfilled.
    pub minutes: i64,
}

/// A service line of a certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServiceLine {
    /// Item name (Chinese); `其他` for entries without an item.
    pub item: String,
    /// Distinct orders.
    pub orders: i64,
    /// Net minutes.
    pub minutes: i64,
}

/// A stored service-hours certificate (志愿服务证明).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Certificate {
    /// Row id.
    pub id: i64,
    /// Public verification code.
    pub code: String,
    /// The volunteer's account.
    pub volunteer_user_id: i64,
    /// Period start, epoch ms.
    pub period_from: i64,
    /// Period end (exclusive), epoch ms.
    pub period_to: i64,
    /// Name as printed.
    pub volunteer_name: String,
    /// Masked phone as printed.
    pub masked_phone: String,
    /// Team and its parent unit as printed.
    pub organisation: String,
    /// Recorded minutes.
    pub recorded_minutes: i64,
    /// Backfilled minutes.
    pub backfilled_minutes: i64,
    /// JSON array of [`ServiceLine`].
    pub services: String,
    /// Issuer's account; `None` when the volunteer printed it.
    pub issued_by: Option<i64>,
    /// Issued, epoch ms.
    pub issued_at: i64,
}

/// A certificate to store.
#[derive(Clone, Debug)]
pub struct NewCertificate<'a> {
    /// Random code.
    pub code: &'a str,
    /// Volunteer.
    pub volunteer_user_id: i64,
    /// Period start.
    pub period_from: i64,
    /// Period end.
    pub period_to: i64,
    /// Name.
    pub volunteer_name: &'a str,
    /// Masked phone.
    pub masked_phone: &'a str,
    /// Organisation text.
    pub organisation: &'a str,
    /// Recorded minutes.
    pub recorded_minutes: i64,
    /// Backfilled minutes.
    pub backfilled_minutes: i64,
    /// Service lines as JSON.
    pub services: &'a str,
    /// Issuer.
    pub issued_by: Option<i64>,
}

const CERTIFICATE_COLUMNS: &str = "id, code, volunteer_user_id, period_from, period_to, \
    volunteer_name, masked_phone, organisation, recorded_minutes, backfilled_minutes, services, \
    issued_by, issued_at";

/// Orders created in the period whose division is in the subtree
/// (`$1` = path pattern, `$2`/`$3` = period).
const ORDERS_IN_SCOPE: &str = "from service_order o join org_unit d on d.id = o.division_id
    where d.path like $1 and o.created_at >= $2 and o.created_at < $3";

/// Ledger entries in the period on teams in the subtree. Entries without a
/// session count at the time they were written.
const HOURS_IN_SCOPE: &str = "from hours_entry h join org_unit t on t.id = h.team_id
    where t.path like $1
      and coalesce(h.started_at, h.created_at) >= $2 and coalesce(h.started_at, h.created_at) < $3";

/// Net recorded and backfilled minutes and distinct orders, as three columns.
const HOURS_SUMS: &str =
    "cast(coalesce(sum(case when h.kind = 'recorded' then h.minutes else 0 end), 0) as bigint),
    cast(coalesce(sum(case when h.kind = 'backfilled' then h.minutes else 0 end), 0) as bigint),
    cast(count(distinct h.order_id) as bigint)";

type LineRow = (String, String, i64, i64, i64);

fn lines(rows: Vec<LineRow>) -> Vec<HoursLine> {
    rows.into_iter()
        .map(
            |(key, name, recorded_minutes, backfilled_minutes, orders)| HoursLine {
                key,
                name,
                recorded_minutes,
                backfilled_minutes,
                orders,
            },
        )
        .collect()
}

fn rate(part: i64, total: i64) -> Option<f64> {
    // Counts are far below 2^52, so the casts are exact.
    (total > 0).then(|| part as f64 / total as f64)
}

impl Store {
    async fn scoped_counts(&self, sql: &str, scope: &ReportScope) -> Result<Vec<Count>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string()))
            .bind(scope.like())
            .bind(scope.from_ms)
            .bind(scope.to_ms)
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .into_iter()
            .map(|(key, count)| Count { key, count })
            .collect())
    }

    async fn scoped_scalar(&self, sql: &str, scope: &ReportScope) -> Result<i64> {
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
            .bind(scope.like())
            .bind(scope.from_ms)
            .bind(scope.to_ms)
            .fetch_one(self.pool())
            .await?)
    }

    async fn scoped_pairs(&self, sql: &str, scope: &ReportScope) -> Result<Vec<(i64, i64)>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string()))
            .bind(scope.like())
            .bind(scope.from_ms)
            .bind(scope.to_ms)
            .fetch_all(self.pool())
            .await?)
    }

    async fn scoped_lines(&self, sql: &str, scope: &ReportScope) -> Result<Vec<HoursLine>> {
        let rows: Vec<LineRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string()))
            .bind(scope.like())
            .bind(scope.from_ms)
            .bind(scope.to_ms)
            .fetch_all(self.pool())
            .await?;
        Ok(lines(rows))
    }

    /// Order figures of [`Figures`].
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn order_figures(&self, scope: &ReportScope) -> Result<OrderFigures> {
        let total = self
            .scoped_scalar(
                &format!("select cast(count(*) as bigint) {ORDERS_IN_SCOPE}"),
                scope,
            )
            .await?;
        let by_state = self
            .scoped_counts(
                &format!(
                    "select o.state, cast(count(*) as bigint) {ORDERS_IN_SCOPE}
                     group by o.state order by o.state"
                ),
                scope,
            )
            .await?;
        let by_item = self
            .scoped_counts(
                "select i.code, cast(count(*) as bigint)
                 from service_order o join org_unit d on d.id = o.division_id
                 join service_item i on i.id = o.item_id
                 where d.path like $1 and o.created_at >= $2 and o.created_at < $3
                 group by i.code order by i.code",
                scope,
            )
            .await?;
        let by_lane = self
            .scoped_counts(
                &format!(
                    "select o.lane, cast(count(*) as bigint) {ORDERS_IN_SCOPE}
                     group by o.lane order by o.lane"
                ),
                scope,
            )
            .await?;
        // (created_at, first offer) per order that got an offer.
        let first_offer = self
            .scoped_pairs(
                "select o.created_at, cast(min(f.offered_at) as bigint)
                 from service_order o join org_unit d on d.id = o.division_id
                 join offer f on f.order_id = o.id
                 where d.path like $1 and o.created_at >= $2 and o.created_at < $3
                 group by o.id, o.created_at",
                scope,
            )
            .await?;
        // The first `assigned` event: an accepted offer or a manual assignment.
        let first_assign = self
            .scoped_pairs(
                "select o.created_at, cast(min(e.at) as bigint)
                 from service_order o join org_unit d on d.id = o.division_id
                 join order_event e on e.order_id = o.id and e.to_state = 'assigned'
                 where d.path like $1 and o.created_at >= $2 and o.created_at < $3
                 group by o.id, o.created_at",
                scope,
            )
            .await?;
        let reached = |state: &'static str| {
            format!(
                "select cast(count(distinct o.id) as bigint)
                 from service_order o join org_unit d on d.id = o.division_id
                 join order_event e on e.order_id = o.id and e.to_state = '{state}'
                 where d.path like $1 and o.created_at >= $2 and o.created_at < $3"
            )
        };
        let completed = self.scoped_scalar(&reached("completed"), scope).await?;
        let cancelled = self.scoped_scalar(&reached("cancelled"), scope).await?;
        let unfulfilled = self.scoped_scalar(&reached("unfulfilled"), scope).await?;
        Ok(OrderFigures {
            total,
            by_state,
            by_item,
            by_lane,
            time_to_first_offer: Durations::of(first_offer.iter().map(|(c, f)| f - c).collect()),
            time_to_accept: Durations::of(first_assign.iter().map(|(c, a)| a - c).collect()),
            completed,
            cancelled,
            unfulfilled,
            completion_rate: rate(completed, total),
            cancellation_rate: rate(cancelled, total),
        })
    }

    /// Hours figures of [`Figures`].
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn hours_figures(&self, scope: &ReportScope) -> Result<HoursFigures> {
        let by_team = self
            .scoped_lines(
                &format!(
                    "select cast(t.id as text), t.name, {HOURS_SUMS} {HOURS_IN_SCOPE}
                     group by t.id, t.name order by t.id"
                ),
                scope,
            )
            .await?;
        let by_item = self
            .scoped_lines(
                &format!(
                    "select coalesce(i.code, ''), coalesce(i.name_zh, ''), {HOURS_SUMS}
                     from hours_entry h join org_unit t on t.id = h.team_id
                     left join service_item i on i.id = h.item_id
                     where t.path like $1
                       and coalesce(h.started_at, h.created_at) >= $2
                       and coalesce(h.started_at, h.created_at) < $3
                     group by i.code, i.name_zh order by coalesce(i.code, '')"
                ),
                scope,
            )
            .await?;
        let by_volunteer = self.volunteer_hours(scope).await?;
        Ok(HoursFigures {
            recorded_minutes: by_team.iter().map(|l| l.recorded_minutes).sum(),
            backfilled_minutes: by_team.iter().map(|l| l.backfilled_minutes).sum(),
            by_team,
            by_item,
            by_volunteer,
        })
    }

    /// Hours per volunteer (the hours export's rows and the summary's
    /// `by_volunteer`), ordered by volunteer id.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn volunteer_hours(&self, scope: &ReportScope) -> Result<Vec<HoursLine>> {
        self.scoped_lines(
            &format!(
                "select cast(u.id as text), u.display_name, {HOURS_SUMS}
                 from hours_entry h join org_unit t on t.id = h.team_id
                 join app_user u on u.id = h.volunteer_user_id
                 where t.path like $1
                   and coalesce(h.started_at, h.created_at) >= $2
                   and coalesce(h.started_at, h.created_at) < $3
                 group by u.id, u.display_name order by u.id"
            ),
            scope,
        )
        .await
    }

    /// All figures of `GET /api/v1/reports/summary`.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn report_figures(&self, scope: &ReportScope) -> Result<Figures> {
        let orders = self.order_figures(scope).await?;
        let (events, orders_escalated): (i64, i64) = sqlx::query_as(
            "select cast(count(*) as bigint), cast(count(distinct e.order_id) as bigint)
             from order_event e join service_order o on o.id = e.order_id
             join org_unit d on d.id = o.division_id
             where d.path like $1 and e.action = 'escalate' and e.at >= $2 and e.at < $3",
        )
        .bind(scope.like())
        .bind(scope.from_ms)
        .bind(scope.to_ms)
        .fetch_one(self.pool())
        .await?;
        let (active, on_duty): (i64, i64) = sqlx::query_as(
            "select cast(coalesce(sum(case when v.vetting_state = 'active' then 1 else 0 end), 0) as bigint),
                    cast(coalesce(sum(v.on_duty), 0) as bigint)
             from volunteer v join org_unit t on t.id = v.team_id where t.path like $1",
        )
        .bind(scope.like())
        .fetch_one(self.pool())
        .await?;
        // Newly vetted: the first move to `active` falls in the period
        // (a reinstatement after suspension is not new).
        let newly_vetted = self
            .scoped_pairs(
                "select ve.volunteer_id, cast(min(ve.at) as bigint)
                 from vetting_event ve join volunteer v on v.user_id = ve.volunteer_id
                 join org_unit t on t.id = v.team_id
                 where t.path like $1 and ve.to_state = 'active'
                 group by ve.volunteer_id
                 having min(ve.at) >= $2 and min(ve.at) < $3",
                scope,
            )
            .await?
            .len();
        let hours = self.hours_figures(scope).await?;
        let (started, ended, live_at_end, households_at_end): (i64, i64, i64, i64) =
            sqlx::query_as(
                "select
                   cast(coalesce(sum(case when p.started_at >= $2 and p.started_at < $3 then 1 else 0 end), 0) as bigint),
                   cast(coalesce(sum(case when p.ended_at >= $2 and p.ended_at < $3 then 1 else 0 end), 0) as bigint),
                   cast(coalesce(sum(case when p.started_at < $3 and (p.ended_at is null or p.ended_at >= $3) then 1 else 0 end), 0) as bigint),
                   cast(count(distinct case when p.started_at < $3 and (p.ended_at is null or p.ended_at >= $3) then p.household_id end) as bigint)
                 from pairing p join volunteer v on v.user_id = p.volunteer_user_id
                 join org_unit t on t.id = v.team_id
                 where t.path like $1",
            )
            .bind(scope.like())
            .bind(scope.from_ms)
            .bind(scope.to_ms)
            .fetch_one(self.pool())
            .await?;
        Ok(Figures {
            orders,
            escalations: EscalationFigures {
                events,
                orders: orders_escalated,
            },
            volunteers: VolunteerFigures {
                active,
                on_duty,
                newly_vetted: i64::try_from(newly_vetted).unwrap_or(i64::MAX),
            },
            hours,
            pairings: PairingFigures {
                started,
                ended,
                live_at_end,
                households_at_end,
            },
        })
    }

    /// Totals for public figures (before suppression): volunteers who
    /// served, orders completed and net minutes, all in the period.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn public_totals(&self, scope: &ReportScope) -> Result<PublicTotals> {
        let per_volunteer = self.volunteer_hours(scope).await?;
        let volunteers = per_volunteer
            .iter()
            .filter(|l| l.recorded_minutes + l.backfilled_minutes > 0)
            .count();
        let minutes = per_volunteer
            .iter()
            .map(|l| l.recorded_minutes + l.backfilled_minutes)
            .sum();
        let orders_completed = self
            .scoped_scalar(
                "select cast(count(distinct e.order_id) as bigint)
                 from order_event e join service_order o on o.id = e.order_id
                 join org_unit d on d.id = o.division_id
                 where d.path like $1 and e.to_state = 'completed' and e.at >= $2 and e.at < $3",
                scope,
            )
            .await?;
        Ok(PublicTotals {
            volunteers: i64::try_from(volunteers).unwrap_or(i64::MAX),
            orders_completed,
            minutes,
        })
    }

    /// One volunteer's ledger in `[from_ms, to_ms)`: net recorded and
    /// backfilled minutes and the services by item, for a certificate.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn certificate_figures(
        &self,
        volunteer: i64,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<(i64, i64, Vec<ServiceLine>)> {
        let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "select coalesce(i.name_zh, '其他'),
                cast(coalesce(sum(case when h.kind = 'recorded' then h.minutes else 0 end), 0) as bigint),
                cast(coalesce(sum(case when h.kind = 'backfilled' then h.minutes else 0 end), 0) as bigint),
                cast(count(distinct h.order_id) as bigint)
             from hours_entry h left join service_item i on i.id = h.item_id
             where h.volunteer_user_id = $1
               and coalesce(h.started_at, h.created_at) >= $2
               and coalesce(h.started_at, h.created_at) < $3
             group by i.name_zh order by coalesce(i.name_zh, '其他')",
        )
        .bind(volunteer)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(self.pool())
        .await?;
        let recorded = rows.iter().map(|r| r.1).sum();
        let backfilled = rows.iter().map(|r| r.2).sum();
        let services = rows
            .into_iter()
            .map(|(item, r, b, orders)| ServiceLine {
                item,
                orders,
                minutes: r + b,
            })
            .collect();
        Ok((recorded, backfilled, services))
    }

    /// Stores a certificate.
    ///
    /// # Errors
    /// [`crate::StoreError::Conflict`] when the code exists; database errors.
    #[tracing::instrument(skip_all)]
    pub async fn insert_certificate(
        &self,
        c: &NewCertificate<'_>,
        now_ms: i64,
    ) -> Result<Certificate> {
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "insert into certificate (code, volunteer_user_id, period_from, period_to,
                volunteer_name, masked_phone, organisation, recorded_minutes, backfilled_minutes,
                services, issued_by, issued_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             returning {CERTIFICATE_COLUMNS}"
        );
        let certificate = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(c.code)
            .bind(c.volunteer_user_id)
            .bind(c.period_from)
            .bind(c.period_to)
            .bind(c.volunteer_name)
            .bind(c.masked_phone)
            .bind(c.organisation)
            .bind(c.recorded_minutes)
            .bind(c.backfilled_minutes)
            .bind(c.services)
            .bind(c.issued_by)
            .bind(now_ms)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(certificate)
    }

    /// The latest certificate of `volunteer` for exactly this period with
    /// exactly these figures (so printing twice reuses one code).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn same_certificate(
        &self,
        volunteer: i64,
        period: (i64, i64),
        minutes: (i64, i64),
        services: &str,
    ) -> Result<Option<Certificate>> {
        let sql = format!(
            "select {CERTIFICATE_COLUMNS} from certificate
             where volunteer_user_id = $1 and period_from = $2 and period_to = $3
               and recorded_minutes = $4 and backfilled_minutes = $5 and services = $6
             order by id desc limit 1"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(volunteer)
            .bind(period.0)
            .bind(period.1)
            .bind(minutes.0)
            .bind(minutes.1)
            .bind(services)
            .fetch_optional(self.pool())
            .await?)
    }

    /// The notification outbox's backlog: `(waiting, oldest)` where
    /// `waiting` counts events not yet planned plus deliveries still
    /// pending, and `oldest` is the creation time (epoch ms) of the oldest
    /// of their events, `None` when nothing waits. For the outbox-lag metric.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn outbox_backlog(&self) -> Result<(i64, Option<i64>)> {
        let (unplanned, oldest_unplanned): (i64, Option<i64>) = sqlx::query_as(
            "select cast(count(*) as bigint), cast(min(created_at) as bigint)
             from outbox_event where planned_at is null",
        )
        .fetch_one(self.pool())
        .await?;
        let (pending, oldest_pending): (i64, Option<i64>) = sqlx::query_as(
            "select cast(count(*) as bigint), cast(min(e.created_at) as bigint)
             from outbox_delivery d join outbox_event e on e.id = d.event_id
             where d.state = 'pending'",
        )
        .fetch_one(self.pool())
        .await?;
        let oldest = match (oldest_unplanned, oldest_pending) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok((unplanned + pending, oldest))
    }

    /// A certificate by its public code.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn certificate_by_code(&self, code: &str) -> Result<Option<Certificate>> {
        let sql = format!("select {CERTIFICATE_COLUMNS} from certificate where code = $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(code)
            .fetch_optional(self.pool())
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[7], 90), Some(7));
        let v: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&v, 50), Some(5));
        assert_eq!(percentile(&v, 90), Some(9));
        assert_eq!(percentile(&[1, 2, 3], 50), Some(2));
        assert_eq!(percentile(&[1, 2, 3], 90), Some(3));
    }
}

/// One order of the dashboard's daily series: when it was placed, its
/// current state and when it was first assigned.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct OrderTimeline {
    /// Placed at, epoch ms.
    pub created_at: i64,
    /// Current state.
    #[sqlx(try_from = "Text")]
    pub state: OrderState,
    /// First `assigned` event (an accepted offer or a manual assignment),
    /// epoch ms; `None` while never assigned.
    pub first_assigned_at: Option<i64>,
}

/// A division on the dashboard's map: where it is and what is open there.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct MapPoint {
    /// Org unit id of the division.
    pub id: i64,
    /// Its materialised path, e.g. `/1/2/15/`.
    pub path: String,
    /// Division name.
    pub name: String,
    /// `city` or `county`.
    #[sqlx(try_from = "Text")]
    pub kind: OrgKind,
    /// Representative point, decimal degrees.
    pub longitude: f64,
    /// Representative point, decimal degrees.
    pub latitude: f64,
    /// Orders in this division not yet finished (submitted, dispatching,
    /// assigned, in service).
    pub open_orders: i64,
    /// Active volunteers on duty whose home is in this division.
    pub on_duty: i64,
}

impl Store {
    /// The orders placed in the period in the subtree, oldest first, for
    /// the dashboard's orders-per-day and time-to-accept charts (the same
    /// scope and event rule as [`Store::order_figures`]).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn order_timelines(&self, scope: &ReportScope) -> Result<Vec<OrderTimeline>> {
        Ok(sqlx::query_as(
            "select o.created_at, o.state,
                (select cast(min(e.at) as bigint) from order_event e
                 where e.order_id = o.id and e.to_state = 'assigned') as first_assigned_at
             from service_order o join org_unit d on d.id = o.division_id
             where d.path like $1 and o.created_at >= $2 and o.created_at < $3
             order by o.created_at, o.id",
        )
        .bind(scope.like())
        .bind(scope.from_ms)
        .bind(scope.to_ms)
        .fetch_all(self.pool())
        .await?)
    }

    /// The divisions (cities and counties with coordinates) in the subtree
    /// at `path`, each with its open orders and on-duty active volunteers now,
    /// ordered by id. Orders count where the service happens; volunteers
    /// where they live (a city counts only those registered at city level).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn map_points(&self, path: &str) -> Result<Vec<MapPoint>> {
        Ok(sqlx::query_as(
            "select d.id, d.path, d.name, d.kind, d.longitude, d.latitude,
                (select cast(count(*) as bigint) from service_order o
                 where o.division_id = d.id
                   and o.state in ('submitted', 'dispatching', 'assigned', 'in_service'))
                    as open_orders,
                (select cast(count(*) as bigint) from volunteer v
                 where v.home_division_id = d.id and v.on_duty = 1
                   and v.vetting_state = 'active') as on_duty
             from org_unit d
             where d.path like $1 and d.kind in ('city', 'county')
               and d.longitude is not null and d.latitude is not null
             order by d.id",
        )
        .bind(format!("{path}%"))
        .fetch_all(self.pool())
        .await?)
    }
}
