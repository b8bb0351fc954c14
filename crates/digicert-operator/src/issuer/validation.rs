//! Domain validation for a request whose reissue DigiCert holds until the order's
//! names are validated: the same settings (the issuer's, else the account's), the
//! same solvers and the same steps as a DigicertOrder's, with the challenge kept in
//! the request's record. A finalizer on the request while values are out makes a
//! deletion withdraw them.

use std::ops::ControlFlow::{Break, Continue};
use std::time::Duration;

use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;

use super::decide::{IssuerKind, Recorded};
use super::request::{Ask, Flow, Signing};
use crate::certcentral;
use crate::certmanager::CertificateRequest;
use crate::controller::decide::{self, SettingsFrom, schedule};
use crate::controller::events::EventType;
use crate::controller::solvers::{self, DcvOwner};
use crate::controller::validation::{self, Checked};
use crate::controller::{Context, status};
use crate::crd::FINALIZER;
use crate::crd::dcv::{ChallengeStatus, DomainValidationSpec};
use crate::dcv::solver::Publisher;
use crate::error::Result;

const SCOPE_ORDER: &str = "Order";

/// The settings for a request through `issuer_spec` and its account: the issuer's own
/// replace the account's. A cluster issuer's Secrets are read from the operator's
/// namespace, like an account's.
pub fn settings(
    kind: IssuerKind,
    issuer: Option<&DomainValidationSpec>,
    account: Option<&DomainValidationSpec>,
) -> Option<(DomainValidationSpec, SettingsFrom)> {
    decide::dcv_settings(issuer, account).map(|(spec, from)| {
        let from = match (kind, from) {
            (IssuerKind::Cluster, _) => SettingsFrom::Account,
            (_, from) => from,
        };
        (spec.clone(), from)
    })
}

pub async fn publisher(
    ctx: &Context,
    request: &CertificateRequest,
    spec: &DomainValidationSpec,
    from: SettingsFrom,
) -> Result<std::result::Result<Publisher, String>> {
    use kube::Resource;
    let namespace = request.namespace().unwrap_or_default();
    let owner = DcvOwner {
        label: format!("{namespace}/CertificateRequest/{}", request.name_any()),
        namespace,
        reference: request.controller_owner_ref(&()),
    };
    solvers::publisher(ctx, spec, from, &owner).await
}

impl Signing {
    fn settings(&self, ask: &Ask) -> Option<(DomainValidationSpec, SettingsFrom)> {
        settings(
            ask.issuer.kind,
            ask.issuer.spec.domain_validation.as_ref(),
            ask.account.domain_validation.as_ref(),
        )
    }

    /// The reissue waits for DigiCert's domain validation: solve it where settings
    /// say how. `Continue` is what the request waits for (no settings, or nothing
    /// pending); `Break` the next look, with the message set.
    pub(super) async fn validate(
        &mut self,
        ask: &Ask,
        record: &mut Recorded,
        client: &certcentral::Client,
    ) -> Flow<String> {
        let Some((spec, from)) = self.settings(ask) else {
            return Ok(Continue(self.validation_message(ask, client).await));
        };
        let publisher = match publisher(&self.ctx, &self.request, &spec, from).await? {
            Ok(p) => p,
            Err(why) => {
                self.pending(&format!(
                    "the domain validation settings cannot be used: {why}"
                ));
                return Ok(Break(Action::requeue(schedule::SETTINGS_RETRY)));
            }
        };
        if record.challenge.is_some() {
            return self.advance(ask, record, &publisher, client).await;
        }
        let validation = match client.order_validation(ask.order_id).await {
            Ok(v) => v,
            Err(e) => {
                return Ok(Break(
                    self.call_failed(&e, "reading the order's domain validation"),
                ));
            }
        };
        let domains =
            decide::domain_states(&validation, spec.method, None, Default::default(), self.now);
        if let Some(why) = domains
            .iter()
            .find(|d| d.state == decide::DOMAIN_UNSUPPORTED)
            .and_then(|d| decide::unsupported(spec.method, &d.name, &d.dns_names))
        {
            self.pending(&why);
            return Ok(Break(Action::requeue(self.ctx.config.resync)));
        }
        let pending: Vec<_> = domains
            .iter()
            .filter(|d| d.state == decide::DOMAIN_PENDING)
            .collect();
        if pending.is_empty() {
            return Ok(Continue(
                "approved; waiting for DigiCert's validation and issuance".into(),
            ));
        }
        let method = decide::dcv_method(spec.method);
        let value = if validation.order_dcv_method.as_ref() != Some(&method) {
            client
                .set_order_dcv_method(ask.order_id, method)
                .await
                .map(|v| v.map(|v| v.dcv_random_value))
        } else {
            client
                .order_random_value(ask.order_id)
                .await
                .map(|v| Some(v.dcv_random_value))
        };
        let token = match value {
            Ok(Some(t)) => t,
            Ok(None) => {
                self.pending("DigiCert gave no random value for the order");
                return Ok(Break(Action::requeue(decide::check_wait(1))));
            }
            Err(e) => {
                return Ok(Break(
                    self.call_failed(&e, "getting the order's DCV random value"),
                ));
            }
        };
        let records = pending
            .iter()
            .map(|d| (d.name.clone(), d.id, token.clone()))
            .collect();
        let challenge =
            validation::new_challenge(&spec, SCOPE_ORDER, status::rfc3339(self.now), records);
        self.start(record, challenge, &publisher).await
    }

    /// Records the challenge (and the finalizer) first, then publishes.
    async fn start(
        &mut self,
        record: &mut Recorded,
        mut challenge: ChallengeStatus,
        publisher: &Publisher,
    ) -> Flow<String> {
        self.set_finalizer(true).await?;
        record.challenge = Some(challenge.clone());
        self.record(Some(record)).await?;
        let published =
            validation::publish_missing(&self.ctx.client, publisher, &mut challenge).await;
        let places: Vec<&str> = challenge
            .records
            .iter()
            .map(|r| r.location.as_str())
            .collect();
        let message = format!(
            "validating for DigiCert: published its random value at {}; waiting until it is visible",
            places.join(", ")
        );
        record.challenge = Some(challenge);
        if let Err(problem) = published {
            return self.trouble(record, problem).await;
        }
        self.record(Some(record)).await?;
        self.event(EventType::Normal, "Validating", message.clone())
            .await;
        self.pending(&message);
        Ok(Break(Action::requeue(schedule::DCV_FIRST_LOOK)))
    }

    /// A challenge under way: publish what is missing, look, then have DigiCert check.
    async fn advance(
        &mut self,
        ask: &Ask,
        record: &mut Recorded,
        publisher: &Publisher,
        client: &certcentral::Client,
    ) -> Flow<String> {
        let mut challenge = record.challenge.clone().expect("a challenge");
        if let Some(at) = challenge.next_check.as_ref().map(status::offset)
            && at > self.now
        {
            self.pending(
                challenge
                    .message
                    .as_deref()
                    .unwrap_or("validating for DigiCert"),
            );
            return Ok(Break(Action::requeue(
                (at - self.now).try_into().unwrap_or_default(),
            )));
        }
        if let Err(problem) =
            validation::publish_missing(&self.ctx.client, publisher, &mut challenge).await
        {
            record.challenge = Some(challenge);
            return self.trouble(record, problem).await;
        }
        let missing = validation::look_for_values(publisher, &mut challenge).await;
        if !missing.is_empty() {
            challenge.looks += 1;
            let wait = decide::visibility_wait(challenge.looks);
            let message = validation::not_visible_message(&missing);
            challenge.message = Some(message.clone());
            challenge.next_check = Some(self.after(wait));
            record.challenge = Some(challenge);
            self.record(Some(record)).await?;
            self.pending(&message);
            return Ok(Break(Action::requeue(wait)));
        }
        record.challenge = Some(challenge.clone());
        match validation::check_order(client, ask.order_id).await {
            Ok(()) => {
                self.withdraw(publisher, &challenge).await;
                record.challenge = None;
                self.record(Some(record)).await?;
                self.set_finalizer(false).await?;
                let domains: Vec<&str> = challenge
                    .records
                    .iter()
                    .map(|r| r.domain.as_str())
                    .collect();
                let message = format!("DigiCert validated {}", domains.join(", "));
                self.event(EventType::Normal, "DomainValidated", message.clone())
                    .await;
                Ok(Continue(format!("{message}; waiting for issuance")))
            }
            Err(Checked::Transient(e)) => Ok(Break(
                self.call_failed(&e, "asking DigiCert to check the domain validation"),
            )),
            Err(Checked::Failed(message)) => self.trouble(record, message).await,
        }
    }

    /// A failed publish or check: said, and tried again after a growing wait.
    async fn trouble(&mut self, record: &mut Recorded, problem: String) -> Flow<String> {
        let Some(challenge) = record.challenge.as_mut() else {
            return Ok(Break(Action::requeue(schedule::NEXT_STEP_NOW)));
        };
        challenge.checks += 1;
        let wait = decide::check_wait(challenge.checks);
        let repeated = challenge.message.as_deref() == Some(problem.as_str());
        challenge.message = Some(problem.clone());
        challenge.next_check = Some(self.after(wait));
        self.record(Some(record)).await?;
        let text = format!(
            "domain validation: {problem} (next try in {}s)",
            wait.as_secs()
        );
        if !repeated {
            self.event(EventType::Warning, "ValidationCheckFailed", text.clone())
                .await;
        }
        self.pending(&text);
        Ok(Break(Action::requeue(wait)))
    }

    async fn withdraw(&self, publisher: &Publisher, challenge: &ChallengeStatus) {
        for message in validation::withdraw(&self.ctx.client, publisher, challenge).await {
            tracing::warn!("{message}");
            self.event(EventType::Warning, "WithdrawFailed", message)
                .await;
        }
    }

    /// The request ends (issued, failed, deleted) with values out: they go, and so
    /// does the finalizer.
    pub(super) async fn withdraw_challenge(&mut self, ask: &Ask) -> Result<()> {
        let settings = self.settings(ask);
        self.withdraw_with_settings(settings).await
    }

    /// The same with the settings as found (none: the values cannot be reached, only
    /// the finalizer goes).
    async fn withdraw_with_settings(
        &mut self,
        settings: Option<(DomainValidationSpec, SettingsFrom)>,
    ) -> Result<()> {
        let record = Recorded::parse(
            self.request
                .annotation(crate::crd::issuer::ISSUANCE_ANNOTATION),
        );
        if let Some(mut record) = record
            && let Some(challenge) = record.challenge.clone()
        {
            if let Some((spec, from)) = settings
                && let Ok(publisher) = publisher(&self.ctx, &self.request, &spec, from).await?
            {
                self.withdraw(&publisher, &challenge).await;
            }
            record.challenge = None;
            self.record(Some(&record)).await?;
        }
        self.set_finalizer(false).await
    }

    /// A request deleted with values out: withdraw them as far as its issuer and
    /// account still say how, then let it go.
    pub async fn cleanup(&mut self) -> Result<()> {
        let mut settings = None;
        if let Ok(issuer) = super::issuers::find(&self.ctx, &self.request).await? {
            let account = issuer.spec.account_ref.as_ref().map(|a| a.name.clone());
            let order = Recorded::parse(
                self.request
                    .annotation(crate::crd::issuer::ISSUANCE_ANNOTATION),
            )
            .map(|r| r.order_id);
            let resolved = crate::controller::accounts::resolve_for_request(
                &self.ctx,
                Some(&self.namespace),
                order,
                account.as_deref(),
            )
            .await?;
            let account_dcv = resolved.ok().and_then(|r| r.domain_validation);
            settings = self::settings(
                issuer.kind,
                issuer.spec.domain_validation.as_ref(),
                account_dcv.as_ref(),
            );
        }
        if settings.is_none() {
            tracing::warn!(request = %self.name, "deleted with domain validation values out, and its issuer or account no longer says where: they stay");
        }
        self.withdraw_with_settings(settings).await
    }

    /// What DigiCert waits for, without settings to solve it: said, not solved.
    pub(super) async fn validation_message(
        &self,
        ask: &Ask,
        client: &certcentral::Client,
    ) -> String {
        let pending: Vec<String> = match client.order_validation(ask.order_id).await {
            Ok(v) => v
                .dns_name_validations
                .into_iter()
                .filter(|d| !d.status.eq_ignore_ascii_case("approved"))
                .map(|d| d.name_scope)
                .collect(),
            Err(_) => vec![],
        };
        if pending.is_empty() {
            return "approved; waiting for DigiCert's validation and issuance".into();
        }
        format!(
            "approved; DigiCert waits for domain validation of {} (no domainValidation on the issuer or its account: complete it in CertCentral)",
            pending.join(", ")
        )
    }

    fn after(&self, wait: Duration) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
        status::time(self.now + time::Duration::try_from(wait).unwrap_or_default())
    }

    /// Adds or removes the operator's finalizer on the request, against the version
    /// read.
    async fn set_finalizer(&mut self, on: bool) -> Result<()> {
        let has = self.request.finalizers().iter().any(|f| f == FINALIZER);
        if has == on {
            return Ok(());
        }
        let mut finalizers: Vec<String> = self
            .request
            .finalizers()
            .iter()
            .filter(|f| *f != FINALIZER)
            .cloned()
            .collect();
        if on {
            finalizers.push(FINALIZER.into());
        }
        let patch = serde_json::json!({
            "metadata": {
                "finalizers": finalizers,
                "resourceVersion": self.request.resource_version(),
            }
        });
        let api: Api<CertificateRequest> =
            Api::namespaced(self.ctx.client.clone(), &self.namespace);
        let written = api
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        self.adopt_metadata(written.metadata);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::dcv::DcvMethodSpec;

    fn spec(method: DcvMethodSpec) -> DomainValidationSpec {
        DomainValidationSpec {
            method,
            dns: None,
            http: None,
            renew_before: None,
        }
    }

    #[test]
    fn the_issuers_settings_replace_the_accounts_and_a_cluster_issuer_reads_the_operators_secrets()
    {
        let own = spec(DcvMethodSpec::HttpToken);
        let account = spec(DcvMethodSpec::DnsTxtToken);
        let cases = [
            (
                IssuerKind::Namespaced,
                Some(&own),
                Some(&account),
                Some((DcvMethodSpec::HttpToken, SettingsFrom::Order)),
            ),
            (
                IssuerKind::Namespaced,
                None,
                Some(&account),
                Some((DcvMethodSpec::DnsTxtToken, SettingsFrom::Account)),
            ),
            (
                IssuerKind::Cluster,
                Some(&own),
                Some(&account),
                Some((DcvMethodSpec::HttpToken, SettingsFrom::Account)),
            ),
            (IssuerKind::Cluster, None, None, None),
        ];
        for (kind, issuer, acct, want) in cases {
            let got = settings(kind, issuer, acct).map(|(s, from)| (s.method, from));
            assert_eq!(got, want, "{kind:?}");
        }
    }
}
