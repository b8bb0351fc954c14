//! One place to publish a random value, whatever the method and provider: publish,
//! look whether it is visible where DigiCert will look, withdraw.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, Patch, PatchParams};

use crate::crd::dcv::DcvMethodSpec;

use super::dnsendpoint::{DNSEndpoint, endpoint_for};
use super::http::{HttpSolver, RouteKind};
use super::record::DnsRecord;
use super::rfc2136::{self, Rfc2136, Visibility};

/// How long a look for a record may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Why publishing or withdrawing failed, in words for status.
#[derive(Debug, thiserror::Error)]
pub enum SolveError {
    #[error("{0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Dns(String),
    #[error("{0}")]
    Settings(String),
}

/// Where the random values of one order go.
pub enum Publisher {
    /// `http-token`: the operator's solver, and a route per name to it.
    Http {
        solver: HttpSolver,
        route: HttpRoute,
        /// `namespace/name` of the DigicertOrder (route names are per order).
        owner: String,
    },
    /// DNS methods: signed dynamic updates to the zone's server, which is also asked
    /// whether the record is out.
    Rfc2136(Rfc2136),
    /// DNS methods: a DNSEndpoint per record in the order's namespace, owned by the
    /// order; external-dns writes the record somewhere, `resolver` is asked for it.
    DnsEndpoint(Box<DnsEndpoints>),
}

pub struct DnsEndpoints {
    pub api: Api<DNSEndpoint>,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub ttl: Option<u32>,
    pub owner: OwnerReference,
    pub resolver: Option<SocketAddr>,
}

impl DnsEndpoints {
    fn name(&self, record: &DnsRecord) -> String {
        let owner = format!("{}/{}", self.namespace, self.owner.name);
        super::http::route_name(&owner, &record.fqdn())
    }
}

/// The record of `method` for `domain`.
pub fn dns_record(method: DcvMethodSpec, domain: &str, token: &str) -> DnsRecord {
    match method {
        DcvMethodSpec::DnsCnameToken => DnsRecord::cname_token(domain, token),
        _ => DnsRecord::txt_token(domain, token),
    }
}

/// An owned [`RouteKind`].
#[derive(Clone, Debug)]
pub enum HttpRoute {
    Ingress(crate::crd::dcv::IngressSolverSpec),
    HttpRoute(crate::crd::dcv::HttpRouteSolverSpec),
}

impl HttpRoute {
    fn kind(&self) -> RouteKind<'_> {
        match self {
            HttpRoute::Ingress(s) => RouteKind::Ingress(s),
            HttpRoute::HttpRoute(s) => RouteKind::HttpRoute(s),
        }
    }
}

/// Whether a published value can be seen where DigiCert looks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    Visible,
    /// Not (yet): what was seen instead.
    Not(String),
}

impl Publisher {
    pub async fn publish(
        &self,
        client: &kube::Client,
        method: DcvMethodSpec,
        domain: &str,
        token: &str,
    ) -> Result<(), SolveError> {
        match self {
            Publisher::Rfc2136(server) => {
                let record = dns_record(method, domain, token);
                server.add(&record).await.map_err(dns_error)
            }
            Publisher::DnsEndpoint(eps) => {
                let mut record = dns_record(method, domain, token);
                record.ttl = eps.ttl.unwrap_or(record.ttl);
                let name = eps.name(&record);
                let object = endpoint_for(
                    &name,
                    &eps.namespace,
                    &record,
                    eps.labels.clone(),
                    Some(eps.owner.clone()),
                );
                let params = PatchParams::apply("digicert-operator").force();
                eps.api
                    .patch(&name, &params, &Patch::Apply(&object))
                    .await?;
                Ok(())
            }
            Publisher::Http {
                solver,
                route,
                owner,
            } => {
                solver.put(client, domain, token).await?;
                solver.route(client, &route.kind(), owner, domain).await?;
                Ok(())
            }
        }
    }

    pub async fn withdraw(
        &self,
        client: &kube::Client,
        method: DcvMethodSpec,
        domain: &str,
        token: &str,
    ) -> Result<(), SolveError> {
        match self {
            Publisher::Rfc2136(server) => {
                let record = dns_record(method, domain, token);
                server.remove(&record).await.map_err(dns_error)
            }
            Publisher::DnsEndpoint(eps) => {
                let name = eps.name(&dns_record(method, domain, token));
                match eps.api.delete(&name, &DeleteParams::default()).await {
                    Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
                    other => other.map(drop).map_err(SolveError::from),
                }
            }
            Publisher::Http {
                solver,
                route,
                owner,
            } => {
                solver.unroute(client, &route.kind(), owner, domain).await?;
                solver.remove(client, domain, token).await?;
                Ok(())
            }
        }
    }

    /// Whether the value is out: for HTTP, served by this pod's solver (which every
    /// pod behind the Service follows from the same ConfigMap).
    pub async fn seen(
        &self,
        method: DcvMethodSpec,
        domain: &str,
        token: &str,
    ) -> Result<Seen, SolveError> {
        let record = dns_record(method, domain, token);
        match self {
            Publisher::Rfc2136(server) => visibility(server.lookup(&record).await, server.server()),
            Publisher::DnsEndpoint(eps) => match eps.resolver {
                Some(at) => visibility(rfc2136::lookup_at(at, &record, LOOKUP_TIMEOUT).await, at),
                None => Ok(Seen::Not(
                    "no DNS server to ask: start the operator with --dcv-dns-resolver".into(),
                )),
            },
            Publisher::Http { solver, .. } => Ok(match solver.tokens.get(domain) {
                Some(t) if t == token => Seen::Visible,
                Some(other) => Seen::Not(format!(
                    "the solver serves another value for {domain} ({other})"
                )),
                None => Seen::Not(format!("the solver serves nothing for {domain} yet")),
            }),
        }
    }
}

fn dns_error(e: rfc2136::DnsError) -> SolveError {
    SolveError::Dns(e.to_string())
}

fn visibility(
    answer: Result<Visibility, rfc2136::DnsError>,
    server: SocketAddr,
) -> Result<Seen, SolveError> {
    match answer.map_err(dns_error)? {
        Visibility::Visible => Ok(Seen::Visible),
        Visibility::NotVisible { saw } => Ok(Seen::Not(format!("{server} answered {saw}"))),
    }
}
