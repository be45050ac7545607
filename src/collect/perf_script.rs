//! The fallback post-processing (`--perf-script`): `perf script` streamed
//! through inferno's perf collapser, never held whole in memory.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use anyhow::{Context, Result};
use inferno::collapse::perf::{Folder, Options as CollapseOptions};
use inferno::collapse::Collapse;

use crate::collect::stacks::StackOptions;
use crate::model::folded::{parse_line, Folded};
use crate::record::perf::{self, Perf};
use crate::sys::interrupt;

/// Runs `perf script` on `data` and collapses its output as it streams.
pub fn collapse_recording(
    perf: &Perf,
    data: &Path,
    symfs: Option<&Path>,
    opts: StackOptions,
    verbose: bool,
) -> Result<Folded> {
    let mut args = perf::script_args(data, !opts.inline);
    if let Some(root) = symfs {
        args.extend(["--symfs".into(), root.into()]);
        args.extend(["--kallsyms".into(), root.join("proc/kallsyms").into()]);
    }
    if verbose {
        crate::say!(
            "rust-flamegraph: running {} {}",
            perf.path.display(),
            crate::model::text::join_args(&args)
        );
    }
    let reader = duct::cmd(&perf.path, &args)
        .stderr_capture()
        .unchecked()
        .reader()
        .with_context(|| format!("cannot run {} script", perf.path.display()))?;
    let _watch = interrupt::watch_child(reader.pids()[0]);
    let mut text = Vec::new();
    let input = BufReader::with_capacity(1 << 16, &reader);
    if opts.time_order {
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
    Ok(Folded {
        text,
        warnings,
        kernel_names_hidden: false,
        records_lost: 0,
        timeline: None,
        addresses: None,
    })
}

/// Collapses `perf script` text into folded stacks (one thread: streaming).
/// With `per_thread`, root frames name the thread (`comm-pid/tid`).
///
/// Non-ASCII characters reach inferno escaped (`\u{e9}`): inferno 0.12.8's
/// Rust-symbol fix-up slices names at byte offsets and panics inside a
/// multi-byte character (`fix_partially_demangled_rust_symbol`; remove this
/// escaping once a fixed inferno is in Cargo.lock). Should it panic anyway,
/// that is an error, not a crash.
pub fn collapse<R: BufRead, W: Write>(
    perf_script: R,
    folded: W,
    per_thread: bool,
) -> std::io::Result<()> {
    let input = BufReader::new(EscapeNonAscii::new(perf_script));
    catching_panics(|| folder(per_thread).collapse(input, folded))
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
    let (mut event, mut line, mut collapsed) = (Vec::new(), Vec::new(), Vec::new());
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
            collapsed.clear();
            catching_panics(|| folder.collapse(&event[..], &mut collapsed))?;
            event.clear();
            for (stack, count) in std::str::from_utf8(&collapsed)
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
fn catching_panics(f: impl FnOnce() -> std::io::Result<()>) -> std::io::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../../tests/fixtures/demo.perf-script");

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
}
