//! The module's life: parse arguments, bind, start the HTTP thread and the
//! collectors, run the reactor, and take everything down again.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::rc::Rc;
use std::sync::Arc;

use serde_json::json;

use crate::collectors::{
    broker::BrokerCollector, jobflow::JobFlowCollector, jobs::JobsCollector,
    queues::QueuesCollector, resources::ResourcesCollector, Context,
};
use crate::config::Config;
use crate::exposition::Shared;
use crate::flux::{Error, Handle, Level, ModuleInstance, MsgHandler};
use crate::http::{Server, METRICS_PATH};
use crate::webconfig::WebConfig;

/// The collectors that are running; dropping one stops it.
#[allow(dead_code)]
enum Running {
    Jobs(JobsCollector),
    Resources(ResourcesCollector),
    Queues(QueuesCollector),
    Broker(BrokerCollector),
    JobFlow(JobFlowCollector),
}

fn start_collector(name: &str, ctx: &Rc<Context>, config: &Config) -> Result<Running, Error> {
    let poll_interval = config.poll_interval;
    match name {
        crate::collectors::jobs::NAME => Ok(Running::Jobs(JobsCollector::start(
            Rc::clone(ctx),
            poll_interval,
        )?)),
        crate::collectors::resources::NAME => Ok(Running::Resources(ResourcesCollector::start(
            Rc::clone(ctx),
            poll_interval,
        )?)),
        crate::collectors::queues::NAME => Ok(Running::Queues(QueuesCollector::start(
            Rc::clone(ctx),
            poll_interval,
        )?)),
        crate::collectors::broker::NAME => Ok(Running::Broker(BrokerCollector::start(
            Rc::clone(ctx),
            poll_interval,
        )?)),
        crate::collectors::jobflow::NAME => Ok(Running::JobFlow(JobFlowCollector::start(
            Rc::clone(ctx),
            &config.wait_buckets,
            &config.run_buckets,
            config.jobflow_labels.clone(),
        )?)),
        other => Err(Error::new(
            libc::EINVAL,
            format!("unknown collector {other}"),
        )),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// The URL a scraper uses: the bound address, or this host's name where the
/// module listens on every address.
pub fn metrics_url(scheme: &str, addr: SocketAddr, host: &str) -> String {
    match addr.ip() {
        ip if ip.is_unspecified() => format!("{scheme}://{host}:{}{METRICS_PATH}", addr.port()),
        IpAddr::V6(ip) => format!("{scheme}://[{ip}]:{}{METRICS_PATH}", addr.port()),
        IpAddr::V4(ip) => format!("{scheme}://{ip}:{}{METRICS_PATH}", addr.port()),
    }
}

fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr).map_err(|e| {
        let errno = e.raw_os_error().unwrap_or(libc::EIO);
        let hint = if errno == libc::EADDRINUSE {
            " (another process, or another instance's module, listens there; choose another with listen=HOST:PORT, or port 0 for any free port)"
        } else {
            ""
        };
        Error::new(errno, format!("cannot listen on {addr}: {}{hint}", crate::flux::strerror(errno)))
    })
}

fn instance_description(h: &Handle) -> String {
    let level = h.attr("instance-level").unwrap_or_else(|| "0".into());
    let size = h
        .size()
        .map(|s| s.to_string())
        .unwrap_or_else(|_| "?".into());
    match h.attr("jobid") {
        Some(jobid) => format!(
            "on {} (level {level}, {size} brokers, job {jobid})",
            hostname()
        ),
        None => format!("on {} (level {level}, {size} brokers)", hostname()),
    }
}

fn stats_json(ctx: &Context, shared: &Shared, url: &str) -> String {
    let state = ctx.state();
    let collectors: serde_json::Map<String, serde_json::Value> = state
        .collectors
        .iter()
        .map(|c| {
            let mut status = json!({
                "healthy": c.up,
                "last_update": c.last_success,
                "duration": c.duration,
                "updates": c.updates,
                "error": c.last_error,
            });
            if let Some(source) = c.source {
                status["source"] = source.into();
            }
            (c.name.to_string(), status)
        })
        .collect();
    let web = shared.web();
    json!({
        "url": url,
        "version": crate::render::VERSION,
        "collectors": collectors,
        "basic_auth": web.users.is_some(),
        "tls": web.tls.is_some(),
        "web_config": web.source,
    })
    .to_string()
}

/// The running module: the HTTP thread and everything on the reactor side.
struct Module {
    /// Collectors, request handlers and their shared context; all Flux.
    flux_side: Option<FluxSide>,
    server: Server,
}

struct FluxSide {
    _collectors: Vec<Running>,
    _stats: MsgHandler,
    _ctx: Rc<Context>,
}

impl Drop for Module {
    fn drop(&mut self) {
        // Collectors and handlers first (they hold futures and watchers on
        // the still-open handle), then the HTTP thread is stopped and joined.
        self.flux_side.take();
        self.server.shutdown();
    }
}

impl ModuleInstance for Module {
    fn abandon(mut self: Box<Self>) {
        // The broker has closed the handle: destroying a future or watcher
        // now would touch freed memory, so they are leaked. The HTTP thread
        // must still end before the broker unloads this code.
        std::mem::forget(self.flux_side.take());
        self.server.shutdown();
    }
}

/// Starts the module, as `mod_main` does: parse arguments, bind, start the
/// HTTP thread and the collectors. The reactor then runs until removal.
pub fn start(h: Handle, args: Vec<String>) -> Result<Box<dyn ModuleInstance>, Error> {
    let level: u32 = h
        .attr("instance-level")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let config = Config::from_args(&args, level).map_err(|e| Error::new(libc::EINVAL, e.0))?;
    let web = match &config.web_config {
        Some(path) => WebConfig::load(path).map_err(|e| Error::new(libc::EINVAL, e))?,
        None => WebConfig::default(),
    };
    let scheme = if web.tls.is_some() { "https" } else { "http" };
    let listener = bind(config.listen)?;
    let shared = Shared::new(instance_description(&h));
    shared.set_web(web);
    let server = Server::start(listener, Arc::clone(&shared)).map_err(|e| {
        Error::new(
            e.raw_os_error().unwrap_or(libc::EIO),
            format!("cannot start the HTTP thread: {e}"),
        )
    })?;
    let url = metrics_url(scheme, server.local_addr(), &hostname());
    // Should a collector fail to start, `server` is dropped here, which
    // stops and joins its thread.
    let flux_side = start_flux_side(h, &config, shared, &url)?;
    h.log(Level::Info, &format!("serving metrics at {url}"));
    Ok(Box::new(Module {
        flux_side: Some(flux_side),
        server,
    }))
}

fn start_flux_side(
    h: Handle,
    config: &Config,
    shared: Arc<Shared>,
    url: &str,
) -> Result<FluxSide, Error> {
    let stats_shared = Arc::clone(&shared);
    let ctx = Context::new(h, shared, &config.collectors)?;
    ctx.update(|state| state.per_node = config.per_node);
    ctx.publish_now();
    let mut collectors = Vec::new();
    for name in &config.collectors {
        collectors.push(start_collector(name, &ctx, config)?);
    }
    let name = h.module_name().unwrap_or_else(|| "prometheus".into());
    let stats_ctx = Rc::clone(&ctx);
    let stats_url = url.to_string();
    let stats = h.handle_requests(&format!("{name}.stats-get"), true, move |request| {
        request.respond(&stats_json(&stats_ctx, &stats_shared, &stats_url));
    })?;
    Ok(FluxSide {
        _collectors: collectors,
        _stats: stats,
        _ctx: ctx,
    })
}
