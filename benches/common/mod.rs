//! What the benchmarks share: the generated layered runbooks of SPEC §8.

/// A runbook named `name` of 100 layers of 100 steps, written as a Rhai loop: step
/// `s{layer}-{w}` runs `closure` after steps `w` and `w + 1` of the layer above. `tail`
/// is appended as is (it may use `prev`, the last layer's step names).
#[allow(dead_code)] // not every bench uses both forms
pub fn layered_runbook(name: &str, closure: &str, tail: &str) -> String {
    layered_runbook_with(name, closure, "", tail)
}

/// [`layered_runbook`] with `options` (e.g. `"idempotent: true, "`) in every step's map.
#[allow(dead_code)]
pub fn layered_runbook_with(name: &str, closure: &str, options: &str, tail: &str) -> String {
    format!(
        r#"runbook(#{{ name: "{name}", description: "10,000 generated steps" }});
let prev = [];
for l in 0..100 {{
    let layer = [];
    for w in 0..100 {{
        let after = if prev.is_empty() {{ [] }} else {{ [prev[w], prev[(w + 1) % 100]] }};
        layer.push(step(`s${{l}}-${{w}}`, #{{ {options}after: after, run: {closure} }}));
    }}
    prev = layer;
}}
{tail}"#
    )
}

/// `layers` × `width` explicit `step()` calls (the worst case for parsing and closure
/// bookkeeping): step `s{layer}-{w}` runs after steps `w` and `w + 1` of the layer above.
#[allow(dead_code)]
pub fn explicit_runbook(layers: usize, width: usize) -> String {
    let mut s = String::from("runbook(#{ name: \"bench\", description: \"generated\" });\n");
    for l in 0..layers {
        for w in 0..width {
            let after = if l == 0 {
                String::new()
            } else {
                format!(
                    "after: [\"s{}-{}\", \"s{}-{}\"], ",
                    l - 1,
                    w,
                    l - 1,
                    (w + 1) % width
                )
            };
            s.push_str(&format!(
                "step(\"s{l}-{w}\", #{{ {after}run: |ctx| () }});\n"
            ));
        }
    }
    s
}

/// What Rhai alone spends on `script`: a plain engine (waymark's sandbox limits, no
/// optimiser pass, nothing of waymark registered) parses and evaluates it with
/// `runbook`, `step` and `exec` as functions that only keep their arguments. This is
/// the part of a load that waymark's own code cannot remove, timed on the same
/// machine in the same run as the load it is printed beside: the median of `rounds`.
#[allow(dead_code)]
pub fn rhai_alone(script: &str, rounds: usize) -> std::time::Duration {
    use rhai::{Array, Dynamic, Engine, Map, OptimizationLevel};
    use std::sync::{Arc, Mutex};
    let kept: Arc<Mutex<Vec<Dynamic>>> = Arc::default();
    let mut engine = Engine::new();
    waymark::dsl::engine::set_limits(&mut engine);
    engine.set_optimization_level(OptimizationLevel::None);
    let k = kept.clone();
    engine.register_fn("runbook", move |m: Map| k.lock().unwrap().push(m.into()));
    let k = kept.clone();
    engine.register_fn("step", move |name: &str, m: Map| -> String {
        k.lock().unwrap().push(m.into());
        name.to_string()
    });
    engine.register_fn("exec", |_: &str, _: Array| ());
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = std::time::Instant::now();
        let ast = engine
            .compile(script)
            .expect("the benchmark's runbook parses");
        engine.run_ast(&ast).expect("the benchmark's runbook runs");
        times.push(t.elapsed());
        kept.lock().unwrap().clear();
    }
    times.sort();
    times[times.len() / 2]
}
