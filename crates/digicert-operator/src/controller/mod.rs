//! The DigicertOrder controller: wiring, the shared context, and the error policy.
//!
//! - `decide`: pure decisions, table-tested.
//! - `access`, `ownership`: which account an order may use and what it may do with
//!   it; which resource drives a CertCentral order (pure, table-tested).
//! - `accounts`, `claims`: their effects (accounts, namespaces, key Secrets, claim
//!   Leases), and the gate a reconcile passes before any DigiCert call.
//! - `reconcile`: one reconcile's effects (DigiCert calls, Secret writes, status).
//! - `secret`: the Secrets the operator writes, as plain data.
//! - `status`: conditions and failure reasons.

pub mod access;
pub mod accounts;
pub mod claims;
pub mod decide;
pub mod events;
#[cfg(test)]
mod fixtures;
pub mod ownership;
#[cfg(test)]
mod phase_tests;
pub mod reconcile;
pub mod secret;
pub mod solvers;
pub mod status;
pub mod waits;

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::utils::PredicateConfig;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};

use tokio::sync::watch;

use crate::crd::{DigicertAccount, DigicertOrder, FINALIZER, GROUP};
use crate::error::{Error, Result};
use crate::health::Health;
use crate::metrics::Metrics;

#[derive(Clone, Debug)]
pub struct OperatorConfig {
    /// The operator's own namespace: account API keys and claim Leases live there.
    pub namespace: String,
    /// The DigicertAccount of orders that name neither an account nor a key.
    pub default_account: Option<String>,
    /// How often an order that may not go on (refused, or waiting for another's claim)
    /// is looked at again.
    pub access_recheck: Duration,
    /// How often an order is looked at when nothing else happens.
    pub resync: Duration,
    /// Put an owner reference on certificate Secrets, so they go with their
    /// DigicertOrder.
    pub secret_owner_references: bool,
    /// Namespaces to watch; empty: all.
    pub namespaces: Vec<String>,
    /// Reconciles at once.
    pub concurrency: u16,
    /// How the watches read what exists when they start.
    pub initial_list: InitialList,
    /// How long ahead of the order's end `OrderExpiring` turns true.
    pub order_expiry_warning: Duration,
    /// The longest a CertCentral call may take (the client's timeout).
    pub call_timeout: Duration,
    /// How long a deletion may wait for DigiCert before it gives up.
    pub deletion_timeout: Duration,
    /// Domain validation: the HTTP solver and where DNS records are looked up.
    pub dcv: DcvConfig,
    /// Serve accounts that name no operator namespace, and orders with a key of their
    /// own namespace (see `access::serves`).
    pub serve_unassigned: bool,
}

/// What the operator offers for solving domain validation.
#[derive(Clone, Debug, Default)]
pub struct DcvConfig {
    /// The `http-token` solver (listener, ConfigMap, Service), when enabled.
    pub http: Option<crate::dcv::http::HttpSolver>,
    /// The DNS server asked whether a DNSEndpoint's record is out (external-dns
    /// writes it somewhere the operator is not told of).
    pub dns_resolver: Option<std::net::SocketAddr>,
}

/// How a watch reads the objects that exist when it starts (and after it lost its
/// place).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum InitialList {
    /// Streaming where the server offers it, paged elsewhere (Kubernetes 1.33 turns
    /// streaming lists off by default; so may a cluster's administrator).
    #[default]
    Auto,
    /// The watch itself sends what exists, one event at a time (`sendInitialEvents`):
    /// no list response is held in memory.
    Streaming,
    /// A list in pages (of 500), then a watch from there: every server has it.
    Paged,
}

/// What the server answered a streaming-list watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamingProbe {
    Offered,
    /// Refused as invalid: the server's WatchList feature is off.
    Refused,
    /// Another failure: it cannot be told.
    Unknown,
}

/// The initial list the watches use: as configured, or for `Auto` streaming only where
/// the server took a streaming watch, paged (which every server has) otherwise.
pub fn choose_initial_list(configured: InitialList, probe: Option<StreamingProbe>) -> InitialList {
    match configured {
        InitialList::Auto if probe == Some(StreamingProbe::Offered) => InitialList::Streaming,
        InitialList::Auto => InitialList::Paged,
        chosen => chosen,
    }
}

impl InitialList {
    fn watcher_config(self) -> watcher::Config {
        match self {
            InitialList::Streaming => watcher::Config::default().streaming_lists(),
            InitialList::Auto | InitialList::Paged => watcher::Config::default(),
        }
    }
}

/// What one streaming-list watch attempt says: `None` when it is worth asking again
/// (the watch cache answers 429 while it (re)initialises, e.g. right after the CRD is
/// created; 5xx; the network).
fn probe_verdict(
    answer: &std::result::Result<(), kube::Error>,
    last_try: bool,
) -> Option<StreamingProbe> {
    match answer {
        Ok(()) => Some(StreamingProbe::Offered),
        // "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled"
        Err(kube::Error::Api(s)) if s.code == 422 && s.message.contains("sendInitialEvents") => {
            Some(StreamingProbe::Refused)
        }
        Err(kube::Error::Api(s)) if s.code != 429 && s.code < 500 => Some(StreamingProbe::Unknown),
        Err(_) if last_try => Some(StreamingProbe::Unknown),
        Err(_) => None,
    }
}

/// Asks for a streaming-list watch of the orders (of none of them: the selector
/// matches no name, so the answer is only the end-of-list bookmark) and hangs up.
async fn probe_streaming_lists(orders: &Api<OrderMeta>) -> StreamingProbe {
    const TRIES: u32 = 5;
    let params = kube::api::WatchParams::streaming_lists()
        .fields("metadata.name=")
        .timeout(1);
    let mut wait = Duration::from_millis(500);
    for attempt in 1..=TRIES {
        let answer = orders.watch(&params, "0").await.map(drop);
        if let Some(verdict) = probe_verdict(&answer, attempt == TRIES) {
            return verdict;
        }
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
    StreamingProbe::Unknown
}

/// What every reconcile gets.
pub struct Context {
    pub client: kube::Client,
    /// The CertCentral endpoints of the accounts, each with its rate limiters.
    pub endpoints: accounts::Endpoints,
    pub config: OperatorConfig,
    pub events: events::Events,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    /// Which orders use which account: an account's change wakes those.
    pub account_users: accounts::AccountUsers,
    /// Secrets orders wait on that are not otherwise watched.
    pub secret_waits: waits::SecretWaits,
}

impl Context {
    pub fn new(
        client: kube::Client,
        endpoints: accounts::Endpoints,
        config: OperatorConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        let secret_waits = waits::SecretWaits::new(client.clone());
        Context {
            events: events::Events::new(
                client.clone(),
                "digicert-operator",
                std::env::var("POD_NAME").ok(),
            ),
            client,
            endpoints,
            config,
            metrics,
            health: Arc::new(Health::default()),
            account_users: accounts::AccountUsers::default(),
            secret_waits,
        }
    }
}

/// What the controller caches of an order: its metadata only. Every reconcile reads
/// the whole object anyway, so a full cache would only cost memory.
type OrderMeta = PartialObjectMeta<DigicertOrder>;

#[tracing::instrument(skip_all, fields(namespace = order.namespace().unwrap_or_default(), order_name = order.name_any(), order_id = tracing::field::Empty))]
async fn reconcile(order: Arc<OrderMeta>, ctx: Arc<Context>) -> Result<Action> {
    let started = std::time::Instant::now();
    ctx.metrics.reconciles.inc();
    let result = reconcile_inner(order, ctx.clone()).await;
    ctx.metrics
        .reconcile_duration
        .observe(started.elapsed().as_secs_f64());
    if result.is_err() {
        ctx.metrics.reconcile_errors.inc();
    }
    result
}

async fn reconcile_inner(order: Arc<OrderMeta>, ctx: Arc<Context>) -> Result<Action> {
    let ns = order.namespace().unwrap_or_default();
    let api: Api<DigicertOrder> = Api::namespaced(ctx.client.clone(), &ns);
    // Decisions rest on the object as the API server has it now, not on the cache:
    // right after its own status write, a reconcile woken by a Secret could otherwise
    // see the status from before it (and start a second reissue), and a deletion
    // could be acted upon twice.
    let Some(fresh) = api.get_opt(&order.name_any()).await? else {
        forget(&ctx, &order);
        return Ok(Action::await_change());
    };
    tracing::Span::current().record("order_id", fresh.spec.order_id);
    // Another operator's (its account names that operator's namespace): not a write,
    // not a call. The account's change wakes the order again.
    if !accounts::serves_order(&ctx, &fresh).await? {
        tracing::debug!("served by another operator");
        return Ok(Action::await_change());
    }
    let has_finalizer = fresh.finalizers().iter().any(|f| f == FINALIZER);
    let deleting = fresh.meta().deletion_timestamp.is_some();
    if deleting && !has_finalizer {
        forget(&ctx, &order);
        return Ok(Action::await_change());
    }
    if !decide::needs_finalizer(&fresh.spec, fresh.status.as_ref()) && !deleting {
        // Nothing to do at DigiCert on deletion: no finalizer, so the resource (and
        // its namespace) never waits for the operator. One added before goes.
        if has_finalizer {
            remove_finalizer(&api, &fresh).await?;
            return Ok(Action::requeue(decide::schedule::NEXT_STEP_NOW));
        }
        return reconcile::Run::new(Arc::new(fresh), ctx.clone())
            .apply()
            .await;
    }
    let order = Arc::new(fresh);
    finalizer(&api, FINALIZER, order, |event| async {
        match event {
            FinalizerEvent::Apply(o) => reconcile::Run::new(o, ctx.clone()).apply().await,
            FinalizerEvent::Cleanup(o) => reconcile::Run::new(o, ctx.clone()).cleanup().await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        kube::runtime::finalizer::Error::AddFinalizer(e)
        | kube::runtime::finalizer::Error::RemoveFinalizer(e) => Error::Kube(e),
        other => Error::Finalizer(other.to_string()),
    })
}

/// Drops what the operator keeps of a gone order: its metrics, its place among an
/// account's users.
fn forget(ctx: &Context, order: &OrderMeta) {
    let namespace = order.namespace().unwrap_or_default();
    ctx.metrics.forget_order(
        &crate::metrics::OrderLabels {
            namespace: namespace.clone(),
            name: order.name_any(),
        },
        &order.uid().unwrap_or_default(),
    );
    ctx.account_users
        .record(&namespace, &order.name_any(), None);
}

/// Removes the operator's finalizer, against the version read (a merge patch with the
/// resourceVersion fails rather than drop another writer's finalizer).
async fn remove_finalizer(api: &Api<DigicertOrder>, order: &DigicertOrder) -> Result<()> {
    let rest: Vec<&String> = order
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .collect();
    let patch = serde_json::json!({
        "metadata": {
            "finalizers": rest,
            "resourceVersion": order.resource_version(),
        }
    });
    api.patch(
        &order.name_any(),
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

/// Errors that reconcile did not turn into status (Kubernetes API trouble): a write
/// conflict is retried at once, anything else after a pause.
fn error_policy(order: Arc<OrderMeta>, err: &Error, _ctx: Arc<Context>) -> Action {
    if let Error::CleanupPending { after, why } = err {
        tracing::info!(
            name = order.name_any(),
            retry_in_s = after.as_secs(),
            "deletion waits: {why}"
        );
        return Action::requeue(*after);
    }
    if err.is_conflict() {
        tracing::debug!(name = order.name_any(), "write conflict; retrying");
        return Action::requeue(decide::schedule::after_conflict(rand::random()));
    }
    tracing::warn!(
        namespace = order.namespace().unwrap_or_default(),
        name = order.name_any(),
        error = %err,
        "reconcile failed"
    );
    Action::requeue(decide::schedule::after_error(rand::random()))
}

/// What of a DigicertOrder, when it changes, calls for a reconcile.
fn relevant_change(order: &OrderMeta) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let meta = order.meta();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    meta.generation.hash(&mut h);
    meta.annotations.hash(&mut h);
    meta.finalizers.hash(&mut h);
    meta.deletion_timestamp
        .as_ref()
        .map(|t| t.0.as_second())
        .hash(&mut h);
    Some(h.finish())
}

/// Drops from a cached order's metadata what no trigger looks at (field managers,
/// labels, owners, and other tools' annotations such as kubectl's copy of the whole
/// object), so the cache stays small with many orders. The operator's own
/// annotations (renew, cancel, allow-revocation, and any added later) all stay: each
/// is an instruction that must reach a reconcile at once.
fn keep_what_triggers(order: &mut OrderMeta) {
    let meta = &mut order.metadata;
    meta.managed_fields = None;
    meta.labels = None;
    meta.owner_references = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.retain(|k, _| is_operator_annotation(k));
    }
}

/// Whether an annotation is one of the operator's (`digicert-operator.dev/…`).
fn is_operator_annotation(key: &str) -> bool {
    key.strip_prefix(GROUP)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// How long to wait before looking again at a namespace that cannot be watched.
const BLOCKED_RETRY: Duration = Duration::from_secs(30);

/// Runs the controllers (one per watched namespace, or one for all) until `stop`
/// turns true; reconciles in flight finish first.
pub async fn run(ctx: Arc<Context>, stop: watch::Receiver<bool>) -> Result<()> {
    let namespaces: Vec<Option<String>> = if ctx.config.namespaces.is_empty() {
        vec![None]
    } else {
        // A namespace named twice would get two controllers racing on its orders.
        let mut unique = ctx.config.namespaces.clone();
        unique.sort();
        unique.dedup();
        unique.into_iter().map(Some).collect()
    };
    let runs = namespaces
        .into_iter()
        .map(|ns| run_namespace(ctx.clone(), ns, stop.clone()));
    let accounts = accounts::run_accounts(ctx.clone(), stop.clone());
    futures::future::join(futures::future::join_all(runs), accounts).await;
    tracing::info!("controllers stopped");
    Ok(())
}

/// Waits until DigicertOrders can be listed (CRD installed, access granted), saying
/// clearly why not meanwhile, then runs the controller. A namespace the operator
/// may not read does not stop the others.
async fn run_namespace(ctx: Arc<Context>, ns: Option<String>, mut stop: watch::Receiver<bool>) {
    // Metadata-only APIs: watches of these get no spec, status or Secret data.
    let (orders, secrets): (Api<OrderMeta>, Api<PartialObjectMeta<Secret>>) = match &ns {
        Some(ns) => (
            Api::namespaced(ctx.client.clone(), ns),
            Api::namespaced(ctx.client.clone(), ns),
        ),
        None => (Api::all(ctx.client.clone()), Api::all(ctx.client.clone())),
    };
    let scope = ns
        .as_deref()
        .map(|n| format!("namespace {n}"))
        .unwrap_or_else(|| "all namespaces".into());
    let mut blocked = false;
    loop {
        let check = orders
            .list(&kube::api::ListParams::default().limit(1))
            .await;
        let problem = match check {
            Ok(_) => break,
            Err(kube::Error::Api(s)) if s.code == 404 => {
                "the DigicertOrder CRD is not installed (kubectl apply -f crds/)".to_string()
            }
            Err(kube::Error::Api(s)) if s.code == 403 => format!(
                "no access to DigicertOrders in {scope} ({}): grant the operator's Role there, or leave it out of --watch-namespace",
                s.message
            ),
            Err(e) => format!("cannot list DigicertOrders in {scope}: {e}"),
        };
        if !blocked {
            blocked = true;
            ctx.health.block();
        }
        tracing::error!(scope = %scope, retry_in_s = BLOCKED_RETRY.as_secs(), "{problem}");
        tokio::select! {
            _ = tokio::time::sleep(BLOCKED_RETRY) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
    if blocked {
        ctx.health.unblock();
        tracing::info!(scope = %scope, "DigicertOrders can be listed now");
    }
    let probe = match ctx.config.initial_list {
        InitialList::Auto => Some(probe_streaming_lists(&orders).await),
        _ => None,
    };
    let initial_list = choose_initial_list(ctx.config.initial_list, probe);
    tracing::info!(scope = %scope, ?probe, "initial lists: {initial_list:?}");
    // Only Secrets the operator labelled are watched, never every Secret, and only
    // their metadata: the label names the order, which is all a watch event needs.
    let secret_watch = initial_list.watcher_config().labels(secret::ORDER_LABEL);
    let secret_events = watcher(secrets, secret_watch)
        .default_backoff()
        .touched_objects();
    // Status changes (most of them the operator's own) do not trigger reconciles: a
    // reconcile that writes status must not wake itself up again. Spec (generation),
    // annotations (renew, cancel), finalizers and deletion do. Initial lists are paged
    // or streamed, so a restart with many orders never holds them all at once.
    let writer = kube::runtime::reflector::store::Writer::<OrderMeta>::default();
    let store = writer.as_reader();
    // A DigicertAccount changes (or it comes or goes): the orders that use it (as
    // their last reconcile saw it) are looked at again. Its status counts too: it
    // turns Ready when its key Secret appears, which orders refused for want of a key
    // wait for. Account status is written only when it changes.
    let users_ctx = ctx.clone();
    let scope_ns = ns.clone();
    let account_events = watcher(
        Api::<PartialObjectMeta<DigicertAccount>>::all(ctx.client.clone()),
        initial_list.watcher_config(),
    )
    .default_backoff()
    .touched_objects()
    .predicate_filter(
        kube::runtime::predicates::resource_version,
        PredicateConfig::default(),
    );
    // A deletion without a finalizer (deletionPolicy Retain) reaches no reconcile:
    // its metrics and its place among an account's users go when the watch says so.
    let deleted_ctx = ctx.clone();
    let trigger = watcher(orders, initial_list.watcher_config())
        .default_backoff()
        .modify(keep_what_triggers)
        .reflect(writer)
        .inspect_ok(move |event| {
            if let watcher::Event::Delete(order) = event {
                forget(&deleted_ctx, order);
            }
        })
        .applied_objects()
        .predicate_filter(relevant_change, PredicateConfig::default());
    let waited = waits::wakes_in(ctx.secret_waits.subscribe(), ns.clone())
        .map(|(ns, name)| ObjectRef::<OrderMeta>::new(&name).within(&ns));
    let controller = Controller::for_stream(trigger, store)
        .with_config(
            kube::runtime::controller::Config::default().concurrency(ctx.config.concurrency),
        )
        .reconcile_on(waited)
        .watches_stream(secret_events, |s: PartialObjectMeta<Secret>| {
            let ns = s.namespace();
            s.labels()
                .get(secret::ORDER_LABEL)
                .map(|name| ObjectRef::<OrderMeta>::new(name).within(&ns.unwrap_or_default()))
        })
        .watches_stream(
            account_events,
            move |a: PartialObjectMeta<DigicertAccount>| {
                users_ctx
                    .account_users
                    .users(&a.name_any())
                    .into_iter()
                    .filter(|(ns, _)| scope_ns.as_ref().is_none_or(|s| s == ns))
                    .map(|(ns, name)| ObjectRef::<OrderMeta>::new(&name).within(&ns))
                    .collect::<Vec<_>>()
            },
        );
    let store = controller.store();
    ctx.health.controller_started();
    let health = ctx.health.clone();
    tokio::spawn(async move {
        // The store wakes one waiter (the controller's own); asking again in a loop
        // sees the ready state as soon as it is there.
        loop {
            match tokio::time::timeout(Duration::from_millis(200), store.wait_until_ready()).await {
                Ok(Ok(())) => {
                    health.controller_synced();
                    break;
                }
                Ok(Err(_)) => break,
                Err(_) => {}
            }
        }
    });
    tracing::info!(scope = %scope, "watching DigicertOrders");
    controller
        .graceful_shutdown_on(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => tracing::trace!(name = %obj.name, "reconciled"),
                // A watch that cannot start or broke (the watcher retries with back-off):
                // worth seeing; a failed reconcile is the error policy's business.
                Err(e @ kube::runtime::controller::Error::QueueError(_)) => {
                    tracing::warn!(error = %e, "watching DigicertOrders")
                }
                Err(e) => tracing::debug!(error = %e, "controller"),
            }
        })
        .await;
}

/// The CRDs as YAML (one document each), for `digicert-operator crd`.
pub fn crd_yaml() -> String {
    crate::crd::crds()
        .iter()
        .map(one_crd_yaml)
        .collect::<Vec<_>>()
        .join("---\n")
}

/// One CRD as YAML: the content of its file in `crds/`.
pub fn one_crd_yaml(
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> String {
    format!(
        "# Generated by `digicert-operator crd`; do not edit.\n{}",
        serde_yaml::to_string(crd).expect("the CRD serialises")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{ALLOW_REVOCATION_ANNOTATION, CANCEL_ANNOTATION, RENEW_ANNOTATION};

    #[test]
    fn a_probe_tells_refusal_from_passing_trouble() {
        let api = |code: u16, message: &str| -> std::result::Result<(), kube::Error> {
            Err(kube::Error::Api(Box::new(kube::core::Status {
                code,
                message: message.into(),
                ..kube::core::Status::default()
            })))
        };
        let refused = "ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled";
        use StreamingProbe::*;
        let cases = [
            (Ok(()), false, Some(Offered)),
            (api(422, refused), false, Some(Refused)),
            (api(422, "something else is invalid"), false, Some(Unknown)),
            (api(403, "forbidden"), false, Some(Unknown)),
            (api(429, "storage is (re)initializing"), false, None),
            (api(429, "storage is (re)initializing"), true, Some(Unknown)),
            (api(503, "unavailable"), false, None),
        ];
        for (answer, last, want) in cases {
            assert_eq!(probe_verdict(&answer, last), want, "{answer:?} last={last}");
        }
    }

    #[test]
    fn auto_streams_only_where_the_server_offered_it() {
        use InitialList::*;
        use StreamingProbe::*;
        let cases = [
            (Auto, Some(Offered), Streaming),
            (Auto, Some(Refused), Paged),
            (Auto, Some(Unknown), Paged),
            (Auto, None, Paged),
            (Streaming, None, Streaming),
            (Streaming, Some(Refused), Streaming),
            (Paged, Some(Offered), Paged),
        ];
        for (configured, probe, want) in cases {
            assert_eq!(
                choose_initial_list(configured, probe),
                want,
                "{configured:?} {probe:?}"
            );
        }
    }
    use kube::api::ObjectMeta;

    #[test]
    fn the_cache_keeps_only_what_triggers_a_reconcile() {
        let mut order: OrderMeta = PartialObjectMeta {
            types: None,
            metadata: ObjectMeta {
                name: Some("web".into()),
                generation: Some(3),
                finalizers: Some(vec![FINALIZER.into()]),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                annotations: Some(
                    [
                        (RENEW_ANNOTATION.to_string(), "1".to_string()),
                        (CANCEL_ANNOTATION.to_string(), "2".to_string()),
                        (ALLOW_REVOCATION_ANNOTATION.to_string(), "ab12".to_string()),
                        (
                            "example.com/digicert-operator.dev".to_string(),
                            "x".to_string(),
                        ),
                        ("digicert-operator.devx/renew".to_string(), "x".to_string()),
                        (
                            "kubectl.kubernetes.io/last-applied-configuration".to_string(),
                            "{...}".to_string(),
                        ),
                    ]
                    .into(),
                ),
                managed_fields: Some(vec![Default::default()]),
                ..ObjectMeta::default()
            },
            _phantom: Default::default(),
        };
        let mut edited = order.clone();
        edited.metadata.annotations.as_mut().unwrap().insert(
            "kubectl.kubernetes.io/last-applied-configuration".into(),
            "{changed}".into(),
        );
        keep_what_triggers(&mut order);
        keep_what_triggers(&mut edited);
        let meta = &order.metadata;
        assert_eq!(meta.labels, None);
        assert_eq!(meta.managed_fields, None);
        let kept: Vec<&String> = meta.annotations.as_ref().unwrap().keys().collect();
        // Every instruction the operator reads stays; look-alikes do not.
        assert_eq!(
            kept,
            [
                ALLOW_REVOCATION_ANNOTATION,
                CANCEL_ANNOTATION,
                RENEW_ANNOTATION
            ]
        );
        assert_eq!(meta.generation, Some(3));
        assert_eq!(
            meta.finalizers.as_deref(),
            Some(&[FINALIZER.to_string()][..])
        );
        // Another tool's annotation is no reason to reconcile.
        assert_eq!(relevant_change(&order), relevant_change(&edited));
    }
}
