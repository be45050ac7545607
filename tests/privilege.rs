//! Least privilege and the process tree: as root, cargo (with its build
//! scripts) and the profiled program run without capabilities and with
//! `no_new_privs`, as the invoking user when there is one (`SUDO_UID`), while
//! perf keeps root and still samples them; `--keep-root` keeps the old way.
//! Also: `nohup` is honoured, a `kill -9` of the profiler during a build
//! takes cargo and its build scripts with it, and names from a recording
//! reach the terminal escaped.
//!
//! These run the real binary as root: ignored unless asked for
//! (`-- --include-ignored`), then failing without root or perf.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::*;

/// The invoking user of these tests (`SUDO_UID`), and the owner of their folders.
const USER: u32 = 1234;

/// The capability and identity lines of `/proc/self/status`.
const STATUS_LINES: &str = "^(Uid|Gid|Groups|CapEff|CapPrm|CapBnd|CapAmb|NoNewPrivs):";

/// A folder anyone can write, for what the build script and the program report.
fn drop_box() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// A folder owned by `uid`.
fn owned_dir(uid: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(dir.path(), Some(uid), Some(uid)).unwrap();
    dir
}

/// The profiler, with no sudo in its environment unless a test adds one.
fn profiler_as_root(out: &Path) -> Command {
    let mut cmd = profiler_to(out);
    for var in ["SUDO_UID", "SUDO_GID", "SUDO_USER"] {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// `field` of a `/proc/PID/status` excerpt, e.g. `CapEff` → `0000000000000000`.
fn field<'a>(status: &'a str, name: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {name} in:\n{status}"))
        .trim()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{} was not written: {e}", path.display()))
}

/// A crate whose build script records its capabilities and whether it could
/// `mount` a tmpfs, and whose program records its own status and spins.
fn reporting_crate(dir: &Path) {
    write(
        dir,
        &[
            (
                "Cargo.toml",
                "[package]\nname = \"nosy\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
                 build = \"build.rs\"\n\n[workspace]\n"
                    .into(),
            ),
            (
                "build.rs",
                r#"use std::process::Command;
fn main() {
    let dir = std::env::var("PRIV_REPORT_DIR").unwrap();
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let target = format!("{dir}/mnt");
    std::fs::create_dir_all(&target).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "none", &target])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if mounted {
        let _ = Command::new("umount").arg(&target).status();
    }
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let session = stat.rsplit_once(')').unwrap().1.split_whitespace().nth(3).unwrap().to_string();
    std::fs::write(
        format!("{dir}/build.txt"),
        format!("{status}Mounted: {mounted}\nSession: {session}\n"),
    )
    .unwrap();
}
"#
                .into(),
            ),
            (
                "src/main.rs",
                format!(
                    "{}\nfn main() {{\n    let dir = std::env::var(\"PRIV_REPORT_DIR\").unwrap();\n    \
                     let status = std::fs::read_to_string(\"/proc/self/status\").unwrap();\n    \
                     let stat = std::fs::read_to_string(\"/proc/self/stat\").unwrap();\n    \
                     let session = stat.rsplit_once(')').unwrap().1.split_whitespace().nth(3).unwrap().to_string();\n    \
                     std::fs::write(format!(\"{{dir}}/program.txt\"), format!(\"{{status}}Session: {{session}}\\nSelf: {{}}\\n\", std::process::id())).unwrap();\n    \
                     nosy_hot();\n}}\n",
                    spin("nosy_hot", 400)
                ),
            ),
        ],
    );
}

fn profile(cmd: &mut Command) -> Output {
    run(cmd.stdout(Stdio::piped()).stderr(Stdio::piped()))
}

/// Item 8: a build script cannot mount, and neither it nor the program has
/// a capability; `--keep-root` gives the program root's.
#[test]
#[ignore = "needs root and perf: cargo test -- --include-ignored"]
fn the_build_and_the_program_run_without_capabilities() {
    if !as_root("the privilege tests") || !perf_available() {
        return;
    }
    let krate = tempfile::tempdir().unwrap();
    reporting_crate(krate.path());
    let (out, report) = (tempfile::tempdir().unwrap(), drop_box());
    let manifest = krate.path().join("Cargo.toml");
    let first = profile(
        profiler_as_root(out.path())
            .arg("--manifest-path")
            .arg(&manifest)
            .env("PRIV_REPORT_DIR", report.path()),
    );
    assert!(first.status.success(), "{}", text(&first));
    let build = read(&report.path().join("build.txt"));
    assert_eq!(
        field(&build, "Mounted"),
        "false",
        "the build script mounted a tmpfs"
    );
    assert_eq!(field(&build, "CapEff"), "0000000000000000", "{build}");
    assert_eq!(field(&build, "CapBnd"), "0000000000000000", "{build}");
    assert_eq!(field(&build, "NoNewPrivs"), "1", "{build}");
    let program = read(&report.path().join("program.txt"));
    for set in ["CapEff", "CapPrm", "CapBnd", "CapAmb"] {
        assert_eq!(field(&program, set), "0000000000000000", "{set}: {program}");
    }
    assert_eq!(field(&program, "NoNewPrivs"), "1", "{program}");
    // Sessions of their own, with no controlling terminal: nothing they run
    // can type into the terminal that started us (TIOCSTI) or open /dev/tty.
    let ours = std::fs::read_to_string("/proc/self/stat").unwrap();
    let ours = ours
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(3)
        .unwrap()
        .to_string();
    assert_ne!(
        field(&build, "Session"),
        ours,
        "the build script shares our session"
    );
    assert_eq!(
        field(&program, "Session"),
        field(&program, "Self"),
        "the program leads a session of its own: {program}"
    );
    let folded = read(&out.path().join("stacks.folded"));
    let hot: u64 = stacks(&folded)
        .iter()
        .filter(|(frames, _)| frames.contains("nosy_hot"))
        .map(|&(_, n)| n)
        .sum();
    assert!(hot >= 10, "perf did not sample the program: {hot} samples");

    // The same build serves the next run, which may keep root.
    std::fs::remove_file(report.path().join("program.txt")).unwrap();
    let again = profile(
        profiler_as_root(out.path())
            .arg("--manifest-path")
            .arg(&manifest)
            .arg("--keep-root")
            .env("PRIV_REPORT_DIR", report.path()),
    );
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        !text(&again).contains("Compiling"),
        "rebuilt: {}",
        text(&again)
    );
    let program = read(&report.path().join("program.txt"));
    assert_ne!(field(&program, "CapEff"), "0000000000000000", "{program}");
    assert_eq!(field(&program, "NoNewPrivs"), "0", "{program}");
}

/// A shell that writes its status lines to `report` and spins ~1 s of CPU.
fn spinning_shell(report: &Path) -> Vec<String> {
    vec![
        "--exec".into(),
        "--".into(),
        "sh".into(),
        "-c".into(),
        format!(
            "grep -E '{STATUS_LINES}' /proc/self/status > {}/program.txt; \
             i=0; while [ $i -lt 1500000 ]; do i=$((i+1)); done",
            report.display()
        ),
    ]
}

/// Item 8: under sudo, the program runs as the invoking user (all of its
/// ids, no other groups, no capabilities), and perf, as root, still
/// samples it; `--keep-root` runs it as root.
#[test]
#[ignore = "needs root and perf: cargo test -- --include-ignored"]
fn the_program_runs_as_the_invoking_user_and_perf_still_samples_it() {
    if !as_root("the privilege tests") || !perf_available() {
        return;
    }
    let (out, report) = (owned_dir(USER), drop_box());
    let result = profile(
        profiler_as_root(out.path())
            .args(["--call-graph", "fp", "--freq", "1999"])
            .env("SUDO_UID", USER.to_string())
            .env("SUDO_GID", USER.to_string())
            .args(spinning_shell(report.path())),
    );
    assert!(result.status.success(), "{}", text(&result));
    let status = read(&report.path().join("program.txt"));
    let user = format!("{USER}\t{USER}\t{USER}\t{USER}");
    assert_eq!(field(&status, "Uid"), user, "{status}");
    assert_eq!(field(&status, "Gid"), user, "{status}");
    assert_eq!(field(&status, "Groups"), USER.to_string(), "{status}");
    for set in ["CapEff", "CapPrm", "CapBnd", "CapAmb"] {
        assert_eq!(field(&status, set), "0000000000000000", "{set}: {status}");
    }
    assert_eq!(field(&status, "NoNewPrivs"), "1", "{status}");
    let folded = read(&out.path().join("stacks.folded"));
    assert!(
        total_samples(&folded) >= 100,
        "perf (root) sampled the user's program {} times",
        total_samples(&folded)
    );
    let meta = std::fs::metadata(out.path().join("flamegraph.svg")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (USER, USER), "the results' owner");

    let kept = profile(
        profiler_as_root(out.path())
            .args(["--call-graph", "fp", "--keep-root"])
            .env("SUDO_UID", USER.to_string())
            .env("SUDO_GID", USER.to_string())
            .args(spinning_shell(report.path())),
    );
    assert!(kept.status.success(), "{}", text(&kept));
    let status = read(&report.path().join("program.txt"));
    assert_eq!(field(&status, "Uid"), "0\t0\t0\t0", "{status}");
    assert_ne!(field(&status, "CapEff"), "0000000000000000", "{status}");
}

/// A private mount namespace in which `toolchain` holds the toolchain that
/// runs the tests (from `rustc --print sysroot`), so that a user other than
/// root can run it even when it lives under root's 0700 home; `None` (a
/// loud skip) when that cannot be arranged.
fn with_reachable_toolchain(cmd: &mut Command, toolchain: &Path) -> Option<()> {
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    let sysroot = PathBuf::from(String::from_utf8(sysroot.stdout).ok()?.trim());
    if !sysroot.join("bin/cargo").is_file() {
        return None;
    }
    let probe = Command::new("unshare").args(["-m", "true"]).status().ok()?;
    if !probe.success() {
        return None;
    }
    let program = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let mut wrapped = Command::new("unshare");
    wrapped
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg("mount --bind \"$0\" \"$1\" && shift && exec \"$@\"")
        .arg(&sysroot)
        .arg(toolchain)
        .arg(program)
        .args(args);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => wrapped.env(k, v),
            None => wrapped.env_remove(k),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![toolchain.join("bin")];
    dirs.extend(std::env::split_paths(&path));
    wrapped
        .env("PATH", std::env::join_paths(dirs).unwrap())
        .env("CARGO", toolchain.join("bin/cargo"))
        .env("RUSTC", toolchain.join("bin/rustc"))
        .env_remove("RUSTUP_TOOLCHAIN")
        .current_dir(repo());
    *cmd = wrapped;
    Some(())
}

/// Item 8: under sudo, cargo runs as the invoking user: the build's files
/// (the target dir) are theirs, its build script has no capabilities, and
/// the next run does not rebuild.
#[test]
#[ignore = "needs root, perf and unshare: cargo test -- --include-ignored"]
fn the_build_runs_as_the_invoking_user_and_its_files_are_theirs() {
    if !as_root("the privilege tests") || !perf_available() {
        return;
    }
    let (krate, out, report, home) = (
        owned_dir(USER),
        owned_dir(USER),
        drop_box(),
        owned_dir(USER),
    );
    reporting_crate(krate.path());
    let chown = Command::new("chown")
        .arg("-R")
        .arg(format!("{USER}:{USER}"))
        .arg(krate.path())
        .status()
        .unwrap();
    assert!(chown.success());
    let toolchain = tempfile::tempdir().unwrap();
    std::fs::set_permissions(toolchain.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let manifest = krate.path().join("Cargo.toml");
    let run_once = || {
        let mut cmd = profiler_as_root(out.path());
        cmd.arg("--manifest-path")
            .arg(&manifest)
            .env("PRIV_REPORT_DIR", report.path())
            .env("SUDO_UID", USER.to_string())
            .env("SUDO_GID", USER.to_string())
            // `sudo -E`: the user's home, with a cargo home of its own.
            .env("HOME", home.path())
            .env_remove("CARGO_HOME");
        let arranged = with_reachable_toolchain(&mut cmd, toolchain.path());
        if !require(
            "a private mount namespace with the toolchain",
            arranged.ok_or_else(|| "unshare or the toolchain's cargo is missing".to_string()),
        ) {
            return None;
        }
        Some(profile(&mut cmd))
    };
    let Some(first) = run_once() else { return };
    assert!(first.status.success(), "{}", text(&first));
    assert!(text(&first).contains("Compiling nosy"), "{}", text(&first));
    let build = read(&report.path().join("build.txt"));
    assert_eq!(
        field(&build, "Uid"),
        format!("{USER}\t{USER}\t{USER}\t{USER}")
    );
    assert_eq!(field(&build, "CapEff"), "0000000000000000", "{build}");
    assert_eq!(field(&build, "Mounted"), "false");
    let program = read(&report.path().join("program.txt"));
    assert_eq!(
        field(&program, "Uid"),
        format!("{USER}\t{USER}\t{USER}\t{USER}")
    );
    let ours = krate.path().join("target/rust-flamegraph");
    for path in [
        krate.path().join("target"),
        ours.clone(),
        ours.join("release/nosy"),
    ] {
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.uid(), USER, "{} is not the user's", path.display());
    }
    let second = run_once().unwrap();
    assert!(second.status.success(), "{}", text(&second));
    assert!(
        !text(&second).contains("Compiling"),
        "rebuilt: {}",
        text(&second)
    );
}

/// Item 7: run under `nohup` (SIGHUP ignored), a hangup stops nothing: the
/// recording runs to its `--duration`.
#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn nohup_keeps_sighup_ignored() {
    use std::os::unix::process::CommandExt;
    if !perf_available() {
        return;
    }
    let (out, tmp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut cmd = profiler_to(out.path());
    cmd.env("TMPDIR", tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .args(["--duration", "4", "--exec", "--"])
        .arg(demo_binary())
        .args(["--iters", "1000000", "--size", "50000"]);
    // SAFETY: between fork and exec, one async-signal-safe call (as `nohup` does).
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let _group = KillGroupOnDrop(pid);
    // A hangup of the terminal: the whole job gets SIGHUP, once the program runs.
    let running = wait_until(Duration::from_secs(120), || {
        children_of(pid).into_iter().any(|perf| {
            children_of(perf).into_iter().any(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "demo")
            })
        })
    });
    assert!(running, "the demo never ran under perf");
    std::thread::sleep(Duration::from_millis(1000));
    let group = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process_group(group, rustix::process::Signal::HUP).unwrap();
    let result = child.wait_with_output().unwrap();
    let log = text(&result);
    eprintln!("{log}");
    assert_eq!(result.status.code(), Some(0), "{log}");
    assert!(log.contains("--duration 4.0s reached"), "{log}");
    assert!(!log.contains("SIGHUP"), "{log}");
    assert_demo_profile(out.path());
}

/// A crate whose build script starts `sleep 600` and waits for it, having
/// written its own pid and the sleep's to `report`/pids.
fn slow_build_crate(dir: &Path) {
    write(
        dir,
        &[
            (
                "Cargo.toml",
                "[package]\nname = \"slow\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n"
                    .into(),
            ),
            (
                "build.rs",
                r#"fn main() {
    let dir = std::env::var("PRIV_REPORT_DIR").unwrap();
    let mut sleep = std::process::Command::new("sleep").arg("600").spawn().unwrap();
    let pids = format!("{} {}\n", std::process::id(), sleep.id());
    std::fs::write(format!("{dir}/pids.tmp"), pids).unwrap();
    std::fs::rename(format!("{dir}/pids.tmp"), format!("{dir}/pids")).unwrap();
    let _ = sleep.wait();
}
"#
                .into(),
            ),
            ("src/main.rs", "fn main() {}\n".into()),
        ],
    );
}

/// Item 7: `kill -9` of the profiler during a build takes cargo, the build
/// script and what the script started (as it would rustc) with it.
#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn kill_9_during_a_build_leaves_no_cargo_or_build_script() {
    use std::os::unix::process::CommandExt;
    if !perf_available() {
        return;
    }
    let (krate, out, report) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        drop_box(),
    );
    slow_build_crate(krate.path());
    let mut cmd = profiler_as_root(out.path());
    cmd.arg("--manifest-path")
        .arg(krate.path().join("Cargo.toml"))
        .env("PRIV_REPORT_DIR", report.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    let _group = KillGroupOnDrop(pid);
    let pids = report.path().join("pids");
    assert!(
        wait_until(Duration::from_secs(120), || pids.exists()),
        "the build script never ran"
    );
    let text = read(&pids);
    let mut procs: Vec<(String, Proc)> = text
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .zip(["build script", "its sleep"])
        .map(|(p, what)| (what.to_string(), Proc::of(p).expect("running")))
        .collect();
    // cargo: the profiler's descendant that runs the build script.
    let cargo = (0..50)
        .find_map(|_| {
            let mut stack = children_of(pid);
            while let Some(p) = stack.pop() {
                let proc = Proc::of(p)?;
                if proc.comm().as_deref() == Some("cargo") {
                    return Some(proc);
                }
                stack.extend(children_of(p));
            }
            std::thread::sleep(Duration::from_millis(20));
            None
        })
        .expect("no cargo under the profiler");
    procs.push(("cargo".into(), cargo));
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    let _ = child.wait();
    let all_gone = wait_until(Duration::from_secs(10), || {
        procs.iter().all(|(_, p)| p.gone())
    });
    let left: Vec<String> = procs
        .iter()
        .filter(|(_, p)| !p.gone())
        .map(|(what, p)| format!("{what} ({})", p.pid))
        .collect();
    // Whatever the assertion says, nothing of this run may stay behind.
    for (_, p) in &procs {
        if !p.gone() {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(p.pid as i32).unwrap(),
                rustix::process::Signal::KILL,
            );
        }
    }
    assert!(all_gone, "outlived the profiler's kill -9: {left:?}");
}

/// Item 7: a function name with terminal escape sequences (they clear the
/// screen and its scrollback) is printed escaped in the summary, never raw.
#[test]
fn names_reach_the_terminal_escaped() {
    let (dir, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let folded = dir.path().join("hostile.folded");
    std::fs::write(
        &folded,
        "main;wiped\x1b[2J\x1b[3J\x07 60\nmain;\u{9b}31mred 30\nmain;fine 20\n",
    )
    .unwrap();
    let result = profile(profiler_to(out.path()).arg("--from-folded").arg(&folded));
    assert!(result.status.success(), "{}", text(&result));
    let log = text(&result);
    let raw = log.chars().find(|c| c.is_control() && *c != '\n');
    assert_eq!(
        raw, None,
        "a control character reached the terminal: {log:?}"
    );
    assert!(log.contains("wiped\\x1b[2J\\x1b[3J\\x07"), "{log}");
    assert!(log.contains("\\u{9b}31mred"), "{log}");
    assert!(log.contains("fine"), "{log}");
}
