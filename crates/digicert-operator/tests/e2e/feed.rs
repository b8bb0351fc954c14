//! DigiCert's change feed: with a 24 h resync, an idle order costs DigiCert no call
//! of its own and the API server no write, while a change at DigiCert (an order
//! revoked, a certificate DigiCert reissued by itself) reaches status within a few
//! feed readings; a webhook makes the order look at once; a first certificate issued
//! at once costs three calls.

use std::time::{Duration, Instant};

use crate::support::env::{API_KEY, OperatorEnv, condition};
use certcentral_sim::OrderSeed;
use digicert_operator::certcentral::{Operation, RevokeOrderRequest};
use digicert_operator::crd::DigicertOrder;
use kube::ResourceExt;

/// Well past a few readings of a 1 s feed, far below the 24 h resync.
const SOON: Duration = Duration::from_secs(30);

fn seed(id: u64, change: impl FnOnce(&mut OrderSeed)) -> OrderSeed {
    let mut s = crate::support::order(id);
    change(&mut s);
    s
}

fn feed_args(interval: &str) -> Vec<String> {
    ["--feed-interval", interval, "--resync", "24h"]
        .map(String::from)
        .to_vec()
}

fn calls(env: &OperatorEnv, op: Operation) -> u64 {
    env.sim.simulator().calls().total(op)
}

async fn wait_calls(env: &OperatorEnv, op: Operation, at_least: u64) {
    let deadline = Instant::now() + SOON;
    while calls(env, op) < at_least {
        assert!(
            Instant::now() < deadline,
            "{op:?}: {} calls, waiting for {at_least}\n{}",
            calls(env, op),
            env.operator_logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Revokes the order at DigiCert, as somebody else would.
async fn revoke_at_digicert(env: &OperatorEnv, order: u64) {
    let request = RevokeOrderRequest {
        skip_approval: Some(true),
        ..RevokeOrderRequest::default()
    };
    crate::support::client(&env.sim, API_KEY)
        .revoke_order(order, &request)
        .await
        .unwrap();
}

fn is(o: &DigicertOrder, type_: &str, status: &str, reason: &str) -> bool {
    condition(o, type_).is_some_and(|c| c.status == status && c.reason == reason)
}

fn revision(o: &DigicertOrder) -> u32 {
    o.status.as_ref().map_or(0, |s| s.revision)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idle_order_costs_no_call_and_no_write_of_its_own() {
    let mut env = OperatorEnv::new("feed-idle", vec![seed(1001, |_| {}), seed(1002, |_| {})]).await;
    env.operator_args = feed_args("1s");
    env.start_operator();
    // Issued at once (skipApproval): the order's names, the reissue, the download.
    env.apply(&OperatorEnv::order_yaml(
        "web",
        1001,
        "  skipApproval: true\n",
    ));
    env.wait_ready("web").await;
    assert_eq!(calls(&env, Operation::OrderInfo), 1);
    assert_eq!(calls(&env, Operation::Reissue), 1);
    assert_eq!(calls(&env, Operation::Download), 1);
    env.apply(&OperatorEnv::order_yaml(
        "api",
        1002,
        "  skipApproval: true\n",
    ));
    env.wait_ready("api").await;

    // Past the feed's first readings, then five more: only the feed calls DigiCert,
    // and nothing is written to the orders.
    let changes = calls(&env, Operation::StatusChanges);
    wait_calls(&env, Operation::StatusChanges, changes + 2).await;
    let before = env.sim.simulator().calls();
    let versions = |list: Vec<DigicertOrder>| -> Vec<(String, Option<String>)> {
        list.iter()
            .map(|o| (o.name_any(), o.resource_version()))
            .collect()
    };
    let list = kube::api::ListParams::default();
    let was = versions(env.orders().list(&list).await.unwrap().items);
    wait_calls(
        &env,
        Operation::StatusChanges,
        before.total(Operation::StatusChanges) + 5,
    )
    .await;
    let after = env.sim.simulator().calls();
    for op in [
        Operation::OrderInfo,
        Operation::ListReissues,
        Operation::Reissue,
        Operation::Download,
    ] {
        assert_eq!(after.total(op), before.total(op), "{op:?}");
    }
    assert_eq!(
        versions(env.orders().list(&list).await.unwrap().items),
        was,
        "no status write while nothing changes"
    );

    // Nobody follows the key any more (its orders deleted): its reader stops, and
    // DigiCert hears nothing more from it.
    for name in ["web", "api"] {
        env.orders()
            .delete(name, &kube::api::DeleteParams::default())
            .await
            .unwrap();
    }
    let p = env.operator.as_ref().unwrap();
    p.wait_for_log("change feed stopped", SOON);
    let stopped = env.sim.simulator().calls();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        env.sim.simulator().calls(),
        stopped,
        "a reader with no orders"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_at_digicert_reach_status_through_the_feed() {
    let auto = seed(1002, |s| {
        s.certificate_validity_seconds = Some(864_000);
        s.auto_reissue_window_seconds = Some(259_200);
    });
    let mut env = OperatorEnv::new("feed-changes", vec![seed(1001, |_| {}), auto]).await;
    env.operator_args = feed_args("1s");
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml("web", 1001, ""));
    env.apply(&OperatorEnv::order_yaml(
        "auto",
        1002,
        "  autoReissue: true\n",
    ));
    env.wait_ready("web").await;
    env.wait_ready("auto").await;
    env.wait_for("auto", "auto-reissue on", SOON, |o| {
        o.status.as_ref().and_then(|s| s.auto_reissue) == Some(true)
    })
    .await;
    wait_calls(&env, Operation::StatusChanges, 2).await;

    // The order revoked at DigiCert: the 24 h resync would see it tomorrow.
    revoke_at_digicert(&env, 1001).await;
    env.wait_for("web", "OrderRevoked", SOON, |o| {
        is(o, "Ready", "False", "OrderRevoked")
    })
    .await;

    // Eight days on, DigiCert reissues order 1002 by itself: picked up.
    env.sim.simulator().advance_clock(time::Duration::days(8));
    let o = env
        .wait_for("auto", "the auto-reissued certificate", SOON, |o| {
            revision(o) == 2 && is(o, "Ready", "True", "Issued")
        })
        .await;
    assert_eq!(
        calls(&env, Operation::Reissue),
        2,
        "the operator asked for none"
    );
    assert!(o.status.unwrap().certificate.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_webhook_makes_the_order_look_at_once() {
    const KEY: &str = "webhook-shared-key-0123456789";
    let mut env = OperatorEnv::new("feed-webhook", vec![seed(1001, |_| {})]).await;
    let key_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(key_file.path(), format!("{KEY}\n")).unwrap();
    // A feed read once an hour: only the webhook can be this quick.
    env.operator_args = feed_args("1h");
    env.operator_args.extend([
        "--webhook-listen".into(),
        "127.0.0.1:0".into(),
        "--webhook-key-file".into(),
        key_file.path().display().to_string(),
    ]);
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml("web", 1001, ""));
    env.wait_ready("web").await;
    let url = format!(
        "http://{}/digicert",
        env.logged_addr("receiving CertCentral webhooks")
    );

    // Wrong or missing key: refused, nothing looked at.
    let http = reqwest::Client::new();
    let body = serde_json::json!({"event": "certificate_revoked", "data": {"order_id": 1001}});
    for key in [Some("not-the-key-0123456789"), None] {
        let mut request = http.post(&url).json(&body);
        if let Some(k) = key {
            request = request.header("X-WEBHOOK-KEY", k);
        }
        assert_eq!(request.send().await.unwrap().status(), 401);
    }

    env.sim
        .simulator()
        .set_webhook(Some(certcentral_sim::webhooks::WebhookConfig {
            key: Some(KEY.into()),
            ..certcentral_sim::webhooks::WebhookConfig::new(url.clone())
        }))
        .unwrap();
    let looks = calls(&env, Operation::OrderInfo);
    revoke_at_digicert(&env, 1001).await;
    env.wait_for("web", "OrderRevoked", SOON, |o| {
        is(o, "Ready", "False", "OrderRevoked")
    })
    .await;
    assert!(env.sim.simulator().webhook_deliveries().sent >= 1);
    assert!(calls(&env, Operation::OrderInfo) > looks);
    // The payload named the order; nothing else of it was believed: the status says
    // what DigiCert's order info said.
    let o = env.orders().get("web").await.unwrap();
    assert_eq!(o.status.unwrap().order_status.as_deref(), Some("revoked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_the_account_does_not_list_is_not_asked_for_at_every_reading() {
    let mut env = OperatorEnv::new("feed-unlisted", vec![seed(1001, |_| {})]).await;
    env.operator_args = feed_args("1s");
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml("web", 1001, ""));
    // No such order in the account.
    env.apply(&OperatorEnv::order_yaml("ghost", 4242, ""));
    env.wait_ready("web").await;
    env.wait_for("ghost", "OrderNotFound", SOON, |o| {
        is(o, "Ready", "False", "OrderNotFound")
    })
    .await;
    // The feed asked for it by id once; five readings on, not again.
    let changes = calls(&env, Operation::StatusChanges);
    wait_calls(&env, Operation::StatusChanges, changes + 1).await;
    let lists = calls(&env, Operation::ListOrders);
    wait_calls(&env, Operation::StatusChanges, changes + 6).await;
    assert_eq!(
        calls(&env, Operation::ListOrders),
        lists,
        "list orders by id at every reading\n{}",
        env.operator_logs()
    );
}
