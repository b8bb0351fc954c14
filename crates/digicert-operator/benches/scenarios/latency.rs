//! Benchmark 3: one order, apply → Ready, with instant issuance, one order at a time.

use std::time::{Duration, Instant};

use crate::support::env::OperatorEnv;

use super::{Key, ReadyWatch, order};

pub struct Params {
    /// Orders per key type, one after the other.
    pub runs: usize,
}

#[derive(Debug, serde::Serialize)]
pub struct Outcome {
    pub key: Key,
    /// The first order after the operator started (connections not yet open).
    pub first_ms: f64,
    /// Every later order, in order.
    pub samples_ms: Vec<f64>,
    pub median_ms: f64,
    pub max_ms: f64,
    /// For each sample over 1 s (the first order's too): the operator's log lines
    /// about that order.
    pub slow_samples: Vec<String>,
}

pub async fn run(p: Params) -> Vec<Outcome> {
    let kinds = [Key::Rsa2048, Key::EcdsaP256];
    let total = kinds.len() * (p.runs + 1);
    let seeds = (1..=total as u64)
        .map(crate::support::order)
        .collect::<Vec<_>>();
    let mut env = OperatorEnv::new("bench-latency", seeds).await;
    // Debug: one order at a time logs little, and a slow sample can be explained.
    env.log_level = "info,digicert_operator=debug".into();
    env.start_operator();
    wait_ready_endpoint(&env).await;
    let watch = ReadyWatch::start(env.orders());
    let mut next_id = 1u64;
    let mut outcomes = Vec::new();
    for key in kinds {
        let mut samples = Vec::new();
        let mut slow_samples = Vec::new();
        for i in 0..=p.runs {
            let name = format!(
                "latency-{}-{i:03}",
                if key == Key::Rsa2048 { "rsa" } else { "ecdsa" }
            );
            let object = order(&name, next_id, key);
            next_id += 1;
            let started = Instant::now();
            env.orders()
                .create(&Default::default(), &object)
                .await
                .expect("order created");
            let deadline = started + Duration::from_secs(30);
            let ready = loop {
                if let Some(at) = watch.ready_at(&name) {
                    break at;
                }
                assert!(
                    Instant::now() < deadline,
                    "{name} not Ready\n{}",
                    env.operator_logs()
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            };
            let ms = (ready - started).as_secs_f64() * 1000.0;
            if ms > 1000.0 {
                let lines: Vec<String> = env
                    .operator_logs()
                    .lines()
                    .filter(|l| l.contains(&name))
                    .map(String::from)
                    .collect();
                slow_samples.push(format!("{name}: {ms:.0} ms\n{}", lines.join("\n")));
            }
            samples.push(ms);
        }
        let first_ms = samples.remove(0);
        outcomes.push(Outcome {
            key,
            first_ms,
            median_ms: super::median(&samples),
            max_ms: samples.iter().copied().fold(0.0, f64::max),
            samples_ms: samples,
            slow_samples,
        });
    }
    env.stop_operator();
    outcomes
}

/// Waits until the operator says it is ready (watches synced).
pub async fn wait_ready_endpoint(env: &OperatorEnv) {
    let url = format!("{}/readyz", env.http_base());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ok = reqwest::get(&url)
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "operator not ready\n{}",
            env.operator_logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
