//! Client-side rate limiting for one API key.
//!
//! CertCentral counts requests per API key in rolling windows (100 per 5 s and 1000
//! per 3 min) and answers 429 beyond them. Every request of the key, from however
//! many concurrent reconciles, first takes a slot here. A slot is a reserved send
//! time: the earliest instant at which every window still has room. Reserving
//! (instead of "check, sleep, check again") never lets a burst of waiters wake at once
//! and overshoot. A slot is held until its call is answered: DigiCert counts a call
//! when it arrives, which can be as late as its answer, so the slot `limit` places
//! later in a window may be used only a window after that answer.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// At most `limit` requests in any `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub limit: usize,
    pub window: Duration,
}

impl Window {
    pub const fn new(limit: usize, window: Duration) -> Self {
        Window { limit, window }
    }

    /// The longest of the windows (zero for none): how far back any of them looks.
    pub fn longest(windows: &[Window]) -> Duration {
        windows.iter().map(|w| w.window).max().unwrap_or_default()
    }
}

/// CertCentral's documented limits per API key.
pub const CERTCENTRAL_LIMITS: [Window; 2] = [
    Window::new(100, Duration::from_secs(5)),
    Window::new(1000, Duration::from_secs(180)),
];

/// Extra spacing added to every window. A request reaches DigiCert a little after it
/// leaves, and not always equally late; without slack two requests exactly one
/// window apart at the client can land inside one window at the server.
pub const DEFAULT_SLACK: Duration = Duration::from_millis(250);

#[derive(Debug)]
pub struct RateLimiter {
    windows: Vec<Window>,
    slack: Duration,
    // Send slots, oldest first, including reservations in the future.
    sent: Mutex<VecDeque<Arc<Slot>>>,
}

/// For each window (by index), the earlier slot a call must follow by that window,
/// if the window is already full.
type Blockers = Vec<Option<Arc<Slot>>>;

/// One call's place in the windows: when it may be sent, and what became of it.
#[derive(Debug)]
struct Slot {
    at: Instant,
    state: Mutex<SlotState>,
    changed: Notify,
}

#[derive(Debug)]
enum SlotState {
    /// Waiting for its send time, or in flight.
    Open,
    /// The call was answered (or failed) at this instant.
    Answered(Instant),
    /// The caller gave up before sending. The slot never carried a call, so whoever
    /// follows it in a window really follows its blockers in that window.
    Abandoned { at: Instant, blockers: Blockers },
}

impl Slot {
    fn new(at: Instant) -> Arc<Self> {
        Arc::new(Slot {
            at,
            state: Mutex::new(SlotState::Open),
            changed: Notify::new(),
        })
    }

    fn answered_before(&self, instant: Instant) -> bool {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        matches!(&*state, SlotState::Answered(t) if *t < instant)
    }

    fn close(&self, state: SlotState) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = state;
        self.changed.notify_waiters();
    }

    /// The instant a call following this slot in `window` must count its window
    /// from: the answer of the last call of this chain that was actually sent, or
    /// the abandonment that ends a chain with none.
    async fn answered(self: &Arc<Self>, window: usize) -> Instant {
        enum Step {
            Done(Instant),
            Follow(Arc<Slot>),
            Wait,
        }
        let mut slot = self.clone();
        loop {
            let current = slot.clone();
            let changed = current.changed.notified();
            tokio::pin!(changed);
            // Registered before looking, so a close in between is not missed.
            changed.as_mut().enable();
            let step = match &*current.state.lock().unwrap_or_else(|e| e.into_inner()) {
                SlotState::Open => Step::Wait,
                SlotState::Answered(t) => Step::Done(*t),
                SlotState::Abandoned { at, blockers } => match &blockers[window] {
                    Some(earlier) => Step::Follow(earlier.clone()),
                    None => Step::Done(*at),
                },
            };
            match step {
                Step::Done(t) => return t,
                Step::Follow(earlier) => slot = earlier,
                Step::Wait => changed.await,
            }
        }
    }
}

/// Held for the duration of one call: drop it when the answer (or the failure) is in.
#[derive(Debug)]
pub struct Permit {
    slot: Option<Arc<Slot>>,
    // Until the permit is granted: what it waits for, handed on if it is abandoned.
    blockers: Option<Blockers>,
    /// How long the caller waited for it.
    pub waited: Duration,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let Some(slot) = self.slot.take() else {
            return;
        };
        let now = Instant::now();
        slot.close(match self.blockers.take() {
            None => SlotState::Answered(now),
            Some(blockers) => SlotState::Abandoned { at: now, blockers },
        });
    }
}

impl RateLimiter {
    pub fn new(windows: impl Into<Vec<Window>>, slack: Duration) -> Self {
        let windows: Vec<Window> = windows.into();
        RateLimiter {
            windows: windows.into_iter().filter(|w| w.limit > 0).collect(),
            slack,
            sent: Mutex::new(VecDeque::new()),
        }
    }

    /// CertCentral's documented limits.
    pub fn certcentral() -> Self {
        RateLimiter::new(CERTCENTRAL_LIMITS, DEFAULT_SLACK)
    }

    /// No limit at all.
    pub fn unlimited() -> Self {
        RateLimiter::new(Vec::new(), Duration::ZERO)
    }

    /// Waits for the next send slot; keep the permit until the call is answered.
    /// Never call it while holding a permit of the same limiter: the new slot may
    /// have to follow the held one.
    ///
    /// A call the client gave up on (timeout) counts as answered when it gave up;
    /// the slack covers a request still arriving after that.
    pub async fn acquire(&self) -> Permit {
        let now = Instant::now();
        let Some((slot, blockers)) = self.reserve(now) else {
            return Permit {
                slot: None,
                blockers: None,
                waited: Duration::ZERO,
            };
        };
        // Taken from here on: if the caller gives up while waiting, dropping the
        // permit abandons the slot, and nobody waits for an answer that never comes.
        let mut permit = Permit {
            slot: Some(slot.clone()),
            blockers: Some(blockers),
            waited: Duration::ZERO,
        };
        tokio::time::sleep_until(slot.at).await;
        // The calls this one must follow by a window: usually answered long ago; when
        // the network is slow, wait for their answers.
        for i in 0..self.windows.len() {
            let blocker = permit.blockers.as_ref().and_then(|b| b[i].clone());
            if let Some(blocker) = blocker {
                let answered = blocker.answered(i).await;
                tokio::time::sleep_until(answered + self.span(i)).await;
            }
        }
        permit.blockers = None;
        permit.waited = Instant::now().saturating_duration_since(now);
        permit
    }

    fn span(&self, window: usize) -> Duration {
        self.windows[window].window + self.slack
    }

    /// The earliest slot not before `now` at which every window has room by send
    /// times, recorded as taken, with the earlier calls it must follow by a window.
    fn reserve(&self, now: Instant) -> Option<(Arc<Slot>, Blockers)> {
        if self.windows.is_empty() {
            return None;
        }
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        // Calls answered longer than every window ago constrain nothing: an idle key
        // keeps no slots.
        if let Some(horizon) = now.checked_sub(Window::longest(&self.windows) + self.slack) {
            while sent.front().is_some_and(|f| f.answered_before(horizon)) {
                sent.pop_front();
            }
        }
        // Send times stay in order: a new slot is never before the last one.
        let mut at = sent.back().map_or(now, |last| last.at.max(now));
        let mut blockers = Vec::with_capacity(self.windows.len());
        for (i, w) in self.windows.iter().enumerate() {
            let blocking = (sent.len() >= w.limit).then(|| sent[sent.len() - w.limit].clone());
            if let Some(b) = &blocking {
                // The limit-th most recent call must have left the window.
                at = at.max(b.at + self.span(i));
            }
            blockers.push(blocking);
        }
        let slot = Slot::new(at);
        sent.push_back(slot.clone());
        // Bounded memory: no window looks further back than its limit.
        let keep = self.windows.iter().map(|w| w.limit).max().unwrap_or(0);
        while sent.len() > keep {
            sent.pop_front();
        }
        Some((slot, blockers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The send time `reserve` gives.
    fn at(limiter: &RateLimiter, now: Instant) -> Instant {
        limiter.reserve(now).expect("a limited limiter").0.at
    }

    fn count_in_any_window(times: &[Instant], window: Duration) -> usize {
        times
            .iter()
            .map(|&start| {
                times
                    .iter()
                    .filter(|&&t| t >= start && t < start + window)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn slots_respect_every_window() {
        let limiter = RateLimiter::new(
            [
                Window::new(10, Duration::from_secs(1)),
                Window::new(25, Duration::from_secs(10)),
            ],
            Duration::ZERO,
        );
        let start = Instant::now();
        let slots: Vec<Instant> = (0..60).map(|_| at(&limiter, start)).collect();
        assert_eq!(count_in_any_window(&slots, Duration::from_secs(1)), 10);
        assert_eq!(count_in_any_window(&slots, Duration::from_secs(10)), 25);
        // First burst immediately, the second after 1 s, the 26th after 10 s.
        assert_eq!(slots[9], start);
        assert_eq!(slots[10], start + Duration::from_secs(1));
        assert_eq!(slots[25], start + Duration::from_secs(10));
        assert!(slots.windows(2).all(|p| p[0] <= p[1]));
    }

    #[test]
    fn slack_widens_each_window() {
        let limiter = RateLimiter::new(
            [Window::new(2, Duration::from_secs(5))],
            Duration::from_millis(250),
        );
        let start = Instant::now();
        let slots: Vec<Instant> = (0..3).map(|_| at(&limiter, start)).collect();
        assert_eq!(slots[2], start + Duration::from_millis(5250));
    }

    #[test]
    fn idle_time_frees_the_window() {
        let limiter = RateLimiter::new([Window::new(2, Duration::from_secs(1))], Duration::ZERO);
        let start = Instant::now();
        at(&limiter, start);
        at(&limiter, start);
        let later = start + Duration::from_secs(3);
        assert_eq!(at(&limiter, later), later);
        assert_eq!(at(&limiter, later), later);
        assert_eq!(at(&limiter, later), later + Duration::from_secs(1));
    }

    #[test]
    fn unlimited_never_waits() {
        let limiter = RateLimiter::unlimited();
        let now = Instant::now();
        for _ in 0..10_000 {
            assert!(limiter.reserve(now).is_none());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_waiters_are_paced() {
        let limiter = std::sync::Arc::new(RateLimiter::new(
            [Window::new(5, Duration::from_secs(5))],
            Duration::ZERO,
        ));
        let start = Instant::now();
        let tasks: Vec<_> = (0..12)
            .map(|_| {
                let l = limiter.clone();
                tokio::spawn(async move {
                    let _permit = l.acquire().await;
                    Instant::now()
                })
            })
            .collect();
        let mut done = Vec::new();
        for t in tasks {
            done.push(t.await.unwrap());
        }
        assert_eq!(count_in_any_window(&done, Duration::from_secs(5)), 5);
        let last = done.into_iter().max().unwrap();
        assert_eq!(last - start, Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_frees_a_window_after_the_answer_not_the_send() {
        let limiter = std::sync::Arc::new(RateLimiter::new(
            [Window::new(2, Duration::from_secs(5))],
            Duration::ZERO,
        ));
        let start = Instant::now();
        // Two calls whose answers take 3 s: DigiCert may have counted them as late as
        // that, so the third call waits until 3 s + 5 s, not 5 s.
        let slow: Vec<_> = (0..2)
            .map(|_| {
                let l = limiter.clone();
                tokio::spawn(async move {
                    let permit = l.acquire().await;
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    drop(permit);
                })
            })
            .collect();
        tokio::task::yield_now().await;
        let third = limiter.acquire().await;
        assert_eq!(Instant::now() - start, Duration::from_secs(8));
        assert_eq!(third.waited, Duration::from_secs(8));
        for t in slow {
            t.await.unwrap();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_that_gives_up_waiting_does_not_block_the_next() {
        let limiter = std::sync::Arc::new(RateLimiter::new(
            [Window::new(1, Duration::from_secs(5))],
            Duration::ZERO,
        ));
        let start = Instant::now();
        drop(limiter.acquire().await);
        let l = limiter.clone();
        let gave_up = tokio::spawn(async move { l.acquire().await });
        tokio::time::sleep(Duration::from_secs(1)).await;
        gave_up.abort();
        // Its reserved slot (5 s) still counts, and giving up counts as its answer:
        // the next call goes at 5 s + 5 s instead of waiting forever.
        let next = tokio::time::timeout(Duration::from_secs(60), limiter.acquire()).await;
        assert!(next.is_ok(), "the next caller is not blocked forever");
        assert_eq!(Instant::now() - start, Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn each_call_follows_the_answer_of_the_call_a_window_before_it() {
        let limiter = std::sync::Arc::new(RateLimiter::new(
            [Window::new(2, Duration::from_secs(5))],
            Duration::ZERO,
        ));
        let start = Instant::now();
        // Answered after 1 s and after 7 s: the third call follows the first (1 + 5),
        // the fourth the second (7 + 5); neither waits for every call in flight.
        for answer_after in [1, 7] {
            let permit = limiter.acquire().await;
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(answer_after)).await;
                drop(permit);
            });
        }
        let third = limiter.acquire().await;
        assert_eq!(Instant::now() - start, Duration::from_secs(6));
        drop(third);
        let _fourth = limiter.acquire().await;
        assert_eq!(Instant::now() - start, Duration::from_secs(12));
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_slot_hands_on_the_call_it_was_waiting_for() {
        let limiter = std::sync::Arc::new(RateLimiter::new(
            [Window::new(1, Duration::from_secs(5))],
            Duration::ZERO,
        ));
        let start = Instant::now();
        // A call in flight for 20 s; the next caller gives up after 6 s, before its
        // turn. The one after that never sent anything to follow but the first call,
        // which DigiCert may count as late as 20 s: it goes at 25 s, not 10 s.
        let first = limiter.acquire().await;
        let l = limiter.clone();
        let gave_up = tokio::spawn(async move { l.acquire().await });
        tokio::time::sleep(Duration::from_secs(6)).await;
        gave_up.abort();
        assert!(gave_up.await.unwrap_err().is_cancelled());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(14)).await;
            drop(first);
        });
        let _next = limiter.acquire().await;
        assert_eq!(Instant::now() - start, Duration::from_secs(25));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_key_keeps_no_slots() {
        let limiter = RateLimiter::new(
            [
                Window::new(3, Duration::from_secs(1)),
                Window::new(5, Duration::from_secs(10)),
            ],
            Duration::ZERO,
        );
        for _ in 0..5 {
            drop(limiter.acquire().await);
        }
        assert_eq!(limiter.sent.lock().unwrap().len(), 5);
        // Within the longest window the old calls still count.
        tokio::time::sleep(Duration::from_secs(8)).await;
        drop(limiter.acquire().await);
        assert_eq!(limiter.sent.lock().unwrap().len(), 5);
        // Past it, only the newest call is kept.
        tokio::time::sleep(Duration::from_secs(30)).await;
        let _permit = limiter.acquire().await;
        assert_eq!(limiter.sent.lock().unwrap().len(), 1);
    }
}
