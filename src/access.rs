//! Who may see what. Where the instance keeps its jobs private
//! (flux-config-access(5)'s `access.private-mode`, or the `[prometheus]`
//! table's `private-mode`), the series that name users, projects, banks,
//! jobs or drain reasons are served only to the scrapers the
//! `private-scrapers` key lists, known by their basic-auth user or a SAN of
//! their verified client certificate. Everyone else is served the
//! aggregate view: what each family's [`Privacy`] makes of it. Nothing
//! here knows Flux or HTTP.

use std::collections::{BTreeSet, HashMap};

use crate::render::{write_value, FamilyIndex, Fold, Privacy, Rendered, NAMING_LABELS};

/// Why the module keeps per-user series to the scrapers it lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The instance's `access.private-mode`.
    Instance,
    /// The `[prometheus]` table's `private-mode`.
    Module,
}

impl Reason {
    /// The key that made series private, as the log and `flux module
    /// stats` name it.
    pub fn key(self) -> &'static str {
        match self {
            Reason::Instance => "access.private-mode",
            Reason::Module => "private-mode",
        }
    }
}

/// The access rule in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Why series naming users are private; None where they are served to
    /// everyone.
    pub private: Option<Reason>,
    /// The basic-auth users and client-certificate SANs cleared for them.
    pub scrapers: BTreeSet<String>,
}

/// Which series one scraper is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    /// Every series.
    Full,
    /// No series names a user, project, bank, job or drain reason.
    Aggregate,
}

/// What one body is made for: whether the instance keeps its jobs
/// private, and the view served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Audience {
    pub private: bool,
    pub view: View,
}

impl Default for Audience {
    fn default() -> Audience {
        Audience {
            private: false,
            view: View::Full,
        }
    }
}

impl Audience {
    /// `flux_prometheus_access_info`'s `mode` label.
    pub fn mode(&self) -> &'static str {
        if self.private {
            "private"
        } else {
            "open"
        }
    }
}

/// Who a scraper showed itself to be: the basic-auth user the web config
/// verified, and the SANs of a client certificate a CA vouched for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scraper {
    pub user: Option<String>,
    pub sans: Vec<String>,
}

impl Policy {
    /// The rule on an instance whose `access.private-mode` is
    /// `instance_private`, with the `[prometheus]` keys `private-mode`
    /// (`module`; None where it is not set) and `private-scrapers`; and
    /// what the log should say of it.
    pub fn new(
        instance_private: bool,
        module: Option<bool>,
        listed: &[String],
    ) -> (Policy, Vec<String>) {
        let mut said = Vec::new();
        let private = match (instance_private, module) {
            (true, Some(false)) => {
                said.push("private-mode=false cannot open what access.private-mode hides: series naming users, jobs and drain reasons stay private".to_string());
                Some(Reason::Instance)
            }
            (true, _) => Some(Reason::Instance),
            (false, Some(true)) => Some(Reason::Module),
            (false, _) => None,
        };
        let scrapers: BTreeSet<String> = listed.iter().cloned().collect();
        match private {
        Some(reason) => {
            let why = reason.key();
            said.push(if scrapers.is_empty() {
                format!("{why}: series naming users, jobs and drain reasons are served to no scraper (private-scrapers lists none); every scraper gets the aggregate view")
            } else {
                format!(
                    "{why}: series naming users, jobs and drain reasons are served only to {}",
                    listed.join(", ")
                )
            });
        }
        None if !scrapers.is_empty() => said.push(
            "private-scrapers has no effect: private mode is off, and every scraper is served every series".to_string(),
        ),
        None => {}
    }
        (Policy { private, scrapers }, said)
    }

    /// What `scraper` is served: everything where nothing is private, or
    /// where its basic-auth user or a SAN of its verified certificate is
    /// listed; the aggregate view otherwise.
    pub fn audience(&self, scraper: &Scraper) -> Audience {
        let private = self.private.is_some();
        let cleared = !private
            || scraper
                .user
                .iter()
                .chain(&scraper.sans)
                .any(|name| self.scrapers.contains(name));
        Audience {
            private,
            view: if cleared { View::Full } else { View::Aggregate },
        }
    }
}

impl View {
    /// `flux_prometheus_access_info`'s `view` label.
    pub fn as_str(self) -> &'static str {
        match self {
            View::Full => "full",
            View::Aggregate => "aggregate",
        }
    }
}

/// The comment the text format opens an aggregate view with (OpenMetrics
/// allows no comments; `flux_prometheus_access_info` says it there).
pub const AGGREGATE_COMMENT: &str = "# Private mode: series that name users, projects, banks, jobs or drain reasons are served only to the scrapers private-scrapers lists; this is the aggregate view.\n";

/// The aggregate view of a rendered text: each family as its [`Privacy`]
/// says. A sample with a naming label loses it, and the samples left alike
/// are folded into one (summed, or the smallest or the largest), or are
/// left out; a private family is left out; a family left without samples
/// is not written. Text outside every family is not served: nothing says
/// what it names (the collectors write none).
pub fn aggregate(text: &str, families: &[FamilyIndex]) -> Rendered {
    let mut out = Rendered::with_capacity(text.len() / 2);
    for family in families {
        let samples = family.samples(text);
        match family.privacy {
            Privacy::Public => out.push_family(family, text, samples),
            Privacy::Private => {}
            Privacy::Naming(fold) => {
                let folded = fold_samples(samples, fold);
                if !folded.is_empty() {
                    out.push_family(family, text, &folded);
                }
            }
        }
    }
    out
}

/// One sample line, read from the renderer's own text.
struct Sample<'t> {
    /// The name with its suffix (`_bucket` and the like).
    name: &'t str,
    value: f64,
}

/// Reads a line as [`crate::render::Family`] writes it: `name value` or
/// `name{a="x",b="y"} value`, with `\\`, `\"` and `\n` escaped in values;
/// each label's name and value (as written, escaped) into `labels`. None
/// for a line of another form, which the caller leaves out.
fn parse_sample<'t>(line: &'t str, labels: &mut Vec<(&'t str, &'t str)>) -> Option<Sample<'t>> {
    labels.clear();
    let (head, value) = line.rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().ok()?,
    };
    let Some((name, rest)) = head.split_once('{') else {
        return Some(Sample { name: head, value });
    };
    let mut rest = rest.strip_suffix('}')?;
    while !rest.is_empty() {
        let (label, after) = rest.split_once("=\"")?;
        // The value ends at the first quote not escaped.
        let bytes = after.as_bytes();
        let mut i = 0;
        while i < bytes.len() && bytes[i] != b'"' {
            i += if bytes[i] == b'\\' { 2 } else { 1 };
        }
        if i >= bytes.len() {
            return None;
        }
        labels.push((label, &after[..i]));
        rest = &after[i + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    Some(Sample { name, value })
}

/// Whether a sample line may carry a naming label, without reading it
/// through: a label is `{NAME="` or `,NAME="`. True for every line that
/// does; a value quoted in a line escapes its quotes, so only one ending
/// in `,NAME=` reads so too, and its line is then left out: the check errs
/// on the side of privacy.
fn may_name(line: &str) -> bool {
    NAMING_LABELS.iter().any(|label| {
        line.match_indices(label).any(|(at, _)| {
            let before = line.as_bytes().get(at.wrapping_sub(1));
            let after = &line[at + label.len()..];
            matches!(before, Some(b'{' | b',')) && after.starts_with("=\"")
        })
    })
}

/// A family's sample lines without their naming labels, folded.
fn fold_samples(samples: &str, fold: Fold) -> String {
    // (name and kept labels, as written) and the folded value, in the
    // order each first appears: a histogram's buckets stay in order.
    let mut folded: Vec<(String, f64)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut labels = Vec::new();
    let mut key = String::new();
    for line in samples.lines() {
        // Left out without reading it through.
        if fold == Fold::Drop && may_name(line) {
            continue;
        }
        let Some(sample) = parse_sample(line, &mut labels) else {
            continue;
        };
        let names = labels.iter().any(|(l, _)| NAMING_LABELS.contains(l));
        let combine: fn(f64, f64) -> f64 = match fold {
            Fold::Drop if names => continue,
            // A sample without a naming label is kept as it is.
            Fold::Drop => |a, _| a,
            Fold::Sum => |a, b| a + b,
            Fold::Min => f64::min,
            Fold::Max => f64::max,
        };
        key.clear();
        key.push_str(sample.name);
        let mut kept = labels
            .iter()
            .filter(|(l, _)| !NAMING_LABELS.contains(l))
            .peekable();
        if kept.peek().is_some() {
            key.push('{');
            for (i, (l, v)) in kept.enumerate() {
                if i > 0 {
                    key.push(',');
                }
                key.push_str(l);
                key.push_str("=\"");
                key.push_str(v);
                key.push('"');
            }
            key.push('}');
        }
        match index.get(key.as_str()) {
            Some(&at) => folded[at].1 = combine(folded[at].1, sample.value),
            None => {
                index.insert(key.clone(), folded.len());
                folded.push((key.clone(), sample.value));
            }
        }
    }
    let mut out = String::with_capacity(samples.len() / 2);
    for (head, value) in folded {
        out.push_str(&head);
        out.push(' ');
        write_value(&mut out, value);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{Doc, Family};

    fn policy(scrapers: &[&str]) -> Policy {
        Policy::new(
            false,
            Some(true),
            &scrapers.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .0
    }

    #[test]
    fn only_a_listed_user_or_san_is_cleared() {
        let p = policy(&["prometheus", "scraper.example.org"]);
        let view = |user: Option<&str>, sans: &[&str]| {
            p.audience(&Scraper {
                user: user.map(str::to_string),
                sans: sans.iter().map(|s| s.to_string()).collect(),
            })
            .view
        };
        assert_eq!(view(None, &[]), View::Aggregate);
        assert_eq!(view(Some("alice"), &[]), View::Aggregate);
        assert_eq!(view(Some("prometheus"), &[]), View::Full);
        assert_eq!(
            view(None, &["other.org", "scraper.example.org"]),
            View::Full
        );
        // Names are compared as written, as exporter-toolkit compares SANs.
        assert_eq!(view(Some("Prometheus"), &[]), View::Aggregate);
        // Where nothing is private, everyone gets everything.
        let open = Policy::default().audience(&Scraper::default());
        assert_eq!((open.private, open.view), (false, View::Full));
    }

    #[test]
    fn the_instance_keeps_private_what_it_hides_and_the_log_says_so() {
        let (p, said) = Policy::new(true, Some(false), &[]);
        assert_eq!(p.private, Some(Reason::Instance));
        assert!(
            said[0].starts_with("private-mode=false cannot open"),
            "{said:?}"
        );
        assert!(said[1].contains("served to no scraper"), "{said:?}");
        let (p, said) = Policy::new(false, None, &["prometheus".into()]);
        assert_eq!(p.private, None);
        assert!(
            said[0].starts_with("private-scrapers has no effect"),
            "{said:?}"
        );
        let (p, said) = Policy::new(false, Some(true), &["prometheus".into()]);
        assert_eq!(p.private, Some(Reason::Module));
        assert_eq!(
            said,
            ["private-mode: series naming users, jobs and drain reasons are served only to prometheus"]
        );
    }

    #[test]
    fn a_line_that_may_name_someone_is_told_without_reading_it_through() {
        assert!(may_name("x{user=\"a\"} 1"));
        assert!(may_name("x{queue=\"q\",jobid=\"f1\"} 1"));
        assert!(!may_name("x{queue=\"user\"} 1"));
        assert!(!may_name("x{superuser=\"a\"} 1"));
        // A quote in a value is escaped, so it does not read as a label;
        // a value ending in one's name errs on the safe side.
        assert!(!may_name("x{reason=\"a,user=\\\"b\"} 1"));
        assert!(may_name("x{reason=\"a,user=\"} 1"));
    }

    #[test]
    fn folding_takes_away_naming_labels_and_keeps_hard_values() {
        let mut out = Rendered::default();
        const OLDEST: Doc =
            Doc::gauge("oldest", "O.", &["queue", "user", "reason"]).folded(Fold::Min);
        const LARGEST: Doc = Doc::gauge("largest", "L.", &["queue", "user"]).folded(Fold::Max);
        const FAIRSHARE: Doc = Doc::gauge("fairshare", "F.", &["user", "bank"]);
        const DRAINED: Doc = Doc::info("drain_info", "D.", &["node", "reason"]).private();
        const PLAIN: Doc = Doc::gauge("plain", "P.", &["queue"]);
        Family::of(&mut out, &OLDEST)
            .sample(
                &[("queue", "a,b"), ("user", "x\"}y"), ("reason", "r \"1\"")],
                5.0,
            )
            .sample(
                &[("queue", "a,b"), ("user", "z"), ("reason", "r \"1\"")],
                3.0,
            )
            .sample(&[("queue", "c"), ("user", "z"), ("reason", "r\\n")], 7.0);
        Family::of(&mut out, &LARGEST)
            .sample(&[("queue", "a"), ("user", "x")], 2.0)
            .sample(&[("queue", "a"), ("user", "y")], f64::INFINITY);
        Family::of(&mut out, &FAIRSHARE).sample(&[("user", "x"), ("bank", "b")], 0.5);
        Family::of(&mut out, &DRAINED).sample(&[("node", "n1"), ("reason", "alice's job")], 1.0);
        Family::of(&mut out, &PLAIN).sample(&[("queue", "a")], 1.5);
        let (text, families) = out.into_parts();
        let view = aggregate(&text, &families);
        assert_eq!(
            view.text(),
            "# HELP oldest O.\n# TYPE oldest gauge\n\
             oldest{queue=\"a,b\",reason=\"r \\\"1\\\"\"} 3\n\
             oldest{queue=\"c\",reason=\"r\\\\n\"} 7\n\
             # HELP largest L.\n# TYPE largest gauge\nlargest{queue=\"a\"} +Inf\n\
             # HELP plain P.\n# TYPE plain gauge\nplain{queue=\"a\"} 1.5\n"
        );
        // Its index serves OpenMetrics as well.
        assert!(view
            .openmetrics()
            .contains("# TYPE largest gauge\nlargest{queue=\"a\"} +Inf\n"));
    }
}
