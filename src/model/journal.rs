//! The job-manager journal as the models read it: the fields of an event's
//! context, and the record of one active job (its owner, project, phase
//! and allocated nodes). The job-flow counters, the roster and the usage
//! tallies build on these; this file builds on none of them.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::idset::IdSet;

/// The fields of an event's context (RFC 21) that the models read, read
/// once per event for all of them. Everything else in it (Fluxion's
/// annotations on `alloc`, an exception's note...) is skipped without being
/// stored: this runs for every event of every job, inside the broker.
#[derive(Debug, Default, Deserialize)]
pub struct EventContext<'a> {
    /// `submit`, `exception`, `urgency`.
    pub userid: Option<u64>,
    /// `submit`, `urgency`.
    pub urgency: Option<i64>,
    /// `exception`: its type and severity (0 is fatal).
    #[serde(rename = "type", borrow)]
    pub kind: Option<Cow<'a, str>>,
    pub severity: Option<i64>,
    /// `finish`: the wait status.
    pub status: Option<i64>,
    /// `alloc`: resources that bypassed the scheduler.
    pub bypass: Option<bool>,
    /// `jobspec-update`: a move to another queue.
    #[serde(rename = "attributes.system.queue", borrow)]
    pub queue: Option<Cow<'a, str>>,
    /// `priority`: the priority the job now has (0: held by the priority
    /// plugin, as `flux jobs` shows "priority-hold").
    pub priority: Option<i64>,
    /// `dependency-add`, `dependency-remove`: which dependency.
    #[serde(borrow)]
    pub description: Option<Cow<'a, str>>,
    /// `annotations`: the job's annotations as they now are (None: none
    /// are left).
    #[serde(borrow)]
    pub annotations: Option<Annotations<'a>>,
}

/// The part of a job's annotations (RFC 27) the models read: what the
/// scheduler says of a pending job.
#[derive(Debug, Default, Deserialize)]
pub struct Annotations<'a> {
    #[serde(borrow)]
    pub sched: Option<SchedAnnotations<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SchedAnnotations<'a> {
    /// Why the scheduler has not started the job, in its own words.
    #[serde(borrow)]
    pub reason_pending: Option<Cow<'a, str>>,
    /// When the scheduler expects to start the job (seconds since the
    /// epoch).
    pub t_estimate: Option<f64>,
}

impl<'a> EventContext<'a> {
    /// An event's context; an absent or unreadable one reads as empty, as
    /// flux-core itself never sends one.
    pub fn of(context: Option<&'a RawValue>) -> EventContext<'a> {
        context
            .and_then(|c| serde_json::from_str(c.get()).ok())
            .unwrap_or_default()
    }

    pub fn uid(&self) -> Option<u32> {
        self.userid.and_then(|u| u32::try_from(u).ok())
    }

    /// A fatal exception's context.
    pub fn is_fatal(&self) -> bool {
        self.severity == Some(0)
    }
}

/// A job's state as `flux jobs` filters count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    Pending,
    Running,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Pending => "pending",
            Phase::Running => "running",
        }
    }
}

/// One node of a job's allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobNode {
    pub rank: u32,
    /// From the job's R `nodelist`; None where R has none (then the rank
    /// alone names the node).
    pub host: Option<Arc<str>>,
    pub cores: u32,
    pub gpus: IdSet,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterJob {
    pub uid: Option<u32>,
    /// Jobspec `system.project`, else `system.bank`.
    pub project: Option<Arc<str>>,
    /// Jobspec `system.queue`; None for the anonymous queue.
    pub queue: Option<Arc<str>>,
    pub phase: Phase,
    /// From `alloc` on, where its R could be read.
    pub nodes: Option<Arc<[JobNode]>>,
}
