//! Property tests with structured generators, one per format: records shaped like the real ones, each field
//! filled from a generator that emits valid multibyte UTF-8, invalid UTF-8, NUL, huge numbers, odd escapes,
//! quotes and brackets (JSON: lone surrogates, big numbers, nested and deeply nested values, duplicate keys,
//! cut documents). Whatever comes out, no record makes a normalizer panic, each is exactly one row or one
//! dead letter, and the row's or dead letter's `raw` is the record's bytes, whole ([`common::check_records`]).
//!
//! With only plausible values (`hostile = false`), every record must become a row: valid multibyte text in
//! any free-text field is accepted, not refused.

mod common;

use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use vigil_normalize::Format;

// ---------------------------------------------------------------------------------------------------------
// Building blocks

/// Text a field may hold in a real log, multibyte included; no space, quote, backslash or control
/// character (the formats' delimiters).
fn word() -> BoxedStrategy<String> {
    prop_oneof![
        "[a-zA-Z0-9._@:/-]{1,16}",
        "[a-zé日本語ßüñ𝔘😀.-]{1,8}",
        Just("é".to_string()),
        Just("用户".to_string()),
        Just("𝔘𝔫𝔦".to_string()),
    ]
    .boxed()
}

/// Valid UTF-8 that breaks things: multibyte at every position, NUL, controls, delimiters, escapes.
fn hostile_text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => word(),
        2 => ".{0,24}",
        1 => "\\PC{0,24}",
        1 => "[\"\\\\\\[\\] {}:;=,'()<>%]{1,8}",
        1 => prop::sample::select(vec![
            "", " ", "\0", "\u{0}\u{0}", "\t", "\r", "\u{7f}", "\u{feff}", "\u{202e}", "\u{fffd}", "\u{10ffff}",
            "é", "éé", "\u{301}", "-", "--", "\\", "\\\"", "\"", "\"\"", "[", "]", "][", "{", "}", "http:/é",
            "http://", "https://é/", "HTTP://", "http:/éé", "%00", "%ff", "\\x00", "\\u0000", "\\ud800", "${jndi:x}",
            "99999999999999999999999", "-9223372036854775809", "18446744073709551616", "1e999", "NaN",
            "-0", "+1", "0x10", "١٢٣",
        ]).prop_map(str::to_string),
        1 => (0usize..3000).prop_map(|n| "é".repeat(n)),
        1 => (0usize..5000).prop_map(|n| "A".repeat(n)),
    ]
    .boxed()
}

/// Bytes that are not always UTF-8: hostile text, or invalid sequences (a lone continuation byte, a cut
/// multibyte character, an overlong form, a UTF-8-encoded surrogate, bytes 0xF8-0xFF).
fn hostile_bytes() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        4 => hostile_text().prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..16),
        1 => prop::sample::select(vec![
            &b"\x80"[..], b"\xc3", b"\xe9", b"\xe2\x82", b"\xf0\x9f\x98", b"\xc0\xaf", b"\xed\xa0\x80",
            b"\xf8\x88\x80\x80\x80", b"\xff\xfe", b"a\xffb", b"\x00", b"\xc3\x28",
        ]).prop_map(<[u8]>::to_vec),
        1 => (word(), prop::sample::select(vec![&b"\xc3"[..], b"\xff", b"\xe2\x82"])).prop_map(|(w, b)| {
            let mut v = w.into_bytes();
            v.extend_from_slice(b);
            v
        }),
    ]
    .boxed()
}

/// `plain` when not hostile; with `hostile`, `plain` three times in four, else [`hostile_bytes`].
fn field(hostile: bool, plain: BoxedStrategy<Vec<u8>>) -> BoxedStrategy<Vec<u8>> {
    if hostile { prop_oneof![3 => plain, 1 => hostile_bytes()].boxed() } else { plain }
}

fn text_field(hostile: bool, plain: BoxedStrategy<String>) -> BoxedStrategy<Vec<u8>> {
    field(hostile, plain.prop_map(String::into_bytes).boxed())
}

fn ipv4() -> BoxedStrategy<String> {
    (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")).boxed()
}

fn ip() -> BoxedStrategy<String> {
    prop_oneof![
        3 => ipv4(),
        1 => any::<[u16; 8]>().prop_map(|s| std::net::Ipv6Addr::from(s).to_string()),
        1 => Just("010.001.002.003".to_string()),
    ]
    .boxed()
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// A valid calendar date and time of day: (year, month 1-12, day valid in that month, h, m, s).
fn civil(years: std::ops::RangeInclusive<i32>) -> BoxedStrategy<(i32, u32, u32, u32, u32, u32)> {
    (years, 1u32..=12, 1u32..=28, 0u32..24, 0u32..60, 0u32..60).boxed()
}

/// Any arrangement of date-like numbers: out-of-range months, days, hours, leap seconds, huge years.
fn odd_civil() -> BoxedStrategy<(i64, i64, i64, i64, i64, i64)> {
    (
        prop_oneof![Just(0i64), Just(9999), Just(10000), Just(-1), Just(2099), Just(i64::MAX), 0i64..100_000],
        0i64..14,
        0i64..33,
        0i64..26,
        0i64..62,
        prop_oneof![0i64..62, Just(60)],
    )
        .boxed()
}

/// RFC 3339 times: plausible ones (any year 0-9999 that is `plain`), and with `hostile` also leap seconds,
/// years 0 and 9999 with extreme offsets, odd offsets, long fractions, impossible dates.
fn rfc3339(hostile: bool) -> BoxedStrategy<String> {
    let plain = (
        civil(1970..=2100),
        prop::option::of(0u32..1_000_000),
        prop::sample::select(vec!["Z", "+00:00", "-07:00", "+0530", "z"]),
    )
        .prop_map(|((y, mo, d, h, mi, s), frac, zone)| match frac {
            Some(f) => format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{f:06}{zone}"),
            None => format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{zone}"),
        })
        .boxed();
    if !hostile {
        return plain;
    }
    prop_oneof![
        3 => plain,
        2 => (odd_civil(), "[0-9]{0,30}", prop::sample::select(vec!["Z", "", "+99:99", "-23:59", "+23:59", "+24:00", "+1", "+12345", "-00", "Zjunk", " ", "+00:60"]))
            .prop_map(|((y, mo, d, h, mi, s), frac, zone)| {
                let frac = if frac.is_empty() { String::new() } else { format!(".{frac}") };
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}{zone}")
            }),
        1 => prop::sample::select(vec![
            "9999-12-31T23:59:60.999999-23:59", "0000-01-01T00:00:00+23:59", "9999-12-31T23:59:59Z",
            "2016-12-31T23:59:60Z", "2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "+10000-01-01T00:00:00Z",
            "-0001-01-01T00:00:00Z", "2024-08-02T08:53:24.", "2024-08-02T08:53", "2024-08-02", "",
            "2024-08-02T08:53:24.99999999999999999999999999999Z", "２０２４-08-02T08:53:24Z", "2024-08-02T08:53:24é",
        ]).prop_map(str::to_string),
        1 => hostile_text(),
    ]
    .boxed()
}

/// Splices `fields` into `template`'s `\u{1}` placeholders, in order (missing ones stay empty).
fn splice(template: &str, fields: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut fields = fields.iter();
    for (i, part) in template.split('\u{1}').enumerate() {
        if i > 0 {
            out.extend_from_slice(fields.next().map_or(&[][..], Vec::as_slice));
        }
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// Line ends a line-based record may keep: none, `\r`, `\r\n` (the framing strips `\n`).
fn line_end(hostile: bool) -> BoxedStrategy<&'static [u8]> {
    if hostile {
        prop::sample::select(vec![&b""[..], b"\r", b"\r\r", b" ", b"\0"]).boxed()
    } else {
        prop::sample::select(vec![&b""[..], b"\r"]).boxed()
    }
}

// ---------------------------------------------------------------------------------------------------------
// apache_combined

fn clf_time(hostile: bool) -> BoxedStrategy<Vec<u8>> {
    let plain = (civil(1995..=2100), 0u32..24, 0u32..60, any::<bool>())
        .prop_map(|((y, mo, d, h, mi, s), oh, om, neg)| {
            let sign = if neg { '-' } else { '+' };
            format!("{d:02}/{}/{y:04}:{h:02}:{mi:02}:{s:02} {sign}{oh:02}{om:02}", MONTHS[mo as usize - 1]).into_bytes()
        })
        .boxed();
    if !hostile {
        return plain;
    }
    prop_oneof![
        3 => plain,
        2 => (odd_civil(), prop::sample::select(vec!["Jan", "Dec", "jan", "DEC", "Foo", "Ja", "Janu", "é", "ÉÉÉ"]), prop::sample::select(vec!["+0000", "-9999", "+2359", "-2400", "+0060", " 0000", "+00:00", "+000", "é000"]))
            .prop_map(|((y, _, d, h, mi, s), mon, zone)| format!("{d:02}/{mon}/{y:04}:{h:02}:{mi:02}:{s:02} {zone}").into_bytes()),
        1 => prop::sample::select(vec![
            "31/Dec/9999:23:59:60 -2359", "01/Jan/0000:00:00:00 +2359", "29/Feb/2023:00:00:00 +0000",
            "10/Oct/2000:13:55:36", "10/Oct/2000:13:55:36 +0000]", "",
        ]).prop_map(|s| s.as_bytes().to_vec()),
        1 => hostile_bytes(),
    ]
    .boxed()
}

fn request_line(hostile: bool) -> BoxedStrategy<Vec<u8>> {
    let method = prop::sample::select(vec!["GET", "POST", "HEAD", "PROPFIND", "M-SEARCH", "CONNECT"])
        .prop_map(str::to_string)
        .boxed();
    let target = prop_oneof![
        "/[a-z0-9/._?=&%-]{0,40}".boxed(),
        (prop::sample::select(vec!["http://", "https://", "HTTP://", "hTtPs://"]), word(), "(/[a-zé0-9?=]{0,12})?")
            .prop_map(|(s, h, p)| format!("{s}{h}{p}"))
            .boxed(),
        (prop::sample::select(vec!["/", "/é/", "/?q="]), word()).prop_map(|(a, b)| format!("{a}{b}")).boxed(),
    ]
    .boxed();
    let proto = prop::sample::select(vec!["HTTP/1.1", "HTTP/1.0", "HTTP/2.0"]).prop_map(str::to_string).boxed();
    let plain = (method.clone(), target, proto).prop_map(|(m, t, p)| format!("{m} {t} {p}").into_bytes()).boxed();
    if !hostile {
        return plain;
    }
    let hostile_target = prop_oneof![
        (prop::sample::select(vec!["http:/", "http://", "https://", "http:", "h", "https:/"]), hostile_text())
            .prop_map(|(s, t)| format!("{s}{t}").into_bytes()),
        hostile_bytes(),
    ];
    prop_oneof![
        2 => plain,
        2 => (field(true, method.prop_map(String::into_bytes).boxed()), hostile_target, hostile_bytes())
            .prop_map(|(m, t, p)| [m, t, p].join(&b' ')),
        1 => hostile_bytes(),
        1 => prop::sample::select(vec![&b"\x16\x03\x01"[..], b"-", b"", b"GET", b"GET  HTTP/1.1", b"GET http:/\xc3\xa9\xc3\xa9 HTTP/1.1"]).prop_map(<[u8]>::to_vec),
    ]
    .boxed()
}

/// A quoted field's content: with `hostile`, quotes escaped or not, a trailing backslash, bytes.
fn quoted_content(hostile: bool) -> BoxedStrategy<Vec<u8>> {
    let plain = prop_oneof![Just("-".to_string()), "[a-zA-Z0-9 ./();:,é日本-]{1,60}", word()]
        .prop_map(String::into_bytes)
        .boxed();
    if !hostile {
        return plain;
    }
    prop_oneof![
        3 => plain,
        1 => hostile_bytes().prop_map(|b| b.into_iter().flat_map(|c| if c == b'"' { vec![b'\\', b'"'] } else { vec![c] }).collect()),
        1 => hostile_bytes(),
        1 => Just(b"ends with a backslash \\".to_vec()),
    ]
    .boxed()
}

fn apache_line(hostile: bool) -> BoxedStrategy<Vec<u8>> {
    let number = |plain: &'static [&'static str], range: std::ops::Range<u64>| {
        let plain = prop::sample::select(plain.to_vec()).prop_map(|s| s.as_bytes().to_vec()).boxed();
        let digits = range.prop_map(|n| n.to_string().into_bytes()).boxed();
        let plain = prop_oneof![plain, digits].boxed();
        if hostile {
            prop_oneof![
                3 => plain,
                1 => prop::sample::select(vec![&b"99999999999999999999999"[..], b"-1", b"+200", b"1e3", b"0x1F", b"\xd9\xa2\xd9\xa0\xd9\xa0", b"", b"--", b"65536", b"999", b"1000", b"9223372036854775808"]).prop_map(<[u8]>::to_vec),
                1 => hostile_bytes(),
            ]
            .boxed()
        } else {
            plain
        }
    };
    let user = prop_oneof![Just("-".to_string()), word(), Just("frank bob".to_string())].boxed();
    (
        text_field(hostile, ip()),
        text_field(hostile, prop_oneof![Just("-".to_string()), word()].boxed()),
        text_field(hostile, user),
        clf_time(hostile),
        request_line(hostile),
        number(&["200", "404", "301", "500", "-"], 100..1000),
        number(&["0", "-", "1234"], 0..1 << 40),
        prop::option::of((quoted_content(hostile), quoted_content(hostile))),
        if hostile { prop::option::of(hostile_bytes()).boxed() } else { Just(None).boxed() },
        line_end(hostile),
        if hostile { 0usize..8 } else { 0usize..1 },
    )
        .prop_map(|(host, ident, user, time, request, status, size, quoted, extra, end, cut)| {
            let mut fields = vec![host, ident, user, time, request, status, size];
            let template = match quoted {
                Some((referer, agent)) => {
                    fields.push(referer);
                    fields.push(agent);
                    "\u{1} \u{1} \u{1} [\u{1}] \"\u{1}\" \u{1} \u{1} \"\u{1}\" \"\u{1}\""
                }
                None => "\u{1} \u{1} \u{1} [\u{1}] \"\u{1}\" \u{1} \u{1}",
            };
            let mut line = splice(template, &fields);
            if let Some(extra) = extra {
                line.push(b' ');
                line.extend_from_slice(&extra);
            }
            // a line cut short anywhere (buffer limits), even inside a multibyte character
            if cut > 5 {
                let at = line.len() * (cut - 5) / 3;
                line.truncate(at.min(line.len()));
            }
            line.extend_from_slice(end);
            line
        })
        .boxed()
}

// ---------------------------------------------------------------------------------------------------------
// linux_auth

fn syslog_time(hostile: bool) -> BoxedStrategy<Vec<u8>> {
    let bsd = (0usize..12, 1u32..=28, 0u32..24, 0u32..60, 0u32..60)
        .prop_map(|(mo, d, h, mi, s)| format!("{} {d:>2} {h:02}:{mi:02}:{s:02}", MONTHS[mo]).into_bytes())
        .boxed();
    let plain = prop_oneof![3 => bsd, 1 => rfc3339(false).prop_map(String::into_bytes)].boxed();
    if !hostile {
        return plain;
    }
    prop_oneof![
        3 => plain,
        1 => rfc3339(true).prop_map(String::into_bytes),
        1 => (prop::sample::select(vec!["Jan", "Feb", "Dec", "Foo", "jan", "Fé"]), 0i64..100, 0i64..100, 0i64..100, 0i64..100)
            .prop_map(|(m, d, h, mi, s)| format!("{m} {d:>2} {h:02}:{mi:02}:{s:02}").into_bytes()),
        1 => prop::sample::select(vec![&b"Feb 29 00:00:00"[..], b"Dec 31 23:59:60", b"Jan  0 00:00:00", b"Jan 1 00:00:00", b"Jan 01 00:00:0", b"Jan  1 00:00:00\xc3", b"J\xc3\xa9n  1 00:00:00"]).prop_map(<[u8]>::to_vec),
        1 => hostile_bytes(),
    ]
    .boxed()
}

/// `(program tag, message template, placeholders)`: the sshd, sudo, su and PAM messages the normalizer reads.
const SYSLOG_MESSAGES: [(&str, &str); 18] = [
    ("sshd[\u{1}]", "Accepted \u{1} for \u{1} from \u{1} port \u{1} ssh2"),
    ("sshd[\u{1}]", "Failed \u{1} for invalid user \u{1} from \u{1} port \u{1} ssh2"),
    ("sshd[\u{1}]", "Failed \u{1} for \u{1} from \u{1} port \u{1} ssh2"),
    ("sshd[\u{1}]", "Invalid user \u{1} from \u{1} port \u{1}"),
    ("sshd[\u{1}]", "Received disconnect from \u{1}: 11: Bye Bye [preauth]"),
    ("sshd[\u{1}]", "Disconnected from authenticating user \u{1} \u{1} port \u{1} [preauth]"),
    ("sshd[\u{1}]", "Connection closed by invalid user \u{1} \u{1} port \u{1} [preauth]"),
    ("sshd[\u{1}]", "error: maximum authentication attempts exceeded for \u{1} from \u{1} port \u{1} ssh2 [preauth]"),
    ("sshd[\u{1}]", "message repeated \u{1} times: [ Failed password for \u{1} from \u{1} port \u{1} ssh2]"),
    (
        "sshd(pam_unix)[\u{1}]",
        "authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=\u{1}  user=\u{1}",
    ),
    ("sshd[\u{1}]", "reverse mapping checking getaddrinfo for \u{1} [\u{1}] failed - POSSIBLE BREAK-IN ATTEMPT!"),
    ("sudo", "   \u{1} : TTY=pts/0 ; PWD=/home/\u{1} ; USER=\u{1} ; COMMAND=\u{1}"),
    ("sudo", "\u{1} : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/ ; USER=\u{1} ; COMMAND=\u{1}"),
    (
        "sudo",
        "pam_unix(sudo:auth): authentication failure; logname=\u{1} uid=1000 euid=0 tty=/dev/pts/0 ruser=\u{1} rhost=  user=\u{1}",
    ),
    ("su(pam_unix)[\u{1}]", "session opened for user \u{1} by \u{1}(uid=0)"),
    ("su[\u{1}]", "Successful su for \u{1} by \u{1}"),
    ("su[\u{1}]", "FAILED su for \u{1} by \u{1}"),
    ("\u{1}[\u{1}]", "\u{1}"),
];

fn linux_auth_line(hostile: bool) -> BoxedStrategy<Vec<u8>> {
    let value = || {
        text_field(
            hostile,
            prop_oneof![word(), ip(), (1u32..65536).prop_map(|n| n.to_string()), Just("/bin/bash".to_string())].boxed(),
        )
    };
    (
        syslog_time(hostile),
        text_field(hostile, word()),
        0..SYSLOG_MESSAGES.len(),
        prop::collection::vec(value(), 8),
        line_end(hostile),
        if hostile { prop::option::of(hostile_bytes()).boxed() } else { Just(None).boxed() },
    )
        .prop_map(|(time, host, which, values, end, tail)| {
            let (tag, message) = SYSLOG_MESSAGES[which];
            let tag_slots = tag.matches('\u{1}').count();
            let mut line = time;
            line.push(b' ');
            line.extend_from_slice(&host);
            line.push(b' ');
            line.extend_from_slice(&splice(tag, &values[..tag_slots]));
            line.extend_from_slice(b": ");
            line.extend_from_slice(&splice(message, &values[tag_slots..]));
            if let Some(tail) = tail {
                line.extend_from_slice(&tail);
            }
            line.extend_from_slice(end);
            line
        })
        .boxed()
}

// ---------------------------------------------------------------------------------------------------------
// JSON formats: tests/hostile/json.rs

#[path = "hostile/json.rs"]
mod json_records;
use json_records::{CLOUDTRAIL, GENERIC_JSON, GITHUB_AUDIT, K8S_AUDIT, OKTA, WEB_ACCESS_JSON, json_object};

// ---------------------------------------------------------------------------------------------------------
// The properties

fn records(format: Format, hostile: bool) -> BoxedStrategy<Vec<Vec<u8>>> {
    let one = match format {
        Format::ApacheCombined => apache_line(hostile),
        Format::LinuxAuth => linux_auth_line(hostile),
        Format::Cloudtrail => json_object(CLOUDTRAIL, hostile, true),
        Format::K8sAudit => json_object(K8S_AUDIT, hostile, true),
        Format::WebAccessJson => json_object(WEB_ACCESS_JSON, hostile, true),
        Format::Okta => json_object(OKTA, hostile, true),
        Format::GithubAudit => json_object(GITHUB_AUDIT, hostile, true),
        Format::Json => json_object(GENERIC_JSON, hostile, true),
    };
    prop::collection::vec(one, 1..12).boxed()
}

fn config() -> ProptestConfig {
    // each case is up to 11 records through the whole normalizer: a few hundred cases per format stay fast
    ProptestConfig { cases: 192, max_shrink_iters: 2000, ..ProptestConfig::default() }
}

macro_rules! format_properties {
    ($($name:ident: $format:expr;)*) => {$(
        mod $name {
            use super::*;

            proptest! {
                #![proptest_config(config())]

                /// Hostile records: no panic, one row or dead letter each, raw kept whole.
                #[test]
                fn hostile_records_are_rows_or_dead_letters((records, chunk) in (records($format, true), 1usize..6)) {
                    common::check_records($format, &records, chunk);
                }

                /// Plausible records, multibyte text in every free-text field: all are rows.
                #[test]
                fn plausible_records_are_rows(records in records($format, false)) {
                    let out = common::check_records($format, &records, 4);
                    prop_assert!(
                        out.dead_letters.is_empty(),
                        "{:?}: {}",
                        out.dead_letters.first().map(|d| common::show(&d.raw)),
                        out.dead_letters.first().map_or("", |d| d.reason.as_str())
                    );
                }
            }
        }
    )*};
}

format_properties! {
    apache_combined: Format::ApacheCombined;
    linux_auth: Format::LinuxAuth;
    cloudtrail: Format::Cloudtrail;
    k8s_audit: Format::K8sAudit;
    web_access_json: Format::WebAccessJson;
    okta: Format::Okta;
    github_audit: Format::GithubAudit;
    json: Format::Json;
}

/// Known crashers and edge cases, every format, one by one and together.
#[test]
fn known_hostile_records() {
    let apache = [
        r#"1.2.3.4 - - [10/Oct/2023:13:55:36 +0000] "GET http:/éé HTTP/1.1" 200 12 "-" "x""#.as_bytes(),
        r#"1.2.3.4 - - [10/Oct/2023:13:55:36 +0000] "GET https://é HTTP/1.1" 200 12 "-" "x""#.as_bytes(),
        r#"1.2.3.4 - - [10/Oct/2023:13:55:36 +0000] "GET httpé HTTP/1.1" 200 12 "-" "x""#.as_bytes(),
        br#"1.2.3.4 - - [31/Dec/9999:23:59:60 -2359] "GET / HTTP/1.1" 200 12"#,
        br#"1.2.3.4 - - [10/Oct/2023:13:55:36 +0000] "GET / HTTP/1.1" 99999999999 99999999999999999999999"#,
        br#"1.2.3.4 - - [10/Oct/2023:13:55:36 +0000] "GET / HTTP/1.1\"#,
        b"1.2.3.4 - - [10/Oct/2023:13:55:36 +0000] \"GET /\xc3 HTTP/1.1\" 200 1 \"\xc3\" \"\xc3",
        b"\xc3\xa9 \xc3\xa9 \xc3\xa9 [\xc3\xa9] \"\xc3\xa9\" \xc3\xa9 \xc3\xa9",
    ];
    for r in apache {
        common::check_records(Format::ApacheCombined, &[r.to_vec()], 1);
    }
    let auth = [
        &b"Dec 10 06:55:46\xc3\xa9host sshd[1]: x"[..],
        b"Dec 10 06:55:4\xc3\xa9 host sshd[1]: x",
        b"D\xc3\xa9c 10 06:55:46 host sshd[1]: x",
        b"Dec 10 06:55:46 host sshd[: Accepted password for \xc3\xa9 from [\xc3\xa9 port",
        b"Dec 10 06:55:46 host sudo: \xc3\xa9 : COMMAND=",
        b"9999-12-31T23:59:60.999999-23:59 host su[1]: FAILED su for \xc3\xa9 by",
    ];
    for r in auth {
        common::check_records(Format::LinuxAuth, &[r.to_vec()], 1);
    }
    let json = [
        r#"{"timestamp":"2023-10-10T13:55:36Z","request":"GET http:/éé HTTP/1.1","status":200}"#.as_bytes(),
        br#"{"timestamp":1e308,"status":1e999}"#,
        br#"{"timestamp":"9999-12-31T23:59:60.999999-23:59","body_bytes_sent":"NaN","request_time_ms":"inf"}"#,
        br#"{"timestamp":"\ud800","request":"\udc00 \ud800 x"}"#,
        br#"{"published":18446744073709551616}"#,
    ];
    for format in
        [Format::WebAccessJson, Format::Json, Format::Okta, Format::GithubAudit, Format::Cloudtrail, Format::K8sAudit]
    {
        common::check_records(format, &json.iter().map(|r| r.to_vec()).collect::<Vec<_>>(), 2);
    }
}
