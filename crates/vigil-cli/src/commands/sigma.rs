//! `vigil sigma convert FILE|DIR...`: what vigil makes of Sigma rules, before they go in a rule directory.
//!
//! Each converted rule prints as the vigil rule it becomes (header and SQL), each refused one as
//! `file:line: reason` on stderr; the exit code is 2 when any was refused (the rule author's to fix), else
//! 0. A directory is searched for `.yml`/`.yaml` files below it, in sorted order. `--json` prints one JSON
//! object per rule instead (`path`, `line`, `converted`, and `id`, `sigma_id`, `title`, `logsource`, `standalone`,
//! `sql` (a correlation also `correlation` and `uses`, the files of its rules), or `kind`, `reason`),
//! which the Sigma comparison script reads.
//!
//! The files are converted together, as pySigma converts a collection: a correlation may reference a rule
//! of any of them. A rule a correlation references (without `generate: true`) is marked: it alerts only
//! through the correlation.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

/// `vigil sigma ...`
#[derive(Subcommand, Debug)]
pub enum SigmaCommand {
    /// Print the vigil rule (header and SQL) each Sigma rule converts to; a rule vigil cannot express
    /// exactly is refused with file:line and the reason (exit 2).
    Convert(ConvertArgs),
}

/// `vigil sigma convert`
#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// Sigma rule files, or directories searched for .yml/.yaml files.
    #[arg(required = true, value_name = "FILE|DIR")]
    paths: Vec<PathBuf>,
    /// One JSON object per rule on stdout instead of the SQL and the refusals.
    #[arg(long)]
    json: bool,
}

pub(crate) fn collect(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    if !path.is_dir() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect(&entry, out)?;
        } else if vigil_sigma::is_sigma_file(&entry) {
            out.push(entry);
        }
    }
    Ok(())
}

/// One rule's JSON line.
fn json_line(result: &vigil_sigma::Result<vigil_sigma::Converted>) -> String {
    let mut object = serde_json::Map::new();
    match result {
        Ok(c) => {
            object.insert("path".into(), c.path.display().to_string().into());
            object.insert("line".into(), c.line.into());
            object.insert("converted".into(), true.into());
            object.insert("id".into(), c.id.clone().into());
            object.insert("sigma_id".into(), c.meta.id.clone().into());
            object.insert("title".into(), c.meta.title.clone().into());
            object.insert("logsource".into(), c.meta.logsource.clone().into());
            object.insert("standalone".into(), c.standalone.into());
            if let Some(kind) = c.correlation {
                object.insert("correlation".into(), kind.into());
                let uses: Vec<serde_json::Value> = c.uses.iter().map(|p| p.display().to_string().into()).collect();
                object.insert("uses".into(), uses.into());
            }
            object.insert("sql".into(), c.sql.clone().into());
        }
        Err(vigil_sigma::Error::Refused { path, line, kind, reason }) => {
            object.insert("path".into(), path.display().to_string().into());
            object.insert("converted".into(), false.into());
            object.insert("line".into(), (*line).into());
            object.insert("kind".into(), kind.as_str().into());
            object.insert("reason".into(), reason.clone().into());
        }
    }
    serde_json::Value::Object(object).to_string()
}

/// Runs `vigil sigma`.
pub fn sigma(command: SigmaCommand) -> Result<ExitCode> {
    let SigmaCommand::Convert(args) = command;
    let mut files = Vec::new();
    for path in &args.paths {
        collect(path, &mut files)?;
    }
    let mut texts = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
        texts.push((file, text));
    }
    let results = vigil_sigma::convert_files(&texts);
    let refused = results.iter().filter(|r| r.is_err()).count();
    let mut out = String::new();
    for result in &results {
        if args.json {
            out.push_str(&json_line(result));
            out.push('\n');
            continue;
        }
        match result {
            Ok(c) => {
                if !out.is_empty() {
                    out.push('\n');
                }
                if !c.standalone {
                    out.push_str("-- (referenced by a correlation: it alerts only through it)\n");
                }
                out.push_str(&c.sql);
            }
            Err(e) => eprintln!("{e}"),
        }
    }
    // a closed pipe (`| head`) is not an error
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(out.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        other => other.context("cannot write to stdout")?,
    }
    if !args.json {
        eprintln!("{} converted, {refused} refused", results.len() - refused);
    }
    Ok(if refused > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
}
