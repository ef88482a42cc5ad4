//! The commands waymark tells an operator to type next.
//!
//! A hint is copied into another shell, often by another person (the approver), where
//! `WAYMARK_STATE_DIR` may be unset and the working directory different: every hint names
//! the state directory unless it is the default, and quotes what a shell would split.

use std::path::Path;

/// The state a command works on, as the flag a hint must carry to reach it: ` --state-dir
/// LOCATION`, or nothing for the default. The state stores implement it; a trait, so
/// hints do not depend on the stores (which name hints in their own errors).
pub(crate) trait StateFlag {
    /// ` --state-dir LOCATION`, or nothing for the default.
    fn flag(&self) -> String;
}

/// The default `--state-dir`, which hints leave out.
pub(crate) const DEFAULT_STATE_DIR: &str = ".waymark";

/// ` --state-dir DIR` when `state_dir` is not the default, else nothing.
pub(crate) fn state_dir_flag(state_dir: &Path) -> String {
    if state_dir == Path::new(DEFAULT_STATE_DIR) {
        String::new()
    } else {
        format!(" --state-dir {}", quote(&state_dir.display().to_string()))
    }
}

/// `s` as one shell word: unchanged when it is plain, else quoted.
pub(crate) use crate::quote::sh as quote;

/// `waymark approve RUN GATE` with the flags it needs.
pub(crate) fn approve(run_id: &str, gate: &str, state: &impl StateFlag) -> String {
    format!(
        "waymark approve {run_id} {}{} --note \"what you checked\"",
        quote(gate),
        state.flag()
    )
}

/// `waymark reject RUN GATE` with the flags it needs.
pub(crate) fn reject(run_id: &str, gate: &str, state: &impl StateFlag) -> String {
    format!(
        "waymark reject {run_id} {}{} --note \"why\"",
        quote(gate),
        state.flag()
    )
}

/// `waymark runs` with the flags it needs.
pub(crate) fn runs(state: &impl StateFlag) -> String {
    format!("waymark runs{}", state.flag())
}

/// `waymark lab reset` for the inventory at `origin` (`<demo>` for the built-in one).
pub(crate) fn lab_reset(origin: &str, state: &impl StateFlag) -> String {
    let inventory = if origin.starts_with("<demo") {
        String::new()
    } else {
        format!(" --inventory {}", quote(origin))
    };
    format!("waymark lab reset{inventory}{}", state.flag())
}

/// `waymark resume RUN` with the flags it needs.
pub(crate) fn resume(run_id: &str, state: &impl StateFlag) -> String {
    format!("waymark resume {run_id}{}", state.flag())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Store;

    #[test]
    fn the_default_state_dir_is_left_out_and_others_are_quoted() {
        assert_eq!(state_dir_flag(Path::new(".waymark")), "");
        assert_eq!(state_dir_flag(Path::new("/srv/wm")), " --state-dir /srv/wm");
        assert_eq!(
            state_dir_flag(Path::new("/srv/my runs")),
            " --state-dir '/srv/my runs'"
        );
        assert_eq!(quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn lab_reset_hint_names_the_inventory_and_state_dir_it_needs() {
        assert_eq!(
            lab_reset("<demo>", &Store::dir(Path::new(".waymark"))),
            "waymark lab reset"
        );
        assert_eq!(
            lab_reset("estates/my lab.toml", &Store::dir(Path::new("/srv/wm"))),
            "waymark lab reset --inventory 'estates/my lab.toml' --state-dir /srv/wm"
        );
    }
}
