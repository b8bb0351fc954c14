//! Benchmark 10: what cert-manager requests cost through the external issuer, with
//! the test in cert-manager's part (`support::certmanager`):
//!
//! - duplicates: `requests` Certificates through a DigicertClusterIssuer that takes
//!   duplicates of one order, all approved at once: DigiCert calls per request and
//!   the time from approval to `Issued`;
//! - reissues: `renewals` requests one after another of one Certificate through a
//!   DigicertIssuer that reissues another order: calls per request and latency;
//! - finished: calls for the finished requests over `idle` (none expected).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::certmanager::{Cm, ready};

use super::{calls_by_operation, median};

pub struct Params {
    pub requests: usize,
    pub renewals: usize,
    pub idle: Duration,
}

#[derive(Debug, serde::Serialize)]
pub struct Outcome {
    pub requests: usize,
    pub duplicate_calls_per_request: f64,
    pub duplicate_calls_by_operation: BTreeMap<String, u64>,
    /// Approval of all requests at once → the last one `Issued`.
    pub duplicates_all_issued_ms: f64,
    pub renewals: usize,
    pub reissue_calls_per_request: f64,
    pub reissue_calls_by_operation: BTreeMap<String, u64>,
    /// Approval → `Issued`, median over the renewals.
    pub reissue_approved_to_issued_ms: f64,
    pub idle_calls: u64,
}

const NAMES: &[&str] = &["example.com", "www.example.com"];

async fn wait_issued(env: &Cm, ns: &str, names: &[String], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let mut issued = 0;
        for name in names {
            if ready(&env.request(ns, name).await).is_some_and(|(_, reason, _)| reason == "Issued")
            {
                issued += 1;
            }
        }
        if issued == names.len() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{issued} of {} requests issued\n{}",
            names.len(),
            env.operator_logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn run(p: Params) -> Outcome {
    let mut env = Cm::new(
        "bench-issuer",
        vec![crate::support::order(1), crate::support::order(2)],
    )
    .await;
    env.log_level = "info".into();
    env.start_operator();
    let ns = env.ns();
    let account = env.account_name();
    let cluster_issuer = format!("{ns}-duplicates");
    env.cluster_issuer(
        &cluster_issuer,
        json!({"accountRef": {"name": account}, "orderId": 1, "issuance": "Duplicate"}),
    );
    env.issuer(
        &ns,
        "reissue",
        json!({"accountRef": {"name": account}, "orderId": 2}),
    );
    env.issuer_ready("digicertclusterissuer", None, &cluster_issuer, "True")
        .await;
    env.issuer_ready("digicertissuer", Some(&ns), "reissue", "True")
        .await;

    // Duplicates: every request made, then all approved at once.
    let mut names = Vec::new();
    for i in 0..p.requests {
        let (name, _) = env
            .certificate_request(
                &ns,
                &format!("dup-{i:04}"),
                1,
                ("DigicertClusterIssuer", &cluster_issuer),
                NAMES,
                json!({}),
            )
            .await;
        names.push(name);
    }
    env.sim.simulator().reset_calls();
    let approved = Instant::now();
    for name in &names {
        env.decide(&ns, name, "Approved").await;
    }
    wait_issued(
        &env,
        &ns,
        &names,
        Duration::from_secs(120 + p.requests as u64),
    )
    .await;
    let duplicates_all_issued_ms = approved.elapsed().as_secs_f64() * 1000.0;
    let dup = env.sim.simulator().calls();

    // Reissues: one Certificate renewed, one request at a time.
    env.sim.simulator().reset_calls();
    let mut latencies = Vec::new();
    for revision in 1..=p.renewals {
        let (name, _) = env
            .certificate_request(
                &ns,
                "web",
                revision as u32,
                ("DigicertIssuer", "reissue"),
                NAMES,
                json!({}),
            )
            .await;
        let approved = Instant::now();
        env.decide(&ns, &name, "Approved").await;
        wait_issued(
            &env,
            &ns,
            std::slice::from_ref(&name),
            Duration::from_secs(60),
        )
        .await;
        latencies.push(approved.elapsed().as_secs_f64() * 1000.0);
    }
    let reissue = env.sim.simulator().calls();

    // Finished requests cost nothing.
    env.sim.simulator().reset_calls();
    tokio::time::sleep(p.idle).await;
    let idle_calls = env.sim.simulator().calls().sum();
    env.cluster.kubectl_run(
        &[
            "delete",
            "digicertclusterissuer",
            &cluster_issuer,
            "--wait=false",
        ],
        None,
    );
    env.stop_operator();
    Outcome {
        requests: p.requests,
        duplicate_calls_per_request: dup.sum() as f64 / p.requests as f64,
        duplicate_calls_by_operation: calls_by_operation(&dup),
        duplicates_all_issued_ms,
        renewals: p.renewals,
        reissue_calls_per_request: reissue.sum() as f64 / p.renewals as f64,
        reissue_calls_by_operation: calls_by_operation(&reissue),
        reissue_approved_to_issued_ms: median(&latencies),
        idle_calls,
    }
}
