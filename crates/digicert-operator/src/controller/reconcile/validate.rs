//! Domain validation, solved by the operator: for a reissue that DigiCert holds until
//! its domains are validated (the order random value, `check-dcv`), and ahead of a
//! planned reissue for domains whose validation would lapse before it (each domain's
//! own value, `validate-token`). A validation under way lives in
//! `status.domainValidation.challenge`, so it survives restarts and is cleaned up.

use super::*;
use crate::controller::decide::SettingsFrom;
use crate::controller::status::DOMAIN_VALIDATION;
use crate::crd::dcv::{
    ChallengeStatus, DomainStatus, DomainValidationSpec, DomainValidationStatus,
};
use crate::dcv::solver::Publisher;

pub(super) const SCOPE_ORDER: &str = "Order";
pub(super) const SCOPE_DOMAIN: &str = "Domain";

impl Run {
    pub(super) fn dcv_status(&mut self) -> &mut DomainValidationStatus {
        self.status
            .domain_validation
            .get_or_insert_with(Default::default)
    }

    /// The settings that apply to this order, if any.
    pub(super) async fn dcv_settings(
        &mut self,
    ) -> Result<Option<(DomainValidationSpec, SettingsFrom)>> {
        let account = match self.account().await? {
            Some(a) => a.domain_validation.clone(),
            None => None,
        };
        Ok(
            decide::dcv_settings(self.spec().domain_validation.as_ref(), account.as_ref())
                .map(|(s, from)| (s.clone(), from)),
        )
    }

    /// The publisher for the settings; `Err` says in words why they cannot be used.
    pub(super) async fn publisher(
        &self,
        spec: &DomainValidationSpec,
        from: SettingsFrom,
    ) -> Result<std::result::Result<Publisher, String>> {
        let owner = super::super::solvers::DcvOwner::of_order(&self.order);
        super::super::solvers::publisher(&self.ctx, spec, from, &owner).await
    }

    /// While DigiCert holds the reissue: solve its pending validations. `None` leaves
    /// the waiting to the caller (no settings, nothing pending, or looked already).
    pub(super) async fn validate_for_reissue(
        &mut self,
        client: &certcentral::Client,
        submitted: OffsetDateTime,
    ) -> Flow {
        let Some((spec, from)) = self.dcv_settings().await? else {
            return Ok(Continue(()));
        };
        if self.challenge().is_some() {
            return self.advance_challenge(&spec, from, client).await.map(Break);
        }
        let looked = self.dcv_status().last_check.as_ref().map(status::offset);
        // One look per reissue (and every 10 minutes while it waits): DigiCert's own
        // polling and the issuance need no more.
        if looked.is_some_and(|t| t >= submitted && self.now - t < time::Duration::minutes(10)) {
            return Ok(Continue(()));
        }
        // Settings that cannot be used make no DigiCert call.
        let publisher = match self.publisher(&spec, from).await? {
            Ok(p) => p,
            Err(why) => return Ok(Break(self.settings_unusable(why).await)),
        };
        let order_id = self.spec().order_id;
        let validation = match client.order_validation(order_id).await {
            Ok(v) => v,
            Err(e) => {
                return Ok(Break(
                    self.fail(&e, "reading the order's domain validation").await,
                ));
            }
        };
        let domains = self.record_domains(&spec, &validation, None);
        let pending: Vec<DomainStatus> = domains
            .iter()
            .filter(|d| d.state == decide::DOMAIN_PENDING)
            .cloned()
            .collect();
        if let Break(action) = self.refuse_unsupported(&spec, &domains).await {
            return Ok(Break(action));
        }
        if pending.is_empty() {
            return Ok(Continue(()));
        }
        let method = decide::dcv_method(spec.method);
        let value = if validation.order_dcv_method.as_ref() != Some(&method) {
            client
                .set_order_dcv_method(order_id, method)
                .await
                .map(|v| v.map(|v| v.dcv_random_value))
        } else {
            client
                .order_random_value(order_id)
                .await
                .map(|v| Some(v.dcv_random_value))
        };
        let token = match value {
            Ok(Some(t)) => t,
            Ok(None) => {
                let message = "DigiCert gave no random value for the order".to_string();
                self.condition(DOMAIN_VALIDATION, false, "CheckFailed", message);
                return Ok(Break(Action::requeue(decide::check_wait(1))));
            }
            Err(e) => {
                return Ok(Break(
                    self.fail(&e, "getting the order's DCV random value").await,
                ));
            }
        };
        let records = pending
            .iter()
            .map(|d| (d.name.clone(), d.id, token.clone()))
            .collect();
        self.start_challenge(&spec, &publisher, SCOPE_ORDER, records)
            .await
            .map(Break)
    }

    /// Idle: look at the validations when due, and renew those that would lapse
    /// before the next reissue. `Continue(at)`: nothing to do before `at`.
    pub(super) async fn validate_ahead(
        &mut self,
        client: &certcentral::Client,
        planned: Option<OffsetDateTime>,
    ) -> Flow<Option<OffsetDateTime>> {
        let Some((spec, from)) = self.dcv_settings().await? else {
            self.status.domain_validation = None;
            return Ok(Continue(None));
        };
        if self.challenge().is_some() {
            return self.advance_challenge(&spec, from, client).await.map(Break);
        }
        let lead = decide::dcv_renew_before(&spec);
        let last = self.dcv_status().last_check.as_ref().map(status::offset);
        let look = decide::dcv_look(last, planned, lead, self.now);
        self.dcv_status().next_check = look.map(status::time);
        if look.is_none_or(|t| t > self.now) {
            return Ok(Continue(look));
        }
        let publisher = match self.publisher(&spec, from).await? {
            Ok(p) => p,
            Err(why) => return Ok(Break(self.settings_unusable(why).await)),
        };
        let validation = match client.order_validation(self.spec().order_id).await {
            Ok(v) => v,
            Err(e) => {
                return Ok(Break(
                    self.fail(&e, "reading the order's domain validation").await,
                ));
            }
        };
        let domains = self.record_domains(&spec, &validation, planned);
        if let Break(action) = self.refuse_unsupported(&spec, &domains).await {
            return Ok(Break(action));
        }
        let last_renewal = self.dcv_status().last_renewal.as_ref().map(status::offset);
        let due: Vec<DomainStatus> =
            if decide::renew_validations_now(planned, lead, last_renewal, self.now) {
                decide::domains_to_validate(&domains)
                    .into_iter()
                    .cloned()
                    .collect()
            } else {
                Vec::new()
            };
        if due.is_empty() {
            let next = decide::dcv_look(Some(self.now), planned, lead, self.now);
            self.validated_condition(&domains, next);
            self.dcv_status().next_check = next.map(status::time);
            return Ok(Continue(next));
        }
        self.dcv_status().last_renewal = Some(status::time(self.now));
        self.renew_domains(&spec, &publisher, due, client)
            .await
            .map(Break)
    }

    /// Starts new validations of `due` domains, each with its own random value.
    async fn renew_domains(
        &mut self,
        spec: &DomainValidationSpec,
        publisher: &Publisher,
        due: Vec<DomainStatus>,
        client: &certcentral::Client,
    ) -> Result<Action> {
        let method = decide::dcv_method(spec.method);
        let mut records = Vec::new();
        for domain in due {
            let Some(id) = domain.id else { continue };
            let token = match client.submit_domain_validation(id, method.clone()).await {
                Ok(Some(t)) => Ok(t),
                Ok(None) => client.new_domain_token(id).await,
                Err(e) => Err(e),
            };
            match token {
                Ok(t) => records.push((domain.name.clone(), Some(id), t.token)),
                Err(e) => {
                    let what = format!("starting a new validation of {}", domain.name);
                    return Ok(self.fail(&e, &what).await);
                }
            }
        }
        self.start_challenge(spec, publisher, SCOPE_DOMAIN, records)
            .await
    }

    /// Records what DigiCert says of each domain in status and metrics.
    fn record_domains(
        &mut self,
        spec: &DomainValidationSpec,
        validation: &crate::certcentral::dcv::OrderValidation,
        planned: Option<OffsetDateTime>,
    ) -> Vec<DomainStatus> {
        let margin = decide::dcv_renew_before(spec);
        let domains = decide::domain_states(validation, spec.method, planned, margin, self.now);
        let now = status::time(self.now);
        let method = spec.method.as_str().to_string();
        let dcv = self.dcv_status();
        dcv.method = Some(method);
        dcv.last_check = Some(now);
        dcv.domains = domains.clone();
        domains
    }

    /// A domain the method cannot validate: said in status, not sent to DigiCert.
    async fn refuse_unsupported(
        &mut self,
        spec: &DomainValidationSpec,
        domains: &[DomainStatus],
    ) -> ControlFlow<Action> {
        let why = domains
            .iter()
            .find(|d| d.state == decide::DOMAIN_UNSUPPORTED)
            .and_then(|d| decide::unsupported(spec.method, &d.name, &d.dns_names));
        let Some(why) = why else {
            return Continue(());
        };
        if status::find(&self.status.conditions, DOMAIN_VALIDATION)
            .is_none_or(|c| c.reason != "Unsupported")
        {
            self.event(
                EventType::Warning,
                "Unsupported",
                "ValidateDomain",
                why.clone(),
            )
            .await;
        }
        self.condition(DOMAIN_VALIDATION, false, "Unsupported", why);
        Break(Action::await_change())
    }

    /// Nothing to validate now: all current, or due only in the window before the
    /// next reissue (`renew_from`).
    fn validated_condition(
        &mut self,
        domains: &[DomainStatus],
        renew_from: Option<OffsetDateTime>,
    ) {
        let lapsing: Vec<&str> = decide::domains_to_validate(domains)
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        let earliest = domains.iter().filter_map(|d| d.expires.clone()).min();
        let (reason, message) = match (lapsing.is_empty(), renew_from) {
            (false, Some(at)) => (
                "RenewalScheduled",
                format!(
                    "{} lapse(s) before the next reissue; validated again from {}",
                    lapsing.join(", "),
                    status::rfc3339(at)
                ),
            ),
            _ => (
                "Validated",
                match earliest {
                    Some(t) => format!(
                        "{} domain(s) validated; the first lapses at {}",
                        domains.len(),
                        status::show(&t)
                    ),
                    None => format!("{} domain(s) validated", domains.len()),
                },
            ),
        };
        self.condition(DOMAIN_VALIDATION, true, reason, message);
    }

    pub(super) fn challenge(&self) -> Option<&ChallengeStatus> {
        self.status
            .domain_validation
            .as_ref()
            .and_then(|d| d.challenge.as_ref())
    }

    pub(super) fn challenge_mut(&mut self) -> Option<&mut ChallengeStatus> {
        self.status
            .domain_validation
            .as_mut()
            .and_then(|d| d.challenge.as_mut())
    }
}
