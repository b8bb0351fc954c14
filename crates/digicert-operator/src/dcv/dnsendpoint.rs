//! external-dns's `DNSEndpoint` (`externaldns.k8s.io/v1alpha1`): for clusters whose
//! DNS is run by external-dns, the validation record is published by creating one of
//! these and letting external-dns write it to the provider.
//!
//! The CRD belongs to external-dns: the operator never installs it (it is not among
//! `crate::crd::crds`). `deploy/externaldns/dnsendpoint-crd.yaml` mirrors it for tests.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::record::DnsRecord;

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "externaldns.k8s.io",
    version = "v1alpha1",
    kind = "DNSEndpoint",
    plural = "dnsendpoints",
    namespaced,
    status = "DNSEndpointStatus"
)]
pub struct DNSEndpointSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<Endpoint>,
}

/// One DNS record set, as external-dns models it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// The hostname of the record.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dns_name: String,
    /// `A`, `AAAA`, `CNAME`, `TXT`, ...
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub record_type: String,
    #[serde(default, rename = "recordTTL", skip_serializing_if = "Option::is_none")]
    pub record_ttl: Option<i64>,
    /// The record data; TXT text unquoted, names without the trailing dot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provider_specific: Vec<ProviderSpecificProperty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_identifier: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ProviderSpecificProperty {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DNSEndpointStatus {
    /// The generation external-dns last processed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The endpoint of one record.
pub fn endpoint(record: &DnsRecord) -> Endpoint {
    Endpoint {
        dns_name: record.fqdn(),
        record_type: record.record_type().to_string(),
        record_ttl: Some(i64::from(record.ttl)),
        targets: vec![record.value().to_string()],
        ..Endpoint::default()
    }
}

/// A DNSEndpoint `namespace/name` publishing `record`, with `labels` and an optional
/// owner (so that it goes when the owner goes).
pub fn endpoint_for(
    name: &str,
    namespace: &str,
    record: &DnsRecord,
    labels: BTreeMap<String, String>,
    owner: Option<OwnerReference>,
) -> DNSEndpoint {
    let mut object = DNSEndpoint::new(
        name,
        DNSEndpointSpec {
            endpoints: vec![endpoint(record)],
        },
    );
    object.metadata.namespace = Some(namespace.to_string());
    object.metadata.labels = (!labels.is_empty()).then_some(labels);
    object.metadata.owner_references = owner.map(|o| vec![o]);
    object
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_txt_token_becomes_an_unquoted_txt_endpoint() {
        let record = DnsRecord::txt_token("*.Example.com", "tok\"en");
        let labels = BTreeMap::from([("app".to_string(), "dcv".to_string())]);
        let ep = endpoint_for("dcv-1", "ns", &record, labels.clone(), None);
        let json = serde_json::to_value(&ep).unwrap();
        assert_eq!(json["apiVersion"], "externaldns.k8s.io/v1alpha1");
        assert_eq!(json["kind"], "DNSEndpoint");
        assert_eq!(json["metadata"]["namespace"], "ns");
        assert_eq!(json["metadata"]["labels"]["app"], "dcv");
        assert!(json["metadata"].get("ownerReferences").is_none());
        assert_eq!(
            json["spec"],
            serde_json::json!({"endpoints": [{
                "dnsName": "example.com",
                "recordType": "TXT",
                "recordTTL": 60,
                "targets": ["tok\"en"],
            }]})
        );
    }

    #[test]
    fn a_cname_token_has_its_target_without_the_trailing_dot_and_an_owner() {
        let record = DnsRecord::cname_token("shop.example.com", "abc");
        let owner = OwnerReference {
            api_version: "digicert-operator.dev/v1alpha1".into(),
            kind: "DigicertOrder".into(),
            name: "o".into(),
            uid: "uid-1".into(),
            controller: Some(true),
            ..OwnerReference::default()
        };
        let ep = endpoint_for("dcv-2", "ns", &record, BTreeMap::new(), Some(owner.clone()));
        assert_eq!(ep.metadata.owner_references, Some(vec![owner]));
        assert_eq!(ep.metadata.labels, None);
        let e = &ep.spec.endpoints[0];
        assert_eq!(e.dns_name, "_dnsauth.shop.example.com");
        assert_eq!(e.record_type, "CNAME");
        assert_eq!(e.targets, ["abc.dcv.digicert.com"]);
    }

    #[test]
    fn the_operator_does_not_install_external_dns_crd() {
        let names: Vec<String> = crate::crd::crds()
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .collect();
        assert!(
            !names.iter().any(|n| n.contains("externaldns")),
            "{names:?}"
        );
    }
}
