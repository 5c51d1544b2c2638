//! Dispatch bookkeeping: per-unit settings, the orders waiting for a
//! round, and escalation levels.

use std::collections::HashMap;

use serde::Serialize;

use crate::{Result, Store};

/// A unit's dispatch setting as stored.
#[derive(Clone, Debug, PartialEq, Serialize, sqlx::FromRow)]
pub struct DispatchSetting {
    /// The unit it applies to (and its subtree, unless overridden below).
    pub org_unit_id: i64,
    /// `auto`, `sequential`, `broadcast`, `batch` or `manual`.
    pub mode: String,
    /// Offers sent at once in broadcast mode.
    pub broadcast_k: i64,
    /// Cost weights JSON (`homefront_dispatch::CostWeights`).
    pub weights: String,
    /// Last change, epoch ms.
    pub updated_at: i64,
    /// Minutes after a volunteer's offer of an order expired (or was
    /// withdrawn) before the dispatcher may offer them that order again.
    pub reoffer_cooldown_minutes: i64,
}

/// A unit's dispatch setting to store (see [`Store::set_dispatch_setting`]).
#[derive(Clone, Copy, Debug)]
pub struct NewDispatchSetting<'a> {
    /// `auto`, `sequential`, `broadcast`, `batch` or `manual` (CHECK).
    pub mode: &'a str,
    /// Offers sent at once in broadcast mode, 1–50 (CHECK).
    pub broadcast_k: i64,
    /// Cost weights JSON (`homefront_dispatch::CostWeights`).
    pub weights: &'a str,
    /// Re-offer cooldown in minutes, 0–1440 (CHECK).
    pub reoffer_cooldown_minutes: i64,
}

/// Default re-offer cooldown in minutes (the column's default).
pub const DEFAULT_REOFFER_COOLDOWN_MINUTES: i64 = 10;

/// An order waiting for its next dispatch round.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct WaitingOrder {
    /// Order id.
    pub id: i64,
    /// `submitted` or `dispatching`.
    pub state: String,
    /// Lane text.
    pub lane: String,
    /// 0: with the dispatcher; 1–3: county, city, province queue.
    pub escalation_level: i64,
    /// Created, epoch ms.
    pub created_at: i64,
    /// Division path (nearest setting wins).
    pub division_path: String,
}

impl Store {
    /// Minutes in the hours ledger per volunteer since `since_ms` (recorded
    /// and backfilled, adjustments included): the dispatcher's fairness input.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn recent_service_minutes(&self, since_ms: i64) -> Result<HashMap<i64, i64>> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "select volunteer_user_id, cast(sum(minutes) as bigint) from hours_entry
             where coalesce(started_at, created_at) >= $1 group by volunteer_user_id",
        )
        .bind(since_ms)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// Live assignments per volunteer (`assigned` or `in_service` orders).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn active_loads(&self) -> Result<HashMap<i64, i64>> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "select assignee_user_id, cast(count(*) as bigint) from service_order
             where state in ('assigned', 'in_service') and assignee_user_id is not null
             group by assignee_user_id",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// Open offers (`offered`, not yet expired at `now_ms`) per volunteer,
    /// leaving out those of order `except_order`: they count toward the
    /// volunteer's `max_concurrent` when the dispatcher builds that order's
    /// candidate pool, so a volunteer at the cap gets no new offers.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn open_offer_counts(
        &self,
        now_ms: i64,
        except_order: i64,
    ) -> Result<HashMap<i64, i64>> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "select volunteer_user_id, cast(count(*) as bigint) from offer
             where state = 'offered' and expires_at > $1 and order_id <> $2
             group by volunteer_user_id",
        )
        .bind(now_ms)
        .bind(except_order)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// The setting that applies to a unit at `path`: the deepest unit on the
    /// path that has one; `None` when no unit does (the default applies).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn dispatch_setting_for(&self, path_ids: &[i64]) -> Result<Option<DispatchSetting>> {
        for id in path_ids.iter().rev() {
            let s: Option<DispatchSetting> = sqlx::query_as(
                "select org_unit_id, mode, broadcast_k, weights, updated_at, reoffer_cooldown_minutes
                 from dispatch_setting where org_unit_id = $1",
            )
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
            if s.is_some() {
                return Ok(s);
            }
        }
        Ok(None)
    }

    /// Every unit's dispatch setting (the dispatcher picks the deepest on
    /// each order's path, as [`dispatch_setting_for`](Store::dispatch_setting_for) does).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn dispatch_settings(&self) -> Result<HashMap<i64, DispatchSetting>> {
        let rows: Vec<DispatchSetting> = sqlx::query_as(
            "select org_unit_id, mode, broadcast_k, weights, updated_at, reoffer_cooldown_minutes
             from dispatch_setting",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|s| (s.org_unit_id, s)).collect())
    }

    /// Every offer of the unassigned orders (`submitted` or `dispatching`),
    /// oldest first: their offer history for a whole dispatcher pass, in
    /// one query.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn offers_of_backlog(&self) -> Result<Vec<crate::offers::Offer>> {
        let columns = crate::offers::COLUMNS
            .split(", ")
            .map(|c| format!("f.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "select {columns} from offer f join service_order o on o.id = f.order_id
             where o.state in ('submitted', 'dispatching') order by f.order_id, f.id"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.pool())
            .await?)
    }

    /// The most volunteers a household may be paired with under the
    /// deepest setting on `path_ids` (default 2).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn dispatch_pairing_max(&self, path_ids: &[i64]) -> Result<i64> {
        for id in path_ids.iter().rev() {
            let max: Option<i64> = sqlx::query_scalar(
                "select pairing_max from dispatch_setting where org_unit_id = $1",
            )
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
            if let Some(m) = max {
                return Ok(m);
            }
        }
        Ok(2)
    }

    /// Sets a unit's dispatch setting.
    ///
    /// # Errors
    /// Database errors (CHECK on the mode, `broadcast_k` and the cooldown).
    #[tracing::instrument(skip_all)]
    pub async fn set_dispatch_setting(
        &self,
        org_unit_id: i64,
        setting: &NewDispatchSetting<'_>,
        now_ms: i64,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "insert into dispatch_setting (org_unit_id, mode, broadcast_k, weights, updated_at,
                reoffer_cooldown_minutes)
             values ($1, $2, $3, $4, $5, $6)
             on conflict (org_unit_id) do update set mode = excluded.mode,
                broadcast_k = excluded.broadcast_k, weights = excluded.weights,
                updated_at = excluded.updated_at,
                reoffer_cooldown_minutes = excluded.reoffer_cooldown_minutes",
        )
        .bind(org_unit_id)
        .bind(setting.mode)
        .bind(setting.broadcast_k)
        .bind(setting.weights)
        .bind(now_ms)
        .bind(setting.reoffer_cooldown_minutes)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Orders that need a dispatch round: `submitted`, or `dispatching`
    /// without an open offer. Escalated orders stay here: the dispatcher
    /// keeps trying while coordinators are alerted. Priority lane first,
    /// then oldest.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn orders_waiting(&self) -> Result<Vec<WaitingOrder>> {
        Ok(sqlx::query_as(
            "select o.id, o.state, o.lane, o.escalation_level, o.created_at, d.path as division_path
             from service_order o join org_unit d on d.id = o.division_id
             where o.state in ('submitted', 'dispatching')
               and not exists (select 1 from offer f where f.order_id = o.id and f.state = 'offered')
             order by case o.lane when 'priority' then 0 when 'urgent' then 1 else 2 end, o.created_at, o.id",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// Unassigned orders (submitted or dispatching) with their escalation
    /// level, for the escalation pass.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn orders_unassigned(&self) -> Result<Vec<WaitingOrder>> {
        Ok(sqlx::query_as(
            "select o.id, o.state, o.lane, o.escalation_level, o.created_at, d.path as division_path
             from service_order o join org_unit d on d.id = o.division_id
             where o.state in ('submitted', 'dispatching') order by o.id",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// Raises an order's escalation level (compare-and-set on the old level)
    /// and logs an `escalate` event in the same transaction; `to_state` is
    /// the unchanged state. Returns whether this call raised it.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn escalate_order(
        &self,
        order_id: i64,
        from_level: i64,
        to_level: i64,
        reason: &str,
        now_ms: i64,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "update service_order set escalation_level = $1, escalated_at = $2, updated_at = $2
             where id = $3 and escalation_level = $4 and state in ('submitted', 'dispatching')",
        )
        .bind(to_level)
        .bind(now_ms)
        .bind(order_id)
        .bind(from_level)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 1 {
            sqlx::query(
                "insert into order_event (order_id, at, action, from_state, to_state, actor_user_id, reason)
                 select id, $1, 'escalate', state, state, null, $2 from service_order where id = $3",
            )
            .bind(now_ms)
            .bind(reason)
            .bind(order_id)
            .execute(&mut *tx)
            .await?;
            crate::outbox::enqueue_order_in(
                &mut tx,
                crate::outbox::kind::ORDER_ESCALATED,
                order_id,
                None,
                &[("level", to_level.into()), ("reason", reason.into())],
                now_ms,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }
}
