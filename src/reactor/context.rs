//! What every collector shares: the handle, the state, and publication.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::allocated::{AllocatedFeed, AllocatedReader, AllocatedWriter};
use super::deferred::Deferred;
use super::nested::NestedFeed;
use super::poll::PollLoop;
use super::resource_status::{self, ResourceStatusFeed};
use super::roster::{RosterFeed, RosterReader, RosterWriter};
use crate::exposition::{Exposition, RenderCache, Shared, Snapshot};
use crate::model::idset::IdSet;
use crate::names::Names;
use crate::state::State;
use crate::stats::{PublishStats, ResourceStatusAsks, Timings};
use flux::{Error, Handle};

/// Renders the state's collectors into an exposition, re-using what the
/// cache holds of the sections that did not change.
pub type RenderAll = fn(&State, &mut RenderCache) -> Exposition;

/// A collector's work before each render: false once it is no longer
/// wanted.
type Hook = Box<dyn Fn() -> bool>;

/// The reactor thread's time per publish, and per part of one.
#[derive(Default)]
struct PublishTimes {
    wall: Timings,
    cpu: Timings,
    hooks: Timings,
    /// Each collector's hook.
    hook: BTreeMap<&'static str, Timings>,
    snapshot: Timings,
}

pub struct Context {
    pub handle: Handle,
    state: RefCell<State>,
    shared: Arc<Shared>,
    publish: Deferred,
    /// Seconds from the first update to the render that includes it
    /// (`publish-interval`): updates within it are rendered together.
    publish_interval: Cell<f64>,
    /// The shortest time between two renders while updates keep coming
    /// (`busy-publish-interval`).
    busy_publish_interval: Cell<f64>,
    /// When the last render was (the reactor's time).
    last_publish: Cell<Option<f64>>,
    allocated: AllocatedFeed,
    roster: RosterFeed,
    nested: Rc<NestedFeed>,
    resource_status: ResourceStatusFeed,
    names: Names,
    /// The last publishes' wall and CPU seconds, and the CPU seconds of
    /// their hooks and snapshots.
    publishes: RefCell<PublishTimes>,
    /// The last render of each collector's families.
    rendered: RefCell<RenderCache>,
    /// Renders every collector's families (the registry's).
    render: RenderAll,
    /// Run before each render; each says whether to keep it (false once its
    /// collector is gone).
    before_publish: RefCell<Vec<(&'static str, Hook)>>,
}

impl Context {
    pub fn new(
        handle: Handle,
        shared: Arc<Shared>,
        names: Names,
        collectors: &[&'static str],
        render: RenderAll,
    ) -> Result<Rc<Context>, Error> {
        // The instance owner's name is wanted first (a nested instance's
        // jobs are mostly the owner's): asked now, it is there by then.
        if let Some(owner) = handle.attr("security.owner").and_then(|u| u.parse().ok()) {
            names.get(owner);
        }
        let level = handle
            .attr("instance-level")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let own_jobid = handle
            .attr("jobid")
            .and_then(|id| crate::model::nested::parse_jobid(&id))
            .map(crate::model::nested::f58);
        let nested = NestedFeed::new(level, own_jobid, names.clone());
        nested.start(handle, Arc::clone(&shared))?;
        let ctx = Rc::new(Context {
            handle,
            state: RefCell::new(State::with_collectors(collectors)),
            shared,
            publish: Deferred::new(),
            publish_interval: Cell::new(crate::config::DEFAULT_PUBLISH_INTERVAL.as_secs_f64()),
            busy_publish_interval: Cell::new(
                crate::config::DEFAULT_BUSY_PUBLISH_INTERVAL.as_secs_f64(),
            ),
            last_publish: Cell::new(None),
            allocated: AllocatedFeed::default(),
            roster: RosterFeed::default(),
            nested,
            resource_status: ResourceStatusFeed::new(handle)?,
            names,
            rendered: RefCell::new(RenderCache::timed(flux::thread_cpu_seconds)),
            render,
            publishes: RefCell::default(),
            before_publish: RefCell::new(Vec::new()),
        });
        let weak: Weak<Context> = Rc::downgrade(&ctx);
        ctx.publish.start(handle, move || {
            if let Some(ctx) = weak.upgrade() {
                ctx.publish_now();
            }
        })?;
        Ok(ctx)
    }

    pub fn state(&self) -> std::cell::Ref<'_, State> {
        self.state.borrow()
    }

    /// Changes the state and schedules a new snapshot.
    pub fn update(&self, change: impl FnOnce(&mut State)) {
        change(&mut self.state.borrow_mut());
        self.publish.arm_once(self.publish_delay());
    }

    /// Schedules a render for a change kept outside the state, which a
    /// [`before_publish`](Self::before_publish) hook folds in.
    pub fn request_publish(&self) {
        self.publish.arm_once(self.publish_delay());
    }

    /// Sets `publish-interval` and `busy-publish-interval`. A render already
    /// waiting is scheduled again by the new intervals, so that shortening
    /// a long interval takes effect at once.
    pub fn set_publish_intervals(&self, interval: Duration, busy: Duration) {
        let (secs, busy) = (interval.as_secs_f64(), busy.as_secs_f64());
        // Both are replaced, whichever changed.
        let interval_changed = self.publish_interval.replace(secs) != secs;
        let busy_changed = self.busy_publish_interval.replace(busy) != busy;
        let changed = interval_changed || busy_changed;
        if changed && self.publish.is_armed() {
            self.publish.arm(self.publish_delay());
        }
    }

    /// How long from now a render of an update made now waits.
    fn publish_delay(&self) -> f64 {
        let since_last = self.last_publish.get().map(|t| self.handle.now() - t);
        publish_delay(
            self.publish_interval.get(),
            self.busy_publish_interval.get(),
            since_last,
        )
    }

    /// The end of the allocated set that follows the journal: for the
    /// jobflow collector.
    pub fn allocated_writer(&self) -> AllocatedWriter {
        self.allocated.writer()
    }

    /// The end that reads the allocated set: for the resources collector.
    pub fn allocated_reader(&self) -> AllocatedReader {
        self.allocated.reader()
    }

    /// The end of the roster that follows the journal: for the jobflow
    /// collector.
    pub fn roster_writer(&self) -> RosterWriter {
        self.roster.writer()
    }

    /// The end that reads the roster: for the users and jobmap collectors.
    pub fn roster_reader(&self) -> RosterReader {
        self.roster.reader()
    }

    /// Asks `topic` (with an empty payload) for `poll`'s open round; the
    /// answer goes to `on_answer` unless the round is over first.
    /// `resource.status` is the answer the collectors that read it share,
    /// asked again only after the resource journal shows a change (see
    /// [`super::resource_status`]); any other topic is the round's own RPC.
    pub fn ask_for_round<R>(
        &self,
        poll: &PollLoop<R>,
        topic: &str,
        on_answer: impl FnMut(Result<String, Error>) + 'static,
    ) -> Result<(), Error> {
        if topic == resource_status::TOPIC {
            poll.hold(self.resource_status.ask(on_answer)?);
            Ok(())
        } else {
            poll.send(topic, "{}", on_answer)
        }
    }

    /// The nodes the resource journal's events have named since it began.
    pub fn resource_node_events(&self) -> resource_status::NodeEvents {
        self.resource_status.node_events()
    }

    /// The same, counting only the ranks of `ranks`.
    pub fn resource_node_events_in(&self, ranks: &IdSet) -> resource_status::NodeEvents {
        self.resource_status.node_events_in(ranks)
    }

    /// The same by rank, for the ranks an event named.
    pub fn resource_node_events_by_rank(&self) -> Vec<(u32, [u64; 6])> {
        self.resource_status.node_events_by_rank()
    }

    /// How the `resource.status` asks were answered so far.
    pub fn resource_status_asks(&self) -> ResourceStatusAsks {
        self.resource_status.counts()
    }

    /// User names by uid, as far as they are known yet (never waits).
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// The nested instances below this one, as the journal shows them.
    pub fn nested(&self) -> &Rc<NestedFeed> {
        &self.nested
    }

    /// Has `hook` run before every render, for state derived from what
    /// other collectors keep (the resources collector recounts the journal's
    /// allocated set, so that a job that runs is allocated in the same
    /// publish). The hook returns false once it is no longer wanted.
    /// `collector` names the hook in the publish times.
    pub fn before_publish(&self, collector: &'static str, hook: impl Fn() -> bool + 'static) {
        self.before_publish
            .borrow_mut()
            .push((collector, Box::new(hook)));
    }

    /// Changes the state inside a [`before_publish`](Self::before_publish)
    /// hook: the render under way includes the change.
    pub fn update_in_publish(&self, change: impl FnOnce(&mut State)) {
        change(&mut self.state.borrow_mut());
    }

    /// Records a successful update of `collector` that began at `started`,
    /// scheduling no publish: inside a [`before_publish`](Self::before_publish)
    /// hook, or where the caller schedules one.
    pub fn succeeded_in_publish(
        &self,
        collector: &str,
        started: Instant,
        change: impl FnOnce(&mut State),
    ) {
        let now = self.handle.now();
        self.update_in_publish(|state| {
            change(state);
            mark_succeeded(state, collector, now, started);
        });
    }

    /// Records that `collector` has nothing true to export, scheduling no
    /// publish (as [`succeeded_in_publish`](Self::succeeded_in_publish)).
    pub fn failed_in_publish(
        &self,
        collector: &str,
        why: &(impl std::fmt::Display + ?Sized),
        change: impl FnOnce(&mut State),
    ) {
        self.update_in_publish(|state| {
            change(state);
            if let Some(c) = state.collector_mut(collector) {
                c.up = false;
                c.last_error = Some(why.to_string());
            }
        });
    }

    /// Renders the state and hands it to the HTTP thread.
    pub fn publish_now(&self) {
        let started = Instant::now();
        let cpu_started = flux::thread_cpu_seconds();
        self.publish.disarm();
        self.last_publish.set(Some(self.handle.now()));
        let hooks = std::mem::take(&mut *self.before_publish.borrow_mut());
        let mut hook_times = Vec::with_capacity(hooks.len());
        let mut cpu_hooked = cpu_started;
        let kept: Vec<_> = hooks
            .into_iter()
            .filter(|(name, hook)| {
                let kept = hook();
                let now = flux::thread_cpu_seconds();
                if let Some(spent) = cpu_hooked.zip(now).map(|(a, b)| b - a) {
                    hook_times.push((*name, spent));
                }
                cpu_hooked = now;
                kept
            })
            .collect();
        self.before_publish.borrow_mut().splice(0..0, kept);
        let state = self.state.borrow();
        let exposition = (self.render)(&state, &mut self.rendered.borrow_mut());
        let cpu_rendered = flux::thread_cpu_seconds();
        self.shared
            .publish_snapshot(Snapshot::of(exposition), state.all_reported());
        let took = started.elapsed().as_secs_f64();
        let cpu_ended = flux::thread_cpu_seconds();
        let between = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| b - a);
        let mut times = self.publishes.borrow_mut();
        times.wall.push(took);
        times
            .cpu
            .push(between(cpu_started, cpu_ended).unwrap_or(took));
        if let Some(hooks) = between(cpu_started, cpu_hooked) {
            times.hooks.push(hooks);
        }
        for (name, spent) in hook_times {
            times.hook.entry(name).or_default().push(spent);
        }
        if let Some(snapshot) = between(cpu_rendered, cpu_ended) {
            times.snapshot.push(snapshot);
        }
    }

    /// Forgets the publish times so far.
    pub fn clear_publish_stats(&self) {
        *self.publishes.borrow_mut() = PublishTimes::default();
        self.rendered.borrow_mut().forget_spent();
    }

    /// How long the last publishes took the reactor thread: wall time,
    /// CPU time, and the CPU time of each part (the hooks, each
    /// collector's render, the snapshot).
    pub fn publish_stats(&self) -> (PublishStats, PublishStats, BTreeMap<String, PublishStats>) {
        let times = self.publishes.borrow();
        let mut parts: BTreeMap<String, PublishStats> = self
            .rendered
            .borrow()
            .spent()
            .map(|(name, stats)| (name.to_string(), stats))
            .collect();
        if times.wall.count() > 0 {
            parts.insert("hooks".into(), times.hooks.stats());
            parts.insert("snapshot".into(), times.snapshot.stats());
            for (name, hook) in &times.hook {
                parts.insert(format!("{name} hook"), hook.stats());
            }
        }
        (times.wall.stats(), times.cpu.stats(), parts)
    }

    /// Records a successful update of `collector` that began at `started`.
    pub fn succeeded(&self, collector: &str, started: Instant, change: impl FnOnce(&mut State)) {
        let now = self.handle.now();
        self.update(|state| {
            change(state);
            mark_succeeded(state, collector, now, started);
        });
    }

    /// Records a failed update; `change` drops whatever is no longer true.
    /// The first failure after a success is logged, naming the collector.
    pub fn failed(
        &self,
        collector: &str,
        error: &(impl std::fmt::Display + ?Sized),
        change: impl FnOnce(&mut State),
    ) {
        let first = self
            .state()
            .collectors
            .iter()
            .find(|c| c.name == collector)
            .is_none_or(|c| c.up || c.last_error.is_none());
        if first {
            self.handle.log(
                flux::Level::Warning,
                &format!("{collector} collector: {error}"),
            );
        }
        self.update(|state| {
            change(state);
            if let Some(c) = state.collector_mut(collector) {
                c.up = false;
                c.last_error = Some(error.to_string());
            }
        });
    }
}

fn mark_succeeded(state: &mut State, collector: &str, now: f64, started: Instant) {
    if let Some(c) = state.collector_mut(collector) {
        c.up = true;
        c.last_success = Some(now);
        c.duration = started.elapsed().as_secs_f64();
        c.updates += 1;
        c.last_error = None;
    }
}

/// How long a render of an update waits: `interval` after a quiet spell, so
/// that a change shows at once; while updates keep coming (the last render
/// less than `busy` ago), until `busy` after the last render. Times in
/// seconds; `since_last` is None before the first render.
fn publish_delay(interval: f64, busy: f64, since_last: Option<f64>) -> f64 {
    match since_last {
        Some(since) if since < busy => interval.max(busy - since),
        _ => interval,
    }
}

#[cfg(test)]
mod tests {
    use super::publish_delay;

    #[test]
    fn a_change_after_a_quiet_spell_renders_after_the_publish_interval() {
        assert_eq!(publish_delay(0.1, 1.0, None), 0.1);
        assert_eq!(publish_delay(0.1, 1.0, Some(5.0)), 0.1);
    }

    #[test]
    fn under_churn_renders_come_once_per_busy_interval() {
        // A render 0.25 s ago: the next comes 1 s after it.
        assert!((publish_delay(0.1, 1.0, Some(0.25)) - 0.75).abs() < 1e-9);
        // Never sooner than the publish interval...
        assert_eq!(publish_delay(0.1, 1.0, Some(0.95)), 0.1);
        // ... which wins when it is the longer.
        assert_eq!(publish_delay(2.0, 1.0, Some(0.5)), 2.0);
    }
}
