//! Prometheus metrics, served on `/metrics` in the OpenMetrics text format.

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
    pub ready: Family<OrderLabels, Gauge>,
    pub domain_validation_expiry: Family<DomainLabels, FloatGauge>,
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
            registry: Registry::with_prefix("digicert_operator"),
            certificate_not_after: Family::<OrderLabels, FloatGauge>::default(),
            renewal_time: Family::<OrderLabels, FloatGauge>::default(),
            order_end: Family::<OrderLabels, FloatGauge>::default(),
            ready: Family::<OrderLabels, Gauge>::default(),
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
        metrics.register_orders();
        metrics.register_calls();
        metrics
    }

    /// The series of each order: its certificate, renewal, order end, Ready, domain
    /// validations, reissues.
    fn register_orders(&mut self) {
        self.registry.register(
            "certificate_not_after_seconds",
            "Expiry of the certificate in each order's Secret (Unix time)",
            self.certificate_not_after.clone(),
        );
        self.registry.register(
            "certificate_renewal_time_seconds",
            "When each order's certificate will be renewed (Unix time)",
            self.renewal_time.clone(),
        );
        self.registry.register(
            "order_end_seconds",
            "When each DigiCert order (Multi-year Plan) ends: no certificate outlasts it (Unix time)",
            self.order_end.clone(),
        );
        self.registry.register(
            "order_ready",
            "1 when the order's Secret holds a valid certificate for its spec",
            self.ready.clone(),
        );
        self.registry.register(
            "domain_validation_expiry_seconds",
            "When DigiCert's validation of each domain of an order stops being reusable (Unix time)",
            self.domain_validation_expiry.clone(),
        );
        self.registry.register(
            "reissues",
            "Reissues by event: submitted, issued, failed, canceled, picked_up",
            self.reissues.clone(),
        );
    }

    /// DigiCert calls, the rate limiter and reconciles.
    fn register_calls(&mut self) {
        self.registry.register(
            "certcentral_requests",
            "CertCentral API requests (every attempt) by operation and outcome",
            self.certcentral_calls.clone(),
        );
        self.registry.register(
            "certcentral_request_duration_seconds",
            "Latency of CertCentral API requests",
            self.certcentral_duration.clone(),
        );
        self.registry.register(
            "rate_limiter_wait_seconds",
            "Time CertCentral requests waited for the client-side rate limiter",
            self.rate_limiter_wait.clone(),
        );
        self.registry
            .register("reconciles", "Reconciles run", self.reconciles.clone());
        self.registry.register(
            "reconcile_errors",
            "Reconciles that ended in an error",
            self.reconcile_errors.clone(),
        );
        self.registry.register(
            "reconcile_duration_seconds",
            "Duration of reconciles",
            self.reconcile_duration.clone(),
        );
        self.registry.register(
            "feed_readings",
            "Readings of DigiCert's change feed by kind (changes, page, ids) and outcome",
            self.feed_readings.clone(),
        );
        self.registry.register(
            "feed_orders_woken",
            "DigicertOrders woken because DigiCert's change feed or a webhook said their order changed",
            self.feed_woken.clone(),
        );
        self.registry.register(
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

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn reissue(&self, event: &str) {
        self.reissues
            .get_or_create(&ReissueLabels {
                event: event.into(),
            })
            .inc();
    }

    /// Publishes the gauges of the order with `uid`; a time that is not known removes
    /// its series. Nothing is published for an order already forgotten: a reconcile
    /// that ends after its deletion was seen must not bring its series back.
    pub fn order(&self, labels: &OrderLabels, uid: &str, ready: bool, times: OrderTimes) {
        let gone = self.gone.lock().unwrap_or_else(|e| e.into_inner());
        if gone.contains_key(uid) {
            return;
        }
        self.ready.get_or_create(labels).set(i64::from(ready));
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
        self.ready.remove(labels);
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
            text.contains(r#"digicert_operator_domain_validation_expiry_seconds{namespace="ns",name="web",domain="a.example"} 1875830400.0"#),
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
        m.order(
            &labels,
            "uid-1",
            true,
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
        assert!(
            text.contains(r#"digicert_operator_order_ready{namespace="ns",name="web"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"digicert_operator_certificate_not_after_seconds{namespace="ns",name="web"} 1798761600.0"#), "{text}");
        assert!(
            text.contains(
                r#"digicert_operator_order_end_seconds{namespace="ns",name="web"} 1830297600.0"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"digicert_operator_reissues_total{event="issued"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"digicert_operator_certcentral_requests_total{operation="order_info",status="404",code="not_found|order"} 1"#), "{text}");
        m.forget_order(&labels, "uid-1");
        assert!(!m.encode().contains(r#"name="web""#));
        // A reconcile of the deleted order that ends late publishes nothing; an order
        // of the same name created anew (another uid) does.
        m.order(&labels, "uid-1", true, OrderTimes::default());
        assert!(!m.encode().contains(r#"name="web""#));
        m.order(&labels, "uid-2", true, OrderTimes::default());
        assert!(
            m.encode()
                .contains(r#"order_ready{namespace="ns",name="web"} 1"#)
        );
    }
}
