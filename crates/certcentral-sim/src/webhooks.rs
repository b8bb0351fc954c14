//! Webhooks: off by default, as on real accounts. When set, every change-feed event
//! (certificate issued, revoked, order rejected) is POSTed to one URL with the shared
//! key in `X-WEBHOOK-KEY`, once, without blocking the call that caused it. The
//! payload's shape (`{"event", "data": {"order_id", "certificate_id"}}`) is inferred
//! from DigiCert's event names.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::rules::feed::FeedEvent;

/// Where webhooks go.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    #[serde(default)]
    pub key: Option<String>,
    /// A CA (PEM) to trust for an https URL, besides the system's.
    #[serde(default)]
    pub ca_pem: Option<String>,
}

/// Deliveries so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDeliveries {
    pub sent: u64,
    pub failed: u64,
    /// Left out on purpose (the drop switch).
    pub dropped: u64,
}

#[derive(Default)]
pub struct Webhooks {
    target: Mutex<Option<(WebhookConfig, reqwest::Client)>>,
    drop_all: AtomicBool,
    sent: std::sync::Arc<AtomicU64>,
    failed: std::sync::Arc<AtomicU64>,
    dropped: AtomicU64,
}

impl Webhooks {
    pub fn set(&self, config: Option<WebhookConfig>) -> Result<(), String> {
        let target = match config {
            None => None,
            Some(c) => {
                let mut builder =
                    reqwest::Client::builder().timeout(std::time::Duration::from_secs(10));
                if let Some(pem) = &c.ca_pem {
                    for cert in reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                        .map_err(|e| format!("webhook CA: {e}"))?
                    {
                        builder = builder.add_root_certificate(cert);
                    }
                }
                let client = builder.build().map_err(|e| e.to_string())?;
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

    /// Drops every delivery from now on (or no more): polling must do without.
    pub fn drop_all(&self, on: bool) {
        self.drop_all.store(on, Ordering::SeqCst);
    }

    pub fn deliveries(&self) -> WebhookDeliveries {
        WebhookDeliveries {
            sent: self.sent.load(Ordering::SeqCst),
            failed: self.failed.load(Ordering::SeqCst),
            dropped: self.dropped.load(Ordering::SeqCst),
        }
    }

    /// Sends each event in a task of its own.
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
            if self.drop_all.load(Ordering::SeqCst) {
                self.dropped.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            let body = serde_json::json!({
                "event": e.event,
                "data": {"order_id": e.order_id, "certificate_id": e.certificate_id},
            });
            let mut request = client.post(&config.url).json(&body);
            if let Some(key) = &config.key {
                request = request.header("X-WEBHOOK-KEY", key);
            }
            let (sent, failed) = (self.sent.clone(), self.failed.clone());
            tokio::spawn(async move {
                match request.send().await {
                    Ok(r) if r.status().is_success() => {
                        sent.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(r) => {
                        tracing::warn!(status = %r.status(), "webhook refused");
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "webhook not delivered");
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    }
}
