//! What the target stage is given and gives back: which program to build
//! (cargo's meanings), and the program to run.

use std::ffi::OsString;
use std::path::PathBuf;

use cargo_metadata::TargetKind;

/// Which program to profile and how to build it (cargo's meanings).
#[derive(Debug, Clone, Default)]
pub struct TargetOptions {
    /// Path to Cargo.toml.
    pub manifest_path: Option<PathBuf>,
    /// Package (`-p`).
    pub package: Option<String>,
    /// `--bin NAME`.
    pub bin: Option<String>,
    /// `--example NAME`.
    pub example: Option<String>,
    /// `--bench NAME`.
    pub bench: Option<String>,
    /// `--test NAME`.
    pub test: Option<String>,
    /// `--unit-test [NAME]` (empty: the library's).
    pub unit_test: Option<String>,
    /// `--unit-bench [NAME]` (empty: the library's): the unit-test harness, run with `--bench`.
    pub unit_bench: Option<String>,
    /// `--unit-test-kind bin`: NAME is the binary, even when the library has that name too.
    pub unit_bin: bool,
    /// Any program: `args` are the program and its arguments.
    pub exec: bool,
    /// Features to activate.
    pub features: Option<String>,
    /// Do not activate the `default` feature.
    pub no_default_features: bool,
    /// Cargo profile.
    pub profile: String,
    /// Target dir for the profiling builds (default: ours in the workspace's).
    pub target_dir: Option<PathBuf>,
    /// `--target TRIPLE` for cargo.
    pub triple: Option<String>,
    /// Arguments for the program (with `exec`: the program and its arguments).
    pub args: Vec<OsString>,
    /// Print the commands that are run.
    pub verbose: bool,
    /// How cargo and the program run (as root: without capabilities).
    pub privileges: crate::sys::privilege::Privileges,
}

/// A program ready to be run under perf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Path (or name on PATH) of the executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// The cargo target it was built from (`None` for `--exec`).
    pub name: Option<String>,
}

impl Target {
    /// `program args…` as a command line (program and arguments).
    pub fn command(&self) -> Vec<OsString> {
        std::iter::once(self.program.clone().into_os_string())
            .chain(self.args.iter().cloned())
            .collect()
    }

    /// A short human-readable form, as a shell would take it: the cargo
    /// target's name (a bench's or test's file name carries a hash), else the
    /// program's file name, and its arguments.
    pub fn display(&self) -> String {
        let name = match &self.name {
            Some(name) => name.as_ref(),
            None => self.program.file_name().unwrap_or(self.program.as_os_str()),
        };
        crate::model::text::join_args(
            &std::iter::once(name)
                .chain(self.args.iter().map(|a| a.as_os_str()))
                .collect::<Vec<_>>(),
        )
    }
}

/// A target of a cargo package, as cargo names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CargoTarget {
    /// Package name.
    pub package: String,
    /// Kind of target.
    pub kind: Kind,
    /// Target name.
    pub name: String,
}

/// Kinds of target that can be profiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--bin`
    Bin,
    /// `--example`
    Example,
    /// `--bench` (run with `--bench`)
    Bench,
    /// `--test`
    Test,
    /// `--unit-test`: the test harness of a lib or bin.
    UnitTestLib,
    /// `--unit-test NAME` where NAME is a binary.
    UnitTestBin,
}

impl Kind {
    /// Cargo's flag that selects a target of this kind (`None`: `--lib`).
    pub fn flag(self) -> Option<&'static str> {
        match self {
            Kind::Bin | Kind::UnitTestBin => Some("--bin"),
            Kind::Example => Some("--example"),
            Kind::Bench => Some("--bench"),
            Kind::Test => Some("--test"),
            Kind::UnitTestLib => None,
        }
    }

    /// What to call it in messages.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Bin => "binary",
            Kind::Example => "example",
            Kind::Bench => "bench",
            Kind::Test => "test",
            Kind::UnitTestLib | Kind::UnitTestBin => "unit tests of",
        }
    }

    /// Whether cargo's `artifact` (of `target`, built as a test harness or
    /// not) is the executable of this kind.
    pub fn is_artifact(self, target: &cargo_metadata::Target, test_harness: bool) -> bool {
        match self {
            Kind::Bin => target.is_bin() && !test_harness,
            Kind::Example => target.is_example(),
            Kind::Bench => target.is_bench(),
            Kind::Test => target.is_test(),
            Kind::UnitTestLib => target.is_lib() && test_harness,
            Kind::UnitTestBin => target.is_bin() && test_harness,
        }
    }

    /// The kinds named by a flag of their own, with cargo's target kind.
    pub(crate) const FLAGGED: [(Kind, TargetKind); 4] = [
        (Kind::Bin, TargetKind::Bin),
        (Kind::Example, TargetKind::Example),
        (Kind::Bench, TargetKind::Bench),
        (Kind::Test, TargetKind::Test),
    ];
}
