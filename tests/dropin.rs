//! rust-flamegraph as a drop-in for `cargo flamegraph` 0.6.15: every flag of
//! its `--help` (stored in tests/fixtures, so that it need not be installed)
//! parses with us or gives the documented error; its commands work on a
//! generated workspace, natively (through a `cargo-flamegraph` link) and in
//! the image (`docker run … rust-flamegraph cargo flamegraph …`); and a second
//! run of an unchanged crate whose build script names no `rerun-if-changed`
//! files does not rebuild it, with the output folder inside the crate.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use rust_flamegraph::cli::{Options, REFUSED};
use rust_flamegraph::record::CallGraph;

/// `cargo flamegraph --help` of flamegraph 0.6.15.
const HELP: &str = include_str!("fixtures/cargo-flamegraph-0.6.15.help");

/// The flags of [`HELP`]: (short, long, takes a value, value is optional).
fn flags_of_help() -> Vec<(Option<char>, String, bool, bool)> {
    HELP.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
        .map(|l| {
            let head = l.split("  ").next().unwrap();
            let (short, rest) = match head.strip_prefix('-').and_then(|h| h.chars().next()) {
                Some(c) if c != '-' => (Some(c), head[2..].trim_start_matches(", ")),
                _ => (None, head),
            };
            let long = rest
                .split_whitespace()
                .next()
                .unwrap()
                .trim_start_matches("--")
                .to_string();
            (short, long, rest.contains('<'), rest.contains("[<"))
        })
        .collect()
}

/// A value each flag of `cargo flamegraph` that takes one is tried with.
fn sample_value(long: &str) -> &'static str {
    match long {
        "profile" => "release",
        "package" => "app",
        "bin" => "app",
        "target" => "x86_64-unknown-linux-gnu",
        "example" | "test" | "bench" | "unit-test" | "unit-bench" => "x",
        "unit-test-kind" => "bin",
        "manifest-path" => "Cargo.toml",
        "features" => "a,b",
        "output" => "my.svg",
        "root" => "-E",
        "freq" => "499",
        "compression-level" => "3",
        "cmd" => "record -e cpu-clock -F 499 -g",
        "title" | "subtitle" | "notes" => "some text",
        "min-width" => "0.01",
        "image-width" => "1200",
        "palette" => "java",
        "skip-after" => "main",
        "post-process" => "cat",
        other => panic!("no sample value for --{other}: add one"),
    }
}

fn parse(args: &[&str]) -> Result<Options, clap::Error> {
    Options::from_args(std::iter::once("rust-flamegraph").chain(args.iter().copied()))
}

/// The documented error for `long`, if `cargo flamegraph`'s flag is refused here.
fn refusal(long: &str) -> Option<&'static str> {
    let root = rustix::process::geteuid().is_root();
    REFUSED
        .iter()
        .find(|(flag, _)| flag.split(", ").any(|f| f == format!("--{long}")))
        .filter(|(flag, _)| !(root && *flag == "--root"))
        .map(|(_, message)| *message)
}

#[test]
fn every_flag_of_cargo_flamegraph_parses_or_says_what_to_use_instead() {
    let flags = flags_of_help();
    // 36 flags, --help and --version.
    assert_eq!(flags.len(), 38, "flags read from the help: {flags:?}");
    let mut accepted = 0;
    for (short, long, takes_value, optional) in flags {
        if long == "help" || long == "version" {
            continue;
        }
        let mut forms: Vec<Vec<String>> = Vec::new();
        for spelled in short
            .map(|c| format!("-{c}"))
            .into_iter()
            .chain([format!("--{long}")])
        {
            if !takes_value || optional {
                forms.push(vec![spelled.clone()]);
            }
            if takes_value {
                forms.push(vec![spelled, sample_value(&long).to_string()]);
            }
        }
        for args in forms {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            match (parse(&args), refusal(&long)) {
                (Ok(_), None) => accepted += 1,
                (Err(e), Some(message)) => {
                    let shown = e.to_string();
                    // One line of clap's usage error (its usage follows).
                    let first = shown.lines().next().unwrap_or_default();
                    assert_eq!(first, format!("error: {message}"), "{args:?}: {shown}");
                    assert_eq!(e.exit_code(), 2, "{args:?}");
                }
                (Ok(_), Some(message)) => {
                    panic!("{args:?} parsed, but is documented as refused: {message}")
                }
                (Err(e), None) => panic!("{args:?} is refused: {e}"),
            }
        }
    }
    assert!(accepted >= 45, "only {accepted} forms accepted");
}

#[test]
fn flags_of_cargo_flamegraph_keep_their_meaning() {
    let o = parse(&["-o", "my.svg", "-b", "app", "-r", "-i", "--deterministic"]).unwrap();
    assert_eq!(o.out, PathBuf::from("my.svg"));
    assert_eq!(o.target.bin.as_deref(), Some("app"));
    assert!(o.render.inverted && o.render.deterministic);
    assert_eq!(o.target_options().profile, "release");

    // `-c` is perf's whole command in `cargo flamegraph`.
    let o = parse(&["-c", "record -e cpu-clock -F 499 -g --mmap-pages 64"]).unwrap();
    assert_eq!(o.record.freq, 499);
    assert_eq!(o.record.call_graph, CallGraph::Fp);
    assert_eq!(o.record.cmd.as_deref(), Some("--mmap-pages 64"));
    let o = parse(&["-c", "record -F1999 --call-graph=dwarf,64000"]).unwrap();
    assert_eq!(
        (o.record.freq, o.record.call_graph),
        (1999, CallGraph::Dwarf)
    );
    // The stack copy's size is honoured, as perf would take it.
    assert_eq!(o.into_config().record.dwarf_stack_bytes, 64000);
    let o = parse(&["-c", "record -F1999 --call-graph=dwarf,64000"]).unwrap();
    assert_eq!(o.record.cmd, None);
    // Without `record`, extra arguments for ours, as before.
    let o = parse(&["-c", "--mmap-pages 64"]).unwrap();
    assert_eq!(o.record.cmd.as_deref(), Some("--mmap-pages 64"));
    for (bad, says) in [
        ("record -e cycles", "always samples cpu-clock"),
        ("record -o x.data", "--keep-perf-data"),
        ("record -F 0", "not a frequency"),
        ("record --call-graph lbr", "fp or dwarf"),
    ] {
        let e = parse(&["-c", bad]).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{bad}");
        assert!(e.to_string().contains(says), "{bad}: {e}");
    }

    // cargo runs `cargo-flamegraph flamegraph ARGS…`.
    let o = Options::from_args(["/x/cargo-flamegraph", "flamegraph", "--bench", "prime"]).unwrap();
    assert_eq!(o.target.bench.as_deref(), Some("prime"));
    let o = Options::from_args(["cargo-flamegraph", "--example", "flamegraph"]).unwrap();
    assert_eq!(o.target.example.as_deref(), Some("flamegraph"));
    // Our own name takes no subcommand: `flamegraph` stays an unexpected argument.
    assert!(Options::from_args(["rust-flamegraph", "flamegraph"]).is_err());
}

// --- a generated workspace -----------------------------------------------

/// A workspace with each case of issue 13: the root package `app` (a build
/// script that prints nothing, so cargo reruns it when any file of the
/// package changes; a binary whose hot function is generic; it checks the
/// seed's `--input big.json`), a member `benchmark_critereon` with a
/// `harness = false` bench `prime` that exits 2 unless it got `--bench`
/// exactly once (criterion's own check), and a member `tools` with the
/// example `my_example`.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let generic = "#[inline(never)]\nfn generic_hot<T: Default + std::fmt::Debug>() -> u64 {\n    \
                   std::hint::black_box(format!(\"{:?}\", T::default()));\n    app_hot()\n}\n";
    write(
        dir.path(),
        &[
            (
                "Cargo.toml",
                "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
                 [workspace]\nmembers = [\"benchmark_critereon\", \"tools\"]\n"
                    .into(),
            ),
            ("build.rs", "fn main() {}\n".into()),
            (
                "src/main.rs",
                format!(
                    "{}\n{generic}\nfn main() {{\n    \
                     let args: Vec<String> = std::env::args().skip(1).collect();\n    \
                     if args.len() == 2 && args[0] == \"--input\" {{\n        \
                     std::fs::read(&args[1]).expect(\"the input file\");\n    }}\n    \
                     generic_hot::<u64>();\n}}\n",
                    spin("app_hot", 400)
                ),
            ),
            ("big.json", "{}\n".into()),
            (
                "benchmark_critereon/Cargo.toml",
                "[package]\nname = \"benchmark_critereon\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
                 [[bench]]\nname = \"prime\"\nharness = false\n"
                    .into(),
            ),
            ("benchmark_critereon/src/lib.rs", spin("prime_hot", 400)),
            (
                "benchmark_critereon/benches/prime.rs",
                "fn main() {\n    \
                 let n = std::env::args().filter(|a| a == \"--bench\").count();\n    \
                 if n != 1 {\n        \
                 eprintln!(\"error: the argument '--bench' was given {n} times\");\n        \
                 std::process::exit(2);\n    }\n    \
                 benchmark_critereon::prime_hot();\n}\n"
                    .into(),
            ),
            (
                "tools/Cargo.toml",
                "[package]\nname = \"tools\"\nversion = \"0.1.0\"\nedition = \"2021\"\n".into(),
            ),
            ("tools/src/lib.rs", String::new()),
            (
                "tools/examples/my_example.rs",
                format!("{}\nfn main() {{ my_example_hot(); }}\n", spin("my_example_hot", 400)),
            ),
        ],
    );
    dir
}

/// A folder holding `cargo-flamegraph`, a link to the profiler under test,
/// to put first on PATH: then `cargo flamegraph` runs it, as after
/// `ln -s rust-flamegraph ~/.cargo/bin/cargo-flamegraph`.
fn subcommand_path() -> (tempfile::TempDir, std::ffi::OsString) {
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_rust-flamegraph"),
        bin.path().join("cargo-flamegraph"),
    )
    .unwrap();
    let path = std::env::join_paths(std::iter::once(bin.path().to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    (bin, path)
}

/// `cargo ARGS…` in `dir`, with our `cargo-flamegraph` first on PATH.
fn cargo(dir: &Path, path: &std::ffi::OsStr, args: &[&str]) -> Output {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(args).current_dir(dir).env("PATH", path);
    for var in [
        "RUST_FLAMEGRAPH_OUT",
        "RUST_FLAMEGRAPH_MANIFEST",
        "RUST_FLAMEGRAPH_TARGET_DIR",
    ] {
        cmd.env_remove(var);
    }
    run(&mut cmd)
}

/// Samples whose stack has a frame named `function` or ending in `::function`
/// (generic arguments included in the name when `generic`).
fn samples_in(folded: &str, function: &str) -> u64 {
    stacks(folded)
        .into_iter()
        .filter(|(stack, _)| {
            stack.split(';').any(|f| {
                f == function
                    || f.ends_with(&format!("::{function}"))
                    || f.contains(&format!("::{function}::<"))
            })
        })
        .map(|(_, count)| count)
        .sum()
}

/// Checks a run: it succeeded, and most of the samples in its folded stacks
/// are under `function`. Returns the folded stacks.
fn assert_profiled(out: &Output, folded: &Path, function: &str) -> String {
    assert_exit(out, 0, &[]);
    let text = std::fs::read_to_string(folded)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", folded.display(), common::text(out)));
    let total = total_samples(&text);
    let hot = samples_in(&text, function);
    // The spins are 400 ms of CPU at 997 Hz (~400 samples): at least half of
    // the samples are in them on any machine.
    assert!(total >= 50, "only {total} samples");
    assert!(
        hot * 2 >= total,
        "{hot} of {total} samples in {function}:\n{text}"
    );
    text
}

/// Whether cargo compiled `package` in this run (its status line).
fn compiled(out: &Output, package: &str) -> bool {
    common::text(out).contains(&format!("Compiling {package} v0.1.0"))
}

#[test]
#[ignore = "needs perf: cargo test -- --include-ignored"]
fn the_seeds_cargo_flamegraph_commands_work_natively() {
    if !perf_available() {
        return;
    }
    let ws = workspace();
    let dir = ws.path();
    let (_bin, path) = subcommand_path();
    let fg = dir.join("fg");

    let out = cargo(
        dir,
        &path,
        &[
            "flamegraph",
            "-p",
            "benchmark_critereon",
            "--bench",
            "prime",
        ],
    );
    assert_profiled(&out, &fg.join("stacks.folded"), "prime_hot");
    // The form `cargo flamegraph` users type: --bench not given twice.
    let out = cargo(
        dir,
        &path,
        &["flamegraph", "--bench", "prime", "--", "--bench"],
    );
    assert_profiled(&out, &fg.join("stacks.folded"), "prime_hot");

    // An example of another member, without -p.
    let out = cargo(dir, &path, &["flamegraph", "--example", "my_example"]);
    assert_profiled(&out, &fg.join("stacks.folded"), "my_example_hot");

    let out = cargo(
        dir,
        &path,
        &["flamegraph", "--release", "--", "--input", "big.json"],
    );
    let folded = assert_profiled(&out, &fg.join("stacks.folded"), "app_hot");
    // v0 symbol names: generic arguments are kept.
    assert!(folded.contains("generic_hot::<u64>"), "{folded}");

    // -o FILE.svg is that file, the folded stacks beside it; -c is perf's
    // whole command: 499 Hz, frame-pointer stacks.
    let out = cargo(
        dir,
        &path,
        &[
            "flamegraph",
            "-o",
            "my.svg",
            "-c",
            "record -e cpu-clock -F 499 -g",
        ],
    );
    assert_profiled(&out, &dir.join("my.stacks.folded"), "app_hot");
    let svg = std::fs::read_to_string(dir.join("my.svg")).unwrap();
    assert_well_formed_xml(&svg);
    assert!(
        svg.contains("at 499 Hz, cpu-clock, frame-pointer stacks"),
        "subtitle"
    );
    assert!(!dir.join("my.svg").is_dir());
}

/// Runs the default binary of `dir` twice into `fg` inside it; the second
/// run must not compile anything.
fn assert_second_run_does_not_rebuild(dir: &Path, what: &str) {
    let first =
        run(profiler()
            .current_dir(dir)
            .args(["--manifest-path", "Cargo.toml", "-o", "fg2"]));
    assert_profiled(&first, &dir.join("fg2/stacks.folded"), "app_hot");
    assert!(
        compiled(&first, "app"),
        "{what}: the first run must build app"
    );
    let second =
        run(profiler()
            .current_dir(dir)
            .args(["--manifest-path", "Cargo.toml", "-o", "fg2"]));
    assert_profiled(&second, &dir.join("fg2/stacks.folded"), "app_hot");
    assert!(
        !compiled(&second, "app"),
        "{what}: the second run rebuilt app: {}",
        common::text(&second)
    );
}

#[test]
#[ignore = "needs perf and git: cargo test -- --include-ignored"]
fn a_second_run_of_an_unchanged_crate_does_not_rebuild_it() {
    if !perf_available() {
        return;
    }
    // Not in git: cargo walks the package's folder.
    let ws = workspace();
    assert_second_run_does_not_rebuild(ws.path(), "walked package");
    // In git: cargo lists the index and the untracked files git does not ignore.
    let ws = workspace();
    let git = |args: &[&str]| {
        let out = run(Command::new("git").args(args).current_dir(ws.path()));
        assert!(out.status.success(), "git {args:?}");
    };
    if Command::new("git").arg("--version").output().is_err() {
        let probe = Err("git is not installed".to_string());
        require("git", probe);
        return;
    }
    git(&["init", "-q"]);
    git(&["add", "."]);
    assert_second_run_does_not_rebuild(ws.path(), "git package");
}

// --- in the image ----------------------------------------------------------

/// `docker run --rm --cap-add=SYS_ADMIN -v DIR:/src -v DIR/fg:/out -v CACHE:/cache IMAGE ARGS…`.
fn docker_run(dir: &Path, cache: &Path, args: &[&str]) -> Output {
    std::fs::create_dir_all(dir.join("fg")).unwrap();
    run(Command::new("docker")
        .args(["run", "--rm", "--cap-add=SYS_ADMIN", "-v"])
        .arg(format!("{}:/src", dir.display()))
        .arg("-v")
        .arg(format!("{}:/out", dir.join("fg").display()))
        .arg("-v")
        .arg(format!("{}:/cache", cache.display()))
        .arg(image())
        .args(args))
}

#[test]
#[ignore = "needs a Docker engine: cargo test -- --include-ignored"]
fn the_image_answers_version_and_help_without_any_mount() {
    if !image_ready() {
        return;
    }
    for flag in ["--version", "--help"] {
        let out = run(Command::new("docker").args(["run", "--rm", &image(), flag]));
        assert_exit(&out, 0, &["rust-flamegraph"]);
    }
    let out = run(Command::new("docker").args([
        "run",
        "--rm",
        &image(),
        "cargo",
        "flamegraph",
        "--version",
    ]));
    assert_exit(&out, 0, &["rust-flamegraph"]);
}

#[test]
#[ignore = "needs a Docker engine: cargo test -- --include-ignored"]
fn the_seeds_cargo_flamegraph_commands_work_in_the_image() {
    if !image_ready() {
        return;
    }
    let ws = workspace();
    let dir = ws.path();
    let cache = tempfile::tempdir().unwrap();
    let fg = dir.join("fg");
    let folded = fg.join("stacks.folded");

    let out = docker_run(
        dir,
        cache.path(),
        &[
            "cargo",
            "flamegraph",
            "-p",
            "benchmark_critereon",
            "--bench",
            "prime",
        ],
    );
    assert_profiled(&out, &folded, "prime_hot");
    assert!(
        common::text(&out).contains("wrote /out/flamegraph.svg (your mounted folder)"),
        "{}",
        common::text(&out)
    );
    let out = docker_run(
        dir,
        cache.path(),
        &["cargo", "flamegraph", "--bench", "prime", "--", "--bench"],
    );
    assert_profiled(&out, &folded, "prime_hot");
    let out = docker_run(
        dir,
        cache.path(),
        &["cargo", "flamegraph", "--example", "my_example"],
    );
    assert_profiled(&out, &folded, "my_example_hot");

    let out = docker_run(
        dir,
        cache.path(),
        &[
            "cargo",
            "flamegraph",
            "--release",
            "--",
            "--input",
            "big.json",
        ],
    );
    let text = assert_profiled(&out, &folded, "app_hot");
    assert!(
        text.contains("generic_hot::<u64>"),
        "v0 names in the image:\n{text}"
    );
    // The output folder is inside the crate: no rebuild the second time.
    let again = docker_run(
        dir,
        cache.path(),
        &[
            "cargo",
            "flamegraph",
            "--release",
            "--",
            "--input",
            "big.json",
        ],
    );
    assert_profiled(&again, &folded, "app_hot");
    assert!(
        !compiled(&again, "app"),
        "rebuilt in the image: {}",
        common::text(&again)
    );

    let out = docker_run(
        dir,
        cache.path(),
        &["-o", "/out/my.svg", "-c", "record -e cpu-clock -F 499 -g"],
    );
    assert_profiled(&out, &fg.join("my.stacks.folded"), "app_hot");
    let svg = std::fs::read_to_string(fg.join("my.svg")).unwrap();
    assert!(svg.contains("at 499 Hz, cpu-clock, frame-pointer stacks"));

    // A toolchain file the image cannot honour: one line says so.
    std::fs::write(
        dir.join("rust-toolchain.toml"),
        "[toolchain]\nchannel = \"nightly-2020-01-01\"\n",
    )
    .unwrap();
    let out = docker_run(dir, cache.path(), &["--build-only"]);
    assert_exit(&out, 0, &["rust-toolchain.toml asks for Rust `nightly-2020-01-01`; the image builds with Debian's Rust"]);
}

// --- the option table of docs/options.md -----------------------------------

/// The option table of docs/options.md, made from `rust-flamegraph -h`: a row per flag
/// in its order, under its heading, with its default and its one-line help.
fn option_table() -> String {
    let help = run(profiler().arg("-h"));
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    let cell = |s: &str| s.trim().replace('|', "\\|");
    let mut table = String::from("| option | default | |\n|---|---|---|\n");
    for line in help.lines() {
        if line.starts_with("Exit codes") {
            break;
        }
        if let Some(heading) = line.strip_suffix(':').filter(|l| !l.starts_with(' ')) {
            if heading != "Options" && heading != "Usage" {
                table.push_str(&format!("| **{heading}** | | |\n"));
            }
            continue;
        }
        let line = line.trim_start();
        if !line.starts_with('-') || line.starts_with("-h,") || line.starts_with("-V,") {
            continue;
        }
        let (flag, mut text) = line.split_once("  ").unwrap_or((line, ""));
        text = text.trim();
        let mut default = String::new();
        let mut notes = Vec::new();
        // clap's trailing `[key: value]` notes.
        while let Some(start) = text.rfind(" [").filter(|_| text.ends_with(']')) {
            let note = &text[start + 2..text.len() - 1];
            match note.split_once(": ") {
                Some(("default", v)) => default = format!("`{v}`"),
                Some(("env", v)) => notes.push(format!("env `{}`", v.trim_end_matches('='))),
                Some(("alias", v)) => notes.push(format!("also `{v}`")),
                Some(("possible values", v)) => {
                    notes.push(format!("`{}`", v.replace(", ", "`, `")))
                }
                _ => break,
            }
            text = text[..start].trim_end();
        }
        notes.reverse();
        let text = if notes.is_empty() {
            text.to_string()
        } else {
            format!("{text} ({})", notes.join("; "))
        };
        table.push_str(&format!(
            "| `{}` | {} | {} |\n",
            cell(flag),
            cell(&default),
            cell(&text)
        ));
    }
    table
}

const TABLE_START: &str = "<!-- options: made from `rust-flamegraph -h` by tests/dropin.rs -->\n";
const TABLE_END: &str = "<!-- options end -->";

#[test]
fn the_option_table_in_docs_is_the_help() {
    let path = repo().join("docs/options.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let start = doc
        .find(TABLE_START)
        .expect("docs/options.md marks its option table")
        + TABLE_START.len();
    let end = start
        + doc[start..]
            .find(TABLE_END)
            .expect("the table's end marker");
    let table = option_table();
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, format!("{}{table}{}", &doc[..start], &doc[end..])).unwrap();
        loud("UPDATE_GOLDEN=1: rewrote the option table of docs/options.md");
        return;
    }
    assert!(
        doc[start..end] == table,
        "the option table of docs/options.md differs from --help: run \
         UPDATE_GOLDEN=1 cargo test --test dropin option_table, and review the diff.\n{table}"
    );
}

#[test]
fn a_target_of_another_member_is_found_and_an_ambiguous_one_lists_the_choices() {
    let ws = workspace();
    write(
        ws.path(),
        &[
            ("examples/my_example.rs", "fn main() {}\n".into()),
            ("tools/examples/only_tools.rs", "fn main() {}\n".into()),
        ],
    );
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(ws.path().join("Cargo.toml"))
        .no_deps()
        .exec()
        .unwrap();
    let choose = |args: &[&str]| {
        let opts = Options::from_args(std::iter::once("rf").chain(args.iter().copied()))
            .unwrap()
            .target_options();
        rust_flamegraph::target::select::choose(&metadata, &opts)
    };
    let t = choose(&["--example", "only_tools"]).unwrap();
    assert_eq!(
        (t.package.as_str(), t.name.as_str()),
        ("tools", "only_tools")
    );
    let t = choose(&["--bench", "prime"]).unwrap();
    assert_eq!(t.package, "benchmark_critereon");
    // The root package's own example wins, as in cargo.
    assert_eq!(choose(&["--example", "my_example"]).unwrap().package, "app");
    let t = choose(&["-p", "tools", "--example", "my_example"]).unwrap();
    assert_eq!(t.package, "tools");
    // Not in the root package, in two members: the choices, with their -p.
    write(
        ws.path(),
        &[(
            "benchmark_critereon/examples/only_tools.rs",
            "fn main() {}\n".into(),
        )],
    );
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(ws.path().join("Cargo.toml"))
        .no_deps()
        .exec()
        .unwrap();
    let opts = Options::from_args(["rf", "--example", "only_tools"])
        .unwrap()
        .target_options();
    let e = rust_flamegraph::target::select::choose(&metadata, &opts)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`-p benchmark_critereon --example only_tools`")
            && e.contains("`-p tools --example only_tools`"),
        "{e}"
    );
    let e = choose(&["--example", "nowhere"]).unwrap_err().to_string();
    assert!(e.contains("no example target `nowhere`"), "{e}");
}
