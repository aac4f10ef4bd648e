//! Errors of archive queries and samples.

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The archive could not be opened or read.
    #[error(transparent)]
    Evidence(#[from] vigil_evidence::Error),
    /// The SQL was refused or failed; the message says why.
    #[error("query failed: {0}")]
    Query(#[from] datafusion::error::DataFusionError),
    /// Writing the output failed.
    #[error("writing {what} failed: {reason}")]
    Output {
        /// What was written.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// The request cannot be answered as given.
    #[error("{0}")]
    Invalid(String),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// What kind of failure this is ([`vigil_schema::ErrorClass`]).
    pub fn class(&self) -> vigil_schema::ErrorClass {
        use vigil_schema::ErrorClass::{External, User};
        match self {
            Error::Evidence(e) => e.class(),
            Error::Query(_) | Error::Invalid(_) => User,
            Error::Output { .. } => External,
        }
    }
}
