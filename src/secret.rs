//! Secrets (SPEC §6): `secret("name")` reads `WAYMARK_SECRET_NAME` or asks once in a
//! terminal. Values live only in this process's memory; every one is added to the run's
//! redactor so it is scrubbed from logs, the journal and the terminal.

use crate::redact::{Redactor, MIN_SECRET_CHARS};
use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::sync::{Mutex, OnceLock};

fn cache() -> &'static Mutex<HashMap<String, String>> {
    static CACHE: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The environment variable that holds secret `name`.
pub(crate) fn env_var(name: &str) -> String {
    let up: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("WAYMARK_SECRET_{up}")
}

/// Resolve secret `name` (env, then a one-time prompt) and register it with `redactor`.
pub(crate) fn resolve(name: &str, redactor: &Redactor) -> Result<String, String> {
    if name.is_empty() {
        return Err("secret(): the name is empty".into());
    }
    let mut c = cache().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(v) = c.get(name) {
        redactor.add(v);
        return Ok(v.clone());
    }
    let var = env_var(name);
    let value = match std::env::var(&var) {
        Ok(v) if !v.is_empty() => v,
        _ if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() => {
            dialoguer::Password::new()
                .with_prompt(format!("secret `{name}`"))
                .interact()
                .map_err(|e| format!("secret `{name}`: cannot read it from the terminal: {e}"))?
        }
        _ => {
            return Err(format!(
            "secret `{name}` is not set: export {var}=... before running (no terminal to ask in)"
        ))
        }
    };
    let chars = value.chars().count();
    if chars < MIN_SECRET_CHARS {
        return Err(format!(
            "secret `{name}` is {chars} character{} long; waymark needs at least {MIN_SECRET_CHARS} \
             to keep it out of logs without scrubbing ordinary text (docs/operator-guide.md, \"Secrets\")",
            if chars == 1 { "" } else { "s" }
        ));
    }
    redactor.add(&value);
    c.insert(name.to_string(), value.clone());
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_upper_case_variables() {
        assert_eq!(env_var("sql-password"), "WAYMARK_SECRET_SQL_PASSWORD");
    }

    #[test]
    fn a_secret_from_the_environment_is_registered_for_redaction() {
        std::env::set_var("WAYMARK_SECRET_UNIT_TEST_PW", "hunter2-xyz");
        let r = Redactor::new();
        assert_eq!(resolve("unit_test_pw", &r).unwrap(), "hunter2-xyz");
        assert_eq!(r.scrub("pw=hunter2-xyz"), "pw=[REDACTED]");
    }

    #[test]
    fn tiny_secret_would_redact_ordinary_text_so_it_is_refused() {
        std::env::set_var("WAYMARK_SECRET_UNIT_TEST_TINY", "ab");
        let r = Redactor::new();
        let e = resolve("unit_test_tiny", &r).unwrap_err();
        assert!(
            e.contains("2 characters") && e.contains("at least 4"),
            "{e}"
        );
        assert!(r.is_empty());
    }

    #[test]
    fn a_missing_secret_names_its_variable() {
        let e = resolve("surely_not_set_anywhere", &Redactor::new()).unwrap_err();
        assert!(e.contains("WAYMARK_SECRET_SURELY_NOT_SET_ANYWHERE"), "{e}");
    }
}
