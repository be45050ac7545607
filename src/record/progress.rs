//! The line that says a recording is alive: elapsed time, samples so far,
//! the data rate, and how to stop. On a terminal it is one line refreshed in
//! place (four times a second) and cleared when the recording ends; otherwise
//! (CI logs, `docker run` without `-t`, compose) a line every
//! [`LOG_EVERY`] at most. `--quiet` turns it off.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often the line is refreshed on a terminal.
const REFRESH: Duration = Duration::from_millis(250);

/// How often a line is written when stderr is not a terminal.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// Nothing is shown for recordings shorter than this: a short run's
/// messages stay as they were.
const QUIET_START: Duration = Duration::from_secs(2);

/// Where the line goes, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No line (`--quiet`).
    Off,
    /// Refreshed in place.
    Terminal,
    /// A new line now and then.
    Log,
}

impl Mode {
    /// [`Mode::Terminal`] when stderr is a terminal, else [`Mode::Log`];
    /// [`Mode::Off`] when `quiet`.
    pub fn for_stderr(quiet: bool) -> Mode {
        match (quiet, std::io::stderr().is_terminal()) {
            (true, _) => Mode::Off,
            (false, true) => Mode::Terminal,
            (false, false) => Mode::Log,
        }
    }
}

/// The progress of one recording.
pub struct Progress<'a> {
    mode: Mode,
    start: Instant,
    last: Option<Instant>,
    /// Samples read so far, when they are read as perf records them.
    samples: Option<&'a AtomicU64>,
    /// The line is on screen (terminal mode): cleared at the end.
    shown: bool,
}

impl<'a> Progress<'a> {
    /// Starts counting now.
    pub fn new(mode: Mode, samples: Option<&'a AtomicU64>) -> Progress<'a> {
        Progress {
            mode,
            start: Instant::now(),
            last: None,
            samples,
            shown: false,
        }
    }

    /// Restarts the clock: the program starts now (after its build).
    pub fn restart(&mut self) {
        self.start = Instant::now();
        self.last = None;
    }

    /// Called often (every poll) with the bytes recorded so far: shows the
    /// line when it is due.
    pub fn tick(&mut self, bytes: u64) {
        let elapsed = self.start.elapsed();
        let every = match self.mode {
            Mode::Off => return,
            Mode::Terminal => REFRESH,
            Mode::Log => LOG_EVERY,
        };
        if elapsed < QUIET_START || self.last.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.last = Some(Instant::now());
        let samples = self.samples.map(|s| s.load(Ordering::Relaxed));
        let line = line(elapsed, samples, bytes);
        let mut err = std::io::stderr().lock();
        let _ = match self.mode {
            Mode::Terminal => {
                self.shown = true;
                write!(err, "\r\x1b[K{line}")
            }
            _ => writeln!(err, "{line}"),
        };
        let _ = err.flush();
    }

    /// Clears the line from the terminal, so the next message starts clean.
    pub fn finish(&mut self) {
        if self.shown {
            self.shown = false;
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }
}

impl Drop for Progress<'_> {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `recording 12 s · 11,950 samples · 1.6 MB/s · Ctrl-C stops and draws`.
pub fn line(elapsed: Duration, samples: Option<u64>, bytes: u64) -> String {
    let secs = elapsed.as_secs_f64();
    let mut line = format!("rust-flamegraph: recording {secs:.0} s");
    if let Some(samples) = samples {
        line += &format!(" · {} samples", thousands(samples));
    }
    if secs > 0.0 {
        line += &format!(" · {:.1} MB/s", bytes as f64 / 1e6 / secs);
    }
    line + " · Ctrl-C stops and draws"
}

/// `12345` → `12,345`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_time_samples_rate_and_how_to_stop() {
        assert_eq!(
            line(Duration::from_secs(12), Some(11_950), 19_200_000),
            "rust-flamegraph: recording 12 s · 11,950 samples · 1.6 MB/s · Ctrl-C stops and draws"
        );
        assert_eq!(
            line(Duration::from_secs(3), None, 0),
            "rust-flamegraph: recording 3 s · 0.0 MB/s · Ctrl-C stops and draws"
        );
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn nothing_is_shown_when_off_or_in_the_first_seconds() {
        let mut p = Progress::new(Mode::Log, None);
        p.tick(1);
        assert!(p.last.is_none(), "nothing in the first {QUIET_START:?}");
        let mut p = Progress::new(Mode::Off, None);
        p.start -= Duration::from_secs(60);
        p.tick(1);
        assert!(p.last.is_none());
        let mut p = Progress::new(Mode::Log, None);
        p.start -= Duration::from_secs(60);
        p.tick(1);
        let first = p.last.expect("a line after a minute");
        p.tick(2);
        assert_eq!(p.last, Some(first), "the next only after {LOG_EVERY:?}");
    }
}
