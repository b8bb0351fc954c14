//! The Secret holds a good certificate for the spec: keep status, the Secret and
//! DigiCert's view in line, and decide when to look again. Also what a held
//! (canceled) reissue shows meanwhile.

use super::*;
use crate::controller::decide::StoredCertificate;

impl Run {
    pub(super) async fn idle(
        &mut self,
        target: &Secret,
        stored: &StoredCertificate,
    ) -> Result<Action> {
        // A crash between the last status write of a reissue and the removal of its
        // key leaves that Secret behind: no reissue is in flight, so it goes.
        self.delete_pending_key().await?;
        self.describe_certificate(stored);
        // The Secret serves the spec: Ready, before any DigiCert call, whose failure
        // shows in the DigiCert condition and leaves Ready alone. A revoked order keeps
        // the Ready=False its check set.
        let ready = status::find(&self.status.conditions, READY)
            .map(|c| (c.status == "True", c.reason.as_str()));
        if decide::ready_when_idle(
            ready,
            self.status.order_status.as_deref() == Some("revoked"),
            stored.leaf.not_after,
            self.now,
        ) {
            self.condition(
                READY,
                true,
                "Issued",
                format!(
                    "the Secret holds a certificate valid until {}",
                    status::rfc3339(stored.leaf.not_after)
                ),
            );
        }
        let auto_reissue_differs = self.spec().auto_reissue.is_some()
            && self.spec().auto_reissue != self.status.auto_reissue
            && !status::auto_reissue_refused(&self.status.conditions, self.generation());
        if (self.order_check_due(stored.certificate_id, false) || auto_reissue_differs)
            && let Break(action) = self
                .check_order(Some(target), stored.certificate_id)
                .await?
        {
            return Ok(action);
        }
        self.plan_end_condition().await;
        // What DigiCert said may have moved the order's end: plan with it.
        let renewal = decide::planned_renewal(self.spec(), &stored.leaf, self.order_ends());
        self.status.renewal_time = renewal.map(status::time);
        self.refresh_secret(target, stored).await?;
        if status::find(&self.status.conditions, ISSUING).is_none_or(|c| c.status == "True") {
            self.condition(ISSUING, false, "Idle", "no reissue in progress");
        }
        // Domain validations that would lapse before the renewal are renewed now.
        let dcv_look = match self.client().await? {
            Some(client) => proceed!(self.validate_ahead(&client, renewal).await?),
            None => None,
        };
        Ok(self.next_look(&[renewal, dcv_look], stored.leaf.not_after))
    }

    pub(super) fn last_order_check(&self) -> Option<OffsetDateTime> {
        self.status.last_order_check.as_ref().map(status::offset)
    }

    /// When to look again: at the planned renewal (or domain validation look), the
    /// certificate's expiry, the start of the order-end warning or the next resync,
    /// whichever comes first.
    pub(super) fn next_look(
        &self,
        planned: &[Option<OffsetDateTime>],
        not_after: OffsetDateTime,
    ) -> Action {
        let warning =
            decide::warning_starts(self.order_ends(), self.ctx.config.order_expiry_warning);
        let mut times = planned.to_vec();
        times.extend([Some(not_after), warning]);
        Action::requeue(decide::next_look(
            &times,
            self.last_order_check(),
            self.check_period(),
            self.now,
        ))
    }

    /// Status describes the certificate in the Secret now, whoever put it there.
    pub(super) fn describe_certificate(&mut self, stored: &StoredCertificate) {
        let current = self
            .status
            .certificate
            .as_ref()
            .is_some_and(|c| c.thumbprint == stored.leaf.thumbprint);
        if !current {
            self.status.certificate = Some(certificate_status(
                stored.certificate_id.unwrap_or_default(),
                &stored.leaf,
            ));
            self.status.observed_order_id = Some(self.spec().order_id);
        }
    }

    /// Brings the Secret's labels, annotations, owner reference and key encoding in
    /// line with the spec and the operator's flags, keeping certificate and key.
    pub(super) async fn refresh_secret(
        &mut self,
        target: &Secret,
        stored: &StoredCertificate,
    ) -> Result<()> {
        let want = self.secret_meta(stored.certificate_id.unwrap_or_default(), &stored.leaf);
        let Some(refreshed) = secret::refreshed(target, &want, key_encoding(self.spec())) else {
            return Ok(());
        };
        self.write_secret(&refreshed).await?;
        self.event(
            EventType::Normal,
            "SecretUpdated",
            "WriteSecret",
            "brought the Secret's labels, annotations, owner and key encoding in line with the spec; certificate and key unchanged".into(),
        )
        .await;
        Ok(())
    }

    /// A reissue is called for, but a cancel request holds reissues until the spec
    /// changes or a renewal is requested. Held is never silent: from the renewal time
    /// on Ready says so, and at expiry Ready turns false.
    pub(super) async fn held(
        &mut self,
        reason: ReissueReason,
        state: &SecretState,
    ) -> Result<Action> {
        // A denied request holds the spec as a cancel does; its condition says which.
        let denied = status::find(&self.status.conditions, ISSUING)
            .is_some_and(|c| c.status == "False" && c.reason == "Denied");
        if !denied {
            self.condition(
                ISSUING,
                false,
                "Canceled",
                "canceled on request; a spec change or a renewal request starts a new reissue",
            );
        }
        let SecretState::Valid(stored) = state else {
            self.condition(READY, false, reason.as_str(), reason.describe());
            return Ok(Action::requeue(self.check_period()));
        };
        let expired = self.now >= stored.leaf.not_after;
        match reason {
            ReissueReason::Renewal if !expired => {
                let renewal = self.status.renewal_time.as_ref().map(status::show);
                let message = decide::renewal_held_message(
                    renewal.as_deref(),
                    &status::rfc3339(stored.leaf.not_after),
                    denied,
                    RENEW_ANNOTATION,
                );
                if status::find(&self.status.conditions, READY)
                    .is_none_or(|c| c.reason != "RenewalHeld")
                {
                    self.event(EventType::Warning, "RenewalHeld", "Renew", message.clone())
                        .await;
                }
                self.condition(READY, true, "RenewalHeld", message);
            }
            ReissueReason::Renewal => {}
            other => self.condition(READY, false, other.as_str(), other.describe()),
        }
        Ok(self.next_look(&[], stored.leaf.not_after))
    }
}

/// The encoding `tls.key` is written in.
pub(super) fn key_encoding(spec: &crate::crd::DigicertOrderSpec) -> keys::Encoding {
    match spec.private_key.encoding {
        KeyEncoding::Pkcs1 => keys::Encoding::Pkcs1,
        KeyEncoding::Pkcs8 => keys::Encoding::Pkcs8,
    }
}
