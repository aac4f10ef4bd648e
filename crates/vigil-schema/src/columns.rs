//! Column names, one constant each, so that normalizers, rules and the archive never spell them twice.

/// Event time, UTC, microseconds. Never null: a record without a usable time is dead-lettered.
pub const TIME: &str = "time";
/// Log source, e.g. `aws.cloudtrail`, `k8s.audit`, `web.access`.
pub const SOURCE: &str = "source";
/// OCSF class in snake case: `authentication`, `account_change`, `api_activity`, `http_activity`.
pub const CLASS: &str = "class";
/// The source's own action name (`ConsoleLogin`, `create pods/exec`, `GET`).
pub const ACTIVITY: &str = "activity";
/// `success`, `failure` or `unknown`.
pub const OUTCOME: &str = "outcome";
/// Who acted (ARN, user name, service account).
pub const ACTOR_USER: &str = "actor_user";
/// Kind of actor (`IAMUser`, `Root`, `AssumedRole`, `ServiceAccount`, `Anonymous`, ...).
pub const ACTOR_TYPE: &str = "actor_type";
/// Client IP address in canonical text form; null when the source names a service instead of an address.
pub const SRC_IP: &str = "src_ip";
/// Client user agent.
pub const USER_AGENT: &str = "user_agent";
/// Whether multi-factor authentication was used; null when the source does not say.
pub const MFA: &str = "mfa";
/// The user acted upon (created, changed, granted to).
pub const TARGET_USER: &str = "target_user";
/// The resource acted upon (ARN, `namespace/name`, URL path).
pub const TARGET_RESOURCE: &str = "target_resource";
/// Role, policy or group granted or revoked.
pub const PRIVILEGE: &str = "privilege";
/// HTTP method.
pub const HTTP_METHOD: &str = "http_method";
/// HTTP path without the query string's host part.
pub const HTTP_PATH: &str = "http_path";
/// HTTP response status.
pub const HTTP_STATUS: &str = "http_status";
/// Bytes sent in the response.
pub const BYTES: &str = "bytes";
/// Request latency in milliseconds.
pub const LATENCY_MS: &str = "latency_ms";
/// Cloud account or project.
pub const CLOUD_ACCOUNT: &str = "cloud_account";
/// Cloud region.
pub const REGION: &str = "region";
/// The source record's fields that no canonical column holds verbatim, as a JSON object text.
pub const ATTRS: &str = "attrs";
/// The original record bytes, unchanged.
pub const RAW: &str = "raw";
/// Stable id: hex of the first 16 bytes of SHA-256(source, 0x00, raw).
pub const EVENT_ID: &str = "event_id";
/// Where the record came from: a Kafka topic, or `file-<fingerprint>` for files and stdin.
pub const INGEST_SOURCE: &str = "ingest_source";
/// Kafka partition; 0 for files.
pub const INGEST_PARTITION: &str = "ingest_partition";
/// Kafka offset, or the 1-based record number in a file (its line, or its element in a JSON envelope).
pub const INGEST_OFFSET: &str = "ingest_offset";
/// When vigil read the record.
pub const INGEST_TIME: &str = "ingest_time";

/// Alert id: hex of SHA-256 over the rule id and the sorted event ids behind the alert (first 16 bytes).
pub const ALERT_ID: &str = "alert_id";
/// Rule id from the rule file's header.
pub const RULE_ID: &str = "rule_id";
/// Rule title.
pub const RULE_TITLE: &str = "rule_title";
/// `info`, `low`, `medium`, `high`, `critical`.
pub const SEVERITY: &str = "severity";
/// SOC 2 Trust Services Criteria the rule serves, e.g. `CC6.1`.
pub const CRITERIA: &str = "criteria";
/// SHA-256 of the rule file's text: which rule version raised the alert.
pub const RULE_HASH: &str = "rule_hash";
/// Ids of the events behind an alert.
pub const EVENT_IDS: &str = "event_ids";
/// Other columns the rule selected, as a JSON object text.
pub const FIELDS: &str = "fields";

/// Input format name a dead letter was read as (`cloudtrail`, `k8s_audit`, ...).
pub const FORMAT: &str = "format";
/// Machine-readable reason a record was dead-lettered, from a small fixed set (`invalid_json`, ...).
pub const REASON_CODE: &str = "reason_code";
/// Human-readable reason naming the field and the problem.
pub const REASON: &str = "reason";
