//! The simulator's settings: what its configuration sets and the rules read (reuse
//! periods, DigiCert's own polling speed, what a cancel may say, the delay before a
//! reissue's revocations, the duplicate feature, the change feed). The store holds a copy, set at
//! every start and never persisted; nothing here knows the rules.

use serde::{Deserialize, Serialize};
use time::{Date, Duration};

/// One step of the reuse-period schedule: from `from` on, a completed validation may
/// be reused for `days` days.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReuseStep {
    pub from: Date,
    pub days: u32,
}

/// DigiCert's schedule: 397 days, 199 from 2026-02-24 (documented); 100 from
/// 2027-03-15 and 10 from 2029-03-15 follow the CA/B Baseline Requirements (inferred).
pub fn default_reuse_schedule() -> Vec<ReuseStep> {
    let step = |y, m, d, days| ReuseStep {
        from: Date::from_calendar_date(y, m, d).expect("valid date"),
        days,
    };
    use time::Month::*;
    vec![
        step(2021, September, 27, 397),
        step(2026, February, 24, 199),
        step(2027, March, 15, 100),
        step(2029, March, 15, 10),
    ]
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
            reuse_schedule: default_reuse_schedule(),
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

/// The error code for a duplicate whose domains need validating again (DigiCert does
/// not document it).
pub const DEFAULT_DCV_ERROR_CODE: &str = "dcv_expired";

/// Account-wide duplicate settings from the configuration.
#[derive(Clone, Debug)]
pub struct DuplicateSettings {
    /// The account's duplicate feature, unless the order sets its own.
    pub enabled: bool,
    /// Answered when validation has lapsed for a name.
    pub dcv_error_code: String,
}

impl Default for DuplicateSettings {
    fn default() -> Self {
        DuplicateSettings {
            enabled: true,
            dcv_error_code: DEFAULT_DCV_ERROR_CODE.into(),
        }
    }
}

/// DigiCert revokes "within 72 hours" of the new certificate's issuance.
pub const DEFAULT_REVOCATION_DELAY_SECONDS: u64 = 72 * 3600;

/// Account-wide revocation settings from the configuration.
#[derive(Clone, Debug)]
pub struct RevocationSettings {
    /// From the issuance of a name-removing reissue to the revocation of the older
    /// certificates, unless the order sets its own.
    pub delay: Duration,
}

impl Default for RevocationSettings {
    fn default() -> Self {
        RevocationSettings {
            delay: seconds(DEFAULT_REVOCATION_DELAY_SECONDS),
        }
    }
}

/// A configured number of seconds; an absurdly large one means "never".
pub fn seconds(s: u64) -> Duration {
    Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX))
}

/// The change feed's settings from the configuration.
#[derive(Clone, Debug)]
pub struct FeedSettings {
    /// The UTC offset (hours) a `filters[status_last_updated]` range is read in: -7 (US
    /// Mountain standard time, as third parties report DigiCert reads it) or 0 (UTC).
    pub range_offset_hours: i8,
    /// How far back a status-changes window may reach (7 days, documented).
    pub longest_window: Duration,
    /// Whether the answer of a reissue issued at once carries the chain (seen in third
    /// parties' clients, not documented).
    pub reissue_answer_chain: bool,
}

pub const DEFAULT_RANGE_OFFSET_HOURS: i8 = -7;
pub const DEFAULT_STATUS_CHANGES_DAYS: u32 = 7;

impl Default for FeedSettings {
    fn default() -> Self {
        FeedSettings {
            range_offset_hours: DEFAULT_RANGE_OFFSET_HOURS,
            longest_window: Duration::days(DEFAULT_STATUS_CHANGES_DAYS.into()),
            reissue_answer_chain: false,
        }
    }
}
