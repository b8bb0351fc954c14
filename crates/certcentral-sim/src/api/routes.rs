//! Which CertCentral call a request is: the method and path of each endpoint the
//! simulator answers, mapped to a [`Call`] with its ids.

use axum::http::Method;

use certcentral::Operation;

/// A routed call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Call {
    OrderInfo(u64),
    Reissue(u64),
    ListReissues(u64),
    UpdateOrderStatus(u64),
    UpdateAutoReissue(u64),
    Download { certificate: u64, format: String },
    DownloadByOrder { order: u64, format: String },
    RequestInfo(u64),
    UpdateRequestStatus(u64),
    OrderValidation(u64),
    OrderDcvMethod(u64),
    OrderRandomValue(u64),
    CheckOrderDcv(u64),
    ListDomains,
    DomainInfo(u64),
    SubmitDomainValidation(u64),
    DomainDcvMethod(u64),
    DomainToken(u64),
    CheckDomainDcv(u64),
    Duplicate(u64),
    ListDuplicates(u64),
    RevokeCertificate(String),
    RevokeOrder(u64),
    StatusChanges,
    ListOrders,
}

impl Call {
    pub(super) fn operation(&self) -> Operation {
        match self {
            Call::OrderInfo(_) => Operation::OrderInfo,
            Call::Reissue(_) => Operation::Reissue,
            Call::ListReissues(_) => Operation::ListReissues,
            Call::UpdateOrderStatus(_) => Operation::UpdateOrderStatus,
            Call::UpdateAutoReissue(_) => Operation::UpdateAutoReissue,
            Call::Download { .. } | Call::DownloadByOrder { .. } => Operation::Download,
            Call::RequestInfo(_) => Operation::RequestInfo,
            Call::UpdateRequestStatus(_) => Operation::UpdateRequestStatus,
            Call::OrderValidation(_) => Operation::OrderValidation,
            Call::OrderDcvMethod(_) => Operation::OrderDcvMethod,
            Call::OrderRandomValue(_) => Operation::OrderRandomValue,
            Call::CheckOrderDcv(_) => Operation::CheckOrderDcv,
            Call::ListDomains => Operation::ListDomains,
            Call::DomainInfo(_) => Operation::DomainInfo,
            Call::SubmitDomainValidation(_) => Operation::SubmitDomainValidation,
            Call::DomainDcvMethod(_) => Operation::DomainDcvMethod,
            Call::DomainToken(_) => Operation::DomainToken,
            Call::CheckDomainDcv(_) => Operation::CheckDomainDcv,
            Call::Duplicate(_) => Operation::Duplicate,
            Call::ListDuplicates(_) => Operation::ListDuplicates,
            Call::RevokeCertificate(_) => Operation::RevokeCertificate,
            Call::RevokeOrder(_) => Operation::RevokeOrder,
            Call::StatusChanges => Operation::StatusChanges,
            Call::ListOrders => Operation::ListOrders,
        }
    }

    pub(super) fn is_dcv(&self) -> bool {
        matches!(
            self.operation(),
            Operation::OrderValidation
                | Operation::OrderDcvMethod
                | Operation::OrderRandomValue
                | Operation::CheckOrderDcv
                | Operation::ListDomains
                | Operation::DomainInfo
                | Operation::SubmitDomainValidation
                | Operation::DomainDcvMethod
                | Operation::DomainToken
                | Operation::CheckDomainDcv
        )
    }

    pub(super) fn mutates(&self) -> bool {
        !matches!(
            self,
            Call::OrderInfo(_)
                | Call::ListReissues(_)
                | Call::ListDuplicates(_)
                | Call::Download { .. }
                | Call::DownloadByOrder { .. }
                | Call::RequestInfo(_)
                | Call::OrderValidation(_)
                | Call::ListDomains
                | Call::DomainInfo(_)
                | Call::StatusChanges
                | Call::ListOrders
        )
    }
}

pub(super) fn route(method: &Method, path: &str) -> Option<Call> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let id = |s: &str| s.parse::<u64>().ok();
    let call = match (method, segments.as_slice()) {
        (&Method::GET, ["order", "certificate", "status-changes"]) => Call::StatusChanges,
        (&Method::GET, ["order", "certificate"]) => Call::ListOrders,
        (&Method::GET, ["order", "certificate", o]) => Call::OrderInfo(id(o)?),
        (&Method::POST, ["order", "certificate", o, "reissue"]) => Call::Reissue(id(o)?),
        (&Method::GET, ["order", "certificate", o, "reissue"]) => Call::ListReissues(id(o)?),
        (&Method::PUT, ["order", "certificate", o, "status"]) => Call::UpdateOrderStatus(id(o)?),
        (&Method::PUT, ["order", "certificate", o, "auto-reissue"]) => {
            Call::UpdateAutoReissue(id(o)?)
        }
        (&Method::GET, ["certificate", "download", "order", o, "format", f]) => {
            Call::DownloadByOrder {
                order: id(o)?,
                format: f.to_string(),
            }
        }
        (&Method::GET, ["certificate", c, "download", "format", f]) => Call::Download {
            certificate: id(c)?,
            format: f.to_string(),
        },
        (&Method::GET, ["request", r]) => Call::RequestInfo(id(r)?),
        (&Method::PUT, ["request", r, "status"]) => Call::UpdateRequestStatus(id(r)?),
        (&Method::POST, ["order", "certificate", o, "duplicate"]) => Call::Duplicate(id(o)?),
        (&Method::GET, ["order", "certificate", o, "duplicate"]) => Call::ListDuplicates(id(o)?),
        (&Method::PUT, ["order", "certificate", o, "revoke"]) => Call::RevokeOrder(id(o)?),
        // The certificate id or its serial number.
        (&Method::PUT, ["certificate", c, "revoke"]) if !c.is_empty() => {
            Call::RevokeCertificate(c.to_string())
        }
        _ => return route_dcv(method, &segments),
    };
    Some(call)
}

fn route_dcv(method: &Method, segments: &[&str]) -> Option<Call> {
    let id = |s: &str| s.parse::<u64>().ok();
    let call = match (method, segments) {
        (&Method::GET, ["order", "certificate", o, "validation"]) => Call::OrderValidation(id(o)?),
        (&Method::PUT, ["order", "certificate", o, "dcv-method"]) => Call::OrderDcvMethod(id(o)?),
        (&Method::PUT, ["order", "certificate", o, "dcv-random-value"]) => {
            Call::OrderRandomValue(id(o)?)
        }
        (&Method::PUT, ["order", "certificate", o, "check-dcv"]) => Call::CheckOrderDcv(id(o)?),
        (&Method::GET, ["domain"]) => Call::ListDomains,
        (&Method::GET, ["domain", d]) => Call::DomainInfo(id(d)?),
        (&Method::POST, ["domain", d, "validation"]) => Call::SubmitDomainValidation(id(d)?),
        (&Method::PUT, ["domain", d, "dcv", "method"]) => Call::DomainDcvMethod(id(d)?),
        (&Method::POST, ["domain", d, "dcv", "token"]) => Call::DomainToken(id(d)?),
        (&Method::PUT, ["domain", d, "dcv", "validate-token"]) => Call::CheckDomainDcv(id(d)?),
        _ => return None,
    };
    Some(call)
}
