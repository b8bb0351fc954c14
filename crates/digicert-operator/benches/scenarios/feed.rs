//! Benchmark 11: the change feed at scale. `orders` orders on one key are issued (rate
//! limits off, as in benchmark 4); then the operator restarts against CertCentral's
//! real limits (at the simulator and in its own limiter) with the feed on: how long
//! until the feed has read every order (`digicert_operator_feed_orders`: all followed,
//! none unread),
//! the calls that took, by operation, and the 429s. Then one order is revoked at
//! DigiCert, and the time until its status says so is measured.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use digicert_operator::certcentral::RevokeOrderRequest;

use super::{calls_by_operation, issue_all, metric, rate_limit_bound};
use crate::support::env::{API_KEY, OperatorEnv, condition};

pub struct Params {
    pub orders: usize,
    pub feed_interval: Duration,
}

#[derive(Debug, serde::Serialize)]
pub struct Outcome {
    pub orders: usize,
    pub feed_interval_s: u64,
    pub issuing_s: f64,
    /// From the restart until the feed had read every order.
    pub cold_start_s: f64,
    pub cold_start_calls: u64,
    pub cold_start_calls_by_operation: BTreeMap<String, u64>,
    /// Calls about single orders (order info, reissue lists) in the cold start.
    pub cold_start_order_calls: u64,
    pub cold_start_429: u64,
    /// What one order-info call per order would take at CertCentral's limits.
    pub one_call_per_order_bound_s: f64,
    /// From the revocation at DigiCert until the order's status said so.
    pub revoked_to_status_s: f64,
}

pub async fn run(p: Params) -> Outcome {
    let seeds = (1..=p.orders as u64)
        .map(crate::support::order)
        .collect::<Vec<_>>();
    let mut env = OperatorEnv::new("bench-feed", seeds).await;
    env.log_level = "info".into();
    env.operator_args = vec!["--no-rate-limit".into()];
    env.start_operator();
    let issuing_s = issue_all(&env, "feed", p.orders).await;
    env.stop_operator();

    // CertCentral's limits from here on, at the simulator and in the operator.
    let limits = digicert_operator::certcentral::ratelimit::CERTCENTRAL_LIMITS.to_vec();
    env.sim.simulator().set_rate_limits(limits.clone());
    env.sim.simulator().reset_calls();
    env.operator_args = vec![
        "--feed-interval".into(),
        format!("{}s", p.feed_interval.as_secs()),
        "--resync".into(),
        "168h".into(),
    ];
    let restarted = Instant::now();
    env.start_operator();
    let base = env.http_base();
    let deadline = restarted + Duration::from_secs(600 + p.orders as u64 / 5);
    // Every order follows the feed, and the feed has read them all.
    let gauge = "digicert_operator_feed_orders";
    while metric(&base, gauge, "state=\"followed\"").await < p.orders as u64
        || metric(&base, gauge, "state=\"unread\"").await > 0
    {
        assert!(
            Instant::now() < deadline,
            "the feed did not read every order\n{}",
            env.operator_logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let cold_start_s = restarted.elapsed().as_secs_f64();
    // The woken orders' reconciles (no call expected) finish.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let cold = env.sim.simulator().calls();

    let revoked_at = Instant::now();
    let request = RevokeOrderRequest {
        skip_approval: Some(true),
        ..RevokeOrderRequest::default()
    };
    crate::support::client(&env.sim, API_KEY)
        .revoke_order(1, &request)
        .await
        .expect("revoking order 1");
    env.wait_for(
        "feed-00000",
        "OrderRevoked",
        p.feed_interval * 4 + Duration::from_secs(60),
        |o| condition(o, "Ready").is_some_and(|c| c.reason == "OrderRevoked"),
    )
    .await;
    let revoked_to_status_s = revoked_at.elapsed().as_secs_f64();
    env.stop_operator();

    let windows: Vec<(u64, Duration)> = limits.iter().map(|w| (w.limit as u64, w.window)).collect();
    Outcome {
        orders: p.orders,
        feed_interval_s: p.feed_interval.as_secs(),
        issuing_s,
        cold_start_s,
        cold_start_calls: cold.sum(),
        cold_start_calls_by_operation: calls_by_operation(&cold),
        cold_start_order_calls: cold.about_orders(),
        cold_start_429: cold.all_with_outcome("429"),
        one_call_per_order_bound_s: rate_limit_bound(p.orders as u64, &windows).as_secs_f64(),
        revoked_to_status_s,
    }
}
