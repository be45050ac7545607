//! Least privilege for what we run but did not write: cargo (with every
//! build script and proc macro of the crate) and the profiled program.
//!
//! Only perf needs root (or `CAP_SYS_ADMIN`/`CAP_PERFMON`) to sample. Run as
//! root, we give the rest no capabilities at all (effective, permitted,
//! inheritable, ambient and bounding sets emptied), `no_new_privs` (no
//! setuid binary or file capability gives them back), and a user of their
//! own:
//!
//! 1. `RUST_FLAMEGRAPH_USER` (`UID[:GID]`), which the image's entrypoint
//!    sets to `nobody` for the bundled demo (its folder is root's);
//! 2. else the user who ran sudo (`SUDO_UID`, `SUDO_GID`);
//! 3. else the owner of the crate's folder (the image's `/src`), so that a
//!    build writes files that user owns;
//! 4. else root itself, still without capabilities.
//!
//! perf runs as root and samples them all the same (root may sample any
//! process). `--keep-root` keeps the old way: everything as root.

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::exit::Exit;

/// `UID[:GID]` to run cargo and the program as, when run as root.
pub const USER_VAR: &str = "RUST_FLAMEGRAPH_USER";

/// How cargo and the program run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Privileges {
    /// As we run: we are not root, or `--keep-root`.
    #[default]
    Keep,
    /// Without capabilities, with `no_new_privs`, as this user.
    Drop(Identity),
}

/// A user to run as, and why it is that one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// User id (0: root without capabilities).
    pub uid: u32,
    /// Group id; the only group.
    pub gid: u32,
    /// Whom that is, for messages: "uid 1000 (who ran sudo)".
    pub who: String,
    /// The user's home folder (from the password database), for `HOME`.
    pub home: Option<PathBuf>,
}

impl Privileges {
    /// Whether untrusted code gives up root and its capabilities.
    pub fn drops(&self) -> bool {
        matches!(self, Privileges::Drop(_))
    }

    /// What the run gives cargo and the program: see the module's documentation.
    /// `folder` is the crate's folder (or, for `--exec`, the current one).
    pub fn decide(keep_root: bool, folder: &Path) -> Privileges {
        if keep_root || !rustix::process::geteuid().is_root() {
            return Privileges::Keep;
        }
        let number = |var: &str| std::env::var(var).ok()?.trim().parse::<u32>().ok();
        let owner = std::fs::metadata(folder)
            .ok()
            .filter(|m| m.uid() != 0)
            .map(|m| (m.uid(), m.gid()));
        let given = std::env::var(USER_VAR).ok().and_then(|v| {
            let (uid, gid) = v.split_once(':').unwrap_or((&v, ""));
            Some((
                uid.trim().parse::<u32>().ok()?,
                gid.trim().parse::<u32>().ok(),
            ))
        });
        let sudo = number("SUDO_UID").filter(|u| *u != 0);
        let (uid, gid, why) = match (given, sudo, owner) {
            (Some((uid, gid)), _, _) => (
                uid,
                gid.or_else(|| passwd(uid).map(|p| p.1)),
                USER_VAR.to_string(),
            ),
            (None, Some(uid), _) => (
                uid,
                number("SUDO_GID").or_else(|| passwd(uid).map(|p| p.1)),
                "who ran sudo".to_string(),
            ),
            (None, None, Some((uid, gid))) => (
                uid,
                passwd(uid).map(|p| p.1).or(Some(gid)),
                format!("the owner of {}", folder.display()),
            ),
            (None, None, None) => (
                0,
                Some(0),
                "root, as no other user owns the crate".to_string(),
            ),
        };
        Privileges::Drop(Identity {
            uid,
            gid: gid.unwrap_or(uid),
            who: format!("uid {uid} ({why})"),
            home: passwd(uid).map(|p| p.0),
        })
    }

    /// The user, when privileges are dropped.
    pub fn identity(&self) -> Option<&Identity> {
        match self {
            Privileges::Keep => None,
            Privileges::Drop(id) => Some(id),
        }
    }

    /// Makes `cmd`'s process drop its privileges just before it execs (in
    /// the child of a spawn, or in this process for `CommandExt::exec`),
    /// and gives it the user's `HOME`. A parent death signal survives the
    /// change of user (the kernel would clear it).
    pub fn apply(&self, cmd: &mut std::process::Command) {
        use std::os::unix::process::CommandExt;
        let Privileges::Drop(id) = self else {
            return;
        };
        if let Some(home) = &id.home {
            if id.uid != 0 {
                cmd.env("HOME", home);
            }
        }
        let (uid, gid) = (id.uid, id.gid);
        // SAFETY: the hook makes raw system calls only (prctl, capset,
        // setgroups, setresgid, setresuid), which are async-signal-safe and
        // allocate nothing; after a fork it runs in a single-threaded child,
        // and in the exec helper, which has one thread, the per-thread calls
        // cover the whole process.
        unsafe {
            cmd.pre_exec(move || {
                // A session of its own: no controlling terminal, so no
                // `TIOCSTI` typing into the shell that started us (as root, or
                // as the user who ran sudo) and no /dev/tty to open. Its
                // output still goes where ours does.
                rustix::process::setsid()?;
                drop_privileges(uid, gid).map_err(Into::into)
            })
        };
    }

    /// The helper's argument for these privileges: `-`, or `UID:GID`.
    pub(crate) fn to_arg(&self) -> OsString {
        match self {
            Privileges::Keep => "-".into(),
            Privileges::Drop(id) => format!("{}:{}", id.uid, id.gid).into(),
        }
    }

    /// Parses [`Privileges::to_arg`]'s form back.
    pub(crate) fn from_arg(arg: &str) -> Option<Privileges> {
        if arg == "-" {
            return Some(Privileges::Keep);
        }
        let (uid, gid) = arg.split_once(':')?;
        let uid: u32 = uid.parse().ok()?;
        Some(Privileges::Drop(Identity {
            uid,
            gid: gid.parse().ok()?,
            who: format!("uid {uid}"),
            home: passwd(uid).map(|p| p.0),
        }))
    }

    /// Makes sure the user can write `dir` (a target dir, a cargo home),
    /// which cargo creates if missing: when the user could not create it
    /// (its parent is root's, as a fresh `/cache` volume is), it is created
    /// now and given to the user. An existing `dir` the user cannot write
    /// (left by a run as root) is an error saying how to fix it.
    ///
    /// Only a folder the operator named (`create`: `--target-dir`,
    /// `RUST_FLAMEGRAPH_TARGET_DIR`, `CARGO_HOME`) is created: one the crate
    /// chose (its `.cargo/config.toml`'s `target-dir`) must be the user's to
    /// create, or root would make and give away folders anywhere
    /// (`/etc/x/..`). Either way, no `.`, `..` or symlink on the path.
    pub fn prepare_dir(&self, dir: &Path, create: bool) -> Result<()> {
        let Privileges::Drop(id) = self else {
            return Ok(());
        };
        let Some(existing) = dir.ancestors().find(|d| d.symlink_metadata().is_ok()) else {
            return Ok(());
        };
        let meta = std::fs::metadata(existing)?;
        if writable_by(&meta, id) {
            // The user makes the rest, with their own rights.
            return Ok(());
        }
        use std::path::Component;
        let plain = dir.is_absolute()
            && !dir
                .components()
                .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
            && std::fs::canonicalize(existing).ok().as_deref() == Some(existing);
        if !plain {
            return Err(Exit::Build.error(format!(
                "the build's folder {} is not a plain absolute path (`.`, `..` or a symlink \
                 on the way) and {} cannot write it: name a folder that user can write with \
                 --target-dir, or use --keep-root",
                dir.display(),
                id.who
            )));
        }
        if existing != dir && !create {
            return Err(Exit::Build.error(format!(
                "{} cannot be created by {}, who builds (rust-flamegraph runs cargo without \
                 root), and the crate chose it: name a folder that user can write with \
                 --target-dir, or use --keep-root",
                dir.display(),
                id.who
            )));
        }
        if existing == dir {
            return Err(Exit::Build.error(format!(
                "{} belongs to uid {} and cannot be written by {}, who builds (rust-flamegraph \
                 runs cargo without root): give it to that user (`chown -R {}:{} {}`), remove \
                 it, or run the build as root with --keep-root",
                dir.display(),
                meta.uid(),
                id.who,
                id.uid,
                id.gid,
                dir.display()
            )));
        }
        // The folders below `existing`, which the user cannot write: root's,
        // so nobody can swap what we create for a link.
        let missing: Vec<&Path> = dir.ancestors().take_while(|d| *d != existing).collect();
        for d in missing.into_iter().rev() {
            // Only what is created now is given away: a folder that
            // appeared meanwhile is not ours to give.
            match std::fs::create_dir(d) {
                Ok(()) => {}
                Err(e) => {
                    return Err(anyhow::Error::new(e).context(format!(
                        "cannot create {} for the build of {}: create it, writable by that \
                         user, or use --keep-root",
                        d.display(),
                        id.who
                    )))
                }
            }
            std::os::unix::fs::lchown(d, Some(id.uid), Some(id.gid))
                .map_err(|e| anyhow::anyhow!("cannot give {} to {}: {e}", d.display(), id.who))?;
        }
        Ok(())
    }
}

/// Whether `id` may create files in the folder `meta` describes, by its mode.
fn writable_by(meta: &std::fs::Metadata, id: &Identity) -> bool {
    let mode = meta.mode();
    if meta.uid() == id.uid {
        mode & 0o200 != 0
    } else if meta.gid() == id.gid {
        mode & 0o020 != 0
    } else {
        mode & 0o002 != 0
    }
}

/// The home folder and primary group of `uid`, from the password database.
fn passwd(uid: u32) -> Option<(PathBuf, u32)> {
    use std::os::unix::ffi::OsStrExt;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: getpwuid_r fills `pwd` with pointers into `buf`, which both
    // outlive their use here; `result` says whether an entry was found.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(
            uid,
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        );
        if rc != 0 || result.is_null() || pwd.pw_dir.is_null() {
            return None;
        }
        let dir = std::ffi::CStr::from_ptr(pwd.pw_dir);
        let dir = PathBuf::from(std::ffi::OsStr::from_bytes(dir.to_bytes()));
        Some((dir, pwd.pw_gid))
    }
}

/// Drops every capability (the bounding set too, while we may), sets
/// `no_new_privs`, and becomes `uid`/`gid` with no other group, keeping the
/// parent death signal. For a single-threaded process about to exec.
fn drop_privileges(uid: u32, gid: u32) -> rustix::io::Result<()> {
    use rustix::io::Errno;
    use rustix::thread::{CapabilitySet, CapabilitySets};
    let death = rustix::process::parent_process_death_signal()?;
    rustix::thread::set_no_new_privs(true)?;
    // Needs CAP_SETPCAP, which goes with the change of user: first.
    for cap in 0..64 {
        match rustix::thread::remove_capability_from_bounding_set(CapabilitySet::from_bits_retain(
            1 << cap,
        )) {
            // Past the last capability this kernel knows.
            Ok(()) | Err(Errno::INVAL) => {}
            // Without CAP_SETPCAP a user other than root still ends with
            // none: no_new_privs stops setuid binaries and file capabilities.
            Err(Errno::PERM) if uid != 0 => break,
            Err(e) => return Err(e),
        }
    }
    match rustix::thread::clear_ambient_capability_set() {
        Ok(()) | Err(Errno::INVAL) => {}
        Err(e) => return Err(e),
    }
    let (u, g) = (
        rustix::process::Uid::from_raw(uid),
        rustix::process::Gid::from_raw(gid),
    );
    rustix::thread::set_thread_groups(&[g])?;
    rustix::thread::set_thread_res_gid(g, g, g)?;
    rustix::thread::set_thread_res_uid(u, u, u)?;
    rustix::thread::set_capabilities(
        None,
        CapabilitySets {
            effective: CapabilitySet::empty(),
            permitted: CapabilitySet::empty(),
            inheritable: CapabilitySet::empty(),
        },
    )?;
    if death.is_some() {
        rustix::process::set_parent_process_death_signal(death)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(uid: u32) -> Privileges {
        Privileges::Drop(Identity {
            uid,
            gid: uid,
            who: format!("uid {uid}"),
            home: None,
        })
    }

    #[test]
    fn a_build_folder_with_dot_dot_or_a_symlink_is_refused_and_nothing_is_given_away() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let root_owned = dir.path().join("rootdir");
        std::fs::create_dir_all(root_owned.join("sub")).unwrap();
        let owner = |p: &Path| std::fs::metadata(p).unwrap().uid();
        let (before, sub_before) = (owner(&root_owned), owner(&root_owned.join("sub")));
        // The crate's `target-dir = "…/rootdir/nx/../sub"`: root used to
        // create `nx` and give `rootdir` (via `nx/..`) and `sub` away.
        let sneaky = root_owned.join("nx/../sub");
        assert!(user(4242).prepare_dir(&sneaky, false).is_err());
        assert!(user(4242).prepare_dir(&sneaky, true).is_err());
        assert!(!root_owned.join("nx").exists());
        assert_eq!(owner(&root_owned), before);
        assert_eq!(owner(&root_owned.join("sub")), sub_before);
        // Through a symlink: refused, whoever named it.
        std::os::unix::fs::symlink(&root_owned, dir.path().join("link")).unwrap();
        assert!(user(4242)
            .prepare_dir(&dir.path().join("link/new"), true)
            .is_err());
        assert!(!root_owned.join("new").exists());
    }

    #[test]
    fn only_a_folder_the_operator_named_is_created_for_the_user() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        // The crate chose it, and the user cannot create it: an error, and
        // nothing made.
        let chosen = dir.path().join("etc-like/dropin.d");
        std::fs::create_dir(dir.path().join("etc-like")).unwrap();
        assert!(user(4242).prepare_dir(&chosen, false).is_err());
        assert!(!chosen.exists());
        // The operator named it (--target-dir, CARGO_HOME): made, and theirs.
        assert!(user(4242).prepare_dir(&chosen, true).is_ok());
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&chosen).unwrap().uid(), 4242);
    }

    #[test]
    fn the_helper_argument_parses_back() {
        assert_eq!(
            Privileges::from_arg(&Privileges::Keep.to_arg().to_string_lossy()),
            Some(Privileges::Keep)
        );
        let id = Identity {
            uid: 1234,
            gid: 99,
            who: "x".into(),
            home: None,
        };
        let arg = Privileges::Drop(id).to_arg();
        assert_eq!(arg, "1234:99");
        let Some(Privileges::Drop(back)) = Privileges::from_arg(&arg.to_string_lossy()) else {
            panic!("{arg:?} did not parse");
        };
        assert_eq!((back.uid, back.gid), (1234, 99));
        assert_eq!(Privileges::from_arg("12"), None);
        assert_eq!(Privileges::from_arg("a:b"), None);
    }

    #[test]
    fn keep_root_and_non_root_keep_privileges() {
        assert_eq!(Privileges::decide(true, Path::new("/")), Privileges::Keep);
        if !rustix::process::geteuid().is_root() {
            assert_eq!(Privileges::decide(false, Path::new("/")), Privileges::Keep);
        }
    }

    #[test]
    fn write_access_follows_the_mode_bits() {
        let dir = tempfile::tempdir().unwrap();
        let meta = std::fs::metadata(dir.path()).unwrap();
        let id = |uid, gid| Identity {
            uid,
            gid,
            who: String::new(),
            home: None,
        };
        // A tempdir is 0700.
        assert!(writable_by(&meta, &id(meta.uid(), 1)));
        assert!(!writable_by(&meta, &id(meta.uid() + 1, meta.gid())));
        assert!(passwd(0).is_some_and(|(home, gid)| home.is_absolute() && gid == 0));
    }
}
