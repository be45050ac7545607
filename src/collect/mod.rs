//! Samples → folded stacks, one file per input: a perf.data read in-process
//! (`perf_data`, unwound by `unwind`, turned into stacks by [`stacks`]),
//! `perf script`'s text ([`perf_script`]), or folded stacks ([`folded`]).
//! For pprof, an in-process read also keeps its stacks by address
//! (`addresses`).

pub(crate) mod addresses;
pub mod folded;
pub mod off_cpu;
pub(crate) mod perf_data;
pub mod perf_script;
pub mod stacks;
pub(crate) mod unwind;
