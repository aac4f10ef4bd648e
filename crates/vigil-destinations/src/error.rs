//! Errors of alert destinations. None of them shows a secret: destinations are named by
//! [`crate::Target::label`] (scheme and host only), secrets by where they come from.

use std::path::PathBuf;

use vigil_schema::failure::ErrorClass;

/// What went wrong setting up or feeding a destination.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A destination is written wrong (URL, scheme, keys).
    #[error("alert destination {destination}: {reason}")]
    Config {
        /// The destination as shown to people (no secret).
        destination: String,
        /// What is wrong and what to write instead.
        reason: String,
    },
    /// A secret (HMAC secret, routing key, Slack URL) is missing or cannot be read.
    #[error("alert destination {destination}: {reason}")]
    Secret {
        /// The destination as shown to people.
        destination: String,
        /// Which variable or file, and what to do (never the value).
        reason: String,
    },
    /// The spool (the local queue of undelivered alerts) cannot be read or written.
    #[error("alert spool {}: cannot {action}: {source}; alerts are queued here before their batch is committed, so fix the disk (space, permissions) and run again", path.display())]
    Spool {
        /// File or directory.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Another process delivers from the same spool.
    #[error("alert spool {} is in use by another vigil process: give each process its own [alerts] spool_dir", path.display())]
    SpoolInUse {
        /// The spool directory.
        path: PathBuf,
    },
    /// The HTTP client could not be built (TLS roots).
    #[error("cannot set up HTTPS for alert destinations: {0}")]
    Client(#[source] reqwest::Error),
}

impl Error {
    /// The class of this error (see [`vigil_schema::failure`]).
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Config { .. } | Error::Secret { .. } | Error::SpoolInUse { .. } => ErrorClass::User,
            Error::Spool { .. } => ErrorClass::External,
            Error::Client(_) => ErrorClass::Internal,
        }
    }
}

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
