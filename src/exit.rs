//! Exit codes, and errors that carry one.
//!
//! A stage that fails in a way a caller (a script, CI) must tell apart
//! attaches an [`Exit`] to its error as anyhow context, e.g.
//! `.context(Exit::Perf)`; the error's own chain of causes is kept. `main`
//! finds the code with [`Exit::of`] (anyhow's downcast through context) and
//! prints the causes with [`message`]. This enum is the one table of exit
//! codes: `--help` and the table in docs/options.md are generated from, or
//! checked against, [`Exit::ALL`].

use std::fmt;

/// Documented exit codes of `rust-flamegraph`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Results written (also when stopped by Ctrl-C, SIGTERM or `--duration`).
    Success = 0,
    /// Anything not listed below.
    Other = 1,
    /// Bad command line (clap's own code).
    Usage = 2,
    /// perf is missing, not permitted, or failed to record.
    Perf = 3,
    /// The target was not found or did not build.
    Build = 4,
    /// The profiled program failed.
    Workload = 5,
    /// The output folder cannot be created or written.
    Output = 6,
    /// Too few samples to draw.
    NoSamples = 7,
    /// Interrupted twice.
    Interrupted = 130,
}

impl Exit {
    /// Every code, in order.
    pub const ALL: [Exit; 9] = [
        Exit::Success,
        Exit::Other,
        Exit::Usage,
        Exit::Perf,
        Exit::Build,
        Exit::Workload,
        Exit::Output,
        Exit::NoSamples,
        Exit::Interrupted,
    ];

    /// The process exit code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// What the code means, as `--help` and docs/options.md say it.
    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Success => {
                "results written (also when stopped by Ctrl-C, `docker stop` or --duration)"
            }
            Exit::Other => "other errors, e.g. an unreadable --perfdata or --from-folded file",
            Exit::Usage => "usage error",
            Exit::Perf => "perf missing, not permitted, or failed to record",
            Exit::Build => "the target was not found or did not build",
            Exit::Workload => {
                "the profiled program failed (the flamegraph is still written when it ran \
                 long enough; --ignore-status exits 0)"
            }
            Exit::Output => "output folder missing or not writable",
            Exit::NoSamples => {
                "too few samples to draw (earlier results are kept; make the run longer or \
                 raise --freq)"
            }
            Exit::Interrupted => "interrupted twice: nothing written",
        }
    }

    /// The code attached to `err` (anywhere in its chain), or [`Exit::Other`].
    pub fn of(err: &anyhow::Error) -> Exit {
        err.downcast_ref::<Exit>().copied().unwrap_or(Exit::Other)
    }

    /// The exit-code table shown by `--help`.
    pub fn help_table() -> String {
        let mut text = String::from("Exit codes:\n");
        for exit in Exit::ALL {
            text.push_str(&format!("  {:<3} {}\n", exit.code(), exit.meaning()));
        }
        text.trim_end().to_string()
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exit code {}: {}", self.code(), self.meaning())
    }
}

impl std::error::Error for Exit {}

impl Exit {
    /// An error with `message` that makes the process exit with this code
    /// (`to_string()` is the message; the code sits beneath it in the chain).
    pub fn error(self, message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(self).context(message.into())
    }
}

/// The error's causes, outermost first, joined with `: `, without the exit
/// code (which the process reports as its status).
pub fn message(err: &anyhow::Error) -> String {
    let codes: Vec<String> = Exit::ALL.iter().map(Exit::to_string).collect();
    err.chain()
        .map(|e| e.to_string())
        .filter(|s| !codes.contains(s))
        // Causes quote perf, cargo's manifests, file names: no escape sequence
        // of theirs reaches the terminal.
        .map(|s| {
            s.split('\n')
                .map(|line| crate::model::text::printable(line).into_owned())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect::<Vec<_>>()
        .join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn the_code_and_every_cause_survive_added_context() {
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left");
        let err = Err::<(), _>(io)
            .context("cannot write flamegraph.svg")
            .context(Exit::Output)
            .context("writing the results")
            .unwrap_err();
        assert_eq!(Exit::of(&err), Exit::Output);
        assert_eq!(
            message(&err),
            "writing the results: cannot write flamegraph.svg: No space left"
        );
        // The underlying error can still be inspected.
        let io = err
            .chain()
            .find_map(|e| e.downcast_ref::<std::io::Error>())
            .unwrap();
        assert_eq!(io.kind(), std::io::ErrorKind::StorageFull);
        assert_eq!(Exit::of(&anyhow::anyhow!("plain")), Exit::Other);
        assert_eq!(Exit::of(&Exit::Perf.error("no perf")), Exit::Perf);
        assert_eq!(message(&Exit::Perf.error("no perf")), "no perf");
        assert_eq!(Exit::Perf.error("no perf").to_string(), "no perf");
        assert_eq!(Exit::Interrupted.code(), 130);
    }

    #[test]
    fn the_documented_table_is_this_table() {
        let doc = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/options.md"));
        let rows: Vec<(u8, String)> = doc
            .lines()
            .skip_while(|l| !l.starts_with("## Exit codes"))
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .filter_map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                let code = cells.get(1)?.parse().ok()?;
                Some((code, cells.get(2)?.replace('`', "")))
            })
            .collect();
        let expected: Vec<(u8, String)> = Exit::ALL
            .iter()
            .map(|e| (e.code(), e.meaning().replace('`', "")))
            .collect();
        assert_eq!(
            rows, expected,
            "the exit-code table of docs/options.md must match exit::Exit::meaning"
        );
    }
}
