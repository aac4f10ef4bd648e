//! The integrity section: the `vigil verify` result for the period and the command that repeats it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::context::Context;
use crate::html::{self, esc, table};

pub(crate) fn verify_command(c: &Context<'_>) -> String {
    let mut cmd = format!(
        "vigil verify --evidence {} --from {} --to {}",
        html::shell_word(&c.options.evidence),
        c.options.from,
        c.options.to
    );
    for key in &c.options.public_key_files {
        let _ = write!(cmd, " --public-key {}", html::shell_word(key));
    }
    cmd
}

pub(crate) fn verify_section(c: &Context<'_>) -> String {
    let v = &c.verify;
    let mut out = String::from("<h2 id=\"verify\">Integrity of the archive for the period</h2>\n");
    let _ = writeln!(
        out,
        "<p>{} <code>vigil verify</code> checked {} chain(s), {} manifest entr(ies) and {} data file(s) ({} bytes, {} rows) of the period; {} signed digest(s); {}.</p>",
        if v.ok() {
            "<span class=\"badge ok\">intact</span>"
        } else {
            "<span class=\"badge bad\">problems found</span>"
        },
        v.chains,
        v.entries,
        v.files_checked,
        v.bytes_checked,
        v.rows_checked,
        v.digests,
        if v.authenticated {
            format!(
                "every digest is signed by a public key given ({})",
                c.options.public_keys.iter().map(|k| k.id().to_string()).collect::<Vec<_>>().join(", ")
            )
        } else {
            "signatures were not checked: give --public-key to prove who wrote the archive".to_string()
        }
    );
    if let Some(d) = &v.newest_digest {
        let _ = writeln!(
            out,
            "<p>Newest digest: <code>digests/{:012}.json</code>, signed {} by key <code>{}</code>, SHA-256 <code>{}</code>. Keep it: a later verify with <code>--since</code> proves nothing was cut after it.</p>",
            d.seq,
            esc(&d.written_at),
            esc(&d.key_id),
            esc(&d.sha256)
        );
    }
    let findings: Vec<Vec<String>> =
        v.findings.iter().map(|f| vec![f.kind.clone(), f.object.clone(), f.detail.clone()]).collect();
    out += "<h3>Findings</h3>\n";
    out += &table("verify-findings", &["kind", "object", "detail"], &findings, &[false, false, false]);
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for w in &v.warnings {
        *kinds.entry(w.kind.as_str()).or_default() += 1;
    }
    let warnings: Vec<Vec<String>> = kinds.into_iter().map(|(k, n)| vec![k.to_string(), n.to_string()]).collect();
    out += "<h3>Warnings</h3>\n";
    out += &table("verify-warnings", &["kind", "count"], &warnings, &[false, true]);
    out += &html::command("reproduce with", &verify_command(c));
    out
}
