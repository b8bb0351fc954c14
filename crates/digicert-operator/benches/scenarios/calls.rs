//! Benchmark 1: DigiCert calls per issued certificate, per order per resync period
//! once issued (the per-order check, as without a change feed), and with the change
//! feed, side by side: what an idle order costs then. Counted at the simulator.

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
    /// Feed readings to count over in the feed's steady state (1 s apart).
    pub feed_readings: u32,
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
    /// The change feed's own reads (per account key, not per order) while issuing.
    pub issue_feed_calls: u64,
    /// With the feed (1 s) and a 24 h resync: calls over `feed_readings` readings.
    pub feed_steady_calls_by_operation: BTreeMap<String, u64>,
    /// Of those, calls about single orders (order info, reissue lists): none expected.
    pub feed_steady_order_calls: u64,
    /// DigiCert calls per order per hour in the steady state at the defaults (feed 2 min,
    /// resync 168 h, a full reading every 6 h), from the counts measured here.
    pub feed_calls_per_order_per_hour_at_defaults: f64,
    /// The same for 1,000 orders on one key (the benchmark's target).
    pub feed_calls_per_order_per_hour_at_1000_orders: f64,
    /// The same without the feed (resync 6 h, the per-order check of old).
    pub feedless_calls_per_order_per_hour_at_defaults: f64,
}

/// The feed's reads: per account key, not per order.
fn feed_calls(counts: &certcentral_sim::CallCounts) -> u64 {
    counts.sum() - counts.about_orders()
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
    // Issued at once, as DigiCert does with skip_approval.
    let mut objects = mixed_orders(&names);
    for o in &mut objects {
        o.spec.skip_approval = true;
    }
    create_all(&env.orders(), objects, 16).await;
    watch
        .wait_for(p.orders, Duration::from_secs(120 + p.orders as u64))
        .await
        .unwrap_or_else(|| panic!("orders not Ready\n{}", env.operator_logs()));
    // Whatever follows Ready (event, pending-key clean-up) makes no DigiCert call;
    // a quiet second shows it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let issued = env.sim.simulator().calls();

    // Steady state without the feed: restart with a short resync (a restart re-reads
    // every order, which belongs in the count) and count whole periods.
    env.operator_args = vec![
        "--feed-interval".into(),
        "0".into(),
        "--resync".into(),
        format!("{}s", p.resync.as_secs()),
    ];
    env.sim.simulator().reset_calls();
    let started = Instant::now();
    env.start_operator();
    let window = p.resync * p.periods;
    tokio::time::sleep(window.saturating_sub(started.elapsed())).await;
    let steady = env.sim.simulator().calls();

    // With the feed: every second, and a day between per-order checks. After the
    // restart's first (full) reading, count `feed_readings` readings.
    env.operator_args = ["--feed-interval", "1s", "--resync", "24h"]
        .map(String::from)
        .to_vec();
    env.start_operator();
    let list_orders = digicert_operator::certcentral::Operation::ListOrders;
    let changes = digicert_operator::certcentral::Operation::StatusChanges;
    let deadline = Instant::now() + Duration::from_secs(60);
    while env.sim.simulator().calls().total(list_orders) == steady.total(list_orders)
        || env.sim.simulator().calls().total(changes) == 0
    {
        assert!(
            Instant::now() < deadline,
            "no feed reading\n{}",
            env.operator_logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The restart read every order once (the first reconciles): past that, count.
    tokio::time::sleep(Duration::from_secs(2)).await;
    env.sim.simulator().reset_calls();
    let deadline = Instant::now() + Duration::from_secs(60 + u64::from(p.feed_readings) * 3);
    while env.sim.simulator().calls().total(changes) < u64::from(p.feed_readings) {
        assert!(Instant::now() < deadline, "feed readings stalled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let feed_steady = env.sim.simulator().calls();
    env.stop_operator();

    let per_look = steady.sum() as f64 / (p.orders as f64 * p.periods as f64);
    let orders = p.orders as f64;
    let per_reading = feed_calls(&feed_steady) as f64 / f64::from(p.feed_readings.max(1));
    // At the defaults, for `n` orders on one key: a reading every 2 min, a full reading
    // (1 call per 1,000 orders) every 6 h, each order checked in full every 168 h, at
    // the counts measured here.
    let per_order_per_hour =
        |n: f64| (30.0 * per_reading + (n / 1000.0).ceil() / 6.0 + n * per_look / 168.0) / n;
    Outcome {
        orders: p.orders,
        issue_calls: issued.about_orders(),
        calls_per_certificate: issued.about_orders() as f64 / orders,
        issue_calls_by_operation: calls_by_operation(&issued),
        issue_feed_calls: feed_calls(&issued),
        steady_calls: steady.sum(),
        steady_periods: p.periods,
        calls_per_order_per_resync: per_look,
        steady_calls_by_operation: calls_by_operation(&steady),
        feed_steady_order_calls: feed_steady.about_orders(),
        feed_steady_calls_by_operation: calls_by_operation(&feed_steady),
        feed_calls_per_order_per_hour_at_defaults: per_order_per_hour(orders),
        feed_calls_per_order_per_hour_at_1000_orders: per_order_per_hour(1000.0),
        feedless_calls_per_order_per_hour_at_defaults: per_look / 6.0,
    }
}
