//! Decoding columns into domain types at the store boundary.
//!
//! Enums are stored as TEXT and flags as 0/1 integers (portable over SQLite
//! and PostgreSQL). Row types name the domain type and decode through these
//! wrappers, so the rest of the system never holds a state as a string:
//!
//! ```ignore
//! #[sqlx(try_from = "Text")]
//! pub state: OrderState,
//! #[sqlx(try_from = "OptText")]
//! pub from_state: Option<OrderState>,
//! #[sqlx(try_from = "Flag")]
//! pub priority_channel: bool,
//! ```
//!
//! A stored text that names no value (which the CHECK constraints rule out)
//! fails the read with a column-decode error naming the column, rather than
//! being replaced by a default.

use sqlx::any::{AnyTypeInfo, AnyValueRef};
use sqlx::error::BoxDynError;
use sqlx::{Any, Decode, Type};
use thiserror::Error;

/// A TEXT column on its way to a domain type.
#[derive(Debug)]
pub struct Text(String);

/// A nullable TEXT column on its way to an optional domain type.
#[derive(Debug)]
pub struct OptText(Option<String>);

/// A 0/1 column on its way to a `bool`.
#[derive(Clone, Copy, Debug)]
pub struct Flag(bool);

/// A stored text that names no value of the column's type.
#[derive(Debug, Error)]
#[error("stored value {given:?} is not a valid {what}: {reason}")]
pub struct BadText {
    given: String,
    what: &'static str,
    reason: String,
}

impl Type<Any> for Text {
    fn type_info() -> AnyTypeInfo {
        <String as Type<Any>>::type_info()
    }
    fn compatible(ty: &AnyTypeInfo) -> bool {
        <String as Type<Any>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Any> for Text {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        <String as Decode<'r, Any>>::decode(value).map(Text)
    }
}

impl Type<Any> for OptText {
    fn type_info() -> AnyTypeInfo {
        <String as Type<Any>>::type_info()
    }
    fn compatible(ty: &AnyTypeInfo) -> bool {
        <String as Type<Any>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Any> for OptText {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        <Option<String> as Decode<'r, Any>>::decode(value).map(OptText)
    }
}

impl Type<Any> for Flag {
    fn type_info() -> AnyTypeInfo {
        <i64 as Type<Any>>::type_info()
    }
    fn compatible(ty: &AnyTypeInfo) -> bool {
        <i64 as Type<Any>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Any> for Flag {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        <i64 as Decode<'r, Any>>::decode(value).map(|n| Flag(n != 0))
    }
}

impl From<Flag> for bool {
    fn from(f: Flag) -> bool {
        f.0
    }
}

/// Parses a column's text into `T`, naming `T` when it does not parse.
pub(crate) fn parse<T>(text: String) -> Result<T, BadText>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e: T::Err| BadText {
        reason: e.to_string(),
        given: text,
        what: std::any::type_name::<T>(),
    })
}

/// `TryFrom<Text>` and `TryFrom<OptText>` for types parsed from their text.
macro_rules! text_columns {
    ($($t:ty),+ $(,)?) => {$(
        impl TryFrom<Text> for $t {
            type Error = BadText;
            fn try_from(t: Text) -> Result<Self, BadText> {
                parse(t.0)
            }
        }

        impl TryFrom<OptText> for Option<$t> {
            type Error = BadText;
            fn try_from(t: OptText) -> Result<Self, BadText> {
                t.0.map(parse).transpose()
            }
        }
    )+};
}

text_columns!(
    homefront_domain::order_state::OrderState,
    homefront_domain::order_state::EventAction,
    homefront_domain::catalogue::Lane,
    homefront_domain::catalogue::Urgency,
    homefront_domain::catalogue::ServiceMode,
    homefront_domain::catalogue::Relation,
    homefront_domain::credentials::CredentialKind,
    homefront_domain::follow_up::FollowUpKind,
    homefront_domain::follow_up::FollowUpStatus,
    homefront_domain::hours::HoursKind,
    homefront_domain::locale::Locale,
    homefront_domain::notify::EventKind,
    homefront_domain::notify::Channel,
    homefront_domain::notify::BotKind,
    homefront_domain::notify::DeliveryState,
    homefront_domain::org::OrgKind,
    homefront_domain::pairing::PairingRole,
    homefront_domain::pairing::ProposalStatus,
    homefront_domain::privacy::RecordKind,
    homefront_domain::vetting::VettingState,
    homefront_domain::vetting::VettingEventAction,
    homefront_domain::volunteer::Gender,
    homefront_domain::Role,
    chrono_tz::Tz,
);

/// Serializes a flag as the 0/1 the API has always sent for it.
///
/// # Errors
/// The serializer's.
pub fn as_flag<S: serde::Serializer>(b: &bool, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i64(i64::from(*b))
}

impl From<BadText> for crate::StoreError {
    fn from(e: BadText) -> Self {
        crate::StoreError::Database(sqlx::Error::Decode(Box::new(e)))
    }
}
