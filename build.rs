//! Embeds `runbooks/**/*.rhai` and `stdlib/*.rhai` into the binary, so a shipped
//! runbook or stdlib module is added by adding its file, with no code change.

// Cargo reads build-script instructions from stdout, and a closed stdout there is a real error.
#![allow(clippy::disallowed_macros)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, base: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, base, out);
        } else if p.extension().is_some_and(|e| e == "rhai") {
            let rel = p.strip_prefix(base).unwrap_or(&p).with_extension("");
            let name = rel.to_string_lossy().replace('\\', "/");
            out.push((name, p));
        }
    }
}

fn table(name: &str, dir: &str, code: &mut String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    let _ = writeln!(
        code,
        "/// Embedded `{dir}/` files: (name without `.rhai`, source)."
    );
    let _ = writeln!(code, "pub static {name}: &[(&str, &str)] = &[");
    for (n, p) in files {
        println!("cargo:rerun-if-changed={}", p.display());
        let _ = writeln!(
            code,
            "    ({n:?}, include_str!({:?})),",
            p.display().to_string()
        );
    }
    let _ = writeln!(code, "];");
}

fn main() {
    let mut code = String::new();
    table("RUNBOOKS", "runbooks", &mut code);
    table("STDLIB", "stdlib", &mut code);
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("shipped.rs");
    std::fs::write(out, code).expect("write shipped.rs");
}
