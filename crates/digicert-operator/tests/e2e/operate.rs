//! Running the operator: metrics, health and readiness, leader election, API key
//! rotation, graceful shutdown, and the command line (also as a kubectl plugin).

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use crate::support::env::{OperatorEnv, condition};
use crate::support::process::OperatorProcess;
use certcentral_sim::faults::FaultSpec;
use digicert_operator::certcentral::Operation;

fn fault(json: serde_json::Value) -> FaultSpec {
    serde_json::from_value(json).unwrap()
}

async fn http_get(url: &str) -> (u16, String) {
    let resp = reqwest::get(url).await.expect("the endpoint answers");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

/// The value of a sample line `name{labels} value` in a metrics page.
fn sample(page: &str, prefix: &str) -> Option<f64> {
    page.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// `promtool check metrics` on a page (the promtool the monitoring tests use): whether
/// it passed, and what it said.
fn promtool_check_metrics(page: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(crate::monitoring::promtool())
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_health_and_readiness_after_an_issuance() {
    let mut env = OperatorEnv::new("metrics", vec![crate::support::order(1001)]).await;
    env.start_operator();
    let base = env.http_base();
    let (code, _) = http_get(&format!("{base}/healthz")).await;
    assert_eq!(code, 200);
    // Ready once the watch has synced.
    wait_synced(&base).await;
    env.apply(&OperatorEnv::order_yaml("web", 1001, ""));
    let order = env.wait_ready("web").await;
    let not_after = order.status.unwrap().certificate.unwrap().not_after;
    let not_after = digicert_operator::controller::status::offset(&not_after);
    let ns = env.cluster.namespace.clone();
    let labels = format!(r#"{{namespace="{ns}",name="web"}}"#);
    // The gauges follow the status patch; give the scrape a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    let page = loop {
        let (_, page) = http_get(&format!("{base}/metrics")).await;
        let ready = format!(
            r#"digicert_operator_order_ready_status{{namespace="{ns}",name="web",condition="True"}}"#
        );
        if sample(&page, &ready) == Some(1.0) {
            break page;
        }
        assert!(Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        sample(
            &page,
            &format!("digicert_operator_certificate_expiration_timestamp_seconds{labels}")
        ),
        Some(not_after.unix_timestamp() as f64)
    );
    assert!(
        sample(
            &page,
            &format!("digicert_operator_certificate_renewal_timestamp_seconds{labels}")
        )
        .is_some()
    );
    assert_eq!(
        sample(
            &page,
            r#"digicert_operator_reissues_total{event="submitted"}"#
        ),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        sample(&page, r#"digicert_operator_reissues_total{event="issued"}"#),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        sample(
            &page,
            r#"digicert_operator_certcentral_requests_total{operation="reissue",status="201",code=""}"#
        ),
        Some(1.0)
    );
    assert!(page.contains("digicert_operator_certcentral_request_duration_seconds_bucket"));
    assert!(page.contains("digicert_operator_rate_limiter_wait_seconds_count"));
    assert!(sample(&page, "digicert_operator_reconciles_total").unwrap() >= 1.0);
    assert!(page.contains("digicert_operator_reconcile_duration_seconds_bucket"));
    // The build, the process, and every condition of the order.
    let build = format!(
        r#"digicert_operator_build_info{{version="{}"}}"#,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(sample(&page, &build), Some(1.0), "{page}");
    assert!(sample(&page, "process_resident_memory_bytes").unwrap() > 0.0);
    assert!(sample(&page, "process_cpu_seconds_total").unwrap() > 0.0);
    assert!(sample(&page, "process_open_fds").unwrap() > 0.0);
    let ready = format!(
        r#"digicert_operator_order_condition{{namespace="{ns}",name="web",type="Ready",status="True",reason="Issued"}}"#
    );
    assert_eq!(sample(&page, &ready), Some(1.0), "{page}");
    // A plain scrape gets Prometheus's text format, which promtool accepts as it is;
    // a scraper asking for OpenMetrics gets that.
    let check = promtool_check_metrics(&page);
    assert!(check.0, "promtool check metrics:\n{}\n{page}", check.1);
    let open = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .header(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        )
        .send()
        .await
        .unwrap();
    assert!(
        open.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert!(open.text().await.unwrap().ends_with("# EOF\n"));

    // A failing call shows its DigiCert code.
    env.sim
        .simulator()
        .add_fault(fault(
            serde_json::json!({"operation": "order_info", "kind": "status", "status": 503}),
        ))
        .unwrap();
    env.cluster.kubectl_ok(
        &["annotate", "dco", "web", "digicert-operator.dev/renew=1"],
        None,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, page) = http_get(&format!("{base}/metrics")).await;
        if page.contains(r#"operation="order_info",status="503",code="server_error""#) {
            break;
        }
        assert!(Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_of_two_replicas_leads_and_a_standby_takes_over() {
    let env = OperatorEnv::new("leader", vec![crate::support::order(1001)]).await;
    let args = |identity: &str| {
        let mut a = env.args();
        a.extend(
            [
                "--leader-elect",
                "--lease-duration",
                "4s",
                "--identity",
                identity,
            ]
            .map(String::from),
        );
        a
    };
    let kubeconfig = env.cluster.kubeconfig.clone();
    let process_env = [
        ("KUBECONFIG", kubeconfig.as_os_str()),
        ("LOG_LEVEL", OsStr::new("info,digicert_operator=debug")),
    ];
    let mut a = OperatorProcess::start(args("replica-a"), &process_env);
    a.wait_for_log("became the leader", Duration::from_secs(30));
    let mut b = OperatorProcess::start(args("replica-b"), &process_env);
    b.wait_for_log("waiting to become the leader", Duration::from_secs(30));

    env.apply(&OperatorEnv::order_yaml("web", 1001, ""));
    env.wait_ready("web").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The standby reconciled nothing and never called DigiCert.
    let standby = b.logs();
    assert!(!standby.contains("became the leader"), "{standby}");
    assert!(!standby.contains("CertCentral call"), "{standby}");
    assert!(!standby.contains("reconcile{"), "{standby}");
    assert!(a.logs().contains("CertCentral call succeeded"));

    // The leader dies without releasing the lease: the standby takes over within
    // the lease duration (and some slack for its renewal period).
    let killed = Instant::now();
    a.kill();
    b.wait_for_log("became the leader", Duration::from_secs(15));
    let handover = killed.elapsed();
    assert!(handover < Duration::from_secs(12), "{handover:?}");
    // The new leader does the work: a renewal request is carried out.
    env.cluster.kubectl_ok(
        &[
            "annotate",
            "dco",
            "web",
            "digicert-operator.dev/renew=again",
        ],
        None,
    );
    env.wait_for("web", "revision 2", Duration::from_secs(30), |o| {
        o.status.as_ref().is_some_and(|s| s.revision == 2)
    })
    .await;
    assert_eq!(env.sim.simulator().calls().total(Operation::Reissue), 2);

    // A graceful stop releases the lease at once: a new replica leads quickly.
    b.terminate(Duration::from_secs(15))
        .expect("exits on SIGTERM");
    let c = OperatorProcess::start(args("replica-c"), &process_env);
    c.wait_for_log("became the leader", Duration::from_secs(8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rotated_api_key_is_used_without_a_restart() {
    let mut env = OperatorEnv::new("key-rotation", vec![crate::support::order(1001)]).await;
    // Empty first: a clear condition, no call.
    env.put_api_key(crate::support::env::API_KEY_SECRET, "")
        .await;
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml("web", 1001, ""));
    let o = env
        .wait_condition(
            "web",
            "Ready",
            "False",
            Some("ApiKeyMissing"),
            Duration::from_secs(30),
        )
        .await;
    assert!(
        condition(&o, "Ready")
            .unwrap()
            .message
            .contains("digicert-api-key")
    );
    assert_eq!(env.sim.simulator().calls().sum(), 0);
    // A wrong key: DigiCert refuses it.
    env.put_api_key(crate::support::env::API_KEY_SECRET, "wrong-key-123")
        .await;
    env.cluster.kubectl_ok(
        &["annotate", "dco", "web", "digicert-operator.dev/renew=1"],
        None,
    );
    env.wait_condition(
        "web",
        "Ready",
        "False",
        Some("InvalidApiKey"),
        Duration::from_secs(30),
    )
    .await;
    // The right key: taken on the next call, same process.
    let pid = env.operator.as_ref().unwrap().pid();
    env.put_api_key(
        crate::support::env::API_KEY_SECRET,
        crate::support::env::API_KEY,
    )
    .await;
    env.cluster.kubectl_ok(
        &[
            "annotate",
            "--overwrite",
            "dco",
            "web",
            "digicert-operator.dev/renew=2",
        ],
        None,
    );
    env.wait_ready("web").await;
    assert_eq!(env.operator.as_ref().unwrap().pid(), pid);
    let logs = env.operator_logs();
    assert!(!logs.contains("wrong-key-123") && !logs.contains(crate::support::env::API_KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_during_a_reissue_finishes_it_safely() {
    let mut env = OperatorEnv::new("sigterm", vec![crate::support::order(1001)]).await;
    // DigiCert accepts the reissue at once but answers 3 s later.
    env.sim
        .simulator()
        .add_fault(fault(serde_json::json!({"operation": "reissue", "kind": "delay", "millis": 3000, "phase": "after", "nth": 1})))
        .unwrap();
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml("web", 1001, ""));
    let deadline = Instant::now() + Duration::from_secs(30);
    while env.sim.simulator().calls().total(Operation::Reissue) == 0 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut operator = env.operator.take().unwrap();
    let status = operator
        .terminate(Duration::from_secs(20))
        .expect("exits after finishing the reconcile");
    assert!(status.success(), "{status}");
    let logs = operator.logs();
    assert!(logs.contains("termination requested"), "{logs}");
    // The answer was recorded before the exit: submitted (or already issued).
    let order = env.orders().get("web").await.unwrap();
    let s = order.status.unwrap();
    let recorded = s.reissue.as_ref().is_some_and(|r| r.request_id.is_some()) || s.revision == 1;
    assert!(recorded, "{s:?}");
    env.start_operator();
    env.wait_ready("web").await;
    assert_eq!(env.sim.simulator().calls().total(Operation::Reissue), 1);
}

fn cli(env: &OperatorEnv, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(crate::support::process::binary())
        .args(args)
        .env("KUBECONFIG", &env.cluster.kubeconfig)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_command_line_shows_renews_cancels_and_inspects() {
    let mut seed = crate::support::order(1001);
    seed.issuance_delay_seconds = 0;
    let mut slow = crate::support::order(1002);
    slow.issuance_delay_seconds = 3600;
    let mut env = OperatorEnv::new("cli", vec![seed, slow]).await;
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml("web", 1001, ""));
    env.apply(&OperatorEnv::order_yaml("slow", 1002, ""));
    env.wait_ready("web").await;
    env.wait_condition(
        "slow",
        "Issuing",
        "True",
        Some("ValidationPending"),
        Duration::from_secs(30),
    )
    .await;
    let ns = env.cluster.namespace.clone();

    let (ok, out, err) = cli(&env, &["status", "-n", &ns]);
    assert!(ok, "{err}");
    let web_line = out.lines().find(|l| l.starts_with("web ")).expect(&out);
    assert!(
        web_line.contains("True") && web_line.contains("issued"),
        "{out}"
    );
    let slow_line = out.lines().find(|l| l.starts_with("slow ")).expect(&out);
    assert!(slow_line.contains("Submitted"), "{out}");
    assert!(out.starts_with("NAME"), "{out}");

    let (ok, out, err) = cli(&env, &["inspect", "web", "-n", &ns]);
    assert!(ok, "{err}");
    assert!(
        out.contains("SANs:        example.com, www.example.com"),
        "{out}"
    );
    assert!(out.contains("Key match:   yes"), "{out}");
    assert!(out.contains("Issuing CA"), "{out}");

    let (ok, out, err) = cli(&env, &["renew", "web", "-n", &ns]);
    assert!(ok, "{err}");
    assert!(out.contains("Requested a reissue"), "{out}");
    env.wait_for("web", "revision 2", Duration::from_secs(30), |o| {
        o.status.as_ref().is_some_and(|s| s.revision == 2)
    })
    .await;

    // Cancel the pending reissue: canceled at DigiCert, and no new one starts.
    let (ok, _, err) = cli(&env, &["cancel", "slow", "-n", &ns]);
    assert!(ok, "{err}");
    env.wait_condition(
        "slow",
        "Issuing",
        "False",
        Some("Canceled"),
        Duration::from_secs(30),
    )
    .await;
    let calls = env.sim.simulator().calls();
    assert_eq!(calls.total(Operation::UpdateOrderStatus), 1);
    let reissues_before = calls.total(Operation::Reissue);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        env.sim.simulator().calls().total(Operation::Reissue),
        reissues_before
    );
    let record = env.sim.simulator().order_record(1002).unwrap();
    assert_eq!(record["order"]["status"], "issued");

    // Errors are clear.
    let (ok, _, err) = cli(&env, &["inspect", "nope", "-n", &ns]);
    assert!(!ok);
    assert!(err.contains("not found"), "{err}");

    // As a kubectl plugin.
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        crate::support::process::binary(),
        dir.path().join("kubectl-digicert"),
    )
    .unwrap();
    let mut path = std::ffi::OsString::from(dir.path());
    path.push(":");
    path.push(crate::support::cluster::path_with_assets());
    let out = crate::support::cluster::kubectl_command(&env.cluster.kubeconfig)
        .args(["digicert", "status", "-n", &ns])
        .env("PATH", path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("web"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn json_logs_carry_the_order_and_never_the_key() {
    let mut env = OperatorEnv::new("json-logs", vec![crate::support::order(1001)]).await;
    let kubeconfig = env.cluster.kubeconfig.clone();
    let process_env = [
        ("KUBECONFIG", kubeconfig.as_os_str()),
        ("LOG_LEVEL", OsStr::new("info,digicert_operator=debug")),
        ("LOG_FORMAT", OsStr::new("json")),
    ];
    let operator = OperatorProcess::start(env.args(), &process_env);
    env.apply(&OperatorEnv::order_yaml("web", 1001, ""));
    env.wait_ready("web").await;
    let logs = operator.logs();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let call = |operation: &str| {
        lines
            .iter()
            .find(|l| l["message"] == "CertCentral call succeeded" && l["operation"] == operation)
            .unwrap_or_else(|| panic!("no {operation} call logged:\n{logs}"))
    };
    // Flat lines: the order's fields beside the event's, not nested under `span`.
    let reissue = call("reissue");
    let ns = env.cluster.namespace.as_str();
    assert_eq!(reissue["namespace"], ns, "{reissue}");
    assert_eq!(reissue["order_name"], "web", "{reissue}");
    assert_eq!(reissue["order_id"], 1001, "{reissue}");
    assert!(
        reissue.get("span").is_none_or(|s| s.is_string()),
        "{reissue}"
    );
    // The change feed's reads are the account key's: they name the feed, not an order.
    let feed = call("list_orders");
    assert!(feed["feed"].is_string(), "{feed}");
    assert!(feed["order_name"].is_null(), "{feed}");
    // One info line per step of the order's life, each naming the order.
    for step in [
        "reissue_sent",
        "issued",
        "secret_written",
        "renewal_planned",
    ] {
        let found: Vec<_> = lines.iter().filter(|l| l["step"] == step).collect();
        assert_eq!(found.len(), 1, "{step}:\n{logs}");
        assert_eq!(found[0]["level"], "INFO", "{}", found[0]);
        assert_eq!(found[0]["order_name"], "web", "{}", found[0]);
        assert_eq!(found[0]["namespace"], ns, "{}", found[0]);
    }
    // No value in Rust's debug dress.
    for l in &lines {
        let text = l.to_string();
        assert!(!text.contains("Some(") && !text.contains("None"), "{text}");
    }
    assert!(!logs.contains(crate::support::env::API_KEY));
    assert!(!logs.contains("PRIVATE KEY"));
    drop(operator);
    env.operator = None;
}

/// Waits until /readyz says the watches have synced.
async fn wait_synced(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, body) = http_get(&format!("{base}/readyz")).await;
        if code == 200 {
            assert!(body.contains("synced"), "{body}");
            return;
        }
        assert!(Instant::now() < deadline, "not ready: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The first lines of the operator's log that say how its watches list.
fn initial_list_lines(logs: &str) -> Vec<&str> {
    logs.lines()
        .filter(|l| l.contains("initial lists:"))
        .collect()
}

// Streaming lists where the server has them (v1.36 turns them on by default), a paged
// list where it does not (like Kubernetes 1.33, which turns its WatchList feature off
// by default): either way the operator serves its orders, and says which it uses.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn initial_lists_stream_where_the_server_offers_them_and_are_paged_elsewhere() {
    let test = "initial_lists_stream_where_the_server_offers_them_and_are_paged_elsewhere";
    let mut env = OperatorEnv::new("initial-list", vec![crate::support::order(1001)]).await;
    env.apply(&OperatorEnv::order_yaml("web", 1001, ""));
    env.start_operator();
    env.wait_ready("web").await;
    // A restart finds the order and its Secret in the streamed initial state.
    env.start_operator();
    let base = env.http_base();
    wait_synced(&base).await;
    let logs = env.operator_logs();
    let lines = initial_list_lines(&logs);
    // The suite's server offers streaming lists; another cluster may not, and then the
    // operator must say so.
    let consistent = |l: &&str| {
        (l.contains("initial lists: Streaming") && l.contains("probe=offered"))
            || (crate::support::cluster::use_existing_cluster()
                && l.contains("initial lists: Paged"))
    };
    assert!(!lines.is_empty() && lines.iter().all(consistent), "{logs}");
    assert_eq!(env.sim.simulator().calls().total(Operation::Reissue), 1);

    let Some(cp) = crate::support::cluster::OwnControlPlane::start(
        test,
        "runs a server with streaming lists turned off",
        "--feature-gates=WatchList=false",
    )
    .await
    else {
        return;
    };
    let cluster =
        crate::support::cluster::TestCluster::connect("initial-list-paged", cp.kubeconfig.clone())
            .await;
    let mut paged = OperatorEnv::on_cluster(
        cluster,
        OperatorEnv::simulator_config(vec![crate::support::order(1001)]),
    )
    .await;
    paged.apply(&OperatorEnv::order_yaml("web", 1001, ""));
    paged.start_operator();
    paged.wait_ready("web").await;
    paged
        .verify_secret("web-tls", &["example.com", "www.example.com"])
        .await;
    let logs = paged.operator_logs();
    let lines = initial_list_lines(&logs);
    assert!(
        !lines.is_empty()
            && lines
                .iter()
                .all(|l| l.contains("initial lists: Paged") && l.contains("probe=refused")),
        "{logs}"
    );
}
