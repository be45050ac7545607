//! What every handle of one output folder shares: [`OutDir`](super::OutDir)
//! and its [`DirLock`](super::DirLock)s.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Mutex;
use std::thread::ThreadId;

#[derive(Debug)]
pub(super) struct Inner {
    /// The folder as the user named it: for messages and reported paths only.
    pub(super) path: PathBuf,
    /// With `--out NAME.svg`: `NAME`, the start of every file's name.
    pub(super) stem: Option<String>,
    /// The folder itself; every operation is relative to it.
    pub(super) dir: OwnedFd,
    /// Owner to give our files: the folder's, when we run as root and it is
    /// someone else's (a host folder mounted into a container).
    pub(super) owner: Option<(u32, u32)>,
    /// Threads that hold a [`DirLock`] of this folder, so that their own
    /// [`Set::commit`] does not wait for themselves.
    pub(super) lockers: Mutex<Vec<ThreadId>>,
}

pub(super) fn lockers(inner: &Inner) -> std::sync::MutexGuard<'_, Vec<ThreadId>> {
    inner.lockers.lock().unwrap_or_else(|e| e.into_inner())
}
