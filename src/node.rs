//! The module on broker ranks other than 0: no HTTP port, no collectors,
//! only the [`Sampler`] of the jobs running on this node, which makes one
//! batch per sampling period, and the [`Relay`] that sends it on up the
//! overlay tree with the batches of the ranks below. `flux module stats
//! prometheus` on the rank shows what they do; `flux config reload`
//! changes their period.

use std::cell::RefCell;
use std::rc::Rc;

use crate::collectors::CATALOG;
use crate::config::{self, Config};
use crate::relay::Relay;
use crate::sampler::Sampler;
use flux::{Error, Handle, Level, ModuleInstance, MsgHandler};

pub struct NodeModule {
    /// Dropped before the sampler: no request reaches a sampler that is gone.
    handlers: Vec<MsgHandler>,
    sampler: Rc<RefCell<Option<Sampler>>>,
    relay: Option<Rc<Relay>>,
}

impl ModuleInstance for NodeModule {
    fn abandon(mut self: Box<Self>) {
        // The handle is closed: Flux objects are leaked, not destroyed.
        std::mem::forget(std::mem::take(&mut self.handlers));
        std::mem::forget(self.sampler.borrow_mut().take());
        std::mem::forget(self.relay.take());
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
    let relay = Relay::start(h, config.sample_interval)?;
    let sampler = Rc::new(RefCell::new(Some(Sampler::start(
        h,
        config.sample_interval,
        config.job_cgroups,
        Some(Rc::clone(&relay)),
    )?)));
    let name = h.module_name().unwrap_or_else(|| "prometheus".into());
    let stats_of = Rc::clone(&sampler);
    let relay_of = Rc::clone(&relay);
    let stats = h.handle_requests(&format!("{name}.stats-get"), true, move |request| {
        let stats = stats_of.borrow().as_ref().map(Sampler::stats);
        let relay = relay_of.stats();
        match serde_json::to_string(&serde_json::json!({ "sampler": stats, "relay": relay })) {
            Ok(text) => request.respond(&text),
            Err(e) => request.respond_error(libc::EIO, &e.to_string()),
        }
    })?;
    let reload_of = Rc::clone(&sampler);
    let relay_reload = Rc::clone(&relay);
    let reload = h.handle_requests(&format!("{name}.config-reload"), false, move |request| {
        let payload = request
            .payload()
            .ok()
            .flatten()
            .unwrap_or_else(|| "{}".into());
        let outcome = read_config(&payload, &args, level).and_then(|config| {
            relay_reload.set_period(config.sample_interval);
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
            "sampling this node's jobs every {} s, sent on upstream every {} s",
            config.sample_interval.as_secs_f64(),
            crate::relay::delay(config.sample_interval.as_secs_f64())
        ),
    );
    Ok(Box::new(NodeModule {
        handlers: vec![stats, reload],
        sampler,
        relay: Some(relay),
    }))
}
