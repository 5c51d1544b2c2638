//! Phone numbers, normalised to E.164 with Google's libphonenumber metadata
//! (the `phonenumber` crate) rather than hand-written rules.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// A valid phone number in E.164 form, e.g. `+8613800138000`.
///
/// Numbers without a country code are read as mainland China (region `CN`),
/// so `13800138000`, `+86 138 0013 8000`, `008613800138000` and the landline
/// `025-8468 1234` all parse.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber(String);

/// Why a phone number was rejected.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PhoneError {
    /// Nothing was given.
    #[error("phone number is empty; enter a mobile number such as 13800138000")]
    Empty,
    /// The text is not a phone number at all.
    #[error(
        "\"{0}\" is not a phone number; enter digits only, such as 13800138000 or +86 25 8468 1234"
    )]
    Unparseable(String),
    /// The text parses but is not an assigned number in its numbering plan.
    #[error("{0} is not a valid phone number; check the digits and the area code")]
    Invalid(String),
}

impl PhoneNumber {
    /// Parses and normalises `input`.
    ///
    /// # Errors
    /// [`PhoneError`] with a message that says how to fix the input.
    pub fn parse(input: &str) -> Result<Self, PhoneError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(PhoneError::Empty);
        }
        if trimmed.chars().any(|c| c.is_alphabetic()) || trimmed.len() > 32 {
            return Err(PhoneError::Unparseable(trimmed.to_string()));
        }
        let parsed = phonenumber::parse(Some(phonenumber::country::Id::CN), trimmed)
            .map_err(|_| PhoneError::Unparseable(trimmed.to_string()))?;
        if !phonenumber::is_valid(&parsed) {
            return Err(PhoneError::Invalid(trimmed.to_string()));
        }
        Ok(Self(
            parsed.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }

    /// The E.164 text, e.g. `+8613800138000`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number with all but the last four digits hidden, e.g. `+86*******8000`,
    /// for places that must show which number without showing the number.
    pub fn masked(&self) -> String {
        let keep = 4.min(self.0.len());
        let (head, tail) = self.0.split_at(self.0.len() - keep);
        let prefix: String = head.chars().take(3).collect();
        format!("{prefix}{}{tail}", "*".repeat(head.len().saturating_sub(3)))
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for PhoneNumber {
    type Err = PhoneError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for PhoneNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PhoneNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_common_chinese_forms() {
        for input in [
            "13800138000",
            "+86 138 0013 8000",
            "008613800138000",
            "+86-138-0013-8000",
            " 138 0013 8000 ",
        ] {
            assert_eq!(
                PhoneNumber::parse(input).unwrap().as_str(),
                "+8613800138000",
                "{input}"
            );
        }
    }

    #[test]
    fn accepts_landlines() {
        assert_eq!(
            PhoneNumber::parse("025-84681234").unwrap().as_str(),
            "+862584681234"
        );
        assert_eq!(
            PhoneNumber::parse("(0516) 8380 1234").unwrap().as_str(),
            "+8651683801234"
        );
    }

    #[test]
    fn rejects_garbage_with_a_clear_message() {
        assert_eq!(PhoneNumber::parse("  "), Err(PhoneError::Empty));
        assert!(matches!(
            PhoneNumber::parse("call me"),
            Err(PhoneError::Unparseable(_))
        ));
        assert!(PhoneNumber::parse("12345").is_err());
        assert!(PhoneNumber::parse("1380013800").is_err());
        let msg = PhoneNumber::parse("abc").unwrap_err().to_string();
        assert!(msg.contains("13800138000"), "{msg}");
    }

    #[test]
    fn masks_all_but_last_four() {
        let p = PhoneNumber::parse("13800138000").unwrap();
        assert_eq!(p.masked(), "+86*******8000");
    }
}
