//! Finding perf, checking that it may sample, and the command lines we give it.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::options::{CallGraph, RecordOptions};
use crate::exit::Exit;
use crate::sys::container::{self, Engine};

/// A working `perf` binary.
#[derive(Debug, Clone)]
pub struct Perf {
    /// Path to the binary (`$PERF`, else `perf` on PATH).
    pub path: PathBuf,
    /// `(major, minor)` from `perf version`, when it says.
    pub version: Option<(u32, u32)>,
}

impl Perf {
    /// Finds perf and checks that it runs (Ubuntu's wrapper exits non-zero when
    /// the tools for the running kernel are missing).
    pub fn locate() -> Result<Perf> {
        let path = match std::env::var_os("PERF") {
            Some(p) => PathBuf::from(p),
            None => which::which("perf").map_err(|_| {
                Exit::Perf.error(format!("perf is not installed. {}", install_hint()))
            })?,
        };
        match duct::cmd!(&path, "version")
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
        {
            Ok(out) if out.status.success() => Ok(Perf {
                path,
                version: version_of(&String::from_utf8_lossy(&out.stdout)),
            }),
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

/// `(major, minor)` of `perf version`'s output ("perf version 6.1.187").
pub fn version_of(text: &str) -> Option<(u32, u32)> {
    let v = text.trim().strip_prefix("perf version ")?;
    let mut parts = v.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn install_hint() -> &'static str {
    "Install it: `apt-get install linux-perf` (Debian), \
     `apt-get install linux-tools-generic linux-tools-$(uname -r)` (Ubuntu), \
     `dnf install perf` (Fedora); or set PERF=/path/to/perf."
}

/// Checks that this process may open a sampling event, before anything is
/// built or run, and turns a refusal into the flags or setting that fix it.
///
/// Opens the same software `cpu-clock` event perf will use (user space only,
/// which is what an unprivileged perf falls back to) on this process.
pub fn check_permission() -> Result<()> {
    match open_cpu_clock_event() {
        Ok(()) => Ok(()),
        Err(e) => Err(Exit::Perf.error(permission_message(
            &e,
            container::engine(),
            container::rootless(),
            paranoid(),
        ))),
    }
}

/// What to tell the user when `perf_event_open` fails with `err`: in a
/// container, the flag that works on its engine (`engine`; a `rootless`
/// container also needs the host's `paranoid` to be 2 or less), else the
/// host's setting.
pub fn permission_message(
    err: &io::Error,
    engine: Option<Engine>,
    rootless: bool,
    paranoid: Option<i32>,
) -> String {
    let paranoid_now = paranoid.map_or("unknown".to_string(), |p| p.to_string());
    match (err.raw_os_error(), engine) {
        (Some(libc::EACCES | libc::EPERM), Some(engine)) => {
            let why = match engine {
                Engine::Docker => "",
                Engine::Podman => {
                    " (Podman's seccomp profile lets perf through only with SYS_ADMIN; \
                     PERFMON is not enough)"
                }
            };
            let mut msg = format!(
                "perf is not permitted in this {} container ({err}): add {} to `{} run`{why}, \
                 or `cap_add: [SYS_ADMIN]` in docker-compose.yml",
                engine.name(),
                engine.perf_flags(),
                engine.command(),
            );
            // Rootless, the capability passes seccomp; the kernel then lets
            // user-space sampling through only if paranoid is 2 or less.
            if rootless && paranoid.is_none_or(|p| p > 2) {
                let rootful = match engine {
                    Engine::Docker => "a rootful Docker engine",
                    Engine::Podman => "`sudo podman`",
                };
                msg.push_str(&format!(
                    ". This container's root is not the host's (rootless {}): its capabilities \
                     do not reach the host kernel, so the host's kernel.perf_event_paranoid must \
                     also be 2 or less (it is {paranoid_now}; `sudo sysctl \
                     kernel.perf_event_paranoid=2` on the host), or use {rootful}",
                    engine.name()
                ));
            }
            msg
        }
        (Some(libc::EACCES | libc::EPERM), None) => format!(
            "perf is not permitted ({err}; kernel.perf_event_paranoid is {paranoid_now}): \
             run `sudo sysctl kernel.perf_event_paranoid=1`, or run as root"
        ),
        (Some(libc::ENOSYS), _) => format!(
            "this kernel has no perf events ({err}): profile on a Linux machine or VM \
             whose kernel has CONFIG_PERF_EVENTS"
        ),
        _ => format!("perf cannot open the cpu-clock event: {err}"),
    }
}

fn open_cpu_clock_event() -> io::Result<()> {
    use perf_event_open_sys::bindings::{
        perf_event_attr, PERF_ATTR_SIZE_VER0, PERF_COUNT_SW_CPU_CLOCK, PERF_FLAG_FD_CLOEXEC,
        PERF_TYPE_SOFTWARE,
    };
    use std::os::fd::{FromRawFd, OwnedFd};
    // The first version of the struct (64 bytes): every kernel with perf
    // accepts it, and it holds all we set.
    let mut attr = perf_event_attr {
        type_: PERF_TYPE_SOFTWARE,
        size: PERF_ATTR_SIZE_VER0,
        config: u64::from(PERF_COUNT_SW_CPU_CLOCK),
        ..Default::default()
    };
    attr.set_disabled(1);
    attr.set_exclude_kernel(1);
    attr.set_exclude_hv(1);
    // SAFETY: attr outlives the call, and its size says how much the kernel reads.
    let fd = unsafe {
        perf_event_open_sys::perf_event_open(&mut attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC.into())
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned to us; the OwnedFd closes it once.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
    Ok(())
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

/// On arm64, the user registers the unwinder reads (frame pointer, link
/// register, stack and program counters). perf 6.12 asks for all of them and,
/// on a CPU with SVE (Graviton 3 and 4, qemu's `-cpu max`), SVE's vector
/// length too, which the kernel refuses for the software clock: every DWARF
/// recording there failed with "PMU Hardware doesn't support
/// sampling/overflow-interrupts". Naming them works on every arm64 CPU.
pub const ARM64_UNWIND_REGS: &str = "--user-regs=x29,lr,sp,pc";

/// Arguments of `perf record` (after the `perf` binary); `data` `-` streams
/// the recording to perf's stdout (its pipe format).
///
/// Always the software `cpu-clock` event: hardware counters are missing in
/// most VMs (Docker Desktop's among them). `--no-bpf-event` saves about a
/// second of start-up that a user-space profile does not need.
pub fn record_args(opts: &RecordOptions, data: &Path, subject: &Subject) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["record".into(), "-e".into(), "cpu-clock".into()];
    args.push("-F".into());
    args.push(opts.freq.to_string().into());
    if opts.off_cpu {
        // A sample at every switch off the CPU (its own period, not -F's),
        // named for the cap to pause it (`switch_cap`), and a record when
        // each thread leaves and comes back. Switches come in bursts: with
        // DWARF, their stack copies are smaller, so that perf's buffer (512
        // KiB per CPU, without CAP_IPC_LOCK) keeps up.
        let name = super::switch_cap::EVENT_NAME;
        let event = match opts.call_graph {
            CallGraph::Fp => format!("context-switches/period=1,name={name}/"),
            CallGraph::Dwarf => format!(
                "context-switches/period=1,name={name},call-graph=dwarf,stack-size={}/",
                opts.dwarf_stack_bytes
                    .min(crate::defaults::OFF_CPU_STACK_BYTES)
            ),
        };
        args.extend(["-e".into(), event.into(), "--switch-events".into()]);
    }
    let own_pages = opts
        .cmd
        .as_deref()
        .is_some_and(|c| c.contains("-m") || c.contains("--mmap-pages"));
    if let (Some(pages), false) = (opts.mmap_pages, own_pages) {
        args.push(format!("--mmap-pages={pages}").into());
    }
    args.push("--call-graph".into());
    args.push(match opts.call_graph {
        CallGraph::Fp => "fp".into(),
        CallGraph::Dwarf => format!("dwarf,{}", opts.dwarf_stack_bytes).into(),
    });
    let own_regs = opts
        .cmd
        .as_deref()
        .is_some_and(|c| c.contains("--user-regs"));
    if opts.call_graph == CallGraph::Dwarf && cfg!(target_arch = "aarch64") && !own_regs {
        args.push(ARM64_UNWIND_REGS.into());
    }
    args.push("--no-bpf-event".into());
    // perf script reads the binaries where they are; copying each one into
    // ~/.debug would grow that folder by a binary per run.
    args.push("--no-buildid-cache".into());
    // Nor the build-id pass at exit, which re-reads the whole recording: we
    // read binaries by path.
    args.push("--no-buildid".into());
    args.push("-o".into());
    args.push(data.into());
    // A file only: the stream (`-o -`) is read as it comes, never kept.
    if let (Some(level), false) = (opts.compression, data == Path::new("-")) {
        args.push(format!("--compression-level={level}").into());
    }
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
        let mut expected = vec![
            "record",
            "-e",
            "cpu-clock",
            "-F",
            "997",
            "--call-graph",
            "dwarf,49152",
        ];
        if cfg!(target_arch = "aarch64") {
            expected.push(ARM64_UNWIND_REGS);
        }
        expected.extend([
            "--no-bpf-event",
            "--no-buildid-cache",
            "--no-buildid",
            "-o",
            "/tmp/p.data",
            "--",
            "demo",
            "--iters",
        ]);
        assert_eq!(strings(&args), expected);
    }

    #[test]
    fn arm64_dwarf_recordings_name_the_registers_the_unwinder_reads() {
        let count = |opts: &RecordOptions| {
            let args = record_args(opts, Path::new("p"), &Subject::Attach(1));
            strings(&args)
                .iter()
                .filter(|a| a.starts_with("--user-regs"))
                .count()
        };
        let dwarf = RecordOptions::default();
        assert_eq!(count(&dwarf), usize::from(cfg!(target_arch = "aarch64")));
        let fp = RecordOptions {
            call_graph: CallGraph::Fp,
            ..RecordOptions::default()
        };
        assert_eq!(count(&fp), 0);
        // The user's own choice is never doubled.
        let own = RecordOptions {
            cmd: Some("--user-regs=x29,lr,sp,pc,x0".into()),
            ..RecordOptions::default()
        };
        assert_eq!(count(&own), 1);
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
        assert!(s.contains(&"dwarf,49152"));
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
        let docker = permission_message(&eperm, Some(Engine::Docker), false, Some(2));
        assert!(
            docker.contains(
                "--cap-add=SYS_ADMIN (or, from Docker 23, --cap-add=PERFMON) to `docker run`"
            ) && docker.contains("Docker container"),
            "{docker}"
        );
        assert!(!docker.contains("odman"), "{docker}");
        let eacces = io::Error::from_raw_os_error(libc::EACCES);
        let native = permission_message(&eacces, None, false, Some(3));
        assert!(native.contains("perf_event_paranoid is 3"), "{native}");
        assert!(
            native.contains("sysctl kernel.perf_event_paranoid=1"),
            "{native}"
        );
    }

    #[test]
    fn podman_is_told_sys_admin_and_rootless_podman_the_hosts_setting() {
        let eperm = io::Error::from_raw_os_error(libc::EPERM);
        let podman = permission_message(&eperm, Some(Engine::Podman), false, Some(2));
        assert!(
            podman.contains("add --cap-add=SYS_ADMIN to `podman run`")
                && podman.contains("Podman container"),
            "{podman}"
        );
        // PERFMON is named only as what does not work.
        assert!(podman.contains("PERFMON is not enough"), "{podman}");
        assert!(!podman.contains("--cap-add=PERFMON"), "{podman}");
        assert!(!podman.contains("docker run"), "{podman}");
        assert!(!podman.contains("sudo podman"), "{podman}");
        // Rootless where paranoid allows user-space sampling: the flag is enough.
        assert_eq!(
            permission_message(&eperm, Some(Engine::Podman), true, Some(2)),
            podman
        );
        let rootless = permission_message(&eperm, Some(Engine::Podman), true, Some(3));
        assert!(rootless.starts_with(&podman), "{rootless}");
        assert!(
            rootless.contains("perf_event_paranoid must also be 2 or less (it is 3;")
                && rootless.contains("`sudo podman`"),
            "{rootless}"
        );
    }

    #[test]
    fn perf_versions_are_read() {
        assert_eq!(version_of("perf version 6.1.187\n"), Some((6, 1)));
        assert_eq!(version_of("perf version 5.4.0-rc3"), Some((5, 4)));
        assert_eq!(version_of("perf version 6.8.12.g1c2e0d\n"), Some((6, 8)));
        assert_eq!(version_of("nonsense"), None);
    }

    #[test]
    fn off_cpu_records_every_switch_with_its_own_period() {
        let opts = RecordOptions {
            off_cpu: true,
            ..RecordOptions::default()
        };
        let args = record_args(&opts, Path::new("-"), &Subject::Attach(1));
        let s = strings(&args);
        let at = s
            .iter()
            .position(|a| {
                *a == "context-switches/period=1,name=rust-flamegraph-off-cpu,call-graph=dwarf,stack-size=16384/"
            })
            .unwrap();
        assert_eq!(s[at - 1], "-e");
        assert!(s.contains(&"--switch-events"));
        assert!(s.contains(&"cpu-clock") && s.contains(&"-F"));
        let plain = record_args(
            &RecordOptions::default(),
            Path::new("-"),
            &Subject::Attach(1),
        );
        assert!(!strings(&plain).iter().any(|a| a.contains("switch")));
    }
}
