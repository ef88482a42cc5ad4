//! The operation table as Markdown, the body of `docs/estate-ops.md` (a test keeps the
//! file equal to it).

use super::table::OPS;

/// The operation table as Markdown (the body of `docs/estate-ops.md`).
pub(crate) fn ops_markdown() -> String {
    let mut out = String::new();
    out.push_str("| op | mutating | windows | roles | args | result |\n");
    out.push_str("| --- | --- | --- | --- | --- | --- |\n");
    for op in OPS {
        let roles = if op.roles.is_empty() {
            "any".to_string()
        } else {
            op.roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let args = if op.args.is_empty() {
            "—".to_string()
        } else {
            op.args
                .iter()
                .map(|a| {
                    let mut s = format!("`{}`", a.name);
                    if a.required {
                        s.push_str(" (required)");
                    } else if let Some(d) = a.default {
                        s.push_str(&format!(" = `{d}`"));
                    }
                    s
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | `{}` |\n",
            op.name,
            if op.mutating { "yes" } else { "no" },
            if op.manual_on_windows {
                "**gate**"
            } else {
                "scripted"
            },
            roles,
            md(&args),
            md(op.result),
        ));
    }
    out.push('\n');
    for op in OPS {
        out.push_str(&format!("### `{}`\n{}.\n", op.name, md(op.summary)));
        for a in op.args {
            let req = if a.required { ", required" } else { "" };
            let d = a
                .default
                .map(|d| format!(", default `{d}`"))
                .unwrap_or_default();
            out.push_str(&format!(
                "- `{}` ({}{req}{d}): {}\n",
                a.name,
                a.kind.name(),
                md(a.help)
            ));
        }
        out.push('\n');
    }
    out
}

fn md(s: &str) -> String {
    s.replace('|', "\\|")
}
