//! Standing pairings (结对) of a volunteer with a household, and the
//! re-pairing proposals made when a paired volunteer leaves.

use crate::text_enum;

text_enum! {
    /// A volunteer's place in a household's pairing.
    PairingRole {
        /// Offered the household's orders first.
        Primary => "primary",
        /// Offered them when the primary cannot take them.
        Backup => "backup",
    }
}

text_enum! {
    /// Where a re-pairing proposal stands.
    ProposalStatus {
        /// Waiting for a coordinator.
        Proposed => "proposed",
        /// A coordinator paired the proposed volunteer.
        Accepted => "accepted",
        /// A coordinator set it aside.
        Dismissed => "dismissed",
    }
}
