//! The operator end to end through a certificate's life: key types, auto-reissue,
//! renewal, pending and approved reissues, reissues DigiCert makes by itself,
//! deletion, failures and specs the API server let through.

use std::time::{Duration, Instant};

use crate::support::env::{API_KEY, API_KEY_SECRET, OperatorEnv, condition};
use certcentral_sim::OrderSeed;
use digicert_operator::certcentral::Operation;
use digicert_operator::crd::DigicertOrder;
use digicert_operator::keys::{self, KeyKind};
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

const NAMES: &[&str] = &["example.com", "www.example.com"];

/// What the tests that reuse a PKCS#1/SEC 1 key check, shown when they fail.
const NEVER_BUG: &str = "rotationPolicy Never must reuse a PKCS1-encoded tls.key: the kept key \
     (and the CSR made with it) must read back and the issued certificate must be written";

/// What the renewal-request tests check, shown when they fail.
const RENEW_BUG: &str = "a renewal requested while a certificate is being obtained is answered by \
     that certificate, not by a second reissue";

/// An order seed (issued, Multi-year Plan) with its settings changed by `change`.
fn seed(id: u64, change: impl FnOnce(&mut OrderSeed)) -> OrderSeed {
    let mut s = crate::support::order(id);
    change(&mut s);
    s
}

/// Waits until `check` holds (it looks at the simulator, not the cluster).
async fn wait_until(env: &OperatorEnv, what: &str, timeout: Duration, check: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n--- operator log ---\n{}",
            env.operator_logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn calls(env: &OperatorEnv, op: Operation) -> u64 {
    env.sim.simulator().calls().total(op)
}

/// The simulator's record of an order: the order, its certificates and requests.
fn record(env: &OperatorEnv, id: u64) -> Value {
    env.sim
        .simulator()
        .order_record(id)
        .unwrap_or_else(|| panic!("order {id} exists at the simulator"))
}

/// The certificates of an order that are not its initial one, oldest first.
fn reissues(env: &OperatorEnv, id: u64) -> Vec<Value> {
    record(env, id)["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["origin"] != "initial")
        .cloned()
        .collect()
}

fn auto_reissue_at_digicert(env: &OperatorEnv, id: u64) -> bool {
    record(env, id)["order"]["auto_reissue"].as_bool().unwrap()
}

async fn patch_spec(env: &OperatorEnv, name: &str, spec: Value) {
    env.orders()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": spec })),
        )
        .await
        .unwrap();
}

async fn request_renewal(env: &OperatorEnv, name: &str, value: &str) {
    env.orders()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({
                "metadata": {"annotations": {"digicert-operator.dev/renew": value}}
            })),
        )
        .await
        .unwrap();
}

fn revision(o: &DigicertOrder) -> u32 {
    o.status.as_ref().map_or(0, |s| s.revision)
}

fn has_condition(o: &DigicertOrder, type_: &str, status: &str, reason: &str) -> bool {
    condition(o, type_).is_some_and(|c| c.status == status && c.reason == reason)
}

fn is_ready(o: &DigicertOrder) -> bool {
    condition(o, "Ready").is_some_and(|c| c.status == "True")
}

fn public_key(key_pem: &str) -> Vec<u8> {
    keys::public_key_bits(&keys::parse_private_key(key_pem).expect("tls.key parses"))
}

/// Everything the operator said in the namespace: events and DigicertOrder statuses.
async fn events_and_statuses(env: &OperatorEnv) -> String {
    let events: Api<Event> = env.cluster.api();
    let events = events.list(&ListParams::default()).await.unwrap();
    let orders = env.orders().list(&ListParams::default()).await.unwrap();
    let statuses: Vec<_> = orders.items.iter().map(|o| o.status.clone()).collect();
    format!(
        "{}\n{}",
        serde_json::to_string(&events.items).unwrap(),
        serde_json::to_string(&statuses).unwrap()
    )
}

/// The operator's events in the namespace, counted by object and reason
/// (`web/Normal/CertificateIssued: 2`).
async fn event_summary(env: &OperatorEnv) -> String {
    let events: Api<k8s_openapi::api::events::v1::Event> = env.cluster.api();
    let mut counts = std::collections::BTreeMap::<String, i32>::new();
    for e in events.list(&ListParams::default()).await.unwrap().items {
        let key = format!(
            "{}/{}/{}",
            e.regarding.and_then(|r| r.name).unwrap_or_default(),
            e.type_.unwrap_or_default(),
            e.reason.unwrap_or_default()
        );
        *counts.entry(key).or_default() += e.series.map_or(1, |s| s.count.max(1));
    }
    counts
        .iter()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits for `revision` of the certificate Secret; on timeout says what the operator
/// did meanwhile (status, events) and what it holds as `bug` text.
async fn wait_revision(
    env: &OperatorEnv,
    name: &str,
    revision_wanted: u32,
    timeout: Duration,
    bug: &str,
) -> DigicertOrder {
    let deadline = Instant::now() + timeout;
    loop {
        let o = env.orders().get(name).await.unwrap();
        if revision(&o) >= revision_wanted {
            return o;
        }
        if Instant::now() >= deadline {
            panic!(
                "{bug}\n{name} did not reach revision {revision_wanted}\nstatus: {}\nevents:\n{}\nDigiCert calls: {:?}",
                serde_json::to_string_pretty(&o.status).unwrap(),
                event_summary(env).await,
                env.sim.simulator().calls()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---- key types ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ecdsa_orders_get_p256_and_p384_keys_in_the_asked_encoding() {
    let mut env = OperatorEnv::new(
        "ecdsa",
        vec![crate::support::order(1001), crate::support::order(1002)],
    )
    .await;
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml(
        "p256",
        1001,
        "  privateKey:\n    algorithm: ECDSA\n",
    ));
    env.apply(&OperatorEnv::order_yaml(
        "p384",
        1002,
        "  privateKey:\n    algorithm: ECDSA\n    size: 384\n    encoding: PKCS8\n",
    ));
    for (name, bits, header) in [
        ("p256", 256, "-----BEGIN EC PRIVATE KEY-----"),
        ("p384", 384, "-----BEGIN PRIVATE KEY-----"),
    ] {
        let order = env.wait_ready(name).await;
        let secret = env.verify_secret(&format!("{name}-tls"), NAMES).await;
        assert!(
            secret.key_pem.starts_with(header),
            "{name}: tls.key is {}",
            secret.key_pem.lines().next().unwrap_or_default()
        );
        let key = keys::parse_private_key(&secret.key_pem).unwrap();
        assert_eq!(keys::kind_of(&key), KeyKind::Ecdsa(bits), "{name}");
        assert_eq!(secret.leaf.key, KeyKind::Ecdsa(bits), "{name}");
        assert_eq!(revision(&order), 1, "{name}");
    }
    // DigiCert got the same key kinds.
    for (id, bits) in [(1001, 256), (1002, 384)] {
        let r = reissues(&env, id);
        assert_eq!(r.len(), 1, "order {id}: {r:?}");
        assert_eq!(
            r[0]["key"],
            serde_json::to_value(KeyKind::Ecdsa(bits)).unwrap(),
            "order {id}"
        );
    }
    assert_eq!(calls(&env, Operation::Reissue), 2);
}

// ---- auto-reissue ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn auto_reissue_is_mirrored_both_ways_and_drift_is_corrected() {
    let mut env = OperatorEnv::new("auto-reissue", vec![crate::support::order(1001)]).await;
    env.operator_args = vec!["--resync".into(), "3s".into()];
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml(
        "web",
        1001,
        "  autoReissue: true\n",
    ));
    env.wait_ready("web").await;
    env.wait_for(
        "web",
        "status.autoReissue true",
        Duration::from_secs(30),
        |o| {
            o.status.as_ref().and_then(|s| s.auto_reissue) == Some(true)
                && has_condition(o, "AutoReissueSynced", "True", "Synced")
        },
    )
    .await;
    assert!(auto_reissue_at_digicert(&env, 1001), "on at DigiCert");
    assert_eq!(calls(&env, Operation::UpdateAutoReissue), 1);

    // Off again.
    patch_spec(&env, "web", json!({"autoReissue": false})).await;
    let o = env
        .wait_for(
            "web",
            "status.autoReissue false",
            Duration::from_secs(30),
            |o| o.status.as_ref().and_then(|s| s.auto_reissue) == Some(false),
        )
        .await;
    let synced = condition(&o, "AutoReissueSynced").expect("AutoReissueSynced");
    assert_eq!(synced.status, "True");
    assert_eq!(synced.observed_generation, o.metadata.generation);
    assert!(!auto_reissue_at_digicert(&env, 1001), "off at DigiCert");
    assert_eq!(calls(&env, Operation::UpdateAutoReissue), 2);

    // Somebody turns it on in CertCentral: the next resync turns it off again.
    crate::support::client(&env.sim, API_KEY)
        .set_auto_reissue(1001, true)
        .await
        .unwrap();
    assert!(auto_reissue_at_digicert(&env, 1001));
    wait_until(
        &env,
        "the operator to turn auto-reissue off again",
        Duration::from_secs(20),
        || !auto_reissue_at_digicert(&env, 1001),
    )
    .await;
    // Ours, then exactly one correction; and no more over the next resyncs.
    assert_eq!(calls(&env, Operation::UpdateAutoReissue), 4);
    let looks = env
        .order_checks_during(
            "web",
            time::OffsetDateTime::now_utc(),
            Duration::from_secs(7),
        )
        .await;
    assert!(looks.len() >= 2, "resyncs in 7 s: {looks:?}");
    assert_eq!(calls(&env, Operation::UpdateAutoReissue), 4);
    assert!(!auto_reissue_at_digicert(&env, 1001));
    let o = env.orders().get("web").await.unwrap();
    assert_eq!(o.status.as_ref().unwrap().auto_reissue, Some(false));
    assert!(is_ready(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn auto_reissue_on_an_order_without_a_plan_is_refused_once() {
    let order = seed(1001, |s| s.multi_year_plan = false);
    let mut env = OperatorEnv::new("auto-reissue-unsupported", vec![order]).await;
    env.operator_args = vec!["--resync".into(), "3s".into()];
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml(
        "web",
        1001,
        "  autoReissue: true\n",
    ));
    env.wait_ready("web").await;
    let o = env
        .wait_condition(
            "web",
            "AutoReissueSynced",
            "False",
            Some("NotSupported"),
            Duration::from_secs(30),
        )
        .await;
    let message = &condition(&o, "AutoReissueSynced").unwrap().message;
    assert!(message.contains("auto_reissue_not_supported"), "{message}");
    assert_eq!(calls(&env, Operation::UpdateAutoReissue), 1);
    let order_infos = calls(&env, Operation::OrderInfo);

    // Four resync periods: the order is looked at, the refusal is not asked again.
    env.holds_for("web", "Ready", Duration::from_secs(12), is_ready)
        .await;
    assert_eq!(calls(&env, Operation::UpdateAutoReissue), 1);
    assert!(
        calls(&env, Operation::OrderInfo) >= order_infos + 2,
        "the operator resyncs: {:?}",
        env.sim.simulator().calls()
    );
    let o = env.orders().get("web").await.unwrap();
    assert!(has_condition(
        &o,
        "AutoReissueSynced",
        "False",
        "NotSupported"
    ));
    assert_eq!(o.status.as_ref().unwrap().auto_reissue, Some(false));
    assert!(!auto_reissue_at_digicert(&env, 1001));
}

// ---- renewal ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn short_lived_certificates_renew_at_a_third_of_their_lifetime() {
    let short = |id| seed(id, |s| s.certificate_validity_seconds = Some(30));
    let mut env = OperatorEnv::new("renewal", vec![short(1001), short(1002)]).await;
    // Frequent looks at the orders: the quiet window below sees some.
    env.operator_args = vec!["--resync".into(), "2s".into()];
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml("always", 1001, ""));
    env.apply(&OperatorEnv::order_yaml(
        "never",
        1002,
        "  privateKey:\n    rotationPolicy: Never\n",
    ));
    let mut first = Vec::new();
    for name in ["always", "never"] {
        let o = env.wait_ready(name).await;
        assert_eq!(revision(&o), 1);
        let renewal = o.status.as_ref().unwrap().renewal_time.clone().unwrap();
        let cert = o.status.as_ref().unwrap().certificate.clone().unwrap();
        let not_before = digicert_operator::controller::status::offset(&cert.not_before);
        let renewal = digicert_operator::controller::status::offset(&renewal);
        assert_eq!(
            (renewal - not_before).whole_seconds(),
            20,
            "{name}: renewal when a third of 30 s is left"
        );
        first.push(env.verify_secret(&format!("{name}-tls"), NAMES).await);
    }

    for (i, (name, id)) in [("always", 1001), ("never", 1002)].into_iter().enumerate() {
        let bug = if name == "never" { NEVER_BUG } else { "" };
        let o = wait_revision(&env, name, 2, Duration::from_secs(30), bug).await;
        assert_eq!(revision(&o), 2, "{name}");
        assert!(is_ready(&o), "{name}");
        let second = env.verify_secret(&format!("{name}-tls"), NAMES).await;
        assert_ne!(second.leaf.serial_number, first[i].leaf.serial_number);
        assert_eq!(
            o.status
                .as_ref()
                .unwrap()
                .certificate
                .as_ref()
                .unwrap()
                .serial_number,
            second.leaf.serial_number
        );
        if name == "always" {
            assert_ne!(public_key(&second.key_pem), public_key(&first[i].key_pem));
        } else {
            assert_eq!(second.key_pem, first[i].key_pem, "the same tls.key");
        }
        assert_eq!(reissues(&env, id).len(), 2, "one reissue per certificate");
    }
    // No further reissue until the next renewal is due, though the operator keeps
    // reading both orders at DigiCert.
    let since = time::OffsetDateTime::now_utc();
    let window = Duration::from_secs(4);
    let looks = tokio::join!(
        env.order_checks_during("always", since, window),
        env.order_checks_during("never", since, window)
    );
    assert!(
        !looks.0.is_empty() && !looks.1.is_empty(),
        "looks at always and never in {window:?}: {looks:?}"
    );
    for (name, id) in [("always", 1001), ("never", 1002)] {
        assert_eq!(
            revision(&env.orders().get(name).await.unwrap()),
            2,
            "{name}"
        );
        assert_eq!(reissues(&env, id).len(), 2, "{name}");
    }
    assert_eq!(calls(&env, Operation::Reissue), 4);
}

// ---- pending and delayed reissues ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_spec_change_cancels_the_pending_reissue_and_starts_one_for_the_new_names() {
    let order = seed(1001, |s| s.issuance_delay_seconds = 3600);
    let mut env = OperatorEnv::new("spec-change-pending", vec![order]).await;
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml("web", 1001, ""));
    env.wait_condition(
        "web",
        "Issuing",
        "True",
        Some("ValidationPending"),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(calls(&env, Operation::Reissue), 1);

    patch_spec(
        &env,
        "web",
        json!({"dnsNames": ["www.example.com", "api.example.com"]}),
    )
    .await;
    wait_until(&env, "a second reissue", Duration::from_secs(30), || {
        calls(&env, Operation::Reissue) >= 2
    })
    .await;
    env.wait_for(
        "web",
        "the new reissue pending",
        Duration::from_secs(30),
        |o| {
            has_condition(o, "Issuing", "True", "ValidationPending")
                && o.status.as_ref().and_then(|s| s.observed_generation) == o.metadata.generation
        },
    )
    .await;
    let r = reissues(&env, 1001);
    assert_eq!(r.len(), 2, "{r:#?}");
    assert_eq!(r[0]["status"], "rejected", "the first reissue was canceled");
    assert_eq!(r[1]["status"], "pending");
    let mut names: Vec<&str> = r[1]["dns_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["api.example.com", "example.com", "www.example.com"]);

    env.sim
        .simulator()
        .advance_clock(time::Duration::seconds(3601));
    let o = env.wait_ready("web").await;
    assert_eq!(revision(&o), 1);
    let names = ["example.com", "www.example.com", "api.example.com"];
    env.verify_secret_at_sim_time("web-tls", &names).await;
    assert_eq!(calls(&env, Operation::UpdateOrderStatus), 1, "one cancel");
    assert_eq!(calls(&env, Operation::Reissue), 2, "two reissues in all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delayed_issuance_is_waited_for() {
    let order = seed(1001, |s| s.issuance_delay_seconds = 600);
    let mut env = OperatorEnv::new("delayed", vec![order]).await;
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml("web", 1001, ""));
    let o = env
        .wait_condition(
            "web",
            "Issuing",
            "True",
            Some("ValidationPending"),
            Duration::from_secs(60),
        )
        .await;
    assert!(!is_ready(&o));
    assert_eq!(
        o.status.as_ref().unwrap().order_status.as_deref(),
        Some("reissue_pending")
    );
    // It waits, polling, without asking again.
    env.holds_for("web", "not Ready", Duration::from_secs(6), |o| {
        !is_ready(o) && condition(o, "Issuing").is_some_and(|c| c.status == "True")
    })
    .await;
    assert_eq!(calls(&env, Operation::Reissue), 1);

    env.sim
        .simulator()
        .advance_clock(time::Duration::seconds(601));
    let o = env.wait_ready("web").await;
    assert_eq!(revision(&o), 1);
    assert_eq!(condition(&o, "Issuing").unwrap().status, "False");
    env.verify_secret_at_sim_time("web-tls", NAMES).await;
    assert_eq!(calls(&env, Operation::Reissue), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reissues_that_need_approval_wait_unless_the_operator_may_approve() {
    let approval = |id| seed(id, |s| s.approval_required = true);
    let mut env = OperatorEnv::new("approval", vec![approval(1001), approval(1002)]).await;
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml(
        "approved",
        1002,
        "  approveReissues: true\n",
    ));
    env.apply(&OperatorEnv::order_yaml("waiting", 1001, ""));

    env.wait_ready("approved").await;
    env.verify_secret("approved-tls", NAMES).await;
    let o = env
        .wait_condition(
            "waiting",
            "Issuing",
            "True",
            Some("NeedsApproval"),
            Duration::from_secs(60),
        )
        .await;
    let message = &condition(&o, "Issuing").unwrap().message;
    assert!(message.contains("approval"), "{message}");
    assert_eq!(calls(&env, Operation::UpdateRequestStatus), 1);

    // Several polls later it still waits, and nothing was approved for it.
    env.holds_for(
        "waiting",
        "Issuing=True NeedsApproval",
        Duration::from_secs(11),
        |o| !is_ready(o) && has_condition(o, "Issuing", "True", "NeedsApproval"),
    )
    .await;
    assert_eq!(calls(&env, Operation::UpdateRequestStatus), 1);
    let requests = record(&env, 1001)["requests"].clone();
    assert_eq!(requests[0]["status"], "pending", "{requests:#}");

    // Allowed now: the operator approves and the certificate comes.
    patch_spec(&env, "waiting", json!({"approveReissues": true})).await;
    env.wait_ready("waiting").await;
    env.verify_secret("waiting-tls", NAMES).await;
    let all = env.sim.simulator().calls();
    assert_eq!(all.total(Operation::UpdateRequestStatus), 2, "{all:?}");
    assert_eq!(all.outcome(Operation::UpdateRequestStatus, "204"), 2);
    assert_eq!(all.total(Operation::Reissue), 2, "{all:?}");
    let requests = record(&env, 1001)["requests"].clone();
    assert_eq!(requests[0]["status"], "approved", "{requests:#}");
}

// ---- reissues DigiCert makes by itself ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_certificate_digicert_auto_reissued_is_picked_up_with_the_same_key() {
    let order = seed(1001, |s| {
        s.certificate_validity_seconds = Some(864_000);
        s.auto_reissue_window_seconds = Some(259_200);
    });
    let mut env = OperatorEnv::new("auto-reissue-pickup", vec![order]).await;
    env.operator_args = vec!["--resync".into(), "2s".into()];
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml(
        "web",
        1001,
        "  autoReissue: true\n",
    ));
    env.wait_ready("web").await;
    env.wait_for("web", "auto-reissue on", Duration::from_secs(30), |o| {
        o.status.as_ref().and_then(|s| s.auto_reissue) == Some(true)
    })
    .await;
    assert!(auto_reissue_at_digicert(&env, 1001));
    let before = env.verify_secret("web-tls", NAMES).await;
    assert_eq!(calls(&env, Operation::Reissue), 1);

    // Eight days on, DigiCert is inside its three-day window and reissues with the
    // previous CSR.
    env.sim.simulator().advance_clock(time::Duration::days(8));
    let r = reissues(&env, 1001);
    assert_eq!(r.len(), 2, "{r:#?}");
    assert_eq!(r[1]["origin"], "auto_reissue");
    assert_eq!(r[1]["status"], "issued");

    let o = wait_revision(&env, "web", 2, Duration::from_secs(30), "").await;
    assert_eq!(revision(&o), 2);
    assert!(is_ready(&o));
    let after = env.verify_secret_at_sim_time("web-tls", NAMES).await;
    assert_ne!(after.leaf.serial_number, before.leaf.serial_number);
    assert_eq!(after.key_pem, before.key_pem, "tls.key is byte-identical");
    let status = o.status.as_ref().unwrap();
    assert_eq!(
        status.certificate.as_ref().unwrap().id,
        r[1]["id"].as_u64().unwrap()
    );
    assert_eq!(
        after.annotations["digicert-operator.dev/certificate-id"],
        r[1]["id"].to_string()
    );
    // The operator asked for nothing: still its one reissue.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(calls(&env, Operation::Reissue), 1);
    assert_eq!(reissues(&env, 1001).len(), 2);
    assert_eq!(revision(&env.orders().get("web").await.unwrap()), 2);
}

// ---- deletion ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deletion_retains_by_default_and_cancels_a_pending_reissue_when_asked() {
    let pending = seed(1002, |s| s.issuance_delay_seconds = 3600);
    let mut env = OperatorEnv::new("deletion", vec![crate::support::order(1001), pending]).await;
    env.operator_args = vec!["--secret-owner-references".into()];
    env.start_operator();

    // Retain (the default).
    env.apply(&OperatorEnv::order_yaml("kept", 1001, ""));
    let o = env.wait_ready("kept").await;
    let secret = env.secrets().get("kept-tls").await.unwrap();
    let owners = secret.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert_eq!(owners[0].kind, "DigicertOrder");
    assert_eq!(owners[0].api_version, "digicert-operator.dev/v1alpha1");
    assert_eq!(owners[0].name, "kept");
    assert_eq!(Some(&owners[0].uid), o.metadata.uid.as_ref());
    assert_eq!(owners[0].controller, Some(true));
    env.orders()
        .delete("kept", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&env, "kept").await;
    assert_eq!(calls(&env, Operation::UpdateOrderStatus), 0);
    assert!(env.secrets().get_opt("kept-tls").await.unwrap().is_some());
    assert_eq!(record(&env, 1001)["order"]["status"], "issued");

    // CancelPending with a reissue pending at DigiCert.
    env.apply(&OperatorEnv::order_yaml(
        "canceled",
        1002,
        "  deletionPolicy: CancelPending\n",
    ));
    env.wait_condition(
        "canceled",
        "Issuing",
        "True",
        Some("ValidationPending"),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(record(&env, 1002)["order"]["status"], "reissue_pending");
    env.orders()
        .delete("canceled", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&env, "canceled").await;
    assert_eq!(calls(&env, Operation::UpdateOrderStatus), 1);
    let r = reissues(&env, 1002);
    assert_eq!(r.len(), 1, "{r:#?}");
    assert_eq!(r[0]["status"], "rejected");
    assert_eq!(record(&env, 1002)["order"]["status"], "issued");
    assert!(
        env.secrets()
            .get_opt("canceled-pending-key")
            .await
            .unwrap()
            .is_none(),
        "the pending key is deleted"
    );
    assert!(
        env.secrets()
            .get_opt("canceled-tls")
            .await
            .unwrap()
            .is_none()
    );
}

async fn wait_gone(env: &OperatorEnv, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while env.orders().get_opt(name).await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "{name} is still there\n--- operator log ---\n{}",
            env.operator_logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---- failures ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wrong_api_key_fails_slowly_and_quietly_until_it_is_fixed() {
    const WRONG: &str = "WRONG-KEY-8f3a1c7e2b6d4a90";
    let mut env = OperatorEnv::new("wrong-key", vec![crate::support::order(1001)]).await;
    env.put_api_key(API_KEY_SECRET, WRONG).await;
    env.start_operator();
    let started = Instant::now();
    env.apply(&OperatorEnv::order_yaml("web", 1001, ""));
    let o = env
        .wait_condition(
            "web",
            "Ready",
            "False",
            Some("InvalidApiKey"),
            Duration::from_secs(60),
        )
        .await;
    let message = &condition(&o, "Ready").unwrap().message;
    assert!(
        message.contains("access_denied|invalid_api_key"),
        "{message}"
    );
    assert!(o.status.as_ref().unwrap().next_attempt_time.is_some());

    // Fifteen seconds later DigiCert has heard from it at most twice.
    let waited = Duration::from_secs(15).saturating_sub(started.elapsed());
    tokio::time::sleep(waited).await;
    let all = env.sim.simulator().calls();
    assert!(all.about_orders() <= 2, "{all:?}");
    // The first call (the order's names, before any reissue) was refused.
    assert!(all.all_with_outcome("401") >= 1, "{all:?}");
    assert_eq!(all.outcome(Operation::Reissue, "200"), 0, "{all:?}");

    let said = events_and_statuses(&env).await;
    assert!(
        said.contains("InvalidApiKey"),
        "the events are there: {said}"
    );
    assert!(!said.contains(WRONG), "the key leaks into events or status");
    assert!(
        !env.operator_logs().contains(WRONG),
        "the key leaks into the log"
    );

    // The right key, and a nudge.
    env.put_api_key(API_KEY_SECRET, API_KEY).await;
    request_renewal(&env, "web", "after-key-fix").await;
    let o = env.wait_ready("web").await;
    assert_eq!(revision(&o), 1);
    env.verify_secret("web-tls", NAMES).await;
    let status = o.status.as_ref().unwrap();
    assert_eq!(status.failed_attempts, 0);
    assert!(status.next_attempt_time.is_none());
    // The nudge was the renewal it asked for: no second certificate follows.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let o = env.orders().get("web").await.unwrap();
    assert_eq!(revision(&o), 1, "{RENEW_BUG}");
    assert_eq!(reissues(&env, 1001).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unknown_order_is_reported_without_hammering_digicert() {
    let mut env = OperatorEnv::new("unknown-order", vec![crate::support::order(1001)]).await;
    env.start_operator();
    let started = Instant::now();
    env.apply(&OperatorEnv::order_yaml("web", 4242, ""));
    let o = env
        .wait_condition(
            "web",
            "Ready",
            "False",
            Some("OrderNotFound"),
            Duration::from_secs(60),
        )
        .await;
    let message = &condition(&o, "Ready").unwrap().message;
    assert!(message.contains("not_found|order"), "{message}");
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(started.elapsed())).await;
    let all = env.sim.simulator().calls();
    assert!(all.about_orders() <= 2, "{all:?}");
    assert!(env.secrets().get_opt("web-tls").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_api_key_secret_makes_no_calls_until_it_exists() {
    let mut env = OperatorEnv::new("missing-key", vec![crate::support::order(1001)]).await;
    env.secrets()
        .delete(API_KEY_SECRET, &DeleteParams::default())
        .await
        .unwrap();
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml("web", 1001, ""));
    let o = env
        .wait_condition(
            "web",
            "Ready",
            "False",
            Some("ApiKeyMissing"),
            Duration::from_secs(60),
        )
        .await;
    let message = &condition(&o, "Ready").unwrap().message;
    assert!(message.contains(API_KEY_SECRET), "{message}");
    env.holds_for("web", "ApiKeyMissing", Duration::from_secs(3), |o| {
        has_condition(o, "Ready", "False", "ApiKeyMissing")
    })
    .await;
    let all = env.sim.simulator().calls();
    assert_eq!(all.sum(), 0, "{all:?}");

    env.put_api_key(API_KEY_SECRET, API_KEY).await;
    request_renewal(&env, "web", "key-created").await;
    let o = env.wait_ready("web").await;
    assert_eq!(revision(&o), 1);
    env.verify_secret("web-tls", NAMES).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let o = env.orders().get("web").await.unwrap();
    assert_eq!(revision(&o), 1, "{RENEW_BUG}");
    assert_eq!(calls(&env, Operation::Reissue), 1);
}

// ---- specs the API server lets through ----

// The server refuses what the CRD's rules and bounds catch (tests/e2e/crd.rs); what
// they cannot say (a DNS label over 63 characters, a duration past any clock) the
// operator refuses itself, before any DigiCert call.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn specs_the_server_takes_but_the_operator_cannot_use_are_reported_without_calls() {
    let mut env = OperatorEnv::new("invalid-spec", vec![crate::support::order(1001)]).await;
    env.start_operator();
    let label = "a".repeat(64);
    // (name, dnsNames, more spec, the operator's message)
    let cases = [
        (
            "long-label",
            format!("[www.example.com, {label}.example.com]"),
            "",
            format!("\"{label}.example.com\" is not a DNS name"),
        ),
        (
            "huge-renewal",
            "[www.example.com]".to_string(),
            "  renewBefore: 99999999999999999999999h\n",
            "is not a duration".to_string(),
        ),
    ];
    for (name, dns_names, extra, message) in &cases {
        let yaml = format!(
            "apiVersion: digicert-operator.dev/v1alpha1\nkind: DigicertOrder\nmetadata:\n  name: {name}\nspec:\n  orderId: 1001\n  commonName: example.com\n  dnsNames: {dns_names}\n  secretName: {name}-tls\n{extra}"
        );
        env.apply(&yaml);
        let o = env
            .wait_condition(
                name,
                "Ready",
                "False",
                Some("InvalidSpec"),
                Duration::from_secs(30),
            )
            .await;
        let text = &condition(&o, "Ready").unwrap().message;
        assert!(text.contains(message.as_str()), "{name}: {text}");
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all = env.sim.simulator().calls();
    assert_eq!(all.sum(), 0, "{all:?}");
    assert!(
        env.secrets()
            .get_opt("long-label-tls")
            .await
            .unwrap()
            .is_none()
    );

    // Corrected, it gets its certificate.
    patch_spec(&env, "long-label", json!({"dnsNames": ["www.example.com"]})).await;
    env.wait_ready("long-label").await;
    env.verify_secret("long-label-tls", NAMES).await;
    assert_eq!(calls(&env, Operation::Reissue), 1);
}

// ---- manual renewal ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_manual_renewal_keeps_the_key_and_the_secret_template_applies() {
    let mut env = OperatorEnv::new("manual-renew", vec![crate::support::order(1001)]).await;
    env.start_operator();
    let template = "  privateKey:\n    algorithm: ECDSA\n    rotationPolicy: Never\n  secretTemplate:\n    labels:\n      team: web\n    annotations:\n      example.com/owner: alice\n";
    env.apply(&OperatorEnv::order_yaml("web", 1001, template));
    env.wait_ready("web").await;
    let first = env.verify_secret("web-tls", NAMES).await;
    assert_eq!(first.labels["team"], "web");
    assert_eq!(first.labels["digicert-operator.dev/order-name"], "web");
    assert_eq!(first.annotations["example.com/owner"], "alice");

    request_renewal(&env, "web", "2030-01-01T00:00:00Z").await;
    let o = wait_revision(&env, "web", 2, Duration::from_secs(30), NEVER_BUG).await;
    assert!(is_ready(&o));
    assert_eq!(
        o.status.as_ref().unwrap().last_renew_request.as_deref(),
        Some("2030-01-01T00:00:00Z")
    );
    let second = env.verify_secret("web-tls", NAMES).await;
    assert_ne!(second.leaf.serial_number, first.leaf.serial_number);
    assert_eq!(second.key_pem, first.key_pem, "the same tls.key");
    assert_eq!(second.labels["team"], "web");
    assert_eq!(second.annotations["example.com/owner"], "alice");
    assert_eq!(
        second.annotations["digicert-operator.dev/serial-number"],
        second.leaf.serial_number
    );
    // One renewal for one request.
    env.holds_for("web", "revision 2", Duration::from_secs(5), |o| {
        revision(o) == 2 && is_ready(o)
    })
    .await;
    assert_eq!(calls(&env, Operation::Reissue), 2);
}
