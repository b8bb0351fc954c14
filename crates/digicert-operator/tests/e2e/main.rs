//! End-to-end tests: the operator's binary (and the chart's, the demo's and the
//! plugin's commands) against a real kube-apiserver and etcd, the CertCentral
//! simulator over HTTPS, and where they matter a real DNS server and Helm. One test
//! binary, a module per subject; `support/` is the harness.

// Shared with the component tests: some helpers are theirs only.
#[allow(dead_code)]
#[path = "../support/mod.rs"]
mod support;

mod accounts;
mod chart;
mod crash;
mod crd;
mod dcv;
mod feed;
mod harness;
mod issuer;
mod lifecycle;
mod misuse;
mod monitoring;
mod operate;
mod operator;
mod plugin;
mod reactions;
mod revocation;
