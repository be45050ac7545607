//! What a run draws and prints from its stacks: the SVG ([`svg`]),
//! report.html ([`report`]), diff.svg and diff-removed.svg ([`diff`]),
//! profile.pb.gz ([`pprof`]) and the summary ([`summary`]).

pub mod diff;
pub mod pprof;
pub mod report;
pub mod summary;
pub mod svg;

/// What `--format` asks for: the flamegraph and the folded stacks are always
/// written (the SVG is the result; the stacks are what `--from-folded` and
/// `--diff-against` read back), so these name what is added to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// flamegraph.svg (always written).
    Svg,
    /// stacks.folded (always written).
    Folded,
    /// profile.pb.gz: pprof's gzipped protobuf, for `go tool pprof`,
    /// Grafana Pyroscope and Parca.
    Pprof,
}
