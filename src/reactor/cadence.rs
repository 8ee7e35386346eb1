//! How often a costly source is asked: as often as its cost allows.
//!
//! Some stats services cost the broker little on a small instance and a
//! lot on a large one: `kvs.stats-get` walks the KVS cache and every job's
//! namespace (66 ms of broker CPU with 5,000 running jobs), Fluxion's
//! queue manager lists every job it holds. A fixed "every Nth poll" is
//! either stale on small instances or too dear on large ones. A
//! [`Cadence`] instead gives each source a budget of broker time per poll:
//! after each answer, the next ask waits as many polls as that answer took
//! budgets. The time an answer takes is what the broker spent routing and
//! computing it (the service runs in one thread and answers in turn), so
//! the average cost per poll stays within the budget at any size, and a
//! busy broker, which answers slower, is asked less often.

use std::cell::Cell;
use std::time::Duration;

#[derive(Debug)]
pub struct Cadence {
    /// Broker time per poll this source may take, on average.
    budget: Duration,
    /// Bounds on the polls from one ask to the next: at least `min_every`
    /// so a cheap source is not asked more often than its consumer needs,
    /// at most `max_every` so that no value gets older than that.
    min_every: u32,
    max_every: u32,
    /// Polls from one ask to the next, as the last answer set it.
    every: Cell<u32>,
    /// Polls until the next ask; 0 asks at the next poll.
    wait: Cell<u32>,
    /// An answer has been timed. The first is not: the first poll asks
    /// every source at once, and the answers wait on each other.
    timed: Cell<bool>,
}

impl Cadence {
    /// A source asked at the first poll, then as `budget` allows, every
    /// `min_every` to `max_every` polls.
    pub const fn new(budget: Duration, min_every: u32, max_every: u32) -> Cadence {
        Cadence {
            budget,
            min_every,
            max_every,
            every: Cell::new(min_every),
            wait: Cell::new(0),
            timed: Cell::new(false),
        }
    }

    /// Counts one poll: true when the source is to be asked at it.
    pub fn due(&self) -> bool {
        match self.wait.get() {
            0 => {
                self.wait.set(self.every.get().saturating_sub(1));
                true
            }
            n => {
                self.wait.set(n - 1);
                false
            }
        }
    }

    /// The source answered, in `took`: the next ask comes after as many
    /// polls as `took` is budgets (counted from the poll that asked).
    pub fn answered(&self, took: Duration) {
        if !self.timed.replace(true) {
            // Asked again soon, to be timed alone.
            return self.set_every(self.min_every);
        }
        let budgets = took.as_secs_f64() / self.budget.as_secs_f64();
        let every = if budgets.is_finite() {
            budgets
                .ceil()
                .clamp(f64::from(self.min_every), f64::from(self.max_every)) as u32
        } else {
            self.max_every
        };
        self.set_every(every);
    }

    /// Records how an ask went: an answer that took `took`, or a failure.
    pub fn observe<T, E>(&self, answer: &Result<T, E>, took: Duration) {
        match answer {
            Ok(_) => self.answered(took),
            Err(_) => self.failed(),
        }
    }

    /// The source failed (not loaded, or an error): asked half as often
    /// each time it fails again, so a module that is not there costs
    /// little, and one loaded later is found within `max_every` polls.
    pub fn failed(&self) {
        self.set_every(self.every.get().saturating_mul(2));
    }

    /// Asks at the next poll, whatever the cadence (the source changed).
    pub fn ask_next(&self) {
        self.wait.set(0);
    }

    /// Polls from one ask to the next, as things stand.
    pub fn every(&self) -> u32 {
        self.every.get()
    }

    fn set_every(&self, every: u32) {
        let every = every.clamp(self.min_every.max(1), self.max_every.max(1));
        // The wait already under way was counted from the ask with the old
        // cadence: start it again from that ask with the new one.
        let elapsed = self
            .every
            .get()
            .saturating_sub(1)
            .saturating_sub(self.wait.get());
        self.every.set(every);
        self.wait.set((every - 1).saturating_sub(elapsed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asks(cadence: &Cadence, polls: usize) -> Vec<usize> {
        (0..polls).filter(|_| cadence.due()).collect()
    }

    #[test]
    fn first_poll_asks_then_cheap_answers_ask_every_min_polls() {
        let c = Cadence::new(Duration::from_micros(100), 1, 12);
        assert!(c.due());
        c.answered(Duration::from_micros(40));
        assert_eq!(asks(&c, 3), vec![0, 1, 2]);
    }

    #[test]
    fn the_first_answer_is_not_timed() {
        // The first poll's answers wait on each other: however slow the
        // first is, the source is asked again at the next poll.
        let c = Cadence::new(Duration::from_micros(100), 1, 720);
        assert!(c.due());
        c.answered(Duration::from_millis(50));
        assert!(c.due());
        c.answered(Duration::from_micros(250));
        assert_eq!(c.every(), 3);
    }

    /// A cadence whose first answer has been had.
    fn timed(budget: Duration, min_every: u32, max_every: u32) -> Cadence {
        let c = Cadence::new(budget, min_every, max_every);
        assert!(c.due());
        c.answered(Duration::ZERO);
        for _ in 1..min_every {
            c.due();
        }
        c
    }

    #[test]
    fn a_costly_answer_spaces_the_asks_out_by_its_budgets() {
        // 66 ms of kvs.stats-get on a 50 µs budget: once in 1320 polls,
        // capped at 720.
        let c = timed(Duration::from_micros(50), 1, 720);
        assert!(c.due());
        c.answered(Duration::from_millis(66));
        assert_eq!(c.every(), 720);
        let asked = asks(&c, 1500);
        assert_eq!(asked, vec![719, 1439]);
        // 2.2 ms on a 250 µs budget: every 9th poll.
        let c = timed(Duration::from_micros(250), 1, 60);
        assert!(c.due());
        c.answered(Duration::from_micros(2200));
        assert_eq!(asks(&c, 20), vec![8, 17]);
    }

    #[test]
    fn the_answer_arriving_polls_later_counts_from_the_ask() {
        let c = timed(Duration::from_millis(1), 1, 100);
        assert!(c.due());
        // Two polls pass before the answer comes in.
        assert!(c.due());
        c.answered(Duration::from_millis(10));
        // Asked at polls 0 and 1; the answer sets 10 polls from the ask at
        // 1, which is the 10th poll from here.
        assert_eq!(asks(&c, 12).first(), Some(&9));
    }

    #[test]
    fn failures_back_off_to_the_cap_and_ask_next_overrides() {
        let c = Cadence::new(Duration::from_millis(1), 1, 8);
        for _ in 0..5 {
            c.failed();
        }
        assert_eq!(c.every(), 8);
        c.ask_next();
        assert!(c.due());
        assert!(!c.due());
    }

    #[test]
    fn min_every_holds_for_the_cheapest_answers() {
        let c = timed(Duration::from_millis(1), 6, 60);
        assert!(c.due());
        c.answered(Duration::ZERO);
        assert_eq!(asks(&c, 12), vec![5, 11]);
    }
}
