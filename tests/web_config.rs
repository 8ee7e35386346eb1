//! web-config (exporter-toolkit YAML): what a bad file is told, and what
//! clients of the real HTTP thread see with basic auth, TLS and mutual TLS.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use flux_prometheus::exposition::Shared;
use flux_prometheus::http::webconfig::WebConfig;
use flux_prometheus::http::Server;
use flux_prometheus::render::Rendered;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

const METRICS: &str =
    "# HELP flux_jobs Active jobs.\n# TYPE flux_jobs gauge\nflux_jobs{state=\"run\"} 3\n";
/// bcrypt (cost 4, to keep tests quick) of "s3cret".
fn hash() -> String {
    bcrypt::hash("s3cret", 4).unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flux-prometheus-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn parse(yaml: &str) -> Result<WebConfig, String> {
    WebConfig::parse(yaml, Path::new("/nonexistent")).map_err(|e| e.to_string())
}

fn serve(web: WebConfig) -> (Server, SocketAddr) {
    let shared = Shared::new("test".into());
    shared.publish(Rendered::verbatim(METRICS.into()), true);
    shared.set_web(web);
    start(&shared)
}

/// The real HTTP thread serving `shared` on a free local port.
fn start(shared: &Arc<Shared>) -> (Server, SocketAddr) {
    let server = Server::start(
        TcpListener::bind("127.0.0.1:0").unwrap(),
        Arc::clone(shared),
    )
    .unwrap();
    let addr = server.local_addr();
    (server, addr)
}

fn get(addr: SocketAddr, extra: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn basic(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Authorization: Basic {token}\r\n")
}

#[test]
fn bad_files_are_refused_naming_the_problem() {
    let cases = [
        (
            "basic_auth_users:\n  alice: plaintext\n",
            "the password of 'alice' is not a bcrypt hash",
        ),
        (
            "basic_auth_user:\n  alice: x\n",
            "unknown field `basic_auth_user`",
        ),
        (
            "tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  colour: blue\n",
            "unknown field `colour`",
        ),
        (
            "tls_server_config:\n  key_file: a.key\n",
            "missing one of cert or cert_file",
        ),
        (
            "tls_server_config:\n  cert_file: missing.crt\n  key_file: a.key\n",
            "/nonexistent/missing.crt",
        ),
        (
            "http_server_config:\n  headers:\n    Set-Cookie: x\n",
            "Set-Cookie cannot be set",
        ),
        ("basic_auth_users: [1, 2]\n", "basic_auth_users"),
        // Values and names exporter-toolkit refuses.
        (
            "http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n",
            "http_server_config.headers.X-Content-Type-Options: 'sniff' is not one of nosniff",
        ),
        (
            "http_server_config:\n  headers:\n    X-Frame-Options: DENY\n",
            "http_server_config.headers.X-Frame-Options: 'DENY' is not one of deny, sameorigin",
        ),
        (
            "http_server_config:\n  headers:\n    x-frame-options: deny\n",
            "x-frame-options cannot be set",
        ),
    ];
    for (yaml, expected) in cases {
        match parse(yaml) {
            Ok(_) => panic!("accepted: {yaml}"),
            Err(e) => assert!(
                e.contains(expected),
                "{yaml}: message '{e}' lacks '{expected}'"
            ),
        }
    }
    let e = WebConfig::load(Path::new("/nonexistent/web.yml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/nonexistent/web.yml") && e.contains("cannot read"),
        "{e}"
    );
}

#[test]
fn the_shipped_example_is_read_as_is() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/prometheus/web-config.yml");
    let web = WebConfig::load(&example).expect("etc/prometheus/web-config.yml is valid");
    let users = web.users.expect("the example has a user");
    assert_eq!(users.names(), ["prometheus"]);
    assert!(users.verify("prometheus", "change-me"));
}

#[test]
fn basic_auth_refuses_missing_and_wrong_credentials_with_401() {
    let web = parse(&format!("basic_auth_users:\n  alice: {}\n", hash())).unwrap();
    let users = web.users.clone().unwrap();
    let (_server, addr) = serve(web);
    for (extra, what) in [
        (String::new(), "no credentials"),
        (basic("alice", "wrong"), "wrong password"),
        (basic("mallory", "s3cret"), "unknown user"),
        (
            "Authorization: Bearer abc\r\n".to_string(),
            "another scheme",
        ),
        ("Authorization: Basic !!!\r\n".to_string(), "not base64"),
    ] {
        let r = get(addr, &extra);
        assert!(r.starts_with("HTTP/1.1 401"), "{what}: {r}");
        assert!(
            r.to_ascii_lowercase()
                .contains("www-authenticate: basic realm="),
            "{what}: {r}"
        );
        assert!(!r.contains("flux_jobs"), "{what}");
    }
    assert!(users.cached("alice", "s3cret").is_none());
    let r = get(addr, &basic("alice", "s3cret"));
    assert!(r.starts_with("HTTP/1.1 200") && r.ends_with(METRICS), "{r}");
    // The outcome is cached, so the next scrape runs no bcrypt.
    assert_eq!(users.cached("alice", "s3cret"), Some(true));
    assert_eq!(users.cached("alice", "wrong"), Some(false));
}

#[test]
fn rate_limit_answers_429_past_the_burst_as_exporter_toolkit_does() {
    // A burst of 3 and one request an hour: the 4th request in a row is
    // refused at once, before authentication, without the configured
    // headers; the first three were served.
    let web = parse(&format!(
        "rate_limit:\n  interval: 1h\n  burst: 3\nbasic_auth_users:\n  alice: {}\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n",
        hash()
    ))
    .unwrap();
    let (_server, addr) = serve(web);
    for _ in 0..3 {
        let r = get(addr, &basic("alice", "s3cret"));
        assert!(r.starts_with("HTTP/1.1 200") && r.ends_with(METRICS), "{r}");
    }
    for extra in [basic("alice", "s3cret"), String::new()] {
        let r = get(addr, &extra);
        assert!(r.starts_with("HTTP/1.1 429 Too Many Requests"), "{r}");
        let lower = r.to_ascii_lowercase();
        assert!(
            lower.contains("content-type: text/plain; charset=utf-8"),
            "{r}"
        );
        assert!(lower.contains("x-content-type-options: nosniff"), "{r}");
        assert!(!lower.contains("x-frame-options"), "{r}");
        assert!(!lower.contains("www-authenticate"), "{r}");
        assert!(r.ends_with("\r\n\r\nToo Many Requests\n"), "{r}");
    }
}

#[test]
fn rate_limit_keys_are_read_as_the_toolkit_reads_them() {
    let limit = |yaml: &str| parse(yaml).map(|w| w.rate_limit_config);
    let config = |secs: f64, burst| {
        Ok(Some(flux_prometheus::http::ratelimit::RateLimitConfig {
            interval: Duration::from_secs_f64(secs),
            burst,
        }))
    };
    assert_eq!(
        limit("rate_limit:\n  interval: 1m30s\n  burst: 10\n"),
        config(90.0, 10)
    );
    // A number is nanoseconds, as Go's YAML reads a time.Duration.
    assert_eq!(
        limit("rate_limit:\n  interval: 1000000000\n  burst: 1\n"),
        config(1.0, 1)
    );
    // No interval, or 0: no limit. No burst: every request refused.
    assert_eq!(limit("rate_limit:\n  burst: 10\n"), Ok(None));
    assert_eq!(limit("rate_limit:\n  interval: 0\n  burst: 10\n"), Ok(None));
    assert_eq!(limit("rate_limit:\n  interval: 1s\n"), config(1.0, 0));
    let e = limit("rate_limit:\n  interval: soon\n").unwrap_err();
    assert!(
        e.contains("rate_limit.interval: 'soon' is not a duration"),
        "{e}"
    );
    let e = limit("rate_limit:\n  interval: 1s\n  bursts: 2\n").unwrap_err();
    assert!(e.contains("unknown field `bursts`"), "{e}");
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as
/// PEM files in `dir`.
fn make_pki(dir: &Path) -> (CertificateDer<'static>, rcgen::CertifiedKey) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca, &ca_key)
        .unwrap();
    let client_key = rcgen::KeyPair::generate().unwrap();
    let client = rcgen::CertificateParams::new(vec!["scraper".to_string()])
        .unwrap()
        .signed_by(&client_key, &ca, &ca_key)
        .unwrap();
    std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.crt"), server.pem()).unwrap();
    std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
    (
        ca.der().clone(),
        rcgen::CertifiedKey {
            cert: client,
            key_pair: client_key,
        },
    )
}

/// A rustls client that trusts `ca` and speaks `versions`, its own
/// certificate yet to be chosen.
fn client_config(
    ca: &CertificateDer<'static>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
}

/// An HTTPS GET with rustls; Err when the handshake or request fails.
fn https_get(
    addr: SocketAddr,
    ca: &CertificateDer<'static>,
    client: Option<&rcgen::CertifiedKey>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<String, String> {
    let builder = client_config(ca, versions);
    let config = match client {
        Some(c) => builder
            .with_client_auth_cert(
                vec![c.cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(c.key_pair.serialize_der())),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    tls.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    match tls.read_to_end(&mut out) {
        Ok(_) => {}
        // Servers may close without close_notify; what was read counts.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

#[test]
fn tls_serves_https_and_a_stalled_handshake_holds_up_no_one() {
    let dir = temp_dir("tls");
    let (ca, _client) = make_pki(&dir);
    let web = WebConfig::load(&{
        let p = dir.join("web.yml");
        std::fs::write(
            &p,
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
        )
        .unwrap();
        p
    })
    .unwrap();
    let (_server, addr) = serve(web);
    // Clients that connect and never finish (or start) a handshake.
    let mut stalled = Vec::new();
    for i in 0..50 {
        let mut s = TcpStream::connect(addr).unwrap();
        if i % 2 == 0 {
            // The first bytes of a ClientHello, then nothing.
            s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).unwrap();
        }
        stalled.push(s);
    }
    let started = Instant::now();
    let r = https_get(addr, &ca, None, BOTH).expect("https scrape");
    assert!(r.starts_with("HTTP/1.1 200") && r.ends_with(METRICS), "{r}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Plain HTTP on the TLS port gets no metrics.
    assert!(!get(addr, "").contains("flux_jobs"));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn mutual_tls_requires_a_client_certificate_signed_by_the_ca() {
    let dir = temp_dir("mtls");
    let (ca, client) = make_pki(&dir);
    let yaml = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n";
    let web = WebConfig::parse(yaml, &dir).unwrap();
    let (_server, addr) = serve(web);
    let with = https_get(addr, &ca, Some(&client), BOTH).expect("scrape with a client certificate");
    assert!(with.starts_with("HTTP/1.1 200"), "{with}");
    assert!(
        https_get(addr, &ca, None, BOTH).is_err(),
        "served without a client certificate"
    );
    // A certificate from another CA is refused too.
    let other = temp_dir("mtls-other");
    let (_, stranger) = make_pki(&other);
    assert!(https_get(addr, &ca, Some(&stranger), BOTH).is_err());
    std::fs::remove_dir_all(dir).ok();
    std::fs::remove_dir_all(other).ok();
}

#[test]
fn without_a_ca_client_certificates_are_verified_against_the_system_roots() {
    // As Go does: our own CA is not among the system's, so its client
    // certificate is refused; VerifyClientCertIfGiven still serves a
    // client without one.
    let dir = temp_dir("mtls-system");
    let (ca, client) = make_pki(&dir);
    let yaml = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: VerifyClientCertIfGiven\n";
    let web = match WebConfig::parse(yaml, &dir) {
        Ok(web) => web,
        // A machine without trusted roots says so.
        Err(e) => {
            let e = e.to_string();
            assert!(
                e.contains("the system's trusted roots cannot be read"),
                "{e}"
            );
            return;
        }
    };
    let (_server, addr) = serve(web);
    assert!(https_get(addr, &ca, Some(&client), BOTH).is_err());
    let r = https_get(addr, &ca, None, BOTH).expect("a client without a certificate");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn client_allowed_sans_admit_only_certificates_that_name_one() {
    let dir = temp_dir("sans");
    let (ca, client) = make_pki(&dir);
    let config = |allowed: &str| {
        format!("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  client_allowed_sans: [{allowed}]\n")
    };
    // The client certificate's SAN is the DNS name "scraper".
    let (_server, addr) = serve(WebConfig::parse(&config("other, scraper"), &dir).unwrap());
    let r = https_get(addr, &ca, Some(&client), BOTH).expect("an allowed SAN");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let (_server, addr) = serve(WebConfig::parse(&config("other"), &dir).unwrap());
    assert!(https_get(addr, &ca, Some(&client), BOTH).is_err());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn tls_keys_are_taken_or_refused_as_exporter_toolkit_does() {
    let dir = temp_dir("tls-keys");
    make_pki(&dir);
    let tls = |extra: &str| {
        WebConfig::parse(
            &format!(
                "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n{extra}"
            ),
            &dir,
        )
        .map(drop)
        .map_err(|e| e.to_string())
    };
    // TLS 1.3 suite names are Go's too; they change nothing there.
    assert_eq!(
        tls("  cipher_suites: [TLS_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n"),
        Ok(())
    );
    for (extra, why) in [
        (
            "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA]\n",
            "tls_server_config.cipher_suites: 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA' cannot be honoured: rustls does not implement CBC suites",
        ),
        (
            "  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n",
            "tls_server_config.cipher_suites: unknown cipher: TLS_RSA_WITH_RC4_128_SHA",
        ),
        (
            "  curve_preferences: [CurveP521]\n",
            "'CurveP521' cannot be honoured: rustls does not implement it",
        ),
        (
            "  client_ca_file: ca.crt\n",
            "client CA's have been configured without a Client Auth Policy",
        ),
        (
            "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: missing-ca.crt\n",
            "missing-ca.crt",
        ),
        (
            "  client_allowed_sans: [scraper]\n",
            "tls_server_config.client_allowed_sans: no client certificate is asked for",
        ),
    ] {
        let e = tls(extra).expect_err(extra);
        assert!(e.contains(why), "{extra}: '{e}' lacks '{why}'");
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn min_version_turns_older_clients_away() {
    let dir = temp_dir("minver");
    let (ca, _) = make_pki(&dir);
    let yaml = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS13\n";
    let (_server, addr) = serve(WebConfig::parse(yaml, &dir).unwrap());
    assert!(https_get(addr, &ca, None, &[&rustls::version::TLS12]).is_err());
    assert!(https_get(addr, &ca, None, &[&rustls::version::TLS13]).is_ok());
    let e = WebConfig::parse(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS10\n",
        &dir,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("TLS10 is not supported"), "{e}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn basic_auth_and_headers_over_tls() {
    let dir = temp_dir("tls-auth");
    let (ca, _) = make_pki(&dir);
    let yaml = format!(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  alice: {}\nhttp_server_config:\n  headers:\n    Strict-Transport-Security: max-age=31536000\n",
        hash()
    );
    let (_server, addr) = serve(WebConfig::parse(&yaml, &dir).unwrap());
    let r = https_get(addr, &ca, None, BOTH).unwrap();
    assert!(r.starts_with("HTTP/1.1 401"), "{r}");
    assert!(r
        .to_ascii_lowercase()
        .contains("strict-transport-security: max-age=31536000"));
    std::fs::remove_dir_all(dir).ok();
}

/// A published exposition with a per-user family, a per-queue one and a
/// drain reason, on a server whose instance keeps its jobs private and
/// clears `scrapers`.
fn serve_private(web: WebConfig, scrapers: &[&str]) -> (Server, SocketAddr, Arc<Shared>) {
    use flux_prometheus::render::{Doc, Family};
    const USER_JOBS: Doc = Doc::gauge("flux_user_jobs", "Jobs by user.", &["user", "state"]);
    const SUBMITTED: Doc = Doc::counter(
        "flux_jobs_submitted_total",
        "Jobs submitted.",
        &["queue", "user"],
    );
    const DRAIN: Doc = Doc::info("flux_node_drain_info", "Drained.", &["node", "reason"]).private();
    let mut out = Rendered::default();
    Family::of(&mut out, &USER_JOBS)
        .sample(&[("user", "alice"), ("state", "run")], 2.0)
        .sample(&[("user", "bob"), ("state", "run")], 1.0);
    Family::of(&mut out, &SUBMITTED)
        .sample(&[("queue", "batch"), ("user", "alice")], 5.0)
        .sample(&[("queue", "batch"), ("user", "bob")], 3.0);
    Family::of(&mut out, &DRAIN).sample(&[("node", "n1"), ("reason", "bob's job broke it")], 1.0);
    let shared = Shared::new("test".into());
    shared.publish(out, true);
    shared.set_web(web);
    let (policy, _) = flux_prometheus::access::Policy::new(
        true,
        None,
        &scrapers.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
    );
    shared.set_access(policy);
    let (server, addr) = start(&shared);
    (server, addr, shared)
}

#[test]
fn in_private_mode_only_a_listed_basic_auth_user_sees_users_and_drain_reasons() {
    let yaml = format!(
        "basic_auth_users:\n  prometheus: {}\n  alice: {}\n",
        hash(),
        hash()
    );
    let (_server, addr, shared) = serve_private(parse(&yaml).unwrap(), &["prometheus"]);
    shared.set_targets(r#"[{"targets":["node3:41235"],"labels":{"flux_user":"bob"}}]"#.into());
    let cleared = get(addr, &basic("prometheus", "s3cret"));
    assert!(cleared.starts_with("HTTP/1.1 200"), "{cleared}");
    assert!(
        cleared.contains("flux_user_jobs{user=\"bob\",state=\"run\"} 1\n"),
        "{cleared}"
    );
    assert!(cleared.contains("bob's job broke it"), "{cleared}");
    assert!(!cleared.contains("# Private mode:"), "{cleared}");
    // A guest's user is authenticated, and served the aggregate view.
    let guest = get(addr, &basic("alice", "s3cret"));
    assert!(guest.starts_with("HTTP/1.1 200"), "{guest}");
    let body = guest.split("\r\n\r\n").nth(1).unwrap_or("");
    assert!(
        !body.contains("user=") && !body.contains("reason="),
        "{body}"
    );
    assert!(
        body.contains("flux_jobs_submitted_total{queue=\"batch\"} 8\n"),
        "{body}"
    );
    assert!(body.starts_with("# Private mode:"), "{body}");
    // Wrong credentials are still refused.
    assert!(get(addr, &basic("prometheus", "wrong")).starts_with("HTTP/1.1 401"));
    // Nested instances are jobs: none is listed to the guest.
    let targets = |extra: &str| {
        let mut s = TcpStream::connect(addr).unwrap();
        let req = format!("GET /-/targets HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n");
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    assert!(targets(&basic("alice", "s3cret")).ends_with("\r\n\r\n[]"));
    assert!(targets(&basic("prometheus", "s3cret")).contains("\"flux_user\":\"bob\""));
}

#[test]
fn in_private_mode_a_verified_client_certificate_san_clears_a_scraper() {
    let dir = temp_dir("private-sans");
    let (ca, client) = make_pki(&dir);
    let config = |auth: &str| {
        format!("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: {auth}\n  client_ca_file: ca.crt\n")
    };
    // The client certificate's SAN is the DNS name "scraper".
    let web = WebConfig::parse(&config("VerifyClientCertIfGiven"), &dir).unwrap();
    let (_server, addr, _shared) = serve_private(web, &["scraper"]);
    let cleared = https_get(addr, &ca, Some(&client), BOTH).expect("with a certificate");
    assert!(cleared.contains("user=\"alice\""), "{cleared}");
    let anonymous = https_get(addr, &ca, None, BOTH).expect("without a certificate");
    assert!(anonymous.starts_with("HTTP/1.1 200"), "{anonymous}");
    assert!(!anonymous.contains("user="), "{anonymous}");
    // A certificate no CA vouched for names whoever its maker likes: it
    // clears no one.
    let web = WebConfig::parse(&config("RequireAnyClientCert"), &dir).unwrap();
    let (_server, addr, _shared) = serve_private(web, &["scraper"]);
    let unverified = https_get(addr, &ca, Some(&client), BOTH).expect("any certificate");
    assert!(unverified.starts_with("HTTP/1.1 200"), "{unverified}");
    assert!(!unverified.contains("user="), "{unverified}");
    std::fs::remove_dir_all(dir).ok();
}

/// The protocol ALPN settles on for a client that offers HTTP/2 first.
fn negotiated(addr: SocketAddr, ca: &CertificateDer<'static>) -> Option<Vec<u8>> {
    let mut config = client_config(ca, BOTH).with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).unwrap();
    }
    conn.alpn_protocol().map(<[u8]>::to_vec)
}

#[test]
fn http2_is_offered_over_tls_unless_the_file_says_no() {
    let dir = temp_dir("http2");
    let (ca, _) = make_pki(&dir);
    let tls = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
    // As exporter-toolkit: http2 is on by default.
    let (_server, addr) = serve(WebConfig::parse(tls, &dir).unwrap());
    assert_eq!(negotiated(addr, &ca).as_deref(), Some(&b"h2"[..]));
    let off = format!("{tls}http_server_config:\n  http2: false\n");
    let (_server, addr) = serve(WebConfig::parse(&off, &dir).unwrap());
    assert_eq!(negotiated(addr, &ca).as_deref(), Some(&b"http/1.1"[..]));
    std::fs::remove_dir_all(dir).ok();
}
