//! End to end on this machine: the real perf, the real demo.

mod common;

use common::*;

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn profiles_the_demo_into_svg_and_folded_stacks() {
    if !perf_available() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let result = run(profiler_to(out.path()).args(SMALL_RUN));
    assert!(result.status.success(), "{}", text(&result));
    let samples = assert_demo_profile(out.path());
    let log = text(&result);
    assert!(
        log.contains(&format!("samples              {samples}")),
        "{log}"
    );
    assert!(log.contains("complete stacks"), "{log}");
    assert!(log.contains("hottest functions"), "{log}");
    // On stdout, where it belongs, though perf streams the recording on its own.
    assert!(
        String::from_utf8_lossy(&result.stdout).contains("checksum "),
        "the demo's own output is shown on stdout: {log}"
    );
    assert!(log.contains("as perf recorded them"), "streamed: {log}");
    assert_eq!(
        names_in(out.path()),
        ["flamegraph.svg", "report.html", "stacks.folded"],
        "only the results, no temporaries"
    );
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn frame_pointer_stacks_and_a_kept_perf_data_that_renders_again_alike() {
    if !perf_available() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let result = run(profiler_to(out.path())
        .args(["--call-graph", "fp", "--keep-perf-data"])
        .args(SMALL_RUN));
    assert!(result.status.success(), "{}", text(&result));
    let samples = assert_demo_profile(out.path());
    assert!(
        text(&result).contains("complete stacks"),
        "{}",
        text(&result)
    );
    assert_eq!(
        names_in(out.path()),
        [
            "flamegraph.svg",
            "perf.data",
            "report.html",
            "stacks.folded"
        ]
    );
    let again = out.path().join("again");
    let result = run(profiler_to(&again)
        .arg("--perfdata")
        .arg(out.path().join("perf.data")));
    assert!(result.status.success(), "{}", text(&result));
    assert_eq!(
        assert_demo_profile(&again),
        samples,
        "the kept perf.data holds the same samples"
    );
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn a_run_too_short_to_sample_says_how_to_fix_it() {
    if !perf_available() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    // At 1 Hz the first sample would come after a second; the demo takes milliseconds.
    let result =
        run(profiler_to(out.path()).args(["--freq", "1", "--", "--iters", "1", "--size", "10"]));
    assert_exit(&result, 7, &["no samples", "--freq"]);
    assert!(!out.path().join("flamegraph.svg").exists());
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn the_demos_usage_error_is_shown_and_no_svg_written() {
    if !perf_available() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let result = run(profiler_to(out.path()).args(["--", "--iters", "abc"]));
    assert_exit(
        &result,
        5,
        &["invalid value 'abc' for '--iters", "exited with status 2"],
    );
    assert!(!out.path().join("flamegraph.svg").exists());
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn an_unwritable_output_is_refused_before_anything_runs() {
    if !perf_available() {
        return; // perf is checked first
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let result = run(profiler_to(&file.join("fg"))
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
    let result = run(profiler_to(out.path()).env("PERF", "/nonexistent/perf"));
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
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn flamechart_keeps_samples_in_time_order() {
    if !perf_available() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let result = run(profiler_to(out.path())
        .args(["--flamechart"])
        .args(SMALL_RUN));
    assert!(result.status.success(), "{}", text(&result));
    assert_demo_profile(out.path());
    let folded = std::fs::read_to_string(out.path().join("stacks.folded")).unwrap();
    let lines: Vec<&str> = stacks(&folded).into_iter().map(|(s, _)| s).collect();
    let distinct: std::collections::HashSet<&str> = lines.iter().copied().collect();
    assert!(
        distinct.len() < lines.len(),
        "in time order, a stack recurs after others: {} lines, {} distinct",
        lines.len(),
        distinct.len()
    );
}

/// How long the demo's threads lived, added up, as it measured them:
/// `alive: main X ms, holder Y ms`.
fn alive_ms(stdout: &str) -> f64 {
    let (_, lives) = stdout
        .split_once("alive: ")
        .unwrap_or_else(|| panic!("the demo prints its threads' lives: {stdout}"));
    let lives = lives.lines().next().unwrap_or_default();
    lives
        .split(", ")
        .map(|life| {
            let ms = life.split_whitespace().nth(1).unwrap_or_default();
            ms.parse::<f64>()
                .unwrap_or_else(|_| panic!("a life in ms: {life}"))
        })
        .sum()
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn off_cpu_weighs_each_wait_by_its_time_and_says_why() {
    if !perf_available() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    // Frame-pointer stacks: what is checked here is the weighing, and the
    // test binary's unoptimized reader fell behind DWARF copies (48 MB/s
    // for the holder's clock samples) on a loaded machine: perf lost records
    // in 3 recordings of 3 under a docker build, none with these. DWARF
    // stacks under --off-cpu are checked by the ping-pong test below and in
    // the image (tests/docker.rs, tests/podman.rs). Recorded again if perf
    // lost records all the same.
    let result = with_no_records_lost(|| {
        run(profiler_to(out.path()).args([
            "--off-cpu",
            "--call-graph",
            "fp",
            "--",
            "--waits",
            "400",
        ]))
    });
    assert!(result.status.success(), "{}", text(&result));
    let stdout = String::from_utf8_lossy(&result.stdout);
    let DemoWaits {
        slept, contended, ..
    } = demo_waits(&stdout);
    let folded = std::fs::read_to_string(out.path().join("stacks.folded")).unwrap();
    // Every thread's whole life is weighed, on the CPU or off it: the total
    // within 10 % of the lives the demo measured (about 3 × 400 ms), less
    // what perf said it lost (a loaded machine can starve it: each lost
    // clock sample is a millisecond not weighed).
    let total = total_samples(&folded) as f64 / 1e6;
    let alive = alive_ms(&stdout);
    let log = text(&result);
    let lost_ms = log
        .split("perf lost ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .map_or(0.0, |n| n.parse::<f64>().unwrap());
    assert!(
        total < alive * 1.1 && total + lost_ms > alive * 0.9,
        "weighed {total} ms (and lost {lost_ms}), the threads lived {alive} ms\n{log}\n{folded}"
    );
    // Each wait within 10 % of what the program measured itself (a switch
    // is stamped within microseconds of the program's own clock reads).
    let sleep = waited_ms(&folded, "demo::sleeping", "[off-cpu: sleep]");
    assert!(
        (sleep - slept).abs() < slept / 10.0,
        "sleep {sleep} ms, measured {slept} ms\n{folded}"
    );
    let mutex = waited_ms(&folded, "demo::contending", "[off-cpu: futex]");
    assert!(
        (mutex - contended).abs() < contended / 10.0,
        "mutex {mutex} ms, measured {contended} ms\n{folded}"
    );
    // The holder computed meanwhile: on the CPU (weighed in nanoseconds),
    // or preempted while it could run (a loaded machine shares the CPU),
    // never blocked.
    let holding = |on_cpu: bool| -> f64 {
        stacks(&folded)
            .iter()
            .filter(|(f, _)| f.contains("demo::holding") && f.contains("[off-cpu") != on_cpu)
            .map(|&(_, ns)| ns as f64 / 1e6)
            .sum()
    };
    let (running, off) = (holding(true), holding(false));
    assert!(running > 0.0, "the holder ran\n{folded}");
    assert_eq!(
        waited_ms(&folded, "demo::holding", "[off-cpu: preempted]"),
        off,
        "the holder was preempted, never blocked\n{folded}"
    );
    assert!(log.contains("on and off the CPU"), "{log}");
    assert!(log.contains("ms  [off-cpu: sleep]"), "{log}");
    let svg = std::fs::read_to_string(out.path().join("flamegraph.svg")).unwrap();
    assert!(
        svg.contains("[off-cpu: futex]"),
        "the SVG shows why it waited"
    );

    // --off-cpu=only: the waiting alone.
    let only = tempfile::tempdir().unwrap();
    let result = run(profiler_to(only.path()).args(["--off-cpu=only", "--", "--waits", "200"]));
    assert!(result.status.success(), "{}", text(&result));
    let folded = std::fs::read_to_string(only.path().join("stacks.folded")).unwrap();
    assert!(
        stacks(&folded).iter().all(|(f, _)| f.contains("[off-cpu")),
        "only off-CPU stacks: {folded}"
    );
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn off_cpu_caps_the_stacks_of_a_program_that_switches_all_the_time() {
    if !perf_available() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let result = {
        let _quiet = quiet();
        run(profiler_to(out.path()).args(["--off-cpu", "--", "--ping-pong", "2"]))
    };
    assert!(result.status.success(), "{}", text(&result));
    let log = text(&result);
    // Hundreds of thousands of switches a second: with a stack at each,
    // perf streamed 0.9 to 1.4 GB in these 2 s (and lost most of it); under
    // the cap of 1,000 stacks a second, 66 to 280 MB.
    let mb: f64 = log
        .split("read ")
        .nth(1)
        .and_then(|rest| rest.split(" MB").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the amount read is said: {log}"));
    assert!(mb < 600.0, "{mb} MB streamed: the cap did not hold\n{log}");
    assert!(
        log.contains("have no stack of their own (above 1000 switches a second"),
        "the cap is said: {log}"
    );
    // The waits without a stack are drawn on their thread's last one: the
    // token passing, not a stackless remainder.
    let folded = std::fs::read_to_string(out.path().join("stacks.folded")).unwrap();
    let waiting = |f: &(&str, u64)| f.0.contains("[off-cpu");
    let off: u64 = stacks(&folded)
        .iter()
        .filter(|f| waiting(f))
        .map(|f| f.1)
        .sum();
    let passing: u64 = stacks(&folded)
        .iter()
        .filter(|f| waiting(f) && (f.0.contains("demo::pinging") || f.0.contains("demo::ponging")))
        .map(|f| f.1)
        .sum();
    assert!(
        passing * 2 > off,
        "{passing} of {off} ns waiting are drawn on the token passing\n{folded}"
    );
}

/// `cargo flamegraph`'s flags with `--off-cpu`: `-F`, `--no-inline`,
/// `--bin`, and its perf command (`-c "record …"`), whose DWARF stack size
/// reaches perf for the switches too; the kept perf.data rendered again
/// with `--perfdata` weighs the same nanoseconds.
#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn off_cpu_with_cargo_flamegraphs_flags_and_its_perf_command() {
    if !perf_available() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    // Recorded again if perf lost records (a machine busy with other tests).
    let result = with_no_records_lost(|| {
        run(profiler_to(out.path()).args([
            "--off-cpu",
            "-F",
            "499",
            "--no-inline",
            "--bin",
            "demo",
            "-c",
            "record --call-graph dwarf,16384",
            "--keep-perf-data",
            "-v",
            "--",
            "--waits",
            "300",
        ]))
    });
    assert!(result.status.success(), "{}", text(&result));
    let log = text(&result);
    // -v shows perf's command line: -c's stack size, for both events.
    assert!(log.contains("--call-graph dwarf,16384"), "{log}");
    assert!(log.contains("call-graph=dwarf,stack-size=16384"), "{log}");
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert_off_cpu_demo_profile(out.path(), &stdout);
    let svg = std::fs::read_to_string(out.path().join("flamegraph.svg")).unwrap();
    assert!(svg.contains("at 499 Hz"), "-F reached perf");
    // --no-inline: the holder's loop is demo::holding itself, not the
    // inlined functions (`PartialOrd::lt`, `wrapping_add`) its code came from.
    let folded = std::fs::read_to_string(out.path().join("stacks.folded")).unwrap();
    let on_cpu = |own: bool| -> f64 {
        stacks(&folded)
            .iter()
            .filter(|(f, _)| f.contains("demo::holding;") != own && f.contains("demo::holding"))
            .filter(|(f, _)| !f.contains("[off-cpu"))
            .map(|&(_, ns)| ns as f64 / 1e6)
            .sum()
    };
    let (own, callees) = (on_cpu(true), on_cpu(false));
    assert!(
        own > 0.0 && own > 2.0 * callees,
        "demo::holding ran {own:.1} ms in its own code, {callees:.1} ms in frames above it\n{folded}"
    );

    // The kept recording, rendered again as `cargo flamegraph --perfdata`
    // would: the same stacks, counted in nanoseconds in the summary too.
    let again = out.path().join("again");
    let result = run(profiler_to(&again)
        .args(["--off-cpu", "--no-inline", "--perfdata"])
        .arg(out.path().join("perf.data")));
    assert!(result.status.success(), "{}", text(&result));
    let log = text(&result);
    assert!(log.contains("on and off the CPU"), "{log}");
    assert!(log.contains(" ms  [off-cpu: sleep]"), "{log}");
    let mut first: Vec<_> = stacks(&folded);
    let second_text = std::fs::read_to_string(again.join("stacks.folded")).unwrap();
    let mut second: Vec<_> = stacks(&second_text);
    first.sort();
    second.sort();
    assert_eq!(first, second, "the same recording, the same stacks");
}

#[test]
fn off_cpu_with_perf_script_is_a_usage_error_naming_the_fix() {
    let out = tempfile::tempdir().unwrap();
    let result =
        run(profiler_to(out.path()).args(["--off-cpu", "--perf-script", "--", "--waits", "100"]));
    assert_exit(
        &result,
        2,
        &[
            "--off-cpu cannot be read with --perf-script",
            "drop --perf-script",
        ],
    );
    assert!(!text(&result).contains("recording"), "{}", text(&result));
}
