//! Total distance of `nearest_first` and `auto` against the optimum (exact
//! `batch`, proven optimal over all pairs) at several supply ratios
//! (available volunteers per pending order). Orders and volunteers uniform
//! over a 40 km square, pure distance costs, orders in random arrival order.
//!
//! `cargo run --release -p homefront-dispatch --example auto_vs_optimum [-- ORDERS SEEDS [RATIOS...]]`

#[path = "../benches/support/mod.rs"]
mod support;

use std::time::Instant;

use homefront_dispatch::{
    AutoPolicy, CostWeights, PlannedAssignment, VolunteerIndex, auto_assign, batch, nearest_first,
};

fn distance(a: &[PlannedAssignment]) -> f64 {
    a.iter().filter_map(|p| p.explanation.distance_km).sum()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let orders_n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let seeds: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(4);
    let mut ratios: Vec<f64> = args.iter().skip(2).filter_map(|a| a.parse().ok()).collect();
    if ratios.is_empty() {
        ratios = vec![1.0, 1.5, 2.0, 5.0, 10.0];
    }
    let weights = CostWeights {
        load_weight: 0.0,
        fairness_weight: 0.0,
        pairing_bonus: 0.0,
    };
    let policy = AutoPolicy::default();
    println!(
        "auto vs optimum: {orders_n} orders, {seeds} seeds, auto threshold {} volunteers/order, k={}",
        policy.batch_below_supply_ratio, policy.k
    );
    println!(
        "| supply ratio | optimum km | nearest-first | auto (mode) | matched opt/nf/auto | batch ms | auto ms |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &ratio in &ratios {
        let (mut opt, mut nf, mut auto) = (0.0, 0.0, 0.0);
        let (mut m_opt, mut m_nf, mut m_auto) = (0, 0, 0);
        let (mut batch_ms, mut auto_ms) = (0.0, 0.0);
        let mut mode = None;
        for seed in 0..seeds {
            let mut rng = support::Rng::new(1000 + seed);
            let orders = support::orders(orders_n, &mut rng);
            let vols =
                support::idle_volunteers((orders_n as f64 * ratio).round() as usize, &mut rng);
            let index = VolunteerIndex::new(vols).expect("valid volunteers");
            let t = Instant::now();
            let best = batch(&orders, &index, &weights, policy.k, |_, _| false);
            batch_ms += t.elapsed().as_secs_f64() * 1e3;
            let greedy = nearest_first(&orders, &index, &weights, policy.k, |_, _| false);
            let t = Instant::now();
            let plan = auto_assign(&orders, &index, &weights, &policy, |_, _| false);
            auto_ms += t.elapsed().as_secs_f64() * 1e3;
            mode = Some(plan.mode);
            opt += distance(&best);
            nf += distance(&greedy);
            auto += distance(&plan.assignments);
            m_opt += best.len();
            m_nf += greedy.len();
            m_auto += plan.assignments.len();
        }
        let pct = |x: f64| 100.0 * (x - opt) / opt;
        println!(
            "| {ratio} | {:.1} | +{:.1}% | +{:.2}% ({:?}) | {m_opt}/{m_nf}/{m_auto} | {:.1} | {:.1} |",
            opt / seeds as f64,
            pct(nf),
            pct(auto),
            mode.expect("at least one seed"),
            batch_ms / seeds as f64,
            auto_ms / seeds as f64
        );
    }
}
