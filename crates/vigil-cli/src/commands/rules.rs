//! `vigil rules`: run the rule packs' data-driven tests, list rules.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use vigil_pipeline::rule_tests;

use super::runtime;

#[derive(Subcommand, Debug)]
pub(crate) enum RulesCommand {
    /// Run every rule's data-driven tests (DIR/tests/*.test) and report pass/fail per case.
    Test {
        /// Rule directories (default: every directory under pipelines/rules).
        dirs: Vec<PathBuf>,
        /// Rewrite the `expect` blocks of failing cases from the actual alerts.
        #[arg(long)]
        update: bool,
    },
    /// List rules: id, severity, criteria, title.
    List {
        /// Rule directories (default: every directory under pipelines/rules).
        dirs: Vec<PathBuf>,
    },
}

pub(crate) fn rules(command: RulesCommand) -> Result<ExitCode> {
    match command {
        RulesCommand::Test { dirs, update } => {
            let dirs = default_rule_dirs(dirs)?;
            let rt = runtime(1)?;
            let report = rt.block_on(rule_tests::run_rule_tests(&dirs, update))?;
            println!("{report}");
            Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        RulesCommand::List { dirs } => {
            let dirs = default_rule_dirs(dirs)?;
            let pack = vigil_rules::load_rules(&dirs).map_err(vigil_pipeline::Error::Rules)?;
            println!("{:<48} {:<10} {:<9} {:<18} title", "id", "kind", "severity", "criteria");
            for r in &pack.rules {
                println!(
                    "{:<48} {:<10} {:<9} {:<18} {}",
                    r.id,
                    r.kind.as_str(),
                    r.severity.as_str(),
                    r.criteria.join(","),
                    r.title
                );
            }
            println!("{} rules, pack hash {}", pack.rules.len(), pack.hash);
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub(crate) fn default_rule_dirs(dirs: Vec<PathBuf>) -> Result<Vec<PathBuf>> {
    if !dirs.is_empty() {
        return Ok(dirs);
    }
    let root = PathBuf::from("pipelines/rules");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&root)
        .with_context(|| format!("no rule directories given and {} cannot be read", root.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    found.sort();
    Ok(found)
}
