//! `flux prometheus`: the command that helps run the Prometheus side.
//!
//! Flux runs any `flux-NAME` on its command path as `flux NAME`, with
//! FLUX_URI set to the instance. This command reads the module through
//! `flux module stats prometheus` (the module's `prometheus.stats-get`) and
//! walks nested instances with `flux jobs`, so it needs no libflux of its
//! own; it talks to Prometheus over plain HTTP/1.1.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use flux_prometheus::stats::ModuleStats;

pub const DEFAULT_PROMETHEUS_URL: &str = "http://localhost:9090";
const TIMEOUT: Duration = Duration::from_secs(10);
/// A nested instance deeper than this is not looked into.
const MAX_DEPTH: usize = 16;

pub const USAGE: &str = "\
Usage: flux prometheus COMMAND [ARGS]

Commands for the Prometheus side of a Flux instance running the prometheus
module.

  reload [URL]    ask Prometheus to reload its configuration (POST /-/reload)
  healthy [URL]   ask Prometheus whether it is healthy (GET /-/healthy)
  ready [URL]     ask Prometheus whether it is ready (GET /-/ready)
  status [--json] the module's URL and the health of each collector (--json:
                  the module's own answer, with epoch timestamps)
  scrape-config [--nested]
                  a prometheus.yml scrape job for this instance (--nested:
                  and one that finds every nested instance running the
                  module through this one's /-/targets, as it changes)
  targets         file_sd JSON for this instance and every nested instance
                  that runs the module

URL defaults to $PROMETHEUS_URL, then http://localhost:9090.";

/// A failure, as the one line the command prints.
#[derive(Debug, PartialEq, Eq)]
pub struct Failure(pub String);

type Outcome = Result<String, Failure>;

/// Runs one command line (without the program name); returns what to print.
pub fn run(args: &[String]) -> Outcome {
    let url_arg = |rest: &[String]| -> Result<String, Failure> {
        match rest {
            [] => Ok(std::env::var("PROMETHEUS_URL")
                .ok()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| DEFAULT_PROMETHEUS_URL.to_string())),
            [url] => Ok(url.clone()),
            _ => Err(Failure(
                "too many arguments (expected at most one URL)".into(),
            )),
        }
    };
    let no_args = |rest: &[String], name: &str| {
        if rest.is_empty() {
            Ok(())
        } else {
            Err(Failure(format!("{name} takes no arguments")))
        }
    };
    match args {
        [] => Err(Failure(format!("no command given\n{USAGE}"))),
        [cmd, ..] if cmd == "-h" || cmd == "--help" || cmd == "help" => Ok(USAGE.to_string()),
        [cmd, rest @ ..] => match cmd.as_str() {
            "reload" => reload(&url_arg(rest)?),
            "healthy" => probe(&url_arg(rest)?, "/-/healthy"),
            "ready" => probe(&url_arg(rest)?, "/-/ready"),
            "status" => match rest {
                [] => status(&module_stats(None)?, now()),
                [flag] if flag == "--json" => serde_json::to_string_pretty(&module_stats(None)?)
                    .map_err(|e| Failure(e.to_string())),
                _ => Err(Failure("status takes no arguments but --json".into())),
            },
            "scrape-config" => match rest {
                [] => scrape_config(&module_stats(None)?),
                [flag] if flag == "--nested" => scrape_config_nested(&module_stats(None)?),
                _ => Err(Failure(
                    "scrape-config takes no arguments but --nested".into(),
                )),
            },
            "targets" => no_args(rest, cmd).and_then(|()| {
                let mut groups = Vec::new();
                collect_targets(None, "", 0, &mut groups)?;
                serde_json::to_string_pretty(&groups).map_err(|e| Failure(e.to_string()))
            }),
            other => Err(Failure(format!("unknown command '{other}'\n{USAGE}"))),
        },
    }
}

/// An http:// URL split into what a request needs.
#[derive(Debug, PartialEq, Eq)]
pub struct HttpUrl {
    pub host: String,
    pub port: u16,
    /// The path prefix Prometheus runs under (`--web.route-prefix`), no
    /// trailing slash.
    pub prefix: String,
}

pub fn parse_url(url: &str) -> Result<HttpUrl, Failure> {
    let bad = |why: &str| Failure(format!("bad URL '{url}': {why}"));
    let rest = match url.split_once("://") {
        Some(("http", rest)) => rest,
        Some(("https", _)) => {
            return Err(bad(
                "https is not supported; use the plain http address Prometheus listens on",
            ))
        }
        Some((scheme, _)) => return Err(bad(&format!("unsupported scheme '{scheme}'"))),
        None => return Err(bad("expected http://HOST[:PORT]")),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(bad("credentials in the URL are not supported"));
    }
    let port_of = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| bad("port is not a number from 0 to 65535"))
    };
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| bad("unclosed '['"))?;
        match after.strip_prefix(':') {
            Some(p) => (host, port_of(p)?),
            None if after.is_empty() => (host, 80),
            None => return Err(bad("junk after ']'")),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, port_of(p)?),
            None => (authority, 80),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    Ok(HttpUrl {
        host: host.to_string(),
        port,
        prefix: path.trim_end_matches('/').to_string(),
    })
}

/// The status code and body of one request to Prometheus at `url` (its
/// path prefix kept), with a timeout.
fn request(url: &str, method: &str, path: &str) -> Result<(u16, String), Failure> {
    let u = parse_url(url)?;
    let host = if u.host.contains(':') {
        format!("[{}]", u.host)
    } else {
        u.host.clone()
    };
    let full = format!("http://{host}:{}{}{path}", u.port, u.prefix);
    // A status is an answer to report, not a transport error.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(TIMEOUT))
        .user_agent(format!("flux-prometheus/{}", flux_prometheus::VERSION))
        .build()
        .into();
    let sent = match method {
        "POST" => agent.post(&full).send_empty(),
        _ => agent.get(&full).call(),
    };
    let unreachable = |e: ureq::Error| Failure(format!("cannot reach Prometheus at {url}: {e}"));
    let mut response = sent.map_err(unreachable)?;
    let code = response.status().as_u16();
    let body = response.body_mut().read_to_string().map_err(unreachable)?;
    Ok((code, body.trim().to_string()))
}

pub fn reload(url: &str) -> Outcome {
    let (code, body) = request(url, "POST", "/-/reload")?;
    match code {
        200 => Ok(format!("Prometheus at {url} reloaded its configuration")),
        403 if body.contains("Lifecycle API is not enabled") => Err(Failure(format!(
            "Prometheus at {url} was started without --web.enable-lifecycle, so it refuses \
             reloads over HTTP: add that flag to its command line (etc/prometheus/prometheus.service \
             has it), or send it SIGHUP (systemctl reload prometheus)"
        ))),
        500 => Err(Failure(format!(
            "Prometheus at {url} could not reload its configuration: {body}"
        ))),
        _ => Err(Failure(format!(
            "Prometheus at {url} answered the reload with HTTP {code}: {body}"
        ))),
    }
}

fn probe(url: &str, path: &str) -> Outcome {
    let (code, body) = request(url, "GET", path)?;
    if code == 200 {
        Ok(format!("{url}: {body}"))
    } else {
        Err(Failure(format!("{url}: HTTP {code}: {body}")))
    }
}

/// The module's `prometheus.stats-get` answer, in the instance at `uri`
/// (FLUX_URI's when None).
fn module_stats(uri: Option<&str>) -> Result<ModuleStats, Failure> {
    let out = flux_command(uri, &["module", "stats", "prometheus"])?;
    ModuleStats::parse(&out).map_err(Failure)
}

fn flux_command(uri: Option<&str>, args: &[&str]) -> Result<String, Failure> {
    let mut cmd = Command::new(std::env::var("FLUX_PROMETHEUS_FLUX").unwrap_or("flux".into()));
    cmd.args(args);
    if let Some(uri) = uri {
        cmd.env("FLUX_URI", uri);
    }
    let out = cmd
        .output()
        .map_err(|e| Failure(format!("cannot run flux: {e}")))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let err = err.lines().last().unwrap_or("").trim();
    if args.starts_with(&["module", "stats"])
        && [
            "No service matching",
            "No such file",
            "Function not implemented",
        ]
        .iter()
        .any(|sign| err.contains(sign))
    {
        return Err(Failure(
            "the prometheus module is not loaded in this instance (flux module load prometheus)"
                .into(),
        ));
    }
    Err(Failure(format!("flux {}: {err}", args.join(" "))))
}

/// Seconds since the epoch, as the module's timestamps are.
fn now() -> f64 {
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

/// host:port, path and scheme of the module's metrics URL.
fn target_of(stats: &ModuleStats) -> Result<(String, String, &'static str), Failure> {
    let url = stats
        .url
        .as_deref()
        .ok_or_else(|| match &stats.listen_error {
            Some(why) => Failure(format!("the module does not serve yet: {why}")),
            None => Failure("prometheus.stats-get: no url in the answer".into()),
        })?;
    let (u, scheme) = match url.strip_prefix("https://") {
        Some(rest) => (parse_url(&format!("http://{rest}"))?, "https"),
        None => (parse_url(url)?, "http"),
    };
    let host = if u.host.contains(':') {
        format!("[{}]:{}", u.host, u.port)
    } else {
        format!("{}:{}", u.host, u.port)
    };
    let path = if u.prefix.is_empty() {
        "/metrics".to_string()
    } else {
        u.prefix
    };
    Ok((host, path, scheme))
}

/// The collectors whose series grow with the cluster and the running jobs:
/// where the module runs them, they get a scrape job of their own, at a
/// slower interval (node_exporter's `collect[]`).
const DETAIL_COLLECTORS: [&str; 2] = ["nodes", "jobmap"];

/// How often the per-node and per-job series are scraped.
const DETAIL_INTERVAL: &str = "60s";

pub fn scrape_config(stats: &ModuleStats) -> Outcome {
    let (target, path, scheme) = target_of(stats)?;
    let detail: Vec<&str> = DETAIL_COLLECTORS
        .into_iter()
        .filter(|name| stats.collectors.contains_key(*name))
        .collect();
    let mut auth = String::new();
    if scheme == "https" {
        auth.push_str(
            "    scheme: https\n    tls_config:\n      ca_file: /etc/prometheus/flux-ca.pem  # the CA that signed the module's certificate\n",
        );
    }
    if stats.basic_auth {
        auth.push_str(
            "    basic_auth:\n      username: prometheus  # a user of the module's web-config\n      password_file: /etc/prometheus/flux-scrape.password\n",
        );
    }
    let static_config = format!("    static_configs:\n      - targets: [\"{target}\"]\n");
    let mut out = format!("scrape_configs:\n  - job_name: flux\n    metrics_path: {path}\n");
    if !detail.is_empty() {
        out.push_str(&format!(
            "    params:\n      \"exclude[]\": [{}]\n",
            detail.join(", ")
        ));
    }
    out.push_str(&static_config);
    out.push_str(&auth);
    if !detail.is_empty() {
        out.push_str(&format!(
            "  # The per-node and per-job series ({}), which grow with the\n  # cluster and the running jobs, less often.\n  - job_name: flux-detail\n    scrape_interval: {DETAIL_INTERVAL}\n    scrape_timeout: 30s\n    metrics_path: {path}\n    params:\n      \"collect[]\": [{}]\n",
            detail.join(", "),
            detail.join(", ")
        ));
        out.push_str(&static_config);
        out.push_str(&auth);
    }
    Ok(out.trim_end().to_string())
}

/// The scrape job for this instance, and one for every nested instance
/// below it: Prometheus asks this module's `/-/targets` (http_sd) for them
/// at each refresh. Each target brings its scheme and metrics path, and
/// the labels `flux_jobid`, `flux_instance_level`, `flux_user` and
/// `flux_parent_jobid`. The discovery request and the scrapes use this
/// instance's credentials and CA: a site's modules share one web-config.
pub fn scrape_config_nested(stats: &ModuleStats) -> Outcome {
    let mut out = scrape_config(stats)?;
    let (target, _, scheme) = target_of(stats)?;
    let indent =
        |text: &str, by: &str| -> String { text.lines().map(|l| format!("{by}{l}\n")).collect() };
    let mut auth = String::new();
    if scheme == "https" {
        auth.push_str("tls_config:\n  ca_file: /etc/prometheus/flux-ca.pem  # the CA that signed the modules' certificates\n");
    }
    if stats.basic_auth {
        auth.push_str("basic_auth:\n  username: prometheus  # a user of the modules' web-config\n  password_file: /etc/prometheus/flux-scrape.password\n");
    }
    out.push_str(&format!(
        "\n  - job_name: flux-nested\n    http_sd_configs:\n      - url: {scheme}://{target}{}\n        refresh_interval: 30s\n",
        flux_prometheus::http::TARGETS_PATH
    ));
    out.push_str(&indent(&auth, "        "));
    out.push_str(&indent(&auth, "    "));
    Ok(out.trim_end().to_string())
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
            let (target, path, scheme) = target_of(&stats)?;
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
    fn urls_name_what_is_wrong() {
        assert_eq!(
            parse_url("http://prom.example:9091/prefix/").unwrap(),
            HttpUrl {
                host: "prom.example".into(),
                port: 9091,
                prefix: "/prefix".into()
            }
        );
        assert_eq!(parse_url("http://[::1]:9090").unwrap().host, "::1");
        assert_eq!(parse_url("http://localhost").unwrap().port, 80);
        for (bad, why) in [
            ("localhost:9090", "expected http://"),
            ("ftp://x", "unsupported scheme 'ftp'"),
            ("https://x", "https is not supported"),
            ("http://x:99999", "port is not a number"),
            ("http://:9090", "no host"),
        ] {
            let Failure(msg) = parse_url(bad).unwrap_err();
            assert!(msg.contains(bad) && msg.contains(why), "{msg}");
        }
    }

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

    /// A one-shot HTTP server on loopback answering with `raw`.
    fn serve_once(raw: &'static [u8]) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            if let Ok((mut conn, _)) = listener.accept() {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(raw);
            }
        });
        url
    }

    #[test]
    fn prometheus_answers_plain_chunked_and_refusals_are_read() {
        let url = serve_once(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHello\r\n0\r\n\r\n",
        );
        assert_eq!(probe(&url, "/-/ready"), Ok(format!("{url}: Hello")));
        let url = serve_once(
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 29\r\n\r\nLifecycle API is not enabled.",
        );
        let Failure(msg) = reload(&url).unwrap_err();
        assert!(msg.contains("--web.enable-lifecycle"), "{msg}");
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", l.local_addr().unwrap())
        };
        let Failure(msg) = probe(&closed, "/-/healthy").unwrap_err();
        assert!(
            msg.starts_with(&format!("cannot reach Prometheus at {closed}")),
            "{msg}"
        );
    }

    #[test]
    fn scrape_config_uses_the_modules_address_and_auth() {
        let stats = ModuleStats {
            url: Some("http://node0:9475/metrics".into()),
            basic_auth: true,
            ..ModuleStats::default()
        };
        let yaml = scrape_config(&stats).unwrap();
        assert!(yaml.contains("targets: [\"node0:9475\"]"), "{yaml}");
        assert!(yaml.contains("metrics_path: /metrics"));
        assert!(yaml.contains("basic_auth:"));
        let open = scrape_config(&ModuleStats {
            url: Some("http://node0:9475/metrics".into()),
            ..ModuleStats::default()
        })
        .unwrap();
        assert!(!open.contains("basic_auth"));
    }

    #[test]
    fn scrape_config_scrapes_the_per_node_and_per_job_series_apart_and_slower() {
        let mut stats = ModuleStats {
            url: Some("http://node0:9475/metrics".into()),
            basic_auth: true,
            ..ModuleStats::default()
        };
        for name in ["jobs", "nodes", "jobmap"] {
            stats.collectors.insert(name.into(), Default::default());
        }
        let yaml = scrape_config(&stats).unwrap();
        let config: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).expect(&yaml);
        let jobs = config["scrape_configs"].as_sequence().expect(&yaml);
        assert_eq!(jobs.len(), 2, "{yaml}");
        let list = |job: &serde_yaml_ng::Value, key: &str| -> Vec<String> {
            job["params"][key]
                .as_sequence()
                .map(|l| {
                    l.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        assert_eq!(list(&jobs[0], "exclude[]"), ["nodes", "jobmap"], "{yaml}");
        assert_eq!(list(&jobs[1], "collect[]"), ["nodes", "jobmap"], "{yaml}");
        assert_eq!(jobs[1]["scrape_interval"].as_str(), Some("60s"));
        for job in jobs {
            assert_eq!(job["basic_auth"]["username"].as_str(), Some("prometheus"));
            assert_eq!(
                job["static_configs"][0]["targets"][0].as_str(),
                Some("node0:9475")
            );
        }
        // Without them, one job and no params.
        stats.collectors.remove("nodes");
        stats.collectors.remove("jobmap");
        let yaml = scrape_config(&stats).unwrap();
        assert!(
            !yaml.contains("params") && !yaml.contains("flux-detail"),
            "{yaml}"
        );
    }

    #[test]
    fn scrape_config_nested_adds_an_http_sd_job_with_the_same_auth() {
        let stats = ModuleStats {
            url: Some("https://node0:9475/metrics".into()),
            basic_auth: true,
            ..Default::default()
        };
        let yaml = scrape_config_nested(&stats).unwrap();
        let config: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).expect(&yaml);
        let jobs = config["scrape_configs"].as_sequence().expect(&yaml);
        assert_eq!(jobs.len(), 2, "{yaml}");
        let nested = &jobs[1];
        assert_eq!(nested["job_name"].as_str(), Some("flux-nested"));
        let sd = &nested["http_sd_configs"][0];
        assert_eq!(
            sd["url"].as_str(),
            Some("https://node0:9475/-/targets"),
            "{yaml}"
        );
        for place in [sd, nested] {
            assert_eq!(
                place["basic_auth"]["username"].as_str(),
                Some("prometheus"),
                "{yaml}"
            );
            assert!(place["tls_config"]["ca_file"].is_string(), "{yaml}");
        }
        let open = scrape_config_nested(&ModuleStats {
            url: Some("http://node0:9475/metrics".into()),
            ..Default::default()
        })
        .unwrap();
        assert!(
            !open.contains("basic_auth") && !open.contains("tls_config"),
            "{open}"
        );
        assert!(run(&["scrape-config".into(), "--bogus".into()]).is_err());
    }

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
        let with = status(&published, 1_002.5).unwrap();
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

    #[test]
    fn unknown_commands_and_extra_arguments_are_refused() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let Failure(msg) = run(&args(&["frobnicate"])).unwrap_err();
        assert!(msg.starts_with("unknown command 'frobnicate'"));
        let Failure(msg) = run(&args(&["reload", "a", "b"])).unwrap_err();
        assert!(msg.contains("too many arguments"));
        let Failure(msg) = run(&args(&["status", "x"])).unwrap_err();
        assert!(msg.contains("status takes no arguments but --json"));
    }
}
