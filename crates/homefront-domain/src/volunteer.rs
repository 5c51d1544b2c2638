//! A volunteer's profile values, parsed once at the edge (API body or roster
//! row) so both paths apply the same limits and say the same fixes.
//!
//! Units: service radius in km, everything else counts.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Service radius when none is given, in km (the programme's "nearest
/// convenient volunteer" within a district).
pub const DEFAULT_SERVICE_RADIUS_KM: f64 = 10.0;
/// Largest service radius accepted, in km (about a city and its suburbs).
pub const MAX_SERVICE_RADIUS_KM: f64 = 200.0;
/// Concurrent assignments when none is given.
pub const DEFAULT_MAX_CONCURRENT: u32 = 1;
/// Largest concurrent-assignment cap accepted.
pub const MAX_CONCURRENT_LIMIT: u32 = 10;
/// Largest vehicle seat count accepted (a minibus).
pub const MAX_VEHICLE_SEATS: u32 = 60;
/// Most languages one profile lists.
pub const MAX_LANGUAGES: usize = 20;
/// Longest display name or contact name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// A rejected profile value: the field, a stable machine code and a message
/// that says how to fix it. HTTP 422 in the API; a rejected row in a roster.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{field}: {message}")]
pub struct ProfileError {
    /// The field at fault (API name, e.g. `service_radius_km`).
    pub field: &'static str,
    /// Stable machine code, e.g. `invalid_radius`.
    pub code: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl ProfileError {
    /// An error on `field`.
    pub fn new(field: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            code,
            message: message.into(),
        }
    }
}

/// Optional self-declared gender (some services, e.g. care for an elderly
/// mother, may prefer one). Stored as snake_case TEXT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    /// 女.
    Female,
    /// 男.
    Male,
    /// Declared but not specified (未说明).
    Unspecified,
}

impl Gender {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Gender::Female => "female",
            Gender::Male => "male",
            Gender::Unspecified => "unspecified",
        }
    }

    /// The Chinese label used in roster files: 女, 男, 未说明.
    pub fn label_zh(self) -> &'static str {
        match self {
            Gender::Female => "女",
            Gender::Male => "男",
            Gender::Unspecified => "未说明",
        }
    }

    /// Parses `female`/`f`/`女`, `male`/`m`/`男`, `unspecified`/`未说明`/`保密`
    /// (English case-insensitive, surrounding space ignored).
    ///
    /// # Errors
    /// [`ProfileError`] on field `gender`, code `invalid_gender`.
    pub fn parse(text: &str) -> Result<Self, ProfileError> {
        match text.trim().to_lowercase().as_str() {
            "female" | "f" | "女" => Ok(Gender::Female),
            "male" | "m" | "男" => Ok(Gender::Male),
            "unspecified" | "未说明" | "保密" | "其他" => Ok(Gender::Unspecified),
            other => Err(ProfileError::new(
                "gender",
                "invalid_gender",
                format!(
                    "\"{}\" is not a gender; use female (女), male (男) or unspecified (未说明), or leave it empty",
                    crate::text::quote(other)
                ),
            )),
        }
    }
}

impl fmt::Display for Gender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Gender {
    type Err = ProfileError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Checks a service radius in km: finite, above 0, at most
/// [`MAX_SERVICE_RADIUS_KM`].
///
/// # Errors
/// [`ProfileError`] on field `service_radius_km`, code `invalid_radius`.
pub fn service_radius_km(km: f64) -> Result<f64, ProfileError> {
    if km.is_finite() && km > 0.0 && km <= MAX_SERVICE_RADIUS_KM {
        Ok(km)
    } else {
        Err(ProfileError::new(
            "service_radius_km",
            "invalid_radius",
            format!(
                "service radius must be a number of km above 0 and at most {MAX_SERVICE_RADIUS_KM}, got {km}; e.g. 10"
            ),
        ))
    }
}

/// Checks a concurrent-assignment cap: 1 to [`MAX_CONCURRENT_LIMIT`].
///
/// # Errors
/// [`ProfileError`] on field `max_concurrent`, code `invalid_max_concurrent`.
pub fn max_concurrent(n: i64) -> Result<u32, ProfileError> {
    u32::try_from(n)
        .ok()
        .filter(|n| (1..=MAX_CONCURRENT_LIMIT).contains(n))
        .ok_or_else(|| {
            ProfileError::new(
                "max_concurrent",
                "invalid_max_concurrent",
                format!("max_concurrent must be a whole number from 1 to {MAX_CONCURRENT_LIMIT}, got {n}"),
            )
        })
}

/// Checks a vehicle's passenger seat count: 1 to [`MAX_VEHICLE_SEATS`], and
/// only for someone who drives (`drives`: a driving licence is declared or
/// on file), since seats matter only for rides.
///
/// # Errors
/// [`ProfileError`] on field `vehicle_seats`, code `invalid_vehicle_seats`
/// or `vehicle_needs_driving_licence`.
pub fn vehicle_seats(seats: i64, drives: bool) -> Result<u32, ProfileError> {
    let n = u32::try_from(seats)
        .ok()
        .filter(|n| (1..=MAX_VEHICLE_SEATS).contains(n))
        .ok_or_else(|| {
            ProfileError::new(
                "vehicle_seats",
                "invalid_vehicle_seats",
                format!("vehicle_seats must be a whole number from 1 to {MAX_VEHICLE_SEATS}, got {seats}"),
            )
        })?;
    if !drives {
        return Err(ProfileError::new(
            "vehicle_seats",
            "vehicle_needs_driving_licence",
            "vehicle_seats is only for drivers; add driving_licence to the qualifications or leave the seats empty",
        ));
    }
    Ok(n)
}

/// Trims a person's name and checks it has 1 to [`MAX_NAME_CHARS`]
/// characters (any script, stored as given).
///
/// # Errors
/// [`ProfileError`] on `field`, code `invalid_name`.
pub fn person_name(field: &'static str, name: &str) -> Result<String, ProfileError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ProfileError::new(
            field,
            "invalid_name",
            format!("{field} must have 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(name.to_string())
}

/// Normalises a language list: trimmed, empty entries dropped, duplicates
/// removed keeping the first, each 1–50 characters, at most
/// [`MAX_LANGUAGES`].
///
/// # Errors
/// [`ProfileError`] on field `languages`, code `invalid_languages`.
pub fn languages<I, S>(items: I) -> Result<Vec<String>, ProfileError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let l = item.as_ref().trim();
        if l.is_empty() || out.iter().any(|o| o == l) {
            continue;
        }
        if l.chars().count() > 50 {
            return Err(ProfileError::new(
                "languages",
                "invalid_languages",
                format!(
                    "language \"{}\" is longer than 50 characters; give one name per entry",
                    crate::text::quote(l)
                ),
            ));
        }
        out.push(l.to_string());
    }
    if out.len() > MAX_LANGUAGES {
        return Err(ProfileError::new(
            "languages",
            "invalid_languages",
            format!("list at most {MAX_LANGUAGES} languages"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gender_accepts_chinese_and_english() {
        assert_eq!(Gender::parse("女"), Ok(Gender::Female));
        assert_eq!(Gender::parse(" Male "), Ok(Gender::Male));
        assert_eq!(Gender::parse("未说明"), Ok(Gender::Unspecified));
        let e = Gender::parse("x").unwrap_err();
        assert_eq!((e.field, e.code), ("gender", "invalid_gender"));
    }

    #[test]
    fn radius_limits() {
        assert_eq!(service_radius_km(10.0), Ok(10.0));
        assert_eq!(service_radius_km(200.0), Ok(200.0));
        for bad in [0.0, -1.0, 200.5, f64::NAN, f64::INFINITY] {
            assert_eq!(service_radius_km(bad).unwrap_err().code, "invalid_radius");
        }
    }

    #[test]
    fn seats_need_a_driver() {
        assert_eq!(vehicle_seats(4, true), Ok(4));
        assert_eq!(
            vehicle_seats(4, false).unwrap_err().code,
            "vehicle_needs_driving_licence"
        );
        assert_eq!(
            vehicle_seats(0, true).unwrap_err().code,
            "invalid_vehicle_seats"
        );
    }

    #[test]
    fn languages_are_trimmed_and_deduplicated() {
        assert_eq!(
            languages([" 普通话", "English", "", "普通话"]).unwrap(),
            vec!["普通话".to_string(), "English".to_string()]
        );
        assert!(languages(["x".repeat(51)]).is_err());
    }

    #[test]
    fn concurrent_cap() {
        assert_eq!(max_concurrent(1), Ok(1));
        assert!(max_concurrent(0).is_err());
        assert!(max_concurrent(11).is_err());
    }
}
