//! The module on broker ranks other than 0: no HTTP port, no collectors,
//! only the [`Sampler`] of the jobs running on this node, which sends rank
//! 0 one batch per sampling period. `flux module stats prometheus` on the
//! rank shows what it does; `flux config reload` changes its period.

use std::cell::RefCell;
use std::rc::Rc;

use crate::collectors::CATALOG;
use crate::config::{self, Config};
use crate::sampler::Sampler;
use flux::{Error, Handle, Level, ModuleInstance, MsgHandler};

pub struct NodeModule {
    /// Dropped before the sampler: no request reaches a sampler that is gone.
    handlers: Vec<MsgHandler>,
    sampler: Rc<RefCell<Option<Sampler>>>,
}

impl ModuleInstance for NodeModule {
    fn abandon(mut self: Box<Self>) {
        // The handle is closed: Flux objects are leaked, not destroyed.
        std::mem::forget(std::mem::take(&mut self.handlers));
        std::mem::forget(self.sampler.borrow_mut().take());
    }
}

/// The configuration in force: the broker config's `[prometheus]` table,
/// overridden by the module's arguments.
fn read_config(broker_config: &str, args: &[String], level: u32) -> Result<Config, Error> {
    let invalid = |e: config::ConfigError| Error::new(libc::EINVAL, e.to_string());
    Config::from_args(args, level, CATALOG).map_err(invalid)?;
    let table = config::table_args(broker_config).map_err(invalid)?;
    config::effective_config(&table, args, level, CATALOG).map_err(invalid)
}

/// Starts the module's part on a rank other than 0.
pub fn start(h: Handle, args: Vec<String>) -> Result<Box<dyn ModuleInstance>, Error> {
    let level: u32 = h
        .attr("instance-level")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if let Some(version) = h.attr("version") {
        config::check_flux_version(&version)
            .map_err(|e| Error::new(libc::ENOTSUP, e.to_string()))?;
    }
    let config = read_config(&h.rpc_wait("config.get", "{}")?, &args, level)?;
    let sampler = Rc::new(RefCell::new(Some(Sampler::start(
        h,
        config.sample_interval,
        config.job_cgroups,
    )?)));
    let name = h.module_name().unwrap_or_else(|| "prometheus".into());
    let stats_of = Rc::clone(&sampler);
    let stats = h.handle_requests(&format!("{name}.stats-get"), true, move |request| {
        let stats = stats_of.borrow().as_ref().map(Sampler::stats);
        match serde_json::to_string(&serde_json::json!({ "sampler": stats })) {
            Ok(text) => request.respond(&text),
            Err(e) => request.respond_error(libc::EIO, &e.to_string()),
        }
    })?;
    let reload_of = Rc::clone(&sampler);
    let reload = h.handle_requests(&format!("{name}.config-reload"), false, move |request| {
        let payload = request
            .payload()
            .ok()
            .flatten()
            .unwrap_or_else(|| "{}".into());
        let outcome = read_config(&payload, &args, level).and_then(|config| {
            reload_of.borrow().as_ref().map_or(Ok(()), |s| {
                s.set_job_cgroups(config.job_cgroups);
                s.set_period(config.sample_interval)
            })
        });
        match outcome {
            Ok(()) => request.respond("{}"),
            Err(e) => {
                h.log(Level::Err, &format!("config reload refused: {}", e.message));
                request.respond_error(e.errno, &e.message);
            }
        }
    })?;
    h.log(
        Level::Debug,
        &format!(
            "sampling this node's jobs every {} s for rank 0",
            config.sample_interval.as_secs_f64()
        ),
    );
    Ok(Box::new(NodeModule {
        handlers: vec![stats, reload],
        sampler,
    }))
}
