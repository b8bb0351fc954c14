//! digicert-operator: keeps DigiCert CertCentral certificates valid in Kubernetes
//! `kubernetes.io/tls` Secrets by reissuing inside (Multi-year) orders.

// A reconcile's future nests every phase's; the phase tests await it inside their own,
// which takes the layout computation past the default depth of 128.
#![recursion_limit = "256"]

pub mod certmanager;
pub mod cli;
pub mod controller;
pub mod crd;
pub mod dcv;
pub mod error;
pub mod health;
pub mod issuer;
pub mod metrics;
pub mod operator;
pub mod process_metrics;
pub mod telemetry;
pub mod webhook;

// The CertCentral client and the key code are crates of their own; re-exported under
// their old paths so `crate::certcentral::…` and `crate::keys::…` read as before.
pub use certcentral;
pub use certcentral::USER_AGENT;
pub use pki::{hex, keys, tls};
