//! The external issuer's decisions, as pure functions of plain data and `now`,
//! table-tested: is this request ours and may it go on, is its CSR usable, which
//! order, may the reissue drop names, what was recorded and what comes next.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::certmanager::{CertificateRequestStatus, IssuerRef, condition};
use crate::controller::decide::{Consent, revocation_consent};
use crate::crd::issuer::{CLUSTER_ISSUER_KIND, ISSUER_KIND};
use crate::crd::{GROUP, Issuance};
use crate::keys::{CsrInfo, KeyKind};

/// Which of our issuers a request names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssuerKind {
    Namespaced,
    Cluster,
}

impl IssuerKind {
    pub fn name(self) -> &'static str {
        match self {
            IssuerKind::Namespaced => ISSUER_KIND,
            IssuerKind::Cluster => CLUSTER_ISSUER_KIND,
        }
    }
}

/// The kind of our issuer `issuer_ref` names; `None`: not ours (another issuer's
/// request, which the operator never touches).
pub fn our_issuer(issuer_ref: &IssuerRef) -> Option<IssuerKind> {
    if issuer_ref.group.as_deref() != Some(GROUP) {
        return None;
    }
    match issuer_ref.kind.as_deref() {
        Some(ISSUER_KIND) | None => Some(IssuerKind::Namespaced),
        Some(CLUSTER_ISSUER_KIND) => Some(IssuerKind::Cluster),
        Some(_) => None,
    }
}

/// Where a request stands in cert-manager's contract, before anything else is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Issued, or ended for good (denied, invalid, failed): nothing more to do.
    Done,
    /// Denied by an approver: say so (Ready=False, Denied) and stop.
    Denied,
    /// Neither approved nor denied yet: no DigiCert call until it is.
    AwaitingApproval,
    /// Approved: go on.
    Approved,
}

/// The gate of a request (issuer-lib's order: finished first, then denied, then
/// approved).
pub fn gate(status: &CertificateRequestStatus) -> Gate {
    let ready = status.find(condition::READY);
    let finished = ready.is_some_and(|c| {
        c.status == "True"
            || matches!(
                c.reason.as_deref(),
                Some(condition::FAILED | condition::DENIED_REASON | condition::INVALID_REASON)
            )
    });
    if finished || status.is_true(condition::INVALID_REQUEST) {
        return Gate::Done;
    }
    if status.is_true(condition::DENIED) {
        return Gate::Denied;
    }
    if status.is_true(condition::APPROVED) {
        return Gate::Approved;
    }
    Gate::AwaitingApproval
}

/// From this moment on, publicly trusted leaf certificates are for servers only
/// (Chrome Root Program policy 1.8): DigiCert issues no clientAuth usage.
pub const SERVER_AUTH_ONLY_FROM: OffsetDateTime = datetime!(2027-03-15 00:00 UTC);

/// What a usable CSR asks for: its names (the common name first, lower case, no
/// repeats).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub names: Vec<String>,
}

/// Whether DigiCert can be asked to sign this CSR; the error is why not (an
/// `InvalidRequest`, terminal). `usages` and `is_ca` are the request's own fields.
pub fn usable_csr(
    info: &CsrInfo,
    usages: &[String],
    is_ca: bool,
    now: OffsetDateTime,
) -> Result<Wanted, String> {
    if !info.signature_valid {
        return Err("the CSR's signature does not verify with its own key".into());
    }
    if is_ca || info.is_ca {
        return Err("DigiCert issues no CA certificates from an order: isCA must be false".into());
    }
    match info.key {
        KeyKind::Rsa(bits) if (2048..=8192).contains(&bits) => {}
        KeyKind::Ecdsa(256 | 384) => {}
        other => {
            return Err(format!(
                "DigiCert refuses a {} key: use RSA of 2048 bits or more, or ECDSA P-256 or P-384",
                describe_key(other)
            ));
        }
    }
    let client_auth = info.client_auth || usages.iter().any(|u| u == "client auth");
    if client_auth && now >= SERVER_AUTH_ONLY_FROM {
        return Err(
            "certificates issued from 2027-03-15 on are for servers only: remove the client auth usage".into(),
        );
    }
    let mut names: Vec<String> = Vec::new();
    for n in info.common_name.iter().chain(&info.dns_names) {
        let n = n.trim().trim_end_matches('.').to_ascii_lowercase();
        if !n.is_empty() && !names.contains(&n) {
            names.push(n);
        }
    }
    if names.is_empty() {
        return Err("the CSR names no domain (neither a common name nor DNS names)".into());
    }
    Ok(Wanted { names })
}

fn describe_key(kind: KeyKind) -> String {
    match kind {
        KeyKind::Rsa(bits) => format!("{bits}-bit RSA"),
        KeyKind::Ecdsa(bits) => format!("P-{bits} ECDSA"),
        KeyKind::Ed25519 => "Ed25519".into(),
        KeyKind::Other => "non-RSA, non-ECDSA".into(),
    }
}

/// The order a request is for: the issuer's, else the one its annotation names. The
/// error is an `InvalidRequest`.
pub fn choose_order(issuer_order: Option<u64>, annotation: Option<&str>) -> Result<u64, String> {
    let named = match annotation.map(str::trim) {
        None | Some("") => None,
        Some(text) => match text.parse::<u64>() {
            Ok(id) if id > 0 => Some(id),
            _ => {
                return Err(format!(
                    "the annotation {} must be a CertCentral order id, not {text:?}",
                    crate::crd::issuer::ORDER_ID_ANNOTATION
                ));
            }
        },
    };
    match (issuer_order, named) {
        (Some(pinned), Some(other)) if pinned != other => Err(format!(
            "the issuer serves order {pinned} only; the request names order {other}"
        )),
        (Some(id), _) | (None, Some(id)) => Ok(id),
        (None, None) => Err(format!(
            "the issuer names no order: annotate the Certificate with {}=<order id>",
            crate::crd::issuer::ORDER_ID_ANNOTATION
        )),
    }
}

/// A duplicate carries the names of the order's current certificate, all of them
/// and no other (DigiCert: every field but the key must match the original; the
/// common name may be any of them). The error says what differs (an
/// `InvalidRequest`).
pub fn duplicate_names_allowed(wanted: &[String], current: &[String]) -> Result<(), String> {
    let has = |list: &[String], n: &String| list.iter().any(|c| c.eq_ignore_ascii_case(n));
    let missing: Vec<&str> = current
        .iter()
        .filter(|n| !has(wanted, n))
        .map(String::as_str)
        .collect();
    let others: Vec<&str> = wanted
        .iter()
        .filter(|n| !has(current, n))
        .map(String::as_str)
        .collect();
    if missing.is_empty() && others.is_empty() {
        return Ok(());
    }
    let mut problems = Vec::new();
    if !others.is_empty() {
        problems.push(format!("not on it: {}", others.join(", ")));
    }
    if !missing.is_empty() {
        problems.push(format!("missing: {}", missing.join(", ")));
    }
    Err(format!(
        "a duplicate carries exactly the names of the order's current certificate ({}); {}",
        current.join(", "),
        problems.join("; ")
    ))
}

/// The revocation guard for a request: the issuer's blanket consent, or the
/// fingerprint annotated on the request (its Certificate's is copied there) or on
/// the issuer.
pub fn consent(
    current: Option<&[String]>,
    wanted: &[String],
    allow_all: bool,
    on_request: Option<&str>,
    on_issuer: Option<&str>,
) -> Consent {
    let fingerprint = crate::controller::decide::names_fingerprint(wanted);
    let agreed = [on_request, on_issuer]
        .into_iter()
        .flatten()
        .find(|a| a.trim() == fingerprint);
    revocation_consent(current, wanted, allow_all, agreed)
}

/// What was sent to DigiCert for a request, recorded on it (annotation
/// `digicert-operator.dev/issuance`) before the send.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Recorded {
    pub order_id: u64,
    pub issuance: Issuance,
    /// SHA-256 of the CSR's DER.
    pub csr: String,
    /// When the send began (RFC 3339).
    pub sent_at: String,
    /// Whether DigiCert's answer came back (else it may or may not have arrived).
    #[serde(default)]
    pub answered: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<u64>,
    /// The domain validation the operator has under way for it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge: Option<crate::crd::dcv::ChallengeStatus>,
}

impl Recorded {
    pub fn parse(text: Option<&str>) -> Option<Recorded> {
        serde_json::from_str(text?).ok()
    }

    pub fn to_annotation(&self) -> String {
        serde_json::to_string(self).expect("a record serialises")
    }

    pub fn sent_at(&self) -> Option<OffsetDateTime> {
        OffsetDateTime::parse(
            &self.sent_at,
            &time::format_description::well_known::Rfc3339,
        )
        .ok()
    }
}

/// The next step for a request that passed the gate, from what was recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing sent yet: check the order and send.
    Send,
    /// Sent, answer lost: look for it at DigiCert by its CSR.
    Find,
    /// Known at DigiCert: follow it until issued.
    Follow,
    /// The record is for another CSR, order or mode (edited by hand): the request
    /// cannot be trusted any more.
    Mismatch(String),
}

pub fn step(recorded: Option<&Recorded>, csr: &str, order_id: u64, issuance: Issuance) -> Step {
    let Some(r) = recorded else {
        return Step::Send;
    };
    if r.csr != csr || r.order_id != order_id || r.issuance != issuance {
        return Step::Mismatch(format!(
            "the request was sent to DigiCert as a {:?} of order {} for another CSR or order than it now names (order {order_id}, {issuance:?})",
            r.issuance, r.order_id
        ));
    }
    if r.answered || r.certificate_id.is_some() {
        Step::Follow
    } else {
        Step::Find
    }
}

/// After a lost answer, with the request not found at DigiCert: send again only once
/// no earlier attempt can still arrive.
pub fn may_send_again(
    sent_at: Option<OffsetDateTime>,
    call_timeout: std::time::Duration,
    now: OffsetDateTime,
) -> Result<(), OffsetDateTime> {
    let Some(at) = sent_at else {
        return Ok(());
    };
    let settled = crate::controller::decide::resubmit_after(at, call_timeout);
    if settled > now { Err(settled) } else { Ok(()) }
}

/// What a failed call to DigiCert makes of the request: `true` for a refusal of the
/// request itself (terminal `Failed`); `false` for what may heal (rate limits,
/// outages, a key without rights): the request stays `Pending` and is tried again.
pub fn refusal_is_final(err: &crate::certcentral::Error) -> bool {
    use crate::certcentral::Error;
    match err {
        Error::Api { status, .. } => !err.is_retryable() && !matches!(*status, 401 | 403 | 404),
        _ => false,
    }
}

/// The wait before a request tries DigiCert again after a passing failure: it grows
/// with the request's age (an eighth of it), between `base` and `cap`, with up to a
/// fifth more so that many requests do not come back at once. Kept nowhere: the age
/// is the request's own.
pub fn retry_after(
    age: time::Duration,
    base: std::time::Duration,
    cap: std::time::Duration,
    jitter: f64,
) -> std::time::Duration {
    let age = std::time::Duration::try_from(age).unwrap_or_default();
    let wait = (age / 8).clamp(base, cap.max(base));
    wait + wait.mul_f64(jitter.clamp(0.0, 1.0) / 5.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certmanager::RequestCondition;
    use time::macros::datetime;

    fn cond(type_: &str, status: &str, reason: &str) -> RequestCondition {
        RequestCondition {
            type_: type_.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: None,
            last_transition_time: None,
        }
    }

    fn status(conditions: &[RequestCondition]) -> CertificateRequestStatus {
        CertificateRequestStatus {
            conditions: conditions.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn only_our_group_and_kinds_are_ours() {
        let r = |group: Option<&str>, kind: Option<&str>| IssuerRef {
            name: "x".into(),
            group: group.map(Into::into),
            kind: kind.map(Into::into),
        };
        let cases = [
            (
                r(Some(GROUP), Some(ISSUER_KIND)),
                Some(IssuerKind::Namespaced),
            ),
            (r(Some(GROUP), None), Some(IssuerKind::Namespaced)),
            (
                r(Some(GROUP), Some(CLUSTER_ISSUER_KIND)),
                Some(IssuerKind::Cluster),
            ),
            (r(Some(GROUP), Some("Issuer")), None),
            (r(Some("cert-manager.io"), Some(ISSUER_KIND)), None),
            (r(None, Some("ClusterIssuer")), None),
            (r(None, None), None),
            (
                r(Some("digicert-operator.dev.evil"), Some(ISSUER_KIND)),
                None,
            ),
        ];
        for (issuer_ref, want) in cases {
            assert_eq!(our_issuer(&issuer_ref), want, "{issuer_ref:?}");
        }
    }

    #[test]
    fn the_gate_follows_cert_managers_contract() {
        let approved = cond("Approved", "True", "cert-manager.io");
        let denied = cond("Denied", "True", "policy");
        let cases = [
            (status(&[]), Gate::AwaitingApproval),
            (status(std::slice::from_ref(&approved)), Gate::Approved),
            (status(std::slice::from_ref(&denied)), Gate::Denied),
            (
                status(&[denied.clone(), cond("Ready", "False", "Denied")]),
                Gate::Done,
            ),
            (
                status(&[approved.clone(), cond("Ready", "False", "Pending")]),
                Gate::Approved,
            ),
            (
                status(&[approved.clone(), cond("Ready", "True", "Issued")]),
                Gate::Done,
            ),
            (
                status(&[approved.clone(), cond("Ready", "False", "Failed")]),
                Gate::Done,
            ),
            (
                status(&[approved.clone(), cond("InvalidRequest", "True", "x")]),
                Gate::Done,
            ),
            (
                status(&[cond("Approved", "False", "x")]),
                Gate::AwaitingApproval,
            ),
        ];
        for (s, want) in cases {
            assert_eq!(gate(&s), want, "{:?}", s.conditions);
        }
    }

    fn csr(key: KeyKind, cn: Option<&str>, sans: &[&str]) -> CsrInfo {
        CsrInfo {
            common_name: cn.map(Into::into),
            dns_names: sans.iter().map(|s| s.to_string()).collect(),
            key,
            public_key_info: vec![],
            signature_valid: true,
            is_ca: false,
            client_auth: false,
        }
    }

    #[test]
    fn a_usable_csr_gives_its_names_common_name_first() {
        let before = datetime!(2027-03-14 23:59 UTC);
        let after = SERVER_AUTH_ONLY_FROM;
        let good = csr(
            KeyKind::Rsa(2048),
            Some("Web.Example.com"),
            &["web.example.com", "api.example.com."],
        );
        assert_eq!(
            usable_csr(&good, &[], false, before).unwrap().names,
            ["web.example.com", "api.example.com"]
        );
        let sans_only = csr(KeyKind::Ecdsa(384), None, &["a.example.com"]);
        assert_eq!(
            usable_csr(&sans_only, &[], false, before).unwrap().names,
            ["a.example.com"]
        );
        let refused = |info: &CsrInfo, usages: &[&str], is_ca: bool, now| {
            let usages: Vec<String> = usages.iter().map(|s| s.to_string()).collect();
            usable_csr(info, &usages, is_ca, now).unwrap_err()
        };
        assert!(refused(&good, &[], true, before).contains("isCA"));
        let ca = CsrInfo {
            is_ca: true,
            ..good.clone()
        };
        assert!(refused(&ca, &[], false, before).contains("isCA"));
        let bad_sig = CsrInfo {
            signature_valid: false,
            ..good.clone()
        };
        assert!(refused(&bad_sig, &[], false, before).contains("signature"));
        for key in [
            KeyKind::Rsa(1024),
            KeyKind::Ecdsa(521),
            KeyKind::Ed25519,
            KeyKind::Other,
        ] {
            let k = CsrInfo {
                key,
                ..good.clone()
            };
            assert!(
                refused(&k, &[], false, before).contains("DigiCert refuses"),
                "{key:?}"
            );
        }
        let nameless = csr(KeyKind::Rsa(2048), None, &[]);
        assert!(refused(&nameless, &[], false, before).contains("names no domain"));
        // Client authentication: allowed before the cut-over, refused from it on,
        // whether the CSR or the request's usages ask for it.
        let client = CsrInfo {
            client_auth: true,
            ..good.clone()
        };
        assert!(usable_csr(&client, &[], false, before).is_ok());
        assert!(refused(&client, &[], false, after).contains("servers only"));
        assert!(refused(&good, &["client auth"], false, after).contains("servers only"));
        assert!(
            usable_csr(
                &good,
                &["server auth".into(), "digital signature".into()],
                false,
                after
            )
            .is_ok()
        );
    }

    #[test]
    fn the_order_comes_from_the_issuer_or_the_annotation() {
        assert_eq!(choose_order(Some(7), None), Ok(7));
        assert_eq!(choose_order(Some(7), Some("7")), Ok(7));
        assert_eq!(choose_order(None, Some(" 8 ")), Ok(8));
        assert!(
            choose_order(Some(7), Some("8"))
                .unwrap_err()
                .contains("order 7 only")
        );
        assert!(
            choose_order(None, None)
                .unwrap_err()
                .contains("names no order")
        );
        assert!(
            choose_order(None, Some(""))
                .unwrap_err()
                .contains("names no order")
        );
        for bad in ["x", "-1", "0", "1.5"] {
            assert!(
                choose_order(None, Some(bad))
                    .unwrap_err()
                    .contains("order id"),
                "{bad}"
            );
        }
    }

    #[test]
    fn duplicates_carry_exactly_the_names_of_the_current_certificate() {
        let current: Vec<String> = ["example.com", "www.example.com"].map(Into::into).to_vec();
        let check = |names: &[&str]| {
            let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
            duplicate_names_allowed(&names, &current)
        };
        assert!(check(&["example.com", "www.example.com"]).is_ok());
        // Any of them may be the common name; case does not matter.
        assert!(check(&["WWW.example.com", "example.com"]).is_ok());
        let err = check(&["example.com"]).unwrap_err();
        assert!(err.contains("missing: www.example.com"), "{err}");
        let err = check(&["example.com", "www.example.com", "api.example.com"]).unwrap_err();
        assert!(err.contains("not on it: api.example.com"), "{err}");
        assert!(!err.contains("missing"), "{err}");
    }

    #[test]
    fn consent_may_come_from_the_issuer_or_either_annotation() {
        let current: Vec<String> = ["a.example.com", "b.example.com"].map(Into::into).to_vec();
        let wanted: Vec<String> = vec!["a.example.com".into()];
        let fp = crate::controller::decide::names_fingerprint(&wanted);
        assert!(matches!(
            consent(Some(&current), &wanted, false, None, None),
            Consent::Required { ref fingerprint, .. } if *fingerprint == fp
        ));
        for (all, req, iss) in [
            (true, None, None),
            (false, Some(fp.as_str()), None),
            (false, None, Some(fp.as_str())),
            (false, Some("stale"), Some(fp.as_str())),
        ] {
            assert!(
                matches!(
                    consent(Some(&current), &wanted, all, req, iss),
                    Consent::Given { .. }
                ),
                "{all} {req:?} {iss:?}"
            );
        }
        assert!(matches!(
            consent(Some(&current), &wanted, false, Some("stale"), None),
            Consent::Required { .. }
        ));
        let more: Vec<String> = [&current[..], &["c.example.com".to_string()]].concat();
        assert_eq!(
            consent(Some(&current), &more, false, None, None),
            Consent::NotNeeded
        );
        assert_eq!(
            consent(None, &wanted, false, None, None),
            Consent::NotNeeded
        );
    }

    #[test]
    fn what_was_recorded_decides_the_next_step() {
        let r = Recorded {
            order_id: 5,
            issuance: Issuance::Reissue,
            csr: "ab".into(),
            sent_at: "2026-12-05T10:00:00Z".into(),
            answered: false,
            certificate_id: None,
            request_id: None,
            challenge: None,
        };
        assert_eq!(Recorded::parse(Some(&r.to_annotation())), Some(r.clone()));
        assert_eq!(Recorded::parse(Some("{not json")), None);
        assert_eq!(r.sent_at(), Some(datetime!(2026-12-05 10:00 UTC)));
        assert_eq!(step(None, "ab", 5, Issuance::Reissue), Step::Send);
        assert_eq!(step(Some(&r), "ab", 5, Issuance::Reissue), Step::Find);
        let answered = Recorded {
            answered: true,
            ..r.clone()
        };
        assert_eq!(
            step(Some(&answered), "ab", 5, Issuance::Reissue),
            Step::Follow
        );
        let found = Recorded {
            certificate_id: Some(9),
            ..r.clone()
        };
        assert_eq!(step(Some(&found), "ab", 5, Issuance::Reissue), Step::Follow);
        for (csr, order, mode) in [
            ("cd", 5, Issuance::Reissue),
            ("ab", 6, Issuance::Reissue),
            ("ab", 5, Issuance::Duplicate),
        ] {
            assert!(
                matches!(step(Some(&r), csr, order, mode), Step::Mismatch(_)),
                "{csr} {order} {mode:?}"
            );
        }
    }

    #[test]
    fn a_lost_send_is_repeated_only_once_it_cannot_arrive_any_more() {
        let sent = datetime!(2026-12-05 10:00 UTC);
        let timeout = std::time::Duration::from_secs(30);
        assert!(may_send_again(Some(sent), timeout, sent + time::Duration::seconds(59)).is_err());
        assert!(may_send_again(Some(sent), timeout, sent + time::Duration::seconds(60)).is_ok());
        assert!(may_send_again(None, timeout, sent).is_ok());
    }

    #[test]
    fn retries_grow_with_the_requests_age_within_bounds() {
        let (base, cap) = (
            std::time::Duration::from_secs(10),
            std::time::Duration::from_secs(600),
        );
        let at = |secs: i64, jitter| {
            retry_after(time::Duration::seconds(secs), base, cap, jitter).as_secs()
        };
        assert_eq!(at(0, 0.0), 10);
        assert_eq!(at(800, 0.0), 100);
        assert_eq!(at(100_000, 0.0), 600);
        assert_eq!(at(100_000, 1.0), 720);
        assert_eq!(at(-5, 0.0), 10);
    }

    #[test]
    fn only_refusals_of_the_request_are_final() {
        use crate::certcentral::{ApiErrorDetail, Error, Operation};
        let api = |status: u16, code: &str| Error::Api {
            operation: Operation::Reissue,
            status,
            errors: vec![ApiErrorDetail {
                code: code.into(),
                message: "m".into(),
            }],
        };
        assert!(refusal_is_final(&api(400, "invalid_dns_name")));
        assert!(refusal_is_final(&api(400, "csr_invalid")));
        for (status, code) in [
            (429, "rate_limit"),
            (503, "x"),
            (401, "access_denied"),
            (403, "x"),
            (404, "not_found"),
        ] {
            assert!(!refusal_is_final(&api(status, code)), "{status}");
        }
    }
}
