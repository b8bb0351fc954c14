//! Benchmark 4: the operator's peak RSS with many orders and their Secrets, plus as
//! many Secrets that are none of its business, in the namespace it watches.

use std::time::{Duration, Instant};

use crate::support::env::OperatorEnv;

use super::{create_all, issue_all, rss_kib, unrelated_secrets};

pub struct Params {
    pub orders: usize,
    pub unrelated_secrets: usize,
}

#[derive(Debug, serde::Serialize)]
pub struct Outcome {
    pub orders: usize,
    pub unrelated_secrets: usize,
    /// Peak RSS of the operator that issued every certificate.
    pub issuing_peak_mib: f64,
    /// Seconds from applying the orders until all were Ready.
    pub issuing_s: f64,
    /// Peak RSS of a restarted operator reading everything back and reconciling
    /// every order once.
    pub restart_peak_mib: f64,
    /// RSS of that operator once idle.
    pub restart_idle_mib: f64,
    pub restart_reconcile_s: f64,
    /// The larger peak (target ≤ 64 MiB).
    pub peak_mib: f64,
}

pub async fn run(p: Params) -> Outcome {
    let seeds = (1..=p.orders as u64)
        .map(crate::support::order)
        .collect::<Vec<_>>();
    let mut env = OperatorEnv::new("bench-memory", seeds).await;
    env.log_level = "info".into();
    env.operator_args = vec!["--no-rate-limit".into()];
    create_all(&env.secrets(), unrelated_secrets(p.unrelated_secrets), 32).await;
    env.start_operator();
    let issuing_s = issue_all(&env, "mem", p.orders).await;
    let pid = env.operator.as_ref().unwrap().pid();
    let (issuing_peak, _) = rss_kib(pid);

    // A restart: everything is there already and every order is reconciled.
    env.start_operator();
    let base = env.http_base();
    let restarted = Instant::now();
    let deadline = restarted + Duration::from_secs(600 + p.orders as u64 / 5);
    loop {
        if reconciles(&base).await >= p.orders as u64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "restart did not reconcile every order"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let restart_reconcile_s = restarted.elapsed().as_secs_f64();
    // Let the last reconciles finish and the allocator settle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pid = env.operator.as_ref().unwrap().pid();
    let (restart_peak, idle) = rss_kib(pid);
    env.stop_operator();
    let mib = |kib: u64| kib as f64 / 1024.0;
    Outcome {
        orders: p.orders,
        unrelated_secrets: p.unrelated_secrets,
        issuing_peak_mib: mib(issuing_peak),
        issuing_s,
        restart_peak_mib: mib(restart_peak),
        restart_idle_mib: mib(idle),
        restart_reconcile_s,
        peak_mib: mib(issuing_peak.max(restart_peak)),
    }
}

/// `digicert_operator_reconciles_total` from the operator's /metrics.
async fn reconciles(base: &str) -> u64 {
    super::metric(base, "digicert_operator_reconciles_total", "").await
}
