//! Typed declarations produced by loading a runbook: what `runbook()`, `step()` and
//! `gate()` said, with the position of each call for diagnostics.

use crate::diagnostic::SrcPos;
use rhai::{Dynamic, FnPtr};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// When a step runs relative to the outcome of its dependencies (`when`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum When {
    /// Every dependency succeeded or was approved (the default).
    #[default]
    Success,
    /// Every dependency finished, whatever its outcome.
    Always,
    /// At least one dependency failed.
    Failure,
    /// Every dependency finished and at least one of them ran (succeeded or failed):
    /// the end of a rollout's batch, skipped when its batch never started. Declared by
    /// `rollout()` only.
    Ran,
}

impl When {
    /// The DSL spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            When::Success => "success",
            When::Always => "always",
            When::Failure => "failure",
            When::Ran => "ran",
        }
    }
}

/// A valid step name: non-empty; letters, digits and `-_.:/@`.
pub(crate) fn valid_step_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "-_.:/@".contains(c))
}

/// Step or gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// Runs a closure.
    Step,
    /// Waits for a person's approval.
    Gate,
}

impl StepKind {
    /// `"step"` or `"gate"`.
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Step => "step",
            StepKind::Gate => "gate",
        }
    }
}

/// A declared closure (`run`, `check`, `undo`, `rehearse`), callable later from any thread.
///
/// It carries the runtime state of the place it was declared (imported modules, the
/// function libraries in scope), so a closure written inside a stdlib module or next to
/// a top-level `import` still sees those when the scheduler calls it (a plain
/// `FnPtr::call` would not).
#[derive(Clone)]
pub struct Callable {
    /// The closure, with captured values detached (deep copies taken at declaration).
    pub fn_ptr: FnPtr,
    /// Runtime state at declaration: imports and function libraries. Declarations
    /// whose state differs only in where they were called share one (its own
    /// position is the first sharer's: calls use [`Callable::pos`]).
    #[allow(deprecated)]
    pub env: Arc<rhai::NativeCallContextStore>,
    /// Where the declaration (`step(`, `gate(`, `rollout(`) was called: the position
    /// the closure is called from.
    pub pos: rhai::Position,
    /// The closure's source text, for fingerprints and `--dry-run`.
    pub source: String,
    /// The script functions the closure can call, for fingerprints and their diffs.
    pub callees: Arc<[super::callees::Callee]>,
    /// A second argument after `ctx`: a rollout's item (`|ctx, item|`) or batch
    /// (`between: |ctx, batch|`). Its value is part of `source`, so of the fingerprint.
    pub extra: Option<Dynamic>,
}

impl std::fmt::Debug for Callable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Callable({})", self.source)
    }
}

impl Callable {
    /// Call the closure with the step context map (and its [`Callable::extra`]).
    #[allow(deprecated)]
    pub fn call(
        &self,
        engine: &rhai::Engine,
        arg: Dynamic,
    ) -> Result<Dynamic, Box<rhai::EvalAltResult>> {
        let env = &self.env;
        let ctx = rhai::NativeCallContext::new_with_all_fields(
            engine,
            &env.fn_name,
            env.source.as_deref(),
            &env.global,
            self.pos,
        );
        match &self.extra {
            Some(x) => self
                .fn_ptr
                .call_within_context::<Dynamic>(&ctx, (arg, x.clone())),
            None => self.fn_ptr.call_within_context::<Dynamic>(&ctx, (arg,)),
        }
    }

    /// The same closure called with `extra` after `ctx`, `label` naming it in the source.
    pub fn with_extra(&self, label: &str, extra: Dynamic) -> Callable {
        let mut c = self.clone();
        c.source.push_str(&format!("\n// {label}: {extra:?}"));
        c.extra = Some(extra);
        c
    }
}

/// One declared parameter of a runbook.
#[derive(Debug, Clone, Default)]
pub struct ParamDecl {
    /// Shown by `check`/`plan` and in errors.
    pub help: String,
    /// Must be given with `--param` (no default).
    pub required: bool,
    /// Used when not given.
    pub default_value: Option<String>,
}

/// What `runbook(...)` declared.
#[derive(Debug, Clone, Default)]
pub struct RunbookDecl {
    /// Required display name.
    pub name: String,
    /// One line for `waymark list`.
    pub description: String,
    /// Declared parameters, by name.
    pub params: BTreeMap<String, ParamDecl>,
    /// Concurrency limit per group.
    pub limits: BTreeMap<String, usize>,
    /// Notification hooks (`notify: #{ webhook, command }`).
    pub notify: crate::notify::Hooks,
    /// Where `runbook(` was called.
    pub pos: Option<SrcPos>,
}

/// One dependency name, with where it was written.
#[derive(Debug, Clone)]
pub struct Dep {
    /// The name depended on.
    pub name: String,
    /// Where (the `after` option, or the call).
    pub pos: Option<SrcPos>,
}

/// What `step(...)` or `gate(...)` declared.
#[derive(Debug, Clone)]
pub struct StepDecl {
    /// Unique name.
    pub name: String,
    /// Step or gate.
    pub kind: StepKind,
    /// Human title.
    pub title: Option<String>,
    /// Dependencies, duplicates removed, in written order.
    pub after: Vec<Dep>,
    /// The action (none: a no-op step, useful as a join point).
    pub run: Option<Callable>,
    /// Extra attempts after a failure.
    pub retries: u32,
    /// First retry delay, doubled each further attempt.
    pub retry_delay: Duration,
    /// Per-attempt timeout (for gates: unanswered by then means rejected).
    pub timeout: Option<Duration>,
    /// Safe to re-run when interrupted mid-flight.
    pub idempotent: bool,
    /// Only reads: `resume` runs it again even though it succeeded, when a step after it
    /// still has to run, so decisions are made on today's facts (a fixed blocker).
    pub fresh: bool,
    /// "Already done?" probe used on resume. (This, `undo` and `rehearse` are boxed:
    /// most steps have none, and a declaration is moved and kept 10,000 times.)
    pub check: Option<Box<Callable>>,
    /// Compensation run by `waymark rollback`.
    pub undo: Option<Box<Callable>>,
    /// Concurrency group.
    pub group: Option<String>,
    /// Run condition.
    pub when: When,
    /// Free tags.
    pub tags: Vec<String>,
    /// Gate: what the operator must do.
    pub instructions: Option<String>,
    /// Gate: distinct approvers needed.
    pub approvals: u32,
    /// Gate: the approver must differ from whoever started the run.
    pub separate_approver: bool,
    /// Gate: plays the operator's part in a rehearsal.
    pub rehearse: Option<Box<Callable>>,
    /// The part this step plays in a `rollout()`, if it was declared by one.
    pub rollout: Option<Arc<RolloutPart>>,
    /// Where `step(`/`gate(` was called.
    pub pos: Option<SrcPos>,
}

/// A rollout's failure budget: failed items it tolerates before no further batch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// At most this many items.
    Count(u32),
    /// At most this percentage of the items (rounded down).
    Percent(u32),
}

impl Budget {
    /// The number of failed items tolerated out of `total`.
    pub fn allowed(self, total: usize) -> usize {
        match self {
            Budget::Count(n) => n as usize,
            Budget::Percent(p) => total * p as usize / 100,
        }
    }

    /// As the author wrote it (`2`, `"10%"`).
    pub fn describe(self) -> String {
        match self {
            Budget::Count(n) => n.to_string(),
            Budget::Percent(p) => format!("{p}%"),
        }
    }
}

/// What a step declared by `rollout(NAME, items, …)` is to it.
#[derive(Debug, Clone, PartialEq)]
pub enum RolloutPart {
    /// The work for one item (`NAME:ITEM`): its failure counts against the budget
    /// instead of stopping the run.
    Item {
        /// The rollout's name.
        rollout: String,
        /// 1-based batch.
        batch: usize,
    },
    /// The end of batch `batch` (`NAME:batch-K`): runs once its items finished, whatever
    /// their outcome, and fails — so no later batch starts — when more of the rollout's
    /// items failed than the budget allows.
    Barrier {
        /// The rollout's name.
        rollout: String,
        /// 1-based batch.
        batch: usize,
        /// How many batches the rollout has.
        batches: usize,
        /// The step names of this batch's items.
        items: Vec<String>,
        /// The step names of every item up to and including this batch.
        so_far: Vec<String>,
        /// How many items the rollout has.
        total: usize,
        /// The failure budget.
        budget: Budget,
    },
    /// A gate or a verifying step between batch `batch` and the next.
    Between {
        /// The rollout's name.
        rollout: String,
        /// 1-based batch it follows.
        batch: usize,
    },
}

impl RolloutPart {
    /// The rollout's name and the batch.
    pub fn batch(&self) -> (&str, usize) {
        match self {
            RolloutPart::Item { rollout, batch }
            | RolloutPart::Barrier { rollout, batch, .. }
            | RolloutPart::Between { rollout, batch } => (rollout, *batch),
        }
    }
}

/// The names of a declaration's closures, in the order [`StepDecl::closures`] gives them.
pub const CLOSURES: [&str; 4] = ["run", "check", "undo", "rehearse"];

impl StepDecl {
    /// Its closures: `run`, `check`, `undo`, `rehearse` (see [`CLOSURES`]).
    pub fn closures(&self) -> [Option<&Callable>; 4] {
        [
            self.run.as_ref(),
            self.check.as_deref(),
            self.undo.as_deref(),
            self.rehearse.as_deref(),
        ]
    }

    /// A declaration with every option at its default.
    pub fn new(name: String, kind: StepKind, pos: Option<SrcPos>) -> Self {
        Self {
            name,
            kind,
            title: None,
            after: Vec::new(),
            run: None,
            retries: 0,
            retry_delay: Duration::from_secs(5),
            timeout: None,
            idempotent: false,
            fresh: false,
            check: None,
            undo: None,
            group: None,
            when: When::Success,
            tags: Vec::new(),
            instructions: None,
            approvals: 1,
            separate_approver: false,
            rehearse: None,
            rollout: None,
            pos,
        }
    }
}
