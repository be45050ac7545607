//! Nothing lost, nothing confusing: signals, crashes, limits, concurrent
//! runs and hostile input, with the real perf and the real demo.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A profiler run of a long demo in its own process group (as a shell job
/// is), returned once it has recorded for a while. Its stderr lines arrive
/// on `lines` and are collected by a thread.
struct LongRun {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl LongRun {
    /// Waits for a line of stderr containing `needle`.
    fn wait_for(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
                if line.contains(needle) {
                    return;
                }
            }
        }
        panic!("the profiler never printed {needle:?}");
    }
}

fn start_long_run(out: &Path, tmpdir: &Path, extra: &[&str]) -> LongRun {
    use std::os::unix::process::CommandExt;
    demo_binary(); // built before the clock starts
    let mut child = profiler_to(out)
        .env("TMPDIR", tmpdir)
        .args(extra)
        .args(["--", "--iters", "1000000", "--size", "50000"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let run = LongRun {
        child,
        lines,
        stderr,
    };
    run.wait_for("rust-flamegraph: recording");
    std::thread::sleep(Duration::from_millis(1500));
    run
}

/// Waits for the profiler to exit; `limit` only guards against a hang (tests
/// that promise a time, like docker stop's grace period, assert it themselves).
fn wait(mut run: LongRun, limit: Duration) -> (std::process::ExitStatus, String) {
    let start = Instant::now();
    loop {
        if let Some(status) = run.child.try_wait().unwrap() {
            let log = run.stderr.join().unwrap();
            eprintln!("{log}");
            return (status, log);
        }
        if start.elapsed() > limit {
            let _ = run.child.kill();
            panic!("the profiler did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(pid: i32, sig: i32) {
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
}

/// No process is left in the run's process group (perf and the demo are gone).
fn assert_group_empty(pgid: u32) {
    for _ in 0..200 {
        if unsafe { libc::kill(-(pgid as i32), 0) } != 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("processes of group {pgid} outlived the profiler");
}

fn assert_stopped_early_profile(out: &Path) {
    assert_demo_profile(out);
    let svg = std::fs::read_to_string(out.join("flamegraph.svg")).unwrap();
    assert!(svg.contains("(stopped early)"));
    assert_eq!(
        names_in(out),
        ["flamegraph.svg", "report.html", "stacks.folded"]
    );
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn ctrl_c_stops_the_workload_and_still_renders() {
    if !perf_available() {
        return;
    }
    let (out, tmp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let run = start_long_run(out.path(), tmp.path(), &[]);
    let pgid = run.child.id();
    signal(-(pgid as i32), libc::SIGINT); // a terminal's Ctrl-C: the whole group
    let (status, log) = wait(run, Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("stopping the recording"), "{log}");
    assert_stopped_early_profile(out.path());
    assert_group_empty(pgid);
    assert!(
        names_in(tmp.path()).is_empty(),
        "perf.data's folder removed: {:?}",
        names_in(tmp.path())
    );
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn sigterm_to_the_profiler_alone_is_handled_like_docker_stop() {
    if !perf_available() {
        return;
    }
    let (out, tmp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let run = start_long_run(out.path(), tmp.path(), &[]);
    let pid = run.child.id();
    let start = Instant::now();
    signal(pid as i32, libc::SIGTERM); // only us: we must stop perf and the demo
    let (status, log) = wait(run, Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "stopped and rendered in {:?}: docker stop kills after 10 s",
        start.elapsed()
    );
    assert_stopped_early_profile(out.path());
    assert_group_empty(pid);
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn a_second_signal_aborts_at_once_and_leaves_nothing() {
    if !perf_available() {
        return;
    }
    let (out, tmp) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let run = start_long_run(out.path(), tmp.path(), &[]);
    let pid = run.child.id();
    signal(pid as i32, libc::SIGINT);
    // Signals sent back to back merge into one: the second must come after
    // the first was handled, while perf flushes.
    run.wait_for("stopping the recording");
    signal(pid as i32, libc::SIGINT);
    // Aborting does not post-process: exit 130 rather than 0 is what shows
    // it; the time limit only guards against a hang.
    let (status, log) = wait(run, Duration::from_secs(60));
    assert_eq!(status.code(), Some(130), "{log}");
    assert!(log.contains("aborted"), "{log}");
    assert!(
        names_in(out.path()).is_empty(),
        "nothing written: {:?}",
        names_in(out.path())
    );
    assert!(
        names_in(tmp.path()).is_empty(),
        "no perf.data left: {:?}",
        names_in(tmp.path())
    );
    assert_group_empty(pid);
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn duration_stops_a_long_run() {
    if !perf_available() {
        return;
    }
    demo_binary();
    let out = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let result = run(profiler_to(out.path()).args(["--duration", "1", "--", "--iters", "1000000"]));
    assert!(result.status.success(), "{}", text(&result));
    // Unstopped, this demo would run for many minutes: any bound far below
    // that shows the stop, with room for a loaded machine.
    assert!(
        start.elapsed() < Duration::from_secs(90),
        "{:?}",
        start.elapsed()
    );
    assert!(
        text(&result).contains("--duration 1.0s reached"),
        "{}",
        text(&result)
    );
    assert_stopped_early_profile(out.path());
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn a_growing_perf_data_is_stopped_at_the_limit() {
    if !perf_available() {
        return;
    }
    demo_binary();
    let out = tempfile::tempdir().unwrap();
    let result = run(profiler_to(out.path()).args([
        "--call-graph",
        "dwarf",
        "--max-perf-data",
        "8",
        "--no-inline",
        "--",
        "--iters",
        "1000000",
    ]));
    assert!(result.status.success(), "{}", text(&result));
    let log = text(&result);
    assert!(log.contains("warning: perf.data is"), "warned first: {log}");
    assert!(
        log.contains("reached") && log.contains("the limit"),
        "{log}"
    );
    assert_stopped_early_profile(out.path());
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn crashing_programs_still_get_their_flamegraph_and_their_status() {
    if !perf_available() {
        return;
    }
    let demo = demo_binary();
    for (crash, says) in [
        ("kill -SEGV $$", "killed by signal 11"),
        ("kill -ABRT $$", "killed by signal 6"),
        ("exit 101", "exited with status 101"), // a panic's status
    ] {
        let out = tempfile::tempdir().unwrap();
        let script = format!("\"$0\" --iters 300 --size 50000 && {crash}");
        let result = run(profiler_to(out.path())
            .args(["--exec", "--", "sh", "-c", &script])
            .arg(&demo));
        assert_eq!(result.status.code(), Some(5), "{crash}: {}", text(&result));
        assert!(text(&result).contains(says), "{crash}: {}", text(&result));
        let folded = std::fs::read_to_string(out.path().join("stacks.folded")).unwrap();
        assert!(folded.contains("demo::run_iteration"), "{crash}: {folded}");
        assert_well_formed_xml(
            &std::fs::read_to_string(out.path().join("flamegraph.svg")).unwrap(),
        );
    }
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn concurrent_runs_into_one_folder_leave_a_matching_pair() {
    if !perf_available() {
        return;
    }
    demo_binary();
    let out = tempfile::tempdir().unwrap();
    let spawn = |iters: &str| {
        profiler_to(out.path())
            .args(["--", "--iters", iters, "--size", "50000"])
            .stderr(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn("300"), spawn("600"));
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    // Whichever finished last, its SVG and folded stacks belong together.
    let samples = assert_demo_profile(out.path());
    let svg = std::fs::read_to_string(out.path().join("flamegraph.svg")).unwrap();
    assert!(svg.contains(&format!("{samples} samples")));
    assert_eq!(
        names_in(out.path()),
        ["flamegraph.svg", "report.html", "stacks.folded"]
    );
}

#[test]
fn hostile_folded_stacks_render_safely_or_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("hostile.folded");
    let long = "x".repeat(20_000);
    let mut bytes = format!(
        "demo;<script>alert(1)</script>;a&b 5\ndemo;\"quoted\" 'single' 3\ndemo;{long} 2\n"
    )
    .into_bytes();
    bytes.extend_from_slice(b"demo;caf\xe9;\xff\xfe 4\n\x00\x01\x02 binary junk\nnot a stack\n");
    std::fs::write(&input, &bytes).unwrap();
    let out = dir.path().join("out");
    let result = run(profiler_to(&out).arg("--from-folded").arg(&input));
    assert!(result.status.success(), "{}", text(&result));
    assert!(
        text(&result).contains("skipped 2 lines"),
        "{}",
        text(&result)
    );
    let svg = std::fs::read_to_string(out.join("flamegraph.svg")).unwrap();
    assert_well_formed_xml(&svg);
    assert!(!svg.contains("<script>alert"), "names are escaped");
    assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(svg.contains("14 samples"));

    std::fs::write(&input, b"\x7fELF\x02\x01\x01\x00\x00\x00").unwrap();
    let result = run(profiler_to(&out).arg("--from-folded").arg(&input));
    assert_exit(&result, 1, &["holds no folded stacks"]);
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn a_truncated_perf_data_is_an_error_or_a_partial_render_never_a_crash() {
    if !perf_available() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let result = run(profiler_to(out.path())
        .args(["--keep-perf-data"])
        .args(SMALL_RUN));
    assert!(result.status.success(), "{}", text(&result));
    let data = out.path().join("perf.data");
    let full = std::fs::read(&data).unwrap();
    for keep in [full.len() / 2, 100, 0] {
        let cut = out.path().join(format!("cut-{keep}.data"));
        std::fs::write(&cut, &full[..keep]).unwrap();
        let rerender = out.path().join(format!("re-{keep}"));
        let result = run(profiler_to(&rerender).arg("--perfdata").arg(&cut));
        let code = result.status.code();
        assert!(
            code.is_some() && code != Some(101),
            "no panic, no signal: {}",
            text(&result)
        );
        if code == Some(0) {
            assert_well_formed_xml(
                &std::fs::read_to_string(rerender.join("flamegraph.svg")).unwrap(),
            );
        } else {
            assert!(!text(&result).contains("panicked"), "{}", text(&result));
            assert!(text(&result).contains("error:"), "{}", text(&result));
            assert!(!rerender.join("flamegraph.svg").exists());
        }
    }
}
