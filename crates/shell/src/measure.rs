//! This node's figures: the tasks' CPU time and peak memory, from the
//! shell's own cgroup where it has one (sdexec), else from the children the
//! shell has reaped (`getrusage`) and samples of its tasks' process trees.

use std::path::Path;
use std::time::Instant;

use usage::cgroup::{Mounts, ShellCgroup};
use usage::proc::{self, Units};
use usage::NodeUsage;

/// What the node was allocated, from the shell's rank information.
#[derive(Debug, Clone, PartialEq)]
pub struct Allocation {
    pub rank: u32,
    pub hostname: String,
    pub cores: u64,
    pub gpus: u64,
    /// The GPUs' indexes on the node.
    pub gpu_ids: Vec<u32>,
    pub tasks: u64,
}

/// One node's measurement, from the start of its tasks.
pub struct Measure {
    started: Instant,
    cgroup: Option<ShellCgroup>,
    units: Units,
    /// The largest sum of the tasks' resident sets a sample saw.
    peak_sampled: u64,
}

impl Measure {
    /// Starts measuring: the shell's tasks are about to start.
    pub fn start() -> Measure {
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .ok()
            .and_then(|text| Mounts::of_this_system().shell_cgroup(&text));
        Measure {
            started: Instant::now(),
            cgroup: own,
            units: Units {
                ticks_per_second: flux::clock_ticks_per_second(),
                page_size: flux::page_size(),
            },
            peak_sampled: 0,
        }
    }

    /// Looks at the process trees under `pids` (the tasks) once.
    pub fn sample(&mut self, pids: &[i32]) {
        if pids.is_empty() || self.cgroup.is_some() {
            return;
        }
        let root = Path::new("/proc");
        let seen = match proc::walk(pids, root) {
            Some(procs) => proc::sum(&procs.iter().collect::<Vec<_>>(), self.units),
            None => proc::sample(pids, &proc::scan(root), self.units),
        };
        self.peak_sampled = self.peak_sampled.max(seen.rss_bytes);
    }

    /// The node's figures, its tasks having ended.
    pub fn finish(&self, alloc: Allocation) -> NodeUsage {
        let wall_seconds = self.started.elapsed().as_secs_f64();
        let children = flux::children_rusage().unwrap_or_default();
        let base = NodeUsage {
            rank: alloc.rank,
            hostname: alloc.hostname,
            cores: alloc.cores,
            gpus: alloc.gpus,
            tasks: alloc.tasks,
            wall_seconds,
            user_seconds: children.user_seconds,
            system_seconds: children.system_seconds,
            peak_memory_bytes: children.max_rss_bytes.max(self.peak_sampled),
            source: "processes".into(),
            oom_kills: None,
        };
        // The cgroup holds the shell too: its own CPU time is taken out.
        match self.cgroup.as_ref().and_then(ShellCgroup::read) {
            Some(figures) => {
                let shell = flux::self_rusage().unwrap_or_default();
                NodeUsage {
                    user_seconds: (figures.user_seconds - shell.user_seconds).max(0.0),
                    system_seconds: (figures.system_seconds - shell.system_seconds).max(0.0),
                    peak_memory_bytes: figures.peak_bytes.unwrap_or(base.peak_memory_bytes),
                    oom_kills: figures.oom_kills,
                    source: "cgroup".into(),
                    ..base
                }
            }
            None => base,
        }
    }
}
