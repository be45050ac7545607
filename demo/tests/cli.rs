//! The demo's command line, as the profiler's users meet it: usage errors
//! with clap's exit code 2 and a pointer to `--help`, a buffer too large for
//! this machine refused before it is allocated, and reproducible runs.

use std::process::{Command, Output};

fn demo(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_demo"))
        .args(args)
        .output()
        .expect("the demo runs");
    eprintln!(
        "---- demo {args:?} -> {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_arguments_are_usage_errors_that_point_to_help() {
    for args in [
        &["--iters", "abc"][..],
        &["--size", "-5"],
        &["--iters"],
        &["--frobnicate"],
        &["--size", "0"],
        &["--iters", "0"],
        &["--seed", "1.5"],
        &["--phases", "0"],
        &["--phases", "x"],
    ] {
        let out = demo(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("error:") && err.contains("--help"),
            "{args:?}: {err}"
        );
        assert!(stdout(&out).is_empty(), "{args:?}: no checksum");
    }
}

#[test]
fn a_buffer_larger_than_memory_is_refused_with_a_size_that_fits() {
    let out = demo(&["--size", "18000000000000000000"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("use --size"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
}

#[test]
fn a_small_run_prints_its_checksum_and_one_seed_gives_one_checksum() {
    let checksum = |seed: &str| {
        let out = demo(&["--iters", "2", "--size", "1000", "--seed", seed]);
        assert!(out.status.success(), "{}", stderr(&out));
        let line = stdout(&out);
        assert!(
            line.starts_with("checksum ") && line.contains("(2 iterations of 1000 values)"),
            "{line}"
        );
        line
    };
    assert_eq!(checksum("7"), checksum("7"));
    assert_ne!(checksum("7"), checksum("8"));
}

#[test]
fn phases_last_their_seconds_and_encode_on_a_thread_of_their_own() {
    let started = std::time::Instant::now();
    let out = demo(&["--phases", "2", "--size", "20000"]);
    let took = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("(2 phases of 1 s over 20000 values)"),
        "{}",
        stdout(&out)
    );
    // Two seconds, not a fixed amount of work; a loaded machine may add some.
    assert!((2.0..20.0).contains(&took), "{took:.2} s");
}

#[test]
fn help_and_version_exit_zero() {
    let out = demo(&["--help"]);
    assert!(out.status.success());
    for option in ["--iters", "--size", "--seed", "--phases"] {
        assert!(stdout(&out).contains(option), "{option}: {}", stdout(&out));
    }
    let out = demo(&["--version"]);
    assert!(out.status.success());
    assert!(stdout(&out).starts_with("demo "), "{}", stdout(&out));
}
