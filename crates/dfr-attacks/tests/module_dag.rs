//! The crate's modules form a DAG: no module uses one that uses it back (directly or
//! through others). Edges are read from the sources: `crate::m…` and `super::m…` paths,
//! and a parent module's uses of its children by name; comment lines are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`attack::sign`) of every source file under `src`.
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let rel = p.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|l| l == "mod") {
                parts.pop();
            }
            let name = if parts == ["lib"] {
                "crate".to_string()
            } else {
                parts.join("::")
            };
            out.insert(name, p);
        }
    }
    out
}

/// The longest known module a path such as `attack::params::Goal` names.
fn resolve(path: &[&str], known: &BTreeMap<String, PathBuf>) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|k| path[..k].join("::"))
        .find(|m| known.contains_key(m))
}

/// Identifier segments following `prefix` at position `i` of `line`.
fn segments(line: &str) -> Vec<&str> {
    line.split("::")
        .map(|s| {
            s.trim_start_matches(['{', ' '])
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or("")
        })
        .collect()
}

fn edges(known: &BTreeMap<String, PathBuf>) -> BTreeMap<String, BTreeSet<String>> {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, file) in known {
        let text = std::fs::read_to_string(file).unwrap();
        let parent: Vec<&str> = if module == "crate" {
            Vec::new()
        } else {
            module.split("::").collect()
        };
        let children: Vec<&String> = known
            .keys()
            .filter(|k| {
                k.rsplit_once("::").map(|(p, _)| p) == Some(module.as_str())
                    || (module == "crate" && !k.contains("::") && *k != "crate")
            })
            .collect();
        let out = g.entry(module.clone()).or_default();
        for line in text.lines().map(str::trim).filter(|l| !l.starts_with("//")) {
            for (i, _) in line.match_indices("crate::") {
                let segs = segments(&line[i + "crate::".len()..]);
                if let Some(m) = resolve(&segs, known) {
                    out.insert(m);
                }
            }
            for (i, _) in line.match_indices("super::") {
                let mut path: Vec<&str> = parent[..parent.len().saturating_sub(1)].to_vec();
                path.extend(segments(&line[i + "super::".len()..]));
                if let Some(m) = resolve(&path, known) {
                    out.insert(m);
                }
            }
            for c in &children {
                let short = c.rsplit("::").next().unwrap();
                let used = line.match_indices(&format!("{short}::")).any(|(i, _)| {
                    i == 0
                        || !line[..i]
                            .ends_with(|ch: char| ch.is_alphanumeric() || ch == '_' || ch == ':')
                });
                if used {
                    out.insert((*c).clone());
                }
            }
        }
        out.remove(module);
    }
    g
}

/// A cycle in `g`, if any (depth-first search).
fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let i = stack.iter().position(|s| s == n).unwrap();
                let mut c = stack[i..].to_vec();
                c.push(n.to_string());
                return Some(c);
            }
            _ => {}
        }
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, g, state, stack) {
                return Some(c);
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in g.keys() {
        if let Some(c) = visit(n, g, &mut state, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

#[test]
fn dfr_attacks_modules_have_no_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let known = modules(&src);
    let g = edges(&known);
    for (m, deps) in &g {
        eprintln!("{m} -> {deps:?}");
    }
    assert!(g.len() >= 10, "{:?}", g.keys());
    // the checker sees real edges
    assert!(g["eval"].contains("attack") && g["report"].contains("sanity"));
    if let Some(c) = find_cycle(&g) {
        panic!("module cycle: {}", c.join(" -> "));
    }
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    assert!(find_cycle(&g).is_none());
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(find_cycle(&g).unwrap(), ["a", "b", "c", "a"]);
}
