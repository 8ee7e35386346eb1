//! Processes as `/proc` shows them: each one's parent, CPU time and
//! resident memory (`/proc/PID/stat`), and the trees under a job's tasks.

use std::collections::{HashMap, HashSet};
use std::path::Path;

/// What `/proc/PID/stat` says of one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    pub ppid: i32,
    /// User and system CPU time, in clock ticks.
    pub utime: u64,
    pub stime: u64,
    /// The same of its children that have ended and been waited for.
    pub cutime: u64,
    pub cstime: u64,
    /// Its threads (each may have children of its own).
    pub threads: u64,
    /// Resident set, in pages.
    pub rss: u64,
}

/// A `/proc/PID/stat` line that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("/proc/PID/stat: cannot read {0:?}")]
pub struct BadStat(pub String);

/// Parses one `/proc/PID/stat` line. The command name, in parentheses, may
/// hold spaces and parentheses itself, so the fields are counted from the
/// last `)`.
pub fn parse_stat(line: &str) -> Result<Stat, BadStat> {
    let bad = || BadStat(line.chars().take(80).collect());
    let (head, tail) = line.rsplit_once(')').ok_or_else(bad)?;
    let pid = head
        .split_once('(')
        .and_then(|(pid, _)| pid.trim().parse().ok())
        .ok_or_else(bad)?;
    // After the name: state(3) ppid(4) ... utime(14) stime(15) ... rss(24).
    let fields: Vec<&str> = tail.split_whitespace().collect();
    let field = |n: usize| -> Result<&str, BadStat> { fields.get(n - 3).copied().ok_or_else(bad) };
    Ok(Stat {
        pid,
        ppid: field(4)?.parse().map_err(|_| bad())?,
        utime: field(14)?.parse().map_err(|_| bad())?,
        stime: field(15)?.parse().map_err(|_| bad())?,
        // Signed in the kernel's format, as rss is.
        cutime: field(16)?.parse::<i64>().map_err(|_| bad())?.max(0) as u64,
        cstime: field(17)?.parse::<i64>().map_err(|_| bad())?.max(0) as u64,
        threads: field(20)?.parse().map_err(|_| bad())?,
        // rss is signed in the kernel's format; a negative one is none.
        rss: field(24)?.parse::<i64>().map_err(|_| bad())?.max(0) as u64,
    })
}

/// What `/proc/PID/stat` says of process `pid`, or None where it has gone
/// or the line cannot be read.
pub fn stat(pid: i32, proc_dir: &Path) -> Option<Stat> {
    std::fs::read_to_string(proc_dir.join(pid.to_string()).join("stat"))
        .ok()
        .and_then(|line| parse_stat(&line).ok())
}

/// Every process under `proc_dir` (normally `/proc`). One that ends
/// while it is read, or whose line cannot be read, is left out.
pub fn scan(proc_dir: &Path) -> Vec<Stat> {
    let Ok(entries) = std::fs::read_dir(proc_dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|line| parse_stat(&line).ok())
        .collect()
}

/// The processes of the trees rooted at `roots` (the roots included),
/// found through each process's `task/*/children` (Linux 3.5 and later,
/// `CONFIG_PROC_CHILDREN`): only the job's own processes are read, however
/// many the node runs. None where the kernel has no such files; then
/// [`scan`] and [`trees`] find them.
pub fn walk(roots: &[i32], proc_dir: &Path) -> Option<Vec<Stat>> {
    walk_each(roots, proc_dir, |_| {})
}

/// [`walk`], calling `visit` with each process after its `stat` is read
/// and before its children are: a process moved to a cgroup by `visit`
/// takes every child it forks later with it, and the ones it had are read
/// after.
pub fn walk_each(
    roots: &[i32],
    proc_dir: &Path,
    mut visit: impl FnMut(&Stat),
) -> Option<Vec<Stat>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut todo: Vec<i32> = roots.to_vec();
    let mut any_children_file = false;
    while let Some(pid) = todo.pop() {
        if !seen.insert(pid) {
            continue;
        }
        let dir = proc_dir.join(pid.to_string());
        // A process that has ended leaves nothing to read; its children,
        // reparented, are no longer in the tree.
        let Some(stat) = stat(pid, proc_dir) else {
            continue;
        };
        let threads = stat.threads;
        visit(&stat);
        out.push(stat);
        let mut take = |file: &Path| {
            if let Ok(children) = std::fs::read_to_string(file) {
                any_children_file = true;
                todo.extend(
                    children
                        .split_whitespace()
                        .filter_map(|c| c.parse::<i32>().ok()),
                );
            }
        };
        // Most processes have one thread, whose children file is found
        // without listing the task directory.
        if threads <= 1 {
            take(&dir.join(format!("task/{pid}/children")));
            continue;
        }
        let Ok(tasks) = std::fs::read_dir(dir.join("task")) else {
            continue;
        };
        for task in tasks.flatten() {
            take(&task.path().join("children"));
        }
    }
    (any_children_file || out.is_empty()).then_some(out)
}

/// The real user ID of process `pid` (`/proc/PID/status`), or None where
/// it has gone or the file cannot be read.
pub fn owner(pid: i32, proc_dir: &Path) -> Option<u32> {
    let status = std::fs::read_to_string(proc_dir.join(pid.to_string()).join("status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
}

/// The processes of the trees rooted at `roots` (the roots included).
pub fn trees<'a>(roots: &[i32], all: &'a [Stat]) -> Vec<&'a Stat> {
    let mut children: HashMap<i32, Vec<&Stat>> = HashMap::new();
    for s in all {
        children.entry(s.ppid).or_default().push(s);
    }
    let by_pid: HashMap<i32, &Stat> = all.iter().map(|s| (s.pid, s)).collect();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut todo: Vec<i32> = roots.to_vec();
    while let Some(pid) = todo.pop() {
        if !seen.insert(pid) {
            continue;
        }
        if let Some(s) = by_pid.get(&pid) {
            out.push(*s);
        }
        if let Some(kids) = children.get(&pid) {
            todo.extend(kids.iter().map(|k| k.pid));
        }
    }
    out
}

/// The units `/proc` counts in, from the system (`sysconf`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Units {
    pub ticks_per_second: f64,
    pub page_size: u64,
}

/// What one look at a job's process trees found.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    pub processes: usize,
    /// The processes' CPU time and that of the children they waited for.
    pub cpu_seconds: f64,
    pub rss_bytes: u64,
}

/// Sums the trees under `roots` in `all`.
pub fn sample(roots: &[i32], all: &[Stat], units: Units) -> Sample {
    sum(&trees(roots, all), units)
}

/// Sums `procs`.
pub fn sum(procs: &[&Stat], units: Units) -> Sample {
    let ticks: u64 = procs
        .iter()
        .map(|s| s.utime + s.stime + s.cutime + s.cstime)
        .sum();
    Sample {
        processes: procs.len(),
        cpu_seconds: ticks as f64 / units.ticks_per_second,
        rss_bytes: procs.iter().map(|s| s.rss).sum::<u64>() * units.page_size,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Recorded from a Linux 6.18 host.
    const STAT: &str = "13955 (cat) R 13946 13946 29079 0 -1 4194304 127 0 0 0 7 3 0 0 20 0 1 0 1316346 3133440 418 18446744073709551615 94314019663872 94314019683753 140735447440400 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn a_stat_line_is_read() {
        let s = parse_stat(STAT).unwrap();
        assert_eq!(
            s,
            Stat {
                pid: 13955,
                ppid: 13946,
                utime: 7,
                stime: 3,
                cutime: 0,
                cstime: 0,
                threads: 1,
                rss: 418
            }
        );
    }

    #[test]
    fn waited_for_children_count_in_the_trees_cpu_time() {
        // A shell (pid 20) that has waited for children which used 150
        // ticks, itself using 10.
        let line = "20 (bash) S 1 20 20 0 -1 4194304 0 0 0 0 6 4 120 30 20 0 1 0 1 3133440 100 0";
        let s = parse_stat(line).unwrap();
        assert_eq!((s.cutime, s.cstime), (120, 30));
        let units = Units {
            ticks_per_second: 100.0,
            page_size: 4096,
        };
        assert!((sum(&[&s], units).cpu_seconds - 1.6).abs() < 1e-9);
    }

    #[test]
    fn a_process_owner_is_its_real_uid() {
        let me = std::process::id() as i32;
        let uid = std::fs::metadata(format!("/proc/{me}")).map(|m| {
            use std::os::unix::fs::MetadataExt;
            m.uid()
        });
        assert_eq!(owner(me, Path::new("/proc")), uid.ok());
        assert_eq!(owner(i32::MAX, Path::new("/proc")), None);
    }

    #[test]
    fn a_name_with_spaces_and_parentheses_is_skipped() {
        let line = STAT.replace("(cat)", "(a (b) c)");
        assert_eq!(parse_stat(&line).unwrap().ppid, 13946);
    }

    #[test]
    fn a_truncated_line_is_refused() {
        assert!(parse_stat("12 (x) R 1 2").is_err());
        assert!(parse_stat("garbage").is_err());
    }

    fn st(pid: i32, ppid: i32, ticks: u64, rss: u64) -> Stat {
        Stat {
            pid,
            ppid,
            utime: ticks,
            stime: 0,
            cutime: 0,
            cstime: 0,
            threads: 1,
            rss,
        }
    }

    #[test]
    fn the_walk_finds_this_process_and_its_children() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let me = std::process::id() as i32;
        let found = walk(&[me], Path::new("/proc")).expect("this kernel has children files");
        assert_eq!(found[0].pid, me);
        assert!(
            found.iter().any(|s| s.pid == child.id() as i32),
            "{found:?}"
        );
        let _ = child.kill();
        let _ = child.wait();
        // A root that has ended is no error.
        assert_eq!(walk(&[i32::MAX], Path::new("/proc")), Some(vec![]));
    }

    #[test]
    fn trees_take_every_descendant_and_nothing_else() {
        let all = [
            st(10, 1, 100, 5),
            st(11, 10, 50, 3),
            st(12, 11, 25, 2),
            st(20, 1, 999, 999),
        ];
        let units = Units {
            ticks_per_second: 100.0,
            page_size: 4096,
        };
        let s = sample(&[10], &all, units);
        assert_eq!(s.processes, 3);
        assert!((s.cpu_seconds - 1.75).abs() < 1e-9);
        assert_eq!(s.rss_bytes, 10 * 4096);
        // A root that has gone counts nothing; its children are still found.
        assert_eq!(sample(&[11, 99], &all, units).processes, 2);
    }
}
