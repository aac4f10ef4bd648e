//! Secrets never echo: URLs and messages as shown to people, with credentials masked.
//!
//! Every message, summary, report and log line that shows a URL passes it through [`url`] (one URL) or
//! [`text`] (free text that may hold URLs or `key=value` settings). What is masked, conservatively:
//!
//! - the userinfo of a URL (`kafka://user:pass@host` -> `kafka://REDACTED@host`), also when the password
//!   holds an unescaped `/` (everything before the last `@` of the part before `?`);
//! - the value of every query key that looks like a secret ([`is_secret_key`]: names containing `pass`,
//!   `pwd`, `secret`, `token`, `key`, `cred`, `auth`, `sign`, `bearer`, `private`, `cookie`, `jwt`, and
//!   the usual misspellings such as `pasword`, `secert`, `tokne`), and query parts without `=` that follow
//!   one (an unescaped `&` inside a password);
//! - a URL nested in a query value (`endpoint=http://user:pass@host`), redacted the same way;
//! - the fragment (`#...`), which may carry a token.
//!
//! Inline secrets are refused where URLs are parsed (`vigil_kafka::config`, `vigil_evidence::store`);
//! [`inline_secrets`] names what must be refused without repeating any value.

use std::borrow::Cow;

/// What a masked value is replaced by.
pub const MASK: &str = "REDACTED";

/// Parts of key names that mark a secret (matched lower-cased, anywhere in the name), with the usual
/// misspellings (`pasword`, `secert`, `tokne`).
const SECRET_PARTS: [&str; 18] = [
    "pass", "pasw", "psw", "pwd", "secre", "secer", "scret", "token", "tokn", "tokne", "key", "cred", "auth", "sign",
    "bearer", "private", "cookie", "jwt",
];

/// Short key names that are secrets on their own (`sig` of a signed URL, `pw`).
const SECRET_NAMES: [&str; 4] = ["sig", "pw", "otp", "sas"];

/// Names that match [`SECRET_PARTS`] but hold a reference or a path, never the secret itself.
const NOT_SECRET: [&str; 5] =
    ["sasl_password_env", "sasl_password_file", "ssl.key.location", "ssl.keystore.location", "sasl.kerberos.keytab"];

/// Whether a query key, property or setting name looks like it holds a secret. Conservative: unknown and
/// misspelt names are secrets when they contain a secret-like part (see the module docs). The name is
/// %-decoded first, so `sasl%2Epassword` is `sasl.password`.
pub fn is_secret_key(name: &str) -> bool {
    let name = percent_decode_lossy(name).trim().to_ascii_lowercase();
    if NOT_SECRET.contains(&name.as_str()) {
        return false;
    }
    SECRET_NAMES.contains(&name.as_str()) || SECRET_PARTS.iter().any(|p| name.contains(p))
}

fn percent_decode_lossy(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// The length of `SCHEME://` at the start of `s` (a letter, then letters, digits, `+`, `-`, `.`).
fn scheme_len(s: &str) -> Option<usize> {
    let colon = s.find("://")?;
    let scheme = &s[..colon];
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    (first_ok && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))).then_some(colon + 3)
}

fn is_file(url: &str) -> bool {
    url.get(..7).is_some_and(|s| s.eq_ignore_ascii_case("file://"))
}

/// The index of the `@` ending the userinfo of a `file://` URL's authority (before the first `/`).
fn file_userinfo(url: &str, start: usize) -> Option<usize> {
    let rest = url.get(start..)?;
    let authority = rest.split('/').next().unwrap_or_default();
    authority.rfind('@').map(|at| start + at)
}

/// `url` as shown to people: userinfo, secret query values and the fragment masked (see the module
/// docs). Text that does not start with `SCHEME://` is returned as it is.
pub fn url(url: &str) -> Cow<'_, str> {
    let Some(start) = scheme_len(url) else {
        return Cow::Borrowed(url);
    };
    if is_file(url) {
        // A path: only an authority's userinfo (`file://user@host/...`) is masked; `?`, `#` and `@` after
        // the first `/` are the path's.
        return match file_userinfo(url, start) {
            Some(at) => Cow::Owned(format!("{}{MASK}{}", &url[..start], &url[at..])),
            None => Cow::Borrowed(url),
        };
    }
    let (before_fragment, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let (hier, query) = match before_fragment.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (before_fragment, None),
    };
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..start]);
    let rest = hier.get(start..).unwrap_or_default();
    // Conservative: a password may hold an unescaped `/`, so the userinfo runs to the last `@`.
    match rest.rfind('@') {
        Some(at) => {
            out.push_str(MASK);
            out.push_str(&rest[at..]);
        }
        None => out.push_str(rest),
    }
    if let Some(query) = query {
        out.push('?');
        out.push_str(&redact_query(query));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        if !fragment.is_empty() {
            out.push_str(MASK);
        }
    }
    if out == url { Cow::Borrowed(url) } else { Cow::Owned(out) }
}

fn redact_query(query: &str) -> String {
    let mut parts = Vec::new();
    let mut after_secret = false;
    for part in query.split('&') {
        match part.split_once('=') {
            Some((key, value)) if is_secret_key(key) => {
                parts.push(if value.is_empty() { part.to_string() } else { format!("{key}={MASK}") });
                after_secret = !value.is_empty();
            }
            Some((key, value)) => {
                let decoded = percent_decode_lossy(value);
                let nested = url(&decoded);
                parts.push(if nested != decoded { format!("{key}={nested}") } else { part.to_string() });
                after_secret = false;
            }
            // A part without `=` after a secret is the rest of it (an unescaped `&`).
            None if after_secret || is_secret_key(part) => parts.push(MASK.to_string()),
            None => parts.push(part.to_string()),
        }
    }
    parts.join("&")
}

/// Characters that end a URL inside free text.
fn ends_url(c: char) -> bool {
    c.is_whitespace() || matches!(c, '`' | '"' | '\'' | '<' | '>')
}

/// What [`inline_secrets`] found in a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InlineSecret {
    /// A user name or password before `@`.
    Userinfo,
    /// A query key that looks like a secret, with a value (the key only, never the value).
    Key(String),
    /// A URL in the value of this query key holds a user name or password (`endpoint=http://u:p@host`).
    NestedUserinfo(String),
}

impl std::fmt::Display for InlineSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InlineSecret::Userinfo => f.write_str("a user name or password before @"),
            InlineSecret::Key(k) => write!(f, "query key `{}`", text(k)),
            InlineSecret::NestedUserinfo(k) => write!(f, "a user name or password before @ in query key `{}`", text(k)),
        }
    }
}

/// The secrets written inline in `url`: userinfo (an `@` before the query) and query keys that look like
/// secrets and have a value. `allowed` names keys that match [`is_secret_key`] but are fine inline (for
/// example `sasl.oauthbearer.client.id`). Values are never returned.
pub fn inline_secrets(url: &str, allowed: &[&str]) -> Vec<InlineSecret> {
    let mut out = Vec::new();
    let Some(start) = scheme_len(url) else { return out };
    if is_file(url) {
        if file_userinfo(url, start).is_some() {
            out.push(InlineSecret::Userinfo);
        }
        return out;
    }
    let (hier, query) = url.split_once('?').unwrap_or((url, ""));
    if hier.get(start..).is_some_and(|rest| rest.contains('@')) {
        out.push(InlineSecret::Userinfo);
    }
    for part in query.split('&') {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        let decoded = percent_decode_lossy(key);
        if allowed.contains(&decoded.as_ref()) {
            continue;
        }
        if (is_secret_key(key) && !value.is_empty()) || (value.is_empty() && is_secret_key(part)) {
            out.push(InlineSecret::Key(key.to_string()));
        } else if value.contains("://") || value.contains("%3A%2F%2F") || value.contains("%3a%2f%2f") {
            // A nested URL (`endpoint=http://user:pass@host`) carries its own credentials.
            let nested = percent_decode_lossy(value);
            if inline_secrets(&nested, allowed).contains(&InlineSecret::Userinfo) {
                out.push(InlineSecret::NestedUserinfo(key.to_string()));
            }
        }
    }
    out
}

/// Free text as shown to people: every `SCHEME://...` in it through [`url`], and the values of
/// `key=value` or `key = "value"` settings whose key looks like a secret masked (not `env:`/`file:`
/// references, which name where a secret is, not what it is). Text without either is returned as it is.
pub fn text(text: &str) -> Cow<'_, str> {
    if !text.contains("://") && !text.contains('=') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(sep) = rest.find("://") {
        // Back up over the scheme.
        let scheme_start = rest[..sep]
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            .last()
            .map_or(sep, |(i, _)| i);
        // The scheme starts with a letter.
        let scheme_start = rest[scheme_start..sep]
            .char_indices()
            .find(|(_, c)| c.is_ascii_alphabetic())
            .map_or(sep, |(i, _)| scheme_start + i);
        let mut end = rest[sep..].find(ends_url).map_or(rest.len(), |e| sep + e);
        // Sentence punctuation after a URL, and the `)` of `(kafka://host/topic)`, are not the URL's.
        loop {
            let candidate = &rest[scheme_start..end];
            let trailing =
                candidate.ends_with(['.', ',', ';', ':']) || (candidate.ends_with(')') && !candidate.contains('('));
            if !trailing || end <= sep + 3 {
                break;
            }
            end -= 1;
        }
        out.push_str(&assignments(&rest[..scheme_start]));
        if scheme_start == sep {
            out.push_str(&rest[sep..end]);
        } else {
            out.push_str(&url(&rest[scheme_start..end]));
        }
        rest = &rest[end..];
    }
    out.push_str(&assignments(rest));
    if out == text { Cow::Borrowed(text) } else { Cow::Owned(out) }
}

/// Masks the values of `key=value` / `key = "value"` settings with secret-looking keys in `text`.
fn assignments(text: &str) -> Cow<'_, str> {
    if !text.contains('=') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'=' || bytes.get(i + 1) == Some(&b'=') || (i > 0 && b"=!<>".contains(&bytes[i - 1])) {
            i += 1;
            continue;
        }
        // The key: back over spaces and a closing quote, then name characters.
        let mut k_end = i;
        while k_end > 0 && bytes[k_end - 1] == b' ' {
            k_end -= 1;
        }
        if k_end > 0 && matches!(bytes[k_end - 1], b'"' | b'\'') {
            k_end -= 1;
        }
        let mut k_start = k_end;
        while k_start > 0 && (bytes[k_start - 1].is_ascii_alphanumeric() || b"._-%".contains(&bytes[k_start - 1])) {
            k_start -= 1;
        }
        let key = &text[k_start..k_end];
        // The value: after spaces, quoted or up to a separator.
        let mut v_start = i + 1;
        while v_start < bytes.len() && bytes[v_start] == b' ' {
            v_start += 1;
        }
        let quote = bytes.get(v_start).copied().filter(|b| matches!(b, b'"' | b'\''));
        if quote.is_some() {
            v_start += 1;
        }
        let v_end = match quote {
            Some(q) => text[v_start..].find(q as char).map_or(text.len(), |e| v_start + e),
            None => text[v_start..]
                .find(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '&' | ')' | '`' | '"' | '\''))
                .map_or(text.len(), |e| v_start + e),
        };
        let value = &text[v_start..v_end];
        if !key.is_empty()
            && is_secret_key(key)
            && !value.is_empty()
            && !value.starts_with("env:")
            && !value.starts_with("file:")
            && value != MASK
        {
            out.push_str(&text[copied..v_start]);
            out.push_str(MASK);
            copied = v_end;
        }
        i = v_end.max(i + 1);
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_stripped() {
        assert_eq!(url("kafka://bob:hunter2@b1:9092,b2:9092/t"), "kafka://REDACTED@b1:9092,b2:9092/t");
        assert_eq!(url("s3://AKIA:wJalr@bucket/prefix"), "s3://REDACTED@bucket/prefix");
        assert_eq!(url("http://token@host/x"), "http://REDACTED@host/x");
        // An unescaped `/` or `@` in the password: everything before the last `@` goes.
        assert_eq!(url("kafka://bob:pa/ss@w@b:9092/t"), "kafka://REDACTED@b:9092/t");
        assert_eq!(url("kafka://b:9092/t?group=g"), "kafka://b:9092/t?group=g");
    }

    #[test]
    fn secret_query_values_are_masked_and_others_kept() {
        assert_eq!(
            url("kafka://b:9092/t?group=g&sasl.password=hunter2&start=latest"),
            "kafka://b:9092/t?group=g&sasl.password=REDACTED&start=latest"
        );
        assert_eq!(
            url("s3://bkt/p?region=eu-west-1&secret=s3cr3t&aws_secret_access_key=x&session_token=y"),
            "s3://bkt/p?region=eu-west-1&secret=REDACTED&aws_secret_access_key=REDACTED&session_token=REDACTED"
        );
        for key in [
            "password",
            "token",
            "key",
            "ssl.key.password",
            "ssl.keystore.password",
            "sasl.oauthbearer.config",
            "sasl.oauthbearer.client.secret",
            "credential",
            "X-Amz-Signature",
            "X-Amz-Credential",
            "X-Amz-Security-Token",
            "sig",
            "api_key",
            "sasl%2Epassword",
        ] {
            let shown = url(&format!("https://h/p?{key}=topsecret&a=1")).into_owned();
            assert!(!shown.contains("topsecret") && shown.ends_with("&a=1"), "{key}: {shown}");
        }
        // References name where the secret is, not what it is.
        assert_eq!(url("kafka://b:1/t?sasl_password_env=PW"), "kafka://b:1/t?sasl_password_env=PW");
        // An unescaped `&` in a password: the rest of it is masked too.
        assert_eq!(
            url("kafka://b:1/t?sasl.password=ab&cd&group=g"),
            "kafka://b:1/t?sasl.password=REDACTED&REDACTED&group=g"
        );
    }

    #[test]
    fn misspelt_and_unknown_secret_keys_are_masked() {
        for key in
            ["sasl.pasword", "sasl.passwd", "secert_key", "my_token", "apikey", "client_cred", "passphrase", "pwd"]
        {
            assert!(is_secret_key(key), "{key}");
            assert!(!url(&format!("kafka://b:1/t?{key}=topsecret")).contains("topsecret"), "{key}");
        }
        for key in ["group", "start", "region", "endpoint", "profile", "fetch.max.bytes", "ssl.key.location"] {
            assert!(!is_secret_key(key), "{key}");
        }
        // A secret-like part without `=`.
        assert_eq!(url("kafka://b:1/t?sasl.password:hunter2"), "kafka://b:1/t?REDACTED");
    }

    #[test]
    fn nested_urls_and_fragments() {
        assert_eq!(
            url("s3://bkt/p?endpoint=http://minio:minio123@127.0.0.1:9000&region=us-east-1"),
            "s3://bkt/p?endpoint=http://REDACTED@127.0.0.1:9000&region=us-east-1"
        );
        assert_eq!(
            url("s3://bkt/p?endpoint=http%3A%2F%2Fu%3Apw%40h%3A9000"),
            "s3://bkt/p?endpoint=http://REDACTED@h:9000"
        );
        assert_eq!(url("https://h/cb#access_token=abc"), "https://h/cb#REDACTED");
        assert_eq!(url("https://h/cb#"), "https://h/cb#");
        // A file URL is a path: only a userinfo is masked.
        assert_eq!(url("file:///srv/ev@2024/a?b#c"), "file:///srv/ev@2024/a?b#c");
        assert_eq!(url("file://u:p@host/srv/ev"), "file://REDACTED@host/srv/ev");
    }

    #[test]
    fn text_without_urls_is_unchanged() {
        for t in [
            "",
            "records read 3 = archived 2 + dead-lettered 1 (ok)",
            "/var/log/auth.log",
            "input `-`: unknown input format `syslog`",
            "secret `sasl.password` must be \"env:VARIABLE\" or \"file:PATH\"",
            "a == b",
            "not a url: host:9092/topic",
        ] {
            assert_eq!(text(t), t);
            assert!(matches!(text(t), Cow::Borrowed(_)));
            assert_eq!(url(t), t);
        }
    }

    #[test]
    fn text_redacts_every_url_and_secret_setting_in_it() {
        assert_eq!(
            text("cannot reach Kafka (kafka://u:p@b:9092/t?sasl.password=x): check kafka://b2:1/t?token=y"),
            "cannot reach Kafka (kafka://REDACTED@b:9092/t?sasl.password=REDACTED): check kafka://b2:1/t?token=REDACTED"
        );
        assert_eq!(
            text("evidence location `s3://b/p?secret=abc`: unknown setting"),
            "evidence location `s3://b/p?secret=REDACTED`: unknown setting"
        );
        // A TOML error quoting the line.
        assert_eq!(
            text("5 | sasl_pasword = \"hunter2\"\n  | ^^^\nunknown field"),
            "5 | sasl_pasword = \"REDACTED\"\n  | ^^^\nunknown field"
        );
        assert_eq!(text("\"sasl.password\" = 'hunter2'"), "\"sasl.password\" = 'REDACTED'");
        assert_eq!(text("password=hunter2, next"), "password=REDACTED, next");
        // References are kept.
        assert_eq!(text("\"sasl.password\" = \"env:VIGIL_PW\""), "\"sasl.password\" = \"env:VIGIL_PW\"");
        assert_eq!(text("sasl_password_file=/run/pw"), "sasl_password_file=/run/pw");
    }

    #[test]
    fn inline_secrets_name_keys_never_values() {
        let found = inline_secrets(
            "kafka://u:pw@b:1/t?group=g&sasl.pasword=hunter2&sasl.oauthbearer.client.id=c",
            &["sasl.oauthbearer.client.id"],
        );
        assert_eq!(found, vec![InlineSecret::Userinfo, InlineSecret::Key("sasl.pasword".into())]);
        assert!(!found.iter().map(ToString::to_string).collect::<String>().contains("hunter2"));
        assert_eq!(inline_secrets("s3://b/p?region=x&profile=audit", &[]), vec![]);
        assert_eq!(inline_secrets("kafka://b:1/t?sasl_password_env=PW", &[]), vec![]);
        assert_eq!(
            inline_secrets("s3://b/p?endpoint=http://u:p@h:9000", &[]),
            vec![InlineSecret::NestedUserinfo("endpoint".into())]
        );
        assert_eq!(inline_secrets("/a/b@c", &[]), vec![]);
        assert_eq!(inline_secrets("file:///home/me@corp/ev?x#y", &[]), vec![]);
        assert_eq!(inline_secrets("file://u:p@host/ev", &[]), vec![InlineSecret::Userinfo]);
    }
}
