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

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write;

use crate::model::folded::parse_line;
use crate::model::text::printable;

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
/// what [`parse_line`] reads, like the summary.
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
    render(folded, Some((old, normalize)), opts, labels, out)
}

/// [`render_svg`], or [`render_diff_svg`] when given the old stacks.
fn render(
    folded: &[u8],
    old: Option<(&[u8], bool)>,
    opts: &RenderOptions,
    labels: &Labels,
    out: &mut dyn Write,
) -> std::io::Result<()> {
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
    let prepared = for_inferno(utf8(folded)?);
    if prepared.over_total > 0 {
        crate::say!(
            "rust-flamegraph: warning: {} stack(s) left out of the flamegraph: with them the \
             total would pass {} samples",
            prepared.over_total,
            u64::MAX
        );
    }
    let mut svg = Patched::new(out);
    if let Some((old, normalize)) = old {
        let old = for_inferno(utf8(old)?);
        let mut diff = Vec::new();
        let diff_options = inferno::differential::Options {
            normalize,
            strip_hex: false,
        };
        let (old, new) = (old.text.as_bytes(), prepared.text.as_bytes());
        inferno::differential::from_readers(diff_options, old, new, &mut diff)?;
        options.flame_chart = false;
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

/// The same flame graph from fewer lines, so that inferno (which holds every
/// frame of every stack before it drops those too narrow to draw) needs
/// memory for about what is drawn, not for every distinct stack.
///
/// This follows inferno 0.12's own steps: lines are trimmed and sorted as
/// strings; a frame is a run of consecutive lines with the same frames up to
/// it; it is drawn when its samples are at least `min_width` % of all. Then:
///
/// - all the lines of an undrawn frame `P` whose parent is drawn become one
///   line, `…;P;` (an empty frame under `P`, undrawn too; `…;P` when `P` has
///   no frames under it): it sorts where those lines did, so `P` keeps its
///   place and width;
/// - consecutive undrawn siblings become one line, named after the first,
///   as long as their sum stays too narrow to draw (so a parent with a
///   million narrow children gets about 2 × 100 / `min_width` lines), unless
///   the line after them has that name (inferno would join the two).
///
/// Every frame that is drawn keeps its place and width: the SVG is the same,
/// which `prune_narrow_draws_what_inferno_draws` checks against inferno on
/// arbitrary stacks. `None` when nothing would be merged. Only for flame
/// graphs: reversed stacks and flame charts are ordered differently.
fn prune_narrow(text: &str, min_width: f64) -> Option<String> {
    // Lines are `frames count` with a plain count (see for_inferno).
    fn parse(line: &str) -> Option<(&str, u64)> {
        let digits = line.bytes().rev().take_while(u8::is_ascii_digit).count();
        let (frames, count) = line.split_at(line.len() - digits);
        Some((frames.strip_suffix(' ')?.trim_end(), count.parse().ok()?))
    }
    let mut lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !(l.is_empty() || l.starts_with("# ")))
        .collect();
    let mut total = 0u64;
    for line in &lines {
        total = total.checked_add(parse(line)?.1)?;
    }
    let threshold = min_width / (100.0 / total as f64);
    if total == 0 || threshold <= 1.0 {
        return None; // every frame with a sample is drawn
    }
    lines.sort_unstable();

    // How many frames of each line are drawn (all of its first N).
    let mut drawn = vec![0u32; lines.len()];
    {
        // Open frames, root first: (first line, samples before it).
        let mut open: Vec<(usize, u64)> = Vec::new();
        let mut close = |open: &mut Vec<(usize, u64)>, keep: usize, line: usize, time: u64| {
            while open.len() > keep {
                let depth = open.len() as u32;
                let (first, start) = open.pop().unwrap();
                if ((time - start) as f64) >= threshold {
                    for d in &mut drawn[first..line] {
                        *d = (*d).max(depth);
                    }
                }
            }
        };
        let (mut previous, mut frames): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
        let mut time = 0u64;
        for (i, line) in lines.iter().enumerate() {
            let (stack, count) = parse(line)?;
            frames.clear();
            frames.extend(stack.split(';'));
            let shared = previous
                .iter()
                .zip(&frames)
                .take_while(|(a, b)| a == b)
                .count();
            close(&mut open, shared, i, time);
            while open.len() < frames.len() {
                open.push((i, time));
            }
            std::mem::swap(&mut previous, &mut frames);
            time += count;
        }
        close(&mut open, 0, lines.len(), time);
    }

    // Lines, or the undrawn frames just under drawn ones, in order.
    let mut items: Vec<Item> = Vec::new();
    for (line, &drawn) in lines.iter().zip(&drawn) {
        let (stack, count) = parse(line)?;
        let depth = drawn as usize + 1; // of the first frame not drawn
        let frames = stack.split(';').count();
        if frames < depth {
            items.push(Item::Line(line));
            continue;
        }
        // `prefix` ends with that frame.
        let prefix = match stack.match_indices(';').nth(depth - 1) {
            Some((i, _)) => &stack[..i],
            None => stack,
        };
        let own = frames == depth;
        match items.last_mut() {
            Some(Item::Undrawn {
                prefix: p,
                count: c,
                own: o,
                ..
            }) if *p == prefix => {
                *c += count;
                *o |= own;
            }
            _ => items.push(Item::Undrawn {
                prefix,
                depth,
                count,
                own,
            }),
        }
    }
    let before = lines.len();
    drop(drawn);
    drop(lines);

    // Siblings' parent and name: `a;b` and `c` for `a;b;c`.
    fn split(prefix: &str) -> (&str, &str) {
        prefix.rsplit_once(';').unwrap_or(("", prefix))
    }
    let (mut out, mut lines) = (String::new(), 0);
    let mut i = 0;
    while i < items.len() {
        let Item::Undrawn {
            prefix,
            depth,
            mut count,
            own,
        } = items[i]
        else {
            if let Item::Line(line) = items[i] {
                out.push_str(line);
                out.push('\n');
                lines += 1;
            }
            i += 1;
            continue;
        };
        let (parent, name) = split(prefix);
        // Siblings that can join this one.
        let mut end = i + 1;
        while let Some(&Item::Undrawn {
            prefix: p,
            depth: d,
            count: c,
            ..
        }) = items.get(end)
        {
            let sum = count.saturating_add(c);
            if d != depth || split(p).0 != parent || (sum as f64) >= threshold {
                break;
            }
            count = sum;
            end += 1;
        }
        // The frame after them at this depth must not have this name.
        let next_frame = |item: Option<&Item<'_>>| -> Option<String> {
            let frames = match item? {
                Item::Line(line) => parse(line)?.0,
                Item::Undrawn { prefix, .. } => prefix,
            };
            let (mut theirs, mut ours) = (frames.split(';'), prefix.split(';'));
            for _ in 1..depth {
                if theirs.next()? != ours.next()? {
                    return None; // not a sibling
                }
            }
            theirs.next().map(str::to_string)
        };
        if end > i + 1 && next_frame(items.get(end)).as_deref() == Some(name) {
            end = i + 1; // keep this one alone (rare: `c`, `c!x`, then `c` again)
            if let Item::Undrawn { count: c, .. } = items[i] {
                count = c;
            }
        }
        // Sorted where the first one's lines were: `P 5` before `P:x`, `P;` after.
        let _ = writeln!(out, "{prefix}{} {count}", if own { "" } else { ";" });
        lines += 1;
        i = end;
    }
    (lines < before).then_some(out)
}

/// `text` fit for inside an XML comment (inferno puts the notes in one): no
/// `--`, no `-` before the closing `-->`, and [`xml_safe`].
fn comment_safe(text: &str) -> String {
    let mut text = printable(text).into_owned();
    while text.contains("--") {
        text = text.replace("--", "- -");
    }
    if text.ends_with('-') {
        text.push(' ');
    }
    text
}

/// A line for [`prune_narrow`] to keep, or the lines under one undrawn frame.
#[derive(Clone, Copy)]
enum Item<'a> {
    Line(&'a str),
    Undrawn {
        /// Frames down to the undrawn one.
        prefix: &'a str,
        depth: usize,
        count: u64,
        /// Some of its lines end with it (it has samples of its own).
        own: bool,
    },
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
/// - control characters are escaped ([`printable`]);
/// - a stack whose last frame ends in a number (`worker 3`) would be read as
///   a differential flamegraph's two counts: that last space becomes a
///   no-break space, which looks the same;
/// - a stack that starts with `# ` would be a comment to inferno: the same;
/// - a count that inferno does not read (`+5`) is written plainly;
/// - lines that are not `frames count` (or whose frames are only blanks) are
///   left out, and so are stacks that would take the total past `u64::MAX`,
///   which inferno's sums cannot hold.
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
                // inferno trims lines: no frame would be left.
                Some((frames, _)) if frames.trim().is_empty() => None,
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
    let mut frames = printable(frames);
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

    /// inferno's SVG with colours that do not change from run to run.
    fn inferno_svg(text: &str, min_width: f64) -> String {
        let mut options = inferno::flamegraph::Options::default();
        options.deterministic = true;
        options.min_width = min_width;
        let mut svg = Vec::new();
        inferno::flamegraph::from_lines(&mut options, text.lines(), &mut svg).unwrap();
        String::from_utf8(svg).unwrap()
    }

    #[test]
    fn narrow_frames_are_merged_and_the_svg_is_the_same() {
        let mut text = String::from("main;wide;leaf 900\n");
        for i in 0..100 {
            text.push_str(&format!("main;narrow;f{i};g 1\nmain;wide;n{i} 1\n"));
        }
        // 1,100 samples: at 1 %, a frame needs 11 of them to be drawn.
        let pruned = prune_narrow(&text, 1.0).unwrap();
        // Siblings grouped by 10 samples (11 would be drawn), named after the first.
        let lines: Vec<&str> = pruned.lines().collect();
        assert_eq!(lines.len(), 10 + 1 + 10, "{pruned}");
        assert_eq!(lines[0], "main;narrow;f0; 10");
        assert_eq!(lines[1], "main;narrow;f19; 10"); // sorted: f0, f1, f10, …, f18
        assert_eq!(lines[10], "main;wide;leaf 900");
        assert_eq!(lines[11], "main;wide;n0 10");
        assert_eq!(inferno_svg(&text, 1.0), inferno_svg(&pruned, 1.0));
        // Nothing to merge when every frame is drawn.
        assert_eq!(prune_narrow(&text, 0.05), None);
        assert_eq!(prune_narrow("a;b 1\na;c 1\n", 1.0), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// Names that sort around `;` and spaces (`a:b`, `a!`, `a `), which
        /// split one function into several frames in inferno: the pruned
        /// lines give the very same SVG.
        #[test]
        fn prune_narrow_draws_what_inferno_draws(
            stacks in proptest::collection::vec(
                (
                    proptest::collection::vec(
                        proptest::sample::select(vec![
                            "a", "a:b", "a!", "a0", "a/", "b", "c", "d", "e", "a ", "::", "", " a", "é",
                        ]),
                        1..7,
                    ),
                    0u64..30,
                ),
                1..80,
            ),
            min_width in proptest::prop_oneof![proptest::strategy::Just(0.1), 0.0..60.0f64],
        ) {
            let text: String = stacks
                .iter()
                .map(|(frames, count)| format!("{} {count}\n", frames.join(";")))
                .collect();
            let text = for_inferno(&text).text.into_owned();
            if let Some(pruned) = prune_narrow(&text, min_width) {
                proptest::prop_assert_eq!(inferno_svg(&text, min_width), inferno_svg(&pruned, min_width));
            }
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
