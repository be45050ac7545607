//! The output folder, opened once: [`OutDir`], its markers, and what it
//! keeps when the results cannot be written ([`OutDir::put_aside`]).

use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags};

use super::errors::{folder_error, write_error};
use super::exit_guard;
use super::inner::Inner;
use super::names::{KEPT_PREFIX, MARKERS, RESULTS, STAGING_PREFIX, SVG};
use super::shown::shown;
use super::staging::{empty_folder, random, same_file, Staging};
use crate::exit::Exit;

/// The folder of the cargo package that `dir` is part of (the nearest
/// ancestor with a Cargo.toml), if any.
fn enclosing_package(dir: &Path) -> Option<PathBuf> {
    let dir = std::path::absolute(dir).ok()?;
    dir.ancestors()
        .skip(1)
        .find(|a| a.join("Cargo.toml").is_file())
        .map(Path::to_path_buf)
}

/// The output folder, opened once.
#[derive(Debug, Clone)]
pub struct OutDir {
    pub(super) inner: Arc<Inner>,
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

    /// The name of result `name` ([`SVG`], [`FOLDED`](super::FOLDED), …) in the folder: itself,
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

    /// Creates and removes a staging folder with an empty file in it.
    fn probe(&self) -> io::Result<()> {
        let staging = Staging::create(&self.inner.dir)?;
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
    pub(super) fn finish_file(&self, file: &File) -> io::Result<()> {
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

/// Creates `path` if needed and opens it as a folder.
/// Never follows a symlink that another user made ([`crate::sys::safe_fs`]): the
/// folder, or one above it, swapped for a symlink is refused.
fn open_folder(path: &Path) -> Result<OwnedFd> {
    crate::sys::safe_fs::open_folder(path, true).map_err(|e| folder_error(path, &e))
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifacts::names::{FOLDED, PERF_DATA};
    use std::os::unix::fs::PermissionsExt;

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
}
