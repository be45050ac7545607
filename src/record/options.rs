//! How perf records: the recording stage's settings, and the ceiling for
//! perf.data.

use std::path::Path;
use std::time::Duration;

use super::progress;
use crate::sys::privilege::Privileges;

/// How stacks are walked: perf's `--call-graph` mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallGraph {
    /// Frame pointers (the target is built with `-C force-frame-pointers=yes`).
    Fp,
    /// DWARF unwinding of a stack copy taken at every sample.
    Dwarf,
}

impl Default for CallGraph {
    fn default() -> Self {
        CallGraph::parse(crate::defaults::CALL_GRAPH).expect("defaults::CALL_GRAPH is a mode")
    }
}

impl CallGraph {
    /// The mode perf names `name` (`fp`, `dwarf`).
    pub fn parse(name: &str) -> Option<CallGraph> {
        match name {
            "fp" => Some(CallGraph::Fp),
            "dwarf" => Some(CallGraph::Dwarf),
            _ => None,
        }
    }

    /// How the stacks were walked, for titles and messages.
    pub fn describe(self) -> &'static str {
        match self {
            CallGraph::Fp => "frame-pointer",
            CallGraph::Dwarf => "DWARF",
        }
    }
}

/// The most stack perf copies per sample (`--call-graph dwarf,65528`): the
/// largest multiple of 8 below 64 KiB, since a sample is at most 64 KiB.
pub const MAX_DWARF_STACK_BYTES: u32 = 65528;

/// Whether perf may lock a larger buffer than an unprivileged user's
/// 512 KiB per CPU: with `CAP_IPC_LOCK` (root on a host; not in a container,
/// whose default capabilities leave it out).
pub fn can_lock_memory() -> bool {
    rustix::thread::capabilities(None).is_ok_and(|c| {
        c.effective
            .contains(rustix::thread::CapabilitySet::IPC_LOCK)
    })
}

/// How perf records.
#[derive(Debug, Clone)]
pub struct RecordOptions {
    /// Sampling frequency in Hz.
    pub freq: u32,
    /// How stacks are walked.
    pub call_graph: CallGraph,
    /// Bytes of stack copied per sample with [`CallGraph::Dwarf`] (perf's
    /// `dwarf,N`): a multiple of 8, at most [`MAX_DWARF_STACK_BYTES`].
    pub dwarf_stack_bytes: u32,
    /// Stop recording after this long.
    pub duration: Option<Duration>,
    /// Stop when perf.data reaches this many MB (default: [`limit_of`]).
    pub max_perf_data: Option<u64>,
    /// Extra arguments for `perf record`, split on whitespace.
    pub cmd: Option<String>,
    /// How the program runs (through the exec helper): as root, without
    /// capabilities, as [`crate::sys::privilege`] decides.
    pub privileges: Privileges,
    /// The progress line while recording.
    pub progress: progress::Mode,
    /// perf.data compressed with zstd at this level (`-z`; a file only, as
    /// `--keep-perf-data` writes).
    pub compression: Option<u32>,
    /// Also record each switch off the CPU with its stack, and when threads
    /// come back (`--off-cpu`).
    pub off_cpu: bool,
    /// perf's buffer, in pages per CPU (`--mmap-pages`; `None`: perf's own).
    pub mmap_pages: Option<u32>,
}

impl Default for RecordOptions {
    fn default() -> Self {
        RecordOptions {
            freq: crate::defaults::FREQ,
            call_graph: CallGraph::default(),
            dwarf_stack_bytes: crate::defaults::DWARF_STACK_BYTES,
            duration: None,
            max_perf_data: None,
            cmd: None,
            privileges: Privileges::Keep,
            progress: progress::Mode::Off,
            compression: None,
            off_cpu: false,
            mmap_pages: None,
        }
    }
}

/// The ceiling for perf.data in `dir`: `--max-perf-data`, else [`limit_of`]
/// its free space.
pub fn perf_data_limit(opts: &RecordOptions, dir: &Path) -> u64 {
    limit_of(opts.max_perf_data, free_space(dir))
}

/// The ceiling for perf.data, in bytes: `max_mb` when given, else half of
/// `free` bytes (no limit when unknown), at most [`MAX_DEFAULT_LIMIT`].
pub fn limit_of(max_mb: Option<u64>, free: Option<u64>) -> u64 {
    match max_mb {
        Some(mb) => mb.saturating_mul(1_000_000),
        None => (free.unwrap_or(u64::MAX) / 2).min(MAX_DEFAULT_LIMIT),
    }
}

/// The default perf.data ceiling never exceeds 4 GB.
pub const MAX_DEFAULT_LIMIT: u64 = 4_000_000_000;

pub(crate) fn free_space(dir: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_perf_data_limit_is_the_option_or_half_the_free_space() {
        assert_eq!(limit_of(Some(5), Some(1 << 40)), 5_000_000);
        assert_eq!(limit_of(Some(u64::MAX), None), u64::MAX);
        assert_eq!(limit_of(None, Some(1_000_000_000)), 500_000_000);
        assert_eq!(limit_of(None, Some(100_000_000_000)), 4_000_000_000);
        assert_eq!(limit_of(None, None), 4_000_000_000);
        assert_eq!(limit_of(None, Some(400_000)), 200_000);
        // The free space itself is read from the file system.
        assert!(free_space(Path::new("/tmp")).is_some_and(|f| f > 0));
        assert!(free_space(Path::new("/nonexistent/dir")).is_none());
    }
}
