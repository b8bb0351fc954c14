//! Approval decisions asked for on the resource: the approve and deny annotations name
//! the reissue request that waits for approval at DigiCert (`kubectl digicert approve`
//! / `deny` set them). The operator's key decides at DigiCert; whoever sets the
//! annotation never holds it.

use super::*;
use crate::crd::{APPROVE_ANNOTATION, DENY_ANNOTATION, DENY_REASON_ANNOTATION};

/// Whether `annotation` names `request_id`. An annotation of an earlier request names
/// none of the later ones, so it cannot decide a request nobody has looked at.
fn names_request(order: &DigicertOrder, annotation: &str, request_id: u64) -> bool {
    order
        .annotations()
        .get(annotation)
        .and_then(|v| v.trim().parse::<u64>().ok())
        == Some(request_id)
}

impl Run {
    /// A request that waits for approval: denied or approved as the annotations ask,
    /// else as the spec says (`approve`). `Ok` is what the Issuing condition says.
    pub(super) async fn decide_request(
        &mut self,
        request_id: u64,
        client: &certcentral::Client,
    ) -> Flow<(&'static str, String)> {
        if names_request(&self.order, DENY_ANNOTATION, request_id) {
            return self.deny_on_request(request_id, client).await;
        }
        if names_request(&self.order, APPROVE_ANNOTATION, request_id) {
            return self.approve_on_request(request_id, client).await;
        }
        self.approve(request_id, client).await
    }

    /// The account's word on approval decisions: `Err` says why the operator may not
    /// make them for this order.
    async fn may_decide(&mut self) -> Result<std::result::Result<(), String>> {
        Ok(match self.account().await? {
            Some(a) if a.grants.approve => Ok(()),
            Some(a) => Err(format!(
                "the DigicertAccount {} does not allow approval (allowApproval)",
                a.grants.account
            )),
            None => Err("the order's account cannot be used now".into()),
        })
    }

    async fn approve_on_request(
        &mut self,
        request_id: u64,
        client: &certcentral::Client,
    ) -> Flow<(&'static str, String)> {
        if let Err(why) = self.may_decide().await? {
            return Ok(Continue((
                "NeedsApproval",
                format!(
                    "request {request_id} waits for approval: {APPROVE_ANNOTATION} asks for it, but {why}; an administrator must approve it in CertCentral"
                ),
            )));
        }
        let note = format!(
            "Approved on request ({APPROVE_ANNOTATION}) by digicert-operator for {}/{}",
            self.namespace, self.name
        );
        self.approve_at_digicert(
            request_id,
            client,
            &note,
            &format!(" on request ({APPROVE_ANNOTATION})"),
        )
        .await
    }

    /// Rejects the request at DigiCert and ends the reissue; like a cancel, no new
    /// reissue of this spec starts until the spec changes or a renewal is requested
    /// (else the next one would only wait for the same decision).
    async fn deny_on_request(
        &mut self,
        request_id: u64,
        client: &certcentral::Client,
    ) -> Flow<(&'static str, String)> {
        if let Err(why) = self.may_decide().await? {
            return Ok(Continue((
                "NeedsApproval",
                format!(
                    "request {request_id} waits for approval: {DENY_ANNOTATION} asks to reject it, but {why}; reject it in CertCentral, or cancel the reissue (kubectl digicert cancel {})",
                    self.name
                ),
            )));
        }
        let reason = self
            .order
            .annotations()
            .get(DENY_REASON_ANNOTATION)
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "denied on request".into());
        let note = format!(
            "Rejected on request ({DENY_ANNOTATION}) by digicert-operator for {}/{}: {reason}",
            self.namespace, self.name
        );
        match client.reject_request(request_id, &note).await {
            Ok(()) => {}
            Err(e) if e.is_retryable() => {
                return Ok(Break(self.fail(&e, "rejecting the reissue request").await));
            }
            Err(e) => {
                return Ok(Continue((
                    "NeedsApproval",
                    format!(
                        "request {request_id} waits for approval and the operator cannot reject it: {e}"
                    ),
                )));
            }
        }
        // DigiCert puts a reissue_pending order back to issued when its request is
        // rejected.
        if self.status.order_status.as_deref() == Some(OrderStatus::ReissuePending.as_str()) {
            self.status.order_status = Some(OrderStatus::Issued.to_string());
        }
        self.event(
            EventType::Normal,
            "ReissueDenied",
            "Deny",
            format!("rejected request {request_id} at DigiCert: {reason}"),
        )
        .await;
        self.abandon().await?;
        self.status.hold_generation = self.generation();
        self.condition(
            ISSUING,
            false,
            "Denied",
            format!(
                "request {request_id} was rejected at DigiCert on request ({reason}); a spec change or a renewal request starts a new reissue"
            ),
        );
        Ok(Break(Action::requeue(schedule::NEXT_STEP_NOW)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_annotation_decides_only_the_request_it_names() {
        let order = |value: &str| -> DigicertOrder {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "digicert-operator.dev/v1alpha1",
                "kind": "DigicertOrder",
                "metadata": {"name": "web", "namespace": "demo",
                             "annotations": {DENY_ANNOTATION: value}},
                "spec": {"orderId": 1001, "commonName": "example.com", "secretName": "web-tls"},
            }))
            .unwrap()
        };
        assert!(names_request(&order("500001"), DENY_ANNOTATION, 500001));
        assert!(names_request(&order(" 500001\n"), DENY_ANNOTATION, 500001));
        assert!(!names_request(&order("500001"), DENY_ANNOTATION, 500002));
        assert!(!names_request(&order("yes"), DENY_ANNOTATION, 500001));
        assert!(!names_request(&order("500001"), APPROVE_ANNOTATION, 500001));
    }
}
