//! DigiCert's own re-checks of domains pending validation, on the documented schedule
//! (compressed by `poll_speedup`), and, while a webhook is set, what the clock brings
//! (a delayed issuance, a revocation) about once a second, so that its webhook goes
//! out when it happens rather than at the next call. Runs until the simulator stops.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Simulator, clock};

pub async fn run(sim: Arc<Simulator>, mut stop: tokio::sync::watch::Receiver<bool>) {
    // Often enough to meet the compressed one-minute interval closely.
    let speedup = u64::from(sim.va.poll_speedup.max(1));
    let tick = Duration::from_millis((60_000 / speedup).clamp(20, 1000));
    let mut settled = Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.changed() => return,
        }
        poll_once(&sim).await;
        if sim.webhooks_set() && settled.elapsed() >= SETTLE_EVERY {
            settled = Instant::now();
            if sim.settle_now()
                && let Err(e) = sim.persist().await
            {
                tracing::error!(error = %e, "cannot persist the simulator state");
            }
        }
    }
}

const SETTLE_EVERY: Duration = Duration::from_secs(1);

/// Checks every domain whose check is due, then applies the results.
pub async fn poll_once(sim: &Simulator) {
    let due = {
        let inner = sim.lock();
        inner.state.due_polls(clock(&inner.state))
    };
    if due.is_empty() {
        return;
    }
    let mut results = Vec::with_capacity(due.len());
    for target in &due {
        results.push((target.domain_id, sim.va.check(target).await));
    }
    let changed = sim.changing(|inner, now| {
        let mut approved = false;
        for (id, result) in results {
            match result {
                Ok(()) => {
                    tracing::info!(domain = id, "domain validated by a scheduled check");
                    inner.state.approve_domain(id, now);
                    approved = true;
                }
                Err(e) => inner.state.poll_failed(id, e.message, now),
            }
        }
        if approved {
            inner.state.settle(&sim.ca, now);
        }
        approved
    });
    if changed && let Err(e) = sim.persist().await {
        tracing::error!(error = %e, "cannot persist the simulator state");
    }
}
