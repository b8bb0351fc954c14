//! Benchmark 1: DigiCert calls per issued certificate, and per order per resync
//! period once issued, counted at the simulator.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::env::OperatorEnv;

use super::{ReadyWatch, calls_by_operation, create_all, mixed_orders};

pub struct Params {
    pub orders: usize,
    /// The operator's --resync for the steady-state phase.
    pub resync: Duration,
    /// Resync periods to count over.
    pub periods: u32,
}

#[derive(Debug, serde::Serialize)]
pub struct Outcome {
    pub orders: usize,
    pub issue_calls: u64,
    pub calls_per_certificate: f64,
    pub issue_calls_by_operation: BTreeMap<String, u64>,
    pub steady_calls: u64,
    pub steady_periods: u32,
    pub calls_per_order_per_resync: f64,
    pub steady_calls_by_operation: BTreeMap<String, u64>,
}

pub async fn run(p: Params) -> Outcome {
    let seeds = (1..=p.orders as u64)
        .map(crate::support::order)
        .collect::<Vec<_>>();
    let mut env = OperatorEnv::new("bench-calls", seeds).await;
    env.log_level = "info".into();
    env.start_operator();
    let watch = ReadyWatch::start(env.orders());
    let names: Vec<String> = (0..p.orders).map(|i| format!("calls-{i:04}")).collect();
    let objects = mixed_orders(&names);
    create_all(&env.orders(), objects, 16).await;
    watch
        .wait_for(p.orders, Duration::from_secs(120 + p.orders as u64))
        .await
        .unwrap_or_else(|| panic!("orders not Ready\n{}", env.operator_logs()));
    // Whatever follows Ready (event, pending-key clean-up) makes no DigiCert call;
    // a quiet second shows it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let issued = env.sim.simulator().calls();

    // Steady state: restart with a short resync (a restart re-reads every order,
    // which belongs in the count) and count whole periods.
    env.operator_args = vec!["--resync".into(), format!("{}s", p.resync.as_secs())];
    env.sim.simulator().reset_calls();
    let started = Instant::now();
    env.start_operator();
    let window = p.resync * p.periods;
    tokio::time::sleep(window.saturating_sub(started.elapsed())).await;
    let steady = env.sim.simulator().calls();
    env.stop_operator();

    Outcome {
        orders: p.orders,
        issue_calls: issued.sum(),
        calls_per_certificate: issued.sum() as f64 / p.orders as f64,
        issue_calls_by_operation: calls_by_operation(&issued),
        steady_calls: steady.sum(),
        steady_periods: p.periods,
        calls_per_order_per_resync: steady.sum() as f64 / (p.orders as f64 * p.periods as f64),
        steady_calls_by_operation: calls_by_operation(&steady),
    }
}
