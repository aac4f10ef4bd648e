//! Why a Sigma rule was not converted.

use std::path::PathBuf;

/// What kind of thing a refusal is about, for the coverage table (`vigil sigma convert` and the
/// comparison count refusals by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Refusal {
    /// The file is not YAML vigil reads, or not a Sigma rule.
    Yaml,
    /// The rule's `logsource` names logs vigil has no normalizer for.
    Logsource,
    /// A field vigil does not hold for that logsource, or a form of field name it cannot read exactly.
    Field,
    /// A value modifier (or a combination of them) vigil cannot express exactly.
    Modifier,
    /// A value vigil cannot compare exactly (an ambiguous YAML scalar, a regular expression the engine
    /// reads differently).
    Value,
    /// The `condition` or the `detection` section is malformed.
    Condition,
    /// A correlation rule.
    Correlation,
}

impl Refusal {
    /// Short name, as the coverage table prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Yaml => "yaml",
            Refusal::Logsource => "logsource",
            Refusal::Field => "field",
            Refusal::Modifier => "modifier",
            Refusal::Value => "value",
            Refusal::Condition => "condition",
            Refusal::Correlation => "correlation",
        }
    }
}

/// Errors of this crate: a rule that is refused, with where and why.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The rule uses something vigil cannot express exactly, or is not a valid Sigma rule.
    #[error("{}:{line}: {reason}", path.display())]
    Refused {
        /// The rule file.
        path: PathBuf,
        /// 1-based line of the part refused.
        line: u64,
        /// The kind of refusal.
        kind: Refusal,
        /// What is refused and why (and what to do, where there is something).
        reason: String,
    },
}

impl Error {
    /// The kind of refusal.
    pub fn kind(&self) -> Refusal {
        match self {
            Error::Refused { kind, .. } => *kind,
        }
    }

    /// The class of the failure: always the rule author's ([`vigil_schema::ErrorClass::User`]).
    pub fn class(&self) -> vigil_schema::ErrorClass {
        vigil_schema::ErrorClass::User
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A refusal at a line, before the path is known.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Refused {
    pub line: u64,
    pub kind: Refusal,
    pub reason: String,
}

pub(crate) fn refuse<T>(line: u64, kind: Refusal, reason: impl Into<String>) -> std::result::Result<T, Refused> {
    Err(Refused { line, kind, reason: reason.into() })
}
