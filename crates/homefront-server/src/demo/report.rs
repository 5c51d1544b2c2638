//! The programme report, computed from the database only (the ledger,
//! orders, offers, vetting log): nothing the simulator counted itself.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use homefront_dispatch::{Edge, solve_instance};
use homefront_domain::Timestamp;
use homefront_domain::org::{OrgKind, OrgPath};
use homefront_store::{Store, StoreError};
use serde::Serialize;

/// Orders by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Outcomes {
    /// Placed (every order).
    pub placed: i64,
    /// Completed or confirmed.
    pub completed: i64,
    /// Cancelled.
    pub cancelled: i64,
    /// Given up: no volunteer before the window ended.
    pub unfulfilled: i64,
    /// Still open when the run ended.
    pub open: i64,
}

impl Outcomes {
    fn add(&mut self, state: &str, n: i64) {
        self.placed += n;
        match state {
            "completed" | "confirmed" => self.completed += n,
            "cancelled" => self.cancelled += n,
            "unfulfilled" => self.unfulfilled += n,
            _ => self.open += n,
        }
    }
}

/// Time to accept in one lane.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LaneTimes {
    /// Accepted orders.
    pub accepted: usize,
    /// Median seconds from placing to accept (nearest rank).
    pub p50_s: f64,
    /// 90th percentile, seconds (nearest rank).
    pub p90_s: f64,
}

/// One team's figures from the ledger.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TeamFigures {
    /// Team name.
    pub team: String,
    /// Active volunteers on the team.
    pub volunteers_active: i64,
    /// Orders with recorded service hours.
    pub orders_served: i64,
    /// Hours in the ledger, one decimal.
    pub service_hours: f64,
}

/// Travel of the accepted on-site offers against the batch optimum.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Travel {
    /// Orders compared: on-site orders with an accepted offer.
    pub orders: usize,
    /// Sum of the accepted offers' great-circle km.
    pub accepted_km: f64,
    /// Orders the optimum matched (each volunteer once per service day).
    pub optimum_orders: usize,
    /// The optimum's km over the same candidate edges.
    pub optimum_km: f64,
    /// The accepted km of the orders the optimum matched (like for like).
    pub accepted_km_of_matched: f64,
}

/// The report of a run. Figures, not prose: the README explains them.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Report {
    /// Volunteers who reached `active` through vetting (vetting log).
    pub volunteers_vetted: i64,
    /// Volunteers active now.
    pub volunteers_active: i64,
    /// Orders placed.
    pub orders_placed: i64,
    /// Orders completed (completed or confirmed).
    pub orders_completed: i64,
    /// Orders cancelled.
    pub orders_cancelled: i64,
    /// Orders given up.
    pub orders_unfulfilled: i64,
    /// Orders still open.
    pub orders_open: i64,
    /// Service hours in the ledger, one decimal.
    pub service_hours: f64,
    /// Median time to accept over all lanes, seconds.
    pub accept_p50_s: f64,
    /// 90th percentile time to accept, seconds.
    pub accept_p90_s: f64,
    /// Time to accept by lane.
    pub accept_by_lane: BTreeMap<String, LaneTimes>,
    /// Escalation events (each level counts once).
    pub escalations: i64,
    /// Offers the provincial coordinator made by hand from the province's
    /// queue (the simulator's coordinator actor).
    pub coordinator_offers: i64,
    /// Of `coordinator_offers`, those the volunteer accepted.
    pub coordinator_offers_accepted: i64,
    /// Completed orders served by a volunteer paired with the household.
    pub served_by_paired: i64,
    /// `served_by_paired` / `orders_completed`.
    pub paired_share: f64,
    /// Outcomes by catalogue item.
    pub by_item: BTreeMap<String, Outcomes>,
    /// Outcomes by city.
    pub by_city: BTreeMap<String, Outcomes>,
    /// Accepted travel against the batch optimum.
    pub travel: Travel,
    /// Per team, by team name.
    pub teams: BTreeMap<String, TeamFigures>,
    /// The provincial team (团省委省应急保障志愿服务队), to set against
    /// the press report's 46 volunteers, 69 orders, 130+ hours.
    pub provincial_team: TeamFigures,
    /// Of the orders that had an eligible volunteer on duty when they
    /// became dispatchable (their candidate list was not empty when
    /// placed), the share whose first offer came within 1 s (0–1, three
    /// decimals). Without that record (see [`compute`]): of the orders that
    /// got any offer, a lower bound.
    pub first_offer_within_1s_share: f64,
    /// Unfulfilled orders by cause: `no_eligible_volunteer` (never
    /// offered), `all_declined` (every offer declined),
    /// `window_passed_with_candidates` (offers expired or were withdrawn).
    pub unfulfilled_by_cause: BTreeMap<String, i64>,
    /// Unfulfilled orders that, when they became dispatchable, had a
    /// volunteer who would have accepted ([`Observed::would_accept`]):
    /// eligible, on duty and reachable at the top escalation level, and
    /// accepting within the offer's timeout by the behaviour model. 0 when
    /// the run has no such record.
    pub unfulfilled_while_reachable: i64,
    /// 90th percentile seconds from the order's creation (when it became
    /// dispatchable) to the accept, by lane.
    pub accept_p90_s_by_lane: BTreeMap<String, f64>,
    /// Accepted great-circle km of the on-site orders with an accepted
    /// offer (the same orders as `travel_hindsight_optimum_km`).
    pub travel_km: f64,
    /// Hindsight optimum km over the same orders: each order served by the
    /// nearest volunteer who would have accepted it
    /// ([`Observed::would_accept`]: eligible, on duty and reachable at the
    /// top escalation level when the order became dispatchable, and
    /// accepting within the offer's timeout by the behaviour model; a
    /// paired household's order only by its paired volunteers when one of
    /// them would accept, as dispatch offers it first), or by the volunteer
    /// who did accept when nearer. One volunteer may serve any number of
    /// orders here, so no dispatcher, online or with the whole run in hand,
    /// travels less: a lower bound. Without the simulator's record, the
    /// volunteers who were offered the order and did not decline stand in
    /// for those who would have accepted.
    pub travel_hindsight_optimum_km: f64,
    /// Gini coefficient of ledger hours across the active volunteers of
    /// teams that had demand (any of their volunteers was offered an
    /// order), zeros included; 0 = equal, 1 = one volunteer did all.
    pub hours_gini: f64,
}

/// What the simulator observed of each order when it became dispatchable,
/// beyond what the database records: the report's honest denominators.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// Orders whose candidate list (what the dispatcher ranks from at the
    /// order's level) was not empty when placed.
    pub had_candidate: BTreeSet<i64>,
    /// Per order, the volunteers who would have accepted it: eligible, on
    /// duty and reachable at the top escalation level when it became
    /// dispatchable, and accepting within the offer's timeout by the
    /// behaviour model (keyed by seed, order and volunteer, so the same
    /// under every policy); each with the great-circle km to the order
    /// (`None` for remote items). For a paired household whose paired
    /// volunteer would accept, only its paired volunteers: dispatch offers
    /// such an order to them first. Orders with nobody are absent.
    pub would_accept: BTreeMap<i64, Vec<(i64, Option<f64>)>>,
}

/// Gini coefficient of non-negative `v` (mean absolute difference over
/// twice the mean; the sorted-rank formula), 0 when empty or all zero.
pub fn gini(v: &[f64]) -> f64 {
    let mut v: Vec<f64> = v.iter().map(|x| x.max(0.0)).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len() as f64;
    let sum: f64 = v.iter().sum();
    if v.is_empty() || sum <= 0.0 {
        return 0.0;
    }
    let weighted: f64 = v
        .iter()
        .enumerate()
        .map(|(i, x)| (2.0 * (i as f64 + 1.0) - n - 1.0) * x)
        .sum();
    weighted / (n * sum)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Nearest-rank percentile of sorted `v` (`p` in 0..=1), 0 when empty.
pub fn percentile(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let n = sorted.len();
    let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
    sorted[rank - 1] as f64 / 1000.0
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Computes the report from the database. `provincial_team` names the
/// team whose figures are set against the press report.
///
/// Travel (`travel`): for every on-site order with an accepted offer, the
/// candidate edges are the offers the dispatcher made for it (their km),
/// solved per local service day with each volunteer used at most once that
/// day (`homefront_dispatch::solve_instance`).
///
/// `observed`: what the simulator saw of each order when it became
/// dispatchable ([`Observed`]). It defines the denominator of
/// `first_offer_within_1s_share`, the hindsight optimum behind
/// `travel_hindsight_optimum_km` and `unfulfilled_while_reachable`.
/// Without it those figures fall back to what the database alone shows
/// (see [`Report::travel_hindsight_optimum_km`]).
///
/// # Errors
/// Database errors.
pub async fn compute(
    store: &Store,
    provincial_team: i64,
    observed: Option<&Observed>,
) -> Result<Report, StoreError> {
    let mut r = Report {
        volunteers_vetted: store.count_vetted().await?,
        ..Report::default()
    };
    r.volunteers_active = store
        .volunteers_by_state()
        .await?
        .iter()
        .filter(|(s, _)| s == "active")
        .map(|(_, n)| *n)
        .sum();

    // City names by id: a division path is /province/city/county/.
    let cities: HashMap<i64, String> = store
        .org_units(None, None, Some(OrgKind::City))
        .await?
        .into_iter()
        .map(|u| (u.id, u.name))
        .collect();
    let mut total = Outcomes::default();
    for c in store.order_counts().await? {
        total.add(&c.state, c.orders);
        r.by_item
            .entry(c.item_code.clone())
            .or_default()
            .add(&c.state, c.orders);
        let ids = OrgPath::from_stored(c.division_path.clone()).ids();
        let city = ids
            .get(1)
            .and_then(|id| cities.get(id).cloned())
            .unwrap_or_else(|| "(province)".to_string());
        r.by_city.entry(city).or_default().add(&c.state, c.orders);
    }
    r.orders_placed = total.placed;
    r.orders_completed = total.completed;
    r.orders_cancelled = total.cancelled;
    r.orders_unfulfilled = total.unfulfilled;
    r.orders_open = total.open;

    let hours = store.hours_by_team().await?;
    let minutes: i64 = hours.iter().map(|h| h.minutes).sum();
    r.service_hours = round1(minutes as f64 / 60.0);

    let mut all: Vec<i64> = Vec::new();
    let mut by_lane: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for t in store.accept_times().await? {
        all.push(t.ms);
        by_lane.entry(t.lane).or_default().push(t.ms);
    }
    all.sort_unstable();
    r.accept_p50_s = percentile(&all, 0.5);
    r.accept_p90_s = percentile(&all, 0.9);
    for (lane, mut v) in by_lane {
        v.sort_unstable();
        r.accept_p90_s_by_lane
            .insert(lane.clone(), percentile(&v, 0.9));
        r.accept_by_lane.insert(
            lane,
            LaneTimes {
                accepted: v.len(),
                p50_s: percentile(&v, 0.5),
                p90_s: percentile(&v, 0.9),
            },
        );
    }
    r.escalations = store.count_order_events("escalate").await?;
    (r.coordinator_offers, r.coordinator_offers_accepted) = store.offers_via("manual").await?;
    let (served, paired) = store.served_by_pairing().await?;
    r.served_by_paired = paired;
    r.paired_share = if served > 0 {
        (paired as f64 / served as f64 * 1000.0).round() / 1000.0
    } else {
        0.0
    };

    r.travel = travel(store).await?;
    let (km, optimum) = hindsight(store, observed).await?;
    r.travel_km = km;
    r.travel_hindsight_optimum_km = optimum;

    let mut first = store.first_offers().await?;
    if let Some(had) = observed.map(|o| &o.had_candidate) {
        // An order with a candidate but no offer at all is a miss too.
        first.retain(|f| had.contains(&f.order_id));
        let missing = had.len().saturating_sub(first.len());
        let within = first.iter().filter(|f| f.ms <= 1000).count();
        r.first_offer_within_1s_share = if had.is_empty() {
            0.0
        } else {
            round3(within as f64 / (first.len() + missing) as f64)
        };
    } else {
        let within = first.iter().filter(|f| f.ms <= 1000).count();
        r.first_offer_within_1s_share = if first.is_empty() {
            0.0
        } else {
            round3(within as f64 / first.len() as f64)
        };
    }
    for cause in [
        "no_eligible_volunteer",
        "all_declined",
        "window_passed_with_candidates",
    ] {
        r.unfulfilled_by_cause.insert(cause.to_string(), 0);
    }
    for u in store.unfulfilled_offers().await? {
        if observed.is_some_and(|o| o.would_accept.contains_key(&u.order_id)) {
            r.unfulfilled_while_reachable += 1;
        }
        let cause = if u.offers == 0 {
            "no_eligible_volunteer"
        } else if u.declined == u.offers {
            "all_declined"
        } else {
            "window_passed_with_candidates"
        };
        *r.unfulfilled_by_cause.entry(cause.to_string()).or_default() += 1;
    }

    // Teams: active volunteers and ledger totals.
    let volunteers = store
        .volunteers(&homefront_store::volunteers::VolunteerFilter::default())
        .await?;
    let teams = store.org_units(None, None, Some(OrgKind::Team)).await?;
    for team in &teams {
        let active = volunteers
            .iter()
            .filter(|v| {
                v.team_id == team.id
                    && v.vetting_state == homefront_domain::vetting::VettingState::Active
            })
            .count();
        let h = hours.iter().find(|h| h.team_id == Some(team.id));
        let f = TeamFigures {
            team: team.name.clone(),
            volunteers_active: i64::try_from(active).unwrap_or(i64::MAX),
            orders_served: h.map_or(0, |h| h.orders),
            service_hours: round1(h.map_or(0, |h| h.minutes) as f64 / 60.0),
        };
        if team.id == provincial_team {
            r.provincial_team = f.clone();
        }
        r.teams.insert(team.name.clone(), f);
    }
    let demand = store.teams_with_offers().await?;
    let ledger = store.recent_service_minutes(i64::MIN / 2).await?;
    let spread: Vec<f64> = volunteers
        .iter()
        .filter(|v| {
            demand.contains(&v.team_id)
                && v.vetting_state == homefront_domain::vetting::VettingState::Active
        })
        .map(|v| ledger.get(&v.user_id).copied().unwrap_or(0) as f64)
        .collect();
    r.hours_gini = round3(gini(&spread));
    Ok(r)
}

/// Accepted km and the hindsight optimum km over the same orders (see
/// [`Report::travel_hindsight_optimum_km`]).
async fn hindsight(store: &Store, observed: Option<&Observed>) -> Result<(f64, f64), StoreError> {
    let mut accepted_km: BTreeMap<i64, f64> = BTreeMap::new();
    let mut nearest: BTreeMap<i64, f64> = BTreeMap::new();
    let mut reach = |order: i64, km: f64| {
        let best = nearest.entry(order).or_insert(f64::INFINITY);
        *best = best.min(km);
    };
    for e in store.accepted_order_edges().await? {
        if e.accepted == 1 {
            accepted_km.insert(e.order_id, e.distance_km);
            reach(e.order_id, e.distance_km);
            let would = observed.and_then(|o| o.would_accept.get(&e.order_id));
            for km in would.into_iter().flatten().filter_map(|(_, km)| *km) {
                reach(e.order_id, km);
            }
        } else if observed.is_none() && e.declined == 0 {
            reach(e.order_id, e.distance_km);
        }
    }
    let (mut km, mut optimum) = (0.0, 0.0);
    for (order, a) in &accepted_km {
        km += a;
        optimum += nearest.get(order).copied().unwrap_or(*a);
    }
    Ok((round1(km), round1(optimum)))
}

async fn travel(store: &Store) -> Result<Travel, StoreError> {
    let edges = store.accepted_order_edges().await?;
    let mut t = Travel::default();
    let mut accepted_km: BTreeMap<i64, f64> = BTreeMap::new();
    // Service day in China Standard Time (UTC+8, no DST since 1991).
    let mut days: BTreeMap<i64, Vec<Edge>> = BTreeMap::new();
    for e in &edges {
        if e.accepted == 1 {
            accepted_km.insert(e.order_id, e.distance_km);
        }
        let day = (e.window_start + 8 * Timestamp::HOUR_MS).div_euclid(Timestamp::DAY_MS);
        days.entry(day).or_default().push(Edge {
            request: e.order_id,
            volunteer: e.volunteer_user_id,
            cost: e.distance_km,
        });
    }
    t.orders = accepted_km.len();
    t.accepted_km = round1(accepted_km.values().sum());
    let mut optimum = 0.0;
    let mut like_for_like = 0.0;
    for day in days.values() {
        let s = solve_instance(day);
        t.optimum_orders += s.matched;
        optimum += s.total_cost;
        like_for_like += s
            .assignments
            .iter()
            .filter_map(|m| accepted_km.get(&m.request))
            .sum::<f64>();
    }
    t.optimum_km = round1(optimum);
    t.accepted_km_of_matched = round1(like_for_like);
    Ok(t)
}

/// The figures of several runs of the same replay (one per dispatch
/// policy) side by side as an SVG chart: one panel per figure the replay is
/// held to, each with its target line: unfulfilled (% of placed, target
/// 2), first offer within 1 s (share, 0.99), priority-lane accept p90 (s,
/// 300), travel above the hindsight optimum (%, 10) and hours Gini (0.35).
///
/// # Errors
/// Drawing errors from plotters.
pub fn compare_svg(title: &str, runs: &[(&str, &Report)]) -> Result<String, String> {
    use crate::ui::charts::{Panel, panels};
    let panel = |name: &str, target: f64, value: &dyn Fn(&Report) -> f64| Panel {
        title: name.to_string(),
        bars: runs
            .iter()
            .map(|(policy, r)| ((*policy).to_string(), value(r)))
            .collect(),
        target: Some(target),
    };
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    let list = [
        panel("unfulfilled (% of placed)", 2.0, &|r| {
            if r.orders_placed == 0 {
                0.0
            } else {
                r.orders_unfulfilled as f64 * 100.0 / r.orders_placed as f64
            }
        }),
        panel("first offer within 1 s (share)", 0.99, &|r| {
            r.first_offer_within_1s_share
        }),
        panel("priority lane: accept p90 (s)", 300.0, &|r| {
            r.accept_p90_s_by_lane
                .get("priority")
                .copied()
                .unwrap_or(0.0)
        }),
        panel("travel above hindsight optimum (%)", 10.0, &|r| {
            if r.travel_hindsight_optimum_km > 0.0 {
                (r.travel_km / r.travel_hindsight_optimum_km - 1.0) * 100.0
            } else {
                0.0
            }
        }),
        panel("service hours Gini", 0.35, &|r| r.hours_gini),
    ];
    let mut svg = panels(title, &list)?;
    // A standalone file needs the namespace plotters writes and a size.
    if !svg.contains("xmlns=") {
        svg = svg.replacen("<svg ", "<svg xmlns=\"http://www.w3.org/2000/svg\" ", 1);
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::{Report, compare_svg, gini};

    #[test]
    fn the_comparison_chart_has_a_panel_per_figure_and_a_bar_per_policy() {
        let mut a = Report {
            orders_placed: 200,
            orders_unfulfilled: 3,
            hours_gini: 0.31,
            ..Report::default()
        };
        a.accept_p90_s_by_lane.insert("priority".into(), 120.0);
        let b = Report {
            orders_placed: 200,
            orders_unfulfilled: 9,
            ..Report::default()
        };
        let svg = compare_svg("replay", &[("rank-aware", &a), ("broadcast", &b)]).unwrap();
        assert!(svg.starts_with("<svg") || svg.contains("<svg xmlns="));
        for text in [
            "unfulfilled (% of placed)",
            "service hours Gini",
            "rank-aware",
            "broadcast",
            // 3 of 200 and 9 of 200 unfulfilled, as bar labels.
            "1.500",
            "4.500",
            "0.310",
        ] {
            assert!(svg.contains(text), "{text} missing from the chart");
        }
    }

    #[test]
    fn gini_is_zero_for_equal_hours_and_near_one_when_one_does_all() {
        assert!(gini(&[]).abs() < 1e-12);
        assert!(gini(&[3.0, 3.0, 3.0]).abs() < 1e-12);
        assert!(gini(&[0.0, 0.0, 0.0]).abs() < 1e-12);
        // One of four did everything: (n - 1) / n.
        assert!((gini(&[0.0, 0.0, 0.0, 8.0]) - 0.75).abs() < 1e-12);
        // 1, 2, 3: mean absolute difference 8/9 over twice the mean 4.
        assert!((gini(&[3.0, 1.0, 2.0]) - 2.0 / 9.0).abs() < 1e-12);
    }
}
