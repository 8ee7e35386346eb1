//! Cgroups of the module's own making, for job shells that have none
//! (no sdexec): with `job-cgroups = true` the module on each rank makes one
//! for each job it samples, `prometheus-shell-<rank>-<jobid>`, beside
//! nothing else under its broker's own cgroup (v2, and the cgroup v1
//! memory hierarchy of a hybrid system), and moves the job's shell and
//! tasks into it. A look at the job then reads two files, however many
//! processes it runs.
//!
//! A cgroup v2 may have child cgroups while it holds processes (the broker
//! here); only enabling controllers for them needs it empty. `cpu.stat`
//! counts CPU time in every cgroup; memory is counted where the memory
//! controller is on for the broker's children, or in the v1 memory
//! hierarchy. Moving a process needs write access to the broker's
//! `cgroup.procs` (root, or the `Delegate=yes` of flux.service); the v1
//! memory hierarchy also needs root to move another user's processes.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::cgroup::{cgroup_path, leaf_is, Mounts, ShellCgroup};
use crate::proc::{self, Stat};

const PREFIX: &str = "prometheus-shell-";

/// The name of job `id`'s cgroup on broker rank `rank`.
pub fn name(rank: u32, id: u64) -> String {
    format!("{PREFIX}{rank}-{id}")
}

/// The rank and job of a cgroup `name` of this module's making.
pub fn parse_name(name: &str) -> Option<(u32, u64)> {
    let (rank, id) = name.strip_prefix(PREFIX)?.split_once('-')?;
    Some((rank.parse().ok()?, id.parse().ok()?))
}

/// Why a job could not be given a cgroup of its own.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error("no cgroup v2 is mounted, or /proc/self/cgroup does not name this process's")]
    NoUnified,
    #[error("cannot make cgroup {path}: {source}")]
    Make { path: PathBuf, source: io::Error },
    #[error("cannot move process {pid} into cgroup {path}: {source}")]
    Move {
        pid: i32,
        path: PathBuf,
        source: io::Error,
    },
}

/// Where the jobs' cgroups are made: the broker's own cgroup v2, and its
/// cgroup in the v1 memory hierarchy where the system is hybrid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parents {
    pub v2: PathBuf,
    pub memory_v1: Option<PathBuf>,
}

/// A job's cgroup as made, and the CPU time its processes had used before
/// they were moved in (which the cgroup does not count).
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    pub cgroup: ShellCgroup,
    pub cpu_ticks_before: u64,
}

fn write_pid(dir: &Path, pid: i32) -> Result<(), PlaceError> {
    std::fs::write(dir.join("cgroup.procs"), format!("{pid}\n")).map_err(|source| {
        PlaceError::Move {
            pid,
            path: dir.to_path_buf(),
            source,
        }
    })
}

/// Moves processes into a job's cgroup, one by one, and keeps what it did.
struct Mover {
    v2: PathBuf,
    memory_v1: Option<PathBuf>,
    moved: Vec<i32>,
    failed: Option<PlaceError>,
}

impl Mover {
    /// Moves `pid`; false when it was not moved (it had gone, or a move
    /// failed before or now, which is kept).
    fn take(&mut self, pid: i32) -> bool {
        if self.failed.is_some() {
            return false;
        }
        match write_pid(&self.v2, pid) {
            Ok(()) => self.moved.push(pid),
            Err(PlaceError::Move { source, .. }) if source.raw_os_error() == Some(libc::ESRCH) => {
                return false;
            }
            Err(e) => {
                self.failed = Some(e);
                return false;
            }
        }
        if let Some(dir) = &self.memory_v1 {
            if write_pid(dir, pid).is_err() {
                self.memory_v1 = None;
            }
        }
        true
    }
}

impl Parents {
    /// The parents of this process's (the broker's) cgroups, from the text
    /// of its `/proc/self/cgroup`.
    pub fn from_text(mounts: &Mounts, proc_self_cgroup: &str) -> Result<Parents, PlaceError> {
        let v2 = cgroup_path(proc_self_cgroup, "")
            .and_then(|path| mounts.unified.as_ref()?.dir_of(path))
            .ok_or(PlaceError::NoUnified)?;
        let memory_v1 = cgroup_path(proc_self_cgroup, "memory")
            .and_then(|path| mounts.memory_v1.as_ref()?.dir_of(path));
        Ok(Parents { v2, memory_v1 })
    }

    /// The parents of this process's cgroups.
    pub fn of_this_process(mounts: &Mounts) -> Result<Parents, PlaceError> {
        let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        Parents::from_text(mounts, &text)
    }

    /// Makes job `id`'s cgroup (one left by an earlier module is taken as
    /// it is), and moves into it the job shell `shell` where given, then
    /// the process trees under `tasks`: each process before its children
    /// are read, so that none it forks meanwhile is left behind. Nothing
    /// is left made or moved when it fails.
    pub fn place(
        &self,
        rank: u32,
        id: u64,
        shell: Option<i32>,
        tasks: &[i32],
        proc_dir: &Path,
    ) -> Result<Placed, PlaceError> {
        let leaf = name(rank, id);
        let v2 = self.v2.join(&leaf);
        make(&v2)?;
        // The v1 memory hierarchy is only used where cgroup v2 counts no
        // memory, and only where every process could be moved there too.
        let memory_v1 = match &self.memory_v1 {
            Some(parent) if !v2.join("memory.current").is_file() => {
                let dir = parent.join(&leaf);
                make(&dir).ok().map(|()| dir)
            }
            _ => None,
        };
        let wanted_v1 = memory_v1.is_some();
        let mut mover = Mover {
            v2: v2.clone(),
            memory_v1,
            moved: Vec::new(),
            failed: None,
        };
        if let Some(shell) = shell {
            mover.take(shell);
        }
        let mut ticks = 0;
        let mut seen = std::collections::HashSet::new();
        let mut visit = |stat: &Stat| {
            if seen.insert(stat.pid) && mover.take(stat.pid) {
                ticks += stat.utime + stat.stime + stat.cutime + stat.cstime;
            }
        };
        if proc::walk_each(tasks, proc_dir, &mut visit).is_none() {
            // No children files: the processes of the node, parents before
            // children, give the same trees.
            let all = proc::scan(proc_dir);
            let mut found = proc::trees(tasks, &all);
            let parents: HashMap<i32, i32> = all.iter().map(|p| (p.pid, p.ppid)).collect();
            found.sort_by_cached_key(|s| depth(s.ppid, &parents));
            for stat in found {
                visit(stat);
            }
        }
        let Mover {
            moved,
            failed,
            memory_v1,
            ..
        } = mover;
        if let Some(e) = failed {
            self.undo(&leaf, &moved);
            return Err(e);
        }
        if wanted_v1 && memory_v1.is_none() {
            if let Some(parent) = &self.memory_v1 {
                // Some process could not be moved there: all back to the
                // parent, and memory is counted from the processes.
                for &pid in &moved {
                    let _ = write_pid(parent, pid);
                }
                let _ = std::fs::remove_dir(parent.join(&leaf));
            }
        }
        Ok(Placed {
            cgroup: ShellCgroup { dir: v2, memory_v1 },
            cpu_ticks_before: ticks,
        })
    }

    /// Moves `moved` back to the parents and removes job cgroup `leaf`.
    fn undo(&self, leaf: &str, moved: &[i32]) {
        for &pid in moved {
            let _ = write_pid(&self.v2, pid);
            if let Some(parent) = &self.memory_v1 {
                let _ = write_pid(parent, pid);
            }
        }
        let _ = std::fs::remove_dir(self.v2.join(leaf));
        if let Some(parent) = &self.memory_v1 {
            let _ = std::fs::remove_dir(parent.join(leaf));
        }
    }

    /// Removes the cgroups of rank `rank`'s jobs that hold no process any
    /// more, but for those `keep` names: the ones an earlier module left.
    /// Returns how many of those stay, their jobs still running.
    pub fn sweep(&self, rank: u32, keep: impl Fn(u64) -> bool) -> usize {
        let mut left = 0;
        for parent in std::iter::once(&self.v2).chain(self.memory_v1.as_ref()) {
            let Ok(entries) = std::fs::read_dir(parent) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some((r, id)) = name.to_str().and_then(parse_name) else {
                    continue;
                };
                // A cgroup that holds processes cannot be removed (EBUSY).
                if r == rank && !keep(id) && std::fs::remove_dir(entry.path()).is_err() {
                    left += 1;
                }
            }
        }
        left
    }
}

/// How deep a process whose parent is `ppid` lies in its tree, by the
/// parents of the node's processes.
fn depth(mut ppid: i32, parents: &HashMap<i32, i32>) -> usize {
    let mut depth = 0;
    while let Some(&next) = parents.get(&ppid) {
        depth += 1;
        ppid = next;
        // A loop (a pid given again while the processes were read).
        if depth > parents.len() {
            break;
        }
    }
    depth
}

fn make(dir: &Path) -> Result<(), PlaceError> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(PlaceError::Make {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// Removes a job's cgroup once its processes have all gone. One that still
/// holds some stays.
pub fn remove(cgroup: &ShellCgroup) {
    let _ = std::fs::remove_dir(&cgroup.dir);
    if let Some(v1) = &cgroup.memory_v1 {
        let _ = std::fs::remove_dir(v1);
    }
}

/// Whether the text of `/proc/PID/cgroup` puts the process in a job cgroup
/// of this module's making: the cheap test before the mounts are read.
pub fn in_one(proc_pid_cgroup: &str) -> bool {
    leaf_is(proc_pid_cgroup, |leaf| parse_name(leaf).is_some())
}

/// The job cgroup of this module's making that the text of
/// `/proc/PID/cgroup` puts the process in, if any: the job shell's own
/// look at where it runs at its end.
pub fn placed_in(mounts: &Mounts, proc_pid_cgroup: &str) -> Option<ShellCgroup> {
    mounts.leaf_cgroup(proc_pid_cgroup, |leaf| parse_name(leaf).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::Mount;

    fn hybrid() -> Mounts {
        Mounts {
            unified: Some(Mount {
                dir: "/sys/fs/cgroup/unified".into(),
                root: "/".into(),
            }),
            memory_v1: Some(Mount {
                dir: "/sys/fs/cgroup/memory".into(),
                root: "/".into(),
            }),
        }
    }

    #[test]
    fn a_process_lies_as_deep_as_its_ancestors_are_many() {
        // 1 <- 10 <- 11 <- 12, and 10 <- 13.
        let parents: HashMap<i32, i32> = [(1, 0), (10, 1), (11, 10), (12, 11), (13, 10)]
            .into_iter()
            .collect();
        assert_eq!(depth(0, &parents), 0);
        assert_eq!(depth(1, &parents), 1);
        assert_eq!(depth(11, &parents), 3);
        assert_eq!(depth(10, &parents), 2);
        // Pids given again while the processes were read can make a loop.
        let looped: HashMap<i32, i32> = [(5, 6), (6, 5)].into_iter().collect();
        assert_eq!(depth(5, &looped), 3);
    }

    #[test]
    fn names_read_back() {
        assert_eq!(parse_name(&name(3, 123_456_789)), Some((3, 123_456_789)));
        assert_eq!(parse_name("prometheus-shell-x-1"), None);
        assert_eq!(parse_name("shell-0-f2.service"), None);
        assert_eq!(parse_name("prometheus-shell-1"), None);
    }

    #[test]
    fn the_parents_are_the_brokers_own_cgroups() {
        // As Linux 6.18 writes /proc/self/cgroup on a hybrid system.
        let text = "4:memory:/system.slice/flux.service\n1:cpu:/\n0::/system.slice/flux.service\n";
        assert_eq!(
            Parents::from_text(&hybrid(), text).unwrap(),
            Parents {
                v2: "/sys/fs/cgroup/unified/system.slice/flux.service".into(),
                memory_v1: Some("/sys/fs/cgroup/memory/system.slice/flux.service".into()),
            }
        );
        let unified_only = Mounts {
            memory_v1: None,
            ..hybrid()
        };
        assert_eq!(
            Parents::from_text(&unified_only, "0::/\n")
                .unwrap()
                .memory_v1,
            None
        );
        assert!(matches!(
            Parents::from_text(&hybrid(), "4:memory:/\n"),
            Err(PlaceError::NoUnified)
        ));
    }

    #[test]
    fn a_shell_finds_the_cgroup_it_was_moved_into() {
        let text = "4:memory:/x/prometheus-shell-0-77\n0::/x/prometheus-shell-0-77\n";
        let found = placed_in(&hybrid(), text).unwrap();
        assert_eq!(
            found.dir,
            PathBuf::from("/sys/fs/cgroup/unified/x/prometheus-shell-0-77")
        );
        assert!(in_one(text));
        // Not a cgroup of this module's making.
        assert_eq!(
            placed_in(&hybrid(), "0::/system.slice/flux.service\n"),
            None
        );
        assert!(!in_one("0::/system.slice/flux.service\n"));
    }

    #[test]
    fn a_process_that_cannot_be_moved_is_said_and_nothing_stays_moved() {
        // A directory where cgroup.procs should be: writing it fails.
        let top = std::env::temp_dir().join(format!("jobcgroup-test-{}", std::process::id()));
        let procs = top.join(name(0, 5)).join("cgroup.procs");
        std::fs::create_dir_all(&procs).unwrap();
        let parents = Parents {
            v2: top.clone(),
            memory_v1: None,
        };
        let me = std::process::id() as i32;
        let e = parents
            .place(0, 5, None, &[me], Path::new("/proc"))
            .unwrap_err();
        assert!(
            e.to_string().starts_with(&format!(
                "cannot move process {me} into cgroup {}:",
                top.join(name(0, 5)).display()
            )),
            "{e}"
        );
        std::fs::remove_dir_all(&top).unwrap();
    }

    #[test]
    fn a_cgroup_that_cannot_be_made_is_said_by_path() {
        let parents = Parents {
            v2: "/nonexistent/cgroup".into(),
            memory_v1: None,
        };
        let e = parents
            .place(0, 1, None, &[std::process::id() as i32], Path::new("/proc"))
            .unwrap_err();
        assert_eq!(
            e.to_string().split(':').next(),
            Some("cannot make cgroup /nonexistent/cgroup/prometheus-shell-0-1")
        );
    }
}
