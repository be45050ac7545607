//! `--off-cpu`'s cap on stacks taken at switches off the CPU.
//!
//! perf samples every switch (`period=1`), so that a program that waits now
//! and then has each of its waits with its own stack. A program that
//! switches hundreds of thousands of times a second would make perf copy a
//! stack at each, far more than its buffer holds: it would lose records of
//! every kind, clock samples too. So the stacks the reader of the stream
//! has seen are metered against a budget of
//! [`OFF_CPU_STACKS_PER_SECOND`](crate::defaults::OFF_CPU_STACKS_PER_SECOND)
//! (a token bucket, with a quarter-second burst): past it, the sampling of
//! switches is paused through perf's control socket (`disable <event>`), and
//! resumed once the budget has refilled. Switches keep their records
//! meanwhile (`--switch-events`), so every wait keeps its time; the
//! collector charges the waits without a stack to the stack their thread
//! left with before, and says how many.

use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The name given to the switch event (`name=` in its definition), by which
/// the control socket addresses it.
pub const EVENT_NAME: &str = "rust-flamegraph-off-cpu";

/// Meters switch stacks and pauses their sampling past the budget.
pub struct SwitchCap<'a> {
    control: UnixStream,
    stacks: &'a AtomicU64,
    per_second: f64,
    burst: f64,
    tokens: f64,
    counted: u64,
    last: Instant,
    paused: bool,
    /// How many times sampling was paused.
    pub pauses: u64,
}

impl<'a> SwitchCap<'a> {
    /// A cap of `per_second` stacks, counted in `stacks`, enforced through
    /// perf's `control` socket.
    pub fn new(control: UnixStream, stacks: &'a AtomicU64, per_second: u32) -> SwitchCap<'a> {
        let per_second = f64::from(per_second.max(1));
        let burst = per_second / 4.0;
        SwitchCap {
            control,
            stacks,
            per_second,
            burst,
            tokens: burst,
            counted: 0,
            last: Instant::now(),
            paused: false,
            pauses: 0,
        }
    }

    /// Called every poll of the recording: refills the budget, takes what
    /// was seen since, and pauses or resumes the sampling of switches.
    pub fn tick(&mut self) {
        let now = Instant::now();
        let seen = self.stacks.load(Ordering::Relaxed);
        let taken = seen.saturating_sub(self.counted);
        self.counted = seen;
        let refill = now.duration_since(self.last).as_secs_f64() * self.per_second;
        self.last = now;
        self.tokens = (self.tokens + refill).min(self.burst) - taken as f64;
        match decide(self.paused, self.tokens) {
            Some(true) => {
                self.command("disable");
                self.paused = true;
                self.pauses += 1;
            }
            Some(false) => {
                self.command("enable");
                self.paused = false;
            }
            None => {}
        }
    }

    /// Sends `verb <event>`; perf's acknowledgements are drained, never
    /// waited for. The socket is the exec helper's too (the same open
    /// file): it stays blocking for the helper, which waits for its own
    /// acknowledgement; only these reads do not wait.
    fn command(&mut self, verb: &str) {
        // Never a SIGPIPE should perf have gone already.
        let command = format!("{verb} {EVENT_NAME}\n");
        let _ = rustix::net::send(
            &self.control,
            command.as_bytes(),
            rustix::net::SendFlags::NOSIGNAL,
        );
        let mut acks = [0u8; 256];
        while matches!(
            rustix::net::recv(&self.control, &mut acks, rustix::net::RecvFlags::DONTWAIT),
            Ok((n, _)) if n > 0
        ) {}
    }
}

/// Whether to pause (`Some(true)`), resume (`Some(false)`) or leave the
/// sampling as it is, given the budget left.
fn decide(paused: bool, tokens: f64) -> Option<bool> {
    match (paused, tokens < 0.0) {
        (false, true) => Some(true),
        (true, false) => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What perf's end of the socket receives.
    fn received(perf: &mut UnixStream) -> String {
        use std::io::Read;
        perf.set_nonblocking(true).unwrap();
        let mut text = String::new();
        let _ = perf.read_to_string(&mut text);
        text
    }

    #[test]
    fn sampling_pauses_past_the_budget_and_resumes_once_it_refilled() {
        let (ours, mut perf) = UnixStream::pair().unwrap();
        let stacks = AtomicU64::new(0);
        let helpers = ours.try_clone().unwrap();
        let mut cap = SwitchCap::new(ours, &stacks, 1000);
        // Within the burst (250): nothing said.
        stacks.store(200, Ordering::Relaxed);
        cap.tick();
        assert_eq!(received(&mut perf), "");
        // Far past it: paused, once.
        stacks.store(5_000, Ordering::Relaxed);
        cap.tick();
        cap.tick();
        assert_eq!(
            received(&mut perf),
            format!("disable {EVENT_NAME}\n"),
            "paused once"
        );
        assert_eq!(cap.pauses, 1);
        // The deficit (about 4,950 stacks) refills at 1,000 a second: not
        // before some seconds have passed.
        cap.last -= std::time::Duration::from_secs(2);
        cap.tick();
        assert_eq!(received(&mut perf), "", "still in deficit after 2 s");
        cap.last -= std::time::Duration::from_secs(4);
        cap.tick();
        assert_eq!(received(&mut perf), format!("enable {EVENT_NAME}\n"));
        // The exec helper's copy still waits for perf's answer.
        assert!(!rustix::fs::fcntl_getfl(&helpers)
            .unwrap()
            .contains(rustix::fs::OFlags::NONBLOCK));
    }

    #[test]
    fn the_decision_changes_only_on_crossing_the_budget() {
        assert_eq!(decide(false, 10.0), None);
        assert_eq!(decide(false, -1.0), Some(true));
        assert_eq!(decide(true, -1.0), None);
        assert_eq!(decide(true, 0.0), Some(false));
    }
}
