//! Running the target under `perf record`.

use std::path::Path;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::cli::RecordOptions;
use crate::interrupt;
use crate::perf::{self, Perf, Subject};

/// What a recording left behind.
#[derive(Debug)]
pub struct Recording {
    /// perf's exit status: the workload's own (perf passes on its exit code,
    /// and re-raises the signal that killed it).
    pub status: ExitStatus,
    /// Wall time from start to the end of perf.
    pub wall: Duration,
    /// Stopped by us (Ctrl-C, SIGTERM or --duration) rather than by the workload ending.
    pub stopped: bool,
}

impl Recording {
    /// The workload's failure, if it failed on its own.
    pub fn failure(&self) -> Option<String> {
        use std::os::unix::process::ExitStatusExt;
        if self.stopped || self.status.success() {
            return None;
        }
        Some(match (self.status.code(), self.status.signal()) {
            (Some(code), _) => format!("exited with status {code}"),
            (_, Some(sig)) => format!("was killed by signal {sig} ({})", signal_name(sig)),
            _ => self.status.to_string(),
        })
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGABRT => "SIGABRT: abort",
        libc::SIGSEGV => "SIGSEGV: segmentation fault",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL: out of memory?",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        _ => "signal",
    }
}

/// Runs `subject` under perf, writing samples to `data`.
///
/// The workload inherits our stdin, stdout and stderr. Ctrl-C, SIGTERM and
/// `opts.duration` stop perf with SIGINT: it then ends the workload and
/// writes its data, which is then rendered as usual.
pub fn record(
    perf: &Perf,
    opts: &RecordOptions,
    data: &Path,
    subject: &Subject,
    verbose: bool,
) -> Result<Recording> {
    let args = perf::record_args(opts, data, subject);
    if verbose {
        eprintln!(
            "rust-flamegraph: running {} {}",
            perf.path.display(),
            crate::target::lossy(&args)
        );
    }
    let start = Instant::now();
    let handle = Arc::new(
        duct::cmd(&perf.path, &args)
            .unchecked()
            .start()
            .with_context(|| format!("cannot start {}", perf.path.display()))?,
    );
    let pid = handle.pids()[0];
    let _watch = interrupt::watch_child(pid, true);
    let timer = opts.duration.map(|limit| {
        let handle = Arc::clone(&handle);
        std::thread::spawn(move || {
            let deadline = Instant::now() + limit;
            while Instant::now() < deadline {
                if matches!(handle.try_wait(), Ok(Some(_))) {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(20).min(limit));
            }
            eprintln!(
                "rust-flamegraph: --duration {:.1}s reached: stopping the recording",
                limit.as_secs_f64()
            );
            interrupt::send(pid, libc::SIGINT);
            true
        })
    });
    let output = handle.wait().context("waiting for perf record")?;
    let wall = start.elapsed();
    let timed_out = timer.is_some_and(|t| t.join().unwrap_or(false));
    Ok(Recording {
        status: output.status,
        wall,
        stopped: timed_out || interrupt::interrupted() || matches!(subject, Subject::Attach(_)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn rec(raw: i32, stopped: bool) -> Recording {
        Recording {
            status: ExitStatus::from_raw(raw),
            wall: Duration::ZERO,
            stopped,
        }
    }

    #[test]
    fn failures_are_described_unless_we_stopped_the_workload() {
        assert_eq!(rec(0, false).failure(), None);
        assert_eq!(
            rec(3 << 8, false).failure().unwrap(),
            "exited with status 3"
        );
        let segv = rec(libc::SIGSEGV, false).failure().unwrap();
        assert!(
            segv.contains("signal 11") && segv.contains("segmentation"),
            "{segv}"
        );
        assert_eq!(rec(libc::SIGTERM, true).failure(), None);
    }
}
