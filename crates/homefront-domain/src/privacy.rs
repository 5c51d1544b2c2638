//! What the access log of sensitive reads names.

use crate::text_enum;

text_enum! {
    /// The kind of record whose sensitive fields were read.
    RecordKind {
        /// An order: street, phone, coordinates, notes.
        Order => "order",
        /// A household member: phone, street, age, school grade.
        HouseholdMember => "household_member",
        /// An account: its phone number (a volunteer's, shown to a
        /// coordinator who may dispatch them, or to the requester while
        /// the volunteer's assignment is live).
        Account => "account",
    }
}
