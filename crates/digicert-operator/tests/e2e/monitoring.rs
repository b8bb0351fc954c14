//! Monitoring: the chart's alerting rules (PrometheusRule) and Grafana dashboard
//! (ConfigMap). The rules, as the chart renders them, are checked and unit-tested with
//! promtool (Prometheus's own tool: every alert fires for its series and stays quiet
//! for healthy ones); the dashboard's queries are parsed by it too; every metric the
//! dashboard and the alerts name is one a running operator serves; every alert links
//! to its runbook in the README; the objects render only when enabled, bad values are
//! refused, and the API server takes what renders.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::cluster::{TestCluster, helm_python, repo_root};
use crate::support::env::OperatorEnv;
use serde::Deserialize;
use serde_json::Value;

const CHART: &str = "charts/digicert-operator";
const SET_IMAGE: &str = "image.repository=registry.example.org/digicert-operator";
/// The dashboard's JSON, as the chart ships it.
const DASHBOARD: &str = "charts/digicert-operator/dashboards/digicert-operator.json";
/// promtool's unit tests of the rules (next to the rendered rules file when run).
const ALERT_TESTS: &str = "monitoring/alerts.test.yaml";
/// The name the unit tests give the rules file.
const RULES_FILE: &str = "digicert-operator.rules.yaml";

/// Series that Prometheus makes itself for every target, not the operator.
const PROMETHEUS_SERIES: &[&str] = &["up"];

// ----------------------------------------------------------------- tools

/// promtool: `DIGICERT_TEST_PROMTOOL`, else the one on the PATH. Missing, it is an
/// error, not a reason to skip: hack/test.sh installs it.
pub(crate) fn promtool() -> PathBuf {
    if let Some(p) = std::env::var_os("DIGICERT_TEST_PROMTOOL") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "DIGICERT_TEST_PROMTOOL={} is not a file: run hack/test.sh, which installs \
             promtool (hack/prometheus/install.sh)",
            p.display()
        );
        return p;
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("promtool"))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "promtool is not installed: run hack/test.sh, which installs it \
                 (hack/prometheus/install.sh: the Debian package prometheus), or set \
                 DIGICERT_TEST_PROMTOOL to its path"
            )
        })
}

/// `promtool ARGS` in `dir`.
fn run_promtool(args: &[&str], dir: &Path) -> Output {
    let tool = promtool();
    Command::new(&tool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{} runs: {e}", tool.display()))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `hack/helm/helm.py ARGS` in the repository root, without a cluster.
fn helm(args: &[&str]) -> Output {
    Command::new(helm_python())
        .arg(repo_root().join("hack/helm/helm.py"))
        .args(args)
        .current_dir(repo_root())
        .env_remove("KUBECONFIG")
        .output()
        .expect("helm.py runs")
}

/// `helm template test CHART -n test-ns --set image.repository=... ARGS`.
fn template(args: &[&str]) -> String {
    let mut all = vec![
        "template", "test", CHART, "-n", "test-ns", "--set", SET_IMAGE,
    ];
    all.extend_from_slice(args);
    let out = helm(&all);
    assert!(
        out.status.success(),
        "helm {}:\n{}",
        all.join(" "),
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).expect("a YAML document"))
        .filter(|v| !v.is_null())
        .collect()
}

fn of_kind(docs: &[Value], kind: &str) -> Vec<Value> {
    docs.iter().filter(|d| d["kind"] == kind).cloned().collect()
}

/// The chart's PrometheusRule with the rules on and `args` besides.
fn prometheus_rule(args: &[&str]) -> Value {
    let mut all = vec!["--set", "prometheusRule.enabled=true"];
    all.extend_from_slice(args);
    let rules = of_kind(&documents(&template(&all)), "PrometheusRule");
    assert_eq!(rules.len(), 1, "one PrometheusRule");
    rules.into_iter().next().unwrap()
}

/// The rendered PrometheusRule's groups as a Prometheus rules file, written as
/// [`RULES_FILE`] into `dir`.
fn write_rules_file(rule: &Value, dir: &Path) -> PathBuf {
    let file = dir.join(RULES_FILE);
    let groups = serde_json::json!({"groups": rule["spec"]["groups"]});
    std::fs::write(&file, serde_yaml::to_string(&groups).unwrap()).unwrap();
    file
}

/// Every rule of a PrometheusRule (or rules file) with its group.
fn rules(rule: &Value) -> Vec<Value> {
    rule["spec"]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").iter().cloned())
        .collect()
}

fn alert_names(rule: &Value) -> Vec<String> {
    rules(rule)
        .iter()
        .map(|r| r["alert"].as_str().expect("an alerting rule").to_string())
        .collect()
}

// ----------------------------------------------------------------- PromQL names

/// PromQL's aggregation operators and keywords: never metric names.
const PROMQL_WORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "inf",
    "nan",
    "atan2",
];

/// The index just after the bracket that closes the one at `open` (`(`, `[`, `{`),
/// skipping string literals.
fn closing(chars: &[char], open: usize) -> usize {
    let (o, c) = match chars[open] {
        '(' => ('(', ')'),
        '[' => ('[', ']'),
        _ => ('{', '}'),
    };
    let mut depth = 0;
    let mut i = open;
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' | '`' => i = after_string(chars, i) - 1,
            ch if ch == o => depth += 1,
            ch if ch == c => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    panic!("unbalanced {o} in {}", chars.iter().collect::<String>())
}

/// The index just after the string literal that starts at `start`.
fn after_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() {
        if chars[i] == '\\' && quote != '`' {
            i += 2;
            continue;
        }
        if chars[i] == quote {
            return i + 1;
        }
        i += 1;
    }
    panic!(
        "unterminated string in {}",
        chars.iter().collect::<String>()
    )
}

/// The metric names a PromQL expression selects: identifiers that are not functions,
/// aggregations or keywords, outside label matchers, label lists, ranges and strings.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        if ch == '"' || ch == '\'' || ch == '`' {
            i = after_string(&chars, i);
        } else if ch == '{' || ch == '[' {
            i = closing(&chars, i);
        } else if ch == '#' {
            // A comment, to the end of the line.
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if ch.is_ascii_digit()
            || (ch == '.' && chars.get(i + 1).is_some_and(|c| c.is_ascii_digit()))
        {
            // A number or a duration: 14, 0.95, 1e3, 5m.
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if ch.is_ascii_alphabetic() || ch == '_' || ch == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let call = chars.get(next) == Some(&'(');
            let lower = word.to_ascii_lowercase();
            if matches!(
                lower.as_str(),
                "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
            ) {
                // A list of labels follows (optional after group_left/group_right).
                if call {
                    i = closing(&chars, next);
                }
            } else if !call && !PROMQL_WORDS.contains(&lower.as_str()) {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// The metric names of the operator's (`digicert_operator_*`, `process_*`) that a
/// text names anywhere, e.g. a query in an alert's annotation template.
fn operator_names_in(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (start, _) in text.match_indices(['d', 'p']) {
        let rest = &text[start..];
        if !(rest.starts_with("digicert_operator_") || rest.starts_with("process_")) {
            continue;
        }
        if start > 0 {
            let before = text.as_bytes()[start - 1];
            if before.is_ascii_alphanumeric() || before == b'_' {
                continue;
            }
        }
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        names.insert(rest[..end].to_string());
    }
    names
}

/// The metric names a scrape of `/metrics` shows: every sample's, and those its
/// families' types promise (counters `_total`; histograms `_bucket`, `_sum`, `_count`),
/// so that a family with no series yet (no order with domain validation, say) counts.
/// In both of the operator's formats: Prometheus text (counters' TYPE lines carry
/// `_total`) and OpenMetrics (they do not).
fn served_names(page: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in page.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            match kind {
                "counter" => {
                    let base = name.strip_suffix("_total").unwrap_or(name);
                    names.insert(format!("{base}_total"));
                }
                "histogram" => {
                    for suffix in ["_bucket", "_sum", "_count"] {
                        names.insert(format!("{name}{suffix}"));
                    }
                }
                "summary" => {
                    names.insert(name.to_string());
                    for suffix in ["_sum", "_count"] {
                        names.insert(format!("{name}{suffix}"));
                    }
                }
                "info" => {
                    names.insert(format!("{name}_info"));
                }
                _ => {
                    names.insert(name.to_string());
                }
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_string());
        }
    }
    names
}

#[test]
fn the_promql_name_reader_finds_metrics_and_only_metrics() {
    let names = metric_names(
        r#"sum by (namespace, le) (rate(a_total{job=~"x|y",le!="+Inf"}[5m] offset 1h)) / on (namespace) group_left (reason) max without (b) (b_metric) > bool 0.95 * 1e3 or vector(1) unless absent(up{job="x"} == 1) and time() - c:recorded"#,
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["a_total", "b_metric", "c:recorded", "up"]
    );
    assert_eq!(
        operator_names_in(
            r#"{{ with printf "max(digicert_operator_x{a=\"b\"})" | query }}not_digicert_operator_y process_open_fds"#
        ),
        ["digicert_operator_x", "process_open_fds"]
            .map(String::from)
            .into_iter()
            .collect()
    );
    let served = served_names(
        "# HELP a_requests Requests.\n# TYPE a_requests counter\na_requests_total{x=\"1\"} 3\n\
         # TYPE b_total counter\n# TYPE c_seconds histogram\n# TYPE d gauge\n# EOF\n",
    );
    assert_eq!(
        served.into_iter().collect::<Vec<_>>(),
        [
            "a_requests_total",
            "b_total",
            "c_seconds_bucket",
            "c_seconds_count",
            "c_seconds_sum",
            "d"
        ]
    );
}

// ----------------------------------------------------------------- dashboard

fn dashboard() -> Value {
    let path = repo_root().join(DASHBOARD);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not well-formed JSON: {e}", path.display()))
}

/// Every panel of the dashboard, those in collapsed rows too.
fn panels(dashboard: &Value) -> Vec<Value> {
    let mut all = Vec::new();
    for p in dashboard["panels"].as_array().expect("panels") {
        all.push(p.clone());
        for inner in p["panels"].as_array().into_iter().flatten() {
            all.push(inner.clone());
        }
    }
    all
}

/// The dashboard's queries: (where, PromQL), with Grafana's variables in them.
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut queries = Vec::new();
    for p in panels(dashboard) {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap_or_else(|| {
                panic!("panel {:?} target {} has no expr", p["title"], t["refId"])
            });
            queries.push((
                format!("panel {} {:?} target {}", p["id"], p["title"], t["refId"]),
                expr.to_string(),
            ));
        }
    }
    queries
}

/// The selectors of the dashboard's `label_values(SELECTOR, LABEL)` variables.
fn variable_selectors(dashboard: &Value) -> Vec<(String, String)> {
    let mut selectors = Vec::new();
    for v in dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
    {
        if v["type"] != "query" {
            continue;
        }
        let query = v["query"]["query"]
            .as_str()
            .or(v["query"].as_str())
            .unwrap();
        let inner = query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .unwrap_or_else(|| panic!("variable {}: {query}", v["name"]));
        let (selector, _label) = inner
            .rsplit_once(',')
            .expect("label_values(selector, label)");
        selectors.push((
            format!("variable {}", v["name"]),
            selector.trim().to_string(),
        ));
    }
    selectors
}

/// A query with Grafana's variables replaced as Grafana would, so that Prometheus can
/// parse it. Panics on a variable it does not know.
fn grafana_substituted(expr: &str) -> String {
    let mut out = expr.to_string();
    for (var, value) in [
        ("$__rate_interval", "5m"),
        ("$__interval", "1m"),
        ("$__range", "1d"),
        ("${namespace}", ".*"),
        ("$namespace", ".*"),
        ("${job}", ".*"),
        ("$job", ".*"),
    ] {
        out = out.replace(var, value);
    }
    assert!(
        !out.contains('$'),
        "a variable the dashboard does not define: {expr}"
    );
    out
}

/// Writes `queries` as recording rules of a rules file and runs `promtool check rules`
/// on it: Prometheus's own parser judges each query.
fn check_queries(queries: &[(String, String)], dir: &Path) -> Output {
    let rules: Vec<Value> = queries
        .iter()
        .enumerate()
        .map(|(i, (_, expr))| {
            serde_json::json!({"record": format!("dashboard:query_{i}"), "expr": grafana_substituted(expr)})
        })
        .collect();
    let file = dir.join("dashboard-queries.rules.yaml");
    let groups = serde_json::json!({"groups": [{"name": "dashboard", "rules": rules}]});
    std::fs::write(&file, serde_yaml::to_string(&groups).unwrap()).unwrap();
    run_promtool(&["check", "rules", file.to_str().unwrap()], dir)
}

#[test]
fn the_dashboard_is_json_with_its_variables_and_prometheus_parses_every_query() {
    let dash = dashboard();
    assert_eq!(dash["uid"], "digicert-operator");
    let vars = dash["templating"]["list"].as_array().expect("variables");
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no variable {name}"))
    };
    assert_eq!(var("datasource")["type"], "datasource");
    assert_eq!(var("datasource")["query"], "prometheus");
    let namespace = var("namespace");
    assert_eq!(namespace["type"], "query");
    assert_eq!(namespace["includeAll"], true);
    assert!(
        namespace["query"]["query"]
            .as_str()
            .unwrap()
            .ends_with(", namespace)"),
        "{namespace}"
    );

    // Every panel and query reads the chosen data source; panel ids are unique.
    let mut ids = BTreeSet::new();
    for p in panels(&dash) {
        assert!(
            ids.insert(p["id"].as_i64().expect("an id")),
            "id {}",
            p["id"]
        );
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        assert!(
            !p["targets"].as_array().unwrap().is_empty(),
            "{}",
            p["title"]
        );
        for t in p["targets"].as_array().unwrap() {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        }
    }

    // The panels lie side by side in Grafana's 24 columns, none over another.
    let mut cells = BTreeSet::new();
    for p in panels(&dash) {
        let g = &p["gridPos"];
        let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| g[k].as_u64().expect("gridPos"));
        assert!(x + w <= 24 && w > 0 && h > 0, "{}: {g}", p["title"]);
        for cx in x..x + w {
            for cy in y..y + h {
                assert!(
                    cells.insert((cx, cy)),
                    "{} overlaps another panel",
                    p["title"]
                );
            }
        }
    }

    // Each subject has its panel: the metrics operators look at.
    let queries = dashboard_queries(&dash);
    let used: BTreeSet<String> = queries.iter().flat_map(|(_, q)| metric_names(q)).collect();
    for metric in [
        "digicert_operator_certificate_expiration_timestamp_seconds",
        "digicert_operator_certificate_renewal_timestamp_seconds",
        "digicert_operator_order_end_timestamp_seconds",
        "digicert_operator_order_ready_status",
        "digicert_operator_order_condition",
        "digicert_operator_domain_validation_expiration_timestamp_seconds",
        "digicert_operator_reissues_total",
        "digicert_operator_certcentral_requests_total",
        "digicert_operator_rate_limiter_wait_seconds_bucket",
    ] {
        assert!(used.contains(metric), "no panel shows {metric}: {used:?}");
    }
    // Orders that are not Ready are shown with their reason; namespaces filter.
    assert!(
        queries
            .iter()
            .any(|(_, q)| q.contains("type=\"Ready\"") && q.contains("reason"))
    );
    assert!(
        queries
            .iter()
            .any(|(_, q)| q.contains("RevocationConsentRequired"))
    );
    assert!(queries.iter().any(|(_, q)| q.contains("status=\"429\"")));
    assert!(queries.iter().any(|(_, q)| q.contains("vector(1000)")));
    assert!(queries.iter().any(|(_, q)| q.contains("vector(100)")));
    for (what, q) in &queries {
        if metric_names(q).iter().any(|m| {
            m.contains("_order_")
                || m.contains("_certificate_")
                || m.contains("_domain_validation_")
        }) {
            assert!(q.contains("namespace=~\"$namespace\""), "{what}: {q}");
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let mut all = queries.clone();
    all.extend(variable_selectors(&dash));
    let out = check_queries(&all, dir.path());
    assert!(
        out.status.success(),
        "promtool refuses a query of the dashboard:\n{}",
        text(&out)
    );
    assert!(
        text(&out).contains(&format!("SUCCESS: {} rules found", all.len())),
        "{}",
        text(&out)
    );
    // The check can fail: a query that does not parse is refused.
    let broken = vec![(
        "broken".to_string(),
        "sum by (namespace (digicert_operator_order_ready_status)".to_string(),
    )];
    let out = check_queries(&broken, dir.path());
    assert!(!out.status.success(), "{}", text(&out));
}

// ----------------------------------------------------------------- rules

#[test]
fn promtool_checks_the_charts_alerting_rules() {
    let rule = prometheus_rule(&[]);
    let alerts = alert_names(&rule);
    assert_eq!(
        alerts,
        [
            "DigicertOperatorAbsent",
            "DigicertCertificateExpiringSoon",
            "DigicertOrderNotReady",
            "DigicertOrderEnding",
            "DigicertRateLimited",
            "DigicertDomainValidationFailing",
            "DigicertRevocationConsentRequired",
        ]
    );
    for r in rules(&rule) {
        let name = &r["alert"];
        assert!(
            matches!(
                r["labels"]["severity"].as_str(),
                Some("warning" | "critical")
            ),
            "{name}"
        );
        for key in ["summary", "description", "runbook_url"] {
            assert!(
                r["annotations"][key]
                    .as_str()
                    .is_some_and(|s| !s.trim().is_empty()),
                "{name}: no {key}"
            );
        }
        assert!(
            !r["expr"].as_str().unwrap().contains("${"),
            "{name}: {}",
            r["expr"]
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let file = write_rules_file(&rule, dir.path());
    let out = run_promtool(&["check", "rules", file.to_str().unwrap()], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("SUCCESS: {} rules found", alerts.len())),
        "{}",
        text(&out)
    );
    // The check can fail: an expression Prometheus cannot parse is refused.
    let mut broken = rule.clone();
    broken["spec"]["groups"][0]["rules"][1]["expr"] = "max by (namespace (x)".into();
    let file = write_rules_file(&broken, dir.path());
    let out = run_promtool(&["check", "rules", file.to_str().unwrap()], dir.path());
    assert!(!out.status.success(), "{}", text(&out));
}

/// The unit tests' file: which alerts each evaluation expects.
fn alert_rule_tests() -> Vec<(String, bool)> {
    let path = repo_root().join(ALERT_TESTS);
    let tests: Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut evaluations = Vec::new();
    for t in tests["tests"].as_array().expect("tests") {
        for a in t["alert_rule_test"].as_array().into_iter().flatten() {
            let fires = a["exp_alerts"].as_array().is_some_and(|e| !e.is_empty());
            evaluations.push((a["alertname"].as_str().unwrap().to_string(), fires));
        }
    }
    evaluations
}

/// `promtool test rules` of the unit tests against `rule` (rendered), in a fresh
/// directory.
fn unit_test(rule: &Value) -> Output {
    let dir = tempfile::tempdir().unwrap();
    write_rules_file(rule, dir.path());
    std::fs::copy(
        repo_root().join(ALERT_TESTS),
        dir.path().join("alerts.test.yaml"),
    )
    .unwrap();
    run_promtool(&["test", "rules", "alerts.test.yaml"], dir.path())
}

#[test]
fn promtool_unit_tests_fire_every_alert_and_keep_it_quiet_when_all_is_well() {
    let rule = prometheus_rule(&[]);
    let evaluations = alert_rule_tests();
    for alert in alert_names(&rule) {
        assert!(
            evaluations.iter().any(|(a, fires)| *a == alert && *fires),
            "{ALERT_TESTS}: no test where {alert} fires"
        );
        assert!(
            evaluations.iter().any(|(a, fires)| *a == alert && !*fires),
            "{ALERT_TESTS}: no test where {alert} stays quiet"
        );
    }
    let out = unit_test(&rule);
    assert!(
        out.status.success(),
        "promtool test rules {ALERT_TESTS}:\n{}",
        text(&out)
    );
    assert!(text(&out).contains("SUCCESS"), "{}", text(&out));

    // The thresholds are the chart's values: with others, the same series give other
    // alerts, and the unit tests (written for the defaults) say which.
    let other = prometheus_rule(&[
        "--set",
        "prometheusRule.certificateExpiryDays=5,prometheusRule.orderEndingDays=10,prometheusRule.orderNotReadyFor=1h",
    ]);
    let out = unit_test(&other);
    assert!(!out.status.success(), "{}", text(&out));
    let report = text(&out);
    for alert in [
        "DigicertCertificateExpiringSoon",
        "DigicertOrderEnding",
        "DigicertOrderNotReady",
    ] {
        assert!(
            report.contains(&format!("alertname: {alert},")),
            "{alert}:\n{report}"
        );
    }
    for alert in [
        "DigicertOperatorAbsent",
        "DigicertRateLimited",
        "DigicertDomainValidationFailing",
        "DigicertRevocationConsentRequired",
    ] {
        assert!(
            !report.contains(&format!("alertname: {alert},")),
            "{alert}:\n{report}"
        );
    }
}

/// The anchors GitHub gives the headings of the README's "Runbook" section.
fn runbook_anchors() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let section = readme
        .split("\n## Runbook\n")
        .nth(1)
        .expect("the README has a \"## Runbook\" section");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .map(|h| {
            h.trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect()
}

#[test]
fn every_alert_links_to_its_runbook_in_the_readme_and_the_values_shape_the_rules() {
    let anchors = runbook_anchors();
    let rule = prometheus_rule(&[]);
    for r in rules(&rule) {
        let alert = r["alert"].as_str().unwrap();
        let url = r["annotations"]["runbook_url"].as_str().unwrap();
        let anchor = url
            .strip_prefix("README.md#")
            .unwrap_or_else(|| panic!("{alert}: {url}"));
        assert_eq!(anchor, alert.to_lowercase(), "{alert}");
        assert!(
            anchors.contains(anchor),
            "{alert}: no heading for #{anchor} in the README's Runbook: {anchors:?}"
        );
    }
    // The absent alert looks for the chart's metrics Service in its namespace.
    assert_eq!(
        rules(&rule)[0]["expr"],
        "absent(up{job=\"test-digicert-operator-metrics\",namespace=\"test-ns\"} == 1)"
    );
    assert_eq!(
        rule["metadata"]["namespace"], "test-ns",
        "{}",
        rule["metadata"]
    );

    let other = prometheus_rule(&[
        "--set",
        "prometheusRule.runbookURL=https://git.example.org/pki/digicert-operator/blob/main/README.md",
        "--set",
        "prometheusRule.alertLabels.team=pki,prometheusRule.labels.release=prometheus",
        "--set-string",
        "prometheusRule.operatorSelector=job=\"digicert\"",
    ]);
    assert_eq!(other["metadata"]["labels"]["release"], "prometheus");
    for r in rules(&other) {
        let alert = r["alert"].as_str().unwrap().to_lowercase();
        assert_eq!(
            r["annotations"]["runbook_url"],
            format!("https://git.example.org/pki/digicert-operator/blob/main/README.md#{alert}")
        );
        assert_eq!(r["labels"]["team"], "pki", "{alert}");
        assert!(r["labels"]["severity"].is_string(), "{alert}");
    }
    assert_eq!(
        rules(&other)[0]["expr"],
        "absent(up{job=\"digicert\"} == 1)"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = write_rules_file(&other, dir.path());
    let out = run_promtool(&["check", "rules", file.to_str().unwrap()], dir.path());
    assert!(out.status.success(), "{}", text(&out));
}

// ----------------------------------------------------------------- chart

#[test]
fn the_dashboard_and_the_rules_render_only_when_enabled() {
    let dashboards = |docs: &[Value]| -> Vec<Value> {
        of_kind(docs, "ConfigMap")
            .into_iter()
            .filter(|c| c["data"].get("digicert-operator.json").is_some())
            .collect()
    };
    let defaults = documents(&template(&[]));
    assert!(of_kind(&defaults, "PrometheusRule").is_empty());
    assert!(dashboards(&defaults).is_empty());
    // The ServiceMonitor keeps the orders' namespace label.
    let docs = documents(&template(&["--set", "serviceMonitor.enabled=true"]));
    let monitor = &of_kind(&docs, "ServiceMonitor")[0];
    assert_eq!(monitor["spec"]["endpoints"][0]["honorLabels"], true);

    let docs = documents(&template(&["--set", "grafanaDashboard.enabled=true"]));
    assert!(of_kind(&docs, "PrometheusRule").is_empty());
    let cms = dashboards(&docs);
    assert_eq!(cms.len(), 1);
    let cm = &cms[0];
    assert_eq!(cm["metadata"]["name"], "test-digicert-operator-dashboard");
    assert_eq!(cm["metadata"]["namespace"], "test-ns");
    assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
    // What ships is the dashboard's file, whole.
    let shipped: Value =
        serde_json::from_str(cm["data"]["digicert-operator.json"].as_str().unwrap()).unwrap();
    assert_eq!(shipped, dashboard());

    let docs = documents(&template(&[
        "--set",
        "grafanaDashboard.enabled=true,grafanaDashboard.namespace=monitoring",
        "--set",
        "grafanaDashboard.sidecarLabel=example.org/dashboard,grafanaDashboard.sidecarLabelValue=pki",
        "--set",
        "grafanaDashboard.labels.team=pki,grafanaDashboard.annotations.grafana_folder=PKI",
    ]));
    let cm = &dashboards(&docs)[0];
    assert_eq!(cm["metadata"]["namespace"], "monitoring");
    assert_eq!(cm["metadata"]["labels"]["example.org/dashboard"], "pki");
    assert!(cm["metadata"]["labels"].get("grafana_dashboard").is_none());
    assert_eq!(cm["metadata"]["labels"]["team"], "pki");
    assert_eq!(cm["metadata"]["annotations"]["grafana_folder"], "PKI");

    let docs = documents(&template(&["--set", "prometheusRule.enabled=true"]));
    assert!(dashboards(&docs).is_empty());
    assert_eq!(of_kind(&docs, "PrometheusRule").len(), 1);

    // Both on, the chart lints strictly.
    let out = helm(&[
        "lint",
        CHART,
        "--strict",
        "--set",
        SET_IMAGE,
        "--set",
        "prometheusRule.enabled=true,grafanaDashboard.enabled=true,serviceMonitor.enabled=true",
    ]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn bad_monitoring_values_are_refused_with_the_field_named() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--set", "prometheusRule.enabled=yes"],
            "/prometheusRule/enabled",
        ),
        (
            &["--set", "prometheusRule.certificateExpiryDays=0"],
            "/prometheusRule/certificateExpiryDays",
        ),
        (
            &["--set-json", "prometheusRule.orderEndingDays=1.5"],
            "/prometheusRule/orderEndingDays",
        ),
        (
            &["--set", "prometheusRule.orderNotReadyFor=30 minutes"],
            "/prometheusRule/orderNotReadyFor",
        ),
        (
            &["--set", "prometheusRule.rateLimitedFor=soon"],
            "/prometheusRule/rateLimitedFor",
        ),
        (
            &["--set", "prometheusRule.runbookURL=README.md#runbook"],
            "/prometheusRule/runbookURL",
        ),
        (
            &[
                "--set-string",
                "prometheusRule.operatorSelector=up{job=\"x\"}",
            ],
            "/prometheusRule/operatorSelector",
        ),
        (
            &["--set-json", "prometheusRule.alertLabels={\"team\":1}"],
            "/prometheusRule/alertLabels/team",
        ),
        (
            &["--set", "prometheusRule.expiryDays=3"],
            "'expiryDays' not allowed",
        ),
        (
            &["--set", "grafanaDashboard.namespace=Monitoring"],
            "/grafanaDashboard/namespace",
        ),
        (
            &["--set", "grafanaDashboard.sidecarLabel=grafana dashboard"],
            "/grafanaDashboard/sidecarLabel",
        ),
        (
            &["--set-json", "grafanaDashboard.sidecarLabelValue=1"],
            "/grafanaDashboard/sidecarLabelValue",
        ),
        (
            &["--set", "grafanaDashboard.enable=true"],
            "'enable' not allowed",
        ),
    ];
    for (args, field) in cases {
        let mut all = vec![
            "template", "test", CHART, "-n", "test-ns", "--set", SET_IMAGE,
        ];
        all.extend_from_slice(args);
        let out = helm(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{args:?} was accepted:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            stderr.contains(field),
            "{args:?}: the message does not name {field}:\n{stderr}"
        );
    }
    // The values the README shows are taken.
    template(&[
        "--set",
        "prometheusRule.enabled=true,prometheusRule.certificateExpiryDays=21,prometheusRule.orderNotReadyFor=1h",
        "--set",
        "grafanaDashboard.enabled=true,grafanaDashboard.namespace=monitoring",
        "--set-string",
        "grafanaDashboard.sidecarLabelValue=1",
    ]);
}

#[tokio::test]
async fn the_api_server_takes_the_dashboard_and_the_rules_strictly() {
    let cluster = TestCluster::new("monitoring-dry-run").await;
    let crd = repo_root().join("crates/digicert-operator/tests/fixtures/prometheusrule-crd.yaml");
    cluster.kubectl_ok(&["apply", "-f", crd.to_str().unwrap()], None);
    crate::support::cluster::wait_established(
        &cluster.kubeconfig,
        &["prometheusrules.monitoring.coreos.com"],
    );
    let ns = cluster.namespace.as_str();
    let docs = documents(&template_in(
        ns,
        &[
            "--set",
            &format!(
                "prometheusRule.enabled=true,prometheusRule.alertLabels.team=pki,grafanaDashboard.enabled=true,grafanaDashboard.namespace={ns}"
            ),
        ],
    ));
    let monitoring: Vec<Value> = docs
        .into_iter()
        .filter(|d| {
            d["kind"] == "PrometheusRule"
                || (d["kind"] == "ConfigMap" && d["data"].get("digicert-operator.json").is_some())
        })
        .collect();
    assert_eq!(monitoring.len(), 2);
    let yaml: String = monitoring
        .iter()
        .map(|d| format!("---\n{}", serde_yaml::to_string(d).unwrap()))
        .collect();
    let out = cluster.kubectl_run(
        &[
            "apply",
            "--server-side",
            "--field-manager=e2e-dry-run",
            "--dry-run=server",
            "--validate=strict",
            "-f",
            "-",
        ],
        Some(&yaml),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the API server refused:\n{stderr}");
    assert!(
        !stderr.to_ascii_lowercase().contains("warning"),
        "warnings:\n{stderr}"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        2,
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `helm template test CHART -n NS ...`.
fn template_in(ns: &str, args: &[&str]) -> String {
    let mut all = vec!["template", "test", CHART, "-n", ns, "--set", SET_IMAGE];
    all.extend_from_slice(args);
    let out = helm(&all);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ----------------------------------------------------------------- a running operator

/// Every metric name the dashboard's queries and variables and the alerts' expressions
/// and annotations use, with where.
fn used_names() -> Vec<(String, String)> {
    let dash = dashboard();
    let mut used = Vec::new();
    for (what, q) in dashboard_queries(&dash)
        .into_iter()
        .chain(variable_selectors(&dash))
    {
        for name in metric_names(&q) {
            used.push((name, format!("dashboard {what}")));
        }
    }
    let rule = prometheus_rule(&[]);
    for r in rules(&rule) {
        let alert = r["alert"].as_str().unwrap();
        for name in metric_names(r["expr"].as_str().unwrap()) {
            used.push((name, format!("alert {alert}")));
        }
        for (key, text) in r["annotations"].as_object().unwrap() {
            for name in operator_names_in(text.as_str().unwrap()) {
                used.push((name, format!("alert {alert} annotation {key}")));
            }
        }
    }
    used
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_metric_the_dashboard_and_the_alerts_use_is_served_by_a_running_operator() {
    let used = used_names();
    assert!(used.len() > 20, "{used:?}");

    // An order whose domain was validated yesterday, with domain validation set: its
    // certificate is issued at once and the validation's expiry is read (a family with
    // no series is not served, so every family the queries use needs one).
    let mut config = OperatorEnv::simulator_config(vec![crate::support::order(1001)]);
    config.seed.domains = vec![crate::support::dcv::domain_at(
        "example.com",
        "dns-txt-token",
        time::OffsetDateTime::now_utc() - time::Duration::days(1),
    )];
    let mut env = OperatorEnv::with_simulator("monitoring", config).await;
    env.start_operator();
    let base = env.http_base();
    env.apply(&OperatorEnv::order_yaml(
        "web",
        1001,
        "  domainValidation:\n    method: dns-txt-token\n    dns:\n      dnsEndpoint: {}\n",
    ));
    env.wait_ready("web").await;
    // The order's series follow its status; scrape until they are there.
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let has = |page: &str, family: &str| {
        page.lines()
            .any(|l| l.starts_with(&format!("{family}{{")) && l.contains("name=\"web\""))
    };
    let page = loop {
        let page = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("/metrics answers")
            .text()
            .await
            .unwrap();
        if has(
            &page,
            "digicert_operator_certificate_expiration_timestamp_seconds",
        ) && has(
            &page,
            "digicert_operator_domain_validation_expiration_timestamp_seconds",
        ) {
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "no certificate or domain validation series for the order in:\n{page}\n\n{}",
            env.operator_logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let served = served_names(&page);
    let unknown: Vec<&(String, String)> = used
        .iter()
        .filter(|(name, _)| !served.contains(name) && !PROMETHEUS_SERIES.contains(&name.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "the dashboard or the alerts use metrics the operator does not serve:\n{}\n\nserved: {served:?}",
        unknown
            .iter()
            .map(|(n, w)| format!("  {n} ({w})"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The same check finds a name that is not served.
    assert!(!served.contains("digicert_operator_certificate_not_after_timestamp_seconds"));
}
