//! Keeps an exit (the interrupt handler's `process::exit` after a second
//! Ctrl-C, or any other) from cutting a commit's renames in half: an
//! `atexit` hook waits, at most [`LIMIT`], for the renames in
//! progress, and no new ones start once the process is exiting.
//!
//! This belongs in `interrupt` (a "critical section" its handler waits for
//! before removing files and exiting); until it offers one, the hook does it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Once;
use std::time::{Duration, Instant};

/// The longest an exit waits for renames in progress.
pub const LIMIT: Duration = Duration::from_secs(3);

static RENAMING: AtomicUsize = AtomicUsize::new(0);
static EXITING: AtomicBool = AtomicBool::new(false);

/// Registers the hook (once).
pub fn install() {
    static ONCE: Once = Once::new();
    // SAFETY: atexit only stores the pointer to a function that takes no
    // arguments and never unwinds (it only reads atomics, sleeps and
    // writes to stderr, ignoring errors).
    ONCE.call_once(|| unsafe {
        libc::atexit(at_exit);
    });
}

extern "C" fn at_exit() {
    EXITING.store(true, SeqCst);
    if RENAMING.load(SeqCst) == 0 {
        return;
    }
    let deadline = Instant::now() + LIMIT;
    while RENAMING.load(SeqCst) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    crate::say!(
        "rust-flamegraph: the new results were already being moved into place: \
         they were completed as one set before exiting"
    );
}

/// Renames in progress; `None` once the process is exiting.
pub struct Critical(());

impl Critical {
    pub fn enter() -> Option<Critical> {
        RENAMING.fetch_add(1, SeqCst);
        if EXITING.load(SeqCst) {
            RENAMING.fetch_sub(1, SeqCst);
            return None;
        }
        Some(Critical(()))
    }
}

impl Drop for Critical {
    fn drop(&mut self) {
        RENAMING.fetch_sub(1, SeqCst);
    }
}
