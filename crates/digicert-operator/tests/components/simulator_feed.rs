//! The account-wide change feed, driven over HTTPS through the real CertCentral client
//! against the simulator in process: status changes by seconds, minutes and a
//! Mountain-time range (and the 7-day limit), what shows up there (reissues issued at
//! once and later, revocation, cancels), list orders with paging and filters, the
//! chain in an immediate reissue's answer, webhooks to a real local receiver (with the
//! key, off, cleared, dropped, refused), and counting, limits and faults of the new
//! operations.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use certcentral_sim::faults::{FaultAction, FaultSpec, Phase};
use certcentral_sim::webhooks::{WebhookConfig, WebhookDeliveries};
use certcentral_sim::{self, FeedSettings, OrderSeed, RateLimitSpec};
use digicert_operator::certcentral::{
    ChangeWindow, DownloadFormat, ListOrdersQuery, Operation, OrderStatus, ReissueStatus,
    RevokeOrderRequest, StatusChange, mountain_time,
};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::sim::{Sim, start};
use crate::support::{KEY, example_reissue};

const WEBHOOK_KEY: &str = "webhook-key-0123456789";
const SOON: Duration = Duration::from_secs(15);

/// An issued order under `example.com`, with `extra` seed fields.
fn seed(id: u64, extra: Value) -> OrderSeed {
    crate::sim::seed(id, &["example.com", "www.example.com"], extra)
}

impl Sim {
    /// Moves the simulator's clock on, so that what happened so far lies that far back.
    fn later(&self, by: time::Duration) {
        self.running.simulator().advance_clock(by);
    }

    async fn changes(&self, window: ChangeWindow) -> Vec<StatusChange> {
        self.c.status_changes(&window).await.unwrap().orders
    }

    async fn changed_ids(&self, window: ChangeWindow) -> Vec<u64> {
        let changes = self.changes(window).await;
        changes.iter().map(|c| c.order_id).collect()
    }

    async fn revoke(&self, order: u64) {
        let req = RevokeOrderRequest {
            skip_approval: Some(true),
            ..RevokeOrderRequest::default()
        };
        self.c.revoke_order(order, &req).await.unwrap();
    }

    /// A reissue with a fresh key; `skip_approval` as given.
    async fn reissue_example(
        &self,
        order: u64,
        skip: bool,
    ) -> digicert_operator::certcentral::ReissueResponse {
        let (_, mut req) = example_reissue();
        req.skip_approval = Some(skip);
        self.c.reissue(order, &req).await.unwrap()
    }

    /// A raw status-changes call (a query the client would not write): status and body.
    async fn raw(&self, path_and_query: &str) -> (u16, Value) {
        let certs =
            reqwest::Certificate::from_pem_bundle(self.running.ca_pem().as_bytes()).unwrap();
        let http = reqwest::Client::builder()
            .tls_certs_only(certs)
            .build()
            .unwrap();
        let url = format!("{}/{path_and_query}", self.running.base_url());
        let r = http
            .get(url)
            .header("X-DC-DEVKEY", KEY)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn status_changes_by_seconds_minutes_and_mountain_time_range() {
    let sim = start(
        vec![
            seed(1001, json!({})),
            seed(1002, json!({})),
            seed(1003, json!({})),
        ],
        |_| {},
    )
    .await;
    // Seeded orders are new: they show while the window reaches back to their seeding.
    assert_eq!(
        sim.changed_ids(ChangeWindow::Minutes(5)).await,
        vec![1001, 1002, 1003]
    );
    sim.later(time::Duration::hours(2));
    assert!(sim.changed_ids(ChangeWindow::Minutes(5)).await.is_empty());
    assert_eq!(sim.changed_ids(ChangeWindow::Minutes(125)).await.len(), 3);

    sim.revoke(1002).await;
    let changes = sim.changes(ChangeWindow::Seconds(60)).await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].order_id, 1002);
    assert_eq!(changes[0].status, OrderStatus::Revoked);
    assert!(changes[0].certificate_id.is_some());
    assert_eq!(sim.changed_ids(ChangeWindow::Minutes(1)).await, vec![1002]);

    // A range of UTC instants: the client writes it in Mountain time, as DigiCert
    // (and the simulator by default) reads it.
    let now = sim.running.simulator().now();
    let around_now = ChangeWindow::Range {
        from: now - time::Duration::minutes(2),
        to: now + time::Duration::minutes(1),
    };
    assert_eq!(sim.changed_ids(around_now).await, vec![1002]);
    let seeding = ChangeWindow::Range {
        from: now - time::Duration::hours(3),
        to: now - time::Duration::hours(1),
    };
    assert_eq!(sim.changed_ids(seeding).await, vec![1001, 1003]);

    // The same wall-clock times written as UTC miss: the range is read 7 hours later.
    let utc = |t: OffsetDateTime| {
        format!(
            "{}-{}-{}+{}:{}:{}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    };
    let (from, to) = (
        now - time::Duration::minutes(2),
        now + time::Duration::minutes(1),
    );
    let (status, body) = sim
        .raw(&format!(
            "order/certificate/status-changes?filters[status_last_updated]={}...{}",
            utc(from),
            utc(to)
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["orders"], json!([]));
    // Written in Mountain time with a space (%20) instead of `+`: found.
    let mt = |t: OffsetDateTime| {
        mountain_time(t)
            .format(&time::macros::format_description!(
                "[year]-[month]-[day]%20[hour]:[minute]:[second]"
            ))
            .unwrap()
    };
    let (status, body) = sim
        .raw(&format!(
            "order/certificate/status-changes?filters%5Bstatus_last_updated%5D={}...{}",
            mt(from),
            mt(to)
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["orders"][0]["order_id"], 1002);
    assert_eq!(body["orders"][0]["status"], "revoked");
}

#[tokio::test]
async fn status_changes_refuse_more_than_seven_days_back_and_no_window() {
    let sim = start(vec![seed(1001, json!({}))], |_| {}).await;
    assert!(
        sim.c
            .status_changes(&ChangeWindow::Minutes(7 * 24 * 60))
            .await
            .is_ok()
    );
    for window in [
        ChangeWindow::Minutes(7 * 24 * 60 + 1),
        ChangeWindow::Seconds(8 * 24 * 3600),
        ChangeWindow::Range {
            from: sim.running.simulator().now() - time::Duration::days(8),
            to: sim.running.simulator().now(),
        },
    ] {
        let err = sim.c.status_changes(&window).await.unwrap_err();
        assert_eq!(err.status(), Some(400), "{window:?}");
        assert!(err.has_code("invalid_input"), "{err}");
    }
    let (status, body) = sim.raw("order/certificate/status-changes").await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["code"], "invalid_input");
    // A simulator reading ranges in UTC, with a longer limit.
    let utc = start(vec![seed(1001, json!({}))], |c| {
        c.feed = FeedSettings {
            range_offset_hours: 0,
            longest_window: time::Duration::days(10),
            ..FeedSettings::default()
        }
    })
    .await;
    assert!(
        utc.c
            .status_changes(&ChangeWindow::Seconds(8 * 24 * 3600))
            .await
            .is_ok()
    );
    let now = utc.running.simulator().now();
    // The client's Mountain-time range now reads 7 hours early and misses the seeding.
    let window = ChangeWindow::Range {
        from: now - time::Duration::minutes(5),
        to: now + time::Duration::minutes(1),
    };
    assert!(utc.changed_ids(window).await.is_empty());
}

#[tokio::test]
async fn reissues_show_up_when_issued_at_once_and_when_issued_later() {
    let sim = start(
        vec![
            seed(1001, json!({})),
            seed(1002, json!({"issuance_delay_seconds": 3600})),
        ],
        |_| {},
    )
    .await;
    sim.later(time::Duration::hours(1));
    let first = sim.c.order_info(1002).await.unwrap().certificate.id;

    // At once: the order ends issued with the new certificate.
    let answer = sim.reissue_example(1001, true).await;
    let issued = answer.certificate_id.expect("issued at once");
    let changes = sim.changes(ChangeWindow::Seconds(60)).await;
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0].order_id, changes[0].certificate_id),
        (1001, Some(issued))
    );
    assert_eq!(changes[0].status, OrderStatus::Issued);

    // Later: reissue_pending with the old certificate, then issued with the new one.
    let answer = sim.reissue_example(1002, true).await;
    assert_eq!(answer.certificate_id, None);
    let pending = sim.changes(ChangeWindow::Seconds(60)).await;
    let p = pending.iter().find(|c| c.order_id == 1002).expect("listed");
    assert_eq!(
        (p.status.clone(), p.certificate_id),
        (OrderStatus::ReissuePending, Some(first))
    );
    sim.later(time::Duration::seconds(3601));
    let changes = sim.changes(ChangeWindow::Seconds(60)).await;
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].order_id, 1002);
    assert_eq!(changes[0].status, OrderStatus::Issued);
    let now_current = sim.c.order_info(1002).await.unwrap().certificate.id;
    assert_ne!(now_current, first);
    assert_eq!(changes[0].certificate_id, Some(now_current));
}

#[tokio::test]
async fn revocation_and_cancels_show_up() {
    let sim = start(
        vec![
            seed(1001, json!({})),
            seed(1002, json!({"approval_required": true})),
            seed(1003, json!({"status": "pending"})),
            seed(1004, json!({})),
        ],
        |_| {},
    )
    .await;
    sim.later(time::Duration::hours(1));
    sim.revoke(1001).await;
    // A reissue waiting for approval, canceled: back to issued, same certificate.
    let before = sim.c.order_info(1002).await.unwrap().certificate.id;
    sim.reissue_example(1002, false).await;
    sim.c.cancel(1002, "not needed").await.unwrap();
    sim.c.cancel(1003, "not needed").await.unwrap();
    let changes = sim.changes(ChangeWindow::Seconds(60)).await;
    let seen: Vec<(u64, OrderStatus, Option<u64>)> = changes
        .into_iter()
        .map(|c| (c.order_id, c.status, c.certificate_id))
        .collect();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!((seen[0].0, &seen[0].1), (1001, &OrderStatus::Revoked));
    assert_eq!(seen[1], (1002, OrderStatus::Issued, Some(before)));
    assert_eq!((seen[2].0, &seen[2].1), (1003, &OrderStatus::Canceled));
}

/// Orders listed in pages of 1000.
const MANY: u64 = 2500;

#[tokio::test]
async fn list_orders_pages_through_thousands_with_filters() {
    let sim = start(Vec::new(), |_| {}).await;
    let seeds: Vec<OrderSeed> = (1..=MANY).map(|i| seed(10_000 + i, json!({}))).collect();
    let began = Instant::now();
    assert_eq!(sim.admin.add_orders(&seeds).await.unwrap(), MANY);
    eprintln!("seeded {MANY} orders in {:?}", began.elapsed());
    sim.revoke(10_007).await;

    let began = Instant::now();
    let mut ids = Vec::new();
    let mut sizes = Vec::new();
    let mut offset = 0;
    loop {
        let page = sim
            .c
            .list_orders(&ListOrdersQuery {
                offset,
                ..ListOrdersQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(
            (page.page.total, page.page.limit, page.page.offset),
            (MANY, 1000, offset)
        );
        sizes.push(page.orders.len());
        ids.extend(page.orders.iter().map(|o| o.id));
        offset += page.orders.len() as u64;
        if offset >= page.page.total {
            break;
        }
    }
    eprintln!("listed {MANY} orders in {:?}", began.elapsed());
    assert_eq!(sizes, vec![1000, 1000, 500], "three pages");
    assert_eq!(ids, (10_001..=10_000 + MANY).collect::<Vec<_>>());

    let page = sim
        .c
        .list_orders(&ListOrdersQuery {
            ids: vec![12_500, 10_007, 10_002, 99],
            ..ListOrdersQuery::default()
        })
        .await
        .unwrap();
    let listed: Vec<(u64, OrderStatus)> = page
        .orders
        .iter()
        .map(|o| (o.id, o.status.clone()))
        .collect();
    assert_eq!(
        listed,
        vec![
            (10_002, OrderStatus::Issued),
            (10_007, OrderStatus::Revoked),
            (12_500, OrderStatus::Issued)
        ]
    );
    let o = &page.orders[0];
    assert_eq!(o.certificate.common_name.as_deref(), Some("example.com"));
    assert_eq!(
        o.certificate.dns_names,
        vec!["example.com", "www.example.com"]
    );
    assert!(o.certificate.id > 0 && o.certificate.valid_till.is_some());
    assert!(o.order_valid_till.is_some());
    assert_eq!(o.has_duplicates, Some(false));

    let revoked = sim
        .c
        .list_orders(&ListOrdersQuery {
            status: Some(OrderStatus::Revoked),
            ..ListOrdersQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(revoked.page.total, 1);
    assert_eq!(revoked.orders[0].id, 10_007);
    // A small page, and a limit over 1000 (sent raw: the client caps it itself).
    let small = sim
        .c
        .list_orders(&ListOrdersQuery {
            offset: 2490,
            limit: 20,
            ..ListOrdersQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(small.orders.len(), 10);
    let (status, body) = sim.raw("order/certificate?limit=5000").await;
    assert_eq!(status, 200);
    assert_eq!(body["page"]["limit"], 1000);
    assert_eq!(body["orders"].as_array().map(Vec::len), Some(1000));
    assert_eq!(body["orders"][0]["product"]["name_id"], "ssl_basic");
    assert_eq!(body["orders"][0]["certificate"]["signature_hash"], "sha256");
}

#[tokio::test]
async fn a_reissue_answer_carries_the_chain_only_when_set() {
    let plain = start(vec![seed(1001, json!({}))], |_| {}).await;
    let answer = plain.reissue_example(1001, true).await;
    assert!(answer.certificate_id.is_some());
    assert_eq!(answer.certificate_chain, None);

    let chained = start(
        vec![
            seed(1001, json!({})),
            seed(1002, json!({"approval_required": true})),
        ],
        |c| c.feed.reissue_answer_chain = true,
    )
    .await;
    let answer = chained.reissue_example(1001, true).await;
    let id = answer.certificate_id.expect("issued at once");
    let chain = answer.certificate_chain.expect("the chain");
    assert_eq!(chain.len(), 3, "leaf, intermediate, root");
    assert_eq!(chain[0].subject_common_name.as_deref(), Some("example.com"));
    assert!(
        chain[1]
            .subject_common_name
            .as_deref()
            .is_some_and(|n| n.contains("Issuing CA"))
    );
    assert!(chain[2].subject_common_name.is_some());
    let pem_all = chained
        .c
        .download_certificate(id, DownloadFormat::PemAll)
        .await
        .unwrap();
    let joined: String = chain
        .iter()
        .map(|c| c.pem.trim().to_string() + "\n")
        .collect();
    assert_eq!(joined.trim(), pem_all.trim());
    assert_eq!(chain[2].pem.trim(), chained.running.ca_pem().trim());
    // A reissue that waits for approval answers with its request only.
    let waiting = chained.reissue_example(1002, false).await;
    assert_eq!(
        (waiting.certificate_id, &waiting.certificate_chain),
        (None, &None)
    );
    assert!(waiting.request_id().is_some());
}

/// One delivery as received: the `X-WEBHOOK-KEY` header and the body.
type Delivery = (Option<String>, Value);

/// A local HTTP receiver of webhooks: what arrived.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Delivery>>>,
    refuse: bool,
}

impl Receiver {
    async fn start(refuse: bool) -> (Self, String) {
        let receiver = Receiver {
            refuse,
            ..Receiver::default()
        };
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::Json<Value>| {
                let state = state.clone();
                async move {
                    let key = headers
                        .get("x-webhook-key")
                        .and_then(|v| v.to_str().ok())
                        .map(String::from);
                    state.seen.lock().unwrap().push((key, body.0));
                    if state.refuse {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, url)
    }

    fn seen(&self) -> Vec<Delivery> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until `n` deliveries arrived.
    async fn wait_for(&self, n: usize) -> Vec<Delivery> {
        let deadline = Instant::now() + SOON;
        loop {
            let seen = self.seen();
            if seen.len() >= n {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} webhooks arrived: {seen:?}",
                seen.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Waits until the simulator counts `want` deliveries.
async fn wait_deliveries(
    sim: &Sim,
    want: impl Fn(&WebhookDeliveries) -> bool,
) -> WebhookDeliveries {
    let deadline = Instant::now() + SOON;
    loop {
        let d = sim.running.simulator().webhook_deliveries();
        if want(&d) {
            return d;
        }
        assert!(Instant::now() < deadline, "deliveries: {d:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn event(kind: &str, order: u64, certificate: u64) -> Value {
    json!({"event": kind, "data": {"order_id": order, "certificate_id": certificate}})
}

#[tokio::test]
async fn webhooks_reach_a_receiver_with_the_key() {
    let (receiver, url) = Receiver::start(false).await;
    let sim = start(
        vec![
            seed(1001, json!({})),
            seed(1002, json!({"issuance_delay_seconds": 600})),
            seed(1003, json!({"approval_required": true})),
        ],
        |_| {},
    )
    .await;
    // Off by default: nothing sent for a revocation.
    assert_eq!(sim.admin.webhook().await.unwrap().config, None);
    let first = sim.c.order_info(1001).await.unwrap().certificate.id;
    let config = WebhookConfig {
        key: Some(WEBHOOK_KEY.into()),
        ..WebhookConfig::new(url)
    };
    sim.admin.set_webhook(Some(&config)).await.unwrap();

    // An immediate reissue, a delayed one issued by the clock, a rejected one, then a
    // revocation.
    let issued = sim
        .reissue_example(1001, true)
        .await
        .certificate_id
        .unwrap();
    let later = sim.reissue_example(1002, true).await;
    assert_eq!(later.certificate_id, None);
    sim.later(time::Duration::seconds(601));
    let delayed = sim.c.order_info(1002).await.unwrap().certificate.id;
    assert!(
        sim.reissue_example(1003, false)
            .await
            .request_id()
            .is_some()
    );
    let reissue_cert = sim
        .c
        .list_reissues(1003)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.status == ReissueStatus::Pending)
        .expect("the waiting reissue")
        .id;
    sim.c.cancel(1003, "not needed").await.unwrap();
    sim.revoke(1001).await;

    // Five: the two issued, the rejected reissue, and both certificates of 1001
    // revoked with the order. Counted once answered, so all have arrived then.
    let d = wait_deliveries(&sim, |d| d.sent == 5).await;
    let seen = receiver.seen();
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert!(
        seen.iter()
            .all(|(key, _)| key.as_deref() == Some(WEBHOOK_KEY))
    );
    let bodies: Vec<Value> = seen.into_iter().map(|(_, b)| b).collect();
    for want in [
        event("certificate_issued", 1001, issued),
        event("certificate_issued", 1002, delayed),
        event("order_rejected", 1003, reissue_cert),
        event("certificate_revoked", 1001, issued),
        event("certificate_revoked", 1001, first),
    ] {
        assert!(bodies.contains(&want), "{want} not in {bodies:?}");
    }
    assert_eq!((d.failed, d.dropped), (0, 0));
    assert_eq!(sim.admin.webhook().await.unwrap().deliveries, d);

    // Cleared: no more deliveries.
    sim.admin.set_webhook(None).await.unwrap();
    sim.revoke(1002).await;
    assert_eq!(sim.running.simulator().webhook_deliveries(), d);
    assert_eq!(receiver.seen().len(), bodies.len());
}

#[tokio::test]
async fn dropped_or_refused_webhooks_leave_polling_to_converge() {
    let (receiver, url) = Receiver::start(false).await;
    let sim = start(vec![seed(1001, json!({})), seed(1002, json!({}))], |c| {
        c.webhook = Some(WebhookConfig::new(url));
    })
    .await;
    sim.later(time::Duration::hours(1));
    sim.admin.drop_webhooks(true).await.unwrap();
    sim.revoke(1001).await;
    // Counted when the change happened, before the answer.
    let d = sim.running.simulator().webhook_deliveries();
    assert_eq!((d.sent, d.failed, d.dropped), (0, 0, 1));
    assert!(sim.admin.webhook().await.unwrap().drop);
    // Polling sees it all the same.
    assert_eq!(sim.changed_ids(ChangeWindow::Seconds(60)).await, vec![1001]);
    assert!(receiver.seen().is_empty());

    // A receiver that refuses: counted as failed, the API call unaffected.
    let (refusing, url) = Receiver::start(true).await;
    sim.admin.drop_webhooks(false).await.unwrap();
    sim.running
        .simulator()
        .set_webhook(Some(WebhookConfig::new(url)))
        .unwrap();
    sim.revoke(1002).await;
    refusing.wait_for(1).await;
    wait_deliveries(&sim, |d| d.failed == 1).await;
    assert_eq!(
        sim.changed_ids(ChangeWindow::Seconds(60)).await,
        vec![1001, 1002]
    );
    // A CA file that is not there is refused when set.
    let bad = WebhookConfig {
        ca_file: Some("/nonexistent/ca.pem".into()),
        ..WebhookConfig::new("https://127.0.0.1:1/hook")
    };
    assert_eq!(
        sim.admin.set_webhook(Some(&bad)).await.unwrap_err().status,
        Some(400)
    );
}

#[tokio::test]
async fn feed_calls_are_counted_limited_and_faulted() {
    let sim = start(vec![seed(1001, json!({}))], |_| {}).await;
    sim.c
        .status_changes(&ChangeWindow::Seconds(60))
        .await
        .unwrap();
    sim.c
        .status_changes(&ChangeWindow::Minutes(1))
        .await
        .unwrap();
    sim.c
        .list_orders(&ListOrdersQuery::default())
        .await
        .unwrap();
    let calls = sim.admin.calls().await.unwrap();
    assert_eq!(calls.total(Operation::StatusChanges), 2);
    assert_eq!(calls.total(Operation::ListOrders), 1);
    assert_eq!(calls.outcome(Operation::ListOrders, "200"), 1);
    assert_eq!(
        calls.total(Operation::OrderInfo),
        0,
        "routed apart from order info"
    );

    // A fault on the first list: the client retries it.
    let fault = FaultSpec {
        operation: Some(Operation::ListOrders),
        action: FaultAction::Status {
            status: 503,
            code: None,
        },
        phase: Phase::default(),
        nth: Some(1),
        fraction: None,
        times: None,
    };
    sim.admin.add_fault(&fault).await.unwrap();
    sim.c
        .list_orders(&ListOrdersQuery::default())
        .await
        .unwrap();
    let calls = sim.admin.calls().await.unwrap();
    assert_eq!(calls.outcome(Operation::ListOrders, "503"), 1);
    assert_eq!(calls.outcome(Operation::ListOrders, "200"), 2);
    sim.admin.clear_faults().await.unwrap();

    // The per-key limits count feed calls like any other.
    sim.admin
        .set_rate_limits(&[RateLimitSpec {
            limit: 1,
            window_seconds: 600,
        }])
        .await
        .unwrap();
    sim.c
        .status_changes(&ChangeWindow::Seconds(60))
        .await
        .unwrap();
    let err = sim
        .c
        .status_changes(&ChangeWindow::Seconds(60))
        .await
        .unwrap_err();
    assert!(err.is_rate_limited(), "{err}");
    let calls = sim.admin.calls().await.unwrap();
    assert!(calls.outcome(Operation::StatusChanges, "429") >= 1);
}
