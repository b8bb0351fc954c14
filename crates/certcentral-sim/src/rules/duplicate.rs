//! Duplicates: extra certificates of an order's current certificate, each for a key
//! of its own, as `POST /order/certificate/{order_id}/duplicate` asks.

use time::OffsetDateTime;

use super::request::{Asked, check_request, requested_certificate, same_names, sign_until};
use crate::ca::TestCa;
use crate::store::*;
use crate::wire::*;
use certcentral::duplicate::*;
use certcentral::types::*;

/// Whether a product is DV: DigiCert's DV product ids carry a `dv` part
/// (`ssl_dv_geotrust`, `wildcard_dv_rapidssl`, ...).
pub fn is_dv_product(name_id: &str) -> bool {
    name_id
        .to_ascii_lowercase()
        .split(['_', '-'])
        .any(|part| part == "dv")
}

/// The query of the duplicate list.
pub fn show_archived(query: &str) -> bool {
    query.split('&').any(|pair| {
        matches!(
            pair.split_once('=').unwrap_or((pair, "true")),
            ("show_archived", "true" | "1")
        )
    })
}

impl State {
    pub(crate) fn duplicates_enabled(&self, order: &Order) -> bool {
        order
            .seed
            .duplicates_enabled
            .unwrap_or(self.duplicates.enabled)
    }

    /// The checks on the order alone; answers the order's current certificate.
    pub(crate) fn duplicable(&self, order_id: u64, now: OffsetDateTime) -> ApiResult<&Certificate> {
        let order = self.order(order_id)?;
        if !self.duplicates_enabled(order) {
            return Err(ApiError::new(
                403,
                "access_denied|duplicates_disabled",
                "The duplicate certificate feature is not enabled for this account.",
            ));
        }
        if is_dv_product(&order.seed.product_name_id) {
            return Err(ApiError::bad_request(
                "duplicate_not_allowed_for_product",
                format!(
                    "Product {} has no duplicate certificates.",
                    order.seed.product_name_id
                ),
            ));
        }
        if !matches!(
            order.status,
            OrderStatus::Issued | OrderStatus::ReissuePending
        ) {
            return Err(ApiError::bad_request(
                "invalid_order_status",
                format!(
                    "Order {order_id} is {}; only issued orders have duplicates.",
                    order.status
                ),
            ));
        }
        let current = &self.certificates[&order.current_certificate];
        let live = current.status == ReissueStatus::Issued
            && current.issued.as_ref().is_some_and(|i| i.not_after > now);
        if !live || now >= order.ends_at() {
            return Err(ApiError::bad_request(
                "invalid_certificate_status",
                format!(
                    "Order {order_id}'s certificate {} is not issued and valid.",
                    current.id
                ),
            ));
        }
        Ok(current)
    }

    /// `POST /order/certificate/{order_id}/duplicate`
    pub fn duplicate(
        &mut self,
        order_id: u64,
        body: &DuplicateRequest,
        caller: &ApiKeyConfig,
        ca: &TestCa,
        now: OffsetDateTime,
    ) -> ApiResult<DuplicateResponse> {
        let current = self.duplicable(order_id, now)?;
        let req = &body.certificate;
        let asked = Asked {
            common_name: &req.common_name,
            dns_names: &req.dns_names,
            csr: &req.csr,
            signature_hash: &req.signature_hash,
            server_platform: req.server_platform.map(|p| p.id),
        };
        let checked = check_request(&asked, |names| {
            if same_names(names, &current.dns_names) {
                return Ok(());
            }
            Err(ApiError::bad_request(
                "duplicate_names_mismatch",
                format!(
                    "A duplicate has the names of the order's certificate ({}), not {}.",
                    current.dns_names.join(", "),
                    names.join(", ")
                ),
            ))
        })?;
        if !self.names_current(&checked.names, now) {
            return Err(ApiError::bad_request(
                &self.duplicates.dcv_error_code,
                "Domain validation has lapsed for a name of the order; reissue to validate again.",
            ));
        }
        let order = self.order(order_id)?;
        let not_after = current
            .issued
            .as_ref()
            .map_or(now, |i| i.not_after)
            .min(order.ends_at());
        let (intermediate_name, intermediate_id) = ca.intermediate_identity();
        let mut cert =
            requested_certificate(order_id, Origin::Duplicate, &asked, checked, caller, now);
        cert.status = ReissueStatus::Issued;
        cert.issue_after = Some(now);
        cert.ca_cert_id = Some(req.ca_cert_id.clone().unwrap_or(intermediate_id));
        let issued = sign_until(ca, &cert, now, not_after)?;
        let chain = vec![
            ChainCertificate {
                subject_common_name: Some(cert.common_name.clone()),
                pem: issued.pem.clone(),
            },
            ChainCertificate {
                subject_common_name: Some(intermediate_name),
                pem: ca.intermediate_pem().to_string(),
            },
        ];
        cert.issued = Some(issued);
        cert.id = self.new_certificate_id();
        let r = self.new_request(order_id, cert.id, "duplicate", RequestStatus::Approved, now);
        r.comments = body.comments.clone();
        r.requester = cert.user.clone();
        let request_id = r.id;
        cert.request_id = Some(request_id);
        let cert_id = cert.id;
        self.certificates.insert(cert_id, cert);
        self.order_mut(order_id)?.certificates.push(cert_id);
        self.note_event(FeedEventKind::CertificateIssued, order_id, cert_id);
        self.note_instant(cert_id);
        Ok(DuplicateResponse {
            id: order_id,
            requests: vec![DuplicateRequestRef {
                id: request_id,
                status: Some(RequestStatus::Approved),
            }],
            certificate_chain: chain,
        })
    }

    /// `GET /order/certificate/{order_id}/duplicate`, newest first. Nothing is ever
    /// archived here, so `show_archived` changes nothing.
    pub fn list_duplicates(
        &self,
        order_id: u64,
        _show_archived: bool,
        now: OffsetDateTime,
    ) -> ApiResult<DuplicateList> {
        let order = self.order(order_id)?;
        let duplicates: Vec<&Certificate> = order
            .certificates
            .iter()
            .filter_map(|c| self.certificates.get(c))
            .filter(|c| c.origin == Origin::Duplicate)
            .collect();
        let mut certificates: Vec<DuplicateCertificate> = duplicates
            .iter()
            .enumerate()
            .map(|(n, c)| duplicate_view(c, n + 1, now))
            .collect();
        certificates.reverse();
        Ok(DuplicateList { certificates })
    }
}

/// One entry of the duplicate list. `sub_id` numbers the order's duplicates from 1 and
/// `public_id` is taken from the thumbprint (what DigiCert puts there is not documented).
pub(crate) fn duplicate_view(
    c: &Certificate,
    number: usize,
    now: OffsetDateTime,
) -> DuplicateCertificate {
    let issued = c.issued.as_ref();
    DuplicateCertificate {
        id: c.id,
        thumbprint: issued.map(|i| i.thumbprint.clone()),
        serial_number: issued.map(|i| i.serial_number.clone()),
        common_name: c.common_name.clone(),
        dns_names: c.dns_names.clone(),
        status: c.status.clone(),
        date_created: Some(date_time(c.date_created)),
        valid_from: issued.map(|i| date(i.not_before.date())),
        valid_till: issued.map(|i| date(i.not_after.date())),
        days_remaining: issued.map(|i| days_remaining(i.not_after, now)),
        csr: Some(c.csr.clone()),
        server_platform: Some(ServerPlatform {
            id: c.server_platform_id,
            name: Some(platform_name(c.server_platform_id)),
            install_url: Some(String::new()),
            csr_url: Some(String::new()),
        }),
        signature_hash: Some(c.signature_hash.clone()),
        key_size: Some(c.key.bits()),
        ca_cert_id: c.ca_cert_id.clone(),
        sub_id: Some(number.to_string()),
        public_id: issued.map(|i| i.thumbprint.to_ascii_lowercase().chars().take(32).collect()),
        archived: Some("0".into()),
        user_id: c.user.as_ref().map(|u| u.id),
        firstname: c.user.as_ref().map(|u| u.firstname.clone()),
        lastname: c.user.as_ref().map(|u| u.lastname.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dv_products_are_told_apart() {
        for dv in [
            "ssl_dv_geotrust",
            "ssl_dv_rapidssl",
            "wildcard_dv_geotrust",
            "SSL_DV_THAWTE",
            "cloud-dv",
        ] {
            assert!(is_dv_product(dv), "{dv}");
        }
        for not_dv in [
            "ssl_basic",
            "ssl_ev_basic",
            "ssl_securesite_flex",
            "ssl_plus",
            "dvd_ssl",
        ] {
            assert!(!is_dv_product(not_dv), "{not_dv}");
        }
    }

    #[test]
    fn the_archived_switch_is_read_from_the_query() {
        assert!(!show_archived(""));
        assert!(!show_archived("show_archived=false"));
        assert!(show_archived("show_archived=true"));
        assert!(show_archived("a=b&show_archived=1"));
        assert!(show_archived("show_archived"));
        assert!(!show_archived("not_show_archived=true"));
    }
}
