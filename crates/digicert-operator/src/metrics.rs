//! Prometheus metrics, served on `/metrics`: OpenMetrics when the scraper asks for it,
//! else Prometheus's text format (0.0.4). Names follow Prometheus's conventions and
//! cert-manager's where the meaning is the same (`*_timestamp_seconds` for Unix times,
//! `*_ready_status{condition}` one-hot); the process's own metrics are unprefixed.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::certcentral::{CallObserver, Operation};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OrderLabels {
    pub namespace: String,
    pub name: String,
}

/// Ready as cert-manager shows a certificate's: one series per condition value, the
/// one that holds is 1.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReadyLabels {
    pub namespace: String,
    pub name: String,
    /// True, False or Unknown
    pub condition: String,
}

/// One condition of an order's status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConditionLabels {
    pub namespace: String,
    pub name: String,
    #[prometheus(flatten)]
    pub condition: ConditionSeries,
}

/// A condition as published: type, status and reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConditionSeries {
    pub r#type: String,
    pub status: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DomainLabels {
    pub namespace: String,
    pub name: String,
    pub domain: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReissueLabels {
    /// submitted, issued, failed, canceled, picked_up
    pub event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub operation: String,
    /// HTTP status, or `timeout` / `connection` / `reset` when none came.
    pub status: String,
    /// DigiCert's error code, empty on success.
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeedLabels {
    /// changes (status changes), page (list orders by page), ids (list orders by id)
    pub kind: String,
    /// ok or failed
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeedOrderLabels {
    /// The feed: its endpoint and the first hash digits of its key.
    pub feed: String,
    /// followed, or unread (followed, not read by the feed yet)
    pub state: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// The times an order's gauges show.
#[derive(Clone, Copy, Debug, Default)]
pub struct OrderTimes {
    pub not_after: Option<time::OffsetDateTime>,
    pub renewal: Option<time::OffsetDateTime>,
    pub order_end: Option<time::OffsetDateTime>,
}

pub struct Metrics {
    registry: Registry,
    pub certificate_not_after: Family<OrderLabels, FloatGauge>,
    pub renewal_time: Family<OrderLabels, FloatGauge>,
    pub order_end: Family<OrderLabels, FloatGauge>,
    pub ready: Family<ReadyLabels, Gauge>,
    pub conditions: Family<ConditionLabels, Gauge>,
    /// The conditions each order's series were published for, to remove the old ones.
    published_conditions:
        std::sync::Mutex<std::collections::HashMap<OrderLabels, Vec<ConditionSeries>>>,
    pub domain_validation_expiry: Family<DomainLabels, FloatGauge>,
    build_info: Family<BuildLabels, Gauge>,
    /// The domains each order's series were published for, to remove the old ones.
    domains: std::sync::Mutex<std::collections::HashMap<OrderLabels, Vec<String>>>,
    pub reissues: Family<ReissueLabels, Counter>,
    pub certcentral_calls: Family<CallLabels, Counter>,
    pub certcentral_duration: Family<OperationLabels, Histogram>,
    pub rate_limiter_wait: Histogram,
    pub reconciles: Counter,
    pub reconcile_errors: Counter,
    pub feed_readings: Family<FeedLabels, Counter>,
    pub feed_woken: Counter,
    pub feed_orders: Family<FeedOrderLabels, Gauge>,
    pub reconcile_duration: Histogram,
    /// Deleted orders (uid → when), so that late reconciles publish nothing for them.
    gone: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

fn ready_labels(labels: &OrderLabels, condition: &str) -> ReadyLabels {
    ReadyLabels {
        namespace: labels.namespace.clone(),
        name: labels.name.clone(),
        condition: condition.into(),
    }
}

/// OpenMetrics text as Prometheus's text format 0.0.4: no `# EOF` and no `# UNIT`, and
/// a counter's HELP and TYPE name its samples (`x_total`), not the family (`x`).
pub fn to_text_format(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let counter = ["# HELP ", "# TYPE "].iter().find_map(|kind| {
            let (name, tail) = line.strip_prefix(kind)?.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{kind}{name}_total {tail}"))
        });
        out.push_str(counter.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// How long a deleted order's uid is remembered.
const FORGOTTEN_FOR: Duration = Duration::from_secs(15 * 60);

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut metrics = Metrics {
            registry: Registry::default(),
            certificate_not_after: Family::<OrderLabels, FloatGauge>::default(),
            renewal_time: Family::<OrderLabels, FloatGauge>::default(),
            order_end: Family::<OrderLabels, FloatGauge>::default(),
            ready: Family::<ReadyLabels, Gauge>::default(),
            conditions: Family::<ConditionLabels, Gauge>::default(),
            published_conditions: Default::default(),
            build_info: Family::<BuildLabels, Gauge>::default(),
            domain_validation_expiry: Family::<DomainLabels, FloatGauge>::default(),
            reissues: Family::<ReissueLabels, Counter>::default(),
            certcentral_calls: Family::<CallLabels, Counter>::default(),
            certcentral_duration: Family::<OperationLabels, Histogram>::new_with_constructor(
                || Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            ),
            rate_limiter_wait: Histogram::new(exponential_buckets(0.01, 2.0, 16)),
            reconciles: Counter::default(),
            reconcile_errors: Counter::default(),
            feed_readings: Family::<FeedLabels, Counter>::default(),
            feed_woken: Counter::default(),
            feed_orders: Family::<FeedOrderLabels, Gauge>::default(),
            reconcile_duration: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            domains: Default::default(),
            gone: Default::default(),
        };
        metrics
            .build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").into(),
            })
            .set(1);
        let mut registry = Registry::default();
        let ours = registry.sub_registry_with_prefix("digicert_operator");
        metrics.register_orders(ours);
        metrics.register_calls(ours);
        registry.register_collector(Box::new(crate::process_metrics::ProcessCollector));
        metrics.registry = registry;
        metrics
    }

    /// The series of each order: its certificate, renewal, order end, Ready, domain
    /// validations, reissues.
    fn register_orders(&self, r: &mut Registry) {
        r.register(
            "build_info",
            "The operator's version; always 1",
            self.build_info.clone(),
        );
        r.register(
            "certificate_expiration_timestamp_seconds",
            "Expiry (notAfter) of the certificate in each order's Secret (Unix time)",
            self.certificate_not_after.clone(),
        );
        r.register(
            "certificate_renewal_timestamp_seconds",
            "When each order's certificate will be renewed (Unix time)",
            self.renewal_time.clone(),
        );
        r.register(
            "order_end_timestamp_seconds",
            "When each DigiCert order (Multi-year Plan) ends: no certificate outlasts it (Unix time)",
            self.order_end.clone(),
        );
        r.register(
            "order_ready_status",
            "Each order's Ready condition: 1 for the value it has (True, False, Unknown)",
            self.ready.clone(),
        );
        r.register(
            "order_condition",
            "1 for each condition of each order's status, by type, status and reason",
            self.conditions.clone(),
        );
        r.register(
            "domain_validation_expiration_timestamp_seconds",
            "When DigiCert's validation of each domain of an order stops being reusable (Unix time)",
            self.domain_validation_expiry.clone(),
        );
        r.register(
            "reissues",
            "Reissues by event: submitted, issued, failed, canceled, picked_up",
            self.reissues.clone(),
        );
    }

    /// DigiCert calls, the rate limiter and reconciles.
    fn register_calls(&self, r: &mut Registry) {
        r.register(
            "certcentral_requests",
            "CertCentral API requests (every attempt) by operation and outcome",
            self.certcentral_calls.clone(),
        );
        r.register(
            "certcentral_request_duration_seconds",
            "Latency of CertCentral API requests",
            self.certcentral_duration.clone(),
        );
        r.register(
            "rate_limiter_wait_seconds",
            "Time CertCentral requests waited for the client-side rate limiter",
            self.rate_limiter_wait.clone(),
        );
        r.register("reconciles", "Reconciles run", self.reconciles.clone());
        r.register(
            "reconcile_errors",
            "Reconciles that ended in an error",
            self.reconcile_errors.clone(),
        );
        r.register(
            "reconcile_duration_seconds",
            "Duration of reconciles",
            self.reconcile_duration.clone(),
        );
        r.register(
            "feed_readings",
            "Readings of DigiCert's change feed by kind (changes, page, ids) and outcome",
            self.feed_readings.clone(),
        );
        r.register(
            "feed_orders_woken",
            "DigicertOrders woken because DigiCert's change feed or a webhook said their order changed",
            self.feed_woken.clone(),
        );
        r.register(
            "feed_orders",
            "DigicertOrders each change feed follows, and of those the ones it has not read yet",
            self.feed_orders.clone(),
        );
    }

    /// How many orders a feed follows, and how many of them it has not read yet.
    pub fn feed_orders(&self, feed: &str, followed: usize, unread: usize) {
        for (state, n) in [("followed", followed), ("unread", unread)] {
            self.feed_orders
                .get_or_create(&FeedOrderLabels {
                    feed: feed.into(),
                    state: state.into(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Counts one reading of the change feed.
    pub fn feed_reading(&self, kind: &str, ok: bool) {
        self.feed_readings
            .get_or_create(&FeedLabels {
                kind: kind.into(),
                outcome: if ok { "ok" } else { "failed" }.into(),
            })
            .inc();
    }

    /// OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// What `/metrics` answers a scraper whose `Accept` header is `accept`: OpenMetrics
    /// when it asks for it, else Prometheus's text format 0.0.4. (content type, body)
    pub fn encode_for(&self, accept: Option<&str>) -> (&'static str, String) {
        let text = self.encode();
        if accept.is_some_and(|a| a.contains("application/openmetrics-text")) {
            (OPENMETRICS, text)
        } else {
            (TEXT_FORMAT, to_text_format(&text))
        }
    }

    pub fn reissue(&self, event: &str) {
        self.reissues
            .get_or_create(&ReissueLabels {
                event: event.into(),
            })
            .inc();
    }

    /// Publishes the gauges of the order with `uid`: Ready (`None`: no Ready condition
    /// yet), every condition of its status, and its times; a time that is not known
    /// removes its series. Nothing is published for an order already forgotten: a
    /// reconcile that ends after its deletion was seen must not bring its series back.
    pub fn order(
        &self,
        labels: &OrderLabels,
        uid: &str,
        ready: Option<bool>,
        conditions: Vec<ConditionSeries>,
        times: OrderTimes,
    ) {
        let gone = self.gone.lock().unwrap_or_else(|e| e.into_inner());
        if gone.contains_key(uid) {
            return;
        }
        let holds = match ready {
            Some(true) => "True",
            Some(false) => "False",
            None => "Unknown",
        };
        for value in ["True", "False", "Unknown"] {
            self.ready
                .get_or_create(&ready_labels(labels, value))
                .set(i64::from(value == holds));
        }
        self.publish_conditions(labels, conditions);
        let families = [
            (&self.certificate_not_after, times.not_after),
            (&self.renewal_time, times.renewal),
            (&self.order_end, times.order_end),
        ];
        for (family, time) in families {
            match time {
                Some(t) => {
                    family.get_or_create(labels).set(t.unix_timestamp() as f64);
                }
                None => {
                    family.remove(labels);
                }
            }
        }
    }

    /// One series per condition, those of conditions gone or changed removed.
    fn publish_conditions(&self, labels: &OrderLabels, now: Vec<ConditionSeries>) {
        let mut published = self
            .published_conditions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let series = |c: &ConditionSeries| ConditionLabels {
            namespace: labels.namespace.clone(),
            name: labels.name.clone(),
            condition: c.clone(),
        };
        for old in published.remove(labels).unwrap_or_default() {
            if !now.contains(&old) {
                self.conditions.remove(&series(&old));
            }
        }
        for c in &now {
            self.conditions.get_or_create(&series(c)).set(1);
        }
        published.insert(labels.clone(), now);
    }

    /// Publishes when each domain's validation of the order expires; domains no longer
    /// listed lose their series.
    pub fn domain_expiries(
        &self,
        labels: &OrderLabels,
        uid: &str,
        expiries: &[(String, Option<time::OffsetDateTime>)],
    ) {
        if self
            .gone
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(uid)
        {
            return;
        }
        self.drop_domains(labels);
        let series = |domain: &str| DomainLabels {
            namespace: labels.namespace.clone(),
            name: labels.name.clone(),
            domain: domain.into(),
        };
        let mut published = Vec::new();
        for (domain, expiry) in expiries {
            if let Some(t) = expiry {
                self.domain_validation_expiry
                    .get_or_create(&series(domain))
                    .set(t.unix_timestamp() as f64);
                published.push(domain.clone());
            }
        }
        let mut domains = self.domains.lock().unwrap_or_else(|e| e.into_inner());
        domains.insert(labels.clone(), published);
    }

    fn drop_domains(&self, labels: &OrderLabels) {
        let mut domains = self.domains.lock().unwrap_or_else(|e| e.into_inner());
        for domain in domains.remove(labels).unwrap_or_default() {
            self.domain_validation_expiry.remove(&DomainLabels {
                namespace: labels.namespace.clone(),
                name: labels.name.clone(),
                domain,
            });
        }
    }

    /// Removes the series of the deleted order with `uid`, and keeps it from being
    /// published again by a reconcile still under way (for a while: no reconcile lasts
    /// that long).
    pub fn forget_order(&self, labels: &OrderLabels, uid: &str) {
        let mut gone = self.gone.lock().unwrap_or_else(|e| e.into_inner());
        gone.retain(|_, at| at.elapsed() < FORGOTTEN_FOR);
        gone.insert(uid.to_string(), std::time::Instant::now());
        drop(gone);
        self.drop_domains(labels);
        for value in ["True", "False", "Unknown"] {
            self.ready.remove(&ready_labels(labels, value));
        }
        self.publish_conditions(labels, Vec::new());
        self.published_conditions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(labels);
        self.certificate_not_after.remove(labels);
        self.renewal_time.remove(labels);
        self.order_end.remove(labels);
    }
}

impl CallObserver for Metrics {
    fn call(&self, operation: Operation, status: &str, code: &str, elapsed: Duration) {
        self.certcentral_calls
            .get_or_create(&CallLabels {
                operation: operation.as_str().into(),
                status: status.into(),
                code: code.into(),
            })
            .inc();
        self.certcentral_duration
            .get_or_create(&OperationLabels {
                operation: operation.as_str().into(),
            })
            .observe(elapsed.as_secs_f64());
    }

    fn waited(&self, waited: Duration) {
        self.rate_limiter_wait.observe(waited.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_expiries_follow_the_latest_list_and_go_with_the_order() {
        let m = Metrics::new();
        let labels = OrderLabels {
            namespace: "ns".into(),
            name: "web".into(),
        };
        let t = time::macros::datetime!(2029-06-11 0:00 UTC);
        m.domain_expiries(
            &labels,
            "u1",
            &[("a.example".into(), Some(t)), ("b.example".into(), Some(t))],
        );
        let text = m.encode();
        assert!(
            text.contains(r#"digicert_operator_domain_validation_expiration_timestamp_seconds{namespace="ns",name="web",domain="a.example"} 1875830400.0"#),
            "{text}"
        );
        m.domain_expiries(
            &labels,
            "u1",
            &[("a.example".into(), Some(t)), ("b.example".into(), None)],
        );
        let text = m.encode();
        assert!(
            text.contains(r#"domain="a.example""#) && !text.contains(r#"domain="b.example""#),
            "{text}"
        );
        m.forget_order(&labels, "u1");
        m.domain_expiries(&labels, "u1", &[("a.example".into(), Some(t))]);
        assert!(!m.encode().contains("domain=\"a.example\""));
    }

    #[test]
    fn encodes_what_was_recorded() {
        let m = Metrics::new();
        let labels = OrderLabels {
            namespace: "ns".into(),
            name: "web".into(),
        };
        let condition = |t: &str, status: &str, reason: &str| ConditionSeries {
            r#type: t.into(),
            status: status.into(),
            reason: reason.into(),
        };
        m.order(
            &labels,
            "uid-1",
            Some(true),
            vec![
                condition("Ready", "True", "Issued"),
                condition("Issuing", "True", "RevocationConsentRequired"),
            ],
            OrderTimes {
                not_after: Some(time::macros::datetime!(2027-01-01 0:00 UTC)),
                renewal: None,
                order_end: Some(time::macros::datetime!(2028-01-01 0:00 UTC)),
            },
        );
        m.reissue("issued");
        m.call(Operation::Reissue, "201", "", Duration::from_millis(20));
        m.call(
            Operation::OrderInfo,
            "404",
            "not_found|order",
            Duration::from_millis(5),
        );
        let text = m.encode();
        for line in [
            r#"digicert_operator_order_ready_status{namespace="ns",name="web",condition="True"} 1"#,
            r#"digicert_operator_order_ready_status{namespace="ns",name="web",condition="False"} 0"#,
            r#"digicert_operator_order_ready_status{namespace="ns",name="web",condition="Unknown"} 0"#,
            r#"digicert_operator_order_condition{namespace="ns",name="web",type="Issuing",status="True",reason="RevocationConsentRequired"} 1"#,
            r#"digicert_operator_certificate_expiration_timestamp_seconds{namespace="ns",name="web"} 1798761600.0"#,
            r#"digicert_operator_order_end_timestamp_seconds{namespace="ns",name="web"} 1830297600.0"#,
            r#"digicert_operator_reissues_total{event="issued"} 1"#,
            r#"digicert_operator_certcentral_requests_total{operation="order_info",status="404",code="not_found|order"} 1"#,
            concat!(
                r#"digicert_operator_build_info{version=""#,
                env!("CARGO_PKG_VERSION"),
                r#""} 1"#
            ),
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
        assert!(
            !text.contains("certificate_renewal_timestamp_seconds{"),
            "{text}"
        );
        // The condition's reason changes: the old series goes.
        m.order(
            &labels,
            "uid-1",
            Some(false),
            vec![condition("Ready", "False", "Renewal")],
            OrderTimes::default(),
        );
        let text = m.encode();
        assert!(!text.contains("RevocationConsentRequired"), "{text}");
        assert!(!text.contains(r#"reason="Issued""#), "{text}");
        assert!(
            text.contains(r#"order_ready_status{namespace="ns",name="web",condition="False"} 1"#)
        );
        m.forget_order(&labels, "uid-1");
        assert!(!m.encode().contains(r#"name="web""#));
        // A reconcile of the deleted order that ends late publishes nothing; an order
        // of the same name created anew (another uid) does.
        m.order(&labels, "uid-1", Some(true), vec![], OrderTimes::default());
        assert!(!m.encode().contains(r#"name="web""#));
        m.order(&labels, "uid-2", None, vec![], OrderTimes::default());
        assert!(
            m.encode()
                .contains(r#"order_ready_status{namespace="ns",name="web",condition="Unknown"} 1"#)
        );
    }

    #[test]
    fn scrapers_get_openmetrics_when_they_ask_and_the_text_format_otherwise() {
        let m = Metrics::new();
        m.reissue("issued");
        let prometheus = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.1";
        let (kind, open) = m.encode_for(Some(prometheus));
        assert_eq!(kind, OPENMETRICS);
        assert!(open.ends_with("# EOF\n"), "{open}");
        assert!(
            open.contains("# TYPE digicert_operator_reissues counter"),
            "{open}"
        );
        for accept in [None, Some("text/plain"), Some("*/*")] {
            let (kind, text) = m.encode_for(accept);
            assert_eq!(kind, TEXT_FORMAT);
            assert!(
                !text.contains("# EOF") && !text.contains("# UNIT"),
                "{text}"
            );
            assert!(
                text.contains("# TYPE digicert_operator_reissues_total counter\n"),
                "{text}"
            );
            assert!(
                text.contains("# HELP digicert_operator_reissues_total Reissues"),
                "{text}"
            );
            assert!(
                text.contains("# TYPE process_cpu_seconds_total counter\n"),
                "{text}"
            );
            assert!(
                text.contains("# TYPE digicert_operator_build_info gauge\n"),
                "{text}"
            );
        }
    }
}
