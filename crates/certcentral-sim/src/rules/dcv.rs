//! Domain control validation: the reuse period (and DigiCert's 2029 schedule), which
//! domain covers a name, where the random value must be found, DigiCert's own
//! polling schedule, and the domains of the account as orders and checks change them.

use time::{Duration, OffsetDateTime};

use crate::settings::ReuseStep;
use crate::store::{
    ApiError, ApiResult, CheckTarget, Domain, DomainPatch, DomainSeed, Order, RandomValue, State,
    TOKEN_LIFETIME, random_token,
};
use certcentral::dcv::DcvMethod;

/// The reuse period in force on `now`'s date; before the first step, the first step's.
pub fn reuse_period(schedule: &[ReuseStep], now: OffsetDateTime) -> Duration {
    let today = now.date();
    let step = schedule
        .iter()
        .filter(|s| s.from <= today)
        .max_by_key(|s| s.from)
        .or_else(|| schedule.iter().min_by_key(|s| s.from));
    Duration::days(step.map_or(397, |s| i64::from(s.days)))
}

/// Whether an approval may still be reused at `now`. Evaluated at issuance time,
/// because a shorter period applies to validations done before it took effect.
pub fn is_current(
    approval: Option<OffsetDateTime>,
    schedule: &[ReuseStep],
    now: OffsetDateTime,
) -> bool {
    approval.is_some_and(|a| now - a < reuse_period(schedule, now))
}

/// DigiCert's own re-checks after a validation starts: every minute for 15 min, every
/// 5 min until 1 h, every 15 min until 1 day, hourly until 10 days, then none.
/// `speedup` compresses the whole timeline. The next check strictly after `now`.
pub fn next_poll(
    started: OffsetDateTime,
    now: OffsetDateTime,
    speedup: u32,
) -> Option<OffsetDateTime> {
    let speedup = i64::from(speedup.max(1));
    let elapsed = ((now - started).whole_seconds().max(0)).saturating_mul(speedup);
    let phases: [(i64, i64); 4] = [
        (15 * 60, 60),
        (3600, 5 * 60),
        (86_400, 15 * 60),
        (10 * 86_400, 3600),
    ];
    let mut start = 0;
    for (end, step) in phases {
        if elapsed < end {
            let next = start + ((elapsed - start) / step + 1) * step;
            // Sub-second precision: spread the compressed schedule in milliseconds.
            let ms = next * 1000 / speedup;
            return Some(started + Duration::milliseconds(ms));
        }
        start = end;
    }
    None
}

/// The domain a name is validated at: the name without a leading `*.`.
pub fn base_name(name: &str) -> String {
    name.trim_start_matches("*.")
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// Whether a validation of `domain` with `method` covers the order name `name`. File
/// methods validate exactly the FQDN (never a wildcard); DNS and email methods also
/// cover subdomains, and so `*.domain`.
pub fn covers(domain: &str, method: &DcvMethod, name: &str) -> bool {
    let domain = base_name(domain);
    let lower = name.trim_end_matches('.').to_ascii_lowercase();
    if matches!(method, DcvMethod::HttpToken | DcvMethod::HttpTokenDynamic) {
        return lower == domain;
    }
    let base = base_name(name);
    base == domain || base.ends_with(&format!(".{domain}"))
}

/// Where a TXT token is looked up: the domain, and `_dnsauth.` below it when enabled
/// (third-party sources say DigiCert accepts both).
pub fn txt_names(domain: &str, dnsauth: bool) -> Vec<String> {
    let domain = base_name(domain);
    let mut names = vec![domain.clone()];
    if dnsauth {
        names.push(format!("_dnsauth.{domain}"));
    }
    names
}

pub fn cname_name(domain: &str) -> String {
    format!("_dnsauth.{}", base_name(domain))
}

pub fn cname_target(token: &str) -> String {
    format!("{token}.dcv.digicert.com")
}

pub fn http_token_url(fqdn: &str) -> String {
    format!(
        "http://{}/.well-known/pki-validation/fileauth.txt",
        fqdn.trim_end_matches('.').to_ascii_lowercase()
    )
}

impl RandomValue {
    pub fn new(now: OffsetDateTime) -> Self {
        RandomValue {
            value: random_token(),
            expires: now + TOKEN_LIFETIME,
        }
    }
    pub fn valid_at(&self, now: OffsetDateTime) -> bool {
        now < self.expires
    }
}

impl Domain {
    pub fn new(id: u64, name: &str, method: DcvMethod, now: OffsetDateTime) -> Self {
        Domain {
            id,
            name: base_name(name),
            is_active: true,
            dcv_method: method,
            date_created: now,
            token: None,
            dcv_approval: None,
            approved_with: None,
            pending_validation: false,
            poll_started: None,
            next_poll: None,
            last_check_error: None,
        }
    }

    /// The domain value, made anew when missing or expired.
    pub fn ensure_token(&mut self, now: OffsetDateTime) -> &RandomValue {
        if !self.token.as_ref().is_some_and(|t| t.valid_at(now)) {
            self.token = Some(RandomValue::new(now));
        }
        self.token.get_or_insert_with(|| RandomValue::new(now))
    }

    /// Sets (or clears) the latest completed validation, made with the current method.
    pub fn set_approval(&mut self, at: Option<OffsetDateTime>) {
        self.dcv_approval = at;
        self.approved_with = at.map(|_| self.dcv_method.clone());
    }

    /// What the current approval covers.
    pub fn approval_covers(&self, name: &str) -> bool {
        let method = self.approved_with.as_ref().unwrap_or(&self.dcv_method);
        self.dcv_approval.is_some() && covers(&self.name, method, name)
    }

    /// Marks a validation under way and (re)starts DigiCert's checks.
    pub fn start_polling(&mut self, now: OffsetDateTime, speedup: u32) {
        self.pending_validation = true;
        self.poll_started = Some(now);
        self.next_poll = next_poll(now, now, speedup);
    }

    pub fn approve(&mut self, now: OffsetDateTime) {
        self.set_approval(Some(now));
        self.pending_validation = false;
        self.poll_started = None;
        self.next_poll = None;
        self.last_check_error = None;
    }
}

/// The method a name's domain is validated with under the order's method. DNS and email
/// validations cover names below the domain; file methods do not.
pub(crate) fn method_for_name(order_method: &DcvMethod, name: &str) -> DcvMethod {
    // A wildcard cannot be validated over HTTP (documented); its base domain is then
    // looked up in DNS, which is what DigiCert's UI would offer (inferred).
    if name.starts_with("*.") && !is_dns_or_email(order_method) {
        DcvMethod::DnsTxtToken
    } else {
        order_method.clone()
    }
}

pub(crate) fn is_dns_or_email(m: &DcvMethod) -> bool {
    matches!(
        m,
        DcvMethod::DnsTxtToken | DcvMethod::DnsCnameToken | DcvMethod::Email
    )
}

impl State {
    pub(crate) fn schedule(&self) -> &[ReuseStep] {
        &self.dcv.reuse_schedule
    }

    pub fn domain_current(&self, d: &Domain, now: OffsetDateTime) -> bool {
        is_current(d.dcv_approval, self.schedule(), now)
    }

    /// When the domain's approval stops being reusable, judged with today's period.
    pub fn approval_expiry(&self, d: &Domain, now: OffsetDateTime) -> Option<OffsetDateTime> {
        d.dcv_approval
            .map(|a| a + reuse_period(self.schedule(), now))
    }

    pub fn domain_by_name(&self, name: &str) -> Option<&Domain> {
        let name = base_name(name);
        self.domains.values().find(|d| d.name == name)
    }

    pub(crate) fn domain(&self, id: u64) -> ApiResult<&Domain> {
        self.domains.get(&id).ok_or_else(|| domain_not_found(id))
    }

    pub(crate) fn domain_mut(&mut self, id: u64) -> ApiResult<&mut Domain> {
        self.domains
            .get_mut(&id)
            .ok_or_else(|| domain_not_found(id))
    }

    pub(crate) fn add_domain(&mut self, name: &str, method: DcvMethod, now: OffsetDateTime) -> u64 {
        self.next_domain_id = self.next_domain_id.max(300_001);
        let id = self.next_domain_id;
        self.next_domain_id += 1;
        self.domains.insert(id, Domain::new(id, name, method, now));
        id
    }

    /// Whether every name is covered by a domain whose validation is still reusable.
    pub fn names_current(&self, names: &[String], now: OffsetDateTime) -> bool {
        names.iter().all(|n| {
            self.domains
                .values()
                .any(|d| d.approval_covers(n) && self.domain_current(d, now))
        })
    }

    /// The domain that validates `name`: a covering domain that is current, else the
    /// most specific one that would cover it with `method`, else a new one.
    pub fn responsible_domain(
        &mut self,
        name: &str,
        method: &DcvMethod,
        now: OffsetDateTime,
    ) -> u64 {
        let current = self
            .domains
            .values()
            .filter(|d| d.approval_covers(name) && self.domain_current(d, now))
            .max_by_key(|d| d.name.len());
        if let Some(d) = current {
            return d.id;
        }
        let method = method_for_name(method, name);
        let candidate = self
            .domains
            .values()
            .filter(|d| covers(&d.name, &method, name))
            .max_by_key(|d| d.name.len());
        match candidate {
            Some(d) => d.id,
            None => self.add_domain(name, method, now),
        }
    }

    /// Seeds the domains an order's names need: those not covered yet get a domain,
    /// validated now unless `validated` is false (then the covering ones lose theirs).
    pub(crate) fn seed_order_domains(
        &mut self,
        names: &[String],
        validated: bool,
        now: OffsetDateTime,
    ) {
        for name in names {
            let covering: Vec<u64> = self
                .domains
                .values()
                .filter(|d| covers(&d.name, &d.dcv_method, name))
                .map(|d| d.id)
                .collect();
            if covering.is_empty() {
                let id = self.add_domain(name, DcvMethod::DnsTxtToken, now);
                if validated && let Some(d) = self.domains.get_mut(&id) {
                    d.approve(now);
                }
            } else if !validated {
                for id in covering {
                    if let Some(d) = self.domains.get_mut(&id) {
                        d.set_approval(None);
                    }
                }
            }
        }
    }

    /// Adds or updates a domain from the seed file or the admin API.
    pub fn seed_domain(&mut self, seed: &DomainSeed, now: OffsetDateTime) -> ApiResult<u64> {
        let name = base_name(&seed.name);
        if name.is_empty() || name.contains('*') {
            return Err(ApiError::bad_request(
                "invalid_domain_name",
                format!("{:?} is not a domain name.", seed.name),
            ));
        }
        let id = match self.domain_by_name(&name) {
            Some(d) => d.id,
            None => self.add_domain(&name, DcvMethod::DnsTxtToken, now),
        };
        let d = self.domain_mut(id)?;
        if let Some(m) = &seed.dcv_method {
            d.dcv_method = m.clone();
        }
        d.set_approval(seed.validated.then(|| seed.validated_at.unwrap_or(now)));
        Ok(id)
    }

    pub fn patch_domain(
        &mut self,
        id: u64,
        patch: &DomainPatch,
        now: OffsetDateTime,
    ) -> ApiResult<()> {
        let d = self.domain_mut(id)?;
        if let Some(m) = &patch.dcv_method {
            d.dcv_method = m.clone();
        }
        match (patch.validated, patch.validated_at) {
            (Some(false), _) => d.set_approval(None),
            (_, Some(at)) => d.set_approval(Some(at)),
            (Some(true), None) => d.approve(now),
            (None, None) => {}
        }
        Ok(())
    }

    /// `validation_current` of the admin patch: false lapses the domains covering the
    /// order's names; true approves them now.
    pub(crate) fn set_order_validation(
        &mut self,
        id: u64,
        current: bool,
        now: OffsetDateTime,
    ) -> ApiResult<()> {
        let order = self.order(id)?;
        let method = order.method();
        let names = self.dcv_names(order);
        if !current {
            self.seed_order_domains(&names, false, now);
            return Ok(());
        }
        for name in names {
            let d = self.responsible_domain(&name, &method, now);
            if let Some(d) = self.domains.get_mut(&d) {
                d.approve(now);
            }
        }
        Ok(())
    }

    /// The names DCV is about: the pending reissue's, else the current certificate's.
    pub(crate) fn dcv_names(&self, order: &Order) -> Vec<String> {
        let cert = self
            .pending_reissue(order)
            .or_else(|| self.certificates.get(&order.current_certificate));
        cert.map(|c| c.dns_names.clone()).unwrap_or_default()
    }

    /// The order's names grouped by the domain that validates them.
    pub(crate) fn order_domains(
        &mut self,
        order_id: u64,
        now: OffsetDateTime,
    ) -> ApiResult<Vec<(u64, Vec<String>)>> {
        let order = self.order(order_id)?;
        let method = order.method();
        let names = self.dcv_names(order);
        let mut groups: Vec<(u64, Vec<String>)> = Vec::new();
        for name in names {
            let id = self.responsible_domain(&name, &method, now);
            match groups.iter_mut().find(|(g, _)| *g == id) {
                Some((_, v)) => v.push(name),
                None => groups.push((id, vec![name])),
            }
        }
        Ok(groups)
    }

    /// A reissue waits for DCV: its uncovered domains become pending validation and
    /// DigiCert's checks start. Returns whether anything changed.
    pub(crate) fn start_order_dcv(&mut self, order_id: u64, now: OffsetDateTime) -> bool {
        let Ok(groups) = self.order_domains(order_id, now) else {
            return false;
        };
        let speedup = self.dcv.poll_speedup;
        let mut changed = false;
        for (id, _) in groups {
            let current = self
                .domains
                .get(&id)
                .is_some_and(|d| self.domain_current(d, now));
            if let Some(d) = self.domains.get_mut(&id)
                && !current
                && !d.pending_validation
            {
                d.start_polling(now, speedup);
                changed = true;
            }
        }
        changed
    }

    /// The values a check of domain `id` accepts: its own value and the order values
    /// of orders it validates, when unexpired.
    pub(crate) fn accepted_tokens(&self, id: u64, now: OffsetDateTime) -> Vec<String> {
        let Some(d) = self.domains.get(&id) else {
            return Vec::new();
        };
        let mut tokens: Vec<String> = d
            .token
            .iter()
            .filter(|t| t.valid_at(now))
            .map(|t| t.value.clone())
            .collect();
        for order in self.orders.values() {
            let covered = self
                .dcv_names(order)
                .iter()
                .any(|n| covers(&d.name, &DcvMethod::DnsTxtToken, n));
            if let Some(v) = order.dcv_random_value.as_ref().filter(|v| v.valid_at(now))
                && covered
                && !tokens.contains(&v.value)
            {
                tokens.push(v.value.clone());
            }
        }
        tokens
    }

    pub(crate) fn check_target(
        &self,
        id: u64,
        dns_names: Vec<String>,
        now: OffsetDateTime,
    ) -> ApiResult<CheckTarget> {
        let d = self.domain(id)?;
        Ok(CheckTarget {
            domain_id: id,
            name: d.name.clone(),
            method: d.dcv_method.clone(),
            tokens: self.accepted_tokens(id, now),
            dns_names,
        })
    }

    /// Domains whose own DigiCert check is due.
    pub fn due_polls(&self, now: OffsetDateTime) -> Vec<CheckTarget> {
        self.domains
            .values()
            .filter(|d| {
                d.pending_validation
                    && d.dcv_method.is_token()
                    && d.next_poll.is_some_and(|t| t <= now)
            })
            .filter_map(|d| self.check_target(d.id, Vec::new(), now).ok())
            .collect()
    }

    /// Records a failed DigiCert check and schedules the next.
    pub fn poll_failed(&mut self, id: u64, message: String, now: OffsetDateTime) {
        let speedup = self.dcv.poll_speedup;
        if let Some(d) = self.domains.get_mut(&id) {
            d.last_check_error = Some(message);
            d.next_poll = d.poll_started.and_then(|s| next_poll(s, now, speedup));
        }
    }

    pub fn approve_domain(&mut self, id: u64, now: OffsetDateTime) {
        if let Some(d) = self.domains.get_mut(&id) {
            d.approve(now);
        }
    }
}

pub(crate) fn domain_not_found(id: u64) -> ApiError {
    ApiError::new(404, "not_found|domain", format!("Domain {id} not found."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::default_reuse_schedule;
    use time::macros::{date, datetime};

    #[test]
    fn reuse_period_follows_the_clock_date() {
        let s = default_reuse_schedule();
        let cases = [
            (datetime!(2020-01-01 0:00 UTC), 397),
            (datetime!(2025-06-01 0:00 UTC), 397),
            (datetime!(2026-02-23 23:59 UTC), 397),
            (datetime!(2026-02-24 0:00 UTC), 199),
            (datetime!(2027-03-14 12:00 UTC), 199),
            (datetime!(2027-03-15 0:00 UTC), 100),
            (datetime!(2029-03-14 0:00 UTC), 100),
            (datetime!(2029-03-15 0:00 UTC), 10),
            (datetime!(2035-01-01 0:00 UTC), 10),
        ];
        for (now, days) in cases {
            assert_eq!(reuse_period(&s, now), Duration::days(days), "{now}");
        }
        let custom = [ReuseStep {
            from: date!(2030 - 01 - 01),
            days: 5,
        }];
        assert_eq!(
            reuse_period(&custom, datetime!(2026-01-01 0:00 UTC)),
            Duration::days(5)
        );
    }

    #[test]
    fn currency_is_judged_with_the_period_of_now() {
        let s = default_reuse_schedule();
        let now = datetime!(2029-06-01 0:00 UTC);
        assert!(!is_current(None, &s, now));
        assert!(is_current(Some(now - Duration::days(9)), &s, now));
        assert!(!is_current(Some(now - Duration::days(10)), &s, now));
        assert!(!is_current(Some(now - Duration::days(11)), &s, now));
        // Done in 2026 with 199 days in force, judged in 2026-10 under the same rule.
        let then = datetime!(2026-10-01 0:00 UTC);
        assert!(is_current(Some(then - Duration::days(198)), &s, then));
        assert!(!is_current(Some(then - Duration::days(200)), &s, then));
    }

    #[test]
    fn polling_schedule() {
        let t0 = datetime!(2026-12-01 0:00 UTC);
        let m = Duration::minutes;
        let cases = [
            (Duration::ZERO, Some(m(1))),
            (Duration::seconds(30), Some(m(1))),
            (m(1), Some(m(2))),
            (m(14), Some(m(15))),
            (m(15), Some(m(20))),
            (m(59), Some(m(60))),
            (m(60), Some(m(75))),
            (Duration::hours(23) + m(50), Some(Duration::hours(24))),
            (Duration::hours(24), Some(Duration::hours(25))),
            (Duration::hours(239), Some(Duration::hours(240))),
            (Duration::hours(240), None),
            (Duration::days(30), None),
        ];
        for (elapsed, want) in cases {
            assert_eq!(
                next_poll(t0, t0 + elapsed, 1),
                want.map(|d| t0 + d),
                "{elapsed}"
            );
        }
        // Compressed 60 times: the first check after 1 s, the end after 4 h.
        assert_eq!(next_poll(t0, t0, 60), Some(t0 + Duration::seconds(1)));
        assert_eq!(next_poll(t0, t0 + Duration::hours(4), 60), None);
    }

    #[test]
    fn coverage_and_the_file_method_rule() {
        let txt = DcvMethod::DnsTxtToken;
        let http = DcvMethod::HttpToken;
        let cases = [
            ("example.com", &txt, "example.com", true),
            ("example.com", &txt, "www.example.com", true),
            ("example.com", &txt, "*.example.com", true),
            ("example.com", &txt, "a.b.example.com", true),
            ("example.com", &txt, "badexample.com", false),
            ("www.example.com", &txt, "example.com", false),
            ("example.com", &DcvMethod::Email, "*.example.com", true),
            ("example.com", &http, "example.com", true),
            ("example.com", &http, "EXAMPLE.com.", true),
            ("example.com", &http, "www.example.com", false),
            ("example.com", &http, "*.example.com", false),
        ];
        for (domain, method, name, want) in cases {
            assert_eq!(
                covers(domain, method, name),
                want,
                "{domain} {method} {name}"
            );
        }
    }

    #[test]
    fn record_names() {
        assert_eq!(
            txt_names("*.Example.com", true),
            ["example.com", "_dnsauth.example.com"]
        );
        assert_eq!(txt_names("example.com", false), ["example.com"]);
        assert_eq!(cname_name("www.example.com"), "_dnsauth.www.example.com");
        assert_eq!(cname_target("abc"), "abc.dcv.digicert.com");
        assert_eq!(
            http_token_url("www.example.com"),
            "http://www.example.com/.well-known/pki-validation/fileauth.txt"
        );
        let t = random_token();
        assert_eq!(t.len(), 32);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
    }
}
