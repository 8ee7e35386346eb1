//! The job's shells together. Each holds itself open (a completion
//! reference) from `shell.start` until its node's figures are delivered;
//! the leader, shell rank 0, gathers every node's and appends the job's
//! `prometheus.usage` event to `exec.eventlog`.
//!
//! The leader waits for the other shells after its own tasks end, for as
//! long as the job had run by then and at least a minute; a shell that has
//! not reported by then is listed as missing. A shell whose figures cannot
//! reach the leader gives up after 30 s. Either way the shell exits.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use flux::{Error, Handle, Rpc, Shell, ShellLevel, Timer};
use serde::{Deserialize, Serialize};
use usage::live;
use usage::report::VERSION;
use usage::{JobUsage, NodeUsage};

use crate::measure::{Allocation, Measure};

/// The leader's service the other shells report to.
const METHOD: &str = "prometheus-usage";
/// The completion reference each shell holds until it has delivered.
const HOLD: &str = "prometheus-usage";
/// The key of the event in the job's KVS namespace.
const EVENTLOG: &str = "exec.eventlog";
/// Where the prometheus module (on rank 0) counts each job's record.
const MODULE_TOPIC: &str = "prometheus.usage";
/// How long a shell tries to reach the leader.
const SEND_WAIT: f64 = 30.0;
/// The least the leader waits for the other shells.
const GATHER_WAIT: f64 = 60.0;
/// Every this many samples, the shell registers its tasks again: a module
/// loaded or reloaded on its rank while the job runs then samples it too.
const RENEW_LOOKS: u32 = 6;

pub type State = Rc<RefCell<Option<Job>>>;

/// What one shell knows of the job's usage.
pub struct Job {
    handle: Handle,
    jobid: u64,
    shell_rank: u32,
    size: u32,
    period: f64,
    measure: Option<Measure>,
    sampler: Option<Timer>,
    holding: bool,
    /// Every node's figures, by shell rank (the leader's).
    reports: BTreeMap<u32, NodeUsage>,
    /// The leader's own tasks have ended.
    finished: bool,
    appended: bool,
    wait: Option<Timer>,
    in_flight: Option<Rpc>,
    /// The registration of the tasks with the module on this rank.
    registering: Option<Rpc>,
    /// The registration, sent on broker rank 0, found no module there:
    /// the job's record has nowhere to go either.
    no_module_at_0: bool,
    /// What the node was allocated, read at `shell.start`.
    allocation: Option<Allocation>,
}

/// What the leader sends the prometheus module on rank 0.
#[derive(Serialize)]
struct Record<'a> {
    id: u64,
    usage: &'a JobUsage,
}

/// What a shell sends the leader.
#[derive(Serialize, Deserialize)]
struct Report {
    shell_rank: u32,
    node: NodeUsage,
}

impl Job {
    /// The job as this shell sees it as it loads the plugin, or None when the
    /// job opted out.
    pub fn new(shell: &Shell) -> Result<Option<Job>, Error> {
        let option = shell.option(crate::NAME)?;
        let Some(period) = usage::options::parse(option.as_deref())
            .map_err(|e| Error::new(libc::EINVAL, e.to_string()))?
        else {
            return Ok(None);
        };
        let ids = shell.ids()?;
        Ok(Some(Job {
            handle: shell.handle()?,
            jobid: ids.jobid,
            shell_rank: ids.rank,
            size: ids.size,
            period,
            measure: None,
            sampler: None,
            holding: false,
            reports: BTreeMap::new(),
            finished: false,
            appended: false,
            wait: None,
            in_flight: None,
            registering: None,
            no_module_at_0: false,
            allocation: None,
        }))
    }

    pub fn is_leader(&self) -> bool {
        self.shell_rank == 0
    }

    /// The job's shells, one a node.
    pub fn shells(&self) -> u32 {
        self.size
    }

    /// Stops following the job, letting the shell exit.
    pub fn abandon(mut self, shell: &Shell) {
        self.let_go(shell);
    }

    fn let_go(&mut self, shell: &Shell) {
        self.sampler = None;
        self.wait = None;
        if std::mem::take(&mut self.holding) {
            if let Err(e) = shell.release(HOLD) {
                shell.log(ShellLevel::Warn, &format!("usage: {e}"));
            }
        }
    }
}

/// The leader's service: each other shell's figures.
pub fn serve(shell: &Shell, state: &State) {
    let weak = Rc::downgrade(state);
    let me = *shell;
    let served = shell.serve(METHOD, move |request| {
        let report = request.data().and_then(|d| {
            serde_json::from_str::<Report>(&d).map_err(|e| Error::new(libc::EINVAL, e.to_string()))
        });
        match report {
            Ok(report) => {
                request.respond("{}");
                if let Some(state) = weak.upgrade() {
                    if let Some(job) = state.borrow_mut().as_mut() {
                        job.reports.insert(report.shell_rank, report.node);
                    }
                    try_append(&me, &state, false);
                }
            }
            Err(e) => {
                me.log(
                    ShellLevel::Warn,
                    &format!("usage: a shell's report refused: {e}"),
                );
                request.respond_error(e.errno, &e.message);
            }
        }
    });
    if let Err(e) = served {
        shell.log(ShellLevel::Warn, &format!("usage not gathered: {e}"));
    }
}

/// `shell.start`: the tasks are starting.
pub fn start(shell: &Shell, state: &State) -> Result<(), Error> {
    let mut guard = state.borrow_mut();
    let Some(job) = guard.as_mut() else {
        return Ok(());
    };
    job.measure = Some(Measure::start());
    shell.hold(HOLD)?;
    job.holding = true;
    let weak = Rc::downgrade(state);
    let me = *shell;
    let mut looks: u32 = 0;
    let sampler = job
        .handle
        .timer(1.0_f64.min(job.period), job.period, move || {
            let pids = me.task_pids();
            let Some(state) = weak.upgrade() else {
                return;
            };
            let mut guard = state.borrow_mut();
            let Some(job) = guard.as_mut() else {
                return;
            };
            if let Some(measure) = job.measure.as_mut() {
                measure.sample(&pids);
            }
            looks = looks.wrapping_add(1);
            if looks.is_multiple_of(RENEW_LOOKS) {
                job.registering = register(&me, job, &state, pids);
            }
        })?;
    sampler.start();
    job.sampler = Some(sampler);
    job.allocation = allocation(shell).ok();
    job.registering = register(shell, job, state, shell.task_pids());
    Ok(())
}

/// Registers the tasks that run with the module on this shell's broker
/// rank, which samples what the job uses while it runs; again every
/// [`RENEW_LOOKS`] samples, which a module that knows the job only
/// acknowledges. Without the module there, the job only loses its live
/// figures, and nothing is said: the final ones are made here all the
/// same. A task that ends as the module looks is no error either.
fn register(shell: &Shell, job: &Job, state: &State, pids: Vec<i32>) -> Option<Rpc> {
    let alloc = job.allocation.as_ref()?;
    if pids.is_empty() {
        return None;
    }
    let registration = live::Registration {
        version: live::VERSION,
        id: job.jobid,
        pids,
        cores: alloc.cores,
        gpus: alloc.gpus,
        gpu_ids: alloc.gpu_ids.clone(),
    };
    let payload = serde_json::to_string(&registration).ok()?;
    let rank = job.handle.rank().ok()?;
    let me = *shell;
    let weak = Rc::downgrade(state);
    let topic = format!("{}.{}", crate::NAME, live::REGISTER_METHOD);
    job.handle
        .rpc_to(rank, &topic, &payload, None, move |answer| {
            let module_here = match answer {
                Ok(_) => true,
                Err(e) if e.errno == libc::ENOSYS => false,
                Err(e) if e.errno == libc::ESRCH => return,
                Err(e) => {
                    me.log(
                        ShellLevel::Warn,
                        &format!("usage: live sampling refused: {}", e.message),
                    );
                    return;
                }
            };
            // On rank 0, the module's answer also says whether the job's
            // record has anywhere to go.
            if rank == 0 {
                if let Some(state) = weak.upgrade() {
                    if let Some(job) = state.borrow_mut().as_mut() {
                        job.no_module_at_0 = !module_here;
                    }
                }
            }
        })
        .ok()
}

/// What shell rank info says this node was allocated.
fn allocation(shell: &Shell) -> Result<Allocation, Error> {
    /// The parts of `flux_shell_get_rank_info`'s JSON read here.
    #[derive(Deserialize)]
    struct RankInfo {
        #[serde(default)]
        broker_rank: u32,
        #[serde(default)]
        ntasks: u64,
        #[serde(default)]
        resources: Resources,
    }
    #[derive(Deserialize, Default)]
    struct Resources {
        #[serde(default)]
        cores: String,
        #[serde(default)]
        gpus: String,
    }
    let info: RankInfo = serde_json::from_str(&shell.rank_info(None)?)
        .map_err(|e| Error::new(libc::EINVAL, format!("rank info: {e}")))?;
    let bad = |key: &str, e: usage::idset::NotAnIdset| {
        Error::new(libc::EINVAL, format!("rank info {key}: {e}"))
    };
    let cores = usage::idset::count(&info.resources.cores).map_err(|e| bad("cores", e))?;
    let gpu_ids: Vec<u32> = usage::idset::ids(&info.resources.gpus, 1024)
        .map_err(|e| bad("gpus", e))?
        .into_iter()
        .filter_map(|id| u32::try_from(id).ok())
        .collect();
    Ok(Allocation {
        rank: info.broker_rank,
        hostname: gethostname::gethostname().to_string_lossy().into_owned(),
        cores,
        gpus: gpu_ids.len() as u64,
        gpu_ids,
        tasks: info.ntasks,
    })
}

/// `shell.finish`: this shell's tasks have all ended. Where the job has
/// GPUs on this node, the module on this rank is asked what they did
/// first; without an answer the figures go without.
pub fn finish(shell: &Shell, state: &State) -> Result<(), Error> {
    let mut guard = state.borrow_mut();
    let Some(job) = guard.as_mut() else {
        return Ok(());
    };
    let alloc = match job.allocation.clone() {
        Some(alloc) => alloc,
        None => allocation(shell)?,
    };
    job.sampler = None;
    let gpu_ids = alloc.gpu_ids.clone();
    let Some(measure) = job.measure.as_mut() else {
        return Ok(());
    };
    let node = measure.finish(alloc);
    if gpu_ids.is_empty() {
        drop(guard);
        return deliver(shell, state, node);
    }
    let weak = Rc::downgrade(state);
    let me = *shell;
    let topic = format!("{}.{}", crate::NAME, live::GPU_METHOD);
    let ask = serde_json::json!({ "id": job.jobid }).to_string();
    let rank = job.handle.rank()?;
    let pending = node.clone();
    let asked = job.handle.rpc_to(rank, &topic, &ask, None, move |answer| {
        let mut node = pending.clone();
        match answer.map(|text| serde_json::from_str::<live::JobGpus>(&text)) {
            Ok(Ok(gpus)) => {
                node.gpu_busy_seconds = Some(gpus.busy_seconds);
                node.gpu_measured_seconds = Some(gpus.measured_seconds);
                node.gpu_peak_memory_bytes = Some(gpus.peak_memory_bytes);
            }
            Ok(Err(e)) => me.log(
                ShellLevel::Warn,
                &format!("usage: unreadable GPU figures from the module: {e}"),
            ),
            // No module here, or no GPU figures (no NVML): nothing to say.
            Err(_) => {}
        }
        if let Some(state) = weak.upgrade() {
            if let Err(e) = deliver(&me, &state, node) {
                me.log(ShellLevel::Warn, &format!("usage: {e}"));
            }
        }
    });
    match asked {
        Ok(rpc) => {
            job.in_flight = Some(rpc);
            Ok(())
        }
        Err(_) => {
            drop(guard);
            deliver(shell, state, node)
        }
    }
}

/// This node's figures to the leader (or, on the leader, to the job's).
fn deliver(shell: &Shell, state: &State, node: NodeUsage) -> Result<(), Error> {
    let mut guard = state.borrow_mut();
    let Some(job) = guard.as_mut() else {
        return Ok(());
    };
    let weak = Rc::downgrade(state);
    let me = *shell;
    if job.is_leader() {
        let wait = node.wall_seconds.max(GATHER_WAIT);
        job.reports.insert(0, node);
        job.finished = true;
        let timer = job.handle.timer(wait, 0.0, move || {
            if let Some(state) = weak.upgrade() {
                try_append(&me, &state, true);
            }
        })?;
        timer.start();
        job.wait = Some(timer);
        drop(guard);
        try_append(shell, state, false);
        return Ok(());
    }
    let report = serde_json::to_string(&Report {
        shell_rank: job.shell_rank,
        node,
    })
    .map_err(|e| Error::new(libc::EINVAL, e.to_string()))?;
    let done = weak.clone();
    let sent = shell.rpc(METHOD, 0, &report, move |answer| {
        if let Err(e) = answer {
            me.log(
                ShellLevel::Warn,
                &format!("usage: the leader shell did not take this node's figures: {e}"),
            );
        }
        if let Some(state) = done.upgrade() {
            if let Some(job) = state.borrow_mut().as_mut() {
                job.let_go(&me);
            }
        }
    })?;
    job.in_flight = Some(sent);
    let timer = job.handle.timer(SEND_WAIT, 0.0, move || {
        me.log(
            ShellLevel::Warn,
            "usage: the leader shell did not answer; this node's figures are lost",
        );
        if let Some(state) = weak.upgrade() {
            if let Some(job) = state.borrow_mut().as_mut() {
                job.let_go(&me);
            }
        }
    })?;
    timer.start();
    job.wait = Some(timer);
    Ok(())
}

/// The leader appends the job's event once every shell has reported (or,
/// `force`d, once its wait has run out).
fn try_append(shell: &Shell, state: &State, force: bool) {
    let mut guard = state.borrow_mut();
    let Some(job) = guard.as_mut() else {
        return;
    };
    let all = job.reports.len() >= job.size as usize;
    if job.appended || !job.finished || !(all || force) {
        return;
    }
    job.appended = true;
    job.wait = None;
    let usage = JobUsage {
        version: VERSION,
        nodes: job.reports.values().cloned().collect(),
        missing: (0..job.size)
            .filter(|r| !job.reports.contains_key(r))
            .collect(),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let weak: Weak<RefCell<Option<Job>>> = Rc::downgrade(state);
    let me = *shell;
    // The module's record of the job, where rank 0 may have the module.
    let record = if job.no_module_at_0 {
        None
    } else {
        serde_json::to_string(&Record {
            id: job.jobid,
            usage: &usage,
        })
        .ok()
    };
    let appended = job
        .handle
        .kvs_append(EVENTLOG, &usage.entry(now), move |done| {
            if let Err(e) = done {
                me.log(
                    ShellLevel::Warn,
                    &format!("usage: cannot append to {EVENTLOG}: {e}"),
                );
            }
            if let Some(state) = weak.upgrade() {
                match &record {
                    Some(record) => tell_module(&me, &state, record),
                    None => {
                        if let Some(job) = state.borrow_mut().as_mut() {
                            job.let_go(&me);
                        }
                    }
                }
            }
        });
    match appended {
        Ok(rpc) => job.in_flight = Some(rpc),
        Err(e) => {
            shell.log(
                ShellLevel::Warn,
                &format!("usage: cannot append to {EVENTLOG}: {e}"),
            );
            job.let_go(shell);
        }
    }
}

/// Hands the job's record to the prometheus module, which counts it in its
/// per-queue series; then lets the shell exit. An instance without the
/// module (ENOSYS) is no error.
fn tell_module(shell: &Shell, state: &State, record: &str) {
    let weak = Rc::downgrade(state);
    let me = *shell;
    let mut guard = state.borrow_mut();
    let Some(job) = guard.as_mut() else {
        return;
    };
    // To rank 0 by name: the module on this shell's own rank, where there
    // is one, only samples.
    let sent = job
        .handle
        .rpc_to(0, MODULE_TOPIC, record, None, move |answer| {
            match answer {
                Err(e) if e.errno != libc::ENOSYS => me.log(
                    ShellLevel::Warn,
                    &format!("usage: the prometheus module did not count this job: {e}"),
                ),
                _ => {}
            }
            if let Some(state) = weak.upgrade() {
                if let Some(job) = state.borrow_mut().as_mut() {
                    job.let_go(&me);
                }
            }
        });
    match sent {
        Ok(rpc) => job.in_flight = Some(rpc),
        Err(_) => job.let_go(shell),
    }
}
