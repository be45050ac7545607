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

/// Default ceiling for perf.data: half the free space of `dir`, at most 4 GB.
pub fn perf_data_limit(opts: &RecordOptions, dir: &Path) -> u64 {
    match opts.max_perf_data {
        Some(mb) => mb.saturating_mul(1_000_000),
        None => (free_space(dir).unwrap_or(u64::MAX) / 2).min(4_000_000_000),
    }
}

fn free_space(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: path is NUL-terminated and st is a valid out-pointer.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

/// Why the monitor stopped perf, if it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Duration,
    SizeLimit,
}

/// Runs `subject` under perf, writing samples to `data`.
///
/// The workload inherits our stdin, stdout and stderr. Ctrl-C, SIGTERM,
/// `opts.duration` and perf.data reaching `limit` bytes stop perf with
/// SIGINT: it then ends the workload and writes its data, which is then
/// rendered as usual. Past half the limit, a warning says so.
pub fn record(
    perf: &Perf,
    opts: &RecordOptions,
    data: &Path,
    subject: &Subject,
    limit: u64,
    verbose: bool,
) -> Result<Recording> {
    let args = perf::record_args(opts, data, subject);
    if verbose {
        crate::say!(
            "rust-flamegraph: running {} {}",
            perf.path.display(),
            crate::target::join_args(&args)
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
    let monitor = {
        let handle = Arc::clone(&handle);
        let data = data.to_path_buf();
        let duration = opts.duration;
        std::thread::spawn(move || monitor(&handle, pid, &data, duration, limit, start))
    };
    let output = handle.wait().context("waiting for perf record")?;
    let wall = start.elapsed();
    let stop = monitor.join().unwrap_or(None);
    Ok(Recording {
        status: output.status,
        wall,
        stopped: stop.is_some()
            || interrupt::interrupted()
            || matches!(subject, Subject::Attach(_)),
    })
}

/// Watches a running `perf record` until it exits; stops it at the deadline
/// or at the size limit.
fn monitor(
    handle: &duct::Handle,
    pid: u32,
    data: &Path,
    duration: Option<Duration>,
    limit: u64,
    start: Instant,
) -> Option<Stop> {
    let mut warned = false;
    loop {
        if matches!(handle.try_wait(), Ok(Some(_))) {
            return None;
        }
        if duration.is_some_and(|d| start.elapsed() >= d) {
            crate::say!(
                "rust-flamegraph: --duration {:.1}s reached: stopping the recording",
                duration.unwrap_or_default().as_secs_f64()
            );
            interrupt::send(pid, libc::SIGINT);
            return Some(Stop::Duration);
        }
        let size = std::fs::metadata(data).map(|m| m.len()).unwrap_or(0);
        // The warning always comes first, even when one step crosses both marks.
        if !warned && size >= limit / 2 {
            warned = true;
            crate::say!(
                "rust-flamegraph: warning: perf.data is {} MB after {:.0} s and the recording \
                 stops at {} MB: lower --freq, use --call-graph fp, or --duration",
                size / 1_000_000,
                start.elapsed().as_secs_f64(),
                limit / 1_000_000
            );
        }
        if size >= limit {
            crate::say!(
                "rust-flamegraph: perf.data reached {} MB, the limit (--max-perf-data): \
                 stopping the recording; what was recorded is rendered",
                size / 1_000_000
            );
            interrupt::send(pid, libc::SIGINT);
            return Some(Stop::SizeLimit);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
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
    fn the_perf_data_limit_is_the_option_or_half_the_free_space() {
        let opts = RecordOptions {
            max_perf_data: Some(5),
            ..RecordOptions::default()
        };
        assert_eq!(perf_data_limit(&opts, Path::new("/")), 5_000_000);
        let free = free_space(Path::new("/tmp")).unwrap();
        let default = perf_data_limit(&RecordOptions::default(), Path::new("/tmp"));
        let expected = (free / 2).min(4_000_000_000);
        // Free space moves while other processes write: allow 10 %.
        assert!(
            default.abs_diff(expected) <= expected / 10,
            "{default} vs {expected}"
        );
        assert!(free_space(Path::new("/nonexistent/dir")).is_none());
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
