//! Which container engine the profiler runs in, if any, and what each engine
//! needs from its user: the messages that name a flag or a command (the
//! capability perf needs, a mounted folder, running as root) ask here, so that
//! a Podman user is not told Docker's flags.
//!
//! The engines mark their containers: Docker with an empty `/.dockerenv`,
//! Podman with `/run/.containerenv` and the variable `container=podman` in
//! the container's first process's environment. Whether the engine runs
//! rootless is told by the user namespace ([`rootless`]). Other runtimes (LXC, systemd-nspawn, Kubernetes'
//! containerd) leave neither file: for them [`engine`] is `None`, and the
//! profiler speaks as on a host.

use std::ffi::OsStr;
use std::path::Path;
use std::sync::OnceLock;

/// A container engine we recognise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Docker (Docker Engine, Docker Desktop, and Colima or OrbStack, which
    /// run Docker's engine).
    Docker,
    /// Podman, rootful or rootless.
    Podman,
}

impl Engine {
    /// The engine's command, as the user types it: `docker`, `podman`.
    pub fn command(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Podman => "podman",
        }
    }

    /// The engine's name in prose: `Docker`, `Podman`.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Docker => "Docker",
            Engine::Podman => "Podman",
        }
    }

    /// The `run` flags that let `perf_event_open` through the engine's
    /// default seccomp profile, as advice: Docker's allows it with
    /// CAP_SYS_ADMIN or, from Docker 23, CAP_PERFMON; Podman's only with
    /// CAP_SYS_ADMIN (PERFMON, or no capability, fails there unless seccomp is
    /// turned off).
    pub fn perf_flags(self) -> &'static str {
        match self {
            Engine::Docker => "--cap-add=SYS_ADMIN (or, from Docker 23, --cap-add=PERFMON)",
            Engine::Podman => "--cap-add=SYS_ADMIN",
        }
    }
}

/// The engine this process runs under, if any (detected once).
pub fn engine() -> Option<Engine> {
    static ENGINE: OnceLock<Option<Engine>> = OnceLock::new();
    *ENGINE.get_or_init(|| {
        let var = std::env::var_os("container");
        detect(Path::new("/"), var.as_deref())
    })
}

/// Whether we run in a Docker or Podman container.
pub fn in_container() -> bool {
    engine().is_some()
}

/// Whether the container's root is not the host's (rootless Podman or
/// Docker, or an engine that remaps users): its capabilities are the user
/// namespace's, so they pass the engine's seccomp filter but not the host
/// kernel's own checks, and `kernel.perf_event_paranoid` applies as to any
/// user. Read from `/proc/self/uid_map` (Podman's `/run/.containerenv` says
/// `rootless=1` only to `--privileged` containers).
pub fn rootless() -> bool {
    static ROOTLESS: OnceLock<bool> = OnceLock::new();
    *ROOTLESS.get_or_init(|| {
        std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|map| !host_uids(&map))
    })
}

/// The engine whose marks are under `root` (`/` but in tests), given the
/// `container` environment variable `var`. Podman's marks win: a Podman
/// container may carry an image's stray `/.dockerenv`, Docker's never has
/// `/run/.containerenv`.
pub fn detect(root: &Path, var: Option<&OsStr>) -> Option<Engine> {
    if root.join("run/.containerenv").exists() || var == Some(OsStr::new("podman")) {
        Some(Engine::Podman)
    } else if root.join(".dockerenv").exists() {
        Some(Engine::Docker)
    } else {
        None
    }
}

/// Whether a `uid_map` maps every user id to itself: the host's, not a user
/// namespace's.
fn host_uids(uid_map: &str) -> bool {
    let mut ranges = uid_map.lines().map(|l| {
        let f: Vec<u64> = l
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        (f.first().copied(), f.get(1).copied(), f.get(2).copied())
    });
    matches!(ranges.next(), Some((Some(0), Some(0), Some(n))) if n == u64::from(u32::MAX))
        && ranges.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = root.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        root
    }

    #[test]
    fn each_engine_by_its_marks() {
        let host = root_with(&[]);
        assert_eq!(detect(host.path(), None), None);
        assert_eq!(detect(host.path(), Some(OsStr::new("lxc"))), None);

        let docker = root_with(&[(".dockerenv", "")]);
        assert_eq!(detect(docker.path(), None), Some(Engine::Docker));

        // What Podman 4.3 writes in a container that is not --privileged.
        let podman = root_with(&[("run/.containerenv", "")]);
        assert_eq!(detect(podman.path(), None), Some(Engine::Podman));
        // The variable alone (a container whose /run is a fresh tmpfs) ...
        assert_eq!(
            detect(host.path(), Some(OsStr::new("podman"))),
            Some(Engine::Podman)
        );
        // ... and both marks: Podman's win.
        let both = root_with(&[(".dockerenv", ""), ("run/.containerenv", "")]);
        assert_eq!(detect(both.path(), None), Some(Engine::Podman));
    }

    #[test]
    fn rootless_is_a_user_namespace() {
        // The host's, and a rootful container's.
        assert!(host_uids("         0          0 4294967295\n"));
        // Rootless Podman for user 1000 with subordinate ids.
        assert!(!host_uids(
            "         0       1000          1\n         1     100000      65536\n"
        ));
        // Docker's userns-remap.
        assert!(!host_uids("         0     165536      65536\n"));
        assert!(!host_uids(""));
    }

    #[test]
    fn each_engine_names_its_own_command_and_flag() {
        assert_eq!(Engine::Docker.command(), "docker");
        assert_eq!(Engine::Podman.command(), "podman");
        // SYS_ADMIN first: Docker before 23 refuses PERFMON outright
        // ("unknown capability").
        assert!(Engine::Docker
            .perf_flags()
            .starts_with("--cap-add=SYS_ADMIN"));
        assert!(Engine::Docker.perf_flags().contains("PERFMON"));
        assert_eq!(Engine::Podman.perf_flags(), "--cap-add=SYS_ADMIN");
    }
}
