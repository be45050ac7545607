//! x86-64, on any machine, without perf: three recordings the profiler made
//! of the demo (`bash .ci/x86_64-fixture` records them and writes
//! `tests/fixtures/x86_64/`) are read by the profiler's default in-process
//! path, `--perfdata FILE --symfs ROOT`, with the recording machine's files
//! (the demo, ld.so, libc and its debug symbols, libgcc_s, the vdso, the
//! kernel symbols the samples name) under ROOT: perf.data → unwound stacks
//! (the kernel's frame-pointer chains, or DWARF unwinding of stack copies) →
//! names. Each must give its golden `stacks.folded` (line for line, sorted),
//! and what a user must see besides: the demo's functions, malloc and free,
//! stacks that reach their thread's start, both threads of `--phases`.
//!
//! A deliberate change of the output is accepted with
//! `UPDATE_GOLDEN=1 cargo test --test x86_64`, which rewrites the goldens
//! (review them: `zdiff`); a new recording needs the script.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use common::*;

/// The fixtures, gzip'd, as committed.
fn fixtures() -> PathBuf {
    repo().join("tests/fixtures/x86_64")
}

/// The fixtures unpacked (once per test binary): `root/`, and
/// `perf.data` and `stacks.folded` in `fp/`, `dwarf/` and `threads/`.
fn unpacked() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        unpack_gz(&fixtures(), dir.path());
        dir
    })
    .path()
}

/// The folded stacks the profiler writes from recording `name` with the
/// machine's files in `root`.
fn folded_with(name: &str, root: &Path) -> String {
    let out = tempfile::tempdir().unwrap();
    let perf_data = unpacked().join(name).join("perf.data");
    let result = run(profiler_to(out.path())
        .arg("--perfdata")
        .arg(&perf_data)
        .arg("--symfs")
        .arg(root));
    assert!(result.status.success(), "{}", text(&result));
    std::fs::read_to_string(out.path().join("stacks.folded")).unwrap()
}

/// [`folded_with`] the fixture's own files.
fn folded(name: &str) -> String {
    folded_with(name, &unpacked().join("root"))
}

/// Folded lines as `(frames, count)`; panics on a line that is not one.
fn parse(folded: &str) -> Vec<(Vec<&str>, u64)> {
    folded
        .lines()
        .map(|line| {
            let (frames, count) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("not a folded stack: {line:?}"));
            let count = count
                .parse()
                .unwrap_or_else(|_| panic!("not a folded stack: {line:?}"));
            (frames.split(';').collect(), count)
        })
        .collect()
}

/// `ours` equals the golden of recording `name`, line for line once sorted;
/// under UPDATE_GOLDEN=1, `ours` becomes the golden.
fn check_golden(name: &str, ours: &str) {
    let path = fixtures().join(name).join("stacks.folded.gz");
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(ours.as_bytes()).unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        loud(&format!("UPDATE_GOLDEN=1: wrote {}", path.display()));
        return;
    }
    let golden = std::fs::read_to_string(unpacked().join(name).join("stacks.folded")).unwrap();
    let sorted = |text: &str| {
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        lines.sort_unstable();
        lines
    };
    let (golden, ours) = (sorted(&golden), sorted(ours));
    if golden != ours {
        let (g, o): (BTreeSet<&String>, BTreeSet<&String>) =
            (golden.iter().collect(), ours.iter().collect());
        let mut diff: Vec<String> = g.difference(&o).map(|l| format!("- {l}")).collect();
        diff.extend(o.difference(&g).map(|l| format!("+ {l}")));
        panic!(
            "{name}: the folded stacks differ from {} (- golden, + ours):\n{}\n\n\
             If the change is intended, run UPDATE_GOLDEN=1 cargo test --test x86_64 \
             and review the new golden.",
            path.display(),
            diff.join("\n")
        );
    }
}

/// Where a thread's stack begins (or a program's `main`): a stack that
/// reaches one was walked to its end.
fn is_thread_root(frame: &str) -> bool {
    const ROOTS: &[&str] = &[
        "_start",
        "_dl_start",
        "__libc_start_main",
        "__libc_start_call_main",
        "main",
        "clone3",
        "start_thread",
    ];
    ROOTS.contains(&frame) || frame.ends_with("::main")
}

/// Samples in all, samples whose stack reaches a thread root, samples with
/// an `[unknown]` frame, and every frame seen.
struct Facts<'a> {
    samples: u64,
    complete: u64,
    unknown: u64,
    frames: BTreeSet<&'a str>,
    /// Samples per thread (the first frame).
    threads: BTreeMap<&'a str, u64>,
}

fn facts(folded: &str) -> Facts<'_> {
    let mut f = Facts {
        samples: 0,
        complete: 0,
        unknown: 0,
        frames: BTreeSet::new(),
        threads: BTreeMap::new(),
    };
    for (frames, count) in parse(folded) {
        f.samples += count;
        *f.threads.entry(frames[0]).or_default() += count;
        if frames[1..].iter().any(|&frame| is_thread_root(frame)) {
            f.complete += count;
        }
        if frames.contains(&"[unknown]") {
            f.unknown += count;
        }
        f.frames.extend(frames);
    }
    f
}

/// What every recording of the demo must show: at least `min_samples`,
/// `min_complete` permille of them reaching a thread's start, at most
/// `max_unknown` permille with an `[unknown]` frame, and `named` frames.
fn assert_facts(
    name: &str,
    folded: &str,
    min_samples: u64,
    min_complete: u64,
    max_unknown: u64,
    named: &[&str],
) {
    let f = facts(folded);
    assert!(f.samples >= min_samples, "{name}: {} samples", f.samples);
    assert!(
        f.complete * 1000 >= f.samples * min_complete,
        "{name}: {} of {} samples reach a thread's start:\n{folded}",
        f.complete,
        f.samples
    );
    assert!(
        f.unknown * 1000 <= f.samples * max_unknown,
        "{name}: {} of {} samples have an [unknown] frame:\n{folded}",
        f.unknown,
        f.samples
    );
    for frame in named {
        assert!(
            f.frames.contains(frame),
            "{name}: no {frame} frame:\n{folded}"
        );
    }
    // Kernel frames are named from the fixture's kallsyms, never by address.
    for frame in f.frames.iter().filter(|f| f.ends_with("_[k]")) {
        assert!(
            !frame.starts_with('[') && !frame.starts_with("0x"),
            "{name}: an unnamed kernel frame {frame}"
        );
    }
}

#[test]
fn a_frame_pointer_recording_unwinds_and_names_as_recorded() {
    let ours = folded("fp");
    check_golden("fp", &ours);
    // The kernel follows frame pointers: callers of libc's malloc and free,
    // built without them, are lost (their stacks stop at libc), the rest
    // reach `main`.
    assert_facts(
        "fp",
        &ours,
        150,
        800,
        100,
        &[
            "main",
            "demo::main",
            "demo::run_iteration",
            "demo::checksum",
            "malloc",
            "_int_free",
        ],
    );
}

#[test]
fn a_dwarf_recording_unwinds_and_names_as_recorded() {
    let ours = folded("dwarf");
    check_golden("dwarf", &ours);
    // DWARF unwinding goes through libc: malloc and free's callers too.
    assert_facts(
        "dwarf",
        &ours,
        150,
        990,
        10,
        &[
            "_start",
            "demo::main",
            "demo::run_iteration",
            "demo::checksum",
            "malloc",
            "free",
        ],
    );
    assert!(
        parse(&ours)
            .iter()
            .any(|(frames, _)| frames.ends_with(&["free", "_int_free"])
                && frames.contains(&"demo::run_iteration")
                && frames.contains(&"_start")),
        "no stack from _start through the demo into libc's free:\n{ours}"
    );
}

#[test]
fn a_threaded_recording_shows_both_threads() {
    let ours = folded("threads");
    check_golden("threads", &ours);
    assert_facts(
        "threads",
        &ours,
        100,
        990,
        10,
        &[
            "demo::phases",
            "demo::sorting_phase",
            "demo::encoding_phase",
            "demo::checksum",
            "malloc",
            "free",
            "start_thread",
        ],
    );
    // `--phases 2`: a second of sorting on the main thread, one of encoding
    // on the `encoder` thread, which starts in clone3 (not `_start`).
    let f = facts(&ours);
    let share = |thread: &str| f.threads.get(thread).copied().unwrap_or(0) * 100 / f.samples;
    assert!(
        share("demo") >= 20 && share("encoder") >= 20,
        "samples by thread: {:?}",
        f.threads
    );
    for (frames, _) in parse(&ours) {
        match frames[0] {
            "encoder" => assert!(
                !frames.contains(&"demo::sorting_phase") && !frames.contains(&"_start"),
                "{frames:?}"
            ),
            "demo" => assert!(!frames.contains(&"demo::encoding_phase"), "{frames:?}"),
            other => panic!("a thread {other} the demo does not have"),
        }
    }
}

/// Without the recording machine's files, the same recordings are not named:
/// the goldens and facts above are the fixture's doing, not this machine's.
#[test]
fn without_the_machines_files_the_recordings_are_not_named() {
    let empty = tempfile::tempdir().unwrap();
    for name in ["fp", "dwarf", "threads"] {
        let ours = folded_with(name, empty.path());
        let f = facts(&ours);
        assert!(
            !f.frames.contains("demo::checksum") && !f.frames.contains("malloc"),
            "{name}: named without the fixture's files:\n{ours}"
        );
    }
}

/// `--format pprof` of the threaded recording, decoded: what fleet tools
/// read of it (checked here without `go`, so that it runs everywhere).
/// Mappings: the demo first (pprof's main binary), with its build id, libc
/// with its own, the kernel as `[kernel.kallsyms]`, each holding its
/// locations' addresses; a function per symbol with its mangled name;
/// `thread`/`thread_id`/`pid` labels instead of a thread-root frame; one
/// sample per (location list, labels); and, read back as names, the very
/// stacks and counts of stacks.folded.
#[test]
fn a_threaded_recording_as_pprof_has_mappings_addresses_and_thread_labels() {
    use libdd_profiling_protobuf::prost_impls::{Message, Profile};
    let out = tempfile::tempdir().unwrap();
    let root = unpacked().join("root");
    let result = run(profiler_to(out.path())
        .arg("--perfdata")
        .arg(unpacked().join("threads/perf.data"))
        .arg("--symfs")
        .arg(&root)
        .args(["--format", "pprof"]));
    assert!(result.status.success(), "{}", text(&result));
    let folded = std::fs::read_to_string(out.path().join("stacks.folded")).unwrap();
    let bytes = std::fs::read(out.path().join("profile.pb.gz")).unwrap();
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut raw).unwrap();
    let p = Profile::decode(raw.as_slice()).unwrap();
    let st = |i: i64| p.string_table[i as usize].as_str();

    // Mappings, by file: build ids as the ELF files state them.
    let build_id = |path: &Path| -> String {
        use object::Object;
        let data = std::fs::read(path).unwrap();
        let obj = object::File::parse(&data[..]).unwrap();
        let id = obj.build_id().unwrap().expect("a build id");
        id.iter().map(|b| format!("{b:02x}")).collect()
    };
    let demo = root.join("tmp/rust-flamegraph-fixture/demo");
    let libc = root.join("usr/lib/x86_64-linux-gnu/libc.so.6");
    let files: Vec<&str> = p.mappings.iter().map(|m| st(m.filename)).collect();
    assert_eq!(
        files[0],
        demo.to_string_lossy(),
        "the demo first: {files:?}"
    );
    for (file, id) in [(&demo, build_id(&demo)), (&libc, build_id(&libc))] {
        let m = p
            .mappings
            .iter()
            .find(|m| st(m.filename) == file.to_string_lossy())
            .unwrap_or_else(|| panic!("no mapping of {}: {files:?}", file.display()));
        assert_eq!(st(m.build_id), id);
        assert!(m.memory_start < m.memory_limit && m.has_functions);
    }
    let kernel = p
        .mappings
        .iter()
        .find(|m| st(m.filename) == "[kernel.kallsyms]")
        .expect("a kernel mapping");
    assert!(kernel.memory_start >= 0xffff_0000_0000_0000);

    // Locations: an address inside their mapping; functions with names.
    for l in &p.locations {
        assert!(!l.lines.is_empty());
        if l.mapping_id == 0 {
            continue;
        }
        let m = &p.mappings[l.mapping_id as usize - 1];
        assert_eq!(m.id, l.mapping_id);
        assert!(
            (m.memory_start..m.memory_limit).contains(&l.address),
            "{:#x} outside {}",
            l.address,
            st(m.filename)
        );
    }
    let function = |id: u64| &p.functions[id as usize - 1];
    let mangled = p
        .functions
        .iter()
        .filter(|f| st(f.name).starts_with("demo::"))
        .inspect(|f| {
            assert!(
                st(f.system_name).starts_with("_R") || st(f.system_name).starts_with("_ZN"),
                "{} is {}",
                st(f.name),
                st(f.system_name)
            )
        })
        .count();
    assert!(mangled >= 3, "the demo's functions");

    // Labels, and no thread root among the frames.
    let mut per_thread: BTreeMap<String, i64> = BTreeMap::new();
    let mut by_stack: BTreeMap<String, u64> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for s in &p.samples {
        let label = |key: &str| s.labels.iter().find(|l| st(l.key) == key).unwrap();
        let thread = st(label("thread").str).to_string();
        assert!(label("thread_id").num > 0 && label("pid").num > 0);
        assert!(
            seen.insert((s.location_ids.clone(), s.labels.clone())),
            "one sample per (locations, labels)"
        );
        *per_thread.entry(thread.clone()).or_default() += s.values[0];
        // The folded line: the thread, then each location's functions,
        // outermost first; kernel functions with `_[k]`.
        let mut names = vec![thread];
        for &l in s.location_ids.iter().rev() {
            let l = &p.locations[l as usize - 1];
            let in_kernel = l.mapping_id == kernel.id;
            for line in l.lines.iter().rev() {
                let name = st(function(line.function_id).name);
                assert_ne!(name, "encoder", "no thread-root frame");
                names.push(match in_kernel {
                    true => format!("{name}_[k]"),
                    false => name.to_string(),
                });
            }
        }
        *by_stack.entry(names.join(";")).or_default() += s.values[0] as u64;
    }
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    let mut threads: BTreeMap<String, i64> = BTreeMap::new();
    for (frames, count) in parse(&folded) {
        *expected.entry(frames.join(";")).or_default() += count;
        *threads.entry(frames[0].to_string()).or_default() += count as i64;
    }
    assert_eq!(by_stack, expected);
    assert_eq!(per_thread, threads);
    assert_eq!(
        per_thread.keys().collect::<Vec<_>>(),
        ["demo", "encoder"],
        "both threads labelled"
    );
    let total: u64 = expected.values().sum();
    assert!(
        (p.samples.len() as u64) < total,
        "{} pprof samples for {total} samples: aggregated",
        p.samples.len(),
    );
}
