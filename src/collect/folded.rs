//! Folded stacks (`frame;frame;… count` lines): the format between stages,
//! and what `--from-folded` reads back.
//!
//! Reading streams the file line by line: identical stacks are merged as they
//! come, so memory grows with the number of distinct stacks, never with the
//! size of the file. Lines are capped at [`MAX_LINE`] (longer ones are skipped
//! without being buffered), input that is mostly not folded stacks is refused
//! after [`MAX_GARBAGE`] of it, and a pipe or device (which may never end, like
//! `/dev/zero`) is read up to [`MAX_STREAM`].

use std::collections::hash_map::{DefaultHasher, Entry};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::{Context, Result};

use crate::model::folded::{parse_line, Folded};
use crate::sys::safe_fs::Accept;

/// Lines longer than this (1 MiB) are skipped with a warning, and never held
/// whole in memory. perf's stacks are at most a few hundred frames deep, so a
/// real stack is far shorter.
pub const MAX_LINE: usize = 1 << 20;

/// Reading stops with an error once this much (64 MiB) of the input is not
/// folded stacks and that is more than what was: `/dev/zero`, `/dev/urandom`,
/// a core dump given by mistake.
pub const MAX_GARBAGE: u64 = 64 << 20;

/// A file that is not a regular file (a pipe, a device, `<(command)`) is read
/// up to this much (1 GiB), then refused: it may never end.
pub const MAX_STREAM: u64 = 1 << 30;

/// At most this many distinct stacks (2 M) are kept: memory grows with them
/// (about 300 bytes each by the time the flamegraph and report.html are
/// drawn), not with the input. A recording has a few thousand to a few
/// hundred thousand.
pub const MAX_STACKS: usize = 2_000_000;

/// At most this much text (256 MiB) of distinct stacks is kept, whatever
/// their number.
pub const MAX_DISTINCT: usize = 256 << 20;

/// What a read may consume; [`read_folded`] uses the constants above.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest line kept, in bytes (without its line break).
    pub max_line: usize,
    /// Bytes of lines that are not folded stacks after which, when they are
    /// also the majority of what was read, the input is refused.
    pub max_garbage: u64,
    /// Total bytes read before the input is refused, if capped.
    pub max_read: Option<u64>,
    /// Distinct stacks kept before the input is refused.
    pub max_stacks: usize,
    /// Bytes of distinct stacks kept before the input is refused.
    pub max_distinct: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_line: MAX_LINE,
            max_garbage: MAX_GARBAGE,
            max_read: None,
            max_stacks: MAX_STACKS,
            max_distinct: MAX_DISTINCT,
        }
    }
}

/// How identical stacks are merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// One line per distinct stack, in the order each first appears (flame
    /// graphs: inferno sorts and merges them anyway).
    Merged,
    /// Only runs of identical consecutive lines are merged, so the order of the
    /// file is kept (flame charts, where the order is time).
    AsRecorded,
}

/// Reads folded stacks from a file (a `stacks.folded` of an earlier run),
/// merging identical stacks.
///
/// The file may come from anywhere: bytes that are not UTF-8 are replaced;
/// lines that are not `frames count`, whose count is not a number of samples,
/// or that would take the total past `u64::MAX` samples are skipped with a
/// warning naming them; lines longer than [`MAX_LINE`] are skipped unread. A
/// file with no stack at all, or mostly garbage, is an error.
///
/// The file is opened with the rights of the user who ran sudo, never
/// through another user's symlink ([`crate::sys::safe_fs::open_input`]); a pipe
/// or a device is read only if it is root's or the user's (`/dev/stdin`,
/// `<(command)`), never one planted in someone else's folder.
pub fn read_folded(path: &Path) -> Result<Folded> {
    read_folded_with(path, Order::Merged, Accept::Stream)
}

/// Like [`read_folded`], for a file that must be a regular file: an earlier
/// run's `stacks.folded` (`--diff-against`).
pub fn read_folded_file(path: &Path) -> Result<Folded> {
    read_folded_with(path, Order::Merged, Accept::Regular)
}

/// Like [`read_folded`], but keeps the order of the file (for `--flamechart`,
/// whose stacks are in time order): only consecutive identical stacks are
/// merged, so memory grows with the number of lines that differ from the one
/// before.
pub fn read_folded_in_order(path: &Path) -> Result<Folded> {
    read_folded_with(path, Order::AsRecorded, Accept::Stream)
}

fn read_folded_with(path: &Path, order: Order, accept: Accept) -> Result<Folded> {
    let context = || format!("cannot read folded stacks from {}", path.display());
    let file = crate::sys::safe_fs::open_input(path, accept).with_context(context)?;
    let regular = file.metadata().is_ok_and(|m| m.is_file());
    let limits = Limits {
        max_read: (!regular).then_some(MAX_STREAM),
        ..Limits::default()
    };
    read_folded_from(
        BufReader::with_capacity(1 << 17, file),
        &path.display().to_string(),
        order,
        limits,
    )
}

/// How many problem lines a warning names.
const NAMED_LINES: usize = 3;

/// Reads folded stacks from `input`, called `name` in messages; see
/// [`read_folded`].
pub fn read_folded_from<R: BufRead>(
    mut input: R,
    name: &str,
    order: Order,
    limits: Limits,
) -> Result<Folded> {
    let mut stacks = Stacks::new(order);
    stacks.max = (limits.max_stacks, limits.max_distinct);
    let mut skipped = Skipped::default();
    let mut line = Vec::new();
    let (mut lineno, mut read, mut garbage, mut total) = (0u64, 0u64, 0u64, 0u64);
    let mut lossy = false;
    let failed = || format!("cannot read folded stacks from {name}");
    // Refuses input that never ends or is mostly not folded stacks.
    let check = |read: u64, garbage: u64, lineno: u64| -> Result<()> {
        if limits.max_read.is_some_and(|max| read > max) {
            anyhow::bail!(
                "stopped reading {name} after {} at line {lineno}: it is not a regular file \
                 (a pipe or a device) and has not ended; write the stacks to a file and give that",
                size(read)
            );
        }
        if garbage > limits.max_garbage && garbage > read - garbage {
            anyhow::bail!(
                "{name} does not hold folded stacks: stopped after {} of it that are not \
                 `frame;frame;… count` lines (at line {lineno}); give a stacks.folded written \
                 by rust-flamegraph or inferno",
                size(garbage)
            );
        }
        Ok(())
    };
    loop {
        line.clear();
        let n = (&mut input)
            .take(limits.max_line as u64 + 1)
            .read_until(b'\n', &mut line)
            .with_context(failed)?;
        if n == 0 {
            break;
        }
        lineno += 1;
        read += n as u64;
        let ended = line.last() == Some(&b'\n');
        if !ended && n > limits.max_line {
            // Too long: skip to the end of the line, a chunk at a time.
            let mut len = n as u64;
            loop {
                check(read, garbage + len, lineno)?;
                line.clear();
                let m = (&mut input)
                    .take(1 << 16)
                    .read_until(b'\n', &mut line)
                    .with_context(failed)?;
                read += m as u64;
                len += m as u64;
                if m == 0 || line.last() == Some(&b'\n') {
                    break;
                }
            }
            garbage += len;
            skipped.too_long.add(lineno, String::new());
            check(read, garbage, lineno)?;
            continue;
        }
        if ended {
            line.pop();
        }
        let text = match std::str::from_utf8(&line) {
            Ok(text) => std::borrow::Cow::Borrowed(text), // the usual case, and quicker
            Err(_) => String::from_utf8_lossy(&line),
        };
        lossy |= matches!(text, std::borrow::Cow::Owned(_));
        if text.trim().is_empty() {
            continue;
        }
        match classify(&text) {
            Line::Stack(_, 0) => {} // no samples: nothing to draw
            Line::Stack(frames, count) => match total.checked_add(count) {
                Some(sum) => {
                    total = sum;
                    if stacks.add(frames, count).is_err() {
                        anyhow::bail!(
                            "stopped reading {name} at line {lineno}: it holds more distinct \
                             stacks than the {} (or {}) kept, so that memory stays bounded; a \
                             recording has far fewer. Merge or trim them first (`sort | uniq`, \
                             --skip-after)",
                            limits.max_stacks,
                            size(limits.max_distinct as u64)
                        );
                    }
                }
                None => {
                    garbage += n as u64;
                    skipped.overflow.add(lineno, count.to_string());
                }
            },
            Line::BadCount(count) => {
                garbage += n as u64;
                skipped.bad_count.add(lineno, excerpt(count));
            }
            Line::Garbage => {
                garbage += n as u64;
                skipped.garbage.add(lineno, String::new());
            }
        }
        check(read, garbage, lineno)?;
    }
    if stacks.is_empty() {
        anyhow::bail!(
            "{name} holds no folded stacks (lines of `frame;frame;… count`); \
             give a stacks.folded written by rust-flamegraph or inferno"
        );
    }
    let mut warnings = skipped.warnings(name, limits.max_line);
    if lossy {
        warnings.push(format!(
            "{name} is not valid UTF-8: bad bytes were replaced"
        ));
    }
    Ok(Folded {
        text: stacks.into_text(),
        warnings,
        kernel_names_hidden: false,
        records_lost: 0,
        timeline: None,
        addresses: None,
    })
}

/// What a line of a folded file is.
enum Line<'a> {
    Stack(&'a str, u64),
    /// Ends in what is meant as a count but is not a `u64`: `-1`, `1.5`,
    /// `18446744073709551616`.
    BadCount(&'a str),
    Garbage,
}

fn classify(line: &str) -> Line<'_> {
    let Some((frames, count)) = line.trim_end().rsplit_once(' ') else {
        return Line::Garbage;
    };
    if frames.trim().is_empty() {
        return Line::Garbage;
    }
    match count.parse::<u64>() {
        // `+5` parses, but inferno would ignore the line: it is written back as `5`.
        Ok(count) => Line::Stack(frames, count),
        Err(_)
            if count.bytes().any(|b| b.is_ascii_digit())
                && count
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b"+-.,_eE".contains(&b)) =>
        {
            Line::BadCount(count)
        }
        Err(_) => Line::Garbage,
    }
}

/// At most 40 characters of `s`, for a message.
fn excerpt(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// `1.5 GiB`, `64 MiB`, `512 bytes`.
fn size(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
    } else if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

/// Lines of one kind that were skipped: how many, and the first few.
#[derive(Default)]
struct Kind {
    count: u64,
    first: Vec<(u64, String)>,
}

impl Kind {
    fn add(&mut self, line: u64, what: String) {
        self.count += 1;
        if self.first.len() < NAMED_LINES {
            self.first.push((line, what));
        }
    }

    /// `skipped N lines of F {why}: line 3 (`x`), line 7 (`y`)…`
    fn warning(&self, name: &str, why: &str) -> Option<String> {
        if self.count == 0 {
            return None;
        }
        let mut w = format!(
            "skipped {} line{} of {name} {why}: ",
            self.count,
            if self.count == 1 { "" } else { "s" }
        );
        for (i, (line, what)) in self.first.iter().enumerate() {
            if i > 0 {
                w.push_str(", ");
            }
            let _ = write!(w, "line {line}");
            if !what.is_empty() {
                let _ = write!(w, " (`{what}`)");
            }
        }
        if self.count > self.first.len() as u64 {
            w.push_str(", …");
        }
        Some(w)
    }
}

#[derive(Default)]
struct Skipped {
    garbage: Kind,
    bad_count: Kind,
    overflow: Kind,
    too_long: Kind,
}

impl Skipped {
    fn warnings(&self, name: &str, max_line: usize) -> Vec<String> {
        [
            self.garbage.warning(name, "that are not folded stacks"),
            self.bad_count.warning(
                name,
                &format!(
                    "whose count is not a whole number of samples (0 to {})",
                    u64::MAX
                ),
            ),
            self.overflow.warning(
                name,
                &format!("whose count would take the total past {} samples", u64::MAX),
            ),
            self.too_long.warning(
                name,
                &format!("longer than {} (not read)", size(max_line as u64)),
            ),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// Distinct stacks and their counts. Their frames are kept back to back in
/// one buffer, which becomes the output text in place: memory is about the
/// size of the result, plus a few words per stack.
struct Stacks {
    order: Order,
    /// The frames of each stack, one after the other, without separators.
    arena: Vec<u8>,
    /// (length of the frames in `arena`, count), in `arena` order.
    entries: Vec<(u32, u64)>,
    /// Start of each entry in `arena` (kept only to compare with a new stack).
    starts: Vec<usize>,
    /// Hash of the frames → index of the entry ([`Order::Merged`]).
    index: HashMap<u64, u32>,
    /// The rare stacks whose hash an earlier, different stack already has.
    collisions: HashMap<Box<str>, u32>,
    /// At most this many entries and bytes in `arena`.
    max: (usize, usize),
}

/// [`Stacks::add`] would go past [`Stacks::max`].
#[derive(Debug)]
struct Full;

impl Stacks {
    fn new(order: Order) -> Self {
        Self {
            order,
            arena: Vec::new(),
            entries: Vec::new(),
            starts: Vec::new(),
            index: HashMap::new(),
            collisions: HashMap::new(),
            max: (usize::MAX, usize::MAX),
        }
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn frames(&self, i: usize) -> &[u8] {
        let start = self.starts[i];
        &self.arena[start..start + self.entries[i].0 as usize]
    }

    /// Adds samples to a stack (the caller keeps the total within `u64`);
    /// refuses a new stack past [`Stacks::max`].
    fn add(&mut self, frames: &str, count: u64) -> Result<(), Full> {
        match self.order {
            Order::AsRecorded => {
                let last = self.entries.len().wrapping_sub(1);
                if !self.entries.is_empty() && self.frames(last) == frames.as_bytes() {
                    self.entries[last].1 += count;
                } else {
                    self.push(frames, count)?;
                }
            }
            Order::Merged => {
                let mut hasher = DefaultHasher::new();
                frames.hash(&mut hasher);
                let next = self.entries.len() as u32;
                let full = self.full(frames);
                match self.index.entry(hasher.finish()) {
                    Entry::Vacant(_) if full => return Err(Full),
                    Entry::Vacant(slot) => {
                        slot.insert(next);
                        self.push(frames, count)?;
                    }
                    Entry::Occupied(slot) => {
                        let i = *slot.get() as usize;
                        if self.frames(i) == frames.as_bytes() {
                            self.entries[i].1 += count;
                        } else if let Some(&j) = self.collisions.get(frames) {
                            self.entries[j as usize].1 += count;
                        } else {
                            self.push(frames, count)?;
                            self.collisions.insert(frames.into(), next);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether a new stack of `frames` would go past [`Stacks::max`].
    fn full(&self, frames: &str) -> bool {
        self.entries.len() >= self.max.0 || self.arena.len() + frames.len() > self.max.1
    }

    fn push(&mut self, frames: &str, count: u64) -> Result<(), Full> {
        if self.full(frames) {
            return Err(Full);
        }
        self.starts.push(self.arena.len());
        self.arena.extend_from_slice(frames.as_bytes());
        // Lines are at most MAX_LINE long, so this fits.
        self.entries.push((frames.len() as u32, count));
        Ok(())
    }

    /// `frames count\n` for each stack, built in the buffer that holds the
    /// frames: each line moves right, last first, into its final place.
    fn into_text(self) -> Vec<u8> {
        let Self {
            mut arena, entries, ..
        } = self;
        let mut digits = itoa_len(&entries);
        let mut end = arena.len() + digits;
        arena.reserve_exact(digits);
        arena.resize(end, 0);
        let mut from = end - digits; // end of the frames not yet moved
        for &(len, count) in entries.iter().rev() {
            let len = len as usize;
            let count = count.to_string();
            end -= 1;
            arena[end] = b'\n';
            end -= count.len();
            arena[end..end + count.len()].copy_from_slice(count.as_bytes());
            end -= 1;
            arena[end] = b' ';
            end -= len;
            from -= len;
            arena.copy_within(from..from + len, end);
            digits -= count.len() + 2;
        }
        debug_assert!(end == 0 && from == 0 && digits == 0);
        arena
    }
}

/// Bytes that `count\n` and its space add to all lines.
fn itoa_len(entries: &[(u32, u64)]) -> usize {
    entries
        .iter()
        .map(|&(_, c)| c.checked_ilog10().unwrap_or(0) as usize + 3)
        .sum()
}

/// `--skip-after`: a stack that passes through one of `functions` starts at
/// the first (outermost) such frame, its callers cut off; other stacks are
/// kept whole. Lines that become equal are not merged (the renderer and the
/// summary add them up).
pub fn skip_after(text: &[u8], functions: &[String]) -> Vec<u8> {
    if functions.is_empty() {
        return text.to_vec();
    }
    let text = String::from_utf8_lossy(text);
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let cut = parse_line(line).and_then(|(frames, _)| {
            let mut at = frames.as_ptr() as usize - line.as_ptr() as usize;
            for frame in frames.split(';') {
                if functions.iter().any(|f| f == frame) {
                    return Some(at);
                }
                at += frame.len() + 1;
            }
            None
        });
        out.push_str(&line[cut.unwrap_or(0)..]);
        out.push('\n');
    }
    out.into_bytes()
}

/// `--short-names`: every frame without its generic arguments
/// ([`crate::symbolize::short_name`]); lines that become equal are not merged
/// (the renderer and the summary add them up).
pub fn short_names(text: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(text);
    let mut out = String::with_capacity(text.len() / 4);
    for line in text.lines() {
        match parse_line(line) {
            Some((frames, count)) => {
                out.push_str(&short_stack(frames));
                out.push_str(&format!(" {count}\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out.into_bytes()
}

/// `frame;frame;…` with each frame's [`crate::symbolize::short_name`].
pub fn short_stack(frames: &str) -> String {
    let mut out = String::with_capacity(frames.len() / 4);
    for (i, frame) in frames.split(';').enumerate() {
        if i > 0 {
            out.push(';');
        }
        out.push_str(&crate::symbolize::short_name(frame));
    }
    out
}

/// `--post-process COMMAND`: the folded stacks rewritten by a shell command
/// (`sh -c COMMAND`), which reads them on stdin and writes the new ones on
/// stdout, as `cargo flamegraph` runs it.
pub fn post_process(text: &[u8], command: &str) -> anyhow::Result<Vec<u8>> {
    let output = duct::cmd!("sh", "-c", command)
        .stdin_bytes(text)
        .stdout_capture()
        .unchecked()
        .run()
        .map_err(|e| {
            crate::exit::Exit::Other.error(format!(
                "--post-process: cannot run `{command}` with sh: {e}; nothing was written"
            ))
        })?;
    if !output.status.success() {
        return Err(crate::exit::Exit::Other.error(format!(
            "--post-process: `{command}` failed ({}): see its messages above; nothing was written",
            output.status
        )));
    }
    Ok(output.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_after_starts_stacks_at_the_first_named_frame() {
        let text = b"t;main;run;work;leaf 3\nt;main;other 2\nt;main;run;run;x 1\n";
        let cut = skip_after(text, &["run".to_string(), "leaf".to_string()]);
        assert_eq!(cut, b"run;work;leaf 3\nt;main;other 2\nrun;run;x 1\n");
        assert_eq!(skip_after(text, &[]), text);
    }

    #[test]
    fn post_process_rewrites_through_a_shell_command() {
        let out = post_process(b"a;b 1\n", "sed -e s/b/c/").unwrap();
        assert_eq!(out, b"a;c 1\n");
        let err = post_process(b"a;b 1\n", "exit 3").unwrap_err().to_string();
        assert!(err.contains("--post-process: `exit 3` failed"), "{err}");
    }

    fn read(bytes: &[u8], order: Order, limits: Limits) -> Result<Folded> {
        read_folded_from(bytes, "f", order, limits)
    }

    fn text(folded: &Folded) -> &str {
        std::str::from_utf8(&folded.text).unwrap()
    }

    #[test]
    fn folded_files_with_garbage_keep_their_stacks_and_say_what_was_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"a;b 3\n\xff\xfe garbage\n\0\0\0\na;\xffc 2\nx 0\n").unwrap();
        let folded = read_folded(&path).unwrap();
        assert_eq!(text(&folded), "a;b 3\na;\u{fffd}c 2\n");
        assert!(
            folded
                .warnings
                .iter()
                .any(|w| w.contains("skipped 2 lines") && w.contains("line 2, line 3")),
            "{:?}",
            folded.warnings
        );
        assert!(folded.warnings.iter().any(|w| w.contains("UTF-8")));
        std::fs::write(&path, b"\x7fELF\x02\x01").unwrap();
        let err = format!("{:#}", read_folded(&path).unwrap_err());
        assert!(err.contains("holds no folded stacks"), "{err}");
        assert!(read_folded(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn distinct_stacks_are_bounded_however_long_the_input() {
        let limits = Limits {
            max_stacks: 1000,
            max_distinct: 1 << 20,
            ..Limits::default()
        };
        // Repeats of a few stacks: any length.
        let repeated: Vec<u8> = (0..100_000)
            .flat_map(|i| format!("main;f{} 1\n", i % 10).into_bytes())
            .collect();
        assert_eq!(
            read(&repeated, Order::Merged, limits).unwrap().text.len(),
            10 * "main;f0 10000\n".len()
        );
        // Distinct stacks past the count, or past the bytes: refused.
        let distinct: Vec<u8> = (0..1001)
            .flat_map(|i| format!("main;f{i} 1\n").into_bytes())
            .collect();
        let err = read(&distinct, Order::Merged, limits)
            .unwrap_err()
            .to_string();
        assert!(err.contains("at line 1001"), "{err}");
        assert!(err.contains("more distinct stacks than the 1000"), "{err}");
        let long = format!("{} 1\n{} 1\n", "a".repeat(600_000), "b".repeat(600_000));
        let err = read(long.as_bytes(), Order::AsRecorded, limits).unwrap_err();
        assert!(err.to_string().contains("at line 2"), "{err}");
    }

    #[test]
    fn parse_line_rejects_garbage() {
        assert_eq!(parse_line("a;b 12"), Some(("a;b", 12)));
        assert_eq!(parse_line("a;b c d 3\n"), Some(("a;b c d", 3)));
        for bad in ["", "12", " 12", "a;b", "a;b x", "a -1"] {
            assert_eq!(parse_line(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn identical_stacks_are_merged_in_first_seen_order() {
        let input = b"b;c 1\na 2\r\nb;c 3\n\na 4\nb 5\n+ 1\n";
        let folded = read(input, Order::Merged, Limits::default()).unwrap();
        assert_eq!(text(&folded), "b;c 4\na 6\nb 5\n+ 1\n");
        assert!(folded.warnings.is_empty(), "{:?}", folded.warnings);
        // A flame chart keeps time order: only consecutive repeats merge.
        let input = b"a 1\na 2\nb 1\na 1\n";
        let folded = read(input, Order::AsRecorded, Limits::default()).unwrap();
        assert_eq!(text(&folded), "a 3\nb 1\na 1\n");
    }

    #[test]
    fn stacks_with_one_hash_stay_apart() {
        let mut stacks = Stacks::new(Order::Merged);
        stacks.add("a", 1).unwrap();
        // Forge a collision: "b" is filed under the hash of "a".
        let mut hasher = DefaultHasher::new();
        "b".hash(&mut hasher);
        let b = hasher.finish();
        let a = *stacks.index.values().next().unwrap();
        stacks.index.clear();
        stacks.index.insert(b, a);
        stacks.add("b", 2).unwrap();
        stacks.add("b", 3).unwrap();
        stacks.add("a", 4).unwrap(); // "a" is now unknown to the index: a new entry
        assert_eq!(
            String::from_utf8(stacks.into_text()).unwrap(),
            "a 1\nb 5\na 4\n"
        );
    }

    #[test]
    fn unparsable_counts_are_named_not_silently_skipped() {
        let input = b"a 1\nb 18446744073709551616\nc -1\nd 1.5\ne x\n";
        let folded = read(input, Order::Merged, Limits::default()).unwrap();
        assert_eq!(text(&folded), "a 1\n");
        let w = folded.warnings.join("\n");
        assert!(
            w.contains("skipped 3 lines of f whose count is not a whole number")
                && w.contains("line 2 (`18446744073709551616`), line 3 (`-1`), line 4 (`1.5`)"),
            "{w}"
        );
        assert!(
            w.contains("skipped 1 line of f that are not folded stacks: line 5"),
            "{w}"
        );
        assert!(
            !w.contains("lost"),
            "the summary shows warnings with `lost` apart"
        );
    }

    #[test]
    fn counts_whose_total_would_overflow_are_skipped_with_their_line() {
        let max = u64::MAX;
        let input = format!("a {max}\nb {max}\nc 1\na 0\n");
        let folded = read(input.as_bytes(), Order::Merged, Limits::default()).unwrap();
        assert_eq!(text(&folded), format!("a {max}\n"));
        let w = folded.warnings.join("\n");
        assert!(
            w.contains(&format!(
                "skipped 2 lines of f whose count would take the total past {max} samples: \
                 line 2 (`{max}`), line 3 (`1`)"
            )),
            "{w}"
        );
        // Merging never overflows either: the total bounds every stack.
        let input = format!("a {}\na {}\na 1\n", max / 2, max / 2);
        let folded = read(input.as_bytes(), Order::Merged, Limits::default()).unwrap();
        assert_eq!(text(&folded), format!("a {max}\n"));
        assert!(folded.warnings.is_empty());
    }

    #[test]
    fn long_lines_are_skipped_without_being_buffered() {
        let limits = Limits {
            max_line: 16,
            ..Limits::default()
        };
        let mut input = b"a 1\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 100_000));
        input.extend_from_slice(b" 5\nb;c 2\nexactly;sixte 16\n");
        input.extend(std::iter::repeat_n(b'y', 17)); // at the end, without a line break
        let folded = read(&input, Order::Merged, limits).unwrap();
        assert_eq!(text(&folded), "a 1\nb;c 2\nexactly;sixte 16\n");
        let w = folded.warnings.join("\n");
        assert!(
            w.contains("skipped 2 lines of f longer than 16 bytes (not read): line 2, line 5"),
            "{w}"
        );
    }

    #[test]
    fn endless_or_garbage_input_is_refused() {
        // /dev/zero: one line that never ends, refused after MAX_GARBAGE.
        let err = read_folded(Path::new("/dev/zero")).unwrap_err();
        let err = format!("{err:#}");
        assert!(
            err.contains("/dev/zero does not hold folded stacks: stopped after 64 MiB"),
            "{err}"
        );
        // Garbage lines, in the same way (a small limit to keep the test quick).
        let limits = Limits {
            max_garbage: 1000,
            ..Limits::default()
        };
        let endless = b"good 1\n".chain(std::io::repeat(b'z'));
        let err = read_folded_from(BufReader::new(endless), "f", Order::Merged, limits);
        let err = err.unwrap_err().to_string();
        assert!(
            err.contains("f does not hold folded stacks: stopped after 1 MiB"),
            "{err}"
        );
        // Garbage among many more stacks is only skipped.
        let mut input = "a 1\n".repeat(2000).into_bytes();
        input.extend("junk\n".repeat(300).as_bytes());
        let folded = read(&input, Order::Merged, limits).unwrap();
        assert_eq!(text(&folded), "a 2000\n");
        // Stacks that never end (`yes 'a 1' |`): a pipe is read up to its cap.
        let limits = Limits {
            max_read: Some(1 << 20),
            ..Limits::default()
        };
        let err = read_folded_from(BufReader::new(YesA1), "<pipe>", Order::Merged, limits);
        let err = err.unwrap_err().to_string();
        assert!(
            err.contains("stopped reading <pipe> after 1 MiB at line 262145")
                && err.contains("not a regular file"),
            "{err}"
        );
    }

    /// `yes 'a 1'`.
    struct YesA1;

    impl Read for YesA1 {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            for (i, b) in buf.iter_mut().enumerate() {
                *b = b"a 1\n"[i % 4];
            }
            Ok(buf.len() / 4 * 4)
        }
    }
}
