//! The HTTP side of the module: the exporter thread (this file), who may
//! ask ([`auth`]), how often ([`pacing`]), and the exporter-toolkit
//! web-config that sets both and TLS ([`webconfig`]). Nothing here touches
//! Flux or a collector: the thread serves the newest published
//! [`Snapshot`], which the reactor thread hands over.
//!
//! One thread runs a single-threaded tokio runtime, so every connection is a
//! task, not a thread: the thread count is fixed whatever clients do. Every
//! connection has a deadline for its request headers and a lifetime cap, and
//! headers are bounded in size. `shutdown` stops the runtime and joins the
//! thread, so no code of the module runs after `mod_main` returns.
//!
//! [`Snapshot`]: crate::exposition::Snapshot

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::sync::Notify;

pub mod auth;
pub mod error;
pub mod pacing;
pub mod ratelimit;
pub mod sans;
pub mod webconfig;

use crate::access::{Audience, Scraper, View};
use crate::exposition::{Format, Selection, SelectionError, Shared, SliceRefused};
use auth::{basic_credentials, Users};

pub const METRICS_PATH: &str = "/metrics";
/// The nested instances below this one, as Prometheus `http_sd_configs`
/// reads them.
pub const TARGETS_PATH: &str = "/-/targets";
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Connections served at once; more are closed as soon as accepted.
pub const MAX_CONNECTIONS: usize = 4096;
/// Request line and headers larger than this get 431 and a closed connection.
pub const MAX_HEADER_BYTES: usize = 8192;
/// A client has this long to send its request headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Threads that may run bcrypt at once (for credentials not yet cached),
/// besides the serving thread; they exit when idle.
pub const BCRYPT_THREADS: usize = 2;
/// No connection lives longer than this; Prometheus simply reconnects.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(120);
/// The time slice the HTTP thread asks the kernel for: the shortest Linux
/// allows. With it, the thread runs as soon as a request wakes it, where
/// with the default slice (0.7-3 ms, by the number of cores) it waits for
/// a busy broker thread's slice to end first (BENCHMARKS.md, "The busy
/// broker": scrapes while the scheduler starts 10,000 jobs).
pub const WAKEUP_SLICE: Duration = Duration::from_micros(100);

pub struct Server {
    thread: Option<JoinHandle<()>>,
    shutdown: Arc<Notify>,
    local_addr: SocketAddr,
}

impl Server {
    /// Serves `shared` on `listener` from a new thread.
    pub fn start(listener: std::net::TcpListener, shared: Arc<Shared>) -> io::Result<Server> {
        let local_addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .max_blocking_threads(BCRYPT_THREADS)
            .build()?;
        let shutdown = Arc::new(Notify::new());
        let stop = Arc::clone(&shutdown);
        let thread = std::thread::Builder::new()
            .name("prometheus-http".into())
            .spawn(move || {
                // The thread runs at the broker's own priority. It used to
                // run at nice 10, to yield to the broker under a flood of
                // scrapes; the request pacing bounds what a flood costs
                // instead (BENCHMARKS.md, "50 concurrent scrapers"), and at
                // nice 10 a busy broker delayed scrapes by tens of ms
                // (measured as in BENCHMARKS.md, "The busy broker": p99 21.6 ms at
                // nice 10, 3.4 ms at 0, while the scheduler started 10,000
                // jobs). A short slice keeps its share of the CPU as it
                // is and shortens only its wait for a core when woken.
                let slice = flux::request_wakeup_slice(WAKEUP_SLICE)
                    .map(|()| WAKEUP_SLICE)
                    .map_err(|err| SliceRefused(err.to_string()));
                shared.set_http_wakeup_slice(slice);
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => accept_loop(listener, shared, stop).await,
                        Err(err) => eprintln!("flux-prometheus: cannot serve: {err}"),
                    }
                });
                // Dropping the runtime cancels every connection task and closes
                // its socket before the thread ends.
                drop(runtime);
            })?;
        Ok(Server {
            thread: Some(thread),
            shutdown,
            local_addr,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops serving, closes every socket and joins the thread.
    pub fn shutdown(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.shutdown.notify_one();
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    shutdown: Arc<Notify>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    loop {
        let accepted = tokio::select! {
            _ = shutdown.notified() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(_) => {
                // Out of file descriptors or the like: wait rather than spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        active.fetch_add(1, Ordering::Relaxed);
        let guard = ActiveConnection(Arc::clone(&active));
        let shared = Arc::clone(&shared);
        let web = shared.web();
        tokio::spawn(async move {
            let _guard = guard;
            // The handshake runs in the connection's own task, so a client
            // that never completes it holds up no one else.
            match &web.tls {
                Some(tls) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(tls));
                    let handshake = tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream));
                    if let Ok(Ok(stream)) = handshake.await {
                        let connection = stream.get_ref().1;
                        let sans = if web.verifies_client_certs {
                            verified_sans(connection)
                        } else {
                            Vec::new()
                        };
                        let h2 = connection.alpn_protocol() == Some(b"h2");
                        drop(web);
                        if h2 {
                            serve_h2_connection(stream, shared, Arc::new(sans)).await;
                        } else {
                            serve_connection(stream, shared, Arc::new(sans)).await;
                        }
                    }
                }
                None => serve_connection(stream, shared, Arc::default()).await,
            }
        });
    }
}

/// The SANs of the client certificate a TLS connection's verifier has
/// checked against a CA, written as Go writes them; none where the client
/// gave no certificate.
fn verified_sans(connection: &rustls::ServerConnection) -> Vec<String> {
    connection
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|cert| sans::subject_alt_names(cert))
        .unwrap_or_default()
}

/// What both protocols serve: [`handle`] for each request of a connection
/// whose client certificate, if a CA vouched for it, has the SANs `sans`.
#[derive(Clone)]
struct Handler {
    shared: Arc<Shared>,
    sans: Arc<Vec<String>>,
}

impl hyper::service::Service<Request<hyper::body::Incoming>> for Handler {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<hyper::body::Incoming>) -> Self::Future {
        let (shared, sans) = (Arc::clone(&self.shared), Arc::clone(&self.sans));
        Box::pin(async move { Ok(handle(&shared, &sans, &request).await) })
    }
}

/// Serves one connection until it ends, its lifetime cap passes or the
/// runtime stops: what the accept loop does for each client (public so the
/// fuzz target can drive it over an in-memory stream). `sans` are those of
/// the client certificate a CA vouched for, if any.
pub async fn serve_connection<S>(stream: S, shared: Arc<Shared>, sans: Arc<Vec<String>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = Handler { shared, sans };
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES)
        .serve_connection(TokioIo::new(stream), service);
    let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection).await;
}

/// Streams an HTTP/2 client may have open at once on a connection.
pub const MAX_H2_STREAMS: u32 = 16;

/// Serves one HTTP/2 connection (over TLS, where ALPN chose `h2`) as
/// [`serve_connection`] serves an HTTP/1.1 one: the same requests, the same
/// bound on header size, and the same lifetime cap.
pub async fn serve_h2_connection<S>(stream: S, shared: Arc<Shared>, sans: Arc<Vec<String>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = Handler { shared, sans };
    let connection = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .max_concurrent_streams(MAX_H2_STREAMS)
        .serve_connection(TokioIo::new(stream), service);
    let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection).await;
}

/// One request: its turn under `max-request-rate`, then the web config's
/// `rate_limit` (429 where it is spent), authentication where the web
/// config asks for it, then [`respond`] with what the access rule serves
/// this scraper, then the web config's extra headers.
///
/// The turn comes first, so that a flood is paced whatever it is answered:
/// with the 429 first, as exporter-toolkit answers it at once, 50 clients
/// got 119,000 429s a second, which took 70 % of a core from the broker
/// and 28 % of its job throughput (BENCHMARKS.md, "50 concurrent
/// scrapers").
async fn handle(
    shared: &Shared,
    sans: &[String],
    request: &Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let wait = shared.pacer.delay(tokio::time::Instant::now().into_std());
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    let web = shared.web();
    if !web.rate_limit.allow() {
        return ratelimit::too_many_requests();
    }
    let user = match &web.users {
        Some(users) => authorized(users, request.headers()).await,
        None => Some(None),
    };
    let mut r = if let Some(user) = user {
        let scraper = Scraper {
            user,
            sans: sans.to_vec(),
        };
        let audience = shared.access().audience(&scraper);
        respond(
            shared,
            audience,
            request.method(),
            request.uri().path(),
            request.uri().query(),
            request.headers(),
        )
    } else {
        unauthorized()
    };
    for (name, value) in &web.headers {
        r.headers_mut().insert(name.clone(), value.clone());
    }
    r
}

/// Checks basic-auth credentials: a cached outcome at once, otherwise
/// bcrypt on the runtime's small blocking pool, so a client sending wrong
/// passwords cannot stall the thread that serves everyone else. The user
/// the credentials prove, or None where they prove none.
async fn authorized(users: &Arc<Users>, headers: &HeaderMap) -> Option<Option<String>> {
    let (user, password) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(basic_credentials)?;
    let ok = match users.cached(&user, &password) {
        Some(ok) => ok,
        None => {
            let users = Arc::clone(users);
            let (u, p) = (user.clone(), password);
            tokio::task::spawn_blocking(move || users.verify(&u, &p))
                .await
                .unwrap_or(false)
        }
    };
    ok.then_some(Some(user))
}

pub fn unauthorized() -> Response<Full<Bytes>> {
    let mut r = response(
        StatusCode::UNAUTHORIZED,
        "text/plain; charset=utf-8",
        "Unauthorized\n",
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"flux-prometheus\", charset=\"UTF-8\""),
    );
    r
}

struct ActiveConnection(Arc<AtomicUsize>);

impl Drop for ActiveConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// True when an Accept-Encoding header value allows gzip (q > 0).
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            if !coding.eq_ignore_ascii_case("gzip") && coding != "*" {
                return false;
            }
            !parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            })
        })
}

/// The format an Accept header asks for: OpenMetrics when it accepts
/// `application/openmetrics-text` (version 1.0.0 or unversioned; 0.0.1
/// parsers read 1.0.0 too) at least as much as the text format, which is
/// what Prometheus's own clients do; the text format otherwise.
pub fn negotiate(headers: &HeaderMap) -> Format {
    let (mut openmetrics, mut text) = (0.0f32, 0.0f32);
    for item in headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = item.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let (mut q, mut version) = (1.0f32, None);
        for p in parts {
            if let Some(v) = p.strip_prefix("q=") {
                q = v.parse().unwrap_or(0.0);
            } else if let Some(v) = p.strip_prefix("version=") {
                version = Some(v.trim_matches('"').to_string());
            }
        }
        match media.as_str() {
            "application/openmetrics-text"
                if matches!(version.as_deref(), None | Some("1.0.0") | Some("0.0.1")) =>
            {
                openmetrics = openmetrics.max(q)
            }
            "text/plain" | "text/*" | "*/*" => text = text.max(q),
            _ => {}
        }
    }
    if openmetrics > 0.0 && openmetrics >= text {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

/// The collectors a `/metrics` query asks for: node_exporter's
/// `collect[]=NAME` (only these) and `exclude[]=NAME` (all but these),
/// each repeatable. Other parameters are refused, so that a mistyped one
/// is not silently served as everything.
pub fn selection(query: Option<&str>) -> Result<Selection, SelectionError> {
    let mut selection = Selection::default();
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let list = match &*key {
            "collect[]" => &mut selection.collect,
            "exclude[]" => &mut selection.exclude,
            other => return Err(SelectionError::UnknownParameter(other.to_string())),
        };
        if value.is_empty() {
            return Err(SelectionError::NoCollector(key.into_owned()));
        }
        list.push(value.into_owned());
    }
    if !selection.collect.is_empty() && !selection.exclude.is_empty() {
        return Err(SelectionError::Both);
    }
    Ok(selection)
}

fn bad_request(why: String) -> Response<Full<Bytes>> {
    response(
        StatusCode::BAD_REQUEST,
        "text/plain; charset=utf-8",
        format!("{why}\n"),
    )
}

fn landing_page(shared: &Shared) -> String {
    let instance = html_escape(&shared.instance);
    format!(
        "<!DOCTYPE html>\n<html><head><title>Flux Prometheus exporter</title></head><body>\n\
         <h1>Flux Prometheus exporter</h1>\n\
         <p>Metrics of the Flux instance {instance}, exported by the flux-prometheus broker module {}.</p>\n\
         <ul><li><a href=\"{METRICS_PATH}\">Metrics</a></li>\
         <li><a href=\"/-/healthy\">Health</a></li><li><a href=\"/-/ready\">Readiness</a></li></ul>\n\
         </body></html>\n",
        crate::VERSION
    )
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The whole HTTP behaviour, as a pure function of request, shared state
/// and what the access rule serves the scraper.
pub fn respond(
    shared: &Shared,
    audience: Audience,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Response<Full<Bytes>> {
    let known = matches!(
        path,
        METRICS_PATH | TARGETS_PATH | "/" | "/-/healthy" | "/-/ready"
    );
    if !known {
        return response(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "Not found\n",
        );
    }
    if method != Method::GET && method != Method::HEAD {
        let mut r = response(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "Method not allowed\n",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match path {
        METRICS_PATH => {
            let selection = match selection(query) {
                Ok(selection) => selection,
                Err(why) => return bad_request(why.to_string()),
            };
            if let Err(why) = shared.check_selection(&selection) {
                return bad_request(why.to_string());
            }
            let snapshot = shared.snapshot().select(&selection, audience);
            let format = negotiate(headers);
            let content_type = match format {
                Format::Text => TEXT_CONTENT_TYPE,
                Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
            };
            let gzip = accepts_gzip(headers);
            let body = if gzip {
                snapshot.gzip(format)
            } else {
                snapshot.body(format)
            };
            let mut r = response(StatusCode::OK, content_type, body);
            if gzip {
                r.headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            r.headers_mut().insert(
                header::VARY,
                HeaderValue::from_static("Accept, Accept-Encoding"),
            );
            r
        }
        // Nested instances are jobs, and their targets name them and their
        // users: none is listed to a scraper not cleared for that.
        TARGETS_PATH => response(
            StatusCode::OK,
            "application/json",
            match audience.view {
                View::Full => shared.targets(),
                View::Aggregate => Bytes::from_static(b"[]"),
            },
        ),
        "/" => response(
            StatusCode::OK,
            "text/html; charset=utf-8",
            landing_page(shared),
        ),
        "/-/healthy" => response(StatusCode::OK, "text/plain; charset=utf-8", "Healthy\n"),
        _ if shared.is_ready() => response(StatusCode::OK, "text/plain; charset=utf-8", "Ready\n"),
        _ => response(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            "Not ready: a collector has not reported yet\n",
        ),
    }
}
