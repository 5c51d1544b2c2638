//! Credentials with validity dates, and the one eligibility rule the
//! dispatcher uses (SPEC.md, "Vetting" and "Dispatch"): a volunteer is
//! eligible for a service item only while active and while every credential
//! it needs is valid.
//!
//! Credential kinds are one flat enum ([`CredentialKind`]) so the database
//! keeps one TEXT column with one CHECK list; [`Qualification`] is the subset
//! a catalogue item may require, so an item cannot "require insurance".

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::clock::Timestamp;
use crate::vetting::VettingState;

/// A qualification a catalogue item may require. Stored as snake_case TEXT,
/// the same text as the matching [`CredentialKind`].
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
pub enum Qualification {
    /// A driving licence (rides, deliveries by car).
    DrivingLicence,
    /// A teaching licence (child tutoring).
    Teacher,
    /// A counselling qualification (psychological counselling, 12355 hotline).
    Counsellor,
    /// A medical licence (home medical consultation).
    MedicalLicence,
    /// A first-aid certificate.
    FirstAid,
    /// A language qualification (interpreting, foreign-language tutoring).
    Language,
}

/// The kind of a credential: one of the six [`Qualification`]s, or one of
/// the three base credentials every active volunteer needs for every item
/// ([`CredentialKind::BASE`]). Stored as snake_case TEXT.
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
pub enum CredentialKind {
    /// See [`Qualification::DrivingLicence`].
    DrivingLicence,
    /// See [`Qualification::Teacher`].
    Teacher,
    /// See [`Qualification::Counsellor`].
    Counsellor,
    /// See [`Qualification::MedicalLicence`].
    MedicalLicence,
    /// See [`Qualification::FirstAid`].
    FirstAid,
    /// See [`Qualification::Language`].
    Language,
    /// Protective-equipment training certificate (vetting step "trained").
    TrainingCertificate,
    /// Signed service agreement (vetting step "agreement_signed").
    ServiceAgreement,
    /// Accident insurance policy in force (vetting step "insured").
    Insurance,
}

/// Text that names no [`Qualification`].
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error(
    "unknown qualification \"{0}\"; use one of driving_licence, teacher, counsellor, \
     medical_licence, first_aid, language"
)]
pub struct QualificationError(pub String);

/// Text that names no [`CredentialKind`].
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error(
    "unknown credential kind \"{0}\"; use one of driving_licence, teacher, counsellor, \
     medical_licence, first_aid, language, training_certificate, service_agreement, insurance"
)]
pub struct CredentialKindError(pub String);

impl Qualification {
    /// Every qualification.
    pub const ALL: [Qualification; 6] = [
        Qualification::DrivingLicence,
        Qualification::Teacher,
        Qualification::Counsellor,
        Qualification::MedicalLicence,
        Qualification::FirstAid,
        Qualification::Language,
    ];

    /// The snake_case text stored in the database.
    pub fn as_str(self) -> &'static str {
        CredentialKind::from(self).as_str()
    }

    /// Parses the text of [`Qualification::as_str`].
    ///
    /// # Errors
    /// [`QualificationError`] with the offending text (including base
    /// credential kinds such as `insurance`, which are not qualifications).
    pub fn parse(text: &str) -> Result<Self, QualificationError> {
        Self::ALL
            .into_iter()
            .find(|q| q.as_str() == text)
            .ok_or_else(|| QualificationError(text.to_owned()))
    }
}

impl CredentialKind {
    /// Every kind: the qualifications, then the base credentials.
    pub const ALL: [CredentialKind; 9] = [
        CredentialKind::DrivingLicence,
        CredentialKind::Teacher,
        CredentialKind::Counsellor,
        CredentialKind::MedicalLicence,
        CredentialKind::FirstAid,
        CredentialKind::Language,
        CredentialKind::TrainingCertificate,
        CredentialKind::ServiceAgreement,
        CredentialKind::Insurance,
    ];

    /// Credentials every active volunteer needs valid for every item.
    pub const BASE: [CredentialKind; 3] = [
        CredentialKind::TrainingCertificate,
        CredentialKind::ServiceAgreement,
        CredentialKind::Insurance,
    ];

    /// The snake_case text stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::DrivingLicence => "driving_licence",
            CredentialKind::Teacher => "teacher",
            CredentialKind::Counsellor => "counsellor",
            CredentialKind::MedicalLicence => "medical_licence",
            CredentialKind::FirstAid => "first_aid",
            CredentialKind::Language => "language",
            CredentialKind::TrainingCertificate => "training_certificate",
            CredentialKind::ServiceAgreement => "service_agreement",
            CredentialKind::Insurance => "insurance",
        }
    }

    /// Parses the text of [`CredentialKind::as_str`].
    ///
    /// # Errors
    /// [`CredentialKindError`] with the offending text.
    pub fn parse(text: &str) -> Result<Self, CredentialKindError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| CredentialKindError(text.to_owned()))
    }

    /// The qualification this kind is, or `None` for a base credential.
    pub fn qualification(self) -> Option<Qualification> {
        match self {
            CredentialKind::DrivingLicence => Some(Qualification::DrivingLicence),
            CredentialKind::Teacher => Some(Qualification::Teacher),
            CredentialKind::Counsellor => Some(Qualification::Counsellor),
            CredentialKind::MedicalLicence => Some(Qualification::MedicalLicence),
            CredentialKind::FirstAid => Some(Qualification::FirstAid),
            CredentialKind::Language => Some(Qualification::Language),
            CredentialKind::TrainingCertificate
            | CredentialKind::ServiceAgreement
            | CredentialKind::Insurance => None,
        }
    }

    /// Machine codes for (missing, expired, not yet valid) credentials of
    /// this kind; see [`IneligibleReason::code`].
    fn reason_codes(self) -> [&'static str; 3] {
        match self {
            CredentialKind::TrainingCertificate => [
                "training_missing",
                "training_expired",
                "training_not_yet_valid",
            ],
            CredentialKind::ServiceAgreement => [
                "agreement_missing",
                "agreement_expired",
                "agreement_not_yet_valid",
            ],
            CredentialKind::Insurance => [
                "insurance_missing",
                "insurance_expired",
                "insurance_not_yet_valid",
            ],
            _ => [
                "qualification_missing",
                "qualification_expired",
                "qualification_not_yet_valid",
            ],
        }
    }
}

impl From<Qualification> for CredentialKind {
    fn from(q: Qualification) -> Self {
        match q {
            Qualification::DrivingLicence => CredentialKind::DrivingLicence,
            Qualification::Teacher => CredentialKind::Teacher,
            Qualification::Counsellor => CredentialKind::Counsellor,
            Qualification::MedicalLicence => CredentialKind::MedicalLicence,
            Qualification::FirstAid => CredentialKind::FirstAid,
            Qualification::Language => CredentialKind::Language,
        }
    }
}

impl fmt::Display for Qualification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Qualification {
    type Err = QualificationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl FromStr for CredentialKind {
    type Err = CredentialKindError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A credential held by a volunteer, valid on the half-open interval
/// `[valid_from, valid_to)` of epoch-ms instants; `valid_to = None` means no
/// expiry. Revoking a credential sets `valid_to` to the revocation instant.
///
/// Fields are private so `valid_to > valid_from` always holds; build with
/// [`Credential::new`] (also used when deserializing).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawCredential")]
pub struct Credential {
    kind: CredentialKind,
    valid_from: Timestamp,
    valid_to: Option<Timestamp>,
}

#[derive(Deserialize)]
struct RawCredential {
    kind: CredentialKind,
    valid_from: Timestamp,
    valid_to: Option<Timestamp>,
}

impl TryFrom<RawCredential> for Credential {
    type Error = CredentialError;
    fn try_from(r: RawCredential) -> Result<Self, Self::Error> {
        Credential::new(r.kind, r.valid_from, r.valid_to)
    }
}

/// A credential whose dates make no sense. API code `invalid_validity` (422).
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error(
    "{kind} valid_to ({}) must be after valid_from ({}); check the dates on the document",
    valid_to.to_rfc3339(),
    valid_from.to_rfc3339()
)]
pub struct CredentialError {
    /// The credential's kind.
    pub kind: CredentialKind,
    /// Start of validity, epoch ms.
    pub valid_from: Timestamp,
    /// The offending end of validity, epoch ms.
    pub valid_to: Timestamp,
}

impl CredentialError {
    /// Stable machine code: `invalid_validity`.
    pub fn code(&self) -> &'static str {
        "invalid_validity"
    }
}

impl Credential {
    /// A credential valid on `[valid_from, valid_to)` (epoch ms); `None` = never expires.
    ///
    /// # Errors
    /// [`CredentialError`] when `valid_to <= valid_from` (an empty validity).
    pub fn new(
        kind: CredentialKind,
        valid_from: Timestamp,
        valid_to: Option<Timestamp>,
    ) -> Result<Self, CredentialError> {
        match valid_to {
            Some(to) if to <= valid_from => Err(CredentialError {
                kind,
                valid_from,
                valid_to: to,
            }),
            _ => Ok(Self {
                kind,
                valid_from,
                valid_to,
            }),
        }
    }

    /// What the credential is.
    pub fn kind(&self) -> CredentialKind {
        self.kind
    }

    /// First instant of validity (inclusive), epoch ms.
    pub fn valid_from(&self) -> Timestamp {
        self.valid_from
    }

    /// First instant it is no longer valid (exclusive end), epoch ms; `None` = no expiry.
    pub fn valid_to(&self) -> Option<Timestamp> {
        self.valid_to
    }

    /// Whether `at` lies in `[valid_from, valid_to)`.
    pub fn is_valid_at(&self, at: Timestamp) -> bool {
        self.valid_from <= at && self.valid_to.is_none_or(|to| at < to)
    }
}

/// What the eligibility rule needs to know about a volunteer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolunteerEligibility {
    /// Current vetting state; only [`VettingState::Active`] may serve.
    pub vetting: VettingState,
    /// All the volunteer's credentials, current, past and future, any order.
    pub credentials: Vec<Credential>,
}

/// What a catalogue item (`service_item`) demands of a volunteer beyond the
/// base credentials.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemRequirements {
    /// Qualifications that must all be held, each by a credential valid at
    /// the service time. Empty for items anyone active may do (errands).
    pub qualifications: BTreeSet<Qualification>,
}

impl ItemRequirements {
    /// Requirements from a list of qualifications (duplicates collapse).
    pub fn new(qualifications: impl IntoIterator<Item = Qualification>) -> Self {
        Self {
            qualifications: qualifications.into_iter().collect(),
        }
    }
}

/// One reason a volunteer may not serve an item at an instant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum IneligibleReason {
    /// The vetting state is not active.
    NotActive {
        /// The volunteer's state.
        state: VettingState,
    },
    /// No credential of this kind was ever valid up to the instant, and none
    /// is scheduled to start.
    Missing {
        /// The missing kind.
        kind: CredentialKind,
    },
    /// The latest credential of this kind ended at or before the instant
    /// and no later one exists.
    Expired {
        /// The expired kind.
        kind: CredentialKind,
        /// When it stopped being valid, epoch ms.
        valid_to: Timestamp,
    },
    /// A credential of this kind exists but only starts after the instant
    /// (e.g. a renewed policy uploaded in advance with a gap).
    NotYetValid {
        /// The kind.
        kind: CredentialKind,
        /// When the earliest future one starts, epoch ms.
        valid_from: Timestamp,
    },
}

impl IneligibleReason {
    /// Stable machine code: `not_active`, or `<what>_<problem>` where what is
    /// `training`, `agreement`, `insurance` or `qualification`, and problem
    /// is `missing`, `expired` or `not_yet_valid` (e.g. `insurance_expired`,
    /// `qualification_missing`; the kind says which qualification).
    pub fn code(&self) -> &'static str {
        match self {
            IneligibleReason::NotActive { .. } => "not_active",
            IneligibleReason::Missing { kind } => kind.reason_codes()[0],
            IneligibleReason::Expired { kind, .. } => kind.reason_codes()[1],
            IneligibleReason::NotYetValid { kind, .. } => kind.reason_codes()[2],
        }
    }
}

impl fmt::Display for IneligibleReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IneligibleReason::NotActive { state } => write!(
                f,
                "vetting state is {state}, not active; finish vetting or reinstate the volunteer"
            ),
            IneligibleReason::Missing { kind } => {
                write!(f, "no {kind} on file; record one with its validity dates")
            }
            IneligibleReason::Expired { kind, valid_to } => write!(
                f,
                "{kind} expired at {}; record the renewed one",
                valid_to.to_rfc3339()
            ),
            IneligibleReason::NotYetValid { kind, valid_from } => write!(
                f,
                "{kind} only becomes valid at {}",
                valid_from.to_rfc3339()
            ),
        }
    }
}

/// Why a volunteer may not serve an item: every failed condition, never empty,
/// in a stable order (vetting state, then base credentials in
/// [`CredentialKind::BASE`] order, then required qualifications in
/// [`Qualification`] order), so coordinators see all fixes at once.
#[derive(Clone, Debug, Error, PartialEq, Eq, Serialize, Deserialize)]
#[error("volunteer is not eligible: {}", join_reasons(.reasons))]
pub struct Ineligible {
    /// The failed conditions (at least one).
    pub reasons: Vec<IneligibleReason>,
}

fn join_reasons(reasons: &[IneligibleReason]) -> String {
    reasons
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Ineligible {
    /// Machine codes of all reasons, in order.
    pub fn codes(&self) -> Vec<&'static str> {
        self.reasons.iter().map(IneligibleReason::code).collect()
    }
}

/// Checks one required credential kind at `at`; `None` when a credential of
/// that kind is valid. Precedence when none is valid: a future one
/// (not_yet_valid: the fix is to wait) over an expired one (the fix is to
/// renew) over nothing (missing).
fn check_kind(
    credentials: &[Credential],
    kind: CredentialKind,
    at: Timestamp,
) -> Option<IneligibleReason> {
    let of_kind = credentials.iter().filter(|c| c.kind == kind);
    if of_kind.clone().any(|c| c.is_valid_at(at)) {
        return None;
    }
    if let Some(valid_from) = of_kind
        .clone()
        .filter(|c| c.valid_from > at)
        .map(|c| c.valid_from)
        .min()
    {
        return Some(IneligibleReason::NotYetValid { kind, valid_from });
    }
    match of_kind.filter_map(|c| c.valid_to).max() {
        Some(valid_to) => Some(IneligibleReason::Expired { kind, valid_to }),
        None => Some(IneligibleReason::Missing { kind }),
    }
}

/// The single eligibility truth the dispatcher uses: may `volunteer` serve an
/// item with `item`'s requirements at instant `at` (epoch ms, normally the
/// order's service start)? Eligible when the vetting state is active, AND
/// the training certificate, service agreement and insurance are each valid
/// at `at` (so one expired insurance policy blocks every item at once), AND
/// every qualification the item requires is held by a credential valid at
/// `at`. Validity is half-open: a credential with `valid_to = T` serves at
/// `T − 1 ms` and not at `T`. Source: SPEC.md, "Vetting" and "Dispatch".
///
/// Distance, duty, scope and load are the dispatcher's other filters, not this one.
///
/// # Errors
/// [`Ineligible`] listing every failed condition with a machine code.
pub fn is_eligible(
    volunteer: &VolunteerEligibility,
    item: &ItemRequirements,
    at: Timestamp,
) -> Result<(), Ineligible> {
    let mut reasons = Vec::new();
    if volunteer.vetting != VettingState::Active {
        reasons.push(IneligibleReason::NotActive {
            state: volunteer.vetting,
        });
    }
    let needed = CredentialKind::BASE
        .into_iter()
        .chain(item.qualifications.iter().map(|&q| CredentialKind::from(q)));
    reasons.extend(needed.filter_map(|k| check_kind(&volunteer.credentials, k, at)));
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(Ineligible { reasons })
    }
}

/// Default look-ahead of the coordinator's "expiring soon" list, in days.
pub const DEFAULT_EXPIRING_WITHIN_DAYS: u32 = 14;

/// Credentials that are valid at `now` but expire within `within_days` days
/// of 24 h (`valid_to` in `(now, now + within_days]`), soonest first; pass
/// [`DEFAULT_EXPIRING_WITHIN_DAYS`] for the usual list.
///
/// A credential is left out when another of the same kind is already valid
/// at its `valid_to` (the renewal is on file, nothing to chase). Already
/// expired credentials are not listed here; [`is_eligible`] reports them.
pub fn expiring(credentials: &[Credential], now: Timestamp, within_days: u32) -> Vec<&Credential> {
    let horizon = now.plus_days(i64::from(within_days));
    let mut out: Vec<&Credential> = credentials
        .iter()
        .filter(|c| c.is_valid_at(now))
        .filter(|c| c.valid_to.is_some_and(|to| to <= horizon))
        .filter(|c| {
            let to = c.valid_to.unwrap_or(now);
            !credentials
                .iter()
                .any(|other| other.kind == c.kind && other.is_valid_at(to))
        })
        .collect();
    out.sort_by_key(|c| (c.valid_to, c.kind));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: Timestamp = Timestamp(1_581_465_600_000); // 2020-02-12T00:00:00Z
    const YEAR_MS: i64 = 365 * Timestamp::DAY_MS;

    fn cred(kind: CredentialKind, from: Timestamp, to: Option<Timestamp>) -> Credential {
        Credential::new(kind, from, to).unwrap()
    }

    /// An active volunteer with base credentials valid for a year from T0 and
    /// a driving licence valid for ten years.
    fn ready() -> VolunteerEligibility {
        let mut credentials: Vec<Credential> = CredentialKind::BASE
            .into_iter()
            .map(|k| cred(k, T0, Some(T0.plus_ms(YEAR_MS))))
            .collect();
        credentials.push(cred(
            CredentialKind::DrivingLicence,
            T0.plus_days(-100),
            Some(T0.plus_ms(10 * YEAR_MS)),
        ));
        VolunteerEligibility {
            vetting: VettingState::Active,
            credentials,
        }
    }

    fn ride() -> ItemRequirements {
        ItemRequirements::new([Qualification::DrivingLicence])
    }

    #[test]
    fn ready_volunteer_is_eligible() {
        assert_eq!(is_eligible(&ready(), &ride(), T0.plus_days(1)), Ok(()));
        assert_eq!(
            is_eligible(&ready(), &ItemRequirements::default(), T0),
            Ok(())
        );
    }

    #[test]
    fn eligibility_flips_exactly_at_expiry() {
        let mut v = ready();
        let expiry = T0.plus_days(30);
        v.credentials
            .retain(|c| c.kind() != CredentialKind::Insurance);
        v.credentials
            .push(cred(CredentialKind::Insurance, T0, Some(expiry)));
        assert_eq!(is_eligible(&v, &ride(), expiry.plus_ms(-1)), Ok(()));
        let e = is_eligible(&v, &ride(), expiry).unwrap_err();
        assert_eq!(
            e.reasons,
            vec![IneligibleReason::Expired {
                kind: CredentialKind::Insurance,
                valid_to: expiry
            }]
        );
        assert_eq!(e.codes(), ["insurance_expired"]);
        // Validity starts inclusively.
        assert_eq!(is_eligible(&v, &ride(), T0), Ok(()));
        assert!(is_eligible(&v, &ride(), T0.plus_ms(-1)).is_err());
    }

    #[test]
    fn expired_insurance_blocks_every_item() {
        let mut v = ready();
        v.credentials
            .retain(|c| c.kind() != CredentialKind::Insurance);
        v.credentials
            .push(cred(CredentialKind::Insurance, T0, Some(T0.plus_days(1))));
        let later = T0.plus_days(2);
        for item in [ItemRequirements::default(), ride()] {
            assert_eq!(
                is_eligible(&v, &item, later).unwrap_err().codes(),
                ["insurance_expired"]
            );
        }
    }

    #[test]
    fn reports_every_reason_in_stable_order() {
        let v = VolunteerEligibility {
            vetting: VettingState::Suspended,
            credentials: vec![cred(CredentialKind::Insurance, T0, None)],
        };
        let item = ItemRequirements::new([Qualification::Teacher, Qualification::FirstAid]);
        let e = is_eligible(&v, &item, T0).unwrap_err();
        assert_eq!(
            e.codes(),
            [
                "not_active",
                "training_missing",
                "agreement_missing",
                "qualification_missing",
                "qualification_missing"
            ]
        );
        assert_eq!(
            e.reasons[3],
            IneligibleReason::Missing {
                kind: CredentialKind::Teacher
            }
        );
        assert_eq!(
            e.reasons[4],
            IneligibleReason::Missing {
                kind: CredentialKind::FirstAid
            }
        );
        assert!(
            e.to_string()
                .starts_with("volunteer is not eligible: vetting state is suspended, not active; ")
        );
    }

    #[test]
    fn missing_qualification_names_it() {
        let item = ItemRequirements::new([Qualification::Counsellor]);
        let e = is_eligible(&ready(), &item, T0).unwrap_err();
        assert_eq!(
            e.reasons,
            vec![IneligibleReason::Missing {
                kind: CredentialKind::Counsellor
            }]
        );
        assert_eq!(
            e.to_string(),
            "volunteer is not eligible: no counsellor on file; record one with its validity dates"
        );
    }

    #[test]
    fn future_renewal_is_not_yet_valid_and_any_valid_one_suffices() {
        let mut v = ready();
        v.credentials
            .retain(|c| c.kind() != CredentialKind::ServiceAgreement);
        let gap_end = T0.plus_days(10);
        v.credentials.push(cred(
            CredentialKind::ServiceAgreement,
            T0,
            Some(T0.plus_days(5)),
        ));
        v.credentials
            .push(cred(CredentialKind::ServiceAgreement, gap_end, None));
        assert_eq!(is_eligible(&v, &ride(), T0.plus_days(4)), Ok(()));
        assert_eq!(
            is_eligible(&v, &ride(), T0.plus_days(6))
                .unwrap_err()
                .reasons,
            vec![IneligibleReason::NotYetValid {
                kind: CredentialKind::ServiceAgreement,
                valid_from: gap_end
            }]
        );
        assert_eq!(is_eligible(&v, &ride(), gap_end), Ok(()));
    }

    #[test]
    fn credential_rejects_empty_validity() {
        let e = Credential::new(CredentialKind::Insurance, T0, Some(T0)).unwrap_err();
        assert_eq!(e.code(), "invalid_validity");
        assert!(e.to_string().contains("valid_to"), "{e}");
        let json = r#"{"kind":"insurance","valid_from":10,"valid_to":5}"#;
        assert!(serde_json::from_str::<Credential>(json).is_err());
        let ok = r#"{"kind":"first_aid","valid_from":10,"valid_to":null}"#;
        let c: Credential = serde_json::from_str(ok).unwrap();
        assert_eq!(c.kind(), CredentialKind::FirstAid);
        assert!(c.is_valid_at(Timestamp(i64::MAX)));
    }

    #[test]
    fn expiring_lists_soonest_first_and_skips_renewed() {
        let now = T0;
        let soon = cred(
            CredentialKind::Insurance,
            T0.plus_days(-300),
            Some(now.plus_days(3)),
        );
        let edge = cred(
            CredentialKind::FirstAid,
            T0.plus_days(-1),
            Some(now.plus_days(14)),
        );
        let later = cred(
            CredentialKind::Teacher,
            T0.plus_days(-1),
            Some(now.plus_days(15)),
        );
        let expired = cred(CredentialKind::Language, T0.plus_days(-9), Some(now));
        let renewed_old = cred(
            CredentialKind::ServiceAgreement,
            T0.plus_days(-300),
            Some(now.plus_days(2)),
        );
        let renewed_new = cred(CredentialKind::ServiceAgreement, now.plus_days(2), None);
        let all = vec![
            later,
            edge.clone(),
            expired,
            soon.clone(),
            renewed_old,
            renewed_new,
        ];
        let got = expiring(&all, now, DEFAULT_EXPIRING_WITHIN_DAYS);
        assert_eq!(got, vec![&soon, &edge]);
        assert!(expiring(&all, now, 0).is_empty());
    }

    #[test]
    fn text_round_trips_and_matches_serde() {
        for k in CredentialKind::ALL {
            assert_eq!(k.as_str().parse::<CredentialKind>(), Ok(k));
            assert_eq!(
                serde_json::to_string(&k).unwrap(),
                format!("\"{}\"", k.as_str())
            );
            assert_eq!(
                k.qualification().is_none(),
                CredentialKind::BASE.contains(&k)
            );
        }
        for q in Qualification::ALL {
            assert_eq!(q.as_str().parse::<Qualification>(), Ok(q));
            assert_eq!(
                serde_json::to_string(&q).unwrap(),
                format!("\"{}\"", q.as_str())
            );
            assert_eq!(CredentialKind::from(q).qualification(), Some(q));
        }
        assert!(Qualification::parse("insurance").is_err());
        let r = IneligibleReason::Expired {
            kind: CredentialKind::Insurance,
            valid_to: Timestamp(5),
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"reason": "expired", "kind": "insurance", "valid_to": 5})
        );
    }

    proptest! {
        /// A single credential gates eligibility exactly on [valid_from, valid_to).
        #[test]
        fn eligible_iff_inside_half_open_validity(
            from in -1_000_000i64..1_000_000,
            len in 1i64..1_000_000,
            at in -3_000_000i64..3_000_000,
        ) {
            let (from, to) = (T0.plus_ms(from), T0.plus_ms(from + len));
            let mut v = ready();
            v.credentials.retain(|c| c.kind() != CredentialKind::Insurance);
            v.credentials.push(cred(CredentialKind::Insurance, from, Some(to)));
            let at = T0.plus_ms(at);
            let ok = is_eligible(&v, &ItemRequirements::default(), at).is_ok();
            prop_assert_eq!(ok, from <= at && at < to && at >= T0);
        }
    }
}
