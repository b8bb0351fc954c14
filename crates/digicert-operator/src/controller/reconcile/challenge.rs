//! A validation under way: publish the random values, wait until they are visible
//! where DigiCert looks (asking DigiCert nothing meanwhile), ask DigiCert to check,
//! and withdraw them once it has validated (or the resource goes).

use super::validate::{SCOPE_DOMAIN, SCOPE_ORDER};
use super::*;
use crate::controller::decide::SettingsFrom;
use crate::controller::status::DOMAIN_VALIDATION;
use crate::crd::dcv::{ChallengeRecord, ChallengeStatus, DcvMethodSpec, DomainValidationSpec};
use crate::dcv::solver::{Publisher, Seen};

impl Run {
    fn challenge_method(&self) -> DcvMethodSpec {
        let method = self
            .challenge()
            .map(|c| c.method.clone())
            .unwrap_or_default();
        match method.as_str() {
            "dns-cname-token" => DcvMethodSpec::DnsCnameToken,
            "http-token" => DcvMethodSpec::HttpToken,
            _ => DcvMethodSpec::DnsTxtToken,
        }
    }

    /// Publishes one value per domain and records the challenge (first, so that a
    /// crash in between leaves nothing unrecorded).
    pub(super) async fn start_challenge(
        &mut self,
        spec: &DomainValidationSpec,
        publisher: &Publisher,
        scope: &str,
        records: Vec<(String, Option<u64>, String)>,
    ) -> Result<Action> {
        let challenge = ChallengeStatus {
            scope: scope.into(),
            method: spec.method.as_str().into(),
            published: status::rfc3339(self.now),
            records: records
                .into_iter()
                .map(|(domain, domain_id, token)| ChallengeRecord {
                    location: decide::dcv_location(spec.method, &domain),
                    domain,
                    domain_id,
                    token,
                    published: false,
                    visible: false,
                })
                .collect(),
            ..Default::default()
        };
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
            SCOPE_ORDER => self.check_order_dcv(client).await,
            _ => self.check_domains(&challenge, client).await,
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
        let method = self.challenge_method();
        let Some(records) = self.challenge().map(|c| c.records.clone()) else {
            return Continue(());
        };
        for (i, r) in records.iter().enumerate().filter(|(_, r)| !r.published) {
            if let Err(e) = publisher
                .publish(&self.ctx.client, method, &r.domain, &r.token)
                .await
            {
                let message = format!("publishing {}: {e}", r.location);
                return Break(self.challenge_trouble("PublishFailed", message).await);
            }
            if let Some(c) = self.challenge_mut() {
                c.records[i].published = true;
            }
        }
        Continue(())
    }

    /// `Some`: not every value is visible yet (said in status; looked for again later).
    async fn look_for_values(
        &mut self,
        publisher: &Publisher,
        challenge: &ChallengeStatus,
    ) -> Flow {
        let method = self.challenge_method();
        let mut missing = Vec::new();
        let mut seen = Vec::new();
        for r in challenge.records.iter().filter(|r| !r.visible) {
            match publisher.seen(method, &r.domain, &r.token).await {
                Ok(Seen::Visible) => seen.push(r.domain.clone()),
                Ok(Seen::Not(saw)) => missing.push(format!("{}: {saw}", r.location)),
                Err(e) => missing.push(format!("{}: {e}", r.location)),
            }
        }
        if let Some(c) = self.challenge_mut() {
            for r in c.records.iter_mut().filter(|r| seen.contains(&r.domain)) {
                r.visible = true;
            }
        }
        if missing.is_empty() {
            return Ok(Continue(()));
        }
        let looks = challenge.looks + 1;
        let wait = decide::visibility_wait(looks);
        let message = format!(
            "the random value is not visible yet where DigiCert looks ({}); DigiCert is not asked until it is",
            missing.join("; ")
        );
        let next = self.after(wait);
        if let Some(c) = self.challenge_mut() {
            c.looks = looks;
            c.message = Some(message.clone());
            c.next_check = Some(next);
        }
        self.condition(DOMAIN_VALIDATION, false, "RecordNotVisible", message);
        Ok(Break(Action::requeue(wait)))
    }

    async fn check_order_dcv(
        &mut self,
        client: &certcentral::Client,
    ) -> std::result::Result<(), Checked> {
        match client.check_order_dcv(self.spec().order_id).await {
            Ok(answer) => {
                let pending: Vec<&str> = answer
                    .dns_name_validations
                    .iter()
                    .filter(|n| !n.status.eq_ignore_ascii_case("approved"))
                    .map(|n| n.dns_name.as_str())
                    .collect();
                if pending.is_empty() {
                    Ok(())
                } else {
                    Err(Checked::Failed(format!(
                        "DigiCert checked, but these are not validated yet: {}",
                        pending.join(", ")
                    )))
                }
            }
            Err(e) => Err(Checked::from(e)),
        }
    }

    async fn check_domains(
        &mut self,
        challenge: &ChallengeStatus,
        client: &certcentral::Client,
    ) -> std::result::Result<(), Checked> {
        for r in &challenge.records {
            let Some(id) = r.domain_id else { continue };
            match client.check_domain_dcv(id).await {
                Ok(v) if v.status.eq_ignore_ascii_case("active") => {}
                Ok(v) => {
                    return Err(Checked::Failed(format!(
                        "DigiCert checked {}, and its validation is {}",
                        r.domain, v.status
                    )));
                }
                Err(e) => return Err(Checked::from(e)),
            }
        }
        Ok(())
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
        let method = self.challenge_method();
        for r in &challenge.records {
            if let Err(e) = publisher
                .withdraw(&self.ctx.client, method, &r.domain, &r.token)
                .await
            {
                let message = format!("cannot withdraw {}: {e}", r.location);
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

/// How a DigiCert check came out, when it did not validate.
enum Checked {
    /// DigiCert busy or unreachable: the usual back-off.
    Transient(certcentral::Error),
    /// DigiCert looked and did not find the value (what it said).
    Failed(String),
}

impl From<certcentral::Error> for Checked {
    fn from(e: certcentral::Error) -> Self {
        if e.is_retryable() {
            Checked::Transient(e)
        } else {
            Checked::Failed(e.to_string())
        }
    }
}
