//! HTML pieces: escaping, the page frame with its screen and print styles, tables whose numbers come
//! from one SQL query printed beneath them.
//!
//! Every value that comes from the archive (record content is attacker-controlled: URLs, user agents,
//! rule text) goes through [`esc`], in text and in attributes alike. Pages load nothing: no scripts, no
//! fonts, no images other than inline SVG, no links outside the report folder.

use std::fmt::Write;

/// `text` escaped for HTML text and (double- or single-quoted) attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than tab and line breaks are shown, not passed on.
            c if c.is_control() && c != '\n' && c != '\t' && c != '\r' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = r#"
:root { --ink: #1d2330; --muted: #5b6472; --line: #d5d9e0; --band: #f3f5f8; --accent: #1f4e79; --ok: #1b6e3a; --bad: #a4262c; --warn: #8a5a00; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; color: var(--ink); margin: 0; font-size: 13px; line-height: 1.45; background: #fff; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 36px 48px; }
header.page { border-bottom: 3px solid var(--accent); padding-bottom: 12px; margin-bottom: 18px; display: flex; justify-content: space-between; align-items: flex-end; gap: 24px; }
header.page h1 { font-size: 22px; margin: 0 0 4px; color: var(--accent); }
header.page .sub { color: var(--muted); }
header.page table.meta { font-size: 12px; border-collapse: collapse; }
header.page table.meta th { text-align: right; color: var(--muted); font-weight: normal; padding: 1px 8px 1px 0; }
header.page table.meta td { padding: 1px 0; }
nav.crumbs { font-size: 12px; margin-bottom: 8px; }
nav.crumbs a { color: var(--accent); }
h2 { font-size: 16px; color: var(--accent); border-bottom: 1px solid var(--line); padding-bottom: 4px; margin: 28px 0 10px; }
h3 { font-size: 14px; margin: 18px 0 6px; }
p.note, .note { color: var(--muted); font-size: 12px; }
.criterion { background: var(--band); border-left: 4px solid var(--accent); padding: 10px 14px; margin: 8px 0 14px; }
.criterion .plain { font-size: 14px; margin: 0 0 6px; }
.criterion blockquote { margin: 0; font-style: italic; color: #333; }
table.data { border-collapse: collapse; width: 100%; margin: 6px 0 4px; font-size: 12px; }
table.data th, table.data td { border: 1px solid var(--line); padding: 4px 7px; text-align: left; vertical-align: top; overflow-wrap: anywhere; }
table.data thead th { background: var(--band); font-weight: 600; }
table.data td.n, table.data th.n { text-align: right; font-variant-numeric: tabular-nums; }
table.data tbody tr:nth-child(even) td { background: #fafbfc; }
table.data td.empty { color: var(--muted); font-style: italic; text-align: center; }
table.data td.tester { min-width: 110px; height: 34px; }
table.prov th { width: 130px; background: var(--band); font-weight: 600; }
pre.cmd { background: #f7f7f9; border: 1px solid var(--line); padding: 6px 8px; font-size: 10.5px; white-space: pre-wrap; word-break: break-all; margin: 2px 0 14px; color: #333; }
pre.cmd .label { color: var(--muted); font-family: "DejaVu Sans", Arial, sans-serif; font-size: 10px; display: block; }
pre.raw, pre.rule { background: #fbfbfd; border: 1px solid var(--line); padding: 6px 8px; font-size: 10.5px; white-space: pre-wrap; word-break: break-all; margin: 4px 0; max-height: none; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 11px; font-weight: 600; color: #fff; }
.badge.ok { background: var(--ok); } .badge.bad { background: var(--bad); } .badge.warn { background: var(--warn); }
.kpis { display: flex; gap: 12px; flex-wrap: wrap; margin: 8px 0 12px; }
.kpi { border: 1px solid var(--line); border-top: 3px solid var(--accent); padding: 8px 12px; min-width: 150px; }
.kpi .v { font-size: 20px; font-weight: 700; }
.kpi .k { color: var(--muted); font-size: 11px; }
.rulecard { border: 1px solid var(--line); margin: 10px 0; page-break-inside: avoid; }
.rulecard .head { background: var(--band); padding: 6px 10px; display: flex; justify-content: space-between; gap: 12px; }
.rulecard .body { padding: 6px 10px; }
.rulecard dl { display: grid; grid-template-columns: 170px 1fr; gap: 2px 10px; margin: 4px 0; font-size: 12px; }
.rulecard dt { color: var(--muted); }
.rulecard dd { margin: 0; word-break: break-all; }
.item { border: 1px solid var(--line); margin: 10px 0; page-break-inside: avoid; }
.item .head { background: var(--band); padding: 6px 10px; font-weight: 600; }
.item .body { padding: 6px 10px; }
figure.chart { margin: 8px 0; }
figure.chart svg { max-width: 100%; height: auto; }
figure.chart figcaption { color: var(--muted); font-size: 11px; }
code { font-size: 11px; }
footer { margin-top: 36px; border-top: 1px solid var(--line); padding-top: 8px; color: var(--muted); font-size: 11px; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { font-size: 10.5px; }
  main { max-width: none; padding: 0; }
  h2 { page-break-after: avoid; break-after: avoid; }
  table.data, figure.chart, .kpis { page-break-inside: avoid; break-inside: avoid; }
  table.data thead { display: table-header-group; }
  pre.cmd { font-size: 8.5px; }
  table.data { font-size: 9px; }
  table.data td, table.data th { padding: 3px 4px; }
  table.data td.tester { min-width: 0; width: 11%; }
  table.data code { font-size: 8.5px; }
  a { color: inherit; text-decoration: none; }
}
"#;

/// A whole page: `title`, a header block, and `body` (already HTML).
pub fn page(title: &str, header: &str, body: &str, footer: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n\
         <body>\n<main>\n{header}\n{body}\n<footer>{footer}</footer>\n</main>\n</body>\n</html>\n",
        esc(title)
    )
}

/// A result table: one row per query row, cells as the query gave them; numeric columns (`numeric[i]`)
/// right-aligned. `id` ties the table to the SQL printed below it (`data-query`).
pub fn table(id: &str, headers: &[&str], rows: &[Vec<String>], numeric: &[bool]) -> String {
    let mut out = format!("<table class=\"data\" data-query=\"{}\">\n<thead><tr>", esc(id));
    for (i, h) in headers.iter().enumerate() {
        let class = if numeric.get(i).copied().unwrap_or(false) { " class=\"n\"" } else { "" };
        let _ = write!(out, "<th{class}>{}</th>", esc(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    if rows.is_empty() {
        let _ = writeln!(out, "<tr><td class=\"empty\" colspan=\"{}\">none</td></tr>", headers.len().max(1));
    }
    for row in rows {
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let class = if numeric.get(i).copied().unwrap_or(false) { " class=\"n\"" } else { "" };
            let _ = write!(out, "<td{class}>{}</td>", esc(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// The `vigil query` command that reproduces a table, with the SQL in its own element (`id`).
pub fn query_command(id: &str, evidence: &str, sql: &str) -> String {
    format!(
        "<pre class=\"cmd\"><span class=\"label\">reproduce with</span>vigil query --evidence {} \"<code class=\"sql\" id=\"{}\">{}</code>\"</pre>\n",
        esc(&shell_word(evidence)),
        esc(id),
        esc(sql)
    )
}

/// Another command (verify, sample) that reproduces what is shown.
pub fn command(label: &str, text: &str) -> String {
    format!("<pre class=\"cmd\"><span class=\"label\">{}</span>{}</pre>\n", esc(label), esc(text))
}

/// `word` as one shell word (single-quoted when it holds anything but safe characters).
pub fn shell_word(word: &str) -> String {
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+".contains(c)) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_content_cannot_open_markup() {
        let hostile = r#""><img src=x onerror=alert(1)><script>alert('x')</script>"#;
        let out = esc(hostile);
        assert!(!out.contains('<') && !out.contains('>') && !out.contains('"') && !out.contains('\''), "{out}");
        let t = table("q", &["a"], &[vec![hostile.to_string()]], &[false]);
        assert!(!t.contains("<img") && !t.contains("<script"), "{t}");
        assert_eq!(esc("a\u{1}b"), "a\\u{1}b");
        assert_eq!(shell_word("/tmp/x y"), "'/tmp/x y'");
        assert_eq!(shell_word("s3://b/p"), "s3://b/p");
    }
}
