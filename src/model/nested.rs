//! Nested Flux instances that run the module, as their jobs' memos say.
//!
//! A module in a nested instance (a `flux batch` or `flux alloc` job)
//! writes its exporter URL into its job's memo in the parent instance
//! (`job-manager.memo`, key `prometheus`), together with the targets its
//! own children wrote into theirs. So each level knows its whole subtree
//! from its direct children, and the system instance lists every nested
//! instance at every depth without connecting to any of them: it could
//! not, since a user's instance accepts only its owner. The parent reads
//! the memos from the job-manager journal the jobflow collector already
//! follows, and drops a child when the child withdraws its memo or its job
//! is cleaned up, whether or not the child said goodbye.
//!
//! Nothing a child writes is trusted beyond its shape: every URL is checked
//! (see [`check_url`]), the job ID, level, user and parent of a child are
//! this instance's own knowledge, and a child's descendants are labelled
//! with the child's owner, since a user's instance runs only that user's
//! jobs.

use super::error::ParseError;
use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The memo key.
pub const MEMO_KEY: &str = "prometheus";

/// At most this many descendants are taken from one child, so that a
/// hostile memo cannot make this instance's list, or its own memo in its
/// parent, grow without bound.
pub const MAX_DESCENDANTS: usize = 10_000;

/// A URL longer than this is refused.
const MAX_URL_LEN: usize = 256;

/// What a module writes under [`MEMO_KEY`] in its job's memo.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Memo {
    /// Where this instance's module serves metrics (`http://host:port/metrics`
    /// or `https://…`).
    pub url: String,
    /// Every running nested instance below it, as its children said.
    #[serde(default)]
    pub descendants: Vec<Descendant>,
}

/// One instance below a child, as the child passes it up.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Descendant {
    pub url: String,
    /// Its job ID in its own parent instance (f58).
    pub jobid: String,
    /// Its instance level.
    pub level: u32,
    /// The job ID of its parent instance in the grandparent (f58).
    pub parent: String,
}

/// One scrape target, checked.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    pub scheme: &'static str,
    /// `host:port`, as Prometheus takes a target.
    pub address: String,
    pub path: String,
    /// The job ID of the instance in its parent (f58).
    pub jobid: String,
    pub level: u32,
    /// The owner of the job: a user name, or the uid where it has none.
    pub user: String,
    /// The job ID of the parent instance in its own parent; None when the
    /// parent is the instance at the top of the tree.
    pub parent: Option<String>,
}

impl Target {
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.address, self.path)
    }
}

/// The scheme, `host:port` and path of a URL a child published, or why it
/// is refused. Only `http` and `https`, a DNS name or IP address, a port
/// and a plain path: no user info, query, fragment or escapes, nothing
/// outside printable ASCII, at most 256 characters. A URL that passes is
/// safe to hand to Prometheus as a target and to write into a memo.
pub fn check_url(url: &str) -> Result<(&'static str, String, String), ParseError> {
    if url.len() > MAX_URL_LEN {
        return Err(ParseError::invalid(format!(
            "URL longer than {MAX_URL_LEN} characters"
        )));
    }
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        ("http", rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        ("https", rest)
    } else {
        return Err(ParseError::invalid(format!(
            "{url:?}: not an http:// or https:// URL"
        )));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/metrics"),
    };
    let path_ok = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b));
    if !path_ok {
        return Err(ParseError::invalid(format!(
            "{url:?}: the path may hold only letters, digits and / - . _ ~"
        )));
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (addr, port) = v6
                .split_once("]:")
                .ok_or_else(|| ParseError::invalid(format!("{url:?}: no port")))?;
            if addr.is_empty()
                || !addr
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            {
                return Err(ParseError::invalid(format!("{url:?}: not an IPv6 address")));
            }
            (format!("[{addr}]"), port)
        }
        None => {
            let (host, port) = authority
                .rsplit_once(':')
                .ok_or_else(|| ParseError::invalid(format!("{url:?}: no port")))?;
            let host_ok = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !host_ok {
                return Err(ParseError::invalid(format!(
                    "{url:?}: not a host name or address"
                )));
            }
            (host.to_string(), port)
        }
    };
    match port.parse::<u16>() {
        Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => {}
        _ => {
            return Err(ParseError::invalid(format!(
                "{url:?}: {port:?} is not a port"
            )))
        }
    }
    Ok((scheme, format!("{host}:{port}"), path.to_string()))
}

/// A job ID in Flux's f58 form, as `flux job id --to=f58` writes it.
pub fn f58(id: u64) -> String {
    const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut digits = Vec::new();
    let mut n = id;
    loop {
        digits.push(ALPHABET[(n % 58) as usize] as char);
        n /= 58;
        if n == 0 {
            break;
        }
    }
    std::iter::once('ƒ')
        .chain(digits.into_iter().rev())
        .collect()
}

/// A job ID as Flux writes it: f58 (`ƒ…`, or `f…` in ASCII) or decimal.
pub fn parse_jobid(s: &str) -> Option<u64> {
    const ALPHABET: &str = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let s = s.trim();
    let Some(digits) = s.strip_prefix('ƒ').or_else(|| s.strip_prefix('f')) else {
        return s.parse().ok();
    };
    if digits.is_empty() {
        return None;
    }
    digits.chars().try_fold(0u64, |n, c| {
        let d = ALPHABET.find(c)? as u64;
        n.checked_mul(58)?.checked_add(d)
    })
}

/// One child instance: the job that runs it and what its memo said.
#[derive(Debug, Clone, PartialEq)]
struct Child {
    target: Target,
    descendants: Vec<Target>,
}

/// What a memo did to the list.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The list changed.
    Changed,
    /// The memo was about something else, or said nothing new.
    Same,
    /// The memo was refused, with why (the caller logs it once per job).
    Refused(String),
}

/// Every running nested instance below this one that runs the module.
pub struct Nested {
    /// This instance's level; its children are one deeper.
    level: u32,
    /// This instance's job ID in its parent, the children's `parent`.
    own_jobid: Option<String>,
    /// A job owner's name, from the uid.
    user_name: Box<dyn Fn(u32) -> String>,
    children: BTreeMap<i64, Child>,
    /// Jobs seen in the journal's backlog under way: a child not among
    /// them ended while the stream was down.
    backlog: Option<HashSet<i64>>,
    /// Jobs whose memo was refused and said so: each is said once.
    refused_jobs: HashSet<i64>,
    /// What happened since [`take_news`](Self::take_news).
    news: News,
}

/// What the journal did to the list since it was last asked.
#[derive(Debug, Default, PartialEq)]
pub struct News {
    pub changed: bool,
    /// Refusals not said before, one per job.
    pub refused: Vec<String>,
}

impl std::fmt::Debug for Nested {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nested")
            .field("level", &self.level)
            .field("own_jobid", &self.own_jobid)
            .field("children", &self.children.len())
            .finish()
    }
}

impl Nested {
    pub fn new(
        level: u32,
        own_jobid: Option<String>,
        user_name: Box<dyn Fn(u32) -> String>,
    ) -> Nested {
        Nested {
            level,
            own_jobid,
            user_name,
            children: BTreeMap::new(),
            backlog: None,
            refused_jobs: HashSet::new(),
            news: News::default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// The changes and refusals since the last call.
    pub fn take_news(&mut self) -> News {
        std::mem::take(&mut self.news)
    }

    /// A `memo` event of job `id`, owned by `uid` (None when the job's
    /// submit was not seen): noted in the news.
    pub fn on_memo(&mut self, id: i64, uid: Option<u32>, context: &Value) {
        let user = uid.map_or_else(|| "unknown".to_string(), &self.user_name);
        match self.memo(id, &user, context) {
            Change::Changed => self.news.changed = true,
            Change::Same => {}
            Change::Refused(why) => {
                // A refusal may have withdrawn an earlier entry.
                self.news.changed = true;
                if self.refused_jobs.insert(id) {
                    self.news.refused.push(why);
                }
            }
        }
    }

    /// A `clean` event: job `id` ended, noted in the news.
    pub fn on_clean(&mut self, id: i64) {
        self.refused_jobs.remove(&id);
        if self.job_ended(id) == Change::Changed {
            self.news.changed = true;
        }
    }

    /// A `memo` event of job `id`, owned by `user`: its `prometheus` key
    /// adds, replaces or (null) withdraws the child.
    pub fn memo(&mut self, id: i64, user: &str, context: &Value) -> Change {
        let Some(memo) = context.get(MEMO_KEY) else {
            return Change::Same;
        };
        if memo.is_null() {
            return self.remove(id);
        }
        let memo: Memo = match serde_json::from_value(memo.clone()) {
            Ok(memo) => memo,
            Err(e) => {
                let gone = self.remove(id);
                return Change::Refused(format!(
                    "{}: malformed memo ({e}){}",
                    f58(id as u64),
                    dropped(&gone)
                ));
            }
        };
        let jobid = f58(id as u64);
        let (scheme, address, path) = match check_url(&memo.url) {
            Ok(parts) => parts,
            Err(e) => {
                let gone = self.remove(id);
                return Change::Refused(format!("{jobid}: {e}{}", dropped(&gone)));
            }
        };
        let target = Target {
            scheme,
            address,
            path,
            jobid: jobid.clone(),
            level: self.level + 1,
            user: user.to_string(),
            parent: self.own_jobid.clone(),
        };
        let mut refused = Vec::new();
        let descendants: Vec<Target> = memo
            .descendants
            .iter()
            .take(MAX_DESCENDANTS)
            .filter_map(|d| match check_descendant(d, self.level + 1, user) {
                Ok(t) => Some(t),
                Err(e) => {
                    refused.push(e.to_string());
                    None
                }
            })
            .collect();
        if memo.descendants.len() > MAX_DESCENDANTS {
            refused.push(format!(
                "{} descendants, only the first {MAX_DESCENDANTS} taken",
                memo.descendants.len()
            ));
        }
        let child = Child {
            target,
            descendants,
        };
        let changed = self.children.get(&id) != Some(&child);
        self.children.insert(id, child);
        match (refused.is_empty(), changed) {
            (false, _) => Change::Refused(format!(
                "{jobid}: left out of its descendants: {}",
                refused.join("; ")
            )),
            (true, true) => Change::Changed,
            (true, false) => Change::Same,
        }
    }

    /// Job `id` was cleaned up (it ended): its instance is gone.
    pub fn job_ended(&mut self, id: i64) -> Change {
        self.remove(id)
    }

    /// A new journal subscription starts; its backlog names every active
    /// job.
    pub fn begin_backlog(&mut self) {
        self.backlog = Some(HashSet::new());
    }

    /// A job appears in the backlog under way.
    pub fn seen_in_backlog(&mut self, id: i64) {
        if let Some(seen) = self.backlog.as_mut() {
            seen.insert(id);
        }
    }

    /// The backlog is over: a child whose job it did not name has ended.
    pub fn end_backlog(&mut self) -> Change {
        let Some(seen) = self.backlog.take() else {
            return Change::Same;
        };
        let before = self.children.len();
        self.children.retain(|id, _| seen.contains(id));
        self.refused_jobs.retain(|id| seen.contains(id));
        if self.children.len() == before {
            Change::Same
        } else {
            self.news.changed = true;
            Change::Changed
        }
    }

    /// Every target, children first in job order, each followed by its
    /// descendants.
    pub fn targets(&self) -> impl Iterator<Item = &Target> {
        self.children
            .values()
            .flat_map(|c| std::iter::once(&c.target).chain(&c.descendants))
    }

    /// What this instance passes up to its own parent: every target below
    /// it, as descendants.
    pub fn descendants(&self) -> Vec<Descendant> {
        self.targets()
            .take(MAX_DESCENDANTS)
            .map(|t| Descendant {
                url: t.url(),
                jobid: t.jobid.clone(),
                level: t.level,
                parent: t.parent.clone().unwrap_or_default(),
            })
            .collect()
    }

    fn remove(&mut self, id: i64) -> Change {
        match self.children.remove(&id) {
            Some(_) => Change::Changed,
            None => Change::Same,
        }
    }
}

fn dropped(change: &Change) -> &'static str {
    match change {
        Change::Changed => "; its earlier entry is withdrawn",
        _ => "",
    }
}

/// A descendant a child passed up, checked: its URL, and a level below the
/// child's.
fn check_descendant(d: &Descendant, child_level: u32, user: &str) -> Result<Target, ParseError> {
    let (scheme, address, path) = check_url(&d.url)?;
    let id_ok = |s: &str| {
        !s.is_empty()
            && s.chars().count() <= 16
            && s.chars().all(|c| c == 'ƒ' || c.is_ascii_alphanumeric())
    };
    if !id_ok(&d.jobid) || !id_ok(&d.parent) {
        return Err(ParseError::invalid(format!(
            "{:?}: not a job ID",
            if id_ok(&d.jobid) { &d.parent } else { &d.jobid }
        )));
    }
    if d.level <= child_level || d.level > child_level + 64 {
        return Err(ParseError::invalid(format!(
            "{}: level {} is not below its ancestor's {child_level}",
            d.jobid, d.level
        )));
    }
    Ok(Target {
        scheme,
        address,
        path,
        jobid: d.jobid.clone(),
        level: d.level,
        user: user.to_string(),
        parent: Some(d.parent.clone()),
    })
}

/// The targets as Prometheus's `http_sd_configs` reads them: one group per
/// target, with `__scheme__` and `__metrics_path__` and the labels
/// `flux_jobid`, `flux_instance_level`, `flux_user` and, below the first
/// level, `flux_parent_jobid`.
pub fn http_sd<'a>(targets: impl Iterator<Item = &'a Target>) -> String {
    #[derive(Serialize)]
    struct Group<'a> {
        targets: [&'a str; 1],
        labels: BTreeMap<&'static str, String>,
    }
    let groups: Vec<Group> = targets
        .map(|t| {
            let mut labels = BTreeMap::new();
            labels.insert("__scheme__", t.scheme.to_string());
            labels.insert("__metrics_path__", t.path.clone());
            labels.insert("flux_jobid", t.jobid.clone());
            labels.insert("flux_instance_level", t.level.to_string());
            labels.insert("flux_user", t.user.clone());
            if let Some(parent) = &t.parent {
                labels.insert("flux_parent_jobid", parent.clone());
            }
            Group {
                targets: [t.address.as_str()],
                labels,
            }
        })
        .collect();
    serde_json::to_string(&groups).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn f58_matches_flux() {
        // `flux job id --to=f58 0`, `... 1`, `... 57`, `... 58`, and a real ID.
        assert_eq!(f58(0), "ƒ1");
        assert_eq!(f58(1), "ƒ2");
        assert_eq!(f58(57), "ƒz");
        assert_eq!(f58(58), "ƒ21");
        assert_eq!(f58(1_099_511_627_776), "ƒVtB5VXd");
    }

    #[test]
    fn job_ids_are_read_in_every_form_flux_writes() {
        assert_eq!(parse_jobid("ƒVtB5VXd"), Some(1_099_511_627_776));
        assert_eq!(parse_jobid("fVtB5VXd"), Some(1_099_511_627_776));
        assert_eq!(parse_jobid("1099511627776"), Some(1_099_511_627_776));
        assert_eq!(parse_jobid(&f58(u64::MAX)), Some(u64::MAX));
        for bad in ["", "ƒ", "ƒ0", "ƒl", "x12", "ƒzzzzzzzzzzzzzzz"] {
            assert_eq!(parse_jobid(bad), None, "{bad}");
        }
    }

    #[test]
    fn urls_a_child_may_publish() {
        assert_eq!(
            check_url("http://node3:41235/metrics"),
            Ok(("http", "node3:41235".into(), "/metrics".into()))
        );
        assert_eq!(
            check_url("https://[fe80::1]:9475/flux/metrics"),
            Ok(("https", "[fe80::1]:9475".into(), "/flux/metrics".into()))
        );
        assert_eq!(
            check_url("http://10.0.0.7:80"),
            Ok(("http", "10.0.0.7:80".into(), "/metrics".into()))
        );
        for (url, why) in [
            ("ftp://node:1/metrics", "not an http"),
            ("http://user:pw@node:1/metrics", "not a host"),
            ("http://node/metrics", "no port"),
            ("http://node:0/metrics", "not a port"),
            ("http://node:99999/metrics", "not a port"),
            ("http://node:1/metrics?x=1", "path"),
            ("http://node:1/m%20", "path"),
            ("http://no de:1/metrics", "not a host"),
            ("http://node\n:1/metrics", "not a host"),
            ("http://[zz]:1/metrics", "IPv6"),
        ] {
            let err = check_url(url).expect_err(url).to_string();
            assert!(err.contains(why), "{url}: {err}");
        }
        let long = format!("http://node:1/{}", "a".repeat(300));
        assert!(check_url(&long).is_err());
    }

    #[test]
    fn children_and_their_subtrees_are_listed_with_this_instances_labels() {
        let mut n = Nested::new(0, None, Box::new(|uid| format!("u{uid}")));
        let memo = json!({"prometheus": {
            "url": "https://node3:41235/metrics",
            "descendants": [
                {"url": "http://node4:40001/metrics", "jobid": "ƒ2", "level": 2, "parent": "ƒ3"},
            ],
        }});
        assert_eq!(n.memo(2, "alice", &memo), Change::Changed);
        assert_eq!(n.memo(2, "alice", &memo), Change::Same);
        let targets: Vec<_> = n.targets().cloned().collect();
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[0].jobid, "ƒ3");
        assert_eq!(targets[0].level, 1);
        assert_eq!(targets[0].parent, None);
        assert_eq!(targets[1].level, 2);
        assert_eq!(targets[1].user, "alice");
        let sd: Value = serde_json::from_str(&http_sd(n.targets())).unwrap();
        assert_eq!(
            sd[0],
            json!({"targets": ["node3:41235"], "labels": {
                "__scheme__": "https", "__metrics_path__": "/metrics",
                "flux_jobid": "ƒ3", "flux_instance_level": "1", "flux_user": "alice"}})
        );
        assert_eq!(sd[1]["labels"]["flux_parent_jobid"], "ƒ3");
        // Passed up by a level-1 instance whose job is ƒ9 in its parent.
        // Its child (level 2) has one below it (level 3).
        let mut mid = Nested::new(1, Some("ƒ9".into()), Box::new(|uid| format!("u{uid}")));
        let deeper = json!({"prometheus": {
            "url": "https://node3:41235/metrics",
            "descendants": [
                {"url": "http://node4:40001/metrics", "jobid": "ƒ2", "level": 3, "parent": "ƒ3"},
            ],
        }});
        assert_eq!(mid.memo(2, "alice", &deeper), Change::Changed);
        // The level-1 memo's descendant (level 2) is no deeper than the
        // child that passes it: refused.
        assert!(matches!(mid.memo(2, "alice", &memo), Change::Refused(_)));
        assert_eq!(mid.memo(2, "alice", &deeper), Change::Changed);
        let up = mid.descendants();
        assert_eq!(up[0].level, 2);
        assert_eq!(up[0].parent, "ƒ9");
        assert_eq!(up[1].level, 3);
    }

    #[test]
    fn withdrawal_end_and_backlog_drop_children() {
        let mut n = Nested::new(0, None, Box::new(|uid| format!("u{uid}")));
        let memo = json!({"prometheus": {"url": "http://a:1/metrics"}});
        n.memo(5, "bob", &memo);
        n.memo(6, "bob", &memo);
        assert_eq!(
            n.memo(5, "bob", &json!({"prometheus": null})),
            Change::Changed
        );
        assert_eq!(n.job_ended(6), Change::Changed);
        assert!(n.is_empty());
        n.memo(7, "bob", &memo);
        n.memo(8, "bob", &memo);
        n.begin_backlog();
        n.seen_in_backlog(8);
        assert_eq!(n.end_backlog(), Change::Changed);
        assert_eq!(
            n.targets().map(|t| t.jobid.clone()).collect::<Vec<_>>(),
            vec![f58(8)]
        );
        // Another key's memo is none of this.
        assert_eq!(n.memo(8, "bob", &json!({"note": "hi"})), Change::Same);
    }

    #[test]
    fn news_names_owners_and_says_each_refusal_once() {
        let mut n = Nested::new(0, None, Box::new(|uid| format!("u{uid}")));
        n.on_memo(
            1,
            Some(1001),
            &json!({"prometheus": {"url": "http://a:1/metrics"}}),
        );
        assert_eq!(
            n.take_news(),
            News {
                changed: true,
                refused: vec![]
            }
        );
        assert_eq!(n.targets().next().map(|t| t.user.as_str()), Some("u1001"));
        let bad = json!({"prometheus": {"url": "file:///etc/passwd"}});
        n.on_memo(2, None, &bad);
        n.on_memo(2, None, &bad);
        let news = n.take_news();
        assert_eq!(news.refused.len(), 1, "{news:?}");
        n.on_clean(1);
        assert!(n.take_news().changed);
        assert!(n.is_empty());
    }

    #[test]
    fn hostile_memos_are_refused_and_break_nothing_else() {
        let mut n = Nested::new(0, None, Box::new(|uid| format!("u{uid}")));
        n.memo(
            1,
            "carol",
            &json!({"prometheus": {"url": "http://good:1/metrics"}}),
        );
        n.memo(
            2,
            "carol",
            &json!({"prometheus": {"url": "http://good:2/metrics"}}),
        );
        let refused = n.memo(
            2,
            "carol",
            &json!({"prometheus": {"url": "javascript:alert(1)"}}),
        );
        assert!(
            matches!(&refused, Change::Refused(why) if why.contains("not an http") && why.contains("withdrawn")),
            "{refused:?}"
        );
        assert!(
            matches!(n.memo(3, "carol", &json!({"prometheus": 42})), Change::Refused(why) if why.contains("malformed"))
        );
        // A descendant claiming a level above its ancestor, or a strange
        // job ID, is left out; the child itself stays.
        let mixed = json!({"prometheus": {"url": "http://c:3/metrics", "descendants": [
            {"url": "http://d:4/metrics", "jobid": "ƒ5", "level": 1, "parent": "ƒ4"},
            {"url": "http://d:5/metrics", "jobid": "<script>", "level": 2, "parent": "ƒ4"},
            {"url": "http://d:6/metrics", "jobid": "ƒ6", "level": 2, "parent": "ƒ4"},
        ]}});
        assert!(matches!(n.memo(4, "carol", &mixed), Change::Refused(_)));
        let addresses: Vec<String> = n.targets().map(|t| t.address.clone()).collect();
        assert_eq!(addresses, vec!["good:1", "c:3", "d:6"]);
        // The owner of a subtree is the child's owner, whatever it says.
        assert!(n.targets().all(|t| t.user == "carol"));
    }
}
