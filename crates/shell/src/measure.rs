//! This node's figures: the tasks' CPU time and peak memory, from the
//! shell's own cgroup where it has one (sdexec), else from the children the
//! shell has reaped (`getrusage`) and samples of its tasks' process trees,
//! with the peak and OOM kills of the cgroup the module moved them into
//! where it did (`job-cgroups`).

use std::path::Path;
use std::time::Instant;

use usage::cgroup::{Mounts, OpenCgroup, ShellCgroup};
use usage::jobcgroup;
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
    /// The cgroup's files, held open for the samples.
    files: Option<OpenCgroup>,
    units: Units,
    /// The largest sum of the tasks' resident sets a sample saw.
    peak_sampled: u64,
    /// The last sample (when, and the memory held), and the memory held
    /// over time until it.
    last: Option<(Instant, u64)>,
    byte_seconds: f64,
}

impl Measure {
    /// Starts measuring: the shell's tasks are about to start.
    pub fn start() -> Measure {
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .ok()
            .filter(|text| Mounts::in_shell_unit(text))
            .and_then(|text| Mounts::of_this_system().shell_cgroup(&text));
        let files = own.as_ref().and_then(ShellCgroup::open);
        Measure {
            started: Instant::now(),
            cgroup: own,
            files,
            units: Units {
                ticks_per_second: flux::clock_ticks_per_second(),
                page_size: flux::page_size(),
            },
            peak_sampled: 0,
            last: None,
            byte_seconds: 0.0,
        }
    }

    /// Counts the memory of the last sample as held until `now`.
    fn hold_until(&mut self, now: Instant) {
        if let Some((then, bytes)) = self.last {
            self.byte_seconds += bytes as f64 * now.duration_since(then).as_secs_f64();
        }
    }

    /// Looks at the memory the tasks hold once: the cgroup's where the
    /// shell has one, else the process trees under `pids` (the tasks).
    pub fn sample(&mut self, pids: &[i32]) {
        let now = Instant::now();
        let bytes = if let Some(files) = self.files.as_mut() {
            match files.now() {
                Some((_, Some(bytes))) => bytes,
                _ => return,
            }
        } else {
            if pids.is_empty() {
                return;
            }
            let root = Path::new("/proc");
            let seen = match proc::walk(pids, root) {
                Some(procs) => proc::sum(&procs.iter().collect::<Vec<_>>(), self.units),
                None => proc::sample(pids, &proc::scan(root), self.units),
            };
            self.peak_sampled = self.peak_sampled.max(seen.rss_bytes);
            seen.rss_bytes
        };
        self.hold_until(now);
        self.last = Some((now, bytes));
    }

    /// The node's figures, its tasks having ended.
    pub fn finish(&mut self, alloc: Allocation) -> NodeUsage {
        let wall_seconds = self.started.elapsed().as_secs_f64();
        self.hold_until(Instant::now());
        let memory_byte_seconds = self.last.is_some().then_some(self.byte_seconds);
        let memory_share_bytes = self
            .cgroup
            .as_ref()
            .and_then(ShellCgroup::memory_limit)
            .or_else(|| memory_share(alloc.cores));
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
            memory_share_bytes,
            memory_byte_seconds,
            ..NodeUsage::default()
        };
        // The module on this rank may have moved the shell and its tasks
        // into a cgroup of their own once they had started (its
        // `job-cgroups`): the tasks' CPU time is still what the shell
        // reaped, which counts from their start, and the cgroup adds its
        // memory peak and OOM kills.
        if self.cgroup.is_none() {
            let placed = std::fs::read_to_string("/proc/self/cgroup")
                .ok()
                .filter(|text| jobcgroup::in_one(text))
                .and_then(|text| jobcgroup::placed_in(&Mounts::of_this_system(), &text));
            if let Some(figures) = placed.as_ref().and_then(ShellCgroup::read) {
                // The cgroup counts pages the tasks share once, as the
                // sum of their resident sets does not; the largest task's
                // own peak is the floor.
                let peak = figures
                    .peak_bytes
                    .map_or(base.peak_memory_bytes, |p| p.max(children.max_rss_bytes));
                return NodeUsage {
                    peak_memory_bytes: peak,
                    oom_kills: figures.oom_kills,
                    ..base
                };
            }
        }
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

/// The node's memory in proportion to `cores` of its online CPUs
/// (`/proc/meminfo`, `/sys/devices/system/cpu/online`).
fn memory_share(cores: u64) -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").ok()?;
    share_of(&meminfo, &online, cores)
}

/// The share of `MemTotal` in `meminfo` that `cores` of the CPUs of the
/// `online` idset hold.
fn share_of(meminfo: &str, online: &str, cores: u64) -> Option<u64> {
    let total_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let cpus = usage::idset::count(online).ok().filter(|&n| n > 0)?;
    let total = total_kib.checked_mul(1024)?;
    Some((total as u128 * u128::from(cores.min(cpus)) / u128::from(cpus)) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_share_is_in_proportion_to_the_cores() {
        // As Linux 6.18 writes them on a 2-CPU node with 24 GiB.
        let meminfo = "MemTotal:       25165824 kB\nMemFree:        19611000 kB\n";
        assert_eq!(share_of(meminfo, "0-1\n", 1), Some(12 << 30));
        assert_eq!(share_of(meminfo, "0-1\n", 2), Some(24 << 30));
        // More cores than the node has online (a test instance's brokers
        // share one machine) is the whole node.
        assert_eq!(share_of(meminfo, "0-1\n", 8), Some(24 << 30));
        assert_eq!(share_of("", "0-1\n", 1), None);
        assert_eq!(share_of(meminfo, "", 1), None);
    }
}
