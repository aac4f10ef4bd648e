//! Which events a Sigma `logsource` selects, and what each Sigma field name reads in them.
//!
//! | logsource | events (`source`) | a field `a.b.c` reads |
//! | --- | --- | --- |
//! | `product: aws`, `service: cloudtrail` | `aws.cloudtrail` | the record's own member `a` → `b` → `c` |
//! | `product: kubernetes`, `service: audit` | `k8s.audit` | the record's own member path |
//! | `product: github`, `service: audit` | `github.audit` | the record's own member path |
//! | `product: okta` (`service: okta`) | `okta.system_log` | the record's own member path |
//! | `product: linux` (no service, `syslog`, `auth`; `sshd`, `sudo`, `su` select the lines of that program) | `linux.auth` | keywords only |
//! | `category: webserver`, `category: proxy` | `web.access` | the access-log fields below |
//!
//! **The record's own fields.** Sigma names the fields of the vendor's record (`eventName`,
//! `requestParameters.userName`, `objectRef.resource`), so for JSON sources a field is read from the
//! record as received (`raw`), never from a canonical column a normalizer may have reshaped. A dot
//! separates nested members; a key that itself holds a dot is not reachable. The value is the member's
//! text: a string decoded, a number, `true`/`false` or an object or array as its JSON text as written in
//! the record; JSON `null` and a missing member read as null. A path never steps into an array (an
//! all-digit step is refused), and a path through a member that is an array reads null.
//!
//! **Access logs** (`web.access`, from `apache_combined` or `web_access_json`):
//!
//! | Sigma field | reads |
//! | --- | --- |
//! | `cs-method`, `c-method` | `http_method` |
//! | `cs-uri`, `c-uri`, `cs-uri-query` | `http_path`: the request target as sent, path and query (SigmaHQ's web rules use `cs-uri-query` for the whole target) |
//! | `cs-uri-stem`, `c-uri-stem` | `http_path` up to the first `?` |
//! | `c-uri-query` | `http_path` after the first `?` (null without one) |
//! | `c-uri-extension` | the text after the last `.` of the last `/` segment of the stem (null without a dot) |
//! | `c-useragent`, `cs-user-agent`, `cs(User-Agent)` | `user_agent` |
//! | `sc-status` | `http_status` as text |
//! | `cs-referer`, `cs(Referer)` | the referer kept in `attrs` (`referer` from combined lines, `http_referer` from JSON access logs) |
//! | `cs-host`, `c-host`, `cs(Host)` | `attrs.host`: the host of an absolute-URI request line (combined format), or a JSON access log's own `host` member |
//! | `cs-username` | `actor_user` |
//!
//! Any other field (`dst_ip`, `cs-cookie`, ...) is not in access logs: the rule is refused rather than
//! loaded to never match. The normalizers keep no empty text in these columns, and no `-` as user agent
//! or user: a value that would match `""` (or `-` there), `null` and `exists` are refused on them, since
//! the column cannot tell those records from ones without the field.
//!
//! **Keywords** (values without a field) search the record as received: `raw` as text (a record that is
//! not UTF-8 is not searched).
//!
//! Entra ID, Google Workspace, OneLogin, Windows and every other logsource are refused: vigil has no
//! normalizer for them yet.

use crate::error::{Refusal, Refused, refuse};

/// The canonical `source` values (vigil-normalize's constants; vigil-sigma does not depend on it).
pub(crate) const CLOUDTRAIL: &str = "aws.cloudtrail";
pub(crate) const K8S: &str = "k8s.audit";
pub(crate) const GITHUB: &str = "github.audit";
pub(crate) const OKTA: &str = "okta.system_log";
pub(crate) const LINUX: &str = "linux.auth";
pub(crate) const WEB: &str = "web.access";

/// How fields are read for a logsource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fields {
    /// The record's own JSON members.
    Json,
    /// The access-log table.
    Web,
    /// No fields: keywords only.
    None,
}

/// What a rule's logsource selects.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Selection {
    /// The `source` value.
    pub source: &'static str,
    /// A further condition on the events (SQL), e.g. the program of syslog lines.
    pub filter: Option<String>,
    /// How fields are read.
    pub fields: Fields,
    /// `product/service/category` as written, for the header.
    pub label: String,
}

/// The record as text, for keywords: `raw`, or null when it is not UTF-8.
pub(crate) const RAW_TEXT: &str = "TRY_CAST(raw AS VARCHAR)";

/// The logsource of a rule.
pub(crate) fn selection(
    line: u64,
    product: Option<&str>,
    service: Option<&str>,
    category: Option<&str>,
) -> Result<Selection, Refused> {
    let label = [("product", product), ("service", service), ("category", category)]
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}: {v}")))
        .collect::<Vec<_>>()
        .join(", ");
    let select = |source, fields| Ok(Selection { source, filter: None, fields, label: label.clone() });
    match (product, service, category) {
        (Some("aws"), Some("cloudtrail"), None) => select(CLOUDTRAIL, Fields::Json),
        (Some("kubernetes"), Some("audit"), None | Some("application")) => select(K8S, Fields::Json),
        (Some("github"), Some("audit"), None | Some("application")) => select(GITHUB, Fields::Json),
        (Some("okta"), None | Some("okta"), None) => select(OKTA, Fields::Json),
        (Some("linux"), None | Some("syslog") | Some("auth"), None) => select(LINUX, Fields::None),
        (Some("linux"), Some(program @ ("sshd" | "sudo" | "su")), None) => Ok(Selection {
            source: LINUX,
            filter: Some(format!("json_get_str(attrs, 'program') = '{program}'")),
            fields: Fields::None,
            label,
        }),
        (None, None, Some("webserver" | "proxy")) => select(WEB, Fields::Web),
        _ => refuse(
            line,
            Refusal::Logsource,
            format!(
                "logsource `{}`: vigil has no normalizer for these logs (it maps aws/cloudtrail, kubernetes/audit, github/audit, okta, linux syslog/auth/sshd/sudo/su, webserver and proxy)",
                if label.is_empty() { "(empty)".to_string() } else { label.clone() }
            ),
        ),
    }
}

/// Texts a field's column reads as null although the record holds them: the access-log normalizers
/// keep no empty text in a column, and no `-` (the log's "none") as user agent or user. A value whose
/// match on one of these would be true is refused (see `values::check_nullish`).
pub(crate) fn nullish(fields: Fields, name: &str) -> &'static [&'static str] {
    match (fields, name) {
        (Fields::Web, "c-useragent" | "cs-user-agent" | "cs(User-Agent)" | "cs-username") => &["", "-"],
        (Fields::Web, "cs-referer" | "cs(Referer)" | "cs-host" | "c-host" | "cs(Host)") => &[],
        (Fields::Web, _) => &[""],
        _ => &[],
    }
}

/// The SQL text expression a field reads for `fields`, or a refusal.
pub(crate) fn field(line: u64, fields: Fields, name: &str) -> Result<String, Refused> {
    match fields {
        Fields::Json => json_field(line, name),
        Fields::Web => web_field(line, name),
        Fields::None => refuse(
            line,
            Refusal::Field,
            format!("field `{name}`: vigil reads syslog lines as text, so rules for them may only use keywords"),
        ),
    }
}

fn json_field(line: u64, name: &str) -> Result<String, Refused> {
    let steps: Vec<&str> = name.split('.').collect();
    if steps.iter().any(|s| s.is_empty()) {
        return refuse(line, Refusal::Field, format!("field `{name}` has an empty step between dots"));
    }
    if let Some(step) = steps.iter().find(|s| s.bytes().all(|b| b.is_ascii_digit())) {
        return refuse(
            line,
            Refusal::Field,
            format!("field `{name}`: the step `{step}` would index an array, which Sigma field names do not define"),
        );
    }
    let path: Vec<String> = steps.iter().map(|s| sql_str(s)).collect();
    Ok(format!("json_as_text({RAW_TEXT}, {})", path.join(", ")))
}

/// The path before the query string.
const STEM: &str = "split_part(http_path, '?', 1)";

fn web_field(line: u64, name: &str) -> Result<String, Refused> {
    Ok(match name {
        "cs-method" | "c-method" => "http_method".into(),
        "cs-uri" | "c-uri" | "cs-uri-query" => "http_path".into(),
        "cs-uri-stem" | "c-uri-stem" => STEM.into(),
        "c-uri-query" => {
            "CASE WHEN strpos(http_path, '?') > 0 THEN substr(http_path, strpos(http_path, '?') + 1) END".into()
        }
        "c-uri-extension" => {
            let segment = format!("regexp_replace({STEM}, '(?s)^.*/', '')");
            format!("CASE WHEN strpos({segment}, '.') > 0 THEN regexp_replace({segment}, '(?s)^.*[.]', '') END")
        }
        "c-useragent" | "cs-user-agent" | "cs(User-Agent)" => "user_agent".into(),
        "sc-status" => "CAST(http_status AS VARCHAR)".into(),
        "cs-referer" | "cs(Referer)" => {
            "coalesce(json_as_text(attrs, 'referer'), json_as_text(attrs, 'http_referer'))".into()
        }
        "cs-host" | "c-host" | "cs(Host)" => "json_as_text(attrs, 'host')".into(),
        "cs-username" => "actor_user".into(),
        _ => {
            return refuse(
                line,
                Refusal::Field,
                format!(
                    "field `{name}` is not in access logs (vigil maps cs-method, cs-uri, c-uri, cs-uri-query, cs-uri-stem, c-uri-query, c-uri-extension, c-useragent, cs-user-agent, sc-status, cs-referer, cs-host, cs-username)"
                ),
            );
        }
    })
}

/// `text` as a SQL string literal.
pub(crate) fn sql_str(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logsources_and_fields() {
        let ct = selection(3, Some("aws"), Some("cloudtrail"), None).unwrap();
        assert_eq!((ct.source, ct.fields), (CLOUDTRAIL, Fields::Json));
        assert_eq!(
            field(1, ct.fields, "userIdentity.type").unwrap(),
            "json_as_text(TRY_CAST(raw AS VARCHAR), 'userIdentity', 'type')"
        );
        assert_eq!(field(4, ct.fields, "a.0.b").unwrap_err().line, 4);
        assert!(field(4, ct.fields, "a..b").is_err());
        let err = selection(7, Some("azure"), Some("signinlogs"), None).unwrap_err();
        assert_eq!((err.line, err.kind), (7, Refusal::Logsource));
        assert!(err.reason.contains("product: azure, service: signinlogs"), "{}", err.reason);
        let sshd = selection(1, Some("linux"), Some("sshd"), None).unwrap();
        assert_eq!(sshd.filter.as_deref(), Some("json_get_str(attrs, 'program') = 'sshd'"));
        assert!(field(1, sshd.fields, "user").is_err());
        assert!(selection(1, Some("linux"), Some("auditd"), None).is_err());
        let web = selection(1, None, None, Some("proxy")).unwrap();
        assert_eq!(field(1, web.fields, "cs-method").unwrap(), "http_method");
        assert_eq!(field(2, web.fields, "dst_ip").unwrap_err().kind, Refusal::Field);
        assert_eq!(sql_str("it's"), "'it''s'");
    }
}
