//! The encoder: metric families, label and help escaping, number
//! formatting, into the Prometheus text format (0.0.4) with an index of the
//! families, from which [`openmetrics`] writes OpenMetrics 1.0. What each
//! family holds is the business of the collector that renders it.
//!
//! The text is written directly rather than through the prometheus crate's
//! encoder: building its per-sample label and metric objects costs about
//! 450 ns a series, four times the 1 ms budget for 10,000 series.

use std::fmt::Write;
use std::ops::Range;

use crate::model::jobflow::Histogram;
use crate::state::CollectorStatus;

/// A family's type, as both formats name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
    Histogram,
    /// A gauge of 1 whose labels are the information (`NAME_info`): a
    /// gauge in the text format, OpenMetrics's `info` type.
    Info,
}

/// A metric family as its collector declares it: what [`Family::of`]
/// writes and what the metrics reference (`flux prometheus metrics`)
/// documents, so the two cannot differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Doc {
    /// The name as the text format writes it (with `_total` or `_info`).
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    /// Every label any of its samples may carry, in the order they are
    /// written (`le` of a histogram's buckets aside).
    pub labels: &'static [&'static str],
    /// What its samples tell of users, jobs and drain reasons, and so what
    /// a scraper not cleared for them is served of it.
    pub privacy: Privacy,
}

/// The labels that name a user or a job: a sample carrying one is served
/// only to the scrapers cleared for it where the instance keeps its jobs
/// private (crate::access).
pub const NAMING_LABELS: [&str; 4] = ["user", "project", "bank", "jobid"];

/// What a family's samples tell of users, jobs and drain reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privacy {
    /// Its samples with a [`NAMING_LABELS`] label are private. A scraper
    /// not cleared for them is served what `fold` makes of them with those
    /// labels taken away.
    Naming(Fold),
    /// Every sample is private (drain reasons, which an admin writes).
    Private,
    /// Nothing private, whatever its labels (the instance's own job ID).
    Public,
}

/// How samples that differ only in their naming labels are made one for a
/// scraper not cleared for those labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fold {
    /// Left out: there is no aggregate of them (a fair share, a job's
    /// usage, an `_info`).
    Drop,
    /// Added up (counts, counters, histogram buckets).
    Sum,
    /// The smallest (the oldest timestamp, the nearest estimate).
    Min,
    /// The largest (the largest job).
    Max,
}

impl Doc {
    const fn new(
        kind: Kind,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Doc {
        // Counts (counters, histograms) add up across users; a gauge or
        // an info family is left out unless its collector says how it adds
        // up (`Doc::folded`).
        let fold = match kind {
            Kind::Counter | Kind::Histogram => Fold::Sum,
            Kind::Gauge | Kind::Info => Fold::Drop,
        };
        Doc {
            name,
            kind,
            help,
            labels,
            privacy: Privacy::Naming(fold),
        }
    }

    /// How this family's samples fold over their naming labels.
    pub const fn folded(self, fold: Fold) -> Doc {
        Doc {
            privacy: Privacy::Naming(fold),
            ..self
        }
    }

    /// Every sample of this family is private.
    pub const fn private(self) -> Doc {
        Doc {
            privacy: Privacy::Private,
            ..self
        }
    }

    /// No sample of this family is private, whatever its labels.
    pub const fn public(self) -> Doc {
        Doc {
            privacy: Privacy::Public,
            ..self
        }
    }

    /// Whether a sample of this family may name a user, project, bank, job
    /// or drain reason, and so be kept from a scraper not cleared for them.
    pub fn names_anyone(&self) -> bool {
        match self.privacy {
            Privacy::Public => false,
            Privacy::Private => true,
            Privacy::Naming(_) => self.labels.iter().any(|l| NAMING_LABELS.contains(l)),
        }
    }

    pub const fn gauge(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Doc {
        Doc::new(Kind::Gauge, name, help, labels)
    }

    pub const fn counter(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Doc {
        Doc::new(Kind::Counter, name, help, labels)
    }

    pub const fn histogram(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Doc {
        Doc::new(Kind::Histogram, name, help, labels)
    }

    pub const fn info(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> Doc {
        Doc::new(Kind::Info, name, help, labels)
    }

    /// The base unit the name ends in, as the exporter guide names them.
    pub fn unit(&self) -> Option<&'static str> {
        let name = self.name.strip_suffix("_total").unwrap_or(self.name);
        ["seconds", "bytes", "ratio", "celsius", "joules", "watts"]
            .into_iter()
            .find(|unit| name.ends_with(&format!("_{unit}")))
    }
}

impl Kind {
    /// As the text format's TYPE line names it (OpenMetrics's for info).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Histogram => "histogram",
            Kind::Info => "info",
        }
    }
}

/// Where one family lies in a rendered text, and its type: what the
/// OpenMetrics writer needs besides the sample lines, which the two
/// formats share.
#[derive(Debug, Clone)]
pub struct FamilyIndex {
    pub kind: Kind,
    pub privacy: Privacy,
    /// The family's name, as the text format writes it (with `_total` or
    /// `_info`).
    name: Range<usize>,
    /// Its HELP text, escaped as the text format escapes it.
    help: Range<usize>,
    /// Its sample lines.
    samples: Range<usize>,
}

impl FamilyIndex {
    /// The family's name in `text`, the text it indexes.
    pub fn name<'t>(&self, text: &'t str) -> &'t str {
        &text[self.name.clone()]
    }

    /// Its sample lines in `text`.
    pub fn samples<'t>(&self, text: &'t str) -> &'t str {
        &text[self.samples.clone()]
    }

    /// Where its HELP line begins in `text`.
    pub fn start(&self) -> usize {
        self.name.start.saturating_sub("# HELP ".len())
    }
}

/// Metric families, rendered: the text format (0.0.4), and an index of its
/// families from which the OpenMetrics form is written without reading
/// the text again.
#[derive(Debug, Default)]
pub struct Rendered {
    text: String,
    families: Vec<FamilyIndex>,
}

impl Rendered {
    pub fn with_capacity(capacity: usize) -> Rendered {
        Rendered {
            text: String::with_capacity(capacity),
            families: Vec::new(),
        }
    }

    /// A text from elsewhere, with no family of its own: both formats
    /// serve it as it is.
    pub fn verbatim(text: String) -> Rendered {
        Rendered {
            text,
            families: Vec::new(),
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn len(&self) -> usize {
        self.text.len()
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    pub fn into_parts(self) -> (String, Vec<FamilyIndex>) {
        (self.text, self.families)
    }

    /// Its families, with the text each index points into.
    pub fn families(&self) -> &[FamilyIndex] {
        &self.families
    }

    /// Writes text that is no family's (a comment) as it is.
    pub fn push_verbatim(&mut self, text: &str) {
        self.text.push_str(text);
    }

    /// Writes a family from another text: its HELP (escaped already) and
    /// TYPE lines, then `samples`, which are whole sample lines.
    pub fn push_family(&mut self, from: &FamilyIndex, text: &str, samples: &str) {
        let kind = match from.kind {
            Kind::Counter => "counter",
            Kind::Gauge | Kind::Info => "gauge",
            Kind::Histogram => "histogram",
        };
        let name = from.name(text);
        let out = &mut self.text;
        out.push_str("# HELP ");
        let name_start = out.len();
        out.push_str(name);
        let name_range = name_start..out.len();
        out.push(' ');
        let help_start = out.len();
        out.push_str(&text[from.help.clone()]);
        let help = help_start..out.len();
        out.push_str("\n# TYPE ");
        out.push_str(name);
        out.push(' ');
        out.push_str(kind);
        out.push('\n');
        let at = out.len();
        out.push_str(samples);
        self.families.push(FamilyIndex {
            kind: from.kind,
            privacy: from.privacy,
            name: name_range,
            help,
            samples: at..out.len(),
        });
    }

    /// The OpenMetrics form of these families, without `# EOF`.
    pub fn openmetrics(&self) -> String {
        openmetrics(&self.text, &self.families)
    }
}

/// The OpenMetrics 1.0 form of `text`'s families as `families` index them:
/// a counter's family is named without `_total`, an info family without
/// `_info` and typed `info`, quotes in HELP are escaped; the sample lines
/// are the text format's. Text outside every family is copied as it is.
pub fn openmetrics(text: &str, families: &[FamilyIndex]) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut copied = 0;
    for family in families {
        out.push_str(&text[copied..family.name.start.saturating_sub("# HELP ".len())]);
        let name = &text[family.name.clone()];
        let (name, kind) = match family.kind {
            Kind::Counter => (name.strip_suffix("_total").unwrap_or(name), "counter"),
            Kind::Info => (name.strip_suffix("_info").unwrap_or(name), "info"),
            Kind::Gauge => (name, "gauge"),
            Kind::Histogram => (name, "histogram"),
        };
        out.push_str("# HELP ");
        out.push_str(name);
        out.push(' ');
        let help = &text[family.help.clone()];
        if help.contains('"') {
            out.push_str(&help.replace('"', "\\\""));
        } else {
            out.push_str(help);
        }
        out.push_str("\n# TYPE ");
        out.push_str(name);
        out.push(' ');
        out.push_str(kind);
        out.push('\n');
        out.push_str(&text[family.samples.clone()]);
        copied = family.samples.end;
    }
    out.push_str(&text[copied..]);
    out
}

/// One metric family being written; its HELP and TYPE lines are written
/// with the first sample, so a family without samples leaves no trace.
pub struct Family<'a> {
    out: &'a mut Rendered,
    doc: &'a Doc,
    started: bool,
}

impl<'a> Family<'a> {
    /// The declared family `doc`, to be written into `out`.
    pub fn of(out: &'a mut Rendered, doc: &'a Doc) -> Family<'a> {
        Family {
            out,
            doc,
            started: false,
        }
    }

    /// One histogram's `_bucket` (cumulative, `le` last), `_sum` and
    /// `_count` samples.
    pub fn observations(&mut self, labels: &[(&str, &str)], h: &Histogram) -> &mut Self {
        self.header();
        for (bound, n) in h.cumulative() {
            let mut le = String::new();
            write_value(&mut le, bound);
            let mut with_le: Vec<(&str, &str)> = labels.to_vec();
            with_le.push(("le", &le));
            self.line("_bucket", &with_le, n as f64);
        }
        self.line("_sum", labels, h.sum);
        self.line("_count", labels, h.count as f64);
        self
    }

    fn header(&mut self) {
        if !self.started {
            self.started = true;
            let kind = match self.doc.kind {
                Kind::Counter => "counter",
                Kind::Gauge | Kind::Info => "gauge",
                Kind::Histogram => "histogram",
            };
            let out = &mut self.out.text;
            out.push_str("# HELP ");
            let name_start = out.len();
            out.push_str(self.doc.name);
            let name = name_start..out.len();
            out.push(' ');
            let help_start = out.len();
            escape_help(out, self.doc.help);
            let help = help_start..out.len();
            out.push_str("\n# TYPE ");
            out.push_str(self.doc.name);
            out.push(' ');
            out.push_str(kind);
            out.push('\n');
            let at = out.len();
            // A family none of whose labels names anyone is public.
            let privacy = if self.doc.names_anyone() {
                self.doc.privacy
            } else {
                Privacy::Public
            };
            self.out.families.push(FamilyIndex {
                kind: self.doc.kind,
                privacy,
                name,
                help,
                samples: at..at,
            });
        }
    }

    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.header();
        self.line("", labels, value);
        self
    }

    fn line(&mut self, suffix: &str, labels: &[(&str, &str)], value: f64) {
        debug_assert!(
            labels
                .iter()
                .all(|(l, _)| self.doc.labels.contains(l) || (*l == "le" && suffix == "_bucket")),
            "{} declares labels {:?}, and a sample has {:?}",
            self.doc.name,
            self.doc.labels,
            labels
        );
        let out = &mut self.out.text;
        out.push_str(self.doc.name);
        out.push_str(suffix);
        if !labels.is_empty() {
            out.push('{');
            for (i, (name, value)) in labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(name);
                out.push_str("=\"");
                escape_label(out, value);
                out.push('"');
            }
            out.push('}');
        }
        out.push(' ');
        write_value(out, value);
        out.push('\n');
        let end = out.len();
        if let Some(family) = self.out.families.last_mut() {
            family.samples.end = end;
        }
    }
}

/// The `queue` label of a named queue; none for the anonymous queue.
pub fn queue_label(name: &str) -> Option<(&'static str, &str)> {
    (!name.is_empty()).then_some(("queue", name))
}

fn escape_label(out: &mut String, value: &str) {
    if !value.contains(['\\', '"', '\n']) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(out: &mut String, help: &str) {
    // Every family's HELP is written in every render: most need no escape.
    if !help.contains(['\\', '\n']) {
        out.push_str(help);
        return;
    }
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

pub fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else if v.abs() >= 1e15 {
        // Rust writes every digit of a large float (301 of them for
        // 1e300); the exponent form is what Prometheus itself writes.
        let _ = write!(out, "{v:e}");
    } else {
        let _ = write!(out, "{v}");
    }
}

/// The exporter about itself: node_exporter's `_success` and `_duration`
/// for every collector in `statuses` alike.
/// `access` is what this scraper is served (crate::access): its mode and
/// its view.
pub fn exporter_families(statuses: &[&CollectorStatus], access: (&str, &str), out: &mut Rendered) {
    Family::of(out, &PROMETHEUS_BUILD_INFO).sample(&[("version", crate::VERSION)], 1.0);
    Family::of(out, &PROMETHEUS_ACCESS_INFO).sample(&[("mode", access.0), ("view", access.1)], 1.0);
    let mut up = Family::of(out, &PROMETHEUS_COLLECTOR_UP);
    for c in statuses {
        up.sample(&[("collector", c.name)], if c.up { 1.0 } else { 0.0 });
    }
    let mut last = Family::of(out, &PROMETHEUS_COLLECTOR_LAST_SUCCESS_TIMESTAMP_SECONDS);
    for c in statuses {
        if let Some(t) = c.last_success {
            last.sample(&[("collector", c.name)], t);
        }
    }
    let mut duration = Family::of(out, &PROMETHEUS_COLLECTOR_DURATION_SECONDS);
    for c in statuses {
        duration.sample(&[("collector", c.name)], c.duration);
    }
}

/// The exporter's own families, written in every exposition.
pub const EXPORTER_FAMILIES: &[Doc] = &[
    PROMETHEUS_BUILD_INFO,
    PROMETHEUS_ACCESS_INFO,
    PROMETHEUS_COLLECTOR_UP,
    PROMETHEUS_COLLECTOR_LAST_SUCCESS_TIMESTAMP_SECONDS,
    PROMETHEUS_COLLECTOR_DURATION_SECONDS,
];

const PROMETHEUS_BUILD_INFO: Doc = Doc::info(
    "flux_prometheus_build_info",
    "The exporter's version; the value is always 1.",
    &["version"],
);

const PROMETHEUS_ACCESS_INFO: Doc = Doc::info(
    "flux_prometheus_access_info",
    "What this scraper is served: mode is private where series naming users, projects, banks, jobs or drain reasons are kept to the scrapers private-scrapers lists (access.private-mode, or the [prometheus] table's private-mode), else open; view is full, or aggregate where those series are left out or folded. Always 1.",
    &["mode", "view"],
);

const PROMETHEUS_COLLECTOR_UP: Doc = Doc::gauge(
    "flux_prometheus_collector_up",
    "Whether the collector's last update succeeded (1) or not (0).",
    &["collector"],
);

const PROMETHEUS_COLLECTOR_LAST_SUCCESS_TIMESTAMP_SECONDS: Doc = Doc::gauge(
    "flux_prometheus_collector_last_success_timestamp_seconds",
    "When the collector last updated successfully, in seconds since the epoch.",
    &["collector"],
);

const PROMETHEUS_COLLECTOR_DURATION_SECONDS: Doc = Doc::gauge(
    "flux_prometheus_collector_duration_seconds",
    "How long the collector's last update took.",
    &["collector"],
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_family_without_samples_writes_nothing() {
        let mut out = Rendered::default();
        Family::of(&mut out, &Doc::gauge("x", "help", &[]));
        assert_eq!(out.text(), "");
    }

    #[test]
    fn help_and_type_come_once_before_the_samples() {
        let mut out = Rendered::default();
        let doc = Doc::counter("flux_x_total", "Things done.", &["queue", "state"]);
        Family::of(&mut out, &doc)
            .sample(&[], 3.0)
            .sample(&[("queue", "batch"), ("state", "run")], 0.5);
        assert_eq!(
            out.text(),
            "# HELP flux_x_total Things done.\n# TYPE flux_x_total counter\nflux_x_total 3\nflux_x_total{queue=\"batch\",state=\"run\"} 0.5\n"
        );
    }

    #[test]
    fn labels_and_help_are_escaped() {
        let mut out = Rendered::default();
        let doc = Doc::gauge("g", "a \\ b\nc \"q\"", &["reason"]);
        Family::of(&mut out, &doc).sample(&[("reason", "say \"hi\"\\\n")], 1.0);
        assert_eq!(
            out.text(),
            "# HELP g a \\\\ b\\nc \"q\"\n# TYPE g gauge\ng{reason=\"say \\\"hi\\\"\\\\\\n\"} 1\n"
        );
    }

    #[test]
    fn numbers_are_written_as_prometheus_reads_them() {
        let cases = [
            (0.0, "0"),
            (42.0, "42"),
            (-3.0, "-3"),
            (0.25, "0.25"),
            (1e15, "1e15"),
            (123456789012345680.0, "1.2345678901234568e17"),
            (1e300, "1e300"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ];
        for (value, text) in cases {
            let mut out = String::new();
            write_value(&mut out, value);
            assert_eq!(out, text, "{value}");
        }
    }

    #[test]
    fn a_histogram_writes_cumulative_buckets_then_sum_and_count() {
        let mut h = Histogram::new(&[1.0, 10.0]);
        h.observe(0.5);
        h.observe(5.0);
        h.observe(50.0);
        let mut out = Rendered::default();
        let doc = Doc::histogram("w_seconds", "Wait.", &["queue"]);
        Family::of(&mut out, &doc).observations(&[("queue", "q")], &h);
        assert_eq!(
            out.text(),
            "# HELP w_seconds Wait.\n# TYPE w_seconds histogram\n\
             w_seconds_bucket{queue=\"q\",le=\"1\"} 1\n\
             w_seconds_bucket{queue=\"q\",le=\"10\"} 2\n\
             w_seconds_bucket{queue=\"q\",le=\"+Inf\"} 3\n\
             w_seconds_sum{queue=\"q\"} 55.5\n\
             w_seconds_count{queue=\"q\"} 3\n"
        );
    }
}
