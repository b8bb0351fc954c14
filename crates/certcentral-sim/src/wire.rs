//! How the simulator writes values on the wire as CertCentral does: dates, times,
//! platform names, fingerprints, and the answer for an internal failure.

use time::{Date, OffsetDateTime};

use crate::store::ApiError;

pub(crate) fn date_time(t: OffsetDateTime) -> String {
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

pub(crate) fn platform_name(id: i64) -> String {
    if id == -1 {
        "OTHER".into()
    } else {
        format!("platform {id}")
    }
}

pub(crate) fn date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

pub(crate) fn days_remaining(not_after: OffsetDateTime, now: OffsetDateTime) -> i64 {
    let secs = (not_after - now).whole_seconds();
    if secs <= 0 {
        0
    } else {
        (secs + 86_399) / 86_400
    }
}

pub(crate) fn sha1_hex_upper(bytes: &[u8]) -> String {
    pki::hex(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, bytes).as_ref(),
    )
    .to_ascii_uppercase()
}

pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(500, "internal_error", e.to_string())
}
