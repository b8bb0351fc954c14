//! `spec.issuance: Duplicate`: a certificate of its own key for the names of the
//! order's current certificate, following it as the order is reissued.

use super::*;
use crate::certcentral::{DuplicateCertificateRequest, DuplicateRequest};
use crate::crd::RevokedStatus;

/// A certificate of the order as the reissue or duplicate list shows it.
pub(super) struct Listed {
    pub id: u64,
    pub csr: Option<String>,
    pub serial_number: Option<String>,
    pub status: DigiCertReissueStatus,
}

impl Run {
    pub(super) fn is_duplicate(&self) -> bool {
        self.status.reissue.as_ref().is_some_and(|r| r.duplicate)
            || (self.status.reissue.is_none() && self.spec().issuance == Issuance::Duplicate)
    }

    /// The order's reissues, or its duplicates; a failure ends the reconcile with its back-off.
    pub(super) async fn listed(
        &mut self,
        client: &certcentral::Client,
        duplicates: bool,
    ) -> Flow<Vec<Listed>> {
        let order_id = self.spec().order_id;
        if duplicates {
            return Ok(match client.list_duplicates(order_id).await {
                Ok(l) => Continue(
                    l.into_iter()
                        .map(|c| Listed {
                            // Approved but not issued yet: still on its way.
                            status: match c.status {
                                DigiCertReissueStatus::Approved => DigiCertReissueStatus::Pending,
                                s => s,
                            },
                            id: c.id,
                            csr: c.csr,
                            serial_number: c.serial_number,
                        })
                        .collect(),
                ),
                Err(e) => Break(self.fail(&e, "listing duplicates").await),
            });
        }
        Ok(match client.list_reissues(order_id).await {
            Ok(l) => Continue(
                l.into_iter()
                    .map(|c| Listed {
                        id: c.id,
                        csr: c.csr,
                        serial_number: c.serial_number,
                        status: c.status,
                    })
                    .collect(),
            ),
            Err(e) => Break(self.fail(&e, "listing reissues").await),
        })
    }

    /// A DigicertOrder that takes duplicates, with no request in flight.
    pub(super) async fn duplicate(
        &mut self,
        target: Option<&Secret>,
        state: SecretState,
        manual: bool,
    ) -> Result<Action> {
        let stored = match &state {
            SecretState::Valid(s) => Some(s.as_ref().clone()),
            _ => None,
        };
        if let Some(s) = &stored {
            self.describe_certificate(s);
            self.status.renewal_time = None;
        }
        let due = self.order_check_due(None, true);
        if let Some(s) = &stored
            && !due
            && !manual
        {
            return Ok(self.next_look(&[], s.leaf.not_after));
        }
        let Some(client) = self.client().await? else {
            return Ok(Action::requeue(schedule::NO_ACCOUNT_RETRY));
        };
        let info = match client.order_info(self.spec().order_id).await {
            Ok(i) => i,
            Err(e) => return Ok(self.fail(&e, "reading the order").await),
        };
        self.observe_order(&info);
        let revoked = match &stored {
            Some(s) => proceed!(self.duplicate_revoked(&client, s).await?),
            None => false,
        };
        let current = order_current(&info);
        let copied = self.status.duplicate_of;
        match decide::duplicate_plan(self.spec(), &state, &current, copied, revoked, manual) {
            decide::DuplicatePlan::Request { reason, names } => {
                self.prepare(reason, target, Some((names, current.id)))
                    .await
            }
            decide::DuplicatePlan::Wait { reason, message } => {
                self.clear_failures();
                self.condition(READY, false, reason, message.clone());
                self.condition(ISSUING, false, reason, message);
                Ok(Action::requeue(self.check_period()))
            }
            decide::DuplicatePlan::Keep => {
                let (Some(stored), Some(target)) = (stored, target) else {
                    return Ok(Action::requeue(self.check_period()));
                };
                // A copy of unknown source that matches is taken as this one's.
                self.status.duplicate_of.get_or_insert(current.id);
                self.keep_duplicate(target, &stored).await
            }
        }
    }

    /// The Secret holds a good duplicate: keep status and the Secret in line.
    async fn keep_duplicate(
        &mut self,
        target: &Secret,
        stored: &decide::StoredCertificate,
    ) -> Result<Action> {
        self.delete_pending_key().await?;
        self.refresh_secret(target, stored).await?;
        self.status.revoked = None;
        self.clear_failures();
        let ready = status::find(&self.status.conditions, READY);
        if ready.is_none_or(|c| c.status != "True") && self.now < stored.leaf.not_after {
            self.condition(
                READY,
                true,
                "Issued",
                format!(
                    "the Secret holds a duplicate valid until {} of the order's certificate",
                    status::rfc3339(stored.leaf.not_after)
                ),
            );
        }
        if status::find(&self.status.conditions, ISSUING).is_none_or(|c| c.status == "True") {
            self.condition(ISSUING, false, "Idle", "no duplicate request in progress");
        }
        Ok(self.next_look(&[], stored.leaf.not_after))
    }

    /// Whether DigiCert shows the Secret's duplicate revoked (by its id, else its
    /// serial number); records it in status.
    async fn duplicate_revoked(
        &mut self,
        client: &certcentral::Client,
        stored: &decide::StoredCertificate,
    ) -> Flow<bool> {
        let list = proceed_up!(self.listed(client, true).await?);
        let ours = list.iter().find(|c| {
            Some(c.id) == stored.certificate_id
                || c.serial_number
                    .as_deref()
                    .is_some_and(|s| s.eq_ignore_ascii_case(&stored.leaf.serial_number))
        });
        let revoked = ours.is_some_and(|c| c.status == DigiCertReissueStatus::Revoked);
        if revoked {
            self.found_revoked(ours.map(|c| c.id), &stored.leaf.serial_number)
                .await;
        }
        Ok(Continue(revoked))
    }

    /// Records that the certificate in the Secret was revoked (once per certificate).
    pub(super) async fn found_revoked(&mut self, id: Option<u64>, serial_number: &str) {
        let id = id.unwrap_or_default();
        if self
            .status
            .revoked
            .as_ref()
            .is_some_and(|r| r.certificate_id == id)
        {
            return;
        }
        self.status.revoked = Some(RevokedStatus {
            certificate_id: id,
            serial_number: Some(serial_number.to_string()),
            detected_at: status::time(self.now),
        });
        let message = format!(
            "DigiCert revoked certificate {id} (serial {serial_number}) in Secret {}; getting a new one",
            self.spec().secret_name
        );
        self.condition(READY, false, "Revoked", message.clone());
        self.event(EventType::Warning, "Revoked", "CheckOrder", message)
            .await;
    }

    /// POSTs the duplicate request, recording `Submitting` first.
    pub(super) async fn submit_duplicate(&mut self, pending: PendingKey) -> Result<Action> {
        let Some(client) = self.client().await? else {
            return Ok(Action::requeue(schedule::NO_ACCOUNT_RETRY));
        };
        let spec = self.spec();
        let names = self
            .status
            .reissue
            .as_ref()
            .map(|r| r.names.clone())
            .unwrap_or_default();
        let Some((common_name, others)) = names.split_first() else {
            self.abandon().await?;
            return Ok(Action::requeue(schedule::NEXT_STEP_NOW));
        };
        let request = DuplicateRequest {
            certificate: DuplicateCertificateRequest {
                common_name: common_name.clone(),
                dns_names: others.to_vec(),
                csr: pending.csr_pem.clone(),
                server_platform: spec.server_platform_id.map(|id| ServerPlatformId { id }),
                signature_hash: spec.signature_hash.as_str().into(),
                ca_cert_id: None,
            },
            skip_approval: spec.skip_approval.then_some(true),
            comments: spec.comments.clone(),
        };
        let order_id = spec.order_id;
        let r = self.reissue_mut();
        r.state = ReissueState::Submitting;
        r.submitted_at = Some(status::time(OffsetDateTime::now_utc()));
        self.save().await?;
        match client.duplicate(order_id, &request).await {
            Ok(answer) => {
                let r = self.reissue_mut();
                r.state = ReissueState::Submitted;
                r.request_id = answer.request_id();
                self.clear_failures();
                self.condition(
                    ISSUING,
                    true,
                    "Submitted",
                    "duplicate requested from DigiCert",
                );
                self.ctx.metrics.reissue("submitted");
                // As for a reissue: no status write of its own (a crash before the
                // reconcile's write leaves `Submitting`, found by its CSR), and the
                // request is an event only while it is still on its way.
                let action = self.follow(pending, &client).await?;
                if self.status.reissue.is_some() {
                    self.event(
                        EventType::Normal,
                        "DuplicateRequested",
                        "Duplicate",
                        format!("requested a duplicate of order {order_id}'s certificate"),
                    )
                    .await;
                }
                Ok(action)
            }
            Err(e) => {
                if e.certainly_not_processed() || !e.is_retryable() {
                    self.reissue_mut().state = ReissueState::Prepared;
                }
                // Refused because the order changed meanwhile (reissued for other
                // names, revoked): look at it again now rather than back off for long.
                if !e.is_retryable() && self.order_moved_on(&client).await {
                    self.abandon().await?;
                    self.status.last_order_check = None;
                    self.event(
                        EventType::Normal,
                        "DuplicateRetried",
                        "Duplicate",
                        format!("the order's certificate changed while a duplicate of it was requested ({e}); asking again"),
                    )
                    .await;
                    return Ok(Action::requeue(schedule::RACE_RETRY));
                }
                Ok(self.fail(&e, "requesting the duplicate").await)
            }
        }
    }

    /// Whether the order's certificate is no longer the one the duplicate in flight
    /// copies, or no longer issued (false when that cannot be told).
    async fn order_moved_on(&mut self, client: &certcentral::Client) -> bool {
        let Some(copied) = self.status.reissue.as_ref().and_then(|r| r.duplicate_of) else {
            return false;
        };
        match client.order_info(self.spec().order_id).await {
            Ok(info) => {
                info.certificate.id != copied
                    || !matches!(
                        info.status,
                        OrderStatus::Issued | OrderStatus::ReissuePending
                    )
            }
            Err(_) => false,
        }
    }
}

/// The order's current certificate, as the decisions see it.
fn order_current(info: &OrderInfo) -> decide::OrderCurrent {
    let c = &info.certificate;
    let mut names = vec![c.common_name.to_ascii_lowercase()];
    for n in &c.dns_names {
        let n = n.to_ascii_lowercase();
        if !names.contains(&n) {
            names.push(n);
        }
    }
    decide::OrderCurrent {
        id: c.id,
        order_status: info.status.to_string(),
        issued: c.serial_number.is_some()
            && matches!(
                info.status,
                OrderStatus::Issued | OrderStatus::ReissuePending
            ),
        names,
        valid_till: decide::order_end(c.valid_till.as_deref()),
    }
}
