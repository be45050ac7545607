//! The Dockerfile builds on arm64 hosts (Apple Silicon, Graviton) as on
//! amd64: every package it installs has an arm64 (or architecture-independent)
//! candidate in its Debian release, with dependencies that resolve. apt is
//! asked, in the Dockerfile's base image, to plan the install for arm64 alone
//! (`-s`: nothing is installed), from the archive's arm64 indices (about 90 MB
//! of lists, a few seconds). Skips loudly without Docker or without the
//! archive (fails under CI=true).

mod common;

use std::process::Command;

use common::*;

/// The Dockerfile's first base image, and the packages of its `apt-get install`s.
fn base_and_packages(dockerfile: &str) -> (String, Vec<String>) {
    let base = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("FROM "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a FROM line")
        .to_string();
    // RUN lines joined: a `\` at a line's end continues it.
    let joined = dockerfile.replace("\\\n", " ");
    let mut packages = Vec::new();
    for line in joined.lines() {
        for command in line.split("&&") {
            let mut words = command.split_whitespace();
            if words.by_ref().any(|w| w == "apt-get") && words.next() == Some("install") {
                packages.extend(words.filter(|w| !w.starts_with('-')).map(String::from));
            }
        }
    }
    (base, packages)
}

#[test]
fn the_dockerfile_lists_its_base_and_packages() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let (base, packages) = base_and_packages(&dockerfile);
    assert!(base.starts_with("debian:"), "{base}");
    for needed in ["linux-perf", "libc6-dbg", "binutils"] {
        assert!(
            packages.iter().any(|p| p == needed),
            "{needed} in {packages:?}"
        );
    }
    let sample = "FROM x AS y\nRUN apt-get update \\\n && apt-get install -y --no-install-recommends \\\n      a b \\\n && rm -rf z\n";
    assert_eq!(
        base_and_packages(sample),
        ("x".into(), vec!["a".into(), "b".into()])
    );
}

#[test]
fn every_package_of_the_dockerfile_exists_for_arm64() {
    if !docker_available() {
        return;
    }
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let (base, packages) = base_and_packages(&dockerfile);
    let made = run(Command::new("bash").arg(repo().join(".ci/base-image")));
    assert!(made.status.success(), "base image: {}", text(&made));
    // arm64 as apt's only architecture, and an empty dpkg status: apt plans
    // every package and dependency for an arm64 system, as a build there would.
    let apt = "apt-get -o APT::Architecture=arm64 -o APT::Architectures=arm64 \
               -o Dir::State::status=/dev/null";
    let script = format!(
        "{apt} -qq update || exit 7; {apt} -s install --no-install-recommends {}",
        packages.join(" ")
    );
    let out = run(Command::new("docker").args(["run", "--rm", &base, "sh", "-c", &script]));
    let log = text(&out);
    if out.status.code() == Some(7) && !require("the Debian archive", Err(log.clone())) {
        return;
    }
    assert!(
        out.status.success(),
        "apt cannot install the Dockerfile's packages on arm64:\n{log}"
    );
    for package in &packages {
        // `Inst linux-perf (6.12.118-1 Debian-Security:13/stable-security [arm64])`
        let planned = log.lines().find(|l| {
            l.strip_prefix("Inst ")
                .and_then(|l| l.strip_prefix(package.as_str()))
                .is_some_and(|l| l.starts_with(" ("))
        });
        match planned {
            Some(l) => assert!(
                l.ends_with("[arm64])") || l.ends_with("[all])"),
                "{package} is planned for another architecture: {l}"
            ),
            None => panic!("apt plans no arm64 {package}:\n{log}"),
        }
    }
}
