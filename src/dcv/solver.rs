//! One place to publish a random value, whatever the method and provider: publish,
//! look whether it is visible where DigiCert will look, withdraw.

use crate::crd::dcv::DcvMethodSpec;

use super::http::{HttpSolver, RouteKind};

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
        _method: DcvMethodSpec,
        domain: &str,
        token: &str,
    ) -> Result<(), SolveError> {
        match self {
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
        _method: DcvMethodSpec,
        domain: &str,
        token: &str,
    ) -> Result<(), SolveError> {
        match self {
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
        _method: DcvMethodSpec,
        domain: &str,
        token: &str,
    ) -> Result<Seen, SolveError> {
        match self {
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
