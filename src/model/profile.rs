//! Stacks as addresses with their source lines: what a recording read
//! in-process knows of each frame, kept for pprof (`--format pprof`) when
//! it is asked for. Plain data, indexes into its own lists; memory grows
//! with distinct address stacks and threads, not with samples.

/// The stacks of a recording by address, aggregated by (locations, thread).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AddressStacks {
    /// The files code ran from (one entry per load segment used), and the
    /// kernel.
    pub mappings: Vec<Mapping>,
    /// Functions, each once.
    pub functions: Vec<Function>,
    /// Code addresses, each once, with the functions (inlined ones
    /// included) whose code is there.
    pub locations: Vec<Location>,
    /// Thread names, each once.
    pub threads: Vec<String>,
    /// One per distinct (location list, thread).
    pub samples: Vec<StackSample>,
}

/// A mapped file's part that holds code, in the addresses the file states
/// (its SVMAs): one mapping serves every process that maps the file,
/// wherever each put it, and `address - start + offset` is the offset in
/// the file, as pprof computes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    /// The file (`[kernel.kallsyms]` for the kernel, `[vdso]`).
    pub path: String,
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub limit: u64,
    /// File offset of `start`.
    pub offset: u64,
    /// The ELF build id, in hex, when the file has one.
    pub build_id: Option<String>,
    /// Its functions have file names and line numbers (it has DWARF).
    pub has_lines: bool,
    /// Its locations list inlined functions too.
    pub has_inline_frames: bool,
}

/// A function.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Function {
    /// The name as people read it (demangled, without the hash).
    pub name: String,
    /// The name as the binary states it (mangled), or the raw name.
    pub system_name: String,
    /// Its source file (empty: unknown).
    pub filename: String,
}

/// A code address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// Index in [`AddressStacks::mappings`]; `None` for frames of no file
    /// (an unknown address, the reason a thread waited).
    pub mapping: Option<usize>,
    /// The address, in the mapping's addresses (0 without a mapping).
    pub address: u64,
    /// The function whose code this is, innermost first: inlined functions
    /// come before the function they were inlined into, last.
    pub lines: Vec<Line>,
}

/// A function at a location, with its line there (for an inlined
/// function's caller: the line of the call).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Line {
    /// Index in [`AddressStacks::functions`].
    pub function: usize,
    /// The line number (0: unknown).
    pub line: u64,
}

/// Samples of one stack on one thread.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackSample {
    /// Indexes in [`AddressStacks::locations`], leaf first.
    pub locations: Vec<usize>,
    /// Index in [`AddressStacks::threads`]: the thread's name.
    pub thread: usize,
    /// The thread's id.
    pub tid: i64,
    /// The process's id.
    pub pid: i64,
    /// Samples, or with `--off-cpu` nanoseconds.
    pub count: u64,
    /// Time spent waiting (off the CPU), with `--off-cpu`.
    pub waiting: bool,
}
