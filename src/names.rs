//! User names for uids, looked up away from the reactor thread.
//!
//! `getpwuid` can hang for minutes when LDAP or sssd is down, and a hung
//! call cannot be interrupted: a thread stuck in it could neither be joined
//! nor outlive the module (the broker unloads the module's code). So names
//! are asked of `getent passwd UID...` in a child process, from a thread of
//! their own, with a deadline after which the child is killed. The reactor
//! thread only reads the cache: it never waits. A uid with no name yet is
//! shown as the number; its name takes over once it is known.
//!
//! Nothing here knows Flux.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long one `getent` may take before it is killed.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a name is trusted before it is asked again (a rename).
const NAME_LIFETIME: Duration = Duration::from_secs(3600);
/// How long a uid without a name waits before it is asked again: the
/// directory may be back, or the user added.
const RETRY_AFTER: Duration = Duration::from_secs(60);
/// Uids asked in one `getent`: its output (a line each) must fit in a pipe
/// buffer, since it is read once the child has exited.
const BATCH: usize = 64;
/// How often the thread looks at a running child, and at the stop flag.
const TICK: Duration = Duration::from_millis(5);

#[derive(Debug, Clone)]
enum Entry {
    Known { name: Arc<str>, until: Instant },
    Unknown { until: Instant },
}

#[derive(Debug, Default)]
struct Table {
    entries: HashMap<u32, Entry>,
    /// Uids asked for and not looked up yet.
    wanted: BTreeSet<u32>,
    /// Why the last lookup failed, for the log; taken once.
    failure: Option<String>,
    /// The last failure said, so that a directory that stays down is said
    /// once, not at every retry.
    said: Option<String>,
}

#[derive(Debug, Default)]
struct Inner {
    table: Mutex<Table>,
    wake: Condvar,
    stop: AtomicBool,
    /// Bumped whenever a lookup brings an answer.
    version: AtomicU64,
}

/// The lookups' side that readers hold: cheap to clone, never blocks.
#[derive(Debug, Clone, Default)]
pub struct Names(Arc<Inner>);

impl Names {
    /// The name of `uid` if known; otherwise None, and it is looked up.
    pub fn get(&self, uid: u32) -> Option<Arc<str>> {
        let mut table = self.0.table.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let (name, stale) = match table.entries.get(&uid) {
            Some(Entry::Known { name, until }) => (Some(Arc::clone(name)), *until <= now),
            Some(Entry::Unknown { until }) => (None, *until <= now),
            None => (None, true),
        };
        if stale && table.wanted.insert(uid) {
            self.0.wake.notify_one();
        }
        name
    }

    /// The name of `uid`, or the number while it has none.
    pub fn label(&self, uid: u32) -> String {
        self.get(uid)
            .map_or_else(|| uid.to_string(), |name| name.to_string())
    }

    /// Changes each time a lookup brings answers: what was rendered with
    /// numbers may now have names.
    pub fn version(&self) -> u64 {
        self.0.version.load(Ordering::Acquire)
    }

    /// Whether `uid` is being looked up, or waits to be.
    pub fn pending(&self, uid: u32) -> bool {
        let table = self.0.table.lock().unwrap_or_else(PoisonError::into_inner);
        table.wanted.contains(&uid) || !table.entries.contains_key(&uid)
    }

    /// Why the last lookup failed, once.
    pub fn take_failure(&self) -> Option<String> {
        self.0
            .table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .failure
            .take()
    }
}

/// The thread that looks names up. Dropping it (or [`shutdown`]) stops
/// and joins it within a few milliseconds, killing a `getent` under way.
///
/// [`shutdown`]: NameService::shutdown
pub struct NameService {
    names: Names,
    thread: Option<JoinHandle<()>>,
}

impl NameService {
    pub fn start() -> std::io::Result<NameService> {
        NameService::with_command(&["getent", "passwd"])
    }

    /// With another lookup command, which is given the uids as arguments
    /// and prints passwd lines (for tests).
    pub fn with_command(command: &[&str]) -> std::io::Result<NameService> {
        let names = Names::default();
        let inner = Arc::clone(&names.0);
        let command: Vec<String> = command.iter().map(|s| s.to_string()).collect();
        let thread = std::thread::Builder::new()
            .name("flux-prom-names".into())
            .spawn(move || run(&inner, &command))?;
        Ok(NameService {
            names,
            thread: Some(thread),
        })
    }

    pub fn names(&self) -> Names {
        self.names.clone()
    }

    pub fn shutdown(&mut self) {
        self.names.0.stop.store(true, Ordering::Release);
        self.names.0.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for NameService {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run(inner: &Inner, command: &[String]) {
    loop {
        let batch: Vec<u32> = {
            let mut table = inner.table.lock().unwrap_or_else(PoisonError::into_inner);
            while table.wanted.is_empty() && !inner.stop.load(Ordering::Acquire) {
                table = inner
                    .wake
                    .wait(table)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if inner.stop.load(Ordering::Acquire) {
                return;
            }
            let batch: Vec<u32> = table.wanted.iter().take(BATCH).copied().collect();
            for uid in &batch {
                table.wanted.remove(uid);
            }
            batch
        };
        let outcome = lookup(command, &batch, &inner.stop);
        let now = Instant::now();
        let mut table = inner.table.lock().unwrap_or_else(PoisonError::into_inner);
        match outcome {
            Ok(found) => {
                table.said = None;
                for uid in batch {
                    let entry = match found.get(&uid) {
                        Some(name) => Entry::Known {
                            name: Arc::from(name.as_str()),
                            until: now + NAME_LIFETIME,
                        },
                        None => Entry::Unknown {
                            until: now + RETRY_AFTER,
                        },
                    };
                    table.entries.insert(uid, entry);
                }
            }
            Err(why) => {
                // Said once in the log until it changes (`said`).
                let why = why.to_string();
                for uid in batch {
                    // A name known before is kept until the directory is
                    // back; it is asked again later.
                    let entry = table.entries.entry(uid).or_insert(Entry::Unknown {
                        until: now + RETRY_AFTER,
                    });
                    match entry {
                        Entry::Known { until, .. } | Entry::Unknown { until } => {
                            *until = now + RETRY_AFTER;
                        }
                    }
                }
                if table.said.as_ref() != Some(&why) {
                    table.said = Some(why.clone());
                    table.failure = Some(why);
                }
            }
        }
        drop(table);
        inner.version.fetch_add(1, Ordering::AcqRel);
    }
}

/// User names by uid, as a lookup found them.
type NamesByUid = HashMap<u32, String>;

/// Why a lookup of user names gave none.
#[derive(Debug, thiserror::Error)]
enum LookupError {
    #[error("no lookup command")]
    NoCommand,
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{program}: {source}")]
    Wait {
        program: String,
        source: std::io::Error,
    },
    #[error("stopped")]
    Stopped,
    #[error("{command} did not answer within {} s (is the user directory, LDAP or sssd, down?); uids are shown as numbers meanwhile", LOOKUP_TIMEOUT.as_secs())]
    Timeout { command: String },
}

/// Runs the lookup command for `uids`: the names it printed, by uid.
fn lookup(command: &[String], uids: &[u32], stop: &AtomicBool) -> Result<NamesByUid, LookupError> {
    let (program, args) = command.split_first().ok_or(LookupError::NoCommand)?;
    let mut child = Command::new(program)
        .args(args)
        .args(uids.iter().map(u32::to_string))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| LookupError::Spawn {
            program: program.clone(),
            source,
        })?;
    let deadline = Instant::now() + LOOKUP_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            // The broker's reactor may reap children of the process (libev
            // waits for any child): the child is gone all the same.
            Err(e) if e.raw_os_error() == Some(libc::ECHILD) => break,
            Err(e) => {
                kill(&mut child);
                return Err(LookupError::Wait {
                    program: program.clone(),
                    source: e,
                });
            }
            Ok(None) if stop.load(Ordering::Acquire) => {
                kill(&mut child);
                return Err(LookupError::Stopped);
            }
            Ok(None) if Instant::now() >= deadline => {
                kill(&mut child);
                return Err(LookupError::Timeout {
                    command: format!("{program} {}", args.join(" ")),
                });
            }
            Ok(None) => std::thread::sleep(TICK),
        }
    }
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    Ok(parse_passwd(&out))
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Names by uid from passwd lines (`name:x:uid:gid:...`).
pub fn parse_passwd(text: &str) -> HashMap<u32, String> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let uid = fields.nth(1)?.parse().ok()?;
            (!name.is_empty()).then(|| (uid, name.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_for(names: &Names, uid: u32) -> Option<Arc<str>> {
        let until = Instant::now() + Duration::from_secs(10);
        while names.pending(uid) && Instant::now() < until {
            names.get(uid);
            std::thread::sleep(Duration::from_millis(10));
        }
        names.get(uid)
    }

    #[test]
    fn passwd_lines_give_names_by_uid() {
        let found = parse_passwd(
            "root:x:0:0:root:/root:/bin/bash\nalice:*:1001:100::/h:/bin/sh\nbad line\n",
        );
        assert_eq!(found[&0], "root");
        assert_eq!(found[&1001], "alice");
        assert_eq!(found.len(), 2);
    }

    #[test]
    fn a_name_is_a_number_until_looked_up_then_the_name() {
        let service = NameService::start().unwrap();
        let names = service.names();
        assert_eq!(names.label(0), "0");
        assert_eq!(wait_for(&names, 0).as_deref(), Some("root"));
        assert_eq!(names.label(0), "root");
        // No such user: the number stays.
        assert_eq!(wait_for(&names, 3_999_999_999), None);
        assert_eq!(names.label(3_999_999_999), "3999999999");
    }

    #[test]
    fn a_hung_lookup_is_killed_and_never_blocks_a_reader_or_the_shutdown() {
        // A "directory" that never answers.
        let mut service = NameService::with_command(&["sleep", "3600"]).unwrap();
        let names = service.names();
        assert_eq!(names.get(1001), None);
        std::thread::sleep(LOOKUP_TIMEOUT + Duration::from_millis(500));
        let why = names.take_failure().expect("the timeout is reported");
        assert!(why.contains("did not answer within 2 s"), "{why}");
        assert_eq!(names.label(1001), "1001");
        names.get(1002);
        let t = Instant::now();
        service.shutdown();
        // Not the hour the child would take.
        assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    }
}
