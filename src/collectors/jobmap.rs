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
//! HTTP thread when a scrape first asks for it ([`Render::Later`]); the
//! reactor thread only takes shared references to each job's nodes.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use super::roster::{self, Follower, RosterReader};
use super::{Collector, Context, Render, Settings, Spec};
use crate::exposition::RenderLater;
use crate::flux::{Error, Level, Timer};
use crate::model::nested::f58;
use crate::model::roster::{JobNode, Phase};
use crate::names::Names;
use crate::render::Family;
use crate::state::{Section, State};

pub const NAME: &str = "jobmap";
pub const SECTION: Section<Arc<JobMap>> = Section::new(NAME);

pub const SPEC: Spec = Spec {
    name: NAME,
    on_by_default: false,
    options: &[],
    start,
    restart_needed: |_, _| false,
    render: Render::Later(take),
    needs: &["jobflow"],
};

/// One running job, as mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedJob {
    pub jobid: Arc<str>,
    pub user: Arc<str>,
    pub nodes: Arc<[JobNode]>,
}

/// Every running job with its nodes, in job ID order (submission order).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct JobMap {
    pub jobs: Vec<MappedJob>,
}

struct Inner {
    ctx: Rc<Context>,
    roster: RosterReader,
    names: Names,
    /// The roster generation and names version last mapped from.
    mapped: Cell<Option<(u64, u64)>>,
    /// Job IDs in F58 and user labels, made once per job and user.
    jobids: RefCell<HashMap<i64, Arc<str>>>,
    _timer: RefCell<Option<Timer>>,
}

fn start(ctx: Rc<Context>, settings: &Settings) -> Result<Box<dyn Collector>, Error> {
    let inner = Rc::new(Inner {
        roster: ctx.roster_reader(),
        names: ctx.names().clone(),
        ctx,
        mapped: Cell::new(None),
        jobids: RefCell::new(HashMap::new()),
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
        self.mapped.set(key);
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
        let roster = self.roster.borrow();
        let Some((_, jobs)) = roster.current() else {
            drop(roster);
            return self
                .ctx
                .failed_in_publish(NAME, roster::NOT_CURRENT, |state| state.clear(SECTION));
        };
        let mut jobids = self.jobids.borrow_mut();
        jobids.retain(|id, _| jobs.contains_key(id));
        let mut users: HashMap<Option<u32>, Arc<str>> = HashMap::new();
        let mut running: Vec<(i64, MappedJob)> = jobs
            .iter()
            .filter(|(_, job)| job.phase == Phase::Running)
            .filter_map(|(&id, job)| {
                let nodes = Arc::clone(job.nodes.as_ref()?);
                let jobid = Arc::clone(
                    jobids
                        .entry(id)
                        .or_insert_with(|| Arc::from(f58(id as u64))),
                );
                let user = Arc::clone(users.entry(job.uid).or_insert_with(|| {
                    Arc::from(
                        job.uid
                            .map_or_else(|| "unknown".into(), |u| self.names.label(u)),
                    )
                }));
                Some((id, MappedJob { jobid, user, nodes }))
            })
            .collect();
        drop(roster);
        running.sort_unstable_by_key(|(id, _)| *id);
        let map = JobMap {
            jobs: running.into_iter().map(|(_, job)| job).collect(),
        };
        self.ctx.succeeded_in_publish(NAME, started, |state| {
            // An unchanged map keeps its rendered text.
            if state.get(SECTION).map(|m| &**m) != Some(&map) {
                state.set(SECTION, Arc::new(map));
            }
        });
    }
}

/// What the HTTP thread renders the map from: the map itself, shared.
fn take(state: &State) -> Option<RenderLater> {
    let map = Arc::clone(state.get(SECTION)?);
    Some(Box::new(move |out: &mut String| render(&map, out)))
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

pub fn render(map: &JobMap, out: &mut String) {
    let mut scratch = String::new();
    let mut f = Family::gauge(
        out,
        "flux_job_node_info",
        "A node of a running job; always 1. Join on node with node_exporter's series (relabelled to the host name) to see a job's nodes.",
    );
    for job in &map.jobs {
        for node in job.nodes.iter() {
            let name = node_label(node, &mut scratch);
            f.sample(
                &[("jobid", &job.jobid), ("user", &job.user), ("node", name)],
                1.0,
            );
        }
    }
    let mut f = Family::gauge(
        out,
        "flux_job_gpu_info",
        "A GPU of a running job, labelled as dcgm-exporter labels it (Hostname, gpu); always 1.",
    );
    let mut gpu = String::new();
    for job in &map.jobs {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::idset::IdSet;

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
            jobs: vec![MappedJob {
                jobid: Arc::from("ƒ2u7\"x"),
                user: Arc::from("alice"),
                nodes,
            }],
        };
        let mut out = String::new();
        render(&map, &mut out);
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
}
