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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
            oom_kills: None,
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
}
