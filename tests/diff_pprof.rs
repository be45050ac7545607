//! `--diff-against` (diff.svg and the functions that changed most) and
//! `--format pprof` (profile.pb.gz, read back and by `go tool pprof`).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// (function name, fill colour) of each frame drawn in an inferno SVG, and
/// the frame's whole `<title>` (`name (N samples, P%; +D%)` in a diff).
fn frames(svg: &str) -> Vec<(String, String, (u8, u8, u8))> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(svg);
    let (mut out, mut title, mut in_title) = (Vec::new(), None::<String>, false);
    loop {
        match reader.read_event().unwrap() {
            Event::Eof => break,
            Event::Start(e) if e.name().as_ref() == b"title" => in_title = true,
            Event::End(e) if e.name().as_ref() == b"title" => in_title = false,
            Event::Text(t) if in_title => {
                let text = t.xml_content().unwrap().into_owned();
                title = Some(title.unwrap_or_default() + &text);
            }
            Event::GeneralRef(r) if in_title => {
                let name: &[u8] = r.as_ref();
                let text = match name {
                    b"lt" => "<",
                    b"gt" => ">",
                    b"amp" => "&",
                    b"quot" => "\"",
                    b"apos" => "'",
                    other => panic!("unexpected entity {other:?}"),
                };
                title = Some(title.unwrap_or_default() + text);
            }
            Event::Empty(e) if e.name().as_ref() == b"rect" => {
                let Some(title) = title.take() else { continue };
                let fill = e
                    .try_get_attribute("fill")
                    .unwrap()
                    .map(|a| String::from_utf8(a.value.to_vec()).unwrap())
                    .unwrap_or_default();
                let rgb: Vec<u8> = fill
                    .trim_start_matches("rgb(")
                    .trim_end_matches(')')
                    .split(',')
                    .map(|c| c.parse().unwrap())
                    .collect();
                let name = title.rsplit_once(" (").map_or(title.as_str(), |(n, _)| n);
                out.push((name.to_string(), title.clone(), (rgb[0], rgb[1], rgb[2])));
            }
            _ => {}
        }
    }
    out
}

fn red((r, g, b): (u8, u8, u8)) -> bool {
    r == 255 && g == b && g < 250
}

fn blue((r, g, b): (u8, u8, u8)) -> bool {
    b == 255 && r == g && r < 250
}

/// Every frame's colour agrees with the change its title shows: red for
/// `+x%`, blue for `-x%`, white-grey for `0.00%`. Returns how many of each.
fn assert_colours_follow_titles(svg: &str) -> (usize, usize) {
    let (mut reds, mut blues) = (0, 0);
    let all = frames(svg);
    assert!(all.len() > 3, "only {} frames", all.len());
    for (name, title, fill) in all {
        if name.starts_with("all") && title.contains("100%)") {
            continue; // the root: no change shown
        }
        let change = title.rsplit_once("; ").map(|(_, c)| c).unwrap_or("");
        if change.starts_with('+') {
            assert!(red(fill), "{title}: {fill:?} is not red");
            reds += 1;
        } else if change.starts_with('-') {
            assert!(blue(fill), "{title}: {fill:?} is not blue");
            blues += 1;
        } else {
            assert_eq!(change, "0.00%)", "{title}");
            assert_eq!(fill, (250, 250, 250), "{title}");
        }
    }
    (reds, blues)
}

/// The fill of the one frame called `name`.
fn fill_of(svg: &str, name: &str) -> (u8, u8, u8) {
    let matching: Vec<_> = frames(svg).into_iter().filter(|f| f.0 == name).collect();
    assert_eq!(matching.len(), 1, "frames named {name}: {matching:?}");
    matching[0].2
}

const OLD: &str = "\
main;same 50
main;shrink 40
main;grow 10
main;idle 3 0
";
// Twice the samples: `same` keeps its share (50 %), `shrink` goes from 40 %
// to 10 %, `grow` from 10 % to 40 %. `idle 3` ends in a number, which must
// stay part of the name.
const NEW: &str = "\
main;same 60
main;idle 3 40
main;shrink 20
main;grow 80
";

fn fixtures(dir: &Path) -> (PathBuf, PathBuf) {
    let (old, new) = (dir.join("old.folded"), dir.join("new.folded"));
    std::fs::write(&old, OLD).unwrap();
    std::fs::write(&new, NEW).unwrap();
    (old, new)
}

#[test]
fn a_diff_of_folded_stacks_colours_what_grew_and_shrank_and_lists_it() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = fixtures(dir.path());
    let out = dir.path().join("out");
    let result = run(profiler_to(&out)
        .arg("--from-folded")
        .arg(&new)
        .arg("--diff-against")
        .arg(&old));
    assert!(result.status.success(), "{}", text(&result));
    let svg = std::fs::read_to_string(out.join("diff.svg")).expect("diff.svg written");
    assert_svg_parses(&svg);
    // Old counts scaled ×2 (its 100 samples to the new 200): same 100 → 100
    // (idle 3 included: 0+ → 40 is new, and stays its own frame); shrink
    // 80 → 20 (−60), grow 20 → 80 (+60): the largest changes, full colour.
    assert_eq!(fill_of(&svg, "grow"), (255, 100, 100));
    assert_eq!(fill_of(&svg, "shrink"), (100, 100, 255));
    assert_eq!(fill_of(&svg, "idle\u{a0}3"), (255, 150, 150), "+40 of 60");
    assert_eq!(
        fill_of(&svg, "same"),
        (150, 150, 255),
        "100 → 60: −40 of 60"
    );
    let (reds, blues) = assert_colours_follow_titles(&svg);
    assert_eq!((reds, blues), (2, 2), "grow, idle 3 red; shrink, same blue");
    // Widths are the new run's.
    assert!(svg.contains("grow (80 samples, 40.00%; +30.00%)"), "{svg}");
    let log = text(&result);
    let expected = [
        "changed most since",
        "(100 samples then; share of self time, then → now):",
        " -30.0 pts   40.0 % →  10.0 %  shrink",
        " +30.0 pts   10.0 % →  40.0 %  grow",
        " +20.0 pts    0.0 % →  20.0 %  idle 3",
        " -20.0 pts   50.0 % →  30.0 %  same",
    ];
    for line in expected {
        assert!(log.contains(line), "{line:?} missing: {log}");
    }
    let listed = log.lines().filter(|l| l.contains(" pts ")).count();
    assert_eq!(listed, 4, "the 4 functions that changed: {log}");
    assert!(log.contains("wrote ") && log.contains("diff.svg"), "{log}");
}

#[test]
fn the_output_folder_about_to_be_overwritten_is_read_before() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = fixtures(dir.path());
    let out = dir.path().join("fg");
    let first = run(profiler_to(&out).arg("--from-folded").arg(&old));
    assert!(first.status.success(), "{}", text(&first));
    assert!(!out.join("diff.svg").exists());
    let second = run(profiler_to(&out)
        .arg("--from-folded")
        .arg(&new)
        .arg("--diff-against")
        .arg(&out));
    assert!(second.status.success(), "{}", text(&second));
    let svg = std::fs::read_to_string(out.join("diff.svg")).unwrap();
    assert_eq!(
        fill_of(&svg, "grow"),
        (255, 100, 100),
        "compared with the first run"
    );
    assert!(
        text(&second).contains(" +30.0 pts   10.0 % →  40.0 %  grow"),
        "{}",
        text(&second)
    );
    assert_eq!(
        total_samples(&std::fs::read_to_string(out.join("stacks.folded")).unwrap()),
        200,
        "then replaced by the new run"
    );
    // A later run without --diff-against leaves no stale diff.svg.
    let third = run(profiler_to(&out).arg("--from-folded").arg(&new));
    assert!(third.status.success(), "{}", text(&third));
    assert!(!out.join("diff.svg").exists(), "{:?}", names_in(&out));
}

/// The frames of a stack only the old run had are drawn in diff-removed.svg
/// at their old share, blue, and not in diff.svg.
#[test]
fn diff_removed_svg_draws_the_stacks_that_disappeared_at_their_old_share() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("old.folded"), dir.path().join("new.folded"));
    std::fs::write(&old, "main;same 50\nmain;gone;inner 30\nmain;grow 20\n").unwrap();
    std::fs::write(&new, "main;same 100\nmain;grow 100\n").unwrap();
    let out = dir.path().join("out");
    let result = run(profiler_to(&out)
        .arg("--from-folded")
        .arg(&new)
        .arg("--diff-against")
        .arg(&old));
    let log = text(&result);
    assert!(result.status.success(), "{log}");
    let removed =
        std::fs::read_to_string(out.join("diff-removed.svg")).expect("diff-removed.svg written");
    assert_svg_parses(&removed);
    // Widths are the old run's (100 samples); the new counts scaled to it:
    // same 50 → 50, grow 20 → 50 (+30), inner 30 → 0 (−30).
    let titles: Vec<String> = frames(&removed).into_iter().map(|f| f.1).collect();
    for title in [
        "gone (30 samples, 30.00%; 0.00%)",
        "inner (30 samples, 30.00%; -30.00%)",
        "grow (20 samples, 20.00%; +30.00%)",
        "same (50 samples, 50.00%; 0.00%)",
    ] {
        assert!(titles.iter().any(|t| t == title), "{title}: {titles:?}");
    }
    assert_eq!(
        fill_of(&removed, "inner"),
        (100, 100, 255),
        "all lost: deep blue"
    );
    assert_eq!(fill_of(&removed, "grow"), (255, 100, 100));
    assert_colours_follow_titles(&removed);
    assert!(
        removed.contains("what ") && removed.contains("old.folded had"),
        "title"
    );
    // diff.svg has the new run's widths: what is gone is not drawn there.
    let svg = std::fs::read_to_string(out.join("diff.svg")).unwrap();
    let drawn: Vec<String> = frames(&svg).into_iter().map(|f| f.0).collect();
    assert!(drawn.contains(&"grow".to_string()), "{drawn:?}");
    assert!(
        !drawn.iter().any(|n| n == "gone" || n == "inner"),
        "{drawn:?}"
    );
    // The summary names the file and what is gone.
    assert!(
        log.contains(
            "gone since then: 1 stack(s), 30.0 % of that run's samples, drawn in \
             diff-removed.svg"
        ),
        "{log}"
    );
    assert!(
        log.contains("wrote ") && log.contains("out/diff-removed.svg"),
        "{log}"
    );
    // --out NAME.svg names it NAME.diff-removed.svg; a run without
    // --diff-against removes it with diff.svg.
    let named = dir.path().join("named");
    let result = run(profiler_to(&named.join("my.svg"))
        .arg("--from-folded")
        .arg(&new)
        .arg("--diff-against")
        .arg(&old));
    let log = text(&result);
    assert!(result.status.success(), "{log}");
    assert!(
        named.join("my.diff-removed.svg").is_file(),
        "{:?}",
        names_in(&named)
    );
    assert!(log.contains("drawn in my.diff-removed.svg"), "{log}");
    let result = run(profiler_to(&out).arg("--from-folded").arg(&new));
    assert!(result.status.success(), "{}", text(&result));
    assert!(
        !out.join("diff-removed.svg").exists(),
        "{:?}",
        names_in(&out)
    );
}

/// Folded stacks of `samples` samples drawn (a seeded xorshift) from a
/// demo-like workload whose function `leaf` gets `extra` of the weight more.
fn workload(samples: u64, seed: u64, leaf: &str, extra: f64) -> String {
    let run = "demo;_start;main;demo::main;demo::run;demo::run_iteration";
    let mut weights = [
        (
            "core::slice::sort::shared::smallsort::small_sort_network",
            0.35,
        ),
        ("demo::checksum", 0.15),
        (
            "demo::fill_buffer;rand::rngs::small::SmallRng::next_u64",
            0.12,
        ),
        ("demo::encode;alloc::fmt::format", 0.10),
        ("alloc::vec::Vec<T>::push;_int_malloc", 0.08),
        ("demo::mix_neighbours", 0.10),
        ("__memmove_avx512_unaligned_erms", 0.10),
    ];
    for w in &mut weights {
        if w.0.ends_with(leaf) {
            w.1 += extra;
        }
    }
    let total: f64 = weights.iter().map(|w| w.1).sum();
    let mut counts = vec![0u64; weights.len()];
    let mut state = seed.max(1);
    for _ in 0..samples {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut r = (state >> 11) as f64 / (1u64 << 53) as f64 * total;
        let i = weights
            .iter()
            .position(|w| {
                r -= w.1;
                r < 0.0
            })
            .unwrap_or(weights.len() - 1);
        counts[i] += 1;
    }
    weights
        .iter()
        .zip(counts)
        .filter(|(_, n)| *n > 0)
        .map(|((frames, _), n)| format!("{run};{frames} {n}\n"))
        .collect()
}

/// A 300-sample old run of the same workload: its differences are noise,
/// and the run says so, with that count; two runs of 30 000 samples where
/// one function took 6 % more of the time: no warning, and that function
/// leads the list.
#[test]
fn a_tiny_old_run_warns_that_its_differences_are_noise_and_two_large_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let new = write("new.folded", workload(30_000, 1, "", 0.0));
    let tiny = write("tiny.folded", workload(300, 2, "", 0.0));
    let large = write("large.folded", workload(30_000, 3, "demo::checksum", 0.06));
    let diff = |old: &Path| {
        let result = run(profiler_to(&dir.path().join("out"))
            .arg("--from-folded")
            .arg(&new)
            .arg("--diff-against")
            .arg(old));
        assert!(result.status.success(), "{}", text(&result));
        String::from_utf8_lossy(&result.stderr).into_owned()
    };
    let warning = "--diff-against: every difference is within sampling noise: with 300 \
                   samples in the smaller run, no function's change is beyond chance";
    let log = diff(&tiny);
    let said: Vec<&str> = log.lines().filter(|l| l.contains(warning)).collect();
    assert_eq!(said.len(), 2, "on stderr and in the summary: {log}");
    assert!(said[0].starts_with("rust-flamegraph: warning: "), "{log}");
    assert!(said[1].starts_with("  warning: "), "{log}");
    assert!(log.contains("    nothing beyond sampling noise"), "{log}");
    assert!(!log.contains(" pts "), "no change listed: {log}");

    let log = diff(&large);
    assert!(!log.contains("sampling noise"), "{log}");
    let first = log
        .lines()
        .skip_while(|l| !l.contains("changed most since"))
        .nth(1)
        .unwrap_or_default();
    assert!(
        first.contains(" pts ") && first.ends_with("  demo::checksum"),
        "checksum's share fell by about 5 points: {log}"
    );
}

#[test]
fn a_wrong_old_is_exit_1_naming_the_flag_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (_, new) = fixtures(dir.path());
    let empty = dir.path().join("empty.folded");
    std::fs::write(&empty, "").unwrap();
    let not_stacks = dir.path().join("notes.txt");
    std::fs::write(&not_stacks, "remember the milk\n").unwrap();
    let folder = dir.path().join("no-results");
    std::fs::create_dir(&folder).unwrap();
    for (old, says) in [
        (dir.path().join("missing"), "no such file or folder"),
        (empty, "holds no folded stacks"),
        (not_stacks, "holds no folded stacks"),
        (folder, "this folder holds no stacks.folded"),
    ] {
        let out = dir.path().join("out");
        let result = run(profiler_to(&out)
            .arg("--from-folded")
            .arg(&new)
            .arg("--diff-against")
            .arg(&old));
        assert_exit(
            &result,
            1,
            &[&format!("--diff-against {}", old.display()), says],
        );
        assert!(!out.join("flamegraph.svg").exists(), "{old:?}");
    }
    // --diff-against needs a run to compare: not with --build-only.
    let result = run(profiler().args(["--build-only", "--diff-against", "x"]));
    assert_eq!(result.status.code(), Some(2), "{}", text(&result));
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn a_wrong_old_fails_before_the_program_is_built_or_run() {
    if !perf_available() {
        return; // perf is checked first
    }
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let result = run(profiler_to(&dir.path().join("out"))
        .arg("--diff-against")
        .arg(&missing)
        .args(SMALL_RUN));
    assert_exit(&result, 1, &["--diff-against", "no such file or folder"]);
    let log = text(&result);
    assert!(
        !log.contains("building") && !log.contains("recording") && !log.contains("checksum"),
        "{log}"
    );
}

/// The `(percent, count, name)` rows of the summary's hottest list.
fn summary_hottest(log: &str) -> Vec<(f64, u64, String)> {
    log.lines()
        .skip_while(|l| !l.contains("hottest functions (self time):"))
        .skip(1)
        .map_while(|l| {
            let (pct, rest) = l.trim_start().split_once(" %  ")?;
            let (count, name) = rest.trim_start().split_once("  ")?;
            Some((pct.parse().ok()?, count.parse().ok()?, name.to_string()))
        })
        .collect()
}

/// `go tool pprof -top` of `profile` by sample counts: its header, and the
/// (flat, flat %, name) of the top `n` functions.
fn go_top(profile: &Path, n: usize) -> (String, Vec<(u64, f64, String)>) {
    let out = run(Command::new("go")
        .args(["tool", "pprof", "-top", "-sample_index=samples"])
        .arg(format!("-nodecount={n}"))
        .args(["-nodefraction=0", "-edgefraction=0"])
        .arg(profile)
        .env("GOTOOLCHAIN", "local"));
    let log = text(&out);
    assert!(out.status.success(), "go tool pprof failed: {log}");
    let rows = String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip_while(|l| !(l.contains("flat%") && l.contains("cum%")))
        .skip(1)
        .map(|l| {
            // flat flat% sum% cum cum% name (the name may hold spaces)
            let mut rest = l.trim_start();
            let mut cols = Vec::new();
            for _ in 0..5 {
                let (col, tail) = rest
                    .split_once(' ')
                    .unwrap_or_else(|| panic!("not a row of 5 columns and a name: {l:?}"));
                cols.push(col);
                rest = tail.trim_start();
            }
            let pct = cols[1].trim_end_matches('%').parse().unwrap();
            (cols[0].parse().unwrap(), pct, rest.to_string())
        })
        .collect();
    (log, rows)
}

/// `go tool pprof -top` lists the summary's hottest functions, in order,
/// with the same counts and percentages within rounding.
fn assert_go_agrees(profile: &Path, log: &str) -> String {
    let ours = summary_hottest(log);
    assert!(ours.len() >= 3, "no hottest list: {log}");
    let (header, theirs) = go_top(profile, ours.len());
    assert_eq!(theirs.len(), ours.len(), "{header}");
    for ((pct, count, name), (flat, flat_pct, go_name)) in ours.iter().zip(&theirs) {
        // go marks a function inlined at a location so.
        let go_name = go_name.strip_suffix(" (inline)").unwrap_or(go_name);
        // A kernel function is `name_[k]` in folded stacks, `name` in its
        // `[kernel.kallsyms]` mapping.
        let same_name = match name.strip_suffix('…') {
            Some(start) => go_name.starts_with(start),
            None => go_name == name || name.strip_suffix("_[k]") == Some(go_name),
        };
        assert!(same_name, "{name} vs {go_name}\n{header}");
        assert_eq!(count, flat, "{name}\n{header}");
        assert!(
            (pct - flat_pct).abs() <= 0.051,
            "{name}: {pct} vs {flat_pct}"
        );
    }
    header
}

/// Self samples per function (leaf) and the total, from folded stacks.
fn self_time(folded: &str) -> (HashMap<String, u64>, u64) {
    let mut by_leaf = HashMap::new();
    let mut total = 0;
    for (frames, count) in stacks(folded) {
        *by_leaf
            .entry(frames.rsplit(';').next().unwrap().to_string())
            .or_default() += count;
        total += count;
    }
    (by_leaf, total)
}

#[test]
fn pprof_holds_the_folded_stacks_and_composes_with_the_other_formats() {
    let folded_path = repo().join("tests/golden/demo.folded");
    let folded = std::fs::read_to_string(&folded_path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for format in [
        &["--format", "pprof"][..],
        &["--format", "svg,pprof"],
        &["--format", "folded", "--format", "pprof"],
    ] {
        let out = dir.path().join(format.join("_"));
        let result = run(profiler_to(&out)
            .arg("--from-folded")
            .arg(&folded_path)
            .args(format));
        assert!(result.status.success(), "{format:?}: {}", text(&result));
        let bytes = std::fs::read(out.join("profile.pb.gz")).expect("profile.pb.gz written");
        assert_eq!(&bytes[..2], [0x1f, 0x8b], "gzipped");
        assert!(out.join("flamegraph.svg").exists() && out.join("stacks.folded").exists());
        let p = {
            use libdd_profiling_protobuf::prost_impls::{Message, Profile};
            let mut raw = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut raw)
                .unwrap();
            Profile::decode(raw.as_slice()).unwrap()
        };
        let name = |loc: u64| {
            let l = p.locations.iter().find(|l| l.id == loc).unwrap();
            let f = p
                .functions
                .iter()
                .find(|f| f.id == l.lines[0].function_id)
                .unwrap();
            p.string_table[f.name as usize].clone()
        };
        // Totals, per stack and per function, as in the folded stacks.
        let period = (1e9f64 / f64::from(rust_flamegraph::defaults::FREQ)).round() as i64;
        assert_eq!(p.period, period);
        let mut by_stack: HashMap<String, u64> = HashMap::new();
        for s in &p.samples {
            assert_eq!(
                s.values[1],
                s.values[0] * period,
                "cpu ns = samples × period"
            );
            let mut names: Vec<String> = s.location_ids.iter().map(|&l| name(l)).collect();
            names.reverse(); // leaf first in pprof
            *by_stack.entry(names.join(";")).or_default() += s.values[0] as u64;
        }
        let mut expected: HashMap<String, u64> = HashMap::new();
        for (frames, count) in stacks(&folded) {
            *expected.entry(frames.to_string()).or_default() += count;
        }
        assert_eq!(by_stack, expected);
        let total: i64 = p.samples.iter().map(|s| s.values[0]).sum();
        assert_eq!(total as u64, total_samples(&folded));
        let mut names: Vec<&str> = p
            .functions
            .iter()
            .map(|f| p.string_table[f.name as usize].as_str())
            .collect();
        let before = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), before, "each function once");
        assert_eq!(
            (p.time_nanos, p.duration_nanos),
            (0, 0),
            "a file's time is unknown"
        );
    }
    let result = run(profiler_to(&dir.path().join("x"))
        .args(["--from-folded"])
        .arg(&folded_path)
        .args(["--format", "png"]));
    assert_exit(&result, 2, &["png", "pprof"]);
}

#[test]
#[ignore = "needs go: cargo test -- --include-ignored"]
fn go_tool_pprof_lists_the_summarys_hottest_functions() {
    if !go_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let result = run(profiler_to(dir.path())
        .arg("--from-folded")
        .arg(repo().join("tests/golden/demo.folded"))
        .args(["--format", "pprof"]));
    assert!(result.status.success(), "{}", text(&result));
    assert_go_agrees(&dir.path().join("profile.pb.gz"), &text(&result));
}

/// `n` as inferno writes sample counts: `1,234`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Two real runs of the demo whose sizes make them profile differently:
/// 50 000 values a buffer (sorted in blocks of 64) before, 16 after (sorted
/// by insertion sort, with the allocator and formatting costs of every
/// iteration). What changed is computed here from the two stacks.folded.
#[test]
#[ignore = "needs perf and go: cargo test -- --include-ignored"]
fn two_demo_runs_of_different_sizes_diff_and_go_agrees_with_the_summary() {
    if !perf_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (large, small) = (dir.path().join("large"), dir.path().join("small"));
    // Frame-pointer stacks at 4999 Hz: many samples, little for perf to
    // write on a loaded machine. The later run is longer, so that the old
    // counts are scaled up (inferno rounds them down: scaled down, a stack
    // of a few samples could never shrink).
    let sampling = ["--call-graph", "fp", "--freq", "4999"];
    let result = run(profiler_to(&large)
        .args(sampling)
        .args(["--", "--iters", "300", "--size", "50000"]));
    assert!(result.status.success(), "{}", text(&result));
    let result = run(profiler_to(&small)
        .args(sampling)
        .arg("--diff-against")
        .arg(&large)
        .args([
            "--format", "pprof", "--", "--iters", "1500000", "--size", "16",
        ]));
    let log = text(&result);
    assert!(result.status.success(), "{log}");
    let old_folded = std::fs::read_to_string(large.join("stacks.folded")).unwrap();
    let new_folded = std::fs::read_to_string(small.join("stacks.folded")).unwrap();

    // The summary lists the 5 functions whose share of self time changed
    // most, of those beyond sampling noise (the exact test of each function,
    // at 5 % over the number of functions).
    let (old, old_total) = self_time(&old_folded);
    let (new, new_total) = self_time(&new_folded);
    let count = |m: &HashMap<String, u64>, name: &str| m.get(name).copied().unwrap_or(0);
    let share = |m: &HashMap<String, u64>, total: u64, name: &str| {
        count(m, name) as f64 * 100.0 / total as f64
    };
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    let each = 0.05 / names.len() as f64;
    let mut changes: Vec<(&str, f64)> = names
        .into_iter()
        .filter(|n| {
            let p = rust_flamegraph::output::diff::noise::p_value(
                count(&old, n),
                old_total,
                count(&new, n),
                new_total,
            );
            p < each
        })
        .map(|n| {
            (
                n.as_str(),
                share(&new, new_total, n) - share(&old, old_total, n),
            )
        })
        .filter(|(_, d)| *d != 0.0)
        .collect();
    changes.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then_with(|| a.0.cmp(b.0)));
    let listed: Vec<(f64, String)> = log
        .lines()
        .skip_while(|l| !l.contains("changed most since"))
        .skip(1)
        .map_while(|l| {
            let (delta, rest) = l.trim_start().split_once(" pts ")?;
            let name = rest.split_once(" %  ")?.1; // `old % → new %  name`
            Some((delta.parse().ok()?, name.to_string()))
        })
        .collect();
    assert!(
        changes.len() >= 3,
        "fewer than 3 changes beyond noise: {changes:?}"
    );
    assert_eq!(listed.len(), changes.len().min(5), "{log}");
    for ((delta, name), (expected_name, expected)) in listed.iter().zip(&changes) {
        let same = match name.strip_suffix('…') {
            Some(start) => expected_name.starts_with(start),
            None => name == expected_name,
        };
        assert!(
            same && (delta - expected).abs() < 0.051,
            "{name} {delta} vs {expected_name} {expected}: {log}"
        );
    }

    // diff.svg colours stacks: each frame by the change of the samples that
    // end in it, the old counts scaled to the new total (as inferno does).
    let svg = std::fs::read_to_string(small.join("diff.svg")).expect("diff.svg written");
    assert_svg_parses(&svg);
    assert_colours_follow_titles(&svg);
    let count = |folded: &str| {
        let mut m: HashMap<String, u64> = HashMap::new();
        for (frames, n) in stacks(folded) {
            *m.entry(frames.to_string()).or_default() += n;
        }
        m
    };
    let (before, after) = (count(&old_folded), count(&new_folded));
    let mut deltas: Vec<(i64, &str)> = after
        .iter()
        .map(|(stack, &n)| {
            let scaled = (before.get(stack).copied().unwrap_or(0) as f64 * new_total as f64
                / old_total as f64) as u64;
            (n as i64 - scaled as i64, stack.as_str())
        })
        .collect();
    deltas.sort();
    let (grew, shrank) = (deltas[deltas.len() - 1], deltas[0]);
    assert!(
        grew.0 as f64 >= 0.05 * new_total as f64,
        "no stack grew by 5 % of the samples: the runs hardly differ: {grew:?}"
    );
    assert!(
        shrank.0 < 0,
        "no stack drawn in both runs shrank: {shrank:?}"
    );
    let frames = frames(&svg);
    for ((delta, stack), colour, is) in
        [(grew, "red", red as fn(_) -> bool), (shrank, "blue", blue)]
    {
        let leaf = stack.rsplit(';').next().unwrap();
        let width: u64 = after
            .iter()
            .filter(|(s, _)| *s == stack || s.starts_with(&format!("{stack};")))
            .map(|(_, n)| n)
            .sum();
        let title = format!(
            "({} samples, {:.2}%; {:+.2}%)",
            thousands(width),
            width as f64 * 100.0 / new_total as f64,
            delta as f64 * 100.0 / new_total as f64
        );
        let frame = frames
            .iter()
            .find(|f| f.0 == leaf && f.1.ends_with(&title))
            .unwrap_or_else(|| panic!("no frame {leaf} {title} in diff.svg"));
        assert!(
            is(frame.2),
            "{stack} ({delta:+} samples) is not {colour}: {frame:?}"
        );
    }

    // pprof of the same run: go lists what the summary lists, with the time of the run.
    if go_available() {
        let header = assert_go_agrees(&small.join("profile.pb.gz"), &log);
        assert!(
            header.contains("Time: ") && header.contains("Duration: "),
            "{header}"
        );
    }
}

/// Two real runs of the demo, 50 000 values a buffer before and 16 after:
/// functions of the large sort that the small one never calls are gone, and
/// diff-removed.svg draws their stacks at their old share, in blue, while
/// diff.svg (the new run's widths) has no frame of them.
#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn diff_removed_svg_of_two_demo_runs_draws_the_functions_the_new_run_lost() {
    if !perf_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (large, small) = (dir.path().join("large"), dir.path().join("small"));
    let sampling = ["--call-graph", "fp", "--freq", "4999"];
    let result = run(profiler_to(&large)
        .args(sampling)
        .args(["--", "--iters", "600", "--size", "50000"]));
    assert!(result.status.success(), "{}", text(&result));
    let result = run(profiler_to(&small)
        .args(sampling)
        .arg("--diff-against")
        .arg(&large)
        .args(["--", "--iters", "1500000", "--size", "16"]));
    let log = text(&result);
    assert!(result.status.success(), "{log}");
    let old_folded = std::fs::read_to_string(large.join("stacks.folded")).unwrap();
    let new_folded = std::fs::read_to_string(small.join("stacks.folded")).unwrap();
    let old_total = total_samples(&old_folded);

    // The old stack with the most samples whose leaf function appears
    // nowhere in the new run.
    let in_new: std::collections::HashSet<&str> = stacks(&new_folded)
        .into_iter()
        .flat_map(|(frames, _)| frames.split(';'))
        .collect();
    let mut old_stacks: HashMap<&str, u64> = HashMap::new();
    for (frames, n) in stacks(&old_folded) {
        *old_stacks.entry(frames).or_default() += n;
    }
    let (&gone, &count) = old_stacks
        .iter()
        .filter(|(frames, _)| !in_new.contains(frames.rsplit(';').next().unwrap()))
        .max_by_key(|(frames, n)| (**n, std::cmp::Reverse(**frames)))
        .expect("no function of the large run is missing from the small one");
    // The largest holds 2.5 to 3.5 % of ~2000 samples (50 to 70): 1 % (20)
    // is more than 4 standard deviations below.
    assert!(
        count * 100 >= old_total,
        "the largest stack gone has {count} of {old_total} samples: the runs hardly differ"
    );
    eprintln!("gone: {gone} ({count} of {old_total} samples)");
    let leaf = gone.rsplit(';').next().unwrap();
    // Its frame: the old width (it and the stacks above it), and its own
    // samples, all lost (the new counts are scaled to the old total).
    let width: u64 = old_stacks
        .iter()
        .filter(|(s, _)| **s == gone || s.starts_with(&format!("{gone};")))
        .map(|(_, n)| n)
        .sum();
    let title = format!(
        "({} samples, {:.2}%; {:+.2}%)",
        thousands(width),
        width as f64 * 100.0 / old_total as f64,
        -(count as f64) * 100.0 / old_total as f64
    );
    let removed =
        std::fs::read_to_string(small.join("diff-removed.svg")).expect("diff-removed.svg written");
    assert_svg_parses(&removed);
    assert_colours_follow_titles(&removed);
    let drawn = frames(&removed);
    let frame = drawn
        .iter()
        .find(|f| f.0 == leaf && f.1.ends_with(&title))
        .unwrap_or_else(|| panic!("no frame {leaf} {title} in diff-removed.svg"));
    assert!(blue(frame.2), "{gone} is gone but not blue: {frame:?}");
    let svg = std::fs::read_to_string(small.join("diff.svg")).unwrap();
    assert!(
        !frames(&svg).iter().any(|f| f.0 == leaf),
        "{leaf} is drawn in diff.svg"
    );
    assert!(log.contains("gone since then: "), "{log}");
    assert!(log.contains("drawn in diff-removed.svg"), "{log}");
}
