//! Client-side rate limiting for one API key.
//!
//! CertCentral counts requests per API key in rolling windows (100 per 5 s and 1000
//! per 3 min) and answers 429 beyond them. Every request of the key, from however
//! many concurrent reconciles, first takes a slot here. A slot is a reserved send
//! time: the earliest instant at which every window still has room. Reserving
//! (instead of "check, sleep, check again") keeps waiters in arrival order and
//! never lets a burst of waiters wake at once and overshoot.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// One call's place in the windows: when it may be sent, and when it was answered.
#[derive(Debug)]
struct Slot {
    at: Instant,
    done: tokio::sync::watch::Sender<Option<Instant>>,
}

impl Slot {
    fn new(at: Instant) -> Arc<Self> {
        Arc::new(Slot {
            at,
            done: tokio::sync::watch::channel(None).0,
        })
    }

    /// When the call was answered (or given up), once it was.
    async fn answered(&self) -> Instant {
        let mut rx = self.done.subscribe();
        let value = rx.wait_for(Option::is_some).await.map(|v| *v);
        // The sender lives as long as the slot: this cannot fail.
        value.ok().flatten().unwrap_or_else(Instant::now)
    }
}

/// Held for the duration of one call. DigiCert counts a call when it arrives, which
/// is some time after it was sent and no later than its answer: the slot a call
/// takes is free again only a window after the call it replaces was answered, so
/// however slow the network, no window at DigiCert ever holds more than its limit.
#[derive(Debug)]
pub struct Permit {
    slot: Option<Arc<Slot>>,
    /// How long the caller waited for it.
    pub waited: Duration,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.done.send_replace(Some(Instant::now()));
        }
    }
}

/// An earlier call, and how long after its answer a new one may follow it.
type Blocker = (Arc<Slot>, Duration);

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
    pub async fn acquire(&self) -> Permit {
        let now = Instant::now();
        let Some((slot, blockers)) = self.reserve(now) else {
            return Permit {
                slot: None,
                waited: Duration::ZERO,
            };
        };
        // Taken from here on: if the caller gives up while waiting, dropping the
        // permit releases the slot, and nobody waits for an answer that never comes.
        let mut permit = Permit {
            slot: Some(slot.clone()),
            waited: Duration::ZERO,
        };
        tokio::time::sleep_until(slot.at).await;
        // The calls this one must follow by a window: usually answered long ago; when
        // the network is slow, wait for their answers.
        for (blocker, span) in blockers {
            let answered = blocker.answered().await;
            tokio::time::sleep_until(answered + span).await;
        }
        permit.waited = Instant::now().saturating_duration_since(now);
        permit
    }

    /// The earliest slot not before `now` at which every window has room by send
    /// times, recorded as taken, with the earlier calls it must follow by a window.
    fn reserve(&self, now: Instant) -> Option<(Arc<Slot>, Vec<Blocker>)> {
        if self.windows.is_empty() {
            return None;
        }
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        // Send times stay in order: a new slot is never before the last one.
        let mut at = sent.back().map_or(now, |last| last.at.max(now));
        let mut blockers = Vec::new();
        for w in &self.windows {
            let span = w.window + self.slack;
            if sent.len() >= w.limit {
                // The limit-th most recent call must have left the window.
                let blocking = sent[sent.len() - w.limit].clone();
                at = at.max(blocking.at + span);
                blockers.push((blocking, span));
            }
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
}
