//! Domain validation end to end, in 2029 with DigiCert's 10-day reuse period: the
//! operator binary on the API server, the simulator over HTTPS checking domains for
//! real against a Knot server (DNS) or the operator's own solver listener (HTTP).
//! Nobody acts: a reissue whose domain validation lapsed is validated and issued.

use std::time::Duration;

use crate::support::dcv::{self, NOW, account_with, put_tsig, rfc2136_settings};
use crate::support::dns::AuthoritativeDns;
use crate::support::dns_bridge::DnsBridge;
use crate::support::env::{OperatorEnv, condition};
use certcentral_sim::{OrderSeed, SimulatorConfig};
use digicert_operator::certcentral::Operation;
use digicert_operator::crd::DigicertOrder;
use digicert_operator::dcv::rfc2136::{Rfc2136, Tsig};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DeleteParams};
use kube::runtime::watcher;
use serde_json::json;
use time::OffsetDateTime;
use time::macros::datetime;

const ORDER: u64 = 1001;
const NAMES: &[&str] = &["example.com", "www.example.com"];

fn order_seed() -> OrderSeed {
    let mut seed = crate::support::order(ORDER);
    seed.order_valid_till = Some(datetime!(2031-06-01 0:00 UTC).date());
    seed
}

/// A simulator in 2029 that checks DNS at `dns` (and HTTP at `http`), with the
/// account's domains validated some days ago.
fn simulator(
    dns: Option<std::net::SocketAddr>,
    http: Option<std::net::SocketAddr>,
    domains: &[(&str, &str, i64)],
) -> SimulatorConfig {
    let mut config = OperatorEnv::simulator_config(vec![order_seed()]);
    config.clock_start = Some(NOW);
    config.seed.domains = domains
        .iter()
        .map(|(name, method, days_ago)| dcv::domain(name, method, *days_ago))
        .collect();
    config.dcv.dns_server = dns;
    config.dcv.http_address = http;
    config
}

fn calls(env: &OperatorEnv, op: Operation) -> u64 {
    env.sim.simulator().calls().total(op)
}

fn dcv_condition(o: &DigicertOrder) -> (String, String, String) {
    condition(o, "DomainValidation")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
        .unwrap_or_default()
}

/// Ready with a certificate for the names, issued by DigiCert after the operator's
/// validation, and nothing of the validation left behind.
async fn issued_after_validation(env: &OperatorEnv, name: &str) -> DigicertOrder {
    env.wait_condition(name, "Ready", "True", None, Duration::from_secs(90))
        .await;
    env.verify_secret_at_sim_time(&format!("{name}-tls"), NAMES)
        .await;
    env.wait_event(name, "DomainValidated", Duration::from_secs(10))
        .await;
    env.wait_for(
        name,
        "the validation to be taken down",
        Duration::from_secs(30),
        |o| {
            o.status
                .as_ref()
                .and_then(|s| s.domain_validation.as_ref())
                .is_some_and(|d| d.challenge.is_none())
                && o.metadata.finalizers.as_ref().is_none_or(|f| f.is_empty())
        },
    )
    .await;
    // One look at the validation state, one random value, one check: no more.
    assert_eq!(
        calls(env, Operation::CheckOrderDcv),
        1,
        "{}",
        env.operator_logs()
    );
    assert_eq!(
        calls(env, Operation::OrderRandomValue) + calls(env, Operation::OrderDcvMethod),
        1
    );
    assert_eq!(calls(env, Operation::Reissue), 1);
    env.orders().get(name).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rfc2136_validates_a_lapsed_domain_and_the_reissue_issues_with_no_person() {
    let dns = AuthoritativeDns::start_default().await;
    let config = simulator(
        Some(dns.addr()),
        None,
        &[("example.com", "dns-txt-token", 11)],
    );
    let mut env = OperatorEnv::with_simulator("dcv-rfc2136", config).await;
    put_tsig(&env, &dns).await;
    account_with(&env, rfc2136_settings(&dns, None)).await;
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml("web", ORDER, ""));

    // DigiCert holds the reissue; the operator publishes the order's value, has it
    // checked, and the reissue issues.
    let o = issued_after_validation(&env, "web").await;
    let reasons = env.event_reasons("web").await;
    assert!(reasons.iter().any(|r| r == "Validating"), "{reasons:?}");
    let logs = env.operator_logs();
    assert!(
        !logs.contains(&dns.tsig().2),
        "the TSIG secret is in the log"
    );
    let dcv = o.status.unwrap().domain_validation.unwrap();
    assert_eq!(dcv.method.as_deref(), Some("dns-txt-token"));
    // The record is gone; the zone's own TXT stays.
    dns.wait_until("the token TXT to go", Duration::from_secs(10), async || {
        dns.txt("example.com").await == vec![crate::support::dns::APEX_SPF.to_string()]
    })
    .await;
    // DigiCert's validation is current again: the next reissue does not wait.
    env.cluster.kubectl_ok(
        &[
            "annotate",
            "dco",
            "web",
            "digicert-operator.dev/renew=1",
            "--overwrite",
        ],
        None,
    );
    env.wait_for("web", "revision 2", Duration::from_secs(60), |o| {
        o.status.as_ref().is_some_and(|s| s.revision == 2)
    })
    .await;
    assert_eq!(calls(&env, Operation::CheckOrderDcv), 1);
    assert_eq!(calls(&env, Operation::OrderRandomValue), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dnsendpoint_records_reach_dns_through_external_dns() {
    let dns = AuthoritativeDns::start_default().await;
    let config = simulator(
        Some(dns.addr()),
        None,
        &[("example.com", "dns-txt-token", 30)],
    );
    let mut env = OperatorEnv::with_simulator("dcv-dnsendpoint", config).await;
    install_dnsendpoint_crd(&env);
    // external-dns's part: DNSEndpoints of the namespace become records at Knot.
    let (key, algorithm, secret) = dns.tsig();
    let updater =
        Rfc2136::new(dns.addr()).with_tsig(Tsig::from_base64(&key, &algorithm, &secret).unwrap());
    let _bridge = DnsBridge::start(
        env.cluster.client.clone(),
        Some(&env.cluster.namespace),
        updater,
    );
    let seen = record_dnsendpoints(&env).await;
    env.operator_args = vec!["--dcv-dns-resolver".into(), dns.addr().to_string()];
    env.start_operator();
    // The order's own settings (the account has none).
    env.apply(&OperatorEnv::order_yaml(
        "web",
        ORDER,
        "  domainValidation:\n    method: dns-txt-token\n    dns:\n      dnsEndpoint:\n        labels: {dns: public}\n        ttl: 30\n",
    ));
    issued_after_validation(&env, "web").await;

    let seen = seen.await_objects().await;
    let endpoint = seen.first().expect("a DNSEndpoint was made");
    assert_eq!(endpoint["metadata"]["labels"]["dns"], "public");
    assert_eq!(
        endpoint["metadata"]["ownerReferences"][0]["kind"],
        "DigicertOrder"
    );
    assert_eq!(endpoint["spec"]["endpoints"][0]["dnsName"], "example.com");
    assert_eq!(endpoint["spec"]["endpoints"][0]["recordType"], "TXT");
    assert_eq!(endpoint["spec"]["endpoints"][0]["recordTTL"], 30);
    let api: Api<digicert_operator::dcv::dnsendpoint::DNSEndpoint> = env.cluster.api();
    assert!(
        api.list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    dns.wait_until("the token TXT to go", Duration::from_secs(10), async || {
        dns.txt("example.com").await == vec![crate::support::dns::APEX_SPF.to_string()]
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http_token_is_served_by_the_operator_and_routed_by_ingresses() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let solver: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let config = simulator(
        None,
        Some(solver),
        &[
            ("example.com", "dns-txt-token", 11),
            ("www.example.com", "dns-txt-token", 11),
        ],
    );
    let mut env = OperatorEnv::with_simulator("dcv-http", config).await;
    account_with(
        &env,
        json!({"method": "http-token", "http": {"ingress": {"className": "nginx"}}}),
    )
    .await;
    let ingresses = record_ingresses(&env).await;
    env.operator_args = vec![
        "--dcv-http-listen".into(),
        solver.to_string(),
        "--dcv-http-service".into(),
        "dcv-solver:80".into(),
        "--dcv-http-configmap".into(),
        "dcv-http".into(),
    ];
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml("web", ORDER, ""));
    issued_after_validation(&env, "web").await;

    // An Ingress per name, for the exact file, to the solver Service; gone now.
    let mut hosts: Vec<(String, String, String, i32)> = ingresses
        .await_objects()
        .await
        .iter()
        .map(|i| {
            let rule = &i["spec"]["rules"][0];
            let path = &rule["http"]["paths"][0];
            assert_eq!(path["pathType"], "Exact");
            assert_eq!(i["spec"]["ingressClassName"], "nginx");
            (
                rule["host"].as_str().unwrap().to_string(),
                path["path"].as_str().unwrap().to_string(),
                path["backend"]["service"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                path["backend"]["service"]["port"]["number"]
                    .as_i64()
                    .unwrap() as i32,
            )
        })
        .collect();
    hosts.sort();
    hosts.dedup();
    let file = "/.well-known/pki-validation/fileauth.txt";
    assert_eq!(
        hosts,
        NAMES
            .iter()
            .map(|h| (
                h.to_string(),
                file.to_string(),
                "dcv-solver".to_string(),
                80
            ))
            .collect::<Vec<_>>()
    );
    let api: Api<Ingress> = env.cluster.api();
    assert!(
        api.list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let cm: Api<ConfigMap> = env.cluster.api();
    let values = cm.get("dcv-http").await.unwrap().data.unwrap_or_default();
    assert!(values.is_empty(), "values still served: {values:?}");
    // The solver no longer answers for the names.
    let answer = reqwest::Client::new()
        .get(format!("http://{solver}{file}"))
        .header("Host", "example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http_token_routes_through_a_gateway_with_httproutes() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let solver: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let config = simulator(
        None,
        Some(solver),
        &[
            ("example.com", "dns-txt-token", 11),
            ("www.example.com", "dns-txt-token", 11),
        ],
    );
    let mut env = OperatorEnv::with_simulator("dcv-httproute", config).await;
    env.cluster.kubectl_ok(
        &[
            "apply",
            "--server-side",
            "-f",
            "crates/digicert-operator/tests/fixtures/gateway-httproute-crd.yaml",
        ],
        None,
    );
    crate::support::cluster::wait_established(
        &env.cluster.kubeconfig,
        &["httproutes.gateway.networking.k8s.io"],
    );
    let routes = record_watch::<kube::api::DynamicObject>(Api::namespaced_with(
        env.cluster.client.clone(),
        &env.cluster.namespace,
        &kube::core::ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
            "httproutes",
        ),
    ))
    .await;
    env.operator_args = vec![
        "--dcv-http-listen".into(),
        solver.to_string(),
        "--dcv-http-service".into(),
        "dcv-solver:8089".into(),
    ];
    env.start_operator();
    // The order's own settings; the Gateway is the platform's.
    env.apply(&OperatorEnv::order_yaml(
        "web",
        ORDER,
        "  domainValidation:\n    method: http-token\n    http:\n      gatewayHTTPRoute:\n        parentRefs: [{name: public, namespace: gateways, sectionName: http}]\n",
    ));
    issued_after_validation(&env, "web").await;
    let mut seen: Vec<(String, String, i64)> = routes
        .await_objects()
        .await
        .iter()
        .map(|r| {
            let spec = &r["spec"];
            assert_eq!(
                spec["parentRefs"],
                json!([{"name": "public", "namespace": "gateways", "sectionName": "http"}])
            );
            let rule = &spec["rules"][0];
            assert_eq!(
                rule["matches"][0]["path"],
                json!({"type": "Exact", "value": "/.well-known/pki-validation/fileauth.txt"})
            );
            (
                spec["hostnames"][0].as_str().unwrap().to_string(),
                rule["backendRefs"][0]["name"].as_str().unwrap().to_string(),
                rule["backendRefs"][0]["port"].as_i64().unwrap(),
            )
        })
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen,
        NAMES
            .iter()
            .map(|h| (h.to_string(), "dcv-solver".to_string(), 8089))
            .collect::<Vec<_>>()
    );
    let out = env
        .cluster
        .kubectl_ok(&["get", "httproutes", "-o", "name"], None);
    assert!(out.trim().is_empty(), "routes left: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http_token_refuses_wildcards_and_tenant_ingress_annotations_before_any_token() {
    let mut seed = order_seed();
    seed.dns_names = vec!["*.example.com".into()];
    let mut config = OperatorEnv::simulator_config(vec![seed]);
    config.clock_start = Some(NOW);
    config.seed.domains = vec![dcv::domain("example.com", "dns-txt-token", 11)];
    let mut env = OperatorEnv::with_simulator("dcv-http-refusals", config).await;
    env.operator_args = vec!["--dcv-http-listen".into(), "127.0.0.1:0".into()];
    env.start_operator();
    let http = "  domainValidation:\n    method: http-token\n    http:\n      ingress: {className: nginx}\n";
    env.apply(&OperatorEnv::order_yaml("wild", ORDER, http).replace(
        "dnsNames: [www.example.com]",
        "dnsNames: [\"*.example.com\"]",
    ));
    let o = env
        .wait_condition(
            "wild",
            "DomainValidation",
            "False",
            Some("Unsupported"),
            Duration::from_secs(60),
        )
        .await;
    let (_, _, message) = dcv_condition(&o);
    assert!(
        message.contains("*.example.com") && message.contains("dns-txt-token"),
        "{message}"
    );
    env.wait_event("wild", "Unsupported", Duration::from_secs(5))
        .await;
    assert_eq!(calls(&env, Operation::OrderRandomValue), 0);
    assert_eq!(calls(&env, Operation::OrderDcvMethod), 0);
    assert_eq!(calls(&env, Operation::CheckOrderDcv), 0);
    let api: Api<Ingress> = env.cluster.api();
    assert!(
        api.list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // A tenant's annotations on an Ingress in the operator's namespace: refused.
    env.orders()
        .delete("wild", &DeleteParams::default())
        .await
        .unwrap();
    // (It drops the wildcard of the order's certificate: agreed to, to get that far.)
    let annotated = "  allowRevocationOfPrevious: true\n  domainValidation:\n    method: http-token\n    http:\n      ingress:\n        annotations: {nginx.ingress.kubernetes.io/configuration-snippet: \"return 200;\"}\n";
    env.apply(&OperatorEnv::order_yaml("snippet", ORDER, annotated));
    let o = env
        .wait_condition(
            "snippet",
            "DomainValidation",
            "False",
            Some("InvalidSettings"),
            Duration::from_secs(60),
        )
        .await;
    let (_, _, message) = dcv_condition(&o);
    assert!(message.contains("DigicertAccount"), "{message}");
    assert!(
        api.list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(calls(&env, Operation::OrderDcvMethod), 0);
    assert_eq!(calls(&env, Operation::CheckOrderDcv), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_validation_that_cannot_succeed_says_why_without_hammering_digicert() {
    let dns = AuthoritativeDns::start_default().await;
    // DigiCert asks a second server, which never gets the record.
    let elsewhere = AuthoritativeDns::start_default().await;
    let config = simulator(
        Some(elsewhere.addr()),
        None,
        &[("example.com", "dns-txt-token", 11)],
    );
    let mut env = OperatorEnv::with_simulator("dcv-failing", config).await;
    put_tsig(&env, &dns).await;
    // A zone the names are not in: nothing can be published.
    account_with(&env, rfc2136_settings(&dns, Some("example.org"))).await;
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml("web", ORDER, ""));
    let o = env
        .wait_condition(
            "web",
            "DomainValidation",
            "False",
            Some("PublishFailed"),
            Duration::from_secs(60),
        )
        .await;
    let (_, _, message) = dcv_condition(&o);
    assert!(
        message.contains("TXT example.com") && message.contains("example.org"),
        "{message}"
    );
    env.wait_event("web", "PublishFailed", Duration::from_secs(5))
        .await;
    // Backing off, and never asking DigiCert to check what is not out.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(calls(&env, Operation::CheckOrderDcv), 0);
    assert!(calls(&env, Operation::OrderRandomValue) <= 1);
    assert!(calls(&env, Operation::OrderValidation) <= 1);

    // The right zone: published and visible at the operator's server, but DigiCert
    // looks elsewhere and says what it saw.
    account_with(&env, rfc2136_settings(&dns, None)).await;
    let o = env
        .wait_condition(
            "web",
            "DomainValidation",
            "False",
            Some("CheckFailed"),
            Duration::from_secs(90),
        )
        .await;
    let (_, _, message) = dcv_condition(&o);
    assert!(
        message.contains("invalid_dns_txt") && message.contains("example.com"),
        "{message}"
    );
    env.wait_event("web", "ValidationCheckFailed", Duration::from_secs(5))
        .await;
    let checks = calls(&env, Operation::CheckOrderDcv);
    tokio::time::sleep(Duration::from_secs(10)).await;
    // The next check waits 30 s (doubling): none in these 10 s.
    assert_eq!(
        calls(&env, Operation::CheckOrderDcv),
        checks,
        "{}",
        env.operator_logs()
    );
    let status = env.orders().get("web").await.unwrap().status.unwrap();
    let challenge = status.domain_validation.unwrap().challenge.unwrap();
    assert!(challenge.records.iter().all(|r| r.visible));
    assert!(challenge.next_check.is_some());
    assert_eq!(status.certificate, None);

    // Deleting the resource takes the record down.
    env.orders()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    dns.wait_until("the token TXT to go", Duration::from_secs(30), async || {
        dns.txt("example.com").await == vec![crate::support::dns::APEX_SPF.to_string()]
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_record_that_never_shows_is_reported_and_digicert_is_not_asked() {
    let dns = AuthoritativeDns::start_default().await;
    let config = simulator(
        Some(dns.addr()),
        None,
        &[("example.com", "dns-txt-token", 11)],
    );
    let mut env = OperatorEnv::with_simulator("dcv-not-visible", config).await;
    install_dnsendpoint_crd(&env);
    // No external-dns: the DNSEndpoint is made but no record ever appears.
    account_with(
        &env,
        json!({"method": "dns-txt-token", "dns": {"dnsEndpoint": {}}}),
    )
    .await;
    env.operator_args = vec!["--dcv-dns-resolver".into(), dns.addr().to_string()];
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml("web", ORDER, ""));
    let o = env
        .wait_condition(
            "web",
            "DomainValidation",
            "False",
            Some("RecordNotVisible"),
            Duration::from_secs(60),
        )
        .await;
    let (_, _, message) = dcv_condition(&o);
    assert!(
        message.contains("TXT example.com") && message.contains(&dns.addr().to_string()),
        "{message}"
    );
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(calls(&env, Operation::CheckOrderDcv), 0);
    let o = env.orders().get("web").await.unwrap();
    let looks = o
        .status
        .unwrap()
        .domain_validation
        .unwrap()
        .challenge
        .unwrap()
        .looks;
    // 2 s, then 5 s doubling: a handful of looks, not a loop.
    assert!((1..=4).contains(&looks), "{looks} looks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_validation_about_to_lapse_is_renewed_ahead_so_the_reissue_never_waits() {
    let dns = AuthoritativeDns::start_default().await;
    // The plan ahead of a renewal runs on the operator's clock: DigiCert's must agree,
    // so the simulator keeps real time, with the 10-day reuse period.
    let today = OffsetDateTime::now_utc();
    let mut config = simulator(Some(dns.addr()), None, &[]);
    config.clock_start = None;
    config.reuse_schedule = dcv::ten_day_reuse_today();
    config.seed.domains = vec![dcv::domain_at(
        "example.com",
        "dns-txt-token",
        today - time::Duration::days(9),
    )];
    // Three-day certificates: the renewal is two days away, after the validation
    // lapses (in one day).
    config.seed.orders[0].certificate_validity_seconds = Some(3 * 86400);
    let mut env = OperatorEnv::with_simulator("dcv-ahead", config).await;
    put_tsig(&env, &dns).await;
    account_with(&env, rfc2136_settings(&dns, None)).await;
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml("web", ORDER, ""));
    env.wait_ready("web").await;
    // The domain is validated again with its own value, before any reissue waits.
    let o = env
        .wait_for(
            "web",
            "the validation renewed",
            Duration::from_secs(60),
            |o| {
                let domains = o
                    .status
                    .as_ref()
                    .and_then(|s| s.domain_validation.as_ref())
                    .map(|d| d.domains.clone())
                    .unwrap_or_default();
                domains.iter().any(|d| {
                    d.name == "example.com"
                        && d.state == "Validated"
                        && d.expires
                            .as_ref()
                            .map(digicert_operator::controller::status::offset)
                            > Some(today + time::Duration::days(9))
                })
            },
        )
        .await;
    assert_eq!(dcv_condition(&o).0, "True");
    assert_eq!(calls(&env, Operation::SubmitDomainValidation), 1);
    assert_eq!(calls(&env, Operation::CheckDomainDcv), 1);
    assert_eq!(calls(&env, Operation::OrderRandomValue), 0);
    // The metric shows the new expiry.
    let metrics = reqwest::get(format!("{}/metrics", env.http_base()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("digicert_operator_domain_validation_expiration_timestamp_seconds{")
            && metrics.contains(r#"domain="example.com""#),
        "{metrics}"
    );
    // The planned renewal, two days on: issued at once, no validation needed.
    env.sim.simulator().advance_clock(time::Duration::hours(47));
    env.cluster.kubectl_ok(
        &[
            "annotate",
            "dco",
            "web",
            "digicert-operator.dev/renew=1",
            "--overwrite",
        ],
        None,
    );
    env.wait_for("web", "revision 2", Duration::from_secs(60), |o| {
        o.status.as_ref().is_some_and(|s| s.revision == 2)
    })
    .await;
    assert_eq!(calls(&env, Operation::OrderRandomValue), 0);
    assert_eq!(calls(&env, Operation::CheckOrderDcv), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_validation_lapsing_long_before_the_reissue_is_renewed_only_ahead_of_it() {
    let dns = AuthoritativeDns::start_default().await;
    let today = OffsetDateTime::now_utc();
    let mut config = simulator(Some(dns.addr()), None, &[]);
    config.clock_start = None;
    config.reuse_schedule = dcv::ten_day_reuse_today();
    config.seed.domains = vec![dcv::domain_at(
        "example.com",
        "dns-txt-token",
        today - time::Duration::days(1),
    )];
    let mut env = OperatorEnv::with_simulator("dcv-not-yet", config).await;
    put_tsig(&env, &dns).await;
    account_with(&env, rfc2136_settings(&dns, None)).await;
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml("web", ORDER, ""));
    // A 199-day certificate: the validation (9 days left) lapses long before the
    // renewal; validating now would not outlast it, so it waits for the renewal.
    let o = env
        .wait_condition(
            "web",
            "DomainValidation",
            "True",
            Some("RenewalScheduled"),
            Duration::from_secs(60),
        )
        .await;
    let (_, _, message) = dcv_condition(&o);
    let renewal = o.status.as_ref().unwrap().renewal_time.clone().unwrap();
    assert!(message.contains("example.com"), "{message}");
    let dcv = o.status.unwrap().domain_validation.unwrap();
    assert_eq!(dcv.domains[0].state, "Expiring");
    assert!(dcv.next_check.unwrap() < renewal);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        calls(&env, Operation::OrderValidation),
        1,
        "{}",
        env.operator_logs()
    );
    assert_eq!(calls(&env, Operation::SubmitDomainValidation), 0);
    assert_eq!(calls(&env, Operation::CheckDomainDcv), 0);
}

/// Objects of one kind seen in the namespace while the test runs.
struct Seen {
    task: tokio::task::JoinHandle<()>,
    objects: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

impl Seen {
    async fn await_objects(self) -> Vec<serde_json::Value> {
        self.task.abort();
        self.objects.lock().unwrap().clone()
    }
}

/// external-dns's DNSEndpoint CRD, from the schema in deploy/externaldns.
fn install_dnsendpoint_crd(env: &OperatorEnv) {
    env.cluster.kubectl_ok(
        &[
            "apply",
            "--server-side",
            "-f",
            "deploy/externaldns/dnsendpoint-crd.yaml",
        ],
        None,
    );
}

/// Records every version of the objects the watch sees; returns once its first list
/// is done, so that nothing created afterwards can be missed.
async fn record_watch<K>(api: Api<K>) -> Seen
where
    K: kube::Resource
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + serde::Serialize
        + Send
        + 'static,
{
    let objects = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let out = objects.clone();
    let (listed, ready) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut listed = Some(listed);
        let mut events = watcher(api, watcher::Config::default()).boxed();
        while let Some(event) = events.next().await {
            match event {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                    out.lock().unwrap().push(serde_json::to_value(&o).unwrap());
                }
                Ok(watcher::Event::InitDone) => {
                    if let Some(tx) = listed.take() {
                        let _ = tx.send(());
                    }
                }
                _ => {}
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(30), ready)
        .await
        .expect("the watch lists within 30 s")
        .expect("the watch runs");
    Seen { task, objects }
}

async fn record_ingresses(env: &OperatorEnv) -> Seen {
    record_watch::<Ingress>(env.cluster.api()).await
}

async fn record_dnsendpoints(env: &OperatorEnv) -> Seen {
    record_watch::<digicert_operator::dcv::dnsendpoint::DNSEndpoint>(env.cluster.api()).await
}
