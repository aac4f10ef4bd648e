//! Apache/NGINX access logs as text lines: `combined` (and `common`, without referer and user agent),
//! `source = web.access`.
//!
//! `%h %l %u [%t] "%r" %>s %b "%{Referer}i" "%{User-agent}i"`, anything after that kept in `attrs.extra`.
//! Bytes that are not UTF-8 (common in attack traffic) are replaced in the parsed columns; `raw` keeps
//! them exactly.
//!
//! | column | filled from |
//! | --- | --- |
//! | `time` | `%t` (`25/Oct/2015:04:11:25 +0100`) |
//! | `class` | `http_activity` |
//! | `activity`, `http_method` | the request line's method |
//! | `outcome` | status below 400 `success`, else `failure` |
//! | `actor_user` | `%u` unless `-` |
//! | `src_ip` | `%h` when it is an address |
//! | `user_agent` | `%{User-agent}i` unless `-` |
//! | `http_path`, `target_resource` | the request target as sent, path and query; an absolute URI (`GET http://host/x`) gives `/x` and `attrs.host` |
//! | `http_status` | `%>s` |
//! | `bytes` | `%b` (`-` is 0) |
//! | `attrs` | `ident`, `referer`, `protocol`, `host`, `request` (only when the request line is not `METHOD TARGET PROTOCOL`), `extra` |
//!
//! A line that does not have this shape is dead-lettered `unrecognized_line` naming the part that failed.

use std::borrow::Cow;

use vigil_schema::{EventBatchBuilder, EventRow, Provenance, class, outcome};

use crate::fields::{ObjectText, canonical_ip};
use crate::time::parse_clf_us;
use crate::{Framing, Normalizer, ReasonCode, Rejection, Scratch};

/// The canonical `source` of web access logs.
pub const SOURCE: &str = "web.access";

/// The Apache/NGINX combined-format normalizer.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApacheCombined;

/// Splits a request line into method, target and protocol; `None` when it is not one.
pub(crate) fn split_request(request: &str) -> Option<(&str, &str, &str)> {
    let mut parts = request.splitn(3, ' ');
    let method = parts.next()?;
    let target = parts.next()?;
    let protocol = parts.next().unwrap_or("");
    let method_ok = !method.is_empty()
        && method.len() <= 16
        && method.bytes().all(|c| c.is_ascii_uppercase() || c == b'-' || c == b'_');
    (method_ok && !target.is_empty()).then_some((method, target, protocol))
}

/// For an absolute-URI target, the host and the path; otherwise `None` and the target itself.
///
/// The scheme is compared byte by byte: a target whose first bytes are the start of a multibyte character
/// (`http:/éé`) is not cut inside it.
pub(crate) fn split_absolute(target: &str) -> (Option<&str>, &str) {
    for scheme in ["http://", "https://"] {
        let head = target.as_bytes().get(..scheme.len());
        if target.len() > scheme.len()
            && head.is_some_and(|h| h.eq_ignore_ascii_case(scheme.as_bytes()))
            // the scheme is ASCII: the byte after it starts a character, so this is always Some
            && let Some(rest) = target.get(scheme.len()..)
        {
            return match rest.find('/').and_then(|i| rest.split_at_checked(i)) {
                Some((host, path)) => (Some(host), path),
                None => (Some(rest), "/"),
            };
        }
    }
    (None, target)
}

struct Cursor<'l> {
    line: &'l str,
    pos: usize,
}

impl<'l> Cursor<'l> {
    /// The line from the cursor on (empty past the end: the cursor only stops on ASCII delimiters).
    fn remaining(&self) -> &'l str {
        self.line.get(self.pos..).unwrap_or("")
    }

    fn token(&mut self, what: &str) -> Result<&'l str, Rejection> {
        self.until(" ", what)
    }

    fn until(&mut self, delim: &str, what: &str) -> Result<&'l str, Rejection> {
        let (field, _) = self.remaining().split_once(delim).ok_or_else(|| unrecognized(what))?;
        self.pos += field.len() + delim.len();
        Ok(field)
    }

    /// A `"..."` string with backslash escapes, returned without the quotes (escapes kept).
    fn quoted(&mut self, what: &str) -> Result<&'l str, Rejection> {
        let bytes = self.line.as_bytes();
        if bytes.get(self.pos) != Some(&b'"') {
            return Err(unrecognized(what));
        }
        let start = self.pos + 1;
        let mut i = start;
        while let Some(&c) = bytes.get(i) {
            match c {
                // an escape skips the next byte; a quote is ASCII, so where one is found a character starts
                b'\\' => i += 2,
                b'"' => {
                    let text = self.line.get(start..i).ok_or_else(|| unrecognized(what))?;
                    self.pos = i + 1;
                    return Ok(text);
                }
                _ => i += 1,
            }
        }
        Err(unrecognized(what))
    }

    /// Up to the next space or the end of the line; empty at the end.
    fn word(&mut self) -> &'l str {
        let rest = self.remaining();
        let word = rest.split_once(' ').map_or(rest, |(word, _)| word);
        self.pos += word.len();
        word
    }

    fn skip_spaces(&mut self) {
        while self.line.as_bytes().get(self.pos) == Some(&b' ') {
            self.pos += 1;
        }
    }

    fn rest(&self) -> &'l str {
        self.remaining().trim()
    }
}

fn unrecognized(what: &str) -> Rejection {
    Rejection::new(ReasonCode::UnrecognizedLine, format!("not an Apache combined/common log line: {what}"))
}

fn dash(s: &str) -> Option<&str> {
    (s != "-" && !s.is_empty()).then_some(s)
}

impl Normalizer for ApacheCombined {
    fn format(&self) -> &'static str {
        "apache_combined"
    }

    fn source(&self) -> &str {
        SOURCE
    }

    fn framing(&self) -> Framing {
        Framing::Lines
    }

    fn normalize(
        &self,
        raw: &[u8],
        provenance: &Provenance<'_>,
        scratch: &mut Scratch,
        out: &mut EventBatchBuilder,
    ) -> Result<(), Rejection> {
        let line = String::from_utf8_lossy(raw);
        let line = line.trim_end_matches(['\r', '\n']);
        let mut c = Cursor { line, pos: 0 };
        let host = c.token("no client address")?;
        let ident = c.token("no ident field")?;
        let user = c.until(" [", "no user field before [time]")?;
        let time_text = c.until("] ", "no [time] field")?;
        let time_us = parse_clf_us(time_text).ok_or_else(|| {
            Rejection::new(ReasonCode::InvalidTime, format!("time `{time_text}` is not `dd/Mon/yyyy:HH:MM:SS +zzzz`"))
        })?;
        let request = c.quoted("no quoted request line")?;
        c.skip_spaces();
        let status = match c.word() {
            "-" => None,
            "" => return Err(unrecognized("no status after the request line")),
            s => Some(
                s.parse::<u16>()
                    .ok()
                    .filter(|s| *s <= 999)
                    .map(i32::from)
                    .ok_or_else(|| unrecognized("status is not an HTTP status number (0-999)"))?,
            ),
        };
        c.skip_spaces();
        let bytes = match c.word() {
            "-" | "" => Some(0),
            s => Some(
                s.parse::<u64>()
                    .ok()
                    .and_then(|n| i64::try_from(n).ok())
                    .ok_or_else(|| unrecognized("size is not a number of bytes (0 to 9223372036854775807)"))?,
            ),
        };
        c.skip_spaces();
        let mut unterminated = false;
        let (referer, agent) = if line.as_bytes().get(c.pos) == Some(&b'"') {
            let referer = c.quoted("referer is not quoted")?;
            c.skip_spaces();
            // A line cut short (buffer limits, truncated files) loses the user agent's closing quote:
            // keep what is there and say so in attrs.
            let agent = match c.quoted("user agent is not quoted") {
                Ok(agent) => agent,
                Err(_) if line.as_bytes().get(c.pos) == Some(&b'"') => {
                    unterminated = true;
                    let rest = line.get(c.pos + 1..).unwrap_or("");
                    c.pos = line.len();
                    rest
                }
                Err(e) => return Err(e),
            };
            (dash(referer), dash(agent))
        } else {
            (None, None)
        };
        let extra = c.rest();

        let parsed = split_request(request);
        let (method, target, protocol) = match parsed {
            Some((m, t, p)) => (Some(m), Some(t), dash(p)),
            None => (None, None, None),
        };
        let (abs_host, path) = match target {
            Some(t) => {
                let (h, p) = split_absolute(t);
                (h, Some(p))
            }
            None => (None, None),
        };
        let mut attrs = ObjectText::new(&mut scratch.attrs);
        attrs.member("ident", dash(ident));
        attrs.member("referer", referer);
        attrs.member("protocol", protocol);
        attrs.member("host", abs_host);
        attrs.member("request", if parsed.is_none() { Some(request) } else { None });
        attrs.member("extra", dash(extra));
        attrs.member("truncated", unterminated.then_some("user agent has no closing quote"));
        attrs.finish();
        let attrs = &scratch.attrs;

        let row = EventRow {
            time_us,
            source: Cow::Borrowed(SOURCE),
            class: Some(Cow::Borrowed(class::HTTP_ACTIVITY)),
            activity: method.map(Cow::Borrowed),
            outcome: Cow::Borrowed(match status {
                Some(s) if s < 400 => outcome::SUCCESS,
                Some(_) => outcome::FAILURE,
                None => outcome::UNKNOWN,
            }),
            actor_user: dash(user).map(Cow::Borrowed),
            src_ip: canonical_ip(host),
            user_agent: agent.map(Cow::Borrowed),
            target_resource: path.map(Cow::Borrowed),
            http_method: method.map(Cow::Borrowed),
            http_path: path.map(Cow::Borrowed),
            http_status: status,
            bytes,
            attrs: (!attrs.is_empty()).then_some(Cow::Borrowed(attrs.as_str())),
            ..EventRow::default()
        };
        out.append(&row, raw, provenance);
        Ok(())
    }
}

/// The `apache_combined` format's normalizer (no options).
pub(crate) fn build(_: &crate::FormatOptions) -> crate::Result<std::sync::Arc<dyn crate::Normalizer>> {
    Ok(std::sync::Arc::new(ApacheCombined))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RawRecords, normalize_records};

    fn run(lines: &[&[u8]]) -> crate::NormalizedBatch {
        let mut records = RawRecords::default();
        for (i, l) in lines.iter().enumerate() {
            records.push(i as i64 + 1, l);
        }
        normalize_records(&ApacheCombined, records, "t", 0, 0, 64)
    }

    fn cell(out: &crate::NormalizedBatch, row: usize, c: &str) -> String {
        arrow::util::display::array_value_to_string(out.batches[0].column_by_name(c).unwrap(), row).unwrap()
    }

    #[test]
    fn multibyte_targets_are_not_cut_inside_a_character() {
        assert_eq!(split_absolute("http:/éé"), (None, "http:/éé"));
        assert_eq!(split_absolute("httpé"), (None, "httpé"));
        assert_eq!(split_absolute("https://é"), (Some("é"), "/"));
        assert_eq!(split_absolute("HTTP://hôte/ä?x"), (Some("hôte"), "/ä?x"));
        // the line of issue 16 is a row, its target kept as sent
        let out =
            run(&[r#"1.2.3.4 - - [10/Oct/2023:13:55:36 +0000] "GET http:/éé HTTP/1.1" 200 12 "-" "x""#.as_bytes()]);
        assert_eq!(out.rows(), 1, "{:?}", out.dead_letters);
        assert_eq!(cell(&out, 0, "http_path"), "http:/éé");
    }

    #[test]
    fn statuses_and_sizes_out_of_range_are_refused() {
        let line = |status: &str, size: &str| {
            format!(r#"1.2.3.4 - - [10/Oct/2023:13:55:36 +0000] "GET / HTTP/1.1" {status} {size}"#)
        };
        let lines = [
            line("200", "-"),
            line("99999999999", "1"),
            line("-5", "1"),
            line("200", "-1"),
            line("200", "99999999999999999999"),
        ];
        let out = run(&lines.iter().map(|l| l.as_bytes()).collect::<Vec<_>>());
        assert_eq!(out.rows(), 1);
        assert_eq!(out.dead_letters.iter().map(|d| d.offset).collect::<Vec<_>>(), [2, 3, 4, 5]);
    }

    #[test]
    fn combined_common_absolute_and_garbage() {
        let out = run(&[
            br#"195.154.46.135 - - [25/Oct/2015:04:11:25 +0100] "GET /linux/x HTTP/1.1" 200 24323 "http://howto.basjes.nl/" "Mozilla/5.0""#,
            br#"10.0.0.1 - frank bob [10/Oct/2000:13:55:36 -0700] "GET http://evil.example/.env?x=1 HTTP/1.0" 404 -"#,
            b"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] \"\x16\x03\x01\" 400 226 \"-\" \"-\"",
            b"this is not a log line",
            br#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5 "-" "curl/8" "1.2.3.5""#,
            br#"46.118.127.106 - - [20/May/2015:12:05:17 +0000] "GET /x.py HTTP/1.1" 200 235 "-" "Mozilla/5.0 (compatible; Googlebot/2.1"#,
        ]);
        assert_eq!(out.rows(), 5);
        assert_eq!(cell(&out, 4, "user_agent"), "Mozilla/5.0 (compatible; Googlebot/2.1");
        assert!(cell(&out, 4, "attrs").contains("truncated"));
        assert_eq!(out.dead_letters.len(), 1);
        assert_eq!(out.dead_letters[0].offset, 4);
        assert_eq!(cell(&out, 0, "http_path"), "/linux/x");
        assert_eq!(cell(&out, 0, "user_agent"), "Mozilla/5.0");
        assert_eq!(cell(&out, 1, "actor_user"), "frank bob");
        assert_eq!(cell(&out, 1, "http_path"), "/.env?x=1");
        assert!(cell(&out, 1, "attrs").contains(r#""host":"evil.example""#));
        assert_eq!(cell(&out, 1, "outcome"), "failure");
        assert_eq!(cell(&out, 2, "http_method"), "");
        assert!(cell(&out, 2, "attrs").contains("request"));
        assert!(cell(&out, 3, "attrs").contains(r#""extra":"\"1.2.3.5\"""#));
    }
}
