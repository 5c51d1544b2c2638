//! Phone numbers, normalised to E.164 with Google's libphonenumber metadata
//! (the `phonenumber` crate) rather than hand-written rules.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;
use unicode_normalization::UnicodeNormalization;

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
    /// A valid number with an extension (`025-8468 1234 转 123`, `… ext. 123`,
    /// `… #123`): a phone number is stored without one.
    #[error(
        "\"{input}\" has an extension ({extension}); phone numbers are stored without one: \
         enter {number} and give the extension in a note where there is one \
         (an order's notes: 分机 {extension})"
    )]
    Extension {
        /// What was typed.
        input: String,
        /// The number alone, in national format, e.g. `025 8468 1234`.
        number: String,
        /// The extension's digits.
        extension: String,
    },
}

impl PhoneError {
    /// The stable API code: `phone_extension` for [`PhoneError::Extension`],
    /// `invalid_phone` otherwise.
    pub fn code(&self) -> &'static str {
        match self {
            PhoneError::Extension { .. } => "phone_extension",
            _ => "invalid_phone",
        }
    }
}

/// Chinese ways to write an extension ("转 123", "分机 123"), rewritten as
/// the `ext.` libphonenumber recognises (it knows `ext`, `x`, `#`, `,`).
const EXTENSION_WORDS: [&str; 3] = ["分机号", "分机", "转"];

/// Letters allowed in a number: those of the extension markers `ext`,
/// `extension` and `x`. Any other letter makes the text no number (the
/// parser would read letters as keypad digits, "1-800-FLOWERS").
fn only_extension_letters(text: &str) -> bool {
    let lower = text.to_lowercase();
    let rest = lower
        .replace("extension", "")
        .replace("ext", "")
        .replace('x', "");
    !rest.chars().any(char::is_alphabetic)
}

impl PhoneNumber {
    /// Parses and normalises `input`, as people type it: full-width digits
    /// and signs from a Chinese input method (`１３８００１３８０００`,
    /// `＋８６`, `（０２５）`) and ideographic spaces count as their ASCII
    /// forms (Unicode compatibility normalisation, NFKC, UAX #15).
    ///
    /// # Errors
    /// [`PhoneError`] with a message that says how to fix the input; an
    /// extension ([`PhoneError::Extension`]) says how to write the number
    /// without it.
    pub fn parse(input: &str) -> Result<Self, PhoneError> {
        let normalised: String = input.nfkc().collect();
        let trimmed = normalised.trim();
        if trimmed.is_empty() {
            return Err(PhoneError::Empty);
        }
        let text = EXTENSION_WORDS
            .iter()
            .fold(trimmed.to_string(), |t, w| t.replace(w, " ext. "));
        if !only_extension_letters(&text) || text.len() > 40 {
            return Err(PhoneError::Unparseable(input.trim().to_string()));
        }
        let parsed = phonenumber::parse(Some(phonenumber::country::Id::CN), &text)
            .map_err(|_| PhoneError::Unparseable(input.trim().to_string()))?;
        if !phonenumber::is_valid(&parsed) {
            return Err(PhoneError::Invalid(input.trim().to_string()));
        }
        let e164 = parsed.format().mode(phonenumber::Mode::E164).to_string();
        if let Some(extension) = parsed.extension() {
            // E.164 has no extension: formatted from it, the national form
            // is the number alone.
            let number = phonenumber::parse(None, &e164).map_or_else(
                |_| e164.clone(),
                |n| n.format().mode(phonenumber::Mode::National).to_string(),
            );
            return Err(PhoneError::Extension {
                input: input.trim().to_string(),
                number,
                extension: extension.to_string(),
            });
        }
        Ok(Self(e164))
    }

    /// The E.164 text, e.g. `+8613800138000`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number as people read it: a mainland number in national groups
    /// (`138 0013 8000`, `025 8468 1234`), another country's in
    /// international form (`+852 2123 4567`), as libphonenumber groups it.
    pub fn display(&self) -> String {
        match phonenumber::parse(None, &self.0) {
            Ok(n) if n.code().value() == 86 => {
                n.format().mode(phonenumber::Mode::National).to_string()
            }
            Ok(n) => n
                .format()
                .mode(phonenumber::Mode::International)
                .to_string(),
            Err(_) => self.0.clone(),
        }
    }

    /// [`PhoneNumber::display`] of a stored E.164 text; text that is no
    /// valid number is returned as it is.
    pub fn display_text(stored: &str) -> String {
        PhoneNumber::parse(stored).map_or_else(|_| stored.to_string(), |p| p.display())
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
    fn displays_in_groups() {
        assert_eq!(
            PhoneNumber::parse("13800010001").unwrap().display(),
            "138 0001 0001"
        );
        assert_eq!(
            PhoneNumber::parse("025-84681234").unwrap().display(),
            "025 8468 1234"
        );
        assert_eq!(PhoneNumber::display_text("+85221234567"), "+852 2123 4567");
        assert_eq!(PhoneNumber::display_text(""), "");
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
    fn reads_full_width_input_as_typed_with_a_chinese_input_method() {
        for input in [
            "１３８００１３８０００",
            "＋８６　１３８　００１３　８０００",
            "１３８－００１３－８０００",
        ] {
            assert_eq!(
                PhoneNumber::parse(input).unwrap().as_str(),
                "+8613800138000",
                "{input}"
            );
        }
        assert_eq!(
            PhoneNumber::parse("（０２５）８４６８１２３４")
                .unwrap()
                .as_str(),
            "+862584681234"
        );
    }

    #[test]
    fn an_extension_is_refused_with_the_number_to_enter_instead() {
        for input in [
            "025-84681234 ext. 123",
            "025-84681234转123",
            "025-8468 1234 分机 123",
            "02584681234#123",
            "025 8468 1234 x123",
            "０２５－８４６８１２３４转１２３",
        ] {
            let err = PhoneNumber::parse(input).unwrap_err();
            assert_eq!(err.code(), "phone_extension", "{input}: {err}");
            match &err {
                PhoneError::Extension {
                    number, extension, ..
                } => {
                    assert_eq!(
                        (number.as_str(), extension.as_str()),
                        ("025 8468 1234", "123"),
                        "{input}"
                    );
                }
                other => panic!("{input}: {other:?}"),
            }
            assert!(err.to_string().contains("enter 025 8468 1234"), "{err}");
        }
        // Letters other than an extension marker still make no number.
        assert_eq!(
            PhoneNumber::parse("1-800-FLOWERS").unwrap_err().code(),
            "invalid_phone"
        );
    }

    #[test]
    fn masks_all_but_last_four() {
        let p = PhoneNumber::parse("13800138000").unwrap();
        assert_eq!(p.masked(), "+86*******8000");
    }
}
