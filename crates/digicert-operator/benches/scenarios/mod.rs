//! The benchmark scenarios. `benches/suite.rs` runs them at full size and reports;
//! `tests/components/bench_smoke.rs` runs small versions in CI and asserts the same targets.
//!
//! Each scenario drives the real operator binary against the API server of
//! `DIGICERT_TEST_KUBECONFIG` and the simulator over HTTPS, and measures at the
//! simulator (calls) and at the operator process (memory).
#![allow(dead_code)]

pub mod calls;
pub mod crash;
pub mod dcv;
pub mod duplicates;
pub mod faults;
pub mod feed;
pub mod issuer;
pub mod keygen;
pub mod latency;
pub mod memory;
pub mod throughput;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use digicert_operator::crd::DigicertOrder;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;

use crate::support::env::condition;

/// Key algorithm of a benchmark order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Key {
    Rsa2048,
    EcdsaP256,
}

impl Key {
    pub fn label(self) -> &'static str {
        match self {
            Key::Rsa2048 => "RSA-2048",
            Key::EcdsaP256 => "ECDSA P-256",
        }
    }
}

/// A DigicertOrder for simulator order `order_id` (seeded with `support::order`).
pub fn order(name: &str, order_id: u64, key: Key) -> DigicertOrder {
    let private_key = match key {
        Key::Rsa2048 => serde_json::json!({"algorithm": "RSA", "size": 2048}),
        Key::EcdsaP256 => serde_json::json!({"algorithm": "ECDSA", "size": 256}),
    };
    serde_json::from_value(serde_json::json!({
        "apiVersion": "digicert-operator.dev/v1alpha1",
        "kind": "DigicertOrder",
        "metadata": {"name": name},
        "spec": {
            "orderId": order_id,
            "commonName": "example.com",
            "dnsNames": ["www.example.com"],
            "secretName": format!("{name}-tls"),
            "privateKey": private_key,
        }
    }))
    .expect("a valid DigicertOrder")
}

/// Orders named by `names`, for simulator orders 1, 2, …: RSA-2048 and ECDSA P-256
/// in turn.
/// Creates `count` P-256 DigicertOrders `PREFIX-00000`… (orders 1…count) on the
/// running operator of `env` and waits until all are Ready. Returns the seconds it took.
pub async fn issue_all(env: &crate::support::env::OperatorEnv, prefix: &str, count: usize) -> f64 {
    latency::wait_ready_endpoint(env).await;
    let watch = ReadyWatch::start(env.orders());
    let objects = (0..count)
        .map(|i| order(&format!("{prefix}-{i:05}"), i as u64 + 1, Key::EcdsaP256))
        .collect();
    let started = Instant::now();
    create_all(&env.orders(), objects, 32).await;
    let last = watch
        .wait_for(count, Duration::from_secs(600 + count as u64 / 5))
        .await
        .unwrap_or_else(|| {
            panic!(
                "{} of {count} Ready\n{}",
                watch.count(),
                env.operator_logs()
            )
        });
    (last - started).as_secs_f64()
}

pub fn mixed_orders(names: &[String]) -> Vec<DigicertOrder> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let key = if i % 2 == 0 {
                Key::Rsa2048
            } else {
                Key::EcdsaP256
            };
            order(name, i as u64 + 1, key)
        })
        .collect()
}

/// Creates `objects` with up to `parallel` requests in flight.
pub async fn create_all<K>(api: &Api<K>, objects: Vec<K>, parallel: usize)
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    futures::stream::iter(objects)
        .map(|o| {
            let api = api.clone();
            async move {
                // A busy API server may time a request out; creation is idempotent here.
                for attempt in 0..5 {
                    match api.create(&PostParams::default(), &o).await {
                        Ok(_) => return,
                        Err(kube::Error::Api(s)) if s.code == 409 => return,
                        Err(e) if attempt == 4 => panic!("creating an object: {e}"),
                        Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                    }
                }
            }
        })
        .buffer_unordered(parallel)
        .collect::<()>()
        .await;
}

/// `count` Secrets that have nothing to do with the operator, each the size of a
/// typical TLS Secret (about 4 KiB).
pub fn unrelated_secrets(count: usize) -> Vec<Secret> {
    let blob = "x".repeat(4096);
    (0..count)
        .map(|i| Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(format!("unrelated-{i:05}")),
                labels: Some([("app".to_string(), "unrelated".to_string())].into()),
                ..Default::default()
            },
            string_data: Some([("payload".to_string(), blob.clone())].into()),
            ..Default::default()
        })
        .collect()
}

/// Watches the orders of a namespace and remembers when each first became Ready.
pub struct ReadyWatch {
    ready: Arc<Mutex<HashMap<String, Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ReadyWatch {
    pub fn start(api: Api<DigicertOrder>) -> Self {
        let ready: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let seen = ready.clone();
        let task = tokio::spawn(async move {
            let stream = watcher(api, watcher::Config::default())
                .default_backoff()
                .touched_objects();
            futures::pin_mut!(stream);
            while let Ok(Some(o)) = stream.try_next().await {
                let is_ready = condition(&o, "Ready").is_some_and(|c| c.status == "True");
                if is_ready {
                    let name = kube::ResourceExt::name_any(&o);
                    seen.lock()
                        .unwrap()
                        .entry(name)
                        .or_insert_with(Instant::now);
                }
            }
        });
        ReadyWatch { ready, task }
    }

    pub fn count(&self) -> usize {
        self.ready.lock().unwrap().len()
    }

    pub fn ready_at(&self, name: &str) -> Option<Instant> {
        self.ready.lock().unwrap().get(name).copied()
    }

    /// Waits until `n` orders were Ready at some point; `None` after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let ready = self.ready.lock().unwrap();
                if ready.len() >= n {
                    return ready.values().max().copied();
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ReadyWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Peak and current resident set size of a process, in KiB (from /proc).
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// CPU time (user + system) a process used so far, in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after ") ".
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}

/// Median of some numbers (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Per-operation call counts at the simulator, for reports.
pub fn calls_by_operation(counts: &certcentral_sim::CallCounts) -> BTreeMap<String, u64> {
    counts
        .operations
        .iter()
        .map(|(op, c)| (op.to_string(), c.total))
        .collect()
}

/// A counter or gauge of the operator's /metrics, summed over its series whose labels
/// contain `labels` (e.g. `state="unread"`); 0 while it cannot be read.
pub async fn metric(base: &str, name: &str, labels: &str) -> u64 {
    let Ok(r) = reqwest::get(format!("{base}/metrics")).await else {
        return 0;
    };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (series, value) = l.split_once(' ')?;
            let rest = series.strip_prefix(name)?;
            (rest.is_empty() || rest.starts_with('{')).then_some(())?;
            rest.contains(labels)
                .then(|| value.trim().parse::<f64>().ok())?
        })
        .sum::<f64>() as u64
}

/// The least time in which `calls` requests fit under sliding windows of
/// (`limit` requests per `window`), each request sent as early as they allow: the
/// bound that CertCentral's rate limits put on any client.
pub fn rate_limit_bound(calls: u64, windows: &[(u64, Duration)]) -> Duration {
    let mut times: Vec<f64> = Vec::with_capacity(calls as usize);
    for i in 0..calls as usize {
        let mut t = 0.0f64;
        for (limit, window) in windows {
            let limit = *limit as usize;
            if i >= limit {
                t = t.max(times[i - limit] + window.as_secs_f64());
            }
        }
        times.push(t);
    }
    Duration::from_secs_f64(times.last().copied().unwrap_or(0.0))
}

#[cfg(test)]
#[allow(unused_imports)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limit_bound_follows_both_windows() {
        let certcentral = [
            (100, Duration::from_secs(5)),
            (1000, Duration::from_secs(180)),
        ];
        // 100 calls go at once; the 101st waits for the first 5 s window.
        assert_eq!(rate_limit_bound(100, &certcentral), Duration::ZERO);
        assert_eq!(rate_limit_bound(101, &certcentral), Duration::from_secs(5));
        // 1000 calls: ten short windows. 3000: two more long windows on top.
        assert_eq!(
            rate_limit_bound(1000, &certcentral),
            Duration::from_secs(45)
        );
        assert_eq!(
            rate_limit_bound(3000, &certcentral),
            Duration::from_secs(405)
        );
        assert_eq!(
            rate_limit_bound(2000, &certcentral),
            Duration::from_secs(225)
        );
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
