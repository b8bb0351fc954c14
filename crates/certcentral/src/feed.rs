//! The account-wide change feed's wire types: status changes
//! (`GET /order/certificate/status-changes`) and list orders (`GET /order/certificate`),
//! and how their queries are written. The calls are in `client/endpoints.rs`.

use serde::{Deserialize, Serialize};

use crate::types::OrderStatus;

/// One order whose status (or current certificate) changed in the window of
/// `GET /order/certificate/status-changes`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    pub order_id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<u64>,
    pub status: OrderStatus,
}

/// `{"orders":[...]}`; an answer without `orders` lists none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChanges {
    #[serde(default)]
    pub orders: Vec<StatusChange>,
}

/// The window of a status-changes call (DigiCert looks at most 7 days back).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeWindow {
    /// The last N seconds, ending at DigiCert's now.
    Seconds(u64),
    /// The last N minutes, ending at DigiCert's now.
    Minutes(u64),
    /// From and to (both ends included), as instants in any offset. DigiCert reads
    /// the range in US Mountain time, so the client writes it in UTC-7: a caller that
    /// means UTC instants gets the window it means.
    Range {
        from: time::OffsetDateTime,
        to: time::OffsetDateTime,
    },
}

/// The offset DigiCert reads a status-changes range in: US Mountain time, as third
/// parties report (their clients use the standard offset, UTC-7, all year).
pub const STATUS_CHANGES_RANGE_OFFSET_HOURS: i8 = -7;

/// An instant as DigiCert's range reads it: its wall-clock time in UTC-7.
pub fn mountain_time(at: time::OffsetDateTime) -> time::PrimitiveDateTime {
    let offset =
        time::UtcOffset::from_hms(STATUS_CHANGES_RANGE_OFFSET_HOURS, 0, 0).expect("a valid offset");
    let local = at.to_offset(offset);
    time::PrimitiveDateTime::new(local.date(), local.time())
}

/// `YYYY-M-D+H:M:S` of an instant in Mountain time, the `+` standing for the space
/// of DigiCert's examples (a query string decodes `+` as a space).
pub fn status_changes_range_time(at: time::OffsetDateTime) -> String {
    let t = mountain_time(at);
    format!(
        "{}-{}-{}+{}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

impl ChangeWindow {
    /// The query string of the call, encoded.
    pub fn query(&self) -> String {
        match self {
            ChangeWindow::Seconds(s) => format!("seconds={s}"),
            ChangeWindow::Minutes(m) => format!("minutes={m}"),
            ChangeWindow::Range { from, to } => format!(
                "filters%5Bstatus_last_updated%5D={}...{}",
                status_changes_range_time(*from),
                status_changes_range_time(*to)
            ),
        }
    }
}

/// The current certificate of an order in list orders.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSummaryCertificate {
    /// 0 when DigiCert leaves it out (an order without a certificate yet).
    #[serde(default)]
    pub id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_name: Option<String>,
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// `yyyy-MM-dd`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_till: Option<String>,
}

/// One order of `GET /order/certificate`; fields not named here are ignored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSummary {
    pub id: u64,
    pub status: OrderStatus,
    #[serde(default)]
    pub certificate: OrderSummaryCertificate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_valid_till: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_duplicates: Option<bool>,
}

/// Where a page of list orders stands: `total` orders match.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    #[serde(default)]
    pub total: u64,
    #[serde(default)]
    pub limit: u64,
    #[serde(default)]
    pub offset: u64,
}

/// A page of `GET /order/certificate`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPage {
    #[serde(default)]
    pub orders: Vec<OrderSummary>,
    #[serde(default)]
    pub page: Page,
}

/// The largest page of list orders.
pub const LIST_ORDERS_MAX_LIMIT: u64 = 1000;

/// What list orders is asked for; filters only when set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListOrdersQuery {
    pub offset: u64,
    /// 1 to 1000 (a larger one is sent as 1000).
    pub limit: u64,
    pub status: Option<OrderStatus>,
    pub ids: Vec<u64>,
}

impl Default for ListOrdersQuery {
    fn default() -> Self {
        ListOrdersQuery {
            offset: 0,
            limit: LIST_ORDERS_MAX_LIMIT,
            status: None,
            ids: Vec::new(),
        }
    }
}

impl ListOrdersQuery {
    /// The query string of the call, encoded.
    pub fn query(&self) -> String {
        let limit = self.limit.clamp(1, LIST_ORDERS_MAX_LIMIT);
        let mut q = format!("offset={}&limit={limit}", self.offset);
        if let Some(s) = &self.status {
            q.push_str("&filters%5Bstatus%5D=");
            q.push_str(&encode_query_value(s.as_str()));
        }
        if !self.ids.is_empty() {
            let ids: Vec<String> = self.ids.iter().map(u64::to_string).collect();
            q.push_str("&filters%5Bid%5D=");
            q.push_str(&ids.join("%2C"));
        }
        q
    }
}

/// Percent-encodes everything but unreserved characters.
fn encode_query_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountain_time_is_seven_hours_behind_utc() {
        use time::macros::datetime;
        // Across a day boundary, and the same instant given in another offset.
        assert_eq!(
            mountain_time(datetime!(2026-12-05 03:04:05 UTC)),
            datetime!(2026-12-04 20:04:05)
        );
        assert_eq!(
            mountain_time(datetime!(2026-12-05 05:04:05 +2)),
            datetime!(2026-12-04 20:04:05)
        );
        // Summer too: DigiCert's reading is taken as the standard offset all year.
        assert_eq!(
            mountain_time(datetime!(2026-07-01 12:00 UTC)),
            datetime!(2026-07-01 05:00)
        );
    }

    #[test]
    fn change_windows_are_written_as_digicert_reads_them() {
        use time::macros::datetime;
        assert_eq!(ChangeWindow::Seconds(120).query(), "seconds=120");
        assert_eq!(ChangeWindow::Minutes(5).query(), "minutes=5");
        let window = ChangeWindow::Range {
            from: datetime!(2026-12-05 03:04:05 UTC),
            to: datetime!(2026-12-05 10:00:00 UTC),
        };
        assert_eq!(
            window.query(),
            "filters%5Bstatus_last_updated%5D=2026-12-4+20:04:05...2026-12-5+3:00:00"
        );
    }

    #[test]
    fn list_orders_names_only_the_filters_set() {
        assert_eq!(ListOrdersQuery::default().query(), "offset=0&limit=1000");
        let q = ListOrdersQuery {
            offset: 2000,
            limit: 5000,
            status: Some(OrderStatus::ReissuePending),
            ids: vec![1, 22],
        };
        assert_eq!(
            q.query(),
            "offset=2000&limit=1000&filters%5Bstatus%5D=reissue_pending&filters%5Bid%5D=1%2C22"
        );
        let q = ListOrdersQuery {
            limit: 0,
            status: Some(OrderStatus::Other("a b&c".into())),
            ..ListOrdersQuery::default()
        };
        assert_eq!(q.query(), "offset=0&limit=1&filters%5Bstatus%5D=a%20b%26c");
    }

    #[test]
    fn feed_answers_parse_with_missing_and_unknown_fields() {
        let changes: StatusChanges = serde_json::from_str(
            r#"{"orders":[{"order_id":1,"certificate_id":2,"status":"issued"},{"order_id":3,"status":"revoked","extra":1}]}"#,
        )
        .unwrap();
        assert_eq!(changes.orders.len(), 2);
        assert_eq!(changes.orders[0].certificate_id, Some(2));
        assert_eq!(changes.orders[1].certificate_id, None);
        assert_eq!(changes.orders[1].status, OrderStatus::Revoked);
        let empty: StatusChanges = serde_json::from_str("{}").unwrap();
        assert!(empty.orders.is_empty());

        let page: OrderPage = serde_json::from_str(
            r#"{"orders":[
                {"id":7,"status":"reissue_pending","certificate":{"id":9,"common_name":"a.example","dns_names":["a.example"],"valid_till":"2027-06-01","signature_hash":"sha256"},"order_valid_till":"2029-01-01","has_duplicates":false,"product":{"name_id":"ssl_plus"}},
                {"id":8,"status":"pending","certificate":{"common_name":"b.example"}}
            ],"page":{"total":2,"limit":1000,"offset":0}}"#,
        )
        .unwrap();
        assert_eq!(page.orders[0].certificate.id, 9);
        assert_eq!(page.orders[0].status, OrderStatus::ReissuePending);
        assert_eq!(
            page.orders[0].certificate.valid_till.as_deref(),
            Some("2027-06-01")
        );
        assert_eq!(page.orders[0].has_duplicates, Some(false));
        assert_eq!(page.orders[1].certificate.id, 0);
        assert!(page.orders[1].certificate.dns_names.is_empty());
        assert_eq!(
            page.page,
            Page {
                total: 2,
                limit: 1000,
                offset: 0
            }
        );
    }
}
