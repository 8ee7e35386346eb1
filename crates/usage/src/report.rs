//! The `prometheus.usage` event the job shell appends to a job's
//! `exec.eventlog` when its tasks have ended, and the figures made from it:
//! per node and in total, CPU time against the cores allocated, peak
//! memory, OOM kills.

use serde::{Deserialize, Serialize};

/// The event's name in the exec eventlog.
pub const EVENT_NAME: &str = "prometheus.usage";
/// The version of the event's context; a reader refuses any other.
pub const VERSION: u32 = 1;

/// What one node of the job used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeUsage {
    /// The broker rank, and the node's host name.
    pub rank: u32,
    pub hostname: String,
    /// What the job was allocated there.
    pub cores: u64,
    pub gpus: u64,
    pub tasks: u64,
    /// From the shell's start of its tasks to the end of the last one.
    pub wall_seconds: f64,
    pub user_seconds: f64,
    pub system_seconds: f64,
    /// The most memory the job's processes held at once on the node.
    pub peak_memory_bytes: u64,
    /// Where the figures come from: `cgroup` (the shell's own cgroup v2:
    /// `cpu.stat`, `memory.peak`), or `processes` (the tasks' CPU time as
    /// the shell reaped them, and the larger of the largest task's peak and
    /// the largest sum of the tasks' resident memory the samples saw).
    pub source: String,
    /// OOM kills, where the shell's cgroup counts them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_kills: Option<u64>,
    /// The job's share of the node's memory: its cgroup's `memory.max`
    /// where the shell has one with a limit, else the node's memory in
    /// proportion to the cores allocated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_share_bytes: Option<u64>,
    /// Memory held over time (the samples' memory, each held until the
    /// next), in byte-seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_byte_seconds: Option<f64>,
    /// GPU-seconds busy (a kernel running), over the GPU-seconds NVML
    /// measured, and the most memory in use on the GPUs at one look; from
    /// the module on the node, where NVML answers there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_busy_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_measured_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_peak_memory_bytes: Option<u64>,
}

impl NodeUsage {
    pub fn cpu_seconds(&self) -> f64 {
        self.user_seconds + self.system_seconds
    }

    pub fn core_seconds(&self) -> f64 {
        self.cores as f64 * self.wall_seconds
    }
}

/// What the whole job used: every node that reported, and the shell ranks
/// that did not in time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobUsage {
    pub version: u32,
    pub nodes: Vec<NodeUsage>,
    #[serde(default)]
    pub missing: Vec<u32>,
}

/// Why an eventlog's usage could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("line {line} of the exec eventlog is not an event: {why}")]
    Malformed { line: usize, why: String },
    #[error("the {EVENT_NAME} event is version {0}; this flux-prometheus reads version {VERSION}")]
    Version(u32),
}

/// One eventlog line, as RFC 18 writes it.
#[derive(Serialize, Deserialize)]
struct Entry<T> {
    timestamp: f64,
    name: String,
    #[serde(default)]
    context: Option<T>,
}

impl JobUsage {
    pub fn cpu_seconds(&self) -> f64 {
        self.nodes.iter().map(NodeUsage::cpu_seconds).sum()
    }

    pub fn core_seconds(&self) -> f64 {
        self.nodes.iter().map(NodeUsage::core_seconds).sum()
    }

    pub fn cores(&self) -> u64 {
        self.nodes.iter().map(|n| n.cores).sum()
    }

    /// CPU time used over the core time allocated; None without cores or
    /// time.
    pub fn cpu_efficiency(&self) -> Option<f64> {
        let allocated = self.core_seconds();
        (allocated > 0.0).then(|| self.cpu_seconds() / allocated)
    }

    /// The sum of each node's peak.
    pub fn peak_memory_bytes(&self) -> u64 {
        self.nodes.iter().map(|n| n.peak_memory_bytes).sum()
    }

    /// The sum of each node's peak over the sum of each node's memory
    /// share, over the nodes that know their share.
    pub fn peak_memory_share_ratio(&self) -> Option<f64> {
        let (peak, share) = self
            .nodes
            .iter()
            .filter_map(|n| Some((n.peak_memory_bytes, n.memory_share_bytes?)))
            .fold((0u64, 0u64), |(p, s), (np, ns)| (p + np, s + ns));
        (share > 0).then(|| peak as f64 / share as f64)
    }

    /// The node whose peak came nearest its share, and that share of it.
    fn fullest_node(&self) -> Option<(&NodeUsage, f64)> {
        self.nodes
            .iter()
            .filter_map(|n| {
                let share = n.memory_share_bytes.filter(|&s| s > 0)?;
                Some((n, n.peak_memory_bytes as f64 / share as f64))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    pub fn memory_byte_seconds(&self) -> Option<f64> {
        self.nodes
            .iter()
            .filter_map(|n| n.memory_byte_seconds)
            .reduce(|a, b| a + b)
    }

    /// GPU-seconds busy and GPU-seconds measured, over the nodes where
    /// NVML measured them.
    pub fn gpu_seconds(&self) -> Option<(f64, f64)> {
        self.nodes
            .iter()
            .filter_map(|n| Some((n.gpu_busy_seconds?, n.gpu_measured_seconds?)))
            .reduce(|a, b| (a.0 + b.0, a.1 + b.1))
    }

    /// GPU utilisation: busy over measured GPU-seconds.
    pub fn gpu_utilization(&self) -> Option<f64> {
        let (busy, measured) = self.gpu_seconds()?;
        (measured > 0.0).then(|| busy / measured)
    }

    pub fn oom_kills(&self) -> Option<u64> {
        self.nodes
            .iter()
            .filter_map(|n| n.oom_kills)
            .reduce(|a, b| a + b)
    }

    /// The eventlog line (with its newline) that records this usage.
    pub fn entry(&self, timestamp: f64) -> String {
        let entry = Entry {
            timestamp,
            name: EVENT_NAME.to_string(),
            context: Some(self),
        };
        // A struct of numbers and strings always serializes.
        let mut line = serde_json::to_string(&entry).unwrap_or_default();
        line.push('\n');
        line
    }

    /// The usage an exec eventlog records (its last `prometheus.usage`
    /// event), or None when it has none.
    pub fn from_eventlog(text: &str) -> Result<Option<JobUsage>, ReportError> {
        let mut found = None;
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let malformed = |why: String| ReportError::Malformed { line: i + 1, why };
            let entry: Entry<serde_json::Value> =
                serde_json::from_str(line).map_err(|e| malformed(e.to_string()))?;
            if entry.name != EVENT_NAME {
                continue;
            }
            let context = entry.context.unwrap_or_default();
            let version = context.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
            if version != u64::from(VERSION) {
                return Err(ReportError::Version(
                    u32::try_from(version).unwrap_or(u32::MAX),
                ));
            }
            found = Some(serde_json::from_value(context).map_err(|e| malformed(e.to_string()))?);
        }
        Ok(found)
    }

    /// Plain-language advice, as Princeton's jobstats gives it.
    pub fn advice(&self) -> Vec<String> {
        let mut out = Vec::new();
        let wall = self
            .nodes
            .iter()
            .map(|n| n.wall_seconds)
            .fold(0.0, f64::max);
        let cores = self.cores();
        if let Some(eff) = self.cpu_efficiency() {
            let used = if wall > 0.0 {
                self.cpu_seconds() / wall
            } else {
                0.0
            };
            let enough = (used.ceil() as u64).max(1);
            if cores > 1 && eff < 0.5 && enough < cores {
                out.push(format!(
                    "The job asked for {cores} cores and used {used:.1} on average ({:.0}% CPU efficiency): ask for {enough}, or check that the program runs in parallel.",
                    eff * 100.0
                ));
            }
        }
        if let Some((node, ratio)) = self.fullest_node().filter(|&(_, r)| r >= 0.9) {
            out.push(format!(
                "On {} (rank {}) the job's memory peaked at {:.0}% of its share ({:.1} GiB of {:.1} GiB): ask for more cores or nodes per task, or it may be killed for want of memory.",
                node.hostname,
                node.rank,
                ratio * 100.0,
                node.peak_memory_bytes as f64 / (1u64 << 30) as f64,
                node.memory_share_bytes.unwrap_or(0) as f64 / (1u64 << 30) as f64,
            ));
        }
        let gpus: u64 = self.nodes.iter().map(|n| n.gpus).sum();
        if let Some(util) = self.gpu_utilization().filter(|&u| u < 0.25) {
            out.push(format!(
                "The job's {gpus} GPU(s) were busy {:.0}% of the time: check that the program runs its work on them, or ask for fewer.",
                util * 100.0
            ));
        }
        if let Some(n) = self.oom_kills().filter(|&n| n > 0) {
            out.push(format!(
                "{n} process(es) of the job were killed for want of memory: ask for more memory per task, or more nodes."
            ));
        }
        if !self.missing.is_empty() {
            out.push(format!(
                "{} shell(s) did not report in time; the totals leave their nodes out.",
                self.missing.len()
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(rank: u32, cores: u64, cpu: f64, wall: f64) -> NodeUsage {
        NodeUsage {
            rank,
            hostname: format!("node{rank}"),
            cores,
            gpus: 0,
            tasks: 1,
            wall_seconds: wall,
            user_seconds: cpu,
            system_seconds: 0.0,
            peak_memory_bytes: 100 << 20,
            source: "processes".into(),
            ..NodeUsage::default()
        }
    }

    #[test]
    fn the_event_reads_back_as_written() {
        let usage = JobUsage {
            version: VERSION,
            nodes: vec![node(0, 4, 10.0, 10.0), node(1, 4, 30.0, 10.0)],
            missing: vec![],
        };
        let log = format!(
            "{{\"timestamp\":1.0,\"name\":\"init\"}}\n{}{{\"timestamp\":3.0,\"name\":\"complete\",\"context\":{{\"status\":0}}}}\n",
            usage.entry(2.0)
        );
        let back = JobUsage::from_eventlog(&log).unwrap().unwrap();
        assert_eq!(back, usage);
        assert_eq!(back.cpu_seconds(), 40.0);
        assert_eq!(back.core_seconds(), 80.0);
        assert_eq!(back.cpu_efficiency(), Some(0.5));
        assert_eq!(back.peak_memory_bytes(), 200 << 20);
    }

    #[test]
    fn an_eventlog_without_the_event_has_no_usage() {
        assert_eq!(
            JobUsage::from_eventlog("{\"timestamp\":1.0,\"name\":\"init\"}\n"),
            Ok(None)
        );
    }

    #[test]
    fn bad_lines_and_other_versions_are_named() {
        let err = JobUsage::from_eventlog("{\"timestamp\":1.0,\"name\":\"init\"}\nnot json\n")
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("line 2 of the exec eventlog is not an event"),
            "{err}"
        );
        let v2 = "{\"timestamp\":1.0,\"name\":\"prometheus.usage\",\"context\":{\"version\":2,\"nodes\":[]}}\n";
        assert_eq!(JobUsage::from_eventlog(v2), Err(ReportError::Version(2)));
    }

    #[test]
    fn advice_names_what_to_ask_for() {
        let usage = JobUsage {
            version: VERSION,
            nodes: vec![node(0, 64, 300.0, 100.0)],
            missing: vec![1],
        };
        let advice = usage.advice();
        assert!(
            advice[0].starts_with(
                "The job asked for 64 cores and used 3.0 on average (5% CPU efficiency): ask for 3"
            ),
            "{advice:?}"
        );
        assert!(
            advice[1].contains("1 shell(s) did not report"),
            "{advice:?}"
        );
        let busy = JobUsage {
            version: VERSION,
            nodes: vec![node(0, 4, 390.0, 100.0)],
            missing: vec![],
        };
        assert!(busy.advice().is_empty());
    }

    #[test]
    fn memory_share_and_gpus_are_summed_and_advised_on() {
        let mut full = node(0, 4, 390.0, 100.0);
        full.peak_memory_bytes = 15 << 30;
        full.memory_share_bytes = Some(16 << 30);
        full.memory_byte_seconds = Some(1e12);
        full.gpus = 2;
        full.gpu_busy_seconds = Some(20.0);
        full.gpu_measured_seconds = Some(200.0);
        let mut other = node(1, 4, 390.0, 100.0);
        other.peak_memory_bytes = 1 << 30;
        other.memory_share_bytes = Some(16 << 30);
        let old = node(2, 4, 390.0, 100.0);
        let usage = JobUsage {
            version: VERSION,
            nodes: vec![full, other, old],
            missing: vec![],
        };
        assert_eq!(usage.peak_memory_share_ratio(), Some(0.5));
        assert_eq!(usage.memory_byte_seconds(), Some(1e12));
        assert_eq!(usage.gpu_utilization(), Some(0.1));
        let advice = usage.advice();
        assert_eq!(
            advice,
            [
                "On node0 (rank 0) the job's memory peaked at 94% of its share (15.0 GiB of 16.0 GiB): ask for more cores or nodes per task, or it may be killed for want of memory.",
                "The job's 2 GPU(s) were busy 10% of the time: check that the program runs its work on them, or ask for fewer."
            ]
        );
        // A record of an older plugin, without these, reads and says
        // nothing of them.
        let text = r#"{"version":1,"nodes":[{"rank":0,"hostname":"n","cores":1,"gpus":0,"tasks":1,"wall_seconds":1.0,"user_seconds":1.0,"system_seconds":0.0,"peak_memory_bytes":1,"source":"processes"}]}"#;
        let old: JobUsage = serde_json::from_str(text).unwrap();
        assert_eq!(old.peak_memory_share_ratio(), None);
        assert_eq!(old.gpu_utilization(), None);
    }
}
