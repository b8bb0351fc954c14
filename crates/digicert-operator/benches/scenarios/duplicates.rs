//! Benchmark 9: what duplicates cost. One order, one DigicertOrder that reissues it,
//! and `duplicates` DigicertOrders that take duplicates of its certificate:
//!
//! - first: DigiCert calls per duplicate until all are Ready;
//! - steady: calls per duplicate per resync period;
//! - follow: the owner renews; calls per duplicate and the time until every duplicate
//!   copies the new certificate;
//! - revocations: certificates of the order revoked at the end (must be none).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use digicert_operator::certcentral::{Operation, ReissueStatus};
use digicert_operator::crd::{DigicertOrder, RENEW_ANNOTATION};
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::support::env::{API_KEY, OperatorEnv, condition};

use super::{ReadyWatch, calls_by_operation, create_all};

pub struct Params {
    pub duplicates: usize,
    /// The operator's --resync.
    pub resync: Duration,
    /// Resync periods to count the steady state over.
    pub periods: u32,
}

#[derive(Debug, serde::Serialize)]
pub struct Outcome {
    pub duplicates: usize,
    pub first_calls_per_duplicate: f64,
    pub first_calls_by_operation: BTreeMap<String, u64>,
    pub steady_calls_per_duplicate_per_resync: f64,
    /// Calls per look of a duplicate at its order (whatever the window catches).
    pub steady_calls_per_look: f64,
    pub follow_calls_per_duplicate: f64,
    /// What following costs beyond the duplicate's regular look.
    pub follow_extra_calls_per_duplicate: f64,
    pub follow_calls_by_operation: BTreeMap<String, u64>,
    /// From the owner's new certificate to the last duplicate copying it.
    pub follow_ms: f64,
    pub revoked: usize,
}

fn duplicate(name: &str) -> DigicertOrder {
    serde_json::from_value(json!({
        "apiVersion": "digicert-operator.dev/v1alpha1",
        "kind": "DigicertOrder",
        "metadata": {"name": name},
        "spec": {
            "orderId": 1,
            "issuance": "Duplicate",
            "commonName": "example.com",
            "secretName": format!("{name}-tls"),
            "privateKey": {"algorithm": "ECDSA", "size": 256},
        }
    }))
    .expect("a valid DigicertOrder")
}

fn copies(o: &DigicertOrder) -> Option<u64> {
    o.status.as_ref()?.duplicate_of
}

fn current_id(o: &DigicertOrder) -> Option<u64> {
    Some(o.status.as_ref()?.certificate.as_ref()?.id)
}

/// The calls of the owner's periodic looks: the order and its reissue list (only the
/// owner reads that list).
fn owner_looks(counts: &certcentral_sim::CallCounts) -> u64 {
    2 * counts.total(Operation::ListReissues)
}

/// Calls per duplicate: all less the owner's.
fn per_duplicate(total: u64, owner: u64, duplicates: usize) -> f64 {
    total.saturating_sub(owner) as f64 / duplicates as f64
}

pub async fn run(p: Params) -> Outcome {
    let mut env = OperatorEnv::new("bench-duplicates", vec![crate::support::order(1)]).await;
    env.log_level = "info".into();
    // The per-order look itself is measured: the change feed's per-key reads are not
    // in it.
    env.operator_args = vec![
        "--feed-interval".into(),
        "0".into(),
        "--resync".into(),
        format!("{}s", p.resync.as_secs()),
    ];
    env.start_operator();
    let watch = ReadyWatch::start(env.orders());
    env.apply(&OperatorEnv::order_yaml("owner", 1, ""));
    watch
        .wait_for(1, Duration::from_secs(60))
        .await
        .unwrap_or_else(|| panic!("the owner is not Ready\n{}", env.operator_logs()));

    // First duplicates.
    env.sim.simulator().reset_calls();
    let names: Vec<String> = (0..p.duplicates).map(|i| format!("dup-{i:04}")).collect();
    create_all(
        &env.orders(),
        names.iter().map(|n| duplicate(n)).collect(),
        16,
    )
    .await;
    watch
        .wait_for(
            p.duplicates + 1,
            Duration::from_secs(120 + p.duplicates as u64),
        )
        .await
        .unwrap_or_else(|| panic!("duplicates not Ready\n{}", env.operator_logs()));
    let first = env.sim.simulator().calls();
    let first_calls_per_duplicate = per_duplicate(first.sum(), owner_looks(&first), p.duplicates);

    // Steady state.
    env.sim.simulator().reset_calls();
    tokio::time::sleep(p.resync * p.periods).await;
    let steady = env.sim.simulator().calls();
    let steady_calls_per_duplicate_per_resync =
        per_duplicate(steady.sum(), owner_looks(&steady), p.duplicates) / p.periods as f64;
    // Each look of the owner reads the order once too.
    let looks = steady
        .total(Operation::OrderInfo)
        .saturating_sub(steady.total(Operation::ListReissues));
    let steady_calls_per_look =
        steady.sum().saturating_sub(owner_looks(&steady)) as f64 / looks.max(1) as f64;

    // The owner renews: every duplicate follows.
    env.sim.simulator().reset_calls();
    let owner_before = env.orders().get("owner").await.unwrap();
    env.orders()
        .patch(
            "owner",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {RENEW_ANNOTATION: "bench"}}})),
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let (renewed_at, new_id) = loop {
        let o = env.orders().get("owner").await.unwrap();
        if current_id(&o) != current_id(&owner_before)
            && condition(&o, "Ready").is_some_and(|c| c.status == "True")
        {
            break (Instant::now(), current_id(&o));
        }
        assert!(Instant::now() < deadline, "the owner did not renew");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    loop {
        let list = env.orders().list(&Default::default()).await.unwrap();
        let followed = list
            .items
            .iter()
            .filter(|o| o.spec.issuance == digicert_operator::crd::Issuance::Duplicate)
            .filter(|o| {
                copies(o) == new_id && condition(o, "Ready").is_some_and(|c| c.status == "True")
            })
            .count();
        if followed == p.duplicates {
            break;
        }
        assert!(
            Instant::now() < deadline + p.resync * 2,
            "{followed} of {} duplicates followed\n{}",
            p.duplicates,
            env.operator_logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let follow_ms = renewed_at.elapsed().as_secs_f64() * 1000.0;
    let follow = env.sim.simulator().calls();
    // The owner's renewal: the reissue, its state, the download (its names are known).
    let owner_calls = follow.total(Operation::Reissue) * 3 + owner_looks(&follow);
    let follow_calls_per_duplicate = per_duplicate(follow.sum(), owner_calls, p.duplicates);
    // A look is an order read and a duplicate-list read; the owner read the order once
    // per look and once after its reissue.
    let duplicate_looks = follow
        .total(Operation::OrderInfo)
        .saturating_sub(follow.total(Operation::ListReissues) + follow.total(Operation::Reissue));
    let follow_extra_calls_per_duplicate = per_duplicate(
        follow.sum(),
        owner_calls + 2 * duplicate_looks,
        p.duplicates,
    );

    let client = crate::support::client(&env.sim, API_KEY);
    let reissues = client.list_reissues(1).await.unwrap();
    let duplicates = client.list_duplicates(1).await.unwrap();
    let revoked = reissues
        .iter()
        .filter(|c| c.status == ReissueStatus::Revoked)
        .count()
        + duplicates
            .iter()
            .filter(|c| c.status == ReissueStatus::Revoked)
            .count();
    env.stop_operator();
    Outcome {
        duplicates: p.duplicates,
        first_calls_per_duplicate,
        first_calls_by_operation: calls_by_operation(&first),
        steady_calls_per_duplicate_per_resync,
        steady_calls_per_look,
        follow_calls_per_duplicate,
        follow_extra_calls_per_duplicate,
        follow_calls_by_operation: calls_by_operation(&follow),
        follow_ms,
        revoked,
    }
}
