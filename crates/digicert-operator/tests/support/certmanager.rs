//! cert-manager's part in the tests and benchmarks of the external issuer: its CRDs
//! on the API server (derived from the k8s-crds-cert-manager crate's types, see
//! `hack/cert-manager-crds.sh`), and what its certificates controller and approver do
//! (a `Certificate`, a key and a CSR, a `CertificateRequest` with the annotations and
//! owner cert-manager sets, `Approved` or `Denied` through the status subresource).

use std::time::{Duration, Instant};

use super::env::OperatorEnv;
use base64::Engine;
use certcentral_sim::OrderSeed;
use digicert_operator::certcentral::Operation;
use digicert_operator::certmanager::{Certificate, CertificateRequest};
use digicert_operator::keys::{self, KeyKind};
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

pub struct Cm {
    pub env: OperatorEnv,
}

impl std::ops::Deref for Cm {
    type Target = OperatorEnv;
    fn deref(&self) -> &OperatorEnv {
        &self.env
    }
}

impl std::ops::DerefMut for Cm {
    fn deref_mut(&mut self) -> &mut OperatorEnv {
        &mut self.env
    }
}

/// cert-manager's CRDs (idempotent: tests share the server).
pub fn install_cert_manager_crds(env: &OperatorEnv) {
    install_crds(&env.cluster);
}

/// cert-manager's CRDs on `cluster` (idempotent: tests share the server).
pub fn install_crds(cluster: &super::cluster::TestCluster) {
    let file = super::cluster::repo_root()
        .join("crates/digicert-operator/tests/fixtures/cert-manager-crds.yaml");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = cluster.kubectl_run(
            &[
                "apply",
                "--server-side",
                "--force-conflicts",
                "-f",
                file.to_str().unwrap(),
            ],
            None,
        );
        if out.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "installing cert-manager's CRDs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    super::cluster::wait_established(
        &cluster.kubeconfig,
        &[
            "certificaterequests.cert-manager.io",
            "certificates.cert-manager.io",
            "digicertissuers.digicert-operator.dev",
            "digicertclusterissuers.digicert-operator.dev",
        ],
    );
}

impl Cm {
    pub async fn new(test: &str, orders: Vec<OrderSeed>) -> Cm {
        Cm::with_simulator(test, OperatorEnv::simulator_config(orders)).await
    }

    pub async fn with_simulator(test: &str, config: certcentral_sim::SimulatorConfig) -> Cm {
        let env = OperatorEnv::with_simulator(test, config).await;
        install_cert_manager_crds(&env);
        Cm { env }
    }

    /// An environment with `order`, the operator started, and a DigicertIssuer
    /// `digicert` for the order with the test's account; its namespace.
    pub async fn with_issuer(test: &str, order: u64) -> (Cm, String) {
        let mut env = Cm::new(test, vec![super::order(order)]).await;
        env.start_operator();
        let ns = env.ns();
        env.issuer(
            &ns,
            "digicert",
            issuer_spec(&env, json!({"orderId": order})),
        );
        (env, ns)
    }

    pub fn ns(&self) -> String {
        self.cluster.namespace.clone()
    }

    pub fn requests_in(&self, ns: &str) -> Api<CertificateRequest> {
        Api::namespaced(self.cluster.client.clone(), ns)
    }

    pub fn calls(&self, op: Operation) -> u64 {
        self.sim.simulator().calls().total(op)
    }

    pub fn record(&self, id: u64) -> Value {
        self.sim
            .simulator()
            .order_record(id)
            .expect("the order exists")
    }

    /// The order's certificates that came from a reissue (`origin`), or a duplicate.
    pub fn certificates(&self, id: u64, origin: &str) -> Vec<Value> {
        self.record(id)["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["origin"] == origin)
            .cloned()
            .collect()
    }

    pub fn fault(&self, spec: Value) -> u64 {
        self.sim
            .simulator()
            .add_fault(serde_json::from_value(spec).expect("valid fault spec"))
            .expect("fault accepted")
    }

    /// A DigicertIssuer in `ns` with `spec` (the test's account unless it names one).
    pub fn issuer(&self, ns: &str, name: &str, spec: Value) {
        let manifest = json!({
            "apiVersion": "digicert-operator.dev/v1alpha1",
            "kind": "DigicertIssuer",
            "metadata": {"name": name, "namespace": ns},
            "spec": spec,
        });
        self.cluster
            .kubectl_ok(&["apply", "-f", "-"], Some(&manifest.to_string()));
    }

    /// A DigicertClusterIssuer (deleted with the test's accounts' label).
    pub fn cluster_issuer(&self, name: &str, spec: Value) {
        let manifest = json!({
            "apiVersion": "digicert-operator.dev/v1alpha1",
            "kind": "DigicertClusterIssuer",
            "metadata": {
                "name": name,
                "labels": {"digicert-operator.dev/e2e-namespace": self.ns()},
            },
            "spec": spec,
        });
        self.cluster
            .kubectl_ok(&["apply", "-f", "-"], Some(&manifest.to_string()));
    }

    /// Waits until an issuer's Ready condition is `status`; returns its reason.
    pub async fn issuer_ready(
        &self,
        kind: &str,
        ns: Option<&str>,
        name: &str,
        status: &str,
    ) -> (String, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut args = vec!["get", kind, name, "-o", "json"];
            if let Some(ns) = ns {
                args.extend(["-n", ns]);
            }
            let out = self.cluster.kubectl_run(&args, None);
            if out.status.success() {
                let v: Value = serde_json::from_slice(&out.stdout).unwrap();
                if let Some(c) = v["status"]["conditions"]
                    .as_array()
                    .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
                    && c["status"] == status
                {
                    return (
                        c["reason"].as_str().unwrap_or_default().into(),
                        c["message"].as_str().unwrap_or_default().into(),
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "{kind} {name} not Ready={status}: {}\n--- operator log ---\n{}",
                String::from_utf8_lossy(&out.stdout),
                self.operator_logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// What cert-manager's certificates controller makes: a `Certificate`, then a key
    /// and a `CertificateRequest` for it, owned by it, with its annotations (the
    /// Certificate's own copied, as cert-manager does).
    pub async fn certificate_request(
        &self,
        ns: &str,
        certificate: &str,
        revision: u32,
        issuer: (&str, &str),
        names: &[&str],
        annotations: Value,
    ) -> (String, keys::CsrInfo) {
        let certificates: Api<Certificate> = Api::namespaced(self.cluster.client.clone(), ns);
        let cert = match certificates.get_opt(certificate).await.unwrap() {
            Some(c) => c,
            None => {
                let manifest: Certificate = serde_json::from_value(json!({
                    "apiVersion": "cert-manager.io/v1",
                    "kind": "Certificate",
                    "metadata": {"name": certificate, "namespace": ns, "annotations": annotations},
                    "spec": {
                        "secretName": format!("{certificate}-tls"),
                        "dnsNames": names,
                        "issuerRef": {"group": "digicert-operator.dev", "kind": issuer.0, "name": issuer.1},
                    },
                }))
                .unwrap();
                certificates
                    .create(&PostParams::default(), &manifest)
                    .await
                    .unwrap()
            }
        };
        let key = keys::generate(KeyKind::Ecdsa(256)).unwrap();
        let csr = keys::csr_pem(
            &key,
            names[0],
            &names.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .unwrap();
        let info = keys::inspect_csr(&csr).unwrap();
        let name = format!("{certificate}-{revision}");
        let mut all = annotations.as_object().cloned().unwrap_or_default();
        all.insert(
            "cert-manager.io/certificate-name".into(),
            certificate.into(),
        );
        all.insert(
            "cert-manager.io/certificate-revision".into(),
            revision.to_string().into(),
        );
        all.insert(
            "cert-manager.io/private-key-secret-name".into(),
            format!("{certificate}-key").into(),
        );
        let request: CertificateRequest = serde_json::from_value(json!({
            "apiVersion": "cert-manager.io/v1",
            "kind": "CertificateRequest",
            "metadata": {
                "name": name,
                "namespace": ns,
                "annotations": all,
                "ownerReferences": [{
                    "apiVersion": "cert-manager.io/v1",
                    "kind": "Certificate",
                    "name": certificate,
                    "uid": cert.uid().unwrap(),
                    "controller": true,
                    "blockOwnerDeletion": true,
                }],
            },
            "spec": {
                "request": base64::engine::general_purpose::STANDARD.encode(&csr),
                "issuerRef": {"group": "digicert-operator.dev", "kind": issuer.0, "name": issuer.1},
                "usages": ["digital signature", "key encipherment"],
                "duration": "2160h",
            },
        }))
        .unwrap();
        self.requests_in(ns)
            .create(&PostParams::default(), &request)
            .await
            .unwrap();
        (name, info)
    }

    /// `certificate_request`, then approved as cert-manager's approver does.
    pub async fn approved_request(
        &self,
        ns: &str,
        certificate: &str,
        revision: u32,
        issuer: (&str, &str),
        names: &[&str],
        annotations: Value,
    ) -> (String, keys::CsrInfo) {
        let made = self
            .certificate_request(ns, certificate, revision, issuer, names, annotations)
            .await;
        self.decide(ns, &made.0, "Approved").await;
        made
    }

    /// Sets `Approved` (or `Denied`) through the status subresource, with the reason
    /// cert-manager's approver uses.
    pub async fn decide(&self, ns: &str, name: &str, type_: &str) {
        let api = self.requests_in(ns);
        let mut request = api.get_status(name).await.unwrap();
        let mut status = request.status.clone().unwrap_or_default();
        status
            .conditions
            .push(digicert_operator::certmanager::RequestCondition {
                type_: type_.into(),
                status: "True".into(),
                reason: Some("cert-manager.io".into()),
                message: Some(format!(
                    "Certificate request has been {} by cert-manager.io",
                    type_.to_lowercase()
                )),
                last_transition_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::now(),
                )),
            });
        request.status = Some(status);
        api.replace_status(name, &PostParams::default(), &request)
            .await
            .unwrap();
    }

    pub async fn request(&self, ns: &str, name: &str) -> CertificateRequest {
        self.requests_in(ns).get(name).await.unwrap()
    }

    /// Waits until the request's Ready condition has `reason`; returns the request.
    pub async fn wait_reason(
        &self,
        ns: &str,
        name: &str,
        reason: &str,
        timeout: Duration,
    ) -> CertificateRequest {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.request(ns, name).await;
            if ready(&r).is_some_and(|(_, rs, _)| rs == reason) {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "{ns}/{name} not Ready reason {reason}: {}\n--- operator log ---\n{}",
                serde_json::to_string_pretty(&r.status).unwrap(),
                self.operator_logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the request is Pending with a message containing `text`.
    pub async fn wait_pending(&self, ns: &str, name: &str, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = self.request(ns, name).await;
            if let Some((_, reason, message)) = ready(&r)
                && reason == "Pending"
                && message.contains(text)
            {
                return message;
            }
            assert!(
                Instant::now() < deadline,
                "{ns}/{name} not Pending with {text:?}: {}\n--- operator log ---\n{}",
                serde_json::to_string_pretty(&r.status).unwrap(),
                self.operator_logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Checks an issued request: its chain verifies up to the simulator's root, is for
    /// the CSR's key and names, and `ca` is that root.
    pub fn verify_issued(
        &self,
        request: &CertificateRequest,
        csr: &keys::CsrInfo,
        names: &[&str],
    ) -> keys::CertificateInfo {
        let status = request.status.as_ref().unwrap();
        let decode = |b: &str| {
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b).unwrap()).unwrap()
        };
        let chain = decode(status.certificate.as_deref().expect("status.certificate"));
        let certs = keys::certificates_from_pem(&chain).unwrap();
        assert!(certs.len() >= 2, "leaf and intermediate: {chain}");
        let leaf = keys::inspect_certificate(&certs[0]).unwrap();
        assert_eq!(
            leaf.public_key_info, csr.public_key_info,
            "the certificate is for the CSR's key"
        );
        let mut got = leaf.dns_names.clone();
        got.sort();
        let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(got, want);
        assert!(
            keys::signed_by(&certs[0], &certs[1]),
            "the leaf is signed by the intermediate"
        );
        let ca = decode(status.ca.as_deref().expect("status.ca"));
        assert_eq!(
            ca.trim(),
            self.sim.ca_pem().trim(),
            "ca is the simulator's root"
        );
        leaf
    }

    /// Asserts the request stays without any DigiCert call, with no Ready condition
    /// of the operator's, for `period`.
    pub async fn untouched_for(&self, ns: &str, name: &str, period: Duration) {
        let before = self.sim.simulator().calls().sum();
        let end = Instant::now() + period;
        while Instant::now() < end {
            let r = self.request(ns, name).await;
            assert!(ready(&r).is_none(), "{name} was touched: {:?}", r.status);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(
            self.sim.simulator().calls().sum(),
            before,
            "DigiCert was called"
        );
    }
}

/// The Ready condition: (status, reason, message).
pub fn ready(r: &CertificateRequest) -> Option<(String, String, String)> {
    let c = r.status.as_ref()?.find("Ready")?;
    Some((
        c.status.clone(),
        c.reason.clone().unwrap_or_default(),
        c.message.clone().unwrap_or_default(),
    ))
}

pub fn issuer_spec(env: &Cm, extra: Value) -> Value {
    let mut spec = json!({"accountRef": {"name": env.account_name()}});
    spec.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    spec
}
