//! Building a cargo target for profiling: symbols, frame pointers and v0
//! symbol names, set for this build only, into a target dir of ours; the
//! executable is found through cargo's JSON messages, never guessed.

use std::ffi::OsString;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cargo_metadata::{Message, Metadata};

use super::options::{CargoTarget, Kind, TargetOptions};
use crate::exit::Exit;
use crate::model::text::join_args;

/// The `cargo` invocation that builds `target` for profiling.
///
/// Symbols and frame pointers are set through `--config` for this build only,
/// so the user's Cargo.toml is untouched; arrays in cargo config are merged,
/// so the user's own `build.rustflags` are kept. `RUSTFLAGS`, when set,
/// overrides all config, so then we extend it instead.
/// `rustflags` is the caller's `RUSTFLAGS`, if set.
pub fn build_command(
    target: &CargoTarget,
    opts: &TargetOptions,
    manifest: &std::path::Path,
    target_dir: &std::path::Path,
    rustflags: Option<&str>,
) -> (Vec<OsString>, Vec<(String, String)>) {
    let profile = opts.profile.as_str();
    let mut args: Vec<OsString> = Vec::new();
    let unit = matches!(target.kind, Kind::UnitTestLib | Kind::UnitTestBin);
    if unit {
        args.extend(["test".into(), "--no-run".into()]);
    } else {
        args.push("build".into());
    }
    args.push("--message-format=json-render-diagnostics".into());
    args.push("--manifest-path".into());
    args.push(manifest.into());
    args.push("--target-dir".into());
    args.push(target_dir.into());
    args.extend(["-p".into(), target.package.clone().into()]);
    match target.kind.flag() {
        Some(flag) => args.extend([flag.into(), target.name.clone().into()]),
        None => args.push("--lib".into()),
    }
    args.extend(["--profile".into(), profile.into()]);
    if let Some(triple) = &opts.triple {
        args.extend(["--target".into(), triple.into()]);
    }
    if let Some(features) = &opts.features {
        args.extend(["--features".into(), features.into()]);
    }
    if opts.no_default_features {
        args.push("--no-default-features".into());
    }
    for setting in [
        format!("profile.{profile}.debug=\"limited\""),
        format!("profile.{profile}.strip=false"),
    ] {
        args.extend(["--config".into(), setting.into()]);
    }
    let mut env = Vec::new();
    // Frame pointers for `--call-graph fp` and for the unwinder's fallback;
    // v0 symbol names keep generic arguments (`insert_tail::<u64, …>`).
    // The same build serves both call-graph modes.
    const FLAGS: [&str; 4] = [
        "-C",
        "force-frame-pointers=yes",
        "-C",
        "symbol-mangling-version=v0",
    ];
    match rustflags {
        Some(flags) if !flags.trim().is_empty() => env.push((
            "RUSTFLAGS".to_string(),
            format!("{flags} {}", FLAGS.join(" ")),
        )),
        _ => args.extend([
            "--config".into(),
            format!("build.rustflags={FLAGS:?}").into(),
        ]),
    }
    (args, env)
}

pub(crate) fn build(
    metadata: &Metadata,
    target: &CargoTarget,
    opts: &TargetOptions,
) -> Result<PathBuf> {
    let manifest = match &opts.manifest_path {
        Some(m) => m.clone(),
        None => metadata
            .workspace_root
            .join("Cargo.toml")
            .into_std_path_buf(),
    };
    // Our own folder: our flags differ from the user's, and sharing theirs
    // would rebuild on every switch. Both call-graph modes use this one build.
    let target_dir = match &opts.target_dir {
        Some(d) => d.clone(),
        None => metadata
            .target_directory
            .join("rust-flamegraph")
            .into_std_path_buf(),
    };
    if let Some(note) = toolchain_note(metadata.workspace_root.as_std_path(), &opts.privileges) {
        crate::say!("rust-flamegraph: {}", crate::model::text::printable(&note));
    }
    let rustflags = std::env::var("RUSTFLAGS").ok();
    let (args, env) = build_command(target, opts, &manifest, &target_dir, rustflags.as_deref());
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let what = format!(
        "{} `{}` of package `{}`",
        target.kind.describe(),
        crate::model::text::printable(&target.name),
        crate::model::text::printable(&target.package),
    );
    crate::say!(
        "rust-flamegraph: cargo build of {what} ({} profile, with symbols and frame pointers)",
        crate::model::text::printable(&opts.profile),
    );
    let started = std::time::Instant::now();
    if opts.verbose {
        crate::say!(
            "rust-flamegraph: running {} {}",
            cargo.to_string_lossy(),
            join_args(&args)
        );
    }
    // The build runs without root when we are root: what it writes must be its own.
    opts.privileges
        .prepare_dir(&target_dir, opts.target_dir.is_some())?;
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        opts.privileges.prepare_dir(Path::new(&home), true)?;
    }
    // cargo, rustc and build scripts die with us, even on `kill -9`: they run
    // in a process group whose watchdog kills it when we are gone. Without
    // our binary to be that watchdog, cargo alone has a death signal.
    let guard = match crate::record::exec_helper::helper_available() {
        true => Some(
            crate::sys::interrupt::Guard::start(&crate::record::exec_helper::our_exe())
                .context("cannot start the process that ends the build if we are killed")?,
        ),
        false => None,
    };
    let mut guard = guard;
    let pgid = guard.as_ref().map(crate::sys::interrupt::Guard::pgid);
    // Without root, cargo leaves for a session of its own (no terminal to
    // type into: `Privileges::apply`), out of the watchdog's group: the
    // watchdog is told to end that session instead.
    let own_session = opts.privileges.drops();
    let privileges = opts.privileges.clone();
    let mut cmd = duct::cmd(&cargo, &args)
        .unchecked()
        .stdin_null()
        .before_spawn(move |cmd| {
            match pgid {
                Some(pgid) if !own_session => crate::sys::interrupt::join_group(cmd, pgid),
                _ => crate::sys::interrupt::die_with_us(cmd),
            }
            privileges.apply(cmd);
            Ok(())
        });
    for (k, v) in &env {
        cmd = cmd.env(k, v);
    }
    // Cargo's progress and diagnostics go to the terminal; its JSON messages to us.
    let reader = cmd
        .reader()
        .map_err(|e| super::select::cannot_run_cargo(&cargo, e, &opts.privileges))?;
    let cargo_pid = reader.pids()[0];
    let _watch = match (&mut guard, own_session) {
        // cargo leads its session and its group: Ctrl-C ends that group.
        (Some(guard), true) => {
            guard.watch_session(cargo_pid);
            crate::sys::interrupt::watch_group(cargo_pid)
        }
        (Some(guard), false) => crate::sys::interrupt::watch_group(guard.pgid()),
        (None, _) => crate::sys::interrupt::watch_child(cargo_pid),
    };
    let mut executable = None;
    let mut compiled = false;
    for message in Message::parse_stream(BufReader::new(&reader)) {
        let message = message.context("reading cargo's build messages")?;
        compiled |= match &message {
            Message::CompilerArtifact(artifact) => !artifact.fresh,
            Message::BuildScriptExecuted(_) => true,
            _ => false,
        };
        if let Message::CompilerArtifact(artifact) = message {
            if artifact.target.name == target.name
                && artifact.executable.is_some()
                && target
                    .kind
                    .is_artifact(&artifact.target, artifact.profile.test)
            {
                executable = artifact.executable.map(|p| p.into_std_path_buf());
            }
        }
    }
    let output = reader
        .try_wait()
        .context("waiting for cargo")?
        .context("cargo closed its output but is still running")?;
    if !output.status.success() {
        return Err(Exit::Build.error(format!(
            "cargo could not build {} `{}` ({}): see its errors above{}",
            target.kind.describe(),
            target.name,
            output.status,
            unwritable_hint(&target_dir)
        )));
    }
    crate::say!(
        "rust-flamegraph: {}",
        built(&what, compiled, started.elapsed())
    );
    executable.ok_or_else(|| {
        Exit::Build.error(format!(
            "cargo built `{}` but reported no executable for it; \
                 does it have required-features you did not enable with --features?",
            target.name
        ))
    })
}

/// What to say when the workspace's `rust-toolchain.toml` (or `rust-toolchain`)
/// asks for a toolchain that will not be used: without rustup (the image has
/// Debian's Rust only) nothing reads that file. `None` when rustup is there to
/// honour it, or the file asks for `stable` or the version we have.
fn toolchain_note(root: &Path, privileges: &crate::sys::privilege::Privileges) -> Option<String> {
    if which::which("rustup").is_ok() {
        return None;
    }
    // The crate's file, read as a file of a folder someone else owns: no
    // symlink of theirs, no FIFO, at most 4 KiB.
    let (file, text) = ["rust-toolchain.toml", "rust-toolchain"]
        .iter()
        .find_map(|f| {
            let opened = crate::sys::safe_fs::open_file(&root.join(f), 4096).ok()?;
            let bytes = crate::sys::safe_fs::read_bounded(opened, 4096).ok()?;
            Some((*f, String::from_utf8(bytes).ok()?))
        })?;
    let channel = crate::model::text::printable(&toolchain_channel(&text)?).into_owned();
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let privileges = privileges.clone();
    let version = duct::cmd!(rustc, "--version")
        .stderr_null()
        .before_spawn(move |cmd| {
            privileges.apply(cmd);
            Ok(())
        })
        .read()
        .unwrap_or_else(|_| "an unknown rustc".into());
    let number = version.split_whitespace().nth(1).unwrap_or("");
    let same =
        channel == "stable" || number == channel || number.starts_with(&format!("{channel}."));
    (!same).then(|| {
        format!(
            "{file} asks for Rust `{channel}`; {} builds with {} ({}), not rustup: \
             the file is ignored",
            if crate::sys::container::in_container() {
                "the image"
            } else {
                "this machine"
            },
            if crate::sys::container::in_container() {
                "Debian's Rust"
            } else {
                "the installed Rust"
            },
            version.trim()
        )
    })
}

/// The channel a toolchain file names: `channel = "…"` in its `[toolchain]`
/// table, or the whole of a legacy one-line file.
/// What the build did: `built … in 12.3 s`, or `… is up to date` when cargo
/// compiled nothing.
pub(crate) fn built(what: &str, compiled: bool, took: std::time::Duration) -> String {
    if compiled {
        format!("built {what} in {:.1} s", took.as_secs_f64())
    } else {
        format!("{what} is up to date")
    }
}

pub(crate) fn toolchain_channel(text: &str) -> Option<String> {
    let trimmed = text.trim();
    if !trimmed.contains('=') && !trimmed.contains('[') {
        return (!trimmed.is_empty()).then(|| trimmed.to_string());
    }
    let table: toml::Table = text.parse().ok()?;
    let channel = match table.get("toolchain") {
        Some(toolchain) => toolchain.get("channel")?,
        None => table.get("channel")?,
    };
    channel.as_str().map(str::to_string)
}

/// Why cargo may have failed when the target dir cannot be written (a
/// `docker run --read-only`, a read-only mount): cargo's own message is about
/// its lock file.
pub(crate) fn unwritable_hint(target_dir: &Path) -> String {
    let existing = target_dir.ancestors().find(|d| d.is_dir());
    let Some(dir) = existing else {
        return String::new();
    };
    match tempfile::tempfile_in(dir) {
        Ok(_) => String::new(),
        Err(e) => format!(
            ". {} cannot be written ({e}): builds need it; {}",
            dir.display(),
            if crate::sys::container::in_container() {
                "drop --read-only from `docker run` (the image writes only its build folder and \
                 /tmp), or profile a built program with --exec"
            } else {
                "choose a writable --target-dir"
            }
        ),
    }
}
