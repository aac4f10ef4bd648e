//! `${NAME}` references in a config file, replaced before the TOML is parsed (see the module docs of
//! [`crate::config`]).

use crate::{Error, Result};

/// What [`interpolate`] made of a config file's text.
pub(super) struct Interpolated {
    /// The text with every reference replaced.
    pub(super) text: String,
    /// Each value taken from the environment: (line of its reference, variable name, value).
    values: Vec<(usize, String, String)>,
    /// Byte offset in `text` where each line of the file after the first starts.
    line_starts: Vec<usize>,
}

/// Where a `${...}` reference stands, which decides how a value is written there.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Context {
    /// Outside strings: as it is.
    Bare,
    /// `"..."` and `"""..."""`: escaped.
    Basic,
    MultiBasic,
    /// `'...'` and `'''...'''`: as it is; a value these cannot hold is an error.
    Literal,
    MultiLiteral,
}

/// Replaces `${NAME}` and `${NAME:-default}` in a config file's text by environment values (`lookup`), and
/// `$${` by `${` (see the module docs). Comments are left as written. Errors name `origin` and the line,
/// and never a variable's value.
pub(super) fn interpolate(
    text: &str,
    origin: &str,
    lookup: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Result<Interpolated> {
    let bytes = text.as_bytes();
    let error = |line: usize, reason: String| Error::Config { origin: format!("{origin}:{line}"), reason };
    let mut out = Interpolated { text: String::with_capacity(text.len()), values: Vec::new(), line_starts: Vec::new() };
    let mut unset: Vec<(usize, String)> = Vec::new();
    let (mut context, mut line, mut i, mut copied) = (Context::Bare, 1, 0, 0);
    while i < bytes.len() {
        let rest = &bytes[i..];
        let quotes =
            if matches!(rest[0], b'"' | b'\'') { rest.iter().take_while(|&&c| c == rest[0]).count() } else { 0 };
        match (context, bytes[i]) {
            (_, b'\n') => {
                line += 1;
                out.line_starts.push(out.text.len() + (i + 1 - copied));
                if matches!(context, Context::Basic | Context::Literal) {
                    context = Context::Bare; // an unclosed string: TOML says so
                }
                i += 1;
            }
            (Context::Bare, b'#') => i += rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len()),
            (Context::Bare, b'"') if quotes >= 3 => (context, i) = (Context::MultiBasic, i + 3),
            (Context::Bare, b'"') => (context, i) = (Context::Basic, i + 1),
            (Context::Bare, b'\'') if quotes >= 3 => (context, i) = (Context::MultiLiteral, i + 3),
            (Context::Bare, b'\'') => (context, i) = (Context::Literal, i + 1),
            // An escape: the next character is the string's (a line break after it is counted above).
            (Context::Basic | Context::MultiBasic, b'\\') => i += if rest.get(1) == Some(&b'\n') { 1 } else { 2 },
            (Context::Basic, b'"') | (Context::Literal, b'\'') => (context, i) = (Context::Bare, i + 1),
            // `""""` closes with one quote of content before it (TOML allows up to two).
            (Context::MultiBasic, b'"') | (Context::MultiLiteral, b'\'') if quotes >= 3 => {
                (context, i) = (Context::Bare, i + quotes.min(5));
            }
            (_, b'$') if rest.starts_with(b"$${") => {
                out.text.push_str(&text[copied..i]);
                out.text.push_str("${");
                i += 3;
                copied = i;
            }
            (_, b'$') if rest.starts_with(b"${") => {
                let Some(end) = rest.iter().position(|&c| c == b'}' || c == b'\n').filter(|&e| rest[e] == b'}') else {
                    return Err(error(
                        line,
                        "`${` without its closing `}` on the same line (write `$${` for a literal `${`)".into(),
                    ));
                };
                let inner = &text[i + 2..i + end];
                let (name, default) = match inner.split_once(":-") {
                    Some((name, default)) => (name, Some(default)),
                    None => (inner, None),
                };
                let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    return Err(error(
                        line,
                        format!(
                            "`${{{}}}` is not a variable reference: write ${{NAME}} or ${{NAME:-default}} (NAME of \
                             letters, digits and _), or `$${{` for a literal `${{`",
                            vigil_schema::redact::text(inner)
                        ),
                    ));
                }
                out.text.push_str(&text[copied..i]);
                i += end + 1;
                copied = i;
                let value = lookup(name)
                    .map(|v| {
                        v.into_string()
                            .map_err(|_| error(line, format!("the environment variable `{name}` is not valid UTF-8")))
                    })
                    .transpose()?;
                match (value, default) {
                    // As in the shell, an empty variable takes the default too.
                    (None, Some(default)) => out.text.push_str(default),
                    (Some(value), Some(default)) if value.is_empty() => out.text.push_str(default),
                    (None, None) => unset.push((line, name.to_string())),
                    (Some(value), _) => {
                        write_value(&mut out.text, &value, context).map_err(|why| {
                            error(line, format!("the value of `{name}` {why}: write the reference in a \"...\" string"))
                        })?;
                        out.values.push((line, name.to_string(), value));
                    }
                }
            }
            _ => i += 1,
        }
    }
    out.text.push_str(&text[copied..]);
    match unset.as_slice() {
        [] => Ok(out),
        [(line, name)] => Err(error(
            *line,
            format!("the environment variable `{name}` is not set: set it, or give a default: ${{{name}:-value}}"),
        )),
        several => Err(Error::Config {
            origin: origin.to_string(),
            reason: format!(
                "environment variables not set: {}; set them, or give defaults: ${{NAME:-value}}",
                several.iter().map(|(line, name)| format!("`{name}` (line {line})")).collect::<Vec<_>>().join(", ")
            ),
        }),
    }
}

/// Writes an environment value where its reference stood: escaped inside `"..."` strings, as it is
/// elsewhere. `Err` says why a `'...'` string cannot hold it.
fn write_value(out: &mut String, value: &str, context: Context) -> std::result::Result<(), &'static str> {
    use std::fmt::Write;
    match context {
        Context::Bare => out.push_str(value),
        Context::Basic | Context::MultiBasic => {
            for c in value.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\t' => out.push_str("\\t"),
                    '\r' => out.push_str("\\r"),
                    c if c.is_control() => {
                        let _ = write!(out, "\\u{:04X}", u32::from(c));
                    }
                    c => out.push(c),
                }
            }
        }
        Context::Literal if value.contains(|c: char| c == '\'' || (c.is_control() && c != '\t')) => {
            return Err("holds a ' or a control character, which a '...' string cannot");
        }
        Context::MultiLiteral
            if value.contains("'''") || value.contains(|c: char| c.is_control() && !matches!(c, '\t' | '\n')) =>
        {
            return Err("holds ''' or a control character, which a '''...''' string cannot");
        }
        Context::Literal | Context::MultiLiteral => out.push_str(value),
    }
    Ok(())
}

impl Interpolated {
    /// The file's line at byte `offset` of the interpolated text.
    fn line_at(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset) + 1
    }

    /// A TOML error about the interpolated text, as told about the file: TOML's own message with the line
    /// quoted when no value was put into that line, else its line and message without the line, and every
    /// environment value in the message replaced by its `${NAME}`.
    pub(super) fn toml_error(&self, origin: &str, error: &toml::de::Error) -> Error {
        let line = error.span().map(|span| self.line_at(span.start));
        let quoted = !self.values.iter().any(|(l, _, value)| Some(*l) == line || value.contains('\n'));
        let (origin, reason) = if quoted {
            (origin.to_string(), error.to_string().trim_end().to_string())
        } else {
            let mut values: Vec<&(usize, String, String)> = self.values.iter().filter(|v| !v.2.is_empty()).collect();
            values.sort_by_key(|v| std::cmp::Reverse(v.2.len()));
            let mut message = error.message().trim_end().to_string();
            for (_, name, value) in values {
                message = message.replace(value.as_str(), &format!("${{{name}}}"));
            }
            (line.map_or_else(|| origin.to_string(), |l| format!("{origin}:{l}")), message)
        };
        // A TOML error quotes the line it is about: secrets in it are masked.
        Error::Config { origin, reason: vigil_schema::redact::text(&reason).into_owned() }
    }
}
