//! Merging stacks under frames too narrow to draw, before inferno sees them.

use std::fmt::Write as _;

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
pub(super) fn prune_narrow(text: &str, min_width: f64) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::svg::prepare::for_inferno;

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
}
