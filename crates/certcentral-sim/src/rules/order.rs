//! Orders and their certificates over time: seeding and patching (the admin API),
//! settling what the clock brings (issuance after a delay, auto-reissue, expiry),
//! and the order, reissue-list, status, download and request endpoints' answers.

use super::request::sign;
use crate::settings::Rules;
use certcentral::dcv::DcvMethod;
use pki::keys::{self, KeyKind};
use time::{Duration, OffsetDateTime};

use crate::ca::TestCa;
use crate::store::*;
use crate::wire::*;
use certcentral::types::*;

impl Order {
    pub(crate) fn validity(&self) -> Duration {
        self.seed
            .certificate_validity_seconds
            .map_or(DEFAULT_VALIDITY, |s| Duration::seconds(s as i64))
    }
    pub(crate) fn auto_reissue_window(&self) -> Duration {
        self.seed
            .auto_reissue_window_seconds
            .map_or(DEFAULT_AUTO_REISSUE_WINDOW, |s| Duration::seconds(s as i64))
    }
    /// The plan ends at the end of its last day.
    pub fn ends_at(&self) -> OffsetDateTime {
        self.order_valid_till
            .with_hms(23, 59, 59)
            .expect("valid time")
            .assume_utc()
    }
    pub fn method(&self) -> DcvMethod {
        self.dcv_method.clone().unwrap_or(DcvMethod::DnsTxtToken)
    }
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.seed.common_name.as_str())
            .chain(self.seed.dns_names.iter().map(String::as_str))
    }
    /// A name may be secured when it is one of the order's domains or below one.
    pub(crate) fn covers(&self, name: &str) -> bool {
        let name = name.trim_start_matches("*.").to_ascii_lowercase();
        self.names().any(|d| {
            let d = d.trim_start_matches("*.").to_ascii_lowercase();
            name == d || name.ends_with(&format!(".{d}"))
        })
    }
}

impl State {
    // ---- seeding and admin ----

    /// Adds an order. An `issued` order gets an initial certificate for a key the
    /// simulator makes up (nobody holds it: the first reissue replaces it).
    pub fn seed_order(
        &mut self,
        seed: OrderSeed,
        ca: &TestCa,
        now: OffsetDateTime,
    ) -> ApiResult<()> {
        if self.orders.contains_key(&seed.id) {
            return Err(ApiError::new(
                409,
                "duplicate_order",
                format!("Order {} exists already.", seed.id),
            ));
        }
        if seed.common_name.trim().is_empty() {
            return Err(ApiError::bad_request(
                "bad_request_format",
                "common_name is required",
            ));
        }
        let order_valid_till = seed
            .order_valid_till
            .unwrap_or_else(|| (now + Duration::days(3 * 365)).date());
        let key = keys::generate(KeyKind::Ecdsa(256)).map_err(internal)?;
        let csr = keys::csr_pem(&key, &seed.common_name, &seed.dns_names).map_err(internal)?;
        let mut names = vec![seed.common_name.clone()];
        names.extend(seed.dns_names.iter().cloned());
        names.dedup();
        let cert_id = self.new_certificate_id();
        let mut order = Order {
            status: seed.status.clone(),
            auto_reissue: seed.auto_reissue,
            order_valid_till,
            current_certificate: cert_id,
            certificates: vec![cert_id],
            auto_reissued_for: None,
            dcv_method: seed.dcv_method.clone(),
            dcv_random_value: None,
            // A new order: the feed shows it from now on.
            status_last_updated: Some(now),
            seed,
        };
        let mut cert = Certificate {
            id: cert_id,
            order_id: order.seed.id,
            origin: Origin::Initial,
            status: ReissueStatus::Pending,
            common_name: order.seed.common_name.clone(),
            dns_names: names,
            csr,
            key: KeyKind::Ecdsa(256),
            signature_hash: "sha256".into(),
            server_platform_id: -1,
            date_created: now,
            request_id: None,
            issue_after: None,
            user: None,
            issued: None,
            ca_cert_id: None,
            revoke_at: None,
            revoked_at: None,
        };
        if order.status == OrderStatus::Issued {
            cert.issued = Some(sign(ca, &order, &cert, now)?);
            cert.status = ReissueStatus::Issued;
        }
        if !order.seed.multi_year_plan {
            order.auto_reissue = false;
        }
        let validated = order.seed.validation_current;
        let names = cert.dns_names.clone();
        if cert.status == ReissueStatus::Issued {
            self.note_event(FeedEventKind::CertificateIssued, order.seed.id, cert_id);
        }
        self.certificates.insert(cert_id, cert);
        self.orders.insert(order.seed.id, order);
        self.seed_order_domains(&names, validated, now);
        Ok(())
    }

    pub fn patch_order(
        &mut self,
        id: u64,
        patch: OrderPatch,
        now: OffsetDateTime,
    ) -> ApiResult<()> {
        if let Some(v) = patch.validation_current {
            self.set_order_validation(id, v, now)?;
        }
        let order = self.order_mut(id)?;
        let s = &mut order.seed;
        if let Some(v) = patch.multi_year_plan {
            s.multi_year_plan = v;
            if !v {
                order.auto_reissue = false;
            }
        }
        if let Some(v) = patch.approval_required {
            s.approval_required = v;
        }
        if let Some(v) = patch.validation_current {
            s.validation_current = v;
        }
        if let Some(v) = patch.issuance_delay_seconds {
            s.issuance_delay_seconds = v;
        }
        if let Some(v) = patch.certificate_validity_seconds {
            s.certificate_validity_seconds = Some(v);
        }
        if let Some(v) = patch.auto_reissue_window_seconds {
            s.auto_reissue_window_seconds = Some(v);
        }
        if let Some(v) = patch.order_valid_till {
            order.order_valid_till = v;
        }
        if let Some(v) = patch.revocation_delay_seconds {
            order.seed.revocation_delay_seconds = Some(v);
        }
        if let Some(v) = patch.duplicates_enabled {
            order.seed.duplicates_enabled = Some(v);
        }
        Ok(())
    }

    pub fn remove_order(&mut self, id: u64) -> ApiResult<()> {
        let order = self
            .orders
            .remove(&id)
            .ok_or_else(|| ApiError::order_not_found(id))?;
        for c in order.certificates {
            self.certificates.remove(&c);
        }
        self.requests.retain(|_, r| r.order_id != id);
        Ok(())
    }

    // ---- time ----

    /// Applies everything that time alone changes, up to `now`: due issuance, order
    /// expiry, and auto-reissue. Returns whether anything changed.
    pub fn settle(&mut self, ca: &TestCa, now: OffsetDateTime) -> bool {
        let mut changed = false;
        let ids: Vec<u64> = self.orders.keys().copied().collect();
        for id in ids {
            changed |= self.settle_order(id, ca, now);
        }
        changed
    }

    pub(crate) fn settle_order(&mut self, id: u64, ca: &TestCa, now: OffsetDateTime) -> bool {
        let changed = self.settle_revocations(id, now);
        if !self.orders.contains_key(&id) {
            return false;
        }
        if self.expire_order(id, now) {
            return true;
        }
        let issued = self.issue_pending(id, ca, now);
        let auto_reissued = self.auto_reissue(id, ca, now);
        changed | issued | auto_reissued
    }

    /// An order past its end expires; a reissue still pending goes with it.
    fn expire_order(&mut self, id: u64, now: OffsetDateTime) -> bool {
        let order = &self.orders[&id];
        if now <= order.ends_at()
            || matches!(
                order.status,
                OrderStatus::Expired
                    | OrderStatus::Canceled
                    | OrderStatus::Revoked
                    | OrderStatus::Rejected
            )
        {
            return false;
        }
        let pending: Vec<u64> = self
            .pending_reissue(order)
            .map(|c| c.id)
            .into_iter()
            .collect();
        for c in pending {
            self.reject_certificate(c, None);
        }
        self.move_order(id, OrderStatus::Expired, None, now);
        true
    }

    /// Issues a pending reissue when it is approved, validated and due; one approved
    /// and due whose names are not validated starts the order's validation.
    fn issue_pending(&mut self, id: u64, ca: &TestCa, now: OffsetDateTime) -> bool {
        let order = &self.orders[&id];
        let Some(cert) = self.pending_reissue(order) else {
            return false;
        };
        let approved = cert
            .request_id
            .and_then(|r| self.requests.get(&r))
            .is_none_or(|r| r.status == RequestStatus::Approved);
        let due = cert.issue_after.is_some_and(|t| now >= t);
        let validated = self.names_current(&cert.dns_names, now);
        if approved && due && validated {
            let cert_id = cert.id;
            // A signing failure leaves the reissue pending; it is retried next time.
            if let Ok(issued) = sign(ca, order, cert, now) {
                self.complete_issuance(cert_id, issued);
                return true;
            }
            false
        } else if approved && due {
            self.start_order_dcv(id, now)
        } else {
            false
        }
    }

    /// Auto-reissue: once per certificate, inside the window, before the plan ends.
    fn auto_reissue(&mut self, id: u64, ca: &TestCa, now: OffsetDateTime) -> bool {
        let order = &self.orders[&id];
        let current = &self.certificates[&order.current_certificate];
        let window_open = current
            .issued
            .as_ref()
            .is_some_and(|i| now >= i.not_after - order.auto_reissue_window());
        if order.auto_reissue
            && order.seed.multi_year_plan
            && order.status == OrderStatus::Issued
            && window_open
            && order.auto_reissued_for != Some(current.id)
            && self.pending_reissue(order).is_none()
            && now < order.ends_at()
        {
            let template = current.clone();
            let delay = Duration::seconds(order.seed.issuance_delay_seconds as i64);
            let cert_id = self.new_certificate_id();
            let request_id = self
                .new_request(id, cert_id, "reissue", RequestStatus::Approved, now)
                .id;
            self.certificates.insert(
                cert_id,
                Certificate {
                    id: cert_id,
                    origin: Origin::AutoReissue,
                    status: ReissueStatus::Pending,
                    date_created: now,
                    request_id: Some(request_id),
                    issue_after: Some(now + delay),
                    user: None,
                    issued: None,
                    revoke_at: None,
                    revoked_at: None,
                    ..template
                },
            );
            let order = self.orders.get_mut(&id).expect("present");
            order.certificates.push(cert_id);
            order.auto_reissued_for = Some(order.current_certificate);
            self.move_order(id, OrderStatus::ReissuePending, None, now);
            // Issue at once when nothing delays it.
            self.settle_order(id, ca, now);
            return true;
        }
        false
    }

    pub(crate) fn complete_issuance(&mut self, cert_id: u64, issued: Issued) {
        let at = issued.date_issued;
        let cert = self.certificates.get_mut(&cert_id).expect("present");
        cert.status = ReissueStatus::Issued;
        cert.issued = Some(issued);
        let order_id = cert.order_id;
        // While the order's certificate is still the previous one: the names the new one
        // drops decide what DigiCert revokes.
        self.schedule_revocations(order_id, cert_id, at);
        self.move_order(order_id, OrderStatus::Issued, Some(cert_id), at);
        self.note_event(FeedEventKind::CertificateIssued, order_id, cert_id);
    }

    pub(crate) fn reject_certificate(&mut self, cert_id: u64, comment: Option<&str>) {
        let Some(cert) = self.certificates.get_mut(&cert_id) else {
            return;
        };
        cert.status = ReissueStatus::Rejected;
        let (order_id, origin) = (cert.order_id, cert.origin);
        if let Some(r) = cert.request_id.and_then(|r| self.requests.get_mut(&r)) {
            r.status = RequestStatus::Rejected;
            if let Some(c) = comment {
                r.processor_comment = Some(c.to_string());
            }
        }
        // A reissue that ends without a certificate; a canceled new order is no
        // rejection.
        if matches!(origin, Origin::Reissue | Origin::AutoReissue) {
            self.note_event(FeedEventKind::OrderRejected, order_id, cert_id);
        }
    }

    // ---- the API ----

    pub fn update_order_status(
        &mut self,
        id: u64,
        body: &OrderStatusUpdate,
        rules: &Rules,
        now: OffsetDateTime,
    ) -> ApiResult<()> {
        if !rules.cancel_values.contains(&body.status) {
            return Err(ApiError::bad_request(
                "invalid_status",
                format!(
                    "Status {:?} is not allowed; allowed: {}.",
                    body.status,
                    rules.cancel_values.join(", ")
                ),
            ));
        }
        if body.note.trim().is_empty() {
            return Err(ApiError::bad_request(
                "bad_request_format",
                "A note is required.",
            ));
        }
        let order = self.order(id)?;
        match order.status {
            OrderStatus::Pending | OrderStatus::WaitingPickup | OrderStatus::NeedsApproval => {
                let open: Vec<u64> = order
                    .certificates
                    .iter()
                    .copied()
                    .filter(|c| self.certificates[c].status == ReissueStatus::Pending)
                    .collect();
                for c in open {
                    self.reject_certificate(c, Some(&body.note));
                }
                self.move_order(id, OrderStatus::Canceled, None, now);
                Ok(())
            }
            OrderStatus::ReissuePending => {
                if let Some(pending) = self.pending_reissue(order).map(|c| c.id) {
                    self.reject_certificate(pending, Some(&body.note));
                }
                self.move_order(id, OrderStatus::Issued, None, now);
                Ok(())
            }
            ref other => Err(ApiError::bad_request(
                "invalid_order_status",
                format!(
                    "Order {id} is {other}; only pending orders and pending reissues can be canceled."
                ),
            )),
        }
    }

    pub fn update_auto_reissue(
        &mut self,
        id: u64,
        body: &AutoReissueUpdate,
        ca: &TestCa,
        now: OffsetDateTime,
    ) -> ApiResult<()> {
        if body.auto_reissue > 1 {
            return Err(ApiError::bad_request(
                "bad_request_format",
                "auto_reissue must be 0 or 1.",
            ));
        }
        let order = self.order_mut(id)?;
        if !order.seed.multi_year_plan {
            return Err(ApiError::bad_request(
                "auto_reissue_not_supported",
                format!("Order {id} is not a Multi-year Plan; auto-reissue is not supported."),
            ));
        }
        order.auto_reissue = body.auto_reissue == 1;
        self.settle_order(id, ca, now);
        Ok(())
    }

    pub fn update_request_status(
        &mut self,
        id: u64,
        body: &RequestStatusUpdate,
        caller: &ApiKeyConfig,
        ca: &TestCa,
        now: OffsetDateTime,
    ) -> ApiResult<()> {
        let r = self.requests.get(&id).ok_or_else(|| {
            ApiError::new(404, "not_found|request", format!("Request {id} not found."))
        })?;
        if !caller.approver {
            return Err(ApiError::new(
                403,
                "access_denied|invalid_approver",
                "This user may not approve requests.",
            ));
        }
        if r.status != RequestStatus::Pending {
            return Err(ApiError::bad_request(
                "invalid_request_status",
                format!("Request {id} is not pending."),
            ));
        }
        if r.revoke.is_some() {
            return self.decide_revoke_request(id, body, now);
        }
        let (order_id, cert_id) = (r.order_id, r.certificate_id);
        match body.status.as_str() {
            "approved" => {
                let delay = self
                    .order(order_id)
                    .map(|o| o.seed.issuance_delay_seconds)
                    .unwrap_or(0);
                let r = self.requests.get_mut(&id).expect("present");
                r.status = RequestStatus::Approved;
                r.processor_comment = body.processor_comment.clone();
                if let Some(c) = self.certificates.get_mut(&cert_id) {
                    c.issue_after = Some(now + Duration::seconds(delay as i64));
                }
                self.settle_order(order_id, ca, now);
                Ok(())
            }
            "rejected" => {
                self.reject_certificate(cert_id, body.processor_comment.as_deref());
                if self.order(order_id)?.status == OrderStatus::ReissuePending {
                    self.move_order(order_id, OrderStatus::Issued, None, now);
                }
                Ok(())
            }
            other => Err(ApiError::bad_request(
                "invalid_status",
                format!("Status {other:?} is not one of approved, rejected."),
            )),
        }
    }
}
