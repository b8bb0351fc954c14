//! Deletion: what the deletion policy asks for at DigiCert, and a bound on how long
//! it may keep the resource.

use super::*;

impl Run {
    /// Deletion: act at DigiCert as the deletion policy says, drop the pending key.
    /// While DigiCert cannot be reached, status and events say so and the deletion
    /// waits, at most `--deletion-timeout`; then it gives up with a Warning event and
    /// lets the resource go.
    pub async fn cleanup(&mut self) -> Result<Action> {
        self.withdraw_challenge().await?;
        if self.spec().deletion_policy == crate::crd::DeletionPolicy::CancelPending
            && let Err(e) = self.cancel_for_deletion().await?
        {
            self.cleanup_failed(e).await?;
        }
        self.delete_pending_key().await?;
        self.ctx
            .metrics
            .forget_order(&self.labels(), &self.order.uid().unwrap_or_default());
        Ok(Action::await_change())
    }

    /// No account to cancel with: says so, with the reason account() put in Ready.
    async fn say_nothing_canceled(&mut self) {
        let (reason, why) = status::find(&self.status.conditions, READY)
            .map(|c| (c.reason.clone(), c.message.clone()))
            .unwrap_or_else(|| ("ApiKeyMissing".into(), "no usable API key".into()));
        self.event(
            EventType::Warning,
            &reason,
            "Delete",
            format!("nothing was canceled at DigiCert: {why}"),
        )
        .await;
    }

    /// Cancels what is pending at DigiCert for the order; `Err` is a passing failure
    /// worth trying again. Lasting refusals are reported and not retried.
    async fn cancel_for_deletion(&mut self) -> Result<std::result::Result<(), certcentral::Error>> {
        let Some(account) = self.account().await?.cloned() else {
            self.say_nothing_canceled().await;
            return Ok(Ok(()));
        };
        let client = &account.client;
        let order_id = self.spec().order_id;
        let sent = self
            .status
            .reissue
            .as_ref()
            .is_some_and(|r| r.state != ReissueState::Prepared);
        let holder =
            super::super::claims::is_holder(&self.ctx, &account.endpoint, &self.order).await?;
        let what = decide::cancel_on_deletion(
            order_id,
            holder,
            sent,
            account.grants.cancel_order,
            &account.grants.account,
        );
        let skip = match what {
            decide::CancelOnDeletion::Nothing { warning, why } => Some((warning, why)),
            // What is pending at DigiCert decides: the same call cancels a pending
            // order as a pending reissue.
            decide::CancelOnDeletion::LookAtOrder => match client.order_info(order_id).await {
                Ok(info) => decide::cancel_after_look(
                    &info.status,
                    sent,
                    account.grants.cancel_order,
                    order_id,
                    &account.grants.account,
                ),
                Err(e) if e.is_retryable() => return Ok(Err(e)),
                Err(_) => Some((
                    false,
                    format!("order {order_id} cannot be read; nothing was canceled"),
                )),
            },
        };
        if let Some((warning, why)) = skip {
            let (type_, reason) = if warning {
                (EventType::Warning, "OrderCancelNotAllowed")
            } else {
                (EventType::Normal, "NotCanceled")
            };
            self.event(type_, reason, "Delete", why).await;
            return Ok(Ok(()));
        }
        match client
            .cancel(order_id, "The DigicertOrder was deleted")
            .await
        {
            Ok(()) => {
                self.event(
                    EventType::Normal,
                    "Canceled",
                    "Delete",
                    format!("canceled what was pending on order {order_id}"),
                )
                .await;
            }
            Err(e) if e.is_retryable() => return Ok(Err(e)),
            Err(e) => {
                self.event(
                    EventType::Warning,
                    status::failure_reason(&e),
                    "Delete",
                    format!("could not cancel at DigiCert: {e}"),
                )
                .await;
            }
        }
        Ok(Ok(()))
    }

    /// A cleanup call failed for now: say so and wait (an error the error policy turns
    /// into the wait), or, past the deletion timeout, give up and return.
    async fn cleanup_failed(&mut self, err: certcentral::Error) -> Result<()> {
        let since = self
            .order
            .metadata
            .deletion_timestamp
            .as_ref()
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t.0.as_second()).ok())
            .unwrap_or(self.now);
        let timeout = self.ctx.config.deletion_timeout;
        let failures = self.status.failed_attempts.saturating_add(1);
        match decide::after_cleanup_failure(since, timeout, failures, jitter(), self.now) {
            decide::AfterCleanupFailure::Retry(after) => {
                let deadline =
                    since + time::Duration::try_from(timeout).unwrap_or(time::Duration::ZERO);
                let why = format!(
                    "canceling at DigiCert on deletion failed: {err}; trying again in {}s, giving up at {}",
                    after.as_secs(),
                    status::rfc3339(deadline)
                );
                self.status.failed_attempts = failures;
                self.status.last_failure_time = Some(status::time(self.now));
                self.status.last_failure = Some(format!("{}: {why}", status::failure_reason(&err)));
                self.condition(READY, false, "Deleting", why.clone());
                self.save().await?;
                self.event(EventType::Warning, "CleanupFailed", "Delete", why.clone())
                    .await;
                Err(Error::CleanupPending { after, why })
            }
            decide::AfterCleanupFailure::GiveUp => {
                let message = format!(
                    "gave up canceling at DigiCert after waiting {}s since the deletion: {err}; check order {} in CertCentral",
                    timeout.as_secs(),
                    self.spec().order_id
                );
                self.event(EventType::Warning, "CleanupAbandoned", "Delete", message)
                    .await;
                Ok(())
            }
        }
    }
}
