//! `--diff-against OLD`: what changed since an earlier run.
//!
//! OLD is that run's `stacks.folded`, its output folder, or its flamegraph
//! (the stacks written beside it are read). It is read before
//! anything is recorded (a wrong path fails at once, not after the run) and
//! so before the new results replace it: `--diff-against fg --out fg` compares
//! with the run that `fg` held.
//!
//! Three results come of it:
//!
//! - `diff.svg`, drawn by [`crate::output::svg::render_diff_svg`] (inferno's
//!   differential flamegraph): widths from the new run, red where a stack has
//!   more samples than before, blue where fewer. The old counts are scaled
//!   to the new total first (inferno's `normalize`), since two runs are
//!   rarely the same length: colours show shares that changed, not a run
//!   that was longer.
//! - `diff-removed.svg`, drawn by [`crate::output::svg::render_removed_svg`]
//!   (inferno's negated view): widths from the old run, the same colours
//!   (the new counts scaled to the old total). A stack that is gone has no
//!   width in `diff.svg`; here it is drawn at its old share, in blue.
//! - [`Changes`]: the functions whose share of self time (samples where they
//!   are the leaf, as in the summary's hottest list) changed most, in
//!   percentage points, printed after the run. A change within sampling
//!   noise ([`noise`]) is left out, and when every change is, a
//!   warning says so with the smaller run's sample count.

pub mod noise;

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use foldhash::{HashSet, HashSetExt};

use crate::artifacts;
use crate::collect::folded;
use crate::exit::Exit;
use crate::model::counts::percent;
use crate::model::folded::{parse_line, Folded};
use crate::output::svg::{self, Labels, RenderOptions};

/// The earlier run's stacks.
#[derive(Debug)]
pub struct Old {
    /// The folded stacks file that was read.
    pub path: PathBuf,
    /// Its stacks.
    pub folded: Folded,
}

impl Old {
    /// Reads `old`: a folded stacks file, or an output folder holding one.
    /// Errors (exit code 1) name `--diff-against` and what to give instead.
    pub fn load(old: &Path) -> Result<Old> {
        let fail =
            |why: String| Exit::Other.error(format!("--diff-against {}: {why}", old.display()));
        let path = if old.is_dir() {
            let path = old.join(artifacts::FOLDED);
            if !path.exists() {
                return Err(fail(format!(
                    "this folder holds no {}: give the output folder of an earlier run, \
                     or the stacks.folded it wrote",
                    artifacts::FOLDED
                )));
            }
            path
        } else if !old.exists() {
            return Err(fail(
                "no such file or folder: give the output folder of an earlier run, or the \
                 stacks.folded it wrote"
                    .into(),
            ));
        } else if old
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("svg"))
        {
            // The flamegraph of an earlier run: its stacks are beside it,
            // `NAME.stacks.folded` (`--out NAME.svg`) or `stacks.folded`.
            let stem = old.file_stem().unwrap_or_default().to_string_lossy();
            let beside = [
                old.with_file_name(format!("{stem}.{}", artifacts::FOLDED)),
                old.with_file_name(artifacts::FOLDED),
            ];
            match beside.into_iter().find(|p| p.is_file()) {
                Some(path) => path,
                None => {
                    return Err(fail(format!(
                        "an SVG holds drawn frames, not samples, and no {} is beside it: \
                         give the stacks.folded written with it",
                        artifacts::FOLDED
                    )))
                }
            }
        } else {
            old.to_path_buf()
        };
        let folded = folded::read_folded_file(&path).map_err(|e| fail(crate::exit::message(&e)))?;
        for warning in &folded.warnings {
            crate::say!("rust-flamegraph: warning: --diff-against: {warning}");
        }
        Ok(Old { path, folded })
    }
}

impl Old {
    /// Compares this run's stacks with these: `diff.svg` and
    /// `diff-removed.svg` (drawn with `opts`, titled after `labels`) and the
    /// functions that changed most. When every change is within sampling
    /// noise, says so on stderr (the summary repeats it).
    pub fn compare(&self, folded: &[u8], opts: &RenderOptions, labels: &Labels) -> Result<Diff> {
        let old = self.path.display();
        let grown = Labels {
            title: format!("{}: change since {old}", labels.title),
            subtitle: format!(
                "red: more samples than in {old}, blue: fewer (its counts scaled to this \
                 run's total); widths: this run"
            ),
        };
        let mut svg = Vec::new();
        svg::render_diff_svg(&self.folded.text, folded, true, opts, &grown, &mut svg)
            .context("cannot draw the differential flamegraph from these stacks")?;
        let removed = Labels {
            title: format!("{}: what {old} had", labels.title),
            subtitle: format!(
                "widths: {old}, where what is gone shows; red: more samples in this run, \
                 blue: fewer (this run's counts scaled to {old}'s total)"
            ),
        };
        let mut removed_svg = Vec::new();
        svg::render_removed_svg(
            &self.folded.text,
            folded,
            true,
            opts,
            &removed,
            &mut removed_svg,
        )
        .context("cannot draw the flamegraph of what disappeared from these stacks")?;
        let changes = Changes::between_weighed(
            &self.path,
            &String::from_utf8_lossy(&self.folded.text),
            &String::from_utf8_lossy(folded),
            crate::defaults::CHANGED,
            !opts.nanoseconds,
        );
        if let Some(warning) = changes.warning() {
            crate::say!("rust-flamegraph: warning: {warning}");
        }
        Ok(Diff {
            svg,
            removed_svg,
            changes,
        })
    }
}

/// What [`Old::compare`] makes.
#[derive(Debug)]
pub struct Diff {
    /// `diff.svg`: this run's stacks, coloured by their change.
    pub svg: Vec<u8>,
    /// `diff-removed.svg`: the old run's stacks, coloured by their change.
    pub removed_svg: Vec<u8>,
    /// The functions that changed most.
    pub changes: Changes,
}

/// One function's share of self time, before and now.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The function (a frame name, as in the flamegraph).
    pub name: String,
    /// Its share of the old run's samples, in percent.
    pub old: f64,
    /// Its share of this run's samples, in percent.
    pub new: f64,
    /// The p-value of the change ([`noise::p_value`]): how likely sampling
    /// alone makes one at least this large.
    pub p: f64,
    /// Sampling noise explains the change: `p` is not below
    /// [`NOISE_ALPHA`](crate::defaults::NOISE_ALPHA) over the number of
    /// functions compared.
    pub noise: bool,
}

impl Change {
    /// How much the share grew (negative: shrank), in percentage points.
    pub fn delta(&self) -> f64 {
        self.new - self.old
    }
}

/// The functions whose share of self time changed most since an earlier run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Changes {
    /// The earlier run's stacks, as named to the user.
    pub old_path: PathBuf,
    /// Samples in the earlier run.
    pub old_samples: u64,
    /// Samples in this run.
    pub new_samples: u64,
    /// The largest changes beyond sampling noise, largest first (by
    /// absolute value; ties by name).
    pub top: Vec<Change>,
    /// How many changes larger than the last of `top` were left out,
    /// sampling noise explaining them.
    pub noise: usize,
    /// Whether any function's share changed at all.
    pub any: bool,
    /// Distinct stacks of the earlier run that this run does not have.
    pub gone_stacks: u64,
    /// Samples of the earlier run in those stacks.
    pub gone_samples: u64,
    /// The file that draws what disappeared (`diff-removed.svg`, or
    /// `NAME.diff-removed.svg` with `--out NAME.svg`).
    pub removed_svg: String,
}

impl Changes {
    /// Compares the self time of `new` with `old` (folded stacks), keeping
    /// the `top` functions whose share changed most beyond sampling noise.
    pub fn between(old_path: &Path, old: &str, new: &str, top: usize) -> Changes {
        Changes::between_weighed(old_path, old, new, top, true)
    }

    /// [`Changes::between`], where counts are samples (`samples`) or
    /// nanoseconds (`--off-cpu`): the noise test counts samples, and a
    /// wait's nanoseconds are none, so it is not applied to time.
    pub fn between_weighed(
        old_path: &Path,
        old: &str,
        new: &str,
        top: usize,
        samples: bool,
    ) -> Changes {
        let (before, old_samples) = crate::model::counts::self_time(old);
        let (after, new_samples) = crate::model::counts::self_time(new);
        let mut names: Vec<&str> = before.keys().chain(after.keys()).copied().collect();
        names.sort_unstable();
        names.dedup();
        // Bonferroni: each of the functions is tested at alpha / their number.
        let each = crate::defaults::NOISE_ALPHA / names.len().max(1) as f64;
        let mut changes: Vec<Change> = names
            .into_iter()
            .map(|name| {
                let (x1, x2) = (
                    before.get(name).copied().unwrap_or(0),
                    after.get(name).copied().unwrap_or(0),
                );
                let p = noise::p_value(x1, old_samples, x2, new_samples);
                Change {
                    name: name.to_string(),
                    old: percent(x1, old_samples),
                    new: percent(x2, new_samples),
                    p,
                    noise: samples && p >= each,
                }
            })
            .filter(|c| c.delta() != 0.0)
            .collect();
        changes.sort_by(|a, b| {
            b.delta()
                .abs()
                .total_cmp(&a.delta().abs())
                .then_with(|| a.name.cmp(&b.name))
        });
        let any = !changes.is_empty();
        // The `top` largest beyond noise, and how many within noise rank
        // above the last of them.
        let (mut kept, mut noise, mut passed) = (Vec::new(), 0, 0);
        for change in changes {
            if kept.len() == top {
                break;
            }
            if change.noise {
                passed += 1;
            } else {
                noise = passed;
                kept.push(change);
            }
        }
        // Stacks of the old run with samples that this run has none of (a
        // stack may be on several lines).
        let now: HashSet<&str> = new
            .lines()
            .filter_map(parse_line)
            .filter(|&(_, count)| count > 0)
            .map(|(frames, _)| frames)
            .collect();
        let mut gone: HashSet<&str> = HashSet::new();
        let mut gone_samples = 0u64;
        for (frames, count) in old.lines().filter_map(parse_line) {
            if count > 0 && !now.contains(frames) {
                gone.insert(frames);
                gone_samples = gone_samples.saturating_add(count);
            }
        }
        let gone_stacks = gone.len() as u64;
        Changes {
            old_path: old_path.to_path_buf(),
            old_samples,
            new_samples,
            top: kept,
            noise,
            any,
            gone_stacks,
            gone_samples,
            removed_svg: artifacts::DIFF_REMOVED_SVG.to_string(),
        }
    }

    /// The warning when functions' shares changed but sampling noise explains
    /// every change: it names the smaller run's sample count.
    pub fn warning(&self) -> Option<String> {
        (self.any && self.top.is_empty()).then(|| {
            format!(
                "--diff-against: every difference is within sampling noise: with {} samples \
                 in the smaller run, no function's change is beyond chance (exact test at the \
                 {} % level, see docs/diff-and-pprof.md); to see smaller changes, profile \
                 longer or at a higher --freq",
                self.old_samples.min(self.new_samples),
                crate::defaults::NOISE_ALPHA * 100.0
            )
        })
    }
}

impl fmt::Display for Changes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  changed most since {} ({} samples then; share of self time, then → now):",
            self.old_path.display(),
            self.old_samples
        )?;
        if !self.any {
            writeln!(f, "    nothing: every function has the same share")?;
        } else if self.top.is_empty() {
            writeln!(f, "    nothing beyond sampling noise")?;
        }
        for c in &self.top {
            let name = if c.name.chars().count() > 100 {
                format!("{}…", c.name.chars().take(99).collect::<String>())
            } else {
                c.name.clone()
            };
            writeln!(
                f,
                "    {:+6.1} pts  {:5.1} % → {:5.1} %  {name}",
                c.delta(),
                c.old,
                c.new
            )?;
        }
        if self.noise > 0 && !self.top.is_empty() {
            writeln!(
                f,
                "    left out: {} larger change(s), within sampling noise",
                self.noise
            )?;
        }
        if let Some(warning) = self.warning() {
            writeln!(f, "  warning: {warning}")?;
        }
        match self.gone_stacks {
            0 => writeln!(
                f,
                "  no stack is gone since then ({} draws that run's stacks)",
                self.removed_svg
            )?,
            n => writeln!(
                f,
                "  gone since then: {n} stack(s), {:.1} % of that run's samples, drawn in {}",
                percent(self.gone_samples, self.old_samples),
                self.removed_svg
            )?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "\
demo;main;sort 50
demo;main;encode 30
demo;main;encode;fmt 20
";
    const NEW: &str = "\
demo;main;sort 100
demo;main;encode 100
demo;main;fill 200
";

    #[test]
    fn shares_of_self_time_largest_change_first() {
        let c = Changes::between(Path::new("old"), OLD, NEW, 10);
        assert_eq!((c.old_samples, c.new_samples), (100, 400));
        let got: Vec<(&str, f64, f64)> = c
            .top
            .iter()
            .map(|c| (c.name.as_str(), c.old, c.new))
            .collect();
        assert_eq!(
            got,
            [
                ("fill", 0.0, 50.0),
                ("sort", 50.0, 25.0),
                ("fmt", 20.0, 0.0),
                // encode, 30 % → 25 %: 30 of its 130 samples in the first
                // run, 26 expected: noise.
            ]
        );
        assert_eq!(c.noise, 0, "encode is the smallest change");
        assert_eq!((c.gone_stacks, c.gone_samples), (1, 20), "encode;fmt");
        assert_eq!(c.warning(), None);
        let shown = c.to_string();
        assert!(
            shown.contains(" +50.0 pts    0.0 % →  50.0 %  fill"),
            "{shown}"
        );
        assert!(
            shown.contains(" -25.0 pts   50.0 % →  25.0 %  sort"),
            "{shown}"
        );
        assert!(
            shown.contains(
                "  gone since then: 1 stack(s), 20.0 % of that run's samples, drawn in \
                 diff-removed.svg"
            ),
            "{shown}"
        );
        assert!(!shown.contains("noise"), "{shown}");
        assert_eq!(Changes::between(Path::new("old"), OLD, NEW, 2).top.len(), 2);
    }

    #[test]
    fn changes_within_noise_are_left_out_and_counted() {
        // 1000 samples each. other 70 % → 63 % and big 30 % → 34 % are the
        // largest changes, but 1.9 and 1.6 standard deviations: noise; rare,
        // 0 → 30 samples, is not (all 30 in one run of two equal ones: 2⁻²⁹).
        let old = "main;big 300\nmain;other 700\n";
        let new = "main;big 340\nmain;rare 30\nmain;other 630\n";
        let c = Changes::between(Path::new("old"), old, new, 5);
        let listed: Vec<&str> = c.top.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(listed, ["rare"]);
        assert_eq!(c.noise, 2);
        assert!(c.top[0].p < 1e-8, "{:?}", c.top);
        assert_eq!(c.warning(), None, "one change is beyond noise");
        let shown = c.to_string();
        assert!(
            shown.contains("left out: 2 larger change(s), within sampling noise"),
            "{shown}"
        );
        assert!(shown.contains("no stack is gone since then"), "{shown}");
    }

    #[test]
    fn a_tiny_run_warns_with_its_sample_count_and_a_large_one_does_not() {
        // The same shares, 40/30/20/10 % → 45/28/17/10 %; the old run has
        // 300 samples, then 30 000, against 30 000 now.
        let shares = |scale: u64, a: u64, b: u64, c: u64, d: u64| {
            format!(
                "m;a {}\nm;b {}\nm;c {}\nm;d {}\n",
                a * scale,
                b * scale,
                c * scale,
                d * scale
            )
        };
        let new = shares(300, 45, 28, 17, 10);
        let tiny = Changes::between(Path::new("old"), &shares(3, 40, 30, 20, 10), &new, 5);
        assert!(tiny.top.is_empty() && tiny.any, "{tiny:?}");
        let warning = tiny.warning().expect("a warning");
        assert!(
            warning.contains("within sampling noise: with 300 samples in the smaller run"),
            "{warning}"
        );
        let shown = tiny.to_string();
        assert!(shown.contains("nothing beyond sampling noise"), "{shown}");
        assert!(shown.contains(&format!("  warning: {warning}")), "{shown}");
        let large = Changes::between(Path::new("old"), &shares(300, 40, 30, 20, 10), &new, 5);
        assert_eq!(large.warning(), None);
        let listed: Vec<&str> = large.top.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(listed, ["a", "c", "b"], "d kept its share");
        // Under --off-cpu counts are nanoseconds, not samples: the test does
        // not apply, and the changes the tiny run showed are all listed.
        let tiny_ns =
            Changes::between_weighed(Path::new("old"), &shares(3, 40, 30, 20, 10), &new, 5, false);
        assert_eq!(tiny_ns.top.len(), 3, "{tiny_ns:?}");
        assert_eq!(tiny_ns.warning(), None);
    }

    #[test]
    fn the_same_shares_are_no_change() {
        let c = Changes::between(Path::new("old"), OLD, OLD, 5);
        assert!(c.top.is_empty());
        assert!(c.to_string().contains("nothing"), "{c}");
    }

    #[test]
    fn a_wrong_old_names_the_flag_and_what_to_give() {
        let dir = tempfile::tempdir().unwrap();
        let check = |path: &Path, says: &str| {
            let err = Old::load(path).unwrap_err();
            assert_eq!(Exit::of(&err), Exit::Other);
            let message = crate::exit::message(&err);
            assert!(message.starts_with("--diff-against "), "{message}");
            assert!(message.contains(says), "{says}: {message}");
        };
        check(&dir.path().join("missing"), "no such file or folder");
        check(dir.path(), "this folder holds no stacks.folded");
        let empty = dir.path().join("empty.folded");
        std::fs::write(&empty, "").unwrap();
        check(&empty, "holds no folded stacks");
        let garbage = dir.path().join("notes.txt");
        std::fs::write(&garbage, "hello world\nnot stacks\n").unwrap();
        check(&garbage, "holds no folded stacks");
        let svg = dir.path().join(artifacts::SVG);
        std::fs::write(&svg, "<svg/>").unwrap();
        check(&svg, "no stacks.folded is beside it");
        // An output folder, or the SVG in it, stands for its stacks.folded;
        // `--out my.svg` wrote my.svg and my.stacks.folded.
        std::fs::write(dir.path().join(artifacts::FOLDED), "a;b 3\n").unwrap();
        std::fs::write(dir.path().join("my.stacks.folded"), "c;d 4\n").unwrap();
        std::fs::write(dir.path().join("my.svg"), "<svg/>").unwrap();
        for (given, read, text) in [
            (dir.path().to_path_buf(), artifacts::FOLDED, "a;b 3\n"),
            (svg, artifacts::FOLDED, "a;b 3\n"),
            (dir.path().join("my.svg"), "my.stacks.folded", "c;d 4\n"),
        ] {
            let old = Old::load(&given).unwrap();
            assert_eq!(old.path, dir.path().join(read), "{given:?}");
            assert_eq!(old.folded.text, text.as_bytes(), "{given:?}");
        }
    }
}
