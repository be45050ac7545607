//! The program to profile: a cargo target built for profiling, or any command.
//!
//! Cargo targets are chosen with cargo's own meanings (`-p`, `--bin`, ...),
//! looked up in `cargo metadata`, built with symbols (and frame pointers for
//! `--call-graph fp`) into a target dir of ours, and found through cargo's
//! JSON messages: paths are never guessed.
//!
//! - [`options`]: what the stage is given ([`TargetOptions`]) and gives back ([`Target`]);
//! - [`select`]: which cargo target the options name;
//! - [`build`]: building it for profiling.

pub mod build;
pub mod options;
pub mod select;

use std::ffi::OsString;

use anyhow::Result;

use crate::exit::Exit;
pub use options::{CargoTarget, Kind, Target, TargetOptions};

/// Resolves and builds the target chosen by `opts` (or takes `--exec`'s command).
pub fn prepare(opts: &TargetOptions) -> Result<Target> {
    if opts.exec {
        let Some((program, args)) = opts.args.split_first() else {
            return Err(Exit::Usage.error("--exec needs a program after `--`, e.g. `rust-flamegraph --exec -- ./my-binary arg`",
            ));
        };
        return Ok(Target {
            program: program.into(),
            args: args.to_vec(),
            name: None,
        });
    }
    let metadata = select::metadata(opts)?;
    let chosen = select::choose(&metadata, opts)?;
    let program = build::build(&metadata, &chosen, opts)?;
    Ok(Target {
        program,
        args: program_args(chosen.kind, opts),
        name: Some(chosen.name),
    })
}

/// The profiled program's arguments: the user's, after `--bench` for a bench
/// (without it, criterion's harness and libtest run the benchmarks as quick
/// tests) unless the user gave it, as `cargo flamegraph` users do
/// (`--bench x -- --bench`): criterion refuses it twice.
pub(crate) fn program_args(kind: Kind, opts: &TargetOptions) -> Vec<OsString> {
    let bench = kind == Kind::Bench || opts.unit_bench.is_some();
    let mut args = Vec::new();
    if bench && !opts.args.iter().any(|a| a == "--bench") {
        args.push("--bench".into());
    }
    args.extend(opts.args.iter().cloned());
    args
}
