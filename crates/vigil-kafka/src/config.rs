//! Where and how to reach Kafka: the `[inputs.kafka]` / `[alerts.kafka]` tables of a pipeline config and
//! the `kafka://` URLs of the command line, turned into librdkafka client configs.
//!
//! ```toml
//! [[inputs]]
//! format = "cloudtrail"
//! [inputs.kafka]
//! brokers = ["kafka-1:9093", "kafka-2:9093"]
//! topics = ["cloudtrail", "^audit-.*"]    # names, or regexes starting with ^ (as librdkafka)
//! group = "vigil"
//! start = "earliest"                      # where a group with no committed offset starts: earliest | latest
//! isolation_level = "read_committed"      # default; read_uncommitted also reads aborted transactions
//! [inputs.kafka.properties]               # any librdkafka property, passed as is
//! "security.protocol" = "SASL_SSL"
//! "sasl.mechanism" = "SCRAM-SHA-512"
//! "sasl.username" = "vigil"
//! [inputs.kafka.secrets]                  # secret properties: env:VARIABLE or file:PATH, never the value
//! "sasl.password" = "env:VIGIL_KAFKA_PASSWORD"
//! ```
//!
//! The same from a flag: `kafka://HOST:PORT[,HOST:PORT]/TOPIC[,TOPIC]?group=NAME&start=latest&...`, with
//! query keys `group`, `start`, `isolation_level`, `client_id`, `security_protocol`, `sasl_mechanism`,
//! `sasl_username`, `sasl_password_env`, `sasl_password_file`, `ssl_ca_location`, and any librdkafka
//! property by its dotted name (`fetch.max.bytes=...`). Outputs name one topic.
//!
//! Secrets never sit in config text or URLs: a secret property (a password, a client secret, a private
//! key, the OAUTHBEARER config) written inline is refused with the fix, and its resolved value goes
//! only into the librdkafka config, which is never logged.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use serde::Deserialize;
use vigil_schema::redact;

use crate::oauth::OAuthBearer;
use crate::{Error, Result};

/// Where a consumer group with no committed offset (and no archived offset) starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartPosition {
    /// The oldest offset the broker still has (default: evidence wants everything).
    #[default]
    Earliest,
    /// The end: only records produced from now on.
    Latest,
}

impl std::str::FromStr for StartPosition {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "earliest" | "beginning" | "smallest" => Ok(StartPosition::Earliest),
            "latest" | "end" | "largest" => Ok(StartPosition::Latest),
            other => Err(format!("start `{other}` is not earliest or latest")),
        }
    }
}

/// A Kafka cluster and what to read from or write to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaEndpoint {
    /// Bootstrap brokers, `HOST:PORT`: a list, or one string of them separated by commas (as
    /// `bootstrap.servers` and managed services write it, and as a `${VAR}` in a config file gives it).
    #[serde(deserialize_with = "list_or_commas")]
    pub brokers: Vec<String>,
    /// Inputs: topics to read; an entry starting with `^` is a regular expression.
    #[serde(default)]
    pub topics: Vec<String>,
    /// Outputs: the topic to write.
    pub topic: Option<String>,
    /// Inputs: the consumer group.
    pub group: Option<String>,
    /// Inputs: where a new group starts.
    #[serde(default)]
    pub start: StartPosition,
    /// Inputs: `read_committed` (default) or `read_uncommitted`.
    pub isolation_level: Option<String>,
    /// librdkafka properties passed as they are (TLS, SASL, timeouts, ...).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Secret librdkafka properties: `env:VARIABLE` or `file:PATH`.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// SASL/OAUTHBEARER: where vigil gets the login tokens (AWS MSK IAM or OIDC; [`crate::oauth`]).
    #[serde(default)]
    pub oauthbearer: Option<OAuthBearer>,
}

/// A list of strings, or one string of comma-separated items.
fn list_or_commas<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    struct ListOrCommas;
    impl<'de> serde::de::Visitor<'de> for ListOrCommas {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of \"HOST:PORT\" strings, or one string of them separated by commas")
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> std::result::Result<Vec<String>, E> {
            Ok(text.split(',').map(str::trim).filter(|b| !b.is_empty()).map(str::to_string).collect())
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Vec<String>, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element::<String>()? {
                out.push(item);
            }
            Ok(out)
        }
    }
    d.deserialize_any(ListOrCommas)
}

/// librdkafka properties whose names look like secrets ([`vigil_schema::redact::is_secret_key`]) but hold
/// a setting, a path or a public name: fine inline.
const PLAIN_PROPERTIES: [&str; 12] = [
    "sasl.oauthbearer.client.id",
    "sasl.oauthbearer.method",
    "sasl.oauthbearer.scope",
    "sasl.oauthbearer.token.endpoint.url",
    "sasl.oauthbearer.grant.type",
    "sasl.oauthbearer.metadata.authentication.type",
    "sasl.oauthbearer.assertion.algorithm",
    "sasl.oauthbearer.assertion.private.key.file",
    "sasl.oauthbearer.assertion.jwt.template.file",
    "enable.sasl.oauthbearer.unsecure.jwt",
    "ssl.key.location",
    "ssl.keystore.location",
];

/// Whether a librdkafka property (or URL query key) holds a secret and must come from `secrets`:
/// conservatively, every name that looks like one (`password`, `secret`, `token`, `key`, `cred`, ... and
/// their misspellings, see [`vigil_schema::redact::is_secret_key`]) except the known plain properties
/// above (`ssl.key.location`, `sasl.oauthbearer.client.id`, ...).
pub fn is_secret_property(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    redact::is_secret_key(&lower)
        && !PLAIN_PROPERTIES.contains(&lower.as_str())
        && !crate::oauth::PLAIN_URL_KEYS.contains(&lower.as_str())
}

/// The fix for a secret written inline.
const SECRET_FIX: &str = "secrets never go in config text or URLs: in a URL give sasl_password_env=VARIABLE or \
     sasl_password_file=PATH (and sasl_username=NAME); in a config file put it under [inputs.kafka.secrets] as \
     \"env:VARIABLE\" or \"file:PATH\". Rotate the secret if this URL or file was shared";

fn percent_decode(s: &str) -> std::result::Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3).ok_or_else(|| format!("`{s}` has a cut-off %-escape"))?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("`{s}` has a bad %-escape `%{hex}`"))?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("`{s}` is not UTF-8 after %-decoding"))
}

impl KafkaEndpoint {
    /// Whether `location` is a `kafka://` URL.
    pub fn is_url(location: &str) -> bool {
        location.starts_with("kafka://")
    }

    /// Parses `kafka://HOST:PORT[,HOST:PORT]/TOPIC[,TOPIC]?key=value&...` (see the module docs).
    ///
    /// An inline secret (a user name or password before `@`, a secret-like query key such as
    /// `sasl.password` or a misspelling of one) is refused; no error repeats it (the URL is shown through
    /// [`redact::url`]).
    pub fn from_url(url: &str) -> Result<Self> {
        let bad = |reason: String| Error::Config { what: redact::url(url).into_owned(), reason };
        let rest = url.strip_prefix("kafka://").ok_or_else(|| bad("does not start with kafka://".into()))?;
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        // Broker addresses and topic names never hold `@`: one is a user name or password (conservative:
        // a password may hold an unescaped `/`).
        if location.contains('@') {
            return Err(bad(format!("a user name or password before @ is refused: {SECRET_FIX}")));
        }
        let secret_keys: Vec<String> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').map_or((p, false), |(k, _)| (k, true)))
            .filter(|(k, _)| is_secret_property(k))
            // A part without `=` may be the secret itself: not shown.
            .map(|(k, pair)| if pair { format!("`{}`", redact::text(k)) } else { "(a part without =)".to_string() })
            .collect();
        if !secret_keys.is_empty() {
            return Err(bad(format!(
                "query key {} holds a secret (or looks like it does) and is refused: {SECRET_FIX}",
                secret_keys.join(", ")
            )));
        }
        let (hosts, topics) = location.split_once('/').ok_or_else(|| {
            bad("no topic: write kafka://HOST:PORT/TOPIC (for example kafka://127.0.0.1:9092/cloudtrail)".into())
        })?;
        let brokers: Vec<String> = hosts.split(',').filter(|h| !h.is_empty()).map(str::to_string).collect();
        let topics: Vec<String> = topics
            .split(',')
            .filter(|t| !t.is_empty())
            .map(percent_decode)
            .collect::<std::result::Result<_, _>>()
            .map_err(bad)?;
        let mut endpoint = KafkaEndpoint { brokers, topics, ..KafkaEndpoint::default() };
        let mut oauth_keys = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            // Not shown: a part without `=` may be a secret pasted in the wrong place.
            let (key, value) = pair.split_once('=').ok_or_else(|| {
                bad("a query part has no `=` (not shown, in case it is a secret): write key=value&key=value".into())
            })?;
            let value = percent_decode(value).map_err(bad)?;
            let mut property = |name: &str| endpoint.properties.insert(name.to_string(), value.clone());
            match key {
                "group" | "group.id" => endpoint.group = Some(value.clone()),
                "start" | "offset" => endpoint.start = value.parse().map_err(bad)?,
                "isolation_level" | "isolation.level" => endpoint.isolation_level = Some(value.clone()),
                "client_id" => {
                    property("client.id");
                }
                "security_protocol" => {
                    property("security.protocol");
                }
                "sasl_mechanism" | "sasl_mechanisms" => {
                    property("sasl.mechanism");
                }
                "sasl_username" => {
                    property("sasl.username");
                }
                "ssl_ca_location" => {
                    property("ssl.ca.location");
                }
                "sasl_password_env" => {
                    endpoint.secrets.insert("sasl.password".into(), format!("env:{value}"));
                }
                "sasl_password_file" => {
                    endpoint.secrets.insert("sasl.password".into(), format!("file:{value}"));
                }
                oauth if crate::oauth::URL_KEYS.contains(&oauth) => oauth_keys.push((oauth.to_string(), value.clone())),
                dotted if dotted.contains('.') || dotted == "debug" => {
                    property(dotted);
                }
                other => {
                    return Err(bad(format!(
                        "unknown query key `{other}`; known: group, start, isolation_level, client_id, security_protocol, \
                         sasl_mechanism, sasl_username, sasl_password_env, sasl_password_file, ssl_ca_location, \
                         oauthbearer_method (aws_msk_iam: aws_region, aws_profile; oidc: oidc_token_endpoint, \
                         oidc_client_id, oidc_client_secret_env, oidc_client_secret_file, oidc_scope, oidc_audience), \
                         or any librdkafka property by its dotted name"
                    )));
                }
            }
        }
        endpoint.oauthbearer = OAuthBearer::from_url_keys(&oauth_keys).map_err(bad)?;
        Ok(endpoint)
    }

    /// For an output URL: the one topic becomes `topic`.
    pub fn into_output(mut self) -> Self {
        if self.topic.is_none() && self.topics.len() == 1 {
            self.topic = self.topics.pop();
        }
        self
    }

    /// A short description for people and logs (brokers and topics; never properties or secrets).
    pub fn describe(&self) -> String {
        let topics = match &self.topic {
            Some(t) => t.clone(),
            None => self.topics.join(","),
        };
        redact::url(&format!("kafka://{}/{}", self.brokers.join(","), topics)).into_owned()
    }

    fn common_problems(&self, out: &mut Vec<String>) {
        if self.brokers.is_empty() {
            out.push("no brokers: give brokers = [\"HOST:PORT\"] (or kafka://HOST:PORT/TOPIC)".into());
        }
        for broker in &self.brokers {
            if broker.contains('@') {
                out.push(format!("a broker holds a user name or password before @, which is refused: {SECRET_FIX}"));
                continue;
            }
            let port_ok = broker.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
            if !port_ok {
                out.push(format!("broker `{broker}` is not HOST:PORT"));
            }
        }
        for name in self.properties.keys() {
            if is_secret_property(name) {
                out.push(format!(
                    "property `{}` holds a secret (or looks like it does) and is refused: remove it from the config \
                     text and set it under secrets as \"env:VARIABLE\" or \"file:PATH\" (in a URL: \
                     sasl_password_env= or sasl_password_file=)",
                    redact::text(name)
                ));
            }
        }
        crate::oauth::endpoint_problems(self, out);
        for (name, reference) in &self.secrets {
            if !(reference.starts_with("env:") || reference.starts_with("file:")) {
                out.push(format!(
                    "secret `{name}` must be \"env:VARIABLE\" or \"file:PATH\", not the value itself (remove the value from \
                     the config and rotate it if it was shared)"
                ));
            }
        }
    }

    /// Problems of an input endpoint, each with what to do; empty when it is usable.
    pub fn input_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.common_problems(&mut out);
        if self.topics.is_empty() {
            out.push("no topics: give topics = [\"NAME\"] (a name, or a regex starting with ^)".into());
        }
        for topic in self.topics.iter().filter(|t| t.starts_with('^')) {
            if let Err(e) = regex::Regex::new(topic) {
                out.push(format!("topic pattern `{topic}` is not a valid regex: {e}"));
            }
        }
        if self.group.as_deref().is_none_or(str::is_empty) {
            out.push("no consumer group: give group = \"NAME\" (or ?group=NAME in the URL)".into());
        }
        if let Some(level) = &self.isolation_level
            && level != "read_committed"
            && level != "read_uncommitted"
        {
            out.push(format!("isolation_level `{level}` is not read_committed or read_uncommitted"));
        }
        out
    }

    /// Problems of an output endpoint, each with what to do; empty when it is usable.
    pub fn output_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.common_problems(&mut out);
        match (&self.topic, self.topics.len()) {
            (Some(t), 0) if !t.is_empty() && !t.starts_with('^') => {}
            _ => out.push("an output writes one topic: give topic = \"NAME\" (or kafka://HOST:PORT/TOPIC)".into()),
        }
        out
    }

    /// Reads every secret reference: `env:VARIABLE` or `file:PATH` (a trailing newline is dropped).
    fn resolve_secrets(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::with_capacity(self.secrets.len());
        for (name, reference) in &self.secrets {
            let value = if let Some(var) = reference.strip_prefix("env:") {
                std::env::var(var).map_err(|_| Error::Config {
                    what: self.describe(),
                    reason: format!("secret `{name}`: environment variable {var} is not set"),
                })?
            } else if let Some(path) = reference.strip_prefix("file:") {
                let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
                    what: self.describe(),
                    reason: format!("secret `{name}`: cannot read {path}: {e}"),
                })?;
                text.trim_end_matches(['\n', '\r']).to_string()
            } else {
                return Err(Error::Config {
                    what: self.describe(),
                    reason: format!("secret `{name}` must be env:VARIABLE or file:PATH"),
                });
            };
            out.push((name.clone(), value));
        }
        Ok(out)
    }

    /// Sets the brokers, the user's properties and the resolved secrets on `config`. (Set directly:
    /// rdkafka's `config_map()` shows secrets as a placeholder, so copying a config through it would send
    /// the placeholder as the password.)
    fn set_base(&self, config: &mut ClientConfig) -> Result<()> {
        config.set("bootstrap.servers", self.brokers.join(","));
        config.set("client.id", "vigil");
        // librdkafka logs through our context (and so through tracing), not to stderr.
        config.set("log.queue", "false");
        for (k, v) in crate::oauth::implied_properties(self) {
            config.set(*k, *v);
        }
        for (k, v) in &self.properties {
            config.set(k, v);
        }
        for (k, v) in self.resolve_secrets()? {
            config.set(k, v);
        }
        crate::oauth::attach(self, config)
    }

    /// librdkafka refused the client config: the error, without the value when the property is a secret
    /// (rdkafka's message quotes the value it refused).
    pub fn refused_config(&self, error: &KafkaError) -> Error {
        let reason = match error {
            KafkaError::ClientConfig(_, desc, key, _) if is_secret_property(key) || self.secrets.contains_key(key) => {
                format!("librdkafka refused the config: {desc} (property `{key}`, value not shown)")
            }
            other => format!("librdkafka refused the config: {}", redact::text(&other.to_string())),
        };
        Error::Config { what: self.describe(), reason }
    }

    /// The consumer's librdkafka config: manual commits of what is durable only, no silent offset reset.
    pub fn consumer_config(&self) -> Result<ClientConfig> {
        let problems = self.input_problems();
        if let Some(first) = problems.into_iter().next() {
            return Err(Error::Config { what: self.describe(), reason: first });
        }
        let mut config = ClientConfig::new();
        config.set("enable.partition.eof", "false");
        // librdkafka's prefetch queue: bounded, so memory stays bounded whatever the backlog.
        config.set("queued.max.messages.kbytes", "32768");
        config.set("isolation.level", self.isolation_level.as_deref().unwrap_or("read_committed"));
        // Consumer lag per partition for the metrics endpoint.
        config.set("statistics.interval.ms", "5000");
        self.set_base(&mut config)?;
        // These carry the delivery guarantee and cannot be overridden.
        config.set("group.id", self.group.as_deref().unwrap_or_default());
        config.set("enable.auto.commit", "false");
        config.set("enable.auto.offset.store", "false");
        // Start offsets are chosen explicitly on assignment; an out-of-range offset is an error we handle
        // (recorded as a completeness break), never a silent jump.
        config.set("auto.offset.reset", "error");
        Ok(config)
    }

    /// The producer's librdkafka config: idempotent, acknowledged by all in-sync replicas.
    pub fn producer_config(&self) -> Result<ClientConfig> {
        let problems = self.output_problems();
        if let Some(first) = problems.into_iter().next() {
            return Err(Error::Config { what: self.describe(), reason: first });
        }
        let mut config = ClientConfig::new();
        config.set("linger.ms", "5");
        config.set("message.timeout.ms", "60000");
        self.set_base(&mut config)?;
        config.set("enable.idempotence", "true");
        config.set("acks", "all");
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_common_keys_and_dotted_properties() {
        let e = KafkaEndpoint::from_url(
            "kafka://b1:9092,b2:9093/cloudtrail,%5Eaudit-.*?group=vigil&start=latest&sasl_mechanism=SCRAM-SHA-512\
             &sasl_username=u&sasl_password_env=PW&fetch.max.bytes=1000",
        )
        .unwrap();
        assert_eq!(e.brokers, vec!["b1:9092", "b2:9093"]);
        assert_eq!(e.topics, vec!["cloudtrail", "^audit-.*"]);
        assert_eq!(e.group.as_deref(), Some("vigil"));
        assert_eq!(e.start, StartPosition::Latest);
        assert_eq!(e.properties["sasl.mechanism"], "SCRAM-SHA-512");
        assert_eq!(e.properties["fetch.max.bytes"], "1000");
        assert_eq!(e.secrets["sasl.password"], "env:PW");
        assert!(e.input_problems().is_empty(), "{:?}", e.input_problems());
        assert_eq!(e.describe(), "kafka://b1:9092,b2:9093/cloudtrail,^audit-.*");
    }

    #[test]
    fn bad_urls_and_inline_secrets_say_what_to_do() {
        let err = KafkaEndpoint::from_url("kafka://b1:9092").unwrap_err().to_string();
        assert!(err.contains("no topic"), "{err}");
        let err = KafkaEndpoint::from_url("kafka://b1:9092/t?grup=x").unwrap_err().to_string();
        assert!(err.contains("unknown query key `grup`"), "{err}");
        let e = KafkaEndpoint::from_url("kafka://b1:9092/t").unwrap();
        assert!(e.input_problems().join("\n").contains("no consumer group"));
        let out = KafkaEndpoint::from_url("kafka://b1:9092/alerts").unwrap().into_output();
        assert!(out.output_problems().is_empty());
        assert_eq!(out.topic.as_deref(), Some("alerts"));
    }

    #[test]
    fn secrets_come_from_env_or_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\n").unwrap();
        let mut e = KafkaEndpoint::from_url("kafka://b:1/t?group=g").unwrap();
        e.secrets.insert("sasl.password".into(), format!("file:{}", file.display()));
        assert_eq!(e.resolve_secrets().unwrap(), vec![("sasl.password".to_string(), "from-file".to_string())]);
        let config = e.consumer_config().unwrap();
        // Set as it is (not rdkafka's placeholder), and never printed.
        assert_eq!(config.get("sasl.password"), Some("from-file"));
        assert!(!format!("{config:?}").contains("from-file"));
        assert_eq!(config.get("enable.auto.commit"), Some("false"));
        assert_eq!(config.get("auto.offset.reset"), Some("error"));
        e.secrets.insert("sasl.password".into(), "env:VIGIL_TEST_SURELY_UNSET_VARIABLE".into());
        let err = e.consumer_config().unwrap_err().to_string();
        assert!(err.contains("VIGIL_TEST_SURELY_UNSET_VARIABLE is not set"), "{err}");
    }

    #[test]
    fn inline_secrets_are_refused_without_repeating_them() {
        let urls = [
            "kafka://b1:9092/t?group=g&sasl.password=hunter2",
            "kafka://b1:9092/t?group=g&sasl.pasword=hunter2",
            "kafka://b1:9092/t?group=g&sasl_password=hunter2",
            "kafka://b1:9092/t?group=g&ssl.key.password=hunter2",
            "kafka://b1:9092/t?group=g&sasl.oauthbearer.client.secret=hunter2",
            "kafka://b1:9092/t?group=g&sasl.oauthbearer.config=principal%3Dhunter2",
            "kafka://b1:9092/t?group=g&SASL.PASSWORD=hunter2",
            "kafka://b1:9092/t?group=g&sasl%2Epassword=hunter2",
            "kafka://b1:9092/t?group=g&token=hunter2",
            "kafka://b1:9092/t?group=g&credentials=hunter2",
            "kafka://b1:9092/t?group=g&sasl.password:hunter2",
            "kafka://vigil:hunter2@b1:9092/t?group=g",
            "kafka://vigil:hun/ter2@b1:9092/t?group=g",
        ];
        for url in urls {
            let err = KafkaEndpoint::from_url(url).unwrap_err().to_string();
            assert!(!err.contains("hunter2") && !err.contains("ter2"), "{url}: {err}");
            assert!(err.contains("refused") && err.contains("sasl_password_env="), "{url}: {err}");
        }
        // A typo among other mistakes: the secret check comes first, and nothing is echoed.
        let err = KafkaEndpoint::from_url("kafka://b1:9092/t?grup=x&sasl.passwort=hunter2").unwrap_err().to_string();
        assert!(err.contains("`sasl.passwort`") && !err.contains("hunter2"), "{err}");
        // Plain properties that only look like secrets, and references to secrets, are fine.
        let e = KafkaEndpoint::from_url(
            "kafka://b1:9092/t?group=g&ssl.key.location=/etc/k.pem&sasl.oauthbearer.client.id=vigil\
             &sasl_password_file=/run/pw",
        )
        .unwrap();
        assert!(e.input_problems().is_empty(), "{:?}", e.input_problems());
        // The same in config tables.
        let mut e = KafkaEndpoint::from_url("kafka://b1:9092/t?group=g").unwrap();
        e.properties.insert("sasl.passwd".into(), "hunter2".into());
        e.brokers.push("u:hunter2@b2:9092".into());
        let problems = e.input_problems().join("\n");
        assert!(problems.contains("`sasl.passwd` holds a secret") && problems.contains("before @"), "{problems}");
        assert!(!problems.contains("hunter2") && !e.describe().contains("hunter2"), "{problems}");
    }

    #[test]
    fn a_refused_secret_property_is_not_quoted() {
        let mut e = KafkaEndpoint::from_url("kafka://b1:9092/t?group=g").unwrap();
        e.secrets.insert("sasl.password".into(), "env:VIGIL_TEST_REFUSED_SECRET".into());
        let refused = KafkaError::ClientConfig(
            rdkafka::types::RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
            "Invalid value".into(),
            "sasl.password".into(),
            "hunter2".into(),
        );
        let err = e.refused_config(&refused).to_string();
        assert!(err.contains("sasl.password") && !err.contains("hunter2"), "{err}");
    }
}
