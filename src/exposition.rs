//! The hand-off between the reactor thread, which publishes rendered metrics,
//! and the HTTP thread, which serves them. Nothing here knows Flux.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use bytes::Bytes;

/// One immutable rendering of every metric.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub text: Bytes,
    gzip: OnceLock<Bytes>,
}

impl Snapshot {
    pub fn new(text: String) -> Snapshot {
        Snapshot {
            text: Bytes::from(text),
            gzip: OnceLock::new(),
        }
    }

    /// The text gzip-compressed, computed once per snapshot on first request.
    pub fn gzip(&self) -> Bytes {
        self.gzip
            .get_or_init(|| {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                // Writing to a Vec cannot fail.
                let _ = encoder.write_all(&self.text);
                Bytes::from(encoder.finish().unwrap_or_default())
            })
            .clone()
    }
}

/// What both threads share.
#[derive(Debug)]
pub struct Shared {
    current: Mutex<Arc<Snapshot>>,
    ready: AtomicBool,
    /// A short description of the instance for the landing page.
    pub instance: String,
}

impl Shared {
    pub fn new(instance: String) -> Arc<Shared> {
        Arc::new(Shared {
            current: Mutex::new(Arc::new(Snapshot::default())),
            ready: AtomicBool::new(false),
            instance,
        })
    }

    pub fn publish(&self, text: String, ready: bool) {
        let snapshot = Arc::new(Snapshot::new(text));
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = snapshot;
        self.ready.store(ready, Ordering::Release);
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.current.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}
