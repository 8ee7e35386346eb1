//! What running jobs use now: the batches each broker rank's module sends
//! rank 0 once per sampling period (`usage::live`), kept by rank. A rank's
//! batch replaces its last one; a batch older than three of its periods
//! (the rank or its module went away) counts no more.

use std::collections::HashMap;
use std::sync::Arc;

use usage::live::{Batch, JobSample, LiveJob, NodeSample};

/// Periods after which a rank's batch counts no more.
const STALE_PERIODS: f64 = 3.0;

#[derive(Debug, Clone, Default)]
pub struct Live {
    ranks: HashMap<u32, RankBatch>,
}

#[derive(Debug, Clone)]
struct RankBatch {
    received: f64,
    period: f64,
    hostname: Arc<str>,
    jobs: Vec<JobSample>,
}

impl Live {
    /// Takes rank `batch.rank`'s batch, received at `now`, keeping the
    /// samples `accept` takes; returns how many it did not.
    pub fn take(&mut self, now: f64, batch: Batch, accept: impl Fn(&JobSample) -> bool) -> usize {
        let total = batch.jobs.len();
        let jobs: Vec<JobSample> = batch.jobs.into_iter().filter(|j| accept(j)).collect();
        let refused = total - jobs.len();
        self.ranks.insert(
            batch.rank,
            RankBatch {
                received: now,
                period: batch.period,
                hostname: batch.hostname.into(),
                jobs,
            },
        );
        refused
    }

    /// Forgets the batches of ranks that have not sent one for three of
    /// their periods.
    pub fn expire(&mut self, now: f64) {
        self.ranks
            .retain(|_, b| now - b.received <= STALE_PERIODS * b.period.max(0.0));
    }

    /// Ranks whose batch is current.
    pub fn ranks(&self) -> usize {
        self.ranks.len()
    }

    /// Every sample, with the rank that sent it.
    pub fn samples(&self) -> impl Iterator<Item = (u32, &JobSample)> + '_ {
        self.ranks
            .iter()
            .flat_map(|(rank, b)| b.jobs.iter().map(move |j| (*rank, j)))
    }

    /// Job `id`'s samples, node by node (by rank), as of `now`.
    pub fn job(&self, id: u64, now: f64) -> Option<LiveJob> {
        let mut nodes: Vec<NodeSample> = self
            .ranks
            .iter()
            .flat_map(|(rank, b)| {
                b.jobs
                    .iter()
                    .filter(|j| j.id == id)
                    .map(move |j| NodeSample {
                        rank: *rank,
                        hostname: b.hostname.to_string(),
                        age: (now - b.received).max(0.0),
                        sample: j.clone(),
                    })
            })
            .collect();
        if nodes.is_empty() {
            return None;
        }
        nodes.sort_by_key(|n| n.rank);
        Some(LiveJob { id, nodes })
    }

    /// Every job's samples, by job.
    pub fn jobs(&self) -> HashMap<u64, Vec<&JobSample>> {
        let mut out: HashMap<u64, Vec<&JobSample>> = HashMap::new();
        for (_, sample) in self.samples() {
            out.entry(sample.id).or_default().push(sample);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use usage::live::VERSION;

    fn sample(id: u64, cores: u64, rate: Option<f64>) -> JobSample {
        JobSample {
            id,
            userid: 1000,
            cores,
            gpus: 0,
            processes: 2,
            cpu_seconds: 5.0,
            cpu_cores: rate,
            memory_bytes: 100,
            peak_memory_bytes: 200,
            source: "processes".into(),
            cgroup: None,
            gpu: Vec::new(),
        }
    }

    fn batch(rank: u32, jobs: Vec<JobSample>) -> Batch {
        Batch {
            version: VERSION,
            rank,
            hostname: format!("node{rank}"),
            period: 30.0,
            jobs,
        }
    }

    #[test]
    fn a_ranks_batch_replaces_its_last_and_goes_stale() {
        let mut live = Live::default();
        live.take(0.0, batch(1, vec![sample(7, 4, None)]), |_| true);
        live.take(0.0, batch(2, vec![sample(7, 4, Some(1.0))]), |_| true);
        live.take(30.0, batch(1, vec![sample(7, 4, Some(3.0))]), |_| true);
        let job = live.job(7, 31.0).unwrap();
        assert_eq!(job.nodes.len(), 2);
        assert_eq!(job.cpu_cores(), 4.0);
        assert_eq!(job.nodes[0].hostname, "node1");
        // Rank 2 said nothing for over three periods.
        live.expire(91.0);
        assert_eq!(live.ranks(), 1);
        assert_eq!(live.job(7, 91.0).unwrap().cpu_cores(), 3.0);
        assert!(live.job(8, 91.0).is_none());
    }

    #[test]
    fn refused_samples_are_counted_not_kept() {
        let mut live = Live::default();
        let refused = live.take(
            0.0,
            batch(0, vec![sample(1, 1, None), sample(2, 1, None)]),
            |s| s.id == 1,
        );
        assert_eq!(refused, 1);
        assert_eq!(live.jobs().len(), 1);
    }
}
