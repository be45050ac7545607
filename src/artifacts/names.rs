//! The names of the files in the output folder: our results, our markers,
//! and the hidden names of what we write beside them.

/// Name of the flamegraph in the output folder.
pub const SVG: &str = "flamegraph.svg";
/// Name of the folded stacks in the output folder.
pub const FOLDED: &str = "stacks.folded";
/// Name of the kept perf.data (with --keep-perf-data).
pub const PERF_DATA: &str = "perf.data";
/// Name of the page with the heatmap and flamegraphs of any range of the run.
pub const REPORT: &str = "report.html";
/// Name of the differential flamegraph (with --diff-against).
pub const DIFF_SVG: &str = "diff.svg";
/// Name of the differential flamegraph drawn with the earlier run's widths,
/// where what disappeared shows (with --diff-against).
pub const DIFF_REMOVED_SVG: &str = "diff-removed.svg";
/// Name of the pprof profile (with --format pprof).
pub const PPROF: &str = "profile.pb.gz";
/// Every name a run may leave in the output folder. [`Set::commit`](super::Set::commit) removes
/// those that its set does not include, so that the folder always holds one
/// run's results; add a name here when a run starts writing a new file.
pub const RESULTS: &[&str] = &[
    FOLDED,
    SVG,
    REPORT,
    PERF_DATA,
    DIFF_SVG,
    DIFF_REMOVED_SVG,
    PPROF,
];

/// Start of our staging folders' names: `.rust-flamegraph.<pid>.<random>`.
pub const STAGING_PREFIX: &str = ".rust-flamegraph.";
/// Files put in an output folder of ours so that cargo and git leave it out
/// of the package around it, like cargo's own `target/`: new results must not
/// make cargo rerun a build script that names no `rerun-if-changed` files
/// (cargo then watches every file of the package). Cargo lists a package's
/// files from the git index and working tree when the package is tracked,
/// minus what `.gitignore` ignores; otherwise by walking its folder, where it
/// skips dot-files and every folder holding a `Cargo.toml` (another package).
pub const MARKERS: &[(&str, &str)] = &[
    (
        ".gitignore",
        "# rust-flamegraph's results: not part of the package around them.\n*\n",
    ),
    (
        "Cargo.toml",
        "# Written by rust-flamegraph. This folder holds its results, not a package:\n\
         # this file makes cargo leave the folder out of the package around it, so\n\
         # that new results do not rebuild a crate whose build script has no\n\
         # rerun-if-changed (.gitignore does the same where git tracks the crate).\n\
         [workspace]\n",
    ),
    (
        "CACHEDIR.TAG",
        "Signature: 8a477f597d28d172789f06886806bc55\n\
         # This folder holds rust-flamegraph's results, which it can write again.\n",
    ),
];

/// Start of the hidden name of what [`OutDir::put_aside`](super::OutDir::put_aside) keeps in the output
/// folder, in a container (not [`STAGING_PREFIX`]: the next run must not
/// remove it).
pub const KEPT_PREFIX: &str = ".rust-flamegraph-kept.";
