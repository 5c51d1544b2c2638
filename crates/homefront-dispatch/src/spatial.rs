//! Candidate search: the k nearest eligible on-duty volunteers of an order,
//! ranked by cost.
//!
//! # Geometry
//! Volunteers are stored as 3D unit vectors on the sphere, `(cos φ cos λ,
//! cos φ sin λ, sin φ)`, in R-trees (`rstar`). The straight-line (chord)
//! length `c` between two unit vectors is a strictly increasing function of
//! their central angle θ, `c = 2 sin(θ/2)`, so Euclidean nearest-neighbour
//! order in 3D *is* great-circle order, everywhere on Earth (no seam at ±180°
//! longitude, no distortion near the poles, unlike an equirectangular frame).
//! The distance reported is `2R·asin(c/2)`, which equals the haversine formula
//! because `hav θ = (c/2)²` (Sinnott, "Virtues of the Haversine", 1984), with
//! `R` = [`EARTH_RADIUS_KM`] (IUGG mean radius).
//!
//! # Qualification filtering
//! A query only wants volunteers whose qualification bitmask contains the
//! required bits. Filtering a single tree while walking it in distance order
//! gets slow when few volunteers qualify (at 1%, about 100 rejected per
//! accepted). So the index keeps one R-tree per *key mask*: the empty mask
//! (everyone), every single qualification bit that occurs, and any extra
//! qualification sets the caller names (typically the service catalogue's
//! item requirements). A query walks the smallest tree whose key is a subset
//! of its required mask (every qualified volunteer is in it) and filters the
//! remaining bits. With the catalogue's sets registered, the walk never
//! meets an unqualified volunteer.
//!
//! # Updates
//! Going off duty (or a move, or new qualifications: remove + insert)
//! leaves the volunteer's tree entries in place, marked dead by their slot
//! (a removed slot never has capacity, so the search skips it before
//! reading anything else); an R-tree removal would cost a descent into
//! every node whose box holds the point, in every keyed tree. Inserting
//! takes a fresh slot. Once dead entries outnumber the live volunteers the
//! trees are rebuilt from the live ones ([`VolunteerIndex::compact`]), so
//! a removal costs O(1) plus an amortised share of one rebuild.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use homefront_domain::geo::{EARTH_RADIUS_KM, GeoPoint};
use rstar::primitives::GeomWithData;
use rstar::{ParentNode, RStarInsertionStrategy, RTree, RTreeNode, RTreeParams};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::cost::{CostTerms, CostWeights};

/// An on-duty volunteer as the dispatcher sees them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Volunteer {
    /// Volunteer id (the database id).
    pub id: i64,
    /// Home (or current) location; service radius is measured from here.
    pub location: GeoPoint,
    /// Furthest great-circle distance in km they accept for on-site items.
    pub service_radius_km: f64,
    /// Qualification bitmask: bit `i` set means qualification `i` is held
    /// and credentialed (the caller maps catalogue qualifications to bits).
    pub qualifications: u64,
    /// Assignments currently in progress.
    pub current_load: u32,
    /// Cap on concurrent assignments; a volunteer at the cap is not a candidate.
    pub max_load: u32,
    /// Minutes of service in the last 28 days (the fairness term;
    /// [`crate::cost::FAIRNESS_WINDOW_DAYS`]).
    pub recent_service_minutes: u32,
}

impl Volunteer {
    /// Below the load cap (`current_load < max_load`): the engine offers
    /// nothing to a volunteer at the cap.
    pub fn has_capacity(&self) -> bool {
        self.current_load < self.max_load
    }
}

/// Where an order is served: SPEC.md's service item mode.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum OrderLocation {
    /// On site at this point: distance and service radius apply.
    Onsite(GeoPoint),
    /// Remote (video, phone): distance is ignored, candidates are ranked by
    /// load, fairness and pairing only.
    Remote,
}

/// A candidate search.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CandidateQuery<'a> {
    /// Where the order is served.
    pub location: OrderLocation,
    /// Bits a volunteer must all hold (`volunteer.qualifications & mask == mask`).
    pub required_qualifications: u64,
    /// Maximum number of candidates returned.
    pub k: usize,
    /// Volunteers paired with the order's household: they are considered
    /// even when not among the k nearest and get the pairing bonus.
    pub paired_volunteers: &'a [i64],
}

/// Why a candidate was proposed, stored with the offer (SPEC.md: "every offer
/// stores why it was made").
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// 1-based rank among the returned candidates (1 = lowest cost).
    pub rank: usize,
    /// Great-circle distance in km from the volunteer to the order; `None`
    /// for remote items.
    pub distance_km: Option<f64>,
    /// The cost terms; candidates are sorted by `cost.total`.
    pub cost: CostTerms,
}

/// One proposed volunteer for an order.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Volunteer id.
    pub volunteer_id: i64,
    /// Rank, distance and cost terms.
    pub explanation: Explanation,
}

/// Why the index refused a volunteer.
#[derive(Debug, Error, PartialEq)]
pub enum IndexError {
    /// The id is already in the index.
    #[error("volunteer {0} is already in the index")]
    DuplicateVolunteer(i64),
    /// Coordinates outside the valid range or NaN.
    #[error("volunteer {0} has an invalid location")]
    InvalidLocation(i64),
    /// Service radius negative or NaN.
    #[error("volunteer {id} has an invalid service radius {radius_km} km")]
    InvalidServiceRadius {
        /// Volunteer id.
        id: i64,
        /// The radius given.
        radius_km: f64,
    },
    /// No volunteer with that id is in the index.
    #[error("volunteer {0} is not in the index")]
    UnknownVolunteer(i64),
}

/// What the search checks before it touches a volunteer's record: copied
/// into the tree leaves (which have room for it: a leaf is as large as an
/// inner node), so rejected volunteers cost no cache miss.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Meta {
    slot: u32,
    id: i64,
    qualifications: u64,
    /// Service radius as a squared chord, comparable with tree distances.
    radius_chord2: f64,
}

type Entry = GeomWithData<[f64; 3], Meta>;

/// Tree shape: nodes of up to 12 children (rstar's default is 6) and no
/// forced reinsertion. A national pool of 1,000,000 volunteers then builds
/// in fewer levels and takes a volunteer going on duty or moving in a
/// fraction of the default's insertion time; the search, which visits
/// nearest boxes first, reads a few more entries per node for it. Measured
/// with `examples/million.rs` (BENCHMARKS.md).
struct Params;

impl RTreeParams for Params {
    const MIN_SIZE: usize = 4;
    const MAX_SIZE: usize = 12;
    const REINSERTION_COUNT: usize = 0;
    type DefaultInsertionStrategy = RStarInsertionStrategy;
}

type Tree = RTree<Entry, Params>;

/// Hashes a volunteer id (a database id, not chosen by users) with one
/// multiplication (Fibonacci hashing, Knuth TAOCP vol. 3 §6.4): the id map
/// is built for every volunteer and read on every update, and SipHash was
/// a tenth of the build.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_i64(&mut self, id: i64) {
        // The high bits are the well-mixed ones; hashbrown uses the top 7
        // as tags and the low ones as the bucket, so fold them down.
        let h = (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 32);
    }
}

type IdMap = HashMap<i64, u32, BuildHasherDefault<IdHasher>>;

/// Dead entries kept before a removal rebuilds the trees: at least this
/// many, and more than the live volunteers.
const COMPACT_AFTER: usize = 4_096;

struct KeyedTree {
    /// Every volunteer whose qualifications contain `key` is in `tree`.
    key: u64,
    tree: Tree,
    /// Largest service radius in the tree as a squared chord (never lowered
    /// on removal, so it stays an upper bound): the search ignores anything
    /// further away.
    max_radius_chord2: f64,
}

/// A scored volunteer before ranking, internal to the crate.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scored {
    pub(crate) slot: u32,
    pub(crate) distance_km: Option<f64>,
    pub(crate) cost: CostTerms,
}

/// Spatial index of on-duty volunteers for k-nearest candidate search.
///
/// Build it from the volunteers currently on duty; keep it current with
/// [`insert`](Self::insert), [`remove`](Self::remove) and the `set_*`
/// methods (location and qualifications change by remove + insert).
pub struct VolunteerIndex {
    /// Slot-indexed; removed volunteers leave a `None`.
    volunteers: Vec<Option<Volunteer>>,
    units: Vec<[f64; 3]>,
    /// Service radius as a squared chord, by slot.
    radius_chord2: Vec<f64>,
    /// `current_load < max_load`, by slot (false for removed slots); kept
    /// apart from the records so the search reads 1 byte, not a cache line.
    has_capacity: Vec<bool>,
    slot_of: IdMap,
    trees: Vec<KeyedTree>,
    live: usize,
    /// Removed slots whose entries are still in the trees.
    dead: usize,
}

/// Unit vector of a point on the sphere.
fn unit_vector(p: GeoPoint) -> [f64; 3] {
    let (lat, lon) = (p.latitude.to_radians(), p.longitude.to_radians());
    [lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()]
}

/// Great-circle km from the squared chord between unit vectors.
#[inline]
fn chord2_to_km(chord2: f64) -> f64 {
    2.0 * EARTH_RADIUS_KM * (chord2.sqrt() * 0.5).min(1.0).asin()
}

/// Squared chord of a great-circle distance in km (inverse of
/// [`chord2_to_km`]; 4, the diameter squared, beyond half the circumference).
fn km_to_chord2(km: f64) -> f64 {
    let half_angle = (km / EARTH_RADIUS_KM).min(std::f64::consts::PI) * 0.5;
    (2.0 * half_angle.sin()).powi(2)
}

#[inline]
fn dist2(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)
}

fn entry(slot: u32, unit: [f64; 3], radius_chord2: f64, v: &Volunteer) -> Entry {
    GeomWithData::new(
        unit,
        Meta {
            slot,
            id: v.id,
            qualifications: v.qualifications,
            radius_chord2,
        },
    )
}

impl VolunteerIndex {
    /// Builds the index with per-bit trees only.
    ///
    /// # Errors
    /// [`IndexError`] for a duplicate id, an invalid location or radius.
    pub fn new(volunteers: impl IntoIterator<Item = Volunteer>) -> Result<Self, IndexError> {
        Self::with_qualification_sets(volunteers, &[])
    }

    /// Builds the index with an extra tree for each mask in
    /// `qualification_sets` (e.g. each catalogue item's required mask), so a
    /// query for exactly such a set never visits an unqualified volunteer.
    ///
    /// # Errors
    /// [`IndexError`] for a duplicate id, an invalid location or radius.
    pub fn with_qualification_sets(
        volunteers: impl IntoIterator<Item = Volunteer>,
        qualification_sets: &[u64],
    ) -> Result<Self, IndexError> {
        let volunteers = volunteers.into_iter();
        let capacity = volunteers.size_hint().0;
        let mut index = VolunteerIndex {
            volunteers: Vec::with_capacity(capacity),
            units: Vec::with_capacity(capacity),
            radius_chord2: Vec::with_capacity(capacity),
            has_capacity: Vec::with_capacity(capacity),
            slot_of: IdMap::with_capacity_and_hasher(capacity, Default::default()),
            trees: Vec::new(),
            live: 0,
            dead: 0,
        };
        let mut seen_bits = 0u64;
        for v in volunteers {
            Self::check(&v)?;
            let slot = index.volunteers.len() as u32;
            if index.slot_of.insert(v.id, slot).is_some() {
                return Err(IndexError::DuplicateVolunteer(v.id));
            }
            seen_bits |= v.qualifications;
            index.units.push(unit_vector(v.location));
            index.radius_chord2.push(km_to_chord2(v.service_radius_km));
            index.has_capacity.push(v.has_capacity());
            index.volunteers.push(Some(v));
        }
        index.live = index.volunteers.len();

        let mut keys = vec![0u64];
        keys.extend(
            (0..64)
                .map(|b| 1u64 << b)
                .filter(|bit| seen_bits & bit != 0),
        );
        for &set in qualification_sets {
            if !keys.contains(&set) {
                keys.push(set);
            }
        }
        index.trees = keys
            .into_iter()
            .map(|key| KeyedTree {
                key,
                tree: Tree::new_with_params(),
                max_radius_chord2: 0.0,
            })
            .collect();
        index.load_trees();
        Ok(index)
    }

    /// Bulk-loads every keyed tree from the live volunteers (the trees'
    /// keys stay as they are).
    fn load_trees(&mut self) {
        let keys: Vec<u64> = self.trees.iter().map(|t| t.key).collect();
        self.trees = keys
            .into_iter()
            .map(|key| {
                let mut max_radius_chord2 = 0.0f64;
                let entries: Vec<Entry> = self
                    .volunteers
                    .iter()
                    .enumerate()
                    .filter_map(|(slot, v)| {
                        let v = v.as_ref()?;
                        (v.qualifications & key == key).then(|| {
                            let r = self.radius_chord2[slot];
                            max_radius_chord2 = max_radius_chord2.max(r);
                            entry(slot as u32, self.units[slot], r, v)
                        })
                    })
                    .collect();
                KeyedTree {
                    key,
                    tree: Tree::bulk_load_with_params(entries),
                    max_radius_chord2,
                }
            })
            .collect();
    }

    /// Drops the dead entries: renumbers the live volunteers' slots and
    /// rebuilds the trees from them (the cost of a build of the same size).
    /// [`remove`](Self::remove) calls it once dead entries outnumber the
    /// live volunteers; call it at a quiet moment to do it earlier.
    pub fn compact(&mut self) {
        let keep: Vec<bool> = self.volunteers.iter().map(Option::is_some).collect();
        fn retain<T>(v: &mut Vec<T>, keep: &[bool]) {
            let mut i = 0;
            v.retain(|_| {
                i += 1;
                keep[i - 1]
            });
        }
        retain(&mut self.units, &keep);
        retain(&mut self.radius_chord2, &keep);
        retain(&mut self.has_capacity, &keep);
        self.volunteers.retain(Option::is_some);
        self.slot_of.clear();
        for (slot, v) in self.volunteers.iter().flatten().enumerate() {
            self.slot_of.insert(v.id, slot as u32);
        }
        self.dead = 0;
        self.load_trees();
    }

    fn check(v: &Volunteer) -> Result<(), IndexError> {
        GeoPoint::new(v.location.longitude, v.location.latitude)
            .map_err(|_| IndexError::InvalidLocation(v.id))?;
        if v.service_radius_km.is_nan() || v.service_radius_km < 0.0 {
            return Err(IndexError::InvalidServiceRadius {
                id: v.id,
                radius_km: v.service_radius_km,
            });
        }
        Ok(())
    }

    /// Number of volunteers in the index.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether the index holds no volunteer.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Number of volunteers below their load cap (the supply the `auto`
    /// policy compares with the pending orders).
    pub fn available(&self) -> usize {
        self.volunteers
            .iter()
            .flatten()
            .filter(|v| v.has_capacity())
            .count()
    }

    /// The volunteer with this id.
    pub fn get(&self, id: i64) -> Option<&Volunteer> {
        self.slot_of
            .get(&id)
            .and_then(|&s| self.volunteers[s as usize].as_ref())
    }

    /// Adds a volunteer (e.g. going on duty). A new qualification bit that no
    /// tree is keyed by is simply found through the everyone tree.
    ///
    /// # Errors
    /// [`IndexError`] for a duplicate id, an invalid location or radius.
    pub fn insert(&mut self, v: Volunteer) -> Result<(), IndexError> {
        Self::check(&v)?;
        if self.slot_of.contains_key(&v.id) {
            return Err(IndexError::DuplicateVolunteer(v.id));
        }
        let slot = self.volunteers.len() as u32;
        let unit = unit_vector(v.location);
        let radius_chord2 = km_to_chord2(v.service_radius_km);
        let e = entry(slot, unit, radius_chord2, &v);
        for t in &mut self.trees {
            if v.qualifications & t.key == t.key {
                t.tree.insert(e);
                t.max_radius_chord2 = t.max_radius_chord2.max(e.data.radius_chord2);
            }
        }
        self.slot_of.insert(v.id, slot);
        self.units.push(unit);
        self.radius_chord2.push(radius_chord2);
        self.has_capacity.push(v.has_capacity());
        self.volunteers.push(Some(v));
        self.live += 1;
        Ok(())
    }

    /// Removes a volunteer (e.g. going off duty), returning them. Their
    /// tree entries stay, dead, until dead entries outnumber the live
    /// volunteers (and at least [`COMPACT_AFTER`]); that removal then
    /// rebuilds the trees ([`compact`](Self::compact)).
    pub fn remove(&mut self, id: i64) -> Option<Volunteer> {
        let slot = self.slot_of.remove(&id)?;
        let v = self.volunteers[slot as usize].take()?;
        self.has_capacity[slot as usize] = false;
        self.live -= 1;
        self.dead += 1;
        if self.dead > self.live.max(COMPACT_AFTER) {
            self.compact();
        }
        Some(v)
    }

    /// Sets a volunteer's current load (assignments in progress).
    ///
    /// # Errors
    /// [`IndexError::UnknownVolunteer`].
    pub fn set_current_load(&mut self, id: i64, current_load: u32) -> Result<(), IndexError> {
        let v = self.get_mut(id)?;
        v.current_load = current_load;
        let has_capacity = v.has_capacity();
        self.has_capacity[self.slot_of[&id] as usize] = has_capacity;
        Ok(())
    }

    /// Sets a volunteer's cap on concurrent assignments (e.g. lowered by
    /// one when they are offered an order, as an open offer holds a place).
    ///
    /// # Errors
    /// [`IndexError::UnknownVolunteer`].
    pub fn set_max_load(&mut self, id: i64, max_load: u32) -> Result<(), IndexError> {
        let v = self.get_mut(id)?;
        v.max_load = max_load;
        let has_capacity = v.has_capacity();
        self.has_capacity[self.slot_of[&id] as usize] = has_capacity;
        Ok(())
    }

    /// Sets a volunteer's minutes of service in the last 28 days
    /// ([`crate::cost::FAIRNESS_WINDOW_DAYS`]).
    ///
    /// # Errors
    /// [`IndexError::UnknownVolunteer`].
    pub fn set_recent_service_minutes(&mut self, id: i64, minutes: u32) -> Result<(), IndexError> {
        self.get_mut(id)?.recent_service_minutes = minutes;
        Ok(())
    }

    fn get_mut(&mut self, id: i64) -> Result<&mut Volunteer, IndexError> {
        let slot = *self
            .slot_of
            .get(&id)
            .ok_or(IndexError::UnknownVolunteer(id))?;
        self.volunteers[slot as usize]
            .as_mut()
            .ok_or(IndexError::UnknownVolunteer(id))
    }

    pub(crate) fn slot_count(&self) -> usize {
        self.volunteers.len()
    }

    pub(crate) fn volunteer_at(&self, slot: u32) -> &Volunteer {
        self.volunteers[slot as usize]
            .as_ref()
            .expect("the search reads only slots with capacity, which are live")
    }

    /// Up to `query.k` candidates for an order, sorted by cost (lowest first).
    ///
    /// Candidates are the k nearest eligible volunteers by great-circle
    /// distance, plus any eligible paired volunteer, ranked by
    /// [`CostWeights::terms`]. Eligible means: holds every required
    /// qualification, is below their load cap, the order is within their
    /// service radius (on-site items only), and `exclude` returns `false`.
    /// `exclude` carries the caller's other rules (organisation scope,
    /// requester exclusions, credential validity at the service time); it is
    /// only called for volunteers that passed the cheap checks, but possibly
    /// for some that a nearer volunteer later displaces from the k nearest.
    ///
    /// Remote items ignore distance and radius: every qualified volunteer is
    /// scored, so the cost is linear in the number of qualified volunteers.
    pub fn candidates(
        &self,
        query: &CandidateQuery<'_>,
        weights: &CostWeights,
        mut exclude: impl FnMut(&Volunteer) -> bool,
    ) -> Vec<Candidate> {
        let mut scored = Vec::with_capacity(query.k.min(256) + query.paired_volunteers.len());
        self.search(query, weights, |_, v| exclude(v), &mut scored);
        rank(&mut scored);
        scored.truncate(query.k);
        scored
            .iter()
            .enumerate()
            .map(|(i, s)| Candidate {
                volunteer_id: self.volunteer_at(s.slot).id,
                explanation: Explanation {
                    rank: i + 1,
                    distance_km: s.distance_km,
                    cost: s.cost,
                },
            })
            .collect()
    }

    /// Fills `out` (unsorted) with the k nearest eligible volunteers and the
    /// eligible paired ones, and returns the *frontier*: a lower bound on the
    /// cost of every eligible volunteer left out, given non-negative load and
    /// fairness weights (on site: the k-th distance; remote: the k-th cost;
    /// `f64::INFINITY` when none was left out).
    pub(crate) fn search(
        &self,
        query: &CandidateQuery<'_>,
        weights: &CostWeights,
        mut exclude: impl FnMut(u32, &Volunteer) -> bool,
        out: &mut Vec<Scored>,
    ) -> f64 {
        out.clear();
        let required = query.required_qualifications;
        let tree = self
            .trees
            .iter()
            .filter(|t| t.key & !required == 0)
            .min_by_key(|t| t.tree.size())
            .expect("the everyone tree (key 0) always exists");
        let paired = query.paired_volunteers;

        let OrderLocation::Onsite(at) = query.location else {
            // Remote: score every qualified volunteer, keep the k cheapest
            // (paired ones included, with their bonus).
            for e in tree.tree.iter() {
                let m = &e.data;
                if m.qualifications & required != required || !self.has_capacity[m.slot as usize] {
                    continue;
                }
                let v = self.volunteer_at(m.slot);
                if exclude(m.slot, v) {
                    continue;
                }
                let cost = weights.terms(
                    0.0,
                    v.current_load,
                    v.recent_service_minutes,
                    paired.contains(&v.id),
                );
                keep_cheapest(
                    out,
                    query.k,
                    Scored {
                        slot: m.slot,
                        distance_km: None,
                        cost,
                    },
                );
            }
            // Whoever was dropped costs at least the dearest kept one; with
            // no distance term that cost is the bound.
            return if out.len() == query.k {
                out.iter().map(|s| s.cost.total).fold(f64::MIN, f64::max)
            } else {
                f64::INFINITY
            };
        };

        let q = unit_vector(at);
        for &id in paired {
            let Some(&slot) = self.slot_of.get(&id) else {
                continue;
            };
            let Some(v) = self.volunteers[slot as usize].as_ref() else {
                continue;
            };
            let d = chord2_to_km(dist2(&self.units[slot as usize], &q));
            if v.qualifications & required == required
                && v.has_capacity()
                && d <= v.service_radius_km
                && !exclude(slot, v)
            {
                out.push(Scored {
                    slot,
                    distance_km: Some(d),
                    cost: weights.terms(d, v.current_load, v.recent_service_minutes, true),
                });
            }
        }
        if query.k == 0 {
            return 0.0;
        }

        let mut knn = Knn {
            index: self,
            q,
            k: query.k,
            required,
            paired,
            max_chord2: tree.max_radius_chord2,
            best: Vec::with_capacity(query.k.min(256) + 1),
            exclude: &mut exclude,
        };
        knn.visit(tree.tree.root());
        let full = knn.best.len() == query.k;
        let frontier = match knn.best.last() {
            Some(&(d2, _)) if full => chord2_to_km(d2),
            _ => f64::INFINITY,
        };
        for &(d2, slot) in &knn.best {
            let v = self.volunteer_at(slot);
            let d = chord2_to_km(d2);
            out.push(Scored {
                slot,
                distance_km: Some(d),
                cost: weights.terms(d, v.current_load, v.recent_service_minutes, false),
            });
        }
        frontier
    }
}

impl VolunteerIndex {
    /// Fills `out` (unsorted) with every eligible, non-paired volunteer
    /// closer than `radius_km` to an on-site order (nothing for remote ones).
    pub(crate) fn search_within(
        &self,
        query: &CandidateQuery<'_>,
        radius_km: f64,
        weights: &CostWeights,
        mut exclude: impl FnMut(u32, &Volunteer) -> bool,
        out: &mut Vec<Scored>,
    ) {
        out.clear();
        let OrderLocation::Onsite(at) = query.location else {
            return;
        };
        let required = query.required_qualifications;
        let tree = self
            .trees
            .iter()
            .filter(|t| t.key & !required == 0)
            .min_by_key(|t| t.tree.size())
            .expect("the everyone tree (key 0) always exists");
        let mut knn = Knn {
            index: self,
            q: unit_vector(at),
            k: usize::MAX,
            required,
            paired: query.paired_volunteers,
            max_chord2: tree.max_radius_chord2.min(km_to_chord2(radius_km)),
            best: Vec::new(),
            exclude: &mut exclude,
        };
        knn.visit(tree.tree.root());
        for &(d2, slot) in &knn.best {
            let v = self.volunteer_at(slot);
            let d = chord2_to_km(d2);
            out.push(Scored {
                slot,
                distance_km: Some(d),
                cost: weights.terms(d, v.current_load, v.recent_service_minutes, false),
            });
        }
    }
}

/// Depth-first branch-and-bound k-nearest search (Roussopoulos, Kelley &
/// Vincent, "Nearest neighbor queries", SIGMOD 1995) over one R-tree,
/// keeping the k nearest volunteers that pass the filters. Children are
/// visited nearest box first and pruned once their box is further than the
/// current k-th best (or than the largest service radius). Unlike rstar's
/// best-first iterator it needs no priority queue, which was most of the
/// query time.
struct Knn<'a, F> {
    index: &'a VolunteerIndex,
    q: [f64; 3],
    k: usize,
    required: u64,
    paired: &'a [i64],
    max_chord2: f64,
    /// `(squared chord, slot)`, sorted ascending, at most `k`; with
    /// `k == usize::MAX` (everyone within `max_chord2`) unsorted.
    best: Vec<(f64, u32)>,
    exclude: &'a mut F,
}

impl<F: FnMut(u32, &Volunteer) -> bool> Knn<'_, F> {
    #[inline]
    fn bound(&self) -> f64 {
        if self.best.len() == self.k {
            self.best[self.k - 1].0
        } else {
            self.max_chord2
        }
    }

    fn visit(&mut self, node: &ParentNode<Entry>) {
        let children = node.children();
        if let Some(RTreeNode::Leaf(_)) = children.first() {
            for child in children {
                if let RTreeNode::Leaf(e) = child {
                    self.offer(e);
                }
            }
            return;
        }
        // Inner nodes hold at most `Params::MAX_SIZE` (12) children; 16 leaves room.
        let mut near = [(0.0f64, 0u32); 16];
        let mut n = 0;
        for (i, child) in children.iter().enumerate() {
            if let RTreeNode::Parent(p) = child {
                let env = p.envelope();
                let (lo, hi) = (env.lower(), env.upper());
                let mut d2 = 0.0;
                for dim in 0..3 {
                    let below = lo[dim] - self.q[dim];
                    let above = self.q[dim] - hi[dim];
                    let gap = below.max(above).max(0.0);
                    d2 += gap * gap;
                }
                if d2 > self.bound() {
                    continue;
                }
                if n < near.len() {
                    near[n] = (d2, i as u32);
                    n += 1;
                } else {
                    // Never with rstar's default parameters; stay correct anyway.
                    self.visit(p);
                }
            }
        }
        let near = &mut near[..n];
        near.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        for &(d2, i) in near.iter() {
            if d2 > self.bound() {
                break;
            }
            if let RTreeNode::Parent(p) = &children[i as usize] {
                self.visit(p);
            }
        }
    }

    #[inline]
    fn offer(&mut self, e: &Entry) {
        let d2 = dist2(e.geom(), &self.q);
        let m = &e.data;
        let full = self.best.len() == self.k;
        if (full && d2 >= self.best[self.k - 1].0)
            || d2 > m.radius_chord2
            || m.qualifications & self.required != self.required
            || !self.index.has_capacity[m.slot as usize]
            || self.paired.contains(&m.id)
        {
            return;
        }
        if (self.exclude)(m.slot, self.index.volunteer_at(m.slot)) {
            return;
        }
        if self.k == usize::MAX {
            if d2 < self.max_chord2 {
                self.best.push((d2, m.slot));
            }
            return;
        }
        let at = self.best.partition_point(|&(b, _)| b <= d2);
        self.best.insert(at, (d2, m.slot));
        self.best.truncate(self.k);
    }
}

/// Sorts by total cost, then distance, then slot, so ranks are deterministic.
pub(crate) fn rank(scored: &mut [Scored]) {
    scored.sort_unstable_by(|a, b| {
        a.cost
            .total
            .total_cmp(&b.cost.total)
            .then_with(|| {
                a.distance_km
                    .unwrap_or(0.0)
                    .total_cmp(&b.distance_km.unwrap_or(0.0))
            })
            .then_with(|| a.slot.cmp(&b.slot))
    });
}

/// Keeps `out` as the `k` cheapest seen so far (unsorted, small k).
fn keep_cheapest(out: &mut Vec<Scored>, k: usize, s: Scored) {
    if out.len() < k {
        out.push(s);
        return;
    }
    if let Some((worst, w)) = out
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.cost.total.total_cmp(&b.1.cost.total))
        && s.cost.total < w.cost.total
    {
        out[worst] = s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vol(id: i64, lon: f64, lat: f64, quals: u64) -> Volunteer {
        Volunteer {
            id,
            location: GeoPoint {
                longitude: lon,
                latitude: lat,
            },
            service_radius_km: 50.0,
            qualifications: quals,
            current_load: 0,
            max_load: 2,
            recent_service_minutes: 0,
        }
    }

    fn at(lon: f64, lat: f64) -> OrderLocation {
        OrderLocation::Onsite(GeoPoint {
            longitude: lon,
            latitude: lat,
        })
    }

    fn query(location: OrderLocation, required: u64, k: usize) -> CandidateQuery<'static> {
        CandidateQuery {
            location,
            required_qualifications: required,
            k,
            paired_volunteers: &[],
        }
    }

    const ZERO: CostWeights = CostWeights {
        load_weight: 0.0,
        fairness_weight: 0.0,
        pairing_bonus: 0.0,
    };

    #[test]
    fn chord_distance_equals_haversine() {
        let a = GeoPoint {
            longitude: 118.7969,
            latitude: 32.0603,
        };
        for (lon, lat) in [(119.4129, 32.3942), (-71.06, 42.36), (118.7970, 32.0603)] {
            let b = GeoPoint {
                longitude: lon,
                latitude: lat,
            };
            let (ua, ub) = (unit_vector(a), unit_vector(b));
            let d2: f64 = (0..3).map(|i| (ua[i] - ub[i]).powi(2)).sum();
            let got = chord2_to_km(d2);
            let want = a.haversine_km(&b);
            assert!((got - want).abs() < 1e-6 * want.max(1.0), "{got} vs {want}");
        }
    }

    #[test]
    fn nearest_first_across_the_antimeridian() {
        let idx = VolunteerIndex::new([vol(1, 179.99, 0.0, 0), vol(2, 179.0, 0.0, 0)]).unwrap();
        let c = idx.candidates(&query(at(-179.99, 0.0), 0, 2), &ZERO, |_| false);
        assert_eq!(c[0].volunteer_id, 1);
        assert!(c[0].explanation.distance_km.unwrap() < 3.0);
    }

    #[test]
    fn filters_by_qualification_radius_load_and_exclusion() {
        let mut far = vol(3, 118.80, 32.30, 0b11);
        far.service_radius_km = 5.0; // about 27 km away: out of its radius
        let mut busy = vol(4, 118.80, 32.06, 0b11);
        busy.current_load = 2;
        let idx = VolunteerIndex::new([
            vol(1, 118.80, 32.07, 0b01),
            vol(2, 118.81, 32.07, 0b11),
            far,
            busy,
            vol(5, 118.82, 32.07, 0b10),
            vol(6, 118.83, 32.07, 0b11),
        ])
        .unwrap();
        let q = query(at(118.80, 32.06), 0b11, 10);
        let ids: Vec<i64> = idx
            .candidates(&q, &ZERO, |v| v.id == 6)
            .iter()
            .map(|c| c.volunteer_id)
            .collect();
        assert_eq!(ids, vec![2]);
        let ids: Vec<i64> = idx
            .candidates(&query(at(118.80, 32.06), 0b01, 2), &ZERO, |_| false)
            .iter()
            .map(|c| c.volunteer_id)
            .collect();
        assert_eq!(ids, vec![1, 2]);
    }

    #[test]
    fn ranks_by_cost_and_explains() {
        let mut loaded = vol(1, 118.80, 32.061, 0);
        loaded.current_load = 1;
        let idx = VolunteerIndex::new([loaded, vol(2, 118.80, 32.07, 0), vol(3, 118.9, 32.2, 0)])
            .unwrap();
        let w = CostWeights::default();
        let paired = [3];
        let q = CandidateQuery {
            paired_volunteers: &paired,
            ..query(at(118.80, 32.06), 0, 2)
        };
        let c = idx.candidates(&q, &w, |_| false);
        // Paired volunteer 3 is ~18 km away but the 10 km bonus... is not
        // enough; volunteer 2 (1.1 km) beats loaded volunteer 1 (0.1 + 2 km).
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].volunteer_id, 2);
        assert_eq!(c[0].explanation.rank, 1);
        assert_eq!(c[1].volunteer_id, 1);
        assert_eq!(c[1].explanation.cost.load, 2.0);
        let c = idx.candidates(&CandidateQuery { k: 3, ..q }, &w, |_| false);
        assert_eq!(c[2].volunteer_id, 3);
        assert_eq!(c[2].explanation.cost.pairing_bonus, 10.0);
    }

    #[test]
    fn remote_ignores_distance() {
        let mut rested = vol(2, 0.0, 60.0, 1);
        rested.service_radius_km = 0.0;
        let mut tired = vol(1, 118.8, 32.06, 1);
        tired.recent_service_minutes = 600;
        let idx = VolunteerIndex::new([tired, rested, vol(3, 0.0, 0.0, 0)]).unwrap();
        let c = idx.candidates(
            &query(OrderLocation::Remote, 1, 5),
            &CostWeights::default(),
            |_| false,
        );
        let ids: Vec<i64> = c.iter().map(|c| c.volunteer_id).collect();
        assert_eq!(ids, vec![2, 1]);
        assert_eq!(c[0].explanation.distance_km, None);
    }

    #[test]
    fn insert_remove_and_updates() {
        let mut idx = VolunteerIndex::new([vol(1, 118.80, 32.07, 1)]).unwrap();
        assert_eq!(
            idx.insert(vol(1, 0.0, 0.0, 0)),
            Err(IndexError::DuplicateVolunteer(1))
        );
        idx.insert(vol(2, 118.80, 32.061, 1)).unwrap();
        let q = query(at(118.80, 32.06), 1, 1);
        assert_eq!(idx.candidates(&q, &ZERO, |_| false)[0].volunteer_id, 2);
        idx.set_current_load(2, 2).unwrap();
        assert_eq!(idx.available(), 1);
        assert_eq!(idx.candidates(&q, &ZERO, |_| false)[0].volunteer_id, 1);
        idx.set_current_load(2, 0).unwrap();
        // An open offer holds a place: the cap lowered to the load.
        idx.set_max_load(2, 0).unwrap();
        assert_eq!(idx.candidates(&q, &ZERO, |_| false)[0].volunteer_id, 1);
        idx.set_max_load(2, 2).unwrap();
        assert_eq!(idx.candidates(&q, &ZERO, |_| false)[0].volunteer_id, 2);
        assert_eq!(idx.remove(2).unwrap().id, 2);
        assert_eq!(idx.len(), 1);
        assert_eq!(idx.candidates(&q, &ZERO, |_| false)[0].volunteer_id, 1);
        assert_eq!(
            idx.set_recent_service_minutes(2, 5),
            Err(IndexError::UnknownVolunteer(2))
        );
        assert!(matches!(
            VolunteerIndex::new([vol(9, 200.0, 0.0, 0)]),
            Err(IndexError::InvalidLocation(9))
        ));
    }

    #[test]
    fn removals_and_rebuilds_agree_with_a_fresh_index() {
        let at_i = |i: i64| {
            let f = i as f64;
            // Irrational steps: no two volunteers share a point.
            (
                118.0 + (f * 0.618_033_988_7) % 1.0,
                32.0 + (f * 0.754_877_666_2) % 1.0,
            )
        };
        let n = 3 * COMPACT_AFTER as i64;
        let mut idx = VolunteerIndex::with_qualification_sets(
            (0..n).map(|i| {
                let (lon, lat) = at_i(i);
                vol(i, lon, lat, (i % 3) as u64)
            }),
            &[0b11],
        )
        .unwrap();
        // Move every volunteer once (remove + insert elsewhere): dead
        // entries pass the live count, so the trees are rebuilt on the way.
        for i in 0..n {
            let mut v = idx.remove(i).unwrap();
            let (lon, lat) = at_i(i + n);
            v.location = GeoPoint {
                longitude: lon,
                latitude: lat,
            };
            idx.insert(v).unwrap();
            assert!(idx.dead <= idx.live.max(COMPACT_AFTER));
        }
        // And take a third off duty.
        for i in (0..n).step_by(3) {
            assert!(idx.remove(i).is_some());
            assert!(idx.remove(i).is_none());
        }
        let fresh = VolunteerIndex::with_qualification_sets(
            (0..n).filter(|i| i % 3 != 0).map(|i| {
                let (lon, lat) = at_i(i + n);
                vol(i, lon, lat, (i % 3) as u64)
            }),
            &[0b11],
        )
        .unwrap();
        assert_eq!(idx.len(), fresh.len());
        for required in [0, 0b1, 0b10] {
            for q in 0..20 {
                let (lon, lat) = at_i(q * 7);
                let query = query(at(lon, lat), required, 8);
                let a = idx.candidates(&query, &ZERO, |_| false);
                let b = fresh.candidates(&query, &ZERO, |_| false);
                assert_eq!(a, b);
                assert!(a.iter().all(|c| c.volunteer_id % 3 != 0));
            }
        }
        let remote = query(OrderLocation::Remote, 0b1, 5);
        assert_eq!(
            idx.candidates(&remote, &ZERO, |_| false).len(),
            fresh.candidates(&remote, &ZERO, |_| false).len()
        );
        idx.compact();
        assert_eq!(idx.dead, 0);
        let query = query(at(118.5, 32.5), 0b1, 8);
        assert_eq!(
            idx.candidates(&query, &ZERO, |_| false),
            fresh.candidates(&query, &ZERO, |_| false)
        );
    }

    #[test]
    fn qualification_set_trees_agree_with_bit_trees() {
        let vols: Vec<Volunteer> = (0..500)
            .map(|i| {
                let f = f64::from(i);
                vol(
                    i64::from(i),
                    118.0 + (f * 0.37) % 1.0,
                    32.0 + (f * 0.61) % 1.0,
                    (i % 7) as u64,
                )
            })
            .collect();
        let plain = VolunteerIndex::new(vols.clone()).unwrap();
        let sets = VolunteerIndex::with_qualification_sets(vols, &[0b110]).unwrap();
        for required in [0, 0b1, 0b110, 0b111] {
            let q = query(at(118.5, 32.5), required, 8);
            let a = plain.candidates(&q, &ZERO, |_| false);
            let b = sets.candidates(&q, &ZERO, |_| false);
            assert_eq!(a, b);
            assert!(a.iter().all(|c| {
                plain.get(c.volunteer_id).unwrap().qualifications & required == required
            }));
        }
    }
}
