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
// JSON formats

/// A JSON string literal of `s`, escaped as JSON writers do.
fn json_string(s: &str) -> String {
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
fn hostile_json_scalar() -> BoxedStrategy<Vec<u8>> {
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
fn hostile_json_value() -> BoxedStrategy<Vec<u8>> {
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
enum Shape {
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

fn any_text() -> BoxedStrategy<String> {
    prop_oneof![word(), "[a-zA-Z0-9 é日本-]{1,30}"].boxed()
}

fn ip_text() -> BoxedStrategy<String> {
    ip()
}

fn arn() -> BoxedStrategy<String> {
    word().prop_map(|w| format!("arn:aws:iam::123456789012:user/{w}")).boxed()
}

fn request_text() -> BoxedStrategy<String> {
    request_line(false).prop_map(|b| String::from_utf8(b).expect("plausible values are text")).boxed()
}

/// The value of a field: plausible for its shape, or (with `hostile`, one time in three) any JSON value.
fn json_value(shape: &Shape, hostile: bool) -> BoxedStrategy<Vec<u8>> {
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
fn json_object(fields: &'static [(&'static str, Shape)], hostile: bool, top: bool) -> BoxedStrategy<Vec<u8>> {
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

const CLOUDTRAIL: &[(&str, Shape)] = &[
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

const K8S_AUDIT: &[(&str, Shape)] = &[
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

const WEB_ACCESS_JSON: &[(&str, Shape)] = &[
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

const OKTA: &[(&str, Shape)] = &[
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

const GITHUB_AUDIT: &[(&str, Shape)] = &[
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

const GENERIC_JSON: &[(&str, Shape)] = &[
    ("time", Shape::Time { epoch: true }),
    ("ts", Shape::Time { epoch: true }),
    ("level", Shape::Text(word)),
    ("msg", Shape::Text(any_text)),
    ("user", Shape::Object(&[("name", Shape::Text(word))])),
    ("tags", Shape::Array(&[("k", Shape::Text(word))])),
];

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
