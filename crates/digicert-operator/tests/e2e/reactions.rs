//! What a user does, or an account's key Secret does, reaches the operator within
//! seconds with the default resync (6 h), and status tells the truth about it: Ready
//! says whether the Secret holds a good certificate, the DigiCert condition whether
//! DigiCert can be used; a refused reissue near the order's end says so; a cancel
//! shows the order back to issued; two operators in one cluster each serve their own
//! accounts.

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use crate::support::env::{API_KEY, API_KEY_SECRET, OperatorEnv, condition};
use crate::support::process::OperatorProcess;
use certcentral_sim::OrderSeed;
use certcentral_sim::faults::FaultSpec;
use digicert_operator::certcentral::Operation;
use digicert_operator::crd::{ALLOW_REVOCATION_ANNOTATION, DigicertAccount, DigicertOrder};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use serde_json::json;

/// How soon a change must show: far below every periodic look of these tests
/// (resync 6 h, access recheck 10 min, conflict recheck 1 min, account resync 1 min).
const PROMPTLY: Duration = Duration::from_secs(15);

/// An environment whose operator is started with `start_quiet`.
async fn quiet_env(test: &str, orders: Vec<OrderSeed>) -> OperatorEnv {
    OperatorEnv::new(test, orders).await
}

/// Starts the operator so that it looks at orders only when woken: the default
/// resync, and a long access recheck instead of the tests' usual 2 s.
fn start_quiet(env: &mut OperatorEnv) {
    env.stop_operator();
    let mut args = env.args();
    let at = args.iter().position(|a| a == "--access-recheck").unwrap();
    args[at + 1] = "10m".into();
    env.operator = Some(OperatorProcess::start(
        &args,
        &[
            ("KUBECONFIG", env.cluster.kubeconfig.as_os_str()),
            ("LOG_LEVEL", OsStr::new(&env.log_level)),
        ],
    ));
}

fn cond(o: &DigicertOrder, type_: &str) -> Option<(String, String)> {
    condition(o, type_).map(|c| (c.status.clone(), c.reason.clone()))
}

fn is(o: &DigicertOrder, type_: &str, status: &str, reason: &str) -> bool {
    cond(o, type_).is_some_and(|(s, r)| s == status && r == reason)
}

fn serial(o: &DigicertOrder) -> String {
    o.status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .map(|c| c.serial_number.clone())
        .unwrap_or_default()
}

fn calls(env: &OperatorEnv, op: Operation) -> u64 {
    env.sim.simulator().calls().total(op)
}

fn kubectl_digicert(env: &OperatorEnv, args: &[&str]) -> String {
    let out = std::process::Command::new(crate::support::process::binary())
        .args(args)
        .args(["-n", &env.cluster.namespace])
        .env("KUBECONFIG", &env.cluster.kubeconfig)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?}: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Waits until the names-dropping edit is held for consent; returns its fingerprint.
async fn held_for_consent(env: &OperatorEnv, name: &str) -> String {
    let held = env
        .wait_condition(
            name,
            "Ready",
            "False",
            Some("RevocationConsentRequired"),
            Duration::from_secs(30),
        )
        .await;
    held.status.unwrap().revocation_guard.unwrap().fingerprint
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consent_to_a_revoking_reissue_wakes_the_operator_at_once() {
    let mut seed = crate::support::order(1001);
    seed.dns_names = vec!["www.example.com".into(), "api.example.com".into()];
    let mut env = quiet_env("consent-wakes", vec![seed]).await;
    start_quiet(&mut env);
    let dns = |names: &str| format!("  dnsNames: {names}\n");
    let spec = |names: &str| {
        OperatorEnv::order_yaml("web", 1001, "")
            .replace("  dnsNames: [www.example.com]\n", &dns(names))
    };
    env.apply(&spec("[www.example.com, api.example.com]"));
    let first = env.wait_ready("web").await;

    // Consent through the plugin.
    env.apply(&spec("[www.example.com]"));
    held_for_consent(&env, "web").await;
    assert_eq!(calls(&env, Operation::Reissue), 1);
    let out = kubectl_digicert(&env, &["allow-revocation", "web"]);
    assert!(out.contains("goes ahead"), "{out}");
    let asked = Instant::now();
    let second = env
        .wait_for("web", "the reissue after consent", PROMPTLY, |o| {
            is(o, "Ready", "True", "Issued") && serial(o) != serial(&first)
        })
        .await;
    assert!(asked.elapsed() < PROMPTLY);
    assert_eq!(calls(&env, Operation::Reissue), 2);

    // Consent with kubectl annotate, for the next drop.
    env.apply(&spec("[]"));
    let fingerprint = held_for_consent(&env, "web").await;
    assert_eq!(calls(&env, Operation::Reissue), 2);
    env.cluster.kubectl_ok(
        &[
            "annotate",
            "dco",
            "web",
            &format!("{ALLOW_REVOCATION_ANNOTATION}={fingerprint}"),
            "--overwrite",
        ],
        None,
    );
    env.wait_for("web", "the reissue after the annotation", PROMPTLY, |o| {
        is(o, "Ready", "True", "Issued") && serial(o) != serial(&second)
    })
    .await;
    assert_eq!(calls(&env, Operation::Reissue), 3);
}

/// A TLS Secret of the user's (not the operator's), with a throwaway certificate.
async fn users_tls_secret(env: &OperatorEnv, name: &str) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["example.com".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        string_data: Some(
            [
                ("tls.crt".to_string(), cert.pem()),
                ("tls.key".to_string(), key.serialize_pem()),
            ]
            .into(),
        ),
        ..Secret::default()
    };
    env.secrets()
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_secret_in_the_way_handed_over_or_deleted_is_taken_at_once() {
    let mut env = quiet_env(
        "conflict-wakes",
        vec![crate::support::order(1001), crate::support::order(1002)],
    )
    .await;
    users_tls_secret(&env, "web-tls").await;
    users_tls_secret(&env, "api-tls").await;
    start_quiet(&mut env);
    env.apply(&OperatorEnv::order_yaml("web", 1001, ""));
    env.apply(&OperatorEnv::order_yaml("api", 1002, ""));
    for name in ["web", "api"] {
        env.wait_condition(
            name,
            "Ready",
            "False",
            Some("SecretConflict"),
            Duration::from_secs(30),
        )
        .await;
    }
    assert_eq!(calls(&env, Operation::Reissue), 0);

    // Handed over with the adopt annotation: taken, and its certificate replaced.
    env.cluster.kubectl_ok(
        &[
            "annotate",
            "secret",
            "web-tls",
            "digicert-operator.dev/adopt=true",
        ],
        None,
    );
    env.wait_for("web", "Ready after the hand-over", PROMPTLY, |o| {
        is(o, "Ready", "True", "Issued")
    })
    .await;
    env.verify_secret("web-tls", &["example.com", "www.example.com"])
        .await;

    // Deleted: the order writes its own.
    env.secrets()
        .delete("api-tls", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_for("api", "Ready after the deletion", PROMPTLY, |o| {
        is(o, "Ready", "True", "Issued")
    })
    .await;
    assert_eq!(calls(&env, Operation::Reissue), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_namespace_key_that_appears_wakes_its_order() {
    let mut env = quiet_env("ns-key-wakes", vec![crate::support::order(1001)]).await;
    start_quiet(&mut env);
    env.apply(&OperatorEnv::order_yaml(
        "web",
        1001,
        "  apiKeySecretRef: {name: team-key}\n",
    ));
    let o = env
        .wait_condition(
            "web",
            "Ready",
            "False",
            Some("ApiKeyMissing"),
            Duration::from_secs(30),
        )
        .await;
    assert!(
        is(&o, "DigiCert", "False", "ApiKeyMissing"),
        "{:?}",
        o.status
    );
    env.wait_event("web", "ApiKeyMissing", Duration::from_secs(10))
        .await;
    assert_eq!(env.sim.simulator().calls().sum(), 0);
    env.put_api_key("team-key", API_KEY).await;
    env.wait_for("web", "Ready once the key is there", PROMPTLY, |o| {
        is(o, "Ready", "True", "Issued") && is(o, "DigiCert", "True", "Available")
    })
    .await;
}

async fn wait_account(
    env: &OperatorEnv,
    name: &str,
    status: &str,
    reason: &str,
    timeout: Duration,
) -> DigicertAccount {
    let deadline = Instant::now() + timeout;
    loop {
        let a = env.accounts().get(name).await.unwrap();
        let ready = a
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
        if ready.is_some_and(|c| c.status == status && c.reason == reason) {
            return a;
        }
        assert!(
            Instant::now() < deadline,
            "account {name}: want Ready={status} {reason}, have {:?}\n--- operator log ---\n{}",
            a.status,
            env.operator_logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_good_certificate_stays_ready_while_digicert_cannot_be_used() {
    let mut env = quiet_env("ready-means-secret", vec![crate::support::order(1001)]).await;
    start_quiet(&mut env);
    let account = env.account_name();
    wait_account(&env, &account, "True", "KeyFound", Duration::from_secs(30)).await;
    env.apply(&OperatorEnv::order_yaml("web", 1001, ""));
    let issued = env
        .wait_for(
            "web",
            "Ready and DigiCert=True",
            Duration::from_secs(60),
            |o| is(o, "Ready", "True", "Issued") && is(o, "DigiCert", "True", "Available"),
        )
        .await;

    // The account's key goes: the account says so at once, the order keeps Ready
    // (its Secret is as good as before) and says what is wrong elsewhere.
    env.secrets()
        .delete(API_KEY_SECRET, &DeleteParams::default())
        .await
        .unwrap();
    wait_account(&env, &account, "False", "ApiKeyMissing", PROMPTLY).await;
    let o = env
        .wait_for("web", "DigiCert=False ApiKeyMissing", PROMPTLY, |o| {
            is(o, "DigiCert", "False", "ApiKeyMissing")
        })
        .await;
    assert!(is(&o, "Ready", "True", "Issued"), "{:?}", o.status);
    env.wait_event("web", "ApiKeyMissing", Duration::from_secs(10))
        .await;

    // The key is back: both follow at once.
    env.put_api_key(API_KEY_SECRET, API_KEY).await;
    wait_account(&env, &account, "True", "KeyFound", PROMPTLY).await;
    env.wait_for("web", "DigiCert=True", PROMPTLY, |o| {
        is(o, "DigiCert", "True", "Available") && is(o, "Ready", "True", "Issued")
    })
    .await;

    // The account goes: AccountNotFound, and still Ready.
    env.accounts()
        .delete(&account, &DeleteParams::default())
        .await
        .unwrap();
    let o = env
        .wait_for("web", "DigiCert=False AccountNotFound", PROMPTLY, |o| {
            is(o, "DigiCert", "False", "AccountNotFound")
        })
        .await;
    assert!(is(&o, "Ready", "True", "Issued"), "{:?}", o.status);
    env.wait_event("web", "AccountNotFound", Duration::from_secs(10))
        .await;
    assert_eq!(serial(&o), serial(&issued));
    assert_eq!(calls(&env, Operation::Reissue), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_reissue_near_the_orders_end_says_so() {
    let mut seed = crate::support::order(1001);
    let today = time::OffsetDateTime::now_utc().date();
    seed.order_valid_till = Some(today + time::Duration::days(2));
    let mut env = quiet_env("refused-near-end", vec![seed]).await;
    env.sim
        .simulator()
        .add_fault(
            serde_json::from_value::<FaultSpec>(json!({
                "operation": "reissue", "kind": "status", "status": 400,
                "code": "cert_validity_exceeds_order_validity",
            }))
            .unwrap(),
        )
        .unwrap();
    start_quiet(&mut env);
    env.apply(&OperatorEnv::order_yaml("web", 1001, ""));
    let o = env
        .wait_for(
            "web",
            "the refusal and the plan's end",
            Duration::from_secs(30),
            |o| {
                is(o, "Ready", "False", "OrderEnding")
                    && is(o, "OrderExpiring", "True", "OrderEnding")
            },
        )
        .await;
    let ready = &condition(&o, "Ready").unwrap().message;
    let end = (today + time::Duration::days(2)).to_string();
    for part in [end.as_str(), "in 2 days", "renew the order at DigiCert"] {
        assert!(ready.contains(part), "{part}: {ready}");
    }
    assert!(is(&o, "DigiCert", "False", "OrderEnding"), "{:?}", o.status);
    assert_eq!(calls(&env, Operation::Reissue), 1);
    env.wait_event("web", "OrderEnding", Duration::from_secs(10))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_canceled_reissue_shows_the_order_issued_again() {
    let mut seed = crate::support::order(1001);
    seed.issuance_delay_seconds = 3600;
    let mut env = quiet_env("cancel-column", vec![seed]).await;
    start_quiet(&mut env);
    env.apply(&OperatorEnv::order_yaml("web", 1001, ""));
    let column = |env: &OperatorEnv| {
        env.cluster.kubectl_ok(
            &[
                "get",
                "dco",
                "web",
                "-o",
                "custom-columns=DIGICERT:.status.orderStatus",
                "--no-headers",
            ],
            None,
        )
    };
    env.wait_for(
        "web",
        "the reissue pending at DigiCert",
        Duration::from_secs(30),
        |o| o.status.as_ref().and_then(|s| s.order_status.as_deref()) == Some("reissue_pending"),
    )
    .await;
    assert_eq!(column(&env).trim(), "reissue_pending");
    kubectl_digicert(&env, &["cancel", "web"]);
    env.wait_condition(
        "web",
        "Issuing",
        "False",
        Some("Canceled"),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(column(&env).trim(), "issued");
    let at_digicert = crate::support::client(&env.sim, API_KEY)
        .order_info(1001)
        .await
        .unwrap();
    assert_eq!(at_digicert.status.to_string(), "issued");
    assert_eq!(calls(&env, Operation::UpdateOrderStatus), 1);
}

/// The operator binary of a second release: its own namespace (and key Secrets),
/// serving only the accounts that name it.
fn second_operator(env: &OperatorEnv, namespace: &str) -> OperatorProcess {
    let args = [
        "run",
        "--certcentral-url",
        &env.sim.base_url(),
        "--ca-bundle",
        &env.ca_file.path().display().to_string(),
        "--namespace",
        namespace,
        "--watch-namespace",
        &env.cluster.namespace,
        "--serve-unassigned=false",
        "--access-recheck",
        "2s",
        "--health-addr",
        "127.0.0.1:0",
    ]
    .map(String::from);
    OperatorProcess::start(
        &args,
        &[
            ("KUBECONFIG", env.cluster.kubeconfig.as_os_str()),
            ("LOG_LEVEL", OsStr::new("info,digicert_operator=debug")),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_operators_in_one_cluster_each_serve_their_own_accounts() {
    let mut env = OperatorEnv::new(
        "two-releases",
        vec![crate::support::order(1001), crate::support::order(1002)],
    )
    .await;
    // The second release: its own namespace, key Secret and account.
    let second = env.cluster.other_namespace("b").await;
    let key: Secret = serde_json::from_value(json!({
        "metadata": {"name": "second-key"},
        "stringData": {"api-key": API_KEY},
    }))
    .unwrap();
    Api::<Secret>::namespaced(env.cluster.client.clone(), &second)
        .create(&PostParams::default(), &key)
        .await
        .unwrap();
    let selector = json!({"matchLabels": {"kubernetes.io/metadata.name": env.cluster.namespace}});
    let second_account = format!("{}-second", env.cluster.namespace);
    env.put_account(
        &second_account,
        &env.sim.base_url(),
        Some(env.sim.ca_pem()),
        "second-key",
        json!({"namespaceSelector": selector, "operatorNamespace": second}),
    )
    .await;
    env.start_operator();
    let mut other = second_operator(&env, &second);
    env.apply(&OperatorEnv::order_yaml("first", 1001, ""));
    env.apply(&OperatorEnv::order_yaml(
        "second",
        1002,
        &format!("  accountRef: {{name: {second_account}}}\n"),
    ));
    let first = env.wait_ready("first").await;
    let o = env.wait_ready("second").await;
    assert_eq!(
        first.status.as_ref().unwrap().account.as_deref(),
        Some(env.account_name().as_str())
    );
    assert_eq!(
        o.status.as_ref().unwrap().account.as_deref(),
        Some(second_account.as_str())
    );
    let first_account = env.account_name();
    wait_account(&env, &first_account, "True", "KeyFound", PROMPTLY).await;
    let a = wait_account(&env, &second_account, "True", "KeyFound", PROMPTLY).await;
    let message = &a.status.unwrap().conditions[0].message;
    assert!(
        message.contains(&format!("{second}/second-key")),
        "{message}"
    );

    // Side by side for a while, with each operator looking every 2 s: no operator
    // writes the other's account or order (it would find no key of that name in its
    // own namespace and say so).
    let end = Instant::now() + Duration::from_secs(8);
    while Instant::now() < end {
        for (account, _) in [(&first_account, ()), (&second_account, ())] {
            let a = env.accounts().get(account).await.unwrap();
            let ready = a.status.unwrap().conditions;
            assert!(
                ready
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True"),
                "{account}: {ready:?}"
            );
        }
        for name in ["first", "second"] {
            let o = env.orders().get(name).await.unwrap();
            assert!(is(&o, "Ready", "True", "Issued"), "{name}: {:?}", o.status);
            assert_eq!(o.status.as_ref().unwrap().revision, 1, "{name}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(other.is_running(), "{}", other.logs());
    assert_eq!(calls(&env, Operation::Reissue), 2);
    other.terminate(Duration::from_secs(10));
}
