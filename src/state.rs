//! Everything the collectors have gathered: the one input of rendering.
//!
//! Each collector keeps its findings in its own section, under its name and
//! of its own type; a [`Section`] key names both, so that reading a section
//! as the wrong type cannot compile. A collector that stops leaves nothing
//! behind: its section goes with it ([`State::forget`]).

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

/// How one collector is doing, as the exporter reports it about itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CollectorStatus {
    pub name: &'static str,
    pub up: bool,
    /// Seconds since the epoch of the last successful update.
    pub last_success: Option<f64>,
    /// How long the last update took, in seconds.
    pub duration: f64,
    /// Successful updates since the module loaded.
    pub updates: u64,
    pub last_error: Option<String>,
    /// Where the exported values last came from, for collectors that have
    /// more than one way to learn them.
    pub source: Option<&'static str>,
    /// For collectors that read some sources less often than every poll:
    /// the polls from one read of each to the next, as things stand.
    pub read_every: BTreeMap<String, u32>,
}

/// The key of one collector's section: its name and the type it keeps.
pub struct Section<T> {
    pub collector: &'static str,
    kind: PhantomData<fn() -> T>,
}

impl<T> Section<T> {
    pub const fn new(collector: &'static str) -> Section<T> {
        Section {
            collector,
            kind: PhantomData,
        }
    }
}

impl<T> Clone for Section<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Section<T> {}

#[derive(Default)]
pub struct State {
    sections: BTreeMap<&'static str, Box<dyn Any>>,
    /// Bumped by every change a section may have had: a render of a
    /// section is reused for as long as its generation stays the same.
    generations: BTreeMap<&'static str, u64>,
    pub collectors: Vec<CollectorStatus>,
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("sections", &self.sections.keys().collect::<Vec<_>>())
            .field("collectors", &self.collectors)
            .finish()
    }
}

impl State {
    pub fn with_collectors(names: &[&'static str]) -> State {
        State {
            collectors: names
                .iter()
                .map(|&name| CollectorStatus {
                    name,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    /// What a collector last found, if anything.
    pub fn get<T: 'static>(&self, section: Section<T>) -> Option<&T> {
        self.sections.get(section.collector)?.downcast_ref()
    }

    pub fn get_mut<T: 'static>(&mut self, section: Section<T>) -> Option<&mut T> {
        self.touch(section.collector);
        self.sections.get_mut(section.collector)?.downcast_mut()
    }

    pub fn set<T: 'static>(&mut self, section: Section<T>, value: T) {
        self.touch(section.collector);
        self.sections.insert(section.collector, Box::new(value));
    }

    /// Drops what a collector found: it is no longer true.
    pub fn clear<T>(&mut self, section: Section<T>) {
        self.touch(section.collector);
        self.sections.remove(section.collector);
    }

    /// How many times collector `name`'s section may have changed: equal
    /// generations mean an equal render.
    pub fn generation(&self, name: &str) -> u64 {
        self.generations.get(name).copied().unwrap_or(0)
    }

    fn touch(&mut self, collector: &'static str) {
        *self.generations.entry(collector).or_default() += 1;
    }

    /// Makes `names` the enabled collectors, in that order; those already
    /// enabled keep their status.
    pub fn set_collectors(&mut self, names: &[&'static str]) {
        let mut old = std::mem::take(&mut self.collectors);
        self.collectors = names
            .iter()
            .map(|&name| match old.iter().position(|c| c.name == name) {
                Some(i) => old.swap_remove(i),
                None => CollectorStatus {
                    name,
                    ..Default::default()
                },
            })
            .collect();
    }

    /// Drops what collector `name` gathered and its status, as when it stops.
    pub fn forget(&mut self, name: &str) {
        if let Some(generation) = self.generations.get_mut(name) {
            *generation += 1;
        }
        self.sections.remove(name);
        if let Some(c) = self.collector_mut(name) {
            *c = CollectorStatus {
                name: c.name,
                ..Default::default()
            };
        }
    }

    pub fn collector_mut(&mut self, name: &str) -> Option<&mut CollectorStatus> {
        self.collectors.iter_mut().find(|c| c.name == name)
    }

    /// True once every enabled collector has succeeded at least once.
    pub fn all_reported(&self) -> bool {
        self.collectors.iter().all(|c| c.last_success.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NUMBERS: Section<Vec<u32>> = Section::new("numbers");

    #[test]
    fn a_stopped_collector_leaves_no_section_and_a_fresh_status() {
        let mut state = State::with_collectors(&["numbers", "other"]);
        state.set(NUMBERS, vec![1, 2]);
        if let Some(c) = state.collector_mut("numbers") {
            c.up = true;
            c.updates = 3;
        }
        assert_eq!(state.get(NUMBERS), Some(&vec![1, 2]));
        state.forget("numbers");
        assert_eq!(state.get(NUMBERS), None);
        assert_eq!(state.collectors[0].updates, 0);
        assert!(!state.collectors[0].up);
    }
}
