//! Helpers shared by the integration tests.

pub mod certmanager;
pub mod cluster;
pub mod dcv;
pub mod dns;
pub mod dns_bridge;
pub mod env;
pub mod process;

use std::sync::Arc;
use std::time::Duration;

use certcentral_sim::{self, ApiKeyConfig, OrderSeed, RunningSimulator, SeedFile, SimulatorConfig};
use digicert_operator::certcentral::{
    ApiKey, BaseUrl, Client, ClientConfig, RateLimiter, ReissueCertificateRequest, ReissueRequest,
    RetryPolicy, TrustRoots,
};
use digicert_operator::keys::{self, KeyKind};

pub const KEY: &str = "test-api-key-0123456789";
pub const VIEWER_KEY: &str = "viewer-api-key-0123456789";

/// An order seed with defaults: issued, Multi-year Plan, names under `example.com`.
pub fn order(id: u64) -> OrderSeed {
    serde_json::from_value(serde_json::json!({
        "id": id,
        "common_name": "example.com",
        "dns_names": ["www.example.com"],
    }))
    .expect("valid seed")
}

/// A simulator on a free loopback port with `orders`, two keys (an approver and a
/// viewer), and rate limiting off unless `limits` says otherwise.
pub async fn simulator_with(
    orders: Vec<OrderSeed>,
    limits: Vec<digicert_operator::certcentral::Window>,
) -> RunningSimulator {
    let mut viewer = ApiKeyConfig::new(VIEWER_KEY);
    viewer.approver = false;
    let config = SimulatorConfig {
        seed: SeedFile {
            api_keys: vec![ApiKeyConfig::new(KEY), viewer],
            orders,
            rate_limits: None,
            ..SeedFile::default()
        },
        rate_limits: limits,
        ..SimulatorConfig::default()
    };
    certcentral_sim::start(config)
        .await
        .expect("simulator starts")
}

pub async fn simulator(orders: Vec<OrderSeed>) -> RunningSimulator {
    simulator_with(orders, Vec::new()).await
}

/// A client that trusts only the simulator's CA, retrying quickly.
pub fn client(sim: &RunningSimulator, key: &str) -> Client {
    client_with(sim, key, fast_retry(), Duration::from_secs(10))
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
    }
}

pub fn client_with(
    sim: &RunningSimulator,
    key: &str,
    retry: RetryPolicy,
    timeout: Duration,
) -> Client {
    let config = ClientConfig {
        base_url: sim.base_url().parse::<BaseUrl>().unwrap(),
        trust: TrustRoots::Only(sim.ca_pem().as_bytes().to_vec()),
        timeout,
        retry,
        ..ClientConfig::default()
    };
    Client::with_limiter(
        config,
        ApiKey::new(key).unwrap(),
        Arc::new(RateLimiter::unlimited),
    )
    .unwrap()
}

/// A key pair and a CSR for the names.
pub fn csr(kind: KeyKind, common_name: &str, dns_names: &[&str]) -> (rcgen::KeyPair, String) {
    let key = keys::generate(kind).unwrap();
    let names: Vec<String> = dns_names.iter().map(|s| s.to_string()).collect();
    let pem = keys::csr_pem(&key, common_name, &names).unwrap();
    (key, pem)
}

pub fn reissue_request(common_name: &str, dns_names: &[&str], csr: &str) -> ReissueRequest {
    ReissueRequest {
        certificate: ReissueCertificateRequest {
            common_name: common_name.into(),
            dns_names: dns_names.iter().map(|s| s.to_string()).collect(),
            csr: csr.into(),
            server_platform: None,
            signature_hash: "sha256".into(),
        },
        comments: None,
        skip_approval: None,
    }
}

/// A fresh ECDSA CSR for `example.com` + `www.example.com`.
pub fn example_reissue() -> (rcgen::KeyPair, ReissueRequest) {
    let (key, pem) = csr(
        KeyKind::Ecdsa(256),
        "example.com",
        &["example.com", "www.example.com"],
    );
    (
        key,
        reissue_request("example.com", &["www.example.com"], &pem),
    )
}
