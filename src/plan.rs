//! The plan: declarations validated into a DAG (each step's dependencies and dependents;
//! petgraph finds cycles when a dependency points forward), with waves (topological
//! levels) and a fingerprint per step. Building a plan runs nothing.

use crate::diagnostic::{did_you_mean, Diagnostic};
use crate::dsl::{Runbook, StepDecl, StepKind};
use petgraph::graph::{DiGraph, NodeIndex};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The name index's hasher (see [`crate::hashing`]).
pub type NameHasher = crate::hashing::FastHasher;

/// One step of the plan: its declaration. What planning adds (its dependencies and
/// dependents, its wave, its fingerprint) is kept by [`Plan`], index for index, so the
/// declarations stay in the vector the loader filled: moving 10,000 of them into a new,
/// larger one cost a resume ~3 ms, mostly faulting its fresh pages in.
#[derive(Debug)]
#[repr(transparent)]
pub struct PlanStep {
    /// The declaration.
    pub decl: StepDecl,
}

/// A validated plan.
#[derive(Debug)]
pub struct Plan {
    /// The runbook's declared name.
    pub name: String,
    /// Steps in declaration order.
    pub steps: Vec<PlanStep>,
    /// Per step: indices of the steps it depends on.
    pub deps: Vec<Vec<usize>>,
    /// Per step: indices of the steps that depend on it.
    pub dependents: Vec<Vec<usize>>,
    /// Per step: its topological level, 0 for a step with no dependencies.
    pub wave_of: Vec<usize>,
    /// Per step: the hash of its options, closure sources, callees and the params.
    pub fingerprints: Vec<String>,
    /// Step indices per wave.
    pub waves: Vec<Vec<usize>>,
    /// Name → index.
    pub index: HashMap<String, usize, NameHasher>,
    /// Hash of every step's fingerprint.
    pub fingerprint: String,
}

impl Plan {
    /// Validate the declarations of `rb` into a plan, or report every problem found.
    pub fn build(rb: &Runbook) -> Result<Plan, Vec<Diagnostic>> {
        Self::from_decls(&rb.decl.name, rb.steps.clone(), &rb.params)
    }

    /// Validate `decls` (in declaration order) into a plan.
    pub fn from_decls(
        name: &str,
        decls: Vec<StepDecl>,
        params: &std::collections::BTreeMap<String, String>,
    ) -> Result<Plan, Vec<Diagnostic>> {
        let params_text = params_text(params);
        // Validating the links and fingerprinting each step only read the declarations,
        // and both mostly wait on memory (a declaration, its names, its closures' text):
        // for a long runbook the fingerprints are taken on a second thread meanwhile.
        let fingerprint_all = || {
            let mut fingerprints = Fingerprints::new(&params_text);
            decls
                .iter()
                .map(|d| fingerprints.of(d))
                .collect::<Vec<String>>()
        };
        let (links, fingerprints) = if decls.len() >= FINGERPRINT_THREAD_FROM {
            std::thread::scope(|scope| {
                let thread = std::thread::Builder::new()
                    .name("fingerprints".into())
                    .spawn_scoped(scope, fingerprint_all);
                let links = Links::of(&decls);
                let fingerprints = match thread {
                    Ok(thread) => thread
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                    // No thread to be had: the same work, here.
                    Err(_) => fingerprint_all(),
                };
                (links, fingerprints)
            })
        } else {
            (Links::of(&decls), fingerprint_all())
        };
        let Links {
            index,
            deps,
            dependents,
            wave_of,
            waves,
        } = links?;
        let mut plan_hash = Sha256::new();
        for (d, fingerprint) in decls.iter().zip(&fingerprints) {
            plan_hash.update(d.name.as_bytes());
            plan_hash.update(fingerprint.as_bytes());
        }
        Ok(Plan {
            name: name.to_string(),
            // In place: a plan step is its declaration (`repr(transparent)`).
            steps: decls.into_iter().map(|decl| PlanStep { decl }).collect(),
            deps,
            dependents,
            wave_of,
            fingerprints,
            waves,
            index,
            fingerprint: hex(&plan_hash.finalize()[..8]),
        })
    }

    /// Load `req` and build its plan, reporting load and plan problems together where
    /// the script ran to its end (so a typo in an option and a cycle show up in one go).
    pub fn load(req: &crate::dsl::LoadRequest) -> Result<(Runbook, Plan), crate::dsl::LoadError> {
        match crate::dsl::load(req) {
            // The plan takes the declarations rather than copying 10,000 of them.
            Ok(mut rb) => {
                match Plan::from_decls(&rb.decl.name, std::mem::take(&mut rb.steps), &rb.params) {
                    Ok(plan) => Ok((rb, plan)),
                    Err(diagnostics) => Err(crate::dsl::LoadError {
                        diagnostics,
                        partial: None,
                        declared: Some(Box::new(rb.decl.clone())),
                        sources: rb.sources.clone(),
                    }),
                }
            }
            Err(mut e) => {
                if let Some((name, decls, params)) = e.partial.take() {
                    if let Err(more) = Plan::from_decls(&name, decls, &params) {
                        e.diagnostics.extend(more);
                    }
                }
                Err(e)
            }
        }
    }

    /// The step called `name`.
    pub fn step(&self, name: &str) -> Option<&PlanStep> {
        self.position(name).map(|i| &self.steps[i])
    }

    /// The index of the step called `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// True when step `a` is `b` or one of its ancestors (a walk of `b`'s ancestors:
    /// meant for error paths, not for every step).
    pub fn is_ancestor(&self, a: usize, b: usize) -> bool {
        let mut seen = vec![false; self.steps.len()];
        let mut stack = vec![b];
        while let Some(i) = stack.pop() {
            if i == a {
                return true;
            }
            if !std::mem::replace(&mut seen[i], true) {
                stack.extend(self.deps[i].iter().copied());
            }
        }
        false
    }
}

/// From how many steps a plan's fingerprints are taken on a thread of their own. A new
/// thread waits for the other core to wake (~1 ms typically on the reference VM): `check`
/// of written-out steps, side by side with and without it, lost 0.25 ms at 2,000 steps,
/// broke even at 5,000 and gained 2.4 ms at 10,000.
const FINGERPRINT_THREAD_FROM: usize = 5_000;

/// The steps' links: the name index, each step's dependencies and dependents, its wave.
struct Links {
    index: HashMap<String, usize, NameHasher>,
    deps: Vec<Vec<usize>>,
    dependents: Vec<Vec<usize>>,
    wave_of: Vec<usize>,
    waves: Vec<Vec<usize>>,
}

impl Links {
    /// Validate the links of `decls`: repeated names, unknown and self dependencies,
    /// cycles; every problem is reported.
    fn of(decls: &[StepDecl]) -> Result<Links, Vec<Diagnostic>> {
        let mut diags = Vec::new();
        let mut index: HashMap<String, usize, NameHasher> =
            HashMap::with_capacity_and_hasher(decls.len(), NameHasher::default());
        // A repeated name is reported once here and its later declarations left out.
        let mut repeated = vec![false; decls.len()];
        for (i, d) in decls.iter().enumerate() {
            if let Some(&first) = index.get(&d.name) {
                repeated[i] = true;
                diags.push(
                    Diagnostic::at(d.pos.clone(), format!("duplicate {} name `{}`", d.kind.as_str(), d.name))
                        .label("declared again here")
                        .also(decls[first].pos.clone(), "first declared here")
                        .help("step and gate names must be unique; generated names can carry a suffix such as `upgrade:ns-emea`"),
                );
            } else {
                index.insert(d.name.clone(), i);
            }
        }
        let mut deps: Vec<Vec<usize>> = vec![Vec::new(); decls.len()];
        for (i, d) in decls.iter().enumerate() {
            if repeated[i] {
                continue;
            }
            for dep in &d.after {
                if dep.name == d.name {
                    diags.push(
                        Diagnostic::at(dep.pos.clone(), format!("`{}` depends on itself", d.name))
                            .help("remove its own name from `after`"),
                    );
                    continue;
                }
                match index.get(&dep.name) {
                    Some(&j) => deps[i].push(j),
                    None => {
                        let hint = match did_you_mean(&dep.name, index.keys().map(String::as_str)) {
                            Some(s) => format!("did you mean `{s}`?"),
                            None => "declare that step, or remove it from `after`".into(),
                        };
                        diags.push(
                            Diagnostic::at(
                                dep.pos.clone(),
                                format!(
                                    "`{}` depends on `{}`, which is not declared",
                                    d.name, dep.name
                                ),
                            )
                            .help(hint),
                        );
                    }
                }
            }
        }
        // A step can only be part of a cycle if some step depends on one declared after
        // it; when none does (the usual case: `after` names a handle already returned),
        // declaration order is a topological order and the cycle search is skipped.
        let backward_only = deps
            .iter()
            .enumerate()
            .all(|(i, ds)| ds.iter().all(|&j| j < i));
        // The dependency graph (edge: dependency → dependent), for the cycle search and
        // the topological sort; not built when neither is needed.
        let graph = (!backward_only).then(|| dependency_graph(&deps));
        let sccs = match &graph {
            None => Vec::new(),
            Some(graph) => petgraph::algo::tarjan_scc(graph),
        };
        for scc in sccs {
            if scc.len() < 2 {
                continue;
            }
            let members: Vec<usize> =
                cycle_order(&scc.iter().map(|n| n.index()).collect::<Vec<_>>(), &deps);
            let mut path: Vec<&str> = members.iter().map(|&i| decls[i].name.as_str()).collect();
            path.push(path[0]);
            let mut d = Diagnostic::at(
                decls[members[0]].pos.clone(),
                format!("dependency cycle: {}", path.join(" → ")),
            )
            .help("a runbook is a DAG: remove one of these `after` entries");
            for &m in &members[1..] {
                d = d.also(
                    decls[m].pos.clone(),
                    format!("`{}` is part of the cycle", decls[m].name),
                );
            }
            diags.push(d);
        }
        if !diags.is_empty() {
            return Err(diags);
        }

        // Waves: a step's level is one more than its deepest dependency.
        let order: Vec<usize> = match &graph {
            None => (0..decls.len()).collect(),
            Some(graph) => petgraph::algo::toposort(graph, None)
                .map_err(|_| {
                    vec![Diagnostic::new(
                        "dependency cycle (internal: not caught by validation)",
                    )]
                })?
                .into_iter()
                .map(|n| n.index())
                .collect(),
        };
        let mut wave = vec![0usize; decls.len()];
        for i in order {
            wave[i] = deps[i].iter().map(|&j| wave[j] + 1).max().unwrap_or(0);
        }
        let nwaves = wave.iter().copied().max().map_or(0, |m| m + 1);
        let mut waves = vec![Vec::new(); nwaves];
        for (i, &w) in wave.iter().enumerate() {
            waves[w].push(i);
        }
        let mut dependents = vec![Vec::new(); decls.len()];
        for (i, ds) in deps.iter().enumerate() {
            for &j in ds {
                dependents[j].push(i);
            }
        }
        Ok(Links {
            index,
            deps,
            dependents,
            wave_of: wave,
            waves,
        })
    }
}

// The dependency graph, node `i` being step `i` (edge: dependency → dependent).
fn dependency_graph(deps: &[Vec<usize>]) -> DiGraph<(), ()> {
    let edges = deps.iter().map(Vec::len).sum();
    let mut graph = DiGraph::with_capacity(deps.len(), edges);
    for _ in deps {
        graph.add_node(());
    }
    for (i, ds) in deps.iter().enumerate() {
        for &j in ds {
            graph.add_edge(NodeIndex::new(j), NodeIndex::new(i), ());
        }
    }
    graph
}

// Order the members of a strongly connected component along an actual cycle.
fn cycle_order(members: &[usize], deps: &[Vec<usize>]) -> Vec<usize> {
    let set: std::collections::HashSet<usize> = members.iter().copied().collect();
    let start = *members.iter().min().unwrap_or(&0);
    let mut path = vec![start];
    let mut seen = std::collections::HashSet::from([start]);
    let mut cur = start;
    // Walk dependency edges inside the component until we come back around.
    while let Some(&next) = deps[cur]
        .iter()
        .find(|j| set.contains(j) && !seen.contains(j))
    {
        path.push(next);
        seen.insert(next);
        cur = next;
    }
    path.reverse(); // dependency order: a runs before b before c ...
    path.rotate_right(1);
    path
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    push_hex(&mut s, bytes);
    s
}

fn push_hex(s: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

/// Marks fingerprints that cover the functions a step's closures can call; a journal
/// written before them holds bare hex, compared with [`fingerprint_v1`] instead.
pub const FINGERPRINT_V2: &str = "v2-";

/// The fingerprint of one step: its options, its closures' source, the source of every
/// script function they can call (see [`crate::dsl::callees`]) and the params.
pub fn fingerprint(d: &StepDecl, params_text: &str) -> String {
    Fingerprints::new(params_text).of(d)
}

/// Fingerprints of many steps with the same params: each step's bytes are gathered in
/// one buffer, reused, and hashed with one call (SHA-256 fed piece by piece, a few
/// dozen small updates per step, took as long again as the hashing itself).
struct Fingerprints<'a> {
    params_text: &'a str,
    buf: Vec<u8>,
}

impl<'a> Fingerprints<'a> {
    fn new(params_text: &'a str) -> Self {
        Fingerprints {
            params_text,
            buf: Vec::with_capacity(1024),
        }
    }

    fn of(&mut self, d: &StepDecl) -> String {
        let h = &mut self.buf;
        h.clear();
        hash_decl(h, d, self.params_text);
        for c in d.closures().into_iter().flatten() {
            for callee in c.callees.iter() {
                h.feed(b"fn\0");
                h.feed(callee.name.as_bytes());
                h.feed(&[0]);
                h.feed(callee.source.as_bytes());
                h.feed(&[0]);
            }
        }
        let mut out = String::with_capacity(FINGERPRINT_V2.len() + 16);
        out.push_str(FINGERPRINT_V2);
        push_hex(&mut out, &Sha256::digest(&self.buf)[..8]);
        out
    }
}

/// The fingerprint as journals written before [`FINGERPRINT_V2`] recorded it: options,
/// closure source and params only. Kept so a run started by an older waymark resumes
/// without every finished step looking changed.
pub fn fingerprint_v1(d: &StepDecl, params_text: &str) -> String {
    let mut h = Sha256::new();
    hash_decl(&mut h, d, params_text);
    hex(&h.finalize()[..8])
}

/// `key=value` lines of the params, as fingerprints cover them.
pub fn params_text(params: &std::collections::BTreeMap<String, String>) -> String {
    params.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

// The bytes hashed are `key NUL value NUL` for each of [`option_values`] in its order,
// then each closure's source and the params; written straight into the hash rather than
// through `option_values`' strings, since every step of every load is fingerprinted
// (pinned equal by `tests::streamed_option_bytes_are_option_values`).
fn hash_decl(h: &mut impl Feed, d: &StepDecl, params_text: &str) {
    hash_options(h, d);
    let mut field = |k: &str, v: &str| hash_field(h, k, &[v]);
    for (k, c) in crate::dsl::CLOSURES.into_iter().zip(d.closures()) {
        field(k, c.map(|c| c.source.as_str()).unwrap_or(""));
    }
    field("params", params_text);
}

// Where option bytes go: the fingerprint's hash, or a test's buffer.
trait Feed {
    fn feed(&mut self, bytes: &[u8]);
}

impl Feed for Sha256 {
    fn feed(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

impl Feed for Vec<u8> {
    fn feed(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

// `key NUL` then `parts` joined by `,`, then `NUL`.
fn hash_field(h: &mut impl Feed, key: &str, parts: &[&str]) {
    h.feed(key.as_bytes());
    h.feed(&[0]);
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.feed(b",");
        }
        h.feed(p.as_bytes());
    }
    h.feed(&[0]);
}

// What [`option_values`] lists, in its order, hashed as [`hash_field`]s.
fn hash_options(h: &mut impl Feed, d: &StepDecl) {
    hash_field(h, "kind", &[d.kind.as_str()]);
    hash_field(h, "title", &[d.title.as_deref().unwrap_or("")]);
    let mut after: Vec<&str> = d.after.iter().map(|x| x.name.as_str()).collect();
    after.sort_unstable();
    hash_field(h, "after", &after);
    hash_number(h, "retries", u128::from(d.retries));
    hash_number(h, "retry_delay", d.retry_delay.as_millis());
    match d.timeout {
        Some(t) => hash_number(h, "timeout", t.as_millis()),
        None => hash_field(h, "timeout", &[""]),
    }
    hash_field(h, "idempotent", &[if d.idempotent { "1" } else { "0" }]);
    if d.fresh {
        hash_field(h, "fresh", &["1"]);
    }
    hash_field(h, "group", &[d.group.as_deref().unwrap_or("")]);
    hash_field(h, "when", &[d.when.as_str()]);
    let tags: Vec<&str> = d.tags.iter().map(String::as_str).collect();
    hash_field(h, "tags", &tags);
    if d.kind == StepKind::Gate {
        hash_field(
            h,
            "instructions",
            &[d.instructions.as_deref().unwrap_or("")],
        );
        hash_number(h, "approvals", u128::from(d.approvals));
        hash_field(
            h,
            "separate_approver",
            &[if d.separate_approver { "1" } else { "0" }],
        );
    }
}

// `key` with `n` in decimal as its value, as `n.to_string()` writes it.
fn hash_number(h: &mut impl Feed, key: &str, mut n: u128) {
    let mut buf = [0u8; 40];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    h.feed(key.as_bytes());
    h.feed(&[0]);
    h.feed(&buf[i..]);
    h.feed(&[0]);
}

/// A step's options as the fingerprint covers them, by name (also what a diff shows).
pub fn option_values(d: &StepDecl) -> Vec<(&'static str, String)> {
    let mut after: Vec<&str> = d.after.iter().map(|x| x.name.as_str()).collect();
    after.sort_unstable();
    let mut v = vec![
        ("kind", d.kind.as_str().to_string()),
        ("title", d.title.clone().unwrap_or_default()),
        ("after", after.join(",")),
        ("retries", d.retries.to_string()),
        ("retry_delay", d.retry_delay.as_millis().to_string()),
        (
            "timeout",
            d.timeout
                .map(|t| t.as_millis().to_string())
                .unwrap_or_default(),
        ),
        ("idempotent", if d.idempotent { "1" } else { "0" }.into()),
        ("group", d.group.clone().unwrap_or_default()),
        ("when", d.when.as_str().into()),
        ("tags", d.tags.join(",")),
    ];
    if d.fresh {
        // Only when set, so steps without it keep the fingerprints journaled before it existed.
        v.insert(7, ("fresh", "1".into()));
    }
    if d.kind == StepKind::Gate {
        v.push(("instructions", d.instructions.clone().unwrap_or_default()));
        v.push(("approvals", d.approvals.to_string()));
        v.push((
            "separate_approver",
            if d.separate_approver { "1" } else { "0" }.into(),
        ));
    }
    v
}

impl crate::dsl::strict::StepGraph for Plan {
    fn index_of(&self, name: &str) -> Option<usize> {
        self.position(name)
    }

    fn is_ancestor(&self, i: usize, node: usize) -> bool {
        Plan::is_ancestor(self, i, node)
    }

    fn step_names(&self) -> Vec<&str> {
        self.steps.iter().map(|s| s.decl.name.as_str()).collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::dsl::{Dep, StepKind, When};
    use std::time::Duration;

    fn listed(d: &StepDecl) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in option_values(d) {
            out.extend_from_slice(k.as_bytes());
            out.push(0);
            out.extend_from_slice(v.as_bytes());
            out.push(0);
        }
        out
    }

    #[test]
    fn streamed_option_bytes_are_option_values() {
        let plain = StepDecl::new("a".into(), StepKind::Step, None);
        let mut full = StepDecl::new("g".into(), StepKind::Gate, None);
        full.title = Some("T".into());
        full.after = ["z", "b", "m"]
            .iter()
            .map(|n| Dep {
                name: n.to_string(),
                pos: None,
            })
            .collect();
        full.retries = 3;
        full.retry_delay = Duration::from_millis(0);
        full.timeout = Some(Duration::from_secs(u64::MAX / 1000));
        full.idempotent = true;
        full.fresh = true;
        full.group = Some("db".into());
        full.when = When::Always;
        full.tags = vec!["x".into(), "y".into()];
        full.instructions = Some("Do it.".into());
        full.approvals = 10;
        full.separate_approver = true;
        let mut one_tag = plain.clone();
        one_tag.tags = vec!["only".into()];
        one_tag.timeout = Some(Duration::from_millis(1500));
        for d in [&plain, &full, &one_tag] {
            let mut fed = Vec::new();
            hash_options(&mut fed, d);
            assert_eq!(
                String::from_utf8_lossy(&fed),
                String::from_utf8_lossy(&listed(d))
            );
        }
    }

    /// A load of a runbook given as text (a one-file runbook `r.rhai`).
    fn request(text: &str) -> crate::dsl::LoadRequest {
        crate::dsl::LoadRequest {
            runbook: crate::dsl::RunbookRef::Recorded {
                main: "r.rhai".into(),
                files: std::sync::Arc::new(std::collections::BTreeMap::from([(
                    "r.rhai".to_string(),
                    text.to_string(),
                )])),
            },
            params: Vec::new(),
            inventory: serde_json::Value::Null,
        }
    }

    /// The plan of a runbook given as text (a one-file runbook `r.rhai`).
    pub(crate) fn plan_of(text: &str) -> Plan {
        match Plan::load(&request(text)) {
            Ok((_, plan)) => plan,
            Err(e) => panic!("{}", e.render()),
        }
    }

    fn deps_of<'a>(plan: &'a Plan, name: &str) -> Vec<&'a str> {
        plan.deps[plan.position(name).expect("declared")]
            .iter()
            .map(|&j| plan.steps[j].decl.name.as_str())
            .collect()
    }

    #[test]
    fn a_step_named_twice_in_after_is_one_dependency_in_a_short_list_and_a_long_one() {
        let plan = plan_of(
            r#"runbook(#{ name: "x", description: "y" });
            let a = step("a");
            let b = step("b");
            step("c", #{ after: [a, a, b, a] });
            let all = [];
            for i in 0..20 { all.push(step(`s${i}`)); }
            step("d", #{ after: all + all + [a] });"#,
        );
        assert_eq!(deps_of(&plan, "c"), ["a", "b"]);
        let d = deps_of(&plan, "d");
        assert_eq!(d.len(), 21, "{d:?}");
        assert_eq!(d[0], "s0");
        assert_eq!(d[20], "a");
    }

    #[test]
    fn waves_follow_a_dependency_on_a_step_declared_later() {
        // Declaration order is not a topological order here: the plan must not take it
        // for one (the shortcut for runbooks that only name earlier steps).
        let plan = plan_of(
            r#"runbook(#{ name: "x", description: "y" });
            step("last", #{ after: ["middle"] });
            step("middle", #{ after: ["first"] });
            step("first");"#,
        );
        let wave = |n: &str| plan.wave_of[plan.position(n).expect("declared")];
        assert_eq!((wave("first"), wave("middle"), wave("last")), (0, 1, 2));
        assert_eq!(plan.waves, vec![vec![2], vec![1], vec![0]]);
    }

    // A long runbook, fingerprinted on a second thread while its links are checked: each
    // step's fingerprint is the one `fingerprint` gives it alone, and the plan's steps are
    // the declarations where the loader left them.
    #[test]
    fn a_long_plan_fingerprints_every_step_as_one_step_alone_and_keeps_its_declarations_in_place() {
        let n = FINGERPRINT_THREAD_FROM + 7;
        let script = format!(
            r#"runbook(#{{ name: "x", params: #{{ p: #{{ default_value: "v" }} }} }});
            let prev = step("s0", #{{ run: |ctx| 0 }});
            for i in 1..{n} {{
                prev = step(`s${{i}}`, #{{ after: [prev], run: |ctx| i, idempotent: i % 2 == 0 }});
            }}"#
        );
        let rb = crate::dsl::load(&request(&script)).unwrap_or_else(|e| panic!("{}", e.render()));
        let alone: Vec<String> = rb
            .steps
            .iter()
            .map(|d| fingerprint(d, &params_text(&rb.params)))
            .collect();
        let declared = rb.steps.as_ptr() as usize;
        let plan = Plan::from_decls("x", rb.steps, &rb.params).expect("plans");
        assert_eq!(plan.steps.len(), n);
        assert_eq!(plan.fingerprints, alone);
        assert_eq!(plan.steps.as_ptr() as usize, declared, "moved, not copied");
        assert_eq!(plan.wave_of[n - 1], n - 1);
        assert_eq!(plan.dependents[0], [1]);
    }
}
