//! Secret redaction: every secret value is replaced by `[REDACTED]` before text
//! reaches a log file, the journal, the lab state or the terminal (SPEC §6).
//!
//! A value rarely leaves in its raw form: the `[exec] $ …` line shell-quotes it, a
//! generated PowerShell or T-SQL script doubles its quotes, JSON and `debug()` escape
//! it, and a child printing a multi-line value (a key, a certificate) hands it over
//! one line at a time. So [`Redactor::add`] registers every form the project
//! produces — see [`forms`] — and [`Redactor::scrub`] replaces each of them.
//!
//! **Short values.** A pattern of one to three characters would be found inside
//! ordinary words and numbers and turn every log into `[REDACTED]` soup, while
//! barely hiding anything. So `secret()` refuses values shorter than
//! [`MIN_SECRET_CHARS`] (see `secret.rs`), and a line of a multi-line value is
//! matched on its own only when it has at least that many characters once trimmed
//! (a lone `}` or blank line is not a secret; the whole value is still matched).

use std::sync::{Arc, RwLock};

/// The replacement text for a secret value.
pub(crate) const REDACTED: &str = "[REDACTED]";

/// Shortest secret value waymark accepts, and shortest line of a multi-line value
/// that is matched on its own (module doc).
pub(crate) const MIN_SECRET_CHARS: usize = 4;

/// A shared, growable set of secret values to scrub from text.
#[derive(Debug, Clone, Default)]
pub struct Redactor(Arc<RwLock<Vec<String>>>);

impl Redactor {
    /// An empty redactor (scrubs nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Remember a secret value and every form of it ([`forms`]); empty values are
    /// ignored (they would match everywhere).
    pub fn add(&self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let mut v = self.0.write().unwrap_or_else(|e| e.into_inner());
        let before = v.len();
        for form in forms(secret) {
            if !v.contains(&form) {
                v.push(form);
            }
        }
        if v.len() != before {
            // Longest first, so a form that contains another is scrubbed whole.
            v.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// `text` with every known secret form replaced by [`REDACTED`].
    pub fn scrub(&self, text: &str) -> String {
        let v = self.0.read().unwrap_or_else(|e| e.into_inner());
        let mut out = text.to_string();
        for s in v.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        out
    }

    /// Scrub every string (and object key) inside a JSON value, in place.
    pub fn scrub_json(&self, value: &mut serde_json::Value) {
        use serde_json::Value;
        if self.is_empty() {
            return;
        }
        match value {
            Value::String(s) => {
                let clean = self.scrub(s);
                if clean != *s {
                    *s = clean;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|x| self.scrub_json(x)),
            Value::Object(map) => {
                let dirty = map.keys().any(|k| self.scrub(k) != *k);
                if dirty {
                    let old = std::mem::take(map);
                    for (k, x) in old {
                        map.insert(self.scrub(&k), x);
                    }
                }
                map.values_mut().for_each(|x| self.scrub_json(x));
            }
            _ => {}
        }
    }

    /// True when no secret has been registered.
    pub fn is_empty(&self) -> bool {
        self.0.read().map(|v| v.is_empty()).unwrap_or(false)
    }
}

/// Every form of `secret` that waymark's own output can contain, as substrings to
/// match: the raw value, the inside of each quoting the project produces (POSIX
/// `'...'` and `$'...'`, PowerShell and T-SQL literals, JSON, Rust/Rhai `Debug`, URL
/// segments), and the same for each line of a multi-line value that is at least
/// [`MIN_SECRET_CHARS`] long once trimmed.
pub(crate) fn forms(secret: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |s: String| {
        if !s.is_empty() && !out.contains(&s) {
            out.push(s);
        }
    };
    let mut pieces = vec![secret.to_string()];
    if secret.contains('\n') || secret.contains('\r') {
        for line in secret.split(['\n', '\r']) {
            let line = line.trim();
            if line.chars().count() >= MIN_SECRET_CHARS {
                pieces.push(line.to_string());
            }
        }
    }
    for p in pieces {
        let json = json_body(&p);
        push(json_body(&json));
        push(json);
        push(debug_body(&p));
        push(p.escape_debug().to_string());
        push(p.escape_default().to_string());
        push(p.replace('\'', r"'\''"));
        push(crate::quote::ansi_c_body(&p));
        let tsql = p.replace('\'', "''");
        push(ps_body(&tsql));
        push(ps_body(&p));
        push(tsql);
        push(p.replace('"', "\"\""));
        push(p.replace('"', "`\""));
        push(crate::quote::url_segment(&p));
        push(p);
    }
    out
}

fn json_body(s: &str) -> String {
    let quoted = serde_json::Value::String(s.to_string()).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

fn ps_body(s: &str) -> String {
    let quoted = crate::quote::ps(s);
    quoted[1..quoted.len() - 1].to_string()
}

fn debug_body(s: &str) -> String {
    let quoted = format!("{s:?}");
    quoted[1..quoted.len() - 1].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_longest_first() {
        let r = Redactor::new();
        r.add("pass");
        r.add("password123");
        r.add("");
        assert_eq!(r.scrub("x password123 pass y"), "x [REDACTED] [REDACTED] y");
        assert_eq!(r.scrub("nothing here"), "nothing here");
    }

    const HOSTILE: &str = "pa'ss word\"\\$x";

    fn assert_clean(r: &Redactor, text: &str) {
        let out = r.scrub(text);
        assert!(out.contains(REDACTED), "{text:?} became {out:?}");
        for bad in ["pa'ss", "ss word", "word\"", "\\$x"] {
            assert!(!out.contains(bad), "{text:?} became {out:?}");
        }
    }

    #[test]
    fn shell_quoted_secret_leaked_through_the_exec_line() {
        let r = Redactor::new();
        r.add(HOSTILE);
        let spec = crate::process::ProcessSpec::new("sh", ["-c", "exit 3", HOSTILE]);
        assert_clean(&r, &crate::process::describe(&spec));
        let spec = crate::process::ProcessSpec::new("tool", [format!("--pw={HOSTILE}\n")]);
        assert_clean(&r, &crate::process::describe(&spec));
        let mut spec = crate::process::ProcessSpec::new("tool", ["x"]);
        spec.env = vec![("PW".into(), HOSTILE.into())];
        assert_clean(&r, &crate::process::describe(&spec));
    }

    #[test]
    fn escaped_forms_of_a_secret_leaked_json_debug_powershell() {
        let r = Redactor::new();
        r.add(HOSTILE);
        assert_clean(&r, &serde_json::json!({ "pw": HOSTILE }).to_string());
        let twice = serde_json::json!({ "line": serde_json::json!({ "pw": HOSTILE }).to_string() });
        assert_clean(&r, &twice.to_string());
        assert_clean(&r, &format!("{HOSTILE:?}"));
        assert_clean(&r, &format!("x = {};", crate::quote::ps(HOSTILE)));
        assert_clean(&r, &crate::quote::tsql_str(HOSTILE));
        assert_clean(&r, &crate::quote::ps(&crate::quote::tsql_str(HOSTILE)));
    }

    #[test]
    fn multi_line_secret_leaked_line_by_line() {
        let key = "-----BEGIN KEY-----\nMIIEabcdefgh\n  ijklmnopQRST  \n}\n-----END KEY-----\n";
        let r = Redactor::new();
        r.add(key);
        for line in [
            "MIIEabcdefgh",
            "stdout: ijklmnopQRST",
            "-----BEGIN KEY-----",
        ] {
            assert!(!r.scrub(line).contains("MIIE"), "{line}");
            assert!(!r.scrub(line).contains("ijkl"), "{line}");
            assert!(r.scrub(line).contains(REDACTED), "{line}");
        }
        // A short line of the value is not a pattern on its own.
        assert_eq!(r.scrub("fn x() {\n}"), "fn x() {\n}");
        assert!(!r.scrub(&format!("{key:?}")).contains("MIIE"));
    }

    #[test]
    fn json_values_are_scrubbed_in_place() {
        let r = Redactor::new();
        r.add("hunter2!");
        let mut v = serde_json::json!({"a": ["x hunter2! y", 3], "hunter2!": {"b": "hunter2!"}});
        r.scrub_json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"a": ["x [REDACTED] y", 3], "[REDACTED]": {"b": "[REDACTED]"}})
        );
    }
}
