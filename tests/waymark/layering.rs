//! The module map has no cycles: between the children of any module (the crate's top
//! level, `dsl/`, `estate/`, `scheduler/`, …), what one child uses never uses it back,
//! so each can be read, tested and changed from the ones below it. ARCHITECTURE.md draws
//! the same layers; this test keeps them true as the code changes.
//!
//! Module uses are read from the source text (`crate::`, `super::`, `self::` paths,
//! `{…}` groups included); test modules do not count.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`estate::ops`) → source text without its tests and comments, and
/// whether the module is a directory (`mod.rs`), which decides what `super` means.
fn modules() -> BTreeMap<String, (String, bool)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let is_dir = parts.last().is_some_and(|p| p == "mod");
            if is_dir {
                parts.pop();
            }
            if parts.iter().any(|p| p == "tests")
                || matches!(parts.as_slice(), [p] if p == "lib" || p == "main")
            {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Inline test modules sit at the end of a file.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let code: String = code
                .lines()
                .map(|l| l.split("//").next().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n");
            out.insert(parts.join("::"), (code, is_dir));
        }
    }
    out
}

fn parent(m: &str) -> &str {
    m.rsplit_once("::").map_or("", |(p, _)| p)
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every path spelled after `prefix` in `code` (`a::b`, and each item of `a::{b, c::d}`).
fn paths_after(code: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| is_ident(c) || c == ':') {
            continue;
        }
        collect(rest, String::new(), &mut out);
    }
    out
}

// Read `a::b::{c, d::e}` at the start of `s`, pushing each full path under `base`.
fn collect(s: &str, base: String, out: &mut Vec<String>) {
    let mut path = base;
    let mut s = s;
    loop {
        if let Some(group) = s.strip_prefix('{') {
            let mut depth = 1;
            let mut item_start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' | ',' if depth == 1 => {
                        collect(group[item_start..i].trim_start(), path.clone(), out);
                        item_start = i + 1;
                        if c == '}' {
                            return;
                        }
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            return;
        }
        let end = s.find(|c: char| !is_ident(c)).unwrap_or(s.len());
        if end > 0 {
            if !path.is_empty() {
                path.push_str("::");
            }
            path.push_str(&s[..end]);
        }
        s = &s[end..];
        match s.strip_prefix("::") {
            Some(r) => s = r,
            None => {
                if !path.is_empty() {
                    out.push(path);
                }
                return;
            }
        }
    }
}

/// The longest known module that `path` starts with.
fn module_of<'a>(path: &str, mods: &'a BTreeMap<String, (String, bool)>) -> Option<&'a str> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .find_map(|n| mods.get_key_value(&parts[..n].join("::")))
        .map(|(k, _)| k.as_str())
}

/// For a use of `b` by `a`: the two children of their closest common ancestor that the
/// use connects (none when one contains the other).
fn siblings(a: &str, b: &str) -> Option<(String, String)> {
    let pa: Vec<&str> = a.split("::").collect();
    let pb: Vec<&str> = b.split("::").collect();
    let common = pa.iter().zip(&pb).take_while(|(x, y)| x == y).count();
    if common == pa.len() || common == pb.len() {
        return None;
    }
    Some((pa[..=common].join("::"), pb[..=common].join("::")))
}

#[test]
fn no_module_uses_a_sibling_that_uses_it_back() {
    let mods = modules();
    assert!(mods.contains_key("dsl::loader"), "module list: {mods:?}");
    // sibling → siblings it uses, with one source use as the example.
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (m, (code, is_dir)) in &mods {
        let base = if *is_dir { m.as_str() } else { parent(m) };
        let mut used: BTreeSet<String> = paths_after(code, "crate::").into_iter().collect();
        for p in paths_after(code, "super::") {
            let mut b = parent(base);
            let mut p = p.as_str();
            while let Some(r) = p.strip_prefix("super::") {
                b = parent(b);
                p = r;
            }
            used.insert(if b.is_empty() {
                p.to_string()
            } else {
                format!("{b}::{p}")
            });
        }
        for p in paths_after(code, "self::") {
            used.insert(if base.is_empty() {
                p
            } else {
                format!("{base}::{p}")
            });
        }
        for u in used {
            let Some(target) = module_of(&u, &mods) else {
                continue;
            };
            if let Some((from, to)) = siblings(m, target) {
                graph
                    .entry(from)
                    .or_default()
                    .entry(to)
                    .or_insert_with(|| format!("{m} uses {target}"));
            }
        }
    }
    // A cycle exists iff some edge a → b has a path b →* a.
    let mut cycles = Vec::new();
    for (a, uses) in &graph {
        for (b, why) in uses {
            let mut seen = BTreeSet::new();
            let mut stack = vec![b.clone()];
            let mut back = None;
            while let Some(n) = stack.pop() {
                if !seen.insert(n.clone()) {
                    continue;
                }
                for (next, w) in graph.get(&n).into_iter().flatten() {
                    if next == a {
                        back = Some(w.clone());
                    }
                    stack.push(next.clone());
                }
            }
            if let Some(back) = back {
                cycles.push(format!("{a} → {b} ({why}) and back ({back})"));
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "modules that use each other (directly or through others):\n{}",
        cycles.join("\n")
    );
}

#[test]
fn the_reader_finds_grouped_and_nested_paths() {
    let code = "use crate::{a::{b, c::D}, e};\nlet x = crate::f::g(); xcrate::h;";
    let got = paths_after(code, "crate::");
    assert_eq!(got, ["a::b", "a::c::D", "e", "f::g"]);
}
