//! A job shell's own cgroup v2, where it has one: under sdexec each shell
//! runs in a systemd unit `shell-<rank>-<jobid>.service`, whose cgroup holds
//! the shell and its tasks and nothing else. Without sdexec, shells share
//! the broker's cgroup, which says nothing of one job.

use std::path::{Path, PathBuf};

/// The shell's own cgroup directory, from the text of `/proc/self/cgroup`
/// and the cgroup v2 mount (`/sys/fs/cgroup`): only a `0::` (v2) line
/// whose last component is a `shell-*.service` unit counts.
pub fn own_cgroup(proc_self_cgroup: &str, mount: &Path) -> Option<PathBuf> {
    let path = proc_self_cgroup
        .lines()
        .find_map(|line| line.strip_prefix("0::"))?
        .trim();
    let unit = path.rsplit('/').next()?;
    if !(unit.starts_with("shell-") && unit.ends_with(".service")) {
        return None;
    }
    Some(mount.join(path.trim_start_matches('/')))
}

/// What a cgroup's files say of everything that ran in it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Figures {
    pub user_seconds: f64,
    pub system_seconds: f64,
    /// `memory.peak`: the most memory the cgroup held at once.
    pub peak_bytes: Option<u64>,
    /// `memory.events`' `oom_kill`.
    pub oom_kills: Option<u64>,
}

/// A cgroup file's `key value` line.
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Reads `cpu.stat`, `memory.peak` and `memory.events` of `dir`. None
/// when `cpu.stat` cannot be read (the cgroup has gone).
pub fn read(dir: &Path) -> Option<Figures> {
    let cpu = std::fs::read_to_string(dir.join("cpu.stat")).ok()?;
    let peak = std::fs::read_to_string(dir.join("memory.peak"))
        .ok()
        .and_then(|t| t.trim().parse().ok());
    let events = std::fs::read_to_string(dir.join("memory.events")).ok();
    Some(Figures {
        user_seconds: keyed(&cpu, "user_usec")? as f64 / 1e6,
        system_seconds: keyed(&cpu, "system_usec")? as f64 / 1e6,
        peak_bytes: peak,
        oom_kills: events.as_deref().and_then(|e| keyed(e, "oom_kill")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_shell_unit_of_cgroup_v2_is_the_shells_own() {
        let mount = Path::new("/sys/fs/cgroup");
        let sdexec = "0::/system.slice/flux/shell-0-fVXdEAaB.service\n";
        assert_eq!(
            own_cgroup(sdexec, mount),
            Some(PathBuf::from(
                "/sys/fs/cgroup/system.slice/flux/shell-0-fVXdEAaB.service"
            ))
        );
        // The broker's own unit, and cgroup v1 lines, are not.
        assert_eq!(own_cgroup("0::/system.slice/flux.service\n", mount), None);
        assert_eq!(
            own_cgroup("4:memory:/shell-0-f1.service\n1:cpu:/\n", mount),
            None
        );
        assert_eq!(own_cgroup("", mount), None);
    }

    #[test]
    fn the_files_of_a_shell_unit_are_read() {
        let dir = std::env::temp_dir().join(format!("usage-cgroup-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // As a Linux 6.18 cgroup v2 writes them.
        std::fs::write(
            dir.join("cpu.stat"),
            "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_periods 0\n",
        )
        .unwrap();
        std::fs::write(dir.join("memory.peak"), "220200960\n").unwrap();
        std::fs::write(
            dir.join("memory.events"),
            "low 0\nhigh 0\nmax 1\noom 1\noom_kill 1\noom_group_kill 0\n",
        )
        .unwrap();
        let f = read(&dir).unwrap();
        assert_eq!(
            f,
            Figures {
                user_seconds: 2.0,
                system_seconds: 0.5,
                peak_bytes: Some(220_200_960),
                oom_kills: Some(1)
            }
        );
        std::fs::remove_file(dir.join("memory.peak")).unwrap();
        assert_eq!(read(&dir).unwrap().peak_bytes, None);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(read(&dir), None);
    }
}
