//! A streaming RPC kept alive: subscribed at start, and subscribed again
//! with backoff whenever the stream ends (its service unloaded or
//! reloaded, an error). The jobs, jobflow and broker collectors each follow
//! one.

use std::cell::{Cell, OnceCell, RefCell};
use std::rc::{Rc, Weak};

use super::Backoff;
use flux::{Error, Handle, Rpc, Timer};

/// What a subscription hands its collector.
pub enum StreamEvent {
    /// One response of the stream.
    Response(String),
    /// The stream ended or could not be opened. The subscription has
    /// already scheduled the next try; `message` says why, in words a log
    /// reader understands ("job-manager is not loaded").
    Ended { error: Error, message: String },
}

/// One streaming RPC and its resubscription.
pub struct Subscription {
    inner: Rc<Inner>,
}

struct Inner {
    topic: &'static str,
    /// The service behind `topic`, named when it is not loaded.
    service: &'static str,
    handle: OnceCell<Handle>,
    stream: RefCell<Option<Rpc>>,
    retry: OnceCell<Timer>,
    backoff: Cell<Backoff>,
    /// Called before each subscription; gives its request payload.
    on_subscribe: OnceCell<Box<dyn Fn() -> String>>,
    on_event: OnceCell<Box<dyn Fn(StreamEvent)>>,
}

impl Subscription {
    /// A subscription to `topic`, served by `service`; nothing is sent
    /// until [`start`](Self::start).
    pub fn new(topic: &'static str, service: &'static str) -> Subscription {
        Subscription {
            inner: Rc::new(Inner {
                topic,
                service,
                handle: OnceCell::new(),
                stream: RefCell::new(None),
                retry: OnceCell::new(),
                backoff: Cell::new(Backoff::new()),
                on_subscribe: OnceCell::new(),
                on_event: OnceCell::new(),
            }),
        }
    }

    /// Subscribes now, and again after every end. `on_subscribe` runs
    /// before each subscription and returns its payload; `on_event` gets
    /// every response and every end.
    pub fn start(
        &self,
        handle: Handle,
        on_subscribe: impl Fn() -> String + 'static,
        on_event: impl Fn(StreamEvent) + 'static,
    ) -> Result<(), Error> {
        let weak: Weak<Inner> = Rc::downgrade(&self.inner);
        let retry = handle.timer(Backoff::FIRST, 0.0, move || {
            if let Some(inner) = weak.upgrade() {
                subscribe(&inner);
            }
        })?;
        let _ = self.inner.retry.set(retry);
        let _ = self.inner.handle.set(handle);
        let _ = self.inner.on_subscribe.set(Box::new(on_subscribe));
        let _ = self.inner.on_event.set(Box::new(on_event));
        subscribe(&self.inner);
        Ok(())
    }

    /// Drops the stream and subscribes again at once (a stream found dead).
    pub fn resubscribe(&self) {
        subscribe(&self.inner);
    }

    /// The collector cannot use this stream (a response it cannot read):
    /// drops it and subscribes again after the next backoff delay.
    pub fn drop_and_retry(&self) {
        self.inner.stream.borrow_mut().take();
        schedule_retry(&self.inner);
    }

    /// The stream delivered what it should: the next end is retried after
    /// the shortest delay again.
    pub fn healthy(&self) {
        self.inner.backoff.set(Backoff::new());
    }

    /// Whether a stream is open (not waiting to subscribe again).
    pub fn is_open(&self) -> bool {
        self.inner.stream.borrow().is_some()
    }

    pub fn topic(&self) -> &'static str {
        self.inner.topic
    }
}

fn subscribe(inner: &Rc<Inner>) {
    inner.stream.borrow_mut().take();
    let (Some(handle), Some(on_subscribe)) = (inner.handle.get(), inner.on_subscribe.get()) else {
        return;
    };
    let payload = on_subscribe();
    let weak = Rc::downgrade(inner);
    let sent = handle.rpc(inner.topic, &payload, true, move |response| {
        if let Some(inner) = weak.upgrade() {
            on_response(&inner, response);
        }
    });
    match sent {
        Ok(rpc) => *inner.stream.borrow_mut() = Some(rpc),
        Err(error) => ended(inner, error),
    }
}

fn on_response(inner: &Rc<Inner>, response: Result<String, Error>) {
    match response {
        Ok(payload) => {
            if let Some(on_event) = inner.on_event.get() {
                on_event(StreamEvent::Response(payload));
            }
        }
        Err(error) => ended(inner, error),
    }
}

/// The stream ended: drop it, schedule the next subscription, and tell the
/// collector.
fn ended(inner: &Rc<Inner>, error: Error) {
    // Dropping the stream inside its own continuation is safe: the Rpc
    // wrapper keeps its callback alive through the call.
    inner.stream.borrow_mut().take();
    schedule_retry(inner);
    let message = end_message(inner.topic, inner.service, &error);
    if let Some(on_event) = inner.on_event.get() {
        on_event(StreamEvent::Ended { error, message });
    }
}

fn schedule_retry(inner: &Inner) {
    let mut backoff = inner.backoff.get();
    let delay = backoff.next_delay();
    inner.backoff.set(backoff);
    if let Some(timer) = inner.retry.get() {
        timer.restart(delay, 0.0);
    }
}

/// Why a stream from `topic` ended: its `service` is not loaded (ENOSYS),
/// or the error it ended with.
pub fn end_message(topic: &str, service: &str, err: &Error) -> String {
    if err.errno == libc::ENOSYS {
        format!("{topic}: {service} is not loaded")
    } else {
        format!("{topic}: stream ended: {}", err.message)
    }
}

#[cfg(test)]
mod tests {
    use super::end_message;
    use flux::Error;

    #[test]
    fn an_end_names_a_missing_service_or_the_error() {
        let missing = Error::new(libc::ENOSYS, "x");
        assert_eq!(
            end_message("job-list.job-stats", "job-list", &missing),
            "job-list.job-stats: job-list is not loaded"
        );
        let other = Error::new(libc::EPROTO, "bad");
        assert_eq!(
            end_message("groups.get", "groups", &other),
            "groups.get: stream ended: bad"
        );
    }
}
