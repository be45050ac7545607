//! `--diff-against OLD`: what changed since an earlier run.
//!
//! OLD is that run's `stacks.folded`, its output folder, or its flamegraph
//! (the stacks written beside it are read). It is read before
//! anything is recorded (a wrong path fails at once, not after the run) and
//! so before the new results replace it: `--diff-against fg --out fg` compares
//! with the run that `fg` held.
//!
//! Two results come of it:
//!
//! - `diff.svg`, drawn by [`crate::output::svg::render_diff_svg`] (inferno's
//!   differential flamegraph): widths from the new run, red where a stack has
//!   more samples than before, blue where fewer. The old counts are scaled
//!   to the new total first (inferno's `normalize`), since two runs are
//!   rarely the same length: colours show shares that changed, not a run
//!   that was longer.
//! - [`Changes`]: the functions whose share of self time (samples where they
//!   are the leaf, as in the summary's hottest list) changed most, in
//!   percentage points, printed after the run.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::artifacts;
use crate::collect::folded;
use crate::exit::Exit;
use crate::model::counts::percent;
use crate::model::folded::Folded;
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
    /// Compares this run's stacks with these: `diff.svg` (drawn with
    /// `opts`, titled after `labels`) and the functions that changed most.
    pub fn compare(
        &self,
        folded: &[u8],
        opts: &RenderOptions,
        labels: &Labels,
    ) -> Result<(Vec<u8>, Changes)> {
        let old = self.path.display();
        let labels = Labels {
            title: format!("{}: change since {old}", labels.title),
            subtitle: format!(
                "red: more samples than in {old}, blue: fewer (its counts scaled to this \
                 run's total); widths: this run"
            ),
        };
        let mut svg = Vec::new();
        svg::render_diff_svg(&self.folded.text, folded, true, opts, &labels, &mut svg)
            .context("cannot draw the differential flamegraph from these stacks")?;
        let changes = Changes::between(
            &self.path,
            &String::from_utf8_lossy(&self.folded.text),
            &String::from_utf8_lossy(folded),
            crate::defaults::CHANGED,
        );
        Ok((svg, changes))
    }
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
    /// Largest change first (by absolute value; ties by name).
    pub top: Vec<Change>,
}

impl Changes {
    /// Compares the self time of `new` with `old` (folded stacks), keeping
    /// the `top` functions whose share changed most.
    pub fn between(old_path: &Path, old: &str, new: &str, top: usize) -> Changes {
        let (before, old_samples) = crate::model::counts::self_time(old);
        let (after, new_samples) = crate::model::counts::self_time(new);
        let mut names: Vec<&str> = before.keys().chain(after.keys()).copied().collect();
        names.sort_unstable();
        names.dedup();
        let mut changes: Vec<Change> = names
            .into_iter()
            .map(|name| Change {
                name: name.to_string(),
                old: percent(before.get(name).copied().unwrap_or(0), old_samples),
                new: percent(after.get(name).copied().unwrap_or(0), new_samples),
            })
            .filter(|c| c.delta() != 0.0)
            .collect();
        changes.sort_by(|a, b| {
            b.delta()
                .abs()
                .total_cmp(&a.delta().abs())
                .then_with(|| a.name.cmp(&b.name))
        });
        changes.truncate(top);
        Changes {
            old_path: old_path.to_path_buf(),
            old_samples,
            new_samples,
            top: changes,
        }
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
        if self.top.is_empty() {
            writeln!(f, "    nothing: every function has the same share")?;
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
                ("encode", 30.0, 25.0),
            ]
        );
        let shown = c.to_string();
        assert!(
            shown.contains(" +50.0 pts    0.0 % →  50.0 %  fill"),
            "{shown}"
        );
        assert!(
            shown.contains(" -25.0 pts   50.0 % →  25.0 %  sort"),
            "{shown}"
        );
        assert_eq!(Changes::between(Path::new("old"), OLD, NEW, 2).top.len(), 2);
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
