//! `flux prometheus status [--json]`: the module's URL and the health of
//! each collector, for a person (or the module's own answer, for a script).

use flux_prometheus::stats::ModuleStats;

use crate::{Failure, Outcome};

/// `status`: the module's health, with times as "how long ago".
pub fn run(rest: &[String]) -> Outcome {
    match rest {
        [] => status(&crate::flux::module_stats(None)?, now()),
        [flag] if flag == "--json" => {
            serde_json::to_string_pretty(&crate::flux::module_stats(None)?)
                .map_err(|e| Failure(e.to_string()))
        }
        _ => Err(Failure("status takes no arguments but --json".into())),
    }
}

/// Seconds since the epoch, as the module's timestamps are.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// How long before `now` the epoch time `then` was, for a person.
pub fn ago(then: f64, now: f64) -> String {
    let secs = now - then;
    if secs < 1.0 {
        // Clocks of the module and of this command are the same host's,
        // but a scrape may land between the two readings.
        return "just now".into();
    }
    let rounded = std::time::Duration::from_secs(secs as u64);
    format!("{} ago", humantime::format_duration(rounded))
}

/// The module's health for a person, with times as "how long ago"; `now`
/// is the current epoch time. (`status --json` prints the timestamps.)
pub fn status(stats: &ModuleStats, now: f64) -> Outcome {
    let mut out = format!(
        "prometheus module {} serving {}\n",
        stats.version,
        stats.url.as_deref().unwrap_or("(not listening)")
    );
    if let Some(why) = &stats.listen_error {
        out.push_str(&format!("  not serving yet: {why}\n"));
    }
    if stats.heap_bytes > 0 {
        out.push_str(&format!(
            "  module memory: {:.1} MiB allocated\n",
            stats.heap_bytes as f64 / (1024.0 * 1024.0)
        ));
    }
    if stats.publish.count > 0 {
        out.push_str(&format!(
            "  {} publishes; broker time per publish: median {:.2} ms, p99 {:.2} ms, max {:.2} ms (CPU: median {:.2} ms, p99 {:.2} ms)\n",
            stats.publish.count,
            stats.publish.median * 1e3,
            stats.publish.p99 * 1e3,
            stats.publish.max * 1e3,
            stats.publish_cpu.median * 1e3,
            stats.publish_cpu.p99 * 1e3
        ));
        // The dearest parts first: what to look at when a publish is slow.
        let mut parts: Vec<_> = stats
            .publish_parts
            .iter()
            .filter(|(_, part)| part.count > 0)
            .collect();
        parts.sort_by(|a, b| b.1.max.total_cmp(&a.1.max).then_with(|| a.0.cmp(b.0)));
        if !parts.is_empty() {
            let listed: Vec<String> = parts
                .iter()
                .take(4)
                .map(|(name, part)| {
                    format!(
                        "{name} {:.2} ms (median {:.2} ms, {} times)",
                        part.max * 1e3,
                        part.median * 1e3,
                        part.count
                    )
                })
                .collect();
            out.push_str(&format!(
                "  dearest parts of a publish (CPU, max): {}\n",
                listed.join(", ")
            ));
        }
    }
    match (stats.http_wakeup_slice_us, &stats.http_wakeup_slice_error) {
        (Some(us), _) => out.push_str(&format!(
            "  HTTP thread: {us} µs time slice (woken by a scrape, it runs before busy broker threads end theirs)\n"
        )),
        (None, Some(why)) => out.push_str(&format!(
            "  HTTP thread: the kernel's default time slice (a short one was refused: {why})\n"
        )),
        (None, None) => {}
    }
    let asks = &stats.resource_status;
    if asks.sent + asks.reused > 0 {
        out.push_str(&format!(
            "  resource.status: {} asked, {} answered from the last answer (the resource journal showed no change",
            asks.sent, asks.reused
        ));
        if asks.counted > 0 {
            out.push_str(&format!(
                "; {} request counts taken, as some rank has no broker",
                asks.counted
            ));
        }
        out.push_str(")\n");
    }
    for (name, c) in &stats.collectors {
        let last = c
            .last_update
            .map(|t| format!("last update {}", ago(t, now)))
            .unwrap_or_else(|| "no update yet".into());
        let error = c
            .error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {name:<10} {:<7} {last}{error}\n",
            if c.healthy { "ok" } else { "FAILING" }
        ));
        if !c.read_every.is_empty() {
            let reads: Vec<String> = c
                .read_every
                .iter()
                .map(|(source, polls)| format!("{source} {polls}"))
                .collect();
            out.push_str(&format!(
                "  {:<10} polls between reads: {}\n",
                "",
                reads.join(", ")
            ));
        }
    }
    Ok(out.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_says_how_long_ago_not_epoch_times() {
        let stats = json!({
            "version": "0.1.0",
            "url": "http://node0:9475/metrics",
            "collectors": {
                "jobs": {"healthy": true, "last_update": 1_000.0},
                "queues": {"healthy": false, "last_update": 400.0, "error": "down"},
                "broker": {"healthy": false, "last_update": null},
            }
        });
        let stats = ModuleStats::parse(&stats.to_string()).unwrap();
        let text = status(&stats, 1_002.5).unwrap();
        assert!(!text.contains("publishes"), "{text}");
        assert!(!text.contains("module memory"), "{text}");
        let mut published = stats.clone();
        published.publish = flux_prometheus::stats::PublishStats::of(3, &[0.001, 0.002, 0.004]);
        published.publish_cpu = flux_prometheus::stats::PublishStats::of(3, &[0.001, 0.001, 0.003]);
        published.heap_bytes = 5 * 1024 * 1024 + 512 * 1024;
        published.resource_status = flux_prometheus::stats::ResourceStatusAsks {
            sent: 3,
            reused: 117,
            counted: 0,
        };
        for (name, times) in [
            ("hooks", [0.0001, 0.0001, 0.0002]),
            ("nodes", [0.0005, 0.0006, 0.0021]),
            ("jobs", [0.0002, 0.0002, 0.0003]),
        ] {
            published.publish_parts.insert(
                name.into(),
                flux_prometheus::stats::PublishStats::of(3, &times),
            );
        }
        let with = status(&published, 1_002.5).unwrap();
        assert!(
            with.contains(
                "dearest parts of a publish (CPU, max): nodes 2.10 ms (median 0.60 ms, 3 times), jobs 0.30 ms"
            ),
            "{with}"
        );
        assert!(
            with.contains(
                "3 publishes; broker time per publish: median 2.00 ms, p99 4.00 ms, max 4.00 ms (CPU: median 1.00 ms, p99 3.00 ms)"
            ),
            "{with}"
        );
        assert!(with.contains("module memory: 5.5 MiB allocated"), "{with}");
        assert!(
            with.contains("resource.status: 3 asked, 117 answered from the last answer (the resource journal showed no change)\n"),
            "{with}"
        );
        assert!(!text.contains("resource.status"), "{text}");
        assert!(!text.contains("HTTP thread"), "{text}");
        published.http_wakeup_slice_us = Some(100);
        let sliced = status(&published, 1_002.5).unwrap();
        assert!(
            sliced.contains("  HTTP thread: 100 µs time slice"),
            "{sliced}"
        );
        published.http_wakeup_slice_us = None;
        published.http_wakeup_slice_error = Some("Operation not permitted (os error 1)".into());
        let refused = status(&published, 1_002.5).unwrap();
        assert!(
            refused.contains("a short one was refused: Operation not permitted (os error 1)"),
            "{refused}"
        );
        published.http_wakeup_slice_error = None;
        published.resource_status.counted = 120;
        let faked = status(&published, 1_002.5).unwrap();
        assert!(
            faked.contains(
                "showed no change; 120 request counts taken, as some rank has no broker)\n"
            ),
            "{faked}"
        );
        assert!(
            text.contains("jobs       ok      last update 2s ago"),
            "{text}"
        );
        assert!(
            text.contains("queues     FAILING last update 10m 2s ago: down"),
            "{text}"
        );
        assert!(text.contains("broker     FAILING no update yet"), "{text}");
        assert!(!text.contains("1000"), "{text}");
        assert_eq!(ago(1_000.0, 1_000.4), "just now");
    }
}
