//! The output folder's lock: one run at a time renames its results.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::thread::ThreadId;

use anyhow::Result;
use rustix::fs::{FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use super::inner::{lockers, Inner};
use super::out_dir::OutDir;
use crate::exit::Exit;
use crate::sys::proc;

impl OutDir {
    /// Locks the folder against other rust-flamegraph runs until the guard
    /// is dropped. When another run holds the lock, says so on stderr (with
    /// its pid when the kernel shows it) and waits.
    pub fn lock(&self) -> Result<DirLock> {
        self.lock_reporting(|message| crate::say!("{message}"))
    }

    /// [`OutDir::lock`], giving the "waiting for another run" line to `report`.
    pub fn lock_reporting(&self, report: impl FnOnce(&str)) -> Result<DirLock> {
        let locked =
            |e: Errno| Exit::Output.error(format!("cannot lock {}: {e}", self.path().display()));
        // A descriptor of its own (the same folder, not looked up by path):
        // flock excludes other open descriptions, in this process too.
        let fd = rustix::fs::openat(
            &self.inner.dir,
            c".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(locked)?;
        match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(Errno::WOULDBLOCK) => {
                let pid = rustix::fs::fstat(&fd)
                    .ok()
                    .and_then(|st| proc::flock_holder(st.st_dev, st.st_ino));
                let holder = describe_holder(pid);
                report(&format!(
                    "rust-flamegraph: {holder} holds the lock of {}; waiting for it to let go \
                     (at most {} s)",
                    self.path().display(),
                    LOCK_WAIT.as_secs()
                ));
                let deadline = std::time::Instant::now() + LOCK_WAIT;
                loop {
                    match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
                        Ok(()) => break,
                        Err(Errno::WOULDBLOCK | Errno::INTR)
                            if std::time::Instant::now() < deadline =>
                        {
                            std::thread::sleep(std::time::Duration::from_millis(20));
                        }
                        Err(Errno::WOULDBLOCK | Errno::INTR) => {
                            return Err(Exit::Output.error(format!(
                                "{} is still locked after {} s, by {holder}: nothing in it was \
                                 changed. A run holds this lock only while it renames its \
                                 results: stop what holds it, or choose another folder with --out",
                                self.path().display(),
                                LOCK_WAIT.as_secs()
                            )))
                        }
                        Err(e) => return Err(locked(e)),
                    }
                }
            }
            Err(e) => return Err(locked(e)),
        }
        let me = std::thread::current().id();
        lockers(&self.inner).push(me);
        Ok(DirLock {
            _fd: fd,
            inner: self.inner.clone(),
            thread: me,
        })
    }

    /// The lock for a commit, unless this thread already holds it.
    pub(super) fn lock_for_commit(&self) -> Result<Option<DirLock>> {
        let me = std::thread::current().id();
        if lockers(&self.inner).contains(&me) {
            return Ok(None);
        }
        self.lock().map(Some)
    }
}

/// Held while a run writes its files; closing the descriptor releases the lock.
#[derive(Debug)]
pub struct DirLock {
    _fd: OwnedFd,
    inner: Arc<Inner>,
    thread: ThreadId,
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let mut lockers = lockers(&self.inner);
        if let Some(i) = lockers.iter().position(|t| *t == self.thread) {
            lockers.swap_remove(i);
        }
    }
}

/// The longest we wait for the output folder's lock. Our runs hold it only
/// while they rename their results (milliseconds): longer means something
/// else holds it, or a run is stuck.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// "another rust-flamegraph run (pid 42)", or what else holds a lock: a
/// holder is called a rust-flamegraph run only if its executable is ours.
fn describe_holder(pid: Option<u32>) -> String {
    let Some(pid) = pid else {
        return "a process we cannot see (another container's run, or another program)".to_string();
    };
    let same_exe = proc::exe_id(Some(pid)).is_some_and(|id| Some(id) == proc::exe_id(None));
    // Our own pid: another `OutDir` of this process (the library's user).
    if same_exe || pid == std::process::id() {
        return format!("another rust-flamegraph run (pid {pid})");
    }
    let comm = proc::comm(pid).unwrap_or_default();
    format!(
        "pid {pid} ({}), which is not a rust-flamegraph run,",
        crate::model::text::printable(comm.trim())
    )
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_holder_is_found_in_proc_locks() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutDir::prepare(dir.path()).unwrap();
        let _lock = out.lock().unwrap();
        let st = rustix::fs::fstat(&out.inner.dir).unwrap();
        assert_eq!(
            proc::flock_holder(st.st_dev, st.st_ino),
            Some(std::process::id())
        );
    }
}
