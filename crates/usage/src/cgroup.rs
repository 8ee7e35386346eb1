//! A job shell's own cgroup, where it has one: under sdexec each shell runs
//! in a systemd unit, `shell-<rank>-<jobid>.service` (`imp-shell-…` in a
//! multi-user instance), whose cgroup holds the shell and its tasks and
//! nothing else. Without sdexec, shells share the broker's cgroup, which
//! says nothing of one job.
//!
//! The unit's cgroup v2 gives CPU time (`cpu.stat`, with or without the cpu
//! controller). Its memory comes from the same cgroup where the memory
//! controller is on cgroup v2, or from the unit's cgroup v1 memory
//! hierarchy on a hybrid system (systemd's `unified` layout, where cgroup
//! v2 is mounted at `/sys/fs/cgroup/unified` and the controllers stay on
//! v1). Where the hierarchies are mounted is read from
//! `/proc/self/mountinfo`, never assumed.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A cgroup hierarchy's mount: the directory, and the cgroup it shows
/// (`/` unless a container was given only its own subtree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub dir: PathBuf,
    pub root: String,
}

impl Mount {
    /// The directory of cgroup `path` (as `/proc/PID/cgroup` writes it), or
    /// None where the cgroup lies outside what this mount shows.
    pub(crate) fn dir_of(&self, path: &str) -> Option<PathBuf> {
        let relative = if self.root == "/" {
            path
        } else {
            let rest = path.strip_prefix(self.root.as_str())?;
            if !(rest.is_empty() || rest.starts_with('/')) {
                return None;
            }
            rest
        };
        Some(self.dir.join(relative.trim_start_matches('/')))
    }
}

/// Where this system mounts cgroup v2 and the cgroup v1 memory hierarchy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mounts {
    pub unified: Option<Mount>,
    pub memory_v1: Option<Mount>,
}

/// `\040` and the like, as mountinfo escapes spaces, tabs, newlines and
/// backslashes in paths.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)))
            .map(|d| d.iter().fold(0u32, |n, b| n * 8 + u32::from(b - b'0')))
            .and_then(|n| u8::try_from(n).ok());
        match octal {
            Some(b) => {
                out.push(b);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Mounts {
    /// Reads the text of `/proc/self/mountinfo`; the first mount of each
    /// kind counts.
    pub fn parse(mountinfo: &str) -> Mounts {
        let mut mounts = Mounts::default();
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let fields: Vec<&str> = left.split(' ').collect();
            let (Some(root), Some(dir)) = (fields.get(3), fields.get(4)) else {
                continue;
            };
            let mut right = right.split(' ');
            let fstype = right.next().unwrap_or_default();
            let _source = right.next();
            let options = right.next().unwrap_or_default();
            let mount = || Mount {
                dir: PathBuf::from(unescape(dir)),
                root: unescape(root),
            };
            match fstype {
                "cgroup2" if mounts.unified.is_none() => mounts.unified = Some(mount()),
                "cgroup"
                    if mounts.memory_v1.is_none() && options.split(',').any(|o| o == "memory") =>
                {
                    mounts.memory_v1 = Some(mount())
                }
                _ => {}
            }
        }
        mounts
    }

    /// This system's mounts (`/proc/self/mountinfo`); none where it cannot
    /// be read.
    pub fn of_this_system() -> Mounts {
        std::fs::read_to_string("/proc/self/mountinfo")
            .map(|text| Mounts::parse(&text))
            .unwrap_or_default()
    }

    /// Whether the text of `/proc/PID/cgroup` puts the process in a job
    /// shell's unit on cgroup v2: the cheap test before the mounts are
    /// read.
    pub fn in_shell_unit(proc_pid_cgroup: &str) -> bool {
        leaf_is(proc_pid_cgroup, is_shell_unit)
    }

    /// The job shell's own cgroup, from the text of `/proc/PID/cgroup` of
    /// the shell or one of its tasks: only a cgroup v2 whose last component
    /// is a shell unit counts, and its `cpu.stat` must be there.
    pub fn shell_cgroup(&self, proc_pid_cgroup: &str) -> Option<ShellCgroup> {
        self.leaf_cgroup(proc_pid_cgroup, is_shell_unit)
            .filter(|cgroup| cgroup.dir.join("cpu.stat").is_file())
    }

    /// The process's cgroup v2, where its last component is one `accept`
    /// takes, with its memory: the memory controller on cgroup v2, or the
    /// cgroup of the same name in the v1 memory hierarchy.
    pub(crate) fn leaf_cgroup(
        &self,
        proc_pid_cgroup: &str,
        accept: impl Fn(&str) -> bool,
    ) -> Option<ShellCgroup> {
        let path = cgroup_path(proc_pid_cgroup, "")?;
        let leaf = path.rsplit('/').next()?;
        if !accept(leaf) {
            return None;
        }
        let dir = self.unified.as_ref()?.dir_of(path)?;
        let memory_v1 = if dir.join("memory.current").is_file() {
            None
        } else {
            cgroup_path(proc_pid_cgroup, "memory")
                .filter(|path| path.rsplit('/').next() == Some(leaf))
                .and_then(|path| self.memory_v1.as_ref()?.dir_of(path))
                .filter(|dir| dir.join("memory.usage_in_bytes").is_file())
        };
        Some(ShellCgroup { dir, memory_v1 })
    }
}

/// The path of the cgroup of `controller` (`""` for v2) in the text of
/// `/proc/PID/cgroup`.
pub(crate) fn cgroup_path<'a>(proc_pid_cgroup: &'a str, controller: &str) -> Option<&'a str> {
    proc_pid_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let found = if controller.is_empty() {
            controllers.is_empty()
        } else {
            controllers.split(',').any(|c| c == controller)
        };
        found.then_some(path.trim())
    })
}

/// Whether the last component of the process's cgroup v2 is one `accept`
/// takes.
pub(crate) fn leaf_is(proc_pid_cgroup: &str, accept: impl Fn(&str) -> bool) -> bool {
    cgroup_path(proc_pid_cgroup, "")
        .and_then(|path| path.rsplit('/').next())
        .is_some_and(accept)
}

/// `shell-<rank>-<jobid>.service` or `imp-shell-<rank>-<jobid>.service`,
/// as flux-core's job-exec names a job shell's systemd unit.
fn is_shell_unit(unit: &str) -> bool {
    let Some(name) = unit.strip_suffix(".service") else {
        return false;
    };
    let Some(rest) = name
        .strip_prefix("shell-")
        .or_else(|| name.strip_prefix("imp-shell-"))
    else {
        return false;
    };
    rest.split_once('-').is_some_and(|(rank, id)| {
        !rank.is_empty() && rank.bytes().all(|b| b.is_ascii_digit()) && !id.is_empty()
    })
}

/// A job shell's own cgroup v2, and its cgroup v1 memory hierarchy on a
/// hybrid system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellCgroup {
    pub dir: PathBuf,
    pub memory_v1: Option<PathBuf>,
}

/// What a cgroup's files say of everything that ran in it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Figures {
    pub user_seconds: f64,
    pub system_seconds: f64,
    /// Memory charged now (`memory.current`, v1 `memory.usage_in_bytes`).
    pub memory_bytes: Option<u64>,
    /// The most memory the cgroup held at once (`memory.peak`, v1
    /// `memory.max_usage_in_bytes`).
    pub peak_bytes: Option<u64>,
    /// `oom_kill` of `memory.events` (v1 `memory.oom_control`).
    pub oom_kills: Option<u64>,
}

/// A cgroup file's `key value` line.
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

fn number(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

impl ShellCgroup {
    /// Opens the two files a look at a running job reads: `cpu.stat`, and
    /// the memory charged now. None when `cpu.stat` cannot be opened.
    pub fn open(&self) -> Option<OpenCgroup> {
        let memory = match &self.memory_v1 {
            None => self.dir.join("memory.current"),
            Some(v1) => v1.join("memory.usage_in_bytes"),
        };
        Some(OpenCgroup {
            cpu: File::open(self.dir.join("cpu.stat")).ok()?,
            memory: File::open(memory).ok(),
            events: None,
            last_cpu: None,
            buf: Vec::with_capacity(512),
        })
    }

    /// [`ShellCgroup::open`], and `cgroup.events` too: a cgroup that stays
    /// when its processes have gone (one the module made, which nothing
    /// else removes) then reads as gone, at the first look that finds its
    /// CPU time unchanged (`cgroup.events` is read only then).
    pub fn open_watching(&self) -> Option<OpenCgroup> {
        let events = File::open(self.dir.join("cgroup.events")).ok()?;
        Some(OpenCgroup {
            events: Some(events),
            ..self.open()?
        })
    }

    /// The cgroup's memory limit (`memory.max`, v1
    /// `memory.limit_in_bytes`), where it has one below what the node
    /// holds.
    pub fn memory_limit(&self) -> Option<u64> {
        let text = match &self.memory_v1 {
            None => std::fs::read_to_string(self.dir.join("memory.max")).ok()?,
            Some(v1) => std::fs::read_to_string(v1.join("memory.limit_in_bytes")).ok()?,
        };
        // "max" (v2) or a page-rounded i64::MAX (v1) is no limit.
        text.trim()
            .parse::<u64>()
            .ok()
            .filter(|&n| n < (1u64 << 62))
    }

    /// Reads the cgroup's CPU and memory files. None when `cpu.stat`
    /// cannot be read (the cgroup has gone).
    pub fn read(&self) -> Option<Figures> {
        let cpu = std::fs::read_to_string(self.dir.join("cpu.stat")).ok()?;
        let (memory, peak, events) = match &self.memory_v1 {
            None => (
                number(&self.dir.join("memory.current")),
                number(&self.dir.join("memory.peak")),
                std::fs::read_to_string(self.dir.join("memory.events")).ok(),
            ),
            Some(v1) => (
                number(&v1.join("memory.usage_in_bytes")),
                number(&v1.join("memory.max_usage_in_bytes")),
                std::fs::read_to_string(v1.join("memory.oom_control")).ok(),
            ),
        };
        Some(Figures {
            user_seconds: keyed(&cpu, "user_usec")? as f64 / 1e6,
            system_seconds: keyed(&cpu, "system_usec")? as f64 / 1e6,
            memory_bytes: memory,
            peak_bytes: peak,
            oom_kills: events.as_deref().and_then(|e| keyed(e, "oom_kill")),
        })
    }
}

/// A running job's cgroup files, held open: the kernel writes a cgroup
/// file anew for each read from its start, and reading an open file again
/// costs a tenth of opening it (1.4 µs against 17 µs on Linux 6.18). A
/// cgroup that has gone answers ENODEV, so an open file never reads
/// another cgroup's figures.
#[derive(Debug)]
pub struct OpenCgroup {
    cpu: File,
    memory: Option<File>,
    events: Option<File>,
    /// The CPU seconds of the last look: while they grow, the cgroup holds
    /// a process and `cgroup.events` need not be read.
    last_cpu: Option<f64>,
    buf: Vec<u8>,
}

/// The whole text of `file`, read again from its start into `buf`.
fn reread<'a>(file: &File, buf: &'a mut Vec<u8>) -> Option<&'a str> {
    buf.clear();
    let mut chunk = [0u8; 512];
    loop {
        let n = file.read_at(&mut chunk, buf.len() as u64).ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    std::str::from_utf8(buf).ok()
}

impl OpenCgroup {
    /// CPU seconds (user and system) and memory charged now. None when the
    /// cgroup has gone, or, watched, holds no process any more.
    pub fn now(&mut self) -> Option<(f64, Option<u64>)> {
        let cpu = reread(&self.cpu, &mut self.buf)?;
        let seconds = (keyed(cpu, "user_usec")? + keyed(cpu, "system_usec")?) as f64 / 1e6;
        let grew = self
            .last_cpu
            .replace(seconds)
            .is_none_or(|last| seconds > last);
        if let (false, Some(events)) = (grew, &self.events) {
            if keyed(reread(events, &mut self.buf)?, "populated") == Some(0) {
                return None;
            }
        }
        let memory = self
            .memory
            .as_ref()
            .and_then(|f| reread(f, &mut self.buf)?.trim().parse().ok());
        Some((seconds, memory))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As Linux 6.18 writes them on a hybrid (systemd "unified") system.
    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const UNIFIED: &str = "\
25 20 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("usage-cgroup-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn the_mounts_are_read_from_mountinfo() {
        let hybrid = Mounts::parse(HYBRID);
        assert_eq!(
            hybrid.unified.unwrap().dir,
            PathBuf::from("/sys/fs/cgroup/unified")
        );
        assert_eq!(
            hybrid.memory_v1.unwrap().dir,
            PathBuf::from("/sys/fs/cgroup/memory")
        );
        let unified = Mounts::parse(UNIFIED);
        assert_eq!(
            unified.unified.unwrap().dir,
            PathBuf::from("/sys/fs/cgroup")
        );
        assert_eq!(unified.memory_v1, None);
        // A space in a mount point is written \040.
        let odd = Mounts::parse("41 31 0:38 /a /mnt/c\\040g rw - cgroup2 cgroup2 rw\n");
        assert_eq!(
            odd.unified,
            Some(Mount {
                dir: PathBuf::from("/mnt/c g"),
                root: "/a".into()
            })
        );
        assert_eq!(Mounts::parse("garbage\n\n"), Mounts::default());
    }

    #[test]
    fn only_a_shell_unit_of_cgroup_v2_is_the_shells_own() {
        let top = dir("units");
        let unit = top.join("system.slice/flux/shell-0-fVXdEAaB.service");
        std::fs::create_dir_all(&unit).unwrap();
        std::fs::write(
            unit.join("cpu.stat"),
            "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
        )
        .unwrap();
        std::fs::write(unit.join("memory.current"), "0\n").unwrap();
        let mounts = Mounts {
            unified: Some(Mount {
                dir: top.clone(),
                root: "/".into(),
            }),
            memory_v1: None,
        };
        let sdexec = "0::/system.slice/flux/shell-0-fVXdEAaB.service\n";
        assert!(Mounts::in_shell_unit(sdexec));
        assert!(!Mounts::in_shell_unit("0::/system.slice/flux.service\n"));
        assert_eq!(
            mounts.shell_cgroup(sdexec),
            Some(ShellCgroup {
                dir: unit.clone(),
                memory_v1: None
            })
        );
        // The broker's own unit, other units, and cgroup v1 lines are not.
        for not_a_shell in [
            "0::/system.slice/flux.service\n",
            "0::/system.slice/shell-x.service\n",
            "0::/system.slice/flux/shell-0-fVXdEAaB.scope\n",
            "4:memory:/shell-0-f1.service\n1:cpu:/\n",
            "",
        ] {
            assert_eq!(mounts.shell_cgroup(not_a_shell), None, "{not_a_shell}");
        }
        // A multi-user instance's shells run as imp-shell units.
        let imp = top.join("system.slice/flux/imp-shell-3-f2Ab.service");
        std::fs::create_dir_all(&imp).unwrap();
        std::fs::write(imp.join("cpu.stat"), "user_usec 0\nsystem_usec 0\n").unwrap();
        assert!(mounts
            .shell_cgroup("0::/system.slice/flux/imp-shell-3-f2Ab.service\n")
            .is_some());
        // A unit whose cgroup is not there (another namespace) is none.
        assert_eq!(
            mounts.shell_cgroup("0::/elsewhere/shell-1-f2.service\n"),
            None
        );
        std::fs::remove_dir_all(&top).unwrap();
    }

    #[test]
    fn a_hybrid_system_gives_memory_from_the_v1_hierarchy() {
        let top = dir("hybrid");
        let v2 = top.join("unified/flux/shell-1-f5ZB.service");
        let v1 = top.join("memory/flux/shell-1-f5ZB.service");
        std::fs::create_dir_all(&v2).unwrap();
        std::fs::create_dir_all(&v1).unwrap();
        std::fs::write(
            v2.join("cpu.stat"),
            "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnice_usec 0\n",
        )
        .unwrap();
        std::fs::write(v1.join("memory.usage_in_bytes"), "1331200\n").unwrap();
        std::fs::write(v1.join("memory.max_usage_in_bytes"), "52617216\n").unwrap();
        std::fs::write(
            v1.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        let mounts = Mounts {
            unified: Some(Mount {
                dir: top.join("unified"),
                root: "/".into(),
            }),
            memory_v1: Some(Mount {
                dir: top.join("memory"),
                root: "/".into(),
            }),
        };
        let text = "9:name=systemd:/flux/shell-1-f5ZB.service\n\
                    4:memory:/flux/shell-1-f5ZB.service\n\
                    1:cpu:/\n\
                    0::/flux/shell-1-f5ZB.service\n";
        let cg = mounts.shell_cgroup(text).unwrap();
        assert_eq!(cg.memory_v1, Some(v1.clone()));
        assert_eq!(
            cg.read(),
            Some(Figures {
                user_seconds: 2.0,
                system_seconds: 0.5,
                memory_bytes: Some(1_331_200),
                peak_bytes: Some(52_617_216),
                oom_kills: Some(2),
            })
        );
        assert_eq!(cg.open().unwrap().now(), Some((2.5, Some(1_331_200))));
        assert_eq!(cg.memory_limit(), None);
        std::fs::write(v1.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        assert_eq!(cg.memory_limit(), None);
        std::fs::write(v1.join("memory.limit_in_bytes"), "8589934592\n").unwrap();
        assert_eq!(cg.memory_limit(), Some(8 << 30));
        // Another unit's memory cgroup is not this one's.
        let other = text.replace(
            "4:memory:/flux/shell-1-f5ZB.service",
            "4:memory:/flux/shell-2-f6.service",
        );
        assert_eq!(mounts.shell_cgroup(&other).unwrap().memory_v1, None);
        std::fs::remove_dir_all(&top).unwrap();
    }

    #[test]
    fn a_container_mount_shows_only_its_subtree() {
        let m = Mount {
            dir: PathBuf::from("/sys/fs/cgroup"),
            root: "/kubepods/pod1".into(),
        };
        assert_eq!(
            m.dir_of("/kubepods/pod1/shell-0-f1.service"),
            Some(PathBuf::from("/sys/fs/cgroup/shell-0-f1.service"))
        );
        assert_eq!(m.dir_of("/kubepods/pod10/shell-0-f1.service"), None);
        assert_eq!(m.dir_of("/other/shell-0-f1.service"), None);
    }

    #[test]
    fn the_files_of_a_cgroup_v2_unit_are_read() {
        let d = dir("v2");
        std::fs::create_dir_all(&d).unwrap();
        // As a Linux 6.18 cgroup v2 writes them.
        std::fs::write(
            d.join("cpu.stat"),
            "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_periods 0\n",
        )
        .unwrap();
        std::fs::write(d.join("memory.current"), "104857600\n").unwrap();
        std::fs::write(d.join("memory.peak"), "220200960\n").unwrap();
        std::fs::write(
            d.join("memory.events"),
            "low 0\nhigh 0\nmax 1\noom 1\noom_kill 1\noom_group_kill 0\n",
        )
        .unwrap();
        let cg = ShellCgroup {
            dir: d.clone(),
            memory_v1: None,
        };
        assert_eq!(
            cg.read(),
            Some(Figures {
                user_seconds: 2.0,
                system_seconds: 0.5,
                memory_bytes: Some(104_857_600),
                peak_bytes: Some(220_200_960),
                oom_kills: Some(1)
            })
        );
        let mut open = cg.open().unwrap();
        assert_eq!(open.now(), Some((2.5, Some(104_857_600))));
        // Each look reads the files afresh.
        std::fs::write(d.join("memory.current"), "4096\n").unwrap();
        assert_eq!(open.now(), Some((2.5, Some(4096))));
        std::fs::remove_file(d.join("memory.peak")).unwrap();
        assert_eq!(cg.read().unwrap().peak_bytes, None);
        std::fs::write(d.join("memory.max"), "max\n").unwrap();
        assert_eq!(cg.memory_limit(), None);
        std::fs::write(d.join("memory.max"), "4294967296\n").unwrap();
        assert_eq!(cg.memory_limit(), Some(4 << 30));
        std::fs::remove_dir_all(&d).unwrap();
        assert_eq!(cg.read(), None);
    }

    #[test]
    fn a_watched_cgroup_reads_as_gone_once_its_cpu_time_stops() {
        let dir = std::env::temp_dir().join(format!("usage-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
        write(
            "cpu.stat",
            "usage_usec 3000000\nuser_usec 2000000\nsystem_usec 1000000\n",
        );
        write("memory.current", "4096\n");
        write("cgroup.events", "populated 0\nfrozen 0\n");
        let cgroup = ShellCgroup {
            dir: dir.clone(),
            memory_v1: None,
        };
        let mut files = cgroup.open_watching().unwrap();
        // The first look, and one whose CPU time grew, need no event.
        assert_eq!(files.now(), Some((3.0, Some(4096))));
        write(
            "cpu.stat",
            "usage_usec 4000000\nuser_usec 3000000\nsystem_usec 1000000\n",
        );
        assert_eq!(files.now(), Some((4.0, Some(4096))));
        // Unchanged: cgroup.events says it holds no process.
        assert_eq!(files.now(), None);
        write("cgroup.events", "populated 1\nfrozen 0\n");
        assert_eq!(files.now(), Some((4.0, Some(4096))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
