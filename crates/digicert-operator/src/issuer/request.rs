//! One reconcile of a cert-manager `CertificateRequest` for one of our issuers: the
//! gate of cert-manager's contract, the checks, then one DigiCert step.
//!
//! Never twice: what is sent (order, mode, the CSR's fingerprint, the moment) is
//! recorded on the request, against the version read, before the POST. A reconcile
//! that finds a record without DigiCert's answer looks the request up by its CSR and
//! sends again only once no earlier attempt can still arrive.

use std::ops::ControlFlow::{self, Break, Continue};
use std::sync::Arc;

use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use time::OffsetDateTime;

use super::decide::{self, Gate, Recorded, Step};
use super::issuers::{self, Issuer};
use crate::certcentral::OrderInfo;
use crate::certmanager::{
    CERTIFICATE_NAME_ANNOTATION, CertificateRequest, CertificateRequestStatus, condition,
};
use crate::controller::claims::{self, Claimant, Outcome};
use crate::controller::feed::Follower;
use crate::controller::ownership::{Holder, HolderKind};
use crate::controller::{Context, access, accounts};
use crate::crd::issuer::{ISSUANCE_ANNOTATION, ORDER_ID_ANNOTATION};
use crate::error::Result;
use crate::keys;

/// A part that went on (`Continue`) or ended the reconcile with its action.
pub(super) type Flow<T = ()> = Result<ControlFlow<Action, T>>;

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
    pub(super) status: CertificateRequestStatus,
    pub(super) saved: CertificateRequestStatus,
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

    pub(super) fn api(&self) -> Api<CertificateRequest> {
        Api::namespaced(self.ctx.client.clone(), &self.namespace)
    }

    /// The whole reconcile; status is written once at the end.
    pub async fn apply(&mut self) -> Result<Action> {
        let action = self.step().await?;
        self.save().await?;
        if decide::gate(&self.status) == Gate::Done {
            self.ctx.request_backoffs.clear(&self.key());
            self.ctx.feeds.unfollow(&self.follower());
        }
        Ok(action)
    }

    /// This request, as a follower of its order's change feed.
    pub(super) fn follower(&self) -> Follower {
        Follower::Request((self.namespace.clone(), self.name.clone()))
    }

    pub(super) async fn step(&mut self) -> Result<Action> {
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
        // After a failed call: nothing before the wait is over, whatever woke it.
        if let Some(wait) = self.ctx.request_backoffs.wait(&self.key(), self.now) {
            return Ok(Action::requeue(wait));
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
    pub(super) async fn ask(&mut self) -> Flow<Ask> {
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

    pub(super) fn usable_csr(
        &self,
    ) -> std::result::Result<(String, keys::CsrInfo, Vec<String>), String> {
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

    /// The claim on the order, held by the request's Certificate (stable across its
    /// renewals), or by the request itself when it has none.
    pub(super) async fn claim(&mut self, ask: &Ask) -> Flow {
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

    pub(super) fn holder(&self) -> Holder {
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
}

/// The names of the order's current certificate, lower case, the common name first.
pub(super) fn order_names(info: &OrderInfo) -> Vec<String> {
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
