//! Parsing the option maps of `step()`, `gate()` and `runbook()` into typed declarations.
//!
//! Every problem becomes a [`Diagnostic`] and parsing goes on, so a script with several
//! mistakes gets all of them reported at once.

use super::declaration::{Callable, Dep, ParamDecl, RunbookDecl, StepDecl, StepKind, When};
use crate::diagnostic::{did_you_mean, Diagnostic, SrcPos};
use crate::duration::parse_duration;
use rhai::{Dynamic, FnPtr, Map};

/// Options a `step()` accepts.
pub const STEP_OPTIONS: &[&str] = &[
    "title",
    "run",
    "after",
    "retries",
    "retry_delay",
    "timeout",
    "idempotent",
    "fresh",
    "check",
    "undo",
    "group",
    "when",
    "tags",
];

/// Options a `gate()` accepts.
pub const GATE_OPTIONS: &[&str] = &[
    "title",
    "after",
    "instructions",
    "approvals",
    "separate_approver",
    "timeout",
    "rehearse",
    "when",
    "tags",
];

/// Options `runbook()` accepts.
pub const RUNBOOK_OPTIONS: &[&str] = &["name", "description", "params", "limits", "notify"];

/// Options of `runbook(#{ notify: #{ ... } })`.
pub const NOTIFY_OPTIONS: &[&str] = &["webhook", "command"];

/// Options of one declared parameter.
pub const PARAM_OPTIONS: &[&str] = &["help", "required", "default_value"];

/// Where each option key of a call was written (from the AST: [`super::positions`]).
pub trait KeyPositions {
    /// Position of the deepest key of `path` (`["params", "server"]`) written literally in
    /// the option map of the call at `call`.
    fn key_pos(&self, call: &Option<SrcPos>, path: &[&str]) -> Option<SrcPos>;

    /// Position of argument `index` of the call at `call`, or of the last element of
    /// that array literal reading `element`.
    fn arg_pos(
        &self,
        _call: &Option<SrcPos>,
        _index: usize,
        _element: Option<&str>,
    ) -> Option<SrcPos> {
        None
    }
}

/// Turns closures into [`Callable`]s (needs the Rhai call context, so the loader provides it).
pub trait MakeCallable {
    /// Wrap `fp`, detaching its captured values.
    fn callable(&mut self, fp: FnPtr) -> Callable;
}

/// An option map's entries, its keys read once: every option a declaration accepts is
/// looked up, a dozen per step, and through the map itself each lookup read the text of
/// the keys it passed (`SmartString`s) again — ~6% of loading 10,000 steps.
struct Opts<'a> {
    entries: Vec<(&'a str, &'a Dynamic)>,
}

impl<'a> Opts<'a> {
    fn of(map: &'a Map) -> Self {
        Opts {
            entries: map.iter().map(|(k, v)| (k.as_str(), v)).collect(),
        }
    }

    fn get(&self, key: &str) -> Option<&'a Dynamic> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }

    fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    fn keys(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.entries.iter().map(|(k, _)| *k)
    }
}

struct Cx<'a> {
    /// What the options belong to, as messages name it; formatted only when one is made.
    what: &'a dyn std::fmt::Display,
    call: &'a Option<SrcPos>,
    /// Keys leading from the call's option map to the map being parsed (`params`, NAME).
    within: &'a [&'a str],
    keys: &'a dyn KeyPositions,
    diags: &'a mut Vec<Diagnostic>,
}

impl Cx<'_> {
    /// The same context, for a nested map (callers override `what` and `within`).
    fn reborrow(&mut self) -> Cx<'_> {
        Cx {
            what: self.what,
            call: self.call,
            within: self.within,
            keys: self.keys,
            diags: self.diags,
        }
    }

    fn err(&mut self, key: &str, message: String) -> &mut Diagnostic {
        let mut path = self.within.to_vec();
        if !key.is_empty() {
            path.push(key);
        }
        let pos = self
            .keys
            .key_pos(self.call, &path)
            .or_else(|| self.call.clone());
        self.diags.push(Diagnostic::at(pos, message));
        self.diags.last_mut().expect("just pushed")
    }

    fn unknown_keys(&mut self, map: &Opts, allowed: &[&str], also: &[&str]) {
        for k in map.keys() {
            if allowed.contains(&k) {
                continue;
            }
            let what = self.what;
            let mut msg = format!("unknown option `{k}` for {what}");
            if also.contains(&k) {
                msg = format!("`{k}` is not an option of {what}");
            }
            let hint = if k == "default" {
                Some("`default` is a reserved word in Rhai: write `default_value`".to_string())
            } else {
                did_you_mean(k, allowed.iter().copied())
                    .map(|s| format!("did you mean `{s}`?"))
                    .or_else(|| Some(format!("valid options: {}", allowed.join(", "))))
            };
            let d = self.err(k, msg);
            d.help = hint;
        }
    }

    fn string(&mut self, map: &Opts, key: &str) -> Option<String> {
        let v = map.get(key)?;
        if v.is_string() {
            return Some(v.clone().into_string().unwrap_or_default());
        }
        let t = v.type_name();
        self.err(key, format!("`{key}` must be a string, not {t}"));
        None
    }

    fn bool(&mut self, map: &Opts, key: &str) -> Option<bool> {
        let v = map.get(key)?;
        if let Ok(b) = v.as_bool() {
            return Some(b);
        }
        let t = v.type_name();
        self.err(key, format!("`{key}` must be true or false, not {t}"));
        None
    }

    fn count(&mut self, map: &Opts, key: &str, min: i64, max: i64) -> Option<u32> {
        let v = map.get(key)?;
        match v.as_int() {
            Ok(n) if (min..=max).contains(&n) => Some(n as u32),
            Ok(n) => {
                self.err(
                    key,
                    format!("`{key}` must be between {min} and {max}, not {n}"),
                );
                None
            }
            Err(t) => {
                self.err(key, format!("`{key}` must be a whole number, not {t}"));
                None
            }
        }
    }

    fn duration(&mut self, map: &Opts, key: &str) -> Option<std::time::Duration> {
        let s = self.string(map, key)?;
        match parse_duration(&s) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(key, format!("bad duration for `{key}`: {e}"));
                None
            }
        }
    }

    fn closure(&mut self, map: &Opts, key: &str, mk: &mut dyn MakeCallable) -> Option<Callable> {
        let v = map.get(key)?;
        if let Some(fp) = v.clone().try_cast::<FnPtr>() {
            return Some(mk.callable(fp));
        }
        let t = v.type_name();
        let d = self.err(key, format!("`{key}` must be a closure, not {t}"));
        d.help = Some(format!("write `{key}: |ctx| {{ ... }}`"));
        None
    }

    fn strings(&mut self, map: &Opts, key: &str) -> Vec<String> {
        let Some(v) = map.get(key) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if !flatten_strings(v, &mut out) {
            self.err(
                key,
                format!("`{key}` must be a string or an array of strings"),
            );
        }
        out
    }
}

// `after: ["a", ["b", "c"]]` is allowed: arrays of names nest.
// Read in place: every step's `after` passed through here, and copying the array and
// each name's shared string before copying the text was ~4% of loading 10,000 steps.
fn flatten_strings(v: &Dynamic, out: &mut Vec<String>) -> bool {
    if let Some(s) = v.read_lock::<rhai::ImmutableString>() {
        out.push(s.as_str().to_owned());
        return true;
    }
    if let Some(arr) = v.read_lock::<rhai::Array>() {
        return arr.iter().all(|x| flatten_strings(x, out));
    }
    false
}

/// A step or gate as option messages name it: "step `NAME`", "gate `NAME`".
struct Declared<'a> {
    kind: StepKind,
    name: &'a str,
}

impl std::fmt::Display for Declared<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            StepKind::Step => write!(f, "step `{}`", self.name),
            StepKind::Gate => write!(f, "gate `{}`", self.name),
        }
    }
}

/// Parse the options of `step(name, opts)` or `gate(name, opts)`.
pub fn parse_step(
    mut decl: StepDecl,
    opts: &Map,
    keys: &dyn KeyPositions,
    mk: &mut dyn MakeCallable,
    diags: &mut Vec<Diagnostic>,
) -> StepDecl {
    let call = decl.pos.clone();
    // Named in messages only: 10,000 declarations formatting it up front was ~1% of a load.
    let what = Declared {
        kind: decl.kind,
        name: &decl.name,
    };
    let opts = &Opts::of(opts);
    let mut cx = Cx {
        what: &what,
        call: &call,
        within: &[],
        keys,
        diags,
    };
    let (allowed, other) = match decl.kind {
        StepKind::Step => (STEP_OPTIONS, GATE_OPTIONS),
        StepKind::Gate => (GATE_OPTIONS, STEP_OPTIONS),
    };
    cx.unknown_keys(opts, allowed, other);

    decl.title = cx.string(opts, "title");
    let after_pos = keys.key_pos(&call, &["after"]).or_else(|| call.clone());
    let after = cx.strings(opts, "after");
    // Sized once: kept for every step of the plan.
    decl.after.reserve_exact(after.len());
    // Repeats dropped. Most steps name a few: comparing with those kept beats hashing
    // and copying each name into a set; a long list (`after: all`) gets the set.
    let mut seen = (after.len() > 16).then(std::collections::HashSet::new);
    for name in after {
        let new = match &mut seen {
            Some(seen) => seen.insert(name.clone()),
            None => !decl.after.iter().any(|d| d.name == name),
        };
        if new {
            decl.after.push(Dep {
                name,
                pos: after_pos.clone(),
            });
        }
    }
    if let Some(w) = cx.string(opts, "when") {
        decl.when = match w.as_str() {
            "success" => When::Success,
            "always" => When::Always,
            "failure" => When::Failure,
            other => {
                let d = cx.err("when", format!("bad `when`: `{other}`"));
                d.help = Some(
                    match did_you_mean(other, ["success", "always", "failure"]) {
                        Some(s) => format!(
                            "did you mean \"{s}\"? (one of \"success\", \"always\", \"failure\")"
                        ),
                        None => "`when` is one of \"success\", \"always\", \"failure\"".into(),
                    },
                );
                When::Success
            }
        };
    }
    decl.timeout = cx.duration(opts, "timeout");
    decl.tags = cx.strings(opts, "tags");

    match decl.kind {
        StepKind::Step => {
            decl.run = cx.closure(opts, "run", mk);
            decl.check = cx.closure(opts, "check", mk).map(Box::new);
            decl.undo = cx.closure(opts, "undo", mk).map(Box::new);
            decl.retries = cx.count(opts, "retries", 0, 100).unwrap_or(0);
            if let Some(d) = cx.duration(opts, "retry_delay") {
                decl.retry_delay = d;
            }
            decl.idempotent = cx.bool(opts, "idempotent").unwrap_or(false);
            decl.fresh = cx.bool(opts, "fresh").unwrap_or(false);
            if decl.fresh && decl.undo.is_some() {
                let d = cx.err(
                    "fresh",
                    format!("{what} is `fresh` (it only reads) but has an `undo`"),
                );
                d.help = Some(
                    "a step that changes something must not run again on resume: drop `fresh`, or the `undo` if it only reads".into(),
                );
            }
            decl.group = cx.string(opts, "group");
        }
        StepKind::Gate => {
            decl.instructions = cx.string(opts, "instructions");
            if decl
                .instructions
                .as_deref()
                .is_none_or(|s| s.trim().is_empty())
                && !opts.contains_key("instructions")
            {
                let d = cx.err(
                    "",
                    format!("{what} has no `instructions`: an operator cannot act on a gate without them"),
                );
                d.help = Some("add `instructions: \"what to do and what to check\"`".into());
            }
            decl.approvals = cx.count(opts, "approvals", 1, 20).unwrap_or(1);
            decl.separate_approver = cx.bool(opts, "separate_approver").unwrap_or(false);
            decl.rehearse = cx.closure(opts, "rehearse", mk).map(Box::new);
        }
    }
    decl
}

/// Parse the options of `runbook(opts)`.
pub fn parse_runbook(
    opts: &Map,
    call: Option<SrcPos>,
    keys: &dyn KeyPositions,
    diags: &mut Vec<Diagnostic>,
) -> RunbookDecl {
    let opts = &Opts::of(opts);
    let mut cx = Cx {
        what: &"runbook()",
        call: &call,
        within: &[],
        keys,
        diags,
    };
    cx.unknown_keys(opts, RUNBOOK_OPTIONS, &[]);
    let mut decl = RunbookDecl {
        pos: call.clone(),
        ..Default::default()
    };
    match cx.string(opts, "name") {
        Some(n) if !n.trim().is_empty() => decl.name = n,
        Some(_) => {
            cx.err("name", "the runbook's `name` is empty".into());
        }
        None if !opts.contains_key("name") => {
            let d = cx.err("", "runbook() needs a `name`".into());
            d.help = Some("add `name: \"What this runbook does\"`".into());
        }
        None => {}
    }
    decl.description = cx.string(opts, "description").unwrap_or_default();

    if let Some(v) = opts.get("params") {
        match v.clone().try_cast::<Map>() {
            Some(params) => {
                for (name, spec) in params {
                    let within = ["params", name.as_str()];
                    let Some(spec) = spec.try_cast::<Map>() else {
                        let mut pcx = Cx {
                            within: &within[..1],
                            ..cx.reborrow()
                        };
                        let d = pcx.err(name.as_str(), format!("parameter `{name}` must be a map"));
                        d.help = Some(format!(
                            "write `{name}: #{{ help: \"...\", required: true }}`"
                        ));
                        continue;
                    };
                    let what = format!("parameter `{name}`");
                    let mut pcx = Cx {
                        what: &what,
                        within: &within,
                        ..cx.reborrow()
                    };
                    let spec = &Opts::of(&spec);
                    pcx.unknown_keys(spec, PARAM_OPTIONS, &[]);
                    let default_value = spec.get("default_value").map(|d| {
                        if d.is_string() {
                            d.clone().into_string().unwrap_or_default()
                        } else {
                            d.to_string()
                        }
                    });
                    let p = ParamDecl {
                        help: pcx.string(spec, "help").unwrap_or_default(),
                        required: pcx.bool(spec, "required").unwrap_or(false),
                        default_value,
                    };
                    decl.params.insert(name.to_string(), p);
                }
            }
            None => {
                cx.err(
                    "params",
                    "`params` must be a map of parameter declarations".into(),
                );
            }
        }
    }
    if let Some(v) = opts.get("limits") {
        match v.clone().try_cast::<Map>() {
            Some(limits) => {
                for (group, n) in limits {
                    match n.as_int() {
                        Ok(n) if n >= 1 => {
                            decl.limits.insert(group.to_string(), n as usize);
                        }
                        _ => {
                            Cx {
                                within: &["limits"],
                                ..cx.reborrow()
                            }
                            .err(
                                group.as_str(),
                                format!("limit of group `{group}` must be a whole number ≥ 1"),
                            );
                        }
                    }
                }
            }
            None => {
                cx.err(
                    "limits",
                    "`limits` must be a map of group name to a number".into(),
                );
            }
        }
    }
    if let Some(v) = opts.get("notify") {
        decl.notify = parse_notify(v, &mut cx);
    }
    decl
}

/// `notify: #{ webhook: "http://…", command: ["program", "arg", …] }`.
fn parse_notify(v: &Dynamic, cx: &mut Cx) -> crate::notify::Hooks {
    let mut hooks = crate::notify::Hooks::default();
    let Some(map) = v.clone().try_cast::<Map>() else {
        let d = cx.err("notify", "`notify` must be a map".into());
        d.help = Some("write `notify: #{ webhook: \"http://host:port/path\", command: [\"notify-send\", \"waymark\"] }`".into());
        return hooks;
    };
    let mut ncx = Cx {
        what: &"notify",
        within: &["notify"],
        ..cx.reborrow()
    };
    let map = &Opts::of(&map);
    ncx.unknown_keys(map, NOTIFY_OPTIONS, &[]);
    if let Some(url) = ncx.string(map, "webhook") {
        match crate::notify::http::parse_url(&url) {
            Ok(_) => hooks.webhook = Some(url),
            Err(e) => {
                ncx.err("webhook", e);
            }
        }
    }
    if let Some(c) = map.get("command") {
        let argv: Option<Vec<String>> = c.clone().try_cast::<rhai::Array>().and_then(|a| {
            a.into_iter()
                .map(|x| x.into_string().ok())
                .collect::<Option<Vec<String>>>()
        });
        match argv {
            Some(argv) => match crate::notify::check_command(&argv) {
                Ok(()) => hooks.command = Some(argv),
                Err(e) => {
                    ncx.err("command", format!("`command`: {e}"));
                }
            },
            None => {
                let d = ncx.err(
                    "command",
                    "`command` must be an array of strings (program, then arguments; no shell)"
                        .into(),
                );
                d.help = Some(
                    "for example: command: [\"/usr/local/bin/page-oncall\", \"--team\", \"itms\"]"
                        .into(),
                );
            }
        }
    }
    hooks
}
