//! Duplicates: a certificate of its own key for the names of the order's current
//! certificate. They follow that certificate: new names or a later expiry (the order
//! was reissued) call for a new duplicate, and so does a revoked one.

use time::OffsetDateTime;

use super::{ReissueReason, SecretState, names_fingerprint};
use crate::crd::DigicertOrderSpec;

/// The order's current certificate, as order info shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderCurrent {
    pub id: u64,
    /// The order's status (`issued`, `reissue_pending`, `revoked`, ...).
    pub order_status: String,
    /// Issued: it has a serial number.
    pub issued: bool,
    /// Common name first, then the other names.
    pub names: Vec<String>,
    /// End of its last day (`valid_till` is a date).
    pub valid_till: Option<OffsetDateTime>,
}

/// What a duplicate-taking DigicertOrder does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DuplicatePlan {
    /// The Secret holds a good duplicate of the current certificate.
    Keep,
    /// Take a new duplicate for these names (subject first).
    Request {
        reason: ReissueReason,
        names: Vec<String>,
    },
    /// No duplicate can be had now: (reason, message) for `Ready`.
    Wait {
        reason: &'static str,
        message: String,
    },
}

/// The names of a duplicate: those of the order's certificate, with the spec's common
/// name as the subject; `None` when it is not among them.
pub fn duplicate_names(common_name: &str, current: &[String]) -> Option<Vec<String>> {
    let cn = common_name.to_ascii_lowercase();
    let mut names: Vec<String> = current.iter().map(|n| n.to_ascii_lowercase()).collect();
    let at = names.iter().position(|n| *n == cn)?;
    let cn = names.remove(at);
    names.retain(|n| *n != cn);
    names.dedup();
    names.insert(0, cn);
    Some(names)
}

/// Whether a new duplicate is needed, and for which names. `copied`: the order's
/// certificate the Secret's duplicate was made from, when known.
pub fn duplicate_plan(
    spec: &DigicertOrderSpec,
    secret: &SecretState,
    current: &OrderCurrent,
    copied: Option<u64>,
    revoked: bool,
    manual: bool,
) -> DuplicatePlan {
    let order = spec.order_id;
    if let Some(wait) = order_unfit(order, current) {
        return wait;
    }
    let Some(names) = duplicate_names(&spec.common_name, &current.names) else {
        return DuplicatePlan::Wait {
            reason: "NamesMismatch",
            message: format!(
                "the order's current certificate is for {}; spec.commonName {} is not among them",
                current.names.join(", "),
                spec.common_name
            ),
        };
    };
    let request = |reason| DuplicatePlan::Request {
        reason,
        names: names.clone(),
    };
    let stored = match secret {
        SecretState::Missing => return request(ReissueReason::Missing),
        SecretState::Invalid(why) => return request(ReissueReason::Invalid(why.clone())),
        SecretState::Valid(s) => s,
    };
    if !stored.key_matches {
        return request(ReissueReason::Invalid(
            "tls.key does not belong to tls.crt".into(),
        ));
    }
    if stored.order_id.is_some_and(|id| id != order) {
        return request(ReissueReason::OrderChanged);
    }
    if let Some(why) = &stored.foreign {
        return request(ReissueReason::Foreign(why.clone()));
    }
    if revoked {
        return request(ReissueReason::Revoked);
    }
    let mut have = stored.leaf.dns_names.clone();
    if let Some(cn) = &stored.leaf.common_name {
        have.push(cn.clone());
    }
    if names_fingerprint(&have) != names_fingerprint(&names) {
        return request(ReissueReason::OrderReissued);
    }
    if stored.key != spec.private_key.kind() {
        return request(ReissueReason::KeyChanged);
    }
    if manual {
        return request(ReissueReason::Manual);
    }
    // The order was reissued: another certificate is current, or (not knowing what
    // the copy was made from) the current one lasts longer than this copy.
    let reissued = match copied {
        Some(id) => id != current.id,
        None => current
            .valid_till
            .is_some_and(|t| t > stored.leaf.not_after + time::Duration::days(1)),
    };
    if reissued {
        return request(ReissueReason::OrderReissued);
    }
    DuplicatePlan::Keep
}

/// Why an order gives no duplicate now: revoked, or nothing issued to copy.
fn order_unfit(order: u64, current: &OrderCurrent) -> Option<DuplicatePlan> {
    if current.order_status == "revoked" {
        return Some(DuplicatePlan::Wait {
            reason: "OrderRevoked",
            message: format!("order {order} was revoked at DigiCert; it gives no more duplicates"),
        });
    }
    if !current.issued {
        return Some(DuplicatePlan::Wait {
            reason: "OrderNotIssued",
            message: format!(
                "order {order} has no issued certificate to duplicate (status {})",
                current.order_status
            ),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::decide::StoredCertificate;
    use crate::keys::{CertificateInfo, KeyKind};
    use time::macros::datetime;

    fn spec(cn: &str) -> DigicertOrderSpec {
        serde_json::from_value(serde_json::json!({
            "orderId": 7, "commonName": cn, "secretName": "tls", "issuance": "Duplicate"
        }))
        .unwrap()
    }

    fn current(names: &[&str], valid_till: OffsetDateTime) -> OrderCurrent {
        OrderCurrent {
            id: 100,
            order_status: "issued".into(),
            issued: true,
            names: names.iter().map(|s| s.to_string()).collect(),
            valid_till: Some(valid_till),
        }
    }

    fn stored(names: &[&str], not_after: OffsetDateTime) -> SecretState {
        SecretState::Valid(Box::new(StoredCertificate {
            leaf: CertificateInfo {
                common_name: Some(names[0].into()),
                dns_names: names.iter().map(|s| s.to_string()).collect(),
                not_before: not_after - time::Duration::days(90),
                not_after,
                serial_number: "0A".into(),
                thumbprint: "AA".into(),
                key: KeyKind::Rsa(2048),
                public_key_bits: vec![1, 2, 3],
                public_key_info: vec![],
                self_signed: false,
                subject: format!("CN={}", names[0]),
                issuer: "CN=CA".into(),
            },
            key: KeyKind::Rsa(2048),
            key_matches: true,
            order_id: Some(7),
            certificate_id: Some(200),
            requested_names: None,
            foreign: None,
        }))
    }

    #[test]
    fn the_subject_is_the_specs_common_name_among_the_orders_names() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            duplicate_names("www.a.com", &names(&["a.com", "www.a.com"])),
            Some(names(&["www.a.com", "a.com"]))
        );
        assert_eq!(
            duplicate_names("A.com", &names(&["a.com", "b.a.com"])),
            Some(names(&["a.com", "b.a.com"]))
        );
        assert_eq!(duplicate_names("c.a.com", &names(&["a.com"])), None);
    }

    #[test]
    fn a_duplicate_follows_the_orders_certificate() {
        let till = datetime!(2027-06-01 23:59:59 UTC);
        let later = datetime!(2027-09-01 23:59:59 UTC);
        let ab = ["a.com", "b.a.com"];
        let request = |reason| DuplicatePlan::Request {
            reason,
            names: vec!["a.com".into(), "b.a.com".into()],
        };
        // (what, Secret, order's certificate, copied from, revoked, manual, plan)
        type Case = (
            &'static str,
            SecretState,
            OrderCurrent,
            Option<u64>,
            bool,
            bool,
            DuplicatePlan,
        );
        let cases: Vec<Case> = vec![
            (
                "no Secret yet",
                SecretState::Missing,
                current(&ab, till),
                None,
                false,
                false,
                request(ReissueReason::Missing),
            ),
            (
                "a good copy",
                stored(&ab, till),
                current(&ab, till),
                Some(100),
                false,
                false,
                DuplicatePlan::Keep,
            ),
            (
                "revoked",
                stored(&ab, till),
                current(&ab, till),
                Some(100),
                true,
                false,
                request(ReissueReason::Revoked),
            ),
            (
                "the order was reissued for other names",
                stored(&["a.com", "c.a.com"], till),
                current(&ab, till),
                Some(100),
                false,
                false,
                request(ReissueReason::OrderReissued),
            ),
            (
                "the order was reissued for longer (copy's source unknown)",
                stored(&ab, till),
                current(&ab, later),
                None,
                false,
                false,
                request(ReissueReason::OrderReissued),
            ),
            (
                "a good copy, its source unknown",
                stored(&ab, till),
                current(&ab, till),
                None,
                false,
                false,
                DuplicatePlan::Keep,
            ),
            (
                "another certificate is the order's, however long it lasts",
                stored(&ab, till),
                current(&ab, till),
                Some(99),
                false,
                false,
                request(ReissueReason::OrderReissued),
            ),
            (
                "renewal asked for",
                stored(&ab, till),
                current(&ab, till),
                Some(100),
                false,
                true,
                request(ReissueReason::Manual),
            ),
        ];
        for (what, secret, current, copied, revoked, manual, want) in cases {
            assert_eq!(
                duplicate_plan(&spec("a.com"), &secret, &current, copied, revoked, manual),
                want,
                "{what}"
            );
        }
    }

    #[test]
    fn no_duplicate_without_an_issued_certificate_that_has_the_common_name() {
        let till = datetime!(2027-06-01 23:59:59 UTC);
        let mut pending = current(&["a.com"], till);
        pending.issued = false;
        pending.order_status = "pending".into();
        let mut revoked = current(&["a.com"], till);
        revoked.order_status = "revoked".into();
        for (current, cn, reason) in [
            (pending, "a.com", "OrderNotIssued"),
            (revoked, "a.com", "OrderRevoked"),
            (current(&["a.com"], till), "z.a.com", "NamesMismatch"),
        ] {
            match duplicate_plan(
                &spec(cn),
                &SecretState::Missing,
                &current,
                None,
                false,
                false,
            ) {
                DuplicatePlan::Wait { reason: r, message } => {
                    assert_eq!(r, reason, "{message}");
                    assert!(message.contains('7') || message.contains(cn), "{message}");
                }
                other => panic!("{reason}: {other:?}"),
            }
        }
    }
}
