//! Job flow from the job-manager journal (`job-manager.events-journal`):
//! monotonic counters, wait and run-time histograms, and the demand of
//! pending jobs, per queue.
//!
//! Only active jobs are kept; a job is forgotten at its `clean` event, so
//! memory follows the number of active jobs, not the number ever seen.
//! Events are counted only when newer than a watermark: the time the module
//! subscribed, then the newest event counted. A backlog replayed after a
//! resubscription therefore counts what happened while the stream was down,
//! and nothing twice.

use super::error::ParseError;
use rustc_hash::{FxHashMap, FxHashSet};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::allocations::Allocations;
use super::journal::{Annotations, EventContext};
use super::live::{Live, Sums};
use super::nested::Nested;
use super::resources::JobR;
use super::roster::Roster;

/// Default `flux_jobs_queue_wait_seconds` bucket bounds: from sub-second
/// scheduling to a day in the queue.
pub const DEFAULT_WAIT_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0,
];
/// Default `flux_jobs_run_seconds` bucket bounds: from seconds to two days.
pub const DEFAULT_RUN_BUCKETS: &[f64] = &[
    1.0, 10.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0, 86400.0, 172800.0,
];
/// The pending states a job passes through, in order, as `flux jobs` times
/// them: DEPEND from `t_depend` (its `validate`) to `t_priority` (its
/// `depend`), PRIORITY from there to `t_sched` (its first `priority`), and
/// SCHED from there to `t_run` (its `alloc`).
pub const WAIT_PHASES: [&str; 3] = ["dependency", "priority", "scheduler"];

/// Distinct exception types kept per queue; others count as "other", since
/// `flux job raise --type` accepts any word.
pub const MAX_EXCEPTION_TYPES: usize = 16;

pub const RESULTS: [&str; 4] = ["completed", "failed", "canceled", "timeout"];

/// Why a pending job waits, one reason each, in the order flux acts on
/// them: held (urgency 0, or priority 0 from the priority plugin), a
/// dependency ([`ACCOUNTING_LIMITS`] by name, `begin-time`, any other as
/// `dependency`), not yet prioritised (`priority`), its queue stopped, and
/// last the scheduler: its own `sched.reason_pending` where it gives one,
/// else `resources`. These five are always exported; a dependency's own
/// name and a scheduler's reason, while any job has them.
pub const PENDING_REASONS: [&str; 5] = [
    "held",
    "dependency",
    "priority",
    "queue-stopped",
    "resources",
];

/// flux-accounting's dependencies (`mf_priority.so`, v0.60): a job over
/// one of its limits is held with a dependency of that name until it is
/// under again.
pub const ACCOUNTING_LIMITS: [&str; 8] = [
    "max-running-jobs-user-limit",
    "max-resources-user-limit",
    "max-sched-jobs-user-limit",
    "max-run-jobs-queue",
    "max-resources-queue",
    "max-sched-jobs-queue-limit",
    "max-sched-nodes-queue-limit",
    "max-sched-cores-queue-limit",
];

/// flux-core's own dependency schemes (the part of a dependency's
/// description before `=`): they count as `dependency` without remark.
/// Any other is counted there too, and named once in the log.
const KNOWN_DEPENDENCY_SCHEMES: [&str; 7] = [
    "after-start",
    "after-finish",
    "after-success",
    "after-failure",
    "after-except",
    "singleton",
    "begin-time",
];

/// The `job-list.list` request whose answer [`JobFlow::recall_annotations`]
/// reads: every pending job (DEPEND, PRIORITY, SCHED), with its annotations.
pub const RECALL_ANNOTATIONS: &str =
    r#"{"max_entries":0,"attrs":["annotations"],"constraint":{"states":[14]}}"#;

/// Distinct scheduler reasons kept as labels; later ones are counted as
/// `other`, as is one that would pass for a reason of flux's own.
pub const MAX_SCHEDULER_REASONS: usize = 8;

/// Unknown dependency schemes named in the log, at most.
const MAX_UNKNOWN_DEPENDENCIES: usize = 16;

/// The reason a dependency gives, by its description.
fn dependency_reason(description: &str) -> &'static str {
    if let Some(name) = ACCOUNTING_LIMITS.iter().find(|&&n| n == description) {
        name
    } else if description.starts_with("begin-time") {
        "begin-time"
    } else {
        "dependency"
    }
}

pub const PENDING_STATUSES: [&str; 3] = ["eligible", "held", "blocked"];

#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub bounds: Vec<f64>,
    /// Observations per bucket (not cumulative); one more than bounds, the
    /// last for +Inf.
    pub counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    pub fn new(bounds: &[f64]) -> Histogram {
        Histogram {
            bounds: bounds.to_vec(),
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, v: f64) {
        let v = v.max(0.0);
        let i = self.bounds.partition_point(|&b| b < v);
        self.counts[i] += 1;
        self.sum += v;
        self.count += 1;
    }

    /// (upper bound, cumulative count) pairs, +Inf last.
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        let bounds = self.bounds.iter().copied().chain([f64::INFINITY]);
        bounds.zip(self.counts.iter().scan(0, |acc, c| {
            *acc += c;
            Some(*acc)
        }))
    }
}

/// Parses bucket bounds: increasing positive numbers, comma separated.
pub fn parse_buckets(value: &str) -> Result<Vec<f64>, ParseError> {
    let mut out = Vec::new();
    for part in value.split(',') {
        let v: f64 = part
            .trim()
            .parse()
            .map_err(|_| ParseError::invalid(format!("'{part}' is not a number")))?;
        if !v.is_finite() || v <= 0.0 {
            return Err(ParseError::invalid(format!("{v} is not a positive bound")));
        }
        if out.last().is_some_and(|&last| v <= last) {
            return Err(ParseError::invalid("bounds must increase"));
        }
        out.push(v);
    }
    Ok(out)
}

/// What a queue has seen since the module loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueFlow {
    pub submitted: u64,
    pub started: u64,
    pub finished: BTreeMap<&'static str, u64>,
    pub exceptions: BTreeMap<String, u64>,
    pub wait: Histogram,
    /// The time in each pending state, where the journal carries the
    /// events that time them.
    pub phases: Option<Box<WaitPhases>>,
    pub run: BTreeMap<&'static str, Histogram>,
    /// What jobs used, from their job shells' usage records.
    pub usage: UsageFlow,
}

/// Jobs' time in each of [`WAIT_PHASES`].
#[derive(Debug, Clone, PartialEq)]
pub struct WaitPhases {
    /// Jobs that started, observed at their allocation.
    pub started: [Histogram; 3],
    /// Jobs that left pending without starting (a fatal exception before
    /// allocation), each state they entered up to that exception.
    pub unstarted: [Histogram; 3],
}

/// `flux_jobs_cpu_efficiency_ratio` bucket bounds: CPU time over the core
/// time allocated (over 1 where tasks use more cores than allocated).
pub const EFFICIENCY_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.5];
/// Peak memory over the memory share: the top buckets are the jobs near
/// or past their share.
pub const MEMORY_SHARE_BUCKETS: &[f64] = &[0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.25];
/// `flux_jobs_peak_memory_bytes` bucket bounds: 256 MiB to 1 TiB, by fours.
pub const PEAK_MEMORY_BUCKETS: &[f64] = &[
    268_435_456.0,
    1_073_741_824.0,
    4_294_967_296.0,
    17_179_869_184.0,
    68_719_476_736.0,
    274_877_906_944.0,
    1_099_511_627_776.0,
];

/// What the jobs of one key used, as their job shells recorded it when
/// their tasks ended (the prometheus shell plugin's `prometheus.usage`).
#[derive(Debug, Clone, PartialEq)]
pub struct UsageFlow {
    pub records: u64,
    pub cpu_seconds: f64,
    pub core_seconds: f64,
    pub gpu_seconds: f64,
    /// Memory held over time, where the record says.
    pub memory_byte_seconds: f64,
    /// GPU-seconds busy, and measured (NVML), where the record says.
    pub gpu_busy_seconds: f64,
    pub gpu_measured_seconds: f64,
    pub efficiency: Histogram,
    pub peak_memory: Histogram,
    /// Peak memory over the memory share, per job that knows its share.
    pub memory_share: Histogram,
    /// GPU busy over measured time, per job whose GPUs were measured.
    pub gpu_utilization: Histogram,
}

impl Default for UsageFlow {
    fn default() -> Self {
        UsageFlow {
            records: 0,
            cpu_seconds: 0.0,
            core_seconds: 0.0,
            gpu_seconds: 0.0,
            memory_byte_seconds: 0.0,
            gpu_busy_seconds: 0.0,
            gpu_measured_seconds: 0.0,
            efficiency: Histogram::new(EFFICIENCY_BUCKETS),
            peak_memory: Histogram::new(PEAK_MEMORY_BUCKETS),
            memory_share: Histogram::new(MEMORY_SHARE_BUCKETS),
            gpu_utilization: Histogram::new(EFFICIENCY_BUCKETS),
        }
    }
}

/// Why a usage record was not counted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageRefused {
    #[error("job {0} is not an active job of this instance")]
    NotActive(i64),
    #[error("user {sender} does not own job {id}")]
    NotOwner { id: i64, sender: u32 },
    #[error("job {0} has a usage record already")]
    Recorded(i64),
}

/// Pending jobs of one kind in one queue, and what they ask for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Demand {
    pub jobs: u64,
    pub nodes: u64,
    pub cores: u64,
    pub gpus: u64,
    pub oldest_submit: Option<f64>,
    pub largest_nodes: u64,
}

/// What the series of a job are labelled with: its queue ("" for the
/// anonymous queue) and, where enabled, its user and project ("" when not).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowKey {
    pub queue: String,
    pub user: String,
    pub project: String,
}

/// Opt-in user and project labels, each with a cap on distinct values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelOptions {
    pub user: bool,
    pub project: bool,
    /// Distinct values kept per label; later ones are "other".
    pub limit: usize,
}

pub const DEFAULT_LABEL_LIMIT: usize = 100;

impl Default for LabelOptions {
    fn default() -> Self {
        LabelOptions {
            user: false,
            project: false,
            limit: DEFAULT_LABEL_LIMIT,
        }
    }
}

/// Values of one label seen so far, up to the cap.
#[derive(Debug, Clone, Default)]
struct Capped {
    seen: HashSet<String>,
}

impl Capped {
    fn admit(&mut self, value: String, limit: usize) -> String {
        if self.seen.contains(&value) {
            value
        } else if self.seen.len() < limit {
            self.seen.insert(value.clone());
            value
        } else {
            "other".to_string()
        }
    }
}

/// What the running jobs of one key use now, from the samples of the
/// module on each broker rank ([`Live`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LiveFlow {
    /// Running jobs with a current sample from at least one node.
    pub jobs: u64,
    /// Cores' worth of CPU they used over the last sampling period, and
    /// the cores allocated on the nodes that measured a rate.
    pub cpu_cores: f64,
    pub allocated_cores: u64,
    /// Their resident memory now.
    pub memory_bytes: u64,
    /// GPUs' worth of busy time over the last sampling period, the GPUs
    /// that measured it (NVML), and the memory in use on them.
    pub gpus_busy: f64,
    pub measured_gpus: u64,
    pub gpu_memory_bytes: u64,
}

impl From<&Sums> for LiveFlow {
    fn from(s: &Sums) -> LiveFlow {
        LiveFlow {
            jobs: s.jobs,
            cpu_cores: s.cpu_cores(),
            allocated_cores: s.allocated_cores,
            memory_bytes: s.memory_bytes,
            gpus_busy: s.gpus_busy(),
            measured_gpus: s.measured_gpus,
            gpu_memory_bytes: s.gpu_memory_bytes,
        }
    }
}

/// One running job's figures now, for the opt-in per-job series.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveJobRow {
    pub id: i64,
    pub key: FlowKey,
    pub flow: LiveFlow,
}

/// Everything exported, per key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobFlowSummary {
    pub queues: BTreeMap<FlowKey, QueueFlow>,
    /// The journal carries the events that time each pending state, so
    /// the queues' `phases` are measured.
    pub wait_phases: bool,
    /// Usage records refused since the module loaded.
    pub usage_refused: u64,
    /// What running jobs use now, by key; sampling ranks with a current
    /// batch; live samples refused since the module loaded.
    pub live: BTreeMap<FlowKey, LiveFlow>,
    pub live_ranks: u64,
    pub live_refused: u64,
    /// Messages of samples taken (a rank's batch, or a bundle of the
    /// batches of a part of the overlay tree), and the batches in them.
    pub live_messages: u64,
    pub live_batches: u64,
    /// CPU seconds the reactor thread spent taking them.
    pub live_cpu_seconds: f64,
    /// The running jobs with the most allocated cores idle, at most
    /// [`JobFlow::show_live_jobs`] of them.
    pub live_jobs: Vec<LiveJobRow>,
    /// (key, status) → demand, status one of [`PENDING_STATUSES`].
    pub demand: BTreeMap<(FlowKey, &'static str), Demand>,
    /// Pending jobs by reason, where the journal read carries what tells
    /// them apart ([`JobFlow::explain_pending`]).
    pub reasons: Option<PendingReasons>,
}

/// Pending jobs by key and reason, and the scheduler's start estimates.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PendingReasons {
    /// key → reason → jobs. Every key with pending jobs and every known
    /// queue has the five [`PENDING_REASONS`], zero or not.
    pub jobs: BTreeMap<FlowKey, BTreeMap<String, ReasonCount>>,
    /// The keys with pending jobs the scheduler gave a start estimate.
    pub estimates: BTreeMap<FlowKey, Estimate>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReasonCount {
    pub jobs: u64,
    /// The reason is the scheduler's (`resources` or its own): a stopped
    /// queue comes first.
    pub scheduler: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Estimate {
    pub jobs: u64,
    /// The earliest estimated start (seconds since the epoch).
    pub earliest: f64,
}

impl PendingReasons {
    /// One key's jobs by reason as exported: with its queue stopped, the
    /// jobs that wait on the scheduler wait on the queue instead.
    pub fn of_key(counts: &BTreeMap<String, ReasonCount>, stopped: bool) -> Vec<(&str, u64)> {
        let mut out = Vec::with_capacity(counts.len());
        let mut waiting_on_queue = 0;
        for (reason, count) in counts {
            if reason == "queue-stopped" {
                continue;
            }
            if stopped && count.scheduler {
                waiting_on_queue += count.jobs;
                if reason == "resources" {
                    out.push((reason.as_str(), 0));
                }
            } else {
                out.push((reason.as_str(), count.jobs));
            }
        }
        out.push(("queue-stopped", waiting_on_queue));
        out
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Request {
    pub nodes: u64,
    pub cores: u64,
    pub gpus: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not yet allocated: blocked while it has dependencies outstanding.
    Waiting,
    /// Allocated, or ended by an exception: no longer pending.
    Gone,
}

#[derive(Debug, Clone)]
struct ActiveJob {
    key: FlowKey,
    submit: f64,
    /// When the job entered RUN: its `alloc` (RFC 21), as job-list's `t_run`.
    run: Option<f64>,
    /// When the job entered CLEANUP: its first fatal exception or its
    /// `finish`, as job-list's `t_cleanup`.
    cleanup: Option<f64>,
    /// The `finish` event's wait status.
    status: Option<i64>,
    fatal: Option<String>,
    urgency: i64,
    phase: Phase,
    /// When the job entered DEPEND, PRIORITY and SCHED, each the first
    /// time, as job-list's `t_depend`, `t_priority` and `t_sched` (0: not
    /// yet, as there).
    entered: [f64; 3],
    /// Dependencies added and not yet removed (`dependency-add`,
    /// `dependency-remove`), by description: the job is in DEPEND while
    /// there are any.
    dependencies: Vec<Box<str>>,
    /// Its latest `priority` (None: not yet prioritised, in PRIORITY or
    /// before). Only where the journal read carries `priority`.
    priority: Option<i64>,
    /// What the scheduler's annotations say of it (`annotations`, where
    /// the journal read carries them): its reason as a label, and its
    /// estimated start.
    sched_reason: Option<Box<str>>,
    t_estimate: Option<f64>,
    /// An `annotations` event came for it since the stream began: what
    /// job-list says of its annotations is older.
    annotated: bool,
    request: Request,
    /// The owner, for the nested instances' `flux_user`.
    uid: Option<u32>,
    /// Its job shells' usage record was counted.
    usage_recorded: bool,
}

impl ActiveJob {
    /// How long the job spent in each pending state it entered, the last
    /// one up to `end` (its allocation, or the exception that ended it).
    fn phase_waits(&self, end: f64) -> [Option<f64>; 3] {
        let mut waits = [None; 3];
        for (i, &start) in self.entered.iter().enumerate() {
            if start > 0.0 {
                let stop = self.entered[i + 1..].iter().find(|&&t| t > 0.0);
                waits[i] = Some(stop.copied().unwrap_or(end) - start);
            }
        }
        waits
    }

    /// Why the job waits, as a label of `flux_queue_pending_reason_jobs`
    /// (see [`PENDING_REASONS`]), with whether it waits on the scheduler
    /// (then a stopped queue is the reason instead); None once it is no
    /// longer pending.
    fn pending_reason(&self) -> Option<(&str, bool)> {
        if self.phase == Phase::Gone {
            return None;
        }
        if self.urgency == 0 || self.priority == Some(0) {
            return Some(("held", false));
        }
        if !self.dependencies.is_empty() {
            let reason = self
                .dependencies
                .iter()
                .map(|d| dependency_reason(d))
                .min_by_key(|r| match *r {
                    "dependency" => 2,
                    "begin-time" => 1,
                    _ => 0,
                })
                .unwrap_or("dependency");
            return Some((reason, false));
        }
        if self.priority.is_none() {
            return Some(("priority", false));
        }
        Some((self.sched_reason.as_deref().unwrap_or("resources"), true))
    }

    /// Where the job counts in the pending demand, as an index of
    /// [`PENDING_STATUSES`]; None once it is no longer pending.
    fn pending_status(&self) -> Option<usize> {
        match self.phase {
            Phase::Gone => None,
            Phase::Waiting if !self.dependencies.is_empty() => Some(2),
            Phase::Waiting if self.urgency != 0 => Some(0),
            Phase::Waiting => Some(1),
        }
    }
}

/// The pending jobs' demand by key and status, kept as each job changes,
/// so that a summary reads it without walking every active job: at 60,000
/// active jobs that walk took 14.5 ms (`cargo bench --bench jobflow`), up
/// to ten times a second under churn.
#[derive(Debug, Clone, Default)]
struct PendingDemand {
    demand: BTreeMap<FlowKey, [DemandTally; 3]>,
    /// Where reasons are counted ([`JobFlow::explain_pending`]).
    reasons: Option<Box<ReasonTally>>,
}

/// The pending jobs by key and reason, and their start estimates, kept as
/// each job changes for the same reason as their demand.
#[derive(Debug, Clone, Default)]
struct ReasonTally {
    /// key → reason → jobs, and whether the reason is the scheduler's.
    jobs: BTreeMap<FlowKey, BTreeMap<String, (u64, bool)>>,
    /// key → estimated start (as its bits) → jobs.
    estimates: BTreeMap<FlowKey, BTreeMap<u64, u32>>,
}

impl ReasonTally {
    fn count(&mut self, job: &ActiveJob, add: bool) {
        let Some((reason, scheduler)) = job.pending_reason() else {
            return;
        };
        let by_reason = match self.jobs.get_mut(&job.key) {
            Some(by_reason) => by_reason,
            None if add => self.jobs.entry(job.key.clone()).or_default(),
            None => return,
        };
        match by_reason.get_mut(reason) {
            Some((n, _)) if add => *n += 1,
            Some((n, _)) => {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    by_reason.remove(reason);
                }
            }
            None if add => {
                by_reason.insert(reason.to_string(), (1, scheduler));
            }
            None => {}
        }
        if by_reason.is_empty() {
            self.jobs.remove(&job.key);
        }
        if let Some(t) = job.t_estimate {
            let estimates = match self.estimates.get_mut(&job.key) {
                Some(estimates) => estimates,
                None if add => self.estimates.entry(job.key.clone()).or_default(),
                None => return,
            };
            count_in(estimates, t.to_bits(), add);
            if estimates.is_empty() {
                self.estimates.remove(&job.key);
            }
        }
    }
}

/// One key and status's pending jobs. The requested node counts and the
/// submit times are kept with how many jobs have each, so that the largest
/// and the oldest are known again when one leaves.
#[derive(Debug, Clone, Default)]
struct DemandTally {
    jobs: u64,
    nodes: u64,
    cores: u64,
    gpus: u64,
    node_counts: BTreeMap<u64, u32>,
    /// Submit times as their bits: positive floats order as their bits do.
    submits: BTreeMap<u64, u32>,
}

impl DemandTally {
    fn demand(&self) -> Demand {
        Demand {
            jobs: self.jobs,
            nodes: self.nodes,
            cores: self.cores,
            gpus: self.gpus,
            oldest_submit: self.submits.keys().next().map(|&bits| f64::from_bits(bits)),
            largest_nodes: self.node_counts.keys().next_back().copied().unwrap_or(0),
        }
    }
}

/// One more holder of `key`, or one fewer (gone at none).
fn count_in<K: Ord>(counts: &mut BTreeMap<K, u32>, key: K, add: bool) {
    if add {
        *counts.entry(key).or_default() += 1;
    } else if let Some(n) = counts.get_mut(&key) {
        *n -= 1;
        if *n == 0 {
            counts.remove(&key);
        }
    }
}

impl PendingDemand {
    /// Counts `jobs` from nothing, reasons too where they are counted.
    fn recount<'a>(&mut self, jobs: impl Iterator<Item = &'a ActiveJob>) {
        self.demand.clear();
        if let Some(reasons) = &mut self.reasons {
            **reasons = ReasonTally::default();
        }
        for job in jobs {
            self.count(job, true);
        }
    }

    /// Counts `job` in as it is (`add`), or out as it was.
    fn count(&mut self, job: &ActiveJob, add: bool) {
        if let Some(reasons) = &mut self.reasons {
            reasons.count(job, add);
        }
        let Some(status) = job.pending_status() else {
            return;
        };
        let tallies = match self.demand.get_mut(&job.key) {
            Some(tallies) => tallies,
            None if add => self.demand.entry(job.key.clone()).or_default(),
            None => return,
        };
        let t = &mut tallies[status];
        let r = job.request;
        if add {
            t.jobs += 1;
            t.nodes += r.nodes;
            t.cores += r.cores;
            t.gpus += r.gpus;
        } else {
            t.jobs = t.jobs.saturating_sub(1);
            t.nodes = t.nodes.saturating_sub(r.nodes);
            t.cores = t.cores.saturating_sub(r.cores);
            t.gpus = t.gpus.saturating_sub(r.gpus);
        }
        count_in(&mut t.node_counts, r.nodes, add);
        count_in(&mut t.submits, job.submit.to_bits(), add);
        if tallies.iter().all(|t| t.jobs == 0) {
            self.demand.remove(&job.key);
        }
    }
}

#[derive(Deserialize)]
struct Response<'a> {
    id: i64,
    #[serde(borrow)]
    events: Vec<Event<'a>>,
    #[serde(default, borrow)]
    jobspec: Option<&'a RawValue>,
    #[serde(rename = "R", default, borrow)]
    r: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow)]
    name: &'a str,
    timestamp: f64,
    #[serde(default, borrow)]
    context: Option<&'a RawValue>,
}

#[derive(Debug, Clone)]
pub struct JobFlow {
    jobs: FxHashMap<i64, ActiveJob>,
    /// The pending ones among `jobs`, by key and status.
    pending: PendingDemand,
    watermark: f64,
    wait_buckets: Vec<f64>,
    run_buckets: Vec<f64>,
    queues: BTreeMap<FlowKey, QueueFlow>,
    labels: LabelOptions,
    users: Capped,
    projects: Capped,
    /// Jobs named by the backlog being replayed, if one is.
    backlog_jobs: Option<FxHashSet<i64>>,
    /// The newest event counted; the watermark once a backlog is over.
    newest: f64,
    usage_refused: u64,
    /// Running jobs' samples from each rank, and those refused.
    live: Live<FlowKey>,
    live_refused: u64,
    live_messages: u64,
    live_batches: u64,
    live_cpu_seconds: f64,
    live_job_rows: usize,
    /// See [`JobFlowSummary::wait_phases`].
    wait_phases: bool,
    /// Scheduler reasons kept as labels.
    sched_reasons: Capped,
    /// Dependency schemes flux-core does not define, seen so far; and
    /// those not yet taken for the log.
    unknown_dependencies: HashSet<String>,
    unknown_dependencies_new: Vec<String>,
}

/// What one journal response was.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    Events,
    /// `{"id": -1}`: the backlog is over; what follows is live.
    EndOfBacklog,
}

impl JobFlow {
    /// Counts events newer than `since` (seconds since the epoch).
    pub fn new(since: f64, wait_buckets: &[f64], run_buckets: &[f64]) -> JobFlow {
        JobFlow::with_labels(since, wait_buckets, run_buckets, LabelOptions::default())
    }

    pub fn with_labels(
        since: f64,
        wait_buckets: &[f64],
        run_buckets: &[f64],
        labels: LabelOptions,
    ) -> JobFlow {
        JobFlow {
            jobs: FxHashMap::default(),
            pending: PendingDemand::default(),
            watermark: since,
            wait_buckets: wait_buckets.to_vec(),
            run_buckets: run_buckets.to_vec(),
            queues: BTreeMap::new(),
            labels,
            users: Capped::default(),
            projects: Capped::default(),
            backlog_jobs: None,
            newest: since,
            usage_refused: 0,
            live: Live::default(),
            live_refused: 0,
            live_messages: 0,
            live_batches: 0,
            live_cpu_seconds: 0.0,
            live_job_rows: 0,
            wait_phases: false,
            sched_reasons: Capped::default(),
            unknown_dependencies: HashSet::new(),
            unknown_dependencies_new: Vec::new(),
        }
    }

    /// The journal read carries `validate`, `depend` and `priority`: the
    /// summary's queues time each pending state.
    pub fn time_wait_phases(&mut self) {
        self.wait_phases = true;
    }

    /// Whether [`JobFlow::time_wait_phases`] was asked for.
    pub fn times_wait_phases(&self) -> bool {
        self.wait_phases
    }

    /// The journal read carries `priority` and `annotations`: the summary
    /// counts pending jobs by reason ([`PENDING_REASONS`]) and their start
    /// estimates.
    pub fn explain_pending(&mut self) {
        if self.pending.reasons.is_none() {
            self.pending.reasons = Some(Box::default());
            self.pending.recount(self.jobs.values());
        }
    }

    /// Whether [`JobFlow::explain_pending`] was asked for.
    pub fn explains_pending(&self) -> bool {
        self.pending.reasons.is_some()
    }

    /// Dependency schemes flux-core does not define, each once, as they
    /// were first seen (at most 16 in all): for the log.
    pub fn take_unknown_dependencies(&mut self) -> Vec<String> {
        std::mem::take(&mut self.unknown_dependencies_new)
    }

    /// Takes the pending jobs' annotations from job-list's answer to
    /// [`RECALL_ANNOTATIONS`]: a backlog does not carry them, so after a
    /// (re)subscription this is the best there is. A job an `annotations`
    /// event has told of since the stream began keeps what it told, which
    /// is newer. Returns how many jobs had annotations to take.
    pub fn recall_annotations(&mut self, payload: &str) -> Result<usize, ParseError> {
        #[derive(Deserialize)]
        struct Listed<'a> {
            #[serde(borrow)]
            jobs: Vec<ListedJob<'a>>,
        }
        #[derive(Deserialize)]
        struct ListedJob<'a> {
            id: i64,
            #[serde(default, borrow)]
            annotations: Option<Annotations<'a>>,
        }
        let listed: Listed =
            serde_json::from_str(payload).map_err(|e| ParseError::malformed("job-list.list", e))?;
        let mut taken = 0;
        for listed in &listed.jobs {
            let Some(job) = self.jobs.get(&listed.id) else {
                continue;
            };
            if job.annotated || job.phase != Phase::Waiting {
                continue;
            }
            let had = job.t_estimate.is_some() || job.sched_reason.is_some();
            if listed.annotations.is_some() || had {
                self.set_annotations(listed.id, listed.annotations.as_ref());
                taken += usize::from(listed.annotations.is_some());
            }
        }
        Ok(taken)
    }

    fn set_annotations(&mut self, id: i64, annotations: Option<&Annotations>) {
        let sched = annotations.and_then(|a| a.sched.as_ref());
        let t_estimate = sched
            .and_then(|s| s.t_estimate)
            .filter(|t| t.is_finite() && *t > 0.0);
        let reason = sched
            .and_then(|s| s.reason_pending.as_deref())
            .map(|r| {
                let fixed = PENDING_REASONS.contains(&r) || ACCOUNTING_LIMITS.contains(&r);
                if r == "resources" || !(fixed || r == "begin-time") {
                    self.sched_reasons
                        .admit(r.to_string(), MAX_SCHEDULER_REASONS)
                } else {
                    "other".to_string()
                }
            })
            .map(String::into_boxed_str);
        let Some(job) = self.jobs.get(&id) else {
            return;
        };
        self.pending.count(job, false);
        if let Some(job) = self.jobs.get_mut(&id) {
            job.t_estimate = t_estimate;
            job.sched_reason = reason;
        }
        if let Some(job) = self.jobs.get(&id) {
            self.pending.count(job, true);
        }
    }

    /// A new subscription starts: its backlog lists every job the journal
    /// still knows, so any job kept here and not in it was purged meanwhile.
    pub fn begin_backlog(&mut self) {
        self.backlog_jobs = Some(FxHashSet::default());
        for job in self.jobs.values_mut() {
            job.annotated = false;
        }
    }

    pub fn active_jobs(&self) -> usize {
        self.jobs.len()
    }

    /// Applies one journal response.
    pub fn apply(&mut self, payload: &str) -> Result<Applied, ParseError> {
        self.apply_tracking(payload, None, None, None)
    }

    /// Applies one journal response, and keeps `allocations` up to date
    /// with its `alloc` and `free` events. A backlog's end is for the
    /// caller to tell `allocations`, which may be shared by other readers.
    /// With `nested`, its `memo` and `clean` events also keep the nested
    /// instances' list, backlog included. With `roster`, every active
    /// job's owner, state and allocation are kept there too (its backlog's
    /// start and end are the caller's, as for `allocations`).
    pub fn apply_tracking(
        &mut self,
        payload: &str,
        mut allocations: Option<&mut Allocations>,
        mut nested: Option<&mut Nested>,
        mut roster: Option<&mut Roster>,
    ) -> Result<Applied, ParseError> {
        let r: Response = serde_json::from_str(payload)
            .map_err(|e| ParseError::malformed("job-manager.events-journal", e))?;
        if r.id == -1 {
            self.watermark = self.newest;
            if let Some(named) = self.backlog_jobs.take() {
                let before = self.jobs.len();
                self.jobs.retain(|id, _| named.contains(id));
                if self.jobs.len() != before {
                    self.pending.recount(self.jobs.values());
                }
            }
            // Give back what a burst of jobs took.
            if self.jobs.capacity() > 1024 && self.jobs.len() < self.jobs.capacity() / 4 {
                self.jobs.shrink_to_fit();
            }
            if let Some(nested) = nested {
                nested.end_backlog();
            }
            return Ok(Applied::EndOfBacklog);
        }
        if let Some(named) = self.backlog_jobs.as_mut() {
            named.insert(r.id);
            if let Some(nested) = nested.as_deref_mut() {
                nested.seen_in_backlog(r.id);
            }
        }
        // A backlog comes job by job, not in time order, so the watermark
        // moves only once it is over. After it, every event is new, whatever
        // its timestamp (two jobs' events can share one).
        let watermark = self.watermark;
        let in_backlog = self.backlog_jobs.is_some();
        for event in &r.events {
            let context = EventContext::of(event.context);
            // R, the largest part of an alloc event, is read once: the
            // roster reads it, then the allocated set keeps it.
            let job_r = (event.name == "alloc").then(|| {
                r.r.ok_or_else(|| ParseError::invalid("its alloc event came without R"))
                    .and_then(JobR::read)
            });
            let live = !in_backlog || event.timestamp > watermark;
            // The jobspec is read once, for every reader of the event.
            let spec =
                (event.name == "submit").then(|| r.jobspec.map(read_jobspec).unwrap_or_default());
            if let Some(roster) = roster.as_deref_mut() {
                match &spec {
                    Some(spec) => roster.submit(
                        r.id,
                        context.uid(),
                        spec.project.as_deref(),
                        Some(spec.queue.as_str()),
                    ),
                    None => {
                        let job_r = job_r.as_ref().map(Result::as_ref);
                        roster.event_at(r.id, event.name, event.timestamp, &context, job_r)
                    }
                }
            }
            if let Some(allocations) = allocations.as_deref_mut() {
                match (event.name, job_r) {
                    ("alloc", Some(job_r)) => {
                        allocations.alloc(r.id, context.bypass == Some(true), job_r.ok())
                    }
                    ("free" | "clean", _) => allocations.free(r.id),
                    _ => {}
                }
            }
            self.apply_event(r.id, event, &context, spec, live);
            if let Some(nested) = nested.as_deref_mut() {
                match event.name {
                    "memo" => {
                        let context: Value = event
                            .context
                            .and_then(|c| serde_json::from_str(c.get()).ok())
                            .unwrap_or(Value::Null);
                        let uid = self.jobs.get(&r.id).and_then(|job| job.uid);
                        nested.on_memo(r.id, uid, &context);
                    }
                    "clean" => nested.on_clean(r.id),
                    _ => {}
                }
            }
            if live {
                self.newest = self.newest.max(event.timestamp);
            }
        }
        if self.backlog_jobs.is_none() {
            self.watermark = self.newest;
        }
        Ok(Applied::Events)
    }

    fn queue(&mut self, key: &FlowKey) -> &mut QueueFlow {
        if !self.queues.contains_key(key) {
            let flow = QueueFlow {
                submitted: 0,
                started: 0,
                finished: RESULTS.iter().map(|&r| (r, 0)).collect(),
                exceptions: BTreeMap::new(),
                wait: Histogram::new(&self.wait_buckets),
                phases: self.wait_phases.then(|| {
                    let histograms = || std::array::from_fn(|_| Histogram::new(&self.wait_buckets));
                    Box::new(WaitPhases {
                        started: histograms(),
                        unstarted: histograms(),
                    })
                }),
                run: RESULTS
                    .iter()
                    .map(|&r| (r, Histogram::new(&self.run_buckets)))
                    .collect(),
                usage: UsageFlow::default(),
            };
            self.queues.insert(key.clone(), flow);
        }
        self.queues.get_mut(key).expect("inserted above")
    }

    /// `spec` is the job's jobspec as read for its `submit` event.
    fn apply_event(
        &mut self,
        id: i64,
        event: &Event,
        context: &EventContext,
        spec: Option<JobspecSummary>,
        live: bool,
    ) {
        if let Some(spec) = spec {
            let mut key = FlowKey {
                queue: spec.queue,
                ..FlowKey::default()
            };
            if self.labels.user {
                let uid = context
                    .userid
                    .map_or("unknown".to_string(), |u| u.to_string());
                key.user = self.users.admit(uid, self.labels.limit);
            }
            if self.labels.project {
                let project = spec.project.unwrap_or_else(|| "none".to_string());
                key.project = self.projects.admit(project, self.labels.limit);
            }
            if live {
                self.queue(&key).submitted += 1;
            }
            let job = ActiveJob {
                key,
                submit: event.timestamp,
                run: None,
                cleanup: None,
                status: None,
                fatal: None,
                urgency: context.urgency.unwrap_or(16),
                phase: Phase::Waiting,
                entered: [0.0; 3],
                dependencies: Vec::new(),
                priority: None,
                sched_reason: None,
                t_estimate: None,
                annotated: false,
                request: spec.request,
                uid: context.uid(),
                usage_recorded: false,
            };
            self.pending.count(&job, true);
            if let Some(was) = self.jobs.insert(id, job) {
                self.pending.count(&was, false);
            }
            return;
        }
        // What the scheduler says of a job: counted out and in again there.
        if event.name == "annotations" {
            if let Some(job) = self.jobs.get_mut(&id) {
                job.annotated = true;
                self.set_annotations(id, context.annotations.as_ref());
            }
            return;
        }
        // Events that can move a job in or out of the pending demand (or
        // from one reason to another): it is counted out as it was, and
        // back in as it is after the event.
        let moves = matches!(
            event.name,
            "dependency-add"
                | "dependency-remove"
                | "depend"
                | "priority"
                | "urgency"
                | "jobspec-update"
                | "alloc"
                | "exception"
                | "clean"
        );
        if moves {
            if let Some(job) = self.jobs.get(&id) {
                self.pending.count(job, false);
            }
        }
        self.apply_to_job(id, event, context, live);
        if moves {
            if let Some(job) = self.jobs.get(&id) {
                self.pending.count(job, true);
            }
        }
    }

    /// An event of a job already submitted.
    fn apply_to_job(&mut self, id: i64, event: &Event, context: &EventContext, live: bool) {
        // Events of a job whose submit came before the stream started
        // cannot be placed; a backlog always begins with submit.
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        match event.name {
            // The job manager posts `depend` once no dependency is left
            // (RFC 21): the job enters PRIORITY. Its first `priority` moves
            // it to SCHED; later ones reprioritize it there.
            "validate" => enter(&mut job.entered[0], event.timestamp),
            "dependency-add" => {
                let description = context.description.as_deref().unwrap_or("");
                let scheme = description.split('=').next().unwrap_or("");
                let known = KNOWN_DEPENDENCY_SCHEMES.contains(&scheme)
                    || ACCOUNTING_LIMITS.contains(&description);
                if !known
                    && self.unknown_dependencies.len() < MAX_UNKNOWN_DEPENDENCIES
                    && self.unknown_dependencies.insert(scheme.to_string())
                {
                    self.unknown_dependencies_new.push(scheme.to_string());
                }
                job.dependencies.push(description.into());
            }
            "dependency-remove" => {
                let description = context.description.as_deref().unwrap_or("");
                let i = job.dependencies.iter().position(|d| &**d == description);
                match i {
                    Some(i) => job.dependencies.swap_remove(i),
                    None if job.dependencies.is_empty() => return,
                    None => job.dependencies.remove(0),
                };
            }
            "depend" => {
                job.dependencies = Vec::new();
                enter(&mut job.entered[1], event.timestamp);
            }
            "priority" => {
                job.priority = Some(context.priority.unwrap_or(job.priority.unwrap_or(1)));
                if job.entered[1] > 0.0 {
                    enter(&mut job.entered[2], event.timestamp);
                }
            }
            "urgency" => job.urgency = context.urgency.unwrap_or(job.urgency),
            "jobspec-update" => {
                if let Some(q) = &context.queue {
                    job.key.queue = q.to_string();
                }
            }
            // A job runs from its allocation, as flux jobs counts it: `start`
            // (the job shell's) is not in the journal the module asks for.
            "alloc" => {
                job.phase = Phase::Gone;
                job.run = Some(event.timestamp);
                if live {
                    let (key, wait) = (job.key.clone(), event.timestamp - job.submit);
                    let waits = job.phase_waits(event.timestamp);
                    let flow = self.queue(&key);
                    flow.started += 1;
                    flow.wait.observe(wait);
                    if let Some(phases) = &mut flow.phases {
                        observe_phases(&mut phases.started, waits);
                    }
                }
            }
            "exception" => {
                let kind = context.kind.as_deref().unwrap_or("unknown").to_string();
                let left_pending = context.is_fatal() && job.phase == Phase::Waiting;
                let unstarted = left_pending.then(|| job.phase_waits(event.timestamp));
                if context.is_fatal() {
                    job.phase = Phase::Gone;
                    job.fatal.get_or_insert(kind.clone());
                    job.cleanup.get_or_insert(event.timestamp);
                }
                if live {
                    let job_key = job.key.clone();
                    let flow = self.queue(&job_key);
                    if let (Some(waits), Some(phases)) = (unstarted, &mut flow.phases) {
                        observe_phases(&mut phases.unstarted, waits);
                    }
                    let key = if flow.exceptions.contains_key(&kind)
                        || flow.exceptions.len() < MAX_EXCEPTION_TYPES
                    {
                        kind
                    } else {
                        "other".to_string()
                    };
                    *flow.exceptions.entry(key).or_default() += 1;
                }
            }
            "finish" => {
                job.cleanup.get_or_insert(event.timestamp);
                job.status = Some(context.status.unwrap_or(0));
            }
            "clean" => {
                let Some(job) = self.jobs.remove(&id) else {
                    return;
                };
                if let Ok(id) = u64::try_from(id) {
                    self.live.end_job(id);
                }
                if self.jobs.capacity() > 1024 && self.jobs.len() < self.jobs.capacity() / 4 {
                    self.jobs.shrink_to_fit();
                }
                if live {
                    let result = result_of(&job);
                    let flow = self.queue(&job.key);
                    *flow.finished.entry(result).or_default() += 1;
                    if let (Some(run), Some(cleanup)) = (job.run, job.cleanup) {
                        if let Some(h) = flow.run.get_mut(result) {
                            h.observe(cleanup - run);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Makes every queue in `names` ("" for the anonymous queue) show in
    /// the summary with zero counts until its jobs move, so dashboards and
    /// autoscalers read 0 rather than "no data". With user or project labels
    /// there is no series without them, so nothing is added then.
    pub fn know_queues<S: AsRef<str>>(&mut self, names: &[S]) {
        if self.labels.user || self.labels.project {
            return;
        }
        for name in names {
            let key = FlowKey {
                queue: name.as_ref().to_string(),
                ..FlowKey::default()
            };
            self.queue(&key);
        }
    }

    /// Counts active job `id`'s usage record, sent by user `sender`: its
    /// owner, or `instance_owner` (who may act for anyone).
    pub fn record_usage(
        &mut self,
        id: i64,
        sender: u32,
        instance_owner: u32,
        usage: &usage::JobUsage,
    ) -> Result<(), UsageRefused> {
        let key = match self.jobs.get_mut(&id) {
            None => Err(UsageRefused::NotActive(id)),
            Some(job) if sender != instance_owner && job.uid != Some(sender) => {
                Err(UsageRefused::NotOwner { id, sender })
            }
            Some(job) if job.usage_recorded => Err(UsageRefused::Recorded(id)),
            Some(job) => {
                job.usage_recorded = true;
                Ok(job.key.clone())
            }
        }
        .inspect_err(|_| self.usage_refused += 1)?;
        let gpu_seconds: f64 = usage
            .nodes
            .iter()
            .map(|n| n.gpus as f64 * n.wall_seconds)
            .sum();
        let flow = &mut self.queue(&key).usage;
        flow.records += 1;
        flow.cpu_seconds += usage.cpu_seconds();
        flow.core_seconds += usage.core_seconds();
        flow.gpu_seconds += gpu_seconds;
        if let Some(efficiency) = usage.cpu_efficiency() {
            flow.efficiency.observe(efficiency);
        }
        flow.peak_memory.observe(usage.peak_memory_bytes() as f64);
        if let Some(ratio) = usage.peak_memory_share_ratio() {
            flow.memory_share.observe(ratio);
        }
        flow.memory_byte_seconds += usage.memory_byte_seconds().unwrap_or(0.0);
        if let Some((busy, measured)) = usage.gpu_seconds() {
            flow.gpu_busy_seconds += busy;
            flow.gpu_measured_seconds += measured;
        }
        if let Some(util) = usage.gpu_utilization() {
            flow.gpu_utilization.observe(util);
        }
        Ok(())
    }

    /// Counts a usage record that could not even be read.
    pub fn refuse_usage(&mut self) {
        self.usage_refused += 1;
    }

    /// Summaries list the `n` running jobs with the most allocated cores
    /// idle (none by default).
    pub fn show_live_jobs(&mut self, n: usize) {
        self.live_job_rows = n;
    }

    /// Takes a rank's batch of running jobs' samples, received at `now`.
    /// A sample counts for an active job of this instance registered by its
    /// owner (or by `instance_owner`); the others are refused and counted.
    /// Returns how many were refused.
    pub fn take_live(
        &mut self,
        now: f64,
        batch: usage::live::Batch<'_>,
        instance_owner: u32,
    ) -> usize {
        self.live_batches += 1;
        let jobs = &self.jobs;
        let refused = self.live.take(now, batch, |sample| {
            i64::try_from(sample.id)
                .ok()
                .and_then(|id| jobs.get(&id))
                .filter(|job| sample.userid == instance_owner || job.uid == Some(sample.userid))
                .map(|job| &job.key)
        });
        self.live_refused += refused as u64;
        refused
    }

    /// Reads ahead what taking the batches of `ranks` reads first
    /// ([`Live::prefetch`]): call it before taking a bundle's batches.
    pub fn prefetch_live(&self, ranks: impl Iterator<Item = u32>) {
        self.live.prefetch(ranks);
    }

    /// Counts a batch that could not even be read.
    pub fn refuse_live(&mut self) {
        self.live_refused += 1;
    }

    /// Counts a message of samples, before its batches are taken.
    pub fn count_live_message(&mut self) {
        self.live_messages += 1;
    }

    /// Counts the CPU time a message of samples took to read and take.
    pub fn count_live_cpu(&mut self, seconds: f64) {
        self.live_cpu_seconds += seconds.max(0.0);
    }

    /// Forgets ranks whose batches are older than three of their periods.
    pub fn expire_live(&mut self, now: f64) {
        self.live.expire(now);
    }

    /// Running job `id`'s figures on each node that reports it, as of
    /// `now`, for user `requester`: its owner, or `instance_owner`. None
    /// where no node has reported it (yet).
    pub fn live_job(
        &self,
        id: i64,
        now: f64,
        requester: u32,
        instance_owner: u32,
    ) -> Result<Option<usage::live::LiveJob>, UsageRefused> {
        match self.jobs.get(&id) {
            None => Err(UsageRefused::NotActive(id)),
            Some(job) if requester != instance_owner && job.uid != Some(requester) => {
                Err(UsageRefused::NotOwner {
                    id,
                    sender: requester,
                })
            }
            Some(_) => Ok(u64::try_from(id).ok().and_then(|id| self.live.job(id, now))),
        }
    }

    /// The live figures by key (every queue, zero or not), and the per-job
    /// rows asked for.
    fn live_summary(&self) -> (BTreeMap<FlowKey, LiveFlow>, Vec<LiveJobRow>) {
        let mut by_key: BTreeMap<FlowKey, LiveFlow> = self
            .live
            .by_key()
            .map(|(key, sums)| (key.clone(), LiveFlow::from(sums)))
            .collect();
        for queue in self.queues.keys() {
            if !by_key.contains_key(queue) {
                by_key.insert(queue.clone(), LiveFlow::default());
            }
        }
        let mut rows = Vec::new();
        if self.live_job_rows > 0 {
            let idle = |f: &LiveFlow| f.allocated_cores as f64 - f.cpu_cores;
            let mut jobs: Vec<(i64, &FlowKey, LiveFlow)> = self
                .live
                .by_job()
                .filter_map(|(id, key, sums)| {
                    Some((i64::try_from(id).ok()?, key, LiveFlow::from(sums)))
                })
                .collect();
            jobs.sort_by(|a, b| idle(&b.2).total_cmp(&idle(&a.2)).then(a.0.cmp(&b.0)));
            rows = jobs
                .into_iter()
                .take(self.live_job_rows)
                .map(|(id, key, flow)| LiveJobRow {
                    id,
                    key: key.clone(),
                    flow,
                })
                .collect();
        }
        (by_key, rows)
    }

    pub fn summary(&self) -> JobFlowSummary {
        let mut demand: BTreeMap<(FlowKey, &'static str), Demand> = BTreeMap::new();
        // Every known queue and every key with demand has all three
        // statuses, zero or not.
        for queue in self.queues.keys() {
            for status in PENDING_STATUSES {
                demand.insert((queue.clone(), status), Demand::default());
            }
        }
        for (key, tallies) in &self.pending.demand {
            for (status, tally) in PENDING_STATUSES.into_iter().zip(tallies) {
                demand.insert((key.clone(), status), tally.demand());
            }
        }
        let (live, live_jobs) = self.live_summary();
        let reasons = self.pending.reasons.as_deref().map(|tally| {
            let base = || {
                PENDING_REASONS
                    .iter()
                    .map(|&r| {
                        let count = ReasonCount {
                            jobs: 0,
                            scheduler: r == "resources",
                        };
                        (r.to_string(), count)
                    })
                    .collect::<BTreeMap<_, _>>()
            };
            let mut jobs: BTreeMap<FlowKey, BTreeMap<String, ReasonCount>> = self
                .queues
                .keys()
                .map(|key| (key.clone(), base()))
                .collect();
            for (key, by_reason) in &tally.jobs {
                let counts = jobs.entry(key.clone()).or_insert_with(base);
                for (reason, &(n, scheduler)) in by_reason {
                    counts.insert(reason.clone(), ReasonCount { jobs: n, scheduler });
                }
            }
            let estimates = tally
                .estimates
                .iter()
                .filter_map(|(key, times)| {
                    let earliest = f64::from_bits(*times.keys().next()?);
                    let jobs = times.values().map(|&n| u64::from(n)).sum();
                    Some((key.clone(), Estimate { jobs, earliest }))
                })
                .collect();
            PendingReasons { jobs, estimates }
        });
        JobFlowSummary {
            queues: self.queues.clone(),
            wait_phases: self.wait_phases,
            usage_refused: self.usage_refused,
            live,
            live_ranks: self.live.ranks() as u64,
            live_refused: self.live_refused,
            live_messages: self.live_messages,
            live_batches: self.live_batches,
            live_cpu_seconds: self.live_cpu_seconds,
            live_jobs,
            demand,
            reasons,
        }
    }
}

/// A state's first entry is kept; re-entering it changes nothing.
fn enter(entered: &mut f64, timestamp: f64) {
    if *entered == 0.0 {
        *entered = timestamp;
    }
}

fn observe_phases(histograms: &mut [Histogram; 3], waits: [Option<f64>; 3]) {
    for (histogram, wait) in histograms.iter_mut().zip(waits) {
        if let Some(wait) = wait {
            histogram.observe(wait);
        }
    }
}

/// The result `flux jobs` gives an inactive job.
fn result_of(job: &ActiveJob) -> &'static str {
    match job.fatal.as_deref() {
        Some("cancel") => "canceled",
        Some("timeout") => "timeout",
        Some(_) => "failed",
        None => match job.status {
            Some(0) => "completed",
            _ => "failed",
        },
    }
}

/// What the module reads from a (redacted) jobspec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobspecSummary {
    pub queue: String,
    pub project: Option<String>,
    pub request: Request,
}

/// The parts of a jobspec (RFC 25) the module reads. Typed, so that the rest
/// (tasks, the shell's options, rlimits...) is skipped, not stored: one is
/// read for every job submitted.
#[derive(Default, Deserialize)]
struct Jobspec<'a> {
    #[serde(default, borrow)]
    resources: Vec<Vertex<'a>>,
    #[serde(default, borrow)]
    attributes: Attributes<'a>,
}

#[derive(Default, Deserialize)]
struct Attributes<'a> {
    #[serde(default, borrow)]
    system: SystemAttributes<'a>,
}

#[derive(Default, Deserialize)]
struct SystemAttributes<'a> {
    #[serde(default, borrow)]
    queue: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    project: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    bank: Option<Cow<'a, str>>,
}

/// A resource vertex: its type, its count (a number, or a range whose
/// minimum is what the job needs), and what it holds.
#[derive(Deserialize)]
struct Vertex<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    count: Option<&'a RawValue>,
    #[serde(default, borrow)]
    with: Vec<Vertex<'a>>,
}

#[derive(Deserialize)]
struct CountRange {
    min: Option<u64>,
}

impl Vertex<'_> {
    fn count(&self) -> u64 {
        let Some(raw) = self.count else { return 1 };
        serde_json::from_str::<u64>(raw.get())
            .ok()
            .or_else(|| {
                serde_json::from_str::<CountRange>(raw.get())
                    .ok()
                    .and_then(|r| r.min)
            })
            .unwrap_or(1)
    }

    fn add_to(&self, multiplier: u64, request: &mut Request) {
        let n = multiplier.saturating_mul(self.count());
        let total = match self.kind.as_deref() {
            Some("node") => Some(&mut request.nodes),
            Some("core") => Some(&mut request.cores),
            Some("gpu") => Some(&mut request.gpus),
            _ => None,
        };
        // Saturating: a hostile count cannot wrap a total around.
        if let Some(total) = total {
            *total = total.saturating_add(n);
        }
        // Counts inside a vertex are per instance of it: 2 slots per node on
        // 4 nodes are 8 slots.
        for w in &self.with {
            w.add_to(n, request);
        }
    }
}

/// The queue, project and resources a jobspec asks for (RFC 25): nodes
/// only when it names them; cores and GPUs as slots times per slot. An
/// unreadable jobspec asks for nothing, in the anonymous queue.
pub fn read_jobspec(raw: &RawValue) -> JobspecSummary {
    let spec: Jobspec = serde_json::from_str(raw.get()).unwrap_or_default();
    let mut request = Request::default();
    for r in &spec.resources {
        r.add_to(1, &mut request);
    }
    let system = spec.attributes.system;
    JobspecSummary {
        queue: system.queue.map(Cow::into_owned).unwrap_or_default(),
        project: system.project.or(system.bank).map(Cow::into_owned),
        request,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jobspec_beyond_what_can_be_counted_saturates() {
        let huge = format!(
            r#"{{"resources":[{{"type":"node","count":{max},"with":[{{"type":"slot","count":{max},"with":[{{"type":"core","count":2}}]}}]}},{{"type":"core","count":{max}}}]}}"#,
            max = u64::MAX
        );
        let raw = RawValue::from_string(huge).unwrap();
        let request = read_jobspec(&raw).request;
        assert_eq!((request.nodes, request.cores), (u64::MAX, u64::MAX));
    }

    #[test]
    fn known_queues_have_zero_series_before_any_job_moves() {
        let mut flow = JobFlow::new(0.0, DEFAULT_WAIT_BUCKETS, DEFAULT_RUN_BUCKETS);
        flow.know_queues(&["batch", "debug"]);
        let summary = flow.summary();
        let queues: Vec<&str> = summary.queues.keys().map(|k| k.queue.as_str()).collect();
        assert_eq!(queues, ["batch", "debug"]);
        for q in summary.queues.values() {
            assert_eq!((q.submitted, q.started), (0, 0));
            assert_eq!(q.finished.keys().copied().collect::<Vec<_>>(), {
                let mut r = RESULTS.to_vec();
                r.sort();
                r
            });
        }
        // Every pending status of every queue, at zero.
        assert_eq!(summary.demand.len(), 2 * PENDING_STATUSES.len());
        assert!(summary.demand.values().all(|d| d.jobs == 0));
        // With user labels there is no series without a user: none added.
        let labels = LabelOptions {
            user: true,
            ..LabelOptions::default()
        };
        let mut flow = JobFlow::with_labels(0.0, DEFAULT_WAIT_BUCKETS, DEFAULT_RUN_BUCKETS, labels);
        flow.know_queues(&["batch"]);
        assert!(flow.summary().queues.is_empty());
    }

    #[test]
    fn histogram_buckets_are_cumulative_with_inf_last() {
        let mut h = Histogram::new(&[1.0, 10.0]);
        for v in [0.5, 1.0, 5.0, 50.0] {
            h.observe(v);
        }
        let c: Vec<_> = h.cumulative().collect();
        assert_eq!(c, [(1.0, 2), (10.0, 3), (f64::INFINITY, 4)]);
        assert_eq!(h.sum, 56.5);
    }

    #[test]
    fn bucket_lists_name_what_is_wrong() {
        assert_eq!(parse_buckets("1, 5,30"), Ok(vec![1.0, 5.0, 30.0]));
        assert!(parse_buckets("5,1")
            .unwrap_err()
            .to_string()
            .contains("increase"));
        assert!(parse_buckets("a").unwrap_err().to_string().contains("'a'"));
        assert!(parse_buckets("0")
            .unwrap_err()
            .to_string()
            .contains("positive"));
    }

    #[test]
    fn jobspec_requests() {
        let spec = |s: &str| read_jobspec(&RawValue::from_string(s.into()).unwrap()).request;
        let n4 = spec(
            r#"{"resources":[{"type":"node","count":4,"with":[{"type":"slot","count":2,"with":[{"type":"core","count":3},{"type":"gpu","count":1}]}]}]}"#,
        );
        assert_eq!(
            n4,
            Request {
                nodes: 4,
                cores: 24,
                gpus: 8
            }
        );
        let slots =
            spec(r#"{"resources":[{"type":"slot","count":5,"with":[{"type":"core","count":2}]}]}"#);
        assert_eq!(
            slots,
            Request {
                nodes: 0,
                cores: 10,
                gpus: 0
            }
        );
        // A range asks for its minimum; a count of another shape, for one.
        let range = spec(
            r#"{"resources":[{"type":"node","count":{"min":3,"max":8,"operator":"+","operand":1},"with":[{"type":"slot","count":"x","with":[{"type":"core","count":2}]}]}]}"#,
        );
        assert_eq!(
            range,
            Request {
                nodes: 3,
                cores: 6,
                gpus: 0
            }
        );
    }

    #[test]
    fn a_jobspec_names_its_queue_and_project_or_bank() {
        let read = |s: &str| read_jobspec(&RawValue::from_string(s.into()).unwrap());
        let spec = read(
            r#"{"version":1,"tasks":[{"command":["true"],"slot":"task","count":{"per_slot":1}}],"attributes":{"system":{"duration":0,"queue":"deb\u0075g","bank":"chem","shell":{"options":{"rlimit":{"cpu":-1,"nofile":1024}}}}},"resources":[{"type":"slot","count":1,"label":"task","with":[{"type":"core","count":1}]}]}"#,
        );
        assert_eq!(spec.queue, "debug");
        assert_eq!(spec.project.as_deref(), Some("chem"));
        assert_eq!(spec.request.cores, 1);
        let both = read(r#"{"attributes":{"system":{"project":"p","bank":"b"}}}"#);
        assert_eq!(
            (both.queue.as_str(), both.project.as_deref()),
            ("", Some("p"))
        );
        // Unreadable: the anonymous queue, asking for nothing.
        assert_eq!(
            read(r#"{"attributes":{"system":{"queue":7}}}"#),
            JobspecSummary::default()
        );
    }

    #[test]
    fn an_event_context_is_read_for_the_fields_the_models_use() {
        let raw = RawValue::from_string(
            r#"{"type":"cancel","severity":0,"userid":1001,"note":"a \"quoted\" note","annotations":{"sched":{"queue":"x"}}}"#.into(),
        )
        .unwrap();
        let c = EventContext::of(Some(&raw));
        assert_eq!(c.kind.as_deref(), Some("cancel"));
        assert!(c.is_fatal());
        assert_eq!(c.uid(), Some(1001));
        let queue = RawValue::from_string(r#"{"attributes.system.queue":"batch"}"#.into()).unwrap();
        assert_eq!(
            EventContext::of(Some(&queue)).queue.as_deref(),
            Some("batch")
        );
        let huge = RawValue::from_string(r#"{"userid":4294967296}"#.into()).unwrap();
        assert_eq!(EventContext::of(Some(&huge)).uid(), None);
        assert!(!EventContext::of(None).is_fatal());
    }

    /// One journal response: `name` of job `id` at `t`, with `context`.
    fn event(id: i64, name: &str, t: f64, context: &str) -> String {
        let jobspec = if name == "submit" {
            let nodes = if id % 2 == 0 {
                r#""count":2,"type":"node","with":[{"count":1,"label":"task","type":"slot","with":[{"count":4,"type":"core"}]}]"#
            } else {
                r#""count":1,"label":"task","type":"slot","with":[{"count":1,"type":"core"}]"#
            };
            format!(
                r#","jobspec":{{"version":1,"resources":[{{{nodes}}}],"tasks":[],"attributes":{{"system":{{"queue":"batch"}}}}}}"#
            )
        } else {
            String::new()
        };
        format!(
            r#"{{"id":{id},"events":[{{"name":"{name}","timestamp":{t},"context":{context}}}]{jobspec}}}"#
        )
    }

    #[test]
    fn a_usage_record_counts_once_for_an_active_job_from_its_owner() {
        let mut flow = JobFlow::new(0.0, DEFAULT_WAIT_BUCKETS, DEFAULT_RUN_BUCKETS);
        flow.apply(&event(1, "submit", 10.0, r#"{"urgency":16,"userid":5}"#))
            .expect("parses");
        flow.apply(&event(1, "alloc", 11.0, "{}")).expect("parses");
        let node = usage::NodeUsage {
            rank: 0,
            hostname: "node0".into(),
            cores: 4,
            gpus: 1,
            tasks: 4,
            wall_seconds: 10.0,
            user_seconds: 15.0,
            system_seconds: 5.0,
            peak_memory_bytes: 2 << 30,
            source: "processes".into(),
            memory_share_bytes: Some(8 << 30),
            memory_byte_seconds: Some(1e10),
            gpu_busy_seconds: Some(6.0),
            gpu_measured_seconds: Some(10.0),
            ..usage::NodeUsage::default()
        };
        let record = usage::JobUsage {
            version: 1,
            nodes: vec![node],
            missing: vec![],
        };
        let owner = 1000;
        assert_eq!(
            flow.record_usage(1, 6, owner, &record),
            Err(UsageRefused::NotOwner { id: 1, sender: 6 })
        );
        assert_eq!(
            flow.record_usage(2, 5, owner, &record),
            Err(UsageRefused::NotActive(2))
        );
        assert_eq!(flow.record_usage(1, 5, owner, &record), Ok(()));
        assert_eq!(
            flow.record_usage(1, owner, owner, &record),
            Err(UsageRefused::Recorded(1))
        );
        let summary = flow.summary();
        assert_eq!(summary.usage_refused, 3);
        let key = FlowKey {
            queue: "batch".into(),
            ..FlowKey::default()
        };
        let usage = &summary.queues[&key].usage;
        assert_eq!(usage.records, 1);
        assert_eq!(
            (usage.cpu_seconds, usage.core_seconds, usage.gpu_seconds),
            (20.0, 40.0, 10.0)
        );
        assert_eq!(usage.efficiency.count, 1);
        assert_eq!(usage.efficiency.sum, 0.5);
        assert_eq!(usage.peak_memory.sum, (2u64 << 30) as f64);
        assert_eq!(usage.memory_share.sum, 0.25);
        assert_eq!(usage.memory_byte_seconds, 1e10);
        assert_eq!(
            (usage.gpu_busy_seconds, usage.gpu_measured_seconds),
            (6.0, 10.0)
        );
        assert_eq!(usage.gpu_utilization.sum, 0.6);
    }

    #[test]
    fn running_jobs_gpus_are_summed_by_queue_and_per_job() {
        let mut flow = JobFlow::new(0.0, DEFAULT_WAIT_BUCKETS, DEFAULT_RUN_BUCKETS);
        flow.show_live_jobs(5);
        for id in [1, 2] {
            flow.apply(&event(id, "submit", 10.0, r#"{"urgency":16,"userid":5}"#))
                .expect("parses");
            flow.apply(&event(id, "alloc", 11.0, "{}")).expect("parses");
        }
        let gpu = |index, busy, used| usage::gpu::GpuSample {
            index,
            busy,
            memory_used_bytes: used,
            memory_total_bytes: 80 << 30,
        };
        let sample = |id, gpus: Vec<usage::gpu::GpuSample>| usage::live::JobSample {
            id,
            userid: 5,
            cores: 4,
            gpus: gpus.len() as u64,
            processes: 2,
            cpu_seconds: 10.0,
            cpu_cores: Some(1.0),
            memory_bytes: 1 << 30,
            peak_memory_bytes: 1 << 30,
            source: usage::live::Source::Processes,
            cgroup: None,
            gpu: gpus,
        };
        let batch = usage::live::Batch {
            version: usage::live::VERSION,
            rank: 1,
            hostname: "node1".into(),
            period: 30.0,
            jobs: vec![
                // Job 1: two GPUs, one of them with no samples from NVML.
                sample(1, vec![gpu(0, Some(0.25), 1 << 30), gpu(1, None, 2 << 30)]),
                // Job 2: a CPU job.
                sample(2, vec![]),
            ],
        };
        assert_eq!(flow.take_live(100.0, batch, 1000), 0);
        let summary = flow.summary();
        let key = FlowKey {
            queue: "batch".into(),
            ..FlowKey::default()
        };
        let live = summary.live[&key];
        assert_eq!(
            (
                live.jobs,
                live.gpus_busy,
                live.measured_gpus,
                live.gpu_memory_bytes
            ),
            (2, 0.25, 1, 3 << 30)
        );
        let job1 = summary.live_jobs.iter().find(|r| r.id == 1).unwrap();
        assert_eq!((job1.flow.gpus_busy, job1.flow.measured_gpus), (0.25, 1));
        let job2 = summary.live_jobs.iter().find(|r| r.id == 2).unwrap();
        assert_eq!((job2.flow.gpus_busy, job2.flow.gpu_memory_bytes), (0.0, 0));
    }

    #[test]
    fn the_demand_kept_as_jobs_move_is_the_demand_counted_from_scratch() {
        let mut flow = JobFlow::new(0.0, DEFAULT_WAIT_BUCKETS, DEFAULT_RUN_BUCKETS);
        let steps = [
            event(1, "submit", 10.0, r#"{"urgency":16,"userid":5}"#),
            event(2, "submit", 11.0, r#"{"urgency":0,"userid":5}"#),
            event(3, "submit", 12.0, r#"{"urgency":16,"userid":6}"#),
            event(4, "submit", 13.0, r#"{"urgency":16,"userid":6}"#),
            event(
                3,
                "dependency-add",
                14.0,
                r#"{"description":"after-start=f1"}"#,
            ),
            // Held, released; moved to another queue; allocated; canceled
            // while pending; cleaned.
            event(4, "urgency", 15.0, r#"{"urgency":0}"#),
            event(2, "urgency", 15.0, r#"{"urgency":16}"#),
            event(
                1,
                "jobspec-update",
                16.0,
                r#"{"attributes.system.queue":"debug"}"#,
            ),
            event(2, "alloc", 17.0, "{}"),
            event(3, "exception", 18.0, r#"{"type":"cancel","severity":0}"#),
            event(3, "clean", 19.0, "{}"),
        ];
        for (n, step) in steps.iter().enumerate() {
            flow.apply(step).expect("parses");
            let kept = flow.summary().demand;
            let mut scratch = flow.clone();
            scratch.pending.recount(flow.jobs.values());
            assert_eq!(kept, scratch.summary().demand, "after step {n}: {step}");
        }
        let demand = flow.summary().demand;
        let at = |queue: &str, status| {
            let key = FlowKey {
                queue: queue.into(),
                ..FlowKey::default()
            };
            demand[&(key, status)].clone()
        };
        assert_eq!(at("debug", "eligible").jobs, 1);
        assert_eq!(at("debug", "eligible").oldest_submit, Some(10.0));
        let held = at("batch", "held");
        assert_eq!(
            (held.jobs, held.largest_nodes, held.oldest_submit),
            (1, 2, Some(13.0))
        );
        assert_eq!(at("batch", "eligible").jobs, 0);
        assert_eq!(at("batch", "blocked").jobs, 0);
    }

    #[test]
    fn each_pending_state_is_timed_as_flux_jobs_times_it() {
        let mut flow = JobFlow::new(0.0, DEFAULT_WAIT_BUCKETS, DEFAULT_RUN_BUCKETS);
        flow.time_wait_phases();
        let events = [
            // Started: 29.5 s in DEPEND, 1 s in PRIORITY, 59 s in SCHED; a
            // later `priority` (a reprioritization) does not restart SCHED.
            event(1, "submit", 10.0, r#"{"urgency":16}"#),
            event(1, "validate", 10.5, "{}"),
            event(
                1,
                "dependency-add",
                10.5,
                r#"{"description":"after-finish=f2"}"#,
            ),
            event(
                1,
                "dependency-remove",
                40.0,
                r#"{"description":"after-finish=f2"}"#,
            ),
            event(1, "depend", 40.0, "{}"),
            event(1, "priority", 41.0, r#"{"priority":16}"#),
            event(1, "priority", 50.0, r#"{"priority":20}"#),
            event(1, "alloc", 100.0, "{}"),
            // Canceled in SCHED: 0, 1 and 9 s.
            event(3, "submit", 20.0, r#"{"urgency":16}"#),
            event(3, "validate", 20.0, "{}"),
            event(3, "depend", 20.0, "{}"),
            event(3, "priority", 21.0, r#"{"priority":16}"#),
            event(3, "exception", 30.0, r#"{"type":"cancel","severity":0}"#),
            // Canceled in DEPEND: 3 s there, no other state entered.
            event(5, "submit", 22.0, r#"{"urgency":16}"#),
            event(5, "validate", 22.0, "{}"),
            event(
                5,
                "dependency-add",
                22.0,
                r#"{"description":"begin-time=99.0"}"#,
            ),
            event(5, "exception", 25.0, r#"{"type":"cancel","severity":0}"#),
            // A non-fatal exception and a fatal one after alloc change
            // nothing here.
            event(1, "exception", 110.0, r#"{"type":"x","severity":1}"#),
            event(1, "exception", 120.0, r#"{"type":"cancel","severity":0}"#),
        ];
        for e in &events {
            flow.apply(e).unwrap();
        }
        let summary = flow.summary();
        assert!(summary.wait_phases);
        let key = FlowKey {
            queue: "batch".into(),
            ..FlowKey::default()
        };
        let q = &summary.queues[&key];
        let sums = |hs: &[Histogram; 3]| hs.each_ref().map(|h| (h.count, h.sum));
        let phases = q.phases.as_ref().expect("timed");
        assert_eq!(sums(&phases.started), [(1, 29.5), (1, 1.0), (1, 59.0)]);
        assert_eq!(sums(&phases.unstarted), [(2, 3.0), (1, 1.0), (1, 9.0)]);
        // The phases of a started job add up to its queue wait but for
        // the time from submit to validate.
        assert_eq!(q.wait.sum, 90.0);
    }

    /// The reasons of the `batch` queue's pending jobs, as exported with
    /// the queue started or not, zeros left out.
    fn reasons_of(flow: &JobFlow, stopped: bool) -> BTreeMap<String, u64> {
        let key = FlowKey {
            queue: "batch".into(),
            ..FlowKey::default()
        };
        let reasons = flow.summary().reasons.expect("reasons are counted");
        reasons.jobs.get(&key).map_or_else(BTreeMap::new, |counts| {
            PendingReasons::of_key(counts, stopped)
                .into_iter()
                .filter(|&(_, n)| n > 0)
                .map(|(r, n)| (r.to_string(), n))
                .collect()
        })
    }

    fn expect(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|&(r, n)| (r.to_string(), n)).collect()
    }

    #[test]
    fn each_pending_job_has_one_reason_in_the_order_flux_acts_on_them() {
        let mut flow = JobFlow::new(0.0, DEFAULT_WAIT_BUCKETS, DEFAULT_RUN_BUCKETS);
        flow.explain_pending();
        let add = |id, what: &str| {
            event(
                id,
                "dependency-add",
                11.0,
                &format!(r#"{{"description":"{what}"}}"#),
            )
        };
        let steps = [
            // 1: not yet prioritised; 2: waits on resources; 3: held with
            // a dependency (held comes first); 4: priority 0 from the
            // priority plugin; 5: over a flux-accounting limit and after
            // another job (the limit is named); 6: begin-time; 7: after
            // another job; 8: an unknown scheme.
            event(1, "submit", 10.0, r#"{"urgency":16}"#),
            event(2, "submit", 10.0, r#"{"urgency":16}"#),
            event(2, "priority", 10.1, r#"{"priority":16}"#),
            event(3, "submit", 10.0, r#"{"urgency":0}"#),
            add(3, "after-finish=f1"),
            event(4, "submit", 10.0, r#"{"urgency":16}"#),
            event(4, "priority", 10.1, r#"{"priority":0}"#),
            event(5, "submit", 10.0, r#"{"urgency":16}"#),
            add(5, "after-success=f2"),
            add(5, "max-running-jobs-user-limit"),
            event(6, "submit", 10.0, r#"{"urgency":16}"#),
            add(6, "begin-time=99.000"),
            event(7, "submit", 10.0, r#"{"urgency":16}"#),
            add(7, "after-start=f3"),
            event(8, "submit", 10.0, r#"{"urgency":16}"#),
            add(8, "after-moon=full"),
        ];
        for step in &steps {
            flow.apply(step).expect("parses");
        }
        assert_eq!(
            reasons_of(&flow, false),
            expect(&[
                ("begin-time", 1),
                ("dependency", 2),
                ("held", 2),
                ("max-running-jobs-user-limit", 1),
                ("priority", 1),
                ("resources", 1),
            ])
        );
        assert_eq!(flow.take_unknown_dependencies(), vec!["after-moon"]);
        assert!(flow.take_unknown_dependencies().is_empty());
        // A stopped queue holds what waits on the scheduler, and only that.
        assert_eq!(reasons_of(&flow, true)["queue-stopped"], 1);
        assert!(!reasons_of(&flow, true).contains_key("resources"));
        // The limit lifts: the other dependency is what is left. Released,
        // job 3 waits on its dependency; prioritised, job 1 on resources;
        // allocated, job 2 leaves.
        let steps = [
            event(
                5,
                "dependency-remove",
                12.0,
                r#"{"description":"max-running-jobs-user-limit"}"#,
            ),
            event(3, "urgency", 12.0, r#"{"urgency":16}"#),
            event(1, "priority", 12.0, r#"{"priority":16}"#),
            event(2, "alloc", 12.0, "{}"),
        ];
        for step in &steps {
            flow.apply(step).expect("parses");
        }
        assert_eq!(
            reasons_of(&flow, false),
            expect(&[
                ("begin-time", 1),
                ("dependency", 4),
                ("held", 1),
                ("resources", 1),
            ])
        );
        // At every step the reasons add up to the pending jobs.
        let pending: u64 = flow.summary().demand.values().map(|d| d.jobs).sum();
        assert_eq!(reasons_of(&flow, false).values().sum::<u64>(), pending);
        let mut scratch = flow.clone();
        scratch.pending.recount(flow.jobs.values());
        assert_eq!(scratch.summary().reasons, flow.summary().reasons);
    }

    #[test]
    fn the_scheduler_gives_its_own_reasons_and_start_estimates() {
        let mut flow = JobFlow::new(0.0, DEFAULT_WAIT_BUCKETS, DEFAULT_RUN_BUCKETS);
        flow.explain_pending();
        let annotate = |id, sched: &str| {
            event(
                id,
                "annotations",
                11.0,
                &format!(r#"{{"annotations":{{"sched":{sched}}}}}"#),
            )
        };
        for id in 1..=3 {
            flow.apply(&event(id, "submit", 10.0, r#"{"urgency":16}"#))
                .expect("parses");
            flow.apply(&event(id, "priority", 10.0, r#"{"priority":16}"#))
                .expect("parses");
        }
        for step in [
            annotate(
                1,
                r#"{"reason_pending":"insufficient resources","jobs_ahead":0}"#,
            ),
            annotate(2, r#"{"t_estimate":500.5}"#),
            annotate(
                3,
                r#"{"t_estimate":400.25,"resource_summary":"rank0/core0"}"#,
            ),
            // A reason that would pass for one of the fixed ones is not
            // taken as one.
            event(4, "submit", 10.0, r#"{"urgency":16}"#),
            event(4, "priority", 10.0, r#"{"priority":16}"#),
            annotate(4, r#"{"reason_pending":"held"}"#),
        ] {
            flow.apply(&step).expect("parses");
        }
        assert_eq!(
            reasons_of(&flow, false),
            expect(&[
                ("insufficient resources", 1),
                ("other", 1),
                ("resources", 2)
            ])
        );
        let key = FlowKey {
            queue: "batch".into(),
            ..FlowKey::default()
        };
        let estimates = |flow: &JobFlow| flow.summary().reasons.expect("counted").estimates;
        assert_eq!(
            estimates(&flow)[&key],
            Estimate {
                jobs: 2,
                earliest: 400.25
            }
        );
        // Cleared (a null), then allocated: no estimate is left, and the
        // series go rather than read zero.
        flow.apply(&event(3, "annotations", 12.0, r#"{"annotations":null}"#))
            .expect("parses");
        assert_eq!(estimates(&flow)[&key].earliest, 500.5);
        flow.apply(&event(2, "alloc", 13.0, "{}")).expect("parses");
        assert!(estimates(&flow).is_empty());
        // After a new subscription, job-list tells what the backlog does
        // not, except where an annotations event has told it since.
        flow.begin_backlog();
        flow.apply(&annotate(4, r#"{"t_estimate":700.0}"#))
            .expect("parses");
        let listed = r#"{"jobs":[{"id":1},{"id":3,"annotations":{"sched":{"t_estimate":600.0}}},{"id":4,"annotations":{"sched":{"t_estimate":900.0}}}]}"#;
        assert_eq!(flow.recall_annotations(listed), Ok(1));
        assert_eq!(
            estimates(&flow)[&key],
            Estimate {
                jobs: 2,
                earliest: 600.0
            }
        );
        // Job 1's reason was cleared by what job-list says.
        assert!(!reasons_of(&flow, false).contains_key("insufficient resources"));
        assert!(flow.recall_annotations("{\"jobs\":7}").is_err());
    }

    #[test]
    fn without_the_phase_events_no_phase_is_timed() {
        let mut flow = JobFlow::new(0.0, DEFAULT_WAIT_BUCKETS, DEFAULT_RUN_BUCKETS);
        for e in [
            event(1, "submit", 10.0, r#"{"urgency":16}"#),
            event(1, "alloc", 20.0, "{}"),
        ] {
            flow.apply(&e).unwrap();
        }
        let summary = flow.summary();
        assert!(!summary.wait_phases);
        let q = summary.queues.values().next().unwrap();
        assert!(q.phases.is_none());
    }

    #[test]
    fn a_job_is_blocked_while_any_dependency_is_outstanding() {
        let mut flow = JobFlow::new(0.0, DEFAULT_WAIT_BUCKETS, DEFAULT_RUN_BUCKETS);
        let blocked_and_eligible = |flow: &JobFlow| {
            let demand = flow.summary().demand;
            let at = |status| {
                let key = FlowKey {
                    queue: "batch".into(),
                    ..FlowKey::default()
                };
                demand[&(key, status)].jobs
            };
            (at("blocked"), at("eligible"))
        };
        // A job without dependencies is eligible from its submit: the
        // journal the module asks for has no `depend` event.
        flow.apply(&event(1, "submit", 10.0, r#"{"urgency":16}"#))
            .unwrap();
        assert_eq!(blocked_and_eligible(&flow), (0, 1));
        // Two dependencies, as flux-core posts them (before `validate`).
        flow.apply(&event(2, "submit", 11.0, r#"{"urgency":16}"#))
            .unwrap();
        for description in ["after-start=f1", "begin-time=1.0"] {
            let context = format!(r#"{{"description":"{description}"}}"#);
            flow.apply(&event(2, "dependency-add", 11.0, &context))
                .unwrap();
        }
        assert_eq!(blocked_and_eligible(&flow), (1, 1));
        flow.apply(&event(
            2,
            "dependency-remove",
            12.0,
            r#"{"description":"begin-time=1.0"}"#,
        ))
        .unwrap();
        assert_eq!(blocked_and_eligible(&flow), (1, 1), "one is left");
        flow.apply(&event(
            2,
            "dependency-remove",
            13.0,
            r#"{"description":"after-start=f1"}"#,
        ))
        .unwrap();
        assert_eq!(blocked_and_eligible(&flow), (0, 2));
        // A journal with every event (a recorded backlog) has `depend` too,
        // which leaves no dependency outstanding.
        flow.apply(&event(3, "submit", 14.0, r#"{"urgency":16}"#))
            .unwrap();
        flow.apply(&event(
            3,
            "dependency-add",
            14.0,
            r#"{"description":"after-start=f2"}"#,
        ))
        .unwrap();
        assert_eq!(blocked_and_eligible(&flow), (1, 2));
        flow.apply(&event(3, "depend", 15.0, "{}")).unwrap();
        assert_eq!(blocked_and_eligible(&flow), (0, 3));
    }
}
