//! Value forms that need more than a wildcard pattern: regular expressions as the rule engine reads them
//! (`re`), Windows dash variants (`windash`) and IPv4 networks (`cidr`), each exact or refused.

use crate::error::{Refusal, Refused, refuse};
use crate::values::{Part, SigmaStr, Val};

/// pySigma's `_regex_has_toplevel_alternation`.
pub(crate) fn has_toplevel_alternation(re: &str) -> bool {
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
pub(crate) fn ends_unescaped(re: &str, suffix: &str) -> bool {
    let Some(head) = re.strip_suffix(suffix) else { return false };
    (head.len() - head.trim_end_matches('\\').len()) % 2 == 0
}

/// The pattern for DataFusion's engine (Rust `regex`), read as RE2 reads it (the engine the oracle's
/// SQLite `REGEXP` uses; both take the same syntax): Perl classes are ASCII in RE2 and Unicode in Rust,
/// so `\\w`, `\\d`, `\\s`, `\\b` and their negations are written out as RE2's ASCII sets. Patterns Rust's
/// engine refuses (look-around, backreferences) are refused.
pub(crate) fn engine_regex(line: u64, pattern: &str) -> Result<String, Refused> {
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

pub(crate) fn windash(line: u64, s: SigmaStr) -> Result<Val, Refused> {
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

pub(crate) fn cidr(line: u64, text: &str) -> Result<Val, Refused> {
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
