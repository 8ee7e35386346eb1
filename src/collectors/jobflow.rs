//! Job flow: one streaming `job-manager.events-journal` RPC, whose events
//! feed the counters, histograms and pending-job demand of
//! [`crate::model::jobflow`].
//!
//! Every subscription asks for inactive jobs too (`full: true`): the
//! roster reads each user's, project's and queue's allocation-seconds
//! from every job the job manager keeps. The model's counters count only
//! events newer than its watermark (the module's start, then the newest
//! event counted): what finished before the module loaded is not counted,
//! and when the stream ends (job-manager reloaded, say) and the collector
//! subscribes again with backoff, the jobs that ended in between are
//! counted, nothing twice.
//!
//! The same stream keeps the allocated set for the resources collector
//! (`alloc` events carry R, `clean` gives it back), through the
//! [`AllocatedWriter`] only this collector holds.
//!
//! What jobs used comes from their job shells: the prometheus shell plugin
//! sends each job's usage record (`crates/usage`) to `prometheus.usage`
//! when the job's tasks have ended. A record is counted once, for an
//! active job, and only from the job's owner or the instance owner; any
//! other is refused, counted in `flux_jobs_usage_refused_total`, and
//! logged (the first few).
//!
//! What running jobs use now comes from the module on every broker rank
//! (`crate::sampler`): each rank sends `prometheus.samples` one batch per
//! sampling period, and a sample counts for an active job registered by
//! its owner. `prometheus.job-usage` answers one running job's figures
//! (`flux prometheus jobstats` on a running job) to its owner or the
//! instance owner.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::time::Instant;

use super::{queues, About, Collector, Context, OptionSpec, Settings, Spec};
use crate::config::{parse_bool, NotABool};
use crate::model::error::ParseError;
use crate::model::jobflow::{
    self, Applied, FlowKey, JobFlow, JobFlowSummary, LabelOptions, PendingReasons, UsageRefused,
    DEFAULT_RUN_BUCKETS, DEFAULT_WAIT_BUCKETS, WAIT_PHASES,
};
use crate::model::queues::QueueStatus;
use crate::model::roster::SavedSeconds;
use crate::reactor::allocated::AllocatedWriter;
use crate::reactor::roster::RosterWriter;
use crate::reactor::subscription::{StreamEvent, Subscription};
use crate::render::{Doc, Family, Fold, Rendered};
use crate::state::{Section, State};
use flux::{Error, Level, MsgHandler, Request};

pub const NAME: &str = "jobflow";
pub const SECTION: Section<JobFlowSummary> = Section::new(NAME);

pub const SPEC: Spec = Spec {
    summary: "Counters and histograms of job flow from the job-manager journal (submitted, started, finished, exceptions, queue wait, run time), what pending jobs ask for and, with pending-reasons, why they wait.",
    about: About {
        name: NAME,
        on_by_default: true,
        options: &[
            OptionSpec {
                key: "wait-buckets",
                check: |v| Ok(parse_buckets(v).map(drop)?),
            },
            OptionSpec {
                key: "run-buckets",
                check: |v| Ok(parse_buckets(v).map(drop)?),
            },
            OptionSpec {
                key: "jobflow-labels",
                check: |v| Ok(parse_labels(v, &mut LabelOptions::default())?),
            },
            OptionSpec {
                key: "label-limit",
                check: |v| Ok(parse_limit(v).map(drop)?),
            },
            OptionSpec {
                key: "job-usage-series",
                check: |v| Ok(parse_series(v).map(drop)?),
            },
            OptionSpec {
                key: "wait-phases",
                check: |v| Ok(parse_bool(v).map(drop)?),
            },
            OptionSpec {
                key: "pending-reasons",
                check: |v| Ok(parse_bool(v).map(drop)?),
            },
        ],
        needs: &[],
    },
    start,
    // The counters start again on a restart: only a change of what is
    // counted warrants one.
    restart_needed: |a, b| Options::from(a) != Options::from(b),
    render: super::Render::Now(render),
    reads: &[queues::NAME],
    families: FAMILIES,
};

/// This collector's options, parsed.
#[derive(Debug, PartialEq)]
struct Options {
    wait_buckets: Vec<f64>,
    run_buckets: Vec<f64>,
    labels: LabelOptions,
    /// Running jobs with per-job usage series, at most (0: none).
    job_usage_series: usize,
    /// Time each pending state ([`WAIT_PHASE_EVENTS`]).
    wait_phases: bool,
    /// Count pending jobs by reason, and the scheduler's start estimates
    /// ([`REASON_EVENTS`]).
    pending_reasons: bool,
}

/// What is wrong with one of this collector's options.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum OptionError {
    #[error("{0} (expected increasing seconds, e.g. 1,10,60,600)")]
    Buckets(ParseError),
    #[error("unknown label '{0}' (expected user, project or both, comma separated)")]
    UnknownLabel(String),
    #[error("expected a positive number of distinct values")]
    NotALimit,
    #[error("expected a number of jobs, 0 (none) to {MAX_JOB_USAGE_SERIES}")]
    NotASeriesCount,
    #[error(transparent)]
    NotABool(#[from] NotABool),
}

/// The most running jobs `job-usage-series` may give series of their own.
const MAX_JOB_USAGE_SERIES: usize = 10_000;

impl Options {
    fn from(settings: &Settings) -> Result<Options, OptionError> {
        let buckets = |key, default: &[f64]| {
            settings
                .option(key)
                .map_or_else(|| Ok(default.to_vec()), parse_buckets)
        };
        let mut labels = LabelOptions::default();
        if let Some(value) = settings.option("jobflow-labels") {
            parse_labels(value, &mut labels)?;
        }
        if let Some(value) = settings.option("label-limit") {
            labels.limit = parse_limit(value)?;
        }
        Ok(Options {
            wait_buckets: buckets("wait-buckets", DEFAULT_WAIT_BUCKETS)?,
            run_buckets: buckets("run-buckets", DEFAULT_RUN_BUCKETS)?,
            labels,
            job_usage_series: settings
                .option("job-usage-series")
                .map_or(Ok(0), parse_series)?,
            wait_phases: settings
                .option("wait-phases")
                .map_or(Ok(false), parse_bool)?,
            pending_reasons: settings
                .option("pending-reasons")
                .map_or(Ok(false), parse_bool)?,
        })
    }
}

fn parse_buckets(value: &str) -> Result<Vec<f64>, OptionError> {
    jobflow::parse_buckets(value).map_err(OptionError::Buckets)
}

fn parse_labels(value: &str, labels: &mut LabelOptions) -> Result<(), OptionError> {
    (labels.user, labels.project) = (false, false);
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match name {
            "user" => labels.user = true,
            "project" => labels.project = true,
            other => return Err(OptionError::UnknownLabel(other.to_string())),
        }
    }
    Ok(())
}

fn parse_limit(value: &str) -> Result<usize, OptionError> {
    value
        .parse::<usize>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or(OptionError::NotALimit)
}

fn parse_series(value: &str) -> Result<usize, OptionError> {
    value
        .parse::<usize>()
        .ok()
        .filter(|&n| n <= MAX_JOB_USAGE_SERIES)
        .ok_or(OptionError::NotASeriesCount)
}

const TOPIC: &str = "job-manager.events-journal";
/// The events the models read. The journal leaves out the rest (validate,
/// priority, start, release, free...): the job manager encodes every event
/// anew for each listener, about 37,000 instructions a message with
/// flux-core 0.88 (BENCHMARKS.md, "Broker instructions per job"), and the
/// broker carries each one. That is most of what the module costs the
/// broker per job, so each event here is one a model needs:
/// - `submit` (queue, owner, request), `urgency` (held), `jobspec-update`
///   (a queue move);
/// - `dependency-add`, `dependency-remove`: blocked while a dependency is
///   outstanding. Only dependent jobs have them, where `depend` (blocked to
///   eligible) would be one more message for every job;
/// - `alloc`: RUN begins (RFC 21), with R; flux jobs' `t_run` is its time,
///   so waits and run times are measured from it, not from `start`;
/// - `exception`, `finish`: CLEANUP begins at the first fatal one of them;
///   `finish` carries the wait status;
/// - `clean`: the job is inactive. The allocated set gives resources back
///   here, which the job manager posts in the same pass as `free` once the
///   job's cleanup is done (with housekeeping, which holds resources past
///   both, the resources collector asks the job manager instead);
/// - `memo`: nested instances' URLs (crate::announce), for /-/targets.
///
/// With `wait-phases`, [`WAIT_PHASE_EVENTS`] as well; with
/// `pending-reasons`, [`REASON_EVENTS`].
pub const ALLOWED_EVENTS: [&str; 10] = [
    "submit",
    "dependency-add",
    "dependency-remove",
    "urgency",
    "jobspec-update",
    "alloc",
    "exception",
    "finish",
    "clean",
    "memo",
];

/// The events that time the pending states (`validate`: DEPEND, `depend`:
/// PRIORITY, the first `priority`: SCHED), asked for with `wait-phases`
/// only: three more messages for every job, at about 37,000 broker
/// instructions each (BENCHMARKS.md, "Broker instructions per job").
pub const WAIT_PHASE_EVENTS: [&str; 3] = ["validate", "depend", "priority"];

/// The events that tell why a pending job waits, asked for with
/// `pending-reasons` only: `priority` (not yet prioritised until the
/// first; priority 0 is a hold) and `annotations` (the scheduler's
/// `sched.reason_pending` and `sched.t_estimate`). At least two more
/// messages for every job, and one more each time the scheduler changes
/// what it says of a job, at about 37,000 broker instructions each.
pub const REASON_EVENTS: [&str; 2] = ["priority", "annotations"];

struct Inner {
    ctx: Rc<Context>,
    model: RefCell<JobFlow>,
    allocated: AllocatedWriter,
    roster: RosterWriter,
    stream: Subscription,
    /// The backlog of the current stream is over.
    live: Cell<bool>,
    /// Events came since the summary was last read: the next render reads
    /// it again, once for all of them.
    summary_due: Cell<bool>,
    /// The job shells' usage records (`NAME.usage`), the ranks' live
    /// samples (`NAME.samples`) and the answers about one running job
    /// (`NAME.job-usage`).
    services: RefCell<Vec<MsgHandler>>,
    /// The instance owner's userid, who may send any job's record.
    instance_owner: u32,
    /// Refused records logged so far.
    refusals_logged: Cell<u32>,
    /// The pending jobs' annotations asked of job-list after a backlog.
    recall: RefCell<Option<flux::Rpc>>,
    /// The allocation-seconds of the runs that ended, as last saved for
    /// the module after this one, and the save under way.
    saved: RefCell<(Option<SavedSeconds>, Option<flux::Rpc>)>,
    /// Looks up what the module before this one saved, then subscribes;
    /// then saves every [`SAVE_EVERY`] seconds.
    saving: RefCell<(Option<flux::Rpc>, Option<flux::Timer>)>,
    /// The last save failed (and a failure was logged since the last one
    /// that worked): the next tick saves again, changed or not.
    save_failed: Rc<Cell<bool>>,
}

/// Where the allocation-seconds of the runs that ended are kept for the
/// next module (a reload, an instance restart): the instance's KVS.
pub const SAVED_KEY: &str = "prometheus.allocated-seconds";

/// Seconds between two saves of [`SAVED_KEY`], when the sums changed; it
/// is saved when the collector stops as well.
pub const SAVE_EVERY: f64 = 300.0;

impl Drop for Inner {
    /// Saves the sums as they are: the module is removed in order (an
    /// abandoned module's collectors are never dropped).
    fn drop(&mut self) {
        save_seconds(self);
    }
}

/// Saves the allocation-seconds of the runs that ended where they changed
/// since the last save.
fn save_seconds(inner: &Inner) {
    let Some(saved) = inner.roster.borrow_mut().saved_seconds() else {
        return;
    };
    let mut kept = inner.saved.borrow_mut();
    if !inner.save_failed.get() && kept.0.as_ref() == Some(&saved) {
        return;
    }
    let Ok(json) = serde_json::to_string(&saved) else {
        return;
    };
    let ctx = Rc::downgrade(&inner.ctx);
    let failed = Rc::clone(&inner.save_failed);
    let answer =
        inner
            .ctx
            .handle
            .kvs_put(SAVED_KEY, &json, move |done| match (done, ctx.upgrade()) {
                (Ok(()), _) => failed.set(false),
                (Err(e), Some(ctx)) => save_failed(&ctx.handle, &failed, &e),
                (Err(_), None) => failed.set(true),
            });
    match answer {
        Ok(rpc) => *kept = (Some(saved), Some(rpc)),
        Err(e) => save_failed(&inner.ctx.handle, &inner.save_failed, &e),
    }
}

/// Notes a save that failed, logged once until one works again.
fn save_failed(handle: &flux::Handle, failed: &Cell<bool>, e: &Error) {
    if !failed.replace(true) {
        handle.log(
            flux::Level::Warning,
            &format!("{NAME} collector: cannot save the allocation-seconds in {SAVED_KEY}: {e}"),
        );
    }
}

/// Takes what the module before this one saved (None: nothing saved).
/// What cannot be read is logged and left: the sums are then those of the
/// jobs the job manager keeps.
fn restore_seconds(inner: &Inner, answer: Result<Option<String>, Error>) {
    let why = match answer {
        Ok(None) => return,
        Ok(Some(json)) => match SavedSeconds::parse(&json) {
            Ok(saved) => match inner.roster.borrow_mut().restore_seconds(&saved) {
                Ok(()) => {
                    inner.saved.borrow_mut().0 = Some(saved);
                    return;
                }
                Err(e) => e.to_string(),
            },
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    };
    inner.ctx.handle.log(
        flux::Level::Warning,
        &format!("{NAME} collector: {SAVED_KEY} cannot be read ({why}): the allocation-seconds are counted from the jobs the job manager keeps"),
    );
}

/// Refused usage records logged, at most; the rest are only counted.
const REFUSALS_LOGGED: u32 = 10;

/// What a job shell sends: the job's ID and its usage record.
#[derive(serde::Deserialize)]
struct UsageMessage {
    id: i64,
    usage: usage::JobUsage,
}

/// Why a usage record was not counted, for the sender and the log.
#[derive(Debug, thiserror::Error)]
enum UsageError {
    #[error("unreadable usage record: {0}")]
    Unreadable(String),
    #[error(transparent)]
    Refused(#[from] UsageRefused),
    #[error(transparent)]
    Flux(#[from] Error),
}

impl UsageError {
    fn errno(&self) -> i32 {
        match self {
            UsageError::Unreadable(_) => libc::EPROTO,
            UsageError::Refused(UsageRefused::NotActive(_)) => libc::ENOENT,
            UsageError::Refused(UsageRefused::NotOwner { .. }) => libc::EPERM,
            UsageError::Refused(UsageRefused::Recorded(_)) => libc::EEXIST,
            UsageError::Flux(e) => e.errno,
        }
    }
}

/// Counts one usage record.
fn take_usage(inner: &Inner, request: &Request<'_>) -> Result<(), UsageError> {
    let sender = request.userid()?;
    let payload = request.payload()?.unwrap_or_default();
    let message: UsageMessage = serde_json::from_str(&payload).map_err(|e| {
        inner.model.borrow_mut().refuse_usage();
        UsageError::Unreadable(e.to_string())
    })?;
    inner.model.borrow_mut().record_usage(
        message.id,
        sender,
        inner.instance_owner,
        &message.usage,
    )?;
    Ok(())
}

/// Serves `NAME.usage`, where the job shells send what each job used.
fn serve_usage(inner: &Rc<Inner>) -> Result<MsgHandler, Error> {
    let weak = Rc::downgrade(inner);
    let topic = service(inner, "usage");
    inner
        .ctx
        .handle
        .handle_requests(&topic, true, move |request| {
            let Some(inner) = weak.upgrade() else {
                return request.respond_error(libc::ENOSYS, "the jobflow collector has stopped");
            };
            match take_usage(&inner, request) {
                Ok(()) => request.respond("{}"),
                Err(e) => {
                    log_refusal(&inner, "usage record", &e.to_string());
                    request.respond_error(e.errno(), &e.to_string());
                }
            }
            if inner.live.get() {
                inner.summary_due.set(true);
                inner.ctx.request_publish();
            }
        })
}

/// The module's name, which prefixes its services.
fn service(inner: &Inner, method: &str) -> String {
    let name = inner
        .ctx
        .handle
        .module_name()
        .unwrap_or_else(|| "prometheus".into());
    format!("{name}.{method}")
}

/// Logs a refusal, the first [`REFUSALS_LOGGED`] of them.
fn log_refusal(inner: &Inner, what: &str, why: &str) {
    let logged = inner.refusals_logged.get();
    if logged < REFUSALS_LOGGED {
        inner.refusals_logged.set(logged + 1);
        let more = if logged + 1 == REFUSALS_LOGGED {
            " (further refusals are only counted: flux_jobs_usage_refused_total, flux_usage_samples_refused_total)"
        } else {
            ""
        };
        inner.ctx.handle.log(
            Level::Warning,
            &format!("{NAME} collector: {what} refused: {why}{more}"),
        );
    }
}

/// Serves `NAME.samples`, where the module on each rank (the instance
/// owner's, as every module is) sends its running jobs' samples: a batch of
/// its own, or a bundle of the batches of its part of the overlay tree.
fn serve_samples(inner: &Rc<Inner>) -> Result<MsgHandler, Error> {
    let weak = Rc::downgrade(inner);
    let topic = service(inner, usage::live::SAMPLES_METHOD);
    inner
        .ctx
        .handle
        .handle_requests(&topic, false, move |request| {
            let Some(inner) = weak.upgrade() else {
                return request.respond_error(libc::ENOSYS, "the jobflow collector has stopped");
            };
            let cpu_before = flux::thread_cpu_seconds();
            let payload = request.payload_str().ok().flatten().unwrap_or_default();
            inner.model.borrow_mut().count_live_message();
            match usage::live::read_samples(&payload) {
                Ok(batches) => {
                    let now = inner.ctx.handle.now();
                    inner
                        .model
                        .borrow()
                        .prefetch_live(batches.iter().flatten().map(|b| b.rank));
                    for batch in batches {
                        take_batch(&inner, now, batch);
                    }
                    request.respond("{}");
                }
                Err(e) => {
                    inner.model.borrow_mut().refuse_live();
                    log_refusal(&inner, "a rank's live samples", &e.to_string());
                    request.respond_error(libc::EPROTO, &e.to_string());
                }
            }
            if let (Some(before), Some(after)) = (cpu_before, flux::thread_cpu_seconds()) {
                inner.model.borrow_mut().count_live_cpu(after - before);
            }
            if inner.live.get() {
                inner.summary_due.set(true);
                inner.ctx.request_publish();
            }
        })
}

/// Takes one rank's batch; one that cannot be read is refused alone.
fn take_batch(
    inner: &Inner,
    now: f64,
    batch: Result<usage::live::Batch<'_>, usage::live::WireError>,
) {
    match batch {
        Ok(batch) => {
            let rank = batch.rank;
            let refused = inner
                .model
                .borrow_mut()
                .take_live(now, batch, inner.instance_owner);
            if refused > 0 {
                log_refusal(
                    inner,
                    "live samples",
                    &format!("{refused} of rank {rank}'s batch name jobs that are not active, or were registered by a user who does not own them"),
                );
            }
        }
        Err(e) => {
            inner.model.borrow_mut().refuse_live();
            log_refusal(inner, "a rank's batch of live samples", &e.to_string());
        }
    }
}

/// The request of `NAME.job-usage`.
#[derive(serde::Deserialize)]
struct JobUsageRequest {
    id: i64,
}

/// Serves `NAME.job-usage`: a running job's figures, node by node, to its
/// owner or the instance owner.
fn serve_job_usage(inner: &Rc<Inner>) -> Result<MsgHandler, Error> {
    let weak = Rc::downgrade(inner);
    let topic = service(inner, usage::live::JOB_METHOD);
    inner.ctx.handle.handle_requests(&topic, true, move |request| {
        let Some(inner) = weak.upgrade() else {
            return request.respond_error(libc::ENOSYS, "the jobflow collector has stopped");
        };
        let asked = request.payload().ok().flatten().unwrap_or_default();
        let Ok(JobUsageRequest { id }) = serde_json::from_str(&asked) else {
            return request.respond_error(libc::EPROTO, "expected {\"id\": JOBID}");
        };
        let Ok(requester) = request.userid() else {
            return request.respond_error(libc::EPROTO, "the request carries no userid");
        };
        let now = inner.ctx.handle.now();
        let answer =
            inner
                .model
                .borrow()
                .live_job(id, now, requester, inner.instance_owner);
        match answer {
            Ok(Some(job)) => match serde_json::to_string(&job) {
                Ok(text) => request.respond(&text),
                Err(e) => request.respond_error(libc::EIO, &e.to_string()),
            },
            Ok(None) => request.respond_error(
                libc::ENODATA,
                &format!("no node has reported job {id} yet (the module samples every sample-interval on each rank; is it loaded on every rank, and the shell plugin installed?)"),
            ),
            Err(e) => {
                let errno = match e {
                    UsageRefused::NotOwner { .. } => libc::EPERM,
                    _ => libc::ENOENT,
                };
                request.respond_error(errno, &e.to_string());
            }
        }
    })
}

fn start(ctx: Rc<Context>, settings: &Settings) -> Result<Box<dyn Collector>, Error> {
    let options = Options::from(settings).map_err(|e| Error::new(libc::EINVAL, e.to_string()))?;
    let since = ctx.handle.now();
    let handle = ctx.handle;
    let mut model = JobFlow::with_labels(
        since,
        &options.wait_buckets,
        &options.run_buckets,
        options.labels,
    );
    if options.wait_phases {
        model.time_wait_phases();
    }
    if options.pending_reasons {
        model.explain_pending();
    }
    let inner = Rc::new(Inner {
        model: RefCell::new(model),
        allocated: ctx.allocated_writer(),
        roster: ctx.roster_writer(),
        ctx,
        stream: Subscription::new(TOPIC, "job-manager"),
        live: Cell::new(false),
        summary_due: Cell::new(false),
        services: RefCell::new(Vec::new()),
        instance_owner: handle
            .attr("security.owner")
            .and_then(|owner| owner.parse().ok())
            .unwrap_or(u32::MAX),
        refusals_logged: Cell::new(0),
        recall: RefCell::new(None),
        saved: RefCell::new((None, None)),
        saving: RefCell::new((None, None)),
        save_failed: Rc::new(Cell::new(false)),
    });
    *inner.services.borrow_mut() = vec![
        serve_usage(&inner)?,
        serve_samples(&inner)?,
        serve_job_usage(&inner)?,
    ];
    inner.model.borrow_mut().know_queues(settings.queues);
    inner
        .model
        .borrow_mut()
        .show_live_jobs(options.job_usage_series);
    let weak: Weak<Inner> = Rc::downgrade(&inner);
    let summary = weak.clone();
    inner.ctx.before_publish(NAME, move || {
        let Some(inner) = summary.upgrade() else {
            return false;
        };
        if inner.summary_due.take() {
            let (started, summary) = read_summary(&inner);
            inner.ctx.succeeded_in_publish(NAME, started, summary);
        }
        true
    });
    // What the module before this one saved is taken before the first
    // backlog is read, which is checked against it.
    let restoring = weak.clone();
    let lookup = handle.kvs_lookup(SAVED_KEY, move |answer| {
        if let Some(inner) = restoring.upgrade() {
            restore_seconds(&inner, answer);
            if let Err(e) = subscribe(&inner) {
                inner.ctx.failed(NAME, &e, |_| {});
            }
        }
    });
    match lookup {
        Ok(rpc) => inner.saving.borrow_mut().0 = Some(rpc),
        Err(e) => {
            restore_seconds(&inner, Err(e));
            subscribe(&inner)?;
        }
    }
    let saving = weak;
    let timer = handle.timer(SAVE_EVERY, SAVE_EVERY, move || {
        if let Some(inner) = saving.upgrade() {
            save_seconds(&inner);
        }
    })?;
    timer.start();
    inner.saving.borrow_mut().1 = Some(timer);
    Ok(Box::new(inner))
}

/// Follows the journal.
fn subscribe(inner: &Rc<Inner>) -> Result<(), Error> {
    let subscribing = Rc::downgrade(inner);
    let weak = Rc::downgrade(inner);
    inner.stream.start(
        inner.ctx.handle,
        move || {
            subscribing
                .upgrade()
                .map(|inner| subscription_payload(&inner))
                .unwrap_or_default()
        },
        move |event| {
            if let Some(inner) = weak.upgrade() {
                on_event(&inner, event);
            }
        },
    )
}

impl Collector for Inner {
    /// Gives every queue ("" for the anonymous queue) zero-valued series
    /// until its jobs move: the instance's queues as the broker config
    /// defines them, after `flux config reload`.
    fn reconfigure(&self, settings: &Settings) {
        self.model.borrow_mut().know_queues(settings.queues);
        if self.live.get() {
            publish_summary(self);
        }
    }
}

/// Before each subscription: the backlog starts over, inactive jobs and
/// all.
fn subscription_payload(inner: &Rc<Inner>) -> String {
    inner.live.set(false);
    inner.model.borrow_mut().begin_backlog();
    inner.allocated.borrow_mut().begin_backlog();
    inner.roster.borrow_mut().begin_backlog();
    inner.ctx.nested().model_mut().begin_backlog();
    // Inactive jobs too, every time: the allocation-seconds of each user,
    // project and queue are read again from every job the job manager
    // keeps; the counters count only what is newer than the watermark.
    let full = true;
    let model = inner.model.borrow();
    let phase_events: &[&str] = if model.times_wait_phases() {
        &WAIT_PHASE_EVENTS
    } else {
        &[]
    };
    let reason_events: &[&str] = if model.explains_pending() {
        &REASON_EVENTS
    } else {
        &[]
    };
    let allow: serde_json::Map<String, serde_json::Value> = ALLOWED_EVENTS
        .iter()
        .chain(phase_events)
        .chain(reason_events)
        .map(|&name| (name.to_string(), serde_json::json!(1)))
        .collect();
    serde_json::json!({ "full": full, "allow": allow }).to_string()
}

fn on_event(inner: &Rc<Inner>, event: StreamEvent) {
    let payload = match event {
        StreamEvent::Response(payload) => payload,
        // The stream ended: report it, keep the counts (they stay true);
        // the subscription tries again with backoff.
        StreamEvent::Ended { message, .. } => {
            inner.live.set(false);
            inner.allocated.borrow_mut().stream_lost();
            inner.roster.borrow_mut().stream_lost();
            return inner.ctx.failed(NAME, &message, |_| {});
        }
    };
    let applied = inner.model.borrow_mut().apply_tracking(
        &payload,
        Some(&mut inner.allocated.borrow_mut()),
        Some(&mut inner.ctx.nested().model_mut()),
        Some(&mut inner.roster.borrow_mut()),
    );
    inner.ctx.nested().settle(inner.ctx.handle);
    for scheme in inner.model.borrow_mut().take_unknown_dependencies() {
        inner.ctx.handle.log(
            Level::Info,
            &format!("{NAME} collector: dependency scheme '{scheme}' is not flux-core's or flux-accounting's: its jobs count as pending reason 'dependency'"),
        );
    }
    match applied {
        Ok(Applied::EndOfBacklog) => {
            inner.allocated.borrow_mut().end_backlog();
            inner.roster.borrow_mut().end_backlog();
            inner.live.set(true);
            inner.stream.healthy();
            publish_summary(inner);
            recall_annotations(inner);
        }
        // Events arriving before a render update the state together: the
        // summary is read once for them, as the render begins, not once per
        // event.
        Ok(Applied::Events) if inner.live.get() => {
            inner.summary_due.set(true);
            inner.ctx.request_publish();
        }
        Ok(Applied::Events) => {}
        // One unreadable event is reported; the stream and the counts go on,
        // but the allocated set may have missed an allocation, so the
        // resources collector goes back to asking the job manager.
        // The roster stays: it has a fallback in no other source, and a
        // response that cannot be read names no job to correct.
        Err(msg) => {
            inner.allocated.borrow_mut().stream_lost();
            inner.ctx.failed(NAME, &msg, |_| {})
        }
    }
}

/// After a backlog, which does not carry annotations: asks job-list for the
/// pending jobs' (the scheduler's reasons and start estimates), where
/// reasons are counted. Without an answer they stay unknown until the
/// scheduler next changes them; the failure is logged, the rest goes on.
fn recall_annotations(inner: &Rc<Inner>) {
    if !inner.model.borrow().explains_pending() {
        return;
    }
    let weak = Rc::downgrade(inner);
    let sent = inner
        .ctx
        .handle
        .rpc("job-list.list", jobflow::RECALL_ANNOTATIONS, false, move |answer| {
            let Some(inner) = weak.upgrade() else {
                return;
            };
            let taken = answer
                .map_err(|e| e.message)
                .and_then(|payload| {
                    inner
                        .model
                        .borrow_mut()
                        .recall_annotations(&payload)
                        .map_err(|e| e.to_string())
                });
            match taken {
                Ok(_) => {
                    inner.summary_due.set(true);
                    inner.ctx.request_publish();
                }
                Err(message) => inner.ctx.handle.log(
                    Level::Warning,
                    &format!("{NAME} collector: pending jobs' annotations not read from job-list ({message}): start estimates and scheduler reasons show as the scheduler next changes them"),
                ),
            }
        });
    match sent {
        Ok(rpc) => *inner.recall.borrow_mut() = Some(rpc),
        Err(err) => inner.ctx.handle.log(
            Level::Warning,
            &format!(
                "{NAME} collector: cannot ask job-list for pending jobs' annotations: {}",
                err.message
            ),
        ),
    }
}

fn publish_summary(inner: &Inner) {
    inner.summary_due.set(false);
    let (started, summary) = read_summary(inner);
    inner.ctx.succeeded(NAME, started, summary);
}

/// The model's summary, as a change of the state, and when reading it began.
fn read_summary(inner: &Inner) -> (Instant, impl FnOnce(&mut State)) {
    let started = Instant::now();
    let now = inner.ctx.handle.now();
    inner.model.borrow_mut().expire_live(now);
    let summary = inner.model.borrow().summary();
    (started, move |state: &mut State| {
        state.set(SECTION, summary)
    })
}

/// Labels `queue`, `user` and `project` first, each left out when empty
/// (the anonymous queue; user and project labels not enabled).
fn with_queue<'a>(key: &'a FlowKey, rest: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut labels = Vec::with_capacity(rest.len() + 3);
    for (name, value) in [
        ("queue", &key.queue),
        ("user", &key.user),
        ("project", &key.project),
    ] {
        if !value.is_empty() {
            labels.push((name, value.as_str()));
        }
    }
    labels.extend_from_slice(rest);
    labels
}

fn render(state: &State, out: &mut Rendered) {
    let Some(flow) = state.get(SECTION) else {
        return;
    };
    let mut f = Family::of(out, &JOBS_SUBMITTED_TOTAL);
    for (q, qf) in &flow.queues {
        f.sample(&with_queue(q, &[]), qf.submitted as f64);
    }
    let mut f = Family::of(out, &JOBS_STARTED_TOTAL);
    for (q, qf) in &flow.queues {
        f.sample(&with_queue(q, &[]), qf.started as f64);
    }
    let mut f = Family::of(out, &JOBS_FINISHED_TOTAL);
    for (q, qf) in &flow.queues {
        for (result, n) in &qf.finished {
            f.sample(&with_queue(q, &[("result", result)]), *n as f64);
        }
    }
    let mut f = Family::of(out, &JOBS_EXCEPTIONS_TOTAL);
    for (q, qf) in &flow.queues {
        for (kind, n) in &qf.exceptions {
            f.sample(&with_queue(q, &[("type", kind)]), *n as f64);
        }
    }
    let mut f = Family::of(out, &JOBS_QUEUE_WAIT_SECONDS);
    for (q, qf) in &flow.queues {
        f.observations(&with_queue(q, &[]), &qf.wait);
    }
    if flow.wait_phases {
        type Of = fn(&jobflow::WaitPhases) -> &[jobflow::Histogram; 3];
        let families: [(&Doc, Of); 2] = [
            (&JOBS_WAIT_PHASE_SECONDS, |p| &p.started),
            (&JOBS_UNSTARTED_WAIT_PHASE_SECONDS, |p| &p.unstarted),
        ];
        for (doc, of) in families {
            let mut f = Family::of(out, doc);
            for (q, phases) in flow
                .queues
                .iter()
                .filter_map(|(q, qf)| Some((q, qf.phases.as_deref()?)))
            {
                for (phase, h) in WAIT_PHASES.iter().zip(of(phases)) {
                    f.observations(&with_queue(q, &[("phase", phase)]), h);
                }
            }
        }
    }
    let mut f = Family::of(out, &JOBS_RUN_SECONDS);
    for (q, qf) in &flow.queues {
        for (result, h) in &qf.run {
            f.observations(&with_queue(q, &[("result", result)]), h);
        }
    }
    type Total = fn(&jobflow::UsageFlow) -> f64;
    let totals: [(&Doc, Total); 7] = [
        (&JOBS_USAGE_RECORDS_TOTAL, |u| u.records as f64),
        (&JOBS_CPU_SECONDS_TOTAL, |u| u.cpu_seconds),
        (&JOBS_ALLOCATED_CORE_SECONDS_TOTAL, |u| u.core_seconds),
        (&JOBS_ALLOCATED_GPU_SECONDS_TOTAL, |u| u.gpu_seconds),
        (&JOBS_MEMORY_BYTE_SECONDS_TOTAL, |u| u.memory_byte_seconds),
        (&JOBS_GPU_BUSY_SECONDS_TOTAL, |u| u.gpu_busy_seconds),
        (&JOBS_GPU_MEASURED_SECONDS_TOTAL, |u| u.gpu_measured_seconds),
    ];
    for (doc, pick) in totals {
        let mut f = Family::of(out, doc);
        for (q, qf) in &flow.queues {
            f.sample(&with_queue(q, &[]), pick(&qf.usage));
        }
    }
    let mut f = Family::of(out, &JOBS_CPU_EFFICIENCY_RATIO);
    for (q, qf) in &flow.queues {
        f.observations(&with_queue(q, &[]), &qf.usage.efficiency);
    }
    let mut f = Family::of(out, &JOBS_PEAK_MEMORY_BYTES);
    for (q, qf) in &flow.queues {
        f.observations(&with_queue(q, &[]), &qf.usage.peak_memory);
    }
    let mut f = Family::of(out, &JOBS_MEMORY_SHARE_PEAK_RATIO);
    for (q, qf) in &flow.queues {
        f.observations(&with_queue(q, &[]), &qf.usage.memory_share);
    }
    let mut f = Family::of(out, &JOBS_GPU_UTILIZATION_RATIO);
    for (q, qf) in &flow.queues {
        f.observations(&with_queue(q, &[]), &qf.usage.gpu_utilization);
    }
    Family::of(out, &JOBS_USAGE_REFUSED_TOTAL).sample(&[], flow.usage_refused as f64);
    type Now = fn(&jobflow::LiveFlow) -> f64;
    let now: [(&Doc, &Doc, Now); 7] = [
        (&JOBS_RUNNING_SAMPLED, &JOB_USAGE_SAMPLED_NODES, |l| {
            l.jobs as f64
        }),
        (&JOBS_RUNNING_CPU_CORES, &JOB_CPU_CORES, |l| l.cpu_cores),
        (&JOBS_RUNNING_ALLOCATED_CORES, &JOB_ALLOCATED_CORES, |l| {
            l.allocated_cores as f64
        }),
        (&JOBS_RUNNING_MEMORY_BYTES, &JOB_MEMORY_BYTES, |l| {
            l.memory_bytes as f64
        }),
        (&JOBS_RUNNING_GPUS_BUSY, &JOB_GPUS_BUSY, |l| l.gpus_busy),
        (&JOBS_RUNNING_MEASURED_GPUS, &JOB_MEASURED_GPUS, |l| {
            l.measured_gpus as f64
        }),
        (&JOBS_RUNNING_GPU_MEMORY_BYTES, &JOB_GPU_MEMORY_BYTES, |l| {
            l.gpu_memory_bytes as f64
        }),
    ];
    for (queue_doc, _, pick) in now {
        let mut f = Family::of(out, queue_doc);
        for (q, l) in &flow.live {
            f.sample(&with_queue(q, &[]), pick(l));
        }
    }
    if !flow.live_jobs.is_empty() {
        let ids: Vec<String> = flow
            .live_jobs
            .iter()
            .map(|r| crate::model::nested::f58(r.id.unsigned_abs()))
            .collect();
        for (_, job_doc, pick) in &now[1..] {
            let mut f = Family::of(out, job_doc);
            for (row, id) in flow.live_jobs.iter().zip(&ids) {
                f.sample(&with_queue(&row.key, &[("jobid", id)]), pick(&row.flow));
            }
        }
    }
    Family::of(out, &USAGE_SAMPLING_RANKS).sample(&[], flow.live_ranks as f64);
    Family::of(out, &USAGE_SAMPLES_REFUSED_TOTAL).sample(&[], flow.live_refused as f64);
    Family::of(out, &USAGE_SAMPLE_MESSAGES_TOTAL).sample(&[], flow.live_messages as f64);
    Family::of(out, &USAGE_SAMPLE_BATCHES_TOTAL).sample(&[], flow.live_batches as f64);
    Family::of(out, &USAGE_SAMPLE_CPU_SECONDS_TOTAL).sample(&[], flow.live_cpu_seconds);
    type Pick = fn(&crate::model::jobflow::Demand) -> Option<f64>;
    let demand_families: [(&Doc, Pick); 6] = [
        (&QUEUE_PENDING_JOBS, |d| Some(d.jobs as f64)),
        (&QUEUE_PENDING_REQUESTED_NODES, |d| Some(d.nodes as f64)),
        (&QUEUE_PENDING_REQUESTED_CORES, |d| Some(d.cores as f64)),
        (&QUEUE_PENDING_REQUESTED_GPUS, |d| Some(d.gpus as f64)),
        (&QUEUE_PENDING_LARGEST_JOB_NODES, |d| {
            Some(d.largest_nodes as f64)
        }),
        (&QUEUE_PENDING_OLDEST_SUBMIT_TIMESTAMP_SECONDS, |d| {
            d.oldest_submit
        }),
    ];
    for (doc, pick) in demand_families {
        let mut f = Family::of(out, doc);
        for ((q, status), d) in &flow.demand {
            if let Some(v) = pick(d) {
                f.sample(&with_queue(q, &[("status", status)]), v);
            }
        }
    }
    if let Some(reasons) = &flow.reasons {
        render_reasons(reasons, state.get(queues::SECTION), out);
    }
}

/// Pending jobs by reason, and the start estimates. A queue the queues
/// collector found stopped holds the jobs that would wait on the
/// scheduler; without that collector no queue is known to be stopped.
fn render_reasons(reasons: &PendingReasons, queues: Option<&Vec<QueueStatus>>, out: &mut Rendered) {
    let stopped = |queue: &str| {
        queues.is_some_and(|list| {
            list.iter()
                .any(|q| q.name.as_deref().unwrap_or("") == queue && !q.started)
        })
    };
    let mut f = Family::of(out, &QUEUE_PENDING_REASON_JOBS);
    for (key, counts) in &reasons.jobs {
        for (reason, n) in PendingReasons::of_key(counts, stopped(&key.queue)) {
            f.sample(&with_queue(key, &[("reason", reason)]), n as f64);
        }
    }
    let mut f = Family::of(out, &QUEUE_PENDING_ESTIMATED_JOBS);
    for (key, estimate) in &reasons.estimates {
        f.sample(&with_queue(key, &[]), estimate.jobs as f64);
    }
    let mut f = Family::of(out, &QUEUE_PENDING_NEXT_START_ESTIMATE_TIMESTAMP_SECONDS);
    for (key, estimate) in &reasons.estimates {
        f.sample(&with_queue(key, &[]), estimate.earliest);
    }
}

/// The families this collector writes.
pub const FAMILIES: &[Doc] = &[
    JOBS_SUBMITTED_TOTAL,
    JOBS_STARTED_TOTAL,
    JOBS_FINISHED_TOTAL,
    JOBS_EXCEPTIONS_TOTAL,
    JOBS_QUEUE_WAIT_SECONDS,
    JOBS_WAIT_PHASE_SECONDS,
    JOBS_UNSTARTED_WAIT_PHASE_SECONDS,
    JOBS_RUN_SECONDS,
    JOBS_USAGE_RECORDS_TOTAL,
    JOBS_CPU_SECONDS_TOTAL,
    JOBS_ALLOCATED_CORE_SECONDS_TOTAL,
    JOBS_ALLOCATED_GPU_SECONDS_TOTAL,
    JOBS_MEMORY_BYTE_SECONDS_TOTAL,
    JOBS_GPU_BUSY_SECONDS_TOTAL,
    JOBS_GPU_MEASURED_SECONDS_TOTAL,
    JOBS_CPU_EFFICIENCY_RATIO,
    JOBS_PEAK_MEMORY_BYTES,
    JOBS_MEMORY_SHARE_PEAK_RATIO,
    JOBS_GPU_UTILIZATION_RATIO,
    JOBS_USAGE_REFUSED_TOTAL,
    JOBS_RUNNING_SAMPLED,
    JOBS_RUNNING_CPU_CORES,
    JOBS_RUNNING_ALLOCATED_CORES,
    JOBS_RUNNING_MEMORY_BYTES,
    JOBS_RUNNING_GPUS_BUSY,
    JOBS_RUNNING_MEASURED_GPUS,
    JOBS_RUNNING_GPU_MEMORY_BYTES,
    JOB_CPU_CORES,
    JOB_ALLOCATED_CORES,
    JOB_MEMORY_BYTES,
    JOB_GPUS_BUSY,
    JOB_MEASURED_GPUS,
    JOB_GPU_MEMORY_BYTES,
    USAGE_SAMPLING_RANKS,
    USAGE_SAMPLES_REFUSED_TOTAL,
    USAGE_SAMPLE_MESSAGES_TOTAL,
    USAGE_SAMPLE_BATCHES_TOTAL,
    USAGE_SAMPLE_CPU_SECONDS_TOTAL,
    QUEUE_PENDING_JOBS,
    QUEUE_PENDING_REQUESTED_NODES,
    QUEUE_PENDING_REQUESTED_CORES,
    QUEUE_PENDING_REQUESTED_GPUS,
    QUEUE_PENDING_LARGEST_JOB_NODES,
    QUEUE_PENDING_OLDEST_SUBMIT_TIMESTAMP_SECONDS,
    QUEUE_PENDING_REASON_JOBS,
    QUEUE_PENDING_ESTIMATED_JOBS,
    QUEUE_PENDING_NEXT_START_ESTIMATE_TIMESTAMP_SECONDS,
];

const QUEUE_PENDING_REASON_JOBS: Doc = Doc::gauge(
    "flux_queue_pending_reason_jobs",
    "Pending jobs by the one reason each waits, in the order flux acts on them: held (urgency 0, or priority 0), a dependency (flux-accounting's limits by their own names, begin-time, any other as dependency), priority (not yet prioritised), queue-stopped, then the scheduler's own sched.reason_pending where it gives one, else resources. Sums to the queue's pending jobs. With the jobflow option pending-reasons only.",
    &["queue", "user", "project", "reason"],
)
.folded(Fold::Sum);

const QUEUE_PENDING_ESTIMATED_JOBS: Doc = Doc::gauge(
    "flux_queue_pending_estimated_jobs",
    "Pending jobs the scheduler gave a start estimate (sched.t_estimate: flux-core's schedulers give the first pending job one, Fluxion with a backfilling queue policy the jobs it reserves for). Absent where none has one. With the jobflow option pending-reasons only.",
    &["queue", "user", "project"],
)
.folded(Fold::Sum);

const QUEUE_PENDING_NEXT_START_ESTIMATE_TIMESTAMP_SECONDS: Doc = Doc::gauge(
    "flux_queue_pending_next_start_estimate_timestamp_seconds",
    "The earliest start the scheduler estimates for a pending job (sched.t_estimate); the seconds until it are this minus time(). Absent where no pending job has an estimate. With the jobflow option pending-reasons only.",
    &["queue", "user", "project"],
)
.folded(Fold::Min);
const QUEUE_PENDING_JOBS: Doc = Doc::gauge(
    "flux_queue_pending_jobs",
    "Pending jobs by status: eligible to run, held (urgency 0), or blocked on dependencies.",
    &["queue", "user", "project", "status"],
)
.folded(Fold::Sum);

const QUEUE_PENDING_REQUESTED_NODES: Doc = Doc::gauge(
    "flux_queue_pending_requested_nodes",
    "Nodes requested by pending jobs (jobs that ask for slots only count none).",
    &["queue", "user", "project", "status"],
)
.folded(Fold::Sum);

const QUEUE_PENDING_REQUESTED_CORES: Doc = Doc::gauge(
    "flux_queue_pending_requested_cores",
    "Cores requested by pending jobs (slots times cores per slot).",
    &["queue", "user", "project", "status"],
)
.folded(Fold::Sum);

const QUEUE_PENDING_REQUESTED_GPUS: Doc = Doc::gauge(
    "flux_queue_pending_requested_gpus",
    "GPUs requested by pending jobs.",
    &["queue", "user", "project", "status"],
)
.folded(Fold::Sum);

const QUEUE_PENDING_LARGEST_JOB_NODES: Doc = Doc::gauge(
    "flux_queue_pending_largest_job_nodes",
    "Nodes requested by the largest pending job.",
    &["queue", "user", "project", "status"],
)
.folded(Fold::Max);

const QUEUE_PENDING_OLDEST_SUBMIT_TIMESTAMP_SECONDS: Doc = Doc::gauge(
    "flux_queue_pending_oldest_submit_timestamp_seconds",
    "Submit time of the oldest pending job; its age is time() minus this.",
    &["queue", "user", "project", "status"],
)
.folded(Fold::Min);

const JOBS_SUBMITTED_TOTAL: Doc = Doc::counter(
    "flux_jobs_submitted_total",
    "Jobs submitted since the module loaded (job-manager journal).",
    &["queue", "user", "project"],
);

const JOBS_STARTED_TOTAL: Doc = Doc::counter(
    "flux_jobs_started_total",
    "Jobs that started running (were allocated resources, flux jobs' t_run) since the module loaded.",
    &["queue", "user", "project"],
);

const JOBS_FINISHED_TOTAL: Doc = Doc::counter(
    "flux_jobs_finished_total",
    "Jobs that became inactive since the module loaded, by result as flux jobs shows it.",
    &["queue", "user", "project", "result"],
);

const JOBS_EXCEPTIONS_TOTAL: Doc = Doc::counter(
    "flux_jobs_exceptions_total",
    "Job exceptions raised since the module loaded, by type.",
    &["queue", "user", "project", "type"],
);

const JOBS_QUEUE_WAIT_SECONDS: Doc = Doc::histogram(
    "flux_jobs_queue_wait_seconds",
    "Time from submit to allocation (flux jobs' t_run - t_submit) of jobs that started running since the module loaded.",
    &["queue", "user", "project"],
);

const JOBS_WAIT_PHASE_SECONDS: Doc = Doc::histogram(
    "flux_jobs_wait_phase_seconds",
    "Time jobs that started running since the module loaded spent in each pending state, as flux jobs' timestamps give it: phase dependency (DEPEND, t_priority - t_depend), priority (PRIORITY, t_sched - t_priority) and scheduler (SCHED, t_run - t_sched). With the jobflow option wait-phases only.",
    &["queue", "user", "project", "phase"],
);

const JOBS_UNSTARTED_WAIT_PHASE_SECONDS: Doc = Doc::histogram(
    "flux_jobs_unstarted_wait_phase_seconds",
    "Time jobs that left pending without starting (a fatal exception before allocation, such as a cancel) since the module loaded spent in each pending state they entered, the last up to that exception; phases as in flux_jobs_wait_phase_seconds. With the jobflow option wait-phases only.",
    &["queue", "user", "project", "phase"],
);

const JOBS_USAGE_RECORDS_TOTAL: Doc = Doc::counter(
    "flux_jobs_usage_records_total",
    "Jobs whose usage their job shells recorded when their tasks ended (the prometheus shell plugin); jobs that opted out or ran without it are not counted.",
    &["queue", "user", "project"],
);

const JOBS_CPU_SECONDS_TOTAL: Doc = Doc::counter(
    "flux_jobs_cpu_seconds_total",
    "CPU time (user and system) the tasks of jobs with a usage record used, node by node, counted when the job's tasks ended.",
    &["queue", "user", "project"],
);

const JOBS_ALLOCATED_CORE_SECONDS_TOTAL: Doc = Doc::counter(
    "flux_jobs_allocated_core_seconds_total",
    "Core time allocated to jobs with a usage record: each node's cores times the time its tasks ran. CPU efficiency is flux_jobs_cpu_seconds_total over this.",
    &["queue", "user", "project"],
);

const JOBS_ALLOCATED_GPU_SECONDS_TOTAL: Doc = Doc::counter(
    "flux_jobs_allocated_gpu_seconds_total",
    "GPU time allocated to jobs with a usage record: each node's GPUs times the time its tasks ran.",
    &["queue", "user", "project"],
);

const JOBS_MEMORY_BYTE_SECONDS_TOTAL: Doc = Doc::counter(
    "flux_jobs_memory_byte_seconds_total",
    "Memory held over time by jobs with a usage record: each node's sampled memory (its cgroup's, or the sum of its tasks' resident sets) held until the next sample.",
    &["queue", "user", "project"],
);

const JOBS_GPU_BUSY_SECONDS_TOTAL: Doc = Doc::counter(
    "flux_jobs_gpu_busy_seconds_total",
    "GPU time in which a kernel ran, for jobs with a usage record whose GPUs NVML measured (each look's utilisation held over the time since the previous).",
    &["queue", "user", "project"],
);

const JOBS_GPU_MEASURED_SECONDS_TOTAL: Doc = Doc::counter(
    "flux_jobs_gpu_measured_seconds_total",
    "GPU time NVML measured, for jobs with a usage record: the denominator of flux_jobs_gpu_busy_seconds_total.",
    &["queue", "user", "project"],
);

const JOBS_MEMORY_SHARE_PEAK_RATIO: Doc = Doc::histogram(
    "flux_jobs_memory_share_peak_ratio",
    "Peak memory of each job with a usage record over its memory share: its shell cgroup's limit, or each node's memory in proportion to the cores allocated there.",
    &["queue", "user", "project"],
);

const JOBS_GPU_UTILIZATION_RATIO: Doc = Doc::histogram(
    "flux_jobs_gpu_utilization_ratio",
    "GPU utilisation of each job with a usage record whose GPUs NVML measured: busy over measured GPU time.",
    &["queue", "user", "project"],
);

const JOBS_CPU_EFFICIENCY_RATIO: Doc = Doc::histogram(
    "flux_jobs_cpu_efficiency_ratio",
    "CPU efficiency of each job with a usage record: CPU time used over core time allocated (over 1 where tasks use more cores than allocated).",
    &["queue", "user", "project"],
);

const JOBS_PEAK_MEMORY_BYTES: Doc = Doc::histogram(
    "flux_jobs_peak_memory_bytes",
    "Peak memory of each job with a usage record: the sum of each node's peak.",
    &["queue", "user", "project"],
);

const JOBS_USAGE_REFUSED_TOTAL: Doc = Doc::counter(
    "flux_jobs_usage_refused_total",
    "Usage records refused: unreadable, for a job that is not active, from a user who owns neither the job nor the instance, or a job's second.",
    &[],
);

const JOBS_RUNNING_SAMPLED: Doc = Doc::gauge(
    "flux_jobs_running_sampled",
    "Running jobs whose nodes' prometheus modules sample them now (the shell plugin registers each job's tasks with the module on its node).",
    &["queue", "user", "project"],
)
.folded(Fold::Sum);

const JOBS_RUNNING_CPU_CORES: Doc = Doc::gauge(
    "flux_jobs_running_cpu_cores",
    "Cores' worth of CPU the sampled running jobs used over each node's last sampling period. Over flux_jobs_running_allocated_cores it is their CPU efficiency now.",
    &["queue", "user", "project"],
)
.folded(Fold::Sum);

const JOBS_RUNNING_ALLOCATED_CORES: Doc = Doc::gauge(
    "flux_jobs_running_allocated_cores",
    "Cores allocated to the sampled running jobs, on the nodes that have measured a rate.",
    &["queue", "user", "project"],
)
.folded(Fold::Sum);

const JOBS_RUNNING_MEMORY_BYTES: Doc = Doc::gauge(
    "flux_jobs_running_memory_bytes",
    "Resident memory of the sampled running jobs' processes (or cgroups) at each node's last look.",
    &["queue", "user", "project"],
)
.folded(Fold::Sum);

const JOBS_RUNNING_GPUS_BUSY: Doc = Doc::gauge(
    "flux_jobs_running_gpus_busy",
    "GPUs' worth of busy time of the sampled running jobs over each node's last sampling period: the share of time a kernel ran, from NVML's utilisation samples, summed over their GPUs. Over flux_jobs_running_measured_gpus it is their GPU utilisation now.",
    &["queue", "user", "project"],
)
.folded(Fold::Sum);

const JOBS_RUNNING_MEASURED_GPUS: Doc = Doc::gauge(
    "flux_jobs_running_measured_gpus",
    "GPUs allocated to the sampled running jobs whose utilisation NVML measured at each node's last look.",
    &["queue", "user", "project"],
)
.folded(Fold::Sum);

const JOBS_RUNNING_GPU_MEMORY_BYTES: Doc = Doc::gauge(
    "flux_jobs_running_gpu_memory_bytes",
    "Memory in use on the sampled running jobs' GPUs at each node's last look (NVML).",
    &["queue", "user", "project"],
)
.folded(Fold::Sum);

// Shares the picker table with the queue families; it has no per-job
// series of its own.
const JOB_USAGE_SAMPLED_NODES: Doc = JOBS_RUNNING_SAMPLED;

const JOB_CPU_CORES: Doc = Doc::gauge(
    "flux_job_cpu_cores",
    "Cores' worth of CPU a running job used over its nodes' last sampling period; only with job-usage-series=N, for the N running jobs with the most allocated cores idle.",
    &["queue", "user", "project", "jobid"],
);

const JOB_ALLOCATED_CORES: Doc = Doc::gauge(
    "flux_job_allocated_cores",
    "Cores allocated to a running job on the nodes that have measured a rate; only with job-usage-series=N.",
    &["queue", "user", "project", "jobid"],
);

const JOB_MEMORY_BYTES: Doc = Doc::gauge(
    "flux_job_memory_bytes",
    "Resident memory of a running job's processes, summed over its nodes; only with job-usage-series=N.",
    &["queue", "user", "project", "jobid"],
);

const JOB_GPUS_BUSY: Doc = Doc::gauge(
    "flux_job_gpus_busy",
    "GPUs' worth of busy time of a running job over its nodes' last sampling period (NVML); only with job-usage-series=N.",
    &["queue", "user", "project", "jobid"],
);

const JOB_MEASURED_GPUS: Doc = Doc::gauge(
    "flux_job_measured_gpus",
    "GPUs of a running job whose utilisation NVML measured at its nodes' last look; only with job-usage-series=N.",
    &["queue", "user", "project", "jobid"],
);

const JOB_GPU_MEMORY_BYTES: Doc = Doc::gauge(
    "flux_job_gpu_memory_bytes",
    "Memory in use on a running job's GPUs, summed over its nodes (NVML); only with job-usage-series=N.",
    &["queue", "user", "project", "jobid"],
);

const USAGE_SAMPLING_RANKS: Doc = Doc::gauge(
    "flux_usage_sampling_ranks",
    "Broker ranks whose prometheus module sent a batch of running jobs' samples within three of its sampling periods.",
    &[],
);

const USAGE_SAMPLE_MESSAGES_TOTAL: Doc = Doc::counter(
    "flux_usage_sample_messages_total",
    "Messages of running jobs' samples rank 0 received: a rank's batch, or a bundle of the batches of a part of the overlay tree that the modules on the way passed on together.",
    &[],
);

const USAGE_SAMPLE_BATCHES_TOTAL: Doc = Doc::counter(
    "flux_usage_sample_batches_total",
    "Ranks' batches of running jobs' samples rank 0 read, one per rank per sampling period.",
    &[],
);

const USAGE_SAMPLE_CPU_SECONDS_TOTAL: Doc = Doc::counter(
    "flux_usage_sample_cpu_seconds_total",
    "CPU time rank 0's module thread spent reading and taking running jobs' samples, from each message's arrival to its answer.",
    &[],
);

const USAGE_SAMPLES_REFUSED_TOTAL: Doc = Doc::counter(
    "flux_usage_samples_refused_total",
    "Live samples refused: unreadable batches, batches whose sampling period no module has (none, or over a day), and samples of jobs that are not active or registered by a user who owns neither the job nor the instance.",
    &[],
);

const JOBS_RUN_SECONDS: Doc = Doc::histogram(
    "flux_jobs_run_seconds",
    "Run time (flux jobs' t_cleanup - t_run) of jobs that became inactive since the module loaded, by result.",
    &["queue", "user", "project", "result"],
);
