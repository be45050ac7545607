//! The short report printed after a run: samples, stack completeness and the
//! hottest functions by self time.

use std::fmt;

use std::path::PathBuf;
use std::time::Duration;

use crate::exit::Exit;
use crate::model::counts::{is_thread_root, percent, self_time};
use crate::model::folded::parse_line;
use crate::model::text::printable;
use crate::record::{CallGraph, Recording, StopReason};
use crate::sys::container::Engine;

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

/// The warning for kernel frames that read `[kernel]`, with the fix for where
/// we run (`engine`: the container engine, if any).
pub fn kernel_names_hidden(engine: Option<Engine>) -> String {
    let fix = match engine {
        Some(engine) => format!(
            "add --cap-add=SYSLOG to `{} run` (or `cap_add: [SYSLOG]` to the compose service) \
             to name them",
            engine.command()
        ),
        None => "run as root, or `sudo sysctl kernel.kptr_restrict=0`, to name them".to_string(),
    };
    format!("kernel frames show as [kernel]: kernel symbols are hidden here (kptr_restrict); {fix}")
}

/// The advice after perf lost records in a container (`engine`) where it
/// may not lock memory: its buffer is then 512 KiB per CPU, about ten DWARF
/// stack copies; `IPC_LOCK` lets it lock `pages` pages per CPU.
pub fn small_buffer(engine: Engine, pages: u32) -> String {
    format!(
        "perf's buffer is 512 KiB per CPU in this container, too small for this recording: \
         add --cap-add=IPC_LOCK to `{} run` (or `cap_add: [IPC_LOCK]` to the compose service) \
         so that it may lock {} MiB",
        engine.command(),
        u64::from(pages) * 4096 / (1 << 20)
    )
}

/// Why the recording ended, for the summary's wall-time line.
fn stop_text(reason: StopReason) -> String {
    match reason {
        StopReason::Interrupted(signal) => {
            format!("stopped: {}", crate::sys::interrupt::signal_name(signal))
        }
        StopReason::Duration(d) => format!("stopped: --duration {}s elapsed", d.as_secs_f64()),
        StopReason::SizeLimit(limit) => format!(
            "stopped: perf.data reached its limit of {} MB (--max-perf-data)",
            limit / 1_000_000
        ),
        StopReason::Detached(pid) => format!("detached from process {pid} when it ended"),
    }
}

/// Figures computed from folded stacks.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    /// Samples in all stacks.
    pub samples: u64,
    /// Samples whose stack reaches the start of its thread (`_start`, `main`,
    /// `clone3`, …): the unwinding was complete.
    pub complete: u64,
    /// Functions by self time (samples where they are the leaf), hottest first.
    pub hottest: Vec<(String, u64)>,
    /// With `--diff-against`: the functions whose share changed most.
    pub changed: Option<crate::output::diff::Changes>,
    /// Counts are nanoseconds (`--off-cpu`), not samples.
    pub nanoseconds: bool,
}

impl Summary {
    /// Summarises folded stacks, keeping the `top` hottest functions.
    /// Lines that are not `frames count` are skipped.
    pub fn from_folded(folded: &str, top: usize) -> Summary {
        let (self_time, samples) = self_time(folded);
        let complete = folded
            .lines()
            .filter_map(parse_line)
            .filter(|(frames, _)| frames.split(';').any(is_thread_root))
            .fold(0u64, |sum, (_, count)| sum.saturating_add(count));
        let mut hottest: Vec<(String, u64)> = self_time
            .into_iter()
            .map(|(f, c)| (f.to_string(), c))
            .collect();
        hottest.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        hottest.truncate(top);
        Summary {
            samples,
            complete,
            hottest,
            changed: None,
            nanoseconds: false,
        }
    }

    /// Share of samples whose stack reaches the start of its thread, in percent.
    pub fn complete_share(&self) -> f64 {
        percent(self.complete, self.samples)
    }
}

/// `text` of several lines, each [`printable`].
fn printable_lines(text: &str) -> String {
    text.lines()
        .map(|l| printable(l).into_owned() + "\n")
        .collect()
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  hottest functions (self time):")?;
        for (name, count) in &self.hottest {
            let name = printable(name);
            let name = if name.chars().count() > 100 {
                format!("{}…", name.chars().take(99).collect::<String>())
            } else {
                name.into_owned()
            };
            let share = percent(*count, self.samples);
            let count = match self.nanoseconds {
                true => format!("{:.1} ms", *count as f64 / 1e6),
                false => count.to_string(),
            };
            writeln!(f, "    {share:5.1} %  {count:>7}  {name}")?;
        }
        if let Some(changed) = &self.changed {
            write!(f, "{}", printable_lines(&changed.to_string()))?;
        }
        Ok(())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.summary;
        writeln!(
            f,
            "rust-flamegraph: profiled `{}`",
            printable(&self.command)
        )?;
        if let Some(rec) = &self.recording {
            let status = match rec.failure() {
                Some(failure) => format!("the program {failure}"),
                None => match rec.stop {
                    Some(reason) => stop_text(reason),
                    None => "exit status 0".to_string(),
                },
            };
            writeln!(
                f,
                "  wall time            {:.2} s ({status})",
                rec.wall.as_secs_f64()
            )?;
        }
        let lost = self
            .warnings
            .iter()
            .find(|w| w.contains("lost"))
            .map_or("none lost".into(), |w| printable(w));
        if s.nanoseconds {
            writeln!(
                f,
                "  on and off the CPU   {:.1} s of threads' time ({lost})",
                s.samples as f64 / 1e9
            )?;
        } else {
            writeln!(f, "  samples              {} ({lost})", s.samples)?;
        }
        let advice = match self.call_graph {
            Some(crate::record::CallGraph::Fp) if s.complete_share() < 90.0 => {
                " (the rest stop in code without frame pointers, e.g. libc; \
                 --call-graph dwarf recovers them)"
            }
            Some(crate::record::CallGraph::Dwarf) if s.complete_share() < 90.0 => {
                " (the rest are deeper than the 48 KB of stack perf copies, \
                 or run code without unwind tables)"
            }
            _ => "",
        };
        writeln!(
            f,
            "  complete stacks      {:.1} %{advice}",
            s.complete_share(),
        )?;
        let secs = self.postprocess.as_secs_f64();
        match self.recording.as_ref().and_then(|r| r.streamed) {
            // Unwound while the program ran: a rate over what is left would mislead.
            Some(_) => writeln!(
                f,
                "  post-processing      {secs:.2} s after the program ended \
                 (stacks were unwound while it ran)"
            )?,
            None => writeln!(
                f,
                "  post-processing      {secs:.2} s ({:.0} samples/s)",
                s.samples as f64 / secs.max(1e-9)
            )?,
        }
        write!(f, "{s}")?;
        for warning in self.warnings.iter().filter(|w| !w.contains("lost")).take(5) {
            writeln!(f, "  warning: {}", printable(warning))?;
        }
        for path in &self.written {
            writeln!(f, "  wrote {}", printable(&crate::artifacts::shown(path)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_kernel_names_name_the_fix_for_where_we_run() {
        let docker = kernel_names_hidden(Some(Engine::Docker));
        assert!(
            docker.contains("--cap-add=SYSLOG to `docker run`"),
            "{docker}"
        );
        assert!(
            docker.contains("cap_add: [SYSLOG]"),
            "compose users too: {docker}"
        );
        let podman = kernel_names_hidden(Some(Engine::Podman));
        assert!(podman.contains("`podman run`"), "{podman}");
        let host = kernel_names_hidden(None);
        assert!(
            host.contains("kptr_restrict=0") && !host.contains("cap-add"),
            "{host}"
        );
    }

    #[test]
    fn a_small_buffer_in_a_container_names_the_capability() {
        let docker = small_buffer(Engine::Docker, 1024);
        assert!(
            docker.contains("--cap-add=IPC_LOCK to `docker run`") && docker.contains("4 MiB"),
            "{docker}"
        );
        assert!(docker.contains("cap_add: [IPC_LOCK]"), "{docker}");
        // The summary shows warnings that do not speak of losses.
        assert!(!docker.contains("lost"), "{docker}");
        assert!(small_buffer(Engine::Podman, 1024).contains("`podman run`"));
    }

    const FOLDED: &str = "\
demo;_start;main;demo::main;demo::run;demo::sort_blocks 60
demo;_start;main;demo::main;demo::run;demo::encode;alloc::fmt::format 25
demo;[libc.so.6] 10
demo;demo::main;demo::run;demo::sort_blocks 5
not a stack line
";

    #[test]
    fn self_time_shares_and_main_reach() {
        let s = Summary::from_folded(FOLDED, 10);
        assert_eq!(s.samples, 100);
        assert_eq!(s.complete, 90);
        assert_eq!(s.complete_share(), 90.0);
        assert_eq!(
            s.hottest,
            vec![
                ("demo::sort_blocks".to_string(), 65),
                ("alloc::fmt::format".to_string(), 25),
                ("[libc.so.6]".to_string(), 10)
            ]
        );
        let shown = s.to_string();
        assert!(
            shown.contains(" 65.0 %") && shown.contains("demo::sort_blocks"),
            "{shown}"
        );
    }

    #[test]
    fn names_are_printed_with_control_characters_escaped() {
        let s = Summary::from_folded("main;\x1b]0\x07pwned\x07 3\nmain;ok\u{9b}x 2\n", 10);
        let shown = s.to_string();
        assert!(
            !shown.chars().any(|c| c.is_control() && c != '\n'),
            "{shown:?}"
        );
        assert!(shown.contains("\\x1b]0\\x07pwned\\x07"), "{shown}");
        assert!(shown.contains("ok\\u{9b}x"), "{shown}");
        assert_eq!(printable_lines("a\x07\nb\n"), "a\\x07\nb\n");
    }

    /// The summary of a run whose recording ended with `stop`.
    fn report(stop: Option<StopReason>) -> String {
        use std::os::unix::process::ExitStatusExt;
        Report {
            command: "demo".into(),
            recording: Some(Recording {
                status: std::process::ExitStatus::from_raw(0),
                wall: Duration::from_millis(1500),
                stop,
                streamed: None,
            }),
            summary: Summary::from_folded(FOLDED, 3),
            warnings: Vec::new(),
            call_graph: Some(CallGraph::Fp),
            written: Vec::new(),
            postprocess: Duration::from_millis(10),
        }
        .to_string()
    }

    #[test]
    fn the_summary_says_why_the_recording_stopped() {
        let cases = [
            (None, "1.50 s (exit status 0)"),
            (
                Some(StopReason::Interrupted(libc::SIGINT)),
                "1.50 s (stopped: Ctrl-C (SIGINT))",
            ),
            (
                Some(StopReason::Interrupted(libc::SIGTERM)),
                "1.50 s (stopped: SIGTERM)",
            ),
            (
                Some(StopReason::Duration(Duration::from_secs(5))),
                "1.50 s (stopped: --duration 5s elapsed)",
            ),
            (
                Some(StopReason::Duration(Duration::from_millis(1500))),
                "1.50 s (stopped: --duration 1.5s elapsed)",
            ),
            (
                Some(StopReason::SizeLimit(100_000_000)),
                "1.50 s (stopped: perf.data reached its limit of 100 MB (--max-perf-data))",
            ),
            (
                Some(StopReason::Detached(42)),
                "1.50 s (detached from process 42 when it ended)",
            ),
        ];
        for (stop, said) in cases {
            let shown = report(stop);
            let line = shown.lines().find(|l| l.contains("wall time")).unwrap();
            assert!(line.ends_with(said), "{stop:?}: {line}");
        }
    }

    #[test]
    fn only_a_recording_cut_short_was_stopped_early() {
        let rec = |stop| Recording {
            status: std::os::unix::process::ExitStatusExt::from_raw(0),
            wall: Duration::ZERO,
            stop,
            streamed: None,
        };
        assert!(!rec(None).stopped_early());
        assert!(rec(Some(StopReason::Interrupted(libc::SIGINT))).stopped_early());
        assert!(rec(Some(StopReason::Duration(Duration::from_secs(1)))).stopped_early());
        assert!(rec(Some(StopReason::SizeLimit(1))).stopped_early());
        // Attached: the process ended on its own; ours to record, not to cut short.
        let detached = rec(Some(StopReason::Detached(42)));
        assert!(detached.stopped() && !detached.stopped_early());
        assert_eq!(detached.failure(), None);
    }

    #[test]
    fn top_limits_the_list_and_empty_input_is_zero() {
        assert_eq!(Summary::from_folded(FOLDED, 1).hottest.len(), 1);
        let empty = Summary::from_folded("", 10);
        assert_eq!((empty.samples, empty.complete_share()), (0, 0.0));
    }
}
