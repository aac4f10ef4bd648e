//! Errors of the Kafka source and sinks, each saying what to fix.

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kafka settings are invalid.
    #[error("{what}: {reason}")]
    Config {
        /// The endpoint or URL.
        what: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// No broker answered.
    #[error("cannot reach Kafka ({what}): {reason}")]
    Unreachable {
        /// The endpoint.
        what: String,
        /// What librdkafka reported and what to check.
        reason: String,
    },
    /// The broker refused the login.
    #[error("Kafka refused the login ({what}): {reason}")]
    Login {
        /// The endpoint.
        what: String,
        /// What librdkafka reported and what to check.
        reason: String,
    },
    /// A named topic does not exist.
    #[error(
        "topic `{topic}` does not exist on {brokers}: create it (vigil never creates topics) or fix the topic name; \
         topics there: {known}"
    )]
    MissingTopic {
        /// The topic.
        topic: String,
        /// The brokers asked.
        brokers: String,
        /// Topics that do exist.
        known: String,
    },
    /// A broker operation failed.
    #[error("Kafka {what}: {reason}")]
    Broker {
        /// Topic/partition or endpoint.
        what: String,
        /// What went wrong.
        reason: String,
    },
    /// The archive could not say where a partition stands.
    #[error("{what}: cannot read the archive's checkpoint: {reason}")]
    Checkpoint {
        /// Topic/partition.
        what: String,
        /// What went wrong.
        reason: String,
    },
    /// No SASL/OAUTHBEARER token could be had (AWS credentials, the token endpoint, STS).
    #[error("cannot get a Kafka login token ({what}): {reason}")]
    Token {
        /// The token source and the endpoint.
        what: String,
        /// What went wrong and what to do.
        reason: String,
        /// The user's settings or a service that failed.
        class: vigil_schema::ErrorClass,
    },
    /// Producing to a topic failed.
    #[error("writing to Kafka topic `{topic}` failed: {reason}")]
    Produce {
        /// The topic.
        topic: String,
        /// What went wrong.
        reason: String,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// What kind of failure this is ([`vigil_schema::ErrorClass`]).
    pub fn class(&self) -> vigil_schema::ErrorClass {
        use vigil_schema::ErrorClass::{External, User};
        match self {
            Error::Config { .. } | Error::Login { .. } | Error::MissingTopic { .. } => User,
            Error::Unreachable { .. } | Error::Broker { .. } | Error::Checkpoint { .. } | Error::Produce { .. } => {
                External
            }
            Error::Token { class, .. } => *class,
        }
    }
}
