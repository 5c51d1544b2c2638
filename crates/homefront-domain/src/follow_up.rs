//! Follow-up items: what coordinators must look at after a service.

use crate::text_enum;

text_enum! {
    /// Why a follow-up item was opened.
    FollowUpKind {
        /// The requester rated the service 1 or 2.
        LowRating => "low_rating",
        /// The requester complained.
        Complaint => "complaint",
        /// A check-in was left open past the item's duration plus the grace
        /// period, and its minutes were capped.
        OpenSession => "open_session",
    }
}

text_enum! {
    /// Whether a follow-up item still needs attention.
    FollowUpStatus {
        /// Not yet dealt with.
        Open => "open",
        /// Dealt with.
        Closed => "closed",
    }
}
