//! The simulator as a program: started from the binary, driven over HTTPS through the
//! DigiCert API and the admin API, restarted with its state file.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use certcentral_sim::admin::AdminClient;
use certcentral_sim::{OrderPatch, RateLimitSpec};
use digicert_operator::certcentral::{
    ApiKey, BaseUrl, Client, ClientConfig, Operation, OrderStatus, RateLimiter, ReissueStatus,
    TrustRoots,
};
use serde_json::{Value, json};

struct Process {
    child: Child,
    base_url: String,
    admin_url: String,
    ca_pem: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ORDERS: &str = r#"
api_keys:
  - key: demo-api-key
  - key: viewer-key
    approver: false
orders:
  - id: 1001
    common_name: example.com
    dns_names: [www.example.com]
  - id: 1002
    common_name: pending.example.com
    status: pending
"#;

fn spawn(dir: &Path, extra: &[&str]) -> Process {
    let ready = dir.join("ready.json");
    let _ = std::fs::remove_file(&ready);
    let orders = dir.join("orders.yaml");
    std::fs::write(&orders, ORDERS).unwrap();
    let mut args = vec![
        "--listen".to_string(),
        "127.0.0.1:0".into(),
        "--orders".into(),
        orders.display().to_string(),
        "--ca-bundle-out".into(),
        dir.join("ca.pem").display().to_string(),
        "--ready-file".into(),
        ready.display().to_string(),
        "--state-file".into(),
        dir.join("state.json").display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let child = Command::new(crate::support::process::simulator_binary())
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary runs");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "simulator did not become ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    let info: Value = serde_json::from_slice(&std::fs::read(&ready).unwrap()).unwrap();
    Process {
        child,
        base_url: info["base_url"].as_str().unwrap().into(),
        admin_url: info["admin_url"].as_str().unwrap().into(),
        ca_pem: std::fs::read_to_string(dir.join("ca.pem")).unwrap(),
    }
}

fn api_client(p: &Process, key: &str) -> Client {
    let config = ClientConfig {
        base_url: p.base_url.parse::<BaseUrl>().unwrap(),
        trust: TrustRoots::Only(p.ca_pem.as_bytes().to_vec()),
        retry: fast_retry(),
        ..ClientConfig::default()
    };
    Client::with_limiter(
        config,
        ApiKey::new(key).unwrap(),
        std::sync::Arc::new(RateLimiter::unlimited),
    )
    .unwrap()
}

fn raw_client(p: &Process) -> reqwest::Client {
    digicert_operator::tls::install_crypto_provider();
    reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(p.ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_binary_serves_the_api_and_keeps_state_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let p = spawn(dir.path(), &[]);
    let c = api_client(&p, "demo-api-key");
    let admin = AdminClient::new(&p.admin_url, &p.ca_pem, None).unwrap();
    let (_, req) = example_reissue();
    c.reissue(1001, &req).await.unwrap();
    c.set_auto_reissue(1001, true).await.unwrap();
    admin.advance_clock(3600).await.unwrap();
    let calls = admin.calls().await.unwrap();
    assert_eq!(calls.total(Operation::Reissue), 1);
    assert_eq!(calls.outcome(Operation::Reissue, "201"), 1);
    assert_eq!(calls.outcome(Operation::UpdateAutoReissue, "204"), 1);
    let before = c.list_reissues(1001).await.unwrap();
    drop(p);

    // Same state file: the orders, reissues, clock and CA survive.
    let p = spawn(dir.path(), &[]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("ca.pem")).unwrap(),
        p.ca_pem
    );
    let c = api_client(&p, "demo-api-key");
    let info = c.order_info(1001).await.unwrap();
    assert_eq!(info.auto_reissue, 1);
    assert_eq!(c.list_reissues(1001).await.unwrap(), before);
    let admin = AdminClient::new(&p.admin_url, &p.ca_pem, None).unwrap();
    let clock = admin.advance_clock(0).await.unwrap();
    assert_eq!(clock["offset_seconds"], 3600);
    // Counters are per run.
    assert_eq!(admin.calls().await.unwrap().total(Operation::Reissue), 0);
}

#[tokio::test]
async fn the_admin_api_seeds_patches_faults_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let p = spawn(dir.path(), &["--admin-token", "t0ken"]);
    let c = api_client(&p, "demo-api-key");

    // The admin token is required.
    let anonymous = AdminClient::new(&p.admin_url, &p.ca_pem, None).unwrap();
    let err = anonymous.calls().await.unwrap_err();
    assert_eq!(err.status, Some(401));
    let admin = AdminClient::new(&p.admin_url, &p.ca_pem, Some("t0ken".into())).unwrap();

    // Seed a new order and see it through the API.
    let mut seed = order(2001);
    seed.approval_required = true;
    let record = admin.add_order(&seed).await.unwrap();
    assert_eq!(record["order"]["status"], "issued");
    assert_eq!(
        c.order_info(2001).await.unwrap().status,
        OrderStatus::Issued
    );
    let dup = admin.add_order(&seed).await.unwrap_err();
    assert_eq!(dup.status, Some(409));

    // Patch: lapse validation, then approve: the reissue waits until validation is redone.
    admin
        .patch_order(
            2001,
            &OrderPatch {
                validation_current: Some(false),
                ..OrderPatch::default()
            },
        )
        .await
        .unwrap();
    let (_, req) = example_reissue();
    let request_id = c.reissue(2001, &req).await.unwrap().request_id().unwrap();
    c.approve_request(request_id, "ok").await.unwrap();
    assert_eq!(
        c.list_reissues(2001).await.unwrap()[0].status,
        ReissueStatus::Pending
    );
    let record = admin
        .patch_order(
            2001,
            &OrderPatch {
                validation_current: Some(true),
                ..OrderPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(record["order"]["status"], "issued");
    assert_eq!(
        c.list_reissues(2001).await.unwrap()[0].status,
        ReissueStatus::Issued
    );

    // Faults through the admin API.
    let fault = serde_json::from_value(
        json!({"operation": "order_info", "kind": "status", "status": 500, "times": 2}),
    )
    .unwrap();
    admin.add_fault(&fault).await.unwrap();
    admin.reset_calls().await.unwrap();
    c.order_info(2001).await.unwrap();
    let calls = admin.calls().await.unwrap();
    assert_eq!(calls.outcome(Operation::OrderInfo, "500"), 2);
    assert_eq!(calls.outcome(Operation::OrderInfo, "200"), 1);
    admin.clear_faults().await.unwrap();
    let bad_fault = serde_json::from_value(json!({"kind": "status", "status": 200})).unwrap();
    assert_eq!(
        admin.add_fault(&bad_fault).await.unwrap_err().status,
        Some(400)
    );

    // Rate limits through the admin API: 3 per minute, the 4th call is refused.
    admin
        .set_rate_limits(&[RateLimitSpec {
            limit: 3,
            window_seconds: 60,
        }])
        .await
        .unwrap();
    let strict = {
        let config = ClientConfig {
            base_url: p.base_url.parse::<BaseUrl>().unwrap(),
            trust: TrustRoots::Only(p.ca_pem.as_bytes().to_vec()),
            retry: digicert_operator::certcentral::RetryPolicy::none(),
            ..ClientConfig::default()
        };
        Client::with_limiter(
            config,
            ApiKey::new("demo-api-key").unwrap(),
            std::sync::Arc::new(RateLimiter::unlimited),
        )
        .unwrap()
    };
    for _ in 0..3 {
        strict.order_info(2001).await.unwrap();
    }
    let err = strict.order_info(2001).await.unwrap_err();
    assert_eq!(err.status(), Some(429));
    assert_eq!(err.code(), Some("request_limit_exceeded"));
    assert!(err.is_retryable());
    // Another key has its own window.
    api_client(&p, "viewer-key").order_info(2001).await.unwrap();
}

#[tokio::test]
async fn malformed_requests_and_unknown_routes_get_documented_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = spawn(dir.path(), &[]);
    let http = raw_client(&p);
    let key = "demo-api-key";
    // (method, path, body, status, code)
    let cases: Vec<(&str, &str, Option<Value>, u16, &str)> = vec![
        (
            "GET",
            "/order/certificate/1001/nope",
            None,
            404,
            "not_found|route",
        ),
        (
            "DELETE",
            "/order/certificate/1001",
            None,
            404,
            "not_found|route",
        ),
        (
            "POST",
            "/order/certificate/1001/reissue",
            Some(json!({"certificate": {"common_name": "example.com"}})),
            400,
            "bad_request_format",
        ),
        (
            "PUT",
            "/order/certificate/1002/status",
            Some(json!({"status": "CANCELED", "note": "x"})),
            400,
            "invalid_status",
        ),
        (
            "PUT",
            "/order/certificate/1002/status",
            Some(json!({"status": "canceled"})),
            400,
            "bad_request_format",
        ),
        (
            "PUT",
            "/order/certificate/1002/status",
            Some(json!({"status": "canceled", "note": " "})),
            400,
            "bad_request_format",
        ),
        (
            "PUT",
            "/order/certificate/1001/auto-reissue",
            Some(json!({"auto_reissue": 2})),
            400,
            "bad_request_format",
        ),
        (
            "GET",
            "/certificate/download/order/1001/format/p7b",
            None,
            400,
            "invalid_format",
        ),
        (
            "GET",
            "/certificate/download/order/1002/format/pem_all",
            None,
            400,
            "certificate_not_issued",
        ),
        (
            "PUT",
            "/request/1/status",
            Some(json!({"status": "approved"})),
            404,
            "not_found|request",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let mut req = http
            .request(method.parse().unwrap(), format!("{}{}", p.base_url, path))
            .header("X-DC-DEVKEY", key);
        if let Some(b) = &body {
            req = req.json(b);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{method} {path}");
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "application/json",
            "{method} {path}"
        );
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["errors"][0]["code"], code, "{method} {path}: {body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    // No key at all.
    let resp = http
        .get(format!("{}/order/certificate/1001", p.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    // The cancel value DigiCert's Korean page shows is accepted when configured.
    drop(p);
    let p = spawn(dir.path(), &["--cancel-status", "canceled,CANCELED"]);
    let resp = raw_client(&p)
        .put(format!("{}/order/certificate/1002/status", p.base_url))
        .header("X-DC-DEVKEY", key)
        .json(&json!({"status": "CANCELED", "note": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
}

#[tokio::test]
async fn bad_seed_files_fail_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let orders = dir.path().join("orders.yaml");
    std::fs::write(
        &orders,
        "orders:\n  - id: 1\n    common_name: a.example\n    colour: red\n",
    )
    .unwrap();
    let out = Command::new(crate::support::process::simulator_binary())
        .args(["--listen", "127.0.0.1:0", "--orders"])
        .arg(&orders)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown field `colour`"), "{stderr}");
}

/// The simulator left the operator's binary: whoever still runs `digicert-operator
/// simulator …` is told the program to run instead, with their own flags, and nothing
/// starts.
#[test]
fn the_operator_binary_points_to_the_simulator_program() {
    let out = Command::new(env!("CARGO_BIN_EXE_digicert-operator"))
        .args([
            "simulator",
            "--listen",
            "127.0.0.1:0",
            "--orders",
            "orders.yaml",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("certcentral-sim --listen 127.0.0.1:0 --orders orders.yaml"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Dockerfile's `simulator` target"),
        "{stderr}"
    );
    // Not a subcommand anyone is offered any more.
    let help = Command::new(env!("CARGO_BIN_EXE_digicert-operator"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("inspect"), "{help}");
    assert!(!help.contains("simulator"), "{help}");
}
