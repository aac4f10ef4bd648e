//! Errors of report writing.

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Querying or sampling the archive failed.
    #[error(transparent)]
    Audit(#[from] vigil_audit::Error),
    /// Reading the archive failed.
    #[error(transparent)]
    Evidence(#[from] vigil_evidence::Error),
    /// Writing a report file failed.
    #[error("cannot write {what}: {source}")]
    Output {
        /// The file.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The request cannot be answered as given; the message says what to change.
    #[error("{0}")]
    Invalid(String),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// What kind of failure this is ([`vigil_schema::ErrorClass`]).
    pub fn class(&self) -> vigil_schema::ErrorClass {
        match self {
            Error::Audit(e) => e.class(),
            Error::Evidence(e) => e.class(),
            Error::Output { .. } => vigil_schema::ErrorClass::External,
            Error::Invalid(_) => vigil_schema::ErrorClass::User,
        }
    }
}
