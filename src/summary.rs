//! The short report printed after a run: samples, stack completeness and the
//! hottest functions by self time.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use crate::folded::parse_line;
use crate::stacks::is_thread_root;

/// Figures computed from folded stacks.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    /// Samples in all stacks.
    pub samples: u64,
    /// Samples whose stack reaches the start of its thread (`_start`, `main`,
    /// `clone3`, …): the unwinding was complete.
    pub complete: u64,
    /// Functions by self time (samples where they are the leaf), hottest first.
    pub hottest: Vec<(String, u64)>,
    /// With `--diff-against`: the functions whose share changed most.
    pub changed: Option<crate::diff::Changes>,
}

/// Samples per leaf frame (self time), and the total. Counts come from
/// files anyone can write: they saturate, never overflow.
pub(crate) fn self_time(folded: &str) -> (HashMap<&str, u64>, u64) {
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

impl Summary {
    /// Summarises folded stacks, keeping the `top` hottest functions.
    /// Lines that are not `frames count` are skipped.
    pub fn from_folded(folded: &str, top: usize) -> Summary {
        let (self_time, samples) = self_time(folded);
        let complete = folded
            .lines()
            .filter_map(parse_line)
            .filter(|(frames, _)| frames.split(';').any(is_thread_root))
            .fold(0u64, |sum, (_, count)| sum.saturating_add(count));
        let mut hottest: Vec<(String, u64)> = self_time
            .into_iter()
            .map(|(f, c)| (f.to_string(), c))
            .collect();
        hottest.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        hottest.truncate(top);
        Summary {
            samples,
            complete,
            hottest,
            changed: None,
        }
    }

    /// Share of samples whose stack reaches the start of its thread, in percent.
    pub fn complete_share(&self) -> f64 {
        percent(self.complete, self.samples)
    }
}

/// `text` as it may reach a terminal: every control character (escape
/// sequences, line breaks, C1 controls) shown as a visible escape (`\x1b`,
/// `\u{9b}`), as in the SVG. For whatever came from a recording, a binary or
/// a file: a function named `\x1b]0;…\x07` must not retitle the window.
pub fn printable(text: &str) -> Cow<'_, str> {
    crate::render::xml_safe(text)
}

/// `text` of several lines, each [`printable`].
fn printable_lines(text: &str) -> String {
    text.lines()
        .map(|l| printable(l).into_owned() + "\n")
        .collect()
}

/// `part` of `whole` in percent (0 when `whole` is 0).
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  hottest functions (self time):")?;
        for (name, count) in &self.hottest {
            let name = printable(name);
            let name = if name.chars().count() > 100 {
                format!("{}…", name.chars().take(99).collect::<String>())
            } else {
                name.into_owned()
            };
            writeln!(
                f,
                "    {:5.1} %  {:>7}  {name}",
                percent(*count, self.samples),
                count
            )?;
        }
        if let Some(changed) = &self.changed {
            write!(f, "{}", printable_lines(&changed.to_string()))?;
        }
        Ok(())
    }
}

impl fmt::Display for crate::pipeline::Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.summary;
        writeln!(
            f,
            "rust-flamegraph: profiled `{}`",
            printable(&self.command)
        )?;
        if let Some(rec) = &self.recording {
            let status = match rec.failure() {
                Some(failure) => format!("the program {failure}"),
                None if rec.stopped => "stopped early".to_string(),
                None => "exit status 0".to_string(),
            };
            writeln!(
                f,
                "  wall time            {:.2} s ({status})",
                rec.wall.as_secs_f64()
            )?;
        }
        let lost = self
            .warnings
            .iter()
            .find(|w| w.contains("lost"))
            .map_or("none lost".into(), |w| printable(w));
        writeln!(f, "  samples              {} ({lost})", s.samples)?;
        let advice = match self.call_graph {
            Some(crate::cli::CallGraph::Fp) if s.complete_share() < 90.0 => {
                " (the rest stop in code without frame pointers, e.g. libc; \
                 --call-graph dwarf recovers them)"
            }
            Some(crate::cli::CallGraph::Dwarf) if s.complete_share() < 90.0 => {
                " (the rest are deeper than the 16 KB of stack perf copies, \
                 or run code without unwind tables)"
            }
            _ => "",
        };
        writeln!(
            f,
            "  complete stacks      {:.1} %{advice}",
            s.complete_share(),
        )?;
        let secs = self.postprocess.as_secs_f64();
        match self.recording.as_ref().and_then(|r| r.streamed) {
            // Unwound while the program ran: a rate over what is left would mislead.
            Some(_) => writeln!(
                f,
                "  post-processing      {secs:.2} s after the program ended \
                 (stacks were unwound while it ran)"
            )?,
            None => writeln!(
                f,
                "  post-processing      {secs:.2} s ({:.0} samples/s)",
                s.samples as f64 / secs.max(1e-9)
            )?,
        }
        write!(f, "{s}")?;
        for warning in self.warnings.iter().filter(|w| !w.contains("lost")).take(5) {
            writeln!(f, "  warning: {}", printable(warning))?;
        }
        for path in &self.written {
            writeln!(f, "  wrote {}", printable(&crate::artifacts::shown(path)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOLDED: &str = "\
demo;_start;main;demo::main;demo::run;demo::sort_blocks 60
demo;_start;main;demo::main;demo::run;demo::encode;alloc::fmt::format 25
demo;[libc.so.6] 10
demo;demo::main;demo::run;demo::sort_blocks 5
not a stack line
";

    #[test]
    fn self_time_shares_and_main_reach() {
        let s = Summary::from_folded(FOLDED, 10);
        assert_eq!(s.samples, 100);
        assert_eq!(s.complete, 90);
        assert_eq!(s.complete_share(), 90.0);
        assert_eq!(
            s.hottest,
            vec![
                ("demo::sort_blocks".to_string(), 65),
                ("alloc::fmt::format".to_string(), 25),
                ("[libc.so.6]".to_string(), 10)
            ]
        );
        let shown = s.to_string();
        assert!(
            shown.contains(" 65.0 %") && shown.contains("demo::sort_blocks"),
            "{shown}"
        );
    }

    #[test]
    fn names_are_printed_with_control_characters_escaped() {
        let s = Summary::from_folded("main;\x1b]0\x07pwned\x07 3\nmain;ok\u{9b}x 2\n", 10);
        let shown = s.to_string();
        assert!(
            !shown.chars().any(|c| c.is_control() && c != '\n'),
            "{shown:?}"
        );
        assert!(shown.contains("\\x1b]0\\x07pwned\\x07"), "{shown}");
        assert!(shown.contains("ok\\u{9b}x"), "{shown}");
        assert_eq!(printable_lines("a\x07\nb\n"), "a\\x07\nb\n");
    }

    #[test]
    fn top_limits_the_list_and_empty_input_is_zero() {
        assert_eq!(Summary::from_folded(FOLDED, 1).hottest.len(), 1);
        let empty = Summary::from_folded("", 10);
        assert_eq!((empty.samples, empty.complete_share()), (0, 0.0));
    }
}
