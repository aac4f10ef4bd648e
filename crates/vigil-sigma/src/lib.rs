//! Sigma rules to vigil rules: one Sigma YAML file becomes a vigil rule header and a DataFusion SQL query
//! over the `events` table, or is refused with the file, the line and the reason.
//!
//! ```text
//!  rule.yml ─ yaml (tree with lines) ─ logsource ─> events selected (mapping)
//!                                    ─ detection ─> each named detection to SQL (values, modifiers)
//!                                    ─ condition ─> the detections combined (condition)
//!                                    ─ metadata  ─> header: id, title, severity, criteria, tags
//! ```
//!
//! Exactness beats coverage: a rule is converted only when the SQL matches exactly the events Sigma's
//! semantics (as pySigma implements them) match; anything else is refused, never approximated. What
//! each logsource reads is in [`mapping`](crate::mapping); how values and modifiers match is in
//! `values`. Correlation rules (`event_count`, `value_count`, `temporal`, `temporal_ordered`) become
//! `kind: correlation` rules, which report every window that meets the condition as Sigma does (see
//! `correlation`); a file set is converted together ([`convert_files`]), since a correlation names rules
//! by `name` or `id`, in its own file (documents separated by `---`) or in another.
//!
//! **Metadata.** `level` is the severity (`informational` → `info`; a rule without `level` is
//! `medium`). `tags` are kept, with `sigma` added. SOC 2 criteria: a rule's own `criteria` key (a list or
//! a comma-separated string, a vigil extension of Sigma) wins; otherwise every rule gets `CC7.2` (the
//! entity monitors for anomalies) plus, per ATT&CK tactic tag:
//!
//! | tag | criteria |
//! | --- | --- |
//! | `attack.initial-access`, `attack.credential-access` | CC6.1 |
//! | `attack.persistence`, `attack.privilege-escalation` | CC6.3 |
//! | `attack.lateral-movement`, `attack.command-and-control` | CC6.6 |
//! | `attack.exfiltration`, `attack.collection` | CC6.7, C1.1 |
//! | `attack.defense-evasion`, `attack.stealth` | CC7.3 |
//! | `attack.impact` | A1.2 |
//!
//! The Sigma `id`, `title` and `author` travel with the rule ([`SigmaMeta`]) and every alert it raises
//! carries them, as the Detection Rule License (DRL 1.1) of SigmaHQ's rules requires.
//!
//! ```
//! let yml = "title: Root login\nid: 1f2e\nauthor: someone\nlogsource:\n  product: aws\n  service: cloudtrail\ndetection:\n  sel:\n    userIdentity.type: Root\n  condition: sel\nlevel: high\n";
//! let rule = vigil_sigma::convert("root.yml".as_ref(), yml).unwrap();
//! assert!(rule.sql.starts_with("-- id: root\n-- title: Root login\n-- severity: high\n"));
//! assert!(rule.sql.contains("json_as_text(TRY_CAST(raw AS VARCHAR), 'userIdentity', 'type')"));
//! assert_eq!(rule.meta.author, "someone");
//! let refused = vigil_sigma::convert("az.yml".as_ref(), &yml.replace("product: aws", "product: azure")).unwrap_err();
//! assert_eq!(refused.to_string().split(": ").next(), Some("az.yml:5"));
//! ```

mod condition;
mod correlation;
mod error;
mod forms;
mod item_sql;
pub mod mapping;
mod values;
pub mod yaml;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use error::{Error, Refusal, Result};

use error::{Refused, refuse};
use mapping::{Fields, RAW_TEXT, Selection};
use values::{ItemFlags, Raw};
use yaml::{Kind, Node, Scalar};

/// What a Sigma rule says about itself, carried by the vigil rule and its alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigmaMeta {
    /// The Sigma rule's `id` (a UUID), or empty.
    pub id: String,
    /// Its `title`.
    pub title: String,
    /// Its `author`, or empty.
    pub author: String,
    /// Its `level`, or empty.
    pub level: String,
    /// Its `status`, or empty.
    pub status: String,
    /// Its `logsource`, as `product: aws, service: cloudtrail` (a correlation: those of its rules).
    pub logsource: String,
}

/// A converted rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted {
    /// The file it was read from.
    pub path: PathBuf,
    /// 1-based line where its document starts.
    pub line: u64,
    /// The vigil rule id: the file's stem, plus `.NAME` (the Sigma `name`, or the document's number)
    /// in a file of several documents.
    pub id: String,
    /// The vigil rule: `-- key: value` header and the SQL query.
    pub sql: String,
    /// The Sigma metadata.
    pub meta: SigmaMeta,
    /// `false` for a rule that a correlation references without `generate: true`: as in Sigma, it does
    /// not alert on its own, only through the correlation.
    pub standalone: bool,
    /// For a correlation, its type (`event_count`, `value_count`, `temporal`, `temporal_ordered`).
    pub correlation: Option<&'static str>,
    /// For a correlation, the files of the rules it references.
    pub uses: Vec<PathBuf>,
}

/// Whether `path` names a Sigma rule file (`.yml` or `.yaml`).
pub fn is_sigma_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "yml" || e == "yaml")
}

/// Converts the Sigma rule `text` read from `path`: the file's first rule that alerts on its own (in a
/// file of several documents, a correlation and the rules it references, the correlation).
pub fn convert(path: &Path, text: &str) -> Result<Converted> {
    let results = convert_files(&[(path.to_path_buf(), text.to_string())]);
    let first_error = results.iter().find_map(|r| r.as_ref().err().cloned());
    let converted = results.into_iter().flatten().find(|c| c.standalone);
    match (converted, first_error) {
        (Some(c), _) => Ok(c),
        (None, Some(e)) => Err(e),
        (None, None) => Err(Error::Refused {
            path: path.to_path_buf(),
            line: 1,
            kind: Refusal::Yaml,
            reason: "the file holds no rule that alerts on its own".into(),
        }),
    }
}

/// Converts a set of Sigma files together, as pySigma converts a rule collection: a correlation may
/// reference (by `name` or `id`) a rule of any file of the set. One result per document, in file and
/// document order; a file that is not YAML gives one error.
pub fn convert_files(files: &[(PathBuf, String)]) -> Vec<Result<Converted>> {
    let mut docs: Vec<Doc> = Vec::new();
    let mut out: Vec<(usize, Result<Converted>)> = Vec::new();
    for (file, (path, text)) in files.iter().enumerate() {
        match yaml::parse_all(text) {
            Ok(nodes) => {
                let count = nodes.len();
                for (index, node) in nodes.into_iter().enumerate() {
                    docs.push(read_document(file, path, text, index, count, &node));
                }
            }
            Err(e) => out.push((
                docs.len(),
                Err(Error::Refused {
                    path: path.clone(),
                    line: e.line,
                    kind: Refusal::Yaml,
                    reason: format!("not YAML vigil reads: {}", e.message),
                }),
            )),
        }
    }
    let (targets, standalone) = correlation::links(&docs, files);
    name_alerting_documents(&mut docs, files, &standalone);
    for (i, doc) in docs.iter().enumerate() {
        let path = &files[doc.file].0;
        let result = match (&doc.body, &targets[i]) {
            (Err(r), _) | (_, Some(Err(r))) => Err(r.clone()),
            (Ok(Body::Detection(detection)), _) => {
                detection_rule(doc, detection, &files[doc.file].1, path, standalone[i])
            }
            (Ok(Body::Correlation(spec)), Some(Ok(found))) => correlation::convert(doc, spec, found, &docs, files),
            (Ok(Body::Correlation(_)), None) => {
                refuse(doc.line, Refusal::Correlation, "the correlation was not resolved")
            }
        };
        let result =
            result.map_err(|r| Error::Refused { path: path.clone(), line: r.line, kind: r.kind, reason: r.reason });
        out.push((i, result));
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

/// In a file of several documents where one alone alerts on its own (a correlation and the rules it
/// references), that one takes the file's stem as its id, like a file of one rule.
fn name_alerting_documents(docs: &mut [Doc], files: &[(PathBuf, String)], standalone: &[bool]) {
    for (file, (path, _)) in files.iter().enumerate() {
        let alerting: Vec<usize> = (0..docs.len()).filter(|&i| docs[i].file == file && standalone[i]).collect();
        let several = docs.iter().filter(|d| d.file == file).count() > 1;
        if let [only] = alerting.as_slice()
            && several
        {
            docs[*only].id = vigil_id(path, 1, 0, None);
        }
    }
}

/// One document of a file, read as far as it can be without the other files.
pub(crate) struct Doc {
    /// Index of its file in the set.
    pub file: usize,
    /// 1-based line where it starts.
    pub line: u64,
    /// The vigil rule id.
    pub id: String,
    /// Its header (metadata), or why not.
    pub header: std::result::Result<Header, Refused>,
    /// Its body, or why not (a header refusal is repeated here).
    pub body: std::result::Result<Body, Refused>,
}

impl Doc {
    fn meta(&self, logsource: String) -> SigmaMeta {
        match &self.header {
            Ok(h) => SigmaMeta {
                id: h.sigma_id.clone(),
                title: h.title.clone(),
                author: h.author.clone(),
                level: h.level.clone(),
                status: h.status.clone(),
                logsource,
            },
            Err(_) => SigmaMeta {
                id: String::new(),
                title: String::new(),
                author: String::new(),
                level: String::new(),
                status: String::new(),
                logsource,
            },
        }
    }
}

/// A document's metadata.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    pub title: String,
    pub severity: &'static str,
    pub level: String,
    pub criteria: Vec<String>,
    pub tags: Vec<String>,
    pub description: Option<String>,
    pub sigma_id: String,
    pub name: Option<String>,
    pub author: String,
    pub status: String,
    /// vigil's `suppress` (a duration), a Sigma extension like `criteria`.
    pub suppress: Option<String>,
    /// vigil's `group_by` (fields or columns), with its line.
    pub group_by: Option<(Vec<String>, u64)>,
}

/// What a document is.
pub(crate) enum Body {
    /// A detection rule: the events it selects and its condition as SQL.
    Detection(Detection),
    /// A correlation over other rules.
    Correlation(correlation::Spec),
}

/// A detection rule, converted.
#[derive(Debug, Clone)]
pub(crate) struct Detection {
    pub selection: Selection,
    /// The `detection` section as a SQL condition.
    pub where_sql: String,
}

fn read_document(file: usize, path: &Path, _text: &str, index: usize, count: usize, doc: &Node) -> Doc {
    let header = read_header(doc);
    let id = vigil_id(path, count, index, header.as_ref().ok().and_then(|h| h.name.as_deref()));
    let body = match &header {
        Err(r) => Err(r.clone()),
        Ok(_) => read_body(doc),
    };
    Doc { file, line: doc.line, id, header, body }
}

/// The vigil id of a document: the file's stem, `stem.name` (or `stem.N`) when the file holds several.
fn vigil_id(path: &Path, count: usize, index: usize, name: Option<&str>) -> String {
    let clean = |text: &str| -> String {
        text.to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.') { c } else { '_' })
            .collect()
    };
    let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "sigma".into());
    if count <= 1 {
        return clean(&stem);
    }
    match name {
        Some(name) => format!("{}.{}", clean(&stem), clean(name)),
        None => format!("{}.{}", clean(&stem), index + 1),
    }
}

fn read_header(doc: &Node) -> std::result::Result<Header, Refused> {
    if !matches!(doc.kind, Kind::Map(_)) {
        return refuse(doc.line, Refusal::Yaml, "a Sigma rule is a YAML mapping (title, logsource, detection, ...)");
    }
    if let Some(action) = doc.get("action") {
        return refuse(
            action.line,
            Refusal::Yaml,
            "`action` documents (global, reset, repeat: Sigma's old rule templates) are not converted; write each rule whole",
        );
    }
    let text_of = |key: &str| text_of(doc, key);
    let Some(title) = text_of("title")? else {
        return refuse(doc.line, Refusal::Yaml, "the rule has no `title`");
    };
    let title = one_line(&title);
    let level = text_of("level")?.unwrap_or_default();
    let severity = match level.as_str() {
        "informational" => "info",
        "low" => "low",
        "" | "medium" => "medium",
        "high" => "high",
        "critical" => "critical",
        other => {
            let line = doc.get("level").map_or(1, |n| n.line);
            return refuse(
                line,
                Refusal::Yaml,
                format!("level `{other}` is not one of informational, low, medium, high, critical"),
            );
        }
    };
    let tags = list_of(doc, "tags")?;
    let criteria = match doc.get("criteria") {
        Some(node) => {
            let given: Vec<String> = match &node.kind {
                Kind::Seq(_) => list_of(doc, "criteria")?,
                _ => text_of("criteria")?
                    .unwrap_or_default()
                    .split(',')
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty())
                    .collect(),
            };
            if given.is_empty() {
                return refuse(node.line, Refusal::Yaml, "`criteria` is empty; name SOC 2 criteria such as CC6.1");
            }
            given
        }
        None => criteria_of(&tags),
    };
    Ok(Header {
        title,
        severity,
        level,
        criteria,
        tags,
        description: text_of("description")?.map(|d| one_line(&d)),
        sigma_id: text_of("id")?.unwrap_or_default(),
        name: text_of("name")?,
        author: one_line(&text_of("author")?.unwrap_or_default()),
        status: text_of("status")?.unwrap_or_default(),
        suppress: text_of("suppress")?,
        group_by: match doc.get("group_by") {
            None => None,
            Some(node @ Node { kind: Kind::Seq(_), .. }) => Some((list_of(doc, "group_by")?, node.line)),
            Some(node) => Some((
                text_of("group_by")?.unwrap_or_default().split(',').map(|g| g.trim().to_string()).collect(),
                node.line,
            )),
        },
    })
}

/// A top-level text value, kept as written whatever YAML would type it as.
fn text_of(doc: &Node, key: &str) -> std::result::Result<Option<String>, Refused> {
    match doc.get(key) {
        None => Ok(None),
        Some(node) => match (node.scalar(), node.text()) {
            (Some(Scalar::Null), _) => Ok(None),
            (_, Some(text)) => Ok(Some(text.to_string())),
            _ => refuse(node.line, Refusal::Yaml, format!("`{key}` must be text")),
        },
    }
}

fn read_body(doc: &Node) -> std::result::Result<Body, Refused> {
    if let Some(spec) = doc.get("correlation") {
        return correlation::read(spec).map(Body::Correlation);
    }
    let Some(logsource) = doc.get("logsource") else {
        return refuse(doc.line, Refusal::Yaml, "the rule has no `logsource`");
    };
    let ls = |key: &str| logsource.get(key).and_then(|n| n.text()).map(str::to_string);
    let selection = mapping::selection(
        logsource.line,
        ls("product").as_deref(),
        ls("service").as_deref(),
        ls("category").as_deref(),
    )?;
    let Some(detection) = doc.get("detection") else {
        return refuse(doc.line, Refusal::Yaml, "the rule has no `detection`");
    };
    let where_sql = detection_sql(detection, &selection)?;
    Ok(Body::Detection(Detection { selection, where_sql }))
}

/// The `-- key: value` lines every converted rule starts with.
pub(crate) fn header_sql(id: &str, header: &Header) -> String {
    let mut sql = format!(
        "-- id: {id}\n-- title: {}\n-- severity: {}\n-- criteria: {}\n",
        header.title,
        header.severity,
        header.criteria.join(", ")
    );
    let mut all_tags = vec!["sigma".to_string()];
    all_tags.extend(header.tags.iter().map(|t| t.replace(',', " ")));
    sql.push_str(&format!("-- tags: {}\n", all_tags.join(", ")));
    if let Some(description) = &header.description {
        sql.push_str(&format!("-- description: {description}\n"));
    }
    if let Some(suppress) = &header.suppress {
        sql.push_str(&format!("-- suppress: {suppress}\n"));
    }
    sql
}

/// `-- Sigma file NAME, SHA-256 HEX`: which file a text was made from (the archive keeps the text, whose
/// hash is the rule's).
pub(crate) fn file_line(path: &Path, text: &str) -> String {
    let file = path.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default();
    format!("-- Sigma file {file}, SHA-256 {}\n", hex::encode(Sha256::digest(text.as_bytes())))
}

fn detection_rule(
    doc: &Doc,
    detection: &Detection,
    text: &str,
    path: &Path,
    standalone: bool,
) -> std::result::Result<Converted, Refused> {
    let meta = doc.meta(detection.selection.label.clone());
    let mut sql = doc.header.as_ref().map(|h| header_sql(&doc.id, h)).unwrap_or_default();
    let mut columns = String::new();
    if let Some((fields, line)) = doc.header.as_ref().ok().and_then(|h| h.group_by.as_ref()) {
        let mut names = Vec::new();
        for field in fields {
            if ["actor_user", "src_ip", "activity"].contains(&field.as_str()) {
                names.push(field.clone()); // a canonical column the rule selects anyway
                continue;
            }
            if field.is_empty() || field.contains(['"', ',']) {
                return refuse(
                    *line,
                    Refusal::Field,
                    format!("group_by field `{field}`: vigil cannot name a column so"),
                );
            }
            let expr = mapping::field(*line, detection.selection.fields, field)?;
            columns.push_str(&format!(", {expr} AS \"{field}\""));
            names.push(field.clone());
        }
        sql.push_str(&format!("-- group_by: {}\n", names.join(", ")));
    }
    sql.push_str(&format!(
        "-- Sigma rule {} by {} (Detection Rule License 1.1), logsource {}\n",
        if meta.id.is_empty() { "(no id)" } else { &meta.id },
        if meta.author.is_empty() { "(no author)" } else { &meta.author },
        meta.logsource
    ));
    sql.push_str(&file_line(path, text));
    sql.push_str(&format!("SELECT time, event_id, actor_user, src_ip, activity{columns} FROM events\n"));
    sql.push_str(&format!("WHERE {}\n", detection.filter_sql()));
    Ok(Converted {
        path: path.to_path_buf(),
        line: doc.line,
        id: doc.id.clone(),
        sql,
        meta,
        standalone,
        correlation: None,
        uses: Vec::new(),
    })
}

impl Detection {
    /// The rule's whole condition: its logsource's events, then its detection.
    pub(crate) fn filter_sql(&self) -> String {
        let mut sql = format!("source = '{}'", self.selection.source);
        if let Some(filter) = &self.selection.filter {
            sql.push_str(&format!("\n  AND {filter}"));
        }
        sql.push_str(&format!("\n  AND {}", self.where_sql));
        sql
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn list_of(doc: &Node, key: &str) -> std::result::Result<Vec<String>, Refused> {
    match doc.get(key) {
        None => Ok(Vec::new()),
        Some(Node { kind: Kind::Seq(items), .. }) => items
            .iter()
            .map(|i| match i.scalar() {
                Some(Scalar::Str(s)) => Ok(s.to_string()),
                _ => refuse(i.line, Refusal::Yaml, format!("each of `{key}` must be text")),
            })
            .collect(),
        Some(node) => refuse(node.line, Refusal::Yaml, format!("`{key}` must be a list")),
    }
}

/// SOC 2 criteria from ATT&CK tactic tags (see the crate docs).
fn criteria_of(tags: &[String]) -> Vec<String> {
    let mut out = vec!["CC7.2".to_string()];
    for tag in tags {
        let add: &[&str] = match tag.to_ascii_lowercase().as_str() {
            "attack.initial-access"
            | "attack.initial_access"
            | "attack.credential-access"
            | "attack.credential_access" => &["CC6.1"],
            "attack.persistence" | "attack.privilege-escalation" | "attack.privilege_escalation" => &["CC6.3"],
            "attack.lateral-movement"
            | "attack.lateral_movement"
            | "attack.command-and-control"
            | "attack.command_and_control" => &["CC6.6"],
            "attack.exfiltration" | "attack.collection" => &["CC6.7", "C1.1"],
            "attack.defense-evasion" | "attack.defense_evasion" | "attack.stealth" => &["CC7.3"],
            "attack.impact" => &["A1.2"],
            _ => &[],
        };
        for c in add {
            if !out.iter().any(|o| o == c) {
                out.push((*c).to_string());
            }
        }
    }
    out
}

/// The WHERE clause of a `detection` section.
fn detection_sql(detection: &Node, selection: &Selection) -> std::result::Result<String, Refused> {
    let Kind::Map(entries) = &detection.kind else {
        return refuse(
            detection.line,
            Refusal::Condition,
            "`detection` must be a mapping of named detections and a `condition`",
        );
    };
    let mut names = Vec::new();
    let mut sqls = Vec::new();
    let mut condition = None;
    for (key, value) in entries {
        let Some(name) = key.text() else {
            return refuse(key.line, Refusal::Condition, "a detection name must be text");
        };
        match name {
            "condition" => condition = Some(value),
            "timeframe" => {
                return refuse(
                    key.line,
                    Refusal::Condition,
                    "`timeframe` belongs to Sigma's deprecated aggregations; write a correlation rule",
                );
            }
            _ => {
                names.push(name.to_string());
                sqls.push(named_sql(value, selection)?);
            }
        }
    }
    let Some(condition) = condition else {
        return refuse(detection.line, Refusal::Condition, "`detection` has no `condition`");
    };
    let text = match &condition.kind {
        Kind::Scalar { text, .. } => text.clone(),
        Kind::Seq(items) if items.len() == 1 => match items[0].text() {
            Some(t) => t.to_string(),
            None => return refuse(condition.line, Refusal::Condition, "the condition must be text"),
        },
        _ => {
            return refuse(
                condition.line,
                Refusal::Condition,
                "a list of conditions makes one query each in pySigma; vigil takes one condition per rule (split the rule)",
            );
        }
    };
    let sql_of = |name: &str| names.iter().position(|n| n == name).map(|i| sqls[i].clone());
    condition::to_sql(condition.line, &text, &names, &sql_of)
}

/// One named detection: a map (items ANDed), a list of maps (ORed), or keywords.
fn named_sql(node: &Node, selection: &Selection) -> std::result::Result<String, Refused> {
    match &node.kind {
        Kind::Map(entries) => {
            if entries.is_empty() {
                return refuse(node.line, Refusal::Condition, "an empty detection matches nothing in Sigma; remove it");
            }
            let mut parts = Vec::new();
            for (key, value) in entries {
                let Some(key_text) = key.text() else {
                    return refuse(key.line, Refusal::Condition, "a field name must be text");
                };
                parts.push(item_sql(key.line, key_text, value, selection)?);
            }
            Ok(if parts.len() == 1 { parts.remove(0) } else { format!("({})", parts.join(" AND ")) })
        }
        Kind::Seq(items) if items.iter().all(|i| matches!(i.kind, Kind::Map(_))) && !items.is_empty() => {
            let parts = items.iter().map(|i| named_sql(i, selection)).collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(if parts.len() == 1 { parts[0].clone() } else { format!("({})", parts.join(" OR ")) })
        }
        Kind::Seq(items) if items.iter().all(|i| matches!(i.kind, Kind::Scalar { .. })) => {
            item_sql(node.line, "", node, selection)
        }
        Kind::Scalar { .. } => item_sql(node.line, "", node, selection),
        _ => refuse(
            node.line,
            Refusal::Condition,
            "a detection must be a map of fields, a list of such maps, or keywords",
        ),
    }
}

/// One `field|modifiers: value(s)` item (an empty field: keywords).
fn item_sql(line: u64, key: &str, value: &Node, selection: &Selection) -> std::result::Result<String, Refused> {
    let mut split = key.split('|');
    let field = split.next().unwrap_or("");
    let modifiers: Vec<&str> = split.collect();
    if modifiers.iter().any(|m| m.is_empty()) {
        return refuse(line, Refusal::Modifier, format!("`{key}` has an empty modifier"));
    }
    let scalars: Vec<&Node> = match &value.kind {
        Kind::Seq(items) => items.iter().collect(),
        Kind::Scalar { .. } => vec![value],
        Kind::Map(_) => {
            return refuse(
                value.line,
                Refusal::Condition,
                format!("`{key}` holds a map; a field takes a value or a list of values"),
            );
        }
    };
    let mut raw = Vec::new();
    for s in &scalars {
        raw.push(match s.scalar() {
            Some(Scalar::Str(t)) => Raw::Str(t.to_string()),
            Some(Scalar::Int(n)) => Raw::Num(n),
            Some(Scalar::Bool(b)) => Raw::Bool(b),
            Some(Scalar::Null) => Raw::Null,
            Some(Scalar::Ambiguous(why)) => {
                return refuse(s.line, Refusal::Value, format!("`{}`: {why}", s.text().unwrap_or("")));
            }
            None => {
                return refuse(
                    s.line,
                    Refusal::Condition,
                    format!("`{key}`: a list of values may not hold lists or maps"),
                );
            }
        });
    }
    let keyword = field.is_empty();
    let (values, flags): (Vec<values::Val>, ItemFlags) = values::apply(line, &modifiers, raw, !keyword)?;
    let expr = if keyword { RAW_TEXT.to_string() } else { mapping::field(line, selection.fields, field)? };
    if !keyword {
        item_sql::check_nullish(line, field, &values, mapping::nullish(selection.fields, field))?;
    }
    let fields: Fields = selection.fields;
    let field_of = move |name: &str| mapping::field(line, fields, name);
    item_sql::item_sql(line, &expr, keyword, &values, flags, &field_of)
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
