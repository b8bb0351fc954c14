//! Wire types of the CertCentral Services API v2, shared by the client and the simulator.
//!
//! Fields DigiCert documents as optional, or that only appear in some states, are
//! `Option` and skipped when absent, so the simulator writes what DigiCert writes.
//! Enumerations keep unknown values (`Other`) instead of failing: DigiCert adds
//! states over time and an unknown one must not break a reconcile.

use serde::{Deserialize, Serialize};

/// The API operations the operator uses. The names are stable: they label metrics,
/// the simulator's call counters and its fault injection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// `GET /order/certificate/{order_id}`
    OrderInfo,
    /// `POST /order/certificate/{order_id}/reissue`
    Reissue,
    /// `GET /order/certificate/{order_id}/reissue`
    ListReissues,
    /// `PUT /order/certificate/{order_id}/status`
    UpdateOrderStatus,
    /// `PUT /order/certificate/{order_id}/auto-reissue`
    UpdateAutoReissue,
    /// `GET /certificate/{certificate_id}/download/format/{format}` and the by-order variant
    Download,
    /// `GET /request/{request_id}`
    RequestInfo,
    /// `PUT /request/{request_id}/status`
    UpdateRequestStatus,
    /// `GET /order/certificate/{order_id}/validation`
    OrderValidation,
    /// `PUT /order/certificate/{order_id}/dcv-method`
    OrderDcvMethod,
    /// `PUT /order/certificate/{order_id}/dcv-random-value`
    OrderRandomValue,
    /// `PUT /order/certificate/{order_id}/check-dcv`
    CheckOrderDcv,
    /// `GET /domain`
    ListDomains,
    /// `GET /domain/{domain_id}`
    DomainInfo,
    /// `POST /domain/{domain_id}/validation`
    SubmitDomainValidation,
    /// `PUT /domain/{domain_id}/dcv/method`
    DomainDcvMethod,
    /// `POST /domain/{domain_id}/dcv/token`
    DomainToken,
    /// `PUT /domain/{domain_id}/dcv/validate-token`
    CheckDomainDcv,
    /// `POST /order/certificate/{order_id}/duplicate`
    Duplicate,
    /// `GET /order/certificate/{order_id}/duplicate`
    ListDuplicates,
    /// `PUT /certificate/{certificate_identifier}/revoke`
    RevokeCertificate,
    /// `PUT /order/certificate/{order_id}/revoke`
    RevokeOrder,
    /// `GET /order/certificate/status-changes`
    StatusChanges,
    /// `GET /order/certificate`
    ListOrders,
}

impl Operation {
    pub const ALL: [Operation; 24] = [
        Operation::OrderInfo,
        Operation::Reissue,
        Operation::ListReissues,
        Operation::UpdateOrderStatus,
        Operation::UpdateAutoReissue,
        Operation::Download,
        Operation::RequestInfo,
        Operation::UpdateRequestStatus,
        Operation::OrderValidation,
        Operation::OrderDcvMethod,
        Operation::OrderRandomValue,
        Operation::CheckOrderDcv,
        Operation::ListDomains,
        Operation::DomainInfo,
        Operation::SubmitDomainValidation,
        Operation::DomainDcvMethod,
        Operation::DomainToken,
        Operation::CheckDomainDcv,
        Operation::Duplicate,
        Operation::ListDuplicates,
        Operation::RevokeCertificate,
        Operation::RevokeOrder,
        Operation::StatusChanges,
        Operation::ListOrders,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::OrderInfo => "order_info",
            Operation::Reissue => "reissue",
            Operation::ListReissues => "list_reissues",
            Operation::UpdateOrderStatus => "update_order_status",
            Operation::UpdateAutoReissue => "update_auto_reissue",
            Operation::Download => "download",
            Operation::RequestInfo => "request_info",
            Operation::UpdateRequestStatus => "update_request_status",
            Operation::OrderValidation => "order_validation",
            Operation::OrderDcvMethod => "order_dcv_method",
            Operation::OrderRandomValue => "order_dcv_random_value",
            Operation::CheckOrderDcv => "check_order_dcv",
            Operation::ListDomains => "list_domains",
            Operation::DomainInfo => "domain_info",
            Operation::SubmitDomainValidation => "submit_domain_validation",
            Operation::DomainDcvMethod => "domain_dcv_method",
            Operation::DomainToken => "domain_dcv_token",
            Operation::CheckDomainDcv => "check_domain_dcv",
            Operation::Duplicate => "duplicate",
            Operation::ListDuplicates => "list_duplicates",
            Operation::RevokeCertificate => "revoke_certificate",
            Operation::RevokeOrder => "revoke_order",
            Operation::StatusChanges => "status_changes",
            Operation::ListOrders => "list_orders",
        }
    }

    /// Whether repeating the call after an ambiguous failure (a 5xx, a timeout, a reset
    /// after the request was sent) is harmless. A reissue is not: the first attempt may
    /// have been accepted, and a second one would replace it. Nor is a duplicate (a
    /// second certificate) or a revocation (a second request, or an error for a
    /// certificate the first attempt already revoked).
    pub fn is_idempotent(self) -> bool {
        !matches!(
            self,
            Operation::Reissue
                | Operation::Duplicate
                | Operation::RevokeCertificate
                | Operation::RevokeOrder
        )
    }

    /// Whether the call reads the whole account (the change feed) rather than one
    /// order: its cost is the key's, whatever the number of orders.
    pub fn is_account_wide(self) -> bool {
        matches!(self, Operation::StatusChanges | Operation::ListOrders)
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Operation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Operation::ALL
            .into_iter()
            .find(|op| op.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Operation::ALL.iter().map(|o| o.as_str()).collect();
                format!("unknown operation {s:?}; known: {}", names.join(", "))
            })
    }
}

/// Status of an order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    NeedsApproval,
    WaitingPickup,
    Issued,
    ReissuePending,
    Rejected,
    Canceled,
    Expired,
    Revoked,
    #[serde(untagged)]
    Other(String),
}

impl OrderStatus {
    pub fn as_str(&self) -> &str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::NeedsApproval => "needs_approval",
            OrderStatus::WaitingPickup => "waiting_pickup",
            OrderStatus::Issued => "issued",
            OrderStatus::ReissuePending => "reissue_pending",
            OrderStatus::Rejected => "rejected",
            OrderStatus::Canceled => "canceled",
            OrderStatus::Expired => "expired",
            OrderStatus::Revoked => "revoked",
            OrderStatus::Other(s) => s,
        }
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Status of one certificate in an order's reissue or duplicate list.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReissueStatus {
    Issued,
    Pending,
    Rejected,
    /// Documented for duplicates: the request is approved, issuance has not finished.
    Approved,
    /// Revoked on request, or by DigiCert some time after a reissue that removed names.
    Revoked,
    #[serde(untagged)]
    Other(String),
}

/// Status of a request (new order, reissue, ...).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Submitted,
    Pending,
    Approved,
    Rejected,
    #[serde(untagged)]
    Other(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerPlatform {
    pub id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The duplicate list shows these too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csr_url: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub name_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// The order's current certificate, as order info shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCertificate {
    pub id: u64,
    pub common_name: String,
    #[serde(default)]
    pub dns_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_issued: Option<String>,
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
    pub key_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_platform: Option<ServerPlatform>,
}

/// A request as it appears inside order info.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRequest {
    pub id: u64,
    pub status: RequestStatus,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
}

/// `GET /order/certificate/{order_id}`: the fields the operator uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderInfo {
    pub id: u64,
    pub status: OrderStatus,
    /// 1 when auto-reissue is on.
    #[serde(default)]
    pub auto_reissue: u8,
    /// End of a Multi-year Plan (`yyyy-MM-dd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_valid_till: Option<String>,
    pub certificate: OrderCertificate,
    #[serde(default)]
    pub requests: Vec<OrderRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<Product>,
}

/// The certificate part of a reissue request (seed 002).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReissueCertificateRequest {
    pub common_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_names: Vec<String>,
    /// PEM text, header and footer included.
    pub csr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_platform: Option<ServerPlatformId>,
    pub signature_hash: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerPlatformId {
    pub id: i64,
}

/// `POST /order/certificate/{order_id}/reissue` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReissueRequest {
    pub certificate: ReissueCertificateRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comments: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_approval: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRef {
    pub id: u64,
}

/// `201 Created` answer to a reissue: either the request that waits (approval or
/// validation), or with `skip_approval` and immediate issuance the new certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReissueResponse {
    pub id: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<RequestRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<u64>,
    /// With immediate issuance, the chain (leaf first) where DigiCert sends it (seen
    /// in third parties' clients, not documented: optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_chain: Option<Vec<ChainCertificate>>,
}

impl ReissueResponse {
    pub fn request_id(&self) -> Option<u64> {
        self.requests.first().map(|r| r.id)
    }

    /// The chain as one PEM text (leaf first), when the answer carries it: then the
    /// certificate need not be downloaded.
    pub fn chain_pem(&self) -> Option<String> {
        let chain = self.certificate_chain.as_ref().filter(|c| !c.is_empty())?;
        Some(
            chain
                .iter()
                .map(|c| format!("{}\n", c.pem.trim()))
                .collect(),
        )
    }
}

/// One entry of `GET /order/certificate/{order_id}/reissue` (seed 001).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReissueCertificate {
    pub id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    pub common_name: String,
    #[serde(default)]
    pub dns_names: Vec<String>,
    pub status: ReissueStatus,
    pub date_created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_issued: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_till: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_remaining: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firstname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lastname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchased_dns_names: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchased_wildcard_names: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReissueList {
    #[serde(default)]
    pub certificates: Vec<ReissueCertificate>,
}

/// `PUT /order/certificate/{order_id}/status` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderStatusUpdate {
    pub status: String,
    pub note: String,
}

/// `PUT /order/certificate/{order_id}/auto-reissue` body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoReissueUpdate {
    pub auto_reissue: u8,
}

/// `GET /request/{request_id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestInfo {
    pub id: u64,
    pub status: RequestStatus,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<RequestRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processor_comment: Option<String>,
}

/// `PUT /request/{request_id}/status` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestStatusUpdate {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processor_comment: Option<String>,
}

/// Certificate download formats the operator uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DownloadFormat {
    /// Leaf, intermediate(s), root.
    PemAll,
    /// Leaf and intermediate(s).
    PemNoroot,
}

impl DownloadFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            DownloadFormat::PemAll => "pem_all",
            DownloadFormat::PemNoroot => "pem_noroot",
        }
    }
}

/// One entry of an error answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorDetail {
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// `{"errors":[{"code":"...","message":"..."}]}`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub errors: Vec<ApiErrorDetail>,
}

impl ErrorBody {
    pub fn single(code: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorBody {
            errors: vec![ApiErrorDetail {
                code: code.into(),
                message: message.into(),
            }],
        }
    }
}

/// One certificate of an issued chain, leaf first (a duplicate's answer; a reissue's
/// answer where DigiCert sends it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainCertificate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_common_name: Option<String>,
    pub pem: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_001_reissue_list_parses() {
        let body = r#"{"certificates":[{"id":12345,"thumbprint":"<thumbprint>","serial_number":"<serial_number>","common_name":"example.com","dns_names":["yourexample.com","anotherexample.com","*.myexample.com"],"status":"issued","date_created":"2019-04-08T17:33:26+00:00","valid_till":"2020-04-08","days_remaining":267,"csr":"<csr>","key_size":2048,"user_id":1576,"email":"logan.nelson@example.com","firstname":"Logan","lastname":"Nelson","receipt_id":"1234","purchased_dns_names":"2","purchased_wildcard_names":"1"},{"id":23456,"common_name":"anewdomain.com","dns_names":["anewdomain.com"],"status":"rejected","date_created":"2018-11-14T19:57:09+00:00","csr":"<csr>","key_size":2048,"user_id":1576,"email":"logan.nelson@example.com","firstname":"Logan","lastname":"Nelson"},{"id":34567,"common_name":"example.net","dns_names":["example.net"],"status":"pending","date_created":"2018-11-15T22:41:43+00:00","csr":"<csr>","key_size":2048,"user_id":1576,"email":"logan.nelson@example.com","firstname":"Logan","lastname":"Nelson"}]}"#;
        let list: ReissueList = serde_json::from_str(body).unwrap();
        let statuses: Vec<_> = list.certificates.iter().map(|c| &c.status).collect();
        assert_eq!(
            statuses,
            [
                &ReissueStatus::Issued,
                &ReissueStatus::Rejected,
                &ReissueStatus::Pending
            ]
        );
        assert_eq!(
            list.certificates[0].valid_till.as_deref(),
            Some("2020-04-08")
        );
        assert_eq!(list.certificates[1].thumbprint, None);
        let revoked: ReissueStatus = serde_json::from_str(r#""revoked""#).unwrap();
        assert_eq!(revoked, ReissueStatus::Revoked);
        assert_eq!(
            serde_json::to_string(&ReissueStatus::Revoked).unwrap(),
            r#""revoked""#
        );
    }

    #[test]
    fn seed_002_reissue_responses_parse() {
        let waiting: ReissueResponse =
            serde_json::from_str(r#"{"id":112233,"requests":[{"id":332211}]}"#).unwrap();
        assert_eq!(waiting.request_id(), Some(332211));
        assert_eq!(waiting.certificate_id, None);
        let issued: ReissueResponse =
            serde_json::from_str(r#"{"id":112233,"certificate_id":111112}"#).unwrap();
        assert_eq!(issued.request_id(), None);
        assert_eq!(issued.certificate_id, Some(111112));
    }

    #[test]
    fn seed_002_reissue_request_serializes_as_documented() {
        let req = ReissueRequest {
            certificate: ReissueCertificateRequest {
                common_name: "example.com".into(),
                dns_names: vec!["sub.example.com".into()],
                csr: "<csr>".into(),
                server_platform: Some(ServerPlatformId { id: 2 }),
                signature_hash: "sha256".into(),
            },
            comments: None,
            skip_approval: None,
        };
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"certificate":{"common_name":"example.com","dns_names":["sub.example.com"],"csr":"<csr>","server_platform":{"id":2},"signature_hash":"sha256"}})
        );
    }

    #[test]
    fn unknown_states_are_kept_not_rejected() {
        let s: OrderStatus = serde_json::from_str(r#""frozen""#).unwrap();
        assert_eq!(s, OrderStatus::Other("frozen".into()));
        assert_eq!(s.as_str(), "frozen");
        let s: OrderStatus = serde_json::from_str(r#""reissue_pending""#).unwrap();
        assert_eq!(s, OrderStatus::ReissuePending);
        assert_eq!(
            serde_json::to_string(&OrderStatus::NeedsApproval).unwrap(),
            r#""needs_approval""#
        );
    }

    #[test]
    fn operations_round_trip_through_their_names() {
        for op in Operation::ALL {
            assert_eq!(op.as_str().parse::<Operation>().unwrap(), op);
        }
        assert!("nope".parse::<Operation>().is_err());
        assert!(!Operation::Reissue.is_idempotent());
        assert!(Operation::ListReissues.is_idempotent());
        assert!(!Operation::Duplicate.is_idempotent());
        assert!(Operation::ListDuplicates.is_idempotent());
        assert!(!Operation::RevokeCertificate.is_idempotent());
        assert!(!Operation::RevokeOrder.is_idempotent());
    }

    #[test]
    fn a_reissue_answer_may_carry_the_chain() {
        let issued: ReissueResponse = serde_json::from_str(
            r#"{"id":1001,"certificate_id":100002,"certificate_chain":[
                {"subject_common_name":"example.com","pem":"LEAF"},
                {"subject_common_name":"Simulated Issuing CA","pem":"INTERMEDIATE"},
                {"pem":"ROOT"}]}"#,
        )
        .unwrap();
        assert_eq!(issued.certificate_id, Some(100002));
        let chain = issued.certificate_chain.clone().unwrap();
        assert_eq!(chain.len(), 3);
        assert_eq!(chain[0].subject_common_name.as_deref(), Some("example.com"));
        assert_eq!(chain[0].pem, "LEAF");
        assert_eq!(chain[2].subject_common_name, None);
        let waiting: ReissueResponse =
            serde_json::from_str(r#"{"id":1001,"requests":[{"id":5}]}"#).unwrap();
        assert_eq!(
            issued.chain_pem().as_deref(),
            Some("LEAF\nINTERMEDIATE\nROOT\n")
        );
        assert_eq!(waiting.certificate_chain, None);
        assert_eq!(waiting.chain_pem(), None);
        assert_eq!(waiting.request_id(), Some(5));
    }
}
