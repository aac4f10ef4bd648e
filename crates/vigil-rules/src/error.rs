//! Errors of rule loading and evaluation.

use std::path::PathBuf;

/// Errors of this crate. Rule errors name the file and line so that `vigil validate` can point at them.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A rule file is invalid: bad header, not a read-only query, does not plan.
    #[error("{}:{line}: {reason}", path.display())]
    Rule {
        /// The rule file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: u64,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A Sigma rule uses something vigil cannot express exactly (a logsource without a normalizer, a
    /// modifier, a correlation): it is not loaded, and the rest of the pack runs (see [`crate::sigma`]).
    #[error("{}:{line}: {reason}", path.display())]
    Unsupported {
        /// The rule file.
        path: PathBuf,
        /// 1-based line of the part vigil cannot express.
        line: u64,
        /// What and why.
        reason: String,
    },
    /// A rule file or directory could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Evaluating a rule over a batch failed (a bug or resource problem, not bad input).
    #[error("rule `{rule}` failed on a batch: {source}")]
    Eval {
        /// The rule id.
        rule: String,
        /// The cause.
        source: datafusion::error::DataFusionError,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// What kind of failure this is ([`vigil_schema::ErrorClass`]): a rule's text or file is the user's
    /// to fix; a rule failing on data at run time is quarantined before it ever reaches here.
    pub fn class(&self) -> vigil_schema::ErrorClass {
        match self {
            Error::Rule { .. } | Error::Unsupported { .. } | Error::Io { .. } | Error::Eval { .. } => {
                vigil_schema::ErrorClass::User
            }
        }
    }
}

impl Error {
    pub(crate) fn rule(path: &std::path::Path, line: u64, reason: impl Into<String>) -> Self {
        Error::Rule { path: path.to_path_buf(), line: line.max(1), reason: reason.into() }
    }
}
