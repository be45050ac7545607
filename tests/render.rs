//! Rendering options, checked on the SVG they produce (re-rendering folded
//! stacks of a recorded fixture: no perf needed).

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn render(folded: &Path, args: &[&str]) -> String {
    let out = tempfile::tempdir().unwrap();
    let result = run(Command::new(env!("CARGO_BIN_EXE_rust-flamegraph"))
        .arg("--out")
        .arg(out.path())
        .arg("--from-folded")
        .arg(folded)
        .args(args));
    assert!(result.status.success(), "{args:?}: {}", text(&result));
    let svg = std::fs::read_to_string(out.path().join("flamegraph.svg")).unwrap();
    assert_well_formed_xml(&svg);
    svg
}

fn fixture_folded(dir: &Path) -> std::path::PathBuf {
    let script = std::fs::read(repo().join("tests/fixtures/demo.perf-script")).unwrap();
    let mut folded = Vec::new();
    rust_flamegraph::collect::perf_script::collapse(&script[..], &mut folded, false).unwrap();
    let path = dir.join("stacks.folded");
    std::fs::write(&path, folded).unwrap();
    path
}

fn frames(svg: &str) -> usize {
    svg.matches("<g><title>").count()
}

#[test]
fn title_reverse_palette_min_width_and_flamechart_change_the_svg() {
    let dir = tempfile::tempdir().unwrap();
    let folded = fixture_folded(dir.path());
    let plain = render(&folded, &[]);
    // The process is the one root: 62 samples, all of them.
    assert!(
        plain.contains("demo (62 samples, 100.00%)"),
        "no root frame with all 62 samples"
    );

    let titled = render(&folded, &["--title", "checksum run <1>"]);
    assert!(titled.contains("checksum run &lt;1&gt;"));

    // Reversed, stacks merge from their leaves: the process is no longer one root.
    let reversed = render(&folded, &["--reverse"]);
    assert!(!reversed.contains("demo (62 samples, 100.00%)"));
    assert!(reversed.contains("demo::sort_blocks"));

    let colors = |svg: &str| -> std::collections::BTreeSet<String> {
        svg.match_indices("fill=\"rgb(")
            .map(|(i, _)| svg[i..i + 24].to_string())
            .collect()
    };
    let hot = render(&folded, &["--palette", "hot"]);
    assert_ne!(
        colors(&hot),
        colors(&plain),
        "--palette changes the colours"
    );

    let wide_only = render(&folded, &["--min-width", "100"]);
    assert!(
        frames(&wide_only) < frames(&plain),
        "--min-width drops narrow frames"
    );

    // A flame chart of time-ordered stacks starts, at the left edge, with the
    // first sample perf recorded (`from_utf8` under `demo::main`).
    let script = std::fs::read(repo().join("tests/fixtures/demo.perf-script")).unwrap();
    let mut timed = Vec::new();
    rust_flamegraph::collect::perf_script::collapse_in_time_order(&script[..], &mut timed, false)
        .unwrap();
    let timed_path = dir.path().join("timed.folded");
    std::fs::write(&timed_path, timed).unwrap();
    let chart = render(&timed_path, &["--flamechart"]);
    let first =
        "<title>core::str::converts::from_utf8 (1 samples, 1.61%)</title><rect x=\"0.0000%\"";
    assert!(
        chart.contains(first),
        "the first sample is not at the left edge"
    );
    assert!(
        !plain.contains(first),
        "merged stacks are ordered by name, not time"
    );
}

/// Runs `--from-folded` on `folded` (bytes), memory-capped and under a
/// timeout so that a regression cannot take the machine down with it.
fn from_folded(folded: &Path, out: &Path, args: &[&str]) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rust-flamegraph"));
    cmd.arg("--out")
        .arg(out)
        .arg("--from-folded")
        .arg(folded)
        .args(args);
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 2 << 30,
                rlim_max: 2 << 30,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let (done, waited) = std::sync::mpsc::channel();
    let watchdog = std::thread::spawn(move || {
        if waited
            .recv_timeout(std::time::Duration::from_secs(120))
            .is_err()
        {
            // SAFETY: kill on the pid of our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    let output = child.wait_with_output().unwrap();
    let _ = done.send(());
    watchdog.join().unwrap();
    eprintln!("---- {cmd:?} -> {}\n{}", output.status, text(&output));
    output
}

#[test]
fn control_characters_in_names_give_an_svg_browsers_open() {
    let dir = tempfile::tempdir().unwrap();
    let folded = dir.path().join("stacks.folded");
    std::fs::write(
        &folded,
        "prog;bell\x07;work 50\nprog;esc\x1b[31m;nul\0 30\nprog;\u{fffe}\u{85} 10\nprog;fine <ok> é 20\n",
    )
    .unwrap();
    let svg = render(&folded, &["--title", "title\x07"]);
    assert_svg_parses(&svg);
    for name in [
        "bell\\x07 (50 samples",
        "esc\\x1b[31m (30 samples",
        "nul\\x00 (30 samples",
        "\\u{fffe}\\u{85} (10 samples",
        "fine &lt;ok&gt; é (20 samples",
    ] {
        assert!(svg.contains(name), "no frame {name}");
    }
    assert!(svg.contains("title\\x07"));
}

#[test]
fn counts_that_overflow_or_do_not_parse_are_skipped_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let folded = dir.path().join("stacks.folded");
    let max = u64::MAX;
    std::fs::write(
        &folded,
        format!("a;x {max}\nb;y {max}\nc;z 18446744073709551616\nd;w -3\n"),
    )
    .unwrap();
    let out = dir.path().join("out");
    let result = from_folded(&folded, &out, &[]);
    assert_exit(
        &result,
        0,
        &[
            &format!(
                "skipped 1 line of {} whose count would take the total past {max} samples: \
                 line 2 (`{max}`)",
                folded.display()
            ),
            "whose count is not a whole number of samples",
            "line 3 (`18446744073709551616`), line 4 (`-3`)",
        ],
    );
    let svg = std::fs::read_to_string(out.join("flamegraph.svg")).unwrap();
    assert_svg_parses(&svg);
    // One stack of u64::MAX samples: all of them, once (not two 100 % frames).
    assert_eq!(svg.matches("100.00%)").count(), 2, "a and x only");
    assert!(svg.contains("<title>a (18,446,744,073,709,551,615 samples, 100.00%)</title>"));
    assert!(
        !svg.contains("<title>b ("),
        "the overflowing stack is left out"
    );
}

#[test]
fn endless_input_is_refused_without_eating_memory() {
    let dir = tempfile::tempdir().unwrap();
    let start = std::time::Instant::now();
    let result = from_folded(Path::new("/dev/zero"), dir.path(), &[]);
    assert_exit(
        &result,
        1,
        &["/dev/zero does not hold folded stacks: stopped after 64 MiB"],
    );
    eprintln!("refused in {:.2?}", start.elapsed());
    assert!(!dir.path().join("flamegraph.svg").exists());
}

#[test]
fn flamechart_from_folded_keeps_recurring_stacks_apart() {
    let dir = tempfile::tempdir().unwrap();
    let folded = dir.path().join("timed.folded");
    // In time order: a, then b, then a again.
    std::fs::write(&folded, "p;a 20\np;b 10\np;a 10\n").unwrap();
    let chart = render(&folded, &["--flamechart"]);
    assert!(
        chart.contains("<title>a (20 samples, 50.00%)</title>")
            && chart.contains("<title>a (10 samples, 25.00%)</title>"),
        "the two runs of `a` are drawn apart"
    );
}

#[test]
fn folded_stacks_read_in_order_make_a_flame_chart_with_recurring_stacks() {
    use rust_flamegraph::collect::folded::{read_folded, read_folded_in_order};
    use rust_flamegraph::output::svg::RenderOptions;
    use rust_flamegraph::output::svg::{render_svg, Labels};
    let dir = tempfile::tempdir().unwrap();
    let folded = dir.path().join("timed.folded");
    std::fs::write(&folded, "p;a 1\np;a 1\np;b 1\np;a 1\n").unwrap();
    let in_order = read_folded_in_order(&folded).unwrap();
    assert_eq!(in_order.text, b"p;a 2\np;b 1\np;a 1\n");
    let merged = read_folded(&folded).unwrap();
    assert_eq!(merged.text, b"p;a 3\np;b 1\n");
    let opts = RenderOptions {
        flamechart: true,
        ..RenderOptions::default()
    };
    let labels = Labels {
        title: "t".into(),
        subtitle: "s".into(),
    };
    let mut chart = Vec::new();
    render_svg(&in_order.text, &opts, &labels, &mut chart).unwrap();
    let chart = String::from_utf8(chart).unwrap();
    assert_svg_parses(&chart);
    assert!(chart.contains("<title>a (2 samples, 50.00%)</title><rect x=\"0.0000%\""));
    assert!(chart.contains("<title>a (1 samples, 25.00%)</title><rect x=\"75.0000%\""));
}
