//! A rule pack: the rule files of one or more directories, loaded, checked and hashed. SQL files parse one
//! by one; Sigma files convert together, since a correlation names rules in other files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::rule::Rule;
use crate::validate::check_read_only;
use crate::{Error, Result};

/// Tables a rule may query.
pub const TABLES: [&str; 1] = ["events"];

/// The rules of one or more directories, in load order, with the pack's hash.
#[derive(Debug, Clone, Default)]
pub struct RulePack {
    /// Rules sorted by directory, then file name.
    pub rules: Vec<Rule>,
    /// SHA-256 over every rule's id and hash: which rule versions were active (CC8.1).
    pub hash: String,
    /// Sigma rules vigil cannot express exactly, not loaded: `file:line: reason` each ([`crate::sigma`]).
    pub refused: Vec<String>,
}

impl RulePack {
    /// Builds a pack from rules, refusing duplicate ids.
    pub fn new(rules: Vec<Rule>) -> std::result::Result<Self, Vec<Error>> {
        let mut errors = Vec::new();
        let mut seen: BTreeMap<&str, &Path> = BTreeMap::new();
        for rule in &rules {
            if let Some(first) = seen.insert(&rule.id, &rule.path) {
                errors.push(Error::rule(
                    &rule.path,
                    1,
                    format!("rule id `{}` is already used by {}", rule.id, first.display()),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut hasher = Sha256::new();
        for rule in &rules {
            hasher.update(rule.id.as_bytes());
            hasher.update([0u8]);
            hasher.update(rule.hash.as_bytes());
            hasher.update([b'\n']);
        }
        Ok(RulePack { rules, hash: hex::encode(hasher.finalize()), refused: Vec::new() })
    }
}

/// The rule files directly in `dir` (`.sql`, and Sigma `.yml`/`.yaml`), sorted by name.
pub fn rule_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |source| Error::Io { path: dir.to_path_buf(), source };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| crate::sigma::is_rule_file(p) && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Loads and checks every rule file of `dirs` (header and read-only SQL). All problems are returned, not
/// only the first, so `vigil validate` can list them.
pub fn load_rules(dirs: &[PathBuf]) -> std::result::Result<RulePack, Vec<Error>> {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    let mut refused = Vec::new();
    let mut loaded = Vec::new();
    let mut sigma_files = Vec::new();
    let mut order: Vec<PathBuf> = Vec::new();
    for dir in dirs {
        let files = match rule_files(dir) {
            Ok(files) => files,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if files.is_empty() {
            errors.push(Error::Io {
                path: dir.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no .sql or Sigma .yml rule files in this directory",
                ),
            });
        }
        for path in files {
            order.push(path.clone());
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(source) => {
                    errors.push(Error::Io { path: path.clone(), source });
                    continue;
                }
            };
            if vigil_sigma::is_sigma_file(&path) {
                sigma_files.push((path, text)); // converted together below: correlations span files
            } else {
                loaded.push(crate::sigma::parse_rule_file(&path, &text));
            }
        }
    }
    loaded.extend(crate::sigma::parse_sigma_files(&sigma_files));
    for result in loaded {
        match result.and_then(|rule| check_read_only(&rule.path, &rule.sql, &TABLES).map(|()| rule)) {
            Ok(rule) => rules.push(rule),
            Err(e @ Error::Unsupported { .. }) => {
                tracing::warn!(rule = %e, "Sigma rule not loaded: vigil cannot express it exactly");
                refused.push(e.to_string());
            }
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // in directory and file order, as listed (a stable sort keeps a file's documents in order)
    rules.sort_by_key(|rule| order.iter().position(|p| *p == rule.path));
    RulePack::new(rules).map(|pack| RulePack { refused, ..pack })
}
