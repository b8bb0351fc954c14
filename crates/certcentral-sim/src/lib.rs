//! The CertCentral simulator: a real HTTPS server, run locally, that behaves like the
//! CertCentral Services API v2 for the endpoints the operator drives, signs real
//! certificates from its own test CA, and can be told to misbehave.
//!
//! - `/services/v2/...`: the DigiCert API (see [`api`]).
//! - `/admin/...`: seeding orders and domains, setting the clock, faults, call counters
//!   (see [`admin`]).
//!
//! Duplicates ([`duplicates`]) and revocation ([`revocation`]), including what DigiCert
//! revokes some time after a reissue that removed names, follow the simulator's clock.
//!
//! Domain control validation is real: the account's domains ([`dcv`]) are checked by
//! the validation authority ([`va`]) in DNS and over HTTP, when asked (`check-dcv`,
//! `validate-token`) and on DigiCert's own polling schedule.

pub mod admin;
mod api;
pub mod ca;
mod dcv_api;
pub mod faults;
mod poller;
pub mod rules;
mod server;
pub mod settings;
pub mod store;
pub mod va;
pub mod webhooks;
mod wire;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use ca::{CaMaterial, TestCa};
use certcentral::{Operation, Window};
use faults::{FaultRule, FaultSpec, Faults};
use settings::Rules;
pub use settings::{
    DEFAULT_DCV_ERROR_CODE, DEFAULT_REVOCATION_DELAY_SECONDS, FeedSettings, ReuseStep,
};
use store::{ApiError, State};
pub use store::{ApiKeyConfig, OrderPatch, OrderSeed};
pub use store::{DomainPatch, DomainSeed};
pub use va::VaConfig;

#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    #[error("{0}")]
    Ca(#[from] ca::CaError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
}

/// A rate limit as written in a seed file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSpec {
    pub limit: usize,
    pub window_seconds: u64,
}

impl From<RateLimitSpec> for Window {
    fn from(s: RateLimitSpec) -> Window {
        Window::new(s.limit, Duration::from_secs(s.window_seconds))
    }
}

/// The file given with `--orders`: API keys, orders, and optionally rate limits, domains
/// and the reuse-period schedule.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedFile {
    /// Accepted API keys; when none are listed, any non-empty key is accepted (as an
    /// approver).
    #[serde(default)]
    pub api_keys: Vec<ApiKeyConfig>,
    #[serde(default)]
    pub orders: Vec<OrderSeed>,
    /// Replaces the documented limits; an empty list turns limiting off.
    #[serde(default)]
    pub rate_limits: Option<Vec<RateLimitSpec>>,
    /// Domains of the account. Order names no domain covers get one at seeding.
    #[serde(default)]
    pub domains: Vec<DomainSeed>,
    /// Replaces the reuse-period schedule (`[{from: 2026-02-24, days: 199}, ...]`).
    #[serde(default)]
    pub reuse_schedule: Option<Vec<ReuseStep>>,
    /// The UTC offset (hours) a status-changes range is read in (default -7, US
    /// Mountain time; 0 reads UTC).
    #[serde(default)]
    pub status_changes_range_offset_hours: Option<i8>,
    /// How many days back a status-changes window may reach (default 7).
    #[serde(default)]
    pub status_changes_max_days: Option<u32>,
    /// Put the chain into the answer of a reissue issued at once (default false).
    #[serde(default)]
    pub reissue_answer_chain: Option<bool>,
    /// Where webhooks go (`{url, key, ca_file}`); absent: off, as on real accounts.
    #[serde(default)]
    pub webhook: Option<webhooks::WebhookConfig>,
}

impl SeedFile {
    /// The feed settings: the file's where it names them, else `base`.
    pub fn feed_settings(&self, base: &FeedSettings) -> FeedSettings {
        FeedSettings {
            range_offset_hours: self
                .status_changes_range_offset_hours
                .unwrap_or(base.range_offset_hours),
            longest_window: self
                .status_changes_max_days
                .map_or(base.longest_window, |d| time::Duration::days(d.into())),
            reissue_answer_chain: self
                .reissue_answer_chain
                .unwrap_or(base.reissue_answer_chain),
        }
    }
}

impl SeedFile {
    /// Reads YAML or JSON.
    pub fn load(path: &std::path::Path) -> Result<Self, SimulatorError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimulatorError::Io {
            what: format!("reading {}", path.display()),
            source,
        })?;
        serde_yaml::from_str(&text)
            .map_err(|e| SimulatorError::Config(format!("{}: {e}", path.display())))
    }
}

#[derive(Clone, Debug)]
pub struct SimulatorConfig {
    /// Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Names in the server certificate besides the listen address and `localhost`.
    pub tls_names: Vec<String>,
    /// A given server certificate chain and key (PEM files) instead of a generated one.
    pub tls_cert: Option<(PathBuf, PathBuf)>,
    pub seed: SeedFile,
    /// Keeps the CA, orders and clock across restarts.
    pub state_file: Option<PathBuf>,
    /// Rate limits per API key; empty turns limiting off.
    pub rate_limits: Vec<Window>,
    /// When set, the admin API wants `Authorization: Bearer <token>`.
    pub admin_token: Option<String>,
    /// Seed for fractional fault injection, so runs repeat.
    pub fault_seed: u64,
    /// Values of the update-order-status call that cancel.
    pub cancel_values: Vec<String>,
    /// Sets the simulator's clock to this time at start, also over a persisted clock
    /// (it runs on from there).
    pub clock_start: Option<OffsetDateTime>,
    /// The reuse-period schedule, unless the seed file gives one.
    pub reuse_schedule: Vec<ReuseStep>,
    /// How domain control is checked (DNS resolver, HTTP address, polling).
    pub dcv: VaConfig,
    /// From the issuance of a reissue that removed names to the revocation of the
    /// order's older certificates and duplicates; orders may set their own.
    pub revocation_delay_seconds: u64,
    /// The account's duplicate feature; orders may set their own.
    pub duplicates_enabled: bool,
    /// Error code of a duplicate refused because domain validation lapsed.
    pub duplicate_dcv_error_code: String,
    /// The change feed: how a status-changes range is read, how far back it may
    /// reach, whether an immediate reissue's answer carries the chain.
    pub feed: FeedSettings,
    /// Where webhooks go (none: off, as on real accounts); the seed file's wins.
    pub webhook: Option<webhooks::WebhookConfig>,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls_names: Vec::new(),
            tls_cert: None,
            seed: SeedFile::default(),
            state_file: None,
            rate_limits: certcentral::ratelimit::CERTCENTRAL_LIMITS.to_vec(),
            admin_token: None,
            fault_seed: 0,
            cancel_values: Rules::default().cancel_values,
            clock_start: None,
            reuse_schedule: settings::default_reuse_schedule(),
            dcv: VaConfig::default(),
            revocation_delay_seconds: settings::DEFAULT_REVOCATION_DELAY_SECONDS,
            duplicates_enabled: true,
            duplicate_dcv_error_code: settings::DEFAULT_DCV_ERROR_CODE.into(),
            feed: FeedSettings::default(),
            webhook: None,
        }
    }
}

/// Calls of one operation, by answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallCount {
    pub total: u64,
    /// By HTTP status, or `dropped` for connections broken on purpose.
    pub by_outcome: BTreeMap<String, u64>,
}

/// What `GET /admin/calls` answers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallCounts {
    pub operations: BTreeMap<Operation, CallCount>,
    /// Calls that matched no route.
    pub unrouted: u64,
}

impl CallCounts {
    pub fn total(&self, op: Operation) -> u64 {
        self.operations.get(&op).map_or(0, |c| c.total)
    }
    pub fn outcome(&self, op: Operation, outcome: &str) -> u64 {
        self.operations
            .get(&op)
            .and_then(|c| c.by_outcome.get(outcome))
            .copied()
            .unwrap_or(0)
    }
    /// Answers with this outcome over all operations.
    pub fn all_with_outcome(&self, outcome: &str) -> u64 {
        self.operations
            .values()
            .filter_map(|c| c.by_outcome.get(outcome))
            .sum()
    }
    pub fn sum(&self) -> u64 {
        self.operations.values().map(|c| c.total).sum()
    }
    /// Calls about single orders: all but the account-wide reads of the change feed.
    pub fn about_orders(&self) -> u64 {
        self.operations
            .iter()
            .filter(|(op, _)| !op.is_account_wide())
            .map(|(_, c)| c.total)
            .sum()
    }
}

/// Rolling-window request log per API key, as CertCentral keeps it.
#[derive(Debug, Default)]
struct ServerLimits {
    windows: Vec<Window>,
    seen: HashMap<String, VecDeque<Instant>>,
}

impl ServerLimits {
    /// Records the call and tells whether it is within every window.
    fn admit(&mut self, key: &str, now: Instant) -> bool {
        if self.windows.is_empty() {
            return true;
        }
        let longest = Window::longest(&self.windows);
        let log = self.seen.entry(key.to_string()).or_default();
        while log
            .front()
            .is_some_and(|&t| now.duration_since(t) >= longest)
        {
            log.pop_front();
        }
        let over = self.windows.iter().any(|w| {
            log.iter()
                .rev()
                .take_while(|&&t| now.duration_since(t) < w.window)
                .count()
                >= w.limit
        });
        // Refused calls are not counted: a client that waits gets through.
        if !over {
            log.push_back(now);
        }
        !over
    }
}

struct Inner {
    state: State,
    faults: Faults,
    calls: CallCounts,
    limits: ServerLimits,
    api_keys: Vec<ApiKeyConfig>,
}

/// The simulated service. Cheap to share; all state is behind one lock, held only
/// for the short synchronous part of each call.
pub struct Simulator {
    ca: TestCa,
    rules: Rules,
    va: VaConfig,
    admin_token: Option<String>,
    state_file: Option<PathBuf>,
    inner: Mutex<Inner>,
    // Serialises snapshot-and-write so an older snapshot never overwrites a newer one.
    persist_lock: tokio::sync::Mutex<()>,
    webhooks: webhooks::Webhooks,
}

#[derive(Serialize, Deserialize)]
struct Persisted {
    ca: CaMaterial,
    state: State,
}

impl Simulator {
    /// Builds the simulator: loads the persisted state if there is one, otherwise makes
    /// a new CA; then adds the seed file's orders that do not exist yet.
    pub fn new(config: &SimulatorConfig) -> Result<Arc<Self>, SimulatorError> {
        let persisted = match &config.state_file {
            Some(path) if path.exists() => {
                let text = std::fs::read_to_string(path).map_err(|source| SimulatorError::Io {
                    what: format!("reading {}", path.display()),
                    source,
                })?;
                Some(serde_json::from_str::<Persisted>(&text).map_err(|e| {
                    SimulatorError::Config(format!("state file {}: {e}", path.display()))
                })?)
            }
            _ => None,
        };
        let (ca, mut state) = match persisted {
            Some(p) => (TestCa::from_material(p.ca)?, p.state),
            None => (TestCa::generate(OffsetDateTime::now_utc())?, State::new()),
        };
        if let Some(start) = config.clock_start {
            state.clock_offset_seconds = offset_to(start);
        }
        state.dcv = settings::DcvSettings {
            reuse_schedule: config
                .seed
                .reuse_schedule
                .clone()
                .unwrap_or_else(|| config.reuse_schedule.clone()),
            poll_speedup: config.dcv.poll_speedup.max(1),
        };
        state.revocation = settings::RevocationSettings {
            delay: settings::seconds(config.revocation_delay_seconds),
        };
        state.feed = config.seed.feed_settings(&config.feed);
        state.duplicates = settings::DuplicateSettings {
            enabled: config.duplicates_enabled,
            dcv_error_code: config.duplicate_dcv_error_code.clone(),
        };
        let now = clock(&state);
        for seed in &config.seed.domains {
            if state.domain_by_name(&seed.name).is_some() {
                continue;
            }
            state.seed_domain(seed, now).map_err(|e| {
                SimulatorError::Config(format!("domain {}: {}", seed.name, e.message))
            })?;
        }
        for seed in &config.seed.orders {
            if !state.orders.contains_key(&seed.id) {
                state.seed_order(seed.clone(), &ca, now).map_err(|e| {
                    SimulatorError::Config(format!("order {}: {}", seed.id, e.message))
                })?;
            }
        }
        let windows = match &config.seed.rate_limits {
            Some(specs) => specs.iter().copied().map(Window::from).collect(),
            None => config.rate_limits.clone(),
        };
        let sim = Arc::new(Simulator {
            ca,
            rules: Rules {
                cancel_values: config.cancel_values.clone(),
            },
            va: config.dcv.clone(),
            admin_token: config.admin_token.clone(),
            state_file: config.state_file.clone(),
            inner: Mutex::new(Inner {
                state,
                faults: Faults::new(config.fault_seed),
                calls: CallCounts::default(),
                limits: ServerLimits {
                    windows,
                    seen: HashMap::new(),
                },
                api_keys: config.seed.api_keys.clone(),
            }),
            persist_lock: tokio::sync::Mutex::new(()),
            webhooks: webhooks::Webhooks::default(),
        });
        // What was there at start is no news.
        sim.lock().state.outbox.clear();
        sim.webhooks
            .set(
                config
                    .seed
                    .webhook
                    .clone()
                    .or_else(|| config.webhook.clone()),
            )
            .map_err(SimulatorError::Config)?;
        Ok(sim)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the state half-changed in a way
        // that matters more than stopping the whole simulator would.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets (or with `None` clears) where webhooks go.
    pub fn set_webhook(&self, config: Option<webhooks::WebhookConfig>) -> Result<(), String> {
        self.webhooks.set(config)
    }

    /// Drops every webhook from now on (`true`) or no more.
    pub fn drop_webhooks(&self, on: bool) {
        self.webhooks.drop_all(on);
    }

    pub fn webhook_deliveries(&self) -> webhooks::WebhookDeliveries {
        self.webhooks.deliveries()
    }

    pub fn webhook(&self) -> webhooks::WebhookView {
        self.webhooks.view()
    }

    /// Runs `change` on the state at the simulator's now, under the lock, then sends
    /// what it (or the clock) brought to the webhook once the lock is released.
    pub(crate) fn changing<T>(&self, change: impl FnOnce(&mut Inner, OffsetDateTime) -> T) -> T {
        let mut inner = self.lock();
        let now = clock(&inner.state);
        let result = change(&mut inner, now);
        let events = std::mem::take(&mut inner.state.outbox);
        drop(inner);
        self.webhooks.deliver(events);
        result
    }

    /// Applies what is due on the clock (issuance after a delay, expiry, revocations,
    /// auto-reissue), so that webhooks go out when it happens. Whether anything did.
    pub fn settle_now(&self) -> bool {
        self.changing(|inner, now| inner.state.settle(&self.ca, now))
    }

    pub(crate) fn webhooks_set(&self) -> bool {
        self.webhooks.is_set()
    }

    /// The root certificate that signs both the HTTPS server certificate and every
    /// issued chain.
    pub fn ca_pem(&self) -> &str {
        self.ca.root_pem()
    }

    /// The simulator's clock: real time plus the offset set through the admin API.
    pub fn now(&self) -> OffsetDateTime {
        clock(&self.lock().state)
    }

    /// Sets the clock to `at` (either direction), then applies what is due.
    pub fn set_clock(&self, at: OffsetDateTime) -> OffsetDateTime {
        self.changing(|inner, _| {
            inner.state.clock_offset_seconds = offset_to(at);
            let now = clock(&inner.state);
            inner.state.settle(&self.ca, now);
            now
        })
    }

    pub fn advance_clock(&self, by: time::Duration) -> OffsetDateTime {
        self.changing(|inner, _| {
            inner.state.clock_offset_seconds += by.whole_seconds();
            let now = clock(&inner.state);
            inner.state.settle(&self.ca, now);
            now
        })
    }

    pub fn calls(&self) -> CallCounts {
        self.lock().calls.clone()
    }

    pub fn reset_calls(&self) {
        self.lock().calls = CallCounts::default();
    }

    pub fn add_fault(&self, spec: FaultSpec) -> Result<u64, String> {
        self.lock().faults.add(spec)
    }

    pub fn faults(&self) -> Vec<FaultRule> {
        self.lock().faults.rules().to_vec()
    }

    pub fn remove_fault(&self, id: u64) -> bool {
        self.lock().faults.remove(id)
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear()
    }

    pub fn set_rate_limits(&self, windows: Vec<Window>) {
        let mut inner = self.lock();
        inner.limits = ServerLimits {
            windows,
            seen: HashMap::new(),
        };
    }

    pub fn seed_order(&self, seed: OrderSeed) -> Result<(), ApiError> {
        self.changing(|inner, now| inner.state.seed_order(seed, &self.ca, now))
    }

    /// Adds many orders under one lock (the admin API's bulk seeding).
    pub fn seed_orders(&self, seeds: Vec<OrderSeed>) -> Result<usize, ApiError> {
        self.changing(|inner, now| {
            let n = seeds.len();
            for seed in seeds {
                inner.state.seed_order(seed, &self.ca, now)?;
            }
            Ok(n)
        })
    }

    pub fn patch_order(&self, id: u64, patch: OrderPatch) -> Result<(), ApiError> {
        self.changing(|inner, now| {
            inner.state.patch_order(id, patch, now)?;
            inner.state.settle(&self.ca, now);
            Ok(())
        })
    }

    /// Adds a domain or changes an existing one (by name).
    pub fn seed_domain(&self, seed: &DomainSeed) -> Result<u64, ApiError> {
        self.changing(|inner, now| {
            let id = inner.state.seed_domain(seed, now)?;
            inner.state.settle(&self.ca, now);
            Ok(id)
        })
    }

    pub fn patch_domain(&self, name: &str, patch: &DomainPatch) -> Result<u64, ApiError> {
        self.changing(|inner, now| {
            let id = inner
                .state
                .domain_by_name(name)
                .map(|d| d.id)
                .ok_or_else(|| {
                    ApiError::new(404, "not_found|domain", format!("Domain {name} not found."))
                })?;
            inner.state.patch_domain(id, patch, now)?;
            inner.state.settle(&self.ca, now);
            Ok(id)
        })
    }

    /// The domain store, with approval times and what each is pending.
    pub fn domains(&self) -> Vec<store::Domain> {
        self.lock().state.domains.values().cloned().collect()
    }

    /// The full record of an order, with all its certificates and requests.
    pub fn order_record(&self, id: u64) -> Option<serde_json::Value> {
        self.changing(|inner, now| {
            inner.state.settle(&self.ca, now);
            admin::order_record(&inner.state, id)
        })
    }

    /// Writes the state file, if one is configured.
    pub async fn persist(&self) -> Result<(), SimulatorError> {
        let Some(path) = &self.state_file else {
            return Ok(());
        };
        let _guard = self.persist_lock.lock().await;
        let snapshot = {
            let inner = self.lock();
            serde_json::to_vec_pretty(&Persisted {
                ca: self.ca.material().clone(),
                state: inner.state.clone(),
            })
            .map_err(|e| SimulatorError::Config(format!("cannot encode the state: {e}")))?
        };
        let tmp = path.with_extension("tmp");
        let io = |source| SimulatorError::Io {
            what: format!("writing {}", path.display()),
            source,
        };
        tokio::fs::write(&tmp, snapshot).await.map_err(io)?;
        tokio::fs::rename(&tmp, path).await.map_err(io)
    }
}

/// The whole-second offset that puts the clock at `at` or just after it (never before,
/// so that a clock set to midnight reads that day).
fn offset_to(at: OffsetDateTime) -> i64 {
    let d = at - OffsetDateTime::now_utc();
    d.whole_seconds() + i64::from(d.subsec_nanoseconds() > 0)
}

fn clock(state: &State) -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::seconds(state.clock_offset_seconds)
}

/// A simulator serving HTTPS.
pub struct RunningSimulator {
    pub addr: SocketAddr,
    simulator: Arc<Simulator>,
    shutdown: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    poller: tokio::task::JoinHandle<()>,
}

impl RunningSimulator {
    /// Base URL of the API, e.g. `https://127.0.0.1:8443/services/v2`.
    pub fn base_url(&self) -> String {
        format!("https://{}/services/v2", self.addr)
    }

    pub fn admin_url(&self) -> String {
        format!("https://{}/admin", self.addr)
    }

    pub fn simulator(&self) -> &Arc<Simulator> {
        &self.simulator
    }

    pub fn ca_pem(&self) -> &str {
        self.simulator.ca_pem()
    }

    /// Stops accepting connections and waits for the accept loop to end.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
        let _ = self.poller.await;
    }
}

/// Starts the simulator on `config.listen`.
pub async fn start(config: SimulatorConfig) -> Result<RunningSimulator, SimulatorError> {
    pki::tls::install_crypto_provider();
    let simulator = Simulator::new(&config)?;
    simulator.persist().await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| SimulatorError::Io {
            what: format!("listening on {}", config.listen),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| SimulatorError::Io {
        what: "reading the listen address".into(),
        source,
    })?;
    let tls = server::tls_config(&simulator, &config, addr)?;
    let app = api::router(simulator.clone()).merge(admin::router(simulator.clone()));
    let (shutdown, stopped) = tokio::sync::watch::channel(false);
    let poller = tokio::spawn(poller::run(simulator.clone(), stopped.clone()));
    let task = tokio::spawn(server::serve(listener, tls, app, stopped));
    tracing::info!(%addr, "CertCentral simulator listening");
    Ok(RunningSimulator {
        addr,
        simulator,
        shutdown,
        task,
        poller,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use certcentral::dcv::DcvMethod;

    #[test]
    fn server_limits_refuse_over_the_window_and_recover() {
        let mut limits = ServerLimits {
            windows: vec![Window::new(3, Duration::from_secs(5))],
            seen: HashMap::new(),
        };
        let t0 = Instant::now();
        assert!(limits.admit("k", t0));
        assert!(limits.admit("k", t0));
        assert!(limits.admit("k", t0 + Duration::from_secs(1)));
        assert!(!limits.admit("k", t0 + Duration::from_secs(2)));
        // Another key has its own window.
        assert!(limits.admit("other", t0 + Duration::from_secs(2)));
        // The first two leave the window at t0 + 5 s.
        assert!(limits.admit("k", t0 + Duration::from_secs(5)));
        assert!(limits.admit("k", t0 + Duration::from_secs(5)));
        assert!(!limits.admit("k", t0 + Duration::from_secs(5)));
    }

    #[test]
    fn seed_files_parse_from_yaml() {
        let yaml = r#"
api_keys:
  - key: demo-key
  - key: viewer-key
    approver: false
rate_limits:
  - limit: 10
    window_seconds: 1
orders:
  - id: 1001
    common_name: example.com
    dns_names: [www.example.com]
  - id: 1002
    common_name: shop.example.org
    multi_year_plan: false
    status: pending
    order_valid_till: 2029-01-31
domains:
  - name: example.com
    dcv_method: dns-cname-token
    validated_at: 2026-06-01T00:00:00Z
  - name: example.org
    validated: false
reuse_schedule:
  - from: 2026-02-24
    days: 199
  - from: 2028-01-01
    days: 30
"#;
        let seed: SeedFile = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(seed.orders.len(), 2);
        assert!(!seed.api_keys[1].approver);
        assert_eq!(seed.orders[1].status, certcentral::OrderStatus::Pending);
        assert_eq!(seed.domains[0].dcv_method, Some(DcvMethod::DnsCnameToken));
        assert!(seed.domains[0].validated && seed.domains[0].validated_at.is_some());
        assert!(!seed.domains[1].validated);
        assert_eq!(seed.reuse_schedule.as_ref().map(Vec::len), Some(2));
        assert!(
            serde_yaml::from_str::<SeedFile>("orders: [{id: 1, common_name: a, colour: red}]")
                .is_err()
        );
        assert!(serde_yaml::from_str::<SeedFile>("domains: [{name: a, colour: red}]").is_err());
    }

    #[test]
    fn seed_files_set_the_feed_and_the_webhook() {
        let yaml = r#"
status_changes_range_offset_hours: 0
status_changes_max_days: 3
webhook:
  url: https://hooks.example.net/digicert
  key: shared
  ca_file: /etc/hooks/ca.pem
"#;
        let seed: SeedFile = serde_yaml::from_str(yaml).unwrap();
        let base = FeedSettings {
            reissue_answer_chain: true,
            ..FeedSettings::default()
        };
        let feed = seed.feed_settings(&base);
        assert_eq!(feed.range_offset_hours, 0);
        assert_eq!(feed.longest_window, time::Duration::days(3));
        assert!(feed.reissue_answer_chain, "unset in the file: the flag's");
        let hook = seed.webhook.unwrap();
        assert_eq!(hook.key.as_deref(), Some("shared"));
        assert!(hook.instant_issuance);
        assert_eq!(
            hook.ca_file.as_deref(),
            Some(std::path::Path::new("/etc/hooks/ca.pem"))
        );
        let defaults = SeedFile::default().feed_settings(&FeedSettings::default());
        assert_eq!(defaults.range_offset_hours, -7);
        assert_eq!(defaults.longest_window, time::Duration::days(7));
        assert!(serde_yaml::from_str::<SeedFile>("webhook: {url: x, colour: red}").is_err());
    }
}
