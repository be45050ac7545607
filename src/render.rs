//! Drawing folded stacks as inferno's interactive SVG flamegraph.
//!
//! Two things are done around inferno:
//!
//! - Names are made safe first ([`xml_safe`]): inferno escapes only markup
//!   (`<>&"'`), so a control character in a thread or function name (a BEL,
//!   an ESC) would reach the SVG, which XML forbids: browsers then refuse the
//!   whole file ("Invalid character U+0007"). Lines are also kept from being
//!   read by inferno differently from us ([`for_inferno`]).
//! - Its output is patched ([`PATCHES`]): inferno's search key is Ctrl+F only
//!   and its Search button is drawn nearly transparent. inferno has no option
//!   for either, so the text of its stylesheet and script is substituted; a
//!   unit test fails if an inferno upgrade changes that text.

use std::borrow::Cow;
use std::io::Write;

use crate::cli::RenderOptions;
use crate::folded::parse_line;

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
/// what [`parse_line`] reads, like the summary.
pub fn render_svg(
    folded: &[u8],
    opts: &RenderOptions,
    labels: &Labels,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let mut options = inferno::flamegraph::Options::default();
    options.title = xml_safe(&labels.title).into_owned();
    options.subtitle = Some(xml_safe(&labels.subtitle).into_owned());
    options.colors = opts.palette;
    options.min_width = opts.min_width;
    options.reverse_stack_order = opts.reverse;
    options.flame_chart = opts.flamechart;
    options.count_name = "samples".into();
    let text = std::str::from_utf8(folded).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("stacks are not UTF-8: {e}"),
        )
    })?;
    let prepared = for_inferno(text);
    if prepared.over_total > 0 {
        crate::say!(
            "rust-flamegraph: warning: {} stack(s) left out of the flamegraph: with them the \
             total would pass {} samples",
            prepared.over_total,
            u64::MAX
        );
    }
    let mut svg = Patched::new(out);
    if opts.flamechart {
        // inferno reverses flame-chart input (DTrace's order); ours is in time
        // order already, so hand it over reversed and time runs left to right.
        let lines: Vec<&str> = prepared.text.lines().rev().collect();
        inferno::flamegraph::from_lines(&mut options, lines, &mut svg)?;
    } else {
        inferno::flamegraph::from_lines(&mut options, prepared.text.lines(), &mut svg)?;
    }
    svg.finish()?;
    Ok(())
}

/// `text` with every character that XML 1.0 forbids, and every other control
/// character (invisible in a flamegraph anyway), replaced by a visible escape:
/// `\x07` for ASCII, `\u{85}` beyond. Everything else is left as it is
/// (inferno escapes markup itself), so names that are fine do not change.
/// Borrowed when nothing needed escaping.
pub fn xml_safe(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !needs_escape(c) {
            out.push(c);
        } else if c.is_ascii() {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

/// Control characters (C0, DEL, C1: tab and line breaks included) and the two
/// characters outside XML 1.0's `Char` that a Rust string can hold besides
/// them, U+FFFE and U+FFFF. (Surrogates cannot occur in a `str`; other
/// noncharacters are allowed by XML.)
fn needs_escape(c: char) -> bool {
    c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}'
}

/// Folded text as inferno should see it.
struct Prepared<'a> {
    /// Borrowed when no line needed a change (the usual case: no copy).
    text: Cow<'a, str>,
    /// Lines left out because the total would have overflowed.
    over_total: u64,
}

/// Rewrites the lines of `text` that inferno would draw wrongly or not at all:
///
/// - control characters are escaped ([`xml_safe`]);
/// - a stack whose last frame ends in a number (`worker 3`) would be read as
///   a differential flamegraph's two counts: that last space becomes a
///   no-break space, which looks the same;
/// - a stack that starts with `# ` would be a comment to inferno: the same;
/// - a count that inferno does not read (`+5`) is written plainly;
/// - lines that are not `frames count` are left out, and so are stacks that
///   would take the total past `u64::MAX`, which inferno's sums cannot hold.
fn for_inferno(text: &str) -> Prepared<'_> {
    let mut out: Option<String> = None;
    let mut total = 0u64;
    let mut over_total = 0u64;
    let mut offset = 0; // where `line` starts in `text`
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let body = line.trim_end_matches(['\n', '\r']);
        let keep = if body.trim().is_empty() {
            Some(None) // a blank line: inferno skips it too
        } else {
            match parse_line(body) {
                None => None,
                Some((frames, count)) => match total.checked_add(count) {
                    None => {
                        over_total += 1;
                        None
                    }
                    Some(sum) => {
                        total = sum;
                        let plain_count = body
                            .trim_end()
                            .rsplit_once(' ')
                            .is_some_and(|(_, c)| c.bytes().all(|b| b.is_ascii_digit()));
                        match fix_frames(frames) {
                            Cow::Borrowed(_) if plain_count => Some(None),
                            fixed => Some(Some(format!("{fixed} {count}\n"))),
                        }
                    }
                },
            }
        };
        match (keep, &mut out) {
            (Some(None), None) => {} // unchanged, nothing copied so far
            (Some(None), Some(out)) => out.push_str(line),
            (change, out) => {
                let out = out.get_or_insert_with(|| {
                    let mut s = String::with_capacity(text.len());
                    s.push_str(&text[..start]);
                    s
                });
                if let Some(Some(fixed)) = change {
                    out.push_str(&fixed);
                }
            }
        }
    }
    Prepared {
        text: out.map_or(Cow::Borrowed(text), Cow::Owned),
        over_total,
    }
}

/// The frames of one stack, fixed as [`for_inferno`] says.
fn fix_frames(frames: &str) -> Cow<'_, str> {
    let mut frames = xml_safe(frames);
    // inferno trims the line, then takes a last word of digits (and dots) as a count.
    let trimmed = frames.trim_end();
    if let Some((i, word)) = trimmed.rfind(' ').map(|i| (i, &trimmed[i + 1..])) {
        if word.starts_with(|c: char| c.is_ascii_digit())
            && word.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        {
            frames.to_mut().replace_range(i..i + 1, "\u{a0}");
        }
    }
    let lead = frames.len() - frames.trim_start().len();
    if frames[lead..].starts_with("# ") {
        frames.to_mut().replace_range(lead + 1..lead + 2, "\u{a0}");
    }
    frames
}

/// What is substituted in inferno's output, in order: (inferno's text, ours).
///
/// - Its stylesheet draws the Search button at opacity 0.1 (1 on hover):
///   drawn plainly, underlined like a link, it can be found.
/// - Its key handler opens the search on Ctrl+F (and F3) only, so on a Mac
///   Cmd+F opens the browser's own find bar, which does not see the frames'
///   names. Ours also takes Cmd+F (`metaKey`) and `/` (no modifier but Shift:
///   on some keyboards `/` needs it), reading `e.key` as well as the
///   deprecated `keyCode`.
///
/// These are inferno 0.12's texts (`src/flamegraph/flamegraph.css` and
/// `flamegraph.js`); `tests::inferno_still_has_the_text_we_patch` fails if an
/// upgrade changes them. The first is in a `<style>` element's text (no `<`
/// or `&`), the second in the script's CDATA (no `]]>`).
pub const PATCHES: [(&str, &str); 2] = [
    (
        "#search { text-anchor:end; opacity:0.1; cursor:pointer; }",
        "#search { text-anchor:end; opacity:1; cursor:pointer; text-decoration:underline; }",
    ),
    (
        "if (e.keyCode === 114 || (e.ctrlKey && e.keyCode === 70)) {",
        "if (e.keyCode === 114 \
         || ((e.ctrlKey || e.metaKey) && (e.keyCode === 70 || e.key === \"f\" || e.key === \"F\")) \
         || (e.key === \"/\" && !e.ctrlKey && !e.metaKey && !e.altKey)) {",
    ),
];

/// inferno's SVG up to the end of its `<script>`, held until [`PATCHES`] are
/// applied; the rest (the frames) passes straight through.
struct Patched<'w> {
    out: &'w mut dyn Write,
    /// The beginning of the SVG, until it is patched (then empty).
    head: Vec<u8>,
    patched: bool,
    /// How many of [`PATCHES`] were applied.
    applied: usize,
}

/// The head is patched once it holds this (the end of inferno's script), or
/// at this size without it (inferno's head is about 20 KB).
const HEAD_END: &[u8] = b"</script>";
const HEAD_MAX: usize = 1 << 20;

impl<'w> Patched<'w> {
    fn new(out: &'w mut dyn Write) -> Self {
        Self {
            out,
            head: Vec::new(),
            patched: false,
            applied: 0,
        }
    }

    fn patch_head(&mut self) -> std::io::Result<()> {
        self.patched = true;
        let head = std::mem::take(&mut self.head);
        let (head, applied) = patch(head);
        self.applied = applied;
        self.out.write_all(&head)
    }

    /// Writes what is still held; returns how many patches were applied.
    fn finish(mut self) -> std::io::Result<usize> {
        if !self.patched {
            self.patch_head()?;
        }
        self.out.flush()?;
        Ok(self.applied)
    }
}

/// Applies [`PATCHES`] to the head of an SVG; returns it and how many applied.
fn patch(mut head: Vec<u8>) -> (Vec<u8>, usize) {
    let mut applied = 0;
    for (from, to) in PATCHES {
        let at = head.windows(from.len()).position(|w| w == from.as_bytes());
        if let Some(i) = at {
            head.splice(i..i + from.len(), to.bytes());
            applied += 1;
        }
    }
    (head, applied)
}

impl Write for Patched<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.patched {
            return self.out.write(buf);
        }
        let searched = self.head.len().saturating_sub(HEAD_END.len() - 1);
        self.head.extend_from_slice(buf);
        if self.head[searched..]
            .windows(HEAD_END.len())
            .any(|w| w == HEAD_END)
            || self.head.len() >= HEAD_MAX
        {
            self.patch_head()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        // Held bytes wait for `finish`: a flush is no reason to write a half-patched head.
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(xml_safe("main"), Cow::Borrowed("main"));
        assert_eq!(xml_safe("a <b> é 漢 🦀"), "a <b> é 漢 🦀");
        assert_eq!(xml_safe("bell\x07"), "bell\\x07");
        assert_eq!(xml_safe("\x1b[31mred\0\t\r"), "\\x1b[31mred\\x00\\x09\\x0d");
        assert_eq!(xml_safe("\u{7f}\u{85}\u{9f}"), "\\x7f\\u{85}\\u{9f}");
        assert_eq!(
            xml_safe("\u{fffe}\u{ffff}\u{fffd}"),
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
        // Names that are fine are not touched, and no copy is made.
        let text = "main;a b;c 3\nmain;x 1\r\n\n";
        assert!(matches!(for_inferno(text).text, Cow::Borrowed(_)));
        let prepared = for_inferno("a 1\nb\x07 2\nc 3");
        assert_eq!(prepared.text, "a 1\nb\\x07 2\nc 3");
    }

    #[test]
    fn totals_past_u64_stay_truthful() {
        let max = u64::MAX;
        // Two stacks of u64::MAX samples: inferno's sum would overflow (a
        // panic in debug builds, two 100 % frames in release builds).
        let text = format!("a {max}\nb {max}\nc 1\n");
        let prepared = for_inferno(&text);
        assert_eq!(prepared.text, format!("a {max}\n"));
        assert_eq!(prepared.over_total, 2);
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
    fn inferno_still_has_the_text_we_patch() {
        // Rendered without our patch, inferno's SVG holds each text exactly once.
        let mut options = inferno::flamegraph::Options::default();
        let mut raw = Vec::new();
        inferno::flamegraph::from_lines(&mut options, ["a;b 1"], &mut raw).unwrap();
        let raw = String::from_utf8(raw).unwrap();
        for (from, _) in PATCHES {
            assert_eq!(
                raw.matches(from).count(),
                1,
                "inferno's SVG no longer holds {from:?}: update render::PATCHES to the new \
                 text (see its comment)"
            );
        }
        // Ours holds the replacements, within the head we buffer.
        let labels = Labels {
            title: "t".into(),
            subtitle: "s".into(),
        };
        let mut out = Vec::new();
        let mut svg = Patched::new(&mut out);
        inferno::flamegraph::from_lines(&mut options, ["a;b 1"], &mut svg).unwrap();
        assert_eq!(svg.finish().unwrap(), PATCHES.len(), "every patch applied");
        let ours = String::from_utf8(out).unwrap();
        assert!(raw.find("</script>").unwrap() < HEAD_MAX);
        for (from, to) in PATCHES {
            assert!(!ours.contains(from) && ours.contains(to));
            assert!(!to.contains("]]>") && !to.contains("</"));
        }
        assert!(
            !PATCHES[0].1.contains(['<', '&']),
            "the stylesheet is XML text"
        );
        // render_svg applies them.
        let mut out = Vec::new();
        render_svg(b"a;b 1\n", &RenderOptions::default(), &labels, &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(PATCHES.iter().all(|(_, to)| out.contains(to)));
    }

    #[test]
    fn patching_passes_any_write_pattern_through() {
        // Bytes written one at a time, `</script>` split across writes.
        let head = format!(
            "<svg><style>{}</style><script>{}</script>",
            PATCHES[0].0, PATCHES[1].0
        );
        let input = format!("{head}<g>frames</g></svg>");
        let mut out = Vec::new();
        let mut svg = Patched::new(&mut out);
        for b in input.as_bytes() {
            svg.write_all(std::slice::from_ref(b)).unwrap();
        }
        assert_eq!(svg.finish().unwrap(), 2);
        let expected = input
            .replace(PATCHES[0].0, PATCHES[0].1)
            .replace(PATCHES[1].0, PATCHES[1].1);
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        // Output that never holds the texts is written unchanged.
        let mut out = Vec::new();
        let mut svg = Patched::new(&mut out);
        svg.write_all(b"<svg/>").unwrap();
        assert_eq!(svg.finish().unwrap(), 0);
        assert_eq!(out, b"<svg/>");
    }
}
