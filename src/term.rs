//! Writing to the operator: stdout and stderr that may be closed pipes, and whether to
//! colour.
//!
//! `outln!` panics when its stream is gone (`waymark list | head -1`), and a panic in the
//! middle of a live run would leave it `crashed`. Every line waymark prints goes through
//! [`outln!`](crate::outln) / [`errln!`](crate::errln) instead, which drop what a closed
//! stream cannot take: the journal, not the terminal, is the record of a run.
//! (`clippy.toml` disallows the std printing macros so this stays true.)

use std::io::Write as _;

/// Write `text` to stdout; a closed or failing stdout is ignored.
pub(crate) fn write_out(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Write `text` to stderr; a closed or failing stderr is ignored.
pub(crate) fn write_err(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Whether to colour output going to a stream that `is_terminal`: not when `NO_COLOR` is set
/// (<https://no-color.org>) nor on a `TERM=dumb` terminal, which shows escapes as garbage.
pub(crate) fn color(is_terminal: bool) -> bool {
    is_terminal
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// Like `println!`, but a closed stdout is not a panic.
#[macro_export]
macro_rules! outln {
    () => { $crate::term::write_out("\n") };
    ($($arg:tt)*) => {{
        let mut line = format!($($arg)*);
        line.push('\n');
        $crate::term::write_out(&line);
    }};
}

/// Like `print!`, but a closed stdout is not a panic.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::term::write_out(&format!($($arg)*)) };
}

/// Like `eprintln!`, but a closed stderr is not a panic.
#[macro_export]
macro_rules! errln {
    () => { $crate::term::write_err("\n") };
    ($($arg:tt)*) => {{
        let mut line = format!($($arg)*);
        line.push('\n');
        $crate::term::write_err(&line);
    }};
}

/// Like `eprint!`, but a closed stderr is not a panic.
#[macro_export]
macro_rules! err {
    ($($arg:tt)*) => { $crate::term::write_err(&format!($($arg)*)) };
}
