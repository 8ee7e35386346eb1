//! A poll loop: a round of RPCs every poll interval, never two rounds at
//! once, and a round that waits too long given up. The queues, resources
//! and broker collectors each run one.

use std::any::Any;
use std::cell::{OnceCell, RefCell};
use std::time::{Duration, Instant};

use flux::{Error, Handle, Timer};

/// A round whose answers have not all come in this long is given up, so a
/// service that never answers cannot stop a collector for good.
pub const ROUND_TIMEOUT: Duration = Duration::from_secs(30);

/// What opening a round found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// A new round is open.
    Fresh,
    /// The round in flight is still within [`ROUND_TIMEOUT`]: nothing was
    /// opened, so as not to double up.
    Busy,
    /// The round in flight waited too long and was given up (the collector
    /// reports that); a new round is open.
    AfterTimeout,
}

/// One round: when it began, its RPCs and shared asks in flight, and what
/// the collector keeps while the answers come in.
pub struct Round<R> {
    pub started: Instant,
    in_flight: Vec<Box<dyn Any>>,
    pub data: R,
}

/// The loop; `R` is what a round of this collector keeps.
pub struct PollLoop<R> {
    timer: OnceCell<Timer>,
    handle: OnceCell<Handle>,
    round: RefCell<Option<Round<R>>>,
}

impl<R> Default for PollLoop<R> {
    fn default() -> Self {
        PollLoop {
            timer: OnceCell::new(),
            handle: OnceCell::new(),
            round: RefCell::new(None),
        }
    }
}

impl<R> PollLoop<R> {
    pub fn new() -> PollLoop<R> {
        PollLoop::default()
    }

    /// Calls `on_tick` now and then every `interval`.
    pub fn start(
        &self,
        handle: Handle,
        interval: Duration,
        on_tick: impl FnMut() + 'static,
    ) -> Result<(), Error> {
        self.start_in(handle, Duration::ZERO, interval, on_tick)
    }

    /// Calls `on_tick` after `first`, then every `interval`.
    pub fn start_in(
        &self,
        handle: Handle,
        first: Duration,
        interval: Duration,
        on_tick: impl FnMut() + 'static,
    ) -> Result<(), Error> {
        let timer = handle.timer(first.as_secs_f64(), interval.as_secs_f64(), on_tick)?;
        timer.start();
        let _ = self.handle.set(handle);
        let _ = self.timer.set(timer);
        Ok(())
    }

    /// At a tick: opens a round keeping `data`, unless one is in flight.
    pub fn open(&self, data: R) -> Opened {
        let mut round = self.round.borrow_mut();
        let opened = match round.as_ref().map(|r| r.started.elapsed()) {
            None => Opened::Fresh,
            Some(waited) if waited > ROUND_TIMEOUT => Opened::AfterTimeout,
            Some(_) => return Opened::Busy,
        };
        // The given-up round's RPCs are dropped here: their answers, if
        // they ever come, go nowhere.
        *round = Some(Round {
            started: Instant::now(),
            in_flight: Vec::new(),
            data,
        });
        opened
    }

    /// Looks at the round in flight when it has waited past
    /// [`ROUND_TIMEOUT`] (the next [`open`](Self::open) gives it up): to
    /// name what did not answer.
    pub fn overdue<T>(&self, f: impl FnOnce(&R) -> T) -> Option<T> {
        let round = self.round.borrow();
        let r = round.as_ref()?;
        (r.started.elapsed() > ROUND_TIMEOUT).then(|| f(&r.data))
    }

    /// Sends an RPC for the open round; its answer goes to `on_answer`. The
    /// RPC lives as long as the round.
    pub fn send(
        &self,
        topic: &str,
        payload: &str,
        on_answer: impl FnMut(Result<String, Error>) + 'static,
    ) -> Result<(), Error> {
        let handle = self
            .handle
            .get()
            .ok_or_else(|| Error::new(libc::EINVAL, "poll loop not started"))?;
        let rpc = handle.rpc(topic, payload, false, on_answer)?;
        self.hold(rpc);
        Ok(())
    }

    /// Ties `pending` (an RPC, or an ask of a source several collectors
    /// share) to the open round: it is dropped with the round, so that an
    /// answer that comes after the round is over goes nowhere.
    pub fn hold(&self, pending: impl Any) {
        if let Some(round) = self.round.borrow_mut().as_mut() {
            round.in_flight.push(Box::new(pending));
        }
    }

    /// Works on the open round's data; None when no round is open (it
    /// finished, or was given up).
    pub fn with<T>(&self, f: impl FnOnce(&mut R) -> T) -> Option<T> {
        self.round.borrow_mut().as_mut().map(|r| f(&mut r.data))
    }

    /// Takes the round out: it is over. Call it before the round's RPCs
    /// may be dropped, since an answer's continuation is what calls it.
    pub fn close(&self) -> Option<Round<R>> {
        self.round.borrow_mut().take()
    }

    pub fn is_open(&self) -> bool {
        self.round.borrow().is_some()
    }
}

impl<R> Round<R> {
    /// The round's data; its RPCs are dropped with the rest.
    pub fn into_data(self) -> R {
        self.data
    }
}
