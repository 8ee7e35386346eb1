//! The job map (opt-in): which nodes and which GPUs each running job holds,
//! as info series that join with node_exporter's and dcgm-exporter's. From
//! the roster the jobflow collector keeps from the job-manager journal, so
//! nothing runs on the nodes to publish it.
//!
//! - `flux_job_node_info{jobid,user,node}`: one per node of a running job;
//! - `flux_job_gpu_info{jobid,user,Hostname,gpu}`: one per GPU, labelled as
//!   dcgm-exporter labels its series, so that
//!   `DCGM_FI_DEV_GPU_UTIL * on(Hostname, gpu) group_left(jobid, user)
//!   flux_job_gpu_info` is GPU utilization by job.
//!
//! Flux numbers a node's GPUs 0..n-1 in hwloc's order of their PCI
//! devices, and its shell sets `CUDA_DEVICE_ORDER=PCI_BUS_ID` with
//! `CUDA_VISIBLE_DEVICES` from those numbers; NVML, and so DCGM, numbers
//! GPUs in PCI bus order too. The README says when they differ.
//!
//! The series grow with the running jobs, so their text is made on the
//! HTTP thread when a scrape first asks for it ([`Render::Later`]). The
//! reactor thread keeps the map as a persistent ordered map, changed only
//! where the roster's jobs changed: its cost follows the jobs that started
//! and ended, not the jobs running (at 60,000 active jobs, mapping them all
//! again took 14-30 ms; BENCHMARKS.md, "The largest system"), and the HTTP
//! thread's snapshot is a clone that shares it.

use rustc_hash::FxHashMap;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use imbl::OrdMap;

use super::{About, Collector, Context, Render, Settings, Spec};
use crate::exposition::RenderLater;
use crate::model::nested::f58;
use crate::model::roster::{Changes, JobNode, Phase, RosterJob};
use crate::names::Names;
use crate::reactor::roster::{self, Follower, RosterReader};
use crate::render::{Doc, Family, Rendered};
use crate::state::{Section, State};
use flux::{Error, Level, Timer};

pub const NAME: &str = "jobmap";
pub const SECTION: Section<Arc<JobMap>> = Section::new(NAME);

pub const SPEC: Spec = Spec {
    summary: "Which nodes and which GPUs each running job holds, as info series that join with node_exporter's and dcgm-exporter's.",
    about: About {
        name: NAME,
        on_by_default: false,
        options: &[],
        needs: &["jobflow"],
    },
    start,
    restart_needed: |_, _| false,
    render: Render::Later(take),
    reads: &[],
    families: FAMILIES,
};

/// One running job, as mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedJob {
    pub jobid: Arc<str>,
    pub user: Arc<str>,
    pub nodes: Arc<[JobNode]>,
}

/// Every running job with its nodes, by job ID (submission order).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct JobMap {
    pub jobs: OrdMap<i64, MappedJob>,
}

/// Keeps the job map of a roster from what changed in it.
#[derive(Debug, Default)]
pub struct Mapper {
    map: JobMap,
    /// User labels, made once per uid.
    users: HashMap<Option<u32>, Arc<str>>,
}

impl Mapper {
    /// Brings the map up to `jobs`, of which `changes` changed since the
    /// last update (all of them where `changes.all`); `label` names a uid.
    /// False where the map is as it was.
    pub fn update(
        &mut self,
        jobs: &FxHashMap<i64, RosterJob>,
        changes: &Changes,
        label: &dyn Fn(u32) -> String,
    ) -> bool {
        if changes.all {
            self.users.clear();
            let mut fresh = OrdMap::new();
            for (&id, job) in jobs {
                if let Some(mapped) = self.mapped(id, job, label) {
                    fresh.insert(id, mapped);
                }
            }
            let changed = fresh != self.map.jobs;
            self.map.jobs = fresh;
            return changed;
        }
        let mut changed = false;
        for &id in &changes.jobs {
            let now = jobs.get(&id).and_then(|job| self.mapped(id, job, label));
            changed |= match now {
                Some(mapped) => {
                    self.map.jobs.insert(id, mapped);
                    true
                }
                None => self.map.jobs.remove(&id).is_some(),
            };
        }
        changed
    }

    /// The map as it stands: shares its entries with the mapper's.
    pub fn map(&self) -> JobMap {
        self.map.clone()
    }

    fn mapped(
        &mut self,
        id: i64,
        job: &RosterJob,
        label: &dyn Fn(u32) -> String,
    ) -> Option<MappedJob> {
        if job.phase != Phase::Running {
            return None;
        }
        let nodes = Arc::clone(job.nodes.as_ref()?);
        let user = Arc::clone(
            self.users
                .entry(job.uid)
                .or_insert_with(|| Arc::from(job.uid.map_or_else(|| "unknown".into(), label))),
        );
        Some(MappedJob {
            jobid: Arc::from(f58(id as u64)),
            user,
            nodes,
        })
    }
}

struct Inner {
    ctx: Rc<Context>,
    roster: RosterReader,
    names: Names,
    /// The roster generation and names version last mapped from.
    mapped: Cell<Option<(u64, u64)>>,
    mapper: RefCell<Mapper>,
    _timer: RefCell<Option<Timer>>,
}

fn start(ctx: Rc<Context>, settings: &Settings) -> Result<Box<dyn Collector>, Error> {
    let inner = Rc::new(Inner {
        roster: ctx.roster_reader().watching_changes(),
        names: ctx.names().clone(),
        ctx,
        mapped: Cell::new(None),
        mapper: RefCell::new(Mapper::default()),
        _timer: RefCell::new(None),
    });
    let timer = roster::follow(&inner, settings.poll_interval)?;
    *inner._timer.borrow_mut() = Some(timer);
    Ok(Box::new(inner))
}

impl Collector for Inner {}

impl Follower for Inner {
    fn ctx(&self) -> &Context {
        &self.ctx
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn stale(&self) -> bool {
        let key = self.key();
        key.is_none() || key != self.mapped.get()
    }

    fn refresh(&self) {
        self.remap();
    }
}

impl Inner {
    fn key(&self) -> Option<(u64, u64)> {
        let roster = self.roster.borrow();
        roster
            .current()
            .map(|(generation, _)| (generation, self.names.version()))
    }

    fn remap(&self) {
        let started = Instant::now();
        let key = self.key();
        if key.is_some() && key == self.mapped.get() {
            return;
        }
        let last = self.mapped.replace(key);
        // Each job whose R could not be read is said once; the rest of the
        // map goes on without it.
        for (id, why) in self.roster.borrow_mut().take_unreadable() {
            self.ctx.handle.log(
                Level::Warning,
                &format!(
                    "{NAME} collector: job {} left out of the job map: {why}",
                    f58(id as u64)
                ),
            );
        }
        let mut roster = self.roster.borrow_mut();
        // Changes are taken only from a current roster, so that none is
        // lost while the journal's backlog is read.
        let taken = roster.current().is_some().then(|| roster.take_changes());
        let (Some(mut changes), Some((_, jobs))) = (taken, roster.current()) else {
            drop(roster);
            return self
                .ctx
                .failed_in_publish(NAME, roster::NOT_CURRENT, |state| state.clear(SECTION));
        };
        // New names relabel every job of their users: map them all again.
        changes.all |= last.map(|(_, names)| names) != key.map(|(_, names)| names);
        let mut mapper = self.mapper.borrow_mut();
        let changed = mapper.update(jobs, &changes, &|uid| self.names.label(uid));
        drop(roster);
        let map = changed.then(|| mapper.map());
        self.ctx.succeeded_in_publish(NAME, started, |state| {
            // An unchanged map keeps its rendered text.
            match map {
                Some(map) => state.set(SECTION, Arc::new(map)),
                None if state.get(SECTION).is_none() => state.set(SECTION, Arc::new(mapper.map())),
                None => {}
            }
        });
    }
}

/// What the HTTP thread renders the map from: the map itself, shared.
fn take(state: &State) -> Option<RenderLater> {
    let map = Arc::clone(state.get(SECTION)?);
    Some(Box::new(move |out: &mut Rendered| render(&map, out)))
}

/// The node label: the host name, or `rank N` where R named no hosts.
fn node_label<'a>(node: &'a JobNode, scratch: &'a mut String) -> &'a str {
    match &node.host {
        Some(host) => host,
        None => {
            scratch.clear();
            let _ = write!(scratch, "rank{}", node.rank);
            scratch
        }
    }
}

pub fn render(map: &JobMap, out: &mut Rendered) {
    let mut scratch = String::new();
    let mut f = Family::of(out, &JOB_NODE_INFO);
    for job in map.jobs.values() {
        for node in job.nodes.iter() {
            let name = node_label(node, &mut scratch);
            f.sample(
                &[("jobid", &job.jobid), ("user", &job.user), ("node", name)],
                1.0,
            );
        }
    }
    let mut f = Family::of(out, &JOB_GPU_INFO);
    let mut gpu = String::new();
    for job in map.jobs.values() {
        for node in job.nodes.iter() {
            for id in node.gpus.iter() {
                gpu.clear();
                let _ = write!(gpu, "{id}");
                let name = node_label(node, &mut scratch);
                f.sample(
                    &[
                        ("jobid", &job.jobid),
                        ("user", &job.user),
                        ("Hostname", name),
                        ("gpu", &gpu),
                    ],
                    1.0,
                );
            }
        }
    }
}

/// The families this collector writes.
pub const FAMILIES: &[Doc] = &[JOB_NODE_INFO, JOB_GPU_INFO];

const JOB_NODE_INFO: Doc = Doc::info(
    "flux_job_node_info",
    "A node of a running job; always 1. Join on node with node_exporter's series (relabelled to the host name) to see a job's nodes.",
    &["jobid", "user", "node"],
);

const JOB_GPU_INFO: Doc = Doc::info(
    "flux_job_gpu_info",
    "A GPU of a running job, labelled as dcgm-exporter labels it (Hostname, gpu); always 1.",
    &["jobid", "user", "Hostname", "gpu"],
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::idset::IdSet;
    use crate::model::journal::EventContext;
    use crate::model::resources::JobR;

    #[test]
    fn each_node_and_gpu_of_a_job_is_one_series_with_dcgm_labels() {
        let nodes: Arc<[JobNode]> = vec![
            JobNode {
                rank: 3,
                host: Some(Arc::from("node3")),
                cores: 4,
                gpus: IdSet::parse("0,2").unwrap(),
            },
            JobNode {
                rank: 4,
                host: None,
                cores: 4,
                gpus: IdSet::new(),
            },
        ]
        .into();
        let map = JobMap {
            jobs: OrdMap::unit(
                1,
                MappedJob {
                    jobid: Arc::from("ƒ2u7\"x"),
                    user: Arc::from("alice"),
                    nodes,
                },
            ),
        };
        let mut rendered = Rendered::default();
        render(&map, &mut rendered);
        let out = rendered.text();
        assert!(
            out.contains(
                "flux_job_node_info{jobid=\"ƒ2u7\\\"x\",user=\"alice\",node=\"node3\"} 1\n"
            ),
            "{out}"
        );
        assert!(out.contains("node=\"rank4\"} 1\n"), "{out}");
        assert!(out.contains("flux_job_gpu_info{jobid=\"ƒ2u7\\\"x\",user=\"alice\",Hostname=\"node3\",gpu=\"2\"} 1\n"), "{out}");
        assert_eq!(out.matches("flux_job_gpu_info{").count(), 2);
    }

    /// The map a mapper made from scratch gives for `roster`.
    fn from_scratch(roster: &mut crate::model::roster::Roster) -> JobMap {
        let (_, jobs) = roster.current().unwrap();
        let everything = Changes {
            all: true,
            jobs: Default::default(),
        };
        let mut mapper = Mapper::default();
        mapper.update(jobs, &everything, &|uid| format!("u{uid}"));
        mapper.map()
    }

    #[test]
    fn the_map_kept_from_changes_is_the_map_made_from_scratch() {
        use serde_json::value::RawValue;
        let r = |ranks: &str| {
            let raw = RawValue::from_string(format!(
                r#"{{"version":1,"execution":{{"R_lite":[{{"rank":"{ranks}","children":{{"core":"0"}}}}],"nodelist":["n[{ranks}]"]}}}}"#
            ))
            .unwrap();
            JobR::read(&raw).unwrap()
        };
        let mut roster = crate::model::roster::Roster::default();
        roster.begin_backlog();
        roster.submit(1, Some(7), None, None);
        roster.event(1, "alloc", &EventContext::default(), Some(Ok(&r("0-1"))));
        roster.end_backlog();
        roster.watch_changes();
        let label = |uid: u32| format!("u{uid}");
        let mut mapper = Mapper::default();
        let mut step = |roster: &mut crate::model::roster::Roster| {
            let changes = roster.take_changes();
            let changed = mapper.update(roster.current().unwrap().1, &changes, &label);
            (changed, mapper.map())
        };
        let (changed, map) = step(&mut roster);
        assert!(changed);
        assert_eq!(map, from_scratch(&mut roster));
        roster.submit(2, Some(8), None, None);
        // A pending job is not on the map, and the map did not change.
        assert!(!step(&mut roster).0);
        roster.event(2, "alloc", &EventContext::default(), Some(Ok(&r("3"))));
        roster.submit(3, Some(7), None, None);
        roster.event(3, "alloc", &EventContext::default(), Some(Ok(&r("4"))));
        roster.event(1, "clean", &EventContext::default(), None);
        let (changed, map) = step(&mut roster);
        assert!(changed);
        assert_eq!(map, from_scratch(&mut roster));
        let ids: Vec<i64> = map.jobs.keys().copied().collect();
        assert_eq!(ids, [2, 3]);
        assert_eq!(&*map.jobs[&2].user, "u8");
        assert_eq!(map.jobs[&3].nodes[0].host.as_deref(), Some("n4"));
    }
}
