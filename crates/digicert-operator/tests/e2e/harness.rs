//! Proves the end-to-end harness against the real API server: watches, server-side
//! apply conflicts, a CRD with a status subresource reconciled by a small controller,
//! TokenRequest and RBAC, the operator binary as a subprocess, Helm, waits for
//! conditions that cannot race a new CRD, the control-plane scripts (a killed test
//! leaves nothing behind; a stop needs no SIGKILL) and `hack/demo.sh`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::cluster::{TestCluster, helm, skip, use_existing_cluster, wait_established};
use crate::support::process::{OperatorProcess, process_alive};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::ByteString;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams, WatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{CustomResource, CustomResourceExt, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_watcher_sees_a_secret_change() {
    let cluster = TestCluster::new("secret-watch").await;
    let secrets: Api<Secret> = cluster.api();
    let stream = watcher(
        secrets.clone(),
        watcher::Config::default().fields("metadata.name=watched"),
    )
    .applied_objects();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = seen.clone();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Ok(Some(s)) = stream.try_next().await {
            let value = s
                .data
                .and_then(|d| {
                    d.get("v")
                        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                })
                .unwrap_or_default();
            sink.lock().unwrap().push(value);
        }
    });
    let mut secret = Secret {
        metadata: ObjectMeta {
            name: Some("watched".into()),
            ..ObjectMeta::default()
        },
        data: Some([("v".to_string(), ByteString(b"one".to_vec()))].into()),
        ..Secret::default()
    };
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    eventually("the created secret", Duration::from_secs(30), || async {
        seen.lock().unwrap().contains(&"one".to_string())
    })
    .await;
    secret.data = Some([("v".to_string(), ByteString(b"two".to_vec()))].into());
    secrets
        .replace("watched", &PostParams::default(), &secret)
        .await
        .unwrap();
    eventually("the changed secret", Duration::from_secs(30), || async {
        seen.lock().unwrap().contains(&"two".to_string())
    })
    .await;
    task.abort();
}

#[tokio::test]
async fn server_side_apply_reports_a_conflict_between_managers() {
    let cluster = TestCluster::new("ssa-conflict").await;
    let maps: Api<ConfigMap> = cluster.api();
    let cm = |value: &str| {
        serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "shared"},
            "data": {"key": value},
        })
    };
    maps.patch(
        "shared",
        &PatchParams::apply("manager-a"),
        &Patch::Apply(cm("a")),
    )
    .await
    .unwrap();
    let err = maps
        .patch(
            "shared",
            &PatchParams::apply("manager-b"),
            &Patch::Apply(cm("b")),
        )
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 409, "{status:?}");
            assert!(status.message.contains("conflict"), "{}", status.message);
        }
        other => panic!("expected a conflict, got {other}"),
    }
    let forced = maps
        .patch(
            "shared",
            &PatchParams::apply("manager-b").force(),
            &Patch::Apply(cm("b")),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["key"], "b");
    let managers: Vec<String> = forced
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(managers.contains(&"manager-b".to_string()), "{managers:?}");
}

/// A namespaced test resource with a status subresource.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "e2e.digicert-operator.dev",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus"
)]
pub struct WidgetSpec {
    pub value: i64,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
pub struct WidgetStatus {
    pub doubled: i64,
}

#[tokio::test]
async fn kubectl_applied_custom_resources_are_reconciled_by_a_controller() {
    let cluster = TestCluster::new("crd-controller").await;
    let crd_yaml = serde_yaml::to_string(&Widget::crd()).unwrap();
    cluster.kubectl_ok(&["apply", "-f", "-"], Some(&crd_yaml));
    wait_established(&cluster.kubeconfig, &["widgets.e2e.digicert-operator.dev"]);
    let widgets: Api<Widget> = cluster.api();

    // The controller: status.doubled = 2 * spec.value, through the status subresource.
    let controller = Controller::new(widgets.clone(), watcher::Config::default())
        .run(
            |w: std::sync::Arc<Widget>, api: std::sync::Arc<Api<Widget>>| async move {
                let status = serde_json::json!({
                    "apiVersion": "e2e.digicert-operator.dev/v1",
                    "kind": "Widget",
                    "status": {"doubled": w.spec.value * 2},
                });
                api.patch_status(
                    &w.name_any(),
                    &PatchParams::apply("widget-controller").force(),
                    &Patch::Apply(status),
                )
                .await?;
                Ok::<_, kube::Error>(Action::await_change())
            },
            |_, _, _| Action::requeue(Duration::from_secs(1)),
            std::sync::Arc::new(widgets.clone()),
        )
        .for_each(|_| async {});
    let task = tokio::spawn(controller);

    let manifest = "apiVersion: e2e.digicert-operator.dev/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  value: 21\n";
    // The CRD may take a moment to be served after Established.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = cluster.kubectl_run(&["apply", "-f", "-"], Some(manifest));
        if out.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "kubectl apply: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eventually("the widget's status", Duration::from_secs(30), || async {
        widgets
            .get_status("w1")
            .await
            .ok()
            .and_then(|w| w.status)
            .is_some_and(|s| s.doubled == 42)
    })
    .await;
    // A spec change is reconciled again; the status subresource kept spec and status apart.
    cluster.kubectl_ok(
        &[
            "patch",
            "widget",
            "w1",
            "--type=merge",
            "-p",
            r#"{"spec":{"value":5}}"#,
        ],
        None,
    );
    eventually("the updated status", Duration::from_secs(30), || async {
        widgets
            .get("w1")
            .await
            .ok()
            .and_then(|w| w.status)
            .is_some_and(|s| s.doubled == 10)
    })
    .await;
    task.abort();
}

#[tokio::test]
async fn a_service_account_token_is_limited_by_its_role() {
    let cluster = TestCluster::new("token-rbac").await;
    let ns = cluster.namespace.clone();
    let sas: Api<ServiceAccount> = cluster.api();
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some("reader".into()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    sas.create(&PostParams::default(), &sa).await.unwrap();
    let role = Role {
        metadata: ObjectMeta {
            name: Some("configmap-reader".into()),
            ..ObjectMeta::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec!["".into()]),
            resources: Some(vec!["configmaps".into()]),
            verbs: vec!["get".into(), "list".into()],
            ..PolicyRule::default()
        }]),
    };
    cluster
        .api::<Role>()
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some("reader".into()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: "configmap-reader".into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: "reader".into(),
            namespace: Some(ns.clone()),
            ..Subject::default()
        }]),
    };
    cluster
        .api::<RoleBinding>()
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let token = sas
        .create_token_request(
            "reader",
            &PostParams::default(),
            &TokenRequest {
                spec: TokenRequestSpec {
                    expiration_seconds: Some(600),
                    ..TokenRequestSpec::default()
                },
                ..TokenRequest::default()
            },
        )
        .await
        .unwrap()
        .status
        .map(|s| s.token)
        .expect("token issued");

    // A second client that knows only the server, its CA and the token.
    let mut config = cluster.config_without_credentials().await;
    config.auth_info.token = Some(token.into());
    let limited = kube::Client::try_from(config).unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(limited.clone(), &ns);
    // The authorizer learns of a new RoleBinding from its own watch: a 403 for a
    // moment after the binding was created is the server catching up, not the role.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match maps.list(&Default::default()).await {
            Ok(_) => break,
            Err(kube::Error::Api(status))
                if status.code == 403 && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("configmaps may be read: {e:?}"),
        }
    }
    let secrets: Api<Secret> = Api::namespaced(limited, &ns);
    match secrets.list(&Default::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("expected 403, got {other:?}"),
    }
}

#[tokio::test]
async fn the_operator_binary_runs_as_a_subprocess_and_can_be_killed() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready.json");
    let mut p = OperatorProcess::start_simulator(
        [
            "--listen",
            "127.0.0.1:0",
            "--ready-file",
            ready.to_str().unwrap(),
        ],
        &[("LOG_LEVEL", std::ffi::OsStr::new("debug"))],
    );
    p.wait_for_log("CertCentral simulator listening", Duration::from_secs(30));
    // The ready file follows the listening line (it is written once the server runs).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !ready.exists() {
        assert!(std::time::Instant::now() < deadline, "no ready file");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = p.pid();
    assert!(p.is_running());
    p.kill();
    assert!(!process_alive(pid), "SIGKILL ended it");

    // SIGTERM: a clean exit.
    let mut p = OperatorProcess::start_simulator(["--listen", "127.0.0.1:0"], &[]);
    p.wait_for_log("listening", Duration::from_secs(30));
    let status = p
        .terminate(Duration::from_secs(10))
        .expect("exits on SIGTERM");
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn helm_lints_renders_installs_and_uninstalls_a_chart() {
    let cluster = TestCluster::new("helm").await;
    let chart = crate::support::cluster::repo_root()
        .join("crates/digicert-operator/tests/fixtures/harness-chart");
    let chart = chart.to_str().unwrap();
    let ns = cluster.namespace.as_str();
    let ok = |args: &[&str]| {
        let out = helm(&cluster, args);
        assert!(
            out.status.success(),
            "helm {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    ok(&["lint", chart, "--strict"]);
    let rendered = ok(&["template", "demo", chart, "-n", ns, "--set", "greeting=hi"]);
    assert!(rendered.contains(r#"greeting: "hi""#), "{rendered}");
    let dry_run = cluster.kubectl_ok(
        &["apply", "--dry-run=server", "--validate=strict", "-f", "-"],
        Some(&rendered),
    );
    assert!(dry_run.contains("(server dry run)"), "{dry_run}");
    ok(&["install", "demo", chart, "-n", ns, "--wait"]);
    let maps: Api<ConfigMap> = cluster.api();
    assert_eq!(
        maps.get("demo-greeting").await.unwrap().data.unwrap()["greeting"],
        "hello"
    );
    ok(&[
        "upgrade",
        "demo",
        chart,
        "-n",
        ns,
        "--set",
        "greeting=again",
        "--wait",
    ]);
    assert_eq!(
        maps.get("demo-greeting").await.unwrap().data.unwrap()["greeting"],
        "again"
    );
    ok(&["uninstall", "demo", "-n", ns, "--wait"]);
    assert!(maps.get_opt("demo-greeting").await.unwrap().is_none());
    // A value the schema refuses.
    let out = helm(
        &cluster,
        &["template", "demo", chart, "-n", ns, "--set", "replicas=-1"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("replicas"));
}

#[tokio::test]
async fn crd_validation_rules_are_enforced() {
    let cluster = TestCluster::new("cel").await;
    let crd = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: ranges.e2e.digicert-operator.dev}
spec:
  group: e2e.digicert-operator.dev
  names: {kind: Range, plural: ranges}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              x-kubernetes-validations:
                - rule: "self.low <= self.high"
                  message: "low must not exceed high"
              properties:
                low: {type: integer}
                high: {type: integer}
"#;
    cluster.kubectl_ok(&["apply", "-f", "-"], Some(crd));
    wait_established(&cluster.kubeconfig, &["ranges.e2e.digicert-operator.dev"]);
    let bad = "apiVersion: e2e.digicert-operator.dev/v1\nkind: Range\nmetadata: {name: r}\nspec: {low: 5, high: 1}\n";
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = cluster.kubectl_run(&["apply", "-f", "-"], Some(bad));
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("low must not exceed high") {
            break;
        }
        assert!(!out.status.success(), "an invalid range was admitted");
        assert!(Instant::now() < deadline, "{stderr}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The pids start.sh recorded in `DIR/instance` under `keys` (all of them must be
/// there), and the file.
fn instance_pids(dir: &Path, keys: &[&str]) -> (Vec<u32>, String) {
    let instance = std::fs::read_to_string(dir.join("instance")).unwrap();
    let pids: Vec<u32> = instance
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| keys.contains(k))
        .filter_map(|(_, v)| v.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(pids.len(), keys.len(), "{keys:?} in {instance}");
    (pids, instance)
}

#[tokio::test]
async fn a_killed_owner_leaves_no_control_plane_behind() {
    if use_existing_cluster() {
        skip(
            "a_killed_owner_leaves_no_control_plane_behind",
            "tests the project's own control-plane scripts, not used with USE_EXISTING_CLUSTER",
        );
        return;
    }
    let root = crate::support::cluster::repo_root();
    let dir = tempfile::tempdir().unwrap();
    let mut owner = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    let out = std::process::Command::new(root.join("hack/control-plane/start.sh"))
        .arg(dir.path())
        .args(["--owner-pid", &owner.id().to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (pids, instance) = instance_pids(dir.path(), &["ETCD_PID", "APISERVER_PID"]);
    assert!(pids.iter().all(|p| process_alive(*p)));

    owner.kill().unwrap(); // SIGKILL
    owner.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while pids.iter().any(|p| process_alive(*p)) {
        assert!(
            Instant::now() < deadline,
            "control plane outlived its owner: {instance}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn the_server_is_a_supported_kubernetes_and_kubectl_matches_it() {
    let cluster = TestCluster::new("version").await;
    let version = cluster
        .client
        .apiserver_version()
        .await
        .expect("the API server answers");
    assert_eq!(
        digicert_operator::operator::supported_kubernetes(&version.major, &version.minor),
        Some(true),
        "{} is older than the supported range",
        version.git_version
    );
    if use_existing_cluster() {
        return;
    }
    // The suite's server is the kube-apiserver of the test binaries, and kubectl is
    // theirs too: no older client in between.
    let assets = crate::support::cluster::assets_dir().expect("the test binaries");
    let out = std::process::Command::new(assets.join("kube-apiserver"))
        .arg("--version")
        .output()
        .unwrap();
    let binary = String::from_utf8_lossy(&out.stdout);
    assert_eq!(binary.trim(), format!("Kubernetes {}", version.git_version));
    let client: serde_json::Value =
        serde_json::from_str(&cluster.kubectl_ok(&["version", "--client", "-o", "json"], None))
            .unwrap();
    assert_eq!(client["clientVersion"]["major"], version.major.as_str());
    let skew = client["clientVersion"]["minor"]
        .as_str()
        .unwrap()
        .trim_end_matches('+')
        .parse::<i32>()
        .unwrap()
        - cluster.server_minor as i32;
    assert!(
        skew.abs() <= 1,
        "kubectl {client} for server {}",
        version.git_version
    );
}

/// A CRD just created has `.status.conditions: null` until the API server's
/// controllers write them; `kubectl wait --for=condition=Established` fails at once on
/// that, so a wait straight after the create failed now and then. The waits of the
/// tests (`wait_condition_true`) and of the scripts (`cp_wait_condition` in
/// hack/control-plane/lib.sh) keep waiting. Shown on an object of a CRD of the test's
/// own, whose status stays `{"conditions": null}` until the test writes a condition.
#[tokio::test]
async fn condition_waits_wait_while_the_status_has_no_conditions_yet() {
    let cluster = TestCluster::new("null-conditions").await;
    let kubeconfig = cluster.kubeconfig.clone();
    let kubectl = || crate::support::cluster::kubectl_command(&kubeconfig);
    let suffix = cluster.namespace.rsplit('-').next().unwrap().to_string();
    let (kind, plural) = (format!("NullProbe{suffix}"), format!("nullprobe{suffix}s"));
    let crd = format!("{plural}.e2e.digicert-operator.dev");
    let manifest = format!(
        r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: {crd}}}
spec:
  group: e2e.digicert-operator.dev
  names: {{kind: {kind}, plural: {plural}}}
  scope: Cluster
  versions:
    - name: v1
      served: true
      storage: true
      subresources: {{status: {{}}}}
      schema:
        openAPIV3Schema:
          type: object
          properties:
            status: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
"#
    );
    // The CRD as created: no conditions yet, which is what kubectl wait trips on.
    let created: serde_json::Value = serde_json::from_str(
        &cluster.kubectl_ok(&["create", "-o", "json", "-f", "-"], Some(&manifest)),
    )
    .unwrap();
    assert!(
        created["status"]["conditions"].is_null(),
        "{}",
        created["status"]
    );
    assert_eq!(
        crate::support::cluster::condition_status(&created, "Established"),
        None
    );
    wait_established(&kubeconfig, &[&crd]);

    let object = format!("{crd}/probe");
    let probe = format!(
        "apiVersion: e2e.digicert-operator.dev/v1\nkind: {kind}\nmetadata: {{name: probe}}\n"
    );
    // The CRD may take a moment to be served after Established.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = cluster.kubectl_run(&["create", "-f", "-"], Some(&probe));
        if out.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let set_status = |status: serde_json::Value| {
        let patch = serde_json::json!([{"op": "add", "path": "/status", "value": status}]);
        cluster.kubectl_ok(
            &[
                "patch",
                &object,
                "--subresource=status",
                "--type=json",
                "-p",
                &patch.to_string(),
            ],
            None,
        );
    };
    set_status(serde_json::json!({"conditions": null}));

    // kubectl wait gives up at once, long before its timeout.
    let started = Instant::now();
    let out = kubectl()
        .args([
            "wait",
            "--for=condition=Established",
            &object,
            "--timeout=30s",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("accessor error"),
        "kubectl wait on null conditions: {stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(20), "{stderr}");

    // The helpers wait instead: until their timeout while nothing changes...
    let shell_wait = |timeout: u32| {
        let started = Instant::now();
        let out = Command::new("bash")
            .arg("-c")
            .arg(r#"source hack/control-plane/lib.sh && cp_wait_condition "$@""#)
            .args(["-", &timeout.to_string(), "Established", &object])
            .current_dir(crate::support::cluster::repo_root())
            .env("KUBECONFIG", &kubeconfig)
            .env("PATH", crate::support::cluster::path_with_assets())
            .output()
            .unwrap();
        (out, started.elapsed())
    };
    let started = Instant::now();
    let err = crate::support::cluster::wait_condition_true(
        kubectl,
        &object,
        "Established",
        Duration::from_secs(2),
    )
    .unwrap_err();
    assert!(started.elapsed() >= Duration::from_secs(2), "{err}");
    assert!(err.contains("is not Established=True after"), "{err}");
    let (out, took) = shell_wait(2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(took >= Duration::from_secs(2), "{took:?}: {stderr}");
    assert!(
        stderr.contains("is not Established=True after 2s"),
        "{stderr}"
    );

    // ...and return once the condition is there.
    set_status(serde_json::json!({"conditions": [{"type": "Established", "status": "True"}]}));
    crate::support::cluster::wait_condition_true(
        kubectl,
        &object,
        "Established",
        Duration::from_secs(30),
    )
    .unwrap();
    let (out, _) = shell_wait(30);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cluster.kubectl_ok(&["delete", "crd", &crd, "--wait=false"], None);
}

/// stop.sh ends kube-apiserver, etcd and the watchdog with SIGTERM, also while
/// clients keep watches open (as operators and tests do), and says so.
#[tokio::test]
async fn stop_ends_the_control_plane_with_sigterm_while_watches_are_open() {
    if use_existing_cluster() {
        skip(
            "stop_ends_the_control_plane_with_sigterm_while_watches_are_open",
            "tests the project's own control-plane scripts, not used with USE_EXISTING_CLUSTER",
        );
        return;
    }
    let root = crate::support::cluster::repo_root();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(root.join("hack/control-plane/start.sh"))
        .arg(dir.path())
        .args(["--owner-pid", &std::process::id().to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (pids, instance) =
        instance_pids(dir.path(), &["APISERVER_PID", "ETCD_PID", "WATCHDOG_PID"]);
    let kubeconfig = dir.path().join("kubeconfig").into_os_string();
    let client = crate::support::cluster::client_for(&kubeconfig).await;
    let maps: Api<ConfigMap> = Api::all(client.clone());
    let secrets: Api<Secret> = Api::all(client);
    let _watches = (
        maps.watch(&WatchParams::default(), "0").await.unwrap(),
        secrets.watch(&WatchParams::default(), "0").await.unwrap(),
    );

    let path = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(root.join("hack/control-plane/stop.sh"))
            .arg(path)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    for name in ["kube-apiserver", "etcd", "watchdog"] {
        assert!(
            log.lines()
                .any(|l| l.contains(&format!("{name} (pid")) && l.contains("stopped on SIGTERM")),
            "{name} did not stop on SIGTERM:\n{log}"
        );
    }
    assert!(!log.contains("SIGKILL"), "{log}");
    assert!(
        pids.iter().all(|p| !process_alive(*p)),
        "still running: {instance}"
    );
}

/// `hack/demo.sh` (the README's main job) with this build's binary.
fn run_demo(bin: &Path) -> (std::process::Output, String) {
    let out = Command::new(crate::support::cluster::repo_root().join("hack/demo.sh"))
        .env("DIGICERT_OPERATOR_BIN", bin)
        .env(
            "CERTCENTRAL_SIM_BIN",
            crate::support::process::simulator_binary(),
        )
        .stdin(std::process::Stdio::null())
        .output()
        .expect("hack/demo.sh runs");
    let text = format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

/// The demo picks free ports: it gets both example certificates while port 8080 (the
/// operator's default address) is taken.
#[test]
fn the_demo_gets_its_certificates_while_port_8080_is_taken() {
    if use_existing_cluster() {
        skip(
            "the_demo_gets_its_certificates_while_port_8080_is_taken",
            "the demo starts a control plane of its own, not used with USE_EXISTING_CLUSTER",
        );
        return;
    }
    let _taken = match std::net::TcpListener::bind("0.0.0.0:8080") {
        Ok(listener) => Some(listener),
        // Taken already: just as good.
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => None,
        Err(e) => panic!("port 8080: {e}"),
    };
    let (out, text) = run_demo(Path::new(crate::support::process::binary()));
    assert!(out.status.success(), "{text}");
    for part in [
        "ready in",
        "certificate in Secret demo/example-com-tls",
        "certificate in Secret demo/shop-example-org-tls",
        "subject=CN = example.com",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
    assert!(!text.contains("127.0.0.1:8080/metrics"), "{text}");
}

/// An operator that exits at once (here: its address is taken) stops the demo at once,
/// with the operator's own message, instead of a wait for Ready that runs out.
#[test]
fn the_demo_stops_at_once_with_the_message_of_an_operator_that_exited() {
    if use_existing_cluster() {
        skip(
            "the_demo_stops_at_once_with_the_message_of_an_operator_that_exited",
            "the demo starts a control plane of its own, not used with USE_EXISTING_CLUSTER",
        );
        return;
    }
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    // The operator binary, but `run` is told to listen on the taken port.
    let wrapper = dir.path().join("digicert-operator");
    std::fs::write(
        &wrapper,
        format!(
            "#!/usr/bin/env bash\nargs=()\nfor a in \"$@\"; do\n  [[ $1 == run && $a == 127.0.0.1:0 ]] && a=127.0.0.1:{port}\n  args+=(\"$a\")\ndone\nexec {} \"${{args[@]}}\"\n",
            crate::support::process::binary()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let started = Instant::now();
    let (out, text) = run_demo(&wrapper);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("the operator exited"), "{text}");
    assert!(
        text.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "the operator's message: {text}"
    );
    assert!(!text.contains("kubectl wait"), "{text}");
    // Far less than the demo's 120 s wait for Ready.
    assert!(started.elapsed() < Duration::from_secs(90), "{text}");
}
