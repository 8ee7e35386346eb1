//! What running jobs use now, as the module on each broker rank measures
//! it: the job shell's registration of its tasks (shell to the module on
//! its own rank), the batch each rank makes once per sampling period, one
//! sample per job running there, and the bundle that carries the batches
//! of a part of the overlay tree up to rank 0.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The version of the registration and of the batch; a receiver refuses
/// any other, so that a shell plugin or a module of another build is told,
/// not misread.
pub const VERSION: u32 = 1;

/// The module's method on each rank where a job shell registers its tasks.
pub const REGISTER_METHOD: &str = "register";
/// The method that takes batches: on rank 0, and on every rank whose
/// module passes its children's batches on up with its own.
pub const SAMPLES_METHOD: &str = "samples";
/// The method on rank 0 that answers what a running job uses now.
pub const JOB_METHOD: &str = "job-usage";
/// The module's method on each rank that answers what a job's GPUs did
/// there, for its shell at `shell.finish`.
pub const GPU_METHOD: &str = "job-gpus";

/// What a job's GPUs did on one node while the module looked at them
/// (NVML's utilisation, each look's share held over the time since the
/// previous one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct JobGpus {
    /// GPU-seconds in which a kernel ran.
    pub busy_seconds: f64,
    /// GPU-seconds NVML measured.
    pub measured_seconds: f64,
    /// The most memory in use on the job's GPUs at one look.
    pub peak_memory_bytes: u64,
}

impl JobGpus {
    /// Adds a look at `gpus`, `seconds` after the previous one.
    pub fn add(&mut self, gpus: &[crate::gpu::GpuSample], seconds: f64) {
        let seconds = seconds.max(0.0);
        for g in gpus {
            if let Some(busy) = g.busy {
                self.busy_seconds += busy * seconds;
                self.measured_seconds += seconds;
            }
        }
        let memory = gpus.iter().map(|g| g.memory_used_bytes).sum();
        self.peak_memory_bytes = self.peak_memory_bytes.max(memory);
    }
}

/// What a job shell tells the module on its rank when its tasks start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    pub version: u32,
    /// The job's ID.
    pub id: u64,
    /// The tasks' process IDs: their process trees are the job's here.
    /// Where the shell has a cgroup v2 of its own (sdexec), the module
    /// finds it from the tasks, rather than take the shell's word for it.
    pub pids: Vec<i32>,
    /// What the job was allocated on this node.
    pub cores: u64,
    pub gpus: u64,
    /// Its GPUs' indexes on the node (from the rank information's idset).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpu_ids: Vec<u32>,
}

/// One job's figures on one node, from one look.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSample {
    pub id: u64,
    /// Who registered the job (the shell's user), for rank 0 to check
    /// against the job's owner.
    pub userid: u32,
    pub cores: u64,
    pub gpus: u64,
    /// Processes in the job's trees (0 where read from a cgroup).
    pub processes: u64,
    /// CPU time (user and system) the job's processes have used on the node
    /// since they started.
    pub cpu_seconds: f64,
    /// Cores' worth of CPU the job used since the previous look (CPU time
    /// over wall time); None at the first look.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_cores: Option<f64>,
    /// Resident memory now, and the most any look saw.
    pub memory_bytes: u64,
    pub peak_memory_bytes: u64,
    pub source: Source,
    /// The shell's own cgroup v2 directory, where the figures come from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// Its GPUs, where NVML answers on the node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpu: Vec<crate::gpu::GpuSample>,
}

/// Where a job's figures on a node come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The process trees under its tasks, in `/proc`.
    Processes,
    /// Its cgroup v2: the shell's own (sdexec), or one the module made.
    Cgroup,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Source::Processes => "processes",
            Source::Cgroup => "cgroup",
        })
    }
}

/// One rank's samples of one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch<'a> {
    pub version: u32,
    pub rank: u32,
    /// Read in place from the message where it can be (rank 0 keeps one
    /// copy per rank, not one per batch).
    #[serde(borrow)]
    pub hostname: Cow<'a, str>,
    /// Seconds between this rank's looks: rank 0 takes a batch as current
    /// for three of them.
    pub period: f64,
    /// On the wire each sample is an array of its figures in a fixed
    /// order ([`SAMPLE_FORM`]): rank 0 reads every rank's samples each
    /// period, and field names would be most of what it reads.
    #[serde(with = "positional")]
    pub jobs: Vec<JobSample>,
}

/// A sample's figures in the order a batch carries them; the last two
/// only where there is a cgroup or a GPU.
pub const SAMPLE_FORM: &str = "[id, userid, cores, gpus, processes, cpu_seconds, cpu_cores, memory_bytes, peak_memory_bytes, source, cgroup, gpu]";

/// A batch's samples as arrays of their figures ([`SAMPLE_FORM`]).
mod positional {
    use super::{JobSample, SAMPLE_FORM};
    use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
    use serde::ser::{Serialize, SerializeTuple, Serializer};

    /// The figures every sample has; a cgroup and GPUs may follow.
    const REQUIRED: usize = 10;

    struct Write<'a>(&'a JobSample);

    impl Serialize for Write<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let j = self.0;
            let len = if !j.gpu.is_empty() {
                REQUIRED + 2
            } else if j.cgroup.is_some() {
                REQUIRED + 1
            } else {
                REQUIRED
            };
            let mut t = s.serialize_tuple(len)?;
            t.serialize_element(&j.id)?;
            t.serialize_element(&j.userid)?;
            t.serialize_element(&j.cores)?;
            t.serialize_element(&j.gpus)?;
            t.serialize_element(&j.processes)?;
            t.serialize_element(&j.cpu_seconds)?;
            t.serialize_element(&j.cpu_cores)?;
            t.serialize_element(&j.memory_bytes)?;
            t.serialize_element(&j.peak_memory_bytes)?;
            t.serialize_element(&j.source)?;
            if len > REQUIRED {
                t.serialize_element(&j.cgroup)?;
            }
            if len > REQUIRED + 1 {
                t.serialize_element(&j.gpu)?;
            }
            t.end()
        }
    }

    pub fn serialize<S: Serializer>(jobs: &[JobSample], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(jobs.iter().map(Write))
    }

    struct Read(JobSample);

    impl<'de> Deserialize<'de> for Read {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_seq(Figures).map(Read)
        }
    }

    /// What a sample's array is expected to be, for an error to say.
    struct Form;

    impl de::Expected for Form {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "a job's sample {SAMPLE_FORM}")
        }
    }

    fn required<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(
        seq: &mut A,
        at: usize,
    ) -> Result<T, A::Error> {
        seq.next_element()?
            .ok_or_else(|| de::Error::invalid_length(at, &Form))
    }

    struct Figures;

    impl<'de> Visitor<'de> for Figures {
        type Value = JobSample;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            de::Expected::fmt(&Form, f)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JobSample, A::Error> {
            Ok(JobSample {
                id: required(&mut seq, 0)?,
                userid: required(&mut seq, 1)?,
                cores: required(&mut seq, 2)?,
                gpus: required(&mut seq, 3)?,
                processes: required(&mut seq, 4)?,
                cpu_seconds: required(&mut seq, 5)?,
                cpu_cores: required(&mut seq, 6)?,
                memory_bytes: required(&mut seq, 7)?,
                peak_memory_bytes: required(&mut seq, 8)?,
                source: required(&mut seq, 9)?,
                cgroup: seq.next_element::<Option<String>>()?.flatten(),
                gpu: seq.next_element()?.unwrap_or_default(),
            })
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<JobSample>, D::Error> {
        struct Samples;

        impl<'de> Visitor<'de> for Samples {
            type Value = Vec<JobSample>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of job samples")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut jobs = Vec::with_capacity(seq.size_hint().unwrap_or(4).min(1024));
                while let Some(Read(sample)) = seq.next_element()? {
                    jobs.push(sample);
                }
                Ok(jobs)
            }
        }

        d.deserialize_seq(Samples)
    }
}

/// A running job's figures on one node, as rank 0 answers them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSample {
    pub rank: u32,
    pub hostname: String,
    /// Seconds since rank 0 received the sample.
    pub age: f64,
    #[serde(flatten)]
    pub sample: JobSample,
}

/// A running job's figures on every node that reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveJob {
    pub id: u64,
    pub nodes: Vec<NodeSample>,
}

impl LiveJob {
    pub fn cores(&self) -> u64 {
        self.nodes.iter().map(|n| n.sample.cores).sum()
    }

    /// Cores' worth of CPU in use, over the nodes that have a rate yet.
    pub fn cpu_cores(&self) -> f64 {
        self.nodes.iter().filter_map(|n| n.sample.cpu_cores).sum()
    }

    pub fn memory_bytes(&self) -> u64 {
        self.nodes.iter().map(|n| n.sample.memory_bytes).sum()
    }

    /// GPUs' worth of busy time, and over how many GPUs, on the nodes that
    /// measured their GPUs. None where none did.
    pub fn gpus_busy(&self) -> Option<(f64, u64)> {
        let mut any = false;
        let (mut busy, mut gpus) = (0.0, 0);
        for n in &self.nodes {
            if let Some(b) = crate::gpu::gpus_busy(&n.sample.gpu) {
                any = true;
                busy += b;
                gpus += crate::gpu::measured(&n.sample.gpu);
            }
        }
        any.then_some((busy, gpus))
    }

    /// CPU in use over the cores allocated; None before any rate, or
    /// without cores.
    pub fn cpu_efficiency(&self) -> Option<f64> {
        let rated: Vec<_> = self
            .nodes
            .iter()
            .filter(|n| n.sample.cpu_cores.is_some())
            .collect();
        let cores: u64 = rated.iter().map(|n| n.sample.cores).sum();
        (cores > 0)
            .then(|| rated.iter().filter_map(|n| n.sample.cpu_cores).sum::<f64>() / cores as f64)
    }
}

/// Why a registration or a batch was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WireError {
    #[error("unreadable {what}: {why}")]
    Unreadable { what: &'static str, why: String },
    #[error("{what} version {got}; this flux-prometheus reads version {VERSION} (shell plugin and module of different builds?)")]
    Version { what: &'static str, got: u32 },
    #[error("registration of job {0} names no task")]
    NoTasks(u64),
    #[error("batch of rank {rank}: period {} is not a number of seconds between 0 and {MAX_PERIOD}", shown(*.period))]
    Period { rank: u32, period: f64 },
}

/// A number as a message shows it: in scientific form where the plain one
/// would run to hundreds of digits.
fn shown(x: f64) -> String {
    if x != 0.0 && !(1e-3..1e7).contains(&x.abs()) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// The longest sampling period a batch may give (a day, the longest
/// `sample-interval`): a rank's batch counts for three of them.
pub const MAX_PERIOD: f64 = 86_400.0;

impl Batch<'_> {
    /// Whether the batch's period is one a module could have: a batch
    /// counts until three of them have passed, so a forged period of a
    /// thousand years would keep its samples that long.
    fn check(&self) -> Result<(), WireError> {
        if self.period > 0.0 && self.period <= MAX_PERIOD {
            Ok(())
        } else {
            Err(WireError::Period {
                rank: self.rank,
                period: self.period,
            })
        }
    }
}

/// Reads a shell's registration.
pub fn read_registration(payload: &str) -> Result<Registration, WireError> {
    let r: Registration = read("registration", payload)?;
    if r.pids.is_empty() {
        return Err(WireError::NoTasks(r.id));
    }
    Ok(r)
}

/// Reads a rank's batch.
pub fn read_batch(payload: &str) -> Result<Batch<'_>, WireError> {
    let batch: Batch = read("batch", payload)?;
    batch.check()?;
    Ok(batch)
}

/// Writes a bundle: batches of several ranks, sent on together,
/// `{"version":1,"bundle":[BATCH,...]}`.
pub fn write_bundle(batches: &[Box<RawValue>]) -> String {
    #[derive(Serialize)]
    struct Bundle<'a> {
        version: u32,
        bundle: &'a [Box<RawValue>],
    }
    serde_json::to_string(&Bundle {
        version: VERSION,
        bundle: batches,
    })
    .unwrap_or_default()
}

/// Reads what `NAME.samples` carries, a bundle or one batch: each batch,
/// or why it cannot be read. A bundle whose batches all read is read in one
/// pass; otherwise each batch is read on its own, so that a bad one is
/// refused alone.
pub fn read_samples(payload: &str) -> Result<Vec<Result<Batch<'_>, WireError>>, WireError> {
    #[derive(Deserialize)]
    struct Whole<'a> {
        version: u32,
        #[serde(borrow, deserialize_with = "each_read")]
        bundle: Vec<Result<Batch<'a>, WireError>>,
    }
    if let Ok(whole) = serde_json::from_str::<Whole>(payload) {
        let current = |b: &Result<Batch, WireError>| {
            b.as_ref()
                .is_ok_and(|b| b.version == VERSION && b.check().is_ok())
        };
        if whole.version == VERSION && whole.bundle.iter().all(current) {
            return Ok(whole.bundle);
        }
    }
    let batches = split_samples(payload)?;
    Ok(batches.iter().map(|b| read_batch(b.get())).collect())
}

/// A bundle's batches, each read as it comes into the vector
/// [`read_samples`] returns (rather than into one of batches alone, then
/// moved).
fn each_read<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<Result<Batch<'de>, WireError>>, D::Error> {
    struct Each;

    impl<'de> serde::de::Visitor<'de> for Each {
        type Value = Vec<Result<Batch<'de>, WireError>>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of batches")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut batches = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(batch) = seq.next_element::<Batch<'de>>()? {
                batches.push(Ok(batch));
            }
            Ok(batches)
        }
    }

    d.deserialize_seq(Each)
}

/// The batches of what `NAME.samples` carries, a bundle or one batch, each
/// as its text: only the bundle's outline and version are read here, and
/// each batch is read (and may be refused) on its own where it is taken.
pub fn split_samples(payload: &str) -> Result<Vec<&RawValue>, WireError> {
    #[derive(Deserialize)]
    struct Outline<'a> {
        version: u32,
        #[serde(borrow, default)]
        bundle: Option<Vec<&'a RawValue>>,
    }
    let unreadable = |e: serde_json::Error| WireError::Unreadable {
        what: "samples",
        why: e.to_string(),
    };
    let outline: Outline = serde_json::from_str(payload).map_err(unreadable)?;
    if outline.version != VERSION {
        return Err(WireError::Version {
            what: if outline.bundle.is_some() {
                "bundle"
            } else {
                "batch"
            },
            got: outline.version,
        });
    }
    match outline.bundle {
        Some(batches) => Ok(batches),
        None => Ok(vec![serde_json::from_str(payload).map_err(unreadable)?]),
    }
}

/// A message that carries its version.
trait Versioned {
    fn version(&self) -> u32;
}

impl Versioned for Registration {
    fn version(&self) -> u32 {
        self.version
    }
}

impl Versioned for Batch<'_> {
    fn version(&self) -> u32 {
        self.version
    }
}

/// Reads a versioned message once (every batch, at rank 0); where it does
/// not read, its version alone, so that another build's message is called
/// that, whatever else differs.
fn read<'a, T: Versioned + Deserialize<'a>>(
    what: &'static str,
    payload: &'a str,
) -> Result<T, WireError> {
    #[derive(Deserialize)]
    struct VersionOnly {
        version: u32,
    }
    let check = |got: u32| {
        (got == VERSION)
            .then_some(())
            .ok_or(WireError::Version { what, got })
    };
    match serde_json::from_str::<T>(payload) {
        Ok(message) => check(message.version()).map(|()| message),
        Err(e) => {
            if let Ok(v) = serde_json::from_str::<VersionOnly>(payload) {
                check(v.version)?;
            }
            Err(WireError::Unreadable {
                what,
                why: e.to_string(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_builds_registration_is_named_as_such() {
        let err =
            read_registration(r#"{"version":2,"id":1,"pids":[1],"cores":1,"gpus":0}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "registration version 2; this flux-prometheus reads version 1 (shell plugin and module of different builds?)"
        );
    }

    #[test]
    fn a_registration_without_tasks_is_refused() {
        let err =
            read_registration(r#"{"version":1,"id":7,"pids":[],"cores":1,"gpus":0}"#).unwrap_err();
        assert_eq!(err, WireError::NoTasks(7));
        let err = read_registration("{").unwrap_err();
        assert!(err.to_string().starts_with("unreadable registration: "));
    }

    #[test]
    fn gpu_looks_add_up_over_time() {
        let gpu = |index, busy, used| crate::gpu::GpuSample {
            index,
            busy,
            memory_used_bytes: used,
            memory_total_bytes: 80 << 30,
        };
        let mut totals = JobGpus::default();
        totals.add(
            &[gpu(0, Some(1.0), 4 << 30), gpu(1, Some(0.5), 2 << 30)],
            30.0,
        );
        totals.add(&[gpu(0, Some(0.0), 1 << 30), gpu(1, None, 1 << 30)], 10.0);
        assert_eq!(
            totals,
            JobGpus {
                busy_seconds: 45.0,
                measured_seconds: 70.0,
                peak_memory_bytes: 6 << 30,
            }
        );
        // An old registration, without GPU indexes, still reads.
        let r = read_registration(r#"{"version":1,"id":1,"pids":[1],"cores":1,"gpus":0}"#).unwrap();
        assert!(r.gpu_ids.is_empty());
    }

    #[test]
    fn efficiency_counts_only_nodes_with_a_rate() {
        let node = |rank, cores, rate| NodeSample {
            rank,
            hostname: format!("node{rank}"),
            age: 1.0,
            sample: JobSample {
                id: 1,
                userid: 1000,
                cores,
                gpus: 0,
                processes: 3,
                cpu_seconds: 10.0,
                cpu_cores: rate,
                memory_bytes: 1 << 20,
                peak_memory_bytes: 1 << 21,
                source: Source::Processes,
                cgroup: None,
                gpu: Vec::new(),
            },
        };
        let job = LiveJob {
            id: 1,
            nodes: vec![node(0, 4, Some(2.0)), node(1, 4, None)],
        };
        assert_eq!(job.cpu_efficiency(), Some(0.5));
        assert_eq!(job.cores(), 8);
        assert_eq!(job.memory_bytes(), 2 << 20);
        let batch = Batch {
            version: VERSION,
            rank: 1,
            hostname: "node1".into(),
            period: 30.0,
            jobs: vec![job.nodes[0].sample.clone()],
        };
        let text = serde_json::to_string(&batch).unwrap();
        assert_eq!(read_batch(&text).unwrap(), batch);
    }

    #[test]
    fn a_batch_carries_each_sample_as_its_figures_in_order() {
        let mut with_all = JobSample {
            id: 9,
            userid: 1000,
            cores: 4,
            gpus: 1,
            processes: 0,
            cpu_seconds: 12.5,
            cpu_cores: None,
            memory_bytes: 1 << 30,
            peak_memory_bytes: 2 << 30,
            source: Source::Cgroup,
            cgroup: Some("/sys/fs/cgroup/system.slice/shell-1-9.service".into()),
            gpu: vec![crate::gpu::GpuSample {
                index: 0,
                busy: Some(0.75),
                memory_used_bytes: 1 << 30,
                memory_total_bytes: 80 << 30,
            }],
        };
        let only_cgroup = JobSample {
            id: 10,
            gpu: Vec::new(),
            ..with_all.clone()
        };
        with_all.cpu_cores = Some(3.5);
        let plain = JobSample {
            id: 11,
            cgroup: None,
            source: Source::Processes,
            ..only_cgroup.clone()
        };
        let batch = Batch {
            version: VERSION,
            rank: 1,
            hostname: "node1".into(),
            period: 30.0,
            jobs: vec![with_all, only_cgroup, plain],
        };
        let text = serde_json::to_string(&batch).unwrap();
        assert!(
            text.contains(r#""jobs":[[9,1000,4,1,0,12.5,3.5,1073741824,2147483648,"cgroup","/sys/fs/cgroup/system.slice/shell-1-9.service",[{"#),
            "{text}"
        );
        assert!(
            text.ends_with(r#"[11,1000,4,1,0,12.5,null,1073741824,2147483648,"processes"]]}"#),
            "{text}"
        );
        assert_eq!(read_batch(&text).unwrap(), batch);
    }

    #[test]
    fn a_sample_not_in_its_order_is_refused_saying_the_order() {
        let batch = |sample: &str| {
            format!(r#"{{"version":1,"rank":2,"hostname":"n2","period":1,"jobs":[{sample}]}}"#)
        };
        let err = read_batch(&batch("[7,1000,4]")).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "unreadable batch: invalid length 3, expected a job's sample [id, userid, cores, "
            ),
            "{err}"
        );
        // Samples with named fields (not what a batch carries) are named as
        // what they are.
        let err = read_batch(&batch(r#"{"id":7,"userid":1000}"#)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("unreadable batch: invalid type: map, expected a job's sample ["),
            "{err}"
        );
        let err = read_batch(&batch(r#"[7,1000,4,0,1,1.0,null,1,1,"elsewhere"]"#)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("unreadable batch: unknown variant `elsewhere`"),
            "{err}"
        );
        let err = read_batch(&batch(
            r#"[7,1000,4,0,1,1.0,null,1,1,"processes",null,[],3]"#,
        ))
        .unwrap_err();
        assert!(
            err.to_string().starts_with("unreadable batch: trailing"),
            "{err}"
        );
    }

    #[test]
    fn a_bundle_carries_each_batch_as_it_was_sent() {
        let batch = |rank: u32| {
            format!(
                r#"{{"version":1,"rank":{rank},"hostname":"node{rank}","period":30.0,"jobs":[]}}"#
            )
        };
        let batches: Vec<Box<RawValue>> = (1..=3)
            .map(|rank| RawValue::from_string(batch(rank)).unwrap())
            .collect();
        let bundle = write_bundle(&batches);
        let split = split_samples(&bundle).unwrap();
        let ranks: Vec<u32> = split
            .iter()
            .map(|b| read_batch(b.get()).unwrap().rank)
            .collect();
        assert_eq!(ranks, [1, 2, 3]);
        let read: Vec<u32> = read_samples(&bundle)
            .unwrap()
            .into_iter()
            .map(|b| b.unwrap().rank)
            .collect();
        assert_eq!(read, [1, 2, 3]);
        // One batch alone is its own only element.
        let five = batch(5);
        let one = split_samples(&five).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(read_batch(one[0].get()).unwrap().rank, 5);
    }

    #[test]
    fn a_bad_batch_in_a_bundle_is_refused_alone() {
        let bundle = r#"{"version":1,"bundle":[{"version":1,"rank":4},{"version":1,"rank":2,"hostname":"n2","period":1,"jobs":[]}]}"#;
        let read = read_samples(bundle).unwrap();
        let err = read[0].as_ref().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("unreadable batch: missing field"),
            "{err}"
        );
        assert_eq!(read[1].as_ref().unwrap().rank, 2);
        // Another build's batch in a bundle is named as such.
        let bundle = r#"{"version":1,"bundle":[{"version":3,"rank":2,"hostname":"n2","period":1,"jobs":[]}]}"#;
        assert_eq!(
            read_samples(bundle).unwrap()[0],
            Err(WireError::Version {
                what: "batch",
                got: 3
            })
        );
    }

    #[test]
    fn a_batch_whose_period_no_module_has_is_refused() {
        let batch = |period: &str| {
            format!(r#"{{"version":1,"rank":2,"hostname":"n2","period":{period},"jobs":[]}}"#)
        };
        assert_eq!(read_batch(&batch("30")).unwrap().period, 30.0);
        for period in ["0", "-30", "1e300", "86401"] {
            assert_eq!(
                read_batch(&batch(period)).unwrap_err().to_string(),
                format!("batch of rank 2: period {period} is not a number of seconds between 0 and 86400"),
            );
        }
        // In a bundle, that batch alone.
        let bundle = format!(
            r#"{{"version":1,"bundle":[{},{}]}}"#,
            batch("1e300"),
            batch("30")
        );
        let read = read_samples(&bundle).unwrap();
        assert!(matches!(read[0], Err(WireError::Period { rank: 2, .. })));
        assert!(read[1].is_ok());
    }

    #[test]
    fn an_unreadable_or_other_builds_bundle_says_so() {
        let err = split_samples(r#"{"version":2,"bundle":[]}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "bundle version 2; this flux-prometheus reads version 1 (shell plugin and module of different builds?)"
        );
        let err = split_samples(r#"{"version":1,"bundle":[{"#).unwrap_err();
        assert!(err.to_string().starts_with("unreadable samples: "), "{err}");
        let err = split_samples("[]").unwrap_err();
        assert!(err.to_string().starts_with("unreadable samples: "), "{err}");
    }
}
