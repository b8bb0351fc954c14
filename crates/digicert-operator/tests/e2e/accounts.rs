//! Accounts and claims end to end: the operator binary on the API server with the
//! simulator(s). A DigicertOrder drives a CertCentral order only with an account that
//! grants its namespace and order, and only if no other DigicertOrder drives it.

use std::time::{Duration, Instant};

use crate::support::env::{API_KEY, API_KEY_SECRET, OperatorEnv, condition, verify_tls_secret};
use certcentral_sim::{ApiKeyConfig, SeedFile, SimulatorConfig};
use digicert_operator::certcentral::Operation;
use digicert_operator::crd::DigicertOrder;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams};
use serde_json::json;

const NAMES: &[&str] = &["example.com", "www.example.com"];

fn ready_reason(o: &DigicertOrder) -> Option<(String, String, String)> {
    condition(o, "Ready").map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Waits for Ready=False with `reason`; returns the message.
async fn refused(env: &OperatorEnv, name: &str, reason: &str) -> (DigicertOrder, String) {
    let o = env
        .wait_condition(
            name,
            "Ready",
            "False",
            Some(reason),
            Duration::from_secs(60),
        )
        .await;
    let message = condition(&o, "Ready").unwrap().message.clone();
    (o, message)
}

fn sim_calls(env: &OperatorEnv) -> u64 {
    env.sim.simulator().calls().sum()
}

/// Asserts that the simulator sees no call about an order for `period` (the change
/// feed's reads are the account key's, one per interval, whatever the orders do).
async fn no_calls_for(env: &OperatorEnv, period: Duration) {
    let before = env.sim.simulator().calls().about_orders();
    tokio::time::sleep(period).await;
    let after = env.sim.simulator().calls().about_orders();
    assert_eq!(before, after, "calls were made\n{}", env.operator_logs());
}

fn label_namespace(env: &OperatorEnv, ns: &str, label: &str) {
    env.cluster
        .kubectl_ok(&["label", "namespace", ns, label, "--overwrite"], None);
}

/// An account `<namespace>-strict` for the test's namespace and key that grants no
/// approval and no order cancel; returns its name.
async fn strict_account(env: &OperatorEnv) -> String {
    let ns = env.cluster.namespace.clone();
    let strict = format!("{ns}-strict");
    env.put_account(
        &strict,
        &env.sim.base_url(),
        Some(env.sim.ca_pem()),
        API_KEY_SECRET,
        json!({"namespaceSelector": selector_of(&[&ns])}),
    )
    .await;
    strict
}

fn selector_of(namespaces: &[&str]) -> serde_json::Value {
    json!({"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In",
                                 "values": namespaces}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_namespace_the_account_does_not_select_makes_no_call_until_it_is_labelled() {
    let mut env = OperatorEnv::new("acct-namespace", vec![crate::support::order(1001)]).await;
    let ns = env.cluster.namespace.clone();
    let account = format!("{ns}-payments");
    env.put_account(
        &account,
        &env.sim.base_url(),
        Some(env.sim.ca_pem()),
        API_KEY_SECRET,
        json!({"namespaceSelector": {"matchLabels": {"team": "payments"}}}),
    )
    .await;
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml(
        "web",
        1001,
        &format!("  accountRef:\n    name: {account}\n"),
    ));
    let (o, message) = refused(&env, "web", "NamespaceNotAllowed").await;
    assert!(
        message.contains(&account) && message.contains(&ns),
        "{message}"
    );
    assert_eq!(
        o.status.as_ref().unwrap().account.as_deref(),
        Some(account.as_str())
    );
    // Refused orders are looked at again (every 2 s here), still without a call.
    no_calls_for(&env, Duration::from_secs(5)).await;
    assert_eq!(sim_calls(&env), 0);
    let out = env.cluster.kubectl_ok(&["get", "dco", "web"], None);
    assert!(out.contains("ACCOUNT") && out.contains(&account), "{out}");

    // The platform team labels the namespace: the order goes ahead.
    label_namespace(&env, &ns, "team=payments");
    let o = env.wait_ready("web").await;
    env.verify_secret("web-tls", NAMES).await;
    assert_eq!(env.sim.simulator().calls().total(Operation::Reissue), 1);
    let claim = o.status.as_ref().unwrap().claim.clone().unwrap_or_default();
    assert!(
        claim.starts_with(&format!("Lease {ns}/order-1001-")),
        "{claim}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orders_the_account_does_not_grant_are_refused_each_with_its_reason_and_no_call() {
    let mut env = OperatorEnv::new(
        "acct-refusals",
        vec![crate::support::order(1001), crate::support::order(1002)],
    )
    .await;
    let ns = env.cluster.namespace.clone();
    let listed = format!("{ns}-listed");
    env.put_account(
        &listed,
        &env.sim.base_url(),
        Some(env.sim.ca_pem()),
        API_KEY_SECRET,
        json!({"namespaceSelector": selector_of(&[&ns]), "orderIds": [1002]}),
    )
    .await;
    let keyless = format!("{ns}-keyless");
    env.put_account(
        &keyless,
        &env.sim.base_url(),
        Some(env.sim.ca_pem()),
        "no-such-secret",
        json!({"namespaceSelector": {}}),
    )
    .await;
    env.start_operator();
    let cases = [
        (
            "unlisted",
            1001,
            format!("  accountRef:\n    name: {listed}\n"),
            "OrderNotAllowed",
            "order 1001".to_string(),
        ),
        (
            "missing",
            1001,
            format!("  accountRef:\n    name: {ns}-nobody\n"),
            "AccountNotFound",
            format!("{ns}-nobody does not exist"),
        ),
        (
            "keyless",
            1001,
            format!("  accountRef:\n    name: {keyless}\n"),
            "ApiKeyMissing",
            format!("{ns}/no-such-secret does not exist"),
        ),
        (
            "own-key",
            1001,
            "  apiKeySecretRef:\n    name: absent-key\n".to_string(),
            "ApiKeyMissing",
            format!("{ns}/absent-key does not exist"),
        ),
    ];
    for (name, id, extra, _, _) in &cases {
        env.apply(&OperatorEnv::order_yaml(name, *id, extra));
    }
    for (name, _, _, reason, text) in &cases {
        let (_, message) = refused(&env, name, reason).await;
        assert!(message.contains(text.as_str()), "{name}: {message}");
        assert!(!message.contains(API_KEY), "{name}: the key in {message}");
    }
    no_calls_for(&env, Duration::from_secs(5)).await;
    assert_eq!(sim_calls(&env), 0, "refused orders made DigiCert calls");

    // The listed order goes through the same account.
    env.apply(&OperatorEnv::order_yaml(
        "listed",
        1002,
        &format!("  accountRef:\n    name: {listed}\n"),
    ));
    env.wait_ready("listed").await;
    // Widening the account is noticed (the accounts are watched).
    env.put_account(
        &listed,
        &env.sim.base_url(),
        Some(env.sim.ca_pem()),
        API_KEY_SECRET,
        json!({"namespaceSelector": selector_of(&[&ns]), "orderIds": [1001, 1002]}),
    )
    .await;
    env.wait_ready("unlisted").await;
    // The accounts report their keys.
    let status = |name: String| {
        let accounts = env.accounts();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let a = accounts.get(&name).await.unwrap();
                if let Some(c) = a
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
                {
                    return (c.status.clone(), c.reason.clone());
                }
                assert!(Instant::now() < deadline, "no Ready condition on {name}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert_eq!(status(listed).await.0, "True");
    assert_eq!(
        status(keyless).await,
        ("False".to_string(), "ApiKeyMissing".to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approval_needs_an_account_that_allows_it() {
    let approval = |id| {
        let mut s = crate::support::order(id);
        s.approval_required = true;
        s
    };
    let mut env = OperatorEnv::new("acct-approval", vec![approval(1001), approval(1002)]).await;
    let strict = strict_account(&env).await;
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml(
        "strict",
        1001,
        &format!("  approveReissues: true\n  accountRef:\n    name: {strict}\n"),
    ));
    let o = env
        .wait_condition(
            "strict",
            "Issuing",
            "True",
            Some("NeedsApproval"),
            Duration::from_secs(60),
        )
        .await;
    let message = &condition(&o, "Issuing").unwrap().message;
    assert!(
        message.contains("allowApproval") && message.contains(&strict),
        "{message}"
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        env.sim
            .simulator()
            .calls()
            .total(Operation::UpdateRequestStatus),
        0,
        "approved without allowApproval"
    );
    // The test's default account allows approval.
    env.apply(&OperatorEnv::order_yaml(
        "lenient",
        1002,
        "  approveReissues: true\n",
    ));
    env.wait_ready("lenient").await;
    assert_eq!(
        env.sim
            .simulator()
            .calls()
            .total(Operation::UpdateRequestStatus),
        1
    );
    // Granting approval on the strict account lets the first one through too.
    env.put_account(
        &strict,
        &env.sim.base_url(),
        Some(env.sim.ca_pem()),
        API_KEY_SECRET,
        json!({"namespaceSelector": selector_of(&[&env.cluster.namespace]), "allowApproval": true}),
    )
    .await;
    env.wait_ready("strict").await;
    env.verify_secret("strict-tls", NAMES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_accounts_at_two_endpoints_work_side_by_side_each_with_its_own_key() {
    const EU_KEY: &str = "e2e-eu-api-key-9876543210";
    let mut env = OperatorEnv::new("acct-two", vec![crate::support::order(1001)]).await;
    let ns = env.cluster.namespace.clone();
    let eu = certcentral_sim::start(SimulatorConfig {
        seed: SeedFile {
            api_keys: vec![ApiKeyConfig::new(EU_KEY)],
            orders: vec![crate::support::order(1001)],
            rate_limits: None,
            ..SeedFile::default()
        },
        rate_limits: Vec::new(),
        ..SimulatorConfig::default()
    })
    .await
    .expect("the second simulator starts");
    env.put_api_key("eu-api-key", EU_KEY).await;
    let eu_account = format!("{ns}-eu");
    env.put_account(
        &eu_account,
        &eu.base_url(),
        Some(eu.ca_pem()),
        "eu-api-key",
        json!({"namespaceSelector": selector_of(&[&ns])}),
    )
    .await;
    env.start_operator();
    // The same order id at two endpoints: two orders, two claims.
    env.apply(&OperatorEnv::order_yaml("us-web", 1001, ""));
    env.apply(&OperatorEnv::order_yaml(
        "eu-web",
        1001,
        &format!("  accountRef:\n    name: {eu_account}\n"),
    ));
    let us = env.wait_ready("us-web").await;
    let eu_order = env.wait_ready("eu-web").await;
    env.verify_secret("us-web-tls", NAMES).await;
    let secret = env.secrets().get("eu-web-tls").await.unwrap();
    verify_tls_secret(&secret, eu.ca_pem(), NAMES);
    assert_eq!(us.status.unwrap().account, Some(env.account_name()));
    assert_eq!(eu_order.status.unwrap().account, Some(eu_account));
    // Each simulator accepts only its own key: a single call with the other's would
    // have been answered 401.
    for (what, calls) in [
        ("us", env.sim.simulator().calls()),
        ("eu", eu.simulator().calls()),
    ] {
        assert_eq!(calls.total(Operation::Reissue), 1, "{what}: {calls:?}");
        assert_eq!(calls.all_with_outcome("401"), 0, "{what}: {calls:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_in_the_orders_own_namespace_with_its_endpoint_works() {
    const OWN_KEY: &str = "e2e-own-api-key-5555555555";
    let mut config = OperatorEnv::simulator_config(vec![crate::support::order(1001)]);
    config.seed.api_keys.push(ApiKeyConfig::new(OWN_KEY));
    let mut env = OperatorEnv::with_simulator("acct-own-key", config).await;
    let ns = env.cluster.namespace.clone();
    // The default account is unusable: only the order's own key can work.
    env.secrets()
        .delete(API_KEY_SECRET, &DeleteParams::default())
        .await
        .unwrap();
    env.put_api_key("own-key", OWN_KEY).await;
    // The operator's --certcentral-url is 127.0.0.1:PORT; the order names the same
    // simulator as localhost:PORT, so the claim shows which endpoint was used.
    let endpoint = env.sim.base_url().replace("127.0.0.1", "localhost");
    assert_ne!(endpoint, env.sim.base_url());
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml(
        "web",
        1001,
        &format!("  apiKeySecretRef:\n    name: own-key\n    certcentral: {endpoint}\n"),
    ));
    // A namespace's key goes only to us, eu, the operator's endpoint, or one the
    // operator allows: any other URL is refused without a request.
    let (_, message) = refused(&env, "web", "EndpointNotAllowed").await;
    assert!(message.contains("--namespace-key-endpoint"), "{message}");
    assert_eq!(sim_calls(&env), 0);
    env.operator_args = vec![format!("--namespace-key-endpoint={endpoint}")];
    env.start_operator();
    let o = env.wait_ready("web").await;
    env.verify_secret("web-tls", NAMES).await;
    let status = o.status.unwrap();
    assert_eq!(status.account.as_deref(), Some("namespace key own-key"));
    let lease_name = status
        .claim
        .as_deref()
        .and_then(|c| c.strip_prefix(&format!("Lease {ns}/")))
        .expect("a claim")
        .to_string();
    let lease = Api::<Lease>::namespaced(env.cluster.client.clone(), &ns)
        .get(&lease_name)
        .await
        .unwrap();
    assert_eq!(
        lease.annotations()["digicert-operator.dev/certcentral"],
        format!("{endpoint}/")
    );
    // An order without its own key uses the (now keyless) default account: refused.
    env.apply(&OperatorEnv::order_yaml("default", 1001, ""));
    refused(&env, "default", "ApiKeyMissing").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_order_has_one_owner_across_namespaces_and_restarts_until_it_goes() {
    let mut env = OperatorEnv::new("acct-claim", vec![crate::support::order(1001)]).await;
    let ns = env.cluster.namespace.clone();
    let other = env.cluster.other_namespace("b").await;
    let shared = format!("{ns}-shared");
    env.put_account(
        &shared,
        &env.sim.base_url(),
        Some(env.sim.ca_pem()),
        API_KEY_SECRET,
        json!({"namespaceSelector": selector_of(&[&ns, &other])}),
    )
    .await;
    env.operator_args = vec!["--watch-namespace".into(), other.clone()];
    env.start_operator();
    let spec = format!("  accountRef:\n    name: {shared}\n");
    env.apply(&OperatorEnv::order_yaml("first", 1001, &spec));
    let first = env.wait_ready("first").await;
    env.cluster.kubectl_ok(
        &["apply", "-n", &other, "-f", "-"],
        Some(&OperatorEnv::order_yaml("second", 1001, &spec)),
    );
    let others: Api<DigicertOrder> = Api::namespaced(env.cluster.client.clone(), &other);
    let claimed = |o: &DigicertOrder| {
        ready_reason(o).is_some_and(|(s, r, _)| s == "False" && r == "OrderClaimed")
    };
    let second = env
        .wait_in(
            &other,
            "second",
            "OrderClaimed",
            Duration::from_secs(60),
            claimed,
        )
        .await;
    let (_, _, message) = ready_reason(&second).unwrap();
    assert!(message.contains(&format!("{ns}/first")), "{message}");
    assert_eq!(
        second.status.as_ref().unwrap().claim.as_deref(),
        Some(format!("held by {ns}/first").as_str())
    );
    // The second makes no call: nothing moves at the simulator.
    no_calls_for(&env, Duration::from_secs(5)).await;
    assert_eq!(env.sim.simulator().calls().total(Operation::Reissue), 1);
    let leases: Api<Lease> = Api::namespaced(env.cluster.client.clone(), &ns);
    let lease_name = first
        .status
        .as_ref()
        .and_then(|s| s.claim.as_deref())
        .and_then(|c| c.strip_prefix(&format!("Lease {ns}/")))
        .expect("the first holds a Lease")
        .to_string();
    let holder = |l: &Lease| l.spec.as_ref().and_then(|s| s.holder_identity.clone());
    let first_identity = format!("{ns}/first/{}", first.uid().unwrap());
    assert_eq!(
        holder(&leases.get(&lease_name).await.unwrap()),
        Some(first_identity.clone())
    );

    // A restart changes nothing: the same holder keeps the claim.
    env.stop_operator();
    env.start_operator();
    env.operator
        .as_ref()
        .unwrap()
        .wait_for_log("watching DigicertOrders", Duration::from_secs(30));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let second = others.get("second").await.unwrap();
    assert!(claimed(&second), "{:?}", second.status);
    assert_eq!(
        holder(&leases.get(&lease_name).await.unwrap()),
        Some(first_identity)
    );
    assert_eq!(env.sim.simulator().calls().total(Operation::Reissue), 1);

    // The holder goes: the other takes over.
    env.cluster
        .kubectl_ok(&["delete", "dco", "first", "--timeout=60s"], None);
    let second = env
        .wait_in(&other, "second", "Ready", Duration::from_secs(60), |o| {
            ready_reason(o).is_some_and(|(s, _, _)| s == "True")
        })
        .await;
    assert_eq!(env.sim.simulator().calls().total(Operation::Reissue), 2);
    assert_eq!(
        holder(&leases.get(&lease_name).await.unwrap()),
        Some(format!("{other}/second/{}", second.uid().unwrap()))
    );
    let secret: Secret = Api::namespaced(env.cluster.client.clone(), &other)
        .get("second-tls")
        .await
        .unwrap();
    verify_tls_secret(&secret, env.sim.ca_pem(), NAMES);
    let _ = env
        .cluster
        .kubectl_run(&["delete", "namespace", &other, "--wait=false"], None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_pending_cancels_a_pending_order_only_where_the_account_allows_it() {
    let pending = |id| {
        let mut s = crate::support::order(id);
        s.status = digicert_operator::certcentral::OrderStatus::Pending;
        s
    };
    let mut env = OperatorEnv::new("acct-cancel", vec![pending(1001), pending(1002)]).await;
    let strict = strict_account(&env).await;
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml(
        "strict",
        1001,
        &format!("  deletionPolicy: CancelPending\n  accountRef:\n    name: {strict}\n"),
    ));
    // The test's default account allows canceling orders.
    env.apply(&OperatorEnv::order_yaml(
        "lenient",
        1002,
        "  deletionPolicy: CancelPending\n",
    ));
    for name in ["strict", "lenient"] {
        env.wait_for(name, "a claim", Duration::from_secs(60), |o| {
            o.status.as_ref().is_some_and(|s| s.claim.is_some())
        })
        .await;
    }
    let cancels = || {
        env.sim
            .simulator()
            .calls()
            .total(Operation::UpdateOrderStatus)
    };
    env.cluster
        .kubectl_ok(&["delete", "dco", "strict", "--timeout=60s"], None);
    assert_eq!(
        cancels(),
        0,
        "a pending order was canceled without allowOrderCancel\n{}",
        env.operator_logs()
    );
    let events = env
        .cluster
        .kubectl_ok(&["get", "events.events.k8s.io", "-o", "json"], None);
    assert!(events.contains("OrderCancelNotAllowed"), "{events}");
    env.cluster
        .kubectl_ok(&["delete", "dco", "lenient", "--timeout=60s"], None);
    assert_eq!(cancels(), 1);
}

/// The removed flag is refused with the way forward, not silently ignored: it let every
/// namespace use the operator's key.
#[test]
fn the_removed_api_key_secret_flag_stops_the_operator_with_the_migration() {
    for args in [
        &["run", "--api-key-secret", "digicert-api-key"][..],
        &["run", "--api-key-secret-key", "api-key"][..],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_digicert-operator"))
            .args(args)
            .env("KUBECONFIG", "/nonexistent")
            .env_remove("API_KEY_SECRET")
            .env_remove("API_KEY_SECRET_KEY")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} started");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("were removed") && stderr.contains("--default-account"),
            "{stderr}"
        );
    }
}

/// A namespace whose own key cannot read an order does not get to claim it: the order
/// stays free for the resource its account grants it to, and the squatter says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_that_cannot_read_the_order_does_not_claim_it() {
    let mut env = OperatorEnv::new("acct-squat", vec![crate::support::order(1001)]).await;
    // A key DigiCert does not know, in the tenant's own namespace.
    env.put_api_key("squatter-key", "not-a-digicert-key-0000000")
        .await;
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml(
        "squatter",
        1001,
        "  apiKeySecretRef:\n    name: squatter-key\n",
    ));
    let (o, message) = refused(&env, "squatter", "InvalidApiKey").await;
    assert!(message.contains("does not claim it"), "{message}");
    assert_eq!(o.status.unwrap().claim, None);
    // The order granted by the account is driven by the rightful resource.
    env.apply(&OperatorEnv::order_yaml("rightful", 1001, ""));
    let o = env.wait_ready("rightful").await;
    assert!(
        o.status
            .unwrap()
            .claim
            .is_some_and(|c| c.starts_with("Lease ")),
        "the rightful order holds the claim"
    );
    env.verify_secret("rightful-tls", NAMES).await;
    let calls = env.sim.simulator().calls().total(Operation::Reissue);
    assert_eq!(calls, 1, "only the rightful order's reissue");
}
