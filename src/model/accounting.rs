//! flux-accounting's priority plugin as it answers
//! `job-manager.jobtap-query` with `{"name": "mf_priority.so"}`: each
//! association's (user and bank's) fair share, limits and use of them, and
//! each queue's limits.
//!
//! The answer is read part by part: an association or a queue that is not
//! of the shape read (a newer or older flux-accounting) is left out and
//! named in [`Accounting::unread`], and the rest is kept.

use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::error::ParseError;

/// The plugin's name, as `flux jobtap list` shows it.
pub const PLUGIN: &str = "mf_priority.so";

/// The request that asks it.
pub const QUERY: &str = r#"{"name":"mf_priority.so"}"#;

pub const TOPIC: &str = "job-manager.jobtap-query";

/// flux-accounting's "no limit" (`INTEGER_MAX`): `flux account` shows it as
/// "unlimited".
pub const UNLIMITED: i64 = 2_147_483_647;

/// The limits of an association, by the `flux account add-user` option
/// that sets each, in the order of [`Association::limits`].
pub const ASSOCIATION_LIMITS: [&str; 5] = [
    "max-running-jobs",
    "max-active-jobs",
    "max-sched-jobs",
    "max-nodes",
    "max-cores",
];

/// The per-association limits of a queue, by the `flux account add-queue`
/// option that sets each, in the order of [`QueueLimits::limits`] and
/// [`QueueUsage::used`].
pub const QUEUE_LIMITS: [&str; 5] = [
    "max-running-jobs",
    "max-nodes-per-assoc",
    "max-sched-jobs",
    "max-sched-nodes-per-assoc",
    "max-sched-cores-per-assoc",
];

/// What the plugin holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Accounting {
    pub associations: Vec<Association>,
    pub queues: Vec<QueueLimits>,
    /// One line for each part of the answer that was not read: which part,
    /// and why.
    pub unread: Vec<String>,
}

/// One user in one bank.
#[derive(Debug, Clone, PartialEq)]
pub struct Association {
    pub userid: u32,
    pub bank: String,
    /// 0 to 1, as `flux account view-user` shows it.
    pub fairshare: f64,
    /// Whether the association may submit (`flux account delete-user`
    /// makes it inactive).
    pub active: bool,
    /// Jobs held back over one of flux-accounting's limits.
    pub held_jobs: u64,
    /// What is used of each of [`ASSOCIATION_LIMITS`], and the limit where
    /// there is one.
    pub limits: [Use; 5],
    /// Its use of each queue that has any.
    pub queues: Vec<(String, QueueUsage)>,
}

/// What is used against a limit, and the limit: None where there is none
/// (`flux account` says "unlimited").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Use {
    pub used: i64,
    pub limit: Option<i64>,
}

impl Use {
    fn of(used: i64, limit: i64) -> Use {
        // The plugin marks an association whose data has not come yet with
        // a negative limit: none is enforced from it.
        let limit = (0..UNLIMITED).contains(&limit).then_some(limit);
        Use { used, limit }
    }

    /// The fraction of the limit in use; None without a limit. A limit of
    /// 0 used by nothing is not in use; used at all, it is over.
    pub fn ratio(&self) -> Option<f64> {
        let limit = self.limit?;
        Some(match (limit, self.used) {
            (0, 0) => 0.0,
            (0, _) => f64::INFINITY,
            (limit, used) => used as f64 / limit as f64,
        })
    }
}

/// An association's use of one queue, in the order of [`QUEUE_LIMITS`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QueueUsage {
    pub used: [i64; 5],
}

/// A queue as flux-accounting knows it: limits each association has in it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueLimits {
    pub name: String,
    /// The queue's priority factor.
    pub priority: i64,
    /// By [`QUEUE_LIMITS`]; None where there is none.
    pub limits: [Option<i64>; 5],
}

#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(borrow)]
    mf_priority_map: Vec<&'a RawValue>,
    #[serde(borrow, default)]
    queues: BTreeMap<String, &'a RawValue>,
}

#[derive(Deserialize)]
struct RawUser<'a> {
    userid: u32,
    #[serde(borrow)]
    banks: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct RawBank {
    bank_name: String,
    fairshare: f64,
    active: i64,
    cur_run_jobs: i64,
    max_run_jobs: i64,
    cur_active_jobs: i64,
    max_active_jobs: i64,
    cur_sched_jobs: i64,
    max_sched_jobs: i64,
    cur_nodes: i64,
    max_nodes: i64,
    cur_cores: i64,
    max_cores: i64,
    #[serde(default)]
    queue_usage: BTreeMap<String, RawQueueUsage>,
    held_jobs: BTreeMap<String, IgnoredAny>,
}

#[derive(Deserialize)]
struct RawQueueUsage {
    cur_run_jobs: i64,
    cur_nodes: i64,
    cur_sched_jobs: i64,
    cur_sched_nodes: i64,
    cur_sched_cores: i64,
}

#[derive(Deserialize)]
struct RawQueue {
    priority: i64,
    max_running_jobs: i64,
    max_nodes_per_assoc: i64,
    max_sched_jobs: i64,
    max_sched_nodes_per_assoc: i64,
    max_sched_cores_per_assoc: i64,
}

/// Whether `message`, the error text of a jobtap query, says that the
/// plugin is not loaded (flux-core answers "NAME: plugin not found").
pub fn not_loaded(message: &str) -> bool {
    message.ends_with("plugin not found")
}

/// Reads the plugin's answer. Only an answer with no association list at
/// all is an error; any part that does not read is named in `unread`.
pub fn parse(payload: &str) -> Result<Accounting, ParseError> {
    let answer: Answer =
        serde_json::from_str(payload).map_err(|e| ParseError::malformed(TOPIC, e))?;
    let mut out = Accounting::default();
    for (i, user) in answer.mf_priority_map.iter().enumerate() {
        let user: RawUser = match serde_json::from_str(user.get()) {
            Ok(user) => user,
            Err(e) => {
                out.unread.push(format!("{TOPIC}: user {i}: {e}"));
                continue;
            }
        };
        for (j, bank) in user.banks.iter().enumerate() {
            match serde_json::from_str::<RawBank>(bank.get()) {
                Ok(bank) => out.associations.push(association(user.userid, bank)),
                Err(e) => out
                    .unread
                    .push(format!("{TOPIC}: userid {} bank {j}: {e}", user.userid)),
            }
        }
    }
    for (name, queue) in answer.queues {
        match serde_json::from_str::<RawQueue>(queue.get()) {
            Ok(q) => out.queues.push(QueueLimits {
                limits: [
                    q.max_running_jobs,
                    q.max_nodes_per_assoc,
                    q.max_sched_jobs,
                    q.max_sched_nodes_per_assoc,
                    q.max_sched_cores_per_assoc,
                ]
                .map(|l| Use::of(0, l).limit),
                priority: q.priority,
                name,
            }),
            Err(e) => out.unread.push(format!("{TOPIC}: queue {name}: {e}")),
        }
    }
    Ok(out)
}

fn association(userid: u32, b: RawBank) -> Association {
    Association {
        userid,
        fairshare: b.fairshare,
        active: b.active != 0,
        held_jobs: b.held_jobs.len() as u64,
        limits: [
            Use::of(b.cur_run_jobs, b.max_run_jobs),
            Use::of(b.cur_active_jobs, b.max_active_jobs),
            Use::of(b.cur_sched_jobs, b.max_sched_jobs),
            Use::of(b.cur_nodes, b.max_nodes),
            Use::of(b.cur_cores, b.max_cores),
        ],
        queues: b
            .queue_usage
            .into_iter()
            .map(|(queue, u)| {
                let used = [
                    u.cur_run_jobs,
                    u.cur_nodes,
                    u.cur_sched_jobs,
                    u.cur_sched_nodes,
                    u.cur_sched_cores,
                ];
                (queue, QueueUsage { used })
            })
            .collect(),
        bank: b.bank_name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = r#"{"name":"mf_priority.so","path":"/x","mf_priority_map":[
        {"userid":1001,"banks":[
          {"bank_name":"a","fairshare":0.25,"max_run_jobs":2,"cur_run_jobs":1,
           "max_active_jobs":10,"cur_active_jobs":3,"queues":[],"queue_factor":0,
           "projects":["*"],"def_project":"*","max_nodes":2147483647,
           "max_cores":8,"cur_nodes":1,"cur_cores":4,"active":1,
           "cur_sched_jobs":0,"max_sched_jobs":2147483647,
           "queue_usage":{"batch":{"cur_run_jobs":1,"cur_nodes":1,"cur_sched_jobs":0,
             "cur_sched_nodes":0,"cur_sched_cores":0}},
           "held_jobs":{"123":{"nnodes":1,"ncores":1,"queue":"batch",
             "deps":["max-running-jobs-user-limit"]}}},
          {"bank_name":"b","fairshare":"high"}]},
        {"banks":[]}],
      "queues":{"batch":{"name":"batch","priority":5,"max_running_jobs":4,
        "max_nodes_per_assoc":2147483647,"max_sched_jobs":2147483647,
        "max_sched_nodes_per_assoc":2147483647,"max_sched_cores_per_assoc":16},
        "odd":{"name":"odd"}},
      "projects":["*"]}"#;

    #[test]
    fn an_association_reads_with_its_limits_and_unlimited_is_none() {
        let a = parse(ONE).expect("reads");
        assert_eq!(a.associations.len(), 1);
        let x = &a.associations[0];
        assert_eq!((x.userid, x.bank.as_str()), (1001, "a"));
        assert_eq!((x.fairshare, x.active, x.held_jobs), (0.25, true, 1));
        assert_eq!(
            x.limits[0],
            Use {
                used: 1,
                limit: Some(2)
            }
        );
        assert_eq!(
            x.limits[3],
            Use {
                used: 1,
                limit: None
            }
        );
        assert_eq!(x.limits[4].ratio(), Some(0.5));
        assert_eq!(
            x.queues,
            vec![(
                "batch".into(),
                QueueUsage {
                    used: [1, 1, 0, 0, 0]
                }
            )]
        );
        assert_eq!(a.queues.len(), 1);
        assert_eq!(a.queues[0].limits, [Some(4), None, None, None, Some(16)]);
        assert_eq!(a.queues[0].priority, 5);
    }

    #[test]
    fn parts_of_another_shape_are_named_and_the_rest_kept() {
        let a = parse(ONE).expect("reads");
        assert_eq!(a.unread.len(), 3, "{:?}", a.unread);
        assert!(
            a.unread[0].contains("userid 1001 bank 1"),
            "{}",
            a.unread[0]
        );
        assert!(
            a.unread[1].contains("user 1: missing field `userid`"),
            "{}",
            a.unread[1]
        );
        assert!(a.unread[2].contains("queue odd"), "{}", a.unread[2]);
        let err = parse(r#"{"name":"mf_priority.so"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("jobtap-query: malformed response"), "{err}");
        assert!(err.contains("mf_priority_map"), "{err}");
    }

    #[test]
    fn a_limit_of_zero_is_full_at_once_and_a_negative_one_is_none() {
        assert_eq!(Use::of(0, 0).ratio(), Some(0.0));
        assert_eq!(Use::of(1, 0).ratio(), Some(f64::INFINITY));
        assert_eq!(Use::of(3, -9).limit, None);
        assert_eq!(Use::of(3, UNLIMITED).ratio(), None);
    }

    #[test]
    fn not_loaded_is_told_from_other_errors() {
        assert!(not_loaded("mf_priority.so: plugin not found"));
        assert!(!not_loaded("plugin.query failed"));
    }
}
