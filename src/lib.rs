//! digicert-operator: keeps DigiCert CertCentral certificates valid in Kubernetes
//! `kubernetes.io/tls` Secrets by reissuing inside (Multi-year) orders.

pub mod certcentral;
pub mod cli;
pub mod controller;
pub mod crd;
pub mod dcv;
pub mod error;
pub mod health;
pub mod keys;
pub mod metrics;
pub mod operator;
pub mod simulator;
pub mod telemetry;
pub mod tls;

/// Sent with every CertCentral call.
pub const USER_AGENT: &str = concat!("digicert-operator/", env!("CARGO_PKG_VERSION"));

/// Lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
