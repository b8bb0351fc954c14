//! The cert-manager external issuers (v1alpha1): `DigicertIssuer` (namespaced) and
//! `DigicertClusterIssuer` (cluster-scoped). They sign cert-manager
//! `CertificateRequest`s by reissuing, or duplicating, a CertCentral order. Both kinds
//! share one spec.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{AccountRef, DomainValidationSpec, Issuance, SignatureHash};

/// The annotation on a `Certificate` (cert-manager copies it to its requests) naming
/// the CertCentral order to use, when the issuer names none.
pub const ORDER_ID_ANNOTATION: &str = "digicert-operator.dev/order-id";
/// The annotation on a `CertificateRequest` recording what was sent to DigiCert for
/// it (written before the send): it keeps a crash or a restart from sending twice.
pub const ISSUANCE_ANNOTATION: &str = "digicert-operator.dev/issuance";

pub const ISSUER_KIND: &str = "DigicertIssuer";
pub const CLUSTER_ISSUER_KIND: &str = "DigicertClusterIssuer";

/// The spec of both issuer kinds; written once, expanded for each.
macro_rules! issuer_spec {
    ($(#[$attr:meta])* pub struct $name:ident;) => {
        $(#[$attr])*
        #[kube(
            status = "DigicertIssuerStatus",
            printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
            printcolumn = r#"{"name":"Order","type":"integer","jsonPath":".spec.orderId"}"#,
            printcolumn = r#"{"name":"Issuance","type":"string","jsonPath":".spec.issuance"}"#,
            printcolumn = r#"{"name":"Account","type":"string","jsonPath":".status.account"}"#,
            printcolumn = r#"{"name":"Reason","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
            printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
        )]
        #[x_kube(
            cel,
            validation = Rule::new("self.issuance != 'Duplicate' || (!self.allowRevocationOfPrevious && !has(self.domainValidation))").message("allowRevocationOfPrevious and domainValidation belong to an issuer that reissues the order, not to one that takes duplicates")
        )]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            /// The DigicertAccount (cluster-scoped) whose endpoint and API key to use. It
            /// must select the namespace of each request, and allow its order. Default:
            /// the operator's default account.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub account_ref: Option<AccountRef>,

            /// The CertCentral order whose certificate each request gets (by a reissue or
            /// a duplicate). Unset: each Certificate names its order with the annotation
            /// `digicert-operator.dev/order-id`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(range(min = 1))]
            pub order_id: Option<u64>,

            /// Reissue (default): each request reissues the order, and one Certificate
            /// drives an order (the first to use it; others wait until it is gone).
            /// Duplicate: each request takes a duplicate of the order's current
            /// certificate, for names among that certificate's, so several Certificates
            /// and clusters can share one order.
            #[serde(default)]
            pub issuance: Issuance,

            /// Let reissues that drop names of the order's current certificate go ahead
            /// without asking. DigiCert then revokes the order's earlier certificates and
            /// all its duplicates within 72 hours. Without it, such a request waits for
            /// the allow-revocation annotation (on the request, its Certificate or this
            /// issuer) with the fingerprint its Ready message shows.
            #[serde(default)]
            pub allow_revocation_of_previous: bool,

            /// Ask DigiCert to skip the approval step (the API key needs the right to).
            #[serde(default)]
            pub skip_approval: bool,

            /// Approve requests that wait for an administrator at DigiCert, with the API
            /// key (the account must allow it, and the key needs approver rights).
            #[serde(default)]
            pub approve_reissues: bool,

            /// Hash of the certificate's signature.
            #[serde(default)]
            pub signature_hash: SignatureHash,

            /// DigiCert's server platform id, sent with each request. Unset: none.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub server_platform_id: Option<i64>,

            /// A message sent with each request.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(length(max = 1000))]
            pub comments: Option<String>,

            /// How the operator completes DigiCert's domain validation when a reissue
            /// waits for it; replaces the account's `domainValidation` as a whole. A
            /// TSIG Secret named here is read from the issuer's namespace (a
            /// DigicertIssuer) or the operator's (a DigicertClusterIssuer).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub domain_validation: Option<DomainValidationSpec>,
        }
    };
}

issuer_spec! {
    /// Signs cert-manager CertificateRequests of this namespace through a CertCentral
    /// order: each request reissues the order, or takes a duplicate of it.
    #[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
    #[kube(
        group = "digicert-operator.dev",
        version = "v1alpha1",
        kind = "DigicertIssuer",
        plural = "digicertissuers",
        shortname = "dci",
        namespaced,
        doc = "A cert-manager issuer for this namespace that signs requests by reissuing or duplicating a DigiCert CertCentral order."
    )]
    pub struct DigicertIssuerSpec;
}

issuer_spec! {
    /// Signs cert-manager CertificateRequests of any namespace its account selects
    /// through a CertCentral order: each request reissues the order, or takes a
    /// duplicate of it.
    #[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
    #[kube(
        group = "digicert-operator.dev",
        version = "v1alpha1",
        kind = "DigicertClusterIssuer",
        plural = "digicertclusterissuers",
        shortname = "dcci",
        doc = "A cert-manager issuer for every namespace its account selects that signs requests by reissuing or duplicating a DigiCert CertCentral order."
    )]
    pub struct DigicertClusterIssuerSpec;
}

/// What an issuer's status says: whether requests can be signed with it.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DigicertIssuerStatus {
    /// Ready: the account exists and grants this issuer's namespace (and order), its
    /// API key is there, and DigiCert answers for the order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The DigicertAccount in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The generation of the spec the status is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The spec both kinds share, whichever kind an issuer is.
pub type IssuerSpec = DigicertIssuerSpec;

impl From<DigicertClusterIssuerSpec> for DigicertIssuerSpec {
    fn from(s: DigicertClusterIssuerSpec) -> Self {
        DigicertIssuerSpec {
            account_ref: s.account_ref,
            order_id: s.order_id,
            issuance: s.issuance,
            allow_revocation_of_previous: s.allow_revocation_of_previous,
            skip_approval: s.skip_approval,
            approve_reissues: s.approve_reissues,
            signature_hash: s.signature_hash,
            server_platform_id: s.server_platform_id,
            comments: s.comments,
            domain_validation: s.domain_validation,
        }
    }
}
