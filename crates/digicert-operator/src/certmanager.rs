//! The part of cert-manager's API (cert-manager.io/v1) the external issuer reads and
//! writes: `CertificateRequest`s, and the `Certificate`s they come from. cert-manager
//! owns these CRDs; nothing here generates them. Fields the issuer does not use are
//! left out: status writes are merge patches of the fields below, so nothing else of
//! a request is ever replaced.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use serde::{Deserialize, Serialize};

pub const GROUP: &str = "cert-manager.io";
/// The annotation cert-manager puts on a request: the `Certificate` it is for.
pub const CERTIFICATE_NAME_ANNOTATION: &str = "cert-manager.io/certificate-name";

/// The condition types and reasons of cert-manager's contract with issuers.
pub mod condition {
    pub const READY: &str = "Ready";
    pub const APPROVED: &str = "Approved";
    pub const DENIED: &str = "Denied";
    pub const INVALID_REQUEST: &str = "InvalidRequest";

    pub const PENDING: &str = "Pending";
    pub const ISSUED: &str = "Issued";
    pub const FAILED: &str = "Failed";
    /// The Ready reason of a denied request, and of an invalid one.
    pub const DENIED_REASON: &str = "Denied";
    pub const INVALID_REASON: &str = "InvalidRequest";
}

/// A request for a certificate from an issuer, with the CSR cert-manager made.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "cert-manager.io",
    version = "v1",
    kind = "CertificateRequest",
    plural = "certificaterequests",
    namespaced,
    status = "CertificateRequestStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRequestSpec {
    /// The issuer asked to sign.
    pub issuer_ref: IssuerRef,
    /// The PEM CSR, base64-encoded.
    #[serde(default)]
    pub request: String,
    #[serde(default, rename = "isCA", skip_serializing_if = "Option::is_none")]
    pub is_ca: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub usages: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct IssuerRef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRequestStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<RequestCondition>,
    /// The issued certificate and its intermediates, PEM, base64-encoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// The CA certificate of the chain (PEM, base64-encoded), where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// When the request failed (cert-manager retries a failed request after a while).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_time: Option<Time>,
}

/// A condition of a request (cert-manager's own type: no observedGeneration).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RequestCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
}

impl CertificateRequestStatus {
    pub fn find(&self, type_: &str) -> Option<&RequestCondition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    pub fn is_true(&self, type_: &str) -> bool {
        self.find(type_).is_some_and(|c| c.status == "True")
    }
}

impl CertificateRequest {
    /// The request's CSR as PEM text (`None`: not base64, or not text).
    pub fn csr_pem(&self) -> Option<String> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(self.spec.request.trim())
            .ok()?;
        String::from_utf8(bytes).ok()
    }

    pub fn status_or_default(&self) -> CertificateRequestStatus {
        self.status.clone().unwrap_or_default()
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .map(String::as_str)
    }
}

/// cert-manager's `Certificate`: only looked up, as the stable holder of an order's
/// claim across the requests of its renewals.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "cert-manager.io",
    version = "v1",
    kind = "Certificate",
    plural = "certificates",
    namespaced,
    schema = "disabled"
)]
pub struct CertificateSpec {
    #[serde(flatten)]
    pub rest: BTreeMap<String, serde_json::Value>,
}
