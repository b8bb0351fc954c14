//! What a DigicertOrder's status says: conditions, the order at DigiCert, the
//! certificate in the Secret, the reissue in flight, failures, what a reissue would
//! revoke. Times are Kubernetes `Time` (RFC 3339).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::DomainValidationStatus;

/// What the operator observed and did.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DigicertOrderStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`: the Secret holds a valid certificate for the spec. `Issuing`: a reissue
    /// is under way. `OrderExpiring`: the order ends before the next renewal.
    /// `DomainValidation`: whether DigiCert's domain validation is current, under way
    /// or failing (with domainValidation configured).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The account the order is driven with: a DigicertAccount's name, or
    /// `namespace key <secret>` for a key in the order's own namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The claim on the CertCentral order: the Lease (in the operator's namespace) that
    /// makes this resource the order's only driver, or the resource that holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<String>,
    /// The order the current certificate was issued for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_order_id: Option<u64>,
    /// When the operator last read the order at DigiCert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_order_check: Option<Time>,
    /// The order's status at DigiCert (issued, reissue_pending, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_status: Option<String>,
    /// The order's auto-reissue setting as DigiCert reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_reissue: Option<bool>,
    /// The last day of the order (Multi-year Plan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_valid_till: Option<String>,
    /// The certificate in the Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateStatus>,
    /// When the operator will reissue (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_time: Option<Time>,
    /// The reissue in flight, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reissue: Option<ReissueStatus>,
    /// Failures in a row; reset by success.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed_attempts: u32,
    /// When the last failure happened (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_time: Option<Time>,
    /// What failed last and why, while failures last (e.g. a DigiCert call that the
    /// conditions do not show because the certificate in the Secret is still good).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
    /// No DigiCert call before this time (back-off after failures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_time: Option<Time>,
    /// Certificates written to the Secret so far.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub revision: u32,
    /// The last value of the renew annotation acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_renew_request: Option<String>,
    /// The last value of the cancel annotation acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_cancel_request: Option<String>,
    /// After a requested cancel: no reissue starts while the spec is at this
    /// generation (unless a renewal is requested).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_generation: Option<i64>,
    /// Domain validation: each domain's state and expiry, and a validation under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_validation: Option<DomainValidationStatus>,
    /// A reissue held because it would make DigiCert revoke certificates: what, and
    /// the fingerprint to agree with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_guard: Option<RevocationGuardStatus>,
    /// The order's certificate (id) that the duplicate in the Secret copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<u64>,
    /// The certificate in the Secret was found revoked at DigiCert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<RevokedStatus>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RevocationGuardStatus {
    /// Names the order's current certificate carries that the reissue would drop.
    pub dropped_names: Vec<String>,
    /// The value of the allow-revocation annotation that lets this reissue go ahead.
    pub fingerprint: String,
    /// The certificates DigiCert would revoke.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub would_revoke: Vec<AtRiskCertificate>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AtRiskCertificate {
    /// DigiCert's certificate id.
    pub certificate_id: u64,
    /// The certificate's serial number (upper-case hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    /// current, reissue or duplicate.
    pub kind: String,
    /// Secrets (namespace/name) of DigicertOrders known to hold it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RevokedStatus {
    /// DigiCert's id of the revoked certificate.
    pub certificate_id: u64,
    /// Its serial number (upper-case hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    /// When the operator found it revoked.
    pub detected_at: Time,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CertificateStatus {
    /// DigiCert's certificate id.
    pub id: u64,
    /// The serial number, upper-case hex.
    pub serial_number: String,
    /// SHA-1 of the certificate, upper-case hex (as DigiCert shows it).
    pub thumbprint: String,
    /// Start of the validity (RFC 3339).
    pub not_before: Time,
    /// End of the validity (RFC 3339).
    pub not_after: Time,
    /// The names the certificate secures (its subject alternative names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_names: Vec<String>,
}

/// Where a reissue stands.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReissueState {
    /// Key and CSR made and stored; not sent yet.
    Prepared,
    /// About to be sent: if no request id follows, it may or may not have arrived.
    Submitting,
    /// Accepted by DigiCert; followed until issued.
    Submitted,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ReissueStatus {
    pub state: ReissueState,
    /// Why: Missing, Invalid, SpecChanged, Renewal, Manual, ...
    pub reason: String,
    /// SHA-256 of the CSR (DER), to find the reissue at DigiCert.
    pub csr_fingerprint: String,
    /// Fingerprint of the spec fields the CSR was made for; a change makes the
    /// reissue obsolete.
    pub spec_fingerprint: String,
    /// The Secret that holds the new key until the certificate is written.
    pub key_secret_name: String,
    /// DigiCert's id of the request, when its answer named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<u64>,
    /// DigiCert's id of the certificate being issued, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<u64>,
    /// When the request was sent (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<Time>,
    /// A duplicate of the order's certificate rather than a reissue.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    /// The names requested (a duplicate's come from the order's current certificate).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// The order's certificate a duplicate copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<u64>,
    /// The CSR (PEM), when it was made with the key the certificate Secret already
    /// holds (`rotationPolicy: Never`): nothing secret is new, so no key Secret is
    /// written; the CSR is public and kept here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csr: Option<String>,
}
