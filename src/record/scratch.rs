//! The run's private folder in `$TMPDIR`, where perf writes perf.data.
//!
//! It is named `rust-flamegraph-<pid>-XXXXXX` and holds a lock file that the
//! run keeps locked while it lives; it is removed when the run ends (and on
//! an abort). A run that is killed outright (`kill -9`, the OOM killer, a
//! power cut) leaves its folder behind, perf.data and all: each new run
//! removes those of dead runs in the same `$TMPDIR` and says how much space
//! that gave back.
//!
//! A folder counts as stale only when its pid is not alive *and* its lock is
//! free: a run in another pid namespace (a container sharing `/tmp`) looks
//! dead by pid, but still holds its lock.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use rustix::fs::{flock, FlockOperation};

use crate::sys::interrupt;

/// Start of every scratch folder's name.
pub const PREFIX: &str = "rust-flamegraph-";

/// The lock file inside a scratch folder.
pub const LOCK: &str = ".lock";

/// A folder without a lock file (its run died while creating it) is stale
/// once it is this old.
const UNLOCKED_GRACE: Duration = Duration::from_secs(60);

/// A scratch folder, removed when dropped.
#[derive(Debug)]
pub struct Scratch {
    // Field order is drop order: unregister, unlock, then remove.
    _watch: interrupt::Watch,
    _lock: File,
    dir: tempfile::TempDir,
}

impl Scratch {
    /// Creates the run's folder in `$TMPDIR` (else `/tmp`), after removing
    /// the stale ones of dead runs there.
    pub fn create() -> Result<Scratch> {
        Scratch::create_in(&std::env::temp_dir())
    }

    /// Creates the run's folder in `parent`, after removing stale ones there.
    pub fn create_in(parent: &Path) -> Result<Scratch> {
        let reclaimed = reclaim_stale(parent);
        if reclaimed.folders > 0 {
            crate::say!(
                "rust-flamegraph: removed {} perf.data folder{} left in {} by runs that were \
                 killed: {:.1} MB reclaimed",
                reclaimed.folders,
                if reclaimed.folders == 1 { "" } else { "s" },
                parent.display(),
                reclaimed.bytes as f64 / 1e6
            );
        }
        let context = || {
            format!(
                "cannot create a temporary folder for perf.data in {}: check TMPDIR",
                parent.display()
            )
        };
        let dir = tempfile::Builder::new()
            .prefix(&format!("{PREFIX}{}-", std::process::id()))
            .tempdir_in(parent)
            .with_context(context)?;
        let lock = File::create(dir.path().join(LOCK)).with_context(context)?;
        // Where flock is not supported (some network file systems), other
        // runs cannot lock it either, so they never take it for stale.
        let _ = flock(&lock, FlockOperation::NonBlockingLockExclusive);
        Ok(Scratch {
            _watch: interrupt::watch_partial(dir.path().to_path_buf()),
            _lock: lock,
            dir,
        })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Where perf writes its data.
    pub fn perf_data(&self) -> PathBuf {
        self.dir.path().join("perf.data")
    }
}

/// What [`reclaim_stale`] removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reclaimed {
    /// Folders removed.
    pub folders: usize,
    /// Bytes of the files they held.
    pub bytes: u64,
}

/// Removes the scratch folders in `parent` of runs that are gone: ours
/// (same owner), named with a pid that is not alive, whose lock nobody holds.
/// Errors are skipped: this is housekeeping.
pub fn reclaim_stale(parent: &Path) -> Reclaimed {
    let mut reclaimed = Reclaimed::default();
    let Ok(entries) = std::fs::read_dir(parent) else {
        return reclaimed;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(pid_in_name) else {
            continue;
        };
        let path = entry.path();
        let Some(lock) = stale_lock(&path, pid) else {
            continue;
        };
        let bytes = size_of(&path);
        // Still holding its lock, so no other run reclaims it at the same time.
        if std::fs::remove_dir_all(&path).is_ok() {
            reclaimed.folders += 1;
            reclaimed.bytes += bytes;
        }
        drop(lock);
    }
    reclaimed
}

/// The pid in a scratch folder's name `rust-flamegraph-<pid>-XXXXXX`.
fn pid_in_name(name: &str) -> Option<u32> {
    let (pid, rest) = name.strip_prefix(PREFIX)?.split_once('-')?;
    if rest.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// `Some` (the lock file, locked by us, or `None` inside when it has none)
/// if `path` is a stale scratch folder of a dead run `pid`.
fn stale_lock(path: &Path, pid: u32) -> Option<Option<File>> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_dir() || meta.uid() != rustix::process::geteuid().as_raw() {
        return None;
    }
    if pid == std::process::id() || alive(pid) {
        return None;
    }
    match File::open(path.join(LOCK)) {
        Ok(lock) => flock(&lock, FlockOperation::NonBlockingLockExclusive)
            .is_ok()
            .then_some(Some(lock)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let age = meta
                .modified()
                .ok()
                .and_then(|m| SystemTime::now().duration_since(m).ok());
            age.is_some_and(|a| a >= UNLOCKED_GRACE).then_some(None)
        }
        Err(_) => None,
    }
}

/// Whether a process `pid` exists in our pid namespace (EPERM: it does).
fn alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

/// Disk space used by the files under `path` (symlinks not followed).
fn size_of(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => size_of(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pid that is not alive: pids never exceed 2^22.
    const DEAD: u32 = 4_194_305;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn fake(parent: &Path, name: &str, bytes: usize, lock: bool) -> PathBuf {
        let dir = parent.join(name);
        std::fs::create_dir(&dir).unwrap();
        // Not zeros: a file system could store those sparsely.
        std::fs::write(dir.join("perf.data"), vec![1u8; bytes]).unwrap();
        if lock {
            File::create(dir.join(LOCK)).unwrap();
        }
        dir
    }

    #[test]
    fn names_carry_the_pid() {
        assert_eq!(pid_in_name("rust-flamegraph-123-abcDEF"), Some(123));
        assert_eq!(pid_in_name("rust-flamegraph-abcDEF"), None); // the old naming
        assert_eq!(pid_in_name("rust-flamegraph-12x-abc"), None);
        assert_eq!(pid_in_name("rust-flamegraph-123-"), None);
        assert_eq!(pid_in_name("other-123-abc"), None);
    }

    #[test]
    fn the_folder_is_named_with_our_pid_locked_and_removed_when_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let scratch = Scratch::create_in(tmp.path()).unwrap();
        let name = scratch.path().file_name().unwrap().to_str().unwrap();
        assert_eq!(pid_in_name(name), Some(std::process::id()));
        assert!(scratch.perf_data().starts_with(scratch.path()));
        // Another process (or namespace) would find it locked.
        let other = File::open(scratch.path().join(LOCK)).unwrap();
        assert!(flock(&other, FlockOperation::NonBlockingLockExclusive).is_err());
        let path = scratch.path().to_path_buf();
        drop(scratch);
        assert!(!path.exists());
    }

    #[test]
    fn stale_folders_of_dead_runs_are_reclaimed_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path();
        fake(
            p,
            &format!("rust-flamegraph-{DEAD}-aaaaaa"),
            3_000_000,
            true,
        );
        // Died before creating its lock, long ago.
        let old = fake(
            p,
            &format!("rust-flamegraph-{DEAD}-bbbbbb"),
            1_000_000,
            false,
        );
        let t = SystemTime::now() - Duration::from_secs(3600);
        File::open(&old).unwrap().set_modified(t).unwrap();
        // Died before creating its lock, just now: maybe alive elsewhere.
        fake(p, &format!("rust-flamegraph-{DEAD}-cccccc"), 10, false);
        // A live process (pid 1): kept.
        let live = fake(p, "rust-flamegraph-1-dddddd", 10, true);
        // Dead by pid, but its lock is held (a run in another pid namespace).
        let held = fake(p, &format!("rust-flamegraph-{DEAD}-eeeeee"), 10, true);
        let holder = File::open(held.join(LOCK)).unwrap();
        flock(&holder, FlockOperation::NonBlockingLockExclusive).unwrap();
        // Not ours by name.
        fake(p, "rust-flamegraph-oldstyle", 10, false);
        fake(p, &format!("other-{DEAD}-x"), 10, true);
        std::fs::write(p.join(format!("rust-flamegraph-{DEAD}-file")), b"x").unwrap();

        let reclaimed = reclaim_stale(p);
        assert_eq!(reclaimed.folders, 2);
        // Disk blocks: at least the bytes written, at most a little more.
        assert!(
            (4_000_000..4_200_000).contains(&reclaimed.bytes),
            "{reclaimed:?}"
        );
        assert_eq!(
            names(p),
            [
                format!("other-{DEAD}-x"),
                "rust-flamegraph-1-dddddd".to_string(),
                format!("rust-flamegraph-{DEAD}-cccccc"),
                format!("rust-flamegraph-{DEAD}-eeeeee"),
                format!("rust-flamegraph-{DEAD}-file"),
                "rust-flamegraph-oldstyle".to_string(),
            ]
        );
        assert!(live.exists());
        // A new run reclaims as it creates its own folder.
        drop(holder);
        let scratch = Scratch::create_in(p).unwrap();
        assert!(!held.exists());
        assert!(scratch.path().exists());
    }
}
