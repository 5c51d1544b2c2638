//! The dispatch cost of offering an order to a volunteer.
//!
//! Every term is expressed in kilometre-equivalents so that the terms can be
//! added and so that an explanation reads as "this volunteer counted as if
//! they were X km away":
//!
//! ```text
//! cost = distance_km
//!      + load_weight     × current_load            (assignments in progress)
//!      + fairness_weight × recent_service_minutes  (last 28 days)
//!      − pairing_bonus   if the volunteer is paired with the household
//! ```
//!
//! The weights are a product choice, not a published constant; they live in
//! [`CostWeights`] so each organisation unit can tune them.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Days of service the fairness term counts: 28, about the length of an
/// emergency programme's first phase (the seed report's programme ran for
/// weeks). A shorter window forgets who carried the first weeks: with 7
/// days, the replay's hours spread markedly less evenly over 14 days for
/// the same travel (BENCHMARKS.md, "Fairness weight").
pub const FAIRNESS_WINDOW_DAYS: i64 = 28;

/// Weights of the load, fairness and pairing terms, configurable per
/// organisation unit (serde, missing fields take the defaults).
///
/// Defaults, chosen for a city district where most offers are within a few km:
/// - `load_weight = 2.0` km per assignment already in progress: a volunteer
///   busy with one order ranks like an idle one 2 km further away.
/// - `fairness_weight = 0.03` km per minute served in the last 28 days
///   ([`FAIRNESS_WINDOW_DAYS`]; 1.8 km per hour): five hours served count
///   as 9 km, so the next order of a neighbourhood goes to whoever has
///   served least unless they are much further. Chosen with the replay
///   (BENCHMARKS.md, "Fairness weight"): at 0.005 hours stayed unevenly
///   spread (Gini 0.35–0.40), at 0.03 they spread (0.28–0.33) for about
///   5 points more travel, well inside 10 % of the hindsight optimum.
/// - `pairing_bonus = 10.0` km: SPEC.md says orders from a paired household go
///   to its paired volunteers first; 10 km puts a paired volunteer ahead of
///   anyone in the same district.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CostWeights {
    /// km added per assignment the volunteer currently holds.
    pub load_weight: f64,
    /// km added per minute of service in the last 28 days
    /// (`FAIRNESS_WINDOW_DAYS`).
    pub fairness_weight: f64,
    /// km subtracted when the volunteer is paired with the order's household.
    pub pairing_bonus: f64,
}

impl Default for CostWeights {
    fn default() -> Self {
        Self {
            load_weight: 2.0,
            fairness_weight: 0.03,
            pairing_bonus: 10.0,
        }
    }
}

/// Why a [`CostWeights`] value was rejected.
#[derive(Debug, Error, PartialEq)]
#[error("cost weight {name} must be a finite number >= 0, got {value}")]
pub struct CostWeightsError {
    /// Field name.
    pub name: &'static str,
    /// Offending value.
    pub value: f64,
}

impl CostWeights {
    /// Checks that every weight is finite and non-negative.
    ///
    /// The batch policy relies on it: with non-negative load and fairness
    /// terms, a volunteer's cost is at least their distance, which is what
    /// lets it prove a sparse candidate graph already holds the optimum.
    ///
    /// # Errors
    /// [`CostWeightsError`] naming the first offending field.
    pub fn validate(&self) -> Result<(), CostWeightsError> {
        for (name, value) in [
            ("load_weight", self.load_weight),
            ("fairness_weight", self.fairness_weight),
            ("pairing_bonus", self.pairing_bonus),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(CostWeightsError { name, value });
            }
        }
        Ok(())
    }

    /// The cost terms of one (order, volunteer) pair.
    ///
    /// `distance_km` is the great-circle distance (0 for remote items),
    /// `current_load` the number of assignments in progress and
    /// `recent_service_minutes` the minutes served in the last
    /// [`FAIRNESS_WINDOW_DAYS`].
    pub fn terms(
        &self,
        distance_km: f64,
        current_load: u32,
        recent_service_minutes: u32,
        paired: bool,
    ) -> CostTerms {
        let load = self.load_weight * f64::from(current_load);
        let fairness = self.fairness_weight * f64::from(recent_service_minutes);
        let pairing_bonus = if paired { self.pairing_bonus } else { 0.0 };
        CostTerms {
            distance: distance_km,
            load,
            fairness,
            pairing_bonus,
            total: distance_km + load + fairness - pairing_bonus,
        }
    }
}

/// The terms of one cost, all in km-equivalents;
/// `total = distance + load + fairness − pairing_bonus`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CostTerms {
    /// Great-circle distance in km (0 for remote items).
    pub distance: f64,
    /// `load_weight × current_load`.
    pub load: f64,
    /// `fairness_weight × recent_service_minutes`.
    pub fairness: f64,
    /// Bonus subtracted for a paired volunteer (0 when not paired).
    pub pairing_bonus: f64,
    /// The cost the candidates are ranked by (may be negative with a bonus).
    pub total: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_add_up() {
        let w = CostWeights::default();
        let t = w.terms(3.0, 2, 120, true);
        assert_eq!(t.load, 4.0);
        assert!((t.fairness - 3.6).abs() < 1e-12);
        assert_eq!(t.pairing_bonus, 10.0);
        assert!((t.total - (3.0 + 4.0 + 3.6 - 10.0)).abs() < 1e-12);
        assert_eq!(w.terms(1.5, 0, 0, false).total, 1.5);
    }

    #[test]
    fn validate_rejects_negative_and_nan() {
        assert!(CostWeights::default().validate().is_ok());
        let bad = CostWeights {
            load_weight: -1.0,
            ..CostWeights::default()
        };
        assert_eq!(bad.validate().unwrap_err().name, "load_weight");
        let nan = CostWeights {
            fairness_weight: f64::NAN,
            ..CostWeights::default()
        };
        assert!(nan.validate().is_err());
    }

    #[test]
    fn missing_fields_take_defaults() {
        let w: CostWeights =
            serde::Deserialize::deserialize(serde::de::value::MapDeserializer::<
                _,
                serde::de::value::Error,
            >::new([("load_weight", 1.0)].into_iter()))
            .unwrap();
        assert_eq!(w.load_weight, 1.0);
        assert_eq!(w.pairing_bonus, CostWeights::default().pairing_bonus);
    }
}
