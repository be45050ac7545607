//! What `/proc` says about processes: their state, parent and session,
//! children, command name and executable, and who holds a file lock. Read in
//! one place, for the interrupt handling, the recording's stop and the
//! output folder's lock.
//!
//! Every reader returns `None` (or nothing) for a process that is gone or
//! that `/proc` does not show us: callers treat that as "unknown".

use std::path::PathBuf;

/// Fields of `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// `R`, `S`, `D`, `Z` (exited, not reaped), `X`, …
    pub state: char,
    /// The parent's pid.
    pub ppid: u32,
    /// The session's id.
    pub session: u32,
    /// When it started, in clock ticks since boot: tells it apart from a
    /// later process that reuses its pid.
    pub start: u64,
}

impl Stat {
    /// Exited (a zombie runs no more), or on its way out.
    pub fn exited(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

/// `pid`'s `/proc/PID/stat`.
pub fn stat(pid: u32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// `/proc/PID/stat`'s text: after the command's name in parentheses (which
/// may hold spaces and parentheses itself) come state, ppid, process group,
/// session, …, and the start time as the 20th.
fn parse_stat(text: &str) -> Option<Stat> {
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        session: fields.get(3)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// Every process id in `/proc`.
pub fn pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The children of `pid` (of all its threads).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// `pid`'s command name (`comm`: at most 15 bytes of its program's name),
/// as the kernel gives it (not made printable).
pub fn comm(pid: u32) -> Option<String> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(comm.trim_end_matches('\n').to_string())
}

/// The file `pid` runs (`None`: this process), as its device and inode:
/// the same even when that file was renamed or deleted.
pub fn exe_id(pid: Option<u32>) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let link = match pid {
        Some(pid) => PathBuf::from(format!("/proc/{pid}/exe")),
        None => PathBuf::from("/proc/self/exe"),
    };
    let meta = std::fs::metadata(link).ok()?;
    Some((meta.dev(), meta.ino()))
}

/// The pid holding an `flock` on the file (`dev`, `ino`), from `/proc/locks`.
pub fn flock_holder(dev: u64, ino: u64) -> Option<u32> {
    flock_holder_in(&std::fs::read_to_string("/proc/locks").ok()?, dev, ino)
}

fn flock_holder_in(locks: &str, dev: u64, ino: u64) -> Option<u32> {
    let exact = format!(
        "{:02x}:{:02x}:{ino}",
        rustix::fs::major(dev),
        rustix::fs::minor(dev)
    );
    let same_ino = format!(":{ino}");
    let mut by_ino = Vec::new();
    for line in locks.lines() {
        // "1: FLOCK  ADVISORY  WRITE 4711 08:01:1234 0 EOF"; waiters have "->".
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(&"FLOCK"), Some(pid), Some(id)) = (fields.get(1), fields.get(4), fields.get(5))
        else {
            continue;
        };
        let Some(pid) = pid.parse::<u32>().ok().filter(|&p| p > 0) else {
            continue;
        };
        if *id == exact {
            return Some(pid);
        }
        // Some file systems (btrfs, overlay) show another device than stat.
        if id.ends_with(&same_ino) {
            by_ino.push(pid);
        }
    }
    by_ino.dedup();
    (by_ino.len() == 1).then(|| by_ino[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_name_with_parentheses_and_spaces_is_skipped() {
        let text = "42 (a) b (c)) S 1 42 40 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 777 0 0\n";
        assert_eq!(
            parse_stat(text),
            Some(Stat {
                state: 'S',
                ppid: 1,
                session: 40,
                start: 777
            })
        );
        assert_eq!(parse_stat("42 (x) S 1"), None);
    }

    #[test]
    fn this_process_is_seen() {
        let me = std::process::id();
        let st = stat(me).unwrap();
        assert!(!st.exited());
        let parent = rustix::process::getppid().map(|p| p.as_raw_nonzero().get() as u32);
        assert_eq!(Some(st.ppid), parent);
        assert!(pids().contains(&me));
        assert_eq!(exe_id(Some(me)), exe_id(None));
        assert!(comm(me).is_some_and(|c| !c.is_empty()));
    }

    #[test]
    fn a_lock_is_found_by_device_and_inode_or_by_inode_alone() {
        let locks = "1: FLOCK  ADVISORY  WRITE 4711 08:01:1234 0 EOF\n\
                     1: -> FLOCK  ADVISORY  WRITE 99 08:01:1234 0 EOF\n\
                     2: POSIX  ADVISORY  WRITE 5 00:2a:77 0 EOF\n\
                     3: FLOCK  ADVISORY  WRITE 6 00:2b:77 0 EOF\n";
        let dev = rustix::fs::makedev(8, 1);
        assert_eq!(flock_holder_in(locks, dev, 1234), Some(4711));
        assert_eq!(flock_holder_in(locks, dev, 77), Some(6));
        assert_eq!(flock_holder_in(locks, dev, 5), None);
    }
}
