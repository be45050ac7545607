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
    collapse(
        BufReader::with_capacity(1 << 16, &reader),
        &mut text,
        opts.per_thread,
    )
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

/// Collapses `perf script` text into folded stacks (one thread: streaming).
/// With `per_thread`, root frames name the thread (`comm-pid/tid`).
pub fn collapse<R: BufRead, W: Write>(
    perf_script: R,
    folded: W,
    per_thread: bool,
) -> std::io::Result<()> {
    let mut options = CollapseOptions::default();
    options.nthreads = 1;
    options.include_tid = per_thread;
    Folder::from(options).collapse(perf_script, folded)
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
    fn parse_line_rejects_garbage() {
        assert_eq!(parse_line("a;b 12"), Some(("a;b", 12)));
        assert_eq!(parse_line("a;b c d 3\n"), Some(("a;b c d", 3)));
        for bad in ["", "12", " 12", "a;b", "a;b x", "a -1"] {
            assert_eq!(parse_line(bad), None, "{bad:?}");
        }
    }
}
