//! Flux's hostlists (RFC 29), as R's `nodelist` holds them: `node[0-3,7]`,
//! `login1,node[01-02]`. Written here because Flux's semantics differ from
//! Slurm-style hostlist crates: a hostlist is an ordered list in which a
//! name may repeat (every broker of a test instance on one machine has the
//! same host name, `vm,vm`), and R's `nodelist` names its ranks one for one.

use std::fmt::Write;

use super::error::ParseError;

/// Names one hostlist may expand to, at most: R names one host per broker
/// rank, and 262,144 nodes is over twenty times the largest Flux system
/// today, while a hostile `nodelist` can make the module allocate no more
/// than about 10 MB and tens of ms of the reactor thread.
/// The count is known before anything is expanded.
pub const MAX_HOSTS: u64 = 1 << 18;

/// The host names of a hostlist, in order, repeats kept. A list that
/// would expand to more than [`MAX_HOSTS`] names is refused before any is
/// made, with the count.
pub fn expand(list: &str) -> Result<Vec<String>, ParseError> {
    let mut entries = Vec::new();
    let mut total: u64 = 0;
    for entry in split_top(list)? {
        if entry.is_empty() {
            continue;
        }
        let parsed = parse_entry(entry)
            .map_err(|why| ParseError::invalid(format!("'{}': {why}", shorten(list))))?;
        total = total.saturating_add(parsed.count());
        if total > MAX_HOSTS {
            return Err(ParseError::invalid(format!(
                "'{}' names more than {MAX_HOSTS} hosts, the most a hostlist may",
                shorten(list)
            )));
        }
        entries.push(parsed);
    }
    let mut hosts = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for entry in &entries {
        entry.expand_into(&mut hosts);
    }
    Ok(hosts)
}

/// The start of a long input, for an error message.
fn shorten(list: &str) -> String {
    const SHOWN: usize = 64;
    match list.char_indices().nth(SHOWN) {
        Some((i, _)) => format!("{}...", &list[..i]),
        None => list.to_string(),
    }
}

/// Splits at the commas outside brackets.
fn split_top(list: &str) -> Result<Vec<&str>, ParseError> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in list.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(list[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return Err(ParseError::invalid(format!(
                "'{}': unbalanced brackets",
                shorten(list)
            )));
        }
    }
    if depth != 0 {
        return Err(ParseError::invalid(format!(
            "'{}': unbalanced brackets",
            shorten(list)
        )));
    }
    parts.push(list[start..].trim());
    Ok(parts)
}

/// One number range of a bracket group, with the width it was written in
/// (`08-10` pads to 2).
#[derive(Debug)]
struct Range {
    lo: u64,
    hi: u64,
    width: usize,
}

/// A literal, then bracket groups each followed by a literal:
/// `r[1-2]-gpu[0,1]` is "r", ([1-2], "-gpu"), ([0,1], "").
#[derive(Debug)]
struct Entry<'a> {
    head: &'a str,
    groups: Vec<(Vec<Range>, &'a str)>,
}

impl Entry<'_> {
    /// How many names it expands to (saturating).
    fn count(&self) -> u64 {
        self.groups.iter().fold(1u64, |n, (ranges, _)| {
            let group: u64 = ranges
                .iter()
                .fold(0u64, |m, r| m.saturating_add(r.hi - r.lo + 1));
            n.saturating_mul(group)
        })
    }

    /// Appends its names, the last group varying fastest.
    fn expand_into(&self, hosts: &mut Vec<String>) {
        // Each group's numbers in order, then an odometer over them.
        let numbers: Vec<Vec<(u64, usize)>> = self
            .groups
            .iter()
            .map(|(ranges, _)| {
                ranges
                    .iter()
                    .flat_map(|r| (r.lo..=r.hi).map(move |n| (n, r.width)))
                    .collect()
            })
            .collect();
        if numbers.iter().any(Vec::is_empty) {
            return;
        }
        let mut at = vec![0usize; numbers.len()];
        let mut name = String::new();
        loop {
            name.clear();
            name.push_str(self.head);
            for (i, (_, tail)) in self.groups.iter().enumerate() {
                let (n, width) = numbers[i][at[i]];
                // Written into the name, not into a string of its own.
                let _ = write!(name, "{n:0width$}");
                name.push_str(tail);
            }
            hosts.push(name.as_str().into());
            // Advance the odometer; done when every digit rolled over.
            let mut i = numbers.len();
            loop {
                if i == 0 {
                    return;
                }
                i -= 1;
                at[i] += 1;
                if at[i] < numbers[i].len() {
                    break;
                }
                at[i] = 0;
            }
        }
    }
}

/// Parses `prefix[ranges]rest...` without expanding it.
fn parse_entry(entry: &str) -> Result<Entry<'_>, ParseError> {
    let (head, mut rest) = match entry.find('[') {
        Some(open) => (&entry[..open], &entry[open..]),
        None => (entry, ""),
    };
    let mut groups = Vec::new();
    while let Some(body) = rest.strip_prefix('[') {
        let close = body
            .find(']')
            .ok_or_else(|| ParseError::invalid("unbalanced brackets"))?;
        let ranges = parse_ranges(&body[..close])?;
        let after = &body[close + 1..];
        let tail_end = after.find('[').unwrap_or(after.len());
        if after[..tail_end].contains(']') {
            return Err(ParseError::invalid("unbalanced brackets"));
        }
        groups.push((ranges, &after[..tail_end]));
        rest = &after[tail_end..];
    }
    Ok(Entry { head, groups })
}

fn parse_ranges(ranges: &str) -> Result<Vec<Range>, ParseError> {
    let mut out = Vec::new();
    for range in ranges.split(',') {
        let (lo, hi) = range.split_once('-').unwrap_or((range, range));
        let width = lo.len();
        let number = |s: &str| {
            s.trim()
                .parse::<u64>()
                .map_err(|_| ParseError::invalid(format!("'{range}' is not a number or a range")))
        };
        let (lo, hi) = (number(lo)?, number(hi)?);
        if hi < lo {
            return Err(ParseError::invalid(format!(
                "'{range}' is not an increasing range"
            )));
        }
        if hi - lo >= MAX_HOSTS {
            return Err(ParseError::invalid(format!(
                "'{range}' names more than {MAX_HOSTS} hosts, the most a hostlist may"
            )));
        }
        out.push(Range { lo, hi, width });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_padding_order_and_repeats_are_kept() {
        assert_eq!(
            expand("node[0-2,7]").unwrap(),
            ["node0", "node1", "node2", "node7"]
        );
        assert_eq!(
            expand("login1,n[08-10]").unwrap(),
            ["login1", "n08", "n09", "n10"]
        );
        assert_eq!(expand("vm,vm").unwrap(), ["vm", "vm"]);
        assert_eq!(expand("b[3,1]").unwrap(), ["b3", "b1"]);
        assert_eq!(expand("r[1-2]-gpu").unwrap(), ["r1-gpu", "r2-gpu"]);
        assert_eq!(expand("").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn a_malformed_hostlist_says_what_is_wrong() {
        assert!(expand("node[0-")
            .unwrap_err()
            .to_string()
            .contains("unbalanced"));
        assert!(expand("node[x]")
            .unwrap_err()
            .to_string()
            .contains("'x' is not a number"));
        assert!(expand("node[5-1]")
            .unwrap_err()
            .to_string()
            .contains("increasing"));
        assert!(expand("a]b")
            .unwrap_err()
            .to_string()
            .contains("unbalanced"));
    }

    #[test]
    fn every_group_varies_and_the_last_fastest() {
        assert_eq!(
            expand("r[1-2]g[0,3]x").unwrap(),
            ["r1g0x", "r1g3x", "r2g0x", "r2g3x"]
        );
        assert_eq!(expand("a[1]b[2]c").unwrap(), ["a1b2c"]);
    }

    #[test]
    fn a_hostlist_that_would_name_too_many_hosts_is_refused_before_expanding() {
        // 10^12 names, as a product of two groups: refused by its count.
        let err = expand("a[0-999999]b[0-999999]").unwrap_err().to_string();
        assert!(err.contains("more than 262144 hosts"), "{err}");
        // Many entries whose sum is over the cap.
        let list = ["n[0-99999]"; 3].join(",");
        assert!(expand(&list).unwrap_err().to_string().contains("more than"));
        // One range too wide on its own.
        assert!(expand("n[0-9999999999]")
            .unwrap_err()
            .to_string()
            .contains("more than"));
        // Many bracket groups neither recurse nor multiply out of bounds.
        let deep = "a[1]".repeat(100_000);
        assert_eq!(expand(&deep).unwrap().len(), 1);
        // A long input is named by its start only.
        let err = expand(&format!("{}x[", "a".repeat(10_000)))
            .unwrap_err()
            .to_string();
        assert!(err.len() < 200, "{err}");
        // Exactly the cap is fine.
        assert_eq!(expand("n[0-262143]").unwrap().len(), 1 << 18);
    }
}
