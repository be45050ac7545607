//! perf's stderr: held until the program starts, relayed to the user
//! without perf's noise, kept for the error when perf fails.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};

use std::process::ExitStatus;

use super::exec_helper::MARK;
use crate::exit::Exit;

/// What perf said on its stderr, as far as we keep it.
#[derive(Debug, Default)]
pub(crate) struct PerfSaid {
    /// The helper ran: perf had started recording and let the program go.
    pub(crate) started: bool,
    /// The helper could not run the program.
    pub(crate) exec_error: Option<String>,
    /// perf printed its usage (an option it does not know).
    pub(crate) usage: bool,
    /// Lines not passed on yet: until the program started (all of them when
    /// attaching), at most [`HELD`].
    pub(crate) held: Vec<String>,
    /// EOF: perf (and whatever held its stderr) has exited.
    pub(crate) done: bool,
    /// Inside perf's warning about hidden kernel symbols (blank lines too).
    pub(crate) in_kernel_warning: bool,
}

/// The lines of perf's warnings about hidden kernel symbols (perf 6.1–6.12).
pub(crate) const KERNEL_MAPS_WARNING: &[&str] = &[
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

pub(crate) const HELD: usize = 200;

impl PerfSaid {
    /// Takes one line of perf's stderr; returns what to print now.
    pub(crate) fn take(&mut self, line: String) -> Vec<String> {
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
        // --off-cpu's cap pausing and resuming the switch event: the summary
        // says what it cost.
        let cap_event = format!("Event {}", super::switch_cap::EVENT_NAME);
        if t.strip_prefix(cap_event.as_str())
            .is_some_and(|rest| matches!(rest.trim_end(), " disabled" | " enabled"))
        {
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
pub(crate) struct Relay {
    pub(crate) shared: Arc<(Mutex<PerfSaid>, Condvar)>,
}

impl Relay {
    /// Lines are held until the helper says the program started (they are
    /// perf's reason when it fails before): when attaching, until perf ends.
    pub(crate) fn start(stream: UnixStream) -> Result<Relay> {
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
                        crate::say!("{}", crate::model::text::printable(&l));
                    }
                }
                lock().done = true;
                theirs.1.notify_all();
            })
            .context("cannot start a thread to read perf's messages")?;
        Ok(Relay { shared })
    }

    /// Waits up to `timeout` for the end of perf's stderr, then returns what it said.
    pub(crate) fn finish(self, timeout: Duration) -> PerfSaid {
        let (lock, cvar) = &*self.shared;
        let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        let (mut said, _) = cvar
            .wait_timeout_while(guard, timeout, |s| !s.done)
            .unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *said)
    }
}

/// The error for a perf that failed on its own, before running anything.
pub(crate) fn perf_failure(
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

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
    fn the_caps_pauses_are_not_shown_and_other_events_are() {
        let mut said = PerfSaid {
            started: true,
            ..PerfSaid::default()
        };
        let mut shown = Vec::new();
        for line in [
            "Event rust-flamegraph-off-cpu disabled",
            "Event rust-flamegraph-off-cpu enabled",
            "Event cycles disabled",
        ] {
            shown.extend(said.take(line.to_string()));
        }
        assert_eq!(shown, ["Event cycles disabled"]);
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
}
