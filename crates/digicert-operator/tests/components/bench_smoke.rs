//! Small versions of benchmarks 1, 4, 6, 9, 10 and 11 (see BENCHMARKS.md), so that a
//! regression in calls per certificate or request, memory or crash safety fails CI.
//! They assert counts and sizes, never times.

#[path = "../../benches/scenarios/mod.rs"]
mod scenarios;

use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_per_certificate_and_per_resync_stay_within_target() {
    let o = scenarios::calls::run(scenarios::calls::Params {
        orders: 4,
        resync: Duration::from_secs(5),
        periods: 3,
        feed_readings: 5,
    })
    .await;
    println!("{o:#?}");
    // A first certificate issued at once: the order's names (the revocation guard),
    // the reissue, the download. The feed's reads are per key, counted apart.
    assert!(o.calls_per_certificate <= 3.0, "{o:#?}");
    // Without the feed: the order and its reissue list (is the Secret's certificate
    // revoked?) at each resync.
    assert!(o.calls_per_order_per_resync <= 2.0, "{o:#?}");
    // Every period does look at each order: the count is not trivially zero.
    assert!(o.steady_calls >= o.orders as u64, "{o:#?}");
    // With the feed, idle orders cost nothing of their own: one call a reading.
    assert_eq!(o.feed_steady_order_calls, 0, "{o:#?}");
    assert!(o.feed_calls_per_order_per_hour_at_defaults > 0.0, "{o:#?}");
    // One reading is one call, each full check two: at 1,000 orders, under 0.05 an hour.
    assert!(
        o.feed_calls_per_order_per_hour_at_1000_orders <= 0.05,
        "{o:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_with_a_thousand_orders_and_unrelated_secrets_stays_under_64_mib() {
    let o = scenarios::memory::run(scenarios::memory::Params {
        orders: 1000,
        unrelated_secrets: 1000,
    })
    .await;
    println!("{o:#?}");
    assert!(o.peak_mib <= 64.0, "{o:#?}");
    assert!(o.peak_mib > 1.0, "RSS was measured: {o:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_orders_survive_twenty_kills_without_duplicates_or_lost_keys() {
    let o = scenarios::crash::run(scenarios::crash::Params {
        orders: 20,
        kills: 20,
        seed: 20,
    })
    .await;
    println!("{o:#?}");
    assert_eq!(o.ready, o.orders, "{o:#?}");
    assert_eq!(o.duplicate_reissues, 0, "{o:#?}");
    assert_eq!(o.lost_keys, 0, "{o:#?}");
    assert_eq!(o.mismatched_secrets, 0, "{o:#?}");
    assert_eq!(o.leftover_pending_keys, 0, "{o:#?}");
    assert_eq!(o.reissues, o.orders, "one reissue per order: {o:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicates_cost_bounded_calls_and_revoke_nothing() {
    let o = scenarios::duplicates::run(scenarios::duplicates::Params {
        duplicates: 3,
        resync: Duration::from_secs(5),
        periods: 2,
    })
    .await;
    println!("{o:#?}");
    // Per look, not per period: how many looks a short window catches varies.
    assert!(o.first_calls_per_duplicate <= 4.0, "{o:#?}");
    assert!(o.steady_calls_per_look <= 2.0, "{o:#?}");
    assert!(o.follow_extra_calls_per_duplicate <= 3.0, "{o:#?}");
    // The duplicates did call: the counts are not trivially zero.
    assert!(o.first_calls_per_duplicate >= 3.0, "{o:#?}");
    assert_eq!(o.revoked, 0, "{o:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cert_manager_requests_cost_bounded_calls_and_nothing_once_finished() {
    let o = scenarios::issuer::run(scenarios::issuer::Params {
        requests: 3,
        renewals: 2,
        idle: Duration::from_secs(3),
    })
    .await;
    println!("{o:#?}");
    // The order, the request, its state in the list, the download.
    assert_eq!(o.duplicate_calls_per_request, 4.0, "{o:#?}");
    assert_eq!(o.reissue_calls_per_request, 4.0, "{o:#?}");
    assert_eq!(o.idle_calls, 0, "{o:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cold_start_with_the_feed_reads_the_orders_in_one_call_without_a_429() {
    let o = scenarios::feed::run(scenarios::feed::Params {
        orders: 20,
        feed_interval: Duration::from_secs(1),
    })
    .await;
    println!("{o:#?}");
    // One page of list orders for all, nothing about single orders, no 429.
    assert_eq!(
        o.cold_start_calls_by_operation.get("list_orders"),
        Some(&1),
        "{o:#?}"
    );
    assert_eq!(o.cold_start_order_calls, 0, "{o:#?}");
    assert_eq!(o.cold_start_429, 0, "{o:#?}");
}
