//! When to look at an order again: every requeue delay of the reconcile is named
//! here, with why it is that long.

use std::time::Duration;

/// The step just recorded what it did (status, a Secret); the next step follows at
/// once and reads it back. Never a loop: each such step changes what the next one
/// sees (a reissue dropped, a state advanced).
pub const NEXT_STEP_NOW: Duration = Duration::ZERO;

/// The order may use no account now (the reason is in status). The account
/// controller wakes the order when its account or key changes; this is the fallback.
pub const NO_ACCOUNT_RETRY: Duration = Duration::from_secs(300);

/// A Secret in the way is not the operator's, so not watched by its label: it is
/// watched by name until it changes, and looked at again this often as well (or at
/// the resync, if sooner).
pub const CONFLICT_RETRY: Duration = Duration::from_secs(60);

/// Domain validation settings that name a missing Secret: it is not watched.
pub const SETTINGS_RETRY: Duration = Duration::from_secs(60);

/// DigiCert refused a duplicate because the order changed meanwhile: ask again with
/// what the order is now, after a breath.
pub const RACE_RETRY: Duration = Duration::from_secs(1);

/// DigiCert validated the domains: read their new state almost at once.
pub const AFTER_VALIDATION: Duration = Duration::from_secs(1);

/// The first look for published domain validation values (DNS, HTTP) at DigiCert.
pub const DCV_FIRST_LOOK: Duration = Duration::from_secs(2);

/// Failures that may heal by themselves (timeouts, 5xx, rate limits): 5 s doubling
/// up to 5 min.
pub const TRANSIENT_BACKOFF: (Duration, Duration) =
    (Duration::from_secs(5), Duration::from_secs(300));

/// Failures that will not heal by themselves (a refused key, an unknown order): 5 min
/// doubling up to 1 h, unless the spec changes.
pub const PERMANENT_BACKOFF: (Duration, Duration) =
    (Duration::from_secs(300), Duration::from_secs(3600));

/// The back-off for a failed DigiCert call.
pub fn failure_backoff(permanent: bool) -> (Duration, Duration) {
    if permanent {
        PERMANENT_BACKOFF
    } else {
        TRANSIENT_BACKOFF
    }
}

/// A write lost a race with another writer: a fresh reconcile reads the new version
/// at once, after 0.5 to 1.5 s (`jitter` in 0..1) so racing writers part.
pub fn after_conflict(jitter: f64) -> Duration {
    Duration::from_millis(500) + Duration::from_secs_f64(jitter.clamp(0.0, 1.0))
}

/// Kubernetes API trouble that reconcile did not turn into status: 20 to 40 s.
pub fn after_error(jitter: f64) -> Duration {
    Duration::from_secs(20) + Duration::from_secs_f64(20.0 * jitter.clamp(0.0, 1.0))
}

/// An account whose reconcile failed (Kubernetes API trouble) is looked at again.
pub const ACCOUNT_ERROR_RETRY: Duration = Duration::from_secs(30);

/// A reissue's send time is recorded before the POST; if recording took longer than
/// this, the time is no longer the send's and nothing is sent this time.
pub const SEND_STAMP_TOLERANCE: Duration = Duration::from_secs(5);

use time::OffsetDateTime;

/// How long until the next look: the soonest of `moments` still ahead (the planned
/// renewal, the certificate's expiry, the start of the order-end warning, ...) and
/// the resync period after the last check of the order. A moment already past was
/// acted upon, or is held on purpose (a canceled renewal, an order that cannot be
/// extended): it never makes the wait zero, so an order can never spin.
pub fn next_look(
    moments: &[Option<OffsetDateTime>],
    last_check: Option<OffsetDateTime>,
    resync: Duration,
    now: OffsetDateTime,
) -> Duration {
    let resync_at = last_check
        .map(|t| t + resync)
        .filter(|t| *t > now)
        .unwrap_or(now + resync);
    let at = moments
        .iter()
        .flatten()
        .copied()
        .filter(|t| *t > now)
        .fold(resync_at, OffsetDateTime::min);
    (at - now).try_into().unwrap_or(resync)
}

/// Whether the order should be looked at (order info) now: never looked at, or the
/// resync period has passed.
pub fn order_check_due(
    last_check: Option<OffsetDateTime>,
    resync: Duration,
    now: OffsetDateTime,
) -> bool {
    last_check.is_none_or(|t| now - t >= resync)
}

/// Until when a reissue POST sent at `sent_at` whose answer was lost may still arrive
/// at DigiCert: one call lasts at most `call_timeout` (connection included), and
/// DigiCert may still be processing what arrived just before the client gave up.
pub fn resubmit_after(sent_at: OffsetDateTime, call_timeout: Duration) -> OffsetDateTime {
    const SLACK: time::Duration = time::Duration::seconds(30);
    sent_at + time::Duration::try_from(call_timeout).unwrap_or(time::Duration::minutes(5)) + SLACK
}

/// How often to look at a pending reissue: often at first, then less.
pub fn poll_interval(pending_for: time::Duration) -> Duration {
    let secs = pending_for.whole_seconds();
    Duration::from_secs(match secs {
        ..60 => 5,
        60..600 => 30,
        600..3600 => 120,
        _ => 600,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn retries_after_a_conflict_or_an_error_spread_within_their_bounds() {
        // (jitter, after a conflict, after an error), in milliseconds
        let cases = [
            (0.0, 500, 20_000),
            (0.5, 1_000, 30_000),
            (1.0, 1_500, 40_000),
            // Out-of-range jitter is clamped, never a zero or huge wait.
            (-3.0, 500, 20_000),
            (7.0, 1_500, 40_000),
        ];
        for (jitter, conflict, error) in cases {
            assert_eq!(after_conflict(jitter).as_millis(), conflict, "{jitter}");
            assert_eq!(after_error(jitter).as_millis(), error, "{jitter}");
        }
        assert_eq!(failure_backoff(true), PERMANENT_BACKOFF);
        assert_eq!(failure_backoff(false), TRANSIENT_BACKOFF);
    }

    #[test]
    fn the_next_look_is_the_soonest_moment_ahead_never_now() {
        let now = datetime!(2026-01-01 0:00 UTC);
        let h = |n: i64| Some(now + time::Duration::hours(n));
        let six_h = Duration::from_secs(6 * 3600);
        let secs = |n: u64| Duration::from_secs(n * 3600);
        // (moments, last check, want)
        let cases = [
            (vec![], None, secs(6)),
            (vec![h(1)], h(0), secs(1)),
            (vec![h(1), h(2)], h(0), secs(1)),
            (vec![h(9)], h(0), secs(6)),
            (vec![None, h(3)], h(0), secs(3)),
            // A renewal time already past (held, or the order cannot be extended):
            // the expiry ahead or the resync decide, never zero.
            (vec![h(-1)], h(0), secs(6)),
            (vec![h(-1), h(2)], h(0), secs(2)),
            (vec![h(-1)], h(-5), secs(1)),
            // The last check is older than the resync period: a full period from now.
            (vec![h(-1)], h(-10), secs(6)),
            (vec![h(-1), h(-2)], None, secs(6)),
        ];
        for (i, (moments, last, want)) in cases.into_iter().enumerate() {
            let got = next_look(&moments, last, six_h, now);
            assert_eq!(got, want, "case {i}");
            assert!(!got.is_zero(), "case {i}");
        }
    }

    #[test]
    fn order_checks_fall_due_after_the_resync_period() {
        let now = datetime!(2026-01-01 0:00 UTC);
        let six_h = Duration::from_secs(6 * 3600);
        assert!(order_check_due(None, six_h, now));
        assert!(!order_check_due(
            Some(now - time::Duration::hours(1)),
            six_h,
            now
        ));
        assert!(order_check_due(
            Some(now - time::Duration::hours(6)),
            six_h,
            now
        ));
    }

    #[test]
    fn a_lost_reissue_is_not_resent_while_its_request_may_still_arrive() {
        let sent = datetime!(2026-01-01 0:00 UTC);
        assert_eq!(
            resubmit_after(sent, Duration::from_secs(30)),
            datetime!(2026-01-01 0:01 UTC)
        );
        // The longest call timeout (5 min) is covered whole.
        assert_eq!(
            resubmit_after(sent, Duration::from_secs(300)),
            datetime!(2026-01-01 0:05:30 UTC)
        );
    }

    #[test]
    fn polling_slows_down_while_pending() {
        let cases = [
            (0, 5),
            (59, 5),
            (60, 30),
            (599, 30),
            (600, 120),
            (3600, 600),
            (86_400, 600),
        ];
        for (secs, want) in cases {
            assert_eq!(
                poll_interval(time::Duration::seconds(secs)),
                Duration::from_secs(want),
                "{secs}"
            );
        }
    }
}
