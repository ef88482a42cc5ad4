//! Where the keys of an option map were written, read from the Rhai AST of the file a
//! declaration is in — never by scanning text, which cannot tell `timeout:` the key from
//! `"no timeout: x"` inside a string.
//!
//! Only map literals written at the call have positions: `step("a", #{ timeout: … })`
//! knows where `timeout` is, nested literals too (`params: #{ server: #{ help: … } }`).
//! A map built elsewhere (a stdlib function composing the parameter block, a variable)
//! has none, and a lookup answers the deepest key it did find — still in the author's
//! code — so the caller falls back from there to the call itself.

use crate::diagnostic::SrcPos;
use rhai::{
    ASTNode, Engine, Expr, FnCallExpr, ImmutableString, OptimizationLevel, Position, Stmt, AST,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A 1-based (line, column), as Rhai counts them.
type LineCol = (usize, usize);

/// A [`LineCol`] as kept in the index: Rhai counts lines and columns in 16 bits, so
/// 32 do, at half the size (a 10,000-step runbook keeps a few for each call).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct At(u32, u32);

impl At {
    fn of(pos: Position) -> Option<At> {
        let line = u32::try_from(pos.line()?).ok()?;
        let col = u32::try_from(pos.position().unwrap_or(1)).ok()?;
        Some(At(line, col))
    }

    fn of_call(pos: &SrcPos) -> Option<At> {
        Some(At(
            u32::try_from(pos.line).ok()?,
            u32::try_from(pos.col).ok()?,
        ))
    }

    fn line_col(self) -> LineCol {
        (self.0 as usize, self.1 as usize)
    }
}

/// A run of entries in one of [`FileKeys`]' tables: (first, count).
#[derive(Debug, Clone, Copy, Default)]
struct Span(u32, u32);

impl Span {
    fn of<T>(table: &[T], start: usize) -> Span {
        // A table never outgrows u32: Rhai positions cap a file at 65,535 lines.
        Span(start as u32, (table.len() - start) as u32)
    }

    fn in_<T>(self, table: &[T]) -> &[T] {
        table
            .get(self.0 as usize..(self.0 as usize).saturating_add(self.1 as usize))
            .unwrap_or_default()
    }
}

/// One key of a map literal: where it is, and the keys of its value when that is a map
/// literal too (a run of [`FileKeys::keys`]). The name is the AST's own string, shared.
#[derive(Debug)]
struct Key {
    name: ImmutableString,
    pos: At,
    value: Span,
}

/// Where one argument of a call is, and, for an array literal, where each element is
/// (a run of [`FileKeys::elements`]).
#[derive(Debug)]
struct Arg {
    pos: At,
    elements: Span,
}

/// One call: the keys of its first map-literal argument, and its arguments.
#[derive(Debug, Clone, Copy)]
struct Call {
    keys: Span,
    args: Span,
}

/// Every call of one file that has arguments, sorted by the call's position (what
/// `NativeCallContext::call_position` reports for it). Flat tables rather than a tree
/// of small vectors and strings: a 10,000-step runbook's index was 5 MB of those, and
/// is kept while the script runs, at the peak of a load.
#[derive(Debug, Default)]
struct FileKeys {
    calls: Vec<(At, Call)>,
    keys: Vec<Key>,
    args: Vec<Arg>,
    /// Array elements: their text when a string or number literal, and position.
    elements: Vec<(Option<ImmutableString>, At)>,
}

/// The key/value pairs of a map literal (`None`: not one), the later operand's first
/// for a `+` of literals (`lib::params() + #{ server: … }`: a later map wins a merge,
/// so its key is the one that counts).
fn literal_keys(expr: &Expr) -> Option<Vec<(&ImmutableString, At, &Expr)>> {
    match expr {
        Expr::Map(m, _) => Some(
            m.0.iter()
                .filter_map(|(ident, value)| Some((&ident.name, At::of(ident.pos)?, value)))
                .collect(),
        ),
        Expr::FnCall(call, _) if call.name == "+" && call.args.len() == 2 => {
            let mut keys: Vec<_> = call
                .args
                .iter()
                .filter_map(literal_keys)
                .flatten()
                .collect();
            keys.reverse();
            (!keys.is_empty()).then_some(keys)
        }
        _ => None,
    }
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
            if let Some((call, at)) = call.and_then(|(c, p)| Some((c, At::of(p)?))) {
                out.add_call(at, call);
            }
            true
        });
        // Sorted for lookup; of calls at one position the last walked counts, as it
        // did when each replaced the one before in a map.
        out.calls.reverse();
        out.calls.sort_by_key(|(at, _)| *at);
        out.calls.dedup_by_key(|(at, _)| *at);
        out.calls.shrink_to_fit();
        out.keys.shrink_to_fit();
        out.args.shrink_to_fit();
        out.elements.shrink_to_fit();
        out
    }

    fn add_call(&mut self, at: At, call: &FnCallExpr) {
        let keys = match call.args.iter().find_map(literal_keys) {
            Some(found) => self.add_keys(found),
            None => Span::default(),
        };
        let start = self.args.len();
        for expr in call.args.iter() {
            let Some(pos) = At::of(expr.position()) else {
                continue;
            };
            let elements = self.add_elements(expr);
            self.args.push(Arg { pos, elements });
        }
        let args = Span::of(&self.args, start);
        // A call without arguments has nothing to point at.
        if keys.1 > 0 || args.1 > 0 {
            self.calls.push((at, Call { keys, args }));
        }
    }

    /// Keys `found` as one run of [`FileKeys::keys`], each followed by its value's keys.
    fn add_keys(&mut self, found: Vec<(&ImmutableString, At, &Expr)>) -> Span {
        let start = self.keys.len();
        for (name, pos, _) in &found {
            self.keys.push(Key {
                name: (*name).clone(),
                pos: *pos,
                value: Span::default(),
            });
        }
        let run = Span::of(&self.keys, start);
        for (i, (_, _, value)) in found.into_iter().enumerate() {
            if let Some(inner) = literal_keys(value) {
                let span = self.add_keys(inner);
                self.keys[start + i].value = span;
            }
        }
        run
    }

    fn add_elements(&mut self, expr: &Expr) -> Span {
        let start = self.elements.len();
        if let Expr::Array(items, _) = expr {
            for e in items.iter() {
                let text = match e {
                    Expr::StringConstant(s, _) => Some(s.clone()),
                    Expr::IntegerConstant(n, _) => Some(n.to_string().into()),
                    _ => None,
                };
                if let Some(pos) = At::of(e.position()) {
                    self.elements.push((text, pos));
                }
            }
        }
        Span::of(&self.elements, start)
    }

    fn call(&self, at: At) -> Option<Call> {
        let i = self.calls.binary_search_by_key(&at, |(a, _)| *a).ok()?;
        Some(self.calls[i].1)
    }
}

/// The text of a file by name: asked only for a file whose keys are not indexed yet,
/// so a declaration does not copy the load's source map to find its keys.
pub(crate) type FileText<'a> = dyn Fn(&str) -> Option<Arc<str>> + 'a;

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

    /// Forget every file's positions (the load is over).
    pub(crate) fn clear(&self) {
        *self.files.lock().unwrap_or_else(|e| e.into_inner()) = HashMap::new();
    }

    /// Where the deepest key of `path` that was written literally at the call `call`
    /// is: `["params", "server", "help"]` answers `help`'s position, or `server`'s when
    /// the parameter's map was built by a function. `None` when not even the first key
    /// is in a literal at the call.
    pub(crate) fn key_pos(
        &self,
        sources: &FileText,
        call: &SrcPos,
        path: &[&str],
    ) -> Option<SrcPos> {
        let file = self.file(sources, call)?;
        let mut keys = file.call(At::of_call(call)?)?.keys.in_(&file.keys);
        let mut found = None;
        for name in path {
            let Some(k) = keys.iter().find(|k| k.name == *name) else {
                break;
            };
            found = Some(k.pos);
            keys = k.value.in_(&file.keys);
        }
        found.map(|p| at(call, p))
    }

    /// Where argument `index` (0-based) of the call at `call` is written; with
    /// `element`, where the last element of that array literal reading `element` is
    /// (the one a "twice" error is about), else the argument itself.
    pub(crate) fn arg_pos(
        &self,
        sources: &FileText,
        call: &SrcPos,
        index: usize,
        element: Option<&str>,
    ) -> Option<SrcPos> {
        let file = self.file(sources, call)?;
        let arg = file
            .call(At::of_call(call)?)?
            .args
            .in_(&file.args)
            .get(index)?;
        let pos = element
            .and_then(|want| {
                arg.elements
                    .in_(&file.elements)
                    .iter()
                    .rev()
                    .find(|(text, _)| text.as_deref() == Some(want))
                    .map(|(_, p)| *p)
            })
            .unwrap_or(arg.pos);
        Some(at(call, pos))
    }

    fn file(&self, sources: &FileText, call: &SrcPos) -> Option<Arc<FileKeys>> {
        Some({
            let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
            match files.get(&call.file) {
                Some(f) => f.clone(),
                None => {
                    let parsed = Arc::new(FileKeys::parse(&sources(&call.file)?));
                    files.insert(call.file.clone(), parsed.clone());
                    parsed
                }
            }
        })
    }
}

fn at(call: &SrcPos, pos: At) -> SrcPos {
    let (line, col) = pos.line_col();
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
        let mut sources = crate::diagnostic::SourceMap::default();
        sources.insert("f.rhai".into(), text.into());
        let call = SrcPos {
            file: "f.rhai".into(),
            line: call.0,
            col: call.1,
        };
        KeyIndex::default()
            .key_pos(&|f| sources.get(f).cloned(), &call, path)
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
        let mut sources = crate::diagnostic::SourceMap::default();
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
        let text = |f: &str| sources.get(f).cloned();
        let col = |e: Option<&str>| idx.arg_pos(&text, &call, 1, e).map(|p| p.col);
        assert_eq!(col(None), Some(14));
        assert_eq!(col(Some("a")), Some(25), "the repeated one");
        assert_eq!(col(Some("zz")), Some(14));
    }

    #[test]
    fn a_file_that_does_not_parse_has_no_positions() {
        assert_eq!(lookup("step(\"a\", #{ x: 1 ", (1, 1), &["x"]), None);
    }
}
