//! Opening files where someone else may have put a trap.
//!
//! We run as root (natively through sudo, or in a container) and read files
//! in folders that belong to someone else: the output folder, the crate, the
//! binaries a recording names. Their owner can replace any name there with a
//! symlink to a root-only file, a FIFO that never delivers a byte, or a sparse
//! file of terabytes. So every such open goes through here:
//!
//! - **No symlink is followed unless root or we made it**, in a folder that
//!   root or we own (`/lib → usr/lib`, `/var/run → /run`): the path is walked
//!   one component at a time relative to a descriptor, each opened with
//!   `O_NOFOLLOW` (in one `openat2(RESOLVE_NO_SYMLINKS)` call when the path
//!   holds no symlink at all, where the kernel has it). A symlink planted by
//!   another user is refused, with a message saying to name the real path.
//! - **Non-blocking, regular, bounded**: files are opened `O_NONBLOCK` (a FIFO
//!   does not hang the open) and accepted only if `fstat` says they are regular
//!   files no larger than the caller's bound; [`read_bounded`] never reads past
//!   it, whatever the file grows to.
//! - **Files the user names are read with the user's rights** ([`open_input`]):
//!   under sudo (`SUDO_UID`), the open happens on a thread that has taken the
//!   invoking user's uid and gid, so `--diff-against /root/secret` is refused
//!   as it would be without sudo. Only the primary group is taken: a file
//!   readable through a supplementary group alone is refused (conservative).
//!   Without sudo, root is the one who asked, and opens as root.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Symlinks followed in one path at most (the kernel's own limit).
const MAX_LINKS: usize = 40;

/// What an input named by the user may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// A regular file only (an earlier run's `stacks.folded`).
    Regular,
    /// Also a pipe or a device, if it belongs to root or to whoever opens
    /// it (`/dev/stdin`, `<(command)`, `/dev/zero`): never one that the owner
    /// of a folder planted. Such input is read blocking.
    Stream,
}

/// Opens the regular file at `path` for reading, as root would but without
/// following another user's symlinks, without blocking on a FIFO, and only
/// if it holds at most `max` bytes.
pub fn open_file(path: &Path, max: u64) -> io::Result<File> {
    let fd = resolve(path, Want::File)?;
    regular(fd, max)
}

/// Opens `name` (one plain name: no `/`, no symlink) in the folder `dir` for
/// reading: a regular file of at most `max` bytes, opened non-blocking.
pub fn open_file_in(dir: impl AsFd, name: &str, max: u64) -> io::Result<File> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(io::Error::other(format!(
            "{name:?} is not a plain file name"
        )));
    }
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let fd = match rustix::fs::openat2(
        &dir,
        name,
        flags,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        Err(Errno::NOSYS | Errno::INVAL | Errno::PERM | Errno::AGAIN) => {
            rustix::fs::openat(&dir, name, flags | OFlags::NOFOLLOW, Mode::empty())?
        }
        Err(e) => return Err(e.into()),
    };
    regular(fd, max)
}

/// Opens (with `create`, first creates, like `mkdir -p`) the folder at
/// `path`, without following another user's symlinks: a folder swapped for
/// a symlink while we look is refused, not followed.
pub fn open_folder(path: &Path, create: bool) -> io::Result<OwnedFd> {
    resolve(path, Want::Folder { create })
}

/// Opens a file the user named on the command line (`--from-folded`,
/// `--perfdata`, `--diff-against`) with the user's rights (see the module's
/// documentation), never following a symlink another user planted.
/// `/dev/stdin` and `/dev/fd/N` (our own descriptors) are opened as they are.
pub fn open_input(path: &Path, accept: Accept) -> io::Result<File> {
    let own = [
        Path::new("/dev/stdin"),
        Path::new("/dev/fd"),
        Path::new("/proc/self/fd"),
    ];
    if accept == Accept::Stream && own.iter().any(|p| path.starts_with(p)) {
        return File::open(path);
    }
    as_invoking_user(|| {
        let fd = resolve(path, Want::File)?;
        let st = rustix::fs::fstat(&fd)?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Fifo | FileType::CharacterDevice | FileType::BlockDevice
                if accept == Accept::Stream && trusted(st.st_uid) =>
            {
                // Ours to wait on: read it blocking.
                let flags = rustix::fs::fcntl_getfl(&fd)?;
                rustix::fs::fcntl_setfl(&fd, flags - OFlags::NONBLOCK)?;
                Ok(File::from(fd))
            }
            _ => regular(fd, u64::MAX),
        }
    })
}

/// Reads all of `file`, refusing it if it holds more than `max` bytes (it
/// may grow while we read: we never read more than `max + 1`).
pub fn read_bounded(file: File, max: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::other(format!("it is larger than {max} bytes")));
    }
    Ok(bytes)
}

/// The user who ran us through sudo (`SUDO_UID`, `SUDO_GID`), when we are
/// root: files they name are opened with their rights.
pub fn invoking_user() -> Option<(u32, u32)> {
    if !rustix::process::geteuid().is_root() {
        return None;
    }
    let id = |var: &str| std::env::var(var).ok()?.parse::<u32>().ok();
    let uid = id("SUDO_UID").filter(|&uid| uid != 0)?;
    Some((uid, id("SUDO_GID").unwrap_or(uid)))
}

/// Runs `open` with the invoking user's uid and gid (on a thread of its own:
/// Linux credentials are per thread), or as we are without sudo.
fn as_invoking_user<T: Send>(open: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    use rustix::thread::{set_thread_groups, set_thread_res_gid, set_thread_res_uid};
    let Some((uid, gid)) = invoking_user() else {
        return open();
    };
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                let (uid, gid) = (
                    rustix::fs::Uid::from_raw(uid),
                    rustix::fs::Gid::from_raw(gid),
                );
                // rustix makes the system calls itself: this thread only.
                set_thread_groups(&[gid])?;
                set_thread_res_gid(gid, gid, gid)?;
                set_thread_res_uid(uid, uid, uid)?;
                open()
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the thread opening it panicked")))
    })
}

/// Whether a file of `uid` may be trusted: root's, or ours (the thread's
/// effective uid, which [`as_invoking_user`] changes).
fn trusted(uid: u32) -> bool {
    uid == 0 || uid == rustix::process::geteuid().as_raw()
}

/// Accepts `fd` if it is a regular file of at most `max` bytes.
fn regular(fd: OwnedFd, max: u64) -> io::Result<File> {
    let st = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(io::Error::other(
            "it is not a regular file (a pipe, a device or a folder): not read",
        ));
    }
    let size = u64::try_from(st.st_size).unwrap_or(0);
    if size > max {
        return Err(io::Error::other(format!(
            "it holds {size} bytes, more than the {max} accepted here: not read"
        )));
    }
    Ok(File::from(fd))
}

#[derive(Debug, Clone, Copy)]
enum Want {
    File,
    Folder { create: bool },
}

impl Want {
    fn flags(self) -> OFlags {
        match self {
            Want::File => OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Want::Folder { .. } => OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        }
    }
}

/// Opens `path` as `want` says; see the module's documentation.
fn resolve(path: &Path, want: Want) -> io::Result<OwnedFd> {
    // Most paths hold no symlink: one call, where the kernel has openat2.
    if let Ok(fd) = rustix::fs::openat2(
        rustix::fs::CWD,
        path,
        want.flags(),
        Mode::empty(),
        ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    ) {
        return Ok(fd);
    }
    walk(path, want)
}

/// The names of `path` to walk, last first (popped from the end).
fn push_components(path: &Path, todo: &mut Vec<OsString>) {
    for c in path.components().rev() {
        todo.push(match c {
            Component::RootDir => OsString::from("/"),
            Component::CurDir => continue,
            other => other.as_os_str().to_os_string(),
        });
    }
}

/// Walks `path` one name at a time from the current folder (or `/`), each
/// opened relative to the folder before it with `O_NOFOLLOW`; a symlink is
/// followed only if root or we own it and the folder holding it.
fn walk(path: &Path, want: Want) -> io::Result<OwnedFd> {
    let folder = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let entry = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut dir = rustix::fs::openat(rustix::fs::CWD, ".", folder, Mode::empty())?;
    let mut todo = Vec::new();
    push_components(path, &mut todo);
    let mut links = 0;
    while let Some(name) = todo.pop() {
        if name == "/" {
            dir = rustix::fs::open("/", folder, Mode::empty())?;
            continue;
        }
        let last = todo.is_empty();
        if name == ".." {
            dir = rustix::fs::openat(&dir, "..", folder, Mode::empty())?;
            continue;
        }
        let name = name.as_os_str();
        let found = match rustix::fs::openat(&dir, name, entry, Mode::empty()) {
            Err(Errno::NOENT) if matches!(want, Want::Folder { create: true }) => {
                match rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o777)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                rustix::fs::openat(&dir, name, entry, Mode::empty())?
            }
            other => other?,
        };
        let st = rustix::fs::fstat(&found)?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Symlink => {
                links += 1;
                let holder = rustix::fs::fstat(&dir)?.st_uid;
                if links > MAX_LINKS {
                    return Err(Errno::LOOP.into());
                }
                if !trusted(st.st_uid) || !trusted(holder) {
                    return Err(untrusted_link(path, name, st.st_uid, holder));
                }
                // Read through the descriptor: the very link we checked.
                let target = rustix::fs::readlinkat(&found, c"", Vec::new())?;
                push_components(Path::new(OsStr::from_bytes(target.as_bytes())), &mut todo);
            }
            FileType::Directory if !last => dir = found,
            _ if !last => return Err(Errno::NOTDIR.into()),
            _ => {
                // Opened for real by name again, still without following:
                // accepted only if it is the file we just looked at.
                let fd =
                    rustix::fs::openat(&dir, name, want.flags() | OFlags::NOFOLLOW, Mode::empty())?;
                let now = rustix::fs::fstat(&fd)?;
                if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) {
                    return Err(io::Error::other(
                        "it was replaced while being opened: not read",
                    ));
                }
                return Ok(fd);
            }
        }
    }
    // The path ends in a folder (`/`, `..`, `x/.`).
    match want {
        Want::File => Err(Errno::ISDIR.into()),
        Want::Folder { .. } => Ok(rustix::fs::openat(&dir, ".", want.flags(), Mode::empty())?),
    }
}

fn untrusted_link(path: &Path, name: &OsStr, owner: u32, holder: u32) -> io::Error {
    io::Error::other(format!(
        "{} is a symlink (owner uid {owner}, in a folder of uid {holder}) that we do not follow \
         in a path given to a privileged run: only root's and our own symlinks are; name the \
         real path{}",
        name.to_string_lossy(),
        if path.as_os_str() == name {
            String::new()
        } else {
            format!(" instead of {}", path.display())
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_files_open_and_traps_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a");
        std::fs::write(&file, "hello").unwrap();
        assert_eq!(
            read_bounded(open_file(&file, 5).unwrap(), 5).unwrap(),
            b"hello"
        );
        let err = open_file(&file, 4).unwrap_err().to_string();
        assert!(err.contains("more than the 4"), "{err}");
        let err = read_bounded(open_file(&file, 5).unwrap(), 3).unwrap_err();
        assert!(err.to_string().contains("larger than 3"), "{err}");
        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let err = open_file(&fifo, 100).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let err = open_file_in(
            rustix::fs::open(dir.path(), OFlags::RDONLY, Mode::empty()).unwrap(),
            "fifo",
            100,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("not a regular file"), "{err}");
        assert!(open_file(dir.path(), 100).is_err());
    }

    #[test]
    fn our_own_symlinks_are_followed_and_folders_created() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::fs::write(dir.path().join("real/f"), "x").unwrap();
        std::os::unix::fs::symlink("real", dir.path().join("link")).unwrap();
        std::os::unix::fs::symlink("../real/f", dir.path().join("real/up")).unwrap();
        assert!(open_file(&dir.path().join("link/f"), 1).is_ok());
        assert!(open_file(&dir.path().join("link/up"), 1).is_ok());
        assert!(open_file(&dir.path().join("link/../real/./f"), 1).is_ok());
        let made = dir.path().join("link/new/deeper");
        open_folder(&made, true).unwrap();
        assert!(dir.path().join("real/new/deeper").is_dir());
        std::os::unix::fs::symlink("loop", dir.path().join("loop")).unwrap();
        assert!(open_file(&dir.path().join("loop"), 1).is_err());
    }
}
