//! The effects of one domain validation, over the plain `ChallengeStatus` it is kept
//! in: publish the random values, look whether they are visible, ask DigiCert to
//! check, withdraw them. A DigicertOrder keeps its challenge in status, a cert-manager
//! request on itself; both go through these steps.

use crate::certcentral;
use crate::crd::dcv::{ChallengeRecord, ChallengeStatus, DcvMethodSpec, DomainValidationSpec};
use crate::dcv::solver::{Publisher, Seen};

use super::decide;

/// The method a challenge was published for.
pub fn method_of(challenge: &ChallengeStatus) -> DcvMethodSpec {
    match challenge.method.as_str() {
        "dns-cname-token" => DcvMethodSpec::DnsCnameToken,
        "http-token" => DcvMethodSpec::HttpToken,
        _ => DcvMethodSpec::DnsTxtToken,
    }
}

/// A new challenge: one record a domain (`(domain, DigiCert's id, value)`), nothing
/// published yet.
pub fn new_challenge(
    spec: &DomainValidationSpec,
    scope: &str,
    published: String,
    records: Vec<(String, Option<u64>, String)>,
) -> ChallengeStatus {
    ChallengeStatus {
        scope: scope.into(),
        method: spec.method.as_str().into(),
        published,
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
    }
}

/// Publishes what is not out yet, marking each record as it goes; the error says
/// where it failed.
pub async fn publish_missing(
    client: &kube::Client,
    publisher: &Publisher,
    challenge: &mut ChallengeStatus,
) -> Result<(), String> {
    let method = method_of(challenge);
    for r in challenge.records.iter_mut().filter(|r| !r.published) {
        publisher
            .publish(client, method, &r.domain, &r.token)
            .await
            .map_err(|e| format!("publishing {}: {e}", r.location))?;
        r.published = true;
    }
    Ok(())
}

/// Looks for the values not seen yet, marking those found; returns what is still
/// missing (where, and what was seen there).
pub async fn look_for_values(
    publisher: &Publisher,
    challenge: &mut ChallengeStatus,
) -> Vec<String> {
    let method = method_of(challenge);
    let mut missing = Vec::new();
    for r in challenge.records.iter_mut().filter(|r| !r.visible) {
        match publisher.seen(method, &r.domain, &r.token).await {
            Ok(Seen::Visible) => r.visible = true,
            Ok(Seen::Not(saw)) => missing.push(format!("{}: {saw}", r.location)),
            Err(e) => missing.push(format!("{}: {e}", r.location)),
        }
    }
    missing
}

/// The message of values not visible yet.
pub fn not_visible_message(missing: &[String]) -> String {
    format!(
        "the random value is not visible yet where DigiCert looks ({}); DigiCert is not asked until it is",
        missing.join("; ")
    )
}

/// How a DigiCert check came out, when it did not validate.
pub enum Checked {
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

/// `check-dcv` of the order: validated when DigiCert approves every name.
pub async fn check_order(client: &certcentral::Client, order_id: u64) -> Result<(), Checked> {
    let answer = client.check_order_dcv(order_id).await?;
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

/// `validate-token` of each domain of a domain-scope challenge.
pub async fn check_domains(
    client: &certcentral::Client,
    challenge: &ChallengeStatus,
) -> Result<(), Checked> {
    for r in &challenge.records {
        let Some(id) = r.domain_id else { continue };
        let v = client.check_domain_dcv(id).await?;
        if !v.status.eq_ignore_ascii_case("active") {
            return Err(Checked::Failed(format!(
                "DigiCert checked {}, and its validation is {}",
                r.domain, v.status
            )));
        }
    }
    Ok(())
}

/// Takes the values down; returns what could not be withdrawn (said by the caller,
/// not retried).
pub async fn withdraw(
    client: &kube::Client,
    publisher: &Publisher,
    challenge: &ChallengeStatus,
) -> Vec<String> {
    let method = method_of(challenge);
    let mut failures = Vec::new();
    for r in &challenge.records {
        if let Err(e) = publisher
            .withdraw(client, method, &r.domain, &r.token)
            .await
        {
            failures.push(format!("cannot withdraw {}: {e}", r.location));
        }
    }
    failures
}
