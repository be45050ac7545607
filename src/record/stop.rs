//! When a recording stops: a signal, the deadline, the size limit; and how a
//! program that will not stop is ended.

use std::ffi::OsString;
use std::os::fd::{OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use super::options::{RecordOptions, MAX_DEFAULT_LIMIT};
use super::progress::Progress;
use crate::sys::{interrupt, proc};

/// Why the recording ended, when the program's own end did not end it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Ctrl-C, SIGTERM or SIGHUP: the signal's number.
    Interrupted(i32),
    /// `--duration` elapsed: that duration.
    Duration(Duration),
    /// perf.data (or the stream) reached its limit, in bytes.
    SizeLimit(u64),
    /// perf was attached to this running process (`--pid`), and nothing
    /// stopped the recording before perf ended: the process exited (or perf
    /// did). Its exit status is not perf's, so not ours to judge.
    Detached(u32),
}

impl StopReason {
    /// Whether the recording was cut short, before the program ended:
    /// everything but [`StopReason::Detached`].
    pub fn early(self) -> bool {
        !matches!(self, StopReason::Detached(_))
    }
}

/// How long a program has to end once asked to stop, before it is sent
/// SIGTERM (and SIGKILL after twice this).
pub const GRACE: Duration = Duration::from_millis(1500);

/// How often the recording is checked (deadline, perf.data size, signals).
pub(crate) const POLL: Duration = Duration::from_millis(50);

/// Decides when the recording must stop: a signal, the deadline, the size limit.
pub(crate) struct Monitor<'a> {
    pub(crate) opts: &'a RecordOptions,
    pub(crate) size: Size<'a>,
    pub(crate) limit: u64,
    pub(crate) start: Instant,
    pub(crate) warned: bool,
    pub(crate) progress: Progress<'a>,
    /// `--off-cpu`'s cap on switch stacks, where perf takes commands.
    pub(crate) switch_cap: Option<super::switch_cap::SwitchCap<'a>>,
}

impl Monitor<'_> {
    pub(crate) fn check(&mut self) -> Option<StopReason> {
        if let Some(cap) = &mut self.switch_cap {
            cap.tick();
        }
        let stop = self.reason();
        if stop.is_some() {
            self.progress.finish();
        }
        stop
    }

    fn reason(&mut self) -> Option<StopReason> {
        if let Some(signal) = interrupt::signal() {
            // The signal thread has said so.
            return Some(StopReason::Interrupted(signal));
        }
        if let Some(d) = self.opts.duration {
            if self.start.elapsed() >= d {
                self.progress.finish();
                crate::say!(
                    "rust-flamegraph: --duration {:.1}s reached: stopping the recording",
                    d.as_secs_f64()
                );
                return Some(StopReason::Duration(d));
            }
        }
        let size = match self.size {
            Size::File(data) => std::fs::metadata(data).map(|m| m.len()).unwrap_or(0),
            Size::Streamed(streamed) => streamed.load(Ordering::Relaxed),
        };
        if self.warned || size < self.limit / 2 {
            self.progress.tick(size);
        } else {
            self.progress.finish();
        }
        // The warning always comes first, even when one step crosses both marks.
        if !self.warned && size >= self.limit / 2 {
            self.warned = true;
            crate::say!(
                "rust-flamegraph: warning: perf.data is {} MB after {:.0} s and the recording \
                 stops at {} MB: lower --freq, use --call-graph fp, or --duration",
                size / 1_000_000,
                self.start.elapsed().as_secs_f64(),
                self.limit / 1_000_000
            );
        }
        if size >= self.limit {
            let dir = match self.size {
                Size::File(data) => Some(data.parent().unwrap_or(Path::new("."))),
                Size::Streamed(_) => None,
            };
            crate::say!("{}", limit_message(self.opts, dir, size));
            return Some(StopReason::SizeLimit(self.limit));
        }
        None
    }
}

/// How big the recording is: perf.data's size, or the bytes streamed.
#[derive(Clone, Copy)]
pub(crate) enum Size<'a> {
    File(&'a Path),
    Streamed(&'a AtomicU64),
}

/// What is said when perf.data reaches its limit: which limit, and how to
/// change it. `dir` is the folder whose free space set the default limit
/// (`None` when streaming: nothing is written there).
pub(crate) fn limit_message(opts: &RecordOptions, dir: Option<&Path>, size: u64) -> String {
    let which = match (opts.max_perf_data, dir) {
        (Some(mb), _) => format!("the limit (--max-perf-data {mb})"),
        (None, Some(dir)) => format!(
            "the perf.data limit (half the free space of {}, at most 4000 MB; \
             --max-perf-data to change)",
            dir.display()
        ),
        (None, None) => format!(
            "the default limit ({} MB; --max-perf-data to change)",
            MAX_DEFAULT_LIMIT / 1_000_000
        ),
    };
    format!(
        "rust-flamegraph: perf.data reached {} MB, {which}: stopping the recording; \
         what was recorded is rendered",
        size / 1_000_000
    )
}

/// Ends a program that does not stop when perf asks it to (perf then waits
/// for it forever): SIGTERM after [`GRACE`], SIGKILL after twice that.
#[derive(Default)]
pub(crate) struct Escalation {
    pub(crate) sent: u8,
    pub(crate) workload: Option<Workload>,
}

impl Escalation {
    pub(crate) fn step(&mut self, perf: u32, since: Duration, program: &str) {
        let (signal, name) = match self.sent {
            0 if since >= GRACE => (Signal::TERM, "SIGTERM"),
            1 if since >= 2 * GRACE => (Signal::KILL, "SIGKILL"),
            _ => return,
        };
        self.sent += 1;
        if self.workload.is_none() {
            self.workload = Workload::of(perf);
        }
        if let Some(w) = &self.workload {
            if w.signal(signal) {
                crate::say!(
                    "rust-flamegraph: `{program}` is still running {:.1} s after it was asked \
                     to stop: sending it {name}",
                    since.as_secs_f64()
                );
            }
        }
    }
}

/// perf's child (the program), held by a pidfd so that a reused pid is never hit.
pub(crate) struct Workload {
    pub(crate) pid: u32,
    pub(crate) pidfd: Option<OwnedFd>,
}

impl Workload {
    /// perf's child, if it still has one. perf is our unreaped child.
    pub(crate) fn of(perf: u32) -> Option<Workload> {
        proc::children(perf).into_iter().find_map(|pid| {
            let pidfd = Pid::from_raw(i32::try_from(pid).ok()?).and_then(|p| {
                rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()
            });
            // perf may have reaped it and the pid been reused before pidfd_open.
            (proc::stat(pid).map(|st| st.ppid) == Some(perf)).then_some(Workload { pid, pidfd })
        })
    }

    /// Sends `signal` unless the process has exited; whether it was sent.
    pub(crate) fn signal(&self, signal: Signal) -> bool {
        if proc::stat(self.pid).is_none_or(|st| st.exited()) {
            return false;
        }
        match &self.pidfd {
            Some(fd) => rustix::process::pidfd_send_signal(fd, signal).is_ok(),
            // No pidfds (Linux < 5.3): the parent check just made is the guard.
            None => {
                interrupt::send(self.pid, signal.as_raw());
                true
            }
        }
    }
}

pub(crate) fn program_name(cmd: &[OsString]) -> String {
    cmd.first()
        .map(|p| crate::model::text::printable(&p.to_string_lossy()).into_owned())
        .unwrap_or_default()
}

/// Makes `fd` (ours, close-on-exec) open in `cmd`'s process under the same number.
pub(crate) fn inherit(cmd: &mut std::process::Command, fd: RawFd) {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec, only fcntl on a descriptor that the
    // parent keeps open until the spawn returns; async-signal-safe, no allocation.
    unsafe {
        cmd.pre_exec(move || {
            let fd = std::os::fd::BorrowedFd::borrow_raw(fd);
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
            Ok(())
        })
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_message_names_the_option_only_when_it_was_given() {
        let data = Path::new("/tmp/rust-flamegraph-1-x/perf.data");
        let given = RecordOptions {
            max_perf_data: Some(8),
            ..RecordOptions::default()
        };
        let m = limit_message(&given, data.parent(), 8_100_000);
        assert!(
            m.contains("reached 8 MB, the limit (--max-perf-data 8)"),
            "{m}"
        );
        let m = limit_message(&RecordOptions::default(), data.parent(), 9_000_000_000);
        assert!(
            m.contains("half the free space of /tmp/rust-flamegraph-1-x")
                && m.contains("--max-perf-data to change"),
            "{m}"
        );
        assert!(!m.contains("(--max-perf-data"), "{m}");
        let m = limit_message(&RecordOptions::default(), None, 4_000_000_000);
        assert!(
            m.contains("the default limit (4000 MB; --max-perf-data to change)"),
            "{m}"
        );
    }
}
