//! Exact batch assignment: maximum number of matches first, then minimum total
//! cost, on a sparse bipartite graph of requests and volunteers.
//!
//! # Algorithm
//! Successive shortest augmenting paths with node potentials (reduced costs)
//! and a binary-heap Dijkstra that stops at the first free volunteer: the
//! shortest augmenting path method of Ahuja, Magnanti & Orlin, *Network
//! Flows* (1993), §9.7 and §12.4, in the row-by-row form of Jonker &
//! Volgenant, "A shortest augmenting path algorithm for dense and sparse
//! linear assignment problems", *Computing* 38 (1987), whose sparse variant
//! (LAPJVsp) SciPy's `min_weight_full_bipartite_matching` implements.
//!
//! Each request also owns a private "unmatched" volunteer, as in
//! `shared/bench/assign_reference.py`, so that a full assignment of requests
//! always exists. Its cost is not a big number but the symbol `B` ("one
//! unmatched request"): costs and potentials are pairs `(b, c)` meaning
//! `b·B + c`, compared lexicographically. Minimising that pair minimises the
//! number of unmatched requests first and the real cost second, exactly, with
//! no big-M constant that would swallow small costs in floating point.
//!
//! Processing requests one at a time keeps, after each step, an optimal
//! assignment of the requests seen so far (the Hungarian invariant: reduced
//! costs `c − u_r − v_c ≥ 0`, zero on matched pairs, `v_c ≤ 0` with `v_c = 0`
//! on free volunteers), so the final assignment is optimal.
//!
//! # Cost
//! Graph building is `O(E)` (hashing the ids, CSR by counting sort,
//! duplicate pairs keep their cheapest cost). Each request costs one
//! Dijkstra on the part of the graph it has to reorganise; when volunteers are
//! plentiful most requests take their cheapest free volunteer without
//! touching the heap.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use serde::{Deserialize, Serialize};

/// One candidate link of a batch instance: `request` may be served by
/// `volunteer` at `cost` (km-equivalents for dispatch, km in the benchmark).
///
/// Ids are arbitrary integers (they need not be dense or sorted). Costs may be
/// any finite number, negative included (a pairing bonus can make a cost
/// negative); edges with a NaN or infinite cost are ignored. If a pair occurs
/// more than once, its cheapest edge counts.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Edge {
    /// Request (order) id.
    pub request: i64,
    /// Volunteer id.
    pub volunteer: i64,
    /// Cost of serving `request` with `volunteer`.
    pub cost: f64,
}

/// One matched pair of a [`Solution`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Match {
    /// Request (order) id.
    pub request: i64,
    /// Volunteer id.
    pub volunteer: i64,
    /// The (cheapest) cost of that pair in the instance.
    pub cost: f64,
}

/// An optimal batch assignment: no other assignment of the same instance has
/// more matches, and none with as many matches costs less.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Solution {
    /// Number of matched requests (= `assignments.len()`).
    pub matched: usize,
    /// Sum of the costs of the matched pairs.
    pub total_cost: f64,
    /// The matched pairs, sorted by request id; each request and each
    /// volunteer appears at most once.
    pub assignments: Vec<Match>,
}

/// Solves a batch instance exactly: maximum number of matched requests, then
/// minimum total cost, each request and volunteer used at most once.
///
/// Runs in memory without I/O; the time includes building the graph from
/// `edges`, so a caller timing this call measures the whole solve.
///
/// ```
/// use homefront_dispatch::{Edge, solve_instance};
/// let e = |request, volunteer, cost| Edge { request, volunteer, cost };
/// // Both requests want volunteer 7; request 2 has nobody else, so request 1
/// // takes its second choice even though it costs more.
/// let s = solve_instance(&[e(1, 7, 1.0), e(1, 9, 3.0), e(2, 7, 2.0)]);
/// assert_eq!(s.matched, 2);
/// assert_eq!(s.total_cost, 5.0);
/// ```
pub fn solve_instance(edges: &[Edge]) -> Solution {
    let graph = Graph::from_edges(edges);
    let state = solve_graph(&graph);
    graph.solution(&state.row_match)
}

/// A solution together with each request's dual value, for callers that
/// need an optimality certificate (see `policy::batch`).
pub(crate) struct SolutionWithDuals {
    pub(crate) solution: Solution,
    /// `(request id, u_r)` for every request that had at least one edge.
    pub(crate) duals: Vec<(i64, Lex)>,
    /// `(volunteer id, v_c)` for every volunteer in some edge; any other
    /// volunteer has `v = 0`.
    pub(crate) volunteer_duals: Vec<(i64, Lex)>,
}

/// Like [`solve_instance`], also returning the request duals `u_r`.
///
/// An edge `(r, c)` left out of the instance with reduced cost
/// `cost − u_r − v_c ≥ 0` could not improve the solution; as `v ≤ 0`, any
/// cost `≥ u_r` qualifies.
pub(crate) fn solve_with_duals(edges: &[Edge]) -> SolutionWithDuals {
    let graph = Graph::from_edges(edges);
    let mut state = solve_graph(&graph);
    tighten_duals(&graph, &mut state);
    let solution = graph.solution(&state.row_match);
    let duals = graph.row_ids.iter().copied().zip(state.u).collect();
    let volunteer_duals = graph.col_ids.into_iter().zip(state.v).collect();
    SolutionWithDuals {
        solution,
        duals,
        volunteer_duals,
    }
}

/// `b·B + c` where `B` stands for "one unmatched request", larger than any sum
/// of real costs; ordered lexicographically by `(b, c)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Lex {
    pub(crate) b: i32,
    pub(crate) c: f64,
}

impl Lex {
    pub(crate) const ZERO: Lex = Lex { b: 0, c: 0.0 };
    const UNMATCHED: Lex = Lex { b: 1, c: 0.0 };

    #[inline]
    pub(crate) fn real(c: f64) -> Lex {
        Lex { b: 0, c }
    }

    #[inline]
    fn add(self, o: Lex) -> Lex {
        Lex {
            b: self.b + o.b,
            c: self.c + o.c,
        }
    }

    #[inline]
    pub(crate) fn sub(self, o: Lex) -> Lex {
        Lex {
            b: self.b - o.b,
            c: self.c - o.c,
        }
    }

    #[inline]
    pub(crate) fn lt(self, o: Lex) -> bool {
        self.b < o.b || (self.b == o.b && self.c < o.c)
    }
}

/// Volunteer column of a request that is matched to its own "unmatched" slot.
const UNMATCHED: u32 = u32::MAX;
/// Free volunteer column.
const FREE: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Arc {
    col: u32,
    cost: f64,
}

/// Compact CSR form of an instance: rows are requests in order of first
/// appearance, columns the volunteers that occur in some edge.
struct Graph {
    row_ids: Vec<i64>,
    col_ids: Vec<i64>,
    /// Arcs of row `r` are `arcs[start[r]..start[r + 1]]`.
    start: Vec<u32>,
    arcs: Vec<Arc>,
}

/// Fibonacci hashing of integer ids (Knuth, TAOCP vol. 3, §6.4): the ids are
/// not attacker-chosen here, and SipHash would dominate graph building.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0 ^ i).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    #[inline]
    fn write_i64(&mut self, i: i64) {
        self.write_u64(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // Fold the well-mixed high half into the low bits the table indexes by.
        self.0 ^ (self.0 >> 32)
    }
}

type IdMap = HashMap<i64, u32, BuildHasherDefault<IdHasher>>;

impl Graph {
    fn from_edges(edges: &[Edge]) -> Graph {
        let mut row_of = IdMap::default();
        let mut col_of = IdMap::with_capacity_and_hasher(edges.len() / 2, Default::default());
        let mut row_ids = Vec::new();
        let mut col_ids = Vec::new();
        let mut rows = Vec::with_capacity(edges.len());
        let mut cols = Vec::with_capacity(edges.len());
        let mut costs = Vec::with_capacity(edges.len());
        // Instances usually list a request's edges together; skip the lookup then.
        let mut last: Option<(i64, u32)> = None;
        for e in edges {
            if !e.cost.is_finite() {
                continue;
            }
            let r = match last {
                Some((id, r)) if id == e.request => r,
                _ => {
                    let next = row_ids.len() as u32;
                    let r = *row_of.entry(e.request).or_insert_with(|| {
                        row_ids.push(e.request);
                        next
                    });
                    last = Some((e.request, r));
                    r
                }
            };
            let next = col_ids.len() as u32;
            let c = *col_of.entry(e.volunteer).or_insert_with(|| {
                col_ids.push(e.volunteer);
                next
            });
            rows.push(r);
            cols.push(c);
            costs.push(e.cost);
        }

        // Counting sort by row into CSR.
        let m = row_ids.len();
        let mut start = vec![0u32; m + 1];
        for &r in &rows {
            start[r as usize + 1] += 1;
        }
        for r in 0..m {
            start[r + 1] += start[r];
        }
        let mut fill = start.clone();
        let mut arcs = vec![Arc { col: 0, cost: 0.0 }; rows.len()];
        for ((&r, &col), &cost) in rows.iter().zip(&cols).zip(&costs) {
            let at = &mut fill[r as usize];
            arcs[*at as usize] = Arc { col, cost };
            *at += 1;
        }

        // Drop repeated pairs, keeping the cheapest, by remembering where each
        // column last landed within the current row.
        let mut seen_in_row = vec![u32::MAX; col_ids.len()];
        let mut at = vec![0u32; col_ids.len()];
        let mut out = 0usize;
        let mut new_start = vec![0u32; m + 1];
        for r in 0..m {
            let (lo, hi) = (start[r] as usize, start[r + 1] as usize);
            let row_begin = out;
            for i in lo..hi {
                let a = arcs[i];
                let c = a.col as usize;
                if seen_in_row[c] == r as u32 {
                    let p = at[c] as usize;
                    if a.cost < arcs[p].cost {
                        arcs[p].cost = a.cost;
                    }
                } else {
                    seen_in_row[c] = r as u32;
                    at[c] = out as u32;
                    arcs[out] = a;
                    out += 1;
                }
            }
            debug_assert!(row_begin <= out);
            new_start[r + 1] = out as u32;
        }
        arcs.truncate(out);

        Graph {
            row_ids,
            col_ids,
            start: new_start,
            arcs,
        }
    }

    #[inline]
    fn arcs(&self, r: usize) -> &[Arc] {
        &self.arcs[self.start[r] as usize..self.start[r + 1] as usize]
    }

    fn solution(&self, row_match: &[u32]) -> Solution {
        let mut assignments: Vec<Match> = row_match
            .iter()
            .enumerate()
            .filter(|&(_, &c)| c != UNMATCHED)
            .map(|(r, &c)| {
                let cost = self
                    .arcs(r)
                    .iter()
                    .find(|a| a.col == c)
                    .map(|a| a.cost)
                    .unwrap_or(f64::NAN);
                Match {
                    request: self.row_ids[r],
                    volunteer: self.col_ids[c as usize],
                    cost,
                }
            })
            .collect();
        assignments.sort_unstable_by_key(|m| m.request);
        Solution {
            matched: assignments.len(),
            total_cost: assignments.iter().map(|m| m.cost).sum(),
            assignments,
        }
    }
}

/// Heap entry of the Dijkstra; `BinaryHeap` is a max-heap, so the order is
/// reversed to pop the smallest label first.
#[derive(Clone, Copy)]
struct HeapItem {
    // A flattened `Lex` keeps the entry at 16 bytes.
    c: f64,
    b: i32,
    col: u32,
}

impl HeapItem {
    #[inline]
    fn new(key: Lex, col: u32) -> HeapItem {
        HeapItem {
            c: key.c,
            b: key.b,
            col,
        }
    }

    #[inline]
    fn key(&self) -> Lex {
        Lex {
            b: self.b,
            c: self.c,
        }
    }
}

impl PartialEq for HeapItem {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for HeapItem {}

impl PartialOrd for HeapItem {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for HeapItem {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .b
            .cmp(&self.b)
            .then_with(|| other.c.total_cmp(&self.c))
    }
}

struct SolveState {
    row_match: Vec<u32>,
    u: Vec<Lex>,
    v: Vec<Lex>,
}

/// Replaces the duals by the feasible ones with the greatest `v`, hence the
/// smallest `u_r` for every matched request, so that `policy::batch` can
/// prove optimality with fewer candidates.
///
/// The shortest-path method leaves contested volunteers with very negative
/// `v`. With the assignment fixed, the dual constraints are difference
/// constraints `v_c ≤ v_m(r) + c_rc − c_r,m(r)` (plus `v ≤ 0`), whose
/// greatest solution is the shortest-path distance from a source linked to
/// every volunteer at 0 (Cormen et al., *Introduction to Algorithms*, 3rd
/// ed., §24.4). The current duals make every arc non-negative, so one
/// multi-source Dijkstra suffices (Johnson's reweighting, ibid. §25.3).
fn tighten_duals(g: &Graph, s: &mut SolveState) {
    let n = g.col_ids.len();
    let mut col_match = vec![FREE; n];
    for (r, &c) in s.row_match.iter().enumerate() {
        if c != UNMATCHED {
            col_match[c as usize] = r as u32;
        }
    }
    // Labels start at the source's arc, reduced: 0 − v_c.
    let mut dist: Vec<Lex> = s.v.iter().map(|&v| Lex::ZERO.sub(v)).collect();
    // An unmatched request's own slot is a source too (its v is 0): arcs
    // from it to the request's volunteers have reduced cost c − B − v_c.
    for (r, &m) in s.row_match.iter().enumerate() {
        if m == UNMATCHED {
            for a in g.arcs(r) {
                let c = a.col as usize;
                let d = Lex::real(a.cost).sub(Lex::UNMATCHED).sub(s.v[c]);
                if d.lt(dist[c]) {
                    dist[c] = d;
                }
            }
        }
    }
    let mut heap: BinaryHeap<HeapItem> = dist
        .iter()
        .enumerate()
        .map(|(c, &d)| HeapItem::new(d, c as u32))
        .collect();
    let mut done = vec![false; n];
    while let Some(item) = heap.pop() {
        let c = item.col as usize;
        if done[c] || dist[c].lt(item.key()) {
            continue;
        }
        done[c] = true;
        let r = col_match[c];
        if r == FREE {
            continue;
        }
        let base = dist[c].sub(s.u[r as usize]);
        for a in g.arcs(r as usize) {
            let c2 = a.col as usize;
            if done[c2] {
                continue;
            }
            let d = base.add(Lex::real(a.cost)).sub(s.v[c2]);
            if d.lt(dist[c2]) {
                dist[c2] = d;
                heap.push(HeapItem::new(d, a.col));
            }
        }
    }
    for (v, &d) in s.v.iter_mut().zip(&dist) {
        *v = v.add(d);
    }
    for (r, &c) in s.row_match.iter().enumerate() {
        if c != UNMATCHED {
            let cost = g
                .arcs(r)
                .iter()
                .find(|a| a.col == c)
                .map_or(0.0, |a| a.cost);
            s.u[r] = Lex::real(cost).sub(s.v[c as usize]);
        }
    }
}

fn solve_graph(g: &Graph) -> SolveState {
    let m = g.row_ids.len();
    let n = g.col_ids.len();
    let mut s = Search {
        g,
        u: vec![Lex::ZERO; m],
        v: vec![Lex::ZERO; n],
        row_match: vec![UNMATCHED; m],
        col_match: vec![FREE; n],
        dist: vec![Lex::ZERO; n],
        pred: vec![0; n],
        reached: vec![0; n],
        scanned_at: vec![0; n],
        scanned: Vec::new(),
        heap: BinaryHeap::new(),
        epoch: 0,
    };
    for r in 0..m {
        s.augment(r as u32);
    }
    SolveState {
        row_match: s.row_match,
        u: s.u,
        v: s.v,
    }
}

/// Buffers of the shortest-path search, reused across requests; `reached`
/// and `scanned_at` hold the epoch of the search that last touched a column,
/// so nothing is cleared between searches.
struct Search<'g> {
    g: &'g Graph,
    u: Vec<Lex>,
    v: Vec<Lex>,
    row_match: Vec<u32>,
    col_match: Vec<u32>,
    dist: Vec<Lex>,
    pred: Vec<u32>,
    reached: Vec<u32>,
    scanned_at: Vec<u32>,
    scanned: Vec<u32>,
    heap: BinaryHeap<HeapItem>,
    epoch: u32,
}

enum Terminal {
    Column(u32),
    Unmatched(u32),
}

impl Search<'_> {
    /// Adds request `i` to the assignment along a shortest augmenting path
    /// (ending at a free volunteer or at some request's "unmatched" slot) and
    /// updates the potentials so that reduced costs stay non-negative.
    fn augment(&mut self, i: u32) {
        let g = self.g;
        self.epoch += 1;
        let epoch = self.epoch;
        self.scanned.clear();
        self.heap.clear();

        // Request i's own unmatched slot; its label with u_i taken as 0.
        let mut best_unmatched = Lex::UNMATCHED;
        let mut best_unmatched_row = i;

        // Fast path: if the cheapest reduced arc of i leads to a free
        // volunteer, that is the shortest augmenting path and no potential
        // changes except u_i.
        let arcs = g.arcs(i as usize);
        let mut best: Option<(Lex, u32)> = None;
        for a in arcs {
            let d = Lex::real(a.cost).sub(self.v[a.col as usize]);
            if best.is_none_or(|(bd, _)| d.lt(bd)) {
                best = Some((d, a.col));
            }
        }
        if let Some((d, c)) = best
            && self.col_match[c as usize] == FREE
            && d.lt(best_unmatched)
        {
            self.row_match[i as usize] = c;
            self.col_match[c as usize] = i;
            self.u[i as usize] = d;
            return;
        }

        for a in arcs {
            let c = a.col as usize;
            let d = Lex::real(a.cost).sub(self.v[c]);
            if self.reached[c] != epoch || d.lt(self.dist[c]) {
                self.reached[c] = epoch;
                self.dist[c] = d;
                self.pred[c] = i;
                self.heap.push(HeapItem::new(d, c as u32));
            }
        }

        let (terminal, dstar) = loop {
            let Some(item) = self.heap.pop() else {
                break (Terminal::Unmatched(best_unmatched_row), best_unmatched);
            };
            let (key, col) = (item.key(), item.col);
            let c = col as usize;
            if self.scanned_at[c] == epoch || self.dist[c].lt(key) {
                continue; // stale entry
            }
            if best_unmatched.lt(key) {
                break (Terminal::Unmatched(best_unmatched_row), best_unmatched);
            }
            self.scanned_at[c] = epoch;
            self.scanned.push(col);
            let r2 = self.col_match[c];
            if r2 == FREE {
                break (Terminal::Column(col), key);
            }
            // The matched arc (r2, c) has reduced cost 0, so r2's label is
            // key; `base` is that label minus u_r2.
            let base = key.sub(self.u[r2 as usize]);
            let via_unmatched = base.add(Lex::UNMATCHED);
            if via_unmatched.lt(best_unmatched) {
                best_unmatched = via_unmatched;
                best_unmatched_row = r2;
            }
            for a in g.arcs(r2 as usize) {
                let c2 = a.col as usize;
                if self.scanned_at[c2] == epoch {
                    continue;
                }
                let d = base.add(Lex::real(a.cost)).sub(self.v[c2]);
                if self.reached[c2] != epoch || d.lt(self.dist[c2]) {
                    self.reached[c2] = epoch;
                    self.dist[c2] = d;
                    self.pred[c2] = r2;
                    self.heap.push(HeapItem::new(d, a.col));
                }
            }
        };

        // Dual update (AMO §9.7): columns scanned before the terminal drop by
        // their slack to it; their matched rows rise by the same amount, so
        // matched arcs stay tight.
        for &c in &self.scanned {
            let c = c as usize;
            let delta = dstar.sub(self.dist[c]);
            self.v[c] = self.v[c].sub(delta);
            let r2 = self.col_match[c];
            if r2 != FREE {
                self.u[r2 as usize] = self.u[r2 as usize].add(delta);
            }
        }
        self.u[i as usize] = dstar;

        let mut col = match terminal {
            Terminal::Column(c) => c,
            Terminal::Unmatched(r) => {
                let c = self.row_match[r as usize];
                self.row_match[r as usize] = UNMATCHED;
                // Exact value, free of the rounding of the update above.
                self.u[r as usize] = Lex::UNMATCHED;
                if r == i {
                    return;
                }
                self.col_match[c as usize] = FREE;
                c
            }
        };
        loop {
            let r = self.pred[col as usize];
            let next = self.row_match[r as usize];
            self.row_match[r as usize] = col;
            self.col_match[col as usize] = r;
            if r == i {
                break;
            }
            col = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(request: i64, volunteer: i64, cost: f64) -> Edge {
        Edge {
            request,
            volunteer,
            cost,
        }
    }

    #[test]
    fn empty_instance() {
        let s = solve_instance(&[]);
        assert_eq!(s.matched, 0);
        assert_eq!(s.total_cost, 0.0);
    }

    #[test]
    fn prefers_more_matches_over_lower_cost() {
        // Matching r1-v1 alone costs 1; two matches cost 10 + 10.
        let s = solve_instance(&[e(1, 1, 1.0), e(1, 2, 10.0), e(2, 1, 10.0)]);
        assert_eq!(s.matched, 2);
        assert_eq!(s.total_cost, 20.0);
    }

    #[test]
    fn unmatchable_request_leaves_the_cheaper_one_matched() {
        // Only one volunteer: the cheaper request gets it, whatever the order.
        for edges in [
            vec![e(1, 5, 10.0), e(2, 5, 1.0)],
            vec![e(2, 5, 1.0), e(1, 5, 10.0)],
        ] {
            let s = solve_instance(&edges);
            assert_eq!(s.matched, 1);
            assert_eq!(s.assignments[0].request, 2);
            assert_eq!(s.total_cost, 1.0);
        }
    }

    #[test]
    fn duplicates_keep_cheapest_and_ids_are_sparse() {
        let big = i64::MAX - 3;
        let s = solve_instance(&[e(big, 40, 5.0), e(big, 40, 2.0), e(7, 9_000_000_000, 0.0)]);
        assert_eq!(s.matched, 2);
        assert_eq!(s.total_cost, 2.0);
        assert_eq!(
            s.assignments[0],
            Match {
                request: 7,
                volunteer: 9_000_000_000,
                cost: 0.0
            }
        );
        assert_eq!(s.assignments[1].cost, 2.0);
    }

    #[test]
    fn negative_costs_and_non_finite_edges() {
        let s = solve_instance(&[e(1, 1, -3.0), e(1, 2, f64::NAN), e(2, 2, f64::INFINITY)]);
        assert_eq!(s.matched, 1);
        assert_eq!(s.total_cost, -3.0);
    }

    #[test]
    fn tiny_costs_survive_next_to_huge_ones() {
        // A big-M of "sum of costs + 1" would round the 1e-9 away.
        let s = solve_instance(&[e(1, 1, 1e-9), e(1, 2, 1e15), e(2, 1, 1e15)]);
        assert_eq!(s.matched, 2);
        assert_eq!(s.total_cost, 2e15);
        let s = solve_instance(&[e(1, 1, 1e-9), e(2, 1, 1e15), e(3, 1, 2e-9)]);
        assert_eq!(s.matched, 1);
        assert_eq!(s.total_cost, 1e-9);
    }
}
