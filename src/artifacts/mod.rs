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

use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use anyhow::Result;
use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use crate::exit::Exit;
use crate::sys::{interrupt, proc};

/// Name of the flamegraph in the output folder.
pub const SVG: &str = "flamegraph.svg";
/// Name of the folded stacks in the output folder.
pub const FOLDED: &str = "stacks.folded";
/// Name of the kept perf.data (with --keep-perf-data).
pub const PERF_DATA: &str = "perf.data";
/// Name of the page with the heatmap and flamegraphs of any range of the run.
pub const REPORT: &str = "report.html";
/// Name of the differential flamegraph (with --diff-against).
pub const DIFF_SVG: &str = "diff.svg";
/// Name of the pprof profile (with --format pprof).
pub const PPROF: &str = "profile.pb.gz";
/// Every name a run may leave in the output folder. [`Set::commit`] removes
/// those that its set does not include, so that the folder always holds one
/// run's results; add a name here when a run starts writing a new file.
pub const RESULTS: &[&str] = &[FOLDED, SVG, REPORT, PERF_DATA, DIFF_SVG, PPROF];

/// Start of our staging folders' names: `.rust-flamegraph.<pid>.<random>`.
pub const STAGING_PREFIX: &str = ".rust-flamegraph.";
/// Files put in an output folder of ours so that cargo and git leave it out
/// of the package around it, like cargo's own `target/`: new results must not
/// make cargo rerun a build script that names no `rerun-if-changed` files
/// (cargo then watches every file of the package). Cargo lists a package's
/// files from the git index and working tree when the package is tracked,
/// minus what `.gitignore` ignores; otherwise by walking its folder, where it
/// skips dot-files and every folder holding a `Cargo.toml` (another package).
pub const MARKERS: &[(&str, &str)] = &[
    (
        ".gitignore",
        "# rust-flamegraph's results: not part of the package around them.\n*\n",
    ),
    (
        "Cargo.toml",
        "# Written by rust-flamegraph. This folder holds its results, not a package:\n\
         # this file makes cargo leave the folder out of the package around it, so\n\
         # that new results do not rebuild a crate whose build script has no\n\
         # rerun-if-changed (.gitignore does the same where git tracks the crate).\n\
         [workspace]\n",
    ),
    (
        "CACHEDIR.TAG",
        "Signature: 8a477f597d28d172789f06886806bc55\n\
         # This folder holds rust-flamegraph's results, which it can write again.\n",
    ),
];

/// The folder of the cargo package that `dir` is part of (the nearest
/// ancestor with a Cargo.toml), if any.
fn enclosing_package(dir: &Path) -> Option<PathBuf> {
    let dir = std::path::absolute(dir).ok()?;
    dir.ancestors()
        .skip(1)
        .find(|a| a.join("Cargo.toml").is_file())
        .map(Path::to_path_buf)
}

/// `path` as the user finds it: in a container, a path under `/out` (the
/// image's output folder, a host folder mounted there) is followed by
/// "(your mounted folder)", since the host's name for it is not visible
/// from inside.
pub fn shown(path: &Path) -> String {
    if crate::sys::container::in_container() && path.starts_with("/out") {
        format!("{} (your mounted folder)", path.display())
    } else {
        path.display().to_string()
    }
}

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

/// The output folder, opened once.
#[derive(Debug, Clone)]
pub struct OutDir {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The folder as the user named it: for messages and reported paths only.
    path: PathBuf,
    /// With `--out NAME.svg`: `NAME`, the start of every file's name.
    stem: Option<String>,
    /// The folder itself; every operation is relative to it.
    dir: OwnedFd,
    /// Owner to give our files: the folder's, when we run as root and it is
    /// someone else's (a host folder mounted into a container).
    owner: Option<(u32, u32)>,
    /// Threads that hold a [`DirLock`] of this folder, so that their own
    /// [`Set::commit`] does not wait for themselves.
    lockers: Mutex<Vec<ThreadId>>,
}

impl OutDir {
    /// Creates `path` if needed, opens it (once: later moves of the path do
    /// not matter), removes staging folders left by killed runs, and checks
    /// that files can be written in it.
    ///
    /// A `path` ending in `.svg` that is not a folder names the flamegraph
    /// itself: the other files go beside it, named after it (`my.svg`,
    /// `my.stacks.folded`; see [`OutDir::file_name`]). A folder that holds
    /// only our files gets the [`MARKERS`].
    pub fn prepare(path: &Path) -> Result<OutDir> {
        // A symlink named `*.svg` is the flamegraph's name (replaced by it),
        // never a folder to write into: its target may be anywhere.
        let svg = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("svg"))
            && !fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
        let (path, stem) = match (svg, path.file_stem()) {
            (true, Some(stem)) => (
                match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                },
                Some(stem.to_string_lossy().into_owned()),
            ),
            _ => (path, None),
        };
        let dir = open_folder(path)?;
        let st = rustix::fs::fstat(&dir)
            .map_err(|e| Exit::Output.error(format!("cannot read {}: {e}", path.display())))?;
        let root = rustix::process::geteuid().is_root();
        let owner = (root && st.st_uid != 0).then_some((st.st_uid, st.st_gid));
        let out = OutDir {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                stem,
                dir,
                owner,
                lockers: Mutex::new(Vec::new()),
            }),
        };
        exit_guard::install();
        out.remove_stale();
        if out.inner.stem.is_none() {
            out.mark();
        }
        out.probe()
            .map_err(|e| write_error(path, "cannot write to the output folder", &e))?;
        Ok(out)
    }

    /// The folder, as the user named it.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The name of result `name` ([`SVG`], [`FOLDED`], …) in the folder: itself,
    /// or with `--out NAME.svg`, `NAME.svg` for the flamegraph and `NAME.` +
    /// `name` for the others.
    pub fn file_name(&self, name: &str) -> String {
        match &self.inner.stem {
            None => name.to_string(),
            Some(stem) if name == SVG => format!("{stem}.svg"),
            Some(stem) => format!("{stem}.{name}"),
        }
    }

    /// Puts the [`MARKERS`] that are missing into a folder holding nothing
    /// but our results and markers (never into a folder of the user's, such
    /// as the crate itself with `--out .`). Best effort: a folder that cannot
    /// be written is reported by the checks that follow.
    fn mark(&self) {
        let Ok(dir) = rustix::fs::Dir::read_from(&self.inner.dir) else {
            return;
        };
        let ours = |name: &[u8]| {
            name == b"."
                || name == b".."
                || name.starts_with(STAGING_PREFIX.as_bytes())
                || name.starts_with(KEPT_PREFIX.as_bytes())
                || RESULTS.iter().any(|r| r.as_bytes() == name)
                || MARKERS.iter().any(|(m, _)| m.as_bytes() == name)
        };
        // A Cargo.toml is ours only with our text: else the folder is a package.
        // Read without blocking (a FIFO) and at most a few KB (a sparse
        // file of gigabytes): anything else there is not our marker.
        let package = match crate::sys::safe_fs::open_file_in(&self.inner.dir, "Cargo.toml", 4096) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(_) => true,
            Ok(file) => crate::sys::safe_fs::read_bounded(file, 4096).map_or(true, |text| {
                MARKERS
                    .iter()
                    .all(|(name, ours)| *name != "Cargo.toml" || text != ours.as_bytes())
            }),
        };
        if package {
            return;
        }
        let foreign: Vec<String> = dir
            .flatten()
            .filter(|e| !ours(e.file_name().to_bytes()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        if let Some(first) = foreign.first() {
            if let Some(package) = enclosing_package(&self.inner.path) {
                crate::say!(
                    "rust-flamegraph: note: {} holds files that are not results (`{}`), so it \
                     is not marked as a results folder: cargo counts new results as changes to \
                     the package in {}, and rebuilds it on the next run if a build script has \
                     no rerun-if-changed; use an empty or new folder for --out, or add its name \
                     to `exclude` under [package]",
                    shown(&self.inner.path),
                    crate::model::text::printable(first),
                    package.display()
                );
            }
            return;
        }
        for (name, text) in MARKERS {
            let Ok(fd) = rustix::fs::openat(
                &self.inner.dir,
                *name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            ) else {
                continue; // there already (or not writable)
            };
            let mut file = File::from(fd);
            if file
                .write_all(text.as_bytes())
                .and_then(|()| self.finish_file(&file))
                .is_err()
            {
                let _ = rustix::fs::unlinkat(&self.inner.dir, *name, AtFlags::empty());
            }
        }
    }

    /// The uid and gid our files get (`None`: ours).
    pub fn owner(&self) -> Option<(u32, u32)> {
        self.inner.owner
    }

    /// Starts a set of files that [`Set::commit`] puts in place together:
    ///
    /// ```no_run
    /// # use std::io::Write;
    /// # use rust_flamegraph::artifacts::{OutDir, FOLDED, SVG, PERF_DATA};
    /// # fn f(out: &OutDir, data: &std::path::Path) -> anyhow::Result<()> {
    /// let mut set = out.start_set()?;
    /// set.add(FOLDED, |w| w.write_all(b"main 1\n"))?;
    /// set.add(SVG, |w| w.write_all(b"<svg/>"))?;
    /// set.add_copy(data, PERF_DATA)?;
    /// let written = set.commit()?; // the paths, in the order added
    /// # Ok(()) }
    /// ```
    ///
    /// Dropping the set without committing removes what it wrote.
    pub fn start_set(&self) -> Result<Set<'_>> {
        let staging = Staging::create(self)
            .map_err(|e| write_error(self.path(), "cannot write to the output folder", &e))?;
        let watch = interrupt::watch_partial(self.path().join(&staging.name));
        Ok(Set {
            out: self,
            staging: Some(staging),
            watch: Some(watch),
            names: Vec::new(),
            failed: false,
        })
    }

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
    fn lock_for_commit(&self) -> Result<Option<DirLock>> {
        let me = std::thread::current().id();
        if lockers(&self.inner).contains(&me) {
            return Ok(None);
        }
        self.lock().map(Some)
    }

    /// Creates and removes a staging folder with an empty file in it.
    fn probe(&self) -> io::Result<()> {
        let staging = Staging::create(self)?;
        let probed = staging.create_file("probe").map(drop);
        staging.remove(&self.inner.dir);
        probed
    }

    /// Removes the staging folders of runs that died (SIGKILL, power loss):
    /// those whose flock nobody holds. Never follows a symlink: a name that
    /// is not a real folder is left alone, and only the entries of the folder
    /// we opened are unlinked.
    fn remove_stale(&self) {
        let Ok(dir) = rustix::fs::Dir::read_from(&self.inner.dir) else {
            return;
        };
        let names: Vec<CString> = dir
            .flatten()
            .map(|e| e.file_name().to_owned())
            .filter(|n| n.to_bytes().starts_with(STAGING_PREFIX.as_bytes()))
            .collect();
        for name in names {
            let Ok(fd) = rustix::fs::openat(
                &self.inner.dir,
                name.as_c_str(),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) else {
                continue;
            };
            if rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive).is_err() {
                continue; // a live run's
            }
            let bytes = empty_folder(&fd);
            let removed = same_file(&self.inner.dir, name.as_c_str(), &fd)
                && rustix::fs::unlinkat(&self.inner.dir, name.as_c_str(), AtFlags::REMOVEDIR)
                    .is_ok();
            if removed && bytes > 0 {
                crate::say!(
                    "rust-flamegraph: removed {} left in {} by an interrupted run ({:.1} MB)",
                    name.to_string_lossy(),
                    self.path().display(),
                    bytes as f64 / 1e6
                );
            }
        }
    }

    /// Gives a complete staged file its final mode and owner, through its
    /// descriptor, and makes it durable.
    fn finish_file(&self, file: &File) -> io::Result<()> {
        file.sync_all()?;
        if let Some((uid, gid)) = self.inner.owner {
            rustix::fs::fchown(
                file,
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
            )?;
        }
        // After fchown, which clears set-id bits: results are for the user to
        // open and share.
        rustix::fs::fchmod(file, Mode::from_raw_mode(0o644))?;
        Ok(())
    }
}

/// What [`OutDir::put_aside`] keeps.
#[derive(Debug, Clone, Copy)]
pub enum Keep<'a> {
    /// These bytes (a streamed run's stacks).
    Bytes(&'a [u8]),
    /// This file, moved if it can be (perf.data in the scratch folder), else copied.
    File(&'a Path),
}

/// Start of the hidden name of what [`OutDir::put_aside`] keeps in the output
/// folder, in a container (not [`STAGING_PREFIX`]: the next run must not
/// remove it).
pub const KEPT_PREFIX: &str = ".rust-flamegraph-kept.";

impl OutDir {
    /// Keeps data that cannot be had again (the recording) when the results
    /// could not be written, and returns where it is, as the user names it.
    ///
    /// On a host: in a private folder made for it in `$TMPDIR` (mkdtemp:
    /// random name, mode 0700), as `name`, mode 0600, both given to the user
    /// who ran sudo, if any, once written. In a container, whose `/tmp` goes
    /// with it (`--rm`): beside the results, under a hidden name
    /// ([`KEPT_PREFIX`]), created with `O_EXCL|O_NOFOLLOW`, mode 0600, the
    /// folder owner's.
    pub fn put_aside(&self, name: &str, keep: Keep<'_>) -> io::Result<PathBuf> {
        self.put_aside_in(crate::sys::container::in_container(), name, keep)
    }

    fn put_aside_in(&self, in_container: bool, name: &str, keep: Keep<'_>) -> io::Result<PathBuf> {
        let fill = |file: &mut File| -> io::Result<()> {
            match keep {
                Keep::Bytes(bytes) => file.write_all(bytes)?,
                Keep::File(source) => {
                    io::copy(&mut File::open(source)?, file)?;
                }
            }
            file.sync_all()
        };
        if in_container {
            // Beside the results, on the host, it outlives `docker run
            // --rm`; where that folder is what is full, the container's own
            // temporary folder is all there is (the caller says so).
            match self.put_aside_beside(name, fill) {
                Ok(path) => return Ok(path),
                Err(_) => return self.put_aside_in(false, name, keep),
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("rust-flamegraph-kept.")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir_in(std::env::temp_dir())?;
        let path = dir.path().join(name);
        let moved = match keep {
            Keep::File(source) => fs::rename(source, &path).is_ok(),
            Keep::Bytes(_) => false,
        };
        let file = if moved {
            File::open(&path)?
        } else {
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)?;
            fill(&mut file)?;
            file
        };
        rustix::fs::fchmod(&file, Mode::from_raw_mode(0o600))?;
        // The user who ran sudo renders it with their rights: theirs, once
        // complete (the folder last: until then only root can reach in).
        if let Some((uid, gid)) = crate::sys::safe_fs::invoking_user() {
            let (uid, gid) = (
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
            );
            rustix::fs::fchown(&file, uid, gid)?;
            rustix::fs::chown(dir.path(), uid, gid)?;
        }
        Ok(dir.keep().join(name))
    }

    /// Keeps data under a hidden name in the output folder itself.
    fn put_aside_beside(
        &self,
        name: &str,
        fill: impl Fn(&mut File) -> io::Result<()>,
    ) -> io::Result<PathBuf> {
        let hidden = format!("{KEPT_PREFIX}{:016x}.{name}", random());
        let fd = rustix::fs::openat(
            &self.inner.dir,
            hidden.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?;
        let mut file = File::from(fd);
        let kept = fill(&mut file).and_then(|()| {
            if let Some((uid, gid)) = self.inner.owner {
                rustix::fs::fchown(
                    &file,
                    Some(rustix::fs::Uid::from_raw(uid)),
                    Some(rustix::fs::Gid::from_raw(gid)),
                )?;
            }
            Ok(())
        });
        if let Err(e) = kept {
            let _ = rustix::fs::unlinkat(&self.inner.dir, hidden.as_str(), AtFlags::empty());
            return Err(e);
        }
        Ok(self.path().join(hidden))
    }
}

fn lockers(inner: &Inner) -> std::sync::MutexGuard<'_, Vec<ThreadId>> {
    inner.lockers.lock().unwrap_or_else(|e| e.into_inner())
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

/// Files written completely before any is put in place; see [`OutDir::start_set`].
pub struct Set<'a> {
    out: &'a OutDir,
    staging: Option<Staging>,
    /// Registered with the interrupt handler, which removes the staging
    /// folder if we abort before the commit.
    watch: Option<interrupt::Watch>,
    names: Vec<String>,
    /// A file failed: the set must not be committed.
    failed: bool,
}

impl Set<'_> {
    /// Writes `name`: `write` fills it (through a 64 KiB buffer); it is
    /// flushed, fsynced, made 0644 and given the folder owner's uid/gid.
    /// Nothing in the output folder changes until [`Set::commit`]. On an
    /// error the set can no longer be committed (the earlier results stay).
    pub fn add(
        &mut self,
        name: &str,
        write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<()> {
        let name = &self.out.file_name(name);
        let file = self.create(name)?;
        let result = (|| {
            let mut buffered = BufWriter::with_capacity(1 << 16, &file);
            write(&mut buffered)?;
            buffered.flush()?;
            drop(buffered);
            self.out.finish_file(&file)
        })();
        self.added(name, result)
    }

    /// Copies the file `source` (perf.data, in a temporary folder) in as
    /// `name`, like [`Set::add`].
    pub fn add_copy(&mut self, source: &Path, name: &str) -> Result<()> {
        let name = &self.out.file_name(name);
        let mut input = File::open(source).map_err(|e| {
            self.failed = true;
            Exit::Output.error(format!("cannot read {}: {e}", source.display()))
        })?;
        let mut file = self.create(name)?;
        // File to file: the kernel copies (copy_file_range).
        let result = io::copy(&mut input, &mut file).and_then(|_| self.out.finish_file(&file));
        self.added(name, result)
    }

    /// Puts every file of the set in place, renamed back to back under the
    /// folder's lock ([`OutDir::lock`]: taken here unless this thread holds
    /// it already), then removes the [`RESULTS`] of an earlier run that this
    /// set does not include (`unlinkat`: a symlink is removed, not followed;
    /// a folder of that name is left alone). Returns the files' paths, in
    /// the order they were added. On an error before the first rename,
    /// nothing in the folder was changed, and the error says so; an error
    /// between renames (not seen in practice: same folder, same file system,
    /// folders in the way refused beforehand) says which files were replaced.
    pub fn commit(mut self) -> Result<Vec<PathBuf>> {
        self.put_in_place()
    }

    fn create(&mut self, name: &str) -> Result<File> {
        let problem = if name.is_empty()
            || name == "."
            || name == ".."
            || name.contains(['/', '\0'])
            || name.starts_with(STAGING_PREFIX)
        {
            Some("is not a plain file name")
        } else if self.names.iter().any(|n| n == name) {
            Some("is already in this set")
        } else if self.failed {
            Some("cannot be added: an earlier file of this set failed")
        } else {
            None
        };
        if let Some(problem) = problem {
            self.failed = true;
            return Err(Exit::Output.error(format!(
                "cannot write {name:?} in {}: it {problem}; {}",
                self.out.path().display(),
                self.unchanged()
            )));
        }
        let staging = self.staging.as_ref().expect("a set before its commit");
        staging.create_file(name).map_err(|e| {
            self.failed = true;
            self.write_failed(name, &e)
        })
    }

    fn added(&mut self, name: &str, result: io::Result<()>) -> Result<()> {
        let staging = self.staging.as_ref().expect("a set before its commit");
        match result {
            Ok(()) => {
                self.names.push(name.to_string());
                Ok(())
            }
            Err(e) => {
                self.failed = true;
                let _ = rustix::fs::unlinkat(&staging.fd, name, AtFlags::empty());
                Err(self.write_failed(name, &e))
            }
        }
    }

    /// What the output folder looks like after a failure before the commit.
    fn unchanged(&self) -> String {
        format!(
            "nothing in {} was changed (the earlier results are untouched)",
            self.out.path().display()
        )
    }

    fn write_failed(&self, name: &str, e: &io::Error) -> anyhow::Error {
        let space = matches!(
            Errno::from_io_error(e),
            Some(Errno::NOSPC | Errno::DQUOT | Errno::FBIG)
        );
        Exit::Output.error(format!(
            "cannot write {name} in {}: {e}; {}{}",
            self.out.path().display(),
            self.unchanged(),
            if space {
                ". Free some space, or choose another folder with --out"
            } else {
                ""
            }
        ))
    }

    /// Renames the staged files into the folder, under the folder's lock,
    /// and removes earlier results not in the set.
    fn put_in_place(&mut self) -> Result<Vec<PathBuf>> {
        let out = self.out;
        let folder = out.path().display().to_string();
        if self.failed {
            return Err(Exit::Output.error(format!(
                "a file of this set could not be written; {}",
                self.unchanged()
            )));
        }
        // A folder where a result goes cannot be replaced by a file: refuse
        // before anything changes.
        for name in &self.names {
            if let Ok(st) =
                rustix::fs::statat(&out.inner.dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
            {
                if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                    return Err(Exit::Output.error(format!(
                        "cannot write {name} in {folder}: a folder has that name; move it \
                             away. {}",
                        self.unchanged()
                    )));
                }
            }
        }
        let _lock = out.lock_for_commit()?;
        // From here an abort must not remove the staged files one by one
        // under our feet; the exit waits for the renames instead. (Dropping
        // the watch blocks for good if the abort has begun: then we exit
        // here, with nothing changed.)
        drop(self.watch.take());
        let staging = self.staging.as_ref().expect("a set before its commit");
        let Some(renaming) = exit_guard::Critical::enter() else {
            return Err(
                Exit::Interrupted.error(format!("interrupted; nothing in {folder} was changed"))
            );
        };
        for (done, name) in self.names.iter().enumerate() {
            #[cfg(test)]
            tests::between_renames(done);
            if let Err(e) =
                rustix::fs::renameat(&staging.fd, name.as_str(), &out.inner.dir, name.as_str())
            {
                let state = if done == 0 {
                    self.unchanged()
                } else {
                    format!(
                        "{} replaced, the rest not: {folder} holds a mixed set, run again",
                        self.names[..done].join(", ")
                    )
                };
                return Err(
                    Exit::Output.error(format!("cannot move {name} into {folder}: {e}; {state}"))
                );
            }
        }
        for stale in RESULTS.iter().map(|r| out.file_name(r)) {
            let stale = stale.as_str();
            if self.names.iter().any(|n| n == stale) {
                continue;
            }
            // unlinkat removes a symlink itself, never what it points to.
            match rustix::fs::unlinkat(&out.inner.dir, stale, AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT | Errno::ISDIR | Errno::PERM) => {}
                Err(e) => crate::say!(
                    "rust-flamegraph: warning: cannot remove the earlier run's {stale} from \
                     {folder}: {e}"
                ),
            }
        }
        drop(renaming);
        let _ = rustix::fs::fsync(&out.inner.dir);
        Ok(self.names.iter().map(|n| out.path().join(n)).collect())
    }
}

impl Drop for Set<'_> {
    fn drop(&mut self) {
        if let Some(staging) = self.staging.take() {
            staging.remove(&self.out.inner.dir);
        }
        drop(self.watch.take());
    }
}

/// Our private folder inside the output folder, where a set is written:
/// created by us, mode 0700, locked (flock) while we live.
#[derive(Debug)]
struct Staging {
    name: String,
    fd: OwnedFd,
}

impl Staging {
    fn create(out: &OutDir) -> io::Result<Staging> {
        let dir = &out.inner.dir;
        for _ in 0..8 {
            let name = format!(
                "{STAGING_PREFIX}{}.{:016x}",
                rustix::process::getpid().as_raw_nonzero(),
                random()
            );
            match rustix::fs::mkdirat(dir, name.as_str(), Mode::from_raw_mode(0o700)) {
                Ok(()) => {}
                Err(Errno::EXIST) => continue,
                Err(e) => return Err(e.into()),
            }
            let fd = match rustix::fs::openat(
                dir,
                name.as_str(),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                // Replaced between mkdir and open: leave it, take another name.
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
                Err(e) => return Err(e.into()),
            };
            // Someone else's folder swapped in between mkdir and open? Then
            // it is not ours to use. (Compared with a file we create in it:
            // the owner a file system reports for our files is not always
            // our uid, e.g. through Docker Desktop's file sharing.)
            let marker = match rustix::fs::openat(
                &fd,
                c".owner",
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            ) {
                Ok(marker) => marker,
                Err(Errno::EXIST) => continue,
                Err(e) => return Err(e.into()),
            };
            let ours = rustix::fs::fstat(&marker)?.st_uid;
            drop(marker);
            rustix::fs::unlinkat(&fd, c".owner", AtFlags::empty())?;
            if rustix::fs::fstat(&fd)?.st_uid != ours {
                continue;
            }
            // Whatever a default ACL of the parent granted: ours alone.
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o700))?;
            match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(Errno::WOULDBLOCK) => continue,
                Err(e) => return Err(e.into()),
            }
            // Another run's stale-folder cleanup may have removed it before
            // our lock: then it has no links left.
            if rustix::fs::fstat(&fd)?.st_nlink == 0 {
                continue;
            }
            return Ok(Staging { name, fd });
        }
        Err(io::Error::other(
            "our temporary folder in it keeps being replaced",
        ))
    }

    fn create_file(&self, name: &str) -> io::Result<File> {
        let open = || {
            rustix::fs::openat(
                &self.fd,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
        };
        let fd = match open() {
            // Only we write in our folder: a leftover of ours.
            Err(Errno::EXIST) => {
                rustix::fs::unlinkat(&self.fd, name, AtFlags::empty())?;
                open()?
            }
            other => other?,
        };
        Ok(File::from(fd))
    }

    /// Removes what is left in the folder, then the folder if it is still
    /// where we made it.
    fn remove(self, dir: &OwnedFd) {
        empty_folder(&self.fd);
        if same_file(dir, self.name.as_str(), &self.fd) {
            let _ = rustix::fs::unlinkat(dir, self.name.as_str(), AtFlags::REMOVEDIR);
        }
    }
}

/// Unlinks the files in the folder `fd` (not following symlinks, not
/// descending); returns the bytes they held.
fn empty_folder(fd: &OwnedFd) -> u64 {
    let Ok(entries) = rustix::fs::Dir::read_from(fd) else {
        return 0;
    };
    let names: Vec<CString> = entries
        .flatten()
        .map(|e| e.file_name().to_owned())
        .filter(|n| n.to_bytes() != b"." && n.to_bytes() != b"..")
        .collect();
    let mut bytes = 0;
    for name in names {
        let size = rustix::fs::statat(fd, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW)
            .map_or(0, |st| u64::try_from(st.st_size).unwrap_or(0));
        if rustix::fs::unlinkat(fd, name.as_c_str(), AtFlags::empty()).is_ok() {
            bytes += size;
        }
    }
    bytes
}

/// Whether `name` in `dir` is (still) the file open as `fd`.
fn same_file<P: rustix::path::Arg>(dir: &OwnedFd, name: P, fd: &OwnedFd) -> bool {
    match (
        rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW),
        rustix::fs::fstat(fd),
    ) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
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

/// Creates `path` if needed and opens it as a folder.
/// Never follows a symlink that another user made ([`crate::sys::safe_fs`]): the
/// folder, or one above it, swapped for a symlink is refused.
fn open_folder(path: &Path) -> Result<OwnedFd> {
    crate::sys::safe_fs::open_folder(path, true).map_err(|e| folder_error(path, &e))
}

/// What to do about an output folder we cannot write, in or out of a container.
fn hint() -> &'static str {
    if crate::sys::container::in_container() {
        "mount a writable host folder there (docker run … -v ./fg:/out), \
         or choose another folder with --out"
    } else {
        "choose another folder with --out, or fix its permissions"
    }
}

/// The output folder cannot be created or opened.
fn folder_error(path: &Path, e: &io::Error) -> anyhow::Error {
    let shown = path.display();
    let errno = Errno::from_io_error(e);
    if path.is_file() || (errno == Some(Errno::NOTDIR) && !path.is_dir() && path.exists()) {
        let fix = if crate::sys::container::in_container() {
            "mount a host folder there, not a file (docker run … -v ./fg:/out), or choose \
             another folder with --out"
        } else {
            "choose a folder with --out (it is created if missing), or move the file away"
        };
        return Exit::Output.error(format!(
            "the output folder {shown} is a file, not a folder: {fix}"
        ));
    }
    if errno == Some(Errno::NOTDIR) {
        if let Some(file) = path.ancestors().skip(1).find(|a| a.is_file()) {
            return Exit::Output.error(format!(
                "cannot create the output folder {shown}: {} is a file; choose another \
                     folder with --out",
                file.display()
            ));
        }
    }
    let what = if path.is_dir() {
        "cannot open the output folder"
    } else {
        "cannot create the output folder"
    };
    write_error(path, what, e)
}

/// Files cannot be created in the output folder.
fn write_error(path: &Path, what: &str, e: &io::Error) -> anyhow::Error {
    let fix = match Errno::from_io_error(e) {
        Some(Errno::ROFS) if crate::sys::container::in_container() => {
            "it is mounted read-only: mount a writable host folder there \
             (docker run … -v ./fg:/out, without :ro; in compose, without read_only)"
        }
        Some(Errno::ROFS) => {
            "it is on a read-only file system: remount it read-write, or choose another \
             folder with --out"
        }
        Some(Errno::NOSPC | Errno::DQUOT) => "free some space, or choose another folder with --out",
        _ => hint(),
    };
    Exit::Output.error(format!("{what} {}: {e}; {fix}", path.display()))
}

/// 64 unpredictable-enough bits for a folder name (std's hasher keys are
/// seeded from the OS; the counter and clock make each call differ).
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish()
}

/// Keeps an exit (the interrupt handler's `process::exit` after a second
/// Ctrl-C, or any other) from cutting a commit's renames in half: an
/// `atexit` hook waits, at most [`LIMIT`], for the renames in
/// progress, and no new ones start once the process is exiting.
///
/// This belongs in `interrupt` (a "critical section" its handler waits for
/// before removing files and exiting); until it offers one, the hook does it.
mod exit_guard {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    use std::sync::Once;
    use std::time::{Duration, Instant};

    /// The longest an exit waits for renames in progress.
    pub const LIMIT: Duration = Duration::from_secs(3);

    static RENAMING: AtomicUsize = AtomicUsize::new(0);
    static EXITING: AtomicBool = AtomicBool::new(false);

    /// Registers the hook (once).
    pub fn install() {
        static ONCE: Once = Once::new();
        // SAFETY: atexit only stores the pointer to a function that takes no
        // arguments and never unwinds (it only reads atomics, sleeps and
        // writes to stderr, ignoring errors).
        ONCE.call_once(|| unsafe {
            libc::atexit(at_exit);
        });
    }

    extern "C" fn at_exit() {
        EXITING.store(true, SeqCst);
        if RENAMING.load(SeqCst) == 0 {
            return;
        }
        let deadline = Instant::now() + LIMIT;
        while RENAMING.load(SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        crate::say!(
            "rust-flamegraph: the new results were already being moved into place: \
             they were completed as one set before exiting"
        );
    }

    /// Renames in progress; `None` once the process is exiting.
    pub struct Critical(());

    impl Critical {
        pub fn enter() -> Option<Critical> {
            RENAMING.fetch_add(1, SeqCst);
            if EXITING.load(SeqCst) {
                RENAMING.fetch_sub(1, SeqCst);
                return None;
            }
            Some(Critical(()))
        }
    }

    impl Drop for Critical {
        fn drop(&mut self) {
            RENAMING.fetch_sub(1, SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    /// Set in the child of `a_signal_during_the_renames_…`: pauses between
    /// the first and the second rename.
    static PAUSE_BETWEEN_RENAMES: AtomicBool = AtomicBool::new(false);

    #[test]
    fn an_svg_path_is_the_flamegraph_and_names_the_files_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(PERF_DATA), "the user's").unwrap();
        let out = OutDir::prepare(&dir.path().join("my.svg")).unwrap();
        assert_eq!(out.path(), dir.path());
        let mut set = out.start_set().unwrap();
        set.add(SVG, |w| w.write_all(b"<svg/>")).unwrap();
        set.add(FOLDED, |w| w.write_all(b"a 1\n")).unwrap();
        let written = set.commit().unwrap();
        assert_eq!(
            written,
            [
                dir.path().join("my.svg"),
                dir.path().join("my.stacks.folded")
            ]
        );
        // Only its own earlier results are removed; no markers in the user's folder.
        assert!(dir.path().join(PERF_DATA).is_file());
        assert!(!dir.path().join("Cargo.toml").exists());
        // A folder named *.svg stays a folder.
        let folder = dir.path().join("old.svg");
        std::fs::create_dir(&folder).unwrap();
        assert_eq!(OutDir::prepare(&folder).unwrap().file_name(SVG), SVG);
    }

    #[test]
    fn a_folder_of_ours_is_marked_and_a_folder_of_the_users_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("fg");
        OutDir::prepare(&ours).unwrap();
        for (name, text) in MARKERS {
            assert_eq!(&std::fs::read_to_string(ours.join(name)).unwrap(), text);
        }
        let users = dir.path().join("crate");
        std::fs::create_dir(&users).unwrap();
        std::fs::write(users.join("Cargo.toml"), "[package]").unwrap();
        OutDir::prepare(&users).unwrap();
        assert_eq!(
            std::fs::read_to_string(users.join("Cargo.toml")).unwrap(),
            "[package]"
        );
        assert!(!users.join(".gitignore").exists());
    }

    pub(super) fn between_renames(done: usize) {
        if done == 1 && PAUSE_BETWEEN_RENAMES.load(Ordering::SeqCst) {
            signal_ready();
            std::thread::sleep(Duration::from_millis(1500));
        }
    }

    const CHILD_ENV: &str = "RUST_FLAMEGRAPH_ARTIFACTS_CHILD";

    fn child_dir() -> Option<PathBuf> {
        std::env::var_os(CHILD_ENV).map(PathBuf::from)
    }

    /// In a child: tells the parent we reached the point to interrupt.
    fn signal_ready() {
        let dir = child_dir().expect("in a child");
        fs::write(dir.with_extension("ready"), "").unwrap();
    }

    /// The names in `dir`, sorted, but the [`MARKERS`].
    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !MARKERS.iter().any(|(m, _)| m == n))
            .collect();
        v.sort();
        v
    }

    fn commit_pair(out: &OutDir, folded: &str, svg: &str) {
        let mut set = out.start_set().unwrap();
        set.add(FOLDED, |w| w.write_all(folded.as_bytes())).unwrap();
        set.add(SVG, |w| w.write_all(svg.as_bytes())).unwrap();
        set.commit().unwrap();
    }

    fn pair(dir: &Path) -> (String, String) {
        (
            fs::read_to_string(dir.join(FOLDED)).unwrap(),
            fs::read_to_string(dir.join(SVG)).unwrap(),
        )
    }

    /// Runs the ignored test `name` of this binary as a child, in `dir`,
    /// interrupts it (SIGINT) once it signals that it is ready, and returns
    /// its exit code.
    fn interrupt_child(name: &str, dir: &Path) -> Option<i32> {
        let ready = dir.with_extension("ready");
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                name,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ready.exists() {
            if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
                let _ = child.kill();
                panic!("the child never got ready: {:?}", child.wait());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        interrupt::send(child.id(), libc::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the child did not exit after SIGINT");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn write_is_atomic_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutDir::prepare(dir.path()).unwrap();
        let mut set = out.start_set().unwrap();
        set.add("a.txt", |w| w.write_all(b"first")).unwrap();
        let path = set.commit().unwrap().remove(0);
        assert_eq!(fs::read_to_string(&path).unwrap(), "first");
        let mut set = out.start_set().unwrap();
        let err = set
            .add("a.txt", |w| {
                w.write_all(b"partial")?;
                Err(io::Error::other("disk full"))
            })
            .unwrap_err();
        assert!(set.commit().is_err(), "a failed set is not committed");
        assert_eq!(Exit::of(&err), Exit::Output);
        assert!(err.to_string().contains("disk full"), "{err}");
        assert!(err.to_string().contains("a.txt"), "{err}");
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "first",
            "old file untouched"
        );
        assert_eq!(names(dir.path()), ["a.txt"], "no temporary files left");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }

    #[test]
    fn an_output_folder_under_a_file_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        fs::write(&file, "").unwrap();
        let err = OutDir::prepare(&file.join("sub")).unwrap_err();
        assert_eq!(Exit::of(&err), Exit::Output);
        let message = err.to_string();
        assert!(
            message.contains("choose another folder with --out"),
            "{message}"
        );
        assert!(
            message.contains(&format!("{} is a file", file.display())),
            "{message}"
        );
    }

    #[test]
    fn read_only_and_full_folders_name_the_fix() {
        let ro = io::Error::from_raw_os_error(libc::EROFS);
        let message =
            write_error(Path::new("/out"), "cannot write to the output folder", &ro).to_string();
        assert!(
            message.starts_with("cannot write to the output folder /out: Read-only file system"),
            "{message}"
        );
        if crate::sys::container::in_container() {
            assert!(message.contains("-v ./fg:/out, without :ro"), "{message}");
        } else {
            assert!(message.contains("remount it read-write"), "{message}");
        }
        let full = io::Error::from_raw_os_error(libc::ENOSPC);
        let message = write_error(
            Path::new("/out"),
            "cannot write to the output folder",
            &full,
        )
        .to_string();
        assert!(message.contains("free some space"), "{message}");
    }

    #[test]
    fn names_that_are_not_plain_file_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutDir::prepare(dir.path()).unwrap();
        for bad in ["", ".", "..", "a/b", "../x", ".rust-flamegraph.1.2"] {
            let mut set = out.start_set().unwrap();
            let err = set.add(bad, |w| w.write_all(b"x")).unwrap_err();
            assert!(err.to_string().contains("not a plain file name"), "{err}");
            assert!(set.commit().is_err(), "a failed set is not committed");
        }
        let mut set = out.start_set().unwrap();
        set.add(SVG, |w| w.write_all(b"x")).unwrap();
        let err = set.add(SVG, |w| w.write_all(b"y")).unwrap_err();
        assert!(err.to_string().contains("already in this set"), "{err}");
        drop(set);
        assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
    }

    #[test]
    fn a_folder_in_place_of_a_result_is_refused_before_anything_changes() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutDir::prepare(dir.path()).unwrap();
        commit_pair(&out, "old folded", "old svg");
        fs::remove_file(dir.path().join(SVG)).unwrap();
        fs::create_dir(dir.path().join(SVG)).unwrap();
        let mut set = out.start_set().unwrap();
        set.add(FOLDED, |w| w.write_all(b"new")).unwrap();
        set.add(SVG, |w| w.write_all(b"new")).unwrap();
        let err = set.commit().unwrap_err().to_string();
        assert!(err.contains("a folder has that name"), "{err}");
        assert!(err.contains("nothing in"), "{err}");
        assert_eq!(
            fs::read_to_string(dir.path().join(FOLDED)).unwrap(),
            "old folded"
        );
        assert_eq!(names(dir.path()), [SVG, FOLDED]);
    }

    /// Child of the test below: commits an old pair, then a new one, and
    /// pauses between the new pair's renames (where the parent interrupts).
    #[test]
    #[ignore = "run by a_signal_during_the_renames_completes_the_set"]
    fn child_interrupted_between_renames() {
        let Some(dir) = child_dir() else { return };
        interrupt::install().unwrap();
        let out = OutDir::prepare(&dir).unwrap();
        commit_pair(&out, "old folded", "old svg");
        PAUSE_BETWEEN_RENAMES.store(true, Ordering::SeqCst);
        commit_pair(&out, "new folded", "new svg");
        // The exit that the signal started ends the process meanwhile.
        std::thread::sleep(Duration::from_secs(5));
    }

    #[test]
    fn a_signal_during_the_renames_completes_the_set() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("out");
        let code = interrupt_child("artifacts::tests::child_interrupted_between_renames", &dir);
        assert_eq!(code, Some(130), "aborted by the signal");
        assert_eq!(
            pair(&dir),
            ("new folded".into(), "new svg".into()),
            "the exit waited for the second rename"
        );
        // What the exit may have left (the empty staging folder) goes at the next run.
        OutDir::prepare(&dir).unwrap();
        assert_eq!(names(&dir), [SVG, FOLDED]);
    }

    /// Child of the test below: commits an old pair, then is interrupted
    /// while writing the new SVG.
    #[test]
    #[ignore = "run by a_signal_while_the_svg_is_written_leaves_the_old_pair"]
    fn child_interrupted_while_writing() {
        let Some(dir) = child_dir() else { return };
        interrupt::install().unwrap();
        let out = OutDir::prepare(&dir).unwrap();
        commit_pair(&out, "old folded", "old svg");
        let mut set = out.start_set().unwrap();
        set.add(FOLDED, |w| w.write_all(b"new folded")).unwrap();
        let _ = set.add(SVG, |w| {
            w.write_all(&[b'x'; 100_000])?;
            signal_ready();
            std::thread::sleep(Duration::from_secs(5));
            Ok(())
        });
        let _ = set.commit();
    }

    #[test]
    fn a_signal_while_the_svg_is_written_leaves_the_old_pair() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("out");
        let code = interrupt_child("artifacts::tests::child_interrupted_while_writing", &dir);
        assert_eq!(code, Some(130));
        assert_eq!(pair(&dir), ("old folded".into(), "old svg".into()));
        assert_eq!(names(&dir), [SVG, FOLDED], "the staging folder was removed");
    }

    #[test]
    fn put_aside_data_is_private_on_a_host_and_beside_the_results_in_a_container() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutDir::prepare(&dir.path().join("out")).unwrap();
        let kept = out
            .put_aside_in(false, FOLDED, Keep::Bytes(b"a 1\n"))
            .unwrap();
        let folder = kept.parent().unwrap().to_path_buf();
        assert!(
            folder.starts_with(std::env::temp_dir()),
            "{}",
            kept.display()
        );
        let mode = |p: &Path| fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&folder), mode(&kept)), (0o700, 0o600));
        assert_eq!(fs::read(&kept).unwrap(), b"a 1\n");
        fs::remove_dir_all(&folder).unwrap();
        // In a container: beside the results (the container's /tmp goes with it).
        let kept = out
            .put_aside_in(true, FOLDED, Keep::Bytes(b"a 1\n"))
            .unwrap();
        assert_eq!(kept.parent().unwrap(), dir.path().join("out"));
        let name = kept.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with(KEPT_PREFIX) && name.ends_with(FOLDED),
            "{name}"
        );
        assert_eq!(mode(&kept), 0o600);
        // The next run leaves it where it is.
        OutDir::prepare(&dir.path().join("out")).unwrap();
        assert!(kept.is_file());
    }

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
