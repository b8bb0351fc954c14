//! The Helm chart (charts/digicert-operator), the plain manifests (deploy/) and the
//! image (Dockerfile): lint and render, have the real API server judge every render
//! (server-side dry-run, strict field validation, no warnings), refuse bad values,
//! install, upgrade and uninstall, and prove the RBAC the chart grants by running the
//! operator with nothing but a token of the chart's ServiceAccount. The README's
//! install commands run here as they are written, on a server of their own.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::cluster::{
    OwnControlPlane, TestCluster, helm_python, kubectl_command, repo_root,
};
use crate::support::env::{OperatorEnv, condition, install_crd, verify_tls_secret};
use crate::support::process::OperatorProcess;
use certcentral_sim::{self, ApiKeyConfig, RunningSimulator, SeedFile, SimulatorConfig};
use digicert_operator::certcentral::Operation;
use digicert_operator::crd::{DigicertAccount, DigicertOrder};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use kube::api::{Api, PostParams};
use kube::config::Kubeconfig;
use serde::Deserialize;
use serde_json::{Value, json};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

const CHART: &str = "charts/digicert-operator";

/// The image repository of the renders and installs: the chart requires one.
const IMAGE: &str = "registry.example.org/digicert-operator";
const SET_IMAGE: &str = "image.repository=registry.example.org/digicert-operator";

/// The chart's appVersion, its images' default tag.
fn app_version() -> String {
    let chart: Value = serde_yaml::from_str(
        &std::fs::read_to_string(repo_root().join(CHART).join("Chart.yaml")).unwrap(),
    )
    .unwrap();
    chart["appVersion"]
        .as_str()
        .expect("appVersion")
        .to_string()
}

// ----------------------------------------------------------------- helm

/// `hack/helm/helm.py ARGS` in the repository root (paths are relative to it),
/// against `kubeconfig` or, without one, no cluster at all.
fn helm(args: &[&str], kubeconfig: Option<&OsStr>) -> Output {
    let mut cmd = Command::new(helm_python());
    cmd.arg(repo_root().join("hack/helm/helm.py"))
        .args(args)
        .current_dir(repo_root());
    match kubeconfig {
        Some(k) => cmd.env("KUBECONFIG", k),
        None => cmd.env_remove("KUBECONFIG"),
    };
    cmd.output().expect("helm.py runs")
}

fn helm_ok(args: &[&str], kubeconfig: Option<&OsStr>) -> String {
    let out = helm(args, kubeconfig);
    assert!(
        out.status.success(),
        "helm {}:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `helm template test CHART -n test-ns --set image.repository=IMAGE ARGS`.
fn template(args: &[&str]) -> String {
    let mut all = vec![
        "template", "test", CHART, "-n", "test-ns", "--set", SET_IMAGE,
    ];
    all.extend_from_slice(args);
    helm_ok(&all, None)
}

/// The documents of a multi-document YAML text; empty ones are left out.
fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).expect("a YAML document"))
        .filter(|v| !v.is_null())
        .collect()
}

fn describe(docs: &[Value]) -> Vec<String> {
    docs.iter()
        .map(|d| {
            format!(
                "{}/{}/{}",
                d["kind"].as_str().unwrap_or("?"),
                d["metadata"]["namespace"].as_str().unwrap_or(""),
                d["metadata"]["name"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {:?}", describe(docs)))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().expect("a string").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Panics when a command's stderr carries a warning of the API server (kubectl prints
/// them as `Warning: ...`) or of Helm.
fn assert_no_warnings(what: &str, stderr: &str) {
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.to_ascii_lowercase().contains("warning"))
        .collect();
    assert!(
        warnings.is_empty(),
        "{what} warned:\n{}",
        warnings.join("\n")
    );
}

/// The API server's verdict on `yaml` (every document): a server-side apply, dry-run,
/// with strict field validation, so an unknown or duplicate field is an error; objects
/// that exist already (a release's) are judged as updates. Panics on a refusal or on
/// any warning.
fn server_dry_run(kubeconfig: &OsStr, what: &str, yaml: &str) {
    use std::io::Write;
    let mut child = kubectl_command(kubeconfig)
        .args([
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=e2e-dry-run",
            "--dry-run=server",
            "--validate=strict",
            "-f",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the API server refused {what}:\n{stderr}"
    );
    assert_no_warnings(what, &stderr);
    let applied = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        applied.lines().count(),
        documents(yaml).len(),
        "{what}: one line per object:\n{applied}"
    );
}

/// The Prometheus Operator's ServiceMonitor kind (a schema of our own, see the
/// fixture), so that the chart's ServiceMonitor is judged by the server too.
fn install_servicemonitor_crd(cluster: &TestCluster) {
    let crd = repo_root().join("crates/digicert-operator/tests/fixtures/servicemonitor-crd.yaml");
    let out = cluster.kubectl_run(&["apply", "-f", crd.to_str().unwrap()], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    crate::support::cluster::wait_established(
        &cluster.kubeconfig,
        &["servicemonitors.monitoring.coreos.com"],
    );
}

/// No `*` in any rule of any Role or ClusterRole.
fn assert_no_wildcards(docs: &[Value]) {
    let roles: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == "Role" || d["kind"] == "ClusterRole")
        .collect();
    assert!(!roles.is_empty(), "no roles in {:?}", describe(docs));
    for role in roles {
        assert!(role.get("aggregationRule").is_none(), "{role}");
        let rules = role["rules"].as_array().expect("rules");
        assert!(!rules.is_empty(), "{role}");
        for rule in rules {
            for field in [
                "apiGroups",
                "resources",
                "verbs",
                "resourceNames",
                "nonResourceURLs",
            ] {
                for v in strings(&rule[field]) {
                    assert!(
                        !v.contains('*'),
                        "{} {}: {field} has {v:?}",
                        role["kind"],
                        role["metadata"]["name"]
                    );
                }
            }
        }
    }
}

/// The pod passes the restricted Pod Security Standard.
fn assert_restricted(deployment: &Value) {
    let pod = &deployment["spec"]["template"]["spec"];
    let name = &deployment["metadata"]["name"];
    let psc = &pod["securityContext"];
    assert_eq!(psc["runAsNonRoot"], true, "{name}");
    assert_eq!(psc["runAsUser"], 65532, "{name}");
    assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault", "{name}");
    for field in ["hostNetwork", "hostPID", "hostIPC"] {
        assert!(pod.get(field).is_none(), "{name}: {field}");
    }
    for v in pod["volumes"].as_array().into_iter().flatten() {
        let kind: Vec<&String> = v
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "name")
            .collect();
        assert!(
            matches!(kind[0].as_str(), "configMap" | "secret" | "emptyDir"),
            "{name}: volume {v}"
        );
    }
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1, "{name}");
    for c in containers {
        let sc = &c["securityContext"];
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{name}");
        assert!(sc.get("privileged").is_none(), "{name}");
        assert!(sc["capabilities"].get("add").is_none(), "{name}");
        assert!(c["resources"]["requests"]["memory"].is_string(), "{name}");
        assert!(c["resources"]["limits"]["memory"].is_string(), "{name}");
        for p in c["ports"].as_array().into_iter().flatten() {
            assert!(p.get("hostPort").is_none(), "{name}");
        }
    }
}

fn container(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

fn args(deployment: &Value) -> Vec<String> {
    strings(&container(deployment)["args"])
}

fn sha256_hex(data: &[u8]) -> String {
    digicert_operator::hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data).as_ref())
}

/// A rendered Secret's value for `key`, decoded.
fn secret_value(secret: &Value, key: &str) -> Vec<u8> {
    let secret: Secret = serde_json::from_value(secret.clone()).expect("a Secret");
    secret.data.unwrap_or_default()[key].0.clone()
}

/// The DNS names of a certificate, and whether it verifies with the CA's key.
fn certificate_names(cert_pem: &str, ca_pem: &str) -> Vec<String> {
    let der = digicert_operator::keys::certificates_from_pem(cert_pem).unwrap();
    let ca_der = digicert_operator::keys::certificates_from_pem(ca_pem).unwrap();
    let (_, cert) = X509Certificate::from_der(&der[0]).unwrap();
    let (_, ca) = X509Certificate::from_der(&ca_der[0]).unwrap();
    cert.verify_signature(Some(ca.public_key()))
        .expect("signed by the CA");
    let san = cert
        .subject_alternative_name()
        .unwrap()
        .expect("subjectAltName");
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some(d.to_string()),
            _ => None,
        })
        .collect()
}

/// A self-signed CA certificate (PEM), standing for a TLS-inspecting proxy's.
fn some_ca_pem() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Proxy CA");
    params.self_signed(&key).unwrap().pem()
}

// ----------------------------------------------------------------- static checks

#[test]
fn the_charts_crds_are_the_generated_crds() {
    let root = repo_root();
    for file in ["digicertaccounts.yaml", "digicertorders.yaml"] {
        let chart = std::fs::read_to_string(root.join(CHART).join("crds").join(file))
            .unwrap_or_else(|_| panic!("the chart has crds/{file}"));
        let generated = std::fs::read_to_string(root.join("crds").join(file)).unwrap();
        assert!(
            chart == generated,
            "charts/digicert-operator/crds/{file} differs from crds/{file}: \
             run hack/render-manifests.sh (it copies the CRDs and renders deploy/)"
        );
    }
    let mut files: Vec<_> = std::fs::read_dir(root.join(CHART).join("crds"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    files.sort();
    assert_eq!(
        files,
        vec![
            OsString::from("digicertaccounts.yaml"),
            OsString::from("digicertclusterissuers.yaml"),
            OsString::from("digicertissuers.yaml"),
            OsString::from("digicertorders.yaml")
        ]
    );
}

/// What the operator may do in its own namespace (account keys, claim Leases) and
/// cluster-wide for accounts, in every mode.
fn account_rules() -> (Value, Value) {
    (
        json!([
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
             "verbs": ["get", "create", "update"]},
        ]),
        json!([
            {"apiGroups": ["digicert-operator.dev"], "resources": ["digicertaccounts"],
             "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["digicert-operator.dev"], "resources": ["digicertaccounts/status"],
             "verbs": ["patch"]},
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]},
            {"apiGroups": ["digicert-operator.dev"], "resources": ["digicertclusterissuers"],
             "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["digicert-operator.dev"],
             "resources": ["digicertclusterissuers/status"], "verbs": ["patch"]},
        ]),
    )
}

#[test]
fn cert_managers_approver_is_granted_our_signer_names_when_asked() {
    // Default (auto): only where the cluster serves cert-manager.io/v1; a render
    // without a cluster has none.
    let by_default = documents(&template(&[]));
    assert!(
        !describe(&by_default)
            .iter()
            .any(|d| d.contains("cert-manager-approver")),
        "{:?}",
        describe(&by_default)
    );
    let docs = documents(&template(&[
        "--set",
        "certManager.approverRBAC.create=true",
        "--set",
        "certManager.serviceAccount.namespace=cm",
    ]));
    let role = find(
        &docs,
        "ClusterRole",
        "test-digicert-operator-cert-manager-approver",
    );
    assert_eq!(
        role["rules"],
        json!([{
            "apiGroups": ["cert-manager.io"], "resources": ["signers"], "verbs": ["approve"],
            "resourceNames": [
                "digicertissuers.digicert-operator.dev/*",
                "digicertclusterissuers.digicert-operator.dev/*",
            ],
        }])
    );
    let binding = find(
        &docs,
        "ClusterRoleBinding",
        "test-digicert-operator-cert-manager-approver",
    );
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "cert-manager", "namespace": "cm"}])
    );
    let off = documents(&template(&[
        "--set",
        "certManager.approverRBAC.create=false",
    ]));
    assert_eq!(describe(&off), describe(&by_default));
}

/// Values that turn on everything the defaults leave off.
fn full_values() -> String {
    let values = json!({
        "replicas": 2,
        "leaderElection": {"enabled": false},
        "watchNamespaces": ["team-a", "team-b"],
        "apiKey": {"value": "my-api-key", "key": "token"},
        "certcentral": {"url": "eu", "caBundle": some_ca_pem()},
        "simulator": {"enabled": true, "adminToken": "admin-secret", "rateLimits": false},
        "networkPolicy": {
            "enabled": true,
            "kubernetesApi": {"cidrs": ["10.0.0.1/32"], "ports": [6443]},
        },
        "serviceMonitor": {"enabled": true, "labels": {"release": "prometheus"}},
        "podDisruptionBudget": {"enabled": true},
        "serveUnassigned": false,
        "resync": "30m",
        "feedInterval": "30s",
        "concurrency": 4,
        "orderExpiryWarning": "1440h",
        "deletionTimeout": "5m",
        "secretOwnerReferences": true,
        "logLevel": "info,digicert_operator=debug",
        "logFormat": "json",
        "extraArgs": ["--lease-duration=20s"],
        "podAnnotations": {"example.org/team": "pki"},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "pki", "effect": "NoSchedule"}],
        "image": {"repository": IMAGE, "tag": "1.2.3"},
    });
    serde_yaml::to_string(&values).unwrap()
}

fn values_file(yaml: &str) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    std::fs::write(file.path(), yaml).unwrap();
    file
}

#[test]
fn the_chart_lints_strictly_with_default_and_other_values() {
    helm_ok(&["lint", CHART, "--strict", "--set", SET_IMAGE], None);
    helm_ok(
        &[
            "lint",
            CHART,
            "--strict",
            "--kube-version",
            "v1.33.0",
            "--set",
            SET_IMAGE,
        ],
        None,
    );
    let values = values_file(&full_values());
    helm_ok(
        &[
            "lint",
            CHART,
            "--strict",
            "-f",
            values.path().to_str().unwrap(),
        ],
        None,
    );
}

/// What the operator may do where it watches (cluster-wide, or in each watched
/// namespace): no more than it does.
fn watch_rules() -> Value {
    json!([
        {"apiGroups": ["digicert-operator.dev"], "resources": ["digicertorders"],
         "verbs": ["get", "list", "watch", "patch"]},
        {"apiGroups": ["digicert-operator.dev"], "resources": ["digicertorders/status"],
         "verbs": ["update"]},
        {"apiGroups": ["digicert-operator.dev"], "resources": ["digicertorders/finalizers"],
         "verbs": ["update"]},
        {"apiGroups": [""], "resources": ["secrets"],
         "verbs": ["get", "list", "watch", "create", "patch", "delete"]},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["patch"]},
        {"apiGroups": ["externaldns.k8s.io"], "resources": ["dnsendpoints"],
         "verbs": ["get", "create", "patch", "delete"]},
        {"apiGroups": ["cert-manager.io"], "resources": ["certificaterequests"],
         "verbs": ["get", "list", "watch", "patch"]},
        {"apiGroups": ["cert-manager.io"], "resources": ["certificaterequests/status"],
         "verbs": ["patch"]},
        {"apiGroups": ["cert-manager.io"], "resources": ["certificates"], "verbs": ["get"]},
        {"apiGroups": ["digicert-operator.dev"], "resources": ["digicertissuers"],
         "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["digicert-operator.dev"], "resources": ["digicertissuers/status"],
         "verbs": ["patch"]},
    ])
}

#[test]
fn default_values_render_a_restricted_cluster_wide_operator() {
    let yaml = template(&[]);
    let docs = documents(&yaml);
    let mut kinds: Vec<String> = describe(&docs);
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "ClusterRole//test-digicert-operator",
            "ClusterRole//test-digicert-operator-accounts",
            "ClusterRoleBinding//test-digicert-operator",
            "ClusterRoleBinding//test-digicert-operator-accounts",
            "Deployment/test-ns/test-digicert-operator",
            "DigicertAccount//test-digicert-operator",
            "Role/test-ns/test-digicert-operator-accounts",
            "Role/test-ns/test-digicert-operator-leader-election",
            "RoleBinding/test-ns/test-digicert-operator-accounts",
            "RoleBinding/test-ns/test-digicert-operator-leader-election",
            "Service/test-ns/test-digicert-operator-metrics",
            "ServiceAccount/test-ns/test-digicert-operator",
        ]
    );
    assert_no_wildcards(&docs);

    let deployment = find(&docs, "Deployment", "test-digicert-operator");
    assert_restricted(deployment);
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(
        args(deployment),
        [
            "run",
            "--certcentral-url=us",
            "--default-account=test-digicert-operator",
            "--serve-unassigned=true",
            "--resync=168h",
            "--feed-interval=2m",
            "--concurrency=8",
            "--order-expiry-warning=720h",
            "--deletion-timeout=15m",
            "--log-level=info",
            "--log-format=text",
            "--health-addr=0.0.0.0:8080",
            "--leader-elect",
            "--lease-name=test-digicert-operator",
        ]
    );
    let c = container(deployment);
    assert_eq!(
        c["image"],
        format!("{IMAGE}:{}", app_version()),
        "tag = appVersion"
    );
    assert_eq!(
        c["env"],
        json!([
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        ])
    );
    assert_eq!(
        c["ports"],
        json!([{"name": "http", "containerPort": 8080, "protocol": "TCP"}])
    );
    assert_eq!(
        c["livenessProbe"]["httpGet"],
        json!({"path": "/healthz", "port": "http"})
    );
    assert_eq!(
        c["readinessProbe"]["httpGet"],
        json!({"path": "/readyz", "port": "http"})
    );
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "test-digicert-operator");
    assert_eq!(pod["automountServiceAccountToken"], true);
    assert_eq!(deployment["spec"]["strategy"]["type"], "RollingUpdate");

    let service = find(&docs, "Service", "test-digicert-operator-metrics");
    assert_eq!(
        service["spec"]["ports"],
        json!([{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}])
    );
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );

    // Cluster-wide: one ClusterRole for the orders, their Secrets and Events; the
    // Lease in the operator's own namespace, by name.
    let cluster_role = find(&docs, "ClusterRole", "test-digicert-operator");
    assert_eq!(cluster_role["rules"], watch_rules());
    let binding = find(&docs, "ClusterRoleBinding", "test-digicert-operator");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "test-digicert-operator", "namespace": "test-ns"}])
    );
    let lease_role = find(&docs, "Role", "test-digicert-operator-leader-election");
    assert_eq!(
        lease_role["rules"],
        json!([
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
             "resourceNames": ["test-digicert-operator"], "verbs": ["get", "update", "patch"]},
        ])
    );
    // Accounts: their keys and the claims in the operator's namespace, the accounts
    // and namespaces cluster-wide.
    let (own, cluster) = account_rules();
    assert_eq!(
        find(&docs, "Role", "test-digicert-operator-accounts")["rules"],
        own
    );
    assert_eq!(
        find(&docs, "ClusterRole", "test-digicert-operator-accounts")["rules"],
        cluster
    );
    // The default account: the chart's key, the operator's endpoint, every namespace
    // (all are watched), and nothing more.
    let account = find(&docs, "DigicertAccount", "test-digicert-operator");
    assert_eq!(
        account["spec"],
        json!({
            "operatorNamespace": "test-ns",
            "apiKeySecretRef": {"name": "digicert-api-key", "key": "api-key"},
            "namespaceSelector": {},
            "allowApproval": false,
            "allowOrderCancel": false,
        })
    );
}

#[test]
fn other_values_render_namespaced_rbac_the_simulator_and_the_policies() {
    let values = values_file(&full_values());
    let yaml = template(&["-f", values.path().to_str().unwrap()]);
    let docs = documents(&yaml);
    assert_no_wildcards(&docs);
    // Cluster-wide only what accounts need (they are cluster-scoped).
    let (own, cluster) = account_rules();
    assert_eq!(
        describe(
            &of_kind(&docs, "ClusterRole")
                .into_iter()
                .cloned()
                .collect::<Vec<_>>()
        ),
        ["ClusterRole//test-digicert-operator-accounts"]
    );
    assert_eq!(
        find(&docs, "ClusterRole", "test-digicert-operator-accounts")["rules"],
        cluster
    );
    assert_eq!(of_kind(&docs, "ClusterRoleBinding").len(), 1);

    let fullname = "test-digicert-operator";
    // A Role and RoleBinding in each watched namespace.
    for ns in ["team-a", "team-b"] {
        let role = docs
            .iter()
            .find(|d| d["kind"] == "Role" && d["metadata"]["namespace"] == ns)
            .unwrap_or_else(|| panic!("no Role in {ns}"));
        assert_eq!(role["metadata"]["name"], fullname);
        assert_eq!(role["rules"], watch_rules());
        let binding = docs
            .iter()
            .find(|d| d["kind"] == "RoleBinding" && d["metadata"]["namespace"] == ns)
            .unwrap_or_else(|| panic!("no RoleBinding in {ns}"));
        assert_eq!(
            binding["subjects"],
            json!([{"kind": "ServiceAccount", "name": fullname, "namespace": "test-ns"}])
        );
    }
    // In its own namespace the account keys, the claims and the Lease.
    let key_role = find(&docs, "Role", "test-digicert-operator-accounts");
    assert_eq!(key_role["metadata"]["namespace"], "test-ns");
    assert_eq!(key_role["rules"], own);
    find(&docs, "Role", "test-digicert-operator-leader-election");
    // The default account grants the watched namespaces only.
    let account = find(&docs, "DigicertAccount", fullname);
    assert_eq!(
        account["spec"]["namespaceSelector"],
        json!({"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In",
                                     "values": ["team-a", "team-b"]}]})
    );
    assert_eq!(
        account["spec"]["apiKeySecretRef"],
        json!({"name": "test-digicert-operator-api-key", "key": "token"})
    );

    // The API key Secret from apiKey.value.
    let key = find(&docs, "Secret", "test-digicert-operator-api-key");
    assert_eq!(secret_value(key, "token"), b"my-api-key");

    // Two replicas: leader election is on although leaderElection.enabled is false.
    let deployment = find(&docs, "Deployment", fullname);
    assert_restricted(deployment);
    assert_eq!(deployment["spec"]["replicas"], 2);
    let sim_url = "https://test-digicert-operator-simulator.test-ns.svc:8443/services/v2";
    assert_eq!(
        args(deployment),
        [
            "run".to_string(),
            format!("--certcentral-url={sim_url}"),
            "--ca-bundle=/etc/digicert-operator/certcentral-ca/ca.crt".into(),
            format!("--default-account={fullname}"),
            "--watch-namespace=team-a,team-b".into(),
            "--serve-unassigned=false".into(),
            "--resync=30m".into(),
            "--feed-interval=30s".into(),
            "--concurrency=4".into(),
            "--order-expiry-warning=1440h".into(),
            "--deletion-timeout=5m".into(),
            "--secret-owner-references".into(),
            "--log-level=info,digicert_operator=debug".into(),
            "--log-format=json".into(),
            "--health-addr=0.0.0.0:8080".into(),
            "--leader-elect".into(),
            format!("--lease-name={fullname}"),
            "--lease-duration=20s".into(),
        ]
    );
    let c = container(deployment);
    assert_eq!(c["image"], format!("{IMAGE}:1.2.3"));
    assert_eq!(
        c["volumeMounts"],
        json!([{"name": "certcentral-ca", "mountPath": "/etc/digicert-operator/certcentral-ca", "readOnly": true}])
    );
    let pod = &deployment["spec"]["template"];
    assert_eq!(pod["metadata"]["annotations"]["example.org/team"], "pki");
    assert_eq!(pod["spec"]["nodeSelector"]["kubernetes.io/os"], "linux");
    assert_eq!(pod["spec"]["tolerations"][0]["key"], "dedicated");

    // The CA bundle: certcentral.caBundle and the simulator's CA; its checksum on
    // the pod, so that a new CA restarts the operator.
    let bundle =
        find(&docs, "ConfigMap", "test-digicert-operator-certcentral-ca")["data"]["ca.crt"]
            .as_str()
            .unwrap();
    assert_eq!(bundle.matches("-----BEGIN CERTIFICATE-----").count(), 2);
    assert_eq!(
        pod["metadata"]["annotations"]["checksum/certcentral-ca"],
        sha256_hex(bundle.as_bytes())
    );

    // The simulator: its certificate is for the Service's names (and localhost, for
    // port-forwarding) and signed by the CA the operator trusts.
    let sim_name = "test-digicert-operator-simulator";
    let tls = find(&docs, "Secret", &format!("{sim_name}-tls"));
    assert_eq!(tls["type"], "kubernetes.io/tls");
    let ca = String::from_utf8(secret_value(tls, "ca.crt")).unwrap();
    assert!(
        bundle.contains(ca.trim()),
        "the operator trusts the simulator's CA"
    );
    let cert = String::from_utf8(secret_value(tls, "tls.crt")).unwrap();
    let names = certificate_names(&cert, &ca);
    for name in [
        sim_name.to_string(),
        format!("{sim_name}.test-ns"),
        format!("{sim_name}.test-ns.svc"),
        format!("{sim_name}.test-ns.svc.cluster.local"),
        "localhost".into(),
    ] {
        assert!(names.contains(&name), "{name} not in {names:?}");
    }
    let orders = find(&docs, "ConfigMap", &format!("{sim_name}-orders"))["data"]["orders.yaml"]
        .as_str()
        .unwrap();
    assert_eq!(
        orders,
        std::fs::read_to_string(repo_root().join("deploy/simulator/orders.yaml")).unwrap(),
        "simulator.orders defaults to deploy/simulator/orders.yaml"
    );
    let service = find(&docs, "Service", sim_name);
    assert_eq!(service["spec"]["ports"][0]["port"], 8443);
    let sim = find(&docs, "Deployment", sim_name);
    assert_restricted(sim);
    assert_eq!(
        args(sim),
        [
            "--listen=0.0.0.0:8443",
            "--orders=/etc/digicert-simulator/orders/orders.yaml",
            "--tls-cert=/etc/digicert-simulator/tls/tls.crt",
            "--tls-key=/etc/digicert-simulator/tls/tls.key",
            "--state-file=/var/lib/digicert-simulator/state.json",
            "--no-rate-limit",
            "--log-level=info,digicert_operator=debug",
            "--log-format=json",
        ]
    );
    assert_eq!(
        container(sim)["env"],
        json!([{"name": "SIMULATOR_ADMIN_TOKEN", "valueFrom": {"secretKeyRef":
            {"name": format!("{sim_name}-admin"), "key": "token"}}}])
    );
    assert_eq!(
        sim["spec"]["template"]["spec"]["automountServiceAccountToken"],
        false
    );
    assert_eq!(
        sim["spec"]["template"]["metadata"]["annotations"]["checksum/orders"],
        sha256_hex(orders.as_bytes())
    );

    // The NetworkPolicy: in on http; out to DNS, the API server, CertCentral and the
    // simulator only.
    let policy = find(&docs, "NetworkPolicy", fullname);
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(
        policy["spec"]["podSelector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(
        policy["spec"]["ingress"],
        json!([{"ports": [{"port": "http", "protocol": "TCP"}]}])
    );
    let egress = policy["spec"]["egress"].as_array().unwrap();
    let ports: Vec<Value> = egress.iter().map(|r| r["ports"].clone()).collect();
    assert_eq!(
        ports,
        [
            json!([{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]),
            json!([{"port": 6443, "protocol": "TCP"}]),
            json!([{"port": 443, "protocol": "TCP"}]),
            json!([{"port": 8443, "protocol": "TCP"}]),
        ]
    );
    assert_eq!(
        egress[1]["to"],
        json!([{"ipBlock": {"cidr": "10.0.0.1/32"}}])
    );
    assert_eq!(
        egress[3]["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"],
        "simulator"
    );

    // The ServiceMonitor scrapes the metrics Service's http port.
    let monitor = find(&docs, "ServiceMonitor", fullname);
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    let metrics = find(&docs, "Service", "test-digicert-operator-metrics");
    for (k, v) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(&metrics["metadata"]["labels"][k], v, "selects the Service");
    }
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "http");
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");

    let pdb = find(&docs, "PodDisruptionBudget", fullname);
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
}

#[test]
fn the_webhook_values_render_the_receiver_its_key_service_and_policy() {
    let docs = documents(&template(&[
        "--set",
        "webhook.enabled=true,webhook.keySecret.name=digicert-webhook,networkPolicy.enabled=true,feedInterval=0",
    ]));
    let fullname = "test-digicert-operator";
    let deployment = find(&docs, "Deployment", fullname);
    let a = args(deployment);
    for want in [
        "--feed-interval=0",
        "--webhook-listen=0.0.0.0:9443",
        "--webhook-key-file=/etc/digicert-operator/webhook/webhook-key",
    ] {
        assert!(a.iter().any(|x| x == want), "{want} not in {a:?}");
    }
    let c = container(deployment);
    assert_eq!(
        c["ports"][1],
        json!({"name": "webhook", "containerPort": 9443, "protocol": "TCP"})
    );
    assert_eq!(
        c["volumeMounts"],
        json!([{"name": "webhook-key", "mountPath": "/etc/digicert-operator/webhook", "readOnly": true}])
    );
    assert_eq!(
        deployment["spec"]["template"]["spec"]["volumes"],
        json!([{"name": "webhook-key", "secret": {"secretName": "digicert-webhook",
            "items": [{"key": "webhook-key", "path": "webhook-key"}]}}])
    );
    let service = find(&docs, "Service", "test-digicert-operator-webhook");
    assert_eq!(
        service["spec"]["ports"],
        json!([{"name": "webhook", "port": 80, "targetPort": "webhook", "protocol": "TCP"}])
    );
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    let policy = find(&docs, "NetworkPolicy", fullname);
    assert!(
        policy["spec"]["ingress"]
            .as_array()
            .unwrap()
            .contains(&json!({"ports": [{"port": "webhook", "protocol": "TCP"}]})),
        "{policy}"
    );
    // Off by default: no receiver, no Service.
    let docs = documents(&template(&[]));
    assert!(!describe(&docs).iter().any(|d| d.contains("webhook")));
}

#[test]
fn the_dcv_values_render_the_solver_service_port_flags_and_rbac() {
    let docs = documents(&template(&[
        "--set",
        "dcv.http.enabled=true,dcv.http.port=9089,dcv.dns.resolver=10.0.0.53:53",
    ]));
    let fullname = "test-digicert-operator";
    let deployment = find(&docs, "Deployment", fullname);
    let a = args(deployment);
    for want in [
        "--dcv-http-listen=0.0.0.0:9089",
        "--dcv-http-service=test-digicert-operator-dcv-solver:80",
        "--dcv-http-configmap=test-digicert-operator-dcv-http",
        "--dcv-dns-resolver=10.0.0.53:53",
    ] {
        assert!(a.iter().any(|x| x == want), "{want} not in {a:?}");
    }
    assert_eq!(
        container(deployment)["ports"][1],
        json!({"name": "dcv-http", "containerPort": 9089, "protocol": "TCP"})
    );
    let service = find(&docs, "Service", "test-digicert-operator-dcv-solver");
    assert_eq!(
        service["spec"]["ports"],
        json!([{"name": "dcv-http", "port": 80, "targetPort": "dcv-http", "protocol": "TCP"}])
    );
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    // In the operator's namespace: the values ConfigMap by name, Ingresses, HTTPRoutes.
    let role = find(&docs, "Role", "test-digicert-operator-accounts");
    let rules = role["rules"].as_array().unwrap();
    assert!(rules.contains(&json!({"apiGroups": [""], "resources": ["configmaps"],
        "resourceNames": ["test-digicert-operator-dcv-http"], "verbs": ["get", "list", "watch", "patch"]})));
    assert!(rules.contains(
        &json!({"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"],
        "verbs": ["get", "create", "patch", "delete"]})
    ));
    assert!(
        rules.contains(&json!({"apiGroups": ["gateway.networking.k8s.io"],
        "resources": ["httproutes"], "verbs": ["get", "create", "patch", "delete"]}))
    );
    // Off by default: no solver, no extra rights.
    let docs = documents(&template(&[]));
    assert!(!describe(&docs).iter().any(|d| d.contains("dcv-solver")));
    let role = find(&docs, "Role", "test-digicert-operator-accounts");
    assert!(!role["rules"].to_string().contains("configmaps"));
}

#[test]
fn no_role_grants_a_wildcard() {
    for values in [
        vec![],
        vec!["--set", "watchNamespaces={a,b}"],
        vec!["--set", "simulator.enabled=true,replicas=3"],
        vec!["--set", "leaderElection.enabled=false"],
        vec!["--set", "dcv.http.enabled=true"],
    ] {
        assert_no_wildcards(&documents(&template(&values)));
    }
}

/// Every kind of render, judged by the API server: the defaults, everything turned
/// on (namespaced RBAC in two namespaces, the simulator, the policies, the
/// ServiceMonitor), and the variants between.
#[tokio::test]
async fn the_api_server_takes_every_render_strictly_and_without_warnings() {
    let cluster = TestCluster::new("chart-dry-run").await;
    install_crd(&cluster);
    install_servicemonitor_crd(&cluster);
    let a = ExtraNamespace::create(&cluster, "a").await;
    let b = ExtraNamespace::create(&cluster, "b").await;
    let ns = cluster.namespace.as_str();
    let full = values_file(&full_values());
    let watch = format!("watchNamespaces={{{},{}}}", a.name, b.name);
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("the defaults", vec![]),
        (
            "everything on",
            vec!["-f", full.path().to_str().unwrap(), "--set", &watch],
        ),
        (
            "no leader election",
            vec!["--set", "leaderElection.enabled=false"],
        ),
        (
            "the simulator, three replicas",
            vec!["--set", "simulator.enabled=true,replicas=3"],
        ),
        (
            "an existing key Secret, the policies",
            vec![
                "--set",
                "apiKey.existingSecret=mine,networkPolicy.enabled=true,podDisruptionBudget.enabled=true",
            ],
        ),
        (
            "the webhook receiver and the http solver, the policy",
            vec![
                "--set",
                "webhook.enabled=true,webhook.keySecret.name=hook,dcv.http.enabled=true,networkPolicy.enabled=true",
            ],
        ),
    ];
    for (what, values) in cases {
        let mut args = vec!["template", "test", CHART, "-n", ns, "--set", SET_IMAGE];
        args.extend(values);
        let yaml = helm_ok(&args, None);
        server_dry_run(&cluster.kubeconfig, what, &yaml);
    }
    // A typo in a field is an error, not silently dropped: the check can fail.
    let bad = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: typo, namespace: {ns}}}\nspec:\n  ports: [{{port: 80, targetPort: http}}]\n  selectr: {{app: x}}\n"
    );
    let out = cluster.kubectl_run(
        &["apply", "--dry-run=server", "--validate=strict", "-f", "-"],
        Some(&bad),
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("selectr"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn without_leader_election_one_pod_is_replaced_by_the_next() {
    let docs = documents(&template(&["--set", "leaderElection.enabled=false"]));
    let deployment = find(&docs, "Deployment", "test-digicert-operator");
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    assert!(!args(deployment).iter().any(|a| a.starts_with("--lease")));
    assert!(!args(deployment).contains(&"--leader-elect".to_string()));
    // No leader-election Lease, no Role for it: only the accounts' Role (keys, claims).
    assert_eq!(
        describe(
            &of_kind(&docs, "Role")
                .into_iter()
                .cloned()
                .collect::<Vec<_>>()
        ),
        ["Role/test-ns/test-digicert-operator-accounts"],
        "no Lease, no Role"
    );
}

#[test]
fn bad_values_are_refused_with_the_field_named() {
    let cases: &[(&[&str], &str)] = &[
        (&["--set", "replicas=0"], "/replicas"),
        (&["--set-json", "replicas=1.5"], "/replicas"),
        (&["--set", "logFormat=xml"], "/logFormat"),
        (
            &["--set", "certcentral.url=http://example.com"],
            "/certcentral/url",
        ),
        (&["--set", "certcentral.url=asia"], "/certcentral/url"),
        (&["--set", "watchNamespaces={Team_A}"], "/watchNamespaces/0"),
        (
            &["--set-json", "watchNamespaces=\"team-a\""],
            "/watchNamespaces",
        ),
        (&["--set", "resync=6d"], "/resync"),
        (&["--set", "feedInterval=off"], "/feedInterval"),
        (&["--set", "webhook.port=70000"], "/webhook/port"),
        (
            &["--set", "webhook.enabled=true"],
            "webhook.keySecret.name is required",
        ),
        (&["--set", "service.port=70000"], "/service/port"),
        (&["--set", "image.pullPolicy=Sometimes"], "/image"),
        (&["--set", "replicaCount=2"], "'replicaCount' not allowed"),
        (&["--set", "simulator.enable=true"], "'enable' not allowed"),
        (
            &["--set", "apiKey.value=k,apiKey.existingSecret=s"],
            "apiKey.value and apiKey.existingSecret",
        ),
    ];
    for (args, field) in cases {
        let mut all = vec![
            "template", "test", CHART, "-n", "test-ns", "--set", SET_IMAGE,
        ];
        all.extend_from_slice(args);
        let out = helm(&all, None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{args:?} was accepted:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            stderr.contains(field),
            "{args:?}: the message does not name {field}:\n{stderr}"
        );
    }
}

#[test]
fn the_plain_manifests_are_a_fresh_render_of_the_defaults() {
    let root = repo_root();
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("digicert-operator.yaml");
    let out = Command::new(root.join("hack/render-manifests.sh"))
        .arg(&fresh)
        .env("DIGICERT_TEST_PYTHON", helm_python())
        .output()
        .expect("render-manifests.sh runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fresh = std::fs::read_to_string(&fresh).unwrap();
    let committed = std::fs::read_to_string(root.join("deploy/digicert-operator.yaml"))
        .expect("deploy/digicert-operator.yaml exists");
    assert!(
        fresh == committed,
        "deploy/digicert-operator.yaml is stale: run hack/render-manifests.sh"
    );

    // The Namespace and the CRD, then exactly what the chart renders by default.
    let docs = documents(&committed);
    assert_eq!(docs[0]["kind"], "Namespace");
    assert_eq!(docs[0]["metadata"]["name"], "digicert-operator");
    assert_eq!(
        docs[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    let crd_files = [
        "digicertaccounts.yaml",
        "digicertclusterissuers.yaml",
        "digicertissuers.yaml",
        "digicertorders.yaml",
    ];
    for (i, file) in crd_files.iter().enumerate() {
        assert_eq!(docs[1 + i]["kind"], "CustomResourceDefinition");
        let crd = documents(&std::fs::read_to_string(root.join("crds").join(file)).unwrap());
        assert_eq!(docs[1 + i], crd[0]);
    }
    // The image: REGISTRY stands for the installer's registry, which the README's
    // command puts in its place; nothing else in the objects has the placeholder.
    let placeholder = "image.repository=REGISTRY/digicert-operator";
    // The default account is deploy/examples/default-account.yaml: `kubectl apply`
    // cannot create it in the same run as its CRD.
    let chart = documents(&helm_ok(
        &[
            "template",
            "digicert-operator",
            CHART,
            "-n",
            "digicert-operator",
            "--set",
            placeholder,
            "--set",
            "defaultAccount.create=false,defaultAccount.name=digicert-operator",
            "--set",
            "certManager.approverRBAC.create=true",
        ],
        None,
    ));
    assert_eq!(docs[1 + crd_files.len()..], chart[..]);
    let deployment = find(&docs, "Deployment", "digicert-operator");
    assert_eq!(
        container(deployment)["image"],
        format!("REGISTRY/digicert-operator:{}", app_version())
    );
    assert_eq!(
        serde_json::to_string(&docs)
            .unwrap()
            .matches("REGISTRY/")
            .count(),
        1,
        "the image is the only object field with REGISTRY/"
    );
    let with_account = documents(&helm_ok(
        &[
            "template",
            "digicert-operator",
            CHART,
            "-n",
            "digicert-operator",
            "--set",
            placeholder,
        ],
        None,
    ));
    let example = documents(
        &std::fs::read_to_string(root.join("deploy/examples/default-account.yaml")).unwrap(),
    );
    let rendered = find(&with_account, "DigicertAccount", "digicert-operator");
    assert_eq!(example[0]["spec"], rendered["spec"]);
    assert_eq!(example[0]["metadata"]["name"], rendered["metadata"]["name"]);
    // Only the file is applied by `kubectl apply -f deploy/`: nothing else there.
    let mut files: Vec<String> = std::fs::read_dir(root.join("deploy"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["digicert-operator.yaml"],
        "`kubectl apply -f deploy/` applies every file in deploy/"
    );
    // The server's verdict: readme_install_without_helm_makes_an_order_ready applies
    // the file for real.
}

#[test]
fn the_image_runs_the_binary_as_the_charts_user() {
    let root = repo_root();
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let lines: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let froms: Vec<&&str> = lines.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(
        froms,
        [
            &"FROM rust:1-bookworm AS build-simulator",
            &"FROM gcr.io/distroless/cc-debian12:nonroot AS simulator",
            &"FROM rust:1-bookworm AS build-operator",
            &"FROM gcr.io/distroless/cc-debian12:nonroot AS operator",
        ],
        "a build stage for each image; the operator's last (the default target)"
    );
    let stage = |from: &str| {
        let start = lines.iter().position(|l| *l == from).unwrap() + 1;
        let end = lines[start..]
            .iter()
            .position(|l| l.starts_with("FROM "))
            .map_or(lines.len(), |n| start + n);
        lines[start..end].to_vec()
    };
    for (from, program) in [
        (froms[1], "certcentral-sim"),
        (froms[3], "digicert-operator"),
    ] {
        let image = stage(from);
        let build = if program == "certcentral-sim" {
            "build-simulator"
        } else {
            "build-operator"
        };
        assert_eq!(
            image
                .iter()
                .filter(|l| l.starts_with("COPY"))
                .collect::<Vec<_>>(),
            [
                &format!("COPY --from={build} /src/out/{program} /usr/local/bin/{program}")
                    .as_str()
            ],
            "only the binary goes into the image (tests/components/image.rs builds it)"
        );
        assert!(image.contains(&"USER 65532:65532"));
        assert!(image.contains(&format!(r#"ENTRYPOINT ["/usr/local/bin/{program}"]"#).as_str()));
    }
    assert!(stage(froms[3]).contains(&r#"CMD ["run"]"#));
    // The simulator runs as the same user.
    let docs = documents(&template(&["--set", "simulator.enabled=true"]));
    let simulator = find(&docs, "Deployment", "test-digicert-operator-simulator");
    assert_eq!(
        simulator["spec"]["template"]["spec"]["securityContext"]["runAsUser"],
        65532
    );
    assert!(container(simulator).get("command").is_none());
    // The chart runs it as the same user, with `run` as its first argument.
    let docs = documents(&template(&[]));
    let deployment = find(&docs, "Deployment", "test-digicert-operator");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"],
        65532
    );
    assert!(container(deployment).get("command").is_none());
    assert_eq!(args(deployment)[0], "run");
}

/// No public registry has the image: without image.repository the chart refuses to
/// render and says how to build and push it. The simulator runs an image of its own
/// (the Dockerfile's `simulator` target): by default the operator's registry path with
/// the name `certcentral-sim`, never the operator's image or digest.
#[test]
fn without_an_image_repository_the_chart_says_how_to_build_and_push_the_image() {
    let version = app_version();
    let wants = [
        "image.repository is required".to_string(),
        "Dockerfile".into(),
        format!("docker build -t REGISTRY/digicert-operator:{version} ."),
        format!("docker push REGISTRY/digicert-operator:{version}"),
        "image.repository=REGISTRY/digicert-operator".into(),
    ];
    for values in [
        vec![],
        vec!["--set", "image.repository="],
        vec!["--set", "simulator.enabled=true"],
        vec![
            "--set",
            "simulator.enabled=true,simulator.image.repository=registry.example.org/sim",
        ],
    ] {
        let mut all = vec!["template", "test", CHART, "-n", "test-ns"];
        all.extend_from_slice(&values);
        let out = helm(&all, None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{values:?} rendered:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        for want in &wants {
            assert!(
                stderr.contains(want.as_str()),
                "{values:?}: no {want:?} in\n{stderr}"
            );
        }
    }

    let simulator = |docs: &[Value]| {
        container(find(docs, "Deployment", "test-digicert-operator-simulator"))["image"].clone()
    };
    let docs = documents(&template(&["--set", "simulator.enabled=true"]));
    let image = format!("{IMAGE}:{version}");
    assert_eq!(
        simulator(&docs),
        format!("registry.example.org/certcentral-sim:{version}").as_str()
    );
    let docs = documents(&template(&[
        "--set",
        "simulator.enabled=true,image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef,simulator.image.tag=v3",
    ]));
    assert_eq!(simulator(&docs), "registry.example.org/certcentral-sim:v3");
    let docs = documents(&template(&[
        "--set",
        "simulator.enabled=true,image.repository=digicert-operator",
    ]));
    assert_eq!(
        simulator(&docs),
        format!("certcentral-sim:{version}").as_str()
    );
    let docs = documents(&template(&[
        "--set",
        "simulator.enabled=true,simulator.image.repository=registry.example.org/sim,simulator.image.tag=v2",
    ]));
    assert_eq!(simulator(&docs), "registry.example.org/sim:v2");
    assert_eq!(
        container(find(&docs, "Deployment", "test-digicert-operator"))["image"],
        image.as_str()
    );
}

// ----------------------------------------------------------------- the cluster

/// A namespace of the test's own beside the TestCluster's, deleted at the end.
struct ExtraNamespace {
    name: String,
    kubeconfig: OsString,
}

impl ExtraNamespace {
    async fn create(cluster: &TestCluster, suffix: &str) -> Self {
        ExtraNamespace {
            name: cluster.other_namespace(suffix).await,
            kubeconfig: cluster.kubeconfig.clone(),
        }
    }
}

impl Drop for ExtraNamespace {
    fn drop(&mut self) {
        let _ = kubectl_command(&self.kubeconfig)
            .args(["delete", "namespace", &self.name, "--wait=false"])
            .output();
    }
}

/// `kubectl ARGS` against `kubeconfig`, from the repository root; panics on failure.
fn kubectl(kubeconfig: &OsStr, args: &[&str]) -> String {
    let out = kubectl_command(kubeconfig)
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Tests on the shared server install the CRD once with kubectl (install_crd) and
/// charts with --skip-crds; the README's commands install it with the chart.
const SKIP_CRDS: &str = "--skip-crds";

/// A kubeconfig with the cluster's address and CA and nothing but `token`.
fn token_kubeconfig(admin: &OsStr, token: &str) -> String {
    let path = std::env::split_paths(admin)
        .find(|p| p.exists())
        .expect("a kubeconfig file");
    let kc = Kubeconfig::read_from(&path).expect("kubeconfig");
    let (_, cluster) = crate::support::cluster::current_cluster(&kc);
    let mut entry = serde_json::Map::new();
    entry.insert("server".into(), json!(cluster.server.expect("a server")));
    if let Some(data) = cluster.certificate_authority_data {
        entry.insert("certificate-authority-data".into(), json!(data));
    }
    if let Some(file) = cluster.certificate_authority {
        let file = path.parent().unwrap().join(file);
        entry.insert("certificate-authority".into(), json!(file));
    }
    serde_yaml::to_string(&json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cluster", "cluster": entry}],
        "users": [{"name": "service-account", "user": {"token": token}}],
        "contexts": [{"name": "service-account", "context": {"cluster": "cluster", "user": "service-account"}}],
        "current-context": "service-account",
    }))
    .unwrap()
}

/// A Deployment's container, run on this machine as the kubelet would run it in a
/// pod: its args and env (downward API, Secret and ConfigMap references resolved),
/// its ConfigMap, Secret and emptyDir volumes as files, and, unless the pod opts out,
/// a token of its ServiceAccount as its only credential. `rewrite` maps each arg (with
/// mount paths already replaced) to the args to use instead: in-cluster addresses
/// become local ones.
struct LocalPod {
    process: OperatorProcess,
    name: String,
    _files: tempfile::TempDir,
}

impl LocalPod {
    async fn start(
        client: &kube::Client,
        kubeconfig: &OsStr,
        namespace: &str,
        deployment: &str,
        rewrite: &dyn Fn(&str) -> Vec<String>,
    ) -> LocalPod {
        let d = Api::<Deployment>::namespaced(client.clone(), namespace)
            .get(deployment)
            .await
            .unwrap_or_else(|e| panic!("Deployment {namespace}/{deployment}: {e}"));
        let pod = d
            .spec
            .expect("a deployment spec")
            .template
            .spec
            .expect("a pod spec");
        assert_eq!(pod.containers.len(), 1, "one container");
        let c = &pod.containers[0];
        assert!(c.command.is_none(), "the image's entrypoint runs");
        let files = tempfile::tempdir().unwrap();
        let name = format!("{deployment}-local");
        let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
        let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);

        // Volumes as files.
        let mut mounts: Vec<(String, PathBuf)> = Vec::new();
        for (i, m) in c.volume_mounts.iter().flatten().enumerate() {
            let dir = files.path().join(format!("volume-{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            let volume = pod
                .volumes
                .iter()
                .flatten()
                .find(|v| v.name == m.name)
                .unwrap_or_else(|| panic!("no volume {}", m.name));
            let mut content: Vec<(String, Vec<u8>)> = Vec::new();
            let (data, items) = if let Some(cm) = &volume.config_map {
                let map = maps.get(&cm.name).await.expect("the ConfigMap");
                let data = map
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.into_bytes()))
                    .collect();
                (data, cm.items.clone())
            } else if let Some(s) = &volume.secret {
                let secret = secrets
                    .get(s.secret_name.as_deref().unwrap())
                    .await
                    .expect("the Secret");
                let data = secret
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect();
                (data, s.items.clone())
            } else if volume.empty_dir.is_some() {
                (std::collections::BTreeMap::new(), None)
            } else {
                panic!("volume {} is of a kind this test does not run", m.name);
            };
            match items {
                Some(items) => {
                    for item in items {
                        let bytes = data
                            .get(&item.key)
                            .unwrap_or_else(|| panic!("no {} in {}", item.key, m.name));
                        content.push((item.path, bytes.clone()));
                    }
                }
                None => content.extend(data),
            }
            for (file, bytes) in content {
                std::fs::write(dir.join(file), bytes).unwrap();
            }
            mounts.push((m.mount_path.clone(), dir));
        }
        mounts.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));

        let mut args: Vec<String> = Vec::new();
        for arg in c.args.iter().flatten() {
            let mut arg = arg.clone();
            if let Some((path, dir)) = mounts.iter().find(|(p, _)| arg.contains(p.as_str())) {
                arg = arg.replace(path.as_str(), dir.to_str().unwrap());
            }
            args.extend(rewrite(&arg));
        }

        let mut env: Vec<(String, OsString)> = Vec::new();
        for e in c.env.iter().flatten() {
            let value = match (&e.value, &e.value_from) {
                (Some(v), _) => v.clone(),
                (None, Some(from)) => {
                    if let Some(f) = &from.field_ref {
                        match f.field_path.as_str() {
                            "metadata.namespace" => namespace.to_string(),
                            "metadata.name" => name.clone(),
                            other => panic!("env {} from {other}", e.name),
                        }
                    } else if let Some(s) = &from.secret_key_ref {
                        let secret = secrets.get(&s.name).await.expect("the Secret");
                        String::from_utf8(secret.data.unwrap()[&s.key].0.clone()).unwrap()
                    } else if let Some(m) = &from.config_map_key_ref {
                        maps.get(&m.name)
                            .await
                            .expect("the ConfigMap")
                            .data
                            .unwrap()[&m.key]
                            .clone()
                    } else {
                        panic!("env {}: a source this test does not run", e.name)
                    }
                }
                (None, None) => String::new(),
            };
            env.push((e.name.clone(), value.into()));
        }

        // The ServiceAccount's token, as the kubelet would mount it.
        let credentials = files.path().join("kubeconfig");
        if pod.automount_service_account_token != Some(false) {
            let sa = pod.service_account_name.as_deref().unwrap_or("default");
            let token = Api::<ServiceAccount>::namespaced(client.clone(), namespace)
                .create_token_request(
                    sa,
                    &PostParams::default(),
                    &TokenRequest {
                        spec: TokenRequestSpec {
                            expiration_seconds: Some(3600),
                            ..TokenRequestSpec::default()
                        },
                        ..TokenRequest::default()
                    },
                )
                .await
                .unwrap_or_else(|e| panic!("a token for {namespace}/{sa}: {e}"))
                .status
                .map(|s| s.token)
                .expect("token issued");
            std::fs::write(&credentials, token_kubeconfig(kubeconfig, &token)).unwrap();
        }
        // Without a token the pod has no credentials at all.
        env.push(("KUBECONFIG".into(), credentials.into_os_string()));
        let env_refs: Vec<(&str, &OsStr)> = env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_os_str()))
            .collect();
        // The image's entrypoint: the program the image is named for.
        let image = c.image.as_deref().expect("an image");
        let name_and_tag = image.rsplit('/').next().unwrap();
        let process = match name_and_tag.split([':', '@']).next().unwrap() {
            "digicert-operator" => OperatorProcess::start(&args, &env_refs),
            "certcentral-sim" => OperatorProcess::start_simulator(&args, &env_refs),
            other => panic!("{image}: no program for the image {other}"),
        };
        LocalPod {
            process,
            name,
            _files: files,
        }
    }

    fn logs(&self) -> String {
        self.process.logs()
    }

    /// `http://ADDR` of the operator's health and metrics endpoint, from its log.
    fn http_base(&self) -> String {
        self.process
            .wait_for_log("serving /healthz", Duration::from_secs(30));
        let logs = self.logs();
        let line = logs
            .lines()
            .find(|l| l.contains("serving /healthz"))
            .unwrap();
        let addr = line
            .split("addr=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .expect("addr=... in the line");
        format!("http://{addr}")
    }
}

impl Drop for LocalPod {
    fn drop(&mut self) {
        // Shown with the test's output (on failure, or with --no-capture).
        if !std::thread::panicking() {
            eprintln!("--- {} ---\n{}--- end ---", self.name, self.logs());
        }
    }
}

/// The operator's args for a chart that talks to DigiCert US (the default): the
/// simulator at `url` instead (and its CA), and a free local port for the health
/// endpoint.
fn local_operator_args(arg: &str, url: &str, ca: &Path) -> Vec<String> {
    if let Some(value) = arg.strip_prefix("--certcentral-url=") {
        assert_eq!(value, "us", "the chart's CertCentral");
        return vec![
            format!("--certcentral-url={url}"),
            format!("--ca-bundle={}", ca.display()),
        ];
    }
    if let Some(value) = arg.strip_prefix("--health-addr=") {
        assert_eq!(value, "0.0.0.0:8080");
        return vec!["--health-addr=127.0.0.1:0".into()];
    }
    vec![arg.to_string()]
}

async fn http_get(url: &str) -> (u16, String) {
    let resp = reqwest::get(url).await.expect("the endpoint answers");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

/// Waits until /readyz answers 200 and returns its text.
async fn wait_ready_endpoint(pod: &LocalPod) -> String {
    let base = pod.http_base();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, body) = http_get(&format!("{base}/readyz")).await;
        if code == 200 {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "not ready: {body}\n{}",
            pod.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A simulator configuration with the example orders (deploy/simulator/orders.yaml,
/// which the examples in deploy/examples/ refer to) and `key`.
fn example_orders(key: &str) -> SimulatorConfig {
    let mut seed = SeedFile::load(&repo_root().join("deploy/simulator/orders.yaml")).unwrap();
    seed.api_keys.push(ApiKeyConfig::new(key));
    SimulatorConfig {
        seed,
        rate_limits: Vec::new(),
        ..SimulatorConfig::default()
    }
}

/// The simulator with the example orders and `key`, and a file with its CA.
async fn example_simulator(key: &str) -> (RunningSimulator, tempfile::NamedTempFile) {
    let sim = certcentral_sim::start(example_orders(key))
        .await
        .expect("simulator starts");
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), sim.ca_pem()).unwrap();
    (sim, ca)
}

#[tokio::test]
async fn the_chart_installs_upgrades_and_uninstalls() {
    let cluster = TestCluster::new("chart-lifecycle").await;
    install_crd(&cluster);
    // The server serves cert-manager.io/v1: the default (auto) grants cert-manager's
    // approver our signer names.
    crate::support::certmanager::install_crds(&cluster);
    let ns = cluster.namespace.clone();
    let kubeconfig = cluster.kubeconfig.clone();
    let k = Some(kubeconfig.as_os_str());
    // Cluster-scoped names differ per test: the release name carries the namespace's
    // random suffix.
    let release = format!("lc{}", &ns[ns.len() - 6..]);
    let fullname = format!("{release}-digicert-operator");
    let values = values_file(
        &serde_yaml::to_string(&json!({
            "image": {"repository": IMAGE},
            "replicas": 2,
            "simulator": {"enabled": true},
            "podDisruptionBudget": {"enabled": true},
            "networkPolicy": {"enabled": true},
        }))
        .unwrap(),
    );
    let values = values.path().to_str().unwrap();
    let out = helm_ok(
        &[
            "install", &release, CHART, "-n", &ns, "-f", values, SKIP_CRDS,
        ],
        k,
    );
    assert!(out.contains("STATUS: deployed"), "{out}");
    assert!(
        out.contains("kubectl wait --for=condition=Ready dco/example-com"),
        "{out}"
    );
    // The notes say which image the pods need, and how to build and push it.
    let image = format!("{IMAGE}:{}", app_version());
    assert!(
        out.contains(&format!("docker build -t {image} . && docker push {image}")),
        "{out}"
    );

    let selector = format!("app.kubernetes.io/instance={release}");
    let namespaced = "deployments,serviceaccounts,services,secrets,configmaps,poddisruptionbudgets,networkpolicies,roles,rolebindings";
    let listed = |kinds: &str, extra: &[&str]| -> Vec<String> {
        let mut args = vec!["get", kinds, "-l", &selector, "-o", "name"];
        args.extend_from_slice(extra);
        let mut names: Vec<String> = kubectl(&kubeconfig, &args)
            .lines()
            .map(str::to_string)
            .collect();
        names.sort();
        names
    };
    let objects = listed(namespaced, &["-n", &ns]);
    let mut want: Vec<String> = [
        format!("configmap/{fullname}-certcentral-ca"),
        format!("configmap/{fullname}-simulator-orders"),
        format!("deployment.apps/{fullname}"),
        format!("deployment.apps/{fullname}-simulator"),
        format!("networkpolicy.networking.k8s.io/{fullname}"),
        format!("poddisruptionbudget.policy/{fullname}"),
        format!("role.rbac.authorization.k8s.io/{fullname}-accounts"),
        format!("role.rbac.authorization.k8s.io/{fullname}-leader-election"),
        format!("rolebinding.rbac.authorization.k8s.io/{fullname}-accounts"),
        format!("rolebinding.rbac.authorization.k8s.io/{fullname}-leader-election"),
        format!("secret/{fullname}-api-key"),
        format!("secret/{fullname}-simulator-tls"),
        format!("service/{fullname}-metrics"),
        format!("service/{fullname}-simulator"),
        format!("serviceaccount/{fullname}"),
    ]
    .into();
    want.sort();
    assert_eq!(objects, want);
    assert_eq!(
        listed("clusterroles,clusterrolebindings,digicertaccounts", &[]),
        [
            format!("clusterrole.rbac.authorization.k8s.io/{fullname}"),
            format!("clusterrole.rbac.authorization.k8s.io/{fullname}-accounts"),
            format!("clusterrole.rbac.authorization.k8s.io/{fullname}-cert-manager-approver"),
            format!("clusterrolebinding.rbac.authorization.k8s.io/{fullname}"),
            format!("clusterrolebinding.rbac.authorization.k8s.io/{fullname}-accounts"),
            format!(
                "clusterrolebinding.rbac.authorization.k8s.io/{fullname}-cert-manager-approver"
            ),
            format!("digicertaccount.digicert-operator.dev/{fullname}"),
        ]
    );

    // What Helm installed is what the server takes strictly, without a warning.
    let status: Value =
        serde_json::from_str(&helm_ok(&["status", &release, "-n", &ns, "-o", "json"], k)).unwrap();
    let manifest = status["manifest"].as_str().expect("the release manifest");
    server_dry_run(&kubeconfig, "the release manifest", manifest);

    // Upgrade: the log level reaches the operator's args; the simulator's CA stays, so
    // the operator is not restarted for it.
    let deployments: Api<Deployment> = cluster.api();
    let secrets: Api<Secret> = cluster.api();
    let before = deployments.get(&fullname).await.unwrap();
    let tls_before = secrets
        .get(&format!("{fullname}-simulator-tls"))
        .await
        .unwrap()
        .data;
    let pod_args = |d: &Deployment| -> Vec<String> {
        d.spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .args
            .clone()
            .unwrap()
    };
    let annotations = |d: &Deployment| {
        d.spec
            .as_ref()
            .unwrap()
            .template
            .metadata
            .as_ref()
            .unwrap()
            .annotations
            .clone()
    };
    assert!(pod_args(&before).contains(&"--log-level=info".to_string()));
    let out = helm_ok(
        &[
            "upgrade",
            &release,
            CHART,
            "-n",
            &ns,
            "-f",
            values,
            "--set",
            "logLevel=debug",
        ],
        k,
    );
    assert!(out.contains("REVISION: 2"), "{out}");
    let after = deployments.get(&fullname).await.unwrap();
    assert!(
        pod_args(&after).contains(&"--log-level=debug".to_string()),
        "{:?}",
        pod_args(&after)
    );
    assert!(!pod_args(&after).contains(&"--log-level=info".to_string()));
    assert_eq!(annotations(&after), annotations(&before));
    let tls_after = secrets
        .get(&format!("{fullname}-simulator-tls"))
        .await
        .unwrap()
        .data;
    assert_eq!(tls_after, tls_before, "the simulator keeps its certificate");

    helm_ok(&["uninstall", &release, "-n", &ns], k);
    assert_eq!(listed(namespaced, &["-n", &ns]), Vec::<String>::new());
    assert_eq!(
        listed("clusterroles,clusterrolebindings,digicertaccounts", &[]),
        Vec::<String>::new()
    );
}

/// A namespaced install (watchNamespaces: [ns-a]) in the env's namespace, whose
/// `digicert-api-key` Secret is the key of the chart's default account (which selects
/// ns-a); the operator runs as the chart's Deployment with the chart's ServiceAccount
/// token, against the env's simulator. The release name carries the namespace's random
/// suffix: the account and a ClusterRole are cluster-scoped.
struct NamespacedInstall {
    env: OperatorEnv,
    watched: ExtraNamespace,
    fullname: String,
}

async fn namespaced_install(test: &str) -> NamespacedInstall {
    let config = example_orders(crate::support::env::API_KEY);
    namespaced_install_with(test, config, &[]).await
}

/// The chart installed watching one namespace, with `extra` helm arguments, and the
/// simulator of `config`.
async fn namespaced_install_with(
    test: &str,
    config: SimulatorConfig,
    extra: &[&str],
) -> NamespacedInstall {
    let env = OperatorEnv::with_simulator(test, config).await;
    let watched = ExtraNamespace::create(&env.cluster, "a").await;
    let ns = env.cluster.namespace.clone();
    let watch = format!("watchNamespaces={{{}}}", watched.name);
    let release = format!("op{}", &ns[ns.len() - 6..]);
    let mut args = vec![
        "install", &release, CHART, "-n", &ns, "--set", SET_IMAGE, "--set", &watch, SKIP_CRDS,
    ];
    args.extend_from_slice(extra);
    helm_ok(&args, Some(env.cluster.kubeconfig.as_os_str()));
    NamespacedInstall {
        env,
        watched,
        fullname: format!("{release}-digicert-operator"),
    }
}

impl NamespacedInstall {
    async fn start(&self, rewrite: &dyn Fn(&str) -> Vec<String>) -> LocalPod {
        let url = self.env.sim.base_url();
        let ca = self.env.ca_file.path().to_path_buf();
        let watch = self.watched.name.clone();
        LocalPod::start(
            &self.env.cluster.client,
            &self.env.cluster.kubeconfig,
            &self.env.cluster.namespace,
            &self.fullname,
            &move |arg: &str| {
                if let Some(value) = arg.strip_prefix("--watch-namespace=") {
                    assert_eq!(value, watch, "the chart's watched namespaces");
                }
                local_operator_args(arg, &url, &ca)
                    .iter()
                    .flat_map(|a| rewrite(a))
                    .collect()
            },
        )
        .await
    }

    fn kubectl(&self, args: &[&str]) -> String {
        kubectl(&self.env.cluster.kubeconfig, args)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn namespaced_rbac_is_all_the_operator_needs_in_its_namespaces() {
    let install = namespaced_install("chart-namespaced").await;
    let pod = install.start(&|a| vec![a.to_string()]).await;
    let ns_a = install.watched.name.as_str();
    let ready = wait_ready_endpoint(&pod).await;
    assert!(ready.contains("leader"), "{ready}");
    install.kubectl(&["apply", "-n", ns_a, "-f", "deploy/examples/rsa-order.yaml"]);
    install.kubectl(&[
        "wait",
        "-n",
        ns_a,
        "--for=condition=Ready",
        "dco/example-com",
        "--timeout=60s",
    ]);
    let secret = Api::<Secret>::namespaced(install.env.cluster.client.clone(), ns_a)
        .get("example-com-tls")
        .await
        .unwrap();
    verify_tls_secret(
        &secret,
        install.env.sim.ca_pem(),
        &["example.com", "www.example.com"],
    );
    // Through the chart's default account, with a claim on the order.
    let order = Api::<DigicertOrder>::namespaced(install.env.cluster.client.clone(), ns_a)
        .get("example-com")
        .await
        .unwrap();
    let status = order.status.unwrap();
    assert_eq!(status.account.as_deref(), Some(install.fullname.as_str()));
    assert!(
        status
            .claim
            .as_deref()
            .is_some_and(|c| c.starts_with(&format!(
                "Lease {}/order-1001-",
                install.env.cluster.namespace
            ))),
        "{:?}",
        status.claim
    );
    // The Lease, in the operator's namespace, held by this pod.
    let lease = Api::<Lease>::namespaced(
        install.env.cluster.client.clone(),
        &install.env.cluster.namespace,
    )
    .get(&install.fullname)
    .await
    .expect("the Lease");
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some(pod.name.as_str())
    );
    // Deleting the order removes the finalizer: the operator may do that too.
    install.kubectl(&["delete", "-n", ns_a, "dco/example-com", "--timeout=60s"]);
    let logs = pod.logs();
    for bad in ["forbidden", "Forbidden", "no access"] {
        assert!(!logs.contains(bad), "{bad} in the log:\n{logs}");
    }
}

/// The chart's http-token solver, run as its pod would be with the chart's RBAC: a
/// reissue whose domains' validation lapsed (DigiCert in 2029) is validated through
/// the solver listener, the values ConfigMap and an Ingress per name, and issued.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_charts_http_solver_validates_domains_with_the_charts_rbac() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let solver = format!("127.0.0.1:{port}");
    let mut config = example_orders(crate::support::env::API_KEY);
    config.clock_start = Some(crate::support::dcv::NOW);
    config.seed.domains = ["example.com", "www.example.com", "api.example.com"]
        .iter()
        .map(|d| crate::support::dcv::domain(d, "dns-txt-token", 11))
        .collect();
    config.dcv.http_address = Some(solver.parse().unwrap());
    let values = values_file(
        &serde_yaml::to_string(&json!({
            "dcv": {"http": {"enabled": true}},
            "defaultAccount": {"domainValidation": {
                "method": "http-token",
                "http": {"ingress": {"className": "nginx"}},
            }},
        }))
        .unwrap(),
    );
    let values_path = values.path().to_str().unwrap().to_string();
    let install = namespaced_install_with("chart-http-solver", config, &["-f", &values_path]).await;
    let pod = install
        .start(&move |a: &str| {
            if let Some(listen) = a.strip_prefix("--dcv-http-listen=") {
                assert_eq!(listen, "0.0.0.0:8089");
                return vec![format!("--dcv-http-listen={solver}")];
            }
            vec![a.to_string()]
        })
        .await;
    wait_ready_endpoint(&pod).await;
    let ns_a = install.watched.name.as_str();
    install.kubectl(&["apply", "-n", ns_a, "-f", "deploy/examples/rsa-order.yaml"]);
    install.kubectl(&[
        "wait",
        "-n",
        ns_a,
        "--for=condition=Ready",
        "dco/example-com",
        "--timeout=90s",
    ]);
    let order = Api::<DigicertOrder>::namespaced(install.env.cluster.client.clone(), ns_a)
        .get("example-com")
        .await
        .unwrap();
    let dcv = condition(&order, "DomainValidation").expect("a DomainValidation condition");
    assert_eq!(
        (dcv.status.as_str(), dcv.reason.as_str()),
        ("True", "Validated")
    );
    assert_eq!(
        install
            .env
            .sim
            .simulator()
            .calls()
            .total(digicert_operator::certcentral::Operation::CheckOrderDcv),
        1
    );
    // The routes went after the validation; the values ConfigMap stays, empty.
    let ns = &install.env.cluster.namespace;
    let ingresses = install.kubectl(&["get", "ingress", "-n", ns, "-o", "name"]);
    assert!(ingresses.trim().is_empty(), "{ingresses}");
    let values = install.kubectl(&[
        "get",
        "configmap",
        "-n",
        ns,
        &format!("{}-dcv-http", install.fullname),
        "-o",
        "jsonpath={.data}",
    ]);
    assert!(matches!(values.trim(), "" | "{}"), "{values}");
    let logs = pod.logs();
    for bad in ["forbidden", "Forbidden"] {
        assert!(!logs.contains(bad), "{bad} in the log:\n{logs}");
    }
}

/// Two releases in one cluster, run as the README says: the second with
/// `serveUnassigned=false`, watching the same namespace. Each serves its own account
/// and the orders that name it, with the chart's RBAC, and neither writes the other's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_releases_side_by_side_each_serve_their_own_account() {
    let first = namespaced_install("chart-two-releases").await;
    let cluster = &first.env.cluster;
    let ns_a = first.watched.name.clone();
    let second = ExtraNamespace::create(cluster, "r2").await;
    let release = format!("two{}", &second.name[second.name.len() - 6..]);
    let watch = format!("watchNamespaces={{{ns_a}}}");
    let key = format!("apiKey.value={}", crate::support::env::API_KEY);
    helm_ok(
        &[
            "install",
            &release,
            CHART,
            "-n",
            &second.name,
            "--set",
            SET_IMAGE,
            "--set",
            &watch,
            "--set",
            "serveUnassigned=false",
            "--set",
            &key,
            SKIP_CRDS,
        ],
        Some(cluster.kubeconfig.as_os_str()),
    );
    let second_account = format!("{release}-digicert-operator");
    let first_pod = first.start(&|a| vec![a.to_string()]).await;
    let url = first.env.sim.base_url();
    let ca = first.env.ca_file.path().to_path_buf();
    let second_pod = LocalPod::start(
        &cluster.client,
        &cluster.kubeconfig,
        &second.name,
        &second_account,
        &move |arg: &str| local_operator_args(arg, &url, &ca),
    )
    .await;
    wait_ready_endpoint(&first_pod).await;
    wait_ready_endpoint(&second_pod).await;

    // One order of the first release's default account (it names none), one naming
    // the second release's account.
    first.kubectl(&["apply", "-n", &ns_a, "-f", "deploy/examples/rsa-order.yaml"]);
    let shop = std::fs::read_to_string(repo_root().join("deploy/examples/ecdsa-order.yaml"))
        .unwrap()
        .replace(
            "  orderId: 1002\n",
            &format!("  orderId: 1002\n  accountRef: {{name: {second_account}}}\n"),
        );
    assert!(shop.contains("accountRef"), "{shop}");
    cluster.kubectl_ok(&["apply", "-n", &ns_a, "-f", "-"], Some(&shop));
    for order in ["example-com", "shop-example-org"] {
        first.kubectl(&[
            "wait",
            "-n",
            &ns_a,
            "--for=condition=Ready",
            &format!("dco/{order}"),
            "--timeout=60s",
        ]);
    }
    let orders = Api::<DigicertOrder>::namespaced(cluster.client.clone(), &ns_a);
    let account_of = |o: &DigicertOrder| o.status.as_ref().and_then(|s| s.account.clone());
    assert_eq!(
        account_of(&orders.get("example-com").await.unwrap()).as_deref(),
        Some(first.fullname.as_str())
    );
    assert_eq!(
        account_of(&orders.get("shop-example-org").await.unwrap()).as_deref(),
        Some(second_account.as_str())
    );

    // Side by side for a while: both accounts stay Ready on their own keys, both
    // orders Ready with their first certificate.
    let accounts = Api::<DigicertAccount>::all(cluster.client.clone());
    let ready_message = |a: &DigicertAccount| {
        a.status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
            .filter(|c| c.status == "True")
            .map(|c| c.message.clone())
    };
    let end = Instant::now() + Duration::from_secs(6);
    while Instant::now() < end {
        for (account, key_namespace) in [
            (&first.fullname, cluster.namespace.as_str()),
            (&second_account, second.name.as_str()),
        ] {
            let a = accounts.get(account).await.unwrap();
            let message = ready_message(&a).unwrap_or_else(|| panic!("{account}: {:?}", a.status));
            assert!(
                message.contains(&format!("{key_namespace}/")),
                "{account}: {message}"
            );
        }
        for order in ["example-com", "shop-example-org"] {
            let o = orders.get(order).await.unwrap();
            let status = o.status.as_ref().unwrap();
            assert_eq!(status.revision, 1, "{order}");
            assert!(
                status
                    .conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True"),
                "{order}: {status:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        first.env.sim.simulator().calls().total(Operation::Reissue),
        2
    );
    for pod in [&first_pod, &second_pod] {
        let logs = pod.logs();
        for bad in ["forbidden", "Forbidden"] {
            assert!(!logs.contains(bad), "{bad} in the log:\n{logs}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_namespace_without_a_role_is_reported_and_the_others_are_served() {
    let install = namespaced_install("chart-no-access").await;
    let other = ExtraNamespace::create(&install.env.cluster, "b").await;
    let ns_a = install.watched.name.clone();
    let both = format!("--watch-namespace={ns_a},{}", other.name);
    let mut pod = install
        .start(&move |a| {
            if a.starts_with("--watch-namespace=") {
                vec![both.clone()]
            } else {
                vec![a.to_string()]
            }
        })
        .await;
    install.kubectl(&["apply", "-n", &ns_a, "-f", "deploy/examples/rsa-order.yaml"]);
    install.kubectl(&[
        "wait",
        "-n",
        &ns_a,
        "--for=condition=Ready",
        "dco/example-com",
        "--timeout=60s",
    ]);
    pod.process.wait_for_log(
        &format!("no access to DigicertOrders in namespace {}", other.name),
        Duration::from_secs(30),
    );
    let ready = wait_ready_endpoint(&pod).await;
    assert!(ready.contains("not accessible"), "{ready}");
    assert!(
        pod.process.is_running(),
        "the operator stopped:\n{}",
        pod.logs()
    );
}

// ----------------------------------------------------------------- the README

/// The README's install section. Its shell blocks run below as they are written.
const README_INSTALL: &str = r#"## Install

`charts/digicert-operator` is the Helm chart: the operator (a Deployment running
`digicert-operator run` as user 65532 with a read-only root file system, under the
restricted Pod Security Standard), its ServiceAccount and RBAC (a ClusterRole, or with
`watchNamespaces` Roles in those namespaces only), a Service for `/metrics`, and
optionally a ServiceMonitor, a PodDisruptionBudget, a NetworkPolicy and the CertCentral
simulator; see `charts/digicert-operator/values.yaml`.

No public registry has the image: build it from the `Dockerfile` and push it to a
registry your cluster pulls from. `$REGISTRY` below is that registry, e.g.
`registry.example.com/pki`:

```sh
docker build -t "$REGISTRY/digicert-operator:0.1.0" .
docker push "$REGISTRY/digicert-operator:0.1.0"
# Only for the CertCentral simulator in the cluster (below): its own image.
docker build --target simulator -t "$REGISTRY/certcentral-sim:0.1.0" .
docker push "$REGISTRY/certcentral-sim:0.1.0"
```

The chart requires `image.repository` (the tag defaults to the chart's version). With
your CertCentral API key:

```sh
kubectl create namespace digicert-operator
kubectl create secret generic digicert-api-key --namespace digicert-operator \
  --from-literal=api-key="$DIGICERT_API_KEY"
helm install digicert-operator charts/digicert-operator --namespace digicert-operator \
  --set image.repository="$REGISTRY/digicert-operator"
```

Or, without a DigiCert account, with the CertCentral simulator in the cluster (its own
image, `$REGISTRY/certcentral-sim`, named after `image.repository`; with the orders of
`deploy/simulator/orders.yaml`):

```sh
helm install digicert-operator charts/digicert-operator --namespace digicert-operator \
  --create-namespace --set image.repository="$REGISTRY/digicert-operator" \
  --set simulator.enabled=true
```

Or without Helm: `deploy/digicert-operator.yaml` is the chart rendered with its defaults,
with the Namespace and the CRDs (`hack/render-manifests.sh` writes it); its image is
`REGISTRY/digicert-operator:0.1.0`, with your registry put in place of `REGISTRY` as it
is applied. The default account (the chart's `defaultAccount`) is applied once its CRD
is there:

```sh
sed "s|REGISTRY/|$REGISTRY/|" deploy/digicert-operator.yaml | kubectl apply -f -
kubectl create secret generic digicert-api-key --namespace digicert-operator \
  --from-literal=api-key="$DIGICERT_API_KEY"
kubectl wait --for=jsonpath='{.status.acceptedNames.kind}'=DigicertAccount \
  --for=condition=Established crd/digicertaccounts.digicert-operator.dev
kubectl apply -f deploy/examples/default-account.yaml
```

Then order a certificate (for an order of yours, edit `orderId` and the names first) and
wait for it:

```sh
kubectl apply -f deploy/examples/rsa-order.yaml
kubectl wait --for=condition=Ready dco/example-com --timeout=5m
kubectl get dco
```

Helm installs the chart's CRD (`charts/digicert-operator/crds/`) with the release but
never upgrades it. After upgrading the chart, apply it again (Helm owns its fields, so
the apply takes them over):

```sh
kubectl apply --server-side --force-conflicts -f charts/digicert-operator/crds/
```
"#;

/// The commands of each shell block of README_INSTALL (continued lines joined).
fn readme_blocks() -> Vec<Vec<String>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    let mut pending = String::new();
    for line in README_INSTALL.lines() {
        match (&mut current, line) {
            (None, "```sh") => current = Some(Vec::new()),
            (Some(_), "```") => blocks.push(current.take().unwrap()),
            (Some(block), _) => {
                pending.push_str(line.trim_end_matches('\\').trim());
                if line.ends_with('\\') {
                    pending.push(' ');
                } else {
                    block.push(std::mem::take(&mut pending));
                }
            }
            (None, _) => {}
        }
    }
    assert_eq!(blocks.len(), 6, "six shell blocks");
    blocks
}

/// The registry of the README's commands (their `$REGISTRY`).
const README_REGISTRY: &str = "registry.example.org/pki";

/// The image the README's first block builds and pushes, and its installs deploy.
fn readme_image() -> String {
    format!("{README_REGISTRY}/digicert-operator:{}", app_version())
}

/// Runs README commands with bash in the repository root, as a reader would: `helm`
/// is hack/helm/helm.py, `kubectl` the server's version; KUBECONFIG is the test's
/// control plane, REGISTRY README_REGISTRY. A command that fails or prints a warning
/// fails the test.
fn run_readme(commands: &[String], kubeconfig: &OsStr, api_key: &str) -> String {
    let shim = tempfile::tempdir().unwrap();
    let helm = shim.path().join("helm");
    std::fs::write(
        &helm,
        format!(
            "#!/bin/sh\nexec '{}' '{}' \"$@\"\n",
            helm_python().display(),
            repo_root().join("hack/helm/helm.py").display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helm, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = std::env::join_paths(std::iter::once(shim.path().to_path_buf()).chain(
        std::env::split_paths(&crate::support::cluster::path_with_assets()),
    ))
    .unwrap();
    let mut output = String::new();
    for command in commands {
        let child = Command::new("bash")
            .args(["-euo", "pipefail", "-c", command])
            .current_dir(repo_root())
            .env("PATH", &path)
            .env("KUBECONFIG", kubeconfig)
            .env("DIGICERT_API_KEY", api_key)
            .env("REGISTRY", README_REGISTRY)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bash runs");
        // A failure shows long before `kubectl wait --timeout=5m` gives up. The output
        // is read meanwhile, so a chatty command never blocks on a full pipe.
        let pid = child.id();
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            let late = finished.recv_timeout(Duration::from_secs(90)).is_err();
            if late {
                let _ = Command::new("kill").arg(pid.to_string()).status();
            }
            late
        });
        let out = child.wait_with_output().unwrap();
        let _ = done.send(());
        let late = watchdog.join().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !late,
            "{command}: still running after 90 s:\n{stdout}{stderr}"
        );
        assert!(out.status.success(), "{command}:\n{stdout}{stderr}");
        assert_no_warnings(command, &stderr);
        output.push_str(&stdout);
    }
    output
}

#[test]
fn the_readme_has_the_tested_install_section() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    assert!(
        readme.contains(README_INSTALL),
        "README.md's Install section differs from README_INSTALL in tests/e2e/chart.rs, whose commands the tests run"
    );
    let blocks = readme_blocks();
    for block in &blocks {
        for command in block {
            assert!(!command.is_empty());
        }
    }
    // The first block builds and pushes the image; no Docker engine runs it here
    // (tests/components/image.rs runs the Dockerfile's build). Its tag is the chart's default, so
    // the installs below deploy what it pushed (readme_installed_image checks).
    let version = app_version();
    assert_eq!(
        blocks[0],
        [
            format!("docker build -t \"$REGISTRY/digicert-operator:{version}\" ."),
            format!("docker push \"$REGISTRY/digicert-operator:{version}\""),
            "# Only for the CertCentral simulator in the cluster (below): its own image."
                .to_string(),
            format!("docker build --target simulator -t \"$REGISTRY/certcentral-sim:{version}\" ."),
            format!("docker push \"$REGISTRY/certcentral-sim:{version}\""),
        ]
    );
}

/// The operator's Deployment runs the image the README's first block pushed.
async fn readme_installed_image(cp: &OwnControlPlane) {
    let d = Api::<Deployment>::namespaced(cp.client.clone(), "digicert-operator")
        .get("digicert-operator")
        .await
        .unwrap();
    let image = d.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone();
    assert_eq!(image, Some(readme_image()));
}

/// A control plane of the test's own for the README's commands: they install into
/// fixed names (the namespace digicert-operator, cluster-wide RBAC), and the operator
/// they install watches every namespace.
async fn readme_control_plane(test: &str) -> Option<OwnControlPlane> {
    OwnControlPlane::start(
        test,
        "installs into the namespace digicert-operator with an operator watching every namespace",
        // As on OpenShift: an owner reference that blocks the owner's deletion needs the
        // right to update the owner's finalizers.
        "--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
    )
    .await
}

const README_KEY: &str = "readme-api-key-0123456789";

/// The README's order block, then the certificate in the Secret.
/// (A failure shows the logs of the local pods: they print them when dropped.)
async fn order_and_wait(cp: &OwnControlPlane, root_pem: &str) {
    let out = run_readme(&readme_blocks()[4], &cp.kubeconfig, README_KEY);
    assert!(out.contains("example-com"), "{out}");
    let secret = Api::<Secret>::namespaced(cp.client.clone(), "default")
        .get("example-com-tls")
        .await
        .unwrap();
    verify_tls_secret(&secret, root_pem, &["example.com", "www.example.com"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readme_install_with_an_api_key_makes_an_order_ready() {
    let test = "readme_install_with_an_api_key_makes_an_order_ready";
    let Some(cp) = readme_control_plane(test).await else {
        return;
    };
    let (sim, ca) = example_simulator(README_KEY).await;
    run_readme(&readme_blocks()[1], &cp.kubeconfig, README_KEY);
    readme_installed_image(&cp).await;
    // The cluster-wide RBAC, proven: the operator has only the chart's token.
    let url = sim.base_url();
    let pod = LocalPod::start(
        &cp.client,
        &cp.kubeconfig,
        "digicert-operator",
        "digicert-operator",
        &|a| local_operator_args(a, &url, ca.path()),
    )
    .await;
    order_and_wait(&cp, sim.ca_pem()).await;
    let ready = wait_ready_endpoint(&pod).await;
    assert!(ready.contains("leader"), "{ready}");
    let (code, metrics) = http_get(&format!("{}/metrics", pod.http_base())).await;
    assert_eq!(code, 200);
    assert!(metrics.contains("# TYPE"), "{metrics}");
    assert!(!pod.logs().contains("orbidden"), "{}", pod.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readme_install_with_the_simulator_in_the_cluster_makes_an_order_ready() {
    let test = "readme_install_with_the_simulator_in_the_cluster_makes_an_order_ready";
    let Some(cp) = readme_control_plane(test).await else {
        return;
    };
    let out = run_readme(&readme_blocks()[2], &cp.kubeconfig, README_KEY);
    assert!(
        out.contains(&readme_image()),
        "the notes name the image:\n{out}"
    );
    readme_installed_image(&cp).await;
    // The simulator runs its own image, beside the operator's in the registry.
    let simulator = Api::<Deployment>::namespaced(cp.client.clone(), "digicert-operator")
        .get("digicert-operator-simulator")
        .await
        .unwrap();
    assert_eq!(
        simulator.spec.unwrap().template.spec.unwrap().containers[0].image,
        Some(format!(
            "{README_REGISTRY}/certcentral-sim:{}",
            app_version()
        ))
    );
    // The simulator as its Deployment says, on a local port.
    let sim = LocalPod::start(
        &cp.client,
        &cp.kubeconfig,
        "digicert-operator",
        "digicert-operator-simulator",
        &|a| {
            if a == "--listen=0.0.0.0:8443" {
                vec!["--listen=127.0.0.1:0".into()]
            } else {
                vec![a.to_string()]
            }
        },
    )
    .await;
    sim.process
        .wait_for_log("CertCentral simulator: ", Duration::from_secs(30));
    let logs = sim.logs();
    let port: u16 = logs
        .lines()
        .find_map(|l| l.strip_prefix("CertCentral simulator: https://127.0.0.1:"))
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect("the simulator's port");
    // The operator reaches it at localhost, as through `kubectl port-forward`: the
    // chart's certificate is valid for that name too, and the operator trusts the
    // chart's CA (its --ca-bundle, from the mounted ConfigMap).
    let cluster_url = "https://digicert-operator-simulator.digicert-operator.svc:8443/services/v2";
    let local_url = format!("https://localhost:{port}/services/v2");
    let operator = LocalPod::start(
        &cp.client,
        &cp.kubeconfig,
        "digicert-operator",
        "digicert-operator",
        &|a| {
            if let Some(value) = a.strip_prefix("--certcentral-url=") {
                assert_eq!(value, cluster_url);
                return vec![format!("--certcentral-url={local_url}")];
            }
            if a == "--health-addr=0.0.0.0:8080" {
                return vec!["--health-addr=127.0.0.1:0".into()];
            }
            vec![a.to_string()]
        },
    )
    .await;
    // The simulator's root, fetched over the chart's TLS with the chart's CA.
    let tls = Api::<Secret>::namespaced(cp.client.clone(), "digicert-operator")
        .get("digicert-operator-simulator-tls")
        .await
        .unwrap();
    let chart_ca = tls.data.unwrap()["ca.crt"].0.clone();
    let client = reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(&chart_ca).unwrap())
        .build()
        .unwrap();
    let root = client
        .get(format!("https://localhost:{port}/admin/ca.pem"))
        .send()
        .await
        .expect("the simulator answers over the chart's TLS")
        .text()
        .await
        .unwrap();
    order_and_wait(&cp, &root).await;
    drop((sim, operator));

    // An upgrade: the chart's CRD differs from the one the first install put there,
    // whose fields Helm owns. The README's command takes them over.
    let file =
        std::fs::read_to_string(repo_root().join(CHART).join("crds/digicertorders.yaml")).unwrap();
    let marker = "A message sent with each reissue request.";
    assert!(file.contains(marker));
    let older = file.replace(marker, "An older description.");
    let crd_description = || {
        kubectl(
            &cp.kubeconfig,
            &[
                "get",
                "crd",
                "digicertorders.digicert-operator.dev",
                "-o",
                "jsonpath={.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.comments.description}",
            ],
        )
    };
    let managers = kubectl(
        &cp.kubeconfig,
        &[
            "get",
            "crd",
            "digicertorders.digicert-operator.dev",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
        ],
    );
    let helm_manager = managers
        .split_whitespace()
        .find(|m| *m != "kube-apiserver")
        .expect("Helm's field manager")
        .to_string();
    let mut apply = kubectl_command(&cp.kubeconfig);
    apply
        .args([
            "apply",
            "--server-side",
            "--field-manager",
            &helm_manager,
            "-f",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = apply.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(older.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(crd_description(), "An older description.");
    run_readme(&readme_blocks()[5], &cp.kubeconfig, README_KEY);
    assert_eq!(crd_description(), marker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readme_install_without_helm_makes_an_order_ready() {
    let test = "readme_install_without_helm_makes_an_order_ready";
    let Some(cp) = readme_control_plane(test).await else {
        return;
    };
    let (sim, ca) = example_simulator(README_KEY).await;
    run_readme(&readme_blocks()[3], &cp.kubeconfig, README_KEY);
    readme_installed_image(&cp).await;
    let url = sim.base_url();
    let pod = LocalPod::start(
        &cp.client,
        &cp.kubeconfig,
        "digicert-operator",
        "digicert-operator",
        &|a| local_operator_args(a, &url, ca.path()),
    )
    .await;
    order_and_wait(&cp, sim.ca_pem()).await;
    assert!(!pod.logs().contains("orbidden"), "{}", pod.logs());
}
