//! The cert-manager external issuer end to end: cert-manager's CRDs on the real API
//! server (derived from the k8s-crds-cert-manager crate's types, see
//! `hack/cert-manager-crds.sh`), the test in cert-manager's part (it makes the
//! `Certificate`, the key and the CSR, creates the `CertificateRequest` with the
//! annotations and owner cert-manager sets, and approves or denies it through the
//! status subresource as cert-manager's approver does), the operator binary, and the
//! simulator over HTTPS.

use std::time::{Duration, Instant};

use crate::support::certmanager::{Cm, issuer_spec, ready};
use crate::support::env::OperatorEnv;
use base64::Engine;
use certcentral_sim::OrderSeed;
use digicert_operator::certcentral::Operation;
use digicert_operator::certmanager::{Certificate, CertificateRequest};
use digicert_operator::keys::{self, KeyKind};
use k8s_openapi::api::coordination::v1::Lease;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const NAMES: &[&str] = &["example.com", "www.example.com"];

/// The request of the Certificate `web` for the names, through the DigicertIssuer
/// `digicert`, approved.
async fn approved_web(env: &Cm, ns: &str) -> (String, keys::CsrInfo) {
    env.approved_request(
        ns,
        "web",
        1,
        ("DigicertIssuer", "digicert"),
        NAMES,
        json!({}),
    )
    .await
}

/// A request through the DigicertIssuer `manual` (for `order`, whose reissues need
/// approval at DigiCert), approved by cert-manager and pending at DigiCert. Its name.
async fn waiting_for_approval(env: &Cm, ns: &str, order: u64) -> String {
    env.issuer(ns, "manual", issuer_spec(env, json!({"orderId": order})));
    let (name, _) = env
        .approved_request(
            ns,
            "approval",
            1,
            ("DigicertIssuer", "manual"),
            NAMES,
            json!({}),
        )
        .await;
    env.wait_pending(ns, &name, "waits for approval at DigiCert")
        .await;
    name
}

fn seed(id: u64, change: impl FnOnce(&mut OrderSeed)) -> OrderSeed {
    let mut s = crate::support::order(id);
    change(&mut s);
    s
}

// ---- the contract ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_approved_request_gets_its_certificate_by_one_reissue_of_the_order() {
    const ORDER: u64 = 7101;
    let (env, ns) = Cm::with_issuer("cm-reissue", ORDER).await;
    let (reason, message) = env
        .issuer_ready("digicertissuer", Some(&ns), "digicert", "True")
        .await;
    assert_eq!(reason, "OrderReady", "{message}");

    let (name, csr) = env
        .certificate_request(
            &ns,
            "web",
            1,
            ("DigicertIssuer", "digicert"),
            NAMES,
            json!({}),
        )
        .await;
    // Not approved: no DigiCert call, and nothing written.
    env.untouched_for(&ns, &name, Duration::from_secs(3)).await;
    assert_eq!(env.calls(Operation::Reissue), 0);

    env.sim.simulator().reset_calls();
    env.decide(&ns, &name, "Approved").await;
    let issued = env
        .wait_reason(&ns, &name, "Issued", Duration::from_secs(60))
        .await;
    assert_eq!(ready(&issued).unwrap().0, "True");
    // What one request costs at DigiCert when it issues at once (BENCHMARKS.md): the
    // order read, the reissue, the list that shows it issued, the download.
    let counts = env.sim.simulator().calls();
    for op in [
        Operation::OrderInfo,
        Operation::Reissue,
        Operation::ListReissues,
        Operation::Download,
    ] {
        assert_eq!(counts.total(op), 1, "{op:?}");
    }
    assert_eq!(counts.sum(), 4, "no other call");
    env.verify_issued(&issued, &csr, NAMES);
    assert_eq!(env.calls(Operation::Reissue), 1, "exactly one reissue");
    assert_eq!(env.certificates(ORDER, "reissue").len(), 1);
    assert_eq!(env.calls(Operation::Duplicate), 0);
    // What was sent is recorded on the request.
    let record: Value = serde_json::from_str(
        issued
            .annotations()
            .get("digicert-operator.dev/issuance")
            .expect("the record"),
    )
    .unwrap();
    assert_eq!(record["orderId"], ORDER);
    assert_eq!(record["issuance"], "Reissue");
    assert_eq!(record["answered"], true);
    // The Certificate holds the order's claim, across its renewals.
    let leases: Api<Lease> = env.cluster.api();
    let holders: Vec<String> = leases
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|l| l.spec?.holder_identity)
        .collect();
    assert!(
        holders
            .iter()
            .any(|h| h.starts_with(&format!("Certificate:{ns}/web/"))),
        "{holders:?}"
    );

    // cert-manager's renewal: a new request of the same Certificate reissues again.
    let (renewal, csr2) = env
        .approved_request(
            &ns,
            "web",
            2,
            ("DigicertIssuer", "digicert"),
            NAMES,
            json!({}),
        )
        .await;
    let issued = env
        .wait_reason(&ns, &renewal, "Issued", Duration::from_secs(60))
        .await;
    env.verify_issued(&issued, &csr2, NAMES);
    assert_eq!(env.calls(Operation::Reissue), 2);
    // A finished request is left alone: no further call for either.
    let calls = env.sim.simulator().calls().sum();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(env.sim.simulator().calls().sum(), calls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn denied_invalid_and_foreign_requests_never_reach_digicert() {
    const ORDER: u64 = 7102;
    let (env, ns) = Cm::with_issuer("cm-refused", ORDER).await;
    env.issuer_ready("digicertissuer", Some(&ns), "digicert", "True")
        .await;
    let calls = |env: &Cm| {
        [
            Operation::Reissue,
            Operation::Duplicate,
            Operation::ListReissues,
        ]
        .iter()
        .map(|op| env.calls(*op))
        .sum::<u64>()
    };

    // Denied: Ready=False Denied, a failure time, nothing asked of DigiCert.
    let (denied, _) = env
        .certificate_request(
            &ns,
            "denied",
            1,
            ("DigicertIssuer", "digicert"),
            NAMES,
            json!({}),
        )
        .await;
    env.decide(&ns, &denied, "Denied").await;
    let r = env
        .wait_reason(&ns, &denied, "Denied", Duration::from_secs(30))
        .await;
    assert!(r.status.as_ref().unwrap().failure_time.is_some());
    assert!(r.status.as_ref().unwrap().certificate.is_none());

    // A CA request, an Ed25519 key, a CSR that is not one, client auth after the
    // cut-over is in the unit tests: each InvalidRequest, terminal.
    let api = env.requests_in(&ns);
    let ed = keys::generate(KeyKind::Ed25519).unwrap();
    let ed_csr = keys::csr_pem(&ed, "example.com", &["example.com".into()]).unwrap();
    for (name, request, is_ca) in [
        (
            "ed25519-1",
            base64::engine::general_purpose::STANDARD.encode(&ed_csr),
            false,
        ),
        (
            "garbage-1",
            base64::engine::general_purpose::STANDARD.encode("not a CSR"),
            false,
        ),
        (
            "isca-1",
            base64::engine::general_purpose::STANDARD.encode(&ed_csr),
            true,
        ),
    ] {
        let r: CertificateRequest = serde_json::from_value(json!({
            "apiVersion": "cert-manager.io/v1",
            "kind": "CertificateRequest",
            "metadata": {"name": name},
            "spec": {
                "request": request,
                "isCA": is_ca,
                "issuerRef": {"group": "digicert-operator.dev", "kind": "DigicertIssuer", "name": "digicert"},
            },
        }))
        .unwrap();
        api.create(&PostParams::default(), &r).await.unwrap();
        env.decide(&ns, name, "Approved").await;
    }
    for (name, text) in [
        ("ed25519-1", "Ed25519"),
        ("garbage-1", "cannot be read"),
        ("isca-1", "isCA"),
    ] {
        let r = env
            .wait_reason(&ns, name, "InvalidRequest", Duration::from_secs(30))
            .await;
        let (_, _, message) = ready(&r).unwrap();
        assert!(message.contains(text), "{name}: {message}");
        let invalid = r.status.as_ref().unwrap().find("InvalidRequest").unwrap();
        assert_eq!(invalid.status, "True");
    }

    // Another issuer's request (cert-manager's own kinds): never touched.
    let r: CertificateRequest = serde_json::from_value(json!({
        "apiVersion": "cert-manager.io/v1",
        "kind": "CertificateRequest",
        "metadata": {"name": "foreign-2"},
        "spec": {
            "request": base64::engine::general_purpose::STANDARD.encode(&ed_csr),
            "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "digicert"},
        },
    }))
    .unwrap();
    api.create(&PostParams::default(), &r).await.unwrap();
    env.decide(&ns, "foreign-2", "Approved").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let r = env.request(&ns, "foreign-2").await;
    assert!(
        ready(&r).is_none(),
        "another issuer's request was touched: {:?}",
        r.status
    );
    assert_eq!(calls(&env), 0, "no request reached DigiCert");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_issuer_whose_account_does_not_allow_its_namespace_makes_no_call() {
    const ORDER: u64 = 7103;
    let mut env = Cm::new("cm-not-allowed", vec![crate::support::order(ORDER)]).await;
    // An account for another namespace only.
    let account = format!("e2e-{}-other", env.ns());
    env.put_account(
        &account,
        &env.sim.base_url(),
        Some(env.sim.ca_pem()),
        crate::support::env::API_KEY_SECRET,
        json!({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "elsewhere"}}}),
    )
    .await;
    env.start_operator();
    let ns = env.ns();
    env.issuer(
        &ns,
        "digicert",
        json!({"accountRef": {"name": account}, "orderId": ORDER}),
    );
    let (reason, message) = env
        .issuer_ready("digicertissuer", Some(&ns), "digicert", "False")
        .await;
    assert_eq!(reason, "NamespaceNotAllowed", "{message}");

    let (name, _) = approved_web(&env, &ns).await;
    let message = env.wait_pending(&ns, &name, "not ready").await;
    assert!(
        message.contains("does not allow the namespace"),
        "{message}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        env.sim.simulator().calls().sum(),
        0,
        "no DigiCert call at all"
    );
}

// ---- which order, who drives it ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_issuer_takes_duplicates_for_two_namespaces_on_one_order() {
    const ORDER: u64 = 7104;
    let mut env = Cm::new("cm-duplicates", vec![crate::support::order(ORDER)]).await;
    let other = env.cluster.other_namespace("b").await;
    let ns = env.ns();
    let account = env.account_name();
    env.put_account(
        &account,
        &env.sim.base_url(),
        Some(env.sim.ca_pem()),
        crate::support::env::API_KEY_SECRET,
        json!({"namespaceSelector": {"matchExpressions": [{
            "key": "kubernetes.io/metadata.name", "operator": "In", "values": [ns, other],
        }]}}),
    )
    .await;
    env.operator_args
        .extend(["--watch-namespace".into(), other.clone()]);
    env.start_operator();
    let issuer = format!("{ns}-shared");
    // The order is left to each Certificate's annotation.
    env.cluster_issuer(
        &issuer,
        json!({"accountRef": {"name": account}, "issuance": "Duplicate"}),
    );
    let (reason, message) = env
        .issuer_ready("digicertclusterissuer", None, &issuer, "True")
        .await;
    assert_eq!(reason, "AccountReady", "{message}");

    let order = json!({"digicert-operator.dev/order-id": ORDER.to_string()});
    let mut issued = Vec::new();
    // Each names the order's names; the common name may be either.
    for (space, names) in [
        (&ns, &["www.example.com", "example.com"][..]),
        (&other, &["example.com", "www.example.com"][..]),
    ] {
        let (name, csr) = env
            .certificate_request(
                space,
                "web",
                1,
                ("DigicertClusterIssuer", &issuer),
                names,
                order.clone(),
            )
            .await;
        env.sim.simulator().reset_calls();
        env.decide(space, &name, "Approved").await;
        let r = env
            .wait_reason(space, &name, "Issued", Duration::from_secs(60))
            .await;
        issued.push(env.verify_issued(&r, &csr, names));
        // A duplicate request costs 4 calls (BENCHMARKS.md): the order, the
        // duplicate, the list that gives its id and state, the download.
        let counts = env.sim.simulator().calls();
        for op in [
            Operation::OrderInfo,
            Operation::Duplicate,
            Operation::ListDuplicates,
            Operation::Download,
        ] {
            assert_eq!(counts.total(op), 1, "{op:?}");
        }
        assert_eq!(counts.sum(), 4, "no other call");
    }
    assert_ne!(issued[0].serial_number, issued[1].serial_number);
    assert_eq!(env.certificates(ORDER, "duplicate").len(), 2);
    assert!(
        env.certificates(ORDER, "reissue").is_empty(),
        "duplicates never reissue"
    );

    // A duplicate has the order's names: one with another name, or without one of
    // them, is refused before DigiCert is asked.
    let (bad, _) = env
        .approved_request(
            &ns,
            "api",
            1,
            ("DigicertClusterIssuer", &issuer),
            &["example.com", "api.example.com"],
            order.clone(),
        )
        .await;
    let r = env
        .wait_reason(&ns, &bad, "InvalidRequest", Duration::from_secs(30))
        .await;
    let message = ready(&r).unwrap().2;
    assert!(
        message.contains("not on it: api.example.com")
            && message.contains("missing: www.example.com"),
        "{message}"
    );
    assert_eq!(env.certificates(ORDER, "duplicate").len(), 2);
    env.cluster.kubectl_run(
        &["delete", "digicertclusterissuer", &issuer, "--wait=false"],
        None,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_certificate_for_a_reissued_order_waits_for_the_one_that_drives_it() {
    const ORDER: u64 = 7105;
    let mut env = Cm::new("cm-claim", vec![crate::support::order(ORDER)]).await;
    env.start_operator();
    let ns = env.ns();
    env.issuer(&ns, "digicert", issuer_spec(&env, json!({})));
    let order = json!({"digicert-operator.dev/order-id": ORDER.to_string()});
    let (first, _) = env
        .approved_request(
            &ns,
            "first",
            1,
            ("DigicertIssuer", "digicert"),
            NAMES,
            order.clone(),
        )
        .await;
    env.wait_reason(&ns, &first, "Issued", Duration::from_secs(60))
        .await;

    let (second, _) = env
        .approved_request(
            &ns,
            "second",
            1,
            ("DigicertIssuer", "digicert"),
            NAMES,
            order.clone(),
        )
        .await;
    let message = env.wait_pending(&ns, &second, "OrderClaimed").await;
    assert!(
        message.contains(&format!("the Certificate {ns}/first")),
        "{message}"
    );
    assert_eq!(env.calls(Operation::Reissue), 1);

    // A DigicertOrder for the same order waits too, naming the Certificate.
    env.apply(&OperatorEnv::order_yaml("dco", ORDER, ""));
    let o = env
        .wait_condition(
            "dco",
            "DigiCert",
            "False",
            Some("OrderClaimed"),
            Duration::from_secs(30),
        )
        .await;
    let c = crate::support::env::condition(&o, "DigiCert").unwrap();
    assert!(
        c.message.contains(&format!("the Certificate {ns}/first")),
        "{}",
        c.message
    );

    // The holder goes: the waiting Certificate takes the order over.
    let certificates: Api<Certificate> = env.cluster.api();
    certificates
        .delete("first", &Default::default())
        .await
        .unwrap();
    env.orders()
        .delete("dco", &Default::default())
        .await
        .unwrap();
    env.wait_reason(&ns, &second, "Issued", Duration::from_secs(60))
        .await;
    assert_eq!(env.calls(Operation::Reissue), 2);
}

// ---- the guard, DigiCert's own steps ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_that_drops_names_waits_for_consent() {
    const ORDER: u64 = 7106;
    let (env, ns) = Cm::with_issuer("cm-guard", ORDER).await;
    let (name, csr) = env
        .approved_request(
            &ns,
            "web",
            1,
            ("DigicertIssuer", "digicert"),
            &["example.com"],
            json!({}),
        )
        .await;
    let message = env.wait_pending(&ns, &name, "RevocationGuard").await;
    assert!(message.contains("drops www.example.com"), "{message}");
    let fingerprint = message
        .split("digicert-operator.dev/allow-revocation=")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_hexdigit()).next())
        .expect("the fingerprint in the message")
        .to_string();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(env.calls(Operation::Reissue), 0, "held: nothing sent");

    // A wrong fingerprint does not do; the right one on the request does.
    for value in ["0123456789ab", fingerprint.as_str()] {
        env.requests_in(&ns)
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {"digicert-operator.dev/allow-revocation": value}}})),
            )
            .await
            .unwrap();
        if value != fingerprint {
            tokio::time::sleep(Duration::from_secs(2)).await;
            assert_eq!(env.calls(Operation::Reissue), 0);
        }
    }
    let r = env
        .wait_reason(&ns, &name, "Issued", Duration::from_secs(60))
        .await;
    env.verify_issued(&r, &csr, &["example.com"]);
    assert_eq!(env.calls(Operation::Reissue), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approval_and_validation_at_digicert_show_as_pending() {
    const APPROVAL: u64 = 7107;
    const VALIDATION: u64 = 7108;
    let mut env = Cm::new(
        "cm-pending",
        vec![
            seed(APPROVAL, |s| s.approval_required = true),
            // Other names: domain validation is the account's, shared by its orders.
            seed(VALIDATION, |s| {
                s.validation_current = false;
                s.common_name = "example.org".into();
                s.dns_names = vec!["www.example.org".into()];
            }),
        ],
    )
    .await;
    env.start_operator();
    let ns = env.ns();
    let name = waiting_for_approval(&env, &ns, APPROVAL).await;
    // The issuer asks to approve, and the account allows it: approved, issued.
    env.issuer(
        &ns,
        "manual",
        issuer_spec(&env, json!({"orderId": APPROVAL, "approveReissues": true})),
    );
    env.wait_reason(&ns, &name, "Issued", Duration::from_secs(60))
        .await;
    assert_eq!(env.calls(Operation::UpdateRequestStatus), 1);

    env.issuer(
        &ns,
        "validating",
        issuer_spec(&env, json!({"orderId": VALIDATION})),
    );
    let (name, _) = env
        .approved_request(
            &ns,
            "validation",
            1,
            ("DigicertIssuer", "validating"),
            &["example.org", "www.example.org"],
            json!({}),
        )
        .await;
    let message = env.wait_pending(&ns, &name, "domain validation of").await;
    assert!(message.contains("example.org"), "{message}");
    assert_eq!(env.calls(Operation::Reissue), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_waiting_at_digicert_is_woken_by_the_change_feed() {
    const ORDER: u64 = 7116;
    let mut env = Cm::new("cm-feed", vec![seed(ORDER, |s| s.approval_required = true)]).await;
    env.operator_args = ["--feed-interval", "1s", "--resync", "24h"]
        .map(String::from)
        .to_vec();
    env.start_operator();
    let ns = env.ns();
    let name = waiting_for_approval(&env, &ns, ORDER).await;
    // Past its first minute a pending reissue is looked at every 30 minutes while the
    // feed reads fresh: from then on only the feed can bring the news in time.
    tokio::time::sleep(Duration::from_secs(66)).await;
    let listed = env.calls(Operation::ListReissues);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(env.calls(Operation::ListReissues), listed, "no polling");
    // An administrator approves the request at DigiCert.
    let client = crate::support::client(&env.sim, crate::support::env::API_KEY);
    let info = client.order_info(ORDER).await.unwrap();
    let request = info.requests.first().expect("the pending request").id;
    client
        .approve_request(request, "approved at DigiCert")
        .await
        .unwrap();
    env.wait_reason(&ns, &name, "Issued", Duration::from_secs(30))
        .await;
    // Nobody follows the key any more: its reader stops.
    env.operator
        .as_ref()
        .unwrap()
        .wait_for_log("change feed stopped", Duration::from_secs(30));
    assert_eq!(
        env.calls(Operation::UpdateRequestStatus),
        1,
        "approved once"
    );
    // The request's steps are info lines of the log, naming it.
    let logs = env.operator_logs();
    for step in ["Submitted", "Issued"] {
        assert!(
            logs.lines().any(|l| l.contains(" INFO ")
                && l.contains(&format!("step=\"{step}\""))
                && l.contains(&format!("request=\"{name}\""))),
            "{step}:\n{logs}"
        );
    }
}

// ---- never twice ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kill_during_the_send_ends_with_one_reissue_and_the_request_issued() {
    const ORDER: u64 = 7109;
    let (mut env, ns) = Cm::with_issuer("cm-kill", ORDER).await;
    env.issuer_ready("digicertissuer", Some(&ns), "digicert", "True")
        .await;
    // DigiCert does the work, but its answer takes 5 s: the operator is killed while
    // it waits, after the reissue exists.
    env.fault(json!({"operation": "reissue", "kind": "delay", "millis": 5000, "phase": "after", "times": 1}));
    let (name, csr) = approved_web(&env, &ns).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while env.certificates(ORDER, "reissue").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the reissue never arrived\n{}",
            env.operator_logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    env.kill_operator();
    let r = env.request(&ns, &name).await;
    let record: Value = serde_json::from_str(
        r.annotations()
            .get("digicert-operator.dev/issuance")
            .expect("recorded before the send"),
    )
    .unwrap();
    assert_eq!(record["answered"], false, "the answer was not in yet");

    env.start_operator();
    let r = env
        .wait_reason(&ns, &name, "Issued", Duration::from_secs(90))
        .await;
    env.verify_issued(&r, &csr, NAMES);
    assert_eq!(env.calls(Operation::Reissue), 1, "exactly one POST");
    assert_eq!(env.certificates(ORDER, "reissue").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_answer_is_found_by_its_csr_not_sent_again() {
    const ORDER: u64 = 7110;
    let (env, ns) = Cm::with_issuer("cm-lost", ORDER).await;
    // The connection breaks after DigiCert made the reissue.
    env.fault(json!({"operation": "reissue", "kind": "drop", "phase": "after", "times": 1}));
    let (name, csr) = approved_web(&env, &ns).await;
    let r = env
        .wait_reason(&ns, &name, "Issued", Duration::from_secs(90))
        .await;
    env.verify_issued(&r, &csr, NAMES);
    assert_eq!(env.calls(Operation::Reissue), 1, "found, not sent again");
    assert_eq!(env.certificates(ORDER, "reissue").len(), 1);
}

// ---- domain validation ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_issuers_domain_validation_settings_validate_a_lapsed_domain_for_the_reissue() {
    use crate::support::dcv::{self, NOW, put_tsig, rfc2136_settings};
    use crate::support::dns::AuthoritativeDns;
    const ORDER: u64 = 7111;
    let dns = AuthoritativeDns::start_default().await;
    // 2029: DigiCert reuses a validation for 10 days; example.com's is 11 days old.
    let mut config = OperatorEnv::simulator_config(vec![seed(ORDER, |s| {
        s.order_valid_till = Some(time::macros::datetime!(2031-06-01 0:00 UTC).date());
    })]);
    config.clock_start = Some(NOW);
    config.seed.domains = vec![dcv::domain("example.com", "dns-txt-token", 11)];
    config.dcv.dns_server = Some(dns.addr());
    let mut env = Cm::with_simulator("cm-dcv", config).await;
    put_tsig(&env, &dns).await;
    env.start_operator();
    let ns = env.ns();
    env.issuer(
        &ns,
        "digicert",
        issuer_spec(
            &env,
            json!({"orderId": ORDER, "domainValidation": rfc2136_settings(&dns, None)}),
        ),
    );
    let (name, csr) = approved_web(&env, &ns).await;

    // DigiCert holds the reissue; the operator publishes the order's value through
    // RFC 2136, has DigiCert check it, and the reissue issues.
    let r = env
        .wait_reason(&ns, &name, "Issued", Duration::from_secs(90))
        .await;
    env.verify_issued(&r, &csr, NAMES);
    assert_eq!(env.calls(Operation::Reissue), 1);
    assert_eq!(
        env.calls(Operation::CheckOrderDcv),
        1,
        "{}",
        env.operator_logs()
    );
    assert_eq!(
        env.calls(Operation::OrderRandomValue) + env.calls(Operation::OrderDcvMethod),
        1
    );
    // Nothing left behind: the value withdrawn, the finalizer gone, the record
    // without a challenge.
    assert!(
        r.finalizers().is_empty(),
        "finalizers: {:?}",
        r.finalizers()
    );
    let record: Value = serde_json::from_str(
        r.annotations()
            .get("digicert-operator.dev/issuance")
            .unwrap(),
    )
    .unwrap();
    assert!(record.get("challenge").is_none(), "{record}");
    // Only the zone's own SPF record is left at the apex.
    assert_eq!(
        dns.txt("example.com").await,
        vec![crate::support::dns::APEX_SPF.to_string()],
        "the TXT record was withdrawn"
    );
    let events: Api<k8s_openapi::api::events::v1::Event> = env.cluster.api();
    let reasons: Vec<String> = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name.as_str()))
        .filter_map(|e| e.reason)
        .collect();
    for want in ["Submitted", "Validating", "DomainValidated", "Issued"] {
        assert!(reasons.iter().any(|r| r == want), "{want} in {reasons:?}");
    }
    // The TSIG secret never shows in the log.
    assert!(!env.operator_logs().contains(&dns.tsig().2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moving_between_a_digicert_order_and_a_certificate_takes_no_new_order() {
    const ORDER: u64 = 7112;
    let mut env = Cm::new("cm-move", vec![crate::support::order(ORDER)]).await;
    env.start_operator();
    let ns = env.ns();
    env.apply(&OperatorEnv::order_yaml("dco", ORDER, ""));
    env.wait_ready("dco").await;
    assert_eq!(env.calls(Operation::Reissue), 1);

    // To cert-manager: the Certificate names the order; it waits for the
    // DigicertOrder that drives it...
    env.issuer(&ns, "digicert", issuer_spec(&env, json!({})));
    let order = json!({"digicert-operator.dev/order-id": ORDER.to_string()});
    let (name, csr) = env
        .approved_request(
            &ns,
            "web",
            1,
            ("DigicertIssuer", "digicert"),
            NAMES,
            order.clone(),
        )
        .await;
    let message = env.wait_pending(&ns, &name, "OrderClaimed").await;
    assert!(
        message.contains(&format!("the DigicertOrder {ns}/dco")),
        "{message}"
    );
    assert_eq!(env.calls(Operation::Reissue), 1);
    // ...until that one is deleted (deletionPolicy Retain: nothing happens at
    // DigiCert, its Secret stays). Then it reissues the same order.
    env.orders()
        .delete("dco", &Default::default())
        .await
        .unwrap();
    let r = env
        .wait_reason(&ns, &name, "Issued", Duration::from_secs(60))
        .await;
    env.verify_issued(&r, &csr, NAMES);
    assert_eq!(env.calls(Operation::Reissue), 2);
    assert!(
        env.secrets().get_opt("dco-tls").await.unwrap().is_some(),
        "the old Secret stays"
    );

    // And back: the Certificate goes, a DigicertOrder drives the order again.
    let certificates: Api<Certificate> = env.cluster.api();
    certificates
        .delete("web", &Default::default())
        .await
        .unwrap();
    env.apply(&OperatorEnv::order_yaml("dco2", ORDER, ""));
    env.wait_ready("dco2").await;
    assert_eq!(env.calls(Operation::Reissue), 3);
    // Every certificate came from the one order.
    assert_eq!(env.certificates(ORDER, "reissue").len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_api_server_refuses_an_issuer_spec_that_cannot_work() {
    let env = Cm::new("cm-crd", vec![]).await;
    let ns = env.ns();
    for (spec, want) in [
        (
            json!({"issuance": "Duplicate", "allowRevocationOfPrevious": true}),
            "belong to an issuer that reissues",
        ),
        (json!({"orderId": 0}), "orderId"),
        (json!({"issuance": "Sometimes"}), "issuance"),
    ] {
        let manifest = json!({
            "apiVersion": "digicert-operator.dev/v1alpha1",
            "kind": "DigicertIssuer",
            "metadata": {"name": "bad", "namespace": ns},
            "spec": spec,
        });
        let out = env
            .cluster
            .kubectl_run(&["apply", "-f", "-"], Some(&manifest.to_string()));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(want),
            "{spec}: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rate_limited_request_waits_pending_and_is_sent_once_the_limit_allows() {
    const ORDER: u64 = 7113;
    let (env, ns) = Cm::with_issuer("cm-429", ORDER).await;
    env.issuer_ready("digicertissuer", Some(&ns), "digicert", "True")
        .await;
    // DigiCert answers the reissue with 429 once: it never arrived.
    env.fault(json!({"operation": "reissue", "kind": "rate_limit", "times": 1}));
    let (name, csr) = approved_web(&env, &ns).await;
    let message = env.wait_pending(&ns, &name, "RateLimited").await;
    assert!(message.contains("reissuing the order"), "{message}");
    // Nothing exists at DigiCert, so nothing is recorded as sent.
    let r = env.request(&ns, &name).await;
    assert!(
        !r.annotations()
            .contains_key("digicert-operator.dev/issuance"),
        "{:?}",
        r.annotations()
    );
    let r = env
        .wait_reason(&ns, &name, "Issued", Duration::from_secs(90))
        .await;
    env.verify_issued(&r, &csr, NAMES);
    assert_eq!(env.certificates(ORDER, "reissue").len(), 1);
}
