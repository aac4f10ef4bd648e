//! Generators of the JSON formats' records: values of every JSON shape (hostile ones included: lone
//! surrogates, big numbers, deep nesting, duplicate keys) laid out as each source's real records are.

use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;

use super::{clf_time, hostile_bytes, hostile_text, ip, request_line, rfc3339, word};

/// A JSON string literal of `s`, escaped as JSON writers do.
pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// JSON texts of strings, numbers and literals no writer should produce but that arrive anyway.
pub(crate) fn hostile_json_scalar() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        3 => hostile_text().prop_map(|s| json_string(&s).into_bytes()),
        1 => (hostile_text(), prop::sample::select(vec![
            "\\ud800", "\\udc00", "\\ud800\\ud800", "\\udbff\\udfff", "\\ud83d\\ude00", "\\u0000", "\\u00e9",
            "\\uD800x", "\\u12", "\\x41", "\\'", "\\/", "\\b\\f\\n\\r\\t", "\\uFFFF", "\\u",
        ])).prop_map(|(s, e)| format!("\"{}{e}\"", &json_string(&s)[1..json_string(&s).len() - 1]).into_bytes()),
        1 => hostile_bytes().prop_map(|b| {
            // raw bytes inside the quotes: invalid UTF-8, controls, unescaped quotes
            let mut v = b"\"".to_vec();
            v.extend_from_slice(&b);
            v.push(b'"');
            v
        }),
        2 => prop::sample::select(vec![
            "0", "-0", "1", "-1", "1.5", "1e308", "-1e308", "1e309", "1e999", "-1e999", "4.9e-324", "1e-400",
            "18446744073709551615", "18446744073709551616", "-9223372036854775808", "-9223372036854775809",
            "123456789012345678901234567890", "99999999999999999999999999999999999999999.5", "1E+2", "01", "-",
            "1.", ".5", "+1", "NaN", "Infinity", "-Infinity", "0x10", "1_000", "true", "false", "null", "tru", "nul",
            "1700000000", "1700000000000", "1700000000000000", "1700000000000000000", "253402300800", "1e17",
            "9.3e18", "-1700000000",
        ]).prop_map(|s| s.as_bytes().to_vec()),
    ]
    .boxed()
}

/// Any JSON value, nested: arrays and objects of hostile scalars, a few levels deep.
pub(crate) fn hostile_json_value() -> BoxedStrategy<Vec<u8>> {
    let leaf = hostile_json_scalar();
    let nested = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|items| {
                let mut v = b"[".to_vec();
                v.extend_from_slice(&items.join(&b','));
                v.push(b']');
                v
            }),
            prop::collection::vec((word(), inner), 0..4).prop_map(|members| {
                let parts: Vec<Vec<u8>> = members
                    .into_iter()
                    .map(|(k, v)| {
                        let mut m = json_string(&k).into_bytes();
                        m.push(b':');
                        m.extend_from_slice(&v);
                        m
                    })
                    .collect();
                let mut v = b"{".to_vec();
                v.extend_from_slice(&parts.join(&b','));
                v.push(b'}');
                v
            }),
        ]
    });
    prop_oneof![
        6 => nested,
        // deeply nested arrays and objects, closed or not
        1 => (1usize..3000, any::<bool>(), any::<bool>()).prop_map(|(depth, objects, closed)| {
            let (open, close): (&[u8], &[u8]) = if objects { (b"{\"a\":", b"}") } else { (b"[", b"]") };
            let mut v = open.repeat(depth);
            v.extend_from_slice(b"1");
            if closed {
                v.extend_from_slice(&close.repeat(depth));
            }
            v
        }),
    ]
    .boxed()
}

/// One field of a format's records: its key, and what real records hold there.
#[derive(Clone)]
pub(crate) enum Shape {
    /// A string from this generator.
    Text(fn() -> BoxedStrategy<String>),
    /// An RFC 3339 time (or, for formats that read them, an epoch number).
    Time { epoch: bool },
    /// A whole number in the range.
    Int(i64, i64),
    /// A boolean, or a string of one.
    Bool,
    /// An object of these fields.
    Object(&'static [(&'static str, Shape)]),
    /// An array of objects of these fields.
    Array(&'static [(&'static str, Shape)]),
}

pub(crate) fn any_text() -> BoxedStrategy<String> {
    prop_oneof![word(), "[a-zA-Z0-9 é日本-]{1,30}"].boxed()
}

pub(crate) fn ip_text() -> BoxedStrategy<String> {
    ip()
}

pub(crate) fn arn() -> BoxedStrategy<String> {
    word().prop_map(|w| format!("arn:aws:iam::123456789012:user/{w}")).boxed()
}

pub(crate) fn request_text() -> BoxedStrategy<String> {
    request_line(false).prop_map(|b| String::from_utf8(b).expect("plausible values are text")).boxed()
}

/// The value of a field: plausible for its shape, or (with `hostile`, one time in three) any JSON value.
pub(crate) fn json_value(shape: &Shape, hostile: bool) -> BoxedStrategy<Vec<u8>> {
    let plain: BoxedStrategy<Vec<u8>> = match shape {
        Shape::Text(text) => text().prop_map(|s| json_string(&s).into_bytes()).boxed(),
        Shape::Time { epoch } => {
            let text = rfc3339(false).prop_map(|s| json_string(&s).into_bytes()).boxed();
            if *epoch {
                prop_oneof![
                    2 => text,
                    1 => (1_000_000_000i64..4_000_000_000).prop_map(|s| s.to_string().into_bytes()),
                    1 => (1_000_000_000_000i64..4_000_000_000_000).prop_map(|s| s.to_string().into_bytes()),
                ]
                .boxed()
            } else {
                text
            }
        }
        Shape::Int(lo, hi) => (*lo..=*hi).prop_map(|n| n.to_string().into_bytes()).boxed(),
        Shape::Bool => prop::sample::select(vec!["true", "false", "\"Yes\"", "\"No\"", "\"true\""])
            .prop_map(|s| s.as_bytes().to_vec())
            .boxed(),
        Shape::Object(fields) => json_object(fields, hostile, false),
        Shape::Array(fields) => prop::collection::vec(json_object(fields, hostile, false), 0..3)
            .prop_map(|items| {
                let mut v = b"[".to_vec();
                v.extend_from_slice(&items.join(&b','));
                v.push(b']');
                v
            })
            .boxed(),
    };
    if !hostile {
        return plain;
    }
    let odd_time = match shape {
        Shape::Time { .. } => rfc3339(true).prop_map(|s| json_string(&s).into_bytes()).boxed(),
        _ => hostile_json_scalar(),
    };
    prop_oneof![6 => plain, 2 => odd_time, 1 => hostile_json_value()].boxed()
}

/// A JSON object of `fields`: each present or not (with `hostile`; all present otherwise), in order, then
/// with `hostile` unknown members, a duplicated member and odd spacing; `top` records can also be cut short.
pub(crate) fn json_object(
    fields: &'static [(&'static str, Shape)],
    hostile: bool,
    top: bool,
) -> BoxedStrategy<Vec<u8>> {
    let members: Vec<BoxedStrategy<Option<Vec<u8>>>> = fields
        .iter()
        .map(|(key, shape)| {
            let member = json_value(shape, hostile).prop_map(move |v| {
                let mut m = json_string(key).into_bytes();
                m.push(b':');
                m.extend_from_slice(&v);
                m
            });
            if hostile { prop::option::weighted(0.8, member).boxed() } else { member.prop_map(Some).boxed() }
        })
        .collect();
    let extra = if hostile {
        prop::collection::vec(
            (hostile_json_scalar(), hostile_json_value()).prop_map(|(k, v)| {
                // keys are strings, hostile ones included; sometimes not even that
                let mut m = k;
                m.push(b':');
                m.extend_from_slice(&v);
                m
            }),
            0..3,
        )
        .boxed()
    } else {
        Just(Vec::new()).boxed()
    };
    let spacing = if hostile {
        prop::sample::select(vec![&b""[..], b" ", b"\n", b"\t \r\n", b"\xef\xbb\xbf"]).boxed()
    } else {
        Just(&b""[..]).boxed()
    };
    let cut = if hostile && top { prop::option::weighted(0.1, 0.0f64..1.0).boxed() } else { Just(None).boxed() };
    (members, extra, any::<bool>(), spacing, cut)
        .prop_map(|(members, extra, duplicate, spacing, cut)| {
            let mut parts: Vec<Vec<u8>> = members.into_iter().flatten().collect();
            if duplicate && let Some(first) = parts.first().cloned() {
                parts.push(first);
            }
            parts.extend(extra);
            let mut v = spacing.to_vec();
            v.push(b'{');
            v.extend_from_slice(&parts.join(&b","[..]));
            v.push(b'}');
            v.extend_from_slice(spacing);
            if let Some(cut) = cut {
                v.truncate((v.len() as f64 * cut) as usize);
            }
            v
        })
        .boxed()
}

pub(crate) const CLOUDTRAIL: &[(&str, Shape)] = &[
    ("eventVersion", Shape::Text(any_text)),
    (
        "userIdentity",
        Shape::Object(&[
            ("type", Shape::Text(word)),
            ("principalId", Shape::Text(word)),
            ("arn", Shape::Text(arn)),
            ("accountId", Shape::Text(word)),
            ("userName", Shape::Text(word)),
            ("invokedBy", Shape::Text(word)),
            (
                "sessionContext",
                Shape::Object(&[(
                    "attributes",
                    Shape::Object(&[("mfaAuthenticated", Shape::Bool), ("creationDate", Shape::Time { epoch: false })]),
                )]),
            ),
        ]),
    ),
    ("eventTime", Shape::Time { epoch: false }),
    ("@timestamp", Shape::Time { epoch: false }),
    ("eventSource", Shape::Text(word)),
    ("eventName", Shape::Text(word)),
    ("awsRegion", Shape::Text(word)),
    ("sourceIPAddress", Shape::Text(ip_text)),
    ("userAgent", Shape::Text(any_text)),
    ("errorCode", Shape::Text(word)),
    (
        "requestParameters",
        Shape::Object(&[
            ("userName", Shape::Text(word)),
            ("policyArn", Shape::Text(arn)),
            ("roleArn", Shape::Text(arn)),
            ("groupName", Shape::Text(word)),
            ("bucketName", Shape::Text(word)),
            ("policyName", Shape::Text(word)),
        ]),
    ),
    ("responseElements", Shape::Object(&[("ConsoleLogin", Shape::Text(word))])),
    ("additionalEventData", Shape::Object(&[("MFAUsed", Shape::Bool)])),
    ("resources", Shape::Array(&[("ARN", Shape::Text(arn)), ("type", Shape::Text(word))])),
    ("recipientAccountId", Shape::Text(word)),
    ("eventID", Shape::Text(word)),
];

pub(crate) const K8S_AUDIT: &[(&str, Shape)] = &[
    ("kind", Shape::Text(|| Just("Event".to_string()).boxed())),
    ("apiVersion", Shape::Text(|| Just("audit.k8s.io/v1".to_string()).boxed())),
    ("level", Shape::Text(word)),
    ("auditID", Shape::Text(word)),
    ("stage", Shape::Text(word)),
    ("requestURI", Shape::Text(any_text)),
    (
        "verb",
        Shape::Text(|| {
            prop::sample::select(vec!["create", "get", "patch", "delete", "list"]).prop_map(str::to_string).boxed()
        }),
    ),
    ("user", Shape::Object(&[("username", Shape::Text(word)), ("groups", Shape::Array(&[]))])),
    ("impersonatedUser", Shape::Object(&[("username", Shape::Text(word))])),
    ("sourceIPs", Shape::Array(&[])),
    ("userAgent", Shape::Text(any_text)),
    (
        "objectRef",
        Shape::Object(&[
            ("resource", Shape::Text(word)),
            ("subresource", Shape::Text(word)),
            ("namespace", Shape::Text(word)),
            ("name", Shape::Text(word)),
        ]),
    ),
    ("responseStatus", Shape::Object(&[("code", Shape::Int(100, 599)), ("metadata", Shape::Object(&[]))])),
    (
        "requestObject",
        Shape::Object(&[
            ("subjects", Shape::Array(&[("kind", Shape::Text(word)), ("name", Shape::Text(word))])),
            ("roleRef", Shape::Object(&[("name", Shape::Text(word)), ("kind", Shape::Text(word))])),
        ]),
    ),
    ("requestReceivedTimestamp", Shape::Time { epoch: false }),
    ("stageTimestamp", Shape::Time { epoch: false }),
    ("metadata", Shape::Object(&[("creationTimestamp", Shape::Time { epoch: false })])),
];

pub(crate) const WEB_ACCESS_JSON: &[(&str, Shape)] = &[
    ("timestamp", Shape::Time { epoch: true }),
    (
        "time_local",
        Shape::Text(|| clf_time(false).prop_map(|b| String::from_utf8(b).expect("plausible values are text")).boxed()),
    ),
    ("remote_addr", Shape::Text(ip_text)),
    ("remote_user", Shape::Text(word)),
    ("request", Shape::Text(request_text)),
    ("method", Shape::Text(|| prop::sample::select(vec!["GET", "POST"]).prop_map(str::to_string).boxed())),
    ("path", Shape::Text(any_text)),
    ("status", Shape::Int(100, 599)),
    ("body_bytes_sent", Shape::Int(0, 1 << 40)),
    ("http_referer", Shape::Text(any_text)),
    ("http_user_agent", Shape::Text(any_text)),
    ("request_time_ms", Shape::Int(0, 100_000)),
];

pub(crate) const OKTA: &[(&str, Shape)] = &[
    ("uuid", Shape::Text(word)),
    ("published", Shape::Time { epoch: false }),
    (
        "eventType",
        Shape::Text(|| {
            prop::sample::select(vec![
                "user.session.start",
                "user.mfa.factor.deactivate",
                "group.user_membership.add",
                "system.api_token.create",
                "app.oauth2.as.token.grant",
            ])
            .prop_map(str::to_string)
            .boxed()
        }),
    ),
    ("displayMessage", Shape::Text(any_text)),
    ("outcome", Shape::Object(&[("result", Shape::Text(word)), ("reason", Shape::Text(any_text))])),
    (
        "actor",
        Shape::Object(&[
            ("id", Shape::Text(word)),
            ("type", Shape::Text(word)),
            ("alternateId", Shape::Text(word)),
            ("displayName", Shape::Text(any_text)),
        ]),
    ),
    (
        "client",
        Shape::Object(&[
            ("ipAddress", Shape::Text(ip_text)),
            ("userAgent", Shape::Object(&[("rawUserAgent", Shape::Text(any_text)), ("os", Shape::Text(word))])),
        ]),
    ),
    (
        "target",
        Shape::Array(&[
            ("alternateId", Shape::Text(word)),
            ("displayName", Shape::Text(any_text)),
            ("type", Shape::Text(word)),
        ]),
    ),
    ("debugContext", Shape::Object(&[("debugData", Shape::Object(&[("privilegeGranted", Shape::Text(any_text))]))])),
];

pub(crate) const GITHUB_AUDIT: &[(&str, Shape)] = &[
    ("@timestamp", Shape::Time { epoch: true }),
    ("created_at", Shape::Time { epoch: true }),
    (
        "action",
        Shape::Text(|| {
            prop::sample::select(vec![
                "org.add_member",
                "repo.destroy",
                "org.disable_two_factor_requirement",
                "team.add_repository",
            ])
            .prop_map(str::to_string)
            .boxed()
        }),
    ),
    ("actor", Shape::Text(word)),
    ("actor_ip", Shape::Text(ip_text)),
    ("user_agent", Shape::Text(any_text)),
    ("user", Shape::Text(word)),
    ("repo", Shape::Text(word)),
    ("team", Shape::Text(word)),
    ("org", Shape::Text(word)),
    ("business", Shape::Text(word)),
    ("permission", Shape::Text(word)),
    ("role", Shape::Text(word)),
];

pub(crate) const GENERIC_JSON: &[(&str, Shape)] = &[
    ("time", Shape::Time { epoch: true }),
    ("ts", Shape::Time { epoch: true }),
    ("level", Shape::Text(word)),
    ("msg", Shape::Text(any_text)),
    ("user", Shape::Object(&[("name", Shape::Text(word))])),
    ("tags", Shape::Array(&[("k", Shape::Text(word))])),
];
