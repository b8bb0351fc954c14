//! The reconcile's phases against a mocked Kubernetes API server (`fixtures`) and the
//! CertCentral simulator in this process (real HTTPS): each test sets the scene in
//! the mock's store, runs the controller's `reconcile` as the runtime would, and
//! asserts the effects — the Kubernetes writes, the DigiCert calls, the status and
//! what comes next. Seconds, where the end-to-end suite takes minutes.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use certcentral_sim::{ApiKeyConfig, OrderSeed, RunningSimulator, SeedFile, SimulatorConfig};
use kube::api::PartialObjectMeta;
use kube::runtime::controller::Action;
use serde_json::{Value, json};

use super::fixtures::ApiServer;
use super::{Context, DcvConfig, InitialList, OperatorConfig, accounts, reconcile};
use crate::certcentral::{ClientConfig, Operation, RateLimiter};
use crate::crd::DigicertOrder;
use crate::metrics::Metrics;

const OPERATOR_NS: &str = "digicert-operator";
const NS: &str = "team-a";
const KEY: &str = "phase-api-key-0123456789";
const RESYNC: Duration = Duration::from_secs(6 * 3600);
const ORDERS: &str = "/apis/digicert-operator.dev/v1alpha1/namespaces/team-a/digicertorders";
const SECRETS: &str = "/api/v1/namespaces/team-a/secrets";

struct World {
    api: ApiServer,
    sim: RunningSimulator,
    ctx: Arc<Context>,
}

fn seed(id: u64) -> OrderSeed {
    serde_json::from_value(json!({
        "id": id,
        "common_name": "example.com",
        "dns_names": ["www.example.com"],
    }))
    .expect("a seed")
}

/// A namespace, an account for it with its key in the operator's namespace, the
/// simulator with `orders`, and the operator's context on the mocked server.
async fn world(orders: Vec<OrderSeed>) -> World {
    world_with(orders, |_| {}).await
}

/// `world`, the simulator's configuration adjusted by `change`.
async fn world_with(orders: Vec<OrderSeed>, change: impl FnOnce(&mut SimulatorConfig)) -> World {
    pki::tls::install_crypto_provider();
    let (client, api) = ApiServer::start();
    let mut config = SimulatorConfig {
        seed: SeedFile {
            api_keys: vec![ApiKeyConfig::new(KEY)],
            orders,
            rate_limits: None,
            ..SeedFile::default()
        },
        rate_limits: Vec::new(),
        ..SimulatorConfig::default()
    };
    change(&mut config);
    let sim = certcentral_sim::start(config)
        .await
        .expect("the simulator starts");
    api.put(json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": NS, "labels": {"kubernetes.io/metadata.name": NS}}}));
    api.put(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "digicert-api-key", "namespace": OPERATOR_NS},
        "data": {"api-key": base64::engine::general_purpose::STANDARD.encode(KEY)}}));
    api.put(
        json!({"apiVersion": "digicert-operator.dev/v1alpha1", "kind": "DigicertAccount",
        "metadata": {"name": "default"},
        "spec": {
            "certcentral": {"url": sim.base_url(), "caBundle": sim.ca_pem()},
            "apiKeySecretRef": {"name": "digicert-api-key"},
            "operatorNamespace": OPERATOR_NS,
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NS}},
        }}),
    );
    let endpoints = accounts::Endpoints::new(
        ClientConfig::default(),
        None,
        Arc::new(RateLimiter::unlimited),
        None,
    );
    let config = OperatorConfig {
        namespace: OPERATOR_NS.into(),
        default_account: Some("default".into()),
        access_recheck: Duration::from_secs(600),
        resync: RESYNC,
        secret_owner_references: true,
        namespaces: Vec::new(),
        concurrency: 1,
        initial_list: InitialList::Auto,
        order_expiry_warning: Duration::from_secs(30 * 86400),
        call_timeout: Duration::from_secs(30),
        deletion_timeout: Duration::from_secs(300),
        dcv: DcvConfig::default(),
        // Orders of the default account are unassigned: this operator serves them.
        serve_unassigned: true,
        // The phases one at a time: no feed reader runs here.
        feed_interval: None,
    };
    let ctx = Arc::new(Context::new(
        client,
        endpoints,
        config,
        Arc::new(Metrics::new()),
    ));
    World { api, sim, ctx }
}

fn order(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "digicert-operator.dev/v1alpha1", "kind": "DigicertOrder",
        "metadata": {"name": name, "namespace": NS}, "spec": spec})
}

fn rsa_order(name: &str) -> Value {
    order(
        name,
        json!({"orderId": 1001, "commonName": "example.com",
            "dnsNames": ["www.example.com"], "secretName": "web-tls"}),
    )
}

impl World {
    /// One reconcile of `name`, as the controller runs it (from the cached metadata).
    async fn reconcile(&self, name: &str) -> Action {
        let object = self
            .api
            .get(&format!("{ORDERS}/{name}"))
            .expect("the order");
        let order: DigicertOrder = serde_json::from_value(object).expect("a DigicertOrder");
        let meta = PartialObjectMeta::<DigicertOrder> {
            types: None,
            metadata: order.metadata,
            _phantom: Default::default(),
        };
        reconcile(Arc::new(meta), self.ctx.clone())
            .await
            .expect("reconcile succeeds")
    }

    fn order(&self, name: &str) -> Value {
        self.api
            .get(&format!("{ORDERS}/{name}"))
            .expect("the order")
    }

    fn condition(&self, name: &str, type_: &str) -> (String, String) {
        let order = self.order(name);
        let c = order["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
            .unwrap_or_else(|| panic!("no {type_} condition in {order:#}"));
        (
            c["status"].as_str().unwrap().into(),
            c["reason"].as_str().unwrap().into(),
        )
    }

    fn calls(&self, op: Operation) -> u64 {
        self.sim.simulator().calls().total(op)
    }
}

/// Reconciles until `done` or `limit` reconciles; returns the last action and how many.
async fn reconcile_until(
    w: &World,
    name: &str,
    limit: usize,
    done: impl Fn(&World) -> bool,
) -> (Action, usize) {
    for n in 1..=limit {
        let action = w.reconcile(name).await;
        if done(w) {
            return (action, n);
        }
    }
    panic!(
        "not done after {limit} reconciles; requests: {:#?}\norder: {:#}",
        w.api.request_lines(),
        w.order(name)
    );
}

fn ready(w: &World, name: &str) -> bool {
    w.order(name)["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

#[tokio::test]
async fn a_new_order_gets_its_certificate_with_two_status_writes() {
    let w = world(vec![seed(1001)]).await;
    w.api.put(rsa_order("web"));
    let (action, reconciles) = reconcile_until(&w, "web", 6, |w| ready(w, "web")).await;

    // The certificate Secret: kubernetes.io/tls, labelled and owned by the order.
    let secret = w
        .api
        .get(&format!("{SECRETS}/web-tls"))
        .expect("the Secret");
    assert_eq!(secret["type"], "kubernetes.io/tls");
    for key in ["tls.crt", "tls.key", "ca.crt"] {
        assert!(secret["data"][key].is_string(), "{key} in {secret:#}");
    }
    assert_eq!(
        secret["metadata"]["labels"][super::secret::ORDER_LABEL],
        "web"
    );
    assert_eq!(secret["metadata"]["ownerReferences"][0]["name"], "web");
    // The new key's Secret was a step on the way and is gone.
    assert!(w.api.get(&format!("{SECRETS}/web-pending-key")).is_none());
    // First the claim on the order (a Lease in the operator's namespace), then the
    // new key stored, then status (Submitting before the POST, then the certificate
    // written: two status writes). Nothing to do at DigiCert on deletion: no
    // finalizer.
    let writes = w.api.write_lines();
    assert_eq!(
        writes[0], "POST /apis/coordination.k8s.io/v1/namespaces/digicert-operator/leases",
        "{writes:#?}"
    );
    assert!(w.order("web")["metadata"]["finalizers"].is_null());
    assert!(
        !writes.iter().any(|l| l == &format!("PATCH {ORDERS}/web")),
        "{writes:#?}"
    );
    let key_stored = writes
        .iter()
        .position(|l| l == &format!("PATCH {SECRETS}/web-pending-key"))
        .expect("the pending key stored");
    let first_status = writes
        .iter()
        .position(|l| l.ends_with("/digicertorders/web/status"))
        .expect("a status write");
    assert!(key_stored < first_status, "{writes:#?}");
    // Both Secrets go by server-side apply, so fields of other managers stay.
    // The pending key goes with a uid precondition: only the very object read.
    let secret_writes = w.api.writes();
    for write in secret_writes
        .iter()
        .filter(|r| r.path.contains("/secrets/web-") && r.method == http::Method::PATCH)
    {
        assert_eq!(
            write.content_type, "application/apply-patch+yaml",
            "{write:?}"
        );
    }
    // The first status write records the prepared reissue and its key's Secret.
    let deleted = secret_writes
        .iter()
        .find(|r| r.method == http::Method::DELETE)
        .expect("the pending key deleted");
    assert!(deleted.path.ends_with("/web-pending-key"), "{deleted:?}");
    assert!(
        deleted.body["preconditions"]["uid"].is_string(),
        "{deleted:?}"
    );
    let submitting = &secret_writes[first_status].body;
    assert_eq!(
        submitting["status"]["reissue"]["state"], "Submitting",
        "{submitting:#}"
    );
    assert_eq!(
        submitting["status"]["reissue"]["keySecretName"],
        "web-pending-key"
    );
    assert!(submitting["status"]["reissue"]["submittedAt"].is_string());
    let status_writes = writes.iter().filter(|l| l.ends_with("/web/status")).count();
    assert_eq!(status_writes, 2, "{writes:#?}");
    // Every write: the claim, the key, two status writes, the Secret, the key's
    // removal, one event.
    let events = writes.iter().filter(|l| l.contains("/events")).count();
    assert_eq!(events, 1, "{writes:#?}");
    assert_eq!(writes.len(), 7, "{writes:#?}");
    // DigiCert: the order's names, the reissue, the order (issued), the download.
    // (With skipApproval the answer names the certificate: no second order info.)
    assert_eq!(w.calls(Operation::Reissue), 1);
    assert_eq!(w.calls(Operation::Download), 1);
    assert_eq!(w.calls(Operation::OrderInfo), 2);
    assert_eq!(
        w.condition("web", "Issuing"),
        ("False".into(), "Issued".into())
    );
    // What comes next: a look at the resync, not at once.
    assert_ne!(action, Action::requeue(Duration::ZERO));
    assert!(reconciles <= 2, "{reconciles}");
}

#[tokio::test]
async fn an_issued_order_is_left_alone_until_its_next_look() {
    let w = world(vec![seed(1001)]).await;
    w.api.put(rsa_order("web"));
    reconcile_until(&w, "web", 6, |w| ready(w, "web")).await;
    let writes = w.api.writes().len();
    let calls = w
        .sim
        .simulator()
        .calls()
        .operations
        .values()
        .map(|c| c.total)
        .sum::<u64>();

    let action = w.reconcile("web").await;
    assert_eq!(w.api.writes().len(), writes, "{:#?}", w.api.write_lines());
    let now = w
        .sim
        .simulator()
        .calls()
        .operations
        .values()
        .map(|c| c.total)
        .sum::<u64>();
    assert_eq!(now, calls, "no DigiCert call before the resync");
    assert!(action != Action::requeue(Duration::ZERO) && action != Action::await_change());
}

#[tokio::test]
async fn a_secret_in_the_way_is_not_overwritten() {
    let w = world(vec![seed(1001)]).await;
    w.api.put(
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "web-tls", "namespace": NS},
        "data": {"password": "c2VjcmV0"}}),
    );
    w.api.put(rsa_order("web"));
    // The finalizer, then the conflict.
    w.reconcile("web").await;
    let action = w.reconcile("web").await;
    assert_eq!(
        w.condition("web", "Ready"),
        ("False".into(), "SecretConflict".into())
    );
    let secret = w.api.get(&format!("{SECRETS}/web-tls")).unwrap();
    assert_eq!(secret["data"], json!({"password": "c2VjcmV0"}));
    assert_eq!(secret["metadata"]["resourceVersion"], "4", "never written");
    assert!(
        !w.api.write_lines().iter().any(|l| l.contains("/secrets/")),
        "{:#?}",
        w.api.write_lines()
    );
    assert_eq!(w.calls(Operation::Reissue), 0);
    assert_eq!(action, Action::requeue(Duration::from_secs(60)));
}

#[tokio::test]
async fn a_spec_the_operator_cannot_act_upon_is_refused_before_digicert() {
    let w = world(vec![seed(1001)]).await;
    let name = "n".repeat(64);
    w.api.put(order(
        &name,
        json!({"orderId": 1001, "commonName": "example.com", "secretName": "web-tls"}),
    ));
    let (action, _) = reconcile_until(&w, &name, 3, |w| {
        w.order(&name)["status"]["conditions"].is_array()
    })
    .await;
    assert_eq!(
        w.condition(&name, "Ready"),
        ("False".into(), "InvalidSpec".into())
    );
    assert_eq!(action, Action::await_change());
    assert_eq!(
        w.sim.simulator().calls().operations.len(),
        0,
        "no DigiCert call"
    );
}

#[tokio::test]
async fn a_renewal_request_starts_a_reissue_and_keeps_ready_meanwhile() {
    let w = world(vec![seed(1001)]).await;
    w.api.put(rsa_order("web"));
    reconcile_until(&w, "web", 6, |w| ready(w, "web")).await;
    let first = w.api.get(&format!("{SECRETS}/web-tls")).unwrap()["data"]["tls.crt"].clone();
    let mut order = w.order("web");
    order["metadata"]["annotations"] = json!({"digicert-operator.dev/renew": "1"});
    w.api.put(order);

    let (_, _) = reconcile_until(&w, "web", 6, |w| {
        w.api.get(&format!("{SECRETS}/web-tls")).unwrap()["data"]["tls.crt"] != first
    })
    .await;
    assert!(ready(&w, "web"), "Ready all along");
    assert_eq!(w.calls(Operation::Reissue), 2);
    assert_eq!(w.order("web")["status"]["lastRenewRequest"], "1");
    // Answered once: another reconcile starts nothing.
    w.reconcile("web").await;
    assert_eq!(w.calls(Operation::Reissue), 2);
}

#[tokio::test]
async fn a_renewal_issued_at_once_costs_two_calls_or_one_with_the_chain_and_two_status_writes() {
    for (chain, calls, downloads) in [(false, 2, 1), (true, 1, 0)] {
        let w = world_with(vec![seed(1001)], |c| c.feed.reissue_answer_chain = chain).await;
        let mut order = rsa_order("web");
        order["spec"]["skipApproval"] = json!(true);
        w.api.put(order);
        reconcile_until(&w, "web", 6, |w| ready(w, "web")).await;
        let first = w.api.get(&format!("{SECRETS}/web-tls")).unwrap()["data"]["tls.crt"].clone();
        let before = w.sim.simulator().calls();
        // The renewal request as a user makes it: a patch (the object stays the same).
        let orders: kube::Api<DigicertOrder> = kube::Api::namespaced(w.ctx.client.clone(), NS);
        let renew = json!({"metadata": {"annotations": {"digicert-operator.dev/renew": "1"}}});
        orders
            .patch("web", &Default::default(), &kube::api::Patch::Merge(&renew))
            .await
            .unwrap();
        let writes = w.api.write_lines().len();
        reconcile_until(&w, "web", 3, |w| {
            w.api.get(&format!("{SECRETS}/web-tls")).unwrap()["data"]["tls.crt"] != first
        })
        .await;
        let after = w.sim.simulator().calls();
        let made = |op| after.total(op) - before.total(op);
        // The reissue (its answer names the certificate, and may carry it), the download.
        assert_eq!(
            after.sum() - before.sum(),
            calls,
            "chain {chain}: {after:?}"
        );
        assert_eq!(made(Operation::Download), downloads, "chain {chain}");
        assert_eq!(made(Operation::OrderInfo), 0, "chain {chain}");
        // The new key, Submitting, the Secret, the certificate in status, the key's
        // removal, one event.
        let new = &w.api.write_lines()[writes..];
        assert_eq!(
            new.iter().filter(|l| l.ends_with("/web/status")).count(),
            2,
            "{new:#?}"
        );
        assert_eq!(new.len(), 6, "{new:#?}");
        assert!(ready(&w, "web"));
    }
}

#[tokio::test]
async fn a_renewal_that_keeps_the_key_writes_no_key_secret() {
    // Issued at once, and issued later (the reissue is followed with the key read
    // back from the certificate Secret and the CSR from status).
    for at_once in [true, false] {
        let w = world(vec![seed(1001)]).await;
        let mut order = rsa_order("web");
        order["spec"]["skipApproval"] = json!(at_once);
        order["spec"]["privateKey"] = json!({"rotationPolicy": "Never"});
        w.api.put(order);
        reconcile_until(&w, "web", 6, |w| ready(w, "web")).await;
        let secret = |w: &World| w.api.get(&format!("{SECRETS}/web-tls")).unwrap()["data"].clone();
        let first = secret(&w);
        let orders: kube::Api<DigicertOrder> = kube::Api::namespaced(w.ctx.client.clone(), NS);
        let renew = json!({"metadata": {"annotations": {"digicert-operator.dev/renew": "1"}}});
        orders
            .patch("web", &Default::default(), &kube::api::Patch::Merge(&renew))
            .await
            .unwrap();
        let writes = w.api.write_lines().len();
        reconcile_until(&w, "web", 6, |w| secret(w)["tls.crt"] != first["tls.crt"]).await;
        assert_eq!(secret(&w)["tls.key"], first["tls.key"], "the key is kept");
        let new = &w.api.write_lines()[writes..];
        assert!(!new.iter().any(|l| l.contains("pending-key")), "{new:#?}");
        let submitting = w
            .api
            .writes()
            .into_iter()
            .skip(writes)
            .find(|r| r.path.ends_with("/web/status"))
            .expect("Submitting");
        let reissue = &submitting.body["status"]["reissue"];
        assert_eq!(reissue["keySecretName"], "web-tls", "{reissue}");
        assert!(
            reissue["csr"]
                .as_str()
                .unwrap()
                .contains("CERTIFICATE REQUEST"),
            "{reissue}"
        );
        assert!(ready(&w, "web"));
        assert!(w.order("web")["status"]["reissue"].is_null());
        if at_once {
            // Submitting (with the CSR), the Secret, the certificate in status, one
            // event: no key Secret written, none deleted.
            let statuses = new.iter().filter(|l| l.ends_with("/web/status")).count();
            assert_eq!(statuses, 2, "{new:#?}");
            assert_eq!(new.len(), 4, "{new:#?}");
        }
    }
}

#[tokio::test]
async fn deleting_an_order_with_nothing_in_flight_lets_it_go() {
    let w = world(vec![seed(1001)]).await;
    w.api.put(rsa_order("web"));
    reconcile_until(&w, "web", 6, |w| ready(w, "web")).await;
    let mut order = w.order("web");
    order["metadata"]["deletionTimestamp"] = json!("2026-01-02T00:00:00Z");
    w.api.put(order);
    let (action, _) = reconcile_until(&w, "web", 3, |w| {
        w.order("web")["metadata"]["finalizers"]
            .as_array()
            .is_none_or(|f| f.is_empty())
    })
    .await;
    assert_eq!(action, Action::await_change());
    // The certificate stays with the Secret's owner reference (garbage collection),
    // not a delete by the operator; DigiCert is not asked to cancel anything.
    assert!(
        !w.api
            .write_lines()
            .iter()
            .any(|l| l.starts_with("DELETE") && l.ends_with("/web-tls")),
        "{:#?}",
        w.api.write_lines()
    );
    assert_eq!(w.calls(Operation::UpdateOrderStatus), 0);
}
