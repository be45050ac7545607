//! The crate's layers point one way (`main` → `cli` → `run` → the stages →
//! `model`, `sys`, `exit`): read from the sources, every `crate::…` and
//! `super::…` path is an edge between modules (files), and
//!
//! - no module imports itself back through others (no import circles);
//! - nothing below the command line imports `cli`;
//! - `model` and `defaults` import nothing else of ours.
//!
//! Comments are left out (doc links are not imports); unit tests are not.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// `src/a/b.rs` → `a/b`, `src/a/mod.rs` → `a`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let name = rel.to_string_lossy().into_owned();
    name.strip_suffix("/mod")
        .map(str::to_string)
        .unwrap_or(name)
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of `text` without `//` comments (strings holding `//` are rare
/// in paths we look for, and would only hide an edge, never add one).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `a::b::c` paths after each `prefix` in `code` (identifiers only).
fn paths_after<'a>(code: &'a str, prefix: &str) -> Vec<Vec<&'a str>> {
    let mut out = Vec::new();
    for (i, _) in code.match_indices(prefix) {
        // `crate::` of `rust_flamegraph::crate::` cannot occur; skip `xcrate::`.
        if code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[i + prefix.len()..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let path: Vec<&str> = rest[..end].split("::").filter(|s| !s.is_empty()).collect();
        if !path.is_empty() {
            out.push(path);
        }
        // `use crate::{a::b, c}`: each item of the group.
        if rest.starts_with('{') {
            let group = &rest[1..rest.find('}').unwrap_or(rest.len())];
            for item in group.split(',') {
                let item = item.trim();
                let end = item
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .unwrap_or(item.len());
                out.push(item[..end].split("::").filter(|s| !s.is_empty()).collect());
            }
        }
    }
    out
}

/// The longest module that `path` (from the crate root) names.
fn resolve(modules: &BTreeSet<String>, path: &[&str]) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("/"))
        .find(|m| modules.contains(m))
}

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let modules: BTreeSet<String> = all.iter().map(|f| module_of(&src, f)).collect();
    let mut graph = Graph::new();
    for file in &all {
        let module = module_of(&src, file);
        let code = code(&std::fs::read_to_string(file).unwrap());
        let parent: Vec<&str> = match module.rsplit_once('/') {
            Some((parent, _)) => parent.split('/').collect(),
            None => Vec::new(),
        };
        let mut deps = BTreeSet::new();
        for path in paths_after(&code, "crate::") {
            deps.extend(resolve(&modules, &path));
        }
        for path in paths_after(&code, "super::") {
            let mut full = parent.clone();
            full.extend(path.iter().copied().skip_while(|p| *p == "super"));
            deps.extend(resolve(&modules, &full));
        }
        deps.remove(&module);
        graph.insert(module, deps);
    }
    graph
}

/// A circle through `from`, if any: depth-first, the path so far on `stack`.
fn circle(graph: &Graph, from: &str, stack: &mut Vec<String>) -> Option<Vec<String>> {
    if let Some(i) = stack.iter().position(|m| m == from) {
        let mut circle = stack[i..].to_vec();
        circle.push(from.to_string());
        return Some(circle);
    }
    stack.push(from.to_string());
    for dep in graph.get(from).into_iter().flatten() {
        if let Some(c) = circle(graph, dep, stack) {
            return Some(c);
        }
    }
    stack.pop();
    None
}

#[test]
fn no_module_imports_itself_through_others() {
    let graph = graph();
    assert!(graph.len() > 30, "the sources were not found: {graph:?}");
    assert!(
        graph["run"].contains("collect/stacks") && graph["collect/stacks"].contains("model/folded"),
        "edges are read: {:?}",
        graph["run"]
    );
    for module in graph.keys() {
        if let Some(c) = circle(&graph, module, &mut Vec::new()) {
            panic!("import circle: {}", c.join(" → "));
        }
    }
}

#[test]
fn nothing_below_the_command_line_imports_it() {
    for (module, deps) in graph() {
        if module == "main" || module == "lib" || module.starts_with("cli") {
            continue;
        }
        assert!(
            !deps.iter().any(|d| d.starts_with("cli")),
            "{module} imports the command line: {deps:?}"
        );
    }
}

#[test]
fn the_shared_data_and_defaults_import_nothing_of_ours() {
    for (module, deps) in graph() {
        if module.starts_with("model") || module == "defaults" {
            let outside: Vec<_> = deps.iter().filter(|d| !d.starts_with("model")).collect();
            assert!(outside.is_empty(), "{module} imports {outside:?}");
        }
    }
}

#[test]
fn a_circle_is_found_when_there_is_one() {
    // The check itself: a → b → c → a is reported.
    let mut graph = Graph::new();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")] {
        graph.entry(a.into()).or_default().insert(b.into());
    }
    let c = circle(&graph, "d", &mut Vec::new()).unwrap();
    assert_eq!(c, ["a", "b", "c", "a"]);
    assert!(paths_after("use crate::{x::y, z};", "crate::").contains(&vec!["x", "y"]));
}
