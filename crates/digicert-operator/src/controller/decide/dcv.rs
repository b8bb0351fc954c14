//! Domain validation decisions: which settings apply, what each domain's state is,
//! when to look at DigiCert's validation state, what to publish where, and how long
//! to wait after a record that is not visible or a check that failed.

use std::time::Duration;

use time::OffsetDateTime;

use crate::certcentral::dcv::{DcvMethod, OrderValidation};
use crate::crd::dcv::{DcvMethodSpec, DomainStatus, DomainValidationSpec};

/// Lead of the look ahead of a planned reissue, and margin after it, when the spec
/// gives none.
pub const DEFAULT_DCV_RENEW_BEFORE: Duration = Duration::from_secs(48 * 3600);

/// Where a TSIG (or other) Secret of the settings is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettingsFrom {
    /// The DigicertOrder's own `domainValidation`: its namespace.
    Order,
    /// The account's: the operator's namespace.
    Account,
}

/// The settings that apply: the order's own replace the account's as a whole.
pub fn dcv_settings<'a>(
    order: Option<&'a DomainValidationSpec>,
    account: Option<&'a DomainValidationSpec>,
) -> Option<(&'a DomainValidationSpec, SettingsFrom)> {
    match (order, account) {
        (Some(o), _) => Some((o, SettingsFrom::Order)),
        (None, Some(a)) => Some((a, SettingsFrom::Account)),
        (None, None) => None,
    }
}

pub fn dcv_method(spec: DcvMethodSpec) -> DcvMethod {
    match spec {
        DcvMethodSpec::DnsTxtToken => DcvMethod::DnsTxtToken,
        DcvMethodSpec::DnsCnameToken => DcvMethod::DnsCnameToken,
        DcvMethodSpec::HttpToken => DcvMethod::HttpToken,
    }
}

/// `renewBefore` of the settings, or the default.
pub fn dcv_renew_before(spec: &DomainValidationSpec) -> Duration {
    spec.renew_before
        .as_deref()
        .and_then(super::parse_duration)
        .unwrap_or(DEFAULT_DCV_RENEW_BEFORE)
}

/// An expiry as DigiCert writes it: an ISO 8601 time, or a date (taken at its start,
/// the earlier reading).
pub fn parse_expiry(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    if let Ok(t) = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        return Some(t);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, format)
        .ok()
        .map(|d| d.midnight().assume_utc())
}

pub const DOMAIN_VALIDATED: &str = "Validated";
pub const DOMAIN_PENDING: &str = "Pending";
pub const DOMAIN_EXPIRING: &str = "Expiring";
pub const DOMAIN_UNSUPPORTED: &str = "Unsupported";

/// Each domain of the order as DigiCert reports it, judged against the next planned
/// reissue: a validation that lapses before `planned + margin` is `Expiring`, so it is
/// renewed before the reissue needs it. Names `http-token` cannot validate are
/// `Unsupported` when that is the method.
pub fn domain_states(
    validation: &OrderValidation,
    method: DcvMethodSpec,
    planned: Option<OffsetDateTime>,
    margin: Duration,
    now: OffsetDateTime,
) -> Vec<DomainStatus> {
    let needed_until = planned.unwrap_or(now).max(now) + margin;
    validation
        .dns_name_validations
        .iter()
        .map(|v| {
            let expires = v.approval_expiration_date.as_deref().and_then(parse_expiry);
            let approved =
                v.status.eq_ignore_ascii_case("approved") && expires.is_none_or(|e| e > now);
            let state = if unsupported(method, &v.name_scope, &v.dns_names).is_some() {
                DOMAIN_UNSUPPORTED
            } else if !approved {
                DOMAIN_PENDING
            } else if expires.is_some_and(|e| e <= needed_until) {
                DOMAIN_EXPIRING
            } else {
                DOMAIN_VALIDATED
            };
            DomainStatus {
                name: v.name_scope.clone(),
                id: Some(v.domain_id),
                dns_names: v.dns_names.clone(),
                method: v.method.as_ref().map(|m| m.to_string()),
                state: state.into(),
                expires: expires.map(super::super::status::time),
            }
        })
        .collect()
}

/// Why `method` cannot validate this domain, if it cannot: the file method proves
/// control of one exact host name, never a wildcard (DigiCert refuses it).
pub fn unsupported(method: DcvMethodSpec, domain: &str, names: &[String]) -> Option<String> {
    if method != DcvMethodSpec::HttpToken {
        return None;
    }
    let wildcard = std::iter::once(domain)
        .chain(names.iter().map(String::as_str))
        .find(|n| n.starts_with("*."))?;
    Some(format!(
        "http-token cannot validate the wildcard {wildcard}: DigiCert checks a file on one exact host name; use dns-txt-token or dns-cname-token"
    ))
}

/// The domains to validate now: pending ones, and those lapsing before the next
/// reissue needs them.
pub fn domains_to_validate(domains: &[DomainStatus]) -> Vec<&DomainStatus> {
    domains
        .iter()
        .filter(|d| d.state == DOMAIN_PENDING || d.state == DOMAIN_EXPIRING)
        .collect()
}

/// When to read DigiCert's validation state (idle): once for a new certificate (so
/// status shows each domain), and again `lead` before the planned reissue. `None`:
/// not before the next certificate.
pub fn dcv_look(
    last_check: Option<OffsetDateTime>,
    planned: Option<OffsetDateTime>,
    lead: Duration,
    now: OffsetDateTime,
) -> Option<OffsetDateTime> {
    let Some(last) = last_check else {
        return Some(now);
    };
    let ahead = planned? - lead;
    (last < ahead).then_some(ahead.max(now))
}

/// Whether lapsing validations are renewed now: only from `lead` before the planned
/// reissue (earlier, a renewed validation could lapse again before it), and once in
/// that window (a reuse period shorter than the window cannot be outrun). Without a
/// planned reissue, at most once per `lead`.
pub fn renew_validations_now(
    planned: Option<OffsetDateTime>,
    lead: Duration,
    last_renewal: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> bool {
    let window_starts = planned.unwrap_or(now) - lead;
    now >= window_starts && last_renewal.is_none_or(|r| r < window_starts)
}

/// The record name or URL DigiCert looks at for `domain` (wildcards validate at their
/// base domain).
pub fn dcv_location(method: DcvMethodSpec, domain: &str) -> String {
    let base = domain.strip_prefix("*.").unwrap_or(domain);
    match method {
        DcvMethodSpec::DnsTxtToken => format!("TXT {base}"),
        DcvMethodSpec::DnsCnameToken => format!("CNAME _dnsauth.{base}"),
        DcvMethodSpec::HttpToken => {
            format!("http://{base}{}", crate::dcv::http::FILE_PATH)
        }
    }
}

/// How long to wait before looking again for a published record that is not visible
/// yet (nothing is asked of DigiCert meanwhile): 5 s doubling to 5 min.
pub fn visibility_wait(looks: u32) -> Duration {
    doubling(Duration::from_secs(5), looks, Duration::from_secs(300))
}

/// How long to wait before asking DigiCert to check again after a failed check:
/// 30 s doubling to 1 h. DigiCert's own polling goes on meanwhile.
pub fn check_wait(failed_checks: u32) -> Duration {
    doubling(
        Duration::from_secs(30),
        failed_checks,
        Duration::from_secs(3600),
    )
}

fn doubling(base: Duration, n: u32, cap: Duration) -> Duration {
    let factor = 1u32 << n.saturating_sub(1).min(16);
    base.saturating_mul(factor).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certcentral::dcv::DnsNameValidation;
    use time::macros::datetime;

    fn spec(method: &str) -> DomainValidationSpec {
        serde_json::from_value(serde_json::json!({
            "method": method,
            "dns": {"dnsEndpoint": {}},
        }))
        .unwrap()
    }

    #[test]
    fn the_orders_settings_replace_the_accounts() {
        let (o, a) = (spec("dns-cname-token"), spec("dns-txt-token"));
        assert_eq!(
            dcv_settings(Some(&o), Some(&a)),
            Some((&o, SettingsFrom::Order))
        );
        assert_eq!(
            dcv_settings(None, Some(&a)),
            Some((&a, SettingsFrom::Account))
        );
        assert_eq!(dcv_settings(None, None), None);
    }

    #[test]
    fn renew_before_defaults_to_two_days() {
        assert_eq!(
            dcv_renew_before(&spec("dns-txt-token")),
            DEFAULT_DCV_RENEW_BEFORE
        );
        let mut s = spec("dns-txt-token");
        s.renew_before = Some("90m".into());
        assert_eq!(dcv_renew_before(&s), Duration::from_secs(5400));
    }

    #[test]
    fn expiries_are_times_or_dates() {
        assert_eq!(
            parse_expiry("2029-06-11T10:00:00+00:00"),
            Some(datetime!(2029-06-11 10:00 UTC))
        );
        assert_eq!(
            parse_expiry("2029-06-11"),
            Some(datetime!(2029-06-11 0:00 UTC))
        );
        assert_eq!(parse_expiry("soon"), None);
    }

    fn validation(entries: &[(&str, &str, Option<&str>, &[&str])]) -> OrderValidation {
        OrderValidation {
            dns_name_validations: entries
                .iter()
                .enumerate()
                .map(|(i, (name, status, expires, names))| DnsNameValidation {
                    domain_id: i as u64 + 1,
                    name_scope: name.to_string(),
                    approval_scope: None,
                    status: status.to_string(),
                    method: Some(DcvMethod::DnsTxtToken),
                    dns_names: names.iter().map(|n| n.to_string()).collect(),
                    approval_expiration_date: expires.map(str::to_string),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn each_domain_is_judged_against_the_next_reissue() {
        let now = datetime!(2029-06-01 0:00 UTC);
        let planned = Some(datetime!(2029-06-20 0:00 UTC));
        let v = validation(&[
            (
                "a.example",
                "approved",
                Some("2029-07-01T00:00:00Z"),
                &["a.example"],
            ),
            (
                "b.example",
                "approved",
                Some("2029-06-21T00:00:00Z"),
                &["b.example"],
            ),
            ("c.example", "pending", None, &["c.example"]),
            (
                "d.example",
                "approved",
                Some("2029-05-31T00:00:00Z"),
                &["d.example"],
            ),
            ("e.example", "approved", None, &["*.e.example"]),
        ]);
        let margin = Duration::from_secs(48 * 3600);
        let states: Vec<_> = domain_states(&v, DcvMethodSpec::DnsTxtToken, planned, margin, now)
            .into_iter()
            .map(|d| (d.name, d.state))
            .collect();
        let want = [
            ("a.example", DOMAIN_VALIDATED),
            ("b.example", DOMAIN_EXPIRING),
            ("c.example", DOMAIN_PENDING),
            // Reported approved, but its reuse period is over.
            ("d.example", DOMAIN_PENDING),
            ("e.example", DOMAIN_VALIDATED),
        ];
        for ((name, state), (want_name, want_state)) in states.iter().zip(want) {
            assert_eq!((name.as_str(), state.as_str()), (want_name, want_state));
        }
        let http = domain_states(&v, DcvMethodSpec::HttpToken, planned, margin, now);
        assert_eq!(http[4].state, DOMAIN_UNSUPPORTED);
        let todo: Vec<_> = domain_states(&v, DcvMethodSpec::DnsTxtToken, planned, margin, now);
        let names: Vec<_> = domains_to_validate(&todo)
            .iter()
            .map(|d| d.name.clone())
            .collect();
        assert_eq!(names, ["b.example", "c.example", "d.example"]);
    }

    #[test]
    fn without_a_planned_reissue_the_margin_counts_from_now() {
        let now = datetime!(2029-06-01 0:00 UTC);
        let v = validation(&[("a.example", "approved", Some("2029-06-02T00:00:00Z"), &[])]);
        let d = domain_states(
            &v,
            DcvMethodSpec::DnsTxtToken,
            None,
            Duration::from_secs(86400 * 2),
            now,
        );
        assert_eq!(d[0].state, DOMAIN_EXPIRING);
        assert_eq!(
            d[0].expires
                .as_ref()
                .map(super::super::super::status::show)
                .as_deref(),
            Some("2029-06-02T00:00:00Z")
        );
    }

    #[test]
    fn http_token_refuses_wildcards_only() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(
            unsupported(
                DcvMethodSpec::HttpToken,
                "example.com",
                &names(&["www.example.com"])
            )
            .is_none()
        );
        let why = unsupported(
            DcvMethodSpec::HttpToken,
            "example.com",
            &names(&["*.example.com"]),
        )
        .unwrap();
        assert!(
            why.contains("*.example.com") && why.contains("dns-txt-token"),
            "{why}"
        );
        assert!(unsupported(DcvMethodSpec::DnsTxtToken, "*.example.com", &[]).is_none());
    }

    #[test]
    fn validation_is_looked_at_once_per_certificate_and_ahead_of_the_reissue() {
        let now = datetime!(2029-06-01 0:00 UTC);
        let planned = Some(datetime!(2029-06-20 0:00 UTC));
        let lead = Duration::from_secs(48 * 3600);
        let ahead = datetime!(2029-06-18 0:00 UTC);
        // Never looked: now.
        assert_eq!(dcv_look(None, planned, lead, now), Some(now));
        // Looked for this certificate: at the lead before the reissue.
        assert_eq!(dcv_look(Some(now), planned, lead, now), Some(ahead));
        // Looked ahead already: not again before the next certificate.
        assert_eq!(dcv_look(Some(ahead), planned, lead, ahead), None);
        // The lead has passed but the last look was before it: now.
        let late = datetime!(2029-06-19 0:00 UTC);
        assert_eq!(dcv_look(Some(now), planned, lead, late), Some(late));
        assert_eq!(dcv_look(Some(now), None, lead, now), None);
    }

    #[test]
    fn validations_are_renewed_once_just_ahead_of_the_reissue() {
        let lead = Duration::from_secs(48 * 3600);
        let planned = Some(datetime!(2029-06-20 0:00 UTC));
        let early = datetime!(2029-06-01 0:00 UTC);
        let window = datetime!(2029-06-18 6:00 UTC);
        // Months ahead: a renewed validation would lapse again before the reissue.
        assert!(!renew_validations_now(planned, lead, None, early));
        assert!(renew_validations_now(planned, lead, None, window));
        // Renewed in this window already: not again (even if still short).
        let renewed = Some(datetime!(2029-06-18 1:00 UTC));
        assert!(!renew_validations_now(planned, lead, renewed, window));
        // Renewed before the window (the previous cycle): again.
        assert!(renew_validations_now(planned, lead, Some(early), window));
        // No planned reissue: at most once per lead.
        assert!(renew_validations_now(None, lead, None, early));
        assert!(!renew_validations_now(
            None,
            lead,
            Some(early - time::Duration::hours(47)),
            early
        ));
        assert!(renew_validations_now(
            None,
            lead,
            Some(early - time::Duration::hours(49)),
            early
        ));
    }

    #[test]
    fn locations_follow_digicerts_current_rules() {
        assert_eq!(
            dcv_location(DcvMethodSpec::DnsTxtToken, "*.example.com"),
            "TXT example.com"
        );
        assert_eq!(
            dcv_location(DcvMethodSpec::DnsCnameToken, "example.com"),
            "CNAME _dnsauth.example.com"
        );
        assert_eq!(
            dcv_location(DcvMethodSpec::HttpToken, "www.example.com"),
            "http://www.example.com/.well-known/pki-validation/fileauth.txt"
        );
    }

    #[test]
    fn waits_double_to_a_cap() {
        let secs = |d: Duration| d.as_secs();
        assert_eq!(
            (1..=8)
                .map(|n| secs(visibility_wait(n)))
                .collect::<Vec<_>>(),
            [5, 10, 20, 40, 80, 160, 300, 300]
        );
        assert_eq!(secs(check_wait(1)), 30);
        assert_eq!(secs(check_wait(4)), 240);
        assert_eq!(secs(check_wait(30)), 3600);
        assert_eq!(secs(visibility_wait(0)), 5);
    }
}
