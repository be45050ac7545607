//! Golden files: outputs a change must not alter by accident, compared with
//! the copies under `tests/golden/`. A deliberate change is accepted with
//! `UPDATE_GOLDEN=1 cargo test --test golden`, which rewrites them (review
//! the diff before committing it).

mod common;

use std::path::Path;

use common::*;

/// Compares `actual` with the golden file `name`; under UPDATE_GOLDEN=1,
/// rewrites the file instead.
fn check_golden(name: &str, actual: &str) {
    let path = repo().join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        loud(&format!("UPDATE_GOLDEN=1: wrote {}", path.display()));
        return;
    }
    let expected = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => panic!(
            "cannot read the golden file {} ({e}): run with UPDATE_GOLDEN=1 to create it",
            path.display()
        ),
    };
    if expected != actual {
        panic!(
            "{} differs from the output (- golden, + actual):\n{}\n\n\
             If the change is intended, run with UPDATE_GOLDEN=1 to accept it \
             (UPDATE_GOLDEN=1 cargo test --test golden) and review the diff.",
            relative(&path),
            diff(&expected, actual)
        );
    }
}

fn relative(path: &Path) -> String {
    path.strip_prefix(repo())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// A line diff (longest common subsequence) with two lines of context:
/// `-` golden, `+` actual, `@@ line N` where a hunk starts in the golden file.
fn diff(expected: &str, actual: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    if a == b {
        return "  (the lines are equal: they differ in line endings or a final newline)".into();
    }
    // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    // (tag, golden line number, text)
    let mut ops: Vec<(char, usize, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', i + 1, a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', i + 1, a[i]));
            i += 1;
        } else {
            ops.push(('+', i + 1, b[j]));
            j += 1;
        }
    }
    const CONTEXT: usize = 2;
    const MAX_LINES: usize = 200;
    let near_change = |k: usize| {
        ops[k.saturating_sub(CONTEXT)..(k + CONTEXT + 1).min(ops.len())]
            .iter()
            .any(|op| op.0 != ' ')
    };
    let mut out = Vec::new();
    let mut in_hunk = false;
    for (k, &(tag, line, text)) in ops.iter().enumerate() {
        if !near_change(k) {
            in_hunk = false;
            continue;
        }
        if !in_hunk {
            out.push(format!("@@ line {line}"));
            in_hunk = true;
        }
        out.push(format!("{tag} {text}"));
    }
    if out.len() > MAX_LINES {
        let more = out.len() - MAX_LINES;
        out.truncate(MAX_LINES);
        out.push(format!("… {more} more diff lines"));
    }
    out.join("\n")
}

#[test]
fn help_matches_the_golden_file() {
    let out = run(profiler().arg("--help"));
    assert!(out.status.success(), "{}", text(&out));
    let help = String::from_utf8(out.stdout).expect("--help is UTF-8");
    check_golden("help.txt", &help);
}

#[test]
fn the_recorded_fixture_collapses_to_the_golden_folded_stacks() {
    let script = std::fs::read(repo().join("tests/fixtures/demo.perf-script")).unwrap();
    let mut folded = Vec::new();
    rust_flamegraph::collect::perf_script::collapse(&script[..], &mut folded, false).unwrap();
    let folded = String::from_utf8(folded).expect("folded stacks are UTF-8");
    assert!(
        stacks(&folded).len() > 5,
        "the fixture collapses to stacks:\n{folded}"
    );
    check_golden("demo.folded", &folded);
}

#[test]
fn the_diff_shows_changed_lines_with_context() {
    let golden = "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n";
    let actual = "a\nb\nc\nD\ne\nf\ng\nh\ni\nj\nk\n";
    assert_eq!(
        diff(golden, actual),
        "@@ line 2\n  b\n  c\n- d\n+ D\n  e\n  f\n@@ line 9\n  i\n  j\n+ k"
    );
    assert!(diff("a\n", "a").contains("line endings"));
}
