//! The `DigicertOrder` custom resource (v1alpha1): what users write (spec) and what the
//! operator reports (status). Doc comments become `kubectl explain` text.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub mod account;
pub mod dcv;
pub mod issuer;
mod schema;
mod status;
pub use account::{DigicertAccount, DigicertAccountSpec, DigicertAccountStatus, Endpoint};
pub use dcv::{DomainValidationSpec, DomainValidationStatus};
pub use issuer::{
    DigicertClusterIssuer, DigicertClusterIssuerSpec, DigicertIssuer, DigicertIssuerSpec,
    DigicertIssuerStatus, IssuerSpec,
};
pub use schema::{account_crd, crd, crds, issuer_crds, tidy};
pub use status::*;

pub const GROUP: &str = "digicert-operator.dev";
/// Finalizer that lets the operator act at DigiCert before the resource goes.
pub const FINALIZER: &str = "digicert-operator.dev/cleanup";
/// Set (to any new value, e.g. a timestamp) to request a reissue now.
pub const RENEW_ANNOTATION: &str = "digicert-operator.dev/renew";
/// Set (to any new value) to cancel the reissue in flight; no new one starts until
/// the spec changes or a renewal is requested.
pub const CANCEL_ANNOTATION: &str = "digicert-operator.dev/cancel";
/// Set to the fingerprint status shows (`status.revocationGuard.fingerprint`) to let
/// a reissue that drops names go ahead, although DigiCert then revokes the order's
/// earlier certificates and duplicates. It covers that set of names only.
pub const ALLOW_REVOCATION_ANNOTATION: &str = "digicert-operator.dev/allow-revocation";
/// Set to the id of the reissue request that waits for approval at DigiCert
/// (`status.reissue.requestId`) to have the operator approve that request, when the
/// order's account allows approval. It names one request, so it approves no later one.
pub const APPROVE_ANNOTATION: &str = "digicert-operator.dev/approve";
/// Set to the id of the reissue request that waits for approval to have the operator
/// reject it at DigiCert (when the account allows approval) and hold further reissues
/// of the spec, as a cancel does. Wins over the approve annotation.
pub const DENY_ANNOTATION: &str = "digicert-operator.dev/deny";
/// Why a request was denied: DigiCert records it with the rejection.
pub const DENY_REASON_ANNOTATION: &str = "digicert-operator.dev/deny-reason";

/// Keeps a DigiCert certificate for the names of one CertCentral order in a
/// `kubernetes.io/tls` Secret, renewing it by reissuing inside the order.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "digicert-operator.dev",
    version = "v1alpha1",
    kind = "DigicertOrder",
    plural = "digicertorders",
    shortname = "dco",
    namespaced,
    status = "DigicertOrderStatus",
    doc = "A DigiCert CertCentral order whose certificate the operator keeps valid in a Secret.",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Order","type":"integer","jsonPath":".spec.orderId"}"#,
    printcolumn = r#"{"name":"DigiCert","type":"string","jsonPath":".status.orderStatus"}"#,
    printcolumn = r#"{"name":"Secret","type":"string","jsonPath":".spec.secretName"}"#,
    printcolumn = r#"{"name":"Expires","type":"string","jsonPath":".status.certificate.notAfter"}"#,
    printcolumn = r#"{"name":"Account","type":"string","jsonPath":".status.account"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Renewal","type":"string","priority":1,"jsonPath":".status.renewalTime"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = Rule::new("size(self.metadata.name) <= 63").message("the name of a DigicertOrder must be at most 63 characters (it goes into a label on its Secrets)")
)]
#[x_kube(
    cel,
    validation = Rule::new("!(has(self.renewBefore) && has(self.renewBeforePercentage))").message("set renewBefore or renewBeforePercentage, not both"),
    validation = Rule::new("!(has(self.accountRef) && has(self.apiKeySecretRef))").message("set accountRef or apiKeySecretRef, not both"),
    validation = Rule::new("self.issuance != 'Duplicate' || !has(self.dnsNames) || size(self.dnsNames) == 0").message("a duplicate carries the names of the order's current certificate: leave dnsNames empty (commonName picks the subject among them)"),
    validation = Rule::new("self.issuance != 'Duplicate' || (!has(self.autoReissue) && !self.allowRevocationOfPrevious && !has(self.domainValidation))").message("autoReissue, allowRevocationOfPrevious and domainValidation belong to the DigicertOrder that reissues the order, not to a duplicate")
)]
#[serde(rename_all = "camelCase")]
pub struct DigicertOrderSpec {
    /// The CertCentral order id. Immutable: to manage another order, create another
    /// DigicertOrder.
    #[x_kube(validation = Rule::new("self == oldSelf").message("orderId is immutable; create a new DigicertOrder for another order"))]
    #[schemars(range(min = 1))]
    pub order_id: u64,

    /// The domain the certificate secures (its subject common name and first DNS name).
    /// It must be a domain of the order.
    #[schemars(
        length(min = 1, max = 64),
        regex(
            pattern = r"^(\*\.)?([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
        )
    )]
    pub common_name: String,

    /// Further names for the certificate (subject alternative names). The common name
    /// is always included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 250), inner(length(min = 1, max = 253)))]
    #[x_kube(validation = Rule::new("self.all(n, n.matches('^(\\\\*\\\\.)?([a-z0-9]([-a-z0-9]*[a-z0-9])?\\\\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$'))").message("every DNS name must be a lower-case domain name, optionally starting with *."))]
    pub dns_names: Vec<String>,

    /// The `kubernetes.io/tls` Secret (same namespace) that holds the certificate
    /// (`tls.crt`: leaf and intermediates), its key (`tls.key`) and the root (`ca.crt`).
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub secret_name: String,

    /// Mirrors DigiCert's auto-reissue setting of the order: true turns it on, false
    /// off; unset leaves it as it is. With auto-reissue, DigiCert reissues the latest
    /// certificate by itself 30 days before it expires; the operator picks it up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_reissue: Option<bool>,

    /// The key pair to generate for the certificate.
    #[serde(default)]
    pub private_key: PrivateKeySpec,

    /// Hash of the certificate's signature.
    #[serde(default)]
    pub signature_hash: SignatureHash,

    /// DigiCert's server platform id, sent with each reissue request. Unset: none is
    /// sent and DigiCert uses its default; -1 (the default of earlier versions) means
    /// the same.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "server_platform"
    )]
    pub server_platform_id: Option<i64>,

    /// A message sent with each reissue request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000))]
    pub comments: Option<String>,

    /// Ask DigiCert to skip the approval step (the API key needs the right to).
    #[serde(default)]
    pub skip_approval: bool,

    /// Approve reissue requests that wait for an administrator, with the API key
    /// (which needs approver rights).
    #[serde(default)]
    pub approve_reissues: bool,

    /// Renew this long before the certificate expires (a duration such as `720h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"))]
    pub renew_before: Option<String>,

    /// Renew when this percentage of the certificate's lifetime is left. Default:
    /// renewal when a third of the lifetime is left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 99))]
    pub renew_before_percentage: Option<u8>,

    /// The DigicertAccount (cluster-scoped) whose CertCentral endpoint and API key to
    /// use; it must select this namespace. Default: the operator's default account
    /// (unless apiKeySecretRef is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_ref: Option<AccountRef>,

    /// Instead of an account: a Secret in this namespace holding a CertCentral API
    /// key, and the endpoint it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret_ref: Option<OrderApiKeyRef>,

    /// Labels and annotations copied onto the certificate Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_template: Option<SecretTemplate>,

    /// What deleting this resource does at DigiCert. Retain: nothing (and no
    /// finalizer). CancelPending: cancel the reissue this resource sent, or the order
    /// itself while it is pending where the account allows it. Nothing is ever
    /// revoked, and the Secret stays.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// How the operator completes DigiCert's domain validation for this order;
    /// replaces the account's `domainValidation` as a whole. A TSIG Secret named here
    /// is read from this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_validation: Option<DomainValidationSpec>,

    /// How the certificate is obtained. Reissue (default): this resource reissues the
    /// order (only one resource per order may). Duplicate: it takes a duplicate of
    /// the order's current certificate with its own key, so several clusters or
    /// Secrets can share one order without rival reissues; the duplicate follows the
    /// order's certificate (names, validity) and is renewed when the order is reissued.
    #[serde(default)]
    pub issuance: Issuance,

    /// Let reissues that drop or change names go ahead without asking. DigiCert then
    /// revokes the order's earlier certificates and all its duplicates within 72 hours.
    /// Without it, such a reissue waits for the allow-revocation annotation.
    #[serde(default)]
    pub allow_revocation_of_previous: bool,
}

/// How a DigicertOrder gets its certificate from the order.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Issuance {
    #[default]
    Reissue,
    Duplicate,
}

/// Reads `serverPlatformId`, taking -1 ("other", written by default before the field
/// became optional) for unset, so that both mean "send none".
fn server_platform<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    Ok(Option::<i64>::deserialize(deserializer)?.filter(|&id| id != -1))
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[x_kube(
    cel,
    validation = Rule::new("!has(self.size) || (self.algorithm == 'RSA' ? self.size in [2048, 3072, 4096] : self.size in [256, 384])").message("size must be 2048, 3072 or 4096 for RSA and 256 or 384 for ECDSA")
)]
#[serde(rename_all = "camelCase")]
pub struct PrivateKeySpec {
    /// The key algorithm: RSA (default) or ECDSA.
    #[serde(default)]
    pub algorithm: KeyAlgorithm,
    /// Bits: RSA 2048 (default), 3072 or 4096; ECDSA 256 (default, P-256) or 384 (P-384).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
    /// Always: a new key for every reissue. Never: keep the key of the current Secret.
    #[serde(default)]
    pub rotation_policy: RotationPolicy,
    /// How `tls.key` is written: PKCS1 (`RSA PRIVATE KEY` / `EC PRIVATE KEY`) or PKCS8.
    #[serde(default)]
    pub encoding: KeyEncoding,
}

impl PrivateKeySpec {
    /// The key kind asked for, with defaults filled in.
    pub fn kind(&self) -> crate::keys::KeyKind {
        match self.algorithm {
            KeyAlgorithm::Rsa => crate::keys::KeyKind::Rsa(self.size.unwrap_or(2048)),
            KeyAlgorithm::Ecdsa => crate::keys::KeyKind::Ecdsa(self.size.unwrap_or(256)),
        }
    }
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyAlgorithm {
    #[default]
    #[serde(rename = "RSA")]
    Rsa,
    #[serde(rename = "ECDSA")]
    Ecdsa,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RotationPolicy {
    #[default]
    Always,
    Never,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyEncoding {
    #[default]
    #[serde(rename = "PKCS1")]
    Pkcs1,
    #[serde(rename = "PKCS8")]
    Pkcs8,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SignatureHash {
    #[default]
    Sha256,
    Sha384,
    Sha512,
}

impl SignatureHash {
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureHash::Sha256 => "sha256",
            SignatureHash::Sha384 => "sha384",
            SignatureHash::Sha512 => "sha512",
        }
    }
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeletionPolicy {
    #[default]
    Retain,
    CancelPending,
}

/// A key of a Secret in the resource's namespace.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SecretKeySelector {
    /// The Secret's name.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: String,
    /// The key within the Secret's data. Default `api-key`.
    #[serde(default = "default_api_key_key")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

/// A DigicertAccount by name.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct AccountRef {
    /// The DigicertAccount's name.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: String,
}

/// A key of a Secret in the resource's namespace holding a CertCentral API key, and
/// where CertCentral is for it.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct OrderApiKeyRef {
    /// The Secret's name, in the DigicertOrder's namespace.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub name: String,
    /// The key within the Secret's data. Default `api-key`.
    #[serde(default = "default_api_key_key")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
    /// CertCentral for this key: `us`, `eu`, or an https URL. Default: the operator's
    /// --certcentral-url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 2, max = 2048),
        regex(pattern = r"^(us|eu|https://[^\s/?#]+(/[^\s?#]*)?)$")
    )]
    pub certcentral: Option<String>,
}

pub fn default_api_key_key() -> String {
    "api-key".into()
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretTemplate {
    /// Labels put on the Secret.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations put on the Secret.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: serde_json::Value) -> serde_json::Value {
        let mut base = serde_json::json!({
            "orderId": 1001, "commonName": "example.com", "secretName": "example-tls",
        });
        base.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        base
    }

    #[test]
    fn defaults_fill_an_empty_spec() {
        let s: DigicertOrderSpec = serde_json::from_value(spec(serde_json::json!({}))).unwrap();
        assert_eq!(s.private_key.kind(), crate::keys::KeyKind::Rsa(2048));
        assert_eq!(s.signature_hash, SignatureHash::Sha256);
        assert_eq!(s.server_platform_id, None);
        assert_eq!(s.deletion_policy, DeletionPolicy::Retain);
        assert_eq!(s.auto_reissue, None);
        let s: DigicertOrderSpec = serde_json::from_value(spec(
            serde_json::json!({"privateKey": {"algorithm": "ECDSA"}}),
        ))
        .unwrap();
        assert_eq!(s.private_key.kind(), crate::keys::KeyKind::Ecdsa(256));
    }

    #[test]
    fn a_server_platform_of_minus_one_means_none_as_before() {
        let read = |extra| serde_json::from_value::<DigicertOrderSpec>(spec(extra)).unwrap();
        let unset = read(serde_json::json!({}));
        let other = read(serde_json::json!({"serverPlatformId": -1}));
        let set = read(serde_json::json!({"serverPlatformId": 45}));
        assert_eq!(unset.server_platform_id, None);
        assert_eq!(other.server_platform_id, None);
        assert_eq!(set.server_platform_id, Some(45));
        // Nothing written back for none; a reissue in flight stays current.
        let written = serde_json::to_value(&other).unwrap();
        assert!(written.get("serverPlatformId").is_none(), "{written}");
        assert_eq!(serde_json::to_value(&set).unwrap()["serverPlatformId"], 45);
        let fingerprint = crate::controller::decide::spec_fingerprint;
        assert_eq!(fingerprint(&unset), fingerprint(&other));
        assert_ne!(fingerprint(&unset), fingerprint(&set));
        // The schema has no default, so the API server adds none.
        let crd = serde_json::to_value(super::crd()).unwrap();
        let field = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["properties"]["serverPlatformId"];
        assert_eq!(field["type"], "integer", "{field}");
        assert!(field.get("default").is_none(), "{field}");
    }

    #[test]
    fn cel_rules_refuse_bad_specs() {
        // (spec, old spec, accepted?)
        let cases = [
            (spec(serde_json::json!({})), None, true),
            (spec(serde_json::json!({"renewBefore": "720h"})), None, true),
            (
                spec(serde_json::json!({"renewBefore": "720h", "renewBeforePercentage": 20})),
                None,
                false,
            ),
            (
                spec(serde_json::json!({"dnsNames": ["www.example.com", "*.example.com"]})),
                None,
                true,
            ),
            (
                spec(serde_json::json!({"dnsNames": ["Bad_Name"]})),
                None,
                false,
            ),
            (
                spec(serde_json::json!({"orderId": 1002})),
                Some(spec(serde_json::json!({}))),
                false,
            ),
            (
                spec(serde_json::json!({"commonName": "example.com"})),
                Some(spec(serde_json::json!({}))),
                true,
            ),
            (
                spec(serde_json::json!({"accountRef": {"name": "payments"}})),
                None,
                true,
            ),
            (
                spec(serde_json::json!({"apiKeySecretRef": {"name": "key", "certcentral": "eu"}})),
                None,
                true,
            ),
            (
                spec(
                    serde_json::json!({"accountRef": {"name": "payments"}, "apiKeySecretRef": {"name": "key"}}),
                ),
                None,
                false,
            ),
        ];
        for (value, old, ok) in cases {
            let result = DigicertOrderSpec::validate_cel(&value, old.as_ref());
            assert_eq!(result.is_ok(), ok, "{value} (old {old:?}): {result:?}");
        }
    }

    #[test]
    fn cel_rules_pair_key_algorithms_with_sizes() {
        let cases = [
            (serde_json::json!({"algorithm": "RSA", "size": 2048}), true),
            (serde_json::json!({"algorithm": "RSA", "size": 4096}), true),
            (serde_json::json!({"algorithm": "RSA", "size": 256}), false),
            (serde_json::json!({"algorithm": "RSA", "size": 1024}), false),
            (serde_json::json!({"algorithm": "ECDSA", "size": 384}), true),
            (
                serde_json::json!({"algorithm": "ECDSA", "size": 2048}),
                false,
            ),
            (serde_json::json!({"algorithm": "ECDSA"}), true),
        ];
        for (value, ok) in cases {
            let result = PrivateKeySpec::validate_cel(&value, None);
            assert_eq!(result.is_ok(), ok, "{value}: {result:?}");
        }
    }

    #[test]
    fn reflow_joins_wrapped_lines_and_keeps_paragraphs_and_lists() {
        let cases = [
            ("one line", "one line"),
            (
                "true turns it on,\nfalse\noff",
                "true turns it on, false off",
            ),
            ("first\nparagraph\n\nsecond", "first paragraph\n\nsecond"),
            (
                "items:\n- one\n- two\nwrapped",
                "items:\n- one\n- two wrapped",
            ),
            ("  indented\n  lines  ", "indented lines"),
        ];
        for (text, want) in cases {
            assert_eq!(schema::reflow(text), want, "{text:?}");
        }
    }

    /// Every schema object of the CRD, with its path.
    fn schemas<'a>(
        path: String,
        value: &'a serde_json::Value,
        out: &mut Vec<(String, &'a serde_json::Map<String, serde_json::Value>)>,
    ) {
        match value {
            serde_json::Value::Object(map) => {
                out.push((path.clone(), map));
                for (k, v) in map {
                    schemas(format!("{path}.{k}"), v, out);
                }
            }
            serde_json::Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    schemas(format!("{path}[{i}]"), v, out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn unsigned_integers_are_plain_bounded_integers_and_descriptions_are_paragraphs() {
        let crd = serde_json::to_value(super::crd()).unwrap();
        let mut all = Vec::new();
        schemas(
            String::new(),
            &crd["spec"]["versions"][0]["schema"],
            &mut all,
        );
        for (path, map) in &all {
            if let Some(format) = map.get("format").and_then(|f| f.as_str()) {
                assert!(
                    ["int32", "int64", "date-time"].contains(&format),
                    "{path}: format {format}"
                );
            }
            if map.get("type").and_then(|t| t.as_str()) == Some("integer")
                && map.get("format").is_none()
            {
                assert!(map.contains_key("minimum"), "{path}: no minimum");
            }
            if let Some(text) = map.get("description").and_then(|d| d.as_str()) {
                let stray = text.match_indices('\n').any(|(i, _)| {
                    !text[i..].starts_with("\n\n")
                        && !text[..i].ends_with('\n')
                        && !text[i + 1..].starts_with("- ")
                });
                assert!(!stray, "{path}: a line break inside a paragraph: {text:?}");
            }
        }
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
        assert_eq!(spec["orderId"]["minimum"], 1.0);
        assert!(spec["orderId"].get("maximum").is_none());
        assert_eq!(spec["renewBeforePercentage"]["maximum"], 99.0);
        assert_eq!(
            spec["privateKey"]["properties"]["size"]["maximum"],
            4294967295.0
        );
        assert_eq!(spec["dnsNames"]["items"]["maxLength"], 253);
    }

    #[test]
    fn the_crd_has_the_status_subresource_short_name_and_columns() {
        let crd = serde_json::to_value(super::crd()).unwrap();
        assert_eq!(crd["spec"]["names"]["shortNames"][0], "dco");
        let version = &crd["spec"]["versions"][0];
        assert!(version["subresources"]["status"].is_object());
        let columns: Vec<&str> = version["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            columns,
            [
                "Ready", "Order", "DigiCert", "Secret", "Expires", "Account", "Reason", "Renewal",
                "Age"
            ]
        );
        let text = crd.to_string();
        assert!(text.contains("orderId is immutable"));
        assert!(text.contains("set accountRef or apiKeySecretRef, not both"));
        assert!(text.contains("x-kubernetes-validations"));
    }
}
