//! The hand-off between the reactor thread, which publishes rendered metrics,
//! and the HTTP thread, which serves them. Nothing here knows Flux.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use bytes::Bytes;

use crate::pacing::{Pacer, DEFAULT_MAX_REQUEST_RATE};
use crate::webconfig::WebConfig;

/// The exposition formats served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0.0.
    OpenMetrics,
}

/// One immutable rendering of every metric. The OpenMetrics form and the
/// compressed forms are derived on the HTTP thread, once per snapshot and
/// only if asked for, so the reactor thread never pays for them.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub text: Bytes,
    openmetrics: OnceLock<Bytes>,
    gzip: [OnceLock<Bytes>; 2],
}

impl Snapshot {
    pub fn new(text: String) -> Snapshot {
        Snapshot {
            text: Bytes::from(text),
            ..Default::default()
        }
    }

    pub fn body(&self, format: Format) -> Bytes {
        match format {
            Format::Text => self.text.clone(),
            Format::OpenMetrics => self
                .openmetrics
                .get_or_init(|| Bytes::from(openmetrics(&String::from_utf8_lossy(&self.text))))
                .clone(),
        }
    }

    /// The body gzip-compressed, computed once per snapshot and format.
    pub fn gzip(&self, format: Format) -> Bytes {
        self.gzip[format as usize]
            .get_or_init(|| {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                // Writing to a Vec cannot fail.
                let _ = encoder.write_all(&self.body(format));
                Bytes::from(encoder.finish().unwrap_or_default())
            })
            .clone()
    }
}

/// What both threads share.
#[derive(Debug)]
pub struct Shared {
    current: Mutex<Arc<Snapshot>>,
    web: Mutex<Arc<WebConfig>>,
    /// The nested instances' http_sd list (`/-/targets`), ready to send:
    /// each refresh takes a reference, not a copy.
    targets: Mutex<Bytes>,
    ready: AtomicBool,
    /// Spaces requests out (`max-request-rate`).
    pub pacer: Pacer,
    /// A short description of the instance for the landing page.
    pub instance: String,
}

impl Shared {
    pub fn new(instance: String) -> Arc<Shared> {
        Arc::new(Shared {
            current: Mutex::new(Arc::new(Snapshot::default())),
            web: Mutex::new(Arc::new(WebConfig::default())),
            targets: Mutex::new(Bytes::from_static(b"[]")),
            ready: AtomicBool::new(false),
            pacer: Pacer::new(DEFAULT_MAX_REQUEST_RATE),
            instance,
        })
    }

    pub fn publish(&self, text: String, ready: bool) {
        let snapshot = Arc::new(Snapshot::new(text));
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = snapshot;
        self.ready.store(ready, Ordering::Release);
    }

    pub fn set_targets(&self, json: String) {
        *self.targets.lock().unwrap_or_else(PoisonError::into_inner) = Bytes::from(json);
    }

    pub fn targets(&self) -> Bytes {
        self.targets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.current.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Authentication, TLS and headers for connections and requests from
    /// now on; those under way keep what they started with.
    pub fn set_web(&self, web: WebConfig) {
        *self.web.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(web);
    }

    pub fn web(&self) -> Arc<WebConfig> {
        Arc::clone(&self.web.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// The OpenMetrics 1.0.0 form of a text-format exposition as `render`
/// writes it (HELP then TYPE before each family's samples). Samples are the
/// same; what differs is in the metadata: a counter family is named without
/// its `_total` suffix (which its samples keep), a gauge family named
/// `_info` whose every sample is 1 is an info family named without the
/// suffix, HELP escapes double quotes, and the exposition ends in `# EOF`.
pub fn openmetrics(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut lines = text.lines().filter(|l| !l.is_empty()).peekable();
    while let Some(line) = lines.next() {
        let Some(help) = line.strip_prefix("# HELP ") else {
            if !line.starts_with('#') {
                out.push_str(line);
                out.push('\n');
            }
            continue;
        };
        let (name, doc) = help.split_once(' ').unwrap_or((help, ""));
        let kind = lines
            .next_if(|l| l.starts_with("# TYPE "))
            .and_then(|t| t.rsplit_once(' ').map(|(_, kind)| kind))
            .unwrap_or("unknown");
        let mut samples = Vec::new();
        while let Some(sample) = lines.next_if(|l| !l.starts_with('#')) {
            samples.push(sample);
        }
        let all_ones = || {
            samples
                .iter()
                .all(|l| l.rsplit_once(' ').is_some_and(|(_, v)| v == "1"))
        };
        let (family, kind) = match kind {
            "counter" => (name.strip_suffix("_total").unwrap_or(name), kind),
            "gauge" if name.ends_with("_info") && all_ones() => {
                (name.strip_suffix("_info").unwrap_or(name), "info")
            }
            _ => (name, kind),
        };
        out.push_str("# HELP ");
        out.push_str(family);
        out.push(' ');
        out.push_str(&doc.replace('"', "\\\""));
        out.push_str("\n# TYPE ");
        out.push_str(family);
        out.push(' ');
        out.push_str(kind);
        out.push('\n');
        for sample in samples {
            out.push_str(sample);
            out.push('\n');
        }
    }
    out.push_str("# EOF\n");
    out
}
