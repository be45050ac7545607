//! End to end through the real image and the real engine, with the commands
//! of the README and docs/containers.md. Ignored unless asked for
//! (`-- --include-ignored`); then failing without a Docker engine.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use common::*;

const IMAGE: &str = "rust-flamegraph";
/// A host user that is not root, to own the mounted output folder.
const OWNER: u32 = 4321;

/// A scratch folder with `fg/` owned by [`OWNER`], as on a user's host.
fn host_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let fg = dir.path().join("fg");
    std::fs::create_dir(&fg).unwrap();
    std::os::unix::fs::chown(&fg, Some(OWNER), Some(OWNER)).unwrap();
    dir
}

/// `docker run …` with `args` split on spaces, in `dir`.
fn docker(dir: &Path, args: &str) -> std::process::Output {
    run(Command::new("docker")
        .args(args.split(' '))
        .current_dir(dir))
}

fn assert_owned_by_folder_owner(fg: &Path) {
    for name in ["flamegraph.svg", "stacks.folded", "report.html"] {
        let meta = fg.join(name).metadata().unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (OWNER, OWNER),
            "{name} belongs to the folder's owner"
        );
    }
}

#[test]
#[ignore = "needs a Docker engine and root: cargo test -- --include-ignored"]
fn readme_command_with_the_seeds_flags_writes_the_flamegraph() {
    if !image_ready() {
        return;
    }
    let host = host_folder();
    let out = docker(
        host.path(),
        "run --rm --cap-add=SYS_ADMIN --security-opt seccomp=unconfined --pid=host \
         -v ./fg:/out rust-flamegraph -- --iters 300 --size 50000",
    );
    assert!(out.status.success(), "{}", text(&out));
    let fg = host.path().join("fg");
    assert_demo_profile(&fg);
    assert_owned_by_folder_owner(&fg);
    // Built at image-build time: a run only checks that the demo is fresh.
    assert!(
        !text(&out).contains("Compiling demo"),
        "the demo was rebuilt: {}",
        text(&out)
    );
}

/// `--off-cpu` in the image, with the README's command (its *Off-CPU*
/// section, with the capability it adds, `IPC_LOCK`: perf's buffer grows from
/// 512 KiB to 4 MiB per CPU; without it, 6 of 10 runs on 2 loaded cores lost
/// records, one of them the whole sleep; recorded again if perf lost some
/// all the same): perf samples the switches, each
/// wait is weighed within 10 % of what the demo measured (its stdout
/// reaches docker's) and drawn under the function that waited; the files
/// are the folder owner's.
#[test]
#[ignore = "needs a Docker engine and root: cargo test -- --include-ignored"]
fn off_cpu_in_the_image_weighs_the_demos_waits() {
    if !image_ready() {
        return;
    }
    let host = host_folder();
    let out = with_no_records_lost(|| {
        docker(
            host.path(),
            "run --rm --cap-add=SYS_ADMIN --cap-add=IPC_LOCK -v ./fg:/out \
             rust-flamegraph --off-cpu -- --waits 300",
        )
    });
    assert!(out.status.success(), "{}", text(&out));
    let fg = host.path().join("fg");
    assert_off_cpu_demo_profile(&fg, &String::from_utf8_lossy(&out.stdout));
    assert_owned_by_folder_owner(&fg);
    assert!(text(&out).contains("on and off the CPU"), "{}", text(&out));

    // The README's command as it is: where perf loses records in its small
    // buffer, the summary names the capability that enlarges it.
    let host = host_folder();
    let out = docker(
        host.path(),
        "run --rm --cap-add=SYS_ADMIN --pid=host -v ./fg:/out rust-flamegraph \
         --off-cpu -- --waits 300",
    );
    assert!(out.status.success(), "{}", text(&out));
    let log = text(&out);
    let fg = host.path().join("fg");
    match log.contains("(none lost)") {
        true => assert_off_cpu_demo_profile(&fg, &String::from_utf8_lossy(&out.stdout)),
        false => assert!(
            log.contains("add --cap-add=IPC_LOCK to `docker run`"),
            "perf lost records: the summary names the fix\n{log}"
        ),
    }
}

#[test]
#[ignore = "needs a Docker engine and root: cargo test -- --include-ignored"]
fn readme_default_run_profiles_the_default_demo() {
    if !image_ready() {
        return;
    }
    let host = host_folder();
    let out = docker(
        host.path(),
        "run --rm --cap-add=SYS_ADMIN -v ./fg:/out rust-flamegraph",
    );
    assert!(out.status.success(), "{}", text(&out));
    let samples = assert_demo_profile(&host.path().join("fg"));
    assert!(
        samples > 1000,
        "the default run lasts seconds: {samples} samples"
    );
}

#[test]
#[ignore = "needs a Docker engine and root: cargo test -- --include-ignored"]
fn cap_sys_admin_alone_suffices_and_profiler_options_go_before_the_double_dash() {
    if !image_ready() {
        return;
    }
    let host = host_folder();
    let out = docker(
        host.path(),
        "run --rm --cap-add=SYS_ADMIN -v ./fg:/out rust-flamegraph --freq 1999 -- --iters 300 --size 50000",
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_demo_profile(&host.path().join("fg"));
    let svg = std::fs::read_to_string(host.path().join("fg/flamegraph.svg")).unwrap();
    assert!(svg.contains("at 1999 Hz"), "--freq reached the profiler");
}

#[test]
#[ignore = "needs a Docker engine and root: cargo test -- --include-ignored"]
fn cap_perfmon_works_where_the_engine_knows_it() {
    if !image_ready() {
        return;
    }
    let host = host_folder();
    let out = docker(
        host.path(),
        "run --rm --cap-add=PERFMON -v ./fg:/out rust-flamegraph -- --iters 200 --size 50000",
    );
    if out.status.code() == Some(125) && text(&out).contains("capability") {
        loud(
            "NOTE: this Docker engine does not know CAP_PERFMON (Docker < 23 refuses it); \
             docs/containers.md says to use SYS_ADMIN there",
        );
        return;
    }
    assert!(out.status.success(), "{}", text(&out));
    assert_demo_profile(&host.path().join("fg"));
}

#[test]
#[ignore = "needs a Docker engine and root: cargo test -- --include-ignored"]
fn without_capabilities_the_error_names_the_flags_to_add() {
    if !image_ready() {
        return;
    }
    let host = host_folder();
    let out = docker(
        host.path(),
        "run --rm -v ./fg:/out rust-flamegraph -- --iters 200",
    );
    // SYS_ADMIN first: Docker before 23 refuses PERFMON ("unknown capability").
    assert_exit(
        &out,
        3,
        &["add --cap-add=SYS_ADMIN (or, from Docker 23, --cap-add=PERFMON)"],
    );
    let log = text(&out);
    assert!(!log.contains("recording"), "refused before running: {log}");
    assert!(!host.path().join("fg/flamegraph.svg").exists());
}

#[test]
#[ignore = "needs a Docker engine and root: cargo test -- --include-ignored"]
fn the_demos_usage_error_reaches_the_user_and_no_svg_is_written() {
    if !image_ready() {
        return;
    }
    let host = host_folder();
    let out = docker(
        host.path(),
        "run --rm --cap-add=SYS_ADMIN -v ./fg:/out rust-flamegraph -- --iters abc",
    );
    assert_exit(&out, 5, &["invalid value 'abc' for '--iters"]);
    assert!(!host.path().join("fg/flamegraph.svg").exists());
}

#[test]
#[ignore = "needs a Docker engine and root: cargo test -- --include-ignored"]
fn a_forgotten_output_mount_is_named() {
    if !image_ready() {
        return;
    }
    let host = host_folder();
    let out = docker(host.path(), "run --rm --cap-add=SYS_ADMIN rust-flamegraph");
    assert_exit(&out, 6, &["-v ./fg:/out"]);
}

/// Whether `docker compose` (v2) is installed.
fn compose_v2() -> bool {
    Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `docker compose` (v2) where installed, else the standalone docker-compose.
fn compose() -> Command {
    match compose_v2() {
        true => {
            let mut c = Command::new("docker");
            c.arg("compose");
            c
        }
        false => Command::new("docker-compose"),
    }
}

#[test]
#[ignore = "needs a Docker engine and root: cargo test -- --include-ignored"]
fn compose_run_and_up_write_the_same_flamegraph() {
    if !image_ready() {
        return;
    }
    let host = host_folder();
    let fg = host.path().join("fg");
    let project = format!("rust-flamegraph-test-{}", std::process::id());
    let out = run(compose()
        .current_dir(repo())
        .env("FG_OUT", &fg)
        .args(["-p", &project, "run", "--rm", "profile"])
        .args(SMALL_RUN));
    assert!(out.status.success(), "{}", text(&out));
    assert_demo_profile(&fg);
    assert_owned_by_folder_owner(&fg);

    std::fs::remove_file(fg.join("flamegraph.svg")).unwrap();
    let up = run(compose().current_dir(repo()).env("FG_OUT", &fg).args([
        "-p",
        &project,
        "up",
        "--no-build",
        "--exit-code-from",
        "profile",
    ]));
    let _ = compose()
        .current_dir(repo())
        .args(["-p", &project, "down", "--volumes"])
        .output();
    assert!(up.status.success(), "{}", text(&up));
    let samples = assert_demo_profile(&fg);
    assert!(
        samples > 1000,
        "`up` runs the default demo: {samples} samples"
    );
}

#[test]
#[ignore = "needs a Docker engine and root: cargo test -- --include-ignored"]
fn a_mounted_crate_is_built_into_the_cache_volume_and_profiled() {
    if !image_ready() {
        return;
    }
    let krate = tempfile::tempdir().unwrap();
    write(
        krate.path(),
        &[
            (
                "Cargo.toml",
                "[package]\nname = \"mounted\"\nversion = \"0.1.0\"\nedition = \"2021\"\n".into(),
            ),
            (
                "src/main.rs",
                format!(
                    "{}\nfn main() {{ mounted_hot(); }}\n",
                    spin("mounted_hot", 500)
                ),
            ),
        ],
    );
    let volume = format!("rust-flamegraph-test-cache-{}", std::process::id());
    let host = host_folder();
    let cmd = format!(
        "run --rm --cap-add=SYS_ADMIN -v {}:/src -v ./fg:/out -v {volume}:/cache rust-flamegraph",
        krate.path().display()
    );
    let mut times = Vec::new();
    let mut logs = Vec::new();
    for _ in 0..2 {
        let start = std::time::Instant::now();
        let out = docker(host.path(), &cmd);
        times.push(start.elapsed());
        assert!(out.status.success(), "{}", text(&out));
        let folded = std::fs::read_to_string(host.path().join("fg/stacks.folded")).unwrap();
        assert!(folded.contains("mounted::mounted_hot"), "{folded}");
        logs.push(text(&out));
    }
    let _ = Command::new("docker")
        .args(["volume", "rm", "-f", &volume])
        .output();
    eprintln!(
        "mounted crate: first run {:?}, second run {:?}",
        times[0], times[1]
    );
    assert!(logs[0].contains("Compiling mounted"), "{}", logs[0]);
    assert!(
        !logs[1].contains("Compiling"),
        "the second run reuses the cache: {}",
        logs[1]
    );
    assert!(
        !krate.path().join("target").exists(),
        "the host crate's target/ is left alone"
    );
}

#[test]
#[ignore = "needs a Docker engine and root: cargo test -- --include-ignored"]
fn a_mounted_folder_without_cargo_toml_is_named() {
    if !image_ready() {
        return;
    }
    let empty = tempfile::tempdir().unwrap();
    let host = host_folder();
    let out = docker(
        host.path(),
        &format!(
            "run --rm --cap-add=SYS_ADMIN -v {}:/src -v ./fg:/out rust-flamegraph",
            empty.path().display()
        ),
    );
    assert_exit(&out, 4, &["/src is mounted but has no Cargo.toml"]);
}

#[test]
#[ignore = "needs a Docker engine and root: cargo test -- --include-ignored"]
fn docker_stop_still_writes_the_flamegraph_within_the_grace_period() {
    if !image_ready() {
        return;
    }
    let host = host_folder();
    let name = format!("rust-flamegraph-stop-{}", std::process::id());
    let started = docker(
        host.path(),
        &format!(
            "run -d --name {name} --cap-add=SYS_ADMIN -v ./fg:/out rust-flamegraph -- --iters 1000000"
        ),
    );
    assert!(started.status.success(), "{}", text(&started));
    let logs = || text(&run(Command::new("docker").args(["logs", &name])));
    // Generous: the container starts and checks the demo's build first.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !logs().contains("rust-flamegraph: recording") {
        assert!(
            std::time::Instant::now() < deadline,
            "never started recording"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let start = std::time::Instant::now();
    let stop = docker(host.path(), &format!("stop -t 10 {name}"));
    let stopped_in = start.elapsed();
    let code = text(&docker(host.path(), &format!("wait {name}")));
    let log = logs();
    let _ = Command::new("docker").args(["rm", "-f", &name]).output();
    assert!(stop.status.success());
    assert_eq!(code.trim(), "0", "exit code after docker stop: {log}");
    assert!(
        stopped_in.as_secs() < 10,
        "stopped in {stopped_in:?}, inside the grace period"
    );
    let fg = host.path().join("fg");
    assert_demo_profile(&fg);
    let svg = std::fs::read_to_string(fg.join("flamegraph.svg")).unwrap();
    assert!(svg.contains("(stopped early)"));
}

#[test]
#[ignore = "needs a Docker engine and root: cargo test -- --include-ignored"]
fn a_read_only_output_is_refused_before_the_workload_runs() {
    if !image_ready() {
        return;
    }
    let host = host_folder();
    let out = docker(
        host.path(),
        "run --rm --cap-add=SYS_ADMIN -v ./fg:/out:ro rust-flamegraph -- --iters 300",
    );
    assert_exit(
        &out,
        6,
        &["cannot write to the output folder /out", "-v ./fg:/out"],
    );
    let log = text(&out);
    assert!(!log.contains("rust-flamegraph: recording"), "{log}");
}

#[test]
#[ignore = "needs a Docker engine and root: cargo test -- --include-ignored"]
fn a_full_output_disk_fails_cleanly_without_truncated_files() {
    if !image_ready() {
        return;
    }
    // A 16 KiB tmpfs at /out: the folded stacks may fit, the SVG does not.
    // The real entrypoint runs inside a shell that then lists what was left.
    let out = run(Command::new("docker").args([
        "run",
        "--rm",
        "--cap-add=SYS_ADMIN",
        "--mount",
        "type=tmpfs,destination=/out,tmpfs-size=16384",
        "--entrypoint",
        "/bin/sh",
        IMAGE,
        "-c",
        "/usr/local/bin/entrypoint -- --iters 300 --size 50000; echo \"rc=$?\"; ls -A /out",
    ]));
    let log = text(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("rc=6"), "{log}");
    assert!(log.contains("No space left on device"), "{log}");
    let after_rc = stdout.split("rc=6").nth(1).unwrap();
    let markers = rust_flamegraph::artifacts::MARKERS;
    for file in after_rc.split_whitespace() {
        if markers.iter().any(|(name, _)| *name == file) {
            continue;
        }
        assert_eq!(
            file, "stacks.folded",
            "only complete files remain: {after_rc:?}"
        );
    }
}

#[test]
#[ignore = "needs a Docker engine and root: cargo test -- --include-ignored"]
fn an_unprivileged_user_can_profile_where_the_kernel_allows_it() {
    if !image_ready() {
        return;
    }
    let host = host_folder();
    let out = docker(
        host.path(),
        &format!(
            "run --rm --user {OWNER}:{OWNER} --cap-add=SYS_ADMIN -v ./fg:/out rust-flamegraph \
             -- --iters 300 --size 50000"
        ),
    );
    let paranoid =
        std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid").unwrap_or_default();
    if paranoid.trim().parse::<i32>().unwrap_or(3) > 2 {
        // Non-root processes lose the capability; paranoid 3 forbids them all events.
        assert_exit(&out, 3, &[]);
        return;
    }
    assert!(out.status.success(), "{}", text(&out));
    let fg = host.path().join("fg");
    assert_demo_profile(&fg);
    assert_owned_by_folder_owner(&fg);
}

/// The README's commands for one's own crate, verbatim, from the crate's
/// folder, which has no `fg/` yet: `docker run`, then `docker compose` (its
/// `crate` service). Both write into the crate's `fg/`, which belongs to the
/// crate's owner, and share one cache volume (the second does not compile
/// the crate again).
#[test]
#[ignore = "needs a Docker engine, docker-compose and root: cargo test -- --include-ignored"]
fn readme_own_crate_commands_work_verbatim_from_the_crates_folder() {
    if !image_ready() {
        return;
    }
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let section = &readme[readme.find("## Your own crate in the image").unwrap()..];
    let block = section.split("```bash\n").nth(1).unwrap();
    let docker_run = block[..block.find("```").unwrap()]
        .trim()
        .replace("\\\n", " ");
    let compose_line = readme
        .lines()
        .find(|l| l.contains("run --rm crate"))
        .expect("the README's compose command for one's own crate");
    assert!(docker_run.contains("--bin my_binary -- --input big.json --mode hot"));

    // A crate of a host user (not root) with the README's binary and arguments.
    let krate = tempfile::tempdir().unwrap();
    let name = format!("readme_crate_{}", std::process::id());
    write(
        krate.path(),
        &[
            (
                "Cargo.toml",
                format!(
                    "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
                     [[bin]]\nname = \"my_binary\"\npath = \"src/main.rs\"\n"
                ),
            ),
            (
                "src/main.rs",
                format!(
                    "{}\nfn main() {{\n    let args: Vec<String> = std::env::args().collect();\n    \
                     assert_eq!(args[1..], [\"--input\", \"big.json\", \"--mode\", \"hot\"]);\n    \
                     readme_hot();\n}}\n",
                    spin("readme_hot", 800)
                ),
            ),
        ],
    );
    let owner = Some(OWNER);
    for entry in ["", "Cargo.toml", "src", "src/main.rs"] {
        std::os::unix::fs::chown(krate.path().join(entry), owner, owner).unwrap();
    }
    let fg = krate.path().join("fg");

    let out = run(Command::new("sh")
        .args(["-c", &docker_run])
        .current_dir(krate.path()));
    assert!(out.status.success(), "{docker_run}\n{}", text(&out));
    assert_readme_crate_profiled(&fg);

    // compose: `docker compose` where installed, else `docker-compose`, as
    // the README says; RF is this checkout.
    std::fs::remove_dir_all(&fg).unwrap();
    let compose_line = match compose_v2() {
        true => compose_line.to_string(),
        false => compose_line.replace("docker compose", "docker-compose"),
    };
    let out = run(Command::new("sh")
        .args(["-c", &compose_line])
        .env("RF", repo())
        .current_dir(krate.path()));
    assert!(out.status.success(), "{compose_line}\n{}", text(&out));
    assert!(
        !text(&out).contains(&format!("Compiling {name}")),
        "compose uses the cache volume docker run filled: {}",
        text(&out)
    );
    assert_readme_crate_profiled(&fg);
}

/// The README crate's results in `fg`: its hot function, all of it (the
/// folder too) the crate owner's.
fn assert_readme_crate_profiled(fg: &Path) {
    let folded = std::fs::read_to_string(fg.join("stacks.folded")).unwrap();
    assert!(folded.contains("readme_hot"), "{folded}");
    let svg = std::fs::read_to_string(fg.join("flamegraph.svg")).unwrap();
    assert!(svg.contains("readme_hot"));
    let meta = fg.metadata().unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (OWNER, OWNER),
        "fg/ is the crate owner's"
    );
    assert_owned_by_folder_owner(fg);
}
