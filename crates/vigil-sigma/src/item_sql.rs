//! The SQL of one detection item: its values (after the modifiers) matched against a field's text, always
//! two-valued, and the check that a value does not depend on what an access-log column cannot tell apart.

use crate::error::{Refusal, Refused, refuse};
use crate::mapping::sql_str;
use crate::values::{ItemFlags, Part, SigmaStr, Val};

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

pub(crate) fn two_valued(expr: String) -> String {
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
pub(crate) fn value_group(
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
