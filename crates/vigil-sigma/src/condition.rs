//! Sigma's `condition`: names of detections combined with `and`, `or`, `not`, parentheses, `1 of X`,
//! `all of X` (`X` a name, a pattern with `*`, or `them`: every detection whose name does not start with
//! `_`). `not` binds tighter than `and`, `and` tighter than `or`, as in pySigma.

use crate::error::{Refusal, Refused, refuse};

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Name(String),
    And,
    Or,
    Not,
    Open,
    Close,
    OneOf,
    AllOf,
}

fn tokens(line: u64, text: &str) -> Result<Vec<Token>, Refused> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '(' {
            chars.next();
            out.push(Token::Open);
        } else if c == ')' {
            chars.next();
            out.push(Token::Close);
        } else if c.is_alphanumeric() || matches!(c, '_' | '*' | '-' | '.') {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_alphanumeric() || matches!(c, '_' | '*' | '-' | '.') {
                    word.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(match word.as_str() {
                "and" => Token::And,
                "or" => Token::Or,
                "not" => Token::Not,
                "1" | "all" => {
                    // `1 of` / `all of`
                    let rest: String = chars.clone().collect();
                    let trimmed = rest.trim_start();
                    if let Some(after) = trimmed.strip_prefix("of")
                        && after.starts_with(char::is_whitespace)
                    {
                        let skip = rest.len() - after.len();
                        for _ in 0..rest[..skip].chars().count() {
                            chars.next();
                        }
                        if word == "1" { Token::OneOf } else { Token::AllOf }
                    } else {
                        Token::Name(word)
                    }
                }
                _ => Token::Name(word),
            });
        } else if c == '|' {
            return refuse(
                line,
                Refusal::Condition,
                "`| ...` aggregations are Sigma's deprecated form of correlations; write a correlation rule",
            );
        } else {
            return refuse(line, Refusal::Condition, format!("unexpected `{c}` in the condition"));
        }
    }
    Ok(out)
}

/// Parses `text` and returns its SQL, with `sql_of(name)` giving each detection's SQL and `names` every
/// detection name (for patterns and `them`).
pub(crate) fn to_sql(
    line: u64,
    text: &str,
    names: &[String],
    sql_of: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Refused> {
    let tokens = tokens(line, text)?;
    let mut parser = Parser { tokens, pos: 0, line, names, sql_of };
    let sql = parser.or()?;
    if parser.pos != parser.tokens.len() {
        return refuse(
            line,
            Refusal::Condition,
            format!("condition `{text}`: unexpected text after a complete expression"),
        );
    }
    Ok(sql)
}

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    line: u64,
    names: &'a [String],
    sql_of: &'a dyn Fn(&str) -> Option<String>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn or(&mut self) -> Result<String, Refused> {
        let mut terms = vec![self.and()?];
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            terms.push(self.and()?);
        }
        Ok(join(terms, " OR "))
    }

    fn and(&mut self) -> Result<String, Refused> {
        let mut terms = vec![self.not()?];
        while self.peek() == Some(&Token::And) {
            self.pos += 1;
            terms.push(self.not()?);
        }
        Ok(join(terms, " AND "))
    }

    fn not(&mut self) -> Result<String, Refused> {
        if self.peek() == Some(&Token::Not) {
            self.pos += 1;
            return Ok(format!("(NOT {})", self.not()?));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<String, Refused> {
        let line = self.line;
        match self.tokens.get(self.pos).cloned() {
            Some(Token::Open) => {
                self.pos += 1;
                let inner = self.or()?;
                if self.peek() != Some(&Token::Close) {
                    return refuse(line, Refusal::Condition, "a `(` in the condition is not closed");
                }
                self.pos += 1;
                Ok(inner)
            }
            Some(Token::Name(name)) => {
                self.pos += 1;
                if name.contains('*') {
                    return refuse(
                        line,
                        Refusal::Condition,
                        format!("`{name}`: a pattern needs `1 of` or `all of` before it"),
                    );
                }
                (self.sql_of)(&name).ok_or_else(|| Refused {
                    line,
                    kind: Refusal::Condition,
                    reason: format!("the condition names `{name}`, which the detection does not define"),
                })
            }
            Some(quantifier @ (Token::OneOf | Token::AllOf)) => {
                self.pos += 1;
                let Some(Token::Name(pattern)) = self.tokens.get(self.pos).cloned() else {
                    return refuse(
                        line,
                        Refusal::Condition,
                        "`1 of` / `all of` needs a name, a pattern or `them` after it",
                    );
                };
                self.pos += 1;
                let matched: Vec<&String> = if pattern == "them" {
                    self.names.iter().filter(|n| !n.starts_with('_')).collect()
                } else {
                    self.names.iter().filter(|n| wildcard_match(&pattern, n)).collect()
                };
                if matched.is_empty() {
                    return refuse(line, Refusal::Condition, format!("`{pattern}` matches no detection"));
                }
                let mut parts = Vec::new();
                for name in matched {
                    parts.push((self.sql_of)(name).ok_or_else(|| Refused {
                        line,
                        kind: Refusal::Condition,
                        reason: format!("`{name}` has no detection"),
                    })?);
                }
                Ok(join(parts, if quantifier == Token::OneOf { " OR " } else { " AND " }))
            }
            _ => refuse(line, Refusal::Condition, "the condition is incomplete (an operator without an operand?)"),
        }
    }
}

fn join(mut terms: Vec<String>, joiner: &str) -> String {
    if terms.len() == 1 { terms.remove(0) } else { format!("({})", terms.join(joiner)) }
}

/// `*` in `pattern` matches any run of characters of `name`.
fn wildcard_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let Some((first, rest)) = parts.split_first() else { return false };
    let Some(mut remaining) = name.strip_prefix(first) else { return false };
    let Some((last, middle)) = rest.split_last() else { return remaining.is_empty() };
    for part in middle {
        match remaining.find(part) {
            Some(i) => remaining = &remaining[i + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(cond: &str) -> Result<String, Refused> {
        let names: Vec<String> = ["sel", "filter_a", "filter_b", "_hidden"].iter().map(|s| s.to_string()).collect();
        to_sql(9, cond, &names, &|n| names.iter().any(|x| x == n).then(|| n.to_uppercase()))
    }

    #[test]
    fn precedence_and_quantifiers() {
        assert_eq!(sql("sel and not 1 of filter_*").unwrap(), "(SEL AND (NOT (FILTER_A OR FILTER_B)))");
        assert_eq!(sql("sel or filter_a and filter_b").unwrap(), "(SEL OR (FILTER_A AND FILTER_B))");
        assert_eq!(sql("not sel and filter_a").unwrap(), "((NOT SEL) AND FILTER_A)");
        assert_eq!(sql("all of them").unwrap(), "(SEL AND FILTER_A AND FILTER_B)");
        assert_eq!(sql("(sel or filter_a) and _hidden").unwrap(), "((SEL OR FILTER_A) AND _HIDDEN)");
        assert_eq!(sql("1 of sel").unwrap(), "SEL");
        assert_eq!(sql("missing").unwrap_err().line, 9);
        assert!(sql("1 of nothing_*").is_err());
        assert!(sql("sel | count() > 5").is_err());
        assert!(sql("sel and").is_err());
        assert!(sql("(sel").is_err());
        assert!(wildcard_match("a*b*c", "axxbyyc") && !wildcard_match("a*c", "ab") && wildcard_match("*", "x"));
    }
}
