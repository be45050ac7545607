//! What the profiler says, run as a user runs it, without perf: the notes
//! and errors of the command line and of the output folder.

mod common;

use std::process::Command;

use common::*;

fn profiler() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rust-flamegraph"))
}

fn golden() -> std::path::PathBuf {
    repo().join("tests/golden/demo.folded")
}

#[test]
fn results_among_a_users_files_in_a_crate_say_that_cargo_will_rebuild() {
    let krate = tempfile::tempdir().unwrap();
    std::fs::write(
        krate.path().join("Cargo.toml"),
        "[package]\nname = \"k\"\nversion = \"0.1.0\"\n",
    )
    .unwrap();
    let fg = krate.path().join("fg");
    std::fs::create_dir(&fg).unwrap();
    std::fs::write(fg.join("notes.txt"), "mine").unwrap();
    let out = run(profiler()
        .arg("--from-folded")
        .arg(golden())
        .arg("--out")
        .arg(&fg));
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("not marked as a results folder"), "{said}");
    assert!(
        said.contains("`notes.txt`") && said.contains("exclude"),
        "{said}"
    );
    assert!(
        !fg.join("Cargo.toml").exists(),
        "a folder of the user's is not marked"
    );

    // A folder of results only is marked, and nothing is said.
    let clean = krate.path().join("fg2");
    let out = run(profiler()
        .arg("--from-folded")
        .arg(golden())
        .arg("--out")
        .arg(&clean));
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("not marked"), "{}", text(&out));
    assert!(clean.join("Cargo.toml").exists());
}

#[test]
fn z_without_a_kept_perf_data_says_there_is_nothing_to_compress() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(profiler()
        .args(["-z", "--from-folded"])
        .arg(golden())
        .arg("--out")
        .arg(dir.path()));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("-z: nothing to compress"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_programs_option_before_the_double_dash_says_where_it_goes() {
    let out = run(profiler().args(["--iters", "100"]));
    assert_eq!(out.status.code(), Some(2));
    let said = text(&out);
    assert!(said.contains("rust-flamegraph -- --iters 100"), "{said}");
    assert!(!said.contains("--notes"), "{said}");
}

#[test]
fn short_names_drop_generic_arguments_from_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.folded");
    let deep = "main;rayon_core::join::join_context::<rayon::iter::plumbing::bridge<u64, fn(u8) -> u8>::{closure#0}, u64>::{closure#0};<alloc::vec::Vec<u8> as core::ops::drop::Drop>::drop";
    std::fs::write(&input, format!("{deep} 30\nmain;demo::work 10\n")).unwrap();
    let out = run(profiler()
        .arg("--short-names")
        .arg("--from-folded")
        .arg(&input)
        .arg("--out")
        .arg(dir.path().join("fg")));
    assert!(out.status.success(), "{}", text(&out));
    let folded = std::fs::read_to_string(dir.path().join("fg/stacks.folded")).unwrap();
    assert!(
        folded.contains(
            "main;rayon_core::join::join_context::{closure#0};<alloc::vec::Vec as core::ops::drop::Drop>::drop 30"
        ),
        "{folded}"
    );
    let svg = std::fs::read_to_string(dir.path().join("fg/flamegraph.svg")).unwrap();
    assert!(
        !svg.contains("plumbing::bridge"),
        "the SVG has the short names"
    );
}
