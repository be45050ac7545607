//! The image under Podman, with the Podman commands of docs/containers.md (`podman run`,
//! `podman-compose run` and `up`), checked as tests/docker.rs checks
//! Docker's; and the permission error under each engine, which must name the
//! flag that works on that engine. The image is the one Docker builds, copied into Podman's
//! storage (`docker save | podman load`, as CI builds it once with Docker).
//! Ignored unless asked for (`-- --include-ignored`); then failing without
//! Podman or Docker.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use common::*;

const IMAGE: &str = "rust-flamegraph";
/// A host user that is not root, to own the mounted output folder.
const OWNER: u32 = 4321;

/// Podman answers.
fn podman_available() -> bool {
    let probe = Command::new("podman")
        .args(["info", "--format", "{{.Version.Version}}"])
        .output()
        .map_err(|e| format!("cannot run podman: {e}"))
        .and_then(|o| {
            if o.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&o.stderr).trim().to_string())
            }
        });
    require("Podman", probe)
}

/// How the engines are set up for the tests, once per test binary.
struct Setup {
    /// A containers.conf for machines that refuse Podman's default rlimits
    /// ("error setting rlimit type 7", as this project's test machines do): a
    /// property of the machine, not of the image, so it goes in Podman's
    /// configuration and the commands stay those of docs/containers.md.
    containers_conf: Option<PathBuf>,
}

/// Docker's image, then the same image in Podman's storage.
fn setup() -> Option<&'static Setup> {
    static SETUP: OnceLock<Result<Setup, String>> = OnceLock::new();
    if !image_ready() || !podman_available() {
        return None;
    }
    let setup = SETUP.get_or_init(|| {
        copy_image_to_podman()?;
        // Podman's defaults first; the machine's limits only if refused.
        let probe =
            run(Command::new("podman").args(["run", "--rm", "--entrypoint", "true", IMAGE]));
        let containers_conf = if probe.status.success() {
            None
        } else if text(&probe).contains("error setting rlimit") {
            let conf = std::env::temp_dir().join("rust-flamegraph-tests-containers.conf");
            std::fs::write(
                &conf,
                "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=20000:20000\"]\n",
            )
            .map_err(|e| format!("cannot write {}: {e}", conf.display()))?;
            loud(&format!(
                "NOTE: this machine refuses Podman's default rlimits; the tests run \
                 Podman with CONTAINERS_CONF={}",
                conf.display()
            ));
            Some(conf)
        } else {
            return Err(format!("podman cannot run the image: {}", text(&probe)));
        };
        Ok(Setup { containers_conf })
    });
    match setup {
        Ok(s) => Some(s),
        Err(e) => panic!("{e}"),
    }
}

/// `docker save | podman load`, unless Podman already holds that very image.
fn copy_image_to_podman() -> Result<(), String> {
    let id = |engine: &str| -> Option<String> {
        let out = Command::new(engine)
            .args(["image", "inspect", "--format", "{{.Id}}", IMAGE])
            .output()
            .ok()?;
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && !id.is_empty())
            .then(|| id.trim_start_matches("sha256:").to_string())
    };
    let docker_id = id("docker").ok_or("docker does not have the image it just built")?;
    if id("podman").as_deref() == Some(docker_id.as_str()) {
        return Ok(());
    }
    let mut save = Command::new("docker")
        .args(["save", IMAGE])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run docker save: {e}"))?;
    let load = Command::new("podman")
        .args(["load", "-q"])
        .stdin(save.stdout.take().unwrap())
        .output()
        .map_err(|e| format!("cannot run podman load: {e}"))?;
    let saved = save.wait().map_err(|e| e.to_string())?;
    if !saved.success() || !load.status.success() {
        return Err(format!(
            "docker save | podman load failed ({saved}, {}): {}",
            load.status,
            text(&load)
        ));
    }
    match id("podman") {
        Some(id) if id == docker_id => Ok(()),
        other => Err(format!(
            "podman loaded {other:?}, not Docker's image {docker_id}"
        )),
    }
}

/// `command` (`podman`, `podman-compose`) set up for this machine, in `dir`.
fn podman_command(setup: &Setup, command: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(command);
    cmd.current_dir(dir);
    if let Some(conf) = &setup.containers_conf {
        cmd.env("CONTAINERS_CONF", conf);
    }
    cmd
}

/// A scratch folder with `fg/` owned by [`OWNER`], as on a user's host.
fn host_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let fg = dir.path().join("fg");
    std::fs::create_dir(&fg).unwrap();
    std::os::unix::fs::chown(&fg, Some(OWNER), Some(OWNER)).unwrap();
    dir
}

/// The files of a run belong to the owner of the mounted folder, as under Docker.
fn assert_owned_by_folder_owner(fg: &Path) {
    for name in ["flamegraph.svg", "stacks.folded"] {
        let meta = fg.join(name).metadata().unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (OWNER, OWNER),
            "{name} belongs to the folder's owner"
        );
    }
}

/// The image's glibc (trixie's, named from its `libc6-dbg` debug files) shows
/// by name: an allocator frame under a demo function, no frame left as
/// `[libc.so.6]`.
fn assert_glibc_frames_named(fg: &Path) {
    let folded = std::fs::read_to_string(fg.join("stacks.folded")).unwrap();
    let mut alloc_under_demo = 0;
    for (stack, count) in stacks(&folded) {
        let frames: Vec<&str> = stack.split(';').collect();
        let demo = frames.iter().position(|f| f.starts_with("demo::"));
        let alloc = frames
            .iter()
            .position(|f| ["malloc", "free", "realloc", "_int_malloc", "_int_free"].contains(f));
        if matches!((demo, alloc), (Some(d), Some(a)) if d < a) {
            alloc_under_demo += count;
        }
    }
    assert!(
        alloc_under_demo > 0,
        "no named allocator frame under a demo function:\n{folded}"
    );
    assert!(
        !folded.contains("[libc.so.6]"),
        "glibc frames without a name:\n{folded}"
    );
}

#[test]
#[ignore = "needs a Docker engine, Podman and root: cargo test -- --include-ignored"]
fn readme_podman_command_writes_the_flamegraph() {
    let Some(setup) = setup() else {
        return;
    };
    let host = host_folder();
    // The command of the README and docs/containers.md, with the demo's
    // arguments of tests/postprocess.rs
    // (~1.5k samples: enough to meet glibc's allocator).
    let out = run(podman_command(setup, "podman", host.path()).args([
        "run",
        "--rm",
        "--cap-add=SYS_ADMIN",
        "-v",
        "./fg:/out:Z",
        IMAGE,
        "--",
        "--iters",
        "1000",
        "--size",
        "100000",
    ]));
    assert_exit(&out, 0, &["complete stacks"]);
    let fg = host.path().join("fg");
    assert_demo_profile(&fg);
    assert_owned_by_folder_owner(&fg);
    assert_glibc_frames_named(&fg);
}

/// `--off-cpu` under Podman, with the command of docs/off-cpu.md: each
/// wait weighed within 10 % of what the demo measured, drawn under the
/// function that waited, and the files the folder owner's, as under Docker.
#[test]
#[ignore = "needs a Docker engine, Podman and root: cargo test -- --include-ignored"]
fn off_cpu_under_podman_weighs_the_demos_waits() {
    let Some(setup) = setup() else {
        return;
    };
    let host = host_folder();
    let out = with_no_records_lost(|| {
        run(podman_command(setup, "podman", host.path()).args([
            "run",
            "--rm",
            "--cap-add=SYS_ADMIN",
            "--cap-add=IPC_LOCK",
            "-v",
            "./fg:/out:Z",
            IMAGE,
            "--off-cpu",
            "--",
            "--waits",
            "300",
        ]))
    });
    assert_exit(&out, 0, &["on and off the CPU"]);
    let fg = host.path().join("fg");
    assert_off_cpu_demo_profile(&fg, &String::from_utf8_lossy(&out.stdout));
    assert_owned_by_folder_owner(&fg);
}

/// Runs its closure when dropped.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

#[test]
#[ignore = "needs a Docker engine, Podman, podman-compose and root: cargo test -- --include-ignored"]
fn podman_compose_run_and_up_write_the_flamegraph() {
    let Some(setup) = setup() else {
        return;
    };
    let probe = Command::new("podman-compose")
        .arg("version")
        .output()
        .map_err(|e| format!("cannot run podman-compose: {e}"))
        .and_then(|o| match o.status.success() {
            true => Ok(()),
            false => Err(text(&o)),
        });
    if !require("podman-compose", probe) {
        return;
    }
    let host = host_folder();
    let fg = host.path().join("fg");
    let project = format!("rust-flamegraph-podman-test-{}", std::process::id());
    let compose = |args: &[&str]| {
        run(podman_command(setup, "podman-compose", &repo())
            .env("FG_OUT", &fg)
            .args(["-p", &project])
            .args(args))
    };
    // At the end, passed or failed; podman-compose 1.0.3's `down --volumes`
    // leaves the volume and the network.
    let _clean_up = OnDrop(|| {
        let _ = compose(&["down", "--volumes"]);
        let podman = |args: &[&str]| podman_command(setup, "podman", &repo()).args(args).output();
        let _ = podman(&["volume", "rm", "-f", &format!("{project}_cargo-cache")]);
        let _ = podman(&["network", "rm", "-f", &format!("{project}_default")]);
    });
    // As docs/containers.md says: --no-deps, as podman-compose 1.0.3's `run`
    // otherwise builds and starts every service of the file first; and a
    // second `--`, as it consumes the first. It exits 0 whatever the
    // container's exit code: the files are what tell.
    let mut args = vec!["run", "--no-deps", "--rm", "profile", "--"];
    args.extend(SMALL_RUN);
    let out = compose(&args);
    assert!(out.status.success(), "{}", text(&out));
    assert_demo_profile(&fg);
    assert_owned_by_folder_owner(&fg);

    std::fs::remove_file(fg.join("flamegraph.svg")).unwrap();
    let up = compose(&["up"]);
    assert!(up.status.success(), "{}", text(&up));
    let samples = assert_demo_profile(&fg);
    assert!(
        samples > 1000,
        "`up` runs the default demo: {samples} samples"
    );
}

#[test]
#[ignore = "needs a Docker engine, Podman and root: cargo test -- --include-ignored"]
fn without_sys_admin_podman_is_told_its_own_flag() {
    let Some(setup) = setup() else {
        return;
    };
    // No capability, and PERFMON, which Podman's seccomp profile does not
    // honour for perf_event_open: both refused, both told SYS_ADMIN.
    for caps in [&[][..], &["--cap-add=PERFMON"][..]] {
        let host = host_folder();
        let out = run(podman_command(setup, "podman", host.path())
            .args(["run", "--rm"])
            .args(caps)
            .args(["-v", "./fg:/out:Z", IMAGE, "--", "--iters", "200"]));
        assert_exit(
            &out,
            3,
            &[
                "perf is not permitted in this Podman container",
                "add --cap-add=SYS_ADMIN to `podman run`",
            ],
        );
        let log = text(&out);
        assert!(!log.contains("docker run"), "{log}");
        assert!(!log.contains("--cap-add=PERFMON"), "{log}");
        assert!(!log.contains("recording"), "refused before running: {log}");
        assert!(!host.path().join("fg/flamegraph.svg").exists());
    }
}

#[test]
#[ignore = "needs a Docker engine and root: cargo test -- --include-ignored"]
fn without_a_capability_docker_is_told_its_own_flags() {
    if !image_ready() {
        return;
    }
    let host = host_folder();
    let out = run(Command::new("docker")
        .args([
            "run",
            "--rm",
            "-v",
            "./fg:/out",
            IMAGE,
            "--",
            "--iters",
            "200",
        ])
        .current_dir(host.path()));
    assert_exit(
        &out,
        3,
        &[
            "perf is not permitted in this Docker container",
            "add --cap-add=SYS_ADMIN (or, from Docker 23, --cap-add=PERFMON) to `docker run`",
        ],
    );
    let log = text(&out);
    assert!(!log.contains("odman"), "{log}");
}
