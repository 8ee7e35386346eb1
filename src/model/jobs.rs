//! `job-list.job-stats` responses.

use super::error::ParseError;
use serde::Deserialize;

/// Job counts as job-list keeps them, for the instance or one queue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct JobCounts {
    pub job_states: JobStates,
    pub successful: u64,
    /// job-list's own `failed` excludes canceled and timed-out jobs, which
    /// `flux jobs --stats-only` adds back into its "failed" column.
    pub failed: u64,
    pub canceled: u64,
    pub timeout: u64,
    pub inactive_purged: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct JobStates {
    pub depend: u64,
    pub priority: u64,
    pub sched: u64,
    pub run: u64,
    pub cleanup: u64,
    pub inactive: u64,
    pub total: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct QueueJobCounts {
    pub name: String,
    #[serde(flatten)]
    pub counts: JobCounts,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct JobStats {
    #[serde(flatten)]
    pub all: JobCounts,
    #[serde(default)]
    pub queues: Vec<QueueJobCounts>,
}

impl JobCounts {
    pub fn active(&self) -> [(&'static str, u64); 5] {
        let s = &self.job_states;
        [
            ("depend", s.depend),
            ("priority", s.priority),
            ("sched", s.sched),
            ("run", s.run),
            ("cleanup", s.cleanup),
        ]
    }

    pub fn inactive(&self) -> [(&'static str, u64); 4] {
        [
            ("completed", self.successful),
            ("failed", self.failed),
            ("canceled", self.canceled),
            ("timeout", self.timeout),
        ]
    }
}

pub fn parse(payload: &str) -> Result<JobStats, ParseError> {
    serde_json::from_str(payload).map_err(|e| ParseError::malformed("job-list.job-stats", e))
}
