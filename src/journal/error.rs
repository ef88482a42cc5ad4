//! What can go wrong reading or writing a journal, phrased for the operator who must act on it.
//!
//! Every variant names the journal file, and damage names the line, so `waymark` can exit 2
//! with a message that says where to look without a stack of context added by callers.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A journal could not be read, verified or appended to.
#[derive(Debug)]
pub enum JournalError {
    /// An operating-system call on the journal failed.
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// What waymark was doing, e.g. "write" or "create".
        action: &'static str,
        /// The underlying error.
        source: io::Error,
    },
    /// A line other than a torn last line failed verification; nothing was rewritten.
    Damaged {
        /// The journal file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// The journal holds no complete record.
    Empty {
        /// The journal file.
        path: PathBuf,
        /// Why, when there is more to say than "zero bytes".
        detail: Option<String>,
    },
    /// An earlier write or fsync failed, so the writer refuses to append anything more.
    ///
    /// After a failed fsync the kernel may have dropped the data; appending after it could
    /// acknowledge records that are not durable, so the writer stops for good.
    Failed {
        /// The journal file.
        path: PathBuf,
        /// The first failure.
        message: String,
    },
    /// An event could not be turned into JSON (a bug, not an I/O problem).
    Encode {
        /// The journal file.
        path: PathBuf,
        /// The serializer's message.
        message: String,
    },
    /// The writer was asked to do something its contract forbids.
    Misuse {
        /// The journal file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalError::Io {
                path,
                action,
                source,
            } => write!(f, "cannot {action} journal {}: {source}", path.display()),
            JournalError::Damaged {
                path,
                line,
                problem,
            } => write!(
                f,
                "journal {} is damaged at line {line}: {problem} (nothing was rewritten)",
                path.display()
            ),
            JournalError::Empty { path, detail } => {
                write!(f, "journal {} is empty", path.display())?;
                if let Some(detail) = detail {
                    write!(f, ": {detail}")?;
                }
                Ok(())
            }
            JournalError::Failed { path, message } => write!(
                f,
                "journal {} stopped accepting records after an earlier failure: {message}",
                path.display()
            ),
            JournalError::Encode { path, message } => write!(
                f,
                "cannot encode a record for journal {}: {message}",
                path.display()
            ),
            JournalError::Misuse { path, message } => {
                write!(f, "journal {}: {message}", path.display())
            }
        }
    }
}

impl std::error::Error for JournalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JournalError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl JournalError {
    /// Shorthand for [`JournalError::Io`].
    pub(crate) fn io(path: impl Into<PathBuf>, action: &'static str, source: io::Error) -> Self {
        JournalError::Io {
            path: path.into(),
            action,
            source,
        }
    }
}
