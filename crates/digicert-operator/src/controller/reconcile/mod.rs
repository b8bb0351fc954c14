//! One reconcile of a DigicertOrder: gather the inputs, ask `decide`, carry out the
//! answer, record it in status.
//!
//! Crash safety rests on what is written *before* the effects it describes: the new
//! key is stored in its own Secret, then the reissue is marked `Submitting` (one
//! status write) before the POST. A reconcile that finds `Submitting` without a request id looks the
//! CSR up in the reissue list and adopts what it finds, so an intent is never
//! submitted twice and its key is never lost.

use std::ops::ControlFlow::{self, Break, Continue};
use std::sync::Arc;
use std::time::Duration;

use super::events::EventType;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use time::OffsetDateTime;

use super::Context;
use super::decide::{self, ReissueReason, SecretState, schedule};
use super::feed::Follower;
use super::secret::{self, PendingKey};
use super::status::{self, AUTO_REISSUE_SYNCED, ISSUING, ORDER_EXPIRING, READY};
use crate::certcentral::{
    self, DownloadFormat, OrderInfo, OrderStatus, ReissueCertificateRequest, ReissueRequest,
    ReissueStatus as DigiCertReissueStatus, RequestStatus, ServerPlatformId,
};
use crate::crd::{
    ALLOW_REVOCATION_ANNOTATION, CANCEL_ANNOTATION, CertificateStatus, DigicertOrder,
    DigicertOrderStatus, Issuance, KeyEncoding, RENEW_ANNOTATION, ReissueState, ReissueStatus,
};
use crate::error::{Error, Result};
use crate::keys::{self, Chain};

use store::{Downloaded, certificate_status};

/// What a part of a step returns: go on (`Continue`) with a value, or end the
/// reconcile (`Break`) with the action already decided and recorded in status.
pub(super) type Flow<T = ()> = Result<ControlFlow<Action, T>>;

/// The value of a part that went on; a part that ended the reconcile returns its
/// action from the step.
macro_rules! proceed {
    ($flow:expr) => {
        match $flow {
            Continue(value) => value,
            Break(action) => return Ok(action),
        }
    };
}

/// The same inside a part that is itself a `Flow`: the end is passed up.
macro_rules! proceed_up {
    ($flow:expr) => {
        match $flow {
            Continue(value) => value,
            Break(action) => return Ok(Break(action)),
        }
    };
}

mod approval;
mod cancel;
mod challenge;
mod duplicate;
mod follow;
mod guard;
mod idle;
mod order;
mod prepare;
mod store;
mod submit;
mod teardown;
mod validate;

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
    /// The order's account, once resolved (by the gate, or for deletion).
    account: Option<super::accounts::Resolved>,
    /// Whether the Secret serves the spec (what Ready says), once read.
    readiness: Option<decide::Readiness>,
    /// Why the gate kept this reconcile from DigiCert, if it did.
    blocked: bool,
    /// A certificate's chain that came with a reissue's answer (issued at once):
    /// (certificate id, PEM), so it need not be downloaded.
    answered: Option<(u64, String)>,
    /// How the change feed of the order's key stands, and its view of the order.
    feed: super::feed::Followed,
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
            account: None,
            readiness: None,
            blocked: false,
            answered: None,
            feed: Default::default(),
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
        // Every write says where DigiCert stands now, also one in the middle of a
        // reconcile (a stored certificate).
        self.settle_digicert_condition();
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
        // One info line a step of the order's life, once it is on record.
        for s in decide::steps::steps(&self.saved, &self.status) {
            tracing::info!(step = s.step, "{}", s.message);
        }
        self.saved = self.status.clone();
        Ok(())
    }

    /// The CertCentral client of this order's account; `None` (with the reason in
    /// status) when it may use none: no account, not granted, or no usable key.
    async fn client(&mut self) -> Result<Option<certcentral::Client>> {
        Ok(self.account().await?.map(|a| a.client.clone()))
    }

    /// This order's account as the gate resolved it, or resolved now (deletion passes
    /// no gate); `None` with the reason in status when it may use none.
    async fn account(&mut self) -> Result<Option<&super::accounts::Resolved>> {
        if self.account.is_none() {
            match super::accounts::resolve(&self.ctx, &self.order).await? {
                Ok(resolved) => self.account = Some(resolved),
                Err(refusal) => {
                    self.condition(READY, false, refusal.reason(), refusal.message());
                    return Ok(None);
                }
            }
        }
        Ok(self.account.as_ref())
    }

    /// Records a failed DigiCert call and how long to wait; shows it in status.
    async fn fail(&mut self, err: &certcentral::Error, doing: &str) -> Action {
        let permanent = !err.is_retryable();
        self.status.failed_attempts = self.status.failed_attempts.saturating_add(1);
        self.status.last_failure_time = Some(status::time(self.now));
        let (base, cap) = schedule::failure_backoff(permanent);
        let delay = decide::backoff(self.status.failed_attempts, base, cap, jitter());
        self.status.next_attempt_time = Some(status::time(
            self.now + time::Duration::try_from(delay).unwrap_or_default(),
        ));
        let (reason, message) = if err.has_code("cert_validity_exceeds_order_validity") {
            let (reason, what) = decide::refused_past_order_end(self.order_ends(), self.now);
            (reason, format!("{doing}: {what} ({err})"))
        } else {
            (status::failure_reason(err), format!("{doing}: {err}"))
        };
        self.status.last_failure = Some(format!("{reason}: {message}"));
        // Ready is about the Secret: a good certificate stays Ready through DigiCert's
        // trouble (the DigiCert and Issuing conditions and the event say it).
        let certificate_good = decide::ready_through_failure(
            self.readiness.as_ref(),
            permanent,
            self.stored_state_ok(),
        );
        if !certificate_good {
            self.condition(READY, false, reason, message.clone());
        }
        self.condition(status::DIGICERT, false, reason, message.clone());
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
            schedule::PERMANENT_BACKOFF.0,
            schedule::PERMANENT_BACKOFF.1,
            jitter(),
        );
        self.status.last_failure_time = Some(status::time(self.now));
        self.status.next_attempt_time = Some(status::time(
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
        // The order's end is judged on every path, a refused reissue's included.
        self.plan_end_condition().await;
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
        let time = |t: Option<&Time>| t.map(status::offset);
        let conditions = self
            .status
            .conditions
            .iter()
            .map(|c| crate::metrics::ConditionSeries {
                r#type: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone(),
            })
            .collect();
        self.ctx.metrics.order(
            &self.labels(),
            &self.order.uid().unwrap_or_default(),
            status::find(&self.status.conditions, READY).and_then(|c| match c.status.as_str() {
                "True" => Some(true),
                "False" => Some(false),
                _ => None,
            }),
            conditions,
            crate::metrics::OrderTimes {
                not_after: time(self.status.certificate.as_ref().map(|c| &c.not_after)),
                renewal: time(self.status.renewal_time.as_ref()),
                order_end: decide::order_end(self.status.order_valid_till.as_deref()),
            },
        );
        let expiries: Vec<_> = self
            .status
            .domain_validation
            .iter()
            .flat_map(|d| &d.domains)
            .map(|d| (d.name.clone(), time(d.expires.as_ref())))
            .collect();
        self.ctx.metrics.domain_expiries(
            &self.labels(),
            &self.order.uid().unwrap_or_default(),
            &expiries,
        );
    }

    /// The `DigiCert` condition once the gate was passed: false while failures last
    /// (`fail` set it), true otherwise. A gate refusal set it already.
    fn settle_digicert_condition(&mut self) {
        if self.blocked || self.account.is_none() || self.status.last_failure.is_some() {
            return;
        }
        let account = self.status.account.clone().unwrap_or_default();
        self.condition(
            status::DIGICERT,
            true,
            "Available",
            format!("account {account} may be used for this order and DigiCert answers"),
        );
    }

    /// Takes in what the resource asks for now: a new spec generation or a renewal
    /// request starts afresh (no old back-off, no hold). Returns the renewal request
    /// and whether it is new.
    fn take_instructions(&mut self) -> decide::Instructions {
        let generation = self.generation();
        let taken = decide::instructions(
            generation,
            self.status.observed_generation,
            self.order
                .annotations()
                .get(RENEW_ANNOTATION)
                .map(String::as_str),
            self.status.last_renew_request.as_deref(),
        );
        if taken.clear_failures {
            self.clear_failures();
        }
        if taken.release_hold {
            self.status.hold_generation = None;
        }
        self.status.observed_generation = generation;
        taken
    }

    /// Refuses what the API server let through but the operator cannot act upon.
    fn refuse_invalid_spec(&mut self) -> bool {
        let problem = decide::spec_refusal(&self.name, self.spec(), &self.status);
        if let Some(message) = &problem {
            self.condition(READY, false, "InvalidSpec", message.clone());
        }
        problem.is_some()
    }

    /// The time a back-off still asks to wait, if any. It is kept in status, since a
    /// status write wakes the controller up again.
    fn backing_off(&self) -> Option<Duration> {
        let at = self.status.next_attempt_time.as_ref().map(status::offset)?;
        (at > self.now).then(|| (at - self.now).try_into().unwrap_or_default())
    }

    /// The order's end, as DigiCert last said.
    fn order_ends(&self) -> Option<OffsetDateTime> {
        decide::order_end(self.status.order_valid_till.as_deref())
    }

    async fn step(&mut self) -> Result<Action> {
        let decide::Instructions {
            renew_request,
            manual,
            ..
        } = self.take_instructions();
        if self.refuse_invalid_spec() {
            return Ok(Action::await_change());
        }
        // What the Secret holds decides Ready, whatever DigiCert can do now.
        let target = proceed!(self.certificate_secret().await?);
        let (state, readiness) = self.judge_secret(target.as_ref());
        // The account must grant this order, and the order must be this resource's:
        // before any DigiCert call, a cancel's included.
        let digicert_was = status::find(&self.status.conditions, status::DIGICERT).cloned();
        match super::accounts::gate(&self.ctx, &self.order, &mut self.status, self.now).await? {
            Ok(resolved) => {
                self.feed = self.ctx.feeds.follow(
                    Follower::Order((self.namespace.clone(), self.name.clone())),
                    &resolved.endpoint,
                    &resolved.client,
                    self.spec().order_id,
                );
                self.account = Some(resolved);
            }
            Err(blocked) => {
                // Not this resource's to follow (another drives the order, or no
                // grant): the feed wakes it no more.
                self.ctx.feeds.unfollow(&Follower::Order((
                    self.namespace.clone(),
                    self.name.clone(),
                )));
                return Ok(self.blocked(blocked, digicert_was, &readiness).await);
            }
        }
        let cancel_request = self.order.annotations().get(CANCEL_ANNOTATION).cloned();
        if decide::cancel_requested(
            cancel_request.as_deref(),
            self.status.last_cancel_request.as_deref(),
        ) {
            return self.cancel_on_request(cancel_request).await;
        }
        if let Some(wait) = self.backing_off() {
            return Ok(Action::requeue(wait));
        }

        if let Some(reissue) = self.status.reissue.clone() {
            // A renewal asked for while a reissue is under way is what that reissue
            // brings; it must not start another one afterwards.
            if manual {
                self.status.last_renew_request = renew_request;
            }
            return self.progress(reissue, target.as_ref()).await;
        }

        if self.spec().issuance == Issuance::Duplicate {
            if manual {
                self.status.last_renew_request = renew_request;
            }
            return self.duplicate(target.as_ref(), state, manual).await;
        }
        self.reissue_if_due(target, state, renew_request, manual)
            .await
    }

    /// What the Secret holds, and so whether it serves the spec (Ready); an expired or
    /// soon ending certificate says so at once.
    fn judge_secret(&mut self, target: Option<&Secret>) -> (SecretState, decide::Readiness) {
        let state = secret::inspect(target);
        let readiness = decide::certificate_readiness(
            self.spec(),
            &state,
            decide::revoked_in_secret(self.status.revoked.as_ref(), &state),
            self.order_ends(),
            self.now,
        );
        self.readiness = Some(readiness.clone());
        if let SecretState::Valid(stored) = &state
            && let Some((reason, message)) =
                decide::expiry(stored.leaf.not_after, self.order_ends(), self.now)
        {
            self.condition(READY, false, reason, message);
        }
        (state, readiness)
    }

    /// With nothing in flight: start a reissue if one is due (unless held), else keep
    /// the issued order in line.
    async fn reissue_if_due(
        &mut self,
        target: Option<Secret>,
        state: SecretState,
        renew_request: Option<String>,
        manual: bool,
    ) -> Result<Action> {
        let trigger = decide::trigger(
            &decide::TriggerInput {
                spec: self.spec(),
                state: &state,
                revoked: decide::revoked_in_secret(self.status.revoked.as_ref(), &state),
                renew_request: renew_request.as_deref(),
                last_renew_request: self.status.last_renew_request.as_deref(),
                order_ends: self.order_ends(),
                hold_generation: self.status.hold_generation,
                generation: self.generation(),
            },
            self.now,
        );
        match (trigger, state) {
            (decide::Trigger::Held(reason), state) => self.held(reason, &state).await,
            (decide::Trigger::Reissue(reason), _) => {
                proceed!(self.guard_revocation().await?);
                // Whatever the reason, this reissue answers a pending renewal request too.
                if manual {
                    self.status.last_renew_request = renew_request;
                }
                self.prepare(reason, target.as_ref(), None).await
            }
            (decide::Trigger::None, SecretState::Valid(stored)) => match &target {
                Some(target) => self.idle(target, &stored).await,
                // A valid certificate comes from a Secret: not reached.
                None => Ok(Action::requeue(self.check_period())),
            },
            // No reason to reissue means a valid certificate: not reached.
            (decide::Trigger::None, _) => Ok(Action::requeue(self.check_period())),
        }
    }

    /// The gate kept the order from DigiCert: said once as a Warning event; Ready
    /// follows the Secret (a good certificate stays Ready; without one, the gate's
    /// reason is why none comes).
    async fn blocked(
        &mut self,
        blocked: super::accounts::Blocked,
        digicert_was: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
        readiness: &decide::Readiness,
    ) -> Action {
        self.blocked = true;
        let new = digicert_was.is_none_or(|c| c.status != "False" || c.reason != blocked.reason);
        if new {
            self.event(
                EventType::Warning,
                &blocked.reason,
                "UseAccount",
                blocked.message.clone(),
            )
            .await;
        }
        let ready_now = status::is_true(&self.status.conditions, READY);
        if let Some(change) =
            decide::ready_when_blocked(readiness, ready_now, &blocked.reason, &blocked.message)
        {
            self.condition(READY, change.ready, &change.reason, change.message);
        }
        blocked.action
    }

    /// The certificate Secret, when the operator may write it (`None`: there is none
    /// yet); when it may not, the reconcile ends, with the reason in status.
    async fn certificate_secret(&mut self) -> Flow<Option<Secret>> {
        let Some(target) = self.secrets().get_opt(&self.spec().secret_name).await? else {
            return Ok(Continue(None));
        };
        let other = secret::labelled_for(&target)
            .filter(|owner| *owner != self.name)
            .map(str::to_string);
        let other_exists = match &other {
            Some(owner) => self.orders().get_opt(owner).await?.is_some(),
            None => false,
        };
        match secret::standing(&target, &self.name, self.spec().order_id, other_exists) {
            secret::Standing::Ours => {}
            secret::Standing::HandedOn { from } => {
                let message = format!(
                    "Secret {} of the deleted DigicertOrder {from} (same order) is handed on to this one",
                    self.spec().secret_name
                );
                self.event(EventType::Normal, "SecretHandedOn", "TakeOver", message)
                    .await;
            }
            secret::Standing::Adopted => {}
            secret::Standing::Conflict(problem) => {
                self.condition(READY, false, "SecretConflict", problem);
                // The Secret is not watched (not ours): it is, by name, until it
                // changes (handed over, deleted); and looked at again now and then.
                self.ctx.secret_waits.wait_for(
                    &self.namespace,
                    &self.spec().secret_name,
                    &self.name,
                    target.resource_version(),
                );
                return Ok(Break(Action::requeue(
                    self.ctx.config.resync.min(schedule::CONFLICT_RETRY),
                )));
            }
        }
        Ok(Continue(Some(target)))
    }
}
