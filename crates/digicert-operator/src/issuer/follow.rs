//! After the send: a request whose answer was lost is found by its CSR; one known at
//! DigiCert is followed (approval, validation) until issued, then downloaded, checked
//! against the CSR's key and handed to cert-manager.

use std::ops::ControlFlow::{self, Break, Continue};

use base64::Engine;
use kube::runtime::controller::Action;

use super::decide::{self, Recorded};
use super::request::{Ask, Flow, Signing};
use crate::certcentral::{self, DownloadFormat, ReissueStatus, RequestStatus};
use crate::certmanager::condition;
use crate::controller::decide::{feed, schedule};
use crate::controller::events::EventType;
use crate::controller::{access, status};
use crate::crd::Issuance;
use crate::error::Result;
use crate::keys::{self, Chain};

impl Signing {
    /// The answer was lost: find the request at DigiCert by its CSR, or send again
    /// once no earlier attempt can still arrive.
    pub(super) async fn find(&mut self, ask: &Ask, mut record: Recorded) -> Result<Action> {
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
    pub(super) async fn follow(&mut self, ask: &Ask, mut record: Recorded) -> Result<Action> {
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
                let standing = self.follow_feed(ask);
                Ok(Action::requeue(feed::pending_look(
                    standing,
                    self.now - since,
                )))
            }
        }
    }

    /// A pending reissue follows its order's change feed, which wakes the request as
    /// soon as the order moves (issued, rejected). A duplicate does not move the
    /// order: it is polled. Returns how the feed stands for the next look.
    fn follow_feed(&self, ask: &Ask) -> feed::Standing {
        if ask.issuer.spec.issuance != Issuance::Reissue {
            return feed::Standing::Off;
        }
        self.ctx
            .feeds
            .follow(
                self.follower(),
                &ask.account.endpoint,
                &ask.account.client,
                ask.order_id,
            )
            .standing
    }

    /// What a pending request waits for: approval (given here when the issuer asks
    /// and the account allows), else domain validation or issuance.
    pub(super) async fn waiting(
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
    pub(super) async fn issued(
        &mut self,
        ask: &Ask,
        id: u64,
        client: &certcentral::Client,
    ) -> Result<Action> {
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
    pub(super) async fn listed(
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
                l.sort_by_key(|c| std::cmp::Reverse(c.id));
                Continue(l)
            }
            Err(e) => Break(self.call_failed(&e, "listing the order's certificates")),
        }
    }
}

/// One of the order's certificates as its list shows it.
pub(super) struct Listed {
    id: u64,
    /// The CSR's fingerprint (empty when the list shows none).
    csr: String,
    status: ReissueStatus,
}
