//! Deletion: whether a DigicertOrder needs a finalizer, and how long its cleanup may
//! keep it.

use std::time::Duration;

use time::OffsetDateTime;

use crate::crd::{DeletionPolicy, DigicertOrderSpec};

/// A finalizer only where deletion has something to do at DigiCert: with `Retain`
/// nothing is done there (the pending key goes with its owner reference), so the
/// resource, and its namespace, can go even while the operator is not running.
pub fn needs_finalizer(spec: &DigicertOrderSpec) -> bool {
    spec.deletion_policy == DeletionPolicy::CancelPending
}

/// What follows a cleanup that could not reach DigiCert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AfterCleanupFailure {
    /// Try again after this long.
    Retry(Duration),
    /// The deletion has waited long enough: let the resource go.
    GiveUp,
}

/// Retries back off from 5 s to 1 min, and stop once the deletion has waited
/// `timeout` (a namespace being deleted must not hang on DigiCert).
pub fn after_cleanup_failure(
    deleting_since: OffsetDateTime,
    timeout: Duration,
    failures: u32,
    jitter: f64,
    now: OffsetDateTime,
) -> AfterCleanupFailure {
    let deadline = deleting_since + time::Duration::try_from(timeout).unwrap_or_default();
    if now >= deadline {
        return AfterCleanupFailure::GiveUp;
    }
    let wait = super::backoff(
        failures,
        Duration::from_secs(5),
        Duration::from_secs(60),
        jitter,
    );
    let left: Duration = (deadline - now).try_into().unwrap_or_default();
    // The last try comes at the deadline, not a back-off after it.
    AfterCleanupFailure::Retry(wait.min(left.max(Duration::from_secs(1))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn only_cancel_pending_needs_a_finalizer() {
        let spec = |policy: &str| -> DigicertOrderSpec {
            serde_json::from_value(serde_json::json!({
                "orderId": 1, "commonName": "example.com", "secretName": "tls",
                "deletionPolicy": policy,
            }))
            .unwrap()
        };
        assert!(!needs_finalizer(&spec("Retain")));
        assert!(needs_finalizer(&spec("CancelPending")));
    }

    #[test]
    fn cleanup_retries_back_off_and_give_up_at_the_deadline() {
        let since = datetime!(2026-01-01 0:00 UTC);
        let timeout = Duration::from_secs(15 * 60);
        let at = |s: i64| since + time::Duration::seconds(s);
        use AfterCleanupFailure::*;
        let cases = [
            (1, at(0), Retry(Duration::from_secs(5))),
            (2, at(10), Retry(Duration::from_secs(10))),
            (9, at(60), Retry(Duration::from_secs(60))),
            // Near the deadline: the last try is at the deadline.
            (9, at(15 * 60 - 20), Retry(Duration::from_secs(20))),
            (9, at(15 * 60), GiveUp),
            (1, at(3600), GiveUp),
        ];
        for (failures, now, want) in cases {
            assert_eq!(
                after_cleanup_failure(since, timeout, failures, 0.5, now),
                want,
                "{failures} at {now}"
            );
        }
    }
}
