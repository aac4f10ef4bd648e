//! Failing fast: before a consumer joins its group or a producer takes its first record, the brokers
//! must answer, the login must be accepted and the named topics must exist. librdkafka itself retries
//! forever; these checks turn its errors into one message that says what to fix.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::client::{Client, ClientContext};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::config::KafkaEndpoint;
use crate::{Error, Result};

const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// One error librdkafka reported: its code when it came as an error event, and its text.
type Reported = (Option<RDKafkaErrorCode>, String);

/// The errors librdkafka reported through the client context, newest last (a few kept).
#[derive(Debug, Clone, Default)]
pub struct ErrorLog {
    errors: Arc<Mutex<Vec<Reported>>>,
}

impl ErrorLog {
    /// Records an error from the client context's `error` callback and logs it.
    pub fn record(&self, error: &KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        tracing::warn!(error = %error, reason, "librdkafka");
        let mut errors = self.errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if errors.len() >= 16 {
            errors.remove(0);
        }
        errors.push((code, reason.to_string()));
    }

    /// Forwards a librdkafka log line to tracing (target `librdkafka`) and keeps failures (a refused
    /// login shows up only here).
    pub fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_librdkafka(level, facility, message);
        let failure = matches!(
            level,
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error
        ) || facility == "FAIL";
        if failure {
            let mut errors = self.errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if errors.len() >= 16 {
                errors.remove(0);
            }
            // "[thrd:...]: broker: what happened" -> what happened
            let text = message.rsplit("]: ").next().unwrap_or(message);
            errors.push((None, text.to_string()));
        }
    }

    fn snapshot(&self) -> Vec<Reported> {
        self.errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// Forwards a librdkafka log line to tracing (target `librdkafka`).
fn log_librdkafka(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
            tracing::error!(target: "librdkafka", facility, "{message}")
        }
        RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", facility, "{message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => tracing::info!(target: "librdkafka", facility, "{message}"),
        RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", facility, "{message}"),
    }
}

fn is_auth(code: Option<RDKafkaErrorCode>, reason: &str) -> bool {
    let lower = reason.to_ascii_lowercase();
    matches!(
        code,
        Some(
            RDKafkaErrorCode::Authentication
                | RDKafkaErrorCode::SaslAuthenticationFailed
                | RDKafkaErrorCode::UnsupportedSASLMechanism
                | RDKafkaErrorCode::IllegalSASLState
                | RDKafkaErrorCode::SSL
        )
    ) || lower.contains("sasl")
        || lower.contains("authenticat")
        || lower.contains("ssl handshake")
}

/// Explains a failed metadata request from the errors librdkafka reported meanwhile.
fn explain(endpoint: &KafkaEndpoint, failure: &KafkaError, errors: &ErrorLog) -> Error {
    let seen = errors.snapshot();
    let what = endpoint.describe();
    if let Some((_, reason)) = seen.iter().rev().find(|(code, reason)| is_auth(*code, reason)) {
        return Error::Login { what, reason: format!("{reason}{}", crate::oauth::login_hint(endpoint, reason)) };
    }
    // "1/1 brokers are down" says less than the connect error before it.
    let last = seen
        .iter()
        .rev()
        .find(|(code, _)| *code != Some(RDKafkaErrorCode::AllBrokersDown))
        .or(seen.last())
        .map_or_else(|| failure.to_string(), |(_, r)| r.clone());
    Error::Unreachable {
        what,
        reason: format!(
            "{last}. Check the broker addresses ({}) and that the brokers run and are reachable from here \
             (security.protocol must match the listener: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)",
            endpoint.brokers.join(",")
        ),
    }
}

/// Asks the cluster for its metadata: fails with what to fix when the brokers cannot be reached, the
/// login is refused, or one of `topics` (names; `^` regexes are not checked) does not exist. `serve`
/// lets the client's queued callbacks run (errors reach [`ErrorLog`] only then).
pub fn connected<C: ClientContext>(
    client: &Client<C>,
    endpoint: &KafkaEndpoint,
    topics: &[String],
    errors: &ErrorLog,
    serve: &dyn Fn(),
) -> Result<()> {
    let refused = || {
        errors.snapshot().into_iter().rev().find(|(code, reason)| is_auth(*code, reason)).map(|(_, reason)| {
            Error::Login {
                what: endpoint.describe(),
                reason: format!("{reason}{}", crate::oauth::login_hint(endpoint, &reason)),
            }
        })
    };
    let attempts = METADATA_TIMEOUT.as_secs().max(1);
    let mut metadata = None;
    let mut failure = None;
    // Queued callbacks first: an OAUTHBEARER client connects only once its token is set.
    serve();
    for _ in 0..attempts {
        match client.fetch_metadata(None, Duration::from_secs(1)) {
            Ok(m) => {
                metadata = Some(m);
                break;
            }
            Err(e) => failure = Some(e),
        }
        serve();
        if let Some(e) = refused() {
            return Err(e);
        }
    }
    serve();
    if let Some(e) = refused() {
        return Err(e);
    }
    let Some(metadata) = metadata else {
        let failure = failure.unwrap_or(KafkaError::MetadataFetch(RDKafkaErrorCode::OperationTimedOut));
        return Err(explain(endpoint, &failure, errors));
    };
    let existing: Vec<&str> = metadata.topics().iter().filter(|t| t.error().is_none()).map(|t| t.name()).collect();
    for topic in topics.iter().filter(|t| !t.starts_with('^')) {
        if !existing.contains(&topic.as_str()) {
            let mut known: Vec<&str> = existing.iter().copied().filter(|t| !t.starts_with("__")).collect();
            known.sort_unstable();
            known.truncate(20);
            return Err(Error::MissingTopic {
                topic: topic.clone(),
                brokers: endpoint.brokers.join(","),
                known: if known.is_empty() { "none".into() } else { known.join(", ") },
            });
        }
    }
    Ok(())
}

/// The client context of a [`probe`]: errors collected, OAUTHBEARER tokens served.
#[derive(Default)]
struct ProbeContext {
    errors: ErrorLog,
}

impl ClientContext for ProbeContext {
    crate::oauth::oauthbearer_refresh!();

    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.errors.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.errors.record(&error, reason);
    }
}

impl rdkafka::consumer::ConsumerContext for ProbeContext {}

/// Checks an input endpoint without joining its group: the brokers answer, the login is accepted and
/// every named topic exists (the cluster's metadata, as a consumer with the endpoint's own settings
/// sees it). What `vigil validate` and the start of `vigil run` ask; blocks for up to about 10 s when
/// the brokers do not answer.
pub fn probe(endpoint: &KafkaEndpoint) -> Result<()> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let config = endpoint.consumer_config()?;
    let context = ProbeContext::default();
    let errors = context.errors.clone();
    let consumer: BaseConsumer<ProbeContext> =
        config.create_with_context(context).map_err(|e| endpoint.refused_config(&e))?;
    connected(consumer.client(), endpoint, &endpoint.topics, &errors, &|| {
        let _ = consumer.poll(Duration::ZERO);
    })
}
