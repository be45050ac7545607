//! rust-flamegraph: profile a Rust program with Linux `perf` and write an
//! interactive flamegraph.
//!
//! The modules, in the order the data flows through them. Layers point one
//! way: `main` → [`cli`] → [`run`](mod@run) → the stages → [`model`], [`sys`] and
//! [`exit`]; nothing below the command line imports it, and no two modules
//! import each other.
//!
//! | module | owns |
//! |---|---|
//! | [`cli`] | the command line (clap), turned into the run's [`run::Config`] |
//! | [`defaults`] | every default, once |
//! | [`run`](mod@run) | the run mode, decided once, and the stages driven in order |
//! | [`target`] | which program: cargo's target selection and build, or `--exec`'s command |
//! | [`record`] | `perf record`: its command line, the session and its stops, perf's messages, the exec helper, the scratch folder |
//! | [`collect`] | samples → folded stacks: perf.data read in-process and unwound, `perf script`, folded files |
//! | [`symbolize`] | names for addresses: DWARF with inlined frames, symbol tables, PLT stubs, kallsyms |
//! | [`output`] | what is drawn and printed: the SVG, report.html, diff.svg, pprof, the summary |
//! | [`artifacts`] | the output folder: one set of files, written root-safely, under a lock |
//! | [`model`] | the data stages pass on: folded stacks, the timeline, stacks by address (for pprof), counts, printable text |
//! | [`sys`] | the system: container engine, files in folders others own, privileges, signals |
//! | [`exit`] | the documented exit codes, carried on errors |

// First, so that off Linux this is the first error the compiler reports.
#[cfg(not(target_os = "linux"))]
compile_error!(
    "rust-flamegraph runs only on Linux: it records with Linux `perf`. \
     Elsewhere, use its Docker image from this repository \
     (`docker build -t rust-flamegraph .`, then \
     `docker run --rm --cap-add=SYS_ADMIN -v ./fg:/out rust-flamegraph`; see README.md), \
     or, on macOS, samply (`cargo install samply`)."
);

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
pub mod cli;
pub mod collect;
pub mod defaults;
pub mod exit;
pub mod model;
pub mod output;
pub mod record;
pub mod run;
pub mod symbolize;
pub mod sys;
pub mod target;

pub use output::summary::Report;
pub use run::{run, Config, RunMode};
