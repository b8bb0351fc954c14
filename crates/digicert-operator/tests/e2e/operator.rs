//! The operator end to end: its binary against the API server and the simulator.

use std::time::Duration;

use crate::support::env::{OperatorEnv, condition};
use digicert_operator::certcentral::Operation;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubectl_apply_of_an_example_becomes_ready_with_a_valid_secret() {
    let mut env = OperatorEnv::new("apply-ready", vec![crate::support::order(1001)]).await;
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml("web", 1001, ""));
    // What a user runs: kubectl wait.
    env.cluster.kubectl_ok(
        &["wait", "--for=condition=Ready", "dco/web", "--timeout=60s"],
        None,
    );
    let order = env.wait_ready("web").await;
    let status = order.status.clone().unwrap();
    assert_eq!(status.revision, 1);
    assert_eq!(status.order_status.as_deref(), Some("issued"));
    assert!(status.reissue.is_none());
    assert_eq!(condition(&order, "Issuing").unwrap().status, "False");
    let secret = env
        .verify_secret("web-tls", &["example.com", "www.example.com"])
        .await;
    assert_eq!(secret.annotations["digicert-operator.dev/order-id"], "1001");
    assert_eq!(
        status.certificate.as_ref().unwrap().serial_number,
        secret.leaf.serial_number
    );
    assert!(
        secret
            .key_pem
            .starts_with("-----BEGIN RSA PRIVATE KEY-----")
    );
    // The pending key Secret goes right after the status write that says Ready.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while env
        .secrets()
        .get_opt("web-pending-key")
        .await
        .unwrap()
        .is_some()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the pending key Secret stays"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Four calls to DigiCert for a first certificate: the order's names (nothing may
    // be revoked by surprise), the reissue, its state, the download.
    let calls = env.sim.simulator().calls();
    assert_eq!(calls.total(Operation::Reissue), 1);
    assert_eq!(calls.total(Operation::OrderInfo), 2, "{calls:?}");
    // (The change feed's reads are the account key's, counted apart.)
    assert_eq!(calls.about_orders(), 4, "{calls:?}");
    // The printer columns show it.
    let out = env.cluster.kubectl_ok(&["get", "dco", "web"], None);
    assert!(
        out.contains("True") && out.contains("1001") && out.contains("web-tls"),
        "{out}"
    );
    tokio::time::sleep(Duration::from_millis(1)).await;
}
