//! What a reconcile of a live order sets out to do: which instructions of the
//! resource are new (a spec change, a renewal or cancel request), whether the spec
//! can be acted upon at all, and whether a reissue is due, held or not needed.

use time::OffsetDateTime;

use super::{ReissueReason, SecretState};
use crate::crd::{DigicertOrderSpec, DigicertOrderStatus, RotationPolicy};
use crate::keys::KeyKind;

/// What the resource asks for now, against what status says was taken in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instructions {
    /// The renewal request annotation as it is now.
    pub renew_request: Option<String>,
    /// A renewal request not answered yet: it starts a reissue.
    pub manual: bool,
    /// A new spec generation or a new renewal request starts afresh: no old back-off.
    pub clear_failures: bool,
    /// A new renewal request ends a hold (a canceled reissue's spec).
    pub release_hold: bool,
}

pub fn instructions(
    generation: Option<i64>,
    observed_generation: Option<i64>,
    renew_request: Option<&str>,
    last_renew_request: Option<&str>,
) -> Instructions {
    let spec_changed = observed_generation != generation;
    let manual = renew_request.is_some_and(|r| !r.is_empty() && Some(r) != last_renew_request);
    Instructions {
        renew_request: renew_request.map(str::to_string),
        manual,
        clear_failures: spec_changed || manual,
        release_hold: manual,
    }
}

/// Whether the cancel annotation is a request not answered yet.
pub fn cancel_requested(cancel_request: Option<&str>, last_cancel_request: Option<&str>) -> bool {
    cancel_request.is_some_and(|c| !c.is_empty()) && cancel_request != last_cancel_request
}

/// Why the operator cannot act upon a spec the API server let through, if it cannot.
pub fn spec_refusal(
    name: &str,
    spec: &DigicertOrderSpec,
    status: &DigicertOrderStatus,
) -> Option<String> {
    // The name goes into a label on the Secrets (at most 63 characters).
    if name.len() > 63 {
        return Some("the DigicertOrder's name must be at most 63 characters".to_string());
    }
    super::validate_spec(spec, status).err()
}

/// Whether a reissue is due for an order that takes reissues (not duplicates).
#[derive(Clone, Debug, PartialEq)]
pub enum Trigger {
    /// Nothing to reissue: the Secret serves the spec.
    None,
    /// A reissue is due, and the spec is held (its reissue was canceled): say why
    /// and wait for a spec change or a renewal request.
    Held(ReissueReason),
    /// Start a reissue.
    Reissue(ReissueReason),
}

/// The facts a trigger is decided on.
pub struct TriggerInput<'a> {
    pub spec: &'a DigicertOrderSpec,
    pub state: &'a SecretState,
    /// Whether DigiCert revoked the certificate in the Secret.
    pub revoked: bool,
    pub renew_request: Option<&'a str>,
    pub last_renew_request: Option<&'a str>,
    pub order_ends: Option<OffsetDateTime>,
    /// The spec generation a cancel held, and the resource's generation now.
    pub hold_generation: Option<i64>,
    pub generation: Option<i64>,
}

/// A revoked certificate is replaced first; otherwise the reasons of
/// [`super::reissue_reason`]. A held generation holds whatever the reason.
pub fn trigger(input: &TriggerInput, now: OffsetDateTime) -> Trigger {
    let reason = if input.revoked {
        Some(ReissueReason::Revoked)
    } else {
        super::reissue_reason(
            input.spec,
            input.state,
            input.renew_request,
            input.last_renew_request,
            input.order_ends,
            now,
        )
    };
    let held = input
        .hold_generation
        .is_some_and(|g| Some(g) == input.generation);
    match reason {
        None => Trigger::None,
        Some(reason) if held => Trigger::Held(reason),
        Some(reason) => Trigger::Reissue(reason),
    }
}

/// Whether a reissue keeps the key pair in the Secret: only when the spec says never
/// to rotate, and only a key of the kind the spec asks for.
pub fn keeps_key(policy: RotationPolicy, stored: Option<KeyKind>, wanted: KeyKind) -> bool {
    policy == RotationPolicy::Never && stored == Some(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn instructions_say_what_is_new() {
        // (generation, observed, renew annotation, last answered) → (manual, clear, release)
        let cases = [
            (Some(1), Some(1), None, None, (false, false, false)),
            (Some(2), Some(1), None, None, (false, true, false)),
            (Some(1), None, None, None, (false, true, false)),
            (Some(1), Some(1), Some("a"), None, (true, true, true)),
            (
                Some(1),
                Some(1),
                Some("a"),
                Some("a"),
                (false, false, false),
            ),
            (Some(1), Some(1), Some("b"), Some("a"), (true, true, true)),
            // An emptied annotation is no request.
            (Some(1), Some(1), Some(""), Some("a"), (false, false, false)),
            (Some(2), Some(1), Some("a"), Some("a"), (false, true, false)),
        ];
        for (generation, observed, renew, last, want) in cases {
            let got = instructions(generation, observed, renew, last);
            assert_eq!(
                (got.manual, got.clear_failures, got.release_hold),
                want,
                "{generation:?} {observed:?} {renew:?} {last:?}"
            );
            assert_eq!(got.renew_request.as_deref(), renew);
        }
    }

    #[test]
    fn a_cancel_request_counts_once_and_never_empty() {
        let cases = [
            (None, None, false),
            (Some(""), None, false),
            (Some("1"), None, true),
            (Some("1"), Some("1"), false),
            (Some("2"), Some("1"), true),
        ];
        for (request, last, want) in cases {
            assert_eq!(
                cancel_requested(request, last),
                want,
                "{request:?} {last:?}"
            );
        }
    }

    fn spec() -> DigicertOrderSpec {
        serde_json::from_value(serde_json::json!({
            "orderId": 1001,
            "commonName": "example.com",
            "secretName": "tls",
        }))
        .unwrap()
    }

    #[test]
    fn a_spec_is_refused_for_a_long_name_or_what_validation_finds() {
        let status = DigicertOrderStatus::default();
        assert_eq!(spec_refusal("web", &spec(), &status), None);
        let long = "a".repeat(64);
        assert!(
            spec_refusal(&long, &spec(), &status)
                .unwrap()
                .contains("at most 63")
        );
        assert_eq!(spec_refusal(&"a".repeat(63), &spec(), &status), None);
        let mut bad = spec();
        bad.private_key.size = Some(1024);
        assert_eq!(
            spec_refusal("web", &bad, &status),
            super::super::validate_spec(&bad, &status).err()
        );
        assert!(spec_refusal("web", &bad, &status).is_some());
    }

    #[test]
    fn a_due_reissue_starts_unless_its_generation_is_held() {
        let now = datetime!(2026-06-01 0:00 UTC);
        let spec = spec();
        let missing = SecretState::Missing;
        let input = |revoked, hold: Option<i64>, state| TriggerInput {
            spec: &spec,
            state,
            revoked,
            renew_request: None,
            last_renew_request: None,
            order_ends: None,
            hold_generation: hold,
            generation: Some(3),
        };
        // (revoked, held generation, want)
        let cases = [
            (false, None, Trigger::Reissue(ReissueReason::Missing)),
            (false, Some(3), Trigger::Held(ReissueReason::Missing)),
            // A hold of an older generation holds nothing.
            (false, Some(2), Trigger::Reissue(ReissueReason::Missing)),
            (true, None, Trigger::Reissue(ReissueReason::Revoked)),
            (true, Some(3), Trigger::Held(ReissueReason::Revoked)),
        ];
        for (revoked, hold, want) in cases {
            assert_eq!(
                trigger(&input(revoked, hold, &missing), now),
                want,
                "{revoked} {hold:?}"
            );
        }
    }

    #[test]
    fn the_key_pair_is_kept_only_when_never_rotated_and_of_the_wanted_kind() {
        let p256 = KeyKind::Ecdsa(256);
        let cases = [
            (RotationPolicy::Never, Some(p256), p256, true),
            (RotationPolicy::Never, Some(KeyKind::Rsa(2048)), p256, false),
            (RotationPolicy::Never, None, p256, false),
            (RotationPolicy::Always, Some(p256), p256, false),
        ];
        for (policy, stored, wanted, want) in cases {
            assert_eq!(
                keeps_key(policy, stored, wanted),
                want,
                "{policy:?} {stored:?}"
            );
        }
    }
}
