//! `--off-cpu`: what the stacks weigh, and why a thread waited, named from
//! the frames it left the CPU with.

/// What the stacks weigh (`--off-cpu`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OffCpu {
    /// CPU samples, counted one by one (the default).
    #[default]
    No,
    /// CPU time and off-CPU time, in nanoseconds: each CPU sample weighs its
    /// period, each switch-out the time until the thread ran again.
    Also,
    /// Off-CPU time alone, in nanoseconds.
    Only,
}

/// The leaf of a stack that waited: why, from its frames (leaf first).
/// Names are stable: `[off-cpu: futex]`, `[off-cpu: sleep]`,
/// `[off-cpu: page fault]`, `[off-cpu: poll]`, `[off-cpu: read]`,
/// `[off-cpu: write]`, `[off-cpu: wait]`, `[off-cpu: yield]`, else `[off-cpu]`.
pub const OFF_CPU: &str = "[off-cpu]";

/// The leaf of a stack that was preempted while it could run: CPU
/// contention, not waiting.
pub const PREEMPTED: &str = "[off-cpu: preempted]";

/// The leaf of a wait whose stack perf lost (its buffer was full): the
/// thread's time is still counted, under its name alone.
pub const STACK_LOST: &str = "[off-cpu: stack lost]";

/// Why a thread that left the CPU with these frames (root first) waited.
pub fn off_cpu_reason<'a>(frames: impl DoubleEndedIterator<Item = &'a str>) -> &'static str {
    for frame in frames.rev() {
        let name = frame.strip_suffix("_[k]").unwrap_or(frame);
        // A Rust path's last segment (`Channel::send`, `File::read`) tells
        // nothing of the system call under it: only C and kernel names
        // (`send`, `read`) are read as calls; Rust's own are matched below
        // by the names they have (`lock_contended`, `thread::sleep`).
        let rust = name.contains("::");
        let name = name.rsplit("::").next().unwrap_or(name);
        let name = name.trim_start_matches('_');
        let name = name
            .strip_prefix("GI_")
            .unwrap_or(name)
            .trim_start_matches('_');
        let name = name.strip_prefix("libc_").unwrap_or(name);
        let reason = if name.contains("page_fault") || name == "handle_mm_fault" {
            "page fault"
        } else if name.contains("futex")
            || [
                "lll_lock_wait",
                "pthread_mutex_lock",
                "pthread_cond_wait",
                "lock_contended",
            ]
            .contains(&name)
        {
            "futex"
        } else if name.contains("nanosleep") || name == "sleep" || name == "usleep" {
            "sleep"
        } else if rust {
            continue;
        } else if name.contains("sched_yield") {
            "yield"
        } else if name.contains("epoll")
            || ["poll", "ppoll", "select", "pselect6", "do_sys_poll"].contains(&name)
        {
            "poll"
        } else if [
            "read",
            "ksys_read",
            "vfs_read",
            "x64_sys_read",
            "arm64_sys_read",
            "pread64",
            "readv",
            "recv",
            "recvfrom",
            "recvmsg",
            "sock_recvmsg",
            "tcp_recvmsg",
        ]
        .contains(&name)
        {
            "read"
        } else if [
            "write",
            "ksys_write",
            "vfs_write",
            "x64_sys_write",
            "arm64_sys_write",
            "pwrite64",
            "writev",
            "send",
            "sendto",
            "sendmsg",
        ]
        .contains(&name)
        {
            "write"
        } else if ["wait4", "waitpid", "waitid", "kernel_wait4", "do_wait"].contains(&name) {
            "wait"
        } else {
            continue;
        };
        return match reason {
            "page fault" => "[off-cpu: page fault]",
            "futex" => "[off-cpu: futex]",
            "sleep" => "[off-cpu: sleep]",
            "poll" => "[off-cpu: poll]",
            "read" => "[off-cpu: read]",
            "write" => "[off-cpu: write]",
            "yield" => "[off-cpu: yield]",
            _ => "[off-cpu: wait]",
        };
    }
    OFF_CPU
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_is_named_from_its_nearest_telling_frame() {
        let reason = |frames: &[&str]| off_cpu_reason(frames.iter().copied());
        assert_eq!(
            reason(&[
                "demo::sleeping",
                "clock_nanosleep",
                "do_nanosleep_[k]",
                "schedule_[k]"
            ]),
            "[off-cpu: sleep]"
        );
        // Without kernel symbols, the user frames say it.
        assert_eq!(
            reason(&[
                "demo::contending",
                "<std::sys::sync::mutex::futex::Mutex>::lock_contended",
                "syscall",
                "[kernel]"
            ]),
            "[off-cpu: futex]"
        );
        assert_eq!(
            reason(&["app::load", "__GI___libc_read", "[kernel]"]),
            "[off-cpu: read]"
        );
        assert_eq!(
            reason(&[
                "app::f",
                "ksys_read_[k]",
                "filemap_fault_[k]",
                "handle_mm_fault_[k]",
                "io_schedule_[k]"
            ]),
            "[off-cpu: page fault]",
            "the nearest frame decides"
        );
        // `start_thread` holds "read" but is no read.
        assert_eq!(reason(&["start_thread", "app::spin", "[kernel]"]), OFF_CPU);
        assert_eq!(
            reason(&["main", "epoll_wait", "[kernel]"]),
            "[off-cpu: poll]"
        );
        assert_eq!(reason(&["sh", "wait4", "[kernel]"]), "[off-cpu: wait]");
        // A Rust method named like a system call is not one.
        assert_eq!(
            reason(&[
                "std::sync::mpmc::zero::Channel<T>::send",
                "std::sync::mpmc::zero::Channel<T>::send::{{closure}}",
                "sched_yield",
                "__do_sys_sched_yield_[k]",
                "schedule_[k]"
            ]),
            "[off-cpu: yield]"
        );
        assert_eq!(
            reason(&["<std::fs::File as std::io::Read>::read", "[kernel]"]),
            OFF_CPU
        );
    }
}
