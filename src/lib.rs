//! rust-flamegraph: profile a Rust program with Linux `perf` and write an
//! interactive flamegraph.
//!
//! The modules follow the data:
//! [`cli`] options → [`pipeline`] (what to run, in order) → [`target`]
//! (build, find the binary) → [`record`] (`perf record`) → [`stacks`]
//! (samples → folded stacks; [`folded`] is their text form) → [`render`]
//! (SVG) → [`artifacts`] (files in the output folder) → [`summary`].
//! [`perf`] holds perf's command lines and permission check, [`interrupt`]
//! the Ctrl-C/SIGTERM handling, [`exit`] the documented exit codes.

/// Prints a line to stderr, ignoring errors: a closed stderr (`… 2>&1 | head -1`)
/// must never stop the profiler (`eprintln!` panics on EPIPE).
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod artifacts;
pub mod build;
pub mod cli;
pub mod defaults;
pub mod exit;
pub mod folded;
pub mod interrupt;
pub mod perf;
pub(crate) mod perf_data;
pub mod perf_script;
pub mod pipeline;
pub mod record;
pub mod render;
pub mod stacks;
pub mod summary;
pub(crate) mod symbols;
pub mod target;
pub(crate) mod unwind;

pub use pipeline::{run, Report};
