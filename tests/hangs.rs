//! No hang, no orphan, no lost recording: a closed stderr, programs that
//! ignore SIGINT and SIGTERM, their background children, `kill -9` of the
//! profiler, SIGHUP, a signal after the recording, and perf failing on its
//! own. With the real binary, the real perf and the demo (or `sh`).
//!
//! Each profiler runs in a process group of its own, killed when the test
//! ends, pass or fail. Bounds are wide: the machine may have 2 loaded cores.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rustix::process::{kill_process, kill_process_group, Pid, Signal};

/// A demo run that lasts minutes unless stopped.
const LONG_RUN: &[&str] = &["--", "--iters", "1000000", "--size", "50000"];

/// [`LONG_RUN`] of the demo built beforehand: no cargo in the run. (cargo's
/// own messages go to our stderr: with it closed, a "Blocking waiting for
/// file lock" from a concurrent build fails the build, which is not what
/// these tests are about.)
fn long_run_prebuilt(cmd: &mut Command) -> &mut Command {
    cmd.args(["--exec", "--"])
        .arg(demo_binary())
        .args(&LONG_RUN[1..])
}

/// A workload that ignores Ctrl-C and `docker stop`, and spins.
const STUBBORN: &str = "trap '' INT TERM; while :; do :; done";

/// The profiler writing into `out`, its scratch folder in `tmpdir`.
fn job(out: &Path, tmpdir: &Path) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = profiler_to(out);
    cmd.env("TMPDIR", tmpdir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        // Its own group, as a shell job is: killed whole when the test ends.
        .process_group(0);
    cmd
}

fn signal(pid: u32, sig: Signal) {
    kill_process(Pid::from_raw(pid as i32).unwrap(), sig).unwrap();
}

/// A running profiler whose stderr lines arrive on `lines` and are kept.
struct Run {
    child: Child,
    lines: Receiver<String>,
    log: Arc<Mutex<String>>,
    eof: Receiver<()>,
}

impl Run {
    fn start(cmd: &mut Command) -> Run {
        let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = channel();
        let log = Arc::new(Mutex::new(String::new()));
        let all = Arc::clone(&log);
        let (eof_tx, eof) = channel();
        // Not joined: a process that outlived the profiler may hold the pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line.clone());
                let mut all = all.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
            let _ = eof_tx.send(());
        });
        Run {
            child,
            lines,
            log,
            eof,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a line of stderr containing `needle`.
    fn wait_for(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(180);
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.contains(needle) => return,
                Ok(_) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(_) => break,
            }
        }
        panic!("the profiler never printed {needle:?}");
    }

    /// Waits for the end of the run; panics after `limit`.
    fn finish(mut self, limit: Duration) -> (ExitStatus, String) {
        let status = wait_child(&mut self.child, limit);
        // The last lines, still in the pipe (unless a survivor holds it).
        let _ = self.eof.recv_timeout(Duration::from_secs(10));
        let log = self.log.lock().unwrap().clone();
        eprintln!("---- exit {status}\n{log}");
        (status, log)
    }
}

fn wait_child(child: &mut Child, limit: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        // The group is killed when the caller's guard drops.
        assert!(
            start.elapsed() < limit,
            "the profiler did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The profiler's perf and perf's child (the program), once the program runs
/// under its own name `comm`.
fn perf_and_program(profiler: u32, comm: &str) -> (Proc, Proc) {
    let mut found = None;
    let ok = wait_until(Duration::from_secs(180), || {
        for perf in children_of(profiler).into_iter().filter_map(Proc::of) {
            if perf.comm().as_deref() != Some("perf") {
                continue;
            }
            for program in children_of(perf.pid).into_iter().filter_map(Proc::of) {
                if program.comm().as_deref() == Some(comm) {
                    found = Some((perf, program));
                    return true;
                }
            }
        }
        false
    });
    assert!(ok, "no perf running `{comm}` under the profiler");
    found.unwrap()
}

/// No process is left in the run's process group (perf and the program are gone).
fn assert_group_empty(pgid: u32) {
    let pgid = Pid::from_raw(pgid as i32).unwrap();
    let empty = wait_until(Duration::from_secs(10), || {
        rustix::process::test_kill_process_group(pgid).is_err()
    });
    assert!(empty, "processes of group {pgid:?} outlived the profiler");
}

fn names(dir: &Path) -> Vec<String> {
    let ours = rust_flamegraph::artifacts::MARKERS;
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !ours.iter().any(|(m, _)| m == n))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn assert_flamegraph(out: &Path) -> String {
    let svg = std::fs::read_to_string(out.join("flamegraph.svg")).expect("flamegraph.svg written");
    assert_well_formed_xml(&svg);
    assert!(out.join("stacks.folded").exists());
    svg
}

/// `… 2>&1 | head -1`: a stderr whose reader is gone after one line.
fn close_after_first_line(stderr: ChildStderr) -> String {
    let mut reader = BufReader::new(stderr);
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    first
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn a_closed_stderr_neither_hangs_nor_loses_the_run_with_duration() {
    if !perf_available() {
        return;
    }
    let (out, tmp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut child = long_run_prebuilt(job(out.path(), tmp.path()).args(["--duration", "2"]))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _group = KillGroupOnDrop(child.id());
    let first = close_after_first_line(child.stderr.take().unwrap());
    assert!(first.starts_with("rust-flamegraph"), "{first}");
    let status = wait_child(&mut child, Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{status}");
    assert_demo_profile(out.path());
    assert_group_empty(child.id());
    assert!(names(tmp.path()).is_empty(), "{:?}", names(tmp.path()));
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn a_closed_stderr_does_not_stop_the_perf_data_limit() {
    if !perf_available() {
        return;
    }
    let (out, tmp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut child = long_run_prebuilt(job(out.path(), tmp.path()).args([
        "--call-graph",
        "dwarf",
        "--max-perf-data",
        "8",
        "--no-inline",
    ]))
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let _group = KillGroupOnDrop(child.id());
    close_after_first_line(child.stderr.take().unwrap());
    let status = wait_child(&mut child, Duration::from_secs(120));
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(assert_flamegraph(out.path()).contains("(stopped early)"));
    assert_group_empty(child.id());
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn a_closed_stderr_does_not_stop_sigterm_from_working() {
    if !perf_available() {
        return;
    }
    let (out, tmp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut child = long_run_prebuilt(&mut job(out.path(), tmp.path()))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _group = KillGroupOnDrop(child.id());
    close_after_first_line(child.stderr.take().unwrap());
    perf_and_program(child.id(), "demo");
    std::thread::sleep(Duration::from_millis(1500));
    signal(child.id(), Signal::TERM);
    let status = wait_child(&mut child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{status}");
    assert_demo_profile(out.path());
    assert_group_empty(child.id());
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn a_program_ignoring_sigint_and_sigterm_is_ended_after_a_grace_period() {
    if !perf_available() {
        return;
    }
    let (out, tmp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let start = Instant::now();
    let run = Run::start(job(out.path(), tmp.path()).args([
        "--duration",
        "2",
        "--exec",
        "--",
        "sh",
        "-c",
        STUBBORN,
    ]));
    let pid = run.pid();
    // Until the test ends, pass or fail: not when the run is finished.
    let _group = KillGroupOnDrop(pid);
    let (status, log) = run.finish(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("sending it SIGKILL"), "{log}");
    assert!(
        start.elapsed() < Duration::from_secs(40),
        "{:?}",
        start.elapsed()
    );
    let svg = assert_flamegraph(out.path());
    assert!(svg.contains("(stopped early)"));
    assert_group_empty(pid);
    assert!(names(tmp.path()).is_empty(), "{:?}", names(tmp.path()));
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn docker_stop_of_a_program_ignoring_sigterm_ends_inside_the_grace_period() {
    if !perf_available() {
        return;
    }
    let (out, tmp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let run = Run::start(job(out.path(), tmp.path()).args(["--exec", "--", "sh", "-c", STUBBORN]));
    let pid = run.pid();
    // Until the test ends, pass or fail: not when the run is finished.
    let _group = KillGroupOnDrop(pid);
    perf_and_program(pid, "sh");
    std::thread::sleep(Duration::from_millis(1500));
    let start = Instant::now();
    signal(pid, Signal::TERM); // `docker stop`: one SIGTERM, to us alone
    let (status, log) = run.finish(Duration::from_secs(60));
    let took = start.elapsed();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        took < Duration::from_secs(10),
        "took {took:?}: docker would SIGKILL"
    );
    assert!(log.contains("stopping the recording"), "{log}");
    assert_flamegraph(out.path());
    assert_group_empty(pid);
}

/// `sh -c 'sleep 1000 & …'`: the sleep, recorded in `pidfile`, must not
/// outlive the run, however it was stopped.
fn background_child_run(stop: &str) {
    if !perf_available() {
        return;
    }
    let (out, tmp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let pidfile = tmp.path().join("bg.pid");
    let script = format!(
        "sleep 1000 & echo $! > {}; i=0; while :; do i=$((i+1)); done",
        pidfile.display()
    );
    let mut cmd = job(out.path(), tmp.path());
    if stop == "duration" {
        cmd.args(["--duration", "2"]);
    }
    let run = Run::start(cmd.args(["--exec", "--", "sh", "-c", &script]));
    let pid = run.pid();
    // Until the test ends, pass or fail: not when the run is finished.
    let _group = KillGroupOnDrop(pid);
    perf_and_program(pid, "sh");
    assert!(wait_until(Duration::from_secs(30), || {
        std::fs::read_to_string(&pidfile).is_ok_and(|s| s.ends_with('\n'))
    }));
    let sleep: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let sleep = Proc::of(sleep).expect("the background sleep runs");
    // `$!` is the forked shell until it has exec'd sleep.
    assert!(
        wait_until(Duration::from_secs(30), || sleep.comm().as_deref()
            == Some("sleep")),
        "{:?}",
        sleep.comm()
    );
    if stop == "ctrl-c" {
        std::thread::sleep(Duration::from_millis(1500));
        // A terminal's Ctrl-C: the whole group. `&` jobs of sh ignore it.
        kill_process_group(Pid::from_raw(pid as i32).unwrap(), Signal::INT).unwrap();
    }
    let (status, log) = run.finish(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{log}");
    assert_flamegraph(out.path());
    assert!(
        wait_until(Duration::from_secs(5), || sleep.gone()),
        "the background sleep {} outlived the run",
        sleep.pid
    );
    assert_group_empty(pid);
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn a_background_child_of_the_program_does_not_outlive_duration() {
    background_child_run("duration");
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn a_background_child_of_the_program_does_not_outlive_ctrl_c() {
    background_child_run("ctrl-c");
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn kill_9_of_the_profiler_takes_perf_and_the_program_and_the_next_run_reclaims_the_space() {
    if !perf_available() {
        return;
    }
    let (out, tmp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let run = Run::start(job(out.path(), tmp.path()).args(LONG_RUN));
    let pid = run.pid();
    // Until the test ends, pass or fail: not when the run is finished.
    let _group = KillGroupOnDrop(pid);
    let (perf, demo) = perf_and_program(pid, "demo");
    std::thread::sleep(Duration::from_millis(1000));
    signal(pid, Signal::KILL);
    let (status, _) = run.finish(Duration::from_secs(10));
    assert_eq!(status.code(), None, "killed");
    assert!(
        wait_until(Duration::from_secs(5), || perf.gone() && demo.gone()),
        "left running: perf {} (gone: {}), demo {} (gone: {})",
        perf.pid,
        perf.gone(),
        demo.pid,
        demo.gone()
    );
    // Its scratch folder stays behind, named with its pid...
    let left = names(tmp.path());
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(
        left[0].starts_with(&format!("rust-flamegraph-{pid}-")),
        "{left:?}"
    );

    // ...until the next run in the same TMPDIR.
    let next = run_cmd(job(out.path(), tmp.path()).args(SMALL_RUN));
    assert!(next.status.success(), "{}", text(&next));
    let log = text(&next);
    assert!(
        log.contains("removed 1 perf.data folder") && log.contains("MB reclaimed"),
        "{log}"
    );
    assert!(names(tmp.path()).is_empty(), "{:?}", names(tmp.path()));
    assert_demo_profile(out.path());
}

fn run_cmd(cmd: &mut Command) -> std::process::Output {
    run(cmd.stderr(Stdio::piped()).stdout(Stdio::piped()))
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn sighup_is_handled_like_sigterm() {
    if !perf_available() {
        return;
    }
    let (out, tmp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let run = Run::start(job(out.path(), tmp.path()).args(LONG_RUN));
    let pid = run.pid();
    // Until the test ends, pass or fail: not when the run is finished.
    let _group = KillGroupOnDrop(pid);
    run.wait_for("rust-flamegraph: recording");
    perf_and_program(pid, "demo");
    std::thread::sleep(Duration::from_millis(1500));
    signal(pid, Signal::HUP);
    let (status, log) = run.finish(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("SIGHUP: stopping the recording"), "{log}");
    assert_demo_profile(out.path());
    assert!(assert_flamegraph(out.path()).contains("(stopped early)"));
    assert_group_empty(pid);
    assert!(names(tmp.path()).is_empty(), "{:?}", names(tmp.path()));
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn one_sigterm_after_the_recording_does_not_lose_it() {
    if !perf_available() {
        return;
    }
    let (out, tmp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // DWARF stacks, ~10k samples, written to perf.data and read after the
    // recording (a streamed one is mostly read while recorded):
    // post-processing long enough for the signal to land in it.
    let run = Run::start(
        job(out.path(), tmp.path())
            .args(["--call-graph", "dwarf", "-F", "4999", "--duration", "2"])
            .arg("--keep-perf-data")
            .args(LONG_RUN),
    );
    let pid = run.pid();
    // Until the test ends, pass or fail: not when the run is finished.
    let _group = KillGroupOnDrop(pid);
    run.wait_for("rust-flamegraph: reading");
    signal(pid, Signal::TERM); // `docker stop`, while post-processing
    let (status, log) = run.finish(Duration::from_secs(120));
    assert!(
        log.contains("SIGTERM: the recording is complete; finishing"),
        "the signal should land in post-processing: {log}"
    );
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(!log.contains("aborted"), "{log}");
    let folded = std::fs::read_to_string(out.path().join("stacks.folded")).unwrap();
    assert!(folded.contains("demo::run_iteration"), "{folded}");
    assert_flamegraph(out.path());
    assert_group_empty(pid);
    assert!(names(tmp.path()).is_empty(), "{:?}", names(tmp.path()));
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn a_failing_perf_record_is_reported_with_its_reason_and_not_post_processed() {
    if !perf_available() {
        return;
    }
    let cases: &[(&[&str], i32, &[&str])] = &[
        (
            &["--exec", "--", "/nonexistent/prog"],
            3,
            &[
                "could not start `/nonexistent/prog`",
                "No such file or directory",
            ],
        ),
        (
            &["--exec", "--", "/etc/passwd"],
            3,
            &["could not start `/etc/passwd`", "Permission denied"],
        ),
        // Never a pid: they stop at 2^22.
        (
            &["--pid", "4194305"],
            3,
            &["perf record failed", "No such process"],
        ),
        (
            &["--cmd", "--bogus-flag", "--", "--iters", "10"],
            2,
            &[
                "perf record rejected the extra arguments given with --cmd (`--bogus-flag`)",
                "unknown option `bogus-flag'",
            ],
        ),
    ];
    for (args, code, says) in cases {
        let (out, tmp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let result = run_cmd(job(out.path(), tmp.path()).args(*args));
        let log = text(&result);
        assert_exit(&result, *code, says);
        assert!(
            !log.contains("rust-flamegraph: reading"),
            "post-processed: {log}"
        );
        assert!(
            !log.contains("Usage: perf record"),
            "perf's usage shown: {log}"
        );
        assert!(names(out.path()).is_empty(), "{:?}", names(out.path()));
        assert!(names(tmp.path()).is_empty(), "{:?}", names(tmp.path()));
    }
}
