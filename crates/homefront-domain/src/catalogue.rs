//! The service catalogue's vocabulary: how an item is delivered, its
//! priority lane, and an order's urgency; plus household relations.

pub use crate::enums::UnknownValue;
use crate::text_enum;

text_enum! {
    /// How an item is delivered.
    ServiceMode {
        /// At the household's location: distance matters.
        Onsite => "onsite",
        /// By phone or video: distance is ignored when dispatching.
        Remote => "remote",
    }
}

text_enum! {
    /// Priority lane: orders the dispatch queue and sets the escalation
    /// deadline (see [`Lane::deadline_minutes`]).
    Lane {
        /// Staff deployed to the epidemic's centre and their families
        /// (the 12355 hotline's priority channel).
        Priority => "priority",
        /// Time-critical: meals, rides, medical consultations.
        Urgent => "urgent",
        /// Everything else.
        Standard => "standard",
    }
}

impl Lane {
    /// Minutes an order may wait for an accepted offer before it escalates
    /// one level up the tree (county → city → province). Defaults chosen so
    /// the priority channel answers within a hotline's expected response
    /// time; configurable per deployment in the dispatcher.
    pub fn deadline_minutes(self) -> i64 {
        match self {
            Lane::Priority => 10,
            Lane::Urgent => 30,
            Lane::Standard => 120,
        }
    }

    /// Sort key: lower is served first.
    pub fn rank(self) -> u8 {
        match self {
            Lane::Priority => 0,
            Lane::Urgent => 1,
            Lane::Standard => 2,
        }
    }
}

text_enum! {
    /// The requester's own urgency flag on an order.
    Urgency {
        /// As soon as convenient within the window.
        Normal => "normal",
        /// Needed urgently: moves a standard-lane order to the urgent lane.
        Urgent => "urgent",
    }
}

text_enum! {
    /// A household member's relation to the requester.
    Relation {
        /// The requester.
        SelfMember => "self",
        /// A parent (often elderly).
        Parent => "parent",
        /// A child.
        Child => "child",
        /// A spouse or partner.
        Spouse => "spouse",
        /// Anyone else in the household.
        Other => "other",
    }
}

/// Age below which an order serving a child needs recorded guardian
/// consent (14, the age of consent for personal information in China's
/// Personal Information Protection Law, art. 31).
pub const GUARDIAN_CONSENT_AGE: i64 = 14;

/// Age from which a member is no longer a school pupil for the catalogue's
/// tutoring (18: the end of senior secondary school in China).
pub const PUPIL_AGE_LIMIT: i64 = 18;

/// Whether an item requiring `qualifications` (catalogue codes) suits a
/// household member with `relation`, `age_years` and `school_grade`:
/// tutoring (items needing the `teacher` qualification) is for school
/// pupils only: a child younger than [`PUPIL_AGE_LIMIT`] (or of unknown
/// age), or anyone with a school grade recorded. Every other item suits
/// everyone. The wizard shows such items apart and intake refuses them
/// (`item_not_for_member`).
pub fn suits_member(
    qualifications: &[&str],
    relation: Relation,
    age_years: Option<i64>,
    school_grade: Option<&str>,
) -> bool {
    if !qualifications.contains(&"teacher") {
        return true;
    }
    let pupil_age = relation == Relation::Child && age_years.is_none_or(|a| a < PUPIL_AGE_LIMIT);
    pupil_age || school_grade.is_some_and(|g| !g.trim().is_empty())
}

/// The lane an order goes into: the item's lane, raised to `priority` for
/// items with a priority channel when the requester is deployed to the
/// epidemic's centre, and from `standard` to `urgent` when the requester
/// marks it urgent.
pub fn order_lane(
    item_lane: Lane,
    item_has_priority_channel: bool,
    requester_deployed: bool,
    urgency: Urgency,
) -> Lane {
    if item_has_priority_channel && requester_deployed {
        return Lane::Priority;
    }
    match (item_lane, urgency) {
        (Lane::Standard, Urgency::Urgent) => Lane::Urgent,
        (lane, _) => lane,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tutoring_suits_pupils_only() {
        let t = ["teacher"];
        assert!(suits_member(&t, Relation::Child, Some(9), None));
        assert!(suits_member(&t, Relation::Child, None, None));
        assert!(!suits_member(&t, Relation::Child, Some(19), None));
        assert!(!suits_member(&t, Relation::Parent, Some(69), None));
        assert!(suits_member(&t, Relation::Other, Some(16), Some("高一")));
        assert!(suits_member(&[], Relation::Parent, Some(69), None));
        assert!(suits_member(
            &["driving_licence"],
            Relation::Parent,
            Some(69),
            None
        ));
    }

    use super::*;

    #[test]
    fn text_round_trips() {
        for l in Lane::ALL {
            assert_eq!(l.as_str().parse::<Lane>().unwrap(), *l);
        }
        assert_eq!("self".parse::<Relation>().unwrap(), Relation::SelfMember);
        let e = "cousin".parse::<Relation>().unwrap_err();
        assert!(e.to_string().contains("parent"), "{e}");
    }

    #[test]
    fn deployed_staff_get_the_priority_lane_for_counselling_only() {
        assert_eq!(
            order_lane(Lane::Urgent, true, true, Urgency::Normal),
            Lane::Priority
        );
        assert_eq!(
            order_lane(Lane::Urgent, true, false, Urgency::Normal),
            Lane::Urgent
        );
        assert_eq!(
            order_lane(Lane::Standard, false, true, Urgency::Normal),
            Lane::Standard
        );
        assert_eq!(
            order_lane(Lane::Standard, false, false, Urgency::Urgent),
            Lane::Urgent
        );
        assert!(Lane::Priority.deadline_minutes() < Lane::Urgent.deadline_minutes());
    }
}
