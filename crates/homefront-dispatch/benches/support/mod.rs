//! Synthetic data for the dispatch benchmarks, shared by `benches/` and the
//! measurement examples (`#[path]`-included, so each user may leave parts
//! unused).
#![allow(dead_code)]

use homefront_dispatch::{Edge, OrderLocation, PendingOrder, Volunteer, VolunteerIndex};
use homefront_domain::geo::GeoPoint;
use rstar::RTree;
use rstar::primitives::GeomWithData;

/// Side of the square service area in km, as `shared/bench/make_instance.py`.
pub const SIDE_KM: f64 = 40.0;
/// South-west corner of the area (Nanjing).
const ORIGIN: (f64, f64) = (118.55, 31.88);
/// km per degree of latitude on the mean sphere (2π·6371.0088/360).
const KM_PER_DEG_LAT: f64 = 111.195;

/// SplitMix64 (Steele, Lea & Flood, OOPSLA 2014): a tiny seeded generator,
/// so benchmarks are reproducible without a `rand` dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * self.unit()).cos()
    }
}

/// Planar points in km inside the square, uniform or around 8 centres
/// (σ = side/20, clipped), as `make_instance.py` draws them.
pub fn points_km(
    rng: &mut Rng,
    n: usize,
    clustered: bool,
    centres: &[(f64, f64)],
) -> Vec<(f64, f64)> {
    (0..n)
        .map(|_| {
            if clustered {
                let c = centres[(rng.next_u64() % centres.len() as u64) as usize];
                let s = SIDE_KM / 20.0;
                (
                    (c.0 + rng.normal() * s).clamp(0.0, SIDE_KM),
                    (c.1 + rng.normal() * s).clamp(0.0, SIDE_KM),
                )
            } else {
                (rng.unit() * SIDE_KM, rng.unit() * SIDE_KM)
            }
        })
        .collect()
}

pub fn centres(rng: &mut Rng) -> Vec<(f64, f64)> {
    (0..8)
        .map(|_| (rng.unit() * SIDE_KM, rng.unit() * SIDE_KM))
        .collect()
}

/// Local planar km to a point near Nanjing.
pub fn geo((x, y): (f64, f64)) -> GeoPoint {
    let lat = ORIGIN.1 + y / KM_PER_DEG_LAT;
    let lon = ORIGIN.0 + x / (KM_PER_DEG_LAT * ORIGIN.1.to_radians().cos());
    GeoPoint {
        longitude: lon,
        latitude: lat,
    }
}

/// A batch instance like `make_instance.py`: each request linked to its `k`
/// nearest volunteers, cost = planar distance in km.
pub fn batch_instance(
    requests: usize,
    volunteers: usize,
    k: usize,
    clustered: bool,
    seed: u64,
) -> Vec<Edge> {
    let mut rng = Rng::new(seed);
    // Like make_instance.py, requests and volunteers cluster around
    // different centres, so clustered instances have contested regions
    // where not every request can be matched.
    let c = centres(&mut rng);
    let req = points_km(&mut rng, requests, clustered, &c);
    let c = centres(&mut rng);
    let vol = points_km(&mut rng, volunteers, clustered, &c);
    let tree = RTree::bulk_load(
        vol.iter()
            .enumerate()
            .map(|(j, &(x, y))| GeomWithData::new([x, y], j as i64))
            .collect(),
    );
    let mut edges = Vec::with_capacity(requests * k);
    for (i, &(x, y)) in req.iter().enumerate() {
        for (e, d2) in tree.nearest_neighbor_iter_with_distance_2([x, y]).take(k) {
            edges.push(Edge {
                request: i as i64,
                volunteer: e.data,
                cost: d2.sqrt(),
            });
        }
    }
    edges
}

/// On-duty volunteers spread uniformly over the area. Qualification bit 0 is
/// held by 1% of them and bit 1 by 5%; radius 5–20 km, load 0–2 of max 2,
/// 0–600 minutes served this week.
pub fn volunteers(n: usize, seed: u64) -> Vec<Volunteer> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let p = (rng.unit() * SIDE_KM, rng.unit() * SIDE_KM);
            let q = rng.unit();
            let qualifications = u64::from(q < 0.01) | (u64::from(q < 0.05) << 1);
            Volunteer {
                id: 1_000_000 + i as i64 * 7,
                location: geo(p),
                service_radius_km: 5.0 + 15.0 * rng.unit(),
                qualifications,
                current_load: (rng.next_u64() % 3) as u32,
                max_load: 2,
                recent_service_minutes: (rng.next_u64() % 601) as u32,
            }
        })
        .collect()
}

/// Plain volunteers for the policy comparison: idle, no qualifications,
/// a radius covering the whole area, so only distance matters.
pub fn idle_volunteers(n: usize, rng: &mut Rng) -> Vec<Volunteer> {
    (0..n)
        .map(|i| Volunteer {
            id: i as i64,
            location: geo((rng.unit() * SIDE_KM, rng.unit() * SIDE_KM)),
            service_radius_km: 100.0,
            qualifications: 0,
            current_load: 0,
            max_load: 1,
            recent_service_minutes: 0,
        })
        .collect()
}

/// Orders spread uniformly over the area, in random arrival order.
pub fn orders(n: usize, rng: &mut Rng) -> Vec<PendingOrder> {
    (0..n)
        .map(|i| PendingOrder {
            id: i as i64,
            location: OrderLocation::Onsite(geo((rng.unit() * SIDE_KM, rng.unit() * SIDE_KM))),
            required_qualifications: 0,
            paired_volunteers: Vec::new(),
        })
        .collect()
}

/// The search index of [`volunteers`], with the two benchmark qualification
/// sets registered.
pub fn search_index(n: usize, seed: u64) -> VolunteerIndex {
    VolunteerIndex::with_qualification_sets(volunteers(n, seed), &[0b01, 0b10])
        .expect("generated volunteers are valid")
}

/// Query points for the search benchmark.
pub fn query_points(n: usize, seed: u64) -> Vec<GeoPoint> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| geo((rng.unit() * SIDE_KM, rng.unit() * SIDE_KM)))
        .collect()
}

/// Percentile (0–100) of a sorted slice, nearest-rank method.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
