//! Issue 21: `vigil report`, checked in a real browser against an outside engine.
//!
//! An archive is built from the shared datasets (CloudTrail detonations and Kubernetes audit events)
//! replayed over six months: January to March with one rule pack, April to June with the same pack after
//! one rule changed. Every CloudTrail record of the first quarter carries a hostile user agent. Alerts are
//! triaged (one twice, one with a hostile note and ticket). Then `vigil report` writes the workpaper and
//! headless Chromium (deploy/local/chromium.sh) renders it: the DOM it shows is read back and checked
//! - table by table against `vigil query` running the SQL printed under each table;
//! - against DuckDB over the same Parquet (deploy/local/duckdb.sh): events per source per month, alerts per
//!   rule per month, the triage status counts, the sample (the ranks recomputed in Python), the rule texts;
//! - for the rule text that ran (both versions of the changed rule, byte for byte);
//! - for inert record content (no script or img element; the hostile strings shown as text), SVG charts,
//!   links to files that exist and no external URL;
//! - and the printed PDF is a readable PDF (pdftotext) with the same figures.

use std::path::{Path, PathBuf};
use std::process::Command;

use vigil_tests::{repo, service_installed, shared_datasets};

const HOSTILE_UA: &str = r#""><img src=x onerror=alert(1)><script>alert(1)</script>"#;
const HOSTILE_NOTE: &str = r#"<script>alert("note")</script>"#;
const HOSTILE_TICKET: &str = r#""><img src=y onerror=alert(2)>"#;
const CHANGED_RULE: &str = "aws_secrets_retrieved";
const FROM: &str = "2025-01-01";
const TO: &str = "2025-07-01";
const SEED: &str = "42";

fn vigil(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil")).current_dir(repo()).args(args).output().expect("vigil runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "vigil {args:?} failed: {text}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs vigil expecting it to fail; returns its exit code and output.
fn vigil_fails(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil")).current_dir(repo()).args(args).output().expect("vigil runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "vigil {args:?} should fail: {text}");
    (out.status.code().unwrap_or(-1), text)
}

fn parse_us(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_micros())
}

fn time_fields(v: &mut serde_json::Value) -> Vec<&mut serde_json::Value> {
    let mut out = Vec::new();
    let Some(map) = v.as_object_mut() else { return out };
    for (key, value) in map.iter_mut() {
        if ["eventTime", "requestReceivedTimestamp", "stageTimestamp", "timestamp"].contains(&key.as_str()) {
            out.push(value);
        } else if key == "metadata"
            && let Some(created) = value.get_mut("creationTimestamp")
        {
            out.push(created);
        }
    }
    out
}

/// `source` (NDJSON) with every time moved into `[start, start + days)`, keeping order and spacing in
/// proportion; CloudTrail user agents replaced by `user_agent` when given.
fn replay(source: &Path, target: &Path, start: &str, days: i64, user_agent: Option<&str>) {
    let text = std::fs::read_to_string(source).expect("dataset");
    let mut records: Vec<serde_json::Value> =
        text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).expect("json line")).collect();
    let times: Vec<i64> = records
        .iter_mut()
        .flat_map(|r| time_fields(r).into_iter().filter_map(|v| v.as_str().and_then(parse_us)).collect::<Vec<_>>())
        .collect();
    let (min, max) = (*times.iter().min().expect("times"), *times.iter().max().expect("times"));
    let start_us = parse_us(&format!("{start}T00:00:00Z")).expect("start");
    let window = days * 86_400_000_000 - 3_600_000_000;
    let mut out = String::new();
    for mut record in records {
        for field in time_fields(&mut record) {
            if let Some(t) = field.as_str().and_then(parse_us) {
                let moved = start_us + ((t - min) as i128 * window as i128 / (max - min).max(1) as i128) as i64;
                let moved = chrono::DateTime::from_timestamp_micros(moved).expect("time");
                *field = serde_json::Value::String(moved.format("%Y-%m-%dT%H:%M:%SZ").to_string());
            }
        }
        if let (Some(ua), Some(map)) = (user_agent, record.as_object_mut())
            && map.contains_key("eventTime")
        {
            map.insert("userAgent".into(), serde_json::Value::String(ua.into()));
        }
        out += &serde_json::to_string(&record).expect("json");
        out.push('\n');
    }
    std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
    std::fs::write(target, out).expect("write replay");
}

fn copy_rules(to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(repo().join("pipelines/rules/soc2")).expect("pack") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "sql") {
            std::fs::copy(&path, to.join(path.file_name().expect("name"))).expect("copy rule");
        }
    }
}

fn chromium(args: &[&str], profile: &Path) -> String {
    let out = Command::new("timeout")
        .arg("180")
        .arg("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium runs");
    assert!(out.status.success(), "chromium {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Reads a DOM Chromium dumped (Python's HTML parser, no vigil code) and runs every printed query with
/// `vigil query`; prints JSON.
const DOM_READER: &str = r#"
import csv, io, json, subprocess, sys
from html.parser import HTMLParser
vigil, evidence, dom_file = sys.argv[1], sys.argv[2], sys.argv[3]

class Dom(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables, self.sql, self.tags, self.links, self.text = {}, {}, {}, [], []
        self.cards, self.items, self.stack = [], [], []
        self.table = None; self.row = None; self.cell = None; self.code = None; self.card = None; self.rule_pre = False
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        for k in ("href", "src", "action", "data", "poster", "srcset"):
            if k in a: self.links.append(a[k])
        if tag == "table" and "data-query" in a: self.table = a["data-query"]; self.tables[self.table] = []
        elif tag == "tr" and self.table is not None: self.row = []
        elif tag in ("td", "th") and self.row is not None: self.cell = ""
        elif tag == "code" and a.get("class") == "sql": self.code = a["id"]; self.sql[self.code] = ""
        elif tag == "div" and a.get("class") == "rulecard": self.card = {"rule": a["data-rule"], "hash": a["data-rule-hash"], "text": ""}
        elif tag == "pre" and a.get("class") == "rule" and self.card is not None: self.rule_pre = True
        elif tag == "div" and a.get("class") == "item": self.items.append(a["data-alert"])
    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None: self.row.append(self.cell); self.cell = None
        elif tag == "tr" and self.row is not None:
            if self.row and not all(c == "" for c in self.row): self.tables[self.table].append(self.row)
            self.row = None
        elif tag == "table": self.table = None
        elif tag == "code": self.code = None
        elif tag == "pre" and self.rule_pre: self.rule_pre = False; self.cards.append(self.card); self.card = None
    def handle_data(self, data):
        self.text.append(data)
        if self.cell is not None: self.cell += data
        if self.code is not None: self.sql[self.code] += data
        if self.rule_pre: self.card["text"] += data

d = Dom(); d.feed(open(dom_file, encoding="utf-8").read())
checked, mismatches = 0, []
for tid, rows in d.tables.items():
    sql = d.sql.get(tid + "-sql")
    if sql is None: continue
    header, body = rows[0], rows[1:]
    if body == [["none"]]: body = []
    out = subprocess.run([vigil, "query", "--evidence", evidence, "--format", "csv", sql], capture_output=True, text=True)
    if out.returncode != 0: mismatches.append({"table": tid, "error": out.stderr}); continue
    got = list(csv.reader(io.StringIO(out.stdout)))[1:]
    checked += 1
    if got != body: mismatches.append({"table": tid, "dom": body, "vigil_query": got})
print(json.dumps({"tables": {k: v[1:] for k, v in d.tables.items()}, "checked": checked, "mismatches": mismatches,
                  "tags": d.tags, "links": d.links, "text": "".join(d.text), "cards": d.cards, "items": d.items}))
"#;

/// Independent figures from DuckDB over the archive's Parquet files.
const DUCKDB_ORACLE: &str = r#"
import duckdb, hashlib, json, sys
root, control, seed, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
c = duckdb.connect(); c.sql("SET TimeZone='UTC'")
for kind in ("events", "alerts", "dead_letters"):
    c.sql(f"CREATE VIEW {kind} AS SELECT * FROM read_parquet('{root}/{kind}/**/*.parquet', hive_partitioning=true)")
c.sql(f"CREATE VIEW triage AS SELECT * FROM read_parquet('{root}/triage/*.parquet')")
c.sql(f"CREATE VIEW rules AS SELECT * FROM read_parquet('{root}/rules/*.parquet')")
period = "time >= TIMESTAMPTZ '2025-01-01 00:00:00+00' AND time < TIMESTAMPTZ '2025-07-01 00:00:00+00'"
crit = f"list_contains(criteria, '{control}')"
r = {}
r["events_per_month"] = [[s, m, str(n)] for s, m, n in c.execute(f"SELECT source, strftime(time, '%Y-%m'), count(*) FROM events WHERE {period} GROUP BY ALL ORDER BY ALL").fetchall()]
r["alerts_per_month"] = [[s, m, str(n)] for s, m, n in c.execute(f"SELECT rule_id, strftime(time, '%Y-%m'), count(*) FROM alerts WHERE {crit} AND {period} GROUP BY ALL ORDER BY ALL").fetchall()]
r["triage_status"] = [[s, str(n)] for s, n in c.execute(f"WITH l AS (SELECT alert_id, arg_max(status, time) AS s FROM triage GROUP BY alert_id) SELECT coalesce(l.s, 'open') AS st, count(*) FROM alerts a LEFT JOIN l USING (alert_id) WHERE {crit} AND {period} GROUP BY st ORDER BY st").fetchall()]
r["open_queue"] = c.execute(f"WITH l AS (SELECT alert_id, arg_max(status, time) AS s FROM triage GROUP BY alert_id) SELECT count(*) FROM alerts a LEFT JOIN l USING (alert_id) WHERE {period} AND coalesce(l.s, 'open') = 'open'").fetchone()[0]
ids = sorted({i for (i,) in c.execute(f"SELECT alert_id FROM alerts WHERE {crit} AND {period}").fetchall()})
r["population"] = len(ids)
r["sample"] = sorted(ids, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())[:size]
r["dead_letters"] = [[f, rc, str(n)] for f, rc, n in c.execute(f"WITH span AS (SELECT ingest_source, ingest_partition, min(ingest_offset) AS lo, max(ingest_offset) AS hi FROM events WHERE {period} GROUP BY ALL) SELECT d.format, d.reason_code, count(*) FROM dead_letters d LEFT JOIN span s ON d.ingest_source = s.ingest_source AND d.ingest_partition = s.ingest_partition AND d.ingest_offset BETWEEN s.lo AND s.hi WHERE s.lo IS NOT NULL OR (d.ingest_time >= TIMESTAMPTZ '2025-01-01 00:00:00+00' AND d.ingest_time < TIMESTAMPTZ '2025-07-01 00:00:00+00') GROUP BY ALL ORDER BY ALL").fetchall()]
r["alerts_without_text"] = c.execute("SELECT count(*) FROM alerts WHERE rule_hash NOT IN (SELECT rule_hash FROM rules)").fetchone()[0]
r["packs_with_text"] = sorted(p for (p,) in c.execute("SELECT DISTINCT pack_hash FROM rules").fetchall())
import glob
r["packs_of_entries"] = sorted({json.load(open(f))["rule_pack_hash"] for f in glob.glob(f"{root}/manifests/*/*/*.json") if "/manifests/@" not in f})
r["events_total"] = c.execute(f"SELECT count(*) FROM events WHERE {period}").fetchone()[0]
r["rule_versions"] = {h: t for h, t in c.execute("SELECT DISTINCT rule_hash, text FROM rules WHERE rule_id = '" + sys.argv[5] + "'").fetchall()}
print(json.dumps(r))
"#;

fn python_json(python: &str, script: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(python).arg("-c").arg(script).args(args).output().expect("python runs");
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json from python")
}

#[test]
fn the_workpaper_renders_in_chromium_and_its_figures_match_vigil_query_and_duckdb() {
    let Some(datasets) = shared_datasets() else {
        eprintln!("skipped: ../shared/datasets is not there");
        return;
    };
    if !service_installed("chromium.sh", "VIGIL_REQUIRE_CHROMIUM", "headless Chromium") {
        return;
    }
    let Some(python) = vigil_tests::duckdb::python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let evidence = d.join("evidence");
    let ev = evidence.to_str().expect("utf-8");

    // Two quarters of replayed logs, each archived with its own rule pack; the second changes one rule.
    let cloudtrail = datasets.join("cloudtrail-stratus-detonations/cloudtrail.ndjson");
    let k8s = datasets.join("k8s-audit-falco/k8s_audit.ndjson");
    replay(&cloudtrail, &d.join("q1/cloudtrail.ndjson"), "2025-01-01", 89, Some(HOSTILE_UA));
    replay(&k8s, &d.join("q1/k8s.ndjson"), "2025-01-05", 80, None);
    // One record that cannot be parsed, amid the first quarter's CloudTrail: a dead letter of the period.
    let q1 = d.join("q1/cloudtrail.ndjson");
    let mut lines: Vec<String> = std::fs::read_to_string(&q1).expect("q1").lines().map(str::to_string).collect();
    lines.insert(100, r#"{"eventTime":"2025-01-20T00:00:00Z","userAgent":"<script>alert(3)</script>","#.to_string());
    std::fs::write(&q1, lines.join("\n") + "\n").expect("q1");
    replay(&cloudtrail, &d.join("q2/cloudtrail.ndjson"), "2025-04-01", 90, None);
    replay(&k8s, &d.join("q2/k8s.ndjson"), "2025-04-05", 80, None);
    let (v1, v2) = (d.join("rules-v1"), d.join("rules-v2"));
    copy_rules(&v1);
    copy_rules(&v2);
    let changed = v2.join(format!("{CHANGED_RULE}.sql"));
    let old_text = std::fs::read_to_string(&changed).expect("rule");
    let new_text = format!("{old_text}\n-- reviewed 2025-03-31 (CHG-7): <script>alert('rule')</script>\n");
    std::fs::write(&changed, &new_text).expect("change the rule");
    let public = vigil(&["keys", "generate", "--out", d.join("key.pem").to_str().expect("utf-8")]);
    std::fs::write(d.join("public.pem"), public).expect("public key");
    let key = d.join("key.pem").display().to_string();
    for (quarter, rules) in [("q1", &v1), ("q2", &v2)] {
        let q = d.join(quarter);
        vigil(&[
            "run",
            "--input",
            &format!("cloudtrail:{}", q.join("cloudtrail.ndjson").display()),
            "--input",
            &format!("k8s_audit:{}", q.join("k8s.ndjson").display()),
            "--rules",
            rules.to_str().expect("utf-8"),
            "--evidence",
            ev,
            "--alerts",
            q.join("alerts.ndjson").to_str().expect("utf-8"),
            "--dlq",
            q.join("dead.ndjson").to_str().expect("utf-8"),
            "--signing-key",
            &key,
            "--no-progress",
        ]);
    }

    // Triage: one alert twice (the latest counts), one with hostile text, one investigating, one open.
    let control = "CC6.1";
    let ids: Vec<String> = vigil(&[
        "query",
        "--evidence",
        ev,
        "--format",
        "csv",
        &format!("SELECT alert_id FROM alerts WHERE array_has(criteria, '{control}') AND time >= TIMESTAMP '2025-01-01T00:00:00Z' ORDER BY time, alert_id LIMIT 4"),
    ])
    .lines()
    .skip(1)
    .map(str::to_string)
    .collect();
    assert_eq!(ids.len(), 4, "the replay raises {control} alerts");
    let triage = |id: &str, status: &str, extra: &[&str]| {
        let mut args = vec!["alerts", "triage", id, "--status", status, "--by", "ana@example.com", "--evidence", ev];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--signing-key", &key]);
        vigil(&args);
    };
    triage(&ids[0], "investigating", &["--ticket", "SEC-1"]);
    triage(&ids[0], "resolved", &["--ticket", "SEC-1", "--note", "rotated the key"]);
    triage(&ids[1], "false_positive", &["--ticket", HOSTILE_TICKET, "--note", HOSTILE_NOTE]);
    triage(&ids[2], "investigating", &[]);
    triage(&ids[3], "open", &[]);
    // An alert that is not in the archive is refused; a signed archive refuses a writer without the key.
    let (code, text) = vigil_fails(&[
        "alerts",
        "triage",
        "no-such-alert",
        "--status",
        "resolved",
        "--by",
        "x",
        "--evidence",
        ev,
        "--signing-key",
        &key,
    ]);
    assert!(code == 2 && text.contains("no alert `no-such-alert`"), "{text}");
    let (code, text) =
        vigil_fails(&["alerts", "triage", &ids[2], "--status", "resolved", "--by", "x", "--evidence", ev]);
    assert!(code == 2 && text.contains("is signed"), "{text}");
    let queue =
        vigil(&["alerts", "list", "--status", "open", "--from", FROM, "--to", TO, "--format", "csv", "--evidence", ev]);
    let queued: Vec<&str> = queue.lines().skip(1).collect();
    assert!(queued.iter().any(|l| l.starts_with(&ids[3])) && !queued.iter().any(|l| l.starts_with(&ids[0])));
    let verify = vigil(&["verify", "--evidence", ev, "--public-key", d.join("public.pem").to_str().expect("utf-8")]);
    assert!(verify.contains("VERIFIED"), "{verify}");

    let out = d.join("report");
    let printed = vigil(&[
        "report",
        "--evidence",
        ev,
        "--from",
        FROM,
        "--to",
        TO,
        "--control",
        control,
        "--control",
        "CC7.2",
        "--out",
        out.to_str().expect("utf-8"),
        "--public-key",
        d.join("public.pem").to_str().expect("utf-8"),
        "--seed",
        SEED,
        "--sample-size",
        "40",
    ]);
    assert!(printed.contains("signatures checked"), "{printed}");

    // Rendered by Chromium: the DOM it builds, a screenshot and a PDF.
    let profile = d.join("chromium-profile");
    let page = out.join(format!("{control}.html"));
    let url = format!("file://{}", page.display());
    let dom = chromium(&["--dump-dom", &url], &profile);
    std::fs::write(d.join("dom.html"), &dom).expect("dom");
    let shot = d.join("shot.png");
    chromium(&[&format!("--screenshot={}", shot.display()), "--window-size=1280,2000", &url], &profile);
    let png = std::fs::read(&shot).expect("screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 50_000, "a real screenshot ({} bytes)", png.len());
    let pdf = d.join("page.pdf");
    chromium(&[&format!("--print-to-pdf={}", pdf.display()), "--no-pdf-header-footer", &url], &profile);
    let pdf_bytes = std::fs::read(&pdf).expect("pdf");
    assert!(pdf_bytes.starts_with(b"%PDF") && pdf_bytes.len() > 20_000, "{} bytes", pdf_bytes.len());
    let pdf_text = Command::new("pdftotext").arg(&pdf).arg("-").output().expect("pdftotext runs");
    assert!(pdf_text.status.success());
    let pdf_text = String::from_utf8_lossy(&pdf_text.stdout).into_owned();
    // VIGIL_REPORT_KEEP=DIR keeps the screenshot, the PDF, the workpaper and the archive (for docs/).
    if let Some(keep) = std::env::var_os("VIGIL_REPORT_KEEP") {
        let keep = PathBuf::from(keep);
        std::fs::create_dir_all(&keep).expect("keep dir");
        for f in [&shot, &pdf] {
            std::fs::copy(f, keep.join(f.file_name().expect("name"))).expect("keep");
        }
        for (from, name) in [(&out, "report"), (&evidence, "evidence"), (&d.join("public.pem"), "public.pem")] {
            if from.is_file() {
                std::fs::copy(from, keep.join(name)).expect("keep");
                continue;
            }
            vigil_tests::files_below(from).iter().for_each(|f| {
                let t = keep.join(name).join(f.strip_prefix(from).expect("below"));
                std::fs::create_dir_all(t.parent().expect("parent")).expect("mkdir");
                std::fs::copy(f, t).expect("keep");
            });
        }
    }

    let seen = python_json(
        &python,
        DOM_READER,
        &[env!("CARGO_BIN_EXE_vigil"), ev, d.join("dom.html").to_str().expect("utf-8")],
    );
    // Every table with its printed query equals what `vigil query` answers to that query.
    assert_eq!(seen["mismatches"], serde_json::json!([]), "the page and `vigil query` disagree");
    assert!(seen["checked"].as_u64().unwrap_or(0) >= 12, "tables checked: {}", seen["checked"]);
    // And what DuckDB computes from the Parquet files alone.
    let oracle = python_json(&python, DUCKDB_ORACLE, &[ev, control, SEED, "40", CHANGED_RULE]);
    let tables = &seen["tables"];
    assert_eq!(tables["q-population-months"], oracle["events_per_month"]);
    assert_eq!(tables["q-alerts-months"], oracle["alerts_per_month"]);
    assert_eq!(tables["q-triage-status"], oracle["triage_status"]);
    assert_eq!(tables["q-dead-letters"], oracle["dead_letters"]);
    assert_eq!(
        oracle["dead_letters"].as_array().map(Vec::len),
        Some(1),
        "the broken record: {}",
        oracle["dead_letters"]
    );
    assert_eq!(tables["q-population-total"][0][0].as_str(), Some(oracle["events_total"].to_string().as_str()));
    let months: Vec<&str> =
        oracle["events_per_month"].as_array().expect("rows").iter().filter_map(|r| r[1].as_str()).collect();
    assert!(["2025-01", "2025-03", "2025-04", "2025-06"].iter().all(|m| months.contains(m)), "six months: {months:?}");
    let statuses: Vec<&str> =
        oracle["triage_status"].as_array().expect("rows").iter().filter_map(|r| r[0].as_str()).collect();
    assert_eq!(statuses, ["false_positive", "investigating", "open", "resolved"]);
    assert_eq!(seen["items"], oracle["sample"], "the sample is the draw `vigil sample` makes");
    assert!(oracle["population"].as_u64().unwrap_or(0) > 40, "a population larger than the sample");
    let queue_open =
        vigil(&["alerts", "list", "--status", "open", "--from", FROM, "--to", TO, "--format", "csv", "--evidence", ev]);
    assert_eq!(queue_open.lines().count() as u64 - 1, oracle["open_queue"].as_u64().expect("count"));

    // The rule text shown is the text that ran, for both versions of the changed rule.
    let cards = seen["cards"].as_array().expect("cards");
    let versions: Vec<(&str, &str)> = cards
        .iter()
        .filter(|c| c["rule"] == CHANGED_RULE)
        .map(|c| (c["hash"].as_str().unwrap_or(""), c["text"].as_str().unwrap_or("")))
        .collect();
    let sha = |t: &str| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(t.as_bytes()))
    };
    assert_eq!(versions, [(sha(&old_text).as_str(), old_text.as_str()), (sha(&new_text).as_str(), new_text.as_str())]);
    assert_eq!(oracle["rule_versions"][sha(&new_text)].as_str(), Some(new_text.as_str()));
    assert_eq!(oracle["rule_versions"].as_object().map(|o| o.len()), Some(2));

    // Every alert's rule hash and every entry's rule pack hash resolves to archived text.
    assert_eq!(oracle["alerts_without_text"].as_u64(), Some(0));
    assert_eq!(oracle["packs_of_entries"], oracle["packs_with_text"]);
    assert_eq!(oracle["packs_with_text"].as_array().map(Vec::len), Some(2), "two packs ran");

    // Hostile record content is text, never markup.
    let tags = &seen["tags"];
    assert!(tags.get("script").is_none() && tags.get("img").is_none() && tags.get("iframe").is_none(), "{tags}");
    let text = seen["text"].as_str().expect("text");
    for hostile in [HOSTILE_UA, HOSTILE_NOTE, HOSTILE_TICKET, "<script>alert('rule')</script>"] {
        assert!(text.contains(hostile), "the page shows {hostile} as text");
    }
    assert!(tags["svg"].as_u64().unwrap_or(0) >= 2, "charts: {tags}");
    // Links stay in the folder and lead to files that exist; nothing is loaded from anywhere.
    let links: Vec<&str> = seen["links"].as_array().expect("links").iter().filter_map(|l| l.as_str()).collect();
    assert!(links.len() >= 5, "{links:?}");
    for link in &links {
        assert!(!link.contains(':') && !link.starts_with('/') && !link.contains(".."), "external or absolute: {link}");
        assert!(out.join(link).is_file(), "a link to a missing file: {link}");
    }
    // Nothing that loads: no link, frame, object or base element, no CSS url() or @import (record text may
    // hold URLs: it is shown as text, checked above).
    for tag in ["link", "iframe", "object", "embed", "base", "video", "audio", "source"] {
        assert!(tags.get(tag).is_none(), "a <{tag}> element: {tags}");
    }
    let style = dom.split("<style>").nth(1).and_then(|s| s.split("</style>").next()).expect("inline style");
    assert!(!style.contains("url(") && !style.contains("@import"), "the style loads something");
    // The PDF holds the same figures.
    let total = oracle["events_total"].to_string();
    assert!(
        pdf_text.contains(control) && pdf_text.contains(&total),
        "pdftotext: {}",
        &pdf_text[..pdf_text.len().min(2000)]
    );
    assert!(pdf_text.contains("Alerts per rule per month") && pdf_text.contains("tested by"));

    // Someone edits a rule's text in the archive without the key: verify names the file, and the
    // workpaper says the archive failed verification.
    let rules_file = vigil_tests::files_below(&evidence.join("rules")).into_iter().next().expect("a rules file");
    let mut bytes = std::fs::read(&rules_file).expect("rules file");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&rules_file, bytes).expect("edit");
    let (code, text) = vigil_fails(&["verify", "--evidence", ev, "--json"]);
    let report: serde_json::Value =
        serde_json::from_str(&text[..text.rfind('}').map_or(0, |i| i + 1)]).expect("verify json");
    let named =
        report["findings"].as_array().expect("findings").iter().any(|f| {
            f["kind"] == "file_hash_mismatch" && f["object"].as_str().is_some_and(|o| o.starts_with("rules/"))
        });
    assert!(code == 1 && named, "{report:#}");
    // Cut the file in half (unreadable): the workpaper is still written, says the archive failed
    // verification, and names what it could not read instead of showing an empty table.
    let half = std::fs::read(&rules_file).expect("rules file");
    std::fs::write(&rules_file, &half[..half.len() / 2]).expect("cut");
    let again = d.join("report-after-edit");
    let (code, text) = vigil_fails(&[
        "report",
        "--evidence",
        ev,
        "--from",
        FROM,
        "--to",
        TO,
        "--control",
        "CC6.8",
        "--out",
        again.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 1, "a finding: {text}");
    let index = std::fs::read_to_string(again.join("index.html")).expect("index");
    assert!(index.contains("verify found problems") && index.contains("file_size_mismatch"), "the workpaper shows it");
    let page = std::fs::read_to_string(again.join("CC6.8.html")).expect("page");
    assert!(
        page.contains("incomplete") && page.contains("could not be read"),
        "the damaged table is named, not silently empty"
    );
}
