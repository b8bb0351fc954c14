//! The kubectl plugin, `kubectl-digicert`, against the API server: its help, kubectl's
//! flags (kubeconfig, context, namespace, -o), renewals by name, label and --all,
//! approve and deny carried out by the operator at DigiCert, errors, completion.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::config::{Context, Kubeconfig, NamedCluster, NamedContext};
use kube::{Api, ResourceExt};
use serde_json::Value;

use crate::support::env::{OperatorEnv, condition};
use digicert_operator::certcentral::Operation;
use digicert_operator::crd::{
    APPROVE_ANNOTATION, DENY_ANNOTATION, DENY_REASON_ANNOTATION, DigicertOrder, RENEW_ANNOTATION,
};

fn plugin_binary() -> &'static str {
    env!("CARGO_BIN_EXE_kubectl-digicert")
}

struct Ran {
    ok: bool,
    code: Option<i32>,
    out: String,
    err: String,
}

/// `kubectl-digicert ARGS` with `KUBECONFIG` as given (`None`: unset).
fn run(kubeconfig: Option<&OsStr>, args: &[&str]) -> Ran {
    let mut cmd = std::process::Command::new(plugin_binary());
    cmd.args(args).env_remove("KUBECONFIG");
    if let Some(k) = kubeconfig {
        cmd.env("KUBECONFIG", k);
    }
    // No home kubeconfig to fall back on: what is used is what the test says.
    cmd.env("HOME", "/nonexistent");
    let out = cmd.output().expect("the plugin runs");
    Ran {
        ok: out.status.success(),
        code: out.status.code(),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(ran: Ran) -> String {
    assert!(ran.ok, "failed ({:?}): {}{}", ran.code, ran.err, ran.out);
    ran.out
}

/// A failure says so on exactly one `error: …` line, and nothing on stdout.
fn fails(ran: Ran, says: &str) {
    assert!(!ran.ok, "succeeded: {}", ran.out);
    assert_ne!(ran.code, Some(0));
    let lines: Vec<&str> = ran.err.lines().collect();
    assert_eq!(lines.len(), 1, "not one line: {:?}", ran.err);
    assert!(lines[0].starts_with("error: "), "{:?}", ran.err);
    assert!(lines[0].contains(says), "{:?} lacks {says:?}", ran.err);
    assert!(ran.out.is_empty(), "{}", ran.out);
}

/// The subcommands a `--help` lists under `Commands:`.
fn listed_commands(help: &str) -> BTreeSet<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// A kubeconfig with the test cluster as context `good` (namespace `ns`) and a
/// context `bogus` on a port where nothing listens, the current one.
fn two_contexts(kubeconfig: &OsStr, ns: &str, dir: &Path) -> PathBuf {
    let mut merged: Option<Kubeconfig> = None;
    for path in std::env::split_paths(kubeconfig) {
        let kc = Kubeconfig::read_from(&path).expect("kubeconfig");
        merged = Some(match merged {
            Some(m) => m.merge(kc).expect("kubeconfigs merge"),
            None => kc,
        });
    }
    let mut kc = merged.expect("a kubeconfig");
    let (context, cluster) = crate::support::cluster::current_cluster(&kc);
    let mut bogus_cluster = cluster.clone();
    bogus_cluster.server = Some("https://127.0.0.1:9".into());
    kc.clusters.push(NamedCluster {
        name: "bogus".into(),
        cluster: Some(bogus_cluster),
        other: Default::default(),
    });
    kc.contexts.push(NamedContext {
        name: "good".into(),
        context: Some(Context {
            namespace: Some(ns.into()),
            ..context.clone()
        }),
        other: Default::default(),
    });
    kc.contexts.push(NamedContext {
        name: "bogus".into(),
        context: Some(Context {
            cluster: "bogus".into(),
            namespace: Some(ns.into()),
            ..context
        }),
        other: Default::default(),
    });
    kc.current_context = Some("bogus".into());
    let path = dir.join("kubeconfig");
    std::fs::write(&path, serde_yaml::to_string(&kc).unwrap()).unwrap();
    path
}

fn labelled_order(name: &str, order_id: u64, team: &str) -> String {
    format!(
        "apiVersion: digicert-operator.dev/v1alpha1\nkind: DigicertOrder\nmetadata:\n  name: {name}\n  labels:\n    team: {team}\nspec:\n  orderId: {order_id}\n  commonName: example.com\n  secretName: {name}-tls\n"
    )
}

async fn annotation(orders: &Api<DigicertOrder>, name: &str, key: &str) -> Option<String> {
    orders
        .get(name)
        .await
        .unwrap()
        .annotations()
        .get(key)
        .cloned()
}

fn names(list: &Value) -> BTreeSet<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_plugin_takes_kubectls_flags_and_selects_what_it_renews() {
    // No operator: what the plugin writes is what is looked at.
    let env = OperatorEnv::new("plugin-flags", vec![]).await;
    let ns = env.cluster.namespace.clone();
    env.apply(&labelled_order("web", 1001, "web"));
    env.apply(&labelled_order("api", 1002, "web"));
    env.apply(&labelled_order("db", 1003, "data"));
    let orders = env.orders();

    // Help lists the plugin's verbs only, also through kubectl.
    let plugin_verbs = set(&[
        "status",
        "renew",
        "cancel",
        "inspect",
        "allow-revocation",
        "approve",
        "deny",
        "completion",
        "help",
    ]);
    let help = ok(run(None, &["--help"]));
    assert_eq!(listed_commands(&help), plugin_verbs, "{help}");
    for flag in ["--kubeconfig", "--context", "--namespace"] {
        assert!(help.contains(flag), "{help}");
    }
    let mut path = std::ffi::OsString::from(Path::new(plugin_binary()).parent().unwrap());
    path.push(":");
    path.push(crate::support::cluster::path_with_assets());
    let out = crate::support::cluster::kubectl_command(&env.cluster.kubeconfig)
        .args(["digicert", "--help"])
        .env("PATH", path)
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(listed_commands(&help), plugin_verbs, "{help}");
    assert!(help.contains("Usage: kubectl digicert"), "{help}");

    // --kubeconfig and --context choose the cluster; the context's namespace is used.
    let dir = tempfile::tempdir().unwrap();
    let file = two_contexts(&env.cluster.kubeconfig, &ns, dir.path());
    let file_arg = file.to_str().unwrap();
    fails(
        run(None, &["--kubeconfig", file_arg, "status"]),
        "127.0.0.1:9",
    );
    let table = ok(run(
        None,
        &["--kubeconfig", file_arg, "--context", "good", "status"],
    ));
    let rows: BTreeSet<String> = table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    assert_eq!(rows, set(&["web", "api", "db"]), "{table}");
    assert!(table.starts_with("NAME"), "{table}");
    // KUBECONFIG is honoured, and flags may follow the verb.
    let k = Some(file.as_os_str());
    ok(run(k, &["status", "--context", "good"]));
    fails(run(k, &["status"]), "127.0.0.1:9");
    fails(run(k, &["status", "--context", "nowhere"]), "nowhere");
    // -n overrides the context's namespace.
    let other = ok(run(
        k,
        &["status", "--context", "good", "-n", "plugin-none"],
    ));
    assert!(other.contains("No DigicertOrders found"), "{other}");

    // -o json and yaml are the objects, a List as kubectl prints it.
    let good = |args: &[&str]| {
        let mut all = vec!["--context", "good"];
        all.extend_from_slice(args);
        ok(run(k, &all))
    };
    let list: Value = serde_json::from_str(&good(&["status", "-o", "json"])).unwrap();
    assert_eq!(list["kind"], "List", "{list:#}");
    assert_eq!(list["apiVersion"], "v1");
    assert_eq!(names(&list), set(&["web", "api", "db"]), "{list:#}");
    for item in list["items"].as_array().unwrap() {
        assert_eq!(item["kind"], "DigicertOrder", "{item:#}");
        assert_eq!(item["apiVersion"], "digicert-operator.dev/v1alpha1");
        assert!(item["spec"]["orderId"].is_u64(), "{item:#}");
        assert!(item["metadata"].get("managedFields").is_none(), "{item:#}");
    }
    let yaml: Value =
        serde_yaml::from_str(&good(&["status", "-o", "yaml", "-l", "team=web"])).expect("YAML");
    assert_eq!(yaml["kind"], "List");
    assert_eq!(names(&yaml), set(&["web", "api"]), "{yaml:#}");
    let one: Value = serde_yaml::from_str(&good(&["status", "db", "-o", "yaml"])).unwrap();
    assert_eq!(one["kind"], "DigicertOrder", "{one:#}");
    assert_eq!(one["metadata"]["name"], "db");
    assert_eq!(one["metadata"]["labels"]["team"], "data");
    assert_eq!(one["spec"]["orderId"], 1003);
    let wide = good(&["status", "-o", "wide"]);
    let header = wide.lines().next().unwrap();
    for column in ["SECRET", "ACCOUNT", "CERTIFICATE", "LAST ERROR"] {
        assert!(header.contains(column), "{wide}");
    }
    assert!(
        wide.lines()
            .any(|l| l.starts_with("web ") && l.contains("web-tls")),
        "{wide}"
    );
    fails(
        run(k, &["--context", "good", "status", "-o", "table"]),
        "table",
    );

    // renew: a wrong name among good ones changes nothing; -l renews only what it
    // selects; a selector matching nothing is an error; --all renews every one.
    fails(
        run(k, &["--context", "good", "renew", "web", "nope"]),
        "nope not found",
    );
    assert_eq!(annotation(&orders, "web", RENEW_ANNOTATION).await, None);
    let said = good(&["renew", "-l", "team=data"]);
    assert!(
        said.contains(&format!("Requested a reissue of {ns}/db")),
        "{said}"
    );
    assert!(annotation(&orders, "db", RENEW_ANNOTATION).await.is_some());
    assert_eq!(annotation(&orders, "web", RENEW_ANNOTATION).await, None);
    assert_eq!(annotation(&orders, "api", RENEW_ANNOTATION).await, None);
    fails(
        run(k, &["--context", "good", "renew", "-l", "team=nobody"]),
        "nothing was changed",
    );
    fails(
        run(k, &["--context", "good", "renew", "-l", "team in (("]),
        "label selector \"team in ((\"",
    );
    assert_eq!(annotation(&orders, "web", RENEW_ANNOTATION).await, None);
    let said = good(&["renew", "--all"]);
    assert_eq!(said.matches("Requested a reissue of").count(), 3, "{said}");
    for name in ["web", "api", "db"] {
        assert!(annotation(&orders, name, RENEW_ANNOTATION).await.is_some());
    }
    ok(run(k, &["--context", "good", "renew", "api"]));

    // Errors: one line, a non-zero exit.
    fails(
        run(k, &["--context", "good", "inspect", "nope"]),
        "not found",
    );
    fails(
        run(k, &["--context", "good", "status", "nope"]),
        "nope not found",
    );
    fails(
        run(k, &["--context", "good", "cancel", "nope"]),
        "not found",
    );
    fails(
        run(k, &["--context", "good", "approve", "nope"]),
        "not found",
    );
    fails(run(k, &["--context", "good", "renew"]), "required");
    fails(run(k, &["--context", "good", "frobnicate"]), "frobnicate");
    fails(
        run(None, &["--kubeconfig", "/nonexistent/kubeconfig", "status"]),
        "/nonexistent/kubeconfig",
    );
    // Not waiting for approval: approve and deny change nothing.
    fails(
        run(k, &["--context", "good", "approve", "web"]),
        "nothing was changed",
    );
    fails(
        run(k, &["--context", "good", "deny", "web"]),
        "nothing was changed",
    );
    assert_eq!(annotation(&orders, "web", APPROVE_ANNOTATION).await, None);
    assert_eq!(annotation(&orders, "web", DENY_ANNOTATION).await, None);

    // kubectl's own completion asks kubectl_complete-digicert: verbs, and order names
    // from the cluster the flags choose.
    let bin = tempfile::tempdir().unwrap();
    for name in ["kubectl-digicert", "kubectl_complete-digicert"] {
        std::os::unix::fs::symlink(plugin_binary(), bin.path().join(name)).unwrap();
    }
    let mut path = std::ffi::OsString::from(bin.path());
    path.push(":");
    path.push(crate::support::cluster::path_with_assets());
    let complete = |args: &[&str]| {
        let out = crate::support::cluster::kubectl_command(file.as_os_str())
            .arg("__complete")
            .arg("digicert")
            .args(args)
            .env("PATH", &path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .take_while(|l| !l.starts_with(':'))
            .map(str::to_string)
            .collect::<BTreeSet<String>>()
    };
    assert_eq!(complete(&["ap"]), set(&["approve"]));
    assert_eq!(
        complete(&["--context", "good", "renew", ""]),
        set(&["web", "api", "db"])
    );
    assert_eq!(
        complete(&["--context", "good", "renew", "web", "a"]),
        set(&["api"])
    );
    assert_eq!(complete(&["status", "-o", "y"]), set(&["yaml"]));
    assert_eq!(complete(&["--context", "go"]), set(&["good"]));
    // The bogus context's cluster does not answer: no names, and no hang.
    assert_eq!(complete(&["renew", ""]), BTreeSet::new());

    // Shell completion that the shell accepts.
    let script = ok(run(None, &["completion", "bash"]));
    assert!(script.contains("kubectl-digicert"), "{script}");
    let script_file = dir.path().join("completion.bash");
    std::fs::write(&script_file, &script).unwrap();
    let checked = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script_file)
        .output()
        .expect("bash runs");
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let zsh = ok(run(None, &["completion", "zsh"]));
    assert!(zsh.starts_with("#compdef kubectl-digicert"), "{zsh}");
}

/// The request id status shows for the reissue in flight.
fn request_id(order: &DigicertOrder) -> u64 {
    order
        .status
        .as_ref()
        .and_then(|s| s.reissue.as_ref())
        .and_then(|r| r.request_id)
        .expect("a request id in status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approve_and_deny_are_carried_out_by_the_operator_at_digicert() {
    let approval = |id| {
        let mut s = crate::support::order(id);
        s.approval_required = true;
        s
    };
    let mut env = OperatorEnv::new(
        "plugin-approval",
        vec![approval(1001), approval(1002), approval(1003)],
    )
    .await;
    let ns = env.cluster.namespace.clone();
    // An account that does not allow approval: its orders' requests are not decided.
    let strict = format!("{ns}-strict");
    env.put_account(
        &strict,
        &env.sim.base_url(),
        Some(env.sim.ca_pem()),
        crate::support::env::API_KEY_SECRET,
        serde_json::json!({"namespaceSelector": {
            "matchLabels": {"kubernetes.io/metadata.name": ns}}}),
    )
    .await;
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml("accept", 1001, ""));
    env.apply(&OperatorEnv::order_yaml("refuse", 1002, ""));
    env.apply(&OperatorEnv::order_yaml(
        "strict",
        1003,
        &format!("  accountRef:\n    name: {strict}\n"),
    ));
    let k = Some(env.cluster.kubeconfig.as_os_str());
    let wait_approval = |name: &'static str| {
        env.wait_condition(
            name,
            "Issuing",
            "True",
            Some("NeedsApproval"),
            Duration::from_secs(60),
        )
    };
    let yes = wait_approval("accept").await;
    let no = wait_approval("refuse").await;
    let held = wait_approval("strict").await;
    let (yes_id, no_id) = (request_id(&yes), request_id(&no));
    // The operator approves nothing by itself (no spec.approveReissues).
    assert_eq!(
        env.sim
            .simulator()
            .calls()
            .total(Operation::UpdateRequestStatus),
        0
    );
    let table = ok(run(k, &["status", "-n", &ns]));
    assert!(table.contains("waiting for approval"), "{table}");

    // approve: the annotation names the request; the operator approves it.
    let said = ok(run(k, &["approve", "accept", "-n", &ns]));
    assert!(said.contains(&yes_id.to_string()), "{said}");
    let orders = env.orders();
    assert_eq!(
        annotation(&orders, "accept", APPROVE_ANNOTATION).await,
        Some(yes_id.to_string())
    );
    env.wait_ready("accept").await;
    env.verify_secret("accept-tls", &["example.com", "www.example.com"])
        .await;
    let record = env.sim.simulator().order_record(1001).unwrap();
    assert_eq!(record["requests"][0]["status"], "approved", "{record:#}");
    assert_eq!(record["requests"][0]["id"], yes_id, "{record:#}");

    // deny: the operator rejects it at DigiCert with the reason, and holds the spec.
    let said = ok(run(
        k,
        &["deny", "refuse", "-n", &ns, "--reason", "not this week"],
    ));
    assert!(said.contains(&no_id.to_string()), "{said}");
    assert_eq!(
        annotation(&orders, "refuse", DENY_ANNOTATION).await,
        Some(no_id.to_string())
    );
    assert_eq!(
        annotation(&orders, "refuse", DENY_REASON_ANNOTATION)
            .await
            .as_deref(),
        Some("not this week")
    );
    let o = env
        .wait_condition(
            "refuse",
            "Issuing",
            "False",
            Some("Denied"),
            Duration::from_secs(60),
        )
        .await;
    let message = &condition(&o, "Issuing").unwrap().message;
    assert!(message.contains("not this week"), "{message}");
    assert!(o.status.as_ref().unwrap().reissue.is_none(), "{o:?}");
    let record = env.sim.simulator().order_record(1002).unwrap();
    let request = &record["requests"][0];
    assert_eq!(request["status"], "rejected", "{record:#}");
    assert_eq!(request["id"], no_id, "{record:#}");
    assert!(request.to_string().contains("not this week"), "{record:#}");
    // No new reissue starts to wait for the same decision.
    let reissues = env.sim.simulator().calls().total(Operation::Reissue);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        env.sim.simulator().calls().total(Operation::Reissue),
        reissues
    );
    assert_eq!(
        env.sim
            .simulator()
            .calls()
            .total(Operation::UpdateRequestStatus),
        2
    );

    // Nothing waits any more: approve and deny say so and change nothing.
    fails(
        run(k, &["approve", "accept", "-n", &ns]),
        "nothing was changed",
    );
    fails(
        run(k, &["deny", "refuse", "-n", &ns]),
        "nothing was changed",
    );
    assert_eq!(
        annotation(&orders, "refuse", APPROVE_ANNOTATION).await,
        None
    );

    // The account does not allow approval: the annotation is written, the operator
    // says why it does not act, and DigiCert is not asked.
    let held_id = request_id(&held);
    ok(run(k, &["approve", "strict", "-n", &ns]));
    let o = env
        .wait_for(
            "strict",
            "the approve annotation refused",
            Duration::from_secs(30),
            |o| {
                condition(o, "Issuing").is_some_and(|c| {
                    c.reason == "NeedsApproval" && c.message.contains(APPROVE_ANNOTATION)
                })
            },
        )
        .await;
    let message = &condition(&o, "Issuing").unwrap().message;
    assert!(
        message.contains("allowApproval") && message.contains(&strict),
        "{message}"
    );
    ok(run(k, &["deny", "strict", "-n", &ns]));
    env.wait_for(
        "strict",
        "the deny annotation refused",
        Duration::from_secs(30),
        |o| {
            condition(o, "Issuing")
                .is_some_and(|c| c.reason == "NeedsApproval" && c.message.contains(DENY_ANNOTATION))
        },
    )
    .await;
    let record = env.sim.simulator().order_record(1003).unwrap();
    assert_eq!(record["requests"][0]["status"], "pending", "{record:#}");
    assert_eq!(record["requests"][0]["id"], held_id, "{record:#}");
    assert_eq!(
        env.sim
            .simulator()
            .calls()
            .total(Operation::UpdateRequestStatus),
        2
    );
}

/// The repository's root (tests run in the crate's directory).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_krew_package_is_a_manifest_whose_archive_holds_a_working_plugin() {
    let out = tempfile::tempdir().unwrap();
    let made = std::process::Command::new("bash")
        .arg(repo_root().join("hack/krew/package.sh"))
        .args(["v1.2.3", "https://example.org/releases/v1.2.3/"])
        .arg(out.path())
        .arg(plugin_binary())
        .arg("linux/amd64")
        .output()
        .expect("bash runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let text = std::fs::read_to_string(out.path().join("digicert.yaml")).unwrap();
    let manifest: Value = serde_yaml::from_str(&text).expect("YAML");
    assert_eq!(
        manifest["apiVersion"], "krew.googlecontainertools.github.com/v1alpha2",
        "{text}"
    );
    assert_eq!(manifest["kind"], "Plugin");
    assert_eq!(manifest["metadata"]["name"], "digicert");
    assert_eq!(manifest["spec"]["version"], "v1.2.3");
    assert!(manifest["spec"]["shortDescription"].is_string());
    let platforms = manifest["spec"]["platforms"].as_array().expect("platforms");
    assert_eq!(platforms.len(), 1, "{text}");
    let p = &platforms[0];
    assert_eq!(p["selector"]["matchLabels"]["os"], "linux");
    assert_eq!(p["selector"]["matchLabels"]["arch"], "amd64");
    assert_eq!(
        p["uri"],
        "https://example.org/releases/v1.2.3/kubectl-digicert_linux_amd64.tar.gz"
    );
    assert_eq!(p["bin"], "kubectl-digicert");
    let archive = out.path().join("kubectl-digicert_linux_amd64.tar.gz");
    let sha = std::process::Command::new("sha256sum")
        .arg(&archive)
        .output()
        .unwrap();
    let sha = String::from_utf8_lossy(&sha.stdout);
    assert_eq!(
        p["sha256"].as_str(),
        sha.split_whitespace().next(),
        "{text}"
    );

    // What krew unpacks is the plugin, and it runs.
    let unpacked = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(unpacked.path())
        .status()
        .unwrap();
    assert!(status.success());
    for file in p["files"].as_array().unwrap() {
        let from = file["from"].as_str().unwrap();
        assert!(
            unpacked.path().join(from).exists(),
            "{from} not in the archive"
        );
    }
    let version = std::process::Command::new(unpacked.path().join("kubectl-digicert"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(version.status.success());
    assert!(
        String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")),
        "{version:?}"
    );

    // A version krew would refuse is refused here.
    let refused = std::process::Command::new("bash")
        .arg(repo_root().join("hack/krew/package.sh"))
        .args([
            "1.2",
            "https://example.org",
            "x",
            plugin_binary(),
            "linux/amd64",
        ])
        .current_dir(out.path())
        .output()
        .unwrap();
    assert!(!refused.status.success());
}
