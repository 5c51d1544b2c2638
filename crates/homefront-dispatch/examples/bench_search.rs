//! Per-decision latency of single-order candidate search: 100,000 on-duty
//! volunteers, k = 16, orders needing no qualification (100% qualified),
//! one held by 5%, one held by 1%. Records every query's latency and prints
//! p50/p99/max in microseconds (criterion reports means only).
//!
//! `cargo run --release -p homefront-dispatch --example bench_search [-- QUERIES]`

#[path = "../benches/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::Instant;

use homefront_dispatch::{CandidateQuery, CostWeights, OrderLocation};

fn main() {
    let queries: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let started = Instant::now();
    let index = support::search_index(100_000, 7);
    let build_ms = started.elapsed().as_secs_f64() * 1e3;
    let points = support::query_points(queries, 11);
    let weights = CostWeights::default();
    println!(
        "candidate search: 100000 volunteers (index built in {build_ms:.0} ms), k=16, {queries} queries each"
    );
    println!("| qualified | p50 µs | p99 µs | max µs | mean candidates |");
    println!("|---|---|---|---|---|");
    for (label, mask) in [("100%", 0u64), ("5%", 0b10), ("1%", 0b01)] {
        let run = |record: &mut Vec<f64>, found: &mut usize| {
            for &p in &points {
                let q = CandidateQuery {
                    location: OrderLocation::Onsite(p),
                    required_qualifications: mask,
                    k: 16,
                    paired_volunteers: &[],
                };
                let t = Instant::now();
                let c = index.candidates(&q, &weights, |v| v.id % 97 == 0);
                let elapsed = t.elapsed();
                *found += c.len();
                black_box(c);
                record.push(elapsed.as_secs_f64() * 1e6);
            }
        };
        // Warm-up pass over the same queries (caches, allocator).
        let (mut warm, mut found) = (Vec::new(), 0);
        run(&mut warm, &mut found);
        let (mut lat, mut found) = (Vec::with_capacity(queries), 0);
        run(&mut lat, &mut found);
        lat.sort_by(f64::total_cmp);
        println!(
            "| {label} | {:.2} | {:.2} | {:.1} | {:.1} |",
            support::percentile(&lat, 50.0),
            support::percentile(&lat, 99.0),
            lat.last().copied().unwrap_or(f64::NAN),
            found as f64 / queries as f64
        );
    }
}
