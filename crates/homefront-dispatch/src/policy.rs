//! Dispatch policies over a round of pending orders: `nearest_first` (greedy
//! in arrival order), `batch` (exact min-cost assignment) and `auto`, which
//! picks between them by the supply ratio.
//!
//! In one round each volunteer takes at most one new order, whatever their
//! remaining load capacity: offers go out one at a time, and the next round
//! sees the updated load.

use serde::{Deserialize, Serialize};

use crate::assignment::{Edge, Lex, solve_with_duals};
use crate::cost::CostWeights;
use crate::spatial::{
    CandidateQuery, Explanation, OrderLocation, Scored, Volunteer, VolunteerIndex, rank,
};

/// An order waiting for a volunteer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingOrder {
    /// Order id.
    pub id: i64,
    /// Where it is served.
    pub location: OrderLocation,
    /// Qualification bits the service item requires.
    pub required_qualifications: u64,
    /// Volunteers paired with the order's household.
    pub paired_volunteers: Vec<i64>,
}

impl PendingOrder {
    fn query(&self, k: usize) -> CandidateQuery<'_> {
        CandidateQuery {
            location: self.location,
            required_qualifications: self.required_qualifications,
            k,
            paired_volunteers: &self.paired_volunteers,
        }
    }
}

/// Which policy produced a [`Plan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DispatchMode {
    /// Greedy in arrival order, each order taking its cheapest free candidate.
    NearestFirst,
    /// Exact min-cost assignment of the whole round.
    Batch,
}

/// One proposed (order, volunteer) pair.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedAssignment {
    /// Order id.
    pub order_id: i64,
    /// Volunteer id.
    pub volunteer_id: i64,
    /// The volunteer's rank among the order's candidates, distance and cost
    /// terms.
    pub explanation: Explanation,
}

/// The outcome of [`auto_assign`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The policy used.
    pub mode: DispatchMode,
    /// Available volunteers per pending order (infinite with no orders).
    pub supply_ratio: f64,
    /// Proposed pairs, in order of `orders`.
    pub assignments: Vec<PlannedAssignment>,
}

/// Settings of the `auto` policy.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AutoPolicy {
    /// Use `batch` when fewer than this many available volunteers per
    /// pending order, `nearest_first` otherwise.
    ///
    /// Default 10.0, chosen by measurement (BENCHMARKS.md,
    /// `examples/auto_vs_optimum.rs`: uniform orders and volunteers, pure
    /// distance, 100 to 5,000 orders per round): nearest-first's total
    /// distance is about 54% above the optimum at ratio 1, 15% at 1.5, 9% at
    /// 2, 3% at 5, 1.7–1.9% at 8, 1.4–1.5% at 10 and 1.1% at 12. Below 10
    /// `auto` runs the exact batch (0% above); from 10 up greedy stays at
    /// least half a point inside the 2% target.
    pub batch_below_supply_ratio: f64,
    /// Candidates per order (the k of the k-nearest search); batch widens it
    /// for an order until the optimum is proven.
    pub k: usize,
}

impl Default for AutoPolicy {
    fn default() -> Self {
        Self {
            batch_below_supply_ratio: 10.0,
            k: 16,
        }
    }
}

/// Greedy dispatch in arrival order: each order, in the order given, takes its
/// cheapest eligible candidate (among its `k` nearest) not yet taken.
/// `exclude(order, volunteer)` carries the caller's other eligibility rules.
///
/// Fast and immediate, but far from optimal when supply is tight (see
/// [`AutoPolicy`]), and may leave an order unmatched that a batch would match.
pub fn nearest_first(
    orders: &[PendingOrder],
    index: &VolunteerIndex,
    weights: &CostWeights,
    k: usize,
    mut exclude: impl FnMut(&PendingOrder, &Volunteer) -> bool,
) -> Vec<PlannedAssignment> {
    let mut taken = vec![false; index.slot_count()];
    let mut scored = Vec::new();
    let mut out = Vec::new();
    for order in orders {
        index.search(
            &order.query(k.max(1)),
            weights,
            |slot, v| taken[slot as usize] || exclude(order, v),
            &mut scored,
        );
        rank(&mut scored);
        if let Some(best) = scored.first() {
            taken[best.slot as usize] = true;
            out.push(planned(index, order.id, best, 1));
        }
    }
    out
}

/// Exact batch dispatch: the maximum number of orders matched, then the
/// minimum total cost, over **all** eligible (order, volunteer) pairs.
///
/// Each order starts with its `k` nearest eligible volunteers (plus paired
/// ones) and the sparse instance is solved with
/// [`solve_instance`](crate::solve_instance)'s algorithm. The solver's duals
/// `(u, v)` then prove optimality for the pairs left out (LP complementary
/// slackness): a left-out pair can only help if its reduced cost
/// `cost − u_r − v_c` is negative. Left-out volunteers of order `r` cost at
/// least its *frontier* (its k-th distance; load and fairness terms are
/// non-negative) and `v ≤ 0`, so `u_r ≤ frontier` proves the order. Otherwise
/// every eligible volunteer closer than `u_r` is checked and those with a
/// negative reduced cost join the order's candidates (an unmatched or remote
/// order instead gets 4× more candidates), and the round is solved again
/// until every order is proven.
///
/// `weights` must pass [`CostWeights::validate`].
pub fn batch(
    orders: &[PendingOrder],
    index: &VolunteerIndex,
    weights: &CostWeights,
    k: usize,
    mut exclude: impl FnMut(&PendingOrder, &Volunteer) -> bool,
) -> Vec<PlannedAssignment> {
    debug_assert!(weights.validate().is_ok(), "{weights:?}");
    let n = orders.len();
    let mut ks = vec![k.max(1); n];
    let mut lists: Vec<Vec<Scored>> = vec![Vec::new(); n];
    let mut frontier = vec![f64::INFINITY; n];
    let mut stale = vec![true; n];
    let mut edges = Vec::new();
    let mut v_of_slot = vec![Lex::ZERO; index.slot_count()];
    let mut nearby = Vec::new();
    loop {
        for (i, order) in orders.iter().enumerate() {
            if stale[i] {
                frontier[i] = index.search(
                    &order.query(ks[i]),
                    weights,
                    |_, v| exclude(order, v),
                    &mut lists[i],
                );
                stale[i] = false;
            }
        }
        edges.clear();
        for (i, list) in lists.iter().enumerate() {
            edges.extend(list.iter().map(|s| Edge {
                request: i as i64,
                volunteer: i64::from(s.slot),
                cost: s.cost.total,
            }));
        }
        let solved = solve_with_duals(&edges);
        for &(slot, v) in &solved.volunteer_duals {
            v_of_slot[slot as usize] = v;
        }

        let mut grown = false;
        for &(request, u) in &solved.duals {
            let i = request as usize;
            if !frontier[i].is_finite() || (u.b == 0 && u.c <= frontier[i]) {
                continue;
            }
            let order = &orders[i];
            if u.b != 0 || order.location == OrderLocation::Remote {
                ks[i] = ks[i].saturating_mul(4);
                stale[i] = true;
                grown = true;
                continue;
            }
            index.search_within(
                &order.query(ks[i]),
                u.c,
                weights,
                |_, v| exclude(order, v),
                &mut nearby,
            );
            for s in &nearby {
                let reduced = Lex::real(s.cost.total)
                    .sub(u)
                    .sub(v_of_slot[s.slot as usize]);
                if reduced.lt(Lex::ZERO) && lists[i].iter().all(|t| t.slot != s.slot) {
                    lists[i].push(*s);
                    grown = true;
                }
            }
        }
        for &(slot, _) in &solved.volunteer_duals {
            v_of_slot[slot as usize] = Lex::ZERO;
        }
        if !grown {
            return solved
                .solution
                .assignments
                .iter()
                .map(|m| {
                    let i = m.request as usize;
                    rank(&mut lists[i]);
                    let at = lists[i]
                        .iter()
                        .position(|s| i64::from(s.slot) == m.volunteer)
                        .expect("matched pairs come from the lists");
                    planned(index, orders[i].id, &lists[i][at], at + 1)
                })
                .collect();
        }
    }
}

/// The `auto` policy: [`batch`] when supply is tight (fewer than
/// `policy.batch_below_supply_ratio` available volunteers per pending
/// order), [`nearest_first`] in arrival order otherwise. If nearest-first
/// leaves an order unmatched, the batch plan is used instead when it matches
/// more, so `auto` never matches fewer orders than possible for a reason
/// greedy order alone caused.
pub fn auto_assign(
    orders: &[PendingOrder],
    index: &VolunteerIndex,
    weights: &CostWeights,
    policy: &AutoPolicy,
    mut exclude: impl FnMut(&PendingOrder, &Volunteer) -> bool,
) -> Plan {
    let supply_ratio = if orders.is_empty() {
        f64::INFINITY
    } else {
        index.available() as f64 / orders.len() as f64
    };
    if supply_ratio < policy.batch_below_supply_ratio {
        return Plan {
            mode: DispatchMode::Batch,
            supply_ratio,
            assignments: batch(orders, index, weights, policy.k, &mut exclude),
        };
    }
    let greedy = nearest_first(orders, index, weights, policy.k, &mut exclude);
    if greedy.len() < orders.len() {
        let exact = batch(orders, index, weights, policy.k, &mut exclude);
        if exact.len() > greedy.len() {
            return Plan {
                mode: DispatchMode::Batch,
                supply_ratio,
                assignments: exact,
            };
        }
    }
    Plan {
        mode: DispatchMode::NearestFirst,
        supply_ratio,
        assignments: greedy,
    }
}

fn planned(index: &VolunteerIndex, order_id: i64, s: &Scored, rank: usize) -> PlannedAssignment {
    PlannedAssignment {
        order_id,
        volunteer_id: index.volunteer_at(s.slot).id,
        explanation: Explanation {
            rank,
            distance_km: s.distance_km,
            cost: s.cost,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use homefront_domain::geo::GeoPoint;

    fn point(lon: f64, lat: f64) -> GeoPoint {
        GeoPoint {
            longitude: lon,
            latitude: lat,
        }
    }

    fn vol(id: i64, lon: f64) -> Volunteer {
        Volunteer {
            id,
            location: point(lon, 32.0),
            service_radius_km: 100.0,
            qualifications: 0,
            current_load: 0,
            max_load: 1,
            recent_service_minutes: 0,
        }
    }

    fn order(id: i64, lon: f64) -> PendingOrder {
        PendingOrder {
            id,
            location: OrderLocation::Onsite(point(lon, 32.0)),
            required_qualifications: 0,
            paired_volunteers: Vec::new(),
        }
    }

    fn total(a: &[PlannedAssignment]) -> f64 {
        a.iter().map(|p| p.explanation.distance_km.unwrap()).sum()
    }

    const ZERO: CostWeights = CostWeights {
        load_weight: 0.0,
        fairness_weight: 0.0,
        pairing_bonus: 0.0,
    };

    #[test]
    fn greedy_is_myopic_batch_is_not() {
        // Order 1 (arriving first) sits between volunteers 10 and 11 but
        // slightly nearer 11, which order 2 needs.
        let index = VolunteerIndex::new([vol(10, 118.0), vol(11, 118.11)]).unwrap();
        let orders = [order(1, 118.06), order(2, 118.2)];
        let greedy = nearest_first(&orders, &index, &ZERO, 4, |_, _| false);
        let exact = batch(&orders, &index, &ZERO, 4, |_, _| false);
        assert_eq!(greedy.len(), 2);
        assert_eq!(exact.len(), 2);
        assert_eq!(greedy[0].volunteer_id, 11);
        assert_eq!(exact[0].volunteer_id, 10);
        assert!(total(&exact) < total(&greedy));
    }

    #[test]
    fn batch_widens_k_until_proven_optimal() {
        // With k = 1 both orders see only volunteer 11; the proof fails for
        // one of them and widening finds volunteer 10.
        let index = VolunteerIndex::new([vol(10, 117.5), vol(11, 118.0)]).unwrap();
        let orders = [order(1, 118.01), order(2, 117.99)];
        let exact = batch(&orders, &index, &ZERO, 1, |_, _| false);
        assert_eq!(exact.len(), 2);
        let all = batch(&orders, &index, &ZERO, 10, |_, _| false);
        assert!((total(&exact) - total(&all)).abs() < 1e-9);
    }

    #[test]
    fn auto_picks_by_supply_ratio_and_respects_exclusions() {
        let index = VolunteerIndex::new((0..4).map(|i| vol(i, 118.0 + 0.01 * i as f64))).unwrap();
        let orders = [order(1, 118.0), order(2, 118.03)];
        let policy = AutoPolicy {
            batch_below_supply_ratio: 3.0,
            k: 4,
        };
        let plan = auto_assign(&orders, &index, &ZERO, &policy, |_, _| false);
        assert_eq!(plan.mode, DispatchMode::Batch);
        assert_eq!(plan.supply_ratio, 2.0);
        let lax = AutoPolicy {
            batch_below_supply_ratio: 1.5,
            ..policy
        };
        let plan = auto_assign(&orders, &index, &ZERO, &lax, |o, v| o.id == 1 && v.id == 0);
        assert_eq!(plan.mode, DispatchMode::NearestFirst);
        assert_eq!(plan.assignments[0].volunteer_id, 1);
        assert_eq!(plan.assignments[1].volunteer_id, 3);
    }

    #[test]
    fn auto_falls_back_to_batch_when_greedy_strands_an_order() {
        // Order 1 grabs volunteer 11, the only one order 2 can reach.
        let mut near = vol(11, 118.0);
        near.service_radius_km = 30.0;
        let mut far = vol(10, 117.5);
        far.service_radius_km = 60.0;
        let index = VolunteerIndex::new([far, near]).unwrap();
        let orders = [order(1, 117.9), order(2, 118.2)];
        let plan = auto_assign(
            &orders,
            &index,
            &ZERO,
            &AutoPolicy {
                batch_below_supply_ratio: 0.5,
                k: 4,
            },
            |_, _| false,
        );
        assert_eq!(plan.mode, DispatchMode::Batch);
        assert_eq!(plan.assignments.len(), 2);
    }
}
