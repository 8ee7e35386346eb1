//! Helpers shared by the integration tests: the payloads recorded from real
//! brokers under tests/fixtures, and a reader for rendered exposition text.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where the recorded sets live: one directory per flux-core version and
/// scheduler (`<version>-<scheduler>`), written by scripts/record-fixtures.
pub fn fixtures_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every recorded set, in name order.
pub fn fixture_sets() -> Vec<PathBuf> {
    let mut sets: Vec<PathBuf> = std::fs::read_dir(fixtures_root())
        .expect("tests/fixtures is in the repository")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("attrs.json").is_file())
        .collect();
    sets.sort();
    assert!(!sets.is_empty(), "no recorded set under tests/fixtures");
    sets
}

thread_local! {
    static CURRENT: std::cell::RefCell<Option<PathBuf>> = const { std::cell::RefCell::new(None) };
}

/// Runs `check` once per recorded set; inside it, [`fixture`] reads from
/// that set. A failure names the set.
pub fn each_set(check: impl Fn()) {
    for set in fixture_sets() {
        in_set(&set, &check);
    }
}

/// The sets recorded with flux-accounting's priority plugin, by
/// scripts/record-accounting-fixtures (`flux-accounting/<version>-<scheduler>`).
pub fn accounting_sets() -> Vec<PathBuf> {
    let mut sets: Vec<PathBuf> = std::fs::read_dir(fixtures_root().join("flux-accounting"))
        .expect("tests/fixtures/flux-accounting is in the repository")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("job-manager.jobtap-query.json").is_file())
        .collect();
    sets.sort();
    assert!(!sets.is_empty(), "no recorded flux-accounting set");
    sets
}

/// Runs `check` once per flux-accounting set, as [`each_set`] does.
pub fn each_accounting_set(check: impl Fn()) {
    for set in accounting_sets() {
        in_set(&set, &check);
    }
}

fn in_set(set: &std::path::Path, check: &impl Fn()) {
    CURRENT.with(|c| *c.borrow_mut() = Some(set.to_path_buf()));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(check));
    CURRENT.with(|c| *c.borrow_mut() = None);
    if let Err(e) = outcome {
        let why = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!("with the recorded set {}: {why}", set.display());
    }
}

/// The set [`each_set`] is running, by directory name.
pub fn set_name() -> String {
    fixture_dir()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub fn fixture_dir() -> PathBuf {
    CURRENT
        .with(|c| c.borrow().clone())
        .expect("fixture() is called inside common::each_set")
}

pub fn fixture(name: &str) -> String {
    let path = fixture_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Samples of an exposition, keyed by `name{label="value",...}` exactly as
/// written (labels in the order rendered).
pub fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (key, value) = l.rsplit_once(' ').expect("sample line has a value");
            (key.to_string(), value.parse::<f64>().unwrap_or(f64::NAN))
        })
        .collect()
}

pub fn value(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    *samples.get(key).unwrap_or_else(|| {
        panic!(
            "no sample {key}; have: {:#?}",
            samples.keys().collect::<Vec<_>>()
        )
    })
}

/// `flux jobs --stats-only` output: running, completed, failed, pending,
/// inactive purged.
pub fn parse_stats_line(line: &str) -> [u64; 5] {
    let n: Vec<u64> = line
        .split(',')
        .map(|part| {
            part.split_whitespace()
                .next()
                .and_then(|w| w.parse().ok())
                .expect("count")
        })
        .collect();
    [n[0], n[1], n[2], n[3], n[4]]
}

/// Everything every collector would hold, built from the recorded set's
/// payloads: what the module renders on that instance. The exporter's own
/// status and the process samples are fixed, so the result is the same on
/// every run.
pub fn recorded_state() -> flux_prometheus::state::State {
    use flux_prometheus::collectors::broker::ProcessSample;
    use flux_prometheus::model::broker::InstanceInfo;
    use flux_prometheus::model::jobflow::{JobFlow, DEFAULT_RUN_BUCKETS, DEFAULT_WAIT_BUCKETS};
    use flux_prometheus::model::{jobs, queues, resources};
    use flux_prometheus::state::State;

    let config = fixture("config.get.json");
    let mut state = State::with_collectors(&[
        "jobs",
        "resources",
        "queues",
        "broker",
        "jobflow",
        "users",
        "scheduler",
        "internals",
        "nodes",
        "jobmap",
    ]);
    state.set(
        flux_prometheus::collectors::jobs::SECTION,
        jobs::parse(&fixture("job-list.job-stats.json")).expect("fixture parses"),
    );
    let module_stats: serde_json::Value =
        serde_json::from_str(&fixture("module.stats-get.json")).expect("parses");
    let stats_of = |module: &str| module_stats[module].to_string();
    let mut summary = resources::summarize(
        &fixture("resource.sched-status.json"),
        &fixture("resource.status.json"),
        &config,
    )
    .expect("fixtures parse");
    summary.health.housekeeping =
        flux_prometheus::collectors::internals::parse_job_manager(&stats_of("job-manager"))
            .expect("parses")
            .housekeeping_nodes;
    // The nodes the recorded journal's events name, counted as the feed
    // counts them, as of its last event.
    let journal: Vec<serde_json::Value> =
        serde_json::from_str(&fixture("resource.journal.json")).expect("parses");
    let mut node_events = flux_prometheus::reactor::resource_status::NodeEvents::default();
    let mut queue_node_events: Vec<(
        String,
        flux_prometheus::reactor::resource_status::NodeEvents,
    )> = summary
        .queue_ranks
        .iter()
        .map(|(q, _)| (q.clone(), Default::default()))
        .collect();
    let mut at = 0.0f64;
    for response in &journal {
        if let Ok(flux_prometheus::reactor::resource_status::JournalResponse::Events {
            nodes,
            named,
            ..
        }) = flux_prometheus::reactor::resource_status::journal_response(&response.to_string())
        {
            node_events.add(nodes);
            for ((_, ranks), (_, sum)) in summary.queue_ranks.iter().zip(&mut queue_node_events) {
                let mut counts = [0u64; 6];
                for (slot, named) in &named {
                    counts[*slot] += named.iter().filter(|r| ranks.contains(*r)).count() as u64;
                }
                sum.add(flux_prometheus::reactor::resource_status::NodeEvents::from_counts(counts));
            }
        }
        for e in response["events"].as_array().into_iter().flatten() {
            at = at.max(e["timestamp"].as_f64().unwrap_or(0.0));
        }
    }
    state.set(
        flux_prometheus::collectors::resources::SECTION,
        flux_prometheus::collectors::resources::ResourcesState {
            summary,
            node_events,
            queue_node_events,
            at,
        },
    );
    let names = queues::parse_list(&fixture("job-manager.queue-list.json")).expect("parses");
    let statuses: serde_json::Value =
        serde_json::from_str(&fixture("job-manager.queue-status.json")).expect("parses");
    state.set(
        flux_prometheus::collectors::queues::SECTION,
        names
            .iter()
            .map(|n| queues::parse_status(Some(n), &statuses[n].to_string()).expect("parses"))
            .collect(),
    );
    let attrs: serde_json::Value = serde_json::from_str(&fixture("attrs.json")).expect("parses");
    let attr = |name: &str| attrs[name].as_str().map(str::to_string);
    let online: serde_json::Value =
        serde_json::from_str(&fixture("groups.get.broker.online.json")).expect("parses");
    let overlay: serde_json::Value =
        serde_json::from_str(&fixture("overlay.health.json")).expect("parses");
    let instance = InstanceInfo {
        version: attr("version").unwrap_or_default(),
        level: attr("instance-level").unwrap_or_default(),
        jobid: attr("jobid"),
        size: attr("size").and_then(|s| s.parse().ok()).unwrap_or(0),
        start_time: attr("broker.starttime").and_then(|s| s.parse().ok()),
        online: online["members"]
            .as_str()
            .and_then(|m| flux_prometheus::model::idset::IdSet::parse(m).ok())
            .map(|m| m.count()),
        overlay_status: overlay["status"].as_str().map(str::to_string),
    };
    let process = vec![ProcessSample {
        doc: flux_prometheus::collectors::broker::process_family("process_cpu_seconds_total")
            .expect("a declared process family"),
        value: 1.5,
    }];
    state.set(
        flux_prometheus::collectors::broker::SECTION,
        flux_prometheus::collectors::broker::BrokerState { instance, process },
    );
    let mut flow = JobFlow::new(0.0, DEFAULT_WAIT_BUCKETS, DEFAULT_RUN_BUCKETS);
    flow.know_queues(&flux_prometheus::model::resources::queue_names(&config));
    flow.begin_backlog();
    let journal: Vec<serde_json::Value> =
        serde_json::from_str(&fixture("job-manager.events-journal.json")).expect("parses");
    let mut roster = flux_prometheus::model::roster::Roster::default();
    roster.begin_backlog();
    for r in &journal {
        flow.apply_tracking(&r.to_string(), None, None, Some(&mut roster))
            .expect("parses");
    }
    roster.end_backlog();
    state.set(
        flux_prometheus::collectors::jobflow::SECTION,
        flow.summary(),
    );
    let (by_uid, by_project) = roster.usage().expect("read to the present");
    let name = |uid: u32| {
        if uid == 0 {
            "root".to_string()
        } else {
            uid.to_string()
        }
    };
    state.set(
        flux_prometheus::collectors::users::SECTION,
        flux_prometheus::collectors::users::count(
            by_uid,
            by_project,
            &name,
            100,
            &mut Default::default(),
        ),
    );
    state.set(
        flux_prometheus::collectors::jobmap::SECTION,
        recorded_jobmap(&mut roster),
    );
    state.set(
        flux_prometheus::collectors::nodes::SECTION,
        std::sync::Arc::new(recorded_nodes()),
    );
    state.set(
        flux_prometheus::collectors::scheduler::SECTION,
        recorded_scheduler(),
    );
    state.set(
        flux_prometheus::collectors::internals::SECTION,
        recorded_internals(),
    );
    state
}

/// The job map of the recorded set's running jobs, owned by root, as the
/// jobmap collector makes it from the roster's changes.
pub fn recorded_jobmap(
    roster: &mut flux_prometheus::model::roster::Roster,
) -> std::sync::Arc<flux_prometheus::collectors::jobmap::JobMap> {
    let changes = roster.take_changes();
    let (_, jobs) = roster.current().expect("read to the present");
    let mut mapper = flux_prometheus::collectors::jobmap::Mapper::default();
    mapper.update(jobs, &changes, &|_| "root".to_string());
    std::sync::Arc::new(mapper.map())
}

/// The per-node rows of the recorded set.
pub fn recorded_nodes() -> flux_prometheus::model::nodes::NodesView {
    let answer: serde_json::Value =
        serde_json::from_str(&fixture("job-manager.resource-status.json")).expect("parses");
    let allocated = flux_prometheus::model::resources::ResourceSet::from_rv1_json(Some(
        &serde_json::value::RawValue::from_string(answer["allocated"].to_string()).expect("json"),
    ))
    .expect("parses");
    let stats: serde_json::Value =
        serde_json::from_str(&fixture("module.stats-get.json")).expect("parses");
    let housekeeping = stats["job-manager"]["housekeeping"]["running"]
        .as_object()
        .map(|r| flux_prometheus::collectors::internals::housekeeping_ranks(r).expect("parses"))
        .unwrap_or_default();
    let mut view = flux_prometheus::model::nodes::rows(
        &fixture("resource.status.json"),
        &allocated,
        &housekeeping,
        &mut Vec::new(),
    )
    .expect("parses");
    view.events = recorded_node_events();
    view
}

/// The resource journal's events by rank, as the feed counts them.
pub fn recorded_node_events() -> Vec<(u32, [u64; 6])> {
    let journal: Vec<serde_json::Value> =
        serde_json::from_str(&fixture("resource.journal.json")).expect("parses");
    let mut by_rank: BTreeMap<u32, [u64; 6]> = BTreeMap::new();
    for response in &journal {
        if let Ok(flux_prometheus::reactor::resource_status::JournalResponse::Events {
            named,
            ..
        }) = flux_prometheus::reactor::resource_status::journal_response(&response.to_string())
        {
            for (slot, ranks) in &named {
                for rank in ranks.iter() {
                    by_rank.entry(rank).or_insert([0; 6])[*slot] += 1;
                }
            }
        }
    }
    by_rank.into_iter().collect()
}

/// What the scheduler collector makes of the recorded set.
pub fn recorded_scheduler() -> flux_prometheus::collectors::scheduler::Scheduler {
    use flux_prometheus::collectors::scheduler::{self, Monotonic, Scheduler};
    let module_stats: serde_json::Value =
        serde_json::from_str(&fixture("module.stats-get.json")).expect("parses");
    let module = scheduler::sched_module(&fixture("module.list.json"))
        .expect("parses")
        .expect("a scheduler is loaded");
    let stats = module_stats[&module].to_string();
    let mut counters = Monotonic::default();
    let mut found = Scheduler {
        module: Some(module.clone()),
        ..Default::default()
    };
    if module == "sched-fluxion-qmanager" {
        found.queues = scheduler::parse_qmanager(&stats, &mut counters).expect("parses");
        found.resource = Some(
            scheduler::parse_fluxion_resource(
                &module_stats["sched-fluxion-resource"].to_string(),
                &mut counters,
            )
            .expect("parses"),
        );
    } else {
        found.passes = scheduler::parse_passes(&stats, &mut counters).expect("parses");
    }
    found
}

/// What the internals collector makes of the recorded set: every module's
/// stats-get and rusage as a round would have them.
pub fn recorded_internals() -> flux_prometheus::collectors::internals::Internals {
    use flux::Error;
    use flux_prometheus::collectors::internals;
    let module_stats: serde_json::Value =
        serde_json::from_str(&fixture("module.stats-get.json")).expect("parses");
    let rusage: serde_json::Value =
        serde_json::from_str(&fixture("module.rusage.json")).expect("parses");
    let modules = internals::parse_module_list(&fixture("module.list.json")).expect("parses");
    let mut answers: Vec<Result<String, Error>> =
        ["content", "content-sqlite", "kvs", "job-manager"]
            .iter()
            .map(|m| Ok(module_stats[m].to_string()))
            .collect();
    for m in &modules {
        answers.push(match rusage.get(&m.name) {
            Some(r) if r.is_object() => Ok(r.to_string()),
            _ => Err(Error::new(libc::EPROTO, "no rusage")),
        });
    }
    let (found, errors) = internals::combine(modules, &answers);
    assert_eq!(errors, Vec::<String>::new());
    found
}
