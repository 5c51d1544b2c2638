//! The order lifecycle of SPEC.md ("Order lifecycle"):
//!
//! ```text
//! submitted → dispatching → assigned → in_service → completed → confirmed
//!                  ↑            │
//!                  └─ release ──┘   (also reassign: a coordinator withdraws it, reason required)
//! any open state (submitted, dispatching, assigned, in_service) → cancelled   (reason required)
//! dispatching → unfulfilled                                                    (reason required)
//! ```
//!
//! [`transition`] is the only place that decides whether a move is legal; the
//! store writes the resulting state and its event row in one transaction.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Where an order is in its lifecycle. Stored as snake_case TEXT
/// (`orders.state`, CHECK against [`OrderState::ALL`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Placed by a requester or liaison; not yet offered to anyone.
    Submitted,
    /// Looking for a volunteer: offers are out, or it waits in a coordinator queue.
    Dispatching,
    /// A volunteer accepted an offer; the service has not started.
    Assigned,
    /// The volunteer checked in; the service is under way.
    InService,
    /// The volunteer checked out; awaiting the requester's confirmation.
    Completed,
    /// The requester confirmed (or it was auto-confirmed). Terminal.
    Confirmed,
    /// Withdrawn by a requester, liaison or coordinator, with a reason. Terminal.
    Cancelled,
    /// Dispatch gave up: no volunteer could take it, with a reason. Terminal.
    Unfulfilled,
}

/// Text that names no [`OrderState`].
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error(
    "unknown order state \"{0}\"; use one of submitted, dispatching, assigned, \
     in_service, completed, confirmed, cancelled, unfulfilled"
)]
pub struct OrderStateError(pub String);

impl OrderState {
    /// Every state in lifecycle order (the CHECK constraint's list).
    pub const ALL: [OrderState; 8] = [
        OrderState::Submitted,
        OrderState::Dispatching,
        OrderState::Assigned,
        OrderState::InService,
        OrderState::Completed,
        OrderState::Confirmed,
        OrderState::Cancelled,
        OrderState::Unfulfilled,
    ];

    /// The snake_case text stored in the database and sent in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Submitted => "submitted",
            OrderState::Dispatching => "dispatching",
            OrderState::Assigned => "assigned",
            OrderState::InService => "in_service",
            OrderState::Completed => "completed",
            OrderState::Confirmed => "confirmed",
            OrderState::Cancelled => "cancelled",
            OrderState::Unfulfilled => "unfulfilled",
        }
    }

    /// Parses the snake_case text of [`OrderState::as_str`] (exact, case-sensitive).
    ///
    /// # Errors
    /// [`OrderStateError`] with the offending text.
    pub fn parse(text: &str) -> Result<Self, OrderStateError> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| OrderStateError(text.to_owned()))
    }

    /// Open states may still be cancelled: submitted, dispatching, assigned,
    /// in_service (SPEC.md: "from any open state `cancelled`").
    pub fn is_open(self) -> bool {
        matches!(
            self,
            OrderState::Submitted
                | OrderState::Dispatching
                | OrderState::Assigned
                | OrderState::InService
        )
    }

    /// Terminal states accept no action: confirmed, cancelled, unfulfilled.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OrderState::Confirmed | OrderState::Cancelled | OrderState::Unfulfilled
        )
    }

    /// Whether the work on the order is over: `completed` or any terminal
    /// state (exactly the states that are not open). Use it to free the
    /// volunteer's load slot and to start the privacy purge clock; `completed`
    /// is ended but not terminal because it still awaits confirmation.
    pub fn ended(self) -> bool {
        !self.is_open()
    }

    /// The names ([`OrderAction::as_str`]) of the actions this state accepts,
    /// in lifecycle order; empty for terminal states. Agrees with
    /// [`transition`] (tested), so a UI can use it to choose its buttons.
    pub fn allowed_actions(self) -> &'static [&'static str] {
        match self {
            OrderState::Submitted => &["start_dispatch", "cancel"],
            OrderState::Dispatching => &["assign", "cancel", "mark_unfulfilled"],
            OrderState::Assigned => &["release", "reassign", "check_in", "cancel"],
            OrderState::InService => &["release", "reassign", "check_out", "cancel"],
            OrderState::Completed => &["confirm"],
            OrderState::Confirmed | OrderState::Cancelled | OrderState::Unfulfilled => &[],
        }
    }
}

impl fmt::Display for OrderState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OrderState {
    type Err = OrderStateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A reason for a cancellation or an unfulfilled order: trimmed, non-empty,
/// at most [`Reason::MAX_CHARS`] characters. Holding one proves the text was
/// checked, so [`transition`] never sees a blank reason.
///
/// Serialized as a plain JSON string; deserializing runs [`Reason::parse`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Reason(String);

/// Why a [`Reason`] was rejected.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ReasonError {
    /// The text was empty or only whitespace.
    #[error("reason is required: say in a few words why (e.g. \"requester no longer needs it\")")]
    Required,
    /// The text was longer than [`Reason::MAX_CHARS`] characters.
    #[error("reason is too long: {got} characters, at most {max}; shorten it")]
    TooLong {
        /// The limit, [`Reason::MAX_CHARS`].
        max: usize,
        /// Characters in the trimmed text.
        got: usize,
    },
}

impl ReasonError {
    /// Stable machine code for API errors: `reason_required` or `reason_too_long`.
    pub fn code(&self) -> &'static str {
        match self {
            ReasonError::Required => "reason_required",
            ReasonError::TooLong { .. } => "reason_too_long",
        }
    }
}

impl Reason {
    /// Longest accepted reason, in Unicode scalar values (characters, not bytes,
    /// so Chinese text gets the same room as English).
    pub const MAX_CHARS: usize = 500;

    /// Trims `text` and checks it is non-empty and not too long.
    ///
    /// # Errors
    /// [`ReasonError::Required`] for blank text, [`ReasonError::TooLong`] past
    /// [`Reason::MAX_CHARS`].
    pub fn parse(text: &str) -> Result<Self, ReasonError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(ReasonError::Required);
        }
        let got = trimmed.chars().count();
        if got > Self::MAX_CHARS {
            return Err(ReasonError::TooLong {
                max: Self::MAX_CHARS,
                got,
            });
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The trimmed text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Reason {
    type Error = ReasonError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Reason> for String {
    fn from(value: Reason) -> Self {
        value.0
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Something that happens to an order. Serialized internally tagged, e.g.
/// `{"action":"cancel","reason":"no longer needed"}`; [`OrderAction::as_str`]
/// is the text for the event log's `action` column.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum OrderAction {
    /// submitted → dispatching: the dispatcher (or a coordinator) picks it up.
    StartDispatch,
    /// dispatching → assigned: an offer was accepted.
    Assign,
    /// assigned or in_service → dispatching: the assignment is released
    /// back to dispatch (the volunteer was suspended or withdrew).
    Release,
    /// assigned or in_service → dispatching: a coordinator withdrew the
    /// live assignment to give the order to someone else (the volunteer
    /// cannot make it, cannot be reached, ...). Unlike [`OrderAction::Release`]
    /// it is a person's decision and carries their reason.
    Reassign {
        /// Why; stored on the event row.
        reason: Reason,
    },
    /// assigned → in_service: the volunteer checked in.
    CheckIn,
    /// in_service → completed: the volunteer checked out.
    CheckOut,
    /// completed → confirmed: by the requester, or automatically (`auto`)
    /// after the confirmation period.
    Confirm {
        /// True when the system confirmed because the requester did not.
        auto: bool,
    },
    /// Any open state → cancelled.
    Cancel {
        /// Why; stored on the event row.
        reason: Reason,
    },
    /// dispatching → unfulfilled: no volunteer could be found.
    MarkUnfulfilled {
        /// Why; stored on the event row.
        reason: Reason,
    },
}

impl OrderAction {
    /// The snake_case name of the action (same as its JSON `action` tag).
    pub fn as_str(&self) -> &'static str {
        match self {
            OrderAction::StartDispatch => "start_dispatch",
            OrderAction::Assign => "assign",
            OrderAction::Release => "release",
            OrderAction::Reassign { .. } => "reassign",
            OrderAction::CheckIn => "check_in",
            OrderAction::CheckOut => "check_out",
            OrderAction::Confirm { .. } => "confirm",
            OrderAction::Cancel { .. } => "cancel",
            OrderAction::MarkUnfulfilled { .. } => "mark_unfulfilled",
        }
    }

    /// The reason carried by `cancel` and `mark_unfulfilled`; `None` otherwise.
    pub fn reason(&self) -> Option<&Reason> {
        match self {
            OrderAction::Cancel { reason }
            | OrderAction::MarkUnfulfilled { reason }
            | OrderAction::Reassign { reason } => Some(reason),
            _ => None,
        }
    }
}

crate::text_enum! {
    /// What an event-log row records: an [`OrderAction`]'s name, the order's
    /// creation, or an escalation (which changes no state).
    EventAction {
        /// The order was placed (`from_state` null, `to_state` submitted).
        Submit => "submit",
        /// [`OrderAction::StartDispatch`].
        StartDispatch => "start_dispatch",
        /// [`OrderAction::Assign`].
        Assign => "assign",
        /// [`OrderAction::Release`].
        Release => "release",
        /// [`OrderAction::Reassign`].
        Reassign => "reassign",
        /// [`OrderAction::CheckIn`].
        CheckIn => "check_in",
        /// [`OrderAction::CheckOut`].
        CheckOut => "check_out",
        /// [`OrderAction::Confirm`].
        Confirm => "confirm",
        /// [`OrderAction::Cancel`].
        Cancel => "cancel",
        /// [`OrderAction::MarkUnfulfilled`].
        MarkUnfulfilled => "mark_unfulfilled",
        /// The order moved up to the next coordinator queue (same state).
        Escalate => "escalate",
    }
}

impl OrderAction {
    /// The event-log action this action is recorded as.
    pub fn event_action(&self) -> EventAction {
        match self {
            OrderAction::StartDispatch => EventAction::StartDispatch,
            OrderAction::Assign => EventAction::Assign,
            OrderAction::Release => EventAction::Release,
            OrderAction::Reassign { .. } => EventAction::Reassign,
            OrderAction::CheckIn => EventAction::CheckIn,
            OrderAction::CheckOut => EventAction::CheckOut,
            OrderAction::Confirm { .. } => EventAction::Confirm,
            OrderAction::Cancel { .. } => EventAction::Cancel,
            OrderAction::MarkUnfulfilled { .. } => EventAction::MarkUnfulfilled,
        }
    }
}

impl fmt::Display for OrderAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An action the order's current state does not accept. API code
/// `illegal_transition` (HTTP 409: the order moved on, or the client is wrong).
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub struct TransitionError {
    /// The state the order was in.
    pub from: OrderState,
    /// [`OrderAction::as_str`] of the refused action.
    pub action: &'static str,
}

impl TransitionError {
    /// Stable machine code: `illegal_transition`.
    pub fn code(&self) -> &'static str {
        "illegal_transition"
    }
}

impl fmt::Display for TransitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let allowed = self.from.allowed_actions();
        if allowed.is_empty() {
            write!(
                f,
                "cannot {} an order that is {}: {} is final and accepts no further action",
                self.action, self.from, self.from
            )
        } else {
            write!(
                f,
                "cannot {} an order that is {}; from {} the order accepts only: {}",
                self.action,
                self.from,
                self.from,
                allowed.join(", ")
            )
        }
    }
}

/// The single rule for moving an order: the state after `action`, or why not.
///
/// Reasons are already non-empty by construction ([`Reason`]), so the only
/// failure is an action the state does not accept.
///
/// # Errors
/// [`TransitionError`] (`illegal_transition`) naming `from` and the action.
pub fn transition(from: OrderState, action: &OrderAction) -> Result<OrderState, TransitionError> {
    use OrderAction as A;
    use OrderState as S;
    let to = match (from, action) {
        (S::Submitted, A::StartDispatch) => S::Dispatching,
        (S::Dispatching, A::Assign) => S::Assigned,
        // A volunteer suspended or withdrawn mid-service hands the order
        // back too: someone else must finish it.
        (S::Assigned | S::InService, A::Release | A::Reassign { .. }) => S::Dispatching,
        (S::Assigned, A::CheckIn) => S::InService,
        (S::InService, A::CheckOut) => S::Completed,
        (S::Completed, A::Confirm { .. }) => S::Confirmed,
        (s, A::Cancel { .. }) if s.is_open() => S::Cancelled,
        (S::Dispatching, A::MarkUnfulfilled { .. }) => S::Unfulfilled,
        _ => {
            return Err(TransitionError {
                from,
                action: action.as_str(),
            });
        }
    };
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reason() -> Reason {
        Reason::parse("requester no longer needs it").unwrap()
    }

    fn all_actions() -> Vec<OrderAction> {
        vec![
            OrderAction::StartDispatch,
            OrderAction::Assign,
            OrderAction::Release,
            OrderAction::Reassign { reason: reason() },
            OrderAction::CheckIn,
            OrderAction::CheckOut,
            OrderAction::Confirm { auto: false },
            OrderAction::Confirm { auto: true },
            OrderAction::Cancel { reason: reason() },
            OrderAction::MarkUnfulfilled { reason: reason() },
        ]
    }

    #[test]
    fn happy_path_reaches_confirmed() {
        let steps = [
            (OrderAction::StartDispatch, OrderState::Dispatching),
            (OrderAction::Assign, OrderState::Assigned),
            (OrderAction::CheckIn, OrderState::InService),
            (OrderAction::CheckOut, OrderState::Completed),
            (OrderAction::Confirm { auto: true }, OrderState::Confirmed),
        ];
        let mut state = OrderState::Submitted;
        for (action, expected) in steps {
            state = transition(state, &action).unwrap();
            assert_eq!(state, expected);
        }
        assert!(state.is_terminal());
    }

    #[test]
    fn release_returns_assignment_to_dispatch() {
        assert_eq!(
            transition(OrderState::Assigned, &OrderAction::Release),
            Ok(OrderState::Dispatching)
        );
        // Mid-service too: a suspended volunteer's order goes back to dispatch.
        assert_eq!(
            transition(OrderState::InService, &OrderAction::Release),
            Ok(OrderState::Dispatching)
        );
        assert!(transition(OrderState::Completed, &OrderAction::Release).is_err());
    }

    #[test]
    fn reassign_withdraws_a_live_assignment_with_its_reason() {
        let a = OrderAction::Reassign { reason: reason() };
        for s in OrderState::ALL {
            let live = matches!(s, OrderState::Assigned | OrderState::InService);
            assert_eq!(
                transition(s, &a).ok(),
                live.then_some(OrderState::Dispatching),
                "{s}"
            );
        }
        assert_eq!(a.reason(), Some(&reason()));
        assert_eq!(a.event_action(), EventAction::Reassign);
    }

    #[test]
    fn cancel_only_from_open_states() {
        let cancel = OrderAction::Cancel { reason: reason() };
        for s in OrderState::ALL {
            let r = transition(s, &cancel);
            assert_eq!(r.is_ok(), s.is_open(), "{s}");
            if s.is_open() {
                assert_eq!(r, Ok(OrderState::Cancelled));
            }
        }
        assert!(transition(OrderState::Completed, &cancel).is_err());
    }

    #[test]
    fn unfulfilled_only_from_dispatching() {
        let a = OrderAction::MarkUnfulfilled { reason: reason() };
        for s in OrderState::ALL {
            assert_eq!(
                transition(s, &a).is_ok(),
                s == OrderState::Dispatching,
                "{s}"
            );
        }
    }

    #[test]
    fn terminal_states_accept_nothing() {
        for s in [
            OrderState::Confirmed,
            OrderState::Cancelled,
            OrderState::Unfulfilled,
        ] {
            assert!(s.is_terminal() && s.ended() && !s.is_open());
            for a in all_actions() {
                let e = transition(s, &a).unwrap_err();
                assert_eq!(e.code(), "illegal_transition");
                assert!(e.to_string().contains("final"), "{e}");
            }
        }
    }

    #[test]
    fn completed_is_ended_but_not_terminal() {
        let s = OrderState::Completed;
        assert!(s.ended() && !s.is_terminal() && !s.is_open());
    }

    #[test]
    fn error_message_names_state_action_and_fix() {
        let e = transition(OrderState::Dispatching, &OrderAction::CheckIn).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot check_in an order that is dispatching; from dispatching the order \
             accepts only: assign, cancel, mark_unfulfilled"
        );
    }

    #[test]
    fn allowed_actions_agree_with_transition() {
        for s in OrderState::ALL {
            for a in all_actions() {
                assert_eq!(
                    transition(s, &a).is_ok(),
                    s.allowed_actions().contains(&a.as_str()),
                    "{s} {a}"
                );
            }
        }
    }

    #[test]
    fn reason_is_trimmed_and_required() {
        assert_eq!(Reason::parse("  "), Err(ReasonError::Required));
        assert_eq!(Reason::parse("").unwrap_err().code(), "reason_required");
        assert_eq!(Reason::parse(" 不需要了 ").unwrap().as_str(), "不需要了");
        let long = "长".repeat(Reason::MAX_CHARS + 1);
        assert_eq!(
            Reason::parse(&long),
            Err(ReasonError::TooLong { max: 500, got: 501 })
        );
        assert!(Reason::parse(&"长".repeat(Reason::MAX_CHARS)).is_ok());
    }

    #[test]
    fn text_round_trips_and_matches_serde() {
        for s in OrderState::ALL {
            assert_eq!(s.as_str().parse::<OrderState>(), Ok(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert_eq!(
            OrderState::parse("InService"),
            Err(OrderStateError("InService".into()))
        );
        for a in all_actions() {
            let json = serde_json::to_value(&a).unwrap();
            assert_eq!(json["action"], a.as_str());
            assert_eq!(serde_json::from_value::<OrderAction>(json).unwrap(), a);
        }
    }

    #[test]
    fn blank_reason_is_rejected_when_deserializing_an_action() {
        let r = serde_json::from_str::<OrderAction>(r#"{"action":"cancel","reason":"  "}"#);
        assert!(r.unwrap_err().to_string().contains("reason is required"));
    }

    proptest! {
        /// Any sequence of actions keeps the machine inside its rules: once
        /// terminal, always the same terminal state; `confirmed` is only ever
        /// reached through `completed`.
        #[test]
        fn random_walks_respect_terminality(idx in prop::collection::vec(0usize..9, 0..40)) {
            let actions = all_actions();
            let mut state = OrderState::Submitted;
            for i in idx {
                let before = state;
                match transition(state, &actions[i]) {
                    Ok(next) => {
                        prop_assert!(!before.is_terminal());
                        if next == OrderState::Confirmed {
                            prop_assert_eq!(before, OrderState::Completed);
                        }
                        state = next;
                    }
                    Err(e) => prop_assert_eq!(e.from, before),
                }
            }
        }
    }
}
