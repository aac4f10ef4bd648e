//! The rule pack that runs, as the evidence archive stores it ([`vigil_evidence::records`]): each rule's
//! file, header fields, whole text and hash, so an alert's `rule_hash` resolves to the text that raised
//! it, years later (`vigil query "SELECT rule_id, text FROM rules WHERE rule_hash = '...'"`).

use vigil_evidence::records::RuleText;
use vigil_rules::RulePack;

/// The archive's record of every rule of `pack`, in pack order.
pub fn of(pack: &RulePack) -> Vec<RuleText> {
    pack.rules
        .iter()
        .map(|rule| RuleText {
            rule_id: rule.id.clone(),
            title: rule.title.clone(),
            severity: rule.severity.as_str().to_string(),
            criteria: rule.criteria.clone(),
            tags: rule.tags.clone(),
            kind: rule.kind.as_str().to_string(),
            description: rule.description.clone(),
            remediation: rule.remediation.clone(),
            file: rule.path.display().to_string(),
            // The file as read (the header is SQL comments, so `sql` is the whole file).
            text: rule.sql.clone(),
            rule_hash: rule.hash.clone(),
        })
        .collect()
}

/// Stores `pack` in the archive unless it holds the pack already (one call where the pipeline opens
/// the archive).
pub async fn record(archive: &vigil_evidence::Archive, pack: &RulePack) -> vigil_evidence::Result<()> {
    match archive.record_rules(&pack.hash, &of(pack)).await? {
        vigil_evidence::records::Recorded::Stored(entry) => {
            tracing::info!(pack = %pack.hash, rules = pack.rules.len(), seq = entry.seq, "rule pack texts archived")
        }
        vigil_evidence::records::Recorded::AlreadyThere(seq) => {
            tracing::debug!(pack = %pack.hash, seq, "rule pack texts already archived")
        }
    }
    Ok(())
}
