//! Deletion: whether a DigicertOrder needs a finalizer, and how long its cleanup may
//! keep it.

use std::time::Duration;

use time::OffsetDateTime;

use crate::certcentral::OrderStatus;
use crate::crd::{DeletionPolicy, DigicertOrderSpec, DigicertOrderStatus};

/// A finalizer only where deletion has something to do: cancel at DigiCert
/// (`CancelPending`), or withdraw a domain validation value published for the order.
/// Otherwise (the pending key goes with its owner reference) the resource, and its
/// namespace, can go even while the operator is not running.
pub fn needs_finalizer(spec: &DigicertOrderSpec, status: Option<&DigicertOrderStatus>) -> bool {
    spec.deletion_policy == DeletionPolicy::CancelPending
        || status
            .and_then(|s| s.domain_validation.as_ref())
            .is_some_and(|d| d.challenge.is_some())
}

/// What a CancelPending deletion cancels at DigiCert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CancelOnDeletion {
    /// Something may be pending that this resource may cancel: its own reissue, sent
    /// to DigiCert, or the order where the account allows canceling orders. What
    /// DigiCert says of the order decides (`cancel_after_look`).
    LookAtOrder,
    /// Nothing; the text says why (an event).
    Nothing { warning: bool, why: String },
}

/// `holder`: this resource drives the order (its claim); `sent`: its reissue reached
/// DigiCert; `may_cancel_order`: its account allows canceling a pending order.
pub fn cancel_on_deletion(
    order_id: u64,
    holder: bool,
    sent: bool,
    may_cancel_order: bool,
    account: &str,
) -> CancelOnDeletion {
    if !holder {
        // Another DigicertOrder drives the order: nothing of it is ours.
        return CancelOnDeletion::Nothing {
            warning: false,
            why: format!(
                "order {order_id} is not driven by this DigicertOrder; nothing was canceled"
            ),
        };
    }
    if sent {
        return CancelOnDeletion::LookAtOrder;
    }
    if may_cancel_order {
        return CancelOnDeletion::LookAtOrder;
    }
    CancelOnDeletion::Nothing {
        warning: true,
        why: format!(
            "deletionPolicy CancelPending: the account {account} does not allow canceling a pending order (allowOrderCancel); order {order_id} was left as it is"
        ),
    }
}

/// Whether a deletion's cancel goes out, given the order's status at DigiCert (one
/// call cancels whatever is pending on the order): a pending *order* (pending, waiting
/// for pickup or approval) only where the account allows canceling orders, whatever
/// this resource's status says of a reissue of its own (a reissue refused because the
/// order was pending may still read as sent); a pending reissue only when this
/// resource sent it. `None`: cancel; `Some((warning, why))`: leave it, and say so.
pub fn cancel_after_look(
    order: &OrderStatus,
    own_reissue_sent: bool,
    may_cancel_order: bool,
    order_id: u64,
    account: &str,
) -> Option<(bool, String)> {
    match order {
        OrderStatus::ReissuePending if own_reissue_sent => None,
        OrderStatus::ReissuePending => Some((
            false,
            format!(
                "the reissue pending on order {order_id} is not this DigicertOrder's; nothing was canceled"
            ),
        )),
        OrderStatus::Pending | OrderStatus::WaitingPickup | OrderStatus::NeedsApproval
            if may_cancel_order =>
        {
            None
        }
        OrderStatus::Pending | OrderStatus::WaitingPickup | OrderStatus::NeedsApproval => Some((
            true,
            format!(
                "deletionPolicy CancelPending: the account {account} does not allow canceling a pending order (allowOrderCancel); order {order_id} was left as it is"
            ),
        )),
        other => Some((
            false,
            format!("order {order_id} is {other}: nothing is pending; nothing was canceled"),
        )),
    }
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

    #[test]
    fn a_deletion_cancels_a_pending_order_only_with_the_accounts_grant() {
        use OrderStatus::*;
        let cases = [
            (ReissuePending, true, false, None),
            (ReissuePending, false, true, Some(false)),
            // The order itself is pending: one cancel would end the order.
            (Pending, true, false, Some(true)),
            (Pending, false, false, Some(true)),
            (Pending, true, true, None),
            (WaitingPickup, false, true, None),
            (NeedsApproval, true, false, Some(true)),
            (Issued, true, true, Some(false)),
            (Canceled, false, true, Some(false)),
        ];
        for (order, sent, may, want) in cases {
            let got = cancel_after_look(&order, sent, may, 1001, "acct");
            assert_eq!(
                got.as_ref().map(|(w, _)| *w),
                want,
                "{order:?} sent={sent} may={may}"
            );
            if let Some((true, why)) = &got {
                assert!(why.contains("allowOrderCancel"), "{why}");
            }
        }
    }
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
        assert!(!needs_finalizer(&spec("Retain"), None));
        assert!(needs_finalizer(&spec("CancelPending"), None));
        let mut published = DigicertOrderStatus {
            domain_validation: Some(crate::crd::DomainValidationStatus {
                challenge: Some(Default::default()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(needs_finalizer(&spec("Retain"), Some(&published)));
        published.domain_validation = Some(Default::default());
        assert!(!needs_finalizer(&spec("Retain"), Some(&published)));
    }

    #[test]
    fn a_deletion_cancels_only_what_is_its_own_and_allowed() {
        use CancelOnDeletion::*;
        let nothing = |c: &CancelOnDeletion| matches!(c, Nothing { .. });
        assert!(nothing(&cancel_on_deletion(7, false, true, true, "a")));
        assert_eq!(cancel_on_deletion(7, true, true, false, "a"), LookAtOrder);
        assert_eq!(cancel_on_deletion(7, true, true, true, "a"), LookAtOrder);
        assert_eq!(cancel_on_deletion(7, true, false, true, "a"), LookAtOrder);
        match cancel_on_deletion(7, true, false, false, "us") {
            Nothing { warning, why } => {
                assert!(warning);
                assert!(
                    why.contains("allowOrderCancel") && why.contains("us"),
                    "{why}"
                );
            }
            other => panic!("{other:?}"),
        }
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
