//! Homefront's domain: the pure types and rules every other crate relies on.
//!
//! Nothing here performs I/O or is async. Values are parsed once at the edge
//! (`Adcode::parse`, `PhoneNumber::parse`, ...) so the rest of the system
//! cannot hold an invalid one.
#![forbid(unsafe_code)]

pub mod adcode;
pub mod availability;
pub mod catalogue;
pub mod clock;
pub mod credentials;
pub mod enums;
pub mod escalation;
pub mod follow_up;
pub mod geo;
pub mod hours;
pub mod locale;
pub mod notify;
pub mod order_state;
pub mod org;
pub mod pairing;
pub mod phone;
pub mod privacy;
pub mod role;
pub mod text;
pub mod vetting;
pub mod volunteer;

pub use adcode::Adcode;
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use geo::GeoPoint;
pub use phone::PhoneNumber;
pub use role::Role;
