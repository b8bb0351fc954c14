//! The `http-token` solver, like cert-manager's HTTP-01 solver: every operator pod
//! serves the random values at `/.well-known/pki-validation/fileauth.txt` (by the
//! request's Host) on its solver listener, and an Ingress or HTTPRoute per name sends
//! that path to the chart's solver Service.
//!
//! The values live in one ConfigMap in the operator's namespace, written by the
//! leader and watched by every pod: whichever pod the Service picks answers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::watcher;

use crate::crd::dcv::{HttpRouteSolverSpec, IngressSolverSpec};

/// Where DigiCert's file-based method looks (documented; exact case matters).
pub const FILE_PATH: &str = "/.well-known/pki-validation/fileauth.txt";
const FIELD_MANAGER: &str = "digicert-operator";

/// The random values to serve, by host name.
#[derive(Clone, Debug, Default)]
pub struct Tokens(Arc<RwLock<BTreeMap<String, String>>>);

impl Tokens {
    pub fn get(&self, host: &str) -> Option<String> {
        let map = self.0.read().unwrap_or_else(|e| e.into_inner());
        map.get(&normal_host(host)).cloned()
    }

    fn replace(&self, values: BTreeMap<String, String>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = values;
    }
}

/// A Host header as a map key: no port, no trailing dot, lower case.
pub fn normal_host(host: &str) -> String {
    let host = host.trim();
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// The solver's routes: the file for known hosts, 404 for anything else.
pub fn router(tokens: Tokens) -> Router {
    Router::new().route(
        FILE_PATH,
        get(move |headers: HeaderMap| {
            let tokens = tokens.clone();
            async move {
                let host = headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or_default();
                match tokens.get(host) {
                    Some(token) => ([(header::CONTENT_TYPE, "text/plain")], token).into_response(),
                    None => StatusCode::NOT_FOUND.into_response(),
                }
            }
        }),
    )
}

/// Serves the solver on `addr` until the task is dropped.
pub async fn serve(
    addr: SocketAddr,
    tokens: Tokens,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tracing::info!(addr = %bound, "serving domain validation files ({FILE_PATH})");
    let app = router(tokens);
    Ok((
        bound,
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the domain validation solver stopped");
            }
        }),
    ))
}

/// Keeps `tokens` equal to the ConfigMap's data, for as long as the task runs.
pub async fn follow(api: Api<ConfigMap>, name: String, tokens: Tokens) {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = std::pin::pin!(watcher(api, config));
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Apply(cm) | watcher::Event::InitApply(cm)) => {
                tokens.replace(cm.data.unwrap_or_default());
            }
            Ok(watcher::Event::Delete(_)) => tokens.replace(BTreeMap::new()),
            Ok(watcher::Event::Init | watcher::Event::InitDone) => {}
            Err(e) => tracing::warn!(error = %e, "watching the domain validation values"),
        }
    }
}

/// The ConfigMap the values live in, and the solver Service routes point at.
#[derive(Clone, Debug)]
pub struct HttpSolver {
    pub namespace: String,
    pub config_map: String,
    pub service: String,
    pub service_port: i32,
    /// The values this pod serves (and sees, to tell whether a value is out).
    pub tokens: Tokens,
}

impl HttpSolver {
    fn config_maps(&self, client: &kube::Client) -> Api<ConfigMap> {
        Api::namespaced(client.clone(), &self.namespace)
    }

    /// Publishes `token` for `host` (merged into the ConfigMap, which is made if
    /// missing).
    pub async fn put(&self, client: &kube::Client, host: &str, token: &str) -> kube::Result<()> {
        self.patch(client, host, serde_json::Value::String(token.into()))
            .await
    }

    /// Withdraws the value for `host`, if it is still `token` (another order may have
    /// published its own since).
    pub async fn remove(&self, client: &kube::Client, host: &str, token: &str) -> kube::Result<()> {
        let current = self.config_maps(client).get_opt(&self.config_map).await?;
        let published = current
            .and_then(|cm| cm.data)
            .and_then(|d| d.get(&normal_host(host)).cloned());
        if published.as_deref() != Some(token) {
            return Ok(());
        }
        self.patch(client, host, serde_json::Value::Null).await
    }

    async fn patch(
        &self,
        client: &kube::Client,
        host: &str,
        value: serde_json::Value,
    ) -> kube::Result<()> {
        let api = self.config_maps(client);
        let patch = serde_json::json!({ "data": { normal_host(host): value } });
        match api
            .patch(
                &self.config_map,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Err(kube::Error::Api(e)) if e.code == 404 && !value.is_null() => {
                let cm = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(self.config_map.clone()),
                        labels: Some(managed_labels()),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                let params = PatchParams::apply(FIELD_MANAGER);
                api.patch(&self.config_map, &params, &Patch::Apply(&cm))
                    .await?;
                api.patch(
                    &self.config_map,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .map(drop)
            }
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            other => other.map(drop),
        }
    }

    /// Creates (or brings in line) the route of `host` to the solver Service.
    pub async fn route(
        &self,
        client: &kube::Client,
        route: &RouteKind<'_>,
        owner: &str,
        host: &str,
    ) -> kube::Result<()> {
        let name = route_name(owner, host);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        match route {
            RouteKind::Ingress(spec) => {
                let object = ingress(&name, host, spec, self);
                Api::<Ingress>::namespaced(client.clone(), &self.namespace)
                    .patch(&name, &params, &Patch::Apply(&object))
                    .await
                    .map(drop)
            }
            RouteKind::HttpRoute(spec) => {
                let object = http_route(&name, &self.namespace, host, spec, self);
                http_routes(client, &self.namespace)
                    .patch(&name, &params, &Patch::Apply(&object))
                    .await
                    .map(drop)
            }
        }
    }

    /// Deletes the route of `host`, if there is one.
    pub async fn unroute(
        &self,
        client: &kube::Client,
        route: &RouteKind<'_>,
        owner: &str,
        host: &str,
    ) -> kube::Result<()> {
        let name = route_name(owner, host);
        let result = match route {
            RouteKind::Ingress(_) => Api::<Ingress>::namespaced(client.clone(), &self.namespace)
                .delete(&name, &DeleteParams::default())
                .await
                .map(drop),
            RouteKind::HttpRoute(_) => http_routes(client, &self.namespace)
                .delete(&name, &DeleteParams::default())
                .await
                .map(drop),
        };
        match result {
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            other => other,
        }
    }
}

/// Which kind of route sends DigiCert to the solver.
#[derive(Clone, Copy, Debug)]
pub enum RouteKind<'a> {
    Ingress(&'a IngressSolverSpec),
    HttpRoute(&'a HttpRouteSolverSpec),
}

fn managed_labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/managed-by".to_string(),
            "digicert-operator".to_string(),
        ),
        (
            "digicert-operator.dev/component".to_string(),
            "http-solver".to_string(),
        ),
    ])
}

/// A route's name: unique per order (`namespace/name`) and host, within 63 characters.
pub fn route_name(owner: &str, host: &str) -> String {
    use aws_lc_rs::digest::{SHA256, digest};
    let hash = digest(&SHA256, format!("{owner}\n{host}").as_bytes());
    let hex: String = hash.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("digicert-dcv-{hex}")
}

/// An Ingress sending `host`'s validation file path to the solver Service.
pub fn ingress(name: &str, host: &str, spec: &IngressSolverSpec, solver: &HttpSolver) -> Ingress {
    let backend = IngressBackend {
        service: Some(IngressServiceBackend {
            name: solver.service.clone(),
            port: Some(ServiceBackendPort {
                number: Some(solver.service_port),
                name: None,
            }),
        }),
        resource: None,
    };
    Ingress {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(solver.namespace.clone()),
            labels: Some(managed_labels()),
            annotations: (!spec.annotations.is_empty()).then(|| spec.annotations.clone()),
            ..Default::default()
        },
        spec: Some(IngressSpec {
            ingress_class_name: spec.class_name.clone(),
            rules: Some(vec![IngressRule {
                host: Some(host.into()),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some(FILE_PATH.into()),
                        path_type: "Exact".into(),
                        backend,
                    }],
                }),
            }]),
            ..Default::default()
        }),
        status: None,
    }
}

fn http_route_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
        "httproutes",
    )
}

fn http_routes(client: &kube::Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &http_route_resource())
}

/// A Gateway API HTTPRoute sending `host`'s validation file path to the solver
/// Service.
pub fn http_route(
    name: &str,
    namespace: &str,
    host: &str,
    spec: &HttpRouteSolverSpec,
    solver: &HttpSolver,
) -> DynamicObject {
    let parents: Vec<serde_json::Value> = spec
        .parent_refs
        .iter()
        .map(|p| {
            let mut v = serde_json::json!({ "name": p.name });
            if let Some(ns) = &p.namespace {
                v["namespace"] = ns.clone().into();
            }
            if let Some(section) = &p.section_name {
                v["sectionName"] = section.clone().into();
            }
            v
        })
        .collect();
    let mut object = DynamicObject::new(name, &http_route_resource()).within(namespace);
    object.metadata.labels = Some(managed_labels());
    object.data = serde_json::json!({
        "spec": {
            "parentRefs": parents,
            "hostnames": [host],
            "rules": [{
                "matches": [{ "path": { "type": "Exact", "value": FILE_PATH } }],
                "backendRefs": [{ "name": solver.service, "port": solver.service_port }],
            }],
        }
    });
    object
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solver() -> HttpSolver {
        HttpSolver {
            namespace: "digicert-system".into(),
            config_map: "digicert-operator-dcv-http".into(),
            service: "digicert-operator-solver".into(),
            service_port: 8089,
            tokens: Tokens::default(),
        }
    }

    #[test]
    fn hosts_are_compared_without_port_case_or_final_dot() {
        for (given, want) in [
            ("Example.COM", "example.com"),
            ("example.com:80", "example.com"),
            ("www.example.com.", "www.example.com"),
            ("[::1]:8080", "[::1]"),
            (" a.example ", "a.example"),
        ] {
            assert_eq!(normal_host(given), want, "{given}");
        }
    }

    #[test]
    fn route_names_are_stable_short_and_per_order_and_host() {
        let a = route_name("team-a/web", "example.com");
        assert_eq!(a, route_name("team-a/web", "example.com"));
        assert_ne!(a, route_name("team-b/web", "example.com"));
        assert_ne!(a, route_name("team-a/web", "www.example.com"));
        assert!(a.len() <= 63 && a.starts_with("digicert-dcv-"));
    }

    #[test]
    fn ingress_routes_only_the_exact_file_of_the_host() {
        let spec = IngressSolverSpec {
            class_name: Some("nginx".into()),
            annotations: BTreeMap::from([("a".into(), "b".into())]),
        };
        let ing = ingress("r", "www.example.com", &spec, &solver());
        let spec = ing.spec.unwrap();
        assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
        let rule = &spec.rules.unwrap()[0];
        assert_eq!(rule.host.as_deref(), Some("www.example.com"));
        let path = &rule.http.as_ref().unwrap().paths[0];
        assert_eq!(path.path.as_deref(), Some(FILE_PATH));
        assert_eq!(path.path_type, "Exact");
        let svc = path.backend.service.as_ref().unwrap();
        assert_eq!(svc.name, "digicert-operator-solver");
        assert_eq!(svc.port.as_ref().unwrap().number, Some(8089));
        assert_eq!(ing.metadata.namespace.as_deref(), Some("digicert-system"));
    }

    #[test]
    fn http_route_attaches_to_the_gateways_and_matches_the_file() {
        let spec = HttpRouteSolverSpec {
            parent_refs: vec![crate::crd::dcv::ParentRef {
                name: "public".into(),
                namespace: Some("gateways".into()),
                section_name: Some("http".into()),
            }],
        };
        let route = http_route("r", "digicert-system", "example.com", &spec, &solver());
        let s = &route.data["spec"];
        assert_eq!(s["hostnames"][0], "example.com");
        assert_eq!(s["parentRefs"][0]["namespace"], "gateways");
        assert_eq!(s["parentRefs"][0]["sectionName"], "http");
        assert_eq!(s["rules"][0]["matches"][0]["path"]["value"], FILE_PATH);
        assert_eq!(s["rules"][0]["matches"][0]["path"]["type"], "Exact");
        assert_eq!(s["rules"][0]["backendRefs"][0]["port"], 8089);
        assert_eq!(route.types.unwrap().kind, "HTTPRoute");
    }

    #[tokio::test]
    async fn the_solver_answers_known_hosts_only() {
        let tokens = Tokens::default();
        tokens.replace(BTreeMap::from([(
            "example.com".to_string(),
            "tok123".to_string(),
        )]));
        let (addr, task) = serve(SocketAddr::from(([127, 0, 0, 1], 0)), tokens)
            .await
            .unwrap();
        let http = reqwest::Client::new();
        let get = |host: &'static str, path: &'static str| {
            http.get(format!("http://{addr}{path}"))
                .header("Host", host)
                .send()
        };
        let ok = get("EXAMPLE.com:80", FILE_PATH).await.unwrap();
        assert_eq!(ok.status(), 200);
        assert_eq!(ok.text().await.unwrap(), "tok123");
        assert_eq!(get("other.example", FILE_PATH).await.unwrap().status(), 404);
        let wrong_case = "/.well-known/PKI-validation/fileauth.txt";
        assert_eq!(get("example.com", wrong_case).await.unwrap().status(), 404);
        task.abort();
    }
}
