//! End to end on this machine: the real perf, the real demo.

mod common;

use std::process::Command;

use common::*;

fn profiler() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rust-flamegraph"));
    cmd.current_dir(repo()).env_remove("RUST_FLAMEGRAPH_OUT");
    cmd
}

#[test]
fn profiles_the_demo_into_svg_and_folded_stacks() {
    if !perf_available() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let result = run(profiler().arg("--out").arg(out.path()).args(SMALL_RUN));
    assert!(result.status.success(), "{}", text(&result));
    let samples = assert_demo_profile(out.path());
    let log = text(&result);
    assert!(
        log.contains(&format!("samples              {samples}")),
        "{log}"
    );
    assert!(log.contains("hottest functions"), "{log}");
    assert!(
        log.contains("checksum "),
        "the demo's own output is shown: {log}"
    );
    let mut names: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["flamegraph.svg", "stacks.folded"],
        "only the results, no temporaries"
    );
}

#[test]
fn dwarf_unwinding_and_kept_perf_data() {
    if !perf_available() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let result = run(profiler().arg("--out").arg(out.path()).args([
        "--call-graph",
        "dwarf",
        "--keep-perf-data",
        "--no-inline",
        "--",
        "--iters",
        "200",
        "--size",
        "50000",
    ]));
    assert!(result.status.success(), "{}", text(&result));
    assert_demo_profile(out.path());
    assert!(out.path().join("perf.data").metadata().unwrap().len() > 100_000);
}

#[test]
fn a_run_too_short_to_sample_says_how_to_fix_it() {
    if !perf_available() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    // At 1 Hz the first sample would come after a second; the demo takes milliseconds.
    let result = run(profiler()
        .arg("--out")
        .arg(out.path())
        .args(["--freq", "1", "--", "--iters", "1", "--size", "10"]));
    assert_exit(&result, 7, &["no samples", "--freq"]);
    assert!(!out.path().join("flamegraph.svg").exists());
}

#[test]
fn the_demos_usage_error_is_shown_and_no_svg_written() {
    if !perf_available() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let result = run(profiler()
        .arg("--out")
        .arg(out.path())
        .args(["--", "--iters", "abc"]));
    assert_exit(
        &result,
        5,
        &["invalid value 'abc' for '--iters", "exited with status 2"],
    );
    assert!(!out.path().join("flamegraph.svg").exists());
}

#[test]
fn an_unwritable_output_is_refused_before_anything_runs() {
    if !perf_available() {
        return; // perf is checked first
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let result = run(profiler()
        .arg("--out")
        .arg(file.join("fg"))
        .arg("--exec")
        .args(["--", "true"]));
    assert_exit(&result, 6, &["cannot create the output folder", "--out"]);
    let log = text(&result);
    assert!(
        !log.contains("recording"),
        "checked before recording: {log}"
    );
}

#[test]
fn missing_perf_names_the_package_to_install() {
    let out = tempfile::tempdir().unwrap();
    let result = run(profiler()
        .env("PERF", "/nonexistent/perf")
        .arg("--out")
        .arg(out.path()));
    assert_exit(&result, 3, &["apt-get install linux-perf"]);
}

#[test]
fn bad_values_are_usage_errors() {
    for args in [&["--freq", "0"][..], &["--call-graph", "lbr"], &["--bogus"]] {
        let result = run(profiler().args(args));
        assert_eq!(result.status.code(), Some(2), "{args:?}: {}", text(&result));
    }
}

#[test]
fn the_demo_rejects_bad_arguments_with_usage_errors() {
    let demo = |args: &[&str]| {
        run(Command::new(env!("CARGO"))
            .current_dir(repo())
            .args(["run", "-q", "-p", "demo", "--"])
            .args(args))
    };
    for args in [
        &["--iters", "abc"][..],
        &["--size", "-5"],
        &["--iters"],
        &["--frobnicate"],
        &["--size", "0"],
    ] {
        let out = demo(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out).contains("error:") && text(&out).contains("--help"),
            "{args:?}: {}",
            text(&out)
        );
    }
    let out = demo(&["--size", "18000000000000000000"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("use --size"), "{}", text(&out));
    let out = demo(&["--iters", "2", "--size", "1000"]);
    assert!(out.status.success() && text(&out).contains("checksum "));
}

#[test]
fn flamechart_keeps_samples_in_time_order() {
    if !perf_available() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let result = run(profiler()
        .arg("--out")
        .arg(out.path())
        .args(["--flamechart"])
        .args(SMALL_RUN));
    assert!(result.status.success(), "{}", text(&result));
    assert_demo_profile(out.path());
    let folded = std::fs::read_to_string(out.path().join("stacks.folded")).unwrap();
    let stacks: Vec<&str> = folded
        .lines()
        .map(|l| l.rsplit_once(' ').unwrap().0)
        .collect();
    let distinct: std::collections::HashSet<&str> = stacks.iter().copied().collect();
    assert!(
        distinct.len() < stacks.len(),
        "in time order, a stack recurs after others: {} lines, {} distinct",
        stacks.len(),
        distinct.len()
    );
}
