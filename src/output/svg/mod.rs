//! Drawing folded stacks as inferno's interactive SVG flamegraph.
//!
//! Around inferno:
//!
//! - Names are made safe first ([`printable`]): inferno escapes only markup
//!   (`<>&"'`), so a control character in a thread or function name (a BEL,
//!   an ESC) would reach the SVG, which XML forbids: browsers then refuse the
//!   whole file ("Invalid character U+0007"). Lines are also kept from being
//!   read by inferno differently from us (`for_inferno`).
//! - Its output is patched ([`PATCHES`]): inferno's search key is Ctrl+F only
//!   and its Search button is drawn nearly transparent. inferno has no option
//!   for either, so the text of its stylesheet and script is substituted; a
//!   unit test fails if an inferno upgrade changes that text.
//!
//! In between, stacks under frames too narrow to draw are merged
//! (`prune_narrow`), which gives the same SVG: inferno would otherwise hold
//! every frame of every distinct stack (hundreds of MB for a million).
//!
//! Each step has its file: `prepare` (`for_inferno`), `prune`
//! (`prune_narrow`), `search_patches` ([`PATCHES`]) and `xml_comment` (the
//! notes).

mod prepare;
mod prune;
mod search_patches;
mod xml_comment;

pub use search_patches::PATCHES;

use std::io::Write;

use crate::model::text::printable;
use prepare::for_inferno;
use prune::prune_narrow;
use search_patches::Patched;
use xml_comment::comment_safe;

/// How the flamegraph is drawn.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// Omit frames narrower than this many pixels.
    pub min_width: f64,
    /// Merge from the leaves, so that the hottest functions are at the base.
    pub reverse: bool,
    /// Samples in time order, left to right, instead of merged stacks.
    pub flamechart: bool,
    /// Colour palette.
    pub palette: inferno::flamegraph::Palette,
    /// Second line, instead of [`Labels::subtitle`].
    pub subtitle: Option<String>,
    /// Notes embedded in the SVG.
    pub notes: Option<String>,
    /// Width in pixels (`None`: as wide as the window).
    pub image_width: Option<usize>,
    /// Colours from the function names, the same in every run.
    pub deterministic: bool,
    /// Icicle graph: roots at the top.
    pub inverted: bool,
    /// Counts are nanoseconds (`--off-cpu`): tooltips say milliseconds.
    pub nanoseconds: bool,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            min_width: crate::defaults::MIN_WIDTH,
            reverse: false,
            flamechart: false,
            palette: crate::defaults::PALETTE
                .parse()
                .expect("the default palette exists"),
            subtitle: None,
            notes: None,
            image_width: None,
            deterministic: false,
            inverted: false,
            nanoseconds: false,
        }
    }
}

/// Titles and numbers shown in the SVG.
#[derive(Debug, Clone)]
pub struct Labels {
    /// Main title: the profiled command, unless the user gave one.
    pub title: String,
    /// Second line: sample count and how they were taken.
    pub subtitle: String,
}

/// Renders folded stacks into inferno's interactive SVG.
///
/// Lines that are not `frames count` are left out, as are those that would
/// take the total past `u64::MAX` samples (with a warning): what is drawn is
/// what [`parse_line`](crate::model::folded::parse_line) reads, like the summary.
pub fn render_svg(
    folded: &[u8],
    opts: &RenderOptions,
    labels: &Labels,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    render(folded, None, opts, labels, out)
}

/// Renders the differential flamegraph from `old` to `folded` (both folded
/// stacks): widths are `folded`'s; a frame is red when its stack has more
/// samples than in `old` (scaled to `folded`'s total when `normalize`),
/// blue when fewer, deeper for larger changes (inferno's differential
/// module). Always merged stacks, never a flame chart (there is no time
/// order to compare); names are made safe as in [`render_svg`].
pub fn render_diff_svg(
    old: &[u8],
    folded: &[u8],
    normalize: bool,
    opts: &RenderOptions,
    labels: &Labels,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let diff = Diff {
        before: old,
        normalize,
        negate: false,
    };
    render(folded, Some(diff), opts, labels, out)
}

/// Renders what disappeared between `old` and `folded` (inferno's negated
/// differential flamegraph): widths are `old`'s, so a stack that is gone
/// is drawn at its old share; colours are as in [`render_diff_svg`], red
/// where `folded` has more samples (`folded` scaled to `old`'s total when
/// `normalize`), blue where fewer: a stack that is gone is deep blue.
pub fn render_removed_svg(
    old: &[u8],
    folded: &[u8],
    normalize: bool,
    opts: &RenderOptions,
    labels: &Labels,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    // inferno draws the second profile's widths, coloured by second − first;
    // negated, by first − second: the change from `old` to `folded` again.
    let diff = Diff {
        before: folded,
        normalize,
        negate: true,
    };
    render(old, Some(diff), opts, labels, out)
}

/// The other profile of a differential flamegraph.
struct Diff<'a> {
    /// Folded stacks compared with the drawn ones (inferno's first profile).
    before: &'a [u8],
    /// Scale `before` to the drawn stacks' total.
    normalize: bool,
    /// Colour by `before` − drawn instead of drawn − `before`.
    negate: bool,
}

/// [`render_svg`], or a differential flamegraph when given the other stacks.
fn render(
    folded: &[u8],
    diff: Option<Diff<'_>>,
    opts: &RenderOptions,
    labels: &Labels,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    // Filled below; declared first, since the options borrow it.
    let mut off_cpu = inferno::flamegraph::color::PaletteMap::default();
    let mut options = inferno::flamegraph::Options::default();
    options.title = printable(&labels.title).into_owned();
    let subtitle = opts.subtitle.as_deref().unwrap_or(&labels.subtitle);
    options.subtitle = Some(printable(subtitle).into_owned());
    options.notes = opts.notes.as_deref().map_or_else(String::new, comment_safe);
    options.image_width = opts.image_width;
    options.deterministic = opts.deterministic;
    if opts.inverted {
        options.direction = inferno::flamegraph::Direction::Inverted;
    }
    options.colors = opts.palette;
    options.min_width = opts.min_width;
    options.reverse_stack_order = opts.reverse;
    options.flame_chart = opts.flamechart;
    options.count_name = "samples".into();
    if opts.nanoseconds {
        options.count_name = "ms".into();
        options.factor = 1e-6;
    }
    let prepared = for_inferno(utf8(folded)?);
    // Waiting drawn in blue, apart from running (as in off-CPU flamegraphs);
    // preempted, which is CPU contention rather than waiting, in violet.
    for frame in prepared
        .text
        .split([';', '\n'])
        .filter(|f| f.starts_with("[off-cpu"))
    {
        let name = frame.rsplit_once(' ').map_or(frame, |(name, _)| name);
        if off_cpu.get(name).is_none() {
            let (r, g, b) = match name.contains("preempted") {
                true => (170, 110, 220),
                false => (80, 140, 230),
            };
            off_cpu.insert(name, inferno::flamegraph::color::Color { r, g, b });
        }
    }
    if off_cpu.iter().next().is_some() {
        options.palette_map = Some(&mut off_cpu);
    }
    if prepared.over_total > 0 {
        crate::say!(
            "rust-flamegraph: warning: {} stack(s) left out of the flamegraph: with them the \
             total would pass {} samples",
            prepared.over_total,
            u64::MAX
        );
    }
    let mut svg = Patched::new(out);
    if let Some(Diff {
        before,
        normalize,
        negate,
    }) = diff
    {
        let before = for_inferno(utf8(before)?);
        let mut diff = Vec::new();
        let diff_options = inferno::differential::Options {
            normalize,
            strip_hex: false,
        };
        let (before, drawn) = (before.text.as_bytes(), prepared.text.as_bytes());
        inferno::differential::from_readers(diff_options, before, drawn, &mut diff)?;
        options.flame_chart = false;
        options.negate_differentials = negate;
        inferno::flamegraph::from_lines(&mut options, utf8(&diff)?.lines(), &mut svg)?;
    } else if opts.flamechart {
        // inferno reverses flame-chart input (DTrace's order); ours is in time
        // order already, so hand it over reversed and time runs left to right.
        let lines: Vec<&str> = prepared.text.lines().rev().collect();
        inferno::flamegraph::from_lines(&mut options, lines, &mut svg)?;
    } else if opts.reverse {
        inferno::flamegraph::from_lines(&mut options, prepared.text.lines(), &mut svg)?;
    } else {
        let pruned = prune_narrow(&prepared.text, opts.min_width);
        let text = pruned.as_deref().unwrap_or(&prepared.text);
        inferno::flamegraph::from_lines(&mut options, text.lines(), &mut svg)?;
    }
    svg.finish()?;
    Ok(())
}

/// Folded stacks as text (they are written as UTF-8, and read lossily).
fn utf8(folded: &[u8]) -> std::io::Result<&str> {
    std::str::from_utf8(folded).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("stacks are not UTF-8: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn svg_of(folded: &str, opts: &RenderOptions) -> String {
        let labels = Labels {
            title: "t".into(),
            subtitle: "s".into(),
        };
        let mut svg = Vec::new();
        render_svg(folded.as_bytes(), opts, &labels, &mut svg).unwrap();
        String::from_utf8(svg).unwrap()
    }

    /// The `<title>`s of the frames: `name (N samples, P%)`.
    fn titles(svg: &str) -> Vec<&str> {
        svg.split("<g><title>")
            .skip(1)
            .map(|s| &s[..s.find("</title>").unwrap()])
            .collect()
    }

    #[test]
    fn svg_has_title_subtitle_and_escaped_names() {
        let labels = Labels {
            title: "demo --iters 5".into(),
            subtitle: "3 samples".into(),
        };
        let mut svg = Vec::new();
        render_svg(
            b"demo;main;a<script>&\"b 2\ndemo;main;c 1\n",
            &RenderOptions::default(),
            &labels,
            &mut svg,
        )
        .unwrap();
        let svg = String::from_utf8(svg).unwrap();
        assert!(svg.contains("demo --iters 5") && svg.contains("3 samples"));
        assert!(!svg.contains("a<script>"), "names must be escaped");
        assert!(svg.contains("a&lt;script&gt;&amp;"), "escaped name present");
    }

    #[test]
    fn control_characters_become_visible_escapes() {
        assert_eq!(printable("main"), Cow::Borrowed("main"));
        assert_eq!(printable("a <b> é 漢 🦀"), "a <b> é 漢 🦀");
        assert_eq!(printable("bell\x07"), "bell\\x07");
        assert_eq!(
            printable("\x1b[31mred\0\t\r"),
            "\\x1b[31mred\\x00\\x09\\x0d"
        );
        assert_eq!(printable("\u{7f}\u{85}\u{9f}"), "\\x7f\\u{85}\\u{9f}");
        assert_eq!(
            printable("\u{fffe}\u{ffff}\u{fffd}"),
            "\\u{fffe}\\u{ffff}\u{fffd}"
        );
        let svg = svg_of(
            "thread\x07;esc\x1b[0m;nul\0 2\nok;\u{ffff} 1\n",
            &RenderOptions::default(),
        );
        let labels = Labels {
            title: "cmd \x07".into(),
            subtitle: "\x1b".into(),
        };
        let mut titled = Vec::new();
        render_svg(b"a 1\n", &RenderOptions::default(), &labels, &mut titled).unwrap();
        let titled = String::from_utf8(titled).unwrap();
        for svg in [&svg, &titled] {
            let bad = svg.chars().find(|&c| {
                c.is_control() && !"\t\n\r".contains(c) || c == '\u{fffe}' || c == '\u{ffff}'
            });
            assert_eq!(bad, None, "a forbidden character reached the SVG");
        }
        assert!(titled.contains("cmd \\x07") && titled.contains("\\x1b"));
        let titles = titles(&svg);
        for name in [
            "thread\\x07 (2",
            "esc\\x1b[0m (2",
            "nul\\x00 (2",
            "\\u{ffff} (1",
        ] {
            assert!(
                titles.iter().any(|t| t.starts_with(name)),
                "{name}: {titles:?}"
            );
        }
    }

    #[test]
    fn names_inferno_would_misread_are_drawn_as_they_are() {
        // `worker 3 5` is a differential line to inferno (3 before, 5 after),
        // and `# x` a comment; `+7` is no count to it.
        let svg = svg_of(
            "main;worker 3 5\n# x;y 2\nmain;v 1.5 +7\nnot a stack\n",
            &RenderOptions::default(),
        );
        let titles = titles(&svg);
        assert!(titles.contains(&"all (14 samples, 100%)"), "{titles:?}");
        for name in [
            "worker\u{a0}3 (5 samples",
            "#\u{a0}x (2 samples",
            "v\u{a0}1.5 (7 samples",
        ] {
            assert!(
                titles.iter().any(|t| t.starts_with(name)),
                "{name}: {titles:?}"
            );
        }
    }

    #[test]
    fn totals_past_u64_stay_truthful() {
        let max = u64::MAX;
        // Two stacks of u64::MAX samples: inferno's sum would overflow (a
        // panic in debug builds, two 100 % frames in release builds).
        let svg = svg_of(&format!("a {max}\nb {max}\n"), &RenderOptions::default());
        let drawn = titles(&svg);
        assert_eq!(drawn.len(), 2, "{drawn:?}");
        assert!(drawn[1].starts_with("a ("), "{drawn:?}");
        // Up to u64::MAX in all, inferno draws it.
        let svg = svg_of(
            &format!("a {}\nb {}\n", max / 2, max / 2 + 1),
            &RenderOptions::default(),
        );
        let titles = titles(&svg);
        for name in ["a (", "b ("] {
            assert!(
                titles
                    .iter()
                    .any(|t| t.starts_with(name) && t.ends_with(", 50.00%)")),
                "{titles:?}"
            );
        }
    }

    #[test]
    fn render_svg_applies_the_patches() {
        let labels = Labels {
            title: "t".into(),
            subtitle: "s".into(),
        };
        // render_svg applies them.
        let mut out = Vec::new();
        render_svg(b"a;b 1\n", &RenderOptions::default(), &labels, &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(PATCHES.iter().all(|(_, to)| out.contains(to)));
    }

    #[test]
    fn waiting_is_blue_and_nanoseconds_read_as_milliseconds() {
        let folded = "main;work 3000000\nmain;sleep;[off-cpu: sleep] 5000000\nmain;spin;[off-cpu: preempted] 2000000\n";
        let opts = RenderOptions {
            nanoseconds: true,
            ..RenderOptions::default()
        };
        let svg = svg_of(folded, &opts);
        assert!(svg.contains("rgb(80,140,230)"), "waiting in blue");
        assert!(svg.contains("rgb(170,110,220)"), "preempted in violet");
        assert!(svg.contains("5 ms"), "tooltips in milliseconds");
        let plain = svg_of("main;work 3\n", &RenderOptions::default());
        assert!(!plain.contains("rgb(80,140,230)") && plain.contains("3 samples"));
    }
}
