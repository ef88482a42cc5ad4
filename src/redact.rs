//! Secret redaction: every secret value is replaced by `[REDACTED]` before text
//! reaches a log file, the journal or the terminal (SPEC §6).

use std::sync::{Arc, RwLock};

/// The replacement text for a secret value.
pub const REDACTED: &str = "[REDACTED]";

/// A shared, growable set of secret values to scrub from text.
#[derive(Debug, Clone, Default)]
pub struct Redactor(Arc<RwLock<Vec<String>>>);

impl Redactor {
    /// An empty redactor (scrubs nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Remember a secret value; empty values are ignored (they would match everywhere).
    pub fn add(&self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let mut v = self.0.write().unwrap_or_else(|e| e.into_inner());
        if !v.iter().any(|s| s == secret) {
            v.push(secret.to_string());
            // Longest first, so a secret that contains another is scrubbed whole.
            v.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// `text` with every known secret replaced by [`REDACTED`].
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

    /// True when no secret has been registered.
    pub fn is_empty(&self) -> bool {
        self.0.read().map(|v| v.is_empty()).unwrap_or(false)
    }
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
}
