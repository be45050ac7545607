//! From perf.data to collapsed ("folded") stacks: `perf script` streamed
//! through inferno's perf collapser, never held whole in memory.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use anyhow::{Context, Result};
use inferno::collapse::perf::{Folder, Options as CollapseOptions};
use inferno::collapse::Collapse;

use crate::cli::RenderOptions;
use crate::interrupt;
use crate::perf::{self, Perf};

/// Folded stacks and what perf said while producing them.
#[derive(Debug, Default)]
pub struct Folded {
    /// `frame;frame;… count` lines, as inferno writes them.
    pub text: Vec<u8>,
    /// perf script's warnings (lost events, unreadable data), if any.
    pub warnings: Vec<String>,
}

/// Runs `perf script` on `data` and collapses its output as it streams.
pub fn collapse_recording(
    perf: &Perf,
    data: &Path,
    opts: &RenderOptions,
    verbose: bool,
) -> Result<Folded> {
    let args = perf::script_args(data, opts.no_inline);
    if verbose {
        eprintln!(
            "rust-flamegraph: running {} {}",
            perf.path.display(),
            crate::target::lossy(&args)
        );
    }
    let reader = duct::cmd(&perf.path, &args)
        .stderr_capture()
        .unchecked()
        .reader()
        .with_context(|| format!("cannot run {} script", perf.path.display()))?;
    let _watch = interrupt::watch_child(reader.pids()[0], false);
    let mut text = Vec::new();
    let input = BufReader::with_capacity(1 << 16, &reader);
    if opts.flamechart {
        collapse_in_time_order(input, &mut text, opts.per_thread)
    } else {
        collapse(input, &mut text, opts.per_thread)
    }
    .context("reading perf script's output")?;
    let output = reader
        .try_wait()
        .context("waiting for perf script")?
        .context("perf script closed its output but is still running")?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let warnings: Vec<String> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if !output.status.success() {
        anyhow::bail!(
            "perf script could not read the recording ({}): {}\n\
             The recording may be truncated (was perf killed?); record again.",
            output.status,
            warnings.join("\n")
        );
    }
    Ok(Folded { text, warnings })
}

/// Reads folded stacks from a file (a `stacks.folded` of an earlier run).
///
/// The file may come from anywhere: bytes that are not UTF-8 are replaced,
/// lines that are not `frames count` are skipped with a warning, and a file
/// with no stack at all is an error.
pub fn read_folded(path: &Path) -> Result<Folded> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read folded stacks from {}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut kept = String::with_capacity(text.len());
    let mut skipped = 0usize;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match parse_line(line) {
            Some((frames, count)) if count > 0 => {
                kept.push_str(frames);
                kept.push(' ');
                kept.push_str(&count.to_string());
                kept.push('\n');
            }
            _ => skipped += 1,
        }
    }
    if kept.is_empty() {
        anyhow::bail!(
            "{} holds no folded stacks (lines of `frame;frame;… count`); \
             give a stacks.folded written by rust-flamegraph or inferno",
            path.display()
        );
    }
    let mut warnings = Vec::new();
    if skipped > 0 {
        warnings.push(format!(
            "skipped {skipped} lines of {} that are not folded stacks",
            path.display()
        ));
    }
    if matches!(text, std::borrow::Cow::Owned(_)) {
        warnings.push(format!(
            "{} is not valid UTF-8: bad bytes were replaced",
            path.display()
        ));
    }
    Ok(Folded {
        text: kept.into_bytes(),
        warnings,
    })
}

/// Collapses `perf script` text into folded stacks (one thread: streaming).
/// With `per_thread`, root frames name the thread (`comm-pid/tid`).
///
/// Non-ASCII characters reach inferno escaped (`\u{e9}`): inferno 0.12's
/// Rust-symbol fix-up slices names at byte offsets and panics inside a
/// multi-byte character. Should it panic anyway, that is an error, not a crash.
pub fn collapse<R: BufRead, W: Write>(
    perf_script: R,
    folded: W,
    per_thread: bool,
) -> std::io::Result<()> {
    let input = BufReader::new(EscapeNonAscii::new(perf_script));
    guarded(|| folder(per_thread).collapse(input, folded))
}

/// Like [`collapse`], but for flame charts: one line per run of identical
/// consecutive samples, in the order perf recorded them (time order), instead
/// of one line per distinct stack.
pub fn collapse_in_time_order<R: BufRead, W: Write>(
    perf_script: R,
    mut folded: W,
    per_thread: bool,
) -> std::io::Result<()> {
    let mut folder = folder(per_thread);
    let mut input = BufReader::new(EscapeNonAscii::new(perf_script));
    let (mut event, mut line, mut one) = (Vec::new(), Vec::new(), Vec::new());
    let mut run: Option<(String, u64)> = None;
    loop {
        line.clear();
        let n = input.read_until(b'\n', &mut line)?;
        if n > 0 && !line.iter().all(u8::is_ascii_whitespace) {
            event.extend_from_slice(&line);
            continue;
        }
        if !event.is_empty() {
            // Events are separated by blank lines: collapse each one alone.
            event.push(b'\n');
            one.clear();
            guarded(|| folder.collapse(&event[..], &mut one))?;
            event.clear();
            for (stack, count) in std::str::from_utf8(&one)
                .unwrap_or("")
                .lines()
                .filter_map(parse_line)
            {
                match &mut run {
                    Some((current, total)) if current == stack => *total += count,
                    _ => {
                        if let Some((current, total)) = run.take() {
                            writeln!(folded, "{current} {total}")?;
                        }
                        run = Some((stack.to_string(), count));
                    }
                }
            }
        }
        if n == 0 {
            break;
        }
    }
    if let Some((current, total)) = run {
        writeln!(folded, "{current} {total}")?;
    }
    Ok(())
}

fn folder(per_thread: bool) -> Folder {
    let mut options = CollapseOptions::default();
    options.nthreads = 1;
    options.include_tid = per_thread;
    Folder::from(options)
}

/// Runs inferno, turning a panic inside it into an error.
fn guarded(f: impl FnOnce() -> std::io::Result<()>) -> std::io::Result<()> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "inferno could not parse perf script's output",
        ))
    })
}

/// A reader that passes text through line by line, with every non-ASCII
/// character (and invalid UTF-8) replaced by a `\u{…}` escape.
struct EscapeNonAscii<R> {
    inner: R,
    line: Vec<u8>,
    pending: Vec<u8>,
    at: usize,
}

impl<R: BufRead> EscapeNonAscii<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            line: Vec::new(),
            pending: Vec::new(),
            at: 0,
        }
    }
}

impl<R: BufRead> std::io::Read for EscapeNonAscii<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.pending.len() {
            self.line.clear();
            if self.inner.read_until(b'\n', &mut self.line)? == 0 {
                return Ok(0);
            }
            self.pending.clear();
            self.at = 0;
            if self.line.is_ascii() {
                self.pending.extend_from_slice(&self.line);
            } else {
                for c in String::from_utf8_lossy(&self.line).chars() {
                    if c.is_ascii() {
                        self.pending.push(c as u8);
                    } else {
                        self.pending
                            .extend_from_slice(c.escape_unicode().to_string().as_bytes());
                    }
                }
            }
        }
        let n = buf.len().min(self.pending.len() - self.at);
        buf[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// One line of folded stacks: its frames (root first) and sample count.
/// Returns `None` for lines that are not `frames count`.
pub fn parse_line(line: &str) -> Option<(&str, u64)> {
    let (frames, count) = line.trim_end().rsplit_once(' ')?;
    let count = count.parse().ok()?;
    (!frames.is_empty()).then_some((frames, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../tests/fixtures/demo.perf-script");

    #[test]
    fn collapses_the_recorded_fixture_into_demo_stacks() {
        let mut out = Vec::new();
        collapse(FIXTURE.as_bytes(), &mut out, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        let total: u64 = text.lines().filter_map(parse_line).map(|(_, c)| c).sum();
        let samples = FIXTURE.lines().filter(|l| l.contains("cpu-clock")).count() as u64;
        assert_eq!(total, samples, "every sample lands in one stack");
        assert!(
            text.lines()
                .any(|l| l.contains("demo::main;demo::run;demo::run_iteration;")),
            "{text}"
        );
    }

    #[test]
    fn time_order_keeps_the_recorded_sequence() {
        let mut merged = Vec::new();
        collapse(FIXTURE.as_bytes(), &mut merged, false).unwrap();
        let mut timed = Vec::new();
        collapse_in_time_order(FIXTURE.as_bytes(), &mut timed, false).unwrap();
        let (merged, timed) = (
            String::from_utf8(merged).unwrap(),
            String::from_utf8(timed).unwrap(),
        );
        let total = |t: &str| {
            t.lines()
                .filter_map(parse_line)
                .map(|(_, c)| c)
                .sum::<u64>()
        };
        assert_eq!(total(&timed), total(&merged));
        assert!(
            timed.lines().count() > merged.lines().count(),
            "stacks recur over time"
        );
        // The first recorded sample is `core::str::converts::from_utf8` under `demo::main`.
        let first = timed.lines().next().unwrap();
        assert!(
            first.ends_with("demo::main;core::str::converts::from_utf8 1"),
            "{first}"
        );
        let stacks: Vec<&str> = timed
            .lines()
            .filter_map(parse_line)
            .map(|(s, _)| s)
            .collect();
        assert!(
            stacks.windows(2).all(|w| w[0] != w[1]),
            "consecutive repeats are merged"
        );
    }

    #[test]
    fn per_thread_roots_name_pid_and_tid() {
        let mut out = Vec::new();
        collapse(FIXTURE.as_bytes(), &mut out, true).unwrap();
        let text = String::from_utf8(out).unwrap();
        let first = FIXTURE.lines().next().unwrap();
        let pid_tid = first.split_whitespace().nth(1).unwrap();
        assert!(
            text.lines()
                .all(|l| l.starts_with(&format!("demo-{pid_tid};"))),
            "{text}"
        );
    }

    #[test]
    fn folded_files_with_garbage_keep_their_stacks_and_say_what_was_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"a;b 3\n\xff\xfe garbage\n\0\0\0\na;\xffc 2\nx 0\n").unwrap();
        let folded = read_folded(&path).unwrap();
        assert_eq!(
            String::from_utf8(folded.text).unwrap(),
            "a;b 3\na;\u{fffd}c 2\n"
        );
        assert!(
            folded
                .warnings
                .iter()
                .any(|w| w.contains("skipped 3 lines")),
            "{:?}",
            folded.warnings
        );
        assert!(folded.warnings.iter().any(|w| w.contains("UTF-8")));
        std::fs::write(&path, b"\x7fELF\x02\x01").unwrap();
        let err = read_folded(&path).unwrap_err().to_string();
        assert!(err.contains("holds no folded stacks"), "{err}");
        assert!(read_folded(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn non_ascii_names_are_escaped_not_fatal() {
        // A name whose 17th byte from the end falls inside 'ி' made inferno panic.
        let script =
            "demo 1/1 1.0: cpu-clock:\n\t1 crate::naïve_sumி}j𞹋`𑄖¡\"{] (/x)\n\t2 main (/x)\n\n";
        let mut out = Vec::new();
        collapse(script.as_bytes(), &mut out, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("na\\u{ef}ve_sum"), "{text}");
        assert!(text.is_ascii());
    }

    #[test]
    fn parse_line_rejects_garbage() {
        assert_eq!(parse_line("a;b 12"), Some(("a;b", 12)));
        assert_eq!(parse_line("a;b c d 3\n"), Some(("a;b c d", 3)));
        for bad in ["", "12", " 12", "a;b", "a;b x", "a -1"] {
            assert_eq!(parse_line(bad), None, "{bad:?}");
        }
    }
}
