//! The one dependency between collectors, declared in types: the allocated
//! set as the jobflow collector follows it in the job-manager journal, read
//! by the resources collector (which otherwise asks the job manager, at a
//! far higher cost to the broker on a busy instance).
//!
//! Only an [`AllocatedWriter`] changes the set, and only the collector that
//! follows the journal holds one. Dropping it (the jobflow collector
//! stopped) marks the set stale, so that a reader never counts from a
//! journal nobody follows any more.

use std::cell::{Ref, RefCell, RefMut};
use std::rc::Rc;

use crate::model::allocations::Allocations;

/// Where the set lives: in the [`Context`](super::Context), which hands
/// out the two ends.
#[derive(Default)]
pub struct AllocatedFeed(Rc<RefCell<Allocations>>);

impl AllocatedFeed {
    pub fn writer(&self) -> AllocatedWriter {
        AllocatedWriter(Rc::clone(&self.0))
    }

    pub fn reader(&self) -> AllocatedReader {
        AllocatedReader(Rc::clone(&self.0))
    }
}

/// The journal follower's end.
pub struct AllocatedWriter(Rc<RefCell<Allocations>>);

impl AllocatedWriter {
    pub fn borrow_mut(&self) -> RefMut<'_, Allocations> {
        self.0.borrow_mut()
    }
}

impl Drop for AllocatedWriter {
    fn drop(&mut self) {
        self.0.borrow_mut().stream_lost();
    }
}

/// A reader's end: [`Allocations::current`] is None whenever the set is not
/// read to the present.
pub struct AllocatedReader(Rc<RefCell<Allocations>>);

impl AllocatedReader {
    pub fn borrow(&self) -> Ref<'_, Allocations> {
        self.0.borrow()
    }
}
