//! What the issuer writes on a request: its conditions and outcome (status, a merge
//! patch of the fields it owns), the record of what was sent (an annotation), events.

use std::sync::Arc;

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use time::OffsetDateTime;

use super::decide::{self, Recorded};
use super::request::Signing;
use crate::certcentral::{self};
use crate::certmanager::{RequestCondition, condition};
use crate::controller::decide::schedule;
use crate::controller::events::EventType;
use crate::controller::status;
use crate::crd::issuer::ISSUANCE_ANNOTATION;
use crate::error::Result;

impl Signing {
    pub(super) fn set(&mut self, type_: &str, ok: bool, reason: &str, message: &str) {
        set_condition(
            &mut self.status.conditions,
            type_,
            ok,
            reason,
            message,
            self.now,
        );
    }

    pub(super) fn pending(&mut self, message: &str) {
        self.set(condition::READY, false, condition::PENDING, message);
    }

    pub(super) fn pending_says(&self, message: &str) -> bool {
        self.saved
            .find(condition::READY)
            .is_some_and(|c| c.message.as_deref() == Some(message))
    }

    /// A terminal Ready=False (Denied, Failed): cert-manager retries from a new request.
    pub(super) fn finish(&mut self, reason: &str, message: &str) {
        self.set(condition::READY, false, reason, message);
        self.status.failure_time = Some(status::time(self.now));
    }

    pub(super) fn fail(&mut self, reason: &str, message: &str) {
        self.finish(reason, message);
    }

    pub(super) fn invalid(&mut self, message: &str) {
        self.set(
            condition::INVALID_REQUEST,
            true,
            condition::INVALID_REASON,
            message,
        );
        self.finish(condition::INVALID_REASON, message);
    }

    /// A failed DigiCert call: a refusal of the request is final; anything else keeps
    /// it pending and is tried again after a back-off.
    pub(super) fn call_failed(&mut self, e: &certcentral::Error, doing: &str) -> Action {
        let reason = status::failure_reason(e);
        let message = format!("{reason}: {doing}: {e}");
        tracing::warn!(request = %self.name, %reason, error = %e, "{doing} failed");
        if decide::refusal_is_final(e) {
            self.fail(condition::FAILED, &message);
            return Action::await_change();
        }
        self.pending(&message);
        let (base, cap) = schedule::failure_backoff(!e.is_retryable());
        let age = self
            .request
            .meta()
            .creation_timestamp
            .as_ref()
            .map(|t| self.now - status::offset(t))
            .unwrap_or_default();
        let wait = decide::retry_after(age, base, cap, rand::random());
        let until = self.now + time::Duration::try_from(wait).unwrap_or_default();
        self.ctx.request_backoffs.set(&self.key(), until);
        Action::requeue(wait)
    }

    /// The request's key among the waits: `namespace/name`.
    pub(super) fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// An event on the request, and its line in the log: each is one step (sent,
    /// issued, validated, rejected, ...).
    pub(super) async fn event(&self, type_: EventType, reason: &str, note: String) {
        match type_ {
            EventType::Normal => tracing::info!(step = reason, "{note}"),
            EventType::Warning => tracing::warn!(step = reason, "{note}"),
        }
        let object = self.request.object_ref(&());
        if let Err(e) = self
            .ctx
            .events
            .publish(type_, reason, "Sign", &note, &object)
            .await
        {
            tracing::warn!(error = %e, "cannot publish an event");
        }
    }

    /// Writes the record annotation (or removes it) against the version read: a stale
    /// view of the request fails here, before anything is sent.
    pub(super) async fn record(&mut self, record: Option<&Recorded>) -> Result<()> {
        let value = record.map(Recorded::to_annotation);
        let patch = serde_json::json!({
            "metadata": {
                "resourceVersion": self.request.resource_version(),
                "annotations": { ISSUANCE_ANNOTATION: value },
            }
        });
        let written = self
            .api()
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        self.adopt_metadata(written.metadata);
        Ok(())
    }

    /// Takes the metadata of a write (its version, annotations, finalizers).
    pub(super) fn adopt_metadata(&mut self, metadata: kube::api::ObjectMeta) {
        let mut request = (*self.request).clone();
        request.metadata = metadata;
        self.request = Arc::new(request);
    }

    /// Writes the status fields the issuer owns if they changed, against the version
    /// read last.
    pub(super) async fn save(&mut self) -> Result<()> {
        if self.status == self.saved {
            return Ok(());
        }
        let patch = serde_json::json!({
            "metadata": { "resourceVersion": self.request.resource_version() },
            "status": {
                "conditions": self.status.conditions,
                "certificate": self.status.certificate,
                "ca": self.status.ca,
                "failureTime": self.status.failure_time,
            }
        });
        self.api()
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        self.saved = self.status.clone();
        Ok(())
    }
}

/// Sets a condition of a request (cert-manager's kind: no generation); the transition
/// time moves only when the status does.
pub fn set_condition(
    conditions: &mut Vec<RequestCondition>,
    type_: &str,
    ok: bool,
    reason: &str,
    message: &str,
    now: OffsetDateTime,
) {
    let status = if ok { "True" } else { "False" };
    let time = Some(status::time(now));
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = time;
            }
            c.status = status.into();
            c.reason = Some(reason.into());
            c.message = Some(message.into());
        }
        None => conditions.push(RequestCondition {
            type_: type_.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_transition_time: time,
        }),
    }
}
