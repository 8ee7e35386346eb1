//! The metrics reference: every family the module can export, written from
//! the collectors' own declarations ([`Spec::families`] and the exporter's
//! [`EXPORTER_FAMILIES`]), never by hand. `flux prometheus metrics` prints
//! it; `docs/metrics.md` (Markdown) and `doc/man7/flux-prometheus-metrics.rst`
//! (the source of flux-prometheus-metrics(7)) are its output, checked in,
//! and `cargo test` fails when they differ from it.

use std::fmt::Write;

use crate::collectors::{Spec, REGISTRY};
use crate::render::{Doc, Fold, Kind, Privacy, EXPORTER_FAMILIES};

/// The forms the reference is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A Markdown page (docs/metrics.md).
    Markdown,
    /// The reStructuredText source of flux-prometheus-metrics(7), as
    /// flux-core writes its man pages.
    Rst,
}

impl std::str::FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Format, UnknownFormat> {
        match s {
            "markdown" | "md" => Ok(Format::Markdown),
            "rst" => Ok(Format::Rst),
            _ => Err(UnknownFormat(s.to_string())),
        }
    }
}

/// A `--format` the reference is not written in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format '{0}': the reference is written as markdown or rst")]
pub struct UnknownFormat(pub String);

/// One group of families: a collector's, or the exporter's own.
struct Group {
    name: &'static str,
    summary: &'static str,
    /// "on by default", "opt-in", "always".
    when: &'static str,
    options: Vec<&'static str>,
    families: &'static [Doc],
}

fn groups() -> Vec<Group> {
    let mut out: Vec<Group> = REGISTRY.iter().map(group).collect();
    out.push(Group {
        name: "exporter",
        summary: "The exporter itself: its version, and whether each collector's last update succeeded, when, and how long it took.",
        when: "always",
        options: Vec::new(),
        families: EXPORTER_FAMILIES,
    });
    out
}

fn group(spec: &'static Spec) -> Group {
    Group {
        name: spec.about.name,
        summary: spec.summary,
        when: if spec.about.on_by_default {
            "on by default"
        } else {
            "opt-in"
        },
        options: spec.about.options.iter().map(|o| o.key).collect(),
        families: spec.families,
    }
}

const INTRO: &str = "Every metric family the prometheus module can export, by the collector \
that exports it. A collector runs when it is named in the module's collectors= argument \
(or the [prometheus] table's collectors key); without it, the collectors on by default run. \
A family without samples is not written at all, so a family that does not apply to the \
instance (Fluxion's on an instance running sched-simple, say) is absent rather than zero.";

const CONVENTIONS: &str = "Units are base units (seconds, bytes) and are named in the family \
name. Counters end in _total and count from when the module loaded; info families end in \
_info and always have the value 1, their labels being the information. A histogram has \
_bucket (with le), _sum and _count series. Where a family has a queue label, the anonymous \
queue of an instance without named queues has none. Where the instance keeps its jobs private \
(access.private-mode, or the [prometheus] table's private-mode), a scraper that private-scrapers \
does not list is served the aggregate view: a family marked \"left out\" is not served to it, and \
one marked \"summed\", \"smallest\" or \"largest\" is served without its user, project, bank \
and jobid labels, the series left alike made one.";

/// The reference in `format`.
pub fn write(format: Format) -> String {
    match format {
        Format::Markdown => markdown(),
        Format::Rst => rst(),
    }
}

fn kind(doc: &Doc) -> &'static str {
    doc.kind.as_str()
}

/// What a scraper served the aggregate view gets of the family: nothing
/// to say where it names no one.
fn privacy(doc: &Doc) -> &'static str {
    if !doc.names_anyone() {
        return "";
    }
    match doc.privacy {
        Privacy::Private | Privacy::Naming(Fold::Drop) => "left out",
        Privacy::Naming(Fold::Sum) => "summed",
        Privacy::Naming(Fold::Min) => "smallest",
        Privacy::Naming(Fold::Max) => "largest",
        Privacy::Public => "",
    }
}

fn labels(doc: &Doc) -> String {
    let mut labels: Vec<&str> = doc.labels.to_vec();
    if doc.kind == Kind::Histogram {
        labels.push("le");
    }
    labels.join(", ")
}

fn markdown() -> String {
    let mut out = String::new();
    out.push_str("# Metrics reference\n\n");
    out.push_str(
        "<!-- Written by `flux prometheus metrics --format=markdown` from the \
collectors' own declarations; `cargo test` fails when this file differs from it. -->\n\n",
    );
    let _ = writeln!(out, "{INTRO}\n\n{CONVENTIONS}\n");
    for g in groups() {
        let _ = writeln!(out, "## {} ({})\n\n{}\n", g.name, g.when, g.summary);
        if !g.options.is_empty() {
            let opts: Vec<String> = g.options.iter().map(|o| format!("`{o}=`")).collect();
            let _ = writeln!(out, "Its options: {}.\n", opts.join(", "));
        }
        out.push_str("| family | type | unit | labels | private mode | help |\n| --- | --- | --- | --- | --- | --- |\n");
        for doc in g.families {
            let labels = labels(doc);
            let labels = if labels.is_empty() {
                String::new()
            } else {
                format!("`{}`", labels.replace(", ", "`, `"))
            };
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} | {} |",
                doc.name,
                kind(doc),
                doc.unit().unwrap_or(""),
                labels,
                privacy(doc),
                doc.help.replace('|', "\\|")
            );
        }
        out.push('\n');
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

/// Backslashes and asterisks would start markup in reStructuredText.
fn rst_text(text: &str) -> String {
    text.replace('\\', "\\\\").replace('*', "\\*")
}

fn heading(out: &mut String, text: &str, mark: char, over: bool) {
    let line: String = std::iter::repeat_n(mark, text.chars().count()).collect();
    if over {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "{text}\n{line}\n");
}

fn rst() -> String {
    let mut out = String::new();
    out.push_str(".. Written by flux prometheus metrics --format=rst from the collectors'\n   own declarations; cargo test fails when this file differs from it.\n\n");
    heading(&mut out, "flux-prometheus-metrics(7)", '=', true);
    out.push('\n');
    heading(&mut out, "DESCRIPTION", '=', false);
    let _ = writeln!(out, "{}\n\n{}\n\n", rst_text(INTRO), rst_text(CONVENTIONS));
    for g in groups() {
        heading(&mut out, &format!("{} ({})", g.name, g.when), '=', false);
        let _ = writeln!(out, "{}\n", rst_text(g.summary));
        if !g.options.is_empty() {
            let opts: Vec<String> = g.options.iter().map(|o| format!("**{o}=**")).collect();
            let _ = writeln!(
                out,
                "Its options (see flux-config-prometheus(5)): {}.\n",
                opts.join(", ")
            );
        }
        for doc in g.families {
            let mut what = vec![kind(doc).to_string()];
            if let Some(unit) = doc.unit() {
                what.push(format!("unit {unit}"));
            }
            let labels = labels(doc);
            if !labels.is_empty() {
                what.push(format!("labels {labels}"));
            }
            let private = privacy(doc);
            if !private.is_empty() {
                what.push(format!("private mode: {private}"));
            }
            let _ = writeln!(
                out,
                "**{}** ({})\n   {}\n",
                doc.name,
                what.join("; "),
                rst_text(doc.help)
            );
        }
        out.push('\n');
    }
    heading(&mut out, "SEE ALSO", '=', false);
    out.push_str("flux-prometheus(1), flux-config-prometheus(5), :man1:`flux-module`\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_declared_once() {
        let mut names: Vec<&str> = groups()
            .iter()
            .flat_map(|g| g.families.iter().map(|d| d.name))
            .collect();
        let all = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all, "a family is declared twice");
    }

    #[test]
    fn names_follow_the_exporter_guide() {
        for g in groups() {
            for doc in g.families {
                assert!(doc.name.starts_with("flux_"), "{}", doc.name);
                assert_eq!(
                    doc.kind == Kind::Counter,
                    doc.name.ends_with("_total"),
                    "{}",
                    doc.name
                );
                assert_eq!(
                    doc.kind == Kind::Info,
                    doc.name.ends_with("_info"),
                    "{}",
                    doc.name
                );
                assert!(
                    doc.help.ends_with('.') || doc.help.ends_with(')'),
                    "{}",
                    doc.name
                );
            }
        }
    }

    #[test]
    fn formats_are_named_as_the_command_takes_them() {
        assert_eq!("rst".parse(), Ok(Format::Rst));
        assert_eq!("markdown".parse(), Ok(Format::Markdown));
        let err = "html".parse::<Format>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown format 'html': the reference is written as markdown or rst"
        );
    }
}
