//! `flux prometheus jobstats [--json] JOBID`: what a job used, per node and
//! in total, from the `prometheus.usage` event the job shell plugin
//! appended to its exec eventlog when its tasks ended; with advice, as
//! Princeton's `jobstats` gives it. No Prometheus is needed.
//!
//! A job still running has no such event yet: its figures now come from
//! the module on rank 0 (`prometheus.job-usage`), which the module on each
//! of the job's nodes tells every `sample-interval`.

use usage::live::LiveJob;
use usage::JobUsage;

use crate::{Failure, Outcome};

/// `jobstats [--json] JOBID`.
pub fn run(rest: &[String]) -> Outcome {
    let (json, jobid) = match rest {
        [id] if !id.starts_with('-') => (false, id),
        [flag, id] | [id, flag] if flag == "--json" => (true, id),
        _ => return Err(Failure("jobstats takes a job ID, and --json".into())),
    };
    let log = crate::flux::flux_command(
        None,
        &["job", "eventlog", "-f", "json", "-p", "exec", jobid],
    )?;
    let Some(usage) =
        JobUsage::from_eventlog(&log).map_err(|e| Failure(format!("job {jobid}: {e}")))?
    else {
        return running(jobid, json);
    };
    if json {
        return serde_json::to_string_pretty(&usage).map_err(|e| Failure(e.to_string()));
    }
    Ok(report(jobid, &usage))
}

/// Asks the module on rank 0 what running job `id` uses now. The command
/// links no libflux, so Flux's Python bindings send the RPC.
const ASK_RANK_0: &str = r#"
import json, sys, flux
from flux.job import JobID
try:
    answer = flux.Flux().rpc("prometheus.job-usage", {"id": int(JobID(sys.argv[1]))}, nodeid=0).get()
except OSError as e:
    sys.exit(f"{e.strerror}")
print(json.dumps(answer))
"#;

/// A job with no usage record: what it uses now, if it runs.
fn running(jobid: &str, json: bool) -> Outcome {
    let answer = crate::flux::flux_command(None, &["python", "-c", ASK_RANK_0, jobid]).map_err(
        |Failure(why)| {
            Failure(if why.contains("not an active job") {
                format!("job {jobid} has no usage record: it opted out (-o prometheus.usage=false), or ran where the prometheus shell plugin is not installed")
            } else {
                format!("job {jobid} has no usage record yet, and its figures now are not to be had: {why}")
            })
        },
    )?;
    let live: LiveJob = serde_json::from_str(&answer)
        .map_err(|e| Failure(format!("job {jobid}: unreadable answer from rank 0: {e}")))?;
    if json {
        return serde_json::to_string_pretty(&live).map_err(|e| Failure(e.to_string()));
    }
    Ok(live_report(jobid, &live))
}

/// The report of a running job, for a person.
pub fn live_report(jobid: &str, live: &LiveJob) -> String {
    let mut out = format!("Job {jobid} (running: figures of each node's last look)\n\n");
    out.push_str("  rank  host              cores  gpus  procs  CPU in use  CPU eff.  memory now  peak memory  source     age (s)\n");
    for n in &live.nodes {
        let s = &n.sample;
        let rate = s.cpu_cores.map_or("-".into(), |r| format!("{r:.2}"));
        let eff = s
            .cpu_cores
            .filter(|_| s.cores > 0)
            .map(|r| r / s.cores as f64);
        out.push_str(&format!(
            "  {:>4}  {:<16}  {:>5}  {:>4}  {:>5}  {:>10}  {:>8}  {:>10}  {:>11}  {:<9}  {:>7.0}\n",
            n.rank,
            n.hostname,
            s.cores,
            s.gpus,
            s.processes,
            rate,
            percent(eff),
            gib(s.memory_bytes),
            gib(s.peak_memory_bytes),
            s.source,
            n.age,
        ));
    }
    for n in &live.nodes {
        if let Some(dir) = &n.sample.cgroup {
            out.push_str(&format!("  rank {} measured from cgroup {dir}\n", n.rank));
        }
    }
    out.push_str(&format!(
        "\n  Total: {} node(s) reporting, {} cores, {:.2} cores' worth of CPU in use: {} CPU efficiency now; memory {} now\n",
        live.nodes.len(),
        live.cores(),
        live.cpu_cores(),
        percent(live.cpu_efficiency()),
        gib(live.memory_bytes()),
    ));
    if live.nodes.iter().any(|n| !n.sample.gpu.is_empty()) {
        out.push_str("\n  rank  gpu  busy (NVML)  memory in use\n");
        for n in &live.nodes {
            for g in &n.sample.gpu {
                out.push_str(&format!(
                    "  {:>4}  {:>3}  {:>11}  {} of {}\n",
                    n.rank,
                    g.index,
                    percent(g.busy),
                    gib(g.memory_used_bytes),
                    gib(g.memory_total_bytes),
                ));
            }
        }
        if let Some((busy, gpus)) = live.gpus_busy().filter(|&(_, gpus)| gpus > 0) {
            out.push_str(&format!(
                "\n  GPUs: {busy:.2} GPUs' worth busy of {gpus} measured: {} GPU utilisation now\n",
                percent(Some(busy / gpus as f64)),
            ));
            if busy / (gpus as f64) < 0.25 {
                out.push_str(&format!(
                    "\n  * The job's {gpus} GPUs are busy {:.0}% of the time: if that holds, check that the program runs its work on them, or ask for fewer.\n",
                    busy / gpus as f64 * 100.0
                ));
            }
        }
    }
    let cores = live.cores();
    let every_rate = live.nodes.iter().all(|n| n.sample.cpu_cores.is_some());
    if let Some(eff) = live
        .cpu_efficiency()
        .filter(|&e| every_rate && e < 0.5 && cores > 1)
    {
        let enough = (live.cpu_cores().ceil() as u64).max(1);
        if enough < cores {
            out.push_str(&format!(
                "\n  * The job has {cores} cores and uses {:.1} now ({:.0}% CPU efficiency): if that holds, ask for {enough} next time, or check that the program runs in parallel.\n",
                live.cpu_cores(),
                eff * 100.0
            ));
        }
    }
    out.truncate(out.trim_end().len());
    out
}

/// Memory in GiB, or in MiB below one GiB.
fn gib(bytes: u64) -> String {
    if bytes < 1 << 30 {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
    }
}

fn percent(x: Option<f64>) -> String {
    x.map_or("-".into(), |x| format!("{:.0}%", x * 100.0))
}

/// The report for a person.
pub fn report(jobid: &str, usage: &JobUsage) -> String {
    let mut out = format!("Job {jobid}\n\n");
    out.push_str("  rank  host              cores  gpus  tasks   wall (s)    CPU (s)  CPU eff.  peak memory  source\n");
    for n in &usage.nodes {
        let eff = (n.core_seconds() > 0.0).then(|| n.cpu_seconds() / n.core_seconds());
        out.push_str(&format!(
            "  {:>4}  {:<16}  {:>5}  {:>4}  {:>5}  {:>9.1}  {:>9.1}  {:>8}  {:>11}  {}{}\n",
            n.rank,
            n.hostname,
            n.cores,
            n.gpus,
            n.tasks,
            n.wall_seconds,
            n.cpu_seconds(),
            percent(eff),
            gib(n.peak_memory_bytes),
            n.source,
            n.oom_kills
                .filter(|&k| k > 0)
                .map(|k| format!(", {k} OOM kill(s)"))
                .unwrap_or_default(),
        ));
    }
    out.push_str(&format!(
        "\n  Total: {} node(s), {} cores, CPU {:.1} s of {:.1} core-s allocated: {} CPU efficiency; peak memory {} (the sum of each node's peak)\n",
        usage.nodes.len(),
        usage.cores(),
        usage.cpu_seconds(),
        usage.core_seconds(),
        percent(usage.cpu_efficiency()),
        gib(usage.peak_memory_bytes()),
    ));
    if let Some(ratio) = usage.peak_memory_share_ratio() {
        let share: u64 = usage
            .nodes
            .iter()
            .filter_map(|n| n.memory_share_bytes)
            .sum();
        out.push_str(&format!(
            "  Memory: peak {} of a {} share ({}); mean {}\n",
            gib(usage.peak_memory_bytes()),
            gib(share),
            percent(Some(ratio)),
            usage
                .memory_byte_seconds()
                .zip(
                    usage
                        .nodes
                        .iter()
                        .map(|n| n.wall_seconds)
                        .reduce(f64::max)
                        .filter(|&w| w > 0.0)
                )
                .map_or("-".into(), |(bs, wall)| gib((bs / wall) as u64)),
        ));
    }
    if let Some((busy, measured)) = usage.gpu_seconds() {
        let peak: u64 = usage
            .nodes
            .iter()
            .filter_map(|n| n.gpu_peak_memory_bytes)
            .sum();
        out.push_str(&format!(
            "  GPUs: busy {busy:.1} of {measured:.1} GPU-s measured: {} GPU utilisation; GPU memory peak {}\n",
            percent(usage.gpu_utilization()),
            gib(peak),
        ));
    }
    if !usage.missing.is_empty() {
        let ranks: Vec<String> = usage.missing.iter().map(u32::to_string).collect();
        out.push_str(&format!(
            "  Not reported: shell rank(s) {}\n",
            ranks.join(", ")
        ));
    }
    let advice = usage.advice();
    if !advice.is_empty() {
        out.push('\n');
        for a in advice {
            out.push_str(&format!("  * {a}\n"));
        }
    }
    out.truncate(out.trim_end().len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use usage::report::VERSION;
    use usage::NodeUsage;

    #[test]
    fn the_report_names_each_node_the_totals_and_the_advice() {
        let node = |rank| NodeUsage {
            rank,
            hostname: format!("node{rank}"),
            cores: 32,
            gpus: 0,
            tasks: 1,
            wall_seconds: 100.0,
            user_seconds: 150.0,
            system_seconds: 50.0,
            peak_memory_bytes: 3 << 30,
            source: "processes".into(),
            ..NodeUsage::default()
        };
        let usage = JobUsage {
            version: VERSION,
            nodes: vec![node(0), node(1)],
            missing: vec![2],
        };
        let text = report("fABC", &usage);
        assert!(text.contains("     0  node0                32     0      1      100.0      200.0        6%     3.00 GiB  processes"), "{text}");
        assert!(text.contains("Total: 2 node(s), 64 cores, CPU 400.0 s of 6400.0 core-s allocated: 6% CPU efficiency; peak memory 6.00 GiB"), "{text}");
        assert!(text.contains("Not reported: shell rank(s) 2"), "{text}");
        assert!(text.contains("* The job asked for 64 cores and used 4.0 on average (6% CPU efficiency): ask for 4"), "{text}");
        assert!(
            !text.contains("Memory:") && !text.contains("GPUs:"),
            "{text}"
        );

        // A record with memory shares and measured GPUs.
        let mut nodes = vec![node(0), node(1)];
        for n in &mut nodes {
            n.gpus = 4;
            n.memory_share_bytes = Some(4 << 30);
            n.memory_byte_seconds = Some((2u64 << 30) as f64 * 100.0);
            n.gpu_busy_seconds = Some(40.0);
            n.gpu_measured_seconds = Some(400.0);
            n.gpu_peak_memory_bytes = Some(10 << 30);
        }
        let usage = JobUsage {
            version: VERSION,
            nodes,
            missing: vec![],
        };
        let text = report("fABC", &usage);
        assert!(
            text.contains("  Memory: peak 6.00 GiB of a 8.00 GiB share (75%); mean 4.00 GiB"),
            "{text}"
        );
        assert!(text.contains("  GPUs: busy 80.0 of 800.0 GPU-s measured: 10% GPU utilisation; GPU memory peak 20.00 GiB"), "{text}");
        assert!(
            text.contains("* The job's 8 GPU(s) were busy 10% of the time"),
            "{text}"
        );
    }

    #[test]
    fn a_running_jobs_report_shows_each_node_now() {
        use usage::live::{JobSample, NodeSample};
        let node = |rank, rate| NodeSample {
            rank,
            hostname: format!("node{rank}"),
            age: 12.0,
            sample: JobSample {
                id: 1,
                userid: 1000,
                cores: 16,
                gpus: 0,
                processes: 3,
                cpu_seconds: 100.0,
                cpu_cores: rate,
                memory_bytes: 1 << 30,
                peak_memory_bytes: 2 << 30,
                source: usage::live::Source::Processes,
                cgroup: None,
                gpu: Vec::new(),
            },
        };
        let live = LiveJob {
            id: 1,
            nodes: vec![node(1, Some(2.0)), node(2, None)],
        };
        let text = live_report("fABC", &live);
        assert!(text.contains("     1  node1                16     0      3        2.00       12%    1.00 GiB     2.00 GiB  processes       12"), "{text}");
        assert!(
            text.contains("     2  node2                16     0      3           -         -"),
            "{text}"
        );
        assert!(text.contains("Total: 2 node(s) reporting, 32 cores, 2.00 cores' worth of CPU in use: 12% CPU efficiency now"), "{text}");
        // Advice waits for every node's rate.
        assert!(!text.contains('*'), "{text}");
        let live = LiveJob {
            id: 1,
            nodes: vec![node(1, Some(2.0)), node(2, Some(1.0))],
        };
        let text = live_report("fABC", &live);
        assert!(text.contains("* The job has 32 cores and uses 3.0 now (9% CPU efficiency): if that holds, ask for 3 next time"), "{text}");
        assert!(!text.contains("GPU"), "{text}");

        // Two GPUs on node 1, one of them idle.
        let mut gpu_node = node(1, Some(2.0));
        gpu_node.sample.gpu = vec![
            usage::gpu::GpuSample {
                index: 0,
                busy: Some(0.3),
                memory_used_bytes: 3 << 30,
                memory_total_bytes: 80 << 30,
            },
            usage::gpu::GpuSample {
                index: 1,
                busy: Some(0.0),
                memory_used_bytes: 0,
                memory_total_bytes: 80 << 30,
            },
        ];
        let live = LiveJob {
            id: 1,
            nodes: vec![gpu_node],
        };
        let text = live_report("fABC", &live);
        assert!(
            text.contains("     1    0          30%  3.00 GiB of 80.00 GiB"),
            "{text}"
        );
        assert!(
            text.contains("GPUs: 0.30 GPUs' worth busy of 2 measured: 15% GPU utilisation now"),
            "{text}"
        );
        assert!(
            text.contains("* The job's 2 GPUs are busy 15% of the time"),
            "{text}"
        );
    }

    #[test]
    fn bad_arguments_are_refused() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            run(&args(&[])),
            Err(Failure("jobstats takes a job ID, and --json".into()))
        );
        assert_eq!(
            run(&args(&["--json"])),
            Err(Failure("jobstats takes a job ID, and --json".into()))
        );
    }
}
