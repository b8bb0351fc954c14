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
