//! Domain validation set-ups shared by the end-to-end tests and the benchmarks: the
//! simulator in 2029 (a 10-day reuse period), domains validated some days ago, a
//! Knot server's TSIG key in a Secret, and an account whose settings solve DCV.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, Patch, PatchParams};
use serde_json::json;
use time::OffsetDateTime;
use time::macros::datetime;

use certcentral_sim::{DomainSeed, ReuseStep};

use super::dns::AuthoritativeDns;
use super::env::{API_KEY_SECRET, OperatorEnv};

/// The simulator's clock: in 2029 DigiCert reuses a validation for 10 days.
pub const NOW: OffsetDateTime = datetime!(2029-06-01 12:00 UTC);
pub const TSIG_SECRET: &str = "dcv-tsig";

/// A domain of the account, validated `days_ago` before [`NOW`] with `method`.
pub fn domain(name: &str, method: &str, days_ago: i64) -> DomainSeed {
    domain_at(name, method, NOW - time::Duration::days(days_ago))
}

/// A domain of the account, validated at `at` with `method`.
pub fn domain_at(name: &str, method: &str, at: OffsetDateTime) -> DomainSeed {
    serde_json::from_value(json!({
        "name": name,
        "dcv_method": method,
        "validated_at": at.format(&time::format_description::well_known::Rfc3339).unwrap(),
    }))
    .expect("a domain seed")
}

/// DigiCert's 2029 reuse period (10 days) from today on: for what depends on the
/// operator's clock agreeing with DigiCert's (the plan ahead of a renewal), the
/// simulator runs on real time with this schedule instead of a clock set to 2029.
pub fn ten_day_reuse_today() -> Vec<ReuseStep> {
    vec![ReuseStep {
        from: time::macros::date!(2020 - 01 - 01),
        days: 10,
    }]
}

/// The test's account (`OperatorEnv::account_name`) with `domain_validation`.
pub async fn account_with(env: &OperatorEnv, domain_validation: serde_json::Value) {
    let selector = json!({"matchLabels": {"kubernetes.io/metadata.name": env.cluster.namespace}});
    env.put_account(
        &env.account_name(),
        &env.sim.base_url(),
        Some(env.sim.ca_pem()),
        API_KEY_SECRET,
        json!({"namespaceSelector": selector, "domainValidation": domain_validation}),
    )
    .await;
}

/// The TSIG secret of `dns` in the Secret [`TSIG_SECRET`] of the test namespace (the
/// operator's).
pub async fn put_tsig(env: &OperatorEnv, dns: &AuthoritativeDns) {
    let (_, _, secret) = dns.tsig();
    let api: Api<Secret> = env.cluster.api();
    let object = Secret {
        metadata: ObjectMeta {
            name: Some(TSIG_SECRET.into()),
            ..Default::default()
        },
        string_data: Some([("secret".to_string(), secret)].into()),
        ..Default::default()
    };
    api.patch(
        TSIG_SECRET,
        &PatchParams::apply("e2e").force(),
        &Patch::Apply(&object),
    )
    .await
    .expect("the TSIG Secret");
}

/// `domainValidation` with dns-txt-token through RFC 2136 updates to `dns`.
pub fn rfc2136_settings(dns: &AuthoritativeDns, zone: Option<&str>) -> serde_json::Value {
    let (name, algorithm, _) = dns.tsig();
    let mut rfc = json!({
        "nameserver": dns.addr().to_string(),
        "tsigKeyName": name,
        "tsigAlgorithm": algorithm,
        "tsigSecretRef": {"name": TSIG_SECRET},
    });
    if let Some(zone) = zone {
        rfc["zone"] = zone.into();
    }
    json!({"method": "dns-txt-token", "dns": {"rfc2136": rfc}})
}
