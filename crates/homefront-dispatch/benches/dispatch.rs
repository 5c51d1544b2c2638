//! Criterion benchmarks of the dispatch engine (means; the per-query
//! p50/p99 of candidate search come from `examples/bench_search.rs`).
//!
//! - `search/{100,5,1}pct`: one order's candidate search, 100,000 on-duty
//!   volunteers, k = 16, with the share of volunteers qualified.
//! - `batch/{uniform,clustered}/{1000,5000}`: exact solve of an instance like
//!   `shared/bench/make_instance.py` makes (100,000 volunteers, k = 16).
//! - `auto/ratio_R`: `auto_assign` for 1,000 orders at supply ratio R; the
//!   distance above the optimum is printed once per ratio.

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use homefront_dispatch::{
    AutoPolicy, CandidateQuery, CostWeights, OrderLocation, PlannedAssignment, VolunteerIndex,
    auto_assign, batch, solve_instance,
};

fn search(c: &mut Criterion) {
    let index = support::search_index(100_000, 7);
    let points = support::query_points(4096, 11);
    let weights = CostWeights::default();
    let mut group = c.benchmark_group("search");
    for (label, mask) in [("100pct", 0u64), ("5pct", 0b10), ("1pct", 0b01)] {
        group.bench_function(label, |b| {
            let mut i = 0;
            b.iter(|| {
                let q = CandidateQuery {
                    location: OrderLocation::Onsite(points[i % points.len()]),
                    required_qualifications: mask,
                    k: 16,
                    paired_volunteers: &[],
                };
                i += 1;
                black_box(index.candidates(&q, &weights, |v| v.id % 97 == 0))
            });
        });
    }
    group.finish();
}

fn batch_solve(c: &mut Criterion) {
    let mut group = c.benchmark_group("batch");
    group.sample_size(10);
    for clustered in [false, true] {
        for requests in [1000, 5000] {
            let edges = support::batch_instance(requests, 100_000, 16, clustered, 1);
            let name = if clustered { "clustered" } else { "uniform" };
            group.bench_with_input(BenchmarkId::new(name, requests), &edges, |b, edges| {
                b.iter(|| black_box(solve_instance(edges)));
            });
        }
    }
    group.finish();
}

fn distance(a: &[PlannedAssignment]) -> f64 {
    a.iter().filter_map(|p| p.explanation.distance_km).sum()
}

fn auto(c: &mut Criterion) {
    let weights = CostWeights {
        load_weight: 0.0,
        fairness_weight: 0.0,
        pairing_bonus: 0.0,
    };
    let policy = AutoPolicy::default();
    let mut group = c.benchmark_group("auto");
    group.sample_size(10);
    for ratio in [1.0, 1.5, 2.0, 5.0, 10.0] {
        let mut rng = support::Rng::new(1000);
        let orders = support::orders(1000, &mut rng);
        let index = VolunteerIndex::new(support::idle_volunteers(
            (1000.0 * ratio) as usize,
            &mut rng,
        ))
        .expect("valid volunteers");
        let best = distance(&batch(&orders, &index, &weights, policy.k, |_, _| false));
        let plan = auto_assign(&orders, &index, &weights, &policy, |_, _| false);
        eprintln!(
            "auto at supply ratio {ratio}: {:?}, {:+.2}% distance vs optimum",
            plan.mode,
            100.0 * (distance(&plan.assignments) - best) / best
        );
        group.bench_function(BenchmarkId::new("ratio", ratio), |b| {
            b.iter(|| {
                black_box(auto_assign(&orders, &index, &weights, &policy, |_, _| {
                    false
                }))
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = search, batch_solve, auto
}
criterion_main!(benches);
