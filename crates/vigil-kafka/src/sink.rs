//! Kafka outputs for alerts and dead letters: an idempotent producer (`enable.idempotence`, `acks=all`)
//! whose [`KafkaSink::send_all`] returns only when the broker acknowledged every record, so the pipeline
//! writes its checkpoint after, never before, what it emitted is durable.
//!
//! Alerts are keyed by `alert_id`: a replay after a crash re-sends the same key with the same content,
//! which compacted topics and consumers keyed on it fold into one. Dead letters carry the original record
//! bytes as value (so they can be replayed once fixed) and their provenance as headers.

use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use crate::check::{self, ErrorLog};
use crate::config::KafkaEndpoint;
use crate::{Error, Result};

const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// One record to produce.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutRecord {
    /// Message key.
    pub key: String,
    /// Message value.
    pub value: Vec<u8>,
    /// Message headers.
    pub headers: Vec<(&'static str, String)>,
}

/// librdkafka callbacks of a producer: logs and errors to tracing.
#[derive(Debug, Clone, Default)]
pub struct SinkContext {
    errors: ErrorLog,
}

impl ClientContext for SinkContext {
    crate::oauth::oauthbearer_refresh!();

    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.errors.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.errors.record(&error, reason);
    }
}

/// A topic written by an idempotent producer.
pub struct KafkaSink {
    producer: FutureProducer<SinkContext>,
    config: rdkafka::ClientConfig,
    topic: String,
    describe: String,
}

/// Errors that no retry can fix: the batch fails and the pipeline stops with the error.
fn permanent(error: &KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as C;
    matches!(
        error.rdkafka_error_code(),
        Some(
            C::MessageSizeTooLarge
                | C::TopicAuthorizationFailed
                | C::ClusterAuthorizationFailed
                | C::InvalidRecord
                | C::InvalidRequiredAcks
                | C::UnsupportedVersion
                | C::Authentication
                | C::SaslAuthenticationFailed
        )
    )
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink").field("endpoint", &self.describe).finish()
    }
}

impl KafkaSink {
    /// Connects, checking that the brokers answer, the login is accepted and the topic exists.
    pub fn connect(endpoint: &KafkaEndpoint) -> Result<Self> {
        let config = endpoint.producer_config()?;
        let context = SinkContext::default();
        let errors = context.errors.clone();
        let producer: FutureProducer<SinkContext> =
            config.clone().create_with_context(context).map_err(|e| endpoint.refused_config(&e))?;
        let topic = endpoint.topic.clone().unwrap_or_default();
        check::connected(producer.client(), endpoint, std::slice::from_ref(&topic), &errors, &|| {})?;
        Ok(KafkaSink { producer, config, topic, describe: endpoint.describe() })
    }

    /// The endpoint, for people.
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// Produces every record and waits until the broker acknowledged all of them. Transient failures (a
    /// broker restarting, timeouts) are retried with backoff for as long as they last (the pipeline
    /// waits, nothing is checkpointed meanwhile); a permanent one (too large, not authorized) fails.
    pub async fn send_all(&mut self, records: &[OutRecord]) -> Result<()> {
        let mut pending: Vec<&OutRecord> = records.iter().collect();
        let mut backoff = Duration::from_millis(200);
        loop {
            let sends = pending.iter().map(|r| {
                let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
                for (key, value) in &r.headers {
                    headers = headers.insert(Header { key, value: Some(value.as_bytes()) });
                }
                let record = FutureRecord::to(&self.topic).key(r.key.as_bytes()).payload(&r.value).headers(headers);
                self.producer.send(record, SEND_TIMEOUT)
            });
            let results = futures::future::join_all(sends).await;
            let mut failed = Vec::new();
            let mut last_error = None;
            for (record, result) in pending.iter().zip(results) {
                if let Err((e, _)) = result {
                    if permanent(&e) {
                        return Err(Error::Produce {
                            topic: self.topic.clone(),
                            reason: format!("{e}; the batch is not checkpointed and is produced again on restart"),
                        });
                    }
                    failed.push(*record);
                    last_error = Some(e);
                }
            }
            if failed.is_empty() {
                return Ok(());
            }
            tracing::warn!(
                topic = %self.topic,
                failed = failed.len(),
                error = %last_error.map(|e| e.to_string()).unwrap_or_default(),
                "producing failed; retrying (the batch is checkpointed only once every record is acknowledged)"
            );
            if self.producer.client().fatal_error().is_some() {
                // An idempotent producer that hit a fatal error must be replaced.
                self.producer = self.config.clone().create_with_context(SinkContext::default()).map_err(|e| {
                    Error::Produce { topic: self.topic.clone(), reason: format!("cannot recreate the producer: {e}") }
                })?;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
            pending = failed;
        }
    }

    /// Waits for every record in flight (at shutdown).
    pub fn flush(&self) -> Result<()> {
        self.producer
            .flush(SEND_TIMEOUT)
            .map_err(|e| Error::Produce { topic: self.topic.clone(), reason: e.to_string() })
    }
}
