//! What running jobs use now: the batches each broker rank's module sends
//! rank 0 once per sampling period (`usage::live`), kept by rank. A rank's
//! batch replaces its last one; a batch older than three of its periods
//! (the rank or its module went away) counts no more.
//!
//! The sums a publish reads (by key, and by job) are kept as batches come
//! and go: a batch adds its samples and takes away those of the batch it
//! replaces, so that a publish at 16,384 ranks does not go over 65,536
//! samples again. Rates are kept in millionths, so that what is taken away
//! is exactly what was added.

use std::hash::Hash;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use usage::live::{Batch, JobSample, LiveJob, NodeSample};

/// Periods after which a rank's batch counts no more.
const STALE_PERIODS: f64 = 3.0;

/// Millionths in one: the unit rates are summed in.
const MICRO: f64 = 1e6;

#[derive(Debug, Clone)]
pub struct Live<K> {
    ranks: FxHashMap<u32, RankBatch>,
    /// By job with a current sample: its place in `sums`.
    jobs: FxHashMap<u64, u32>,
    /// The sums of each job with a current sample, and places freed by
    /// jobs that have none now, which new jobs take. A rank's kept sample
    /// remembers its job's place, so that its next sample finds the sums
    /// without hashing the job's ID.
    sums: Vec<JobSums>,
    free: Vec<u32>,
    /// Each key seen, by its place in `key_sums`: a job holds its key's
    /// place, so that a sample adds to its key's sums without hashing it.
    keys: FxHashMap<K, usize>,
    /// By key: the sums of its jobs with a current sample, and how many
    /// there are (all zero for a key with none now).
    key_sums: Vec<(K, Sums)>,
    /// What a take of a batch works in, kept from one to the next.
    matched: Vec<bool>,
    spare_places: Vec<u32>,
}

impl<K> Default for Live<K> {
    fn default() -> Self {
        Live {
            ranks: FxHashMap::default(),
            jobs: FxHashMap::default(),
            sums: Vec::new(),
            free: Vec::new(),
            keys: FxHashMap::default(),
            key_sums: Vec::new(),
            matched: Vec::new(),
            spare_places: Vec::new(),
        }
    }
}

/// A place in `Live::sums` that holds no job.
const NO_PLACE: u32 = u32::MAX;
/// What a take notes in place of a refused sample's place.
const REFUSED: u32 = u32::MAX - 1;

#[derive(Debug, Clone)]
struct RankBatch {
    received: f64,
    period: f64,
    hostname: Arc<str>,
    jobs: Vec<JobSample>,
    /// Where each sample's job has its sums (`NO_PLACE` where none).
    places: Vec<u32>,
}

#[derive(Debug, Clone)]
struct JobSums {
    /// The job (while `samples` is not zero).
    id: u64,
    /// Its key's place in `key_sums`.
    key: u32,
    /// The user its first sample was accepted from: a later sample from the
    /// same user is accepted without asking again (whether a user's sample
    /// of a job counts does not change while the job is active, and an
    /// ended job's sums are gone).
    userid: u32,
    /// Its current samples; 0 for a free place.
    samples: u32,
    sums: Sums,
}

/// Sums of samples, exact: rates in millionths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sums {
    /// Jobs with a current sample (by key; 1 for a job).
    pub jobs: u64,
    cpu_cores_micro: i64,
    /// The cores allocated on the nodes that measured a CPU rate.
    pub allocated_cores: u64,
    pub memory_bytes: u64,
    gpus_busy_micro: i64,
    pub measured_gpus: u64,
    pub gpu_memory_bytes: u64,
}

impl Sums {
    /// What one node's sample adds.
    fn of(s: &JobSample) -> Sums {
        let (cpu_cores_micro, allocated_cores) = match s.cpu_cores {
            Some(rate) => ((rate * MICRO).round() as i64, s.cores),
            None => (0, 0),
        };
        let (gpus_busy_micro, measured_gpus) = match usage::gpu::gpus_busy(&s.gpu) {
            Some(busy) => ((busy * MICRO).round() as i64, usage::gpu::measured(&s.gpu)),
            None => (0, 0),
        };
        Sums {
            jobs: 0,
            cpu_cores_micro,
            allocated_cores,
            memory_bytes: s.memory_bytes,
            gpus_busy_micro,
            measured_gpus,
            gpu_memory_bytes: s
                .gpu
                .iter()
                .fold(0u64, |sum, g| sum.wrapping_add(g.memory_used_bytes)),
        }
    }

    /// Adds `o`. Sums wrap rather than stop at their bounds, so that
    /// taking away exactly undoes adding whatever a sample claims (a
    /// forged one may claim anything).
    fn add(&mut self, o: &Sums) {
        self.jobs = self.jobs.wrapping_add(o.jobs);
        self.cpu_cores_micro = self.cpu_cores_micro.wrapping_add(o.cpu_cores_micro);
        self.allocated_cores = self.allocated_cores.wrapping_add(o.allocated_cores);
        self.memory_bytes = self.memory_bytes.wrapping_add(o.memory_bytes);
        self.gpus_busy_micro = self.gpus_busy_micro.wrapping_add(o.gpus_busy_micro);
        self.measured_gpus = self.measured_gpus.wrapping_add(o.measured_gpus);
        self.gpu_memory_bytes = self.gpu_memory_bytes.wrapping_add(o.gpu_memory_bytes);
    }

    fn take(&mut self, o: &Sums) {
        self.jobs = self.jobs.wrapping_sub(o.jobs);
        self.cpu_cores_micro = self.cpu_cores_micro.wrapping_sub(o.cpu_cores_micro);
        self.allocated_cores = self.allocated_cores.wrapping_sub(o.allocated_cores);
        self.memory_bytes = self.memory_bytes.wrapping_sub(o.memory_bytes);
        self.gpus_busy_micro = self.gpus_busy_micro.wrapping_sub(o.gpus_busy_micro);
        self.measured_gpus = self.measured_gpus.wrapping_sub(o.measured_gpus);
        self.gpu_memory_bytes = self.gpu_memory_bytes.wrapping_sub(o.gpu_memory_bytes);
    }

    /// Cores' worth of CPU used over the last sampling period.
    pub fn cpu_cores(&self) -> f64 {
        self.cpu_cores_micro as f64 / MICRO
    }

    /// GPUs' worth of busy time over the last sampling period.
    pub fn gpus_busy(&self) -> f64 {
        self.gpus_busy_micro as f64 / MICRO
    }
}

impl<K: Clone + Eq + Hash> Live<K> {
    /// Takes rank `batch.rank`'s batch, received at `now`, keeping the
    /// samples `accept` gives a key (the job's); returns how many it did
    /// not.
    pub fn take<'k>(
        &mut self,
        now: f64,
        batch: Batch<'_>,
        accept: impl Fn(&JobSample) -> Option<&'k K>,
    ) -> usize
    where
        K: 'k,
    {
        let Batch {
            rank,
            hostname: sent_hostname,
            period,
            jobs: mut samples,
            ..
        } = batch;
        // The rank's last samples: a job sampled again moves its sums by
        // the difference; those not sampled again are forgotten. (A job
        // the last batch named twice has each sample matched in turn.)
        let (mut before, before_places, hostname) = match self.ranks.get_mut(&rank) {
            Some(last) => (
                std::mem::take(&mut last.jobs),
                std::mem::take(&mut last.places),
                (*last.hostname == *sent_hostname).then(|| Arc::clone(&last.hostname)),
            ),
            None => (Vec::new(), Vec::new(), None),
        };
        // Vectors of the last take, so that a take allocates none of its
        // own.
        let mut matched = std::mem::take(&mut self.matched);
        matched.clear();
        matched.resize(before.len(), false);
        let mut places = std::mem::take(&mut self.spare_places);
        places.clear();
        // A batch of a few jobs is searched; a large one, indexed.
        let mut index: Option<FxHashMap<u64, Vec<usize>>> = (before.len() > 32).then(|| {
            let mut index: FxHashMap<u64, Vec<usize>> = FxHashMap::default();
            for (at, last) in before.iter().enumerate().rev() {
                index.entry(last.id).or_default().push(at);
            }
            index
        });
        let mut refused = 0;
        for sample in &samples {
            // This rank's last sample of the job, and where its sums are.
            let at = match &mut index {
                Some(index) => index.get(&sample.id).and_then(|ats| ats.last().copied()),
                None => before
                    .iter()
                    .zip(&matched)
                    .position(|(last, &m)| !m && last.id == sample.id),
            };
            let place = match at.map(|at| before_places[at]) {
                Some(place) if self.holds(place, sample.id) => Some(place),
                _ => self.jobs.get(&sample.id).copied(),
            };
            let known = place.is_some_and(|p| self.sums[p as usize].userid == sample.userid);
            let key = if known {
                None
            } else {
                let Some(key) = accept(sample) else {
                    places.push(REFUSED);
                    refused += 1;
                    continue;
                };
                Some(key)
            };
            if let Some(at) = at {
                if let Some(index) = &mut index {
                    index.get_mut(&sample.id).and_then(Vec::pop);
                }
                matched[at] = true;
            }
            let counted = match (at, place) {
                (Some(at), Some(place)) if before_places[at] == place => {
                    self.recount(place, &before[at], sample);
                    place
                }
                _ => self.count(sample, key),
            };
            places.push(counted);
        }
        if refused > 0 {
            let mut kept = places.iter().map(|&place| place != REFUSED);
            samples.retain(|_| kept.next().unwrap_or(false));
            places.retain(|&place| place != REFUSED);
        }
        for ((last, &place), &matched) in before.iter().zip(&before_places).zip(&matched) {
            if !matched {
                self.forget_one(last, place);
            }
        }
        // The samples are kept in the last batch's vector, which taking
        // them has just read, rather than in the one they were read into.
        before.clear();
        before.append(&mut samples);
        let kept = RankBatch {
            received: now,
            period,
            hostname: hostname.unwrap_or_else(|| Arc::from(&*sent_hostname)),
            jobs: before,
            places,
        };
        match self.ranks.get_mut(&rank) {
            Some(last) => *last = kept,
            None => {
                self.ranks.insert(rank, kept);
            }
        }
        self.matched = matched;
        self.spare_places = before_places;
        refused
    }

    /// Reads what taking the batches of `ranks` reads first (each rank's
    /// kept batch, its first sample, and its jobs' sums), in one pass
    /// before any is taken, so that the reads of different ranks wait for
    /// memory together rather than one after another (at 16,384 ranks,
    /// most of a take's time was such waits).
    pub fn prefetch(&self, ranks: impl Iterator<Item = u32>) {
        let mut read = 0u64;
        for rank in ranks {
            if let Some(kept) = self.ranks.get(&rank) {
                read ^= kept.jobs.first().map_or(0, |s| s.id);
                for &place in &kept.places {
                    read ^= self.sums.get(place as usize).map_or(0, |j| j.id);
                }
            }
        }
        std::hint::black_box(read);
    }

    /// Whether `place` holds job `id`'s sums.
    fn holds(&self, place: u32, id: u64) -> bool {
        self.sums
            .get(place as usize)
            .is_some_and(|j| j.samples > 0 && j.id == id)
    }

    /// Adds one node's sample of a job under `key` (the key is copied
    /// only for a job or key new here; a job known here needs none).
    /// Returns where the job's sums are (`NO_PLACE` for a job new here
    /// without a key).
    fn count(&mut self, sample: &JobSample, key: Option<&K>) -> u32 {
        let sums = Sums::of(sample);
        let place = match self.jobs.get(&sample.id) {
            Some(&place) => place,
            None => {
                let Some(key) = key else {
                    return NO_PLACE;
                };
                let Live { keys, key_sums, .. } = self;
                let key = *keys.entry(key.clone()).or_insert_with(|| {
                    key_sums.push((key.clone(), Sums::default()));
                    key_sums.len() - 1
                }) as u32;
                let new = JobSums {
                    id: sample.id,
                    key,
                    userid: sample.userid,
                    samples: 0,
                    sums: Sums {
                        jobs: 1,
                        ..Sums::default()
                    },
                };
                let place = match self.free.pop() {
                    Some(place) => {
                        self.sums[place as usize] = new;
                        place
                    }
                    None => {
                        self.sums.push(new);
                        (self.sums.len() - 1) as u32
                    }
                };
                self.jobs.insert(sample.id, place);
                place
            }
        };
        let job = &mut self.sums[place as usize];
        job.samples += 1;
        job.sums.add(&sums);
        self.key_sums[job.key as usize].1.add(&Sums {
            jobs: u64::from(job.samples == 1),
            ..sums
        });
        place
    }

    /// Replaces a node's sample `last` of the job whose sums are at
    /// `place` with `now`.
    fn recount(&mut self, place: u32, last: &JobSample, now: &JobSample) {
        let job = &mut self.sums[place as usize];
        let (last, now) = (Sums::of(last), Sums::of(now));
        job.sums.take(&last);
        job.sums.add(&now);
        let by_key = &mut self.key_sums[job.key as usize].1;
        by_key.take(&last);
        by_key.add(&now);
    }

    /// Takes away samples that are no longer current. Those of a job
    /// already ended ([`Live::end_job`]) count nothing.
    fn forget(&mut self, samples: &[JobSample], places: &[u32]) {
        for (sample, &place) in samples.iter().zip(places) {
            self.forget_one(sample, place);
        }
    }

    /// Takes away a sample whose job's sums were at `place`: nothing where
    /// the job has ended (and the place may be another job's).
    fn forget_one(&mut self, sample: &JobSample, place: u32) {
        if !self.holds(place, sample.id) {
            return;
        }
        let job = &mut self.sums[place as usize];
        let sums = Sums::of(sample);
        job.samples -= 1;
        job.sums.take(&sums);
        let gone = job.samples == 0;
        self.key_sums[job.key as usize].1.take(&Sums {
            jobs: u64::from(gone),
            ..sums
        });
        if gone {
            self.jobs.remove(&sample.id);
            self.free.push(place);
        }
    }

    /// Job `id` has ended: its samples count no more, though the batches
    /// that carry them are kept until replaced.
    pub fn end_job(&mut self, id: u64) {
        if let Some(place) = self.jobs.remove(&id) {
            let job = &mut self.sums[place as usize];
            job.samples = 0;
            self.key_sums[job.key as usize].1.take(&job.sums);
            self.free.push(place);
        }
    }

    /// Forgets the batches of ranks that have not sent one for three of
    /// their periods.
    pub fn expire(&mut self, now: f64) {
        let stale: Vec<u32> = self
            .ranks
            .iter()
            .filter(|(_, b)| now - b.received > STALE_PERIODS * b.period.max(0.0))
            .map(|(rank, _)| *rank)
            .collect();
        for rank in stale {
            if let Some(old) = self.ranks.remove(&rank) {
                self.forget(&old.jobs, &old.places);
            }
        }
    }

    /// The sums by key with a job that has a current sample.
    pub fn by_key(&self) -> impl Iterator<Item = (&K, &Sums)> + '_ {
        self.key_sums
            .iter()
            .filter(|(_, sums)| sums.jobs > 0)
            .map(|(key, sums)| (key, sums))
    }

    /// The sums by job with a current sample, and its key.
    pub fn by_job(&self) -> impl Iterator<Item = (u64, &K, &Sums)> + '_ {
        self.sums
            .iter()
            .filter(|j| j.samples > 0)
            .map(|j| (j.id, &self.key_sums[j.key as usize].0, &j.sums))
    }
}

impl<K> Live<K> {
    /// Ranks whose batch is current.
    pub fn ranks(&self) -> usize {
        self.ranks.len()
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
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
            source: usage::live::Source::Processes,
            cgroup: None,
            gpu: Vec::new(),
        }
    }

    fn batch(rank: u32, jobs: Vec<JobSample>) -> Batch<'static> {
        Batch {
            version: VERSION,
            rank,
            hostname: format!("node{rank}").into(),
            period: 30.0,
            jobs,
        }
    }

    #[test]
    fn a_ranks_batch_replaces_its_last_and_goes_stale() {
        let mut live: Live<u8> = Live::default();
        live.take(0.0, batch(1, vec![sample(7, 4, None)]), |_| Some(&0));
        live.take(0.0, batch(2, vec![sample(7, 4, Some(1.0))]), |_| Some(&0));
        live.take(30.0, batch(1, vec![sample(7, 4, Some(3.0))]), |_| Some(&0));
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
        let mut live: Live<u8> = Live::default();
        let refused = live.take(
            0.0,
            batch(0, vec![sample(1, 1, None), sample(2, 1, None)]),
            |s| (s.id == 1).then_some(&0),
        );
        assert_eq!(refused, 1);
        assert_eq!(live.by_job().count(), 1);
        // A job known here is asked about again for a sample from
        // another user, which the check refuses.
        let mut forged = sample(1, 1, None);
        forged.userid = 1001;
        let refused = live.take(1.0, batch(1, vec![forged]), |s| {
            (s.userid == 1000).then_some(&0)
        });
        assert_eq!(refused, 1);
        assert_eq!(live.job(1, 1.0).map(|j| j.nodes.len()), Some(1));
    }

    /// The sums by key as a publish once read them: from every current
    /// sample of a job not ended, in floating point.
    /// A key's sums: key, jobs, CPU cores, allocated cores, memory, GPUs
    /// busy, GPUs measured, GPU memory.
    type Row = (u8, u64, f64, u64, u64, f64, u64, u64);

    fn from_scratch(live: &Live<u8>, ended: &[u64], key_of: impl Fn(u64) -> u8) -> Vec<Row> {
        let mut by_job: HashMap<u64, (f64, u64, u64, f64, u64, u64)> = HashMap::new();
        for b in live.ranks.values() {
            for s in b.jobs.iter().filter(|s| !ended.contains(&s.id)) {
                let j = by_job.entry(s.id).or_default();
                if let Some(rate) = s.cpu_cores {
                    j.0 += rate;
                    j.1 += s.cores;
                }
                j.2 += s.memory_bytes;
                if let Some(busy) = usage::gpu::gpus_busy(&s.gpu) {
                    j.3 += busy;
                    j.4 += usage::gpu::measured(&s.gpu);
                }
                j.5 += s.gpu.iter().map(|g| g.memory_used_bytes).sum::<u64>();
            }
        }
        let mut by_key: std::collections::BTreeMap<u8, Row> = Default::default();
        for (id, j) in by_job {
            let key = key_of(id);
            let k = by_key.entry(key).or_insert((key, 0, 0.0, 0, 0, 0.0, 0, 0));
            k.1 += 1;
            k.2 += j.0;
            k.3 += j.1;
            k.4 += j.2;
            k.5 += j.3;
            k.6 += j.4;
            k.7 += j.5;
        }
        by_key.into_values().collect()
    }

    #[test]
    fn the_kept_sums_are_those_of_the_current_samples() {
        // A fixed pseudo-random run of batches, job ends and expiries over
        // 8 ranks and 24 jobs on 3 keys, checked after every step.
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) % n
        };
        let keys: Vec<u8> = (0..24).map(|id| (id % 3) as u8).collect();
        let mut live: Live<u8> = Live::default();
        let mut ended: Vec<u64> = Vec::new();
        let mut now = 0.0;
        for step in 0..3000 {
            now += 1.0;
            match next(10) {
                0 => {
                    let id = next(24);
                    live.end_job(id);
                    ended.push(id);
                }
                1 => live.expire(now),
                _ => {
                    let rank = next(8) as u32;
                    // Now and then a batch large enough to be indexed,
                    // naming jobs more than once.
                    let count = if next(8) == 0 { 33 + next(30) } else { next(5) };
                    let jobs = (0..count)
                        .map(|_| {
                            let mut s = sample(next(24), 1 + next(16), None);
                            if next(3) > 0 {
                                s.cpu_cores = Some(next(1000) as f64 / 7.0);
                            }
                            s.memory_bytes = next(1 << 40);
                            if next(4) == 0 {
                                s.gpu = vec![usage::gpu::GpuSample {
                                    index: 0,
                                    busy: (next(2) == 0).then(|| next(100) as f64 / 100.0),
                                    memory_used_bytes: next(1 << 34),
                                    memory_total_bytes: 1 << 34,
                                }];
                            }
                            s
                        })
                        .collect();
                    let mut b = batch(rank, jobs);
                    b.period = 5.0 + next(20) as f64;
                    live.take(now, b, |s| {
                        (!ended.contains(&s.id)).then(|| &keys[s.id as usize])
                    });
                }
            }
            let want = from_scratch(&live, &ended, |id| keys[id as usize]);
            let mut got: Vec<_> = live
                .by_key()
                .map(|(k, s)| {
                    (
                        *k,
                        s.jobs,
                        s.cpu_cores(),
                        s.allocated_cores,
                        s.memory_bytes,
                        s.gpus_busy(),
                        s.measured_gpus,
                        s.gpu_memory_bytes,
                    )
                })
                .collect();
            got.sort_by_key(|g| g.0);
            assert_eq!(
                got.len(),
                want.len(),
                "step {step}: {got:?} against {want:?}"
            );
            for (g, w) in got.iter().zip(&want) {
                let near = |a: f64, b: f64| (a - b).abs() < 1e-4;
                assert!(
                    (g.0, g.1, g.3, g.4, g.6, g.7) == (w.0, w.1, w.3, w.4, w.6, w.7)
                        && near(g.2, w.2)
                        && near(g.5, w.5),
                    "step {step}: {g:?} against {w:?}"
                );
            }
            assert_eq!(
                live.by_job().count(),
                want.iter().map(|w| w.1 as usize).sum::<usize>()
            );
        }
    }
}
