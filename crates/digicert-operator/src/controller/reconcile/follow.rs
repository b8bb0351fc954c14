//! Following a submitted reissue until DigiCert issues it: approval, validation, rejection.

use super::*;

impl Run {
    /// Looks at the order and moves the reissue on: write the certificate when issued,
    /// approve when asked to, report what it waits for.
    pub(super) async fn follow(
        &mut self,
        pending: PendingKey,
        client: &certcentral::Client,
    ) -> Result<Action> {
        // A duplicate is looked for in the order's duplicates; the order itself is
        // another resource's business.
        if self.is_duplicate() {
            let Some(reissue) = self.status.reissue.clone() else {
                return Ok(Action::requeue(schedule::NEXT_STEP_NOW));
            };
            let known = self.status.certificate.as_ref().map(|c| c.id);
            return self
                .look_up_in_reissues(pending, &reissue, known, None, client)
                .await;
        }
        // A validation under way goes on by itself: the order is read again once
        // DigiCert has validated, not at every look for the published value.
        if self.challenge().is_some()
            && let Some((spec, from)) = self.dcv_settings().await?
        {
            return self.advance_challenge(&spec, from, client).await;
        }
        let order_id = self.spec().order_id;
        let info = match client.order_info(order_id).await {
            Ok(i) => i,
            Err(e) => return Ok(self.fail(&e, "reading the order").await),
        };
        self.observe_order(&info);
        // An adopted reissue has no request id yet: the order's pending request is it.
        if let Some(reissue) = &self.status.reissue
            && let Some(id) =
                decide::adopted_request(reissue.request_id, &info.status, &info.requests)
        {
            self.reissue_mut().request_id = Some(id);
        }
        let Some(reissue) = self.status.reissue.clone() else {
            // Followed only while a reissue is in flight: not reached.
            return Ok(Action::requeue(schedule::NEXT_STEP_NOW));
        };
        // The certificate in the Secret is not the answer, even when its CSR is the
        // same (a reused RSA key gives the very same CSR).
        let known = self.status.certificate.as_ref().map(|c| c.id);
        let current_is_ours = info.certificate.serial_number.is_some()
            && decide::is_our_reissue(
                info.certificate.id,
                info.certificate.csr.as_deref(),
                &reissue,
                known,
            );
        match decide::order_says(current_is_ours, info.certificate.id, &info.status) {
            decide::OrderSays::Issued(id) => {
                let action = self.write_certificate(id, &pending, client).await?;
                // The same order info serves to mirror auto-reissue: no extra read.
                return Ok(self
                    .sync_auto_reissue(&info, client)
                    .await
                    .break_value()
                    .unwrap_or(action));
            }
            decide::OrderSays::Pending => {
                let action = self.waiting(&reissue, client).await?;
                return Ok(self
                    .sync_auto_reissue(&info, client)
                    .await
                    .break_value()
                    .unwrap_or(action));
            }
            decide::OrderSays::LookInList => {}
        }
        // The order is not waiting on a reissue and its certificate is not ours: ours
        // was rejected, canceled or replaced. The reissue list says which.
        self.look_up_in_reissues(pending, &reissue, known, Some(&info.status), client)
            .await
    }

    /// Finds the reissue in flight in the order's reissue list: write it when issued,
    /// wait while pending (or too young to be listed), else report it rejected and
    /// start over after a back-off.
    async fn look_up_in_reissues(
        &mut self,
        pending: PendingKey,
        reissue: &ReissueStatus,
        known: Option<u64>,
        order_status: Option<&OrderStatus>,
        client: &certcentral::Client,
    ) -> Result<Action> {
        let list = proceed!(self.listed(client, reissue.duplicate).await?);
        let ours = list
            .into_iter()
            .find(|c| decide::is_our_reissue(c.id, c.csr.as_deref(), reissue, known));
        let submitted = reissue
            .submitted_at
            .as_ref()
            .map(status::offset)
            .unwrap_or(self.now);
        match decide::list_says(ours.map(|c| (c.id, c.status)), known, submitted, self.now) {
            decide::ListSays::Issued(id) => self.write_certificate(id, &pending, client).await,
            decide::ListSays::Pending => self.waiting(reissue, client).await,
            decide::ListSays::Rejected(what) => {
                let message = match order_status {
                    Some(s) => format!("DigiCert {what} the reissue; the order is {s}"),
                    None => format!("DigiCert {what} the duplicate request"),
                };
                self.condition(ISSUING, false, "Rejected", message.clone());
                self.condition(
                    READY,
                    self.stored_state_ok() == Some(true),
                    "ReissueRejected",
                    message.clone(),
                );
                self.event(EventType::Warning, "ReissueRejected", "Reissue", message)
                    .await;
                // Try again, but not at once: somebody may have rejected it on purpose.
                let delay = self.back_off_permanently();
                self.abandon().await?;
                Ok(Action::requeue(delay))
            }
        }
    }

    /// The reissue is pending at DigiCert: approve it if allowed, else report and poll.
    pub(super) async fn waiting(
        &mut self,
        reissue: &ReissueStatus,
        client: &certcentral::Client,
    ) -> Result<Action> {
        let mut reason = "Pending";
        let mut message = "waiting for DigiCert to issue the certificate".to_string();
        if let Some(request_id) = reissue.request_id {
            match client.request_info(request_id).await {
                Ok(r) if r.status == RequestStatus::Pending => {
                    (reason, message) = proceed!(self.decide_request(request_id, client).await?);
                }
                Ok(r) if r.status == RequestStatus::Approved => {
                    reason = "ValidationPending";
                    message = "approved; waiting for DigiCert's validation and issuance".into();
                }
                Ok(_) => {}
                Err(e) => return Ok(self.fail(&e, "reading the reissue request").await),
            }
        }
        let since = reissue
            .submitted_at
            .as_ref()
            .map(status::offset)
            .unwrap_or(self.now);
        // Duplicates have no validation of their own: DigiCert refuses them instead.
        if !reissue.duplicate
            && let Break(action) = self.validate_for_reissue(client, since).await?
        {
            if self.status.failed_attempts == 0 {
                self.condition(
                    ISSUING,
                    true,
                    "ValidationPending",
                    "DigiCert holds the reissue until its domains are validated; the operator is validating them (see the DomainValidation condition)",
                );
            }
            return Ok(action);
        }
        self.clear_failures();
        self.condition(ISSUING, true, reason, message);
        // A duplicate's issuance does not move the order: the feed cannot show it.
        let standing = match reissue.duplicate {
            true => decide::feed::Standing::Off,
            false => self.feed.standing,
        };
        Ok(Action::requeue(decide::feed::pending_look(
            standing,
            self.now - since,
        )))
    }

    /// A request waits for an administrator: approve it when the spec asks and the
    /// account allows. `Ok` is what the Issuing condition says; `Err` the back-off
    /// after a passing failure.
    pub(super) async fn approve(
        &mut self,
        request_id: u64,
        client: &certcentral::Client,
    ) -> Flow<(&'static str, String)> {
        let asked = self.spec().approve_reissues;
        let grants = match asked {
            true => self.account().await?.map(|a| a.grants.clone()),
            false => None,
        };
        if let super::super::access::Approval::Leave(why) =
            super::super::access::approval(asked, grants.as_ref())
        {
            return Ok(Continue((
                "NeedsApproval",
                format!("request {request_id} waits for approval: {why}"),
            )));
        }
        let note = format!(
            "Approved by digicert-operator for {}/{}",
            self.namespace, self.name
        );
        self.approve_at_digicert(request_id, client, &note, "")
            .await
    }

    /// Approves the request at DigiCert with `note`; `how` is said after "approved
    /// request N" (e.g. " on request"). `Ok` is what the Issuing condition says.
    pub(super) async fn approve_at_digicert(
        &mut self,
        request_id: u64,
        client: &certcentral::Client,
        note: &str,
        how: &str,
    ) -> Flow<(&'static str, String)> {
        match client.approve_request(request_id, note).await {
            Ok(()) => {
                self.event(
                    EventType::Normal,
                    "ReissueApproved",
                    "Approve",
                    format!("approved request {request_id}{how}"),
                )
                .await;
                Ok(Continue((
                    "Approved",
                    format!("approved request {request_id}{how}; waiting for issuance"),
                )))
            }
            // DigiCert busy or down: back off like any failed call.
            Err(e) if e.is_retryable() => {
                Ok(Break(self.fail(&e, "approving the reissue request").await))
            }
            Err(e) => Ok(Continue((
                "NeedsApproval",
                format!(
                    "request {request_id} waits for approval and the operator cannot approve it: {e}"
                ),
            ))),
        }
    }
}
