//! The claim Leases: `ownership` decides, this reads and writes
//! `coordination.k8s.io/v1` Leases in the operator's namespace.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PartialObjectMeta, PostParams};
use kube::{Resource, ResourceExt};

use super::Context;
use super::events::EventType;
use super::ownership::{
    self, CLAIM_LABEL, Claim, ENDPOINT_ANNOTATION, Holder, HolderKind, Liveness,
};
use crate::certmanager::{Certificate, CertificateRequest};
use crate::crd::DigicertOrder;
use crate::error::{Error, Result};

/// The claim, as it stands after this reconcile.
#[derive(Debug)]
pub enum Outcome {
    /// This resource drives the order; `lease` is the Lease's name.
    Held { lease: String },
    /// Another resource does.
    Yielded { holder: Holder, lease: String },
    /// The key could not read the order, so the claim was not taken (a key of the
    /// order's own namespace must prove it can reach the order before it may hold it).
    Unproven(crate::certcentral::Error),
}

fn me(order: &DigicertOrder) -> Holder {
    Holder {
        kind: HolderKind::Order,
        namespace: order.namespace().unwrap_or_default(),
        name: order.name_any(),
        uid: order.uid().unwrap_or_default(),
    }
}

fn leases(ctx: &Context) -> Api<Lease> {
    Api::namespaced(ctx.client.clone(), &ctx.config.namespace)
}

fn lease_state(lease: Option<&Lease>) -> ownership::Lease {
    match lease {
        None => ownership::Lease::Absent,
        Some(l) => ownership::Lease::Held {
            holder: l
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref())
                .and_then(Holder::parse),
            version: l.resource_version().unwrap_or_default(),
        },
    }
}

fn claim_lease(name: &str, endpoint: &str, order_id: u64, me: &Holder) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                [
                    (CLAIM_LABEL.to_string(), order_id.to_string()),
                    (
                        "app.kubernetes.io/managed-by".to_string(),
                        "digicert-operator".to_string(),
                    ),
                ]
                .into(),
            ),
            annotations: Some([(ENDPOINT_ANNOTATION.to_string(), endpoint.to_string())].into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(me.identity()),
            acquire_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::now())),
            ..LeaseSpec::default()
        }),
    }
}

/// Whether the holder still exists under its uid. A holder the operator may not read
/// counts as alive: a claim is never taken on a guess.
async fn liveness(ctx: &Context, holder: &Holder) -> Result<Liveness> {
    let (client, ns, name) = (ctx.client.clone(), &holder.namespace, &holder.name);
    let found = match holder.kind {
        HolderKind::Order => uid_of::<DigicertOrder>(client, ns, name).await,
        HolderKind::Certificate => uid_of::<Certificate>(client, ns, name).await,
        HolderKind::Request => uid_of::<CertificateRequest>(client, ns, name).await,
    };
    match found {
        Ok(uid) => Ok(ownership::liveness(holder, uid.as_deref())),
        Err(kube::Error::Api(s)) if s.code == 403 => Ok(Liveness::Alive),
        Err(e) => Err(e.into()),
    }
}

/// The uid of a resource of kind `K`, if it exists.
async fn uid_of<K>(
    client: kube::Client,
    namespace: &str,
    name: &str,
) -> std::result::Result<Option<String>, kube::Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    let api: Api<PartialObjectMeta<K>> = Api::namespaced(client, namespace);
    let found = api.get_metadata_opt(name).await?;
    Ok(found.and_then(|o| o.metadata.uid))
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// Claims the CertCentral order `order` names at `endpoint`, or learns who holds it.
/// With `proof`, the claim is taken (created or taken over) only once that client has
/// read the order at DigiCert: a namespace cannot hold an order it has no access to
/// and keep its rightful driver out.
pub async fn claim_for_order(
    ctx: &Context,
    endpoint: &str,
    order: &DigicertOrder,
    proof: Option<&crate::certcentral::Client>,
) -> Result<Outcome> {
    let claimant = Claimant {
        holder: me(order),
        order_id: order.spec.order_id,
        object: order.object_ref(&()),
    };
    claim(ctx, endpoint, &claimant, proof).await
}

/// Who claims which CertCentral order, and the object its events go to.
pub struct Claimant {
    pub holder: Holder,
    pub order_id: u64,
    pub object: k8s_openapi::api::core::v1::ObjectReference,
}

/// Claims the CertCentral order `claimant` names at `endpoint`, or learns who holds
/// it (see [`claim_for_order`]).
pub async fn claim(
    ctx: &Context,
    endpoint: &str,
    claimant: &Claimant,
    proof: Option<&crate::certcentral::Client>,
) -> Result<Outcome> {
    let api = leases(ctx);
    let me = claimant.holder.clone();
    let order_id = claimant.order_id;
    let name = ownership::lease_name(endpoint, order_id);
    // A lost race (409) means somebody else wrote the Lease: read it again. A few
    // rounds settle it; past them the error policy retries soon.
    let mut proven = false;
    for _ in 0..3 {
        let lease = api.get_opt(&name).await?;
        let state = lease_state(lease.as_ref());
        let mut alive = Liveness::Unknown;
        loop {
            match ownership::decide(&me, &state, alive) {
                Claim::Held => return Ok(Outcome::Held { lease: name }),
                Claim::Yield(holder) => {
                    return Ok(Outcome::Yielded {
                        holder,
                        lease: name,
                    });
                }
                Claim::CheckHolder(holder) => {
                    alive = liveness(ctx, &holder).await?;
                }
                Claim::Create | Claim::TakeOver { .. } if proof.is_some() && !proven => {
                    if let Some(client) = proof
                        && let Err(e) = client.order_info(order_id).await
                    {
                        return Ok(Outcome::Unproven(e));
                    }
                    proven = true;
                }
                Claim::Create => {
                    let lease = claim_lease(&name, endpoint, order_id, &me);
                    match api.create(&PostParams::default(), &lease).await {
                        Ok(_) => {
                            tracing::info!(lease = %name, order_id, "claimed the order");
                            return Ok(Outcome::Held { lease: name });
                        }
                        Err(e) if is_conflict(&e) => break,
                        Err(e) => return Err(e.into()),
                    }
                }
                Claim::TakeOver { version } => {
                    let mut lease = claim_lease(&name, endpoint, order_id, &me);
                    lease.metadata.resource_version = Some(version);
                    match api.replace(&name, &PostParams::default(), &lease).await {
                        Ok(_) => {
                            announce_take_over(ctx, claimant, &name, &state).await;
                            return Ok(Outcome::Held { lease: name });
                        }
                        Err(e) if is_conflict(&e) => break,
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
    }
    Err(Error::Kube(kube::Error::Api(Box::new(
        kube::core::Status {
            code: 409,
            message: format!("the claim Lease {name} keeps changing"),
            ..kube::core::Status::default()
        },
    ))))
}

/// Says (log and event) that this order took over a claim whose holder is gone.
async fn announce_take_over(
    ctx: &Context,
    claimant: &Claimant,
    name: &str,
    state: &ownership::Lease,
) {
    let order_id = claimant.order_id;
    let before = match state {
        ownership::Lease::Held {
            holder: Some(h), ..
        } => h.display(),
        _ => "nobody".into(),
    };
    let note = format!(
        "took over the claim on order {order_id} (Lease {}/{name}) from {before}, which is gone",
        ctx.config.namespace
    );
    tracing::info!(lease = %name, order_id, "{note}");
    if let Err(e) = ctx
        .events
        .publish(
            EventType::Normal,
            "OrderClaimTaken",
            "Claim",
            &note,
            &claimant.object,
        )
        .await
    {
        tracing::warn!(error = %e, "cannot publish an event");
    }
}

/// Gives up the claim if `order` holds it (a DigicertOrder that now takes duplicates
/// reissues no more): another resource may then drive the order.
pub async fn release(ctx: &Context, endpoint: &str, order: &DigicertOrder) -> Result<()> {
    release_held(ctx, endpoint, &me(order), order.spec.order_id).await
}

/// Gives up the claim on `order_id` if `holder` holds it.
pub async fn release_held(
    ctx: &Context,
    endpoint: &str,
    holder: &Holder,
    order_id: u64,
) -> Result<()> {
    let name = ownership::lease_name(endpoint, order_id);
    let api = leases(ctx);
    let Some(lease) = api.get_opt(&name).await? else {
        return Ok(());
    };
    if let ownership::Lease::Held {
        holder: Some(h),
        version,
    } = lease_state(Some(&lease))
        && h == *holder
    {
        let params = kube::api::DeleteParams {
            preconditions: Some(kube::api::Preconditions {
                resource_version: Some(version),
                uid: None,
            }),
            ..Default::default()
        };
        match api.delete(&name, &params).await {
            Ok(_) => tracing::info!(lease = %name, "released the claim on the order"),
            // Changed or gone meanwhile: not ours to delete any more.
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Whether `order` holds the claim (reads only).
pub async fn is_holder(ctx: &Context, endpoint: &str, order: &DigicertOrder) -> Result<bool> {
    let name = ownership::lease_name(endpoint, order.spec.order_id);
    let lease = leases(ctx).get_opt(&name).await?;
    Ok(matches!(
        lease_state(lease.as_ref()),
        ownership::Lease::Held { holder: Some(h), .. } if h == me(order)
    ))
}
