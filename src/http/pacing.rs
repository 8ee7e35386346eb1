//! Request pacing for the HTTP thread. Every request costs CPU inside the
//! broker process; unpaced, 50 clients scraping as fast as they could kept
//! the HTTP thread at about half a core (BENCHMARKS.md), taken from the
//! instance's own threads. Requests beyond the rate wait their turn instead
//! of being refused, so a scraper sees a slower answer, never an error, and
//! the exporter's CPU stays bounded whatever the clients do.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Requests served at once, without waiting, after a quiet second.
const BURST_SECONDS: f64 = 1.0;

/// Waiting requests are released together on these boundaries, so the HTTP
/// thread wakes a few times a second rather than once per request (each
/// wake-up after a sleep costs tens of microseconds of cold caches).
pub const RELEASE_QUANTUM: Duration = Duration::from_millis(50);

/// A generic cell rate algorithm that never rejects: it tells each request
/// how long to wait for its slot.
#[derive(Debug)]
pub struct Pacer {
    /// Requests per second; 0 serves everything at once.
    rate: AtomicU32,
    /// When the next request's slot would start if no burst were allowed,
    /// and the instant release boundaries are counted from.
    schedule: Mutex<Option<Schedule>>,
}

#[derive(Debug, Clone, Copy)]
struct Schedule {
    theoretical_arrival: Instant,
    epoch: Instant,
}

impl Pacer {
    pub fn new(rate: u32) -> Pacer {
        Pacer {
            rate: AtomicU32::new(rate),
            schedule: Mutex::new(None),
        }
    }

    pub fn set_rate(&self, rate: u32) {
        self.rate.store(rate, Ordering::Relaxed);
        *self.schedule.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    pub fn rate(&self) -> u32 {
        self.rate.load(Ordering::Relaxed)
    }

    /// Books a slot for a request arriving at `now` and returns how long it
    /// must wait for it.
    pub fn delay(&self, now: Instant) -> Duration {
        let rate = self.rate();
        if rate == 0 {
            return Duration::ZERO;
        }
        let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
        let tolerance = Duration::from_secs_f64(BURST_SECONDS);
        let mut schedule = self.schedule.lock().unwrap_or_else(PoisonError::into_inner);
        let Schedule {
            theoretical_arrival,
            epoch,
        } = *schedule.get_or_insert(Schedule {
            theoretical_arrival: now,
            epoch: now,
        });
        let slot = theoretical_arrival.max(now);
        *schedule = Some(Schedule {
            theoretical_arrival: slot + interval,
            epoch,
        });
        let due = (slot + interval).saturating_duration_since(now + tolerance);
        if due.is_zero() {
            return due;
        }
        // Up to the next release boundary.
        let quantum = RELEASE_QUANTUM.as_nanos();
        let since_epoch = (now + due).saturating_duration_since(epoch).as_nanos();
        let boundary = since_epoch.div_ceil(quantum) * quantum;
        let extra = u64::try_from(boundary - since_epoch).unwrap_or(0);
        due + Duration::from_nanos(extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delays(pacer: &Pacer, now: Instant, n: usize) -> Vec<Duration> {
        (0..n).map(|_| pacer.delay(now)).collect()
    }

    #[test]
    fn a_burst_of_one_second_is_served_at_once_then_requests_are_spaced() {
        let pacer = Pacer::new(100);
        let now = Instant::now();
        let d = delays(&pacer, now, 103);
        assert!(d[..100].iter().all(|d| d.is_zero()), "{:?}", &d[..100]);
        // Due at 10, 20 and 30 ms; released together on the 50 ms boundary.
        let ms = |d: Duration| (d.as_secs_f64() * 1000.0).round() as u64;
        let late: Vec<u64> = d[100..].iter().map(|&d| ms(d)).collect();
        assert_eq!(late, [50, 50, 50]);
        // The rate holds over time: the 200th request is due at 1 s.
        let last = delays(&pacer, now, 97).pop().unwrap();
        assert_eq!(ms(last), 1000);
    }

    #[test]
    fn the_allowance_comes_back_at_the_rate() {
        let pacer = Pacer::new(10);
        let start = Instant::now();
        delays(&pacer, start, 10);
        assert!(!pacer.delay(start).is_zero());
        // One interval later one more is free again (the one booked above
        // used the slot after it, so two intervals).
        assert!(pacer.delay(start + Duration::from_millis(200)).is_zero());
        // After a quiet second the whole burst is back.
        let later = start + Duration::from_secs(5);
        assert!(delays(&pacer, later, 10).iter().all(|d| d.is_zero()));
    }

    #[test]
    fn rate_zero_never_waits_and_a_new_rate_starts_afresh() {
        let pacer = Pacer::new(0);
        let now = Instant::now();
        assert!(delays(&pacer, now, 10_000).iter().all(|d| d.is_zero()));
        pacer.set_rate(1);
        assert!(pacer.delay(now).is_zero());
        assert_eq!(pacer.delay(now), Duration::from_secs(1));
        pacer.set_rate(1000);
        assert!(pacer.delay(now).is_zero());
    }
}
