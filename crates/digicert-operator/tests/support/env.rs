//! Everything an end-to-end test of the operator needs: the API server (with the CRD
//! installed and a namespace of the test's own), the CertCentral simulator over HTTPS,
//! an API key Secret and a DigicertAccount `e2e-<namespace>` for it that selects only
//! that namespace (the operator's default account), and the operator binary as a
//! subprocess watching only that namespace (which is also its own namespace).

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use certcentral_sim::{self, ApiKeyConfig, OrderSeed, RunningSimulator, SeedFile, SimulatorConfig};
use digicert_operator::crd::{DigicertAccount, DigicertOrder};
use digicert_operator::keys;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};

use super::cluster::TestCluster;
use super::process::OperatorProcess;

pub const API_KEY: &str = "e2e-api-key-0123456789";
pub const API_KEY_SECRET: &str = "digicert-api-key";

pub struct OperatorEnv {
    pub cluster: TestCluster,
    pub sim: RunningSimulator,
    pub ca_file: tempfile::NamedTempFile,
    pub operator: Option<OperatorProcess>,
    /// Extra flags for every operator start.
    pub operator_args: Vec<String>,
    /// LOG_LEVEL of the operator (benchmarks at scale log less).
    pub log_level: String,
}

/// Installs the CRDs from `crds/` (idempotent; tests share the cluster).
pub fn install_crd(cluster: &TestCluster) {
    let crds = super::cluster::repo_root().join("crds");
    let crds = crds.to_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // Tests share the server and install the CRDs side by side: a conflict is
        // retried.
        let out = cluster.kubectl_run(&["apply", "-f", crds], None);
        if out.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "installing the CRDs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    super::cluster::wait_established(
        &cluster.kubeconfig,
        &[
            "digicertorders.digicert-operator.dev",
            "digicertaccounts.digicert-operator.dev",
            "digicertissuers.digicert-operator.dev",
            "digicertclusterissuers.digicert-operator.dev",
        ],
    );
}

impl OperatorEnv {
    /// A cluster namespace, the CRD, a simulator with `orders` (rate limits off), and
    /// the API key Secret. The operator is not started yet.
    pub async fn new(test: &str, orders: Vec<OrderSeed>) -> Self {
        Self::with_simulator(test, Self::simulator_config(orders)).await
    }

    /// A simulator with `orders`, the test API key and no rate limits.
    pub fn simulator_config(orders: Vec<OrderSeed>) -> SimulatorConfig {
        SimulatorConfig {
            seed: SeedFile {
                api_keys: vec![ApiKeyConfig::new(API_KEY)],
                orders,
                rate_limits: None,
                ..SeedFile::default()
            },
            rate_limits: Vec::new(),
            ..SimulatorConfig::default()
        }
    }

    pub async fn with_simulator(test: &str, config: SimulatorConfig) -> Self {
        Self::on_cluster(TestCluster::new(test).await, config).await
    }

    /// The same on a given cluster (e.g. one of the test's own).
    pub async fn on_cluster(cluster: TestCluster, config: SimulatorConfig) -> Self {
        install_crd(&cluster);
        let sim = certcentral_sim::start(config)
            .await
            .expect("simulator starts");
        let ca_file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(ca_file.path(), sim.ca_pem()).unwrap();
        let env = OperatorEnv {
            cluster,
            sim,
            ca_file,
            operator: None,
            operator_args: Vec::new(),
            log_level: "info,digicert_operator=debug".into(),
        };
        env.put_api_key(API_KEY_SECRET, API_KEY).await;
        let selector = serde_json::json!({
            "matchLabels": {"kubernetes.io/metadata.name": env.cluster.namespace}
        });
        env.put_account(
            &env.account_name(),
            &env.sim.base_url(),
            Some(env.sim.ca_pem()),
            API_KEY_SECRET,
            serde_json::json!({
                "namespaceSelector": selector,
                "allowApproval": true,
                "allowOrderCancel": true,
            }),
        )
        .await;
        env
    }

    /// The test's default account: `e2e-<namespace>`.
    pub fn account_name(&self) -> String {
        format!("e2e-{}", self.cluster.namespace)
    }

    /// Creates or replaces (server-side apply) a DigicertAccount `name` for `url`
    /// trusting `ca`, whose key is `key_secret` in the test namespace (the operator's),
    /// with `extra` spec fields (`namespaceSelector` at least). Deleted when the
    /// environment goes.
    pub async fn put_account(
        &self,
        name: &str,
        url: &str,
        ca: Option<&str>,
        key_secret: &str,
        extra: serde_json::Value,
    ) {
        // Served by this test's operator only (accounts are cluster-wide; tests
        // share the server).
        let mut spec = serde_json::json!({
            "certcentral": {"url": url},
            "apiKeySecretRef": {"name": key_secret},
            "operatorNamespace": self.cluster.namespace,
        });
        if let Some(ca) = ca {
            spec["certcentral"]["caBundle"] = ca.into();
        }
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let account = serde_json::json!({
            "apiVersion": "digicert-operator.dev/v1alpha1",
            "kind": "DigicertAccount",
            "metadata": {
                "name": name,
                "labels": {"digicert-operator.dev/e2e-namespace": self.cluster.namespace},
            },
            "spec": spec,
        });
        self.accounts()
            .patch(
                name,
                &PatchParams::apply("e2e").force(),
                &Patch::Apply(&account),
            )
            .await
            .unwrap_or_else(|e| panic!("DigicertAccount {name}: {e}"));
    }

    pub fn accounts(&self) -> Api<DigicertAccount> {
        Api::all(self.cluster.client.clone())
    }

    /// Creates or replaces a Secret with `api-key: key` in the test namespace.
    pub async fn put_api_key(&self, name: &str, key: &str) {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            string_data: Some([("api-key".to_string(), key.to_string())].into()),
            ..Secret::default()
        };
        let api: Api<Secret> = self.cluster.api();
        if api.get_opt(name).await.unwrap().is_some() {
            api.replace(name, &PostParams::default(), &secret)
                .await
                .unwrap();
        } else {
            api.create(&PostParams::default(), &secret).await.unwrap();
        }
    }

    /// The flags the operator is started with: this simulator, this namespace.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "run".to_string(),
            "--certcentral-url".into(),
            self.sim.base_url(),
            "--ca-bundle".into(),
            self.ca_file.path().display().to_string(),
            "--namespace".into(),
            self.cluster.namespace.clone(),
            "--default-account".into(),
            self.account_name(),
            // Refused and waiting orders are looked at again soon.
            "--access-recheck".into(),
            "2s".into(),
            "--watch-namespace".into(),
            self.cluster.namespace.clone(),
            // Tests run side by side: every operator gets a free port.
            "--health-addr".into(),
            "127.0.0.1:0".into(),
        ];
        args.extend(self.operator_args.iter().cloned());
        args
    }

    /// Starts (or restarts) the operator.
    pub fn start_operator(&mut self) {
        self.stop_operator();
        let args = self.args();
        let env = [
            ("KUBECONFIG", self.cluster.kubeconfig.as_os_str()),
            ("LOG_LEVEL", OsStr::new(&self.log_level)),
        ];
        self.operator = Some(OperatorProcess::start(&args, &env));
    }

    /// SIGKILL: the operator dies wherever it is.
    pub fn kill_operator(&mut self) {
        if let Some(mut p) = self.operator.take() {
            p.kill();
        }
    }

    pub fn stop_operator(&mut self) {
        if let Some(mut p) = self.operator.take() {
            p.terminate(Duration::from_secs(10));
        }
    }

    /// The operator's HTTP endpoint (health, readiness, metrics), from its log.
    pub fn http_base(&self) -> String {
        format!("http://{}", self.logged_addr("serving /healthz"))
    }

    /// The `addr=` of the operator's first log line containing `message` (a listener
    /// on port 0 says where it listens).
    pub fn logged_addr(&self, message: &str) -> String {
        let p = self.operator.as_ref().expect("operator running");
        p.wait_for_log(message, Duration::from_secs(30));
        let logs = p.logs();
        let line = logs
            .lines()
            .find(|l| l.contains(message))
            .unwrap_or_else(|| panic!("no line with {message:?}"));
        line.split("addr=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .expect("addr=... in the line")
            .to_string()
    }

    pub fn operator_logs(&self) -> String {
        self.operator.as_ref().map(|p| p.logs()).unwrap_or_default()
    }

    pub fn orders(&self) -> Api<DigicertOrder> {
        self.cluster.api()
    }

    pub fn secrets(&self) -> Api<Secret> {
        self.cluster.api()
    }

    /// `kubectl apply -f -` of a manifest into the test namespace.
    pub fn apply(&self, yaml: &str) {
        self.cluster.kubectl_ok(&["apply", "-f", "-"], Some(yaml));
    }

    /// A DigicertOrder manifest for `order_id` with extra spec lines (YAML, indented
    /// by two spaces).
    pub fn order_yaml(name: &str, order_id: u64, extra_spec: &str) -> String {
        format!(
            "apiVersion: digicert-operator.dev/v1alpha1\nkind: DigicertOrder\nmetadata:\n  name: {name}\nspec:\n  orderId: {order_id}\n  commonName: example.com\n  dnsNames: [www.example.com]\n  secretName: {name}-tls\n{extra_spec}"
        )
    }

    /// `wait_for` for a DigicertOrder in another namespace `ns`.
    pub async fn wait_in(
        &self,
        ns: &str,
        name: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&DigicertOrder) -> bool,
    ) -> DigicertOrder {
        let api: Api<DigicertOrder> = Api::namespaced(self.cluster.client.clone(), ns);
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(o) = api.get_opt(name).await.unwrap()
                && check(&o)
            {
                return o;
            }
            if Instant::now() >= deadline {
                let o = api.get_opt(name).await.unwrap();
                panic!(
                    "timed out waiting for {what} on {ns}/{name}\nstatus: {}\n--- operator log ---\n{}",
                    serde_json::to_string_pretty(&o.and_then(|o| o.status)).unwrap(),
                    self.operator_logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `check` holds for the DigicertOrder; panics with its status and the
    /// operator log otherwise.
    pub async fn wait_for(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&DigicertOrder) -> bool,
    ) -> DigicertOrder {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(o) = self.orders().get_opt(name).await.unwrap()
                && check(&o)
            {
                return o;
            }
            if Instant::now() >= deadline {
                let o = self.orders().get_opt(name).await.unwrap();
                panic!(
                    "timed out waiting for {what} on {name}\nstatus: {}\n--- operator log ---\n{}",
                    serde_json::to_string_pretty(&o.and_then(|o| o.status)).unwrap(),
                    self.operator_logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn wait_condition(
        &self,
        name: &str,
        type_: &str,
        status: &str,
        reason: Option<&str>,
        timeout: Duration,
    ) -> DigicertOrder {
        self.wait_for(
            name,
            &format!("{type_}={status} {reason:?}"),
            timeout,
            |o| {
                condition(o, type_)
                    .is_some_and(|c| c.status == status && reason.is_none_or(|r| c.reason == r))
            },
        )
        .await
    }

    /// Asserts that `check` holds for the DigicertOrder during all of `period`.
    pub async fn holds_for(
        &self,
        name: &str,
        what: &str,
        period: Duration,
        check: impl Fn(&DigicertOrder) -> bool,
    ) {
        let end = Instant::now() + period;
        while Instant::now() < end {
            let o = self.orders().get(name).await.unwrap();
            assert!(
                check(&o),
                "{what} no longer holds for {name}\nstatus: {}",
                serde_json::to_string_pretty(&o.status).unwrap()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The times, later than `since`, at which the operator read the DigicertOrder's
    /// order at DigiCert (`status.lastOrderCheck`) during the next `period`: proof that
    /// it kept looking during a window in which a test expects nothing to happen.
    pub async fn order_checks_during(
        &self,
        name: &str,
        since: time::OffsetDateTime,
        period: Duration,
    ) -> Vec<time::OffsetDateTime> {
        let ns = self.cluster.namespace.clone();
        self.order_checks_during_in(&ns, name, since, period).await
    }

    /// `order_checks_during` for a DigicertOrder in another namespace `ns`.
    pub async fn order_checks_during_in(
        &self,
        ns: &str,
        name: &str,
        since: time::OffsetDateTime,
        period: Duration,
    ) -> Vec<time::OffsetDateTime> {
        let api: Api<DigicertOrder> = Api::namespaced(self.cluster.client.clone(), ns);
        let mut seen = std::collections::BTreeSet::new();
        let end = Instant::now() + period;
        while Instant::now() < end {
            let o = api.get(name).await.unwrap();
            if let Some(t) = o
                .status
                .and_then(|s| s.last_order_check)
                .map(|t| digicert_operator::controller::status::offset(&t))
                .filter(|t| *t > since)
            {
                seen.insert(t);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        seen.into_iter().collect()
    }

    /// The reasons of the events about one DigicertOrder of the namespace.
    pub async fn event_reasons(&self, name: &str) -> Vec<String> {
        let api: Api<k8s_openapi::api::events::v1::Event> = self.cluster.api();
        api.list(&kube::api::ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| {
                e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                    && e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("DigicertOrder")
            })
            .filter_map(|e| e.reason)
            .collect()
    }

    /// Waits for an event with `reason` about the DigicertOrder.
    pub async fn wait_event(&self, name: &str, reason: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let reasons = self.event_reasons(name).await;
            if reasons.iter().any(|r| r == reason) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no {reason} event for {name}; events: {reasons:?}\n--- operator log ---\n{}",
                self.operator_logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn wait_ready(&self, name: &str) -> DigicertOrder {
        self.wait_condition(name, "Ready", "True", None, Duration::from_secs(60))
            .await
    }

    /// Checks the certificate Secret: type, key belongs to the certificate, chain
    /// verifies up to the simulator's root, names as given. Returns the leaf.
    pub async fn verify_secret(&self, secret_name: &str, names: &[&str]) -> VerifiedSecret {
        let secret = self.secrets().get(secret_name).await.unwrap();
        verify_tls_secret(&secret, self.sim.ca_pem(), names)
    }

    /// The same, with validity judged on the simulator's clock (after `advance_clock`).
    pub async fn verify_secret_at_sim_time(
        &self,
        secret_name: &str,
        names: &[&str],
    ) -> VerifiedSecret {
        let secret = self.secrets().get(secret_name).await.unwrap();
        verify_tls_secret_at(
            &secret,
            self.sim.ca_pem(),
            names,
            self.sim.simulator().now(),
        )
    }
}

impl Drop for OperatorEnv {
    fn drop(&mut self) {
        // The operator process prints its own log when the test panics.
        self.kill_operator();
        // The test's accounts are cluster-scoped: they do not go with the namespace.
        let label = format!(
            "digicert-operator.dev/e2e-namespace={}",
            self.cluster.namespace
        );
        let _ = self.cluster.kubectl_run(
            &["delete", "digicertaccounts", "-l", &label, "--wait=false"],
            None,
        );
        // So are cluster issuers (where the CRD is installed).
        let _ = self.cluster.kubectl_run(
            &[
                "delete",
                "digicertclusterissuers",
                "-l",
                &label,
                "--wait=false",
                "--ignore-not-found",
            ],
            None,
        );
    }
}

pub fn condition<'a>(
    o: &'a DigicertOrder,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    o.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

pub struct VerifiedSecret {
    pub leaf: keys::CertificateInfo,
    pub key_pem: String,
    pub tls_crt: String,
    pub annotations: std::collections::BTreeMap<String, String>,
    pub labels: std::collections::BTreeMap<String, String>,
}

fn data(secret: &Secret, key: &str) -> String {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| String::from_utf8(b.0.clone()).unwrap())
        .unwrap_or_else(|| panic!("the Secret has no {key}"))
}

pub fn verify_tls_secret(secret: &Secret, root_pem: &str, names: &[&str]) -> VerifiedSecret {
    verify_tls_secret_at(secret, root_pem, names, time::OffsetDateTime::now_utc())
}

/// Checks a certificate Secret with validity judged at `now`.
pub fn verify_tls_secret_at(
    secret: &Secret,
    root_pem: &str,
    names: &[&str],
    now: time::OffsetDateTime,
) -> VerifiedSecret {
    use x509_parser::prelude::{FromDer, X509Certificate};
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    let tls_crt = data(secret, "tls.crt");
    let key_pem = data(secret, "tls.key");
    let ca_crt = data(secret, "ca.crt");
    assert_eq!(
        ca_crt.trim(),
        root_pem.trim(),
        "ca.crt is the simulator's root"
    );
    let certs = keys::certificates_from_pem(&tls_crt).unwrap();
    assert_eq!(certs.len(), 2, "tls.crt holds leaf and intermediate");
    let (_, leaf) = X509Certificate::from_der(&certs[0]).unwrap();
    let (_, intermediate) = X509Certificate::from_der(&certs[1]).unwrap();
    let root_der = keys::certificates_from_pem(root_pem).unwrap().remove(0);
    let (_, root) = X509Certificate::from_der(&root_der).unwrap();
    leaf.verify_signature(Some(intermediate.public_key()))
        .expect("leaf signed by the intermediate");
    intermediate
        .verify_signature(Some(root.public_key()))
        .expect("intermediate signed by the root");
    let info = keys::inspect_certificate(&certs[0]).unwrap();
    let key = keys::parse_private_key(&key_pem).expect("tls.key parses");
    assert_eq!(
        keys::public_key_bits(&key),
        info.public_key_bits,
        "tls.key belongs to tls.crt"
    );
    let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut have = info.dns_names.clone();
    want.sort();
    have.sort();
    assert_eq!(have, want, "certificate names");
    assert!(
        info.not_before <= now + time::Duration::minutes(1) && now < info.not_after,
        "valid at {now}: {} to {}",
        info.not_before,
        info.not_after
    );
    VerifiedSecret {
        leaf: info,
        key_pem,
        tls_crt,
        annotations: secret.metadata.annotations.clone().unwrap_or_default(),
        labels: secret.metadata.labels.clone().unwrap_or_default(),
    }
}
