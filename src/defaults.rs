//! Every default, defined once: the command line, the library's settings and
//! the tests read them from here. Plain values: this module imports nothing.

/// Output folder (`--out`; `/out` in the image, through `RUST_FLAMEGRAPH_OUT`).
pub const OUT: &str = "fg";
/// Sampling frequency in Hz (`--freq`): a prime, so that sampling does not
/// beat in step with periodic work.
pub const FREQ: u32 = 997;
/// How stacks are walked (`--call-graph`): a name [`crate::record::CallGraph::parse`] reads.
pub const CALL_GRAPH: &str = "dwarf";
/// Bytes of stack perf copies per sample with `--call-graph dwarf` (48 KiB).
/// Deep Rust stacks need more than perf's usual 8–16 KiB: at 16 KiB 2 % of
/// ripgrep's and 85 % of a rayon program's stacks were cut; from 48 KiB none
/// (benches/RESULTS.md, "Stack-copy size"). perf's most, 65528, makes a
/// third more data for nothing measured, and more lost records under load.
pub const DWARF_STACK_BYTES: u32 = 49152;
/// Bytes of stack copied at each switch off the CPU with `--off-cpu` and
/// DWARF stacks: switches come in bursts that full copies would lose.
pub const OFF_CPU_STACK_BYTES: u32 = 16384;
/// Stacks taken at switches off the CPU with `--off-cpu`, a second, at
/// most: below that every switch has its stack; above it sampling pauses
/// and the switches meanwhile are charged to the stack their thread left
/// with before, their time still exact.
pub const OFF_CPU_STACKS_PER_SECOND: u32 = 1000;
/// perf's buffer, in pages per CPU (4 MiB), where perf may lock that much
/// (`CAP_IPC_LOCK`, root on a host): DWARF stack copies fill perf's usual
/// 512 KiB in a few samples, so a busy machine made it lose records.
pub const MMAP_PAGES: u32 = 1024;
/// Cargo profile the target is built with (`--profile`).
pub const PROFILE: &str = "release";
/// Cargo profile a bench is built with (`--bench`, `--unit-bench`), as `cargo bench` does.
pub const BENCH_PROFILE: &str = "bench";
/// Frames narrower than this many pixels are omitted (`--min-width`).
pub const MIN_WIDTH: f64 = 0.1;
/// inferno palette (`--palette`).
pub const PALETTE: &str = "rust";
/// How many functions the summary lists.
pub const HOTTEST: usize = 10;
/// How many functions whose share changed most the summary lists (`--diff-against`).
pub const CHANGED: usize = 5;
/// `--diff-against` lists a function's change only when sampling noise
/// makes one as large less often than this, over all functions compared
/// (each is tested at this over their number: Bonferroni's correction).
pub const NOISE_ALPHA: f64 = 0.05;
/// Fewer samples than this draw nothing worth seeing (a usage error,
/// `--help`): such a run writes nothing, and earlier results stay.
pub const MIN_SAMPLES: u64 = 10;
