//! Running the target under `perf record`, and ending it cleanly.
//!
//! What holds, however the run ends:
//!
//! - perf is stopped with SIGINT (Ctrl-C, SIGTERM, SIGHUP, `--duration`, the
//!   perf.data limit): it asks the program to stop (SIGTERM), then writes its
//!   data. A program that ignores that is sent SIGTERM again after
//!   [`GRACE`], then SIGKILL after twice that, so that perf can finish well
//!   inside Docker's 10-second grace period. perf itself is never killed by a
//!   stop: its data would be lost.
//! - Nothing the program started outlives the run: we are a child subreaper
//!   while recording, so its orphans (`sleep 1000 &`) become our children,
//!   and are killed when perf has finished.
//! - perf and the program die with us, even on `kill -9`: perf gets a parent
//!   death signal, and so does the program, through our own binary run in a
//!   tiny exec-helper mode ([`exec_helper`], which `main` must call first).
//! - perf's own messages come to us (the program keeps the real stderr
//!   through the helper): when perf fails before the program runs, the error
//!   says why, and nothing is post-processed. A closed stderr cannot kill perf.
//!
//! All of it runs on the calling thread (the main thread), which waits for
//! perf with timeouts: no monitor thread can die and leave a stop undone.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, PipeReader, PipeWriter, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rustix::process::{Pid, Signal};

use crate::cli::CallGraph;
use crate::exit::Exit;
use crate::interrupt::{self, Stage};
use crate::perf::{self, Perf, Subject};
use crate::privilege::Privileges;

/// How long a program has to end once asked to stop, before it is sent
/// SIGTERM (and SIGKILL after twice this).
pub const GRACE: Duration = Duration::from_millis(1500);

/// How often the recording is checked (deadline, perf.data size, signals).
const POLL: Duration = Duration::from_millis(50);

/// The hidden first argument that runs our binary as the exec helper.
pub const HELPER_ARG: &str = "__exec-with-pdeathsig";

/// Prefix of the helper's reports to us, on perf's stderr.
const MARK: &str = "\u{1}rust-flamegraph-helper:";

/// The pipe perf streams its recording through (`-o -`) holds this much
/// where allowed (root; pages are taken only when filled), else 1 MiB: room
/// for 1,000 samples of DWARF stack copies (60), should the reader fall
/// behind while the other core is busy: perf, blocked on a full pipe, would
/// lose samples.
const STREAM_PIPE_BYTES: [usize; 2] = [16 << 20, 1 << 20];

/// Set when `main` has called [`exec_helper`]: our binary can be the helper.
static HELPER: AtomicBool = AtomicBool::new(false);

/// Why the recording ended before the program did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Ctrl-C, SIGTERM or SIGHUP.
    Interrupted,
    /// `--duration` elapsed.
    Duration,
    /// perf.data reached its limit.
    SizeLimit,
    /// perf was attached to a running process (`--pid`), which is never ours
    /// to run to its end: it exited, or perf was stopped.
    Detached,
}

/// What a recording left behind.
#[derive(Debug)]
pub struct Recording {
    /// perf's exit status: the workload's own (perf passes on its exit code,
    /// and re-raises the signal that killed it).
    pub status: ExitStatus,
    /// Wall time from start to the end of perf.
    pub wall: Duration,
    /// Stopped by us rather than by the workload ending: `stop.is_some()`.
    pub stopped: bool,
    /// Why the recording was stopped, if it was.
    pub stop: Option<StopReason>,
    /// Bytes perf streamed to us ([`record_streaming`]); `None` for a perf.data file.
    pub streamed: Option<u64>,
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

/// How perf records.
#[derive(Debug, Clone)]
pub struct RecordOptions {
    /// Sampling frequency in Hz.
    pub freq: u32,
    /// How stacks are walked.
    pub call_graph: CallGraph,
    /// Stop recording after this long.
    pub duration: Option<Duration>,
    /// Stop when perf.data reaches this many MB (default: [`limit_of`]).
    pub max_perf_data: Option<u64>,
    /// Extra arguments for `perf record`, split on whitespace.
    pub cmd: Option<String>,
    /// How the program runs (through the exec helper): as root, without
    /// capabilities, as [`crate::privilege`] decides.
    pub privileges: Privileges,
}

impl Default for RecordOptions {
    fn default() -> Self {
        RecordOptions {
            freq: crate::defaults::FREQ,
            call_graph: crate::defaults::CALL_GRAPH,
            duration: None,
            max_perf_data: None,
            cmd: None,
            privileges: Privileges::Keep,
        }
    }
}

/// The ceiling for perf.data in `dir`: `--max-perf-data`, else [`limit_of`]
/// its free space.
pub fn perf_data_limit(opts: &RecordOptions, dir: &Path) -> u64 {
    limit_of(opts.max_perf_data, free_space(dir))
}

/// The ceiling for perf.data, in bytes: `max_mb` when given, else half of
/// `free` bytes (no limit when unknown), at most [`MAX_DEFAULT_LIMIT`].
pub fn limit_of(max_mb: Option<u64>, free: Option<u64>) -> u64 {
    match max_mb {
        Some(mb) => mb.saturating_mul(1_000_000),
        None => (free.unwrap_or(u64::MAX) / 2).min(MAX_DEFAULT_LIMIT),
    }
}

/// The default perf.data ceiling never exceeds 4 GB.
pub const MAX_DEFAULT_LIMIT: u64 = 4_000_000_000;

fn free_space(dir: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
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
                let sink = Sink::Stream { writer, streamed };
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
    let size = match &sink {
        Sink::File(data) => Size::File(data),
        Sink::Stream { streamed, .. } => Size::Streamed(streamed),
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
    };
    let (waited, stop) = running.wait(monitor, &program);
    let wall = running.start.elapsed();
    if launch.is_some() {
        // What the program left running (`sleep 1000 &`) ends with it.
        interrupt::kill_children(&running.before, Instant::now() + Duration::from_secs(2));
        let _ = rustix::process::set_child_subreaper(None);
    }
    let status = waited.context("waiting for perf record")?;
    let stop = stop
        .or_else(|| interrupt::interrupted().then_some(StopReason::Interrupted))
        .or_else(|| launch.is_none().then_some(StopReason::Detached));
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
                crate::say!("{}", crate::summary::printable(&line));
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
        stopped: stop.is_some(),
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
        let control = if use_helper && control_supported(perf, opts) {
            UnixStream::pair().ok()
        } else {
            None
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
        if let (Some((perfs, _)), Subject::Launch(cmd)) = (&control, &subject) {
            // Before `-- command…`, which ends the arguments.
            let at = args.len() - cmd.len() - 1;
            let fd = perfs.as_raw_fd();
            let control_args = ["-D", "-1", "--control", &format!("fd:{fd},{fd}")];
            args.splice(at..at, control_args.map(OsString::from));
        }
        if verbose {
            crate::say!(
                "rust-flamegraph: running {} {}",
                perf.path.display(),
                crate::target::join_args(&args)
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

/// The error for a perf that failed on its own, before running anything.
fn perf_failure(
    status: ExitStatus,
    said: &[String],
    usage: bool,
    extra: Option<&str>,
) -> anyhow::Error {
    let reason: Vec<&str> = said
        .iter()
        .map(|l| {
            let l = l.trim();
            l.strip_prefix("Error:").map_or(l, str::trim)
        })
        .filter(|l| !l.is_empty())
        .collect();
    let reason = if reason.is_empty() {
        "see perf's message above".to_string()
    } else {
        reason.join("\n  ")
    };
    match (usage || status.code() == Some(129), extra) {
        (true, Some(extra)) => Exit::Usage.error(format!(
            "perf record rejected the extra arguments given with --cmd (`{}`): {reason}",
            extra.trim()
        )),
        (true, None) => Exit::Perf.error(format!("perf record rejected its arguments: {reason}")),
        (false, _) if said.iter().all(|l| l.trim().is_empty()) => Exit::Perf.error(format!(
            "perf record failed ({status}) before recording anything, without saying why; \
                 `--cmd -v` shows perf's details"
        )),
        (false, Some(extra)) => Exit::Perf.error(format!(
            "perf record failed ({status}) with the extra arguments of --cmd (`{}`): {reason}",
            extra.trim()
        )),
        (false, None) => Exit::Perf.error(format!("perf record failed ({status}): {reason}")),
    }
}

/// Decides when the recording must stop: a signal, the deadline, the size limit.
struct Monitor<'a> {
    opts: &'a RecordOptions,
    size: Size<'a>,
    limit: u64,
    start: Instant,
    warned: bool,
}

impl Monitor<'_> {
    fn check(&mut self) -> Option<StopReason> {
        if interrupt::interrupted() {
            // The signal thread has said so.
            return Some(StopReason::Interrupted);
        }
        if let Some(d) = self.opts.duration {
            if self.start.elapsed() >= d {
                crate::say!(
                    "rust-flamegraph: --duration {:.1}s reached: stopping the recording",
                    d.as_secs_f64()
                );
                return Some(StopReason::Duration);
            }
        }
        let size = match self.size {
            Size::File(data) => std::fs::metadata(data).map(|m| m.len()).unwrap_or(0),
            Size::Streamed(streamed) => streamed.load(Ordering::Relaxed),
        };
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
            return Some(StopReason::SizeLimit);
        }
        None
    }
}

/// How big the recording is: perf.data's size, or the bytes streamed.
#[derive(Clone, Copy)]
enum Size<'a> {
    File(&'a Path),
    Streamed(&'a AtomicU64),
}

/// What is said when perf.data reaches its limit: which limit, and how to
/// change it. `dir` is the folder whose free space set the default limit
/// (`None` when streaming: nothing is written there).
fn limit_message(opts: &RecordOptions, dir: Option<&Path>, size: u64) -> String {
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
struct Escalation {
    sent: u8,
    workload: Option<Workload>,
}

impl Escalation {
    fn step(&mut self, perf: u32, since: Duration, program: &str) {
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
struct Workload {
    pid: u32,
    pidfd: Option<OwnedFd>,
}

impl Workload {
    /// perf's child, if it still has one. perf is our unreaped child.
    fn of(perf: u32) -> Option<Workload> {
        interrupt::children(perf).into_iter().find_map(|pid| {
            let pidfd = Pid::from_raw(i32::try_from(pid).ok()?).and_then(|p| {
                rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()
            });
            // perf may have reaped it and the pid been reused before pidfd_open.
            (parent_of(pid) == Some(perf)).then_some(Workload { pid, pidfd })
        })
    }

    /// Sends `signal` unless the process has exited; whether it was sent.
    fn signal(&self, signal: Signal) -> bool {
        if state_of(self.pid).is_none_or(|s| s == 'Z' || s == 'X') {
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

use crate::interrupt::stat_fields;

fn state_of(pid: u32) -> Option<char> {
    stat_fields(pid)?.first()?.chars().next()
}

fn parent_of(pid: u32) -> Option<u32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

fn program_name(cmd: &[OsString]) -> String {
    cmd.first()
        .map(|p| crate::summary::printable(&p.to_string_lossy()).into_owned())
        .unwrap_or_default()
}

/// Makes `fd` (ours, close-on-exec) open in `cmd`'s process under the same number.
fn inherit(cmd: &mut std::process::Command, fd: RawFd) {
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

// ---------------------------------------------------------------------------
// perf's stderr

/// What perf said on its stderr, as far as we keep it.
#[derive(Debug, Default)]
struct PerfSaid {
    /// The helper ran: perf had started recording and let the program go.
    started: bool,
    /// The helper could not run the program.
    exec_error: Option<String>,
    /// perf printed its usage (an option it does not know).
    usage: bool,
    /// Lines not passed on yet: until the program started (all of them when
    /// attaching), at most [`HELD`].
    held: Vec<String>,
    /// EOF: perf (and whatever held its stderr) has exited.
    done: bool,
    /// Inside perf's warning about hidden kernel symbols (blank lines too).
    in_kernel_warning: bool,
}

/// The lines of perf's warnings about hidden kernel symbols (perf 6.1–6.12).
const KERNEL_MAPS_WARNING: &[&str] = &[
    "WARNING: Kernel address maps (/proc/{kallsyms,modules}) are restricted,",
    "check /proc/sys/kernel/kptr_restrict and /proc/sys/kernel/perf_event_paranoid.",
    "Samples in kernel functions may not be resolved if a suitable vmlinux",
    "file is not found in the buildid cache or in the vmlinux path.",
    "Samples in kernel modules won't be resolved at all.",
    "If some relocation was applied (e.g. kexec) symbols may be misresolved",
    "even with a suitable vmlinux or kallsyms file.",
    "Couldn't record kernel reference relocation symbol",
    "Symbol resolution may be skewed if relocation was used (e.g. kexec).",
    "Check /proc/kallsyms permission or run as root.",
];

const HELD: usize = 200;

impl PerfSaid {
    /// Takes one line of perf's stderr; returns what to print now.
    fn take(&mut self, line: String) -> Vec<String> {
        if let Some(report) = line.strip_prefix(MARK) {
            if report == "started" {
                self.started = true;
                return std::mem::take(&mut self.held);
            }
            if let Some(err) = report.strip_prefix("exec-failed:") {
                self.exec_error = Some(err.to_string());
            }
            return Vec::new();
        }
        let t = line.trim_start();
        // perf's `-D -1` messages: the helper's business, not the user's.
        if matches!(t.trim_end(), "Events disabled" | "Events enabled") {
            return Vec::new();
        }
        // arm64: perf's warning that the registers we name are fewer than
        // all (they are what the unwinder reads: `perf::ARM64_UNWIND_REGS`).
        if t.starts_with(
            "WARNING: The use of --call-graph=dwarf may require all the user registers",
        ) {
            return Vec::new();
        }
        // perf's warnings that kernel symbols are hidden (15 lines): the
        // summary says it in one, with the fix, when kernel frames show.
        if KERNEL_MAPS_WARNING.contains(&t.trim_end()) || t.starts_with("[ perf record: Woken up") {
            self.in_kernel_warning = true;
            return Vec::new();
        }
        if self.in_kernel_warning && t.trim().is_empty() {
            return Vec::new();
        }
        self.in_kernel_warning = false;
        // Streaming, perf counts no bytes ("wrote 0.000 MB - ]"): we say
        // how much we read.
        if t.starts_with("[ perf record: Captured and wrote") && t.ends_with(" - ]") {
            return Vec::new();
        }
        if self.usage || t.starts_with("Usage: perf record") || t.starts_with("usage: perf record")
        {
            // perf's whole option list: its error line came before.
            self.usage = true;
            return Vec::new();
        }
        if self.started {
            return vec![line];
        }
        if self.held.len() == HELD {
            self.held.remove(0);
        }
        self.held.push(line);
        Vec::new()
    }
}

/// Reads perf's stderr on a thread of its own, passing lines on (to a
/// stderr that may be closed: that must not block or kill perf).
struct Relay {
    shared: Arc<(Mutex<PerfSaid>, Condvar)>,
}

impl Relay {
    /// Lines are held until the helper says the program started (they are
    /// perf's reason when it fails before): when attaching, until perf ends.
    fn start(stream: UnixStream) -> Result<Relay> {
        let shared = Arc::new((Mutex::new(PerfSaid::default()), Condvar::new()));
        let theirs = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("perf-stderr".into())
            .spawn(move || {
                let lock = || theirs.0.lock().unwrap_or_else(|e| e.into_inner());
                let mut reader = BufReader::new(stream);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match reader.read_until(b'\n', &mut buf) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    }
                    let line = String::from_utf8_lossy(&buf)
                        .trim_end_matches(['\n', '\r'])
                        .to_string();
                    let print = lock().take(line);
                    for l in print {
                        crate::say!("{}", crate::summary::printable(&l));
                    }
                }
                lock().done = true;
                theirs.1.notify_all();
            })
            .context("cannot start a thread to read perf's messages")?;
        Ok(Relay { shared })
    }

    /// Waits up to `timeout` for the end of perf's stderr, then returns what it said.
    fn finish(self, timeout: Duration) -> PerfSaid {
        let (lock, cvar) = &*self.shared;
        let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        let (mut said, _) = cvar
            .wait_timeout_while(guard, timeout, |s| !s.done)
            .unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *said)
    }
}

// ---------------------------------------------------------------------------
// The exec helper

/// Whether `main` called [`exec_helper`], so that our binary can run the program.
pub fn helper_available() -> bool {
    HELPER.load(Ordering::Relaxed)
}

/// To be called first in `main`, before parsing options: in the hidden
/// exec-helper mode (`rust-flamegraph __exec-with-pdeathsig …`, which
/// [`record`] gives perf to run), sets the program up and execs it, and
/// returns only on failure, with the exit code to return. Otherwise returns
/// `None` and enables the helper for [`record`].
///
/// The helper, run by perf as its workload: asks for SIGKILL when perf dies
/// (perf dies with us), gives the program the user's stderr back (perf's is
/// ours), reports to us on perf's stderr that the program is starting (so
/// perf is recording) or why it cannot, and execs it.
pub fn exec_helper() -> Option<ExitCode> {
    let mut args = std::env::args_os().skip(1);
    match args.next() {
        Some(mode) if mode == HELPER_ARG => Some(run_helper(args.collect())),
        Some(mode) if mode == interrupt::WATCHDOG_ARG => {
            Some(interrupt::run_watchdog(&args.collect::<Vec<_>>()))
        }
        _ => {
            HELPER.store(true, Ordering::Relaxed);
            None
        }
    }
}

/// Our own binary, to run as the exec helper or a watchdog: by its path,
/// or through `/proc` when it was replaced or deleted since we started.
pub(crate) fn our_exe() -> PathBuf {
    match std::env::current_exe() {
        Ok(p) if p.is_file() => p,
        _ => PathBuf::from(format!("/proc/{}/exe", std::process::id())),
    }
}

/// Descriptors the helper gets from us through perf.
#[derive(Debug, Clone, Default)]
struct HelperFds {
    /// Where the program's command comes from, when it is not known yet:
    /// each argument ended by a NUL byte.
    argv: Option<RawFd>,
    /// The user's stdout, to give back to the program (perf streaming its
    /// recording gives it perf's stderr instead).
    stdout: Option<RawFd>,
    /// The user's stderr, to give back to the program.
    stderr: Option<RawFd>,
    /// The helper's end of perf's control socket, and perf's end (to close).
    control: Option<(RawFd, RawFd)>,
    /// How the program runs.
    privileges: Privileges,
}

/// `HELPER_ARG <profiler pid> <uid:gid|-> <stdout fd|-> <stderr fd|-> <control fd,perf's fd|-> -- program args…`,
/// or `… --argv-fd=FD` when the command is to be read from FD.
fn helper_command(cmd: &[OsString], fds: HelperFds) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec![
        our_exe().into(),
        HELPER_ARG.into(),
        std::process::id().to_string().into(),
        fds.privileges.to_arg(),
        fds.stdout
            .map_or("-".to_string(), |fd| fd.to_string())
            .into(),
        fds.stderr
            .map_or("-".to_string(), |fd| fd.to_string())
            .into(),
        fds.control
            .map_or("-".to_string(), |(ours, perfs)| format!("{ours},{perfs}"))
            .into(),
    ];
    match fds.argv {
        Some(fd) => v.push(format!("{ARGV_FD}{fd}").into()),
        None => {
            v.push("--".into());
            v.extend(cmd.iter().cloned());
        }
    }
    v
}

/// The helper's last argument when it reads the command from a descriptor.
const ARGV_FD: &str = "--argv-fd=";

/// The program and its arguments: as given, or read from the descriptor.
enum HelperCommand<'a> {
    Given(&'a OsString, &'a [OsString]),
    FromFd(RawFd),
}

/// Parses the helper's arguments (after [`HELPER_ARG`]).
fn helper_args(args: &[OsString]) -> Option<(u32, HelperFds, HelperCommand<'_>)> {
    let [profiler, privileges, stdout, stderr, control, dashes, tail @ ..] = args else {
        return None;
    };
    let fd = |s: &str| s.parse::<RawFd>().ok().filter(|fd| *fd > 2);
    let (argv, command) = match (dashes.to_str().and_then(|d| d.strip_prefix(ARGV_FD)), tail) {
        (Some(n), []) => {
            let n = fd(n)?;
            (Some(n), HelperCommand::FromFd(n))
        }
        (None, [program, rest @ ..]) if dashes == "--" => {
            (None, HelperCommand::Given(program, rest))
        }
        _ => return None,
    };
    let stdio = |s: &OsString| match s.to_str()? {
        "-" => Some(None),
        n => Some(Some(fd(n)?)),
    };
    let (stdout, stderr) = (stdio(stdout)?, stdio(stderr)?);
    let control = match control.to_str()? {
        "-" => None,
        pair => {
            let (ours, perfs) = pair.split_once(',')?;
            Some((fd(ours)?, fd(perfs)?))
        }
    };
    Some((
        profiler.to_str()?.parse().ok()?,
        HelperFds {
            argv,
            stdout,
            stderr,
            control,
            privileges: Privileges::from_arg(privileges.to_str()?)?,
        },
        command,
    ))
}

/// Reads a command, each argument ended by a NUL byte, from `fd` (ours to
/// close) until its end; `None` when nothing came (the run was called off).
fn read_command(fd: RawFd) -> Option<Vec<OsString>> {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    use std::os::unix::ffi::OsStringExt;
    // SAFETY: the profiler opened this descriptor for us and perf passed it
    // on; nothing else in this process owns it.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    let command: Vec<OsString> = bytes
        .split(|b| *b == 0)
        .take(bytes.iter().filter(|b| **b == 0).count())
        .map(|arg| OsString::from_vec(arg.to_vec()))
        .collect();
    (!command.is_empty()).then_some(command)
}

fn run_helper(args: Vec<OsString>) -> ExitCode {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    use std::os::unix::process::CommandExt;
    let parent = rustix::process::getppid();
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
    let Some((profiler, fds, command)) = helper_args(&args) else {
        crate::say!("rust-flamegraph: {HELPER_ARG} is for rust-flamegraph's own use");
        return ExitCode::from(Exit::Usage.code());
    };
    // perf died before the death signal was set: we were handed to the
    // profiler (a subreaper) or to init. Nobody records this run.
    let now = rustix::process::getppid();
    if now != parent || now.is_some_and(|p| p.as_raw_nonzero().get() as u32 == profiler) {
        return ExitCode::from(1);
    }
    // Started before the program was built: wait for its command; none
    // means the build failed, and the profiler is ending perf.
    let read;
    let (program, rest) = match command {
        HelperCommand::Given(program, rest) => (program, rest),
        HelperCommand::FromFd(fd) => match read_command(fd) {
            Some(command) => {
                read = command;
                (&read[0], &read[1..])
            }
            None => return ExitCode::from(1),
        },
    };
    // Reports to the profiler go to perf's stderr (the profiler's socket);
    // close-on-exec, so that the program does not get it.
    let mut report = rustix::io::fcntl_dupfd_cloexec(std::io::stderr(), 3)
        .ok()
        .map(std::fs::File::from);
    // SAFETY (both blocks): the profiler opened these descriptors for us and
    // perf passed them on; nothing else in this process owns them.
    if let Some(fd) = fds.stdout {
        let user = unsafe { OwnedFd::from_raw_fd(fd) };
        let _ = rustix::stdio::dup2_stdout(&user);
    }
    if let Some(fd) = fds.stderr {
        let user = unsafe { OwnedFd::from_raw_fd(fd) };
        let _ = rustix::stdio::dup2_stderr(&user);
    }
    if let Some((ours, perfs)) = fds.control {
        drop(unsafe { OwnedFd::from_raw_fd(perfs) });
        let mut control = unsafe { UnixStream::from_raw_fd(ours) };
        // perf answers "ack" once sampling is on; it cannot take long, but
        // a perf that never answers must not keep the program from running.
        let _ = control.set_read_timeout(Some(Duration::from_secs(5)));
        if control.write_all(b"enable\n").is_ok() {
            let mut ack = [0u8; 16];
            let _ = control.read(&mut ack);
        }
    }
    let mut say = |what: &str| match &mut report {
        Some(r) => {
            let _ = writeln!(r, "{MARK}{what}");
        }
        None => crate::say!("rust-flamegraph: {what}"),
    };
    say("started");
    // perf is attached and sampling: the program runs without root (and
    // perf, root, samples it all the same).
    let mut cmd = std::process::Command::new(program);
    cmd.args(rest);
    fds.privileges.apply(&mut cmd);
    let err = cmd.exec();
    say(&format!("exec-failed:{err}"));
    ExitCode::from(if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
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
            stop: stopped.then_some(StopReason::Interrupted),
            streamed: None,
        }
    }

    #[test]
    fn the_perf_data_limit_is_the_option_or_half_the_free_space() {
        assert_eq!(limit_of(Some(5), Some(1 << 40)), 5_000_000);
        assert_eq!(limit_of(Some(u64::MAX), None), u64::MAX);
        assert_eq!(limit_of(None, Some(1_000_000_000)), 500_000_000);
        assert_eq!(limit_of(None, Some(100_000_000_000)), 4_000_000_000);
        assert_eq!(limit_of(None, None), 4_000_000_000);
        assert_eq!(limit_of(None, Some(400_000)), 200_000);
        // The free space itself is read from the file system.
        assert!(free_space(Path::new("/tmp")).is_some_and(|f| f > 0));
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

    #[test]
    fn perf_lines_are_held_until_the_program_starts_and_usage_is_dropped() {
        let mut said = PerfSaid::default();
        assert!(said.take("WARNING: early".into()).is_empty());
        assert_eq!(said.take(format!("{MARK}started")), ["WARNING: early"]);
        assert_eq!(
            said.take("[ perf record: done ]".into()),
            ["[ perf record: done ]"]
        );

        let mut said = PerfSaid::default();
        said.take(format!("{MARK}started"));
        assert!(said
            .take("WARNING: The use of --call-graph=dwarf may require all the user registers, specifying a subset with --user-regs may render DWARF unwinding unreliable, so the minimal registers set (IP, SP) is explicitly forced.".into())
            .is_empty());

        let mut said = PerfSaid::default();
        said.take("  Error: unknown option `bogus-flag'".into());
        said.take(String::new());
        said.take(" Usage: perf record [<options>] [<command>]".into());
        said.take("    -a, --all-cpus   system-wide".into());
        assert!(said.usage && !said.started);
        let err = perf_failure(
            ExitStatus::from_raw(129 << 8),
            &said.held,
            said.usage,
            Some("--bogus-flag"),
        );
        assert_eq!(Exit::of(&err), Exit::Usage);
        assert_eq!(
            err.to_string(),
            "perf record rejected the extra arguments given with --cmd (`--bogus-flag`): \
             unknown option `bogus-flag'"
        );

        let mut said = PerfSaid::default();
        said.take(format!("{MARK}started"));
        said.take(format!(
            "{MARK}exec-failed:No such file or directory (os error 2)"
        ));
        assert_eq!(
            said.exec_error.as_deref(),
            Some("No such file or directory (os error 2)")
        );
    }

    #[test]
    fn perfs_kernel_symbol_warning_is_dropped_and_its_errors_kept() {
        let mut said = PerfSaid {
            started: true,
            ..PerfSaid::default()
        };
        let mut shown = Vec::new();
        let text = "WARNING: Kernel address maps (/proc/{kallsyms,modules}) are restricted,\n\
check /proc/sys/kernel/kptr_restrict and /proc/sys/kernel/perf_event_paranoid.\n\
\n\
Samples in kernel functions may not be resolved if a suitable vmlinux\n\
file is not found in the buildid cache or in the vmlinux path.\n\
\n\
Samples in kernel modules won't be resolved at all.\n\
\n\
If some relocation was applied (e.g. kexec) symbols may be misresolved\n\
even with a suitable vmlinux or kallsyms file.\n\
\n\
Couldn't record kernel reference relocation symbol\n\
Symbol resolution may be skewed if relocation was used (e.g. kexec).\n\
Check /proc/kallsyms permission or run as root.\n\
[ perf record: Woken up 2 times to write data ]\n\
failed to mmap with 12 (Cannot allocate memory)\n\
[ perf record: Captured and wrote 0.3 MB perf.data ]";
        for line in text.lines() {
            shown.extend(said.take(line.to_string()));
        }
        assert_eq!(
            shown,
            [
                "failed to mmap with 12 (Cannot allocate memory)",
                "[ perf record: Captured and wrote 0.3 MB perf.data ]"
            ]
        );
    }

    #[test]
    fn a_silent_perf_failure_says_so() {
        let err = perf_failure(ExitStatus::from_raw(255 << 8), &[], false, None);
        assert_eq!(Exit::of(&err), Exit::Perf);
        assert!(err.to_string().contains("without saying why"), "{err}");
        let said = ["Couldn't create thread/CPU maps: No such process".to_string()];
        let err = perf_failure(ExitStatus::from_raw(244 << 8), &said, false, None);
        assert!(err.to_string().ends_with("No such process"), "{err}");
    }

    #[test]
    fn the_helper_command_wraps_the_program_and_parses_back() {
        let cmd = [OsString::from("prog"), OsString::from("--x")];
        let fds = HelperFds {
            argv: None,
            stdout: Some(6),
            stderr: Some(7),
            control: Some((8, 9)),
            privileges: Privileges::Keep,
        };
        let v = helper_command(&cmd, fds);
        let s: Vec<String> = v.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(s[1], HELPER_ARG);
        assert_eq!(s[2], std::process::id().to_string());
        assert_eq!(&s[3..], ["-", "6", "7", "8,9", "--", "prog", "--x"]);
        assert!(Path::new(&s[0]).exists());
        let (pid, back, command) = helper_args(&v[2..]).unwrap();
        assert_eq!(pid, std::process::id());
        assert_eq!(
            (back.stdout, back.stderr, back.control),
            (Some(6), Some(7), Some((8, 9)))
        );
        let HelperCommand::Given(program, rest) = command else {
            panic!("the command is given")
        };
        assert_eq!(
            (program.as_os_str(), rest),
            (std::ffi::OsStr::new("prog"), &cmd[1..])
        );
        let none = helper_command(&cmd, HelperFds::default());
        let (_, back, _) = helper_args(&none[2..]).unwrap();
        assert_eq!((back.stdout, back.stderr, back.control), (None, None, None));
        // Started before the program is known: the command comes from a pipe.
        let later = helper_command(
            &[],
            HelperFds {
                argv: Some(5),
                ..HelperFds::default()
            },
        );
        assert_eq!(later.last().unwrap(), "--argv-fd=5");
        let (_, back, command) = helper_args(&later[2..]).unwrap();
        assert_eq!(back.argv, Some(5));
        assert!(matches!(command, HelperCommand::FromFd(5)));
        // Not ours to parse: a missing `--`, stdio descriptors.
        assert!(helper_args(&none[2..5]).is_none());
        let stdio: Vec<OsString> = ["1", "-", "1", "2", "-", "--", "prog"]
            .map(OsString::from)
            .into();
        assert!(helper_args(&stdio).is_none());
    }

    #[test]
    fn the_helper_reads_the_command_it_waits_for() {
        use std::os::fd::IntoRawFd;
        let (reader, mut writer) = std::io::pipe().unwrap();
        writer.write_all(b"prog\0--x\0\0last arg\0").unwrap();
        drop(writer);
        let command = read_command(OwnedFd::from(reader).into_raw_fd()).unwrap();
        assert_eq!(command, ["prog", "--x", "", "last arg"]);
        // Nothing came: the run was called off.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(writer);
        assert_eq!(read_command(OwnedFd::from(reader).into_raw_fd()), None);
    }

    #[test]
    fn perf_versions_are_read() {
        use crate::perf::version_of;
        assert_eq!(version_of("perf version 6.1.187\n"), Some((6, 1)));
        assert_eq!(version_of("perf version 5.4.0-rc3"), Some((5, 4)));
        assert_eq!(version_of("perf version 6.8.12.g1c2e0d\n"), Some((6, 8)));
        assert_eq!(version_of("nonsense"), None);
    }
}
