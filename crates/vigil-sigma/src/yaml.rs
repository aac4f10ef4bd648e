//! A YAML document as a tree whose every node knows its line, so that a refusal can say `file:line`.
//!
//! Built from `yaml-rust2`'s event parser. Scalars keep their text and whether they were quoted; how a
//! plain scalar is typed follows YAML 1.1 as PyYAML reads it (pySigma's loader), and forms where YAML
//! 1.1 and 1.2 disagree (`yes`, `off`, `0o17`, `1_000`, `1:30`, floats) are reported as such, so the
//! converter can refuse them rather than guess.

use std::sync::LazyLock;

use regex::Regex;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A plain decimal integer, read the same by YAML 1.1 and 1.2.
static DECIMAL: LazyLock<Regex> = LazyLock::new(|| regex_of(r"^[-+]?(?:0|[1-9][0-9]*)$"));
/// PyYAML's int and float resolvers (YAML 1.1).
static YAML11_NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    regex_of(concat!(
        r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$",
        r"|^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ))
});
/// PyYAML's timestamp resolver.
static YAML11_DATE: LazyLock<Regex> = LazyLock::new(|| regex_of(r"^[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?"));

#[allow(clippy::expect_used)]
fn regex_of(pattern: &str) -> Regex {
    Regex::new(pattern).expect("a constant pattern (bug)")
}

/// One node of the tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// 1-based line where the node starts.
    pub line: u64,
    /// What it is.
    pub kind: Kind,
}

/// The kinds of node.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A scalar: its text and whether it was quoted (or a block scalar), which makes it a string.
    Scalar {
        /// The text.
        text: String,
        /// Quoted or block style: always a string.
        quoted: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order.
    Map(Vec<(Node, Node)>),
}

/// A scalar's type under YAML 1.1 (PyYAML's resolver).
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    /// `null`, `~` or nothing.
    Null,
    /// `true` / `false` (any of PyYAML's spellings).
    Bool(bool),
    /// A decimal integer without leading zeros.
    Int(i64),
    /// A string.
    Str(&'a str),
    /// A plain scalar YAML 1.1 reads as something vigil does not take (a float, an octal or
    /// sexagesimal number, `yes`/`no`/`on`/`off`): the reason.
    Ambiguous(&'static str),
}

impl Node {
    /// The scalar's text, if it is one.
    pub fn text(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The scalar typed as PyYAML types it.
    pub fn scalar(&self) -> Option<Scalar<'_>> {
        let Kind::Scalar { text, quoted } = &self.kind else { return None };
        if *quoted {
            return Some(Scalar::Str(text));
        }
        Some(match text.as_str() {
            "" | "~" | "null" | "Null" | "NULL" => Scalar::Null,
            "true" | "True" | "TRUE" => Scalar::Bool(true),
            "false" | "False" | "FALSE" => Scalar::Bool(false),
            "yes" | "Yes" | "YES" | "no" | "No" | "NO" | "on" | "On" | "ON" | "off" | "Off" | "OFF" | "y" | "Y"
            | "n" | "N" => {
                Scalar::Ambiguous("YAML 1.1 (pySigma's loader) reads this unquoted word as a boolean; quote it")
            }
            t => {
                if DECIMAL.is_match(t) {
                    match t.parse::<i64>() {
                        Ok(n) => Scalar::Int(n),
                        Err(_) => Scalar::Ambiguous("the number does not fit 64 bits; quote it"),
                    }
                } else if YAML11_NUMBER.is_match(t) {
                    Scalar::Ambiguous(
                        "YAML 1.1 (pySigma's loader) reads this unquoted value as a number vigil does not compare exactly (octal, hex, binary, sexagesimal, a float or with `_`); quote it",
                    )
                } else if YAML11_DATE.is_match(t) {
                    Scalar::Ambiguous("YAML 1.1 (pySigma's loader) reads this unquoted value as a date; quote it")
                } else {
                    Scalar::Str(t)
                }
            }
        })
    }

    /// The value of `key` in a mapping (first occurrence).
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(entries) => entries.iter().find(|(k, _)| k.text() == Some(key)).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Why a document could not be read: the line and the parser's message.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    /// 1-based line.
    pub line: u64,
    /// What is wrong.
    pub message: String,
}

/// Parses `text`, which must hold one document. Aliases, tags and repeated keys are refused: Sigma rules
/// do not use them, and each would need YAML semantics vigil would have to match exactly.
pub fn parse(text: &str) -> Result<Node, YamlError> {
    let mut documents = parse_all(text)?;
    if documents.len() > 1 {
        let line = documents[1].line;
        return Err(YamlError { line, message: "a second YAML document (`---`) where one was expected".into() });
    }
    Ok(documents.remove(0))
}

/// Parses every document of `text` (a Sigma file may hold several, separated by `---`: a correlation and
/// the rules it references). Empty documents are left out; a file without any is an error.
pub fn parse_all(text: &str) -> Result<Vec<Node>, YamlError> {
    let mut builder = Builder { stack: Vec::new(), roots: Vec::new(), error: None };
    let mut parser = Parser::new_from_str(text);
    parser
        .load(&mut builder, true)
        .map_err(|e| YamlError { line: e.marker().line() as u64, message: e.info().to_string() })?;
    if let Some(error) = builder.error {
        return Err(error);
    }
    // an empty document (a trailing `---`) reads as a null scalar: nothing
    let documents: Vec<Node> =
        builder.roots.into_iter().flatten().filter(|d| d.scalar() != Some(Scalar::Null)).collect();
    if documents.is_empty() {
        return Err(YamlError { line: 1, message: "the file holds no YAML document".into() });
    }
    Ok(documents)
}

enum Open {
    Seq(u64, Vec<Node>),
    Map(u64, Vec<(Node, Node)>, Option<Node>),
}

struct Builder {
    stack: Vec<Open>,
    /// One per document started: its root node, if it has one.
    roots: Vec<Option<Node>>,
    error: Option<YamlError>,
}

impl Builder {
    fn fail(&mut self, line: u64, message: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some(YamlError { line, message: message.into() });
        }
    }

    fn push(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => {
                if let Some(root @ None) = self.roots.last_mut() {
                    *root = Some(node);
                }
            }
            Some(Open::Seq(_, items)) => items.push(node),
            Some(Open::Map(_, entries, key)) => match key.take() {
                None => {
                    if let Some(text) = node.text()
                        && let Some((first, _)) = entries.iter().find(|(k, _)| k.text() == Some(text))
                    {
                        let (line, first) = (node.line, first.line);
                        *key = Some(node);
                        self.fail(line, format!("this key repeats the one on line {first}"));
                        return;
                    }
                    *key = Some(node);
                }
                Some(k) => entries.push((k, node)),
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let line = mark.line() as u64;
        match event {
            Event::DocumentStart => self.roots.push(None),
            Event::Scalar(text, style, anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    self.fail(line, "YAML anchors and tags are not taken in Sigma rules");
                }
                let quoted = !matches!(style, TScalarStyle::Plain);
                self.push(Node { line, kind: Kind::Scalar { text, quoted } });
            }
            Event::SequenceStart(anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    self.fail(line, "YAML anchors and tags are not taken in Sigma rules");
                }
                self.stack.push(Open::Seq(line, Vec::new()));
            }
            Event::MappingStart(anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    self.fail(line, "YAML anchors and tags are not taken in Sigma rules");
                }
                self.stack.push(Open::Map(line, Vec::new(), None));
            }
            Event::SequenceEnd => {
                if let Some(Open::Seq(start, items)) = self.stack.pop() {
                    self.push(Node { line: start, kind: Kind::Seq(items) });
                }
            }
            Event::MappingEnd => {
                if let Some(Open::Map(start, entries, _)) = self.stack.pop() {
                    self.push(Node { line: start, kind: Kind::Map(entries) });
                }
            }
            Event::Alias(_) => self.fail(line, "YAML aliases are not taken in Sigma rules"),
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_types() {
        let doc =
            parse("title: x\ndetection:\n  sel:\n    a: 5\n    b: 'NO'\n    c: NO\n    d:\n      - ~\n      - 1.5\n")
                .unwrap();
        let sel = doc.get("detection").unwrap().get("sel").unwrap();
        assert_eq!(sel.line, 4);
        assert_eq!(sel.get("a").unwrap().scalar(), Some(Scalar::Int(5)));
        assert_eq!(sel.get("b").unwrap().scalar(), Some(Scalar::Str("NO")));
        assert!(matches!(sel.get("c").unwrap().scalar(), Some(Scalar::Ambiguous(_))));
        let Kind::Seq(items) = &sel.get("d").unwrap().kind else { panic!() };
        assert_eq!(items[0].scalar(), Some(Scalar::Null));
        assert_eq!(items[1].line, 9);
        assert!(matches!(items[1].scalar(), Some(Scalar::Ambiguous(_))));
        assert_eq!(parse("a: 1\na: 2\n").unwrap_err().line, 2);
        assert_eq!(parse("a: [1\n").unwrap_err().line, 2);
        assert!(parse("a: &x 1\nb: *x\n").is_err());
        let docs = parse_all("a: 1\n---\nb: 2\n---\n").unwrap();
        assert_eq!((docs.len(), docs[1].line), (2, 3));
        assert_eq!(parse("a: 1\n---\nb: 2\n").unwrap_err().line, 3);
        assert!(parse_all("").is_err());
    }
}
