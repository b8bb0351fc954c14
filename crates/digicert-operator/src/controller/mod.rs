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
mod endpoints;
pub mod events;
pub mod feed;
#[cfg(test)]
mod fixtures;
pub mod ownership;
#[cfg(test)]
mod phase_tests;
pub mod reconcile;
pub mod secret;
pub mod solvers;
pub mod status;
pub mod validation;
pub mod waits;
mod watches;

pub(crate) use watches::scopes as watches_scopes;
pub use watches::{InitialList, StreamingProbe, choose_initial_list, run};

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, PartialObjectMeta};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::{Resource, ResourceExt};

use crate::crd::{DigicertOrder, FINALIZER};
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
    /// How often each account key's change feed is read; `None`: no feed, every order
    /// is checked on its own at the resync (at most `FEEDLESS_RESYNC`).
    pub feed_interval: Option<Duration>,
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
    /// cert-manager requests that wait after a failed DigiCert call.
    pub request_backoffs: crate::issuer::backoff::Backoffs,
    /// DigiCert's change feed, one reader per account key.
    pub feeds: Arc<feed::Feeds>,
}

impl Context {
    pub fn new(
        client: kube::Client,
        endpoints: accounts::Endpoints,
        config: OperatorConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        let secret_waits = waits::SecretWaits::new(client.clone());
        let feeds = Arc::new(feed::Feeds::new(config.feed_interval, metrics.clone()));
        Context {
            feeds,
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
            request_backoffs: Default::default(),
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
    ctx.feeds
        .unfollow(&feed::Follower::Order((namespace, order.name_any())));
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
    use super::watches::{keep_what_triggers, probe_verdict, relevant_change};
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
