//! The store: the simulated CertCentral account as data — orders, their certificates
//! (the initial one and every reissue and duplicate), requests, the account's
//! domains and their random values, and the counters that hand out ids. Nothing here
//! knows a rule: how an order, a reissue, a duplicate, a revocation or a domain
//! validation moves is in [`crate::rules`], as functions over the store of (store,
//! settings, input, now). Serialisable, so the state file can keep it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::{Date, Duration, OffsetDateTime};

use crate::settings::{DcvSettings, DuplicateSettings, FeedSettings, RevocationSettings};
use certcentral::dcv::DcvMethod;
use certcentral::types::*;
use pki::keys::KeyKind;

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
    pub(crate) fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }
    pub(crate) fn order_not_found(id: u64) -> Self {
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

pub(crate) fn default_status() -> OrderStatus {
    OrderStatus::Issued
}

pub(crate) fn default_product() -> String {
    "ssl_basic".into()
}

pub(crate) fn yes() -> bool {
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

pub(crate) fn default_user_id() -> u64 {
    1576
}

pub(crate) fn default_email() -> String {
    "admin@example.com".into()
}

pub(crate) fn default_first() -> String {
    "Simulated".into()
}

pub(crate) fn default_last() -> String {
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
    /// When the status or the current certificate last changed (the change feed);
    /// `None` in state files from before the feed: outside every window.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub status_last_updated: Option<OffsetDateTime>,
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
    #[serde(skip)]
    pub feed: FeedSettings,
    /// What webhooks are to report, taken out after every change by whoever made it.
    #[serde(skip)]
    pub outbox: Vec<FeedEvent>,
}

/// What a webhook reports (DigiCert's event names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedEventKind {
    CertificateIssued,
    CertificateRevoked,
    OrderRejected,
}

impl FeedEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedEventKind::CertificateIssued => "certificate_issued",
            FeedEventKind::CertificateRevoked => "certificate_revoked",
            FeedEventKind::OrderRejected => "order_rejected",
        }
    }
}

/// One event of an order's certificate, for a webhook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedEvent {
    pub kind: FeedEventKind,
    pub order_id: u64,
    pub certificate_id: u64,
    /// Issued within the call that asked for it (an immediate reissue, a duplicate):
    /// real accounts send no event for these by default.
    pub instant: bool,
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
}

/// Random values expire 30 days after they are made (documented).
pub const TOKEN_LIFETIME: Duration = Duration::days(30);

/// A random value and its expiry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RandomValue {
    pub value: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
}

/// 32 characters of `[a-z0-9]`, like DigiCert's random values.
pub fn random_token() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..32)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A domain of the account.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Domain {
    pub id: u64,
    pub name: String,
    pub is_active: bool,
    pub dcv_method: DcvMethod,
    #[serde(with = "time::serde::rfc3339")]
    pub date_created: OffsetDateTime,
    /// The domain random value (a new one replaces the old).
    pub token: Option<RandomValue>,
    /// The latest completed validation; `None`: never validated (or lapsed on purpose).
    #[serde(with = "time::serde::rfc3339::option")]
    pub dcv_approval: Option<OffsetDateTime>,
    /// The method that approval was made with: it decides what the approval covers,
    /// even after the domain switched method for its next validation.
    #[serde(default)]
    pub approved_with: Option<DcvMethod>,
    /// A validation was started and has not completed. The old approval still counts.
    pub pending_validation: bool,
    /// When DigiCert's own checks started, and the next one.
    #[serde(with = "time::serde::rfc3339::option")]
    pub poll_started: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_poll: Option<OffsetDateTime>,
    /// What the latest failed check saw, for the admin API.
    pub last_check_error: Option<String>,
}

/// A domain as the seed file or the admin API gives it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainSeed {
    pub name: String,
    /// Default `dns-txt-token`.
    #[serde(default)]
    pub dcv_method: Option<DcvMethod>,
    /// The latest completed validation; absent: validated at seed time.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub validated_at: Option<OffsetDateTime>,
    /// `false`: never validated (`validated_at` is then ignored).
    #[serde(default = "yes")]
    pub validated: bool,
}

/// A change to a domain through the admin API.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainPatch {
    #[serde(default)]
    pub dcv_method: Option<DcvMethod>,
    /// Sets the approval time.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub validated_at: Option<OffsetDateTime>,
    /// `false` clears the approval (the validation lapses); `true` approves now.
    #[serde(default)]
    pub validated: Option<bool>,
}

/// What a real check needs: where to look, how, and which values count.
#[derive(Clone, Debug)]
pub struct CheckTarget {
    pub domain_id: u64,
    /// The domain (for DNS) or FQDN (for HTTP) checked.
    pub name: String,
    pub method: DcvMethod,
    pub tokens: Vec<String>,
    /// The order names this check stands for.
    pub dns_names: Vec<String>,
}

/// What an approved revoke request revokes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "scope")]
pub enum RevokeTarget {
    /// The request's certificate.
    Certificate,
    /// Every certificate of the order, and the order.
    Order { reason: String },
}

/// Lookups and ids: what every rule needs of the store.
impl State {
    pub(crate) fn order(&self, id: u64) -> ApiResult<&Order> {
        self.orders
            .get(&id)
            .ok_or_else(|| ApiError::order_not_found(id))
    }

    pub(crate) fn order_mut(&mut self, id: u64) -> ApiResult<&mut Order> {
        self.orders
            .get_mut(&id)
            .ok_or_else(|| ApiError::order_not_found(id))
    }

    pub(crate) fn new_certificate_id(&mut self) -> u64 {
        let id = self.next_certificate_id;
        self.next_certificate_id += 1;
        id
    }

    /// A request of `kind` (`reissue`, `duplicate`, `revoke`); the caller fills in the
    /// rest.
    pub(crate) fn new_request(
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

    /// Moves an order to `status` (and, when given, to its new current certificate),
    /// stamping `status_last_updated` when either changes. Every change of an order's
    /// status or current certificate goes through here, so the change feed misses none.
    pub(crate) fn move_order(
        &mut self,
        id: u64,
        status: OrderStatus,
        certificate: Option<u64>,
        at: OffsetDateTime,
    ) {
        let Some(order) = self.orders.get_mut(&id) else {
            return;
        };
        let certificate = certificate.unwrap_or(order.current_certificate);
        if order.status != status || order.current_certificate != certificate {
            order.status = status;
            order.current_certificate = certificate;
            order.status_last_updated = Some(at);
        }
    }

    /// Queues an event for the webhook.
    pub(crate) fn note_event(&mut self, kind: FeedEventKind, order_id: u64, certificate_id: u64) {
        self.outbox.push(FeedEvent {
            kind,
            order_id,
            certificate_id,
            instant: false,
        });
    }

    /// Marks the issuance of `certificate_id` as issued within the call that asked.
    pub(crate) fn note_instant(&mut self, certificate_id: u64) {
        for e in &mut self.outbox {
            if e.kind == FeedEventKind::CertificateIssued && e.certificate_id == certificate_id {
                e.instant = true;
            }
        }
    }

    /// The pending reissue of an order, if any.
    pub(crate) fn pending_reissue(&self, order: &Order) -> Option<&Certificate> {
        order
            .certificates
            .iter()
            .filter_map(|id| self.certificates.get(id))
            .find(|c| {
                c.status == ReissueStatus::Pending
                    && matches!(c.origin, Origin::Reissue | Origin::AutoReissue)
            })
    }
}
