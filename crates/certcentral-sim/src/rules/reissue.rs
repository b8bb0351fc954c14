//! A reissue: the order's certificate replaced by one for a new CSR (and names), as
//! `POST /order/certificate/{order_id}/reissue` asks.

use time::{Duration, OffsetDateTime};

use super::request::{Asked, check_request, requested_certificate};
use crate::ca::TestCa;
use crate::store::*;
use crate::wire::*;
use certcentral::types::*;

impl State {
    pub fn reissue(
        &mut self,
        id: u64,
        body: &ReissueRequest,
        caller: &ApiKeyConfig,
        ca: &TestCa,
        now: OffsetDateTime,
    ) -> ApiResult<ReissueResponse> {
        let order = self.order(id)?;
        reissuable(order)?;
        let req = &body.certificate;
        let asked = Asked {
            common_name: &req.common_name,
            dns_names: &req.dns_names,
            csr: &req.csr,
            signature_hash: &req.signature_hash,
            server_platform: req.server_platform.map(|p| p.id),
        };
        let checked = check_request(&asked, |names| {
            match names.iter().find(|n| !order.covers(n)) {
                Some(bad) => Err(ApiError::bad_request(
                    "invalid_dns_name",
                    format!("{bad} is not a domain of order {id}."),
                )),
                None => Ok(()),
            }
        })?;
        if order.ends_at() <= now + Duration::hours(1) {
            return Err(ApiError::bad_request(
                "cert_validity_exceeds_order_validity",
                format!("Order {id} ends on {}.", date(order.order_valid_till)),
            ));
        }
        let needs_approval = order.seed.approval_required && body.skip_approval != Some(true);
        let delay = Duration::seconds(order.seed.issuance_delay_seconds as i64);

        // A new reissue replaces a pending one.
        if let Some(pending) = self.pending_reissue(order).map(|c| c.id) {
            self.reject_certificate(pending, Some("Replaced by a newer reissue."));
        }
        let cert_id = self.new_certificate_id();
        let status = if needs_approval {
            RequestStatus::Pending
        } else {
            RequestStatus::Approved
        };
        let request_id = self.new_request(id, cert_id, "reissue", status, now).id;
        let mut cert = requested_certificate(id, Origin::Reissue, &asked, checked, caller, now);
        cert.id = cert_id;
        cert.request_id = Some(request_id);
        cert.issue_after = (!needs_approval).then_some(now + delay);
        self.certificates.insert(cert_id, cert);
        self.orders
            .get_mut(&id)
            .expect("present")
            .certificates
            .push(cert_id);
        self.move_order(id, OrderStatus::ReissuePending, None, now);
        if !needs_approval && delay.is_zero() {
            self.settle_order(id, ca, now);
        }
        let issued_now = self.certificates[&cert_id].status == ReissueStatus::Issued;
        if issued_now {
            self.note_instant(cert_id);
        }
        if body.skip_approval == Some(true) && issued_now {
            let certificate_chain = match self.feed.reissue_answer_chain {
                true => Some(self.chain_of(cert_id, ca)?),
                false => None,
            };
            Ok(ReissueResponse {
                id,
                requests: vec![],
                certificate_id: Some(cert_id),
                certificate_chain,
            })
        } else {
            Ok(ReissueResponse {
                id,
                requests: vec![RequestRef { id: request_id }],
                certificate_id: None,
                certificate_chain: None,
            })
        }
    }
}

/// Only an issued order (or one with a reissue pending, which a new one replaces)
/// can be reissued; an ended one says so as DigiCert does.
fn reissuable(order: &Order) -> ApiResult<()> {
    let id = order.seed.id;
    match order.status {
        OrderStatus::Issued | OrderStatus::ReissuePending => Ok(()),
        OrderStatus::Expired => Err(ApiError::bad_request(
            "cert_validity_exceeds_order_validity",
            format!("Order {id} ended on {}.", date(order.order_valid_till)),
        )),
        ref other => Err(ApiError::bad_request(
            "invalid_order_status",
            format!("Order {id} is {other}; only issued orders can be reissued."),
        )),
    }
}

impl State {
    /// An issued certificate's chain as an answer carries it: leaf, intermediate(s),
    /// root, each with its subject's common name.
    fn chain_of(&self, cert_id: u64, ca: &TestCa) -> ApiResult<Vec<ChainCertificate>> {
        let pem = self.certificate_pem(cert_id, "pem_all", ca)?;
        Ok(pem
            .split_inclusive("-----END CERTIFICATE-----")
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map(|block| ChainCertificate {
                subject_common_name: subject_common_name(block),
                pem: format!("{block}\n"),
            })
            .collect())
    }
}

fn subject_common_name(pem: &str) -> Option<String> {
    let der = pki::keys::certificates_from_pem(pem)
        .ok()?
        .into_iter()
        .next()?;
    pki::keys::inspect_certificate(&der).ok()?.common_name
}
