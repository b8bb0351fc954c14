//! The simulated CertCentral account: orders, their certificates (the initial one and
//! every reissue), requests, and the rules that move them between states.
//!
//! Everything here is synchronous and takes the simulator's clock as an argument, so
//! each transition is a plain function of (state, input, now). Time-driven changes
//! (issuance after a delay, auto-reissue, order expiry, revocation after a reissue that
//! removed names) happen in [`State::settle`], which the server runs before every call.
//! Duplicates and revocation live in [`super::duplicates`] and [`super::revocation`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::{Date, Duration, OffsetDateTime};

use super::ca::TestCa;
use super::dcv::{self, Domain, RandomValue, ReuseStep};
use super::duplicates::DuplicateSettings;
use super::revocation::{RevocationSettings, RevokeTarget};
use certcentral::dcv::DcvMethod;
use certcentral::types::*;
use pki::keys::{self, KeyKind};

/// An error answer: HTTP status plus DigiCert's code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
        }
    }
    pub(super) fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }
    pub(super) fn order_not_found(id: u64) -> Self {
        Self::new(404, "not_found|order", format!("Order {id} not found."))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// DigiCert's cap on public TLS certificate validity since 2026-02-24.
pub const DEFAULT_VALIDITY: Duration = Duration::days(199);
pub const DEFAULT_AUTO_REISSUE_WINDOW: Duration = Duration::days(30);

/// How an order is created, from the seed file or the admin API. Everything but the
/// id and the common name has a default.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderSeed {
    pub id: u64,
    /// Domain the order secures.
    pub common_name: String,
    /// Further domains on the order. A reissue may name these and their subdomains.
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// `issued` (default; an initial certificate is made), `pending`, `needs_approval`,
    /// `waiting_pickup`, ...
    #[serde(default = "default_status")]
    pub status: OrderStatus,
    #[serde(default = "default_product")]
    pub product_name_id: String,
    /// Whether the product/account has Multi-year Plans (needed for auto-reissue).
    #[serde(default = "yes")]
    pub multi_year_plan: bool,
    #[serde(default)]
    pub auto_reissue: bool,
    /// End of the plan; default three years from now.
    #[serde(default)]
    pub order_valid_till: Option<Date>,
    /// Reissue requests wait for an administrator's approval unless `skip_approval`.
    #[serde(default)]
    pub approval_required: bool,
    /// When false, the order's domains are seeded as never validated, so approved
    /// reissues stay pending until validation is redone.
    #[serde(default = "yes")]
    pub validation_current: bool,
    /// The order's DCV method; default `dns-txt-token`.
    #[serde(default)]
    pub dcv_method: Option<DcvMethod>,
    /// Seconds between approval and issuance (0: at once).
    #[serde(default)]
    pub issuance_delay_seconds: u64,
    /// Lifetime of issued certificates (capped by the order's end); default 199 days.
    #[serde(default)]
    pub certificate_validity_seconds: Option<u64>,
    /// Auto-reissue starts this long before the latest certificate expires; default 30 days.
    #[serde(default)]
    pub auto_reissue_window_seconds: Option<u64>,
    /// Delay between a name-removing reissue and the revocation of the older
    /// certificates; default the simulator's (`--revocation-delay`).
    #[serde(default)]
    pub revocation_delay_seconds: Option<u64>,
    /// Whether the account's duplicate feature is on for this order; default the
    /// simulator's.
    #[serde(default)]
    pub duplicates_enabled: Option<bool>,
}

fn default_status() -> OrderStatus {
    OrderStatus::Issued
}
fn default_product() -> String {
    "ssl_basic".into()
}
fn yes() -> bool {
    true
}

/// Order settings that can be changed after seeding (admin API).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderPatch {
    pub multi_year_plan: Option<bool>,
    pub approval_required: Option<bool>,
    pub validation_current: Option<bool>,
    pub issuance_delay_seconds: Option<u64>,
    pub certificate_validity_seconds: Option<u64>,
    pub auto_reissue_window_seconds: Option<u64>,
    pub order_valid_till: Option<Date>,
    pub revocation_delay_seconds: Option<u64>,
    pub duplicates_enabled: Option<bool>,
}

/// Who calls: an API key and its user.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    pub key: String,
    /// May approve requests.
    #[serde(default = "yes")]
    pub approver: bool,
    #[serde(default = "default_user_id")]
    pub user_id: u64,
    #[serde(default = "default_email")]
    pub email: String,
    #[serde(default = "default_first")]
    pub firstname: String,
    #[serde(default = "default_last")]
    pub lastname: String,
}

fn default_user_id() -> u64 {
    1576
}
fn default_email() -> String {
    "admin@example.com".into()
}
fn default_first() -> String {
    "Simulated".into()
}
fn default_last() -> String {
    "Administrator".into()
}

impl ApiKeyConfig {
    pub fn new(key: impl Into<String>) -> Self {
        ApiKeyConfig {
            key: key.into(),
            approver: true,
            user_id: default_user_id(),
            email: default_email(),
            firstname: default_first(),
            lastname: default_last(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Issued with the order.
    Initial,
    /// A reissue somebody asked for.
    Reissue,
    /// A reissue DigiCert made by itself (auto-reissue).
    AutoReissue,
    /// A duplicate: another certificate for the order's names, never the order's own.
    Duplicate,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct User {
    pub id: u64,
    pub email: String,
    pub firstname: String,
    pub lastname: String,
}

impl From<&ApiKeyConfig> for User {
    fn from(caller: &ApiKeyConfig) -> Self {
        User {
            id: caller.user_id,
            email: caller.email.clone(),
            firstname: caller.firstname.clone(),
            lastname: caller.lastname.clone(),
        }
    }
}

/// One certificate of an order: the initial one, a reissue or a duplicate, in any state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Certificate {
    pub id: u64,
    pub order_id: u64,
    pub origin: Origin,
    pub status: ReissueStatus,
    pub common_name: String,
    pub dns_names: Vec<String>,
    pub csr: String,
    pub key: KeyKind,
    pub signature_hash: String,
    pub server_platform_id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub date_created: OffsetDateTime,
    pub request_id: Option<u64>,
    /// Earliest issuance, once approved.
    #[serde(with = "time::serde::rfc3339::option")]
    pub issue_after: Option<OffsetDateTime>,
    pub user: Option<User>,
    pub issued: Option<Issued>,
    /// The issuing CA a duplicate asked for (or the simulator's).
    #[serde(default)]
    pub ca_cert_id: Option<String>,
    /// When DigiCert will revoke it (after a reissue that removed names).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub revoke_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Issued {
    #[serde(with = "time::serde::rfc3339")]
    pub date_issued: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub serial_number: String,
    pub thumbprint: String,
    pub pem: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    pub order_id: u64,
    pub certificate_id: u64,
    pub kind: String,
    pub status: RequestStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub date: OffsetDateTime,
    pub processor_comment: Option<String>,
    #[serde(default)]
    pub comments: Option<String>,
    #[serde(default)]
    pub requester: Option<User>,
    /// What the request revokes once approved; `None` for other kinds.
    #[serde(default)]
    pub revoke: Option<RevokeTarget>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Order {
    pub seed: OrderSeed,
    pub status: OrderStatus,
    pub auto_reissue: bool,
    pub order_valid_till: Date,
    /// The certificate order info shows: the latest issued one (or the initial one).
    pub current_certificate: u64,
    /// Every certificate of the order, oldest first.
    pub certificates: Vec<u64>,
    /// The certificate an auto-reissue was last made for, so it happens once per
    /// certificate.
    pub auto_reissued_for: Option<u64>,
    /// The order's DCV method (changed by `PUT .../dcv-method`).
    #[serde(default)]
    pub dcv_method: Option<DcvMethod>,
    /// The order random value; it works for every domain of the order.
    #[serde(default)]
    pub dcv_random_value: Option<RandomValue>,
}

impl Order {
    fn validity(&self) -> Duration {
        self.seed
            .certificate_validity_seconds
            .map_or(DEFAULT_VALIDITY, |s| Duration::seconds(s as i64))
    }
    fn auto_reissue_window(&self) -> Duration {
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
    pub(super) fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.seed.common_name.as_str())
            .chain(self.seed.dns_names.iter().map(String::as_str))
    }
    /// A name may be secured when it is one of the order's domains or below one.
    fn covers(&self, name: &str) -> bool {
        let name = name.trim_start_matches("*.").to_ascii_lowercase();
        self.names().any(|d| {
            let d = d.trim_start_matches("*.").to_ascii_lowercase();
            name == d || name.ends_with(&format!(".{d}"))
        })
    }
}

/// The whole account. Serialisable, so it can be persisted.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct State {
    pub orders: BTreeMap<u64, Order>,
    pub certificates: BTreeMap<u64, Certificate>,
    pub requests: BTreeMap<u64, Request>,
    pub next_certificate_id: u64,
    pub next_request_id: u64,
    /// Seconds the simulator's clock runs ahead of the real one.
    pub clock_offset_seconds: i64,
    /// The account's domains, by id.
    #[serde(default)]
    pub domains: BTreeMap<u64, Domain>,
    #[serde(default)]
    pub next_domain_id: u64,
    /// Settings from the configuration, applied again at every start.
    #[serde(skip)]
    pub dcv: DcvSettings,
    #[serde(skip)]
    pub revocation: RevocationSettings,
    #[serde(skip)]
    pub duplicates: DuplicateSettings,
}

/// DCV settings the state transitions need.
#[derive(Clone, Debug)]
pub struct DcvSettings {
    pub reuse_schedule: Vec<ReuseStep>,
    pub poll_speedup: u32,
}

impl Default for DcvSettings {
    fn default() -> Self {
        DcvSettings {
            reuse_schedule: dcv::default_reuse_schedule(),
            poll_speedup: 1,
        }
    }
}

/// The options of the update-order-status call the simulator accepts as "cancel".
#[derive(Clone, Debug)]
pub struct Rules {
    pub cancel_values: Vec<String>,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            cancel_values: vec!["canceled".into()],
        }
    }
}

pub(super) fn date_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

pub(super) fn platform_name(id: i64) -> String {
    if id == -1 {
        "OTHER".into()
    } else {
        format!("platform {id}")
    }
}

pub(super) fn date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

pub(super) fn days_remaining(not_after: OffsetDateTime, now: OffsetDateTime) -> i64 {
    let secs = (not_after - now).whole_seconds();
    if secs <= 0 {
        0
    } else {
        (secs + 86_399) / 86_400
    }
}

fn sha1_hex_upper(bytes: &[u8]) -> String {
    pki::hex(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, bytes).as_ref(),
    )
    .to_ascii_uppercase()
}

/// Case-insensitive, order-free comparison of DNS name sets.
pub(super) fn same_names(a: &[String], b: &[String]) -> bool {
    let norm = |v: &[String]| {
        let mut v: Vec<String> = v.iter().map(|s| s.to_ascii_lowercase()).collect();
        v.sort();
        v.dedup();
        v
    };
    norm(a) == norm(b)
}

/// The names of a request: the common name first, then each further name once
/// (case-insensitive).
pub(super) fn requested_names(common_name: &str, dns_names: &[String]) -> Vec<String> {
    let mut names = vec![common_name.to_string()];
    for n in dns_names {
        if !names.iter().any(|m| m.eq_ignore_ascii_case(n)) {
            names.push(n.clone());
        }
    }
    names
}

/// DigiCert's `signature_hash` values.
pub(super) fn check_signature_hash(hash: &str) -> ApiResult<()> {
    if ["sha256", "sha384", "sha512"].contains(&hash) {
        return Ok(());
    }
    Err(ApiError::bad_request(
        "invalid_signature_hash",
        format!("Signature hash {hash:?} is not one of sha256, sha384, sha512."),
    ))
}

impl State {
    pub fn new() -> Self {
        State {
            next_certificate_id: 100_001,
            next_request_id: 500_001,
            next_domain_id: 300_001,
            ..State::default()
        }
    }

    pub(super) fn order(&self, id: u64) -> ApiResult<&Order> {
        self.orders
            .get(&id)
            .ok_or_else(|| ApiError::order_not_found(id))
    }

    pub(super) fn order_mut(&mut self, id: u64) -> ApiResult<&mut Order> {
        self.orders
            .get_mut(&id)
            .ok_or_else(|| ApiError::order_not_found(id))
    }

    pub(super) fn new_certificate_id(&mut self) -> u64 {
        let id = self.next_certificate_id;
        self.next_certificate_id += 1;
        id
    }

    /// A request of `kind` (`reissue`, `duplicate`, `revoke`); the caller fills in the
    /// rest.
    pub(super) fn new_request(
        &mut self,
        order_id: u64,
        certificate_id: u64,
        kind: &str,
        status: RequestStatus,
        now: OffsetDateTime,
    ) -> &mut Request {
        let id = self.next_request_id;
        self.next_request_id += 1;
        self.requests.entry(id).or_insert(Request {
            id,
            order_id,
            certificate_id,
            kind: kind.into(),
            status,
            date: now,
            processor_comment: None,
            comments: None,
            requester: None,
            revoke: None,
        })
    }

    /// The pending reissue of an order, if any.
    pub(super) fn pending_reissue(&self, order: &Order) -> Option<&Certificate> {
        order
            .certificates
            .iter()
            .filter_map(|id| self.certificates.get(id))
            .find(|c| {
                c.status == ReissueStatus::Pending
                    && matches!(c.origin, Origin::Reissue | Origin::AutoReissue)
            })
    }

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

    fn settle_order(&mut self, id: u64, ca: &TestCa, now: OffsetDateTime) -> bool {
        let mut changed = self.settle_revocations(id, now);
        let Some(order) = self.orders.get(&id) else {
            return false;
        };
        if now > order.ends_at()
            && !matches!(
                order.status,
                OrderStatus::Expired
                    | OrderStatus::Canceled
                    | OrderStatus::Revoked
                    | OrderStatus::Rejected
            )
        {
            let pending: Vec<u64> = self
                .pending_reissue(order)
                .map(|c| c.id)
                .into_iter()
                .collect();
            for c in pending {
                self.reject_certificate(c, None);
            }
            self.orders.get_mut(&id).expect("present").status = OrderStatus::Expired;
            return true;
        }

        // Issue a pending reissue when it is approved, validated and due.
        if let Some(cert) = self.pending_reissue(order) {
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
                    changed = true;
                }
            } else if approved && due {
                changed |= self.start_order_dcv(id, now);
            }
        }

        // Auto-reissue: once per certificate, inside the window, before the plan ends.
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
            order.status = OrderStatus::ReissuePending;
            // Issue at once when nothing delays it.
            self.settle_order(id, ca, now);
            changed = true;
        }
        changed
    }

    fn complete_issuance(&mut self, cert_id: u64, issued: Issued) {
        let at = issued.date_issued;
        let cert = self.certificates.get_mut(&cert_id).expect("present");
        cert.status = ReissueStatus::Issued;
        cert.issued = Some(issued);
        let order_id = cert.order_id;
        // While the order's certificate is still the previous one: the names the new one
        // drops decide what DigiCert revokes.
        self.schedule_revocations(order_id, cert_id, at);
        let order = self.orders.get_mut(&order_id).expect("present");
        order.current_certificate = cert_id;
        order.status = OrderStatus::Issued;
    }

    fn reject_certificate(&mut self, cert_id: u64, comment: Option<&str>) {
        if let Some(cert) = self.certificates.get_mut(&cert_id) {
            cert.status = ReissueStatus::Rejected;
            if let Some(r) = cert.request_id.and_then(|r| self.requests.get_mut(&r)) {
                r.status = RequestStatus::Rejected;
                if let Some(c) = comment {
                    r.processor_comment = Some(c.to_string());
                }
            }
        }
    }

    // ---- the API ----

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

    pub fn reissue(
        &mut self,
        id: u64,
        body: &ReissueRequest,
        caller: &ApiKeyConfig,
        ca: &TestCa,
        now: OffsetDateTime,
    ) -> ApiResult<ReissueResponse> {
        let order = self.order(id)?;
        match order.status {
            OrderStatus::Issued | OrderStatus::ReissuePending => {}
            OrderStatus::Expired => {
                return Err(ApiError::bad_request(
                    "cert_validity_exceeds_order_validity",
                    format!("Order {id} ended on {}.", date(order.order_valid_till)),
                ));
            }
            ref other => {
                return Err(ApiError::bad_request(
                    "invalid_order_status",
                    format!("Order {id} is {other}; only issued orders can be reissued."),
                ));
            }
        }
        let req = &body.certificate;
        let common_name = req.common_name.trim();
        if common_name.is_empty() {
            return Err(ApiError::bad_request(
                "bad_request_format",
                "certificate.common_name is required.",
            ));
        }
        check_signature_hash(&req.signature_hash)?;
        let names = requested_names(common_name, &req.dns_names);
        if let Some(bad) = names.iter().find(|n| !order.covers(n)) {
            return Err(ApiError::bad_request(
                "invalid_dns_name",
                format!("{bad} is not a domain of order {id}."),
            ));
        }
        let csr = check_csr(&req.csr, &names)?;
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
        self.certificates.insert(
            cert_id,
            Certificate {
                id: cert_id,
                order_id: id,
                origin: Origin::Reissue,
                status: ReissueStatus::Pending,
                common_name: common_name.to_string(),
                dns_names: names,
                csr: req.csr.trim().to_string() + "\n",
                key: csr.key,
                signature_hash: req.signature_hash.clone(),
                server_platform_id: req.server_platform.map_or(-1, |p| p.id),
                date_created: now,
                request_id: Some(request_id),
                issue_after: (!needs_approval).then_some(now + delay),
                user: Some(User::from(caller)),
                issued: None,
                ca_cert_id: None,
                revoke_at: None,
                revoked_at: None,
            },
        );
        let order = self.orders.get_mut(&id).expect("present");
        order.certificates.push(cert_id);
        order.status = OrderStatus::ReissuePending;
        if !needs_approval && delay.is_zero() {
            self.settle_order(id, ca, now);
        }
        let issued_now = self.certificates[&cert_id].status == ReissueStatus::Issued;
        if body.skip_approval == Some(true) && issued_now {
            Ok(ReissueResponse {
                id,
                requests: vec![],
                certificate_id: Some(cert_id),
            })
        } else {
            Ok(ReissueResponse {
                id,
                requests: vec![RequestRef { id: request_id }],
                certificate_id: None,
            })
        }
    }

    pub fn update_order_status(
        &mut self,
        id: u64,
        body: &OrderStatusUpdate,
        rules: &Rules,
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
                self.order_mut(id)?.status = OrderStatus::Canceled;
                Ok(())
            }
            OrderStatus::ReissuePending => {
                if let Some(pending) = self.pending_reissue(order).map(|c| c.id) {
                    self.reject_certificate(pending, Some(&body.note));
                }
                self.order_mut(id)?.status = OrderStatus::Issued;
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
                let order = self.order_mut(order_id)?;
                if order.status == OrderStatus::ReissuePending {
                    order.status = OrderStatus::Issued;
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

pub(super) fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(500, "internal_error", e.to_string())
}

/// Signs the certificate of `cert` for the order, valid from now for the order's
/// validity, never past the plan's end.
fn sign(ca: &TestCa, order: &Order, cert: &Certificate, now: OffsetDateTime) -> ApiResult<Issued> {
    sign_until(ca, cert, now, (now + order.validity()).min(order.ends_at()))
}

/// Signs the certificate of `cert`, valid from now to `not_after`.
pub(super) fn sign_until(
    ca: &TestCa,
    cert: &Certificate,
    now: OffsetDateTime,
    not_after: OffsetDateTime,
) -> ApiResult<Issued> {
    let info = keys::inspect_csr(&cert.csr).map_err(internal)?;
    let leaf = ca
        .issue(
            &info.public_key_info,
            &cert.common_name,
            &cert.dns_names,
            &cert.signature_hash,
            now,
            not_after,
        )
        .map_err(internal)?;
    Ok(Issued {
        date_issued: now,
        not_before: leaf.not_before,
        not_after: leaf.not_after,
        serial_number: leaf.serial_hex,
        thumbprint: sha1_hex_upper(&leaf.der),
        pem: keys::certificate_pem(&leaf.der),
    })
}

/// What DigiCert checks in a CSR: it parses, its signature verifies, its key is one
/// DigiCert accepts, and its names are exactly the names of the request.
pub(super) fn check_csr(pem: &str, names: &[String]) -> ApiResult<keys::CsrInfo> {
    let info = keys::inspect_csr(pem).map_err(|e| {
        ApiError::bad_request(
            "csr_invalid_cannot_parse",
            format!("The CSR cannot be parsed: {e}"),
        )
    })?;
    match info.key {
        KeyKind::Rsa(bits) if bits >= 2048 => {}
        KeyKind::Rsa(bits) => {
            return Err(ApiError::bad_request(
                "csr_invalid_key_size",
                format!("RSA keys must have at least 2048 bits; the CSR's has {bits}."),
            ));
        }
        KeyKind::Ecdsa(256 | 384) => {}
        other => {
            return Err(ApiError::bad_request(
                "csr_invalid_key_type",
                format!(
                    "{other} keys are not supported; use RSA (2048 bits or more) or ECDSA P-256/P-384."
                ),
            ));
        }
    }
    if !info.signature_valid {
        return Err(ApiError::bad_request(
            "csr_invalid_signature",
            "The CSR's signature does not verify.",
        ));
    }
    let mut csr_names: Vec<String> = info.common_name.iter().cloned().collect();
    csr_names.extend(info.dns_names.iter().cloned());
    if !info
        .common_name
        .as_deref()
        .is_some_and(|cn| cn.eq_ignore_ascii_case(&names[0]))
        || !same_names(&csr_names, names)
    {
        return Err(ApiError::bad_request(
            "csr_names_mismatch",
            format!(
                "The CSR names ({}) differ from common_name and dns_names ({}).",
                csr_names.join(", "),
                names.join(", ")
            ),
        ));
    }
    Ok(info)
}
