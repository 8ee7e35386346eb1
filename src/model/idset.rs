//! RFC 22 idsets ("0-3,7", optionally in brackets) as bitsets.

use super::error::ParseError;

/// Ids above this are refused, so a bad payload cannot make us allocate
/// gigabytes (16 Mi ranks or cores is far beyond any real instance).
const MAX_ID: u32 = 1 << 24;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdSet {
    words: Vec<u64>,
}

/// RFC 22's compact form, ranges joined by commas ("0-3,7"), as flux
/// prints idsets.
impl std::fmt::Display for IdSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for (lo, hi) in self.runs() {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if hi == lo {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

impl IdSet {
    pub fn new() -> IdSet {
        IdSet::default()
    }

    pub fn parse(s: &str) -> Result<IdSet, ParseError> {
        let shown = match s.char_indices().nth(64) {
            Some((i, _)) => format!("{}...", &s[..i]),
            None => s.to_string(),
        };
        let bad = |why: &str| ParseError::invalid(format!("invalid idset '{shown}': {why}"));
        let body = s.trim();
        let body = body
            .strip_prefix('[')
            .and_then(|b| b.strip_suffix(']'))
            .unwrap_or(body);
        let mut set = IdSet::new();
        // Ids named, over all the ranges: a set holds at most MAX_ID, and
        // ranges that overlap (never in flux's own idsets) may not make the
        // parse cost more than that.
        let mut named: u64 = 0;
        for part in body.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (lo, hi) = match part.split_once('-') {
                Some((a, b)) => (a.parse::<u32>(), b.parse::<u32>()),
                None => (part.parse::<u32>(), part.parse::<u32>()),
            };
            let (Ok(lo), Ok(hi)) = (lo, hi) else {
                return Err(bad("not a number or range"));
            };
            if lo > hi {
                return Err(bad("range runs backwards"));
            }
            if hi >= MAX_ID {
                return Err(bad(&format!("id {hi} is over the largest, {}", MAX_ID - 1)));
            }
            named += u64::from(hi - lo) + 1;
            if named > u64::from(MAX_ID) {
                return Err(bad(&format!("its ranges name more than {MAX_ID} ids")));
            }
            set.insert_range(lo, hi);
        }
        Ok(set)
    }

    fn grow(&mut self, id: u32) {
        let need = id as usize / 64 + 1;
        if self.words.len() < need {
            self.words.resize(need, 0);
        }
    }

    pub fn insert(&mut self, id: u32) {
        self.grow(id);
        self.words[id as usize / 64] |= 1 << (id % 64);
    }

    /// Inserts `lo..=hi` a word at a time.
    pub fn insert_range(&mut self, lo: u32, hi: u32) {
        if hi < lo {
            return;
        }
        self.grow(hi);
        let (first, last) = (lo as usize / 64, hi as usize / 64);
        // The bits from `from` up, and up to `to`, within one word.
        let from = |bit: u32| u64::MAX << (bit % 64);
        let to = |bit: u32| u64::MAX >> (63 - bit % 64);
        if first == last {
            self.words[first] |= from(lo) & to(hi);
            return;
        }
        self.words[first] |= from(lo);
        for word in &mut self.words[first + 1..last] {
            *word = u64::MAX;
        }
        self.words[last] |= to(hi);
    }

    pub fn contains(&self, id: u32) -> bool {
        self.words
            .get(id as usize / 64)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    pub fn count(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }

    /// Ascending ids; walks set bits only, so a lone high rank does not
    /// cost a pass over every bit below it.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words
            .iter()
            .enumerate()
            .filter(|(_, &w)| w != 0)
            .flat_map(|(i, &w)| {
                let base = i as u32 * 64;
                // Each step clears the lowest set bit; w is non-zero here.
                std::iter::successors(Some(w), |&rest| Some(rest & (rest - 1)).filter(|&r| r != 0))
                    .map(move |rest| base + rest.trailing_zeros())
            })
    }

    /// The set's runs of consecutive ids, as inclusive ranges in ascending
    /// order. Whole words are skipped at a time, so a set of one long range
    /// costs a step per 64 ids, not one per id.
    pub fn runs(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        let bits = self.words.len() * 64;
        let mut at = 0usize;
        std::iter::from_fn(move || {
            let lo = self.next_with(at, bits, false)?;
            // The run ends before the next id not in the set.
            let end = self.next_with(lo, bits, true).unwrap_or(bits);
            at = end;
            Some((lo as u32, (end - 1) as u32))
        })
    }

    /// The first bit at or after `from` that is set (`clear` false) or
    /// clear (`clear` true), below `bits`.
    fn next_with(&self, from: usize, bits: usize, clear: bool) -> Option<usize> {
        let mut i = from / 64;
        let mut word = self.words.get(i)?;
        let flip = if clear { u64::MAX } else { 0 };
        // The bits of the first word below `from` do not count.
        let mut rest = (word ^ flip) & (u64::MAX << (from % 64));
        loop {
            if rest != 0 {
                let bit = i * 64 + rest.trailing_zeros() as usize;
                return (bit < bits).then_some(bit);
            }
            i += 1;
            word = self.words.get(i)?;
            rest = word ^ flip;
        }
    }

    /// How many ids are in `self` but in neither `a` nor `b`.
    pub fn count_minus(&self, a: &IdSet, b: &IdSet) -> u64 {
        self.words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let gone =
                    a.words.get(i).copied().unwrap_or(0) | b.words.get(i).copied().unwrap_or(0);
                u64::from((w & !gone).count_ones())
            })
            .sum()
    }

    pub fn union_with(&mut self, other: &IdSet) {
        if self.words.len() < other.words.len() {
            self.words.resize(other.words.len(), 0);
        }
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }

    pub fn subtract(&mut self, other: &IdSet) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= !b;
        }
    }

    pub fn intersect_with(&mut self, other: &IdSet) {
        for (i, a) in self.words.iter_mut().enumerate() {
            *a &= other.words.get(i).copied().unwrap_or(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::IdSet;

    #[test]
    fn prints_as_flux_does_and_reads_back() {
        for text in ["", "0", "0-3,7", "1,3,5-6,100-102"] {
            let set = IdSet::parse(text).unwrap();
            assert_eq!(set.to_string(), text);
        }
    }

    #[test]
    fn parses_ranges_singletons_and_brackets() {
        let s = IdSet::parse("[0-3,7]").unwrap();
        assert_eq!(s.iter().collect::<Vec<_>>(), [0, 1, 2, 3, 7]);
        assert_eq!(IdSet::parse("").unwrap().count(), 0);
        assert_eq!(
            IdSet::parse("63-65").unwrap().iter().collect::<Vec<_>>(),
            [63, 64, 65]
        );
    }

    #[test]
    fn refuses_bad_idsets_by_name() {
        for bad in ["a", "3-1", "1-", "99999999999"] {
            let err = IdSet::parse(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("'{bad}'")), "{err}");
        }
    }

    #[test]
    fn runs_are_found_across_and_within_words() {
        for text in [
            "",
            "0",
            "63",
            "64",
            "0-63",
            "0-64",
            "62-65",
            "1,3,5-6,100-102",
            "0-200,256-319,500",
        ] {
            let set = IdSet::parse(text).unwrap();
            let mut expect = Vec::new();
            let ids: Vec<u32> = set.iter().collect();
            for &id in &ids {
                match expect.last_mut() {
                    Some((_, hi)) if *hi + 1 == id => *hi = id,
                    _ => expect.push((id, id)),
                }
            }
            assert_eq!(set.runs().collect::<Vec<_>>(), expect, "{text}");
        }
        let all = IdSet::parse("0-16777215").unwrap();
        assert_eq!(all.runs().collect::<Vec<_>>(), [(0, 16_777_215)]);
        assert_eq!(all.to_string(), "0-16777215");
    }

    #[test]
    fn ranges_are_inserted_exactly_at_word_edges() {
        for (lo, hi) in [
            (0, 0),
            (0, 63),
            (0, 64),
            (5, 130),
            (63, 64),
            (64, 127),
            (1, 1000),
        ] {
            let mut set = IdSet::new();
            set.insert_range(lo, hi);
            assert_eq!(
                set.iter().collect::<Vec<_>>(),
                (lo..=hi).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn an_idset_that_names_too_many_ids_is_refused_by_its_cap() {
        let err = IdSet::parse("16777216").unwrap_err().to_string();
        assert!(err.contains("over the largest, 16777215"), "{err}");
        // One whole range is fine; the same range again would double the
        // work, and is refused with the cap named.
        assert_eq!(IdSet::parse("0-16777215").unwrap().count(), 1 << 24);
        let err = IdSet::parse("0-16777215,0-16777215")
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than 16777216 ids"), "{err}");
        // A long input is named by its start only.
        let long = vec!["1"; 10_000].join(",") + ",x";
        let err = IdSet::parse(&long).unwrap_err().to_string();
        assert!(err.len() < 200, "{err}");
    }

    #[test]
    fn set_operations() {
        let mut a = IdSet::parse("0-7").unwrap();
        a.subtract(&IdSet::parse("2-3").unwrap());
        assert_eq!(a.count(), 6);
        a.intersect_with(&IdSet::parse("0-2,100").unwrap());
        assert_eq!(a.iter().collect::<Vec<_>>(), [0, 1]);
        a.union_with(&IdSet::parse("100").unwrap());
        assert!(a.contains(100) && !a.contains(2));
    }
}
