//! The account-wide change feed: when each order's status (or current certificate)
//! last changed, status changes over a window, and list orders with filters and
//! paging. Changes are noticed by comparing each order with what was last seen, after
//! every call and every settling of the clock, so no rule has to remember to say so.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::store::*;
use certcentral::types::OrderStatus;

/// What an order was when last looked at, and since when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastChange {
    pub status: OrderStatus,
    pub certificate: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// An event a webhook reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedEvent {
    /// certificate_issued, certificate_revoked, order_rejected
    pub event: &'static str,
    pub order_id: u64,
    pub certificate_id: u64,
}

/// Settings of the feed (from the configuration).
#[derive(Clone, Debug)]
pub struct FeedSettings {
    /// The offset a `filters[status_last_updated]` range is read in: -7 (US Mountain
    /// standard time, as third parties report DigiCert reads it) or 0 (UTC).
    pub range_offset_hours: i8,
    /// How far back a window may reach (7 days, documented).
    pub longest_window: Duration,
    /// Put the chain into the answer of a reissue issued at once.
    pub reissue_answer_chain: bool,
}

impl Default for FeedSettings {
    fn default() -> Self {
        FeedSettings {
            range_offset_hours: -7,
            longest_window: Duration::days(7),
            reissue_answer_chain: false,
        }
    }
}

/// The events of one order's change from `was` to `now` (status, certificate).
fn events_of(
    order_id: u64,
    was: &LastChange,
    status: &OrderStatus,
    certificate: u64,
) -> Vec<FeedEvent> {
    let event = |event| FeedEvent {
        event,
        order_id,
        certificate_id: certificate,
    };
    match status {
        OrderStatus::Issued if certificate != was.certificate => vec![event("certificate_issued")],
        // A pending reissue ended without a new certificate: rejected or canceled.
        OrderStatus::Issued if was.status == OrderStatus::ReissuePending => {
            vec![event("order_rejected")]
        }
        OrderStatus::Revoked => vec![event("certificate_revoked")],
        OrderStatus::Rejected => vec![event("order_rejected")],
        _ => vec![],
    }
}

impl State {
    /// Stamps every order whose status or current certificate changed since it was
    /// last seen; returns what webhooks report of it.
    pub fn note_changes(&mut self, now: OffsetDateTime) -> Vec<FeedEvent> {
        let mut events = Vec::new();
        for (id, order) in &self.orders {
            let seen = self.last_changes.get(id);
            if seen.is_some_and(|s| {
                s.status == order.status && s.certificate == order.current_certificate
            }) {
                continue;
            }
            // An order seen for the first time (seeded) did not change: it is stamped
            // outside every window.
            let at = match seen {
                Some(was) => {
                    events.extend(events_of(
                        *id,
                        was,
                        &order.status,
                        order.current_certificate,
                    ));
                    now
                }
                None => OffsetDateTime::UNIX_EPOCH,
            };
            self.last_changes.insert(
                *id,
                LastChange {
                    status: order.status.clone(),
                    certificate: order.current_certificate,
                    at,
                },
            );
        }
        events
    }

    /// `GET /order/certificate/status-changes`.
    pub fn status_changes(&self, query: &str, now: OffsetDateTime) -> ApiResult<Value> {
        let (from, to) = window(query, now, &self.feed)?;
        let orders: Vec<Value> = self
            .last_changes
            .iter()
            .filter(|(id, c)| c.at >= from && c.at <= to && self.orders.contains_key(id))
            .map(|(id, c)| json!({"order_id": id, "certificate_id": c.certificate, "status": c.status}))
            .collect();
        Ok(json!({ "orders": orders }))
    }

    /// `GET /order/certificate`: by id, with `filters[status]`, `filters[id]`,
    /// `offset` and `limit` (at most 1000).
    pub fn list_orders(&self, query: &str) -> ApiResult<Value> {
        let q = ListQuery::parse(query)?;
        let matching: Vec<(&u64, &Order)> = self
            .orders
            .iter()
            .filter(|(id, o)| {
                q.ids.as_ref().is_none_or(|ids| ids.contains(id))
                    && q.status.as_ref().is_none_or(|s| *s == o.status.as_str())
            })
            .collect();
        let orders: Vec<Value> = matching
            .iter()
            .skip(q.offset as usize)
            .take(q.limit as usize)
            .map(|(id, o)| self.summary(**id, o))
            .collect();
        Ok(json!({
            "orders": orders,
            "page": {"total": matching.len(), "limit": q.limit, "offset": q.offset},
        }))
    }

    fn summary(&self, id: u64, order: &Order) -> Value {
        let cert = &self.certificates[&order.current_certificate];
        let has_duplicates = self
            .certificates
            .values()
            .any(|c| c.order_id == id && matches!(c.origin, Origin::Duplicate));
        json!({
            "id": id,
            "status": order.status,
            "certificate": {
                "id": cert.id,
                "common_name": cert.common_name,
                "dns_names": cert.dns_names,
                "valid_till": cert.issued.as_ref().map(|i| crate::wire::date(i.not_after.date())),
                "signature_hash": cert.signature_hash,
            },
            "order_valid_till": crate::wire::date(order.order_valid_till),
            "has_duplicates": has_duplicates,
            "product": {"name_id": order.seed.product_name_id},
        })
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    // DigiCert's code for a bad window is not documented; this one is inferred.
    ApiError::bad_request("invalid_input", message)
}

fn param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (decode(k) == name).then(|| decode(v))
    })
}

/// A query value: `+` is a space, `%XX` a byte.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The window a status-changes query asks for, as instants.
pub fn window(
    query: &str,
    now: OffsetDateTime,
    settings: &FeedSettings,
) -> ApiResult<(OffsetDateTime, OffsetDateTime)> {
    let number = |name: &str| -> ApiResult<Option<i64>> {
        param(query, name)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| bad(format!("{name} must be a number")))
            })
            .transpose()
    };
    let (from, to) = if let Some(s) = number("seconds")? {
        (now - Duration::seconds(s), now)
    } else if let Some(m) = number("minutes")? {
        (now - Duration::minutes(m), now)
    } else if let Some(range) = param(query, "filters[status_last_updated]") {
        let (a, b) = range
            .split_once("...")
            .ok_or_else(|| bad("the range must be FROM...TO"))?;
        let offset = UtcOffset::from_hms(settings.range_offset_hours, 0, 0)
            .map_err(|_| bad("bad offset"))?;
        (range_time(a, offset)?, range_time(b, offset)?)
    } else {
        return Err(bad("give minutes, seconds or filters[status_last_updated]"));
    };
    if from > to || now - from > settings.longest_window {
        return Err(bad("the window must lie within the last 7 days"));
    }
    Ok((from, to))
}

/// `YYYY-M-D H:M:S` (the `+` already a space) in `offset`.
fn range_time(text: &str, offset: UtcOffset) -> ApiResult<OffsetDateTime> {
    let wrong = || bad(format!("{text:?} is not YYYY-M-D+H:M:S"));
    let (date, clock) = text.trim().split_once(' ').ok_or_else(wrong)?;
    let d: Vec<&str> = date.split('-').collect();
    let c: Vec<&str> = clock.split(':').collect();
    let n = |s: &&str| s.parse::<u32>().map_err(|_| wrong());
    let ([y, mo, da], [h, mi, se]) = (d.as_slice(), c.as_slice()) else {
        return Err(wrong());
    };
    let month = time::Month::try_from(n(mo)? as u8).map_err(|_| wrong())?;
    let date =
        time::Date::from_calendar_date(n(y)? as i32, month, n(da)? as u8).map_err(|_| wrong())?;
    let time =
        time::Time::from_hms(n(h)? as u8, n(mi)? as u8, n(se)? as u8).map_err(|_| wrong())?;
    Ok(PrimitiveDateTime::new(date, time).assume_offset(offset))
}

struct ListQuery {
    offset: u64,
    limit: u64,
    status: Option<String>,
    ids: Option<Vec<u64>>,
}

impl ListQuery {
    fn parse(query: &str) -> ApiResult<Self> {
        let number = |name: &str, default: u64| -> ApiResult<u64> {
            param(query, name)
                .map(|v| {
                    v.parse()
                        .map_err(|_| bad(format!("{name} must be a number")))
                })
                .unwrap_or(Ok(default))
        };
        let ids = param(query, "filters[id]")
            .map(|v| {
                v.split(',')
                    .map(|i| {
                        i.trim()
                            .parse()
                            .map_err(|_| bad("filters[id] lists order ids"))
                    })
                    .collect::<ApiResult<Vec<u64>>>()
            })
            .transpose()?;
        Ok(ListQuery {
            offset: number("offset", 0)?,
            limit: number("limit", 1000)?.clamp(1, 1000),
            status: param(query, "filters[status]"),
            ids,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn windows_end_now_or_read_a_range_in_mountain_time() {
        let now = datetime!(2026-12-05 12:00 UTC);
        let s = FeedSettings::default();
        assert_eq!(
            window("seconds=90", now, &s).unwrap().0,
            now - Duration::seconds(90)
        );
        assert_eq!(
            window("minutes=5", now, &s).unwrap().0,
            now - Duration::minutes(5)
        );
        let (from, to) = window(
            "filters%5Bstatus_last_updated%5D=2026-12-5+1:00:00...2026-12-5+4:30:00",
            now,
            &s,
        )
        .unwrap();
        assert_eq!(from, datetime!(2026-12-05 08:00 UTC));
        assert_eq!(to, datetime!(2026-12-05 11:30 UTC));
        let utc = FeedSettings {
            range_offset_hours: 0,
            ..FeedSettings::default()
        };
        let (from, _) = window(
            "filters[status_last_updated]=2026-12-5 1:00:00...2026-12-5 4:30:00",
            now,
            &utc,
        )
        .unwrap();
        assert_eq!(from, datetime!(2026-12-05 01:00 UTC));
        // Too far back, no window, nonsense.
        for q in [
            "minutes=10081",
            "",
            "seconds=x",
            "filters[status_last_updated]=2026-12-5",
        ] {
            assert!(window(q, now, &s).is_err(), "{q}");
        }
        assert!(window("minutes=10080", now, &s).is_ok());
    }
}
