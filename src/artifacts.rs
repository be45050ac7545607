//! The files we write: checked before the workload runs, written under a
//! temporary name and renamed into place, so that a crash, a full disk or a
//! concurrent run never leaves a truncated or mixed file behind.

use std::fs;
use std::io::{BufWriter, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::exit::{fail, Exit};
use crate::interrupt;

/// Name of the flamegraph in the output folder.
pub const SVG: &str = "flamegraph.svg";
/// Name of the folded stacks in the output folder.
pub const FOLDED: &str = "stacks.folded";
/// Name of the kept perf.data (with --keep-perf-data).
pub const PERF_DATA: &str = "perf.data";

/// A writable output folder.
#[derive(Debug, Clone)]
pub struct OutDir {
    path: PathBuf,
    /// Owner to give our files: the folder's, when we run as root and it is
    /// someone else's (a host folder mounted into a container).
    owner: Option<(u32, u32)>,
}

impl OutDir {
    /// Creates `path` if needed and checks that a file can be written in it.
    pub fn prepare(path: &Path) -> Result<OutDir> {
        let hint = if crate::perf::in_container() {
            "mount a writable host folder there (docker run … -v ./fg:/out), \
             or choose another folder with --out"
        } else {
            "choose another folder with --out, or fix its permissions"
        };
        fs::create_dir_all(path).map_err(|e| {
            fail(
                Exit::Output,
                format!(
                    "cannot create the output folder {}: {e}; {hint}",
                    path.display()
                ),
            )
        })?;
        tempfile::Builder::new()
            .prefix(".rust-flamegraph-probe")
            .tempfile_in(path)
            .map_err(|e| {
                fail(
                    Exit::Output,
                    format!(
                        "cannot write to the output folder {}: {e}; {hint}",
                        path.display()
                    ),
                )
            })?;
        let meta = fs::metadata(path)
            .map_err(|e| fail(Exit::Output, format!("cannot read {}: {e}", path.display())))?;
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let owner = (root && meta.uid() != 0).then_some((meta.uid(), meta.gid()));
        Ok(OutDir {
            path: path.to_path_buf(),
            owner,
        })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `name` atomically: `write` fills a temporary file in the same
    /// folder, which is renamed over `name` only once complete and flushed.
    pub fn write(
        &self,
        name: &str,
        write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<PathBuf> {
        let target = self.path.join(name);
        let failed = |e: std::io::Error| {
            fail(
                Exit::Output,
                format!(
                    "cannot write {}: {e}; nothing was left half-written. Free some space \
                     or choose another folder with --out",
                    target.display()
                ),
            )
        };
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .tempfile_in(&self.path)
            .map_err(failed)?;
        let _watch = interrupt::watch_partial(tmp.path().to_path_buf());
        {
            let mut out = BufWriter::with_capacity(1 << 16, tmp.as_file());
            write(&mut out).map_err(failed)?;
            out.flush().map_err(failed)?;
        }
        tmp.as_file().sync_all().map_err(failed)?;
        // tempfile creates 0600; results are for the user to open and share.
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644)).map_err(failed)?;
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::chown(tmp.path(), Some(uid), Some(gid)).map_err(failed)?;
        }
        tmp.persist(&target).map_err(|e| failed(e.error))?;
        Ok(target)
    }

    /// Locks the folder against other rust-flamegraph runs until the guard
    /// is dropped, so that each run's files are written as one set.
    pub fn lock(&self) -> Result<DirLock> {
        let dir = fs::File::open(&self.path).map_err(|e| {
            fail(
                Exit::Output,
                format!("cannot open {}: {e}", self.path.display()),
            )
        })?;
        // SAFETY: flock on a file descriptor we own; released when it closes.
        if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&dir), libc::LOCK_EX) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(fail(
                Exit::Output,
                format!("cannot lock {}: {e}", self.path.display()),
            ));
        }
        Ok(DirLock { _dir: dir })
    }

    /// Copies `source` (perf.data, in a temporary folder) in as `name`.
    pub fn copy_in(&self, source: &Path, name: &str) -> Result<PathBuf> {
        let mut input = fs::File::open(source).map_err(|e| {
            fail(
                Exit::Output,
                format!("cannot read {}: {e}", source.display()),
            )
        })?;
        self.write(name, |out| std::io::copy(&mut input, out).map(drop))
    }
}

/// Held while a run writes its files; closing the folder releases the lock.
#[derive(Debug)]
pub struct DirLock {
    _dir: fs::File,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_is_atomic_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutDir::prepare(dir.path()).unwrap();
        let path = out.write("a.txt", |w| w.write_all(b"first")).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "first");
        let err = out
            .write("a.txt", |w| {
                w.write_all(b"partial")?;
                Err(std::io::Error::other("disk full"))
            })
            .unwrap_err();
        assert_eq!(Exit::of(&err), Exit::Output);
        assert!(err.to_string().contains("disk full"), "{err}");
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "first",
            "old file untouched"
        );
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec!["a.txt"], "no temporary files left");
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
        assert!(
            err.to_string().contains("choose another folder with --out"),
            "{err}"
        );
    }
}
