//! The shape of src/, checked: the top-level modules import one another in one direction only
//! (no cycle, so the diagram in src/lib.rs can be true), and no file of production code reaches
//! 500 lines (tests excluded). A module A imports B when any of A's files names `crate::B`
//! outside comments, strings and its `#[cfg(test)]` part — the rule of
//! `shared/tools/modgraph.py`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_PRODUCTION_LINES: usize = 500;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code before `#[cfg(test)]`, without comments and string contents.
fn production_code(text: &str) -> String {
    let text = &text[..text.find("#[cfg(test)]").unwrap_or(text.len())];
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
            }
            '"' => {
                out.push('"');
                let mut escaped = false;
                for c in chars.by_ref() {
                    if !escaped && c == '"' {
                        break;
                    }
                    escaped = !escaped && c == '\\';
                }
                out.push('"');
            }
            // A char literal such as '"' must not open a string.
            '\'' => {
                out.push('\'');
                let rest: String = chars.clone().take(3).collect();
                if rest.starts_with("\"'") || rest.starts_with("\\\"") {
                    chars.next();
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// The crate's top-level modules named after `crate::` in `code`, including `crate::{a, b::c}`.
fn named_modules(code: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let word = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for part in group.split(',') {
                names.insert(word(part.trim()));
            }
        } else {
            names.insert(word(rest));
        }
    }
    names
}

/// Top-level module → the top-level modules it imports.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = src();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let module_of = |path: &Path| -> String {
        let first = path
            .strip_prefix(&src)
            .unwrap()
            .components()
            .next()
            .unwrap();
        first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string()
    };
    let modules: BTreeSet<String> = files
        .iter()
        .map(|f| module_of(f))
        .filter(|m| m != "lib" && m != "main")
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = modules
        .iter()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    for file in &files {
        let module = module_of(file);
        let Some(edges) = graph.get_mut(&module) else {
            continue;
        };
        let code = production_code(&std::fs::read_to_string(file).unwrap());
        for name in named_modules(&code) {
            if name != module && modules.contains(&name) {
                edges.insert(name);
            }
        }
    }
    graph
}

/// The modules on some cycle, each cycle as one sorted list.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Two modules are on one cycle when each reaches the other.
    let reaches = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_string()];
        while let Some(m) = stack.pop() {
            for next in &graph[&m] {
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        seen
    };
    let reach: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|m| (m, reaches(m))).collect();
    let mut found: BTreeSet<Vec<String>> = BTreeSet::new();
    for (module, reached) in &reach {
        let cycle: Vec<String> = reached
            .iter()
            .filter(|other| reach[other].contains(*module))
            .cloned()
            .collect();
        if !cycle.is_empty() {
            found.insert(cycle);
        }
    }
    found.into_iter().collect()
}

#[test]
fn top_level_modules_import_in_one_direction() {
    let graph = module_graph();
    assert!(graph.len() > 15, "{graph:?}");
    assert!(graph["routes"].contains("token"), "the graph sees imports");
    let found = cycles(&graph);
    assert!(
        found.is_empty(),
        "import cycles between top-level modules: {found:?}"
    );
}

#[test]
fn the_cycle_check_finds_cycles() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, to) in [
        ("a", "b"),
        ("b", "c"),
        ("c", "a"),
        ("d", "a"),
        ("e", "f"),
        ("f", "e"),
    ] {
        graph.entry(from.into()).or_default().insert(to.into());
        graph.entry(to.into()).or_default();
    }
    assert_eq!(cycles(&graph), [vec!["a", "b", "c"], vec!["e", "f"]]);
    let code = production_code(
        "use crate::{a::X, b};\n// crate::c\nlet s = \"crate::d\"; let q = '\"'; crate::e::f();\n#[cfg(test)]\nuse crate::g;",
    );
    assert_eq!(
        named_modules(&code).into_iter().collect::<Vec<_>>(),
        ["a", "b", "e"]
    );
}

#[test]
fn no_file_of_production_code_reaches_500_lines() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let too_long: Vec<(usize, PathBuf)> = files
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(&file).unwrap();
            let production = &text[..text.find("#[cfg(test)]").unwrap_or(text.len())];
            (production.lines().count(), file)
        })
        .filter(|(lines, _)| *lines >= MAX_PRODUCTION_LINES)
        .collect();
    assert!(too_long.is_empty(), "{too_long:?}");
}
