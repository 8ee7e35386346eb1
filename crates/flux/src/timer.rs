//! Reactor timers whose callbacks are Rust closures.

use std::cell::RefCell;
use std::os::raw::{c_int, c_void};
use std::rc::Rc;

use super::callback::Callback;
use super::lifecycle::CancelGuard;
use super::{sys, Error, Handle};

type TimerCallback = Callback<dyn FnMut()>;

impl Handle {
    /// A timer that calls `on_fire` after `after` seconds, then every `repeat`
    /// seconds (0: once). It starts stopped; see [`Timer::start`].
    pub fn timer(
        &self,
        after: f64,
        repeat: f64,
        on_fire: impl FnMut() + 'static,
    ) -> Result<Timer, Error> {
        let callback: Rc<TimerCallback> = Rc::new(Callback {
            handle: *self,
            topic: "timer".into(),
            f: RefCell::new(on_fire),
        });
        let arg = Box::into_raw(Box::new(callback));
        // SAFETY: valid reactor; arg outlives the watcher (Timer::drop).
        let w = unsafe {
            sys::flux_timer_watcher_create(
                self.reactor(),
                after,
                repeat,
                Some(timer_fired),
                arg.cast(),
            )
        };
        if w.is_null() {
            // SAFETY: arg is ours and was not handed over.
            unsafe { drop(Box::from_raw(arg)) };
            return Err(Error::last_os("flux_timer_watcher_create"));
        }
        Ok(Timer {
            watcher: w,
            callback: arg,
        })
    }
}

unsafe extern "C" fn timer_fired(
    _r: *mut sys::flux_reactor_t,
    _w: *mut sys::flux_watcher_t,
    _revents: c_int,
    arg: *mut c_void,
) {
    let _no_cancel = CancelGuard::new();
    // SAFETY: arg is the Rc<TimerCallback> Handle::timer boxed; it lives
    // until Timer::drop destroys the watcher, so while this runs.
    let callback = Rc::clone(unsafe { &*(arg as *const Rc<TimerCallback>) });
    callback.handle.guarded("timer", || {
        if let Ok(mut on_fire) = callback.f.try_borrow_mut() {
            on_fire();
        }
    });
}

/// A reactor timer. Dropping it stops and destroys the watcher.
pub struct Timer {
    watcher: *mut sys::flux_watcher_t,
    callback: *mut Rc<TimerCallback>,
}

impl Timer {
    pub fn start(&self) {
        // SAFETY: valid watcher.
        unsafe { sys::flux_watcher_start(self.watcher) }
    }

    pub fn stop(&self) {
        // SAFETY: valid watcher.
        unsafe { sys::flux_watcher_stop(self.watcher) }
    }

    /// Re-arms the timer to fire after `after` seconds, then every `repeat`.
    pub fn restart(&self, after: f64, repeat: f64) {
        // SAFETY: valid watcher; reset requires it stopped, then restart it.
        unsafe {
            sys::flux_watcher_stop(self.watcher);
            sys::flux_timer_watcher_reset(self.watcher, after, repeat);
            sys::flux_watcher_start(self.watcher);
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        // SAFETY: created together in Handle::timer, freed only here.
        unsafe {
            sys::flux_watcher_stop(self.watcher);
            sys::flux_watcher_destroy(self.watcher);
            drop(Box::from_raw(self.callback));
        }
    }
}
