//! The typed CertCentral client: one method per endpoint, with authentication, rate
//! limiting, retries with jittered backoff and typed errors.

mod config;
mod endpoints;

pub use config::*;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, TransportKind};
use crate::ratelimit::{Permit, RateLimiter};
use crate::types::*;

/// Largest answer body read; anything longer is a broken or hostile server.
const MAX_BODY: usize = 8 << 20;

/// A rate-limit slot taken ahead of one call ([`Client::send_slot`]).
#[derive(Debug)]
pub struct SendSlot(Permit);

/// Builds rate limiters, one per API key: all clients of a key share it.
pub type LimiterFactory = Arc<dyn Fn() -> RateLimiter + Send + Sync>;

/// Told about every attempt (for metrics).
pub trait CallObserver: Send + Sync {
    /// `status`: the HTTP status, or `timeout`, `connection`, `reset` when none came;
    /// `code`: DigiCert's error code, empty on success.
    fn call(&self, operation: Operation, status: &str, code: &str, elapsed: Duration);
    /// Time spent waiting for the rate limiter.
    fn waited(&self, waited: Duration);
}

struct Shared {
    http: reqwest::Client,
    base: reqwest::Url,
    retry: RetryPolicy,
    new_limiter: LimiterFactory,
    limiters: Mutex<HashMap<String, Arc<RateLimiter>>>,
    observer: Option<Arc<dyn CallObserver>>,
}

/// A CertCentral client for one API key. Cheap to clone; clients made with
/// [`Client::with_api_key`] share connections, and clients of the same key share one
/// rate limiter.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    key: ApiKey,
    limiter: Arc<RateLimiter>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.shared.base.as_str())
            .field("key", &self.key)
            .finish()
    }
}

/// What a successful call answered.
struct Answer {
    status: StatusCode,
    body: Vec<u8>,
}

/// One CertCentral service (base URL, trust, retry policy, connections) for any number
/// of API keys: hands out a [`Client`] per key.
#[derive(Clone)]
pub struct Service {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("base", &self.shared.base.as_str())
            .finish()
    }
}

impl Service {
    /// A service whose per-key rate limiters come from `new_limiter`.
    pub fn new(config: ClientConfig, new_limiter: LimiterFactory) -> Result<Self, Error> {
        Self::observed(config, new_limiter, None)
    }

    /// The same, telling `observer` about every attempt.
    pub fn observed(
        config: ClientConfig,
        new_limiter: LimiterFactory,
        observer: Option<Arc<dyn CallObserver>>,
    ) -> Result<Self, Error> {
        pki::tls::install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .https_only(true)
            .pool_idle_timeout(Duration::from_secs(60));
        match &config.trust {
            TrustRoots::System => {}
            TrustRoots::SystemAnd(pem) => builder = builder.tls_certs_merge(parse_bundle(pem)?),
            TrustRoots::Only(pem) => builder = builder.tls_certs_only(parse_bundle(pem)?),
        }
        let http = builder
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTPS client: {e}")))?;
        let mut base = config.base_url.url();
        // Joining relative paths needs the trailing slash.
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        Ok(Service {
            shared: Arc::new(Shared {
                http,
                base,
                retry: config.retry,
                new_limiter,
                limiters: Mutex::new(HashMap::new()),
                observer,
            }),
        })
    }

    /// A client for `key`; all clients of one key share its rate limiter.
    pub fn client(&self, key: ApiKey) -> Client {
        let limiter = limiter_for(&self.shared, &key);
        Client {
            shared: self.shared.clone(),
            key,
            limiter,
        }
    }
}

impl Client {
    /// A client with CertCentral's documented rate limits.
    pub fn new(config: ClientConfig, key: ApiKey) -> Result<Self, Error> {
        Self::with_limiter(config, key, Arc::new(RateLimiter::certcentral))
    }

    /// A client whose per-key rate limiters come from `new_limiter`.
    pub fn with_limiter(
        config: ClientConfig,
        key: ApiKey,
        new_limiter: LimiterFactory,
    ) -> Result<Self, Error> {
        Ok(Service::new(config, new_limiter)?.client(key))
    }

    /// The same service and connections with another API key.
    pub fn with_api_key(&self, key: ApiKey) -> Client {
        Service {
            shared: self.shared.clone(),
        }
        .client(key)
    }

    pub fn api_key(&self) -> &ApiKey {
        &self.key
    }

    pub fn base_url(&self) -> &reqwest::Url {
        &self.shared.base
    }

    /// Like `json`, for answers documented as JSON or as no content.
    async fn json_or_empty<T: DeserializeOwned>(
        &self,
        op: Operation,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<Option<T>, Error> {
        self.call(None, op, method, path, body, |status, bytes| {
            if status == StatusCode::NO_CONTENT || bytes.iter().all(u8::is_ascii_whitespace) {
                Ok(None)
            } else {
                self.decode_json(op, status, bytes).map(Some)
            }
        })
        .await
    }

    async fn json<T: DeserializeOwned>(
        &self,
        op: Operation,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, Error> {
        self.call(None, op, method, path, body, |status, bytes| {
            self.decode_json(op, status, bytes)
        })
        .await
    }

    fn decode_json<T: DeserializeOwned>(
        &self,
        op: Operation,
        status: StatusCode,
        bytes: &[u8],
    ) -> Result<T, Error> {
        serde_json::from_slice(bytes).map_err(|e| Error::Decode {
            operation: op,
            status: status.as_u16(),
            // serde may quote the answer; the answer is scrubbed like any other.
            message: self.key.redact(&e.to_string()),
        })
    }

    async fn no_content(
        &self,
        op: Operation,
        method: Method,
        path: &str,
        body: &impl Serialize,
    ) -> Result<(), Error> {
        // Documented as 204. Any other 2xx must at least carry readable JSON: a
        // garbled answer is no proof that DigiCert made the change.
        self.call(None, op, method, path, Some(body), |status, bytes| {
            if status == StatusCode::NO_CONTENT
                || bytes.iter().all(u8::is_ascii_whitespace)
                || serde_json::from_slice::<serde_json::Value>(bytes).is_ok()
            {
                Ok(())
            } else {
                Err(Error::Decode {
                    operation: op,
                    status: status.as_u16(),
                    message: "expected no content (204) but got an unreadable body".into(),
                })
            }
        })
        .await
    }

    async fn text(&self, path: &str) -> Result<String, Error> {
        let op = Operation::Download;
        self.call(None, op, Method::GET, path, None::<&()>, |status, bytes| {
            let decode_error = |message: &str| Error::Decode {
                operation: op,
                status: status.as_u16(),
                message: message.into(),
            };
            let text = std::str::from_utf8(bytes)
                .map_err(|_| decode_error("the certificate is not text"))?;
            if !text.contains("-----BEGIN CERTIFICATE-----") {
                return Err(decode_error("the answer holds no PEM certificate"));
            }
            Ok(text.to_string())
        })
        .await
    }

    /// One logical call: rate-limited attempts until an answer decodes, a permanent
    /// error, or the retry policy gives up. A garbled answer counts as a failed attempt.
    /// With `slot`, the one attempt goes in that slot and is not repeated.
    async fn call<T>(
        &self,
        mut slot: Option<Permit>,
        op: Operation,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
        decode: impl Fn(StatusCode, &[u8]) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let once = slot.is_some();
        let url = self
            .shared
            .base
            .join(path)
            .map_err(|e| Error::Config(format!("bad request path {path}: {e}")))?;
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| Error::Config(format!("cannot encode the {op} request: {e}")))?;
        let retry = self.shared.retry;
        let mut attempt = 1;
        loop {
            // Held until the answer (or the failure) is in.
            let permit = match slot.take() {
                Some(p) => p,
                None => self.limiter.acquire().await,
            };
            let waited = permit.waited;
            if let Some(o) = &self.shared.observer {
                o.waited(waited);
            }
            if waited >= Duration::from_millis(100) {
                tracing::debug!(operation = %op, waited_ms = waited.as_millis() as u64, "rate limiter delayed a CertCentral call");
            }
            let started = std::time::Instant::now();
            let result = self
                .attempt(op, method.clone(), url.clone(), body.clone())
                .await
                .and_then(|answer| decode(answer.status, &answer.body).map(|v| (answer.status, v)));
            drop(permit);
            if let Some(o) = &self.shared.observer {
                let (status, code) = match &result {
                    Ok((status, _)) => (status.as_u16().to_string(), String::new()),
                    Err(e) => outcome_labels(e),
                };
                o.call(op, &status, &code, started.elapsed());
            }
            let result = result.map(|(_, v)| v);
            let elapsed_ms = started.elapsed().as_millis() as u64;
            match result {
                Ok(value) => {
                    tracing::debug!(operation = %op, attempt, elapsed_ms, "CertCentral call succeeded");
                    return Ok(value);
                }
                Err(err) if !once && retry.should_retry(op, attempt, &err) => {
                    let delay = retry.delay(attempt - 1, &err);
                    tracing::warn!(operation = %op, attempt, elapsed_ms, delay_ms = delay.as_millis() as u64, error = %err, "CertCentral call failed; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(err) => {
                    tracing::debug!(operation = %op, attempt, elapsed_ms, error = %err, "CertCentral call failed");
                    return Err(err);
                }
            }
        }
    }

    async fn attempt(
        &self,
        op: Operation,
        method: Method,
        url: reqwest::Url,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, Error> {
        // Sensitive: never shown by the HTTP stack's own debug output.
        let mut key = reqwest::header::HeaderValue::from_str(self.key.expose())
            .map_err(|_| Error::Config("the API key cannot go into a header".into()))?;
        key.set_sensitive(true);
        let mut request = self
            .shared
            .http
            .request(method, url)
            .header("X-DC-DEVKEY", key)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let mut response = request.send().await.map_err(|e| self.transport(op, &e))?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(op, &e))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(Error::Decode {
                    operation: op,
                    status: status.as_u16(),
                    message: format!("the answer is larger than {MAX_BODY} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        if status.is_success() {
            return Ok(Answer { status, body });
        }
        // Error bodies are `{"errors":[...]}`; anything else (a proxy's HTML page) is
        // kept as a short message so the status still tells what happened.
        let errors = match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(parsed) => parsed.errors,
            Err(_) => {
                let text = String::from_utf8_lossy(&body);
                let snippet: String = text.chars().take(200).collect();
                vec![ApiErrorDetail {
                    code: format!("http_{}", status.as_u16()),
                    message: self.key.redact(snippet.trim()),
                }]
            }
        };
        Err(Error::Api {
            operation: op,
            status: status.as_u16(),
            errors: errors
                .into_iter()
                .map(|e| ApiErrorDetail {
                    code: self.key.redact(&e.code),
                    message: self.key.redact(&e.message),
                })
                .collect(),
        })
    }

    fn transport(&self, op: Operation, err: &reqwest::Error) -> Error {
        let kind = if err.is_timeout() {
            TransportKind::Timeout
        } else if err.is_connect() {
            TransportKind::Connect
        } else {
            TransportKind::Reset
        };
        Error::Transport {
            operation: op,
            kind,
            message: self.key.redact(&error_chain(err)),
        }
    }
}

/// The status and code labels of a failed attempt.
fn outcome_labels(err: &Error) -> (String, String) {
    match err {
        Error::Api { status, .. } => (status.to_string(), err.code().unwrap_or_default().into()),
        Error::Decode { status, .. } => (status.to_string(), "malformed_response".into()),
        Error::Transport { kind, .. } => (
            match kind {
                TransportKind::Timeout => "timeout",
                TransportKind::Connect => "connection",
                TransportKind::Reset => "reset",
            }
            .into(),
            String::new(),
        ),
        Error::Config(_) => ("config".into(), String::new()),
    }
}

fn limiter_for(shared: &Shared, key: &ApiKey) -> Arc<RateLimiter> {
    let mut limiters = shared.limiters.lock().unwrap_or_else(|e| e.into_inner());
    limiters
        .entry(key.fingerprint_full())
        .or_insert_with(|| Arc::new((shared.new_limiter)()))
        .clone()
}

fn parse_bundle(pem: &[u8]) -> Result<Vec<reqwest::Certificate>, Error> {
    let certs = reqwest::Certificate::from_pem_bundle(pem)
        .map_err(|e| Error::Config(format!("cannot read the CA bundle: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Config("the CA bundle holds no certificate".into()));
    }
    Ok(certs)
}

/// An error and its causes, each said once: reqwest's (and kube's) top-level message
/// is terse ("error sending request"); the causes say why.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_never_shows_in_debug() {
        let key = ApiKey::new("  SECRETKEY123\n").unwrap();
        assert_eq!(key.expose(), "SECRETKEY123");
        let shown = format!("{key:?}");
        assert!(!shown.contains("SECRETKEY123"), "{shown}");
        assert_eq!(key.redact("a SECRETKEY123 b"), "a [redacted] b");
        assert!(ApiKey::new(" \n").is_err());
        assert!(ApiKey::new("with space").is_err());
    }

    #[test]
    fn base_urls() {
        assert_eq!("us".parse::<BaseUrl>().unwrap().url().as_str(), US_BASE_URL);
        assert_eq!("EU".parse::<BaseUrl>().unwrap().url().as_str(), EU_BASE_URL);
        let custom: BaseUrl = "https://127.0.0.1:8443/services/v2".parse().unwrap();
        assert_eq!(custom.url().port(), Some(8443));
        assert!("http://127.0.0.1/services/v2".parse::<BaseUrl>().is_err());
        assert!("nonsense".parse::<BaseUrl>().is_err());
    }

    #[test]
    fn retry_decisions() {
        let policy = RetryPolicy::default();
        let e500 = Error::Api {
            operation: Operation::Reissue,
            status: 500,
            errors: vec![],
        };
        let e429 = Error::Api {
            operation: Operation::Reissue,
            status: 429,
            errors: vec![],
        };
        let e404 = Error::Api {
            operation: Operation::OrderInfo,
            status: 404,
            errors: vec![],
        };
        // (operation, attempt, error, retry?)
        let cases = [
            (Operation::OrderInfo, 1, &e500, true),
            (Operation::OrderInfo, 4, &e500, false),
            (Operation::OrderInfo, 1, &e404, false),
            (Operation::Reissue, 1, &e500, false),
            (Operation::Reissue, 1, &e429, true),
            (Operation::UpdateOrderStatus, 2, &e429, true),
        ];
        for (op, attempt, err, want) in cases {
            assert_eq!(
                policy.should_retry(op, attempt, err),
                want,
                "{op} {attempt} {err}"
            );
        }
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        let e = Error::Api {
            operation: Operation::OrderInfo,
            status: 503,
            errors: vec![],
        };
        let delays: Vec<_> = (0..200).map(|_| policy.delay(8, &e)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(1)));
        // Jitter: not all equal.
        assert!(delays.iter().any(|d| *d != delays[0]));
        let limited = Error::Api {
            operation: Operation::OrderInfo,
            status: 429,
            errors: vec![],
        };
        assert!((0..200).all(|_| policy.delay(0, &limited) >= Duration::from_millis(100)));
    }
}
