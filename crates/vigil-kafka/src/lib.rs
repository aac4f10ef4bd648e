//! Kafka for vigil: the production source and sink.
//!
//! - [`source::KafkaSource`]: one member of a consumer group on a poller thread. It starts each
//!   partition after the archive's last offset (the archive is the checkpoint), hands records to the
//!   pipeline through a bounded channel (pausing partitions when the pipeline lags), commits only what
//!   the pipeline reports durable, settles revoked partitions before giving them up, and reports offsets
//!   lost to retention instead of skipping them.
//! - [`sink::KafkaSink`]: an idempotent producer for alerts and dead letters that returns only once the
//!   broker acknowledged.
//! - [`config::KafkaEndpoint`]: brokers, topics, group and librdkafka properties from a config table or a
//!   `kafka://` URL; secrets from environment variables or files only.
//! - [`oauth`]: SASL/OAUTHBEARER for managed Kafka: AWS MSK IAM tokens ([`msk_iam`]) and OIDC client
//!   credentials ([`oidc`]), fetched by vigil (librdkafka is built without curl) and refreshed before
//!   they expire.
//!
//! Built on rdkafka with its bundled librdkafka (and the system's OpenSSL for TLS and SASL/SCRAM).

mod check;
pub mod config;
mod error;
pub mod msk_iam;
pub mod oauth;
pub mod oidc;
pub mod sink;
pub mod source;

pub use check::probe;
pub use config::{KafkaEndpoint, StartPosition};
pub use error::{Error, Result};
pub use oauth::{OAuth, OAuthBearer, OAuthMethod};
pub use sink::{KafkaSink, OutRecord};
pub use source::{Checkpoints, KafkaSource, PartitionProgress, SourceControl, SourceEvent, SourceOptions};
