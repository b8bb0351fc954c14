//! The DigicertOrder controller: wiring, the shared context, and the error policy.
//!
//! - `decide`: pure decisions, table-tested.
//! - `reconcile`: one reconcile's effects (DigiCert calls, Secret writes, status).
//! - `secret`: the Secrets the operator writes, as plain data.
//! - `status`: conditions and failure reasons.

pub mod decide;
pub mod reconcile;
pub mod secret;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use crate::certcentral;
use crate::crd::{DigicertOrder, FINALIZER};
use crate::error::{Error, Result};

/// Where the operator's default API key is.
#[derive(Clone, Debug)]
pub struct SecretRef {
    pub namespace: String,
    pub name: String,
    pub key: String,
}

#[derive(Clone, Debug)]
pub struct OperatorConfig {
    pub default_api_key: Option<SecretRef>,
    /// How often an order is looked at when nothing else happens.
    pub resync: Duration,
    /// Put an owner reference on certificate Secrets, so they go with their
    /// DigicertOrder.
    pub secret_owner_references: bool,
    /// Namespaces to watch; empty: all.
    pub namespaces: Vec<String>,
    /// Reconciles at once.
    pub concurrency: u16,
}

/// What every reconcile gets.
pub struct Context {
    pub client: kube::Client,
    pub certcentral: certcentral::Service,
    pub config: OperatorConfig,
    pub recorder: Recorder,
}

impl Context {
    pub fn new(
        client: kube::Client,
        certcentral: certcentral::Service,
        config: OperatorConfig,
    ) -> Self {
        let reporter = Reporter {
            controller: "digicert-operator".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            certcentral,
            config,
        }
    }
}

#[tracing::instrument(skip_all, fields(namespace = order.namespace().unwrap_or_default(), name = order.name_any(), order_id = order.spec.order_id))]
async fn reconcile(order: Arc<DigicertOrder>, ctx: Arc<Context>) -> Result<Action> {
    let ns = order.namespace().unwrap_or_default();
    let api: Api<DigicertOrder> = Api::namespaced(ctx.client.clone(), &ns);
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

/// Errors that reconcile did not turn into status (Kubernetes API trouble): a write
/// conflict is retried at once, anything else after a pause.
fn error_policy(order: Arc<DigicertOrder>, err: &Error, _ctx: Arc<Context>) -> Action {
    if err.is_conflict() {
        tracing::debug!(name = order.name_any(), "write conflict; retrying");
        return Action::requeue(Duration::from_millis(500 + rand::random::<u64>() % 1000));
    }
    tracing::warn!(
        namespace = order.namespace().unwrap_or_default(),
        name = order.name_any(),
        error = %err,
        "reconcile failed"
    );
    Action::requeue(Duration::from_secs(20 + rand::random::<u64>() % 20))
}

/// Runs the controller until SIGTERM/SIGINT.
pub async fn run(ctx: Arc<Context>) -> Result<()> {
    let namespaces: Vec<Option<String>> = if ctx.config.namespaces.is_empty() {
        vec![None]
    } else {
        ctx.config.namespaces.iter().cloned().map(Some).collect()
    };
    // Fail early and clearly when the CRD is missing or access is denied.
    for ns in &namespaces {
        let api: Api<DigicertOrder> = match ns {
            Some(ns) => Api::namespaced(ctx.client.clone(), ns),
            None => Api::all(ctx.client.clone()),
        };
        if let Err(e) = api.list(&kube::api::ListParams::default().limit(1)).await {
            return Err(Error::Config(match e {
                kube::Error::Api(s) if s.code == 404 => {
                    "the DigicertOrder CRD is not installed: kubectl apply -f crds/".into()
                }
                other => format!(
                    "cannot list DigicertOrders{}: {other}",
                    ns.as_deref()
                        .map(|n| format!(" in {n}"))
                        .unwrap_or_default()
                ),
            }));
        }
    }
    let controllers = namespaces.into_iter().map(|ns| {
        let (orders, secrets): (Api<DigicertOrder>, Api<Secret>) = match &ns {
            Some(ns) => (
                Api::namespaced(ctx.client.clone(), ns),
                Api::namespaced(ctx.client.clone(), ns),
            ),
            None => (Api::all(ctx.client.clone()), Api::all(ctx.client.clone())),
        };
        // Only Secrets the operator labelled are watched, never every Secret.
        let secret_watch = watcher::Config::default().labels(secret::ORDER_LABEL);
        Controller::new(orders, watcher::Config::default().any_semantic())
            .with_config(
                kube::runtime::controller::Config::default().concurrency(ctx.config.concurrency),
            )
            .watches(secrets, secret_watch, |s: Secret| {
                let ns = s.namespace();
                s.labels().get(secret::ORDER_LABEL).map(|name| {
                    ObjectRef::<DigicertOrder>::new(name).within(&ns.unwrap_or_default())
                })
            })
            .shutdown_on_signal()
            .run(reconcile, error_policy, ctx.clone())
            .for_each(|result| async move {
                match result {
                    Ok((obj, _)) => tracing::trace!(name = %obj.name, "reconciled"),
                    Err(e) => tracing::debug!(error = %e, "controller"),
                }
            })
    });
    futures::future::join_all(controllers).await;
    tracing::info!("controller stopped");
    Ok(())
}

/// The CRD as YAML, for `digicert-operator crd` and `crds/`.
pub fn crd_yaml() -> String {
    use kube::CustomResourceExt;
    let crd = DigicertOrder::crd();
    format!(
        "# Generated by `digicert-operator crd`; do not edit.\n{}",
        serde_yaml::to_string(&crd).expect("the CRD serialises")
    )
}
