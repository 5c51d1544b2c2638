//! Weekly availability windows, leave, the domain `Availability` of a
//! volunteer, and the dispatcher's candidate list.

use std::collections::HashMap;

use chrono::{NaiveTime, Weekday};
use homefront_domain::availability::{
    Availability, Leave, TimeWindow, WeeklyWindow, is_available_at,
};
use homefront_domain::credentials::{Qualification, VolunteerEligibility};
use homefront_domain::org::OrgPath;
use homefront_domain::vetting::VettingState;
use homefront_domain::{GeoPoint, Timestamp};
use serde::Serialize;

use chrono_tz::Tz;

use crate::credentials::CredentialRecord;
use crate::decode::Text;
use crate::volunteers::{VOLUNTEER_SELECT, Volunteer, push_scope_clause};
use crate::{Result, Store};

/// A stored weekly window: ISO weekday (1 = Monday … 7 = Sunday) and
/// minutes after local midnight in the team's time zone; `end_minute <=
/// start_minute` crosses midnight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct WindowRecord {
    /// Row id.
    pub id: i64,
    /// The volunteer (account id).
    pub volunteer_id: i64,
    /// ISO weekday, 1 = Monday.
    pub weekday: i64,
    /// Start, minutes after local midnight (0..=1439), inclusive.
    pub start_minute: i64,
    /// End, minutes after local midnight (0..=1439), exclusive.
    pub end_minute: i64,
}

impl WindowRecord {
    /// The domain window; `None` if the stored numbers were out of range
    /// (the CHECK constraints prevent it).
    pub fn to_domain(&self) -> Option<WeeklyWindow> {
        let weekday = Weekday::try_from(u8::try_from(self.weekday - 1).ok()?).ok()?;
        let t = |m: i64| {
            NaiveTime::from_hms_opt(u32::try_from(m / 60).ok()?, u32::try_from(m % 60).ok()?, 0)
        };
        Some(WeeklyWindow::new(
            weekday,
            t(self.start_minute)?,
            t(self.end_minute)?,
        ))
    }
}

/// A stored leave period `[starts_at, ends_at)`, epoch ms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct LeaveRecord {
    /// Row id.
    pub id: i64,
    /// The volunteer (account id).
    pub volunteer_id: i64,
    /// First instant of leave, epoch ms.
    pub starts_at: i64,
    /// First instant back, epoch ms.
    pub ends_at: i64,
    /// Optional reason.
    pub reason: Option<String>,
}

impl LeaveRecord {
    /// The domain leave (`None` only for rows violating the CHECK).
    pub fn to_domain(&self) -> Option<Leave> {
        Leave::new(Timestamp(self.starts_at), Timestamp(self.ends_at)).ok()
    }
}

/// A volunteer's availability and the zone its weekly windows are in.
#[derive(Clone, Debug, PartialEq)]
pub struct VolunteerAvailability {
    /// Duty toggle, weekly windows and leave.
    pub availability: Availability,
    /// The team's time zone (`org_unit.time_zone`, default Asia/Shanghai).
    pub time_zone: chrono_tz::Tz,
}

/// What [`Store::dispatchable_volunteers`] looks for.
#[derive(Clone, Copy, Debug)]
pub struct DispatchQuery<'a> {
    /// Team subtrees to search (the order's organisation scope); `None` = all.
    pub scopes: Option<&'a [OrgPath]>,
    /// When the offer would be made, epoch ms (duty and leave are checked here).
    pub now: Timestamp,
    /// The order's service window: volunteers must be available for it
    /// (`Availability::available_for_order`) and credentials are evaluated
    /// at its start. `None`: available at `now` (`is_available_at`),
    /// credentials evaluated at `now`.
    pub window: Option<TimeWindow>,
}

/// An active, available volunteer as the dispatcher needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct DispatchableVolunteer {
    /// Volunteer id (= account id).
    pub user_id: i64,
    /// Team id.
    pub team_id: i64,
    /// Team path (for scope and escalation).
    pub team_path: String,
    /// Where distance is measured from (own point, else home division's).
    pub location: GeoPoint,
    /// Service radius, km.
    pub service_radius_km: f64,
    /// Qualifications held by a credential valid at the evaluation instant
    /// (window start, or `now`).
    pub qualifications: Vec<Qualification>,
    /// Whether training, agreement and insurance are all valid at that
    /// instant (without them the volunteer is eligible for nothing).
    pub base_credentials_valid: bool,
    /// State and credentials, for `credentials::is_eligible` per item (the
    /// single eligibility truth).
    pub eligibility: VolunteerEligibility,
    /// Cap on concurrent assignments; the current load comes from the
    /// assignments (dispatch).
    pub max_concurrent: u32,
    /// `active` in [`Store::dispatchable_volunteers`]; any state in
    /// [`Store::volunteers_judged_for_dispatch`].
    pub vetting_state: VettingState,
    /// Available for the order's window (or at `now`): on duty and not on
    /// leave, or inside a weekly window. Always true in
    /// [`Store::dispatchable_volunteers`].
    pub available: bool,
    /// On duty since, epoch ms, when on duty at `now`.
    pub on_duty_since: Option<Timestamp>,
}

impl Store {
    /// A volunteer's weekly windows, by weekday and start.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn availability_windows(&self, volunteer_id: i64) -> Result<Vec<WindowRecord>> {
        Ok(sqlx::query_as(
            "select id, volunteer_id, weekday, start_minute, end_minute from availability_window
             where volunteer_id = $1 order by weekday, start_minute, id",
        )
        .bind(volunteer_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Adds a weekly window.
    ///
    /// # Errors
    /// [`crate::StoreError::MissingReference`] for an unknown volunteer; database errors.
    #[tracing::instrument(skip_all)]
    pub async fn add_availability_window(
        &self,
        volunteer_id: i64,
        window: &WeeklyWindow,
        now: Timestamp,
    ) -> Result<WindowRecord> {
        let mut tx = self.begin_write().await?;
        let id = insert_window(&mut tx, volunteer_id, window, now).await?;
        tx.commit().await?;
        Ok(window_record(id, volunteer_id, window))
    }

    /// Replaces all weekly windows of a volunteer in one transaction.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn replace_availability_windows(
        &self,
        volunteer_id: i64,
        windows: &[WeeklyWindow],
        now: Timestamp,
    ) -> Result<Vec<WindowRecord>> {
        let mut tx = self.begin_write().await?;
        sqlx::query("delete from availability_window where volunteer_id = $1")
            .bind(volunteer_id)
            .execute(&mut *tx)
            .await?;
        let mut out = Vec::new();
        for w in windows {
            let id = insert_window(&mut tx, volunteer_id, w, now).await?;
            out.push(window_record(id, volunteer_id, w));
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Deletes one weekly window; returns whether it existed.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn delete_availability_window(&self, volunteer_id: i64, id: i64) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query("delete from availability_window where volunteer_id = $1 and id = $2")
            .bind(volunteer_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    /// A volunteer's leave periods, by start.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn leaves(&self, volunteer_id: i64) -> Result<Vec<LeaveRecord>> {
        Ok(sqlx::query_as(
            "select id, volunteer_id, starts_at, ends_at, reason from volunteer_leave
             where volunteer_id = $1 order by starts_at, id",
        )
        .bind(volunteer_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Adds a leave period.
    ///
    /// # Errors
    /// [`crate::StoreError::MissingReference`] for an unknown volunteer; database errors.
    #[tracing::instrument(skip_all)]
    pub async fn add_leave(
        &self,
        volunteer_id: i64,
        leave: &Leave,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<LeaveRecord> {
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "insert into volunteer_leave (volunteer_id, starts_at, ends_at, reason, created_at)
             values ($1, $2, $3, $4, $5) returning id",
        )
        .bind(volunteer_id)
        .bind(leave.from().epoch_ms())
        .bind(leave.to().epoch_ms())
        .bind(reason)
        .bind(now.epoch_ms())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(LeaveRecord {
            id,
            volunteer_id,
            starts_at: leave.from().epoch_ms(),
            ends_at: leave.to().epoch_ms(),
            reason: reason.map(str::to_string),
        })
    }

    /// Deletes one leave period; returns whether it existed.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn delete_leave(&self, volunteer_id: i64, id: i64) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query("delete from volunteer_leave where volunteer_id = $1 and id = $2")
            .bind(volunteer_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    /// The domain `Availability` of a volunteer (duty toggle, weekly
    /// windows, leave) and its team's time zone; `None` for no such volunteer.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn volunteer_availability(
        &self,
        volunteer_id: i64,
    ) -> Result<Option<VolunteerAvailability>> {
        let row: Option<(Option<i64>, Text)> = sqlx::query_as(
            "select v.on_duty_since, t.time_zone from volunteer v
             join org_unit t on t.id = v.team_id where v.user_id = $1",
        )
        .bind(volunteer_id)
        .fetch_optional(self.pool())
        .await?;
        let Some((since, tz)) = row else {
            return Ok(None);
        };
        let weekly = self
            .availability_windows(volunteer_id)
            .await?
            .iter()
            .filter_map(WindowRecord::to_domain)
            .collect();
        let leaves = self
            .leaves(volunteer_id)
            .await?
            .iter()
            .filter_map(LeaveRecord::to_domain)
            .collect();
        Ok(Some(VolunteerAvailability {
            availability: Availability {
                weekly,
                leaves,
                on_duty_since: since.map(Timestamp),
            },
            time_zone: Tz::try_from(tz)?,
        }))
    }

    /// The dispatcher's candidate pool: `active` volunteers whose team lies
    /// in `query.scopes` and who are available (on duty and not on leave at
    /// `now`, or with weekly windows covering the order window; see
    /// [`DispatchQuery::window`]), with their location, radius, valid
    /// qualifications, eligibility inputs and load cap. Volunteers without
    /// a known location are left out. Credential checks per item, distance,
    /// current load and exclusions are the dispatcher's. Ordered by id.
    ///
    /// Cost: four queries whatever the number of volunteers (it is
    /// [`dispatch_roster`](Store::dispatch_roster) then
    /// [`RosterVolunteer::dispatchable`] for each).
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn dispatchable_volunteers(
        &self,
        query: &DispatchQuery<'_>,
    ) -> Result<Vec<DispatchableVolunteer>> {
        Ok(self
            .dispatch_roster(query.scopes)
            .await?
            .iter()
            .filter_map(|v| v.dispatchable(query.now, query.window.as_ref()))
            .collect())
    }

    /// Every `active` volunteer with a known location whose team lies in
    /// `scopes` (`None` = all), with availability and credentials: what
    /// [`RosterVolunteer::dispatchable`] judges for any instant and order
    /// window, so one read serves a whole dispatcher pass. Ordered by id.
    ///
    /// Cost: four queries whatever the number of volunteers.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn dispatch_roster(
        &self,
        scopes: Option<&[OrgPath]>,
    ) -> Result<Vec<RosterVolunteer>> {
        self.roster(scopes, false).await
    }

    /// Every volunteer whose team lies in `query.scopes`, whatever their
    /// vetting state or availability, judged exactly as
    /// [`Store::dispatchable_volunteers`] judges them: `available` says
    /// whether that list would hold them, and `eligibility.vetting` is
    /// their real state. For explaining why someone is not offered an
    /// order (the coordinator's order page), not for dispatching.
    /// Volunteers without a known location are left out, as there.
    ///
    /// Cost: four queries whatever the number of volunteers.
    ///
    /// # Errors
    /// Database errors.
    #[tracing::instrument(skip_all)]
    pub async fn volunteers_judged_for_dispatch(
        &self,
        query: &DispatchQuery<'_>,
    ) -> Result<Vec<DispatchableVolunteer>> {
        Ok(self
            .roster(query.scopes, true)
            .await?
            .iter()
            .map(|v| v.judged(query.now, query.window.as_ref()))
            .collect())
    }

    /// [`Store::dispatch_roster`]; `everyone` keeps the volunteers who are
    /// not `active`, with their real state.
    async fn roster(
        &self,
        scopes: Option<&[OrgPath]>,
        everyone: bool,
    ) -> Result<Vec<RosterVolunteer>> {
        let mut filter = String::from(if everyone {
            " where 1 = 1"
        } else {
            " where v.vetting_state = 'active'"
        });
        let mut binds: Vec<String> = Vec::new();
        if !push_scope_clause(&mut filter, &mut binds, scopes, "t.path") {
            return Ok(Vec::new());
        }
        // The same text binds serve every query below (one filter).
        macro_rules! bind_all {
            ($sql:expr) => {{
                let mut q = sqlx::query_as(sqlx::AssertSqlSafe($sql));
                for b in &binds {
                    q = q.bind(b.clone());
                }
                q
            }};
        }
        let volunteers: Vec<Volunteer> =
            bind_all!(format!("{VOLUNTEER_SELECT}{filter} order by v.user_id"))
                .fetch_all(self.pool())
                .await?;
        if volunteers.is_empty() {
            return Ok(Vec::new());
        }
        let members = format!(
            "select v.user_id from volunteer v join org_unit t on t.id = v.team_id{filter}"
        );
        let windows: Vec<WindowRecord> = bind_all!(format!(
            "select id, volunteer_id, weekday, start_minute, end_minute from availability_window
             where volunteer_id in ({members})"
        ))
        .fetch_all(self.pool())
        .await?;
        let leaves: Vec<LeaveRecord> = bind_all!(format!(
            "select id, volunteer_id, starts_at, ends_at, reason from volunteer_leave
             where volunteer_id in ({members})"
        ))
        .fetch_all(self.pool())
        .await?;
        let credentials: Vec<CredentialRecord> = bind_all!(format!(
            "select c.id, c.volunteer_id, c.kind, c.valid_from, c.valid_to, c.insurer,
                c.policy_number, c.document_ref, c.created_by, c.created_at, c.revoked_at,
                c.revoked_by, c.revoke_reason
             from credential c where c.volunteer_id in ({members})"
        ))
        .fetch_all(self.pool())
        .await?;
        let mut windows_of: HashMap<i64, Vec<WeeklyWindow>> = HashMap::new();
        for w in &windows {
            if let Some(d) = w.to_domain() {
                windows_of.entry(w.volunteer_id).or_default().push(d);
            }
        }
        let mut leaves_of: HashMap<i64, Vec<Leave>> = HashMap::new();
        for l in &leaves {
            if let Some(d) = l.to_domain() {
                leaves_of.entry(l.volunteer_id).or_default().push(d);
            }
        }
        let mut creds_of: HashMap<i64, Vec<_>> = HashMap::new();
        for c in &credentials {
            if let Some(d) = c.effective() {
                creds_of.entry(c.volunteer_id).or_default().push(d);
            }
        }
        let mut out = Vec::with_capacity(volunteers.len());
        for v in volunteers {
            let Some(location) = v.location() else {
                continue;
            };
            let availability = Availability {
                weekly: windows_of.remove(&v.user_id).unwrap_or_default(),
                leaves: leaves_of.remove(&v.user_id).unwrap_or_default(),
                on_duty_since: v.on_duty_since.map(Timestamp),
            };
            out.push(RosterVolunteer {
                user_id: v.user_id,
                team_id: v.team_id,
                team_path: v.team_path.clone(),
                location,
                service_radius_km: v.service_radius_km,
                max_concurrent: u32::try_from(v.max_concurrent).unwrap_or(1),
                time_zone: v.time_zone,
                availability,
                eligibility: VolunteerEligibility {
                    vetting: v.vetting_state,
                    credentials: creds_of.remove(&v.user_id).unwrap_or_default(),
                },
            });
        }
        Ok(out)
    }
}

/// An active volunteer with a known location, as
/// [`Store::dispatch_roster`] reads them: everything the dispatcher judges
/// them by, for any instant and order window.
#[derive(Clone, Debug, PartialEq)]
pub struct RosterVolunteer {
    /// Volunteer id (= account id).
    pub user_id: i64,
    /// Team id.
    pub team_id: i64,
    /// Team path (for scope and escalation).
    pub team_path: String,
    /// Where distance is measured from (own point, else home division's).
    pub location: GeoPoint,
    /// Service radius, km.
    pub service_radius_km: f64,
    /// Cap on concurrent assignments.
    pub max_concurrent: u32,
    /// The team's time zone (weekly windows are in it).
    pub time_zone: Tz,
    /// Duty toggle, weekly windows and leave.
    pub availability: Availability,
    /// State (`active` in [`Store::dispatch_roster`]) and credentials, for
    /// `credentials::is_eligible` per item.
    pub eligibility: VolunteerEligibility,
}

impl RosterVolunteer {
    /// Whether they may be offered, at `now`, an order served during
    /// `window` (`Availability::available_for_order`); with no window,
    /// whether they are available at `now` (`is_available_at`).
    pub fn available(&self, now: Timestamp, window: Option<&TimeWindow>) -> bool {
        match window {
            Some(w) => self
                .availability
                .available_for_order(self.time_zone, now, w),
            None => is_available_at(&self.availability, self.time_zone, now),
        }
    }

    /// The volunteer as [`Store::dispatchable_volunteers`] returns them for
    /// `now` and `window` (credentials evaluated at the window's start, or
    /// at `now`); `None` when not available then.
    pub fn dispatchable(
        &self,
        now: Timestamp,
        window: Option<&TimeWindow>,
    ) -> Option<DispatchableVolunteer> {
        if self.eligibility.vetting != VettingState::Active || !self.available(now, window) {
            return None;
        }
        Some(self.judged(now, window))
    }

    /// The volunteer as the dispatcher judges them for `now` and `window`
    /// (credentials evaluated at the window's start, or at `now`), whether
    /// or not they are available then (`available` says) or active.
    pub fn judged(&self, now: Timestamp, window: Option<&TimeWindow>) -> DispatchableVolunteer {
        let available = self.available(now, window);
        let at = window.map_or(now, |w| w.start());
        let credentials = &self.eligibility.credentials;
        let valid = |k| {
            credentials
                .iter()
                .any(|c| c.kind() == k && c.is_valid_at(at))
        };
        let qualifications = Qualification::ALL
            .into_iter()
            .filter(|&q| valid(q.into()))
            .collect();
        let base_credentials_valid = homefront_domain::credentials::CredentialKind::BASE
            .into_iter()
            .all(valid);
        DispatchableVolunteer {
            user_id: self.user_id,
            team_id: self.team_id,
            team_path: self.team_path.clone(),
            location: self.location,
            service_radius_km: self.service_radius_km,
            qualifications,
            base_credentials_valid,
            eligibility: self.eligibility.clone(),
            max_concurrent: self.max_concurrent,
            vetting_state: self.eligibility.vetting,
            available,
            on_duty_since: self
                .availability
                .on_duty_since
                .filter(|_| self.availability.on_duty_at(now)),
        }
    }
}

fn window_record(id: i64, volunteer_id: i64, w: &WeeklyWindow) -> WindowRecord {
    use chrono::Timelike;
    let m = |t: NaiveTime| i64::from(t.hour() * 60 + t.minute());
    WindowRecord {
        id,
        volunteer_id,
        weekday: i64::from(w.weekday.number_from_monday()),
        start_minute: m(w.start),
        end_minute: m(w.end),
    }
}

async fn insert_window(
    tx: &mut crate::Tx,
    volunteer_id: i64,
    w: &WeeklyWindow,
    now: Timestamp,
) -> Result<i64> {
    let r = window_record(0, volunteer_id, w);
    sqlx::query_scalar(
        "insert into availability_window (volunteer_id, weekday, start_minute, end_minute, created_at)
         values ($1, $2, $3, $4, $5) returning id",
    )
    .bind(volunteer_id)
    .bind(r.weekday)
    .bind(r.start_minute)
    .bind(r.end_minute)
    .bind(now.epoch_ms())
    .fetch_one(&mut **tx)
    .await
    .map_err(crate::StoreError::from)
}
