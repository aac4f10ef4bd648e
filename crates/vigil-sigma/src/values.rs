//! Sigma values and modifiers, and the SQL that matches them.
//!
//! **Strings** follow the Sigma specification and pySigma's reading of it: `*` matches any run of
//! characters, `?` exactly one, `\*`, `\?` and `\\` are the literal characters, and a backslash before any
//! other character is itself. Matching ignores case for ASCII letters only (as SQLite's `NOCASE` and
//! `LIKE` do, which pySigma's SQL backends rely on): the value is folded with
//! `translate(v, 'A..Z', 'a..z')`, never `lower()`, whose Unicode folding would match more. `|cased`
//! matches case. A value without wildcards is an equality (`IN` for a list); any other is an anchored
//! regular expression over the folded value, the wildcards as `(?s:.*)` and `(?s:.)` (one character, not
//! one byte).
//!
//! **Modifiers**, in the order written, as pySigma applies them:
//!
//! | modifier | becomes |
//! | --- | --- |
//! | `contains`, `startswith`, `endswith` | wildcards added at the ends (for `re`: `.*` as pySigma adds it; for `fieldref`: a prefix, suffix or substring test) |
//! | `all` | the values are ANDed instead of ORed |
//! | `base64`, `base64offset` | the UTF-8 bytes encoded (`base64offset`: the three shifted encodings, ORed) |
//! | `windash` | every `-` or `/` that starts a word also as `/`, `-`, `–`, `—`, `―` (all combinations, ORed; at most 3) |
//! | `re` (+ `i`, `m`, `s`) | `regexp_like(v, '(?ims)pattern')`: a search, unanchored; patterns the regex engine does not take (look-around, backreferences) are refused |
//! | `cidr` | IPv4: the text prefixes pySigma expands a network into (`10.*` for `/8`); IPv6 is refused (pySigma's patterns match addresses outside the network) |
//! | `exists` | `v IS [NOT] NULL` |
//! | `cased` | case-sensitive matching |
//! | `fieldref` | compare with another field of the same event |
//! | `gt`, `gte`, `lt`, `lte` | numeric comparison of the value read as a number (`TRY_CAST(v AS DOUBLE)`) |
//! | `neq` | the item negated |
//!
//! `expand` (placeholders), `wide`/`utf16*` and the time-part modifiers are refused.
//!
//! Other values: a number matches the field's text exactly (`403` matches `403`, not `403.0`); `true`
//! matches `true` (any case) or `1` as pySigma's SQLite backend does; `null` matches a missing or null
//! field. Every match is two-valued (`coalesce(.., false)`): a field the event lacks is false, so `not`
//! reads it as true, as Sigma means.

use base64::Engine as _;

use crate::error::{Refusal, Refused, refuse};
use crate::mapping::sql_str;

/// One part of a Sigma string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    /// Literal text.
    Lit(String),
    /// `*`.
    Any,
    /// `?`.
    One,
}

/// A Sigma string: parts, and whether it matches case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SigmaStr {
    pub parts: Vec<Part>,
    pub cased: bool,
}

impl SigmaStr {
    /// Parses wildcards and escapes.
    pub fn parse(s: &str) -> Self {
        let mut parts = Vec::new();
        let mut acc = String::new();
        let mut escaped = false;
        for c in s.chars() {
            if escaped {
                if !matches!(c, '*' | '?' | '\\') {
                    acc.push('\\');
                }
                acc.push(c);
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '*' || c == '?' {
                if !acc.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut acc)));
                }
                parts.push(if c == '*' { Part::Any } else { Part::One });
            } else {
                acc.push(c);
            }
        }
        if escaped {
            acc.push('\\');
        }
        if !acc.is_empty() {
            parts.push(Part::Lit(acc));
        }
        SigmaStr { parts, cased: false }
    }

    fn literal(text: String) -> Self {
        SigmaStr { parts: if text.is_empty() { vec![] } else { vec![Part::Lit(text)] }, cased: false }
    }

    fn has_wildcards(&self) -> bool {
        self.parts.iter().any(|p| !matches!(p, Part::Lit(_)))
    }

    /// The plain text, when there are no wildcards.
    fn plain(&self) -> Option<String> {
        (!self.has_wildcards()).then(|| {
            self.parts
                .iter()
                .map(|p| match p {
                    Part::Lit(s) => s.as_str(),
                    _ => "",
                })
                .collect()
        })
    }

    fn starts_with_any(&self) -> bool {
        self.parts.first() == Some(&Part::Any)
    }

    fn ends_with_any(&self) -> bool {
        self.parts.last() == Some(&Part::Any)
    }

    /// The anchored regular expression (the literals folded unless cased).
    fn regex(&self) -> String {
        let mut re = String::from(r"\A");
        for p in &self.parts {
            match p {
                Part::Lit(s) => re.push_str(&regex::escape(&self.fold(s))),
                Part::Any => re.push_str("(?s:.*)"),
                Part::One => re.push_str("(?s:.)"),
            }
        }
        re.push_str(r"\z");
        re
    }

    fn fold(&self, s: &str) -> String {
        if self.cased { s.to_string() } else { s.to_ascii_lowercase() }
    }
}

/// A typed value after its modifiers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Str(SigmaStr),
    Num(i64),
    Bool(bool),
    Null,
    Re(String),
    FieldRef {
        field: String,
        starts: bool,
        ends: bool,
    },
    Exists(bool),
    Cmp(&'static str, i64),
    /// Values ORed whatever the item's linking (pySigma's SigmaExpansion).
    Expansion(Vec<Val>),
}

/// Regular expression flags of one value.
#[derive(Debug, Clone, Copy, Default)]
struct Flags {
    i: bool,
    m: bool,
    s: bool,
}

/// A value as read from YAML, before modifiers: its `original` text (strings) for `re` and `cidr`.
#[derive(Debug, Clone)]
pub(crate) enum Raw {
    Str(String),
    Num(i64),
    Bool(bool),
    Null,
}

/// What an item's modifiers say beyond each value.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ItemFlags {
    pub all: bool,
    pub negated: bool,
}

/// Applies `modifiers` to each value; returns the values and the item flags.
pub(crate) fn apply(
    line: u64,
    modifiers: &[&str],
    raw: Vec<Raw>,
    has_field: bool,
) -> Result<(Vec<Val>, ItemFlags), Refused> {
    let mut flags = ItemFlags::default();
    let mut out = Vec::new();
    for value in raw {
        let mut re_flags = Flags::default();
        let mut val = match &value {
            Raw::Str(s) => Val::Str(SigmaStr::parse(s)),
            Raw::Num(n) => Val::Num(*n),
            Raw::Bool(b) => Val::Bool(*b),
            Raw::Null => Val::Null,
        };
        let mut applied: Vec<&str> = Vec::new();
        for &m in modifiers {
            val = modify(line, m, val, &value, &applied, &mut re_flags, &mut flags, has_field)?;
            applied.push(m);
        }
        if let Val::Re(pattern) = &mut val {
            let prefix: String = [(re_flags.i, 'i'), (re_flags.m, 'm'), (re_flags.s, 's')]
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, c)| *c)
                .collect();
            if !prefix.is_empty() {
                *pattern = format!("(?{prefix}){pattern}");
            }
            *pattern = engine_regex(line, pattern)?;
        } else if re_flags.i || re_flags.m || re_flags.s {
            return refuse(
                line,
                Refusal::Modifier,
                "the regular expression flags i, m and s need the `re` modifier before them",
            );
        }
        out.push(val);
    }
    if out.is_empty() {
        return refuse(
            line,
            Refusal::Value,
            "an empty list of values matches nothing in Sigma; remove the item or give a value",
        );
    }
    Ok((out, flags))
}

#[allow(clippy::too_many_arguments)]
fn modify(
    line: u64,
    modifier: &str,
    val: Val,
    raw: &Raw,
    applied: &[&str],
    re_flags: &mut Flags,
    flags: &mut ItemFlags,
    has_field: bool,
) -> Result<Val, Refused> {
    let type_error =
        |what: &str| refuse::<Val>(line, Refusal::Modifier, format!("modifier `{modifier}` does not apply to {what}"));
    // Expansions apply value modifiers to each member.
    if let Val::Expansion(members) = val {
        if matches!(modifier, "all" | "neq") {
            return modify(line, modifier, Val::Null, raw, applied, re_flags, flags, has_field)
                .map(|_| Val::Expansion(members));
        }
        let mut out = Vec::new();
        for member in members {
            match modify(line, modifier, member, raw, applied, re_flags, flags, has_field)? {
                Val::Expansion(inner) => out.extend(inner),
                v => out.push(v),
            }
        }
        return Ok(Val::Expansion(out));
    }
    match modifier {
        "all" => {
            flags.all = true;
            Ok(val)
        }
        "neq" => {
            flags.negated = true;
            Ok(val)
        }
        "contains" | "startswith" | "endswith" => {
            let (front, back) = match modifier {
                "contains" => (true, true),
                "startswith" => (false, true),
                _ => (true, false),
            };
            match val {
                Val::Str(mut s) => {
                    if front && !s.starts_with_any() {
                        s.parts.insert(0, Part::Any);
                    }
                    if back && !s.ends_with_any() {
                        s.parts.push(Part::Any);
                    }
                    Ok(Val::Str(s))
                }
                Val::Re(mut r) => {
                    if has_toplevel_alternation(&r) {
                        r = format!("(?:{r})");
                    }
                    let open_ended = !ends_unescaped(&r, ".*") && !ends_unescaped(&r, "$");
                    let mut out = r.clone();
                    if front && !(r.starts_with(".*") || r.starts_with('^')) {
                        out = format!(".*{out}");
                    }
                    if back && open_ended {
                        out.push_str(".*");
                    }
                    Ok(Val::Re(out))
                }
                Val::FieldRef { field, starts, ends } => {
                    Ok(Val::FieldRef { field, starts: starts || back, ends: ends || front })
                }
                _ => type_error("this value (strings, `re` and `fieldref` only)"),
            }
        }
        "base64" | "base64offset" => {
            let Val::Str(s) = val else { return type_error("this value (strings only)") };
            let Some(text) = s.plain() else {
                return refuse(line, Refusal::Modifier, "Base64 encoding of strings with wildcards is not allowed");
            };
            let data = text.as_bytes();
            let engine = base64::engine::general_purpose::STANDARD;
            if modifier == "base64" {
                return Ok(Val::Str(SigmaStr::literal(engine.encode(data))));
            }
            const START: [usize; 3] = [0, 2, 3];
            let mut members = Vec::new();
            for (i, start) in START.iter().enumerate() {
                let mut shifted = vec![b' '; i];
                shifted.extend_from_slice(data);
                let encoded = engine.encode(&shifted);
                let end = match (data.len() + i) % 3 {
                    0 => encoded.len(),
                    1 => encoded.len().saturating_sub(3),
                    _ => encoded.len().saturating_sub(2),
                };
                let piece = encoded.get(*start..end).unwrap_or("").to_string();
                members.push(Val::Str(SigmaStr::literal(piece)));
            }
            Ok(Val::Expansion(members))
        }
        "windash" => {
            let Val::Str(s) = val else { return type_error("this value (strings only)") };
            windash(line, s)
        }
        "re" => {
            if !applied.is_empty() {
                return refuse(line, Refusal::Modifier, "the `re` modifier only applies to unmodified values");
            }
            match raw {
                Raw::Str(original) => Ok(Val::Re(original.clone())),
                _ => type_error("this value (strings only)"),
            }
        }
        "i" | "ignorecase" | "m" | "multiline" | "s" | "dotall" => {
            if !matches!(val, Val::Re(_)) {
                return type_error("this value (regular expressions only: write `|re|i`)");
            }
            match modifier {
                "i" | "ignorecase" => re_flags.i = true,
                "m" | "multiline" => re_flags.m = true,
                _ => re_flags.s = true,
            }
            Ok(val)
        }
        "cased" => match val {
            Val::Str(mut s) => {
                s.cased = true;
                Ok(Val::Str(s))
            }
            _ => type_error("this value (strings only)"),
        },
        "cidr" => {
            if !applied.is_empty() {
                return refuse(line, Refusal::Modifier, "the `cidr` modifier only applies to unmodified values");
            }
            let Raw::Str(text) = raw else { return type_error("this value (strings only)") };
            cidr(line, text)
        }
        "exists" => {
            if !has_field {
                return refuse(line, Refusal::Modifier, "the `exists` modifier needs a field");
            }
            if !applied.is_empty() {
                return refuse(line, Refusal::Modifier, "the `exists` modifier only applies to unmodified values");
            }
            match val {
                Val::Bool(b) => Ok(Val::Exists(b)),
                _ => type_error("this value (`true` or `false` only)"),
            }
        }
        "fieldref" => match val {
            Val::Str(s) => match s.plain() {
                Some(field) => Ok(Val::FieldRef { field, starts: false, ends: false }),
                None => refuse(line, Refusal::Modifier, "field references must not contain wildcards"),
            },
            _ => type_error("this value (a field name only)"),
        },
        "gt" | "gte" | "lt" | "lte" => match val {
            Val::Num(n) => Ok(Val::Cmp(
                match modifier {
                    "gt" => ">",
                    "gte" => ">=",
                    "lt" => "<",
                    _ => "<=",
                },
                n,
            )),
            _ => type_error("this value (whole numbers only)"),
        },
        "expand" => refuse(
            line,
            Refusal::Modifier,
            "the `expand` modifier needs placeholder values (%name%) that a processing pipeline supplies; vigil has none: write the values into the rule",
        ),
        "wide" | "utf16" | "utf16le" | "utf16be" => refuse(
            line,
            Refusal::Modifier,
            format!("the `{modifier}` modifier matches UTF-16 text, which the logs vigil reads do not hold"),
        ),
        "minute" | "hour" | "day" | "week" | "month" | "year" => refuse(
            line,
            Refusal::Modifier,
            format!("the time-part modifier `{modifier}` has no exact form over vigil's fields"),
        ),
        other => refuse(line, Refusal::Modifier, format!("unknown modifier `{other}`")),
    }
}

/// pySigma's `_regex_has_toplevel_alternation`.
fn has_toplevel_alternation(re: &str) -> bool {
    let b: Vec<char> = re.chars().collect();
    let (mut depth, mut in_class, mut i) = (0i64, false, 0usize);
    while i < b.len() {
        let c = b[i];
        if c == '\\' {
            i += 2;
            continue;
        }
        if in_class {
            if c == ']' {
                in_class = false;
            }
        } else if c == '[' {
            in_class = true;
            if b.get(i + 1) == Some(&'^') {
                i += 1;
            }
            if b.get(i + 1) == Some(&']') {
                i += 1;
            }
        } else if c == '(' {
            depth += 1;
        } else if c == ')' {
            depth -= 1;
        } else if c == '|' && depth == 0 {
            return true;
        }
        i += 1;
    }
    false
}

/// pySigma's `_regex_ends_with_unescaped`.
fn ends_unescaped(re: &str, suffix: &str) -> bool {
    let Some(head) = re.strip_suffix(suffix) else { return false };
    (head.len() - head.trim_end_matches('\\').len()) % 2 == 0
}

/// The pattern for DataFusion's engine (Rust `regex`), read as RE2 reads it (the engine the oracle's
/// SQLite `REGEXP` uses; both take the same syntax): Perl classes are ASCII in RE2 and Unicode in Rust,
/// so `\\w`, `\\d`, `\\s`, `\\b` and their negations are written out as RE2's ASCII sets. Patterns Rust's
/// engine refuses (look-around, backreferences) are refused.
fn engine_regex(line: u64, pattern: &str) -> Result<String, Refused> {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(next) = chars.next() else {
                    out.push('\\');
                    break;
                };
                let (outside, inside): (&str, Option<&str>) = match next {
                    'w' => ("[0-9A-Za-z_]", Some("0-9A-Za-z_")),
                    'W' => ("[^0-9A-Za-z_]", None),
                    'd' => ("[0-9]", Some("0-9")),
                    'D' => ("[^0-9]", None),
                    's' => ("[\\t\\n\\f\\r ]", Some("\\t\\n\\f\\r ")),
                    'S' => ("[^\\t\\n\\f\\r ]", None),
                    'b' if !in_class => ("(?-u:\\b)", None),
                    'B' if !in_class => ("(?-u:\\B)", None),
                    _ => {
                        out.push('\\');
                        out.push(next);
                        continue;
                    }
                };
                if in_class {
                    match inside {
                        Some(set) => out.push_str(set),
                        None => {
                            return refuse(
                                line,
                                Refusal::Value,
                                format!(
                                    "regular expression `{pattern}`: a negated class escape inside [...] has no exact form in vigil's engine"
                                ),
                            );
                        }
                    }
                } else {
                    out.push_str(outside);
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push(c);
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    out.push(']');
                    chars.next();
                }
            }
            '[' if in_class && chars.peek() == Some(&':') => {
                return refuse(
                    line,
                    Refusal::Value,
                    format!("regular expression `{pattern}`: POSIX classes ([[:alpha:]]) are not taken"),
                );
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    if let Err(e) = regex::Regex::new(&out) {
        let first = e.to_string().lines().last().unwrap_or("").trim().to_string();
        return refuse(
            line,
            Refusal::Value,
            format!(
                "regular expression `{pattern}` is not one vigil's engine takes ({first}); look-around and backreferences are not supported"
            ),
        );
    }
    Ok(out)
}

fn windash(line: u64, s: SigmaStr) -> Result<Val, Refused> {
    const DASHES: [&str; 5] = ["-", "/", "\u{2013}", "\u{2014}", "\u{2015}"];
    // Split literals at each dash pySigma's `\B[-/]\b` finds (on the plain text of each literal part).
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let mut template: Vec<Vec<Part>> = vec![Vec::new()];
    let mut slots = 0usize;
    let mut pieces: Vec<Result<Part, ()>> = Vec::new(); // Err(()) = a dash slot
    for part in &s.parts {
        match part {
            Part::Lit(text) => {
                let chars: Vec<char> = text.chars().collect();
                let mut acc = String::new();
                for (i, &c) in chars.iter().enumerate() {
                    let prev = if i == 0 { None } else { Some(chars[i - 1]) };
                    let next = chars.get(i + 1).copied();
                    if (c == '-' || c == '/') && !word(prev) && word(next) {
                        if prev.is_some_and(|p| !p.is_ascii()) || next.is_some_and(|n| !n.is_ascii()) {
                            return refuse(
                                line,
                                Refusal::Modifier,
                                "windash next to a non-ASCII character: word boundaries differ between engines",
                            );
                        }
                        if !acc.is_empty() {
                            pieces.push(Ok(Part::Lit(std::mem::take(&mut acc))));
                        }
                        pieces.push(Err(()));
                        slots += 1;
                    } else {
                        acc.push(c);
                    }
                }
                if !acc.is_empty() {
                    pieces.push(Ok(Part::Lit(acc)));
                }
            }
            other => pieces.push(Ok(other.clone())),
        }
    }
    if slots > 3 {
        return refuse(line, Refusal::Modifier, "windash modifier expands at most three dash occurrences in one value");
    }
    for piece in pieces {
        match piece {
            Ok(p) => template.iter_mut().for_each(|t| t.push(p.clone())),
            Err(()) => {
                template = template
                    .into_iter()
                    .flat_map(|t| {
                        DASHES.iter().map(move |d| {
                            let mut t = t.clone();
                            t.push(Part::Lit((*d).to_string()));
                            t
                        })
                    })
                    .collect();
            }
        }
    }
    let members = template
        .into_iter()
        .map(|parts| {
            // merge adjacent literals
            let mut merged: Vec<Part> = Vec::new();
            for p in parts {
                match (merged.last_mut(), p) {
                    (Some(Part::Lit(a)), Part::Lit(b)) => a.push_str(&b),
                    (_, p) => merged.push(p),
                }
            }
            Val::Str(SigmaStr { parts: merged, cased: s.cased })
        })
        .collect();
    Ok(Val::Expansion(members))
}

fn cidr(line: u64, text: &str) -> Result<Val, Refused> {
    let bad = || refuse::<Val>(line, Refusal::Value, format!("`{text}` is not an IPv4 network such as 10.0.0.0/8"));
    if text.contains(':') {
        return refuse(
            line,
            Refusal::Modifier,
            "IPv6 `cidr`: pySigma's text patterns for IPv6 networks match addresses outside the network, so no exact equivalent exists",
        );
    }
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, p),
        None => (text, "32"),
    };
    let Ok(prefix) = prefix.parse::<u32>() else { return bad() };
    let octets: Vec<&str> = addr.split('.').collect();
    if prefix > 32 || octets.len() != 4 {
        return bad();
    }
    let mut value = 0u32;
    for o in &octets {
        // Python's ip_network refuses leading zeros
        if o.is_empty() || o.len() > 3 || (o.len() > 1 && o.starts_with('0')) {
            return bad();
        }
        let Ok(n) = o.parse::<u8>() else { return bad() };
        value = (value << 8) | u32::from(n);
    }
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
    if value & !mask != 0 {
        return refuse(line, Refusal::Value, format!("`{text}` has host bits set (pySigma refuses it too)"));
    }
    let diff = (8 - prefix % 8) % 8;
    let sub_prefix = prefix + diff;
    let mut members = Vec::new();
    for k in 0..(1u32 << diff) {
        let network = if sub_prefix == 0 { value } else { value | (k << (32 - sub_prefix)) };
        let o = network.to_be_bytes();
        let text = match sub_prefix / 8 {
            0 => "*".to_string(),
            4 => format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3]),
            g => {
                let fixed: Vec<String> = o.iter().take(g as usize).map(|b| b.to_string()).collect();
                format!("{}.*", fixed.join("."))
            }
        };
        members.push(Val::Str(SigmaStr::parse(&text)));
    }
    Ok(Val::Expansion(members))
}

/// Refuses a value that would match one of `texts`, which the field's column reads as null (see
/// `mapping::nullish`): there the SQL and Sigma's reading of the record would differ.
pub(crate) fn check_nullish(line: u64, field: &str, values: &[Val], texts: &[&str]) -> Result<(), Refused> {
    if texts.is_empty() {
        return Ok(());
    }
    let differ = |why: String| {
        refuse::<()>(
            line,
            Refusal::Field,
            format!(
                "field `{field}`: {why}; vigil's access-log columns read {} as missing, so the match would differ",
                texts.iter().map(|t| format!("{t:?}")).collect::<Vec<_>>().join(" and ")
            ),
        )
    };
    for v in values {
        let hit = match v {
            Val::Expansion(members) => {
                check_nullish(line, field, members, texts)?;
                false
            }
            Val::Str(s) => {
                let re = regex::Regex::new(&s.regex()).map_err(|e| Refused {
                    line,
                    kind: Refusal::Value,
                    reason: e.to_string(),
                })?;
                texts.iter().any(|t| re.is_match(&s.fold(t)))
            }
            Val::Num(_) | Val::Cmp(..) => false,
            Val::Bool(b) => texts
                .iter()
                .any(|t| t.eq_ignore_ascii_case(if *b { "true" } else { "false" }) || *t == if *b { "1" } else { "0" }),
            Val::Re(pattern) => {
                let re = regex::Regex::new(pattern).map_err(|e| Refused {
                    line,
                    kind: Refusal::Value,
                    reason: e.to_string(),
                })?;
                texts.iter().any(|t| re.is_match(t))
            }
            Val::Null => return differ("`null`".into()),
            Val::Exists(_) => return differ("`exists`".into()),
            Val::FieldRef { .. } => return differ("`fieldref`".into()),
        };
        if hit {
            return differ("a value that matches such a text".into());
        }
    }
    Ok(())
}

/// `translate(e, 'A..Z', 'a..z')`: ASCII-only case folding.
pub(crate) fn fold(expr: &str) -> String {
    format!("translate({expr}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')")
}

fn two_valued(expr: String) -> String {
    format!("coalesce({expr}, false)")
}

/// SQL for one item: `expr` (the field's text, or the record's text for keywords) against `values`.
/// `field_of` resolves a `fieldref`. Each value's match is two-valued; the values are ORed (ANDed with
/// `all`), expansions always ORed.
pub(crate) fn item_sql(
    line: u64,
    expr: &str,
    keyword: bool,
    values: &[Val],
    flags: ItemFlags,
    field_of: &dyn Fn(&str) -> Result<String, Refused>,
) -> Result<String, Refused> {
    let joiner = if flags.all { " AND " } else { " OR " };
    let mut terms = Vec::new();
    if flags.all {
        for v in values {
            terms.push(value_group(line, expr, keyword, std::slice::from_ref(v), field_of)?);
        }
    } else {
        terms.push(value_group(line, expr, keyword, values, field_of)?);
    }
    let sql = if terms.len() == 1 { terms.remove(0) } else { format!("({})", terms.join(joiner)) };
    Ok(if flags.negated { format!("(NOT {sql})") } else { sql })
}

/// The values ORed, with equalities as one `IN` and patterns as one regular expression per case mode.
fn value_group(
    line: u64,
    expr: &str,
    keyword: bool,
    values: &[Val],
    field_of: &dyn Fn(&str) -> Result<String, Refused>,
) -> Result<String, Refused> {
    let mut flat = Vec::new();
    for v in values {
        match v {
            Val::Expansion(members) => flat.extend(members.iter().cloned()),
            v => flat.push(v.clone()),
        }
    }
    let mut folded_eq = Vec::new();
    let mut cased_eq = Vec::new();
    let mut folded_re = Vec::new();
    let mut cased_re = Vec::new();
    let mut other = Vec::new();
    for v in flat {
        match v {
            Val::Str(mut s) => {
                if keyword {
                    if !s.starts_with_any() {
                        s.parts.insert(0, Part::Any);
                    }
                    if !s.ends_with_any() {
                        s.parts.push(Part::Any);
                    }
                }
                match (s.plain(), s.cased) {
                    (Some(text), false) => folded_eq.push(sql_str(&text.to_ascii_lowercase())),
                    (Some(text), true) => cased_eq.push(sql_str(&text)),
                    (None, false) => folded_re.push(s.regex()),
                    (None, true) => cased_re.push(s.regex()),
                }
            }
            Val::Num(n) => {
                if keyword {
                    folded_re.push(
                        SigmaStr { parts: vec![Part::Any, Part::Lit(n.to_string()), Part::Any], cased: false }.regex(),
                    );
                } else {
                    cased_eq.push(sql_str(&n.to_string()));
                }
            }
            Val::Bool(b) => {
                if keyword {
                    return refuse(line, Refusal::Value, "a boolean keyword has no text to search for; quote it");
                }
                folded_eq.push(sql_str(if b { "true" } else { "false" }));
                cased_eq.push(sql_str(if b { "1" } else { "0" }));
            }
            Val::Null => {
                if keyword {
                    return refuse(line, Refusal::Value, "a null keyword has no text to search for");
                }
                other.push(format!("{expr} IS NULL"));
            }
            Val::Re(pattern) => other.push(two_valued(format!("regexp_like({expr}, {})", sql_str(&pattern)))),
            Val::Exists(true) => other.push(format!("{expr} IS NOT NULL")),
            Val::Exists(false) => other.push(format!("{expr} IS NULL")),
            Val::Cmp(op, n) => other.push(two_valued(format!("TRY_CAST({expr} AS DOUBLE) {op} {n}"))),
            Val::FieldRef { field, starts, ends } => {
                if keyword {
                    return refuse(line, Refusal::Modifier, "`fieldref` needs a field");
                }
                let (a, b) = (fold(expr), fold(&field_of(&field)?));
                other.push(two_valued(match (starts, ends) {
                    (false, false) => format!("{a} = {b}"),
                    (true, false) => format!("starts_with({a}, {b})"),
                    (false, true) => format!("ends_with({a}, {b})"),
                    (true, true) => format!("strpos({a}, {b}) > 0"),
                }));
            }
            Val::Expansion(_) => return refuse(line, Refusal::Modifier, "nested expansions"),
        }
    }
    let mut terms = Vec::new();
    let in_list = |e: String, list: &[String]| {
        if list.len() == 1 {
            two_valued(format!("{e} = {}", list[0]))
        } else {
            two_valued(format!("{e} IN ({})", list.join(", ")))
        }
    };
    if !folded_eq.is_empty() {
        terms.push(in_list(fold(expr), &folded_eq));
    }
    if !cased_eq.is_empty() {
        terms.push(in_list(expr.to_string(), &cased_eq));
    }
    let alternation = |res: &[String]| {
        if res.len() == 1 { res[0].clone() } else { format!("(?:{})", res.join("|")) }
    };
    if !folded_re.is_empty() {
        terms.push(two_valued(format!("regexp_like({}, {})", fold(expr), sql_str(&alternation(&folded_re)))));
    }
    if !cased_re.is_empty() {
        terms.push(two_valued(format!("regexp_like({expr}, {})", sql_str(&alternation(&cased_re)))));
    }
    terms.extend(other);
    Ok(if terms.len() == 1 { terms.remove(0) } else { format!("({})", terms.join(" OR ")) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply1(mods: &[&str], v: &str) -> Vec<Val> {
        apply(1, mods, vec![Raw::Str(v.into())], true).unwrap().0
    }

    #[test]
    fn strings_parse_like_pysigma() {
        assert_eq!(
            SigmaStr::parse(r"a\*b*c?\\d\x").parts,
            vec![Part::Lit("a*b".into()), Part::Any, Part::Lit("c".into()), Part::One, Part::Lit(r"\d\x".into())]
        );
        assert_eq!(SigmaStr::parse("ab\\").parts, vec![Part::Lit("ab\\".into())]);
        assert_eq!(SigmaStr::parse("*Ab.c?").regex(), r"\A(?s:.*)ab\.c(?s:.)\z");
    }

    #[test]
    fn base64offset_matches_pysigma() {
        // pySigma: SigmaBase64OffsetModifier on "/bin/bash"
        let Val::Expansion(m) = &apply1(&["base64offset"], "/bin/bash")[0] else { panic!() };
        let texts: Vec<String> =
            m.iter().map(|v| if let Val::Str(s) = v { s.plain().unwrap() } else { panic!() }).collect();
        // what pySigma 2.0.1 gives: [str(x) for x in SigmaBase64OffsetModifier(None, []).modify(SigmaString('/bin/bash')).values]
        assert_eq!(texts, vec!["L2Jpbi9iYXNo", "9iaW4vYmFza", "vYmluL2Jhc2"]);
        let Val::Str(s) = &apply1(&["base64"], "ab")[0] else { panic!() };
        assert_eq!(s.plain().unwrap(), "YWI=");
    }

    #[test]
    fn windash_and_cidr_expand() {
        let Val::Expansion(m) = &apply1(&["windash", "contains"], " -foo /bar")[0] else { panic!() };
        assert_eq!(m.len(), 25);
        let Val::Expansion(m) = &apply1(&["cidr"], "10.0.0.0/8")[0] else { panic!() };
        assert_eq!(m, &vec![Val::Str(SigmaStr::parse("10.*"))]);
        let Val::Expansion(m) = &apply1(&["cidr"], "192.168.0.0/23")[0] else { panic!() };
        assert_eq!(m, &vec![Val::Str(SigmaStr::parse("192.168.0.*")), Val::Str(SigmaStr::parse("192.168.1.*"))]);
        let Val::Expansion(m) = &apply1(&["cidr"], "1.2.3.4/31")[0] else { panic!() };
        assert_eq!(m, &vec![Val::Str(SigmaStr::parse("1.2.3.4")), Val::Str(SigmaStr::parse("1.2.3.5"))]);
        let Val::Expansion(m) = &apply1(&["cidr"], "0.0.0.0/0")[0] else { panic!() };
        assert_eq!(m, &vec![Val::Str(SigmaStr::parse("*"))]);
        assert!(apply(1, &["cidr"], vec![Raw::Str("::1/128".into())], true).is_err());
        assert!(apply(1, &["cidr"], vec![Raw::Str("10.0.0.1/8".into())], true).is_err());
    }

    #[test]
    fn regex_modifiers() {
        assert_eq!(apply1(&["re", "i"], "a|b"), vec![Val::Re("(?i)a|b".into())]);
        assert!(apply(1, &["re"], vec![Raw::Str("(?<=a)b".into())], true).is_err());
        assert!(apply(1, &["contains", "re"], vec![Raw::Str("a".into())], true).is_err());
        assert!(apply(1, &["expand"], vec![Raw::Str("%x%".into())], true).is_err());
        assert!(apply(1, &["i"], vec![Raw::Str("a".into())], true).is_err());
    }

    #[test]
    fn sql_of_items() {
        let no_ref = |_: &str| -> Result<String, Refused> { Ok("other".into()) };
        let vals = apply(1, &["contains"], vec![Raw::Str("Ab".into()), Raw::Str("c".into())], true).unwrap().0;
        let sql = item_sql(1, "f", false, &vals, ItemFlags::default(), &no_ref).unwrap();
        assert!(sql.contains(r"regexp_like(translate(f"), "{sql}");
        assert!(sql.contains(r"'(?:\A(?s:.*)ab(?s:.*)\z|\A(?s:.*)c(?s:.*)\z)'"), "{sql}");
        let eq = apply(1, &[], vec![Raw::Str("X".into()), Raw::Num(5), Raw::Null], true).unwrap().0;
        let sql = item_sql(1, "f", false, &eq, ItemFlags::default(), &no_ref).unwrap();
        assert!(sql.contains("= 'x'") && sql.contains("f = '5'") && sql.contains("f IS NULL"), "{sql}");
        let (vals, flags) =
            apply(1, &["contains", "all"], vec![Raw::Str("a".into()), Raw::Str("b".into())], true).unwrap();
        assert!(item_sql(1, "f", false, &vals, flags, &no_ref).unwrap().contains(" AND "));
    }
}
