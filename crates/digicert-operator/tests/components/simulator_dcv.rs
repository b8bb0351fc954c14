//! Domain control validation in the simulator: reuse periods by the clock date, real
//! HTTP and DNS checks (a local web server, a real authoritative DNS server), and
//! DigiCert's own polling, driven through the real CertCentral client.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::dns::AuthoritativeDns;
use crate::support::{KEY, client, example_reissue, order};
use certcentral_sim::admin::AdminClient;
use certcentral_sim::{
    self, ApiKeyConfig, DomainPatch, DomainSeed, OrderSeed, RunningSimulator, SeedFile,
    SimulatorConfig, VaConfig,
};
use digicert_operator::certcentral::dcv::DcvMethod;
use digicert_operator::certcentral::{Client, Operation, OrderStatus, ReissueStatus};
use digicert_operator::dcv::record::DnsRecord;
use digicert_operator::dcv::rfc2136::{Rfc2136, Tsig};
use time::OffsetDateTime;
use time::macros::datetime;

fn config(orders: Vec<OrderSeed>, domains: Vec<DomainSeed>) -> SimulatorConfig {
    SimulatorConfig {
        seed: SeedFile {
            api_keys: vec![ApiKeyConfig::new(KEY)],
            orders,
            domains,
            ..SeedFile::default()
        },
        rate_limits: Vec::new(),
        ..SimulatorConfig::default()
    }
}

/// An order whose domains were never validated.
fn unvalidated(id: u64) -> OrderSeed {
    let mut seed = order(id);
    seed.validation_current = false;
    seed
}

fn domain(name: &str, validated_at: OffsetDateTime) -> DomainSeed {
    DomainSeed {
        name: name.into(),
        validated_at: Some(validated_at),
        validated: true,
        dcv_method: None,
    }
}

async fn reissue_status(c: &Client, order: u64) -> ReissueStatus {
    c.list_reissues(order).await.unwrap()[0].status.clone()
}

/// Polls `check` every 20 ms until it holds; panics with `what` after `timeout`.
async fn wait_for<F: AsyncFnMut() -> bool>(what: &str, timeout: Duration, mut check: F) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A plain HTTP server on loopback answering `/.well-known/pki-validation/fileauth.txt`
/// with the body set in `file` (404 while it is `None`), recording the Host headers.
struct FileServer {
    addr: SocketAddr,
    file: Arc<Mutex<Option<String>>>,
    hosts: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FileServer {
    async fn start() -> Self {
        use axum::http::{HeaderMap, StatusCode};
        let file: Arc<Mutex<Option<String>>> = Arc::default();
        let hosts: Arc<Mutex<Vec<String>>> = Arc::default();
        let (f, h) = (file.clone(), hosts.clone());
        let app = axum::Router::new().route(
            "/.well-known/pki-validation/fileauth.txt",
            axum::routing::get(move |headers: HeaderMap| {
                let (f, h) = (f.clone(), h.clone());
                async move {
                    let host = headers
                        .get("host")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    h.lock().unwrap().push(host.to_string());
                    match f.lock().unwrap().clone() {
                        Some(body) => (StatusCode::OK, body),
                        None => (StatusCode::NOT_FOUND, "not here".to_string()),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FileServer {
            addr,
            file,
            hosts,
            task,
        }
    }

    fn serve(&self, body: &str) {
        *self.file.lock().unwrap() = Some(body.to_string());
    }

    fn hosts(&self) -> Vec<String> {
        self.hosts.lock().unwrap().clone()
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn http_simulator(
    orders: Vec<OrderSeed>,
    files: &FileServer,
    speedup: u32,
) -> RunningSimulator {
    let mut config = config(orders, Vec::new());
    config.dcv = VaConfig {
        http_address: Some(files.addr),
        poll_speedup: speedup,
        ..VaConfig::default()
    };
    certcentral_sim::start(config).await.unwrap()
}

#[tokio::test]
async fn in_2029_a_validation_from_11_days_ago_holds_the_reissue() {
    let now = datetime!(2029-06-01 0:00 UTC);
    let mut config = config(
        vec![order(1001)],
        vec![domain("example.com", now - time::Duration::days(11))],
    );
    config.clock_start = Some(now);
    let sim = certcentral_sim::start(config).await.unwrap();
    let c = client(&sim, KEY);

    let (_, req) = example_reissue();
    c.reissue(1001, &req).await.unwrap();
    assert_eq!(reissue_status(&c, 1001).await, ReissueStatus::Pending);
    assert_eq!(
        c.order_info(1001).await.unwrap().status,
        OrderStatus::ReissuePending
    );

    let v = c.order_validation(1001).await.unwrap();
    assert_eq!(v.dns_name_validations.len(), 1, "{v:?}");
    let dv = &v.dns_name_validations[0];
    assert_eq!(dv.name_scope, "example.com");
    assert_eq!(dv.status, "pending");
    assert_eq!(dv.approval_scope.as_deref(), Some("subdomains"));
    assert_eq!(dv.dns_names, ["example.com", "www.example.com"]);
    // Approval + the 10-day period in force in 2029.
    assert_eq!(
        dv.approval_expiration_date.as_deref(),
        Some("2029-05-31T00:00:00+00:00")
    );
    let d = &c.find_domains("example.com").await.unwrap()[0];
    assert_eq!(d.is_pending_validation, Some(true));

    // Nine days ago is inside the period: the reissue issues, on the 2029 clock.
    let admin = sim.simulator();
    admin
        .patch_domain(
            "example.com",
            &DomainPatch {
                validated_at: Some(admin.now() - time::Duration::days(9)),
                ..DomainPatch::default()
            },
        )
        .unwrap();
    assert_eq!(reissue_status(&c, 1001).await, ReissueStatus::Issued);
    let info = c.order_info(1001).await.unwrap();
    let issued = info.certificate.date_issued.unwrap_or_default();
    assert!(issued.starts_with("2029-06-01T"), "{issued}");
    let from = info.certificate.valid_from.unwrap_or_default();
    assert!(from.starts_with("2029-"), "{from}");
}

#[tokio::test]
async fn http_token_check_dcv_finds_the_file_or_says_what_it_saw() {
    let files = FileServer::start().await;
    let sim = http_simulator(vec![unvalidated(1001)], &files, 1).await;
    let c = client(&sim, KEY);
    let token = c
        .set_order_dcv_method(1001, DcvMethod::HttpToken)
        .await
        .unwrap()
        .expect("a token method answers with the random value")
        .dcv_random_value;
    let (_, req) = example_reissue();
    c.reissue(1001, &req).await.unwrap();
    assert_eq!(reissue_status(&c, 1001).await, ReissueStatus::Pending);

    let err = c.check_order_dcv(1001).await.unwrap_err();
    assert!(err.has_code("file_random_value_not_found"), "{err}");
    assert!(
        err.to_string()
            .contains("http://example.com/.well-known/pki-validation/fileauth.txt answered 404"),
        "{err}"
    );
    files.serve("wrong-value\n");
    let err = c.check_order_dcv(1001).await.unwrap_err();
    assert!(
        err.to_string()
            .contains(r#"answered 200 with "wrong-value""#),
        "{err}"
    );
    assert_eq!(reissue_status(&c, 1001).await, ReissueStatus::Pending);

    files.serve(&format!("  {token}\n"));
    let answer = c.check_order_dcv(1001).await.unwrap();
    assert_eq!(answer.order_status.as_deref(), Some("issued"));
    assert_eq!(answer.dcv_status.as_deref(), Some("valid"));
    assert_eq!(reissue_status(&c, 1001).await, ReissueStatus::Issued);
    // File methods validate each FQDN exactly, each asked for by its own name.
    let hosts = files.hosts();
    assert!(hosts.iter().any(|h| h == "example.com"), "{hosts:?}");
    assert!(hosts.iter().any(|h| h == "www.example.com"), "{hosts:?}");
}

#[tokio::test]
async fn http_token_refuses_an_order_of_wildcards_only() {
    let mut seed = unvalidated(1001);
    seed.common_name = "*.example.com".into();
    seed.dns_names = Vec::new();
    let files = FileServer::start().await;
    let sim = http_simulator(vec![seed], &files, 1).await;
    let c = client(&sim, KEY);
    let err = c
        .set_order_dcv_method(1001, DcvMethod::HttpToken)
        .await
        .unwrap_err();
    assert!(err.has_code("invalid_wildcard_dcv_method"), "{err}");
    let err = c
        .set_order_dcv_method(1001, DcvMethod::Other("carrier-pigeon".into()))
        .await
        .unwrap_err();
    assert!(err.has_code("invalid_dcv_method"), "{err}");
    assert!(
        c.set_order_dcv_method(1001, DcvMethod::Email)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn digicert_polling_issues_the_reissue_once_the_file_appears() {
    let files = FileServer::start().await;
    // One minute of the schedule is 100 ms.
    let sim = http_simulator(vec![unvalidated(1001)], &files, 600).await;
    let c = client(&sim, KEY);
    let token = c
        .set_order_dcv_method(1001, DcvMethod::HttpToken)
        .await
        .unwrap()
        .unwrap()
        .dcv_random_value;
    let (_, req) = example_reissue();
    c.reissue(1001, &req).await.unwrap();

    // DigiCert looks by itself, and finds nothing yet.
    let admin = sim.simulator().clone();
    wait_for(
        "a failed scheduled check",
        Duration::from_secs(10),
        async || {
            admin.domains().iter().any(|d| {
                d.last_check_error
                    .as_deref()
                    .is_some_and(|e| e.contains("answered 404"))
            })
        },
    )
    .await;
    assert_eq!(reissue_status(&c, 1001).await, ReissueStatus::Pending);

    files.serve(&token);
    wait_for(
        "the reissue to issue",
        Duration::from_secs(10),
        async || reissue_status(&c, 1001).await == ReissueStatus::Issued,
    )
    .await;
    assert_eq!(sim.simulator().calls().total(Operation::CheckOrderDcv), 0);
    assert!(
        sim.simulator()
            .domains()
            .iter()
            .all(|d| !d.pending_validation)
    );
}

#[tokio::test]
async fn domain_level_flow_submit_token_validate() {
    let files = FileServer::start().await;
    let sim = http_simulator(vec![order(1001)], &files, 1).await;
    let c = client(&sim, KEY);
    let before = sim.simulator().now();
    let d = c.find_domains("example.com").await.unwrap();
    assert_eq!(d.len(), 1, "{d:?}");
    let id = d[0].id;
    assert!(d[0].dcv_approval_datetime.is_some());

    let first = c
        .submit_domain_validation(id, DcvMethod::HttpToken)
        .await
        .unwrap()
        .expect("a token");
    assert_eq!(first.status.as_deref(), Some("pending"));
    assert_eq!(
        first.http_token_url.as_deref(),
        Some("http://example.com/.well-known/pki-validation/fileauth.txt")
    );
    let info = c.domain_info(id).await.unwrap();
    assert_eq!(info.is_pending_validation, Some(true));
    assert_eq!(
        info.dcv_token.as_ref().map(|t| &t.token),
        Some(&first.token)
    );

    // Renewing early: the old approval still lets a reissue issue.
    let (_, req) = example_reissue();
    c.reissue(1001, &req).await.unwrap();
    assert_eq!(reissue_status(&c, 1001).await, ReissueStatus::Issued);

    // A new domain value replaces the old one.
    let second = c.new_domain_token(id).await.unwrap();
    assert_ne!(second.token, first.token);
    files.serve(&first.token);
    let err = c.check_domain_dcv(id).await.unwrap_err();
    assert!(err.has_code("file_random_value_not_found"), "{err}");
    assert!(
        err.to_string().contains(&format!("with {:?}", first.token)),
        "{err}"
    );

    files.serve(&second.token);
    let ok = c.check_domain_dcv(id).await.unwrap();
    assert_eq!(ok.status, "active");
    assert_eq!(ok.token.as_deref(), Some(second.token.as_str()));
    let info = c.domain_info(id).await.unwrap();
    assert_eq!(info.is_pending_validation, Some(false));
    let approved = info.dcv_approval_datetime.expect("approved");
    let approved =
        OffsetDateTime::parse(&approved, &time::format_description::well_known::Rfc3339).unwrap();
    assert!(approved >= before.replace_nanosecond(0).unwrap());

    // Email cannot have a token; an unknown domain is a 404.
    c.set_domain_dcv_method(id, DcvMethod::Email).await.unwrap();
    let err = c.new_domain_token(id).await.unwrap_err();
    assert!(err.has_code("invalid_dcv_method"), "{err}");
    assert_eq!(c.domain_info(999).await.unwrap_err().status(), Some(404));
    // `%25` searches names containing the rest.
    assert_eq!(c.find_domains("%25ample.co").await.unwrap().len(), 1);
    assert!(c.find_domains("ample.com").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_lapsed_validation_through_the_admin_api_holds_auto_reissue_too() {
    let mut seed = order(1001);
    seed.auto_reissue = true;
    seed.certificate_validity_seconds = Some(40 * 86_400);
    let sim = certcentral_sim::start(config(vec![seed], Vec::new()))
        .await
        .unwrap();
    let c = client(&sim, KEY);
    sim.simulator()
        .patch_domain(
            "example.com",
            &DomainPatch {
                validated: Some(false),
                ..DomainPatch::default()
            },
        )
        .unwrap();
    // Inside the auto-reissue window: DigiCert makes the reissue, which waits for DCV.
    sim.simulator().advance_clock(time::Duration::days(11));
    assert_eq!(reissue_status(&c, 1001).await, ReissueStatus::Pending);
    let d = &c.find_domains("example.com").await.unwrap()[0];
    assert_eq!(d.is_pending_validation, Some(true));
    sim.simulator()
        .patch_domain(
            "example.com",
            &DomainPatch {
                validated: Some(true),
                ..DomainPatch::default()
            },
        )
        .unwrap();
    assert_eq!(reissue_status(&c, 1001).await, ReissueStatus::Issued);
}

#[tokio::test]
async fn the_admin_api_sets_the_clock_and_lapses_domains_and_the_state_file_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(vec![order(1001)], Vec::new());
    cfg.state_file = Some(dir.path().join("state.json"));
    let sim = certcentral_sim::start(cfg.clone()).await.unwrap();
    let admin = AdminClient::new(&sim.admin_url(), sim.ca_pem(), None).unwrap();
    let c = client(&sim, KEY);

    let at = datetime!(2029-06-01 0:00 UTC);
    let clock = admin.set_clock(at).await.unwrap();
    assert!(
        clock["now"]
            .as_str()
            .unwrap()
            .starts_with("2029-06-01T00:00:0"),
        "{clock}"
    );
    // Validated at seed time (in 2026): long lapsed in 2029.
    let (_, req) = example_reissue();
    c.reissue(1001, &req).await.unwrap();
    assert_eq!(reissue_status(&c, 1001).await, ReissueStatus::Pending);

    let added = admin
        .add_domain(&DomainSeed {
            name: "shop.example.org".into(),
            dcv_method: Some(DcvMethod::HttpToken),
            validated_at: None,
            validated: false,
        })
        .await
        .unwrap();
    assert_eq!(added["dcv_approval"], serde_json::Value::Null);
    let patched = admin
        .patch_domain(
            "example.com",
            &DomainPatch {
                validated: Some(true),
                ..DomainPatch::default()
            },
        )
        .await
        .unwrap();
    assert!(
        patched["dcv_approval"]
            .as_str()
            .unwrap()
            .starts_with("2029-06-01")
    );
    assert_eq!(reissue_status(&c, 1001).await, ReissueStatus::Issued);
    admin
        .patch_domain(
            "example.com",
            &DomainPatch {
                validated: Some(false),
                ..DomainPatch::default()
            },
        )
        .await
        .unwrap();
    let err = admin
        .patch_domain("nowhere.example", &DomainPatch::default())
        .await
        .unwrap_err();
    assert_eq!(err.status, Some(404));
    sim.stop().await;

    // After a restart the domains, their approvals and the clock are as they were.
    cfg.clock_start = None;
    let sim = certcentral_sim::start(cfg).await.unwrap();
    let domains = sim.simulator().domains();
    let names: Vec<(&str, bool)> = domains
        .iter()
        .map(|d| (d.name.as_str(), d.dcv_approval.is_some()))
        .collect();
    assert_eq!(names, [("example.com", false), ("shop.example.org", false)]);
    assert_eq!(sim.simulator().now().year(), 2029);
}

// ---- DNS, against a real authoritative server ----

async fn dns_simulator(dns: &AuthoritativeDns, orders: Vec<OrderSeed>) -> RunningSimulator {
    let mut config = config(orders, Vec::new());
    config.dcv = VaConfig {
        dns_server: Some(dns.addr()),
        ..VaConfig::default()
    };
    certcentral_sim::start(config).await.unwrap()
}

fn updater(dns: &AuthoritativeDns) -> Rfc2136 {
    let (name, algorithm, secret) = dns.tsig();
    Rfc2136::new(dns.addr()).with_tsig(Tsig::from_base64(&name, &algorithm, &secret).unwrap())
}

#[tokio::test]
async fn dns_txt_check_dcv_against_a_real_dns_server() {
    let dns = AuthoritativeDns::start_default().await;
    let sim = dns_simulator(&dns, vec![unvalidated(1001)]).await;
    let c = client(&sim, KEY);
    let token = c.order_random_value(1001).await.unwrap().dcv_random_value;
    let (_, req) = example_reissue();
    c.reissue(1001, &req).await.unwrap();
    assert_eq!(reissue_status(&c, 1001).await, ReissueStatus::Pending);

    let err = c.check_order_dcv(1001).await.unwrap_err();
    assert!(err.has_code("invalid_dns_txt"), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(
            "no TXT record holding the random value at example.com or _dnsauth.example.com"
        ),
        "{text}"
    );
    assert!(text.contains(r#"example.com: "v=spf1 -all""#), "{text}");
    assert!(text.contains("_dnsauth.example.com: NXDOMAIN"), "{text}");

    // A wrong value is not enough either.
    let dns_update = updater(&dns);
    dns_update
        .add(&DnsRecord::txt_token("example.com", "not-the-token"))
        .await
        .unwrap();
    let err = c.check_order_dcv(1001).await.unwrap_err();
    assert!(err.to_string().contains("\"not-the-token\""), "{err}");

    dns_update
        .add(&DnsRecord::txt_token("example.com", &token))
        .await
        .unwrap();
    let answer = c.check_order_dcv(1001).await.unwrap();
    assert_eq!(answer.order_status.as_deref(), Some("issued"));
    let statuses: Vec<(&str, &str)> = answer
        .dns_name_validations
        .iter()
        .map(|v| (v.dns_name.as_str(), v.status.as_str()))
        .collect();
    assert_eq!(
        statuses,
        [("example.com", "approved"), ("www.example.com", "approved")]
    );
    assert_eq!(reissue_status(&c, 1001).await, ReissueStatus::Issued);
}

#[tokio::test]
async fn dns_txt_at_dnsauth_validates_a_domain() {
    let dns = AuthoritativeDns::start_default().await;
    let mut seed = unvalidated(1002);
    seed.common_name = "example.org".into();
    seed.dns_names = vec!["*.example.org".into()];
    let sim = dns_simulator(&dns, vec![seed]).await;
    let c = client(&sim, KEY);
    let id = c.find_domains("example.org").await.unwrap()[0].id;
    let token = c
        .submit_domain_validation(id, DcvMethod::DnsTxtToken)
        .await
        .unwrap()
        .unwrap()
        .token;
    let err = c.check_domain_dcv(id).await.unwrap_err();
    assert!(err.has_code("invalid_dns_txt"), "{err}");
    updater(&dns)
        .add(&DnsRecord {
            name: "_dnsauth.example.org".into(),
            ..DnsRecord::txt_token("example.org", &token)
        })
        .await
        .unwrap();
    assert_eq!(c.check_domain_dcv(id).await.unwrap().status, "active");
    // The parent's DNS validation covers the wildcard.
    let v = c.order_validation(1002).await.unwrap();
    assert!(
        v.dns_name_validations
            .iter()
            .all(|v| v.status == "approved"),
        "{v:?}"
    );
}

#[tokio::test]
async fn dns_cname_check_dcv_against_a_real_dns_server() {
    let dns = AuthoritativeDns::start_default().await;
    let sim = dns_simulator(&dns, vec![unvalidated(1001)]).await;
    let c = client(&sim, KEY);
    let token = c
        .set_order_dcv_method(1001, DcvMethod::DnsCnameToken)
        .await
        .unwrap()
        .unwrap()
        .dcv_random_value;
    let (_, req) = example_reissue();
    c.reissue(1001, &req).await.unwrap();

    let err = c.check_order_dcv(1001).await.unwrap_err();
    assert!(err.has_code("invalid_dns_cname"), "{err}");
    assert!(
        err.to_string().contains(&format!(
            "no CNAME from _dnsauth.example.com to {token}.dcv.digicert.com (saw: NXDOMAIN)"
        )),
        "{err}"
    );
    updater(&dns)
        .add(&DnsRecord::cname_token(
            "example.com",
            &token.to_uppercase(),
        ))
        .await
        .unwrap();
    let answer = c.check_order_dcv(1001).await.unwrap();
    assert_eq!(answer.order_status.as_deref(), Some("issued"));
    assert_eq!(reissue_status(&c, 1001).await, ReissueStatus::Issued);
}

#[tokio::test]
async fn dns_checks_without_a_dns_server_say_so() {
    let sim = certcentral_sim::start(config(vec![unvalidated(1001)], Vec::new()))
        .await
        .unwrap();
    let c = client(&sim, KEY);
    let err = c.check_order_dcv(1001).await.unwrap_err();
    assert!(err.has_code("invalid_dns_txt"), "{err}");
    assert!(
        err.to_string().contains("no DNS server configured"),
        "{err}"
    );
}
