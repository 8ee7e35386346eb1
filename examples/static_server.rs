//! The control for scrape latency on a busy machine: the module's HTTP
//! stack (hyper's HTTP/1 server on one current-thread tokio runtime, as the
//! `prometheus-http` thread runs it) serving one fixed body, in a process of
//! its own, with no Flux and no collector behind it. Scraped the way the
//! module is, while the broker is equally busy, its latency tail is what
//! the machine itself adds to any scrape (scripts/bench-largest, step 6's
//! `control` mode).
//!
//!   cargo run --release --example static_server -- FILE [HOST:PORT]
//!
//! Serves FILE's bytes to every request, with `Content-Encoding: gzip` when
//! FILE's name ends in `.gz`. Binds HOST:PORT (default 127.0.0.1:0) and
//! prints the address it bound on one line. With `WAKEUP_SLICE_US=N`, its
//! thread asks for an N µs time slice, as the module's does
//! (examples/common/wakeup.rs).

use std::convert::Infallible;
use std::io::Write;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use hyper::Response;
use hyper_util::rt::TokioIo;

#[path = "common/wakeup.rs"]
mod wakeup;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(file) = args.get(1) else {
        eprintln!("usage: static_server FILE [HOST:PORT]");
        std::process::exit(2);
    };
    let addr = args.get(2).map(String::as_str).unwrap_or("127.0.0.1:0");
    let body = match std::fs::read(file) {
        Ok(bytes) => Bytes::from(bytes),
        Err(err) => {
            eprintln!("static_server: cannot read {file}: {err}");
            std::process::exit(1);
        }
    };
    let gzip = file.ends_with(".gz");
    wakeup::slice_from_env("static_server");
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("static_server: cannot start a runtime: {err}");
            std::process::exit(1);
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => listener,
            Err(err) => {
                eprintln!("static_server: cannot bind {addr}: {err}");
                std::process::exit(1);
            }
        };
        if let Ok(bound) = listener.local_addr() {
            println!("{bound}");
            let _ = std::io::stdout().flush();
        }
        loop {
            let Ok((stream, _peer)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let body = body.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_request| {
                    let mut response = Response::new(Full::new(body.clone()));
                    response.headers_mut().insert(
                        CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                    );
                    if gzip {
                        response
                            .headers_mut()
                            .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                    }
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}
