//! RFC 22 idsets as the shell's rank information writes them (`0-3,7`):
//! how many ids one holds.

/// An idset that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an idset: {0:?}")]
pub struct NotAnIdset(pub String);

/// The number of ids in `set` ("" holds none).
pub fn count(set: &str) -> Result<u64, NotAnIdset> {
    let bad = || NotAnIdset(set.to_string());
    let inner = set.trim();
    let inner = inner
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(inner);
    if inner.is_empty() {
        return Ok(0);
    }
    let mut n = 0u64;
    for part in inner.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo, hi),
            None => (part, part),
        };
        let lo: u64 = lo.trim().parse().map_err(|_| bad())?;
        let hi: u64 = hi.trim().parse().map_err(|_| bad())?;
        if hi < lo {
            return Err(bad());
        }
        n += hi - lo + 1;
    }
    Ok(n)
}

/// The ids in `set`, in order; a set of more than `limit` ids is refused
/// as not one (a GPU or core set is small).
pub fn ids(set: &str, limit: u64) -> Result<Vec<u64>, NotAnIdset> {
    let n = count(set)?;
    if n > limit {
        return Err(NotAnIdset(set.to_string()));
    }
    let inner = set.trim();
    let inner = inner
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(inner);
    let mut out = Vec::with_capacity(n as usize);
    if inner.is_empty() {
        return Ok(out);
    }
    for part in inner.split(',') {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        // count() has read them.
        let (lo, hi): (u64, u64) = (
            lo.trim().parse().map_err(|_| NotAnIdset(set.into()))?,
            hi.trim().parse().map_err(|_| NotAnIdset(set.into()))?,
        );
        out.extend(lo..=hi);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_counted() {
        assert_eq!(count(""), Ok(0));
        assert_eq!(count("3"), Ok(1));
        assert_eq!(count("0-3,7"), Ok(5));
        assert_eq!(count("[0-1,4-5]"), Ok(4));
        assert_eq!(ids("0-1,4", 64), Ok(vec![0, 1, 4]));
        assert_eq!(ids("", 64), Ok(vec![]));
        assert!(ids("0-4294967295", 64).is_err());
    }

    #[test]
    fn a_malformed_set_is_named() {
        assert_eq!(count("3-1"), Err(NotAnIdset("3-1".into())));
        assert_eq!(count("a"), Err(NotAnIdset("a".into())));
        assert_eq!(
            count("1,,2").unwrap_err().to_string(),
            "not an idset: \"1,,2\""
        );
    }
}
