//! Sigma rules in rule directories: a `.yml` or `.yaml` file beside the `.sql` rules is converted by
//! [`vigil_sigma`] into a vigil rule (header and SQL), then loaded like any other rule; `vigil sigma
//! convert` shows the SQL or the refusal.
//!
//! A rule vigil cannot express exactly (a logsource without a normalizer, a modifier, a field the logs do
//! not have, a correlation: [`Error::Unsupported`]) is not loaded: [`crate::load_rules`] logs a warning
//! naming the file, the line and the reason, lists it in [`crate::RulePack::refused`], and loads the rest,
//! so a SigmaHQ folder dropped into a rule directory runs every rule vigil can run. A Sigma file that is
//! broken (not YAML, no `detection`, a condition naming a detection that does not exist) is an invalid
//! rule like any other: the pack does not load.
//!
//! The rule's text is the converted SQL, which names the Sigma file and its SHA-256; the rule's hash is
//! that text's, as for SQL rules, so the text the archive keeps for an alert's `rule_hash` is the SQL that
//! ran. Its Sigma `id`, `title` and `author` ride along as [`SourceRule`] in the rule and in
//! every alert it raises (SigmaHQ's Detection Rule License asks that alerts carry the author).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::rule::{Rule, parse_rule};
use crate::{Error, Result};

/// Where a rule came from when it was not written as vigil SQL: carried by the rule and its alerts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceRule {
    /// The rule language: `sigma`.
    pub format: &'static str,
    /// The source rule's own id (a Sigma rule's UUID).
    pub id: String,
    /// Its title.
    pub title: String,
    /// Its author(s).
    pub author: String,
    /// Its level as written (`informational`, `low`, ...).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub level: String,
    /// Its logsource, as `product: aws, service: cloudtrail`.
    pub logsource: String,
}

/// Whether `path` is a rule file: `.sql`, or Sigma's `.yml` / `.yaml`.
pub fn is_rule_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "sql") || vigil_sigma::is_sigma_file(path)
}

/// Parses a rule file of either kind: `.sql` with [`parse_rule`], Sigma YAML through [`vigil_sigma`] (a
/// file alone: a correlation's rules must be in it; [`parse_sigma_files`] converts a set together).
pub fn parse_rule_file(path: &Path, text: &str) -> Result<Rule> {
    if !vigil_sigma::is_sigma_file(path) {
        return parse_rule(path, text);
    }
    vigil_sigma::convert(path, text).map_err(refused).and_then(rule_of)
}

/// Converts Sigma files together, as pySigma converts a collection (a correlation may reference a rule in
/// any of them), and parses every rule that alerts on its own: the rules a correlation references
/// without `generate: true` run only inside it.
pub fn parse_sigma_files(files: &[(PathBuf, String)]) -> Vec<Result<Rule>> {
    vigil_sigma::convert_files(files)
        .into_iter()
        .filter(|c| c.as_ref().map_or(true, |c| c.standalone))
        .map(|c| c.map_err(refused).and_then(rule_of))
        .collect()
}

fn refused(e: vigil_sigma::Error) -> Error {
    match e {
        vigil_sigma::Error::Refused { path, line, reason, kind } => {
            let reason = format!("Sigma rule not converted: {reason}");
            match kind {
                vigil_sigma::Refusal::Yaml | vigil_sigma::Refusal::Condition => Error::Rule { path, line, reason },
                _ => Error::Unsupported { path, line, reason },
            }
        }
    }
}

fn rule_of(converted: vigil_sigma::Converted) -> Result<Rule> {
    let mut rule = parse_rule(&converted.path, &converted.sql)?;
    let meta = converted.meta;
    rule.source_rule = Some(SourceRule {
        format: "sigma",
        id: meta.id,
        title: meta.title,
        author: meta.author,
        level: meta.level,
        logsource: meta.logsource,
    });
    Ok(rule)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn sigma_files_load_as_rules() {
        let yml = "title: Root used\nid: 8ad1\nauthor: A. Author\nlogsource:\n  product: aws\n  service: cloudtrail\ndetection:\n  sel:\n    userIdentity.type: Root\n  condition: sel\nlevel: high\n";
        let rule = parse_rule_file(Path::new("rules/root_used.yml"), yml).unwrap();
        assert_eq!((rule.id.as_str(), rule.severity.as_str()), ("root_used", "high"));
        assert_eq!(rule.hash, hex::encode(Sha256::digest(rule.sql.as_bytes())));
        assert!(
            rule.sql.contains(&hex::encode(Sha256::digest(yml.as_bytes()))),
            "the text names its Sigma file's hash"
        );
        let source = rule.source_rule.unwrap();
        assert_eq!((source.id.as_str(), source.author.as_str(), source.format), ("8ad1", "A. Author", "sigma"));
        let err = parse_rule_file(Path::new("r.yml"), &yml.replace("type: Root", "type|expand: '%x%'"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("r.yml:9: Sigma rule not converted: the `expand` modifier"), "{err}");
        let broken = parse_rule_file(Path::new("r.yml"), &yml.replace("condition: sel", "condition: other"));
        assert!(matches!(broken, Err(Error::Rule { line: 10, .. })), "a broken rule is invalid: {broken:?}");
        assert!(
            is_rule_file(Path::new("a.yaml")) && is_rule_file(Path::new("a.sql")) && !is_rule_file(Path::new("a.md"))
        );
    }
}
