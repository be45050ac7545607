//! What to tell the user when the output folder cannot be created or written.

use std::io;
use std::path::Path;

use rustix::io::Errno;

use crate::exit::Exit;

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
pub(super) fn folder_error(path: &Path, e: &io::Error) -> anyhow::Error {
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
pub(super) fn write_error(path: &Path, what: &str, e: &io::Error) -> anyhow::Error {
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
#[cfg(test)]
mod tests {
    use super::*;

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
}
