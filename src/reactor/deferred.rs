//! A one-shot reactor timer armed on demand: how updates that arrive close
//! together are handled once (the publish delay, the job-flow summary) and
//! how a check waits out a grace period.

use std::cell::{Cell, OnceCell};
use std::rc::Rc;

use flux::{Error, Handle, Timer};

/// Runs its action once, some time after it is armed. It is inert until
/// [`start`](Self::start) gives it the action, so that a collector can hold
/// one in a field and still give it a closure over the collector itself.
#[derive(Default)]
pub struct Deferred {
    timer: OnceCell<Timer>,
    /// Armed and not yet fired; shared with the timer's callback.
    armed: Rc<Cell<bool>>,
}

impl Deferred {
    pub fn new() -> Deferred {
        Deferred::default()
    }

    /// Creates the timer, stopped; `action` runs each time it fires.
    pub fn start(&self, handle: Handle, mut action: impl FnMut() + 'static) -> Result<(), Error> {
        let armed = Rc::clone(&self.armed);
        let timer = handle.timer(0.0, 0.0, move || {
            armed.set(false);
            action();
        })?;
        // A second start keeps the first timer: the action is fixed once.
        let _ = self.timer.set(timer);
        Ok(())
    }

    /// Fires after `delay` seconds from now, replacing any earlier arming.
    pub fn arm(&self, delay: f64) {
        if let Some(timer) = self.timer.get() {
            self.armed.set(true);
            timer.restart(delay, 0.0);
        }
    }

    /// Fires after `delay` seconds unless already armed: a burst of
    /// requests is served by one firing, at most `delay` after the first.
    pub fn arm_once(&self, delay: f64) {
        if !self.armed.get() {
            self.arm(delay);
        }
    }

    /// Not to fire after all (its action was done directly, say).
    pub fn disarm(&self) {
        self.armed.set(false);
        if let Some(timer) = self.timer.get() {
            timer.stop();
        }
    }

    pub fn is_armed(&self) -> bool {
        self.armed.get()
    }
}
