//! Client-side rate limiting for one API key.
//!
//! CertCentral counts requests per API key in rolling windows (100 per 5 s and 1000
//! per 3 min) and answers 429 beyond them. Every request of the key, from however
//! many concurrent reconciles, first takes a slot here. A slot is a reserved send
//! time: the earliest instant at which every window still has room. Reserving
//! (instead of "check, sleep, check again") keeps waiters in arrival order and
//! never lets a burst of waiters wake at once and overshoot.

use std::collections::VecDeque;
use std::sync::Mutex;
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
    // Send times, oldest first, including reservations in the future.
    sent: Mutex<VecDeque<Instant>>,
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

    /// Reserves the next send slot and returns when it has come; the returned
    /// duration is how long the caller waited.
    pub async fn acquire(&self) -> Duration {
        let now = Instant::now();
        let at = self.reserve(now);
        if at > now {
            tokio::time::sleep_until(at).await;
        }
        at.saturating_duration_since(now)
    }

    /// The earliest instant not before `now` at which every window has room, recorded
    /// as taken.
    fn reserve(&self, now: Instant) -> Instant {
        if self.windows.is_empty() {
            return now;
        }
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        // Send times stay in order: a new slot is never before the last one.
        let mut at = sent.back().map_or(now, |&last| last.max(now));
        for w in &self.windows {
            let span = w.window + self.slack;
            if sent.len() >= w.limit {
                // The limit-th most recent send must have left the window.
                let blocking = sent[sent.len() - w.limit];
                at = at.max(blocking + span);
            }
        }
        sent.push_back(at);
        // Bounded memory: no window looks further back than its limit.
        let keep = self.windows.iter().map(|w| w.limit).max().unwrap_or(0);
        while sent.len() > keep {
            sent.pop_front();
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let slots: Vec<Instant> = (0..60).map(|_| limiter.reserve(start)).collect();
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
        let slots: Vec<Instant> = (0..3).map(|_| limiter.reserve(start)).collect();
        assert_eq!(slots[2], start + Duration::from_millis(5250));
    }

    #[test]
    fn idle_time_frees_the_window() {
        let limiter = RateLimiter::new([Window::new(2, Duration::from_secs(1))], Duration::ZERO);
        let start = Instant::now();
        limiter.reserve(start);
        limiter.reserve(start);
        let later = start + Duration::from_secs(3);
        assert_eq!(limiter.reserve(later), later);
        assert_eq!(limiter.reserve(later), later);
        assert_eq!(limiter.reserve(later), later + Duration::from_secs(1));
    }

    #[test]
    fn unlimited_never_waits() {
        let limiter = RateLimiter::unlimited();
        let now = Instant::now();
        for _ in 0..10_000 {
            assert_eq!(limiter.reserve(now), now);
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
                    l.acquire().await;
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
}
