//! Each node's states, as `flux resource status -s all` lists them, with
//! its cores and GPUs, total and allocated: the per-node rows of the nodes
//! collector. The states are computed as flux-core's `ResourceStatus` does
//! (python/flux/resource/status.py) from `resource.status`, the allocated
//! set and the ranks in housekeeping.

use super::error::ParseError;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::idset::IdSet;
use super::resources::{ResourceSet, StatusIdsets};

/// The states of `flux resource status -s all`, then `offline` (its UP
/// column). A node is in one or more.
pub const STATES: [&str; 8] = [
    "avail",
    "exclude",
    "allocated",
    "torpid",
    "housekeeping",
    "draining",
    "drained",
    "offline",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    pub rank: u32,
    pub host: Arc<str>,
    /// Bit i set: the node is in `STATES[i]`.
    pub states: u8,
    pub cores: u64,
    pub gpus: u64,
    pub allocated_cores: u64,
    pub allocated_gpus: u64,
}

impl NodeRow {
    pub fn states(&self) -> impl Iterator<Item = &'static str> + '_ {
        STATES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.states & (1 << i) != 0)
            .map(|(_, name)| *name)
    }
}

/// Every node of the instance, by rank, and the drained ones' reasons.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodesView {
    pub nodes: Vec<NodeRow>,
    /// (rank, reason) of every drained or draining node.
    pub drains: Vec<(u32, String)>,
    /// (rank, when it was drained) of every drained or draining node.
    pub drained_since: Vec<(u32, f64)>,
    /// (rank, its resource journal events by kind) of every node an event
    /// named, in rank order; filled in by the collector.
    pub events: Vec<(u32, [u64; 6])>,
}

impl NodesView {
    pub fn host(&self, rank: u32) -> Option<&str> {
        self.nodes
            .binary_search_by_key(&rank, |n| n.rank)
            .ok()
            .map(|i| &*self.nodes[i].host)
    }
}

#[derive(Deserialize)]
struct Status<'a> {
    #[serde(rename = "R", borrow)]
    r: Option<&'a RawValue>,
}

/// The rows from a `resource.status` answer, the allocated set (the
/// scheduler's, as `flux resource status` asks it) and the ranks in
/// housekeeping. `hosts` keeps host names from poll to poll.
pub fn rows(
    status: &str,
    allocated: &ResourceSet,
    housekeeping: &IdSet,
    hosts: &mut Vec<Arc<str>>,
) -> Result<NodesView, ParseError> {
    let bad = |e: ParseError| e.within("resource.status");
    let v: Value =
        serde_json::from_str(status).map_err(|e| ParseError::malformed("resource.status", e))?;
    let with_r: Status =
        serde_json::from_str(status).map_err(|e| ParseError::malformed("resource.status", e))?;
    let all = ResourceSet::from_rv1_json(with_r.r).map_err(bad)?;
    let StatusIdsets {
        offline,
        exclude,
        torpid,
        drained,
        drains,
        drained_since,
    } = StatusIdsets::read(&v).map_err(bad)?;
    let names = host_names(with_r.r, all.nodes.keys().count()).map_err(bad)?;
    if hosts.len() != names.len() || hosts.iter().zip(&names).any(|(a, b)| **a != **b) {
        *hosts = names.into_iter().map(Arc::from).collect();
    }
    let mut nodes = Vec::with_capacity(hosts.len());
    for ((rank, node), host) in all.nodes.iter().zip(hosts.iter()) {
        let held = allocated.nodes.get(&rank);
        let is_allocated = held.is_some();
        let is_drained = drained.contains(rank);
        let mut states = 0u8;
        let mut set = |name: &str, on: bool| {
            if on {
                if let Some(i) = STATES.iter().position(|s| *s == name) {
                    states |= 1 << i;
                }
            }
        };
        let (excluded, is_torpid) = (exclude.contains(rank), torpid.contains(rank));
        set("exclude", excluded);
        set("allocated", is_allocated);
        set("torpid", is_torpid);
        set("housekeeping", housekeeping.contains(rank));
        set("draining", is_drained && is_allocated);
        set("drained", is_drained && !is_allocated);
        set("avail", !(excluded || is_drained || is_torpid));
        set("offline", offline.contains(rank));
        nodes.push(NodeRow {
            rank,
            host: Arc::clone(host),
            states,
            cores: node.cores.count(),
            gpus: node.gpus.count(),
            allocated_cores: held.map_or(0, |h| h.cores.count()),
            allocated_gpus: held.map_or(0, |h| h.gpus.count()),
        });
    }
    Ok(NodesView {
        nodes,
        drains,
        drained_since,
        events: Vec::new(),
    })
}

/// The host of each rank of R, in rank order (RFC 20's `nodelist`); the
/// rank's number where R names none.
fn host_names(r: Option<&RawValue>, ranks: usize) -> Result<Vec<String>, ParseError> {
    #[derive(Deserialize)]
    struct R {
        execution: Option<Execution>,
    }
    #[derive(Deserialize)]
    struct Execution {
        #[serde(default)]
        nodelist: Vec<String>,
    }
    let Some(r) = r else {
        return Ok(Vec::new());
    };
    let lists = serde_json::from_str::<R>(r.get())
        .map_err(|e| ParseError::invalid(format!("R: {e}")))?
        .execution
        .map(|e| e.nodelist)
        .unwrap_or_default();
    let mut names = Vec::with_capacity(ranks);
    for list in &lists {
        names.extend(
            super::hostlist::expand(list)
                .map_err(|e| ParseError::invalid(format!("R nodelist: {e}")))?,
        );
    }
    if names.len() != ranks {
        return Err(ParseError::invalid(format!(
            "R nodelist names {} hosts for {ranks} ranks",
            names.len()
        )));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_those_flux_resource_status_lists() {
        let status = r#"{"R":{"version":1,"execution":{"R_lite":[{"rank":"0-5","children":{"core":"0-7","gpu":"0-1"}}],"nodelist":["node[0-5]"]}},
            "drain":{"2,4":{"reason":"bad dimm","timestamp":1.0}},"exclude":"3","offline":"4-5","online":"0-3","torpid":""}"#;
        let allocated = ResourceSet::from_rv1_json(Some(
            &RawValue::from_string(r#"{"version":1,"execution":{"R_lite":[{"rank":"0","children":{"core":"5-7","gpu":"0-1"}},{"rank":"4","children":{"core":"0"}}]}}"#.into()).unwrap(),
        ))
        .unwrap();
        let housekeeping = IdSet::parse("1").unwrap();
        let view = rows(status, &allocated, &housekeeping, &mut Vec::new()).unwrap();
        let states: Vec<(&str, Vec<&str>)> = view
            .nodes
            .iter()
            .map(|n| (&*n.host, n.states().collect()))
            .collect();
        assert_eq!(
            states,
            [
                ("node0", vec!["avail", "allocated"]),
                ("node1", vec!["avail", "housekeeping"]),
                ("node2", vec!["drained"]),
                ("node3", vec!["exclude"]),
                ("node4", vec!["allocated", "draining", "offline"]),
                ("node5", vec!["avail", "offline"]),
            ]
        );
        assert_eq!(
            (view.nodes[0].allocated_cores, view.nodes[0].allocated_gpus),
            (3, 2)
        );
        assert_eq!((view.nodes[0].cores, view.nodes[0].gpus), (8, 2));
        assert_eq!(
            view.drains,
            [(2, "bad dimm".into()), (4, "bad dimm".into())]
        );
        assert_eq!(view.drained_since, [(2, 1.0), (4, 1.0)]);
        assert_eq!(view.host(5), Some("node5"));
    }

    #[test]
    fn a_nodelist_that_does_not_match_the_ranks_is_an_error_that_names_it() {
        let status = r#"{"R":{"version":1,"execution":{"R_lite":[{"rank":"0-1","children":{"core":"0"}}],"nodelist":["a"]}},"drain":{},"exclude":"","offline":"","online":"0-1","torpid":""}"#;
        let err = rows(
            status,
            &ResourceSet::default(),
            &IdSet::new(),
            &mut Vec::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("names 1 hosts for 2 ranks"), "{err}");
    }
}
