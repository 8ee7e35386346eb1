//! Who uses what: for each owner (a uid, or a project), active jobs by
//! state and the nodes, cores and GPUs allocated to them, kept as each job
//! comes, changes and goes ([`super::journal`]). Reading the usage then costs
//! one step per owner, not one per job: at 60,000 active jobs counting them
//! all again took the reactor 14-30 ms (BENCHMARKS.md, "The largest
//! system").

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use hashbag::HashBag;

use super::journal::{Phase, RosterJob};

/// Usage by uid (None: the job's owner was not in its submit event).
pub type ByUid = Tallies<Option<u32>>;
/// Usage by project (None: the job named none).
pub type ByProject = Tallies<Option<Arc<str>>>;

/// One owner's share of the machine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub pending: u64,
    pub running: u64,
    /// Distinct nodes among its running jobs' allocations.
    pub nodes: u64,
    pub cores: u64,
    pub gpus: u64,
}

impl Usage {
    pub fn add(&mut self, other: &Usage) {
        self.pending += other.pending;
        self.running += other.running;
        self.nodes += other.nodes;
        self.cores += other.cores;
        self.gpus += other.gpus;
    }
}

/// One owner's jobs, with how many of them hold each rank, so that a node
/// shared by several of its jobs counts once, and is gone with the last.
#[derive(Debug, Default)]
struct Tally {
    jobs: u64,
    pending: u64,
    running: u64,
    cores: u64,
    gpus: u64,
    ranks: HashBag<u32>,
}

impl Tally {
    fn usage(&self) -> Usage {
        Usage {
            pending: self.pending,
            running: self.running,
            nodes: self.ranks.set_len() as u64,
            cores: self.cores,
            gpus: self.gpus,
        }
    }
}

/// The usage of every owner keyed by `K`: a job is added as it is and
/// removed as it was, so each change of a job is a removal and an addition.
#[derive(Debug)]
pub struct Tallies<K> {
    by_owner: HashMap<K, Tally>,
}

impl<K> Default for Tallies<K> {
    fn default() -> Self {
        Tallies {
            by_owner: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq> Tallies<K> {
    pub fn add(&mut self, owner: K, job: &RosterJob) {
        let tally = self.by_owner.entry(owner).or_default();
        tally.jobs += 1;
        match job.phase {
            Phase::Pending => tally.pending += 1,
            Phase::Running => tally.running += 1,
        }
        for node in job.nodes.iter().flat_map(|nodes| nodes.iter()) {
            tally.ranks.insert(node.rank);
            tally.cores += u64::from(node.cores);
            tally.gpus += node.gpus.count();
        }
    }

    /// Takes back what [`Tallies::add`] added for `job`, as it was then.
    pub fn remove(&mut self, owner: &K, job: &RosterJob) {
        let Some(tally) = self.by_owner.get_mut(owner) else {
            return;
        };
        tally.jobs = tally.jobs.saturating_sub(1);
        match job.phase {
            Phase::Pending => tally.pending = tally.pending.saturating_sub(1),
            Phase::Running => tally.running = tally.running.saturating_sub(1),
        }
        for node in job.nodes.iter().flat_map(|nodes| nodes.iter()) {
            tally.ranks.remove(&node.rank);
            tally.cores = tally.cores.saturating_sub(u64::from(node.cores));
            tally.gpus = tally.gpus.saturating_sub(node.gpus.count());
        }
        if tally.jobs == 0 {
            self.by_owner.remove(owner);
        }
    }

    pub fn clear(&mut self) {
        self.by_owner = HashMap::new();
    }

    /// Every owner with at least one active job, and its usage.
    pub fn iter(&self) -> impl Iterator<Item = (&K, Usage)> {
        self.by_owner
            .iter()
            .map(|(owner, tally)| (owner, tally.usage()))
    }

    pub fn len(&self) -> usize {
        self.by_owner.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_owner.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::roster::test_job;

    fn running(ranks: &[u32], cores: u32, gpus: &str) -> RosterJob {
        test_job(1, None, ranks, cores, gpus)
    }

    #[test]
    fn a_node_shared_by_two_jobs_counts_once_until_the_last_one_goes() {
        let mut tallies: Tallies<u32> = Tallies::default();
        let a = running(&[0, 1], 4, "0-1");
        let b = running(&[1, 2], 2, "");
        tallies.add(7, &a);
        tallies.add(7, &b);
        let usage = |t: &Tallies<u32>| t.iter().map(|(_, u)| u).next().unwrap_or_default();
        assert_eq!(
            usage(&tallies),
            Usage {
                pending: 0,
                running: 2,
                nodes: 3,
                cores: 12,
                gpus: 4
            }
        );
        tallies.remove(&7, &a);
        assert_eq!((usage(&tallies).nodes, usage(&tallies).cores), (2, 4));
        tallies.remove(&7, &b);
        // No job left: the owner is gone, not a row of zeros.
        assert!(tallies.is_empty());
    }

    #[test]
    fn a_change_is_the_job_removed_as_it_was_and_added_as_it_is() {
        let mut tallies: Tallies<&str> = Tallies::default();
        let pending = RosterJob {
            phase: Phase::Pending,
            nodes: None,
            ..running(&[], 0, "")
        };
        tallies.add("chem", &pending);
        let now = running(&[5], 8, "3");
        tallies.remove(&"chem", &pending);
        tallies.add("chem", &now);
        let (_, usage) = tallies.iter().next().unwrap();
        assert_eq!((usage.pending, usage.running, usage.nodes), (0, 1, 1));
        assert_eq!(tallies.len(), 1);
    }
}
