//! Running the target under `perf record`, and ending it cleanly.
//!
//! What holds, however the run ends:
//!
//! - perf is stopped with SIGINT (Ctrl-C, SIGTERM, SIGHUP, `--duration`, the
//!   perf.data limit): it asks the program to stop (SIGTERM), then writes its
//!   data. A program that ignores that is sent SIGTERM again after
//!   [`GRACE`](super::stop::GRACE), then SIGKILL after twice that, so that perf can finish well
//!   inside Docker's 10-second grace period. perf itself is never killed by a
//!   stop: its data would be lost.
//! - Nothing the program started outlives the run: we are a child subreaper
//!   while recording, so its orphans (`sleep 1000 &`) become our children,
//!   and are killed when perf has finished.
//! - perf and the program die with us, even on `kill -9`: perf gets a parent
//!   death signal, and so does the program, through our own binary run in a
//!   tiny exec-helper mode ([`exec_helper`](super::exec_helper::exec_helper), which `main` must call first).
//! - perf's own messages come to us (the program keeps the real stderr
//!   through the helper): when perf fails before the program runs, the error
//!   says why, and nothing is post-processed. A closed stderr cannot kill perf.
//!
//! All of it runs on the calling thread (the main thread), which waits for
//! perf with timeouts: no monitor thread can die and leave a stop undone.

use std::ffi::OsString;
use std::io::{PipeReader, PipeWriter, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::exec_helper::{helper_available, helper_command, HelperFds};
use super::options::RecordOptions;
use super::perf::{self, Perf, Subject};
use super::perf_stderr::{perf_failure, Relay};
use super::progress::Progress;
use super::stop::{inherit, program_name, Escalation, Monitor, Size, StopReason, POLL};
use super::switch_cap::SwitchCap;
use crate::exit::Exit;
use crate::model::seen::Seen;
use crate::sys::interrupt::{self, Stage};

/// The pipe perf streams its recording through (`-o -`) holds this much
/// where allowed (root; pages are taken only when filled), else 1 MiB: room
/// for 1,000 samples of DWARF stack copies (60), should the reader fall
/// behind while the other core is busy: perf, blocked on a full pipe, would
/// lose samples.
const STREAM_PIPE_BYTES: [usize; 2] = [16 << 20, 1 << 20];

/// What a recording left behind.
#[derive(Debug)]
pub struct Recording {
    /// perf's exit status: the workload's own (perf passes on its exit code,
    /// and re-raises the signal that killed it).
    pub status: ExitStatus,
    /// Wall time from start to the end of perf.
    pub wall: Duration,
    /// Why the recording ended, when the program's own end did not end it.
    pub stop: Option<StopReason>,
    /// Bytes perf streamed to us ([`record_streaming`]); `None` for a perf.data file.
    pub streamed: Option<u64>,
}

impl Recording {
    /// Whether something other than the program's end ended the recording
    /// (then perf's exit status is not the program's verdict).
    pub fn stopped(&self) -> bool {
        self.stop.is_some()
    }

    /// Whether the recording was stopped before the program ended: the
    /// flamegraph misses the rest of the run.
    pub fn stopped_early(&self) -> bool {
        self.stop.is_some_and(StopReason::early)
    }

    /// The workload's failure, if it failed on its own.
    pub fn failure(&self) -> Option<String> {
        use std::os::unix::process::ExitStatusExt;
        if self.stopped() || self.status.success() {
            return None;
        }
        Some(match (self.status.code(), self.status.signal()) {
            (Some(code), _) => format!("exited with status {code}"),
            (_, Some(sig)) => format!(
                "was killed by signal {sig} ({})",
                interrupt::signal_name(sig)
            ),
            _ => self.status.to_string(),
        })
    }
}

/// What perf records.
pub enum Profiled<'a> {
    /// A subject known now.
    Now(Subject<'a>),
    /// A program known once this returns its command (it builds it): perf
    /// starts meanwhile, with the exec helper waiting for the command, so
    /// that perf's start-up overlaps the build. Without the helper, it is
    /// called first.
    Later(Box<dyn FnOnce() -> Result<Vec<OsString>> + 'a>),
}

/// Runs `profiled` under perf, writing samples to `data`; call it from the
/// thread that lives as long as the run (the main thread): perf is killed
/// when that thread exits.
///
/// Enters [`Stage::Recording`] once the program is known, and
/// [`Stage::PostProcessing`] on return, so that a signal after the
/// recording does not lose it. The workload inherits
/// our stdin, stdout and stderr. Ctrl-C, SIGTERM, SIGHUP, `opts.duration` and
/// perf.data reaching `limit` bytes stop the recording; past half the limit,
/// a warning says so. A perf that fails on its own (bad `--cmd` arguments, a
/// program that cannot be run, a pid it cannot attach to) is an error that
/// names perf's reason.
pub fn record(
    perf: &Perf,
    opts: &RecordOptions,
    data: &Path,
    profiled: Profiled,
    limit: u64,
    verbose: bool,
) -> Result<Recording> {
    let result = run_perf(perf, opts, Sink::File(data), profiled, limit, verbose);
    interrupt::enter(Stage::PostProcessing);
    result
}

/// Like [`record`], but perf streams the recording (its pipe format, `perf
/// record -o -`) to `read`, which runs on a thread of its own while the
/// program runs: nothing is written to disk, and what `read` does with the
/// samples is mostly done when the program ends. Returns the recording and
/// what `read` returned, once both have ended.
///
/// `limit` bounds the bytes streamed, as it bounds perf.data in [`record`].
/// Whatever `read` leaves unread is drained, so that perf never waits on a
/// full pipe. When launching, the program needs the exec helper (see
/// [`helper_available`]): perf gives it perf's stderr as stdout in this mode,
/// and the helper puts the user's back.
pub fn record_streaming<T: Send>(
    perf: &Perf,
    opts: &RecordOptions,
    profiled: Profiled,
    limit: u64,
    verbose: bool,
    seen: Option<&Seen>,
    read: impl FnOnce(&mut dyn Read) -> T + Send,
) -> Result<(Recording, T)> {
    let (reader, writer) = std::io::pipe().context("cannot create a pipe for perf's samples")?;
    // Larger than the default 64 KiB: a reader busy naming a new binary's
    // frames, or waiting for the core, must not stall perf.
    for bytes in STREAM_PIPE_BYTES {
        if rustix::pipe::fcntl_setpipe_size(&reader, bytes).is_ok() {
            break;
        }
    }
    let streamed = AtomicU64::new(0);
    let (result, read) = std::thread::scope(|scope| {
        let streamed = &streamed;
        let reading = std::thread::Builder::new()
            .name("samples".into())
            .spawn_scoped(scope, move || {
                let mut input = Counted {
                    inner: reader,
                    count: streamed,
                };
                let out = read(&mut input);
                // Drain: perf must never block on a reader that stopped.
                let _ = std::io::copy(&mut input, &mut std::io::sink());
                out
            });
        let (result, reading) = match reading {
            Ok(handle) => {
                let sink = Sink::Stream {
                    writer,
                    streamed,
                    seen,
                };
                let result = run_perf(perf, opts, sink, profiled, limit, verbose);
                (result, Some(handle))
            }
            Err(e) => (
                Err(anyhow::Error::new(e).context("cannot start a thread to read perf's samples")),
                None,
            ),
        };
        // The program has ended (or was never started): a signal now must
        // not lose what was recorded.
        interrupt::enter(Stage::PostProcessing);
        (result, reading.map(|r| r.join()))
    });
    let recording = result?;
    match read {
        Some(Ok(out)) => Ok((
            Recording {
                streamed: Some(streamed.into_inner()),
                ..recording
            },
            out,
        )),
        _ => Err(Exit::Other.error("the thread reading perf's samples failed")),
    }
}

/// Where perf writes: a file, or the pipe [`record_streaming`] reads.
enum Sink<'a> {
    File(&'a Path),
    Stream {
        writer: PipeWriter,
        streamed: &'a AtomicU64,
        /// What the reader has seen so far: samples for the progress line,
        /// switch stacks for `--off-cpu`'s cap.
        seen: Option<&'a Seen>,
    },
}

/// A reader that counts the bytes read through it.
struct Counted<'a> {
    inner: PipeReader,
    count: &'a AtomicU64,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn run_perf(
    perf: &Perf,
    opts: &RecordOptions,
    sink: Sink,
    profiled: Profiled,
    limit: u64,
    verbose: bool,
) -> Result<Recording> {
    if interrupt::interrupted() {
        return Err(Exit::Interrupted
            .error("interrupted before the recording started; nothing was written"));
    }
    let (size, seen) = match &sink {
        Sink::File(data) => (Size::File(data), None),
        Sink::Stream { streamed, seen, .. } => (Size::Streamed(streamed), *seen),
    };
    let (command, prepare);
    let subject = match profiled {
        Profiled::Now(subject) => {
            prepare = None;
            subject
        }
        Profiled::Later(later) if helper_available() => {
            prepare = Some(later);
            Subject::Launch(&[])
        }
        Profiled::Later(later) => {
            prepare = None;
            command = later()?;
            Subject::Launch(&command)
        }
    };
    if prepare.is_none() {
        interrupt::enter(Stage::Recording);
    }
    let mut running = Running::start(perf, opts, sink, &subject, prepare.is_some(), verbose)?;
    let launched;
    let launch = match (prepare, &subject) {
        (Some(prepare), _) => match prepare() {
            Ok(cmd) => {
                launched = cmd;
                interrupt::enter(Stage::Recording);
                running.release(&launched);
                Some(&launched[..])
            }
            Err(err) => {
                running.cancel();
                return Err(err);
            }
        },
        (None, Subject::Launch(cmd)) => Some(*cmd),
        (None, Subject::Attach(_)) => None,
    };
    let program = launch.map_or_else(String::new, program_name);
    let monitor = Monitor {
        opts,
        size,
        limit,
        start: running.start,
        warned: false,
        progress: Progress::new(opts.progress, seen.map(|s| &s.samples)),
        // Metered where the reader counts the stacks, and perf takes commands.
        switch_cap: match (seen, running.cap_control.take()) {
            (Some(seen), Some(control)) => Some(SwitchCap::new(
                control,
                &seen.switch_stacks,
                crate::defaults::OFF_CPU_STACKS_PER_SECOND,
            )),
            _ => None,
        },
    };
    let (waited, stop) = running.wait(monitor, &program);
    let wall = running.start.elapsed();
    if launch.is_some() {
        // What the program left running (`sleep 1000 &`) ends with it.
        interrupt::kill_children(&running.before, Instant::now() + Duration::from_secs(2));
        let _ = rustix::process::set_child_subreaper(None);
    }
    let status = waited.context("waiting for perf record")?;
    // A signal since the monitor's last look (the terminal's Ctrl-C
    // reaches the program too); else, attached, the process ended.
    let stop = stop
        .or_else(|| interrupt::signal().map(StopReason::Interrupted))
        .or(match &subject {
            Subject::Attach(pid) => Some(StopReason::Detached(*pid)),
            Subject::Launch(_) => None,
        });
    match running.relay {
        Some(relay) => {
            let said = relay.finish(Duration::from_secs(2));
            if let Some(err) = said.exec_error {
                return Err(
                    Exit::Perf.error(format!("perf record could not start `{program}`: {err}"))
                );
            }
            let failed = match launch {
                // The helper ran (so perf was recording), or perf failed.
                Some(_) => !said.started && !status.success(),
                // perf re-raises the signal that stopped it: an exit code is its own error.
                None => status.code().is_some_and(|c| c != 0),
            };
            if failed && stop.is_some() && launch.is_some() {
                return Err(Exit::NoSamples.error(format!(
                    "the recording was stopped before `{program}` started: nothing was recorded"
                )));
            }
            if failed {
                return Err(perf_failure(
                    status,
                    &said.held,
                    said.usage,
                    opts.cmd.as_deref(),
                ));
            }
            for line in said.held {
                crate::say!("{}", crate::model::text::printable(&line));
            }
        }
        // Not captured (no helper): perf printed its usage itself.
        None if status.code() == Some(129) => {
            return Err(perf_failure(status, &[], true, opts.cmd.as_deref()));
        }
        None => {}
    }
    Ok(Recording {
        status,
        wall,
        stop,
        streamed: None,
    })
}

/// A `perf record` we started.
struct Running {
    handle: Arc<duct::Handle>,
    pid: u32,
    /// perf's stderr, when it comes to us.
    relay: Option<Relay>,
    /// Whether perf launched the program (rather than attached to a pid).
    launch: bool,
    /// Our children before perf: not the program's orphans.
    before: Vec<u32>,
    /// When the program was let go.
    start: Instant,
    /// Where the helper waits for the program's command, when perf was
    /// started before it was known.
    argv: Option<PipeWriter>,
    /// Our end of perf's control socket, for `--off-cpu`'s cap.
    cap_control: Option<UnixStream>,
    /// Registered with the interrupt handler, which kills perf on an abort.
    _watch: interrupt::Watch,
}

impl Running {
    /// Starts perf: dying with us, its stderr to us, and (with the helper)
    /// the program run through our exec helper, with the user's stderr.
    /// When launching, makes us a child subreaper.
    fn start(
        perf: &Perf,
        opts: &RecordOptions,
        sink: Sink,
        subject: &Subject,
        deferred: bool,
        verbose: bool,
    ) -> Result<Running> {
        let launch = match subject {
            Subject::Launch(cmd) => Some(*cmd),
            Subject::Attach(_) => None,
        };
        let use_helper = launch.is_some() && helper_available();
        // Without the helper, the program would share perf's captured
        // stderr: leave both on ours.
        let capture = use_helper || launch.is_none();
        // The user's stderr, for the program: the helper puts it back.
        let user_stderr = if use_helper {
            rustix::io::fcntl_dupfd_cloexec(std::io::stderr(), 3).ok()
        } else {
            None
        };
        // Streaming, perf gives the program its stderr as stdout (its own
        // stdout is the stream): the helper puts the user's back.
        let (data, stream) = match sink {
            Sink::File(data) => (data, None),
            Sink::Stream { writer, .. } => (Path::new("-"), Some(writer)),
        };
        let user_stdout = if use_helper && stream.is_some() {
            rustix::io::fcntl_dupfd_cloexec(std::io::stdout(), 3).ok()
        } else {
            None
        };
        // perf starts with its events disabled; the helper enables them just
        // before it execs the program, so that the helper is never sampled.
        // With --off-cpu, we keep an end too, for the cap on switch stacks
        // (attached to a pid, perf's events start enabled: ours alone).
        let capped = opts.off_cpu && stream.is_some() && control_supported(perf, opts) && {
            // perf names one event in a control command from 5.12 on; before,
            // `disable …` would stop every event, the clock samples too.
            perf.version.is_some_and(|v| v >= (5, 12))
        };
        if opts.off_cpu && !capped {
            crate::say!(
                "rust-flamegraph: --off-cpu takes a stack at every switch here, without the \
                 cap of {} a second ({}): a program that switches often may make perf lose records",
                crate::defaults::OFF_CPU_STACKS_PER_SECOND,
                match () {
                    _ if stream.is_none() => "--keep-perf-data writes perf.data directly",
                    _ if perf.version.is_none_or(|v| v < (5, 12)) => "perf is older than 5.12",
                    _ => "--cmd sets perf's delay or control",
                }
            );
        }
        let control = if (use_helper && control_supported(perf, opts)) || capped {
            UnixStream::pair().ok()
        } else {
            None
        };
        let cap_control = match &control {
            Some((_, ours)) if capped => ours.try_clone().ok(),
            _ => None,
        };
        // The helper reads the program's command from here once it is known.
        let argv = if use_helper && deferred {
            Some(std::io::pipe().context("cannot create a pipe for the exec helper")?)
        } else {
            None
        };
        let fds = HelperFds {
            argv: argv.as_ref().map(|(reader, _)| reader.as_raw_fd()),
            stdout: user_stdout.as_ref().map(AsRawFd::as_raw_fd),
            stderr: user_stderr.as_ref().map(AsRawFd::as_raw_fd),
            control: control
                .as_ref()
                .filter(|_| use_helper)
                .map(|(perfs, helpers)| (helpers.as_raw_fd(), perfs.as_raw_fd())),
            privileges: opts.privileges.clone(),
        };
        let wrapped;
        let subject = match (launch, use_helper) {
            (Some(cmd), true) => {
                wrapped = helper_command(cmd, fds.clone());
                Subject::Launch(&wrapped)
            }
            _ => subject.clone(),
        };
        let mut args = perf::record_args(opts, data, &subject);
        match (&control, &subject) {
            (Some((perfs, _)), Subject::Launch(cmd)) => {
                // Before `-- command…`, which ends the arguments. Disabled
                // at first only where the helper is there to enable them.
                let at = args.len() - cmd.len() - 1;
                let fd = perfs.as_raw_fd();
                let control = format!("fd:{fd},{fd}");
                let delay = if use_helper { &["-D", "-1"][..] } else { &[] };
                let control_args = delay.iter().copied().chain(["--control", &control]);
                args.splice(at..at, control_args.map(OsString::from));
            }
            (Some((perfs, _)), Subject::Attach(_)) => {
                let fd = perfs.as_raw_fd();
                args.extend(["--control".into(), format!("fd:{fd},{fd}").into()]);
            }
            _ => {}
        }
        if verbose {
            crate::say!(
                "rust-flamegraph: running {} {}",
                perf.path.display(),
                crate::model::text::join_args(&args)
            );
        }
        let (relay, perf_stderr) = if capture {
            let (ours, theirs) = UnixStream::pair().context("cannot create a socket for perf")?;
            (Some(Relay::start(ours)?), Some(theirs))
        } else {
            (None, None)
        };
        let keep: Vec<RawFd> = fds
            .argv
            .into_iter()
            .chain(fds.stdout)
            .chain(fds.stderr)
            .chain(fds.control.into_iter().flat_map(|(a, b)| [a, b]))
            // Attached, perf's end alone (there is no helper).
            .chain(
                control
                    .as_ref()
                    .filter(|_| !use_helper)
                    .map(|(perfs, _)| perfs.as_raw_fd()),
            )
            .collect();
        let mut expr = duct::cmd(&perf.path, &args)
            .unchecked()
            .before_spawn(move |cmd| {
                interrupt::die_with_us(cmd);
                for &fd in &keep {
                    inherit(cmd, fd);
                }
                Ok(())
            });
        if let Some(theirs) = perf_stderr {
            expr = expr.stderr_file(theirs);
        }
        if let Some(writer) = stream {
            expr = expr.stdout_file(writer);
        }
        let before = if launch.is_some() {
            // Orphans of the program become ours, to be ended with the run.
            let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
            interrupt::our_children()
        } else {
            Vec::new()
        };
        let start = Instant::now();
        let started = expr.start();
        // Our copies of perf's stderr, of the user's and of the control
        // socket: perf has its own.
        let (argv_reader, argv) = argv.unzip();
        drop((expr, argv_reader, user_stdout, user_stderr, control));
        let handle = match started {
            Ok(h) => Arc::new(h),
            Err(e) => {
                let _ = rustix::process::set_child_subreaper(None);
                return Err(e).with_context(|| format!("cannot start {}", perf.path.display()));
            }
        };
        let watch = interrupt::watch_kill({
            let handle = Arc::clone(&handle);
            move || {
                let _ = handle.kill();
            }
        });
        Ok(Running {
            pid: handle.pids()[0],
            handle,
            relay,
            launch: launch.is_some(),
            before,
            start,
            argv,
            cap_control,
            _watch: watch,
        })
    }

    /// Gives the waiting helper the program's command: it runs from now.
    /// A helper that is gone (perf failed) is perf's failure, said by perf.
    fn release(&mut self, command: &[OsString]) {
        use std::os::unix::ffi::OsStrExt;
        if let Some(mut argv) = self.argv.take() {
            let mut bytes = Vec::new();
            for arg in command {
                bytes.extend_from_slice(arg.as_bytes());
                bytes.push(0);
            }
            let _ = argv.write_all(&bytes);
        }
        self.start = Instant::now();
    }

    /// Ends a perf whose program will not come (its build failed): the
    /// helper sees no command and exits, and perf with it.
    fn cancel(self) {
        drop(self.argv);
        if !matches!(
            self.handle.wait_timeout(Duration::from_secs(2)),
            Ok(Some(_))
        ) {
            let _ = self.handle.kill();
        }
        interrupt::kill_children(&self.before, Instant::now() + Duration::from_secs(1));
        let _ = rustix::process::set_child_subreaper(None);
    }

    /// Waits for perf to exit: stops it when `monitor` says so, ends a
    /// program that does not stop, reaps the program's orphans meanwhile.
    fn wait(
        &self,
        mut monitor: Monitor,
        program: &str,
    ) -> (std::io::Result<ExitStatus>, Option<StopReason>) {
        let mut stop = None;
        let mut asked = None;
        let mut escalation = Escalation::default();
        let mut reaped = Instant::now();
        loop {
            match self.handle.wait_timeout(POLL) {
                Ok(Some(out)) => return (Ok(out.status), stop),
                Ok(None) => {}
                Err(e) => return (Err(e), stop),
            }
            if stop.is_none() {
                stop = monitor.check();
                if stop.is_some() {
                    // perf is our child, not reaped yet: only this thread reaps it.
                    interrupt::send(self.pid, libc::SIGINT);
                    asked = Some(Instant::now());
                }
            }
            if !self.launch {
                continue;
            }
            if let Some(asked) = asked {
                escalation.step(self.pid, asked.elapsed(), program);
            }
            if reaped.elapsed() >= Duration::from_secs(1) {
                reaped = Instant::now();
                let orphans: Vec<u32> = interrupt::our_children()
                    .into_iter()
                    .filter(|p| *p != self.pid && !self.before.contains(p))
                    .collect();
                interrupt::reap(&orphans);
            }
        }
    }
}

/// Whether perf can start with its events disabled and enable them on a
/// command (`-D -1 --control`, perf 5.9+), and `--cmd` sets no delay of its own.
fn control_supported(perf: &Perf, opts: &RecordOptions) -> bool {
    let own_delay = opts.cmd.as_deref().is_some_and(|c| {
        c.split_whitespace()
            .any(|a| a.starts_with("-D") || a.starts_with("--delay") || a.starts_with("--control"))
    });
    if own_delay {
        return false;
    }
    perf.version.is_some_and(|v| v >= (5, 9))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn rec(raw: i32, stopped: bool) -> Recording {
        Recording {
            status: ExitStatus::from_raw(raw),
            wall: Duration::ZERO,
            stop: stopped.then_some(StopReason::Interrupted(libc::SIGINT)),
            streamed: None,
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
