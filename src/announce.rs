//! A module in a nested instance tells its parent instance where it
//! serves: it writes its URL, and every instance below it, into its own
//! job's memo there (`job-manager.memo`, key `prometheus`). The parent's
//! module reads the memo from the job-manager journal and lists it at
//! `/-/targets`; `flux jobs -o '{user.prometheus}'` shows it too.
//!
//! Why the memo: it lives in the parent, so the parent learns of the child
//! without ever connecting to it (it could not: a user's instance accepts
//! only its owner); the job's owner may write it, which a nested instance
//! is; it comes through the journal the parent's jobflow collector already
//! follows, so the parent polls nothing; and it goes with the job, so a
//! child that dies without a word drops out when its job is cleaned up.
//! The memo is withdrawn (set to null) when the module unloads.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use serde_json::json;

use crate::model::nested::{parse_jobid, Descendant, Memo, MEMO_KEY};
use flux::{Error, Handle, Level, Parent, Rpc};

/// How long the withdrawal at unload may wait for the parent.
const WITHDRAW_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Announcer {
    /// The memo request in flight; dropped before `parent` (see Drop).
    in_flight: RefCell<Option<Rpc>>,
    /// A memo that waits for the one in flight.
    queued: RefCell<Option<String>>,
    /// The memo last sent, so that only changes are written.
    sent: RefCell<Option<String>>,
    /// A failure was logged; the next success says so.
    failing: Cell<bool>,
    handle: Handle,
    jobid: u64,
    parent: Option<Parent>,
}

impl Announcer {
    /// In a nested instance (one with `parent-uri` and `jobid`), a
    /// connection to the parent; None at the top.
    pub fn open(h: &Handle) -> Result<Option<Rc<Announcer>>, Error> {
        let (Some(uri), Some(jobid)) = (h.attr("parent-uri"), h.attr("jobid")) else {
            return Ok(None);
        };
        let jobid = parse_jobid(&jobid).ok_or_else(|| {
            Error::new(
                libc::EINVAL,
                format!("jobid attribute {jobid:?} is not a job ID"),
            )
        })?;
        let parent = Parent::open(h, &uri)?;
        Ok(Some(Rc::new(Announcer {
            in_flight: RefCell::new(None),
            queued: RefCell::new(None),
            sent: RefCell::new(None),
            failing: Cell::new(false),
            handle: *h,
            jobid,
            parent: Some(parent),
        })))
    }

    /// Writes `url` and `descendants` into the job's memo in the parent,
    /// unless that is what it says already.
    pub fn announce(self: &Rc<Self>, url: &str, descendants: Vec<Descendant>) {
        let memo = Memo {
            url: url.to_string(),
            descendants,
        };
        let payload = json!({ "id": self.jobid, "memo": { MEMO_KEY: memo } }).to_string();
        if self.sent.borrow().as_deref() == Some(payload.as_str()) {
            return;
        }
        if self.in_flight.borrow().is_some() {
            self.queued.replace(Some(payload));
            return;
        }
        self.send(payload);
    }

    fn send(self: &Rc<Self>, payload: String) {
        let Some(parent) = &self.parent else { return };
        let weak = Rc::downgrade(self);
        let sent = parent
            .handle()
            .rpc("job-manager.memo", &payload, false, move |answer| {
                if let Some(me) = weak.upgrade() {
                    me.answered(answer);
                }
            });
        match sent {
            Ok(rpc) => {
                self.in_flight.replace(Some(rpc));
                self.sent.replace(Some(payload));
            }
            Err(e) => self.answered(Err(e)),
        }
    }

    fn answered(self: &Rc<Self>, answer: Result<String, Error>) {
        // Dropping the request from inside its own continuation is safe
        // (flux::Rpc keeps the closure alive through the call).
        let _done = self.in_flight.take();
        match answer {
            Ok(_) => {
                if self.failing.replace(false) {
                    self.handle.log(
                        Level::Info,
                        "this instance's URL is in its job's memo in the parent instance again",
                    );
                }
            }
            Err(e) => {
                // Sent again with the next change.
                self.sent.replace(None);
                if !self.failing.replace(true) {
                    self.handle.log(
                        Level::Warning,
                        &format!(
                            "cannot write this instance's URL into its job's memo in the parent instance: {}",
                            e.message
                        ),
                    );
                }
            }
        }
        if let Some(next) = self.queued.take() {
            self.send(next);
        }
    }

    /// Takes the memo back, waiting a little for the parent: the module is
    /// unloading, and the reactor no longer runs.
    pub fn withdraw(&self) {
        self.in_flight.take();
        let Some(parent) = &self.parent else { return };
        let payload = json!({ "id": self.jobid, "memo": { MEMO_KEY: null } }).to_string();
        if let Err(e) = parent.rpc_wait_for("job-manager.memo", &payload, WITHDRAW_TIMEOUT) {
            self.handle.log(
                Level::Warning,
                &format!(
                    "cannot withdraw this instance's URL from the parent instance: {}",
                    e.message
                ),
            );
        }
    }

    /// The broker has closed the module's handle (it cancelled the module
    /// thread): the parent connection shares the module's reactor, so it
    /// and its request are left as they are, never touched again.
    pub fn abandon(self: Rc<Self>) {
        std::mem::forget(self);
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        // The request before the connection it was made on.
        self.in_flight.take();
        self.parent.take();
    }
}
