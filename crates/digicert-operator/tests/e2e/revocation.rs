//! No surprise revocations, end to end on a real API server and the simulator: a
//! reissue that drops names waits for consent; duplicates in other namespaces share
//! the order, follow its reissues and replace what DigiCert revokes; a revoked
//! certificate is noticed and replaced.

use std::time::{Duration, Instant};

use crate::support::env::{API_KEY, API_KEY_SECRET, OperatorEnv, condition, verify_tls_secret};
use certcentral_sim::OrderSeed;
use digicert_operator::certcentral::{
    Client, DuplicateCertificate, Operation, ReissueCertificate, ReissueStatus, RevokeOrderRequest,
    RevokeRequest,
};
use digicert_operator::crd::{ALLOW_REVOCATION_ANNOTATION, DigicertOrder};
use digicert_operator::keys::KeyKind;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use serde_json::json;

const ORDER: u64 = 1001;
const ALL: &[&str] = &["example.com", "www.example.com", "api.example.com"];

fn seed(change: impl FnOnce(&mut OrderSeed)) -> OrderSeed {
    let mut s = crate::support::order(ORDER);
    s.dns_names = vec!["www.example.com".into(), "api.example.com".into()];
    change(&mut s);
    s
}

/// The test namespace and a second one, both selected by a shared account; the
/// operator watches both and looks at orders every 3 s.
async fn two_namespaces(test: &str, seed: OrderSeed) -> (OperatorEnv, String, String) {
    let mut env = OperatorEnv::new(test, vec![seed]).await;
    let other = env.cluster.other_namespace("b").await;
    let shared = format!("{}-shared", env.cluster.namespace);
    let names = [env.cluster.namespace.clone(), other.clone()];
    env.put_account(
        &shared,
        &env.sim.base_url(),
        Some(env.sim.ca_pem()),
        API_KEY_SECRET,
        json!({"namespaceSelector": {"matchExpressions": [{
            "key": "kubernetes.io/metadata.name", "operator": "In", "values": names}]}}),
    )
    .await;
    env.operator_args = vec![
        "--watch-namespace".into(),
        other.clone(),
        "--resync".into(),
        "3s".into(),
    ];
    env.start_operator();
    (env, other, shared)
}

fn reissuing(name: &str, dns: &str, account: &str) -> String {
    format!(
        "apiVersion: digicert-operator.dev/v1alpha1\nkind: DigicertOrder\nmetadata:\n  name: {name}\nspec:\n  orderId: {ORDER}\n  commonName: example.com\n  dnsNames: {dns}\n  secretName: {name}-tls\n  accountRef: {{name: {account}}}\n"
    )
}

fn duplicate(name: &str, account: &str) -> String {
    format!(
        "apiVersion: digicert-operator.dev/v1alpha1\nkind: DigicertOrder\nmetadata:\n  name: {name}\nspec:\n  orderId: {ORDER}\n  issuance: Duplicate\n  commonName: example.com\n  secretName: {name}-tls\n  accountRef: {{name: {account}}}\n"
    )
}

/// `web` reissuing the order for all its names in the test namespace, and `copy`
/// taking duplicates in `other`; both Ready.
async fn owner_and_copy(
    env: &OperatorEnv,
    other: &str,
    account: &str,
) -> (DigicertOrder, DigicertOrder) {
    let ns = env.cluster.namespace.clone();
    apply_in(
        env,
        &ns,
        &reissuing("web", "[www.example.com, api.example.com]", account),
    );
    let web = env.wait_ready("web").await;
    apply_in(env, other, &duplicate("copy", account));
    let copy = env
        .wait_in(other, "copy", "Ready", Duration::from_secs(60), is_ready)
        .await;
    (web, copy)
}

/// Revokes the certificate in the DigicertOrder's Secret at DigiCert, at once.
async fn revoke_by_hand(env: &OperatorEnv, o: &DigicertOrder) {
    let id = o.status.as_ref().unwrap().certificate.as_ref().unwrap().id;
    let request = RevokeRequest {
        comments: Some("revoked by hand".into()),
        skip_approval: Some(true),
    };
    client(env).revoke_certificate(id, &request).await.unwrap();
}

fn apply_in(env: &OperatorEnv, ns: &str, yaml: &str) {
    env.cluster
        .kubectl_ok(&["apply", "-n", ns, "-f", "-"], Some(yaml));
}

fn ready(o: &DigicertOrder) -> Option<(String, String)> {
    condition(o, "Ready").map(|c| (c.status.clone(), c.reason.clone()))
}

fn is_ready(o: &DigicertOrder) -> bool {
    ready(o).is_some_and(|(s, _)| s == "True")
}

fn serial(o: &DigicertOrder) -> String {
    o.status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .map(|c| c.serial_number.clone())
        .unwrap_or_default()
}

fn names_of(o: &DigicertOrder) -> Vec<String> {
    let mut n = o
        .status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .map(|c| c.dns_names.clone())
        .unwrap_or_default();
    n.sort();
    n
}

fn client(env: &OperatorEnv) -> Client {
    crate::support::client(&env.sim, API_KEY)
}

async fn reissues(env: &OperatorEnv) -> Vec<ReissueCertificate> {
    client(env).list_reissues(ORDER).await.unwrap()
}

async fn duplicates(env: &OperatorEnv) -> Vec<DuplicateCertificate> {
    client(env).list_duplicates(ORDER).await.unwrap()
}

fn revoked(s: &ReissueStatus) -> bool {
    *s == ReissueStatus::Revoked
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn calls(env: &OperatorEnv, op: Operation) -> u64 {
    env.sim.simulator().calls().total(op)
}

async fn secret_in(env: &OperatorEnv, ns: &str, name: &str, names: &[&str]) {
    let secret: Secret = Api::namespaced(env.cluster.client.clone(), ns)
        .get(name)
        .await
        .unwrap();
    verify_tls_secret(&secret, env.sim.ca_pem(), names);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_names_dropping_change_waits_for_consent_and_the_duplicate_elsewhere_follows() {
    let (env, other, account) = two_namespaces(
        "revoke-guard",
        seed(|s| s.revocation_delay_seconds = Some(8)),
    )
    .await;
    let ns = env.cluster.namespace.clone();
    let (web, copy) = owner_and_copy(&env, &other, &account).await;
    secret_in(&env, &other, "copy-tls", ALL).await;
    assert_eq!(
        copy.status.as_ref().unwrap().claim,
        None,
        "a duplicate claims nothing"
    );
    assert_eq!(calls(&env, Operation::Duplicate), 1);
    let first_copy = serial(&copy);

    // Dropping api.example.com would revoke web's certificate and the duplicate.
    apply_in(&env, &ns, &reissuing("web", "[www.example.com]", &account));
    let held = env
        .wait_condition(
            "web",
            "Ready",
            "False",
            Some("RevocationConsentRequired"),
            Duration::from_secs(30),
        )
        .await;
    let guard = held
        .status
        .as_ref()
        .unwrap()
        .revocation_guard
        .clone()
        .unwrap();
    assert_eq!(guard.dropped_names, ["api.example.com"]);
    let at_risk: Vec<(String, Vec<String>)> = guard
        .would_revoke
        .iter()
        .map(|c| (c.kind.clone(), c.secrets.clone()))
        .collect();
    assert!(
        at_risk.contains(&("current".into(), vec![format!("{ns}/web-tls")])),
        "{at_risk:?}"
    );
    assert!(
        at_risk.contains(&("duplicate".into(), vec![format!("{other}/copy-tls")])),
        "{at_risk:?}"
    );
    let message = condition(&held, "Ready").unwrap().message.clone();
    assert!(
        message.contains(&format!(
            "{ALLOW_REVOCATION_ANNOTATION}={}",
            guard.fingerprint
        )),
        "{message}"
    );
    env.wait_event("web", "RevocationConsentRequired", Duration::from_secs(10))
        .await;
    // Held: nothing is sent over several looks (each reads the order at DigiCert), and
    // the Secret keeps its certificate.
    let looks = env
        .order_checks_during("web", now(), Duration::from_secs(7))
        .await;
    assert!(
        looks.len() >= 2,
        "looks at the held order in 7 s: {looks:?}"
    );
    assert_eq!(calls(&env, Operation::Reissue), 1);
    assert_eq!(
        serial(&env.orders().get("web").await.unwrap()),
        serial(&web)
    );

    // Consent for other names does not count; for these names it does.
    let annotate = |value: &str| {
        env.cluster.kubectl_ok(
            &[
                "annotate",
                "dco",
                "web",
                &format!("{ALLOW_REVOCATION_ANNOTATION}={value}"),
                "--overwrite",
            ],
            None,
        )
    };
    annotate("0123456789ab");
    let looks = env
        .order_checks_during("web", now(), Duration::from_secs(4))
        .await;
    assert!(
        !looks.is_empty(),
        "no look at the order after the annotation"
    );
    assert_eq!(calls(&env, Operation::Reissue), 1);
    // `kubectl digicert allow-revocation` shows what goes and agrees.
    let out = std::process::Command::new(crate::support::process::binary())
        .args(["allow-revocation", "web", "-n", &ns])
        .env("KUBECONFIG", &env.cluster.kubeconfig)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for part in [
        "drops api.example.com".to_string(),
        format!("in {other}/copy-tls"),
        format!("{ALLOW_REVOCATION_ANNOTATION}={}", guard.fingerprint),
    ] {
        assert!(text.contains(&part), "{part}: {text}");
    }
    let web2 = env
        .wait_for(
            "web",
            "the reissue with fewer names",
            Duration::from_secs(60),
            |o| is_ready(o) && serial(o) != serial(&web),
        )
        .await;
    assert_eq!(names_of(&web2), ["example.com", "www.example.com"]);
    assert_eq!(web2.status.as_ref().unwrap().revocation_guard, None);
    env.wait_event("web", "RevocationAgreed", Duration::from_secs(10))
        .await;

    // The duplicate follows the order's certificate on its own.
    let copy2 = env
        .wait_in(
            &other,
            "copy",
            "a duplicate of the new certificate",
            Duration::from_secs(60),
            |o| is_ready(o) && names_of(o) == ["example.com", "www.example.com"],
        )
        .await;
    secret_in(
        &env,
        &other,
        "copy-tls",
        &["example.com", "www.example.com"],
    )
    .await;
    assert_ne!(serial(&copy2), first_copy);

    // After DigiCert's delay the old certificates are revoked; the new ones are not.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let dups = duplicates(&env).await;
        let old = dups
            .iter()
            .find(|d| d.serial_number.as_deref() == Some(first_copy.as_str()))
            .expect("the first duplicate is listed");
        if revoked(&old.status) {
            break;
        }
        assert!(Instant::now() < deadline, "never revoked: {dups:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let list = reissues(&env).await;
    let first_web = list
        .iter()
        .find(|c| c.serial_number.as_deref() == Some(serial(&web).as_str()))
        .unwrap();
    assert!(revoked(&first_web.status), "{list:?}");
    // Both resources hold certificates that stay good, over several more looks.
    let (since, window) = (now(), Duration::from_secs(7));
    let looks = tokio::join!(
        env.order_checks_during("web", since, window),
        env.order_checks_during_in(&other, "copy", since, window)
    );
    assert!(
        looks.0.len() >= 2 && looks.1.len() >= 2,
        "looks at web and copy in 7 s: {looks:?}"
    );
    let copy3 = Api::<DigicertOrder>::namespaced(env.cluster.client.clone(), &other)
        .get("copy")
        .await
        .unwrap();
    assert!(is_ready(&copy3), "{:?}", copy3.status);
    let current_copy = duplicates(&env)
        .await
        .into_iter()
        .find(|d| d.serial_number.as_deref() == Some(serial(&copy3).as_str()))
        .unwrap();
    assert!(!revoked(&current_copy.status), "{current_copy:?}");
    let web3 = env.orders().get("web").await.unwrap();
    assert!(is_ready(&web3));
    assert_eq!(serial(&web3), serial(&web2));
    assert_eq!(calls(&env, Operation::Reissue), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicates_in_two_namespaces_follow_a_renewal_without_any_revocation() {
    // 30-second certificates: the owner renews at 20 s; DigiCert would revoke after 2 s.
    let (env, other, account) = two_namespaces(
        "revoke-duplicates",
        seed(|s| {
            s.certificate_validity_seconds = Some(30);
            s.revocation_delay_seconds = Some(2);
        }),
    )
    .await;
    let ns = env.cluster.namespace.clone();
    apply_in(
        &env,
        &ns,
        &reissuing("web", "[www.example.com, api.example.com]", &account),
    );
    apply_in(&env, &ns, &duplicate("copy-a", &account));
    apply_in(&env, &other, &duplicate("copy-b", &account));
    let web = env.wait_ready("web").await;
    let first_till = web
        .status
        .as_ref()
        .unwrap()
        .certificate
        .clone()
        .unwrap()
        .not_after;
    for (n, name) in [(&ns, "copy-a"), (&other, "copy-b")] {
        env.wait_in(n, name, "Ready", Duration::from_secs(60), |o| {
            is_ready(o)
                && o.status
                    .as_ref()
                    .unwrap()
                    .certificate
                    .as_ref()
                    .unwrap()
                    .not_after
                    == first_till
        })
        .await;
    }
    // The owner renews; each duplicate follows with the new validity.
    let renewed = env
        .wait_for("web", "the renewal", Duration::from_secs(60), |o| {
            o.status.as_ref().is_some_and(|s| s.revision >= 2) && is_ready(o)
        })
        .await;
    let till = renewed
        .status
        .as_ref()
        .unwrap()
        .certificate
        .clone()
        .unwrap()
        .not_after;
    assert_ne!(till, first_till);
    for (n, name) in [(&ns, "copy-a"), (&other, "copy-b")] {
        let o = env
            .wait_in(
                n,
                name,
                "following the renewal",
                Duration::from_secs(60),
                |o| {
                    is_ready(o)
                        && o.status
                            .as_ref()
                            .unwrap()
                            .certificate
                            .as_ref()
                            .unwrap()
                            .not_after
                            == till
                },
            )
            .await;
        assert_eq!(o.status.as_ref().unwrap().claim, None);
        secret_in(&env, n, &format!("{name}-tls"), ALL).await;
    }
    // Well past the revocation delay: nothing of the order was revoked.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let list = reissues(&env).await;
    let dups = duplicates(&env).await;
    assert!(list.iter().all(|c| !revoked(&c.status)), "{list:?}");
    assert!(dups.iter().all(|c| !revoked(&c.status)), "{dups:?}");
    assert!(dups.len() >= 4, "two per namespace at least: {dups:?}");
    // Only the owner reissued; duplicates never did.
    assert_eq!(
        calls(&env, Operation::Reissue) as usize,
        renewed.status.as_ref().unwrap().revision as usize
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoked_certificates_are_noticed_and_replaced() {
    let (env, other, account) = two_namespaces(
        "revoke-noticed",
        seed(|s| s.revocation_delay_seconds = Some(3)),
    )
    .await;
    let ns = env.cluster.namespace.clone();
    let (web, copy) = owner_and_copy(&env, &other, &account).await;

    // Somebody revokes the duplicate at DigiCert: the next look replaces it.
    revoke_by_hand(&env, &copy).await;
    let copy2 = env
        .wait_in(
            &other,
            "copy",
            "a new duplicate",
            Duration::from_secs(30),
            |o| is_ready(o) && serial(o) != serial(&copy),
        )
        .await;
    assert_eq!(copy2.status.as_ref().unwrap().revoked, None);
    secret_in(&env, &other, "copy-tls", ALL).await;

    // Somebody revokes web's certificate by hand: the next look replaces it.
    revoke_by_hand(&env, &web).await;
    let web = env
        .wait_for("web", "a replacement", Duration::from_secs(30), |o| {
            is_ready(o) && serial(o) != serial(&web)
        })
        .await;
    env.wait_event("web", "Revoked", Duration::from_secs(5))
        .await;
    assert_eq!(web.status.as_ref().unwrap().revoked, None);
    secret_in(&env, &ns, "web-tls", ALL).await;

    // Somebody reissues the order for fewer names by hand: DigiCert revokes web's
    // certificate, and web gets a new one for its names (adding names: no consent).
    let (_, pem) = crate::support::csr(KeyKind::Ecdsa(256), "example.com", &["example.com"]);
    client(&env)
        .reissue(
            ORDER,
            &crate::support::reissue_request("example.com", &[], &pem),
        )
        .await
        .unwrap();
    let web2 = env
        .wait_for("web", "a replacement", Duration::from_secs(60), |o| {
            is_ready(o) && serial(o) != serial(&web)
        })
        .await;
    assert_eq!(names_of(&web2), sorted(ALL));

    // The whole order is revoked: both say so, and neither hammers DigiCert.
    client(&env)
        .revoke_order(
            ORDER,
            &RevokeOrderRequest {
                skip_approval: Some(true),
                ..RevokeOrderRequest::default()
            },
        )
        .await
        .unwrap();
    env.wait_condition(
        "web",
        "Ready",
        "False",
        Some("OrderRevoked"),
        Duration::from_secs(30),
    )
    .await;
    env.wait_in(
        &other,
        "copy",
        "OrderRevoked",
        Duration::from_secs(30),
        |o| ready(o).is_some_and(|(s, r)| s == "False" && r == "OrderRevoked"),
    )
    .await;
    let before = env.sim.simulator().calls().sum();
    let (since, window) = (now(), Duration::from_secs(9));
    let looks = tokio::join!(
        env.order_checks_during("web", since, window),
        env.order_checks_during_in(&other, "copy", since, window)
    );
    let made = env.sim.simulator().calls().sum() - before;
    // Two resources, three looks each at most, two calls a look.
    assert!(made <= 14, "{made} calls in 9 s");
    // Both kept looking (every 3 s), so the bound above is not met by a stall.
    assert!(
        looks.0.len() >= 2 && looks.1.len() >= 2,
        "looks at web and copy in 9 s: {looks:?}"
    );
    // web's first, its two replacements, the one by hand; none of the revoked order.
    assert_eq!(
        env.sim.simulator().calls().total(Operation::Reissue),
        4,
        "no reissue of a revoked order"
    );
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_duplicate_shows_why_it_cannot_be_had() {
    let mut env = OperatorEnv::new("revoke-mismatch", vec![seed(|_| {})]).await;
    env.operator_args = vec!["--resync".into(), "3s".into()];
    env.start_operator();
    let account = env.account_name();
    let yaml = duplicate("copy", &account)
        .replace("commonName: example.com", "commonName: shop.example.com");
    env.apply(&yaml);
    let o = env
        .wait_condition(
            "copy",
            "Ready",
            "False",
            Some("NamesMismatch"),
            Duration::from_secs(30),
        )
        .await;
    let message = condition(&o, "Ready").unwrap().message.clone();
    assert!(
        message.contains("shop.example.com") && message.contains("www.example.com"),
        "{message}"
    );
    assert_eq!(calls(&env, Operation::Duplicate), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resource_that_turns_to_duplicates_gives_up_its_claim() {
    let mut env = OperatorEnv::new("revoke-release", vec![crate::support::order(ORDER)]).await;
    env.operator_args = vec!["--resync".into(), "3s".into()];
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml("first", ORDER, ""));
    let first = env.wait_ready("first").await;
    assert!(first.status.as_ref().unwrap().claim.is_some());
    // It takes duplicates from now on: another resource may reissue the order.
    env.cluster.kubectl_ok(
        &[
            "patch",
            "dco",
            "first",
            "--type=merge",
            "-p",
            r#"{"spec": {"issuance": "Duplicate", "dnsNames": null}}"#,
        ],
        None,
    );
    env.wait_for("first", "no claim", Duration::from_secs(30), |o| {
        o.status.as_ref().is_some_and(|s| s.claim.is_none()) && is_ready(o)
    })
    .await;
    env.apply(&OperatorEnv::order_yaml("second", ORDER, ""));
    let second = env.wait_ready("second").await;
    let claim = second.status.as_ref().unwrap().claim.clone().unwrap();
    assert!(claim.starts_with("Lease "), "{claim}");
}
