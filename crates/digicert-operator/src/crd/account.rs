//! The `DigicertAccount` custom resource (v1alpha1, cluster-scoped): a CertCentral
//! account (endpoint and API key) and what it grants to which namespaces, like
//! cert-manager's ClusterIssuer.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SecretKeySelector;

/// A CertCentral account that DigicertOrders in the selected namespaces may use:
/// where CertCentral is, the API key (a Secret in the operator's namespace), and
/// which orders and actions it grants.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "digicert-operator.dev",
    version = "v1alpha1",
    kind = "DigicertAccount",
    plural = "digicertaccounts",
    shortname = "dca",
    status = "DigicertAccountStatus",
    doc = "A DigiCert CertCentral account (endpoint and API key) and the namespaces, orders and actions it grants.",
    printcolumn = r#"{"name":"Endpoint","type":"string","jsonPath":".status.endpoint"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(cel)]
#[serde(rename_all = "camelCase")]
pub struct DigicertAccountSpec {
    /// Where CertCentral is. Default: the operator's --certcentral-url (and
    /// --ca-bundle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certcentral: Option<Endpoint>,

    /// The Secret with the API key, in the operator's own namespace (tenants cannot
    /// read it).
    pub api_key_secret_ref: SecretKeySelector,

    /// The namespace of the operator that serves this account (where its API key
    /// Secret is), when a cluster runs more than one. Unset: the operators started
    /// with `--serve-unassigned` (the default) serve it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub operator_namespace: Option<String>,

    /// The namespaces whose DigicertOrders may use this account (`{}`: every
    /// namespace). Required, so that nothing is granted by accident.
    pub namespace_selector: LabelSelector,

    /// The CertCentral orders that may be driven with this account. Empty: any order
    /// of the account.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000), inner(range(min = 1)))]
    #[x_kube(validation = Rule::new("self.all(x, self.exists_one(y, y == x))").message("orderIds must not repeat"))]
    pub order_ids: Vec<u64>,

    /// DigicertOrders may approve reissue requests with this account's key
    /// (`spec.approveReissues`).
    #[serde(default)]
    pub allow_approval: bool,

    /// `deletionPolicy: CancelPending` may cancel a pending *order* (not only the
    /// DigicertOrder's own pending reissue, which is always allowed).
    #[serde(default)]
    pub allow_order_cancel: bool,

    /// How the operator completes DigiCert's domain validation for the orders of
    /// this account (a DigicertOrder's own `domainValidation` replaces it). A TSIG
    /// Secret named here is read from the operator's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_validation: Option<super::DomainValidationSpec>,
}

/// A CertCentral endpoint.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(cel)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// `us`, `eu`, or an https URL (e.g. `https://certcentral.example/services/v2`).
    #[schemars(
        length(min = 2, max = 2048),
        regex(pattern = r"^(us|eu|https://[^\s/?#]+(/[^\s?#]*)?)$")
    )]
    pub url: String,

    /// CA certificates (PEM) to trust for this endpoint besides the system's (and the
    /// operator's --ca-bundle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 262144))]
    #[x_kube(validation = Rule::new("self.contains('-----BEGIN CERTIFICATE-----')").message("caBundle must hold PEM certificates"))]
    pub ca_bundle: Option<String>,
}

/// What the operator observed.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DigicertAccountStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`: the API key Secret exists and holds a key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The CertCentral endpoint in use (the spec's, or the operator's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(extra: serde_json::Value) -> serde_json::Value {
        let mut base = json!({
            "apiKeySecretRef": {"name": "payments-key"},
            "namespaceSelector": {},
        });
        base.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        base
    }

    #[test]
    fn defaults_grant_nothing_beyond_the_selector() {
        let s: DigicertAccountSpec = serde_json::from_value(spec(json!({}))).unwrap();
        assert_eq!(s.certcentral, None);
        assert_eq!(s.api_key_secret_ref.key, "api-key");
        assert!(s.order_ids.is_empty());
        assert!(!s.allow_approval);
        assert!(!s.allow_order_cancel);
        // The selector is required.
        let mut missing = spec(json!({}));
        missing.as_object_mut().unwrap().remove("namespaceSelector");
        assert!(serde_json::from_value::<DigicertAccountSpec>(missing).is_err());
    }

    #[test]
    fn cel_rules_refuse_repeated_orders_and_non_pem_bundles() {
        let cases = [
            (spec(json!({"orderIds": [1, 2]})), true),
            (spec(json!({"orderIds": [1, 2, 1]})), false),
        ];
        for (value, ok) in cases {
            let result = DigicertAccountSpec::validate_cel(&value, None);
            assert_eq!(result.is_ok(), ok, "{value}: {result:?}");
        }
        let cases = [
            (json!({"url": "eu"}), true),
            (
                json!({"url": "eu", "caBundle": "-----BEGIN CERTIFICATE-----\nMII..."}),
                true,
            ),
            (json!({"url": "eu", "caBundle": "not a certificate"}), false),
        ];
        for (value, ok) in cases {
            let result = Endpoint::validate_cel(&value, None);
            assert_eq!(result.is_ok(), ok, "{value}: {result:?}");
        }
    }

    #[test]
    fn the_crd_is_cluster_scoped_with_its_columns() {
        let crd = serde_json::to_value(crate::crd::account_crd()).unwrap();
        assert_eq!(crd["spec"]["scope"], "Cluster");
        assert_eq!(crd["spec"]["names"]["shortNames"][0], "dca");
        let version = &crd["spec"]["versions"][0];
        assert!(version["subresources"]["status"].is_object());
        let columns: Vec<&str> = version["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(columns, ["Endpoint", "Ready", "Reason", "Age"]);
        let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
        let required: Vec<&str> = spec["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        assert!(required.contains(&"namespaceSelector"), "{required:?}");
        assert!(required.contains(&"apiKeySecretRef"), "{required:?}");
        let ids = &spec["properties"]["orderIds"]["items"];
        assert_eq!(ids["minimum"], 1.0);
        assert!(ids.get("format").is_none());
    }
}
