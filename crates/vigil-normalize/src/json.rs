//! Any JSON log, mapped to the canonical columns in config (`json`), and web access logs already in JSON
//! (`web_access_json`, the same with defaults that fit the usual field names).
//!
//! A mapping says, per canonical column, which field fills it, as a dotted path (`user.name`):
//!
//! ```toml
//! [[inputs]]
//! format = "json"
//! path = "app-audit.ndjson"
//! source = "myapp.audit"          # the `source` column
//! class = "authentication"        # the `class` column for every record
//! [inputs.fields]
//! time = "ts"                     # RFC 3339 text, Apache `%t` text, or an epoch number (s, ms, us, ns)
//! actor_user = "user.name"
//! outcome = "result"              # success/ok/allow/true -> success; failure/fail/deny/error/false -> failure
//! ```
//!
//! Mappable columns: `time`, `class`, `activity`, `outcome`, `actor_user`, `actor_type`, `src_ip`,
//! `user_agent`, `mfa`, `target_user`, `target_resource`, `privilege`, `http_method`, `http_path`,
//! `http_status`, `bytes`, `latency_ms`, `cloud_account`, `region`. Without an `outcome` mapping the outcome
//! follows `http_status` (below 400 success) when mapped, else `unknown`.
//!
//! Defaults of `json`: `time` from the first of `time`, `timestamp`, `@timestamp`, `ts`, `eventTime`.
//! Defaults of `web_access_json` (`source = web.access`, `class = http_activity`):
//!
//! | column | field |
//! | --- | --- |
//! | `time` | `timestamp`, else `@timestamp`, `time`, else `time_local` (Apache `%t`) |
//! | `src_ip` | `remote_addr` |
//! | `actor_user` | `remote_user` |
//! | `activity`, `http_method` | `method`, else parsed from `request` |
//! | `http_path`, `target_resource` | `path`, else parsed from `request` (absolute URIs lose their host) |
//! | `http_status` | `status` |
//! | `bytes` | `body_bytes_sent` |
//! | `user_agent` | `http_user_agent` |
//! | `latency_ms` | `request_time_ms` |
//!
//! `attrs` keeps every top-level member that no single-key mapping consumed (nested paths leave their
//! top-level member in `attrs`; an address rewritten to canonical form keeps its original there too).

use std::borrow::Cow;
use std::sync::Arc;

use simd_json::prelude::*;
use vigil_schema::{EventBatchBuilder, EventRow, Provenance, class as classes, outcome};

use crate::fields::{V, boolean, canonical_ip, number, path, scalar_text, text, write_attrs};
use crate::time::{epoch_number_us, parse_clf_us, parse_rfc3339_us};
use crate::web_access::{split_absolute, split_request};
use crate::{Error, FormatOptions, Framing, Normalizer, ReasonCode, Rejection, Result, Scratch};

/// Canonical columns a JSON field can be mapped to.
pub const MAPPABLE: [&str; 19] = [
    "time",
    "class",
    "activity",
    "outcome",
    "actor_user",
    "actor_type",
    "src_ip",
    "user_agent",
    "mfa",
    "target_user",
    "target_resource",
    "privilege",
    "http_method",
    "http_path",
    "http_status",
    "bytes",
    "latency_ms",
    "cloud_account",
    "region",
];

/// Column index -> candidate paths (first present wins).
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    source: String,
    class: Option<String>,
    /// The class from the activity, for sources whose event type says it (Okta, GitHub).
    class_of_activity: Option<fn(&str) -> &'static str>,
    paths: Vec<Vec<Vec<String>>>,
    /// Parse method and path from a `request` line when they are not mapped directly.
    parse_request: bool,
}

fn split_path(p: &str) -> Vec<String> {
    p.split('.').map(str::to_string).collect()
}

impl Mapping {
    fn empty(source: &str) -> Self {
        Mapping {
            source: source.to_string(),
            class: None,
            class_of_activity: None,
            paths: vec![Vec::new(); MAPPABLE.len()],
            parse_request: false,
        }
    }

    fn set(&mut self, column: &str, candidates: &[&str]) {
        if let Some(i) = MAPPABLE.iter().position(|c| *c == column) {
            self.paths[i] = candidates.iter().map(|p| split_path(p)).collect();
        }
    }

    /// Defaults of the generic `json` format.
    pub fn generic() -> Self {
        let mut m = Mapping::empty("json");
        m.set("time", &["time", "timestamp", "@timestamp", "ts", "eventTime"]);
        m
    }

    /// Defaults of `web_access_json`.
    pub fn web_access() -> Self {
        let mut m = Mapping::empty(crate::web_access::SOURCE);
        m.class = Some(classes::HTTP_ACTIVITY.to_string());
        m.parse_request = true;
        m.set("time", &["timestamp", "@timestamp", "time", "time_local"]);
        m.set("src_ip", &["remote_addr"]);
        m.set("actor_user", &["remote_user"]);
        m.set("activity", &["method"]);
        m.set("http_method", &["method"]);
        m.set("http_path", &["path"]);
        m.set("target_resource", &["path"]);
        m.set("http_status", &["status"]);
        m.set("bytes", &["body_bytes_sent"]);
        m.set("user_agent", &["http_user_agent"]);
        m.set("latency_ms", &["request_time_ms"]);
        m
    }
}

/// The `source` of Okta System Log events.
pub const OKTA_SOURCE: &str = "okta.system_log";
/// The `source` of GitHub audit log events.
pub const GITHUB_SOURCE: &str = "github.audit";

impl Mapping {
    /// Defaults of `okta` (Okta System Log API objects, as exported or forwarded):
    ///
    /// | column | field |
    /// | --- | --- |
    /// | `time` | `published`, else `p_event_time` (Panther data lake) |
    /// | `activity` | `eventType` (`user.session.start`, `user.mfa.factor.deactivate`, ...) |
    /// | `class` | `authentication` for `user.session.*`, `user.authentication.*`; `account_change` for `user.mfa.*`, `user.account.*`, `user.lifecycle.*`, `group.user_membership.*`, `application.user_membership.*`, `user.credential.*`, `system.api_token.*`; else `api_activity` |
    /// | `outcome` | `outcome.result` (`SUCCESS`/`ALLOW` success, `FAILURE`/`DENY` failure, else unknown) |
    /// | `actor_user`, `actor_type` | `actor.alternateId`, `actor.type` |
    /// | `src_ip` | `client.ipAddress` |
    /// | `user_agent` | `client.userAgent.rawUserAgent` |
    /// | `target_user`, `target_resource` | `target.0.alternateId`, `target.0.displayName` |
    /// | `privilege` | `debugContext.debugData.privilegeGranted` |
    pub fn okta() -> Self {
        let mut m = Mapping::empty(OKTA_SOURCE);
        m.class_of_activity = Some(okta_class);
        m.set("time", &["published", "p_event_time"]);
        m.set("activity", &["eventType"]);
        m.set("outcome", &["outcome.result"]);
        m.set("actor_user", &["actor.alternateId"]);
        m.set("actor_type", &["actor.type"]);
        m.set("src_ip", &["client.ipAddress"]);
        m.set("user_agent", &["client.userAgent.rawUserAgent"]);
        m.set("target_user", &["target.0.alternateId"]);
        m.set("target_resource", &["target.0.displayName"]);
        m.set("privilege", &["debugContext.debugData.privilegeGranted"]);
        m
    }

    /// Defaults of `github_audit` (organization and enterprise audit log events, REST or streamed):
    ///
    /// | column | field |
    /// | --- | --- |
    /// | `time` | `@timestamp`, else `created_at`, `timestamp` (epoch milliseconds or RFC 3339), `p_event_time` (Panther) |
    /// | `activity` | `action` (`org.add_member`, `repo.destroy`, ...) |
    /// | `class` | `account_change` for actions about members, admins, roles, two-factor, keys, tokens and OAuth grants; else `api_activity` |
    /// | `actor_user` | `actor` |
    /// | `src_ip` | `actor_ip` |
    /// | `user_agent` | `user_agent` |
    /// | `target_user` | `user` |
    /// | `target_resource` | `repo`, else `team`, `org` |
    /// | `privilege` | `permission`, else `role` |
    /// | `cloud_account` | `org`, else `business` |
    pub fn github_audit() -> Self {
        let mut m = Mapping::empty(GITHUB_SOURCE);
        m.class_of_activity = Some(github_class);
        m.set("time", &["@timestamp", "created_at", "timestamp", "p_event_time"]);
        m.set("activity", &["action"]);
        m.set("actor_user", &["actor"]);
        m.set("src_ip", &["actor_ip"]);
        m.set("user_agent", &["user_agent"]);
        m.set("target_user", &["user"]);
        m.set("target_resource", &["repo", "team", "org"]);
        m.set("privilege", &["permission", "role"]);
        m.set("cloud_account", &["org", "business"]);
        m
    }
}

fn okta_class(event_type: &str) -> &'static str {
    const AUTH: [&str; 2] = ["user.session.", "user.authentication."];
    const CHANGE: [&str; 7] = [
        "user.mfa.",
        "user.account.",
        "user.lifecycle.",
        "group.user_membership.",
        "application.user_membership.",
        "user.credential.",
        "system.api_token.",
    ];
    if AUTH.iter().any(|p| event_type.starts_with(p)) {
        classes::AUTHENTICATION
    } else if CHANGE.iter().any(|p| event_type.starts_with(p)) {
        classes::ACCOUNT_CHANGE
    } else {
        classes::API_ACTIVITY
    }
}

fn github_class(action: &str) -> &'static str {
    const CHANGE: [&str; 9] =
        ["member", "admin", "role", "two_factor", "ssh_key", "deploy_key", "token", "oauth", "permission"];
    if CHANGE.iter().any(|w| action.contains(w)) { classes::ACCOUNT_CHANGE } else { classes::API_ACTIVITY }
}

/// The mapped JSON normalizer.
#[derive(Debug, Clone)]
pub struct JsonNormalizer {
    format: &'static str,
    mapping: Mapping,
}

impl JsonNormalizer {
    /// A normalizer with `defaults`, overridden by `options`.
    pub fn new(format: &'static str, defaults: Mapping, options: &FormatOptions) -> Result<Self> {
        let mut mapping = defaults;
        if let Some(source) = &options.source {
            mapping.source = source.clone();
        }
        if let Some(class) = &options.class {
            mapping.class = Some(class.clone());
        }
        for (column, field) in &options.fields {
            let Some(i) = MAPPABLE.iter().position(|c| c == column) else {
                return Err(Error::InvalidMapping {
                    column: column.clone(),
                    reason: format!("not a mappable column; use one of {}", MAPPABLE.join(", ")),
                });
            };
            if field.split('.').any(str::is_empty) {
                return Err(Error::InvalidMapping {
                    column: column.clone(),
                    reason: format!("`{field}` is not a dotted field path"),
                });
            }
            mapping.paths[i] = vec![split_path(field)];
        }
        Ok(JsonNormalizer { format, mapping })
    }

    fn lookup<'t, 'i>(&self, v: V<'t, 'i>, column: usize) -> Option<(V<'t, 'i>, &[String])> {
        self.mapping.paths[column].iter().find_map(|p| {
            let keys: Vec<&str> = p.iter().map(String::as_str).collect();
            path(v, &keys).filter(|x| !x.is_null()).map(|x| (x, p.as_slice()))
        })
    }
}

fn outcome_word(s: &str) -> &'static str {
    match s.to_ascii_lowercase().as_str() {
        "success" | "succeeded" | "successful" | "ok" | "allow" | "allowed" | "true" | "pass" => outcome::SUCCESS,
        "failure" | "failed" | "fail" | "deny" | "denied" | "error" | "false" | "rejected" | "blocked" => {
            outcome::FAILURE
        }
        _ => outcome::UNKNOWN,
    }
}

impl Normalizer for JsonNormalizer {
    fn format(&self) -> &'static str {
        self.format
    }

    fn source(&self) -> &str {
        &self.mapping.source
    }

    fn framing(&self) -> Framing {
        Framing::Json { envelope_key: None }
    }

    fn normalize(
        &self,
        raw: &[u8],
        provenance: &Provenance<'_>,
        scratch: &mut Scratch,
        out: &mut EventBatchBuilder,
    ) -> Result<(), Rejection> {
        scratch.with_json(raw, |v, attrs| {
            if !v.is_object() {
                return Err(Rejection::new(ReasonCode::NotAnObject, "a JSON log record must be a JSON object"));
            }
            let mut lifted: Vec<&str> = Vec::new();
            let mut get = |column: &str| -> Option<V<'_, '_>> {
                let i = MAPPABLE.iter().position(|c| *c == column)?;
                let (value, p) = self.lookup(v, i)?;
                if p.len() == 1 && column != "outcome" {
                    lifted.push(p[0].as_str());
                }
                Some(value)
            };
            let time_value = get("time").ok_or_else(|| {
                Rejection::new(ReasonCode::InvalidTime, "no time field (map one with `fields.time = \"path\"`)")
            })?;
            let time_us = if let Some(s) = time_value.as_str() {
                parse_rfc3339_us(s).or_else(|| parse_clf_us(s))
            } else {
                number(Some(time_value)).and_then(epoch_number_us)
            }
            .ok_or_else(|| {
                Rejection::new(
                    ReasonCode::InvalidTime,
                    "the time field is neither an RFC 3339 time nor an epoch number",
                )
            })?;

            let s = scalar_text;
            let http_status = match get("http_status") {
                Some(x) => Some(
                    number(Some(x))
                        .filter(|n| n.fract() == 0.0 && (0.0..1000.0).contains(n))
                        .map(|n| n as i32)
                        .ok_or_else(|| {
                            Rejection::new(ReasonCode::InvalidField, "http_status is not an HTTP status number")
                        })?,
                ),
                None => None,
            };
            let bytes = get("bytes")
                .and_then(|x| if x.as_str() == Some("-") { Some(0.0) } else { number(Some(x)) })
                // `as` saturates a finite float; NaN and infinities (from strings) are no size
                .filter(|n| n.is_finite())
                .map(|n| n as i64);
            let ip_field = get("src_ip");
            let ip_text = text(ip_field);
            let src_ip = ip_text.and_then(canonical_ip);
            let ip_rewritten = ip_text.is_some() && !matches!(src_ip, Some(Cow::Borrowed(_)));
            let mut method = s(get("http_method"));
            let mut http_path = s(get("http_path"));
            let mut target = s(get("target_resource"));
            let mut activity = s(get("activity"));
            if self.mapping.parse_request
                && (method.is_none() || http_path.is_none())
                && let Some((m, t, _)) = text(v.get("request")).and_then(split_request)
            {
                let (_, p) = split_absolute(t);
                method = method.or(Some(Cow::Borrowed(m)));
                activity = activity.or(Some(Cow::Borrowed(m)));
                http_path = http_path.or(Some(Cow::Borrowed(p)));
                target = target.or(Some(Cow::Borrowed(p)));
            }
            let outcome_value = get("outcome");
            let outcome = match (outcome_value, http_status) {
                (Some(o), _) => o
                    .as_str()
                    .map(outcome_word)
                    .or_else(|| o.as_bool().map(|b| if b { outcome::SUCCESS } else { outcome::FAILURE }))
                    .unwrap_or(outcome::UNKNOWN),
                (None, Some(st)) if st < 400 => outcome::SUCCESS,
                (None, Some(_)) => outcome::FAILURE,
                (None, None) => outcome::UNKNOWN,
            };
            let class = s(get("class"))
                .or_else(|| self.mapping.class.as_deref().map(Cow::Borrowed))
                .or_else(|| Some(Cow::Borrowed(self.mapping.class_of_activity?(activity.as_deref()?))));
            let row = EventRow {
                time_us,
                source: Cow::Borrowed(self.mapping.source.as_str()),
                class,
                activity,
                outcome: Cow::Borrowed(outcome),
                actor_user: s(get("actor_user")).filter(|u| u != "-"),
                actor_type: s(get("actor_type")),
                src_ip,
                user_agent: s(get("user_agent")).filter(|u| u != "-"),
                mfa: boolean(get("mfa")),
                target_user: s(get("target_user")),
                target_resource: target,
                privilege: s(get("privilege")),
                http_method: method,
                http_path,
                http_status,
                bytes,
                latency_ms: number(get("latency_ms")).filter(|n| n.is_finite()),
                cloud_account: s(get("cloud_account")),
                region: s(get("region")),
                attrs: None,
            };
            let ip_key = self.lookup(v, 6).and_then(|(_, p)| (p.len() == 1).then(|| p[0].as_str()));
            write_attrs(
                raw,
                |k| {
                    let k = std::str::from_utf8(k).unwrap_or("");
                    !lifted.contains(&k) || (ip_rewritten && Some(k) == ip_key)
                },
                attrs,
            )
            .map_err(|e| Rejection::new(ReasonCode::InvalidJson, format!("invalid JSON structure: {e}")))?;
            let row = EventRow { attrs: (!attrs.is_empty()).then_some(Cow::Borrowed(attrs.as_str())), ..row };
            out.append(&row, raw, provenance);
            Ok(())
        })
    }
}

/// A JSON format's normalizer: `defaults`, overridden by the input's `source`, `class` and `fields`.
fn build(format: &'static str, defaults: Mapping, options: &FormatOptions) -> Result<Arc<dyn crate::Normalizer>> {
    Ok(Arc::new(JsonNormalizer::new(format, defaults, options)?))
}

/// The `web_access_json` format's normalizer.
pub(crate) fn build_web_access(options: &FormatOptions) -> Result<Arc<dyn crate::Normalizer>> {
    build("web_access_json", Mapping::web_access(), options)
}

/// The `okta` format's normalizer.
pub(crate) fn build_okta(options: &FormatOptions) -> Result<Arc<dyn crate::Normalizer>> {
    build("okta", Mapping::okta(), options)
}

/// The `github_audit` format's normalizer.
pub(crate) fn build_github_audit(options: &FormatOptions) -> Result<Arc<dyn crate::Normalizer>> {
    build("github_audit", Mapping::github_audit(), options)
}

/// The `json` format's normalizer (the mapping comes from the input's `fields`).
pub(crate) fn build_generic(options: &FormatOptions) -> Result<Arc<dyn crate::Normalizer>> {
    build("json", Mapping::generic(), options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Format, RawRecords, normalize_records};
    use std::collections::BTreeMap;

    fn cell(out: &crate::NormalizedBatch, row: usize, c: &str) -> String {
        arrow::util::display::array_value_to_string(out.batches[0].column_by_name(c).unwrap(), row).unwrap()
    }

    #[test]
    fn web_access_json_defaults() {
        let n = Format::WebAccessJson.build(&FormatOptions::default()).unwrap();
        let mut records = RawRecords::default();
        records.push(1, br#"{"timestamp": "2015-10-25T03:11:25Z", "remote_addr": "195.154.46.135", "remote_user": null, "request": "GET http://x.example/wp-login.php HTTP/1.1", "status": 404, "body_bytes_sent": 10, "http_referer": "-", "http_user_agent": "Mozilla/5.0"}"#);
        let out = normalize_records(n.as_ref(), records, "t", 0, 0, 8);
        assert_eq!(out.rows(), 1, "{:?}", out.dead_letters);
        assert_eq!(cell(&out, 0, "http_path"), "/wp-login.php");
        assert_eq!(cell(&out, 0, "http_method"), "GET");
        assert_eq!(cell(&out, 0, "outcome"), "failure");
        assert_eq!(cell(&out, 0, "source"), "web.access");
        let attrs = cell(&out, 0, "attrs");
        assert!(
            attrs.contains("http_referer") && attrs.contains("request") && !attrs.contains("remote_addr"),
            "{attrs}"
        );
    }

    #[test]
    fn okta_and_github_audit_defaults() {
        let okta = Format::Okta.build(&FormatOptions::default()).unwrap();
        let mut records = RawRecords::default();
        records.push(1, br#"{"published":"2022-03-22 14:21:53.225","eventType":"user.mfa.factor.deactivate","outcome":{"result":"SUCCESS"},"actor":{"alternateId":"homer@springfield.gov","type":"User"},"client":{"ipAddress":"1.1.1.1","userAgent":{"rawUserAgent":"Mozilla/5.0"}},"target":[{"alternateId":"bart@springfield.gov","displayName":"Bart"}]}"#);
        records.push(2, br#"{"published":"2022-03-22T14:21:53Z","eventType":"user.session.start","outcome":{"result":"FAILURE"},"actor":{"alternateId":"x@y"}}"#);
        let out = normalize_records(okta.as_ref(), records, "t", 0, 0, 8);
        assert!(out.dead_letters.is_empty(), "{:?}", out.dead_letters);
        let row = |r, c| cell(&out, r, c);
        assert_eq!(row(0, "source"), OKTA_SOURCE);
        assert_eq!(
            (row(0, "class"), row(0, "activity")),
            ("account_change".into(), "user.mfa.factor.deactivate".into())
        );
        assert_eq!(
            (row(0, "outcome"), row(0, "actor_user"), row(0, "src_ip")),
            ("success".into(), "homer@springfield.gov".into(), "1.1.1.1".into())
        );
        assert_eq!(
            (row(0, "target_user"), row(0, "user_agent")),
            ("bart@springfield.gov".into(), "Mozilla/5.0".into())
        );
        assert_eq!((row(1, "class"), row(1, "outcome")), ("authentication".into(), "failure".into()));

        let github = Format::GithubAudit.build(&FormatOptions::default()).unwrap();
        let mut records = RawRecords::default();
        records.push(1, br#"{"actor":"cat","action":"org.disable_two_factor_requirement","created_at":1621305118553,"org":"my-org"}"#);
        records.push(2, br#"{"actor":"cat","action":"repo.destroy","@timestamp":1621305118553,"repo":"my-org/my-repo","org":"my-org"}"#);
        let out = normalize_records(github.as_ref(), records, "t", 0, 0, 8);
        assert!(out.dead_letters.is_empty(), "{:?}", out.dead_letters);
        let row = |r, c| cell(&out, r, c);
        assert_eq!(
            (row(0, "source"), row(0, "class"), row(0, "actor_user")),
            (GITHUB_SOURCE.into(), "account_change".into(), "cat".into())
        );
        assert_eq!(
            (row(1, "class"), row(1, "target_resource"), row(1, "cloud_account")),
            ("api_activity".into(), "my-org/my-repo".into(), "my-org".into())
        );
        // the value, not its display: displaying a "UTC" timestamp needs arrow's chrono-tz, which only a
        // workspace build (DataFusion) turns on
        let time = out.batches[0].column_by_name("time").unwrap();
        let time = time.as_any().downcast_ref::<arrow::array::TimestampMicrosecondArray>().unwrap().value(0);
        assert_eq!(vigil_schema::format_time_us(time), "2021-05-18T02:31:58.553000Z");
    }

    #[test]
    fn generic_mapping_from_config() {
        let options = FormatOptions {
            source: Some("myapp.audit".into()),
            class: Some("authentication".into()),
            fields: BTreeMap::from([
                ("actor_user".into(), "user.name".into()),
                ("outcome".into(), "result".into()),
                ("time".into(), "ts".into()),
            ]),
            ..FormatOptions::default()
        };
        let n = Format::Json.build(&options).unwrap();
        let mut records = RawRecords::default();
        records.push(1, br#"{"ts": 1700000000, "user": {"name": "ann"}, "result": "DENIED", "extra": [1]}"#);
        records.push(2, br#"{"user": {"name": "ann"}}"#);
        let out = normalize_records(n.as_ref(), records, "t", 0, 0, 8);
        assert_eq!(out.rows(), 1);
        assert_eq!(out.dead_letters[0].code, ReasonCode::InvalidTime);
        assert_eq!(cell(&out, 0, "actor_user"), "ann");
        assert_eq!(cell(&out, 0, "outcome"), "failure");
        assert_eq!(cell(&out, 0, "source"), "myapp.audit");
        assert_eq!(cell(&out, 0, "attrs"), r#"{"user":{"name": "ann"},"result":"DENIED","extra":[1]}"#);
        let bad = FormatOptions { fields: BTreeMap::from([("raw".into(), "x".into())]), ..FormatOptions::default() };
        assert!(Format::Json.build(&bad).unwrap_err().to_string().contains("mappable"));
    }
}
