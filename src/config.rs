//! Module arguments (`key=value` words, as `flux module load` passes them).
//!
//! A leaf: it knows the collectors only through the [`Catalog`] it is
//! handed, and imports nothing of the crate.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// Requests per second the HTTP thread serves by default: far beyond any
/// real scrape schedule (Prometheus asks once per scrape interval,
/// typically 15 s).
pub const DEFAULT_MAX_REQUEST_RATE: u32 = 100;

/// What the argument parser knows of one collector.
#[derive(Debug)]
pub struct About {
    /// Its name in `collectors=` and in the `collector` label.
    pub name: &'static str,
    /// Whether it runs when `collectors=` is not given.
    pub on_by_default: bool,
    /// The module arguments that are its own, each checked alone.
    pub options: &'static [OptionSpec],
    /// The collectors it reads what it exports from (the jobflow collector
    /// follows the journal the users and jobmap collectors read): asking
    /// for it without them is an error at load.
    pub needs: &'static [&'static str],
}

/// One module argument a collector owns (`per-node`, `wait-buckets`...).
#[derive(Debug)]
pub struct OptionSpec {
    pub key: &'static str,
    /// Says what is wrong with a value, if anything (the text that follows
    /// "KEY=VALUE: " in the error): each collector has its own error type.
    pub check: fn(&str) -> Result<(), Box<dyn std::error::Error>>,
}

/// Every collector the module has, in the order of `collectors=`'s
/// default.
#[derive(Debug, Clone, Copy)]
pub struct Catalog(pub &'static [&'static About]);

impl Catalog {
    /// The collector named `name`.
    pub fn find(&self, name: &str) -> Option<&'static About> {
        self.0.iter().copied().find(|about| about.name == name)
    }

    /// The collector that owns option `key`, and the option.
    pub fn find_option(&self, key: &str) -> Option<(&'static About, &'static OptionSpec)> {
        self.0.iter().copied().find_map(|about| {
            about
                .options
                .iter()
                .find(|option| option.key == key)
                .map(|option| (about, option))
        })
    }

    fn names(&self) -> impl Iterator<Item = &'static str> {
        self.0.iter().map(|about| about.name)
    }

    /// Every valid key: the module's, then each collector's own.
    fn keys(&self) -> impl Iterator<Item = &'static str> {
        MODULE_KEYS.into_iter().chain(
            self.0
                .iter()
                .flat_map(|about| about.options.iter().map(|option| option.key)),
        )
    }

    fn key_list(&self) -> String {
        self.keys().collect::<Vec<_>>().join(", ")
    }
}

/// The port the exporter listens on by default in a top-level instance.
///
/// Prometheus's exporter range 9100-9999 is fully allocated, so no free
/// number there exists; 9475 avoids Prometheus's own 9090-9094 and Flux,
/// which listens on no fixed TCP port of its own.
pub const DEFAULT_PORT: u16 = 9475;

pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// Updates that arrive within this time are rendered together. A busy
/// instance changes state hundreds of times a second; rendering each time
/// would take CPU from the broker for nothing, since Prometheus scrapes
/// every few seconds. A scrape is at most this much behind.
pub const DEFAULT_PUBLISH_INTERVAL: Duration = Duration::from_millis(100);

/// The shortest time between two renders while updates keep coming. Under
/// churn (hundreds of jobs a second) every publish interval has a change,
/// and ten renders a second were a tenth of what the module cost the broker
/// per job (BENCHMARKS.md, "Broker instructions per job"); one a second
/// is still many times fresher than any scrape.
pub const DEFAULT_BUSY_PUBLISH_INTERVAL: Duration = Duration::from_secs(1);

/// How often the module on each rank samples the jobs running on its node.
/// Rank 0 takes in one batch per rank per period: at 16,384 ranks, 30 s is
/// about 550 batches a second.
pub const DEFAULT_SAMPLE_INTERVAL: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: SocketAddr,
    pub poll_interval: Duration,
    /// The shortest time between two renders of the exposition.
    pub publish_interval: Duration,
    /// The shortest time between two renders while updates keep coming
    /// (the longer of it and `publish_interval` applies).
    pub busy_publish_interval: Duration,
    pub collectors: Vec<&'static str>,
    /// The collectors' own options (`per-node`, `wait-buckets`...) as
    /// given, by key; each was checked by the collector that owns it.
    pub options: BTreeMap<&'static str, String>,
    /// An exporter-toolkit web-config file: basic auth, TLS, headers.
    pub web_config: Option<std::path::PathBuf>,
    /// Requests per second the HTTP thread serves; more wait their turn.
    pub max_request_rate: u32,
    /// How often the module on each rank samples the jobs running there.
    pub sample_interval: Duration,
    /// Give each job shell without a cgroup of its own one, made by the
    /// module on its rank, and sample the job from it.
    pub job_cgroups: bool,
    /// Keep series naming users and jobs to `private_scrapers` (None:
    /// as the instance's `access.private-mode`).
    pub private_mode: Option<bool>,
    /// The basic-auth users and client-certificate SANs served those
    /// series where they are private.
    pub private_scrapers: Vec<String>,
}

/// What is wrong with the module's arguments or the broker config's
/// `[prometheus]` table, in the words `flux module load` and `flux config
/// reload` show. Each names the argument and what a valid one looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("argument '{arg}' is not key=value (valid keys: {keys})")]
    NotKeyValue { arg: String, keys: String },
    // flux config reload reports a module's error in 160 bytes: the key
    // and the suggestion come first, the keys last.
    #[error("unknown argument '{key}'{suggestion} (valid keys: {keys})")]
    UnknownKey {
        key: String,
        /// "; did you mean 'X'?", or nothing.
        suggestion: String,
        keys: String,
    },
    /// A known key with a value it does not take; `why` says what it takes.
    #[error("{key}={value}: {why}")]
    BadValue {
        key: String,
        value: String,
        why: String,
    },
    #[error("unknown collector '{name}'{suggestion} in collectors={value} (known: {known})")]
    UnknownCollector {
        name: String,
        suggestion: String,
        value: String,
        known: String,
    },
    #[error("collectors={chosen}: {name} needs the {missing} collector, which follows what it reads (add {missing})")]
    MissingCollector {
        chosen: String,
        name: String,
        missing: String,
    },
    /// An error of the broker config's table rather than of the arguments.
    #[error("[prometheus] in the broker config: {0}")]
    InBrokerConfig(Box<ConfigError>),
    #[error("malformed config: {0}")]
    MalformedBrokerConfig(String),
    #[error("[prometheus] in the broker config is not a table")]
    NotATable,
    #[error("[prometheus] {key}: expected a string, number, boolean or array of them")]
    NotAScalar { key: String },
    #[error("flux-core {version} is older than {oldest}, the oldest this module supports; upgrade flux-core")]
    FluxTooOld { version: String, oldest: String },
}

impl ConfigError {
    fn bad_value(key: &str, value: &str, why: impl Into<String>) -> ConfigError {
        ConfigError::BadValue {
            key: key.to_string(),
            value: value.to_string(),
            why: why.into(),
        }
    }
}

/// The module's own keys; the collectors' follow (see [`keys`]).
const MODULE_KEYS: [&str; 11] = [
    "listen",
    "poll-interval",
    "sample-interval",
    "job-cgroups",
    "publish-interval",
    "busy-publish-interval",
    "collectors",
    "web-config",
    "max-request-rate",
    "private-mode",
    "private-scrapers",
];

impl Config {
    /// The defaults: in a nested instance (`instance-level` > 0) the port is
    /// ephemeral, because a nested instance shares its nodes with its parent.
    pub fn defaults(instance_level: u32, catalog: Catalog) -> Config {
        let port = if instance_level > 0 { 0 } else { DEFAULT_PORT };
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], port)),
            poll_interval: DEFAULT_POLL_INTERVAL,
            publish_interval: DEFAULT_PUBLISH_INTERVAL,
            busy_publish_interval: DEFAULT_BUSY_PUBLISH_INTERVAL,
            collectors: catalog
                .0
                .iter()
                .filter(|about| about.on_by_default)
                .map(|about| about.name)
                .collect(),
            options: BTreeMap::new(),
            web_config: None,
            max_request_rate: DEFAULT_MAX_REQUEST_RATE,
            sample_interval: DEFAULT_SAMPLE_INTERVAL,
            job_cgroups: false,
            private_mode: None,
            private_scrapers: Vec::new(),
        }
    }

    pub fn from_args<S: AsRef<str>>(
        args: &[S],
        instance_level: u32,
        catalog: Catalog,
    ) -> Result<Config, ConfigError> {
        let mut config = Config::defaults(instance_level, catalog);
        for arg in args {
            let arg = arg.as_ref();
            let Some((key, value)) = arg.split_once('=') else {
                return Err(ConfigError::NotKeyValue {
                    arg: arg.to_string(),
                    keys: catalog.key_list(),
                });
            };
            match key {
                "listen" => config.listen = parse_listen(value)?,
                "poll-interval" => config.poll_interval = parse_duration(key, value)?,
                "sample-interval" => config.sample_interval = parse_duration(key, value)?,
                "job-cgroups" => {
                    config.job_cgroups = parse_bool(value)
                        .map_err(|why| ConfigError::bad_value(key, value, why.to_string()))?
                }
                "publish-interval" => config.publish_interval = parse_duration(key, value)?,
                "busy-publish-interval" => {
                    config.busy_publish_interval = parse_duration(key, value)?
                }
                "collectors" => config.collectors = parse_collectors(value, catalog)?,
                "web-config" if value.is_empty() => config.web_config = None,
                "web-config" => config.web_config = Some(value.into()),
                "private-mode" => {
                    config.private_mode = Some(
                        parse_bool(value)
                            .map_err(|why| ConfigError::bad_value(key, value, why.to_string()))?,
                    )
                }
                "private-scrapers" => config.private_scrapers = parse_scrapers(value)?,
                "max-request-rate" => {
                    config.max_request_rate = value.parse().map_err(|_| {
                        ConfigError::bad_value(
                            key,
                            value,
                            "expected a whole number of requests per second (0 for no limit)",
                        )
                    })?;
                }
                _ => {
                    let Some((_, option)) = catalog.find_option(key) else {
                        return Err(ConfigError::UnknownKey {
                            key: key.to_string(),
                            suggestion: did_you_mean(key, catalog.keys()),
                            keys: catalog.key_list(),
                        });
                    };
                    (option.check)(value)
                        .map_err(|why| ConfigError::bad_value(key, value, why.to_string()))?;
                    config.options.insert(option.key, value.to_string());
                }
            }
        }
        // per-node=true was the drained-node series of the resources
        // collector; the nodes collector's flux_node_drain_info replaces it.
        if config
            .options
            .get("per-node")
            .and_then(|v| parse_bool(v).ok())
            == Some(true)
            && !config.collectors.contains(&"nodes")
        {
            config.collectors.push("nodes");
        }
        for &name in &config.collectors {
            let Some(about) = catalog.find(name) else {
                continue;
            };
            if let Some(missing) = about.needs.iter().find(|n| !config.collectors.contains(n)) {
                return Err(ConfigError::MissingCollector {
                    chosen: config.collectors.join(","),
                    name: name.to_string(),
                    missing: missing.to_string(),
                });
            }
        }
        Ok(config)
    }
}

impl Config {
    /// What the configuration asks for in a way that is going away, said
    /// in the log at load and reload.
    pub fn deprecations(&self) -> Vec<String> {
        let mut said = Vec::new();
        if self.options.contains_key("per-node") {
            said.push("per-node is deprecated: per-node=true now turns on the nodes collector (collectors=...,nodes), whose flux_node_drain_info{node,rank,reason} replaces flux_resource_drained_node_info".to_string());
        }
        said
    }
}

/// `private-scrapers`: basic-auth users and certificate SANs, comma
/// separated (an array in the broker config). A name is taken as it is
/// written, as exporter-toolkit compares SANs.
fn parse_scrapers(value: &str) -> Result<Vec<String>, ConfigError> {
    let mut names = Vec::new();
    for name in value.split(',').map(str::trim) {
        if name.is_empty() {
            if value.trim().is_empty() {
                break;
            }
            return Err(ConfigError::bad_value(
                "private-scrapers",
                value,
                "an empty name (expected basic-auth users or certificate SANs, comma separated)",
            ));
        }
        names.push(name.to_string());
    }
    Ok(names)
}

/// The broker config's `access.private-mode` (flux-config-access(5)):
/// false where it is not set.
pub fn instance_private_mode(config: &str) -> Result<bool, ConfigError> {
    let config: serde_json::Value = serde_json::from_str(config)
        .map_err(|e| ConfigError::MalformedBrokerConfig(e.to_string()))?;
    match config.get("access").and_then(|a| a.get("private-mode")) {
        None => Ok(false),
        Some(serde_json::Value::Bool(b)) => Ok(*b),
        Some(other) => Err(ConfigError::MalformedBrokerConfig(format!(
            "access.private-mode is {other}: expected true or false"
        ))),
    }
}

/// The `[prometheus]` table of a broker config (a `config.get` answer or a
/// config-reload request) as module arguments, which it mirrors key for key.
pub fn table_args(config: &str) -> Result<Vec<String>, ConfigError> {
    let config: serde_json::Value = serde_json::from_str(config)
        .map_err(|e| ConfigError::MalformedBrokerConfig(e.to_string()))?;
    let Some(table) = config.get("prometheus") else {
        return Ok(Vec::new());
    };
    let table = table.as_object().ok_or(ConfigError::NotATable)?;
    let scalar = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    table
        .iter()
        .map(|(key, value)| {
            let text = match value {
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(scalar)
                    .collect::<Option<Vec<_>>>()
                    .map(|v| v.join(",")),
                other => scalar(other),
            };
            text.map(|t| format!("{key}={t}"))
                .ok_or_else(|| ConfigError::NotAScalar { key: key.clone() })
        })
        .collect()
}

/// The oldest flux-core this module supports: the oldest that flux-sched
/// 0.54 (Fluxion) supports, and the oldest the test suite was run against
/// (README, "Supported flux-core versions").
pub const MIN_FLUX_CORE: (u32, u32, u32) = (0, 78, 0);

/// Refuses a broker older than [`MIN_FLUX_CORE`], naming both versions. A
/// version that does not parse (a development build, say) is let through.
pub fn check_flux_version(version: &str) -> Result<(), ConfigError> {
    let numbers: Vec<u32> = version
        .split(['-', '+'])
        .next()
        .unwrap_or("")
        .split('.')
        .map_while(|n| n.parse().ok())
        .collect();
    let [major, minor, patch] = numbers[..] else {
        return Ok(());
    };
    let (a, b, c) = MIN_FLUX_CORE;
    if (major, minor, patch) < MIN_FLUX_CORE {
        return Err(ConfigError::FluxTooOld {
            version: version.to_string(),
            oldest: format!("{a}.{b}.{c}"),
        });
    }
    Ok(())
}

/// The configuration in force: the broker config's `[prometheus]` table
/// (its `table_args`), overridden by the module's arguments. An error of
/// the table's own is named as the table's.
pub fn effective_config(
    table: &[String],
    args: &[String],
    level: u32,
    catalog: Catalog,
) -> Result<Config, ConfigError> {
    Config::from_args(table, level, catalog)
        .map_err(|e| ConfigError::InBrokerConfig(Box::new(e)))?;
    let all: Vec<&String> = table.iter().chain(args).collect();
    Config::from_args(&all, level, catalog)
}

/// A boolean argument that is none of the words [`parse_bool`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("expected true or false")]
pub struct NotABool;

/// A boolean argument: true, yes, 1 or on; false, no, 0 or off.
pub fn parse_bool(value: &str) -> Result<bool, NotABool> {
    match value {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" => Ok(false),
        _ => Err(NotABool),
    }
}

/// Parses `HOST:PORT`: an IPv4 address, a bracketed IPv6 address, a host
/// name, or `*` for every address.
pub fn parse_listen(value: &str) -> Result<SocketAddr, ConfigError> {
    let bad = |why: &str| {
        ConfigError::bad_value(
            "listen",
            value,
            format!("{why} (expected HOST:PORT, e.g. 0.0.0.0:{DEFAULT_PORT}, 127.0.0.1:0 or [::1]:{DEFAULT_PORT})"),
        )
    };
    let Some((host, port)) = value.rsplit_once(':') else {
        return Err(bad("no port"));
    };
    let port: u16 = port
        .parse()
        .map_err(|_| bad("port is not a number from 0 to 65535"))?;
    let host = match host {
        "" | "*" => "0.0.0.0",
        h => h,
    };
    if let Ok(addr) = format!("{host}:{port}").parse::<SocketAddr>() {
        return Ok(addr);
    }
    let numeric = host.chars().all(|c| c.is_ascii_digit() || c == '.');
    if numeric || host.starts_with('[') || host.contains(':') || host.contains(char::is_whitespace)
    {
        return Err(bad("malformed address"));
    }
    let mut addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| bad(&format!("cannot resolve '{host}': {e}")))?;
    addrs
        .next()
        .ok_or_else(|| bad(&format!("'{host}' has no address")))
}

/// Parses a duration in Flux's FSD style: a number with an optional unit
/// (ms, s, m, h); a bare number is seconds.
pub fn parse_duration(key: &str, value: &str) -> Result<Duration, ConfigError> {
    let bad = || {
        ConfigError::bad_value(
            key,
            value,
            "expected a positive duration such as 5, 5s, 500ms or 1m",
        )
    };
    let (number, scale) = if let Some(n) = value.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = value.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (value, 1.0)
    };
    let n: f64 = number.parse().map_err(|_| bad())?;
    let secs = n * scale;
    if !secs.is_finite() || secs <= 0.0 || secs > 86400.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// "; did you mean 'X'?" for the candidate closest to a mistyped `word`,
/// or nothing where none is close.
pub fn did_you_mean<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    candidates
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("; did you mean '{c}'?"))
        .unwrap_or_default()
}

fn parse_collectors(value: &str, catalog: Catalog) -> Result<Vec<&'static str>, ConfigError> {
    let mut chosen = Vec::new();
    for name in value.split(',').filter(|s| !s.is_empty()) {
        let Some(known) = catalog.find(name) else {
            return Err(ConfigError::UnknownCollector {
                name: name.to_string(),
                suggestion: did_you_mean(name, catalog.names()),
                value: value.to_string(),
                known: catalog.names().collect::<Vec<_>>().join(", "),
            });
        };
        if !chosen.contains(&known.name) {
            chosen.push(known.name);
        }
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;
    // The module's own collectors, as the module hands them over.
    use crate::collectors::CATALOG;

    #[test]
    fn defaults_use_the_documented_port_and_an_ephemeral_one_when_nested() {
        assert_eq!(
            Config::from_args::<&str>(&[], 0, CATALOG)
                .unwrap()
                .listen
                .port(),
            DEFAULT_PORT
        );
        assert_eq!(
            Config::from_args::<&str>(&[], 1, CATALOG)
                .unwrap()
                .listen
                .port(),
            0
        );
        assert!(!(9090..=9094).contains(&DEFAULT_PORT));
    }

    #[test]
    fn busy_publish_interval_is_a_duration_and_a_second_by_default() {
        let c = Config::from_args::<&str>(&[], 0, CATALOG).unwrap();
        assert_eq!(c.busy_publish_interval, Duration::from_secs(1));
        let c = Config::from_args(&["busy-publish-interval=250ms"], 0, CATALOG).unwrap();
        assert_eq!(c.busy_publish_interval, Duration::from_millis(250));
        let err = Config::from_args(&["busy-publish-interval=soon"], 0, CATALOG)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("busy-publish-interval=soon: "), "{err}");
    }

    #[test]
    fn publish_interval_is_a_duration_and_a_tenth_of_a_second_by_default() {
        let c = Config::from_args::<&str>(&[], 0, CATALOG).unwrap();
        assert_eq!(c.publish_interval, Duration::from_millis(100));
        let c = Config::from_args(&["publish-interval=2s"], 0, CATALOG).unwrap();
        assert_eq!(c.publish_interval, Duration::from_secs(2));
        let err = Config::from_args(&["publish-interval=0"], 0, CATALOG)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("publish-interval=0: expected a positive duration"),
            "{err}"
        );
        let err = Config::from_args(&["publish-intervall=1s"], 0, CATALOG)
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean 'publish-interval'"), "{err}");
    }

    #[test]
    fn max_request_rate_takes_a_whole_number_and_zero_means_none() {
        let c = Config::from_args::<&str>(&[], 0, CATALOG).unwrap();
        assert_eq!(c.max_request_rate, DEFAULT_MAX_REQUEST_RATE);
        let c = Config::from_args(&["max-request-rate=0"], 0, CATALOG).unwrap();
        assert_eq!(c.max_request_rate, 0);
        for bad in [
            "max-request-rate=-1",
            "max-request-rate=1.5",
            "max-request-rate=",
        ] {
            let err = Config::from_args(&[bad], 0, CATALOG)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(bad) && err.contains("per second"), "{err}");
        }
    }

    #[test]
    fn listen_accepts_ipv4_ipv6_star_and_localhost() {
        let c = Config::from_args(&["listen=127.0.0.1:0"], 0, CATALOG).unwrap();
        assert_eq!(c.listen, "127.0.0.1:0".parse().unwrap());
        let c = Config::from_args(&["listen=[::1]:9999"], 0, CATALOG).unwrap();
        assert_eq!(c.listen, "[::1]:9999".parse().unwrap());
        assert_eq!(
            parse_listen("*:8080").unwrap(),
            "0.0.0.0:8080".parse().unwrap()
        );
        assert!(parse_listen("localhost:8080").unwrap().ip().is_loopback());
    }

    #[test]
    fn bad_arguments_name_the_problem() {
        let err = Config::from_args(&["bogus=1"], 0, CATALOG)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown argument 'bogus'") && err.contains("listen"),
            "{err}"
        );
        let err = Config::from_args(&["listen"], 0, CATALOG)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not key=value"), "{err}");
        for bad in [
            "listen=1.2.3:x",
            "listen=nocolon",
            "listen=1.2.3.4:70000",
            "listen=[::1:80",
            "listen=a b:80",
            "listen=300.1.2.3:80",
        ] {
            let err = Config::from_args(&[bad], 0, CATALOG)
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(bad) && err.contains("expected HOST:PORT"),
                "{bad}: {err}"
            );
        }
        let err = Config::from_args(&["poll-interval=-1"], 0, CATALOG)
            .unwrap_err()
            .to_string();
        assert!(err.contains("poll-interval=-1"), "{err}");
        let err = Config::from_args(&["collectors=jobs,nope"], 0, CATALOG)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown collector 'nope'"), "{err}");
        let err = Config::from_args(&["collectors=jobs,queus"], 0, CATALOG)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("unknown collector 'queus'; did you mean 'queues'?"),
            "{err}"
        );
    }

    #[test]
    fn a_mistyped_key_is_named_with_a_suggestion_within_flux_reload_limit() {
        // flux config reload shows a module's error in 160 bytes, after the
        // broker-config prefix the module adds.
        let err = Config::from_args(&["colectors=jobs"], 0, CATALOG)
            .unwrap_err()
            .to_string();
        let shown = format!("[prometheus] in the broker config: {err}");
        let cut: String = shown.chars().take(159).collect();
        assert!(
            cut.contains("unknown argument 'colectors'; did you mean 'collectors'?"),
            "{cut}"
        );
        let err = Config::from_args(&["zzz=1"], 0, CATALOG)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("did you mean"), "{err}");
    }

    #[test]
    fn durations_take_flux_style_units() {
        assert_eq!(parse_duration("k", "5").unwrap(), Duration::from_secs(5));
        assert_eq!(
            parse_duration("k", "500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(parse_duration("k", "2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("k", "0").is_err());
        assert!(parse_duration("k", "NaN").is_err());
    }

    #[test]
    fn jobflow_options_parse_and_refuse_by_name() {
        let c = Config::from_args(
            &[
                "jobflow-labels=user,project",
                "label-limit=50",
                "wait-buckets=1,10",
            ],
            0,
            CATALOG,
        )
        .unwrap();
        assert_eq!(c.options["jobflow-labels"], "user,project");
        assert_eq!(c.options["label-limit"], "50");
        assert_eq!(c.options["wait-buckets"], "1,10");
        for (bad, names) in [
            ("jobflow-labels=group", "unknown label 'group'"),
            ("label-limit=0", "label-limit=0"),
            ("run-buckets=10,1", "run-buckets=10,1: bounds must increase"),
            ("per-node=maybe", "per-node=maybe: expected true or false"),
        ] {
            let err = Config::from_args(&[bad], 0, CATALOG)
                .unwrap_err()
                .to_string();
            assert!(err.contains(names), "{err}");
        }
    }

    #[test]
    fn a_broker_older_than_the_minimum_is_refused_by_version() {
        let err = check_flux_version("0.77.0").unwrap_err().to_string();
        assert!(
            err.starts_with("flux-core 0.77.0 is older than 0.78.0"),
            "{err}"
        );
        assert!(check_flux_version("0.60.0-12-gabc").is_err());
        for fine in ["0.78.0", "0.88.0-59-g4a5e79f56", "1.0.0", "unknown"] {
            assert_eq!(check_flux_version(fine), Ok(()), "{fine}");
        }
    }

    #[test]
    fn private_mode_and_its_scrapers_are_read_and_refused_by_name() {
        let args = table_args(
            r#"{"prometheus": {"private-mode": true, "private-scrapers": ["prometheus", "scraper.example.org"]}}"#,
        )
        .unwrap();
        let config = Config::from_args(&args, 0, CATALOG).unwrap();
        assert_eq!(config.private_mode, Some(true));
        assert_eq!(
            config.private_scrapers,
            ["prometheus", "scraper.example.org"]
        );
        assert_eq!(Config::defaults(0, CATALOG).private_mode, None);
        let err = Config::from_args(&["private-mode=maybe"], 0, CATALOG)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "private-mode=maybe: expected true or false");
        let err = Config::from_args(&["private-scrapers=a,,b"], 0, CATALOG)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("private-scrapers=a,,b: an empty name"),
            "{err}"
        );
        // An empty list clears it.
        let config = Config::from_args(&["private-scrapers="], 0, CATALOG).unwrap();
        assert!(config.private_scrapers.is_empty());
        // The instance's own rule.
        assert!(instance_private_mode(r#"{"access": {"private-mode": true}}"#).unwrap());
        assert!(!instance_private_mode(r#"{"access": {"allow-guest-user": true}}"#).unwrap());
        assert!(!instance_private_mode("{}").unwrap());
        let err = instance_private_mode(r#"{"access": {"private-mode": "yes"}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("access.private-mode is \"yes\": expected true or false"),
            "{err}"
        );
    }

    #[test]
    fn the_broker_config_table_becomes_arguments_and_its_errors_are_its_own() {
        let args = table_args(r#"{"prometheus": {"listen": "127.0.0.1:0", "collectors": ["jobs", "queues"], "per-node": true}}"#).unwrap();
        assert_eq!(
            args,
            [
                "collectors=jobs,queues",
                "listen=127.0.0.1:0",
                "per-node=true"
            ]
        );
        assert_eq!(table_args("{}").unwrap(), Vec::<String>::new());
        let err = table_args(r#"{"prometheus": 5}"#).unwrap_err().to_string();
        assert_eq!(err, "[prometheus] in the broker config is not a table");
        let err = table_args(r#"{"prometheus": {"listen": {}}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("[prometheus] listen: expected a string"),
            "{err}"
        );
        let table = ["poll-interval=never".to_string()];
        let err = effective_config(&table, &[], 0, CATALOG)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("[prometheus] in the broker config: poll-interval=never"),
            "{err}"
        );
        // The arguments override the table.
        let config = effective_config(&table, &["poll-interval=2s".into()], 0, CATALOG);
        assert!(config.is_err(), "the table's own error still stands");
        let table = ["poll-interval=1s".to_string()];
        let config = effective_config(&table, &["poll-interval=2s".into()], 0, CATALOG).unwrap();
        assert_eq!(config.poll_interval, Duration::from_secs(2));
    }
}
