//! Revocation: by request, and what DigiCert revokes some time after a reissue that
//! removed names (the order's earlier certificates and duplicates).

use time::{Duration, OffsetDateTime};

use crate::settings::seconds;
use crate::store::*;
use crate::wire::*;
use certcentral::duplicate::*;
use certcentral::types::*;

/// The error code for revoking while a reissue is pending (DigiCert documents the
/// refusal, not its code).
pub const REISSUE_PENDING: &str = "reissue_pending";

/// The names of `old` that `new` lacks, lower-cased, each once. Compared as sets: the
/// common name counts as one of the names wherever it stands.
pub fn names_removed(old: &[String], new: &[String]) -> Vec<String> {
    let mut removed: Vec<String> = old
        .iter()
        .map(|n| n.to_ascii_lowercase())
        .filter(|n| !new.iter().any(|m| m.eq_ignore_ascii_case(n)))
        .collect();
    removed.sort();
    removed.dedup();
    removed
}

/// Every name a certificate carries: the common name and the further names.
pub(crate) fn certificate_names(c: &Certificate) -> Vec<String> {
    std::iter::once(c.common_name.clone())
        .chain(c.dns_names.iter().cloned())
        .collect()
}

pub(crate) fn is_revocable_status(c: &Certificate) -> bool {
    c.status == ReissueStatus::Issued && c.issued.is_some() && c.revoked_at.is_none()
}

pub(crate) fn reason_name(reason: &RevocationReason) -> ApiResult<&'static str> {
    Ok(match reason {
        RevocationReason::Unspecified => "unspecified",
        RevocationReason::KeyCompromise => "keyCompromise",
        RevocationReason::AffiliationChanged => "affiliationChanged",
        RevocationReason::Superseded => "superseded",
        RevocationReason::CessationOfOperation => "cessationOfOperation",
        RevocationReason::Other(other) => {
            return Err(ApiError::bad_request(
                "invalid_revocation_reason",
                format!(
                    "Revocation reason {other:?} is not one of unspecified, keyCompromise, \
                     affiliationChanged, superseded, cessationOfOperation."
                ),
            ));
        }
    })
}

pub(crate) fn may_skip_approval(caller: &ApiKeyConfig, skip: Option<bool>) -> ApiResult<bool> {
    match skip {
        Some(true) if !caller.approver => Err(ApiError::new(
            403,
            "access_denied|missing_permission",
            "Only an administrator's key may skip the approval of a revocation.",
        )),
        Some(true) => Ok(true),
        _ => Ok(false),
    }
}

impl State {
    pub(crate) fn revocation_delay(&self, order: &Order) -> Duration {
        order
            .seed
            .revocation_delay_seconds
            .map_or(self.revocation.delay, seconds)
    }

    /// Called when `new` is issued at `at`, while the order's certificate is still the
    /// previous one: when `new` drops any of its names, every certificate of the order
    /// issued before is queued for revocation after the delay.
    pub(crate) fn schedule_revocations(&mut self, order_id: u64, new: u64, at: OffsetDateTime) {
        let Some(order) = self.orders.get(&order_id) else {
            return;
        };
        let (Some(previous), Some(issued)) = (
            self.certificates.get(&order.current_certificate),
            self.certificates.get(&new),
        ) else {
            return;
        };
        if previous.id == new {
            return;
        }
        let removed = names_removed(&certificate_names(previous), &certificate_names(issued));
        if removed.is_empty() {
            return;
        }
        let Some(revoke_at) = at.checked_add(self.revocation_delay(order)) else {
            return;
        };
        let older: Vec<u64> = order
            .certificates
            .iter()
            .copied()
            .filter(|&c| c != new)
            .filter(|c| {
                self.certificates.get(c).is_some_and(|c| {
                    is_revocable_status(c) && c.issued.as_ref().is_some_and(|i| i.date_issued <= at)
                })
            })
            .collect();
        tracing::debug!(order = order_id, certificate = new, removed = ?removed, revoke = ?older, %revoke_at, "reissue removes names; older certificates will be revoked");
        for id in older {
            if let Some(c) = self.certificates.get_mut(&id) {
                // An earlier name-removing reissue may have queued it sooner.
                c.revoke_at = Some(c.revoke_at.map_or(revoke_at, |t| t.min(revoke_at)));
            }
        }
    }

    /// Revokes the order's certificates whose time has come. Returns whether any was.
    pub(crate) fn settle_revocations(&mut self, order_id: u64, now: OffsetDateTime) -> bool {
        let Some(order) = self.orders.get(&order_id) else {
            return false;
        };
        let due: Vec<(u64, OffsetDateTime)> = order
            .certificates
            .iter()
            .filter_map(|c| self.certificates.get(c))
            .filter(|c| c.revoked_at.is_none())
            .filter_map(|c| c.revoke_at.filter(|t| *t <= now).map(|t| (c.id, t)))
            .collect();
        for &(id, at) in &due {
            self.revoke_now(id, at);
        }
        !due.is_empty()
    }

    pub(crate) fn revoke_now(&mut self, cert_id: u64, at: OffsetDateTime) {
        if let Some(c) = self.certificates.get_mut(&cert_id)
            && is_revocable_status(c)
        {
            c.status = ReissueStatus::Revoked;
            c.revoked_at = Some(at);
            let order_id = c.order_id;
            self.note_event(FeedEventKind::CertificateRevoked, order_id, cert_id);
        }
    }

    pub(crate) fn revoke_order_now(&mut self, order_id: u64, at: OffsetDateTime) {
        let ids = self
            .orders
            .get(&order_id)
            .map(|o| o.certificates.clone())
            .unwrap_or_default();
        for id in ids {
            self.revoke_now(id, at);
        }
        self.move_order(order_id, OrderStatus::Revoked, None, at);
    }

    /// A certificate by id, else by serial number (hex, any case).
    pub(crate) fn certificate_by_identifier(&self, identifier: &str) -> ApiResult<u64> {
        let by_id = identifier
            .parse::<u64>()
            .ok()
            .filter(|id| self.certificates.contains_key(id));
        let by_serial = || {
            self.certificates.values().find(|c| {
                c.issued
                    .as_ref()
                    .is_some_and(|i| i.serial_number.eq_ignore_ascii_case(identifier))
            })
        };
        by_id.or_else(|| by_serial().map(|c| c.id)).ok_or_else(|| {
            ApiError::new(
                404,
                "not_found|certificate",
                format!("Certificate {identifier} not found."),
            )
        })
    }

    pub(crate) fn refuse_while_reissue_pending(&self, order_id: u64) -> ApiResult<()> {
        let order = self.order(order_id)?;
        if self.pending_reissue(order).is_some() {
            return Err(ApiError::bad_request(
                REISSUE_PENDING,
                format!(
                    "Order {order_id} has a pending reissue; cancel it or wait until it is issued."
                ),
            ));
        }
        Ok(())
    }

    /// Whether the certificate may be revoked now: issued, not revoked, and no reissue
    /// pending on its order (any certificate of such an order is refused).
    pub(crate) fn check_certificate_revocable(&self, cert_id: u64) -> ApiResult<()> {
        let c = &self.certificates[&cert_id];
        if c.status == ReissueStatus::Revoked {
            return Err(ApiError::bad_request(
                "certificate_already_revoked",
                format!("Certificate {cert_id} is revoked already."),
            ));
        }
        if !is_revocable_status(c) {
            return Err(ApiError::bad_request(
                "invalid_certificate_status",
                format!("Certificate {cert_id} is {:?}, not issued.", c.status),
            ));
        }
        self.refuse_while_reissue_pending(c.order_id)
    }

    pub(crate) fn check_order_revocable(&self, order_id: u64) -> ApiResult<()> {
        let order = self.order(order_id)?;
        match order.status {
            OrderStatus::Issued => Ok(()),
            OrderStatus::ReissuePending => self.refuse_while_reissue_pending(order_id),
            ref other => Err(ApiError::bad_request(
                "invalid_order_status",
                format!("Order {order_id} is {other}; only issued orders can be revoked."),
            )),
        }
    }

    pub(crate) fn revoke_request(
        &mut self,
        order_id: u64,
        cert_id: u64,
        target: RevokeTarget,
        comments: Option<String>,
        caller: &ApiKeyConfig,
        now: OffsetDateTime,
    ) -> RevokeRequestInfo {
        let r = self.new_request(order_id, cert_id, "revoke", RequestStatus::Pending, now);
        r.comments = comments.clone();
        r.requester = Some(User::from(caller));
        r.revoke = Some(target);
        RevokeRequestInfo {
            id: r.id,
            date: Some(date_time(now)),
            kind: Some("revoke".into()),
            status: RequestStatus::Pending,
            requester: Some(Requester {
                id: caller.user_id,
                first_name: caller.firstname.clone(),
                last_name: caller.lastname.clone(),
                email: caller.email.clone(),
            }),
            comments,
        }
    }

    /// `PUT /certificate/{certificate_identifier}/revoke`: `None` when revoked at once.
    pub fn revoke_certificate(
        &mut self,
        identifier: &str,
        body: &RevokeRequest,
        caller: &ApiKeyConfig,
        now: OffsetDateTime,
    ) -> ApiResult<Option<RevokeRequestInfo>> {
        let cert_id = self.certificate_by_identifier(identifier)?;
        self.check_certificate_revocable(cert_id)?;
        let order_id = self.certificates[&cert_id].order_id;
        if may_skip_approval(caller, body.skip_approval)? {
            self.revoke_now(cert_id, now);
            return Ok(None);
        }
        let target = RevokeTarget::Certificate;
        Ok(Some(self.revoke_request(
            order_id,
            cert_id,
            target,
            body.comments.clone(),
            caller,
            now,
        )))
    }

    /// `PUT /order/certificate/{order_id}/revoke`: `None` when revoked at once.
    pub fn revoke_order(
        &mut self,
        order_id: u64,
        body: &RevokeOrderRequest,
        caller: &ApiKeyConfig,
        now: OffsetDateTime,
    ) -> ApiResult<Option<RevokeRequestInfo>> {
        let reason = body
            .revocation_reason
            .as_ref()
            .map_or(Ok("unspecified"), reason_name)?;
        self.check_order_revocable(order_id)?;
        if may_skip_approval(caller, body.skip_approval)? {
            self.revoke_order_now(order_id, now);
            return Ok(None);
        }
        let cert_id = self.order(order_id)?.current_certificate;
        let target = RevokeTarget::Order {
            reason: reason.into(),
        };
        Ok(Some(self.revoke_request(
            order_id,
            cert_id,
            target,
            body.comments.clone(),
            caller,
            now,
        )))
    }

    /// `PUT /request/{id}/status` for a pending revoke request. Approval revokes unless
    /// a reissue is pending meanwhile (the request then stays pending); what is revoked
    /// already stays so.
    pub(crate) fn decide_revoke_request(
        &mut self,
        id: u64,
        body: &RequestStatusUpdate,
        now: OffsetDateTime,
    ) -> ApiResult<()> {
        let r = &self.requests[&id];
        let (order_id, cert_id, target) = (r.order_id, r.certificate_id, r.revoke.clone());
        match body.status.as_str() {
            "approved" => {
                match target {
                    Some(RevokeTarget::Order { .. }) => {
                        if self.order(order_id)?.status != OrderStatus::Revoked {
                            self.check_order_revocable(order_id)?;
                            self.revoke_order_now(order_id, now);
                        }
                    }
                    _ => {
                        if self
                            .certificates
                            .get(&cert_id)
                            .is_some_and(|c| c.status != ReissueStatus::Revoked)
                        {
                            self.check_certificate_revocable(cert_id)?;
                            self.revoke_now(cert_id, now);
                        }
                    }
                }
                self.close_request(id, RequestStatus::Approved, body);
                Ok(())
            }
            "rejected" => {
                self.close_request(id, RequestStatus::Rejected, body);
                Ok(())
            }
            other => Err(ApiError::bad_request(
                "invalid_status",
                format!("Status {other:?} is not one of approved, rejected."),
            )),
        }
    }

    pub(crate) fn close_request(
        &mut self,
        id: u64,
        status: RequestStatus,
        body: &RequestStatusUpdate,
    ) {
        if let Some(r) = self.requests.get_mut(&id) {
            r.status = status;
            r.processor_comment = body.processor_comment.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn removed_names_are_compared_as_sets_without_case() {
        let old = names(&["example.com", "www.example.com", "api.example.com"]);
        let cases: [(&[&str], &[&str]); 6] = [
            // A rekey, and the common name moved to another of the names.
            (&["example.com", "www.example.com", "api.example.com"], &[]),
            (&["WWW.example.com", "example.com", "api.EXAMPLE.com"], &[]),
            // Added names remove nothing.
            (
                &[
                    "example.com",
                    "www.example.com",
                    "api.example.com",
                    "new.example.com",
                ],
                &[],
            ),
            (&["example.com", "www.example.com"], &["api.example.com"]),
            // A changed name is a removed one.
            (
                &["example.com", "www.example.com", "app.example.com"],
                &["api.example.com"],
            ),
            (
                &["other.example.com"],
                &["api.example.com", "example.com", "www.example.com"],
            ),
        ];
        for (new, want) in cases {
            assert_eq!(names_removed(&old, &names(new)), names(want), "{new:?}");
        }
        // Repeated names in the old certificate are reported once.
        assert_eq!(
            names_removed(&names(&["a.example", "A.example"]), &[]),
            names(&["a.example"])
        );
    }

    #[test]
    fn revocation_reasons_are_checked() {
        assert_eq!(
            reason_name(&RevocationReason::KeyCompromise),
            Ok("keyCompromise")
        );
        let err = reason_name(&RevocationReason::Other("stolen".into())).unwrap_err();
        assert_eq!(
            (err.status, err.code.as_str()),
            (400, "invalid_revocation_reason")
        );
    }

    #[test]
    fn skipping_approval_needs_an_approver() {
        let mut caller = ApiKeyConfig::new("k");
        assert_eq!(may_skip_approval(&caller, Some(true)), Ok(true));
        assert_eq!(may_skip_approval(&caller, None), Ok(false));
        caller.approver = false;
        assert_eq!(may_skip_approval(&caller, Some(false)), Ok(false));
        assert_eq!(
            may_skip_approval(&caller, Some(true)).unwrap_err().status,
            403
        );
    }
}
