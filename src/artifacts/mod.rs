//! The files we write into the output folder.
//!
//! In the image we run as root and write into a host folder that belongs to
//! someone else, who can rename, replace and symlink anything in it while we
//! write. So:
//!
//! - [`OutDir::prepare`] opens the folder the user named ONCE; everything
//!   after that (creating, renaming, removing, locking) is relative to that
//!   directory handle. Moving the folder away and putting a symlink in its
//!   place does not redirect us: results go to the folder that was opened.
//! - A run's files are a [`Set`]: each is written completely into a private
//!   staging folder (`.rust-flamegraph.<pid>.<random>`, mode 0700, ours),
//!   flushed, fsynced, given mode 0644 and the folder owner's uid/gid through
//!   its file descriptor; then [`Set::commit`] renames them into the folder
//!   back to back, under the folder's lock, and removes the earlier run's
//!   results that the set does not include ([`RESULTS`]). The folder's owner
//!   cannot reach into the staging folder (it is root's and 0700), so no
//!   temporary name can be swapped for a symlink between our write and our
//!   rename; renaming it away only takes the (still open) folder elsewhere.
//! - Nothing we create follows a symlink: `O_NOFOLLOW|O_EXCL` creation,
//!   `fchmod`/`fchown` on descriptors, `renameat`/`unlinkat` on names.
//! - A full disk, a failing writer or an abort (second Ctrl-C) before
//!   [`Set::commit`] leaves the earlier results untouched. A signal during
//!   the renames cannot split a set: the exit waits (at most a few seconds)
//!   for the renames in progress (`exit_guard`).
//! - A staging folder left by a killed run (`docker kill`) is removed by the
//!   next [`OutDir::prepare`]: each run holds an `flock` on its staging
//!   folder, which the kernel releases when the process dies, so a folder
//!   whose lock is free is stale — whatever pid namespace the run was in.
//!
//! One concern per file: `names` (the files' names and markers), `out_dir`
//! ([`OutDir`]: opening, marking, [`OutDir::put_aside`]), `set` ([`Set`]),
//! `staging` (the private folder a set is written in), `lock` ([`DirLock`]),
//! `exit_guard`, `inner` (what handles of one folder share), `errors` (what
//! to tell the user), `shown`.

mod errors;
mod exit_guard;
mod inner;
mod lock;
mod names;
mod out_dir;
mod set;
mod shown;
mod staging;

pub use lock::{DirLock, LOCK_WAIT};
pub use names::{
    DIFF_REMOVED_SVG, DIFF_SVG, FOLDED, KEPT_PREFIX, MARKERS, PERF_DATA, PPROF, REPORT, RESULTS,
    STAGING_PREFIX, SVG,
};
pub use out_dir::{Keep, OutDir};
pub use set::Set;
pub use shown::shown;

use std::path::Path;

/// `--open`: opens `file` with the desktop's program for it (`xdg-open`, or
/// `open` on macOS-like systems), without waiting for it. In a container
/// nothing can be shown: says where the file is on the host instead.
pub fn open(file: &Path) {
    if crate::sys::container::in_container() {
        crate::say!(
            "rust-flamegraph: --open: a container cannot open a browser on your desktop; \
             open {} from the host",
            shown(file)
        );
        return;
    }
    for opener in ["xdg-open", "open"] {
        let started = std::process::Command::new(opener)
            .arg(file)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if started.is_ok() {
            return;
        }
    }
    crate::say!(
        "rust-flamegraph: --open: neither xdg-open nor open is installed: open {} in a browser",
        file.display()
    );
}
