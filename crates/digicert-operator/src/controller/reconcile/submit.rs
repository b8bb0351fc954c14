//! Submitting a reissue, and finding one whose answer was lost.

use super::*;

impl Run {
    /// Carries a reissue in flight one step further.
    /// `target`: the certificate Secret as this reconcile read it.
    pub(super) async fn progress(
        &mut self,
        reissue: ReissueStatus,
        target: Option<&Secret>,
    ) -> Result<Action> {
        let Some(client) = self.client().await? else {
            return Ok(Action::requeue(schedule::NO_ACCOUNT_RETRY));
        };
        // A duplicate is never canceled at DigiCert: the order-level cancel would hit
        // whatever reissue the order has pending.
        let sent = reissue.state != ReissueState::Prepared && !reissue.duplicate;
        if reissue.spec_fingerprint != decide::spec_fingerprint(self.spec()) {
            // The spec changed under a pending reissue: it would bring the wrong
            // certificate. Cancel it at DigiCert (if it got there) and start again.
            if sent
                && let Break(action) = self
                    .cancel_at_digicert(
                        &client,
                        "Superseded: the DigicertOrder's spec changed",
                        "the spec changed",
                    )
                    .await
            {
                return Ok(action);
            }
            self.condition(
                ISSUING,
                true,
                "SpecChanged",
                "the spec changed; starting a new reissue",
            );
            self.abandon().await?;
            return Ok(Action::requeue(schedule::NEXT_STEP_NOW));
        }
        let Some(pending) = self.pending_key(target).await? else {
            // Only a deleted key Secret gets here. Without the key the certificate is
            // useless: stop the reissue at DigiCert and start over.
            if sent {
                let _ = client
                    .cancel(self.spec().order_id, "The key for this reissue was lost")
                    .await;
            }
            self.event(
                EventType::Warning,
                "PendingKeyLost",
                "Prepare",
                "the Secret with the new key disappeared; starting a new reissue".into(),
            )
            .await;
            self.abandon().await?;
            return Ok(Action::requeue(schedule::NEXT_STEP_NOW));
        };
        if pending.csr_fingerprint != reissue.csr_fingerprint {
            self.abandon().await?;
            return Ok(Action::requeue(schedule::NEXT_STEP_NOW));
        }
        match reissue.state {
            ReissueState::Prepared => self.submit(pending).await,
            ReissueState::Submitting => self.adopt(pending, &client).await,
            ReissueState::Submitted => self.follow(pending, &client).await,
        }
    }

    pub(super) fn reissue_mut(&mut self) -> &mut ReissueStatus {
        self.status.reissue.as_mut().expect("a reissue in flight")
    }

    /// POSTs the reissue (or the duplicate request), recording `Submitting` first.
    pub(super) async fn submit(&mut self, pending: PendingKey) -> Result<Action> {
        if self.is_duplicate() {
            return self.submit_duplicate(pending).await;
        }
        let Some(client) = self.client().await? else {
            return Ok(Action::requeue(schedule::NO_ACCOUNT_RETRY));
        };
        let spec = self.spec();
        let names = decide::wanted_names(spec);
        let request = ReissueRequest {
            certificate: ReissueCertificateRequest {
                common_name: names[0].clone(),
                dns_names: names[1..].to_vec(),
                csr: pending.csr_pem.clone(),
                server_platform: spec.server_platform_id.map(|id| ServerPlatformId { id }),
                signature_hash: spec.signature_hash.as_str().into(),
            },
            comments: spec.comments.clone(),
            skip_approval: spec.skip_approval.then_some(true),
        };
        let order_id = spec.order_id;
        // The rate limiter's wait comes first, so the time recorded is the send's:
        // the window in which a lost answer's request may still arrive counts from it.
        let slot = client.send_slot().await;
        let stamped = std::time::Instant::now();
        let r = self.reissue_mut();
        r.state = ReissueState::Submitting;
        r.submitted_at = Some(status::time(OffsetDateTime::now_utc()));
        self.save().await?;
        if stamped.elapsed() > schedule::SEND_STAMP_TOLERANCE {
            // The status write took long: the recorded time is no longer the send's.
            // Nothing is sent now; the next reconcile looks for the reissue and, once
            // the window from the recorded time has passed, sends it.
            drop(slot);
            return Ok(Action::requeue(schedule::NEXT_STEP_NOW));
        }
        match client.reissue_in(slot, order_id, &request).await {
            Ok(answer) => {
                let r = self.reissue_mut();
                r.state = ReissueState::Submitted;
                r.request_id = answer.request_id();
                r.certificate_id = answer.certificate_id;
                self.clear_failures();
                self.ctx.metrics.reissue("submitted");
                if let Some(id) = answer.certificate_id {
                    // Issued at once: the certificate is fetched and stored now, and that
                    // one status write records it. A crash before it leaves `Submitting`,
                    // which finds this reissue by its CSR.
                    self.answered = answer.chain_pem().map(|pem| (id, pem));
                    let client = client.clone();
                    return self.write_certificate(id, &pending, &client).await;
                }
                // No status write of its own: order info is read at once, and the
                // reconcile's one write says what came of it (a crash before leaves
                // `Submitting`, which finds this reissue by its CSR).
                self.condition(ISSUING, true, "Submitted", "reissue submitted to DigiCert");
                let client = client.clone();
                let action = self.follow(pending, &client).await?;
                // Said only when the reissue is still on its way: an issued one has
                // its own event.
                if let Some(r) = &self.status.reissue {
                    let message = format!(
                        "reissue submitted for order {}{}; reason: {}",
                        self.spec().order_id,
                        r.request_id
                            .map(|id| format!(" (request {id})"))
                            .unwrap_or_default(),
                        r.reason
                    );
                    self.event(EventType::Normal, "ReissueSubmitted", "Reissue", message)
                        .await;
                }
                Ok(action)
            }
            Err(e) => {
                if e.certainly_not_processed() || !e.is_retryable() {
                    // Refused or never arrived: nothing exists at DigiCert.
                    self.reissue_mut().state = ReissueState::Prepared;
                }
                // Otherwise it may have arrived: stay Submitting, adopt it next time.
                Ok(self.fail(&e, "submitting the reissue").await)
            }
        }
    }

    /// After a POST whose answer was lost: find the reissue by its CSR.
    pub(super) async fn adopt(
        &mut self,
        pending: PendingKey,
        client: &certcentral::Client,
    ) -> Result<Action> {
        let reissue = self.status.reissue.clone().expect("a reissue in flight");
        let list = proceed!(self.listed(client, reissue.duplicate).await?);
        let known = self.status.certificate.as_ref().map(|c| c.id);
        let ours = list
            .iter()
            .find(|c| decide::is_our_reissue(c.id, c.csr.as_deref(), &reissue, known));
        match ours {
            Some(found) => {
                let id = found.id;
                let r = self.reissue_mut();
                r.state = ReissueState::Submitted;
                r.certificate_id = Some(id);
                self.condition(
                    ISSUING,
                    true,
                    "Submitted",
                    "found the submitted reissue at DigiCert",
                );
                self.save().await?;
                self.event(
                    EventType::Normal,
                    "ReissueAdopted",
                    "Reissue",
                    format!("found reissue {id} at DigiCert by its CSR"),
                )
                .await;
                self.follow(pending, client).await
            }
            None => {
                // Not (yet) there. A POST still on its way could arrive later than the
                // list was read: wait until no attempt can still be in flight.
                let sent_at = self
                    .status
                    .reissue
                    .as_ref()
                    .and_then(|r| r.submitted_at.as_ref())
                    .map(status::offset);
                if let Some(at) = sent_at {
                    let settled = decide::resubmit_after(at, self.ctx.config.call_timeout);
                    if settled > self.now {
                        self.condition(
                            ISSUING,
                            true,
                            "Submitting",
                            "the reissue request may still be arriving at DigiCert; looking again shortly",
                        );
                        return Ok(Action::requeue(
                            (settled - self.now).try_into().unwrap_or_default(),
                        ));
                    }
                }
                // It never arrived: submit it now.
                self.reissue_mut().state = ReissueState::Prepared;
                self.save().await?;
                self.submit(pending).await
            }
        }
    }
}
