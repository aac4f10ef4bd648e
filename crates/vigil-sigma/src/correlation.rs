//! Sigma correlation rules to vigil `kind: correlation` rules.
//!
//! ```yaml
//! title: Many failed console logins
//! correlation:
//!   type: event_count          # value_count, temporal, temporal_ordered
//!   rules: [failed_console_login]
//!   group-by: [sourceIPAddress]
//!   timespan: 10m
//!   condition: {gte: 5}        # value_count: {gte: 3, field: userIdentity.userName}
//! ```
//!
//! The rules named in `rules` (by `name` or `id`, in any file of the set converted together, as pySigma
//! resolves them in a collection) must be detection rules vigil converts. The vigil rule's query has one
//! branch per referenced rule, `UNION ALL`: that rule's events and condition, its name as `step`, each
//! `group-by` field as a column of that name (through `aliases` where the rules name it differently), and
//! for `value_count` the counted field as `sigma_value`; an event whose group field is null takes no part,
//! as in pySigma. The header says `kind: correlation`, the type, `condition`, `key` (the group-by),
//! `window` (the timespan) and `steps`; how windows are measured is `vigil_rules::correlation`'s.
//!
//! Referenced rules do not alert on their own unless the correlation says `generate: true`. Refused:
//! the types `value_sum`, `value_avg`, `value_percentile`, `value_median`; extended (boolean text)
//! conditions; a correlation of correlations; a referenced rule vigil refuses; group-by or counted fields
//! the logsource cannot read exactly (see [`crate::mapping`]).

use std::path::PathBuf;

use crate::error::{Refusal, Refused, refuse};
use crate::mapping::{self, sql_str};
use crate::yaml::{Kind, Node, Scalar};
use crate::{Body, Converted, Detection, Doc, file_line, header_sql};

/// An alias name and, per rule reference, the field it reads there.
type Alias = (String, Vec<(String, String)>);

/// Per document, the documents a correlation references (`None` for other documents).
pub(crate) type Targets = Vec<Option<Result<Vec<usize>, Refused>>>;

/// A correlation as written.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    line: u64,
    kind: &'static str,
    /// Referenced rules, as written, with their lines.
    rules: Vec<(String, u64)>,
    group_by: Vec<String>,
    timespan_s: i64,
    op: &'static str,
    count: i64,
    /// `value_count`'s field.
    field: Option<String>,
    aliases: Vec<Alias>,
    generate: bool,
}

/// Reads a `correlation` section.
pub(crate) fn read(node: &Node) -> Result<Spec, Refused> {
    let line = node.line;
    if !matches!(node.kind, Kind::Map(_)) {
        return refuse(line, Refusal::Condition, "`correlation` must be a mapping (type, rules, timespan, ...)");
    }
    let text = |key: &str| node.get(key).and_then(Node::text).map(str::to_string);
    let kind = match text("type").as_deref() {
        Some("event_count") => "event_count",
        Some("value_count") => "value_count",
        Some("temporal") => "temporal",
        Some("temporal_ordered") => "temporal_ordered",
        Some(other @ ("value_sum" | "value_avg" | "value_percentile" | "value_median")) => {
            return refuse(
                line,
                Refusal::Correlation,
                format!(
                    "correlation type `{other}` is not converted (vigil converts event_count, value_count, temporal, temporal_ordered)"
                ),
            );
        }
        Some(other) => return refuse(line, Refusal::Condition, format!("`{other}` is not a Sigma correlation type")),
        None => return refuse(line, Refusal::Condition, "the correlation has no `type`"),
    };
    let rules = texts(node, "rules")?;
    if rules.is_empty() {
        return refuse(line, Refusal::Condition, "the correlation names no `rules`");
    }
    for (reference, at) in &rules {
        if reference.is_empty() || !reference.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b)) {
            return refuse(
                *at,
                Refusal::Correlation,
                format!("rule reference `{reference}`: vigil takes names of letters, digits, `_`, `.`, `:` and `-`"),
            );
        }
    }
    let group_by: Vec<String> = texts(node, "group-by")?.into_iter().map(|(g, _)| g).collect();
    for g in &group_by {
        if g.contains(['"', ','])
            || ["time", "event_id", "step", "sigma_value"].contains(&g.to_ascii_lowercase().as_str())
        {
            return refuse(line, Refusal::Field, format!("group-by field `{g}`: vigil cannot name a column so"));
        }
    }
    let Some(span) = node.get("timespan") else {
        return refuse(line, Refusal::Condition, "the correlation has no `timespan`");
    };
    let timespan_s = timespan(span)?;
    let (op, count, field) = match node.get("condition") {
        Some(condition) => read_condition(condition)?,
        None if kind.starts_with("temporal") => ("gte", rules.len() as i64, None),
        None => {
            return refuse(line, Refusal::Condition, "an event_count or value_count correlation needs a `condition`");
        }
    };
    if kind == "value_count" && field.is_none() {
        return refuse(line, Refusal::Condition, "a value_count correlation's condition needs a `field`");
    }
    let generate = match node.get("generate").map(|g| (g.line, g.scalar())) {
        None => false,
        Some((_, Some(Scalar::Bool(b)))) => b,
        Some((at, _)) => return refuse(at, Refusal::Condition, "`generate` must be true or false"),
    };
    let aliases = read_aliases(node)?;
    Ok(Spec { line, kind, rules, group_by, timespan_s, op, count, field, aliases, generate })
}

/// A text or a list of texts.
fn texts(node: &Node, key: &str) -> Result<Vec<(String, u64)>, Refused> {
    match node.get(key) {
        None => Ok(Vec::new()),
        Some(Node { kind: Kind::Seq(items), .. }) => items
            .iter()
            .map(|i| match i.text() {
                Some(t) if matches!(i.kind, Kind::Scalar { .. }) => Ok((t.to_string(), i.line)),
                _ => refuse(i.line, Refusal::Condition, format!("each of `{key}` must be text")),
            })
            .collect(),
        Some(n @ Node { kind: Kind::Scalar { text, .. }, .. }) => Ok(vec![(text.clone(), n.line)]),
        Some(n) => refuse(n.line, Refusal::Condition, format!("`{key}` must be text or a list of texts")),
    }
}

/// `timespan`: a whole number and a unit (s, m, h, d, w, M, y as pySigma reads them), in seconds.
fn timespan(node: &Node) -> Result<i64, Refused> {
    let text = node.text().unwrap_or("");
    let bad = || {
        refuse(
            node.line,
            Refusal::Condition,
            format!("timespan `{text}` is not a positive whole number and a unit (s, m, h, d, w, M, y)"),
        )
    };
    let Some(unit) = text.chars().last() else { return bad() };
    let seconds = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        'w' => 604_800,
        'M' => 2_629_746,
        'y' => 31_556_952,
        _ => return bad(),
    };
    let number = &text[..text.len() - 1];
    match number.parse::<i64>() {
        Ok(n) if n > 0 && number.bytes().all(|b| b.is_ascii_digit()) => match n.checked_mul(seconds) {
            Some(s) if s < i64::MAX / 1_000_000 => Ok(s),
            _ => bad(),
        },
        _ => bad(),
    }
}

/// `{gte: 10}` (and `field` for value_count).
fn read_condition(node: &Node) -> Result<(&'static str, i64, Option<String>), Refused> {
    let Kind::Map(entries) = &node.kind else {
        return refuse(
            node.line,
            Refusal::Correlation,
            "extended (boolean) correlation conditions are not converted; write the condition as {gte: N}",
        );
    };
    let mut found = None;
    let mut field = None;
    for (key, value) in entries {
        let name = key.text().unwrap_or("");
        let op = match name {
            "lt" => "lt",
            "lte" => "lte",
            "gt" => "gt",
            "gte" => "gte",
            "eq" => "eq",
            "neq" => "neq",
            "field" => {
                match value.text() {
                    Some(f) if matches!(value.kind, Kind::Scalar { .. }) => field = Some(f.to_string()),
                    _ => {
                        return refuse(
                            value.line,
                            Refusal::Correlation,
                            "a condition `field` list is not converted; name one field",
                        );
                    }
                }
                continue;
            }
            other => {
                return refuse(key.line, Refusal::Condition, format!("`{other}` is not a correlation condition item"));
            }
        };
        let count = match value.scalar() {
            Some(Scalar::Int(n)) => n,
            _ => {
                return refuse(
                    value.line,
                    Refusal::Value,
                    format!(
                        "condition `{op}`: vigil compares with whole numbers; `{}` is not one",
                        value.text().unwrap_or("")
                    ),
                );
            }
        };
        if found.replace((op, count)).is_some() {
            return refuse(key.line, Refusal::Condition, "a correlation condition holds exactly one comparison");
        }
    }
    match found {
        Some((op, count)) => Ok((op, count, field)),
        None => refuse(node.line, Refusal::Condition, "the condition has no comparison (lt, lte, gt, gte, eq, neq)"),
    }
}

fn read_aliases(node: &Node) -> Result<Vec<Alias>, Refused> {
    let Some(aliases) = node.get("aliases") else { return Ok(Vec::new()) };
    let Kind::Map(entries) = &aliases.kind else {
        return refuse(aliases.line, Refusal::Condition, "`aliases` must map alias names to {rule: field}");
    };
    let mut out = Vec::new();
    for (alias, mapping) in entries {
        let Kind::Map(pairs) = &mapping.kind else {
            return refuse(mapping.line, Refusal::Condition, "an alias maps rule names to field names");
        };
        let pairs = pairs
            .iter()
            .map(|(rule, field)| match (rule.text(), field.text()) {
                (Some(r), Some(f)) => Ok((r.to_string(), f.to_string())),
                _ => refuse(rule.line, Refusal::Condition, "an alias maps rule names to field names"),
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.push((alias.text().unwrap_or("").to_string(), pairs));
    }
    Ok(out)
}

/// The documents each correlation of `docs` references (`None` for other documents), and whether each
/// document alerts on its own: not when a correlation references it without `generate: true`.
pub(crate) fn links(docs: &[Doc], files: &[(PathBuf, String)]) -> (Targets, Vec<bool>) {
    let mut standalone = vec![true; docs.len()];
    let mut targets = Vec::with_capacity(docs.len());
    for doc in docs {
        let Ok(Body::Correlation(spec)) = &doc.body else {
            targets.push(None);
            continue;
        };
        let found: Result<Vec<usize>, Refused> =
            spec.rules.iter().map(|(reference, line)| find(docs, files, reference, *line)).collect();
        if let Ok(found) = &found
            && !spec.generate
        {
            for &t in found {
                standalone[t] = false;
            }
        }
        targets.push(Some(found));
    }
    (targets, standalone)
}

/// The document a reference names: by `id` when it is a UUID (as pySigma tries first), else by `name`.
fn find(docs: &[Doc], files: &[(PathBuf, String)], reference: &str, line: u64) -> Result<usize, Refused> {
    let is_uuid = reference.len() == 36
        && reference
            .bytes()
            .enumerate()
            .all(|(i, b)| if [8, 13, 18, 23].contains(&i) { b == b'-' } else { b.is_ascii_hexdigit() });
    let hits: Vec<usize> = docs
        .iter()
        .enumerate()
        .filter(|(_, d)| {
            d.header.as_ref().is_ok_and(|h| {
                if is_uuid { h.sigma_id.eq_ignore_ascii_case(reference) } else { h.name.as_deref() == Some(reference) }
            })
        })
        .map(|(i, _)| i)
        .collect();
    match hits.as_slice() {
        [one] => Ok(*one),
        [] => refuse(
            line,
            Refusal::Correlation,
            format!(
                "the correlation references `{reference}`, which no rule converted with it has as its name or id (put that rule in the same rule directory)"
            ),
        ),
        [first, second, ..] => refuse(
            line,
            Refusal::Correlation,
            format!(
                "the correlation references `{reference}`, which two rules carry ({} and {}); make the names unique",
                files[docs[*first].file].0.display(),
                files[docs[*second].file].0.display()
            ),
        ),
    }
}

/// The vigil rule of a correlation over the documents `targets`.
pub(crate) fn convert(
    doc: &Doc,
    spec: &Spec,
    targets: &[usize],
    docs: &[Doc],
    files: &[(PathBuf, String)],
) -> Result<Converted, Refused> {
    let Ok(header) = &doc.header else { return refuse(doc.line, Refusal::Yaml, "the correlation has no valid header") };
    if let Some((_, line)) = &header.group_by {
        return refuse(
            *line,
            Refusal::Condition,
            "a correlation groups by its own `group-by`; vigil's `group_by` does not apply",
        );
    }
    let mut branches = Vec::new();
    let mut labels = Vec::new();
    let mut sources = Vec::new();
    let mut uses = Vec::new();
    for ((reference, line), &t) in spec.rules.iter().zip(targets) {
        let target = &docs[t];
        let path = &files[target.file].0;
        let detection = match &target.body {
            Ok(Body::Detection(d)) => d,
            Ok(Body::Correlation(_)) => {
                return refuse(
                    *line,
                    Refusal::Correlation,
                    format!("`{reference}` is a correlation: correlations of correlations are not converted"),
                );
            }
            Err(r) => {
                return refuse(
                    *line,
                    Refusal::Correlation,
                    format!(
                        "the correlation references `{reference}` ({}:{}), which is not converted: {}",
                        path.display(),
                        r.line,
                        r.reason
                    ),
                );
            }
        };
        let names = [
            reference.as_str(),
            target.header.as_ref().ok().and_then(|h| h.name.as_deref()).unwrap_or(""),
            target.header.as_ref().map(|h| h.sigma_id.as_str()).unwrap_or(""),
        ];
        branches.push(branch(spec, reference, *line, &names, detection)?);
        if !labels.contains(&detection.selection.label) {
            labels.push(detection.selection.label.clone());
        }
        if !uses.contains(path) {
            uses.push(path.clone());
            sources.push(file_line(path, &files[target.file].1));
        }
    }
    let own = &files[doc.file];
    let meta = doc.meta(labels.join(" + "));
    let mut sql = header_sql(&doc.id, header);
    sql.push_str(&format!(
        "-- kind: correlation\n-- correlation: {}\n-- condition: {} {}\n",
        spec.kind, spec.op, spec.count
    ));
    if !spec.group_by.is_empty() {
        sql.push_str(&format!("-- key: {}\n", spec.group_by.join(", ")));
    }
    sql.push_str(&format!("-- window: {}s\n", spec.timespan_s));
    let steps: Vec<&str> = spec.rules.iter().map(|(r, _)| r.as_str()).collect();
    sql.push_str(&format!("-- steps: {}\n", steps.join(", ")));
    if spec.kind == "value_count" {
        sql.push_str("-- distinct: sigma_value\n");
    }
    sql.push_str(&format!(
        "-- Sigma correlation {} by {} (Detection Rule License 1.1), over {}\n",
        if meta.id.is_empty() { "(no id)" } else { &meta.id },
        if meta.author.is_empty() { "(no author)" } else { &meta.author },
        steps.join(", ")
    ));
    sql.push_str(&file_line(&own.0, &own.1));
    for line in sources {
        if !sql.contains(&line) {
            sql.push_str(&line);
        }
    }
    sql.push_str(&branches.join("\nUNION ALL\n"));
    sql.push('\n');
    Ok(Converted {
        path: own.0.clone(),
        line: doc.line,
        id: doc.id.clone(),
        sql,
        meta,
        standalone: true,
        correlation: Some(spec.kind),
        uses,
    })
}

/// One referenced rule's part of the query.
fn branch(spec: &Spec, reference: &str, line: u64, names: &[&str], detection: &Detection) -> Result<String, Refused> {
    let fields = detection.selection.fields;
    // the field an alias (or a plain field name) reads in this rule's events
    let column = |name: &str| -> Result<String, Refused> {
        let actual = spec
            .aliases
            .iter()
            .find(|(alias, _)| alias == name)
            .and_then(|(_, pairs)| pairs.iter().find(|(rule, _)| names.contains(&rule.as_str())))
            .map_or(name, |(_, field)| field.as_str());
        let expr = mapping::field(line, fields, actual)?;
        if !mapping::nullish(fields, actual).is_empty() {
            return refuse(
                spec.line,
                Refusal::Field,
                format!(
                    "`{actual}` cannot be told apart from a missing value in these logs, so it cannot group or be counted exactly"
                ),
            );
        }
        Ok(expr)
    };
    let mut select = format!("SELECT time, event_id, {} AS step", sql_str(reference));
    let mut filter = detection.filter_sql();
    for g in &spec.group_by {
        let expr = column(g)?;
        select.push_str(&format!(", {expr} AS \"{g}\""));
        filter.push_str(&format!("\n  AND {expr} IS NOT NULL"));
    }
    if let Some(field) = &spec.field {
        select.push_str(&format!(", {} AS sigma_value", column(field)?));
    }
    Ok(format!("{select}\nFROM events\nWHERE {filter}"))
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use crate::{Refusal, convert_files};

    const BASE: &str = "title: Denied\nname: denied\nid: 0c3e6f8a-1b2d-4e5f-8a9b-1c2d3e4f5a01\nlogsource:\n  product: aws\n  service: cloudtrail\ndetection:\n  sel:\n    errorCode: AccessDenied\n  condition: sel\n";
    const LISTS: &str = "title: Lists\nname: lists\nlogsource:\n  product: aws\n  service: cloudtrail\ndetection:\n  sel:\n    eventName|startswith: List\n  condition: sel\n";

    fn files(list: &[(&str, &str)]) -> Vec<(PathBuf, String)> {
        list.iter().map(|(p, t)| (Path::new(p).to_path_buf(), t.to_string())).collect()
    }

    fn corr(body: &str) -> String {
        format!("title: C\nid: 7d1e2f3a-4b5c-4d6e-8f7a-9b0c1d2e3f01\nauthor: me\ncorrelation:\n{body}level: high\n")
    }

    #[test]
    fn a_correlation_becomes_a_correlation_rule_over_its_rules() {
        let set = files(&[
            ("denied.yml", BASE),
            ("lists.yml", LISTS),
            (
                "spray.yml",
                &corr(
                    "  type: value_count\n  rules: [denied, lists]\n  group-by: [userIdentity.arn]\n  timespan: 5m\n  condition: {gte: 3, field: eventName}\n",
                ),
            ),
        ]);
        let out = convert_files(&set);
        assert_eq!(out.len(), 3);
        let (denied, spray) = (out[0].as_ref().unwrap(), out[2].as_ref().unwrap());
        assert!(!denied.standalone, "a referenced rule alerts only through the correlation");
        assert!(spray.standalone && spray.correlation == Some("value_count"));
        assert_eq!(spray.uses, vec![PathBuf::from("denied.yml"), PathBuf::from("lists.yml")]);
        for line in [
            "-- kind: correlation\n",
            "-- correlation: value_count\n",
            "-- condition: gte 3\n",
            "-- key: userIdentity.arn\n",
            "-- window: 300s\n",
            "-- steps: denied, lists\n",
            "-- distinct: sigma_value\n",
            "SELECT time, event_id, 'denied' AS step, json_as_text(TRY_CAST(raw AS VARCHAR), 'userIdentity', 'arn') AS \"userIdentity.arn\", json_as_text(TRY_CAST(raw AS VARCHAR), 'eventName') AS sigma_value\n",
            "\nUNION ALL\nSELECT time, event_id, 'lists' AS step",
            "  AND json_as_text(TRY_CAST(raw AS VARCHAR), 'userIdentity', 'arn') IS NOT NULL",
        ] {
            assert!(spray.sql.contains(line), "{line:?} in\n{}", spray.sql);
        }
        assert_eq!(spray.sql.matches("-- Sigma file ").count(), 3, "its file and the files of its rules");
        assert_eq!(spray.meta.logsource, "product: aws, service: cloudtrail");
    }

    #[test]
    fn one_file_aliases_generate_and_ids() {
        let text = format!(
            "{LISTS}---\n{BASE}---\n{}",
            corr(
                "  type: temporal_ordered\n  rules: [lists, 0c3e6f8a-1b2d-4e5f-8a9b-1c2d3e4f5a01]\n  group-by: [user]\n  aliases:\n    user:\n      lists: userIdentity.userName\n      denied: requestParameters.userName\n  timespan: 1h\n  generate: true\n"
            )
        );
        let out = convert_files(&files(&[("chain.yml", &text)]));
        let ids: Vec<(&str, bool)> =
            out.iter().map(|r| r.as_ref().map(|c| (c.id.as_str(), c.standalone)).unwrap()).collect();
        assert_eq!(ids, [("chain.lists", true), ("chain.denied", true), ("chain.3", true)], "generate: true");
        let sql = &out[2].as_ref().unwrap().sql;
        assert!(sql.contains("-- condition: gte 2\n"), "temporal defaults to all rules: {sql}");
        assert!(sql.contains("'userIdentity', 'userName') AS \"user\""), "{sql}");
        assert!(sql.contains("'requestParameters', 'userName') AS \"user\""), "{sql}");
        let without = text.replace("  generate: true\n", "");
        let out = convert_files(&files(&[("chain.yml", &without)]));
        assert_eq!(out[2].as_ref().unwrap().id, "chain", "the one rule that alerts takes the file's name");
    }

    #[test]
    fn what_is_not_converted_is_refused_with_the_line() {
        let cases = [
            (
                "  type: value_sum\n  rules: [denied]\n  timespan: 5m\n  condition: {gte: 3, field: x}\n",
                5,
                Refusal::Correlation,
            ),
            (
                "  type: temporal\n  rules: [denied, lists]\n  timespan: 5m\n  condition: denied and not lists\n",
                8,
                Refusal::Correlation,
            ),
            (
                "  type: event_count\n  rules: [nothing]\n  timespan: 5m\n  condition: {gte: 3}\n",
                6,
                Refusal::Correlation,
            ),
            ("  type: event_count\n  rules: [denied]\n  timespan: 5m\n  condition: {gte: 2.5}\n", 8, Refusal::Value),
            ("  type: event_count\n  rules: [denied]\n  timespan: 5 minutes\n", 7, Refusal::Condition),
            ("  type: event_count\n  rules: [denied]\n  timespan: 5m\n", 5, Refusal::Condition),
            (
                "  type: event_count\n  rules: [denied]\n  group-by: [requestParameters.0.name]\n  timespan: 5m\n  condition: {gte: 3}\n",
                6,
                Refusal::Field,
            ),
        ];
        for (body, line, kind) in cases {
            let out = convert_files(&files(&[("denied.yml", BASE), ("lists.yml", LISTS), ("c.yml", &corr(body))]));
            let err = out[2].as_ref().unwrap_err();
            assert_eq!(
                (err.kind(), err.to_string().split(": ").next().unwrap()),
                (kind, &*format!("c.yml:{line}")),
                "{body}: {err}"
            );
        }
        // a correlation of a correlation, and two rules with one name
        let chained = corr("  type: event_count\n  rules: [inner]\n  timespan: 5m\n  condition: {gte: 2}\n");
        let inner = "title: I\nname: inner\ncorrelation:\n  type: event_count\n  rules: [denied]\n  timespan: 5m\n  condition: {gte: 2}\n";
        let out = convert_files(&files(&[("denied.yml", BASE), ("inner.yml", inner), ("c.yml", &chained)]));
        assert!(out[2].as_ref().unwrap_err().to_string().contains("correlations of correlations"));
        let twice = convert_files(&files(&[
            ("denied.yml", BASE),
            ("again.yml", BASE),
            ("c.yml", &corr("  type: event_count\n  rules: [denied]\n  timespan: 5m\n  condition: {gte: 2}\n")),
        ]));
        assert!(twice[2].as_ref().unwrap_err().to_string().contains("which two rules carry"));
    }
}
