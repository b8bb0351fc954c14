//! How a client is set up: the endpoint (US, EU or a URL), the API key (never shown
//! whole), the trusted roots, the retry policy and the timeouts.

use crate::error::Error;
use crate::types::*;
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;

pub const US_BASE_URL: &str = "https://www.digicert.com/services/v2";
pub const EU_BASE_URL: &str = "https://certcentral.digicert.eu/services/v2";

/// A CertCentral API key. It is only ever written into the `X-DC-DEVKEY` header:
/// `Debug` and `Display` show a placeholder, and error texts are scrubbed of it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(Arc<str>);

impl ApiKey {
    /// Surrounding white space (a trailing newline from `echo ... > file`) is dropped.
    pub fn new(key: impl AsRef<str>) -> Result<Self, Error> {
        let key = key.as_ref().trim();
        if key.is_empty() {
            return Err(Error::Config("the API key is empty".into()));
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::Config(
                "the API key holds characters that cannot go into an HTTP header".into(),
            ));
        }
        Ok(ApiKey(key.into()))
    }

    /// The key itself: for the request header and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A short stable tag for telling keys apart (limiter registry, logs) that does not
    /// reveal the key: the first 8 hex digits of its SHA-256.
    pub fn fingerprint(&self) -> String {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.0.as_bytes());
        pki::hex(&digest.as_ref()[..4])
    }

    // Registry key: the whole digest, so two keys never share a limiter by accident.
    pub(crate) fn fingerprint_full(&self) -> String {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.0.as_bytes());
        pki::hex(digest.as_ref())
    }

    /// Replaces every occurrence of the key in `text`.
    pub fn redact(&self, text: &str) -> String {
        text.replace(&*self.0, "[redacted]")
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKey([redacted {}])", self.fingerprint())
    }
}

/// Where CertCentral is: the US or EU service, or any URL (the simulator).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BaseUrl {
    Us,
    Eu,
    Custom(reqwest::Url),
}

impl BaseUrl {
    pub fn url(&self) -> reqwest::Url {
        match self {
            BaseUrl::Us => US_BASE_URL.parse().expect("constant URL"),
            BaseUrl::Eu => EU_BASE_URL.parse().expect("constant URL"),
            BaseUrl::Custom(u) => u.clone(),
        }
    }
}

impl std::str::FromStr for BaseUrl {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "us" => Ok(BaseUrl::Us),
            "eu" => Ok(BaseUrl::Eu),
            _ => {
                let url: reqwest::Url = s.trim().parse().map_err(|e| {
                    Error::Config(format!(
                        "CertCentral URL {s:?} is neither us, eu nor a URL: {e}"
                    ))
                })?;
                if url.scheme() != "https" {
                    return Err(Error::Config(format!(
                        "CertCentral URL {s:?} must use https"
                    )));
                }
                Ok(BaseUrl::Custom(url))
            }
        }
    }
}

impl std::fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BaseUrl::Us => f.write_str("us"),
            BaseUrl::Eu => f.write_str("eu"),
            BaseUrl::Custom(u) => write!(f, "{u}"),
        }
    }
}

/// Which certificate authorities the client trusts. Verification is always on.
#[derive(Clone, Debug, Default)]
pub enum TrustRoots {
    /// The system's roots.
    #[default]
    System,
    /// The system's roots and the CA certificates of a PEM bundle.
    SystemAnd(Vec<u8>),
    /// Only the CA certificates of a PEM bundle.
    Only(Vec<u8>),
}

/// How failed calls are repeated inside one client call.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// Full jitter: a random delay up to `base * 2^retry`, capped; rate limiting waits
    /// at least the base delay so a crowded window gets room.
    pub fn delay(&self, retry: u32, err: &Error) -> Duration {
        let cap = self
            .base_delay
            .saturating_mul(1u32 << retry.min(16))
            .min(self.max_delay);
        let jittered = rand::rng().random_range(Duration::ZERO..=cap);
        if err.is_rate_limited() {
            jittered.max(self.base_delay)
        } else {
            jittered
        }
    }

    /// Whether `err` on attempt `attempt` (1-based) of `op` is worth another try.
    pub fn should_retry(&self, op: Operation, attempt: u32, err: &Error) -> bool {
        attempt < self.max_attempts
            && err.is_retryable()
            && (op.is_idempotent() || err.certainly_not_processed())
    }
}

#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub base_url: BaseUrl,
    pub trust: TrustRoots,
    /// Limit for one attempt, connection included.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub retry: RetryPolicy,
    pub user_agent: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            base_url: BaseUrl::Us,
            trust: TrustRoots::System,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            user_agent: crate::USER_AGENT.to_string(),
        }
    }
}
