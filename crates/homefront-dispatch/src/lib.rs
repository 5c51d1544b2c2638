//! The matching engine (in progress).
