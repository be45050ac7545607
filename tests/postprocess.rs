//! In-process post-processing against the real thing: perf's own reading of
//! the same recording, and what a default run of the demo must show
//! (complete stacks, allocator frames under their callers, inlined frames
//! with full paths).

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use common::*;

fn profiler() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rust-flamegraph"));
    cmd.current_dir(repo());
    cmd
}

/// `a::b::<T>::c::<U>` and `c<U>` both become `c`: the comparable core of a
/// function name, whichever tool wrote it and however it was mangled.
fn core_name(name: &str) -> String {
    let name = name.trim_end_matches("_[k]");
    let name = format!("{:#}", rustc_demangle::demangle(name));
    let mut depth = 0;
    let mut flat = String::new();
    let mut prev = ' ';
    for c in name.chars() {
        let arrow = prev == '-';
        prev = c;
        match c {
            '<' => depth += 1,
            '>' if depth > 0 && !arrow => depth -= 1,
            _ if depth == 0 => flat.push(c),
            _ => {}
        }
    }
    let flat = flat.trim_end_matches(':');
    let flat = flat.split(" (").next().unwrap_or(flat);
    let last = flat.rsplit("::").next().unwrap_or(flat);
    // One C function, several symbols at its address: glibc's internal and
    // versioned aliases (__close/close, open64/open, cfree/free), and GCC's
    // clones (`.constprop.0`).
    let last = last.split(['@', '.']).next().unwrap_or(last);
    let last = last
        .trim_start_matches("__GI_")
        .trim_start_matches("__vdso_")
        .trim_start_matches("__libc_")
        .trim_start_matches('_');
    let last = last.strip_suffix("64").unwrap_or(last);
    let last = if last == "cfree" { "free" } else { last };
    last.replace("memcpy_", "memmove_")
}

/// Leaf function of every sample, by `perf script`.
fn perf_script_leaves(data: &Path) -> HashMap<String, u64> {
    let out = run(Command::new("perf")
        .args(["script", "-F", "ip,sym", "--no-inline", "-i"])
        .arg(data));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let mut leaves = HashMap::new();
    let mut first = true;
    for line in text.lines() {
        if line.trim().is_empty() {
            first = true;
            continue;
        }
        if first {
            first = false;
            // `addr sym+off` or `addr [unknown]`; names may hold spaces.
            let sym = line.trim().split_once(' ').map_or("[unknown]", |(_, s)| s);
            let sym = sym.rsplit_once("+0x").map_or(sym, |(s, _)| s);
            *leaves.entry(core_name(sym)).or_default() += 1;
        }
    }
    leaves
}

/// Leaf function of every sample, by folded stacks.
fn folded_leaves(folded: &str) -> HashMap<String, u64> {
    let mut leaves = HashMap::new();
    for line in folded.lines() {
        let (stack, count) = line.rsplit_once(' ').unwrap();
        let leaf = stack.rsplit(';').next().unwrap();
        *leaves.entry(core_name(leaf)).or_default() += count.parse::<u64>().unwrap();
    }
    leaves
}

#[test]
fn core_names_agree_across_manglings() {
    assert_eq!(
        core_name("core::slice::sort::shared::smallsort::insert_tail::<u64, <u64 as core::cmp::PartialOrd>::lt>"),
        "insert_tail"
    );
    assert_eq!(
        core_name("insert_tail<u64, fn(&u64, &u64) -> bool>"),
        "insert_tail"
    );
    assert_eq!(core_name("<u64 as core::cmp::PartialOrd>::lt"), "lt");
    assert_eq!(core_name("do_syscall_64_[k]"), "do_syscall_");
    assert_eq!(core_name("__open64"), "open");
    assert_eq!(core_name("_ZN4demo3run17h0123456789abcdefE"), "run");
    assert_eq!(core_name("cfree@GLIBC_2.2.5"), "free");
    assert_eq!(core_name("__GI___libc_free"), "free");
    assert_eq!(core_name("unlink_chunk.constprop.0"), "unlink_chunk");
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn stacks_agree_with_perf_script_on_a_frame_pointer_recording() {
    if !perf_available() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let rec = run(profiler()
        .args(["--call-graph", "fp", "--keep-perf-data", "--out"])
        .arg(out.path())
        .args(SMALL_RUN));
    assert_exit(&rec, 0, &[]);
    let data = out.path().join("perf.data");
    let again = tempfile::tempdir().unwrap();
    let ours = run(profiler()
        .args(["--no-inline", "--out"])
        .arg(again.path())
        .arg("--perfdata")
        .arg(&data));
    assert_exit(&ours, 0, &[]);
    let ours = folded_leaves(&std::fs::read_to_string(again.path().join("stacks.folded")).unwrap());
    let perfs = perf_script_leaves(&data);
    let total: u64 = perfs.values().sum();
    assert_eq!(
        ours.values().sum::<u64>(),
        total,
        "same samples\nours {ours:?}\nperf {perfs:?}"
    );
    let same: u64 = perfs
        .iter()
        .map(|(f, n)| (*n).min(ours.get(f).copied().unwrap_or(0)))
        .sum();
    assert!(
        same * 100 >= total * 99,
        "only {same} of {total} samples have the same leaf\nours {ours:?}\nperf {perfs:?}"
    );
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn the_default_run_has_complete_named_stacks_with_inlined_frames() {
    if !perf_available() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    // Long enough (~1.5k samples) that the few samples of process start-up
    // (the kernel's exec, before any user frame exists) stay far below 0.5 %.
    let rec = run(profiler()
        .arg("--out")
        .arg(out.path())
        .args(["--", "--iters", "1000", "--size", "100000"]));
    assert_exit(&rec, 0, &["complete stacks"]);
    let folded = std::fs::read_to_string(out.path().join("stacks.folded")).unwrap();
    let (mut total, mut complete, mut alloc_under_demo, mut inlined) = (0u64, 0u64, 0u64, 0u64);
    for line in folded.lines() {
        let (stack, count) = line.rsplit_once(' ').unwrap();
        let count: u64 = count.parse().unwrap();
        total += count;
        let frames: Vec<&str> = stack.split(';').collect();
        if frames
            .iter()
            .any(|f| rust_flamegraph::model::counts::is_thread_root(f))
        {
            complete += count;
        }
        let demo = frames.iter().position(|f| f.starts_with("demo::"));
        let alloc = frames
            .iter()
            .position(|f| ["malloc", "free", "realloc", "_int_malloc", "_int_free"].contains(f));
        if let (Some(d), Some(a)) = (demo, alloc) {
            if d < a {
                alloc_under_demo += count;
            }
        }
        // sort_blocks calls the standard library's sort, inlined into it.
        if let Some(i) = frames.iter().position(|f| *f == "demo::sort_blocks") {
            if frames[i + 1..]
                .iter()
                .any(|f| f.starts_with("core::slice::sort::"))
            {
                inlined += count;
            }
        }
    }
    assert!(total >= 50, "{total} samples");
    assert!(
        complete * 1000 >= total * 995,
        "only {complete} of {total} stacks reach a thread root:\n{folded}"
    );
    assert!(
        alloc_under_demo > 0,
        "no allocator frame under a demo function:\n{folded}"
    );
    assert!(
        inlined > 0,
        "no inlined sort frames under demo::sort_blocks:\n{folded}"
    );
    assert!(
        folded.contains("::<u64"),
        "generic arguments are kept in frame names:\n{folded}"
    );
    assert!(
        !folded.contains("[unknown];"),
        "an unknown frame mid-stack:\n{folded}"
    );
    let svg = std::fs::read_to_string(out.path().join("flamegraph.svg")).unwrap();
    assert_well_formed_xml(&svg);
    assert!(svg.contains("core::slice::sort::"), "inlined frames drawn");
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn a_run_with_too_few_samples_keeps_the_earlier_results() {
    if !perf_available() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let folded = out.path().join("earlier.folded");
    std::fs::write(&folded, "demo;demo::main;demo::run 500\n").unwrap();
    let first = run(profiler()
        .arg("--out")
        .arg(out.path())
        .arg("--from-folded")
        .arg(&folded));
    assert_exit(&first, 0, &[]);
    let svg = std::fs::read(out.path().join("flamegraph.svg")).unwrap();
    // The demo's --help exits 0 at once: a sample or none.
    let quick = run(profiler()
        .arg("--out")
        .arg(out.path())
        .args(["--", "--help"]));
    assert_exit(
        &quick,
        7,
        &[
            "too short to draw",
            "earlier results in the output folder were kept",
        ],
    );
    assert_eq!(
        std::fs::read(out.path().join("flamegraph.svg")).unwrap(),
        svg
    );
}

/// Unmounts a tmpfs when dropped.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
#[ignore = "needs perf and root: cargo test -- --include-ignored"]
fn an_output_folder_that_fills_up_keeps_what_was_recorded_and_says_how_to_draw_it() {
    if !perf_available() || !as_root("mounting a small tmpfs") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("small");
    std::fs::create_dir(&out).unwrap();
    // Room for the start-up check, not for a flamegraph.
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16k", "tmpfs"])
        .arg(&out)
        .output();
    if !mounted.as_ref().is_ok_and(|o| o.status.success()) {
        loud("SKIPPED: cannot mount a tmpfs here; this test did not run");
        return;
    }
    let _mounted = Mounted(out.clone());
    // A streamed recording (the default) keeps its stacks; one written to
    // perf.data (--keep-perf-data) keeps perf.data.
    for (extra, kept_what, option) in [
        (None, "the stacks are kept at ", "--from-folded"),
        (
            Some("--keep-perf-data"),
            "the recording is kept at ",
            "--perfdata",
        ),
    ] {
        let full = run(profiler()
            .arg("--out")
            .arg(&out)
            .args(extra)
            .args(SMALL_RUN));
        assert_exit(&full, 6, &[kept_what, option]);
        let log = text(&full);
        let kept = log
            .split(kept_what)
            .nth(1)
            .and_then(|rest| rest.split(':').next())
            .map(std::path::PathBuf::from)
            .expect("the kept file's path");
        assert!(kept.is_file(), "{} kept", kept.display());
        let again = tempfile::tempdir().unwrap();
        let drawn = run(profiler()
            .arg("--out")
            .arg(again.path())
            .arg(option)
            .arg(&kept));
        let _ = std::fs::remove_file(&kept);
        assert_exit(&drawn, 0, &["wrote"]);
        assert!(again.path().join("flamegraph.svg").is_file());
    }
}

#[test]
#[ignore = "needs perf and root: cargo test -- --include-ignored"]
fn a_tmpdir_without_room_is_refused_before_recording() {
    if !perf_available() || !as_root("mounting a small tmpfs") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=400k", "tmpfs"])
        .arg(tmp.path())
        .output();
    if !mounted.as_ref().is_ok_and(|o| o.status.success()) {
        loud("SKIPPED: cannot mount a tmpfs here; this test did not run");
        return;
    }
    let _mounted = Mounted(tmp.path().to_path_buf());
    let out = tempfile::tempdir().unwrap();
    // Only a recording written to perf.data needs the room (--keep-perf-data);
    // a streamed one (the default) writes nothing there.
    let refused = run(profiler()
        .env("TMPDIR", tmp.path())
        .arg("--out")
        .arg(out.path())
        .arg("--keep-perf-data")
        .args(SMALL_RUN));
    assert_exit(&refused, 1, &["too little for perf.data", "set TMPDIR"]);
    assert!(
        !text(&refused).contains("recording `"),
        "nothing was recorded"
    );
    let streamed = run(profiler()
        .env("TMPDIR", tmp.path())
        .arg("--out")
        .arg(out.path())
        .args(SMALL_RUN));
    assert_exit(&streamed, 0, &["as perf recorded them", "complete stacks"]);
}

#[test]
#[ignore = "needs perf and root: cargo test -- --include-ignored"]
fn a_kept_recording_in_a_users_folder_renders_again() {
    if !perf_available() || !as_root("giving the output folder to another user") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("users");
    std::fs::create_dir(&out).unwrap();
    std::os::unix::fs::chown(&out, Some(1234), Some(1234)).unwrap();
    let rec = run(profiler()
        .args(["--keep-perf-data", "--out"])
        .arg(&out)
        .args(SMALL_RUN));
    assert_exit(&rec, 0, &[]);
    let data = out.join("perf.data");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(&data).unwrap().uid(),
        1234,
        "the folder owner's"
    );
    // perf itself refuses a perf.data not owned by the reader; we read it.
    let again = tempfile::tempdir().unwrap();
    let drawn = run(profiler()
        .arg("--out")
        .arg(again.path())
        .arg("--perfdata")
        .arg(&data));
    assert_exit(&drawn, 0, &["complete stacks"]);
}
