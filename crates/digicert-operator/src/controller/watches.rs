//! What the controller follows, and what wakes an order: the order watch (metadata
//! only, what triggers a reconcile), the Secrets labelled for an order, the accounts
//! orders use, the Secrets an order waits on; how initial lists are read; and the
//! wait until DigicertOrders can be listed at all.

use crate::crd::{DigicertAccount, GROUP};
use crate::error::Result;
use crate::health::Health;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::controller::Controller;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::utils::PredicateConfig;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

use super::{Context, OrderMeta, accounts, error_policy, forget, reconcile, secret, waits};

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
pub(crate) fn probe_verdict(
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
pub(crate) async fn probe_streaming_lists(orders: &Api<OrderMeta>) -> StreamingProbe {
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

/// What of a DigicertOrder, when it changes, calls for a reconcile.
pub(crate) fn relevant_change(order: &OrderMeta) -> Option<u64> {
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
pub(crate) fn keep_what_triggers(order: &mut OrderMeta) {
    let meta = &mut order.metadata;
    meta.managed_fields = None;
    meta.labels = None;
    meta.owner_references = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.retain(|k, _| is_operator_annotation(k));
    }
}

/// Whether an annotation is one of the operator's (`digicert-operator.dev/…`).
pub(crate) fn is_operator_annotation(key: &str) -> bool {
    key.strip_prefix(GROUP)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// How long to wait before looking again at a namespace that cannot be watched.
pub(crate) const BLOCKED_RETRY: Duration = Duration::from_secs(30);

/// Runs the controllers (one per watched namespace, or one for all) until `stop`
/// turns true; reconciles in flight finish first.
/// The scopes the operator watches: every namespace (`None`), or each one given.
pub(crate) fn scopes(config: &super::OperatorConfig) -> Vec<Option<String>> {
    if config.namespaces.is_empty() {
        return vec![None];
    }
    // A namespace named twice would get two controllers racing on its objects.
    let mut unique = config.namespaces.clone();
    unique.sort();
    unique.dedup();
    unique.into_iter().map(Some).collect()
}

pub async fn run(ctx: Arc<Context>, stop: watch::Receiver<bool>) -> Result<()> {
    ctx.feeds.start(stop.clone());
    let namespaces = scopes(&ctx.config);
    let runs = namespaces
        .into_iter()
        .map(|ns| run_namespace(ctx.clone(), ns, stop.clone()));
    let accounts = accounts::run_accounts(ctx.clone(), stop.clone());
    // The cert-manager external issuer, in the same process: same accounts, claims
    // and rate limits.
    let issuer = crate::issuer::run(ctx.clone(), stop.clone());
    futures::future::join3(futures::future::join_all(runs), accounts, issuer).await;
    tracing::info!("controllers stopped");
    Ok(())
}

/// Waits until DigicertOrders can be listed (CRD installed, access granted), saying
/// clearly why not meanwhile, then runs the controller. A namespace the operator
/// may not read does not stop the others.
pub(crate) async fn run_namespace(
    ctx: Arc<Context>,
    ns: Option<String>,
    mut stop: watch::Receiver<bool>,
) {
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
    if !wait_until_listable(&ctx, &orders, &scope, &mut stop).await {
        return;
    }
    let probe = match ctx.config.initial_list {
        InitialList::Auto => Some(probe_streaming_lists(&orders).await),
        _ => None,
    };
    let initial_list = choose_initial_list(ctx.config.initial_list, probe);
    let probed = probe.map_or("not made".into(), |p| format!("{p:?}").to_lowercase());
    tracing::info!(scope = %scope, probe = %probed, "initial lists: {initial_list:?}");
    let controller = order_controller(&ctx, ns, orders, secrets, initial_list);
    report_synced(controller.store(), ctx.health.clone());
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

/// Waits until DigicertOrders can be listed in the scope (the CRD installed, the
/// operator granted), saying why not and holding readiness back meanwhile. `false`:
/// stopped first.
pub(crate) async fn wait_until_listable(
    ctx: &Context,
    orders: &Api<OrderMeta>,
    scope: &str,
    stop: &mut watch::Receiver<bool>,
) -> bool {
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
            _ = stop.wait_for(|s| *s) => return false,
        }
    }
    if blocked {
        ctx.health.unblock();
        tracing::info!(scope = %scope, "DigicertOrders can be listed now");
    }
    true
}

/// The controller of the scope's orders and what wakes them: their own changes,
/// their Secrets, their accounts, and the Secrets they wait on.
pub(crate) fn order_controller(
    ctx: &Arc<Context>,
    ns: Option<String>,
    orders: Api<OrderMeta>,
    secrets: Api<PartialObjectMeta<Secret>>,
    initial_list: InitialList,
) -> Controller<OrderMeta> {
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
    // Secrets the order waits on, and orders DigiCert's change feed says changed.
    let waited = futures::stream::select(
        waits::wakes_in(ctx.secret_waits.subscribe(), ns.clone()),
        super::feed::woken(ctx.feeds.subscribe(), false, ns.clone()),
    )
    .map(|(ns, name)| ObjectRef::<OrderMeta>::new(&name).within(&ns));
    Controller::for_stream(trigger, store)
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
        )
}

/// Marks the controller synced once its store has read everything: the store wakes
/// one waiter (the controller's own), so asking again in a loop sees the ready state
/// as soon as it is there.
pub(crate) fn report_synced(
    store: kube::runtime::reflector::Store<OrderMeta>,
    health: Arc<Health>,
) {
    health.controller_started();
    tokio::spawn(async move {
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
}
