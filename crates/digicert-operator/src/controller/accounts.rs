//! The effects around accounts: one `certcentral::Service` per endpoint, resolving the
//! account of a DigicertOrder (reading the DigicertAccount, the namespace's labels and
//! the key Secret) as `access` decides, the gate a reconcile passes before any
//! DigiCert call, and the small controller that reports each DigicertAccount's
//! readiness.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use time::OffsetDateTime;
use tokio::sync::watch;

use super::Context;
use super::access::{self, Choice, Grants, Refusal};
use super::claims::{self, Outcome};
pub use super::endpoints::{Endpoints, endpoint_id};
use super::status::{self, READY};
use crate::certcentral::{self, ApiKey, BaseUrl, Service};
use crate::crd::{DigicertAccount, DigicertOrder, DigicertOrderStatus};
use crate::error::Result;

/// Which DigicertOrders use which account (as their last gate saw it), so that a change
/// of an account wakes only its orders. An order not in it yet is reconciled anyway.
#[derive(Default)]
pub struct AccountUsers {
    inner: Mutex<Users>,
}

#[derive(Default)]
struct Users {
    by_account: HashMap<String, std::collections::HashSet<(String, String)>>,
    by_order: HashMap<(String, String), String>,
}

impl AccountUsers {
    /// Records that the order `namespace/name` uses `account` (`None`: no account).
    pub fn record(&self, namespace: &str, name: &str, account: Option<&str>) {
        let mut users = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let key = (namespace.to_string(), name.to_string());
        if let Some(old) = users.by_order.remove(&key)
            && let Some(set) = users.by_account.get_mut(&old)
        {
            set.remove(&key);
            if set.is_empty() {
                users.by_account.remove(&old);
            }
        }
        if let Some(account) = account {
            users
                .by_account
                .entry(account.to_string())
                .or_default()
                .insert(key.clone());
            users.by_order.insert(key, account.to_string());
        }
    }

    /// The orders (namespace, name) that use `account`.
    pub fn users(&self, account: &str) -> Vec<(String, String)> {
        let users = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        users
            .by_account
            .get(account)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// The account name an order's choice names, if it names a DigicertAccount.
fn account_name(choice: &Choice) -> Option<&str> {
    match choice {
        Choice::Account { name, .. } => Some(name),
        _ => None,
    }
}

/// An order's account, ready to use.
#[derive(Clone)]
pub struct Resolved {
    pub client: certcentral::Client,
    pub grants: Grants,
    /// The endpoint's identity (see [`endpoint_id`]).
    pub endpoint: String,
    /// The account's domain validation settings (none for a namespace key).
    pub domain_validation: Option<crate::crd::DomainValidationSpec>,
}

/// The service of an account's endpoint (the operator's default when it names none).
fn account_service(
    ctx: &Context,
    account: &DigicertAccount,
) -> std::result::Result<(Service, String), String> {
    let endpoint = account.spec.certcentral.as_ref();
    let url = match endpoint {
        Some(e) => e.url.parse::<BaseUrl>().map_err(|e| e.to_string())?,
        None => ctx.endpoints.default_url().clone(),
    };
    ctx.endpoints
        .service(&url, endpoint.and_then(|e| e.ca_bundle.as_deref()))
        .map_err(|e| e.to_string())
}

/// The account label status shows for a choice, before it is resolved.
fn label(choice: &Choice) -> Option<String> {
    match choice {
        Choice::Account { name, .. } => Some(name.clone()),
        Choice::NamespaceKey(k) => Some(access::namespace_key_label(&k.name)),
        Choice::None => None,
    }
}

/// Reads an API key from a Secret; the refusal says what is missing (never the key).
async fn read_key(
    ctx: &Context,
    namespace: &str,
    name: &str,
    key_name: &str,
) -> Result<std::result::Result<ApiKey, Refusal>> {
    Ok(read_key_version(ctx, namespace, name, key_name).await?.0)
}

/// `read_key`, and the Secret's resourceVersion as read (`None`: there is none).
async fn read_key_version(
    ctx: &Context,
    namespace: &str,
    name: &str,
    key_name: &str,
) -> Result<(std::result::Result<ApiKey, Refusal>, Option<String>)> {
    let secret = Api::<Secret>::namespaced(ctx.client.clone(), namespace)
        .get_opt(name)
        .await?;
    let version = secret.as_ref().and_then(|s| s.resource_version());
    let value = secret
        .as_ref()
        .and_then(|s| s.data.as_ref())
        .and_then(|d| d.get(key_name))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned());
    let key = match (secret.is_some(), value) {
        (false, _) => Err(Refusal::ApiKeyMissing(format!(
            "the API key Secret {namespace}/{name} does not exist"
        ))),
        (true, None) => Err(Refusal::ApiKeyMissing(format!(
            "the API key Secret {namespace}/{name} has no key {key_name:?}"
        ))),
        (true, Some(v)) => ApiKey::new(v).map_err(|e| {
            Refusal::ApiKeyMissing(format!("the API key in Secret {namespace}/{name}: {e}"))
        }),
    };
    Ok((key, version))
}

/// Whether this operator serves `order`: an order naming an account is served by the
/// account's operator (its `operatorNamespace`); one naming none (the default
/// account's), a namespace key, or a missing account is unassigned, served by the
/// operators with `--serve-unassigned`. Records the account's users, so that a change
/// of the account wakes the order here too.
pub async fn serves_order(ctx: &Context, order: &DigicertOrder) -> Result<bool> {
    let own = &ctx.config.namespace;
    let unassigned = ctx.config.serve_unassigned;
    let choice = access::choose(&order.spec, ctx.config.default_account.as_deref());
    let Choice::Account {
        name,
        default: false,
    } = &choice
    else {
        return Ok(access::serves(None, own, unassigned));
    };
    ctx.account_users.record(
        &order.namespace().unwrap_or_default(),
        &order.name_any(),
        Some(name),
    );
    serves_account_named(ctx, Some(name)).await
}

/// Whether this operator serves what uses the account `name` (`None`: the default
/// account): as [`serves_order`] decides for an order naming it.
pub async fn serves_account_named(ctx: &Context, name: Option<&str>) -> Result<bool> {
    let own = &ctx.config.namespace;
    let unassigned = ctx.config.serve_unassigned;
    let Some(name) = name else {
        return Ok(access::serves(None, own, unassigned));
    };
    let account = Api::<DigicertAccount>::all(ctx.client.clone())
        .get_opt(name)
        .await?;
    let assigned = account
        .as_ref()
        .and_then(|a| a.spec.operator_namespace.as_deref());
    Ok(access::serves(assigned, own, unassigned))
}

/// Whether this operator serves `account`.
fn serves_account(ctx: &Context, account: &DigicertAccount) -> bool {
    access::serves(
        account.spec.operator_namespace.as_deref(),
        &ctx.config.namespace,
        ctx.config.serve_unassigned,
    )
}

/// The account `order` may use, or why it may use none. Reads the DigicertAccount, the
/// namespace and the key Secret; calls nothing at DigiCert.
pub async fn resolve(
    ctx: &Context,
    order: &DigicertOrder,
) -> Result<std::result::Result<Resolved, Refusal>> {
    match access::choose(&order.spec, ctx.config.default_account.as_deref()) {
        Choice::None => Ok(Err(Refusal::NoAccount)),
        Choice::NamespaceKey(k) => resolve_namespace_key(ctx, order, &k).await,
        Choice::Account { name, default } => {
            let namespace = order.namespace().unwrap_or_default();
            resolve_account(
                ctx,
                Some(&namespace),
                Some(order.spec.order_id),
                name,
                default,
            )
            .await
        }
    }
}

/// The account a cert-manager request of `namespace` for `order_id` may use through
/// an issuer naming `account` (`None`: the operator's default account), or why it
/// may use none: the same grants as a DigicertOrder of that namespace gets.
pub async fn resolve_for_request(
    ctx: &Context,
    namespace: Option<&str>,
    order_id: Option<u64>,
    account: Option<&str>,
) -> Result<std::result::Result<Resolved, Refusal>> {
    let (name, default) = match (account, ctx.config.default_account.as_deref()) {
        (Some(name), _) => (name.to_string(), false),
        (None, Some(name)) => (name.to_string(), true),
        (None, None) => return Ok(Err(Refusal::NoAccount)),
    };
    resolve_account(ctx, namespace, order_id, name, default).await
}

/// An order with a key of its own namespace: the endpoint must be one namespace keys
/// may use, and the key must be there.
async fn resolve_namespace_key(
    ctx: &Context,
    order: &DigicertOrder,
    k: &crate::crd::OrderApiKeyRef,
) -> Result<std::result::Result<Resolved, Refusal>> {
    let namespace = order.namespace().unwrap_or_default();
    let grants = Grants::of_namespace_key(k);
    let invalid = |problem: String| Refusal::InvalidAccount {
        account: grants.account.clone(),
        problem,
    };
    let url = match k.certcentral.as_deref() {
        Some(u) => match u.parse::<BaseUrl>() {
            Ok(url) => url,
            Err(e) => return Ok(Err(invalid(e.to_string()))),
        },
        None => ctx.endpoints.default_url().clone(),
    };
    if !access::namespace_key_endpoint_allowed(
        &endpoint_id(&url),
        &ctx.endpoints.namespace_key_endpoints,
    ) {
        return Ok(Err(Refusal::EndpointNotAllowed {
            endpoint: url.to_string(),
        }));
    }
    let (service, endpoint) = match ctx.endpoints.service(&url, None) {
        Ok(s) => s,
        Err(e) => return Ok(Err(invalid(e.to_string()))),
    };
    let key = match read_key_version(ctx, &namespace, &k.name, &k.key).await? {
        (Ok(key), _) => key,
        (Err(refusal), version) => {
            // The key Secret is the namespace's own, not watched: its arrival
            // wakes the order.
            ctx.secret_waits
                .wait_for(&namespace, &k.name, &order.name_any(), version);
            return Ok(Err(refusal));
        }
    };
    Ok(Ok(Resolved {
        client: service.client(key),
        grants,
        endpoint,
        domain_validation: None,
    }))
}

/// An order of a DigicertAccount: the account must exist and grant the order's
/// namespace and order, and its key must be in the operator's namespace.
async fn resolve_account(
    ctx: &Context,
    namespace: Option<&str>,
    order_id: Option<u64>,
    name: String,
    default: bool,
) -> Result<std::result::Result<Resolved, Refusal>> {
    let accounts: Api<DigicertAccount> = Api::all(ctx.client.clone());
    let Some(account) = accounts.get_opt(&name).await? else {
        return Ok(Err(Refusal::AccountNotFound { name, default }));
    };
    let labels = match namespace {
        Some(namespace) => Api::<Namespace>::all(ctx.client.clone())
            .get_opt(namespace)
            .await?
            .map(|n| n.labels().clone())
            .unwrap_or_default(),
        None => Default::default(),
    };
    let scope = namespace.map(|n| (n, &labels));
    if let Err(refusal) = access::may_use_for(&name, &account.spec, scope, order_id) {
        return Ok(Err(refusal));
    }
    let invalid = |problem: String| Refusal::InvalidAccount {
        account: name.clone(),
        problem,
    };
    let (service, endpoint) = match account_service(ctx, &account) {
        Ok(s) => s,
        Err(e) => return Ok(Err(invalid(e))),
    };
    let key_ref = &account.spec.api_key_secret_ref;
    let key = match read_key(ctx, &ctx.config.namespace, &key_ref.name, &key_ref.key).await? {
        Ok(key) => key,
        Err(refusal) => return Ok(Err(refusal)),
    };
    Ok(Ok(Resolved {
        client: service.client(key),
        grants: Grants::of_account(&name, &account.spec),
        endpoint,
        domain_validation: account.spec.domain_validation.clone(),
    }))
}

/// How long until a refused or waiting order is looked at again: the recheck period
/// with up to a fifth more, so that many orders do not come back at once.
fn recheck(ctx: &Context) -> Action {
    let base = ctx.config.access_recheck;
    let jitter = base.mul_f64(rand::random::<f64>() / 5.0);
    Action::requeue(base + jitter)
}

/// Why an order may not go on to DigiCert, and when to look again.
pub struct Blocked {
    pub action: Action,
    pub reason: String,
    pub message: String,
}

/// The gate before any DigiCert call: the order may use its account, and it holds the
/// claim on its CertCentral order. `Ok` is the account to go on with; `Err` why the
/// order may not go on (also in the `DigiCert` condition) and its requeue. Ready is
/// not the gate's: it says whether the Secret holds a good certificate.
pub async fn gate(
    ctx: &Context,
    order: &DigicertOrder,
    status: &mut DigicertOrderStatus,
    now: OffsetDateTime,
) -> Result<std::result::Result<Resolved, Blocked>> {
    let generation = order.meta().generation;
    let blocked = |status: &mut DigicertOrderStatus, reason: &str, message: String| {
        status::set(
            &mut status.conditions,
            status::DIGICERT,
            false,
            reason,
            message.clone(),
            generation,
            now,
        );
        Blocked {
            action: recheck(ctx),
            reason: reason.to_string(),
            message,
        }
    };
    let choice = access::choose(&order.spec, ctx.config.default_account.as_deref());
    ctx.account_users.record(
        &order.namespace().unwrap_or_default(),
        &order.name_any(),
        account_name(&choice),
    );
    let resolved = match resolve(ctx, order).await? {
        Ok(r) => r,
        Err(refusal) => {
            status.account = label(&choice);
            status.claim = None;
            return Ok(Err(blocked(status, refusal.reason(), refusal.message())));
        }
    };
    status.account = Some(resolved.grants.account.clone());
    // Duplicates never reissue: the one-driver rule is not theirs.
    if order.spec.issuance == crate::crd::Issuance::Duplicate {
        claims::release(ctx, &resolved.endpoint, order).await?;
        status.claim = None;
        clear_gate_condition(status);
        return Ok(Ok(resolved));
    }
    // A key of the order's own namespace proves it can read the order before it may
    // claim it; an account's grant (selector, orderIds) is the platform team's word.
    let proof = matches!(choice, Choice::NamespaceKey(_)).then_some(&resolved.client);
    match claims::claim_for_order(ctx, &resolved.endpoint, order, proof).await? {
        Outcome::Unproven(err) => {
            status.claim = None;
            let message = format!(
                "the key of spec.apiKeySecretRef cannot read order {} at DigiCert, so this DigicertOrder does not claim it: {err}",
                order.spec.order_id
            );
            return Ok(Err(blocked(status, status::failure_reason(&err), message)));
        }
        Outcome::Held { lease } => {
            status.claim = Some(format!("Lease {}/{lease}", ctx.config.namespace));
        }
        Outcome::Yielded { holder, lease } => {
            status.claim = Some(format!("held by {}", holder.display()));
            let message = format!(
                "order {} is driven by {} (Lease {}/{lease}); this one makes no DigiCert call and takes over when that one is gone",
                order.spec.order_id,
                holder.describe(),
                ctx.config.namespace
            );
            return Ok(Err(blocked(status, access::ORDER_CLAIMED, message)));
        }
    }
    clear_gate_condition(status);
    Ok(Ok(resolved))
}

/// A Ready=False for one of the gate's reasons (set by an earlier version) goes once
/// the gate is passed; the `DigiCert` condition is settled at the end of the reconcile.
fn clear_gate_condition(status: &mut DigicertOrderStatus) {
    if status::find(&status.conditions, READY)
        .is_some_and(|c| c.status != "True" && access::GATE_REASONS.contains(&c.reason.as_str()))
    {
        status::remove(&mut status.conditions, READY);
    }
}

// ------------------------------------------------------------ account readiness

/// How often an account's key Secret is looked at.
const ACCOUNT_RESYNC: Duration = Duration::from_secs(60);

async fn reconcile_account(account: Arc<DigicertAccount>, ctx: Arc<Context>) -> Result<Action> {
    // Another operator's account: its status is that operator's to write.
    if !serves_account(&ctx, &account) {
        return Ok(Action::await_change());
    }
    let key = &account.spec.api_key_secret_ref;
    let (ok, reason, message) =
        match read_key(&ctx, &ctx.config.namespace, &key.name, &key.key).await? {
            Ok(_) => (
                true,
                "KeyFound",
                format!(
                    "the API key Secret {}/{} holds a key",
                    ctx.config.namespace, key.name
                ),
            ),
            Err(refusal) => (false, refusal.reason(), refusal.message()),
        };
    let mut status = account.status.clone().unwrap_or_default();
    let before = status.clone();
    let generation = account.meta().generation;
    status.observed_generation = generation;
    let (ok, reason, message) = match account_service(&ctx, &account) {
        Ok((_, endpoint)) => {
            status.endpoint = Some(endpoint);
            (ok, reason, message)
        }
        Err(problem) => {
            status.endpoint = None;
            (false, access::INVALID_ACCOUNT, problem)
        }
    };
    status::set(
        &mut status.conditions,
        READY,
        ok,
        reason,
        message,
        generation,
        OffsetDateTime::now_utc(),
    );
    if status != before {
        let api: Api<DigicertAccount> = Api::all(ctx.client.clone());
        api.patch_status(
            &account.name_any(),
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "status": status })),
        )
        .await?;
    }
    Ok(Action::requeue(ACCOUNT_RESYNC))
}

fn account_error_policy(
    account: Arc<DigicertAccount>,
    err: &crate::error::Error,
    _ctx: Arc<Context>,
) -> Action {
    tracing::warn!(account = account.name_any(), error = %err, "account reconcile failed");
    Action::requeue(super::decide::schedule::ACCOUNT_ERROR_RETRY)
}

/// Keeps every DigicertAccount's Ready condition up to date until `stop`: it follows
/// the account and its key Secret (the metadata of the Secrets in the operator's
/// namespace: a key that comes, goes or changes shows at once).
pub async fn run_accounts(ctx: Arc<Context>, mut stop: watch::Receiver<bool>) {
    let api: Api<DigicertAccount> = Api::all(ctx.client.clone());
    let controller = Controller::new(api, watcher::Config::default());
    let accounts = controller.store();
    let keys = watcher(
        Api::<kube::api::PartialObjectMeta<Secret>>::namespaced(
            ctx.client.clone(),
            &ctx.config.namespace,
        ),
        watcher::Config::default(),
    )
    .default_backoff()
    .touched_objects();
    controller
        .watches_stream(keys, move |secret| {
            let name = secret.name_any();
            accounts
                .state()
                .iter()
                .filter(|a| a.spec.api_key_secret_ref.name == name)
                .map(|a| kube::runtime::reflector::ObjectRef::from_obj(a.as_ref()))
                .collect::<Vec<_>>()
        })
        .graceful_shutdown_on(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .run(reconcile_account, account_error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e @ kube::runtime::controller::Error::QueueError(_)) = result {
                tracing::warn!(error = %e, "watching DigicertAccounts");
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certcentral::{ClientConfig, LimiterFactory};

    #[test]
    fn account_users_follow_each_orders_latest_account() {
        let users = AccountUsers::default();
        let sorted = |mut v: Vec<(String, String)>| {
            v.sort();
            v
        };
        let pair = |ns: &str, n: &str| (ns.to_string(), n.to_string());
        users.record("a", "web", Some("payments"));
        users.record("b", "web", Some("payments"));
        users.record("a", "api", Some("shop"));
        assert_eq!(
            sorted(users.users("payments")),
            [pair("a", "web"), pair("b", "web")]
        );
        // An order that moves to another account (or none) leaves the first.
        users.record("a", "web", Some("shop"));
        users.record("b", "web", None);
        assert_eq!(users.users("payments"), Vec::<(String, String)>::new());
        assert_eq!(
            sorted(users.users("shop")),
            [pair("a", "api"), pair("a", "web")]
        );
        assert!(users.users("nobody").is_empty());
    }

    #[test]
    fn namespace_keys_go_only_to_digicert_the_operators_endpoint_and_allowed_ones() {
        let config = ClientConfig {
            base_url: "https://127.0.0.1:8443/services/v2".parse().unwrap(),
            ..ClientConfig::default()
        };
        let limiter: LimiterFactory = Arc::new(crate::certcentral::RateLimiter::unlimited);
        let mut endpoints = Endpoints::new(config, None, limiter, None);
        let allowed = |e: &Endpoints, url: &str| {
            access::namespace_key_endpoint_allowed(
                &endpoint_id(&url.parse().unwrap()),
                &e.namespace_key_endpoints,
            )
        };
        for url in [
            "us",
            "eu",
            "https://www.digicert.com/services/v2",
            "https://127.0.0.1:8443/services/v2",
            "https://127.0.0.1:8443/services/v2/",
        ] {
            assert!(allowed(&endpoints, url), "{url}");
        }
        for url in [
            "https://metadata.internal/services/v2",
            "https://127.0.0.1:9443/services/v2",
            "https://localhost:8443/services/v2",
        ] {
            assert!(!allowed(&endpoints, url), "{url}");
        }
        endpoints.allow_for_namespace_keys(&"https://localhost:8443/services/v2".parse().unwrap());
        assert!(allowed(&endpoints, "https://localhost:8443/services/v2"));
    }

    #[test]
    fn us_and_its_url_are_one_endpoint() {
        let us: BaseUrl = "us".parse().unwrap();
        let url: BaseUrl = "https://www.digicert.com/services/v2".parse().unwrap();
        assert_eq!(endpoint_id(&us), endpoint_id(&url));
        assert!(endpoint_id(&us).ends_with('/'));
        let eu: BaseUrl = "eu".parse().unwrap();
        assert_ne!(endpoint_id(&us), endpoint_id(&eu));
    }
}
