//! Broker internals, as `flux module list`, `flux module stats` and
//! `flux module stats --rusage=thread` show them: every loaded module's
//! idle time, message queues and thread CPU; the content cache and its
//! sqlite backing store (size, free space, object count, store and load
//! times); the KVS cache; and the job manager (jobs, journal listeners,
//! housekeeping).
//!
//! One round per poll interval: `module.list`, then at once every module's
//! `MODULE.rusage` and the four `stats-get`s. A service that is not loaded
//! (content-sqlite where the backing store is content-files, say) has no
//! series and is not an error; one that answers badly is named in the
//! collector's error, and what the others said is still exported.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

use super::{About, Collector, Context, Settings, Spec};
use crate::model::error::ParseError;
use crate::model::idset::IdSet;
use crate::reactor::cadence::Cadence;
use crate::reactor::poll::{Opened, PollLoop, ROUND_TIMEOUT};
use crate::render::{Doc, Family, Rendered};
use crate::state::{Section, State};
use flux::Error;

pub const NAME: &str = "internals";
pub const SECTION: Section<Internals> = Section::new(NAME);

pub const SPEC: Spec = Spec {
    summary: "Broker internals: each module's idle time, message queues and thread CPU; the content cache and store, the KVS cache, and the job manager.",
    about: About {
        name: NAME,
        on_by_default: true,
        options: &[],
        needs: &[],
    },
    start,
    restart_needed: super::restart_on_new_interval,
    render: super::Render::Now(render),
    reads: &[],
    families: FAMILIES,
};

/// What the internals collector keeps in the state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Internals {
    pub modules: Vec<ModuleRow>,
    pub content_cache: Option<ContentCache>,
    pub content_store: Option<ContentStore>,
    pub kvs_cache: Option<KvsCache>,
    pub job_manager: Option<JobManager>,
}

/// One loaded broker module, as `flux module list` shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModuleRow {
    pub name: String,
    pub idle_seconds: f64,
    pub send_queue: u64,
    pub recv_queue: u64,
    /// User and system CPU of the module's thread, where it answered.
    pub cpu: Option<(f64, f64)>,
}

/// `content.stats-get`: the broker's content cache.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContentCache {
    pub objects: u64,
    pub bytes: u64,
    pub dirty: u64,
}

/// Count, largest and mean of one operation's durations (in seconds).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timing {
    pub count: u64,
    pub max: f64,
    pub mean: f64,
}

/// `content-sqlite.stats-get`: the backing store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContentStore {
    pub size_bytes: u64,
    pub free_bytes: u64,
    pub objects: u64,
    pub store: Timing,
    pub load: Timing,
}

/// `kvs.stats-get`: the KVS cache.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KvsCache {
    pub objects: u64,
    pub bytes: f64,
    pub dirty: u64,
}

/// `job-manager.stats-get`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobManager {
    pub active_jobs: u64,
    pub inactive_jobs: u64,
    pub journal_listeners: u64,
    pub housekeeping_jobs: u64,
    pub housekeeping_nodes: u64,
}

/// The stats services, by module.
const STATS: [&str; 4] = ["content", "content-sqlite", "kvs", "job-manager"];

/// How often each source is asked ([`Cadence`]): each gets a share of
/// broker time per poll, and is asked again once its last answer's time
/// is paid off at that rate. On 4096 nodes with 5,000 running jobs
/// (`scripts/bench-collectors`) `kvs.stats-get` takes some 66 ms (it walks
/// the KVS cache and lists every job's namespace) and is asked once an
/// hour at the default 5 s interval; `content-sqlite.stats-get` (4-7 ms,
/// it counts the store's objects) every 7 minutes; `module.list` (0.4 ms:
/// the broker packs every module's entry) every third poll. An answer's
/// time includes the trip between the broker's threads (0.5-4 ms of wall
/// time on an idle two-core machine, far more than the CPU it costs), so
/// even a small instance reads the dearer sources only every few dozen
/// polls; `job-manager.stats-get`, cheap everywhere, at least every 12th.
/// Between asks the last answer is exported; the first poll asks
/// everything, and the second each source again, to time it alone.
struct Cadences {
    module_list: Cadence,
    /// For `STATS`, in order. `content.stats-get` feeds the dirty-cache
    /// alert, and is never more than a minute old.
    stats: [Cadence; 4],
    /// Every module's rusage, one request each (some twenty): the time to
    /// the round's last rusage answer is charged to them together.
    rusage: Cadence,
}

impl Cadences {
    /// Polls between reads, by source, for `flux module stats prometheus`.
    fn read_every(&self) -> BTreeMap<String, u32> {
        let mut every: BTreeMap<String, u32> = STATS
            .iter()
            .zip(&self.stats)
            .map(|(module, cadence)| (format!("{module}.stats-get"), cadence.every()))
            .collect();
        every.insert("module.list".into(), self.module_list.every());
        every.insert("MODULE.rusage".into(), self.rusage.every());
        every
    }

    fn new() -> Cadences {
        let us = Duration::from_micros;
        Cadences {
            module_list: Cadence::new(us(150), 1, 12),
            stats: [
                Cadence::new(us(100), 1, 12),
                Cadence::new(us(50), 1, 720),
                Cadence::new(us(50), 1, 720),
                Cadence::new(us(50), 1, 12),
            ],
            rusage: Cadence::new(us(50), 1, 720),
        }
    }
}

/// What one round keeps: the module list, then one answer slot per
/// `STATS` entry followed by one per module's rusage.
#[derive(Default)]
struct Round {
    modules: Vec<ModuleRow>,
    /// The topic of each answer slot, to name what did not answer.
    topics: Vec<String>,
    /// Whether each slot's source is asked this round.
    asked: Vec<bool>,
    answers: Vec<Option<Result<String, Error>>>,
    /// When the slots' requests went out, to time their answers.
    sent: Option<Instant>,
    /// The longest any rusage answer took this round.
    rusage_took: Option<Duration>,
}

/// Who has not answered a round: the topics of its empty slots, or
/// module.list itself.
fn unanswered(round: &Round) -> String {
    let missing: Vec<&str> = round
        .topics
        .iter()
        .zip(&round.answers)
        .filter(|(_, answer)| answer.is_none())
        .map(|(topic, _)| topic.as_str())
        .collect();
    if round.topics.is_empty() {
        "module.list".to_string()
    } else {
        missing.join(", ")
    }
}

struct Inner {
    ctx: Rc<Context>,
    poll: PollLoop<Round>,
    cadences: Cadences,
    /// A module list has been read: until then every round asks for it.
    listed: Cell<bool>,
    /// What the last round found, for the sources a round does not ask.
    last: RefCell<Internals>,
}

impl Collector for Inner {}

fn start(ctx: Rc<Context>, settings: &Settings) -> Result<Box<dyn Collector>, Error> {
    let handle = ctx.handle;
    let inner = Rc::new(Inner {
        ctx,
        poll: PollLoop::new(),
        cadences: Cadences::new(),
        listed: Cell::new(false),
        last: RefCell::new(Internals::default()),
    });
    let weak: Weak<Inner> = Rc::downgrade(&inner);
    inner.poll.start(handle, settings.poll_interval, move || {
        if let Some(inner) = weak.upgrade() {
            start_round(&inner);
        }
    })?;
    Ok(Box::new(inner))
}

fn start_round(inner: &Rc<Inner>) {
    let silent = inner.poll.overdue(unanswered);
    match inner.poll.open(Round::default()) {
        Opened::Busy => return,
        Opened::AfterTimeout => {
            let message = format!(
                "no answer within {}s from {}",
                ROUND_TIMEOUT.as_secs(),
                silent.unwrap_or_default()
            );
            inner
                .ctx
                .failed(NAME, &message, |state| state.clear(SECTION));
        }
        Opened::Fresh => {}
    }
    let list_due = inner.cadences.module_list.due();
    if !list_due && inner.listed.get() {
        // The last list's modules, idle times and queues, asked about
        // again.
        let modules = inner.last.borrow().modules.clone();
        return ask_sources(inner, modules);
    }
    let weak = Rc::downgrade(inner);
    let sent_at = Instant::now();
    let sent = inner.poll.send("module.list", "{}", move |answer| {
        if let Some(inner) = weak.upgrade() {
            on_list(&inner, sent_at, answer);
        }
    });
    if let Err(err) = sent {
        inner.poll.close();
        inner
            .ctx
            .failed(NAME, &err.message, |state| state.clear(SECTION));
    }
}

fn on_list(inner: &Rc<Inner>, sent_at: Instant, answer: Result<String, Error>) {
    let modules = match answer
        .map_err(|e| e.message)
        .and_then(|p| parse_module_list(&p).map_err(|e| e.to_string()))
    {
        Ok(modules) => modules,
        Err(msg) => {
            inner.cadences.module_list.failed();
            inner.poll.close();
            return inner.ctx.failed(NAME, &msg, |state| state.clear(SECTION));
        }
    };
    inner.cadences.module_list.answered(sent_at.elapsed());
    inner.listed.set(true);
    ask_sources(inner, modules);
}

/// Asks the sources that are due this round about `modules`.
fn ask_sources(inner: &Rc<Inner>, modules: Vec<ModuleRow>) {
    let rusage_due = inner.cadences.rusage.due();
    let asked: Vec<bool> = inner
        .cadences
        .stats
        .iter()
        .map(Cadence::due)
        .chain(modules.iter().map(|_| rusage_due))
        .collect();
    let topics: Vec<(String, &str)> = STATS
        .iter()
        .map(|m| (format!("{m}.stats-get"), "{}"))
        .chain(
            modules
                .iter()
                .map(|m| (format!("{}.rusage", m.name), r#"{"who":"thread"}"#)),
        )
        .collect();
    inner.poll.with(|round| {
        round.modules = modules;
        // A source not asked this round has its slot filled already; what
        // the last round found is kept for it (see `keep_unasked`).
        round.answers = asked
            .iter()
            .map(|&ask| (!ask).then(|| Err(Error::new(libc::ENOSYS, "not asked this round"))))
            .collect();
        round.asked = asked.clone();
        round.topics = topics.iter().map(|(topic, _)| topic.clone()).collect();
        round.sent = Some(Instant::now());
    });
    if !asked.contains(&true) {
        return finish(inner);
    }
    for (slot, (topic, payload)) in topics.iter().enumerate() {
        if !asked[slot] {
            continue;
        }
        let weak = Rc::downgrade(inner);
        let sent = inner.poll.send(topic, payload, move |answer| {
            if let Some(inner) = weak.upgrade() {
                on_answer(&inner, slot, answer);
            }
        });
        if let Err(err) = sent {
            on_answer(inner, slot, Err(err));
        }
    }
}

fn on_answer(inner: &Rc<Inner>, slot: usize, answer: Result<String, Error>) {
    let took = inner
        .poll
        .with(|round| round.sent.map(|sent| sent.elapsed()))
        .flatten()
        .unwrap_or_default();
    if let Some(cadence) = inner.cadences.stats.get(slot) {
        cadence.observe(&answer, took);
    }
    let complete = inner.poll.with(|round| {
        if let Some(entry) = round.answers.get_mut(slot) {
            *entry = Some(answer);
        }
        if slot >= STATS.len() {
            round.rusage_took = round.rusage_took.max(Some(took));
        }
        round.answers.iter().all(Option::is_some)
    });
    if complete == Some(true) {
        finish(inner);
    }
}

/// Every answer of the round is in: export what they say.
fn finish(inner: &Rc<Inner>) {
    let Some(round) = inner.poll.close() else {
        return;
    };
    let started = round.started;
    let Round {
        modules,
        answers,
        asked,
        rusage_took,
        ..
    } = round.into_data();
    if let Some(took) = rusage_took {
        inner.cadences.rusage.answered(took);
    }
    let read_every = inner.cadences.read_every();
    let answers: Vec<Result<String, Error>> = answers.into_iter().flatten().collect();
    let (mut found, errors) = combine(modules, &answers);
    keep_unasked(&mut found, &inner.last.borrow(), &asked);
    *inner.last.borrow_mut() = found.clone();
    let change = |state: &mut State| {
        state.set(SECTION, found);
        if let Some(status) = state.collector_mut(NAME) {
            status.read_every = read_every;
        }
    };
    if errors.is_empty() {
        inner.ctx.succeeded(NAME, started, change);
    } else {
        inner.ctx.failed(NAME, &errors.join("; "), change);
    }
}

/// For the sources a round did not ask, what the last round found.
fn keep_unasked(found: &mut Internals, last: &Internals, asked: &[bool]) {
    let asked = |slot: usize| asked.get(slot).copied().unwrap_or(true);
    if !asked(0) {
        found.content_cache = last.content_cache.clone();
    }
    if !asked(1) {
        found.content_store = last.content_store.clone();
    }
    if !asked(2) {
        found.kvs_cache = last.kvs_cache.clone();
    }
    if !asked(3) {
        found.job_manager = last.job_manager.clone();
    }
    for (i, module) in found.modules.iter_mut().enumerate() {
        if !asked(STATS.len() + i) {
            module.cpu = last
                .modules
                .iter()
                .find(|m| m.name == module.name)
                .and_then(|m| m.cpu);
        }
    }
}

/// Puts one round's answers together (the `STATS` ones, then one rusage
/// per module): what could be read, and what went wrong, by module.
pub fn combine(
    mut modules: Vec<ModuleRow>,
    answers: &[Result<String, Error>],
) -> (Internals, Vec<String>) {
    let mut errors = Vec::new();
    let mut found = Internals::default();
    // Each parser gets the payload; a service that is not loaded is no
    // error (ENOSYS), any other failure is, named by its module.
    let mut read = |module: &str, answer: Option<&Result<String, Error>>| match answer {
        Some(Ok(payload)) => Some(payload.clone()),
        Some(Err(err)) if err.errno == libc::ENOSYS => None,
        Some(Err(err)) => {
            errors.push(format!("{module}: {}", err.message));
            None
        }
        None => None,
    };
    let stats: Vec<Option<String>> = STATS
        .iter()
        .enumerate()
        .map(|(i, module)| read(module, answers.get(i)))
        .collect();
    // A module that cannot report its thread's usage (a builtin one, which
    // is no thread of its own) simply has no CPU series.
    let rusage: Vec<Option<String>> = (0..modules.len())
        .map(|i| match answers.get(STATS.len() + i) {
            Some(Ok(payload)) => Some(payload.clone()),
            _ => None,
        })
        .collect();
    let mut note = |module: &str, r: Result<(), ParseError>| {
        if let Err(e) = r {
            errors.push(format!("{module}.stats-get: {e}"));
        }
    };
    if let Some(p) = &stats[0] {
        note(
            "content",
            parse_content(p).map(|c| found.content_cache = Some(c)),
        );
    }
    if let Some(p) = &stats[1] {
        note(
            "content-sqlite",
            parse_content_sqlite(p).map(|c| found.content_store = Some(c)),
        );
    }
    if let Some(p) = &stats[2] {
        note("kvs", parse_kvs(p).map(|c| found.kvs_cache = Some(c)));
    }
    if let Some(p) = &stats[3] {
        note(
            "job-manager",
            parse_job_manager(p).map(|c| found.job_manager = Some(c)),
        );
    }
    for (module, payload) in modules.iter_mut().zip(rusage) {
        if let Some(p) = payload {
            match parse_rusage(&p) {
                Ok(cpu) => module.cpu = Some(cpu),
                Err(e) => errors.push(format!("{}.rusage: {e}", module.name)),
            }
        }
    }
    found.modules = modules;
    (found, errors)
}

fn malformed(e: serde_json::Error) -> ParseError {
    ParseError::invalid(format!("malformed response: {e}"))
}

/// `module.list`: every loaded module with its idle time and queues.
pub fn parse_module_list(payload: &str) -> Result<Vec<ModuleRow>, ParseError> {
    #[derive(Deserialize)]
    struct List {
        mods: Vec<Module>,
    }
    #[derive(Deserialize)]
    struct Module {
        name: String,
        #[serde(default)]
        idle: f64,
        #[serde(default)]
        sendqueue: u64,
        #[serde(default)]
        recvqueue: u64,
    }
    let list: List =
        serde_json::from_str(payload).map_err(|e| ParseError::malformed("module.list", e))?;
    let mut rows: Vec<ModuleRow> = list
        .mods
        .into_iter()
        .map(|m| ModuleRow {
            name: m.name,
            idle_seconds: m.idle,
            send_queue: m.sendqueue,
            recv_queue: m.recvqueue,
            cpu: None,
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

/// `MODULE.rusage` with `who: thread`: the thread's user and system CPU.
pub fn parse_rusage(payload: &str) -> Result<(f64, f64), ParseError> {
    #[derive(Deserialize)]
    struct Usage {
        utime: f64,
        stime: f64,
    }
    let u: Usage = serde_json::from_str(payload).map_err(malformed)?;
    Ok((u.utime, u.stime))
}

pub fn parse_content(payload: &str) -> Result<ContentCache, ParseError> {
    #[derive(Deserialize)]
    struct Stats {
        count: u64,
        size: u64,
        dirty: u64,
    }
    let s: Stats = serde_json::from_str(payload).map_err(malformed)?;
    Ok(ContentCache {
        objects: s.count,
        bytes: s.size,
        dirty: s.dirty,
    })
}

pub fn parse_content_sqlite(payload: &str) -> Result<ContentStore, ParseError> {
    // content-sqlite keeps its times in milliseconds (flux's monotime).
    #[derive(Deserialize)]
    struct Tstat {
        count: u64,
        max: f64,
        mean: f64,
    }
    #[derive(Deserialize)]
    struct Stats {
        dbfile_size: u64,
        dbfile_free: u64,
        object_count: u64,
        store_time: Tstat,
        load_time: Tstat,
    }
    let s: Stats = serde_json::from_str(payload).map_err(malformed)?;
    let seconds = |t: Tstat| Timing {
        count: t.count,
        max: t.max / 1000.0,
        mean: t.mean / 1000.0,
    };
    Ok(ContentStore {
        size_bytes: s.dbfile_size,
        free_bytes: s.dbfile_free,
        objects: s.object_count,
        store: seconds(s.store_time),
        load: seconds(s.load_time),
    })
}

pub fn parse_kvs(payload: &str) -> Result<KvsCache, ParseError> {
    let v: Value = serde_json::from_str(payload).map_err(malformed)?;
    let cache = v
        .get("cache")
        .ok_or_else(|| ParseError::invalid("no cache statistics"))?;
    let number = |key: &str| {
        cache.get(key).and_then(Value::as_f64).ok_or_else(|| {
            ParseError::invalid(format!("cache.\"{key}\" is missing or not a number"))
        })
    };
    let objects = cache
        .get("obj size (KiB)")
        .and_then(|s| s.get("count"))
        .and_then(Value::as_u64)
        .ok_or_else(|| {
            ParseError::invalid("cache.\"obj size (KiB)\".count is missing or not a number")
        })?;
    Ok(KvsCache {
        objects,
        bytes: number("obj size total (MiB)")? * 1024.0 * 1024.0,
        dirty: number("#obj dirty")? as u64,
    })
}

pub fn parse_job_manager(payload: &str) -> Result<JobManager, ParseError> {
    #[derive(Deserialize)]
    struct Journal {
        listeners: u64,
    }
    #[derive(Deserialize)]
    struct Housekeeping {
        #[serde(default)]
        running: serde_json::Map<String, Value>,
    }
    #[derive(Deserialize)]
    struct Stats {
        active_jobs: u64,
        inactive_jobs: u64,
        journal: Journal,
        housekeeping: Option<Housekeeping>,
    }
    let s: Stats = serde_json::from_str(payload).map_err(malformed)?;
    let running = s.housekeeping.map(|h| h.running).unwrap_or_default();
    let nodes = housekeeping_ranks(&running)?;
    Ok(JobManager {
        active_jobs: s.active_jobs,
        inactive_jobs: s.inactive_jobs,
        journal_listeners: s.journal.listeners,
        housekeeping_jobs: running.len() as u64,
        housekeeping_nodes: nodes.count(),
    })
}

/// The ranks in housekeeping: the union of every housekeeping job's
/// `allocated` idset, as `flux resource status` takes them.
pub fn housekeeping_ranks(running: &serde_json::Map<String, Value>) -> Result<IdSet, ParseError> {
    let mut ranks = IdSet::new();
    for (job, info) in running {
        let allocated = info
            .get("allocated")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ParseError::invalid(format!("housekeeping job {job}: no allocated idset"))
            })?;
        ranks.union_with(&IdSet::parse(allocated)?);
    }
    Ok(ranks)
}

fn render(state: &State, out: &mut Rendered) {
    let Some(found) = state.get(SECTION) else {
        return;
    };
    let mut f = Family::of(out, &MODULE_IDLE_SECONDS);
    for m in &found.modules {
        f.sample(&[("module", &m.name)], m.idle_seconds);
    }
    let mut f = Family::of(out, &MODULE_QUEUE_MESSAGES);
    for m in &found.modules {
        f.sample(
            &[("module", &m.name), ("queue", "send")],
            m.send_queue as f64,
        );
        f.sample(
            &[("module", &m.name), ("queue", "recv")],
            m.recv_queue as f64,
        );
    }
    let mut f = Family::of(out, &MODULE_CPU_SECONDS_TOTAL);
    for m in &found.modules {
        if let Some((user, system)) = m.cpu {
            f.sample(&[("module", &m.name), ("mode", "user")], user);
            f.sample(&[("module", &m.name), ("mode", "system")], system);
        }
    }
    if let Some(c) = &found.content_cache {
        Family::of(out, &CONTENT_CACHE_OBJECTS).sample(&[], c.objects as f64);
        Family::of(out, &CONTENT_CACHE_BYTES).sample(&[], c.bytes as f64);
        Family::of(out, &CONTENT_CACHE_DIRTY_OBJECTS).sample(&[], c.dirty as f64);
    }
    if let Some(s) = &found.content_store {
        Family::of(out, &CONTENT_STORE_SIZE_BYTES).sample(&[], s.size_bytes as f64);
        Family::of(out, &CONTENT_STORE_FREE_BYTES).sample(&[], s.free_bytes as f64);
        Family::of(out, &CONTENT_STORE_OBJECTS).sample(&[], s.objects as f64);
        let ops = [("store", &s.store), ("load", &s.load)];
        let mut f = Family::of(out, &CONTENT_STORE_OPERATIONS_TOTAL);
        for (op, t) in ops {
            f.sample(&[("operation", op)], t.count as f64);
        }
        let mut f = Family::of(out, &CONTENT_STORE_OPERATION_MAX_SECONDS);
        for (op, t) in ops {
            f.sample(&[("operation", op)], t.max);
        }
        let mut f = Family::of(out, &CONTENT_STORE_OPERATION_MEAN_SECONDS);
        for (op, t) in ops {
            f.sample(&[("operation", op)], t.mean);
        }
    }
    if let Some(k) = &found.kvs_cache {
        Family::of(out, &KVS_CACHE_OBJECTS).sample(&[], k.objects as f64);
        Family::of(out, &KVS_CACHE_BYTES).sample(&[], k.bytes.round());
        Family::of(out, &KVS_CACHE_DIRTY_OBJECTS).sample(&[], k.dirty as f64);
    }
    if let Some(j) = &found.job_manager {
        let mut f = Family::of(out, &JOBMANAGER_JOBS);
        f.sample(&[("state", "active")], j.active_jobs as f64);
        f.sample(&[("state", "inactive")], j.inactive_jobs as f64);
        Family::of(out, &JOBMANAGER_JOURNAL_LISTENERS).sample(&[], j.journal_listeners as f64);
        Family::of(out, &JOBMANAGER_HOUSEKEEPING_JOBS).sample(&[], j.housekeeping_jobs as f64);
        Family::of(out, &JOBMANAGER_HOUSEKEEPING_NODES).sample(&[], j.housekeeping_nodes as f64);
    }
}

/// The families this collector writes.
pub const FAMILIES: &[Doc] = &[
    MODULE_IDLE_SECONDS,
    MODULE_QUEUE_MESSAGES,
    MODULE_CPU_SECONDS_TOTAL,
    CONTENT_CACHE_OBJECTS,
    CONTENT_CACHE_BYTES,
    CONTENT_CACHE_DIRTY_OBJECTS,
    CONTENT_STORE_SIZE_BYTES,
    CONTENT_STORE_FREE_BYTES,
    CONTENT_STORE_OBJECTS,
    CONTENT_STORE_OPERATIONS_TOTAL,
    CONTENT_STORE_OPERATION_MAX_SECONDS,
    CONTENT_STORE_OPERATION_MEAN_SECONDS,
    KVS_CACHE_OBJECTS,
    KVS_CACHE_BYTES,
    KVS_CACHE_DIRTY_OBJECTS,
    JOBMANAGER_JOBS,
    JOBMANAGER_JOURNAL_LISTENERS,
    JOBMANAGER_HOUSEKEEPING_JOBS,
    JOBMANAGER_HOUSEKEEPING_NODES,
];

const MODULE_IDLE_SECONDS: Doc = Doc::gauge(
    "flux_module_idle_seconds",
    "Seconds since the broker module last sent a message, as flux module list shows (Idle).",
    &["module"],
);

const MODULE_QUEUE_MESSAGES: Doc = Doc::gauge(
    "flux_module_queue_messages",
    "Messages waiting in the broker module's send and receive queues; a queue that keeps growing means the module is falling behind.",
    &["module", "queue"],
);

const MODULE_CPU_SECONDS_TOTAL: Doc = Doc::counter(
    "flux_module_cpu_seconds_total",
    "CPU time of the broker module's thread, as flux module stats --rusage=thread shows (it starts again when the module is reloaded).",
    &["module", "mode"],
);

const CONTENT_CACHE_OBJECTS: Doc = Doc::gauge(
    "flux_content_cache_objects",
    "Objects in the broker's content cache (flux module stats content: count).",
    &[],
);

const CONTENT_CACHE_BYTES: Doc = Doc::gauge(
    "flux_content_cache_bytes",
    "Bytes held by the broker's content cache (flux module stats content: size).",
    &[],
);

const CONTENT_CACHE_DIRTY_OBJECTS: Doc = Doc::gauge(
    "flux_content_cache_dirty_objects",
    "Content cache objects not yet written to the backing store; a count that keeps growing means the store is falling behind.",
    &[],
);

const CONTENT_STORE_SIZE_BYTES: Doc = Doc::gauge(
    "flux_content_store_size_bytes",
    "Size of the content store's sqlite file (flux module stats content-sqlite: dbfile_size).",
    &[],
);

const CONTENT_STORE_FREE_BYTES: Doc = Doc::gauge(
    "flux_content_store_free_bytes",
    "Free space on the filesystem that holds the content store (dbfile_free).",
    &[],
);

const CONTENT_STORE_OBJECTS: Doc = Doc::gauge(
    "flux_content_store_objects",
    "Objects in the content store (object_count).",
    &[],
);

const CONTENT_STORE_OPERATIONS_TOTAL: Doc = Doc::counter(
    "flux_content_store_operations_total",
    "Objects stored in and loaded from the content store since content-sqlite loaded.",
    &["operation"],
);

const CONTENT_STORE_OPERATION_MAX_SECONDS: Doc = Doc::gauge(
    "flux_content_store_operation_max_seconds",
    "Longest content store operation since content-sqlite loaded.",
    &["operation"],
);

const CONTENT_STORE_OPERATION_MEAN_SECONDS: Doc = Doc::gauge(
    "flux_content_store_operation_mean_seconds",
    "Mean content store operation time since content-sqlite loaded.",
    &["operation"],
);

const KVS_CACHE_OBJECTS: Doc = Doc::gauge(
    "flux_kvs_cache_objects",
    "Objects in the KVS cache (flux module stats kvs).",
    &[],
);

const KVS_CACHE_BYTES: Doc = Doc::gauge("flux_kvs_cache_bytes", "Bytes in the KVS cache.", &[]);

const KVS_CACHE_DIRTY_OBJECTS: Doc = Doc::gauge(
    "flux_kvs_cache_dirty_objects",
    "KVS cache objects not yet stored.",
    &[],
);

const JOBMANAGER_JOBS: Doc = Doc::gauge(
    "flux_jobmanager_jobs",
    "Jobs the job manager holds, active and inactive (flux module stats job-manager).",
    &["state"],
);

const JOBMANAGER_JOURNAL_LISTENERS: Doc = Doc::gauge(
    "flux_jobmanager_journal_listeners",
    "Clients following the job-manager journal (this module is one).",
    &[],
);

const JOBMANAGER_HOUSEKEEPING_JOBS: Doc = Doc::gauge(
    "flux_jobmanager_housekeeping_jobs",
    "Jobs whose housekeeping is running.",
    &[],
);

const JOBMANAGER_HOUSEKEEPING_NODES: Doc = Doc::gauge(
    "flux_jobmanager_housekeeping_nodes",
    "Nodes in housekeeping, as flux resource status counts them.",
    &[],
);
