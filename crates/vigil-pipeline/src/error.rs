//! Errors of the pipeline runtime.

/// Errors of this crate. Input records never cause one: they become events or dead letters.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid.
    #[error("{origin}: {reason}")]
    Config {
        /// Config file or flag.
        origin: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// An input could not be read.
    #[error("input `{input}`: {reason}")]
    Input {
        /// The input path.
        input: String,
        /// What went wrong.
        reason: String,
    },
    /// An output could not be written.
    #[error("output `{output}`: {reason}")]
    Output {
        /// The output path.
        output: String,
        /// What went wrong.
        reason: String,
    },
    /// Rules failed to load (every problem listed).
    #[error("{} rule problem(s):\n{}", .0.len(), .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Rules(Vec<vigil_rules::Error>),
    /// Evaluating rules failed.
    #[error(transparent)]
    Eval(#[from] vigil_rules::Error),
    /// Kafka failed (unreachable, refused login, missing topic, produce failure), with what to fix.
    #[error(transparent)]
    Kafka(#[from] vigil_kafka::Error),
    /// The evidence archive failed.
    #[error(transparent)]
    Evidence(#[from] vigil_evidence::Error),
    /// A worker task failed: a bug.
    #[error("internal error (a bug, please report it): {0}")]
    Internal(String),
}

impl From<arrow::error::ArrowError> for Error {
    fn from(e: arrow::error::ArrowError) -> Self {
        Error::Internal(e.to_string())
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
