//! One reconcile of a DigicertOrder: gather the inputs, ask `decide`, carry out the
//! answer, record it in status.
//!
//! Crash safety rests on two status writes that come *before* the effects they
//! describe: the new key is stored in its own Secret and the reissue marked
//! `Prepared` before anything goes to DigiCert; the reissue is marked `Submitting`
//! before the POST. A reconcile that finds `Submitting` without a request id looks the
//! CSR up in the reissue list and adopts what it finds, so an intent is never
//! submitted twice and its key is never lost.

use std::sync::Arc;
use std::time::Duration;

use super::events::EventType;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use time::OffsetDateTime;

use super::Context;
use super::decide::{self, ReissueReason, SecretState};
use super::secret::{self, PendingKey};
use super::status::{self, AUTO_REISSUE_SYNCED, ISSUING, ORDER_EXPIRING, READY};
use crate::certcentral::{
    self, DownloadFormat, OrderInfo, OrderStatus, ReissueCertificateRequest, ReissueRequest,
    ReissueStatus as DigiCertReissueStatus, RequestStatus, ServerPlatformId,
};
use crate::crd::{
    CANCEL_ANNOTATION, CertificateStatus, DigicertOrder, DigicertOrderStatus, KeyEncoding,
    RENEW_ANNOTATION, ReissueState, ReissueStatus, RotationPolicy,
};
use crate::error::{Error, Result};
use crate::keys::{self, Chain};

/// Transient DigiCert failures: 5 s doubling up to 5 min.
const TRANSIENT_BACKOFF: (Duration, Duration) = (Duration::from_secs(5), Duration::from_secs(300));
/// Failures that will not heal by themselves (bad key, unknown order): 5 min doubling
/// up to 1 h, unless the spec changes.
const PERMANENT_BACKOFF: (Duration, Duration) =
    (Duration::from_secs(300), Duration::from_secs(3600));

/// How long after a POST whose fate is unknown it could still reach DigiCert: the
/// client's request timeout and some slack.
const SUBMIT_SETTLE: Duration = Duration::from_secs(45);

/// The state of one reconcile: the resource, the status being built, and the clients.
pub struct Run {
    ctx: Arc<Context>,
    order: Arc<DigicertOrder>,
    name: String,
    namespace: String,
    status: DigicertOrderStatus,
    saved: DigicertOrderStatus,
    /// The version status writes are made against.
    resource_version: Option<String>,
    now: OffsetDateTime,
    client: Option<certcentral::Client>,
}

fn jitter() -> f64 {
    rand::random::<f64>()
}

impl Run {
    pub fn new(order: Arc<DigicertOrder>, ctx: Arc<Context>) -> Self {
        let status = order.status.clone().unwrap_or_default();
        Run {
            name: order.name_any(),
            namespace: order.namespace().unwrap_or_default(),
            saved: status.clone(),
            status,
            resource_version: order.metadata.resource_version.clone(),
            order,
            ctx,
            now: OffsetDateTime::now_utc(),
            client: None,
        }
    }

    fn spec(&self) -> &crate::crd::DigicertOrderSpec {
        &self.order.spec
    }

    fn generation(&self) -> Option<i64> {
        self.order.metadata.generation
    }

    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.ctx.client.clone(), &self.namespace)
    }

    fn orders(&self) -> Api<DigicertOrder> {
        Api::namespaced(self.ctx.client.clone(), &self.namespace)
    }

    fn condition(&mut self, type_: &str, ok: bool, reason: &str, message: impl Into<String>) {
        let generation = self.generation();
        status::set(
            &mut self.status.conditions,
            type_,
            ok,
            reason,
            message,
            generation,
            self.now,
        );
    }

    async fn event(&self, type_: EventType, reason: &str, action: &str, note: String) {
        if let Err(e) = self
            .ctx
            .events
            .publish(type_, reason, action, &note, &self.order.object_ref(&()))
            .await
        {
            tracing::warn!(error = %e, "cannot publish an event");
        }
    }

    /// Writes the status if it changed: the whole status, replaced, and only if the
    /// object is still the version this reconcile read (a conflict makes the error
    /// policy start a fresh reconcile at once). Replacing, not merging, leaves no
    /// field of an earlier reissue behind.
    async fn save(&mut self) -> Result<()> {
        if self.status == self.saved {
            return Ok(());
        }
        let mut object = (*self.order).clone();
        object.metadata.resource_version = self.resource_version.clone();
        object.status = Some(self.status.clone());
        let written = self
            .orders()
            .replace_status(&self.name, &PostParams::default(), &object)
            .await?;
        self.resource_version = written.metadata.resource_version;
        self.saved = self.status.clone();
        Ok(())
    }

    /// The CertCentral client of this order's account; `None` (with the reason in
    /// status) when it may use none: no account, not granted, or no usable key.
    async fn client(&mut self) -> Result<Option<certcentral::Client>> {
        if let Some(c) = &self.client {
            return Ok(Some(c.clone()));
        }
        match super::accounts::resolve_for_client(&self.ctx, &self.order).await? {
            Ok(resolved) => {
                if status::find(&self.status.conditions, READY).is_some_and(|c| {
                    c.status != "True" && super::access::GATE_REASONS.contains(&c.reason.as_str())
                }) {
                    status::remove(&mut self.status.conditions, READY);
                }
                self.client = Some(resolved.client.clone());
                Ok(Some(resolved.client))
            }
            Err(refusal) => {
                self.condition(READY, false, refusal.reason(), refusal.message());
                Ok(None)
            }
        }
    }

    /// Records a failed DigiCert call and how long to wait; shows it in status.
    async fn fail(&mut self, err: &certcentral::Error, doing: &str) -> Action {
        let permanent = !err.is_retryable();
        self.status.failed_attempts = self.status.failed_attempts.saturating_add(1);
        self.status.last_failure_time = Some(status::rfc3339(self.now));
        let (base, cap) = if permanent {
            PERMANENT_BACKOFF
        } else {
            TRANSIENT_BACKOFF
        };
        let delay = decide::backoff(self.status.failed_attempts, base, cap, jitter());
        self.status.next_attempt_time = Some(status::rfc3339(
            self.now + time::Duration::try_from(delay).unwrap_or_default(),
        ));
        let reason = status::failure_reason(err);
        let message = format!("{doing}: {err}");
        self.status.last_failure = Some(format!("{reason}: {message}"));
        if permanent || !matches!(self.stored_state_ok(), Some(true)) {
            self.condition(READY, false, reason, message.clone());
        }
        if self.status.reissue.is_some() {
            self.condition(ISSUING, true, reason, message.clone());
            self.ctx.metrics.reissue("failed");
        }
        tracing::warn!(%reason, retry_in_s = delay.as_secs(), error = %err, "{doing} failed");
        self.event(EventType::Warning, reason, "CallDigiCert", message)
            .await;
        Action::requeue(delay)
    }

    /// Counts a failure that will not heal by itself and returns the wait before the
    /// next try (5 min doubling to 1 h).
    fn back_off_permanently(&mut self) -> Duration {
        self.status.failed_attempts = self.status.failed_attempts.saturating_add(1);
        let delay = decide::backoff(
            self.status.failed_attempts,
            PERMANENT_BACKOFF.0,
            PERMANENT_BACKOFF.1,
            jitter(),
        );
        self.status.last_failure_time = Some(status::rfc3339(self.now));
        self.status.next_attempt_time = Some(status::rfc3339(
            self.now + time::Duration::try_from(delay).unwrap_or_default(),
        ));
        delay
    }

    /// Whether the status says the Secret is good (None: not known yet).
    fn stored_state_ok(&self) -> Option<bool> {
        status::find(&self.status.conditions, READY).map(|c| c.status == "True")
    }

    fn clear_failures(&mut self) {
        self.status.failed_attempts = 0;
        self.status.last_failure = None;
        self.status.last_failure_time = None;
        self.status.next_attempt_time = None;
    }

    /// The whole reconcile of a live (not deleted) resource.
    pub async fn apply(&mut self) -> Result<Action> {
        let action = self.step().await?;
        // What the step learnt goes into status. After an error it does not: the
        // error policy's pause is what should come next, not another status write.
        self.save().await?;
        self.publish_metrics();
        Ok(action)
    }

    fn labels(&self) -> crate::metrics::OrderLabels {
        crate::metrics::OrderLabels {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    fn publish_metrics(&self) {
        let not_after = self
            .status
            .certificate
            .as_ref()
            .and_then(|c| status::parse_rfc3339(&c.not_after));
        let renewal = self
            .status
            .renewal_time
            .as_deref()
            .and_then(status::parse_rfc3339);
        self.ctx.metrics.order(
            &self.labels(),
            status::is_true(&self.status.conditions, READY),
            not_after,
            renewal,
        );
    }

    async fn step(&mut self) -> Result<Action> {
        let generation = self.generation();
        let spec_changed = self.status.observed_generation != generation;
        let renew_request = self.order.annotations().get(RENEW_ANNOTATION).cloned();
        let manual = renew_request
            .as_deref()
            .is_some_and(|r| !r.is_empty() && Some(r) != self.status.last_renew_request.as_deref());
        if spec_changed || manual {
            // New instructions deserve a fresh start, not the old back-off.
            self.clear_failures();
        }
        if manual {
            self.status.hold_generation = None;
        }
        self.status.observed_generation = generation;

        let cancel_request = self.order.annotations().get(CANCEL_ANNOTATION).cloned();
        if cancel_request.as_deref().is_some_and(|c| !c.is_empty())
            && cancel_request != self.status.last_cancel_request
        {
            return self.cancel_on_request(cancel_request).await;
        }

        // The name goes into a label on the Secrets (at most 63 characters).
        if self.name.len() > 63 {
            self.condition(
                READY,
                false,
                "InvalidSpec",
                "the DigicertOrder's name must be at most 63 characters",
            );
            return Ok(Action::await_change());
        }
        if let Err(message) = decide::validate_spec(self.spec(), &self.status) {
            self.condition(READY, false, "InvalidSpec", message);
            return Ok(Action::await_change());
        }

        // The account must grant this order, and the order must be this resource's.
        if let Some(action) =
            super::accounts::gate(&self.ctx, &self.order, &mut self.status, self.now).await?
        {
            return Ok(action);
        }

        // Back-off after failures: a status write wakes this up again, so the wait is
        // kept in status, not only in the requeue.
        if let Some(at) = self
            .status
            .next_attempt_time
            .as_deref()
            .and_then(status::parse_rfc3339)
            && at > self.now
        {
            return Ok(Action::requeue(
                (at - self.now).try_into().unwrap_or_default(),
            ));
        }

        let target = self.secrets().get_opt(&self.spec().secret_name).await?;
        if let Some(problem) = target
            .as_ref()
            .and_then(|t| secret::conflict(t, &self.name))
        {
            self.condition(READY, false, "SecretConflict", problem);
            return Ok(Action::requeue(self.ctx.config.resync));
        }
        let state = secret::inspect(target.as_ref());
        let expired = match &state {
            SecretState::Valid(stored) => self.now >= stored.leaf.not_after,
            _ => false,
        };
        if let SecretState::Valid(stored) = &state
            && expired
        {
            self.condition(
                READY,
                false,
                "Expired",
                format!(
                    "the certificate in the Secret expired at {}",
                    status::rfc3339(stored.leaf.not_after)
                ),
            );
        }

        if let Some(reissue) = self.status.reissue.clone() {
            // A renewal asked for while a reissue is under way is what that reissue
            // brings; it must not start another one afterwards.
            if manual {
                self.status.last_renew_request = renew_request;
            }
            return self.progress(reissue).await;
        }

        let order_ends = self.status.order_valid_till.as_deref().and_then(|d| {
            time::Date::parse(d, time::macros::format_description!("[year]-[month]-[day]"))
                .ok()
                .and_then(|d| d.with_hms(23, 59, 59).ok())
                .map(|t| t.assume_utc())
        });
        let reason = decide::reissue_reason(
            self.spec(),
            &state,
            renew_request.as_deref(),
            self.status.last_renew_request.as_deref(),
            order_ends,
            self.now,
        );
        let held = self
            .status
            .hold_generation
            .is_some_and(|g| Some(g) == generation);
        if let Some(reason) = reason {
            if held {
                // Canceled on request: wait for a spec change or a renewal request.
                if !matches!(reason, ReissueReason::Renewal) {
                    self.condition(READY, false, reason.as_str(), reason.describe());
                }
                self.condition(
                    ISSUING,
                    false,
                    "Canceled",
                    "canceled on request; a spec change or a renewal request starts a new reissue",
                );
                return Ok(Action::requeue(self.ctx.config.resync));
            }
            // Whatever the reason, this reissue answers a pending renewal request too.
            if manual {
                self.status.last_renew_request = renew_request;
            }
            return self.prepare(reason, target.as_ref()).await;
        }

        // The Secret is good for the spec.
        let SecretState::Valid(stored) = &state else {
            unreachable!("no reissue reason means a valid Secret")
        };
        // A crash between the last status write of a reissue and the removal of its
        // key leaves that Secret behind: no reissue is in flight, so it goes.
        self.delete_pending_key().await?;
        let renewal =
            decide::renewal_time(self.spec(), stored.leaf.not_before, stored.leaf.not_after);
        self.status.renewal_time = Some(status::rfc3339(renewal));
        if self.status.certificate.is_none() {
            self.status.certificate = Some(certificate_status(
                stored.certificate_id.unwrap_or_default(),
                &stored.leaf,
            ));
            self.status.observed_order_id = Some(self.spec().order_id);
        }
        let last_check = self
            .status
            .last_order_check
            .as_deref()
            .and_then(status::parse_rfc3339);
        let auto_reissue_differs = self.spec().auto_reissue.is_some()
            && self.spec().auto_reissue != self.status.auto_reissue
            && !status::auto_reissue_refused(&self.status.conditions, generation);
        if (decide::order_check_due(last_check, self.ctx.config.resync, self.now)
            || auto_reissue_differs)
            && let Some(action) = self
                .check_order(target.as_ref(), stored.certificate_id)
                .await?
        {
            return Ok(action);
        }
        // Ready only once DigiCert raised no complaint: setting it and taking it back
        // in one reconcile would rewrite status (and wake the controller) forever.
        if !status::is_true(&self.status.conditions, READY)
            && self.status.failed_attempts == 0
            && !expired
        {
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
        if status::find(&self.status.conditions, ISSUING).is_none_or(|c| c.status == "True") {
            self.condition(ISSUING, false, "Idle", "no reissue in progress");
        }

        let last_check = self
            .status
            .last_order_check
            .as_deref()
            .and_then(status::parse_rfc3339);
        Ok(Action::requeue(decide::next_check(
            Some(renewal),
            last_check,
            self.ctx.config.resync,
            self.now,
        )))
    }

    /// Cancels the order's pending reissue at DigiCert; `Some` is the back-off after a
    /// failure. A 400 means nothing is pending any more (issued, or canceled already).
    async fn cancel_at_digicert(
        &mut self,
        client: &certcentral::Client,
        note: &str,
        why: &str,
    ) -> Option<Action> {
        match client.cancel(self.spec().order_id, note).await {
            Ok(()) => {}
            Err(e) if e.status() == Some(400) => {}
            Err(e) => return Some(self.fail(&e, "canceling the pending reissue").await),
        }
        self.ctx.metrics.reissue("canceled");
        self.event(
            EventType::Normal,
            "ReissueCanceled",
            "Cancel",
            format!("canceled the pending reissue: {why}"),
        )
        .await;
        None
    }

    /// The cancel annotation: cancel the reissue in flight at DigiCert, and hold.
    async fn cancel_on_request(&mut self, request: Option<String>) -> Result<Action> {
        if let Some(reissue) = self.status.reissue.clone() {
            if reissue.state != ReissueState::Prepared {
                let Some(client) = self.client().await? else {
                    return Ok(Action::requeue(Duration::from_secs(300)));
                };
                if let Some(action) = self
                    .cancel_at_digicert(&client, "Canceled on request", "on request")
                    .await
                {
                    return Ok(action);
                }
            }
            self.abandon().await?;
        }
        self.status.last_cancel_request = request;
        self.status.hold_generation = self.generation();
        self.condition(
            ISSUING,
            false,
            "Canceled",
            "canceled on request; a spec change or a renewal request starts a new reissue",
        );
        Ok(Action::requeue(Duration::ZERO))
    }

    /// Makes and stores a key pair and CSR, marks the reissue `Prepared`, then submits.
    async fn prepare(&mut self, reason: ReissueReason, target: Option<&Secret>) -> Result<Action> {
        // No key, no point in making a CSR.
        if self.client().await?.is_none() {
            return Ok(Action::requeue(Duration::from_secs(300)));
        }
        let spec = self.spec().clone();
        let kind = spec.private_key.kind();
        let reuse = (spec.private_key.rotation_policy == RotationPolicy::Never)
            .then(|| target.and_then(secret::stored_key))
            .flatten()
            .filter(|k| keys::kind_of(k) == kind);
        let reused = reuse.is_some();
        let names: Vec<String> = decide::wanted_names(&spec)[1..].to_vec();
        let common_name = spec.common_name.to_ascii_lowercase();
        // Key generation (RSA 4096 takes a while) stays off the async threads.
        let (key, csr_pem) = tokio::task::spawn_blocking(move || -> Result<_> {
            let key = match reuse {
                Some(k) => k,
                None => keys::generate(kind)?,
            };
            let csr = keys::csr_pem(&key, &common_name, &names)?;
            Ok((key, csr))
        })
        .await
        .map_err(|e| Error::Config(format!("key generation task: {e}")))??;
        let key_pem = keys::encode_private_key(&key, keys::Encoding::Pkcs8)?;
        let key_secret = secret::pending_key_secret(
            &self.name,
            &self.namespace,
            &key_pem,
            &csr_pem,
            secret::owner_reference(&self.order),
        );
        let key_secret_name = secret::pending_key_name(&self.name);
        self.secrets()
            .patch(
                &key_secret_name,
                &PatchParams::apply(secret::MANAGER).force(),
                &Patch::Apply(&key_secret),
            )
            .await?;
        self.status.reissue = Some(ReissueStatus {
            state: ReissueState::Prepared,
            reason: reason.as_str().into(),
            csr_fingerprint: keys::csr_fingerprint(&csr_pem)?,
            spec_fingerprint: decide::spec_fingerprint(&spec),
            key_secret_name,
            request_id: None,
            certificate_id: None,
            submitted_at: None,
        });
        let message = format!(
            "reissue: {}; {} key pair",
            reason.describe(),
            if reused {
                "kept the current"
            } else {
                "generated a new"
            }
        );
        self.condition(ISSUING, true, "Prepared", message.clone());
        // Renewal of a good certificate: the Secret stays Ready meanwhile.
        if !matches!(reason, ReissueReason::Renewal | ReissueReason::Manual) {
            self.condition(READY, false, reason.as_str(), reason.describe());
        }
        self.save().await?;
        self.event(EventType::Normal, "ReissueStarted", "Prepare", message)
            .await;
        let pending = self.pending_key().await?;
        match pending {
            Some(p) => self.submit(p).await,
            None => Ok(Action::requeue(Duration::ZERO)),
        }
    }

    async fn pending_key(&self) -> Result<Option<PendingKey>> {
        let name = secret::pending_key_name(&self.name);
        let Some(s) = self.secrets().get_opt(&name).await? else {
            return Ok(None);
        };
        Ok(secret::read_pending_key(&s).ok())
    }

    async fn delete_pending_key(&self) -> Result<()> {
        let name = secret::pending_key_name(&self.name);
        match self.secrets().delete(&name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Drops the reissue (and its key) so the next reconcile starts afresh.
    async fn abandon(&mut self) -> Result<()> {
        self.status.reissue = None;
        self.save().await?;
        self.delete_pending_key().await
    }

    /// Carries a reissue in flight one step further.
    async fn progress(&mut self, reissue: ReissueStatus) -> Result<Action> {
        let Some(client) = self.client().await? else {
            return Ok(Action::requeue(Duration::from_secs(300)));
        };
        let sent = reissue.state != ReissueState::Prepared;
        if reissue.spec_fingerprint != decide::spec_fingerprint(self.spec()) {
            // The spec changed under a pending reissue: it would bring the wrong
            // certificate. Cancel it at DigiCert (if it got there) and start again.
            if sent
                && let Some(action) = self
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
            return Ok(Action::requeue(Duration::ZERO));
        }
        let Some(pending) = self.pending_key().await? else {
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
            return Ok(Action::requeue(Duration::ZERO));
        };
        if pending.csr_fingerprint != reissue.csr_fingerprint {
            self.abandon().await?;
            return Ok(Action::requeue(Duration::ZERO));
        }
        match reissue.state {
            ReissueState::Prepared => self.submit(pending).await,
            ReissueState::Submitting => self.adopt(pending, &client).await,
            ReissueState::Submitted => self.follow(pending, &client).await,
        }
    }

    fn reissue_mut(&mut self) -> &mut ReissueStatus {
        self.status.reissue.as_mut().expect("a reissue in flight")
    }

    /// POSTs the reissue, recording `Submitting` first.
    async fn submit(&mut self, pending: PendingKey) -> Result<Action> {
        let Some(client) = self.client().await? else {
            return Ok(Action::requeue(Duration::from_secs(300)));
        };
        let now = status::rfc3339(self.now);
        let r = self.reissue_mut();
        r.state = ReissueState::Submitting;
        r.submitted_at = Some(now);
        self.save().await?;

        let spec = self.spec();
        let names = decide::wanted_names(spec);
        let request = ReissueRequest {
            certificate: ReissueCertificateRequest {
                common_name: names[0].clone(),
                dns_names: names[1..].to_vec(),
                csr: pending.csr_pem.clone(),
                server_platform: (spec.server_platform_id != -1).then_some(ServerPlatformId {
                    id: spec.server_platform_id,
                }),
                signature_hash: spec.signature_hash.as_str().into(),
            },
            comments: spec.comments.clone(),
            skip_approval: spec.skip_approval.then_some(true),
        };
        match client.reissue(spec.order_id, &request).await {
            Ok(answer) => {
                let r = self.reissue_mut();
                r.state = ReissueState::Submitted;
                r.request_id = answer.request_id();
                r.certificate_id = answer.certificate_id;
                self.clear_failures();
                self.condition(ISSUING, true, "Submitted", "reissue submitted to DigiCert");
                self.save().await?;
                self.ctx.metrics.reissue("submitted");
                self.event(
                    EventType::Normal,
                    "ReissueSubmitted",
                    "Reissue",
                    format!(
                        "reissue submitted for order {}{}",
                        self.spec().order_id,
                        answer
                            .request_id()
                            .map(|id| format!(" (request {id})"))
                            .unwrap_or_default()
                    ),
                )
                .await;
                let client = client.clone();
                self.follow(pending, &client).await
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
    async fn adopt(&mut self, pending: PendingKey, client: &certcentral::Client) -> Result<Action> {
        let list = match client.list_reissues(self.spec().order_id).await {
            Ok(l) => l,
            Err(e) => return Ok(self.fail(&e, "listing reissues").await),
        };
        let known = self.status.certificate.as_ref().map(|c| c.id);
        let ours = list.iter().find(|c| {
            Some(c.id) != known
                && c.csr
                    .as_deref()
                    .and_then(|csr| keys::csr_fingerprint(csr).ok())
                    .is_some_and(|f| f == pending.csr_fingerprint)
        });
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
                    .and_then(|r| r.submitted_at.as_deref())
                    .and_then(status::parse_rfc3339);
                if let Some(at) = sent_at {
                    let settled = at + time::Duration::try_from(SUBMIT_SETTLE).unwrap_or_default();
                    if settled > self.now {
                        self.condition(
                            ISSUING,
                            true,
                            "Submitting",
                            "the reissue request may still be arriving at DigiCert; looking again shortly",
                        );
                        return Ok(Action::requeue(
                            (settled - self.now).try_into().unwrap_or(SUBMIT_SETTLE),
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

    /// Looks at the order and moves the reissue on: write the certificate when issued,
    /// approve when asked to, report what it waits for.
    async fn follow(
        &mut self,
        pending: PendingKey,
        client: &certcentral::Client,
    ) -> Result<Action> {
        let order_id = self.spec().order_id;
        let info = match client.order_info(order_id).await {
            Ok(i) => i,
            Err(e) => return Ok(self.fail(&e, "reading the order").await),
        };
        self.observe_order(&info);
        // An adopted reissue has no request id yet: the order's pending request is it.
        if self
            .status
            .reissue
            .as_ref()
            .is_some_and(|r| r.request_id.is_none())
            && info.status == OrderStatus::ReissuePending
            && let Some(r) = info
                .requests
                .iter()
                .find(|r| matches!(r.status, RequestStatus::Pending | RequestStatus::Submitted))
        {
            self.reissue_mut().request_id = Some(r.id);
        }
        let reissue = self.status.reissue.clone().expect("in flight");
        // The certificate in the Secret is not the answer, even when its CSR is the
        // same (a reused RSA key gives the very same CSR).
        let known = self.status.certificate.as_ref().map(|c| c.id);
        let current_is_ours = info.certificate.serial_number.is_some()
            && (reissue.certificate_id == Some(info.certificate.id)
                || (known != Some(info.certificate.id)
                    && info
                        .certificate
                        .csr
                        .as_deref()
                        .and_then(|c| keys::csr_fingerprint(c).ok())
                        .is_some_and(|f| f == reissue.csr_fingerprint)));
        if current_is_ours && info.status != OrderStatus::ReissuePending {
            let action = self
                .write_certificate(info.certificate.id, &pending, client)
                .await?;
            // The same order info serves to mirror auto-reissue: no extra read.
            return Ok(self
                .sync_auto_reissue(&info, client)
                .await
                .unwrap_or(action));
        }
        if info.status == OrderStatus::ReissuePending {
            let action = self.waiting(&reissue, client).await?;
            return Ok(self
                .sync_auto_reissue(&info, client)
                .await
                .unwrap_or(action));
        }
        // The order is not waiting on a reissue and its certificate is not ours: ours
        // was rejected, canceled or replaced. The reissue list says which.
        let list = match client.list_reissues(order_id).await {
            Ok(l) => l,
            Err(e) => return Ok(self.fail(&e, "listing reissues").await),
        };
        let ours = list.into_iter().find(|c| {
            Some(c.id) == reissue.certificate_id
                || c.csr
                    .as_deref()
                    .and_then(|csr| keys::csr_fingerprint(csr).ok())
                    .is_some_and(|f| f == reissue.csr_fingerprint)
        });
        let submitted = reissue
            .submitted_at
            .as_deref()
            .and_then(status::parse_rfc3339)
            .unwrap_or(self.now);
        let young = self.now - submitted < time::Duration::minutes(2);
        match ours.map(|c| (c.id, c.status)) {
            Some((id, DigiCertReissueStatus::Issued)) if known != Some(id) => {
                self.write_certificate(id, &pending, client).await
            }
            Some((_, DigiCertReissueStatus::Pending)) => self.waiting(&reissue, client).await,
            // DigiCert may not show a fresh reissue everywhere at once: give it time
            // before concluding it is gone.
            None if young => self.waiting(&reissue, client).await,
            other => {
                let what = if other.is_some() {
                    "rejected"
                } else {
                    "not found"
                };
                let message = format!("DigiCert {what} the reissue; the order is {}", info.status);
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
    async fn waiting(
        &mut self,
        reissue: &ReissueStatus,
        client: &certcentral::Client,
    ) -> Result<Action> {
        let mut reason = "Pending";
        let mut message = "waiting for DigiCert to issue the certificate".to_string();
        if let Some(request_id) = reissue.request_id {
            match client.request_info(request_id).await {
                Ok(r) if r.status == RequestStatus::Pending => {
                    let approve = self.spec().approve_reissues;
                    let grants = match approve {
                        true => super::accounts::grants(&self.ctx, &self.order).await?,
                        false => None,
                    };
                    if let super::access::Approval::Leave(why) =
                        super::access::approval(approve, grants.as_ref())
                    {
                        reason = "NeedsApproval";
                        message = format!("request {request_id} waits for approval: {why}");
                    } else {
                        match client
                            .approve_request(
                                request_id,
                                &format!(
                                    "Approved by digicert-operator for {}/{}",
                                    self.namespace, self.name
                                ),
                            )
                            .await
                        {
                            Ok(()) => {
                                self.event(
                                    EventType::Normal,
                                    "ReissueApproved",
                                    "Approve",
                                    format!("approved request {request_id}"),
                                )
                                .await;
                                reason = "Approved";
                                message =
                                    format!("approved request {request_id}; waiting for issuance");
                            }
                            // DigiCert busy or down: back off like any failed call.
                            Err(e) if e.is_retryable() => {
                                return Ok(self.fail(&e, "approving the reissue request").await);
                            }
                            Err(e) => {
                                reason = "NeedsApproval";
                                message = format!(
                                    "request {request_id} waits for approval and the operator cannot approve it: {e}"
                                );
                            }
                        }
                    }
                }
                Ok(r) if r.status == RequestStatus::Approved => {
                    reason = "ValidationPending";
                    message = "approved; waiting for DigiCert's validation and issuance".into();
                }
                Ok(_) => {}
                Err(e) => return Ok(self.fail(&e, "reading the reissue request").await),
            }
        }
        self.clear_failures();
        self.condition(ISSUING, true, reason, message);
        let since = reissue
            .submitted_at
            .as_deref()
            .and_then(status::parse_rfc3339)
            .unwrap_or(self.now);
        Ok(Action::requeue(poll_interval(self.now - since)))
    }

    /// Downloads an issued certificate, checks it against the key and the spec, and
    /// writes the Secret in one update.
    async fn write_certificate(
        &mut self,
        certificate_id: u64,
        pending: &PendingKey,
        client: &certcentral::Client,
    ) -> Result<Action> {
        let (chain, leaf) = match self.download(certificate_id, &pending.key, client).await? {
            Downloaded::Failed(action) => return Ok(action),
            Downloaded::Matching(chain, leaf) => (chain, leaf),
            Downloaded::Mismatch(leaf) => {
                // Never write a certificate that does not belong to the key or the spec.
                let message = format!(
                    "certificate {certificate_id} does not match the pending key and names ({}); starting over",
                    leaf.dns_names.join(", ")
                );
                self.event(
                    EventType::Warning,
                    "CertificateMismatch",
                    "Download",
                    message.clone(),
                )
                .await;
                self.condition(ISSUING, true, "CertificateMismatch", message);
                let delay = self.back_off_permanently();
                self.abandon().await?;
                return Ok(Action::requeue(delay));
            }
        };
        let encoding = match self.spec().private_key.encoding {
            KeyEncoding::Pkcs1 => keys::Encoding::Pkcs1,
            KeyEncoding::Pkcs8 => keys::Encoding::Pkcs8,
        };
        let key_pem = keys::encode_private_key(&pending.key, encoding)?;
        let renewal = self
            .store_certificate(certificate_id, &chain, &leaf, &key_pem)
            .await?;
        self.status.reissue = None;
        self.clear_failures();
        let message = format!(
            "certificate {certificate_id} (serial {}) valid until {}",
            leaf.serial_number,
            status::rfc3339(leaf.not_after)
        );
        self.condition(READY, true, "Issued", message.clone());
        self.condition(ISSUING, false, "Issued", message.clone());
        self.check_plan_end(renewal);
        self.save().await?;
        self.delete_pending_key().await?;
        self.ctx.metrics.reissue("issued");
        self.event(
            EventType::Normal,
            "CertificateIssued",
            "WriteSecret",
            message,
        )
        .await;
        Ok(Action::requeue(decide::next_check(
            Some(renewal),
            Some(self.now),
            self.ctx.config.resync,
            self.now,
        )))
    }

    /// Downloads a certificate's chain and checks the leaf against `key` and the
    /// spec's names.
    async fn download(
        &mut self,
        certificate_id: u64,
        key: &rcgen::KeyPair,
        client: &certcentral::Client,
    ) -> Result<Downloaded> {
        let pem = match client
            .download_certificate(certificate_id, DownloadFormat::PemAll)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                let action = self.fail(&e, "downloading the certificate").await;
                return Ok(Downloaded::Failed(action));
            }
        };
        let chain = Chain::parse(&pem)?;
        let leaf = keys::inspect_certificate(&chain.leaf)?;
        if leaf.public_key_bits == keys::public_key_bits(key)
            && decide::names_match(self.spec(), &leaf)
        {
            Ok(Downloaded::Matching(chain, leaf))
        } else {
            Ok(Downloaded::Mismatch(leaf))
        }
    }

    /// Writes certificate and key into the Secret in one update and records the
    /// certificate in status; returns its renewal time.
    async fn store_certificate(
        &mut self,
        certificate_id: u64,
        chain: &Chain,
        leaf: &keys::CertificateInfo,
        key_pem: &str,
    ) -> Result<OffsetDateTime> {
        let tls = secret::TlsSecret {
            order_name: &self.name,
            namespace: &self.namespace,
            spec: self.spec(),
            chain,
            key_pem,
            certificate_id,
            serial_number: &leaf.serial_number,
            owner: self
                .ctx
                .config
                .secret_owner_references
                .then(|| secret::owner_reference(&self.order)),
        }
        .build();
        self.write_secret(&tls).await?;
        let renewal = decide::renewal_time(self.spec(), leaf.not_before, leaf.not_after);
        self.status.certificate = Some(certificate_status(certificate_id, leaf));
        self.status.observed_order_id = Some(self.spec().order_id);
        self.status.renewal_time = Some(status::rfc3339(renewal));
        self.status.revision = self.status.revision.saturating_add(1);
        Ok(renewal)
    }

    async fn write_secret(&self, secret: &Secret) -> Result<()> {
        self.secrets()
            .patch(
                &self.spec().secret_name,
                &PatchParams::apply(secret::MANAGER).force(),
                &Patch::Apply(secret),
            )
            .await?;
        Ok(())
    }

    /// Copies what order info says into status.
    fn observe_order(&mut self, info: &OrderInfo) {
        self.status.order_status = Some(info.status.to_string());
        self.status.auto_reissue = Some(info.auto_reissue == 1);
        self.status.order_valid_till = info.order_valid_till.clone();
        self.status.last_order_check = Some(status::rfc3339(self.now));
    }

    /// Warns when the order ends before the next renewal.
    fn check_plan_end(&mut self, renewal: OffsetDateTime) {
        let ends = self.status.order_valid_till.as_deref().and_then(|d| {
            time::Date::parse(d, time::macros::format_description!("[year]-[month]-[day]")).ok()
        });
        match ends {
            Some(end)
                if end
                    .with_hms(23, 59, 59)
                    .map(|t| t.assume_utc())
                    .is_ok_and(|e| e < renewal) =>
            {
                self.condition(
                    ORDER_EXPIRING,
                    true,
                    "PlanEndsBeforeRenewal",
                    format!("the order ends on {end}, before the next renewal; renew the order at DigiCert"),
                );
            }
            _ => status::remove(&mut self.status.conditions, ORDER_EXPIRING),
        }
    }

    /// Mirrors spec.autoReissue to DigiCert when they differ; when DigiCert refuses, says
    /// so once per spec generation instead of asking again and again.
    async fn sync_auto_reissue(
        &mut self,
        info: &OrderInfo,
        client: &certcentral::Client,
    ) -> Option<Action> {
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
                        return Some(self.fail(&e, "updating auto-reissue").await);
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

        None
    }

    /// The periodic look at the order: status fields, auto-reissue drift, and
    /// certificates DigiCert reissued by itself.
    async fn check_order(
        &mut self,
        target: Option<&Secret>,
        stored_certificate_id: Option<u64>,
    ) -> Result<Option<Action>> {
        let Some(client) = self.client().await? else {
            return Ok(Some(Action::requeue(Duration::from_secs(300))));
        };
        let info = match client.order_info(self.spec().order_id).await {
            Ok(i) => i,
            Err(e) => return Ok(Some(self.fail(&e, "reading the order").await)),
        };
        self.observe_order(&info);
        if let Some(renewal) = self
            .status
            .renewal_time
            .as_deref()
            .and_then(status::parse_rfc3339)
        {
            self.check_plan_end(renewal);
        }

        if let Some(action) = self.sync_auto_reissue(&info, &client).await {
            return Ok(Some(action));
        }

        // A certificate DigiCert issued without us (auto-reissue): take it when it is
        // for the key the Secret already holds.
        let known = self
            .status
            .certificate
            .as_ref()
            .map(|c| c.id)
            .or(stored_certificate_id);
        if info.status == OrderStatus::Issued
            && info.certificate.serial_number.is_some()
            && known.is_some_and(|k| k != info.certificate.id)
            && stored_certificate_id != Some(info.certificate.id)
            && let Some(target) = target
        {
            return self
                .pick_up(info.certificate.id, target, &client)
                .await
                .map(Some);
        }
        // Only a check that went through to the end resets the back-off.
        self.clear_failures();
        Ok(None)
    }

    /// Updates `tls.crt` (and `ca.crt`) with a certificate DigiCert reissued for the
    /// Secret's own key; the key stays as it is.
    async fn pick_up(
        &mut self,
        certificate_id: u64,
        target: &Secret,
        client: &certcentral::Client,
    ) -> Result<Action> {
        let Some(key) = secret::stored_key(target) else {
            return Ok(Action::requeue(Duration::ZERO));
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
                return Ok(Action::requeue(self.ctx.config.resync));
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
        self.check_plan_end(renewal);
        self.clear_failures();
        self.save().await?;
        self.ctx.metrics.reissue("picked_up");
        self.event(EventType::Normal, "ReissuePickedUp", "WriteSecret", message)
            .await;
        Ok(Action::requeue(decide::next_check(
            Some(renewal),
            Some(self.now),
            self.ctx.config.resync,
            self.now,
        )))
    }

    /// Deletion: act at DigiCert as the deletion policy says, drop the pending key.
    pub async fn cleanup(&mut self) -> Result<Action> {
        if self.spec().deletion_policy == crate::crd::DeletionPolicy::CancelPending {
            if let Some(client) = self.client().await? {
                let order_id = self.spec().order_id;
                let sent = self
                    .status
                    .reissue
                    .as_ref()
                    .is_some_and(|r| r.state != ReissueState::Prepared);
                let holder = super::accounts::holds_claim(&self.ctx, &self.order).await?;
                let grants = super::accounts::grants(&self.ctx, &self.order).await?;
                let cancel = if !holder {
                    // Another DigicertOrder drives the order: nothing of it is ours.
                    self.event(
                        EventType::Normal,
                        "NotCanceled",
                        "Delete",
                        format!("order {order_id} is not driven by this DigicertOrder; nothing was canceled"),
                    )
                    .await;
                    false
                } else if sent {
                    true
                } else if !grants
                    .as_ref()
                    .is_some_and(|g| super::access::may_cancel(false, g))
                {
                    self.event(
                        EventType::Warning,
                        "OrderCancelNotAllowed",
                        "Delete",
                        format!(
                            "deletionPolicy CancelPending: the account {} does not allow canceling a pending order (allowOrderCancel); order {order_id} was left as it is",
                            grants.map(|g| g.account).unwrap_or_default()
                        ),
                    )
                    .await;
                    false
                } else {
                    match client.order_info(order_id).await {
                        Ok(info) => matches!(
                            info.status,
                            OrderStatus::Pending
                                | OrderStatus::WaitingPickup
                                | OrderStatus::NeedsApproval
                                | OrderStatus::ReissuePending
                        ),
                        Err(e) if e.is_retryable() => return Err(e.into()),
                        Err(_) => false,
                    }
                };
                if cancel {
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
                        Err(e) if e.is_retryable() => return Err(e.into()),
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
                }
            } else {
                self.event(
                    EventType::Warning,
                    "ApiKeyMissing",
                    "Delete",
                    "no API key: nothing was canceled at DigiCert".into(),
                )
                .await;
            }
        }
        self.delete_pending_key().await?;
        self.ctx.metrics.forget_order(&self.labels());
        Ok(Action::await_change())
    }
}

/// What a download brought.
enum Downloaded {
    /// The call failed; the back-off to return.
    Failed(Action),
    /// For the key and the spec's names.
    Matching(Chain, keys::CertificateInfo),
    /// For another key or other names.
    Mismatch(keys::CertificateInfo),
}

/// How often to look at a pending reissue: often at first, then less.
pub fn poll_interval(pending_for: time::Duration) -> Duration {
    let secs = pending_for.whole_seconds();
    Duration::from_secs(match secs {
        ..60 => 5,
        60..600 => 30,
        600..3600 => 120,
        _ => 600,
    })
}

fn certificate_status(id: u64, leaf: &keys::CertificateInfo) -> CertificateStatus {
    CertificateStatus {
        id,
        serial_number: leaf.serial_number.clone(),
        thumbprint: leaf.thumbprint.clone(),
        not_before: status::rfc3339(leaf.not_before),
        not_after: status::rfc3339(leaf.not_after),
        dns_names: leaf.dns_names.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_slows_down_while_pending() {
        let cases = [
            (0, 5),
            (59, 5),
            (60, 30),
            (599, 30),
            (600, 120),
            (3600, 600),
            (86_400, 600),
        ];
        for (secs, want) in cases {
            assert_eq!(
                poll_interval(time::Duration::seconds(secs)),
                Duration::from_secs(want),
                "{secs}"
            );
        }
    }
}
