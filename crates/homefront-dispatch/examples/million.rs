//! A national-size pool: 1,000,000 on-duty volunteers in one index.
//!
//! Volunteers cluster around 300 city centres spread over eastern China
//! (longitude 100–122° E, latitude 22–40° N; σ = 15 km around each), hold
//! a qualification at 1 % and another at 5 %, and accept 5–20 km. Prints:
//! - the index build time and the process's resident memory after it
//!   (`VmRSS`, and the peak `VmHWM`, from `/proc/self/status`; Linux);
//! - candidate search latency (k = 16) at 1 % qualified, p50/p99/max;
//! - updates per second interleaved with searches: load changes
//!   (`set_current_load`, an assignment or its end), going off and on duty
//!   (`remove` + `insert`) and moves (`remove` + `insert` elsewhere), each
//!   alone and mixed 8 : 1 : 1, with one search after every 10 updates, and
//!   the search p99 during the mix;
//! - the rebuild that drops removed volunteers' dead entries.
//!
//! `cargo run --release -p homefront-dispatch --example million [-- VOLUNTEERS]`

#[path = "../benches/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::Instant;

use homefront_dispatch::{CandidateQuery, CostWeights, OrderLocation, Volunteer, VolunteerIndex};
use homefront_domain::geo::GeoPoint;
use support::Rng;

/// km per degree of latitude on the mean sphere (2π·6371.0088/360).
const KM_PER_DEG_LAT: f64 = 111.195;

fn around(rng: &mut Rng, (lon, lat): (f64, f64), sigma_km: f64) -> GeoPoint {
    let dy = rng.normal() * sigma_km / KM_PER_DEG_LAT;
    let dx = rng.normal() * sigma_km / (KM_PER_DEG_LAT * lat.to_radians().cos());
    GeoPoint {
        longitude: lon + dx,
        latitude: lat + dy,
    }
}

fn status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn p(sorted: &[f64], q: f64) -> f64 {
    support::percentile(sorted, q)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mut rng = Rng::new(2020);
    let cities: Vec<(f64, f64)> = (0..300)
        .map(|_| (100.0 + 22.0 * rng.unit(), 22.0 + 18.0 * rng.unit()))
        .collect();
    let make = |rng: &mut Rng, id: i64| {
        let city = cities[(rng.next_u64() % cities.len() as u64) as usize];
        let q = rng.unit();
        Volunteer {
            id,
            location: around(rng, city, 15.0),
            service_radius_km: 5.0 + 15.0 * rng.unit(),
            qualifications: u64::from(q < 0.01) | (u64::from(q < 0.05) << 1),
            current_load: 0,
            max_load: 2,
            recent_service_minutes: (rng.next_u64() % 601) as u32,
        }
    };
    let volunteers: Vec<Volunteer> = (0..n as i64).map(|id| make(&mut rng, id)).collect();
    let rss_before = status_kb("VmRSS:").unwrap_or(0);

    let started = Instant::now();
    let mut index = VolunteerIndex::with_qualification_sets(volunteers, &[0b01, 0b10])
        .expect("generated volunteers are valid");
    let build_s = started.elapsed().as_secs_f64();
    let rss = status_kb("VmRSS:").unwrap_or(0);
    let hwm = status_kb("VmHWM:").unwrap_or(0);
    println!("volunteers: {n}");
    println!("index build: {build_s:.3} s");
    println!(
        "resident memory after build: {:.0} MB (peak {:.0} MB; {:.0} MB before the build, \
         the generated input)",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        rss_before as f64 / 1024.0
    );

    let weights = CostWeights::default();
    let queries: Vec<GeoPoint> = (0..20_000)
        .map(|_| {
            let city = cities[(rng.next_u64() % cities.len() as u64) as usize];
            around(&mut rng, city, 10.0)
        })
        .collect();
    let search = |index: &VolunteerIndex, at: GeoPoint| {
        let q = CandidateQuery {
            location: OrderLocation::Onsite(at),
            required_qualifications: 0b01,
            k: 16,
            paired_volunteers: &[],
        };
        let t = Instant::now();
        let c = index.candidates(&q, &weights, |_| false);
        let us = t.elapsed().as_secs_f64() * 1e6;
        black_box(c);
        us
    };
    // Warm-up, then the measured pass.
    for &at in &queries {
        search(&index, at);
    }
    let mut lat: Vec<f64> = queries.iter().map(|&at| search(&index, at)).collect();
    lat.sort_by(f64::total_cmp);
    println!(
        "search at 1% qualified (k = 16, {} queries): p50 {:.2} µs, p99 {:.2} µs, max {:.1} µs",
        lat.len(),
        p(&lat, 50.0),
        p(&lat, 99.0),
        lat.last().copied().unwrap_or(f64::NAN)
    );

    // Updates interleaved with searches: one search after every 10 updates.
    let mut next_id = n as i64;
    let mut run = |label: &str, kinds: &[u8], index: &mut VolunteerIndex| {
        let updates = 200_000;
        let mut search_lat = Vec::new();
        let mut update_s = 0.0;
        let mut done = 0u64;
        for i in 0..updates {
            let id = (rng.next_u64() % n as u64) as i64;
            let kind = kinds[i % kinds.len()];
            let t = Instant::now();
            match kind {
                // A load change: an assignment starts or ends.
                0 => {
                    let load = (rng.next_u64() % 2) as u32;
                    done += u64::from(index.set_current_load(id, load).is_ok());
                }
                // Off duty, then another volunteer on duty.
                1 => {
                    if let Some(mut v) = index.remove(id) {
                        v.id = next_id;
                        next_id += 1;
                        done += u64::from(index.insert(v).is_ok());
                    }
                }
                // A move: the same volunteer, elsewhere near their city.
                _ => {
                    if let Some(mut v) = index.remove(id) {
                        let moved =
                            around(&mut rng, (v.location.longitude, v.location.latitude), 2.0);
                        v.location = moved;
                        done += u64::from(index.insert(v).is_ok());
                    }
                }
            }
            update_s += t.elapsed().as_secs_f64();
            if i % 10 == 9 {
                let at = queries[(i / 10) % queries.len()];
                search_lat.push(search(index, at));
            }
        }
        search_lat.sort_by(f64::total_cmp);
        println!(
            "{label}: {:.0} updates/s (update time only; {done} of {updates} found their \
             volunteer), search p99 alongside {:.2} µs",
            done as f64 / update_s,
            p(&search_lat, 99.0)
        );
    };
    run("load changes", &[0], &mut index);
    run("off/on duty", &[1], &mut index);
    run("moves", &[2], &mut index);
    run("mixed 8:1:1", &[0, 0, 0, 0, 1, 0, 0, 0, 0, 2], &mut index);

    // Removals leave dead entries; once they outnumber the live volunteers
    // a removal rebuilds the trees. Its cost, paid once per that many
    // removals:
    let started = Instant::now();
    index.compact();
    println!(
        "rebuild dropping the dead entries (done by a removal once they outnumber the live \
         volunteers): {:.3} s",
        started.elapsed().as_secs_f64()
    );
}
