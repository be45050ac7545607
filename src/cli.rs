//! Command-line options, spelled as in `cargo flamegraph` where it has them.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, ValueEnum};

use crate::defaults;
use crate::output::Format;
use crate::record::options::MAX_DWARF_STACK_BYTES;
use crate::record::{CallGraph, RecordOptions};
use crate::run::{Config, RunMode};

/// The flags of `cargo flamegraph` refused with a message saying what to use
/// instead (`--root` only when not root), as printed.
pub const REFUSED: &[(&str, &str)] = &[(
    "--root",
    "--root: rust-flamegraph does not run perf with sudo: run it as root \
         (`sudo -E rust-flamegraph …`), or let users profile with \
         `sudo sysctl kernel.perf_event_paranoid=1`",
)];

/// `--off-cpu` with `--perf-script`, refused: perf script counts samples,
/// and only the in-process reader weighs each wait by its time.
pub const OFF_CPU_PERF_SCRIPT: &str =
    "--off-cpu cannot be read with --perf-script: `perf script` counts samples, while \
     --off-cpu weighs each wait by how long it lasted, which only rust-flamegraph's own \
     reader does: drop --perf-script";

/// What `--help` ends with: the exit codes, and the image's folders.
fn after_help() -> String {
    format!(
        "{}\n\nIn the Docker image: results go to /out (mount a host folder there: \
         -v ./fg:/out); a crate mounted at /src is profiled instead of the bundled demo \
         (-v \"$PWD\":/src), and its builds are kept in /cache (-v rust-flamegraph-cache:/cache).",
        crate::exit::Exit::help_table()
    )
}

/// The name under which cargo runs this binary as `cargo flamegraph`.
pub const SUBCOMMAND: &str = "cargo-flamegraph";

/// Profile a Rust program with Linux perf and write an interactive flamegraph.
///
/// With no target options it builds the workspace's default package in
/// release mode (with symbols and frame pointers), runs it with ARGS under
/// `perf record` and writes `flamegraph.svg` and `stacks.folded` to --out.
#[derive(Parser, Debug, Clone)]
#[command(name = "rust-flamegraph", version, after_help = after_help())]
pub struct Options {
    /// Where the results go: a folder (created if missing), or a file ending
    /// in `.svg` for the flamegraph itself, the other files beside it named
    /// after it (`-o my.svg`: `my.svg`, `my.stacks.folded`).
    #[arg(short, long, visible_alias = "output", value_name = "DIR|FILE.svg", env = "RUST_FLAMEGRAPH_OUT", default_value = defaults::OUT)]
    pub out: PathBuf,

    #[command(flatten)]
    pub target: TargetArgs,

    #[command(flatten)]
    pub record: RecordArgs,

    #[command(flatten)]
    pub stacks: StackArgs,

    #[command(flatten)]
    pub render: RenderArgs,

    /// Keep perf.data in --out (it is deleted by default).
    #[arg(help_heading = "Run", long)]
    pub keep_perf_data: bool,

    /// Exit 0 even when the profiled program fails.
    #[arg(help_heading = "Run", long)]
    pub ignore_status: bool,

    /// Build the target with profiling settings and exit without running it.
    #[arg(help_heading = "Run", long, conflicts_with_all = ["exec", "pid", "perfdata", "from_folded"])]
    pub build_only: bool,

    /// Print the commands that are run.
    #[arg(help_heading = "Run", short, long)]
    pub verbose: bool,

    /// Run cargo (its build scripts too) and the program as root, with every
    /// capability. Without it, a run as root gives them none (and
    /// no_new_privs), as $RUST_FLAMEGRAPH_USER (UID or UID:GID), else the user who
    /// ran sudo, else the owner of the crate's folder (the image: of /src,
    /// else nobody); perf alone keeps root.
    #[arg(help_heading = "Run", long, conflicts_with_all = ["pid", "perfdata", "from_folded"])]
    pub keep_root: bool,

    /// Open the flamegraph once written (with `xdg-open` or `open`; in the
    /// image, says where it is on the host instead).
    #[arg(help_heading = "Run", long)]
    pub open: bool,

    /// Accepted for `cargo flamegraph`, which runs perf with sudo (and these
    /// sudo flags): here the run must already be root (the image is), or perf
    /// allowed by `kernel.perf_event_paranoid`; else an error says how.
    #[arg(help_heading = "Run", long, value_name = "SUDO FLAGS", num_args = 0..=1, default_missing_value = "", allow_hyphen_values = true)]
    pub root: Option<String>,

    /// Compress the perf.data kept by --keep-perf-data (zstd, level 1–22;
    /// `-z` alone is 1). Without --keep-perf-data there is nothing to compress.
    #[arg(short = 'z', long, value_name = "LEVEL", num_args = 0..=1, default_missing_value = "1", value_parser = clap::value_parser!(u32).range(1..=22))]
    pub compression_level: Option<u32>,

    /// Arguments for the profiled program (with --exec: the program and its arguments).
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<OsString>,
}

/// Which program to profile, with cargo's own meanings.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Target")]
pub struct TargetArgs {
    /// Path to Cargo.toml.
    #[arg(long, env = "RUST_FLAMEGRAPH_MANIFEST", value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,

    /// Package to profile (default: the workspace's `default-package` metadata, or the root package).
    #[arg(short, long, value_name = "SPEC")]
    pub package: Option<String>,

    /// Binary target to profile.
    #[arg(short, long, value_name = "NAME", group = "kind")]
    pub bin: Option<String>,

    /// Example target to profile.
    #[arg(long, value_name = "NAME", group = "kind")]
    pub example: Option<String>,

    /// Bench target to profile (run with `--bench`, so that it measures; a
    /// `--bench` of your own after `--` is not repeated).
    #[arg(long, value_name = "NAME", group = "kind")]
    pub bench: Option<String>,

    /// Integration test target to profile.
    #[arg(long, value_name = "NAME", group = "kind")]
    pub test: Option<String>,

    /// Unit tests of the library, or of the binary NAME.
    #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "", group = "kind")]
    pub unit_test: Option<String>,

    /// With --unit-test/--unit-bench NAME, when a library and a binary are
    /// both named NAME: which one.
    #[arg(long, value_enum, value_name = "KIND")]
    pub unit_test_kind: Option<UnitKind>,

    /// Unit benchmarks (`#[bench]`) of the library, or of the binary NAME: its
    /// test harness, run with `--bench`.
    #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "", group = "kind")]
    pub unit_bench: Option<String>,

    /// Profile any program: ARGS after `--` are the program and its arguments.
    #[arg(long, group = "kind")]
    pub exec: bool,

    /// Attach to a running process (stop with Ctrl-C or --duration).
    #[arg(long, value_name = "PID", group = "kind")]
    pub pid: Option<u32>,

    /// Render an existing perf.data instead of recording.
    #[arg(long, value_name = "FILE", group = "kind")]
    pub perfdata: Option<PathBuf>,

    /// Render existing folded stacks (a `stacks.folded`) instead of recording.
    #[arg(long, value_name = "FILE", group = "kind")]
    pub from_folded: Option<PathBuf>,

    /// With --perfdata: a recording made on another machine (an arm64 VM, a
    /// server), whose binaries and debug files are under DIR at their paths,
    /// and its kernel symbols in DIR/proc/kallsyms (as perf's `--symfs`).
    #[arg(long, value_name = "DIR", requires = "perfdata")]
    pub symfs: Option<PathBuf>,

    /// Space- or comma-separated features to activate.
    #[arg(short = 'f', long, value_name = "FEATURES")]
    pub features: Option<String>,

    /// Do not activate the `default` feature.
    #[arg(long)]
    pub no_default_features: bool,

    /// Cargo profile to build with [default: release; bench with --bench and
    /// --unit-bench, as `cargo bench`]
    #[arg(long, value_name = "NAME", conflicts_with = "dev")]
    pub profile: Option<String>,

    /// Build with the dev profile (shorthand for --profile dev).
    #[arg(long)]
    pub dev: bool,

    /// Build with the release profile: the default already, accepted as in
    /// `cargo run --release`.
    #[arg(short, long, conflicts_with = "dev")]
    pub release: bool,

    /// Build for this target triple (it must run on this machine, e.g.
    /// `x86_64-unknown-linux-musl`).
    #[arg(long = "target", value_name = "TRIPLE")]
    pub triple: Option<String>,

    /// Cargo target dir for the profiling builds (default: `rust-flamegraph/`
    /// inside the workspace's target dir, so that normal builds are not
    /// invalidated).
    #[arg(long, env = "RUST_FLAMEGRAPH_TARGET_DIR", value_name = "DIR")]
    pub target_dir: Option<PathBuf>,
}

impl Options {
    /// The options of this process's command line; exits with clap's message
    /// (and code 2) when they are wrong. See [`Options::from_args`].
    pub fn from_env() -> Options {
        Options::from_args(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    /// Parses a command line, program name first, as `cargo flamegraph` users
    /// write it:
    ///
    /// - run as `cargo-flamegraph` (a link to this binary on `PATH`), cargo
    ///   calls `cargo-flamegraph flamegraph ARGS…`: the subcommand's name is
    ///   dropped, so `cargo flamegraph ARGS…` is `rust-flamegraph ARGS…`;
    /// - `-c "record …"` is perf's whole command, as `cargo flamegraph` takes
    ///   it: see [`RecordArgs::perf_command`];
    /// - `--root` is checked: see [`Options::root`].
    pub fn from_args(
        args: impl IntoIterator<Item = impl Into<OsString>>,
    ) -> Result<Options, clap::Error> {
        let mut args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let as_subcommand = args.first().is_some_and(|a| {
            std::path::Path::new(a)
                .file_name()
                .is_some_and(|n| n == SUBCOMMAND)
        });
        if as_subcommand && args.get(1).is_some_and(|a| a == "flamegraph") {
            args.remove(1);
        }
        let mut opts = Options::try_parse_from(&args).map_err(|e| forgot_double_dash(e, &args))?;
        let usage = |message: String| {
            <Options as clap::CommandFactory>::command()
                .error(clap::error::ErrorKind::ValueValidation, message)
        };
        opts.record.perf_command().map_err(usage)?;
        if opts.record.off_cpu.is_some() && opts.stacks.perf_script {
            return Err(usage(OFF_CPU_PERF_SCRIPT.into()));
        }
        if opts.compression_level.is_some() && !opts.keep_perf_data {
            crate::say!(
                "rust-flamegraph: note: -z: nothing to compress, since perf.data is not kept \
                 (add --keep-perf-data to keep it, compressed)"
            );
        }
        if opts.root.is_some() {
            if !rustix::process::geteuid().is_root() {
                return Err(usage(REFUSED[0].1.into()));
            }
            if crate::sys::container::in_container() {
                crate::say!("rust-flamegraph: --root: the image already runs as root");
            }
        }
        Ok(opts)
    }

    /// The run these options ask for, each stage's settings in its own type
    /// (as inferno's `Opt::into_parts`).
    pub fn into_config(&self) -> Config {
        let target = self.target_options();
        Config {
            mode: self.mode(),
            out: self.out.clone(),
            record: RecordOptions {
                // Who builds and runs the program, decided once for both.
                privileges: target.privileges.clone(),
                compression: self.compression_level.filter(|_| self.keep_perf_data),
                // A larger buffer where perf may lock one, so that fewer
                // records are lost when the machine is busy.
                mmap_pages: crate::record::options::can_lock_memory()
                    .then_some(crate::defaults::MMAP_PAGES),
                ..self.record.options()
            },
            target,
            stacks: self.stack_options(),
            perf_script: self.stacks.perf_script,
            symfs: self.target.symfs.clone(),
            skip_after: self.stacks.skip_after.clone(),
            post_process: self.stacks.post_process.clone(),
            short_names: self.stacks.short_names,
            render: crate::output::svg::RenderOptions {
                nanoseconds: self.record.off_cpu.is_some(),
                ..self.render.options()
            },
            title: self.render.title.clone(),
            diff_against: self.render.diff_against.clone(),
            formats: self.render.format.clone(),
            keep_perf_data: self.keep_perf_data,
            verbose: self.verbose,
        }
    }

    /// The mode the options ask for (clap already refused contradictory ones).
    pub fn mode(&self) -> RunMode {
        let t = &self.target;
        if let Some(file) = &t.from_folded {
            RunMode::RenderFolded(file.clone())
        } else if let Some(data) = &t.perfdata {
            RunMode::RenderRecording(data.clone())
        } else if let Some(pid) = t.pid {
            RunMode::Attach(pid)
        } else if self.build_only {
            RunMode::Build
        } else {
            RunMode::Launch
        }
    }

    /// How the stacks are built, for [`crate::collect::stacks`] (and `--perf-script`).
    pub fn stack_options(&self) -> crate::collect::stacks::StackOptions {
        crate::collect::stacks::StackOptions {
            inline: !self.stacks.no_inline,
            per_thread: self.stacks.per_thread,
            time_order: self.render.flamechart,
            off_cpu: match self.record.off_cpu {
                None => crate::collect::off_cpu::OffCpu::No,
                Some(OffCpuArg::Also) => crate::collect::off_cpu::OffCpu::Also,
                Some(OffCpuArg::Only) => crate::collect::off_cpu::OffCpu::Only,
            },
            // pprof's addresses and source lines, unless the stacks are
            // rewritten as text (then its profile is built from that text).
            addresses: self.render.format.contains(&Format::Pprof)
                && self.stacks.skip_after.is_empty()
                && self.stacks.post_process.is_none(),
        }
    }
}

impl Options {
    /// The folder of the crate (`--manifest-path`'s, else the current one,
    /// where cargo looks for it; for `--exec`, the current one): its owner is
    /// whom cargo and the program run as, when run as root.
    pub fn crate_folder(&self) -> PathBuf {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        match self
            .target
            .manifest_path
            .as_deref()
            .and_then(|m| m.parent())
        {
            Some(dir) if !self.target.exec && !dir.as_os_str().is_empty() => cwd.join(dir),
            _ => cwd,
        }
    }

    /// Which program to profile and how to build it, for [`crate::target`].
    pub fn target_options(&self) -> crate::target::TargetOptions {
        let t = &self.target;
        crate::target::TargetOptions {
            manifest_path: t.manifest_path.clone(),
            package: t.package.clone(),
            bin: t.bin.clone(),
            example: t.example.clone(),
            bench: t.bench.clone(),
            test: t.test.clone(),
            unit_test: t.unit_test.clone(),
            unit_bench: t.unit_bench.clone(),
            unit_bin: t.unit_test_kind == Some(UnitKind::Bin),
            exec: t.exec,
            features: t.features.clone(),
            no_default_features: t.no_default_features,
            profile: match (&t.profile, t.dev) {
                (Some(profile), _) => profile.clone(),
                (None, true) => "dev".into(),
                // As `cargo bench` (and `cargo flamegraph --bench`) builds them.
                (None, false) if t.bench.is_some() || t.unit_bench.is_some() => {
                    defaults::BENCH_PROFILE.into()
                }
                (None, false) => defaults::PROFILE.into(),
            },
            target_dir: t.target_dir.clone(),
            triple: t.triple.clone(),
            args: self.args.clone(),
            verbose: self.verbose,
            privileges: crate::sys::privilege::Privileges::decide(
                self.keep_root,
                &self.crate_folder(),
            ),
        }
    }
}

/// How perf records.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Recording")]
pub struct RecordArgs {
    /// Sampling frequency in Hz.
    #[arg(short = 'F', long, default_value_t = defaults::FREQ, value_parser = clap::value_parser!(u32).range(1..=100_000), allow_negative_numbers = true)]
    pub freq: u32,

    /// How stacks are walked: `dwarf` (perf copies 48 KB of stack per sample and
    /// we unwind it: complete stacks, through libc too) or `fp` (the kernel
    /// follows frame pointers: ~100x less data, but callers of code without
    /// frame pointers, such as libc's malloc, are lost).
    #[arg(long, value_enum, default_value = defaults::CALL_GRAPH)]
    pub call_graph: CallGraph,

    /// Stop recording after this many seconds (the program is stopped; what was
    /// recorded is rendered).
    #[arg(long, value_name = "SECS", value_parser = parse_duration, allow_negative_numbers = true)]
    pub duration: Option<std::time::Duration>,

    /// Stop the recording when perf's data reaches this many MB (default: 4000
    /// when streamed; half the free space of $TMPDIR, at most 4000, when a
    /// perf.data file is written: --keep-perf-data, --perf-script).
    #[arg(long, value_name = "MB", value_parser = clap::value_parser!(u64).range(1..), allow_negative_numbers = true)]
    pub max_perf_data: Option<u64>,

    /// Extra arguments for `perf record`, split on whitespace (e.g.
    /// "--mmap-pages 64"); or, as in `cargo flamegraph`, perf's whole command
    /// ("record -F 499 -g"), whose frequency and call-graph mode are taken.
    #[arg(short, long, value_name = "ARGS", allow_hyphen_values = true)]
    pub cmd: Option<String>,

    /// Where threads wait, too: each switch off the CPU is recorded with its
    /// stack and weighs the time until the thread runs again, ending in a
    /// frame that says why (`[off-cpu: futex]`, `[off-cpu: sleep]`, …); counts
    /// are then nanoseconds. `--off-cpu=only` draws the waiting alone.
    #[arg(long, value_enum, value_name = "ONLY", num_args = 0..=1, default_missing_value = "also", require_equals = true)]
    pub off_cpu: Option<OffCpuArg>,

    /// No progress line while recording (elapsed time, samples, data rate).
    #[arg(short, long)]
    pub quiet: bool,
    /// The stack copy's size from `--cmd "record --call-graph dwarf,N"`.
    #[arg(skip)]
    pub dwarf_stack_bytes: Option<u32>,
}

/// perf's `dwarf,N`: a multiple of 8 from 8 to [`MAX_DWARF_STACK_BYTES`], as
/// perf itself requires.
fn parse_stack_bytes(size: &str) -> Result<u32, String> {
    match size.parse::<u32>() {
        Ok(n) if n > 0 && n % 8 == 0 && n <= MAX_DWARF_STACK_BYTES => Ok(n),
        _ => Err(format!(
            "--cmd: `dwarf,{size}`: the stack size is a multiple of 8 from 8 to \
             {MAX_DWARF_STACK_BYTES} bytes (default {})",
            defaults::DWARF_STACK_BYTES
        )),
    }
}

impl RecordArgs {
    /// Reads a `--cmd` that is perf's whole command (`record …`, as
    /// `cargo flamegraph` takes it): its `-F`/`--freq` and its call-graph
    /// mode (`-g` is frame pointers, `--call-graph fp|dwarf[,size]`) become
    /// ours, `-e cpu-clock` (which we always sample) is dropped, the rest
    /// stay extra arguments. Options that would take the recording from us
    /// are errors naming ours. A `--cmd` without `record` is left as it is.
    pub fn perf_command(&mut self) -> Result<(), String> {
        let Some(cmd) = &self.cmd else {
            return Ok(());
        };
        let mut words = cmd.split_whitespace();
        if words.next() != Some("record") {
            return Ok(());
        }
        let mut extra: Vec<&str> = Vec::new();
        while let Some(word) = words.next() {
            let (flag, inline) = match word.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v)),
                _ => (word, None),
            };
            let mut value = |name: &str| {
                inline
                    .or_else(|| words.next())
                    .ok_or_else(|| format!("--cmd: `{name}` needs a value"))
            };
            match flag {
                "-F" | "--freq" => {
                    let v = value(flag)?;
                    self.freq = parse_freq(v)?;
                }
                f if f.starts_with("-F") && f.len() > 2 => self.freq = parse_freq(&f[2..])?,
                "-g" => self.call_graph = CallGraph::Fp,
                "--call-graph" => {
                    let v = value(flag)?;
                    let (mode, size) = match v.split_once(',') {
                        Some((mode, size)) => (mode, Some(size)),
                        None => (v, None),
                    };
                    self.call_graph = CallGraph::parse(mode).ok_or_else(|| {
                        format!(
                            "--cmd: `--call-graph {v}`: rust-flamegraph reads fp or dwarf stacks \
                             (use --call-graph fp or --call-graph dwarf)"
                        )
                    })?;
                    if let Some(size) = size {
                        if self.call_graph != CallGraph::Dwarf {
                            return Err(format!(
                                "--cmd: `--call-graph {v}`: only dwarf takes a stack size"
                            ));
                        }
                        self.dwarf_stack_bytes = Some(parse_stack_bytes(size)?);
                    }
                }
                "-e" | "--event" => {
                    let v = value(flag)?;
                    if v != "cpu-clock" {
                        return Err(format!(
                            "--cmd: `-e {v}`: rust-flamegraph always samples cpu-clock (hardware \
                             events are missing in most VMs): remove `-e {v}`"
                        ));
                    }
                }
                "-o" | "--output" => {
                    return Err(
                        "--cmd: `-o`: perf.data goes to a temporary file; keep it with \
                         --keep-perf-data"
                            .into(),
                    )
                }
                "-p" | "--pid" => {
                    return Err("--cmd: `-p`: attach to a process with --pid PID".into())
                }
                _ => extra.push(word),
            }
        }
        self.cmd = (!extra.is_empty()).then(|| extra.join(" "));
        Ok(())
    }

    /// The recording settings, for [`crate::record`] and [`crate::record::perf`].
    pub fn options(&self) -> crate::record::RecordOptions {
        crate::record::RecordOptions {
            freq: self.freq,
            call_graph: self.call_graph,
            dwarf_stack_bytes: self
                .dwarf_stack_bytes
                .unwrap_or(defaults::DWARF_STACK_BYTES),
            duration: self.duration,
            max_perf_data: self.max_perf_data,
            cmd: self.cmd.clone(),
            // Decided with the target: see `Options::target_options`.
            privileges: crate::sys::privilege::Privileges::Keep,
            progress: crate::record::progress::Mode::for_stderr(self.quiet),
            // Set with --keep-perf-data: see `Options::into_config`.
            compression: None,
            // Set with --off-cpu: see `Options::into_config`.
            mmap_pages: None,
            off_cpu: self.off_cpu.is_some(),
        }
    }
}

/// `--unit-test-kind`: the library's or the binary's unit tests.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitKind {
    /// The library's.
    Lib,
    /// The binary's.
    Bin,
}

/// `--off-cpu`'s values.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffCpuArg {
    /// CPU time and waiting (`--off-cpu` alone).
    Also,
    /// Waiting alone.
    Only,
}

/// `--call-graph`'s values: the recording stage's [`CallGraph`].
impl ValueEnum for CallGraph {
    fn value_variants<'a>() -> &'a [Self] {
        &[CallGraph::Fp, CallGraph::Dwarf]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(match self {
            CallGraph::Fp => clap::builder::PossibleValue::new("fp")
                .help("Frame pointers (the target is built with `-C force-frame-pointers=yes`)"),
            CallGraph::Dwarf => clap::builder::PossibleValue::new("dwarf")
                .help("DWARF unwinding of a stack copy taken at every sample"),
        })
    }
}

/// `--format`'s values: the output stage's [`Format`].
impl ValueEnum for Format {
    fn value_variants<'a>() -> &'a [Self] {
        &[Format::Svg, Format::Folded, Format::Pprof]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(match self {
            Format::Svg => {
                clap::builder::PossibleValue::new("svg").help("flamegraph.svg (always written)")
            }
            Format::Folded => {
                clap::builder::PossibleValue::new("folded").help("stacks.folded (always written)")
            }
            Format::Pprof => clap::builder::PossibleValue::new("pprof").help(
                "profile.pb.gz: pprof's gzipped protobuf, for `go tool pprof`, Grafana Pyroscope \
                 and Parca",
            ),
        })
    }
}

/// How the flamegraph is drawn.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Rendering")]
pub struct RenderArgs {
    /// Title of the flamegraph (default: the profiled command).
    #[arg(long)]
    pub title: Option<String>,

    /// Omit frames narrower than this many pixels.
    #[arg(long, default_value_t = defaults::MIN_WIDTH, value_name = "PIXELS", value_parser = parse_min_width, allow_negative_numbers = true)]
    pub min_width: f64,

    /// Reverse the stacks: merge from the leaves, so that the hottest functions are at the base.
    #[arg(long)]
    pub reverse: bool,

    /// Flame chart: samples in time order, left to right, instead of merged stacks.
    #[arg(long)]
    pub flamechart: bool,

    /// Colour palette (hot, mem, io, red, green, blue, aqua, yellow, purple, orange, rust, ...).
    #[arg(long, default_value = defaults::PALETTE, value_parser = parse_palette)]
    pub palette: inferno::flamegraph::Palette,

    /// Second line of the flamegraph (default: the sample count and how they were taken).
    #[arg(long)]
    pub subtitle: Option<String>,

    /// Notes embedded in the SVG (not drawn).
    #[arg(long, value_name = "TEXT")]
    pub notes: Option<String>,

    /// Width of the SVG in pixels (default: it fills the browser window).
    #[arg(long, value_name = "PIXELS", value_parser = clap::value_parser!(u32).range(100..=1_000_000), allow_negative_numbers = true)]
    pub image_width: Option<u32>,

    /// Colours chosen from the function's name, so that a function keeps its
    /// colour from run to run.
    #[arg(long)]
    pub deterministic: bool,

    /// Icicle graph: the roots at the top, stacks growing down.
    #[arg(short, long)]
    pub inverted: bool,

    /// Also write diff.svg, the change since an earlier run (its
    /// stacks.folded or output folder): red grew, blue shrank, widths from
    /// this run; and diff-removed.svg, the same with the earlier run's
    /// widths, where what disappeared shows. The summary lists the functions
    /// that changed most beyond sampling noise.
    #[arg(long, value_name = "OLD", conflicts_with = "build_only")]
    pub diff_against: Option<PathBuf>,

    /// Formats to write besides flamegraph.svg and stacks.folded (always
    /// written): `pprof` adds profile.pb.gz. Comma-separated or repeated.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "FORMAT")]
    pub format: Vec<Format>,
}

/// How samples become stacks.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Stacks")]
pub struct StackArgs {
    /// One tower per thread: root frames are `name-pid/tid` instead of the thread name.
    #[arg(long)]
    pub per_thread: bool,

    /// No frames for inlined functions: each sample is named after the
    /// function whose code it is in.
    #[arg(long)]
    pub no_inline: bool,

    /// Read the recording with `perf script` (and binutils' addr2line)
    /// instead of in-process: slower, to cross-check.
    #[arg(long)]
    pub perf_script: bool,

    /// Cut off the frames below (callers of) FUNCTION: stacks that pass
    /// through it start at it. Repeatable; the first one found in a stack counts.
    #[arg(long, value_name = "FUNCTION")]
    pub skip_after: Vec<String>,

    /// A shell command that rewrites the folded stacks: it reads them on
    /// stdin and writes the new ones on stdout (e.g. "sed -e s/foo/bar/").
    #[arg(long, value_name = "COMMAND")]
    pub post_process: Option<String>,

    /// Frames without their generic arguments (`Vec<T>::push` reads
    /// `Vec::push`): deep generic code (rayon, iterator chains) has frame
    /// names of hundreds of bytes, and stacks.folded of 80 KB per line.
    #[arg(long)]
    pub short_names: bool,
}

impl RenderArgs {
    /// The drawing settings, for [`crate::output::svg`].
    pub fn options(&self) -> crate::output::svg::RenderOptions {
        crate::output::svg::RenderOptions {
            min_width: self.min_width,
            reverse: self.reverse,
            flamechart: self.flamechart,
            palette: self.palette,
            subtitle: self.subtitle.clone(),
            notes: self.notes.clone(),
            image_width: self.image_width.map(|w| w as usize),
            deterministic: self.deterministic,
            inverted: self.inverted,
            // Set by `Options::into_config` with --off-cpu.
            nanoseconds: false,
        }
    }
}

/// An unknown option that is likely the program's (`rust-flamegraph --iters
/// 100`): says to put it after `--` first, instead of clap's nearest option
/// of ours (`--notes`).
fn forgot_double_dash(err: clap::Error, args: &[OsString]) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if err.kind() != ErrorKind::UnknownArgument || args.iter().any(|a| a == "--") {
        return err;
    }
    let Some(ContextValue::String(arg)) = err.get(ContextKind::InvalidArg) else {
        return err;
    };
    let flag = arg.split('=').next().unwrap_or(arg);
    let at = args
        .iter()
        .position(|a| a.to_string_lossy().split('=').next() == Some(flag));
    let (ours, program) = args.split_at(at.unwrap_or(args.len()));
    let suggested = crate::model::text::join_args(
        &ours
            .iter()
            .skip(1)
            .chain(std::iter::once(&OsString::from("--")))
            .chain(program)
            .collect::<Vec<_>>(),
    );
    <Options as clap::CommandFactory>::command().error(
        ErrorKind::UnknownArgument,
        format!(
            "unexpected argument '{flag}': not an option of rust-flamegraph. Arguments for the \
             profiled program go after `--`: rust-flamegraph {suggested}"
        ),
    )
}

fn parse_freq(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(f) if (1..=100_000).contains(&f) => Ok(f),
        _ => Err(format!(
            "--cmd: `-F {s}` is not a frequency: give 1 to 100000 Hz"
        )),
    }
}

fn parse_palette(s: &str) -> Result<inferno::flamegraph::Palette, String> {
    s.parse()
}

fn parse_min_width(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(w) if w.is_finite() && w >= 0.0 => Ok(w),
        _ => Err(format!(
            "`{s}` is not a width: give a number of pixels, e.g. 0.5"
        )),
    }
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    match s.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs < 1e9 => {
            Ok(std::time::Duration::from_secs_f64(secs))
        }
        _ => Err(format!(
            "`{s}` is not a duration: give seconds, e.g. 10 or 2.5"
        )),
    }
}

#[cfg(test)]
mod target_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn parse(args: &[&str]) -> Result<Options, clap::Error> {
        Options::try_parse_from(std::iter::once("rust-flamegraph").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let o = parse(&[]).unwrap();
        assert_eq!(o.record.freq, defaults::FREQ);
        assert_eq!(o.record.call_graph, CallGraph::Dwarf);
        assert_eq!(o.target_options().profile, defaults::PROFILE);
        assert_eq!(o.out, std::path::PathBuf::from(defaults::OUT));
        assert!(o.args.is_empty());
    }

    #[test]
    fn args_after_double_dash_go_to_the_program() {
        let o = parse(&["--freq", "1999", "--", "--iters", "10"]).unwrap();
        assert_eq!(o.record.freq, 1999);
        assert_eq!(
            o.args,
            vec![OsString::from("--iters"), OsString::from("10")]
        );
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for bad in [
            &["--freq", "0"][..],
            &["--freq", "abc"],
            &["--call-graph", "lbr"],
            &["--min-width", "-1"],
            &["--palette", "plaid"],
            &["--duration", "0"],
            &["--bin", "a", "--example", "b"],
            &["--profile", "bench", "--dev"],
            &["--perfdata", "p", "--from-folded", "f"],
            &["--max-perf-data", "0"],
            // --build-only builds a cargo target: nothing to build for these.
            &["--build-only", "--exec", "--", "./x"],
            &["--build-only", "--pid", "1"],
            &["--build-only", "--perfdata", "p"],
        ] {
            let err = parse(bad).unwrap_err();
            assert_ne!(err.kind(), ErrorKind::DisplayHelp, "{bad:?}");
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn a_negative_number_is_a_bad_value_not_an_argument_for_the_program() {
        for flag in ["--duration", "--freq", "--max-perf-data", "--min-width"] {
            let err = parse(&[flag, "-1"]).unwrap_err().to_string();
            assert!(!err.contains("-- -1"), "{flag}: {err}");
            assert!(err.contains("-1"), "{flag}: {err}");
        }
        let err = parse(&["--duration", "-1"]).unwrap_err().to_string();
        assert!(err.contains("is not a duration"), "{err}");
    }

    #[test]
    fn unit_test_takes_an_optional_name() {
        assert_eq!(
            parse(&["--unit-test"]).unwrap().target.unit_test.as_deref(),
            Some("")
        );
        assert_eq!(
            parse(&["--unit-test", "app"])
                .unwrap()
                .target
                .unit_test
                .as_deref(),
            Some("app")
        );
    }

    #[test]
    fn dev_selects_the_dev_profile() {
        assert_eq!(parse(&["--dev"]).unwrap().target_options().profile, "dev");
        assert_eq!(
            parse(&["--profile", "bench"])
                .unwrap()
                .target_options()
                .profile,
            "bench"
        );
    }

    #[test]
    fn a_bench_builds_with_the_bench_profile_as_cargo_bench_does() {
        let profile = |args: &[&str]| parse(args).unwrap().target_options().profile;
        assert_eq!(profile(&["--bench", "b"]), "bench");
        assert_eq!(profile(&["--unit-bench"]), "bench");
        assert_eq!(
            profile(&["--bench", "b", "--profile", "release"]),
            "release"
        );
        assert_eq!(profile(&["--bench", "b", "--dev"]), "dev");
        assert_eq!(profile(&["--bin", "b"]), "release");
    }

    fn mode(args: &[&str]) -> RunMode {
        parse(args).unwrap().mode()
    }

    #[test]
    fn each_set_of_options_is_one_mode() {
        assert_eq!(mode(&[]), RunMode::Launch);
        assert_eq!(mode(&["--exec", "--", "./x"]), RunMode::Launch);
        assert_eq!(mode(&["--build-only"]), RunMode::Build);
        assert_eq!(mode(&["--build-only", "--bin", "demo"]), RunMode::Build);
        assert_eq!(mode(&["--pid", "42"]), RunMode::Attach(42));
        assert_eq!(
            mode(&["--perfdata", "p.data"]),
            RunMode::RenderRecording("p.data".into())
        );
        assert_eq!(
            mode(&["--from-folded", "s.folded"]),
            RunMode::RenderFolded("s.folded".into())
        );
    }

    #[test]
    fn the_stack_size_of_a_perf_command_is_kept() {
        let opts = Options::from_args(["rf", "-c", "record --call-graph dwarf,65528"]).unwrap();
        let record = opts.into_config().record;
        assert_eq!(record.call_graph, CallGraph::Dwarf);
        assert_eq!(record.dwarf_stack_bytes, 65528);
        let args = crate::record::perf::record_args(
            &record,
            std::path::Path::new("p.data"),
            &crate::record::perf::Subject::Attach(1),
        );
        assert!(args.iter().any(|a| a == "dwarf,65528"), "{args:?}");
        let opts = Options::from_args(["rf"]).unwrap();
        assert_eq!(
            opts.into_config().record.dwarf_stack_bytes,
            defaults::DWARF_STACK_BYTES
        );
        for bad in ["dwarf,65536", "dwarf,100", "dwarf,0", "dwarf,x", "fp,8192"] {
            let cmd = format!("record --call-graph {bad}");
            let err = Options::from_args(["rf", "-c", &cmd]).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{bad}");
        }
    }

    #[test]
    fn off_cpu_keeps_a_perf_commands_settings_and_refuses_perf_script() {
        let opts = Options::from_args([
            "rf",
            "--off-cpu",
            "-c",
            "record -F 499 --call-graph dwarf,16384",
        ])
        .unwrap();
        let record = opts.into_config().record;
        assert!(record.off_cpu);
        assert_eq!((record.freq, record.dwarf_stack_bytes), (499, 16384));
        let err = Options::from_args(["rf", "--off-cpu", "--perf-script"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains(OFF_CPU_PERF_SCRIPT), "{err}");
        assert!(Options::from_args(["rf", "--perf-script"]).is_ok());
    }

    #[test]
    fn z_compresses_the_kept_perf_data_only() {
        let record = |args: &[&str]| {
            let opts = Options::from_args(std::iter::once("rf").chain(args.iter().copied()));
            opts.unwrap().into_config().record
        };
        assert_eq!(record(&["-z", "--keep-perf-data"]).compression, Some(1));
        assert_eq!(
            record(&["-z", "7", "--keep-perf-data"]).compression,
            Some(7)
        );
        assert_eq!(record(&["--compression-level=3"]).compression, None);
        let args = crate::record::perf::record_args(
            &record(&["-z", "7", "--keep-perf-data"]),
            std::path::Path::new("p.data"),
            &crate::record::perf::Subject::Attach(1),
        );
        assert!(
            args.iter().any(|a| a == "--compression-level=7"),
            "{args:?}"
        );
        let streamed = crate::record::perf::record_args(
            &record(&["-z", "7", "--keep-perf-data"]),
            std::path::Path::new("-"),
            &crate::record::perf::Subject::Attach(1),
        );
        assert!(!streamed
            .iter()
            .any(|a| a.to_string_lossy().contains("compression")));
        assert!(Options::from_args(["rf", "-z", "23"]).is_err());
    }

    #[test]
    fn a_programs_option_without_double_dash_says_where_it_goes() {
        let err =
            Options::from_args(["rust-flamegraph", "--iters", "100", "--size", "5"]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("rust-flamegraph -- --iters 100 --size 5"),
            "{text}"
        );
        assert!(!text.contains("--notes"), "{text}");
        assert_eq!(err.exit_code(), 2);
        let err = Options::from_args(["rf", "--bin", "demo", "--iters=3"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("rust-flamegraph --bin demo -- '--iters=3'"),
            "{err}"
        );
        // A typo of ours after `--` is the program's: clap's own message stays.
        let err = Options::from_args(["rf", "--nots", "x", "--", "a"]).unwrap_err();
        assert!(!err.to_string().contains("not an option of rust-flamegraph"));
    }
}
