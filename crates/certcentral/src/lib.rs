//! DigiCert CertCentral Services API v2: wire types, a typed client, and client-side
//! rate limiting.

mod client;
pub mod dcv;
pub mod duplicate;
mod error;
pub mod feed;
pub mod ratelimit;
pub mod types;

pub use client::{
    ApiKey, BaseUrl, CallObserver, Client, ClientConfig, EU_BASE_URL, LimiterFactory, RetryPolicy,
    SendSlot, Service, TrustRoots, US_BASE_URL, error_chain,
};
pub use duplicate::*;
pub use error::{Error, TransportKind};
pub use feed::*;
pub use ratelimit::{RateLimiter, Window};
pub use types::*;

/// Sent with every CertCentral call.
pub const USER_AGENT: &str = concat!("digicert-operator/", env!("CARGO_PKG_VERSION"));
