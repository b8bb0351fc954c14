//! The simulator in process with a client and an admin client, as the simulator's
//! component tests start it.

use certcentral_sim::admin::AdminClient;
use certcentral_sim::{ApiKeyConfig, OrderSeed, RunningSimulator, SeedFile, SimulatorConfig};
use digicert_operator::certcentral::Client;
use serde_json::{Value, json};

use crate::support::{KEY, VIEWER_KEY, client};

/// An issued order for `names` (the first is the common name), with `extra` seed fields.
pub fn seed(id: u64, names: &[&str], extra: Value) -> OrderSeed {
    let mut v = json!({"id": id, "common_name": names[0], "dns_names": names[1..]});
    if let (Some(v), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
        v.extend(extra.clone());
    }
    serde_json::from_value(v).expect("valid seed")
}

/// A simulator with an approver key and a viewer key, no rate limits, its
/// configuration adjusted by `change`.
pub async fn start(orders: Vec<OrderSeed>, change: impl FnOnce(&mut SimulatorConfig)) -> Sim {
    let mut viewer = ApiKeyConfig::new(VIEWER_KEY);
    viewer.approver = false;
    let mut config = SimulatorConfig {
        seed: SeedFile {
            api_keys: vec![ApiKeyConfig::new(KEY), viewer],
            orders,
            ..SeedFile::default()
        },
        rate_limits: Vec::new(),
        ..SimulatorConfig::default()
    };
    change(&mut config);
    let running = certcentral_sim::start(config)
        .await
        .expect("simulator starts");
    let c = client(&running, KEY);
    let admin = AdminClient::new(&running.admin_url(), running.ca_pem(), None).unwrap();
    Sim { running, c, admin }
}

pub struct Sim {
    pub running: RunningSimulator,
    pub c: Client,
    pub admin: AdminClient,
}
