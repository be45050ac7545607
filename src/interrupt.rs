//! Ctrl-C and `docker stop`: the first SIGINT/SIGTERM during a recording stops
//! perf so that what was recorded is still rendered; a second one (or one at
//! any other stage) aborts at once, killing our children and removing any
//! half-written output.
//!
//! Signals are process-wide, so this state is too.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, Once};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

#[derive(Default)]
struct State {
    signals: u32,
    /// Running children: (pid, stops gracefully on SIGINT).
    children: Vec<(u32, bool)>,
    /// Files to delete if we abort.
    partial: Vec<PathBuf>,
}

static STATE: Mutex<State> = Mutex::new(State {
    signals: 0,
    children: Vec::new(),
    partial: Vec::new(),
});

fn state() -> MutexGuard<'static, State> {
    // A panic elsewhere must not stop Ctrl-C from working.
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Installs the SIGINT/SIGTERM handling (once; later calls do nothing).
pub fn install() -> std::io::Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| match Signals::new([SIGINT, SIGTERM]) {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                for signal in signals.forever() {
                    on_signal(signal);
                }
            });
        }
        Err(e) => result = Err(e),
    });
    result
}

fn on_signal(signal: i32) {
    let mut st = state();
    st.signals += 1;
    let graceful: Vec<u32> = st.children.iter().filter(|c| c.1).map(|c| c.0).collect();
    if st.signals == 1 && !graceful.is_empty() {
        crate::say!(
            "\nrust-flamegraph: stopping the recording; the flamegraph of what was recorded \
             follows (press Ctrl-C again to abort)"
        );
        for pid in graceful {
            send(pid, libc::SIGINT);
        }
        return;
    }
    for &(pid, _) in &st.children {
        kill_tree(pid);
    }
    for path in &st.partial {
        let _ = if path.is_dir() {
            std::fs::remove_dir_all(path)
        } else {
            std::fs::remove_file(path)
        };
    }
    crate::say!("\nrust-flamegraph: aborted (signal {signal}); nothing was written");
    std::process::exit(crate::exit::Exit::Interrupted.code().into());
}

/// Whether a SIGINT or SIGTERM has arrived.
pub fn interrupted() -> bool {
    state().signals > 0
}

/// Unregisters what it registered when dropped.
#[must_use = "the registration ends when this is dropped"]
pub struct Watch {
    pid: Option<u32>,
    path: Option<PathBuf>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut st = state();
        if let Some(pid) = self.pid {
            st.children.retain(|c| c.0 != pid);
        }
        if let Some(path) = &self.path {
            st.partial.retain(|p| p != path);
        }
    }
}

/// Registers a running child. With `graceful`, the first signal sends it
/// SIGINT (perf then stops its workload and writes its data); otherwise
/// signals kill it and its descendants.
pub fn watch_child(pid: u32, graceful: bool) -> Watch {
    state().children.push((pid, graceful));
    Watch {
        pid: Some(pid),
        path: None,
    }
}

/// Registers a file or folder that must not survive an abort (a temporary output).
pub fn watch_partial(path: PathBuf) -> Watch {
    state().partial.push(path.clone());
    Watch {
        pid: None,
        path: Some(path),
    }
}

/// Sends `signal` to `pid`; a process that is already gone is not an error.
pub fn send(pid: u32, signal: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid as libc::pid_t, signal) };
}

/// SIGKILLs `pid` and every descendant (perf's workload must not outlive us).
fn kill_tree(pid: u32) {
    for child in children(pid) {
        kill_tree(child);
    }
    send(pid, libc::SIGKILL);
}

fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_of_a_process_are_found_through_proc() {
        let mut sh = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & wait"])
            .spawn()
            .unwrap();
        let pid = sh.id();
        let mut found = Vec::new();
        for _ in 0..100 {
            found = children(pid);
            if !found.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(found.len(), 1, "sleep should be sh's only child");
        kill_tree(pid);
        let status = sh.wait().unwrap();
        assert!(!status.success());
        assert!(children(pid).is_empty());
    }

    #[test]
    fn watches_unregister_when_dropped() {
        let w = watch_partial("/nonexistent/x".into());
        assert!(state().partial.iter().any(|p| p.ends_with("x")));
        drop(w);
        assert!(!state().partial.iter().any(|p| p.ends_with("x")));
    }
}
