//! Which cargo target the options name, looked up in `cargo metadata` with
//! cargo's own meanings: paths are never guessed.

use anyhow::Result;
use cargo_metadata::{Metadata, MetadataCommand, Package, TargetKind};

use super::options::{CargoTarget, Kind, TargetOptions};
use crate::exit::Exit;

pub(crate) fn metadata(opts: &TargetOptions) -> Result<Metadata> {
    let mut cmd = MetadataCommand::new();
    cmd.no_deps();
    if let Some(path) = &opts.manifest_path {
        if !path.is_file() {
            return Err(Exit::Build.error(
                if path == std::path::Path::new("/src/Cargo.toml")
                    && crate::sys::container::in_container()
                {
                    "/src is mounted but has no Cargo.toml: mount your crate's folder, \
                     e.g. docker run … -v \"$PWD\":/src rust-flamegraph"
                        .to_string()
                } else {
                    format!(
                        "no Cargo.toml at {}: pass --manifest-path to your crate's Cargo.toml \
                         (in Docker, mount the crate with -v \"$PWD\":/src)",
                        path.display()
                    )
                },
            ));
        }
        cmd.manifest_path(path);
    }
    // cargo reads the crate's own configuration (`.cargo/config.toml`), which
    // may name programs to run: without root, as the build.
    let mut command = cmd.cargo_command();
    opts.privileges.apply(&mut command);
    let output = command
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| cannot_run_cargo(command.get_program(), e, &opts.privileges))?;
    let json = std::str::from_utf8(&output.stdout)
        .ok()
        .and_then(|out| out.lines().find(|line| line.starts_with('{')));
    match (output.status.success(), json) {
        (true, Some(json)) => MetadataCommand::parse(json).map_err(|e| {
            Exit::Build.error(format!("cargo metadata printed what cannot be read: {e}"))
        }),
        _ => Err(Exit::Build.error(format!(
            "cannot read the cargo workspace: run from a crate's folder or pass \
                 --manifest-path; to profile a program that is not a cargo target use --exec.\n{}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))),
    }
}

/// The error for a cargo that could not be started: as a user other than
/// root, a toolchain in root's home cannot be run.
pub(crate) fn cannot_run_cargo(
    cargo: &std::ffi::OsStr,
    err: std::io::Error,
    privileges: &crate::sys::privilege::Privileges,
) -> anyhow::Error {
    let cargo = cargo.to_string_lossy();
    match privileges.identity() {
        Some(id) if err.kind() == std::io::ErrorKind::PermissionDenied || id.uid != 0 => {
            Exit::Build.error(format!(
                "cannot run {cargo} as {}, who builds (rust-flamegraph runs cargo without \
                 root): {err}. Install Rust where that user can run it (a toolchain in \
                 root's home is not), choose who builds with {}=UID[:GID] (0: root, still \
                 without capabilities), or build as root with --keep-root",
                id.who,
                crate::sys::privilege::USER_VAR
            ))
        }
        _ => Exit::Build.error(format!("cannot run {cargo}: is cargo installed? {err}")),
    }
}

/// Picks the package and target from the options, like cargo does.
///
/// A `--bin`/`--example`/`--bench`/`--test` without `-p` is looked for in the
/// default package, then in every member of the workspace (an example of
/// another member is found, as `cargo build --example` finds it); when
/// several members have it, the error lists each choice with its `-p`.
pub fn choose(metadata: &Metadata, opts: &TargetOptions) -> Result<CargoTarget> {
    let flagged = [
        (&opts.bin, Kind::Bin, TargetKind::Bin),
        (&opts.example, Kind::Example, TargetKind::Example),
        (&opts.bench, Kind::Bench, TargetKind::Bench),
        (&opts.test, Kind::Test, TargetKind::Test),
    ];
    for (name, kind, cargo_kind) in flagged {
        if let Some(name) = name {
            return find_in_workspace(metadata, opts.package.as_deref(), kind, cargo_kind, name);
        }
    }
    let package = choose_package(metadata, opts.package.as_deref())?;
    let unit = opts.unit_test.as_ref().or(opts.unit_bench.as_ref());
    if let Some(name) = unit {
        let flag = if opts.unit_test.is_some() {
            "--unit-test"
        } else {
            "--unit-bench"
        };
        let lib = package.targets.iter().find(|t| t.is_lib());
        let unit_bin = |name: &str| {
            find_target(package, TargetKind::Bin, flag, name).map(|name| CargoTarget {
                package: package.name.to_string(),
                kind: Kind::UnitTestBin,
                name,
            })
        };
        return match (name.as_str(), lib) {
            ("", Some(lib)) if !opts.unit_bin => Ok(CargoTarget {
                package: package.name.to_string(),
                kind: Kind::UnitTestLib,
                name: lib.name.clone(),
            }),
            (n, Some(lib)) if n == lib.name && !opts.unit_bin => Ok(CargoTarget {
                package: package.name.to_string(),
                kind: Kind::UnitTestLib,
                name: lib.name.clone(),
            }),
            ("", _) => unit_bin(&only_binary(package)?),
            (n, _) => unit_bin(n),
        };
    }
    Ok(CargoTarget {
        package: package.name.to_string(),
        kind: Kind::Bin,
        name: only_binary(package)?,
    })
}

/// The target `name` of this kind: in package `spec`, or else in the
/// default package, or else in the one member of the workspace that has it.
fn find_in_workspace(
    metadata: &Metadata,
    spec: Option<&str>,
    kind: Kind,
    cargo_kind: TargetKind,
    name: &str,
) -> Result<CargoTarget> {
    let flag = kind.flag().unwrap_or("--lib");
    let found = |package: &Package| CargoTarget {
        package: package.name.to_string(),
        kind,
        name: name.to_string(),
    };
    let default = choose_package(metadata, spec);
    if spec.is_some() {
        let package = default?;
        return find_target(package, cargo_kind, flag, name).map(|_| found(package));
    }
    if let Ok(package) = &default {
        if has_target(package, &cargo_kind, name) {
            return Ok(found(package));
        }
    }
    let members = metadata.workspace_packages();
    let with: Vec<&Package> = members
        .iter()
        .copied()
        .filter(|p| has_target(p, &cargo_kind, name))
        .collect();
    match (with.as_slice(), default) {
        ([only], _) => Ok(found(only)),
        ([], Ok(package)) => find_target(package, cargo_kind, flag, name).map(|_| found(package)),
        ([], Err(_)) => {
            let all: Vec<String> = members
                .iter()
                .flat_map(|p| {
                    p.targets
                        .iter()
                        .filter(|t| t.is_kind(cargo_kind.clone()))
                        .map(|t| format!("-p {} {flag} {}", p.name, t.name))
                })
                .collect();
            Err(Exit::Build.error(if all.is_empty() {
                format!("no package of this workspace has a {cargo_kind} target")
            } else {
                format!(
                    "no package of this workspace has a {cargo_kind} target `{name}`; \
                     there are: {}",
                    comma_list(all)
                )
            }))
        }
        (several, _) => Err(Exit::Build.error(format!(
            "several packages have a {cargo_kind} target `{name}`: choose one with {}",
            comma_list(
                several
                    .iter()
                    .map(|p| format!("`-p {} {flag} {name}`", p.name))
            )
        ))),
    }
}

fn has_target(package: &Package, kind: &TargetKind, name: &str) -> bool {
    package
        .targets
        .iter()
        .any(|t| t.is_kind(kind.clone()) && t.name == name)
}

fn choose_package<'m>(metadata: &'m Metadata, spec: Option<&str>) -> Result<&'m Package> {
    let members = metadata.workspace_packages();
    let names = || comma_list(members.iter().map(|p| p.name.to_string()));
    if let Some(spec) = spec {
        return members
            .iter()
            .copied()
            .find(|p| *p.name == *spec)
            .ok_or_else(|| {
                Exit::Build.error(format!(
                    "no package `{spec}` in this workspace; its packages: {}",
                    names()
                ))
            });
    }
    // A workspace may name the package it profiles by default, as ours names the demo.
    let configured = metadata.workspace_metadata["rust-flamegraph"]["default-package"].as_str();
    if let Some(name) = configured {
        if let Some(p) = members.iter().find(|p| *p.name == *name) {
            return Ok(p);
        }
    }
    if let Some(root) = metadata.root_package() {
        return Ok(root);
    }
    let with_bins: Vec<_> = members
        .iter()
        .filter(|p| p.targets.iter().any(|t| t.is_bin()))
        .collect();
    match with_bins.as_slice() {
        [only] => Ok(only),
        _ => Err(Exit::Build.error(format!(
            "this workspace has several packages: choose one with -p ({})",
            names()
        ))),
    }
}

fn find_target(package: &Package, kind: TargetKind, flag: &str, name: &str) -> Result<String> {
    let of_kind = || package.targets.iter().filter(|t| t.is_kind(kind.clone()));
    if let Some(t) = of_kind().find(|t| t.name == name) {
        return Ok(t.name.clone());
    }
    let existing: Vec<String> = of_kind().map(|t| t.name.clone()).collect();
    Err(Exit::Build.error(if existing.is_empty() {
        format!(
            "package `{}` has no {kind} target `{name}` (it has none of that kind; {})",
            package.name,
            describe_targets(package)
        )
    } else {
        format!(
            "package `{}` has no {kind} target `{name}`; use {flag} with one of: {}",
            package.name,
            comma_list(existing)
        )
    }))
}

fn only_binary(package: &Package) -> Result<String> {
    let bins: Vec<String> = package
        .targets
        .iter()
        .filter(|t| t.is_bin())
        .map(|t| t.name.clone())
        .collect();
    if let Some(default) = &package.default_run {
        return Ok(default.clone());
    }
    match bins.as_slice() {
        [only] => Ok(only.clone()),
        [] => Err(Exit::Build.error(format!(
            "package `{}` has no binary to profile: choose a target ({})",
            package.name,
            describe_targets(package)
        ))),
        _ => Err(Exit::Build.error(format!(
            "package `{}` has several binaries: choose one with --bin ({})",
            package.name,
            comma_list(bins)
        ))),
    }
}

/// "--bin a, --example b, …" for everything that can be profiled.
fn describe_targets(package: &Package) -> String {
    let mut all: Vec<String> = Vec::new();
    for t in &package.targets {
        if t.is_lib() {
            all.push("--unit-test".into());
        }
        for (kind, cargo_kind) in Kind::FLAGGED {
            if let (true, Some(flag)) = (t.is_kind(cargo_kind), kind.flag()) {
                all.push(format!("{flag} {}", t.name));
            }
        }
    }
    if all.is_empty() {
        "it has no targets".into()
    } else {
        format!("available: {}", all.join(", "))
    }
}

fn comma_list(items: impl IntoIterator<Item = String>) -> String {
    items.into_iter().collect::<Vec<_>>().join(", ")
}
