//! Fulfilment: check-in and check-out, the service-hours ledger,
//! confirmation with feedback, the coordinator's follow-up queue, and
//! follow-up orders.

use homefront_domain::Timestamp;
use homefront_domain::hours::{self, HoursKind};
use homefront_domain::order_state::{EventAction, OrderAction, OrderState, Reason};
use serde::Serialize;

use homefront_domain::follow_up::{FollowUpKind, FollowUpStatus};

use crate::decode::{Flag, Text, as_flag};
use crate::orders::{Transitioned, events, transition_in, transition_recorded_in};
use crate::{Result, Store, StoreError, Tx};

/// One ledger entry. Entries are never edited or deleted; an adjustment is
/// a new entry whose `adjusts_entry_id` names the entry it corrects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct HoursEntry {
    /// Row id.
    pub id: i64,
    /// The volunteer's account.
    pub volunteer_user_id: i64,
    /// The order served, when there is one.
    pub order_id: Option<i64>,
    /// The catalogue item.
    pub item_id: Option<i64>,
    /// The volunteer's team at the time.
    pub team_id: Option<i64>,
    /// `recorded` (from check-in/out) or `backfilled` (entered by a coordinator).
    #[sqlx(try_from = "Text")]
    #[schema(value_type = String)]
    pub kind: HoursKind,
    /// Whole minutes; negative only for adjustments.
    pub minutes: i64,
    /// Session start, epoch ms.
    pub started_at: Option<i64>,
    /// Session end, epoch ms.
    pub ended_at: Option<i64>,
    /// The entry this one adjusts.
    pub adjusts_entry_id: Option<i64>,
    /// 1 when the minutes were capped (check-out missing past the deadline).
    #[sqlx(try_from = "Flag")]
    #[serde(serialize_with = "as_flag")]
    #[schema(value_type = i64)]
    pub capped: bool,
    /// Why (backfills and adjustments).
    pub reason: Option<String>,
    /// Who entered it; `None` for check-out entries.
    pub actor_user_id: Option<i64>,
    /// Written, epoch ms.
    pub created_at: i64,
}

/// A new ledger entry.
#[derive(Clone, Debug)]
pub struct NewHours {
    /// Volunteer.
    pub volunteer_user_id: i64,
    /// Order, if any.
    pub order_id: Option<i64>,
    /// Item, if any.
    pub item_id: Option<i64>,
    /// Team, if known.
    pub team_id: Option<i64>,
    /// Kind.
    pub kind: HoursKind,
    /// Minutes (negative only for adjustments).
    pub minutes: i64,
    /// Session start.
    pub started_at: Option<i64>,
    /// Session end.
    pub ended_at: Option<i64>,
    /// Adjusted entry.
    pub adjusts_entry_id: Option<i64>,
    /// Capped.
    pub capped: bool,
    /// Why.
    pub reason: Option<String>,
    /// Who.
    pub actor_user_id: Option<i64>,
}

/// A follow-up queue item for coordinators.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct FollowUpItem {
    /// Row id.
    pub id: i64,
    /// The order concerned.
    pub order_id: i64,
    /// `low_rating`, `complaint` or `open_session`.
    #[sqlx(try_from = "Text")]
    #[schema(value_type = String)]
    pub kind: FollowUpKind,
    /// `open` or `closed`.
    #[sqlx(try_from = "Text")]
    #[schema(value_type = String)]
    pub status: FollowUpStatus,
    /// Opened, epoch ms.
    pub created_at: i64,
    /// Division path of the order (scope).
    pub division_path: String,
}

const HOURS_COLUMNS: &str = "id, volunteer_user_id, order_id, item_id, team_id, kind, minutes, \
    started_at, ended_at, adjusts_entry_id, capped, reason, actor_user_id, created_at";

async fn insert_hours(tx: &mut Tx, h: &NewHours, now_ms: i64) -> Result<i64> {
    sqlx::query_scalar(
        "insert into hours_entry (volunteer_user_id, order_id, item_id, team_id, kind, minutes,
            started_at, ended_at, adjusts_entry_id, capped, reason, actor_user_id, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) returning id",
    )
    .bind(h.volunteer_user_id)
    .bind(h.order_id)
    .bind(h.item_id)
    .bind(h.team_id)
    .bind(h.kind.as_str())
    .bind(h.minutes)
    .bind(h.started_at)
    .bind(h.ended_at)
    .bind(h.adjusts_entry_id)
    .bind(i64::from(h.capped))
    .bind(&h.reason)
    .bind(h.actor_user_id)
    .bind(now_ms)
    .fetch_one(&mut **tx)
    .await
    .map_err(crate::StoreError::from)
}

async fn team_of(tx: &mut Tx, volunteer: i64) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "select org_unit_id from role_grant where user_id = $1 and role = 'volunteer' order by id limit 1",
    )
    .bind(volunteer)
    .fetch_optional(&mut **tx)
    .await?
    .flatten())
}

async fn open_follow_up(tx: &mut Tx, order_id: i64, kind: FollowUpKind, now_ms: i64) -> Result<()> {
    sqlx::query(
        "insert into follow_up_item (order_id, kind, created_at) values ($1, $2, $3)
         on conflict (order_id, kind) do nothing",
    )
    .bind(order_id)
    .bind(kind.as_str())
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// When order `order_id` was last assigned (its latest move to
    /// `assigned`), epoch ms; `None` when it never was.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn assigned_at(&self, order_id: i64) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "select cast(max(at) as bigint) from order_event where order_id = $1 and to_state = 'assigned'",
        )
        .bind(order_id)
        .fetch_one(self.pool())
        .await?)
    }

    /// The assigned volunteer checks in (`assigned → in_service`), with an
    /// optional location kept only for the live assignment.
    ///
    /// # Errors
    /// As [`transition_in`].
    #[tracing::instrument(skip_all)]
    pub async fn check_in(
        &self,
        order_id: i64,
        volunteer: i64,
        location: Option<(f64, f64)>,
        now_ms: i64,
    ) -> Result<Transitioned> {
        self.check_in_recorded(order_id, volunteer, location, now_ms, None)
            .await
    }

    /// [`Store::check_in`] at `recorded_ms` when the phone recorded it
    /// earlier without network (the caller has checked its bounds): the
    /// check-in instant and the log's `at` are `recorded_ms`, the log's
    /// `received_at` is `now_ms`.
    ///
    /// # Errors
    /// As [`transition_in`].
    #[tracing::instrument(skip_all)]
    pub async fn check_in_recorded(
        &self,
        order_id: i64,
        volunteer: i64,
        location: Option<(f64, f64)>,
        now_ms: i64,
        recorded_ms: Option<i64>,
    ) -> Result<Transitioned> {
        let mut tx = self.begin_write().await?;
        let t = transition_recorded_in(
            &mut tx,
            order_id,
            &OrderAction::CheckIn,
            Some(volunteer),
            None,
            now_ms,
            recorded_ms,
        )
        .await?;
        sqlx::query(
            "update service_order set checked_in_at = $1, checkin_longitude = $2, checkin_latitude = $3
             where id = $4",
        )
        // A nullable double: see the crate docs.
        .persistent(false)
        .bind(recorded_ms.unwrap_or(now_ms))
        .bind(location.map(|l| l.0))
        .bind(location.map(|l| l.1))
        .bind(order_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(t)
    }

    /// The assigned volunteer checks out (`in_service → completed`); the
    /// session's minutes go to the ledger as a `recorded` entry, from the
    /// full check-in and check-out instants and capped past the item's
    /// default duration plus `grace_minutes`. When the capping pass already
    /// recorded the session, no second entry is written.
    ///
    /// # Errors
    /// As [`transition_in`].
    #[tracing::instrument(skip_all)]
    pub async fn check_out(
        &self,
        order_id: i64,
        volunteer: i64,
        grace_minutes: u32,
        now_ms: i64,
    ) -> Result<Transitioned> {
        self.check_out_recorded(order_id, volunteer, grace_minutes, now_ms, None)
            .await
    }

    /// [`Store::check_out`] at `recorded_ms` when the phone recorded it
    /// earlier without network (the caller has checked it is not before the
    /// check-in): the session ends at `recorded_ms`, and the log notes
    /// `received_at` = `now_ms`.
    ///
    /// # Errors
    /// As [`transition_in`].
    #[tracing::instrument(skip_all)]
    pub async fn check_out_recorded(
        &self,
        order_id: i64,
        volunteer: i64,
        grace_minutes: u32,
        now_ms: i64,
        recorded_ms: Option<i64>,
    ) -> Result<Transitioned> {
        let received_ms = now_ms;
        let mut tx = self.begin_write().await?;
        let t = transition_recorded_in(
            &mut tx,
            order_id,
            &OrderAction::CheckOut,
            Some(volunteer),
            None,
            received_ms,
            recorded_ms,
        )
        .await?;
        // The session's end: when the phone recorded it.
        let now_ms = recorded_ms.unwrap_or(received_ms);
        sqlx::query("update service_order set checked_out_at = $1 where id = $2")
            .bind(now_ms)
            .bind(order_id)
            .execute(&mut *tx)
            .await?;
        let (item_id, checked_in, duration): (i64, Option<i64>, i64) = sqlx::query_as(
            "select o.item_id, o.checked_in_at, i.default_duration_minutes
             from service_order o join service_item i on i.id = o.item_id where o.id = $1",
        )
        .bind(order_id)
        .fetch_one(&mut *tx)
        .await?;
        let already: Option<i64> = sqlx::query_scalar(
            "select id from hours_entry where order_id = $1 and kind = 'recorded' and adjusts_entry_id is null",
        )
        .bind(order_id)
        .fetch_optional(&mut *tx)
        .await?;
        if already.is_none() {
            let check_in = Timestamp(checked_in.unwrap_or(now_ms));
            let duration = u32::try_from(duration).unwrap_or(u32::MAX);
            let minutes =
                hours::recorded_minutes(check_in, Timestamp(now_ms), duration, grace_minutes)
                    .map_err(|e| StoreError::Database(sqlx::Error::Protocol(e.to_string())))?;
            let capped =
                Timestamp(now_ms) >= hours::session_deadline(check_in, duration, grace_minutes);
            let team_id = team_of(&mut tx, volunteer).await?;
            insert_hours(
                &mut tx,
                &NewHours {
                    volunteer_user_id: volunteer,
                    order_id: Some(order_id),
                    item_id: Some(item_id),
                    team_id,
                    kind: HoursKind::Recorded,
                    minutes: minutes.minutes(),
                    started_at: Some(check_in.epoch_ms()),
                    ended_at: Some(now_ms),
                    adjusts_entry_id: None,
                    capped,
                    reason: None,
                    actor_user_id: None,
                },
                received_ms,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(t)
    }

    /// Flags and caps sessions still open past the item's default duration
    /// plus `grace_minutes`: records the default duration as a capped
    /// `recorded` entry and opens an `open_session` follow-up item, once per
    /// order. Returns the orders capped by this call.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn cap_open_sessions(&self, grace_minutes: u32, now_ms: i64) -> Result<Vec<i64>> {
        let open: Vec<(i64, i64, i64, i64, i64)> = sqlx::query_as(
            "select o.id, o.assignee_user_id, o.item_id, o.checked_in_at, i.default_duration_minutes
             from service_order o join service_item i on i.id = o.item_id
             where o.state = 'in_service' and o.session_capped = 0 and o.checked_in_at is not null
               and o.assignee_user_id is not null",
        )
        .fetch_all(self.pool())
        .await?;
        let mut capped = Vec::new();
        for (order_id, volunteer, item_id, checked_in, duration) in open {
            let duration = u32::try_from(duration).unwrap_or(u32::MAX);
            let Some(minutes) = hours::cap_open_session(
                Timestamp(checked_in),
                duration,
                grace_minutes,
                Timestamp(now_ms),
            ) else {
                continue;
            };
            let mut tx = self.begin_write().await?;
            let n = sqlx::query(
                "update service_order set session_capped = 1 where id = $1 and session_capped = 0 and state = 'in_service'",
            )
            .bind(order_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                let team_id = team_of(&mut tx, volunteer).await?;
                insert_hours(
                    &mut tx,
                    &NewHours {
                        volunteer_user_id: volunteer,
                        order_id: Some(order_id),
                        item_id: Some(item_id),
                        team_id,
                        kind: HoursKind::Recorded,
                        minutes: minutes.minutes(),
                        started_at: Some(checked_in),
                        ended_at: None,
                        adjusts_entry_id: None,
                        capped: true,
                        reason: Some(
                            "no check-out by the deadline: capped at the item's default duration"
                                .into(),
                        ),
                        actor_user_id: None,
                    },
                    now_ms,
                )
                .await?;
                open_follow_up(&mut tx, order_id, FollowUpKind::OpenSession, now_ms).await?;
                capped.push(order_id);
            }
            tx.commit().await?;
        }
        Ok(capped)
    }

    /// The requester confirms (`completed → confirmed`) with an optional
    /// rating (1–5), comment and complaint flag; a rating of 1 or 2 or a
    /// complaint opens a follow-up item. `auto` marks the system's
    /// confirmation, with `reason` on the event.
    ///
    /// # Errors
    /// As [`transition_in`].
    #[tracing::instrument(skip_all)]
    pub async fn confirm_order(
        &self,
        order_id: i64,
        actor: Option<i64>,
        feedback: Option<(Option<i64>, Option<String>, bool)>,
        auto_reason: Option<Reason>,
        now_ms: i64,
    ) -> Result<Transitioned> {
        let mut tx = self.begin_write().await?;
        let auto = auto_reason.is_some();
        let t = transition_in(
            &mut tx,
            order_id,
            &OrderAction::Confirm { auto },
            actor,
            None,
            now_ms,
        )
        .await?;
        if let Some(reason) = auto_reason {
            sqlx::query("update order_event set reason = $1 where id = (select max(id) from order_event where order_id = $2)")
                .bind(reason.as_str())
                .bind(order_id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some((rating, comment, complaint)) = feedback {
            sqlx::query(
                "insert into order_feedback (order_id, rating, comment, complaint, at) values ($1, $2, $3, $4, $5)",
            )
            .bind(order_id)
            .bind(rating)
            .bind(&comment)
            .bind(i64::from(complaint))
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            if rating.is_some_and(|r| r <= 2) {
                open_follow_up(&mut tx, order_id, FollowUpKind::LowRating, now_ms).await?;
            }
            if complaint {
                open_follow_up(&mut tx, order_id, FollowUpKind::Complaint, now_ms).await?;
            }
        }
        tx.commit().await?;
        Ok(t)
    }

    /// Orders completed at or before `completed_before` and not confirmed.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn unconfirmed_before(&self, completed_before: i64) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "select id from service_order where state = 'completed' and coalesce(checked_out_at, ended_at) <= $1 order by id",
        )
        .bind(completed_before)
        .fetch_all(self.pool())
        .await?)
    }

    /// Appends a coordinator's ledger entry (a backfill, or an adjustment of
    /// `h.adjusts_entry_id`).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn add_hours(&self, h: &NewHours, now_ms: i64) -> Result<HoursEntry> {
        let mut tx = self.begin_write().await?;
        let id = insert_hours(&mut tx, h, now_ms).await?;
        tx.commit().await?;
        self.hours_entry(id)
            .await?
            .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }

    /// One ledger entry.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn hours_entry(&self, id: i64) -> Result<Option<HoursEntry>> {
        let sql = format!("select {HOURS_COLUMNS} from hours_entry where id = $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    /// A volunteer's ledger entries, oldest first, optionally within
    /// `[from, to)` by session start (or entry time when there is none).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn hours_of(
        &self,
        volunteer: i64,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<Vec<HoursEntry>> {
        let sql = format!(
            "select {HOURS_COLUMNS} from hours_entry where volunteer_user_id = $1
               and coalesce(started_at, created_at) >= $2 and coalesce(started_at, created_at) < $3
             order by id"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(volunteer)
            .bind(from.unwrap_or(i64::MIN))
            .bind(to.unwrap_or(i64::MAX))
            .fetch_all(self.pool())
            .await?)
    }

    /// Open follow-up items in the given division subtrees (`None`: all).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn open_follow_ups(&self, scopes: Option<&[String]>) -> Result<Vec<FollowUpItem>> {
        let rows: Vec<FollowUpItem> = sqlx::query_as(
            "select f.id, f.order_id, f.kind, f.status, f.created_at, d.path as division_path
             from follow_up_item f join service_order o on o.id = f.order_id
             join org_unit d on d.id = o.division_id
             where f.status = 'open' order by f.id",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(match scopes {
            None => rows,
            Some(s) => rows
                .into_iter()
                .filter(|r| s.iter().any(|p| r.division_path.starts_with(p.as_str())))
                .collect(),
        })
    }

    /// Creates the follow-up of a completed order (once): a new `submitted`
    /// order for the same household, member, item and place, with window
    /// `[window_start, window_end)`, offered first to `volunteer`. Returns
    /// its id, or `None` if it exists already.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn create_follow_up(
        &self,
        original: i64,
        volunteer: Option<i64>,
        window_start: i64,
        window_end: i64,
        now_ms: i64,
    ) -> Result<Option<i64>> {
        let mut tx = self.begin_write().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "insert into service_order (item_id, household_id, member_id, placed_by, division_id, state,
                lane, urgency, window_start, window_end, street, contact_phone, longitude, latitude,
                notes, public_note, created_at, updated_at, follow_up_of, preferred_volunteer_user_id)
             select item_id, household_id, member_id, placed_by, division_id, 'submitted', lane, urgency,
                $1, $2, street, contact_phone, longitude, latitude, null, public_note, $3, $3, id, $4
             from service_order where id = $5 and street is not null
             on conflict (follow_up_of) where follow_up_of is not null do nothing
             returning id",
        )
        .bind(window_start)
        .bind(window_end)
        .bind(now_ms)
        .bind(volunteer)
        .bind(original)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(id) = id {
            let reason = format!("scheduled follow-up of order {original}");
            events::append(
                &mut tx,
                events::NewEvent {
                    order_id: id,
                    action: EventAction::Submit,
                    from: None,
                    to: OrderState::Submitted,
                    actor: None,
                    reason: Some(&reason),
                    at: now_ms,
                    received_at: None,
                },
            )
            .await?;
            crate::outbox::enqueue_order_in(
                &mut tx,
                crate::outbox::kind::ORDER_SUBMITTED,
                id,
                None,
                &[("follow_up_of", original.into())],
                now_ms,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Completed (or confirmed) orders of items with a follow-up policy
    /// whose follow-up is due (`checked_out_at + follow_up_days <= now`)
    /// and not yet created: `(order id, volunteer, item duration minutes)`.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn follow_ups_due(&self, now_ms: i64) -> Result<Vec<(i64, Option<i64>, i64)>> {
        Ok(sqlx::query_as(
            "select o.id, o.assignee_user_id, i.default_duration_minutes
             from service_order o join service_item i on i.id = o.item_id
             where o.state in ('completed', 'confirmed') and i.follow_up_days is not null
               and o.follow_up_of is null and o.checked_out_at is not null
               and o.checked_out_at + i.follow_up_days * 86400000 <= $1
               and not exists (select 1 from service_order f where f.follow_up_of = o.id)
             order by o.id",
        )
        .bind(now_ms)
        .fetch_all(self.pool())
        .await?)
    }
}
