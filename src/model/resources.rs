//! Resource sets (RFC 20 Rv1) from `resource.sched-status`, node states from
//! `resource.status`, and the counts `flux resource list` and `flux resource
//! status` print from them.

use super::error::ParseError;
use std::collections::BTreeMap;

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::idset::IdSet;

/// The cores and GPUs of one rank.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    pub cores: IdSet,
    pub gpus: IdSet,
}

impl Node {
    /// Whether it holds a core or a GPU: an allocated rank, in the
    /// allocated set.
    fn holds_any(&self) -> bool {
        !self.cores.is_empty() || !self.gpus.is_empty()
    }

    fn counts(&self) -> Counts {
        let (ncores, ngpus) = (self.cores.count(), self.gpus.count());
        Counts {
            nnodes: u64::from(ncores + ngpus > 0),
            ncores,
            ngpus,
        }
    }
}

/// Each rank's free, allocated, down and total counts, by rank: what the
/// rows of `flux resource list` sum. Kept between two counts, so that after
/// a change of the allocated set only the ranks it touched are counted
/// again ([`SchedView::recount`]): at 16,384 ranks, counting every rank
/// before each publish was a quarter of the reactor thread's time while
/// the scheduler started jobs (measured as in BENCHMARKS.md, "The busy
/// broker").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RankCounts {
    ranks: Vec<Option<[Counts; 4]>>,
}

impl RankCounts {
    fn set(&mut self, rank: u32, counts: Option<[Counts; 4]>) {
        let i = rank as usize;
        if self.ranks.len() <= i {
            if counts.is_none() {
                return;
            }
            self.ranks.resize(i + 1, None);
        }
        self.ranks[i] = counts;
        // No empty slots at the end, so that two counts of the same ranks
        // are equal however they were reached.
        while self.ranks.last().is_some_and(Option::is_none) {
            self.ranks.pop();
        }
    }

    fn get(&self, rank: u32) -> Option<[Counts; 4]> {
        self.ranks.get(rank as usize).copied().flatten()
    }

    fn iter(&self) -> impl Iterator<Item = (u32, &[Counts; 4])> + '_ {
        self.ranks
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().map(|c| (i as u32, c)))
    }
}

/// The rows of `flux resource list`: free, allocated and down (which
/// overlap: a down node may also be allocated), then `all`, as `flux
/// resource list -s all` prints it.
const ROWS: [&str; 4] = ["free", "allocated", "down", ALL];

/// The sums of each row over the ranks of `only` (all ranks for None).
fn sum_rows(per_rank: &RankCounts, only: Option<&IdSet>) -> [Counts; 4] {
    let mut rows = [Counts::default(); 4];
    for (rank, counts) in per_rank.iter() {
        if only.is_some_and(|o| !o.contains(rank)) {
            continue;
        }
        for (row, c) in rows.iter_mut().zip(counts) {
            row.nnodes += c.nnodes;
            row.ncores += c.ncores;
            row.ngpus += c.ngpus;
        }
    }
    rows
}

fn children_idset(
    children: &BTreeMap<Cow<'_, str>, Cow<'_, str>>,
    name: &str,
) -> Result<IdSet, ParseError> {
    match children.get(name) {
        Some(ids) => IdSet::parse(ids),
        None => Ok(IdSet::new()),
    }
}

/// The ranks of an Rv1 object, without reading what each holds.
fn rv1_ranks(raw: Option<&RawValue>) -> Result<IdSet, ParseError> {
    let mut ranks = IdSet::new();
    if let Some(r) = parse_rv1(raw)? {
        for entry in r
            .execution
            .ok_or_else(|| ParseError::invalid("R has no execution object"))?
            .r_lite
        {
            ranks.union_with(&IdSet::parse(&entry.rank)?);
        }
    }
    Ok(ranks)
}

/// Nodes indexed by rank: ranks are dense, so a vector beats a map.
#[derive(Debug, Clone, Default)]
pub struct Nodes {
    slots: Vec<Option<Node>>,
}

/// Two sets are equal when they hold the same nodes, however many empty
/// slots a removal left at the end.
impl PartialEq for Nodes {
    fn eq(&self, other: &Nodes) -> bool {
        let (short, long) = if self.slots.len() <= other.slots.len() {
            (&self.slots, &other.slots)
        } else {
            (&other.slots, &self.slots)
        };
        short[..] == long[..short.len()] && long[short.len()..].iter().all(Option::is_none)
    }
}

impl Eq for Nodes {}

impl Nodes {
    pub fn get(&self, rank: &u32) -> Option<&Node> {
        self.slots.get(*rank as usize).and_then(Option::as_ref)
    }

    pub fn contains_key(&self, rank: &u32) -> bool {
        self.get(rank).is_some()
    }

    pub fn entry_or_default(&mut self, rank: u32) -> &mut Node {
        let i = rank as usize;
        if self.slots.len() <= i {
            self.slots.resize(i + 1, None);
        }
        self.slots[i].get_or_insert_with(Node::default)
    }

    /// Takes cores and GPUs away from a rank; a rank left with neither is
    /// no longer in the set.
    pub fn subtract(&mut self, rank: u32, cores: &IdSet, gpus: &IdSet) {
        if let Some(slot) = self.slots.get_mut(rank as usize) {
            if let Some(node) = slot.as_mut() {
                node.cores.subtract(cores);
                node.gpus.subtract(gpus);
                if node.cores.is_empty() && node.gpus.is_empty() {
                    *slot = None;
                }
            }
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = u32> + '_ {
        self.iter().map(|(rank, _)| rank)
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &Node)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_ref().map(|n| (i as u32, n)))
    }
}

/// An Rv1 resource set, by rank.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceSet {
    pub nodes: Nodes,
    /// Property name to the ranks that have it.
    pub properties: BTreeMap<String, IdSet>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub nnodes: u64,
    pub ncores: u64,
    pub ngpus: u64,
}

#[derive(Deserialize)]
struct Rv1<'a> {
    version: i64,
    #[serde(borrow)]
    execution: Option<Execution<'a>>,
}

#[derive(Deserialize)]
struct Execution<'a> {
    #[serde(rename = "R_lite", borrow)]
    r_lite: Vec<RLiteEntry<'a>>,
    #[serde(default, borrow)]
    properties: BTreeMap<Cow<'a, str>, Cow<'a, str>>,
    /// Hostlists naming the ranks of `R_lite`, in rank order.
    #[serde(default, borrow)]
    nodelist: Vec<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RLiteEntry<'a> {
    #[serde(borrow)]
    rank: Cow<'a, str>,
    #[serde(default, borrow)]
    children: BTreeMap<Cow<'a, str>, Cow<'a, str>>,
}

/// Deserializes an Rv1 object, where JSON null or `{}` is the empty set.
fn parse_rv1<'a>(raw: Option<&'a RawValue>) -> Result<Option<Rv1<'a>>, ParseError> {
    let Some(raw) = raw else { return Ok(None) };
    let text = raw.get().trim();
    let empty_object = text
        .strip_prefix('{')
        .is_some_and(|t| t.trim_start() == "}");
    if text == "null" || empty_object {
        return Ok(None);
    }
    let r: Rv1 =
        serde_json::from_str(text).map_err(|e| ParseError::invalid(format!("malformed R: {e}")))?;
    if r.version != 1 {
        return Err(ParseError::invalid(format!(
            "unsupported R version {} (expected 1)",
            r.version
        )));
    }
    Ok(Some(r))
}

/// One `R_lite` entry: these ranks, each with these cores and GPUs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    pub ranks: IdSet,
    pub cores: IdSet,
    pub gpus: IdSet,
}

impl Slice {
    fn read(entry: &RLiteEntry) -> Result<Slice, ParseError> {
        let child = |name: &str| children_idset(&entry.children, name);
        Ok(Slice {
            ranks: IdSet::parse(&entry.rank)?,
            cores: child("core")?,
            gpus: child("gpu")?,
        })
    }

    /// The `R_lite` entries of an Rv1 object, as they are.
    pub fn all_of(raw: &RawValue) -> Result<Vec<Slice>, ParseError> {
        Ok(JobR::read(raw)?.slices)
    }
}

/// A job's R (Rv1) as the models read it: read once per `alloc` event for
/// all of them, as R is the largest part of that event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobR {
    pub slices: Vec<Slice>,
    /// `execution.nodelist`: hostlists naming the job's ranks in order.
    pub nodelist: Vec<String>,
}

impl JobR {
    /// JSON null or `{}` is an empty allocation.
    pub fn read(raw: &RawValue) -> Result<JobR, ParseError> {
        let Some(r) = parse_rv1(Some(raw))? else {
            return Ok(JobR::default());
        };
        let execution = r
            .execution
            .ok_or_else(|| ParseError::invalid("R has no execution object"))?;
        Ok(JobR {
            slices: execution
                .r_lite
                .iter()
                .map(Slice::read)
                .collect::<Result<_, _>>()?,
            nodelist: execution
                .nodelist
                .into_iter()
                .map(Cow::into_owned)
                .collect(),
        })
    }
}

impl ResourceSet {
    /// Parses an Rv1 object (`{"version": 1, "execution": {...}}`).
    pub fn from_rv1_json(raw: Option<&RawValue>) -> Result<ResourceSet, ParseError> {
        let mut set = ResourceSet::default();
        let Some(r) = parse_rv1(raw)? else {
            return Ok(set);
        };
        let execution = r
            .execution
            .ok_or_else(|| ParseError::invalid("R has no execution object"))?;
        for entry in &execution.r_lite {
            let slice = Slice::read(entry)?;
            for rank in slice.ranks.iter() {
                let node = set.nodes.entry_or_default(rank);
                node.cores.union_with(&slice.cores);
                node.gpus.union_with(&slice.gpus);
            }
        }
        for (name, ranks) in &execution.properties {
            set.properties
                .insert(name.to_string(), IdSet::parse(ranks)?);
        }
        Ok(set)
    }

    pub fn ranks(&self) -> IdSet {
        let mut ranks = IdSet::new();
        for rank in self.nodes.keys() {
            ranks.insert(rank);
        }
        ranks
    }
}

/// The scheduler's view, as `flux resource list` reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchedStatus {
    pub all: ResourceSet,
    pub down: ResourceSet,
    pub allocated: ResourceSet,
}

impl SchedStatus {
    pub fn parse(payload: &str) -> Result<SchedStatus, ParseError> {
        #[derive(Deserialize)]
        struct Raw<'a> {
            #[serde(borrow)]
            all: Option<&'a RawValue>,
            #[serde(borrow)]
            down: Option<&'a RawValue>,
            #[serde(borrow)]
            allocated: Option<&'a RawValue>,
        }
        let raw: Raw = serde_json::from_str(payload)
            .map_err(|e| ParseError::malformed("resource.sched-status", e))?;
        let set = |name: &str, r| {
            ResourceSet::from_rv1_json(r)
                .map_err(|e| ParseError::invalid(format!("resource.sched-status: {name}: {e}")))
        };
        Ok(SchedStatus {
            all: set("all", raw.all)?,
            down: set("down", raw.down)?,
            allocated: set("allocated", raw.allocated)?,
        })
    }

    /// What `resource.sched-status` answers, computed the way the resource
    /// module computes it, from a `resource.status` response and the job
    /// manager's allocated set (`job-manager.resource-status`): all is R
    /// without the excluded ranks, down is every node of it that is offline,
    /// torpid or drained. Costs the broker almost nothing, where asking
    /// sched-status makes the resource module rebuild the allocated set.
    ///
    /// None when some rank is offline: an instance whose resources were
    /// discovered rather than configured then drops lost ranks from all,
    /// which `resource.status` does not show, so only sched-status can say.
    pub fn derive(status: &str, allocated: &str) -> Result<Option<SchedStatus>, ParseError> {
        #[derive(Deserialize)]
        struct Allocated<'a> {
            #[serde(borrow)]
            allocated: Option<&'a RawValue>,
        }
        let alloc: Allocated = serde_json::from_str(allocated)
            .map_err(|e| ParseError::malformed("job-manager.resource-status", e))?;
        let allocated = ResourceSet::from_rv1_json(alloc.allocated)
            .map_err(|e| ParseError::invalid(format!("job-manager.resource-status: {e}")))?;
        SchedStatus::derive_with(status, allocated)
    }

    /// As [`SchedStatus::derive`], with the allocated set already known
    /// (from the job-manager journal, say).
    pub fn derive_with(
        status: &str,
        allocated: ResourceSet,
    ) -> Result<Option<SchedStatus>, ParseError> {
        Ok(StatusSets::derive(status)?.map(|sets| SchedStatus {
            all: sets.all,
            down: sets.down,
            allocated,
        }))
    }

    pub fn view(&self) -> SchedView<'_> {
        SchedView {
            all: &self.all,
            down: &self.down,
            allocated: &self.allocated,
        }
    }
}

/// The all and down sets of sched-status, which depend on `resource.status`
/// alone: worth keeping while only allocations change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusSets {
    pub all: ResourceSet,
    pub down: ResourceSet,
}

impl StatusSets {
    /// All is R without the excluded ranks, down is every node of it that
    /// is torpid or drained; None when a rank is offline (see
    /// [`SchedStatus::derive`]).
    pub fn derive(status: &str) -> Result<Option<StatusSets>, ParseError> {
        #[derive(Deserialize)]
        struct Status<'a> {
            #[serde(rename = "R", borrow)]
            r: Option<&'a RawValue>,
            #[serde(default, borrow)]
            offline: Cow<'a, str>,
            #[serde(default, borrow)]
            exclude: Cow<'a, str>,
            #[serde(default, borrow)]
            torpid: Cow<'a, str>,
            #[serde(default, borrow)]
            drain: BTreeMap<Cow<'a, str>, &'a RawValue>,
        }
        let bad = |e: ParseError| e.within("resource.status");
        let st: Status = serde_json::from_str(status)
            .map_err(|e| ParseError::malformed("resource.status", e))?;
        if !IdSet::parse(&st.offline).map_err(bad)?.is_empty() {
            return Ok(None);
        }
        let mut all = ResourceSet::from_rv1_json(st.r).map_err(bad)?;
        for rank in IdSet::parse(&st.exclude).map_err(bad)?.iter() {
            if let Some(slot) = all.nodes.slots.get_mut(rank as usize) {
                *slot = None;
            }
        }
        let mut down_ranks = IdSet::parse(&st.torpid).map_err(bad)?;
        for ranks in st.drain.keys() {
            down_ranks.union_with(&IdSet::parse(ranks).map_err(bad)?);
        }
        let mut down = ResourceSet::default();
        for (rank, node) in all.nodes.iter() {
            if down_ranks.contains(rank) {
                *down.nodes.entry_or_default(rank) = node.clone();
            }
        }
        Ok(Some(StatusSets { all, down }))
    }
}

/// sched-status's three sets, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct SchedView<'a> {
    pub all: &'a ResourceSet,
    pub down: &'a ResourceSet,
    pub allocated: &'a ResourceSet,
}

impl SchedView<'_> {
    /// Every rank's counts: free, allocated, down and all.
    pub fn rank_counts(&self) -> RankCounts {
        let mut counts = RankCounts::default();
        for set in [&self.all, &self.down, &self.allocated] {
            for rank in set.nodes.keys() {
                if counts.ranks.get(rank as usize).is_none_or(Option::is_none) {
                    counts.set(rank, self.counts_of(rank));
                }
            }
        }
        counts
    }

    /// One rank's counts, or None where no set holds it.
    fn counts_of(&self, rank: u32) -> Option<[Counts; 4]> {
        let (all, down, alloc) = (
            self.all.nodes.get(&rank),
            self.down.nodes.get(&rank),
            self.allocated.nodes.get(&rank),
        );
        if all.is_none() && down.is_none() && alloc.is_none() {
            return None;
        }
        let empty = Node::default();
        let (all, down, alloc) = (
            all.unwrap_or(&empty),
            down.unwrap_or(&empty),
            alloc.unwrap_or(&empty),
        );
        let free_cores = all.cores.count_minus(&down.cores, &alloc.cores);
        let free_gpus = all.gpus.count_minus(&down.gpus, &alloc.gpus);
        let free = Counts {
            nnodes: u64::from(free_cores + free_gpus > 0),
            ncores: free_cores,
            ngpus: free_gpus,
        };
        Some([free, alloc.counts(), down.counts(), all.counts()])
    }

    /// The ranks a queue's resources are on: those carrying every property
    /// it requires (all ranks when it requires none).
    pub fn queue_ranks(&self, requires: &[String]) -> IdSet {
        let mut ranks = self.all.ranks();
        for property in requires {
            match self.all.properties.get(property) {
                Some(with) => ranks.intersect_with(with),
                None => return IdSet::new(),
            }
        }
        ranks
    }
}

/// Named queues from the instance config, with what each requires; a
/// virtual queue (RFC 33 `parent`) takes its parent's requirements and is
/// left out, as flux resource list leaves it out by default.
pub fn configured_queues(config: &Value) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let Some(queues) = config.get("queues").and_then(Value::as_object) else {
        return out;
    };
    for (name, entry) in queues {
        if entry.get("parent").is_some() {
            continue;
        }
        let requires = entry
            .get("requires")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        out.insert(name.clone(), requires);
    }
    out
}

/// The rank sets of a `resource.status` answer and the drain reasons, as
/// flux-core's `ResourceStatus` reads them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusIdsets {
    pub offline: IdSet,
    pub exclude: IdSet,
    pub torpid: IdSet,
    /// Every rank drained, whether it still runs a job (draining) or not.
    pub drained: IdSet,
    /// (rank, reason) for each drained rank, by rank.
    pub drains: Vec<(u32, String)>,
    /// (rank, when it was drained) for each drained rank, by rank.
    pub drained_since: Vec<(u32, f64)>,
}

impl StatusIdsets {
    /// From a parsed `resource.status` answer; a set that is missing is
    /// empty (older flux-core has no `torpid`).
    pub fn read(v: &Value) -> Result<StatusIdsets, ParseError> {
        let idset = |name: &str| match v.get(name) {
            Some(Value::String(s)) => IdSet::parse(s),
            None => Ok(IdSet::new()),
            Some(_) => Err(ParseError::invalid(format!(
                "{name} is not an idset string"
            ))),
        };
        let mut drained = IdSet::new();
        let mut drains = Vec::new();
        let mut drained_since = Vec::new();
        if let Some(drain) = v.get("drain").and_then(Value::as_object) {
            for (ranks, entry) in drain {
                let ranks = IdSet::parse(ranks)?;
                let reason = entry
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let since = entry.get("timestamp").and_then(Value::as_f64);
                for rank in ranks.iter() {
                    drains.push((rank, reason.clone()));
                    if let Some(t) = since {
                        drained_since.push((rank, t));
                    }
                }
                drained.union_with(&ranks);
            }
        }
        drains.sort();
        drained_since.sort_by_key(|(rank, _)| *rank);
        Ok(StatusIdsets {
            offline: idset("offline")?,
            exclude: idset("exclude")?,
            torpid: idset("torpid")?,
            drained,
            drains,
            drained_since,
        })
    }
}

/// Node states as `flux resource status` counts them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeHealth {
    pub avail: u64,
    pub offline: u64,
    pub excluded: u64,
    pub drained: u64,
    pub draining: u64,
    pub torpid: u64,
    /// Ranks running a job (flux resource status: allocated).
    pub allocated: u64,
    /// Ranks in housekeeping (from job-manager.stats-get; may overlap
    /// avail and allocated).
    pub housekeeping: u64,
    /// Drained ranks with their reason, for the opt-in per-node series.
    pub drains: Vec<(u32, String)>,
    /// Drained ranks with the time they were drained.
    pub drained_since: Vec<(u32, f64)>,
}

/// The ages [`NodeHealth::drained_longer_than`] counts drained nodes
/// beyond, with their label values.
pub const DRAIN_AGES: [(&str, f64); 3] = [("1h", 3600.0), ("1d", 86400.0), ("7d", 604_800.0)];

/// The most drain reasons counted apart; the others count as "other".
pub const MAX_DRAIN_REASONS: usize = 20;

impl NodeHealth {
    /// Drained nodes (draining ones included) drained more than `seconds`
    /// before `now`.
    pub fn drained_longer_than(&self, now: f64, seconds: f64) -> u64 {
        self.drained_since
            .iter()
            .filter(|(_, since)| now - since > seconds)
            .count() as u64
    }

    /// Drained nodes by reason, the [`MAX_DRAIN_REASONS`] most common apart
    /// (ties by name) and the rest as "other"; no reason given is "".
    pub fn drain_reasons(&self) -> Vec<(String, u64)> {
        let mut by: BTreeMap<&str, u64> = BTreeMap::new();
        for (_, reason) in &self.drains {
            *by.entry(reason.as_str()).or_default() += 1;
        }
        let mut all: Vec<(&str, u64)> = by.into_iter().collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let mut out: Vec<(String, u64)> = Vec::new();
        let mut other = 0;
        for (i, (reason, n)) in all.into_iter().enumerate() {
            if i < MAX_DRAIN_REASONS {
                out.push((reason.to_string(), n));
            } else {
                other += n;
            }
        }
        if other > 0 {
            out.push(("other".to_string(), other));
        }
        out
    }

    pub fn by_state(&self) -> [(&'static str, u64); 8] {
        [
            ("avail", self.avail),
            ("offline", self.offline),
            ("excluded", self.excluded),
            ("drained", self.drained),
            ("draining", self.draining),
            ("torpid", self.torpid),
            ("allocated", self.allocated),
            ("housekeeping", self.housekeeping),
        ]
    }
}

/// Everything the resources collector exports, computed from one poll.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceSummary {
    /// The state rows (free, allocated, down), then [`ALL`].
    pub totals: Vec<(&'static str, Counts)>,
    /// Per configured queue: its name and its rows.
    pub queues: Vec<(String, Vec<(&'static str, Counts)>)>,
    /// Per configured queue: its name and its ranks.
    pub queue_ranks: Vec<(String, IdSet)>,
    pub health: NodeHealth,
}

/// The row that is not a state: everything the instance has.
pub const ALL: &str = "all";

/// Combines `resource.sched-status`, `resource.status` and the instance
/// config (`config.get`) into what `flux resource list` and `flux resource
/// status` print.
pub fn summarize(
    sched_status: &str,
    status: &str,
    config: &str,
) -> Result<ResourceSummary, ParseError> {
    summarize_from(SchedStatus::parse(sched_status)?, status, config)
}

/// As [`summarize`], from a sched-status already parsed or derived.
pub fn summarize_from(
    sched: SchedStatus,
    status: &str,
    config: &str,
) -> Result<ResourceSummary, ParseError> {
    summarize_view(sched.view(), status, config)
}

/// As [`summarize`], from sched-status's sets wherever they are kept.
pub fn summarize_view(
    sched: SchedView,
    status: &str,
    config: &str,
) -> Result<ResourceSummary, ParseError> {
    Ok(Tally::new(sched, status, config)?.summary(sched.allocated))
}

/// The counts of one `resource.status` answer and instance config, kept
/// up to date as the allocated set changes: after a change only the ranks
/// it touched are counted again, and the rows of the instance and of each
/// queue move by their difference. What a summary needs of the status
/// answer and the config is read once, when the tally is made.
#[derive(Debug, Clone, PartialEq)]
pub struct Tally {
    per_rank: RankCounts,
    totals: [Counts; 4],
    /// Per configured queue: its name, its ranks and their rows.
    queues: Vec<(String, IdSet, [Counts; 4])>,
    /// The ranks of the status answer's R.
    ranks: IdSet,
    /// Of those, the ranks with something allocated.
    allocated: u64,
    /// Those not excluded, drained (draining included) or torpid.
    avail: u64,
    sets: StatusIdsets,
}

impl Tally {
    pub fn new(sched: SchedView, status: &str, config: &str) -> Result<Tally, ParseError> {
        let config: Value =
            serde_json::from_str(config).map_err(|e| ParseError::malformed("config.get", e))?;
        let bad = |e: ParseError| e.within("resource.status");
        let v: Value = serde_json::from_str(status)
            .map_err(|e| ParseError::malformed("resource.status", e))?;
        let ranks = {
            #[derive(Deserialize)]
            struct WithR<'a> {
                #[serde(rename = "R", borrow)]
                r: Option<&'a RawValue>,
            }
            let with_r: WithR = serde_json::from_str(status)
                .map_err(|e| ParseError::malformed("resource.status", e))?;
            rv1_ranks(with_r.r).map_err(bad)?
        };
        let sets = StatusIdsets::read(&v).map_err(bad)?;
        // Draining ranks are drained ones that still run a job: either way
        // not avail.
        let mut avail = ranks.clone();
        for gone in [&sets.exclude, &sets.drained, &sets.torpid] {
            avail.subtract(gone);
        }
        let allocated = sched
            .allocated
            .nodes
            .iter()
            .filter(|(rank, node)| ranks.contains(*rank) && node.holds_any())
            .count() as u64;
        let per_rank = sched.rank_counts();
        let queues = configured_queues(&config)
            .into_iter()
            .map(|(name, requires)| {
                let ranks = sched.queue_ranks(&requires);
                let rows = sum_rows(&per_rank, Some(&ranks));
                (name, ranks, rows)
            })
            .collect();
        Ok(Tally {
            totals: sum_rows(&per_rank, None),
            per_rank,
            queues,
            ranks,
            allocated,
            avail: avail.count(),
            sets,
        })
    }

    /// Counts `changed` again, where only their allocation has changed
    /// since the tally was made from this view's `all` and `down` sets.
    pub fn recount(&mut self, sched: SchedView, changed: &IdSet) {
        for rank in changed.iter() {
            let old = self.per_rank.get(rank);
            let new = sched.counts_of(rank);
            if old == new {
                continue;
            }
            let move_rows = |rows: &mut [Counts; 4]| {
                for (row, (was, is)) in rows.iter_mut().zip(
                    old.unwrap_or_default()
                        .iter()
                        .zip(new.unwrap_or_default().iter()),
                ) {
                    row.nnodes = row.nnodes.saturating_sub(was.nnodes) + is.nnodes;
                    row.ncores = row.ncores.saturating_sub(was.ncores) + is.ncores;
                    row.ngpus = row.ngpus.saturating_sub(was.ngpus) + is.ngpus;
                }
            };
            move_rows(&mut self.totals);
            for (_, ranks, rows) in &mut self.queues {
                if ranks.contains(rank) {
                    move_rows(rows);
                }
            }
            if self.ranks.contains(rank) {
                let was = old.is_some_and(|c| c[1].nnodes > 0);
                let is = new.is_some_and(|c| c[1].nnodes > 0);
                match (was, is) {
                    (false, true) => self.allocated += 1,
                    (true, false) => self.allocated = self.allocated.saturating_sub(1),
                    _ => {}
                }
            }
            self.per_rank.set(rank, new);
        }
    }

    /// What `flux resource list` and `flux resource status` print, with
    /// `allocated` the allocated set the tally is counted up to.
    pub fn summary(&self, allocated: &ResourceSet) -> ResourceSummary {
        let sets = &self.sets;
        let draining = sets
            .drained
            .iter()
            .filter(|rank| allocated.nodes.get(rank).is_some_and(Node::holds_any))
            .count() as u64;
        ResourceSummary {
            totals: rows(&self.totals),
            queues: self
                .queues
                .iter()
                .map(|(name, _, r)| (name.clone(), rows(r)))
                .collect(),
            queue_ranks: self
                .queues
                .iter()
                .map(|(name, ranks, _)| (name.clone(), ranks.clone()))
                .collect(),
            health: NodeHealth {
                avail: self.avail,
                offline: sets.offline.count(),
                excluded: sets.exclude.count(),
                drained: sets.drained.count() - draining,
                draining,
                torpid: sets.torpid.count(),
                allocated: self.allocated,
                housekeeping: 0,
                drains: sets.drains.clone(),
                drained_since: sets.drained_since.clone(),
            },
        }
    }
}

/// The rows of `flux resource list`, named.
fn rows(counts: &[Counts; 4]) -> Vec<(&'static str, Counts)> {
    ROWS.iter().copied().zip(counts.iter().copied()).collect()
}

/// The queues a broker config defines, by name; "" alone for the anonymous
/// queue of an instance with none (or an unreadable config).
pub fn queue_names(config: &str) -> Vec<String> {
    let names: Vec<String> = serde_json::from_str::<serde_json::Value>(config)
        .map(|c| configured_queues(&c).into_keys().collect())
        .unwrap_or_default();
    if names.is_empty() {
        vec![String::new()]
    } else {
        names
    }
}

#[cfg(test)]
mod tests {
    use super::{queue_names, NodeHealth, DRAIN_AGES, MAX_DRAIN_REASONS};

    #[test]
    fn queues_come_from_the_broker_config_or_are_the_anonymous_one() {
        assert_eq!(
            queue_names(r#"{"queues": {"debug": {}, "batch": {"requires": ["b"]}}}"#),
            ["batch", "debug"]
        );
        assert_eq!(queue_names("{}"), [""]);
        assert_eq!(queue_names("not json"), [""]);
    }

    #[test]
    fn drained_nodes_are_counted_by_age_and_by_reason() {
        let mut health = NodeHealth {
            drained_since: vec![(1, 1000.0), (2, 90_000.0), (3, 99_000.0)],
            ..NodeHealth::default()
        };
        let now = 100_000.0;
        let counts: Vec<u64> = DRAIN_AGES
            .iter()
            .map(|(_, secs)| health.drained_longer_than(now, *secs))
            .collect();
        assert_eq!(counts, [2, 1, 0]);
        // 25 reasons, one node each but r24 on two: the 20 most common
        // apart (by count, then name), the rest folded.
        health.drains = (0..25).map(|i| (i, format!("r{i:02}"))).collect();
        health.drains.push((99, "r24".into()));
        let reasons = health.drain_reasons();
        assert_eq!(reasons.len(), MAX_DRAIN_REASONS + 1);
        assert_eq!(reasons[0], ("r24".to_string(), 2));
        assert_eq!(reasons[MAX_DRAIN_REASONS], ("other".to_string(), 5));
        assert_eq!(reasons.iter().map(|(_, n)| n).sum::<u64>(), 26);
    }
}
