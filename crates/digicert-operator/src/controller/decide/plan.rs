//! The order's end (a Multi-year Plan's last day) and what it means for readiness.

use std::time::Duration;

use time::OffsetDateTime;

use super::can_extend;

/// The end of the order's last day, from DigiCert's `order_valid_till` (a date).
pub fn order_end(valid_till: Option<&str>) -> Option<OffsetDateTime> {
    let date = time::Date::parse(
        valid_till?,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()?;
    Some(date.with_hms(23, 59, 59).ok()?.assume_utc())
}

/// Where the order stands against its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanEnd {
    /// DigiCert has not said (or not yet been asked).
    Unknown,
    /// More than the warning period is left.
    Active { ends: OffsetDateTime },
    /// Within the warning period: renew the plan at DigiCert.
    Ending { ends: OffsetDateTime },
    /// Over: no certificate of this order can be issued any more.
    Ended { ends: OffsetDateTime },
}

pub fn plan_end(ends: Option<OffsetDateTime>, warning: Duration, now: OffsetDateTime) -> PlanEnd {
    let Some(ends) = ends else {
        return PlanEnd::Unknown;
    };
    let warning = time::Duration::try_from(warning).unwrap_or(time::Duration::ZERO);
    if now >= ends {
        PlanEnd::Ended { ends }
    } else if now >= ends - warning {
        PlanEnd::Ending { ends }
    } else {
        PlanEnd::Active { ends }
    }
}

/// When the order-end warning starts (a moment to wake up for).
pub fn warning_starts(ends: Option<OffsetDateTime>, warning: Duration) -> Option<OffsetDateTime> {
    Some(ends? - time::Duration::try_from(warning).ok()?)
}

/// The `OrderExpiring` condition for a plan end: (status, reason, message), or `None`
/// when nothing is known.
pub fn order_expiring_condition(
    plan: &PlanEnd,
    now: OffsetDateTime,
) -> Option<(bool, &'static str, String)> {
    let day = |t: &OffsetDateTime| t.date().to_string();
    match plan {
        PlanEnd::Unknown => None,
        PlanEnd::Active { ends } => Some((
            false,
            "OrderActive",
            format!("the order runs until {}", day(ends)),
        )),
        PlanEnd::Ending { ends } => Some((
            true,
            "OrderEnding",
            format!(
                "the order ends on {} (in {} days); no certificate can outlast it: renew the plan at DigiCert and create a DigicertOrder for the new order",
                day(ends),
                (*ends - now).whole_days()
            ),
        )),
        PlanEnd::Ended { ends } => Some((
            true,
            "OrderEnded",
            format!(
                "the order ended on {}; DigiCert issues no more certificates for it",
                day(ends)
            ),
        )),
    }
}

/// What to say when DigiCert refuses a certificate that would outlast the order
/// (`cert_validity_exceeds_order_validity`): (reason, message). The order has not
/// necessarily ended: only its dates tell, and what the user can do is renew it.
pub fn refused_past_order_end(
    ends: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> (&'static str, String) {
    match ends {
        Some(ends) if now >= ends => (
            "OrderExpired",
            format!(
                "the order ended on {}; DigiCert issues no more certificates for it: renew the order at DigiCert and point a DigicertOrder at the new order",
                ends.date()
            ),
        ),
        Some(ends) => (
            "OrderEnding",
            format!(
                "DigiCert refused a certificate that would outlast the order, which ends on {} (in {} days): renew the order at DigiCert and point a DigicertOrder at the new order",
                ends.date(),
                (ends - now).whole_days()
            ),
        ),
        None => (
            "OrderEnding",
            "DigiCert refused a certificate that would outlast the order; its end is not known yet: check it at DigiCert and renew the order".to_string(),
        ),
    }
}

/// Why an expired certificate leaves the order not Ready: (reason, message), or
/// `None` while it is valid. `OrderExpired` when the order ended with it (nothing
/// can replace it), `Expired` otherwise.
pub fn expiry(
    not_after: OffsetDateTime,
    ends: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Option<(&'static str, String)> {
    if now < not_after {
        return None;
    }
    let at = not_after
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    if ends.is_some_and(|e| now >= e) || !can_extend(ends, not_after) {
        Some((
            "OrderExpired",
            format!(
                "the certificate in the Secret expired at {at} with the order; renew the plan at DigiCert"
            ),
        ))
    } else {
        Some((
            "Expired",
            format!("the certificate in the Secret expired at {at}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_refusal_past_the_orders_end_says_what_the_dates_say() {
        let ends = Some(datetime!(2027-03-01 23:59:59 UTC));
        let (reason, message) = refused_past_order_end(ends, datetime!(2027-02-27 12:00 UTC));
        assert_eq!(reason, "OrderEnding");
        assert!(message.contains("2027-03-01"), "{message}");
        assert!(message.contains("in 2 days"), "{message}");
        assert!(message.contains("renew the order at DigiCert"), "{message}");
        let (reason, message) = refused_past_order_end(ends, datetime!(2027-03-02 0:00 UTC));
        assert_eq!(reason, "OrderExpired");
        assert!(message.contains("ended on 2027-03-01"), "{message}");
        let (reason, message) = refused_past_order_end(None, datetime!(2027-03-02 0:00 UTC));
        assert_eq!(reason, "OrderEnding");
        assert!(message.contains("not known"), "{message}");
    }

    #[test]
    fn order_ends_at_the_end_of_its_last_day() {
        assert_eq!(
            order_end(Some("2027-03-01")),
            Some(datetime!(2027-03-01 23:59:59 UTC))
        );
        assert_eq!(order_end(Some("March 2027")), None);
        assert_eq!(order_end(None), None);
    }

    #[test]
    fn the_plan_end_warns_ahead_and_says_when_it_is_over() {
        let ends = datetime!(2027-03-01 23:59:59 UTC);
        let month = Duration::from_secs(30 * 86_400);
        let cases = [
            (datetime!(2027-01-01 0:00 UTC), "OrderActive", false),
            (datetime!(2027-01-30 23:00 UTC), "OrderActive", false),
            (datetime!(2027-02-01 0:00 UTC), "OrderEnding", true),
            (datetime!(2027-03-01 23:59:59 UTC), "OrderEnded", true),
            (datetime!(2027-06-01 0:00 UTC), "OrderEnded", true),
        ];
        for (now, reason, status) in cases {
            let plan = plan_end(Some(ends), month, now);
            let (s, r, message) = order_expiring_condition(&plan, now).unwrap();
            assert_eq!((s, r), (status, reason), "{now}: {message}");
            assert!(message.contains("2027-03-01"), "{message}");
        }
        assert_eq!(plan_end(None, month, ends), PlanEnd::Unknown);
        assert_eq!(order_expiring_condition(&PlanEnd::Unknown, ends), None);
        assert_eq!(
            warning_starts(Some(ends), month),
            Some(datetime!(2027-01-30 23:59:59 UTC))
        );
    }

    #[test]
    fn an_expired_certificate_says_whether_the_order_ended_with_it() {
        let ends = Some(datetime!(2027-03-01 23:59:59 UTC));
        let cases = [
            // (not after, order end, now, reason)
            (
                datetime!(2026-06-01 0:00 UTC),
                ends,
                datetime!(2026-05-01 0:00 UTC),
                None,
            ),
            (
                datetime!(2026-06-01 0:00 UTC),
                ends,
                datetime!(2026-06-01 0:00 UTC),
                Some("Expired"),
            ),
            (
                datetime!(2026-06-01 0:00 UTC),
                None,
                datetime!(2026-07-01 0:00 UTC),
                Some("Expired"),
            ),
            // The certificate ran to the order's end: the order is over.
            (
                datetime!(2027-03-01 23:59:59 UTC),
                ends,
                datetime!(2027-03-02 0:00 UTC),
                Some("OrderExpired"),
            ),
            (
                datetime!(2027-02-01 0:00 UTC),
                ends,
                datetime!(2027-03-05 0:00 UTC),
                Some("OrderExpired"),
            ),
        ];
        for (not_after, ends, now, want) in cases {
            assert_eq!(
                expiry(not_after, ends, now).map(|e| e.0),
                want,
                "{not_after} {now}"
            );
        }
    }
}
