//! Raw bytes from a client, through the module's real connection handling
//! (hyper's parser, authentication, content negotiation, the handlers) over
//! an in-memory stream. Any panic is a finding; so is a connection that is
//! still open after the client has sent everything and closed its side.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use flux_prometheus::exposition::Shared;
use flux_prometheus::render::Rendered;
use flux_prometheus::http::webconfig::WebConfig;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const METRICS: &str = "# HELP flux_jobs_submitted_total Jobs submitted.\n# TYPE flux_jobs_submitted_total counter\nflux_jobs_submitted_total{queue=\"batch\"} 5\n# HELP flux_instance_info The instance.\n# TYPE flux_instance_info gauge\nflux_instance_info{version=\"0.88\"} 1\n";

fn shared(with_auth: bool) -> Arc<Shared> {
    let shared = Shared::new("fuzz".into());
    shared.publish(Rendered::verbatim(METRICS.into()), true);
    // Pacing is tested on its own; here every input should reach the parser
    // without queueing behind the millions before it.
    shared.pacer.set_rate(0);
    if with_auth {
        // Cost 4: the fuzzer should spend its time parsing, not hashing.
        let hash = bcrypt::hash("pw", 4).expect("bcrypt");
        let web = WebConfig::parse(&format!("basic_auth_users:\n  u: {hash}\n"), ".".as_ref())
            .expect("web config");
        shared.set_web(web);
        // Private, with the basic-auth user cleared: both views are served.
        shared.set_access(flux_prometheus::access::Policy {
            private: Some(flux_prometheus::access::Reason::Module),
            scrapers: ["u".to_string()].into(),
        });
    }
    shared
}

fuzz_target!(|data: &[u8]| {
    static PLAIN: OnceLock<Arc<Shared>> = OnceLock::new();
    static AUTH: OnceLock<Arc<Shared>> = OnceLock::new();
    let shared = if data.first().is_some_and(|b| b & 1 == 1) {
        AUTH.get_or_init(|| shared(true))
    } else {
        PLAIN.get_or_init(|| shared(false))
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let serving = tokio::spawn(flux_prometheus::http::serve_connection(
            server,
            Arc::clone(shared),
            Arc::default(),
        ));
        let _ = client.write_all(data).await;
        let _ = client.shutdown().await;
        let mut out = Vec::new();
        // Time is paused: the header deadline passes at once if the
        // request is incomplete, so every input ends.
        let _ = tokio::time::timeout(Duration::from_secs(200), client.read_to_end(&mut out)).await;
        drop(client);
        let finished = tokio::time::timeout(Duration::from_secs(200), serving).await;
        assert!(
            finished.is_ok(),
            "connection still open after the client left"
        );
        if let Ok(Err(join)) = finished {
            if join.is_panic() {
                std::panic::resume_unwind(join.into_panic());
            }
        }
    });
    // The pure helpers on the same bytes, as header values and as text.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = flux_prometheus::http::auth::basic_credentials(text);
        if let Ok(value) = hyper::header::HeaderValue::from_str(text) {
            let mut headers = hyper::HeaderMap::new();
            headers.insert(hyper::header::ACCEPT, value.clone());
            headers.insert(hyper::header::ACCEPT_ENCODING, value);
            let _ = flux_prometheus::http::negotiate(&headers);
            let _ = flux_prometheus::http::accepts_gzip(&headers);
        }
    }
});
