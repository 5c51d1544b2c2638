//! Whole-deployment figures for the demo simulator's report (`homefront
//! demo simulate`): counts and sums straight from the ledger tables, so
//! figures such as "46 volunteers, 69 orders, 130 service hours" are
//! computed, never typed. The dashboard and `GET /api/v1/reports/*` use
//! [`crate::figures`] instead, which scopes every figure to an org unit's
//! subtree and a period. Aggregates are wrapped in `cast(... as bigint)`
//! so SQLite and PostgreSQL decode the same type through the Any driver.

use crate::offers::Offer;
use crate::{Result, Store};

/// Orders of one catalogue item in one division and state.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct OrderCount {
    /// Catalogue item code, e.g. `groceries`.
    pub item_code: String,
    /// Materialised path of the order's division, e.g. `/1/2/15/`.
    pub division_path: String,
    /// Order state.
    pub state: String,
    /// Number of orders.
    pub orders: i64,
}

/// Ledger totals of one team.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct TeamHours {
    /// Team org unit id (`None`: entries without a team).
    pub team_id: Option<i64>,
    /// Distinct orders with a recorded entry.
    pub orders: i64,
    /// Sum of all entries' minutes, adjustments included.
    pub minutes: i64,
}

/// One accepted offer's time to accept.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct AcceptTime {
    /// The order's lane: `priority`, `urgent` or `standard`.
    pub lane: String,
    /// From the order's creation to the accept, ms.
    pub ms: i64,
}

/// An offer's candidate edge (for the batch-optimum comparison).
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct OfferEdge {
    /// Order id.
    pub order_id: i64,
    /// Volunteer account id.
    pub volunteer_user_id: i64,
    /// Great-circle km from the volunteer to the order.
    pub distance_km: f64,
    /// 1 when this offer was the accepted one.
    pub accepted: i64,
    /// The order's window start, epoch ms (groups edges by service day).
    pub window_start: i64,
    /// 1 when the volunteer declined this offer.
    pub declined: i64,
}

/// An order's first offer, for the replay's "first offer within 1 s".
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct FirstOffer {
    /// Order id.
    pub order_id: i64,
    /// From the order's creation to its first offer, ms.
    pub ms: i64,
}

/// An unfulfilled order's offers, for the replay's causes.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct UnfulfilledOffers {
    /// Order id.
    pub order_id: i64,
    /// Offers made.
    pub offers: i64,
    /// Of which declined.
    pub declined: i64,
}

impl Store {
    /// Accounts in all.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn count_users(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("select cast(count(*) as bigint) from app_user")
                .fetch_one(self.pool())
                .await?,
        )
    }

    /// Every open (`offered`) offer, oldest first.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn open_offers(&self) -> Result<Vec<Offer>> {
        let sql = format!(
            "select {} from offer where state = 'offered' order by id",
            crate::offers::COLUMNS
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.pool())
            .await?)
    }

    /// Volunteers per vetting state, by state name.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn volunteers_by_state(&self) -> Result<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "select vetting_state, cast(count(*) as bigint) from volunteer
             group by vetting_state order by vetting_state",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// Volunteers who completed vetting (reached `active` at least once),
    /// from the vetting log.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn count_vetted(&self) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "select cast(count(distinct volunteer_id) as bigint) from vetting_event
             where to_state = 'active'",
        )
        .fetch_one(self.pool())
        .await?)
    }

    /// Orders per item, division and state.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn order_counts(&self) -> Result<Vec<OrderCount>> {
        Ok(sqlx::query_as(
            "select i.code as item_code, d.path as division_path, o.state,
                cast(count(*) as bigint) as orders
             from service_order o
             join service_item i on i.id = o.item_id
             join org_unit d on d.id = o.division_id
             group by i.code, d.path, o.state
             order by i.code, d.path, o.state",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// Ledger totals per team (recorded entries and adjustments).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn hours_by_team(&self) -> Result<Vec<TeamHours>> {
        Ok(sqlx::query_as(
            "select team_id, cast(count(distinct order_id) as bigint) as orders,
                cast(coalesce(sum(minutes), 0) as bigint) as minutes
             from hours_entry group by team_id order by team_id",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// Time from order creation to the accepted offer's accept, per
    /// accepted offer, in offer order.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn accept_times(&self) -> Result<Vec<AcceptTime>> {
        Ok(sqlx::query_as(
            "select o.lane, cast(f.responded_at - o.created_at as bigint) as ms
             from offer f join service_order o on o.id = f.order_id
             where f.state = 'accepted' and f.responded_at is not null
             order by f.id",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// Order events with `action` (e.g. `escalate`).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn count_order_events(&self, action: &str) -> Result<i64> {
        Ok(
            sqlx::query_scalar(
                "select cast(count(*) as bigint) from order_event where action = $1",
            )
            .bind(action)
            .fetch_one(self.pool())
            .await?,
        )
    }

    /// Offers made `via` a route (e.g. `manual`: by a coordinator's hand),
    /// and how many of them were accepted: `(made, accepted)`.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn offers_via(&self, via: &str) -> Result<(i64, i64)> {
        Ok(sqlx::query_as(
            "select cast(count(*) as bigint),
                cast(coalesce(sum(case when state = 'accepted' then 1 else 0 end), 0) as bigint)
             from offer where via = $1",
        )
        .bind(via)
        .fetch_one(self.pool())
        .await?)
    }

    /// Served orders (completed or confirmed), and how many of them were
    /// served by a volunteer paired with the household (a pairing live at
    /// any time).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn served_by_pairing(&self) -> Result<(i64, i64)> {
        Ok(sqlx::query_as(
            "select cast(count(*) as bigint),
                cast(coalesce(sum(case when exists (
                    select 1 from pairing p where p.household_id = o.household_id
                      and p.volunteer_user_id = o.assignee_user_id) then 1 else 0 end), 0) as bigint)
             from service_order o where o.state in ('completed', 'confirmed')",
        )
        .fetch_one(self.pool())
        .await?)
    }

    /// Every offer with a distance made for an on-site order that has an
    /// accepted offer: the candidate edges the dispatcher had for the
    /// orders it placed.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn accepted_order_edges(&self) -> Result<Vec<OfferEdge>> {
        Ok(sqlx::query_as(
            "select f.order_id, f.volunteer_user_id, f.distance_km,
                cast(case when f.state = 'accepted' then 1 else 0 end as bigint) as accepted,
                o.window_start,
                cast(case when f.state = 'declined' then 1 else 0 end as bigint) as declined
             from offer f
             join service_order o on o.id = f.order_id
             join service_item i on i.id = o.item_id
             where i.mode = 'onsite' and f.distance_km is not null
               and exists (select 1 from offer a where a.order_id = f.order_id and a.state = 'accepted')
             order by f.order_id, f.id",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// Every order that got an offer, with the time from its creation to
    /// its first offer.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn first_offers(&self) -> Result<Vec<FirstOffer>> {
        Ok(sqlx::query_as(
            "select o.id as order_id, cast(min(f.offered_at) - o.created_at as bigint) as ms
             from service_order o join offer f on f.order_id = o.id
             group by o.id, o.created_at order by o.id",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// Every unfulfilled order with its offers and declines.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn unfulfilled_offers(&self) -> Result<Vec<UnfulfilledOffers>> {
        Ok(sqlx::query_as(
            "select o.id as order_id, cast(count(f.id) as bigint) as offers,
                cast(coalesce(sum(case when f.state = 'declined' then 1 else 0 end), 0) as bigint)
                    as declined
             from service_order o left join offer f on f.order_id = o.id
             where o.state = 'unfulfilled' group by o.id order by o.id",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// The teams whose volunteers were offered any order ("teams that had
    /// demand").
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn teams_with_offers(&self) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "select distinct v.team_id from offer f
             join volunteer v on v.user_id = f.volunteer_user_id order by v.team_id",
        )
        .fetch_all(self.pool())
        .await?)
    }
}
