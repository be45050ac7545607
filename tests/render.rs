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
    rust_flamegraph::stacks::collapse(&script[..], &mut folded, false).unwrap();
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
    rust_flamegraph::stacks::collapse_in_time_order(&script[..], &mut timed, false).unwrap();
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
