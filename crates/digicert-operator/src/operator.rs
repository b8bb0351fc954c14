//! The operator process: HTTP endpoints (health, readiness, metrics), leader
//! election, and the controllers, until SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::sync::watch;

use crate::controller::{self, Context};
use crate::error::{Error, Result};
pub use crate::health::{Health, Role};

/// The oldest Kubernetes the operator supports (and is built against: k8s-openapi's
/// `v1_33`). The CRD's validation rules need a server that enforces them.
pub const MIN_KUBERNETES: (u32, u32) = (1, 33);

/// Whether the API server's version (`/version`: major, minor such as `36` or `36+`)
/// is one the operator supports; `None` when it cannot be read.
pub fn supported_kubernetes(major: &str, minor: &str) -> Option<bool> {
    let major: u32 = major.trim_end_matches('+').parse().ok()?;
    let minor: u32 = minor.trim_end_matches('+').parse().ok()?;
    Some((major, minor) >= MIN_KUBERNETES)
}

/// Logs the API server's version, and says so loudly when it is older than supported:
/// such a server admits specs the CRD's rules would refuse (the operator still
/// refuses them, as `InvalidSpec`).
pub async fn check_kubernetes_version(client: &kube::Client) {
    match client.apiserver_version().await {
        Ok(v) => match supported_kubernetes(&v.major, &v.minor) {
            Some(true) => tracing::info!(version = %v.git_version, "Kubernetes API server"),
            Some(false) => tracing::warn!(
                version = %v.git_version,
                "Kubernetes {} is older than the oldest supported, 1.{}",
                v.git_version,
                MIN_KUBERNETES.1
            ),
            None => tracing::warn!(version = %v.git_version, "unknown Kubernetes version"),
        },
        Err(e) => tracing::warn!(error = %e, "cannot read the Kubernetes API server's version"),
    }
}

pub struct LeaderElection {
    pub lease_name: String,
    pub namespace: String,
    pub identity: String,
    pub duration: Duration,
}

pub struct Options {
    pub health_addr: SocketAddr,
    pub leader_election: Option<LeaderElection>,
    /// The CertCentral webhook receiver's address and shared key, when enabled.
    pub webhook: Option<(SocketAddr, crate::webhook::WebhookKey)>,
}

/// Serves `/healthz`, `/readyz` and `/metrics`.
pub async fn serve_http(
    addr: SocketAddr,
    health: Arc<Health>,
    metrics: Arc<crate::metrics::Metrics>,
) -> Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Config(format!("cannot listen on {addr}: {e}")))?;
    let addr = listener.local_addr().unwrap_or(addr);
    let ready = health.clone();
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.clone();
                async move {
                    match ready.readiness() {
                        Ok(m) => (StatusCode::OK, m).into_response(),
                        Err(m) => (StatusCode::SERVICE_UNAVAILABLE, m).into_response(),
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move |headers: axum::http::HeaderMap| {
                let metrics = metrics.clone();
                async move {
                    let accept = headers
                        .get(axum::http::header::ACCEPT)
                        .and_then(|v| v.to_str().ok());
                    let (content_type, body) = metrics.encode_for(accept);
                    ([(axum::http::header::CONTENT_TYPE, content_type)], body)
                }
            }),
        );
    tracing::info!(%addr, "serving /healthz, /readyz and /metrics");
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the HTTP endpoint stopped");
        }
    }))
}

/// Resolves on SIGTERM or SIGINT.
pub async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs the operator: with leader election, only the leader runs controllers (and so
/// calls DigiCert); a replica that loses the lease stops its controllers and exits, so
/// that it comes back as a standby.
pub async fn run(ctx: Arc<Context>, options: Options) -> Result<()> {
    let health = ctx.health.clone();
    let _http = serve_http(options.health_addr, health.clone(), ctx.metrics.clone()).await?;
    let _webhook = match options.webhook {
        Some((addr, key)) => Some(crate::webhook::serve(addr, ctx.feeds.clone(), key).await?),
        None => None,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_on_signal = {
        let stop_tx = stop_tx.clone();
        let health = health.clone();
        tokio::spawn(async move {
            termination().await;
            tracing::info!("termination requested; finishing reconciles in flight");
            health.set_stopping();
            let _ = stop_tx.send(true);
        })
    };

    let Some(election) = options.leader_election else {
        health.set_role(Role::Leader);
        controller::run(ctx, stop_rx).await?;
        stop_on_signal.abort();
        return Ok(());
    };

    let Some((leading, lease_task)) =
        wait_for_leadership(&ctx, &election, &health, stop_rx.clone()).await?
    else {
        return Ok(());
    };
    health.set_role(Role::Leader);
    tracing::info!(identity = %election.identity, "became the leader");

    // Losing the lease stops the controllers like a termination does.
    // Losing the lease ends the process at once: finishing reconciles would overlap
    // with the new leader's. What was in flight is recovered by the next leader.
    let lost = {
        let mut leading = leading.clone();
        tokio::spawn(async move {
            if leading.wait_for(|l| !*l).await.is_ok() {
                tracing::error!("lost the leader lease; exiting");
                std::process::exit(1);
            }
        })
    };
    controller::run(ctx, stop_rx).await?;
    // The watcher of the lease holds a receiver too: gone first, so that dropping
    // ours below closes the channel.
    lost.abort();
    let _ = lost.await;
    // Dropping the last receiver makes the lease manager release the lease, so a
    // standby takes over at once instead of after the lease duration.
    drop(leading);
    let _ = tokio::time::timeout(Duration::from_secs(5), lease_task).await;
    stop_on_signal.abort();
    Ok(())
}

/// The lease manager's task: it holds the lease until the last receiver is dropped.
type LeaseTask =
    tokio::task::JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>;

/// Joins the leader election and waits until this replica leads (it is a standby
/// meanwhile). `None`: told to stop first.
async fn wait_for_leadership(
    ctx: &Context,
    election: &LeaderElection,
    health: &Health,
    mut stop: watch::Receiver<bool>,
) -> Result<Option<(watch::Receiver<bool>, LeaseTask)>> {
    let secs = election.duration.as_secs().max(2);
    let manager =
        kube_lease_manager::LeaseManagerBuilder::new(ctx.client.clone(), &election.lease_name)
            .with_namespace(&election.namespace)
            .with_identity(&election.identity)
            .with_duration(secs)
            .with_grace((secs / 3).max(1))
            .with_field_manager("digicert-operator")
            .build()
            .await
            .map_err(|e| Error::Config(format!("leader election: {e}")))?;
    let (mut leading, lease_task) = manager.watch().await;
    // The first answer takes a moment: only then is this replica known to stand by
    // (until then it is not ready).
    if !*leading.borrow() {
        let _ = tokio::time::timeout(Duration::from_secs(3), leading.changed()).await;
    }
    if !*leading.borrow() {
        health.set_role(Role::Standby);
    }
    tracing::info!(
        lease = %election.lease_name,
        namespace = %election.namespace,
        identity = %election.identity,
        "waiting to become the leader"
    );
    loop {
        if *leading.borrow_and_update() {
            break;
        }
        tokio::select! {
            changed = leading.changed() => {
                if changed.is_err() {
                    return Err(Error::Config("leader election stopped".into()));
                }
            }
            _ = stop.wait_for(|s| *s) => {
                drop(leading);
                let _ = lease_task.await;
                return Ok(None);
            }
        }
    }
    Ok(Some((leading, lease_task)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_versions_from_1_33_on_are_supported() {
        let cases = [
            ("1", "33", Some(true)),
            ("1", "36", Some(true)),
            ("1", "36+", Some(true)),
            ("2", "0", Some(true)),
            ("1", "32", Some(false)),
            ("1", "20", Some(false)),
            ("1", "", None),
            ("", "36", None),
        ];
        for (major, minor, want) in cases {
            assert_eq!(supported_kubernetes(major, minor), want, "{major}.{minor}");
        }
    }
}
