//! Resource sets (RFC 20 Rv1) from `resource.sched-status`, node states from
//! `resource.status`, and the counts `flux resource list` and `flux resource
//! status` print from them.

use std::collections::BTreeMap;

use serde_json::Value;

use super::idset::IdSet;

/// The cores and GPUs of one rank.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    pub cores: IdSet,
    pub gpus: IdSet,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.cores.is_empty() && self.gpus.is_empty()
    }
}

/// An Rv1 resource set, by rank.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceSet {
    pub nodes: BTreeMap<u32, Node>,
    /// Property name to the ranks that have it.
    pub properties: BTreeMap<String, IdSet>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub nnodes: u64,
    pub ncores: u64,
    pub ngpus: u64,
}

impl ResourceSet {
    /// Parses an Rv1 object (`{"version": 1, "execution": {...}}`); null or
    /// an empty object is the empty set.
    pub fn from_rv1(r: &Value) -> Result<ResourceSet, String> {
        let mut set = ResourceSet::default();
        if r.is_null() || r.as_object().is_some_and(|o| o.is_empty()) {
            return Ok(set);
        }
        let version = r.get("version").and_then(Value::as_i64);
        if version != Some(1) {
            return Err(format!("unsupported R version {version:?} (expected 1)"));
        }
        let execution = r.get("execution").ok_or("R has no execution object")?;
        let r_lite = execution
            .get("R_lite")
            .and_then(Value::as_array)
            .ok_or("R has no R_lite array")?;
        for entry in r_lite {
            let ranks = IdSet::parse(
                entry
                    .get("rank")
                    .and_then(Value::as_str)
                    .ok_or("R_lite entry has no rank")?,
            )?;
            let children = entry
                .get("children")
                .and_then(Value::as_object)
                .ok_or("R_lite entry has no children")?;
            let child = |name: &str| match children.get(name) {
                Some(Value::String(ids)) => IdSet::parse(ids),
                Some(_) => Err(format!("R_lite {name} is not an idset string")),
                None => Ok(IdSet::new()),
            };
            let (cores, gpus) = (child("core")?, child("gpu")?);
            for rank in ranks.iter() {
                let node = set.nodes.entry(rank).or_default();
                node.cores.union_with(&cores);
                node.gpus.union_with(&gpus);
            }
        }
        if let Some(props) = execution.get("properties").and_then(Value::as_object) {
            for (name, ranks) in props {
                let ranks = ranks
                    .as_str()
                    .ok_or_else(|| format!("property {name} is not an idset string"))?;
                set.properties.insert(name.clone(), IdSet::parse(ranks)?);
            }
        }
        Ok(set)
    }

    pub fn ranks(&self) -> IdSet {
        let mut ranks = IdSet::new();
        for rank in self.nodes.keys() {
            ranks.insert(*rank);
        }
        ranks
    }

    /// `self - other` as librlist's rlist_diff computes it: per rank, per
    /// resource type; a rank with nothing left is dropped.
    pub fn minus(&self, other: &ResourceSet) -> ResourceSet {
        let mut out = ResourceSet {
            nodes: BTreeMap::new(),
            properties: self.properties.clone(),
        };
        for (rank, node) in &self.nodes {
            let mut left = node.clone();
            if let Some(taken) = other.nodes.get(rank) {
                left.cores.subtract(&taken.cores);
                left.gpus.subtract(&taken.gpus);
            }
            if !left.is_empty() {
                out.nodes.insert(*rank, left);
            }
        }
        out
    }

    /// Counts over the ranks in `only` (all ranks when None).
    pub fn counts(&self, only: Option<&IdSet>) -> Counts {
        let mut c = Counts::default();
        for (rank, node) in &self.nodes {
            if only.is_some_and(|o| !o.contains(*rank)) || node.is_empty() {
                continue;
            }
            c.nnodes += 1;
            c.ncores += node.cores.count();
            c.ngpus += node.gpus.count();
        }
        c
    }
}

/// The scheduler's view, as `flux resource list` reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchedStatus {
    pub all: ResourceSet,
    pub down: ResourceSet,
    pub allocated: ResourceSet,
}

/// Resource states `flux resource list` prints.
pub const LIST_STATES: [&str; 3] = ["free", "allocated", "down"];

impl SchedStatus {
    pub fn parse(payload: &str) -> Result<SchedStatus, String> {
        let v: Value = serde_json::from_str(payload)
            .map_err(|e| format!("resource.sched-status: malformed response: {e}"))?;
        let set = |name: &str| {
            ResourceSet::from_rv1(v.get(name).unwrap_or(&Value::Null))
                .map_err(|e| format!("resource.sched-status: {name}: {e}"))
        };
        Ok(SchedStatus {
            all: set("all")?,
            down: set("down")?,
            allocated: set("allocated")?,
        })
    }

    /// Counts per `LIST_STATES` state, restricted to `only` ranks.
    /// free = (all - down) - allocated, as flux resource list computes it,
    /// so a node both allocated and down counts in both rows.
    pub fn list_counts(&self, only: Option<&IdSet>) -> [(&'static str, Counts); 3] {
        let free = self.all.minus(&self.down).minus(&self.allocated);
        [
            ("free", free.counts(only)),
            ("allocated", self.allocated.counts(only)),
            ("down", self.down.counts(only)),
        ]
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

/// Node states as `flux resource status` counts them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeHealth {
    pub avail: u64,
    pub offline: u64,
    pub excluded: u64,
    pub drained: u64,
    pub draining: u64,
    pub torpid: u64,
    /// Drained ranks with their reason, for the opt-in per-node series.
    pub drains: Vec<(u32, String)>,
}

/// Node health states, in the order they are exported.
pub const HEALTH_STATES: [&str; 6] = [
    "avail", "offline", "excluded", "drained", "draining", "torpid",
];

impl NodeHealth {
    pub fn by_state(&self) -> [(&'static str, u64); 6] {
        [
            ("avail", self.avail),
            ("offline", self.offline),
            ("excluded", self.excluded),
            ("drained", self.drained),
            ("draining", self.draining),
            ("torpid", self.torpid),
        ]
    }

    /// From a `resource.status` response and the allocated ranks: drained
    /// ranks that still run a job are "draining"; avail is every rank not
    /// excluded, drained, draining or torpid (offline ones included).
    pub fn parse(payload: &str, allocated: &IdSet) -> Result<NodeHealth, String> {
        let bad = |e: String| format!("resource.status: {e}");
        let v: Value =
            serde_json::from_str(payload).map_err(|e| bad(format!("malformed response: {e}")))?;
        let idset = |name: &str| match v.get(name) {
            Some(Value::String(s)) => IdSet::parse(s).map_err(bad),
            None => Ok(IdSet::new()),
            Some(_) => Err(bad(format!("{name} is not an idset string"))),
        };
        let all = ResourceSet::from_rv1(v.get("R").unwrap_or(&Value::Null))
            .map_err(bad)?
            .ranks();
        let (offline, exclude, torpid) = (idset("offline")?, idset("exclude")?, idset("torpid")?);
        let mut drained = IdSet::new();
        let mut drains = Vec::new();
        if let Some(drain) = v.get("drain").and_then(Value::as_object) {
            for (ranks, entry) in drain {
                let ranks = IdSet::parse(ranks).map_err(bad)?;
                let reason = entry
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                for rank in ranks.iter() {
                    drains.push((rank, reason.clone()));
                }
                drained.union_with(&ranks);
            }
        }
        let mut draining = drained.clone();
        draining.intersect_with(allocated);
        drained.subtract(&draining);
        let mut avail = all;
        for gone in [&exclude, &drained, &draining, &torpid] {
            avail.subtract(gone);
        }
        drains.sort();
        Ok(NodeHealth {
            avail: avail.count(),
            offline: offline.count(),
            excluded: exclude.count(),
            drained: drained.count(),
            draining: draining.count(),
            torpid: torpid.count(),
            drains,
        })
    }
}

/// Everything the resources collector exports, computed from one poll.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceSummary {
    pub totals: Vec<(&'static str, Counts)>,
    /// Per configured queue: its name and its rows.
    pub queues: Vec<(String, Vec<(&'static str, Counts)>)>,
    pub health: NodeHealth,
}

/// Combines `resource.sched-status`, `resource.status` and the instance
/// config (`config.get`) into what `flux resource list` and `flux resource
/// status` print.
pub fn summarize(
    sched_status: &str,
    status: &str,
    config: &str,
) -> Result<ResourceSummary, String> {
    let sched = SchedStatus::parse(sched_status)?;
    let config: Value =
        serde_json::from_str(config).map_err(|e| format!("config.get: malformed response: {e}"))?;
    let health = NodeHealth::parse(status, &sched.allocated.ranks())?;
    let queues = configured_queues(&config)
        .into_iter()
        .map(|(name, requires)| {
            let ranks = sched.queue_ranks(&requires);
            (name, sched.list_counts(Some(&ranks)).to_vec())
        })
        .collect();
    Ok(ResourceSummary {
        totals: sched.list_counts(None).to_vec(),
        queues,
        health,
    })
}
