//! The account-wide change feed: status changes (`GET /order/certificate/status-changes`)
//! and list orders (`GET /order/certificate`), one call for many orders.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::client::Client;
use crate::error::Error;
use crate::types::{Operation, OrderStatus};

/// One order whose status changed in the window.
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

/// The window of a status-changes call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeWindow {
    Seconds(u64),
    Minutes(u64),
    /// From and to, as instants (any offset): written in US Mountain time (UTC-7), as
    /// DigiCert reads the range.
    Range {
        from: OffsetDateTime,
        to: OffsetDateTime,
    },
}

/// The offset DigiCert reads a status-changes range in (third parties report US
/// Mountain time; the standard offset is used, as they do).
pub const RANGE_OFFSET_HOURS: i8 = -7;

impl ChangeWindow {
    /// The query string of the call.
    pub fn query(&self) -> String {
        match self {
            ChangeWindow::Seconds(s) => format!("seconds={s}"),
            ChangeWindow::Minutes(m) => format!("minutes={m}"),
            ChangeWindow::Range { from, to } => format!(
                "filters%5Bstatus_last_updated%5D={}...{}",
                range_time(*from),
                range_time(*to)
            ),
        }
    }
}

/// `YYYY-M-D+H:M:S` in DigiCert's zone (`+` is a space in a query string).
fn range_time(at: OffsetDateTime) -> String {
    let offset = time::UtcOffset::from_hms(RANGE_OFFSET_HOURS, 0, 0).expect("a valid offset");
    let t = at.to_offset(offset);
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

/// The current certificate of a listed order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSummaryCertificate {
    #[serde(default)]
    pub id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_name: Option<String>,
    #[serde(default)]
    pub dns_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_till: Option<String>,
}

/// One order of list orders.
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

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    #[serde(default)]
    pub total: u64,
    #[serde(default)]
    pub limit: u64,
    #[serde(default)]
    pub offset: u64,
}

/// A page of list orders.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPage {
    #[serde(default)]
    pub orders: Vec<OrderSummary>,
    #[serde(default)]
    pub page: Page,
}

/// What list orders is asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListOrdersQuery {
    pub offset: u64,
    /// At most 1000.
    pub limit: u64,
    pub status: Option<OrderStatus>,
    pub ids: Vec<u64>,
}

impl Default for ListOrdersQuery {
    fn default() -> Self {
        ListOrdersQuery {
            offset: 0,
            limit: 1000,
            status: None,
            ids: Vec::new(),
        }
    }
}

impl ListOrdersQuery {
    pub fn query(&self) -> String {
        let mut q = format!("offset={}&limit={}", self.offset, self.limit.clamp(1, 1000));
        if let Some(s) = &self.status {
            q.push_str(&format!("&filters%5Bstatus%5D={}", s.as_str()));
        }
        if !self.ids.is_empty() {
            let ids: Vec<String> = self.ids.iter().map(u64::to_string).collect();
            q.push_str(&format!("&filters%5Bid%5D={}", ids.join("%2C")));
        }
        q
    }
}

impl Client {
    /// `GET /order/certificate/status-changes`: the account's orders whose status
    /// changed in `window`.
    pub async fn status_changes(&self, window: &ChangeWindow) -> Result<StatusChanges, Error> {
        let path = format!("order/certificate/status-changes?{}", window.query());
        self.json(Operation::StatusChanges, Method::GET, &path, None::<&()>)
            .await
    }

    /// `GET /order/certificate`: a page of the account's orders with their status and
    /// current certificate.
    pub async fn list_orders(&self, query: &ListOrdersQuery) -> Result<OrderPage, Error> {
        let path = format!("order/certificate?{}", query.query());
        self.json(Operation::ListOrders, Method::GET, &path, None::<&()>)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn windows_are_written_as_digicert_reads_them() {
        assert_eq!(ChangeWindow::Seconds(120).query(), "seconds=120");
        assert_eq!(ChangeWindow::Minutes(5).query(), "minutes=5");
        // UTC 2026-12-05 03:04:05 is 2026-12-04 20:04:05 in Mountain (standard) time.
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
            status: Some(OrderStatus::Issued),
            ids: vec![1, 22],
        };
        assert_eq!(
            q.query(),
            "offset=2000&limit=1000&filters%5Bstatus%5D=issued&filters%5Bid%5D=1%2C22"
        );
    }

    #[test]
    fn answers_parse_with_missing_and_unknown_fields() {
        let changes: StatusChanges = serde_json::from_str(
            r#"{"orders":[{"order_id":1,"certificate_id":2,"status":"issued"},{"order_id":3,"status":"revoked","extra":1}]}"#,
        )
        .unwrap();
        assert_eq!(changes.orders.len(), 2);
        assert_eq!(changes.orders[1].certificate_id, None);
        let empty: StatusChanges = serde_json::from_str("{}").unwrap();
        assert!(empty.orders.is_empty());
        let page: OrderPage = serde_json::from_str(
            r#"{"orders":[{"id":7,"status":"reissue_pending","certificate":{"id":9,"common_name":"a.example","dns_names":["a.example"]},"order_valid_till":"2029-01-01","product":{"name_id":"ssl_plus"}}],"page":{"total":1,"limit":1000,"offset":0}}"#,
        )
        .unwrap();
        assert_eq!(page.orders[0].certificate.id, 9);
        assert_eq!(page.orders[0].status, OrderStatus::ReissuePending);
        assert_eq!(page.page.total, 1);
    }
}
