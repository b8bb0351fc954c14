//! The operator's decisions, as pure functions of plain data: what the Secret holds,
//! what the spec asks for, what DigiCert said, and the time. Nothing here performs
//! I/O; `reconcile` gathers the inputs and carries out the answers.

mod dcv;
mod duplicate;
pub mod feed;
mod follow;
mod plan;
mod readiness;
mod revocation;
pub mod schedule;
pub mod steps;
mod teardown;
mod trigger;

pub use dcv::*;
pub use duplicate::*;
pub use follow::*;
pub use plan::*;
pub use readiness::*;
pub use revocation::*;
pub use schedule::*;
pub use teardown::*;
pub use trigger::*;

use std::time::Duration;

use time::OffsetDateTime;

use crate::crd::{DigicertOrderSpec, DigicertOrderStatus};
use crate::keys::{CertificateInfo, KeyKind};

/// What the certificate Secret holds, as far as decisions go.
#[derive(Clone, Debug, PartialEq)]
pub enum SecretState {
    Missing,
    /// Present but unusable; the text says why.
    Invalid(String),
    Valid(Box<StoredCertificate>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct StoredCertificate {
    pub leaf: CertificateInfo,
    pub key: KeyKind,
    /// The key in `tls.key` belongs to the certificate in `tls.crt`.
    pub key_matches: bool,
    /// The order the Secret was written for (annotation).
    pub order_id: Option<u64>,
    /// DigiCert's certificate id (annotation).
    pub certificate_id: Option<u64>,
    /// The names the certificate was requested for (annotation; Secrets written by
    /// older versions have none).
    pub requested_names: Option<Vec<String>>,
    /// Why the certificate is not one the operator stored for its order (self-signed,
    /// not signed by the chain's intermediate, another serial than recorded), if so.
    pub foreign: Option<String>,
}

/// Why a new certificate is needed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReissueReason {
    /// No Secret, or one without a certificate.
    Missing,
    /// The Secret cannot be used (does not parse, key and certificate differ).
    Invalid(String),
    /// The names of the certificate differ from the spec.
    NamesChanged,
    /// The key differs from the spec's algorithm or size.
    KeyChanged,
    /// The Secret was written for another order.
    OrderChanged,
    /// The certificate in the Secret is not one the operator stored (edited by hand).
    Foreign(String),
    /// The renewal time has come.
    Renewal,
    /// Asked for with the renew annotation.
    Manual,
    /// DigiCert revoked the certificate in the Secret.
    Revoked,
    /// The order's certificate was reissued (a duplicate follows it).
    OrderReissued,
}

impl ReissueReason {
    /// Whether the certificate in the Secret stays good (Ready) while this reissue
    /// runs: a renewal, asked for or planned, or a follow-up of DigiCert's own
    /// reissue; every other reason means the Secret does not serve the spec.
    pub fn keeps_ready(&self) -> bool {
        matches!(
            self,
            ReissueReason::Renewal | ReissueReason::Manual | ReissueReason::OrderReissued
        )
    }

    /// CamelCase, for conditions and events.
    pub fn as_str(&self) -> &'static str {
        match self {
            ReissueReason::Missing => "Missing",
            ReissueReason::Invalid(_) => "Invalid",
            ReissueReason::NamesChanged => "NamesChanged",
            ReissueReason::KeyChanged => "KeyChanged",
            ReissueReason::OrderChanged => "OrderChanged",
            ReissueReason::Foreign(_) => "ForeignCertificate",
            ReissueReason::Renewal => "Renewal",
            ReissueReason::Manual => "Manual",
            ReissueReason::Revoked => "Revoked",
            ReissueReason::OrderReissued => "OrderReissued",
        }
    }

    pub fn describe(&self) -> String {
        match self {
            ReissueReason::Missing => "the Secret holds no certificate".into(),
            ReissueReason::Invalid(why) => format!("the Secret is not usable: {why}"),
            ReissueReason::NamesChanged => "the certificate's names differ from the spec".into(),
            ReissueReason::KeyChanged => "the key differs from spec.privateKey".into(),
            ReissueReason::OrderChanged => "the Secret was written for another order".into(),
            ReissueReason::Foreign(why) => {
                format!("the certificate in the Secret is not one the operator stored: {why}")
            }
            ReissueReason::Renewal => "the renewal time has come".into(),
            ReissueReason::Manual => "a renewal was requested".into(),
            ReissueReason::Revoked => "DigiCert revoked the certificate in the Secret".into(),
            ReissueReason::OrderReissued => {
                "the order's certificate was reissued; the duplicate follows it".into()
            }
        }
    }
}

/// The names a certificate for `spec` carries: the common name first, then the DNS
/// names, lower-cased, without duplicates.
pub fn wanted_names(spec: &DigicertOrderSpec) -> Vec<String> {
    let mut names = vec![spec.common_name.to_ascii_lowercase()];
    for n in &spec.dns_names {
        let n = n.to_ascii_lowercase();
        if !names.contains(&n) {
            names.push(n);
        }
    }
    names
}

/// Whether a certificate with this common name and these SANs is the one the spec
/// asks for: the common name, every wanted name, and no other names than those
/// DigiCert adds by itself for some products (the `www.` twin of a name, or the base
/// domain of a wildcard).
pub fn names_match(spec: &DigicertOrderSpec, cert: &CertificateInfo) -> bool {
    let cn_ok = cert
        .common_name
        .as_deref()
        .is_some_and(|cn| cn.eq_ignore_ascii_case(&spec.common_name));
    let wanted = wanted_names(spec);
    let have: Vec<String> = cert
        .dns_names
        .iter()
        .map(|n| n.to_ascii_lowercase())
        .collect();
    let added_by_digicert = |n: &str| {
        wanted.iter().any(|w| {
            n.strip_prefix("www.") == Some(w.as_str())
                || w.strip_prefix("www.") == Some(n)
                || w.strip_prefix("*.") == Some(n)
        })
    };
    cn_ok
        && wanted.iter().all(|w| have.contains(w))
        && have
            .iter()
            .all(|n| wanted.contains(n) || added_by_digicert(n))
}

/// Parses a Go-style duration (`720h`, `1h30m`, `90s`, `1.5h`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * seconds;
    }
    Duration::try_from_secs_f64(total).ok()
}

/// When a certificate valid from `not_before` to `not_after` should be renewed:
/// `renewBefore` ahead of expiry, or when `renewBeforePercentage` of the lifetime is
/// left, by default when a third is left. Never before `not_before`.
pub fn renewal_time(
    spec: &DigicertOrderSpec,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> OffsetDateTime {
    let lifetime = not_after - not_before;
    let before = match (&spec.renew_before, spec.renew_before_percentage) {
        (Some(d), _) => parse_duration(d)
            .and_then(|d| time::Duration::try_from(d).ok())
            .unwrap_or(lifetime / 3),
        (None, Some(pct)) => lifetime * (f64::from(pct) / 100.0),
        (None, None) => lifetime / 3,
    };
    // A renewBefore longer than the lifetime would renew at once, forever: cap it at
    // two thirds so a fresh certificate is kept for a while.
    let before = before.min(lifetime * (2.0 / 3.0));
    (not_after - before).max(not_before)
}

/// Spec problems the API server may not have caught (old servers ignore CEL rules).
pub fn validate_spec(spec: &DigicertOrderSpec, status: &DigicertOrderStatus) -> Result<(), String> {
    let kind = spec.private_key.kind();
    if !matches!(
        kind,
        KeyKind::Rsa(2048 | 3072 | 4096) | KeyKind::Ecdsa(256 | 384)
    ) {
        return Err(format!(
            "privateKey {kind} is not supported: use RSA 2048/3072/4096 or ECDSA 256/384"
        ));
    }
    if spec.renew_before.is_some() && spec.renew_before_percentage.is_some() {
        return Err("set renewBefore or renewBeforePercentage, not both".into());
    }
    if let Some(d) = &spec.renew_before
        && parse_duration(d).is_none()
    {
        return Err(format!(
            "renewBefore {d:?} is not a duration such as 720h or 1h30m"
        ));
    }
    for name in wanted_names(spec) {
        if !is_dns_name(&name) {
            return Err(format!("{name:?} is not a DNS name"));
        }
    }
    if let Some(observed) = observed_order_id(status)
        && observed != spec.order_id
    {
        return Err(format!(
            "orderId changed from {observed} to {}; orderId is immutable: create a new DigicertOrder for another order",
            spec.order_id
        ));
    }
    Ok(())
}

/// The order id the current certificate was issued for, if any.
fn observed_order_id(status: &DigicertOrderStatus) -> Option<u64> {
    status.certificate.as_ref().and(status.observed_order_id)
}

fn is_dns_name(name: &str) -> bool {
    let name = name.strip_prefix("*.").unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Whether (and why) the Secret needs a new certificate.
pub fn reissue_reason(
    spec: &DigicertOrderSpec,
    secret: &SecretState,
    renew_request: Option<&str>,
    last_renew_request: Option<&str>,
    order_ends: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Option<ReissueReason> {
    let stored = match secret {
        SecretState::Missing => return Some(ReissueReason::Missing),
        SecretState::Invalid(why) => return Some(ReissueReason::Invalid(why.clone())),
        SecretState::Valid(s) => s,
    };
    if !stored.key_matches {
        return Some(ReissueReason::Invalid(
            "tls.key does not belong to tls.crt".into(),
        ));
    }
    if stored.order_id.is_some_and(|id| id != spec.order_id) {
        return Some(ReissueReason::OrderChanged);
    }
    if let Some(why) = &stored.foreign {
        return Some(ReissueReason::Foreign(why.clone()));
    }
    if !names_current(spec, stored) {
        return Some(ReissueReason::NamesChanged);
    }
    if stored.key != spec.private_key.kind() {
        return Some(ReissueReason::KeyChanged);
    }
    if renew_request.is_some_and(|r| !r.is_empty() && Some(r) != last_renew_request) {
        return Some(ReissueReason::Manual);
    }
    if planned_renewal(spec, &stored.leaf, order_ends).is_some_and(|at| now >= at) {
        return Some(ReissueReason::Renewal);
    }
    None
}

/// Whether the stored certificate is for the spec's names. The names it was requested
/// for decide, when recorded: DigiCert may add the `www.` twin of a name, so the
/// certificate alone cannot tell a name the spec dropped from one DigiCert added.
pub fn names_current(spec: &DigicertOrderSpec, stored: &StoredCertificate) -> bool {
    match &stored.requested_names {
        Some(requested) => {
            same_names(requested, &wanted_names(spec)) && names_match(spec, &stored.leaf)
        }
        None => names_match(spec, &stored.leaf),
    }
}

/// The same names, in any order and case.
fn same_names(a: &[String], b: &[String]) -> bool {
    let norm = |v: &[String]| {
        let mut v: Vec<String> = v.iter().map(|n| n.to_ascii_lowercase()).collect();
        v.sort();
        v.dedup();
        v
    };
    norm(a) == norm(b)
}

/// Whether a reissue can give a certificate that lasts longer than one ending at
/// `not_after`: a certificate never outlives its order, so one that already runs to
/// the order's end cannot be extended (a reissue would only shorten it).
pub fn can_extend(order_ends: Option<OffsetDateTime>, not_after: OffsetDateTime) -> bool {
    order_ends.is_none_or(|end| end > not_after + time::Duration::days(1))
}

/// When the stored certificate will be renewed: its renewal time, or never when the
/// order ends with it.
pub fn planned_renewal(
    spec: &DigicertOrderSpec,
    leaf: &CertificateInfo,
    order_ends: Option<OffsetDateTime>,
) -> Option<OffsetDateTime> {
    can_extend(order_ends, leaf.not_after)
        .then(|| renewal_time(spec, leaf.not_before, leaf.not_after))
}

/// Whether a certificate DigiCert shows (its id and the CSR it was made from) is the
/// answer to the reissue in flight: the one DigiCert named for it, or one made from its
/// CSR. The certificate already in the Secret (`known`) never is, even with the same
/// CSR (a reused RSA key gives the very same CSR).
pub fn is_our_reissue(
    certificate_id: u64,
    csr: Option<&str>,
    reissue: &crate::crd::ReissueStatus,
    known: Option<u64>,
) -> bool {
    reissue.certificate_id == Some(certificate_id)
        || (known != Some(certificate_id)
            && csr
                .and_then(|c| crate::keys::csr_fingerprint(c).ok())
                .is_some_and(|f| f == reissue.csr_fingerprint))
}

/// A fingerprint of everything in the spec that shapes a reissue request: when it
/// changes, a pending reissue is obsolete.
pub fn spec_fingerprint(spec: &DigicertOrderSpec) -> String {
    let mut names = wanted_names(spec);
    names[1..].sort();
    let text = format!(
        "{}|{}|{}|{}|{}",
        spec.order_id,
        names.join(","),
        spec.private_key.kind(),
        spec.signature_hash.as_str(),
        // -1 for none, as before the id became optional: reissues in flight stay current.
        spec.server_platform_id.unwrap_or(-1),
    );
    crate::keys::sha256_hex(text.as_bytes())[..16].to_string()
}

/// Delay before trying again after `failures` failures in a row: exponential from
/// `base`, capped, with ±20 % jitter (`jitter` in 0..1) so many orders failing
/// together do not retry together.
pub fn backoff(failures: u32, base: Duration, cap: Duration, jitter: f64) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    let raw = base.saturating_mul(1u32 << exp).min(cap);
    raw.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn spec(json: serde_json::Value) -> DigicertOrderSpec {
        let mut base = serde_json::json!({
            "orderId": 1001, "commonName": "example.com",
            "dnsNames": ["www.example.com"], "secretName": "tls",
        });
        base.as_object_mut()
            .unwrap()
            .extend(json.as_object().unwrap().clone());
        serde_json::from_value(base).unwrap()
    }

    fn leaf(cn: &str, names: &[&str], nb: OffsetDateTime, na: OffsetDateTime) -> CertificateInfo {
        CertificateInfo {
            common_name: Some(cn.into()),
            dns_names: names.iter().map(|s| s.to_string()).collect(),
            not_before: nb,
            not_after: na,
            serial_number: "01".into(),
            thumbprint: "AA".into(),
            key: KeyKind::Rsa(2048),
            public_key_bits: vec![1, 2, 3],
            public_key_info: vec![],
            self_signed: false,
            subject: format!("CN={cn}"),
            issuer: "CN=CA".into(),
        }
    }

    fn stored(leaf: CertificateInfo) -> SecretState {
        SecretState::Valid(Box::new(StoredCertificate {
            key: leaf.key,
            leaf,
            key_matches: true,
            order_id: Some(1001),
            certificate_id: Some(7),
            requested_names: None,
            foreign: None,
        }))
    }

    #[test]
    fn ready_means_the_secret_serves_the_spec_whatever_digicert_can_do() {
        let nb = datetime!(2026-01-01 0:00 UTC);
        let na = datetime!(2026-04-01 0:00 UTC);
        let good = leaf("example.com", &["example.com", "www.example.com"], nb, na);
        let early = datetime!(2026-02-01 0:00 UTC);
        // Past the renewal time (day 60), before expiry.
        let due = datetime!(2026-03-20 0:00 UTC);
        let after = datetime!(2026-04-02 0:00 UTC);
        let order_ends = Some(datetime!(2028-01-01 0:00 UTC));
        let reissue = spec(serde_json::json!({}));
        let duplicate = spec(serde_json::json!({"issuance": "Duplicate", "dnsNames": []}));
        let other_names = spec(serde_json::json!({"dnsNames": ["api.example.com"]}));
        let ecdsa = spec(serde_json::json!({"privateKey": {"algorithm": "ECDSA", "size": 256}}));
        let mut foreign = stored(good.clone());
        if let SecretState::Valid(s) = &mut foreign {
            s.foreign = Some("self-signed".into());
        }
        let mut other_order = stored(good.clone());
        if let SecretState::Valid(s) = &mut other_order {
            s.order_id = Some(2002);
        }
        let ready = Readiness::Ready { not_after: na };
        let not = |r: &str| r.to_string();
        // (what, spec, Secret, revoked, now, Ready or the reason it is not)
        type Case<'a> = (
            &'a str,
            &'a DigicertOrderSpec,
            SecretState,
            bool,
            OffsetDateTime,
            Result<Readiness, String>,
        );
        let cases: Vec<Case> = vec![
            (
                "valid",
                &reissue,
                stored(good.clone()),
                false,
                early,
                Ok(ready.clone()),
            ),
            (
                "due for renewal is still ready",
                &reissue,
                stored(good.clone()),
                false,
                due,
                Ok(ready.clone()),
            ),
            (
                "expired",
                &reissue,
                stored(good.clone()),
                false,
                after,
                Err(not("Expired")),
            ),
            (
                "revoked",
                &reissue,
                stored(good.clone()),
                true,
                early,
                Err(not("Revoked")),
            ),
            (
                "no Secret",
                &reissue,
                SecretState::Missing,
                false,
                early,
                Err(not("Missing")),
            ),
            (
                "unusable",
                &reissue,
                SecretState::Invalid("garbled".into()),
                false,
                early,
                Err(not("Invalid")),
            ),
            (
                "names changed",
                &other_names,
                stored(good.clone()),
                false,
                early,
                Err(not("NamesChanged")),
            ),
            (
                "key changed",
                &ecdsa,
                stored(good.clone()),
                false,
                early,
                Err(not("KeyChanged")),
            ),
            (
                "hand-made",
                &reissue,
                foreign.clone(),
                false,
                early,
                Err(not("ForeignCertificate")),
            ),
            (
                "another order's",
                &reissue,
                other_order.clone(),
                false,
                early,
                Err(not("OrderChanged")),
            ),
            // A duplicate carries the order's names, not the spec's.
            (
                "duplicate",
                &duplicate,
                stored(good.clone()),
                false,
                early,
                Ok(ready.clone()),
            ),
            (
                "duplicate expired",
                &duplicate,
                stored(good.clone()),
                false,
                after,
                Err(not("Expired")),
            ),
            (
                "duplicate hand-made",
                &duplicate,
                foreign,
                false,
                early,
                Err(not("ForeignCertificate")),
            ),
            (
                "duplicate missing",
                &duplicate,
                SecretState::Missing,
                false,
                early,
                Err(not("Missing")),
            ),
        ];
        for (what, spec, secret, revoked, now, want) in cases {
            let got = certificate_readiness(spec, &secret, revoked, order_ends, now);
            match want {
                Ok(r) => assert_eq!(got, r, "{what}"),
                Err(reason) => assert!(
                    matches!(&got, Readiness::NotReady { reason: r, .. } if *r == reason),
                    "{what}: {got:?}"
                ),
            }
        }
        // Expired with the order: nothing can replace it.
        let got = certificate_readiness(&reissue, &stored(good), false, Some(na), after);
        assert!(
            matches!(&got, Readiness::NotReady { reason, .. } if reason == "OrderExpired"),
            "{got:?}"
        );
    }

    #[test]
    fn reissue_reasons() {
        let nb = datetime!(2026-01-01 0:00 UTC);
        let na = datetime!(2026-04-01 0:00 UTC); // 90 days: renewal at day 60
        let good = leaf("example.com", &["example.com", "www.example.com"], nb, na);
        let early = datetime!(2026-02-01 0:00 UTC);
        let late = datetime!(2026-03-05 0:00 UTC);
        let base = spec(serde_json::json!({}));
        let valid = |f: &dyn Fn(&mut StoredCertificate)| match stored(good.clone()) {
            SecretState::Valid(mut s) => {
                f(&mut s);
                SecretState::Valid(s)
            }
            _ => unreachable!(),
        };
        let mismatched = valid(&|s| s.key_matches = false);
        let other_order = valid(&|s| s.order_id = Some(9));
        // (spec, secret, renew annotation, last acted-on annotation, now, reason)
        type Case<'a> = (
            DigicertOrderSpec,
            SecretState,
            Option<&'a str>,
            Option<&'a str>,
            OffsetDateTime,
            Option<ReissueReason>,
        );
        let cases: Vec<Case> = vec![
            (
                base.clone(),
                SecretState::Missing,
                None,
                None,
                early,
                Some(ReissueReason::Missing),
            ),
            (
                base.clone(),
                SecretState::Invalid("bad".into()),
                None,
                None,
                early,
                Some(ReissueReason::Invalid("bad".into())),
            ),
            (base.clone(), stored(good.clone()), None, None, early, None),
            (
                base.clone(),
                mismatched,
                None,
                None,
                early,
                Some(ReissueReason::Invalid(
                    "tls.key does not belong to tls.crt".into(),
                )),
            ),
            (
                base.clone(),
                other_order,
                None,
                None,
                early,
                Some(ReissueReason::OrderChanged),
            ),
            (
                spec(serde_json::json!({"dnsNames": ["www.example.com", "api.example.com"]})),
                stored(good.clone()),
                None,
                None,
                early,
                Some(ReissueReason::NamesChanged),
            ),
            (
                spec(
                    serde_json::json!({"commonName": "www.example.com", "dnsNames": ["example.com"]}),
                ),
                stored(good.clone()),
                None,
                None,
                early,
                Some(ReissueReason::NamesChanged),
            ),
            (
                spec(serde_json::json!({"dnsNames": ["WWW.example.com"]})),
                stored(good.clone()),
                None,
                None,
                early,
                None,
            ),
            (
                spec(serde_json::json!({"privateKey": {"algorithm": "ECDSA"}})),
                stored(good.clone()),
                None,
                None,
                early,
                Some(ReissueReason::KeyChanged),
            ),
            (
                spec(serde_json::json!({"privateKey": {"size": 4096}})),
                stored(good.clone()),
                None,
                None,
                early,
                Some(ReissueReason::KeyChanged),
            ),
            (
                base.clone(),
                stored(good.clone()),
                None,
                None,
                late,
                Some(ReissueReason::Renewal),
            ),
            (
                base.clone(),
                stored(good.clone()),
                Some("now"),
                None,
                early,
                Some(ReissueReason::Manual),
            ),
            (
                base.clone(),
                stored(good.clone()),
                Some("now"),
                Some("now"),
                early,
                None,
            ),
            (
                base.clone(),
                stored(good.clone()),
                Some(""),
                None,
                early,
                None,
            ),
            (
                spec(serde_json::json!({"renewBefore": "10d"})),
                stored(good.clone()),
                None,
                None,
                late,
                Some(ReissueReason::Renewal),
            ),
            (
                spec(serde_json::json!({"renewBefore": "240h"})),
                stored(good.clone()),
                None,
                None,
                late,
                None,
            ),
        ];
        for (i, (spec, secret, req, last, now, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                reissue_reason(&spec, &secret, req, last, None, now),
                want,
                "case {i}"
            );
        }
        // The order ends with the certificate: no renewal (it could not extend it),
        // but a requested one still happens.
        let ends = Some(na);
        assert_eq!(
            reissue_reason(&base, &stored(good.clone()), None, None, ends, late),
            None
        );
        assert_eq!(
            reissue_reason(&base, &stored(good.clone()), Some("x"), None, ends, late),
            Some(ReissueReason::Manual)
        );
        let later_end = Some(na + time::Duration::days(300));
        assert_eq!(
            reissue_reason(&base, &stored(good.clone()), None, None, later_end, late),
            Some(ReissueReason::Renewal)
        );
        // Names DigiCert adds by itself are fine; any other extra name is not.
        let with_www = leaf(
            "example.com",
            &["example.com", "www.example.com", "www.www.example.com"],
            nb,
            na,
        );
        assert!(names_match(&base, &with_www));
        let wildcard = spec(serde_json::json!({"commonName": "*.example.com", "dnsNames": []}));
        assert!(names_match(
            &wildcard,
            &leaf("*.example.com", &["*.example.com", "example.com"], nb, na)
        ));
        assert!(!names_match(
            &base,
            &leaf(
                "example.com",
                &["example.com", "www.example.com", "other.example.com"],
                nb,
                na
            )
        ));
        assert!(!names_match(
            &base,
            &leaf("example.com", &["example.com"], nb, na)
        ));
    }

    #[test]
    fn renewal_times() {
        let nb = datetime!(2026-01-01 0:00 UTC);
        let na = datetime!(2026-04-01 0:00 UTC); // 90 days
        let cases = [
            (serde_json::json!({}), datetime!(2026-03-02 0:00 UTC)),
            (
                serde_json::json!({"renewBeforePercentage": 10}),
                datetime!(2026-03-23 0:00 UTC),
            ),
            (
                serde_json::json!({"renewBefore": "720h"}),
                datetime!(2026-03-02 0:00 UTC),
            ),
            (
                serde_json::json!({"renewBefore": "24h"}),
                datetime!(2026-03-31 0:00 UTC),
            ),
            // Longer than the lifetime: capped at two thirds of it.
            (
                serde_json::json!({"renewBefore": "8760h"}),
                datetime!(2026-01-31 0:00 UTC),
            ),
        ];
        for (json, want) in cases {
            assert_eq!(renewal_time(&spec(json.clone()), nb, na), want, "{json}");
        }
    }

    #[test]
    fn durations() {
        let cases = [
            ("720h", Some(Duration::from_secs(720 * 3600))),
            ("1h30m", Some(Duration::from_secs(5400))),
            ("1.5h", Some(Duration::from_secs(5400))),
            ("90s", Some(Duration::from_secs(90))),
            ("250ms", Some(Duration::from_millis(250))),
            ("10d", None),
            ("", None),
            ("h", None),
            ("5", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), want, "{text}");
        }
    }

    #[test]
    fn spec_validation() {
        let ok = DigicertOrderStatus::default();
        let cases = [
            (serde_json::json!({}), true),
            (
                serde_json::json!({"privateKey": {"algorithm": "RSA", "size": 1024}}),
                false,
            ),
            (
                serde_json::json!({"privateKey": {"algorithm": "ECDSA", "size": 521}}),
                false,
            ),
            (
                serde_json::json!({"renewBefore": "720h", "renewBeforePercentage": 20}),
                false,
            ),
            (serde_json::json!({"renewBefore": "a month"}), false),
            (
                serde_json::json!({"dnsNames": ["under_score.example.com"]}),
                false,
            ),
            (serde_json::json!({"dnsNames": ["*.example.com"]}), true),
        ];
        for (json, valid) in cases {
            assert_eq!(
                validate_spec(&spec(json.clone()), &ok).is_ok(),
                valid,
                "{json}"
            );
        }
        let issued_for_other = DigicertOrderStatus {
            certificate: Some(crate::crd::CertificateStatus {
                id: 1,
                serial_number: "01".into(),
                thumbprint: "AA".into(),
                not_before: crate::controller::status::time(time::OffsetDateTime::UNIX_EPOCH),
                not_after: crate::controller::status::time(time::OffsetDateTime::UNIX_EPOCH),
                dns_names: Vec::new(),
            }),
            observed_order_id: Some(77),
            ..Default::default()
        };
        let err = validate_spec(&spec(serde_json::json!({})), &issued_for_other).unwrap_err();
        assert!(err.contains("immutable"), "{err}");
    }

    #[test]
    fn spec_fingerprint_follows_what_shapes_the_request() {
        let base = spec_fingerprint(&spec(serde_json::json!({})));
        let same = [
            serde_json::json!({"dnsNames": ["WWW.example.com"]}),
            serde_json::json!({"comments": "hello"}),
            serde_json::json!({"renewBefore": "24h"}),
            serde_json::json!({"autoReissue": true}),
        ];
        for json in same {
            assert_eq!(spec_fingerprint(&spec(json.clone())), base, "{json}");
        }
        let different = [
            serde_json::json!({"dnsNames": ["api.example.com"]}),
            serde_json::json!({"orderId": 2}),
            serde_json::json!({"privateKey": {"algorithm": "ECDSA"}}),
            serde_json::json!({"signatureHash": "sha384"}),
        ];
        for json in different {
            assert_ne!(spec_fingerprint(&spec(json.clone())), base, "{json}");
        }
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let base = Duration::from_secs(5);
        let cap = Duration::from_secs(300);
        assert_eq!(backoff(1, base, cap, 0.5), Duration::from_secs(5));
        assert_eq!(backoff(2, base, cap, 0.5), Duration::from_secs(10));
        assert_eq!(backoff(4, base, cap, 0.5), Duration::from_secs(40));
        assert_eq!(backoff(30, base, cap, 0.5), cap);
        assert_eq!(backoff(1, base, cap, 0.0), Duration::from_secs(4));
        assert_eq!(backoff(1, base, cap, 1.0), Duration::from_secs(6));
    }

    #[test]
    fn names_dropped_from_the_spec_are_told_from_names_digicert_added() {
        let nb = datetime!(2026-01-01 0:00 UTC);
        let na = datetime!(2026-04-01 0:00 UTC);
        let now = datetime!(2026-01-02 0:00 UTC);
        let names = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let with = |requested: Option<Vec<String>>, cert: &[&str]| {
            SecretState::Valid(Box::new(StoredCertificate {
                leaf: leaf("example.com", cert, nb, na),
                key: KeyKind::Rsa(2048),
                key_matches: true,
                order_id: Some(1001),
                certificate_id: Some(7),
                requested_names: requested,
                foreign: None,
            }))
        };
        let only_cn = spec(serde_json::json!({"dnsNames": []}));
        let two = spec(serde_json::json!({"dnsNames": ["www.example.com"]}));
        let twin = &["example.com", "www.example.com"];
        // (spec, stored, want a reissue)
        let cases = [
            // The www twin dropped from the spec: recorded names tell, one reissue.
            (&only_cn, with(names(twin), twin), true),
            // ...for which DigiCert added the twin again: accepted, no second reissue.
            (&only_cn, with(names(&["example.com"]), twin), false),
            // Without a record (older Secrets) the twin is tolerated, as before.
            (&only_cn, with(None, twin), false),
            (&two, with(names(twin), twin), false),
            // A name added to the spec.
            (&two, with(names(&["example.com"]), &["example.com"]), true),
            // Recorded names in another order and case are the same names.
            (
                &two,
                with(names(&["WWW.example.com", "example.com"]), twin),
                false,
            ),
        ];
        for (i, (spec, stored, reissue)) in cases.into_iter().enumerate() {
            let got = reissue_reason(spec, &stored, None, None, None, now);
            assert_eq!(got.is_some(), reissue, "case {i}: {got:?}");
            if reissue {
                assert_eq!(got, Some(ReissueReason::NamesChanged), "case {i}");
            }
        }
        // A foreign certificate (edited by hand) is replaced.
        let foreign = SecretState::Valid(Box::new(StoredCertificate {
            foreign: Some("it is self-signed".into()),
            ..match with(names(twin), twin) {
                SecretState::Valid(s) => *s,
                _ => unreachable!(),
            }
        }));
        assert_eq!(
            reissue_reason(&two, &foreign, None, None, None, now),
            Some(ReissueReason::Foreign("it is self-signed".into()))
        );
    }

    #[test]
    fn no_renewal_is_planned_when_the_order_ends_with_the_certificate() {
        let nb = datetime!(2026-01-01 0:00 UTC);
        let na = datetime!(2026-04-01 0:00 UTC);
        let cert = leaf("example.com", &["example.com", "www.example.com"], nb, na);
        let base = spec(serde_json::json!({}));
        let renewal = renewal_time(&base, nb, na);
        assert_eq!(planned_renewal(&base, &cert, None), Some(renewal));
        assert_eq!(
            planned_renewal(&base, &cert, Some(na + time::Duration::days(400))),
            Some(renewal)
        );
        assert_eq!(planned_renewal(&base, &cert, Some(na)), None);
        assert_eq!(
            planned_renewal(&base, &cert, Some(na + time::Duration::hours(12))),
            None
        );
    }

    #[test]
    fn a_reissue_is_known_by_its_certificate_id_or_its_csr_never_as_the_stored_one() {
        let (_, csr) = {
            let key = crate::keys::generate(KeyKind::Ecdsa(256)).unwrap();
            let csr = crate::keys::csr_pem(&key, "example.com", &[]).unwrap();
            (key, csr)
        };
        let (_, other) = {
            let key = crate::keys::generate(KeyKind::Ecdsa(256)).unwrap();
            let csr = crate::keys::csr_pem(&key, "example.com", &[]).unwrap();
            (key, csr)
        };
        let reissue = |certificate_id: Option<u64>| crate::crd::ReissueStatus {
            state: crate::crd::ReissueState::Submitted,
            reason: "Renewal".into(),
            csr_fingerprint: crate::keys::csr_fingerprint(&csr).unwrap(),
            spec_fingerprint: String::new(),
            key_secret_name: String::new(),
            request_id: None,
            certificate_id,
            submitted_at: None,
            duplicate: false,
            names: Vec::new(),
            duplicate_of: None,
            csr: None,
        };
        // (id, csr, reissue's certificate id, known, ours)
        let cases = [
            (5, Some(csr.as_str()), None, Some(4), true),
            (5, Some(other.as_str()), None, Some(4), false),
            (5, None, None, Some(4), false),
            (5, None, Some(5), Some(4), true),
            (5, Some(other.as_str()), Some(5), None, true),
            // The stored certificate, made from the same CSR (key reused): not the answer.
            (4, Some(csr.as_str()), None, Some(4), false),
            (4, Some(csr.as_str()), Some(5), Some(4), false),
        ];
        for (i, (id, csr, named, known, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                is_our_reissue(id, csr, &reissue(named), known),
                want,
                "case {i}"
            );
        }
    }
}
