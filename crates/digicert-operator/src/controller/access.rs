//! Which CertCentral account a DigicertOrder uses, and what that account lets it do:
//! pure decisions over plain data, table-tested. `accounts` carries them out.
//!
//! - [`choose`]: the account an order asks for (its `accountRef`, its own-namespace
//!   key, or the operator's default account).
//! - [`may_use`]: may this namespace drive this order with that account.
//! - [`Grants`]: may it approve reissue requests, may it cancel a pending order.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Selector, SelectorExt};

use crate::crd::{DigicertAccountSpec, DigicertOrderSpec, OrderApiKeyRef};

/// Ready reasons of the access gate (and of the claim): a reconcile that passes the
/// gate clears them.
pub const NO_ACCOUNT: &str = "NoAccount";
pub const ACCOUNT_NOT_FOUND: &str = "AccountNotFound";
pub const NAMESPACE_NOT_ALLOWED: &str = "NamespaceNotAllowed";
pub const ORDER_NOT_ALLOWED: &str = "OrderNotAllowed";
pub const INVALID_ACCOUNT: &str = "InvalidAccount";
pub const API_KEY_MISSING: &str = "ApiKeyMissing";
pub const ORDER_CLAIMED: &str = "OrderClaimed";
pub const ENDPOINT_NOT_ALLOWED: &str = "EndpointNotAllowed";

/// Every reason the gate sets.
pub const GATE_REASONS: [&str; 8] = [
    ENDPOINT_NOT_ALLOWED,
    NO_ACCOUNT,
    ACCOUNT_NOT_FOUND,
    NAMESPACE_NOT_ALLOWED,
    ORDER_NOT_ALLOWED,
    INVALID_ACCOUNT,
    API_KEY_MISSING,
    ORDER_CLAIMED,
];

/// The account an order asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    /// A DigicertAccount by name (named in the spec, or the operator's default).
    Account { name: String, default: bool },
    /// A key in the order's own namespace; it names its endpoint itself.
    NamespaceKey(OrderApiKeyRef),
    /// Neither, and the operator has no default account.
    None,
}

/// `accountRef`, else `apiKeySecretRef`, else the default account.
pub fn choose(spec: &DigicertOrderSpec, default_account: Option<&str>) -> Choice {
    match (&spec.account_ref, &spec.api_key_secret_ref, default_account) {
        (Some(a), _, _) => Choice::Account {
            name: a.name.clone(),
            default: false,
        },
        (None, Some(k), _) => Choice::NamespaceKey(k.clone()),
        (None, None, Some(d)) if !d.is_empty() => Choice::Account {
            name: d.to_string(),
            default: true,
        },
        (None, None, _) => Choice::None,
    }
}

/// Why an order may not go to DigiCert (no call is made).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    NoAccount,
    AccountNotFound {
        name: String,
        default: bool,
    },
    NamespaceNotAllowed {
        account: String,
        namespace: String,
    },
    OrderNotAllowed {
        account: String,
        order_id: u64,
    },
    /// The account cannot be used as written (a selector or endpoint that does not
    /// parse).
    InvalidAccount {
        account: String,
        problem: String,
    },
    /// The key Secret is missing, lacks the key, or holds no usable key.
    ApiKeyMissing(String),
    /// A key of the order's namespace names an endpoint the operator does not send
    /// namespace keys to.
    EndpointNotAllowed {
        endpoint: String,
    },
}

impl Refusal {
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::NoAccount => NO_ACCOUNT,
            Refusal::AccountNotFound { .. } => ACCOUNT_NOT_FOUND,
            Refusal::NamespaceNotAllowed { .. } => NAMESPACE_NOT_ALLOWED,
            Refusal::OrderNotAllowed { .. } => ORDER_NOT_ALLOWED,
            Refusal::InvalidAccount { .. } => INVALID_ACCOUNT,
            Refusal::ApiKeyMissing(_) => API_KEY_MISSING,
            Refusal::EndpointNotAllowed { .. } => ENDPOINT_NOT_ALLOWED,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Refusal::NoAccount => "no CertCentral account: set spec.accountRef or spec.apiKeySecretRef (the operator has no --default-account)".into(),
            Refusal::AccountNotFound { name, default: false } => {
                format!("the DigicertAccount {name} does not exist")
            }
            Refusal::AccountNotFound { name, default: true } => format!(
                "the operator's default DigicertAccount {name} does not exist; set spec.accountRef or spec.apiKeySecretRef"
            ),
            Refusal::NamespaceNotAllowed { account, namespace } => format!(
                "the DigicertAccount {account} does not allow the namespace {namespace} (its namespaceSelector does not select it)"
            ),
            Refusal::OrderNotAllowed { account, order_id } => format!(
                "the DigicertAccount {account} does not allow order {order_id} (not in its orderIds)"
            ),
            Refusal::InvalidAccount { account, problem } => {
                format!("the DigicertAccount {account} cannot be used: {problem}")
            }
            Refusal::ApiKeyMissing(message) => message.clone(),
            Refusal::EndpointNotAllowed { endpoint } => format!(
                "spec.apiKeySecretRef.certcentral {endpoint} is not an endpoint the operator sends a namespace's key to: use us, eu or the operator's own (--certcentral-url), one it allows with --namespace-key-endpoint, or a DigicertAccount"
            ),
        }
    }
}

/// Whether a key of an order's namespace may go to `endpoint` (an endpoint id, see
/// `accounts::endpoint_id`): one of `allowed` (`us`, `eu`, the operator's endpoint
/// and those it was told to allow). Any other URL would let a namespace point the
/// operator's requests wherever it likes.
pub fn namespace_key_endpoint_allowed(endpoint: &str, allowed: &[String]) -> bool {
    allowed.iter().any(|a| a == endpoint)
}

/// Whether the operator running in `own_namespace` serves what an account or order
/// is assigned to: an account names its operator's namespace
/// (`spec.operatorNamespace`); what names none (such accounts, orders that name no
/// account or a missing one, keys of an order's own namespace) is served by operators
/// told to serve it (`--serve-unassigned`, on by default). Two operators in one
/// cluster thus never both act for one account or order.
pub fn serves(assigned_to: Option<&str>, own_namespace: &str, serve_unassigned: bool) -> bool {
    match assigned_to {
        Some(ns) => ns == own_namespace,
        None => serve_unassigned,
    }
}

/// Whether `selector` selects a namespace with `labels`; `Err` when it does not parse.
pub fn selects(
    selector: &LabelSelector,
    labels: &BTreeMap<String, String>,
) -> Result<bool, String> {
    let selector =
        Selector::try_from(selector.clone()).map_err(|e| format!("namespaceSelector: {e}"))?;
    Ok(selector.matches(labels))
}

/// May an order for `order_id` in `namespace` (with `namespace_labels`) use the account
/// `name`? The order id list is checked after the namespace.
pub fn may_use(
    name: &str,
    account: &DigicertAccountSpec,
    namespace: &str,
    namespace_labels: &BTreeMap<String, String>,
    order_id: u64,
) -> Result<(), Refusal> {
    may_use_for(
        name,
        account,
        Some((namespace, namespace_labels)),
        Some(order_id),
    )
}

/// `may_use` for what may name no namespace (a cluster issuer) or no order (an issuer
/// that leaves the order to its requests): only what is named is checked.
pub fn may_use_for(
    name: &str,
    account: &DigicertAccountSpec,
    namespace: Option<(&str, &BTreeMap<String, String>)>,
    order_id: Option<u64>,
) -> Result<(), Refusal> {
    if let Some((namespace, namespace_labels)) = namespace {
        may_use_namespace(name, account, namespace, namespace_labels)?;
    }
    match order_id {
        Some(order_id)
            if !account.order_ids.is_empty() && !account.order_ids.contains(&order_id) =>
        {
            Err(Refusal::OrderNotAllowed {
                account: name.into(),
                order_id,
            })
        }
        _ => Ok(()),
    }
}

fn may_use_namespace(
    name: &str,
    account: &DigicertAccountSpec,
    namespace: &str,
    namespace_labels: &BTreeMap<String, String>,
) -> Result<(), Refusal> {
    match selects(&account.namespace_selector, namespace_labels) {
        Err(problem) => Err(Refusal::InvalidAccount {
            account: name.into(),
            problem,
        }),
        Ok(false) => Err(Refusal::NamespaceNotAllowed {
            account: name.into(),
            namespace: namespace.into(),
        }),
        Ok(true) => Ok(()),
    }
}

/// What an account lets its orders do beyond reissuing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grants {
    /// Shown in status and messages: the account's name, or `namespace key <secret>`.
    pub account: String,
    pub approve: bool,
    pub cancel_order: bool,
}

impl Grants {
    /// A DigicertAccount grants what it says.
    pub fn of_account(name: &str, account: &DigicertAccountSpec) -> Self {
        Grants {
            account: name.into(),
            approve: account.allow_approval,
            cancel_order: account.allow_order_cancel,
        }
    }

    /// A key of the order's own namespace: the namespace's own account, all of it.
    pub fn of_namespace_key(key: &OrderApiKeyRef) -> Self {
        Grants {
            account: namespace_key_label(&key.name),
            approve: true,
            cancel_order: true,
        }
    }
}

/// How status shows an own-namespace key.
pub fn namespace_key_label(secret: &str) -> String {
    format!("namespace key {secret}")
}

/// What to do with a reissue request that waits for approval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Approval {
    Approve,
    /// Leave it to an administrator; the message says why.
    Leave(String),
}

/// `grants`: the account's, looked up only when approval is asked for (`None`: the
/// account is not usable now).
pub fn approval(approve_reissues: bool, grants: Option<&Grants>) -> Approval {
    match (approve_reissues, grants) {
        (false, _) => Approval::Leave(
            "an administrator must approve it in CertCentral (or set spec.approveReissues)".into(),
        ),
        (true, Some(g)) if g.approve => Approval::Approve,
        (true, Some(g)) => Approval::Leave(format!(
            "spec.approveReissues is set, but the DigicertAccount {} does not allow approval (allowApproval); an administrator must approve it in CertCentral",
            g.account
        )),
        (true, None) => Approval::Leave(
            "the order's account cannot be used now; an administrator must approve it in CertCentral".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{AccountRef, SecretKeySelector};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn order(account: Option<&str>, key: Option<&str>) -> DigicertOrderSpec {
        let mut spec: DigicertOrderSpec = serde_json::from_value(serde_json::json!({
            "orderId": 1001, "commonName": "example.com", "secretName": "example-tls",
        }))
        .unwrap();
        spec.account_ref = account.map(|n| AccountRef { name: n.into() });
        spec.api_key_secret_ref = key.map(|n| OrderApiKeyRef {
            name: n.into(),
            key: "api-key".into(),
            certcentral: None,
        });
        spec
    }

    fn account(selector: LabelSelector, order_ids: &[u64]) -> DigicertAccountSpec {
        DigicertAccountSpec {
            certcentral: Default::default(),
            api_key_secret_ref: SecretKeySelector {
                name: "key".into(),
                key: "api-key".into(),
            },
            operator_namespace: None,
            namespace_selector: selector,
            order_ids: order_ids.to_vec(),
            allow_approval: false,
            allow_order_cancel: false,
            domain_validation: None,
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn match_labels(pairs: &[(&str, &str)]) -> LabelSelector {
        LabelSelector {
            match_labels: Some(labels(pairs)),
            match_expressions: None,
        }
    }

    #[test]
    fn the_spec_names_the_account_else_the_default_applies() {
        let named = |n: &str, default| Choice::Account {
            name: n.into(),
            default,
        };
        let key = |n: &str| {
            Choice::NamespaceKey(OrderApiKeyRef {
                name: n.into(),
                key: "api-key".into(),
                certcentral: None,
            })
        };
        let cases = [
            (
                order(Some("payments"), None),
                Some("platform"),
                named("payments", false),
            ),
            (
                order(Some("payments"), None),
                None,
                named("payments", false),
            ),
            (order(None, Some("own")), Some("platform"), key("own")),
            (order(None, Some("own")), None, key("own")),
            (order(None, None), Some("platform"), named("platform", true)),
            (order(None, None), Some(""), Choice::None),
            (order(None, None), None, Choice::None),
        ];
        for (spec, default, want) in cases {
            assert_eq!(choose(&spec, default), want, "{spec:?} {default:?}");
        }
    }

    /// (account, namespace, its labels, order id, verdict)
    type Case<'a> = (
        DigicertAccountSpec,
        &'a str,
        &'a BTreeMap<String, String>,
        u64,
        Result<(), Refusal>,
    );

    #[test]
    fn an_account_grants_selected_namespaces_and_listed_orders_only() {
        let payments = labels(&[("team", "payments"), ("kubernetes.io/metadata.name", "pay")]);
        let other = labels(&[("kubernetes.io/metadata.name", "other")]);
        let expr = LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "team".into(),
                operator: "In".into(),
                values: Some(vec!["payments".into(), "shop".into()]),
            }]),
        };
        let bad = LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "team".into(),
                operator: "Near".into(),
                values: None,
            }]),
        };
        let not_ns = |ns: &str| Refusal::NamespaceNotAllowed {
            account: "acct".into(),
            namespace: ns.into(),
        };
        let cases: Vec<Case> = vec![
            (
                account(LabelSelector::default(), &[]),
                "other",
                &other,
                7,
                Ok(()),
            ),
            (
                account(match_labels(&[("team", "payments")]), &[]),
                "pay",
                &payments,
                7,
                Ok(()),
            ),
            (
                account(match_labels(&[("team", "payments")]), &[]),
                "other",
                &other,
                7,
                Err(not_ns("other")),
            ),
            (account(expr.clone(), &[]), "pay", &payments, 7, Ok(())),
            (account(expr, &[]), "other", &other, 7, Err(not_ns("other"))),
            (
                account(match_labels(&[("team", "payments")]), &[1001, 1002]),
                "pay",
                &payments,
                1002,
                Ok(()),
            ),
            (
                account(match_labels(&[("team", "payments")]), &[1001, 1002]),
                "pay",
                &payments,
                2001,
                Err(Refusal::OrderNotAllowed {
                    account: "acct".into(),
                    order_id: 2001,
                }),
            ),
            // The namespace is judged first: another team learns nothing about orders.
            (
                account(match_labels(&[("team", "payments")]), &[1001]),
                "other",
                &other,
                2001,
                Err(not_ns("other")),
            ),
            (
                account(bad, &[]),
                "pay",
                &payments,
                7,
                Err(Refusal::InvalidAccount {
                    account: "acct".into(),
                    problem: String::new(),
                }),
            ),
        ];
        for (spec, ns, labels, order_id, want) in cases {
            let got = may_use("acct", &spec, ns, labels, order_id);
            match (&got, &want) {
                (Err(Refusal::InvalidAccount { .. }), Err(Refusal::InvalidAccount { .. })) => {}
                _ => assert_eq!(got, want, "{spec:?} {ns} {order_id}"),
            }
        }
    }

    #[test]
    fn refusals_have_reasons_of_their_own_and_name_what_is_missing() {
        let cases = [
            (Refusal::NoAccount, NO_ACCOUNT, "--default-account"),
            (
                Refusal::AccountNotFound {
                    name: "a".into(),
                    default: false,
                },
                ACCOUNT_NOT_FOUND,
                "DigicertAccount a does not exist",
            ),
            (
                Refusal::AccountNotFound {
                    name: "d".into(),
                    default: true,
                },
                ACCOUNT_NOT_FOUND,
                "default DigicertAccount d",
            ),
            (
                Refusal::NamespaceNotAllowed {
                    account: "a".into(),
                    namespace: "n".into(),
                },
                NAMESPACE_NOT_ALLOWED,
                "namespace n",
            ),
            (
                Refusal::OrderNotAllowed {
                    account: "a".into(),
                    order_id: 9,
                },
                ORDER_NOT_ALLOWED,
                "order 9",
            ),
            (
                Refusal::InvalidAccount {
                    account: "a".into(),
                    problem: "p".into(),
                },
                INVALID_ACCOUNT,
                "cannot be used: p",
            ),
            (
                Refusal::ApiKeyMissing("the Secret x".into()),
                API_KEY_MISSING,
                "the Secret x",
            ),
        ];
        for (refusal, reason, text) in cases {
            assert_eq!(refusal.reason(), reason);
            assert!(GATE_REASONS.contains(&reason));
            assert!(refusal.message().contains(text), "{}", refusal.message());
        }
    }

    #[test]
    fn an_operator_serves_its_own_accounts_and_unassigned_ones_if_told() {
        let cases = [
            (Some("ops-a"), "ops-a", true, true),
            (Some("ops-a"), "ops-a", false, true),
            (Some("ops-b"), "ops-a", true, false),
            (Some("ops-b"), "ops-a", false, false),
            (None, "ops-a", true, true),
            (None, "ops-a", false, false),
        ];
        for (assigned, own, unassigned, want) in cases {
            assert_eq!(
                serves(assigned, own, unassigned),
                want,
                "{assigned:?} {own} {unassigned}"
            );
        }
    }

    #[test]
    fn approval_and_order_cancel_need_the_accounts_grant() {
        let strict = Grants::of_account("acct", &account(LabelSelector::default(), &[]));
        let mut lenient = account(LabelSelector::default(), &[]);
        lenient.allow_approval = true;
        lenient.allow_order_cancel = true;
        let lenient = Grants::of_account("acct", &lenient);
        let own = Grants::of_namespace_key(&OrderApiKeyRef {
            name: "k".into(),
            key: "api-key".into(),
            certcentral: None,
        });
        assert_eq!(own.account, "namespace key k");
        assert_eq!(approval(true, Some(&lenient)), Approval::Approve);
        assert_eq!(approval(true, Some(&own)), Approval::Approve);
        let leaves = [
            (true, Some(&strict), "allowApproval"),
            (false, Some(&lenient), "approveReissues"),
            (false, None, "approveReissues"),
            (true, None, "cannot be used"),
        ];
        for (asked, grants, text) in leaves {
            let got = approval(asked, grants);
            assert!(
                matches!(&got, Approval::Leave(m) if m.contains(text)),
                "{got:?}"
            );
        }
        // Canceling a pending order (a resource's own reissue is always its to cancel:
        // decide::cancel_on_deletion).
        for (grants, want) in [(&strict, false), (&lenient, true), (&own, true)] {
            assert_eq!(grants.cancel_order, want, "{grants:?}");
        }
    }
}
