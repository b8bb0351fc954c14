//! Benchmark 8: what a domain validation (DCV) round adds per certificate, in DigiCert
//! calls and seconds. With DigiCert's 2029 reuse period (10 days; the simulator on
//! real time, so that the operator's plan and DigiCert's clock agree) and RFC 2136
//! updates to a Knot server that the simulator checks:
//!
//! - baseline: orders whose domains are validated (issued at once);
//! - lapsed: orders whose domains' validation lapsed (the reissue waits; the operator
//!   validates with the order's value and check-dcv);
//! - ahead: orders whose validation lapses before the next renewal (the operator
//!   validates each domain again with its own value, before any reissue).
//!
//! Each order has a domain of its own, so that no validation serves another order.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use certcentral_sim::{DomainSeed, OrderSeed};
use digicert_operator::certcentral::Operation;
use digicert_operator::crd::DigicertOrder;
use kube::api::PostParams;
use serde_json::json;

use crate::support::dcv;
use crate::support::dns::AuthoritativeDns;
use crate::support::env::{OperatorEnv, condition};
use time::OffsetDateTime;

use super::{ReadyWatch, calls_by_operation, median};

pub struct Params {
    /// Orders per phase.
    pub orders: usize,
}

#[derive(Debug, serde::Serialize)]
pub struct Outcome {
    pub orders: usize,
    pub baseline_calls_per_certificate: f64,
    pub baseline_ready_ms: f64,
    pub lapsed_calls_per_certificate: f64,
    pub lapsed_ready_ms: f64,
    pub lapsed_calls_by_operation: BTreeMap<String, u64>,
    pub added_calls_per_certificate: f64,
    pub added_ms: f64,
    pub ahead_calls_per_order: f64,
    pub ahead_ms: f64,
    pub ahead_calls_by_operation: BTreeMap<String, u64>,
}

#[derive(Clone, Copy)]
enum Phase {
    Baseline,
    Lapsed,
    Ahead,
}

impl Phase {
    fn prefix(self) -> &'static str {
        match self {
            Phase::Baseline => "b",
            Phase::Lapsed => "l",
            Phase::Ahead => "a",
        }
    }

    /// Days since the domains were validated.
    fn validated_days_ago(self) -> i64 {
        match self {
            Phase::Baseline => 1,
            Phase::Lapsed => 11,
            Phase::Ahead => 9,
        }
    }

    fn first_order(self, orders: usize) -> u64 {
        1 + orders as u64
            * match self {
                Phase::Baseline => 0,
                Phase::Lapsed => 1,
                Phase::Ahead => 2,
            }
    }

    fn domain(self, i: usize) -> String {
        format!("{}{i}.example.com", self.prefix())
    }
}

fn seeds(phase: Phase, orders: usize, today: OffsetDateTime) -> (Vec<OrderSeed>, Vec<DomainSeed>) {
    (0..orders)
        .map(|i| {
            let domain = phase.domain(i);
            let mut seed: OrderSeed = serde_json::from_value(json!({
                "id": phase.first_order(orders) + i as u64,
                "common_name": domain,
                "dns_names": [format!("www.{domain}")],
                "order_valid_till": "2031-06-01",
            }))
            .expect("an order seed");
            if let Phase::Ahead = phase {
                // Three-day certificates: the renewal comes after the validation lapses.
                seed.certificate_validity_seconds = Some(3 * 86400);
            }
            let at = today - time::Duration::days(phase.validated_days_ago());
            let validated = dcv::domain_at(&domain, "dns-txt-token", at);
            (seed, validated)
        })
        .unzip()
}

fn order(phase: Phase, orders: usize, i: usize) -> DigicertOrder {
    let domain = phase.domain(i);
    serde_json::from_value(json!({
        "apiVersion": "digicert-operator.dev/v1alpha1",
        "kind": "DigicertOrder",
        "metadata": {"name": format!("{}-{i:03}", phase.prefix())},
        "spec": {
            "orderId": phase.first_order(orders) + i as u64,
            "commonName": domain,
            "dnsNames": [format!("www.{domain}")],
            "secretName": format!("{}-{i:03}-tls", phase.prefix()),
            "privateKey": {"algorithm": "ECDSA", "size": 256},
        }
    }))
    .expect("a DigicertOrder")
}

pub async fn run(p: Params) -> Outcome {
    let dns = AuthoritativeDns::start_default().await;
    let today = OffsetDateTime::now_utc();
    let mut all_orders = Vec::new();
    let mut all_domains = Vec::new();
    for phase in [Phase::Baseline, Phase::Lapsed, Phase::Ahead] {
        let (o, d) = seeds(phase, p.orders, today);
        all_orders.extend(o);
        all_domains.extend(d);
    }
    let mut config = OperatorEnv::simulator_config(all_orders);
    config.reuse_schedule = dcv::ten_day_reuse_today();
    config.seed.domains = all_domains;
    config.dcv.dns_server = Some(dns.addr());
    let mut env = OperatorEnv::with_simulator("bench-dcv", config).await;
    env.log_level = "info".into();
    dcv::put_tsig(&env, &dns).await;
    dcv::account_with(&env, dcv::rfc2136_settings(&dns, None)).await;
    env.start_operator();

    let (baseline_calls, baseline_ms, _) = issue(&env, Phase::Baseline, p.orders).await;
    let (lapsed_calls, lapsed_ms, lapsed) = issue(&env, Phase::Lapsed, p.orders).await;
    let (ahead_calls, ahead_ms, ahead) = ahead(&env, p.orders, today).await;
    env.stop_operator();
    let per = |calls: u64| calls as f64 / p.orders as f64;
    Outcome {
        orders: p.orders,
        baseline_calls_per_certificate: per(baseline_calls),
        baseline_ready_ms: baseline_ms,
        lapsed_calls_per_certificate: per(lapsed_calls),
        lapsed_ready_ms: lapsed_ms,
        lapsed_calls_by_operation: lapsed,
        added_calls_per_certificate: per(lapsed_calls) - per(baseline_calls),
        added_ms: lapsed_ms - baseline_ms,
        ahead_calls_per_order: per(ahead_calls),
        ahead_ms,
        ahead_calls_by_operation: ahead,
    }
}

/// Applies the phase's orders one at a time and waits for each to be Ready: the
/// DigiCert calls in all, the median apply → Ready (ms), the calls by operation.
async fn issue(
    env: &OperatorEnv,
    phase: Phase,
    orders: usize,
) -> (u64, f64, BTreeMap<String, u64>) {
    let sim = env.sim.simulator();
    sim.reset_calls();
    let watch = ReadyWatch::start(env.orders());
    let mut took = Vec::new();
    for i in 0..orders {
        let o = order(phase, orders, i);
        let name = kube::ResourceExt::name_any(&o);
        let started = Instant::now();
        env.orders()
            .create(&PostParams::default(), &o)
            .await
            .unwrap();
        let deadline = started + Duration::from_secs(60);
        let ready = loop {
            if let Some(at) = watch.ready_at(&name) {
                break at;
            }
            assert!(
                Instant::now() < deadline,
                "{name} not Ready\n{}",
                env.operator_logs()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        took.push((ready - started).as_secs_f64() * 1000.0);
    }
    // What follows Ready (taking the record down) makes no DigiCert call; the first
    // look at the validations after a new certificate does, and belongs here.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let calls = sim.calls();
    (calls.sum(), median(&took), calls_by_operation(&calls))
}

/// Applies the phase's orders, waits for each to be Ready, then measures the rounds
/// that validate the lapsing domains again: calls, and the median time from Ready
/// to the domain validated anew.
async fn ahead(
    env: &OperatorEnv,
    orders: usize,
    today: OffsetDateTime,
) -> (u64, f64, BTreeMap<String, u64>) {
    let sim = env.sim.simulator();
    let watch = ReadyWatch::start(env.orders());
    let mut took = Vec::new();
    let mut dcv_calls = 0;
    for i in 0..orders {
        let o = order(Phase::Ahead, orders, i);
        let name = kube::ResourceExt::name_any(&o);
        let before = dcv_round_calls(&sim.calls());
        env.orders()
            .create(&PostParams::default(), &o)
            .await
            .unwrap();
        let renewed = |o: &DigicertOrder| {
            condition(o, "DomainValidation").is_some_and(|c| c.status == "True")
                && o.status
                    .as_ref()
                    .and_then(|s| s.domain_validation.as_ref())
                    .is_some_and(|d| {
                        d.domains.iter().all(|d| {
                            d.expires.as_ref().is_some_and(|e| {
                                digicert_operator::controller::status::offset(e)
                                    > today + time::Duration::days(9)
                            })
                        })
                    })
        };
        env.wait_for(
            &name,
            "the validation renewed",
            Duration::from_secs(60),
            renewed,
        )
        .await;
        let done = Instant::now();
        let ready = watch.ready_at(&name).unwrap_or(done);
        took.push((done - ready).as_secs_f64() * 1000.0);
        dcv_calls += dcv_round_calls(&sim.calls()) - before;
    }
    let calls = sim.calls();
    let mut by_operation = calls_by_operation(&calls);
    by_operation.retain(|op, _| DCV_OPERATIONS.iter().any(|d| d.as_str() == op));
    (dcv_calls, median(&took), by_operation)
}

const DCV_OPERATIONS: [Operation; 4] = [
    Operation::OrderValidation,
    Operation::SubmitDomainValidation,
    Operation::DomainToken,
    Operation::CheckDomainDcv,
];

fn dcv_round_calls(calls: &certcentral_sim::CallCounts) -> u64 {
    DCV_OPERATIONS.iter().map(|op| calls.total(*op)).sum()
}
