//! The roster (who runs what, [`crate::model::roster`]) as the jobflow
//! collector keeps it from the job-manager journal, read by the users and
//! jobmap collectors. As with the allocated set, only the journal follower
//! holds the [`RosterWriter`]; dropping it (the jobflow collector stopped)
//! marks the roster stale, so that no reader exports a roster nobody keeps.

use std::cell::{Ref, RefCell, RefMut};
use std::rc::Rc;

use crate::model::roster::Roster;

#[derive(Default)]
pub struct RosterFeed(Rc<RefCell<Roster>>);

impl RosterFeed {
    pub fn writer(&self) -> RosterWriter {
        RosterWriter(Rc::clone(&self.0))
    }

    pub fn reader(&self) -> RosterReader {
        RosterReader(Rc::clone(&self.0))
    }
}

pub struct RosterWriter(Rc<RefCell<Roster>>);

impl RosterWriter {
    pub fn borrow_mut(&self) -> RefMut<'_, Roster> {
        self.0.borrow_mut()
    }
}

impl Drop for RosterWriter {
    fn drop(&mut self) {
        self.0.borrow_mut().stream_lost();
    }
}

/// A reader's end: [`Roster::current`] is None whenever the roster is not
/// read to the present.
pub struct RosterReader(Rc<RefCell<Roster>>);

impl RosterReader {
    pub fn borrow(&self) -> Ref<'_, Roster> {
        self.0.borrow()
    }

    /// For reporting the jobs left out of the map.
    pub fn borrow_mut(&self) -> RefMut<'_, Roster> {
        self.0.borrow_mut()
    }
}
