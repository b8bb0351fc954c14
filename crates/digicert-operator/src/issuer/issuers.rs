//! The issuers themselves: finding the one a request names, and keeping their
//! `Ready` condition (account found and allowed, key present, DigiCert answers).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use time::OffsetDateTime;

use super::decide::{self, IssuerKind};
use crate::certmanager::CertificateRequest;
use crate::controller::{Context, accounts, status};
use crate::crd::ALLOW_REVOCATION_ANNOTATION;
use crate::crd::{DigicertClusterIssuer, DigicertIssuer, DigicertIssuerStatus, IssuerSpec};
use crate::error::Result;

/// How often a ready issuer asks DigiCert about its order again.
pub const ISSUER_RESYNC: Duration = Duration::from_secs(3600);
/// How soon an issuer that is not ready is looked at again.
pub const ISSUER_RETRY: Duration = Duration::from_secs(60);

/// The issuer a request names, as the request needs it.
pub struct Issuer {
    pub kind: IssuerKind,
    pub name: String,
    pub spec: IssuerSpec,
    /// The consent annotation on the issuer, if any.
    pub allow_revocation: Option<String>,
}

/// The issuer `request` names, or why it cannot be used now (the request waits).
pub async fn find(
    ctx: &Context,
    request: &CertificateRequest,
) -> Result<std::result::Result<Issuer, String>> {
    let issuer_ref = &request.spec.issuer_ref;
    let Some(kind) = decide::our_issuer(issuer_ref) else {
        return Ok(Err("not an issuer of this operator".into()));
    };
    let name = issuer_ref.name.clone();
    let found: Option<(
        IssuerSpec,
        Option<DigicertIssuerStatus>,
        kube::api::ObjectMeta,
    )> = match kind {
        IssuerKind::Namespaced => {
            let ns = request.namespace().unwrap_or_default();
            Api::<DigicertIssuer>::namespaced(ctx.client.clone(), &ns)
                .get_opt(&name)
                .await?
                .map(|i| (i.spec, i.status, i.metadata))
        }
        IssuerKind::Cluster => Api::<DigicertClusterIssuer>::all(ctx.client.clone())
            .get_opt(&name)
            .await?
            .map(|i| (i.spec.into(), i.status, i.metadata)),
    };
    let Some((spec, status, metadata)) = found else {
        return Ok(Err(format!(
            "the {} {name} does not exist; the request waits for it",
            kind.name()
        )));
    };
    // An issuer found not ready for its current spec holds its requests; one not yet
    // looked at does not (the request's own checks come next).
    if let Some(c) = status
        .as_ref()
        .and_then(|s| status::find(&s.conditions, status::READY))
        && c.status == "False"
        && c.observed_generation == metadata.generation
    {
        return Ok(Err(format!(
            "the {} {name} is not ready: {}: {}",
            kind.name(),
            c.reason,
            c.message
        )));
    }
    let allow_revocation = metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ALLOW_REVOCATION_ANNOTATION))
        .cloned();
    Ok(Ok(Issuer {
        kind,
        name,
        spec,
        allow_revocation,
    }))
}

/// Whether an issuer can sign: its account, and DigiCert's answer for its order.
async fn readiness(
    ctx: &Context,
    namespace: Option<&str>,
    spec: &IssuerSpec,
) -> Result<(bool, &'static str, String)> {
    let account = spec.account_ref.as_ref().map(|a| a.name.as_str());
    let resolved =
        match accounts::resolve_for_request(ctx, namespace, spec.order_id, account).await? {
            Ok(r) => r,
            Err(refusal) => return Ok((false, refusal.reason(), refusal.message())),
        };
    let Some(order_id) = spec.order_id else {
        return Ok((
            true,
            "AccountReady",
            format!(
                "the DigicertAccount {} may be used; each Certificate names its order with {}",
                resolved.grants.account,
                crate::crd::issuer::ORDER_ID_ANNOTATION
            ),
        ));
    };
    Ok(match resolved.client.order_info(order_id).await {
        Ok(info) => (
            true,
            "OrderReady",
            format!(
                "the DigicertAccount {} may be used for order {order_id}, which is {} at DigiCert",
                resolved.grants.account, info.status
            ),
        ),
        Err(e) => (
            false,
            status::failure_reason(&e),
            format!("reading order {order_id} at DigiCert: {e}"),
        ),
    })
}

/// The status an issuer's readiness gives; `None` when it is another operator's.
async fn judge(
    ctx: &Context,
    namespace: Option<&str>,
    spec: &IssuerSpec,
    old: Option<&DigicertIssuerStatus>,
    generation: Option<i64>,
) -> Result<Option<(DigicertIssuerStatus, bool)>> {
    let account = spec.account_ref.as_ref().map(|a| a.name.as_str());
    if !accounts::serves_account_named(ctx, account).await? {
        return Ok(None);
    }
    let (ready, reason, message) = readiness(ctx, namespace, spec).await?;
    let mut status = old.cloned().unwrap_or_default();
    status.account = account
        .map(str::to_string)
        .or_else(|| ctx.config.default_account.clone());
    status.observed_generation = generation;
    let mut conditions: Vec<Condition> = status.conditions;
    status::set(
        &mut conditions,
        status::READY,
        ready,
        reason,
        message,
        generation,
        OffsetDateTime::now_utc(),
    );
    status.conditions = conditions;
    Ok(Some((status, ready)))
}

/// Writes an issuer's status when it changed.
async fn write_status<K>(
    api: &Api<K>,
    name: &str,
    old: Option<&DigicertIssuerStatus>,
    new: &DigicertIssuerStatus,
) -> Result<()>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    if old != Some(new) {
        api.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "status": new })),
        )
        .await?;
    }
    Ok(())
}

fn next_look(ready: bool) -> Action {
    Action::requeue(if ready { ISSUER_RESYNC } else { ISSUER_RETRY })
}

pub async fn reconcile_issuer(issuer: Arc<DigicertIssuer>, ctx: Arc<Context>) -> Result<Action> {
    let ns = issuer.namespace().unwrap_or_default();
    let generation = issuer.meta().generation;
    let Some((status, ready)) = judge(
        &ctx,
        Some(&ns),
        &issuer.spec,
        issuer.status.as_ref(),
        generation,
    )
    .await?
    else {
        return Ok(Action::await_change());
    };
    let api = Api::<DigicertIssuer>::namespaced(ctx.client.clone(), &ns);
    write_status(&api, &issuer.name_any(), issuer.status.as_ref(), &status).await?;
    Ok(next_look(ready))
}

pub async fn reconcile_cluster_issuer(
    issuer: Arc<DigicertClusterIssuer>,
    ctx: Arc<Context>,
) -> Result<Action> {
    let generation = issuer.meta().generation;
    let spec: IssuerSpec = issuer.spec.clone().into();
    let Some((status, ready)) =
        judge(&ctx, None, &spec, issuer.status.as_ref(), generation).await?
    else {
        return Ok(Action::await_change());
    };
    let api = Api::<DigicertClusterIssuer>::all(ctx.client.clone());
    write_status(&api, &issuer.name_any(), issuer.status.as_ref(), &status).await?;
    Ok(next_look(ready))
}
