//! Webhooks: off by default, as on real accounts. When set, every certificate event
//! the rules note (issued, revoked, a reissue rejected) is POSTed as JSON to one URL,
//! with the shared key in `X-WEBHOOK-KEY` when there is one: one attempt, in a task of
//! its own, so the call that caused it never waits for it or fails with it.
//!
//! The payload, `{"event": "certificate_issued", "data": {"order_id": N,
//! "certificate_id": M}}`, is inferred from DigiCert's event names; DigiCert's own
//! payloads may carry more.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::store::FeedEvent;

/// Where webhooks go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// An `http://` or `https://` URL.
    pub url: String,
    /// Sent as `X-WEBHOOK-KEY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The CA certificates (PEM file) an https URL is verified against; default the
    /// system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The same as PEM text (in-process use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// Whether certificates issued within the call that asked for them (an immediate
    /// reissue, a duplicate) send `certificate_issued`. Default true; real accounts
    /// send none for them unless configured to, which `false` mimics.
    #[serde(default = "crate::store::yes")]
    pub instant_issuance: bool,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            url: String::new(),
            key: None,
            ca_file: None,
            ca_pem: None,
            instant_issuance: true,
        }
    }
}

impl WebhookConfig {
    pub fn new(url: impl Into<String>) -> Self {
        WebhookConfig {
            url: url.into(),
            ..WebhookConfig::default()
        }
    }

    fn client(&self) -> Result<reqwest::Client, String> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| format!("webhook URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("webhook URL {}: not http or https", self.url));
        }
        let mut pem = self.ca_pem.clone().unwrap_or_default();
        if let Some(path) = &self.ca_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("webhook CA file {}: {e}", path.display()))?;
            pem.push_str(&text);
        }
        let mut builder = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10));
        if !pem.trim().is_empty() {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| format!("webhook CA: {e}"))?;
            builder = builder.tls_certs_only(certs);
        }
        builder.build().map_err(|e| format!("webhook client: {e}"))
    }
}

/// Deliveries so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDeliveries {
    /// Answered with a 2xx.
    pub sent: u64,
    /// Refused, or no answer.
    pub failed: u64,
    /// Left out on purpose (the drop switch).
    pub dropped: u64,
}

/// What `GET /admin/webhook` shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookView {
    pub config: Option<WebhookConfig>,
    pub drop: bool,
    pub deliveries: WebhookDeliveries,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

#[derive(Default)]
pub struct Webhooks {
    target: Mutex<Option<(WebhookConfig, reqwest::Client)>>,
    drop_all: AtomicBool,
    counters: Arc<Counters>,
}

impl Webhooks {
    /// Sets (or with `None` clears) where webhooks go.
    pub fn set(&self, config: Option<WebhookConfig>) -> Result<(), String> {
        let target = match config {
            None => None,
            Some(c) => {
                let client = c.client()?;
                Some((c, client))
            }
        };
        *self.target.lock().unwrap_or_else(|e| e.into_inner()) = target;
        Ok(())
    }

    pub fn config(&self) -> Option<WebhookConfig> {
        self.target
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|(c, _)| c.clone())
    }

    pub fn is_set(&self) -> bool {
        self.target
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Drops every delivery from now on (or no more): polling must do without.
    pub fn drop_all(&self, on: bool) {
        self.drop_all.store(on, Ordering::SeqCst);
    }

    pub fn deliveries(&self) -> WebhookDeliveries {
        let c = &self.counters;
        WebhookDeliveries {
            sent: c.sent.load(Ordering::SeqCst),
            failed: c.failed.load(Ordering::SeqCst),
            dropped: c.dropped.load(Ordering::SeqCst),
        }
    }

    pub fn view(&self) -> WebhookView {
        WebhookView {
            config: self.config(),
            drop: self.drop_all.load(Ordering::SeqCst),
            deliveries: self.deliveries(),
        }
    }

    /// Sends each event in a task of its own; without a webhook, nothing.
    pub fn deliver(&self, events: Vec<FeedEvent>) {
        if events.is_empty() {
            return;
        }
        let Some((config, client)) = self
            .target
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        else {
            return;
        };
        for e in events {
            if e.instant && !config.instant_issuance {
                continue;
            }
            if self.drop_all.load(Ordering::SeqCst) {
                self.counters.dropped.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                tracing::warn!("webhook not sent: no async runtime");
                self.counters.failed.fetch_add(1, Ordering::SeqCst);
                continue;
            };
            let mut request = client.post(&config.url).json(&payload(&e));
            if let Some(key) = &config.key {
                request = request.header("X-WEBHOOK-KEY", key);
            }
            runtime.spawn(send(request, e, self.counters.clone()));
        }
    }
}

/// The body of one delivery (the shape is inferred).
pub fn payload(e: &FeedEvent) -> serde_json::Value {
    serde_json::json!({
        "event": e.kind.as_str(),
        "data": {"order_id": e.order_id, "certificate_id": e.certificate_id},
    })
}

async fn send(request: reqwest::RequestBuilder, e: FeedEvent, counters: Arc<Counters>) {
    let event = e.kind.as_str();
    match request.send().await {
        Ok(r) if r.status().is_success() => {
            tracing::debug!(event, order = e.order_id, "webhook delivered");
            counters.sent.fetch_add(1, Ordering::SeqCst);
        }
        Ok(r) => {
            tracing::warn!(event, order = e.order_id, status = %r.status(), "webhook refused");
            counters.failed.fetch_add(1, Ordering::SeqCst);
        }
        Err(err) => {
            tracing::warn!(event, order = e.order_id, error = %err, "webhook not delivered");
            counters.failed.fetch_add(1, Ordering::SeqCst);
        }
    }
}
