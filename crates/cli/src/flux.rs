//! The instance, through the `flux` command: this command links no
//! libflux, so it runs `flux` as a person would (`$FLUX_PROMETHEUS_FLUX`
//! names another, for tests).

use std::process::Command;

use flux_prometheus::stats::ModuleStats;

use crate::Failure;

/// The module's `prometheus.stats-get` answer, in the instance at `uri`
/// (FLUX_URI's when None).
pub fn module_stats(uri: Option<&str>) -> Result<ModuleStats, Failure> {
    let out = flux_command(uri, &["module", "stats", "prometheus"])?;
    ModuleStats::parse(&out).map_err(|e| Failure(e.to_string()))
}

/// What `flux ARGS` printed, in the instance at `uri`; its last error line
/// where it failed.
pub fn flux_command(uri: Option<&str>, args: &[&str]) -> Result<String, Failure> {
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
