//! What `Ready` means: the Secret holds a valid certificate for the current spec, as
//! in cert-manager. Trouble reaching DigiCert (no account, no key, DigiCert down, a
//! refused reissue) shows in the `DigiCert` and `Issuing` conditions and in events,
//! and turns Ready false only once the certificate expires, is revoked or no longer
//! matches the spec.

use time::OffsetDateTime;

use super::{ReissueReason, SecretState, expiry, reissue_reason};
use crate::crd::{DigicertOrderSpec, Issuance};

/// Whether the Secret serves the spec now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// A valid certificate for the spec, until `not_after`.
    Ready { not_after: OffsetDateTime },
    /// Why not: (reason, message).
    NotReady { reason: String, message: String },
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        matches!(self, Readiness::Ready { .. })
    }
}

/// The readiness of the Secret's certificate for `spec`: it must be the order's,
/// belong to its key, carry the spec's names (a duplicate carries the order's) and
/// key type, be neither revoked nor expired. Being due for renewal does not make it
/// less ready.
pub fn certificate_readiness(
    spec: &DigicertOrderSpec,
    secret: &SecretState,
    revoked: bool,
    order_ends: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Readiness {
    let not_ready = |reason: &str, message: String| Readiness::NotReady {
        reason: reason.to_string(),
        message,
    };
    let reason = match spec.issuance {
        Issuance::Reissue => reissue_reason(spec, secret, None, None, order_ends, now),
        // A duplicate's names are the order's, not the spec's: only what makes any
        // certificate unusable counts.
        Issuance::Duplicate => match secret {
            SecretState::Valid(s) if !s.key_matches => Some(ReissueReason::Invalid(
                "tls.key does not belong to tls.crt".into(),
            )),
            SecretState::Valid(s) if s.order_id.is_some_and(|id| id != spec.order_id) => {
                Some(ReissueReason::OrderChanged)
            }
            SecretState::Valid(s) => s.foreign.clone().map(ReissueReason::Foreign),
            SecretState::Missing => Some(ReissueReason::Missing),
            SecretState::Invalid(why) => Some(ReissueReason::Invalid(why.clone())),
        },
    };
    let stored = match (reason, secret) {
        (None | Some(ReissueReason::Renewal), SecretState::Valid(stored)) => stored,
        (Some(reason), _) => return not_ready(reason.as_str(), reason.describe()),
        (None, _) => return not_ready("Missing", ReissueReason::Missing.describe()),
    };
    if revoked {
        return not_ready(
            ReissueReason::Revoked.as_str(),
            ReissueReason::Revoked.describe(),
        );
    }
    if let Some((reason, message)) = expiry(stored.leaf.not_after, order_ends, now) {
        return not_ready(reason, message);
    }
    Readiness::Ready {
        not_after: stored.leaf.not_after,
    }
}

/// A change of the Ready condition: true or false, the reason, the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadyChange {
    pub ready: bool,
    pub reason: String,
    pub message: String,
}

/// Whether Ready stays true through a failed DigiCert call: Ready is about the
/// Secret, so a good certificate stays Ready through DigiCert's trouble. Before the
/// Secret was judged in this reconcile, what status says counts, unless the failure
/// will not heal by itself.
pub fn ready_through_failure(
    readiness: Option<&Readiness>,
    permanent: bool,
    ready_in_status: Option<bool>,
) -> bool {
    match readiness {
        Some(readiness) => readiness.is_ready(),
        None => !permanent && ready_in_status == Some(true),
    }
}

/// Ready while the order may not use DigiCert (no account, not granted, not this
/// resource's order): it follows the Secret. A good certificate stays (or becomes)
/// Ready; without a certificate the gate's reason is why none comes; a bad one says
/// it cannot be replaced now. `None`: Ready is right as it is.
pub fn ready_when_blocked(
    readiness: &Readiness,
    ready_now: bool,
    blocked_reason: &str,
    blocked_message: &str,
) -> Option<ReadyChange> {
    let change = |ready, reason: &str, message: String| {
        Some(ReadyChange {
            ready,
            reason: reason.to_string(),
            message,
        })
    };
    match readiness {
        Readiness::Ready { .. } if ready_now => None,
        Readiness::Ready { not_after } => change(
            true,
            "Issued",
            format!(
                "the Secret holds a certificate valid until {}; DigiCert cannot be used now (see the DigiCert condition)",
                super::super::status::rfc3339(*not_after)
            ),
        ),
        Readiness::NotReady { reason, .. } if reason == "Missing" => {
            change(false, blocked_reason, blocked_message.to_string())
        }
        Readiness::NotReady { reason, message } => change(
            false,
            reason,
            format!("{message}; it cannot be replaced now: {blocked_message}"),
        ),
    }
}

/// Whether an idle order (the Secret serves the spec) turns Ready true: unless it is
/// already (other than held), the order was revoked at DigiCert (its check set
/// Ready false), or the certificate has expired.
pub fn ready_when_idle(
    ready: Option<(bool, &str)>,
    order_revoked: bool,
    not_after: OffsetDateTime,
    now: OffsetDateTime,
) -> bool {
    ready.is_none_or(|(ready, reason)| !ready || reason == "RenewalHeld")
        && !order_revoked
        && now < not_after
}

/// What Ready says while a renewal falls due and reissues are held: by a cancel
/// request, or by a denied reissue request (which holds the spec the same way).
pub fn renewal_held_message(
    renewal_time: Option<&str>,
    not_after: &str,
    denied: bool,
    renew_annotation: &str,
) -> String {
    format!(
        "the renewal due at {} is held by {}; the certificate expires at {not_after}: request a renewal ({renew_annotation}) or change the spec to resume",
        renewal_time.unwrap_or("its renewal time"),
        if denied {
            "a denied reissue request"
        } else {
            "a cancel request"
        },
    )
}

#[cfg(test)]
mod ready_tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn ready_stays_true_through_a_failure_only_with_a_good_certificate() {
        let good = Readiness::Ready {
            not_after: datetime!(2027-01-01 0:00 UTC),
        };
        let bad = Readiness::NotReady {
            reason: "Missing".into(),
            message: String::new(),
        };
        // (readiness judged, permanent, Ready in status, want)
        let cases = [
            (Some(&good), true, None, true),
            (Some(&bad), false, Some(true), false),
            (None, false, Some(true), true),
            (None, true, Some(true), false),
            (None, false, Some(false), false),
            (None, false, None, false),
        ];
        for (readiness, permanent, in_status, want) in cases {
            assert_eq!(
                ready_through_failure(readiness, permanent, in_status),
                want,
                "{readiness:?} {permanent} {in_status:?}"
            );
        }
    }

    #[test]
    fn ready_follows_the_secret_while_the_order_is_blocked() {
        let not_after = datetime!(2027-01-01 0:00 UTC);
        let good = Readiness::Ready { not_after };
        let missing = Readiness::NotReady {
            reason: "Missing".into(),
            message: "no certificate".into(),
        };
        let expired = Readiness::NotReady {
            reason: "Expired".into(),
            message: "the certificate expired".into(),
        };
        assert_eq!(ready_when_blocked(&good, true, "NoAccount", "x"), None);
        let became = ready_when_blocked(&good, false, "NoAccount", "x").unwrap();
        assert!(became.ready);
        assert_eq!(became.reason, "Issued");
        assert!(
            became.message.contains("2027-01-01T00:00:00Z"),
            "{became:?}"
        );
        assert_eq!(
            ready_when_blocked(&missing, false, "NoAccount", "no account may be used"),
            Some(ReadyChange {
                ready: false,
                reason: "NoAccount".into(),
                message: "no account may be used".into(),
            })
        );
        assert_eq!(
            ready_when_blocked(&expired, true, "NoAccount", "no account may be used"),
            Some(ReadyChange {
                ready: false,
                reason: "Expired".into(),
                message:
                    "the certificate expired; it cannot be replaced now: no account may be used"
                        .into(),
            })
        );
    }

    #[test]
    fn an_idle_order_turns_ready_unless_already_revoked_or_expired() {
        let now = datetime!(2026-06-01 0:00 UTC);
        let later = datetime!(2026-09-01 0:00 UTC);
        // (Ready now, order revoked, not after, want)
        let cases = [
            (None, false, later, true),
            (Some((false, "Missing")), false, later, true),
            (Some((true, "Issued")), false, later, false),
            (Some((true, "RenewalHeld")), false, later, true),
            (None, true, later, false),
            (None, false, now, false),
        ];
        for (ready, revoked, not_after, want) in cases {
            assert_eq!(
                ready_when_idle(ready, revoked, not_after, now),
                want,
                "{ready:?} {revoked} {not_after}"
            );
        }
    }

    #[test]
    fn a_held_renewal_says_what_holds_it() {
        let cancel = renewal_held_message(
            Some("2027-03-01T00:00:00Z"),
            "2027-04-01T00:00:00Z",
            false,
            "x/renew",
        );
        assert_eq!(
            cancel,
            "the renewal due at 2027-03-01T00:00:00Z is held by a cancel request; the certificate expires at 2027-04-01T00:00:00Z: request a renewal (x/renew) or change the spec to resume"
        );
        let denied = renewal_held_message(None, "2027-04-01T00:00:00Z", true, "x/renew");
        assert!(
            denied.starts_with(
                "the renewal due at its renewal time is held by a denied reissue request;"
            ),
            "{denied}"
        );
    }
}
