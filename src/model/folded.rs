//! Folded stacks (`frame;frame;… count` lines): the data every stage after
//! the recording passes on.

use super::profile::AddressStacks;
use super::timeline::Timeline;

/// Folded stacks and what perf said while producing them.
#[derive(Debug, Default)]
pub struct Folded {
    /// `frame;frame;… count` lines, as inferno writes them.
    pub text: Vec<u8>,
    /// What the user should know: perf's warnings (lost events, unreadable
    /// data), or the lines of a folded file that were skipped.
    pub warnings: Vec<String>,
    /// Kernel frames read `[kernel]`: the kernel's symbols are hidden here
    /// (kptr_restrict). The advice depends on where we run, so whoever shows
    /// it phrases it.
    pub kernel_names_hidden: bool,
    /// Records perf said it lost (its buffer was full), in-process only:
    /// whoever shows the warning adds the advice that fits where we run.
    pub records_lost: u64,
    /// When each stack was sampled, for report.html's heatmap: `None` for
    /// `--from-folded` and the `--perf-script` fallback (no times).
    pub timeline: Option<Timeline>,
    /// The same stacks by address, with source lines, for pprof: only from
    /// a recording read in-process, and only when asked for
    /// (`StackOptions::addresses`).
    pub addresses: Option<AddressStacks>,
}

/// One line of folded stacks: its frames (root first) and sample count.
/// Returns `None` for lines that are not `frames count`.
pub fn parse_line(line: &str) -> Option<(&str, u64)> {
    let (frames, count) = line.trim_end().rsplit_once(' ')?;
    let count = count.parse().ok()?;
    (!frames.is_empty()).then_some((frames, count))
}
