//! `flux prometheus scrape-config [--nested]`: the prometheus.yml scrape
//! jobs for this instance, with its real address, path, scheme and
//! credentials, written through serde so that what Prometheus reads is
//! YAML by construction.

use std::collections::BTreeMap;

use serde::Serialize;
use url::Url;

use flux_prometheus::stats::ModuleStats;

use crate::{Failure, Outcome};

/// The collectors whose series grow with the cluster and the running jobs:
/// where the module runs them, they get a scrape job of their own, at a
/// slower interval (node_exporter's `collect[]`).
const DETAIL_COLLECTORS: [&str; 2] = ["nodes", "jobmap"];

/// How often the per-node and per-job series are scraped.
const DETAIL_INTERVAL: &str = "60s";
const DETAIL_TIMEOUT: &str = "30s";
/// How often Prometheus asks for the nested instances.
const REFRESH_INTERVAL: &str = "30s";

/// Where the site keeps what the module's web-config asks of a scraper.
const CA_FILE: &str = "/etc/prometheus/flux-ca.pem";
const USERNAME: &str = "prometheus";
const PASSWORD_FILE: &str = "/etc/prometheus/flux-scrape.password";
/// Prometheus's client certificate, where the web-config verifies them.
const CERT_FILE: &str = "/etc/prometheus/flux-scrape.crt";
const KEY_FILE: &str = "/etc/prometheus/flux-scrape.key";

/// `scrape-config [--nested]`.
pub fn run(rest: &[String]) -> Outcome {
    match rest {
        [] => scrape_config(&crate::flux::module_stats(None)?),
        [flag] if flag == "--nested" => scrape_config_nested(&crate::flux::module_stats(None)?),
        _ => Err(Failure(
            "scrape-config takes no arguments but --nested".into(),
        )),
    }
}

/// The module's metrics endpoint as a scrape target.
pub struct Target {
    /// host:port, IPv6 in brackets.
    pub address: String,
    pub path: String,
    pub scheme: &'static str,
}

/// The module's metrics URL, from its stats, as a scrape target.
pub fn target_of(stats: &ModuleStats) -> Result<Target, Failure> {
    let url = stats
        .url
        .as_deref()
        .ok_or_else(|| match &stats.listen_error {
            Some(why) => Failure(format!("the module does not serve yet: {why}")),
            None => Failure("prometheus.stats-get: no url in the answer".into()),
        })?;
    let bad = |why: String| Failure(format!("the module's URL '{url}': {why}"));
    let parsed = Url::parse(url).map_err(|e| bad(e.to_string()))?;
    let scheme = match parsed.scheme() {
        "http" => "http",
        "https" => "https",
        other => return Err(bad(format!("unsupported scheme '{other}'"))),
    };
    let host = parsed.host_str().ok_or_else(|| bad("no host".into()))?;
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| bad("no port".into()))?;
    let path = match parsed.path().trim_end_matches('/') {
        "" => "/metrics".to_string(),
        path => path.to_string(),
    };
    Ok(Target {
        address: format!("{host}:{port}"),
        path,
        scheme,
    })
}

#[derive(Serialize)]
struct ScrapeJob {
    job_name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scrape_interval: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scrape_timeout: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_path: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    params: BTreeMap<&'static str, Vec<&'static str>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    static_configs: Vec<StaticConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    http_sd_configs: Vec<HttpSdConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scheme: Option<&'static str>,
    #[serde(flatten)]
    auth: Auth,
}

impl ScrapeJob {
    /// A job of that name with `auth`, and nothing else yet.
    fn named(job_name: &'static str, auth: &Auth) -> ScrapeJob {
        ScrapeJob {
            job_name,
            scrape_interval: None,
            scrape_timeout: None,
            metrics_path: None,
            params: BTreeMap::new(),
            static_configs: Vec::new(),
            http_sd_configs: Vec::new(),
            scheme: None,
            auth: auth.clone(),
        }
    }
}

#[derive(Serialize)]
struct StaticConfig {
    targets: Vec<String>,
}

#[derive(Serialize)]
struct HttpSdConfig {
    url: String,
    refresh_interval: &'static str,
    #[serde(flatten)]
    auth: Auth,
}

/// How a scraper proves itself to the module and checks the module's
/// certificate: the same wherever Prometheus talks to a module, since a
/// site's modules share one web-config.
#[derive(Serialize, Clone, Default)]
struct Auth {
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_config: Option<TlsConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    basic_auth: Option<BasicAuth>,
}

#[derive(Serialize, Clone)]
struct TlsConfig {
    ca_file: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cert_file: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_file: Option<&'static str>,
}

#[derive(Serialize, Clone)]
struct BasicAuth {
    username: String,
    password_file: &'static str,
}

impl Auth {
    /// Where the module keeps series naming users and jobs private, the
    /// scraper proves itself one the module lists (`private-scrapers`):
    /// by a basic-auth user it lists, else by a client certificate.
    fn of(stats: &ModuleStats, target: &Target) -> Auth {
        let user = match stats.private_basic_auth_users.first() {
            Some(listed) if stats.private_mode.is_some() => listed.clone(),
            _ => USERNAME.to_string(),
        };
        let client_cert = stats.verifies_client_certs;
        Auth {
            tls_config: (target.scheme == "https").then_some(TlsConfig {
                ca_file: CA_FILE,
                cert_file: client_cert.then_some(CERT_FILE),
                key_file: client_cert.then_some(KEY_FILE),
            }),
            basic_auth: stats.basic_auth.then_some(BasicAuth {
                username: user,
                password_file: PASSWORD_FILE,
            }),
        }
    }

    /// What a person must fill in, as comments above the YAML.
    fn notes(&self, stats: &ModuleStats) -> String {
        let mut notes = String::new();
        if let Some(tls) = &self.tls_config {
            notes.push_str(&format!(
                "# tls_config.ca_file: the CA that signed the module's certificate ({CA_FILE}).\n"
            ));
            if tls.cert_file.is_some() {
                notes.push_str(&format!(
                    "# tls_config.cert_file, key_file: Prometheus's client certificate, signed by the\n# module's client_ca_file ({CERT_FILE}, {KEY_FILE}).\n"
                ));
            }
        }
        if self.basic_auth.is_some() {
            notes.push_str(&format!(
                "# basic_auth: a user of the module's web-config, its password in {PASSWORD_FILE}.\n"
            ));
        }
        if let Some(why) = &stats.private_mode {
            let cleared = if !stats.private_basic_auth_users.is_empty() {
                "the basic_auth user below is one the module lists in private-scrapers,\n# so this job is served every series".to_string()
            } else if stats.verifies_client_certs && !stats.private_scrapers.is_empty() {
                format!(
                    "the client certificate must name one of {} among its SANs\n# for this job to be served every series; without it, the aggregate view",
                    stats.private_scrapers.join(", ")
                )
            } else {
                "the module lists no scraper this job can prove itself to be (private-scrapers\n# names a basic-auth user of its web-config, or a SAN of a verified client certificate),\n# so this job is served the aggregate view".to_string()
            };
            notes.push_str(&format!(
                "# {why}: series naming users, jobs and drain reasons are private;\n# {cleared}.\n"
            ));
        }
        notes
    }
}

/// This instance's scrape jobs: `flux`, and `flux-detail` for the per-node
/// and per-job series where the module runs their collectors.
fn jobs(stats: &ModuleStats, target: &Target, auth: &Auth) -> Vec<ScrapeJob> {
    let detail: Vec<&'static str> = DETAIL_COLLECTORS
        .into_iter()
        .filter(|name| stats.collectors.contains_key(*name))
        .collect();
    let job = |job_name, params: BTreeMap<_, _>| ScrapeJob {
        metrics_path: Some(target.path.clone()),
        params,
        static_configs: vec![StaticConfig {
            targets: vec![target.address.clone()],
        }],
        scheme: (target.scheme == "https").then_some("https"),
        ..ScrapeJob::named(job_name, auth)
    };
    if detail.is_empty() {
        return vec![job("flux", BTreeMap::new())];
    }
    let mut slower = job(
        "flux-detail",
        BTreeMap::from([("collect[]", detail.clone())]),
    );
    slower.scrape_interval = Some(DETAIL_INTERVAL);
    slower.scrape_timeout = Some(DETAIL_TIMEOUT);
    vec![job("flux", BTreeMap::from([("exclude[]", detail)])), slower]
}

/// The jobs under `scrape_configs:`, each item indented by two spaces as
/// Prometheus's own examples are, so that a job of the site's can be
/// pasted after them (`  - job_name: ...`). Indenting every line of a
/// YAML block alike keeps its meaning.
fn write(jobs: &[ScrapeJob], notes: String) -> Outcome {
    let jobs = serde_yaml_ng::to_string(jobs)
        .map_err(|e| Failure(format!("cannot write the scrape configuration: {e}")))?;
    let mut out = notes;
    out.push_str("scrape_configs:\n");
    for line in jobs.lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    Ok(out.trim_end().to_string())
}

/// The comments above the YAML: what a person fills in, and why there is
/// a second job.
fn notes(stats: &ModuleStats, auth: &Auth) -> String {
    let mut notes = auth.notes(stats);
    if stats
        .collectors
        .keys()
        .any(|c| DETAIL_COLLECTORS.contains(&c.as_str()))
    {
        notes.push_str(&format!(
            "# flux-detail: the per-node and per-job series, which grow with the cluster\n# and the running jobs, every {DETAIL_INTERVAL}.\n"
        ));
    }
    notes
}

/// The scrape jobs for this instance.
pub fn scrape_config(stats: &ModuleStats) -> Outcome {
    let target = target_of(stats)?;
    let auth = Auth::of(stats, &target);
    write(&jobs(stats, &target, &auth), notes(stats, &auth))
}

/// The scrape jobs for this instance, and one for every nested instance
/// below it: Prometheus asks this module's `/-/targets` (http_sd) for them
/// at each refresh. Each target brings its scheme and metrics path, and
/// the labels `flux_jobid`, `flux_instance_level`, `flux_user` and
/// `flux_parent_jobid`. The discovery request and the scrapes use this
/// instance's credentials and CA: a site's modules share one web-config.
pub fn scrape_config_nested(stats: &ModuleStats) -> Outcome {
    let target = target_of(stats)?;
    let auth = Auth::of(stats, &target);
    let mut scrape_configs = jobs(stats, &target, &auth);
    scrape_configs.push(ScrapeJob {
        http_sd_configs: vec![HttpSdConfig {
            url: format!(
                "{}://{}{}",
                target.scheme,
                target.address,
                flux_prometheus::http::TARGETS_PATH
            ),
            refresh_interval: REFRESH_INTERVAL,
            auth: auth.clone(),
        }],
        // Each discovered target names its own scheme.
        ..ScrapeJob::named("flux-nested", &auth)
    });
    write(&scrape_configs, notes(stats, &auth))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrape_config_uses_the_modules_address_and_auth() {
        let stats = ModuleStats {
            url: Some("http://node0:9475/metrics".into()),
            basic_auth: true,
            ..ModuleStats::default()
        };
        let yaml = scrape_config(&stats).unwrap();
        let config: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).expect(&yaml);
        // A site's own job pastes after them at Prometheus's indentation.
        let pasted =
            format!("{yaml}\n  - job_name: site\n    static_configs: [{{targets: [\"x:1\"]}}]\n");
        let with_site: serde_yaml_ng::Value = serde_yaml_ng::from_str(&pasted).expect(&pasted);
        assert_eq!(
            with_site["scrape_configs"][1]["job_name"].as_str(),
            Some("site"),
            "{pasted}"
        );
        let job = &config["scrape_configs"][0];
        assert_eq!(
            job["static_configs"][0]["targets"][0].as_str(),
            Some("node0:9475"),
            "{yaml}"
        );
        assert_eq!(job["metrics_path"].as_str(), Some("/metrics"), "{yaml}");
        assert_eq!(
            job["basic_auth"]["password_file"].as_str(),
            Some(PASSWORD_FILE),
            "{yaml}"
        );
        assert!(
            job["scheme"].is_null() && job["tls_config"].is_null(),
            "{yaml}"
        );
        assert!(
            yaml.starts_with("# basic_auth: a user of the module's web-config"),
            "{yaml}"
        );
        let open = scrape_config(&ModuleStats {
            url: Some("http://node0:9475/metrics".into()),
            ..ModuleStats::default()
        })
        .unwrap();
        assert!(!open.contains("basic_auth"));
    }

    #[test]
    fn in_private_mode_the_scrape_job_proves_itself_a_listed_scraper() {
        let stats = ModuleStats {
            url: Some("https://node0:9475/metrics".into()),
            basic_auth: true,
            tls: true,
            private_mode: Some("access.private-mode".into()),
            private_scrapers: vec!["metrics".into()],
            private_basic_auth_users: vec!["metrics".into()],
            ..ModuleStats::default()
        };
        let yaml = scrape_config(&stats).unwrap();
        let config: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).expect(&yaml);
        let job = &config["scrape_configs"][0];
        assert_eq!(
            job["basic_auth"]["username"].as_str(),
            Some("metrics"),
            "{yaml}"
        );
        assert!(
            yaml.contains("# access.private-mode: series naming users"),
            "{yaml}"
        );
        assert!(yaml.contains("served every series"), "{yaml}");
        // Cleared by a client certificate instead: the job presents one.
        let stats = ModuleStats {
            basic_auth: false,
            verifies_client_certs: true,
            private_basic_auth_users: Vec::new(),
            ..stats
        };
        let yaml = scrape_config(&stats).unwrap();
        let config: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).expect(&yaml);
        let tls = &config["scrape_configs"][0]["tls_config"];
        assert_eq!(tls["cert_file"].as_str(), Some(CERT_FILE), "{yaml}");
        assert_eq!(tls["key_file"].as_str(), Some(KEY_FILE), "{yaml}");
        assert!(
            yaml.contains("must name one of metrics among its SANs"),
            "{yaml}"
        );
        // Nobody can be cleared: the job is told it gets the aggregate view.
        let yaml = scrape_config(&ModuleStats {
            url: Some("http://node0:9475/metrics".into()),
            private_mode: Some("private-mode".into()),
            ..ModuleStats::default()
        })
        .unwrap();
        assert!(
            yaml.contains("so this job is served the aggregate view"),
            "{yaml}"
        );
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
        assert!(run(&["--bogus".into()]).is_err());
        // The nested job carries no scheme: each discovered target names
        // its own; the instance's own jobs do.
        assert!(nested["scheme"].is_null(), "{yaml}");
        assert_eq!(jobs[0]["scheme"].as_str(), Some("https"), "{yaml}");
    }

    #[test]
    fn an_ipv6_module_address_keeps_its_brackets() {
        let stats = ModuleStats {
            url: Some("http://[::1]:9475/metrics".into()),
            ..ModuleStats::default()
        };
        assert_eq!(target_of(&stats).unwrap().address, "[::1]:9475");
        let none = ModuleStats {
            listen_error: Some("port taken".into()),
            ..ModuleStats::default()
        };
        let Failure(msg) = target_of(&none).err().unwrap();
        assert_eq!(msg, "the module does not serve yet: port taken");
    }
}
