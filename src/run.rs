//! The run, start to end: decides what to do from the options, then drives
//! the stages (target → recording → stacks → artifacts) in order.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};

use crate::artifacts::{self, OutDir};
use crate::collect::folded;
use crate::collect::perf_script;
use crate::collect::stacks::{self, Prefetch, StackOptions};
use crate::exit::Exit;
use crate::model::folded::Folded;
use crate::model::seen::Seen;
use crate::output::report;
use crate::output::summary::{self, Report, Summary};
use crate::output::svg::{self, Labels, RenderOptions};
use crate::record::perf::{self, Perf, Subject};
use crate::record::RecordOptions;
use crate::record::{self, Recording};
use crate::sys::interrupt;
use crate::target;
use crate::target::TargetOptions;

use crate::defaults::{HOTTEST, MIN_SAMPLES};
use crate::output::diff::Old;
use crate::output::Format;

/// Below this much room for perf.data (half the free space of `$TMPDIR`), a
/// recording would stop before it started: refuse at once.
const MIN_PERF_DATA_ROOM: u64 = 1_000_000;

/// Everything a run needs, each stage's settings in that stage's own type:
/// what [`crate::cli`] makes of the command line.
#[derive(Debug, Clone)]
pub struct Config {
    /// What the run does.
    pub mode: RunMode,
    /// The output folder (or `FILE.svg`).
    pub out: PathBuf,
    /// Which program, and how it is built.
    pub target: TargetOptions,
    /// How perf records (the program runs with the target's privileges).
    pub record: RecordOptions,
    /// How samples become stacks.
    pub stacks: StackOptions,
    /// Read the recording with `perf script` instead of in-process.
    pub perf_script: bool,
    /// Another machine's files, for a recording made there (`--symfs`).
    pub symfs: Option<PathBuf>,
    /// Frames below which stacks are cut (`--skip-after`).
    pub skip_after: Vec<String>,
    /// A command the folded stacks go through (`--post-process`).
    pub post_process: Option<String>,
    /// Frames without their generic arguments (`--short-names`).
    pub short_names: bool,
    /// How the flamegraph is drawn.
    pub render: RenderOptions,
    /// The title (default: the profiled command).
    pub title: Option<String>,
    /// Earlier stacks to compare with (`--diff-against`).
    pub diff_against: Option<PathBuf>,
    /// Files added to the flamegraph and the folded stacks.
    pub formats: Vec<Format>,
    /// Keep perf.data in the output folder.
    pub keep_perf_data: bool,
    /// Show cargo's and perf's full output.
    pub verbose: bool,
}

impl Config {
    /// The stacks weigh nanoseconds, not samples: `--off-cpu` on a recording,
    /// made now or read again (`--perfdata`), not on earlier folded stacks.
    pub fn weighs_nanoseconds(&self) -> bool {
        self.stacks.off_cpu != crate::collect::off_cpu::OffCpu::No
            && !matches!(self.mode, RunMode::RenderFolded(_) | RunMode::Build)
    }
}

/// What a run does, decided once from the options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunMode {
    /// Build the cargo target with profiling settings; run nothing.
    Build,
    /// Build the target (or take `--exec`'s program), run it under perf, render.
    Launch,
    /// Record a running process until Ctrl-C or `--duration`, then render.
    Attach(u32),
    /// Render an earlier perf.data.
    RenderRecording(PathBuf),
    /// Render earlier folded stacks.
    RenderFolded(PathBuf),
}

/// What was profiled and the stacks it gave, ready to be written.
struct Profile {
    /// What was profiled, as shown in the title.
    command: String,
    /// How the recording went (`None` when re-rendering a file).
    recording: Option<Recording>,
    folded: Folded,
    /// The recording, to keep in the output folder (`--keep-perf-data`).
    perf_data: Option<PathBuf>,
    /// The earlier run to compare with (`--diff-against`), read before anything ran.
    old: Option<Old>,
    /// When post-processing began.
    started: Instant,
}

/// Runs what the options ask for. Returns `None` with `--build-only`.
pub fn run(cfg: &Config) -> Result<Option<Report>> {
    interrupt::install().context("cannot install the Ctrl-C handler")?;
    match cfg.mode.clone() {
        RunMode::Build => {
            let target = target::prepare(&cfg.target.clone())?;
            crate::say!(
                "rust-flamegraph: the program is {}",
                target.program.display()
            );
            Ok(None)
        }
        RunMode::RenderFolded(file) => render_file(cfg, &file, || match cfg.render.flamechart {
            true => folded::read_folded_in_order(&file),
            false => folded::read_folded(&file),
        }),
        RunMode::RenderRecording(data) => render_file(cfg, &data, || {
            let prefetch = cfg.symfs.as_deref().map(Prefetch::of_machine_in);
            stacks_of(&data, cfg, prefetch)
        }),
        RunMode::Launch => record_and_write(cfg, None),
        RunMode::Attach(pid) => record_and_write(cfg, Some(pid)),
    }
}

/// Renders the stacks `read` gets from `file` (folded stacks, or a
/// recording): nothing runs, so the first Ctrl-C lets the rendering finish.
fn render_file(
    cfg: &Config,
    file: &Path,
    read: impl FnOnce() -> Result<Folded>,
) -> Result<Option<Report>> {
    interrupt::enter(interrupt::Stage::PostProcessing);
    let out = OutDir::prepare(&cfg.out)?;
    let old = load_old(cfg)?;
    let started = Instant::now();
    let profile = Profile {
        command: file.display().to_string(),
        recording: None,
        folded: read()?,
        perf_data: None,
        old,
        started,
    };
    write_results(cfg, &out, profile).map(Some)
}

/// Reads `--diff-against`'s stacks, if given: before anything is recorded
/// (a wrong path fails at once) or replaced (OLD may be `--out` itself).
fn load_old(cfg: &Config) -> Result<Option<Old>> {
    cfg.diff_against.as_deref().map(Old::load).transpose()
}

/// The files that options add to a run's set: diff.svg and diff-removed.svg
/// (`--diff-against`) and profile.pb.gz (`--format pprof`), made before the
/// set is started.
struct Extra {
    diff: Option<crate::output::diff::Diff>,
    pprof: Option<Vec<u8>>,
}

impl Extra {
    fn draw(
        cfg: &Config,
        old: Option<Old>,
        folded: &Folded,
        labels: &Labels,
        recording: &Option<Recording>,
        started: Instant,
        command: &str,
    ) -> Result<Extra> {
        let diff = old
            .map(|old| old.compare(&folded.text, &cfg.render, labels))
            .transpose()?;
        let pprof = if cfg.formats.contains(&Format::Pprof) {
            let rewritten = !cfg.skip_after.is_empty() || cfg.post_process.is_some();
            let meta = crate::output::pprof::Meta {
                freq: cfg.record.freq,
                // The recording ended when post-processing started.
                start: recording.as_ref().and_then(|rec| {
                    std::time::SystemTime::now().checked_sub(started.elapsed() + rec.wall)
                }),
                duration: recording.as_ref().map(|rec| rec.wall),
                comment: command.to_string(),
                nanoseconds: cfg.weighs_nanoseconds(),
                // `perf script`'s stacks start with the thread, unless
                // rewritten as text.
                thread_roots: cfg.perf_script && !rewritten,
            };
            // By address, with source lines, when the recording was read
            // in-process and its stacks were not rewritten as text.
            Some(match (&folded.addresses, rewritten) {
                (Some(stacks), false) => {
                    let short = |name: &str| match cfg.short_names {
                        true => crate::symbolize::short_name(name).into_owned(),
                        false => name.to_string(),
                    };
                    let profile = crate::output::pprof::from_stacks(stacks, &meta, &short);
                    crate::output::pprof::encode_profile(&profile)?
                }
                _ => crate::output::pprof::encode(&folded.text, &meta)?,
            })
        } else {
            None
        };
        Ok(Extra { diff, pprof })
    }

    fn add_to(&self, set: &mut artifacts::Set<'_>) -> Result<()> {
        if let Some(diff) = &self.diff {
            set.add(artifacts::DIFF_SVG, |w| w.write_all(&diff.svg))?;
            set.add(artifacts::DIFF_REMOVED_SVG, |w| {
                w.write_all(&diff.removed_svg)
            })?;
        }
        if let Some(pprof) = &self.pprof {
            set.add(artifacts::PPROF, |w| w.write_all(pprof))?;
        }
        Ok(())
    }
}

/// Records the target (or process `pid`) and writes the results.
fn record_and_write(cfg: &Config, pid: Option<u32>) -> Result<Option<Report>> {
    // Everything that can be checked is checked before the workload runs.
    let perf = Perf::locate()?;
    perf::check_permission()?;
    let out = OutDir::prepare(&cfg.out)?;
    let old = load_old(cfg)?;
    // Streamed (perf's pipe mode) unless a perf.data file is asked for:
    // samples are unwound on the other core while the program runs, and
    // stack copies never touch the disk. Launching needs the exec helper,
    // which gives the program back its stdout (perf's is the stream).
    let stream = !cfg.keep_perf_data
        && !cfg.perf_script
        && (pid.is_some() || record::exec_helper::helper_available());
    // Who builds and runs the program (as root: without capabilities),
    // decided once for both.
    let target_opts = cfg.target.clone();
    let record_opts = record::RecordOptions {
        privileges: target_opts.privileges.clone(),
        ..cfg.record.clone()
    };
    let scratch = crate::record::scratch::Scratch::create()?;
    let data = scratch.perf_data();
    let limit = if stream {
        record::options::limit_of(cfg.record.max_perf_data, None)
    } else {
        record::options::perf_data_limit(&record_opts, scratch.path())
    };
    if limit < MIN_PERF_DATA_ROOM && !stream {
        return Err(Exit::Other.error(format!(
            "{} has {:.1} MB free: too little for perf.data (a DWARF recording takes about \
                 60 MB per second, a frame-pointer one 0.15 MB): set TMPDIR to a folder with \
                 room",
            std::env::temp_dir().display(),
            limit as f64 * 2.0 / 1e6
        )));
    }
    let announce = |command: &str| {
        crate::say!(
            "rust-flamegraph: recording `{}` (cpu-clock at {} Hz, {} stacks, {} up to {} MB); \
             Ctrl-C stops early and still renders",
            crate::model::text::printable(command),
            cfg.record.freq,
            cfg.record.call_graph.describe(),
            if stream { "streamed" } else { "perf.data" },
            limit / 1_000_000
        )
    };
    // The program's debug info and the kernel's symbols are read while it
    // runs: sent here once the program is known.
    let (prefetch_to, prefetched) = std::sync::mpsc::channel::<Prefetch>();
    let in_process = !cfg.perf_script;
    let mut command = String::new();
    let profiled = match pid {
        Some(pid) => {
            command = format!("process {pid}");
            if in_process {
                let exe = PathBuf::from(format!("/proc/{pid}/exe"));
                let _ = prefetch_to.send(Prefetch::start(&[exe]));
            }
            announce(&command);
            record::Profiled::Now(Subject::Attach(pid))
        }
        // perf starts while the target is built (its start-up overlaps
        // cargo's), and runs it once built.
        None => {
            let command = &mut command;
            record::Profiled::Later(Box::new(move || {
                let t = target::prepare(&target_opts)?;
                *command = t.display();
                if in_process {
                    let _ = prefetch_to.send(Prefetch::start(std::slice::from_ref(&t.program)));
                }
                announce(command);
                Ok(t.command())
            }))
        }
    };
    if stream {
        let stack_opts = cfg.stacks;
        // Counted as they are read, for the progress line and --off-cpu's cap.
        let seen = Seen::default();
        let (recording, folded) = record::record_streaming(
            &perf,
            &record_opts,
            profiled,
            limit,
            cfg.verbose,
            Some(&seen),
            {
                let seen = &seen;
                move |input| {
                    stacks::from_pipe(input, stack_opts, prefetched.recv().ok(), Some(seen))
                }
            },
        )?;
        let started = Instant::now();
        crate::say!(
            "rust-flamegraph: read {:.1} MB of samples as perf recorded them",
            recording.streamed.unwrap_or(0) as f64 / 1e6,
        );
        let folded = folded.map_err(|e| {
            Exit::Perf.error(format!(
                "perf's stream could not be read (see its messages above): {}",
                crate::exit::message(&e)
            ))
        })?;
        let kept = folded.text.clone();
        let profile = Profile {
            command,
            recording: Some(recording),
            folded,
            perf_data: None,
            old,
            started,
        };
        return match write_results(cfg, &out, profile) {
            // The output folder filled up (or went away) after the start-up
            // check: the stacks are what cannot be had again, so keep them.
            Err(err) if Exit::of(&err) == Exit::Output => Err(keep_stacks(&out, &kept, cfg, err)),
            result => result.map(Some),
        };
    }
    let recording = record::record(&perf, &record_opts, &data, profiled, limit, cfg.verbose)?;
    if !data.exists() {
        return Err(Exit::Perf.error(format!(
            "perf record wrote no data ({}): see its message above",
            recording.status
        )));
    }
    let started = Instant::now();
    let size = std::fs::metadata(&data).map(|m| m.len()).unwrap_or(0);
    crate::say!(
        "rust-flamegraph: reading {:.1} MB of samples",
        size as f64 / 1e6,
    );
    let folded = stacks_of(&data, cfg, prefetched.try_recv().ok()).map_err(|e| {
        // Written by perf moments ago: unreadable means perf could not finish it.
        Exit::Perf.error(format!(
            "perf could not finish the recording (see its messages above; is {} full?): \
                 record again with more room in TMPDIR: {}",
            std::env::temp_dir().display(),
            crate::exit::message(&e)
        ))
    })?;
    let profile = Profile {
        command,
        recording: Some(recording),
        folded,
        perf_data: cfg.keep_perf_data.then(|| data.clone()),
        old,
        started,
    };
    match write_results(cfg, &out, profile) {
        // The output folder filled up (or went away) after the start-up
        // check: the recording is what cannot be had again, so keep it.
        Err(err) if Exit::of(&err) == Exit::Output => Err(keep_recording(&out, &data, cfg, err)),
        result => result.map(Some),
    }
}

/// Moves the recording out of the scratch folder (which goes when the run
/// ends) to a private folder ([`OutDir::put_aside`]) and says how to render
/// it again.
fn keep_recording(out: &OutDir, data: &Path, cfg: &Config, err: anyhow::Error) -> anyhow::Error {
    match out.put_aside(artifacts::PERF_DATA, artifacts::Keep::File(data)) {
        Ok(kept) => err.context(format!(
            "the recording is kept at {shown}: once there is room, draw it with \
             `rust-flamegraph --perfdata {shown} --out {out}` (and delete it after){gone}",
            shown = artifacts::shown(&kept),
            gone = goes_with_container(out, &kept),
            out = cfg.out.display()
        )),
        Err(e) => err.context(lost("recording", out, &e)),
    }
}

/// Keeps a streamed run's folded stacks ([`OutDir::put_aside`]: the scratch
/// folder goes when the run ends) and says how to render them again.
fn keep_stacks(out: &OutDir, text: &[u8], cfg: &Config, err: anyhow::Error) -> anyhow::Error {
    match out.put_aside(artifacts::FOLDED, artifacts::Keep::Bytes(text)) {
        Ok(kept) => err.context(format!(
            "the stacks are kept at {shown}: once there is room, draw them with \
             `rust-flamegraph --from-folded {shown} --out {out}` (and delete the file after){gone}",
            shown = artifacts::shown(&kept),
            gone = goes_with_container(out, &kept),
            out = cfg.out.display()
        )),
        Err(e) => err.context(lost("stacks", out, &e)),
    }
}

/// In a container, data kept outside the (full) output folder is in the
/// container's own files: said plainly, since `docker run --rm` removes them.
fn goes_with_container(out: &OutDir, kept: &Path) -> String {
    if crate::sys::container::in_container() && !kept.starts_with(out.path()) {
        format!(
            "; it is inside the container, since {} is full: it is gone once the container is \
             removed, as `--rm` does (copy it out first with `docker cp`, or free space and \
             record again)",
            artifacts::shown(out.path())
        )
    } else {
        String::new()
    }
}

/// Says plainly that `what` could not be kept either.
fn lost(what: &str, out: &OutDir, e: &std::io::Error) -> String {
    let are = if what.ends_with('s') { "are" } else { "is" };
    if crate::sys::container::in_container() {
        format!(
            "the {what} could not be kept beside the results either ({e}), and the container's \
             own folders go with it: the {what} {are} lost; free some space in {} and record again",
            artifacts::shown(out.path())
        )
    } else {
        format!(
            "the {what} could not be kept in {} either ({e}): the {what} {are} lost; free \
             some space and record again",
            std::env::temp_dir().display()
        )
    }
}

/// The stacks of a recording: read in-process, or by `perf script` with `--perf-script`.
fn stacks_of(data: &Path, cfg: &Config, prefetch: Option<Prefetch>) -> Result<Folded> {
    if cfg.perf_script {
        let perf = Perf::locate()?;
        return perf_script::collapse_recording(
            &perf,
            data,
            cfg.symfs.as_deref(),
            cfg.stacks,
            cfg.verbose,
        );
    }
    stacks::from_file(data, cfg.stacks, prefetch)
}

/// Checks the stacks, then writes folded stacks, the SVG and (optionally)
/// perf.data as one set, holding the output folder's lock so that concurrent
/// runs into one folder each leave a matching set.
fn write_results(cfg: &Config, out: &OutDir, profile: Profile) -> Result<Report> {
    let Profile {
        command,
        recording,
        folded,
        perf_data,
        old,
        started,
    } = profile;
    // --skip-after, then --post-process, as `cargo flamegraph` applies them.
    let mut folded = folded;
    if !cfg.skip_after.is_empty() {
        folded.text = folded::skip_after(&folded.text, &cfg.skip_after);
    }
    if let Some(command) = &cfg.post_process {
        folded.text = folded::post_process(&folded.text, command)?;
    }
    if cfg.short_names {
        folded.text = folded::short_names(&folded.text);
        for stack in folded.timeline.iter_mut().flat_map(|t| t.stacks.iter_mut()) {
            *stack = folded::short_stack(stack);
        }
    }
    let text = String::from_utf8_lossy(&folded.text);
    let mut summary = Summary::from_folded(&text, HOTTEST);
    // Time on and off the CPU, in nanoseconds, when waiting was recorded.
    summary.nanoseconds = cfg.weighs_nanoseconds();
    let failure = recording.as_ref().and_then(Recording::failure);
    if summary.samples < MIN_SAMPLES {
        let kept = if out.path().join(out.file_name(artifacts::SVG)).exists() {
            "; the earlier results in the output folder were kept"
        } else {
            ""
        };
        return Err(match (&recording, failure) {
            (_, Some(f)) => Exit::Workload.error(format!(
                    "`{command}` {f} after {} samples, too few for a flamegraph \
                     (see its output above); nothing was written{kept}",
                    summary.samples
                ),
            ),
            (Some(rec), None) => Exit::NoSamples.error(format!(
                    "{}: `{command}` ran for {:.0} ms, too short to draw. Make it \
                     run longer, or sample more often (--freq {}, now {}); nothing was written{kept}",
                    recorded(summary.samples),
                    rec.wall.as_secs_f64() * 1e3,
                    (cfg.record.freq * 10).min(100_000),
                    cfg.record.freq
                ),
            ),
            (None, None) => Exit::NoSamples.error(format!(
                    "{command} holds {} samples, too few to draw; nothing was written{kept}",
                    summary.samples
                ),
            ),
        });
    }
    let labels = Labels {
        title: cfg.title.clone().unwrap_or_else(|| command.clone()),
        subtitle: match &recording {
            Some(rec) => format!(
                "{} at {} Hz, cpu-clock, {} stacks{}",
                match summary.nanoseconds {
                    true => format!(
                        "{:.2} s of threads' time on and off the CPU (counts in ns; off-CPU \
                         frames say why)",
                        summary.samples as f64 / 1e9
                    ),
                    false => format!("{} samples", summary.samples),
                },
                cfg.record.freq,
                cfg.record.call_graph.describe(),
                if rec.stopped_early() {
                    " (stopped early)"
                } else {
                    ""
                }
            ),
            None => format!("{} samples", summary.samples),
        },
    };
    // Every file is written in full before any replaces an earlier one.
    // Drawn first, so that a drawing error is not taken for a write error.
    let mut svg = Vec::new();
    svg::render_svg(&folded.text, &cfg.render, &labels, &mut svg)
        .context("cannot draw the flamegraph from these stacks")?;
    let extra = Extra::draw(cfg, old, &folded, &labels, &recording, started, &command)?;
    summary.changed = extra.diff.as_ref().map(|diff| {
        let mut changes = diff.changes.clone();
        changes.removed_svg = out.file_name(artifacts::DIFF_REMOVED_SVG);
        changes
    });
    let mut set = out.start_set()?;
    set.add(artifacts::FOLDED, |w| w.write_all(&folded.text))?;
    set.add(artifacts::SVG, |w| w.write_all(&svg))?;
    let page = report::Page {
        title: labels.title.clone(),
        subtitle: labels.subtitle.clone(),
        // A recording read again (--perfdata) weighs nanoseconds too.
        nanoseconds: summary.nanoseconds
            || (folded.timeline.is_some()
                && cfg.stacks.off_cpu != crate::collect::off_cpu::OffCpu::No),
    };
    set.add(artifacts::REPORT, |w| report::write_html(&folded, &page, w))?;
    extra.add_to(&mut set)?;
    if let Some(data) = &perf_data {
        set.add_copy(data, artifacts::PERF_DATA)?;
    }
    let written = set.commit()?;
    Ok(Report {
        call_graph: recording.as_ref().map(|_| cfg.record.call_graph),
        command,
        recording,
        summary,
        warnings: {
            let mut warnings = folded.warnings;
            if folded.kernel_names_hidden {
                warnings.push(summary::kernel_names_hidden(crate::sys::container::engine()));
            }
            // perf lost records where it may not lock a larger buffer.
            if let (true, Some(engine), false) = (
                folded.records_lost > 0,
                crate::sys::container::engine(),
                record::options::can_lock_memory(),
            ) {
                warnings.push(summary::small_buffer(engine, crate::defaults::MMAP_PAGES));
            }
            warnings
        },
        written,
        postprocess: started.elapsed(),
    })
}

/// How many samples perf recorded, when they are too few: `only 1 sample`.
fn recorded(samples: u64) -> String {
    match samples {
        0 => "perf recorded no samples".to_string(),
        1 => "only 1 sample".to_string(),
        n => format!("only {n} samples"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_few_samples_are_counted_in_words() {
        assert_eq!(recorded(0), "perf recorded no samples");
        assert_eq!(recorded(1), "only 1 sample");
        assert_eq!(recorded(7), "only 7 samples");
    }
}
