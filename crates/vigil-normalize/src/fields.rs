//! Small helpers shared by the normalizers: tape navigation, `attrs` assembly, IP and JSON text.

use std::borrow::Cow;
use std::net::IpAddr;

use simd_json::prelude::*;
use simd_json::tape::Value;

use crate::scan::{ScanError, members};

/// A value on a simd-json tape.
pub(crate) type V<'t, 'i> = Value<'t, 'i>;

/// The value at a dotted path of object keys.
pub(crate) fn path<'t, 'i>(v: V<'t, 'i>, keys: &[&str]) -> Option<V<'t, 'i>> {
    let mut cur = v;
    for k in keys {
        // A number indexes an array (`target.0.alternateId`).
        cur = match (cur.as_array(), k.parse::<usize>()) {
            (Some(items), Ok(i)) => items.get(i)?,
            _ => cur.get(*k)?,
        };
    }
    Some(cur)
}

/// A non-empty string value.
pub(crate) fn text<'i>(v: Option<V<'_, 'i>>) -> Option<&'i str> {
    v.and_then(|v| v.into_string()).filter(|s| !s.is_empty())
}

/// A string at `key` of `v`, non-empty.
pub(crate) fn str_at<'i>(v: V<'_, 'i>, key: &str) -> Option<&'i str> {
    text(v.get(key))
}

/// A scalar as text: strings as they are, numbers and booleans printed.
pub(crate) fn scalar_text<'i>(v: Option<V<'_, 'i>>) -> Option<Cow<'i, str>> {
    let v = v?;
    if let Some(s) = v.into_string() {
        return (!s.is_empty()).then_some(Cow::Borrowed(s));
    }
    if let Some(i) = v.as_i64() {
        return Some(Cow::Owned(i.to_string()));
    }
    if let Some(u) = v.as_u64() {
        return Some(Cow::Owned(u.to_string()));
    }
    if let Some(f) = v.as_f64() {
        return Some(Cow::Owned(f.to_string()));
    }
    v.as_bool().map(|b| Cow::Borrowed(if b { "true" } else { "false" }))
}

/// A number, or a string holding one.
pub(crate) fn number(v: Option<V<'_, '_>>) -> Option<f64> {
    let v = v?;
    v.as_f64()
        .or_else(|| v.as_i64().map(|i| i as f64))
        .or_else(|| v.as_u64().map(|u| u as f64))
        .or_else(|| v.as_str()?.trim().parse().ok())
}

/// A boolean, or a string `true`/`false`/`yes`/`no`.
pub(crate) fn boolean(v: Option<V<'_, '_>>) -> Option<bool> {
    let v = v?;
    if let Some(b) = v.as_bool() {
        return Some(b);
    }
    match v.as_str()?.to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "1" => Some(true),
        "false" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

/// Copies the top-level members of the JSON object `raw` whose key `keep` accepts into `out` as one JSON
/// object, byte for byte and in their original order. `out` is left empty when no member is kept.
pub(crate) fn write_attrs(raw: &[u8], keep: impl Fn(&[u8]) -> bool, out: &mut String) -> Result<(), ScanError> {
    out.clear();
    let mut bytes = std::mem::take(out).into_bytes();
    for member in members(raw) {
        let member = member?;
        let key = &raw[member.key.clone()];
        if !keep(key) {
            continue;
        }
        bytes.push(if bytes.is_empty() { b'{' } else { b',' });
        bytes.push(b'"');
        bytes.extend_from_slice(key);
        bytes.extend_from_slice(b"\":");
        bytes.extend_from_slice(&raw[member.value]);
    }
    if !bytes.is_empty() {
        bytes.push(b'}');
    }
    // The input passed simd-json's UTF-8 validation and we copied whole members, so this holds.
    *out = String::from_utf8(bytes).map_err(|e| ScanError { at: e.utf8_error().valid_up_to(), expected: "UTF-8" })?;
    Ok(())
}

/// Appends `s` as a JSON string literal.
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Builds a JSON object text of string members, skipping `None` values.
#[derive(Debug, Default)]
pub(crate) struct ObjectText<'o> {
    out: Option<&'o mut String>,
}

impl<'o> ObjectText<'o> {
    pub(crate) fn new(out: &'o mut String) -> Self {
        out.clear();
        ObjectText { out: Some(out) }
    }

    pub(crate) fn member(&mut self, key: &str, value: Option<&str>) {
        let (Some(out), Some(value)) = (self.out.as_deref_mut(), value) else {
            return;
        };
        out.push(if out.is_empty() { '{' } else { ',' });
        push_json_str(out, key);
        out.push(':');
        push_json_str(out, value);
    }

    pub(crate) fn finish(self) {
        if let Some(out) = self.out.filter(|o| !o.is_empty()) {
            out.push('}');
        }
    }
}

/// An IP address in canonical text. Dotted quads with leading zeros (`010.001.002.003`) are read as
/// decimal, as AWS writes them; anything else that is not an address (a service name) gives `None`.
pub(crate) fn canonical_ip(s: &str) -> Option<Cow<'_, str>> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        let canon = ip.to_string();
        return Some(if canon == s { Cow::Borrowed(s) } else { Cow::Owned(canon) });
    }
    let mut octets = [0u8; 4];
    let mut parts = s.split('.');
    for octet in &mut octets {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        *octet = p.parse().ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(Cow::Owned(std::net::Ipv4Addr::from(octets).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ips_are_canonical() {
        assert_eq!(canonical_ip("1.2.3.4").as_deref(), Some("1.2.3.4"));
        assert_eq!(canonical_ip("010.001.002.003").as_deref(), Some("10.1.2.3"));
        assert_eq!(canonical_ip("2001:DB8::1").as_deref(), Some("2001:db8::1"));
        assert_eq!(canonical_ip("ec2.amazonaws.com"), None);
        assert_eq!(canonical_ip("AWS Internal"), None);
        assert_eq!(canonical_ip("256.1.1.1"), None);
        assert_eq!(canonical_ip("1.2.3"), None);
    }

    #[test]
    fn attrs_copy_members_verbatim() {
        let raw = br#"{"a": 1, "drop": "x", "b": {"c": [1, 2]}}"#;
        let mut out = String::new();
        write_attrs(raw, |k| k != b"drop", &mut out).unwrap();
        assert_eq!(out, r#"{"a":1,"b":{"c": [1, 2]}}"#);
        write_attrs(raw, |_| false, &mut out).unwrap();
        assert_eq!(out, "");
    }

    #[test]
    fn object_text_escapes() {
        let mut s = String::new();
        let mut o = ObjectText::new(&mut s);
        o.member("a", Some("q\"\n\u{1}"));
        o.member("skip", None);
        o.finish();
        assert_eq!(s, r#"{"a":"q\"\n\u0001"}"#);
    }
}
