//! Exit codes, and errors that carry one.
//!
//! Stages return `anyhow::Error`s; the ones that mean something to a caller
//! (a script, CI) are built with [`fail`], which tags them with an [`Exit`]
//! code that `main` finds anywhere in the error's chain.

use std::fmt;

/// Documented exit codes of `rust-flamegraph` (see `--help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Anything not listed below.
    Other = 1,
    /// Bad command line (clap's own code).
    Usage = 2,
    /// perf is missing or not permitted.
    Perf = 3,
    /// The target did not build, or was not found.
    Build = 4,
    /// The profiled program failed; the flamegraph was still written.
    Workload = 5,
    /// The output folder cannot be created or written.
    Output = 6,
    /// perf recorded no samples.
    NoSamples = 7,
    /// Interrupted twice: aborted, nothing written.
    Interrupted = 130,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The code tagged onto `err` by [`fail`], or [`Exit::Other`].
    pub fn of(err: &anyhow::Error) -> Exit {
        err.chain()
            .find_map(|e| e.downcast_ref::<Failure>())
            .map_or(Exit::Other, |f| f.exit)
    }
}

/// An error message tagged with the exit code it leads to.
#[derive(Debug)]
pub struct Failure {
    exit: Exit,
    message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// An error with `message` that makes the process exit with `exit`.
pub fn fail(exit: Exit, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure {
        exit,
        message: message.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn code_survives_added_context() {
        let err = Err::<(), _>(fail(Exit::Perf, "perf denied"))
            .context("recording")
            .unwrap_err();
        assert_eq!(Exit::of(&err), Exit::Perf);
        assert_eq!(Exit::of(&anyhow::anyhow!("plain")), Exit::Other);
        assert_eq!(Exit::Interrupted.code(), 130);
    }
}
