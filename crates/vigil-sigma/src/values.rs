//! Sigma values and modifiers: what each value becomes (the forms that need more in `forms`, the SQL
//! that matches them in `item_sql`).
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
use crate::forms::{cidr, ends_unescaped, engine_regex, has_toplevel_alternation, windash};

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

    pub(crate) fn literal(text: String) -> Self {
        SigmaStr { parts: if text.is_empty() { vec![] } else { vec![Part::Lit(text)] }, cased: false }
    }

    pub(crate) fn has_wildcards(&self) -> bool {
        self.parts.iter().any(|p| !matches!(p, Part::Lit(_)))
    }

    /// The plain text, when there are no wildcards.
    pub(crate) fn plain(&self) -> Option<String> {
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

    pub(crate) fn starts_with_any(&self) -> bool {
        self.parts.first() == Some(&Part::Any)
    }

    pub(crate) fn ends_with_any(&self) -> bool {
        self.parts.last() == Some(&Part::Any)
    }

    /// The anchored regular expression (the literals folded unless cased).
    pub(crate) fn regex(&self) -> String {
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

    pub(crate) fn fold(&self, s: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item_sql::item_sql;

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
