//! `--format pprof` of a real recording of the demo, as `go tool pprof`
//! reads it: source lines (`-list`), thread labels (`-tagfocus`),
//! disassembly of the demo's binary (`-disasm`), and the same totals as
//! stacks.folded. (The threaded fixture's profile is checked without `go`
//! in `tests/x86_64.rs`; the names-only profile of folded stacks in
//! `tests/diff_pprof.rs`.)

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// `go tool pprof ARGS profile`'s output; fails the test if go fails.
fn go_pprof(profile: &Path, args: &[&str]) -> String {
    let out = run(Command::new("go")
        .args(["tool", "pprof", "-sample_index=samples"])
        .args(args)
        .arg(profile)
        .env("GOTOOLCHAIN", "local"));
    assert!(
        out.status.success(),
        "go tool pprof {args:?}: {}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// binutils' objdump, which `go tool pprof -disasm` runs.
fn objdump_available() -> bool {
    let probe = Command::new("objdump")
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run objdump: {e}"))
        .and_then(|o| {
            o.status
                .success()
                .then_some(())
                .ok_or_else(|| String::from_utf8_lossy(&o.stderr).into_owned())
        });
    require("objdump (binutils, for `go tool pprof -disasm`)", probe)
}

/// N of pprof's `Showing nodes accounting for N, P% of T total`, with
/// every node shown (so N is the total of what is kept).
fn accounted(top: &str) -> u64 {
    let line = top
        .lines()
        .find(|l| l.starts_with("Showing nodes accounting for "))
        .unwrap_or_else(|| panic!("no total in: {top}"));
    let n = line["Showing nodes accounting for ".len()..]
        .split(',')
        .next()
        .unwrap();
    n.parse().unwrap_or_else(|_| panic!("not a count: {line}"))
}

/// A `--phases 2` run (a second of sorting on the main thread, one of
/// encoding on `encoder`), read by `go tool pprof`:
///
/// - `-list 'demo::encode$'` prints demo/src/main.rs's lines of `encode`
///   (read here from the file), with samples on them;
/// - `-tagfocus thread=encoder` keeps exactly the samples of stacks.folded's
///   `encoder` stacks; `-tags` lists `thread`, `thread_id` and `pid`;
/// - `-disasm sort_blocks` disassembles the demo's binary, instructions
///   annotated with main.rs lines;
/// - `-top`'s total is stacks.folded's, its binary the demo; the profile
///   holds one sample per distinct (location list, labels), fewer than the
///   samples taken.
#[test]
#[ignore = "needs perf, go and objdump: cargo test -- --include-ignored"]
fn go_tool_pprof_shows_the_demos_sources_threads_and_disassembly() {
    if !perf_available() || !go_available() || !objdump_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let result = run(profiler_to(dir.path()).args(["--format", "pprof", "--", "--phases", "2"]));
    assert!(result.status.success(), "{}", text(&result));
    let profile = dir.path().join("profile.pb.gz");
    let folded = std::fs::read_to_string(dir.path().join("stacks.folded")).unwrap();
    let total = total_samples(&folded);
    let encoder: u64 = stacks(&folded)
        .iter()
        .filter(|(frames, _)| frames.split(';').next() == Some("encoder"))
        .map(|(_, n)| n)
        .sum();
    assert!(encoder > 0 && encoder < total, "{folded}");

    // -list: the source of `encode`, from the file the profile names.
    let source = std::fs::read_to_string(repo().join("demo/src/main.rs")).unwrap();
    let (number, line) = source
        .lines()
        .enumerate()
        .find(|(_, l)| l.starts_with("fn encode("))
        .expect("demo::encode in main.rs");
    let list = go_pprof(&profile, &["-list", "demo::encode$"]);
    assert!(
        list.contains("ROUTINE ======================== demo::encode in ")
            && list.contains("demo/src/main.rs"),
        "{list}"
    );
    let shown = format!("{}:{line}", number + 1);
    assert!(list.contains(&shown), "no `{shown}` in:\n{list}");
    let with_samples = list
        .lines()
        .filter(|l| {
            let mut cols = l.split_whitespace();
            let (_flat, cum) = (cols.next(), cols.next());
            cum.is_some_and(|c| c.parse::<u64>().is_ok_and(|n| n > 0))
                && cols.next().is_some_and(|c| c.ends_with(':'))
        })
        .count();
    assert!(with_samples > 0, "no source line with samples:\n{list}");

    // -tagfocus: the encoder thread's samples, all of them and no others.
    let all = [
        "-top",
        "-nodefraction=0",
        "-edgefraction=0",
        "-nodecount=1000000",
    ];
    let focused = go_pprof(
        &profile,
        &[&all[..], &["-tagfocus=thread=encoder"]].concat(),
    );
    assert_eq!(accounted(&focused), encoder, "{focused}");
    let tags = go_pprof(&profile, &["-tags"]);
    for key in ["thread", "thread_id", "pid"] {
        assert!(
            tags.contains(&format!(" {key}: Total ")),
            "no {key}: {tags}"
        );
    }
    let top = go_pprof(&profile, &all);
    assert_eq!(accounted(&top), total, "{top}");
    assert!(top.starts_with("File: demo\n"), "the main binary: {top}");
    assert!(top.contains(&format!("Total samples = {total}")), "{top}");

    // -disasm: the demo's binary, at the profile's addresses.
    let disasm = go_pprof(&profile, &["-disasm", "sort_blocks"]);
    assert!(disasm.contains("ROUTINE ===="), "{disasm}");
    let annotated = disasm
        .lines()
        .filter(|l| l.contains("demo::sort_blocks main.rs:"))
        .count();
    assert!(
        annotated > 0,
        "no instruction of sort_blocks at a main.rs line:\n{disasm}"
    );

    // Aggregated: one sample per distinct (location list, labels).
    let p = {
        use libdd_profiling_protobuf::prost_impls::{Message, Profile};
        let bytes = std::fs::read(&profile).unwrap();
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut raw)
            .unwrap();
        Profile::decode(raw.as_slice()).unwrap()
    };
    let mut keys: Vec<_> = p
        .samples
        .iter()
        .map(|s| (s.location_ids.clone(), s.labels.clone()))
        .collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n, "a (location list, labels) twice");
    assert!(
        (n as u64) < total,
        "{n} pprof samples for {total} samples: not aggregated"
    );
}
