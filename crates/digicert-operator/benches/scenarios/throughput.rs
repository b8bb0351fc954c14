//! Benchmark 2: many orders applied at once against CertCentral's real rate limits
//! (100 requests / 5 s and 1000 / 3 min per API key), enforced by the simulator.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use certcentral_sim::{ApiKeyConfig, SeedFile, SimulatorConfig};
use digicert_operator::certcentral::ratelimit::CERTCENTRAL_LIMITS;

use crate::support::env::{API_KEY, OperatorEnv};

use super::{ReadyWatch, calls_by_operation, create_all, mixed_orders, rate_limit_bound};

pub struct Params {
    pub orders: usize,
}

#[derive(Debug, serde::Serialize)]
pub struct Outcome {
    pub orders: usize,
    pub all_ready_s: f64,
    pub calls: u64,
    pub calls_per_certificate: f64,
    /// The least time CertCentral's limits allow for `calls` calls.
    pub bound_s: f64,
    /// all_ready_s / bound_s (target ≤ 1.1).
    pub ratio_to_bound: f64,
    pub answers_429: u64,
    pub calls_by_operation: BTreeMap<String, u64>,
    /// Seconds from the start until 10%, 50% and 90% of the orders were Ready.
    pub ready_p10_s: f64,
    pub ready_p50_s: f64,
    pub ready_p90_s: f64,
}

pub async fn run(p: Params) -> Outcome {
    let seeds = (1..=p.orders as u64)
        .map(crate::support::order)
        .collect::<Vec<_>>();
    let config = SimulatorConfig {
        seed: SeedFile {
            api_keys: vec![ApiKeyConfig::new(API_KEY)],
            orders: seeds,
            rate_limits: None,
            ..SeedFile::default()
        },
        // CertCentral's own limits (the default).
        ..SimulatorConfig::default()
    };
    let mut env = OperatorEnv::with_simulator("bench-throughput", config).await;
    env.log_level = "info".into();
    env.start_operator();
    super::latency::wait_ready_endpoint(&env).await;
    let watch = ReadyWatch::start(env.orders());
    env.sim.simulator().reset_calls();
    let names: Vec<String> = (0..p.orders).map(|i| format!("burst-{i:05}")).collect();
    let objects = mixed_orders(&names);
    let started = Instant::now();
    create_all(&env.orders(), objects, 32).await;
    let calls_at_3 = p.orders as u64 * 3;
    let limits: Vec<(u64, Duration)> = CERTCENTRAL_LIMITS
        .iter()
        .map(|w| (w.limit as u64, w.window))
        .collect();
    let generous = rate_limit_bound(calls_at_3, &limits) * 3 + Duration::from_secs(300);
    let last = watch.wait_for(p.orders, generous).await.unwrap_or_else(|| {
        panic!(
            "{} of {} Ready after {generous:?}\n{}",
            watch.count(),
            p.orders,
            env.operator_logs()
        )
    });
    let all_ready = last - started;
    let calls = env.sim.simulator().calls();
    let mut offsets: Vec<f64> = (0..p.orders)
        .filter_map(|i| watch.ready_at(&format!("burst-{i:05}")))
        .map(|t| (t - started).as_secs_f64())
        .collect();
    offsets.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| offsets[((offsets.len() as f64 - 1.0) * q).round() as usize];
    let bound = rate_limit_bound(calls.sum(), &limits);
    env.stop_operator();
    Outcome {
        orders: p.orders,
        all_ready_s: all_ready.as_secs_f64(),
        calls: calls.sum(),
        calls_per_certificate: calls.sum() as f64 / p.orders as f64,
        bound_s: bound.as_secs_f64(),
        ratio_to_bound: all_ready.as_secs_f64() / bound.as_secs_f64().max(1.0),
        answers_429: calls.all_with_outcome("429"),
        calls_by_operation: calls_by_operation(&calls),
        ready_p10_s: at(0.1),
        ready_p50_s: at(0.5),
        ready_p90_s: at(0.9),
    }
}
