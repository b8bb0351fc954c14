//! The account-wide change feed: status changes over a window (from each order's
//! `status_last_updated`, which [`State::move_order`] stamps) and list orders with
//! filters and paging.
//!
//! The simulator models one account with no per-key visibility (order info answers
//! every key alike), so every key sees every order here too.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::settings::FeedSettings;
use crate::store::*;
use certcentral::feed::LIST_ORDERS_MAX_LIMIT;

impl State {
    /// `GET /order/certificate/status-changes`: the orders whose status or current
    /// certificate changed in the window, by order id.
    pub fn status_changes(&self, query: &str, now: OffsetDateTime) -> ApiResult<Value> {
        let (from, to) = window(query, now, &self.feed)?;
        let orders: Vec<Value> = self
            .orders
            .iter()
            .filter(|(_, o)| o.status_last_updated.is_some_and(|t| from <= t && t <= to))
            .map(|(id, o)| {
                json!({
                    "order_id": id,
                    "certificate_id": o.current_certificate,
                    "status": o.status,
                })
            })
            .collect();
        Ok(json!({ "orders": orders }))
    }

    /// `GET /order/certificate`: by id ascending, with `filters[status]`,
    /// `filters[id]`, `offset` and `limit` (at most 1000).
    pub fn list_orders(&self, query: &str) -> ApiResult<Value> {
        let q = ListQuery::parse(query)?;
        let wanted = |o: &Order| q.status.as_deref().is_none_or(|s| s == o.status.as_str());
        // With ids, only those are looked up: a page by id costs what it lists.
        let matching: Box<dyn Iterator<Item = (&u64, &Order)>> = match &q.ids {
            Some(ids) => Box::new(ids.iter().filter_map(|id| self.orders.get_key_value(id))),
            None => Box::new(self.orders.iter()),
        };
        let mut total = 0u64;
        let mut orders = Vec::new();
        for (id, order) in matching.filter(|(_, o)| wanted(o)) {
            if total >= q.offset && (orders.len() as u64) < q.limit {
                orders.push(self.summary(*id, order));
            }
            total += 1;
        }
        Ok(json!({
            "orders": orders,
            "page": {"total": total, "limit": q.limit, "offset": q.offset},
        }))
    }

    fn summary(&self, id: u64, order: &Order) -> Value {
        let cert = self.certificates.get(&order.current_certificate);
        let has_duplicates = order.certificates.iter().any(|c| {
            self.certificates
                .get(c)
                .is_some_and(|c| c.origin == Origin::Duplicate)
        });
        json!({
            "id": id,
            "status": order.status,
            "certificate": {
                "id": order.current_certificate,
                "common_name": cert.map(|c| &c.common_name),
                "dns_names": cert.map(|c| c.dns_names.clone()).unwrap_or_default(),
                "valid_till": cert
                    .and_then(|c| c.issued.as_ref())
                    .map(|i| crate::wire::date(i.not_after.date())),
                "signature_hash": cert.map(|c| &c.signature_hash),
            },
            "order_valid_till": crate::wire::date(order.order_valid_till),
            "has_duplicates": has_duplicates,
            "product": {"name_id": order.seed.product_name_id},
        })
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    // DigiCert documents the 7-day limit but not the error code it answers with;
    // `invalid_input` is inferred.
    ApiError::bad_request("invalid_input", message)
}

/// A query parameter, decoded as a form (`+` is a space), like the other list
/// queries (`DomainQuery`).
fn param(query: &str, name: &str) -> Option<String> {
    let url = reqwest::Url::parse(&format!("http://q/?{query}")).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
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
    if from > to {
        return Err(bad("the range ends before it starts"));
    }
    if now - from > settings.longest_window {
        return Err(bad(format!(
            "the window reaches back more than {} days",
            settings.longest_window.whole_days()
        )));
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
    ids: Option<BTreeSet<u64>>,
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
                    .filter(|i| !i.trim().is_empty())
                    .map(|i| {
                        i.trim()
                            .parse()
                            .map_err(|_| bad("filters[id] lists order ids"))
                    })
                    .collect::<ApiResult<BTreeSet<u64>>>()
            })
            .transpose()?;
        Ok(ListQuery {
            offset: number("offset", 0)?,
            limit: number("limit", LIST_ORDERS_MAX_LIMIT)?.clamp(1, LIST_ORDERS_MAX_LIMIT),
            status: param(query, "filters[status]"),
            ids,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use certcentral::types::OrderStatus;
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
            // A stray escape before a multi-byte character: refused, not a panic.
            "seconds=%1\u{e9}",
        ] {
            assert!(window(q, now, &s).is_err(), "{q}");
        }
        assert!(window("minutes=10080", now, &s).is_ok());
    }

    fn seeded(n: u64, now: OffsetDateTime) -> (State, crate::ca::TestCa) {
        let ca = crate::ca::TestCa::generate(now).unwrap();
        let mut state = State::new();
        for id in 1..=n {
            let seed: OrderSeed = serde_json::from_value(json!({
                "id": id, "common_name": format!("o{id}.example.com"),
            }))
            .unwrap();
            state.seed_order(seed, &ca, now).unwrap();
        }
        (state, ca)
    }

    fn ids(v: &Value) -> Vec<u64> {
        v["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_u64().or(o["order_id"].as_u64()).unwrap())
            .collect()
    }

    #[test]
    fn list_orders_pages_by_id_with_filters() {
        let now = datetime!(2026-12-05 12:00 UTC);
        let (mut state, _ca) = seeded(25, now);
        state.move_order(7, OrderStatus::Revoked, None, now);
        let page = state.list_orders("offset=20&limit=10").unwrap();
        assert_eq!(ids(&page), (21..=25).collect::<Vec<_>>());
        assert_eq!(
            page["page"],
            json!({"total": 25, "limit": 10, "offset": 20})
        );
        // Over the largest page: clamped.
        let page = state.list_orders("limit=5000").unwrap();
        assert_eq!(page["page"]["limit"], 1000);
        assert_eq!(ids(&page).len(), 25);
        let page = state
            .list_orders("filters%5Bid%5D=9%2C3%2C7%2C99&filters[status]=issued")
            .unwrap();
        assert_eq!(ids(&page), vec![3, 9]);
        assert_eq!(page["page"]["total"], 2);
        let page = state.list_orders("filters[status]=revoked").unwrap();
        assert_eq!(ids(&page), vec![7]);
        assert_eq!(page["orders"][0]["has_duplicates"], false);
        assert!(state.list_orders("limit=x").is_err());
        assert!(state.list_orders("filters[id]=1,a").is_err());
    }

    #[test]
    fn status_changes_list_what_moved_in_the_window() {
        let start = datetime!(2026-12-05 12:00 UTC);
        let (mut state, _ca) = seeded(5, start);
        let later = start + Duration::hours(1);
        // Seeded orders are new: they show while the window reaches their seeding.
        assert_eq!(
            ids(&state.status_changes("minutes=61", later).unwrap()).len(),
            5
        );
        assert!(ids(&state.status_changes("minutes=59", later).unwrap()).is_empty());
        state.move_order(
            4,
            OrderStatus::ReissuePending,
            None,
            later - Duration::seconds(30),
        );
        state.move_order(2, OrderStatus::Revoked, None, later);
        // Not a change: the same status and certificate.
        state.move_order(3, OrderStatus::Issued, None, later);
        let changes = state.status_changes("seconds=30", later).unwrap();
        assert_eq!(ids(&changes), vec![2, 4]);
        assert_eq!(changes["orders"][0]["status"], "revoked");
        assert_eq!(
            changes["orders"][1]["certificate_id"],
            state.orders[&4].current_certificate
        );
        // A range in Mountain time: 12:59:30 UTC is 5:59:30 there; both ends count.
        let range = "filters[status_last_updated]=2026-12-5+5:59:30...2026-12-5+5:59:30";
        assert_eq!(ids(&state.status_changes(range, later).unwrap()), vec![4]);
    }
}
