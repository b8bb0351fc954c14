//! Following a reissue (or duplicate request) DigiCert has: what the order and its
//! reissue list say about it, and so what the operator does next.

use time::OffsetDateTime;

use crate::certcentral::{OrderRequest, OrderStatus, ReissueStatus, RequestStatus};

/// How long a fresh request may be missing from the reissue list before it counts as
/// gone: DigiCert may not show it everywhere at once.
pub const LISTING_GRACE: time::Duration = time::Duration::minutes(2);

/// What the order's own answer says about the reissue in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderSays {
    /// The order's current certificate is ours, issued: write it.
    Issued(u64),
    /// The order waits on a reissue: ours.
    Pending,
    /// Neither: ours was rejected, canceled or replaced; the reissue list says which.
    LookInList,
}

pub fn order_says(current_is_ours: bool, certificate_id: u64, status: &OrderStatus) -> OrderSays {
    match status {
        OrderStatus::ReissuePending => OrderSays::Pending,
        _ if current_is_ours => OrderSays::Issued(certificate_id),
        _ => OrderSays::LookInList,
    }
}

/// What the reissue list (or the list of duplicates) says about ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListSays {
    /// Issued, and not the certificate the Secret holds already: write it.
    Issued(u64),
    /// Still pending, or too fresh to be listed yet: wait.
    Pending,
    /// Rejected, or gone: start over after a back-off. The word for what happened.
    Rejected(&'static str),
}

/// `ours`: our entry in the list (id and status), if listed; `known`: the certificate
/// the Secret holds; `submitted`: when the request was sent.
pub fn list_says(
    ours: Option<(u64, ReissueStatus)>,
    known: Option<u64>,
    submitted: OffsetDateTime,
    now: OffsetDateTime,
) -> ListSays {
    match ours {
        Some((id, ReissueStatus::Issued)) if known != Some(id) => ListSays::Issued(id),
        Some((_, ReissueStatus::Pending)) => ListSays::Pending,
        None if now - submitted < LISTING_GRACE => ListSays::Pending,
        Some(_) => ListSays::Rejected("rejected"),
        None => ListSays::Rejected("not found"),
    }
}

/// The request id of an adopted reissue (one found after a crash, without its id):
/// the order's pending request, if the order waits on one. Revoke and duplicate
/// requests are not the reissue's.
pub fn adopted_request(
    request_id: Option<u64>,
    order_status: &OrderStatus,
    requests: &[OrderRequest],
) -> Option<u64> {
    if request_id.is_some() || *order_status != OrderStatus::ReissuePending {
        return None;
    }
    requests
        .iter()
        .find(|r| {
            matches!(r.status, RequestStatus::Pending | RequestStatus::Submitted)
                && r.kind
                    .as_deref()
                    .is_none_or(|k| k != "revoke" && k != "duplicate")
        })
        .map(|r| r.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_order_says_issued_pending_or_look_in_the_list() {
        let cases = [
            (true, OrderStatus::Issued, OrderSays::Issued(7)),
            (true, OrderStatus::ReissuePending, OrderSays::Pending),
            (false, OrderStatus::ReissuePending, OrderSays::Pending),
            (false, OrderStatus::Issued, OrderSays::LookInList),
            (false, OrderStatus::Revoked, OrderSays::LookInList),
        ];
        for (ours, status, want) in cases {
            assert_eq!(order_says(ours, 7, &status), want, "{ours} {status:?}");
        }
    }

    #[test]
    fn the_list_says_issued_pending_or_rejected() {
        let now = datetime!(2026-06-01 12:00 UTC);
        let fresh = now - time::Duration::seconds(30);
        let old = now - time::Duration::minutes(5);
        // (our entry, known certificate, submitted, want)
        let cases = [
            (
                Some((9, ReissueStatus::Issued)),
                Some(8),
                old,
                ListSays::Issued(9),
            ),
            (
                Some((9, ReissueStatus::Issued)),
                None,
                old,
                ListSays::Issued(9),
            ),
            // Already written: what the Secret holds is no new answer.
            (
                Some((9, ReissueStatus::Issued)),
                Some(9),
                old,
                ListSays::Rejected("rejected"),
            ),
            (
                Some((9, ReissueStatus::Pending)),
                None,
                old,
                ListSays::Pending,
            ),
            (None, None, fresh, ListSays::Pending),
            (None, None, old, ListSays::Rejected("not found")),
            (
                Some((9, ReissueStatus::Rejected)),
                None,
                fresh,
                ListSays::Rejected("rejected"),
            ),
            (
                Some((9, ReissueStatus::Revoked)),
                None,
                old,
                ListSays::Rejected("rejected"),
            ),
        ];
        for (ours, known, submitted, want) in cases {
            assert_eq!(
                list_says(ours.clone(), known, submitted, now),
                want,
                "{ours:?} {known:?} {submitted}"
            );
        }
    }

    #[test]
    fn an_adopted_reissue_takes_the_orders_pending_reissue_request() {
        let request = |id, status, kind: Option<&str>| OrderRequest {
            id,
            status,
            kind: kind.map(str::to_string),
            date: None,
        };
        let requests = [
            request(1, RequestStatus::Pending, Some("revoke")),
            request(2, RequestStatus::Approved, None),
            request(3, RequestStatus::Pending, Some("duplicate")),
            request(4, RequestStatus::Submitted, Some("reissue")),
        ];
        let pending = OrderStatus::ReissuePending;
        assert_eq!(adopted_request(None, &pending, &requests), Some(4));
        assert_eq!(adopted_request(Some(2), &pending, &requests), None);
        assert_eq!(adopted_request(None, &OrderStatus::Issued, &requests), None);
        assert_eq!(adopted_request(None, &pending, &requests[..3]), None);
    }
}
