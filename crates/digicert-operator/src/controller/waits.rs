//! Secrets an order waits on that the operator does not otherwise watch: a Secret in
//! the way of `secretName` (its owner may hand it over with the adopt annotation, or
//! delete it) and a missing namespace API key. The operator watches only the Secrets
//! it labels, so while an order waits on such a Secret, that one Secret is watched
//! by name (its metadata only) until it changes; the change wakes the order within
//! seconds instead of at the next recheck.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::Resource;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::watcher;
use tokio::sync::broadcast;

/// How long one Secret is watched at the most: the order's own recheck still comes,
/// and a wait nobody needs any more (its order gone) ends by itself.
const LONGEST_WAIT: Duration = Duration::from_secs(3600);

/// An order to reconcile now: (namespace, name).
pub type Wake = (String, String);

/// What an order waits for, as one watch: the order, and the Secret as the order
/// last read it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Wait {
    namespace: String,
    secret: String,
    order: String,
}

pub struct SecretWaits {
    client: kube::Client,
    wakes: broadcast::Sender<Wake>,
    active: Arc<Mutex<HashSet<Wait>>>,
}

impl SecretWaits {
    pub fn new(client: kube::Client) -> Self {
        SecretWaits {
            client,
            wakes: broadcast::channel(1024).0,
            active: Arc::default(),
        }
    }

    /// The orders to wake, for a controller.
    pub fn subscribe(&self) -> broadcast::Receiver<Wake> {
        self.wakes.subscribe()
    }

    /// Watches Secret `namespace/secret` until it differs from `seen` (its
    /// resourceVersion as the order read it; `None`: it did not exist), then wakes
    /// `order`. One watch per (Secret, order) at a time.
    pub fn wait_for(&self, namespace: &str, secret: &str, order: &str, seen: Option<String>) {
        let wait = Wait {
            namespace: namespace.to_string(),
            secret: secret.to_string(),
            order: order.to_string(),
        };
        {
            let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
            if !active.insert(wait.clone()) {
                return;
            }
        }
        let api: Api<PartialObjectMeta<Secret>> = Api::namespaced(self.client.clone(), namespace);
        let wakes = self.wakes.clone();
        let active = self.active.clone();
        tokio::spawn(async move {
            let woke = tokio::time::timeout(LONGEST_WAIT, watch_until_changed(api, &wait, seen))
                .await
                .unwrap_or(false);
            active
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&wait);
            if woke {
                tracing::debug!(namespace = %wait.namespace, secret = %wait.secret, order = %wait.order, "a Secret the order waits on changed");
                let _ = wakes.send((wait.namespace, wait.order));
            }
        });
    }
}

/// Follows one Secret by name; true once it differs from `seen`: its resourceVersion
/// moved, it came or it went.
async fn watch_until_changed(
    api: Api<PartialObjectMeta<Secret>>,
    wait: &Wait,
    seen: Option<String>,
) -> bool {
    let config = watcher::Config::default().fields(&format!("metadata.name={}", wait.secret));
    let mut events = watcher(api, config).boxed();
    let mut listed = false;
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Init) => listed = false,
            Ok(watcher::Event::InitApply(s)) | Ok(watcher::Event::Apply(s)) => {
                listed = true;
                if seen.as_deref() != s.meta().resource_version.as_deref() {
                    return true;
                }
            }
            // Listed and absent, where the order saw it: gone meanwhile.
            Ok(watcher::Event::InitDone) if !listed && seen.is_some() => return true,
            Ok(watcher::Event::InitDone) => {}
            Ok(watcher::Event::Delete(_)) => return true,
            Err(e) => {
                tracing::debug!(secret = %wait.secret, error = %e, "watching a Secret an order waits on");
                // The watcher retries; pause so a refused watch does not spin.
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
    false
}

/// A stream of the orders to wake in `scope` (one namespace, or all).
pub fn wakes_in(
    rx: broadcast::Receiver<Wake>,
    scope: Option<String>,
) -> impl futures::Stream<Item = Wake> + Send + 'static {
    futures::stream::unfold((rx, scope), |(mut rx, scope)| async move {
        loop {
            match rx.recv().await {
                Ok(wake) if scope.as_ref().is_none_or(|s| *s == wake.0) => {
                    return Some((wake, (rx, scope)));
                }
                // Another namespace's, or missed in a burst (their orders' own
                // rechecks still come).
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}
