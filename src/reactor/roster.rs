//! The roster (who runs what, [`crate::model::roster`]) as the jobflow
//! collector keeps it from the job-manager journal, read by the users and
//! jobmap collectors. As with the allocated set, only the journal follower
//! holds the [`RosterWriter`]; dropping it (the jobflow collector stopped)
//! marks the roster stale, so that no reader exports a roster nobody keeps.

use std::cell::{Ref, RefCell, RefMut};
use std::rc::Rc;
use std::time::Duration;

use super::Context;
use crate::model::roster::Roster;
use flux::{Error, Timer};

/// What the job-manager journal lacks while the roster is not current.
pub const NOT_CURRENT: &str =
    "the job-manager journal is not read to the present yet (the jobflow collector follows it)";

/// A collector that exports what it reads from the roster.
pub trait Follower {
    fn ctx(&self) -> &Context;
    /// Its collector's name.
    fn name(&self) -> &'static str;
    /// Whether what it last exported is out of date: the roster changed,
    /// user names came in, the journal was lost.
    fn stale(&self) -> bool;
    /// Reads the roster again, inside a publish, where it is stale.
    fn refresh(&self);
    /// Whether what it exports moves with time alone (sums that grow while
    /// jobs run): then it is refreshed every `interval` even where nothing
    /// else changed.
    fn ticking(&self) -> bool {
        false
    }
}

/// Keeps `inner` up to date: every `interval` it is refreshed where
/// stale, and a publish follows. Until its first refresh finds the roster
/// current, it is also refreshed before each publish, so that it reports
/// as soon as the journal's backlog is read. A busy instance publishes up
/// to ten times a second; per-user and per-job series need not follow each
/// publish (they are at most `interval` behind the journal), and a publish
/// then costs the broker none of their work. It stops with the returned
/// timer.
pub fn follow<T: Follower + 'static>(inner: &Rc<T>, interval: Duration) -> Result<Timer, Error> {
    let ticks = Rc::downgrade(inner);
    let every = interval.as_secs_f64();
    let timer = inner.ctx().handle.timer(every, every, move || {
        if let Some(inner) = ticks.upgrade() {
            if inner.stale() || inner.ticking() {
                inner.refresh();
                inner.ctx().update(|_| {});
            }
        }
    })?;
    timer.start();
    let hook = Rc::downgrade(inner);
    inner
        .ctx()
        .before_publish(inner.name(), move || match hook.upgrade() {
            Some(inner) => {
                if inner.stale() {
                    inner.refresh();
                }
                // Kept until the roster has been found current once.
                inner.stale()
            }
            None => false,
        });
    Ok(timer)
}

#[derive(Default)]
pub struct RosterFeed(Rc<RefCell<Roster>>);

impl RosterFeed {
    pub fn writer(&self) -> RosterWriter {
        RosterWriter(Rc::clone(&self.0))
    }

    pub fn reader(&self) -> RosterReader {
        RosterReader {
            roster: Rc::clone(&self.0),
            watching: false,
        }
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
pub struct RosterReader {
    roster: Rc<RefCell<Roster>>,
    /// This reader takes the roster's changes ([`Roster::take_changes`]).
    watching: bool,
}

impl RosterReader {
    pub fn borrow(&self) -> Ref<'_, Roster> {
        self.roster.borrow()
    }

    /// For taking the changes and the jobs left out of the map.
    pub fn borrow_mut(&self) -> RefMut<'_, Roster> {
        self.roster.borrow_mut()
    }

    /// A reader that takes the roster's changes: they are noted from now
    /// until it is dropped.
    pub fn watching_changes(mut self) -> RosterReader {
        self.roster.borrow_mut().watch_changes();
        self.watching = true;
        self
    }
}

impl Drop for RosterReader {
    fn drop(&mut self) {
        if self.watching {
            if let Ok(mut roster) = self.roster.try_borrow_mut() {
                roster.unwatch_changes();
            }
        }
    }
}
