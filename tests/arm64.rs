//! arm64, on any machine: a recording the profiler made in an emulated arm64
//! machine (`.ci/arm64-vm`, committed by `.ci/arm64/fixture`) is unwound and
//! named here exactly as the profiler did there: DWARF unwinding of arm64
//! stacks through glibc (whose return addresses carry pointer-authentication
//! codes), ld.so, the vdso, kernel frames, two threads.
//!
//! And the Dockerfile builds on arm64 hosts (Apple Silicon, Graviton) as on
//! amd64: every package it installs has an arm64 (or architecture-independent)
//! candidate in its Debian release, with dependencies that resolve. apt is
//! asked, in the Dockerfile's base image, to plan the install for arm64 alone
//! (`-s`: nothing is installed), from the archive's arm64 indices (about 90 MB
//! of lists, a few seconds): ignored unless asked for (`-- --include-ignored`),
//! and then failing without Docker or without the archive.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use rust_flamegraph::collect::stacks::{self, Prefetch, StackOptions};
use rust_flamegraph::output::summary::Summary;

/// Folded lines of the profiled program. Left out: the exec helper's few
/// samples before it becomes the program (named from our own binary, which
/// the fixture leaves out), and samples taken inside `execve` itself, whose
/// user registers still point into the image being replaced (one
/// `[unknown]` frame above the kernel's, on arm64 as on x86-64).
fn programs_lines(folded: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = folded
        .lines()
        .filter(|l| !l.starts_with("rust-flamegraph;") && !l.contains(";__arm64_sys_execve_[k];"))
        .collect();
    lines.sort_unstable();
    lines
}

#[test]
fn an_arm64_recording_is_unwound_and_named_here_as_on_arm64() {
    let dir = tempfile::tempdir().unwrap();
    unpack_gz(&repo().join("tests/fixtures/arm64"), dir.path());
    let root = dir.path().join("root");
    let opts = StackOptions {
        inline: false,
        ..StackOptions::default()
    };
    let folded = stacks::from_file(
        &dir.path().join("perf.data"),
        opts,
        Some(Prefetch::of_machine_in(&root)),
    )
    .unwrap();
    let ours = String::from_utf8(folded.text).unwrap();
    let theirs = std::fs::read_to_string(dir.path().join("vm.folded")).unwrap();
    let (ours, theirs) = (programs_lines(&ours), programs_lines(&theirs));
    let summary = Summary::from_folded(&ours.join("\n"), 10);
    assert!(summary.samples >= 200, "{} samples", summary.samples);
    // What the arm64 machine's own run showed, and what a user must see.
    let text = ours.join("\n");
    assert!(
        summary.complete * 1000 >= summary.samples * 995,
        "{} of {} stacks reach a thread's start",
        summary.complete,
        summary.samples
    );
    for frame in ["demo::main", "malloc", "free", "_start", "encoder"] {
        assert!(
            text.split(['\n', ';', ' ']).any(|f| f == frame),
            "no {frame} frame:\n{text}"
        );
    }
    assert!(
        !text.contains("[unknown]") && !text.contains("[libc.so.6]"),
        "unnamed frames (authentication bits left on return addresses, or a lost mapping):\n{text}"
    );
    assert!(
        text.contains("_[k]"),
        "kernel frames are named from the machine's kallsyms"
    );
    // In the arm64 machine the demo's frames were named from its DWARF; the
    // fixture keeps its symbol table. Functions folded into one (identical
    // code: `<u64 as LowerHex>::fmt`, `<usize as LowerHex>::fmt`) have one
    // address and several names: each side names it with one of them.
    let alias = aliases(&root.join("opt/arm64/demo"));
    let same = |lines: &[&str]| {
        let mut stacks = std::collections::BTreeMap::<String, u64>::new();
        for line in lines {
            let (frames, count) = line.rsplit_once(' ').unwrap();
            let frames: Vec<&str> = frames
                .split(';')
                .map(|f| alias.get(f).map_or(f, String::as_str))
                .collect();
            *stacks.entry(frames.join(";")).or_default() += count.parse::<u64>().unwrap();
        }
        stacks
    };
    let (ours, theirs) = (same(&ours), same(&theirs));
    assert_eq!(
        ours, theirs,
        "this machine's unwinding and naming differ from the arm64 machine's"
    );
}

/// Each function name of `binary`'s symbol table, demangled as frames show
/// it, to one name of all those at its address.
fn aliases(binary: &Path) -> std::collections::HashMap<String, String> {
    use object::{Object, ObjectSymbol};
    use std::collections::HashMap;
    let data = std::fs::read(binary).unwrap();
    let obj = object::File::parse(&data[..]).unwrap();
    let mut by_address: HashMap<u64, Vec<String>> = HashMap::new();
    for symbol in obj.symbols() {
        if let (object::SymbolKind::Text, Ok(name)) = (symbol.kind(), symbol.name()) {
            let name = format!("{:#}", rustc_demangle::demangle(name));
            by_address.entry(symbol.address()).or_default().push(name);
        }
    }
    let mut alias: HashMap<String, String> = HashMap::new();
    for names in by_address.values() {
        let first = names.iter().min().unwrap();
        for name in names {
            let entry = alias.entry(name.clone()).or_insert_with(|| first.clone());
            if first < entry {
                *entry = first.clone();
            }
        }
    }
    alias
}

/// The Dockerfile's first base image, and the packages of its `apt-get install`s.
fn base_and_packages(dockerfile: &str) -> (String, Vec<String>) {
    let base = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("FROM "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a FROM line")
        .to_string();
    // RUN lines joined: a `\` at a line's end continues it.
    let joined = dockerfile.replace("\\\n", " ");
    let mut packages = Vec::new();
    for line in joined.lines() {
        for command in line.split("&&") {
            let mut words = command.split_whitespace();
            if words.by_ref().any(|w| w == "apt-get") && words.next() == Some("install") {
                packages.extend(words.filter(|w| !w.starts_with('-')).map(String::from));
            }
        }
    }
    (base, packages)
}

#[test]
fn the_dockerfile_lists_its_base_and_packages() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let (base, packages) = base_and_packages(&dockerfile);
    assert!(base.starts_with("debian:"), "{base}");
    for needed in ["linux-perf", "libc6-dbg", "binutils"] {
        assert!(
            packages.iter().any(|p| p == needed),
            "{needed} in {packages:?}"
        );
    }
    let sample = "FROM x AS y\nRUN apt-get update \\\n && apt-get install -y --no-install-recommends \\\n      a b \\\n && rm -rf z\n";
    assert_eq!(
        base_and_packages(sample),
        ("x".into(), vec!["a".into(), "b".into()])
    );
}

#[test]
#[ignore = "needs a Docker engine and the Debian archive (network): cargo test -- --include-ignored"]
fn every_package_of_the_dockerfile_exists_for_arm64() {
    if !docker_available() {
        return;
    }
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let (base, packages) = base_and_packages(&dockerfile);
    let made = run(Command::new("bash").arg(repo().join(".ci/base-image")));
    assert!(made.status.success(), "base image: {}", text(&made));
    // arm64 as apt's only architecture, and an empty dpkg status: apt plans
    // every package and dependency for an arm64 system, as a build there would.
    let apt = "apt-get -o APT::Architecture=arm64 -o APT::Architectures=arm64 \
               -o Dir::State::status=/dev/null";
    let script = format!(
        "{apt} -qq update || exit 7; {apt} -s install --no-install-recommends {}",
        packages.join(" ")
    );
    let out = run(Command::new("docker").args(["run", "--rm", &base, "sh", "-c", &script]));
    let log = text(&out);
    if out.status.code() == Some(7) && !require("the Debian archive", Err(log.clone())) {
        return;
    }
    assert!(
        out.status.success(),
        "apt cannot install the Dockerfile's packages on arm64:\n{log}"
    );
    for package in &packages {
        // `Inst linux-perf (6.12.118-1 Debian-Security:13/stable-security [arm64])`
        let planned = log.lines().find(|l| {
            l.strip_prefix("Inst ")
                .and_then(|l| l.strip_prefix(package.as_str()))
                .is_some_and(|l| l.starts_with(" ("))
        });
        match planned {
            Some(l) => assert!(
                l.ends_with("[arm64])") || l.ends_with("[all])"),
                "{package} is planned for another architecture: {l}"
            ),
            None => panic!("apt plans no arm64 {package}:\n{log}"),
        }
    }
}
