//! The cert-manager external issuer: `DigicertIssuer` and `DigicertClusterIssuer`
//! sign cert-manager `CertificateRequest`s by reissuing (or duplicating) a
//! CertCentral order, with the DigicertOrder's guarantees: the account's grants, one
//! driver per order, the revocation guard, shared rate limits, never a second send.
//!
//! - `decide`: pure decisions, table-tested.
//! - `request`: one reconcile of a request (its effects).
//! - `issuers`: the issuers' own Ready condition, and finding a request's issuer.

/// The value of a part that went on; a part that ended the reconcile returns its
/// action.
macro_rules! proceed {
    ($flow:expr) => {
        match $flow {
            Continue(value) => value,
            Break(action) => return Ok(action),
        }
    };
}

pub mod backoff;
pub mod decide;
mod follow;
pub mod issuers;
pub mod request;
mod send;
pub mod validation;
mod write;

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, ListParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::runtime::{WatchStreamExt, predicates, reflector};
use kube::{Resource, ResourceExt};
use tokio::sync::watch;

use crate::certmanager::CertificateRequest;
use crate::controller::Context;
use crate::controller::decide::schedule;
use crate::crd::issuer::ORDER_ID_ANNOTATION;
use crate::crd::{ALLOW_REVOCATION_ANNOTATION, DigicertClusterIssuer, DigicertIssuer};
use crate::error::{Error, Result};

/// How often the operator looks again whether cert-manager's CRDs were installed.
const CERT_MANAGER_RETRY: Duration = Duration::from_secs(60);

/// Runs the issuer controllers until `stop`: the issuers' readiness, and (once
/// cert-manager's CRDs are there) the requests for them.
pub async fn run(ctx: Arc<Context>, stop: watch::Receiver<bool>) {
    let scopes = crate::controller::watches_scopes(&ctx.config);
    let requests = scopes
        .iter()
        .map(|ns| run_requests(ctx.clone(), ns.clone(), stop.clone()));
    let issuers = scopes
        .iter()
        .map(|ns| run_issuers(ctx.clone(), ns.clone(), stop.clone()));
    futures::future::join3(
        futures::future::join_all(requests),
        futures::future::join_all(issuers),
        run_cluster_issuers(ctx.clone(), stop.clone()),
    )
    .await;
}

fn api<K>(ctx: &Context, ns: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    match ns {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    }
}

/// Waits until `what` can be listed; `false` when stopped first. cert-manager's
/// absence is no fault of the operator's: said once, then looked at now and then.
async fn wait_until_listable<K>(list: &Api<K>, what: &str, stop: &mut watch::Receiver<bool>) -> bool
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    let mut said = false;
    loop {
        let problem = match list.list_metadata(&ListParams::default().limit(1)).await {
            Ok(_) => return true,
            Err(kube::Error::Api(s)) if s.code == 404 => {
                format!("{what} are not served (is the CRD installed?)")
            }
            Err(e) => format!("cannot list {what}: {e}"),
        };
        if !said {
            tracing::info!(
                retry_in_s = CERT_MANAGER_RETRY.as_secs(),
                "the external issuer waits: {problem}"
            );
            said = true;
        }
        tokio::select! {
            _ = tokio::time::sleep(CERT_MANAGER_RETRY) => {}
            _ = stop.wait_for(|s| *s) => return false,
        }
    }
}

/// What of a request may make a reconcile worthwhile: its approval or denial, and
/// the instructions annotated on it. The operator's own writes (its Pending
/// condition, its record) change none of it, so they do not wake it again.
fn request_trigger(request: &CertificateRequest) -> Option<u64> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let status = request.status_or_default();
    for type_ in ["Approved", "Denied"] {
        status.find(type_).map(|c| c.status.clone()).hash(&mut h);
    }
    for key in [ORDER_ID_ANNOTATION, ALLOW_REVOCATION_ANNOTATION] {
        request.annotation(key).hash(&mut h);
    }
    request.uid().hash(&mut h);
    request.metadata.deletion_timestamp.is_some().hash(&mut h);
    Some(h.finish())
}

/// What the cache keeps of a request: what says whether it is ours and where it
/// stands, not its CSR, its certificate or its field managers (every reconcile reads
/// the request afresh). Requests of every issuer are cached; this keeps them small.
fn keep_what_decides(request: &mut CertificateRequest) {
    request.metadata.managed_fields = None;
    request.spec.request.clear();
    if let Some(status) = request.status.as_mut() {
        status.certificate = None;
        status.ca = None;
        for c in &mut status.conditions {
            c.message = None;
        }
    }
}

async fn run_requests(ctx: Arc<Context>, ns: Option<String>, mut stop: watch::Receiver<bool>) {
    let requests: Api<CertificateRequest> = api(&ctx, ns.as_deref());
    if !wait_until_listable(&requests, "cert-manager CertificateRequests", &mut stop).await {
        return;
    }
    let writer = reflector::store::Writer::<CertificateRequest>::default();
    let store = writer.as_reader();
    let feeds = ctx.feeds.clone();
    let trigger = watcher(requests, watcher::Config::default())
        .default_backoff()
        .modify(keep_what_decides)
        .inspect_ok(move |event| {
            // A request deleted while its reissue was pending follows the feed no more.
            if let watcher::Event::Delete(r) = event {
                feeds.unfollow(&crate::controller::feed::Follower::Request((
                    r.namespace().unwrap_or_default(),
                    r.name_any(),
                )));
            }
        })
        .reflect(writer)
        .applied_objects()
        .predicate_filter(request_trigger, Default::default());
    let (issuer_store, cluster_store) = (store.clone(), store.clone());
    let issuers: Api<DigicertIssuer> = api(&ctx, ns.as_deref());
    tracing::info!(
        scope = ns.as_deref().unwrap_or("all namespaces"),
        "signing cert-manager CertificateRequests for DigicertIssuers and DigicertClusterIssuers"
    );
    // Requests whose reissue is pending, woken by the change feed when the order moves.
    let woken = crate::controller::feed::woken(ctx.feeds.subscribe(), true, ns.clone())
        .map(|(ns, name)| ObjectRef::<CertificateRequest>::new(&name).within(&ns));
    Controller::for_stream(trigger, store)
        .reconcile_on(woken)
        .watches(issuers, watcher::Config::default(), move |issuer| {
            requests_of(
                &issuer_store,
                decide::IssuerKind::Namespaced,
                &issuer.name_any(),
                issuer.namespace(),
            )
        })
        .watches(
            Api::<DigicertClusterIssuer>::all(ctx.client.clone()),
            watcher::Config::default(),
            move |issuer| {
                requests_of(
                    &cluster_store,
                    decide::IssuerKind::Cluster,
                    &issuer.name_any(),
                    None,
                )
            },
        )
        .graceful_shutdown_on(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .run(reconcile_request, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "request controller");
            }
        })
        .await;
}

/// The requests waiting on an issuer that changed (open ones only).
fn requests_of(
    store: &reflector::Store<CertificateRequest>,
    kind: decide::IssuerKind,
    name: &str,
    namespace: Option<String>,
) -> Vec<ObjectRef<CertificateRequest>> {
    store
        .state()
        .iter()
        .filter(|r| {
            decide::our_issuer(&r.spec.issuer_ref) == Some(kind)
                && r.spec.issuer_ref.name == name
                && (namespace.is_none() || r.namespace() == namespace)
                && decide::gate(&r.status_or_default()) == decide::Gate::Approved
        })
        .map(|r| ObjectRef::from_obj(r.as_ref()))
        .collect()
}

#[tracing::instrument(skip_all, fields(namespace = request.namespace().unwrap_or_default(), request = request.name_any()))]
async fn reconcile_request(request: Arc<CertificateRequest>, ctx: Arc<Context>) -> Result<Action> {
    // Another issuer's request, or one finished: nothing to read, nothing to write.
    let deleting = request.metadata.deletion_timestamp.is_some();
    if decide::our_issuer(&request.spec.issuer_ref).is_none()
        || (decide::gate(&request.status_or_default()) == decide::Gate::Done && !deleting)
    {
        return Ok(Action::await_change());
    }
    let ns = request.namespace().unwrap_or_default();
    // Decisions rest on the request as the API server has it now (its record), not
    // on the cache.
    let api: Api<CertificateRequest> = Api::namespaced(ctx.client.clone(), &ns);
    let Some(fresh) = api.get_opt(&request.name_any()).await? else {
        ctx.request_backoffs
            .clear(&format!("{ns}/{}", request.name_any()));
        ctx.feeds
            .unfollow(&crate::controller::feed::Follower::Request((
                ns.clone(),
                request.name_any(),
            )));
        return Ok(Action::await_change());
    };
    if fresh.metadata.deletion_timestamp.is_some() {
        // Only a request with domain validation values out carries the finalizer.
        if fresh
            .finalizers()
            .iter()
            .any(|f| f == crate::crd::FINALIZER)
        {
            request::Signing::new(Arc::new(fresh), ctx)
                .cleanup()
                .await?;
        }
        return Ok(Action::await_change());
    }
    request::Signing::new(Arc::new(fresh), ctx).apply().await
}

fn error_policy<K: Resource<DynamicType = ()>>(
    object: Arc<K>,
    err: &Error,
    _: Arc<Context>,
) -> Action {
    if err.is_conflict() {
        return Action::requeue(schedule::after_conflict(rand::random()));
    }
    tracing::warn!(
        kind = %K::kind(&()),
        name = object.meta().name.as_deref().unwrap_or_default(),
        error = %err,
        "reconcile failed"
    );
    Action::requeue(schedule::after_error(rand::random()))
}

async fn run_issuers(ctx: Arc<Context>, ns: Option<String>, mut stop: watch::Receiver<bool>) {
    let issuers: Api<DigicertIssuer> = api(&ctx, ns.as_deref());
    if !wait_until_listable(&issuers, "DigicertIssuers", &mut stop).await {
        return;
    }
    run_issuer_controller(issuers, issuers::reconcile_issuer, ctx, stop).await;
}

async fn run_cluster_issuers(ctx: Arc<Context>, mut stop: watch::Receiver<bool>) {
    let issuers: Api<DigicertClusterIssuer> = Api::all(ctx.client.clone());
    if !wait_until_listable(&issuers, "DigicertClusterIssuers", &mut stop).await {
        return;
    }
    run_issuer_controller(issuers, issuers::reconcile_cluster_issuer, ctx, stop).await;
}

/// An issuer kind's controller. Only spec changes (generation) wake an issuer: its
/// own status write does not, so DigiCert is asked once per change and resync.
async fn run_issuer_controller<K, F, Fut>(
    issuers: Api<K>,
    reconcile: F,
    ctx: Arc<Context>,
    mut stop: watch::Receiver<bool>,
) where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
    F: FnMut(Arc<K>, Arc<Context>) -> Fut,
    Fut: std::future::Future<Output = Result<Action>> + Send + 'static,
{
    let writer = reflector::store::Writer::<K>::default();
    let store = writer.as_reader();
    let trigger = watcher(issuers, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default());
    Controller::for_stream(trigger, store)
        .graceful_shutdown_on(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {})
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_keeps_what_decides_and_drops_the_bulk() {
        let mut request: CertificateRequest = serde_json::from_value(serde_json::json!({
            "apiVersion": "cert-manager.io/v1",
            "kind": "CertificateRequest",
            "metadata": {
                "name": "web-1", "namespace": "a", "uid": "u1",
                "annotations": {ORDER_ID_ANNOTATION: "7"},
                "managedFields": [{"manager": "cert-manager"}],
            },
            "spec": {
                "request": "LS0tLS1CRUdJTi...",
                "issuerRef": {"group": "digicert-operator.dev", "kind": "DigicertIssuer", "name": "d"},
            },
            "status": {
                "conditions": [{"type": "Approved", "status": "True", "reason": "x", "message": "long"}],
                "certificate": "LS0t...", "ca": "LS0t...",
            },
        }))
        .unwrap();
        let before = request_trigger(&request);
        keep_what_decides(&mut request);
        assert_eq!(
            request_trigger(&request),
            before,
            "the trigger sees the same"
        );
        assert!(request.spec.request.is_empty() && request.metadata.managed_fields.is_none());
        let status = request.status.as_ref().unwrap();
        assert!(status.certificate.is_none() && status.ca.is_none());
        assert_eq!(decide::gate(status), decide::Gate::Approved);
        assert_eq!(
            decide::our_issuer(&request.spec.issuer_ref),
            Some(decide::IssuerKind::Namespaced)
        );
    }
}
