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
    topic: String,
    describe: String,
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
        let producer: FutureProducer<SinkContext> = config.create_with_context(context).map_err(|e| Error::Config {
            what: endpoint.describe(),
            reason: format!("librdkafka refused the config: {e}"),
        })?;
        let topic = endpoint.topic.clone().unwrap_or_default();
        check::connected(producer.client(), endpoint, std::slice::from_ref(&topic), &errors, &|| {})?;
        Ok(KafkaSink { producer, topic, describe: endpoint.describe() })
    }

    /// The endpoint, for people.
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// Produces every record and waits until the broker acknowledged all of them.
    pub async fn send_all(&self, records: &[OutRecord]) -> Result<()> {
        let sends = records.iter().map(|r| {
            let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
            for (key, value) in &r.headers {
                headers = headers.insert(Header { key, value: Some(value.as_bytes()) });
            }
            let record = FutureRecord::to(&self.topic).key(r.key.as_bytes()).payload(&r.value).headers(headers);
            self.producer.send(record, SEND_TIMEOUT)
        });
        for result in futures::future::join_all(sends).await {
            result.map_err(|(e, _)| Error::Produce {
                topic: self.topic.clone(),
                reason: format!("{e}; the batch is not checkpointed and is produced again on restart"),
            })?;
        }
        Ok(())
    }

    /// Waits for every record in flight (at shutdown).
    pub fn flush(&self) -> Result<()> {
        self.producer
            .flush(SEND_TIMEOUT)
            .map_err(|e| Error::Produce { topic: self.topic.clone(), reason: e.to_string() })
    }
}
