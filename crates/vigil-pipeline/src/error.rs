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
    /// An input names a format vigil does not know, or options its format refuses.
    #[error("{origin}: {source}")]
    Format {
        /// The input (path, `--input` flag).
        origin: String,
        /// What the format said.
        #[source]
        source: vigil_normalize::Error,
    },
    /// A `kafka://` URL does not parse.
    #[error("{origin}: {source}")]
    KafkaUrl {
        /// The flag or input that holds it.
        origin: String,
        /// What is wrong with it.
        #[source]
        source: vigil_kafka::Error,
    },
    /// A `^` topic pattern is not a valid regular expression.
    #[error("{origin}: topic pattern: {source}")]
    TopicPattern {
        /// The Kafka input.
        origin: String,
        /// What the regex parser said.
        #[source]
        source: regex::Error,
    },
    /// An input could not be read.
    #[error("input `{input}`: {reason}")]
    Input {
        /// The input path.
        input: String,
        /// What went wrong.
        reason: String,
    },
    /// An input could not be read from disk.
    #[error("input `{input}`: {source}")]
    InputIo {
        /// The input path.
        input: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An output file could not be opened or written.
    #[error("output `{output}`: {source}")]
    OutputIo {
        /// The output path, or `-`.
        output: String,
        /// The cause.
        #[source]
        source: std::io::Error,
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
    /// An alert destination is set up wrong, or its queue cannot be written.
    #[error(transparent)]
    Destinations(#[from] vigil_destinations::Error),
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

impl Error {
    /// What kind of failure this is ([`vigil_schema::ErrorClass`]); the CLI maps it to the exit code and
    /// the advice at the end of the message.
    pub fn class(&self) -> vigil_schema::ErrorClass {
        use vigil_schema::ErrorClass::{External, Internal, User};
        match self {
            Error::Config { .. }
            | Error::Format { .. }
            | Error::KafkaUrl { .. }
            | Error::TopicPattern { .. }
            | Error::Input { .. }
            | Error::InputIo { .. }
            | Error::Rules(_) => User,
            Error::Output { .. } | Error::OutputIo { .. } => External,
            Error::Eval(e) => e.class(),
            Error::Kafka(e) => e.class(),
            Error::Evidence(e) => e.class(),
            Error::Destinations(e) => e.class(),
            Error::Internal(_) => Internal,
        }
    }
}
