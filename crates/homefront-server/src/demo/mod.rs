//! The demo: the Jiangsu February 2020 programme as a
//! scenario ([`scenario`]), the stated arrival and behaviour models
//! ([`model`]), a simulator that replays the programme through the real
//! application ([`simulate`]) and a report computed from the database
//! ([`report`]).

pub mod model;
pub mod report;
pub mod scenario;
pub mod simulate;

pub use report::{Report, compare_svg};
pub use scenario::{DEMO_PASSWORD, Scenario};
pub use simulate::{Policy, SimError, SimOptions, simulate};
