//! Wire types of duplicate certificates and revocation: `POST`/`GET
//! /order/certificate/{order_id}/duplicate`, `PUT /certificate/{id}/revoke` and `PUT
//! /order/certificate/{order_id}/revoke`.
//!
//! DigiCert does not show the duplicate answer; its shape follows a public client
//! library, so every part of it is optional when reading.

use serde::{Deserialize, Serialize};

use super::types::{
    ChainCertificate, ReissueStatus, RequestStatus, ServerPlatform, ServerPlatformId,
};

/// The certificate part of a duplicate request. The names must be the order's current
/// names (any of them may be the common name); CSR, platform and hash may differ.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateCertificateRequest {
    pub common_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_names: Vec<String>,
    /// PEM text, header and footer included.
    pub csr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_platform: Option<ServerPlatformId>,
    pub signature_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert_id: Option<String>,
}

/// `POST /order/certificate/{order_id}/duplicate` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateRequest {
    pub certificate: DuplicateCertificateRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_approval: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comments: Option<String>,
}

/// A request as the duplicate answer names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateRequestRef {
    pub id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RequestStatus>,
}

/// `201 Created` answer to a duplicate request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateResponse {
    /// The order id.
    pub id: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<DuplicateRequestRef>,
    /// Present when the duplicate was issued at once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificate_chain: Vec<ChainCertificate>,
}

impl DuplicateResponse {
    pub fn request_id(&self) -> Option<u64> {
        self.requests.first().map(|r| r.id)
    }

    /// The leaf's PEM, when the answer carries the chain.
    pub fn leaf_pem(&self) -> Option<&str> {
        self.certificate_chain.first().map(|c| c.pem.as_str())
    }
}

/// One entry of `GET /order/certificate/{order_id}/duplicate`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateCertificate {
    /// The certificate id: downloads take it.
    pub id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    pub common_name: String,
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// `issued`, `pending`, `rejected`, `approved` or `revoked`.
    pub status: ReissueStatus,
    /// ISO 8601.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_created: Option<String>,
    /// `yyyy-MM-dd`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<String>,
    /// `yyyy-MM-dd`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_till: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_remaining: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_platform: Option<ServerPlatform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_id: Option<String>,
    /// `"0"` or `"1"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firstname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lastname: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateList {
    #[serde(default)]
    pub certificates: Vec<DuplicateCertificate>,
}

/// `PUT /certificate/{certificate_identifier}/revoke` body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comments: Option<String>,
    /// Revoke at once instead of asking an administrator (needs an admin key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_approval: Option<bool>,
}

/// Why an order's certificates are revoked (TLS).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RevocationReason {
    Unspecified,
    KeyCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    #[serde(untagged)]
    Other(String),
}

/// `PUT /order/certificate/{order_id}/revoke` body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeOrderRequest {
    /// Default `unspecified`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_reason: Option<RevocationReason>,
    /// DigiCert's table spells the field `comment`, its examples `comments`; the
    /// examples' spelling is sent and both are read.
    #[serde(default, alias = "comment", skip_serializing_if = "Option::is_none")]
    pub comments: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_approval: Option<bool>,
}

/// Who asked for a revocation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    pub id: u64,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub email: String,
}

/// `201 Created` answer to a revoke call that waits for an administrator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeRequestInfo {
    pub id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// `revoke`
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub status: RequestStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester: Option<Requester>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comments: Option<String>,
}

/// What a revoke call did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// `204`: revoked at once.
    Revoked,
    /// `201`: a request an administrator approves (`PUT /request/{id}/status`).
    Requested(RevokeRequestInfo),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_answers_parse_with_or_without_their_parts() {
        let full: DuplicateResponse = serde_json::from_str(
            r#"{"id":1,"requests":[{"id":7,"status":"approved"}],"certificate_chain":[{"subject_common_name":"example.com","pem":"A"},{"subject_common_name":"CA","pem":"B"}]}"#,
        )
        .unwrap();
        assert_eq!(full.request_id(), Some(7));
        assert_eq!(full.requests[0].status, Some(RequestStatus::Approved));
        assert_eq!(full.leaf_pem(), Some("A"));
        let bare: DuplicateResponse = serde_json::from_str(r#"{"id":1}"#).unwrap();
        assert_eq!(bare.request_id(), None);
        assert_eq!(bare.leaf_pem(), None);
    }

    #[test]
    fn duplicate_list_entries_parse_as_documented() {
        let body = r#"{"certificates":[{"id":5,"thumbprint":"T","serial_number":"S","common_name":"example.com","dns_names":["example.com"],"status":"approved","date_created":"2019-04-08T17:33:26+00:00","valid_from":"2019-04-08","valid_till":"2020-04-08","days_remaining":267,"csr":"C","server_platform":{"id":-1,"name":"OTHER","install_url":"","csr_url":""},"signature_hash":"sha256","key_size":2048,"ca_cert_id":"ABC","sub_id":"1","public_id":"P","archived":"0","user_id":12,"firstname":"A","lastname":"B"},{"id":6,"common_name":"example.com","status":"revoked"}]}"#;
        let list: DuplicateList = serde_json::from_str(body).unwrap();
        assert_eq!(list.certificates[0].status, ReissueStatus::Approved);
        assert_eq!(list.certificates[0].archived.as_deref(), Some("0"));
        assert_eq!(list.certificates[1].status, ReissueStatus::Revoked);
    }

    #[test]
    fn revocation_reasons_use_the_documented_spelling() {
        let req = RevokeOrderRequest {
            revocation_reason: Some(RevocationReason::CessationOfOperation),
            comments: Some("gone".into()),
            skip_approval: Some(true),
        };
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            serde_json::json!({"revocation_reason":"cessationOfOperation","comments":"gone","skip_approval":true})
        );
        let read: RevokeOrderRequest =
            serde_json::from_str(r#"{"revocation_reason":"keyCompromise","comment":"x"}"#).unwrap();
        assert_eq!(
            read.revocation_reason,
            Some(RevocationReason::KeyCompromise)
        );
        assert_eq!(read.comments.as_deref(), Some("x"));
        let odd: RevokeOrderRequest =
            serde_json::from_str(r#"{"revocation_reason":"because"}"#).unwrap();
        assert_eq!(
            odd.revocation_reason,
            Some(RevocationReason::Other("because".into()))
        );
    }
}
