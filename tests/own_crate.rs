//! Profiling crates the tests generate, with cargo's target options: two
//! binaries, an example, a criterion bench, an integration test, unit tests,
//! features, a multi-threaded program, a failing program, attach by pid.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

/// A folder for a generated crate that keeps its `target/` between runs, so
/// that dependencies (criterion, tokio) compile once. One per test: cargo
/// hashes path packages by their relative path, so two copies of one crate
/// sharing a target dir would take each other's builds for fresh.
fn crate_dir(test: &str) -> PathBuf {
    let dir = repo().join("target/e2e-crates").join(test);
    for generated in ["src", "examples", "tests", "benches"] {
        let _ = std::fs::remove_dir_all(dir.join(generated));
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A package with two binaries, an example, a criterion bench, an
/// integration test, unit tests and two features.
fn multi_crate(test: &str) -> PathBuf {
    let dir = crate_dir(test);
    write(
        &dir,
        &[
            (
                "Cargo.toml",
                r#"[package]
name = "multi"
version = "0.1.0"
edition = "2021"

# Its own workspace, though it lives under ours.
[workspace]

[features]
default = ["fancy"]
fancy = []
turbo = []

[dev-dependencies]
criterion = { version = "0.7", default-features = false }

[[bench]]
name = "prime"
harness = false
"#
                .into(),
            ),
            (
                "src/lib.rs",
                format!(
                    "{}\n#[inline(never)]\npub fn count_primes(n: u64) -> usize {{\n    \
                     (2..n).filter(|&k| (2..k).take_while(|d| d * d <= k).all(|d| k % d != 0)).count()\n}}\n\
                     #[cfg(test)]\nmod tests {{\n    {}\n    #[test]\n    fn spins() {{ unit_hot(); }}\n}}\n",
                    spin("lib_hot", 10),
                    spin("unit_hot", 600)
                ),
            ),
            (
                "src/bin/alpha.rs",
                format!(
                    "{}{}{}\nfn main() {{\n    alpha_hot_loop();\n    \
                     #[cfg(feature = \"fancy\")]\n    fancy_hot();\n    \
                     #[cfg(feature = \"turbo\")]\n    turbo_hot();\n    \
                     if std::env::args().any(|a| a == \"fail\") {{ std::process::exit(3); }}\n    \
                     if std::env::args().any(|a| a == \"panic\") {{ panic!(\"alpha panics on purpose\"); }}\n}}\n",
                    spin("alpha_hot_loop", 500),
                    spin("fancy_hot", 300),
                    spin("turbo_hot", 300)
                ),
            ),
            ("src/bin/beta.rs", format!("{}\nfn main() {{ beta_hot_loop(); }}\n", spin("beta_hot_loop", 500))),
            (
                "examples/gamma.rs",
                format!("{}\nfn main() {{ gamma_example_hot(); }}\n", spin("gamma_example_hot", 500)),
            ),
            (
                "tests/integration.rs",
                format!("{}\n#[test]\nfn spins() {{ integration_hot(); }}\n", spin("integration_hot", 600)),
            ),
            (
                "benches/prime.rs",
                "use criterion::{criterion_group, criterion_main, Criterion};\n\
                 fn primes(c: &mut Criterion) {\n    \
                 c.bench_function(\"primes\", |b| b.iter(|| multi::count_primes(std::hint::black_box(3000))));\n}\n\
                 criterion_group!(benches, primes);\ncriterion_main!(benches);\n"
                    .into(),
            ),
        ],
    );
    dir
}

fn profile(manifest: &Path, out: &Path, args: &[&str]) -> Output {
    run(profiler_to(out)
        .arg("--manifest-path")
        .arg(manifest)
        .args(args))
}

fn folded(out: &Path) -> String {
    let svg = std::fs::read_to_string(out.join("flamegraph.svg")).expect("flamegraph.svg");
    assert_well_formed_xml(&svg);
    std::fs::read_to_string(out.join("stacks.folded")).expect("stacks.folded")
}

/// Samples whose stack contains `function` (by its last path segment).
fn samples_in(folded: &str, function: &str) -> u64 {
    stacks(folded)
        .into_iter()
        .filter(|(stack, _)| {
            stack
                .split(';')
                .any(|f| f.ends_with(&format!("::{function}")) || f == function)
        })
        .map(|(_, count)| count)
        .sum()
}

#[test]
#[ignore = "needs perf and crates.io: cargo test -- --include-ignored"]
fn every_kind_of_cargo_target_is_profiled_with_its_own_functions() {
    if !perf_available() {
        return;
    }
    let krate = multi_crate("every-kind");
    let manifest = krate.join("Cargo.toml");
    for (args, hot, absent) in [
        (&["--bin", "alpha"][..], "alpha_hot_loop", "beta_hot_loop"),
        (
            &["-p", "multi", "--bin", "beta"],
            "beta_hot_loop",
            "alpha_hot_loop",
        ),
        (
            &["--example", "gamma"],
            "gamma_example_hot",
            "alpha_hot_loop",
        ),
        (&["--test", "integration"], "integration_hot", "unit_hot"),
        (&["--unit-test"], "unit_hot", "integration_hot"),
        (
            &["--bench", "prime", "--", "--profile-time", "1"],
            "count_primes",
            "alpha_hot_loop",
        ),
        (
            &[
                "--bin",
                "alpha",
                "--features",
                "turbo",
                "--no-default-features",
            ],
            "turbo_hot",
            "fancy_hot",
        ),
        (&["--bin", "alpha", "--dev"], "fancy_hot", "turbo_hot"),
    ] {
        let out = tempfile::tempdir().unwrap();
        let result = profile(&manifest, out.path(), args);
        assert!(result.status.success(), "{args:?}: {}", text(&result));
        let folded = folded(out.path());
        let total = total_samples(&folded);
        let hot_samples = samples_in(&folded, hot);
        // Each hot function runs for 300 ms or more of CPU time, at least a
        // third of its program's (~300 samples at 997 Hz): a tenth, and 30
        // samples, are margins that sampling noise and load cannot cross.
        assert!(
            hot_samples * 10 >= total && hot_samples >= 30,
            "{args:?}: {hot} has {hot_samples} of {total} samples:\n{folded}"
        );
        assert_eq!(
            samples_in(&folded, absent),
            0,
            "{args:?}: {absent} should not run"
        );
    }
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn the_default_target_dir_leaves_the_users_builds_alone() {
    if !perf_available() {
        return;
    }
    let krate = tempfile::tempdir().unwrap();
    write(
        krate.path(),
        &[
            (
                "Cargo.toml",
                "[package]\nname = \"solo\"\nversion = \"0.1.0\"\nedition = \"2021\"\n".into(),
            ),
            (
                "src/main.rs",
                format!("{}\nfn main() {{ solo_hot(); }}\n", spin("solo_hot", 400)),
            ),
        ],
    );
    let manifest = krate.path().join("Cargo.toml");
    let out = tempfile::tempdir().unwrap();
    // No target option: the package's only binary.
    let result = profile(&manifest, out.path(), &[]);
    assert!(result.status.success(), "{}", text(&result));
    assert!(
        text(&result).contains("Compiling solo"),
        "{}",
        text(&result)
    );
    assert!(samples_in(&folded(out.path()), "solo_hot") > 0);
    let ours = krate.path().join("target/rust-flamegraph");
    assert!(ours.join("release/solo").is_file(), "{:?}", names_in(&ours));
    for mode in ["fp", "dwarf"] {
        assert!(!ours.join(mode).exists(), "one build dir for both modes");
    }
    assert!(
        !krate.path().join("target/release").exists(),
        "the user's target/release is untouched"
    );
    assert!(
        !std::fs::read_to_string(&manifest)
            .unwrap()
            .contains("debug"),
        "Cargo.toml untouched"
    );
    // The other unwinding mode profiles the same build.
    let result = profile(&manifest, out.path(), &["--call-graph", "fp"]);
    assert!(result.status.success(), "{}", text(&result));
    assert!(
        !text(&result).contains("Compiling"),
        "switching --call-graph rebuilt: {}",
        text(&result)
    );
    assert!(samples_in(&folded(out.path()), "solo_hot") > 0);
}

#[test]
#[ignore = "needs perf and crates.io: cargo test -- --include-ignored"]
fn choices_and_failures_explain_themselves() {
    let krate = multi_crate("choices");
    let manifest = krate.join("Cargo.toml");
    let out = tempfile::tempdir().unwrap();
    // Target errors come after perf's own check.
    if !perf_available() {
        return;
    }
    let cases: &[(&[&str], i32, &[&str])] = &[
        (&[], 4, &["several binaries", "--bin", "alpha, beta"]),
        (
            &["--bin", "nope"],
            4,
            &["no bin target `nope`", "alpha, beta"],
        ),
        (&["--example", "nope"], 4, &["gamma"]),
        (&["-p", "other"], 4, &["no package `other`", "multi"]),
        (&["--exec"], 2, &["--exec needs a program"]),
    ];
    for (args, code, says) in cases {
        let result = profile(&manifest, out.path(), args);
        assert_eq!(
            result.status.code(),
            Some(*code),
            "{args:?}: {}",
            text(&result)
        );
        for s in *says {
            assert!(
                text(&result).contains(s),
                "{args:?} should say {s:?}: {}",
                text(&result)
            );
        }
    }
    let result = profile(&krate.join("nope/Cargo.toml"), out.path(), &[]);
    assert_exit(&result, 4, &["no Cargo.toml at"]);
}

#[test]
#[ignore = "needs perf and crates.io: cargo test -- --include-ignored"]
fn a_build_error_shows_cargos_message_and_a_failing_program_still_renders() {
    if !perf_available() {
        return;
    }
    let krate = multi_crate("failures");
    let manifest = krate.join("Cargo.toml");
    let out = tempfile::tempdir().unwrap();

    // The program exits 3 after its work: rendered, reported, exit 5.
    let result = profile(&manifest, out.path(), &["--bin", "alpha", "--", "fail"]);
    assert_exit(&result, 5, &["exited with status 3"]);
    assert!(samples_in(&folded(out.path()), "alpha_hot_loop") > 0);
    let result = profile(
        &manifest,
        out.path(),
        &["--ignore-status", "--bin", "alpha", "--", "fail"],
    );
    assert_exit(&result, 0, &[]);

    // A panic after the work: rendered, the panic and its status reported.
    let result = profile(&manifest, out.path(), &["--bin", "alpha", "--", "panic"]);
    assert_exit(
        &result,
        5,
        &["alpha panics on purpose", "exited with status 101"],
    );
    assert!(samples_in(&folded(out.path()), "alpha_hot_loop") > 0);

    // A syntax error: cargo's own diagnostics reach the user.
    std::fs::write(krate.join("src/bin/beta.rs"), "fn main() { let = ; }").unwrap();
    let result = profile(&manifest, out.path(), &["--bin", "beta"]);
    assert_exit(&result, 4, &[]);
    assert!(
        text(&result).contains("error: expected"),
        "cargo's error shown: {}",
        text(&result)
    );
    assert!(
        text(&result).contains("could not build binary `beta`"),
        "{}",
        text(&result)
    );
    // perf, started while cargo built, ended without a word.
    assert!(!text(&result).contains("perf record"), "{}", text(&result));
}

#[test]
#[ignore = "needs perf and crates.io: cargo test -- --include-ignored"]
fn threads_appear_and_split_per_thread() {
    if !perf_available() {
        return;
    }
    let krate = crate_dir("threads");
    write(
        &krate,
        &[
            (
                "Cargo.toml",
                "[package]\nname = \"threads\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n\n\
                 [dependencies]\ntokio = { version = \"1\", features = [\"rt-multi-thread\"] }\n"
                    .into(),
            ),
            (
                "src/main.rs",
                format!(
                    "{}{}{}\nfn main() {{\n    \
                     let a = std::thread::Builder::new().name(\"worker-a\".into()).spawn(worker_a_hot).unwrap();\n    \
                     let b = std::thread::Builder::new().name(\"worker-b\".into()).spawn(worker_b_hot).unwrap();\n    \
                     a.join().unwrap();\n    b.join().unwrap();\n    \
                     let rt = tokio::runtime::Builder::new_multi_thread().thread_name(\"tokio-w\").build().unwrap();\n    \
                     rt.block_on(async {{ tokio::spawn(async {{ tokio_task_hot() }}).await.unwrap() }});\n}}\n",
                    spin("worker_a_hot", 600),
                    spin("worker_b_hot", 600),
                    spin("tokio_task_hot", 600)
                ),
            ),
        ],
    );
    let manifest = krate.join("Cargo.toml");
    let out = tempfile::tempdir().unwrap();
    let result = profile(&manifest, out.path(), &[]);
    assert!(result.status.success(), "{}", text(&result));
    let merged = folded(out.path());
    // An async task on a tokio worker thread, with no special step.
    assert!(
        merged
            .lines()
            .any(|l| l.starts_with("tokio-w;") && l.contains("tokio_task_hot")),
        "{merged}"
    );
    assert!(
        merged
            .lines()
            .any(|l| l.starts_with("worker-a;") && l.contains("worker_a_hot")),
        "{merged}"
    );
    assert!(
        merged
            .lines()
            .any(|l| l.starts_with("worker-b;") && l.contains("worker_b_hot")),
        "{merged}"
    );

    let result = profile(&manifest, out.path(), &["--per-thread"]);
    assert!(result.status.success(), "{}", text(&result));
    let split = folded(out.path());
    let roots: std::collections::BTreeSet<&str> = split
        .lines()
        .filter_map(|l| l.split(';').next())
        .filter(|r| r.starts_with("worker-"))
        .collect();
    assert_eq!(
        roots.len(),
        2,
        "one root per thread, with pid/tid: {roots:?}"
    );
    assert!(roots.iter().all(|r| r.contains('/')), "{roots:?}");
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn attaches_to_a_running_process_by_pid() {
    if !perf_available() {
        return;
    }
    // The demo, built as the profiler builds it, run by the test itself.
    let mut demo = Command::new(demo_binary())
        .args(["--iters", "1000000"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let start = std::time::Instant::now();
    let result =
        run(profiler_to(out.path()).args(["--pid", &demo.id().to_string(), "--duration", "1.5"]));
    let elapsed = start.elapsed();
    let still_running = demo.try_wait().unwrap().is_none();
    demo.kill().unwrap();
    let _ = demo.wait();
    assert!(result.status.success(), "{}", text(&result));
    assert!(still_running, "attaching must not stop the process");
    // The demo would run for many minutes: any bound far below that shows
    // that --duration ended the recording, with room for a loaded machine.
    assert!(
        elapsed.as_secs_f64() < 60.0,
        "--duration ends the recording: {elapsed:?}"
    );
    // 1.5 s of a busy demo is ~1500 samples unloaded; 20 leave room for a
    // machine that gives it little CPU.
    let folded = folded(out.path());
    assert!(samples_in(&folded, "run_iteration") >= 20, "{folded}");
    assert!(
        text(&result).contains(&format!("process {}", demo.id())),
        "{}",
        text(&result)
    );
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn off_cpu_attached_by_pid_weighs_the_waits_that_begin_after_attaching() {
    if !perf_available() {
        return;
    }
    // The demo sleeps 2 s, then waits 2 s for a mutex that thread `holder`
    // computes with, and exits; attached during the sleep, the recording
    // ends with the demo (`--duration` only bounds a test gone wrong).
    let demo = Command::new(demo_binary())
        .args(["--waits", "2000"])
        .stdout(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = demo.id();
    let _kill = KillGroupOnDrop(pid);
    assert!(
        wait_until(std::time::Duration::from_secs(10), || {
            rust_flamegraph::sys::proc::stat(pid).is_some_and(|s| s.state == 'S')
        }),
        "the demo never went to sleep"
    );
    let out = tempfile::tempdir().unwrap();
    // Frame-pointer stacks: a loaded machine's perf keeps up with their few
    // bytes, while DWARF's stack copies may overflow its buffer and lose a
    // share of the holder's samples (the summary says how many), which
    // would blur the sums this test compares.
    let result = run(profiler_to(out.path()).args([
        "--off-cpu",
        "--call-graph",
        "fp",
        "--pid",
        &pid.to_string(),
        "--duration",
        "30",
    ]));
    let demo = demo.wait_with_output().unwrap();
    assert!(result.status.success(), "{}", text(&result));
    let truth = demo_waits(&String::from_utf8_lossy(&demo.stdout));
    let folded = folded(out.path());
    let near = |got: f64, truth: f64| (got - truth).abs() < truth / 10.0;
    // The sleep was under way when perf attached: perf saw no switch off
    // the CPU for it, so it is missed (docs/off-cpu.md, "With --pid").
    let slept = waited_ms(&folded, "demo::sleeping", "[off-cpu");
    assert_eq!(
        slept, 0.0,
        "a wait begun before attaching is not weighed\n{folded}"
    );
    // What began after attaching is weighed whole: the mutex wait, and the
    // holder's life (on the CPU, or preempted while it could run).
    let mutex = waited_ms(&folded, "demo::contending", "[off-cpu: futex]");
    assert!(
        near(mutex, truth.contended),
        "the mutex wait weighs {mutex:.1} ms, the demo measured {:.1} ms\n{folded}",
        truth.contended
    );
    let holder = ms_through(&folded, "demo::holding");
    assert!(
        near(holder, truth.holder_alive),
        "the holder weighs {holder:.1} ms, it lived {:.1} ms\n{folded}",
        truth.holder_alive
    );
    // In all: both threads' lives after the sleep, and little else.
    let total = total_samples(&folded) as f64 / 1e6;
    let lived = truth.contended + truth.holder_alive;
    assert!(
        near(total, lived),
        "{total:.1} ms in all; after the sleep, the threads lived {lived:.1} ms\n{folded}"
    );
    let log = text(&result);
    assert!(log.contains("on and off the CPU"), "{log}");
    assert!(log.contains(&format!("process {pid}")), "{log}");
}
