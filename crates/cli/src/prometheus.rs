//! `flux prometheus reload|healthy|ready [URL]`: the Prometheus server's
//! lifecycle and health endpoints, over plain HTTP/1.1.

use std::time::Duration;

use url::Url;

use crate::{Failure, Outcome};

pub const DEFAULT_PROMETHEUS_URL: &str = "http://localhost:9090";
const TIMEOUT: Duration = Duration::from_secs(10);

/// Prometheus's base URL: a plain http:// URL, with the path prefix it runs
/// under (`--web.route-prefix`) and no credentials.
#[derive(Debug, PartialEq, Eq)]
pub struct PrometheusUrl(Url);

impl PrometheusUrl {
    pub fn parse(url: &str) -> Result<PrometheusUrl, Failure> {
        let bad = |why: &str| Failure(format!("bad URL '{url}': {why}"));
        if !url.contains("://") {
            return Err(bad("expected http://HOST[:PORT]"));
        }
        let parsed = Url::parse(url).map_err(|e| match e {
            url::ParseError::EmptyHost => bad("no host"),
            url::ParseError::InvalidPort => bad("port is not a number from 0 to 65535"),
            other => bad(&other.to_string()),
        })?;
        match parsed.scheme() {
            "http" => {}
            "https" => {
                return Err(bad(
                    "https is not supported; use the plain http address Prometheus listens on",
                ))
            }
            scheme => return Err(bad(&format!("unsupported scheme '{scheme}'"))),
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(bad("credentials in the URL are not supported"));
        }
        if parsed.host().is_none() {
            return Err(bad("no host"));
        }
        Ok(PrometheusUrl(parsed))
    }

    /// The host, without brackets for IPv6.
    pub fn host(&self) -> String {
        match self.0.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None => String::new(),
        }
    }

    pub fn port(&self) -> u16 {
        self.0.port_or_known_default().unwrap_or(80)
    }

    /// The path prefix, without a trailing slash.
    pub fn prefix(&self) -> &str {
        self.0.path().trim_end_matches('/')
    }

    /// The URL of `path` under the prefix.
    fn endpoint(&self, path: &str) -> Url {
        let mut url = self.0.clone();
        url.set_path(&format!("{}{path}", self.prefix()));
        url.set_query(None);
        url.set_fragment(None);
        url
    }
}

/// The URL `[URL]` names: the argument, else $PROMETHEUS_URL, else the
/// default.
pub fn url_argument(rest: &[String]) -> Result<String, Failure> {
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
}

/// The status code and body of one request to Prometheus at `url` (its
/// path prefix kept), with a timeout.
fn request(url: &str, method: &str, path: &str) -> Result<(u16, String), Failure> {
    let full = PrometheusUrl::parse(url)?.endpoint(path);
    // A status is an answer to report, not a transport error.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(TIMEOUT))
        .user_agent(format!("flux-prometheus/{}", flux_prometheus::VERSION))
        .build()
        .into();
    let sent = match method {
        "POST" => agent.post(full.as_str()).send_empty(),
        _ => agent.get(full.as_str()).call(),
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

/// `healthy` and `ready`: GET `path`, and say what Prometheus said.
pub fn probe(url: &str, path: &str) -> Outcome {
    let (code, body) = request(url, "GET", path)?;
    if code == 200 {
        Ok(format!("{url}: {body}"))
    } else {
        Err(Failure(format!("{url}: HTTP {code}: {body}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_what_is_wrong() {
        let url = PrometheusUrl::parse("http://prom.example:9091/prefix/").unwrap();
        assert_eq!(
            (url.host().as_str(), url.port(), url.prefix()),
            ("prom.example", 9091, "/prefix")
        );
        assert_eq!(
            url.endpoint("/-/reload").as_str(),
            "http://prom.example:9091/prefix/-/reload"
        );
        let v6 = PrometheusUrl::parse("http://[::1]:9090").unwrap();
        assert_eq!(v6.host(), "::1");
        assert_eq!(
            v6.endpoint("/-/ready").as_str(),
            "http://[::1]:9090/-/ready"
        );
        assert_eq!(PrometheusUrl::parse("http://localhost").unwrap().port(), 80);
        for (bad, why) in [
            ("localhost:9090", "expected http://"),
            ("ftp://x", "unsupported scheme 'ftp'"),
            ("https://x", "https is not supported"),
            ("http://x:99999", "port is not a number"),
            ("http://:9090", "no host"),
            ("http://me:pw@x", "credentials"),
        ] {
            let Failure(msg) = PrometheusUrl::parse(bad).unwrap_err();
            assert!(msg.contains(bad) && msg.contains(why), "{msg}");
        }
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
}
