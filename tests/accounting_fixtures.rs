//! flux-accounting's fair share, limits and held jobs from its recorded
//! plugin answers agree with `flux account list-users`, `flux account
//! list-queues` and `flux jobs`, recorded at the same instant.

mod common;

use std::collections::BTreeMap;

use common::{fixture, samples, value};
use flux_prometheus::collectors::accounting::{self as collector, AccountingState};
use flux_prometheus::model::accounting::{self, ASSOCIATION_LIMITS, QUEUE_LIMITS};
use flux_prometheus::model::jobflow::ACCOUNTING_LIMITS;
use flux_prometheus::state::State;
use serde_json::Value;

/// uid to user name as `flux account list-users` recorded them.
fn names() -> BTreeMap<u32, String> {
    let users: Value =
        serde_json::from_str(&fixture("cli.account-list-users.json")).expect("parses");
    users
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|u| {
            Some((
                u32::try_from(u["userid"].as_u64()?).ok()?,
                u["username"].as_str()?.to_string(),
            ))
        })
        .collect()
}

fn counted(limit: usize) -> AccountingState {
    let found = accounting::parse(&fixture("job-manager.jobtap-query.json")).expect("reads");
    assert!(found.unread.is_empty(), "{:?}", found.unread);
    let names = names();
    let name = |uid: u32| names.get(&uid).cloned().unwrap_or_else(|| uid.to_string());
    collector::count(&found, &name, limit, 0)
}

fn exposition(limit: usize) -> BTreeMap<String, f64> {
    let mut state = State::with_collectors(&["accounting"]);
    state.set(collector::SECTION, counted(limit));
    samples(&flux_prometheus::collectors::render(&state))
}

fn key(family: &str, user: &str, bank: &str, limit: Option<&str>) -> String {
    match limit {
        Some(l) => format!("{family}{{user=\"{user}\",bank=\"{bank}\",limit=\"{l}\"}}"),
        None => format!("{family}{{user=\"{user}\",bank=\"{bank}\"}}"),
    }
}

#[test]
fn fair_share_and_limits_are_those_of_flux_account_list_users() {
    common::each_accounting_set(|| {
        let s = exposition(100);
        let users: Value =
            serde_json::from_str(&fixture("cli.account-list-users.json")).expect("parses");
        let rows = users.as_array().expect("a list");
        assert!(rows.len() >= 5, "the recorded mix has five associations");
        for u in rows {
            let (user, bank) = (
                u["username"].as_str().expect("username"),
                u["bank"].as_str().expect("bank"),
            );
            assert_eq!(
                value(
                    &s,
                    &key("flux_accounting_association_fairshare", user, bank, None)
                ),
                u["fairshare"].as_f64().expect("fairshare"),
                "{user}/{bank} fairshare"
            );
            assert_eq!(
                value(
                    &s,
                    &key("flux_accounting_association_active", user, bank, None)
                ),
                u["active"].as_f64().expect("active"),
            );
            // flux account's field for each limit.
            let fields = [
                "max_running_jobs",
                "max_active_jobs",
                "max_sched_jobs",
                "max_nodes",
                "max_cores",
            ];
            for (limit, field) in ASSOCIATION_LIMITS.iter().zip(fields) {
                let k = key("flux_accounting_association_limit", user, bank, Some(limit));
                match &u[field] {
                    Value::String(text) if text == "unlimited" => {
                        assert!(!s.contains_key(&k), "{k} is absent");
                    }
                    v => assert_eq!(value(&s, &k), v.as_f64().expect("a number"), "{k}"),
                }
            }
        }
        // The instance owner's own association (flux-accounting adds it,
        // named after the owner) is the plugin's only other one.
        assert_eq!(
            value(&s, "flux_accounting_associations"),
            (rows.len() + 1) as f64
        );
    });
}

#[test]
fn running_active_and_held_jobs_are_those_of_flux_jobs() {
    common::each_accounting_set(|| {
        let s = exposition(100);
        let jobs: Value = serde_json::from_str(&fixture("cli.jobs.json")).expect("parses");
        let names = names();
        // (user, bank) -> [running, active, sched, nodes, cores], held.
        let mut want: BTreeMap<(String, String), ([f64; 5], f64)> = BTreeMap::new();
        for job in jobs["jobs"].as_array().expect("jobs") {
            let state = job["state"].as_str().unwrap_or("");
            if state == "INACTIVE" {
                continue;
            }
            let uid = job["userid"].as_u64().expect("userid") as u32;
            let user = names.get(&uid).cloned().unwrap_or_else(|| uid.to_string());
            let bank = job["bank"].as_str().expect("bank").to_string();
            let entry = want.entry((user, bank)).or_default();
            entry.0[1] += 1.0;
            match state {
                "RUN" | "CLEANUP" => {
                    entry.0[0] += 1.0;
                    entry.0[3] += job["nnodes"].as_f64().expect("nnodes");
                    entry.0[4] += job["ncores"].as_f64().expect("ncores");
                }
                "SCHED" => entry.0[2] += 1.0,
                _ => {}
            }
            let held = job["dependencies"].as_array().is_some_and(|d| {
                d.iter()
                    .any(|d| ACCOUNTING_LIMITS.contains(&d.as_str().unwrap_or("")))
            });
            if held {
                entry.1 += 1.0;
            }
        }
        assert!(want.values().any(|(_, held)| *held > 0.0), "jobs are held");
        for ((user, bank), (used, held)) in &want {
            for (limit, n) in ASSOCIATION_LIMITS.iter().zip(used) {
                let k = key("flux_accounting_association_usage", user, bank, Some(limit));
                assert_eq!(value(&s, &k), *n, "{k}");
            }
            let k = key("flux_accounting_association_held_jobs", user, bank, None);
            assert_eq!(value(&s, &k), *held, "{k}");
        }
        // A full limit reads 1: physics runs one job of one.
        let user = names
            .values()
            .find(|n| *n != "alice" && *n != "bob")
            .expect("the recorder");
        let k = key(
            "flux_accounting_association_limit_usage_ratio",
            user,
            "physics",
            Some("max-running-jobs"),
        );
        assert_eq!(value(&s, &k), 1.0);
    });
}

#[test]
fn queue_limits_are_those_of_flux_account_list_queues_and_usage_of_flux_jobs() {
    common::each_accounting_set(|| {
        let s = exposition(100);
        let queues: Value =
            serde_json::from_str(&fixture("cli.account-list-queues.json")).expect("parses");
        let fields = [
            "max_running_jobs",
            "max_nodes_per_assoc",
            "max_sched_jobs",
            "max_sched_nodes_per_assoc",
            "max_sched_cores_per_assoc",
        ];
        for q in queues.as_array().expect("a list") {
            let name = q["queue"].as_str().expect("queue");
            assert_eq!(
                value(
                    &s,
                    &format!("flux_accounting_queue_priority{{queue=\"{name}\"}}")
                ),
                q["priority"].as_f64().expect("priority")
            );
            for (limit, field) in QUEUE_LIMITS.iter().zip(fields) {
                let k =
                    format!("flux_accounting_queue_limit{{queue=\"{name}\",limit=\"{limit}\"}}");
                match &q[field] {
                    Value::String(v) if v == "unlimited" => assert!(!s.contains_key(&k), "{k}"),
                    v => assert_eq!(value(&s, &k), v.as_f64().expect("a number"), "{k}"),
                }
            }
        }
        // Running and scheduled jobs, and their cores, per queue.
        let jobs: Value = serde_json::from_str(&fixture("cli.jobs.json")).expect("parses");
        let mut want: BTreeMap<String, [f64; 5]> = BTreeMap::new();
        for job in jobs["jobs"].as_array().expect("jobs") {
            let queue = job["queue"].as_str().unwrap_or("").to_string();
            let entry = want.entry(queue).or_default();
            let (nodes, cores) = (
                job["nnodes"].as_f64().unwrap_or(0.0),
                job["ncores"].as_f64().unwrap_or(0.0),
            );
            match job["state"].as_str().unwrap_or("") {
                "RUN" | "CLEANUP" => {
                    entry[0] += 1.0;
                    entry[1] += nodes;
                }
                "SCHED" => {
                    entry[2] += 1.0;
                    // flux-accounting counts a pending job that asks only
                    // for cores as one node; flux jobs, as none yet.
                    entry[3] += nodes.max(1.0);
                    entry[4] += cores;
                }
                _ => {}
            }
        }
        for (queue, used) in &want {
            for (limit, n) in QUEUE_LIMITS.iter().zip(used) {
                let k =
                    format!("flux_accounting_queue_usage{{queue=\"{queue}\",limit=\"{limit}\"}}");
                assert_eq!(value(&s, &k), *n, "{k}");
            }
        }
        // chemistry runs two jobs in batch, whose limit is two each.
        assert_eq!(
            value(
                &s,
                "flux_accounting_queue_limit_usage_ratio_max{queue=\"batch\",limit=\"max-running-jobs\"}"
            ),
            1.0
        );
    });
}

#[test]
fn beyond_the_label_limit_the_counts_still_add_up() {
    common::each_accounting_set(|| {
        let all = exposition(100);
        let cut = exposition(2);
        let sum = |s: &BTreeMap<String, f64>, family: &str| -> f64 {
            s.iter()
                .filter(|(k, _)| k.starts_with(&format!("{family}{{")))
                .map(|(_, v)| v)
                .sum()
        };
        for family in [
            "flux_accounting_association_held_jobs",
            "flux_accounting_association_usage",
        ] {
            assert_eq!(sum(&all, family), sum(&cut, family), "{family}");
        }
        let fairshares = cut
            .keys()
            .filter(|k| k.starts_with("flux_accounting_association_fairshare{"))
            .count();
        assert_eq!(fairshares, 2);
        // The two kept are the ones holding jobs back.
        let held: Vec<&String> = cut
            .iter()
            .filter(|(k, v)| k.starts_with("flux_accounting_association_held_jobs{") && **v > 0.0)
            .map(|(k, _)| k)
            .collect();
        assert_eq!(held.len(), 2, "{held:?}");
        assert!(cut
            .contains_key("flux_accounting_association_held_jobs{user=\"other\",bank=\"other\"}"));
    });
}

#[test]
fn without_the_plugin_the_answer_says_so() {
    common::each_accounting_set(|| {
        let recorded: Value =
            serde_json::from_str(&fixture("job-manager.jobtap-query.not-loaded.json"))
                .expect("parses");
        let msg = recorded["__error__"]["msg"].as_str().expect("an error");
        assert!(accounting::not_loaded(msg), "{msg}");
        // And without a section, nothing is written.
        let state = State::with_collectors(&["accounting"]);
        assert!(!flux_prometheus::collectors::render(&state).contains("flux_accounting_"));
    });
}

/// The set's exposition is kept beside it (promtool checks it, and the
/// kit's queries may name only families some exposition has):
/// `UPDATE_GOLDEN=1 cargo test --test accounting_fixtures` writes it.
#[test]
fn the_exposition_of_each_set_is_as_committed() {
    common::each_accounting_set(|| {
        let mut state = State::with_collectors(&["accounting"]);
        state.set(collector::SECTION, counted(100));
        let rendered = flux_prometheus::collectors::render(&state);
        let path = common::fixture_dir().join("exposition.txt");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &rendered).expect("write the exposition");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            rendered == committed,
            "{} differs from what the module renders now; regenerate with UPDATE_GOLDEN=1 cargo test --test accounting_fixtures after a deliberate change",
            path.display()
        );
    });
}
