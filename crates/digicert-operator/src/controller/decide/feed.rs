//! The change feed's decisions: what to read from DigiCert next, whether a reading
//! is news for the orders that follow it, and whether an idle order needs a look at
//! DigiCert of its own.

use std::time::Duration;

use crate::certcentral::OrderStatus;

/// DigiCert answers status changes up to 7 days back (documented); a gap longer
/// than this less a margin is bridged by reading the orders themselves.
pub const FEED_LONGEST_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600 - 3600);

/// Each window reaches this much further back than the last read began: a change
/// DigiCert records a little late (or clocks that differ) is still seen.
pub const FEED_OVERLAP: Duration = Duration::from_secs(60);

/// How often the feed also reads every followed order (list orders, 1,000 a call):
/// a change the feed missed, or one it never shows (the order's end moved), is
/// caught within this.
pub const FEED_FULL_READ: Duration = Duration::from_secs(6 * 3600);

/// How long a feed that has not read once may take before orders stop waiting for
/// it and look at DigiCert themselves.
pub const FEED_SYNC_GRACE: Duration = Duration::from_secs(300);

/// Without a working feed, an order is checked at least this often (the per-order
/// resync of old).
pub const FEEDLESS_RESYNC: Duration = Duration::from_secs(6 * 3600);

/// Orders named in one id-filtered list call.
pub const IDS_PER_CALL: usize = 100;

/// One page of list orders holds at most this many.
pub const PAGE: u64 = 1000;

/// The next reading of the feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// Every followed order (list orders): at the start, after a gap DigiCert's
    /// status changes cannot bridge, and now and then.
    Full,
    /// Status changes of the last `seconds`.
    Changes { seconds: u64 },
}

/// What to read: `since_covered` is the time since the last successful reading
/// began, `since_full` since the last full one (`None`: never).
pub fn next_read(since_covered: Option<Duration>, since_full: Option<Duration>) -> Read {
    let (Some(covered), Some(full)) = (since_covered, since_full) else {
        return Read::Full;
    };
    let window = covered + FEED_OVERLAP;
    if window > FEED_LONGEST_WINDOW || full >= FEED_FULL_READ {
        return Read::Full;
    }
    Read::Changes {
        seconds: window.as_secs() + u64::from(window.subsec_nanos() > 0),
    }
}

/// How the rest of a full reading goes once the first page said how many orders the
/// account has: by pages, or by the followed orders' ids, whichever takes fewer calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestOfRead {
    Done,
    /// Pages from these offsets.
    Pages(Vec<u64>),
    /// These ids, `IDS_PER_CALL` a call.
    Ids(Vec<Vec<u64>>),
}

/// At a feed's first reading orders are still coming to follow (a start reconciles
/// them all within a minute or two): up to this many pages are read whoever follows
/// already, so that those coming later find their view and cost no call.
pub const FIRST_READ_PAGES: usize = 20;

/// `first`: the feed's first full reading.
pub fn rest_of_read(total: u64, first_page: u64, mut unseen: Vec<u64>, first: bool) -> RestOfRead {
    let offsets: Vec<u64> = (1..).map(|n| n * PAGE).take_while(|o| *o < total).collect();
    if first && total > first_page && offsets.len() < FIRST_READ_PAGES {
        return RestOfRead::Pages(offsets);
    }
    if total <= first_page || unseen.is_empty() {
        return RestOfRead::Done;
    }
    unseen.sort_unstable();
    unseen.dedup();
    let chunks: Vec<Vec<u64>> = unseen.chunks(IDS_PER_CALL).map(<[u64]>::to_vec).collect();
    if chunks.len() < offsets.len() {
        RestOfRead::Ids(chunks)
    } else {
        RestOfRead::Pages(offsets)
    }
}

/// What DigiCert last said of an order, from the feed, list orders or order info.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderView {
    pub status: OrderStatus,
    /// The order's current certificate.
    pub certificate_id: Option<u64>,
    /// The order's end, where the reading shows it (list orders, order info).
    pub order_valid_till: Option<String>,
    /// Somebody said the order changed (a webhook): only a look at DigiCert tells how.
    pub stale: bool,
}

/// Whether a reading is news: the followers of the order are woken.
pub fn is_news(old: Option<&OrderView>, new: &OrderView) -> bool {
    match old {
        None => true,
        Some(old) => {
            old.status != new.status
                || (new.certificate_id.is_some() && old.certificate_id != new.certificate_id)
                || (new.order_valid_till.is_some() && old.order_valid_till != new.order_valid_till)
        }
    }
}

/// A reading merged into what was known: a status change names no end, so the
/// known end stays.
pub fn merged(old: Option<&OrderView>, new: OrderView) -> OrderView {
    OrderView {
        order_valid_till: new
            .order_valid_till
            .or_else(|| old.and_then(|o| o.order_valid_till.clone())),
        certificate_id: new.certificate_id.or(old.and_then(|o| o.certificate_id)),
        ..new
    }
}

/// How the feed of an order's account key stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// No feed (turned off).
    Off,
    /// It has not read yet, within its grace.
    Syncing,
    /// It read lately.
    Fresh,
    /// It has not read for too long (or never did, past its grace).
    Failing,
}

/// The standing of a feed polling every `interval`: `since_ok` is the time since its
/// last successful reading, `since_start` since it began.
pub fn standing(
    interval: Option<Duration>,
    since_ok: Option<Duration>,
    since_start: Duration,
) -> Standing {
    let Some(interval) = interval else {
        return Standing::Off;
    };
    match since_ok {
        None if since_start < FEED_SYNC_GRACE => Standing::Syncing,
        None => Standing::Failing,
        // Three intervals and a slow call's minute: one failed reading is not yet a
        // failing feed.
        Some(ok) if ok <= interval * 3 + Duration::from_secs(60) => Standing::Fresh,
        Some(_) => Standing::Failing,
    }
}

/// What status knows of an order, for comparing with the feed's view.
#[derive(Clone, Copy, Debug)]
pub struct Known<'a> {
    pub order_status: Option<&'a str>,
    pub certificate_id: Option<u64>,
    /// The certificate is a duplicate: the order's current one is another's.
    pub duplicate: bool,
}

/// Whether an idle order looks at DigiCert now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Look {
    /// Read the order (order info, and what else the check needs): the feed says it
    /// changed, or it cannot say.
    Order(&'static str),
    /// The feed has the order's state and it is what status says: no call.
    Quiet,
    /// The feed is reading the order for the first time: no call; the feed wakes the
    /// order when it has read it.
    AwaitFeed,
    /// No feed serves it: the per-order resync decides.
    Resync,
}

pub fn idle_look(standing: Standing, view: Option<&OrderView>, known: Known) -> Look {
    match (standing, view) {
        (Standing::Off | Standing::Failing, _) => Look::Resync,
        (Standing::Syncing | Standing::Fresh, None) => Look::AwaitFeed,
        (_, Some(v)) if v.stale => Look::Order("DigiCert said the order changed"),
        (_, Some(v)) if Some(v.status.as_str()) != known.order_status => {
            Look::Order("the order's status changed at DigiCert")
        }
        (_, Some(v))
            if !known.duplicate
                && v.status == OrderStatus::Issued
                && v.certificate_id.is_some()
                && v.certificate_id != known.certificate_id =>
        {
            Look::Order("the order has a new certificate at DigiCert")
        }
        _ => Look::Quiet,
    }
}

/// How long until the per-order check (order info and the reissue list: what the
/// feed cannot show) with the feed standing as it does.
pub fn order_check_period(standing: Standing, resync: Duration) -> Duration {
    match standing {
        Standing::Fresh | Standing::Syncing => resync,
        Standing::Off | Standing::Failing => resync.min(FEEDLESS_RESYNC),
    }
}

/// How often a pending reissue is looked at when the order's feed reads fresh: the
/// feed wakes it as soon as the order moves (issued, rejected, canceled), so the
/// look is a safety net (and refreshes what the feed does not show: approval and
/// validation at DigiCert).
pub const FEED_PENDING_LOOK: Duration = Duration::from_secs(30 * 60);

/// When to look again at a reissue (not a duplicate) pending for `pending_for`: in
/// its first minute as without a feed (most issue within seconds), then, with a fresh
/// feed, every [`FEED_PENDING_LOOK`]; without one, as [`super::schedule::poll_interval`].
pub fn pending_look(standing: Standing, pending_for: time::Duration) -> Duration {
    let polled = super::schedule::poll_interval(pending_for);
    match standing {
        Standing::Fresh if pending_for >= time::Duration::MINUTE => polled.max(FEED_PENDING_LOOK),
        _ => polled,
    }
}

/// The wait before the next reading after `failures` failed ones in a row: the
/// interval, doubling up to 10 min.
pub fn retry_after(interval: Duration, failures: u32) -> Duration {
    let factor = 1u32 << failures.min(6);
    (interval * factor).min(Duration::from_secs(600).max(interval))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn the_feed_reads_changes_between_full_readings() {
        let h = |n: u64| Some(Duration::from_secs(n * 3600));
        let cases = [
            // Never read, or never fully: everything.
            (None, None, Read::Full),
            (Some(MIN), None, Read::Full),
            (None, h(1), Read::Full),
            // A minute since the last reading: that and the overlap.
            (Some(MIN), h(1), Read::Changes { seconds: 120 }),
            (
                Some(Duration::from_millis(60_500)),
                h(1),
                Read::Changes { seconds: 121 },
            ),
            // Down for a day: DigiCert still covers it.
            (
                h(24),
                h(30).map(|d| d / 6),
                Read::Changes { seconds: 86_460 },
            ),
            // Past what status changes reach: the orders are read.
            (h(7 * 24), h(1), Read::Full),
            // Due for the periodic full reading.
            (Some(MIN), h(6), Read::Full),
        ];
        for (covered, full, want) in cases {
            assert_eq!(next_read(covered, full), want, "{covered:?} {full:?}");
        }
    }

    #[test]
    fn a_full_reading_takes_the_fewer_calls() {
        // The first page had everything.
        assert_eq!(rest_of_read(800, 800, vec![1], false), RestOfRead::Done);
        // Nothing followed is left unseen.
        assert_eq!(rest_of_read(5000, 1000, vec![], false), RestOfRead::Done);
        // 10,000 orders, 9,000 followed unseen: 9 pages beat 90 id calls.
        let unseen: Vec<u64> = (1..=9000).collect();
        assert_eq!(
            rest_of_read(10_000, 1000, unseen, false),
            RestOfRead::Pages((1..10).map(|n| n * 1000).collect())
        );
        // 100,000 orders, 3 followed: one id call beats 99 pages.
        assert_eq!(
            rest_of_read(100_000, 1000, vec![7, 3, 7, 5], false),
            RestOfRead::Ids(vec![vec![3, 5, 7]])
        );
        // As many calls either way: pages (they also refresh what is not followed yet).
        let unseen: Vec<u64> = (1..=200).collect();
        assert!(matches!(
            rest_of_read(3000, 1000, unseen, false),
            RestOfRead::Pages(p) if p == vec![1000, 2000]
        ));
        // The first reading, while orders are still coming to follow: every page of
        // an account of up to 20,000 orders, however few follow yet.
        assert_eq!(
            rest_of_read(10_000, 1000, vec![3], true),
            RestOfRead::Pages((1..10).map(|n| n * 1000).collect())
        );
        assert_eq!(
            rest_of_read(10_000, 1000, vec![], true),
            RestOfRead::Pages((1..10).map(|n| n * 1000).collect())
        );
        assert_eq!(rest_of_read(800, 800, vec![1], true), RestOfRead::Done);
        // A larger account: the fewer calls, as later.
        assert_eq!(
            rest_of_read(100_000, 1000, vec![3], true),
            RestOfRead::Ids(vec![vec![3]])
        );
    }

    fn view(status: OrderStatus, certificate: u64) -> OrderView {
        OrderView {
            status,
            certificate_id: Some(certificate),
            order_valid_till: None,
            stale: false,
        }
    }

    #[test]
    fn news_is_a_status_a_certificate_or_an_end_that_moved() {
        use OrderStatus::*;
        let issued = view(Issued, 10);
        let mut later_end = issued.clone();
        later_end.order_valid_till = Some("2029-01-01".into());
        let mut no_certificate = view(Issued, 0);
        no_certificate.certificate_id = None;
        let cases = [
            (None, issued.clone(), true),
            (Some(issued.clone()), issued.clone(), false),
            (Some(issued.clone()), view(ReissuePending, 10), true),
            (Some(issued.clone()), view(Issued, 11), true),
            (Some(issued.clone()), view(Revoked, 10), true),
            (Some(issued.clone()), later_end.clone(), true),
            (Some(later_end.clone()), issued.clone(), false),
            // A reading without a certificate id says nothing of it.
            (Some(issued.clone()), no_certificate, false),
        ];
        for (i, (old, new, want)) in cases.into_iter().enumerate() {
            assert_eq!(is_news(old.as_ref(), &new), want, "case {i}");
        }
        // A status change keeps the end list orders read.
        let merged = merged(Some(&later_end), view(ReissuePending, 10));
        assert_eq!(merged.order_valid_till.as_deref(), Some("2029-01-01"));
        assert_eq!(merged.status, ReissuePending);
    }

    #[test]
    fn a_feed_is_fresh_while_it_reads_and_failing_when_it_stops() {
        use Standing::*;
        let s = Duration::from_secs;
        let cases = [
            (None, None, s(9999), Off),
            (Some(MIN), None, s(10), Syncing),
            (Some(MIN), None, FEED_SYNC_GRACE, Failing),
            (Some(MIN), Some(s(30)), s(9999), Fresh),
            (Some(MIN), Some(s(240)), s(9999), Fresh),
            (Some(MIN), Some(s(241)), s(9999), Failing),
        ];
        for (interval, ok, start, want) in cases {
            assert_eq!(standing(interval, ok, start), want, "{ok:?} {start:?}");
        }
    }

    #[test]
    fn an_idle_order_calls_digicert_only_for_news() {
        use OrderStatus::*;
        let known = Known {
            order_status: Some("issued"),
            certificate_id: Some(10),
            duplicate: false,
        };
        let duplicate = Known {
            duplicate: true,
            ..known
        };
        let mut stale = view(Issued, 10);
        stale.stale = true;
        let order = |l: &Look| matches!(l, Look::Order(_));
        type Want<'a> = &'a dyn Fn(&Look) -> bool;
        let cases: Vec<(Standing, Option<OrderView>, Known, Want)> = vec![
            (Standing::Off, Some(view(Revoked, 10)), known, &|l| {
                *l == Look::Resync
            }),
            (Standing::Failing, None, known, &|l| *l == Look::Resync),
            (Standing::Syncing, None, known, &|l| *l == Look::AwaitFeed),
            (Standing::Fresh, None, known, &|l| *l == Look::AwaitFeed),
            (Standing::Fresh, Some(view(Issued, 10)), known, &|l| {
                *l == Look::Quiet
            }),
            (Standing::Fresh, Some(stale), known, &order),
            (Standing::Fresh, Some(view(Revoked, 10)), known, &order),
            (
                Standing::Fresh,
                Some(view(ReissuePending, 10)),
                known,
                &order,
            ),
            (Standing::Fresh, Some(view(Issued, 11)), known, &order),
            // A duplicate's certificate is not the order's current one.
            (Standing::Fresh, Some(view(Issued, 11)), duplicate, &|l| {
                *l == Look::Quiet
            }),
            (Standing::Fresh, Some(view(Revoked, 11)), duplicate, &order),
        ];
        for (i, (standing, v, known, want)) in cases.into_iter().enumerate() {
            let got = idle_look(standing, v.as_ref(), known);
            assert!(want(&got), "case {i}: {got:?}");
        }
    }

    #[test]
    fn without_a_feed_orders_are_checked_at_least_every_six_hours() {
        let week = Duration::from_secs(7 * 24 * 3600);
        assert_eq!(order_check_period(Standing::Fresh, week), week);
        assert_eq!(order_check_period(Standing::Failing, week), FEEDLESS_RESYNC);
        assert_eq!(order_check_period(Standing::Off, MIN), MIN);
    }

    #[test]
    fn failed_readings_back_off_to_ten_minutes() {
        assert_eq!(retry_after(MIN, 0), MIN);
        assert_eq!(retry_after(MIN, 1), 2 * MIN);
        assert_eq!(retry_after(MIN, 3), 8 * MIN);
        assert_eq!(retry_after(MIN, 30), 10 * MIN);
        // An interval longer than the cap is kept.
        assert_eq!(retry_after(20 * MIN, 2), 20 * MIN);
    }

    #[test]
    fn a_fresh_feed_stretches_the_looks_at_a_pending_reissue_after_its_first_minute() {
        let m = time::Duration::minutes;
        let cases = [
            (Standing::Fresh, time::Duration::seconds(10), 5),
            (Standing::Fresh, m(2), 1800),
            (Standing::Fresh, m(90), 1800),
            (Standing::Syncing, m(2), 30),
            (Standing::Failing, m(2), 30),
            (Standing::Off, m(30), 120),
            (Standing::Off, m(90), 600),
        ];
        for (standing, pending_for, want) in cases {
            assert_eq!(
                pending_look(standing, pending_for),
                Duration::from_secs(want),
                "{standing:?} {pending_for}"
            );
        }
    }
}
