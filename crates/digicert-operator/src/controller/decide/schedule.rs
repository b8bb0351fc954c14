//! When to look at an order again.

use std::time::Duration;

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
