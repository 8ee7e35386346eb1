//! `flux prometheus`: the command that helps run the Prometheus side.
//!
//! Flux runs any `flux-NAME` on its command path as `flux NAME`, with
//! FLUX_URI set to the instance. This command reads the module through
//! `flux module stats prometheus` (the module's `prometheus.stats-get`) and
//! walks nested instances with `flux jobs`, so it needs no libflux of its
//! own; it talks to Prometheus over plain HTTP/1.1. One file a subcommand:
//! [`prometheus`] (reload, healthy, ready), [`status`], [`scrape_config`],
//! [`targets`] and [`jobstats`]; [`flux`] runs the `flux` command for them.

pub mod flux;
pub mod jobstats;
pub mod prometheus;
pub mod scrape_config;
pub mod status;
pub mod targets;

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
  jobstats [--json] JOBID
                  what a job used, per node and in total, with advice, from
                  its exec eventlog (the prometheus shell plugin's record)
  metrics [--format=markdown|rst]
                  the reference of every metric family the module can
                  export, by collector (rst: flux-prometheus-metrics(7)'s
                  source)

URL defaults to $PROMETHEUS_URL, then http://localhost:9090.";

/// A failure, as the one line the command prints.
#[derive(Debug, PartialEq, Eq)]
pub struct Failure(pub String);

/// What to print, or why not.
pub type Outcome = Result<String, Failure>;

/// Runs one command line (without the program name); returns what to print.
pub fn run(args: &[String]) -> Outcome {
    match args {
        [] => Err(Failure(format!("no command given\n{USAGE}"))),
        [cmd, ..] if cmd == "-h" || cmd == "--help" || cmd == "help" => Ok(USAGE.to_string()),
        [cmd, rest @ ..] => match cmd.as_str() {
            "reload" => prometheus::reload(&prometheus::url_argument(rest)?),
            "healthy" => prometheus::probe(&prometheus::url_argument(rest)?, "/-/healthy"),
            "ready" => prometheus::probe(&prometheus::url_argument(rest)?, "/-/ready"),
            "status" => status::run(rest),
            "scrape-config" => scrape_config::run(rest),
            "targets" if rest.is_empty() => targets::run(),
            "targets" => Err(Failure("targets takes no arguments".into())),
            "metrics" => metrics(rest),
            "jobstats" => jobstats::run(rest),
            other => Err(Failure(format!("unknown command '{other}'\n{USAGE}"))),
        },
    }
}

/// `metrics [--format=markdown|rst]`: the metrics reference.
fn metrics(args: &[String]) -> Outcome {
    use flux_prometheus::reference::{self, Format};
    let format = match args {
        [] => Format::Markdown,
        [arg] => {
            let value = arg.strip_prefix("--format=").ok_or_else(|| {
                Failure(format!(
                    "metrics takes only --format=markdown|rst, not '{arg}'"
                ))
            })?;
            value
                .parse()
                .map_err(|e: reference::UnknownFormat| Failure(e.to_string()))?
        }
        _ => return Err(Failure("metrics takes only --format=markdown|rst".into())),
    };
    let mut text = reference::write(format);
    // The command prints a newline after what it is given.
    text.truncate(text.trim_end().len());
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_commands_and_extra_arguments_are_refused() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let Failure(msg) = run(&args(&["frobnicate"])).unwrap_err();
        assert!(msg.starts_with("unknown command 'frobnicate'"));
        let Failure(msg) = run(&args(&["reload", "a", "b"])).unwrap_err();
        assert!(msg.contains("too many arguments"));
        let Failure(msg) = run(&args(&["status", "x"])).unwrap_err();
        assert!(msg.contains("status takes no arguments but --json"));
        let Failure(msg) = run(&args(&["metrics", "--format=html"])).unwrap_err();
        assert_eq!(
            msg,
            "unknown format 'html': the reference is written as markdown or rst"
        );
    }

    #[test]
    fn metrics_prints_the_reference_docs_metrics_md_holds() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let printed = run(&args(&["metrics"])).unwrap();
        let committed = include_str!("../../../docs/metrics.md");
        assert_eq!(format!("{printed}\n"), committed);
    }
}
