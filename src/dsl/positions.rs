//! Where the keys of an option map were written, read from the Rhai AST of the file a
//! declaration is in — never by scanning text, which cannot tell `timeout:` the key from
//! `"no timeout: x"` inside a string.
//!
//! Only map literals written at the call have positions: `step("a", #{ timeout: … })`
//! knows where `timeout` is, nested literals too (`params: #{ server: #{ help: … } }`).
//! A map built elsewhere (a stdlib function composing the parameter block, a variable)
//! has none, and a lookup answers the deepest key it did find — still in the author's
//! code — so the caller falls back from there to the call itself.

use crate::diagnostic::{SourceMap, SrcPos};
use rhai::{ASTNode, Engine, Expr, FnCallExpr, OptimizationLevel, Position, Stmt, AST};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A 1-based (line, column), as Rhai counts them.
type LineCol = (usize, usize);

/// One key of a map literal: where it is, and the keys of its value when that is a map
/// literal too.
#[derive(Debug)]
struct Key {
    name: String,
    pos: LineCol,
    value: Vec<Key>,
}

fn keys_of(expr: &Expr) -> Option<Vec<Key>> {
    let m = match expr {
        Expr::Map(m, _) => m,
        // `lib::params() + #{ server: … }`: the literal operands' keys are the author's.
        Expr::FnCall(call, _) if call.name == "+" && call.args.len() == 2 => {
            let mut keys: Vec<Key> = call.args.iter().filter_map(keys_of).flatten().collect();
            // A later map wins a merge, so its key is the one that counts.
            keys.reverse();
            return (!keys.is_empty()).then_some(keys);
        }
        _ => return None,
    };
    Some(
        m.0.iter()
            .filter_map(|(ident, value)| {
                Some(Key {
                    name: ident.name.to_string(),
                    pos: line_col(ident.pos)?,
                    value: keys_of(value).unwrap_or_default(),
                })
            })
            .collect(),
    )
}

fn line_col(pos: Position) -> Option<LineCol> {
    Some((pos.line()?, pos.position().unwrap_or(1)))
}

/// Where one argument of a call is, and, for an array literal, where each element is
/// (with its text when it is a string or number literal).
#[derive(Debug)]
struct Arg {
    pos: LineCol,
    elements: Vec<(Option<String>, LineCol)>,
}

/// One call: the keys of its first map-literal argument, and its arguments.
#[derive(Debug, Default)]
struct Call {
    keys: Vec<Key>,
    args: Vec<Arg>,
}

/// Every call of one file, by the call's position (what
/// `NativeCallContext::call_position` reports for it).
#[derive(Debug, Default)]
struct FileKeys(HashMap<LineCol, Call>);

fn arg_of(expr: &Expr) -> Option<Arg> {
    let elements = match expr {
        Expr::Array(items, _) => items
            .iter()
            .filter_map(|e| {
                let text = match e {
                    Expr::StringConstant(s, _) => Some(s.to_string()),
                    Expr::IntegerConstant(n, _) => Some(n.to_string()),
                    _ => None,
                };
                Some((text, line_col(e.position())?))
            })
            .collect(),
        _ => Vec::new(),
    };
    Some(Arg {
        pos: line_col(expr.position())?,
        elements,
    })
}

impl FileKeys {
    fn parse(text: &str) -> FileKeys {
        let mut engine = Engine::new_raw();
        // Unoptimised, so a map of constants stays a map literal with its keys' positions.
        engine.set_optimization_level(OptimizationLevel::None);
        engine.set_max_expr_depths(64, 64);
        match engine.compile(text) {
            Ok(ast) => FileKeys::of(&ast),
            // The real load reports the syntax error; positions are only a help.
            Err(_) => FileKeys::default(),
        }
    }

    /// The calls of an unoptimised AST.
    fn of(ast: &AST) -> FileKeys {
        let mut out = FileKeys::default();
        ast.walk(&mut |path: &[ASTNode]| {
            let call: Option<(&FnCallExpr, Position)> = match path.last() {
                Some(ASTNode::Expr(Expr::FnCall(x, pos))) => Some((x, *pos)),
                Some(ASTNode::Stmt(Stmt::FnCall(x, pos))) => Some((x, *pos)),
                _ => None,
            };
            if let Some((call, at)) = call.and_then(|(c, p)| Some((c, line_col(p)?))) {
                out.0.insert(
                    at,
                    Call {
                        keys: call.args.iter().find_map(keys_of).unwrap_or_default(),
                        args: call.args.iter().filter_map(arg_of).collect(),
                    },
                );
            }
            true
        });
        out
    }
}

/// The key positions of every file a load looked into, parsed once per file on first
/// use (only declarations ask, so a file without any is never parsed again).
#[derive(Debug, Default)]
pub(crate) struct KeyIndex {
    files: Mutex<HashMap<Arc<str>, Arc<FileKeys>>>,
}

impl KeyIndex {
    /// Take the key positions of `file` from `ast`, which must be compiled without
    /// optimisation (the loader's own parse of the runbook), so the file is not parsed
    /// a second time: on a 10,000-step runbook that parse was a fifth of the load's time
    /// and, with both trees alive at once, its peak memory.
    pub(crate) fn add_unoptimised(&self, file: Arc<str>, ast: &AST) {
        let keys = Arc::new(FileKeys::of(ast));
        self.files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(file, keys);
    }

    /// Where the deepest key of `path` that was written literally at the call `call`
    /// is: `["params", "server", "help"]` answers `help`'s position, or `server`'s when
    /// the parameter's map was built by a function. `None` when not even the first key
    /// is in a literal at the call.
    pub(crate) fn key_pos(
        &self,
        sources: &SourceMap,
        call: &SrcPos,
        path: &[&str],
    ) -> Option<SrcPos> {
        let file = self.file(sources, call)?;
        let mut keys = &file.0.get(&(call.line, call.col))?.keys;
        let mut found = None;
        for name in path {
            let Some(k) = keys.iter().find(|k| k.name == *name) else {
                break;
            };
            found = Some(k.pos);
            keys = &k.value;
        }
        found.map(|p| at(call, p))
    }

    /// Where argument `index` (0-based) of the call at `call` is written; with
    /// `element`, where the last element of that array literal reading `element` is
    /// (the one a "twice" error is about), else the argument itself.
    pub(crate) fn arg_pos(
        &self,
        sources: &SourceMap,
        call: &SrcPos,
        index: usize,
        element: Option<&str>,
    ) -> Option<SrcPos> {
        let file = self.file(sources, call)?;
        let arg = file.0.get(&(call.line, call.col))?.args.get(index)?;
        let pos = element
            .and_then(|want| {
                arg.elements
                    .iter()
                    .rev()
                    .find(|(text, _)| text.as_deref() == Some(want))
                    .map(|(_, p)| *p)
            })
            .unwrap_or(arg.pos);
        Some(at(call, pos))
    }

    fn file(&self, sources: &SourceMap, call: &SrcPos) -> Option<Arc<FileKeys>> {
        Some({
            let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
            match files.get(&call.file) {
                Some(f) => f.clone(),
                None => {
                    let parsed = Arc::new(FileKeys::parse(sources.get(&call.file)?));
                    files.insert(call.file.clone(), parsed.clone());
                    parsed
                }
            }
        })
    }
}

fn at(call: &SrcPos, (line, col): LineCol) -> SrcPos {
    SrcPos {
        file: call.file.clone(),
        line,
        col,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(text: &str, call: LineCol, path: &[&str]) -> Option<LineCol> {
        let mut sources = SourceMap::default();
        sources.insert("f.rhai".into(), text.into());
        let call = SrcPos {
            file: "f.rhai".into(),
            line: call.0,
            col: call.1,
        };
        KeyIndex::default()
            .key_pos(&sources, &call, path)
            .map(|p| (p.line, p.col))
    }

    #[test]
    fn a_key_inside_a_string_is_not_the_key() {
        let text = "step(\"a\", #{ title: \"no timeout: x\", timeout: \"soon\" });";
        assert_eq!(lookup(text, (1, 1), &["timeout"]), Some((1, 38)));
    }

    #[test]
    fn nested_literals_and_the_deepest_key_found() {
        let text =
            "runbook(#{\n  params: #{\n    server: #{ help: 1 },\n    other: make(),\n  },\n});";
        assert_eq!(
            lookup(text, (1, 1), &["params", "server", "help"]),
            Some((3, 16))
        );
        assert_eq!(
            lookup(text, (1, 1), &["params", "other", "help"]),
            Some((4, 5))
        );
        assert_eq!(lookup(text, (1, 1), &["name"]), None);
        assert_eq!(lookup(text, (2, 1), &["params"]), None);
    }

    #[test]
    fn literal_operands_of_a_merge_keep_their_keys() {
        let text = "runbook(#{ params: lib::common() + #{ server: #{ help: 1 } } });";
        assert_eq!(
            lookup(text, (1, 1), &["params", "server", "help"]),
            Some((1, 50))
        );
        assert_eq!(
            lookup(text, (1, 1), &["params", "log_since"]),
            Some((1, 12))
        );
    }

    #[test]
    fn calls_inside_functions_and_closures_are_found() {
        let text =
            "fn f() {\n  step(\"x\", #{ retries: 1 })\n}\nlet c = || step(\"y\", #{ when: 1 });";
        assert_eq!(lookup(text, (2, 3), &["retries"]), Some((2, 16)));
        assert_eq!(lookup(text, (4, 12), &["when"]), Some((4, 25)));
    }

    #[test]
    fn arguments_and_array_elements_have_positions() {
        let mut sources = SourceMap::default();
        sources.insert(
            "f.rhai".into(),
            "rollout(\"r\", [\"a\", \"b\", \"a\"], #{});".into(),
        );
        let call = SrcPos {
            file: "f.rhai".into(),
            line: 1,
            col: 1,
        };
        let idx = KeyIndex::default();
        let col = |e: Option<&str>| idx.arg_pos(&sources, &call, 1, e).map(|p| p.col);
        assert_eq!(col(None), Some(14));
        assert_eq!(col(Some("a")), Some(25), "the repeated one");
        assert_eq!(col(Some("zz")), Some(14));
    }

    #[test]
    fn a_file_that_does_not_parse_has_no_positions() {
        assert_eq!(lookup("step(\"a\", #{ x: 1 ", (1, 1), &["x"]), None);
    }
}
