//! Module arguments (`key=value` words, as `flux module load` passes them).
//!
//! A leaf: it knows the collectors only through the [`Catalog`] it is
//! handed, and imports nothing of the crate.

use std::collections::BTreeMap;
use std::fmt;
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
    /// "KEY=VALUE: " in the error).
    pub check: fn(&str) -> Result<(), String>,
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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgError(pub String);

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The module's own keys; the collectors' follow (see [`keys`]).
const MODULE_KEYS: [&str; 7] = [
    "listen",
    "poll-interval",
    "publish-interval",
    "busy-publish-interval",
    "collectors",
    "web-config",
    "max-request-rate",
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
        }
    }

    pub fn from_args<S: AsRef<str>>(
        args: &[S],
        instance_level: u32,
        catalog: Catalog,
    ) -> Result<Config, ArgError> {
        let mut config = Config::defaults(instance_level, catalog);
        for arg in args {
            let arg = arg.as_ref();
            let Some((key, value)) = arg.split_once('=') else {
                return Err(ArgError(format!(
                    "argument '{arg}' is not key=value (valid keys: {})",
                    catalog.key_list()
                )));
            };
            match key {
                "listen" => config.listen = parse_listen(value)?,
                "poll-interval" => config.poll_interval = parse_duration(key, value)?,
                "publish-interval" => config.publish_interval = parse_duration(key, value)?,
                "busy-publish-interval" => {
                    config.busy_publish_interval = parse_duration(key, value)?
                }
                "collectors" => config.collectors = parse_collectors(value, catalog)?,
                "web-config" if value.is_empty() => config.web_config = None,
                "web-config" => config.web_config = Some(value.into()),
                "max-request-rate" => {
                    config.max_request_rate = value.parse().map_err(|_| {
                        ArgError(format!(
                            "max-request-rate={value}: expected a whole number of requests per second (0 for no limit)"
                        ))
                    })?;
                }
                _ => {
                    let Some((_, option)) = catalog.find_option(key) else {
                        // Flux reports a reload error in 160 bytes: the key
                        // and the suggestion come first, the keys last.
                        return Err(ArgError(format!(
                            "unknown argument '{key}'{} (valid keys: {})",
                            did_you_mean(key, catalog.keys()),
                            catalog.key_list()
                        )));
                    };
                    (option.check)(value)
                        .map_err(|why| ArgError(format!("{key}={value}: {why}")))?;
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
                return Err(ArgError(format!(
                    "collectors={}: {name} needs the {missing} collector, which follows what it reads (add {missing})",
                    config.collectors.join(",")
                )));
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

/// A boolean argument: true, yes, 1 or on; false, no, 0 or off.
pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

/// Parses `HOST:PORT`: an IPv4 address, a bracketed IPv6 address, a host
/// name, or `*` for every address.
pub fn parse_listen(value: &str) -> Result<SocketAddr, ArgError> {
    let bad = |why: &str| {
        ArgError(format!("listen={value}: {why} (expected HOST:PORT, e.g. 0.0.0.0:{DEFAULT_PORT}, 127.0.0.1:0 or [::1]:{DEFAULT_PORT})"))
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
pub fn parse_duration(key: &str, value: &str) -> Result<Duration, ArgError> {
    let bad = || {
        ArgError(format!(
            "{key}={value}: expected a positive duration such as 5, 5s, 500ms or 1m"
        ))
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

fn parse_collectors(value: &str, catalog: Catalog) -> Result<Vec<&'static str>, ArgError> {
    let mut chosen = Vec::new();
    for name in value.split(',').filter(|s| !s.is_empty()) {
        let Some(known) = catalog.find(name) else {
            return Err(ArgError(format!(
                "unknown collector '{name}'{} in collectors={value} (known: {})",
                did_you_mean(name, catalog.names()),
                catalog.names().collect::<Vec<_>>().join(", ")
            )));
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
            .0;
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
            .0;
        assert!(
            err.starts_with("publish-interval=0: expected a positive duration"),
            "{err}"
        );
        let err = Config::from_args(&["publish-intervall=1s"], 0, CATALOG)
            .unwrap_err()
            .0;
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
            let err = Config::from_args(&[bad], 0, CATALOG).unwrap_err().0;
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
        let err = Config::from_args(&["bogus=1"], 0, CATALOG).unwrap_err().0;
        assert!(
            err.contains("unknown argument 'bogus'") && err.contains("listen"),
            "{err}"
        );
        let err = Config::from_args(&["listen"], 0, CATALOG).unwrap_err().0;
        assert!(err.contains("not key=value"), "{err}");
        for bad in [
            "listen=1.2.3:x",
            "listen=nocolon",
            "listen=1.2.3.4:70000",
            "listen=[::1:80",
            "listen=a b:80",
            "listen=300.1.2.3:80",
        ] {
            let err = Config::from_args(&[bad], 0, CATALOG).unwrap_err().0;
            assert!(
                err.starts_with(bad) && err.contains("expected HOST:PORT"),
                "{bad}: {err}"
            );
        }
        let err = Config::from_args(&["poll-interval=-1"], 0, CATALOG)
            .unwrap_err()
            .0;
        assert!(err.contains("poll-interval=-1"), "{err}");
        let err = Config::from_args(&["collectors=jobs,nope"], 0, CATALOG)
            .unwrap_err()
            .0;
        assert!(err.contains("unknown collector 'nope'"), "{err}");
        let err = Config::from_args(&["collectors=jobs,queus"], 0, CATALOG)
            .unwrap_err()
            .0;
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
            .0;
        let shown = format!("[prometheus] in the broker config: {err}");
        let cut: String = shown.chars().take(159).collect();
        assert!(
            cut.contains("unknown argument 'colectors'; did you mean 'collectors'?"),
            "{cut}"
        );
        let err = Config::from_args(&["zzz=1"], 0, CATALOG).unwrap_err().0;
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
            let err = Config::from_args(&[bad], 0, CATALOG).unwrap_err().0;
            assert!(err.contains(names), "{err}");
        }
    }
}
