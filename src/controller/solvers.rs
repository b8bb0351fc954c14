//! The publisher of an order's domain validation settings: the operator's HTTP
//! solver, an RFC 2136 server with its TSIG key, or DNSEndpoint objects.

use kube::ResourceExt;

use super::Context;
use crate::crd::DigicertOrder;
use crate::crd::dcv::{DcvMethodSpec, DomainValidationSpec};
use crate::dcv::solver::{HttpRoute, Publisher};
use crate::error::Result;

/// `Ok(Err(why))`: the settings cannot be used as they are (said in status).
pub async fn publisher(
    ctx: &Context,
    spec: &DomainValidationSpec,
    secret_namespace: &str,
    order: &DigicertOrder,
) -> Result<std::result::Result<Publisher, String>> {
    match spec.method {
        DcvMethodSpec::HttpToken => Ok(http(ctx, spec, order)),
        DcvMethodSpec::DnsTxtToken | DcvMethodSpec::DnsCnameToken => {
            dns(ctx, spec, secret_namespace, order).await
        }
    }
}

fn http(
    ctx: &Context,
    spec: &DomainValidationSpec,
    order: &DigicertOrder,
) -> std::result::Result<Publisher, String> {
    let settings = spec
        .http
        .as_ref()
        .ok_or("http-token needs domainValidation.http")?;
    let solver = ctx.config.dcv.http.clone().ok_or(
        "http-token is not offered: the operator runs without --dcv-http-listen (Helm value dcv.http.enabled)",
    )?;
    let route = match (&settings.ingress, &settings.gateway_http_route) {
        (Some(i), _) => HttpRoute::Ingress(i.clone()),
        (None, Some(r)) => HttpRoute::HttpRoute(r.clone()),
        (None, None) => {
            return Err("domainValidation.http needs ingress or gatewayHTTPRoute".into());
        }
    };
    Ok(Publisher::Http {
        solver,
        route,
        owner: format!(
            "{}/{}",
            order.namespace().unwrap_or_default(),
            order.name_any()
        ),
    })
}

async fn dns(
    _ctx: &Context,
    _spec: &DomainValidationSpec,
    _secret_namespace: &str,
    _order: &DigicertOrder,
) -> Result<std::result::Result<Publisher, String>> {
    Ok(Err("DNS methods are not offered yet".into()))
}
