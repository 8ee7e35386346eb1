//! The HTTP exporter thread on 127.0.0.1: what a scraper and a hostile
//! client see.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flux_prometheus::exposition::Shared;
use flux_prometheus::http::{Server, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE};
use flux_prometheus::render::{Doc, Family, Rendered};

const METRICS: &str =
    "# HELP flux_jobs Active jobs.\n# TYPE flux_jobs gauge\nflux_jobs{state=\"run\"} 3\n";

fn start() -> (Server, Arc<Shared>, SocketAddr) {
    let shared = Shared::new("test instance <1>".into());
    shared.publish(Rendered::verbatim(METRICS.into()), false);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = Server::start(listener, Arc::clone(&shared)).unwrap();
    let addr = server.local_addr();
    (server, shared, addr)
}

/// Sends raw bytes and reads until the server closes or `timeout` passes.
fn exchange(addr: SocketAddr, request: &[u8], timeout: Duration) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(timeout)).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn get(addr: SocketAddr, path: &str, extra: &str) -> String {
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n");
    exchange(addr, req.as_bytes(), Duration::from_secs(5))
}

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next()?;
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn metrics_are_served_with_the_prometheus_text_content_type() {
    let (_server, _shared, addr) = start();
    let r = get(addr, "/metrics", "");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert_eq!(header(&r, "content-type"), Some(TEXT_CONTENT_TYPE));
    assert!(r.ends_with(METRICS), "{r}");
}

#[test]
fn a_new_snapshot_is_served_as_soon_as_it_is_published() {
    let (_server, shared, addr) = start();
    shared.publish(
        Rendered::verbatim("flux_jobs{state=\"run\"} 7\n".into()),
        true,
    );
    assert!(get(addr, "/metrics", "").ends_with("flux_jobs{state=\"run\"} 7\n"));
}

#[test]
fn gzip_is_used_when_the_client_accepts_it() {
    let (_server, _shared, addr) = start();
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    assert_eq!(header(&head, "content-encoding"), Some("gzip"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(&raw[split..])
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, METRICS);
    let plain = get(addr, "/metrics", "Accept-Encoding: gzip;q=0, identity\r\n");
    assert_eq!(header(&plain, "content-encoding"), None);
}

#[test]
fn head_unknown_paths_and_other_methods() {
    let (_server, _shared, addr) = start();
    let r = exchange(
        addr,
        b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert_eq!(
        header(&r, "content-length"),
        Some(METRICS.len().to_string().as_str())
    );
    assert!(r.ends_with("\r\n\r\n"), "HEAD has no body: {r}");
    assert!(get(addr, "/nope", "").starts_with("HTTP/1.1 404"));
    let r = exchange(
        addr,
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(r.starts_with("HTTP/1.1 405"), "{r}");
    assert_eq!(header(&r, "allow"), Some("GET, HEAD"));
}

#[test]
fn landing_page_health_and_readiness() {
    let (_server, shared, addr) = start();
    let page = get(addr, "/", "");
    assert!(
        page.contains("href=\"/metrics\"") && page.contains("test instance &lt;1&gt;"),
        "{page}"
    );
    assert!(get(addr, "/-/healthy", "").starts_with("HTTP/1.1 200"));
    assert!(get(addr, "/-/ready", "").starts_with("HTTP/1.1 503"));
    shared.publish(Rendered::verbatim(METRICS.into()), true);
    assert!(get(addr, "/-/ready", "").starts_with("HTTP/1.1 200"));
}

#[test]
fn nested_targets_are_served_as_http_sd_json_as_soon_as_published() {
    let (_server, shared, addr) = start();
    let r = get(addr, "/-/targets", "");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert_eq!(header(&r, "content-type"), Some("application/json"));
    assert!(r.ends_with("\r\n\r\n[]"), "{r}");
    let list = r#"[{"targets":["node3:41235"],"labels":{"flux_jobid":"ƒ3"}}]"#;
    shared.set_targets(list.to_string());
    assert!(get(addr, "/-/targets", "").ends_with(list));
}

#[test]
fn oversized_headers_get_431_and_the_connection_closes() {
    let (_server, _shared, addr) = start();
    let big = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    let started = Instant::now();
    let r = exchange(addr, big.as_bytes(), Duration::from_secs(5));
    assert!(r.starts_with("HTTP/1.1 431"), "{r}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "connection was closed, not left to time out"
    );
}

#[test]
fn garbage_and_http09_get_an_error_not_a_hang() {
    let (_server, _shared, addr) = start();
    let r = exchange(addr, b"\x00\x01\x02garbage\r\n\r\n", Duration::from_secs(5));
    assert!(r.starts_with("HTTP/1.1 400"), "{r:?}");
    let r = exchange(addr, b"GET /metrics\r\n\r\n", Duration::from_secs(5));
    assert!(r.is_empty() || r.starts_with("HTTP/1.1 4"), "{r:?}");
    assert!(
        get(addr, "/metrics", "").starts_with("HTTP/1.1 200"),
        "server still serves"
    );
}

#[test]
fn pipelined_requests_are_all_answered() {
    let (_server, _shared, addr) = start();
    let one = "GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n";
    let req = format!("{one}{one}GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let r = exchange(addr, req.as_bytes(), Duration::from_secs(5));
    assert_eq!(r.matches("HTTP/1.1 200").count(), 3, "{r}");
}

#[test]
fn idle_connections_do_not_delay_a_scrape() {
    let (_server, _shared, addr) = start();
    let idle: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    let started = Instant::now();
    assert!(get(addr, "/metrics", "").starts_with("HTTP/1.1 200"));
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(idle);
}

#[test]
fn shutdown_joins_the_thread_and_closes_the_socket_with_clients_connected() {
    let (mut server, _shared, addr) = start();
    let _idle = TcpStream::connect(addr).unwrap();
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    server.shutdown();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "shutdown waited for clients"
    );
    assert!(TcpStream::connect(addr).is_err(), "listening socket closed");
    // The same port can be bound again at once, as `flux module reload` needs.
    let again = TcpListener::bind(addr);
    assert!(again.is_ok(), "{again:?}");
}

#[test]
fn openmetrics_is_served_when_the_scraper_asks_for_it() {
    let (_server, shared, addr) = start();
    let mut rendered = Rendered::default();
    let doc = Doc::counter("flux_jobs_submitted_total", "Jobs submitted.", &[]);
    Family::of(&mut rendered, &doc).sample(&[], 5.0);
    shared.publish(rendered, true);
    // What Prometheus 2 and 3 send by default.
    let prometheus = "Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n";
    let r = get(addr, "/metrics", prometheus);
    assert_eq!(header(&r, "content-type"), Some(OPENMETRICS_CONTENT_TYPE));
    assert!(
        r.ends_with("# HELP flux_jobs_submitted Jobs submitted.\n# TYPE flux_jobs_submitted counter\nflux_jobs_submitted_total 5\n# EOF\n"),
        "{r}"
    );
    assert!(header(&r, "vary").is_some_and(|v| v.contains("Accept")));
    // Text when asked for text first, when OpenMetrics is refused, or when
    // nothing is said.
    for accept in [
        "Accept: text/plain;version=0.0.4,application/openmetrics-text;q=0.5\r\n",
        "Accept: application/openmetrics-text;q=0, */*\r\n",
        "Accept: application/openmetrics-text;version=2.0.0\r\n",
        "",
    ] {
        let r = get(addr, "/metrics", accept);
        assert_eq!(
            header(&r, "content-type"),
            Some(TEXT_CONTENT_TYPE),
            "{accept}"
        );
        assert!(!r.contains("# EOF"));
    }
    // gzip of the OpenMetrics form.
    let mut s = TcpStream::connect(addr).unwrap();
    let req = format!("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n{prometheus}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut text = String::new();
    flate2::read::GzDecoder::new(&raw[split..])
        .read_to_string(&mut text)
        .unwrap();
    assert!(
        text.ends_with("flux_jobs_submitted_total 5\n# EOF\n"),
        "{text}"
    );
}

/// The nice value of a task, from its `stat` (field 19, the 17th after the
/// command's closing parenthesis).
fn nice_of(stat_path: &std::path::Path) -> String {
    let stat = std::fs::read_to_string(stat_path).unwrap_or_default();
    let after_command = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    after_command
        .split_whitespace()
        .nth(16)
        .unwrap_or("?")
        .to_string()
}

/// The HTTP thread runs at the broker's own priority: at nice 10, a busy
/// broker delayed scrapes by tens of ms (BENCHMARKS.md, "The largest
/// system"); pacing, not the nice, bounds what a flood of scrapes costs.
#[test]
fn the_http_thread_runs_at_the_broker_priority() {
    let (_server, _shared, addr) = start();
    assert!(get(addr, "/-/healthy", "").starts_with("HTTP/1.1 200"));
    let process_nice = nice_of(std::path::Path::new("/proc/self/stat"));
    let mut seen = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() != "prometheus-http" {
            continue;
        }
        assert_eq!(
            nice_of(&task.path().join("stat")),
            process_nice,
            "nice of {comm}"
        );
        seen += 1;
    }
    assert!(seen >= 1, "no prometheus-http thread found");
}

/// 30 scrapers at once against `max-request-rate=10`: every one is
/// answered 200, the first second's worth at once and the rest spaced out
/// at the rate (virtual time, so the test does not sleep).
#[test]
fn requests_over_the_rate_wait_their_turn_and_all_succeed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let shared = Shared::new("paced".into());
        shared.publish(Rendered::verbatim(METRICS.into()), true);
        shared.pacer.set_rate(10);
        let start = tokio::time::Instant::now();
        let clients: Vec<_> = (0..30)
            .map(|_| {
                let (mut client, server) = tokio::io::duplex(1 << 16);
                tokio::spawn(flux_prometheus::http::serve_connection(
                    server,
                    Arc::clone(&shared),
                    Arc::default(),
                ));
                tokio::spawn(async move {
                    client
                        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        .await
                        .unwrap();
                    let mut response = String::new();
                    client.read_to_string(&mut response).await.unwrap();
                    (response, start.elapsed())
                })
            })
            .collect();
        let mut answered = Vec::new();
        for client in clients {
            let (response, at) = client.await.unwrap();
            assert!(response.starts_with("HTTP/1.1 200"), "{response}");
            answered.push(at);
        }
        answered.sort();
        assert!(answered[9] < Duration::from_millis(10), "{answered:?}");
        assert!(answered[10] >= Duration::from_millis(100), "{answered:?}");
        let last = answered[29];
        assert!(
            last >= Duration::from_secs(2) && last < Duration::from_millis(2100),
            "{answered:?}"
        );
    });
}
