//! Enums stored as TEXT: one snake_case text per value, the same in the
//! database, in JSON and in `Display`.

use thiserror::Error;

/// Text that names no value of a text enum; carries the allowed values.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("\"{given}\" is not valid here; use one of {allowed}")]
pub struct UnknownValue {
    /// What was given.
    pub given: String,
    /// The allowed values, space-separated.
    pub allowed: &'static str,
}

/// Declares an enum stored as TEXT: `as_str`, `ALL`, `Display`, `FromStr`
/// (error [`UnknownValue`]) and serde through the same text.
#[macro_export]
macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            /// Every value, in a stable order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text stored in the database and sent in JSON.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::enums::UnknownValue;
            fn from_str(s: &str) -> Result<Self, $crate::enums::UnknownValue> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::enums::UnknownValue {
                        given: s.to_string(),
                        allowed: concat!($($text, " "),+),
                    }),
                }
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                text.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use crate::catalogue::{Lane, Relation, ServiceMode, Urgency};
    use crate::follow_up::{FollowUpKind, FollowUpStatus};
    use crate::locale::Locale;
    use crate::notify::{BotKind, Channel, DeliveryState, EventKind};
    use crate::order_state::EventAction;
    use crate::pairing::{PairingRole, ProposalStatus};
    use crate::privacy::RecordKind;

    fn same_text_everywhere<T>(all: &[T])
    where
        T: Copy + std::fmt::Debug + PartialEq + std::fmt::Display + std::str::FromStr,
        T: serde::Serialize + serde::de::DeserializeOwned,
        <T as std::str::FromStr>::Err: std::fmt::Debug,
    {
        for v in all {
            let text = v.to_string();
            assert_eq!(text.parse::<T>().unwrap(), *v);
            assert_eq!(serde_json::to_value(v).unwrap(), serde_json::json!(text));
            assert_eq!(
                serde_json::from_value::<T>(text.clone().into()).unwrap(),
                *v
            );
        }
        assert!(serde_json::from_value::<T>("nonsense".into()).is_err());
    }

    #[test]
    fn database_json_and_display_share_one_text() {
        same_text_everywhere(ServiceMode::ALL);
        same_text_everywhere(Lane::ALL);
        same_text_everywhere(Urgency::ALL);
        same_text_everywhere(Relation::ALL);
        same_text_everywhere(FollowUpKind::ALL);
        same_text_everywhere(FollowUpStatus::ALL);
        same_text_everywhere(Locale::ALL);
        same_text_everywhere(EventKind::ALL);
        same_text_everywhere(Channel::ALL);
        same_text_everywhere(BotKind::ALL);
        same_text_everywhere(DeliveryState::ALL);
        same_text_everywhere(EventAction::ALL);
        same_text_everywhere(PairingRole::ALL);
        same_text_everywhere(ProposalStatus::ALL);
        same_text_everywhere(RecordKind::ALL);
        assert_eq!(Relation::SelfMember.to_string(), "self");
        assert_eq!(Locale::ZhCn.to_string(), "zh-CN");
    }
}
