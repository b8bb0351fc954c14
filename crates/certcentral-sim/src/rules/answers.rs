//! What the read endpoints answer: an order, its reissue list, a certificate's
//! download, a request. Reads only; the clock settles the store before each.

use time::OffsetDateTime;

use crate::ca::TestCa;
use crate::store::*;
use crate::wire::*;
use certcentral::types::*;

impl State {
    pub fn order_info(&self, id: u64, now: OffsetDateTime) -> ApiResult<OrderInfo> {
        let order = self.order(id)?;
        let cert = &self.certificates[&order.current_certificate];
        let issued = cert.issued.as_ref();
        let mut requests: Vec<OrderRequest> = self
            .requests
            .values()
            .filter(|r| r.order_id == id)
            .map(|r| OrderRequest {
                id: r.id,
                status: r.status.clone(),
                kind: Some(r.kind.clone()),
                date: Some(date_time(r.date)),
            })
            .collect();
        requests.reverse();
        Ok(OrderInfo {
            id,
            status: order.status.clone(),
            auto_reissue: u8::from(order.auto_reissue),
            order_valid_till: Some(date(order.order_valid_till)),
            certificate: OrderCertificate {
                id: cert.id,
                common_name: cert.common_name.clone(),
                dns_names: cert.dns_names.clone(),
                serial_number: issued.map(|i| i.serial_number.clone()),
                thumbprint: issued.map(|i| i.thumbprint.clone()),
                date_issued: issued.map(|i| date_time(i.date_issued)),
                valid_from: issued.map(|i| date(i.not_before.date())),
                valid_till: issued.map(|i| date(i.not_after.date())),
                days_remaining: issued.map(|i| days_remaining(i.not_after, now)),
                csr: Some(cert.csr.clone()),
                key_size: Some(cert.key.bits()),
                signature_hash: Some(cert.signature_hash.clone()),
                server_platform: Some(ServerPlatform {
                    id: cert.server_platform_id,
                    name: Some(platform_name(cert.server_platform_id)),
                    install_url: None,
                    csr_url: None,
                }),
            },
            requests,
            product: Some(Product {
                name_id: order.seed.product_name_id.clone(),
                name: Some(order.seed.product_name_id.replace('_', " ")),
                kind: Some("ssl_certificate".into()),
            }),
        })
    }

    pub fn list_reissues(&self, id: u64, now: OffsetDateTime) -> ApiResult<ReissueList> {
        let order = self.order(id)?;
        let mut certificates: Vec<ReissueCertificate> = order
            .certificates
            .iter()
            .filter_map(|c| self.certificates.get(c))
            .filter(|c| matches!(c.origin, Origin::Reissue | Origin::AutoReissue))
            .map(|c| {
                let issued = c.issued.as_ref();
                ReissueCertificate {
                    id: c.id,
                    thumbprint: issued.map(|i| i.thumbprint.clone()),
                    serial_number: issued.map(|i| i.serial_number.clone()),
                    common_name: c.common_name.clone(),
                    dns_names: c.dns_names.clone(),
                    status: c.status.clone(),
                    date_created: date_time(c.date_created),
                    date_issued: issued.map(|i| date_time(i.date_issued)),
                    valid_till: issued.map(|i| date(i.not_after.date())),
                    days_remaining: issued.map(|i| days_remaining(i.not_after, now)),
                    csr: Some(c.csr.clone()),
                    key_size: Some(c.key.bits()),
                    user_id: c.user.as_ref().map(|u| u.id),
                    email: c.user.as_ref().map(|u| u.email.clone()),
                    firstname: c.user.as_ref().map(|u| u.firstname.clone()),
                    lastname: c.user.as_ref().map(|u| u.lastname.clone()),
                    receipt_id: None,
                    purchased_dns_names: issued.map(|_| "0".into()),
                    purchased_wildcard_names: issued.map(|_| "0".into()),
                }
            })
            .collect();
        // Newest first, as CertCentral lists them.
        certificates.reverse();
        Ok(ReissueList { certificates })
    }

    pub fn certificate_pem(&self, cert_id: u64, format: &str, ca: &TestCa) -> ApiResult<String> {
        let cert = self.certificates.get(&cert_id).ok_or_else(|| {
            ApiError::new(
                404,
                "not_found|certificate",
                format!("Certificate {cert_id} not found."),
            )
        })?;
        let issued = cert.issued.as_ref().ok_or_else(|| {
            ApiError::bad_request(
                "certificate_not_issued",
                format!("Certificate {cert_id} has not been issued."),
            )
        })?;
        let mut pem = issued.pem.clone();
        match format {
            "pem_all" => {
                pem.push_str(ca.intermediate_pem());
                pem.push_str(ca.root_pem());
            }
            "pem_noroot" => pem.push_str(ca.intermediate_pem()),
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_format",
                    format!("Format {format:?} is not supported; use pem_all or pem_noroot."),
                ));
            }
        }
        Ok(pem)
    }

    pub fn order_certificate_pem(
        &self,
        order_id: u64,
        format: &str,
        ca: &TestCa,
    ) -> ApiResult<String> {
        let order = self.order(order_id)?;
        self.certificate_pem(order.current_certificate, format, ca)
    }

    pub fn request_info(&self, id: u64) -> ApiResult<RequestInfo> {
        let r = self.requests.get(&id).ok_or_else(|| {
            ApiError::new(404, "not_found|request", format!("Request {id} not found."))
        })?;
        Ok(RequestInfo {
            id,
            status: r.status.clone(),
            kind: Some(r.kind.clone()),
            date: Some(date_time(r.date)),
            order: Some(RequestRef { id: r.order_id }),
            processor_comment: r.processor_comment.clone(),
        })
    }
}
