//! Property-based fuzzing of the parsing paths we own: folded-stack lines,
//! the summary, re-reading folded files, rendering arbitrary names, and
//! perf-script text through the collapser. Cases per property: PROPTEST_CASES
//! (proptest's default, 256, unless set).

mod common;

use proptest::prelude::*;
use rust_flamegraph::collect::folded::read_folded;
use rust_flamegraph::collect::perf_script::collapse;
use rust_flamegraph::model::folded::parse_line;
use rust_flamegraph::output::summary::Summary;
use rust_flamegraph::output::svg::RenderOptions;
use rust_flamegraph::output::svg::{render_svg, Labels};

/// Frame names as hostile as they come: markup, quotes, entities, control
/// characters, any Unicode; never `;` (the separator) or a line break.
fn frame() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_:<>&\"' ]{1,20}",
        "\\PC{1,30}",
        Just("<script>alert(1)</script>".to_string()),
        Just("&amp;&lt;]]>".to_string()),
        "[a-z]{200,400}",
        "[\\x00-\\x1f\\x7f-\\x9f\u{fffe}\u{ffff}a ]{1,8}",
    ]
    .prop_map(|f| f.replace([';', '\n', '\r'], "_"))
    .prop_filter("a frame has text", |f| !f.trim().is_empty())
}

fn stack() -> impl Strategy<Value = (Vec<String>, u64)> {
    (prop::collection::vec(frame(), 1..8), 1u64..1_000_000)
}

proptest! {
    // Cases from PROPTEST_CASES; a failing case is printed, not saved to a file.
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn parse_line_never_panics(line in "\\PC*") {
        let _ = parse_line(&line);
    }

    #[test]
    fn parse_line_reads_back_what_was_written((frames, count) in stack()) {
        let frames = frames.join(";");
        let line = format!("{frames} {count}");
        prop_assert_eq!(parse_line(&line), Some((frames.as_str(), count)));
    }

    #[test]
    fn summary_counts_every_parsed_sample(text in "(\\PC*\n){0,20}", big in any::<u64>()) {
        let text = format!("{text}a;b {big}\nc {big}\n");
        let s = Summary::from_folded(&text, 10);
        let expected = text.lines().filter_map(parse_line).fold(0u64, |a, (_, c)| a.saturating_add(c));
        prop_assert_eq!(s.samples, expected);
        prop_assert!(s.complete <= s.samples);
        prop_assert!(s.hottest.len() <= 10);
    }

    #[test]
    fn any_names_render_to_well_formed_escaped_svg(stacks in prop::collection::vec(stack(), 1..12)) {
        let folded: String = stacks
            .iter()
            .map(|(frames, count)| format!("{} {count}\n", frames.join(";")))
            .collect();
        let labels = Labels { title: "t<&>\"".into(), subtitle: "s".into() };
        let mut svg = Vec::new();
        render_svg(folded.as_bytes(), &RenderOptions::default(), &labels, &mut svg).unwrap();
        let svg = String::from_utf8(svg).unwrap();
        common::assert_svg_parses(&svg);
        prop_assert!(!svg.contains("<script>alert"));
    }

    #[test]
    fn folded_files_of_any_bytes_are_read_or_refused(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stacks.folded");
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(folded) = read_folded(&path) {
            let text = String::from_utf8(folded.text).unwrap();
            prop_assert!(text.lines().all(|l| parse_line(l).is_some()));
        }
    }

    #[test]
    fn perf_script_text_of_any_shape_collapses_without_panic(
        events in prop::collection::vec(
            (
                "[a-z]{1,8}",
                0u32..100_000,
                prop::collection::vec(("[0-9a-f]{1,16}", "\\PC{0,20}", "\\PC{0,12}"), 0..6),
            ),
            0..20,
        ),
        junk in "\\PC{0,200}",
    ) {
        let mut text = String::new();
        for (comm, pid, frames) in &events {
            text.push_str(&format!("{comm} {pid}/{pid} 1.{pid:06}: cpu-clock:\n"));
            for (addr, sym, dso) in frames {
                text.push_str(&format!("\t{addr} {sym} ({dso})\n"));
            }
            text.push('\n');
        }
        text.push_str(&junk);
        let mut out = Vec::new();
        collapse(text.as_bytes(), &mut out, false).unwrap();
    }
}

/// A folded file whose frames are arbitrary bytes (control characters, bytes
/// that are not UTF-8, `;`, spaces, line breaks) and whose counts may be
/// anything up to `u64::MAX`.
fn folded_bytes() -> impl Strategy<Value = Vec<u8>> {
    let frame = prop::collection::vec(any::<u8>(), 0..12);
    let count = prop_oneof![
        4 => (1u64..1000).prop_map(|c| c.to_string()),
        1 => any::<u64>().prop_map(|c| c.to_string()),
        1 => Just(u64::MAX.to_string()),
        1 => "[-+0-9.]{1,22}",
    ];
    let line = (prop::collection::vec(frame, 1..6), count).prop_map(|(frames, count)| {
        let mut line = frames.join(&b';');
        line.push(b' ');
        line.extend_from_slice(count.as_bytes());
        line.push(b'\n');
        line
    });
    (
        prop::collection::vec(line, 1..12),
        prop::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(lines, junk)| {
            let mut bytes = lines.concat();
            bytes.extend(junk);
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever the names hold, the SVG opens in a browser: well-formed, and
    /// only characters XML allows (quick-xml alone lets U+0007 through).
    #[test]
    fn arbitrary_bytes_in_names_render_to_an_svg_browsers_open(bytes in folded_bytes(), title in prop::collection::vec(any::<u8>(), 0..20)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stacks.folded");
        std::fs::write(&path, &bytes).unwrap();
        let labels = Labels {
            title: String::from_utf8_lossy(&title).into_owned(),
            subtitle: "s".into(),
        };
        let render = |text: &[u8]| {
            let mut svg = Vec::new();
            render_svg(text, &RenderOptions::default(), &labels, &mut svg).map(|()| String::from_utf8(svg).unwrap())
        };
        // As `--from-folded` reads it...
        if let Ok(folded) = read_folded(&path) {
            let svg = render(&folded.text).unwrap();
            common::assert_svg_parses(&svg);
        }
        // ...and handed to the renderer as it is (inferno refuses a text with no stack).
        if let Ok(svg) = render(String::from_utf8_lossy(&bytes).as_bytes()) {
            common::assert_svg_parses(&svg);
        }
    }
}
