//! Folded lines as inferno must see them to draw what we read: names made
//! printable, and lines inferno would misread rewritten or left out.

use std::borrow::Cow;

use crate::model::folded::parse_line;
use crate::model::text::printable;

/// Folded text as inferno should see it.
pub(super) struct Prepared<'a> {
    /// Borrowed when no line needed a change (the usual case: no copy).
    pub(super) text: Cow<'a, str>,
    /// Lines left out because the total would have overflowed.
    pub(super) over_total: u64,
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
pub(super) fn for_inferno(text: &str) -> Prepared<'_> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_fine_are_not_copied() {
        // Names that are fine are not touched, and no copy is made.
        let text = "main;a b;c 3\nmain;x 1\r\n\n";
        assert!(matches!(for_inferno(text).text, Cow::Borrowed(_)));
        let prepared = for_inferno("a 1\nb\x07 2\nc 3");
        assert_eq!(prepared.text, "a 1\nb\\x07 2\nc 3");
    }

    #[test]
    fn stacks_past_u64_are_left_out_and_counted() {
        let max = u64::MAX;
        // Two stacks of u64::MAX samples: inferno's sum would overflow (a
        // panic in debug builds, two 100 % frames in release builds).
        let text = format!("a {max}\nb {max}\nc 1\n");
        let prepared = for_inferno(&text);
        assert_eq!(prepared.text, format!("a {max}\n"));
        assert_eq!(prepared.over_total, 2);
    }
}
