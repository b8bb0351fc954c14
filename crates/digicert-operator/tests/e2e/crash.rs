//! Crash safety end to end: the operator binary is killed (SIGKILL) at chosen points
//! of a reissue, or the answer to its reissue is lost, and a restarted operator must
//! finish the job with exactly one reissue at DigiCert per intent, a consistent Secret,
//! and no pending key left behind.
//!
//! The points are found with the simulator's fault injection: a `delay` fault holds a
//! call (`before`: DigiCert has not seen it yet; `after`: DigiCert did the work and the
//! answer is held back), so the test can kill the operator while it waits there.

use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use crate::support::env::{OperatorEnv, condition};
use certcentral_sim::OrderSeed;
use digicert_operator::certcentral::Operation;
use digicert_operator::crd::{DigicertOrder, ReissueState, ReissueStatus};
use digicert_operator::keys;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use serde_json::{Value, json};

const NAMES: &[&str] = &["example.com", "www.example.com"];
const CERTIFICATE_ID_ANNOTATION: &str = "digicert-operator.dev/certificate-id";

/// An issued order for `example.com` + `www.example.com` whose reissues are issued
/// `issuance_delay_seconds` after they are submitted.
fn seed(id: u64, issuance_delay_seconds: u64) -> OrderSeed {
    serde_json::from_value(json!({
        "id": id,
        "common_name": "example.com",
        "dns_names": ["www.example.com"],
        "issuance_delay_seconds": issuance_delay_seconds,
    }))
    .expect("valid seed")
}

/// The environment plus the logs of the operator runs killed so far (the fixture
/// keeps only the log of the running one); they are printed when the test fails.
struct Crash {
    env: OperatorEnv,
    killed_logs: Vec<String>,
}

impl Deref for Crash {
    type Target = OperatorEnv;
    fn deref(&self) -> &OperatorEnv {
        &self.env
    }
}

impl DerefMut for Crash {
    fn deref_mut(&mut self) -> &mut OperatorEnv {
        &mut self.env
    }
}

impl Drop for Crash {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for (i, log) in self.killed_logs.iter().enumerate() {
                eprintln!(
                    "--- log of killed operator run {} ---\n{log}\n--- end ---",
                    i + 1
                );
            }
        }
    }
}

impl Crash {
    async fn new(test: &str, orders: Vec<OrderSeed>) -> Self {
        Crash {
            env: OperatorEnv::new(test, orders).await,
            killed_logs: Vec::new(),
        }
    }

    /// SIGKILL, keeping the log.
    fn kill(&mut self) {
        if self.env.operator.is_some() {
            self.killed_logs.push(self.env.operator_logs());
        }
        self.env.kill_operator();
    }

    fn fault(&self, spec: Value) -> u64 {
        self.sim
            .simulator()
            .add_fault(serde_json::from_value(spec).expect("valid fault spec"))
            .expect("fault accepted")
    }

    fn calls(&self, op: Operation) -> u64 {
        self.sim.simulator().calls().total(op)
    }

    fn outcome(&self, op: Operation, outcome: &str) -> u64 {
        self.sim.simulator().calls().outcome(op, outcome)
    }

    /// Every reissue the simulator holds for the order (all certificates but the
    /// initial one), in any state.
    fn reissues(&self, order_id: u64) -> Vec<Value> {
        let record = self
            .sim
            .simulator()
            .order_record(order_id)
            .expect("the order exists");
        record["certificates"]
            .as_array()
            .expect("certificates")
            .iter()
            .filter(|c| c["origin"] != "initial")
            .cloned()
            .collect()
    }

    /// The reissues in one line each, for failure messages.
    fn describe_reissues(&self, order_id: u64) -> String {
        self.reissues(order_id)
            .iter()
            .map(|c| {
                format!(
                    "id {} {} {} csr {}",
                    c["id"],
                    c["origin"],
                    c["status"],
                    csr_fingerprint(c).get(..12).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn order(&self, name: &str) -> DigicertOrder {
        self.orders().get(name).await.expect("the DigicertOrder")
    }

    async fn pending_key(&self, name: &str) -> Option<Secret> {
        self.secrets()
            .get_opt(&format!("{name}-pending-key"))
            .await
            .unwrap()
    }

    /// Polls a synchronous check (simulator state) until it holds.
    async fn eventually(&self, what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !check() {
            if Instant::now() >= deadline {
                panic!(
                    "timed out waiting for {what}\n--- operator log ---\n{}",
                    self.operator_logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the pending key Secret is gone.
    async fn wait_pending_key_gone(&self, name: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while let Some(s) = self.pending_key(name).await {
            assert!(
                Instant::now() < deadline,
                "{name}-pending-key is still there {timeout:?} after the order became Ready \
                 (labels {:?}, deletionTimestamp {:?})\nstatus: {}\n--- operator log ---\n{}",
                s.metadata.labels,
                s.metadata.deletion_timestamp,
                serde_json::to_string_pretty(&self.order(name).await.status).unwrap(),
                self.operator_logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The common verdict after recovery: Ready, revision 1, nothing in flight; the
    /// simulator holds exactly one reissue for the order, issued, made from the
    /// intent's CSR (when known); the Secret verifies and holds that certificate; no
    /// pending key is left. Returns the reissue.
    async fn assert_one_reissue(
        &self,
        name: &str,
        order_id: u64,
        intent_csr: Option<&str>,
        clock: Clock,
    ) -> Value {
        let reissue = self
            .assert_one_reissue_written(name, order_id, intent_csr, clock)
            .await;
        self.wait_pending_key_gone(name, Duration::from_secs(10))
            .await;
        reissue
    }

    /// `assert_one_reissue` without the pending key check.
    async fn assert_one_reissue_written(
        &self,
        name: &str,
        order_id: u64,
        intent_csr: Option<&str>,
        clock: Clock,
    ) -> Value {
        let order = self.wait_ready(name).await;
        let reissues = self.reissues(order_id);
        assert_eq!(
            reissues.len(),
            1,
            "one intent, one reissue at DigiCert for order {order_id}; the simulator holds: {}",
            self.describe_reissues(order_id)
        );
        let reissue = &reissues[0];
        assert_eq!(reissue["status"], "issued", "{reissue:#}");
        if let Some(fingerprint) = intent_csr {
            assert_eq!(
                csr_fingerprint(reissue),
                fingerprint,
                "the reissue carries the CSR of the intent the operator recorded"
            );
        }
        let status = order.status.clone().unwrap();
        assert_eq!(
            status.revision,
            1,
            "one certificate written; status: {}",
            serde_json::to_string_pretty(&status).unwrap()
        );
        assert!(status.reissue.is_none(), "{:?}", status.reissue);
        let id = reissue["id"].as_u64().unwrap();
        assert_eq!(status.certificate.as_ref().map(|c| c.id), Some(id));
        let (annotations, serial) = self.check_secret(&format!("{name}-tls"), clock).await;
        assert_eq!(annotations[CERTIFICATE_ID_ANNOTATION], id.to_string());
        assert_eq!(
            Some(serial.as_str()),
            reissue["issued"]["serial_number"].as_str(),
            "the Secret holds the reissued certificate"
        );
        reissue.clone()
    }

    /// Verifies the certificate Secret (key, chain, names, validity) and returns its
    /// annotations and the leaf's serial number. After the simulator's clock was moved
    /// the leaf is valid from the simulator's "now", which `verify_secret` (real time)
    /// does not accept; then the same checks run against the simulator's clock.
    async fn check_secret(
        &self,
        secret_name: &str,
        clock: Clock,
    ) -> (std::collections::BTreeMap<String, String>, String) {
        match clock {
            Clock::Real => {
                let v = self.verify_secret(secret_name, NAMES).await;
                (v.annotations, v.leaf.serial_number)
            }
            Clock::Simulator => {
                let secret = self.secrets().get(secret_name).await.unwrap();
                let serial = crate::support::env::verify_tls_secret_at(
                    &secret,
                    self.sim.ca_pem(),
                    NAMES,
                    self.sim.simulator().now(),
                )
                .leaf
                .serial_number;
                (
                    secret.metadata.annotations.clone().unwrap_or_default(),
                    serial,
                )
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Clock {
    Real,
    Simulator,
}

fn csr_fingerprint(certificate: &Value) -> String {
    certificate["csr"]
        .as_str()
        .and_then(|c| keys::csr_fingerprint(c).ok())
        .unwrap_or_default()
}

fn reissue_of(o: &DigicertOrder) -> Option<&ReissueStatus> {
    o.status.as_ref()?.reissue.as_ref()
}

fn state_of(o: &DigicertOrder) -> Option<ReissueState> {
    reissue_of(o).map(|r| r.state)
}

// ---- 1. Killed right after the POST ----

/// DigiCert made the reissue, the operator died before it heard so. The status says
/// Submitting without a request id; the restarted operator finds the reissue by its
/// CSR and adopts it instead of sending another.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_after_digicert_made_the_reissue_adopts_it() {
    const ORDER: u64 = 3001;
    let mut env = Crash::new("crash-after-post", vec![seed(ORDER, 0)]).await;
    env.fault(json!({"operation": "reissue", "kind": "delay", "millis": 15000, "phase": "after", "nth": 1}));
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml("web", ORDER, ""));

    // DigiCert has it (issued at once: no issuance delay) while the answer is held.
    env.eventually(
        "the reissue at the simulator",
        Duration::from_secs(30),
        || !env.reissues(ORDER).is_empty(),
    )
    .await;
    let before = env.order("web").await;
    let reissue = reissue_of(&before).cloned().expect("a reissue in flight");
    assert_eq!(reissue.state, ReissueState::Submitting, "{reissue:?}");
    assert_eq!(reissue.request_id, None);
    assert_eq!(
        env.outcome(Operation::Reissue, "201"),
        0,
        "the answer is held"
    );
    env.kill();

    // Exactly the state the crash left.
    let after = env.order("web").await;
    assert_eq!(reissue_of(&after), Some(&reissue));
    assert!(env.pending_key("web").await.is_some());
    assert!(env.secrets().get_opt("web-tls").await.unwrap().is_none());

    env.start_operator();
    env.assert_one_reissue("web", ORDER, Some(&reissue.csr_fingerprint), Clock::Real)
        .await;
    env.wait_event("web", "ReissueAdopted", Duration::from_secs(20))
        .await;
    assert_eq!(
        env.calls(Operation::Reissue),
        1,
        "adopted, not sent again: {:?}",
        env.sim.simulator().calls()
    );
    assert!(env.calls(Operation::ListReissues) >= 1);
}

// ---- 2. Killed before the POST reached DigiCert ----

/// The operator wrote Submitting and is blocked in a POST that DigiCert has not
/// processed yet. It dies; the call dies with its connection (the simulator cancels a
/// call whose client is gone, as a request lost on the way). The restarted operator
/// finds nothing in the list and submits once.
///
/// "One reissue per intent" here: after the held call's delay has run out, the
/// simulator holds exactly one reissue, made from the intent's CSR, and processed
/// exactly one reissue call (the 201): the held call never turns into a second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_before_the_post_arrived_submits_once() {
    const ORDER: u64 = 3002;
    const HOLD: Duration = Duration::from_secs(8);
    let mut env = Crash::new("crash-before-post", vec![seed(ORDER, 0)]).await;
    env.fault(json!({"operation": "reissue", "kind": "delay", "millis": HOLD.as_millis() as u64, "phase": "before", "nth": 1}));
    // The restarted operator waits out the window in which the POST could still
    // arrive (the call timeout and 30 s): a 10 s timeout keeps it at 40 s.
    env.operator_args = vec!["--certcentral-timeout=10s".into()];
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml("web", ORDER, ""));

    env.eventually(
        "the reissue call at the simulator",
        Duration::from_secs(30),
        || env.calls(Operation::Reissue) == 1,
    )
    .await;
    let held_since = Instant::now();
    let before = env
        .wait_for("web", "Submitting", Duration::from_secs(5), |o| {
            state_of(o) == Some(ReissueState::Submitting)
        })
        .await;
    let reissue = reissue_of(&before).cloned().unwrap();
    assert_eq!(reissue.request_id, None);
    assert!(
        env.reissues(ORDER).is_empty(),
        "DigiCert has not done it yet: {}",
        env.describe_reissues(ORDER)
    );
    env.kill();
    assert_eq!(reissue_of(&env.order("web").await), Some(&reissue));

    env.start_operator();
    env.assert_one_reissue("web", ORDER, Some(&reissue.csr_fingerprint), Clock::Real)
        .await;

    // Past the held call's delay: still exactly one.
    let rest = (HOLD + Duration::from_millis(1500)).saturating_sub(held_since.elapsed());
    tokio::time::sleep(rest).await;
    let reissues = env.reissues(ORDER);
    assert_eq!(
        reissues.len(),
        1,
        "the held call became a second reissue: {}",
        env.describe_reissues(ORDER)
    );
    assert_eq!(reissues[0]["status"], "issued");
    let calls = env.sim.simulator().calls();
    assert_eq!(
        calls.total(Operation::Reissue),
        2,
        "the held call and one more: {calls:?}"
    );
    assert_eq!(
        calls.outcome(Operation::Reissue, "201"),
        1,
        "one reissue processed: {calls:?}"
    );
    assert!(calls.total(Operation::ListReissues) >= 1, "looked first");
    assert_eq!(env.order("web").await.status.unwrap().revision, 1);
}

// ---- 3. Killed while the reissue is pending at DigiCert ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_while_the_reissue_is_pending_finishes_after_issuance() {
    const ORDER: u64 = 3003;
    let mut env = Crash::new("crash-pending", vec![seed(ORDER, 600)]).await;
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml("web", ORDER, ""));

    // Without approval the request is approved at once: the operator waits for
    // issuance (reason ValidationPending; Pending when it has no request id).
    let pending = env
        .wait_for(
            "web",
            "Issuing=True while the reissue is pending",
            Duration::from_secs(30),
            |o| {
                state_of(o) == Some(ReissueState::Submitted)
                    && condition(o, "Issuing").is_some_and(|c| {
                        c.status == "True"
                            && ["Pending", "ValidationPending"].contains(&c.reason.as_str())
                    })
            },
        )
        .await;
    let reissue = reissue_of(&pending).cloned().unwrap();
    assert!(reissue.request_id.is_some(), "{reissue:?}");
    let at_digicert = env.reissues(ORDER);
    assert_eq!(at_digicert.len(), 1);
    assert_eq!(at_digicert[0]["status"], "pending");
    env.kill();

    env.sim
        .simulator()
        .advance_clock(time::Duration::seconds(601));
    assert_eq!(env.reissues(ORDER)[0]["status"], "issued");

    env.start_operator();
    env.assert_one_reissue(
        "web",
        ORDER,
        Some(&reissue.csr_fingerprint),
        Clock::Simulator,
    )
    .await;
    assert_eq!(env.calls(Operation::Reissue), 1);
    assert_eq!(
        env.calls(Operation::UpdateOrderStatus),
        0,
        "nothing canceled"
    );
}

// ---- 4. Killed between issuance and the Secret write ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_between_issuance_and_the_secret_write_writes_it_on_restart() {
    const ORDER: u64 = 3004;
    let mut env = Crash::new("crash-before-write", vec![seed(ORDER, 0)]).await;
    env.fault(json!({"operation": "download", "kind": "delay", "millis": 8000, "phase": "before", "nth": 1}));
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml("web", ORDER, ""));

    env.eventually(
        "the download call at the simulator",
        Duration::from_secs(30),
        || env.calls(Operation::Download) == 1,
    )
    .await;
    let before = env.order("web").await;
    let reissue = reissue_of(&before).cloned().expect("a reissue in flight");
    // The reissue's answer is not written on its own (the certificate's write records
    // it): status still says Submitting, and the restart finds the reissue by its CSR.
    assert_eq!(reissue.state, ReissueState::Submitting, "{reissue:?}");
    let at_digicert = env.reissues(ORDER);
    assert_eq!(at_digicert.len(), 1);
    assert_eq!(
        at_digicert[0]["status"], "issued",
        "issued, not yet written"
    );
    assert!(env.secrets().get_opt("web-tls").await.unwrap().is_none());
    assert!(env.pending_key("web").await.is_some());
    env.kill();

    env.start_operator();
    env.assert_one_reissue("web", ORDER, Some(&reissue.csr_fingerprint), Clock::Real)
        .await;
    assert_eq!(env.calls(Operation::Reissue), 1);
    assert_eq!(
        env.calls(Operation::Download),
        2,
        "the held one and one more"
    );
}

// ---- 5. A lost answer without a crash ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_reissue_answer_is_adopted_not_resent() {
    const ORDER: u64 = 3005;
    let mut env = Crash::new("lost-answer", vec![seed(ORDER, 0)]).await;
    env.fault(json!({"operation": "reissue", "kind": "drop", "phase": "after", "nth": 1}));
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml("web", ORDER, ""));

    env.assert_one_reissue("web", ORDER, None, Clock::Real)
        .await;
    env.wait_event("web", "ReissueAdopted", Duration::from_secs(20))
        .await;
    let calls = env.sim.simulator().calls();
    assert_eq!(
        calls.total(Operation::Reissue),
        1,
        "not sent again: {calls:?}"
    );
    assert_eq!(calls.outcome(Operation::Reissue, "dropped"), 1, "{calls:?}");
    assert!(calls.total(Operation::ListReissues) >= 1, "{calls:?}");
}

// ---- 6. Kill loops ----

/// Where a kill loop's offsets count from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CountFrom {
    /// The start of the operator process.
    Start,
    /// The first call this operator run makes to DigiCert (or 3 s after the start
    /// when it makes none: then it has nothing left to do).
    FirstCall,
}

/// Kills the operator `offsets.len()` times, each time `k` ms after `from`, then lets
/// it run. Returns one line per kill: where it landed.
async fn kill_loop(
    env: &mut Crash,
    orders: &[(&str, u64)],
    from: CountFrom,
    offsets: &[u64],
) -> Vec<String> {
    let mut trace = Vec::new();
    for &k in offsets {
        let calls_before = env.sim.simulator().calls().sum();
        env.start_operator();
        let mut idle = false;
        if from == CountFrom::FirstCall {
            let deadline = Instant::now() + Duration::from_secs(3);
            while env.sim.simulator().calls().sum() == calls_before {
                if Instant::now() >= deadline {
                    idle = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(k)).await;
        env.kill();
        let mut line = format!(
            "kill at {k:>4} ms after {from:?}{}:",
            if idle { " (no call)" } else { "" }
        );
        for &(name, id) in orders {
            let o = env.order(name).await;
            let status = o.status.clone().unwrap_or_default();
            line.push_str(&format!(
                " [{name}: state {:?} revision {} reissues at DigiCert {}]",
                status.reissue.as_ref().map(|r| r.state),
                status.revision,
                env.reissues(id).len()
            ));
        }
        trace.push(line);
    }
    env.start_operator();
    trace
}

async fn assert_kill_loop(env: &Crash, orders: &[(&str, u64)], trace: &[String]) {
    let trace = trace.join("\n");
    eprintln!("{trace}");
    for &(name, id) in orders {
        let done = env
            .wait_for(name, "Ready", Duration::from_secs(60), |o| {
                condition(o, "Ready").is_some_and(|c| c.status == "True")
            })
            .await;
        let reissues = env.reissues(id);
        assert_eq!(
            reissues.len(),
            1,
            "{name}: one reissue at DigiCert; the simulator holds: {}\nkills:\n{trace}\nstatus: {}",
            env.describe_reissues(id),
            serde_json::to_string_pretty(&done.status).unwrap()
        );
        env.assert_one_reissue_written(name, id, None, Clock::Real)
            .await;
    }
    // A kill between the last status write and the pending key delete leaves the
    // pending key behind for a moment: the restarted operator removes it.
    for &(name, _) in orders {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while env.pending_key(name).await.is_some() {
            assert!(
                std::time::Instant::now() < deadline,
                "{name}: the pending key Secret was left behind"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kills_at_fixed_offsets_end_ready_with_one_reissue() {
    const ORDER: u64 = 3006;
    let mut env = Crash::new("kill-loop", vec![seed(ORDER, 0)]).await;
    env.apply(&OperatorEnv::order_yaml("web", ORDER, ""));
    let orders = [("web", ORDER)];
    let trace = kill_loop(
        &mut env,
        &orders,
        CountFrom::Start,
        &[
            0, 50, 100, 200, 300, 400, 500, 650, 800, 1000, 1200, 1600, 2000,
        ],
    )
    .await;
    assert_kill_loop(&env, &orders, &trace).await;
}

/// The same with every DigiCert answer held back 150 ms after the work is done, and
/// the kills counted from each run's first DigiCert call: they land between "DigiCert
/// did it" and "the operator recorded it" far more often.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kills_with_slow_answers_end_ready_with_one_reissue() {
    const ORDER: u64 = 3016;
    let mut env = Crash::new("kill-loop-slow", vec![seed(ORDER, 0)]).await;
    env.fault(json!({"kind": "delay", "millis": 150, "phase": "after"}));
    env.apply(&OperatorEnv::order_yaml("web", ORDER, ""));
    let orders = [("web", ORDER)];
    let trace = kill_loop(
        &mut env,
        &orders,
        CountFrom::FirstCall,
        &[0, 20, 40, 60, 80, 100, 130, 160, 200, 250, 300, 400],
    )
    .await;
    assert_kill_loop(&env, &orders, &trace).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kills_with_five_orders_at_once_end_ready_with_one_reissue_each() {
    let ids = [2001u64, 2002, 2003, 2004, 2005];
    let mut env = Crash::new(
        "kill-loop-five",
        ids.iter().map(|&id| seed(id, 0)).collect(),
    )
    .await;
    let names: Vec<String> = ids.iter().map(|id| format!("web-{id}")).collect();
    let orders: Vec<(&str, u64)> = names.iter().map(String::as_str).zip(ids).collect();
    let manifests: Vec<String> = orders
        .iter()
        .map(|&(name, id)| OperatorEnv::order_yaml(name, id, ""))
        .collect();
    env.apply(&manifests.join("---\n"));
    let trace = kill_loop(
        &mut env,
        &orders,
        CountFrom::Start,
        &[0, 150, 300, 450, 600, 800, 1000, 1300, 1600, 2000],
    )
    .await;
    assert_kill_loop(&env, &orders, &trace).await;
}

// ---- 7. The pending key deleted by hand ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deleted_pending_key_cancels_the_pending_reissue_and_starts_over() {
    const ORDER: u64 = 3007;
    let mut env = Crash::new("pending-key-deleted", vec![seed(ORDER, 600)]).await;
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml("web", ORDER, ""));

    let first = env
        .wait_for("web", "Submitted", Duration::from_secs(30), |o| {
            state_of(o) == Some(ReissueState::Submitted)
                && condition(o, "Issuing").is_some_and(|c| c.status == "True")
        })
        .await;
    let first = reissue_of(&first).cloned().unwrap();
    assert_eq!(env.reissues(ORDER).len(), 1);

    env.secrets()
        .delete("web-pending-key", &DeleteParams::default())
        .await
        .unwrap();

    // A new intent (another CSR) is submitted after the old one was canceled.
    let second = env
        .wait_for(
            "web",
            "a new reissue submitted",
            Duration::from_secs(30),
            |o| {
                reissue_of(o).is_some_and(|r| {
                    r.state == ReissueState::Submitted && r.csr_fingerprint != first.csr_fingerprint
                })
            },
        )
        .await;
    let second = reissue_of(&second).cloned().unwrap();
    env.wait_event("web", "PendingKeyLost", Duration::from_secs(20))
        .await;
    let reissues = env.reissues(ORDER);
    assert_eq!(reissues.len(), 2, "{}", env.describe_reissues(ORDER));
    assert_eq!(csr_fingerprint(&reissues[0]), first.csr_fingerprint);
    assert_eq!(
        reissues[0]["status"], "rejected",
        "the old one was canceled"
    );
    assert_eq!(csr_fingerprint(&reissues[1]), second.csr_fingerprint);
    assert_eq!(reissues[1]["status"], "pending");
    assert!(env.pending_key("web").await.is_some(), "a new pending key");

    env.sim
        .simulator()
        .advance_clock(time::Duration::seconds(601));
    let order = env.wait_ready("web").await;
    let status = order.status.clone().unwrap();
    assert_eq!(status.revision, 1);
    assert!(status.reissue.is_none());
    let (annotations, serial) = env.check_secret("web-tls", Clock::Simulator).await;
    let reissues = env.reissues(ORDER);
    assert_eq!(reissues.len(), 2, "{}", env.describe_reissues(ORDER));
    assert_eq!(reissues[1]["status"], "issued");
    assert_eq!(
        annotations[CERTIFICATE_ID_ANNOTATION],
        reissues[1]["id"].to_string()
    );
    assert_eq!(
        Some(serial.as_str()),
        reissues[1]["issued"]["serial_number"].as_str()
    );
    env.wait_pending_key_gone("web", Duration::from_secs(10))
        .await;
    let calls = env.sim.simulator().calls();
    assert_eq!(
        calls.total(Operation::UpdateOrderStatus),
        1,
        "one cancel: {calls:?}"
    );
    assert_eq!(
        calls.outcome(Operation::UpdateOrderStatus, "204"),
        1,
        "{calls:?}"
    );
    assert_eq!(calls.total(Operation::Reissue), 2, "{calls:?}");
}

// ---- 8. Killed between the status write and the pending key delete ----

/// The last two steps of a reissue are: status written (Ready, no reissue in flight),
/// then the pending key Secret deleted. A crash between them leaves the pending key
/// Secret (a copy of the certificate's private key) behind. This recreates exactly
/// that state: the pending key Secret as the operator wrote it, captured during the
/// reissue, put back after the operator finished and was killed. The restarted
/// operator must remove it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pending_key_left_by_a_crash_after_the_status_write_is_removed() {
    const ORDER: u64 = 3008;
    let mut env = Crash::new("crash-before-key-delete", vec![seed(ORDER, 0)]).await;
    // Hold the download so the pending key Secret can be read while it exists.
    env.fault(json!({"operation": "download", "kind": "delay", "millis": 2000, "phase": "before", "nth": 1}));
    env.start_operator();
    env.apply(&OperatorEnv::order_yaml("web", ORDER, ""));
    env.eventually(
        "the download call at the simulator",
        Duration::from_secs(30),
        || env.calls(Operation::Download) == 1,
    )
    .await;
    let captured = env
        .pending_key("web")
        .await
        .expect("the pending key Secret");
    let intent = reissue_of(&env.order("web").await)
        .cloned()
        .expect("a reissue in flight");
    env.assert_one_reissue("web", ORDER, Some(&intent.csr_fingerprint), Clock::Real)
        .await;
    env.kill();

    // The state a crash right after the status write leaves.
    let leftover = Secret {
        metadata: ObjectMeta {
            name: captured.metadata.name.clone(),
            labels: captured.metadata.labels.clone(),
            owner_references: captured.metadata.owner_references.clone(),
            ..ObjectMeta::default()
        },
        type_: captured.type_.clone(),
        data: captured.data.clone(),
        ..Secret::default()
    };
    env.secrets()
        .create(&PostParams::default(), &leftover)
        .await
        .unwrap();
    let status = env.order("web").await.status.unwrap();
    assert!(status.reissue.is_none() && status.revision == 1);
    // What is left is a second copy of the certificate's private key.
    let stored = env.verify_secret("web-tls", NAMES).await;
    let left_key = captured.data.as_ref().unwrap()["tls.key"].0.clone();
    assert_eq!(
        keys::public_key_bits(
            &keys::parse_private_key(&String::from_utf8(left_key).unwrap()).unwrap()
        ),
        keys::public_key_bits(&keys::parse_private_key(&stored.key_pem).unwrap()),
    );

    env.start_operator();
    env.wait_ready("web").await;
    env.wait_pending_key_gone("web", Duration::from_secs(10))
        .await;
    assert_eq!(env.reissues(ORDER).len(), 1);
    assert_eq!(env.order("web").await.status.unwrap().revision, 1);
}

// ---- 9. A DigicertOrder cache that lags behind the operator's own writes ----

/// A plain-HTTP front for the API server, for an operator's kubeconfig: it forwards
/// every call with the test's own credentials, and holds back each event of a
/// DigicertOrder watch by `lag` (Secret watches and all other calls pass at once). The
/// operator's cache of DigicertOrders then lags behind what it has written, as a
/// watch does under load.
struct LaggingApiServer {
    kubeconfig: tempfile::NamedTempFile,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LaggingApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LaggingApiServer {
    async fn start(client: kube::Client, namespace: &str, lag: Duration) -> Self {
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let client = client.clone();
            async move { forward(client, lag, req).await }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let kubeconfig = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            kubeconfig.path(),
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: lagging\n  cluster:\n    server: http://{addr}\nusers:\n- name: lagging\n  user: {{}}\ncontexts:\n- name: lagging\n  context:\n    cluster: lagging\n    user: lagging\n    namespace: {namespace}\ncurrent-context: lagging\n"
            ),
        )
        .unwrap();
        LaggingApiServer { kubeconfig, task }
    }
}

async fn forward(
    client: kube::Client,
    lag: Duration,
    req: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = req.into_parts();
    let order_watch = parts.method == http::Method::GET
        && parts.uri.path().ends_with("/digicertorders")
        && parts
            .uri
            .query()
            .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return http::StatusCode::BAD_REQUEST.into_response();
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let mut upstream = http::Request::builder().method(parts.method).uri(path);
    for (name, value) in &parts.headers {
        if !matches!(
            name.as_str(),
            "host" | "authorization" | "content-length" | "accept-encoding" | "connection"
        ) {
            upstream = upstream.header(name, value);
        }
    }
    let upstream = upstream.body(kube::client::Body::from(bytes)).unwrap();
    match client.send(upstream).await {
        Ok(res) => {
            let (mut parts, body) = res.into_parts();
            parts.headers.remove("content-length");
            parts.headers.remove("transfer-encoding");
            let body = axum::body::Body::new(body);
            let body = if order_watch {
                lagging(body, lag)
            } else {
                body
            };
            axum::response::Response::from_parts(parts, body)
        }
        Err(e) => (http::StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

/// The body, each chunk passed on `lag` after it arrived.
fn lagging(body: axum::body::Body, lag: Duration) -> axum::body::Body {
    use futures::StreamExt;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut chunks = body.into_data_stream();
        while let Some(chunk) = chunks.next().await {
            if tx.send((tokio::time::Instant::now() + lag, chunk)).is_err() {
                break;
            }
        }
    });
    axum::body::Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        let (at, chunk) = rx.recv().await?;
        tokio::time::sleep_until(at).await;
        Some((chunk, rx))
    }))
}

/// The operator acts on the DigicertOrder as its cache shows it. When that cache lags
/// behind the status the operator itself wrote (here by 500 ms, for DigicertOrders
/// only), a reconcile woken by the pending key Secret may see an older status: "no
/// reissue in flight" although one was just submitted, or another intent's CSR. One
/// intent must still make one reissue at DigiCert, and nothing is canceled.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lagging_order_cache_does_not_make_a_second_reissue() {
    const ORDER: u64 = 3009;
    const LAG: Duration = Duration::from_millis(500);
    let mut env = Crash::new("lagging-cache", vec![seed(ORDER, 600)]).await;
    let proxy =
        LaggingApiServer::start(env.cluster.client.clone(), &env.cluster.namespace, LAG).await;
    let args = env.args();
    let vars = [
        ("KUBECONFIG", proxy.kubeconfig.path().as_os_str()),
        (
            "LOG_LEVEL",
            std::ffi::OsStr::new("info,digicert_operator=debug"),
        ),
    ];
    env.operator = Some(crate::support::process::OperatorProcess::start(
        &args, &vars,
    ));
    // The order comes once the operator watches everything: its pending key Secret
    // is then seen at once, while the order's own changes come `LAG` late.
    let base = env.http_base();
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{base}/readyz"))
        .await
        .map_or(true, |r| !r.status().is_success())
    {
        assert!(Instant::now() < deadline, "the operator never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    env.apply(&OperatorEnv::order_yaml("web", ORDER, ""));

    let first = env
        .wait_for("web", "Submitted", Duration::from_secs(30), |o| {
            state_of(o) == Some(ReissueState::Submitted)
        })
        .await;
    let first = reissue_of(&first).cloned().unwrap();
    // Time for every lagging event to arrive, and for what it wakes to finish.
    tokio::time::sleep(LAG * 5).await;

    let order = env.order("web").await;
    let now = reissue_of(&order).cloned();
    let calls = env.sim.simulator().calls();
    let events = env.event_reasons("web").await;
    let context = format!(
        "the simulator holds: {}\ncalls: {calls:?}\nevents: {events:?}\nfirst intent: {first:?}\nnow: {now:?}",
        env.describe_reissues(ORDER)
    );
    assert_eq!(env.reissues(ORDER).len(), 1, "one reissue; {context}");
    assert_eq!(
        calls.total(Operation::Reissue),
        1,
        "one reissue call; {context}"
    );
    assert_eq!(
        calls.total(Operation::UpdateOrderStatus),
        0,
        "nothing canceled; {context}"
    );
    assert_eq!(
        now.map(|r| r.csr_fingerprint),
        Some(first.csr_fingerprint),
        "still the first intent; {context}"
    );
    assert!(env.pending_key("web").await.is_some(), "{context}");
}
