//! Kubernetes API-server audit events, `audit.k8s.io/v1` (and `v1beta1`) `Event` (`source = k8s.audit`).
//!
//! Accepted framings: one event per line, or an `EventList` document (`items`). A record whose `kind` is
//! present but not `"Event"` (such as the malformed `{"kind": 0}`) is dead-lettered `invalid_field`.
//!
//! | column | filled from |
//! | --- | --- |
//! | `time` | `requestReceivedTimestamp`, else `stageTimestamp`, `metadata.creationTimestamp`, `p_event_time` (Panther data lake) |
//! | `class` | `account_change` for writes to `(cluster)roles`, `(cluster)rolebindings`, `serviceaccounts`; else `api_activity` |
//! | `activity` | `verb` and `objectRef.resource[/subresource]`: `create pods/exec`, `get secrets`, `create clusterrolebindings` |
//! | `outcome` | `responseStatus.code`: below 400 `success`, else `failure`; absent: `unknown` |
//! | `actor_user` | `user.username` (`impersonatedUser.username` when set, the impersonator stays in `attrs`) |
//! | `actor_type` | `Anonymous` (`system:anonymous`), `ServiceAccount` (`system:serviceaccount:*`), `Node` (`system:node:*`), `System` (other `system:*`), else `User` |
//! | `src_ip` | `sourceIPs[0]` |
//! | `user_agent` | `userAgent` |
//! | `target_user` | binding subjects' names, comma-separated (`requestObject.subjects[*].name`) |
//! | `target_resource` | `objectRef.namespace/objectRef.name` (or `name` alone when cluster-scoped) |
//! | `privilege` | `requestObject.roleRef.name` on bindings (`cluster-admin`) |
//! | `http_path` | `requestURI` |
//! | `http_status` | `responseStatus.code` |
//! | `attrs` | every top-level member except `requestReceivedTimestamp`, `userAgent`, `requestURI`, `verb` |
//!
//! `mfa`, `cloud_account`, `region`, `http_method`, `bytes`, `latency_ms` stay null.

use std::borrow::Cow;

use simd_json::prelude::*;
use vigil_schema::{EventBatchBuilder, EventRow, Provenance, class, outcome};

use crate::fields::{canonical_ip, path, str_at, text, write_attrs};
use crate::time::parse_rfc3339_us;
use crate::{Framing, Normalizer, ReasonCode, Rejection, Scratch};

/// The canonical `source` of Kubernetes audit events.
pub const SOURCE: &str = "k8s.audit";

/// The Kubernetes audit normalizer.
#[derive(Debug, Clone, Copy, Default)]
pub struct K8sAudit;

fn actor_type(user: &str) -> &'static str {
    if user == "system:anonymous" {
        "Anonymous"
    } else if user.starts_with("system:serviceaccount:") {
        "ServiceAccount"
    } else if user.starts_with("system:node:") {
        "Node"
    } else if user.starts_with("system:") {
        "System"
    } else {
        "User"
    }
}

impl Normalizer for K8sAudit {
    fn format(&self) -> &'static str {
        "k8s_audit"
    }

    fn source(&self) -> &str {
        SOURCE
    }

    fn framing(&self) -> Framing {
        Framing::Json { envelope_key: Some("items") }
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
                return Err(Rejection::new(ReasonCode::NotAnObject, "a Kubernetes audit event must be a JSON object"));
            }
            if let Some(kind) = v.get("kind")
                && kind.as_str() != Some("Event")
            {
                return Err(Rejection::new(ReasonCode::InvalidField, "kind must be \"Event\" (an audit.k8s.io Event)"));
            }
            let verb = str_at(v, "verb")
                .ok_or_else(|| Rejection::new(ReasonCode::MissingField, "verb is missing or not a string"))?;
            let time_text = text(v.get("requestReceivedTimestamp"))
                .or_else(|| text(v.get("stageTimestamp")))
                .or_else(|| text(path(v, &["metadata", "creationTimestamp"])))
                .or_else(|| text(v.get("p_event_time")))
                .ok_or_else(|| {
                    Rejection::new(
                        ReasonCode::InvalidTime,
                        "no requestReceivedTimestamp or stageTimestamp in the event",
                    )
                })?;
            let time_us = parse_rfc3339_us(time_text).ok_or_else(|| {
                Rejection::new(ReasonCode::InvalidTime, format!("timestamp `{time_text}` is not an RFC 3339 time"))
            })?;

            let object_ref = v.get("objectRef");
            let resource = object_ref.and_then(|o| str_at(o, "resource"));
            let subresource = object_ref.and_then(|o| str_at(o, "subresource"));
            let activity = match (resource, subresource) {
                (Some(r), Some(s)) => Cow::Owned(format!("{verb} {r}/{s}")),
                (Some(r), None) => Cow::Owned(format!("{verb} {r}")),
                _ => Cow::Borrowed(verb),
            };
            let target_resource = object_ref.and_then(|o| match (str_at(o, "namespace"), str_at(o, "name")) {
                (Some(ns), Some(n)) => Some(Cow::Owned(format!("{ns}/{n}"))),
                (None, Some(n)) => Some(Cow::Borrowed(n)),
                (Some(ns), None) => Some(Cow::Borrowed(ns)),
                (None, None) => None,
            });
            let is_rbac = matches!(
                resource,
                Some("roles" | "clusterroles" | "rolebindings" | "clusterrolebindings" | "serviceaccounts")
            );
            let writes = matches!(verb, "create" | "update" | "patch" | "delete" | "deletecollection");
            let status =
                path(v, &["responseStatus", "code"]).and_then(|c| c.as_i64()).and_then(|c| i32::try_from(c).ok());
            let user =
                text(path(v, &["impersonatedUser", "username"])).or_else(|| text(path(v, &["user", "username"])));
            let request_object = v.get("requestObject");
            let subjects = request_object
                .and_then(|o| o.get("subjects"))
                .and_then(|s| s.as_array())
                .map(|subjects| subjects.iter().filter_map(|s| str_at(s, "name")).collect::<Vec<_>>().join(","));
            let privilege = request_object.and_then(|o| path(o, &["roleRef", "name"])).and_then(|n| n.into_string());

            write_attrs(
                raw,
                |k| !matches!(k, b"requestReceivedTimestamp" | b"userAgent" | b"requestURI" | b"verb"),
                attrs,
            )
            .map_err(|e| Rejection::new(ReasonCode::InvalidJson, format!("invalid JSON structure: {e}")))?;

            let row = EventRow {
                time_us,
                source: Cow::Borrowed(SOURCE),
                class: Some(Cow::Borrowed(if is_rbac && writes { class::ACCOUNT_CHANGE } else { class::API_ACTIVITY })),
                activity: Some(activity),
                outcome: Cow::Borrowed(match status {
                    Some(c) if c < 400 => outcome::SUCCESS,
                    Some(_) => outcome::FAILURE,
                    None => outcome::UNKNOWN,
                }),
                actor_user: user.map(Cow::Borrowed),
                actor_type: user.map(|u| Cow::Borrowed(actor_type(u))),
                src_ip: text(v.get("sourceIPs").and_then(|s| s.as_array()).and_then(|a| a.get(0)))
                    .and_then(canonical_ip),
                user_agent: str_at(v, "userAgent").map(Cow::Borrowed),
                target_user: subjects.filter(|s| !s.is_empty()).map(Cow::Owned),
                target_resource,
                privilege: privilege.map(Cow::Borrowed),
                http_path: str_at(v, "requestURI").map(Cow::Borrowed),
                http_status: status,
                attrs: (!attrs.is_empty()).then_some(Cow::Borrowed(attrs.as_str())),
                ..EventRow::default()
            };
            out.append(&row, raw, provenance);
            Ok(())
        })
    }
}

/// The `k8s_audit` format's normalizer (no options).
pub(crate) fn build(_: &crate::FormatOptions) -> crate::Result<std::sync::Arc<dyn crate::Normalizer>> {
    Ok(std::sync::Arc::new(K8sAudit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RawRecords, normalize_records};

    #[test]
    fn exec_and_malformed() {
        let mut records = RawRecords::default();
        records.push(1, br#"{"kind":"Event","verb":"create","user":{"username":"minikube-user"},"objectRef":{"resource":"pods","subresource":"exec","namespace":"default","name":"nginx"},"requestReceivedTimestamp":"2018-10-26T13:38:34.000000Z","sourceIPs":["192.168.99.1"],"responseStatus":{"code":101},"requestURI":"/api/v1/namespaces/default/pods/nginx/exec?command=bash"}"#);
        records.push(2, br#"{"kind": 0}"#);
        let out = normalize_records(&K8sAudit, records, "t", 0, 0, 8);
        assert_eq!(out.rows(), 1);
        assert_eq!(out.dead_letters.len(), 1);
        assert_eq!(out.dead_letters[0].code, ReasonCode::InvalidField);
        let batch = &out.batches[0];
        let s = |c: &str| arrow::util::display::array_value_to_string(batch.column_by_name(c).unwrap(), 0).unwrap();
        assert_eq!(s("activity"), "create pods/exec");
        assert_eq!(s("target_resource"), "default/nginx");
        assert_eq!(s("outcome"), "success");
        assert_eq!(s("actor_type"), "User");
    }
}
