//! The module's work on every broker rank: what the jobs running on this
//! node use now.
//!
//! A job's shell registers its tasks with the module on its own rank
//! (`NAME.register`, from the prometheus shell plugin at `shell.start`).
//! Every `sample-interval` (30 s; the first look comes at a point of the
//! period set by the rank, so that ranks do not all send at once) the
//! sampler looks at each registered job: its shell's own cgroup v2 where it
//! has one (sdexec), or the cgroup the module made for it and moved its
//! shell and tasks into (`job-cgroups`), else the process trees under its
//! tasks in `/proc`. It
//! makes one batch for all of them: rank 0's module takes its own
//! (`NAME.samples`), and another rank's holds it in its [`Relay`] with the
//! batches of the ranks below to send on up. A job whose processes are
//! all gone is done here and forgotten.
//!
//! Nothing here fails a job or the broker: a registration that cannot be
//! taken is refused with a message that says why; a process or cgroup that
//! vanished costs that sample only; rank 0 out of reach is logged once until
//! it answers again.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::{Rc, Weak};
use std::time::Duration;

use flux::{Error, Handle, Level, MsgHandler, Request, Rpc, Timer};
use usage::cgroup::{Mounts, OpenCgroup, ShellCgroup};
use usage::gpu::GpuSample;
use usage::jobcgroup::{self, Parents};
use usage::live::{self, Batch, JobGpus, JobSample, Registration, Source, WireError};
use usage::proc::{self, Units};

use crate::gpu::Gpus;
use crate::relay::Relay;
use crate::stats::SamplerStats;

/// Why a registration was refused, for the shell and the log.
#[derive(Debug, thiserror::Error)]
enum RegisterError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("task {pid} of job {id} is not running on this node")]
    NoSuchTask { id: u64, pid: i32 },
    #[error(
        "task {pid} of job {id} belongs to user {owner}, not to user {sender} who registered it"
    )]
    NotOwner {
        id: u64,
        pid: i32,
        owner: u32,
        sender: u32,
    },
    #[error(transparent)]
    Flux(#[from] Error),
}

impl RegisterError {
    fn errno(&self) -> i32 {
        match self {
            RegisterError::Wire(_) => libc::EPROTO,
            RegisterError::NoSuchTask { .. } => libc::ESRCH,
            RegisterError::NotOwner { .. } => libc::EPERM,
            RegisterError::Flux(e) => e.errno,
        }
    }
}

/// A job registered on this node.
struct Registered {
    userid: u32,
    pids: Vec<i32>,
    /// The shell's own cgroup, read from its first task's `/proc/PID/cgroup`
    /// (never taken from the shell's word).
    cgroup: Option<ShellCgroup>,
    /// Its files, held open while the job runs.
    files: Option<OpenCgroup>,
    /// The cgroup is of the module's making (`job-cgroups`), to be removed
    /// when its processes have gone; its CPU time counts from the move, so
    /// what the processes had used before is added.
    made: bool,
    cpu_seconds_before: f64,
    cores: u64,
    gpus: u64,
    gpu_ids: Vec<u32>,
    /// When it registered, in µs since the epoch: GPU samples before it are
    /// another job's.
    registered_us: u64,
    /// What its GPUs did so far, and when they were last looked at (at
    /// registration before the first look).
    gpu_totals: JobGpus,
    gpu_looked: f64,
    /// The previous look: when, and the CPU seconds it found.
    last: Option<(f64, f64)>,
    peak: u64,
}

struct Inner {
    h: Handle,
    rank: u32,
    hostname: String,
    instance_owner: u32,
    units: Units,
    /// Where this node mounts its cgroup hierarchies.
    mounts: Mounts,
    /// Where jobs' cgroups are made, with `job-cgroups`.
    job_cgroups: RefCell<Option<Parents>>,
    /// A job could not be given a cgroup, and that was logged.
    placement_logged: Cell<bool>,
    /// Job cgroups an earlier module left that still held processes when
    /// last looked at: looked at again each period until they have gone.
    leftovers: Cell<usize>,
    period: Cell<f64>,
    jobs: RefCell<BTreeMap<u64, Registered>>,
    /// Jobs with GPUs whose processes are gone, until their shells have
    /// asked what the GPUs did (or [`ENDED_KEPT`] has passed).
    ended: RefCell<BTreeMap<u64, Ended>>,
    gpus: RefCell<Gpus>,
    /// Where batches go on a rank other than 0; rank 0 sends its own.
    relay: Option<Rc<Relay>>,
    in_flight: RefCell<Option<Rpc>>,
    /// Rank 0 did not take the last batch, and that was logged.
    unreachable_logged: Cell<bool>,
    /// The last batch sent had no jobs: an idle rank sends one empty batch,
    /// so that rank 0 forgets its jobs at once, then nothing.
    sent_empty: Cell<bool>,
    stats: RefCell<SamplerStats>,
    timer: RefCell<Option<Timer>>,
}

impl Drop for Inner {
    /// The cgroups this module made whose processes have gone; the others
    /// stay with their processes, and a later module removes them once
    /// they are empty.
    fn drop(&mut self) {
        for job in self.jobs.get_mut().values() {
            if let (true, Some(cgroup)) = (job.made, &job.cgroup) {
                jobcgroup::remove(cgroup);
            }
        }
    }
}

/// A job with GPUs whose processes have gone.
struct Ended {
    userid: u32,
    totals: JobGpus,
    at: f64,
}

/// Seconds an ended job's GPU figures wait for its shell to ask for them.
const ENDED_KEPT: f64 = 600.0;

/// The sampler on this rank; dropping it stops it.
pub struct Sampler {
    inner: Rc<Inner>,
    _register: MsgHandler,
    _gpus: MsgHandler,
}

impl Sampler {
    /// Serves `NAME.register` and samples every `period`; with
    /// `job_cgroups`, gives each job without a cgroup one. Batches go to
    /// `relay` where there is one, else to rank 0.
    pub fn start(
        h: Handle,
        period: Duration,
        job_cgroups: bool,
        relay: Option<Rc<Relay>>,
    ) -> Result<Sampler, Error> {
        let rank = h.rank()?;
        let inner = Rc::new(Inner {
            h,
            rank,
            hostname: crate::hostname(),
            instance_owner: h
                .attr("security.owner")
                .and_then(|owner| owner.parse().ok())
                .unwrap_or(u32::MAX),
            units: Units {
                ticks_per_second: flux::clock_ticks_per_second(),
                page_size: flux::page_size(),
            },
            mounts: Mounts::of_this_system(),
            job_cgroups: RefCell::new(None),
            placement_logged: Cell::new(false),
            leftovers: Cell::new(0),
            period: Cell::new(period.as_secs_f64()),
            jobs: RefCell::new(BTreeMap::new()),
            ended: RefCell::new(BTreeMap::new()),
            gpus: RefCell::new(Gpus::default()),
            relay,
            in_flight: RefCell::new(None),
            unreachable_logged: Cell::new(false),
            sent_empty: Cell::new(true),
            stats: RefCell::new(SamplerStats {
                rank,
                sample_interval: period.as_secs_f64(),
                ..SamplerStats::default()
            }),
            timer: RefCell::new(None),
        });
        let name = h.module_name().unwrap_or_else(|| "prometheus".into());
        let weak = Rc::downgrade(&inner);
        let register = h.handle_requests(
            &format!("{name}.{}", live::REGISTER_METHOD),
            true,
            move |request| {
                if let Some(inner) = weak.upgrade() {
                    on_register(&inner, request);
                }
            },
        )?;
        let weak = Rc::downgrade(&inner);
        let gpus = h.handle_requests(
            &format!("{name}.{}", live::GPU_METHOD),
            true,
            move |request| {
                if let Some(inner) = weak.upgrade() {
                    on_job_gpus(&inner, request);
                }
            },
        )?;
        arm(&inner)?;
        set_job_cgroups(&inner, job_cgroups);
        Ok(Sampler {
            inner,
            _register: register,
            _gpus: gpus,
        })
    }

    /// A new period (`flux config reload`); the next look comes by it.
    pub fn set_period(&self, period: Duration) -> Result<(), Error> {
        let secs = period.as_secs_f64();
        if self.inner.period.replace(secs) != secs {
            self.inner.stats.borrow_mut().sample_interval = secs;
            arm(&self.inner)?;
        }
        Ok(())
    }

    /// Jobs registered from now on are given cgroups, or not
    /// (`flux config reload`); those given one keep it.
    pub fn set_job_cgroups(&self, on: bool) {
        set_job_cgroups(&self.inner, on);
    }

    pub fn stats(&self) -> SamplerStats {
        let mut stats = self.inner.stats.borrow().clone();
        let jobs = self.inner.jobs.borrow();
        stats.jobs = jobs.len();
        stats.cgroup_jobs = jobs.values().filter(|j| j.cgroup.is_some()).count();
        stats.made_cgroup_jobs = jobs.values().filter(|j| j.made).count();
        stats
    }
}

/// `x` rounded to six decimals.
fn to_millionths(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Where in the period rank `rank` looks first: spread over the period by
/// the rank, so that a large instance's batches do not reach rank 0 at once.
pub fn first_look(rank: u32, period: f64) -> f64 {
    // Fibonacci hashing spreads consecutive ranks evenly.
    let frac =
        (u64::from(rank).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64;
    (period * frac).max(0.001)
}

/// Turns the making of jobs' cgroups on or off. Where the broker's cgroup
/// cannot be known, that is logged and jobs are sampled from their
/// processes.
fn set_job_cgroups(inner: &Inner, on: bool) {
    if on == inner.job_cgroups.borrow().is_some() {
        return;
    }
    if !on {
        *inner.job_cgroups.borrow_mut() = None;
        return;
    }
    match Parents::of_this_process(&inner.mounts) {
        Ok(parents) => {
            // What an earlier module left of jobs that have ended.
            let left = parents.sweep(inner.rank, |id| inner.jobs.borrow().contains_key(&id));
            inner.leftovers.set(left);
            inner.h.log(
                Level::Debug,
                &format!(
                    "usage sampler: making jobs' cgroups in {}",
                    parents.v2.display()
                ),
            );
            *inner.job_cgroups.borrow_mut() = Some(parents);
        }
        Err(e) => inner.h.log(
            Level::Warning,
            &format!("usage sampler: job-cgroups: jobs are sampled from their processes: {e}"),
        ),
    }
}

fn arm(inner: &Rc<Inner>) -> Result<(), Error> {
    let period = inner.period.get();
    let weak: Weak<Inner> = Rc::downgrade(inner);
    let timer = inner
        .h
        .timer(first_look(inner.rank, period), period, move || {
            if let Some(inner) = weak.upgrade() {
                look(&inner);
            }
        })?;
    timer.start();
    *inner.timer.borrow_mut() = Some(timer);
    Ok(())
}

fn on_register(inner: &Rc<Inner>, request: &Request<'_>) {
    match register(inner, request) {
        Ok(taken) => {
            match taken {
                Taken::New => inner.stats.borrow_mut().registrations += 1,
                Taken::Renewed => inner.stats.borrow_mut().renewals += 1,
            }
            request.respond("{}");
        }
        Err(e) => {
            inner.stats.borrow_mut().registrations_refused += 1;
            inner.h.log(
                Level::Warning,
                &format!("usage sampler: registration refused: {e}"),
            );
            request.respond_error(e.errno(), &e.to_string());
        }
    }
}

/// What a registration that was taken did.
enum Taken {
    New,
    /// The job was registered here already: its tasks that run now
    /// replace the list, and the rest (its user, figures and cgroup) is
    /// kept.
    Renewed,
}

fn register(inner: &Inner, request: &Request<'_>) -> Result<Taken, RegisterError> {
    let sender = request.userid()?;
    let payload = request.payload()?.unwrap_or_default();
    let Registration {
        id,
        pids,
        cores,
        gpus,
        gpu_ids,
        ..
    } = live::read_registration(&payload)?;
    let procfs = Path::new("/proc");
    for &pid in &pids {
        let owner = proc::owner(pid, procfs).ok_or(RegisterError::NoSuchTask { id, pid })?;
        if sender != inner.instance_owner && owner != sender {
            return Err(RegisterError::NotOwner {
                id,
                pid,
                owner,
                sender,
            });
        }
    }
    if let Some(known) = inner.jobs.borrow_mut().get_mut(&id) {
        known.pids = pids;
        return Ok(Taken::Renewed);
    }
    let mut cgroup = std::fs::read_to_string(procfs.join(pids[0].to_string()).join("cgroup"))
        .ok()
        .and_then(|text| inner.mounts.shell_cgroup(&text));
    let mut cpu_seconds_before = 0.0;
    let mut made = false;
    let mut files = None;
    if cgroup.is_none() {
        if let Some(placed) = place(inner, id, &pids) {
            cpu_seconds_before = placed.cpu_ticks_before as f64 / inner.units.ticks_per_second;
            files = placed.cgroup.open_watching();
            cgroup = Some(placed.cgroup);
            made = true;
        }
    }
    if files.is_none() && !made {
        files = cgroup.as_ref().and_then(ShellCgroup::open);
    }
    inner.jobs.borrow_mut().insert(
        id,
        Registered {
            userid: sender,
            pids,
            cgroup,
            files,
            made,
            cpu_seconds_before,
            cores,
            gpus,
            gpu_ids,
            registered_us: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as u64),
            gpu_totals: JobGpus::default(),
            gpu_looked: inner.h.now(),
            last: None,
            peak: 0,
        },
    );
    Ok(Taken::New)
}

/// Gives job `id` a cgroup of its own, where `job-cgroups` is on, moving
/// into it the job shell (the tasks' parent, where it is `flux-shell` run
/// by the tasks' owner) and the tasks' process trees. A failure is logged
/// once, and the job is sampled from its processes.
fn place(inner: &Inner, id: u64, pids: &[i32]) -> Option<jobcgroup::Placed> {
    let parents = inner.job_cgroups.borrow();
    let parents = parents.as_ref()?;
    let procfs = Path::new("/proc");
    let task = proc::stat(*pids.first()?, procfs)?;
    let shell = std::fs::read_to_string(procfs.join(task.ppid.to_string()).join("comm"))
        .ok()
        .filter(|comm| comm.trim_end() == "flux-shell")
        .filter(|_| proc::owner(task.ppid, procfs) == proc::owner(task.pid, procfs))
        .map(|_| task.ppid);
    match parents.place(inner.rank, id, shell, pids, procfs) {
        Ok(placed) => Some(placed),
        Err(e) => {
            inner.stats.borrow_mut().placements_failed += 1;
            if !inner.placement_logged.replace(true) {
                inner.h.log(
                    Level::Warning,
                    &format!(
                        "usage sampler: job-cgroups: job {id} is sampled from its processes: {e} \
                         (said once; flux module stats prometheus counts the others)"
                    ),
                );
            }
            None
        }
    }
}

/// Looks at every registered job once, and sends rank 0 the batch.
fn look(inner: &Rc<Inner>) {
    let cpu_before = flux::thread_cpu_seconds();
    let now = inner.h.now();
    let mut gpus = inner.gpus.borrow_mut();
    let mut ended = inner.ended.borrow_mut();
    ended.retain(|_, e| now - e.at <= ENDED_KEPT);
    let samples = sample_all(
        &mut inner.jobs.borrow_mut(),
        &mut ended,
        &mut gpus,
        now,
        inner.units,
    );
    drop(ended);
    if inner.leftovers.get() > 0 {
        if let Some(parents) = inner.job_cgroups.borrow().as_ref() {
            let jobs = inner.jobs.borrow();
            inner
                .leftovers
                .set(parents.sweep(inner.rank, |id| jobs.contains_key(&id)));
        }
    }
    if let Some(why) = gpus.take_failure() {
        inner.h.log(Level::Info, &format!("usage sampler: {why}"));
    }
    drop(gpus);
    if !(samples.is_empty() && inner.sent_empty.get()) {
        send(inner, samples);
    }
    if let (Some(before), Some(after)) = (cpu_before, flux::thread_cpu_seconds()) {
        inner.stats.borrow_mut().last_sample_cpu_seconds = after - before;
    }
}

/// Samples every job of `jobs` at `now`, forgetting those whose processes
/// (or cgroup) are gone.
fn sample_all(
    jobs: &mut BTreeMap<u64, Registered>,
    ended: &mut BTreeMap<u64, Ended>,
    gpus: &mut Gpus,
    now: f64,
    units: Units,
) -> Vec<JobSample> {
    // Read at most once a look, and only where the kernel has no
    // children files.
    let mut everyone: Option<Vec<proc::Stat>> = None;
    let procfs = Path::new("/proc");
    let mut out = Vec::with_capacity(jobs.len());
    jobs.retain(|&id, job| {
        let tree = |everyone: &mut Option<Vec<proc::Stat>>| {
            proc::walk(&job.pids, procfs)
                .map(|procs| proc::sum(&procs.iter().collect::<Vec<_>>(), units))
                .or_else(|| {
                    let all = everyone.get_or_insert_with(|| proc::scan(procfs));
                    Some(proc::sample(&job.pids, all, units))
                })
                .filter(|s| s.processes > 0)
        };
        let seen = match &mut job.files {
            Some(files) => files.now().map(|(cpu_seconds, memory)| {
                // A cgroup without memory files (no memory controller
                // anywhere) leaves memory to the process trees.
                let memory =
                    memory.unwrap_or_else(|| tree(&mut everyone).map_or(0, |s| s.rss_bytes));
                (
                    0,
                    cpu_seconds + job.cpu_seconds_before,
                    memory,
                    Source::Cgroup,
                )
            }),
            None => tree(&mut everyone).map(|s| {
                (
                    s.processes as u64,
                    s.cpu_seconds,
                    s.rss_bytes,
                    Source::Processes,
                )
            }),
        };
        let Some((processes, cpu_seconds, memory_bytes, source)) = seen else {
            if let (true, Some(cgroup)) = (job.made, &job.cgroup) {
                jobcgroup::remove(cgroup);
            }
            if !job.gpu_ids.is_empty() {
                ended.insert(
                    id,
                    Ended {
                        userid: job.userid,
                        totals: job.gpu_totals,
                        at: now,
                    },
                );
            }
            return false;
        };
        // In millionths of a core, as rank 0 sums rates: the figure's
        // other digits are noise that rank 0 would read and drop.
        let cpu_cores = job.last.and_then(|(then, cpu)| {
            let wall = now - then;
            (wall > 0.0).then(|| to_millionths(((cpu_seconds - cpu) / wall).max(0.0)))
        });
        job.last = Some((now, cpu_seconds));
        job.peak = job.peak.max(memory_bytes);
        // To the microsecond, the finest a cgroup counts.
        let cpu_seconds = to_millionths(cpu_seconds);
        out.push(JobSample {
            id,
            userid: job.userid,
            cores: job.cores,
            gpus: job.gpus,
            processes,
            cpu_seconds,
            cpu_cores,
            memory_bytes,
            peak_memory_bytes: job.peak,
            source,
            cgroup: job
                .cgroup
                .as_ref()
                .map(|c| c.dir.to_string_lossy().into_owned()),
            gpu: look_gpus(job, gpus, now),
        });
        true
    });
    out
}

/// Looks at `job`'s GPUs, adding what they did since the previous look to
/// its totals.
fn look_gpus(job: &mut Registered, gpus: &mut Gpus, now: f64) -> Vec<GpuSample> {
    if job.gpu_ids.is_empty() {
        return Vec::new();
    }
    let samples = gpus.look(&job.gpu_ids, job.registered_us);
    job.gpu_totals.add(&samples, now - job.gpu_looked);
    job.gpu_looked = now;
    samples
}

/// Why a shell's question about its GPUs was not answered.
#[derive(Debug, thiserror::Error)]
enum GpusError {
    #[error("unreadable request: {0}")]
    Unreadable(String),
    #[error("job {0} has no GPU figures on this node")]
    Unknown(u64),
    #[error("job {id} was registered by user {owner}, not by user {sender}")]
    NotOwner { id: u64, owner: u32, sender: u32 },
    #[error(transparent)]
    Flux(#[from] Error),
}

/// Serves `NAME.job-gpus`: what a job's GPUs did on this node, with a last
/// look at them, for the job's shell (or the instance owner).
fn on_job_gpus(inner: &Rc<Inner>, request: &Request<'_>) {
    match job_gpus(inner, request) {
        Ok(totals) => match serde_json::to_string(&totals) {
            Ok(text) => request.respond(&text),
            Err(e) => request.respond_error(libc::EPROTO, &e.to_string()),
        },
        Err(e) => {
            let errno = match &e {
                GpusError::Unreadable(_) => libc::EPROTO,
                GpusError::Unknown(_) => libc::ENOENT,
                GpusError::NotOwner { .. } => libc::EPERM,
                GpusError::Flux(e) => e.errno,
            };
            request.respond_error(errno, &e.to_string());
        }
    }
}

fn job_gpus(inner: &Rc<Inner>, request: &Request<'_>) -> Result<JobGpus, GpusError> {
    #[derive(serde::Deserialize)]
    struct Ask {
        id: u64,
    }
    let sender = request.userid()?;
    let payload = request.payload()?.unwrap_or_default();
    let Ask { id } =
        serde_json::from_str(&payload).map_err(|e| GpusError::Unreadable(e.to_string()))?;
    let check = |owner: u32| {
        if sender == owner || sender == inner.instance_owner {
            Ok(())
        } else {
            Err(GpusError::NotOwner { id, owner, sender })
        }
    };
    if let Some(job) = inner.jobs.borrow_mut().get_mut(&id) {
        check(job.userid)?;
        if job.gpu_ids.is_empty() {
            return Err(GpusError::Unknown(id));
        }
        look_gpus(job, &mut inner.gpus.borrow_mut(), inner.h.now());
        return measured(id, job.gpu_totals);
    }
    let ended = inner.ended.borrow();
    let job = ended.get(&id).ok_or(GpusError::Unknown(id))?;
    check(job.userid)?;
    measured(id, job.totals)
}

/// Totals of GPUs NVML never answered for are none.
fn measured(id: u64, totals: JobGpus) -> Result<JobGpus, GpusError> {
    if totals.measured_seconds > 0.0 || totals.peak_memory_bytes > 0 {
        Ok(totals)
    } else {
        Err(GpusError::Unknown(id))
    }
}

fn send(inner: &Rc<Inner>, jobs: Vec<JobSample>) {
    // One batch in flight at a time (rank 0 sends its own to itself): a
    // jobflow collector slower than the period gets the newer batch next
    // time rather than a queue of old ones.
    if inner.in_flight.borrow().is_some() {
        inner.stats.borrow_mut().batches_failed += 1;
        return;
    }
    let empty = jobs.is_empty();
    let batch = Batch {
        version: live::VERSION,
        rank: inner.rank,
        hostname: std::borrow::Cow::Borrowed(&inner.hostname),
        period: inner.period.get(),
        jobs,
    };
    if let Some(relay) = &inner.relay {
        if let Ok(text) = serde_json::value::to_raw_value(&batch) {
            relay.push(text);
            inner.stats.borrow_mut().batches_sent += 1;
            inner.sent_empty.set(empty);
        }
        return;
    }
    let Ok(payload) = serde_json::to_string(&batch) else {
        return;
    };
    let name = inner.h.module_name().unwrap_or_else(|| "prometheus".into());
    let topic = format!("{name}.{}", live::SAMPLES_METHOD);
    let weak = Rc::downgrade(inner);
    let within = Some(crate::relay::answer_within(inner.period.get()));
    let sent = inner.h.rpc_to(0, &topic, &payload, within, move |answer| {
        let Some(inner) = weak.upgrade() else { return };
        inner.in_flight.borrow_mut().take();
        match answer {
            Ok(_) => {
                inner.stats.borrow_mut().batches_sent += 1;
                inner.sent_empty.set(empty);
                if inner.unreachable_logged.replace(false) {
                    inner.h.log(
                        Level::Info,
                        "usage sampler: rank 0 takes this rank's samples again",
                    );
                }
            }
            Err(e) => {
                inner.stats.borrow_mut().batches_failed += 1;
                if !inner.unreachable_logged.replace(true) {
                    let hint = if e.errno == libc::ENOSYS {
                        " (rank 0's jobflow collector takes them: is it running?)"
                    } else {
                        ""
                    };
                    inner.h.log(
                        Level::Warning,
                        &format!(
                            "usage sampler: rank 0 did not take this rank's samples: {}{hint}; said once until it does",
                            e.message
                        ),
                    );
                }
            }
        }
    });
    match sent {
        Ok(rpc) => *inner.in_flight.borrow_mut() = Some(rpc),
        Err(_) => inner.stats.borrow_mut().batches_failed += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_look_at_points_spread_over_the_period() {
        let mut points: Vec<f64> = (0..64).map(|r| first_look(r, 30.0)).collect();
        assert!(points.iter().all(|&p| p > 0.0 && p <= 30.0));
        points.sort_by(f64::total_cmp);
        // No two of 64 ranks within 0.1 s of each other.
        assert!(points.windows(2).all(|w| w[1] - w[0] > 0.1), "{points:?}");
    }

    #[test]
    fn a_job_is_sampled_with_a_rate_from_its_second_look_and_forgotten_when_gone() {
        let units = Units {
            ticks_per_second: flux::clock_ticks_per_second(),
            page_size: flux::page_size(),
        };
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        // Until the child has exec'ed it holds no memory of its own; nor,
        // as /proc/PID/stat tells it (the kernel's per-CPU count, which
        // lags), for a moment after.
        let comm = format!("/proc/{}/comm", child.id());
        let pid = child.id() as i32;
        for _ in 0..500 {
            if std::fs::read_to_string(&comm).is_ok_and(|c| c.trim() == "sleep")
                && proc::stat(pid, Path::new("/proc")).is_some_and(|s| s.rss > 0)
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut jobs = BTreeMap::new();
        jobs.insert(
            42,
            Registered {
                userid: 1000,
                pids: vec![child.id() as i32],
                cgroup: None,
                files: None,
                made: false,
                cpu_seconds_before: 0.0,
                cores: 2,
                gpus: 0,
                gpu_ids: Vec::new(),
                registered_us: 0,
                gpu_totals: JobGpus::default(),
                gpu_looked: 0.0,
                last: None,
                peak: 0,
            },
        );
        let first = sample_all(
            &mut jobs,
            &mut BTreeMap::new(),
            &mut Gpus::default(),
            100.0,
            units,
        );
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].cpu_cores, None);
        assert!(first[0].memory_bytes > 0);
        let second = sample_all(
            &mut jobs,
            &mut BTreeMap::new(),
            &mut Gpus::default(),
            110.0,
            units,
        );
        // sleep uses next to no CPU.
        assert!(second[0].cpu_cores.is_some_and(|r| r < 0.05), "{second:?}");
        // Figures go upstream to the millionth, not with every digit a
        // division leaves.
        let decimals = |x: f64| x.to_string().split('.').nth(1).map_or(0, str::len);
        assert!(
            second[0].cpu_cores.is_some_and(|r| decimals(r) <= 6),
            "{second:?}"
        );
        assert!(decimals(second[0].cpu_seconds) <= 6, "{second:?}");
        assert_eq!(
            second[0].peak_memory_bytes,
            first[0].memory_bytes.max(second[0].memory_bytes)
        );
        let _ = child.kill();
        let _ = child.wait();
        assert!(sample_all(
            &mut jobs,
            &mut BTreeMap::new(),
            &mut Gpus::default(),
            120.0,
            units
        )
        .is_empty());
        assert!(jobs.is_empty());
    }
}
