//! The benchmark suite: `hack/bench.sh [NAME...]` (or `cargo bench --bench suite --
//! NAME`, with DIGICERT_TEST_KUBECONFIG pointing at a control plane).
//!
//! NAME: calls, throughput, latency, memory, keygen, crash, faults, dcv, duplicates,
//! issuer
//! (default: all).
//! Flags: `--runs N` (repeat each measurement; medians are reported), `--out DIR`
//! (where the JSON and Markdown reports go; default target/bench-report).

// The tests' harness; the benchmarks use part of it.
#[allow(dead_code)]
#[path = "../tests/support/mod.rs"]
mod support;

mod scenarios;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use scenarios::median;

const ALL: [&str; 11] = [
    "calls",
    "throughput",
    "latency",
    "memory",
    "keygen",
    "crash",
    "faults",
    "dcv",
    "duplicates",
    "issuer",
    "feed",
];

struct Args {
    names: Vec<String>,
    runs: Option<usize>,
    out: PathBuf,
    scale: f64,
}

fn args() -> Args {
    let mut names = Vec::new();
    let mut runs = None;
    let mut out = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/bench-report"
    ));
    let mut scale = 1.0;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            // cargo bench passes this to every bench binary.
            "--bench" => {}
            "--runs" => runs = it.next().and_then(|v| v.parse().ok()),
            "--out" => out = it.next().map(PathBuf::from).unwrap_or(out),
            "--scale" => scale = it.next().and_then(|v| v.parse().ok()).unwrap_or(1.0),
            n if ALL.contains(&n) => names.push(n.to_string()),
            other => {
                eprintln!("unknown argument {other:?}; benchmarks: {}", ALL.join(", "));
                std::process::exit(2);
            }
        }
    }
    if names.is_empty() {
        names = ALL.iter().map(|s| s.to_string()).collect();
    }
    Args {
        names,
        runs,
        out,
        scale,
    }
}

/// One benchmark's report: every run's figures, medians, and the verdicts.
struct Report {
    name: String,
    command: String,
    runs: Vec<Value>,
    lines: Vec<String>,
}

impl Report {
    fn new(name: &str) -> Self {
        Report {
            name: name.into(),
            command: format!("hack/bench.sh {name}"),
            runs: Vec::new(),
            lines: Vec::new(),
        }
    }

    /// The median over runs of a numeric field (a JSON pointer into each run).
    fn median(&self, pointer: &str) -> f64 {
        let values: Vec<f64> = self
            .runs
            .iter()
            .filter_map(|r| r.pointer(pointer).and_then(Value::as_f64))
            .collect();
        median(&values)
    }

    fn values(&self, pointer: &str) -> String {
        self.runs
            .iter()
            .map(|r| match r.pointer(pointer) {
                Some(Value::Number(n)) => format_number(n.as_f64().unwrap_or(f64::NAN)),
                Some(v) => v.to_string(),
                None => "-".into(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn figure(&mut self, label: &str, pointer: &str) -> f64 {
        let m = self.median(pointer);
        self.lines.push(format!(
            "| {label} | {} | {} |",
            format_number(m),
            self.values(pointer)
        ));
        m
    }

    fn verdict(&mut self, target: &str, met: bool, detail: String) {
        self.lines.push(format!(
            "| **target** {target} | **{}** | {detail} |",
            if met { "met" } else { "MISSED" }
        ));
    }

    fn markdown(&self) -> String {
        let mut s = format!(
            "### {}\n\nCommand: `{}` ({} run{})\n\n| figure | median | runs |\n|---|---|---|\n",
            self.name,
            self.command,
            self.runs.len(),
            if self.runs.len() == 1 { "" } else { "s" }
        );
        for l in &self.lines {
            s.push_str(l);
            s.push('\n');
        }
        s
    }
}

fn format_number(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v.fract() == 0.0 && v.abs() < 1e12 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("serialisable")
}

async fn calls(runs: usize, scale: f64) -> Report {
    let mut r = Report::new("calls");
    for _ in 0..runs {
        let o = scenarios::calls::run(scenarios::calls::Params {
            orders: ((20.0 * scale) as usize).max(2),
            resync: Duration::from_secs(20),
            periods: 3,
            feed_readings: 20,
        })
        .await;
        println!("calls: {o:?}");
        r.runs.push(to_value(&o));
    }
    r.figure("orders (half RSA-2048, half P-256)", "/orders");
    let per_cert = r.figure(
        "DigiCert calls per issued certificate",
        "/calls_per_certificate",
    );
    r.figure("  reissue calls", "/issue_calls_by_operation/reissue");
    r.figure("  order info calls", "/issue_calls_by_operation/order_info");
    r.figure("  download calls", "/issue_calls_by_operation/download");
    r.figure(
        "  steady: order info calls",
        "/steady_calls_by_operation/order_info",
    );
    r.figure(
        "  steady: reissue list calls",
        "/steady_calls_by_operation/list_reissues",
    );
    let steady = r.figure(
        "calls per order per resync period (3 periods of 20 s, after a restart)",
        "/calls_per_order_per_resync",
    );
    r.figure(
        "the change feed's own reads while issuing (per key)",
        "/issue_feed_calls",
    );
    r.figure(
        "with the feed: calls about single orders over 20 readings",
        "/feed_steady_order_calls",
    );
    r.figure(
        "with the feed: calls per order per hour at the defaults",
        "/feed_calls_per_order_per_hour_at_defaults",
    );
    let at_1000 = r.figure(
        "  the same for 1,000 orders on one key",
        "/feed_calls_per_order_per_hour_at_1000_orders",
    );
    r.figure(
        "without the feed (6 h resync): calls per order per hour",
        "/feedless_calls_per_order_per_hour_at_defaults",
    );
    r.verdict(
        "≤ 3 calls per first certificate issued at once (the order's names, reissue, download)",
        per_cert <= 3.0,
        format!("{per_cert:.2}"),
    );
    r.verdict(
        "≤ 2 calls per order per resync (order info, reissue list)",
        steady <= 2.0,
        format!("{steady:.2}"),
    );
    r.verdict(
        "with the feed, ≤ 0.05 calls per order per hour at 1,000 idle orders on one key (defaults)",
        at_1000 <= 0.05,
        format!("{at_1000:.3}"),
    );
    r
}

async fn dcv(runs: usize, scale: f64) -> Report {
    let mut r = Report::new("dcv");
    for _ in 0..runs {
        let o = scenarios::dcv::run(scenarios::dcv::Params {
            orders: ((10.0 * scale) as usize).max(2),
        })
        .await;
        println!("dcv: {o:?}");
        r.runs.push(to_value(&o));
    }
    r.figure(
        "orders per phase (each with a domain of its own)",
        "/orders",
    );
    r.figure(
        "calls per certificate, validation current",
        "/baseline_calls_per_certificate",
    );
    r.figure(
        "apply → Ready (ms), validation current",
        "/baseline_ready_ms",
    );
    r.figure(
        "calls per certificate, validation lapsed",
        "/lapsed_calls_per_certificate",
    );
    for op in [
        "order_validation",
        "order_dcv_random_value",
        "check_order_dcv",
        "reissue",
        "order_info",
        "request_info",
        "download",
    ] {
        r.figure(
            &format!("  {op}"),
            &format!("/lapsed_calls_by_operation/{op}"),
        );
    }
    r.figure("apply → Ready (ms), validation lapsed", "/lapsed_ready_ms");
    let added = r.figure(
        "calls a DCV round adds per certificate",
        "/added_calls_per_certificate",
    );
    r.figure("ms a DCV round adds per certificate", "/added_ms");
    let ahead = r.figure(
        "calls per order to validate ahead of the renewal",
        "/ahead_calls_per_order",
    );
    r.figure("Ready → validated anew (ms)", "/ahead_ms");
    r.verdict(
        "a lapsed validation costs a bounded number of calls (≤ 5 more per certificate)",
        added <= 5.0,
        format!("{added:.2}"),
    );
    r.verdict(
        "a validation renewed ahead costs ≤ 4 calls per domain",
        ahead <= 4.0,
        format!("{ahead:.2}"),
    );
    r
}

async fn duplicates(runs: usize, scale: f64) -> Report {
    let mut r = Report::new("duplicates");
    for _ in 0..runs {
        let o = scenarios::duplicates::run(scenarios::duplicates::Params {
            duplicates: ((20.0 * scale) as usize).max(2),
            resync: Duration::from_secs(20),
            periods: 3,
        })
        .await;
        println!("duplicates: {o:?}");
        r.runs.push(to_value(&o));
    }
    r.figure("duplicates of one order", "/duplicates");
    let first = r.figure(
        "calls per duplicate, first certificate",
        "/first_calls_per_duplicate",
    );
    for op in ["order_info", "duplicate", "list_duplicates", "download"] {
        r.figure(
            &format!("  {op} (all duplicates)"),
            &format!("/first_calls_by_operation/{op}"),
        );
    }
    r.figure(
        "calls per duplicate per resync period (3 periods of 20 s)",
        "/steady_calls_per_duplicate_per_resync",
    );
    let steady = r.figure(
        "calls per look of a duplicate (order info, duplicate list)",
        "/steady_calls_per_look",
    );
    r.figure(
        "calls per duplicate while the order is reissued (its looks included)",
        "/follow_calls_per_duplicate",
    );
    let follow = r.figure(
        "calls per duplicate to follow a reissue, beyond its look",
        "/follow_extra_calls_per_duplicate",
    );
    r.figure(
        "order reissued → every duplicate follows (ms; resync 20 s)",
        "/follow_ms",
    );
    let revoked = r.figure("certificates of the order revoked", "/revoked");
    r.verdict(
        "≤ 4 calls per new duplicate",
        first <= 4.0,
        format!("{first:.2}"),
    );
    r.verdict(
        "≤ 2 calls per look (one look per resync)",
        steady <= 2.0,
        format!("{steady:.2}"),
    );
    r.verdict(
        "≤ 3 calls per duplicate to follow a reissue, beyond its look",
        follow <= 3.0,
        format!("{follow:.2}"),
    );
    r.verdict("no revocation", revoked == 0.0, format!("{revoked}"));
    r
}

async fn throughput(runs: usize, scale: f64) -> Report {
    let mut r = Report::new("throughput");
    for _ in 0..runs {
        let o = scenarios::throughput::run(scenarios::throughput::Params {
            orders: ((1000.0 * scale) as usize).max(10),
        })
        .await;
        println!("throughput: {o:?}");
        r.runs.push(to_value(&o));
    }
    r.figure(
        "orders applied at once (half RSA-2048, half P-256)",
        "/orders",
    );
    let took = r.figure("seconds until all Ready", "/all_ready_s");
    r.figure("calls per certificate", "/calls_per_certificate");
    let bound = r.figure(
        "bound implied by the limits for those calls (s)",
        "/bound_s",
    );
    let ratio = r.figure("ratio to the bound", "/ratio_to_bound");
    let answers = r.figure("429 answers", "/answers_429");
    r.figure("10% Ready after (s)", "/ready_p10_s");
    r.figure("50% Ready after (s)", "/ready_p50_s");
    r.figure("90% Ready after (s)", "/ready_p90_s");
    r.verdict(
        "all Ready within 1.1 × bound",
        ratio <= 1.1,
        format!("{took:.0} s vs {bound:.0} s bound: {ratio:.3}×"),
    );
    r.verdict("zero 429 answers", answers == 0.0, format!("{answers}"));
    r
}

async fn latency(runs: usize, scale: f64) -> Report {
    let mut r = Report::new("latency");
    for _ in 0..runs {
        let o = scenarios::latency::run(scenarios::latency::Params {
            runs: ((20.0 * scale) as usize).max(3),
        })
        .await;
        println!("latency: {o:?}");
        r.runs.push(to_value(&o));
    }
    let rsa = r.figure("RSA-2048 apply → Ready, median (ms)", "/0/median_ms");
    r.figure("RSA-2048 slowest (ms)", "/0/max_ms");
    r.figure("RSA-2048 first order after start (ms)", "/0/first_ms");
    let ec = r.figure("ECDSA P-256 apply → Ready, median (ms)", "/1/median_ms");
    r.figure("ECDSA P-256 slowest (ms)", "/1/max_ms");
    r.verdict(
        "RSA-2048 median ≤ 1 s",
        rsa <= 1000.0,
        format!("{rsa:.0} ms"),
    );
    r.verdict(
        "ECDSA P-256 median ≤ 1 s",
        ec <= 1000.0,
        format!("{ec:.0} ms"),
    );
    r
}

async fn memory(runs: usize, scale: f64) -> Report {
    let mut r = Report::new("memory");
    for _ in 0..runs {
        let n = ((10_000.0 * scale) as usize).max(10);
        let o = scenarios::memory::run(scenarios::memory::Params {
            orders: n,
            unrelated_secrets: n,
        })
        .await;
        println!("memory: {o:?}");
        r.runs.push(to_value(&o));
    }
    r.figure("orders (P-256), each with its Secret", "/orders");
    r.figure("unrelated Secrets (4 KiB each)", "/unrelated_secrets");
    r.figure("peak RSS while issuing all (MiB)", "/issuing_peak_mib");
    r.figure("seconds to issue all", "/issuing_s");
    r.figure(
        "peak RSS after a restart, reconciling all (MiB)",
        "/restart_peak_mib",
    );
    r.figure("RSS idle after that (MiB)", "/restart_idle_mib");
    let peak = r.figure("peak RSS, larger of the two (MiB)", "/peak_mib");
    r.verdict("peak RSS ≤ 64 MiB", peak <= 64.0, format!("{peak:.1} MiB"));
    r
}

async fn keygen(runs: usize, scale: f64) -> Report {
    let mut r = Report::new("keygen");
    for _ in 0..runs {
        let o = tokio::task::spawn_blocking(move || scenarios::keygen::run(scale))
            .await
            .unwrap();
        println!("keygen: {o:?}");
        r.runs.push(to_value(&o));
    }
    for (i, label) in [
        "RSA-2048",
        "RSA-3072",
        "RSA-4096",
        "ECDSA P-256",
        "ECDSA P-384",
    ]
    .iter()
    .enumerate()
    {
        r.figure(
            &format!("{label}: ours (ms)"),
            &format!("/{i}/ours_median_ms"),
        );
        r.figure(
            &format!("{label}: openssl req (ms)"),
            &format!("/{i}/openssl_median_ms"),
        );
        r.figure(
            &format!("{label}: ratio ours/openssl"),
            &format!("/{i}/ratio"),
        );
        r.figure(
            &format!("{label}: ratio without openssl's process start"),
            &format!("/{i}/ratio_without_process_start"),
        );
    }
    r
}

async fn crash(runs: usize, scale: f64) -> Report {
    let mut r = Report::new("crash");
    for run in 0..runs {
        let o = scenarios::crash::run(scenarios::crash::Params {
            orders: ((200.0 * scale) as usize).max(4),
            kills: 20,
            seed: 7 + run as u64,
        })
        .await;
        println!("crash: {o:?}");
        r.runs.push(to_value(&o));
    }
    r.figure(
        "orders (half RSA-2048, half P-256; issuance after 0–8 s)",
        "/orders",
    );
    r.figure("SIGKILL + restart (every 0.2–1.5 s)", "/kills");
    r.figure("Ready when the last kill came", "/ready_at_last_kill");
    r.figure("seconds the kill loop took", "/kill_loop_s");
    let ready = r.figure("Ready at the end", "/ready");
    let dup = r.figure("orders with a duplicate reissue", "/duplicate_reissues");
    let lost = r.figure("lost keys", "/lost_keys");
    let bad = r.figure("Secrets whose key does not match", "/mismatched_secrets");
    let left = r.figure("pending-key Secrets left", "/leftover_pending_keys");
    r.figure("seconds from the last restart to all Ready", "/settle_s");
    let orders = r.median("/orders");
    r.verdict(
        "0 duplicates, 0 lost keys, 0 mismatched Secrets, all Ready",
        dup == 0.0 && lost == 0.0 && bad == 0.0 && ready == orders && left == 0.0,
        format!("{dup} / {lost} / {bad} / {ready} of {orders}"),
    );
    r
}

async fn faults(runs: usize, scale: f64) -> Report {
    use scenarios::faults::{Endpoint, Fault};
    let mut r = Report::new("faults");
    let window = Duration::from_secs_f64((60.0 * scale).max(10.0));
    let mut all = Vec::new();
    for _ in 0..runs {
        let cells = scenarios::faults::run(scenarios::faults::Params {
            window,
            parallel: 8,
            faults: Fault::ALL.to_vec(),
            endpoints: Endpoint::ALL.to_vec(),
        })
        .await;
        r.runs.push(to_value(&cells));
        all.push(cells);
    }
    r.lines.push(format!(
        "| bound per order while failing | {} calls in {:.0} s | ≤ 4 attempts per reconcile; reconciles ≥ 4 s, 8 s, 16 s, … apart (back-off 5 s doubling to 5 min, jitter −20 %); at the cap ≤ 4 calls per 4 min |",
        scenarios::faults::call_bound(window),
        window.as_secs_f64(),
    ));
    r.lines.push(String::new());
    r.lines.push("| endpoint | fault | calls while failing (median) | bound | status explained | recovered after heal (s, median) | status while failing (last run) |".into());
    r.lines.push("|---|---|---|---|---|---|---|".into());
    let mut met = true;
    let cells = all.len().max(1);
    for i in 0..all.first().map_or(0, Vec::len) {
        let c = &all[0][i];
        let calls: Vec<f64> = all
            .iter()
            .map(|run| run[i].calls_while_failing as f64)
            .collect();
        let rec: Vec<f64> = all.iter().map(|run| run[i].recovery_s).collect();
        let explained = all.iter().all(|run| run[i].explained);
        let within = all.iter().all(|run| run[i].within_bound);
        let recovered = all.iter().all(|run| run[i].recovered);
        met &= explained && within && recovered;
        let last = &all[all.len() - 1][i];
        r.lines.push(format!(
            "| {:?} | {} | {} | {} {} | {} | {} | {} |",
            c.endpoint,
            c.fault.label(),
            format_number(median(&calls)),
            c.bound,
            if within { "ok" } else { "EXCEEDED" },
            if explained { "yes" } else { "NO" },
            if recovered {
                format_number(median(&rec))
            } else {
                "NO".into()
            },
            last.status_while_failing.replace('|', "/"),
        ));
    }
    let _ = cells;
    r.lines.push(String::new());
    r.verdict(
        "every cell: explained, within bound, recovered",
        met,
        String::new(),
    );
    r
}

async fn issuer(runs: usize, scale: f64) -> Report {
    let mut r = Report::new("issuer");
    for _ in 0..runs {
        let o = scenarios::issuer::run(scenarios::issuer::Params {
            requests: ((20.0 * scale) as usize).max(2),
            renewals: ((5.0 * scale) as usize).max(2),
            idle: Duration::from_secs(10),
        })
        .await;
        println!("issuer: {o:?}");
        r.runs.push(to_value(&o));
    }
    r.figure(
        "requests through a DigicertClusterIssuer (Duplicate)",
        "/requests",
    );
    let dup = r.figure(
        "calls per duplicate request",
        "/duplicate_calls_per_request",
    );
    for op in ["order_info", "duplicate", "list_duplicates", "download"] {
        r.figure(
            &format!("  {op} (all requests)"),
            &format!("/duplicate_calls_by_operation/{op}"),
        );
    }
    r.figure(
        "all approved at once → the last Issued (ms)",
        "/duplicates_all_issued_ms",
    );
    r.figure("renewals through a DigicertIssuer (Reissue)", "/renewals");
    let reissue = r.figure("calls per reissue request", "/reissue_calls_per_request");
    for op in ["order_info", "reissue", "list_reissues", "download"] {
        r.figure(
            &format!("  {op} (all renewals)"),
            &format!("/reissue_calls_by_operation/{op}"),
        );
    }
    r.figure(
        "approved → Issued, one reissue request (ms, median)",
        "/reissue_approved_to_issued_ms",
    );
    let idle = r.figure("calls for finished requests in 10 s", "/idle_calls");
    r.verdict(
        "≤ 4 calls per duplicate request",
        dup <= 4.0,
        format!("{dup:.2}"),
    );
    r.verdict(
        "≤ 4 calls per reissue request",
        reissue <= 4.0,
        format!("{reissue:.2}"),
    );
    r.verdict(
        "no call for a finished request",
        idle == 0.0,
        format!("{idle}"),
    );
    r
}

async fn feed(runs: usize, scale: f64) -> Report {
    let mut r = Report::new("feed");
    let interval = Duration::from_secs(30);
    for _ in 0..runs {
        let o = scenarios::feed::run(scenarios::feed::Params {
            orders: ((10_000.0 * scale) as usize).max(10),
            feed_interval: interval,
        })
        .await;
        println!("feed: {o:?}");
        r.runs.push(to_value(&o));
    }
    r.figure("orders (P-256) on one key", "/orders");
    r.figure("seconds to issue all (rate limits off)", "/issuing_s");
    let cold = r.figure(
        "restart at CertCentral's limits: seconds until the feed read every order",
        "/cold_start_s",
    );
    r.figure("  DigiCert calls", "/cold_start_calls");
    r.figure(
        "  list orders calls",
        "/cold_start_calls_by_operation/list_orders",
    );
    let order_calls = r.figure("  calls about single orders", "/cold_start_order_calls");
    let throttled = r.figure("  429 answers", "/cold_start_429");
    r.figure(
        "  one order info per order would take at least (s)",
        "/one_call_per_order_bound_s",
    );
    let revoked = r.figure(
        "an order revoked at DigiCert: seconds until its status says so (feed every 30 s)",
        "/revoked_to_status_s",
    );
    r.verdict(
        "cold start: every order's status known without a 429",
        throttled == 0.0 && cold > 0.0,
        format!("{throttled} × 429 in {cold:.1} s"),
    );
    r.verdict(
        "cold start: no call about single orders",
        order_calls == 0.0,
        format!("{order_calls}"),
    );
    r.verdict(
        "a change at DigiCert in status within 2 × the feed interval",
        revoked <= 2.0 * interval.as_secs_f64(),
        format!("{revoked:.1} s"),
    );
    r
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let a = args();
    std::fs::create_dir_all(&a.out).expect("report directory");
    let machine = machine();
    for name in &a.names {
        let default_runs = match name.as_str() {
            "faults" | "feed" => 1,
            _ => 3,
        };
        let runs = a.runs.unwrap_or(default_runs);
        println!("== {name}: {runs} run(s)");
        let started = std::time::Instant::now();
        let report = match name.as_str() {
            "calls" => calls(runs, a.scale).await,
            "throughput" => throughput(runs, a.scale).await,
            "latency" => latency(runs, a.scale).await,
            "memory" => memory(runs, a.scale).await,
            "keygen" => keygen(runs, a.scale).await,
            "crash" => crash(runs, a.scale).await,
            "faults" => faults(runs, a.scale).await,
            "dcv" => dcv(runs, a.scale).await,
            "duplicates" => duplicates(runs, a.scale).await,
            "issuer" => issuer(runs, a.scale).await,
            "feed" => feed(runs, a.scale).await,
            _ => unreachable!(),
        };
        let mut md = report.markdown();
        md.push_str(&format!(
            "\nTook {:.0} s on {machine}.\n",
            started.elapsed().as_secs_f64()
        ));
        println!("{md}");
        std::fs::write(a.out.join(format!("{name}.md")), &md).expect("report written");
        let raw: BTreeMap<&str, Value> = [
            ("runs", Value::Array(report.runs.clone())),
            ("machine", Value::String(machine.clone())),
        ]
        .into();
        std::fs::write(
            a.out.join(format!("{name}.json")),
            serde_json::to_vec_pretty(&raw).unwrap(),
        )
        .expect("report written");
    }
}

/// CPU model, cores and memory, from /proc.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = cpu.lines().filter(|l| l.starts_with("processor")).count();
    let mem = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib: u64 = mem
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    format!(
        "{model}, {cores} cores, {:.0} GiB",
        kib as f64 / 1024.0 / 1024.0
    )
}
