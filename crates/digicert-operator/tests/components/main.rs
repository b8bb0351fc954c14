//! Tests of the parts without the controller running: the CertCentral client
//! against the simulator over HTTPS, the simulator's program and rules, the
//! committed CRD files, the RFC 2136 client against a real DNS server, the container
//! image's build, API key secrecy and the benchmark scenarios in small. One test
//! binary, a module per subject.

// The harness is shared with the end-to-end tests; these use part of it.
#[allow(dead_code)]
#[path = "../support/mod.rs"]
mod support;

mod api_key_secrecy;
mod bench_smoke;
mod certcentral_client;
mod crd;
mod dns;
mod image;
mod sim;
mod simulator;
mod simulator_dcv;
mod simulator_duplicates;
mod simulator_feed;
