//! A real Kubernetes API server for end-to-end tests, envtest-style.
//!
//! Which cluster a test gets, in this order:
//! 1. `USE_EXISTING_CLUSTER=true`: the cluster of `KUBECONFIG` (or `~/.kube/config`).
//! 2. `DIGICERT_TEST_KUBECONFIG`: a control plane the test command started once for
//!    the whole run (`hack/test.sh` does this).
//! 3. Otherwise a control plane of its own, started by `hack/control-plane/start.sh`
//!    and stopped by its watchdog when this test process exits.
//!
//! Every test gets its own namespace, deleted (without waiting) when it is dropped.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

pub fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// Whether the suite runs against a cluster it did not start.
pub fn use_existing_cluster() -> bool {
    std::env::var("USE_EXISTING_CLUSTER").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Says why a test did not run: in its output, and in the file named by
/// `DIGICERT_TEST_SKIP_LOG`, which the test command prints at the end of the run
/// (the runner hides the output of tests that pass).
pub fn skip(test: &str, why: &str) {
    use std::io::Write;
    let line = format!("SKIPPED {test}: {why}");
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("DIGICERT_TEST_SKIP_LOG")
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

static ASSETS: OnceLock<Option<PathBuf>> = OnceLock::new();

/// The directory with kube-apiserver, etcd and kubectl: `KUBEBUILDER_ASSETS`, or the
/// envtest bundle beside the checkout (`hack/control-plane/assets.sh` finds it).
pub fn assets_dir() -> Option<PathBuf> {
    ASSETS
        .get_or_init(|| {
            let out = Command::new(repo_root().join("hack/control-plane/assets.sh"))
                .stderr(std::process::Stdio::inherit())
                .output()
                .ok()?;
            let text = String::from_utf8(out.stdout).ok()?;
            let dir = PathBuf::from(text.lines().last()?.trim());
            (out.status.success() && dir.is_dir()).then_some(dir)
        })
        .clone()
}

/// kubectl of the test binaries (the server's version); with an existing cluster and
/// no test binaries, the one on PATH.
pub fn kubectl_bin() -> PathBuf {
    match assets_dir() {
        Some(dir) => dir.join("kubectl"),
        None if use_existing_cluster() => PathBuf::from("kubectl"),
        None => panic!("no Kubernetes test binaries: see hack/control-plane/assets.sh"),
    }
}

/// `kubectl` with `kubeconfig`.
pub fn kubectl_command(kubeconfig: &OsStr) -> Command {
    let mut cmd = Command::new(kubectl_bin());
    // Paths such as deploy/… are the repository's; tests run in the crate's directory.
    cmd.env("KUBECONFIG", kubeconfig).current_dir(repo_root());
    cmd
}

/// The status of condition `type_` in `object.status.conditions`; `None` while the
/// object has no such condition, also while `conditions` is still `null` (as on a CRD
/// just created, before the API server's controllers write its status).
pub fn condition_status<'a>(object: &'a serde_json::Value, type_: &str) -> Option<&'a str> {
    object
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)?["status"]
        .as_str()
}

/// Waits until `kubectl get OBJECT` (e.g. `crd/NAME`) shows condition `type_`=True,
/// polling with the commands `kubectl` makes. Not `kubectl wait --for=condition=`:
/// that fails at once on `.status.conditions: null`, which a CRD has just after its
/// creation, instead of waiting.
pub fn wait_condition_true(
    kubectl: impl Fn() -> Command,
    object: &str,
    type_: &str,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let out = kubectl()
            .args(["get", object, "-o", "json"])
            .output()
            .map_err(|e| format!("kubectl: {e}"))?;
        let seen = match serde_json::from_slice::<serde_json::Value>(&out.stdout) {
            Ok(o) if out.status.success() => {
                if condition_status(&o, type_) == Some("True") {
                    return Ok(());
                }
                format!("status {}", o["status"])
            }
            _ => String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "{object} is not {type_}=True after {timeout:?}: {seen}"
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits (at most a minute) until each CRD is Established; panics otherwise.
pub fn wait_established(kubeconfig: &OsStr, crds: &[&str]) {
    for crd in crds {
        let object = format!("crd/{}", crd.trim_start_matches("crd/"));
        wait_condition_true(
            || kubectl_command(kubeconfig),
            &object,
            "Established",
            Duration::from_secs(60),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
}

/// PATH with the test binaries' directory first, for commands run as a user would
/// (README snippets, kubectl plugins).
pub fn path_with_assets() -> OsString {
    let mut dirs: Vec<PathBuf> = assets_dir().into_iter().collect();
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).expect("PATH entries join")
}

static OWN_CONTROL_PLANE: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// Starts a control plane owned by this process (once per process).
fn own_control_plane() -> Result<PathBuf, String> {
    OWN_CONTROL_PLANE
        .get_or_init(|| {
            let dir = std::env::temp_dir().join(format!(
                "digicert-operator-cp-{}-{}",
                std::process::id(),
                rand::random::<u32>()
            ));
            eprintln!(
                "starting a control plane of this test's own in {}",
                dir.display()
            );
            let out = Command::new(repo_root().join("hack/control-plane/start.sh"))
                .arg(&dir)
                .arg("--owner-pid")
                .arg(std::process::id().to_string())
                .stderr(std::process::Stdio::inherit())
                .output()
                .map_err(|e| format!("cannot run start.sh: {e}"))?;
            if !out.status.success() {
                return Err(format!("start.sh failed: {}", out.status));
            }
            Ok(dir.join("kubeconfig"))
        })
        .clone()
}

/// The value to pass as `KUBECONFIG` to kubectl, the operator and Helm.
/// A kubeconfig's current context and that context's cluster.
pub fn current_cluster(kc: &Kubeconfig) -> (kube::config::Context, kube::config::Cluster) {
    let current = kc.current_context.clone().expect("a current context");
    let context = kc
        .contexts
        .iter()
        .find(|c| c.name == current)
        .and_then(|c| c.context.clone())
        .expect("the current context");
    let cluster = kc
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .and_then(|c| c.cluster.clone())
        .expect("the context's cluster");
    (context, cluster)
}

pub fn kubeconfig_env() -> OsString {
    if use_existing_cluster() {
        return std::env::var_os("KUBECONFIG").unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            Path::new(&home).join(".kube/config").into_os_string()
        });
    }
    if let Some(path) = std::env::var_os("DIGICERT_TEST_KUBECONFIG") {
        return path;
    }
    own_control_plane()
        .unwrap_or_else(|e| panic!("no control plane: {e}"))
        .into_os_string()
}

pub async fn client_for(kubeconfig: &OsString) -> kube::Client {
    digicert_operator::tls::install_crypto_provider();
    let paths: Vec<PathBuf> = std::env::split_paths(kubeconfig).collect();
    let mut merged: Option<Kubeconfig> = None;
    for p in paths.iter().filter(|p| p.exists()) {
        let kc = Kubeconfig::read_from(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        merged = Some(match merged {
            None => kc,
            Some(m) => m.merge(kc).expect("kubeconfigs merge"),
        });
    }
    let kc = merged.unwrap_or_else(|| panic!("no kubeconfig at {kubeconfig:?}"));
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig is usable");
    kube::Client::try_from(config).expect("client builds")
}

/// A cluster connection and a namespace of the test's own.
pub struct TestCluster {
    pub client: kube::Client,
    pub namespace: String,
    pub kubeconfig: OsString,
    pub server_minor: u32,
}

impl TestCluster {
    /// Connects and creates a namespace named after `test`.
    pub async fn new(test: &str) -> Self {
        let kubeconfig = tokio::task::spawn_blocking(kubeconfig_env)
            .await
            .expect("control plane set-up");
        Self::connect(test, kubeconfig).await
    }

    /// The same on the cluster of `kubeconfig` (e.g. an OwnControlPlane's).
    pub async fn connect(test: &str, kubeconfig: OsString) -> Self {
        let client = client_for(&kubeconfig).await;
        let info = client
            .apiserver_version()
            .await
            .expect("the API server answers");
        let server_minor = info
            .minor
            .trim_end_matches('+')
            .parse()
            .expect("numeric minor version");
        let slug: String = test
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(40)
            .collect();
        let namespace = format!(
            "e2e-{}-{:06x}",
            slug.trim_matches('-'),
            rand::random::<u32>() & 0xff_ffff
        );
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(namespace.clone()),
                labels: Some(
                    [("digicert-operator.dev/e2e".to_string(), "true".to_string())].into(),
                ),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("namespace created");
        TestCluster {
            client,
            namespace,
            kubeconfig,
            server_minor,
        }
    }

    /// Creates a second namespace, `<namespace>-<suffix>`, and returns its name.
    pub async fn other_namespace(&self, suffix: &str) -> String {
        let name = format!("{}-{suffix}", self.namespace);
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(
                    [("digicert-operator.dev/e2e".to_string(), "true".to_string())].into(),
                ),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(self.client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("namespace created");
        name
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The cluster's server and CA, without the admin's credentials.
    pub async fn config_without_credentials(&self) -> kube::Config {
        let path = std::env::split_paths(&self.kubeconfig)
            .find(|p| p.exists())
            .expect("a kubeconfig file");
        let kc = Kubeconfig::read_from(path).expect("kubeconfig");
        let mut config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .expect("kubeconfig is usable");
        config.auth_info = kube::config::AuthInfo::default();
        config
    }

    /// `kubectl` with this cluster's kubeconfig and the test namespace.
    pub fn kubectl(&self) -> Command {
        let mut cmd = kubectl_command(&self.kubeconfig);
        cmd.arg("--namespace").arg(&self.namespace);
        cmd
    }

    /// Runs kubectl with `args` and stdin `input`; returns stdout, panics with stderr.
    pub fn kubectl_ok(&self, args: &[&str], input: Option<&str>) -> String {
        let out = self.kubectl_run(args, input);
        assert!(
            out.status.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn kubectl_run(&self, args: &[&str], input: Option<&str>) -> std::process::Output {
        use std::io::Write;
        let mut child = self
            .kubectl()
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        let mut stdin = child.stdin.take().expect("stdin");
        if let Some(text) = input {
            stdin.write_all(text.as_bytes()).expect("kubectl stdin");
        }
        drop(stdin);
        child.wait_with_output().expect("kubectl finishes")
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        // Without a controller-manager the namespace stays Terminating; that is harmless.
        let _ = kubectl_command(&self.kubeconfig)
            .args(["delete", "namespace", &self.namespace, "--wait=false"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// The Python of the Helm venv (made by `hack/helm/venv.sh` if needed).
pub fn helm_python() -> PathBuf {
    if let Some(p) = std::env::var_os("DIGICERT_TEST_PYTHON") {
        return p.into();
    }
    let out = Command::new(repo_root().join("hack/helm/venv.sh"))
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("venv.sh runs");
    assert!(out.status.success(), "venv.sh failed");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    PathBuf::from(text.lines().last().expect("a path").trim())
}

/// `hack/helm/helm.py ARGS` with this cluster's kubeconfig.
pub fn helm(cluster: &TestCluster, args: &[&str]) -> std::process::Output {
    Command::new(helm_python())
        .arg(repo_root().join("hack/helm/helm.py"))
        .args(args)
        .env("KUBECONFIG", &cluster.kubeconfig)
        .output()
        .expect("helm.py runs")
}

/// A control plane of a test's own, with extra kube-apiserver flags: for tests that
/// install into fixed names cluster-wide, or need a server configured otherwise.
/// Stopped when dropped (and by its watchdog if the test process dies).
pub struct OwnControlPlane {
    dir: tempfile::TempDir,
    pub kubeconfig: OsString,
    pub client: kube::Client,
}

impl OwnControlPlane {
    /// None (the test is skipped, saying `why`) against an existing cluster, where the
    /// suite starts no servers.
    pub async fn start(test: &str, why: &str, apiserver_args: &str) -> Option<OwnControlPlane> {
        if use_existing_cluster() {
            skip(
                test,
                &format!("{why}: needs a control plane of its own, not USE_EXISTING_CLUSTER"),
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let args = apiserver_args.to_string();
        let out = tokio::task::spawn_blocking(move || {
            Command::new(repo_root().join("hack/control-plane/start.sh"))
                .arg(&path)
                .args(["--owner-pid", &std::process::id().to_string()])
                .env("DIGICERT_CP_APISERVER_ARGS", args)
                .output()
                .expect("start.sh runs")
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "start.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let kubeconfig = dir.path().join("kubeconfig").into_os_string();
        let client = client_for(&kubeconfig).await;
        Some(OwnControlPlane {
            dir,
            kubeconfig,
            client,
        })
    }
}

impl Drop for OwnControlPlane {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("hack/control-plane/stop.sh"))
            .arg(self.dir.path())
            .output();
    }
}
