//! Domain control validation (DCV) wire types: the order-level endpoints
//! (`/order/certificate/{id}/validation`, `dcv-method`, `dcv-random-value`,
//! `check-dcv`) and the domain endpoints (`/domain`, `/domain/{id}/...`).

use serde::{Deserialize, Deserializer, Serialize};

/// How DigiCert checks control of a domain.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DcvMethod {
    Email,
    DnsTxtToken,
    DnsCnameToken,
    HttpToken,
    HttpTokenDynamic,
    #[serde(untagged)]
    Other(String),
}

impl DcvMethod {
    pub fn as_str(&self) -> &str {
        match self {
            DcvMethod::Email => "email",
            DcvMethod::DnsTxtToken => "dns-txt-token",
            DcvMethod::DnsCnameToken => "dns-cname-token",
            DcvMethod::HttpToken => "http-token",
            DcvMethod::HttpTokenDynamic => "http-token-dynamic",
            DcvMethod::Other(s) => s,
        }
    }

    /// The methods a client can complete without a person: a token placed in DNS or
    /// on a web server.
    pub fn is_token(&self) -> bool {
        matches!(
            self,
            DcvMethod::DnsTxtToken | DcvMethod::DnsCnameToken | DcvMethod::HttpToken
        )
    }
}

impl std::fmt::Display for DcvMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Ids documented as strings in some answers and integers in others.
fn id_from_string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        N(u64),
        S(String),
    }
    match Id::deserialize(d)? {
        Id::N(n) => Ok(n),
        Id::S(s) => s.trim().parse().map_err(serde::de::Error::custom),
    }
}

/// `GET /order/certificate/{order_id}/validation`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderValidation {
    #[serde(default)]
    pub order_status: Option<String>,
    /// `base_domain` or `fqdn`.
    #[serde(default)]
    pub order_name_scope: Option<String>,
    #[serde(default)]
    pub order_dcv_method: Option<DcvMethod>,
    #[serde(default)]
    pub dns_name_validations: Vec<DnsNameValidation>,
}

/// One validated (or to-be-validated) domain of an order, and the order's names it covers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DnsNameValidation {
    #[serde(deserialize_with = "id_from_string_or_number")]
    pub domain_id: u64,
    /// The domain that is validated (covers `dns_names`).
    pub name_scope: String,
    #[serde(default)]
    pub approval_scope: Option<String>,
    /// `approved` or `pending`.
    pub status: String,
    #[serde(default)]
    pub method: Option<DcvMethod>,
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// When the completed validation stops being reusable: a date (`yyyy-MM-dd`) or an
    /// ISO 8601 time; absent while pending.
    #[serde(default)]
    pub approval_expiration_date: Option<String>,
}

/// `PUT /order/certificate/{order_id}/dcv-random-value`, and the token answer of
/// `PUT /order/certificate/{order_id}/dcv-method`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderRandomValue {
    pub dcv_random_value: String,
    #[serde(default)]
    pub expiration_date: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DcvMethodUpdate {
    pub dcv_method: DcvMethod,
}

/// `PUT /order/certificate/{order_id}/check-dcv` (200).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckDcv {
    #[serde(default)]
    pub order_status: Option<String>,
    #[serde(default)]
    pub certificate_id: Option<u64>,
    #[serde(default)]
    pub dcv_status: Option<String>,
    #[serde(default)]
    pub dns_name_validations: Vec<CheckedName>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckedName {
    pub dns_name: String,
    pub status: String,
}

/// `GET /domain`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DomainList {
    #[serde(default)]
    pub domains: Vec<DomainInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<Page>,
}

/// Paging of a list answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Page {
    pub total: u64,
    pub limit: u64,
    pub offset: u64,
}

/// `GET /domain/{domain_id}` (with `include_dcv=true`), and one entry of `GET /domain`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DomainInfo {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub is_active: Option<bool>,
    #[serde(default)]
    pub is_pending_validation: Option<bool>,
    #[serde(default)]
    pub dcv_method: Option<DcvMethod>,
    /// The latest completed validation (ISO 8601 UTC).
    #[serde(default)]
    pub dcv_approval_datetime: Option<String>,
    /// When that validation stops being reusable (ISO 8601 UTC).
    #[serde(default)]
    pub dcv_expiration_datetime: Option<String>,
    #[serde(default)]
    pub dcv_token: Option<DcvToken>,
}

/// A domain random value ("token") and where it goes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DcvToken {
    pub token: String,
    /// `pending` or `active`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub expiration_date: Option<String>,
    /// CNAME only; documented as the legacy `dcv.digicert.com` target, not used.
    #[serde(default)]
    pub verification_value: Option<String>,
    /// HTTP only: the URL where the file goes.
    #[serde(default)]
    pub http_token_url: Option<String>,
}

/// `POST /domain/{domain_id}/validation`
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SubmitValidation {
    pub validations: Vec<ValidationType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dcv_method: Option<DcvMethod>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ValidationType {
    /// `ov` or `ev`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// The 201 answer of `POST /domain/{domain_id}/validation` and of
/// `PUT /domain/{domain_id}/dcv/method`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DomainTokenAnswer {
    /// The domain's id (in the answer of Submit for validation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dcv_token: Option<DcvToken>,
}

/// `PUT /domain/{domain_id}/dcv/validate-token` (200).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValidateToken {
    #[serde(default)]
    pub token: Option<String>,
    /// `active` once validated.
    pub status: String,
}
