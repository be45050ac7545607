//! The exec helper: our own binary, run by perf as its workload, which
//! arranges for the program to die with perf, gives it the user's stderr back,
//! tells us when it starts, and execs it.

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustix::process::Signal;

use crate::exit::Exit;
use crate::sys::interrupt::{self};
use crate::sys::privilege::Privileges;

/// The hidden first argument that runs our binary as the exec helper.
pub const HELPER_ARG: &str = "__exec-with-pdeathsig";

/// Prefix of the helper's reports to us, on perf's stderr.
pub(crate) const MARK: &str = "\u{1}rust-flamegraph-helper:";

/// Set when `main` has called [`exec_helper`]: our binary can be the helper.
pub(crate) static HELPER: AtomicBool = AtomicBool::new(false);

/// Whether `main` called [`exec_helper`], so that our binary can run the program.
pub fn helper_available() -> bool {
    HELPER.load(Ordering::Relaxed)
}

/// To be called first in `main`, before parsing options: in the hidden
/// exec-helper mode (`rust-flamegraph __exec-with-pdeathsig …`, which
/// [`record`](super::session::record) gives perf to run), sets the program up and execs it, and
/// returns only on failure, with the exit code to return. Otherwise returns
/// `None` and enables the helper for [`record`](super::session::record).
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
pub(crate) struct HelperFds {
    /// Where the program's command comes from, when it is not known yet:
    /// each argument ended by a NUL byte.
    pub(crate) argv: Option<RawFd>,
    /// The user's stdout, to give back to the program (perf streaming its
    /// recording gives it perf's stderr instead).
    pub(crate) stdout: Option<RawFd>,
    /// The user's stderr, to give back to the program.
    pub(crate) stderr: Option<RawFd>,
    /// The helper's end of perf's control socket, and perf's end (to close).
    pub(crate) control: Option<(RawFd, RawFd)>,
    /// How the program runs.
    pub(crate) privileges: Privileges,
}

/// `HELPER_ARG <profiler pid> <uid:gid|-> <stdout fd|-> <stderr fd|-> <control fd,perf's fd|-> -- program args…`,
/// or `… --argv-fd=FD` when the command is to be read from FD.
pub(crate) fn helper_command(cmd: &[OsString], fds: HelperFds) -> Vec<OsString> {
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
pub(crate) const ARGV_FD: &str = "--argv-fd=";

/// The program and its arguments: as given, or read from the descriptor.
pub(crate) enum HelperCommand<'a> {
    Given(&'a OsString, &'a [OsString]),
    FromFd(RawFd),
}

/// Parses the helper's arguments (after [`HELPER_ARG`]).
pub(crate) fn helper_args(args: &[OsString]) -> Option<(u32, HelperFds, HelperCommand<'_>)> {
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
pub(crate) fn read_command(fd: RawFd) -> Option<Vec<OsString>> {
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

pub(crate) fn run_helper(args: Vec<OsString>) -> ExitCode {
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
    use std::path::Path;

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
}
