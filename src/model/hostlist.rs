//! Flux's hostlists (RFC 29), as R's `nodelist` holds them: `node[0-3,7]`,
//! `login1,node[01-02]`. Written here because Flux's semantics differ from
//! Slurm-style hostlist crates: a hostlist is an ordered list in which a
//! name may repeat (every broker of a test instance on one machine has the
//! same host name, `vm,vm`), and R's `nodelist` names its ranks one for one.

/// The host names of a hostlist, in order, repeats kept.
pub fn expand(list: &str) -> Result<Vec<String>, String> {
    let mut hosts = Vec::new();
    for entry in split_top(list)? {
        if entry.is_empty() {
            continue;
        }
        expand_entry(entry, &mut hosts).map_err(|why| format!("'{list}': {why}"))?;
    }
    Ok(hosts)
}

/// Splits at the commas outside brackets.
fn split_top(list: &str) -> Result<Vec<&str>, String> {
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
            return Err(format!("'{list}': unbalanced brackets"));
        }
    }
    if depth != 0 {
        return Err(format!("'{list}': unbalanced brackets"));
    }
    parts.push(list[start..].trim());
    Ok(parts)
}

/// `prefix[ranges]rest`: each number of the ranges, zero-padded as written,
/// between the prefix and each expansion of the rest.
fn expand_entry(entry: &str, hosts: &mut Vec<String>) -> Result<(), String> {
    let Some(open) = entry.find('[') else {
        hosts.push(entry.to_string());
        return Ok(());
    };
    let close = entry[open..]
        .find(']')
        .map(|i| open + i)
        .ok_or("unbalanced brackets")?;
    let (prefix, ranges, rest) = (&entry[..open], &entry[open + 1..close], &entry[close + 1..]);
    let mut tails = Vec::new();
    expand_entry(rest, &mut tails)?;
    for range in ranges.split(',') {
        let (lo, hi) = range.split_once('-').unwrap_or((range, range));
        let width = lo.len();
        let number = |s: &str| {
            s.trim()
                .parse::<u64>()
                .map_err(|_| format!("'{range}' is not a number or a range"))
        };
        let (lo, hi) = (number(lo)?, number(hi)?);
        if hi < lo || hi - lo > 1_000_000 {
            return Err(format!("'{range}' is not an increasing range"));
        }
        for n in lo..=hi {
            for tail in &tails {
                hosts.push(format!("{prefix}{n:0width$}{tail}"));
            }
        }
    }
    Ok(())
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
        assert!(expand("node[0-").unwrap_err().contains("unbalanced"));
        assert!(expand("node[x]")
            .unwrap_err()
            .contains("'x' is not a number"));
        assert!(expand("node[5-1]").unwrap_err().contains("increasing"));
    }
}
