//! `flux prometheus jobstats [--json] JOBID`: what a job used, per node and
//! in total, from the `prometheus.usage` event the job shell plugin
//! appended to its exec eventlog when its tasks ended; with advice, as
//! Princeton's `jobstats` gives it. No Prometheus is needed.

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
    let usage = JobUsage::from_eventlog(&log)
        .map_err(|e| Failure(format!("job {jobid}: {e}")))?
        .ok_or_else(|| Failure(format!(
            "job {jobid} has no usage record: it is still running, opted out (-o prometheus.usage=false), or ran where the prometheus shell plugin is not installed"
        )))?;
    if json {
        return serde_json::to_string_pretty(&usage).map_err(|e| Failure(e.to_string()));
    }
    Ok(report(jobid, &usage))
}

fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
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
            oom_kills: None,
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
