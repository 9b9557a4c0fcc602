//! A token bucket, shared by everything the host rate-limits per plugin (log lines,
//! denial records), and reports that carry what was held back over the rate.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A bucket refilled at `per_second` tokens a second, holding at most `burst`.
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    /// A full bucket allowing `per_second` a second, with a burst of one second's worth.
    pub fn new(per_second: u32) -> Self {
        let per_second = f64::from(per_second.max(1));
        Self::with(per_second, per_second)
    }

    /// A full bucket allowing `per_minute` a minute, with a burst of one minute's worth.
    pub fn per_minute(per_minute: u32) -> Self {
        let per_minute = f64::from(per_minute.max(1));
        Self::with(per_minute / 60.0, per_minute)
    }

    fn with(per_second: f64, burst: f64) -> Self {
        RateLimiter {
            per_second,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Take one token if there is one.
    pub fn try_take(&self) -> bool {
        self.try_take_at(Instant::now())
    }

    /// Take one token if there is one at `now` (never earlier than a previous call's).
    pub fn try_take_at(&self, now: Instant) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, last) = &mut *state;
        *tokens = (*tokens + now.saturating_duration_since(*last).as_secs_f64() * self.per_second)
            .min(self.burst);
        *last = (*last).max(now);
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Reports that carry a count (records not written, lines dropped), at a rate: a report
/// over the rate is held back and its count added to the next one that goes out.
pub struct HeldBack {
    limiter: RateLimiter,
    held: AtomicU64,
}

impl HeldBack {
    /// At most `per_second` reports a second (and in a burst).
    pub fn new(per_second: u32) -> Self {
        HeldBack {
            limiter: RateLimiter::new(per_second),
            held: AtomicU64::new(0),
        }
    }

    /// Whether a report counting `count` may go out at `now`: if so, the count held back
    /// from earlier reports, which it now carries; if not, `count` is held back.
    pub fn offer_at(&self, count: u64, now: Instant) -> Option<u64> {
        if !self.limiter.try_take_at(now) {
            self.held.fetch_add(count, Ordering::Relaxed);
            return None;
        }
        Some(self.held.swap(0, Ordering::Relaxed))
    }

    /// The count held back so far.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_runs_dry() {
        let limiter = RateLimiter::new(3);
        assert!((0..3).all(|_| limiter.try_take()));
        assert!(!limiter.try_take());
    }

    #[test]
    fn a_per_minute_bucket_allows_a_minute_of_burst() {
        let limiter = RateLimiter::per_minute(120);
        assert!((0..120).all(|_| limiter.try_take()));
        assert!(!limiter.try_take());
    }

    #[test]
    fn an_empty_bucket_refills_with_time() {
        let limiter = RateLimiter::new(2);
        let start = Instant::now();
        assert!(limiter.try_take_at(start) && limiter.try_take_at(start));
        assert!(!limiter.try_take_at(start));
        let later = start + std::time::Duration::from_millis(600);
        assert!(limiter.try_take_at(later));
        assert!(!limiter.try_take_at(later));
    }
}
