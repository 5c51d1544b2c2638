//! The batch solver against exhaustive search on small random instances.

use std::collections::HashMap;

use homefront_dispatch::{
    CostWeights, Edge, OrderLocation, PendingOrder, Volunteer, VolunteerIndex, batch,
    solve_instance,
};
use homefront_domain::geo::GeoPoint;
use proptest::prelude::*;

/// Best (matches, cost) by trying every assignment: each request either
/// stays unmatched or takes any unused volunteer it has an edge to.
fn brute_force(edges: &[Edge]) -> (usize, f64) {
    let mut cheapest: HashMap<(i64, i64), f64> = HashMap::new();
    for e in edges {
        let c = cheapest.entry((e.request, e.volunteer)).or_insert(e.cost);
        *c = c.min(e.cost);
    }
    let mut requests: Vec<i64> = edges.iter().map(|e| e.request).collect();
    requests.sort_unstable();
    requests.dedup();
    let mut adj: Vec<Vec<(i64, f64)>> = requests
        .iter()
        .map(|&r| {
            cheapest
                .iter()
                .filter(|((req, _), _)| *req == r)
                .map(|(&(_, v), &c)| (v, c))
                .collect()
        })
        .collect();
    for a in &mut adj {
        a.sort_by_key(|x| x.0);
    }

    fn go(
        i: usize,
        adj: &[Vec<(i64, f64)>],
        used: &mut Vec<i64>,
        n: usize,
        cost: f64,
        best: &mut (usize, f64),
    ) {
        if i == adj.len() {
            if n > best.0 || (n == best.0 && cost < best.1) {
                *best = (n, cost);
            }
            return;
        }
        go(i + 1, adj, used, n, cost, best);
        for &(v, c) in &adj[i] {
            if !used.contains(&v) {
                used.push(v);
                go(i + 1, adj, used, n + 1, cost + c, best);
                used.pop();
            }
        }
    }
    let mut best = (0, 0.0);
    go(0, &adj, &mut Vec::new(), 0, 0.0, &mut best);
    best
}

fn cost_strategy() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), (0u8..4).prop_map(f64::from), 0.0..100.0f64,]
}

fn instance() -> impl Strategy<Value = Vec<Edge>> {
    prop::collection::vec((0i64..6, 0i64..7, cost_strategy()), 0..24).prop_map(|raw| {
        raw.into_iter()
            .map(|(r, v, cost)| Edge {
                // Sparse, large, unordered ids.
                request: (5 - r) * 1_000_003 + 17,
                volunteer: v * 4_611_686_018_427_387 + 3,
                cost,
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn solver_matches_brute_force(edges in instance()) {
        let s = solve_instance(&edges);
        let (n, cost) = brute_force(&edges);
        prop_assert_eq!(s.matched, n);
        prop_assert!((s.total_cost - cost).abs() <= 1e-9 * cost.abs().max(1.0),
            "solver {} vs brute force {}", s.total_cost, cost);

        // The pairs are real, cheapest, and disjoint.
        let mut seen_r = Vec::new();
        let mut seen_v = Vec::new();
        for m in &s.assignments {
            let best = edges.iter()
                .filter(|e| e.request == m.request && e.volunteer == m.volunteer)
                .map(|e| e.cost)
                .fold(f64::INFINITY, f64::min);
            prop_assert_eq!(m.cost, best);
            prop_assert!(!seen_r.contains(&m.request) && !seen_v.contains(&m.volunteer));
            seen_r.push(m.request);
            seen_v.push(m.volunteer);
        }
        let sum: f64 = s.assignments.iter().map(|m| m.cost).sum();
        prop_assert_eq!(s.total_cost, sum);
    }

    #[test]
    fn solver_ignores_edge_order(edges in instance(), seed in any::<u64>()) {
        let mut shuffled = edges.clone();
        let len = shuffled.len();
        let mut x = seed | 1;
        for i in (1..len).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let (a, b) = (solve_instance(&edges), solve_instance(&shuffled));
        prop_assert_eq!(a.matched, b.matched);
        prop_assert!((a.total_cost - b.total_cost).abs() <= 1e-9 * a.total_cost.abs().max(1.0));
    }

    /// `batch` with a small k (growing candidate lists as it needs) finds the
    /// optimum over all eligible pairs, which brute force computes from the
    /// complete graph; on-site and remote orders, a paired volunteer, radii
    /// and loads that make some pairs ineligible.
    #[test]
    fn batch_proves_optimum_over_all_pairs(
        orders in prop::collection::vec((0.0..0.2f64, 0.0..0.2f64), 1..6),
        vols in prop::collection::vec((0.0..0.2f64, 0.0..0.2f64, 1.0..15.0f64, 0u32..3, 0u32..300), 1..7),
        k in 1usize..4,
    ) {
        let at = |(x, y): (f64, f64)| GeoPoint { longitude: 118.7 + x, latitude: 32.0 + y };
        let volunteers: Vec<Volunteer> = vols.iter().enumerate().map(|(i, &(x, y, radius, load, minutes))| Volunteer {
            id: 100 + i as i64,
            location: at((x, y)),
            service_radius_km: radius,
            qualifications: 0,
            current_load: load,
            max_load: 3,
            recent_service_minutes: minutes,
        }).collect();
        let pending: Vec<PendingOrder> = orders.iter().enumerate().map(|(i, &p)| PendingOrder {
            id: i as i64,
            location: if i % 3 == 2 { OrderLocation::Remote } else { OrderLocation::Onsite(at(p)) },
            required_qualifications: 0,
            paired_volunteers: if i == 0 { vec![100] } else { Vec::new() },
        }).collect();
        let weights = CostWeights::default();
        let index = VolunteerIndex::new(volunteers.clone()).unwrap();
        let got = batch(&pending, &index, &weights, k, |_, _| false);

        let mut complete = Vec::new();
        for o in &pending {
            for v in &volunteers {
                let (d, reachable) = match o.location {
                    OrderLocation::Onsite(p) => {
                        let d = p.haversine_km(&v.location);
                        (d, d <= v.service_radius_km)
                    }
                    OrderLocation::Remote => (0.0, true),
                };
                if reachable && v.current_load < v.max_load {
                    let c = weights.terms(d, v.current_load, v.recent_service_minutes, o.paired_volunteers.contains(&v.id));
                    complete.push(Edge { request: o.id, volunteer: v.id, cost: c.total });
                }
            }
        }
        let (n, cost) = brute_force(&complete);
        let total: f64 = got.iter().map(|a| a.explanation.cost.total).sum();
        prop_assert_eq!(got.len(), n);
        prop_assert!((total - cost).abs() <= 1e-6 * cost.abs().max(1.0), "batch {} vs {}", total, cost);
    }
}
