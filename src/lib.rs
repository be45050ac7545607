//! rust-flamegraph: profile a Rust program with Linux `perf` and write an
//! interactive flamegraph.
//!
//! The modules, in the order the data flows through them:
//!
//! | module | owns |
//! |---|---|
//! | [`cli`] | the command line (clap), and the settings it yields |
//! | [`defaults`] | every default, once |
//! | `pipeline` | the run mode, decided once, and the stages driven in order ([`run`]) |
//! | [`target`] | which program: cargo's target selection, or `--exec`'s command |
//! | `build` | building a cargo target for profiling |
//! | [`privilege`] | who runs cargo and the program: no capabilities, the invoking user |
//! | [`container`] | which container engine we run in (Docker, Podman), and the flags each needs |
//! | [`perf`] | perf's command lines and the permission check |
//! | [`record`] | running `perf record`, with its stops (Ctrl-C, `--duration`, size) |
//! | [`scratch`] | the temporary folder for perf.data, and those of killed runs |
//! | `perf_data` | reading a recording in-process |
//! | `unwind` | a sample's stack: perf's chain, or its stack copy unwound |
//! | `symbols` | names for addresses: DWARF with inlined frames, symbol tables, kallsyms |
//! | [`stacks`] | samples → folded stacks |
//! | [`perf_script`] | the `--perf-script` fallback: `perf script` through inferno's collapser |
//! | [`folded`] | folded stacks as text, and `--from-folded` |
//! | [`render`] | the SVG |
//! | [`report`] | report.html: the heatmap over time, flamegraphs of any range of it |
//! | [`artifacts`] | the output folder: one set of files, written root-safely |
//! | [`safe_fs`] | opening files in folders others own: no foreign symlinks, no FIFOs, bounded |
//! | [`diff`] | `--diff-against`: diff.svg and the functions that changed most |
//! | [`pprof`] | `--format pprof`: profile.pb.gz for pprof and fleet backends |
//! | [`summary`] | the figures printed after a run |
//! | [`interrupt`] | Ctrl-C and `docker stop` |
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
pub(crate) mod build;
pub mod cli;
pub mod container;
pub mod defaults;
pub mod diff;
pub mod exit;
pub mod folded;
pub mod interrupt;
pub mod perf;
pub(crate) mod perf_data;
pub mod perf_script;
pub(crate) mod pipeline;
pub mod pprof;
pub mod privilege;
pub mod record;
pub mod render;
pub mod report;
pub mod safe_fs;
pub mod scratch;
pub mod stacks;
pub mod summary;
pub(crate) mod symbols;
pub mod target;
pub(crate) mod unwind;

pub use pipeline::{run, Report, RunMode};
