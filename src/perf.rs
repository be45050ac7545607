//! Finding perf, checking that it may sample, and the command lines we give it.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::cli::CallGraph;
use crate::exit::Exit;
use crate::record::RecordOptions;

use crate::defaults::DWARF_STACK_BYTES;

/// A working `perf` binary.
#[derive(Debug, Clone)]
pub struct Perf {
    /// Path to the binary (`$PERF`, else `perf` on PATH).
    pub path: PathBuf,
}

impl Perf {
    /// Finds perf and checks that it runs (Ubuntu's wrapper exits non-zero when
    /// the tools for the running kernel are missing).
    pub fn locate() -> Result<Perf> {
        let path = match std::env::var_os("PERF") {
            Some(p) => PathBuf::from(p),
            None => find_on_path("perf").ok_or_else(|| {
                Exit::Perf.error(format!("perf is not installed. {}", install_hint()))
            })?,
        };
        match duct::cmd!(&path, "version")
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
        {
            Ok(out) if out.status.success() => Ok(Perf { path }),
            Ok(out) => Err(Exit::Perf.error(format!(
                "{} does not run: {}\n{}",
                path.display(),
                String::from_utf8_lossy(&out.stderr).trim(),
                install_hint()
            ))),
            Err(e) => Err(Exit::Perf.error(format!(
                "cannot run {}: {e}. {}",
                path.display(),
                install_hint()
            ))),
        }
    }
}

fn install_hint() -> &'static str {
    "Install it: `apt-get install linux-perf` (Debian), \
     `apt-get install linux-tools-generic linux-tools-$(uname -r)` (Ubuntu), \
     `dnf install perf` (Fedora); or set PERF=/path/to/perf."
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Checks that this process may open a sampling event, before anything is
/// built or run, and turns a refusal into the flags or setting that fix it.
///
/// Opens the same software `cpu-clock` event perf will use (user space only,
/// which is what an unprivileged perf falls back to) on this process.
pub fn check_permission() -> Result<()> {
    match open_cpu_clock_event() {
        Ok(()) => Ok(()),
        Err(e) => Err(Exit::Perf.error(permission_message(&e, in_container(), paranoid()))),
    }
}

/// What to tell the user when `perf_event_open` fails with `err`.
pub fn permission_message(err: &io::Error, container: bool, paranoid: Option<i32>) -> String {
    match err.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) if container => format!(
            "perf is not permitted in this container ({err}): add --cap-add PERFMON \
             (Docker 23+) or --cap-add SYS_ADMIN to `docker run`, \
             or `cap_add: [SYS_ADMIN]` in docker-compose.yml"
        ),
        Some(libc::EACCES) | Some(libc::EPERM) => format!(
            "perf is not permitted ({err}; kernel.perf_event_paranoid is {}): \
             run `sudo sysctl kernel.perf_event_paranoid=1`, or run as root",
            paranoid.map_or("unknown".to_string(), |p| p.to_string())
        ),
        Some(libc::ENOSYS) => format!(
            "this kernel has no perf events ({err}): profile on a Linux machine or VM \
             whose kernel has CONFIG_PERF_EVENTS"
        ),
        _ => format!("perf cannot open the cpu-clock event: {err}"),
    }
}

fn open_cpu_clock_event() -> io::Result<()> {
    // struct perf_event_attr, PERF_ATTR_SIZE_VER0 (64 bytes): every kernel
    // with perf accepts it.
    let mut attr = [0u8; 64];
    attr[0..4].copy_from_slice(&1u32.to_ne_bytes()); // type = PERF_TYPE_SOFTWARE
    attr[4..8].copy_from_slice(&64u32.to_ne_bytes()); // size
                                                      // config (8..16) = PERF_COUNT_SW_CPU_CLOCK = 0
    let flags: u64 = 1 | 1 << 5 | 1 << 6; // disabled, exclude_kernel, exclude_hv
    attr[40..48].copy_from_slice(&flags.to_ne_bytes());
    const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
    // SAFETY: attr outlives the call and is a valid VER0 perf_event_attr.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            attr.as_ptr(),
            0 as libc::pid_t,
            -1 as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned to us and is closed once.
    unsafe { libc::close(fd as libc::c_int) };
    Ok(())
}

/// Whether we run inside a container (Docker, Podman).
pub fn in_container() -> bool {
    Path::new("/.dockerenv").exists() || Path::new("/run/.containerenv").exists()
}

fn paranoid() -> Option<i32> {
    std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Where perf samples: a whole program it starts, or a running process.
#[derive(Debug, Clone)]
pub enum Subject<'a> {
    /// Start `program args…` under perf.
    Launch(&'a [OsString]),
    /// Attach to the running process with this pid.
    Attach(u32),
}

/// Arguments of `perf record` (after the `perf` binary).
///
/// Always the software `cpu-clock` event: hardware counters are missing in
/// most VMs (Docker Desktop's among them). `--no-bpf-event` saves about a
/// second of start-up that a user-space profile does not need.
pub fn record_args(opts: &RecordOptions, data: &Path, subject: &Subject) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["record".into(), "-e".into(), "cpu-clock".into()];
    args.push("-F".into());
    args.push(opts.freq.to_string().into());
    args.push("--call-graph".into());
    args.push(match opts.call_graph {
        CallGraph::Fp => "fp".into(),
        CallGraph::Dwarf => format!("dwarf,{DWARF_STACK_BYTES}").into(),
    });
    args.push("--no-bpf-event".into());
    // perf script reads the binaries where they are; copying each one into
    // ~/.debug would grow that folder by a binary per run.
    args.push("--no-buildid-cache".into());
    // Nor the build-id pass at exit, which re-reads the whole recording: we
    // read binaries by path.
    args.push("--no-buildid".into());
    args.push("-o".into());
    args.push(data.into());
    if let Some(extra) = &opts.cmd {
        args.extend(extra.split_whitespace().map(OsString::from));
    }
    match subject {
        Subject::Launch(command) => {
            args.push("--".into());
            args.extend(command.iter().cloned());
        }
        Subject::Attach(pid) => {
            args.push("-p".into());
            args.push(pid.to_string().into());
        }
    }
    args
}

/// Arguments of `perf script` that print the recorded stacks for inferno.
///
/// No `period` field: cpu-clock periods are nanoseconds, and without them
/// inferno counts samples, which is what the flamegraph and summary show.
pub fn script_args(data: &Path, no_inline: bool) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["script".into(), "-i".into(), data.into()];
    args.push("-F".into());
    args.push("comm,pid,tid,time,event,ip,sym,dso".into());
    if no_inline {
        args.push("--no-inline".into());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[OsString]) -> Vec<&str> {
        args.iter().map(|a| a.to_str().unwrap()).collect()
    }

    #[test]
    fn record_uses_cpu_clock_and_puts_the_program_last() {
        let opts = RecordOptions::default();
        let cmd = [OsString::from("demo"), OsString::from("--iters")];
        let args = record_args(&opts, Path::new("/tmp/p.data"), &Subject::Launch(&cmd));
        assert_eq!(
            strings(&args),
            [
                "record",
                "-e",
                "cpu-clock",
                "-F",
                "997",
                "--call-graph",
                "dwarf,16384",
                "--no-bpf-event",
                "--no-buildid-cache",
                "--no-buildid",
                "-o",
                "/tmp/p.data",
                "--",
                "demo",
                "--iters"
            ]
        );
    }

    #[test]
    fn dwarf_extra_args_and_attach() {
        let opts = RecordOptions {
            freq: 99,
            call_graph: CallGraph::Dwarf,
            cmd: Some(" --mmap-pages 64  -q".into()),
            ..RecordOptions::default()
        };
        let args = record_args(&opts, Path::new("d"), &Subject::Attach(42));
        let s = strings(&args);
        assert!(s.contains(&"dwarf,16384"));
        assert!(
            s.ends_with(&["--mmap-pages", "64", "-q", "-p", "42"]),
            "{s:?}"
        );
    }

    #[test]
    fn script_args_pass_no_inline() {
        assert_eq!(
            strings(&script_args(Path::new("d"), false)),
            [
                "script",
                "-i",
                "d",
                "-F",
                "comm,pid,tid,time,event,ip,sym,dso"
            ]
        );
        assert!(strings(&script_args(Path::new("d"), true)).contains(&"--no-inline"));
    }

    #[test]
    fn permission_messages_name_the_fix() {
        let eperm = io::Error::from_raw_os_error(libc::EPERM);
        let docker = permission_message(&eperm, true, Some(2));
        assert!(
            docker.contains("--cap-add PERFMON") && docker.contains("SYS_ADMIN"),
            "{docker}"
        );
        let eacces = io::Error::from_raw_os_error(libc::EACCES);
        let native = permission_message(&eacces, false, Some(3));
        assert!(native.contains("perf_event_paranoid is 3"), "{native}");
        assert!(
            native.contains("sysctl kernel.perf_event_paranoid=1"),
            "{native}"
        );
    }
}
