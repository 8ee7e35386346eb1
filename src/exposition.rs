//! The hand-off between the reactor thread, which publishes rendered metrics,
//! and the HTTP thread, which serves them. Nothing here knows Flux.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;

use crate::access::{Audience, Policy, View, AGGREGATE_COMMENT};
use crate::config::DEFAULT_MAX_REQUEST_RATE;
use crate::http::pacing::Pacer;
use crate::http::webconfig::WebConfig;
use crate::render::{FamilyIndex, Privacy, Rendered};
use crate::state::CollectorStatus;
use crate::stats::{PublishStats, Timings};

/// The exposition formats served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0.0.
    OpenMetrics,
}

/// How a part's text is made when it is first needed, on the HTTP thread:
/// for the per-node and per-job families, whose text grows with the
/// cluster, so that the reactor thread only hands over what they are made
/// from, and a snapshot nobody scrapes costs nothing to render.
pub type RenderLater = Box<dyn Fn(&mut Rendered) + Send + Sync>;

/// One collector's families, with the forms derived from them, each made
/// once: a part that did not change is handed from snapshot to snapshot
/// with what was made of it, so a scrape compresses only what changed.
/// Each part is compressed as deflate blocks that end on a byte boundary
/// (a sync flush) and are not final, so that a body's parts concatenate
/// into the one deflate stream of a single gzip member, as pigz joins its
/// blocks; the member's CRC is combined from the parts'.
pub struct Part {
    later: Option<RenderLater>,
    /// The text format, and the index of its families.
    rendered: OnceLock<(Bytes, Vec<FamilyIndex>)>,
    openmetrics: OnceLock<Bytes>,
    deflated: [OnceLock<Deflated>; 2],
    /// The aggregate view of it (crate::access), made when first asked.
    aggregate: OnceLock<Arc<Part>>,
}

/// A part's text as non-final deflate blocks, with its CRC-32 and length.
#[derive(Debug, Clone)]
struct Deflated {
    blocks: Bytes,
    crc: crc32fast::Hasher,
    length: usize,
}

impl std::fmt::Debug for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Part")
            .field("rendered", &self.rendered.get().map(|(text, _)| text.len()))
            .finish()
    }
}

impl Part {
    pub fn ready(rendered: Rendered) -> Arc<Part> {
        let part = Part::empty(None);
        let (text, families) = rendered.into_parts();
        let _ = part.rendered.set((Bytes::from(text), families));
        Arc::new(part)
    }

    pub fn later(render: RenderLater) -> Arc<Part> {
        Arc::new(Part::empty(Some(render)))
    }

    fn empty(later: Option<RenderLater>) -> Part {
        Part {
            later,
            rendered: OnceLock::new(),
            openmetrics: OnceLock::new(),
            deflated: [OnceLock::new(), OnceLock::new()],
            aggregate: OnceLock::new(),
        }
    }

    /// This part as a scraper with `view` is served it: itself, or its
    /// aggregate view, made once. A part with nothing private is its own.
    fn view(self: &Arc<Part>, view: View) -> Arc<Part> {
        // (Not kept in `aggregate`, where it would hold itself.)
        if view == View::Full
            || self
                .rendered()
                .1
                .iter()
                .all(|f| f.privacy == Privacy::Public)
        {
            return Arc::clone(self);
        }
        Arc::clone(self.aggregate.get_or_init(|| {
            let (text, families) = self.rendered();
            // The text is the renderer's own, so UTF-8.
            let text = std::str::from_utf8(text).unwrap_or_default();
            Part::ready(crate::access::aggregate(text, families))
        }))
    }

    fn rendered(&self) -> &(Bytes, Vec<FamilyIndex>) {
        self.rendered.get_or_init(|| {
            let mut out = Rendered::default();
            if let Some(render) = &self.later {
                render(&mut out);
            }
            let (text, families) = out.into_parts();
            (Bytes::from(text), families)
        })
    }

    pub fn text(&self) -> &Bytes {
        &self.rendered().0
    }

    fn body(&self, format: Format) -> &Bytes {
        match format {
            Format::Text => self.text(),
            Format::OpenMetrics => self.openmetrics.get_or_init(|| {
                let (text, families) = self.rendered();
                // The text is the renderer's own, so UTF-8.
                let text = std::str::from_utf8(text).unwrap_or_default();
                Bytes::from(crate::render::openmetrics(text, families))
            }),
        }
    }

    fn deflated(&self, format: Format) -> &Deflated {
        self.deflated[format as usize].get_or_init(|| deflate(self.body(format)))
    }
}

fn deflate(data: &[u8]) -> Deflated {
    let mut crc = crc32fast::Hasher::new();
    crc.update(data);
    if data.is_empty() {
        return Deflated {
            blocks: Bytes::new(),
            crc,
            length: 0,
        };
    }
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing to a Vec cannot fail. The flush is a sync flush: the blocks
    // end on a byte boundary, and none is final.
    let _ = encoder.write_all(data);
    let _ = encoder.flush();
    let blocks = Bytes::from(std::mem::take(encoder.get_mut()));
    Deflated {
        blocks,
        crc,
        length: data.len(),
    }
}

/// A gzip member of the concatenated parts: RFC 1952's header, the parts'
/// deflate blocks, an empty final block, then the CRC-32 and the length.
fn gzip_member(parts: &[&Deflated]) -> Bytes {
    const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    // BFINAL=1, BTYPE=01 (fixed Huffman), then end-of-block.
    const FINAL_EMPTY_BLOCK: [u8; 2] = [0x03, 0x00];
    let size: usize = parts.iter().map(|p| p.blocks.len()).sum();
    let mut out = Vec::with_capacity(size + 20);
    out.extend_from_slice(&HEADER);
    let mut crc = crc32fast::Hasher::new();
    let mut length = 0usize;
    for part in parts {
        out.extend_from_slice(&part.blocks);
        crc.combine(&part.crc);
        length += part.length;
    }
    out.extend_from_slice(&FINAL_EMPTY_BLOCK);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    // ISIZE: the length modulo 2^32.
    out.extend_from_slice(&(length as u32).to_le_bytes());
    Bytes::from(out)
}

/// What the reactor thread hands over at each publish: each collector's
/// families apart, so that `/metrics?collect[]=NAME` can serve some of
/// them, and every collector's status for the exporter's own families,
/// which a selection narrows to its collectors.
#[derive(Debug, Default)]
pub struct Exposition {
    pub parts: Vec<(&'static str, Arc<Part>)>,
    pub statuses: Vec<CollectorStatus>,
}

/// Each collector's last render, with the generation of its section it was
/// made from and the length of its text: a collector whose section has not
/// changed is not rendered again.
#[derive(Default)]
pub struct RenderCache {
    parts: BTreeMap<&'static str, CachedPart>,
    /// The thread's CPU clock, where renders are timed.
    clock: Option<fn() -> Option<f64>>,
    /// The CPU time of each collector's renders.
    spent: BTreeMap<&'static str, Timings>,
}

/// One collector's last render.
pub struct CachedPart {
    /// The generation of its section the render was made from.
    pub generation: u64,
    pub part: Arc<Part>,
    /// The length of its text (0 for a part rendered on the HTTP thread).
    pub len: usize,
}

impl RenderCache {
    /// A cache that times each render by `clock` (a thread's CPU time, in
    /// seconds).
    pub fn timed(clock: fn() -> Option<f64>) -> RenderCache {
        RenderCache {
            clock: Some(clock),
            ..RenderCache::default()
        }
    }

    pub fn last(&self, name: &str) -> Option<&CachedPart> {
        self.parts.get(name)
    }

    pub fn keep(&mut self, name: &'static str, generation: u64, part: Arc<Part>, len: usize) {
        self.parts.insert(
            name,
            CachedPart {
                generation,
                part,
                len,
            },
        );
    }

    pub fn forget(&mut self, name: &str) {
        self.parts.remove(name);
    }

    /// Runs `render` for collector `name`, timing it where the cache times.
    pub fn time<T>(&mut self, name: &'static str, render: impl FnOnce() -> T) -> T {
        let Some(clock) = self.clock else {
            return render();
        };
        let started = clock();
        let made = render();
        if let (Some(a), Some(b)) = (started, clock()) {
            self.spent.entry(name).or_default().push(b - a);
        }
        made
    }

    /// Forgets the render times so far.
    pub fn forget_spent(&mut self) {
        self.spent.clear();
    }

    /// The CPU time of each collector's renders so far.
    pub fn spent(&self) -> impl Iterator<Item = (&'static str, PublishStats)> + '_ {
        self.spent.iter().map(|(name, t)| (*name, t.stats()))
    }
}

/// Why a `/metrics` query cannot be served (a 400 with this text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    #[error("unknown query parameter '{0}' (expected collect[]=COLLECTOR or exclude[]=COLLECTOR)")]
    UnknownParameter(String),
    #[error("{0}= names no collector")]
    NoCollector(String),
    #[error("collect[] and exclude[] cannot be used together")]
    Both,
    /// A collector that is unknown, or known but not enabled.
    #[error("{param}={name}: collector '{name}' {} (enabled collectors: {})", if *.known { "is not enabled" } else { "is unknown" }, .enabled.join(", "))]
    NotServed {
        param: &'static str,
        name: String,
        known: bool,
        enabled: Vec<String>,
    },
}

/// Which collectors a request asks for (node_exporter's `collect[]` and
/// `exclude[]`); empty lists ask for every enabled one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub collect: Vec<String>,
    pub exclude: Vec<String>,
}

impl Selection {
    pub fn is_all(&self) -> bool {
        self.collect.is_empty() && self.exclude.is_empty()
    }

    fn wants(&self, name: &str) -> bool {
        (self.collect.is_empty() || self.collect.iter().any(|c| c == name))
            && !self.exclude.iter().any(|e| e == name)
    }
}

/// One body as served: the chosen parts, then the exporter's own families
/// for the chosen collectors, in each format and encoding once.
#[derive(Debug)]
pub struct Body {
    /// Text the text format opens with (OpenMetrics has no comments).
    intro: &'static str,
    parts: Vec<Arc<Part>>,
    text: OnceLock<Bytes>,
    openmetrics: OnceLock<Bytes>,
    gzip: [OnceLock<Bytes>; 2],
}

/// The OpenMetrics end, compressed once.
static EOF_DEFLATED: OnceLock<Deflated> = OnceLock::new();

impl Body {
    fn new(intro: &'static str, parts: Vec<Arc<Part>>) -> Body {
        Body {
            intro,
            parts,
            text: OnceLock::new(),
            openmetrics: OnceLock::new(),
            gzip: [OnceLock::new(), OnceLock::new()],
        }
    }

    pub fn body(&self, format: Format) -> Bytes {
        let cell = match format {
            Format::Text => &self.text,
            Format::OpenMetrics => &self.openmetrics,
        };
        cell.get_or_init(|| {
            // Sized once: the full set is over 10 MB at the largest size,
            // and growing by doubling would copy it again at each step.
            let size = self
                .parts
                .iter()
                .map(|p| p.body(format).len())
                .sum::<usize>();
            let mut out = Vec::with_capacity(self.intro.len() + size + b"# EOF\n".len());
            if format == Format::Text {
                out.extend_from_slice(self.intro.as_bytes());
            }
            for part in &self.parts {
                out.extend_from_slice(part.body(format));
            }
            if format == Format::OpenMetrics {
                out.extend_from_slice(b"# EOF\n");
            }
            Bytes::from(out)
        })
        .clone()
    }

    /// The body gzip-compressed, from the parts' deflate blocks, each
    /// made once.
    pub fn gzip(&self, format: Format) -> Bytes {
        self.gzip[format as usize]
            .get_or_init(|| {
                let intro = (format == Format::Text && !self.intro.is_empty())
                    .then(|| deflate(self.intro.as_bytes()));
                let mut parts: Vec<&Deflated> = intro.iter().collect();
                parts.extend(self.parts.iter().map(|p| p.deflated(format)));
                if format == Format::OpenMetrics {
                    parts.push(EOF_DEFLATED.get_or_init(|| deflate(b"# EOF\n")));
                }
                gzip_member(&parts)
            })
            .clone()
    }
}

/// Distinct selections whose bodies are kept per snapshot: a site scrapes
/// with two or three; a client sending endless new ones only costs itself
/// an assembly per request.
const KEPT_SELECTIONS: usize = 8;

/// One immutable rendering of every metric.
#[derive(Debug, Default)]
pub struct Snapshot {
    exposition: Exposition,
    selected: Mutex<Vec<(Selection, Audience, Arc<Body>)>>,
}

impl Snapshot {
    /// A snapshot of one rendered part, with no collector of its own.
    pub fn new(rendered: Rendered) -> Snapshot {
        Snapshot::of(Exposition {
            parts: vec![("", Part::ready(rendered))],
            statuses: Vec::new(),
        })
    }

    pub fn of(exposition: Exposition) -> Snapshot {
        Snapshot {
            exposition,
            ..Default::default()
        }
    }

    /// The text of the whole snapshot, as an instance that keeps nothing
    /// private serves it.
    pub fn text(&self) -> Bytes {
        self.select(&Selection::default(), Audience::default())
            .body(Format::Text)
    }

    /// The body for `selection` (already checked against the collectors)
    /// as `audience` is served it.
    pub fn select(&self, selection: &Selection, audience: Audience) -> Arc<Body> {
        let mut kept = self.selected.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, _, body)) = kept
            .iter()
            .find(|(s, a, _)| s == selection && *a == audience)
        {
            return Arc::clone(body);
        }
        let body = Arc::new(self.assemble(selection, audience));
        if kept.len() < KEPT_SELECTIONS {
            kept.push((selection.clone(), audience, Arc::clone(&body)));
        }
        body
    }

    fn assemble(&self, selection: &Selection, audience: Audience) -> Body {
        let mut parts: Vec<Arc<Part>> = self
            .exposition
            .parts
            .iter()
            .filter(|(name, _)| name.is_empty() || selection.wants(name))
            .map(|(_, part)| part.view(audience.view))
            .collect();
        let statuses: Vec<&CollectorStatus> = self
            .exposition
            .statuses
            .iter()
            .filter(|c| selection.wants(c.name))
            .collect();
        if !self.exposition.statuses.is_empty() {
            let mut own = Rendered::default();
            crate::render::exporter_families(
                &statuses,
                (audience.mode(), audience.view.as_str()),
                &mut own,
            );
            parts.push(Part::ready(own));
        }
        let intro = match audience.view {
            View::Full => "",
            View::Aggregate => AGGREGATE_COMMENT,
        };
        Body::new(intro, parts)
    }
}

/// What both threads share.
///
/// The snapshot and the web config are swapped, not locked: a scrape
/// never waits for the reactor thread. Under a mutex, the reactor dropped
/// the snapshot it replaced while holding the lock (the per-node and
/// per-job texts run to megabytes at the largest size), and on a machine
/// whose cores the broker keeps busy it could be preempted there, holding
/// up every scrape until it ran again.
#[derive(Debug)]
pub struct Shared {
    current: ArcSwap<Snapshot>,
    web: ArcSwap<WebConfig>,
    /// Who may see series that name users and jobs.
    access: ArcSwap<Policy>,
    /// The nested instances' http_sd list (`/-/targets`), ready to send:
    /// each refresh takes a reference, not a copy.
    targets: Mutex<Bytes>,
    ready: AtomicBool,
    /// Every collector the module has, enabled or not: a selection naming
    /// one that is not enabled is told so.
    known: OnceLock<Vec<&'static str>>,
    /// Spaces requests out (`max-request-rate`).
    pub pacer: Pacer,
    /// A short description of the instance for the landing page.
    pub instance: String,
    /// The time slice the HTTP thread got from the kernel, or why not
    /// (`flux module stats`); None before the thread has started.
    http_wakeup_slice: Mutex<Option<Result<Duration, SliceRefused>>>,
}

/// The kernel's refusal of a short time slice for the HTTP thread, as it
/// said it (kept for `flux module stats`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SliceRefused(pub String);

impl Shared {
    pub fn new(instance: String) -> Arc<Shared> {
        Arc::new(Shared {
            current: ArcSwap::from_pointee(Snapshot::default()),
            web: ArcSwap::from_pointee(WebConfig::default()),
            access: ArcSwap::from_pointee(Policy::default()),
            targets: Mutex::new(Bytes::from_static(b"[]")),
            ready: AtomicBool::new(false),
            known: OnceLock::new(),
            pacer: Pacer::new(DEFAULT_MAX_REQUEST_RATE),
            instance,
            http_wakeup_slice: Mutex::new(None),
        })
    }

    /// Set by the HTTP thread as it starts (again at each restart).
    pub fn set_http_wakeup_slice(&self, slice: Result<Duration, SliceRefused>) {
        *self
            .http_wakeup_slice
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(slice);
    }

    pub fn http_wakeup_slice(&self) -> Option<Result<Duration, SliceRefused>> {
        self.http_wakeup_slice
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Publishes rendered families alone (no collector's).
    pub fn publish(&self, rendered: Rendered, ready: bool) {
        self.publish_snapshot(Snapshot::new(rendered), ready);
    }

    pub fn publish_snapshot(&self, snapshot: Snapshot, ready: bool) {
        // The snapshot replaced is dropped here, after the swap, by
        // whichever thread lets go of it last.
        self.current.store(Arc::new(snapshot));
        self.ready.store(ready, Ordering::Release);
    }

    /// Names every collector there is, for the messages about selections.
    pub fn set_known_collectors(&self, names: Vec<&'static str>) {
        let _ = self.known.set(names);
    }

    /// Checks a selection against the collectors of the current snapshot:
    /// the message names the first collector that cannot be served.
    pub fn check_selection(&self, selection: &Selection) -> Result<(), SelectionError> {
        let snapshot = self.snapshot();
        let enabled: Vec<&str> = snapshot
            .exposition
            .parts
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| !name.is_empty())
            .collect();
        let known = self.known.get().map(Vec::as_slice).unwrap_or(&[]);
        for (param, names) in [
            ("collect[]", &selection.collect),
            ("exclude[]", &selection.exclude),
        ] {
            for name in names {
                let is_known = known.contains(&name.as_str());
                // Excluding a collector that is off asks for nothing wrong;
                // before the first publish nothing is enabled yet.
                if enabled.contains(&name.as_str())
                    || (is_known && (param == "exclude[]" || enabled.is_empty()))
                {
                    continue;
                }
                return Err(SelectionError::NotServed {
                    param,
                    name: name.clone(),
                    known: is_known,
                    enabled: enabled.iter().map(|e| e.to_string()).collect(),
                });
            }
        }
        Ok(())
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
        self.current.load_full()
    }

    /// Authentication, TLS and headers for connections and requests from
    /// now on; those under way keep what they started with.
    pub fn set_web(&self, web: WebConfig) {
        self.web.store(Arc::new(web));
    }

    pub fn web(&self) -> Arc<WebConfig> {
        self.web.load_full()
    }

    /// The access rule for requests from now on.
    pub fn set_access(&self, policy: Policy) {
        self.access.store(Arc::new(policy));
    }

    pub fn access(&self) -> Arc<Policy> {
        self.access.load_full()
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn parts_compressed_apart_make_one_gzip_member_that_any_reader_reads_whole() {
        let a = Part::ready(Rendered::verbatim(
            "# HELP a A.\n# TYPE a gauge\na 1\n".repeat(50),
        ));
        let empty = Part::ready(Rendered::default());
        let b = Part::later(Box::new(|out: &mut Rendered| {
            const B: crate::render::Doc = crate::render::Doc::counter("b_total", "B.", &[]);
            crate::render::Family::of(out, &B).sample(&[], 2.0);
        }));
        let body = Body::new("# An intro.\n", vec![a, empty, b]);
        for format in [Format::Text, Format::OpenMetrics] {
            let gz = body.gzip(format);
            // A single-member reader (as curl's) sees everything.
            let mut text = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut text)
                .unwrap();
            assert_eq!(text, body.body(format));
        }
        assert!(body
            .body(Format::OpenMetrics)
            .ends_with(b"# HELP b B.\n# TYPE b counter\nb_total 2\n# EOF\n"));
    }
}
