//! Collectors: one file each, registered by name in [`REGISTRY`]. A
//! collector talks to Flux through the safe handle, keeps what it learns
//! in its own section of the shared [`State`], renders its own metric
//! families from that section, and knows nothing of HTTP.
//!
//! Adding a collector is one new file and its line in [`REGISTRY`]: the
//! `collectors=` argument, the per-collector options, reload decisions,
//! withdrawal and rendering all come from its [`Spec`].
//!
//! Only collectors live here, beside the registry. What they share (the
//! context, subscriptions, poll loops, the journal's feeds) is in
//! `crate::reactor`; what they parse, in `crate::model`.

pub mod accounting;
pub mod broker;
pub mod internals;
pub mod jobflow;
pub mod jobmap;
pub mod jobs;
pub mod nodes;
pub mod queues;
pub mod resources;
pub mod scheduler;
pub mod users;

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

pub use crate::reactor::{Backoff, Context};

use crate::access::Audience;
pub use crate::config::{About, Catalog, OptionSpec};
use crate::exposition::{Exposition, Format, Part, RenderCache, RenderLater, Selection, Snapshot};
use crate::render::{Doc, Rendered};
use crate::state::State;
use flux::Error;

/// Every collector, in the order of `collectors=`'s default and of the
/// exposition.
pub const REGISTRY: &[Spec; 11] = &[
    jobs::SPEC,
    resources::SPEC,
    queues::SPEC,
    broker::SPEC,
    jobflow::SPEC,
    users::SPEC,
    accounting::SPEC,
    scheduler::SPEC,
    internals::SPEC,
    nodes::SPEC,
    jobmap::SPEC,
];

/// What the argument parser knows of every collector, in registry order.
pub static CATALOG: Catalog = Catalog(&ABOUTS);

static ABOUTS: [&About; REGISTRY.len()] = abouts(REGISTRY);

const fn abouts<const N: usize>(registry: &'static [Spec; N]) -> [&'static About; N] {
    let mut out = [&registry[0].about; N];
    let mut i = 1;
    while i < N {
        out[i] = &registry[i].about;
        i += 1;
    }
    out
}

/// What the module knows of a collector before it runs.
pub struct Spec {
    /// What it exports, in one sentence (the metrics reference's).
    pub summary: &'static str,
    /// Its name, default, options and needs, as the argument parser
    /// reads them.
    pub about: About,
    /// Starts it. The collector stops when the returned value is dropped,
    /// and its section of the state is then forgotten.
    pub start: Start,
    /// Whether going from the first configuration to the second needs a
    /// restart (which starts its counters again). Where it does not, the
    /// running collector is handed the new one.
    pub restart_needed: fn(&Settings, &Settings) -> bool,
    /// Its metric families, from its section of the state.
    pub render: Render,
    /// Other collectors' sections its render reads as well: a change in
    /// any of them renders it again.
    pub reads: &'static [&'static str],
    /// Every family it may write: what `render` writes them from, and
    /// what the metrics reference lists.
    pub families: &'static [Doc],
}

/// How a collector's families are rendered.
pub enum Render {
    /// On the reactor thread, at the publish after its section changed.
    Now(fn(&State, &mut Rendered)),
    /// On the HTTP thread, when a scrape first asks for them: the function
    /// takes from the section what the text is made of (shared, not
    /// copied), or None while there is nothing to export.
    Later(fn(&State) -> Option<RenderLater>),
}

/// How a collector starts: the shared context and its settings in, the
/// running collector out.
pub type Start = fn(Rc<Context>, &Settings) -> Result<Box<dyn Collector>, Error>;

/// What a collector is started or reconfigured with.
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    pub poll_interval: Duration,
    /// The collectors' own options as given, by key (checked already).
    pub options: &'a BTreeMap<&'static str, String>,
    /// The instance's queues as the broker config defines them ("" alone
    /// for the anonymous queue).
    pub queues: &'a [String],
}

impl Settings<'_> {
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(String::as_str)
    }

    /// `label-limit` (the jobflow collector's option, checked already),
    /// which bounds every collector's per-user labels.
    pub fn label_limit(&self) -> usize {
        self.option("label-limit")
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(crate::model::jobflow::DEFAULT_LABEL_LIMIT)
    }
}

/// A running collector.
pub trait Collector {
    /// Takes a configuration that needs no restart (its
    /// [`Spec::restart_needed`] said so): new queues after `flux config
    /// reload`, say.
    fn reconfigure(&self, _settings: &Settings) {}
}

/// A collector is usually its shared inner part, which its callbacks reach
/// through weak references: the registry holds the one strong one.
impl<T: Collector + ?Sized> Collector for Rc<T> {
    fn reconfigure(&self, settings: &Settings) {
        (**self).reconfigure(settings);
    }
}

/// The collector named `name`.
pub fn find(name: &str) -> Option<&'static Spec> {
    REGISTRY.iter().find(|spec| spec.about.name == name)
}

/// For collectors that poll: a new poll interval restarts them.
pub fn restart_on_new_interval(a: &Settings, b: &Settings) -> bool {
    a.poll_interval != b.poll_interval
}

/// The Prometheus text format (0.0.4) of `state`: every collector's
/// families in registry order, then the exporter's own.
pub fn render(state: &State) -> String {
    render_for(state, Audience::default(), Format::Text)
}

/// The OpenMetrics form of the same, with its `# EOF`.
pub fn render_openmetrics(state: &State) -> String {
    render_for(state, Audience::default(), Format::OpenMetrics)
}

/// The exposition of `state` in `format` as `audience` is served it
/// (crate::access).
pub fn render_for(state: &State, audience: Audience, format: Format) -> String {
    let snapshot = Snapshot::of(render_parts(state, &mut RenderCache::default()));
    let body = snapshot
        .select(&Selection::default(), audience)
        .body(format);
    String::from_utf8_lossy(&body).into_owned()
}

/// Each enabled collector's families, in registry order, apart: a
/// collector whose section has not changed since the last publish is not
/// rendered again (a large job map need not be, each time a queue count
/// moves).
pub fn render_parts(state: &State, cache: &mut RenderCache) -> Exposition {
    let mut parts = Vec::with_capacity(state.collectors.len());
    for spec in REGISTRY {
        let name = spec.about.name;
        if !state.collectors.iter().any(|c| c.name == name) {
            cache.forget(name);
            continue;
        }
        // Generations only grow, so the sum changes with any of them.
        let generation = spec
            .reads
            .iter()
            .fold(state.generation(name), |sum, other| {
                sum.wrapping_add(state.generation(other))
            });
        let last = cache.last(name);
        let part = match last {
            Some(last) if last.generation == generation => Arc::clone(&last.part),
            _ => {
                let (part, len) = match spec.render {
                    Render::Now(render) => {
                        // Sized for the last text and a little more: one
                        // allocation, not the dozen of a string grown from
                        // nothing. Each is a large request for malloc, and
                        // where the module's thread shares glibc's arena
                        // with a busy module (more threads than glibc
                        // makes arenas: 8 per core), each large request
                        // sorts that module's free chunks (BENCHMARKS.md,
                        // "a million jobs").
                        let capacity = last.map_or(1024, |l| l.len + l.len / 8);
                        let out = cache.time(name, || {
                            let mut out = Rendered::with_capacity(capacity);
                            render(state, &mut out);
                            out
                        });
                        let len = out.len();
                        (Part::ready(out), len)
                    }
                    Render::Later(take) => match cache.time(name, || take(state)) {
                        Some(later) => (Part::later(later), 0),
                        None => (Part::ready(Rendered::default()), 0),
                    },
                };
                cache.keep(name, generation, Arc::clone(&part), len);
                part
            }
        };
        parts.push((name, part));
    }
    Exposition {
        parts,
        statuses: state.collectors.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_option_keys_are_unique_and_every_option_is_found() {
        let mut names: Vec<&str> = REGISTRY.iter().map(|s| s.about.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), REGISTRY.len());
        let keys: Vec<&str> = REGISTRY
            .iter()
            .flat_map(|s| s.about.options.iter().map(|o| o.key))
            .collect();
        for key in &keys {
            assert_eq!(keys.iter().filter(|k| *k == key).count(), 1, "{key}");
            assert!(CATALOG.find_option(key).is_some());
        }
        assert!(find("jobs").is_some() && find("nope").is_none());
        let catalogued: Vec<&str> = CATALOG.0.iter().map(|a| a.name).collect();
        assert_eq!(
            catalogued,
            REGISTRY.iter().map(|s| s.about.name).collect::<Vec<_>>()
        );
    }
}
