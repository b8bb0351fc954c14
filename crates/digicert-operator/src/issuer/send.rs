//! Sending a request to DigiCert: the order's state and names checked (the guard,
//! a duplicate's names), what is sent recorded first, the POST, its answer recorded.

use std::ops::ControlFlow::{self, Break, Continue};

use kube::runtime::controller::Action;
use time::OffsetDateTime;

use super::decide::{self, Recorded};
use super::request::{Ask, Signing, order_names};
use crate::certcentral::{
    self, DuplicateCertificateRequest, DuplicateRequest, OrderInfo, OrderStatus,
    ReissueCertificateRequest, ReissueRequest, ServerPlatformId,
};
use crate::certmanager::condition;
use crate::controller::claims;
use crate::controller::decide::{Consent, schedule};
use crate::controller::events::EventType;
use crate::controller::status;
use crate::crd::{ALLOW_REVOCATION_ANNOTATION, Issuance};
use crate::error::Result;

impl Signing {
    /// Nothing sent yet: claim the order (reissue), check it, record, send.
    pub(super) async fn send(&mut self, ask: &Ask) -> Result<Action> {
        let client = ask.account.client.clone();
        match ask.issuer.spec.issuance {
            Issuance::Reissue => proceed!(self.claim(ask).await?),
            // Duplicates never reissue: a claim this Certificate took before (its
            // issuer took reissues then) goes, so another resource may drive the order.
            Issuance::Duplicate => {
                claims::release_held(
                    &self.ctx,
                    &ask.account.endpoint,
                    &self.holder(),
                    ask.order_id,
                )
                .await?
            }
        }
        let info = match client.order_info(ask.order_id).await {
            Ok(info) => info,
            Err(e) => return Ok(self.call_failed(&e, "reading the order")),
        };
        proceed!(self.order_allows(ask, &info).await);
        let sent_at = OffsetDateTime::now_utc();
        let record = Recorded {
            order_id: ask.order_id,
            issuance: ask.issuer.spec.issuance,
            csr: ask.csr.clone(),
            sent_at: status::rfc3339(sent_at),
            answered: false,
            certificate_id: None,
            request_id: None,
            challenge: None,
        };
        match ask.issuer.spec.issuance {
            Issuance::Reissue => self.send_reissue(ask, &client, record).await,
            Issuance::Duplicate => self.send_duplicate(ask, &client, record).await,
        }
    }

    /// Whether the order can take this request now: issued, no reissue of another's
    /// pending, names allowed (duplicate) or agreed to (reissue).
    pub(super) async fn order_allows(
        &mut self,
        ask: &Ask,
        info: &OrderInfo,
    ) -> ControlFlow<Action> {
        let current = order_names(info);
        match info.status {
            OrderStatus::Issued => {}
            OrderStatus::ReissuePending => {
                self.pending(&format!(
                    "order {} has a reissue pending at DigiCert that is not this request's; waiting until it is done",
                    ask.order_id
                ));
                return Break(Action::requeue(schedule::CONFLICT_RETRY));
            }
            ref other if is_final_order_status(other) => {
                self.fail(
                    condition::FAILED,
                    &format!("order {} is {other} at DigiCert", ask.order_id),
                );
                return Break(Action::await_change());
            }
            ref other => {
                self.pending(&format!(
                    "order {} is {other} at DigiCert; waiting until it is issued",
                    ask.order_id
                ));
                return Break(Action::requeue(schedule::CONFLICT_RETRY));
            }
        }
        if ask.issuer.spec.issuance == Issuance::Duplicate {
            if let Err(problem) = decide::duplicate_names_allowed(&ask.names, &current) {
                self.invalid(&problem);
                return Break(Action::await_change());
            }
            return Continue(());
        }
        self.guard(ask, &current).await
    }

    /// The revocation guard: a reissue that drops names of the order's certificate
    /// waits for consent.
    pub(super) async fn guard(&mut self, ask: &Ask, current: &[String]) -> ControlFlow<Action> {
        let consent = decide::consent(
            (!current.is_empty()).then_some(current),
            &ask.names,
            ask.issuer.spec.allow_revocation_of_previous,
            self.request.annotation(ALLOW_REVOCATION_ANNOTATION),
            ask.issuer.allow_revocation.as_deref(),
        );
        let Consent::Required {
            dropped,
            fingerprint,
        } = consent
        else {
            return Continue(());
        };
        let message = format!(
            "RevocationGuard: reissuing order {} for {} drops {} from its certificate, so DigiCert would revoke the order's earlier certificates and all its duplicates within 72 hours; it is not sent until you agree: annotate the Certificate (or this request, or the issuer) with {ALLOW_REVOCATION_ANNOTATION}={fingerprint}, or set allowRevocationOfPrevious on the issuer",
            ask.order_id,
            ask.names.join(", "),
            dropped.join(", ")
        );
        if !self.pending_says(&message) {
            self.event(EventType::Warning, "RevocationGuard", message.clone())
                .await;
        }
        self.pending(&message);
        Break(Action::requeue(self.ctx.config.resync))
    }

    pub(super) async fn send_reissue(
        &mut self,
        ask: &Ask,
        client: &certcentral::Client,
        mut record: Recorded,
    ) -> Result<Action> {
        let spec = &ask.issuer.spec;
        let request = ReissueRequest {
            certificate: ReissueCertificateRequest {
                common_name: ask.names[0].clone(),
                dns_names: ask.names[1..].to_vec(),
                csr: ask.csr_pem.clone(),
                server_platform: spec.server_platform_id.map(|id| ServerPlatformId { id }),
                signature_hash: spec.signature_hash.as_str().into(),
            },
            comments: spec.comments.clone(),
            skip_approval: spec.skip_approval.then_some(true),
        };
        // The slot first: the time recorded is the send's, not the rate limiter's wait.
        let slot = client.send_slot().await;
        record.sent_at = status::rfc3339(OffsetDateTime::now_utc());
        self.record(Some(&record)).await?;
        match client.reissue_in(slot, ask.order_id, &request).await {
            Ok(answer) => {
                record.answered = true;
                record.certificate_id = answer.certificate_id;
                record.request_id = answer.request_id();
                self.sent(ask, record).await
            }
            Err(e) => self.send_failed(&e, "reissuing the order").await,
        }
    }

    pub(super) async fn send_duplicate(
        &mut self,
        ask: &Ask,
        client: &certcentral::Client,
        mut record: Recorded,
    ) -> Result<Action> {
        let spec = &ask.issuer.spec;
        let request = DuplicateRequest {
            certificate: DuplicateCertificateRequest {
                common_name: ask.names[0].clone(),
                dns_names: ask.names[1..].to_vec(),
                csr: ask.csr_pem.clone(),
                server_platform: spec.server_platform_id.map(|id| ServerPlatformId { id }),
                signature_hash: spec.signature_hash.as_str().into(),
                ca_cert_id: None,
            },
            skip_approval: spec.skip_approval.then_some(true),
            comments: spec.comments.clone(),
        };
        self.record(Some(&record)).await?;
        match client.duplicate(ask.order_id, &request).await {
            Ok(answer) => {
                record.answered = true;
                record.request_id = answer.request_id();
                self.sent(ask, record).await
            }
            Err(e) => self.send_failed(&e, "requesting a duplicate").await,
        }
    }

    /// DigiCert took the request: record its answer, then follow it.
    pub(super) async fn sent(&mut self, ask: &Ask, record: Recorded) -> Result<Action> {
        self.record(Some(&record)).await?;
        self.ctx.metrics.reissue("submitted");
        let what = match record.issuance {
            Issuance::Reissue => "reissue",
            Issuance::Duplicate => "duplicate",
        };
        let message = format!(
            "{what} of order {} sent to DigiCert{}",
            ask.order_id,
            record
                .request_id
                .map(|id| format!(" (request {id})"))
                .unwrap_or_default()
        );
        self.event(EventType::Normal, "Submitted", message.clone())
            .await;
        self.pending(&message);
        self.follow(ask, record).await
    }

    /// The send failed: where nothing can exist at DigiCert, the record goes (the next
    /// reconcile sends again); where it may have arrived, it stays, to be looked for.
    pub(super) async fn send_failed(
        &mut self,
        e: &certcentral::Error,
        doing: &str,
    ) -> Result<Action> {
        if e.certainly_not_processed() || !e.is_retryable() {
            self.record(None).await?;
        }
        Ok(self.call_failed(e, doing))
    }
}

fn is_final_order_status(status: &OrderStatus) -> bool {
    matches!(
        status,
        OrderStatus::Rejected | OrderStatus::Canceled | OrderStatus::Revoked | OrderStatus::Expired
    )
}
