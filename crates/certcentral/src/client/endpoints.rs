//! The CertCentral endpoints the operator drives, one typed call each: orders,
//! reissues, duplicates, revocation, requests, domain validation, and the
//! account-wide change feed (status changes, list orders).

use crate::dcv::*;
use crate::duplicate::*;
use crate::error::Error;
use crate::feed::*;
use crate::types::*;
use reqwest::{Method, StatusCode};
use serde::Serialize;

use super::{Client, SendSlot};

impl Client {
    /// `GET /order/certificate/{order_id}`
    pub async fn order_info(&self, order_id: u64) -> Result<OrderInfo, Error> {
        let path = format!("order/certificate/{order_id}");
        self.json(Operation::OrderInfo, Method::GET, &path, None::<&()>)
            .await
    }

    /// `POST /order/certificate/{order_id}/reissue`. Repeated only when the request
    /// certainly did not arrive (429, no connection): a reissue that may have been
    /// accepted is left for the caller to find in the reissue list.
    pub async fn reissue(
        &self,
        order_id: u64,
        request: &ReissueRequest,
    ) -> Result<ReissueResponse, Error> {
        let path = format!("order/certificate/{order_id}/reissue");
        self.json(Operation::Reissue, Method::POST, &path, Some(request))
            .await
    }

    /// Takes a rate-limit slot ahead of one call (`reissue_in`), so the caller can
    /// record the moment of sending before the call goes: the wait for the slot is
    /// behind it then. Use it at once; do not hold it across other calls of this key.
    pub async fn send_slot(&self) -> SendSlot {
        SendSlot(self.limiter.acquire().await)
    }

    /// `POST /order/certificate/{order_id}/reissue` in a slot taken with
    /// [`Client::send_slot`]: one attempt, sent now, never repeated (the caller retries
    /// after it has recorded the next attempt).
    pub async fn reissue_in(
        &self,
        slot: SendSlot,
        order_id: u64,
        request: &ReissueRequest,
    ) -> Result<ReissueResponse, Error> {
        let path = format!("order/certificate/{order_id}/reissue");
        self.call(
            Some(slot.0),
            Operation::Reissue,
            Method::POST,
            &path,
            Some(request),
            |status, bytes| self.decode_json(Operation::Reissue, status, bytes),
        )
        .await
    }

    /// `GET /order/certificate/status-changes`: the account's orders whose status (or
    /// current certificate) changed in `window`. A range is written in US Mountain time
    /// (see [`ChangeWindow::Range`]).
    pub async fn status_changes(&self, window: &ChangeWindow) -> Result<StatusChanges, Error> {
        let path = format!("order/certificate/status-changes?{}", window.query());
        self.json(Operation::StatusChanges, Method::GET, &path, None::<&()>)
            .await
    }

    /// `GET /order/certificate`: a page of the account's orders with their status and
    /// current certificate (up to 1000 a page).
    pub async fn list_orders(&self, query: &ListOrdersQuery) -> Result<OrderPage, Error> {
        let path = format!("order/certificate?{}", query.query());
        self.json(Operation::ListOrders, Method::GET, &path, None::<&()>)
            .await
    }

    /// `GET /order/certificate/{order_id}/reissue`
    pub async fn list_reissues(&self, order_id: u64) -> Result<Vec<ReissueCertificate>, Error> {
        let path = format!("order/certificate/{order_id}/reissue");
        let list: ReissueList = self
            .json(Operation::ListReissues, Method::GET, &path, None::<&()>)
            .await?;
        Ok(list.certificates)
    }

    /// `PUT /order/certificate/{order_id}/status` with `canceled`: cancels a pending
    /// order or the order's pending reissue.
    pub async fn cancel(&self, order_id: u64, note: &str) -> Result<(), Error> {
        let path = format!("order/certificate/{order_id}/status");
        // Seed 003 (a translated page) spells the value `CANCELED`; DigiCert's current
        // English reference spells it `canceled`, and both call it case-sensitive. The
        // current English reference is the maintained one.
        let body = OrderStatusUpdate {
            status: "canceled".into(),
            note: note.into(),
        };
        self.no_content(Operation::UpdateOrderStatus, Method::PUT, &path, &body)
            .await
    }

    /// `PUT /order/certificate/{order_id}/auto-reissue`
    pub async fn set_auto_reissue(&self, order_id: u64, enabled: bool) -> Result<(), Error> {
        let path = format!("order/certificate/{order_id}/auto-reissue");
        let body = AutoReissueUpdate {
            auto_reissue: u8::from(enabled),
        };
        self.no_content(Operation::UpdateAutoReissue, Method::PUT, &path, &body)
            .await
    }

    /// `GET /certificate/{certificate_id}/download/format/{format}`: PEM text.
    pub async fn download_certificate(
        &self,
        certificate_id: u64,
        format: DownloadFormat,
    ) -> Result<String, Error> {
        let path = format!(
            "certificate/{certificate_id}/download/format/{}",
            format.as_str()
        );
        self.text(&path).await
    }

    /// `GET /certificate/download/order/{order_id}/format/{format}`: the order's current
    /// certificate as PEM text.
    pub async fn download_order_certificate(
        &self,
        order_id: u64,
        format: DownloadFormat,
    ) -> Result<String, Error> {
        let path = format!(
            "certificate/download/order/{order_id}/format/{}",
            format.as_str()
        );
        self.text(&path).await
    }

    /// `POST /order/certificate/{order_id}/duplicate`: another certificate for the
    /// order's current names with its own key; the order's certificate stays as it is.
    /// Not repeated when it may have been accepted: that would make a second duplicate.
    pub async fn duplicate(
        &self,
        order_id: u64,
        request: &DuplicateRequest,
    ) -> Result<DuplicateResponse, Error> {
        let path = format!("order/certificate/{order_id}/duplicate");
        self.json(Operation::Duplicate, Method::POST, &path, Some(request))
            .await
    }

    /// `GET /order/certificate/{order_id}/duplicate` (archived ones left out).
    pub async fn list_duplicates(&self, order_id: u64) -> Result<Vec<DuplicateCertificate>, Error> {
        let path = format!("order/certificate/{order_id}/duplicate");
        let list: DuplicateList = self
            .json(Operation::ListDuplicates, Method::GET, &path, None::<&()>)
            .await?;
        Ok(list.certificates)
    }

    /// `PUT /certificate/{certificate_identifier}/revoke`, by certificate id or serial
    /// number: revoked at once (204) or a request an administrator approves (201).
    pub async fn revoke_certificate(
        &self,
        identifier: impl std::fmt::Display,
        request: &RevokeRequest,
    ) -> Result<RevokeOutcome, Error> {
        let path = format!("certificate/{identifier}/revoke");
        self.revoke(Operation::RevokeCertificate, &path, request)
            .await
    }

    /// `PUT /order/certificate/{order_id}/revoke`: every certificate of the order,
    /// duplicates and reissues included; the order becomes `revoked`.
    pub async fn revoke_order(
        &self,
        order_id: u64,
        request: &RevokeOrderRequest,
    ) -> Result<RevokeOutcome, Error> {
        let path = format!("order/certificate/{order_id}/revoke");
        self.revoke(Operation::RevokeOrder, &path, request).await
    }

    async fn revoke(
        &self,
        op: Operation,
        path: &str,
        body: &impl Serialize,
    ) -> Result<RevokeOutcome, Error> {
        // Only a 204 says "revoked": any other success must carry the request, since
        // an empty or garbled 201 is no proof that anything was revoked.
        self.call(None, op, Method::PUT, path, Some(body), |status, bytes| {
            if status == StatusCode::NO_CONTENT {
                Ok(RevokeOutcome::Revoked)
            } else {
                self.decode_json(op, status, bytes)
                    .map(RevokeOutcome::Requested)
            }
        })
        .await
    }

    /// `GET /request/{request_id}`
    pub async fn request_info(&self, request_id: u64) -> Result<RequestInfo, Error> {
        let path = format!("request/{request_id}");
        self.json(Operation::RequestInfo, Method::GET, &path, None::<&()>)
            .await
    }

    /// `PUT /request/{request_id}/status` with `approved`.
    pub async fn approve_request(&self, request_id: u64, comment: &str) -> Result<(), Error> {
        let path = format!("request/{request_id}/status");
        let body = RequestStatusUpdate {
            status: "approved".into(),
            processor_comment: Some(comment.into()),
        };
        self.no_content(Operation::UpdateRequestStatus, Method::PUT, &path, &body)
            .await
    }

    /// `PUT /request/{request_id}/status` with `rejected`: the request is not issued.
    pub async fn reject_request(&self, request_id: u64, comment: &str) -> Result<(), Error> {
        let path = format!("request/{request_id}/status");
        let body = RequestStatusUpdate {
            status: "rejected".into(),
            processor_comment: Some(comment.into()),
        };
        self.no_content(Operation::UpdateRequestStatus, Method::PUT, &path, &body)
            .await
    }

    /// `GET /order/certificate/{order_id}/validation`: per-domain DCV state.
    pub async fn order_validation(&self, order_id: u64) -> Result<OrderValidation, Error> {
        let path = format!("order/certificate/{order_id}/validation");
        self.json(Operation::OrderValidation, Method::GET, &path, None::<&()>)
            .await
    }

    /// `PUT /order/certificate/{order_id}/dcv-method`: a token method answers with the
    /// order random value, `email` with nothing.
    pub async fn set_order_dcv_method(
        &self,
        order_id: u64,
        method: DcvMethod,
    ) -> Result<Option<OrderRandomValue>, Error> {
        let path = format!("order/certificate/{order_id}/dcv-method");
        let body = DcvMethodUpdate { dcv_method: method };
        self.json_or_empty(Operation::OrderDcvMethod, Method::PUT, &path, Some(&body))
            .await
    }

    /// `PUT /order/certificate/{order_id}/dcv-random-value`: the order random value,
    /// made anew once the old one expired.
    pub async fn order_random_value(&self, order_id: u64) -> Result<OrderRandomValue, Error> {
        let path = format!("order/certificate/{order_id}/dcv-random-value");
        self.json(Operation::OrderRandomValue, Method::PUT, &path, None::<&()>)
            .await
    }

    /// `PUT /order/certificate/{order_id}/check-dcv`: asks DigiCert to look for the
    /// token now. A token not found is a 400 (`invalid_dns_txt`,
    /// `file_random_value_not_found`, ...).
    pub async fn check_order_dcv(&self, order_id: u64) -> Result<CheckDcv, Error> {
        let path = format!("order/certificate/{order_id}/check-dcv");
        self.json(Operation::CheckOrderDcv, Method::PUT, &path, None::<&()>)
            .await
    }

    /// `GET /domain?filters[search]=<name>&include_dcv_expiration_time=true`
    pub async fn find_domains(&self, name: &str) -> Result<Vec<DomainInfo>, Error> {
        // Domain names need no escaping beyond what `Url` applies when joining.
        let path = format!("domain?filters[search]={name}&include_dcv_expiration_time=true");
        let list: DomainList = self
            .json(Operation::ListDomains, Method::GET, &path, None::<&()>)
            .await?;
        Ok(list.domains)
    }

    /// `GET /domain/{domain_id}?include_dcv=true&include_validation=true`
    pub async fn domain_info(&self, domain_id: u64) -> Result<DomainInfo, Error> {
        let path = format!("domain/{domain_id}?include_dcv=true&include_validation=true");
        self.json(Operation::DomainInfo, Method::GET, &path, None::<&()>)
            .await
    }

    /// `POST /domain/{domain_id}/validation`: starts a new validation of the domain
    /// (OV) with `method`; answers with the domain's token for token methods.
    pub async fn submit_domain_validation(
        &self,
        domain_id: u64,
        method: DcvMethod,
    ) -> Result<Option<DcvToken>, Error> {
        let path = format!("domain/{domain_id}/validation");
        let body = SubmitValidation {
            validations: vec![ValidationType { kind: "ov".into() }],
            dcv_method: Some(method),
        };
        let answer: Option<DomainTokenAnswer> = self
            .json_or_empty(
                Operation::SubmitDomainValidation,
                Method::POST,
                &path,
                Some(&body),
            )
            .await?;
        Ok(answer.and_then(|a| a.dcv_token))
    }

    /// `PUT /domain/{domain_id}/dcv/method`
    pub async fn set_domain_dcv_method(
        &self,
        domain_id: u64,
        method: DcvMethod,
    ) -> Result<Option<DcvToken>, Error> {
        let path = format!("domain/{domain_id}/dcv/method");
        let body = DcvMethodUpdate { dcv_method: method };
        let answer: Option<DomainTokenAnswer> = self
            .json_or_empty(Operation::DomainDcvMethod, Method::PUT, &path, Some(&body))
            .await?;
        Ok(answer.and_then(|a| a.dcv_token))
    }

    /// `POST /domain/{domain_id}/dcv/token`: a new domain random value; the previous
    /// domain value stops working.
    pub async fn new_domain_token(&self, domain_id: u64) -> Result<DcvToken, Error> {
        let path = format!("domain/{domain_id}/dcv/token");
        self.json(Operation::DomainToken, Method::POST, &path, None::<&()>)
            .await
    }

    /// `PUT /domain/{domain_id}/dcv/validate-token`: asks DigiCert to look for the
    /// domain's token now.
    pub async fn check_domain_dcv(&self, domain_id: u64) -> Result<ValidateToken, Error> {
        let path = format!("domain/{domain_id}/dcv/validate-token");
        self.json(Operation::CheckDomainDcv, Method::PUT, &path, None::<&()>)
            .await
    }
}
