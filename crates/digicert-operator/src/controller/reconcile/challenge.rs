//! A validation under way: publish the random values, wait until they are visible
//! where DigiCert looks (asking DigiCert nothing meanwhile), ask DigiCert to check,
//! and withdraw them once it has validated (or the resource goes).

use super::validate::{SCOPE_DOMAIN, SCOPE_ORDER};
use super::*;
use crate::controller::decide::SettingsFrom;
use crate::controller::status::DOMAIN_VALIDATION;
use crate::controller::validation::{self, Checked};
use crate::crd::dcv::{ChallengeStatus, DomainValidationSpec};
use crate::dcv::solver::Publisher;

impl Run {
    /// Publishes one value per domain and records the challenge (first, so that a
    /// crash in between leaves nothing unrecorded).
    pub(super) async fn start_challenge(
        &mut self,
        spec: &DomainValidationSpec,
        publisher: &Publisher,
        scope: &str,
        records: Vec<(String, Option<u64>, String)>,
    ) -> Result<Action> {
        let challenge = validation::new_challenge(spec, scope, status::rfc3339(self.now), records);
        self.ensure_finalizer().await?;
        self.dcv_status().challenge = Some(challenge.clone());
        self.save().await?;
        if let Break(action) = self.publish_missing(publisher).await {
            return Ok(action);
        }
        let places: Vec<&str> = challenge
            .records
            .iter()
            .map(|r| r.location.as_str())
            .collect();
        let message = format!(
            "published DigiCert's random value at {}; waiting until it is visible",
            places.join(", ")
        );
        self.condition(DOMAIN_VALIDATION, false, "Validating", message.clone());
        self.event(EventType::Normal, "Validating", "ValidateDomain", message)
            .await;
        Ok(Action::requeue(schedule::DCV_FIRST_LOOK))
    }

    /// Moves the challenge on: look for the values, then have DigiCert check.
    pub(super) async fn advance_challenge(
        &mut self,
        spec: &DomainValidationSpec,
        from: SettingsFrom,
        client: &certcentral::Client,
    ) -> Result<Action> {
        let Some(challenge) = self.challenge().cloned() else {
            return Ok(Action::requeue(schedule::NEXT_STEP_NOW));
        };
        if let Some(at) = challenge.next_check.as_ref().map(status::offset)
            && at > self.now
        {
            return Ok(Action::requeue(
                (at - self.now).try_into().unwrap_or_default(),
            ));
        }
        let publisher = match self.publisher(spec, from).await? {
            Ok(p) => p,
            Err(why) => return Ok(self.settings_unusable(why).await),
        };
        if let Break(action) = self.publish_missing(&publisher).await {
            return Ok(action);
        }
        let Some(challenge) = self.challenge().cloned() else {
            return Ok(Action::requeue(schedule::NEXT_STEP_NOW));
        };
        if let Break(action) = self.look_for_values(&publisher, &challenge).await? {
            return Ok(action);
        }
        let checked = match challenge.scope.as_str() {
            SCOPE_ORDER => validation::check_order(client, self.spec().order_id).await,
            _ => validation::check_domains(client, &challenge).await,
        };
        match checked {
            Ok(()) => self.finish_challenge(&publisher).await,
            Err(Checked::Transient(e)) => Ok(self
                .fail(&e, "asking DigiCert to check the domain validation")
                .await),
            Err(Checked::Failed(message)) => Ok(self.check_failed(message).await),
        }
    }

    /// Publishes what is not out yet (first time, or after a failure); `Some` is the
    /// wait after a failure, said in status.
    async fn publish_missing(&mut self, publisher: &Publisher) -> ControlFlow<Action> {
        let client = self.ctx.client.clone();
        let Some(challenge) = self.challenge_mut() else {
            return Continue(());
        };
        match validation::publish_missing(&client, publisher, challenge).await {
            Ok(()) => Continue(()),
            Err(message) => Break(self.challenge_trouble("PublishFailed", message).await),
        }
    }

    /// `Some`: not every value is visible yet (said in status; looked for again later).
    async fn look_for_values(
        &mut self,
        publisher: &Publisher,
        challenge: &ChallengeStatus,
    ) -> Flow {
        let mut looked = challenge.clone();
        let missing = validation::look_for_values(publisher, &mut looked).await;
        if let Some(c) = self.challenge_mut() {
            c.records = looked.records;
        }
        if missing.is_empty() {
            return Ok(Continue(()));
        }
        let looks = challenge.looks + 1;
        let wait = decide::visibility_wait(looks);
        let message = validation::not_visible_message(&missing);
        let next = self.after(wait);
        if let Some(c) = self.challenge_mut() {
            c.looks = looks;
            c.message = Some(message.clone());
            c.next_check = Some(next);
        }
        self.condition(DOMAIN_VALIDATION, false, "RecordNotVisible", message);
        Ok(Break(Action::requeue(wait)))
    }

    /// DigiCert validated: withdraw the values, and look at the validations afresh.
    async fn finish_challenge(&mut self, publisher: &Publisher) -> Result<Action> {
        let Some(challenge) = self.challenge().cloned() else {
            return Ok(Action::requeue(schedule::NEXT_STEP_NOW));
        };
        self.withdraw_with(publisher, &challenge).await;
        let domains: Vec<&str> = challenge
            .records
            .iter()
            .map(|r| r.domain.as_str())
            .collect();
        let message = format!("DigiCert validated {}", domains.join(", "));
        let dcv = self.dcv_status();
        dcv.challenge = None;
        // The new expiry is read at the next look.
        if challenge.scope == SCOPE_DOMAIN {
            dcv.last_check = None;
        }
        self.condition(DOMAIN_VALIDATION, true, "Validated", message.clone());
        self.event(
            EventType::Normal,
            "DomainValidated",
            "ValidateDomain",
            message,
        )
        .await;
        Ok(Action::requeue(schedule::AFTER_VALIDATION))
    }

    /// Takes the values down (deletion, or done); failures are reported, not retried.
    async fn withdraw_with(&self, publisher: &Publisher, challenge: &ChallengeStatus) {
        for message in validation::withdraw(&self.ctx.client, publisher, challenge).await {
            tracing::warn!("{message}");
            self.event(
                EventType::Warning,
                "WithdrawFailed",
                "ValidateDomain",
                message,
            )
            .await;
        }
    }

    /// Deletion: whatever is published for this resource goes.
    pub(super) async fn withdraw_challenge(&mut self) -> Result<()> {
        let Some(challenge) = self.challenge().cloned() else {
            return Ok(());
        };
        let Some((spec, from)) = self.dcv_settings().await? else {
            return Ok(());
        };
        if let Ok(publisher) = self.publisher(&spec, from).await? {
            self.withdraw_with(&publisher, &challenge).await;
        }
        self.dcv_status().challenge = None;
        Ok(())
    }

    async fn check_failed(&mut self, message: String) -> Action {
        let checks = self.challenge().map_or(0, |c| c.checks) + 1;
        let wait = decide::check_wait(checks);
        let repeated = self.challenge().and_then(|c| c.message.clone()) == Some(message.clone());
        let next = self.after(wait);
        if let Some(c) = self.challenge_mut() {
            c.checks = checks;
            c.message = Some(message.clone());
            c.next_check = Some(next);
        }
        let text = format!("{message} (check {checks}; next in {}s)", wait.as_secs());
        self.condition(DOMAIN_VALIDATION, false, "CheckFailed", text.clone());
        if !repeated {
            self.event(
                EventType::Warning,
                "ValidationCheckFailed",
                "ValidateDomain",
                text,
            )
            .await;
        }
        Action::requeue(wait)
    }

    async fn challenge_trouble(&mut self, reason: &str, message: String) -> Action {
        let checks = self.challenge().map_or(0, |c| c.checks) + 1;
        let wait = decide::check_wait(checks);
        let next = self.after(wait);
        if let Some(c) = self.challenge_mut() {
            c.checks = checks;
            c.message = Some(message.clone());
            c.next_check = Some(next);
        }
        self.condition(DOMAIN_VALIDATION, false, reason, message.clone());
        self.event(EventType::Warning, reason, "ValidateDomain", message)
            .await;
        Action::requeue(wait)
    }

    pub(super) async fn settings_unusable(&mut self, why: String) -> Action {
        if status::find(&self.status.conditions, DOMAIN_VALIDATION)
            .is_none_or(|c| c.reason != "InvalidSettings" || c.message != why)
        {
            self.event(
                EventType::Warning,
                "InvalidSettings",
                "ValidateDomain",
                why.clone(),
            )
            .await;
        }
        self.condition(DOMAIN_VALIDATION, false, "InvalidSettings", why);
        // A missing Secret is not watched: look again now and then.
        Action::requeue(schedule::SETTINGS_RETRY)
    }

    fn after(&self, wait: Duration) -> Time {
        status::time(self.now + time::Duration::try_from(wait).unwrap_or_default())
    }

    /// The finalizer before anything is published, so a deletion withdraws it.
    async fn ensure_finalizer(&mut self) -> Result<()> {
        if self
            .order
            .finalizers()
            .iter()
            .any(|f| f == crate::crd::FINALIZER)
        {
            return Ok(());
        }
        let mut finalizers = self.order.finalizers().to_vec();
        finalizers.push(crate::crd::FINALIZER.into());
        let patch = serde_json::json!({ "metadata": { "finalizers": finalizers } });
        let written = self
            .orders()
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        // Status writes go against this version from now on.
        self.resource_version = written.metadata.resource_version;
        Ok(())
    }
}
