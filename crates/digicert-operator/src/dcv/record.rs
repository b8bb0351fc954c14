//! The DNS record that proves control of a domain to DigiCert.

use std::fmt;

/// Where DigiCert's CNAME method points `_dnsauth.<domain>`: `<token>.` + this.
pub const CNAME_TARGET_SUFFIX: &str = "dcv.digicert.com";

/// The TTL of validation records: short, as they live only until DigiCert checks.
pub const DEFAULT_TTL: u32 = 60;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RecordData {
    /// One TXT string (the random value).
    Txt(String),
    /// A CNAME target, without the trailing dot.
    Cname(String),
}

/// One resource record to publish.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DnsRecord {
    /// The owner name, fully qualified; a trailing dot is optional.
    pub name: String,
    pub data: RecordData,
    pub ttl: u32,
}

impl DnsRecord {
    /// `dns-txt-token`: TXT with the random value at the domain itself (`example.com`
    /// for both `example.com` and `*.example.com`).
    pub fn txt_token(domain: &str, token: &str) -> Self {
        DnsRecord {
            name: base_domain(domain),
            data: RecordData::Txt(token.to_string()),
            ttl: DEFAULT_TTL,
        }
    }

    /// `dns-cname-token`: `_dnsauth.<domain>` CNAME `<token>.dcv.digicert.com`.
    pub fn cname_token(domain: &str, token: &str) -> Self {
        DnsRecord {
            name: format!("_dnsauth.{}", base_domain(domain)),
            data: RecordData::Cname(format!("{}.{CNAME_TARGET_SUFFIX}", token.trim())),
            ttl: DEFAULT_TTL,
        }
    }

    /// The owner name without a trailing dot, lower case.
    pub fn fqdn(&self) -> String {
        normalize(&self.name)
    }

    /// `TXT` or `CNAME`.
    pub fn record_type(&self) -> &'static str {
        match self.data {
            RecordData::Txt(_) => "TXT",
            RecordData::Cname(_) => "CNAME",
        }
    }

    /// The record data as written in a zone file's spirit, unquoted (external-dns's
    /// `targets` form).
    pub fn value(&self) -> &str {
        match &self.data {
            RecordData::Txt(text) => text,
            RecordData::Cname(target) => target.trim_end_matches('.'),
        }
    }
}

impl fmt::Display for DnsRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.data {
            RecordData::Txt(text) => write!(f, "{} TXT {text:?}", self.fqdn()),
            RecordData::Cname(_) => write!(f, "{} CNAME {}", self.fqdn(), self.value()),
        }
    }
}

/// A DNS name without the trailing dot, lower case.
pub fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The domain a certificate name is validated on: wildcard label stripped.
pub fn base_domain(domain: &str) -> String {
    let name = normalize(domain);
    match name.strip_prefix("*.") {
        Some(rest) => rest.to_string(),
        None => name,
    }
}

/// Whether `name` is `zone` or below it (both normalized by the caller or not).
pub fn in_zone(name: &str, zone: &str) -> bool {
    let (name, zone) = (normalize(name), normalize(zone));
    zone.is_empty() || name == zone || name.ends_with(&format!(".{zone}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_token_goes_to_the_domain_itself() {
        let r = DnsRecord::txt_token("example.com", "abc123");
        assert_eq!(r.name, "example.com");
        assert_eq!(r.data, RecordData::Txt("abc123".into()));
        assert_eq!(r.ttl, DEFAULT_TTL);
        assert_eq!(r.record_type(), "TXT");
        assert_eq!(
            DnsRecord::txt_token("*.Example.COM.", "t").name,
            "example.com"
        );
        assert_eq!(
            DnsRecord::txt_token("www.example.com", "t").name,
            "www.example.com"
        );
    }

    #[test]
    fn cname_token_points_dnsauth_at_digicert() {
        let r = DnsRecord::cname_token("*.example.com", "abc123");
        assert_eq!(r.name, "_dnsauth.example.com");
        assert_eq!(r.data, RecordData::Cname("abc123.dcv.digicert.com".into()));
        assert_eq!(r.value(), "abc123.dcv.digicert.com");
        assert_eq!(
            r.to_string(),
            "_dnsauth.example.com CNAME abc123.dcv.digicert.com"
        );
        let sub = DnsRecord::cname_token("shop.example.com", "t");
        assert_eq!(sub.name, "_dnsauth.shop.example.com");
    }

    #[test]
    fn zone_membership_is_by_whole_labels() {
        assert!(in_zone("a.b.example.com", "example.com"));
        assert!(in_zone("example.com.", "Example.com"));
        assert!(!in_zone("badexample.com", "example.com"));
        assert!(!in_zone("example.org", "example.com"));
    }
}
