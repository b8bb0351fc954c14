//! The publisher of an order's domain validation settings: the operator's HTTP
//! solver, an RFC 2136 server with its TSIG key, or DNSEndpoint objects.

use std::net::SocketAddr;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::{Resource, ResourceExt};

use super::Context;
use super::decide::SettingsFrom;
use crate::crd::DigicertOrder;
use crate::crd::dcv::{DcvMethodSpec, DomainValidationSpec, Rfc2136Spec};
use crate::dcv::rfc2136::{Rfc2136, Tsig};
use crate::dcv::solver::{DnsEndpoints, HttpRoute, Publisher};
use crate::error::Result;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

/// `Ok(Err(why))`: the settings cannot be used as they are (said in status). A
/// Secret the settings name is read from the order's namespace for its own settings,
/// from the operator's for its account's.
pub async fn publisher(
    ctx: &Context,
    spec: &DomainValidationSpec,
    from: SettingsFrom,
    owner: &DcvOwner,
) -> Result<std::result::Result<Publisher, String>> {
    let secret_namespace = match from {
        SettingsFrom::Order => owner.namespace.clone(),
        SettingsFrom::Account => ctx.config.namespace.clone(),
    };
    match spec.method {
        DcvMethodSpec::HttpToken => Ok(http(ctx, spec, owner, from)),
        DcvMethodSpec::DnsTxtToken | DcvMethodSpec::DnsCnameToken => {
            dns(ctx, spec, &secret_namespace, owner).await
        }
    }
}

/// What a validation is published for: a DigicertOrder, or a cert-manager request.
pub struct DcvOwner {
    /// Its namespace: DNSEndpoints go there, and Secrets of its own settings are read
    /// from there.
    pub namespace: String,
    /// Names it among the owners of HTTP routes (`namespace/name`, or with its kind).
    pub label: String,
    /// The owner reference DNSEndpoints carry (`None`: it has no uid yet).
    pub reference: Option<OwnerReference>,
}

impl DcvOwner {
    pub fn of_order(order: &DigicertOrder) -> Self {
        let namespace = order.namespace().unwrap_or_default();
        DcvOwner {
            label: format!("{namespace}/{}", order.name_any()),
            namespace,
            reference: order.controller_owner_ref(&()),
        }
    }
}

fn http(
    ctx: &Context,
    spec: &DomainValidationSpec,
    owner: &DcvOwner,
    from: SettingsFrom,
) -> std::result::Result<Publisher, String> {
    let settings = spec
        .http
        .as_ref()
        .ok_or("http-token needs domainValidation.http")?;
    // The Ingress lives in the operator's namespace: annotations there (an ingress
    // controller's snippets) are the cluster administrator's to set, not a tenant's.
    if from == SettingsFrom::Order
        && settings
            .ingress
            .as_ref()
            .is_some_and(|i| !i.annotations.is_empty())
    {
        return Err("annotations of the solver's Ingress may only be set on the DigicertAccount (the Ingress is in the operator's namespace)".into());
    }
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
        owner: owner.label.clone(),
    })
}

async fn dns(
    ctx: &Context,
    spec: &DomainValidationSpec,
    secret_namespace: &str,
    owner: &DcvOwner,
) -> Result<std::result::Result<Publisher, String>> {
    let Some(dns) = spec.dns.as_ref() else {
        return Ok(Err(format!(
            "{} needs domainValidation.dns",
            spec.method.as_str()
        )));
    };
    if let Some(rfc) = &dns.rfc2136 {
        return rfc2136(ctx, rfc, secret_namespace).await;
    }
    let Some(eps) = &dns.dns_endpoint else {
        return Ok(Err(
            "domainValidation.dns needs rfc2136 or dnsEndpoint".into()
        ));
    };
    let namespace = owner.namespace.clone();
    let Some(owner) = owner.reference.clone() else {
        return Ok(Err("the resource has no uid yet".into()));
    };
    Ok(Ok(Publisher::DnsEndpoint(Box::new(DnsEndpoints {
        api: Api::namespaced(ctx.client.clone(), &namespace),
        namespace,
        labels: eps.labels.clone(),
        ttl: eps.ttl,
        owner,
        resolver: ctx.config.dcv.dns_resolver,
    }))))
}

/// The server (its name resolved) and the TSIG key from its Secret.
async fn rfc2136(
    ctx: &Context,
    spec: &Rfc2136Spec,
    secret_namespace: &str,
) -> Result<std::result::Result<Publisher, String>> {
    let server = match resolve_nameserver(&spec.nameserver).await {
        Ok(a) => a,
        Err(why) => return Ok(Err(why)),
    };
    let secret_ref = &spec.tsig_secret_ref;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), secret_namespace);
    let Some(secret) = secrets.get_opt(&secret_ref.name).await? else {
        return Ok(Err(format!(
            "the TSIG Secret {secret_namespace}/{} does not exist",
            secret_ref.name
        )));
    };
    let value = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&secret_ref.key))
        .map(|v| String::from_utf8_lossy(&v.0).trim().to_string());
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(Err(format!(
            "the TSIG Secret {secret_namespace}/{} has no key {:?}",
            secret_ref.name, secret_ref.key
        )));
    };
    let tsig = match Tsig::from_base64(&spec.tsig_key_name, spec.tsig_algorithm.as_str(), &value) {
        Ok(t) => t,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let mut client = Rfc2136::new(server).with_tsig(tsig);
    if let Some(zone) = &spec.zone {
        client = client.with_zone(zone);
    }
    Ok(Ok(Publisher::Rfc2136(client)))
}

/// `host:port` or `host` (port 53), a name or an address.
async fn resolve_nameserver(text: &str) -> std::result::Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = text.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    let with_port = match text.rsplit_once(':') {
        Some((_, port)) if port.parse::<u16>().is_ok() => text.to_string(),
        _ => format!("{text}:53"),
    };
    tokio::net::lookup_host(&with_port)
        .await
        .map_err(|e| format!("cannot resolve the RFC 2136 nameserver {text}: {e}"))?
        .next()
        .ok_or_else(|| format!("the RFC 2136 nameserver {text} has no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn nameservers_are_addresses_or_names_with_an_optional_port() {
        let cases = [
            ("127.0.0.1:5353", "127.0.0.1:5353"),
            ("127.0.0.1", "127.0.0.1:53"),
            ("[::1]:5300", "[::1]:5300"),
            ("::1", "[::1]:53"),
            ("localhost:5353", "127.0.0.1:5353"),
        ];
        for (given, want) in cases {
            let got = resolve_nameserver(given).await.unwrap();
            if given.starts_with("localhost") {
                assert_eq!(got.port(), 5353);
            } else {
                assert_eq!(got, want.parse().unwrap(), "{given}");
            }
        }
        let err = resolve_nameserver("no-such-host.invalid")
            .await
            .unwrap_err();
        assert!(err.contains("no-such-host.invalid"), "{err}");
    }
}
