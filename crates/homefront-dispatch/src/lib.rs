//! Homefront's matching engine ("就近就便派单", SPEC.md § Dispatch): pure,
//! synchronous and without I/O except the benchmark instance reader.
//!
//! - [`spatial`]: k-nearest candidate search over on-duty volunteers
//!   (R-trees of unit vectors, one per qualification key), ranked by cost
//!   with an [`Explanation`] per candidate.
//! - [`cost`]: the cost of an (order, volunteer) pair in km-equivalents and
//!   its configurable [`CostWeights`].
//! - [`assignment`]: the exact batch solver, maximum matches then minimum
//!   total cost ([`solve_instance`]).
//! - [`policy`]: `nearest_first`, `batch` and `auto` over a round of
//!   pending orders.
//! - [`instance`]: the CSV format of `shared/bench` instances.
//!
//! Units: distances in km, service history in minutes, times as epoch ms
//! (callers evaluate time-dependent eligibility such as credential validity
//! and pass it in through the exclusion predicates).
//!
//! # The `homefront dispatch solve` command
//! The CLI reads, then solves, timing only the solve:
//!
//! ```no_run
//! use std::{fs::File, io::BufReader, time::Instant};
//! use homefront_dispatch::{read_instance, solve_instance, write_assignments};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let edges = read_instance(BufReader::new(File::open("instance.csv")?))?;
//! let started = Instant::now();
//! let solution = solve_instance(&edges);
//! let solve_ms = started.elapsed().as_secs_f64() * 1000.0;
//! println!(
//!     r#"{{"matched": {}, "total_cost": {:.9}, "solve_ms": {:.3}}}"#,
//!     solution.matched, solution.total_cost, solve_ms
//! );
//! // With --assignments OUT.csv:
//! write_assignments(File::create("out.csv")?, &solution.assignments)?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod assignment;
pub mod cost;
pub mod instance;
pub mod policy;
pub mod spatial;

pub use assignment::{Edge, Match, Solution, solve_instance};
pub use cost::{CostTerms, CostWeights, CostWeightsError};
pub use instance::{InstanceError, read_instance, write_assignments};
pub use policy::{
    AutoPolicy, DispatchMode, PendingOrder, Plan, PlannedAssignment, auto_assign, batch,
    nearest_first,
};
pub use spatial::{
    Candidate, CandidateQuery, Explanation, IndexError, OrderLocation, Volunteer, VolunteerIndex,
};
