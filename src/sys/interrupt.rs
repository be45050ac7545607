//! Ctrl-C, `docker stop` (SIGTERM) and SIGHUP, by stage of the run:
//!
//! | stage | first signal | second signal |
//! |---|---|---|
//! | [`Stage::Build`] (the default) | aborts: nothing was recorded yet | — |
//! | [`Stage::Recording`] | stops the recording ([`crate::record`] asks perf to stop and, if the program ignores that, ends it); what was recorded is rendered | aborts |
//! | [`Stage::PostProcessing`] | noted: the results are still written | aborts |
//!
//! Aborting kills our children, removes half-written outputs and exits with
//! [`Exit::Interrupted`](crate::exit::Exit::Interrupted).
//!
//! Signals are process-wide, so this state is too. The signal thread never
//! dies: its messages go through [`crate::say!`] (a closed stderr is not an
//! error) and a panic in its handler is caught.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::proc;

/// Where the run is, which decides what the first signal does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Before the recording (options, build): the first signal aborts at once.
    Build,
    /// perf is recording: the first signal stops it and the recording is rendered.
    Recording,
    /// The recording is over: the first signal does not stop the results
    /// from being written.
    PostProcessing,
}

/// What a signal does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Kill our children, remove partial outputs, exit 130.
    Abort,
    /// Stop the recording; render what was recorded.
    StopRecording,
    /// Carry on writing the results.
    Finish,
}

/// What the `nth` signal (1 for the first) does at `stage`.
pub fn action(stage: Stage, nth: u32) -> Action {
    match (stage, nth) {
        (_, 0) | (_, 2..) => Action::Abort,
        (Stage::Build, 1) => Action::Abort,
        (Stage::Recording, 1) => Action::StopRecording,
        (Stage::PostProcessing, 1) => Action::Finish,
    }
}

type Killer = Arc<dyn Fn() + Send + Sync>;

enum Victim {
    /// A pid registered with [`watch_child`]: SIGKILLed with its descendants.
    Tree(u32),
    /// A process group registered with [`watch_group`]: SIGKILLed whole.
    Group(u32),
    /// Whatever the registrant knows how to kill safely (a duct handle).
    Kill(Killer),
}

struct State {
    stage: Stage,
    signals: u32,
    first_signal: i32,
    next_id: u64,
    victims: Vec<(u64, Victim)>,
    /// Files or folders to delete if we abort.
    partial: Vec<(u64, PathBuf)>,
}

static STATE: Mutex<State> = Mutex::new(State {
    stage: Stage::Build,
    signals: 0,
    first_signal: 0,
    next_id: 0,
    victims: Vec::new(),
    partial: Vec::new(),
});

fn state() -> MutexGuard<'static, State> {
    // A panic elsewhere must not stop Ctrl-C from working.
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Installs the SIGINT/SIGTERM/SIGHUP handling (once; later calls do nothing).
///
/// A SIGHUP ignored when we start (`nohup rust-flamegraph …`) stays ignored,
/// for us and for perf and the program, which inherit that: a closed
/// terminal then stops nothing.
pub fn install() -> std::io::Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    let handled: &[i32] = if ignored(SIGHUP) {
        &[SIGINT, SIGTERM]
    } else {
        &[SIGINT, SIGTERM, SIGHUP]
    };
    ONCE.call_once(|| match Signals::new(handled) {
        Ok(mut signals) => {
            let spawned = std::thread::Builder::new()
                .name("signals".into())
                .spawn(move || {
                    for signal in signals.forever() {
                        // Never let one signal's handling end the thread: the
                        // next Ctrl-C must still be handled.
                        let _ = std::panic::catch_unwind(|| on_signal(signal));
                    }
                });
            if let Err(e) = spawned {
                result = Err(e);
            }
        }
        Err(e) => result = Err(e),
    });
    result
}

/// Whether `signal` is ignored (`SIG_IGN`), as `nohup` leaves SIGHUP.
fn ignored(signal: i32) -> bool {
    // SAFETY: sigaction with no new action only reads the current one into
    // `old`, a zeroed sigaction that outlives the call.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

/// Enters `stage`: from now on the first signal does what [`action`] says.
pub fn enter(stage: Stage) {
    state().stage = stage;
}

/// Whether a SIGINT, SIGTERM or SIGHUP has arrived.
pub fn interrupted() -> bool {
    state().signals > 0
}

/// The first SIGINT, SIGTERM or SIGHUP that arrived, if any (a second one
/// aborts the run).
pub fn signal() -> Option<i32> {
    let st = state();
    (st.signals > 0).then_some(st.first_signal)
}

/// A signal's name as people know it: the ones that stop us (Ctrl-C,
/// `docker stop`, a closed terminal) and the ones a program dies of.
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "Ctrl-C (SIGINT)",
        SIGTERM => "SIGTERM",
        SIGHUP => "SIGHUP",
        libc::SIGABRT => "SIGABRT: abort",
        libc::SIGSEGV => "SIGSEGV: segmentation fault",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL: out of memory?",
        _ => "a signal",
    }
}

fn on_signal(signal: i32) {
    let action = {
        let mut st = state();
        st.signals += 1;
        if st.signals == 1 {
            st.first_signal = signal;
        }
        action(st.stage, st.signals)
    };
    match action {
        // `record` sees `interrupted()` and stops perf itself.
        Action::StopRecording => crate::say!(
            "\nrust-flamegraph: {}: stopping the recording; the flamegraph of what was \
             recorded follows (a second Ctrl-C or SIGTERM aborts)",
            signal_name(signal)
        ),
        Action::Finish => crate::say!(
            "\nrust-flamegraph: {}: the recording is complete; finishing the flamegraph \
             (a second Ctrl-C or SIGTERM aborts, losing it)",
            signal_name(signal)
        ),
        Action::Abort => abort(signal),
    }
}

/// Kills what was registered and every child of ours, removes partial
/// outputs, and exits with 130.
fn abort(signal: i32) -> ! {
    // Held until exit: nothing registers or unregisters meanwhile.
    let st = state();
    for (_, victim) in &st.victims {
        match victim {
            Victim::Tree(pid) => kill_tree(*pid),
            Victim::Group(pgid) => kill_group(*pgid),
            Victim::Kill(kill) => kill(),
        }
    }
    // Unregistered children, and descendants of killed ones that we adopted
    // as a child subreaper while recording: give them a moment to be reparented.
    kill_children(&[], Instant::now() + Duration::from_millis(300));
    for (_, path) in &st.partial {
        let _ = if path.is_dir() {
            std::fs::remove_dir_all(path)
        } else {
            std::fs::remove_file(path)
        };
    }
    crate::say!(
        "\nrust-flamegraph: aborted ({}); nothing was written",
        signal_name(signal)
    );
    std::process::exit(crate::exit::Exit::Interrupted.code().into());
}

/// Unregisters what it registered when dropped.
#[derive(Debug)]
#[must_use = "the registration ends when this is dropped"]
pub struct Watch {
    id: u64,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut st = state();
        st.victims.retain(|(id, _)| *id != self.id);
        st.partial.retain(|(id, _)| *id != self.id);
    }
}

fn register(victim: Option<Victim>, path: Option<PathBuf>) -> Watch {
    let mut st = state();
    st.next_id += 1;
    let id = st.next_id;
    if let Some(v) = victim {
        st.victims.push((id, v));
    }
    if let Some(p) = path {
        st.partial.push((id, p));
    }
    Watch { id }
}

/// Registers a running child by pid: an abort SIGKILLs it and its
/// descendants.
///
/// Prefer [`watch_kill`] with a duct handle's `kill` (which cannot hit a
/// reused pid) or a [`Guard`]'s group with [`watch_group`].
pub fn watch_child(pid: u32) -> Watch {
    register(Some(Victim::Tree(pid)), None)
}

/// Registers how to kill a running child, e.g. `move || { let _ = handle.kill(); }`
/// for a shared `duct::Handle`: an abort calls it.
pub fn watch_kill(kill: impl Fn() + Send + Sync + 'static) -> Watch {
    register(Some(Victim::Kill(Arc::new(kill))), None)
}

/// Registers a process group (its leader's pid, e.g. a [`Guard`]'s): an
/// abort SIGKILLs the whole group.
pub fn watch_group(pgid: u32) -> Watch {
    register(Some(Victim::Group(pgid)), None)
}

/// Registers a file or folder that must not survive an abort (a temporary output).
pub fn watch_partial(path: PathBuf) -> Watch {
    register(None, Some(path))
}

/// The hidden first argument that runs our binary as a [`Guard`]'s watchdog.
pub const WATCHDOG_ARG: &str = "__watchdog";

/// A process group that dies with us, even on `kill -9`, grandchildren
/// included (cargo's rustc and build scripts, which a parent death signal on
/// cargo would not reach): its leader is a watchdog, our own binary (see
/// [`run_watchdog`]), that waits for the end of a pipe only we hold, then
/// SIGKILLs its group, itself included. Being in the group, it keeps the
/// group's id from being reused while it waits. Dropping the guard ends the
/// group the same way (what it left running, too) and reaps the watchdog.
#[derive(Debug)]
pub struct Guard {
    pgid: u32,
    watchdog: std::process::Child,
    alive: Option<std::io::PipeWriter>,
}

impl Guard {
    /// Starts the watchdog of a new group, with our binary at `exe`.
    pub fn start(exe: &std::path::Path) -> std::io::Result<Guard> {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let (reader, alive) = std::io::pipe()?;
        let fd = reader.as_raw_fd();
        let mut cmd = std::process::Command::new(exe);
        cmd.arg(WATCHDOG_ARG)
            .arg(fd.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .process_group(0);
        // SAFETY: between fork and exec, one fcntl on a descriptor the
        // parent keeps open until the spawn returns; no allocation.
        unsafe {
            cmd.pre_exec(move || {
                let fd = std::os::fd::BorrowedFd::borrow_raw(fd);
                rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
                Ok(())
            })
        };
        let watchdog = cmd.spawn()?;
        drop(reader);
        Ok(Guard {
            pgid: watchdog.id(),
            watchdog,
            alive: Some(alive),
        })
    }

    /// The group's id, for [`watch_group`].
    pub fn pgid(&self) -> u32 {
        self.pgid
    }

    /// The session led by `sid` (a child that left for a session of its
    /// own, without a terminal: cargo without root) is killed with the
    /// group: every process still in it when the watchdog fires.
    pub fn watch_session(&mut self, sid: u32) {
        use std::io::Write;
        if let Some(alive) = &mut self.alive {
            let _ = writeln!(alive, "{sid}");
        }
    }
}

/// Makes `cmd`'s process join the group `pgid` (a [`Guard`]'s), and die
/// with the spawning thread too ([`die_with_us`]).
pub fn join_group(cmd: &mut std::process::Command, pgid: u32) {
    use std::os::unix::process::CommandExt;
    cmd.process_group(pgid as i32);
    die_with_us(cmd);
}

impl Drop for Guard {
    fn drop(&mut self) {
        drop(self.alive.take());
        let _ = self.watchdog.wait();
    }
}

/// The watchdog's life ([`Guard`]): `args` is the descriptor of the pipe;
/// when it ends (the profiler closed it, or died), SIGKILLs the process
/// group, itself included. Returns only on bad arguments.
pub fn run_watchdog(args: &[std::ffi::OsString]) -> std::process::ExitCode {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    let fd = match args {
        [fd] => fd
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
            .filter(|fd| *fd > 2),
        _ => None,
    };
    let Some(fd) = fd else {
        crate::say!("rust-flamegraph: {WATCHDOG_ARG} is for rust-flamegraph's own use");
        return std::process::ExitCode::from(crate::exit::Exit::Usage.code());
    };
    // SAFETY: the profiler left this descriptor open for us; nothing else here owns it.
    let mut pipe = std::fs::File::from(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
    let mut buf = [0u8; 64];
    // Session ids to end too, one per line ([`Guard::watch_session`]).
    let mut said = Vec::new();
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => said.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let sessions: Vec<u32> = String::from_utf8_lossy(&said)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .filter(|&sid| sid > 1)
        .collect();
    kill_sessions(&sessions);
    let _ = rustix::process::kill_current_process_group(Signal::KILL);
    std::process::ExitCode::from(1)
}

/// SIGKILLs every process whose session is one of `sessions`, again until
/// none is left (they may fork while we look), a bounded number of times.
fn kill_sessions(sessions: &[u32]) {
    if sessions.is_empty() {
        return;
    }
    for _ in 0..20 {
        let mut found = false;
        for pid in proc::pids() {
            let in_session = proc::stat(pid).is_some_and(|st| sessions.contains(&st.session));
            if in_session {
                found = true;
                send(pid, libc::SIGKILL);
            }
        }
        if !found {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Makes `cmd`'s process receive SIGKILL when the thread spawning it exits
/// (we are killed, or exit): perf, cargo must not outlive us.
pub fn die_with_us(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let parent = rustix::process::getpid();
    // SAFETY: the hook runs between fork and exec and only makes raw system
    // calls (prctl, getppid), which are async-signal-safe; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
            // We may have died before the prctl: then nobody would kill this child.
            if rustix::process::getppid() != Some(parent) {
                return Err(rustix::io::Errno::SRCH.into());
            }
            Ok(())
        })
    };
}

/// Sends `signal` to `pid`; a process that is already gone is not an error.
///
/// Only for processes that cannot have been reaped meanwhile (our own
/// children, that the calling thread waits for).
pub fn send(pid: u32, signal: i32) {
    if let (Some(pid), Some(sig)) = (pid_of(pid), Signal::from_named_raw(signal)) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

fn pid_of(pid: u32) -> Option<Pid> {
    Pid::from_raw(i32::try_from(pid).ok()?)
}

fn kill_group(pgid: u32) {
    if let Some(pgid) = pid_of(pgid) {
        let _ = rustix::process::kill_process_group(pgid, Signal::KILL);
    }
}

/// SIGKILLs `pid` and every descendant (for [`watch_child`]'s registrations).
fn kill_tree(pid: u32) {
    for child in proc::children(pid) {
        kill_tree(child);
    }
    send(pid, libc::SIGKILL);
}

/// Our own children (zombies included: they are ours until reaped).
pub(crate) fn our_children() -> Vec<u32> {
    proc::children(std::process::id())
}

/// SIGKILLs and reaps our children other than `keep`, again and again until
/// none is left or `deadline` passes: killing one hands its own children to
/// us when we are a child subreaper. They are our unreaped children when
/// signalled, so no reused pid can be hit (only the calling thread reaps them).
pub(crate) fn kill_children(keep: &[u32], deadline: Instant) {
    loop {
        let victims: Vec<u32> = our_children()
            .into_iter()
            .filter(|p| !keep.contains(p))
            .collect();
        if victims.is_empty() {
            return;
        }
        for &pid in &victims {
            send(pid, libc::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(10));
        reap(&victims);
        if Instant::now() >= deadline {
            return;
        }
    }
}

/// Reaps those of `pids` (our children) that have exited, without waiting.
pub(crate) fn reap(pids: &[u32]) {
    for &pid in pids {
        if let Some(pid) = pid_of(pid) {
            let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_signal_aborts_only_before_the_recording() {
        assert_eq!(action(Stage::Build, 1), Action::Abort);
        assert_eq!(action(Stage::Recording, 1), Action::StopRecording);
        assert_eq!(action(Stage::PostProcessing, 1), Action::Finish);
        for stage in [Stage::Build, Stage::Recording, Stage::PostProcessing] {
            assert_eq!(action(stage, 2), Action::Abort, "{stage:?}");
            assert_eq!(action(stage, 3), Action::Abort, "{stage:?}");
        }
    }

    #[test]
    fn children_of_a_process_are_found_through_proc() {
        let mut sh = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & wait"])
            .spawn()
            .unwrap();
        let pid = sh.id();
        let mut found = Vec::new();
        // Up to 10 s: on a loaded machine sh may take seconds to fork.
        for _ in 0..500 {
            found = proc::children(pid);
            if !found.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(found.len(), 1, "sleep should be sh's only child");
        kill_tree(pid);
        let status = sh.wait().unwrap();
        assert!(!status.success());
        assert!(proc::children(pid).is_empty());
    }

    #[test]
    fn watches_unregister_when_dropped() {
        let w = watch_partial("/nonexistent/x".into());
        assert!(state().partial.iter().any(|(_, p)| p.ends_with("x")));
        let k = watch_kill(|| {});
        let id = k.id;
        assert!(state().victims.iter().any(|(i, _)| *i == id));
        drop(w);
        drop(k);
        assert!(!state().partial.iter().any(|(_, p)| p.ends_with("x")));
        assert!(!state().victims.iter().any(|(i, _)| *i == id));
    }

    #[test]
    fn a_group_is_killed_whole() {
        use std::os::unix::process::CommandExt;
        let mut sh = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30 & wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = sh.id();
        // Both sleeps are in sh's new group.
        let deadline = Instant::now() + Duration::from_secs(10);
        while proc::children(pgid).len() < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let sleeps = proc::children(pgid);
        assert_eq!(sleeps.len(), 2);
        for &s in &sleeps {
            let pg = rustix::process::getpgid(pid_of(s)).unwrap();
            assert_eq!(pg.as_raw_nonzero().get() as u32, pgid);
        }
        kill_group(pgid);
        assert!(!sh.wait().unwrap().success());
        // The sleeps died too (they were sh's: init or a subreaper reaps them).
        let dead = |s: u32| proc::stat(s).is_none_or(|st| st.exited());
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sleeps.iter().all(|&s| dead(s)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            sleeps.iter().all(|&s| dead(s)),
            "{sleeps:?} outlived their group"
        );
    }
}
