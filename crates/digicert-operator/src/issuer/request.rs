//! One reconcile of a cert-manager `CertificateRequest` for one of our issuers: the
//! gate of cert-manager's contract, the checks, then one DigiCert step.
//!
//! Never twice: what is sent (order, mode, the CSR's fingerprint, the moment) is
//! recorded on the request, against the version read, before the POST. A reconcile
//! that finds a record without DigiCert's answer looks the request up by its CSR and
//! sends again only once no earlier attempt can still arrive.

use std::ops::ControlFlow::{self, Break, Continue};
use std::sync::Arc;

use base64::Engine;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use time::OffsetDateTime;

use super::decide::{self, Gate, Recorded, Step};
use super::issuers::{self, Issuer};
use crate::certcentral::{
    self, DownloadFormat, DuplicateCertificateRequest, DuplicateRequest, OrderInfo, OrderStatus,
    ReissueCertificateRequest, ReissueRequest, ReissueStatus, RequestStatus, ServerPlatformId,
};
use crate::certmanager::{
    CERTIFICATE_NAME_ANNOTATION, CertificateRequest, CertificateRequestStatus, RequestCondition,
    condition,
};
use crate::controller::claims::{self, Claimant, Outcome};
use crate::controller::decide::{Consent, schedule};
use crate::controller::events::EventType;
use crate::controller::ownership::{Holder, HolderKind};
use crate::controller::{Context, access, accounts, status};
use crate::crd::issuer::{ISSUANCE_ANNOTATION, ORDER_ID_ANNOTATION};
use crate::crd::{ALLOW_REVOCATION_ANNOTATION, Issuance};
use crate::error::Result;
use crate::keys::{self, Chain};

/// A part that went on (`Continue`) or ended the reconcile with its action.
pub(super) type Flow<T = ()> = Result<ControlFlow<Action, T>>;

macro_rules! proceed {
    ($flow:expr) => {
        match $flow {
            Continue(value) => value,
            Break(action) => return Ok(action),
        }
    };
}

/// What a request asks for, once checked.
pub(super) struct Ask {
    pub issuer: Issuer,
    pub order_id: u64,
    pub names: Vec<String>,
    pub csr_pem: String,
    pub csr: String,
    pub public_key_info: Vec<u8>,
    pub account: accounts::Resolved,
}

pub struct Signing {
    pub(super) ctx: Arc<Context>,
    pub(super) request: Arc<CertificateRequest>,
    pub(super) namespace: String,
    pub(super) name: String,
    status: CertificateRequestStatus,
    saved: CertificateRequestStatus,
    pub(super) now: OffsetDateTime,
}

impl Signing {
    pub fn new(request: Arc<CertificateRequest>, ctx: Arc<Context>) -> Self {
        let status = request.status_or_default();
        Signing {
            namespace: request.namespace().unwrap_or_default(),
            name: request.name_any(),
            saved: status.clone(),
            status,
            request,
            ctx,
            now: OffsetDateTime::now_utc(),
        }
    }

    fn api(&self) -> Api<CertificateRequest> {
        Api::namespaced(self.ctx.client.clone(), &self.namespace)
    }

    /// The whole reconcile; status is written once at the end.
    pub async fn apply(&mut self) -> Result<Action> {
        let action = self.step().await?;
        self.save().await?;
        Ok(action)
    }

    async fn step(&mut self) -> Result<Action> {
        match decide::gate(&self.status) {
            Gate::Done | Gate::AwaitingApproval => return Ok(Action::await_change()),
            Gate::Denied => {
                self.finish(
                    condition::DENIED_REASON,
                    "the CertificateRequest was denied by an approver; DigiCert was not asked",
                );
                return Ok(Action::await_change());
            }
            Gate::Approved => {}
        }
        let ask = proceed!(self.ask().await?);
        let recorded = Recorded::parse(self.request.annotation(ISSUANCE_ANNOTATION));
        match decide::step(
            recorded.as_ref(),
            &ask.csr,
            ask.order_id,
            ask.issuer.spec.issuance,
        ) {
            Step::Send => self.send(&ask).await,
            Step::Find => self.find(&ask, recorded.expect("a record")).await,
            Step::Follow => self.follow(&ask, recorded.expect("a record")).await,
            Step::Mismatch(message) => {
                self.fail(condition::FAILED, &message);
                Ok(Action::await_change())
            }
        }
    }

    /// Everything checked before DigiCert is asked: the CSR, the issuer, the order,
    /// the account's grant.
    async fn ask(&mut self) -> Flow<Ask> {
        let (csr_pem, info, names) = match self.usable_csr() {
            Ok(found) => found,
            Err(problem) => {
                self.invalid(&problem);
                return Ok(Break(Action::await_change()));
            }
        };
        let issuer = match issuers::find(&self.ctx, &self.request).await? {
            Ok(issuer) => issuer,
            Err(problem) => {
                self.pending(&problem);
                return Ok(Break(Action::requeue(self.ctx.config.access_recheck)));
            }
        };
        let annotation = self.request.annotation(ORDER_ID_ANNOTATION);
        let order_id = match decide::choose_order(issuer.spec.order_id, annotation) {
            Ok(id) => id,
            Err(problem) => {
                self.invalid(&problem);
                return Ok(Break(Action::await_change()));
            }
        };
        let account_name = issuer.spec.account_ref.as_ref().map(|a| a.name.as_str());
        if !accounts::serves_account_named(&self.ctx, account_name).await? {
            return Ok(Break(Action::await_change()));
        }
        let account = match accounts::resolve_for_request(
            &self.ctx,
            Some(&self.namespace),
            Some(order_id),
            account_name,
        )
        .await?
        {
            Ok(resolved) => resolved,
            Err(refusal) => {
                self.pending(&format!(
                    "{}: {} (no DigiCert call is made)",
                    refusal.reason(),
                    refusal.message()
                ));
                return Ok(Break(Action::requeue(self.ctx.config.access_recheck)));
            }
        };
        let csr = keys::csr_fingerprint(&csr_pem).unwrap_or_default();
        Ok(Continue(Ask {
            issuer,
            order_id,
            names,
            csr_pem,
            csr,
            public_key_info: info.public_key_info,
            account,
        }))
    }

    fn usable_csr(&self) -> std::result::Result<(String, keys::CsrInfo, Vec<String>), String> {
        let pem = self
            .request
            .csr_pem()
            .ok_or("spec.request is not a base64-encoded PEM CSR")?;
        let info = keys::inspect_csr(&pem).map_err(|e| format!("the CSR cannot be read: {e}"))?;
        let spec = &self.request.spec;
        let wanted =
            decide::usable_csr(&info, &spec.usages, spec.is_ca.unwrap_or(false), self.now)?;
        Ok((pem, info, wanted.names))
    }

    // ------------------------------------------------------------------ send

    /// Nothing sent yet: claim the order (reissue), check it, record, send.
    async fn send(&mut self, ask: &Ask) -> Result<Action> {
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

    /// The claim on the order, held by the request's Certificate (stable across its
    /// renewals), or by the request itself when it has none.
    async fn claim(&mut self, ask: &Ask) -> Flow {
        let claimant = Claimant {
            holder: self.holder(),
            order_id: ask.order_id,
            object: self.request.object_ref(&()),
        };
        match claims::claim(&self.ctx, &ask.account.endpoint, &claimant, None).await? {
            Outcome::Held { .. } => Ok(Continue(())),
            Outcome::Yielded { holder, lease } => {
                self.pending(&format!(
                    "{}: order {} is driven by {} (Lease {}/{lease}); this request waits, or use an issuer with issuance: Duplicate",
                    access::ORDER_CLAIMED,
                    ask.order_id,
                    holder.describe(),
                    self.ctx.config.namespace
                ));
                Ok(Break(Action::requeue(self.ctx.config.access_recheck)))
            }
            Outcome::Unproven(e) => Ok(Break(self.call_failed(&e, "reading the order"))),
        }
    }

    fn holder(&self) -> Holder {
        let owner = self
            .request
            .owner_references()
            .iter()
            .find(|o| o.kind == "Certificate" && o.api_version.starts_with("cert-manager.io/"));
        let named = self.request.annotation(CERTIFICATE_NAME_ANNOTATION);
        match owner {
            Some(o) if named.is_none_or(|n| n == o.name) => Holder {
                kind: HolderKind::Certificate,
                namespace: self.namespace.clone(),
                name: o.name.clone(),
                uid: o.uid.clone(),
            },
            _ => Holder {
                kind: HolderKind::Request,
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                uid: self.request.uid().unwrap_or_default(),
            },
        }
    }

    /// Whether the order can take this request now: issued, no reissue of another's
    /// pending, names allowed (duplicate) or agreed to (reissue).
    async fn order_allows(&mut self, ask: &Ask, info: &OrderInfo) -> ControlFlow<Action> {
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
    async fn guard(&mut self, ask: &Ask, current: &[String]) -> ControlFlow<Action> {
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

    async fn send_reissue(
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

    async fn send_duplicate(
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
    async fn sent(&mut self, ask: &Ask, record: Recorded) -> Result<Action> {
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
    async fn send_failed(&mut self, e: &certcentral::Error, doing: &str) -> Result<Action> {
        if e.certainly_not_processed() || !e.is_retryable() {
            self.record(None).await?;
        }
        Ok(self.call_failed(e, doing))
    }

    // ------------------------------------------------------------------ find, follow

    /// The answer was lost: find the request at DigiCert by its CSR, or send again
    /// once no earlier attempt can still arrive.
    async fn find(&mut self, ask: &Ask, mut record: Recorded) -> Result<Action> {
        let client = ask.account.client.clone();
        let listed = proceed!(self.listed(&client, ask).await);
        if let Some(found) = listed.iter().find(|c| c.csr == ask.csr) {
            record.answered = true;
            record.certificate_id = Some(found.id);
            self.record(Some(&record)).await?;
            self.event(
                EventType::Normal,
                "Found",
                format!(
                    "found the request at DigiCert by its CSR (certificate {})",
                    found.id
                ),
            )
            .await;
            return self.follow(ask, record).await;
        }
        match decide::may_send_again(record.sent_at(), self.ctx.config.call_timeout, self.now) {
            Err(settled) => {
                self.pending(
                    "the request may still be arriving at DigiCert; looking again shortly",
                );
                Ok(Action::requeue(
                    (settled - self.now).try_into().unwrap_or_default(),
                ))
            }
            Ok(()) => {
                self.record(None).await?;
                self.send(ask).await
            }
        }
    }

    /// Known at DigiCert: write the certificate once issued, approve when allowed,
    /// report what it waits for.
    async fn follow(&mut self, ask: &Ask, mut record: Recorded) -> Result<Action> {
        let client = ask.account.client.clone();
        let listed = proceed!(self.listed(&client, ask).await);
        let ours = listed.iter().find(|c| {
            record.certificate_id == Some(c.id)
                || (record.certificate_id.is_none() && c.csr == ask.csr)
        });
        let since = record.sent_at().unwrap_or(self.now);
        let Some(ours) = ours else {
            self.pending("sent to DigiCert; waiting for it to be listed");
            return Ok(Action::requeue(schedule::poll_interval(self.now - since)));
        };
        if record.certificate_id.is_none() {
            record.certificate_id = Some(ours.id);
            self.record(Some(&record)).await?;
        }
        match &ours.status {
            ReissueStatus::Issued => self.issued(ask, ours.id, &client).await,
            ReissueStatus::Rejected | ReissueStatus::Revoked => {
                let message = format!(
                    "DigiCert {} certificate {} of order {}",
                    if ours.status == ReissueStatus::Rejected {
                        "rejected"
                    } else {
                        "revoked"
                    },
                    ours.id,
                    ask.order_id
                );
                self.event(EventType::Warning, "Rejected", message.clone())
                    .await;
                self.withdraw_challenge(ask).await?;
                self.fail(condition::FAILED, &message);
                Ok(Action::await_change())
            }
            _ => {
                let message = proceed!(self.waiting(ask, &mut record, &client).await?);
                self.pending(&message);
                Ok(Action::requeue(schedule::poll_interval(self.now - since)))
            }
        }
    }

    /// What a pending request waits for: approval (given here when the issuer asks
    /// and the account allows), else domain validation or issuance.
    async fn waiting(
        &mut self,
        ask: &Ask,
        record: &mut Recorded,
        client: &certcentral::Client,
    ) -> Flow<String> {
        let Some(request_id) = record.request_id else {
            return Ok(Continue(
                "waiting for DigiCert to issue the certificate".into(),
            ));
        };
        let info = match client.request_info(request_id).await {
            Ok(info) => info,
            Err(e) => return Ok(Break(self.call_failed(&e, "reading the request"))),
        };
        match info.status {
            RequestStatus::Pending | RequestStatus::Submitted => {
                let grants = ask
                    .issuer
                    .spec
                    .approve_reissues
                    .then_some(&ask.account.grants);
                match access::approval(ask.issuer.spec.approve_reissues, grants) {
                    access::Approval::Leave(why) => Ok(Continue(format!(
                        "request {request_id} waits for approval at DigiCert: {why}"
                    ))),
                    access::Approval::Approve => {
                        let note = format!(
                            "Approved by digicert-operator for CertificateRequest {}/{}",
                            self.namespace, self.name
                        );
                        match client.approve_request(request_id, &note).await {
                            Ok(()) => Ok(Continue(format!(
                                "approved request {request_id}; waiting for issuance"
                            ))),
                            Err(e) => Ok(Break(self.call_failed(&e, "approving the request"))),
                        }
                    }
                }
            }
            RequestStatus::Rejected => {
                let message = format!("DigiCert rejected request {request_id}");
                self.fail(condition::FAILED, &message);
                Ok(Break(Action::await_change()))
            }
            _ if record.issuance == Issuance::Reissue => self.validate(ask, record, client).await,
            _ => Ok(Continue("approved; waiting for DigiCert to issue".into())),
        }
    }

    /// The certificate is issued: download it, check it is for the CSR's key, hand it
    /// to cert-manager.
    async fn issued(&mut self, ask: &Ask, id: u64, client: &certcentral::Client) -> Result<Action> {
        let pem = match client
            .download_certificate(id, DownloadFormat::PemAll)
            .await
        {
            Ok(pem) => pem,
            Err(e) => return Ok(self.call_failed(&e, "downloading the certificate")),
        };
        let chain = match Chain::parse(&pem) {
            Ok(chain) => chain,
            Err(e) => {
                self.pending(&format!("DigiCert's certificate {id} cannot be read: {e}"));
                return Ok(Action::requeue(schedule::PERMANENT_BACKOFF.0));
            }
        };
        let leaf = keys::inspect_certificate(&chain.leaf).ok();
        if leaf.as_ref().map(|l| &l.public_key_info) != Some(&ask.public_key_info) {
            self.fail(
                condition::FAILED,
                &format!("DigiCert's certificate {id} is not for the key of this request's CSR"),
            );
            return Ok(Action::await_change());
        }
        // Validation values still out (DigiCert issued before they were checked) go.
        self.withdraw_challenge(ask).await?;
        let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
        self.status.certificate = Some(b64(chain.tls_crt()));
        let ca = chain.ca_crt();
        self.status.ca = (!ca.is_empty()).then(|| b64(ca));
        let until = leaf
            .map(|l| status::rfc3339(l.not_after))
            .unwrap_or_default();
        let message = format!(
            "certificate {id} issued by DigiCert from order {}, valid until {until}",
            ask.order_id
        );
        self.set(condition::READY, true, condition::ISSUED, &message);
        self.event(EventType::Normal, "Issued", message).await;
        self.ctx.metrics.reissue("issued");
        Ok(Action::await_change())
    }

    /// The order's reissues or duplicates, with their CSRs' fingerprints.
    async fn listed(
        &mut self,
        client: &certcentral::Client,
        ask: &Ask,
    ) -> ControlFlow<Action, Vec<Listed>> {
        let fingerprint = |csr: Option<&str>| {
            csr.and_then(|c| keys::csr_fingerprint(c).ok())
                .unwrap_or_default()
        };
        let listed = match ask.issuer.spec.issuance {
            Issuance::Reissue => client.list_reissues(ask.order_id).await.map(|l| {
                l.into_iter()
                    .map(|c| Listed {
                        id: c.id,
                        csr: fingerprint(c.csr.as_deref()),
                        status: c.status,
                    })
                    .collect::<Vec<_>>()
            }),
            Issuance::Duplicate => client.list_duplicates(ask.order_id).await.map(|l| {
                l.into_iter()
                    .map(|c| Listed {
                        id: c.id,
                        csr: fingerprint(c.csr.as_deref()),
                        status: c.status,
                    })
                    .collect()
            }),
        };
        match listed {
            // The newest first: a reused key can make the same CSR twice.
            Ok(mut l) => {
                l.sort_by(|a, b| b.id.cmp(&a.id));
                Continue(l)
            }
            Err(e) => Break(self.call_failed(&e, "listing the order's certificates")),
        }
    }

    // ------------------------------------------------------------------ status

    fn set(&mut self, type_: &str, ok: bool, reason: &str, message: &str) {
        set_condition(
            &mut self.status.conditions,
            type_,
            ok,
            reason,
            message,
            self.now,
        );
    }

    pub(super) fn pending(&mut self, message: &str) {
        self.set(condition::READY, false, condition::PENDING, message);
    }

    fn pending_says(&self, message: &str) -> bool {
        self.saved
            .find(condition::READY)
            .is_some_and(|c| c.message.as_deref() == Some(message))
    }

    /// A terminal Ready=False (Denied, Failed): cert-manager retries from a new request.
    fn finish(&mut self, reason: &str, message: &str) {
        self.set(condition::READY, false, reason, message);
        self.status.failure_time = Some(status::time(self.now));
    }

    fn fail(&mut self, reason: &str, message: &str) {
        self.finish(reason, message);
    }

    fn invalid(&mut self, message: &str) {
        self.set(
            condition::INVALID_REQUEST,
            true,
            condition::INVALID_REASON,
            message,
        );
        self.finish(condition::INVALID_REASON, message);
    }

    /// A failed DigiCert call: a refusal of the request is final; anything else keeps
    /// it pending and is tried again after a back-off.
    pub(super) fn call_failed(&mut self, e: &certcentral::Error, doing: &str) -> Action {
        let reason = status::failure_reason(e);
        let message = format!("{reason}: {doing}: {e}");
        tracing::warn!(request = %self.name, %reason, error = %e, "{doing} failed");
        if decide::refusal_is_final(e) {
            self.fail(condition::FAILED, &message);
            return Action::await_change();
        }
        self.pending(&message);
        let (base, cap) = schedule::failure_backoff(!e.is_retryable());
        let age = self
            .request
            .meta()
            .creation_timestamp
            .as_ref()
            .map(|t| self.now - status::offset(t))
            .unwrap_or_default();
        Action::requeue(decide::retry_after(age, base, cap, rand::random()))
    }

    pub(super) async fn event(&self, type_: EventType, reason: &str, note: String) {
        let object = self.request.object_ref(&());
        if let Err(e) = self
            .ctx
            .events
            .publish(type_, reason, "Sign", &note, &object)
            .await
        {
            tracing::warn!(error = %e, "cannot publish an event");
        }
    }

    /// Writes the record annotation (or removes it) against the version read: a stale
    /// view of the request fails here, before anything is sent.
    pub(super) async fn record(&mut self, record: Option<&Recorded>) -> Result<()> {
        let value = record.map(Recorded::to_annotation);
        let patch = serde_json::json!({
            "metadata": {
                "resourceVersion": self.request.resource_version(),
                "annotations": { ISSUANCE_ANNOTATION: value },
            }
        });
        let written = self
            .api()
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        self.adopt_metadata(written.metadata);
        Ok(())
    }

    /// Takes the metadata of a write (its version, annotations, finalizers).
    pub(super) fn adopt_metadata(&mut self, metadata: kube::api::ObjectMeta) {
        let mut request = (*self.request).clone();
        request.metadata = metadata;
        self.request = Arc::new(request);
    }

    /// Writes the status fields the issuer owns if they changed, against the version
    /// read last.
    async fn save(&mut self) -> Result<()> {
        if self.status == self.saved {
            return Ok(());
        }
        let patch = serde_json::json!({
            "metadata": { "resourceVersion": self.request.resource_version() },
            "status": {
                "conditions": self.status.conditions,
                "certificate": self.status.certificate,
                "ca": self.status.ca,
                "failureTime": self.status.failure_time,
            }
        });
        self.api()
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        self.saved = self.status.clone();
        Ok(())
    }
}

/// One of the order's certificates as its list shows it.
struct Listed {
    id: u64,
    /// The CSR's fingerprint (empty when the list shows none).
    csr: String,
    status: ReissueStatus,
}

/// The names of the order's current certificate, lower case, the common name first.
fn order_names(info: &OrderInfo) -> Vec<String> {
    let c = &info.certificate;
    let mut names: Vec<String> = Vec::new();
    for n in std::iter::once(&c.common_name).chain(&c.dns_names) {
        let n = n.to_ascii_lowercase();
        if !n.is_empty() && !names.contains(&n) {
            names.push(n);
        }
    }
    names
}

fn is_final_order_status(status: &OrderStatus) -> bool {
    matches!(
        status,
        OrderStatus::Rejected | OrderStatus::Canceled | OrderStatus::Revoked | OrderStatus::Expired
    )
}

/// Sets a condition of a request (cert-manager's kind: no generation); the transition
/// time moves only when the status does.
pub fn set_condition(
    conditions: &mut Vec<RequestCondition>,
    type_: &str,
    ok: bool,
    reason: &str,
    message: &str,
    now: OffsetDateTime,
) {
    let status = if ok { "True" } else { "False" };
    let time = Some(status::time(now));
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = time;
            }
            c.status = status.into();
            c.reason = Some(reason.into());
            c.message = Some(message.into());
        }
        None => conditions.push(RequestCondition {
            type_: type_.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_transition_time: time,
        }),
    }
}
