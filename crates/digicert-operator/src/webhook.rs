//! The CertCentral webhook receiver: an optional accelerator of the change feed.
//!
//! DigiCert can call one URL per account on events (`certificate_issued`,
//! `certificate_revoked`, `order_rejected`, ...), with a shared key in
//! `X-WEBHOOK-KEY`. Nothing in the payload is believed beyond "order N changed": the
//! orders that follow N look at DigiCert themselves. A lost or forged call changes
//! nothing that polling would not find, so the feed converges without webhooks.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

use crate::controller::feed::Feeds;
use crate::error::{Error, Result};

/// The header DigiCert sends the shared key in.
pub const KEY_HEADER: &str = "x-webhook-key";

/// Payloads are small JSON documents; anything larger is refused unread.
const BODY_LIMIT: usize = 64 * 1024;

/// Calls about one order within this time make its orders look once: a burst of
/// calls (or a replayed one) cannot turn into a burst of DigiCert calls.
pub const ONE_LOOK_PER: Duration = Duration::from_secs(10);

/// The shared key, compared in constant time.
#[derive(Clone)]
pub struct WebhookKey(Arc<Vec<u8>>);

impl WebhookKey {
    pub fn new(key: &str) -> std::result::Result<Self, String> {
        let key = key.trim();
        if key.len() < 16 {
            return Err("the webhook key must have at least 16 characters".into());
        }
        Ok(WebhookKey(Arc::new(key.as_bytes().to_vec())))
    }

    fn admits(&self, given: Option<&[u8]>) -> bool {
        given.is_some_and(|g| aws_lc_rs::constant_time::verify_slices_are_equal(g, &self.0).is_ok())
    }
}

impl std::fmt::Debug for WebhookKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookKey([redacted])")
    }
}

#[derive(Clone)]
struct Receiver {
    key: WebhookKey,
    feeds: Arc<Feeds>,
    last_look: Arc<Mutex<HashMap<u64, Instant>>>,
}

/// The order a payload names: `data.order_id` (DigiCert's events) or `order_id`, a
/// number or a string of digits. Nothing else is read.
pub fn order_named(body: &[u8]) -> Option<u64> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let id = value
        .get("data")
        .and_then(|d| d.get("order_id"))
        .or_else(|| value.get("order_id"))?;
    match id {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .filter(|id| *id != 0)
}

/// Whether a call about an order makes its orders look now: not if one did within
/// `ONE_LOOK_PER`.
pub fn look_now(last: Option<Instant>, now: Instant) -> bool {
    last.is_none_or(|t| now.duration_since(t) >= ONE_LOOK_PER)
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if !r.key.admits(headers.get(KEY_HEADER).map(|v| v.as_bytes())) {
        tracing::warn!("a webhook call without the right key was refused");
        return StatusCode::UNAUTHORIZED;
    }
    let Some(order_id) = order_named(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let now = Instant::now();
    let fresh = {
        let mut last = r.last_look.lock().unwrap_or_else(|e| e.into_inner());
        last.retain(|_, t| now.duration_since(*t) < ONE_LOOK_PER);
        let fresh = look_now(last.get(&order_id).copied(), now);
        if fresh {
            last.insert(order_id, now);
        }
        fresh
    };
    if fresh {
        let woken = r.feeds.poke(order_id);
        tracing::info!(order_id, woken, "a webhook says the order changed");
    }
    StatusCode::ACCEPTED
}

/// The receiver's routes: a POST to any path.
pub fn router(feeds: Arc<Feeds>, key: WebhookKey) -> Router {
    let receiver = Receiver {
        key,
        feeds,
        last_look: Arc::default(),
    };
    Router::new()
        .route("/", post(receive))
        .route("/{*path}", post(receive))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(receiver)
}

/// Listens on `addr` (its own port, apart from metrics and health).
pub async fn serve(
    addr: SocketAddr,
    feeds: Arc<Feeds>,
    key: WebhookKey,
) -> Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Config(format!("cannot listen on {addr}: {e}")))?;
    let addr = listener.local_addr().unwrap_or(addr);
    tracing::info!(%addr, "receiving CertCentral webhooks");
    let app = router(feeds, key);
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the webhook receiver stopped");
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_order_id_is_read() {
        let cases: [(&str, Option<u64>); 8] = [
            (
                r#"{"event":"certificate_issued","data":{"order_id":1001,"certificate_id":5}}"#,
                Some(1001),
            ),
            (r#"{"order_id":"1002"}"#, Some(1002)),
            (r#"{"data":{"order_id":"12x"}}"#, None),
            (r#"{"data":{"order_id":0}}"#, None),
            (r#"{"data":{"order_id":-4}}"#, None),
            (r#"{"event":"certificate_issued"}"#, None),
            ("not json", None),
            (r#"[1001]"#, None),
        ];
        for (body, want) in cases {
            assert_eq!(order_named(body.as_bytes()), want, "{body}");
        }
    }

    #[test]
    fn the_key_must_match_whole() {
        let key = WebhookKey::new("a-shared-key-of-some-length").unwrap();
        assert!(key.admits(Some(b"a-shared-key-of-some-length")));
        assert!(!key.admits(Some(b"a-shared-key-of-some-lengtH")));
        assert!(!key.admits(Some(b"a-shared-key")));
        assert!(!key.admits(Some(b"")));
        assert!(!key.admits(None));
        assert!(WebhookKey::new("short").is_err());
        assert_eq!(format!("{key:?}"), "WebhookKey([redacted])");
    }

    #[test]
    fn calls_about_one_order_make_one_look_per_ten_seconds() {
        let now = Instant::now();
        assert!(look_now(None, now));
        assert!(!look_now(Some(now), now + Duration::from_secs(9)));
        assert!(look_now(Some(now), now + ONE_LOOK_PER));
    }
}
