//! The module's life, in order: [`start`] reads the arguments, binds,
//! starts the HTTP and user-name threads and the collectors, and answers
//! the module's own requests; the reactor runs; `Module`'s one teardown
//! path takes everything down again. A `flux config reload` in between is
//! `Live::reload`.

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::rc::Rc;
use std::sync::Arc;

use crate::access::Policy;
use crate::announce::Announcer;
use crate::stats::{CollectorStats, ModuleStats};

use crate::collectors::{self, Backoff, Collector, Context, Settings, CATALOG};
use crate::config::{self, Config, ConfigError};
use crate::exposition::Shared;
use crate::http::error::WebConfigError;
use crate::http::webconfig::WebConfig;
use crate::http::{Server, METRICS_PATH};
use crate::model::resources::queue_names;
use crate::names::NameService;
use crate::sampler::Sampler;
use flux::{Error, Handle, Level, ModuleInstance, MsgHandler, Timer};

/// What collectors are started or reconfigured with, from `config` and the
/// broker config's queues.
fn settings<'a>(config: &'a Config, queues: &'a [String]) -> Settings<'a> {
    Settings {
        poll_interval: config.poll_interval,
        options: &config.options,
        queues,
    }
}

/// Starts collector `name` as its registry entry says.
fn start_collector(
    name: &str,
    ctx: &Rc<Context>,
    settings: &Settings,
) -> Result<Box<dyn Collector>, Error> {
    let spec = collectors::find(name)
        .ok_or_else(|| Error::new(libc::EINVAL, format!("unknown collector {name}")))?;
    (spec.start)(Rc::clone(ctx), settings)
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
        Error::new(errno, format!("cannot listen on {addr}: {}{hint}", flux::strerror(errno)))
    })
}

fn instance_description(h: &Handle) -> String {
    let level = h.attr("instance-level").unwrap_or_else(|| "0".into());
    describe_instance(
        &crate::hostname(),
        &level,
        h.size().ok(),
        h.attr("jobid").as_deref(),
    )
}

/// The landing page's line about the instance, e.g. "on node0 (level 0,
/// 1 broker)".
pub fn describe_instance(
    host: &str,
    level: &str,
    size: Option<u32>,
    jobid: Option<&str>,
) -> String {
    let brokers = match size {
        Some(1) => "1 broker".to_string(),
        Some(n) => format!("{n} brokers"),
        None => "? brokers".to_string(),
    };
    match jobid {
        Some(jobid) => format!("on {host} (level {level}, {brokers}, job {jobid})"),
        None => format!("on {host} (level {level}, {brokers})"),
    }
}

fn stats_json(live: &Live) -> String {
    let Some(ctx) = &live.ctx else {
        return "{}".into();
    };
    let state = ctx.state();
    let collectors = state
        .collectors
        .iter()
        .map(|c| {
            let stats = CollectorStats {
                healthy: c.up,
                last_update: c.last_success,
                duration: c.duration,
                updates: c.updates,
                error: c.last_error.clone(),
                source: c.source.map(str::to_string),
                read_every: c.read_every.clone(),
            };
            (c.name.to_string(), stats)
        })
        .collect();
    let web = live.shared.web();
    let access = live.shared.access();
    let (publish, publish_cpu, publish_parts) = ctx.publish_stats();
    // Only while a server runs: one that could not listen has no thread.
    let slice = live
        .url
        .as_ref()
        .and_then(|_| live.shared.http_wakeup_slice());
    let stats = ModuleStats {
        url: live.url.clone(),
        listen_error: live.listen_error.clone(),
        version: crate::VERSION.to_string(),
        collectors,
        basic_auth: web.users.is_some(),
        tls: web.tls.is_some(),
        verifies_client_certs: web.verifies_client_certs,
        web_config: web.source.as_ref().map(|p| p.display().to_string()),
        private_mode: access.private.map(|r| r.key().to_string()),
        private_scrapers: access.scrapers.iter().cloned().collect(),
        private_basic_auth_users: web
            .users
            .as_ref()
            .map(|users| {
                users
                    .names()
                    .into_iter()
                    .filter(|name| access.scrapers.contains(*name))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        max_request_rate: live.shared.pacer.rate(),
        publish,
        publish_cpu,
        publish_parts,
        heap_bytes: crate::heap_bytes() as u64,
        resource_status: ctx.resource_status_asks(),
        http_wakeup_slice_us: slice
            .as_ref()
            .and_then(|s| s.as_ref().ok())
            .map(|d| d.as_micros() as u64),
        http_wakeup_slice_error: slice.and_then(Result::err).map(|refused| refused.0),
        sampler: live.sampler.as_ref().map(Sampler::stats),
    };
    serde_json::to_string(&stats).unwrap_or_else(|_| "{}".into())
}

/// The running module: its request handlers and everything they act on.
struct Module {
    live: Rc<RefCell<Live>>,
    handlers: Option<Vec<MsgHandler>>,
}

/// What a configuration change may replace: the collectors, the HTTP thread
/// (when the listen address changes) and the web settings.
struct Live {
    h: Handle,
    /// The module's own arguments, which override the broker config.
    args: Vec<String>,
    level: u32,
    config: Config,
    shared: Arc<Shared>,
    /// None while the listen address cannot be bound at instance start.
    server: Option<Server>,
    /// The metrics URL, once serving.
    url: Option<String>,
    /// Why the module does not serve yet (bind failed at instance start).
    listen_error: Option<String>,
    /// Binds again after a failure at instance start, with backoff.
    bind_retry: Option<Timer>,
    bind_backoff: Backoff,
    /// Flux objects: dropped before the server, or leaked on cancellation.
    ctx: Option<Rc<Context>>,
    /// The running collectors, by name; dropping one stops it.
    collectors: Vec<(&'static str, Box<dyn Collector>)>,
    /// The broker config's queues, as the collectors were last given them.
    queues: Vec<String>,
    /// In a nested instance: tells the parent where this one serves.
    announcer: Option<Rc<Announcer>>,
    /// Looks user names up off the reactor thread; stopped and joined at
    /// teardown, like the HTTP thread.
    names: Option<NameService>,
    /// Samples the jobs running on this node, as on every rank.
    sampler: Option<Sampler>,
}

/// How the module is taken down: in order, on the reactor thread with the
/// handle still open (`flux module remove`), or abandoned after the broker
/// cancelled the module thread and closed the handle.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Teardown {
    Orderly,
    Abandoned,
}

impl Module {
    /// The one teardown path. Handlers and collectors go first (they hold
    /// futures and watchers on the handle), then the HTTP and user-name
    /// threads are stopped and joined: no thread of the module may outlive
    /// it. Abandoned, every Flux object is leaked instead of destroyed,
    /// since destroying a future or watcher then would touch freed memory.
    fn teardown(&mut self, how: Teardown) {
        fn release<T>(value: T, how: Teardown) {
            match how {
                Teardown::Orderly => drop(value),
                Teardown::Abandoned => std::mem::forget(value),
            }
        }
        release(self.handlers.take(), how);
        let mut live = self.live.borrow_mut();
        release(std::mem::take(&mut live.collectors), how);
        release(live.ctx.take(), how);
        release(live.bind_retry.take(), how);
        release(live.sampler.take(), how);
        if let Some(announcer) = live.announcer.take() {
            match how {
                Teardown::Orderly => announcer.withdraw(),
                Teardown::Abandoned => announcer.abandon(),
            }
        }
        if let Some(server) = live.server.as_mut() {
            server.shutdown();
        }
        if let Some(names) = live.names.as_mut() {
            names.shutdown();
        }
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        self.teardown(Teardown::Orderly);
    }
}

impl ModuleInstance for Module {
    fn abandon(mut self: Box<Self>) {
        self.teardown(Teardown::Abandoned);
        // Drop then finds nothing left to release.
    }
}

/// Why a `flux config reload`, or binding again after a failed bind, did
/// not take: the configuration in force stays as it was.
#[derive(Debug, thiserror::Error)]
enum ReloadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Web(#[from] WebConfigError),
    /// The request itself could not be read.
    #[error("{0}")]
    Request(Error),
    #[error("{0}")]
    Listen(Error),
    #[error("cannot start the {what} thread: {source}")]
    Thread {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("the module is stopping")]
    Stopping,
}

/// The access rule of `config` on the instance whose broker config is
/// `broker_config` (its `access.private-mode`), and what the log should
/// say of it.
fn access_policy(
    config: &Config,
    broker_config: &str,
) -> Result<(Policy, Vec<String>), ConfigError> {
    let instance_private = config::instance_private_mode(broker_config)?;
    Ok(Policy::new(
        instance_private,
        config.private_mode,
        &config.private_scrapers,
    ))
}

fn load_web(config: &Config) -> Result<WebConfig, WebConfigError> {
    match &config.web_config {
        Some(path) => WebConfig::load(path),
        None => Ok(WebConfig::default()),
    }
}

impl Live {
    /// In a nested instance, writes where this one serves, and the
    /// instances below it, into its job's memo in the parent.
    fn announce(&self) {
        if let (Some(announcer), Some(url), Some(ctx)) = (&self.announcer, &self.url, &self.ctx) {
            announcer.announce(url, ctx.nested().descendants());
        }
    }

    /// Applies a new broker config (`flux config reload`). Everything that
    /// can fail is done first, so a bad config changes nothing.
    fn reload(&mut self, payload: &str) -> Result<(), ReloadError> {
        let table = config::table_args(payload)?;
        let queues = queue_names(payload);
        let config = config::effective_config(&table, &self.args, self.level, CATALOG)?;
        let (policy, said) = access_policy(&config, payload)?;
        let web = load_web(&config)?;
        let scheme = if web.tls.is_some() { "https" } else { "http" };
        let listener = if config.listen != self.config.listen {
            Some(bind(config.listen).map_err(ReloadError::Listen)?)
        } else {
            None
        };
        self.shared.set_web(web);
        if policy != *self.shared.access() {
            for said in said {
                self.h.log(Level::Info, &said);
            }
            self.shared.set_access(policy);
        }
        if config.max_request_rate != self.config.max_request_rate {
            self.shared.pacer.set_rate(config.max_request_rate);
        }
        if let Some(sampler) = &self.sampler {
            sampler
                .set_period(config.sample_interval)
                .map_err(ReloadError::Request)?;
            sampler.set_job_cgroups(config.job_cgroups);
        }
        if let Some(listener) = listener {
            self.serve(listener, scheme)?;
        } else if let Some(server) = &self.server {
            self.url = Some(metrics_url(scheme, server.local_addr(), &crate::hostname()));
        }
        let ctx = self.ctx.clone().ok_or(ReloadError::Stopping)?;
        ctx.set_publish_intervals(config.publish_interval, config.busy_publish_interval);
        // Collectors whose options are unchanged keep running (and their
        // counters); the others are stopped, and started again if wanted.
        let old = std::mem::take(&mut self.collectors);
        let before = settings(&self.config, &self.queues);
        let after = settings(&config, &queues);
        let mut kept = Vec::new();
        for (name, running) in old {
            let restart =
                collectors::find(name).is_none_or(|spec| (spec.restart_needed)(&before, &after));
            if config.collectors.contains(&name) && !restart {
                // flux config reload may have added queues, or changed an
                // option the collector takes as it runs.
                running.reconfigure(&after);
                kept.push((name, running));
            } else {
                drop(running);
                ctx.update(|state| state.forget(name));
            }
        }
        ctx.update(|state| state.set_collectors(&config.collectors));
        for name in &config.collectors {
            if kept.iter().all(|(n, _)| n != name) {
                match start_collector(name, &ctx, &after) {
                    Ok(running) => kept.push((name, running)),
                    Err(e) => ctx.failed(name, &e.message, |_| {}),
                }
            }
        }
        self.collectors = kept;
        self.config = config;
        self.queues = queues;
        // A scrape right after `flux config reload` returns sees the change.
        ctx.publish_now();
        self.announce();
        let serving = match &self.url {
            Some(url) => format!("serving metrics at {url}"),
            None => format!(
                "not serving yet: {}",
                self.listen_error.as_deref().unwrap_or("")
            ),
        };
        self.h
            .log(Level::Info, &format!("configuration reloaded; {serving}"));
        Ok(())
    }

    /// Serves on `listener` from a new HTTP thread, replacing the old one
    /// (if any) only once the new one runs.
    fn serve(&mut self, listener: TcpListener, scheme: &str) -> Result<(), ReloadError> {
        let server = Server::start(listener, Arc::clone(&self.shared)).map_err(|source| {
            ReloadError::Thread {
                what: "HTTP",
                source,
            }
        })?;
        self.url = Some(metrics_url(scheme, server.local_addr(), &crate::hostname()));
        if let Some(mut old) = self.server.replace(server) {
            old.shutdown();
        }
        self.listen_error = None;
        if let Some(timer) = &self.bind_retry {
            timer.stop();
        }
        Ok(())
    }

    /// After a failed bind at instance start: tries the listen address
    /// again, and schedules the next try with backoff while it fails.
    fn retry_bind(&mut self) {
        if self.server.is_some() {
            return;
        }
        let scheme = if self.shared.web().tls.is_some() {
            "https"
        } else {
            "http"
        };
        let outcome = bind(self.config.listen)
            .map_err(ReloadError::Listen)
            .and_then(|listener| self.serve(listener, scheme));
        match outcome {
            Ok(()) => {
                self.h.log(
                    Level::Info,
                    &format!(
                        "serving metrics at {} (the listen address is free now)",
                        self.url.as_deref().unwrap_or("")
                    ),
                );
                self.announce();
            }
            Err(why) => {
                let delay = self.bind_backoff.next_delay();
                self.listen_error = Some(format!("{why}; trying again in {delay} s"));
                if let Some(timer) = &self.bind_retry {
                    timer.restart(delay, 0.0);
                }
            }
        }
    }
}

/// Whether the broker is starting the instance (rc1), when a monitoring
/// module must not fail the start: the broker's state is still "join" or
/// "init" then, and "run" once a person can type `flux module load`.
fn at_instance_start(h: &Handle) -> bool {
    h.rpc_wait("state-machine.get", "{}")
        .ok()
        .and_then(|answer| serde_json::from_str::<serde_json::Value>(&answer).ok())
        .and_then(|answer| answer["state"].as_str().map(str::to_string))
        .is_some_and(|state| state == "join" || state == "init")
}

/// What the module starts with: the configuration in force, and the web
/// settings and broker config it came from.
struct Arguments {
    args: Vec<String>,
    level: u32,
    config: Config,
    web: WebConfig,
    /// Who may see series naming users and jobs.
    access: Policy,
    /// The broker config's queues.
    queues: Vec<String>,
}

impl Arguments {
    /// Checks the broker's version, then reads the module's arguments and
    /// the broker config's `[prometheus]` table; the arguments alone
    /// first, so that their errors are named as theirs.
    fn read(h: &Handle, args: Vec<String>) -> Result<Arguments, Error> {
        let invalid = |e: String| Error::new(libc::EINVAL, e);
        let level: u32 = h
            .attr("instance-level")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if let Some(version) = h.attr("version") {
            config::check_flux_version(&version)
                .map_err(|e| Error::new(libc::ENOTSUP, e.to_string()))?;
        }
        Config::from_args(&args, level, CATALOG).map_err(|e| invalid(e.to_string()))?;
        let broker_config = h.rpc_wait("config.get", "{}")?;
        let table = config::table_args(&broker_config).map_err(|e| invalid(e.to_string()))?;
        let config = config::effective_config(&table, &args, level, CATALOG)
            .map_err(|e| invalid(e.to_string()))?;
        for said in config.deprecations() {
            h.log(Level::Warning, &said);
        }
        let web = load_web(&config).map_err(|e| invalid(e.to_string()))?;
        let (access, said) =
            access_policy(&config, &broker_config).map_err(|e| invalid(e.to_string()))?;
        for said in said {
            h.log(Level::Info, &said);
        }
        Ok(Arguments {
            args,
            level,
            config,
            web,
            access,
            queues: queue_names(&broker_config),
        })
    }
}

/// Binds the listen address. At instance start a port that is taken must
/// not fail the instance: the module stays loaded, says why, and binds
/// once the port frees (the error is then returned beside no listener). A
/// person's `flux module load` fails at once instead.
fn bind_or_defer(
    h: &Handle,
    addr: SocketAddr,
) -> Result<(Option<TcpListener>, Option<String>), Error> {
    match bind(addr) {
        Ok(listener) => Ok((Some(listener), None)),
        Err(e) if at_instance_start(h) => {
            h.log(
                Level::Err,
                &format!(
                    "{}; the instance starts anyway and the module tries again, from {} s up to every {} s",
                    e.message,
                    Backoff::FIRST,
                    Backoff::MAX
                ),
            );
            Ok((None, Some(e.message)))
        }
        Err(e) => Err(e),
    }
}

/// An error of a thread the module could not start.
fn thread_error(what: &str, e: std::io::Error) -> Error {
    Error::new(
        e.raw_os_error().unwrap_or(libc::EIO),
        format!("cannot start the {what} thread: {e}"),
    )
}

/// Starts the module, as `mod_main` does, in the order of its life:
/// arguments, bind, the HTTP and user-name threads, the collectors, the
/// module's own requests, and (nested) the announcement to the parent.
/// The reactor then runs until removal; `Module`'s teardown undoes all
/// of it, also when a step here fails.
pub fn start(h: Handle, args: Vec<String>) -> Result<Box<dyn ModuleInstance>, Error> {
    // Every other rank only samples its node's jobs for rank 0.
    if h.rank()? != 0 {
        return crate::node::start(h, args);
    }
    let Arguments {
        args,
        level,
        config,
        web,
        access,
        queues,
    } = Arguments::read(&h, args)?;

    let (listener, listen_error) = bind_or_defer(&h, config.listen)?;
    let scheme = if web.tls.is_some() { "https" } else { "http" };
    let shared = Shared::new(instance_description(&h));
    shared.set_web(web);
    shared.set_access(access);
    shared.set_known_collectors(
        collectors::REGISTRY
            .iter()
            .map(|spec| spec.about.name)
            .collect(),
    );
    shared.pacer.set_rate(config.max_request_rate);
    let server = listener
        .map(|listener| Server::start(listener, Arc::clone(&shared)))
        .transpose()
        .map_err(|e| thread_error("HTTP", e))?;
    let url = server
        .as_ref()
        .map(|s| metrics_url(scheme, s.local_addr(), &crate::hostname()));
    let names = NameService::start().map_err(|e| thread_error("user-name", e))?;

    let ctx = Context::new(
        h,
        Arc::clone(&shared),
        names.names(),
        &config.collectors,
        collectors::render_parts,
    )?;
    ctx.set_publish_intervals(config.publish_interval, config.busy_publish_interval);
    ctx.publish_now();
    let live = Rc::new(RefCell::new(Live {
        h,
        args,
        level,
        config: config.clone(),
        shared,
        server,
        url,
        listen_error,
        bind_retry: None,
        bind_backoff: Backoff::new(),
        ctx: Some(Rc::clone(&ctx)),
        collectors: Vec::new(),
        queues: queues.clone(),
        announcer: None,
        names: Some(names),
        sampler: None,
    }));
    // From here a failure drops `module`, whose teardown stops whatever
    // started.
    let mut module = Module {
        live: Rc::clone(&live),
        handlers: None,
    };
    if live.borrow().server.is_none() {
        retry_bind_later(&h, &live)?;
    }
    for name in &config.collectors {
        let running = start_collector(name, &ctx, &settings(&config, &queues))?;
        live.borrow_mut().collectors.push((name, running));
    }
    module.handlers = Some(handle_requests(&h, &live)?);
    live.borrow_mut().sampler = Some(Sampler::start(
        h,
        config.sample_interval,
        config.job_cgroups,
        None,
    )?);
    if level > 0 {
        announce_to_parent(&h, &ctx, &live);
    }
    if let Some(url) = &live.borrow().url {
        h.log(Level::Info, &format!("serving metrics at {url}"));
    }
    Ok(Box::new(module))
}

/// After a failed bind at instance start: tries again on a timer, with
/// backoff, until the address is free.
fn retry_bind_later(h: &Handle, live: &Rc<RefCell<Live>>) -> Result<(), Error> {
    let weak = Rc::downgrade(live);
    let timer = h.timer(Backoff::FIRST, 0.0, move || {
        if let Some(live) = weak.upgrade() {
            live.borrow_mut().retry_bind();
        }
    })?;
    timer.start();
    let mut live = live.borrow_mut();
    live.bind_backoff.next_delay();
    live.listen_error = live
        .listen_error
        .take()
        .map(|e| format!("{e}; trying again in {} s", Backoff::FIRST));
    live.bind_retry = Some(timer);
    Ok(())
}

/// The module's own requests: `NAME.stats-get` (`flux module stats`),
/// `NAME.config-reload` (`flux config reload`) and `NAME.stats-clear`
/// (`flux module stats --clear`).
fn handle_requests(h: &Handle, live: &Rc<RefCell<Live>>) -> Result<Vec<MsgHandler>, Error> {
    let name = h.module_name().unwrap_or_else(|| "prometheus".into());
    let weak = Rc::downgrade(live);
    let stats = h.handle_requests(&format!("{name}.stats-get"), true, move |request| {
        if let Some(live) = weak.upgrade() {
            request.respond(&stats_json(&live.borrow()));
        }
    })?;
    let weak = Rc::downgrade(live);
    let reload = h.handle_requests(&format!("{name}.config-reload"), false, move |request| {
        let Some(live) = weak.upgrade() else { return };
        let outcome = request
            .payload()
            .map_err(ReloadError::Request)
            .and_then(|p| live.borrow_mut().reload(&p.unwrap_or_else(|| "{}".into())));
        match outcome {
            Ok(()) => request.respond("{}"),
            Err(err) => {
                let msg = err.to_string();
                live.borrow()
                    .h
                    .log(Level::Err, &format!("config reload refused: {msg}"));
                request.respond_error(libc::EINVAL, &msg)
            }
        }
    })?;
    // The publish times start over (the collectors' counters are
    // Prometheus's, and never go back).
    let weak = Rc::downgrade(live);
    let clear = h.handle_requests(&format!("{name}.stats-clear"), true, move |request| {
        if let Some(ctx) = weak.upgrade().and_then(|live| live.borrow().ctx.clone()) {
            ctx.clear_publish_stats();
        }
        request.respond("{}");
    })?;
    Ok(vec![stats, reload, clear])
}

/// In a nested instance: tells the parent where this one serves, and again
/// whenever the instances below it change.
fn announce_to_parent(h: &Handle, ctx: &Rc<Context>, live: &Rc<RefCell<Live>>) {
    match Announcer::open(h) {
        Ok(announcer) => live.borrow_mut().announcer = announcer,
        // The module serves all the same; only the parent's /-/targets
        // will not list this instance.
        Err(e) => h.log(
            Level::Warning,
            &format!(
                "cannot reach the parent instance to publish this instance's URL: {}",
                e.message
            ),
        ),
    }
    let weak = Rc::downgrade(live);
    ctx.nested().listen(move |_| {
        if let Some(live) = weak.upgrade() {
            if let Ok(live) = live.try_borrow() {
                live.announce();
            }
        }
    });
    live.borrow().announce();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_landing_page_counts_brokers_in_english() {
        assert_eq!(
            describe_instance("node0", "0", Some(1), None),
            "on node0 (level 0, 1 broker)"
        );
        assert_eq!(
            describe_instance("node0", "1", Some(4), Some("f2x")),
            "on node0 (level 1, 4 brokers, job f2x)"
        );
    }
}
