//! What a status write tells of an order's life, as the operator's info log lines:
//! one line a step (a reissue sent, a certificate issued and written, a renewal
//! planned, a reissue held, domain validation values published, a domain validated,
//! Ready lost), from the status before and after the write.

use crate::crd::{DigicertOrderStatus, ReissueState};

use super::super::status::{ISSUING, READY, find};

/// Reasons of `Issuing=False` that hold a reissue until somebody acts.
const HELD: [&str; 2] = ["RevocationConsentRequired", "Canceled"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// A short name, the log line's `step` field.
    pub step: &'static str,
    pub message: String,
}

fn step(step: &'static str, message: String) -> Step {
    Step { step, message }
}

pub fn steps(before: &DigicertOrderStatus, after: &DigicertOrderStatus) -> Vec<Step> {
    let mut out = Vec::new();
    if let Some(r) = &after.reissue
        && r.state != ReissueState::Prepared
        && before.reissue.as_ref().is_none_or(|b| {
            b.state == ReissueState::Prepared || b.csr_fingerprint != r.csr_fingerprint
        })
    {
        let what = if r.duplicate { "duplicate" } else { "reissue" };
        out.push(step(
            "reissue_sent",
            format!("{what} sent to DigiCert (reason: {})", r.reason),
        ));
    }
    if let Some(c) = &after.certificate
        && before.certificate.as_ref().is_none_or(|b| b.id != c.id)
    {
        out.push(step(
            "issued",
            format!(
                "certificate {} issued (serial {}), valid until {}",
                c.id, c.serial_number, c.not_after.0
            ),
        ));
    }
    if after.revision > before.revision {
        out.push(step(
            "secret_written",
            format!("certificate Secret written (revision {})", after.revision),
        ));
    }
    if let Some(t) = &after.renewal_time
        && before.renewal_time.as_ref() != Some(t)
    {
        out.push(step(
            "renewal_planned",
            format!("renewal planned for {}", t.0),
        ));
    }
    out.extend(held(before, after));
    out.extend(validation(before, after));
    let ready = |s: &DigicertOrderStatus| find(&s.conditions, READY).map(|c| c.status == "True");
    if ready(before) == Some(true)
        && ready(after) == Some(false)
        && let Some(c) = find(&after.conditions, READY)
    {
        out.push(step(
            "not_ready",
            format!("not ready ({}): {}", c.reason, c.message),
        ));
    }
    out
}

fn held(before: &DigicertOrderStatus, after: &DigicertOrderStatus) -> Option<Step> {
    let issuing = find(&after.conditions, ISSUING)?;
    let was = find(&before.conditions, ISSUING).map(|c| c.reason.as_str());
    (issuing.status == "False"
        && HELD.contains(&issuing.reason.as_str())
        && was != Some(issuing.reason.as_str()))
    .then(|| {
        step(
            "held",
            format!("reissue held ({}): {}", issuing.reason, issuing.message),
        )
    })
}

fn validation(before: &DigicertOrderStatus, after: &DigicertOrderStatus) -> Vec<Step> {
    let mut out = Vec::new();
    let (Some(now), was) = (&after.domain_validation, &before.domain_validation) else {
        return out;
    };
    if let Some(c) = &now.challenge
        && was
            .as_ref()
            .and_then(|w| w.challenge.as_ref())
            .is_none_or(|w| w.published != c.published)
    {
        let domains: Vec<&str> = c.records.iter().map(|r| r.domain.as_str()).collect();
        out.push(step(
            "dcv_published",
            format!(
                "domain validation values published ({}, {}) for {}",
                c.method,
                c.scope.to_lowercase(),
                domains.join(", ")
            ),
        ));
    }
    for d in now.domains.iter().filter(|d| d.state == "Validated") {
        let before = was
            .as_ref()
            .and_then(|w| w.domains.iter().find(|b| b.name == d.name));
        if before.is_some_and(|b| b.state != "Validated") {
            let until = d
                .expires
                .as_ref()
                .map(|t| format!(" until {}", t.0))
                .unwrap_or_default();
            out.push(step(
                "dcv_validated",
                format!("domain {} validated{until}", d.name),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::dcv::{ChallengeRecord, ChallengeStatus, DomainStatus, DomainValidationStatus};
    use crate::crd::{CertificateStatus, ReissueStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    fn t(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    fn condition(type_: &str, status: &str, reason: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: "why".into(),
            last_transition_time: t("2027-01-01T00:00:00Z"),
            observed_generation: None,
        }
    }

    fn reissue(state: ReissueState) -> ReissueStatus {
        ReissueStatus {
            state,
            reason: "Renewal".into(),
            csr_fingerprint: "f".into(),
            spec_fingerprint: "s".into(),
            key_secret_name: "k".into(),
            request_id: None,
            certificate_id: None,
            submitted_at: None,
            duplicate: false,
            names: vec![],
            duplicate_of: None,
            csr: None,
        }
    }

    fn certificate(id: u64) -> CertificateStatus {
        CertificateStatus {
            id,
            serial_number: "0A".into(),
            thumbprint: "T".into(),
            not_before: t("2027-01-01T00:00:00Z"),
            not_after: t("2027-04-01T00:00:00Z"),
            dns_names: vec![],
        }
    }

    fn dcv(published: Option<&str>, state: &str) -> Option<DomainValidationStatus> {
        Some(DomainValidationStatus {
            domains: vec![DomainStatus {
                name: "example.com".into(),
                state: state.into(),
                ..DomainStatus::default()
            }],
            challenge: published.map(|p| ChallengeStatus {
                scope: "Order".into(),
                method: "dns-txt-token".into(),
                published: p.into(),
                records: vec![ChallengeRecord {
                    domain: "example.com".into(),
                    ..ChallengeRecord::default()
                }],
                ..ChallengeStatus::default()
            }),
            ..DomainValidationStatus::default()
        })
    }

    fn names(before: &DigicertOrderStatus, after: &DigicertOrderStatus) -> Vec<&'static str> {
        steps(before, after).into_iter().map(|s| s.step).collect()
    }

    #[test]
    fn each_step_of_an_orders_life_is_one_line() {
        let idle = DigicertOrderStatus {
            certificate: Some(certificate(1)),
            revision: 1,
            renewal_time: Some(t("2027-03-01T00:00:00Z")),
            conditions: vec![
                condition(READY, "True", "Issued"),
                condition(ISSUING, "False", "Idle"),
            ],
            domain_validation: dcv(None, "Expiring"),
            ..DigicertOrderStatus::default()
        };
        let with = |change: &dyn Fn(&mut DigicertOrderStatus)| {
            let mut s = idle.clone();
            change(&mut s);
            s
        };
        let submitting = with(&|s| s.reissue = Some(reissue(ReissueState::Submitting)));
        let submitted = with(&|s| s.reissue = Some(reissue(ReissueState::Submitted)));
        let issued = with(&|s| {
            s.certificate = Some(certificate(2));
            s.revision = 2;
            s.renewal_time = Some(t("2027-06-01T00:00:00Z"));
        });
        let cases: Vec<(DigicertOrderStatus, DigicertOrderStatus, Vec<&str>)> = vec![
            // Nothing changed, or only what no step is about.
            (idle.clone(), idle.clone(), vec![]),
            (idle.clone(), with(&|s| s.failed_attempts = 2), vec![]),
            // Sent once: the Submitting write, not the Submitted one after it.
            (idle.clone(), submitting.clone(), vec!["reissue_sent"]),
            (
                idle.clone(),
                with(&|s| s.reissue = Some(reissue(ReissueState::Prepared))),
                vec![],
            ),
            (submitting.clone(), submitted.clone(), vec![]),
            (
                submitted.clone(),
                issued.clone(),
                vec!["issued", "secret_written", "renewal_planned"],
            ),
            // The Secret rewritten for the spec (same certificate).
            (
                idle.clone(),
                with(&|s| s.revision = 2),
                vec!["secret_written"],
            ),
            (
                idle.clone(),
                with(&|s| {
                    s.conditions[1] = condition(ISSUING, "False", "RevocationConsentRequired");
                }),
                vec!["held"],
            ),
            (
                with(&|s| s.conditions[1] = condition(ISSUING, "False", "Canceled")),
                with(&|s| s.conditions[1] = condition(ISSUING, "False", "Canceled")),
                vec![],
            ),
            (
                idle.clone(),
                with(&|s| s.conditions[0] = condition(READY, "False", "Renewal")),
                vec!["not_ready"],
            ),
            (
                idle.clone(),
                with(&|s| s.domain_validation = dcv(Some("t1"), "Expiring")),
                vec!["dcv_published"],
            ),
            (
                with(&|s| s.domain_validation = dcv(Some("t1"), "Pending")),
                with(&|s| s.domain_validation = dcv(None, "Validated")),
                vec!["dcv_validated"],
            ),
            // A first status: a certificate found in place is issued and written.
            (
                DigicertOrderStatus::default(),
                idle.clone(),
                vec!["issued", "secret_written", "renewal_planned"],
            ),
        ];
        for (i, (before, after, want)) in cases.into_iter().enumerate() {
            assert_eq!(names(&before, &after), want, "case {i}");
        }
        let sent = steps(&idle, &submitting);
        assert_eq!(
            sent[0].message,
            "reissue sent to DigiCert (reason: Renewal)"
        );
        let issued = steps(&submitted, &issued);
        assert!(
            issued[0]
                .message
                .contains("certificate 2 issued (serial 0A), valid until 2027-04-01"),
            "{issued:?}"
        );
        assert!(!format!("{issued:?}").contains("Some("));
    }
}
