//! Errors of the evidence archive.

/// Errors of this crate, sorted by what the user can do: fix the location (`Location`), retry
/// (`Store`), or report a bug (`Internal`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The evidence location is unusable as given.
    #[error("evidence location `{location}`: {reason}")]
    Location {
        /// What the user gave.
        location: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The object store refused or failed an operation; often transient.
    #[error("evidence store {operation} `{path}` failed: {source}")]
    Store {
        /// `put`, `get`, `list`.
        operation: &'static str,
        /// Object path.
        path: String,
        /// The cause.
        source: object_store::Error,
    },
    /// An S3 bucket-level call (Object Lock configuration) failed.
    #[error("bucket `{bucket}`: {reason}")]
    Bucket {
        /// Bucket name.
        bucket: String,
        /// What failed and what to do.
        reason: String,
    },
    /// Another writer appended to a chain this process owns.
    #[error(
        "manifest chain {chain}: entry {seq} was written by another process; two vigil instances are archiving \
         one source partition (run one instance per file input, and let Kafka's consumer group split topics)"
    )]
    SecondWriter {
        /// `source/partition`.
        chain: String,
        /// The entry slot that was taken.
        seq: u64,
    },
    /// A signing or public key could not be read or used.
    #[error("signing key {origin}: {reason}")]
    Key {
        /// The file or environment variable it came from (never the key itself).
        origin: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The archive is signed, but this writer has no key: what it wrote would fail verification.
    #[error(
        "the evidence archive `{location}` is signed (it holds digests) but no signing key is configured: set          [evidence] signing_key_file, VIGIL_SIGNING_KEY_FILE or VIGIL_SIGNING_KEY to the key its other writers use"
    )]
    SigningKeyMissing {
        /// The archive.
        location: String,
    },
    /// A retention that would delete evidence too early.
    #[error("{reason}")]
    Retention {
        /// What is refused and what to do.
        reason: String,
    },
    /// A stored manifest entry is not JSON of an entry.
    #[error("manifest entry `{path}` is not valid: {source}")]
    ManifestJson {
        /// Object path.
        path: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A manifest entry could not be read as one.
    #[error("manifest entry `{path}` is not valid: {reason}")]
    Manifest {
        /// Object path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Encoding Parquet failed: a bug.
    #[error("encoding {what} as Parquet failed (a bug, please report it): {source}")]
    Encode {
        /// What was encoded.
        what: String,
        /// The cause.
        source: parquet::errors::ParquetError,
    },
    /// An Arrow operation failed: a bug.
    #[error("internal error (a bug, please report it): {0}")]
    Internal(String),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// What kind of failure this is ([`vigil_schema::ErrorClass`]).
    pub fn class(&self) -> vigil_schema::ErrorClass {
        use vigil_schema::ErrorClass::{External, Internal, User};
        match self {
            Error::Location { .. }
            | Error::Key { .. }
            | Error::SigningKeyMissing { .. }
            | Error::Retention { .. }
            | Error::SecondWriter { .. } => User,
            Error::Store { .. } | Error::Bucket { .. } | Error::Manifest { .. } | Error::ManifestJson { .. } => {
                External
            }
            Error::Encode { .. } | Error::Internal(_) => Internal,
        }
    }
}

impl From<arrow::error::ArrowError> for Error {
    fn from(e: arrow::error::ArrowError) -> Self {
        Error::Internal(e.to_string())
    }
}
