//! Figures over folded stacks: self time, shares, and where a thread's stack
//! begins (a stack that reaches it is complete).

use std::collections::HashMap;

use super::folded::parse_line;

/// Frames that start a thread: a stack that reaches one was walked to its end.
const THREAD_ROOTS: &[&str] = &[
    "_start",
    // The dynamic loader, before the program's own `_start`.
    "_dl_start",
    "_dl_start_user",
    "__libc_start_main",
    "__libc_start_call_main",
    "clone",
    "__clone",
    "clone3",
    "__clone3",
    "__GI___clone3",
    "start_thread",
    "thread_start",
    "main",
];

/// Whether `frame` is where a thread's stack begins (or a program's `main`).
pub fn is_thread_root(frame: &str) -> bool {
    THREAD_ROOTS.contains(&frame) || frame.ends_with("::main")
}

/// Samples per leaf frame (self time), and the total. Counts come from
/// files anyone can write: they saturate, never overflow.
pub fn self_time(folded: &str) -> (HashMap<&str, u64>, u64) {
    let mut total = 0u64;
    let mut by_leaf: HashMap<&str, u64> = HashMap::new();
    for (frames, count) in folded.lines().filter_map(parse_line) {
        total = total.saturating_add(count);
        let leaf = frames.rsplit(';').next().unwrap_or(frames);
        let entry = by_leaf.entry(leaf).or_default();
        *entry = entry.saturating_add(count);
    }
    (by_leaf, total)
}

/// `part` of `whole` in percent (0 when `whole` is 0).
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}
