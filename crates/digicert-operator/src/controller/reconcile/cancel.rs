//! Canceling at DigiCert: on request (the cancel annotation) and when a reissue is superseded.

use super::*;

impl Run {
    /// Cancels the order's pending reissue at DigiCert; `Some` is the back-off after a
    /// failure. A 400 means nothing is pending any more (issued, or canceled already).
    pub(super) async fn cancel_at_digicert(
        &mut self,
        client: &certcentral::Client,
        note: &str,
        why: &str,
    ) -> ControlFlow<Action> {
        match client.cancel(self.spec().order_id, note).await {
            // DigiCert puts a reissue_pending order back to issued (its documented
            // answer to this cancel): status says so without another call.
            Ok(()) => {
                if self.status.order_status.as_deref() == Some(OrderStatus::ReissuePending.as_str())
                {
                    self.status.order_status = Some(OrderStatus::Issued.to_string());
                }
            }
            // Nothing was pending any more; what the order is now, the next look reads.
            Err(e) if e.status() == Some(400) => self.status.last_order_check = None,
            Err(e) => return Break(self.fail(&e, "canceling the pending reissue").await),
        }
        self.ctx.metrics.reissue("canceled");
        self.event(
            EventType::Normal,
            "ReissueCanceled",
            "Cancel",
            format!("canceled the pending reissue: {why}"),
        )
        .await;
        Continue(())
    }

    /// The cancel annotation ends the reissue in flight (at DigiCert too) and holds
    /// further reissues of this spec; with nothing in flight it changes nothing.
    pub(super) async fn cancel_on_request(&mut self, request: Option<String>) -> Result<Action> {
        let Some(reissue) = self.status.reissue.clone() else {
            self.status.last_cancel_request = request;
            self.event(
                EventType::Normal,
                "NothingToCancel",
                "Cancel",
                "no reissue is in flight; nothing was canceled and renewals go on".into(),
            )
            .await;
            return Ok(Action::requeue(schedule::NEXT_STEP_NOW));
        };
        if reissue.state != ReissueState::Prepared {
            let Some(client) = self.client().await? else {
                return Ok(Action::requeue(schedule::NO_ACCOUNT_RETRY));
            };
            if let Break(action) = self
                .cancel_at_digicert(&client, "Canceled on request", "on request")
                .await
            {
                return Ok(action);
            }
        }
        self.abandon().await?;
        self.status.last_cancel_request = request;
        self.status.hold_generation = self.generation();
        self.condition(
            ISSUING,
            false,
            "Canceled",
            "canceled on request; a spec change or a renewal request starts a new reissue",
        );
        Ok(Action::requeue(schedule::NEXT_STEP_NOW))
    }
}
