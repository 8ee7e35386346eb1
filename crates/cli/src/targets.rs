//! `flux prometheus targets`: file_sd JSON for this instance and every
//! nested instance below it that runs the module, found by walking the
//! running jobs from the command line.

use serde_json::{json, Value};

use crate::flux::{flux_command, module_stats};
use crate::scrape_config::target_of;
use crate::{Failure, Outcome};

/// A nested instance deeper than this is not looked into.
const MAX_DEPTH: usize = 16;

/// `targets`: every instance's target group.
pub fn run() -> Outcome {
    let mut groups = Vec::new();
    collect_targets(None, "", 0, &mut groups)?;
    serde_json::to_string_pretty(&groups).map_err(|e| Failure(e.to_string()))
}

/// Appends a file_sd target group for the instance at `uri` (if it runs
/// the module) and, recursively, for every running job that is itself a
/// Flux instance.
fn collect_targets(
    uri: Option<&str>,
    jobids: &str,
    depth: usize,
    groups: &mut Vec<Value>,
) -> Result<(), Failure> {
    match module_stats(uri) {
        Ok(stats) => {
            let target = target_of(&stats)?;
            let (target, path, scheme) = (target.address, target.path, target.scheme);
            let level = flux_command(uri, &["getattr", "instance-level"])?;
            let mut labels =
                json!({ "__metrics_path__": path, "flux_instance_level": level.trim() });
            if scheme == "https" {
                labels["__scheme__"] = json!(scheme);
            }
            if !jobids.is_empty() {
                labels["flux_jobid"] = json!(jobids);
            }
            groups.push(json!({ "targets": [target], "labels": labels }));
        }
        // The top instance must run the module; nested ones may not.
        Err(e) if depth == 0 => return Err(e),
        Err(_) => {}
    }
    if depth >= MAX_DEPTH {
        return Ok(());
    }
    // Only {uri}: flux jobs prints nothing for a job that is no instance,
    // but {uri.local} fails on one ('NoneType' object has no attribute
    // 'local'), so the local form is derived here.
    let jobs = flux_command(
        uri,
        &["jobs", "-A", "--filter=running", "-no", "{id.f58} {uri}"],
    )?;
    let here = flux_prometheus::hostname();
    for line in jobs.lines() {
        let mut words = line.split_whitespace();
        let (Some(id), Some(remote)) = (words.next(), words.next()) else {
            continue;
        };
        let Some(child) = child_uri(remote, &here) else {
            continue;
        };
        let path = if jobids.is_empty() {
            id.to_string()
        } else {
            format!("{jobids}/{id}")
        };
        // A child that cannot be reached (it just finished, say) is left
        // out rather than failing the whole walk.
        let _ = collect_targets(Some(&child), &path, depth + 1, groups);
    }
    Ok(())
}

/// How to reach a nested instance whose job reports `remote`: directly
/// (`local://PATH`) when it runs on this host, else through `remote`.
fn child_uri(remote: &str, here: &str) -> Option<String> {
    if !remote.contains("://") {
        return None;
    }
    match remote_host(remote) {
        Some(host) if host == here => {
            let rest = remote.strip_prefix("ssh://")?;
            let path = &rest[rest.find('/')?..];
            Some(format!("local://{path}"))
        }
        _ => Some(remote.to_string()),
    }
}

/// The host of an `ssh://[user@]HOST[:port]/path` URI.
fn remote_host(uri: &str) -> Option<&str> {
    let rest = uri.strip_prefix("ssh://")?;
    let authority = rest.split('/').next()?;
    let host = authority.rsplit('@').next()?;
    Some(host.split(':').next().unwrap_or(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_instance_hosts() {
        assert_eq!(remote_host("ssh://node7/tmp/flux-x/local-0"), Some("node7"));
        assert_eq!(remote_host("ssh://me@node7:2222/tmp/x"), Some("node7"));
        assert_eq!(remote_host("local:///tmp/x"), None);
        assert_eq!(
            child_uri("ssh://node7/tmp/flux-x/local-0", "node7").as_deref(),
            Some("local:///tmp/flux-x/local-0")
        );
        assert_eq!(
            child_uri("ssh://me@node7:22/tmp/x", "node1").as_deref(),
            Some("ssh://me@node7:22/tmp/x")
        );
        // An ordinary job has no URI; flux jobs prints nothing for it.
        assert_eq!(child_uri("", "node7"), None);
    }
}
