//! What the reader of perf's stream has seen so far, counted as it reads:
//! the progress line shows the samples, and `--off-cpu`'s cap watches the
//! stacks taken at switches off the CPU.

use std::sync::atomic::AtomicU64;

/// Counts kept by the reader of the stream, read by the recording's monitor.
#[derive(Debug, Default)]
pub struct Seen {
    /// Samples read, of every event.
    pub samples: AtomicU64,
    /// Of those, samples taken at a switch off the CPU (`--off-cpu`).
    pub switch_stacks: AtomicU64,
}
