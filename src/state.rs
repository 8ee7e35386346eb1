//! Everything the collectors have gathered: the one input of rendering.

use crate::model::broker::{InstanceInfo, ProcessSample};
use crate::model::jobflow::JobFlowSummary;
use crate::model::jobs::JobStats;
use crate::model::queues::QueueStatus;
use crate::model::resources::ResourceSummary;

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
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    pub jobs: Option<JobStats>,
    pub resources: Option<ResourceSummary>,
    pub queues: Option<Vec<QueueStatus>>,
    pub instance: Option<InstanceInfo>,
    pub jobflow: Option<JobFlowSummary>,
    pub process: Vec<ProcessSample>,
    /// Export one series per drained node (opt-in: one series per node).
    pub per_node: bool,
    pub collectors: Vec<CollectorStatus>,
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
        match name {
            "jobs" => self.jobs = None,
            "resources" => self.resources = None,
            "queues" => self.queues = None,
            "broker" => {
                self.instance = None;
                self.process.clear();
            }
            "jobflow" => self.jobflow = None,
            _ => {}
        }
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
