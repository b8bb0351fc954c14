//! What a reissue would revoke, and whether the user agreed to it.
//!
//! DigiCert revokes every earlier certificate of an order (the original, earlier
//! reissues and all duplicates) 48-72 hours after a reissue that removes or changes a
//! name. Adding names or a new key for the same names revokes nothing.

/// Names the order's current certificate carries that a certificate for `wanted`
/// would not. The base domain of a wildcard comes back with it (DigiCert adds it to
/// wildcard certificates), so it is not dropped; a `www.` twin may not, so it is.
pub fn dropped_names(current: &[String], wanted: &[String]) -> Vec<String> {
    let wanted: Vec<String> = wanted.iter().map(|n| n.to_ascii_lowercase()).collect();
    let comes_back = |n: &str| {
        wanted
            .iter()
            .any(|w| w == n || w.strip_prefix("*.") == Some(n))
    };
    let mut dropped: Vec<String> = current
        .iter()
        .map(|n| n.to_ascii_lowercase())
        .filter(|n| !comes_back(n))
        .collect();
    dropped.sort();
    dropped.dedup();
    dropped
}

/// A short fingerprint of a set of names (order and case do not matter): what the
/// consent annotation names, so that it covers this change and no later one.
pub fn names_fingerprint(names: &[String]) -> String {
    let mut names: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
    names.sort();
    names.dedup();
    crate::keys::sha256_hex(names.join(",").as_bytes())[..12].to_string()
}

/// Whether a reissue for `wanted` may be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Consent {
    /// It revokes nothing (no name is dropped, or the order has no certificate yet).
    NotNeeded,
    /// It drops names, and the user agreed (`names` are the dropped ones).
    Given { dropped: Vec<String> },
    /// It drops names; the user has to agree with this fingerprint first.
    Required {
        dropped: Vec<String>,
        fingerprint: String,
    },
}

/// The guard before a reissue. `current`: the names of the order's current certificate
/// (`None`: it has none). `allow_all`: `spec.allowRevocationOfPrevious`. `annotation`:
/// the consent annotation's value, which must be the fingerprint of the new names.
pub fn revocation_consent(
    current: Option<&[String]>,
    wanted: &[String],
    allow_all: bool,
    annotation: Option<&str>,
) -> Consent {
    let dropped = current.map_or_else(Vec::new, |c| dropped_names(c, wanted));
    if dropped.is_empty() {
        return Consent::NotNeeded;
    }
    let fingerprint = names_fingerprint(wanted);
    if allow_all || annotation.is_some_and(|a| a.trim() == fingerprint) {
        Consent::Given { dropped }
    } else {
        Consent::Required {
            dropped,
            fingerprint,
        }
    }
}

/// One certificate the reissue would revoke, as status shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AtRisk {
    pub certificate_id: u64,
    pub serial_number: Option<String>,
    /// `current`, `reissue` or `duplicate`.
    pub kind: &'static str,
    /// `namespace/secret` of the Secrets known to hold it.
    pub secrets: Vec<String>,
}

/// The message of a held reissue: what would be revoked and how to agree.
pub fn consent_message(
    order: &str,
    dropped: &[String],
    at_risk: &[AtRisk],
    fingerprint: &str,
    annotation: &str,
) -> String {
    let certificates = if at_risk.is_empty() {
        "the order's earlier certificates".to_string()
    } else {
        at_risk
            .iter()
            .map(|c| {
                let mut s = format!("{} {}", c.kind, c.certificate_id);
                if let Some(serial) = &c.serial_number {
                    s.push_str(&format!(" (serial {serial})"));
                }
                if !c.secrets.is_empty() {
                    s.push_str(&format!(" in {}", c.secrets.join(", ")));
                }
                s
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    format!(
        "the reissue drops {} from the order's certificate, so DigiCert would revoke {certificates} within 72 hours; it is not sent until you agree: kubectl annotate digicertorder {order} {annotation}={fingerprint} (or set spec.allowRevocationOfPrevious)",
        dropped.join(", "),
    )
}

/// Whether the certificate in the Secret is the one found revoked.
pub fn revoked_in_secret(
    revoked: Option<&crate::crd::RevokedStatus>,
    secret: &super::SecretState,
) -> bool {
    let (Some(r), super::SecretState::Valid(s)) = (revoked, secret) else {
        return false;
    };
    Some(r.certificate_id) == s.certificate_id
        || r.serial_number
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case(&s.leaf.serial_number))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_names_that_do_not_come_back_are_dropped() {
        let cases: [(&[&str], &[&str], &[&str]); 7] = [
            // Same names, another order or case: a rekey.
            (&["a.com", "b.a.com"], &["B.a.com", "a.com"], &[]),
            // Adding names revokes nothing.
            (&["a.com"], &["a.com", "c.a.com"], &[]),
            // Removing one does.
            (&["a.com", "b.a.com"], &["a.com"], &["b.a.com"]),
            // Changing one is removing it.
            (&["a.com", "b.a.com"], &["a.com", "c.a.com"], &["b.a.com"]),
            // The wildcard's base comes back; a www twin need not.
            (&["*.a.com", "a.com"], &["*.a.com"], &[]),
            (&["a.com", "www.a.com"], &["a.com"], &["www.a.com"]),
            // A new common name that drops the old one.
            (&["a.com", "b.a.com"], &["b.a.com"], &["a.com"]),
        ];
        for (current, wanted, dropped) in cases {
            assert_eq!(
                dropped_names(&v(current), &v(wanted)),
                v(dropped),
                "{current:?} -> {wanted:?}"
            );
        }
    }

    #[test]
    fn consent_is_for_this_change_only() {
        let current = v(&["a.com", "b.a.com"]);
        let wanted = v(&["a.com"]);
        let fp = names_fingerprint(&wanted);
        assert_eq!(fp, names_fingerprint(&v(&["A.com"])));
        assert_ne!(fp, names_fingerprint(&v(&["a.com", "c.a.com"])));
        let required = Consent::Required {
            dropped: v(&["b.a.com"]),
            fingerprint: fp.clone(),
        };
        let given = Consent::Given {
            dropped: v(&["b.a.com"]),
        };
        let cases = [
            (Some(&current[..]), false, None, required.clone()),
            // Consent for another set of names does not count.
            (
                Some(&current[..]),
                false,
                Some("0123456789ab"),
                required.clone(),
            ),
            (Some(&current[..]), false, Some(fp.as_str()), given.clone()),
            (Some(&current[..]), true, None, given),
            // No certificate yet, or nothing dropped: nothing to agree to.
            (None, false, None, Consent::NotNeeded),
            (Some(&wanted[..]), false, None, Consent::NotNeeded),
        ];
        for (current, allow, annotation, want) in cases {
            assert_eq!(
                revocation_consent(current, &wanted, allow, annotation),
                want,
                "{current:?} {allow} {annotation:?}"
            );
        }
    }

    #[test]
    fn the_message_names_the_certificates_the_secrets_and_the_command() {
        let at_risk = [
            AtRisk {
                certificate_id: 7,
                serial_number: Some("0A".into()),
                kind: "current",
                secrets: vec!["team-a/web-tls".into()],
            },
            AtRisk {
                certificate_id: 9,
                serial_number: None,
                kind: "duplicate",
                secrets: vec!["team-b/web-tls".into()],
            },
        ];
        let m = consent_message(
            "web",
            &v(&["b.a.com"]),
            &at_risk,
            "0123456789ab",
            "digicert-operator.dev/allow-revocation",
        );
        for part in [
            "drops b.a.com",
            "current 7 (serial 0A) in team-a/web-tls",
            "duplicate 9 in team-b/web-tls",
            "kubectl annotate digicertorder web digicert-operator.dev/allow-revocation=0123456789ab",
        ] {
            assert!(m.contains(part), "{part}: {m}");
        }
    }
}
