//! The periodic look at the order: status fields, auto-reissue, the order's end, certificates DigiCert reissued by itself.

use super::*;

impl Run {
    /// Copies what order info says into status, and into the change feed's view.
    pub(super) fn observe_order(&mut self, info: &OrderInfo) {
        self.status.order_status = Some(info.status.to_string());
        self.status.auto_reissue = Some(info.auto_reissue == 1);
        self.status.order_valid_till = info.order_valid_till.clone();
        self.status.last_order_check = Some(status::time(self.now));
        self.tell_feed(
            info.status.clone(),
            Some(info.certificate.id).filter(|id| *id != 0),
            info.order_valid_till.clone(),
        );
    }

    /// What this reconcile learnt of the order (or did to it) becomes the feed's view,
    /// so the feed's next reading of the same state is no news.
    pub(super) fn tell_feed(
        &mut self,
        status: OrderStatus,
        certificate_id: Option<u64>,
        order_valid_till: Option<String>,
    ) {
        let view = decide::feed::OrderView {
            status,
            certificate_id,
            order_valid_till,
            stale: false,
        };
        if let Some(id) = &self.feed.id {
            self.ctx
                .feeds
                .observed(id, self.spec().order_id, view.clone());
        }
        self.feed.view = Some(view);
    }

    /// How long between full checks of the order (order info and reissues): the
    /// resync, or with no working change feed at most `FEEDLESS_RESYNC`.
    pub(super) fn check_period(&self) -> Duration {
        decide::feed::order_check_period(self.feed.standing, self.ctx.config.resync)
    }

    /// Whether the order is read at DigiCert now: its full check is due, or the change
    /// feed says it changed. A quiet feed costs no call; the order's end it read is
    /// taken as it is.
    pub(super) fn order_check_due(
        &mut self,
        stored_certificate_id: Option<u64>,
        duplicate: bool,
    ) -> bool {
        if decide::order_check_due(self.last_order_check(), self.check_period(), self.now) {
            return true;
        }
        let known = decide::feed::Known {
            order_status: self.status.order_status.as_deref(),
            certificate_id: self
                .status
                .certificate
                .as_ref()
                .map(|c| c.id)
                .or(stored_certificate_id),
            duplicate,
        };
        match decide::feed::idle_look(self.feed.standing, self.feed.view.as_ref(), known) {
            decide::feed::Look::Order(why) => {
                tracing::info!(why, "looking at the order at DigiCert");
                true
            }
            decide::feed::Look::Quiet => {
                if let Some(end) = self
                    .feed
                    .view
                    .as_ref()
                    .and_then(|v| v.order_valid_till.clone())
                {
                    self.status.order_valid_till = Some(end);
                }
                false
            }
            decide::feed::Look::AwaitFeed | decide::feed::Look::Resync => false,
        }
    }

    /// The `OrderExpiring` condition from the order's end as DigiCert last said, with a
    /// Warning event when it turns true.
    pub(super) async fn plan_end_condition(&mut self) {
        let plan = decide::plan_end(
            self.order_ends(),
            self.ctx.config.order_expiry_warning,
            self.now,
        );
        let Some((expiring, reason, message)) = decide::order_expiring_condition(&plan, self.now)
        else {
            status::remove(&mut self.status.conditions, ORDER_EXPIRING);
            return;
        };
        let was = status::find(&self.status.conditions, ORDER_EXPIRING)
            .map(|c| (c.status == "True", c.reason.clone()));
        if expiring && was.as_ref().is_none_or(|(s, r)| !s || r != reason) {
            self.event(EventType::Warning, reason, "CheckOrder", message.clone())
                .await;
        }
        self.condition(ORDER_EXPIRING, expiring, reason, message);
    }

    /// Mirrors spec.autoReissue to DigiCert when they differ; when DigiCert refuses, says
    /// so once per spec generation instead of asking again and again.
    pub(super) async fn sync_auto_reissue(
        &mut self,
        info: &OrderInfo,
        client: &certcentral::Client,
    ) -> ControlFlow<Action> {
        // Auto-reissue: mirror the spec when DigiCert differs, once per spec generation
        // when DigiCert refuses.
        if let Some(want) = self.spec().auto_reissue {
            let refused_now =
                status::auto_reissue_refused(&self.status.conditions, self.generation());
            if (info.auto_reissue == 1) != want && !refused_now {
                match client.set_auto_reissue(self.spec().order_id, want).await {
                    Ok(()) => {
                        self.status.auto_reissue = Some(want);
                        self.condition(
                            AUTO_REISSUE_SYNCED,
                            true,
                            "Synced",
                            format!("auto-reissue is {}", if want { "on" } else { "off" }),
                        );
                        self.event(
                            EventType::Normal,
                            "AutoReissueUpdated",
                            "UpdateAutoReissue",
                            format!("set DigiCert's auto-reissue to {want}"),
                        )
                        .await;
                    }
                    Err(e) if !e.is_retryable() => {
                        let message = format!("DigiCert refused to change auto-reissue: {e}");
                        let reason = if e.has_code("auto_reissue_not_supported") {
                            "NotSupported"
                        } else {
                            status::failure_reason(&e)
                        };
                        self.condition(AUTO_REISSUE_SYNCED, false, reason, message.clone());
                        self.event(EventType::Warning, reason, "UpdateAutoReissue", message)
                            .await;
                    }
                    Err(e) => {
                        // Look again after the back-off, not a resync later.
                        self.status.last_order_check = None;
                        self.condition(
                            AUTO_REISSUE_SYNCED,
                            false,
                            status::failure_reason(&e),
                            format!("updating auto-reissue: {e}; trying again"),
                        );
                        return Break(self.fail(&e, "updating auto-reissue").await);
                    }
                }
            } else if (info.auto_reissue == 1) == want {
                self.condition(
                    AUTO_REISSUE_SYNCED,
                    true,
                    "Synced",
                    format!("auto-reissue is {}", if want { "on" } else { "off" }),
                );
            }
        } else {
            status::remove(&mut self.status.conditions, AUTO_REISSUE_SYNCED);
        }

        Continue(())
    }

    /// The periodic look at the order: status fields, auto-reissue drift, and
    /// certificates DigiCert reissued by itself.
    pub(super) async fn check_order(
        &mut self,
        target: Option<&Secret>,
        stored_certificate_id: Option<u64>,
    ) -> Flow {
        let Some(client) = self.client().await? else {
            return Ok(Break(Action::requeue(schedule::NO_ACCOUNT_RETRY)));
        };
        let info = match client.order_info(self.spec().order_id).await {
            Ok(i) => i,
            Err(e) => return Ok(Break(self.fail(&e, "reading the order").await)),
        };
        self.observe_order(&info);
        if let Break(action) = self.sync_auto_reissue(&info, &client).await {
            return Ok(Break(action));
        }

        if info.status == OrderStatus::Revoked {
            let message = format!(
                "order {} was revoked at DigiCert, its certificates with it; no certificate can be reissued from it",
                self.spec().order_id
            );
            if status::find(&self.status.conditions, READY)
                .is_none_or(|c| c.reason != "OrderRevoked")
            {
                self.event(
                    EventType::Warning,
                    "OrderRevoked",
                    "CheckOrder",
                    message.clone(),
                )
                .await;
            }
            self.condition(READY, false, "OrderRevoked", message);
            self.clear_failures();
            return Ok(Break(Action::requeue(self.check_period())));
        }
        // A certificate DigiCert issued without us (auto-reissue): take it when it is
        // for the key the Secret already holds.
        let known = self
            .status
            .certificate
            .as_ref()
            .map(|c| c.id)
            .or(stored_certificate_id);
        // Whether the Secret's certificate was revoked: by hand, or by a reissue that
        // changed names. Only the reissue list shows a certificate's status.
        if let Some(k) = known
            && let Break(action) = self.check_revoked(&client, k).await?
        {
            return Ok(Break(action));
        }
        if info.status == OrderStatus::Issued
            && info.certificate.serial_number.is_some()
            && known.is_some_and(|k| k != info.certificate.id)
            && stored_certificate_id != Some(info.certificate.id)
            && let Some(target) = target
        {
            return self
                .pick_up(info.certificate.id, target, &client)
                .await
                .map(Break);
        }
        // Only a check that went through to the end resets the back-off.
        self.clear_failures();
        Ok(Continue(()))
    }

    /// Looks the Secret's certificate up in the reissue list; `Some` once it is found
    /// revoked (a new certificate comes next) or after a failed call.
    async fn check_revoked(&mut self, client: &certcentral::Client, certificate_id: u64) -> Flow {
        let list = proceed_up!(self.listed(client, false).await?);
        let Some(ours) = list.iter().find(|c| c.id == certificate_id) else {
            return Ok(Continue(()));
        };
        if ours.status != DigiCertReissueStatus::Revoked {
            return Ok(Continue(()));
        }
        let serial = ours.serial_number.clone().unwrap_or_default();
        self.found_revoked(Some(certificate_id), &serial).await;
        Ok(Break(Action::requeue(schedule::NEXT_STEP_NOW)))
    }

    /// Updates `tls.crt` (and `ca.crt`) with a certificate DigiCert reissued for the
    /// Secret's own key; the key stays as it is.
    pub(super) async fn pick_up(
        &mut self,
        certificate_id: u64,
        target: &Secret,
        client: &certcentral::Client,
    ) -> Result<Action> {
        let Some(key) = secret::stored_key(target) else {
            return Ok(Action::requeue(schedule::NEXT_STEP_NOW));
        };
        let (chain, leaf) = match self.download(certificate_id, &key, client).await? {
            Downloaded::Failed(action) => return Ok(action),
            Downloaded::Matching(chain, leaf) => (chain, leaf),
            Downloaded::Mismatch(_) => {
                let message = format!(
                    "DigiCert's current certificate {certificate_id} is for another key or other names; keeping the Secret's"
                );
                self.event(EventType::Warning, "ForeignCertificate", "PickUp", message)
                    .await;
                return Ok(Action::requeue(self.check_period()));
            }
        };
        let key_pem = secret::stored_key_pem(target).unwrap_or_default();
        let renewal = self
            .store_certificate(certificate_id, &chain, &leaf, &key_pem)
            .await?;
        let message = format!(
            "picked up certificate {certificate_id} that DigiCert reissued (serial {}), valid until {}; key unchanged",
            leaf.serial_number,
            status::rfc3339(leaf.not_after)
        );
        self.condition(READY, true, "Issued", message.clone());
        self.plan_end_condition().await;
        self.clear_failures();
        self.save().await?;
        self.ctx.metrics.reissue("picked_up");
        self.event(EventType::Normal, "ReissuePickedUp", "WriteSecret", message)
            .await;
        Ok(self.next_look(&[renewal], leaf.not_after))
    }
}
