//! Benchmark 6: many orders issuing while the operator is SIGKILLed and restarted at
//! random points; then every invariant is checked at the simulator and in the cluster.

use std::time::{Duration, Instant};

use digicert_operator::controller::secret;
use digicert_operator::keys;
use rand::{Rng, SeedableRng};

use crate::support::env::OperatorEnv;

use super::{ReadyWatch, create_all};

pub struct Params {
    pub orders: usize,
    pub kills: usize,
    /// Seed for the kill points (a run can be repeated).
    pub seed: u64,
}

#[derive(Debug, serde::Serialize)]
pub struct Outcome {
    pub orders: usize,
    pub kills: usize,
    /// Seconds from the last restart until all were Ready.
    pub settle_s: f64,
    pub ready: usize,
    /// Orders with more than one reissue at DigiCert (one intent each).
    pub duplicate_reissues: usize,
    /// Orders whose current certificate at DigiCert is not the one in the Secret (its
    /// key is gone).
    pub lost_keys: usize,
    /// Secrets whose key does not belong to their certificate.
    pub mismatched_secrets: usize,
    /// Pending-key Secrets left behind.
    pub leftover_pending_keys: usize,
    pub reissues: usize,
    /// Orders Ready when the last kill came (the rest were still issuing).
    pub ready_at_last_kill: usize,
    /// Seconds the kill loop took.
    pub kill_loop_s: f64,
}

pub async fn run(p: Params) -> Outcome {
    // Issuance takes 0, 2, 4, 6 or 8 s, so kills also land while reissues are
    // pending at DigiCert.
    let seeds = (1..=p.orders as u64)
        .map(|id| {
            let mut s = crate::support::order(id);
            s.issuance_delay_seconds = (id % 5) * 2;
            s
        })
        .collect::<Vec<_>>();
    let mut env = OperatorEnv::new("bench-crash", seeds).await;
    env.log_level = "info".into();
    env.operator_args = vec!["--no-rate-limit".into()];
    let watch = ReadyWatch::start(env.orders());
    env.start_operator();
    let names: Vec<String> = (0..p.orders).map(|i| format!("crash-{i:04}")).collect();
    let objects = super::mixed_orders(&names);
    let creating = {
        let api = env.orders();
        tokio::spawn(async move { create_all(&api, objects, 16).await })
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(p.seed);
    let loop_started = Instant::now();
    let mut ready_at_last_kill = 0;
    for _ in 0..p.kills {
        let wait = Duration::from_millis(rng.random_range(200..1500));
        tokio::time::sleep(wait).await;
        ready_at_last_kill = watch.count();
        env.kill_operator();
        env.start_operator();
    }
    let kill_loop_s = loop_started.elapsed().as_secs_f64();
    creating.await.expect("orders created");
    let restarted = Instant::now();
    // A reissue caught between "submitting" and its answer waits out the settle
    // window (45 s) before it is sent again.
    let settled = watch
        .wait_for(p.orders, Duration::from_secs(180 + p.orders as u64))
        .await;
    let settle_s = settled.map_or(f64::NAN, |t| (t.max(restarted) - restarted).as_secs_f64());
    env.stop_operator();

    let sim = env.sim.simulator();
    let secrets = env.secrets();
    let mut out = Outcome {
        orders: p.orders,
        kills: p.kills,
        settle_s,
        ready: watch.count(),
        duplicate_reissues: 0,
        lost_keys: 0,
        mismatched_secrets: 0,
        leftover_pending_keys: 0,
        reissues: 0,
        ready_at_last_kill,
        kill_loop_s,
    };
    for (i, name) in names.iter().enumerate() {
        let record = sim.order_record(i as u64 + 1).expect("order exists");
        let reissues = record["certificates"]
            .as_array()
            .map_or(0, |c| c.iter().filter(|c| c["origin"] != "initial").count());
        out.reissues += reissues;
        if reissues > 1 {
            out.duplicate_reissues += 1;
        }
        let current = record["order"]["current_certificate"].as_u64();
        let current_pem = record["certificates"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["id"].as_u64() == current))
            .and_then(|c| c["issued"]["pem"].as_str())
            .unwrap_or_default()
            .to_string();
        if secrets
            .get_opt(&secret::pending_key_name(name))
            .await
            .unwrap()
            .is_some()
        {
            out.leftover_pending_keys += 1;
        }
        let Some(tls) = secrets.get_opt(&format!("{name}-tls")).await.unwrap() else {
            out.lost_keys += 1;
            continue;
        };
        let data = |k: &str| {
            tls.data
                .as_ref()
                .and_then(|d| d.get(k))
                .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                .unwrap_or_default()
        };
        let leaf = keys::certificates_from_pem(&data("tls.crt"))
            .ok()
            .and_then(|c| c.into_iter().next());
        let matches = leaf.as_ref().is_some_and(|leaf| {
            let key = keys::parse_private_key(&data("tls.key")).ok();
            let info = keys::inspect_certificate(leaf).ok();
            matches!((key, info), (Some(k), Some(i)) if keys::public_key_bits(&k) == i.public_key_bits)
        });
        if !matches {
            out.mismatched_secrets += 1;
        }
        let current_der = keys::certificates_from_pem(&current_pem)
            .ok()
            .and_then(|c| c.into_iter().next());
        if leaf.is_none() || leaf != current_der {
            out.lost_keys += 1;
        }
    }
    out
}
