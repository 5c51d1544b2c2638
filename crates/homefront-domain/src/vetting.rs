//! The volunteer vetting pipeline of SPEC.md ("Vetting"): application →
//! online review → interview → protective-equipment training → exam passed →
//! service agreement signed → insurance in force → active.
//!
//! ```text
//! applied → reviewed → interviewed → trained → exam_passed → agreement_signed → insured → active
//!    └──────────────── reject (any pre-active step) ──────────────────────────────┘ → rejected
//! active ⇄ suspended (suspend / reinstate)
//! any non-terminal state → withdrawn (the volunteer leaves)
//! ```
//!
//! Steps cannot be skipped. `rejected` and `withdrawn` are terminal: a person
//! who returns files a new application. Being `active` is necessary but not
//! sufficient to receive offers: credentials must also be valid at the
//! service time (see `credentials::is_eligible`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A volunteer's place in vetting. Stored as snake_case TEXT
/// (CHECK against [`VettingState::ALL`]).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum VettingState {
    /// Application received.
    Applied,
    /// Online review passed.
    Reviewed,
    /// Interview passed.
    Interviewed,
    /// Protective-equipment training completed.
    Trained,
    /// Exam passed.
    ExamPassed,
    /// Service agreement signed.
    AgreementSigned,
    /// Insurance in force.
    Insured,
    /// Cleared to serve.
    Active,
    /// Turned down during vetting. Terminal.
    Rejected,
    /// Temporarily barred by a coordinator; may be reinstated.
    Suspended,
    /// Left of their own accord. Terminal.
    Withdrawn,
}

/// Text that names no [`VettingState`].
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error(
    "unknown vetting state \"{0}\"; use one of applied, reviewed, interviewed, trained, \
     exam_passed, agreement_signed, insured, active, rejected, suspended, withdrawn"
)]
pub struct VettingStateError(pub String);

impl VettingState {
    /// Every state: the pipeline in order, then rejected, suspended, withdrawn.
    pub const ALL: [VettingState; 11] = [
        VettingState::Applied,
        VettingState::Reviewed,
        VettingState::Interviewed,
        VettingState::Trained,
        VettingState::ExamPassed,
        VettingState::AgreementSigned,
        VettingState::Insured,
        VettingState::Active,
        VettingState::Rejected,
        VettingState::Suspended,
        VettingState::Withdrawn,
    ];

    /// The pipeline steps in the order they must be passed (SPEC.md, 上岗流程).
    pub const PIPELINE: [VettingState; 8] = [
        VettingState::Applied,
        VettingState::Reviewed,
        VettingState::Interviewed,
        VettingState::Trained,
        VettingState::ExamPassed,
        VettingState::AgreementSigned,
        VettingState::Insured,
        VettingState::Active,
    ];

    /// The snake_case text stored in the database and sent in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            VettingState::Applied => "applied",
            VettingState::Reviewed => "reviewed",
            VettingState::Interviewed => "interviewed",
            VettingState::Trained => "trained",
            VettingState::ExamPassed => "exam_passed",
            VettingState::AgreementSigned => "agreement_signed",
            VettingState::Insured => "insured",
            VettingState::Active => "active",
            VettingState::Rejected => "rejected",
            VettingState::Suspended => "suspended",
            VettingState::Withdrawn => "withdrawn",
        }
    }

    /// Parses the snake_case text of [`VettingState::as_str`] (exact, case-sensitive).
    ///
    /// # Errors
    /// [`VettingStateError`] with the offending text.
    pub fn parse(text: &str) -> Result<Self, VettingStateError> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| VettingStateError(text.to_owned()))
    }

    /// Position in [`VettingState::PIPELINE`] (applied = 0 … active = 7);
    /// `None` for rejected, suspended and withdrawn.
    pub fn pipeline_index(self) -> Option<usize> {
        Self::PIPELINE.iter().position(|&s| s == self)
    }

    /// The step an [`VettingAction::Advance`] leads to; `None` from active
    /// and from states off the pipeline.
    pub fn next_step(self) -> Option<VettingState> {
        let i = self.pipeline_index()?;
        Self::PIPELINE.get(i + 1).copied()
    }

    /// Still being vetted: a pipeline step before active.
    pub fn is_pre_active(self) -> bool {
        self.pipeline_index().is_some() && self != VettingState::Active
    }

    /// Terminal states accept no action: rejected, withdrawn.
    pub fn is_terminal(self) -> bool {
        matches!(self, VettingState::Rejected | VettingState::Withdrawn)
    }

    /// The names ([`VettingAction::as_str`]) of the actions this state
    /// accepts. Agrees with [`transition`] (tested).
    pub fn allowed_actions(self) -> &'static [&'static str] {
        match self {
            s if s.is_pre_active() => &["advance", "reject", "withdraw"],
            VettingState::Active => &["suspend", "withdraw"],
            VettingState::Suspended => &["reinstate", "withdraw"],
            _ => &[],
        }
    }
}

impl fmt::Display for VettingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for VettingState {
    type Err = VettingStateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Something a coordinator (or the volunteer, for `withdraw`) does to a
/// volunteer's vetting. Serialized as snake_case text; the reason for a
/// rejection or suspension travels on the event row, not here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VettingAction {
    /// To the next pipeline step; never skips one.
    Advance,
    /// Any pre-active step → rejected.
    Reject,
    /// active → suspended (open assignments should be released).
    Suspend,
    /// suspended → active.
    Reinstate,
    /// Any non-terminal state → withdrawn.
    Withdraw,
}

impl VettingAction {
    /// Every action.
    pub const ALL: [VettingAction; 5] = [
        VettingAction::Advance,
        VettingAction::Reject,
        VettingAction::Suspend,
        VettingAction::Reinstate,
        VettingAction::Withdraw,
    ];

    /// The snake_case name, for JSON and the event log.
    pub fn as_str(self) -> &'static str {
        match self {
            VettingAction::Advance => "advance",
            VettingAction::Reject => "reject",
            VettingAction::Suspend => "suspend",
            VettingAction::Reinstate => "reinstate",
            VettingAction::Withdraw => "withdraw",
        }
    }
}

impl fmt::Display for VettingAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

crate::text_enum! {
    /// What a vetting-log row records: the volunteer's application, or a
    /// [`VettingAction`].
    VettingEventAction {
        /// The volunteer applied (`from_state` null, `to_state` applied).
        Apply => "apply",
        /// [`VettingAction::Advance`].
        Advance => "advance",
        /// [`VettingAction::Reject`].
        Reject => "reject",
        /// [`VettingAction::Suspend`].
        Suspend => "suspend",
        /// [`VettingAction::Reinstate`].
        Reinstate => "reinstate",
        /// [`VettingAction::Withdraw`].
        Withdraw => "withdraw",
    }
}

impl From<VettingAction> for VettingEventAction {
    fn from(a: VettingAction) -> Self {
        match a {
            VettingAction::Advance => VettingEventAction::Advance,
            VettingAction::Reject => VettingEventAction::Reject,
            VettingAction::Suspend => VettingEventAction::Suspend,
            VettingAction::Reinstate => VettingEventAction::Reinstate,
            VettingAction::Withdraw => VettingEventAction::Withdraw,
        }
    }
}

/// A refused vetting move. HTTP 409 in the API; see [`VettingError::code`].
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum VettingError {
    /// The target is a later pipeline step than the next one.
    #[error(
        "cannot move a volunteer from {from} to {target}: vetting steps cannot be skipped; \
         the next step is {next}"
    )]
    StepSkipped {
        /// Current state.
        from: VettingState,
        /// Requested state.
        target: VettingState,
        /// The only step `advance` may reach from `from`.
        next: VettingState,
    },
    /// The action is not accepted in this state.
    #[error("cannot {action} a volunteer who is {from}; {}", hint(*from))]
    IllegalAction {
        /// Current state.
        from: VettingState,
        /// The refused action.
        action: VettingAction,
    },
    /// No single action leads from `from` to `target` (backwards, same
    /// state, or out of a terminal state).
    #[error("cannot move a volunteer from {from} to {target}; {}", hint(*from))]
    IllegalTarget {
        /// Current state.
        from: VettingState,
        /// Requested state.
        target: VettingState,
    },
}

fn hint(from: VettingState) -> String {
    match from.next_step() {
        _ if from.is_terminal() => format!("{from} is final; a returning volunteer applies again"),
        Some(next) => format!("the next step is {next} (or reject, or withdraw)"),
        None => format!(
            "from {from} the allowed actions are: {}",
            from.allowed_actions().join(", ")
        ),
    }
}

impl VettingError {
    /// Stable machine code: `step_skipped` or `illegal_transition`.
    pub fn code(&self) -> &'static str {
        match self {
            VettingError::StepSkipped { .. } => "step_skipped",
            VettingError::IllegalAction { .. } | VettingError::IllegalTarget { .. } => {
                "illegal_transition"
            }
        }
    }
}

/// The single rule for moving a volunteer through vetting.
///
/// # Errors
/// [`VettingError::IllegalAction`] (`illegal_transition`) when `from` does
/// not accept `action`.
pub fn transition(from: VettingState, action: VettingAction) -> Result<VettingState, VettingError> {
    use VettingAction as A;
    use VettingState as S;
    let to = match (from, action) {
        (s, A::Advance) if s.is_pre_active() => s.next_step(),
        (s, A::Reject) if s.is_pre_active() => Some(S::Rejected),
        (S::Active, A::Suspend) => Some(S::Suspended),
        (S::Suspended, A::Reinstate) => Some(S::Active),
        (s, A::Withdraw) if !s.is_terminal() => Some(S::Withdrawn),
        _ => None,
    };
    to.ok_or(VettingError::IllegalAction { from, action })
}

/// Advances to `target`, which must be exactly the next pipeline step (for
/// API calls that name the target state of a step).
///
/// # Errors
/// [`VettingError::StepSkipped`] when `target` is further down the pipeline
/// (e.g. insured while exam_passed: the agreement comes first);
/// [`VettingError::IllegalTarget`] for anything else that is not the next step.
pub fn advance_to(from: VettingState, target: VettingState) -> Result<VettingState, VettingError> {
    match (
        from.next_step(),
        from.pipeline_index(),
        target.pipeline_index(),
    ) {
        (Some(next), _, _) if next == target => Ok(target),
        (Some(next), Some(f), Some(t)) if t > f => {
            Err(VettingError::StepSkipped { from, target, next })
        }
        _ => Err(VettingError::IllegalTarget { from, target }),
    }
}

/// The one action that moves `from` to `target`, for an API that receives a
/// target state: the next step → advance, rejected → reject, suspended →
/// suspend, active from suspended → reinstate, withdrawn → withdraw. Apply
/// the result with [`transition`] (it will succeed) and log it as the event.
///
/// # Errors
/// As [`advance_to`] for pipeline targets; [`VettingError::IllegalTarget`]
/// when no legal action reaches `target`.
pub fn action_to(from: VettingState, target: VettingState) -> Result<VettingAction, VettingError> {
    let action = match target {
        VettingState::Active if from == VettingState::Suspended => VettingAction::Reinstate,
        VettingState::Rejected => VettingAction::Reject,
        VettingState::Suspended => VettingAction::Suspend,
        VettingState::Withdrawn => VettingAction::Withdraw,
        t => {
            advance_to(from, t)?;
            return Ok(VettingAction::Advance);
        }
    };
    match transition(from, action) {
        Ok(_) => Ok(action),
        Err(_) => Err(VettingError::IllegalTarget { from, target }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use VettingState as S;
    use proptest::prelude::*;

    #[test]
    fn advance_walks_the_pipeline_in_order() {
        let mut s = S::Applied;
        let mut seen = vec![s];
        while let Ok(next) = transition(s, VettingAction::Advance) {
            s = next;
            seen.push(s);
        }
        assert_eq!(seen, S::PIPELINE.to_vec());
        assert_eq!(s, S::Active);
    }

    #[test]
    fn cannot_insure_before_agreement() {
        let e = advance_to(S::ExamPassed, S::Insured).unwrap_err();
        assert_eq!(
            e,
            VettingError::StepSkipped {
                from: S::ExamPassed,
                target: S::Insured,
                next: S::AgreementSigned
            }
        );
        assert_eq!(e.code(), "step_skipped");
        assert_eq!(
            e.to_string(),
            "cannot move a volunteer from exam_passed to insured: vetting steps cannot be \
             skipped; the next step is agreement_signed"
        );
        assert_eq!(
            advance_to(S::Applied, S::Active).unwrap_err().code(),
            "step_skipped"
        );
    }

    #[test]
    fn advance_to_accepts_exactly_the_next_step() {
        for from in S::ALL {
            for target in S::ALL {
                assert_eq!(
                    advance_to(from, target).is_ok(),
                    from.next_step() == Some(target),
                    "{from} → {target}"
                );
            }
        }
        // Backwards is illegal, not a skip.
        assert_eq!(
            advance_to(S::Trained, S::Reviewed).unwrap_err().code(),
            "illegal_transition"
        );
    }

    #[test]
    fn reject_only_before_active() {
        for s in S::ALL {
            assert_eq!(
                transition(s, VettingAction::Reject).is_ok(),
                S::PIPELINE[..7].contains(&s),
                "{s}"
            );
        }
    }

    #[test]
    fn suspend_and_reinstate() {
        assert_eq!(
            transition(S::Active, VettingAction::Suspend),
            Ok(S::Suspended)
        );
        assert_eq!(
            transition(S::Suspended, VettingAction::Reinstate),
            Ok(S::Active)
        );
        assert!(transition(S::Insured, VettingAction::Suspend).is_err());
        assert!(transition(S::Active, VettingAction::Reinstate).is_err());
    }

    #[test]
    fn withdraw_from_any_non_terminal_state() {
        for s in S::ALL {
            let r = transition(s, VettingAction::Withdraw);
            assert_eq!(r.is_ok(), !matches!(s, S::Rejected | S::Withdrawn), "{s}");
        }
    }

    #[test]
    fn terminal_states_accept_nothing() {
        for s in [S::Rejected, S::Withdrawn] {
            assert!(s.is_terminal());
            for a in VettingAction::ALL {
                let e = transition(s, a).unwrap_err();
                assert!(e.to_string().contains("is final"), "{e}");
            }
        }
    }

    #[test]
    fn allowed_actions_agree_with_transition() {
        for s in S::ALL {
            for a in VettingAction::ALL {
                assert_eq!(
                    transition(s, a).is_ok(),
                    s.allowed_actions().contains(&a.as_str()),
                    "{s} {a}"
                );
            }
        }
    }

    #[test]
    fn action_to_infers_the_action_and_agrees_with_transition() {
        assert_eq!(
            action_to(S::Trained, S::ExamPassed),
            Ok(VettingAction::Advance)
        );
        assert_eq!(
            action_to(S::Suspended, S::Active),
            Ok(VettingAction::Reinstate)
        );
        assert_eq!(
            action_to(S::Active, S::Suspended),
            Ok(VettingAction::Suspend)
        );
        assert_eq!(
            action_to(S::Interviewed, S::Rejected),
            Ok(VettingAction::Reject)
        );
        assert_eq!(
            action_to(S::Suspended, S::Withdrawn),
            Ok(VettingAction::Withdraw)
        );
        assert_eq!(
            action_to(S::Insured, S::Suspended).unwrap_err().code(),
            "illegal_transition"
        );
        assert_eq!(
            action_to(S::Active, S::Rejected).unwrap_err().code(),
            "illegal_transition"
        );
        assert_eq!(
            action_to(S::Reviewed, S::Insured).unwrap_err().code(),
            "step_skipped"
        );
        for from in S::ALL {
            for target in S::ALL {
                if let Ok(a) = action_to(from, target) {
                    assert_eq!(transition(from, a), Ok(target), "{from} → {target}");
                }
            }
        }
    }

    #[test]
    fn text_round_trips_and_matches_serde() {
        for s in S::ALL {
            assert_eq!(s.as_str().parse::<S>(), Ok(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        for a in VettingAction::ALL {
            assert_eq!(
                serde_json::to_string(&a).unwrap(),
                format!("\"{}\"", a.as_str())
            );
        }
        assert!(S::parse("exam-passed").is_err());
    }

    proptest! {
        /// Whatever coordinators do, a volunteer first becomes active only
        /// after passing every pipeline step in order.
        #[test]
        fn active_is_reached_only_through_every_step(idx in prop::collection::vec(0usize..5, 0..60)) {
            let mut s = S::Applied;
            let mut path = vec![s];
            for i in idx {
                if let Ok(next) = transition(s, VettingAction::ALL[i]) {
                    s = next;
                    path.push(s);
                }
            }
            if let Some(first_active) = path.iter().position(|&x| x == S::Active) {
                prop_assert_eq!(&path[..=first_active], &S::PIPELINE[..]);
            }
        }
    }
}
