//! Benchmark 7: the fault matrix. For each kind of fault, injected at the simulator
//! on each endpoint the operator uses: the order's status explains while it fails,
//! the calls per order stay under a stated bound, and it recovers once healed.

use std::time::{Duration, Instant};

use certcentral_sim::faults::{FaultAction, FaultSpec, Phase};
use digicert_operator::certcentral::Operation;
use digicert_operator::crd::{CANCEL_ANNOTATION, DigicertOrder};
use futures::StreamExt;
use kube::api::{Patch, PatchParams};

use crate::support::env::{OperatorEnv, condition};

/// The operator's `--certcentral-timeout` in these runs.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Attempts per call in one reconcile (the client's retry policy).
pub const ATTEMPTS_PER_CALL: u64 = 4;
/// The transient back-off: 5 s doubling up to 5 min, each wait at least 0.8 × that.
pub const BACKOFF_BASE_S: f64 = 5.0;
pub const BACKOFF_MIN_FACTOR: f64 = 0.8;
pub const BACKOFF_CAP_S: f64 = 300.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Fault {
    ServerError,
    RateLimited,
    Timeout,
    Reset,
    Malformed,
    Slow,
}

impl Fault {
    pub const ALL: [Fault; 6] = [
        Fault::ServerError,
        Fault::RateLimited,
        Fault::Timeout,
        Fault::Reset,
        Fault::Malformed,
        Fault::Slow,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Fault::ServerError => "5xx (503)",
            Fault::RateLimited => "429",
            Fault::Timeout => "timeout",
            Fault::Reset => "connection reset",
            Fault::Malformed => "malformed body",
            Fault::Slow => "slow (1.5 s)",
        }
    }

    fn action(self) -> FaultAction {
        match self {
            Fault::ServerError => FaultAction::Status {
                status: 503,
                code: None,
            },
            Fault::RateLimited => FaultAction::RateLimit,
            // Longer than the operator's call timeout.
            Fault::Timeout => FaultAction::Delay {
                millis: CALL_TIMEOUT.as_millis() as u64 * 3,
            },
            Fault::Reset => FaultAction::Drop,
            Fault::Malformed => FaultAction::Malformed,
            Fault::Slow => FaultAction::Delay { millis: 1500 },
        }
    }

    /// The condition reason the status should show while this fault lasts.
    pub fn reason(self) -> Option<&'static str> {
        match self {
            Fault::ServerError => Some("DigiCertUnavailable"),
            Fault::RateLimited => Some("RateLimited"),
            Fault::Timeout | Fault::Reset => Some("DigiCertUnreachable"),
            Fault::Malformed => Some("BadResponse"),
            Fault::Slow => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Endpoint {
    Reissue,
    OrderInfo,
    ListReissues,
    Download,
    Cancel,
    AutoReissue,
    RequestInfo,
    ApproveRequest,
}

impl Endpoint {
    pub const ALL: [Endpoint; 8] = [
        Endpoint::Reissue,
        Endpoint::OrderInfo,
        Endpoint::ListReissues,
        Endpoint::Download,
        Endpoint::Cancel,
        Endpoint::AutoReissue,
        Endpoint::RequestInfo,
        Endpoint::ApproveRequest,
    ];

    pub fn operation(self) -> Operation {
        match self {
            Endpoint::Reissue => Operation::Reissue,
            Endpoint::OrderInfo => Operation::OrderInfo,
            Endpoint::ListReissues => Operation::ListReissues,
            Endpoint::Download => Operation::Download,
            Endpoint::Cancel => Operation::UpdateOrderStatus,
            Endpoint::AutoReissue => Operation::UpdateAutoReissue,
            Endpoint::RequestInfo => Operation::RequestInfo,
            Endpoint::ApproveRequest => Operation::UpdateRequestStatus,
        }
    }

    /// What the operator says it was doing when this endpoint fails.
    pub fn doing(self) -> &'static str {
        match self {
            Endpoint::Reissue => "submitting the reissue",
            Endpoint::OrderInfo => "reading the order",
            Endpoint::ListReissues => "listing reissues",
            Endpoint::Download => "downloading the certificate",
            Endpoint::Cancel => "canceling the pending reissue",
            Endpoint::AutoReissue => "updating auto-reissue",
            Endpoint::RequestInfo => "reading the reissue request",
            Endpoint::ApproveRequest => "approving the reissue request",
        }
    }
}

/// The most calls one order can make to a failing endpoint in `window`: at most
/// ATTEMPTS_PER_CALL per reconcile, and reconciles spaced by the back-off (at least
/// 0.8 × 5 s, 10 s, 20 s, … up to 5 min).
pub fn call_bound(window: Duration) -> u64 {
    let mut reconciles = 1u64;
    let mut elapsed = 0.0;
    let mut wait = BACKOFF_BASE_S;
    loop {
        elapsed += wait.min(BACKOFF_CAP_S) * BACKOFF_MIN_FACTOR;
        if elapsed > window.as_secs_f64() {
            return reconciles * ATTEMPTS_PER_CALL;
        }
        reconciles += 1;
        wait *= 2.0;
    }
}

pub struct Params {
    /// How long each fault lasts.
    pub window: Duration,
    /// Cells run side by side (each has its own simulator, namespace and operator).
    pub parallel: usize,
    pub faults: Vec<Fault>,
    pub endpoints: Vec<Endpoint>,
}

#[derive(Debug, serde::Serialize)]
pub struct Cell {
    pub endpoint: Endpoint,
    pub fault: Fault,
    pub window_s: f64,
    /// Calls that reached the faulty endpoint while the fault lasted (one order).
    pub calls_while_failing: u64,
    /// Calls to every endpoint in that time.
    pub all_calls_while_failing: u64,
    pub bound: u64,
    pub within_bound: bool,
    /// The status named the failure (reason and what failed) while it lasted.
    pub explained: bool,
    pub status_while_failing: String,
    /// Ready (or, for cancel and auto-reissue, done) again after the fault healed.
    pub recovered: bool,
    /// Seconds from healing to recovery (for a slow answer: from the start; it is
    /// not a failure).
    pub recovery_s: f64,
}

pub async fn run(p: Params) -> Vec<Cell> {
    let cells: Vec<(Endpoint, Fault)> = p
        .endpoints
        .iter()
        .flat_map(|e| p.faults.iter().map(move |f| (*e, *f)))
        .collect();
    futures::stream::iter(cells)
        .map(|(endpoint, fault)| run_cell(endpoint, fault, p.window))
        .buffered(p.parallel.max(1))
        .collect()
        .await
}

async fn run_cell(endpoint: Endpoint, fault: Fault, window: Duration) -> Cell {
    let mut seed = crate::support::order(1);
    let mut extra = serde_json::json!({});
    match endpoint {
        Endpoint::Cancel => seed.issuance_delay_seconds = 3600,
        Endpoint::AutoReissue => extra = serde_json::json!({"autoReissue": true}),
        Endpoint::RequestInfo => seed.approval_required = true,
        Endpoint::ApproveRequest => {
            seed.approval_required = true;
            extra = serde_json::json!({"approveReissues": true});
        }
        _ => {}
    }
    let test = format!("bench-fault-{endpoint:?}-{fault:?}");
    let mut env = OperatorEnv::new(&test, vec![seed]).await;
    env.log_level = "info".into();
    env.operator_args = vec![
        "--certcentral-timeout".into(),
        format!("{}s", CALL_TIMEOUT.as_secs()),
        "--resync".into(),
        "1h".into(),
    ];
    let sim = env.sim.simulator().clone();
    let name = "fault";
    let mut object = super::order(name, 1, super::Key::EcdsaP256);
    let mut spec = serde_json::to_value(&object.spec).unwrap();
    spec.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    object.spec = serde_json::from_value(spec).unwrap();
    let inject = |sim: &certcentral_sim::Simulator| {
        sim.add_fault(FaultSpec {
            operation: Some(endpoint.operation()),
            action: fault.action(),
            phase: Phase::Before,
            nth: None,
            fraction: None,
            times: None,
        })
        .expect("fault accepted");
    };
    env.start_operator();
    let orders = env.orders();
    if endpoint == Endpoint::Cancel {
        // A reissue pending at DigiCert first; then the fault, then the request.
        orders.create(&Default::default(), &object).await.unwrap();
        env.wait_condition(
            name,
            "Issuing",
            "True",
            Some("ValidationPending"),
            Duration::from_secs(60),
        )
        .await;
        inject(&sim);
    } else {
        if endpoint == Endpoint::ListReissues {
            // The reissue arrives but its answer is lost: the operator has to find it
            // in the list.
            sim.add_fault(FaultSpec {
                operation: Some(Operation::Reissue),
                action: FaultAction::Drop,
                phase: Phase::After,
                nth: Some(1),
                fraction: None,
                times: Some(1),
            })
            .unwrap();
        }
        inject(&sim);
    }
    sim.reset_calls();
    let started = Instant::now();
    if endpoint == Endpoint::Cancel {
        let patch = serde_json::json!({"metadata": {"annotations": {CANCEL_ANNOTATION: "bench"}}});
        orders
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    } else {
        orders.create(&Default::default(), &object).await.unwrap();
    }

    let done = |o: &DigicertOrder| -> bool {
        match endpoint {
            Endpoint::Cancel => condition(o, "Issuing")
                .is_some_and(|c| c.status == "False" && c.reason == "Canceled"),
            // The order waits for an administrator: reading the request again is
            // the recovery.
            Endpoint::RequestInfo => condition(o, "Issuing")
                .is_some_and(|c| c.status == "True" && c.reason == "NeedsApproval"),
            Endpoint::AutoReissue => {
                condition(o, "Ready").is_some_and(|c| c.status == "True")
                    && condition(o, "AutoReissueSynced").is_some_and(|c| c.status == "True")
            }
            _ => condition(o, "Ready").is_some_and(|c| c.status == "True"),
        }
    };

    if fault == Fault::Slow {
        // Not a failure: it must simply work, a little later.
        let recovered = wait_until(&orders, name, Duration::from_secs(60), &done).await;
        let calls = sim.calls();
        return Cell {
            endpoint,
            fault,
            window_s: started.elapsed().as_secs_f64(),
            calls_while_failing: calls.total(endpoint.operation()),
            all_calls_while_failing: calls.sum(),
            bound: call_bound(started.elapsed()),
            within_bound: calls.total(endpoint.operation()) <= call_bound(started.elapsed()),
            explained: true,
            status_while_failing: describe(&orders.get(name).await.unwrap()),
            recovered: recovered.is_some(),
            recovery_s: started.elapsed().as_secs_f64(),
        };
    }

    tokio::time::sleep(window.saturating_sub(started.elapsed())).await;
    let failing = orders.get(name).await.unwrap();
    let calls = sim.calls();
    let failing_for = started.elapsed();
    let reason = fault.reason().unwrap_or_default();
    // A condition names it, or status.lastFailure does (when a condition shows what
    // the operator does about it, e.g. waiting before it submits again).
    let explains = |text: &str| text.contains(reason) && text.contains(endpoint.doing());
    let explained = failing.status.iter().any(|s| {
        s.conditions
            .iter()
            .any(|c| explains(&format!("{} {}", c.reason, c.message)))
            || s.last_failure.as_deref().is_some_and(explains)
    });
    sim.clear_faults();
    let healed = Instant::now();
    let recovered = wait_until(&orders, name, Duration::from_secs(400), &done).await;
    env.stop_operator();
    let bound = call_bound(failing_for);
    Cell {
        endpoint,
        fault,
        window_s: failing_for.as_secs_f64(),
        calls_while_failing: calls.total(endpoint.operation()),
        all_calls_while_failing: calls.sum(),
        bound,
        within_bound: calls.total(endpoint.operation()) <= bound,
        explained,
        status_while_failing: describe(&failing),
        recovered: recovered.is_some(),
        recovery_s: recovered.map_or(f64::NAN, |t| (t - healed).as_secs_f64()),
    }
}

async fn wait_until(
    orders: &kube::Api<DigicertOrder>,
    name: &str,
    timeout: Duration,
    done: &impl Fn(&DigicertOrder) -> bool,
) -> Option<Instant> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if orders.get(name).await.is_ok_and(|o| done(&o)) {
            return Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// The conditions and the last failure, in one line (messages shortened).
fn describe(o: &DigicertOrder) -> String {
    let short = |m: &str| {
        let m = m.split(": error sending request").next().unwrap_or(m);
        if m.chars().count() > 110 {
            format!("{}…", m.chars().take(110).collect::<String>())
        } else {
            m.to_string()
        }
    };
    let mut parts: Vec<String> = o
        .status
        .iter()
        .flat_map(|s| s.conditions.iter())
        .map(|c| {
            format!(
                "{}={} {}: {}",
                c.type_,
                c.status,
                c.reason,
                short(&c.message)
            )
        })
        .collect();
    if let Some(f) = o.status.as_ref().and_then(|s| s.last_failure.as_deref()) {
        parts.push(format!("lastFailure: {}", short(f)));
    }
    parts.join(" | ")
}

#[cfg(test)]
#[allow(unused_imports)]
mod tests {
    use super::*;

    #[test]
    fn the_call_bound_follows_the_back_off() {
        // 0, ≥4 s, ≥12 s, ≥28 s, ≥60 s: five reconciles fit in a minute.
        assert_eq!(call_bound(Duration::from_secs(3)), 4);
        assert_eq!(call_bound(Duration::from_secs(5)), 8);
        assert_eq!(call_bound(Duration::from_secs(45)), 16);
        assert_eq!(call_bound(Duration::from_secs(60)), 20);
    }
}
