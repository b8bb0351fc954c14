//! The DigicertOrder CRD on the real API server: accepted without a warning and with
//! room in the CEL cost budget, every validation rule and schema bound enforced at
//! admission with its own message, and `kubectl explain` in whole paragraphs. And what
//! people see of the resources: events in `kubectl describe`, and `kubectl digicert`.

use crate::support::cluster::{TestCluster, repo_root};
use crate::support::env::install_crd;
use digicert_operator::controller::events::{EventType, Events};
use digicert_operator::crd::{CANCEL_ANNOTATION, DigicertOrder};
use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent, ObjectReference, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

fn generated_crd() -> Value {
    let text = std::fs::read_to_string(repo_root().join("crds/digicertorders.yaml")).unwrap();
    serde_yaml::from_str(&text).expect("the CRD is YAML")
}

/// The CRD under another name and group, so that the server creates it afresh (a
/// server warns when it creates or changes a CRD, not when an apply changes nothing)
/// without touching the real one, which other tests share.
fn renamed(mut crd: Value, group: &str) -> Value {
    crd["metadata"]["name"] = json!(format!("digicertorders.{group}"));
    crd["spec"]["group"] = json!(group);
    crd
}

fn spec_schema(crd: &mut Value) -> &mut Value {
    &mut crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
}

/// `kubectl VERB --dry-run=server` of `object` (`create`, or `apply` with kubectl's
/// default strict field validation): the server's full admission without a trace.
/// Returns (accepted, stderr).
fn dry_run(cluster: &TestCluster, verb: &str, object: &Value) -> (bool, String) {
    let out = cluster.kubectl_run(
        &[verb, "--dry-run=server", "-f", "-"],
        Some(&object.to_string()),
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn dry_run_create(cluster: &TestCluster, object: &Value) -> (bool, String) {
    dry_run(cluster, "create", object)
}

fn dry_run_apply(cluster: &TestCluster, object: &Value) -> (bool, String) {
    dry_run(cluster, "apply", object)
}

#[tokio::test]
async fn the_crd_is_created_without_a_warning_and_with_room_in_the_cel_budget() {
    let cluster = TestCluster::new("crd-create").await;
    let group = format!("{}.e2e.digicert-operator.dev", cluster.namespace);
    let (ok, stderr) = dry_run_create(&cluster, &renamed(generated_crd(), &group));
    assert!(ok, "the server refused the CRD:\n{stderr}");
    assert!(
        !stderr.to_ascii_lowercase().contains("warning"),
        "the server warned about the CRD:\n{stderr}"
    );

    // Margin: the rule over the DNS names (the only one that walks a list) still fits
    // the per-rule and per-CRD cost budgets with ten times as many names.
    let mut crd = renamed(generated_crd(), &group);
    let names = &mut spec_schema(&mut crd)["properties"]["dnsNames"];
    let max_items = names["maxItems"].as_u64().expect("dnsNames has maxItems");
    names["maxItems"] = json!(max_items * 10);
    let (ok, stderr) = dry_run_create(&cluster, &crd);
    assert!(ok, "no tenfold room in the CEL cost budget:\n{stderr}");

    // The check can fail: without the bound on the names' length the server refuses
    // the CRD for its cost, as it refused CRDs of earlier releases.
    let mut crd = renamed(generated_crd(), &group);
    let items = &mut spec_schema(&mut crd)["properties"]["dnsNames"]["items"];
    items.as_object_mut().unwrap().remove("maxLength");
    let (ok, stderr) = dry_run_create(&cluster, &crd);
    assert!(!ok, "a CRD without string bounds was accepted");
    assert!(
        stderr.contains("estimated rule cost exceeds budget"),
        "{stderr}"
    );
}

/// The README's `kubectl apply -f crds/`, verbatim, on a server that has never seen the
/// CRD: created, Established, and not a single warning.
#[tokio::test]
async fn kubectl_apply_of_crds_creates_it_without_a_warning() {
    let test = "kubectl_apply_of_crds_creates_it_without_a_warning";
    let Some(cp) =
        crate::support::cluster::OwnControlPlane::start(test, "creates the CRD afresh", "").await
    else {
        return;
    };
    let out = crate::support::cluster::kubectl_command(&cp.kubeconfig)
        .args(["apply", "-f", "crds/"])
        .current_dir(repo_root())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for crd in ["digicertaccounts", "digicertorders"] {
        assert!(
            stdout.contains(&format!("{crd}.digicert-operator.dev created")),
            "{stdout}"
        );
    }
    assert!(
        stderr.trim().is_empty(),
        "kubectl apply -f crds/ printed:\n{stderr}"
    );
    crate::support::cluster::wait_established(
        &cp.kubeconfig,
        &[
            "digicertorders.digicert-operator.dev",
            "digicertaccounts.digicert-operator.dev",
        ],
    );
}

fn order(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "digicert-operator.dev/v1alpha1",
        "kind": "DigicertOrder",
        "metadata": {"name": name},
        "spec": spec,
    })
}

/// A spec with every field set to a good value.
fn full_spec() -> Value {
    json!({
        "orderId": 1001,
        "commonName": "example.com",
        "dnsNames": ["www.example.com", "*.example.com"],
        "secretName": "example-com-tls",
        "autoReissue": true,
        "privateKey": {"algorithm": "ECDSA", "size": 384, "rotationPolicy": "Never", "encoding": "PKCS8"},
        "signatureHash": "sha384",
        "serverPlatformId": 45,
        "comments": "kept by digicert-operator",
        "skipApproval": false,
        "approveReissues": true,
        "renewBefore": "720h",
        "apiKeySecretRef": {"name": "team-key", "key": "api-key", "certcentral": "eu"},
        "secretTemplate": {"labels": {"team": "web"}, "annotations": {"example.org/owner": "web"}},
        "deletionPolicy": "CancelPending",
    })
}

/// `full_spec` with the fields of `changes` replaced (a null removes one).
fn with(changes: Value) -> Value {
    merged(full_spec(), changes)
}

/// `spec` with the fields of `changes` replaced (a null removes one).
fn merged(mut spec: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            spec.as_object_mut().unwrap().remove(k);
        } else {
            spec[k] = v.clone();
        }
    }
    spec
}

#[tokio::test]
async fn every_rule_and_bound_is_enforced_at_admission_with_its_own_message() {
    let cluster = TestCluster::new("crd-rules").await;
    install_crd(&cluster);

    let (ok, stderr) = dry_run_apply(&cluster, &order("good", full_spec()));
    assert!(ok, "a good spec was refused:\n{stderr}");
    let minimal = json!({"orderId": 1, "commonName": "a.example", "secretName": "a"});
    let (ok, stderr) = dry_run_apply(&cluster, &order("minimal", minimal));
    assert!(ok, "a minimal spec was refused:\n{stderr}");
    let (ok, stderr) = dry_run_apply(&cluster, &order(&"n".repeat(63), full_spec()));
    assert!(ok, "a 63-character name was refused:\n{stderr}");

    let size_rule = "size must be 2048, 3072 or 4096 for RSA and 256 or 384 for ECDSA";
    let dns_rule = "every DNS name must be a lower-case domain name, optionally starting with *.";
    let long_name = format!("{}.example.com", "a".repeat(242));
    let too_many: Vec<String> = (0..251).map(|i| format!("n{i}.example.com")).collect();
    // (what, name, spec, the server's message)
    let cases: Vec<(&str, String, Value, &str)> = vec![
        (
            "an RSA key of 256 bits",
            "rsa-256".into(),
            with(json!({"privateKey": {"algorithm": "RSA", "size": 256}})),
            size_rule,
        ),
        (
            "an RSA key of 1024 bits",
            "rsa-1024".into(),
            with(json!({"privateKey": {"algorithm": "RSA", "size": 1024}})),
            size_rule,
        ),
        (
            "an ECDSA key of 2048 bits",
            "ecdsa-2048".into(),
            with(json!({"privateKey": {"algorithm": "ECDSA", "size": 2048}})),
            size_rule,
        ),
        (
            "a key size past 32 bits",
            "size-huge".into(),
            with(json!({"privateKey": {"size": 4294967296u64}})),
            "should be less than or equal to 4294967295",
        ),
        (
            "an unknown algorithm",
            "dsa".into(),
            with(json!({"privateKey": {"algorithm": "DSA"}})),
            "spec.privateKey.algorithm: Unsupported value: \"DSA\"",
        ),
        (
            "an unknown rotation policy",
            "rotation".into(),
            with(json!({"privateKey": {"rotationPolicy": "Sometimes"}})),
            "spec.privateKey.rotationPolicy: Unsupported value: \"Sometimes\"",
        ),
        (
            "an unknown key encoding",
            "encoding".into(),
            with(json!({"privateKey": {"encoding": "DER"}})),
            "spec.privateKey.encoding: Unsupported value: \"DER\"",
        ),
        (
            "both renewal settings",
            "two-renewals".into(),
            with(json!({"renewBefore": "720h", "renewBeforePercentage": 20})),
            "set renewBefore or renewBeforePercentage, not both",
        ),
        (
            "a renewal percentage of 0",
            "percent-0".into(),
            with(json!({"renewBefore": null, "renewBeforePercentage": 0})),
            "spec.renewBeforePercentage in body should be greater than or equal to 1",
        ),
        (
            "a renewal percentage of 100",
            "percent-100".into(),
            with(json!({"renewBefore": null, "renewBeforePercentage": 100})),
            "spec.renewBeforePercentage in body should be less than or equal to 99",
        ),
        (
            "a renewal time in days",
            "days".into(),
            with(json!({"renewBefore": "30d"})),
            "spec.renewBefore in body should match",
        ),
        (
            "a DNS name with an upper-case letter",
            "upper".into(),
            with(json!({"dnsNames": ["WWW.example.com"]})),
            dns_rule,
        ),
        (
            "a DNS name with an empty label",
            "empty-label".into(),
            with(json!({"dnsNames": ["www..example.com"]})),
            dns_rule,
        ),
        (
            "a DNS name with an underscore",
            "underscore".into(),
            with(json!({"dnsNames": ["bad_name.example.com"]})),
            dns_rule,
        ),
        (
            "an empty DNS name",
            "empty-name".into(),
            with(json!({"dnsNames": [""]})),
            "spec.dnsNames[0] in body should be at least 1 chars long",
        ),
        (
            "a DNS name of 254 characters",
            "long-name".into(),
            with(json!({"dnsNames": [long_name]})),
            "spec.dnsNames[0]: Too long: may not be more than 253 bytes",
        ),
        (
            "251 DNS names",
            "too-many".into(),
            with(json!({"dnsNames": too_many})),
            "spec.dnsNames: Too many: 251: must have at most 250 items",
        ),
        (
            "a common name with an upper-case letter",
            "cn-upper".into(),
            with(json!({"commonName": "Example.com"})),
            "spec.commonName in body should match",
        ),
        (
            "a common name of 65 characters",
            "cn-long".into(),
            with(json!({"commonName": format!("{}.example.com", "a".repeat(53))})),
            "spec.commonName: Too long: may not be more than 64 bytes",
        ),
        (
            "no common name",
            "cn-missing".into(),
            with(json!({"commonName": null})),
            "spec.commonName: Required value",
        ),
        (
            "a Secret name that is no DNS subdomain",
            "secret-name".into(),
            with(json!({"secretName": "Example_TLS"})),
            "spec.secretName in body should match",
        ),
        (
            "order id 0",
            "order-0".into(),
            with(json!({"orderId": 0})),
            "spec.orderId in body should be greater than or equal to 1",
        ),
        (
            "an order id that is a string",
            "order-string".into(),
            with(json!({"orderId": "1001"})),
            "spec.orderId in body must be of type integer",
        ),
        (
            "an unknown signature hash",
            "md5".into(),
            with(json!({"signatureHash": "md5"})),
            "spec.signatureHash: Unsupported value: \"md5\"",
        ),
        (
            "an unknown deletion policy",
            "delete".into(),
            with(json!({"deletionPolicy": "Delete"})),
            "spec.deletionPolicy: Unsupported value: \"Delete\"",
        ),
        (
            "comments of 1001 characters",
            "comments".into(),
            with(json!({"comments": "c".repeat(1001)})),
            "spec.comments: Too long: may not be more than 1000 bytes",
        ),
        (
            "an API key Secret name that is no DNS subdomain",
            "key-name".into(),
            with(json!({"apiKeySecretRef": {"name": "Team_Key"}})),
            "spec.apiKeySecretRef.name in body should match",
        ),
        (
            "an API key Secret key with a slash",
            "key-key".into(),
            with(json!({"apiKeySecretRef": {"name": "team-key", "key": "a/b"}})),
            "spec.apiKeySecretRef.key in body should match",
        ),
        (
            "an account and an own-namespace key",
            "both-accounts".into(),
            with(json!({"accountRef": {"name": "payments"}})),
            "set accountRef or apiKeySecretRef, not both",
        ),
        (
            "an own-namespace key's endpoint over plain http",
            "key-http".into(),
            with(
                json!({"apiKeySecretRef": {"name": "team-key", "certcentral": "http://certcentral.example/services/v2"}}),
            ),
            "spec.apiKeySecretRef.certcentral in body should match",
        ),
        (
            "an account name that is no DNS subdomain",
            "account-name".into(),
            with(json!({"apiKeySecretRef": null, "accountRef": {"name": "Payments"}})),
            "spec.accountRef.name in body should match",
        ),
        (
            "a misspelt field",
            "typo".into(),
            with(json!({"renewbefore": "1h"})),
            "unknown field \"spec.renewbefore\"",
        ),
        (
            "a name of 64 characters",
            "n".repeat(64),
            full_spec(),
            "the name of a DigicertOrder must be at most 63 characters",
        ),
    ];
    let mut failures = Vec::new();
    for (what, name, spec, message) in &cases {
        let (ok, stderr) = dry_run_apply(&cluster, &order(name, spec.clone()));
        if ok {
            failures.push(format!("{what}: admitted"));
        } else if !stderr.contains(message) {
            failures.push(format!("{what}: not refused with {message:?}:\n{stderr}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // orderId is immutable: an update that changes it is refused; other changes pass.
    cluster.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&order("immutable", full_spec()).to_string()),
    );
    let (ok, stderr) = dry_run_apply(
        &cluster,
        &order("immutable", with(json!({"orderId": 1002}))),
    );
    assert!(!ok, "orderId was changed");
    assert!(
        stderr.contains("orderId is immutable; create a new DigicertOrder for another order"),
        "{stderr}"
    );
    let (ok, stderr) = dry_run_apply(
        &cluster,
        &order("immutable", with(json!({"dnsNames": ["api.example.com"]}))),
    );
    assert!(ok, "a change of names was refused:\n{stderr}");
}

/// The description blocks of `kubectl explain` output: runs of lines indented by four
/// spaces.
fn description_blocks(text: &str) -> Vec<Vec<&str>> {
    let mut blocks = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.lines() {
        let indented = line.starts_with("    ") && !line.starts_with("     ");
        if indented && !line.trim().is_empty() {
            current.push(line);
        } else if !current.is_empty() {
            blocks.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        blocks.push(current);
    }
    blocks
}

#[tokio::test]
async fn kubectl_explain_reads_as_paragraphs() {
    let cluster = TestCluster::new("crd-explain").await;
    install_crd(&cluster);
    // The OpenAPI document of a new CRD is published shortly after it is Established.
    let explain = |field: &str| -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let out = cluster.kubectl_run(&["explain", field], None);
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).into_owned();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "kubectl explain {field}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    };
    let field = explain("digicertorders.spec.autoReissue");
    assert!(
        field.contains(
            "Mirrors DigiCert's auto-reissue setting of the order: true turns it on,\n    false off; unset leaves it as it is."
        ),
        "{field}"
    );
    // Enum fields too (by the short name).
    let field = explain("dco.spec.privateKey.algorithm");
    assert!(
        field.contains("The key algorithm: RSA (default) or ECDSA."),
        "{field}"
    );
    // kubectl wraps descriptions at 80 columns: a line ends early only where the next
    // word would not have fit, never in the middle of a sentence.
    let mut checked = 0;
    for path in [
        "digicertorders.spec",
        "digicertorders.spec.privateKey",
        "digicertorders.status",
        "digicertorders.status.reissue",
    ] {
        let text = explain(path);
        for block in description_blocks(&text) {
            for pair in block.windows(2) {
                let next_word = pair[1].trim_start().split(' ').next().unwrap_or_default();
                assert!(
                    pair[0].len() + 1 + next_word.len() > 80,
                    "{path}: a line break where the text goes on:\n{}\n{}",
                    pair[0],
                    pair[1]
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 20, "only {checked} wrapped lines seen");
}

// ------------------------------------------------------------------ DigicertAccount

fn generated_account_crd() -> Value {
    let text = std::fs::read_to_string(repo_root().join("crds/digicertaccounts.yaml")).unwrap();
    serde_yaml::from_str(&text).expect("the CRD is YAML")
}

fn account(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "digicert-operator.dev/v1alpha1",
        "kind": "DigicertAccount",
        "metadata": {"name": name},
        "spec": spec,
    })
}

fn full_account_spec() -> Value {
    json!({
        "certcentral": {"url": "https://certcentral.example.org/services/v2",
                        "caBundle": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"},
        "apiKeySecretRef": {"name": "payments-key", "key": "api-key"},
        "namespaceSelector": {"matchLabels": {"team": "payments"},
                              "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]},
        "orderIds": [1001, 1002],
        "allowApproval": true,
        "allowOrderCancel": false,
    })
}

fn with_account(changes: Value) -> Value {
    merged(full_account_spec(), changes)
}

#[tokio::test]
async fn the_account_crd_is_created_without_a_warning_and_is_cluster_scoped() {
    let cluster = TestCluster::new("crd-account-create").await;
    let group = format!("{}.e2e.digicert-operator.dev", cluster.namespace);
    let mut crd = generated_account_crd();
    crd["metadata"]["name"] = json!(format!("digicertaccounts.{group}"));
    crd["spec"]["group"] = json!(group);
    let (ok, stderr) = dry_run_create(&cluster, &crd);
    assert!(ok, "the server refused the CRD:\n{stderr}");
    assert!(
        !stderr.to_ascii_lowercase().contains("warning"),
        "the server warned about the CRD:\n{stderr}"
    );
    assert_eq!(crd["spec"]["scope"], "Cluster");
}

#[tokio::test]
async fn every_account_rule_and_bound_is_enforced_at_admission() {
    let cluster = TestCluster::new("crd-account-rules").await;
    install_crd(&cluster);
    let name = |n: &str| format!("{}-{n}", cluster.namespace);
    let (ok, stderr) = dry_run_apply(&cluster, &account(&name("good"), full_account_spec()));
    assert!(ok, "a good account was refused:\n{stderr}");
    let minimal = json!({"apiKeySecretRef": {"name": "k"}, "namespaceSelector": {}});
    let (ok, stderr) = dry_run_apply(&cluster, &account(&name("minimal"), minimal));
    assert!(ok, "a minimal account was refused:\n{stderr}");
    for url in ["us", "eu", "https://127.0.0.1:8443/services/v2"] {
        let spec = with_account(json!({"certcentral": {"url": url}}));
        let (ok, stderr) = dry_run_apply(&cluster, &account(&name("url"), spec));
        assert!(ok, "{url} was refused:\n{stderr}");
    }
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "no namespace selector",
            with_account(json!({"namespaceSelector": null})),
            "spec.namespaceSelector: Required value",
        ),
        (
            "no API key Secret",
            with_account(json!({"apiKeySecretRef": null})),
            "spec.apiKeySecretRef: Required value",
        ),
        (
            "an endpoint over plain http",
            with_account(
                json!({"certcentral": {"url": "http://certcentral.example.org/services/v2"}}),
            ),
            "spec.certcentral.url in body should match",
        ),
        (
            "an endpoint that is neither us, eu nor a URL",
            with_account(json!({"certcentral": {"url": "asia"}})),
            "spec.certcentral.url in body should match",
        ),
        (
            "a CA bundle without certificates",
            with_account(json!({"certcentral": {"url": "eu", "caBundle": "trust me"}})),
            "caBundle must hold PEM certificates",
        ),
        (
            "order id 0",
            with_account(json!({"orderIds": [0]})),
            "spec.orderIds[0] in body should be greater than or equal to 1",
        ),
        (
            "an order id twice",
            with_account(json!({"orderIds": [1001, 1001]})),
            "orderIds must not repeat",
        ),
        (
            "a Secret name that is no DNS subdomain",
            with_account(json!({"apiKeySecretRef": {"name": "Key_1"}})),
            "spec.apiKeySecretRef.name in body should match",
        ),
        (
            "a misspelt field",
            with_account(json!({"allowapproval": true})),
            "unknown field \"spec.allowapproval\"",
        ),
    ];
    let mut failures = Vec::new();
    for (what, spec, message) in &cases {
        let (ok, stderr) = dry_run_apply(&cluster, &account(&name("bad"), spec.clone()));
        if ok {
            failures.push(format!("{what}: admitted"));
        } else if !stderr.contains(message) {
            failures.push(format!("{what}: not refused with {message:?}:\n{stderr}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The printer columns.
    let out = cluster.kubectl_ok(
        &[
            "get",
            "crd",
            "digicertaccounts.digicert-operator.dev",
            "-o",
            "jsonpath={.spec.versions[0].additionalPrinterColumns[*].name}",
        ],
        None,
    );
    assert_eq!(out.trim(), "Endpoint Ready Reason Age");
}

/// `domainValidation`, on a DigicertOrder (and the same type on an account): good
/// settings of each method admitted, each misuse refused with its own message.
#[tokio::test]
async fn domain_validation_settings_are_checked_at_admission() {
    let cluster = TestCluster::new("crd-dcv-rules").await;
    install_crd(&cluster);
    let rfc2136 = json!({"nameserver": "ns1.example.com:53", "tsigKeyName": "k",
                         "tsigSecretRef": {"name": "tsig"}});
    let good = [
        json!({"dns": {"rfc2136": rfc2136}}),
        json!({"method": "dns-cname-token", "dns": {"dnsEndpoint": {"labels": {"a": "b"}, "ttl": 60}}}),
        json!({"method": "http-token", "http": {"ingress": {"className": "nginx"}}}),
        json!({"method": "http-token", "http": {"gatewayHTTPRoute": {"parentRefs": [{"name": "gw"}]}},
               "renewBefore": "72h"}),
    ];
    for dv in &good {
        let (ok, stderr) = dry_run_apply(
            &cluster,
            &order("dcv", with(json!({"domainValidation": dv}))),
        );
        assert!(ok, "{dv} was refused:\n{stderr}");
        let account_spec = with_account(json!({"domainValidation": dv}));
        let name = format!("{}-dcv", cluster.namespace);
        let (ok, stderr) = dry_run_apply(&cluster, &account(&name, account_spec));
        assert!(ok, "{dv} was refused on an account:\n{stderr}");
    }
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "a DNS method without dns",
            json!({"method": "dns-txt-token"}),
            "dns-txt-token and dns-cname-token need dns; http-token needs http",
        ),
        (
            "http-token without http",
            json!({"method": "http-token", "dns": {"rfc2136": rfc2136}}),
            "dns-txt-token and dns-cname-token need dns; http-token needs http",
        ),
        (
            "two DNS providers",
            json!({"dns": {"rfc2136": rfc2136, "dnsEndpoint": {}}}),
            "dns takes exactly one of rfc2136 and dnsEndpoint",
        ),
        (
            "no DNS provider",
            json!({"dns": {}}),
            "dns takes exactly one of rfc2136 and dnsEndpoint",
        ),
        (
            "an Ingress and an HTTPRoute",
            json!({"method": "http-token", "http": {"ingress": {}, "gatewayHTTPRoute": {"parentRefs": [{"name": "gw"}]}}}),
            "http takes exactly one of ingress and gatewayHTTPRoute",
        ),
        (
            "an HTTPRoute without a Gateway",
            json!({"method": "http-token", "http": {"gatewayHTTPRoute": {"parentRefs": []}}}),
            "parentRefs in body should have at least 1 items",
        ),
        (
            "email, which needs a person",
            json!({"method": "email", "dns": {"rfc2136": rfc2136}}),
            "spec.domainValidation.method: Unsupported value: \"email\"",
        ),
        (
            "a TSIG algorithm the updates cannot be signed with",
            json!({"dns": {"rfc2136": merged(rfc2136.clone(), json!({"tsigAlgorithm": "hmac-md5"}))}}),
            "tsigAlgorithm: Unsupported value: \"hmac-md5\"",
        ),
        (
            "RFC 2136 without a key",
            json!({"dns": {"rfc2136": {"nameserver": "ns1.example.com"}}}),
            "tsigKeyName: Required value",
        ),
        (
            "a nameserver with a path",
            json!({"dns": {"rfc2136": merged(rfc2136.clone(), json!({"nameserver": "http://ns1/x"}))}}),
            "nameserver in body should match",
        ),
        (
            "a TTL of 0",
            json!({"dns": {"dnsEndpoint": {"ttl": 0}}}),
            "ttl in body should be greater than or equal to 1",
        ),
        (
            "a renewBefore in days",
            json!({"dns": {"dnsEndpoint": {}}, "renewBefore": "2d"}),
            "renewBefore in body should match",
        ),
    ];
    let mut failures = Vec::new();
    for (what, dv, message) in &cases {
        let (ok, stderr) = dry_run_apply(
            &cluster,
            &order("dcv-bad", with(json!({"domainValidation": dv}))),
        );
        if ok {
            failures.push(format!("{what}: admitted"));
        } else if !stderr.contains(message) {
            failures.push(format!("{what}: not refused with {message:?}:\n{stderr}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicate_issuance_is_checked_at_admission() {
    let cluster = TestCluster::new("crd-duplicate-rules").await;
    install_crd(&cluster);
    // A duplicate takes its names from the order: no dnsNames, nothing that belongs to
    // the resource that reissues.
    let duplicate = json!({"issuance": "Duplicate", "dnsNames": null, "autoReissue": null,
                           "domainValidation": null, "allowRevocationOfPrevious": null});
    let (ok, stderr) = dry_run_apply(&cluster, &order("dup", with(duplicate.clone())));
    assert!(ok, "a plain duplicate was refused:\n{stderr}");
    let (ok, stderr) = dry_run_apply(
        &cluster,
        &order("reissuer", with(json!({"allowRevocationOfPrevious": true}))),
    );
    assert!(ok, "allowRevocationOfPrevious was refused:\n{stderr}");
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "dnsNames on a duplicate",
            json!({"dnsNames": ["www.example.com"]}),
            "a duplicate carries the names of the order's current certificate",
        ),
        (
            "autoReissue on a duplicate",
            json!({"autoReissue": true}),
            "belong to the DigicertOrder that reissues the order",
        ),
        (
            "consent to revocation on a duplicate",
            json!({"allowRevocationOfPrevious": true}),
            "belong to the DigicertOrder that reissues the order",
        ),
        (
            "another issuance",
            json!({"issuance": "Order"}),
            "spec.issuance: Unsupported value: \"Order\"",
        ),
    ];
    let mut failures = Vec::new();
    for (what, change, message) in &cases {
        let spec = merged(with(duplicate.clone()), change.clone());
        let (ok, stderr) = dry_run_apply(&cluster, &order("dup-bad", spec));
        if ok {
            failures.push(format!("{what}: admitted"));
        } else if !stderr.contains(message) {
            failures.push(format!("{what}: not refused with {message:?}:\n{stderr}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A DigicertOrder without serverPlatformId reads back without one: no number stands
/// for "none" (`kubectl describe` showed `Server Platform Id: -1`). One written with
/// that old default is still taken, and means none.
#[tokio::test]
async fn an_order_without_a_server_platform_reads_back_without_one() {
    let cluster = TestCluster::new("crd-server-platform").await;
    install_crd(&cluster);
    let spec = |more: Value| {
        merged(
            json!({"orderId": 1, "commonName": "a.example", "secretName": "a"}),
            more,
        )
    };
    for (name, more) in [
        ("plain", json!({})),
        ("old-default", json!({"serverPlatformId": -1})),
        ("platform", json!({"serverPlatformId": 45})),
    ] {
        cluster.kubectl_ok(
            &["create", "-f", "-"],
            Some(&order(name, spec(more)).to_string()),
        );
    }
    let read = |name: &str| -> Value {
        serde_json::from_str(&cluster.kubectl_ok(&["get", "dco", name, "-o", "json"], None))
            .unwrap()
    };
    let plain = read("plain");
    assert!(
        plain["spec"].get("serverPlatformId").is_none(),
        "{}",
        plain["spec"]
    );
    let describe = cluster.kubectl_ok(&["describe", "dco", "plain"], None);
    assert!(!describe.contains("Server Platform"), "{describe}");
    assert_eq!(read("platform")["spec"]["serverPlatformId"], 45);

    let orders: Api<DigicertOrder> = cluster.api();
    let platform = |name: &'static str| {
        let orders = orders.clone();
        async move { orders.get(name).await.unwrap().spec.server_platform_id }
    };
    assert_eq!(platform("plain").await, None);
    assert_eq!(platform("old-default").await, None);
    assert_eq!(platform("platform").await, Some(45));
}

// ------------------------------------------------------------------ events

/// A ConfigMap to publish events about (`kubectl describe` finds them by its uid).
async fn subject(cluster: &TestCluster, name: &str) -> ObjectReference {
    let map = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    };
    let map = cluster
        .api::<ConfigMap>()
        .create(&PostParams::default(), &map)
        .await
        .unwrap();
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("ConfigMap".into()),
        name: Some(name.into()),
        namespace: Some(cluster.namespace.clone()),
        uid: map.metadata.uid,
        ..ObjectReference::default()
    }
}

/// The Events about `about`, oldest first, as events.k8s.io/v1 and core/v1 show them.
async fn events_about(
    client: &kube::Client,
    about: &ObjectReference,
) -> (Vec<Event>, Vec<CoreEvent>) {
    let ns = about.namespace.as_deref().unwrap();
    let mut events: Vec<Event> = Api::<Event>::namespaced(client.clone(), ns)
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.uid.as_ref()) == about.uid.as_ref())
        .collect();
    events.sort_by_key(|e| e.event_time.clone().map(|t| t.0));
    let mut core: Vec<CoreEvent> = Api::<CoreEvent>::namespaced(client.clone(), ns)
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.involved_object.uid == about.uid)
        .collect();
    core.sort_by_key(|e| e.event_time.clone().map(|t| t.0));
    (events, core)
}

const FIRST_NOTE: &str = "certificate 100006 (serial 3B21F2)";
const LATEST_NOTE: &str = "certificate 100007 (serial 35B468)";

/// A repeat of an event with another note shows that note, in events.k8s.io/v1 (the
/// note), core/v1 (the message) and `kubectl describe`, counted into the series.
#[tokio::test]
async fn a_repeated_event_shows_its_latest_note() {
    let cluster = TestCluster::new("events-latest-note").await;
    let web = subject(&cluster, "web").await;
    let events = Events::new(
        cluster.client.clone(),
        "digicert-operator.dev/e2e",
        Some("e2e".into()),
    );
    let publish = |note: &'static str| {
        events.publish(EventType::Normal, "CertificateIssued", "Store", note, &web)
    };
    publish(FIRST_NOTE).await.unwrap();
    publish(LATEST_NOTE).await.unwrap();
    let (new, core) = events_about(&cluster.client, &web).await;
    assert_eq!(new.len(), 1, "{new:#?}");
    assert_eq!(new[0].note.as_deref(), Some(LATEST_NOTE));
    assert_eq!(new[0].series.as_ref().map(|s| s.count), Some(2));
    assert_eq!(core.len(), 1, "{core:#?}");
    assert_eq!(core[0].message.as_deref(), Some(LATEST_NOTE));
    assert_eq!(core[0].series.as_ref().and_then(|s| s.count), Some(2));

    // The same note again counts on.
    publish(LATEST_NOTE).await.unwrap();
    let (new, _) = events_about(&cluster.client, &web).await;
    assert_eq!(new.len(), 1, "{new:#?}");
    assert_eq!(new[0].note.as_deref(), Some(LATEST_NOTE));
    assert_eq!(new[0].series.as_ref().map(|s| s.count), Some(3));
    let describe = cluster.kubectl_ok(&["describe", "configmap", "web"], None);
    let line = describe
        .lines()
        .find(|l| l.contains("CertificateIssued"))
        .unwrap_or_else(|| panic!("no event in:\n{describe}"));
    assert!(line.contains("(x3 over"), "{line}");
    assert!(line.ends_with(LATEST_NOTE), "{line}");
}

/// Where the operator may write events.k8s.io/v1 Events only (RBAC of older installs),
/// a new note starts a new Event instead, and repeats of it count into that one.
#[tokio::test]
async fn without_the_right_to_patch_core_events_a_new_note_starts_a_new_event() {
    let cluster = TestCluster::new("events-new-note-rbac").await;
    let ns = cluster.namespace.clone();
    cluster.kubectl_ok(
        &["apply", "-f", "-"],
        Some(
            &json!({"apiVersion": "v1", "kind": "List", "items": [
                {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "publisher"}},
                {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                 "metadata": {"name": "publisher"},
                 "rules": [{"apiGroups": ["events.k8s.io"], "resources": ["events"],
                            "verbs": ["create", "patch"]}]},
                {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                 "metadata": {"name": "publisher"},
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                             "name": "publisher"},
                 "subjects": [{"kind": "ServiceAccount", "name": "publisher", "namespace": ns}]},
            ]})
            .to_string(),
        ),
    );
    let token = cluster
        .api::<ServiceAccount>()
        .create_token_request(
            "publisher",
            &PostParams::default(),
            &k8s_openapi::api::authentication::v1::TokenRequest {
                spec: k8s_openapi::api::authentication::v1::TokenRequestSpec {
                    expiration_seconds: Some(600),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .status
        .expect("token issued")
        .token;
    let mut config = cluster.config_without_credentials().await;
    config.auth_info.token = Some(token.into());
    let limited = kube::Client::try_from(config).unwrap();
    let web = subject(&cluster, "web").await;
    let events = Events::new(limited, "digicert-operator.dev/e2e", Some("e2e".into()));
    let publish = |note: &'static str| {
        events.publish(EventType::Normal, "CertificateIssued", "Store", note, &web)
    };
    publish(FIRST_NOTE).await.unwrap();
    publish(LATEST_NOTE).await.unwrap();
    publish(LATEST_NOTE).await.unwrap();
    let (new, core) = events_about(&cluster.client, &web).await;
    let shown: Vec<(Option<&str>, Option<i32>)> = new
        .iter()
        .map(|e| (e.note.as_deref(), e.series.as_ref().map(|s| s.count)))
        .collect();
    assert_eq!(
        shown,
        [(Some(FIRST_NOTE), None), (Some(LATEST_NOTE), Some(2))]
    );
    assert_eq!(
        core.last().and_then(|e| e.message.as_deref()),
        Some(LATEST_NOTE)
    );
}

// ------------------------------------------------------------------ kubectl digicert

/// Runs the command line (`kubectl digicert …`) against the test cluster.
fn plugin(cluster: &TestCluster, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(crate::support::process::binary())
        .args(args)
        .env("KUBECONFIG", &cluster.kubeconfig)
        .env_remove("LOG_LEVEL")
        .env_remove("LOG_FORMAT")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_plugin_prints_an_error_once() {
    let cluster = TestCluster::new("plugin-errors").await;
    install_crd(&cluster);
    let ns = cluster.namespace.as_str();
    for command in ["inspect", "cancel", "renew", "allow-revocation"] {
        let (ok, out, err) = plugin(&cluster, &[command, "missing", "-n", ns]);
        assert!(!ok, "{command} succeeded: {out}");
        assert_eq!(
            err.lines().collect::<Vec<_>>(),
            [format!("error: DigicertOrder {ns}/missing not found")],
            "{command}: stderr:\n{err}"
        );
    }
}

#[tokio::test]
async fn cancel_says_what_happens_with_and_without_a_reissue_in_flight() {
    let cluster = TestCluster::new("plugin-cancel").await;
    install_crd(&cluster);
    let ns = cluster.namespace.as_str();
    let spec = json!({"orderId": 1001, "commonName": "example.com", "secretName": "web-tls"});
    for name in ["idle", "busy"] {
        cluster.kubectl_ok(
            &["create", "-f", "-"],
            Some(&order(name, spec.clone()).to_string()),
        );
    }
    // What the operator writes while a reissue waits at DigiCert.
    let orders: Api<DigicertOrder> = cluster.api();
    orders
        .patch_status(
            "busy",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "reissue": {"state": "Submitted", "reason": "Missing", "requestId": 500001,
                            "csrFingerprint": "c0ffee", "specFingerprint": "5bec",
                            "keySecretName": "busy-pending-key"},
                "conditions": [{"type": "Issuing", "status": "True", "reason": "Pending",
                                "message": "waiting for DigiCert to issue the certificate",
                                "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            }})),
        )
        .await
        .unwrap();
    let cancel_requested = |o: &DigicertOrder| {
        o.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CANCEL_ANNOTATION))
            .cloned()
    };

    // Nothing in flight: it says so and leaves the order alone.
    let (ok, out, err) = plugin(&cluster, &["cancel", "idle", "-n", ns]);
    assert!(ok, "{err}");
    assert!(out.contains("idle has no reissue in flight"), "{out}");
    assert!(out.contains("renewals go on"), "{out}");
    assert!(!out.contains("until the spec changes"), "{out}");
    assert_eq!(cancel_requested(&orders.get("idle").await.unwrap()), None);

    // In flight: the annotation, and what it does.
    let (ok, out, err) = plugin(&cluster, &["cancel", "busy", "-n", ns]);
    assert!(ok, "{err}");
    let at = cancel_requested(&orders.get("busy").await.unwrap()).expect("cancel requested");
    for part in [
        "Submitted, request 500001 (pending at DigiCert)".to_string(),
        format!("{CANCEL_ANNOTATION}={at}"),
        "until the spec changes or a renewal is requested".to_string(),
    ] {
        assert!(out.contains(&part), "{part}: {out}");
    }

    // `status` says where the reissue stands in words.
    let (ok, out, err) = plugin(&cluster, &["status", "-n", ns]);
    assert!(ok, "{err}");
    let busy = out.lines().find(|l| l.starts_with("busy")).expect("a row");
    assert!(
        busy.contains(
            "Submitted, request 500001 (pending at DigiCert); no certificate in the Secret"
        ),
        "{out}"
    );
    assert!(!out.contains("(Missing)"), "{out}");
}
