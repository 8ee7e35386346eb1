//! The module's `prometheus.stats-get` answer (`flux module stats
//! prometheus`): one type, written by the module and read by the `flux
//! prometheus` command.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::error::ParseError;

/// How one collector is doing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CollectorStats {
    pub healthy: bool,
    /// Seconds since the epoch of the last successful update.
    pub last_update: Option<f64>,
    /// How long the last update took, in seconds.
    pub duration: f64,
    /// Successful updates since the module loaded.
    pub updates: u64,
    pub error: Option<String>,
    /// Where the values last came from, for collectors with more than one
    /// way to learn them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Sources read less often than every poll, as their cost allows: the
    /// polls from one read to the next, by source (an RPC topic).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub read_every: BTreeMap<String, u32>,
}

/// The whole answer. Fields a module of another version does not send are
/// read as their defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModuleStats {
    /// Where the module serves metrics; None while it cannot listen yet.
    pub url: Option<String>,
    /// Why it does not serve yet (the listen address was taken at instance
    /// start); None once it serves.
    pub listen_error: Option<String>,
    pub version: String,
    pub collectors: BTreeMap<String, CollectorStats>,
    pub basic_auth: bool,
    pub tls: bool,
    /// Whether client certificates are verified against a CA, so that
    /// their SANs can clear a scraper (`private-scrapers`).
    pub verifies_client_certs: bool,
    pub web_config: Option<String>,
    /// Why series naming users and jobs are private ("access.private-mode"
    /// or "private-mode"); None where they are served to every scraper.
    pub private_mode: Option<String>,
    /// The scrapers served those series where they are private.
    pub private_scrapers: Vec<String>,
    /// Those of them that are basic-auth users of the web config.
    pub private_basic_auth_users: Vec<String>,
    pub max_request_rate: u32,
    /// The reactor thread's time per publish (before-publish hooks and the
    /// render of what changed) over the last publishes: wall time.
    pub publish: PublishStats,
    /// The same publishes' CPU time on the reactor thread: less than the
    /// wall time by what the thread waited for a core.
    pub publish_cpu: PublishStats,
    /// The CPU time of each part of those publishes, by part: `hooks`
    /// (the state derived before each render), each collector's render
    /// (counted only at the publishes after its section changed), and
    /// `snapshot` (handing the whole to the HTTP thread).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub publish_parts: BTreeMap<String, PublishStats>,
    /// Bytes the module holds allocated (its Rust heap, both threads).
    pub heap_bytes: u64,
    /// `resource.status` asks: sent to the resource module, and answered
    /// with the kept answer because the resource journal showed no change.
    pub resource_status: ResourceStatusAsks,
    /// The HTTP thread's time slice, in µs, as the kernel granted it; None
    /// where it was refused (then `http_wakeup_slice_error` says why).
    pub http_wakeup_slice_us: Option<u64>,
    pub http_wakeup_slice_error: Option<String>,
    /// The sampler of this node's running jobs (every rank has one).
    pub sampler: Option<SamplerStats>,
}

/// What the sampler of a rank's running jobs does (`flux module stats
/// prometheus` on any rank).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplerStats {
    pub rank: u32,
    pub sample_interval: f64,
    /// Jobs registered and still running here.
    pub jobs: usize,
    /// Of those, the jobs whose shell has a cgroup of its own, sampled
    /// from it rather than from their processes.
    pub cgroup_jobs: usize,
    /// Of those, the jobs in a cgroup the module made (`job-cgroups`).
    pub made_cgroup_jobs: usize,
    /// Jobs that `job-cgroups` could not give a cgroup, sampled from their
    /// processes instead.
    pub placements_failed: u64,
    pub registrations: u64,
    /// Registrations of jobs already registered here (a shell renews its
    /// own every six of its samples): only the list of tasks is replaced.
    pub renewals: u64,
    pub registrations_refused: u64,
    pub batches_sent: u64,
    /// Batches rank 0 did not take, or not sent because the last one was
    /// still unanswered.
    pub batches_failed: u64,
    /// CPU seconds the last look at every job took the reactor thread, the
    /// batch sent included.
    pub last_sample_cpu_seconds: f64,
}

/// What the relay on a rank other than 0 passed up the overlay tree: its
/// own batches and those of the ranks below it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RelayStats {
    /// The rank of the parent broker it sends to, once that has said it.
    pub parent: Option<u32>,
    /// Seconds it waits after a first batch before sending them on.
    pub delay: f64,
    /// Batches received from ranks below.
    pub batches_taken: u64,
    /// Messages from ranks below that could not be read (each answered
    /// with the reason).
    pub refused: u64,
    /// Bundles taken upstream, and how many of them went to rank 0
    /// directly because the module above takes none.
    pub bundles_sent: u64,
    pub bundles_direct: u64,
    /// Batches in the bundles taken upstream.
    pub batches_passed: u64,
    pub bundles_failed: u64,
    /// Batches in bundles not taken, or given up past the most it holds.
    pub batches_lost: u64,
    /// Batches waiting to be sent on.
    pub held: usize,
}

/// How the resources and nodes collectors' `resource.status` asks were
/// answered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResourceStatusAsks {
    pub sent: u64,
    pub reused: u64,
    /// Request counts (`resource.stats-get`) asked where some rank has no
    /// broker, to learn whether the kept answer still holds.
    pub counted: u64,
}

/// The reactor's time per publish, in seconds, over the last
/// [`PublishStats::KEPT`] publishes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PublishStats {
    /// Publishes since the module loaded.
    pub count: u64,
    pub median: f64,
    pub p99: f64,
    pub max: f64,
}

impl PublishStats {
    pub const KEPT: usize = 1024;

    /// From the last publishes' durations (in any order).
    pub fn of(count: u64, durations: &[f64]) -> PublishStats {
        let mut sorted = durations.to_vec();
        sorted.sort_by(f64::total_cmp);
        let at = |q: f64| {
            sorted
                .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or(0.0)
        };
        PublishStats {
            count,
            median: at(0.5),
            p99: at(0.99),
            max: sorted.last().copied().unwrap_or(0.0),
        }
    }
}

/// The last [`PublishStats::KEPT`] durations of something timed, and how
/// many there were.
#[derive(Debug, Clone, Default)]
pub struct Timings {
    count: u64,
    kept: Vec<f64>,
}

impl Timings {
    pub fn push(&mut self, seconds: f64) {
        if self.kept.len() < PublishStats::KEPT {
            self.kept.push(seconds);
        } else {
            self.kept[(self.count % PublishStats::KEPT as u64) as usize] = seconds;
        }
        self.count += 1;
    }

    /// How many there were in all.
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn stats(&self) -> PublishStats {
        PublishStats::of(self.count, &self.kept)
    }
}

impl ModuleStats {
    pub fn parse(json: &str) -> Result<ModuleStats, ParseError> {
        serde_json::from_str(json).map_err(|e| {
            ParseError::invalid(format!("unreadable answer: {e}")).within("prometheus.stats-get")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timings_keep_the_last_ones_and_count_them_all() {
        let mut t = Timings::default();
        for i in 0..PublishStats::KEPT + 10 {
            // The first ten are the slowest, and are overwritten.
            t.push(if i < 10 { 1.0 } else { 0.001 });
        }
        let stats = t.stats();
        assert_eq!(stats.count, PublishStats::KEPT as u64 + 10);
        assert_eq!(stats.max, 0.001);
    }

    #[test]
    fn what_the_module_writes_the_command_reads_back() {
        let mut stats = ModuleStats {
            url: Some("http://node0:9475/metrics".into()),
            version: crate::VERSION.into(),
            basic_auth: true,
            max_request_rate: 100,
            ..ModuleStats::default()
        };
        stats.collectors.insert(
            "resources".into(),
            CollectorStats {
                healthy: true,
                last_update: Some(1.5),
                source: Some("job-manager.events-journal".into()),
                ..CollectorStats::default()
            },
        );
        let json = serde_json::to_string(&stats).unwrap();
        assert_eq!(ModuleStats::parse(&json), Ok(stats));
        let err = ModuleStats::parse("{\"url\": 5}").unwrap_err().to_string();
        assert!(
            err.starts_with("prometheus.stats-get: unreadable answer"),
            "{err}"
        );
    }
}
