//! Conditions in the `metav1.Condition` shape, and the reasons failures map to.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use time::OffsetDateTime;

use crate::certcentral;

pub const READY: &str = "Ready";
pub const ISSUING: &str = "Issuing";
pub const ORDER_EXPIRING: &str = "OrderExpiring";
pub const AUTO_REISSUE_SYNCED: &str = "AutoReissueSynced";
pub const DOMAIN_VALIDATION: &str = "DomainValidation";
/// Whether the operator can work with DigiCert for the order: an account it may use,
/// with a key, and DigiCert answering. Trouble there is not Ready's business while the
/// Secret's certificate is good.
pub const DIGICERT: &str = "DigiCert";

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A time for status, to the second: what the API server keeps of a `Time` (so a
/// status built here compares equal to the one read back).
pub fn time(t: OffsetDateTime) -> Time {
    timestamp(t)
}

/// A status time as messages and the command line show it (RFC 3339).
pub fn show(t: &Time) -> String {
    rfc3339(offset(t))
}

/// A status time as the operator computes with it.
pub fn offset(t: &Time) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t.0.as_second()).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn timestamp(t: OffsetDateTime) -> Time {
    let ts = k8s_openapi::jiff::Timestamp::from_second(t.unix_timestamp())
        .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
    Time(ts)
}

pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == "True")
}

/// Sets a condition; its transition time moves only when its status changes.
pub fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: OffsetDateTime,
) {
    let status = if status { "True" } else { "False" }.to_string();
    let mut message: String = message.into();
    if message.len() > 2000 {
        let mut cut = 2000;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
    }
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = timestamp(now);
            }
            c.status = status;
            c.reason = reason.to_string();
            c.message = message;
            c.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: type_.to_string(),
            status,
            reason: reason.to_string(),
            message,
            observed_generation: generation,
            last_transition_time: timestamp(now),
        }),
    }
}

pub fn remove(conditions: &mut Vec<Condition>, type_: &str) {
    conditions.retain(|c| c.type_ != type_);
}

/// A CamelCase reason for a failed CertCentral call.
/// Reasons of failures that heal by themselves (DigiCert busy, down or garbled).
pub const TRANSIENT_REASONS: [&str; 4] = [
    "DigiCertUnavailable",
    "RateLimited",
    "DigiCertUnreachable",
    "BadResponse",
];

/// DigiCert refused to change auto-reissue for this generation of the spec (not a
/// passing failure): asking again before the spec changes would only be refused again.
pub fn auto_reissue_refused(conditions: &[Condition], generation: Option<i64>) -> bool {
    find(conditions, AUTO_REISSUE_SYNCED).is_some_and(|c| {
        c.status == "False"
            && c.observed_generation == generation
            && !TRANSIENT_REASONS.contains(&c.reason.as_str())
    })
}

pub fn failure_reason(err: &certcentral::Error) -> &'static str {
    use certcentral::Error;
    match err {
        Error::Api { status: 401, .. } => "InvalidApiKey",
        Error::Api { status: 403, .. } => "AccessDenied",
        Error::Api { status: 404, .. } if err.has_code("not_found|order") => "OrderNotFound",
        Error::Api { status: 404, .. } => "NotFound",
        Error::Api { status: 429, .. } => "RateLimited",
        Error::Api { status, .. } if *status >= 500 => "DigiCertUnavailable",
        Error::Api { .. } if err.code().is_some_and(|c| c.starts_with("csr_")) => "CsrRejected",
        // Not necessarily ended: the order's dates tell (`decide::refused_past_order_end`).
        Error::Api { .. } if err.has_code("cert_validity_exceeds_order_validity") => "OrderEnding",
        Error::Api { .. } if err.has_code("invalid_order_status") => "OrderNotReissuable",
        Error::Api { .. } if err.has_code("invalid_dns_name") => "NameNotOnOrder",
        Error::Api { .. } => "RequestRejected",
        Error::Transport { .. } => "DigiCertUnreachable",
        Error::Decode { .. } => "BadResponse",
        Error::Config(_) => "ConfigurationError",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use certcentral::{ApiErrorDetail, Operation, TransportKind};
    use time::macros::datetime;

    #[test]
    fn auto_reissue_is_refused_only_by_lasting_answers_of_this_generation() {
        let cond = |status: &str, reason: &str, generation: i64| Condition {
            type_: AUTO_REISSUE_SYNCED.into(),
            status: status.into(),
            reason: reason.into(),
            message: String::new(),
            observed_generation: Some(generation),
            last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
        };
        let cases = [
            (cond("False", "NotSupported", 2), Some(2), true),
            (cond("False", "RequestRejected", 2), Some(2), true),
            // An older spec's refusal does not hold for this one.
            (cond("False", "NotSupported", 1), Some(2), false),
            // DigiCert busy or unreachable: ask again after the back-off.
            (cond("False", "DigiCertUnavailable", 2), Some(2), false),
            (cond("False", "RateLimited", 2), Some(2), false),
            (cond("False", "DigiCertUnreachable", 2), Some(2), false),
            (cond("False", "BadResponse", 2), Some(2), false),
            (cond("True", "Synced", 2), Some(2), false),
        ];
        for (c, generation, refused) in cases {
            assert_eq!(
                auto_reissue_refused(std::slice::from_ref(&c), generation),
                refused,
                "{c:?}"
            );
        }
        assert!(!auto_reissue_refused(&[], Some(1)));
    }

    #[test]
    fn transition_time_moves_only_on_status_change() {
        let t0 = datetime!(2026-01-01 0:00 UTC);
        let t1 = datetime!(2026-01-02 0:00 UTC);
        let mut c = Vec::new();
        set(&mut c, READY, false, "Issuing", "a", Some(1), t0);
        set(&mut c, READY, false, "Pending", "b", Some(2), t1);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].last_transition_time, timestamp(t0));
        assert_eq!(c[0].reason, "Pending");
        assert_eq!(c[0].observed_generation, Some(2));
        set(&mut c, READY, true, "Issued", "c", Some(2), t1);
        assert_eq!(c[0].last_transition_time, timestamp(t1));
        assert!(is_true(&c, READY));
        remove(&mut c, READY);
        assert!(c.is_empty());
    }

    #[test]
    fn failure_reasons() {
        let api = |status, code: &str| certcentral::Error::Api {
            operation: Operation::Reissue,
            status,
            errors: vec![ApiErrorDetail {
                code: code.into(),
                message: String::new(),
            }],
        };
        let cases = [
            (api(401, "access_denied|invalid_api_key"), "InvalidApiKey"),
            (api(403, "access_denied|missing_permission"), "AccessDenied"),
            (api(404, "not_found|order"), "OrderNotFound"),
            (api(429, "request_limit_exceeded"), "RateLimited"),
            (api(503, "x"), "DigiCertUnavailable"),
            (api(400, "csr_invalid_key_size"), "CsrRejected"),
            (api(400, "invalid_order_status"), "OrderNotReissuable"),
            (api(400, "something_new"), "RequestRejected"),
            (
                certcentral::Error::Transport {
                    operation: Operation::OrderInfo,
                    kind: TransportKind::Timeout,
                    message: String::new(),
                },
                "DigiCertUnreachable",
            ),
        ];
        for (err, want) in cases {
            assert_eq!(failure_reason(&err), want, "{err}");
        }
    }
}

#[cfg(test)]
mod time_tests {
    use super::*;
    use crate::crd::DigicertOrderStatus;

    /// Status written by earlier versions (RFC 3339 strings, with nanoseconds) still
    /// reads; what is written now is RFC 3339 to the second, as the API server keeps
    /// a `Time`.
    #[test]
    fn status_times_read_old_strings_and_write_rfc3339() {
        let old = serde_json::json!({
            "lastOrderCheck": "2026-12-05T05:32:04.945788201Z",
            "renewalTime": "2027-03-01T12:00:00Z",
            "nextAttemptTime": "2026-12-05T06:00:00+01:00",
            "certificate": {"id": 7, "serialNumber": "0A", "thumbprint": "AB",
                "notBefore": "2026-12-01T00:00:00Z", "notAfter": "2027-12-01T00:00:00Z",
                "dnsNames": ["example.com"]},
            "reissue": {"state": "Submitting", "reason": "Renewal", "csrFingerprint": "f",
                "specFingerprint": "s", "keySecretName": "k",
                "submittedAt": "2026-12-05T05:32:05.395733071Z"},
        });
        let status: DigicertOrderStatus = serde_json::from_value(old).expect("old status reads");
        let check = status.last_order_check.as_ref().unwrap();
        assert_eq!(
            offset(check),
            time::macros::datetime!(2026-12-05 05:32:04 UTC)
        );
        assert_eq!(
            offset(status.next_attempt_time.as_ref().unwrap()),
            time::macros::datetime!(2026-12-05 05:00:00 UTC)
        );
        let written = serde_json::to_value(&status).unwrap();
        assert_eq!(written["lastOrderCheck"], "2026-12-05T05:32:04Z");
        assert_eq!(written["renewalTime"], "2027-03-01T12:00:00Z");
        assert_eq!(written["certificate"]["notAfter"], "2027-12-01T00:00:00Z");
        assert_eq!(written["reissue"]["submittedAt"], "2026-12-05T05:32:05Z");
        // What is written reads back the same: a status built here compares equal to
        // the one the API server returns.
        let now = time::macros::datetime!(2026-12-05 05:32:04.9 UTC);
        let built = time(now);
        let read: Time = serde_json::from_value(serde_json::to_value(&built).unwrap()).unwrap();
        assert_eq!(built, read);
        assert_eq!(show(&built), "2026-12-05T05:32:04Z");
    }
}
