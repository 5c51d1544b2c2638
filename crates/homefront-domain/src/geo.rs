//! Geographic points and great-circle distance.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Mean Earth radius in km (IUGG mean radius R1 = 6371.0088 km), used by
/// [`GeoPoint::haversine_km`].
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// A WGS-84-style point in decimal degrees.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    /// Longitude in degrees, −180..=180 (east positive).
    pub longitude: f64,
    /// Latitude in degrees, −90..=90 (north positive).
    pub latitude: f64,
}

/// Why a coordinate pair was rejected.
#[derive(Debug, Error, PartialEq)]
pub enum GeoError {
    /// Longitude outside −180..=180 or not a number.
    #[error("longitude must be a number between -180 and 180, got {0}")]
    Longitude(f64),
    /// Latitude outside −90..=90 or not a number.
    #[error("latitude must be a number between -90 and 90, got {0}")]
    Latitude(f64),
}

impl GeoPoint {
    /// A checked point.
    ///
    /// # Errors
    /// [`GeoError`] naming the coordinate that is out of range or NaN.
    pub fn new(longitude: f64, latitude: f64) -> Result<Self, GeoError> {
        if !(-180.0..=180.0).contains(&longitude) {
            return Err(GeoError::Longitude(longitude));
        }
        if !(-90.0..=90.0).contains(&latitude) {
            return Err(GeoError::Latitude(latitude));
        }
        Ok(Self {
            longitude,
            latitude,
        })
    }

    /// Great-circle distance to `other` in km by the haversine formula
    /// (R. W. Sinnott, "Virtues of the Haversine", Sky & Telescope 68(2), 1984)
    /// on a sphere of radius [`EARTH_RADIUS_KM`].
    pub fn haversine_km(&self, other: &GeoPoint) -> f64 {
        let (lat1, lat2) = (self.latitude.to_radians(), other.latitude.to_radians());
        let dlat = lat2 - lat1;
        let dlon = (other.longitude - self.longitude).to_radians();
        let a = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanjing_to_yangzhou_is_about_sixty_km() {
        let nanjing = GeoPoint::new(118.7969, 32.0603).unwrap();
        let yangzhou = GeoPoint::new(119.4129, 32.3942).unwrap();
        let d = nanjing.haversine_km(&yangzhou);
        assert!((65.0..72.0).contains(&d), "{d}");
        assert_eq!(nanjing.haversine_km(&nanjing), 0.0);
    }

    #[test]
    fn rejects_out_of_range() {
        assert_eq!(GeoPoint::new(181.0, 0.0), Err(GeoError::Longitude(181.0)));
        assert!(GeoPoint::new(0.0, f64::NAN).is_err());
    }
}
