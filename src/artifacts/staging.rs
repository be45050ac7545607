//! Our private folder inside the output folder, where a set is written
//! ([`Staging`]), and the folder operations it shares with the output folder.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;

use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use super::names::STAGING_PREFIX;

/// Our private folder inside the output folder, where a set is written:
/// created by us, mode 0700, locked (flock) while we live.
#[derive(Debug)]
pub(super) struct Staging {
    pub(super) name: String,
    pub(super) fd: OwnedFd,
}

impl Staging {
    /// Creates one in the output folder `dir`.
    pub(super) fn create(dir: &OwnedFd) -> io::Result<Staging> {
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

    pub(super) fn create_file(&self, name: &str) -> io::Result<File> {
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
    pub(super) fn remove(self, dir: &OwnedFd) {
        empty_folder(&self.fd);
        if same_file(dir, self.name.as_str(), &self.fd) {
            let _ = rustix::fs::unlinkat(dir, self.name.as_str(), AtFlags::REMOVEDIR);
        }
    }
}

/// Unlinks the files in the folder `fd` (not following symlinks, not
/// descending); returns the bytes they held.
pub(super) fn empty_folder(fd: &OwnedFd) -> u64 {
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
pub(super) fn same_file<P: rustix::path::Arg>(dir: &OwnedFd, name: P, fd: &OwnedFd) -> bool {
    match (
        rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW),
        rustix::fs::fstat(fd),
    ) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    }
}

/// 64 unpredictable-enough bits for a folder name (std's hasher keys are
/// seeded from the OS; the counter and clock make each call differ).
pub(super) fn random() -> u64 {
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
