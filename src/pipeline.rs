//! The run, start to end: decides what to do from the options, then drives
//! the stages (target → recording → stacks → artifacts) in order.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::artifacts::{self, OutDir};
use crate::cli::{CallGraph, Options};
use crate::exit::{fail, Exit};
use crate::folded::{self, Folded};
use crate::interrupt;
use crate::perf::{self, Perf, Subject};
use crate::perf_script;
use crate::record::{self, Recording};
use crate::render::{self, Labels};
use crate::stacks::{self, StackOptions};
use crate::summary::Summary;
use crate::target;

/// How many functions the summary lists.
pub const HOTTEST: usize = 10;

/// A program that failed with fewer samples than this gets no flamegraph: it
/// failed at start-up (a usage error, say), and so few samples show nothing.
pub const MIN_SAMPLES_ON_FAILURE: u64 = 10;

/// The outcome of a profiling run.
#[derive(Debug)]
pub struct Report {
    /// What was profiled, as shown in the title.
    pub command: String,
    /// How the recording went (`None` when re-rendering a file).
    pub recording: Option<Recording>,
    /// Figures from the stacks.
    pub summary: Summary,
    /// What perf or the input's parser warned about.
    pub warnings: Vec<String>,
    /// How stacks were walked (`None` when re-rendering a file).
    pub call_graph: Option<CallGraph>,
    /// Files written, in order.
    pub written: Vec<PathBuf>,
    /// Time from the end of the recording to the files written (perf script,
    /// collapse, render).
    pub postprocess: Duration,
}

impl Report {
    /// The exit code: [`Exit::Workload`] when the program failed, unless ignored.
    pub fn exit(&self, ignore_status: bool) -> Option<Exit> {
        let failed = self
            .recording
            .as_ref()
            .and_then(Recording::failure)
            .is_some();
        (failed && !ignore_status).then_some(Exit::Workload)
    }
}

/// Builds (or finds) the target, records it, and writes the artifacts; or,
/// with `--perfdata`/`--from-folded`, renders an earlier recording.
/// Returns `None` with `--build-only`.
pub fn run(opts: &Options) -> Result<Option<Report>> {
    interrupt::install().context("cannot install the Ctrl-C handler")?;
    if opts.build_only {
        let target = target::prepare(opts)?;
        crate::say!("rust-flamegraph: built {}", target.program.display());
        return Ok(None);
    }
    if let Some(file) = &opts.target.from_folded {
        let out = OutDir::prepare(&opts.out)?;
        let start = Instant::now();
        let folded = folded::read_folded(file)?;
        return finish(
            opts,
            &out,
            file.display().to_string(),
            None,
            folded,
            start,
            None,
        )
        .map(Some);
    }
    let perf = Perf::locate()?;
    if let Some(data) = &opts.target.perfdata {
        let out = OutDir::prepare(&opts.out)?;
        let start = Instant::now();
        let folded = stacks_of(&perf, data, opts)?;
        return finish(
            opts,
            &out,
            data.display().to_string(),
            None,
            folded,
            start,
            None,
        )
        .map(Some);
    }

    // Everything that can be checked is checked before the workload runs.
    perf::check_permission()?;
    let out = OutDir::prepare(&opts.out)?;
    let (command, launch) = match opts.target.pid {
        Some(pid) => (format!("process {pid}"), None),
        None => {
            let t = target::prepare(opts)?;
            (t.display(), Some(t.command()))
        }
    };
    let subject = match (&launch, opts.target.pid) {
        (Some(cmd), _) => Subject::Launch(cmd),
        (None, Some(pid)) => Subject::Attach(pid),
        (None, None) => unreachable!("a target or a pid"),
    };

    let scratch = tempfile::Builder::new()
        .prefix("rust-flamegraph-")
        .tempdir()
        .context("cannot create a temporary folder for perf.data: check TMPDIR")?;
    let data = scratch.path().join("perf.data");
    let _scratch_watch = interrupt::watch_partial(scratch.path().to_path_buf());
    let limit = record::perf_data_limit(&opts.record, scratch.path());
    crate::say!(
        "rust-flamegraph: recording `{command}` (cpu-clock at {} Hz, {} stacks, perf.data up to {} MB); \
         Ctrl-C stops early and still renders",
        opts.record.freq,
        call_graph_name(opts.record.call_graph),
        limit / 1_000_000
    );
    let recording = record::record(&perf, &opts.record, &data, &subject, limit, opts.verbose)?;
    if !data.exists() {
        return Err(fail(
            Exit::Perf,
            format!(
                "perf record wrote no data ({}): see its message above",
                recording.status
            ),
        ));
    }
    let start = Instant::now();
    let size = std::fs::metadata(&data).map(|m| m.len()).unwrap_or(0);
    crate::say!(
        "rust-flamegraph: reading {:.1} MB of samples (perf script{})",
        size as f64 / 1e6,
        if opts.render.no_inline {
            ", --no-inline"
        } else {
            ""
        }
    );
    let folded = stacks_of(&perf, &data, opts)?;
    let keep = opts.keep_perf_data.then_some(data.as_path());
    finish(opts, &out, command, Some(recording), folded, start, keep).map(Some)
}

/// The stacks of a recording: read in-process, or by `perf script` with `--perf-script`.
fn stacks_of(perf: &Perf, data: &Path, opts: &Options) -> Result<Folded> {
    if opts.perf_script {
        return perf_script::collapse_recording(perf, data, &opts.render, opts.verbose);
    }
    stacks::from_file(
        data,
        StackOptions {
            inline: !opts.render.no_inline,
            per_thread: opts.render.per_thread,
            time_order: opts.render.flamechart,
        },
    )
}

/// Checks the stacks, then writes folded stacks, the SVG and (optionally)
/// perf.data, holding the output folder's lock so that concurrent runs into
/// one folder each leave a matching pair.
fn finish(
    opts: &Options,
    out: &OutDir,
    command: String,
    recording: Option<Recording>,
    folded: Folded,
    start: Instant,
    keep_perf_data: Option<&Path>,
) -> Result<Report> {
    let text = String::from_utf8_lossy(&folded.text);
    let summary = Summary::from_folded(&text, HOTTEST);
    let failure = recording.as_ref().and_then(Recording::failure);
    if summary.samples == 0 || (failure.is_some() && summary.samples < MIN_SAMPLES_ON_FAILURE) {
        return Err(match (&recording, failure) {
            (_, Some(f)) => fail(
                Exit::Workload,
                format!(
                    "`{command}` {f} after {} samples, too few for a flamegraph \
                     (see its output above); nothing was written",
                    summary.samples
                ),
            ),
            (Some(rec), None) => fail(
                Exit::NoSamples,
                format!(
                    "perf recorded no samples: `{command}` ran for only {:.0} ms. Make it run \
                     longer, or sample more often (--freq {}, now {})",
                    rec.wall.as_secs_f64() * 1e3,
                    (opts.record.freq * 10).min(100_000),
                    opts.record.freq
                ),
            ),
            (None, None) => fail(
                Exit::NoSamples,
                format!("{command} holds no samples: nothing to render"),
            ),
        });
    }
    let labels = Labels {
        title: opts.render.title.clone().unwrap_or_else(|| command.clone()),
        subtitle: match &recording {
            Some(rec) => format!(
                "{} samples at {} Hz, cpu-clock, {} stacks{}",
                summary.samples,
                opts.record.freq,
                call_graph_name(opts.record.call_graph),
                if rec.stopped { " (stopped early)" } else { "" }
            ),
            None => format!("{} samples", summary.samples),
        },
    };
    let _lock = out.lock()?;
    let mut written = vec![out.write(artifacts::FOLDED, |w| w.write_all(&folded.text))?];
    written.push(out.write(artifacts::SVG, |w| {
        render::render_svg(&folded.text, &opts.render, &labels, w)
    })?);
    if let Some(data) = keep_perf_data {
        written.push(out.copy_in(data, artifacts::PERF_DATA)?);
    }
    Ok(Report {
        call_graph: recording.as_ref().map(|_| opts.record.call_graph),
        command,
        recording,
        summary,
        warnings: folded.warnings,
        written,
        postprocess: start.elapsed(),
    })
}

pub(crate) fn call_graph_name(cg: CallGraph) -> &'static str {
    match cg {
        CallGraph::Fp => "frame-pointer",
        CallGraph::Dwarf => "DWARF",
    }
}
