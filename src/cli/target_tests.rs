//! Unit tests of the target stage driven by command lines: the options as
//! [`Options`](super::Options) turns them into [`TargetOptions`].

use clap::Parser;

use crate::target::TargetOptions;

fn opts(args: &[&str]) -> TargetOptions {
    super::Options::parse_from(std::iter::once("rf").chain(args.iter().copied())).target_options()
}

mod select {
    use super::opts;
    use crate::exit::Exit;
    use crate::target::options::*;
    use crate::target::select::*;

    use crate::target::*;
    use cargo_metadata::{Metadata, MetadataCommand};

    fn this_workspace() -> Metadata {
        MetadataCommand::new()
            .manifest_path(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .no_deps()
            .exec()
            .unwrap()
    }

    #[test]
    fn default_is_the_workspaces_configured_demo() {
        let t = choose(&this_workspace(), &opts(&[])).unwrap();
        assert_eq!(
            (t.package.as_str(), t.kind, t.name.as_str()),
            ("demo", Kind::Bin, "demo")
        );
    }

    #[test]
    fn unknown_package_and_binary_list_what_exists() {
        let m = this_workspace();
        let e = choose(&m, &opts(&["-p", "nope"])).unwrap_err().to_string();
        assert!(e.contains("demo") && e.contains("rust-flamegraph"), "{e}");
        let e = choose(&m, &opts(&["--bin", "nope"])).unwrap_err();
        assert_eq!(Exit::of(&e), Exit::Build);
        assert!(e.to_string().contains("--bin with one of: demo"), "{e}");
        let e = choose(&m, &opts(&["--example", "x"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("available: --bin demo"), "{e}");
    }

    #[test]
    fn unit_tests_of_a_binary_package() {
        let t = choose(&this_workspace(), &opts(&["--unit-test"])).unwrap();
        assert_eq!((t.kind, t.name.as_str()), (Kind::UnitTestBin, "demo"));
        let t = choose(
            &this_workspace(),
            &opts(&["-p", "rust-flamegraph", "--unit-test"]),
        )
        .unwrap();
        assert_eq!(
            (t.kind, t.name.as_str()),
            (Kind::UnitTestLib, "rust_flamegraph")
        );
    }

    #[test]
    fn a_bench_gets_bench_once() {
        let args = |kind, cli: &[&str]| -> Vec<String> {
            program_args(kind, &opts(cli))
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(
            args(Kind::Bench, &["--", "--profile-time", "5"]),
            ["--bench", "--profile-time", "5"]
        );
        assert_eq!(
            args(Kind::Bench, &["--", "--bench", "--profile-time", "5"]),
            ["--bench", "--profile-time", "5"]
        );
        assert_eq!(
            args(Kind::UnitTestLib, &["--unit-bench", "--", "x"]),
            ["--bench", "x"]
        );
        assert_eq!(args(Kind::Bin, &["--", "--bench"]), ["--bench"]);
        assert!(args(Kind::Bin, &[]).is_empty());
    }

    #[test]
    fn display_shows_the_file_name_and_args() {
        let t = Target {
            program: "/x/target/release/demo".into(),
            args: vec!["--iters".into(), "5".into()],
            name: None,
        };
        assert_eq!(t.display(), "demo --iters 5");
        assert_eq!(t.command().len(), 3);
        // A bench is shown by its target's name, not its hashed file name,
        // and arguments as a shell needs them.
        let t = Target {
            program: "/x/target/release/deps/bench-81b3293c4d0d2df2".into(),
            args: vec!["--bench".into(), "fn [a-z_]+\\(".into()],
            name: Some("bench".into()),
        };
        assert_eq!(t.display(), "bench --bench 'fn [a-z_]+\\('");
    }
}

mod build {
    use super::opts;

    /// The arguments joined by spaces, unquoted, to look for parts in.
    fn plain(args: &[std::ffi::OsString]) -> String {
        let words: Vec<_> = args.iter().map(|a| a.to_string_lossy()).collect();
        words.join(" ")
    }
    use crate::target::build::*;
    use crate::target::options::*;

    #[test]
    fn toolchain_files_name_their_channel() {
        assert_eq!(
            toolchain_channel(
                "[toolchain]\nchannel = \"nightly-2024-01-01\"\ncomponents = [\"rustfmt\"]\n"
            )
            .as_deref(),
            Some("nightly-2024-01-01")
        );
        assert_eq!(toolchain_channel("1.80.1\n").as_deref(), Some("1.80.1"));
        assert_eq!(toolchain_channel("[toolchain]\ncomponents = []\n"), None);
    }

    #[test]
    fn a_comment_after_the_channel_is_not_part_of_it() {
        assert_eq!(
            toolchain_channel("[toolchain]\nchannel = \"1.80.0\" # pinned\n").as_deref(),
            Some("1.80.0")
        );
        assert_eq!(
            toolchain_channel("# for the CI\n[toolchain]\nchannel = 'stable'\n").as_deref(),
            Some("stable")
        );
        assert_eq!(toolchain_channel("[toolchain]\nchannel = \"broken\n"), None);
    }

    #[test]
    fn a_target_dir_that_cannot_be_written_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(unwritable_hint(&dir.path().join("a/b")), "");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "ro,size=64k", "tmpfs"])
            .arg(dir.path())
            .output();
        if !mounted.as_ref().is_ok_and(|o| o.status.success()) {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "mounting a read-only tmpfs needs root, which CI has"
            );
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!! SKIPPED: cannot mount a read-only tmpfs; this test did not run !!!!\n"
            );
            return;
        }
        let hint = unwritable_hint(&dir.path().join("target"));
        let _ = std::process::Command::new("umount")
            .arg(dir.path())
            .status();
        assert!(hint.contains("cannot be written"), "{hint}");
        assert!(hint.contains("Read-only file system"), "{hint}");
    }

    #[test]
    fn build_command_sets_symbols_and_frame_pointers_for_this_build_only() {
        let t = CargoTarget {
            package: "app".into(),
            kind: Kind::Example,
            name: "ex".into(),
        };
        let o = opts(&["--features", "a,b", "--no-default-features", "--dev"]);
        let (args, env) = build_command(
            &t,
            &o,
            std::path::Path::new("/w/Cargo.toml"),
            std::path::Path::new("/w/target/rust-flamegraph"),
            None,
        );
        let s = plain(&args);
        for part in [
            "build --message-format=json-render-diagnostics --manifest-path /w/Cargo.toml",
            "--target-dir /w/target/rust-flamegraph -p app --example ex --profile dev",
            "--features a,b --no-default-features",
            "--config profile.dev.debug=\"limited\"",
            "--config profile.dev.strip=false",
        ] {
            assert!(s.contains(part), "{part} not in {s}");
        }
        assert!(
            s.contains("build.rustflags=[\"-C\", \"force-frame-pointers=yes\", \"-C\", \"symbol-mangling-version=v0\"]"),
            "{s}"
        );
        assert!(env.is_empty());
        // RUSTFLAGS overrides cargo's config: then it is extended instead.
        let (args, env) = build_command(
            &CargoTarget {
                kind: Kind::UnitTestLib,
                ..t
            },
            &opts(&[]),
            std::path::Path::new("C"),
            std::path::Path::new("T"),
            Some("-C target-cpu=native"),
        );
        let s = plain(&args);
        assert!(
            s.starts_with("test --no-run") && s.contains("--lib --profile release"),
            "{s}"
        );
        assert!(!s.contains("build.rustflags"), "{s}");
        assert_eq!(
            env,
            vec![(
                "RUSTFLAGS".to_string(),
                "-C target-cpu=native -C force-frame-pointers=yes -C symbol-mangling-version=v0"
                    .to_string()
            )]
        );
    }

    #[test]
    fn a_build_that_compiled_nothing_says_so() {
        let what = "binary `demo` of package `demo`";
        let took = std::time::Duration::from_millis(12_340);
        assert_eq!(
            built(what, false, took),
            "binary `demo` of package `demo` is up to date"
        );
        assert_eq!(
            built(what, true, took),
            "built binary `demo` of package `demo` in 12.3 s"
        );
    }
}
