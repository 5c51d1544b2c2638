//! The one rule for every piece of text people send: which characters it
//! may hold.
//!
//! Text is stored and shown to others (names, streets, notes, reasons), so
//! it must be text a person typed, not bytes that steer a terminal, a
//! database or a reader's eye:
//!
//! - no control characters (Unicode general category Cc: U+0000–U+001F,
//!   U+007F–U+009F) except tab, line feed, and carriage return directly
//!   before a line feed (HTML forms send new lines as CR LF). PostgreSQL's
//!   text columns refuse U+0000 outright;
//! - no bidirectional embeddings, overrides and isolates (U+202A–U+202E,
//!   U+2066–U+2069), which can make a street or a name read differently from
//!   what is stored (the "Trojan Source" attack, CVE-2021-42574);
//! - not only invisible characters: a value made of zero-width characters
//!   (U+200B–U+200D, U+2060, U+FEFF), perhaps with white space, looks empty
//!   but is not.
//!
//! Nothing is removed silently: a value breaking the rule is refused, and
//! the message says which character and where.

use thiserror::Error;

/// Why a text value is refused; the message names the character (as
/// `U+XXXX`) and its position (characters from 1).
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum TextError {
    /// A control character other than tab and new line.
    #[error("contains the control character U+{code:04X} at character {at}; remove it")]
    Control {
        /// The code point.
        code: u32,
        /// Its position, counted in characters from 1.
        at: usize,
    },
    /// A bidirectional override, embedding or isolate.
    #[error(
        "contains the bidirectional control U+{code:04X} at character {at}, which changes how the text reads; remove it"
    )]
    Bidi {
        /// The code point.
        code: u32,
        /// Its position, counted in characters from 1.
        at: usize,
    },
    /// Only zero-width characters (and perhaps white space).
    #[error("has only invisible characters; type the text itself")]
    Invisible,
}

/// How much of a value an error message quotes, in characters.
pub const QUOTE_CHARS: usize = 40;

/// `text` for an error message: at most [`QUOTE_CHARS`] characters, with
/// `…` when cut, so an error never echoes a whole oversized value.
pub fn quote(text: &str) -> String {
    let mut rest = text.chars();
    let head: String = rest.by_ref().take(QUOTE_CHARS).collect();
    if rest.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

/// Whether `c` is a zero-width character that shows nothing.
pub fn is_zero_width(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

/// Whether `c` is a bidirectional embedding, override or isolate.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Checks `text` against the rule of this module.
///
/// # Errors
/// The first [`TextError`] found.
pub fn check(text: &str) -> Result<(), TextError> {
    let mut chars = text.chars().enumerate().peekable();
    let mut visible = false;
    let mut zero_width = false;
    while let Some((i, c)) = chars.next() {
        let at = i + 1;
        if c.is_control() {
            let allowed = match c {
                '\t' | '\n' => true,
                '\r' => chars.peek().is_some_and(|(_, next)| *next == '\n'),
                _ => false,
            };
            if !allowed {
                return Err(TextError::Control {
                    code: u32::from(c),
                    at,
                });
            }
        } else if is_bidi_control(c) {
            return Err(TextError::Bidi {
                code: u32::from(c),
                at,
            });
        } else if is_zero_width(c) {
            zero_width = true;
            continue;
        }
        if !c.is_whitespace() {
            visible = true;
        }
    }
    if zero_width && !visible {
        return Err(TextError::Invisible);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_a_short_prefix() {
        assert_eq!(quote("短"), "短");
        let long = "字".repeat(1000);
        assert_eq!(quote(&long).chars().count(), QUOTE_CHARS + 1);
        assert!(quote(&long).ends_with('…'));
    }

    #[test]
    fn accepts_what_people_type() {
        for ok in [
            "",
            "   ",
            "珠江路1号 3-201",
            "第一行\n第二行",
            "line one\r\nline two",
            "a\tb",
            // A zero-width joiner inside an emoji sequence or a name.
            "👨\u{200D}👩\u{200D}👧",
            "O'Brien-Smith",
            "عربى",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn refuses_control_bidi_and_invisible_text() {
        assert_eq!(check("a\0b"), Err(TextError::Control { code: 0, at: 2 }));
        assert_eq!(
            check("\u{1b}[31m"),
            Err(TextError::Control { code: 0x1b, at: 1 })
        );
        assert_eq!(check("x\r"), Err(TextError::Control { code: 0x0d, at: 2 }));
        assert_eq!(
            check("\u{85}"),
            Err(TextError::Control { code: 0x85, at: 1 })
        );
        assert_eq!(
            check("\u{7f}"),
            Err(TextError::Control { code: 0x7f, at: 1 })
        );
        for c in ['\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}'] {
            assert!(matches!(
                check(&format!("ab{c}c")),
                Err(TextError::Bidi { at: 3, .. })
            ));
        }
        assert_eq!(check("\u{200B}"), Err(TextError::Invisible));
        assert_eq!(
            check(" \u{200B}\u{FEFF} \u{2060}"),
            Err(TextError::Invisible)
        );
        assert!(
            check("\u{2066}x")
                .unwrap_err()
                .to_string()
                .contains("U+2066")
        );
    }
}
