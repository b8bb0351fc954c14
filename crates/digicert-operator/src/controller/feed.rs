//! The change feed: one reader per CertCentral account key that follows DigiCert's
//! account-wide status changes and wakes exactly the DigicertOrders whose orders
//! changed. CertCentral's rate limits are per key, so a key with thousands of orders
//! costs one call a minute, not one per order.
//!
//! A reconcile says which order it follows with which key (`follow`); the reader
//! starts with that key's first follower, reads every followed order once (list
//! orders, 1,000 a call), then status changes each interval, and every few hours all
//! orders again. What it read is kept as a view per order; an idle reconcile compares
//! it with its status (`decide::feed::idle_look`) and calls DigiCert only for news.
//! A webhook (`poke`) only marks an order's view stale: the order looks for itself.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, broadcast, watch};

use super::decide::feed::{self as rules, OrderView, Read, RestOfRead, Standing};
use super::waits::Wake;
use crate::certcentral::{self, ChangeWindow, ListOrdersQuery, OrderPage};
use crate::metrics::Metrics;

/// A feed's identity: the endpoint and the key (its SHA-256, never the key).
pub type FeedId = String;

pub fn feed_id(endpoint: &str, client: &certcentral::Client) -> FeedId {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        client.api_key().expose().as_bytes(),
    );
    format!("{endpoint}#{}", pki::hex(digest.as_ref()))
}

/// Who follows an order at DigiCert, (namespace, name): a DigicertOrder, or a
/// cert-manager CertificateRequest whose reissue DigiCert has not issued yet.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Follower {
    Order(Wake),
    Request(Wake),
}

/// The followers of one kind (`requests`: CertificateRequests, else DigicertOrders)
/// to wake in `scope` (one namespace, or all).
pub fn woken(
    rx: broadcast::Receiver<Follower>,
    requests: bool,
    scope: Option<String>,
) -> impl futures::Stream<Item = Wake> + Send + 'static {
    futures::stream::unfold((rx, scope), move |(mut rx, scope)| async move {
        loop {
            let wake = match rx.recv().await {
                Ok(Follower::Request(w)) if requests => w,
                Ok(Follower::Order(w)) if !requests => w,
                // Another kind's, or missed in a burst (their own rechecks still come).
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            if scope.as_ref().is_none_or(|s| *s == wake.0) {
                return Some((wake, (rx, scope)));
            }
        }
    })
}

/// What the feed says of an order as its reconcile starts.
#[derive(Clone, Debug)]
pub struct Followed {
    /// The feed of the order's key (`None`: no feed).
    pub id: Option<FeedId>,
    pub standing: Standing,
    /// What the feed last read of the order.
    pub view: Option<OrderView>,
}

impl Default for Followed {
    fn default() -> Self {
        Followed {
            id: None,
            standing: Standing::Off,
            view: None,
        }
    }
}

/// Every feed of the operator, and which order follows which.
pub struct Feeds {
    /// `None`: the feed is off, every order is checked on its own.
    interval: Option<Duration>,
    feeds: Mutex<HashMap<FeedId, Arc<Feed>>>,
    /// (namespace, name) → the feed and CertCentral order it follows.
    following: Mutex<HashMap<Follower, (FeedId, u64)>>,
    wakes: broadcast::Sender<Follower>,
    stop: OnceLock<watch::Receiver<bool>>,
    metrics: Arc<Metrics>,
}

struct Feed {
    id: FeedId,
    /// The latest client of the key (its endpoint's trust can change).
    client: Mutex<certcentral::Client>,
    state: Mutex<State>,
    /// A follower waits for its first view: read it soon, not at the next interval.
    soon: Notify,
}

struct State {
    followers: HashMap<u64, HashSet<Follower>>,
    views: HashMap<u64, OrderView>,
    started: Instant,
    last_ok: Option<Instant>,
    /// When the last successful reading began: the next window reaches back to it.
    covered: Option<Instant>,
    last_full: Option<Instant>,
    failures: u32,
    running: bool,
    /// The standing last seen by the reader: a feed that starts failing wakes its
    /// orders, which then check DigiCert themselves.
    standing: Standing,
}

impl State {
    /// Followed orders the feed has no view of.
    fn unread(&self) -> Vec<u64> {
        self.followers
            .keys()
            .filter(|id| !self.views.contains_key(id))
            .copied()
            .collect()
    }

    /// `who` no longer follows `order_id`; an order nobody follows is forgotten.
    fn unfollow(&mut self, order_id: u64, who: &Follower) {
        if let Some(set) = self.followers.get_mut(&order_id) {
            set.remove(who);
            if set.is_empty() {
                self.followers.remove(&order_id);
                self.views.remove(&order_id);
            }
        }
    }
}

impl Feeds {
    pub fn new(interval: Option<Duration>, metrics: Arc<Metrics>) -> Self {
        Feeds {
            interval,
            feeds: Mutex::default(),
            following: Mutex::default(),
            wakes: broadcast::channel(4096).0,
            stop: OnceLock::new(),
            metrics,
        }
    }

    /// The orders to wake, for a controller.
    pub fn subscribe(&self) -> broadcast::Receiver<Follower> {
        self.wakes.subscribe()
    }

    /// Readers start from here on (with the controllers) and end when `stop` turns.
    pub fn start(&self, stop: watch::Receiver<bool>) {
        let _ = self.stop.set(stop);
    }

    /// Records that `order` follows CertCentral order `order_id` with `client`'s key,
    /// starting the key's reader if it has none. Returns the feed, its standing and
    /// its view of the order.
    pub fn follow(
        self: &Arc<Self>,
        order: Follower,
        endpoint: &str,
        client: &certcentral::Client,
        order_id: u64,
    ) -> Followed {
        if self.interval.is_none() {
            return Followed::default();
        }
        let id = feed_id(endpoint, client);
        self.unfollow_if_moved(&order, &id, order_id);
        let feed = self.feed(&id, client);
        let (standing, view, start) = {
            let mut state = lock(&feed.state);
            state.followers.entry(order_id).or_default().insert(order);
            let start = !state.running && self.stop.get().is_some_and(|s| !*s.borrow());
            state.running |= start;
            let view = state.views.get(&order_id).cloned();
            (self.standing_of(&state), view, start)
        };
        if view.is_none() {
            feed.soon.notify_one();
        }
        if start {
            // Its calls and logs name the feed (the key's hash digits), not an order.
            let span = tracing::info_span!(parent: None, "change_feed", feed = %short(&feed.id));
            tokio::spawn(tracing::Instrument::instrument(
                self.clone().read(feed),
                span,
            ));
        }
        Followed {
            id: Some(id),
            standing,
            view,
        }
    }

    /// Forgets an order (deleted, or no longer served).
    pub fn unfollow(&self, order: &Follower) {
        let Some((id, order_id)) = lock(&self.following).remove(order) else {
            return;
        };
        if let Some(feed) = lock(&self.feeds).get(&id) {
            lock(&feed.state).unfollow(order_id, order);
        }
    }

    /// What a reconcile read at DigiCert (order info): the feed's view follows it,
    /// and a stale view is fresh again.
    pub fn observed(&self, id: &FeedId, order_id: u64, view: OrderView) {
        let Some(feed) = lock(&self.feeds).get(id).cloned() else {
            return;
        };
        let mut state = lock(&feed.state);
        let merged = rules::merged(state.views.get(&order_id), view);
        state.views.insert(order_id, merged);
    }

    /// Somebody (a webhook) says order `order_id` changed: its followers look at
    /// DigiCert now. Nothing else of what was said is believed.
    pub fn poke(&self, order_id: u64) -> usize {
        let feeds: Vec<Arc<Feed>> = lock(&self.feeds).values().cloned().collect();
        let mut woken = 0;
        for feed in feeds {
            let followers = {
                let mut state = lock(&feed.state);
                let Some(followers) = state.followers.get(&order_id).cloned() else {
                    continue;
                };
                match state.views.get_mut(&order_id) {
                    Some(v) => v.stale = true,
                    // Not read yet: the feed reads it now, and wakes its followers.
                    None => feed.soon.notify_one(),
                }
                followers
            };
            woken += followers.len();
            self.wake(followers);
        }
        woken
    }

    fn unfollow_if_moved(&self, order: &Follower, id: &str, order_id: u64) {
        let before = lock(&self.following).insert(order.clone(), (id.to_string(), order_id));
        if let Some((old_id, old_order)) = before
            && (old_id != id || old_order != order_id)
            && let Some(feed) = lock(&self.feeds).get(&old_id)
        {
            lock(&feed.state).unfollow(old_order, order);
        }
    }

    fn feed(&self, id: &str, client: &certcentral::Client) -> Arc<Feed> {
        let mut feeds = lock(&self.feeds);
        let feed = feeds.entry(id.to_string()).or_insert_with(|| {
            Arc::new(Feed {
                id: id.to_string(),
                client: Mutex::new(client.clone()),
                state: Mutex::new(State {
                    followers: HashMap::new(),
                    views: HashMap::new(),
                    started: Instant::now(),
                    last_ok: None,
                    covered: None,
                    last_full: None,
                    failures: 0,
                    running: false,
                    standing: Standing::Syncing,
                }),
                soon: Notify::new(),
            })
        });
        *lock(&feed.client) = client.clone();
        feed.clone()
    }

    fn standing_of(&self, state: &State) -> Standing {
        rules::standing(
            self.interval,
            state.last_ok.map(|t| t.elapsed()),
            state.started.elapsed(),
        )
    }

    fn wake(&self, orders: impl IntoIterator<Item = Follower>) {
        for order in orders {
            self.metrics.feed_woken.inc();
            let _ = self.wakes.send(order);
        }
    }

    /// The reader of one key: a reading, then a wait, until stopped or nobody follows
    /// the key any more (its key replaced, its orders gone); a new follower starts
    /// it again.
    async fn read(self: Arc<Self>, feed: Arc<Feed>) {
        let Some(mut stop) = self.stop.get().cloned() else {
            return;
        };
        let interval = self.interval.unwrap_or(Duration::from_secs(60));
        tracing::info!(interval_s = interval.as_secs(), "change feed started");
        loop {
            {
                let mut state = lock(&feed.state);
                if state.followers.is_empty() {
                    state.running = false;
                    break;
                }
            }
            let wait = match self.reading(&feed).await {
                Ok(()) => interval,
                Err(e) => {
                    let failures = {
                        let mut state = lock(&feed.state);
                        state.failures = state.failures.saturating_add(1);
                        state.failures
                    };
                    let wait = rules::retry_after(interval, failures);
                    tracing::warn!(error = %e, retry_in_s = wait.as_secs(), "reading the change feed failed");
                    wait
                }
            };
            self.note_standing(&feed);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = feed.soon.notified() => {
                    // Followers without a view: read them after a breath, so that a
                    // burst of new followers is one reading.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                _ = async { let _ = stop.wait_for(|s| *s).await; } => break,
            }
        }
        lock(&feed.state).running = false;
        tracing::info!("change feed stopped");
    }

    /// A feed that started failing (or recovered) wakes its orders: they check
    /// DigiCert themselves while it fails.
    fn note_standing(&self, feed: &Feed) {
        let woken = {
            let mut state = lock(&feed.state);
            let now = self.standing_of(&state);
            let was = std::mem::replace(&mut state.standing, now);
            (was != now && now == Standing::Failing).then(|| {
                state
                    .followers
                    .values()
                    .flatten()
                    .cloned()
                    .collect::<Vec<_>>()
            })
        };
        if let Some(orders) = woken {
            tracing::warn!(
                orders = orders.len(),
                "the change feed fails; its orders check DigiCert themselves"
            );
            self.wake(orders);
        }
    }

    /// One reading: status changes, or every followed order; then the followed orders
    /// not read yet, by id.
    async fn reading(&self, feed: &Feed) -> Result<(), certcentral::Error> {
        let client = lock(&feed.client).clone();
        let began = Instant::now();
        let read = {
            let state = lock(&feed.state);
            rules::next_read(
                state.covered.map(|t| t.elapsed()),
                state.last_full.map(|t| t.elapsed()),
            )
        };
        match read {
            Read::Full => {
                self.full_reading(feed, &client).await?;
                lock(&feed.state).last_full = Some(began);
            }
            Read::Changes { seconds } => {
                let changes = client
                    .status_changes(&ChangeWindow::Seconds(seconds))
                    .await
                    .inspect_err(|_| self.metrics.feed_reading("changes", false))?;
                self.metrics.feed_reading("changes", true);
                let views = changes.orders.into_iter().map(|c| {
                    (
                        c.order_id,
                        OrderView {
                            status: c.status,
                            certificate_id: c.certificate_id,
                            order_valid_till: None,
                            stale: false,
                        },
                    )
                });
                self.take_in(feed, views);
                self.read_unseen(feed, &client).await?;
            }
        }
        let mut state = lock(&feed.state);
        state.covered = Some(began);
        state.last_ok = Some(Instant::now());
        state.failures = 0;
        let unread = state.unread().len();
        self.metrics
            .feed_orders(&short(&feed.id), state.followers.len(), unread);
        Ok(())
    }

    /// Every followed order: the first page of the account's orders, then the rest
    /// by pages or by id, whichever takes fewer calls.
    async fn full_reading(
        &self,
        feed: &Feed,
        client: &certcentral::Client,
    ) -> Result<(), certcentral::Error> {
        {
            let mut state = lock(&feed.state);
            let State {
                views, followers, ..
            } = &mut *state;
            views.retain(|id, _| followers.contains_key(id));
        }
        let first = self.list(client, ListOrdersQuery::default()).await?;
        let (total, read) = (first.page.total, first.orders.len() as u64);
        let mut seen: HashSet<u64> = first.orders.iter().map(|o| o.id).collect();
        self.take_in(feed, page_views(first));
        // Every followed order is read again, those with a view too: a full reading is
        // what corrects a view the status changes missed.
        let unseen = self.followed_not_in(feed, &seen);
        let first_reading = lock(&feed.state).last_full.is_none();
        match rules::rest_of_read(total, read, unseen, first_reading) {
            RestOfRead::Done => {}
            RestOfRead::Pages(offsets) => {
                for offset in offsets {
                    let page = self
                        .list(
                            client,
                            ListOrdersQuery {
                                offset,
                                ..ListOrdersQuery::default()
                            },
                        )
                        .await?;
                    seen.extend(page.orders.iter().map(|o| o.id));
                    self.take_in(feed, page_views(page));
                }
            }
            RestOfRead::Ids(chunks) => seen.extend(self.read_ids(feed, client, chunks).await?),
        }
        // Followed, and listed nowhere in the account.
        let missing = self.followed_not_in(feed, &seen);
        self.not_listed(feed, missing, true);
        Ok(())
    }

    /// Followed orders not in `seen`, whatever the feed knew of them.
    fn followed_not_in(&self, feed: &Feed, seen: &HashSet<u64>) -> Vec<u64> {
        let state = lock(&feed.state);
        state
            .followers
            .keys()
            .filter(|id| !seen.contains(id))
            .copied()
            .collect()
    }

    /// Followed orders the feed has no view of (they came after the last full
    /// reading), read by id.
    async fn read_unseen(
        &self,
        feed: &Feed,
        client: &certcentral::Client,
    ) -> Result<(), certcentral::Error> {
        let mut unseen = lock(&feed.state).unread();
        if unseen.is_empty() {
            return Ok(());
        }
        unseen.sort_unstable();
        let chunks = unseen
            .chunks(rules::IDS_PER_CALL)
            .map(<[u64]>::to_vec)
            .collect();
        let found = self.read_ids(feed, client, chunks).await?;
        self.not_listed(
            feed,
            unseen.into_iter().filter(|id| !found.contains(id)),
            false,
        );
        Ok(())
    }

    async fn read_ids(
        &self,
        feed: &Feed,
        client: &certcentral::Client,
        chunks: Vec<Vec<u64>>,
    ) -> Result<HashSet<u64>, certcentral::Error> {
        let mut found = HashSet::new();
        for ids in chunks {
            let page = self
                .list(
                    client,
                    ListOrdersQuery {
                        ids: ids.clone(),
                        ..ListOrdersQuery::default()
                    },
                )
                .await?;
            found.extend(page.orders.iter().map(|o| o.id));
            self.take_in(feed, page_views(page));
        }
        Ok(found)
    }

    /// Followed orders the account does not list: they get a stale view, so they are
    /// not asked for again at every reading, and their followers are woken to look at
    /// DigiCert themselves (order info says what is wrong: not found, another account).
    /// A full reading that lists them later gives them a true view. `replace`: also
    /// over a view they had (a full reading found them gone).
    fn not_listed(&self, feed: &Feed, ids: impl IntoIterator<Item = u64>, replace: bool) {
        let mut woken = Vec::new();
        {
            let mut state = lock(&feed.state);
            for id in ids {
                if state.views.get(&id).is_some_and(|v| v.stale || !replace) {
                    continue;
                }
                let absent = OrderView {
                    status: certcentral::OrderStatus::Other("not listed".into()),
                    certificate_id: None,
                    order_valid_till: None,
                    stale: true,
                };
                state.views.insert(id, absent);
                woken.extend(state.followers.get(&id).into_iter().flatten().cloned());
            }
        }
        if !woken.is_empty() {
            tracing::debug!(orders = woken.len(), "orders the account does not list");
        }
        self.wake(woken);
    }

    async fn list(
        &self,
        client: &certcentral::Client,
        query: ListOrdersQuery,
    ) -> Result<OrderPage, certcentral::Error> {
        let kind = if query.ids.is_empty() { "page" } else { "ids" };
        let page = client.list_orders(&query).await;
        self.metrics.feed_reading(kind, page.is_ok());
        page
    }

    /// Keeps what a reading said and wakes the followers of the orders it is news for.
    fn take_in(&self, feed: &Feed, views: impl Iterator<Item = (u64, OrderView)>) {
        let mut woken = Vec::new();
        {
            let mut state = lock(&feed.state);
            for (order_id, view) in views {
                let old = state.views.get(&order_id);
                let news = rules::is_news(old, &view);
                let merged = rules::merged(old, view);
                if news && let Some(followers) = state.followers.get(&order_id) {
                    woken.extend(followers.iter().cloned());
                }
                // Orders nobody follows yet are kept too: at a start, most orders
                // follow after the reading that covered them, and find their view
                // then. A full reading drops those nobody came for.
                state.views.insert(order_id, merged);
            }
        }
        if !woken.is_empty() {
            tracing::debug!(orders = woken.len(), "the change feed wakes orders");
        }
        self.wake(woken);
    }
}

/// What a page of list orders says of each order.
fn page_views(page: OrderPage) -> impl Iterator<Item = (u64, OrderView)> {
    page.orders.into_iter().map(|o| {
        (
            o.id,
            OrderView {
                status: o.status,
                certificate_id: (o.certificate.id != 0).then_some(o.certificate.id),
                order_valid_till: o.order_valid_till,
                stale: false,
            },
        )
    })
}

/// A feed's name for logs: the endpoint and the key's first hash digits.
fn short(id: &str) -> String {
    match id.rsplit_once('#') {
        Some((endpoint, key)) => format!("{endpoint}#{}", &key[..key.len().min(8)]),
        None => id.to_string(),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
