//! AWS CloudTrail records (`source = aws.cloudtrail`).
//!
//! Accepted framings: one record per line, `{"Records":[...]}` S3 log objects, bare JSON arrays, and
//! Logstash-reshaped records (no `eventTime`, time in `@timestamp`).
//!
//! | column | filled from |
//! | --- | --- |
//! | `time` | `eventTime`, else `@timestamp` (Logstash), else `p_event_time` (Panther data lake); none parses: dead letter `invalid_time` |
//! | `class` | `authentication` for `ConsoleLogin`, `AssumeRole*`, `GetSessionToken`, `GetFederationToken`, `CheckMfa`, `ExternalIdPDirectoryLogin`; `account_change` for IAM calls that change something (not `Get*`/`List*`/`Generate*`/`Simulate*`); else `api_activity` |
//! | `activity` | `eventName` (required: `missing_field` otherwise) |
//! | `outcome` | `failure` when `errorCode` is set or `responseElements.ConsoleLogin` is `Failure`; else `success` |
//! | `actor_user` | `userIdentity.arn`, else `userIdentity.userName`, `principalId`, `invokedBy` |
//! | `actor_type` | `userIdentity.type` (`IAMUser`, `Root`, `AssumedRole`, `AWSService`, ...) |
//! | `src_ip` | `sourceIPAddress` when it is an address (leading zeros read as decimal); null for service names |
//! | `user_agent` | `userAgent` |
//! | `mfa` | `additionalEventData.MFAUsed` (`Yes`/`No`), else `userIdentity.sessionContext.attributes.mfaAuthenticated` |
//! | `target_user` | `requestParameters.userName` |
//! | `target_resource` | `resources[0].ARN`, else the first of `requestParameters.` `roleArn`, `policyArn`, `bucketName`, `secretId`, `name`, `roleName`, `groupName`, `functionName`, `trailName`, `groupId`, `instanceId`, `keyId`, `dBInstanceIdentifier`, `userName` |
//! | `privilege` | `requestParameters.policyArn` (or `policyName`) on policy calls, `groupName` on `AddUserToGroup`/`RemoveUserFromGroup`, `roleArn` on `AssumeRole*` |
//! | `cloud_account` | `recipientAccountId`, else `userIdentity.accountId` |
//! | `region` | `awsRegion` |
//! | `attrs` | every top-level member except `eventTime`, `eventName`, `awsRegion`, `userAgent`, `recipientAccountId`, and `sourceIPAddress` when `src_ip` holds it verbatim |
//!
//! HTTP columns, `bytes` and `latency_ms` stay null.

use std::borrow::Cow;

use vigil_schema::{EventBatchBuilder, EventRow, Provenance, class, outcome};

use crate::fields::{V, boolean, canonical_ip, path, str_at, text, write_attrs};
use crate::time::parse_rfc3339_us;
use crate::{Framing, Normalizer, ReasonCode, Rejection, Scratch};

/// The canonical `source` of CloudTrail events.
pub const SOURCE: &str = "aws.cloudtrail";

/// The CloudTrail normalizer.
#[derive(Debug, Clone, Copy, Default)]
pub struct CloudTrail;

const TARGET_KEYS: [&str; 14] = [
    "roleArn",
    "policyArn",
    "bucketName",
    "secretId",
    "name",
    "roleName",
    "groupName",
    "functionName",
    "trailName",
    "groupId",
    "instanceId",
    "keyId",
    "dBInstanceIdentifier",
    "userName",
];

fn class_of(event_source: Option<&str>, name: &str) -> &'static str {
    match name {
        "ConsoleLogin" | "GetSessionToken" | "GetFederationToken" | "CheckMfa" | "ExternalIdPDirectoryLogin" => {
            return class::AUTHENTICATION;
        }
        n if n.starts_with("AssumeRole") => return class::AUTHENTICATION,
        _ => {}
    }
    let read_only = ["Get", "List", "Generate", "Simulate"].iter().any(|p| name.starts_with(p));
    if event_source == Some("iam.amazonaws.com") && !read_only { class::ACCOUNT_CHANGE } else { class::API_ACTIVITY }
}

fn privilege_of<'i>(name: &str, params: Option<V<'_, 'i>>) -> Option<&'i str> {
    let params = params?;
    if name.contains("Policy") {
        str_at(params, "policyArn").or_else(|| str_at(params, "policyName"))
    } else if name == "AddUserToGroup" || name == "RemoveUserFromGroup" {
        str_at(params, "groupName")
    } else if name.starts_with("AssumeRole") {
        str_at(params, "roleArn")
    } else {
        None
    }
}

impl Normalizer for CloudTrail {
    fn format(&self) -> &'static str {
        "cloudtrail"
    }

    fn source(&self) -> &str {
        SOURCE
    }

    fn framing(&self) -> Framing {
        Framing::Json { envelope_key: Some("Records") }
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
                return Err(Rejection::new(ReasonCode::NotAnObject, "a CloudTrail record must be a JSON object"));
            }
            let time_text =
                text(v.get("eventTime")).or_else(|| text(v.get("@timestamp"))).or_else(|| text(v.get("p_event_time")));
            let Some(time_text) = time_text else {
                return Err(Rejection::new(
                    ReasonCode::InvalidTime,
                    "no eventTime (nor @timestamp, p_event_time) in the record",
                ));
            };
            let time_us = parse_rfc3339_us(time_text).ok_or_else(|| {
                Rejection::new(ReasonCode::InvalidTime, format!("eventTime `{time_text}` is not an RFC 3339 time"))
            })?;
            let name = str_at(v, "eventName")
                .ok_or_else(|| Rejection::new(ReasonCode::MissingField, "eventName is missing or not a string"))?;
            let identity = v.get("userIdentity");
            let params = v.get("requestParameters").filter(|p| p.is_object());
            let ip_text = str_at(v, "sourceIPAddress");
            let src_ip = ip_text.and_then(canonical_ip);
            let ip_verbatim = matches!((&src_ip, ip_text), (Some(Cow::Borrowed(_)), Some(_)));
            let failed = text(v.get("errorCode")).is_some()
                || text(path(v, &["responseElements", "ConsoleLogin"])) == Some("Failure");
            let mfa = boolean(path(v, &["additionalEventData", "MFAUsed"])).or_else(|| {
                boolean(identity.and_then(|i| path(i, &["sessionContext", "attributes", "mfaAuthenticated"])))
            });
            let target_resource = text(
                path(v, &["resources"]).and_then(|r| r.as_array()).and_then(|a| a.get(0)).and_then(|r| r.get("ARN")),
            )
            .or_else(|| params.and_then(|p| TARGET_KEYS.iter().find_map(|k| str_at(p, k))));

            write_attrs(
                raw,
                |k| {
                    !matches!(k, b"eventTime" | b"eventName" | b"awsRegion" | b"userAgent" | b"recipientAccountId")
                        && (!ip_verbatim || k != b"sourceIPAddress")
                },
                attrs,
            )
            .map_err(|e| Rejection::new(ReasonCode::InvalidJson, format!("invalid JSON structure: {e}")))?;

            let row = EventRow {
                time_us,
                source: Cow::Borrowed(SOURCE),
                class: Some(Cow::Borrowed(class_of(str_at(v, "eventSource"), name))),
                activity: Some(Cow::Borrowed(name)),
                outcome: Cow::Borrowed(if failed { outcome::FAILURE } else { outcome::SUCCESS }),
                actor_user: identity
                    .and_then(|i| {
                        str_at(i, "arn")
                            .or_else(|| str_at(i, "userName"))
                            .or_else(|| str_at(i, "principalId"))
                            .or_else(|| str_at(i, "invokedBy"))
                    })
                    .map(Cow::Borrowed),
                actor_type: identity.and_then(|i| str_at(i, "type")).map(Cow::Borrowed),
                src_ip,
                user_agent: str_at(v, "userAgent").map(Cow::Borrowed),
                mfa,
                target_user: params.and_then(|p| str_at(p, "userName")).map(Cow::Borrowed),
                target_resource: target_resource.map(Cow::Borrowed),
                privilege: privilege_of(name, params).map(Cow::Borrowed),
                cloud_account: str_at(v, "recipientAccountId")
                    .or_else(|| identity.and_then(|i| str_at(i, "accountId")))
                    .map(Cow::Borrowed),
                region: str_at(v, "awsRegion").map(Cow::Borrowed),
                attrs: (!attrs.is_empty()).then_some(Cow::Borrowed(attrs.as_str())),
                ..EventRow::default()
            };
            out.append(&row, raw, provenance);
            Ok(())
        })
    }
}

/// The `cloudtrail` format's normalizer (no options).
pub(crate) fn build(_: &crate::FormatOptions) -> crate::Result<std::sync::Arc<dyn crate::Normalizer>> {
    Ok(std::sync::Arc::new(CloudTrail))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RawRecords, normalize_records};
    use arrow::array::{Array, AsArray};

    fn one(line: &str) -> crate::NormalizedBatch {
        let mut records = RawRecords::default();
        records.push(1, line.as_bytes());
        normalize_records(&CloudTrail, records, "t", 0, 0, 64)
    }

    fn col(out: &crate::NormalizedBatch, name: &str) -> Option<String> {
        let c = out.batches[0].column_by_name(name)?;
        if c.is_null(0) {
            return None;
        }
        Some(arrow::util::display::array_value_to_string(c, 0).unwrap())
    }

    #[test]
    fn console_login_without_mfa() {
        let out = one(
            r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/bob","accountId":"1","userName":"bob"},"eventTime":"2024-08-02T08:53:24Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1","sourceIPAddress":"010.001.002.003","userAgent":"Mozilla","requestParameters":null,"responseElements":{"ConsoleLogin":"Success"},"additionalEventData":{"MFAUsed":"No"},"eventID":"e1","recipientAccountId":"1"}"#,
        );
        assert!(out.dead_letters.is_empty(), "{:?}", out.dead_letters);
        assert_eq!(col(&out, "class").as_deref(), Some("authentication"));
        assert_eq!(col(&out, "outcome").as_deref(), Some("success"));
        assert_eq!(col(&out, "mfa").as_deref(), Some("false"));
        assert_eq!(col(&out, "src_ip").as_deref(), Some("10.1.2.3"));
        assert_eq!(col(&out, "actor_user").as_deref(), Some("arn:aws:iam::1:user/bob"));
        let attrs = col(&out, "attrs").unwrap();
        assert!(attrs.contains(r#""sourceIPAddress":"010.001.002.003""#), "non-verbatim IP kept: {attrs}");
        assert!(attrs.contains(r#""eventID":"e1""#));
        assert!(!attrs.contains("eventTime"));
        let raw = out.batches[0].column_by_name("raw").unwrap().as_binary::<i32>().value(0).to_vec();
        assert!(raw.starts_with(br#"{"eventVersion""#));
    }

    #[test]
    fn logstash_reshaped_record_uses_at_timestamp() {
        let out = one(
            r#"{"eventName":"ListBuckets","@timestamp":"2020-09-14T00:44:23.000Z","eventSource":"s3.amazonaws.com","userIdentity":{"type":"IAMUser","userName":"pedro"}}"#,
        );
        assert_eq!(out.rows(), 1);
        assert_eq!(col(&out, "actor_user").as_deref(), Some("pedro"));
    }

    #[test]
    fn refusals_name_the_field() {
        let out = one(r#"{"eventName":"X"}"#);
        assert_eq!(out.dead_letters[0].code, ReasonCode::InvalidTime);
        let out = one(r#"{"eventTime":"2024-08-02T08:53:24Z"}"#);
        assert_eq!(out.dead_letters[0].code, ReasonCode::MissingField);
        let out = one("[1,2]");
        assert_eq!(out.dead_letters[0].code, ReasonCode::NotAnObject);
        let out = one(r#"{"eventTime":"yesterday","eventName":"X"}"#);
        assert!(out.dead_letters[0].reason.contains("yesterday"));
    }

    #[test]
    fn iam_policy_attach_is_account_change_with_privilege() {
        let out = one(
            r#"{"eventTime":"2024-08-02T08:53:24Z","eventSource":"iam.amazonaws.com","eventName":"AttachUserPolicy","errorCode":"AccessDenied","requestParameters":{"userName":"eve","policyArn":"arn:aws:iam::aws:policy/AdministratorAccess"}}"#,
        );
        assert_eq!(col(&out, "class").as_deref(), Some("account_change"));
        assert_eq!(col(&out, "outcome").as_deref(), Some("failure"));
        assert_eq!(col(&out, "privilege").as_deref(), Some("arn:aws:iam::aws:policy/AdministratorAccess"));
        assert_eq!(col(&out, "target_user").as_deref(), Some("eve"));
    }
}
