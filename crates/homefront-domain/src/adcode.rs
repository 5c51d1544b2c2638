//! GB/T 2260 administrative division codes in their 12-digit form.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// A division code `PPCCDDTTTVVV`: province `PP`, city `CC`, county `DD`
/// (GB/T 2260; the trailing six digits are township/village levels and are
/// zero for the divisions Homefront mirrors).
///
/// Six-digit codes such as `320102` are accepted and padded with zeros.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Adcode(u64);

/// The level of a division in the province → city → county tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DivisionLevel {
    /// `PP0000000000`, e.g. 江苏省.
    Province,
    /// `PPCC00000000`, e.g. 南京市.
    City,
    /// Anything below a city, e.g. `320102000000` 玄武区.
    County,
}

/// Why an adcode was rejected.
#[derive(Debug, Error, PartialEq, Eq)]
#[error(
    "\"{0}\" is not an administrative division code; use the 6- or 12-digit GB/T 2260 code, such as 320102"
)]
pub struct AdcodeError(pub String);

impl Adcode {
    /// Parses a 6- or 12-digit code.
    ///
    /// # Errors
    /// [`AdcodeError`] when the text is not 6 or 12 ASCII digits, or the
    /// province part is `00`.
    pub fn parse(input: &str) -> Result<Self, AdcodeError> {
        let s = input.trim();
        let err = || AdcodeError(s.to_string());
        if !(s.len() == 6 || s.len() == 12) || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let mut v: u64 = s.parse().map_err(|_| err())?;
        if s.len() == 6 {
            v *= 1_000_000;
        }
        if v / 10_000_000_000 == 0 {
            return Err(err());
        }
        Ok(Self(v))
    }

    /// The two-digit province part, e.g. 32 for Jiangsu.
    pub fn province(self) -> u8 {
        (self.0 / 10_000_000_000) as u8
    }

    /// The level this code names.
    pub fn level(self) -> DivisionLevel {
        if self.0.is_multiple_of(10_000_000_000) {
            DivisionLevel::Province
        } else if self.0.is_multiple_of(100_000_000) {
            DivisionLevel::City
        } else {
            DivisionLevel::County
        }
    }

    /// The code of the enclosing city (for a county) or province (for a
    /// city); `None` for a province.
    pub fn parent(self) -> Option<Adcode> {
        match self.level() {
            DivisionLevel::Province => None,
            DivisionLevel::City => Some(Adcode(self.0 / 10_000_000_000 * 10_000_000_000)),
            DivisionLevel::County => Some(Adcode(self.0 / 100_000_000 * 100_000_000)),
        }
    }

    /// The enclosing province's code.
    pub fn province_code(self) -> Adcode {
        Adcode(self.0 / 10_000_000_000 * 10_000_000_000)
    }

    /// The 12-digit text form.
    pub fn as_string(self) -> String {
        format!("{:012}", self.0)
    }
}

impl fmt::Display for Adcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:012}", self.0)
    }
}

impl FromStr for Adcode {
    type Err = AdcodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Adcode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_string())
    }
}

impl<'de> Deserialize<'de> for Adcode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_parents() {
        let xuanwu = Adcode::parse("320102").unwrap();
        assert_eq!(xuanwu.to_string(), "320102000000");
        assert_eq!(xuanwu.level(), DivisionLevel::County);
        let nanjing = xuanwu.parent().unwrap();
        assert_eq!(nanjing.to_string(), "320100000000");
        assert_eq!(nanjing.level(), DivisionLevel::City);
        let jiangsu = nanjing.parent().unwrap();
        assert_eq!(jiangsu.to_string(), "320000000000");
        assert_eq!(jiangsu.level(), DivisionLevel::Province);
        assert_eq!(jiangsu.parent(), None);
        assert_eq!(xuanwu.province(), 32);
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["", "3201", "32010200000x", "000000000000", "3201020000001"] {
            assert!(Adcode::parse(bad).is_err(), "{bad}");
        }
    }
}
