//! `waymark defs [DIR]`: Rhai definition files (`.d.rhai`) for waymark's functions and the
//! stdlib modules, so the Rhai language server offers completion and signatures to
//! runbook authors. Generated from the engine runbooks really run in, so they cannot
//! drift from it.

use crate::exit::{CliError, Exit};
use std::path::Path;

/// Write the definition files into `dir` (created if needed); prints each file written.
pub(super) fn defs(dir: &Path) -> Result<Exit, CliError> {
    let mut engine = crate::dsl::loader::describing_engine();
    for name in crate::shipped::stdlib_names() {
        let src = crate::shipped::stdlib(name).unwrap_or_default();
        // Compiling resolves no imports and runs nothing: the functions and their `///`
        // docs are all the definitions need.
        let ast = engine.compile(src).map_err(|e| {
            CliError::bad_input(format!("stdlib/{name}.rhai does not compile: {e}"))
        })?;
        engine.register_static_module(name, ast.shared_lib().clone());
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::bad_input(format!("cannot create {}: {e}", dir.display())))?;
    for (file, text) in engine.definitions().iter_files() {
        let path = dir.join(&file);
        std::fs::write(&path, tidy(&text))
            .map_err(|e| CliError::bad_input(format!("cannot write {}: {e}", path.display())))?;
        outln!("{}", path.display());
    }
    Ok(Exit::Ok)
}

/// Rhai names the return type of a native function returning `Result<T, Box<…>>` by
/// the tail of its Rust type (`EvalAltResult>>`, `RhaiResult`) and leaves script
/// functions' empty; a language server cannot parse those, so they become `?` (any).
fn tidy(text: &str) -> String {
    text.replace(") -> EvalAltResult>>;", ") -> ?;")
        .replace(") -> RhaiResult;", ") -> ?;")
        .replace(") -> ;", ") -> ?;")
}

#[cfg(test)]
mod tests {
    #[test]
    fn tidy_replaces_unparseable_return_types_with_any() {
        let t = super::tidy("fn a(_: string) -> EvalAltResult>>;\nfn b(x: ?) -> ;\nfn c() -> RhaiResult;\nfn d() -> bool;\n");
        assert_eq!(
            t,
            "fn a(_: string) -> ?;\nfn b(x: ?) -> ?;\nfn c() -> ?;\nfn d() -> bool;\n"
        );
    }
}
